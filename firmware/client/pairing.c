/*
 * The paired link (docs/protocol.md, "Paired boards"). An image exported with a pairing key
 * (TS_MODEL_PAIRED, the default of `tinysplit export`) takes only HELLO_REQ and OPEN in clear
 * and answers them only with HELLO; after an OPEN whose tag proves the host holds the key,
 * every frame both ways is sealed with ChaCha20-Poly1305 under that OPEN's session key
 * (firmware/protocol/ts_secure.c). Forged frames (tag), replayed ones (counter) and clear ones
 * are refused and counted (STATS auth_failures, replays, unsealed), never answered beyond a
 * HELLO, and change nothing. An image exported with --insecure takes clear frames only.
 */
#include <string.h>

#include "client_internal.h"
#include "ts_board.h"
#include "ts_secure.h"

#if TS_MODEL_PAIRED

static ts_secure_t s_link;
static uint32_t s_challenge; /* advanced by every accepted OPEN: no OPEN is taken twice */
static uint8_t s_challenge_set;
static uint8_t s_last_open[TS_OPEN_FIXED_SIZE]; /* the accepted OPEN, to know its repeats */

uint32_t ts_pairing_challenge(void)
{
    if (!s_challenge_set) {
        s_challenge = ts_board_entropy();
        s_challenge_set = 1u;
    }
    return s_challenge;
}

int ts_pairing_open(void)
{
    return s_link.open && s_link.session == ts_client.session;
}

size_t ts_pairing_encode(const ts_header_t *h, const uint8_t *payload, size_t len, uint8_t *out,
                         size_t cap)
{
    return ts_secure_encode(&s_link, TS_DIR_TO_HOST, h, payload, len, out, cap);
}

void ts_msg_open(const ts_header_t *h, const uint8_t *payload)
{
    if (h->length != TS_OPEN_FIXED_SIZE || h->session != ts_client.session) {
        ts_client.stats.auth_failures++;
        ts_send_hello(h->step, 0); /* the session id and challenge an OPEN must use */
        return;
    }
    if (ts_pairing_open() && memcmp(s_last_open, payload, TS_OPEN_FIXED_SIZE) == 0) {
        ts_client.stats.duplicates++; /* its reply was lost: the session stays as it is */
        ts_client.stats.retransmits++;
        ts_send_hello(h->step, 1);
        return;
    }
    const uint8_t *nonce = payload + TS_OPEN_OFF_HOST_NONCE;
    uint8_t key[32];
    ts_secure_derive(ts_pair_key, ts_pairing_challenge(), nonce, key);
    if (!ts_secure_check_open(key, h, nonce, payload + TS_OPEN_OFF_TAG)) {
        memset(key, 0, sizeof key);
        ts_client.stats.auth_failures++;
        ts_send_hello(h->step, 0); /* a host without the key learns nothing more */
        return;
    }
    s_challenge++;
    ts_secure_start(&s_link, key, ts_client.session);
    memset(key, 0, sizeof key);
    memcpy(s_last_open, payload, TS_OPEN_FIXED_SIZE);
    ts_send_hello(h->step, 1);
}

int ts_pairing_accept(ts_header_t *h, uint8_t *raw, const uint8_t **payload)
{
    if (!(h->type & TS_WIRE_SEALED)) {
        if (h->type == TS_MSG_HELLO_REQ || h->type == TS_MSG_OPEN) {
            return h->length <= TS_WIRE_MAX_PAYLOAD;
        }
        ts_client.stats.unsealed++;
        return 0;
    }
    if (h->session != ts_client.session || !ts_pairing_open()) {
        /* An earlier boot's session (the board rebooted and its boot HELLO was lost), or no
         * OPEN yet: say HELLO, which names this boot's session, and take nothing. */
        ts_client.stats.wrong_session++;
        ts_send_hello(0u, 0);
        return 0;
    }
    uint16_t n;
    uint8_t *body = raw + TS_WIRE_HEADER_SIZE;
    ts_seal_result_t r = ts_secure_open(&s_link, TS_DIR_TO_BOARD, body, h, &n);
    if (r == TS_SEAL_FORGED) {
        ts_client.stats.auth_failures++;
        return 0;
    }
    if (r == TS_SEAL_REPLAY) {
        ts_client.stats.replays++;
        return 0;
    }
    h->type = (uint8_t)(h->type & ~TS_WIRE_SEALED);
    h->length = n;
    *payload = body + TS_WIRE_SEAL_COUNTER_SIZE;
    return 1;
}

#else /* an --insecure export: frames in clear only */

uint32_t ts_pairing_challenge(void)
{
    return 0u;
}

int ts_pairing_open(void)
{
    return 0;
}

size_t ts_pairing_encode(const ts_header_t *h, const uint8_t *payload, size_t len, uint8_t *out,
                         size_t cap)
{
    (void)h;
    (void)payload;
    (void)len;
    (void)out;
    (void)cap;
    return 0;
}

void ts_msg_open(const ts_header_t *h, const uint8_t *payload)
{
    (void)payload;
    ts_client_error(h->step, TS_ERR_CODE_UNEXPECTED,
                    "this image has no pairing key (exported with --insecure): talk in clear");
}

int ts_pairing_accept(ts_header_t *h, uint8_t *raw, const uint8_t **payload)
{
    (void)raw;
    (void)payload;
    if (h->type & TS_WIRE_SEALED) {
        ts_client.stats.auth_failures++; /* no key here to open it with */
        return 0;
    }
    return h->length <= TS_WIRE_MAX_PAYLOAD;
}

#endif
