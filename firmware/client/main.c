/* Entry point shared by every board: the board brings up clocks and UART, the client does the rest. */
#include "board_config.h"
#include "client.h"
#include "model_data.h"
#include "ts_board.h"

/* The stack is planned by codegen (plan.json) and placed by the board (linker script). */
TS_BOARD_DEFINE_STACK(TS_MODEL_STACK_BYTES);

int main(void)
{
    ts_board_init();
    ts_client_init();
    ts_client_run();
    return 0;
}
