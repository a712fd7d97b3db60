/*
 * redis.c — the Redis stream publisher (see redis.h for the design).
 *
 * States: DISCONNECTED → CONNECTING (TCP, AUTH, SELECT, read last id) →
 * SYNCING (replaying from the store) → LIVE (sending bus events as they come).
 * Any send backlog over MAX_INFLIGHT drops back to SYNCING; a lost connection
 * to DISCONNECTED with sent_seq rewound to acked_seq.
 *
 * hiredis is attached to GLib through the small GSource below rather than
 * hiredis' own adapters/glib.h: that adapter's dispatch handles a read right
 * after a write even when the write's error has already freed the context.
 */
#include "redis.h"
#include "core.h"
#include "log.h"
#include "metrics.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INFLIGHT 512
#define BATCH 256
#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 10000
#define HANDSHAKE_TIMEOUT_MS 5000 /* TCP connect, AUTH, SELECT and the last-id read */
#define STALL_MS 5000             /* commands in flight with no reply for this long */

typedef enum { R_DISCONNECTED, R_CONNECTING, R_SYNCING, R_LIVE } rstate;
static const char *const state_names[] = {"disconnected", "connecting", "syncing", "live"};

/* ---- GLib source for one hiredis async context ---- */

typedef struct {
    GSource src;
    redisAsyncContext *ac;
    gpointer tag;
    GIOCondition cond;
} rsource;

static gboolean rsource_dispatch(GSource *s, GSourceFunc cb, gpointer user)
{
    rsource *r = (rsource *)s;
    GIOCondition rev = g_source_query_unix_fd(s, r->tag);
    if (r->ac && (rev & G_IO_OUT))
        redisAsyncHandleWrite(r->ac);
    /* r->ac is cleared by cleanup if that write freed the context. */
    if (r->ac && (rev & (G_IO_IN | G_IO_HUP | G_IO_ERR)))
        redisAsyncHandleRead(r->ac);
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs rsource_funcs = {NULL, NULL, rsource_dispatch, NULL, NULL, NULL};

static void rsource_update(rsource *r, GIOCondition add, GIOCondition del)
{
    r->cond = (r->cond | add) & ~del;
    if (r->tag)
        g_source_modify_unix_fd(&r->src, r->tag, r->cond);
}

static void ev_add_read(void *p)
{
    rsource_update(p, G_IO_IN, 0);
}
static void ev_del_read(void *p)
{
    rsource_update(p, 0, G_IO_IN);
}
static void ev_add_write(void *p)
{
    rsource_update(p, G_IO_OUT, 0);
}
static void ev_del_write(void *p)
{
    rsource_update(p, 0, G_IO_OUT);
}
static void ev_cleanup(void *p)
{
    rsource *r = p;
    r->ac = NULL;
    if (r->tag)
        g_source_remove_unix_fd(&r->src, r->tag);
    r->tag = NULL;
    g_source_destroy(&r->src);
    g_source_unref(&r->src);
}

static void rsource_attach(redisAsyncContext *ac, GMainContext *ctx)
{
    rsource *r = (rsource *)g_source_new(&rsource_funcs, sizeof(rsource));
    r->ac = ac;
    r->tag = g_source_add_unix_fd(&r->src, ac->c.fd, 0);
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    ac->ev.data = r;
    g_source_attach(&r->src, ctx);
}

/* ---- the publisher ---- */

struct core_redis {
    core_loop *loop;
    core_store *store;
    core_bus *bus;
    char *host, *password, *stream;
    int port, db, maxlen;
    redisAsyncContext *ac;
    rstate state;
    int64_t sent_seq, acked_seq;
    int inflight;
    gboolean reading;
    guint timer;     /* reconnect backoff */
    guint handshake; /* handshake deadline */
    int64_t last_reply_us;
    int backoff_ms;
    char *last_error;
    unsigned sub;
    gboolean closing;
    unsigned generation; /* bumps on every new connection; stale replies are ignored */
    core_metric *m_connected, *m_published, *m_reconnects;
};

static void pump(core_redis *r);
static void start_connect(core_redis *r);

static void set_error(core_redis *r, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void set_error(core_redis *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_free(r->last_error);
    r->last_error = g_strdup_vprintf(fmt, ap);
    va_end(ap);
}

static gboolean retry_cb(gpointer p)
{
    core_redis *r = p;
    r->timer = 0;
    start_connect(r);
    return G_SOURCE_REMOVE;
}

static void schedule_retry(core_redis *r)
{
    if (r->closing || r->timer)
        return;
    int jitter = g_random_int_range(0, r->backoff_ms / 4 + 1);
    r->timer = g_timeout_add(r->backoff_ms + jitter, retry_cb, r);
    r->backoff_ms = MIN(r->backoff_ms * 2, BACKOFF_MAX_MS);
}

static void lost(core_redis *r, const char *why)
{
    if (r->handshake) {
        g_source_remove(r->handshake);
        r->handshake = 0;
    }
    if (r->state != R_DISCONNECTED)
        log_warn("redis.disconnected", "host=%s port=%d reason=\"%s\"", r->host, r->port, why);
    r->ac = NULL;
    r->state = R_DISCONNECTED;
    r->sent_seq = r->acked_seq;
    r->inflight = 0;
    r->generation++;
    core_metric_set(r->m_connected, 0);
    set_error(r, "%s", why);
    schedule_retry(r);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    core_redis *r = ac->data;
    if (!r || r->closing)
        return;
    lost(r, status == REDIS_OK ? "closed" : (ac->errstr[0] ? ac->errstr : "connection lost"));
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    core_redis *r = ac->data;
    if (!r || r->closing)
        return;
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback. */
        lost(r, ac->errstr[0] ? ac->errstr : "connect failed");
    }
}

static gboolean reply_ok(core_redis *r, redisReply *reply, const char *what)
{
    if (!reply)
        return FALSE;
    if (reply->type == REDIS_REPLY_ERROR) {
        set_error(r, "%s: %s", what, reply->str);
        log_error("redis.error", "command=%s error=\"%s\"", what, reply->str);
        return FALSE;
    }
    return TRUE;
}

static unsigned gen_of(void *priv)
{
    return (unsigned)GPOINTER_TO_UINT(priv);
}

static void on_setup_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    core_redis *r = ac->data;
    if (!r || r->closing || gen_of(priv) != r->generation)
        return;
    if (!reply_ok(r, reply, "AUTH/SELECT") && reply)
        redisAsyncDisconnect(ac);
}

static void on_last_id(redisAsyncContext *ac, void *reply, void *priv)
{
    core_redis *r = ac->data;
    if (!r || r->closing || gen_of(priv) != r->generation)
        return;
    redisReply *rep = reply;
    if (!reply_ok(r, rep, "XREVRANGE"))
        return;
    int64_t remote = 0;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 &&
        rep->element[0]->type == REDIS_REPLY_ARRAY && rep->element[0]->elements > 0)
        remote = g_ascii_strtoll(rep->element[0]->element[0]->str, NULL, 10);
    int64_t local = core_bus_last_seq(r->bus);
    if (remote > local)
        log_warn("redis.stream_ahead",
                 "stream=%s remote_seq=%" G_GINT64_FORMAT " local_seq=%" G_GINT64_FORMAT
                 " note=\"events up to the remote seq are skipped\"",
                 r->stream, remote, local);
    /* Never replay more history than the stream keeps. */
    int64_t floor = local > r->maxlen ? local - r->maxlen : 0;
    r->acked_seq = r->sent_seq = MAX(remote, floor);
    r->state = R_SYNCING;
    r->last_reply_us = core_mono_us();
    if (r->handshake) {
        g_source_remove(r->handshake);
        r->handshake = 0;
    }
    r->backoff_ms = BACKOFF_MIN_MS;
    g_clear_pointer(&r->last_error, g_free);
    core_metric_set(r->m_connected, 1);
    log_info("redis.connected", "host=%s port=%d stream=%s resume_after=%" G_GINT64_FORMAT, r->host,
             r->port, r->stream, r->acked_seq);
    pump(r);
}

typedef struct {
    core_redis *r;
    unsigned generation;
    int64_t seq;
} xadd_ctx;

static void on_xadd(redisAsyncContext *ac, void *reply, void *priv)
{
    xadd_ctx *x = priv;
    core_redis *r = x->r;
    unsigned gen = x->generation;
    int64_t seq = x->seq;
    g_free(x);
    if (r->closing || gen != r->generation || !reply)
        return;
    redisReply *rep = reply;
    r->inflight--;
    r->last_reply_us = core_mono_us();
    /* "equal or smaller than the target stream top item": already published. */
    if (rep->type == REDIS_REPLY_ERROR && !strstr(rep->str, "equal or smaller")) {
        set_error(r, "XADD: %s", rep->str);
        log_error("redis.xadd", "seq=%" G_GINT64_FORMAT " error=\"%s\"", seq, rep->str);
    } else {
        core_metric_add(r->m_published, 1);
    }
    if (seq > r->acked_seq)
        r->acked_seq = seq;
    pump(r);
}

static void xadd(core_redis *r, core_event *ev)
{
    char id[32], maxlen[24], at[32];
    g_snprintf(id, sizeof id, "%" G_GINT64_FORMAT "-0", ev->seq);
    g_snprintf(maxlen, sizeof maxlen, "%d", r->maxlen);
    core_iso8601(ev->at_ms, at, sizeof at);
    char *data = json_dumps(ev->data, JSON_COMPACT);
    const char *argv[] = {
        "XADD", r->stream, "MAXLEN", "~",       maxlen,    id,          "type", ev->type,
        "at",   at,        "actor",  ev->actor, "subject", ev->subject, "data", data ? data : "{}"};
    xadd_ctx *x = g_new(xadd_ctx, 1);
    *x = (xadd_ctx){r, r->generation, ev->seq};
    if (redisAsyncCommandArgv(r->ac, on_xadd, x, G_N_ELEMENTS(argv), argv, NULL) == REDIS_OK) {
        if (r->inflight == 0)
            r->last_reply_us = core_mono_us(); /* the stall clock starts now */
        r->inflight++;
        r->sent_seq = ev->seq;
    } else {
        g_free(x);
    }
    free(data);
}

typedef struct {
    core_redis *r;
    unsigned generation;
} catchup;

static void catchup_done(GPtrArray *events, void *p)
{
    catchup *c = p;
    core_redis *r = c->r;
    r->reading = FALSE;
    if (!r->closing && c->generation == r->generation && r->state == R_SYNCING) {
        for (guint i = 0; i < events->len; i++) {
            core_event *ev = events->pdata[i];
            if (ev->seq == r->sent_seq + 1)
                xadd(r, ev);
        }
        pump(r);
    }
    g_free(c);
    if (r->closing)
        g_free(r); /* core_redis_free deferred the final free to us */
}

static void pump(core_redis *r)
{
    if (r->closing || r->state < R_SYNCING || r->reading)
        return;
    int64_t last = core_bus_last_seq(r->bus);
    if (r->sent_seq >= last) {
        if (r->state != R_LIVE && r->inflight == 0)
            r->state = R_LIVE;
        return;
    }
    if (r->inflight > MAX_INFLIGHT - BATCH)
        return; /* an acknowledgement will call us again */
    r->state = R_SYNCING;
    catchup *c = g_new0(catchup, 1);
    *c = (catchup){r, r->generation};
    r->reading = TRUE;
    if (core_store_read_events(r->store, r->sent_seq, BATCH, catchup_done, c) != 0) {
        r->reading = FALSE;
        g_free(c);
    }
}

static void on_event(core_event *ev, void *user)
{
    core_redis *r = user;
    if (r->state == R_LIVE && ev->seq == r->sent_seq + 1 && r->inflight < MAX_INFLIGHT)
        xadd(r, ev);
    else if (r->state >= R_SYNCING)
        pump(r);
}

/* A peer that accepts the connection but never answers must not hold us in
 * "connecting" for ever. */
static gboolean handshake_expired(gpointer p)
{
    core_redis *r = p;
    r->handshake = 0;
    if (r->state == R_CONNECTING && r->ac) {
        redisAsyncContext *ac = r->ac;
        lost(r, "no answer from Redis within 5 s");
        ac->data = NULL; /* its callbacks must not see us again */
        redisAsyncFree(ac);
    }
    return G_SOURCE_REMOVE;
}

static void start_connect(core_redis *r)
{
    if (r->closing)
        return;
    core_metric_add(r->m_reconnects, 1);
    redisAsyncContext *ac = redisAsyncConnect(r->host, r->port);
    if (!ac) {
        lost(r, "out of memory");
        return;
    }
    if (ac->err) {
        char *why = g_strdup(ac->errstr);
        redisAsyncFree(ac);
        lost(r, why);
        g_free(why);
        return;
    }
    r->generation++;
    r->ac = ac;
    ac->data = r;
    r->state = R_CONNECTING;
    r->handshake = g_timeout_add(HANDSHAKE_TIMEOUT_MS, handshake_expired, r);
    rsource_attach(ac, core_loop_context(r->loop));
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    void *gen = GUINT_TO_POINTER(r->generation);
    if (r->password) {
        const char *argv[] = {"AUTH", r->password};
        redisAsyncCommandArgv(ac, on_setup_reply, gen, 2, argv, NULL);
    }
    if (r->db) {
        char db[16];
        g_snprintf(db, sizeof db, "%d", r->db);
        const char *argv[] = {"SELECT", db};
        redisAsyncCommandArgv(ac, on_setup_reply, gen, 2, argv, NULL);
    }
    const char *argv[] = {"XREVRANGE", r->stream, "+", "-", "COUNT", "1"};
    redisAsyncCommandArgv(ac, on_last_id, gen, G_N_ELEMENTS(argv), argv, NULL);
}

static double lag_metric(void *user)
{
    core_redis_status_t s;
    core_redis_status(user, &s);
    return (double)s.lag;
}

static int parse_url(core_redis *r, const char *url, char **err)
{
    GError *gerr = NULL;
    char *with_scheme = strstr(url, "://") ? g_strdup(url) : g_strdup_printf("redis://%s", url);
    GUri *u = g_uri_parse(with_scheme, G_URI_FLAGS_HAS_PASSWORD, &gerr);
    g_free(with_scheme);
    if (!u) {
        *err = g_strdup_printf("--redis: %s", gerr->message);
        g_error_free(gerr);
        return CORE_EINVAL;
    }
    int rc = 0;
    const char *path = g_uri_get_path(u);
    if (g_strcmp0(g_uri_get_scheme(u), "redis") != 0 || !g_uri_get_host(u) || !*g_uri_get_host(u)) {
        *err = g_strdup_printf("--redis: expected redis://host[:port][/db], got '%s'", url);
        rc = CORE_EINVAL;
    } else {
        r->host = g_strdup(g_uri_get_host(u));
        r->port = g_uri_get_port(u) > 0 ? g_uri_get_port(u) : 6379;
        r->password = g_strdup(g_uri_get_password(u));
        if (path && path[0] == '/' && path[1])
            r->db = atoi(path + 1);
    }
    g_uri_unref(u);
    return rc;
}

int core_redis_url_check(const char *url, char **err)
{
    core_redis probe = {0};
    int rc = parse_url(&probe, url, err);
    g_free(probe.host);
    g_free(probe.password);
    return rc;
}

core_redis *core_redis_new(core_loop *loop, core_store *store, core_bus *bus, const char *url,
                           const char *stream, int maxlen, char **err)
{
    core_redis *r = g_new0(core_redis, 1);
    *err = NULL;
    if (parse_url(r, url, err)) {
        g_free(r);
        return NULL;
    }
    r->loop = loop;
    r->store = store;
    r->bus = bus;
    r->stream = g_strdup(stream);
    r->maxlen = maxlen;
    r->backoff_ms = BACKOFF_MIN_MS;
    r->m_connected = core_gauge("citycmd_redis_connected", "1 when the Redis link is up.", "");
    r->m_published =
        core_counter("citycmd_redis_published_total", "Events acknowledged by Redis.", "");
    r->m_reconnects =
        core_counter("citycmd_redis_connect_attempts_total", "Connection attempts to Redis.", "");
    core_gauge_fn("citycmd_redis_lag_events", "Committed events not yet in Redis.", "", lag_metric,
                  r);
    r->sub = core_bus_subscribe(bus, "", on_event, r);
    start_connect(r);
    return r;
}

void core_redis_status(core_redis *r, core_redis_status_t *out)
{
    /* Connected but not acknowledging (a frozen or overloaded Redis). */
    gboolean stalled = r->state >= R_SYNCING && r->inflight > 0 &&
                       core_mono_us() - r->last_reply_us > (int64_t)STALL_MS * 1000;
    out->state = stalled ? "stalled" : state_names[r->state];
    out->connected = r->state >= R_SYNCING && !stalled;
    out->published_seq = r->acked_seq;
    out->lag = MAX(0, core_bus_last_seq(r->bus) - r->acked_seq);
    out->last_error = r->last_error;
}

void core_redis_free(core_redis *r)
{
    if (!r)
        return;
    r->closing = TRUE;
    core_bus_unsubscribe(r->bus, r->sub);
    if (r->timer)
        g_source_remove(r->timer);
    if (r->handshake)
        g_source_remove(r->handshake);
    if (r->ac)
        redisAsyncFree(r->ac); /* calls pending callbacks with NULL; they see closing */
    g_free(r->host);
    g_free(r->password);
    g_free(r->stream);
    g_free(r->last_error);
    if (!r->reading)
        g_free(r);
}
