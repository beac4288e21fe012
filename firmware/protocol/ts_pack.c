/* Wire formats, one sample at a time (ts_pack.h). */
#include "ts_pack.h"

#include "ts_wire.h"

uint8_t ts_pack_act_level(int8_t q, int8_t zp)
{
    int32_t d = (int32_t)q - zp;
    const int32_t r = 127 - (int32_t)zp;
    if (d <= 0) {
        return 0u; /* level 0 is the zero point alone: a ReLU's zeros stay its zeros */
    }
    const int32_t u = (d * 15 + r / 2) / r; /* non-negative: C's division is the floor */
    return (uint8_t)(u < 1 ? 1 : u);
}

/* The value (8-bit) or level (ACTS4) sent for q, and whether SPARSE names it. */
static uint8_t coded(int8_t q, int8_t zp, uint8_t wire, int *named)
{
    if (wire & TS_WIRE_ACTS4) {
        uint8_t u = ts_pack_act_level(q, zp);
        *named = u != 0u;
        return u;
    }
    *named = q != zp;
    return (uint8_t)q;
}

uint32_t ts_pack_acts(const int8_t *q, uint32_t n, int8_t zp, uint8_t wire, uint8_t *out)
{
    uint32_t pos = 0;
    if (wire & TS_WIRE_SPARSE) {
        const uint32_t bitmap = (n + 7u) / 8u;
        for (uint32_t b = 0; b < bitmap; ++b) {
            out[b] = 0u;
        }
        pos = bitmap;
    }
    uint32_t nibbles = 0; /* values written in nibbles so far */
    for (uint32_t k = 0; k < n; ++k) {
        int named;
        uint8_t v = coded(q[k], zp, wire, &named);
        if (wire & TS_WIRE_SPARSE) {
            if (!named) {
                continue;
            }
            out[k / 8u] = (uint8_t)(out[k / 8u] | (1u << (k % 8u)));
        }
        if (wire & TS_WIRE_ACTS4) {
            if (nibbles % 2u == 0u) {
                out[pos++] = v;
            } else {
                out[pos - 1u] = (uint8_t)(out[pos - 1u] | (uint8_t)(v << 4));
            }
            nibbles++;
        } else {
            out[pos++] = v;
        }
    }
    return pos;
}

int32_t ts_unpack_grad(const uint8_t *in, uint32_t avail, const uint8_t *sent, uint32_t n,
                       uint8_t wire, int8_t *g)
{
    uint32_t pos = 0;
    uint32_t nibbles = 0;
    for (uint32_t k = 0; k < n; ++k) {
        if ((wire & TS_WIRE_SPARSE) && !((sent[k / 8u] >> (k % 8u)) & 1u)) {
            g[k] = 0;
            continue;
        }
        if (wire & TS_WIRE_GRADS4) {
            if (nibbles % 2u == 0u) {
                if (pos >= avail) {
                    return -1;
                }
                pos++;
            }
            uint8_t v = (uint8_t)((nibbles % 2u == 0u) ? (in[pos - 1u] & 0x0Fu) : (in[pos - 1u] >> 4));
            g[k] = (int8_t)(v >= 8u ? (int32_t)v - 16 : (int32_t)v);
            nibbles++;
        } else {
            if (pos >= avail) {
                return -1;
            }
            g[k] = (int8_t)in[pos++];
        }
    }
    if ((wire & TS_WIRE_GRADS4) && nibbles % 2u == 1u && (in[pos - 1u] >> 4) != 0u) {
        return -1;
    }
    return (int32_t)pos;
}
