/*
 * The weight blob the host reads with GET_WEIGHTS (docs/protocol.md): for each layer in order
 * f32 master_w[C*K], f32 master_b[C], i8 w[C*K], i32 b[C], f32 w_scale[C], f32 range_min,
 * f32 range_max — each in the board's memory order, which is little-endian on every target.
 */
#include <string.h>

#include "client_internal.h"
#include "ts_crc32.h"

#define TS_BLOB_PARTS 7u

typedef struct {
    const uint8_t *ptr;
    uint32_t len;
} blob_part_t;

static blob_part_t part(const ts_fc_layer_t *l, uint32_t i)
{
    uint32_t ck = (uint32_t)l->out_features * l->in_features;
    uint32_t c = l->out_features;
    blob_part_t p;
    switch (i) {
    case 0: p.ptr = (const uint8_t *)l->master_w; p.len = 4u * ck; break;
    case 1: p.ptr = (const uint8_t *)l->master_b; p.len = 4u * c; break;
    case 2: p.ptr = (const uint8_t *)l->w; p.len = ck; break;
    case 3: p.ptr = (const uint8_t *)l->bias; p.len = 4u * c; break;
    case 4: p.ptr = (const uint8_t *)l->w_scale; p.len = 4u * c; break;
    case 5: p.ptr = (const uint8_t *)&l->range_min; p.len = 4u; break;
    default: p.ptr = (const uint8_t *)&l->range_max; p.len = 4u; break;
    }
    return p;
}

uint32_t ts_weights_blob_size(void)
{
    uint32_t total = 0;
    for (uint32_t l = 0; l < TS_MODEL_N_LAYERS; ++l) {
        for (uint32_t i = 0; i < TS_BLOB_PARTS; ++i) {
            total += part(&ts_model_layers[l], i).len;
        }
    }
    return total;
}

uint32_t ts_weights_blob_read(uint32_t offset, uint8_t *out, uint32_t len)
{
    uint32_t pos = 0; /* blob offset of the current part */
    uint32_t done = 0;
    for (uint32_t l = 0; l < TS_MODEL_N_LAYERS; ++l) {
        for (uint32_t i = 0; i < TS_BLOB_PARTS; ++i) {
            blob_part_t p = part(&ts_model_layers[l], i);
            uint32_t want = offset + done;
            if (done < len && want >= pos && want < pos + p.len) {
                uint32_t from = want - pos;
                uint32_t n = p.len - from;
                if (n > len - done) {
                    n = len - done;
                }
                memcpy(out + done, p.ptr + from, n);
                done += n;
            }
            pos += p.len;
        }
    }
    return done;
}

uint32_t ts_weights_blob_crc(void)
{
    uint32_t crc = ts_crc32_begin();
    for (uint32_t l = 0; l < TS_MODEL_N_LAYERS; ++l) {
        for (uint32_t i = 0; i < TS_BLOB_PARTS; ++i) {
            blob_part_t p = part(&ts_model_layers[l], i);
            crc = ts_crc32_update(crc, p.ptr, p.len);
        }
    }
    return ts_crc32_end(crc);
}
