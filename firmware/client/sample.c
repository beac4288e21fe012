/* The default ts_board_read_sample (ts_board.h): the test shard in flash, sample by sample.
 * Weak, so that a deployment's own definition (its sensor) replaces it at link time. */
#include "client_internal.h"
#include "ts_board.h"

__attribute__((weak)) const int8_t *ts_board_read_sample(uint32_t index, uint8_t *label)
{
    if (index >= TS_MODEL_N_TEST) {
        return 0;
    }
    *label = ts_test_y[index];
    return ts_test_x + index * TS_MODEL_INPUT_SIZE;
}
