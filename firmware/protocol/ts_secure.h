/*
 * Sealed frames between a paired board and its host (docs/protocol.md, "Paired boards"):
 * ChaCha20-Poly1305 (RFC 8439, ts_aead.c) under a session key drawn from the pairing key, the
 * board's challenge and the host's nonce. Host twin: core/protocol/secure.py; the two are
 * checked against each other on random frames (tests/protocol/test_secure.py).
 *
 *     session key = ChaCha20 block(pairing key, 0, u32 challenge | host nonce[8])[0..32)
 *     frame nonce = u32 session | u32 direction | u32 counter
 *     OPEN tag    = AEAD(session key, frame nonce(session, TO_BOARD, 0), "", header | nonce)
 *     sealed      = header(type | TS_WIRE_SEALED) | u32 counter | ciphertext | tag
 *                   (aad: the header as sent)
 */
#ifndef TS_SECURE_H
#define TS_SECURE_H

#include <stddef.h>
#include <stdint.h>

#include "ts_frame.h"

/** One end of a sealed session. All zero: no session (nothing sealed is taken). */
typedef struct {
    uint8_t key[32];  /**< the session key */
    uint32_t session; /**< the board's session id: part of every frame nonce */
    uint32_t sent;    /**< the last counter this end sealed a frame with */
    uint32_t top;     /**< the highest counter taken from the other end */
    uint32_t seen;    /**< bit i: counter top - i was taken (TS_WIRE_REPLAY_WINDOW of them) */
    uint8_t open;     /**< 1: a session key is set */
} ts_secure_t;

typedef enum {
    TS_SEAL_OK = 0,
    TS_SEAL_FORGED = 1, /**< the tag does not verify (another key, or altered on the way) */
    TS_SEAL_REPLAY = 2, /**< the counter was taken before, or is older than the window */
} ts_seal_result_t;

/** The session key of an OPEN: ChaCha20 used as a PRF, as RFC 8439 2.6 derives Poly1305 keys. */
void ts_secure_derive(const uint8_t pair_key[32], uint32_t challenge,
                      const uint8_t host_nonce[TS_WIRE_OPEN_NONCE_SIZE], uint8_t session_key[32]);

/** 1 if OPEN's tag is right for this session key (h: OPEN's header as decoded). */
int ts_secure_check_open(const uint8_t session_key[32], const ts_header_t *h,
                         const uint8_t host_nonce[TS_WIRE_OPEN_NONCE_SIZE],
                         const uint8_t tag[TS_WIRE_SEAL_TAG_SIZE]);

/** Starts a session with this key: counters from 1 both ways, no counter taken yet. */
void ts_secure_start(ts_secure_t *s, const uint8_t session_key[32], uint32_t session);

/**
 * Seals and frames one message, like ts_frame_encode: h->type gets TS_WIRE_SEALED, the payload
 * (at most TS_WIRE_MAX_PAYLOAD bytes) is encrypted on its way into out. direction is the
 * sender's TS_DIR_*. Returns bytes written, 0 if it does not fit (the counter is then not used).
 */
size_t ts_secure_encode(ts_secure_t *s, uint32_t direction, const ts_header_t *h,
                        const uint8_t *payload, size_t len, uint8_t *out, size_t cap);

/**
 * Opens a sealed frame in place: h is its header as decoded (type with TS_WIRE_SEALED), body
 * its h->length payload bytes; direction is the sender's. TS_SEAL_OK: the plaintext is at
 * body + TS_WIRE_SEAL_COUNTER_SIZE, *plain_len bytes, and the counter is taken. Otherwise
 * nothing is taken and the body is left as it came.
 */
ts_seal_result_t ts_secure_open(ts_secure_t *s, uint32_t direction, uint8_t *body,
                                const ts_header_t *h, uint16_t *plain_len);

#endif
