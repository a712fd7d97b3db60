/*
 * ws.c — the /ws WebSocket: envelope messages, subscriptions, bounded send queues.
 *
 * Every client has a send queue with two limits: --ws-queue-max bytes (soft:
 * a burst, such as one group commit's events, may exceed it for up to 2 s)
 * and four times that (hard: cut off at once). Broadcast messages are built
 * once and shared (refcounted) by every queue. A message with a coalescing key
 * replaces a queued message with the same key (the newest state of a thing is
 * all a slow screen needs); a client still over its limits is cut off. Writes happen only in
 * WRITEABLE callbacks, one message each, so libwebsockets never buffers more than one message.
 *
 * Subscribing with "after": N replays committed events after N from the store
 * before live ones; live events that arrive during the replay wait in the same
 * bounded queue, so nothing is lost or reordered across a reconnect.
 *
 * The "incidents" topic serves the live board (dispatch/board.c): a snapshot
 * of the open incidents the client may see inside its viewport, then each
 * change as the fields it changed (or the whole new state when the client
 * did not hold the incident in sync), keyed by incident so a slow screen
 * gets only the newest, and a removal when one ends or leaves its view.
 *
 * When several messages are queued, one WRITEABLE sends them together as
 * {"type":"batch","data":[…]}: under load a screen gets a few large frames
 * rather than thousands of small ones.
 *
 * Clients are refcounted: the connection holds one reference, a replay read in
 * flight another. Loop thread only.
 */
#include "internal.h"

#include "../core/core.h"
#include "../core/log.h"
#include "../dispatch/incident.h"

#include <sodium.h>

#include <math.h>
#include <string.h>
#include <sys/socket.h>

#define REPLAY_MAX 1000
#define BATCH_MAX (256 * 1024) /* bytes a batch frame gathers */
#define FLUSH_MS 5             /* broadcast messages wait this long to share a frame */
/* Ids are positive and below 2^62: they serve as hash keys as they are. */
#define ID_KEY(id) GSIZE_TO_POINTER((gsize)(id))
/* The key of a client's units message: above every incident id. */
#define UNITS_KEY ((int64_t)1 << 62)
#define REC_KEY ((int64_t)1 << 61)
G_STATIC_ASSERT(sizeof(gsize) >= sizeof(int64_t));
#define SOFT_TO_HARD 4                     /* hard queue limit = 4 x --ws-queue-max */
#define SOFT_GRACE_US (2 * G_USEC_PER_SEC) /* time a queue may stay over the soft limit */

typedef struct out_msg {
    struct out_msg *next;
    GBytes *buf; /* LWS_PRE bytes of headroom, then the payload */
    int64_t key; /* coalescing key (an incident's id) or 0 */
} out_msg;

/* A FIFO of messages linked through themselves: a broadcast to a hundred
 * clients costs a hundred small allocations, not two hundred. */
typedef struct {
    out_msg *head, *tail;
} msg_queue;

typedef struct ws_client {
    web_server *srv;
    struct lws *wsi;
    int refs;
    uint64_t id;
    char peer[64];
    GByteArray *rx;
    msg_queue out;
    GHashTable *keyed; /* coalescing key (an id, as a pointer) -> out_msg* waiting in out */
    size_t out_bytes;
    int sub_events;
    int sub_incidents;
    int sub_units;
    ws_units_view uview; /* the units it holds (ws_units.c) */
    ws_rec_watch rec;    /* the incident whose recommendations it follows (ws_recommend.c) */
    ws_video *video;     /* its live video tiles (ws_video.c), or NULL */
    int video_turn;      /* the next WRITEABLE writes video first */
    int has_bbox;
    int64_t district; /* the viewport is this district of the city (its bbox in bbox), or 0 */
    double bbox[4];   /* viewport: west, south, east, north */
    int slot;         /* its bit in the holders of each incident */
    guint shown;      /* how many incidents it holds */
    int replaying;    /* live events queue behind the replay */
    int64_t replay_after;
    msg_queue held; /* live events arriving during a replay */
    size_t held_bytes;
    int64_t last_sent_seq;
    char *token;           /* the session's bearer token */
    core_session *session; /* NULL once the session ended */
    double tokens;
    int64_t refill_us;
    int rate_told;         /* a rate_limited error went out in this burst */
    int64_t over_since_us; /* when the queue went over the soft limit, or 0 */
    int want_write;        /* a WRITEABLE callback is asked for */
    int flush_due;         /* broadcast messages wait for the next flush tick */
    int hold_open;         /* policy close: send our own close frame, stop reading */
    int close_sent;
    int closing; /* 0, or a close status to send */
    char close_reason[64];
} ws_client;

typedef struct {
    ws_client *c;
    char token[100]; /* from the upgrade request, until ESTABLISHED */
} ws_pss;
G_STATIC_ASSERT(sizeof(ws_pss) <= WEB_PSS_SIZE);

static uint64_t next_client_id = 1;

static void out_msg_free(gpointer p)
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

static out_msg *q_pop(msg_queue *q)
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
    while ((m = q_pop(q)))
        out_msg_free(m);
}

static size_t msg_len(const out_msg *m)
{
    return g_bytes_get_size(m->buf) - LWS_PRE;
}

static GBytes *frame_bytes(const char *payload, size_t n)
{
    guint8 *b = g_malloc(LWS_PRE + n);
    memcpy(b + LWS_PRE, payload, n);
    return g_bytes_new_take(b, LWS_PRE + n);
}

static void client_unref(ws_client *c)
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

static void drop_queue(ws_client *c)
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
    drop_queue(c);
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

/* Asks for a clean close with status; the close frame goes out at the next WRITEABLE. */
static void close_gracefully(ws_client *c, int status, const char *why, int grace_secs)
{
    if (c->closing || !c->wsi)
        return;
    c->closing = status;
    g_strlcpy(c->close_reason, why, sizeof c->close_reason);
    drop_queue(c);
    lws_callback_on_writable(c->wsi);
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, grace_secs);
}

#define Q_HOLD 1   /* behind a replay */
#define Q_FORCE 2  /* a snapshot: bounded by the board, not by the queue limits */
#define Q_SOON 4   /* a broadcast: goes out at the next flush tick, with the others */
#define Q_DIRECT 8 /* the caller writes it itself (write_now) */

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
static void enqueue(ws_client *c, GBytes *buf, int64_t key, int flags)
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
        *bytes = *bytes - msg_len(old) + n;
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
    out_msg *m = q_pop(&c->out);
    if (!m)
        return NULL;
    c->out_bytes -= msg_len(m);
    if (m->key && g_hash_table_lookup(c->keyed, ID_KEY(m->key)) == m)
        g_hash_table_remove(c->keyed, ID_KEY(m->key));
    return m;
}

static void send_text(ws_client *c, char *payload /* freed */)
{
    GBytes *b = frame_bytes(payload, strlen(payload));
    free(payload);
    enqueue(c, b, 0, 0);
    g_bytes_unref(b);
}

static void send_error(ws_client *c, const json_t *re, const char *code, const char *fmt, ...)
    G_GNUC_PRINTF(4, 5);
static void send_error(ws_client *c, const json_t *re, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    send_text(c, web_envelope_error(re, code, msg));
    g_free(msg);
}

static GBytes *event_frame(core_event *ev)
{
    char *s = g_strdup_printf("{\"type\":\"event\",\"data\":%s}", core_event_json(ev));
    GBytes *b = frame_bytes(s, strlen(s));
    g_free(s);
    return b;
}

/* ---- broadcast ---- */

static void on_bus_event(core_event *ev, void *user)
{
    web_server *srv = user;
    GBytes *frame = NULL;
    for (GList *l = srv->ws_clients; l; l = l->next) {
        ws_client *c = l->data;
        if (!c->sub_events || c->closing || !c->session || !core_may_see_event(c->session, ev))
            continue;
        if (!frame)
            frame = event_frame(ev);
        if (c->replaying) {
            enqueue(c, frame, 0, Q_HOLD);
        } else if (ev->seq > c->last_sent_seq) {
            c->last_sent_seq = ev->seq;
            enqueue(c, frame, 0, Q_SOON);
        }
    }
    if (frame)
        g_bytes_unref(frame);
}

/* ---- replay after a reconnect ---- */

typedef struct {
    ws_client *c;
    int64_t after;
    json_t *re;
} replay;

static int64_t frame_seq(const out_msg *m)
{
    /* Held frames are events: {"type":"event","data":{"seq":N,… */
    const char *s = (const char *)g_bytes_get_data(m->buf, NULL) + LWS_PRE;
    const char *p = strstr(s, "\"seq\":");
    return p ? g_ascii_strtoll(p + 6, NULL, 10) : 0;
}

static void replay_done(GPtrArray *events, void *p)
{
    replay *r = p;
    ws_client *c = r->c;
    if (c->wsi && !c->closing) {
        c->replaying = 0;
        if (events->len > REPLAY_MAX) {
            send_error(c, r->re, "resync_required",
                       "more than %d events were missed; reload the state over the API",
                       REPLAY_MAX);
            g_ptr_array_set_size(events, 0);
        }
        c->last_sent_seq = r->after;
        for (guint i = 0; i < events->len; i++) {
            core_event *ev = events->pdata[i];
            c->last_sent_seq = ev->seq;
            if (!c->session || !core_may_see_event(c->session, ev))
                continue;
            GBytes *f = event_frame(ev);
            enqueue(c, f, 0, 0);
            g_bytes_unref(f);
        }
        out_msg *m;
        while ((m = q_pop(&c->held))) {
            c->held_bytes -= msg_len(m);
            int64_t seq = frame_seq(m);
            if (seq > c->last_sent_seq) {
                c->last_sent_seq = seq;
                enqueue(c, m->buf, 0, 0);
            }
            out_msg_free(m);
        }
    }
    json_decref(r->re);
    client_unref(c);
    g_free(r);
}

/* ---- incoming messages ---- */

/* ---- the incidents topic: the live board, by viewport ---- */

static int parse_bbox(json_t *v, double out[4])
{
    if (!json_is_array(v) || json_array_size(v) != 4)
        return -1;
    for (size_t i = 0; i < 4; i++) {
        json_t *n = json_array_get(v, i);
        if (!json_is_number(n) || !isfinite(json_number_value(n)))
            return -1;
        out[i] = json_number_value(n);
    }
    return out[0] >= -180 && out[2] <= 180 && out[1] >= -90 && out[3] <= 90 && out[0] < out[2] &&
                   out[1] < out[3]
               ? 0
               : -1;
}

static int live_visible(const ws_client *c, const disp_live *l)
{
    if (c->has_bbox &&
        (l->lon < c->bbox[0] || l->lon > c->bbox[2] || l->lat < c->bbox[1] || l->lat > c->bbox[3]))
        return 0;
    if (c->district && !gis_district_contains(c->srv->deps.city, c->district, l->lon, l->lat))
        return 0;
    return core_may_any(c->session, CORE_ACT_INCIDENTS_READ, l->agencies);
}

typedef struct {
    int has_bbox;
    double bbox[4];
    int64_t district;
} view;

/* The viewport of data: "bbox" [w,s,e,n] (null or absent: the whole city)
 * or "district" (an id of /api/v1/gis/districts: its area). 0, or -1 after
 * sending the error. */
static int parse_view(ws_client *c, const json_t *re, json_t *data, view *v)
{
    json_t *bbox = json_object_get(data, "bbox"), *district = json_object_get(data, "district");
    memset(v, 0, sizeof *v);
    if (district && !json_is_null(district)) {
        if (!json_is_integer(district) || !c->srv->deps.city ||
            gis_district_bbox(c->srv->deps.city, json_integer_value(district), v->bbox) != 0) {
            send_error(c, re, "invalid_message",
                       "\"data.district\" must be the id of one of the city's districts");
            return -1;
        }
        v->district = json_integer_value(district);
        v->has_bbox = 1;
        return 0;
    }
    if (bbox && !json_is_null(bbox) && parse_bbox(bbox, v->bbox) != 0) {
        send_error(c, re, "invalid_message",
                   "\"data.bbox\" must be [west, south, east, north] in degrees, or null");
        return -1;
    }
    v->has_bbox = bbox && !json_is_null(bbox);
    return 0;
}

static void set_view(ws_client *c, const view *v)
{
    c->has_bbox = v->has_bbox;
    memcpy(c->bbox, v->bbox, sizeof c->bbox);
    c->district = v->district;
    c->uview.district = v->district;
}

static GBytes *json_frame(const char *type, json_t *data /* stolen */)
{
    char *s = web_envelope_reply(type, NULL, data);
    GBytes *b = frame_bytes(s, strlen(s));
    free(s);
    return b;
}

/* reason: "ended" (closed, cancelled, merged; with the incident as it
 * ended) or "hidden" (out of the viewport, or no longer readable). */
static GBytes *removed_frame(const disp_live *l, int ended)
{
    json_t *d = json_pack("{sOss}", "id", json_object_get(l->incident, "id"), "reason",
                          ended ? "ended" : "hidden");
    if (ended)
        json_object_set(d, "incident", l->incident);
    return json_frame("incident.removed", d);
}

/* ---- who holds which incident ----
 * Per incident, a bit per client slot: a change costs one lookup, then a
 * bit per client, where a set per client cost a hash lookup per client. */

typedef struct {
    guint n;
    guint64 w[];
} slot_bits;

static slot_bits *holders_of(web_server *srv, int64_t id)
{
    return g_hash_table_lookup(srv->ws_holders, ID_KEY(id));
}

static int holds(const ws_client *c, const slot_bits *b)
{
    guint i = (guint)c->slot / 64;
    return b && i < b->n && ((b->w[i] >> (c->slot % 64)) & 1);
}

static void show(ws_client *c, const disp_live *l)
{
    web_server *srv = c->srv;
    slot_bits *b = holders_of(srv, l->id);
    guint i = (guint)c->slot / 64;
    if (!b || i >= b->n) {
        guint n = MAX(i + 1, srv->ws_slot_words);
        slot_bits *nb = g_malloc0(sizeof *nb + n * sizeof nb->w[0]);
        nb->n = n;
        if (b)
            memcpy(nb->w, b->w, b->n * sizeof b->w[0]);
        g_hash_table_replace(srv->ws_holders, ID_KEY(l->id), nb);
        b = nb;
    }
    if (!holds(c, b)) {
        b->w[i] |= (guint64)1 << (c->slot % 64);
        c->shown++;
    }
}

/* Returns whether the client held it. */
static int unshow(ws_client *c, int64_t id)
{
    slot_bits *b = holders_of(c->srv, id);
    if (!holds(c, b))
        return 0;
    b->w[c->slot / 64] &= ~((guint64)1 << (c->slot % 64));
    c->shown--;
    return 1;
}

static void unshow_all(ws_client *c)
{
    GHashTableIter it;
    gpointer k;
    g_hash_table_iter_init(&it, c->srv->ws_holders);
    while (c->shown && g_hash_table_iter_next(&it, &k, NULL))
        unshow(c, (int64_t)GPOINTER_TO_SIZE(k));
    c->shown = 0;
}

/* The lowest free slot (the connection count is capped by --ws-max-clients). */
static int take_slot(web_server *srv)
{
    guint w = 0;
    while (w < srv->ws_slot_map->len && g_array_index(srv->ws_slot_map, guint64, w) == ~(guint64)0)
        w++;
    if (w == srv->ws_slot_map->len) {
        guint64 zero = 0;
        g_array_append_val(srv->ws_slot_map, zero);
        srv->ws_slot_words = srv->ws_slot_map->len;
    }
    guint64 *word = &g_array_index(srv->ws_slot_map, guint64, w);
    int bit = __builtin_ctzll(~*word);
    *word |= (guint64)1 << bit;
    return (int)(w * 64 + (guint)bit);
}

static void give_slot(web_server *srv, int slot)
{
    g_array_index(srv->ws_slot_map, guint64, slot / 64) &= ~((guint64)1 << (slot % 64));
}

/* A client that holds the incident, with nothing about it still queued,
 * holds the board's previous state: the changed fields bring it up to date.
 * Otherwise it gets the whole state, which also replaces whatever about the
 * incident is still waiting in its queue. */
static void on_live(const disp_live *l, int gone, void *user)
{
    web_server *srv = user;
    GBytes *full = NULL, *delta = NULL, *rem = NULL;
    int nothing = l->changed && json_object_size(l->changed) <= 1; /* only the id */
    for (GList *it = srv->ws_clients; it; it = it->next) {
        ws_client *c = it->data;
        if (!c->sub_incidents || c->closing || !c->session)
            continue;
        int had = holds(c, holders_of(srv, l->id));
        if (!gone && live_visible(c, l)) {
            int queued =
                g_hash_table_size(c->keyed) > 0 && g_hash_table_contains(c->keyed, ID_KEY(l->id));
            if (had && !queued && l->changed) {
                if (nothing)
                    continue;
                if (!delta)
                    delta = json_frame("incident.changed", json_incref(l->changed));
                enqueue(c, delta, l->id, Q_SOON);
            } else {
                if (!full)
                    full = json_frame("incident", json_incref(l->incident));
                show(c, l);
                enqueue(c, full, l->id, Q_SOON);
            }
        } else if (had) {
            unshow(c, l->id);
            if (!rem)
                rem = removed_frame(l, gone);
            enqueue(c, rem, l->id, Q_SOON);
        }
    }
    if (gone)
        g_hash_table_remove(srv->ws_holders, ID_KEY(l->id));
    if (full)
        g_bytes_unref(full);
    if (delta)
        g_bytes_unref(delta);
    if (rem)
        g_bytes_unref(rem);
}

typedef struct {
    ws_client *c;
    json_t *list; /* snapshot: the visible ones */
    int entered;  /* viewport change: counts */
    int left;
} live_pass;

static void snapshot_one(const disp_live *l, int gone, void *p)
{
    live_pass *a = p;
    (void)gone;
    if (live_visible(a->c, l)) {
        json_array_append(a->list, l->incident);
        show(a->c, l);
    }
}

static void send_snapshot(ws_client *c)
{
    web_server *srv = c->srv;
    live_pass a = {.c = c, .list = json_array()};
    unshow_all(c);
    disp_live_foreach(srv->deps.incidents, snapshot_one, &a);
    json_t *d =
        json_pack("{soso}", "incidents", a.list, "bbox",
                  c->has_bbox ? json_pack("[ffff]", c->bbox[0], c->bbox[1], c->bbox[2], c->bbox[3])
                              : json_null());
    GBytes *f = json_frame("incidents.snapshot", d);
    enqueue(c, f, 0, Q_FORCE);
    g_bytes_unref(f);
}

static void viewport_one(const disp_live *l, int gone, void *p)
{
    live_pass *a = p;
    (void)gone;
    int had = holds(a->c, holders_of(a->c->srv, l->id));
    if (live_visible(a->c, l)) {
        if (!had) {
            GBytes *f = json_frame("incident", json_incref(l->incident));
            show(a->c, l);
            enqueue(a->c, f, l->id, Q_FORCE);
            g_bytes_unref(f);
            a->entered++;
        }
    } else if (had) {
        unshow(a->c, l->id);
        GBytes *f = removed_frame(l, 0);
        enqueue(a->c, f, l->id, Q_FORCE);
        g_bytes_unref(f);
        a->left++;
    }
}

/* The units in the client's view now (replacing what it held). */
static void send_units_snapshot(ws_client *c)
{
    /* A units message still queued would arrive before the snapshot with
     * what the snapshot has anyway: empty it. */
    if (g_hash_table_contains(c->keyed, ID_KEY(UNITS_KEY))) {
        static const char empty[] = "{\"type\":\"units\",\"data\":{\"units\":[],\"removed\":[]}}";
        GBytes *e = frame_bytes(empty, sizeof empty - 1);
        enqueue(c, e, UNITS_KEY, 0);
        g_bytes_unref(e);
    }
    GBytes *f = ws_units_snapshot(c->srv, &c->uview);
    enqueue(c, f, 0, Q_FORCE);
    g_bytes_unref(f);
}

static int on_writeable(struct lws *wsi, ws_client *c);

/* Writes what a client has queued now, from the loop outside libwebsockets'
 * WRITEABLE callback, when its socket can take it (nothing buffered, not
 * choked); otherwise asks for the callback as usual. A tick that reaches a
 * thousand screens saves, per screen, the round of enabling POLLOUT, waking
 * for it and disabling it again. */
static void write_now(ws_client *c)
{
    if (c->want_write || c->closing || !c->wsi || (!c->out.head && !ws_video_pending(c->video)))
        return;
    if (lws_send_pipe_choked(c->wsi)) {
        want_write(c, 0);
        return;
    }
    if (on_writeable(c->wsi, c) < 0)
        kick(c, "write_failed", c->srv->m_ws_slow);
}

gboolean web_ws__units_tick(gpointer p)
{
    web_server *srv = p;
    srv->units_timer = 0;
    srv->units_tick_us = core_mono_us();
    /* A client still holding its last message queued gets it replaced by
     * one that also carries what that one did: the newest state of each
     * unit, never a backlog. */
    for (GList *l = srv->ws_clients; l; l = l->next) {
        ws_client *c = l->data;
        if (c->sub_units)
            ws_units_view_begin(&c->uview, g_hash_table_contains(c->keyed, ID_KEY(UNITS_KEY)));
    }
    ws_units_collect(srv);
    GHashTable *snippets = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, free);
    for (GList *l = srv->ws_clients; l; l = l->next) {
        ws_client *c = l->data;
        if (!c->sub_units || c->closing || !c->session)
            continue;
        GBytes *f = ws_units_message(srv, &c->uview, snippets);
        if (f) {
            enqueue(c, f, UNITS_KEY, Q_DIRECT);
            g_bytes_unref(f);
            write_now(c);
        }
    }
    g_hash_table_destroy(snippets);
    return G_SOURCE_REMOVE;
}

/* {"type":"recommendations","data":{"incident":"I-1" or null}}: follow
 * that incident's recommendations (ws_recommend.c), the first at once. */
static void on_recommendations(ws_client *c, web_envelope *env)
{
    const char *code = NULL, *why = NULL;
    json_t *now = ws_rec_follow(c->srv, &c->rec, c->session, env->data, &code, &why);
    if (code) {
        send_error(c, env->id, code, "%s", why);
        return;
    }
    send_text(c, web_envelope_reply("recommendations", env->id, now ? now : json_null()));
}

/* The recommendations tick: each follower whose incident's answer changed
 * gets the new one, coalesced like the units (the newest only). */
gboolean web_ws__rec_tick(gpointer p)
{
    web_server *srv = p;
    srv->rec_timer = 0;
    GHashTable *answers =
        g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, (GDestroyNotify)json_decref);
    for (GList *l = srv->ws_clients; l; l = l->next) {
        ws_client *c = l->data;
        if (c->closing || !c->session || !c->rec.incident)
            continue;
        json_t *now = ws_rec_recompute(srv, &c->rec, c->session, answers);
        if (!now)
            continue;
        char *text = web_envelope_reply("recommendations", NULL, now);
        GBytes *f = frame_bytes(text, strlen(text));
        free(text);
        enqueue(c, f, REC_KEY, 0);
        g_bytes_unref(f);
    }
    g_hash_table_destroy(answers);
    return G_SOURCE_REMOVE;
}

/* {"type":"viewport","data":{"bbox":[w,s,e,n] or null}}: the incidents that
 * came into view arrive, the ones that left are removed, the units in view
 * come as a new snapshot, then the reply. */
static void on_viewport(ws_client *c, web_envelope *env)
{
    view v;
    if (parse_view(c, env->id, env->data, &v) != 0)
        return;
    if (!c->sub_incidents && !c->sub_units) {
        send_error(c, env->id, "not_subscribed", "subscribe to \"incidents\" or \"units\" first");
        return;
    }
    set_view(c, &v);
    live_pass a = {.c = c};
    if (c->sub_incidents)
        disp_live_foreach(c->srv->deps.incidents, viewport_one, &a);
    if (c->sub_units)
        send_units_snapshot(c);
    send_text(c, web_envelope_reply("viewport", env->id,
                                    json_pack("{sisisi}", "entered", a.entered, "left", a.left,
                                              "shown", (int)c->shown)));
}

/* ---- subscriptions ---- */

#define TOPIC_EVENTS 1
#define TOPIC_INCIDENTS 2
#define TOPIC_UNITS 4

static void on_subscribe(ws_client *c, web_envelope *env, int on)
{
    json_t *topics = json_object_get(env->data, "topics");
    if (!json_is_array(topics) || json_array_size(topics) == 0) {
        send_error(c, env->id, "invalid_message", "\"data.topics\" must be a non-empty array");
        return;
    }
    web_server *srv = c->srv;
    int want = 0;
    size_t i;
    json_t *t;
    json_array_foreach(topics, i, t)
    {
        const char *name = json_string_value(t);
        if (name && strcmp(name, "events") == 0 && srv->deps.bus)
            want |= TOPIC_EVENTS;
        else if (name && strcmp(name, "incidents") == 0 && srv->deps.incidents)
            want |= TOPIC_INCIDENTS;
        else if (name && strcmp(name, "units") == 0 && srv->deps.avl)
            want |= TOPIC_UNITS;
        else {
            send_error(c, env->id, "unknown_topic",
                       "unknown topic (known: events, incidents, units)");
            return;
        }
    }
    core_action need[3] = {CORE_ACT_EVENTS_READ, CORE_ACT_INCIDENTS_READ, CORE_ACT_UNITS_READ};
    for (int k = 0; k < 3 && on; k++) {
        if ((want & (1 << k)) && !core_may(c->session, need[k], NULL)) {
            const char *name = core_action_name(need[k]);
            core_sessions_audit_denied(srv->deps.sessions, c->session->username, name,
                                       "ws/subscribe", c->peer, "", NULL, NULL);
            send_error(c, env->id, "forbidden", "your role does not allow %s", name);
            return;
        }
    }
    int64_t last = core_bus_last_seq(srv->deps.bus);
    json_t *after = json_object_get(env->data, "after");
    if (on && after && (!json_is_integer(after) || json_integer_value(after) < 0)) {
        send_error(c, env->id, "invalid_message", "\"data.after\" must be a sequence number");
        return;
    }
    view v;
    if (on && parse_view(c, env->id, env->data, &v) != 0)
        return;
    send_text(c,
              web_envelope_reply(on ? "subscribed" : "unsubscribed", env->id,
                                 json_pack("{sOsI}", "topics", topics, "seq", (json_int_t)last)));
    if (on && (want & (TOPIC_INCIDENTS | TOPIC_UNITS)))
        set_view(c, &v);
    if (want & TOPIC_INCIDENTS) {
        c->sub_incidents = on;
        unshow_all(c);
        if (on)
            send_snapshot(c);
    }
    if (want & TOPIC_UNITS) {
        c->sub_units = on;
        ws_units_view_leave(c->srv, &c->uview);
        if (on)
            send_units_snapshot(c);
    }
    if (!(want & TOPIC_EVENTS))
        return;
    c->sub_events = on;
    if (!on || !after || json_integer_value(after) >= last) {
        c->last_sent_seq = last;
        return;
    }
    replay *r = g_new0(replay, 1);
    r->c = c;
    r->after = json_integer_value(after);
    r->re = env->id ? json_incref(env->id) : NULL;
    c->replaying = 1;
    c->refs++;
    if (core_store_read_events(srv->deps.store, r->after, REPLAY_MAX + 1, replay_done, r) != 0) {
        c->replaying = 0;
        c->refs--;
        json_decref(r->re);
        g_free(r);
        send_error(c, env->id, "busy", "cannot replay now; try again");
    }
}

/* Re-checks the connection's session (refreshing its idle clock); closes
 * with 1008 when it has ended. Returns the session or NULL. */
static core_session *recheck_session(ws_client *c)
{
    const char *why;
    c->session = core_sessions_check(c->srv->deps.sessions, c->token, &why);
    if (!c->session)
        close_gracefully(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "session ended", 1);
    return c->session;
}

static void video_send_text(void *client, char *text)
{
    send_text(client, text);
}

static void video_write_now(void *client)
{
    write_now(client);
}

static const ws_video_ops video_ops = {video_send_text, video_write_now};

/* video.watch / video.unwatch (ws_video.c): the tiles start with the first. */
static void on_video(ws_client *c, web_envelope *env)
{
    char **readable = core_readable_agencies(c->session, CORE_ACT_CAMERAS_READ);
    int none = readable && !*readable; /* NULL: every agency */
    g_strfreev(readable);
    if (none) {
        send_error(c, env->id, "forbidden", "watching cameras needs cameras.read");
        return;
    }
    if (!c->video)
        c->video = ws_video_new(c->srv, &video_ops, c);
    ws_video_message(c->video, c->session, env);
}

static void handle_message(ws_client *c)
{
    if (!recheck_session(c))
        return;
    web_envelope env;
    const char *code;
    char *msg = NULL;
    if (web_envelope_parse((const char *)c->rx->data, c->rx->len, &env, &code, &msg) != 0) {
        send_error(c, NULL, code, "%s", msg);
        g_free(msg);
        return;
    }
    if (strcmp(env.type, "ping") == 0) {
        char now[32];
        core_iso8601(core_now_ms(), now, sizeof now);
        send_text(c, web_envelope_reply("pong", env.id, json_pack("{ss}", "server_time", now)));
    } else if (strcmp(env.type, "subscribe") == 0) {
        on_subscribe(c, &env, 1);
    } else if (strcmp(env.type, "unsubscribe") == 0) {
        on_subscribe(c, &env, 0);
    } else if (strcmp(env.type, "viewport") == 0) {
        on_viewport(c, &env);
    } else if (strcmp(env.type, "recommendations") == 0) {
        on_recommendations(c, &env);
    } else if (strcmp(env.type, "video.watch") == 0 || strcmp(env.type, "video.unwatch") == 0) {
        on_video(c, &env);
    } else {
        send_error(c, env.id, "unknown_type", "unknown message type '%s'", env.type);
    }
    web_envelope_clear(&env);
}

/* Token bucket: --ws-rate a second, bursts of twice that. Returns 0 to drop the message. */
static int within_rate(ws_client *c)
{
    double rate = c->srv->cfg->ws_rate;
    int64_t now = core_mono_us();
    c->tokens = MIN(2 * rate, c->tokens + rate * (double)(now - c->refill_us) / 1e6);
    c->refill_us = now;
    c->tokens -= 1;
    if (c->tokens >= 0) {
        c->rate_told = 0;
        return 1;
    }
    core_metric_add(c->srv->m_ws_rate, 1);
    if (c->tokens < -2 * rate) {
        /* Stop reading the flood first: closing a socket with unread input
         * makes the kernel send RST, which can destroy the close frame. */
        lws_rx_flow_control(c->wsi, 0);
        c->hold_open = 1;
        close_gracefully(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "rate limit exceeded", 1);
    } else if (!c->rate_told) { /* once per burst, not once per message */
        c->rate_told = 1;
        send_error(c, NULL, "rate_limited", "more than %d messages a second", (int)rate);
    }
    return 0;
}

static int on_receive(struct lws *wsi, ws_client *c, const void *in, size_t len)
{
    web_server *srv = c->srv;
    if (c->closing)
        return 0;
    if (c->rx->len + len > (size_t)srv->cfg->ws_max_message) {
        core_metric_add(srv->m_ws_toobig, 1);
        log_info("ws.too_large", "client=%" G_GUINT64_FORMAT " limit=%d", c->id,
                 srv->cfg->ws_max_message);
        static const char why[] = "message too large";
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)why,
                         sizeof why - 1);
        return -1;
    }
    g_byte_array_append(c->rx, in, (guint)len);
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
        return 0;
    core_metric_add(srv->m_ws_in, 1);
    if (within_rate(c)) {
        if (lws_frame_is_binary(wsi))
            send_error(c, NULL, "binary_not_accepted", "send JSON text messages");
        else
            handle_message(c);
    }
    g_byte_array_set_size(c->rx, 0);
    return 0;
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

static int on_writeable(struct lws *wsi, ws_client *c)
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
    size_t n = msg_len(m);
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
        out_msg_free(m);
        while (c->out.head && batch->len + msg_len(c->out.head) < LWS_PRE + BATCH_MAX) {
            m = pop_out(c);
            g_byte_array_append(batch, (const guint8 *)",", 1);
            g_byte_array_append(batch, (const guint8 *)g_bytes_get_data(m->buf, NULL) + LWS_PRE,
                                (guint)msg_len(m));
            out_msg_free(m);
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
        out_msg_free(m);
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

/* The bearer token of an upgrade: "bearer.TOKEN" among the offered
 * subprotocols (what a browser can send), or an Authorization header. */
static void upgrade_token(struct lws *wsi, char *out, size_t len)
{
    char buf[512];
    out[0] = '\0';
    if (lws_hdr_copy(wsi, buf, sizeof buf, WSI_TOKEN_PROTOCOL) > 0) {
        char **parts = g_strsplit(buf, ",", -1);
        for (char **p = parts; *p; p++) {
            char *t = g_strstrip(*p);
            if (g_str_has_prefix(t, "bearer."))
                g_strlcpy(out, t + 7, len);
        }
        g_strfreev(parts);
    }
    if (!out[0] && lws_hdr_copy(wsi, buf, sizeof buf, WSI_TOKEN_HTTP_AUTHORIZATION) > 0 &&
        g_ascii_strncasecmp(buf, "Bearer ", 7) == 0)
        g_strlcpy(out, g_strstrip(buf + 7), len);
}

/* A browser's Origin must be this server itself or on --allowed-origins;
 * clients that send no Origin (not browsers) are not subject to it. */
static int origin_allowed(struct lws *wsi, web_server *srv)
{
    char origin[256], host[256], self[300];
    if (lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN) <= 0)
        return 1;
    if (lws_hdr_copy(wsi, host, sizeof host, WSI_TOKEN_HOST) > 0) {
        g_snprintf(self, sizeof self, "http://%s", host);
        if (g_ascii_strcasecmp(origin, self) == 0)
            return 1;
        g_snprintf(self, sizeof self, "https://%s", host);
        if (g_ascii_strcasecmp(origin, self) == 0)
            return 1;
    }
    int ok = 0;
    char **allowed =
        g_strsplit(srv->cfg->allowed_origins ? srv->cfg->allowed_origins : "", ",", -1);
    for (char **a = allowed; *a && !ok; a++) {
        const char *o = g_strstrip(*a);
        ok = *o && g_ascii_strcasecmp(o, origin) == 0;
    }
    g_strfreev(allowed);
    return ok;
}

static int filter_connection(struct lws *wsi, web_server *srv, ws_pss *pss)
{
    char uri[64] = "", peer[64] = "";
    lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI);
    lws_get_peer_simple(wsi, peer, sizeof peer);
    const char *why = NULL, *session_why = NULL;
    int status = HTTP_STATUS_FORBIDDEN;
    upgrade_token(wsi, pss->token, sizeof pss->token);
    int path_ok = strcmp(uri, "/ws") == 0, origin_ok = path_ok && origin_allowed(wsi, srv);
    core_session *s = NULL;
    if (origin_ok)
        s = core_sessions_check(srv->deps.sessions, pss->token, &session_why);
    if (!path_ok) {
        why = "not_found";
        status = HTTP_STATUS_NOT_FOUND;
    } else if (!origin_ok) {
        why = "origin_not_allowed";
        core_sessions_audit_denied(srv->deps.sessions, "", "ws.connect", "/ws", peer,
                                   "origin not allowed", NULL, NULL);
    } else if (!s) {
        why = "unauthorized";
        status = HTTP_STATUS_UNAUTHORIZED;
        if (pss->token[0])
            core_sessions_audit_denied(srv->deps.sessions, "", "ws.connect", "/ws", peer,
                                       session_why, NULL, NULL);
    } else if (srv->draining) {
        why = "shutting_down";
        status = HTTP_STATUS_SERVICE_UNAVAILABLE;
    } else if (srv->ws_count >= srv->cfg->ws_max_clients) {
        why = "too_many_clients";
        status = HTTP_STATUS_SERVICE_UNAVAILABLE;
    }
    if (!why)
        return 0;
    sodium_memzero(pss->token, sizeof pss->token);
    core_metric_add(srv->m_ws_rejected, 1);
    log_info("ws.rejected", "uri=%s reason=%s", uri, why);
    lws_return_http_status(wsi, (unsigned)status, why);
    return 1;
}

static void on_established(struct lws *wsi, web_server *srv, ws_pss *pss)
{
    ws_client *c = g_new0(ws_client, 1);
    c->srv = srv;
    c->wsi = wsi;
    c->refs = 1;
    c->id = next_client_id++;
    c->rx = g_byte_array_new();
    c->tokens = 2.0 * srv->cfg->ws_rate;
    c->refill_us = core_mono_us();
    lws_get_peer_simple(wsi, c->peer, sizeof c->peer);
    /* A small kernel buffer makes a slow screen slow at once, so the
     * coalescing of its queue keeps what it gets fresh. */
    if (srv->cfg->ws_send_buffer > 0) {
        int sz = srv->cfg->ws_send_buffer;
        setsockopt(lws_get_socket_fd(wsi), SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    }
    c->keyed = g_hash_table_new(g_direct_hash, g_direct_equal);
    c->slot = take_slot(srv);
    ws_units_view_init(&c->uview, &c->has_bbox, c->bbox, &c->session);
    const char *why;
    c->token = g_strdup(pss->token);
    sodium_memzero(pss->token, sizeof pss->token);
    c->session = core_sessions_check(srv->deps.sessions, c->token, &why);
    pss->c = c;
    srv->ws_clients = g_list_prepend(srv->ws_clients, c);
    if (!c->session) /* ended between the upgrade and now */
        close_gracefully(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "session ended", 1);
    srv->ws_count++;
    log_debug("ws.open", "client=%" G_GUINT64_FORMAT " peer=%s", c->id, c->peer);
    send_text(c,
              web_envelope_reply(
                  "hello", NULL,
                  json_pack("{sssssIsisisi}", "server", "citycmd", "version", CITYCMD_VERSION,
                            "seq", (json_int_t)core_bus_last_seq(srv->deps.bus), "max_message",
                            srv->cfg->ws_max_message, "ping_interval", srv->cfg->ws_ping_interval,
                            "idle_timeout", srv->cfg->ws_idle_timeout)));
}

static void on_closed(web_server *srv, ws_pss *pss)
{
    ws_client *c = pss->c;
    if (!c)
        return;
    pss->c = NULL;
    srv->ws_clients = g_list_remove(srv->ws_clients, c);
    srv->ws_count--;
    c->wsi = NULL;
    drop_queue(c);
    unshow_all(c);
    give_slot(srv, c->slot);
    ws_units_view_clear(srv, &c->uview);
    ws_rec_clear(&c->rec);
    ws_video_free(c->video);
    c->video = NULL;
    log_debug("ws.close", "client=%" G_GUINT64_FORMAT, c->id);
    client_unref(c);
}

int web_ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    ws_pss *pss = user;
    struct lws_context *ctx = lws_get_context(wsi);
    web_server *srv = ctx ? lws_context_user(ctx) : NULL;
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return filter_connection(wsi, srv, pss);
    case LWS_CALLBACK_ESTABLISHED:
        on_established(wsi, srv, pss);
        return 0;
    case LWS_CALLBACK_RECEIVE:
        return pss->c ? on_receive(wsi, pss->c, in, len) : -1;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return pss->c ? on_writeable(wsi, pss->c) : 0;
    case LWS_CALLBACK_CLOSED:
        on_closed(srv, pss);
        return 0;
    default:
        return 0;
    }
}

static double clients_metric(void *user)
{
    return ((web_server *)user)->ws_count;
}

static double queued_metric(void *user)
{
    size_t total = 0;
    for (GList *l = ((web_server *)user)->ws_clients; l; l = l->next) {
        ws_client *c = l->data;
        total += c->out_bytes + c->held_bytes;
    }
    return (double)total;
}

void web_ws_init(web_server *srv)
{
    srv->m_ws_in =
        core_counter("citycmd_ws_messages_received_total", "WebSocket messages received.", "");
    srv->m_ws_out = core_counter("citycmd_ws_messages_sent_total", "WebSocket messages sent.", "");
    srv->m_ws_slow = core_counter("citycmd_ws_disconnects_total",
                                  "WebSocket clients cut off by the server.", "reason=\"slow\"");
    srv->m_ws_toobig =
        core_counter("citycmd_ws_disconnects_total", "WebSocket clients cut off by the server.",
                     "reason=\"too_large\"");
    srv->m_ws_rate = core_counter("citycmd_ws_rate_limited_total",
                                  "WebSocket messages dropped by the rate limit.", "");
    srv->m_ws_rejected =
        core_counter("citycmd_ws_rejected_total", "WebSocket upgrades refused.", "");
    srv->m_ws_coalesced = core_counter(
        "citycmd_ws_coalesced_total",
        "Queued WebSocket messages replaced by a newer state of the same thing (slow clients).",
        "");
    core_gauge_fn("citycmd_ws_clients", "WebSocket clients connected.", "", clients_metric, srv);
    core_gauge_fn("citycmd_ws_queued_bytes", "Bytes waiting in WebSocket send queues.", "",
                  queued_metric, srv);
    srv->ws_scratch = g_byte_array_sized_new(LWS_PRE + 2 * BATCH_MAX);
    srv->ws_holders = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
    ws_units_init(srv);
    srv->ws_slot_map = g_array_new(FALSE, TRUE, sizeof(guint64));
    srv->bus_sub = core_bus_subscribe(srv->deps.bus, "", on_bus_event, srv);
    if (srv->deps.incidents)
        disp_live_watch(srv->deps.incidents, on_live, srv);
}

int web_ws_session_in_use(web_server *srv, const core_session *s)
{
    for (GList *l = srv->ws_clients; l; l = l->next) {
        ws_client *c = l->data;
        if (c->session == s && !c->closing)
            return 1;
    }
    return 0;
}

void web_ws_session_ended(web_server *srv, const core_session *s)
{
    for (GList *l = srv->ws_clients; l; l = l->next) {
        ws_client *c = l->data;
        if (c->session == s) {
            c->session = NULL;
            close_gracefully(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "session ended", 1);
        }
    }
}

void web_ws_close_all(web_server *srv, int status, const char *why)
{
    for (GList *l = srv->ws_clients; l; l = l->next)
        close_gracefully(l->data, status, why, 1);
}

void web_ws_fini(web_server *srv)
{
    core_bus_unsubscribe(srv->deps.bus, srv->bus_sub);
    ws_units_fini(srv);
    if (srv->ws_flush_timer)
        g_source_remove(srv->ws_flush_timer);
    srv->ws_flush_timer = 0;
    if (srv->ws_scratch)
        g_byte_array_unref(srv->ws_scratch);
    srv->ws_scratch = NULL;
    if (srv->ws_holders)
        g_hash_table_destroy(srv->ws_holders);
    srv->ws_holders = NULL;
    if (srv->ws_slot_map)
        g_array_free(srv->ws_slot_map, TRUE);
    srv->ws_slot_map = NULL;
    if (srv->deps.incidents)
        disp_live_unwatch(srv->deps.incidents, on_live, srv);
}
