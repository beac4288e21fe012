/* Typed status codes returned by tinysplit's firmware functions. */
#ifndef TS_STATUS_H
#define TS_STATUS_H

typedef enum {
    TS_OK = 0,          /**< success */
    TS_ERR_ARG = -1,    /**< an argument is out of range (shape, index, length) */
    TS_ERR_STATE = -2,  /**< the call is not valid in the current state */
    TS_ERR_FRAME = -3,  /**< a frame failed COBS, CRC or length checks */
    TS_ERR_TIMEOUT = -4 /**< nothing arrived in time */
} ts_status_t;

#endif
