/*
 * ts_board_* for the native build: the firmware runs as a Linux process and its UART is a pty.
 * ts_board_init prints `TINYSPLIT_PTY <slave path>` on stdout; the host opens that path like a
 * serial port (host/board/launch.py: native_board).
 */
#define _DEFAULT_SOURCE   /* cfmakeraw */
#define _XOPEN_SOURCE 700 /* posix_openpt, grantpt, unlockpt, ptsname */

#include "ts_board.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static int s_master = -1;
static int s_slave = -1; /* held open: keeps raw mode, and reads never see EIO/hangup */
static struct timespec s_boot;
static uint8_t s_rx[256];
static size_t s_rx_len;
static size_t s_rx_pos;

static void die(const char *what)
{
    fprintf(stderr, "tinysplit native board: %s: %s\n", what, strerror(errno));
    exit(1);
}

void ts_board_init(void)
{
    clock_gettime(CLOCK_MONOTONIC, &s_boot);

    s_master = posix_openpt(O_RDWR | O_NOCTTY);
    if (s_master < 0 || grantpt(s_master) != 0 || unlockpt(s_master) != 0) {
        die("cannot create a pty");
    }
    const char *path = ptsname(s_master);
    if (path == NULL) {
        die("ptsname");
    }
    /* Raw mode on the slave before the host opens it: bytes written early (the boot banner)
       must not be echoed back or held in a line buffer. */
    s_slave = open(path, O_RDWR | O_NOCTTY);
    if (s_slave < 0) {
        die("cannot open the pty slave");
    }
    struct termios tio;
    if (tcgetattr(s_slave, &tio) != 0) {
        die("tcgetattr");
    }
    cfmakeraw(&tio);
    if (tcsetattr(s_slave, TCSANOW, &tio) != 0) {
        die("tcsetattr");
    }
    printf("TINYSPLIT_PTY %s\n", path);
    fflush(stdout);
}

void ts_board_uart_write(const uint8_t *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = write(s_master, buf, n);
        if (w < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            die("pty write");
        }
        buf += w;
        n -= (size_t)w;
    }
}

/* A pty takes the bytes at once: sent before returning, nothing to wait for. */
void ts_board_uart_send(const uint8_t *buf, size_t n)
{
    ts_board_uart_write(buf, n);
}

void ts_board_uart_flush(void)
{
}

int ts_board_uart_read(uint8_t *byte, uint32_t timeout_ms)
{
    if (s_rx_pos == s_rx_len) {
        struct pollfd pfd = {.fd = s_master, .events = POLLIN, .revents = 0};
        int timeout = timeout_ms > (uint32_t)INT32_MAX ? -1 : (int)timeout_ms;
        int r;
        do {
            r = poll(&pfd, 1, timeout); /* an EINTR retry restarts the wait; fine here */
        } while (r < 0 && errno == EINTR);
        if (r < 0) {
            die("poll");
        }
        if (r == 0) {
            return 0;
        }
        ssize_t got = read(s_master, s_rx, sizeof s_rx);
        if (got <= 0) {
            if (got < 0 && (errno == EINTR || errno == EAGAIN)) {
                return 0;
            }
            die("pty read");
        }
        s_rx_len = (size_t)got;
        s_rx_pos = 0;
    }
    *byte = s_rx[s_rx_pos++];
    return 1;
}

static uint64_t ns_since_boot(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)(now.tv_sec - s_boot.tv_sec) * 1000000000u + (uint64_t)now.tv_nsec -
           (uint64_t)s_boot.tv_nsec;
}

uint32_t ts_board_millis(void)
{
    return (uint32_t)(ns_since_boot() / 1000000u);
}

/* Nanoseconds (a 1 GHz "cycle"; profile.json clock_hz), wraps every 4.29 s. */
uint32_t ts_board_cycles(void)
{
    return (uint32_t)ns_since_boot();
}

/* TINYSPLIT_NATIVE_REPEAT_ENTROPY=1 in the environment: the same "random" numbers at every boot,
 * as a board without a random source (QEMU's) may draw. Tests use it to show that a board which
 * reboots with the same session id is still noticed and recovered (docs/protocol.md). */
uint32_t ts_board_entropy(void)
{
    static uint32_t repeat;
    const char *fixed = getenv("TINYSPLIT_NATIVE_REPEAT_ENTROPY");
    if (fixed != NULL && fixed[0] == '1') {
        repeat = repeat * 1664525u + 1013904223u;
        return repeat;
    }
    uint32_t v;
    if (getrandom(&v, sizeof v, 0) == (ssize_t)sizeof v) {
        return v;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (uint32_t)now.tv_nsec ^ ((uint32_t)getpid() << 16);
}

const char *ts_board_name(void)
{
    return "native";
}

uint8_t ts_board_reset_cause(void)
{
    return 0;
}
