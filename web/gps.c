/*
 * gps.c — the device listeners: OsmAnd over HTTP, GT06 and Teltonika over
 * TCP, each on its own address (--gps-osmand, --gps-gt06, --gps-teltonika;
 * off unless configured).
 *
 * GIO socket services on the loop thread. Each connection reads
 * asynchronously into a fixed 4 KiB buffer and feeds its own decoder
 * (dispatch/gps.h), which keeps at most one unfinished frame; the positions
 * go to dispatch/avl in the order they arrived, and the decoder's answers
 * (acknowledgements) are written back. Bounds: --gps-max-connections at
 * once (more are closed on accept), --gps-idle-timeout without a byte, 64
 * KiB of answers the device has not read, an OsmAnd request of 8 KiB of
 * headers and 64 KiB of body. A decoder error sends what was answered so
 * far, then closes.
 *
 * Connections are refcounted: one reference while open, one per read or
 * write in flight, so a cancelled operation finishing later never touches
 * freed memory.
 */
#include "gps.h"

#include "../core/config.h"
#include "../core/core.h"
#include "../core/log.h"
#include "../core/metrics.h"

#include <gio/gio.h>
#include <string.h>

#define READ_CHUNK 4096
#define WRITE_MAX (64 * 1024)
#define HTTP_HEAD_MAX 8192
#define HTTP_BODY_MAX (64 * 1024)

enum { P_OSMAND, P_GT06, P_TELTONIKA, P_COUNT };
static const char *const proto_names[P_COUNT] = {"osmand", "gt06", "teltonika"};

typedef struct gps_conn gps_conn;

struct web_gps {
    disp_avl *avl;
    GSocketService *svc[P_COUNT];
    int port[P_COUNT];
    int idle_s, max_conns, conns;
    GList *open; /* gps_conn* */
    core_metric *m_conns, *m_refused, *m_errors, *m_positions[DISP_AVL_VERDICTS];
};

struct gps_conn {
    web_gps *g; /* NULL once the listeners are gone */
    int proto, refs, closed, close_after_write;
    GSocketConnection *sc;
    GCancellable *cancel;
    guint8 rbuf[READ_CHUNK];
    GByteArray *wbuf;     /* answers waiting */
    GByteArray *inflight; /* being written */
    GByteArray *http;     /* OsmAnd: the request so far */
    disp_gps_gt06 *gt06;
    disp_gps_teltonika *tel;
    GArray *fixes;
    guint idle;
    char peer[64];
};

static int live_conns; /* connection objects not yet freed (loop thread) */

static void conn_unref(gps_conn *c)
{
    if (--c->refs > 0)
        return;
    live_conns--;
    g_object_unref(c->sc);
    g_object_unref(c->cancel);
    g_byte_array_unref(c->wbuf);
    if (c->inflight)
        g_byte_array_unref(c->inflight);
    if (c->http)
        g_byte_array_unref(c->http);
    disp_gps_gt06_free(c->gt06);
    disp_gps_teltonika_free(c->tel);
    g_array_unref(c->fixes);
    g_free(c);
}

static void conn_close(gps_conn *c, const char *why)
{
    if (c->closed)
        return;
    c->closed = 1;
    if (c->idle)
        g_source_remove(c->idle);
    c->idle = 0;
    g_cancellable_cancel(c->cancel);
    g_io_stream_close(G_IO_STREAM(c->sc), NULL, NULL);
    if (c->g) {
        c->g->conns--;
        c->g->open = g_list_remove(c->g->open, c);
    }
    c->g = NULL;
    log_debug("gps.close", "protocol=%s peer=%s reason=%s", proto_names[c->proto], c->peer, why);
    conn_unref(c);
}

static gboolean on_idle(gpointer p)
{
    gps_conn *c = p;
    c->idle = 0;
    conn_close(c, "idle");
    return G_SOURCE_REMOVE;
}

static void touch(gps_conn *c)
{
    if (c->idle)
        g_source_remove(c->idle);
    c->idle = g_timeout_add_seconds((guint)c->g->idle_s, on_idle, c);
}

static void start_write(gps_conn *c);

static void written(GObject *src, GAsyncResult *res, gpointer p)
{
    gps_conn *c = p;
    GError *e = NULL;
    gboolean ok = g_output_stream_write_all_finish(G_OUTPUT_STREAM(src), res, NULL, &e);
    g_byte_array_unref(c->inflight);
    c->inflight = NULL;
    if (!ok && !c->closed)
        conn_close(c, "write failed");
    g_clear_error(&e);
    if (!c->closed) {
        if (c->wbuf->len)
            start_write(c);
        else if (c->close_after_write)
            conn_close(c, "protocol error");
    }
    conn_unref(c);
}

static void start_write(gps_conn *c)
{
    if (c->closed || c->inflight || !c->wbuf->len)
        return;
    c->inflight = c->wbuf;
    c->wbuf = g_byte_array_new();
    c->refs++;
    g_output_stream_write_all_async(g_io_stream_get_output_stream(G_IO_STREAM(c->sc)),
                                    c->inflight->data, c->inflight->len, G_PRIORITY_DEFAULT,
                                    c->cancel, written, c);
}

/* Queues an answer; a device that lets 64 KiB pile up is not reading. */
static void answer(gps_conn *c, const void *p, size_t n)
{
    if (c->wbuf->len + n > WRITE_MAX) {
        conn_close(c, "answers not read");
        return;
    }
    g_byte_array_append(c->wbuf, p, (guint)n);
    start_write(c);
}

static disp_avl_verdict deliver(gps_conn *c, const disp_gps_fix *f)
{
    disp_avl_verdict v = disp_avl_report(c->g->avl, f, core_now_ms());
    core_metric_add(c->g->m_positions[v], 1);
    return v;
}

/* ---- the binary protocols ---- */

static void feed_binary(gps_conn *c, const guint8 *p, size_t n)
{
    GByteArray *reply = g_byte_array_new();
    g_array_set_size(c->fixes, 0);
    int rc = c->proto == P_GT06 ? disp_gps_gt06_feed(c->gt06, p, n, c->fixes, reply)
                                : disp_gps_teltonika_feed(c->tel, p, n, c->fixes, reply);
    for (guint i = 0; i < c->fixes->len; i++)
        deliver(c, &g_array_index(c->fixes, disp_gps_fix, i));
    if (reply->len)
        answer(c, reply->data, reply->len);
    g_byte_array_unref(reply);
    if (rc && !c->closed) {
        core_metric_add(c->g->m_errors, 1);
        log_info("gps.refused", "protocol=%s peer=%s error=%s", proto_names[c->proto], c->peer,
                 core_strerror(rc));
        c->close_after_write = 1;
        if (!c->inflight && !c->wbuf->len)
            conn_close(c, "protocol error");
    }
}

/* A Teltonika device is accepted when a unit has its IMEI. */
static int teltonika_accept(const char *imei, void *user)
{
    gps_conn *c = user;
    return c->g && disp_avl_known(c->g->avl, imei);
}

/* ---- OsmAnd over HTTP ---- */

static void http_answer(gps_conn *c, int status, const char *reason, const char *text, int close)
{
    char *r =
        g_strdup_printf("HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
                        "content-length: %zu\r\n%s\r\n%s",
                        status, reason, strlen(text), close ? "connection: close\r\n" : "", text);
    answer(c, r, strlen(r));
    g_free(r);
    if (close)
        c->close_after_write = 1;
}

static const char *header(char **lines, const char *name)
{
    size_t n = strlen(name);
    for (char **l = lines[0] ? lines + 1 : lines; *l; l++)
        if (g_ascii_strncasecmp(*l, name, n) == 0 && (*l)[n] == ':')
            return g_strstrip(*l + n + 1);
    return NULL;
}

/* One request: the fix from the query or the body; 200 when it was taken
 * (or refused as outdated and the like: sending it again would not help),
 * 404 for a device no unit has, 400 naming the parameter. */
static void osmand_request(gps_conn *c, const char *target, const char *body, size_t blen,
                           const char *ctype, int close)
{
    disp_gps_fix f;
    char *err = NULL;
    const char *q = strchr(target, '?');
    int rc;
    if (blen && ctype && g_str_has_prefix(ctype, "application/json"))
        rc = disp_gps_osmand_parse_json(body, blen, &f, &err);
    else if (blen) {
        char *form = g_strndup(body, blen);
        rc = disp_gps_osmand_parse_query(form, &f, &err);
        g_free(form);
    } else
        rc = disp_gps_osmand_parse_query(q ? q + 1 : "", &f, &err);
    if (rc) {
        http_answer(c, 400, "Bad Request", err ? err : "not a position", close);
        g_free(err);
        return;
    }
    disp_avl_verdict v = deliver(c, &f);
    if (v == DISP_AVL_UNKNOWN_DEVICE)
        http_answer(c, 404, "Not Found", "no unit has this device id", close);
    else
        http_answer(c, 200, "OK", disp_avl_verdict_name(v), close);
}

static void feed_http(gps_conn *c, const guint8 *p, size_t n)
{
    g_byte_array_append(c->http, p, (guint)n);
    while (!c->closed && !c->close_after_write) {
        const char *s = (const char *)c->http->data;
        const char *end = g_strstr_len(s, c->http->len, "\r\n\r\n");
        if (!end) {
            if (c->http->len > HTTP_HEAD_MAX)
                http_answer(c, 431, "Request Header Fields Too Large", "headers too large", 1);
            return;
        }
        size_t head = (size_t)(end - s) + 4;
        char *text = g_strndup(s, head - 4);
        char **lines = g_strsplit(text, "\r\n", -1);
        /* An empty head has no request line; a short one fewer than 3 parts. */
        char **req = g_strsplit(lines[0] ? lines[0] : "", " ", 3);
        int parts = (int)g_strv_length(req);
        const char *cl = header(lines, "content-length"), *conn = header(lines, "connection");
        gint64 blen = cl ? g_ascii_strtoll(cl, NULL, 10) : 0;
        int http10 = parts == 3 && strcmp(req[2], "HTTP/1.0") == 0;
        int close = http10 || (conn && g_ascii_strcasecmp(conn, "close") == 0);
        if (parts < 3 || !g_str_has_prefix(req[2], "HTTP/1.")) {
            http_answer(c, 400, "Bad Request", "not an HTTP/1.x request", 1);
        } else if (header(lines, "transfer-encoding")) {
            http_answer(c, 411, "Length Required", "send a content-length", 1);
        } else if (blen < 0 || blen > HTTP_BODY_MAX) {
            http_answer(c, 413, "Content Too Large", "body too large", 1);
        } else if (c->http->len >= head + (guint)blen) {
            osmand_request(c, req[1], s + head, (size_t)blen, header(lines, "content-type"), close);
            g_byte_array_remove_range(c->http, 0, (guint)(head + (guint)blen));
        } else {
            blen = -1; /* the body is still coming */
        }
        g_strfreev(req);
        g_strfreev(lines);
        g_free(text);
        if (blen == -1)
            return;
    }
}

/* ---- reading ---- */

static void start_read(gps_conn *c);

static void got(GObject *src, GAsyncResult *res, gpointer p)
{
    gps_conn *c = p;
    GError *e = NULL;
    gssize n = g_input_stream_read_finish(G_INPUT_STREAM(src), res, &e);
    if (!c->closed) {
        if (n <= 0) {
            conn_close(c, n == 0 ? "peer closed" : "read failed");
        } else {
            touch(c);
            if (c->proto == P_OSMAND)
                feed_http(c, c->rbuf, (size_t)n);
            else
                feed_binary(c, c->rbuf, (size_t)n);
            if (!c->closed && !c->close_after_write)
                start_read(c);
        }
    }
    g_clear_error(&e);
    conn_unref(c);
}

static void start_read(gps_conn *c)
{
    c->refs++;
    g_input_stream_read_async(g_io_stream_get_input_stream(G_IO_STREAM(c->sc)), c->rbuf,
                              sizeof c->rbuf, G_PRIORITY_DEFAULT, c->cancel, got, c);
}

static gboolean on_incoming(GSocketService *svc, GSocketConnection *sc, GObject *src, gpointer user)
{
    web_gps *g = user;
    int proto = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(svc), "proto"));
    (void)src;
    if (g->conns >= g->max_conns) {
        core_metric_add(g->m_refused, 1);
        g_io_stream_close(G_IO_STREAM(sc), NULL, NULL);
        return TRUE;
    }
    gps_conn *c = g_new0(gps_conn, 1);
    live_conns++;
    c->g = g;
    c->proto = proto;
    c->refs = 1;
    c->sc = g_object_ref(sc);
    c->cancel = g_cancellable_new();
    c->wbuf = g_byte_array_new();
    c->fixes = g_array_new(FALSE, FALSE, sizeof(disp_gps_fix));
    if (proto == P_OSMAND)
        c->http = g_byte_array_new();
    else if (proto == P_GT06)
        c->gt06 = disp_gps_gt06_new();
    else
        c->tel = disp_gps_teltonika_new(teltonika_accept, c);
    GSocketAddress *a = g_socket_connection_get_remote_address(sc, NULL);
    if (G_IS_INET_SOCKET_ADDRESS(a)) {
        char *ip =
            g_inet_address_to_string(g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(a)));
        g_snprintf(c->peer, sizeof c->peer, "%s:%u", ip,
                   g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(a)));
        g_free(ip);
    }
    if (a)
        g_object_unref(a);
    g->conns++;
    g->open = g_list_prepend(g->open, c);
    core_metric_add(g->m_conns, 1);
    touch(c);
    start_read(c);
    return TRUE;
}

/* ---- the listeners ---- */

static int listen_on(web_gps *g, int proto, const char *addr, char **err)
{
    core_hostport hp = {0};
    if (core_hostport_parse(addr, &hp) != 0) {
        *err = g_strdup_printf("--gps-%s: expected HOST:PORT, got '%s'", proto_names[proto], addr);
        return CORE_EINVAL;
    }
    GInetAddress *ia = g_inet_address_new_from_string(hp.host);
    if (!ia && strcmp(hp.host, "localhost") == 0)
        ia = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
    if (!ia) {
        *err = g_strdup_printf("--gps-%s: '%s' is not an IP address", proto_names[proto], hp.host);
        g_free(hp.host);
        return CORE_EINVAL;
    }
    GSocketAddress *sa = g_inet_socket_address_new(ia, (guint16)hp.port);
    GSocketService *svc = g_socket_service_new();
    /* A fleet reconnects all at once after a restart: GLib's default
     * backlog of 10 would leave most of it waiting on the kernel. */
    g_socket_listener_set_backlog(G_SOCKET_LISTENER(svc), 1024);
    GSocketAddress *bound = NULL;
    GError *e = NULL;
    int rc = 0;
    if (!g_socket_listener_add_address(G_SOCKET_LISTENER(svc), sa, G_SOCKET_TYPE_STREAM,
                                       G_SOCKET_PROTOCOL_TCP, NULL, &bound, &e)) {
        *err = g_strdup_printf("--gps-%s %s: %s", proto_names[proto], addr, e->message);
        g_error_free(e);
        g_object_unref(svc);
        rc = CORE_EINVAL;
    } else {
        g_object_set_data(G_OBJECT(svc), "proto", GINT_TO_POINTER(proto));
        g_signal_connect(svc, "incoming", G_CALLBACK(on_incoming), g);
        g->svc[proto] = svc;
        g->port[proto] = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
        g_socket_service_start(svc);
        log_info("gps.listening", "protocol=%s host=%s port=%d", proto_names[proto], hp.host,
                 g->port[proto]);
    }
    if (bound)
        g_object_unref(bound);
    g_object_unref(sa);
    g_object_unref(ia);
    g_free(hp.host);
    return rc;
}

web_gps *web_gps_new(disp_avl *avl, const char *osmand, const char *gt06, const char *teltonika,
                     int idle_s, int max_conns, char **err)
{
    web_gps *g = g_new0(web_gps, 1);
    g->avl = avl;
    g->idle_s = idle_s;
    g->max_conns = max_conns;
    g->m_conns = core_counter("citycmd_gps_connections_total", "Device connections accepted.", "");
    g->m_refused = core_counter("citycmd_gps_connections_refused_total",
                                "Device connections refused (--gps-max-connections).", "");
    g->m_errors =
        core_counter("citycmd_gps_protocol_errors_total",
                     "Device connections closed for bytes that are not the protocol.", "");
    for (int v = 0; v < DISP_AVL_VERDICTS; v++) {
        char *label = g_strdup_printf("verdict=\"%s\"", disp_avl_verdict_name(v));
        g->m_positions[v] =
            core_counter("citycmd_gps_positions_total", "Positions received, by verdict.", label);
        g_free(label);
    }
    const char *addrs[P_COUNT] = {osmand, gt06, teltonika};
    for (int p = 0; p < P_COUNT; p++) {
        if (addrs[p] && *addrs[p] && listen_on(g, p, addrs[p], err) != 0) {
            web_gps_free(g);
            return NULL;
        }
    }
    return g;
}

int web_gps_port(const web_gps *g, const char *protocol)
{
    for (int p = 0; g && p < P_COUNT; p++)
        if (strcmp(proto_names[p], protocol) == 0)
            return g->port[p];
    return 0;
}

void web_gps_stop(web_gps *g)
{
    if (!g)
        return;
    for (int p = 0; p < P_COUNT; p++) {
        if (g->svc[p]) {
            g_socket_service_stop(g->svc[p]);
            g_socket_listener_close(G_SOCKET_LISTENER(g->svc[p]));
            g_object_unref(g->svc[p]);
            g->svc[p] = NULL;
        }
    }
    while (g->open)
        conn_close(g->open->data, "shutting down");
}

void web_gps_free(web_gps *g)
{
    if (!g)
        return;
    web_gps_stop(g);
    /* Cancelled reads and writes finish on the loop; after a drain they
     * have, else let them, so nothing is left behind. */
    for (int i = 0; i < 1000 && live_conns > 0; i++)
        g_main_context_iteration(NULL, FALSE);
    g_free(g);
}
