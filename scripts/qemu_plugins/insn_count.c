/*
 * insn_count: a QEMU TCG plugin that counts the guest instructions executed between two marker
 * functions (QEMU 7.2 plugin API, version 1; built without QEMU's headers or glib).
 *
 *   qemu-system-arm ... -plugin insn_count.so,begin=0xADDR,end=0xADDR,out=PATH
 *
 * begin/end: the entry addresses of two noinline functions in the guest (arm-none-eabi-nm; the
 * Thumb bit is ignored). A function entered by a branch always starts a translation block, so the
 * plugin registers an exec callback on every block and keeps a running total of the instructions
 * of the blocks executed. At each begin it notes the total; at each end it writes one line
 *
 *   insn_count <n> <instructions>
 *
 * to PATH (flushed at once), n counting from 0. The interval holds every block executed from the
 * begin block (included: the marker's `bx lr`) up to the end block (excluded). Instructions are
 * counted per block: an instruction skipped by a failed IT condition still counts (executed or
 * skipped, as the core's pipeline issues them); a block left early by an exception would be
 * over-counted, which the bench avoids (no faults, interrupts masked around the kernel).
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the part of QEMU 7.2's include/qemu/qemu-plugin.h this plugin uses ---- */
#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))
#define QEMU_PLUGIN_VERSION 1

typedef uint64_t qemu_plugin_id_t;

typedef struct qemu_info_t {
    const char *target_name;
    struct {
        int min;
        int cur;
    } version;
    bool system_emulation;
    union {
        struct {
            int smp_vcpus;
            int max_vcpus;
        } system;
    };
} qemu_info_t;

struct qemu_plugin_tb;

enum qemu_plugin_cb_flags {
    QEMU_PLUGIN_CB_NO_REGS,
    QEMU_PLUGIN_CB_R_REGS,
    QEMU_PLUGIN_CB_RW_REGS,
};

typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb,
                                          qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags flags, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb,
                                    void *userdata);
void qemu_plugin_outs(const char *string);
/* ---- end of the API declarations ---- */

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

enum { MARK_NONE = 0, MARK_BEGIN = 1, MARK_END = 2 };

static uint64_t s_begin;    /* marker addresses, Thumb bit cleared */
static uint64_t s_end;
static FILE *s_out;
static uint64_t s_total;    /* instructions of every block executed so far */
static uint64_t s_at_begin; /* s_total when the last begin block was entered */
static bool s_open;         /* a begin was seen and its end not yet */
static unsigned s_intervals;

/* userdata of a block: its instruction count << 2 | its marker kind (no allocation per block). */
static void on_tb_exec(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    const uintptr_t packed = (uintptr_t)userdata;
    const unsigned kind = (unsigned)(packed & 3u);
    if (kind == MARK_BEGIN) {
        s_at_begin = s_total;
        s_open = true;
    } else if (kind == MARK_END && s_open) {
        fprintf(s_out, "insn_count %u %" PRIu64 "\n", s_intervals++, s_total - s_at_begin);
        fflush(s_out);
        s_open = false;
    }
    s_total += packed >> 2;
}

static void on_tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    const uint64_t pc = qemu_plugin_tb_vaddr(tb) & ~(uint64_t)1u;
    unsigned kind = MARK_NONE;
    if (pc == s_begin) {
        kind = MARK_BEGIN;
    } else if (pc == s_end) {
        kind = MARK_END;
    }
    const uintptr_t packed = ((uintptr_t)qemu_plugin_tb_n_insns(tb) << 2) | kind;
    qemu_plugin_register_vcpu_tb_exec_cb(tb, on_tb_exec, QEMU_PLUGIN_CB_NO_REGS,
                                         (void *)packed);
}

static void on_atexit(qemu_plugin_id_t id, void *userdata)
{
    (void)id;
    (void)userdata;
    fprintf(s_out, "insn_total %" PRIu64 " intervals %u\n", s_total, s_intervals);
    fflush(s_out);
    if (s_out != stderr) {
        fclose(s_out);
    }
}

static bool parse_addr(const char *text, uint64_t *addr)
{
    char *end = NULL;
    const unsigned long long v = strtoull(text, &end, 0);
    if (end == text || *end != '\0') {
        return false;
    }
    *addr = (uint64_t)v & ~(uint64_t)1u;
    return true;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    (void)info;
    bool have_begin = false;
    bool have_end = false;
    const char *out_path = NULL;
    for (int i = 0; i < argc; ++i) {
        const char *a = argv[i];
        if (strncmp(a, "begin=", 6) == 0) {
            have_begin = parse_addr(a + 6, &s_begin);
        } else if (strncmp(a, "end=", 4) == 0) {
            have_end = parse_addr(a + 4, &s_end);
        } else if (strncmp(a, "out=", 4) == 0) {
            out_path = a + 4;
        } else {
            qemu_plugin_outs("insn_count: unknown argument (want begin=, end=, out=)\n");
            return -1;
        }
    }
    if (!have_begin || !have_end || s_begin == s_end) {
        qemu_plugin_outs("insn_count: needs begin=ADDR,end=ADDR (two different addresses)\n");
        return -1;
    }
    s_out = out_path != NULL ? fopen(out_path, "w") : stderr;
    if (s_out == NULL) {
        qemu_plugin_outs("insn_count: cannot open the out= file\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_trans);
    qemu_plugin_register_atexit_cb(id, on_atexit, NULL);
    return 0;
}
