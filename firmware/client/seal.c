/*
 * The state image as it crosses the wire (GET_WEIGHTS reads it, PUT_WEIGHTS writes it;
 * docs/protocol.md "Sealed state"). An export without a seal key sends the state image itself.
 * An export made with --private holds a 32-byte key in model_data.c, and then the wire image is
 *
 *     nonce[12] | ChaCha20-Poly1305(key, nonce, state image, aad) | tag[16]
 *     aad = model hash[8] | u32 committed step (little-endian)
 *
 * (RFC 8439): the host stores and returns it — checkpoints, resume, restoring a board that
 * rebooted — and can read none of it; a pushed image whose tag does not verify is refused and
 * the board stays LOADING (no training on it) until a good one arrives.
 *
 * Reads: the image is sealed once per state (committed step, weights CRC) with a fresh nonce
 * (the boot's session id, an entropy draw, a counter), its tag computed in one pass; every
 * chunk read after that is encrypted on the fly at its offset (ChaCha20 is seekable), so a
 * repeated or reordered GET_WEIGHTS returns the same bytes and no second copy is kept in RAM.
 * Writes: in order (PUT_WEIGHTS enforces it), decrypted chunk by chunk into the live state.
 */
#include <string.h>

#include "client_internal.h"
#include "ts_board.h"
#include "ts_le.h"

#if TS_MODEL_SEALED
#include "ts_aead.h"

#define SEAL_AAD_SIZE (TS_MODEL_HASH_BYTES + 4u)
#define SEAL_EXTRA (TS_AEAD_NONCE_SIZE + TS_AEAD_TAG_SIZE)

static struct {
    uint8_t valid;
    uint32_t step; /* the state it seals: committed step and weights CRC */
    uint32_t crc;
    uint32_t counter;
    uint8_t nonce[TS_AEAD_NONCE_SIZE];
    uint8_t tag[TS_AEAD_TAG_SIZE];
} s_out;

static struct {
    ts_aead_t aead;
    uint8_t nonce[TS_AEAD_NONCE_SIZE];
    uint8_t tag[TS_AEAD_TAG_SIZE];
} s_in;

static void aad(uint32_t step, uint8_t out[SEAL_AAD_SIZE])
{
    memcpy(out, ts_model_hash, TS_MODEL_HASH_BYTES);
    ts_put_u32(out + TS_MODEL_HASH_BYTES, step);
}

static void seal_current_state(void)
{
    if (s_out.valid && s_out.step == ts_client.committed && s_out.crc == ts_client.weights_crc) {
        return;
    }
    s_out.counter++;
    ts_put_u32(s_out.nonce, ts_client.session);
    ts_put_u32(s_out.nonce + 4, ts_board_entropy());
    ts_put_u32(s_out.nonce + 8, s_out.counter);
    uint8_t data[SEAL_AAD_SIZE];
    aad(ts_client.committed, data);
    ts_aead_t a;
    ts_aead_init(&a, ts_seal_key, s_out.nonce, data, SEAL_AAD_SIZE);
    uint8_t buf[64];
    const uint32_t size = ts_state_image_size();
    for (uint32_t off = 0; off < size; off += sizeof buf) {
        uint32_t n = ts_state_image_read(off, buf, sizeof buf);
        ts_aead_encrypt(&a, buf, buf, n);
    }
    ts_aead_finish(&a, s_out.tag);
    s_out.valid = 1u;
    s_out.step = ts_client.committed;
    s_out.crc = ts_client.weights_crc;
}

uint32_t ts_wire_image_size(void)
{
    return ts_state_image_size() + SEAL_EXTRA;
}

uint32_t ts_wire_weights_size(void)
{
    return 0u; /* sealed: no clear weight blob to point at */
}

uint32_t ts_wire_image_read(uint32_t offset, uint8_t *out, uint32_t len)
{
    const uint32_t size = ts_state_image_size();
    const uint32_t total = size + SEAL_EXTRA;
    if (offset >= total) {
        return 0u;
    }
    if (len > total - offset) {
        len = total - offset;
    }
    seal_current_state();
    for (uint32_t i = 0; i < len;) {
        const uint32_t at = offset + i;
        if (at < TS_AEAD_NONCE_SIZE) {
            out[i++] = s_out.nonce[at];
        } else if (at < TS_AEAD_NONCE_SIZE + size) {
            const uint32_t pos = at - TS_AEAD_NONCE_SIZE;
            uint32_t n = size - pos < len - i ? size - pos : len - i;
            n = ts_state_image_read(pos, out + i, n);
            ts_chacha20_xor(ts_seal_key, s_out.nonce, 1u, pos, out + i, out + i, n);
            i += n;
        } else {
            out[i++] = s_out.tag[at - TS_AEAD_NONCE_SIZE - size];
        }
    }
    return len;
}

void ts_wire_push_write(uint32_t offset, const uint8_t *in, uint32_t n, uint32_t step)
{
    const uint32_t size = ts_state_image_size();
    uint8_t buf[64];
    for (uint32_t i = 0; i < n;) {
        const uint32_t at = offset + i;
        if (at < TS_AEAD_NONCE_SIZE) {
            s_in.nonce[at] = in[i++];
            if (at + 1u == TS_AEAD_NONCE_SIZE) {
                uint8_t data[SEAL_AAD_SIZE];
                aad(step, data);
                ts_aead_init(&s_in.aead, ts_seal_key, s_in.nonce, data, SEAL_AAD_SIZE);
            }
        } else if (at < TS_AEAD_NONCE_SIZE + size) {
            const uint32_t pos = at - TS_AEAD_NONCE_SIZE;
            uint32_t k = size - pos < n - i ? size - pos : n - i;
            if (k > sizeof buf) {
                k = sizeof buf;
            }
            ts_aead_decrypt(&s_in.aead, in + i, buf, k);
            ts_state_image_write(pos, buf, k);
            i += k;
        } else {
            s_in.tag[at - TS_AEAD_NONCE_SIZE - size] = in[i++];
        }
    }
    s_out.valid = 0u; /* the state is being replaced */
}

int ts_wire_push_end(void)
{
    uint8_t tag[TS_AEAD_TAG_SIZE];
    ts_aead_finish(&s_in.aead, tag);
    return ts_aead_tags_equal(tag, s_in.tag);
}

#else /* no seal key: the state image itself */

uint32_t ts_wire_image_size(void)
{
    return ts_state_image_size();
}

uint32_t ts_wire_weights_size(void)
{
    return ts_weights_blob_size();
}

uint32_t ts_wire_image_read(uint32_t offset, uint8_t *out, uint32_t len)
{
    return ts_state_image_read(offset, out, len);
}

void ts_wire_push_write(uint32_t offset, const uint8_t *in, uint32_t n, uint32_t step)
{
    (void)step;
    ts_state_image_write(offset, in, n);
}

int ts_wire_push_end(void)
{
    return 1;
}

#endif
