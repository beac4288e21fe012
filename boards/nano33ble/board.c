/*
 * ts_board_* for the Arduino Nano 33 BLE (u-blox NINA-B306: nRF52840, Cortex-M4F, 64 MHz).
 *
 * The host link is UARTE0 on the header pins, D1/TX = P1.03 and D0/RX = P1.10, through a 3.3 V
 * USB-serial adapter: the board's USB port is wired to the nRF52840's own USB device, which would
 * need a USB CDC stack in the firmware (the Arduino core uses Mbed's); the header UART keeps the
 * board layer register-level and the same shape as on the other boards.
 *
 * The firmware is linked at 0x10000, behind the Arduino bootloader (double-tap reset to upload
 * over USB with bossac, as `pio run -t upload` does); startup takes over VTOR and masks the
 * interrupts the bootloader left on. The 32 MHz crystal is started for an accurate baud rate.
 * DWT cycle counter, SysTick 1 ms, the RNG for entropy. UARTE0 receives by interrupt (each
 * ENDRX hands its byte to the RX ring, cm_rx_ring.c, and restarts reception), transmits by
 * EasyDMA, waiting for the end (cm_tx.c's send returns once the frame has gone).
 */

#include "cm_board.h"
#include "nrf52840_regs.h"
#include "ts_board.h"

#define CORE_HZ 64000000u
#define TX_PIN PSEL(1, 3)  /* D1/TX */
#define RX_PIN PSEL(1, 10) /* D0/RX */

/* BAUDRATE register values from the product specification's UARTE table. */
#if TS_UART_BAUD == 115200
#define UARTE_BAUDRATE 0x01D60000u
#elif TS_UART_BAUD == 230400
#define UARTE_BAUDRATE 0x03B00000u
#elif TS_UART_BAUD == 460800
#define UARTE_BAUDRATE 0x07400000u
#elif TS_UART_BAUD == 921600
#define UARTE_BAUDRATE 0x0F000000u /* 941176 baud in fact (+2.1%), within a UART's tolerance */
#elif TS_UART_BAUD == 1000000
#define UARTE_BAUDRATE 0x10000000u
#else
#error "nano33ble: TS_UART_BAUD must be 115200, 230400, 460800, 921600 or 1000000"
#endif

/* EasyDMA reads and writes RAM only: one byte in, a bounce buffer out. While no receive is
   started the UARTE holds a few bytes in its RX FIFO, like a plain UART's. */
static volatile uint8_t s_rx_byte;
static uint8_t s_tx_buf[256];
static uint8_t s_fault_byte;
static uint8_t s_reset_cause;

#define UARTE0_IRQ 2u /* nRF52840 PS 4.1: UARTE0_UART0 */
#define UARTE0_INTEN_ENDRX (1u << 4)

static void uarte0_irq(void);

__attribute__((section(".isr_vector.device"), used)) const uintptr_t
    ts_device_vectors[UARTE0_IRQ + 1u] = {
        [UARTE0_IRQ] = (uintptr_t)uarte0_irq,
};

static uint8_t read_reset_cause(void)
{
    uint32_t why = POWER_RESETREAS;
    POWER_RESETREAS = why;
    if (why & POWER_RESETREAS_DOG) {
        return CM_RESET_WATCHDOG;
    }
    if (why & (POWER_RESETREAS_SREQ | POWER_RESETREAS_LOCKUP)) {
        return CM_RESET_SOFTWARE;
    }
    return (why & POWER_RESETREAS_RESETPIN) ? CM_RESET_PIN : CM_RESET_POWER_ON;
}

static void rx_start(void)
{
    UARTE0_RXD_PTR = (uint32_t)(uintptr_t)&s_rx_byte;
    UARTE0_RXD_MAXCNT = 1;
    UARTE0_EVENTS_ENDRX = 0;
    UARTE0_TASKS_STARTRX = 1;
}

static void uart_init(void)
{
    UARTE0_ENABLE = 0;
    UARTE0_INTEN = 0;
    UARTE0_SHORTS = 0;
    /* TX idles high before the UARTE takes the pin; RX pulled up so a loose wire reads idle. */
    P1_OUTSET = 1u << 3;
    P1_PIN_CNF(3) = PIN_CNF_DIR_OUTPUT | PIN_CNF_INPUT_DISCONNECT;
    P1_PIN_CNF(10) = PIN_CNF_PULLUP;
    UARTE0_PSEL_TXD = TX_PIN;
    UARTE0_PSEL_RXD = RX_PIN;
    UARTE0_PSEL_RTS = PSEL_DISCONNECTED;
    UARTE0_PSEL_CTS = PSEL_DISCONNECTED;
    UARTE0_CONFIG = 0;
    UARTE0_BAUDRATE = UARTE_BAUDRATE;
    UARTE0_ENABLE = UARTE0_ENABLE_ON;
    rx_start();
    UARTE0_INTEN = UARTE0_INTEN_ENDRX;
    cm_nvic_enable(UARTE0_IRQ);
}

/* One byte per ENDRX; reception restarts at once (the UARTE holds what arrives meanwhile in its
   RX FIFO). An error (overrun, framing) is cleared; the frame CRC catches the loss. */
static void uarte0_irq(void)
{
    if (UARTE0_EVENTS_ERROR) {
        UARTE0_ERRORSRC = UARTE0_ERRORSRC;
        UARTE0_EVENTS_ERROR = 0;
    }
    if (UARTE0_EVENTS_ENDRX) {
        const uint8_t byte = s_rx_byte;
        rx_start();
        (void)UARTE0_EVENTS_ENDRX; /* the clear reaches the peripheral before the return */
        cm_rx_isr_put(byte);
    }
}

void ts_board_init(void)
{
    s_reset_cause = read_reset_cause();
    USBD_USBPULLUP = 0; /* the bootloader's USB device, if it left one, leaves the bus */
    USBD_ENABLE = 0;
    CLOCK_EVENTS_HFCLKSTARTED = 0;
    CLOCK_TASKS_HFCLKSTART = 1;
    (void)cm_wait(&CLOCK_EVENTS_HFCLKSTARTED, 1u, 1u);
    uart_init();
    cm_time_init(CORE_HZ);
    cm_entropy_init();
}

static void tx_dma(const uint8_t *ram, uint32_t n)
{
    __asm volatile("dsb" ::: "memory"); /* the buffer is in RAM before EasyDMA reads it */
    UARTE0_TXD_PTR = (uint32_t)(uintptr_t)ram;
    UARTE0_TXD_MAXCNT = n;
    UARTE0_EVENTS_ENDTX = 0;
    UARTE0_TASKS_STARTTX = 1;
    while (UARTE0_EVENTS_ENDTX == 0) {
    }
}

/* EasyDMA reads RAM only (a flash string cannot be sent in place): the bytes are copied into
   s_tx_buf and sent in chunks, here, with interrupts on so that reception goes on. */
void cm_uart_tx_start(void)
{
    uint8_t byte;
    uint32_t n = 0;
    while (cm_tx_isr_next(&byte)) {
        s_tx_buf[n++] = byte;
        if (n == sizeof s_tx_buf) {
            tx_dma(s_tx_buf, n);
            n = 0;
        }
    }
    if (n > 0u) {
        tx_dma(s_tx_buf, n);
    }
}

void cm_uart_tx_poll(void)
{
    /* cm_uart_tx_start sent everything before returning */
}

int cm_uart_poll(uint8_t *byte)
{
    return cm_rx_take(byte);
}

void cm_fault_putc(char c)
{
    if (UARTE0_ENABLE != UARTE0_ENABLE_ON) {
        return; /* faulted before ts_board_init */
    }
    s_fault_byte = (uint8_t)c;
    tx_dma(&s_fault_byte, 1);
}

uint32_t cm_board_hw_random(void)
{
    uint32_t value = 0;
    RNG_CONFIG = RNG_CONFIG_DERCEN;
    RNG_TASKS_START = 1;
    for (int i = 0; i < 4; i++) {
        RNG_EVENTS_VALRDY = 0;
        if (!cm_wait(&RNG_EVENTS_VALRDY, 1u, 1u)) {
            break;
        }
        value = (value << 8) | (RNG_VALUE & 0xFFu);
    }
    RNG_TASKS_STOP = 1;
    return value;
}

const char *ts_board_name(void)
{
    return "nano33ble";
}

uint8_t ts_board_reset_cause(void)
{
    return s_reset_cause;
}
