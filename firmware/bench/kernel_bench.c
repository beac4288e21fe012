/*
 * Kernel bench: runs each int8 kernel once on a fixed shape with deterministic pseudo-random
 * data, between two marker calls that scripts/qemu_plugins/insn_count.c counts instructions
 * between (host/insn_count.py drives it). Built without a model:
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
 */
#include <stddef.h>
#include <stdint.h>

#include "board_config.h"
#include "ts_board.h"
#include "ts_conv.h"
#include "ts_kernels.h"

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

static void put_str(const char *s)
{
    size_t n = 0;
    while (s[n] != '\0') {
        n++;
    }
    ts_board_uart_write((const uint8_t *)s, n);
}

static void put_u32(uint32_t v)
{
    char buf[11];
    size_t i = sizeof buf;
    buf[--i] = '\0';
    do {
        buf[--i] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0u);
    put_str(&buf[i]);
}

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
    /* xorshift32: the same data on every run and every board */
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 17;
    s_rng ^= s_rng << 5;
    return s_rng;
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
    l.relu = 1;
    l.in_q = IN_Q;
    l.out_q = OUT_Q;
    l.w = rand_tensor(n_w, 0);
    l.bias = t.bias;
    l.w_scale = t.w_scale;
    l.out_mult = t.out_mult;
    l.out_shift = t.out_shift;
    l.master_b = t.master_b;
    l.grad_b = t.grad_b;
    if (training) {
        l.master_w = zeros_f32(n_w);
        l.grad_w = zeros_f32(n_w);
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
    ts_fc_forward(&l, x, y, NULL);
    ts_bench_end();
    irq_on();
    report("fc_forward", shape, macs);
    if (!backward) {
        return;
    }

    const int8_t *g = rand_tensor(c_n, 1);
    irq_off();
    ts_bench_begin();
    ts_fc_backward_weights(&l, x, g, S_G);
    ts_bench_end();
    irq_on();
    report("fc_backward_weights", shape, macs);

    int32_t *scratch = arena_take((size_t)k_n * sizeof(int32_t));
    int8_t *gx = arena_take(k_n);
    float s_gx = 0.0f;
    irq_off();
    ts_bench_begin();
    ts_fc_backward_input(&l, g, S_G, scratch, gx, &s_gx);
    ts_bench_end();
    irq_on();
    report("fc_backward_input", shape, macs);
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
    l.in_q = IN_Q;
    l.out_q = OUT_Q;
    const size_t n_w = (size_t)kh * kw * (depthwise ? c_out : (size_t)c_out * in.c);
    const channel_tensors_t t = channel_tensors(c_out);
    l.w = rand_tensor(n_w, 0);
    l.bias = t.bias;
    l.w_scale = t.w_scale;
    l.out_mult = t.out_mult;
    l.out_shift = t.out_shift;
    l.master_w = zeros_f32(n_w);
    l.master_b = t.master_b;
    l.grad_w = zeros_f32(n_w);
    l.grad_b = t.grad_b;
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

    int32_t *scratch = arena_take(ts_conv2d_backward_input_get_buffer_size(&l));
    int8_t *gx = arena_take(n_x);
    float s_gx = 0.0f;
    irq_off();
    ts_bench_begin();
    ts_conv2d_backward_input(&l, g, S_G, scratch, gx, &s_gx);
    ts_bench_end();
    irq_on();
    report("conv2d_backward_input", shape, macs);
}

/* ---- main ------------------------------------------------------------------------------------ */

static void semihosting_exit(void)
{
    /* SYS_EXIT (0x18), ADP_Stopped_ApplicationExit: QEMU exits with status 0. */
    register uint32_t r0 __asm("r0") = 0x18u;
    register uint32_t r1 __asm("r1") = 0x20026u;
    __asm volatile("bkpt 0xab" : : "r"(r0), "r"(r1) : "memory");
}

int main(void)
{
    ts_board_init();
    put_str("bench start ");
    put_str(ts_board_name());
    put_str("\n");

    /* Interval 0: the markers alone, the overhead host/insn_count.py subtracts. */
    irq_off();
    ts_bench_begin();
    ts_bench_end();
    irq_on();
    report("overhead", "-", 0u);

    bench_conv((ts_dims_t){28, 28, 1}, 8, 3, 3, TS_PADDING_SAME, 0, "28x28x1->8,3x3,same", 0);
    bench_conv((ts_dims_t){14, 14, 8}, 16, 3, 3, TS_PADDING_SAME, 0, "14x14x8->16,3x3,same", 1);
    bench_conv((ts_dims_t){1, 100, 6}, 8, 1, 5, TS_PADDING_VALID, 0, "100x6->8,k5,valid", 0);
    bench_conv((ts_dims_t){14, 14, 16}, 16, 3, 3, TS_PADDING_SAME, 1, "14x14x16,3x3,same", 0);
    bench_fc(64, 32, "64->32", 1);
    bench_fc(1568, 32, "1568->32", 0);

    put_str("bench done\n");
    semihosting_exit();
    for (;;) {
    }
}
