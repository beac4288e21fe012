/*
 * The state image GET_WEIGHTS reads and PUT_WEIGHTS writes (docs/protocol.md, "Weights"):
 *
 *   weight blob: for each trainable op in order (a U-shaped export's head last) f32 master_w[C*K], f32 master_b[C], i8 w[C*K],
 *                i32 b[C], f32 w_scale[C], f32 range_min, f32 range_max
 *   quant tail:  for each trainable op in order f32 in_scale, i32 in_zp, f32 out_scale, i32 out_zp,
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

/* Part i of a trainable op: 0..6 are the blob's, 7..12 the tail's. */
static image_part_t part(ts_params_t *t, uint32_t i)
{
    const uint32_t n_w = ts_params_weights(t);
    const uint32_t n_c = t->channels;
    image_part_t p;
    switch (i) {
    case 0: p.ptr = (uint8_t *)t->master_w; p.len = 4u * n_w; break;
    case 1: p.ptr = (uint8_t *)t->master_b; p.len = 4u * n_c; break;
    case 2: p.ptr = (uint8_t *)t->w; p.len = n_w; break;
    case 3: p.ptr = (uint8_t *)t->bias; p.len = 4u * n_c; break;
    case 4: p.ptr = (uint8_t *)t->w_scale; p.len = 4u * n_c; break;
    case 5: p.ptr = (uint8_t *)&t->range_min; p.len = 4u; break;
    case 6: p.ptr = (uint8_t *)&t->range_max; p.len = 4u; break;
    case 7: p.ptr = (uint8_t *)&t->in_q.scale; p.len = 4u; break;
    case 8: p.ptr = (uint8_t *)&t->in_q.zero_point; p.len = 4u; break;
    case 9: p.ptr = (uint8_t *)&t->out_q.scale; p.len = 4u; break;
    case 10: p.ptr = (uint8_t *)&t->out_q.zero_point; p.len = 4u; break;
    case 11: p.ptr = (uint8_t *)t->out_mult; p.len = 4u * n_c; break;
    default: p.ptr = (uint8_t *)t->out_shift; p.len = 4u * n_c; break;
    }
    return p;
}

/* The training state of the k-th trainable op (k counted from 0), a U-shaped export's head
 * last; NULL past the last. */
static ts_params_t *nth_trainable(uint32_t k)
{
    for (uint32_t i = 0; i < TS_MODEL_N_OPS; ++i) {
        ts_params_t *p = ts_op_params(i);
        if (p && k-- == 0u) {
            return p;
        }
    }
#if TS_MODEL_HEAD
    if (k == 0u) {
        return &ts_model_head.p;
    }
#endif
    return 0;
}

/* Number of trainable ops. */
static uint32_t n_trainable(void)
{
    uint32_t n = 0;
    while (nth_trainable(n)) {
        ++n;
    }
    return n;
}

/* The image's parts in order: the blob's of every trainable op, then the tail's. n-th part, n
 * counted from 0; returns 0 past the last. */
static int nth_part(uint32_t n, image_part_t *out)
{
    const uint32_t n_ops = n_trainable();
    if (n < n_ops * TS_BLOB_PARTS) {
        *out = part(nth_trainable(n / TS_BLOB_PARTS), n % TS_BLOB_PARTS);
        return 1;
    }
    n -= n_ops * TS_BLOB_PARTS;
    if (n < n_ops * TS_TAIL_PARTS) {
        *out = part(nth_trainable(n / TS_TAIL_PARTS), TS_BLOB_PARTS + n % TS_TAIL_PARTS);
        return 1;
    }
    return 0;
}

uint32_t ts_weights_blob_size(void)
{
    uint32_t total = 0;
    image_part_t p;
    const uint32_t blob_parts = n_trainable() * TS_BLOB_PARTS;
    for (uint32_t n = 0; n < blob_parts && nth_part(n, &p); ++n) {
        total += p.len;
    }
    return total;
}

uint32_t ts_state_image_size(void)
{
    uint32_t total = 0;
    image_part_t p;
    for (uint32_t n = 0; nth_part(n, &p); ++n) {
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
    for (uint32_t n = 0; nth_part(n, &p); ++n) {
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
    const uint32_t blob_parts = n_trainable() * TS_BLOB_PARTS;
    for (uint32_t n = 0; n < blob_parts && nth_part(n, &p); ++n) {
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
    const ts_params_t *t;
    for (uint32_t k = 0; (t = nth_trainable(k)) != 0; ++k) {
        const uint32_t n_w = ts_params_weights(t);
        for (uint32_t i = 0; i < n_w; ++i) {
            if (!finite_abs_below(t->master_w[i], TS_WEIGHT_LIMIT) || t->w[i] < -127) {
                return 0;
            }
        }
        for (uint32_t c = 0; c < t->channels; ++c) {
            if (!finite_abs_below(t->master_b[c], TS_WEIGHT_LIMIT) || !scale_ok(t->w_scale[c]) ||
                t->out_mult[c] < 0 || t->out_shift[c] < -31 || t->out_shift[c] > 30) {
                return 0;
            }
        }
        if (!finite_abs_below(t->range_min, TS_RANGE_LIMIT) ||
            !finite_abs_below(t->range_max, TS_RANGE_LIMIT) || !(t->range_min <= t->range_max) ||
            !scale_ok(t->in_q.scale) || !scale_ok(t->out_q.scale) ||
            !zero_point_ok(t->in_q.zero_point) || !zero_point_ok(t->out_q.zero_point)) {
            return 0;
        }
    }
    return 1;
}
