/*
 * The state image GET_WEIGHTS reads and PUT_WEIGHTS writes (docs/protocol.md, "Weights"):
 *
 *   weight blob: for each layer in order f32 master_w[C*K], f32 master_b[C], i8 w[C*K],
 *                i32 b[C], f32 w_scale[C], f32 range_min, f32 range_max
 *   quant tail:  for each layer in order f32 in_scale, i32 in_zp, f32 out_scale, i32 out_zp,
 *                i32 out_mult[C], i32 out_shift[C]
 *
 * each part in the board's memory order, which is little-endian on every target. The blob is
 * what training changes (its CRC-32 is STEP_DONE's weights_crc); the tail is the quantization
 * that goes with it, so a pushed image restores the layers exactly, not re-derived.
 */
#include <string.h>

#include "client_internal.h"
#include "ts_crc32.h"

#define TS_BLOB_PARTS 7u
#define TS_TAIL_PARTS 6u

typedef struct {
    uint8_t *ptr;
    uint32_t len;
} image_part_t;

/* Part i of layer l: 0..6 are the blob's, 7..12 the tail's. */
static image_part_t part(ts_fc_layer_t *l, uint32_t i)
{
    uint32_t ck = (uint32_t)l->out_features * l->in_features;
    uint32_t c = l->out_features;
    image_part_t p;
    switch (i) {
    case 0: p.ptr = (uint8_t *)l->master_w; p.len = 4u * ck; break;
    case 1: p.ptr = (uint8_t *)l->master_b; p.len = 4u * c; break;
    case 2: p.ptr = (uint8_t *)l->w; p.len = ck; break;
    case 3: p.ptr = (uint8_t *)l->bias; p.len = 4u * c; break;
    case 4: p.ptr = (uint8_t *)l->w_scale; p.len = 4u * c; break;
    case 5: p.ptr = (uint8_t *)&l->range_min; p.len = 4u; break;
    case 6: p.ptr = (uint8_t *)&l->range_max; p.len = 4u; break;
    case 7: p.ptr = (uint8_t *)&l->in_q.scale; p.len = 4u; break;
    case 8: p.ptr = (uint8_t *)&l->in_q.zero_point; p.len = 4u; break;
    case 9: p.ptr = (uint8_t *)&l->out_q.scale; p.len = 4u; break;
    case 10: p.ptr = (uint8_t *)&l->out_q.zero_point; p.len = 4u; break;
    case 11: p.ptr = (uint8_t *)l->out_mult; p.len = 4u * c; break;
    default: p.ptr = (uint8_t *)l->out_shift; p.len = 4u * c; break;
    }
    return p;
}

/* The image's parts in order: the blob's of every layer, then the tail's. n-th part, n counted
 * from 0; returns 0 past the last. */
static int nth_part(uint32_t n, image_part_t *out)
{
    const uint32_t blob_parts = TS_MODEL_N_LAYERS * TS_BLOB_PARTS;
    if (n < blob_parts) {
        *out = part(&ts_model_layers[n / TS_BLOB_PARTS], n % TS_BLOB_PARTS);
        return 1;
    }
    n -= blob_parts;
    if (n < TS_MODEL_N_LAYERS * TS_TAIL_PARTS) {
        *out = part(&ts_model_layers[n / TS_TAIL_PARTS], TS_BLOB_PARTS + n % TS_TAIL_PARTS);
        return 1;
    }
    return 0;
}

#define TS_IMAGE_PARTS (TS_MODEL_N_LAYERS * (TS_BLOB_PARTS + TS_TAIL_PARTS))

uint32_t ts_weights_blob_size(void)
{
    uint32_t total = 0;
    image_part_t p;
    for (uint32_t n = 0; n < TS_MODEL_N_LAYERS * TS_BLOB_PARTS && nth_part(n, &p); ++n) {
        total += p.len;
    }
    return total;
}

uint32_t ts_state_image_size(void)
{
    uint32_t total = 0;
    image_part_t p;
    for (uint32_t n = 0; n < TS_IMAGE_PARTS && nth_part(n, &p); ++n) {
        total += p.len;
    }
    return total;
}

/* Copies image bytes [offset, offset+len) to (to_image = 0) or from (1) buf. */
static uint32_t copy(uint32_t offset, uint8_t *buf, uint32_t len, int to_image)
{
    uint32_t pos = 0; /* image offset of the current part */
    uint32_t done = 0;
    image_part_t p;
    for (uint32_t n = 0; n < TS_IMAGE_PARTS && nth_part(n, &p); ++n) {
        uint32_t want = offset + done;
        if (done < len && want >= pos && want < pos + p.len) {
            uint32_t from = want - pos;
            uint32_t k = p.len - from;
            if (k > len - done) {
                k = len - done;
            }
            if (to_image) {
                memcpy(p.ptr + from, buf + done, k);
            } else {
                memcpy(buf + done, p.ptr + from, k);
            }
            done += k;
        }
        pos += p.len;
    }
    return done;
}

uint32_t ts_state_image_read(uint32_t offset, uint8_t *out, uint32_t len)
{
    return copy(offset, out, len, 0);
}

uint32_t ts_state_image_write(uint32_t offset, const uint8_t *in, uint32_t len)
{
    /* copy() only reads buf when writing the image */
    return copy(offset, (uint8_t *)(uintptr_t)in, len, 1);
}

uint32_t ts_weights_blob_crc(void)
{
    uint32_t crc = ts_crc32_begin();
    image_part_t p;
    for (uint32_t n = 0; n < TS_MODEL_N_LAYERS * TS_BLOB_PARTS && nth_part(n, &p); ++n) {
        crc = ts_crc32_update(crc, p.ptr, p.len);
    }
    return ts_crc32_end(crc);
}

static int finite_abs_below(float v, float limit)
{
    return v >= -limit && v <= limit; /* false for NaN */
}

static int scale_ok(float s)
{
    return s > 0.0f && s <= TS_RANGE_LIMIT; /* positive, finite */
}

static int zero_point_ok(int32_t zp)
{
    return zp >= -128 && zp <= 127;
}

int ts_state_image_valid(void)
{
    for (uint32_t l = 0; l < TS_MODEL_N_LAYERS; ++l) {
        const ts_fc_layer_t *lay = &ts_model_layers[l];
        const uint32_t c_n = lay->out_features;
        const uint32_t ck = c_n * lay->in_features;
        for (uint32_t i = 0; i < ck; ++i) {
            if (!finite_abs_below(lay->master_w[i], TS_WEIGHT_LIMIT) || lay->w[i] < -127) {
                return 0;
            }
        }
        for (uint32_t c = 0; c < c_n; ++c) {
            if (!finite_abs_below(lay->master_b[c], TS_WEIGHT_LIMIT) || !scale_ok(lay->w_scale[c]) ||
                lay->out_mult[c] < 0 || lay->out_shift[c] < -31 || lay->out_shift[c] > 30) {
                return 0;
            }
        }
        if (!finite_abs_below(lay->range_min, TS_RANGE_LIMIT) ||
            !finite_abs_below(lay->range_max, TS_RANGE_LIMIT) ||
            !(lay->range_min <= lay->range_max) || !scale_ok(lay->in_q.scale) ||
            !scale_ok(lay->out_q.scale) || !zero_point_ok(lay->in_q.zero_point) ||
            !zero_point_ok(lay->out_q.zero_point)) {
            return 0;
        }
    }
    return 1;
}
