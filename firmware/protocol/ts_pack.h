/*
 * Wire formats of SMASHED_PACKED and GRAD_PACKED (docs/protocol.md, "Wire formats"): one
 * sample at a time. The host's twin is core/protocol/wire.py; tests/protocol/test_wire_pack.py
 * holds the two to the same bytes on random samples.
 *
 * ACTS4: activation q (zero point zp, 127 - zp >= 15) is level u = (15 d + r / 2) / r with
 * d = max(q - zp, 0), r = 127 - zp, at least 1 when d > 0, read back as zp + (u r + 7) / 15.
 * GRADS4: a gradient is a signed 4-bit value. In 4 bits: two values a byte, the first in the
 * low nibble, each sample starting a byte.
 * SPARSE: a bitmap (LSB first) of the activations not at zp, then only those; a gradient
 * sample holds only the positions its activation sample named.
 */
#ifndef TS_PACK_H
#define TS_PACK_H

#include <stdint.h>

/** ACTS4: the 4-bit level of activation q. */
uint8_t ts_pack_act_level(int8_t q, int8_t zp);

/** Codes one sample of n activations into out (ts_pack_acts_size(n, n, wire) bytes at most);
 *  returns the bytes written. */
uint32_t ts_pack_acts(const int8_t *q, uint32_t n, int8_t zp, uint8_t wire, uint8_t *out);

/** Reads one sample's coded gradient from in (avail bytes there) into g[n]; sent is the bitmap
 *  its activation sample carried (SPARSE: where the values go, 0 elsewhere; unread without
 *  SPARSE). Returns the bytes read, or -1 if avail is short or a padding nibble is not 0. */
int32_t ts_unpack_grad(const uint8_t *in, uint32_t avail, const uint8_t *sent, uint32_t n,
                       uint8_t wire, int8_t *g);

#endif
