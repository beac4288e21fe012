/* ChaCha20-Poly1305 (RFC 8439). See ts_aead.h. */
#include "ts_aead.h"

#include <string.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "RFC 8439 is little-endian: load32/store32 copy words as they are");

/* Little-endian words at any alignment: one LDR/STR on cores that allow unaligned access (M3
 * and up), bytes otherwise; the compiler picks. */
static inline uint32_t load32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void store32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, sizeof v);
}

/* ---- ChaCha20 (RFC 8439 2.1-2.4) ---------------------------------------------------------- */

#define ROTL(v, n) (((v) << (n)) | ((v) >> (32u - (n))))
#define QUARTER(a, b, c, d)                                                                      \
    do {                                                                                         \
        a += b;                                                                                  \
        d = ROTL(d ^ a, 16);                                                                     \
        c += d;                                                                                  \
        b = ROTL(b ^ c, 12);                                                                     \
        a += b;                                                                                  \
        d = ROTL(d ^ a, 8);                                                                      \
        c += d;                                                                                  \
        b = ROTL(b ^ c, 7);                                                                      \
    } while (0)

/* The block function on words: the state in sixteen locals (registers, as far as the core has
 * them), the ten double rounds written out. */
static void chacha20_words(const uint8_t key[32], uint32_t counter, const uint8_t nonce[12],
                           uint32_t out[16])
{
    const uint32_t k0 = load32(key), k1 = load32(key + 4), k2 = load32(key + 8);
    const uint32_t k3 = load32(key + 12), k4 = load32(key + 16), k5 = load32(key + 20);
    const uint32_t k6 = load32(key + 24), k7 = load32(key + 28);
    const uint32_t n0 = load32(nonce), n1 = load32(nonce + 4), n2 = load32(nonce + 8);
    uint32_t x0 = 0x61707865u, x1 = 0x3320646eu, x2 = 0x79622d32u, x3 = 0x6b206574u;
    uint32_t x4 = k0, x5 = k1, x6 = k2, x7 = k3, x8 = k4, x9 = k5, x10 = k6, x11 = k7;
    uint32_t x12 = counter, x13 = n0, x14 = n1, x15 = n2;
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC unroll 10
#endif
    for (unsigned round = 0; round < 10u; ++round) {
        QUARTER(x0, x4, x8, x12); /* columns */
        QUARTER(x1, x5, x9, x13);
        QUARTER(x2, x6, x10, x14);
        QUARTER(x3, x7, x11, x15);
        QUARTER(x0, x5, x10, x15); /* diagonals */
        QUARTER(x1, x6, x11, x12);
        QUARTER(x2, x7, x8, x13);
        QUARTER(x3, x4, x9, x14);
    }
    out[0] = x0 + 0x61707865u;
    out[1] = x1 + 0x3320646eu;
    out[2] = x2 + 0x79622d32u;
    out[3] = x3 + 0x6b206574u;
    out[4] = x4 + k0;
    out[5] = x5 + k1;
    out[6] = x6 + k2;
    out[7] = x7 + k3;
    out[8] = x8 + k4;
    out[9] = x9 + k5;
    out[10] = x10 + k6;
    out[11] = x11 + k7;
    out[12] = x12 + counter;
    out[13] = x13 + n0;
    out[14] = x14 + n1;
    out[15] = x15 + n2;
}

void ts_chacha20_block(const uint8_t key[32], uint32_t counter, const uint8_t nonce[12],
                       uint8_t out[64])
{
    uint32_t w[16];
    chacha20_words(key, counter, nonce, w);
    for (unsigned i = 0; i < 16u; ++i) {
        store32(out + 4u * i, w[i]);
    }
}

void ts_chacha20_xor(const uint8_t key[32], const uint8_t nonce[12], uint32_t counter,
                     uint32_t offset, const uint8_t *in, uint8_t *out, size_t n)
{
    uint32_t w[16];
    uint32_t block = counter + offset / 64u;
    uint32_t at = offset % 64u;
    size_t done = 0;
    while (done < n) {
        chacha20_words(key, block, nonce, w);
        if (at == 0u && n - done >= 64u) { /* a whole block: a word at a time */
            for (unsigned i = 0; i < 16u; ++i) {
                store32(out + done + 4u * i, load32(in + done + 4u * i) ^ w[i]);
            }
            done += 64u;
        } else {
            uint8_t stream[64];
            for (unsigned i = 0; i < 16u; ++i) {
                store32(stream + 4u * i, w[i]);
            }
            while (at < 64u && done < n) {
                out[done] = (uint8_t)(in[done] ^ stream[at]);
                ++done;
                ++at;
            }
            at = 0;
        }
        ++block;
    }
}

/* ---- Poly1305 (RFC 8439 2.5): 130-bit arithmetic in five 26-bit limbs ---------------------- */

#define LIMB 0x3ffffffu

void ts_poly1305_init(ts_poly1305_t *p, const uint8_t key[32])
{
    /* r, clamped as 2.5 says (r &= 0x0ffffffc0ffffffc0ffffffc0fffffff), split into limbs */
    p->r[0] = load32(key + 0) & 0x3ffffffu;
    p->r[1] = (load32(key + 3) >> 2) & 0x3ffff03u;
    p->r[2] = (load32(key + 6) >> 4) & 0x3ffc0ffu;
    p->r[3] = (load32(key + 9) >> 6) & 0x3f03fffu;
    p->r[4] = (load32(key + 12) >> 8) & 0x00fffffu;
    for (unsigned i = 0; i < 5u; ++i) {
        p->h[i] = 0;
    }
    for (unsigned i = 0; i < 4u; ++i) {
        p->pad[i] = load32(key + 16u + 4u * i);
    }
    p->used = 0;
}

/* acc = (acc + block) * r mod 2^130 - 5 for each of n 16-byte blocks of m, with r, 5r and the
 * accumulator in locals across the blocks; hibit is 2^128 over the limbs (0 for the padded last
 * block, whose 0x01 byte is already in m). */
static void poly_blocks(ts_poly1305_t *p, const uint8_t *m, size_t n, uint32_t hibit)
{
    const uint32_t r0 = p->r[0], r1 = p->r[1], r2 = p->r[2], r3 = p->r[3], r4 = p->r[4];
    const uint32_t s1 = r1 * 5u, s2 = r2 * 5u, s3 = r3 * 5u, s4 = r4 * 5u;
    uint32_t h0 = p->h[0], h1 = p->h[1], h2 = p->h[2], h3 = p->h[3], h4 = p->h[4];
    for (; n > 0; --n, m += 16) {
        h0 += load32(m + 0) & LIMB;
        h1 += (load32(m + 3) >> 2) & LIMB;
        h2 += (load32(m + 6) >> 4) & LIMB;
        h3 += (load32(m + 9) >> 6) & LIMB;
        h4 += (load32(m + 12) >> 8) | hibit;

        uint64_t d0 = (uint64_t)h0 * r0 + (uint64_t)h1 * s4 + (uint64_t)h2 * s3 +
                      (uint64_t)h3 * s2 + (uint64_t)h4 * s1;
        uint64_t d1 = (uint64_t)h0 * r1 + (uint64_t)h1 * r0 + (uint64_t)h2 * s4 +
                      (uint64_t)h3 * s3 + (uint64_t)h4 * s2;
        uint64_t d2 = (uint64_t)h0 * r2 + (uint64_t)h1 * r1 + (uint64_t)h2 * r0 +
                      (uint64_t)h3 * s4 + (uint64_t)h4 * s3;
        uint64_t d3 = (uint64_t)h0 * r3 + (uint64_t)h1 * r2 + (uint64_t)h2 * r1 +
                      (uint64_t)h3 * r0 + (uint64_t)h4 * s4;
        uint64_t d4 = (uint64_t)h0 * r4 + (uint64_t)h1 * r3 + (uint64_t)h2 * r2 +
                      (uint64_t)h3 * r1 + (uint64_t)h4 * r0;

        uint32_t c = (uint32_t)(d0 >> 26);
        h0 = (uint32_t)d0 & LIMB;
        d1 += c;
        c = (uint32_t)(d1 >> 26);
        h1 = (uint32_t)d1 & LIMB;
        d2 += c;
        c = (uint32_t)(d2 >> 26);
        h2 = (uint32_t)d2 & LIMB;
        d3 += c;
        c = (uint32_t)(d3 >> 26);
        h3 = (uint32_t)d3 & LIMB;
        d4 += c;
        c = (uint32_t)(d4 >> 26);
        h4 = (uint32_t)d4 & LIMB;
        h0 += c * 5u; /* 2^130 = 5 mod p */
        c = h0 >> 26;
        h0 &= LIMB;
        h1 += c;
    }
    p->h[0] = h0;
    p->h[1] = h1;
    p->h[2] = h2;
    p->h[3] = h3;
    p->h[4] = h4;
}

void ts_poly1305_update(ts_poly1305_t *p, const uint8_t *m, size_t n)
{
    if (p->used > 0) { /* complete the buffered block first */
        size_t take = 16u - p->used < n ? 16u - p->used : n;
        memcpy(p->buf + p->used, m, take);
        p->used += take;
        m += take;
        n -= take;
        if (p->used < 16u) {
            return;
        }
        poly_blocks(p, p->buf, 1u, 1u << 24);
        p->used = 0;
    }
    if (n >= 16u) {
        poly_blocks(p, m, n / 16u, 1u << 24);
        m += n & ~(size_t)15u;
        n &= 15u;
    }
    if (n > 0u) {
        memcpy(p->buf, m, n);
        p->used = n;
    }
}

void ts_poly1305_finish(ts_poly1305_t *p, uint8_t tag[16])
{
    if (p->used > 0) {
        p->buf[p->used] = 1;
        for (size_t i = p->used + 1u; i < 16u; ++i) {
            p->buf[i] = 0;
        }
        poly_blocks(p, p->buf, 1u, 0);
    }
    uint32_t h0 = p->h[0], h1 = p->h[1], h2 = p->h[2], h3 = p->h[3], h4 = p->h[4];
    uint32_t c = h1 >> 26; /* carry fully */
    h1 &= LIMB;
    h2 += c;
    c = h2 >> 26;
    h2 &= LIMB;
    h3 += c;
    c = h3 >> 26;
    h3 &= LIMB;
    h4 += c;
    c = h4 >> 26;
    h4 &= LIMB;
    h0 += c * 5u;
    c = h0 >> 26;
    h0 &= LIMB;
    h1 += c;

    /* g = h - p = h + 5 - 2^130; take g when it is not negative */
    uint32_t g0 = h0 + 5u;
    c = g0 >> 26;
    g0 &= LIMB;
    uint32_t g1 = h1 + c;
    c = g1 >> 26;
    g1 &= LIMB;
    uint32_t g2 = h2 + c;
    c = g2 >> 26;
    g2 &= LIMB;
    uint32_t g3 = h3 + c;
    c = g3 >> 26;
    g3 &= LIMB;
    uint32_t g4 = h4 + c - (1u << 26);
    uint32_t take_g = (g4 >> 31) - 1u; /* all ones when g4 did not borrow */
    h0 = (h0 & ~take_g) | (g0 & take_g);
    h1 = (h1 & ~take_g) | (g1 & take_g);
    h2 = (h2 & ~take_g) | (g2 & take_g);
    h3 = (h3 & ~take_g) | (g3 & take_g);
    h4 = (h4 & ~take_g) | (g4 & take_g);

    /* h mod 2^128 in 32-bit words, plus the pad (s), mod 2^128 */
    uint32_t w0 = h0 | (h1 << 26);
    uint32_t w1 = (h1 >> 6) | (h2 << 20);
    uint32_t w2 = (h2 >> 12) | (h3 << 14);
    uint32_t w3 = (h3 >> 18) | (h4 << 8);
    uint64_t f = (uint64_t)w0 + p->pad[0];
    store32(tag + 0, (uint32_t)f);
    f = (uint64_t)w1 + p->pad[1] + (f >> 32);
    store32(tag + 4, (uint32_t)f);
    f = (uint64_t)w2 + p->pad[2] + (f >> 32);
    store32(tag + 8, (uint32_t)f);
    f = (uint64_t)w3 + p->pad[3] + (f >> 32);
    store32(tag + 12, (uint32_t)f);
}

/* ---- AEAD (RFC 8439 2.8) ---------------------------------------------------------------- */

static void pad16(ts_poly1305_t *mac, uint32_t len)
{
    static const uint8_t zeros[16] = {0};
    if (len % 16u) {
        ts_poly1305_update(mac, zeros, 16u - len % 16u);
    }
}

void ts_aead_init(ts_aead_t *a, const uint8_t key[32], const uint8_t nonce[12],
                  const uint8_t *aad, uint32_t aad_len)
{
    uint8_t block[64];
    memcpy(a->key, key, 32);
    memcpy(a->nonce, nonce, 12);
    ts_chacha20_block(key, 0, nonce, block); /* the one-time Poly1305 key: block 0 */
    ts_poly1305_init(&a->mac, block);
    memset(block, 0, sizeof block);
    ts_poly1305_update(&a->mac, aad, aad_len);
    pad16(&a->mac, aad_len);
    a->aad_len = aad_len;
    a->text_len = 0;
}

void ts_aead_encrypt(ts_aead_t *a, const uint8_t *in, uint8_t *out, size_t n)
{
    ts_chacha20_xor(a->key, a->nonce, 1, a->text_len, in, out, n);
    ts_poly1305_update(&a->mac, out, n);
    a->text_len += (uint32_t)n;
}

void ts_aead_decrypt(ts_aead_t *a, const uint8_t *in, uint8_t *out, size_t n)
{
    ts_poly1305_update(&a->mac, in, n); /* the MAC covers the ciphertext: before in is out */
    ts_chacha20_xor(a->key, a->nonce, 1, a->text_len, in, out, n);
    a->text_len += (uint32_t)n;
}

void ts_aead_authenticate(ts_aead_t *a, const uint8_t *in, size_t n)
{
    ts_poly1305_update(&a->mac, in, n);
    a->text_len += (uint32_t)n;
}

void ts_aead_finish(ts_aead_t *a, uint8_t tag[16])
{
    uint8_t lens[16];
    pad16(&a->mac, a->text_len);
    store32(lens + 0, a->aad_len);
    store32(lens + 4, 0);
    store32(lens + 8, a->text_len);
    store32(lens + 12, 0);
    ts_poly1305_update(&a->mac, lens, sizeof lens);
    ts_poly1305_finish(&a->mac, tag);
}

int ts_aead_tags_equal(const uint8_t a[16], const uint8_t b[16])
{
    uint8_t diff = 0;
    for (unsigned i = 0; i < 16u; ++i) {
        diff |= (uint8_t)(a[i] ^ b[i]);
    }
    return diff == 0;
}
