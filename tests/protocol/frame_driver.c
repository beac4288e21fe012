/*
 * Test driver for firmware/protocol, built by tests/protocol/conftest.py with ASan + UBSan.
 *
 *   frame_driver decode < stream   one line per valid frame: "F type session step seq len hex",
 *                                  then "C" and the nine counters
 *   frame_driver encode < payload  encodes the payload (header from argv[2..5]) into heap buffers
 *                                  of every size from 0 to the full size, checks that only the
 *                                  full size succeeds, COBS-decodes the result likewise, prints
 *                                  "E hex" of the frame
 *
 * Every buffer is malloc'd with its exact size, so any read or write past it trips ASan.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_cobs.h"
#include "ts_frame.h"

static unsigned char *read_stdin(size_t *len)
{
    size_t cap = 4096, n = 0;
    unsigned char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, stdin)) > 0) {
        n += got;
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    if (!buf) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    *len = n;
    return buf;
}

static void print_hex(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; ++i) {
        printf("%02x", p[i]);
    }
    printf("\n");
}

static int decode(void)
{
    size_t n;
    unsigned char *in = read_stdin(&n);
    ts_frame_decoder_t *d = malloc(sizeof *d);
    if (!d) {
        return 2;
    }
    ts_frame_decoder_init(d);
    for (size_t i = 0; i < n; ++i) {
        ts_header_t h;
        const uint8_t *payload = NULL;
        if (ts_frame_decoder_push(d, in[i], &h, &payload)) {
            printf("F %u %lu %lu %u %u ", (unsigned)h.type, (unsigned long)h.session,
                   (unsigned long)h.step, (unsigned)h.seq, (unsigned)h.length);
            print_hex(payload, h.length);
        }
    }
    printf("C %lu %lu %lu %lu %lu %lu %lu %lu %lu\n", (unsigned long)d->frames_ok,
           (unsigned long)d->crc_errors, (unsigned long)d->cobs_errors,
           (unsigned long)d->oversize, (unsigned long)d->short_frames,
           (unsigned long)d->bad_magic, (unsigned long)d->bad_version,
           (unsigned long)d->bad_length, (unsigned long)d->resyncs);
    free(d);
    free(in);
    return 0;
}

static int encode(char **argv)
{
    size_t n;
    unsigned char *payload = read_stdin(&n);
    ts_header_t h;
    h.type = (uint8_t)strtoul(argv[2], NULL, 0);
    h.session = (uint32_t)strtoul(argv[3], NULL, 0);
    h.step = (uint32_t)strtoul(argv[4], NULL, 0);
    h.seq = (uint16_t)strtoul(argv[5], NULL, 0);
    h.length = 0xFFFFu; /* ignored: taken from payload_len */

    uint8_t *full = malloc(TS_WIRE_MAX_ENCODED);
    size_t need = ts_frame_encode(&h, payload, n, full, TS_WIRE_MAX_ENCODED);
    if (need == 0u) {
        printf("E -\n"); /* too large */
        free(full);
        free(payload);
        return 0;
    }
    for (size_t cap = 0; cap <= need; ++cap) {
        uint8_t *out = malloc(cap ? cap : 1u);
        size_t got = ts_frame_encode(&h, payload, n, out, cap);
        if (got != (cap == need ? need : 0u) || (got && memcmp(out, full, need) != 0)) {
            printf("X encode cap %zu gave %zu\n", cap, got);
            return 1;
        }
        free(out);
    }
    /* COBS part without the delimiter decodes back to header | payload | crc. */
    size_t raw_need = TS_WIRE_HEADER_SIZE + n + TS_WIRE_CRC_SIZE;
    for (size_t cap = 0; cap <= raw_need; ++cap) {
        uint8_t *raw = malloc(cap ? cap : 1u);
        size_t raw_len = 0;
        ts_status_t st = ts_cobs_decode(full, need - 1u, raw, cap, &raw_len);
        ts_status_t want = cap == raw_need ? TS_OK : TS_ERR_ARG;
        if (st != want || (st == TS_OK && (raw_len != raw_need ||
                                           memcmp(raw + TS_WIRE_HEADER_SIZE, payload, n) != 0))) {
            printf("X cobs_decode cap %zu gave %d\n", cap, (int)st);
            return 1;
        }
        free(raw);
    }
    printf("E ");
    print_hex(full, need);
    free(full);
    free(payload);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "decode") == 0) {
        return decode();
    }
    if (argc == 6 && strcmp(argv[1], "encode") == 0) {
        return encode(argv);
    }
    fprintf(stderr, "usage: frame_driver decode | encode TYPE SESSION STEP SEQ\n");
    return 2;
}
