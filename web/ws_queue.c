/*
 * ws_queue.c — the send queue of a /ws client (ws_client.h).
 *
 * Every client has a send queue with two limits: --ws-queue-max bytes (soft:
 * a burst, such as one group commit's events, may exceed it for up to 2 s)
 * and four times that (hard: cut off at once). Broadcast messages are built
 * once and shared (refcounted) by every queue. A message with a coalescing key
 * replaces a queued message with the same key (the newest state of a thing is
 * all a slow screen needs); a client still over its limits is cut off. Writes
 * happen in WRITEABLE callbacks (or ws_write_now when the socket can take
 * them), one message each, so libwebsockets never buffers more than one.
 *
 * When several messages are queued, one write sends them together as
 * {"type":"batch","data":[…]}: under load a screen gets a few large frames
 * rather than thousands of small ones. Live video (ws_video.c) has its own
 * queues; the writes alternate between the two when both wait.
 *
 * Loop thread only.
 */
#include "ws_client.h"

#include "../core/core.h"
#include "../core/log.h"

#include <sodium.h>

#include <string.h>

#define FLUSH_MS 5                         /* broadcast messages wait this long to share a frame */
#define SOFT_TO_HARD 4                     /* hard queue limit = 4 x --ws-queue-max */
#define SOFT_GRACE_US (2 * G_USEC_PER_SEC) /* time a queue may stay over the soft limit */

void ws_out_msg_free(gpointer p)
{
    out_msg *m = p;
    g_bytes_unref(m->buf);
    g_free(m);
}

static void q_push(msg_queue *q, out_msg *m)
{
    m->next = NULL;
    if (q->tail)
        q->tail->next = m;
    else
        q->head = m;
    q->tail = m;
}

out_msg *ws_q_pop(msg_queue *q)
{
    out_msg *m = q->head;
    if (m) {
        q->head = m->next;
        if (!q->head)
            q->tail = NULL;
    }
    return m;
}

static void q_clear(msg_queue *q)
{
    out_msg *m;
    while ((m = ws_q_pop(q)))
        ws_out_msg_free(m);
}

size_t ws_msg_len(const out_msg *m)
{
    return g_bytes_get_size(m->buf) - LWS_PRE;
}

GBytes *ws_frame_bytes(const char *payload, size_t n)
{
    guint8 *b = g_malloc(LWS_PRE + n);
    memcpy(b + LWS_PRE, payload, n);
    return g_bytes_new_take(b, LWS_PRE + n);
}

void ws_client_unref(ws_client *c)
{
    if (--c->refs > 0)
        return;
    g_hash_table_destroy(c->keyed);
    q_clear(&c->out);
    q_clear(&c->held);
    g_byte_array_unref(c->rx);
    if (c->token)
        sodium_memzero(c->token, strlen(c->token));
    g_free(c->token);
    g_free(c);
}

void ws_drop_queue(ws_client *c)
{
    g_hash_table_remove_all(c->keyed);
    q_clear(&c->out);
    q_clear(&c->held);
    c->out_bytes = c->held_bytes = 0;
}

/* Cuts a client off at once (it cannot take a close frame if it is not reading). */
static void kick(ws_client *c, const char *why, core_metric *m)
{
    if (c->closing || !c->wsi)
        return;
    c->closing = LWS_CLOSE_STATUS_POLICY_VIOLATION;
    core_metric_add(m, 1);
    log_warn("ws.disconnect", "client=%" G_GUINT64_FORMAT " peer=%s reason=%s queued_bytes=%zu",
             c->id, c->peer, why, c->out_bytes + c->held_bytes);
    ws_drop_queue(c);
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

/* Asks for a clean close with status; the close frame goes out at the next WRITEABLE. */
void ws_close_gracefully(ws_client *c, int status, const char *why, int grace_secs)
{
    if (c->closing || !c->wsi)
        return;
    c->closing = status;
    g_strlcpy(c->close_reason, why, sizeof c->close_reason);
    ws_drop_queue(c);
    lws_callback_on_writable(c->wsi);
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, grace_secs);
}

static gboolean flush_tick(gpointer p)
{
    web_server *srv = p;
    srv->ws_flush_timer = 0;
    for (GList *l = srv->ws_clients; l; l = l->next) {
        ws_client *c = l->data;
        if (c->flush_due && !c->want_write && c->wsi && !c->closing) {
            c->want_write = 1;
            lws_callback_on_writable(c->wsi);
        }
        c->flush_due = 0;
    }
    return G_SOURCE_REMOVE;
}

/* Asks for a write now, or (a broadcast) at the next flush tick: under load
 * a tick gathers many messages into one frame per client, where writing each
 * at once would cost a system call per message per client. */
static void want_write(ws_client *c, int soon)
{
    if (c->want_write)
        return;
    if (soon) {
        c->flush_due = 1;
        if (!c->srv->ws_flush_timer)
            c->srv->ws_flush_timer = g_timeout_add(FLUSH_MS, flush_tick, c->srv);
        return;
    }
    c->want_write = 1;
    lws_callback_on_writable(c->wsi);
}

/* Queues a message; takes a reference on buf. A keyed message replaces a
 * queued one with the same key (only the out queue has keys). */
void ws_enqueue(ws_client *c, GBytes *buf, int64_t key, int flags)
{
    if (c->closing || !c->wsi)
        return;
    int hold = flags & Q_HOLD;
    msg_queue *q = hold ? &c->held : &c->out;
    size_t *bytes = hold ? &c->held_bytes : &c->out_bytes;
    size_t n = g_bytes_get_size(buf) - LWS_PRE;
    out_msg *old = key && !hold ? g_hash_table_lookup(c->keyed, ID_KEY(key)) : NULL;
    if (old) {
        core_metric_add(c->srv->m_ws_coalesced, 1);
        *bytes = *bytes - ws_msg_len(old) + n;
        g_bytes_unref(old->buf);
        old->buf = g_bytes_ref(buf);
        return;
    }
    /* Soft limit: a burst may exceed it briefly. Hard limit: never. */
    size_t soft = (size_t)c->srv->cfg->ws_queue_max, total = c->out_bytes + c->held_bytes + n;
    if (flags & Q_FORCE) {
        /* counted, never refused */
    } else if (total > SOFT_TO_HARD * soft) {
        kick(c, "slow_consumer", c->srv->m_ws_slow);
        return;
    }
    if (total > soft) {
        int64_t now = core_mono_us();
        if (!c->over_since_us) {
            c->over_since_us = now;
        } else if (now - c->over_since_us > SOFT_GRACE_US) {
            kick(c, "slow_consumer", c->srv->m_ws_slow);
            return;
        }
    }
    out_msg *m = g_new(out_msg, 1);
    m->buf = g_bytes_ref(buf);
    m->key = hold ? 0 : key;
    q_push(q, m);
    if (m->key)
        g_hash_table_insert(c->keyed, ID_KEY(m->key), m);
    *bytes += n;
    if (!hold && !(flags & Q_DIRECT))
        want_write(c, flags & Q_SOON);
}

/* Takes the head of the out queue off the books (NULL when empty). */
static out_msg *pop_out(ws_client *c)
{
    out_msg *m = ws_q_pop(&c->out);
    if (!m)
        return NULL;
    c->out_bytes -= ws_msg_len(m);
    if (m->key && g_hash_table_lookup(c->keyed, ID_KEY(m->key)) == m)
        g_hash_table_remove(c->keyed, ID_KEY(m->key));
    return m;
}

void ws_send_text(ws_client *c, char *payload /* freed */)
{
    GBytes *b = ws_frame_bytes(payload, strlen(payload));
    free(payload);
    ws_enqueue(c, b, 0, 0);
    g_bytes_unref(b);
}

void ws_send_error(ws_client *c, const json_t *re, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    ws_send_text(c, web_envelope_error(re, code, msg));
    g_free(msg);
}

/* Writes what a client has queued now, from the loop outside libwebsockets'
 * WRITEABLE callback, when its socket can take it (nothing buffered, not
 * choked); otherwise asks for the callback as usual. A tick that reaches a
 * thousand screens saves, per screen, the round of enabling POLLOUT, waking
 * for it and disabling it again. */
void ws_write_now(ws_client *c)
{
    if (c->want_write || c->closing || !c->wsi || (!c->out.head && !ws_video_pending(c->video)))
        return;
    if (lws_send_pipe_choked(c->wsi)) {
        want_write(c, 0);
        return;
    }
    if (ws_on_writeable(c->wsi, c) < 0)
        kick(c, "write_failed", c->srv->m_ws_slow);
}

/* Writes a WebSocket close frame as raw bytes (a server frame is unmasked).
 * Used for policy closes: libwebsockets' own close shuts the socket at once,
 * and a client still sending then gets a RST that destroys the close frame;
 * this way the socket stays open, unread, until the grace timeout. */
static int write_close_frame(struct lws *wsi, int status, const char *why)
{
    unsigned char buf[LWS_PRE + 128], *p = buf + LWS_PRE;
    size_t rlen = MIN(strlen(why), (size_t)100);
    p[0] = 0x88; /* FIN + close */
    p[1] = (unsigned char)(2 + rlen);
    p[2] = (unsigned char)(status >> 8);
    p[3] = (unsigned char)(status & 0xff);
    memcpy(p + 4, why, rlen);
    return lws_write(wsi, p, 4 + rlen, LWS_WRITE_HTTP) == (int)(4 + rlen) ? 0 : -1;
}

int ws_on_writeable(struct lws *wsi, ws_client *c)
{
    if (c->closing && c->hold_open) {
        if (!c->close_sent && write_close_frame(wsi, c->closing, c->close_reason))
            return -1;
        c->close_sent = 1;
        return 0; /* the grace timeout closes the socket */
    }
    if (c->closing) {
        lws_close_reason(wsi, (enum lws_close_status)c->closing, (unsigned char *)c->close_reason,
                         strlen(c->close_reason));
        return -1;
    }
    c->want_write = 0;
    /* Video and messages take turns when both wait. */
    if (ws_video_pending(c->video) && (!c->out.head || c->video_turn)) {
        c->video_turn = 0;
        if (ws_video_write_one(c->video, wsi) < 0)
            return -1;
        if (c->out.head || ws_video_pending(c->video)) {
            c->want_write = 1;
            lws_callback_on_writable(wsi);
        }
        return 0;
    }
    c->video_turn = 1;
    out_msg *m = pop_out(c);
    if (!m)
        return 0;
    size_t n = ws_msg_len(m);
    int count = 1;
    GByteArray *batch = NULL;
    guint8 *data;
    if (c->out.head && n < BATCH_MAX) {
        /* Several waiting: one frame carries as many as fit. */
        static const char head[] = "{\"type\":\"batch\",\"data\":[";
        batch = c->srv->ws_scratch; /* reused: one write at a time, on the loop */
        g_byte_array_set_size(batch, LWS_PRE);
        g_byte_array_append(batch, (const guint8 *)head, sizeof head - 1);
        g_byte_array_append(batch, (const guint8 *)g_bytes_get_data(m->buf, NULL) + LWS_PRE,
                            (guint)n);
        ws_out_msg_free(m);
        while (c->out.head && batch->len + ws_msg_len(c->out.head) < LWS_PRE + BATCH_MAX) {
            m = pop_out(c);
            g_byte_array_append(batch, (const guint8 *)",", 1);
            g_byte_array_append(batch, (const guint8 *)g_bytes_get_data(m->buf, NULL) + LWS_PRE,
                                (guint)ws_msg_len(m));
            ws_out_msg_free(m);
            count++;
        }
        g_byte_array_append(batch, (const guint8 *)"]}", 2);
        data = batch->data;
        n = batch->len - LWS_PRE;
        m = NULL;
    } else {
        /* lws writes the frame header into the headroom, so the buffer is written to. */
        data = (guint8 *)g_bytes_get_data(m->buf, NULL);
    }
    int w = lws_write(wsi, data + LWS_PRE, n, LWS_WRITE_TEXT);
    if (m)
        ws_out_msg_free(m);
    if (w < (int)n)
        return -1;
    core_metric_add(c->srv->m_ws_out, count);
    if (c->out_bytes + c->held_bytes <= (size_t)c->srv->cfg->ws_queue_max)
        c->over_since_us = 0;
    if (c->out.head || ws_video_pending(c->video)) {
        c->want_write = 1;
        lws_callback_on_writable(wsi);
    }
    return 0;
}
