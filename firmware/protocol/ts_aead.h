/*
 * ChaCha20-Poly1305 AEAD (RFC 8439), streaming and allocation-free: it seals the client's state
 * image and the frames of a paired link (ts_secure.c). Checked against the RFC's test vectors
 * and pyca `cryptography` (tests/protocol/test_aead.py). ChaCha20 is add-rotate-xor and the tag
 * comparison is constant-time; Poly1305's 32x32->64 multiplies are constant-time on cores with
 * a single-cycle UMULL (M4, M7, M33, M55), not on the M3 (early-terminating multiplier).
 */
#ifndef TS_AEAD_H
#define TS_AEAD_H

#include <stddef.h>
#include <stdint.h>

#define TS_AEAD_KEY_SIZE 32u
#define TS_AEAD_NONCE_SIZE 12u
#define TS_AEAD_TAG_SIZE 16u

/** One 64-byte ChaCha20 block (RFC 8439 2.3) of key, block counter and nonce. */
void ts_chacha20_block(const uint8_t key[32], uint32_t counter, const uint8_t nonce[12],
                       uint8_t out[64]);

/** out = in XOR the ChaCha20 key stream that starts at block `counter`, from byte `offset`
 *  of that stream on (seekable: any chunk can be processed on its own). in may equal out. */
void ts_chacha20_xor(const uint8_t key[32], const uint8_t nonce[12], uint32_t counter,
                     uint32_t offset, const uint8_t *in, uint8_t *out, size_t n);

/** Poly1305 (RFC 8439 2.5), fed in pieces of any size. */
typedef struct {
    uint32_t r[5];
    uint32_t h[5];
    uint32_t pad[4];
    uint8_t buf[16];
    size_t used;
} ts_poly1305_t;

void ts_poly1305_init(ts_poly1305_t *p, const uint8_t key[32]);
void ts_poly1305_update(ts_poly1305_t *p, const uint8_t *m, size_t n);
void ts_poly1305_finish(ts_poly1305_t *p, uint8_t tag[16]);

/** The AEAD construction (RFC 8439 2.8) over a message given in order, in pieces. */
typedef struct {
    ts_poly1305_t mac;
    uint8_t key[32];
    uint8_t nonce[12];
    uint32_t aad_len;
    uint32_t text_len;
} ts_aead_t;

void ts_aead_init(ts_aead_t *a, const uint8_t key[32], const uint8_t nonce[12],
                  const uint8_t *aad, uint32_t aad_len);
/** Encrypts the next n bytes of the plaintext (in may equal out). */
void ts_aead_encrypt(ts_aead_t *a, const uint8_t *in, uint8_t *out, size_t n);
/** Decrypts the next n bytes of the ciphertext (in may equal out). */
void ts_aead_decrypt(ts_aead_t *a, const uint8_t *in, uint8_t *out, size_t n);
/** Feeds the next n bytes of ciphertext to the MAC only, leaving them as they are: a receiver
 *  that must not touch a frame before its tag is checked decrypts afterwards with
 *  ts_chacha20_xor(key, nonce, 1, offset, ...). */
void ts_aead_authenticate(ts_aead_t *a, const uint8_t *in, size_t n);
/** The tag of everything given so far. */
void ts_aead_finish(ts_aead_t *a, uint8_t tag[16]);
/** 1 if the two tags are equal, compared in time independent of where they differ. */
int ts_aead_tags_equal(const uint8_t a[16], const uint8_t b[16]);

#endif
