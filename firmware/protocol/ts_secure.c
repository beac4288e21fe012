/* Sealed frames (see ts_secure.h). */
#include "ts_secure.h"

#include <string.h>

#include "ts_aead.h"
#include "ts_cobs.h"
#include "ts_crc32.h"
#include "ts_le.h"

_Static_assert(TS_WIRE_REPLAY_WINDOW <= 32u, "the replay window is one u32 bitmap");

/* Sealing encrypts through this many bytes of stack at a time on its way into the COBS output. */
#define SEAL_CHUNK 64u

static void frame_nonce(uint32_t session, uint32_t direction, uint32_t counter,
                        uint8_t nonce[TS_AEAD_NONCE_SIZE])
{
    ts_put_u32(nonce, session);
    ts_put_u32(nonce + 4, direction);
    ts_put_u32(nonce + 8, counter);
}

void ts_secure_derive(const uint8_t pair_key[32], uint32_t challenge,
                      const uint8_t host_nonce[TS_WIRE_OPEN_NONCE_SIZE], uint8_t session_key[32])
{
    uint8_t nonce[TS_AEAD_NONCE_SIZE];
    uint8_t block[64];
    ts_put_u32(nonce, challenge);
    memcpy(nonce + 4, host_nonce, TS_WIRE_OPEN_NONCE_SIZE);
    ts_chacha20_block(pair_key, 0u, nonce, block);
    memcpy(session_key, block, 32);
    memset(block, 0, sizeof block);
}

int ts_secure_check_open(const uint8_t session_key[32], const ts_header_t *h,
                         const uint8_t host_nonce[TS_WIRE_OPEN_NONCE_SIZE],
                         const uint8_t tag[TS_WIRE_SEAL_TAG_SIZE])
{
    uint8_t aad[TS_WIRE_HEADER_SIZE + TS_WIRE_OPEN_NONCE_SIZE];
    uint8_t nonce[TS_AEAD_NONCE_SIZE];
    uint8_t mine[TS_AEAD_TAG_SIZE];
    ts_frame_pack_header(h, aad);
    memcpy(aad + TS_WIRE_HEADER_SIZE, host_nonce, TS_WIRE_OPEN_NONCE_SIZE);
    frame_nonce(h->session, TS_DIR_TO_BOARD, 0u, nonce);
    ts_aead_t a;
    ts_aead_init(&a, session_key, nonce, aad, (uint32_t)sizeof aad);
    ts_aead_finish(&a, mine);
    return ts_aead_tags_equal(mine, tag);
}

void ts_secure_start(ts_secure_t *s, const uint8_t session_key[32], uint32_t session)
{
    memcpy(s->key, session_key, 32);
    s->session = session;
    s->sent = 0u;
    s->top = 0u;
    s->seen = 0u;
    s->open = 1u;
}

size_t ts_secure_encode(ts_secure_t *s, uint32_t direction, const ts_header_t *h,
                        const uint8_t *payload, size_t len, uint8_t *out, size_t cap)
{
    if (!s->open || len > TS_WIRE_MAX_PAYLOAD || cap == 0u || s->sent == UINT32_MAX) {
        return 0;
    }
    const uint32_t counter = s->sent + 1u;
    uint8_t head[TS_WIRE_HEADER_SIZE];
    ts_header_t sealed = *h;
    sealed.type = (uint8_t)(h->type | TS_WIRE_SEALED);
    sealed.session = s->session;
    sealed.length = (uint16_t)(len + TS_WIRE_SEAL_OVERHEAD);
    ts_frame_pack_header(&sealed, head);
    uint8_t ctr[TS_WIRE_SEAL_COUNTER_SIZE];
    ts_put_u32(ctr, counter);

    uint8_t nonce[TS_AEAD_NONCE_SIZE];
    frame_nonce(s->session, direction, counter, nonce);
    ts_aead_t a;
    ts_aead_init(&a, s->key, nonce, head, TS_WIRE_HEADER_SIZE);

    uint32_t crc = ts_crc32_begin();
    crc = ts_crc32_update(crc, head, sizeof head);
    crc = ts_crc32_update(crc, ctr, sizeof ctr);
    ts_cobs_encoder_t e;
    ts_cobs_encoder_begin(&e, out, cap - 1u); /* keep one byte for the delimiter */
    ts_cobs_encoder_put(&e, head, sizeof head);
    ts_cobs_encoder_put(&e, ctr, sizeof ctr);
    uint8_t chunk[SEAL_CHUNK];
    for (size_t done = 0; done < len;) {
        size_t n = len - done < SEAL_CHUNK ? len - done : SEAL_CHUNK;
        ts_aead_encrypt(&a, payload + done, chunk, n);
        crc = ts_crc32_update(crc, chunk, n);
        ts_cobs_encoder_put(&e, chunk, n);
        done += n;
    }
    uint8_t tail[TS_WIRE_SEAL_TAG_SIZE + TS_WIRE_CRC_SIZE];
    ts_aead_finish(&a, tail);
    crc = ts_crc32_update(crc, tail, TS_WIRE_SEAL_TAG_SIZE);
    ts_put_u32(tail + TS_WIRE_SEAL_TAG_SIZE, ts_crc32_end(crc));
    ts_cobs_encoder_put(&e, tail, sizeof tail);
    size_t n = ts_cobs_encoder_end(&e);
    memset(chunk, 0, sizeof chunk);
    if (n == 0u) {
        return 0;
    }
    s->sent = counter;
    out[n] = 0u;
    return n + 1u;
}

static int fresh(const ts_secure_t *s, uint32_t counter)
{
    if (counter > s->top) {
        return 1;
    }
    uint32_t back = s->top - counter;
    return counter > 0u && back < TS_WIRE_REPLAY_WINDOW && !((s->seen >> back) & 1u);
}

static void take(ts_secure_t *s, uint32_t counter)
{
    if (counter > s->top) {
        uint32_t shift = counter - s->top;
        s->seen = shift >= 32u ? 1u : (s->seen << shift) | 1u;
        s->top = counter;
    } else {
        s->seen |= 1u << (s->top - counter);
    }
#if TS_WIRE_REPLAY_WINDOW < 32u
    s->seen &= (1u << TS_WIRE_REPLAY_WINDOW) - 1u;
#endif
}

ts_seal_result_t ts_secure_open(ts_secure_t *s, uint32_t direction, uint8_t *body,
                                const ts_header_t *h, uint16_t *plain_len)
{
    if (!s->open || h->length < TS_WIRE_SEAL_OVERHEAD || h->session != s->session) {
        return TS_SEAL_FORGED;
    }
    uint8_t head[TS_WIRE_HEADER_SIZE];
    ts_frame_pack_header(h, head);
    const uint32_t counter = ts_get_u32(body);
    uint8_t *text = body + TS_WIRE_SEAL_COUNTER_SIZE;
    const size_t n = (size_t)h->length - TS_WIRE_SEAL_OVERHEAD;

    uint8_t nonce[TS_AEAD_NONCE_SIZE];
    uint8_t mine[TS_AEAD_TAG_SIZE];
    frame_nonce(s->session, direction, counter, nonce);
    ts_aead_t a;
    ts_aead_init(&a, s->key, nonce, head, TS_WIRE_HEADER_SIZE);
    ts_aead_authenticate(&a, text, n);
    ts_aead_finish(&a, mine);
    if (!ts_aead_tags_equal(mine, text + n)) {
        return TS_SEAL_FORGED;
    }
    if (!fresh(s, counter)) {
        return TS_SEAL_REPLAY;
    }
    take(s, counter);
    ts_chacha20_xor(s->key, nonce, 1u, 0u, text, text, n);
    *plain_len = (uint16_t)n;
    return TS_SEAL_OK;
}
