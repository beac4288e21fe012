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

#include "board_config.h"
#include "ts_board.h"
#include "ts_kernels.h"

TS_BOARD_DEFINE_STACK(4096);

#define CONFIGS 320u
#define ARENA_BYTES (48u * 1024u)

static uint8_t s_arena[ARENA_BYTES] __attribute__((aligned(8)));
static size_t s_arena_used;
static uint32_t s_rng = 0x2545f491u;

/* ---- output ---------------------------------------------------------------------------------- */

static void put_str(const char *s)
{
    ts_board_uart_write((const uint8_t *)s, strlen(s));
}

static void put_i32(int32_t v)
{
    char buf[12];
    size_t i = sizeof buf;
    uint32_t u = v < 0 ? 0u - (uint32_t)v : (uint32_t)v;
    buf[--i] = '\0';
    do {
        buf[--i] = (char)('0' + u % 10u);
        u /= 10u;
    } while (u != 0u);
    if (v < 0) {
        buf[--i] = '-';
    }
    put_str(&buf[i]);
}

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
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 17;
    s_rng ^= s_rng << 5;
    return s_rng;
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

static ts_fc_layer_t rnd_fc(uint32_t cfg)
{
    s_arena_used = 0;
    ts_fc_layer_t l;
    memset(&l, 0, sizeof l);
    l.in_features = (uint16_t)(cfg % 4u == 0u ? rnd_in(1, 7) : rnd_in(1, 300));
    l.out_features = (uint16_t)(cfg % 7u == 0u ? rnd_in(33, 70) : rnd_in(1, 40));
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
        const ts_fc_layer_t l = rnd_fc(cfg);
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

/* ---- main ------------------------------------------------------------------------------------ */

static void semihosting_exit(void)
{
    register uint32_t r0 __asm("r0") = 0x18u;
    register uint32_t r1 __asm("r1") = 0x20026u;
    __asm volatile("bkpt 0xab" : : "r"(r0), "r"(r1) : "memory");
}

int main(void)
{
    ts_board_init();
    put_str("check start ");
    put_str(ts_board_name());
    put_str("\n");
    check_conv_forward(0);
    check_conv_forward(1);
    check_fc_forward();
    put_str("check done\n");
    semihosting_exit();
    for (;;) {
    }
}
