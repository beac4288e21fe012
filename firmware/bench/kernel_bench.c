/*
 * Kernel bench: runs each int8 kernel once on a fixed shape with deterministic pseudo-random
 * data, between two marker calls that scripts/qemu_plugins/insn_count.c counts instructions
 * between (host/costmodel/count.py drives it). Built without a model:
 *
 *   make BOARD=mps2_an386 APP_SRCS=firmware/bench/kernel_bench.c BUILD_DIR=build/bench
 *
 * UART output, one line per marked interval, in interval order (interval 0 is the empty pair
 * whose count is the markers' own overhead):
 *
 *   bench <n> <kernel> <shape> <macs>
 *   ...
 *   bench done
 *
 * then a semihosting SYS_EXIT ends QEMU (run with -semihosting-config enable=on). Interrupts are
 * masked between the markers so that no SysTick handler lands in a count.
 *
 * Built with -DTS_BENCH_CASES and a generated bench_cases.h on the include path, it runs the
 * case table of host/costmodel/model.py instead
 * (`python -m tinysplit.host.costmodel.model --fit`): every kernel a training step calls,
 * forward and backward, on many shapes, densities and strides, one interval per case,
 * reported as `bench <n> <kind> case<i> <macs>`. The instruction cost model is fitted to
 * those counts.
 *
 * Built with -DTS_BENCH_LINK it runs the link suite instead (host/costmodel/count.py
 * count_link): framing one payload in clear (ts_frame_encode), sealed (ts_secure_encode) and
 * opening a sealed one (ts_secure_open), for payloads of several sizes, reported as
 * `bench <n> <function> <bytes>B <bytes>`.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "bench_support.h"
#include "board_config.h"
#include "ts_board.h"
#include "ts_crc32.h"
#include "ts_frame.h"
#include "ts_kernels.h"
#include "ts_secure.h"

TS_BOARD_DEFINE_STACK(4096);

#define ARENA_BYTES (80u * 1024u)

static uint8_t s_arena[ARENA_BYTES] __attribute__((aligned(8)));
static size_t s_arena_used;
static uint32_t s_rng = 0x12345678u;
static uint32_t s_interval;
static volatile uint32_t s_marker;

/* ---- markers: the plugin gets their addresses from arm-none-eabi-nm -------------------------- */

/* noipa: never inlined, cloned or folded together (their bodies differ anyway). */
__attribute__((noipa)) void ts_bench_begin(void)
{
    s_marker = 1u;
}

__attribute__((noipa)) void ts_bench_end(void)
{
    s_marker = 2u;
}

static inline void irq_off(void)
{
    __asm volatile("cpsid i" ::: "memory");
}

static inline void irq_on(void)
{
    __asm volatile("cpsie i" ::: "memory");
}

/* ---- output ---------------------------------------------------------------------------------- */

/** Names the interval just measured (the plugin numbers them in the same order). */
static void report(const char *kernel, const char *shape, uint32_t macs)
{
    put_str("bench ");
    put_u32(s_interval++);
    put_str(" ");
    put_str(kernel);
    put_str(" ");
    put_str(shape);
    put_str(" ");
    put_u32(macs);
    put_str("\n");
}

/* ---- data ------------------------------------------------------------------------------------ */

static void *arena_take(size_t bytes)
{
    void *p = &s_arena[s_arena_used];
    s_arena_used += (bytes + 7u) & ~(size_t)7u;
    if (s_arena_used > ARENA_BYTES) {
        put_str("bench error arena\n");
        for (;;) {
        }
    }
    return p;
}

static uint32_t rng_next(void)
{
    return xorshift32(&s_rng);
}

/* int8 in [-127, 127]; nonzero: a dense gradient (the backward kernels skip zero taps) */
static int8_t rand_i8(int nonzero)
{
    for (;;) {
        const int32_t v = (int32_t)(rng_next() % 255u) - 127;
        if (!nonzero || v != 0) {
            return (int8_t)v;
        }
    }
}

static int8_t *rand_tensor(size_t n, int nonzero)
{
    int8_t *t = arena_take(n);
    for (size_t i = 0; i < n; ++i) {
        t[i] = rand_i8(nonzero);
    }
    return t;
}

static float *zeros_f32(size_t n)
{
    float *f = arena_take(n * sizeof(float));
    for (size_t i = 0; i < n; ++i) {
        f[i] = 0.0f;
    }
    return f;
}

/* Per-channel tensors shared by both layer kinds: bias, scales, multiplier ~0.7 * 2^-7. */
typedef struct {
    int32_t *bias;
    float *w_scale;
    int32_t *out_mult;
    int32_t *out_shift;
    float *master_b;
    float *grad_b;
} channel_tensors_t;

static channel_tensors_t channel_tensors(size_t c_n)
{
    channel_tensors_t t;
    t.bias = arena_take(c_n * sizeof(int32_t));
    t.w_scale = zeros_f32(c_n);
    t.out_mult = arena_take(c_n * sizeof(int32_t));
    t.out_shift = arena_take(c_n * sizeof(int32_t));
    t.master_b = zeros_f32(c_n);
    t.grad_b = zeros_f32(c_n);
    for (size_t c = 0; c < c_n; ++c) {
        t.bias[c] = (int32_t)(rng_next() % 2001u) - 1000;
        t.w_scale[c] = 0.01f;
        t.out_mult[c] = 1518500250 + (int32_t)(rng_next() % 1000u);
        t.out_shift[c] = -7;
    }
    return t;
}

static const ts_quant_t IN_Q = {0.05f, -3};
static const ts_quant_t OUT_Q = {0.1f, 5};
static const float S_G = 0.001f;

/* ---- fully connected ------------------------------------------------------------------------- */

static ts_fc_layer_t fc_layer(uint16_t k_n, uint16_t c_n, int training)
{
    const size_t n_w = (size_t)k_n * c_n;
    const channel_tensors_t t = channel_tensors(c_n);
    ts_fc_layer_t l = {0};
    l.in_features = k_n;
    l.out_features = c_n;
    l.act = TS_ACT_RELU;
    l.p.channels = c_n;
    l.p.per_channel = k_n;
    l.p.layout = TS_CHANNEL_FIRST;
    l.p.in_q = IN_Q;
    l.p.out_q = OUT_Q;
    l.p.w = rand_tensor(n_w, 0);
    l.p.bias = t.bias;
    l.p.w_scale = t.w_scale;
    l.p.out_mult = t.out_mult;
    l.p.out_shift = t.out_shift;
    l.p.master_b = t.master_b;
    l.p.grad_b = t.grad_b;
    if (training) {
        l.p.master_w = zeros_f32(n_w);
        l.p.grad_w = zeros_f32(n_w);
    }
    return l;
}

static void bench_fc(uint16_t k_n, uint16_t c_n, const char *shape, int backward)
{
    s_arena_used = 0;
    ts_fc_layer_t l = fc_layer(k_n, c_n, backward);
    const int8_t *x = rand_tensor(k_n, 0);
    int8_t *y = arena_take(c_n);
    const uint32_t macs = (uint32_t)k_n * c_n;

    irq_off();
    ts_bench_begin();
    ts_fully_connected_forward(&l, x, y, NULL);
    ts_bench_end();
    irq_on();
    report("fc_forward", shape, macs);
    irq_off();
    ts_bench_begin();
    ts_fully_connected_forward_fast(&l, x, y, NULL);
    ts_bench_end();
    irq_on();
    report("fc_forward_fast", shape, macs);
    if (!backward) {
        return;
    }

    const int8_t *g = rand_tensor(c_n, 1);
    irq_off();
    ts_bench_begin();
    ts_fully_connected_backward_weights(&l, x, g, S_G);
    ts_bench_end();
    irq_on();
    report("fc_backward_weights", shape, macs);
    irq_off();
    ts_bench_begin();
    ts_fully_connected_backward_weights_fast(&l, x, g, S_G);
    ts_bench_end();
    irq_on();
    report("fc_backward_weights_fast", shape, macs);

    int32_t *scratch = arena_take((size_t)k_n * sizeof(int32_t));
    int8_t *gx = arena_take(k_n);
    float s_gx = 0.0f;
    irq_off();
    ts_bench_begin();
    ts_fully_connected_backward_input(&l, g, S_G, scratch, gx, &s_gx);
    ts_bench_end();
    irq_on();
    report("fc_backward_input", shape, macs);
    irq_off();
    ts_bench_begin();
    ts_fully_connected_backward_input_fast(&l, g, S_G, scratch, gx, &s_gx);
    ts_bench_end();
    irq_on();
    report("fc_backward_input_fast", shape, macs);
}

/* ---- convolutions ---------------------------------------------------------------------------- */

typedef enum { CONV_FORWARD, CONV_BACKWARD_WEIGHTS, CONV_BACKWARD_INPUT } conv_pass_t;

static void bench_conv(ts_dims_t in, uint16_t c_out, uint16_t kh, uint16_t kw, uint8_t padding,
                       int depthwise, const char *shape, int backward)
{
    s_arena_used = 0;
    ts_conv_layer_t l = {0};
    l.in = in;
    l.out.h = (uint16_t)ts_conv_out_size(padding, in.h, kh, 1);
    l.out.w = (uint16_t)ts_conv_out_size(padding, in.w, kw, 1);
    l.out.c = c_out;
    l.kh = kh;
    l.kw = kw;
    l.stride_h = 1;
    l.stride_w = 1;
    l.padding = padding;
    l.act = TS_ACT_RELU;
    l.depthwise = (uint8_t)depthwise;
    l.p.channels = c_out;
    l.p.per_channel = (uint32_t)kh * kw * (depthwise ? 1u : in.c);
    l.p.layout = depthwise ? TS_CHANNEL_LAST : TS_CHANNEL_FIRST;
    l.p.in_q = IN_Q;
    l.p.out_q = OUT_Q;
    const size_t n_w = (size_t)kh * kw * (depthwise ? c_out : (size_t)c_out * in.c);
    const channel_tensors_t t = channel_tensors(c_out);
    l.p.w = rand_tensor(n_w, 0);
    l.p.bias = t.bias;
    l.p.w_scale = t.w_scale;
    l.p.out_mult = t.out_mult;
    l.p.out_shift = t.out_shift;
    l.p.master_w = zeros_f32(n_w);
    l.p.master_b = t.master_b;
    l.p.grad_w = zeros_f32(n_w);
    l.p.grad_b = t.grad_b;
    if (ts_conv_check(&l) != TS_OK) {
        put_str("bench error conv_check ");
        put_str(shape);
        put_str("\n");
        return;
    }

    const size_t n_x = (size_t)in.h * in.w * in.c;
    const size_t n_y = (size_t)l.out.h * l.out.w * l.out.c;
    const int8_t *x = rand_tensor(n_x, 0);
    int8_t *y = arena_take(n_y);
    const uint32_t macs =
        (uint32_t)(l.out.h * l.out.w) * c_out * kh * kw * (depthwise ? 1u : in.c);

    irq_off();
    ts_bench_begin();
    if (depthwise) {
        ts_depthwise_conv2d_forward(&l, x, y, NULL, NULL);
    } else {
        ts_conv2d_forward(&l, x, y, NULL, NULL);
    }
    ts_bench_end();
    irq_on();
    report(depthwise ? "depthwise_forward" : "conv2d_forward", shape, macs);
    irq_off();
    ts_bench_begin();
    if (depthwise) {
        ts_depthwise_conv2d_forward_fast(&l, x, y, NULL, NULL);
    } else {
        ts_conv2d_forward_fast(&l, x, y, NULL, NULL);
    }
    ts_bench_end();
    irq_on();
    report(depthwise ? "depthwise_forward_fast" : "conv2d_forward_fast", shape, macs);
    if (!backward || depthwise) {
        return;
    }

    const int8_t *g = rand_tensor(n_y, 1);
    irq_off();
    ts_bench_begin();
    ts_conv2d_backward_weights(&l, x, g, S_G);
    ts_bench_end();
    irq_on();
    report("conv2d_backward_weights", shape, macs);
    int32_t *ws = arena_take(ts_conv2d_backward_weights_fast_get_buffer_size(&l));
    irq_off();
    ts_bench_begin();
    ts_conv2d_backward_weights_fast(&l, x, g, S_G, ws);
    ts_bench_end();
    irq_on();
    report("conv2d_backward_weights_fast", shape, macs);

    int32_t *scratch = arena_take(ts_conv2d_backward_input_get_buffer_size(&l));
    int8_t *gx = arena_take(n_x);
    float s_gx = 0.0f;
    irq_off();
    ts_bench_begin();
    ts_conv2d_backward_input(&l, g, S_G, scratch, gx, &s_gx);
    ts_bench_end();
    irq_on();
    report("conv2d_backward_input", shape, macs);
    irq_off();
    ts_bench_begin();
    ts_conv2d_backward_input_fast(&l, g, S_G, scratch, gx, &s_gx);
    ts_bench_end();
    irq_on();
    report("conv2d_backward_input_fast", shape, macs);
}

/** The shapes of ../shared/KERNEL-ANCHORS.md (and the backward kernels on two of them). */
static void run_anchor_suite(void)
{
    bench_conv((ts_dims_t){28, 28, 1}, 8, 3, 3, TS_PADDING_SAME, 0, "28x28x1->8,3x3,same", 0);
    bench_conv((ts_dims_t){14, 14, 8}, 16, 3, 3, TS_PADDING_SAME, 0, "14x14x8->16,3x3,same", 1);
    bench_conv((ts_dims_t){1, 100, 6}, 8, 1, 5, TS_PADDING_VALID, 0, "100x6->8,k5,valid", 0);
    bench_conv((ts_dims_t){14, 14, 16}, 16, 3, 3, TS_PADDING_SAME, 1, "14x14x16,3x3,same", 0);
    bench_fc(64, 32, "64->32", 1);
    bench_fc(1568, 32, "1568->32", 0);
}

/* ---- the link suite: what sealing a frame costs (firmware/protocol/ts_secure.c) --------------- */

#ifdef TS_BENCH_LINK
#define TS_BENCH_LINK_SUITE 1
#else
#define TS_BENCH_LINK_SUITE 0
#endif

static void bench_link_size(uint16_t n)
{
    static uint8_t wire[TS_WIRE_MAX_ENCODED];
    static uint8_t body[TS_WIRE_MAX_WIRE_PAYLOAD];
    static const uint8_t key[32] = {7};
    char shape[12];
    size_t k = 0;
    uint32_t v = n;
    char digits[8];
    size_t d = 0;
    do {
        digits[d++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0u);
    while (d > 0u) {
        shape[k++] = digits[--d];
    }
    shape[k++] = 'B';
    shape[k] = '\0';

    s_arena_used = 0;
    const uint8_t *payload = (const uint8_t *)rand_tensor(n, 0);
    ts_header_t h = {0x11u, 0x5354u, 7u, 0u, n};
    ts_secure_t tx, rx;
    ts_secure_start(&tx, key, 0x5354u);
    ts_secure_start(&rx, key, 0x5354u);

    irq_off();
    ts_bench_begin();
    size_t m = ts_frame_encode(&h, payload, n, wire, sizeof wire);
    ts_bench_end();
    irq_on();
    report("frame_encode", shape, n);

    irq_off();
    ts_bench_begin();
    m = ts_secure_encode(&tx, TS_DIR_TO_HOST, &h, payload, n, wire, sizeof wire);
    ts_bench_end();
    irq_on();
    report("seal_encode", shape, n);

    /* the sealed frame as the receiver's decoder holds it: header decoded, payload raw */
    ts_frame_decoder_t *dec = arena_take(sizeof *dec);
    ts_frame_decoder_init(dec);
    const uint8_t *got = NULL;
    ts_header_t hd;
    int ok = 0;
    for (size_t i = 0; i < m; ++i) {
        ok |= ts_frame_decoder_push(dec, wire[i], &hd, &got);
    }
    for (size_t i = 0; ok && i < hd.length; ++i) {
        body[i] = got[i];
    }
    uint16_t plain = 0;
    irq_off();
    ts_bench_begin();
    ts_seal_result_t r = ts_secure_open(&rx, TS_DIR_TO_HOST, body, &hd, &plain);
    ts_bench_end();
    irq_on();
    if (!ok || r != TS_SEAL_OK || plain != n) {
        put_str("bench error seal_open\n");
        return;
    }
    report("seal_open", shape, n);
}

static void run_link_suite(void)
{
    static const uint16_t sizes[] = {0, 8, 16, 64, 256, 1024, 2048};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; ++i) {
        bench_link_size(sizes[i]);
    }
}

/* ---- the fit suite (host/costmodel/model.py) ------------------------------------------------ */

#ifdef TS_BENCH_CASES
/** What one case runs; host/costmodel/model.py's KINDS lists the same names in the same order. */
typedef enum {
    BK_CONV_FORWARD,           /**< ts_conv2d_forward, no range observation (a recompute) */
    BK_CONV_FORWARD_OBSERVE,   /**< ts_conv2d_forward with bmin/bmax (a training forward) */
    BK_CONV_BACKWARD_WEIGHTS,  /**< ts_conv2d_backward_weights */
    BK_CONV_BACKWARD_INPUT,    /**< ts_conv2d_backward_input */
    BK_DW_FORWARD,             /**< the same four for ts_depthwise_conv2d_* */
    BK_DW_FORWARD_OBSERVE,
    BK_DW_BACKWARD_WEIGHTS,
    BK_DW_BACKWARD_INPUT,
    BK_FC_FORWARD,             /**< ts_fully_connected_forward with acc_out (for the observer) */
    BK_FC_OBSERVE,             /**< ts_fully_connected_observe_range */
    BK_FC_BACKWARD_WEIGHTS,
    BK_FC_BACKWARD_INPUT,
    BK_MAX_POOL_FORWARD,
    BK_MAX_POOL_BACKWARD,
    BK_AVG_POOL_FORWARD,
    BK_AVG_POOL_BACKWARD,
    BK_ACT_BACKWARD,           /**< ts_act_backward, RELU, n = h * w * c */
    BK_RELU_BACKWARD,          /**< ts_act_backward, RELU, of an FC layer, n = c */
    BK_CONV_SGD,               /**< ts_sgd_step on a conv layer's training state */
    BK_CONV_RANGE_UPDATE,      /**< ts_range_update, same */
    BK_CONV_REQUANTIZE,        /**< ts_requantize, same */
    BK_FC_SGD,                 /**< ts_sgd_step on an FC layer's training state */
    BK_FC_RANGE_UPDATE,        /**< ts_range_update, same */
    BK_FC_REQUANTIZE,          /**< ts_requantize, same */
    BK_FRAME_ENCODE,           /**< ts_frame_encode of a c-byte payload */
    BK_FRAME_DECODE,           /**< ts_frame_decoder_push of every byte of that frame */
    BK_CRC32,                  /**< ts_crc32_update over c bytes */
    BK_N_KINDS
} bench_kind_t;

/** One case. Conv: in [h][w][c] -> c_out, window kh x kw, strides, padding; depthwise: c_out
 *  = c. FC: c inputs -> c_out outputs. Pools: in [h][w][c], window, strides, padding. density:
 *  nonzero gradient elements per 1000 (exactly that share, at random positions). */
typedef struct {
    uint8_t kind;
    uint16_t h, w, c, c_out, kh, kw;
    uint8_t sh, sw, padding;
    uint16_t density;
} bench_case_t;

#include "bench_cases.h" /* static const bench_case_t k_cases[] (generated) */

static const char *const k_kind_names[BK_N_KINDS] = {
    "conv_forward", "conv_forward_observe", "conv_backward_weights", "conv_backward_input",
    "dw_forward", "dw_forward_observe", "dw_backward_weights", "dw_backward_input",
    "fc_forward", "fc_observe", "fc_backward_weights", "fc_backward_input",
    "max_pool_forward", "max_pool_backward", "avg_pool_forward", "avg_pool_backward",
    "act_backward", "relu_backward",
    "conv_sgd", "conv_range_update", "conv_requantize",
    "fc_sgd", "fc_range_update", "fc_requantize",
    "frame_encode", "frame_decode", "crc32",
};

/* A gradient with exactly n * density / 1000 nonzero elements at random positions. */
static int8_t *sparse_grad(size_t n, uint32_t density)
{
    int8_t *g = arena_take(n);
    const size_t nz = n * density / 1000u;
    for (size_t i = 0; i < n; ++i) {
        g[i] = i < nz ? rand_i8(1) : 0;
    }
    for (size_t i = n; i-- > 1;) { /* Fisher-Yates */
        const size_t j = rng_next() % (i + 1u);
        const int8_t t = g[i];
        g[i] = g[j];
        g[j] = t;
    }
    return g;
}

static float *rand_f32(size_t n)
{
    float *f = arena_take(n * sizeof(float));
    for (size_t i = 0; i < n; ++i) {
        f[i] = (float)rand_i8(0) * 0.001f;
    }
    return f;
}

static void begin(void)
{
    irq_off();
    ts_bench_begin();
}

static void end(void)
{
    ts_bench_end();
    irq_on();
}

static void run_conv_case(const bench_case_t *k, int dw)
{
    ts_conv_layer_t l = {0};
    l.in = (ts_dims_t){k->h, k->w, k->c};
    const uint16_t c_out = dw ? k->c : k->c_out;
    l.out.h = (uint16_t)ts_conv_out_size(k->padding, k->h, k->kh, k->sh);
    l.out.w = (uint16_t)ts_conv_out_size(k->padding, k->w, k->kw, k->sw);
    l.out.c = c_out;
    l.kh = k->kh;
    l.kw = k->kw;
    l.stride_h = k->sh;
    l.stride_w = k->sw;
    l.padding = k->padding;
    l.act = TS_ACT_RELU;
    l.depthwise = (uint8_t)dw;
    l.p.channels = c_out;
    l.p.per_channel = (uint32_t)k->kh * k->kw * (dw ? 1u : k->c);
    l.p.layout = dw ? TS_CHANNEL_LAST : TS_CHANNEL_FIRST;
    l.p.in_q = IN_Q;
    l.p.out_q = OUT_Q;
    const size_t n_w = (size_t)k->kh * k->kw * (dw ? c_out : (size_t)c_out * k->c);
    const channel_tensors_t t = channel_tensors(c_out);
    l.p.w = rand_tensor(n_w, 0);
    l.p.bias = t.bias;
    l.p.w_scale = t.w_scale;
    l.p.out_mult = t.out_mult;
    l.p.out_shift = t.out_shift;
    l.p.master_w = rand_f32(n_w);
    l.p.master_b = t.master_b;
    l.p.grad_w = zeros_f32(n_w);
    l.p.grad_b = t.grad_b;
    if (ts_conv_check(&l) != TS_OK) {
        put_str("bench error conv_check\n");
        return;
    }
    const size_t n_x = (size_t)k->h * k->w * k->c;
    const size_t n_y = (size_t)l.out.h * l.out.w * c_out;
    const int8_t *x = rand_tensor(n_x, 0);
    float bmin = INFINITY, bmax = -INFINITY, s_gx = 0.0f;
    switch (k->kind) {
    case BK_CONV_FORWARD:
    case BK_CONV_FORWARD_OBSERVE:
    case BK_DW_FORWARD:
    case BK_DW_FORWARD_OBSERVE: {
        int8_t *y = arena_take(n_y);
        const int obs = k->kind == BK_CONV_FORWARD_OBSERVE || k->kind == BK_DW_FORWARD_OBSERVE;
        begin();
        if (dw) {
            TS_KERNEL(depthwise_conv2d_forward)(&l, x, y, obs ? &bmin : NULL, obs ? &bmax : NULL);
        } else {
            TS_KERNEL(conv2d_forward)(&l, x, y, obs ? &bmin : NULL, obs ? &bmax : NULL);
        }
        end();
        break;
    }
    case BK_CONV_BACKWARD_WEIGHTS:
    case BK_DW_BACKWARD_WEIGHTS: {
        const int8_t *g = sparse_grad(n_y, k->density);
        int32_t *ws = dw ? NULL : arena_take(ts_conv2d_backward_weights_fast_get_buffer_size(&l));
        (void)ws;
        begin();
        if (dw) {
            ts_depthwise_conv2d_backward_weights(&l, x, g, S_G);
        } else {
#ifdef TS_REFERENCE_KERNELS
            ts_conv2d_backward_weights(&l, x, g, S_G);
#else
            ts_conv2d_backward_weights_fast(&l, x, g, S_G, ws);
#endif
        }
        end();
        break;
    }
    case BK_CONV_BACKWARD_INPUT:
    case BK_DW_BACKWARD_INPUT: {
        const int8_t *g = sparse_grad(n_y, k->density);
        const size_t bytes = dw ? ts_depthwise_conv2d_backward_input_get_buffer_size(&l)
                                : ts_conv2d_backward_input_get_buffer_size(&l);
        int32_t *scratch = arena_take(bytes);
        int8_t *gx = arena_take(n_x);
        begin();
        if (dw) {
            ts_depthwise_conv2d_backward_input(&l, g, S_G, scratch, gx, &s_gx);
        } else {
            TS_KERNEL(conv2d_backward_input)(&l, g, S_G, scratch, gx, &s_gx);
        }
        end();
        break;
    }
    case BK_ACT_BACKWARD: {
        int8_t *g = sparse_grad(n_y, k->density);
        const int8_t *y = rand_tensor(n_y, 0);
        begin();
        ts_act_backward(TS_ACT_RELU, OUT_Q, g, y, n_y);
        end();
        break;
    }
    case BK_CONV_SGD:
        begin();
        ts_sgd_step(&l.p, 0.01f);
        end();
        break;
    case BK_CONV_RANGE_UPDATE:
        begin();
        ts_range_update(&l.p, -1.0f, 3.0f);
        end();
        break;
    case BK_CONV_REQUANTIZE:
        begin();
        ts_requantize(&l.p);
        end();
        break;
    default:
        break;
    }
}

static void run_fc_case(const bench_case_t *k)
{
    ts_fc_layer_t l = fc_layer(k->c, k->c_out, 1);
    for (size_t i = 0; i < (size_t)k->c * k->c_out; ++i) {
        l.p.master_w[i] = (float)rand_i8(0) * 0.001f;
    }
    const int8_t *x = rand_tensor(k->c, 0);
    int32_t *acc = arena_take((size_t)(k->c > k->c_out ? k->c : k->c_out) * sizeof(int32_t));
    int8_t *y = arena_take(k->c_out);
    float bmin = INFINITY, bmax = -INFINITY, s_gx = 0.0f;
    switch (k->kind) {
    case BK_FC_FORWARD:
        begin();
        TS_KERNEL(fully_connected_forward)(&l, x, y, acc);
        end();
        break;
    case BK_FC_OBSERVE:
        TS_KERNEL(fully_connected_forward)(&l, x, y, acc);
        begin();
        ts_fully_connected_observe_range(&l, acc, &bmin, &bmax);
        end();
        break;
    case BK_FC_BACKWARD_WEIGHTS: {
        const int8_t *g = sparse_grad(k->c_out, k->density);
        begin();
        TS_KERNEL(fully_connected_backward_weights)(&l, x, g, S_G);
        end();
        break;
    }
    case BK_FC_BACKWARD_INPUT: {
        const int8_t *g = sparse_grad(k->c_out, k->density);
        int8_t *gx = arena_take(k->c);
        begin();
        TS_KERNEL(fully_connected_backward_input)(&l, g, S_G, acc, gx, &s_gx);
        end();
        break;
    }
    case BK_RELU_BACKWARD: {
        int8_t *g = sparse_grad(k->c_out, k->density);
        begin();
        ts_act_backward(l.act, l.p.out_q, g, y, k->c_out);
        end();
        break;
    }
    case BK_FC_SGD:
        begin();
        ts_sgd_step(&l.p, 0.01f);
        end();
        break;
    case BK_FC_RANGE_UPDATE:
        begin();
        ts_range_update(&l.p, -1.0f, 3.0f);
        end();
        break;
    case BK_FC_REQUANTIZE:
        begin();
        ts_requantize(&l.p);
        end();
        break;
    default:
        break;
    }
}

static void run_pool_case(const bench_case_t *k)
{
    ts_pool_params_t p = {0};
    p.in = (ts_dims_t){k->h, k->w, k->c};
    p.out.h = (uint16_t)ts_conv_out_size(k->padding, k->h, k->kh, k->sh);
    p.out.w = (uint16_t)ts_conv_out_size(k->padding, k->w, k->kw, k->sw);
    p.out.c = k->c;
    p.kh = k->kh;
    p.kw = k->kw;
    p.stride_h = k->sh;
    p.stride_w = k->sw;
    p.padding = k->padding;
    if (ts_pool_check(&p) != TS_OK) {
        put_str("bench error pool_check\n");
        return;
    }
    const size_t n_x = (size_t)k->h * k->w * k->c;
    const size_t n_y = (size_t)p.out.h * p.out.w * k->c;
    const int8_t *x = rand_tensor(n_x, 0);
    float s_gx = 0.0f;
    const int max = k->kind == BK_MAX_POOL_FORWARD || k->kind == BK_MAX_POOL_BACKWARD;
    if (k->kind == BK_MAX_POOL_FORWARD || k->kind == BK_AVG_POOL_FORWARD) {
        int8_t *y = arena_take(n_y);
        begin();
        if (max) {
            ts_max_pool2d_forward(&p, x, y);
        } else {
            ts_avg_pool2d_forward(&p, x, y);
        }
        end();
        return;
    }
    const int8_t *g = sparse_grad(n_y, k->density);
    const size_t bytes = max ? ts_max_pool2d_backward_get_buffer_size(&p)
                             : ts_avg_pool2d_backward_get_buffer_size(&p);
    int32_t *scratch = arena_take(bytes > 0 ? bytes : 4u);
    int8_t *gx = arena_take(n_x);
    begin();
    if (max) {
        ts_max_pool2d_backward(&p, x, g, S_G, scratch, gx, &s_gx);
    } else {
        ts_avg_pool2d_backward(&p, g, S_G, scratch, gx, &s_gx);
    }
    end();
}

static void run_link_case(const bench_case_t *k)
{
    const size_t n = k->c;
    const uint8_t *payload = (const uint8_t *)rand_tensor(n, 0);
    uint8_t *frame = arena_take(TS_WIRE_MAX_ENCODED);
    const ts_header_t h = {TS_MSG_SMASHED, 0x1234u, 7u, 0u, (uint16_t)n};
    if (k->kind == BK_CRC32) {
        begin();
        s_marker = ts_crc32_update(ts_crc32_begin(), payload, n);
        end();
        return;
    }
    if (k->kind == BK_FRAME_ENCODE) {
        begin();
        (void)ts_frame_encode(&h, payload, n, frame, TS_WIRE_MAX_ENCODED);
        end();
        return;
    }
    const size_t len = ts_frame_encode(&h, payload, n, frame, TS_WIRE_MAX_ENCODED);
    ts_frame_decoder_t *d = arena_take(sizeof(ts_frame_decoder_t));
    ts_frame_decoder_init(d);
    ts_header_t got;
    const uint8_t *got_payload = NULL;
    int frames = 0;
    begin();
    for (size_t i = 0; i < len; ++i) {
        frames += ts_frame_decoder_push(d, frame[i], &got, &got_payload);
    }
    end();
    if (frames != 1) {
        put_str("bench error frame_decode\n");
    }
}

static void run_case(uint32_t i)
{
    const bench_case_t *k = &k_cases[i];
    s_arena_used = 0;
    switch (k->kind) {
    case BK_CONV_FORWARD:
    case BK_CONV_FORWARD_OBSERVE:
    case BK_CONV_BACKWARD_WEIGHTS:
    case BK_CONV_BACKWARD_INPUT:
    case BK_ACT_BACKWARD:
    case BK_CONV_SGD:
    case BK_CONV_RANGE_UPDATE:
    case BK_CONV_REQUANTIZE:
        run_conv_case(k, 0);
        break;
    case BK_DW_FORWARD:
    case BK_DW_FORWARD_OBSERVE:
    case BK_DW_BACKWARD_WEIGHTS:
    case BK_DW_BACKWARD_INPUT:
        run_conv_case(k, 1);
        break;
    case BK_MAX_POOL_FORWARD:
    case BK_MAX_POOL_BACKWARD:
    case BK_AVG_POOL_FORWARD:
    case BK_AVG_POOL_BACKWARD:
        run_pool_case(k);
        break;
    case BK_FRAME_ENCODE:
    case BK_FRAME_DECODE:
    case BK_CRC32:
        run_link_case(k);
        break;
    default:
        run_fc_case(k);
        break;
    }
    put_str("bench ");
    put_u32(s_interval++);
    put_str(" ");
    put_str(k->kind < BK_N_KINDS ? k_kind_names[k->kind] : "unknown");
    put_str(" case");
    put_u32(i);
    put_str(" 0\n");
}

static void run_fit_suite(void)
{
    for (uint32_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; ++i) {
        run_case(i);
    }
}
#define TS_BENCH_FIT 1
#else
static void run_fit_suite(void)
{
}
#define TS_BENCH_FIT 0
#endif

/* ---- main ------------------------------------------------------------------------------------ */

int main(void)
{
    ts_board_init();
    put_str("bench start ");
    put_str(ts_board_name());
    put_str("\n");

    /* Interval 0: the markers alone, the overhead host/costmodel/count.py subtracts. */
    irq_off();
    ts_bench_begin();
    ts_bench_end();
    irq_on();
    report("overhead", "-", 0u);

    if (TS_BENCH_LINK_SUITE) {
        run_link_suite();
    } else if (TS_BENCH_FIT) {
        run_fit_suite();
    } else {
        run_anchor_suite();
    }
    put_str("bench done\n");
    semihosting_exit();
    for (;;) {
    }
}
