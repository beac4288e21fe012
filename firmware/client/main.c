/* Entry point shared by every board: the board brings up clocks and UART, the client does the rest. */
#include "client.h"
#include "ts_board.h"

int main(void)
{
    ts_board_init();
    ts_client_init();
    ts_client_run();
    return 0;
}
