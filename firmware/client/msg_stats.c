/* STATS_REQ (empty) -> STATS: the decoder's and the client's counters (spec.STATS_COUNTERS). */
#include "client_internal.h"
#include "ts_board.h"
#include "ts_le.h"

void ts_msg_stats(const ts_header_t *h, const uint8_t *payload)
{
    (void)payload;
    if (h->length != TS_STATS_REQ_FIXED_SIZE) {
        ts_client_error(h->step, TS_ERR_CODE_BAD_REQUEST, "STATS_REQ length mismatch");
        return;
    }
    const ts_frame_decoder_t *d = ts_client_decoder();
    const ts_client_stats_t *s = &ts_client.stats;
    uint8_t *p = ts_tx_payload;
    ts_put_u32(p + TS_STATS_OFF_FRAMES_OK, d->frames_ok);
    ts_put_u32(p + TS_STATS_OFF_CRC_ERRORS, d->crc_errors);
    ts_put_u32(p + TS_STATS_OFF_COBS_ERRORS, d->cobs_errors);
    ts_put_u32(p + TS_STATS_OFF_OVERSIZE, d->oversize);
    ts_put_u32(p + TS_STATS_OFF_SHORT_FRAMES, d->short_frames);
    ts_put_u32(p + TS_STATS_OFF_BAD_MAGIC, d->bad_magic);
    ts_put_u32(p + TS_STATS_OFF_BAD_VERSION, d->bad_version);
    ts_put_u32(p + TS_STATS_OFF_BAD_LENGTH, d->bad_length);
    ts_put_u32(p + TS_STATS_OFF_RESYNCS, d->resyncs);
    ts_put_u32(p + TS_STATS_OFF_RX_TIMEOUTS, s->rx_timeouts);
    ts_put_u32(p + TS_STATS_OFF_DUPLICATES, s->duplicates);
    ts_put_u32(p + TS_STATS_OFF_RETRANSMITS, s->retransmits);
    ts_put_u32(p + TS_STATS_OFF_STALE, s->stale);
    ts_put_u32(p + TS_STATS_OFF_WRONG_SESSION, s->wrong_session);
    ts_put_u32(p + TS_STATS_OFF_ABORTS, s->aborts);
    ts_put_u32(p + TS_STATS_OFF_COMMITS, s->commits);
    ts_put_u32(p + TS_STATS_OFF_GRAD_CRC_ERRORS, s->grad_crc_errors);
    ts_put_u32(p + TS_STATS_OFF_PUSHES, s->pushes);
    ts_put_u32(p + TS_STATS_OFF_ERRORS_SENT, s->errors_sent);
    ts_put_u32(p + TS_STATS_OFF_AUTH_FAILURES, s->auth_failures);
    ts_put_u32(p + TS_STATS_OFF_REPLAYS, s->replays);
    ts_put_u32(p + TS_STATS_OFF_UNSEALED, s->unsealed);
    ts_put_u32(p + TS_STATS_OFF_UPTIME_MS, ts_board_millis());
    ts_client_send(TS_MSG_STATS, h->step, 0u, p, TS_STATS_FIXED_SIZE);
}
