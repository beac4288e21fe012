/*
 * Kernel check: every optimized kernel (*_fast.c) against its reference kernel, bit for bit,
 * on the core it is built for. Random layers from a fixed seed: odd sizes, channel counts that
 * are not multiples of four, strides, both paddings, windows larger than the image, extreme
 * zero points, multipliers and shifts. Built without a model:
 *
 *   make BOARD=mps2_an386 APP_SRCS=firmware/bench/kernel_check.c BUILD_DIR=build/check
 *
 * (tests/firmware/test_fast_kernels_on_cores.py builds and runs it on every emulated core.)
 * UART output, one line per kernel, then a semihosting SYS_EXIT:
 *
 *   check <kernel> <configs> ok
 *   check <kernel> mismatch config <i> <what> at <index>: fast <v> reference <v> (<layer>)
 *   check done
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "bench_support.h"
#include "board_config.h"
#include "ts_board.h"
#include "ts_kernels.h"

TS_BOARD_DEFINE_STACK(4096);

#define CONFIGS 320u
#define ARENA_BYTES (64u * 1024u) /* mps2_an385 has 96 KB of RAM */

static uint8_t s_arena[ARENA_BYTES] __attribute__((aligned(8)));
static size_t s_arena_used;
static uint32_t s_rng = 0x2545f491u;

/* ---- data ------------------------------------------------------------------------------------ */

static void *take(size_t bytes)
{
    void *p = &s_arena[s_arena_used];
    s_arena_used += (bytes + 7u) & ~(size_t)7u;
    if (s_arena_used > ARENA_BYTES) {
        put_str("check error arena\n");
        for (;;) {
        }
    }
    return p;
}

static uint32_t rnd(void)
{
    return xorshift32(&s_rng);
}

/* uniform in [lo, hi] */
static int32_t rnd_in(int32_t lo, int32_t hi)
{
    return lo + (int32_t)(rnd() % (uint32_t)(hi - lo + 1));
}

static int8_t *rnd_i8(size_t n)
{
    int8_t *t = take(n);
    for (size_t i = 0; i < n; ++i) {
        t[i] = (int8_t)rnd_in(-128, 127);
    }
    return t;
}

/* a zero point: half the time one of the extremes */
static int32_t rnd_zp(void)
{
    static const int32_t edge[4] = {-128, 127, -127, 0};
    return rnd() % 2u ? edge[rnd() % 4u] : rnd_in(-128, 127);
}

/* Per-channel bias, multiplier and shift: a third of the layers anywhere in int32 (any shift
 * ts_quantize_multiplier can give), the rest what a trained layer has. */
static void rnd_channels(ts_params_t *p, size_t c_n, int extreme)
{
    p->bias = take(c_n * sizeof(int32_t));
    p->out_mult = take(c_n * sizeof(int32_t));
    p->out_shift = take(c_n * sizeof(int32_t));
    p->w_scale = take(c_n * sizeof(float));
    for (size_t c = 0; c < c_n; ++c) {
        p->bias[c] = extreme ? (int32_t)rnd() : rnd_in(-200000, 200000);
        p->out_mult[c] = extreme ? (int32_t)rnd() : rnd_in(1 << 30, INT32_MAX);
        p->out_shift[c] = extreme ? rnd_in(-31, 30) : rnd_in(-14, 1);
        p->w_scale[c] = 0.001f * (float)rnd_in(1, 100);
    }
    if (extreme && c_n > 1u) {
        p->out_mult[0] = INT32_MIN;
        p->out_mult[1] = 0;
    }
}

static int report_i8(const char *kernel, uint32_t cfg, const char *what, const int8_t *fast,
                     const int8_t *ref, size_t n)
{
    for (size_t i = 0; i < n; ++i) {
        if (fast[i] != ref[i]) {
            put_str("check ");
            put_str(kernel);
            put_str(" mismatch config ");
            put_i32((int32_t)cfg);
            put_str(" ");
            put_str(what);
            put_str(" at ");
            put_i32((int32_t)i);
            put_str(": fast ");
            put_i32(fast[i]);
            put_str(" reference ");
            put_i32(ref[i]);
            put_str("\n");
            return 1;
        }
    }
    return 0;
}

static int report_f32(const char *kernel, uint32_t cfg, const char *what, const float *fast,
                      const float *ref, size_t n)
{
    if (memcmp(fast, ref, n * sizeof(float)) == 0) {
        return 0;
    }
    for (size_t i = 0; i < n; ++i) {
        if (memcmp(&fast[i], &ref[i], sizeof(float)) != 0) {
            uint32_t a, b;
            memcpy(&a, &fast[i], sizeof a);
            memcpy(&b, &ref[i], sizeof b);
            put_str("check ");
            put_str(kernel);
            put_str(" mismatch config ");
            put_i32((int32_t)cfg);
            put_str(" ");
            put_str(what);
            put_str(" at ");
            put_i32((int32_t)i);
            put_str(": fast bits ");
            put_i32((int32_t)a);
            put_str(" reference bits ");
            put_i32((int32_t)b);
            put_str("\n");
            return 1;
        }
    }
    return 0;
}

static void done(const char *kernel, int bad)
{
    if (!bad) {
        put_str("check ");
        put_str(kernel);
        put_str(" ");
        put_i32((int32_t)CONFIGS);
        put_str(" ok\n");
    }
}

/* ---- convolution ----------------------------------------------------------------------------- */

static ts_conv_layer_t rnd_conv(uint32_t cfg, int depthwise)
{
    for (;;) {
        s_arena_used = 0;
        ts_conv_layer_t l;
        memset(&l, 0, sizeof l);
        const int one_d = cfg % 5u == 0u;
        l.in.h = (uint16_t)(one_d ? 1 : rnd_in(1, 11));
        l.in.w = (uint16_t)rnd_in(1, one_d ? 40 : 11);
        /* first layers (1-3 channels) often, channel counts off multiples of four */
        l.in.c = (uint16_t)(cfg % 3u == 0u ? rnd_in(1, 3) : rnd_in(1, depthwise ? 40 : 13));
        l.out.c = depthwise ? l.in.c : (uint16_t)rnd_in(1, 11);
        l.depthwise = (uint8_t)depthwise;
        l.kh = (uint16_t)(one_d ? 1 : rnd_in(1, 5));
        l.kw = (uint16_t)rnd_in(1, 5);
        l.stride_h = (uint8_t)rnd_in(1, 3);
        l.stride_w = (uint8_t)rnd_in(1, 3);
        l.padding = (uint8_t)(rnd() % 2u);
        l.act = (uint8_t)(rnd() % 3u);
        l.out.h = (uint16_t)ts_conv_out_size(l.padding, l.in.h, l.kh, l.stride_h);
        l.out.w = (uint16_t)ts_conv_out_size(l.padding, l.in.w, l.kw, l.stride_w);
        if (l.out.h == 0u || l.out.w == 0u) {
            continue;
        }
        const uint32_t k = (uint32_t)l.kh * l.kw * (depthwise ? 1u : l.in.c);
        l.p.channels = l.out.c;
        l.p.per_channel = k;
        l.p.layout = depthwise ? TS_CHANNEL_LAST : TS_CHANNEL_FIRST;
        l.p.in_q.scale = 0.02f;
        l.p.in_q.zero_point = rnd_zp();
        l.p.out_q.scale = 0.05f;
        l.p.out_q.zero_point = rnd_zp();
        l.p.w = rnd_i8((size_t)k * l.out.c);
        rnd_channels(&l.p, l.out.c, cfg % 3u == 1u);
        l.p.master_w = take((size_t)k * l.out.c * sizeof(float));
        l.p.master_b = take((size_t)l.out.c * sizeof(float));
        l.p.grad_w = take((size_t)k * l.out.c * sizeof(float));
        l.p.grad_b = take((size_t)l.out.c * sizeof(float));
        if (ts_conv_check(&l) == TS_OK) {
            return l;
        }
    }
}

static void check_conv_forward(int depthwise)
{
    const char *name = depthwise ? "depthwise_forward" : "conv2d_forward";
    void (*ref)(const ts_conv_layer_t *, const int8_t *, int8_t *, float *, float *) =
        depthwise ? ts_depthwise_conv2d_forward : ts_conv2d_forward;
    void (*fast)(const ts_conv_layer_t *, const int8_t *, int8_t *, float *, float *) =
        depthwise ? ts_depthwise_conv2d_forward_fast : ts_conv2d_forward_fast;
    int bad = 0;
    for (uint32_t cfg = 0; cfg < CONFIGS && !bad; ++cfg) {
        const ts_conv_layer_t l = rnd_conv(cfg, depthwise);
        const size_t n_x = (size_t)l.in.h * l.in.w * l.in.c;
        const size_t n_y = (size_t)l.out.h * l.out.w * l.out.c;
        const int8_t *x = rnd_i8(n_x);
        int8_t *y_ref = take(n_y);
        int8_t *y_fast = take(n_y);
        float r_ref[2] = {1e30f, -1e30f}, r_fast[2] = {1e30f, -1e30f};
        ref(&l, x, y_ref, &r_ref[0], &r_ref[1]);
        fast(&l, x, y_fast, &r_fast[0], &r_fast[1]);
        bad = report_i8(name, cfg, "y", y_fast, y_ref, n_y) ||
              report_f32(name, cfg, "range", r_fast, r_ref, 2);
        memset(y_fast, 0x5a, n_y);
        fast(&l, x, y_fast, NULL, NULL);
        bad = bad || report_i8(name, cfg, "y (no range)", y_fast, y_ref, n_y);
    }
    done(name, bad);
}

/* ---- fully connected ------------------------------------------------------------------------- */

/* max_w: the most weights (the backward checks keep two float copies of their gradient) */
static ts_fc_layer_t rnd_fc(uint32_t cfg, uint32_t max_w)
{
    s_arena_used = 0;
    ts_fc_layer_t l;
    memset(&l, 0, sizeof l);
    do {
        l.in_features = (uint16_t)(cfg % 4u == 0u ? rnd_in(1, 7) : rnd_in(1, 300));
        l.out_features = (uint16_t)(cfg % 7u == 0u ? rnd_in(33, 70) : rnd_in(1, 40));
    } while ((uint32_t)l.in_features * l.out_features > max_w);
    l.act = (uint8_t)(rnd() % 2u);
    l.p.channels = l.out_features;
    l.p.per_channel = l.in_features;
    l.p.layout = TS_CHANNEL_FIRST;
    l.p.in_q.scale = 0.02f;
    l.p.in_q.zero_point = rnd_zp();
    l.p.out_q.scale = 0.05f;
    l.p.out_q.zero_point = rnd_zp();
    const size_t n_w = (size_t)l.in_features * l.out_features;
    l.p.w = rnd_i8(n_w);
    rnd_channels(&l.p, l.out_features, cfg % 3u == 1u);
    return l; /* the forward reads no training state */
}

static void check_fc_forward(void)
{
    int bad = 0;
    for (uint32_t cfg = 0; cfg < CONFIGS && !bad; ++cfg) {
        const ts_fc_layer_t l = rnd_fc(cfg, 21000u);
        const size_t k_n = l.in_features, c_n = l.out_features;
        const int8_t *x = rnd_i8(k_n);
        int8_t *y_ref = take(c_n);
        int8_t *y_fast = take(c_n);
        int32_t *a_ref = take(c_n * sizeof(int32_t));
        int32_t *a_fast = take(c_n * sizeof(int32_t));
        ts_fully_connected_forward(&l, x, y_ref, a_ref);
        ts_fully_connected_forward_fast(&l, x, y_fast, a_fast);
        bad = report_i8("fc_forward", cfg, "y", y_fast, y_ref, c_n) ||
              report_i8("fc_forward", cfg, "acc", (const int8_t *)a_fast,
                        (const int8_t *)a_ref, c_n * sizeof(int32_t));
        memset(y_fast, 0x5a, c_n);
        ts_fully_connected_forward_fast(&l, x, y_fast, NULL);
        bad = bad || report_i8("fc_forward", cfg, "y (no acc)", y_fast, y_ref, c_n);
    }
    done("fc_forward", bad);
}

/* ---- backward -------------------------------------------------------------------------------- */

/* an output gradient: zero where a ReLU or a max pool would mask it (about 60 %), else any
 * int8, the extremes often */
static int8_t *rnd_grad(size_t n)
{
    int8_t *t = take(n);
    for (size_t i = 0; i < n; ++i) {
        const uint32_t u = rnd() % 10u;
        t[i] = (int8_t)(u < 6u ? 0 : u == 6u ? (rnd() % 2u ? -128 : 127) : rnd_in(-128, 127));
    }
    return t;
}

/* gradient sums as training leaves them: finite, never -0.0 */
static float *rnd_sums(size_t n)
{
    float *f = take(n * sizeof(float));
    for (size_t i = 0; i < n; ++i) {
        f[i] = i % 5u == 0u ? 0.0f : (float)rnd_in(-100000, 100000) * 1e-3f;
    }
    return f;
}

static float *copy_f32(const float *a, size_t n)
{
    float *f = take(n * sizeof(float));
    memcpy(f, a, n * sizeof(float));
    return f;
}

/* a gradient scale, sometimes zero */
static float rnd_scale(void)
{
    return rnd() % 16u == 0u ? 0.0f : 1e-4f * (float)rnd_in(1, 1000);
}

static void check_grad_requantize(void)
{
    int bad = 0;
    for (uint32_t cfg = 0; cfg < CONFIGS && !bad; ++cfg) {
        s_arena_used = 0;
        const size_t n = (size_t)rnd_in(1, 700);
        int32_t *a = take(n * sizeof(int32_t));
        const uint32_t bits = (uint32_t)rnd_in(0, 31); /* magnitudes from tiny to all of int32 */
        for (size_t i = 0; i < n; ++i) {
            a[i] = (int32_t)(rnd() >> (31u - bits)) * (rnd() % 2u ? 1 : -1);
        }
        if (cfg % 7u == 0u) {
            a[rnd() % n] = INT32_MIN;
        }
        int8_t *q_ref = take(n), *q_fast = take(n);
        const uint32_t m_ref = ts_grad_requantize(a, n, q_ref);
        const uint32_t m_fast = ts_grad_requantize_fast(a, n, q_fast);
        bad = report_i8("grad_requantize", cfg, "gx", q_fast, q_ref, n) ||
              report_i8("grad_requantize", cfg, "m", (const int8_t *)&m_fast,
                        (const int8_t *)&m_ref, sizeof m_ref);
    }
    done("grad_requantize", bad);
}

static void check_fc_backward(void)
{
    int bad_w = 0, bad_i = 0;
    for (uint32_t cfg = 0; cfg < CONFIGS && !(bad_w || bad_i); ++cfg) {
        ts_fc_layer_t l = rnd_fc(cfg, 3000u);
        const size_t k_n = l.in_features, c_n = l.out_features, n_w = k_n * c_n;
        const int8_t *x = rnd_i8(k_n);
        const int8_t *g = rnd_grad(c_n);
        const float s_g = rnd_scale();
        float *gw = rnd_sums(n_w), *gb = rnd_sums(c_n);
        float *gw0 = copy_f32(gw, n_w), *gb0 = copy_f32(gb, c_n);
        l.p.grad_w = gw;
        l.p.grad_b = gb;
        ts_fully_connected_backward_weights(&l, x, g, s_g);
        l.p.grad_w = gw0;
        l.p.grad_b = gb0;
        ts_fully_connected_backward_weights_fast(&l, x, g, s_g);
        bad_w = report_f32("fc_backward_weights", cfg, "grad_w", gw0, gw, n_w) ||
                report_f32("fc_backward_weights", cfg, "grad_b", gb0, gb, c_n);

        for (size_t c = 0; c < c_n; ++c) {
            l.p.w_scale[c] = rnd() % 9u == 0u ? 0.0f : 1e-3f * (float)rnd_in(1, 1000);
        }
        int32_t *scratch = take(k_n * sizeof(int32_t));
        int8_t *gx_ref = take(k_n), *gx_fast = take(k_n);
        float sx[2] = {-1.0f, -1.0f};
        ts_fully_connected_backward_input(&l, g, s_g, scratch, gx_ref, &sx[0]);
        memset(scratch, 0x5a, k_n * sizeof(int32_t));
        ts_fully_connected_backward_input_fast(&l, g, s_g, scratch, gx_fast, &sx[1]);
        bad_i = report_i8("fc_backward_input", cfg, "gx", gx_fast, gx_ref, k_n) ||
                report_f32("fc_backward_input", cfg, "s_gx", &sx[1], &sx[0], 1);
    }
    done("fc_backward_weights", bad_w);
    done("fc_backward_input", bad_i);
}

static void check_conv_backward(void)
{
    int bad_w = 0, bad_i = 0;
    for (uint32_t cfg = 0; cfg < CONFIGS && !(bad_w || bad_i); ++cfg) {
        ts_conv_layer_t l = rnd_conv(cfg, 0);
        const size_t n_x = (size_t)l.in.h * l.in.w * l.in.c;
        const size_t n_y = (size_t)l.out.h * l.out.w * l.out.c;
        const size_t n_w = (size_t)l.p.per_channel * l.out.c;
        const int8_t *x = rnd_i8(n_x);
        const int8_t *g = rnd_grad(n_y);
        const float s_g = rnd_scale();
        float *gw = rnd_sums(n_w), *gb = rnd_sums(l.out.c);
        float *gw0 = copy_f32(gw, n_w), *gb0 = copy_f32(gb, l.out.c);
        l.p.grad_w = gw;
        l.p.grad_b = gb;
        ts_conv2d_backward_weights(&l, x, g, s_g);
        l.p.grad_w = gw0;
        l.p.grad_b = gb0;
        int32_t *ws = take(ts_conv2d_backward_weights_fast_get_buffer_size(&l));
        ts_conv2d_backward_weights_fast(&l, x, g, s_g, ws);
        bad_w = report_f32("conv2d_backward_weights", cfg, "grad_w", gw0, gw, n_w) ||
                report_f32("conv2d_backward_weights", cfg, "grad_b", gb0, gb, l.out.c);

        for (size_t c = 0; c < l.out.c; ++c) {
            l.p.w_scale[c] = rnd() % 9u == 0u ? 0.0f : 1e-3f * (float)rnd_in(1, 1000);
        }
        const size_t bytes = ts_conv2d_backward_input_get_buffer_size(&l);
        int32_t *scratch = take(bytes);
        int8_t *gx_ref = take(n_x), *gx_fast = take(n_x);
        float sx[2] = {-1.0f, -1.0f};
        ts_conv2d_backward_input(&l, g, s_g, scratch, gx_ref, &sx[0]);
        memset(scratch, 0x5a, bytes);
        ts_conv2d_backward_input_fast(&l, g, s_g, scratch, gx_fast, &sx[1]);
        bad_i = report_i8("conv2d_backward_input", cfg, "gx", gx_fast, gx_ref, n_x) ||
                report_f32("conv2d_backward_input", cfg, "s_gx", &sx[1], &sx[0], 1);
    }
    done("conv2d_backward_weights", bad_w);
    done("conv2d_backward_input", bad_i);
}

/* ---- main ------------------------------------------------------------------------------------ */

int main(void)
{
    ts_board_init();
    put_str("check start ");
    put_str(ts_board_name());
    put_str("\n");
    check_conv_forward(0);
    check_conv_forward(1);
    check_fc_forward();
    check_grad_requantize();
    check_fc_backward();
    check_conv_backward();
    put_str("check done\n");
    semihosting_exit();
    for (;;) {
    }
}
