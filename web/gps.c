/*
 * gps.c — the device listeners: OsmAnd over HTTP, GT06 and Teltonika over
 * TCP, each on its own address (--gps-osmand, --gps-gt06, --gps-teltonika;
 * off unless configured).
 *
 * Every listening and device socket sits in one epoll set, and that set is
 * one GSource on the loop thread: a fleet of thousands of trackers costs
 * the main loop one descriptor to poll, not a source per connection. A
 * readable socket is read once per wake-up (fairness) into a shared buffer
 * and fed to its connection's decoder (dispatch/gps.h), which keeps at most
 * one unfinished frame; the positions go to dispatch/avl in the order they
 * arrived, and the decoder's answers (acknowledgements) are written at
 * once, the rest kept until the socket is writable again. Bounds:
 * --gps-max-connections at once (more are closed on accept),
 * --gps-idle-timeout without a byte (a sweep once a second), 64 KiB of
 * answers the device has not read, an OsmAnd request of 8 KiB of headers
 * and 64 KiB of body. A decoder error sends what was answered so far, then
 * closes.
 *
 * All of it runs on the loop thread and synchronously, so a connection is
 * freed when it closes; a connection closed while its wake-up batch is
 * still being handled is freed at the batch's end.
 */
#include "gps.h"

#include "../core/config.h"
#include "../core/core.h"
#include "../core/log.h"
#include "../core/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <glib-unix.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_CHUNK 16384
#define WRITE_MAX (64 * 1024)
#define HTTP_HEAD_MAX 8192
#define HTTP_BODY_MAX (64 * 1024)
#define EVENTS_PER_WAKE 256
#define ACCEPTS_PER_WAKE 64
#define DRAIN_ROUNDS 8
#define BATCH_MS 5

enum { P_OSMAND, P_GT06, P_TELTONIKA, P_COUNT };
static const char *const proto_names[P_COUNT] = {"osmand", "gt06", "teltonika"};

typedef struct gps_conn gps_conn;

/* What an epoll event points at: a listener or a connection. */
typedef struct {
    int fd, proto, is_listener, paused;
} gps_sock;

struct web_gps {
    disp_avl *avl;
    int ep;
    guint ep_source, batch, sweep; /* one of ep_source and batch is set */
    gps_sock lsn[P_COUNT];
    int port[P_COUNT];
    int idle_s, max_conns, conns, in_batch;
    gps_conn *open;  /* doubly linked */
    GPtrArray *dead; /* closed during a batch, freed at its end */
    core_metric *m_conns, *m_refused, *m_errors, *m_positions[DISP_AVL_VERDICTS];
};

struct gps_conn {
    gps_sock s; /* first: the epoll event's pointer */
    web_gps *g;
    gps_conn *prev, *next;
    int closed, close_after_write;
    unsigned events; /* the epoll mask set */
    gint64 last_ms;
    GByteArray *wbuf; /* answers the socket did not take yet */
    GByteArray *http; /* OsmAnd: the request so far */
    disp_gps_gt06 *gt06;
    disp_gps_teltonika *tel;
    GArray *fixes;
    char peer[64];
};

static guint8 rbuf[READ_CHUNK]; /* loop thread only */

static void conn_free(gps_conn *c)
{
    g_byte_array_unref(c->wbuf);
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
    web_gps *g = c->g;
    c->closed = 1;
    epoll_ctl(g->ep, EPOLL_CTL_DEL, c->s.fd, NULL);
    close(c->s.fd);
    c->s.fd = -1;
    if (c->prev)
        c->prev->next = c->next;
    else
        g->open = c->next;
    if (c->next)
        c->next->prev = c->prev;
    g->conns--;
    log_debug("gps.close", "protocol=%s peer=%s reason=%s", proto_names[c->s.proto], c->peer, why);
    if (g->in_batch)
        g_ptr_array_add(g->dead, c);
    else
        conn_free(c);
}

/* Sets what the socket waits for: readable unless it is only finishing its
 * answers before a close (a peer still sending must not wake the loop over
 * and over), writable while answers wait. */
static void set_events(gps_conn *c, int out)
{
    unsigned mask =
        (c->close_after_write ? 0u : (unsigned)EPOLLIN) | (out ? (unsigned)EPOLLOUT : 0u);
    if (c->events == mask)
        return;
    struct epoll_event ev = {.events = mask, .data.ptr = &c->s};
    epoll_ctl(c->g->ep, EPOLL_CTL_MOD, c->s.fd, &ev);
    c->events = mask;
}

/* Writes what is queued; what the socket does not take waits for EPOLLOUT. */
static void flush(gps_conn *c)
{
    while (!c->closed && c->wbuf->len) {
        ssize_t n = send(c->s.fd, c->wbuf->data, c->wbuf->len, MSG_NOSIGNAL);
        if (n > 0) {
            g_byte_array_remove_range(c->wbuf, 0, (guint)n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_events(c, 1);
            return;
        } else {
            conn_close(c, "write failed");
            return;
        }
    }
    if (c->closed)
        return;
    set_events(c, 0);
    if (c->close_after_write)
        conn_close(c, "protocol error");
}

/* Queues an answer; a device that lets 64 KiB pile up is not reading. */
static void answer(gps_conn *c, const void *p, size_t n)
{
    if (c->closed)
        return;
    if (c->wbuf->len + n > WRITE_MAX) {
        conn_close(c, "answers not read");
        return;
    }
    g_byte_array_append(c->wbuf, p, (guint)n);
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
    int rc = c->s.proto == P_GT06 ? disp_gps_gt06_feed(c->gt06, p, n, c->fixes, reply)
                                  : disp_gps_teltonika_feed(c->tel, p, n, c->fixes, reply);
    for (guint i = 0; i < c->fixes->len; i++)
        deliver(c, &g_array_index(c->fixes, disp_gps_fix, i));
    if (reply->len)
        answer(c, reply->data, reply->len);
    g_byte_array_unref(reply);
    if (rc && !c->closed) {
        core_metric_add(c->g->m_errors, 1);
        log_info("gps.refused", "protocol=%s peer=%s error=%s", proto_names[c->s.proto], c->peer,
                 core_strerror(rc));
        c->close_after_write = 1;
    }
}

/* A Teltonika device is accepted when a unit has its IMEI. */
static int teltonika_accept(const char *imei, void *user)
{
    gps_conn *c = user;
    return !c->closed && disp_avl_known(c->g->avl, imei);
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

/* ---- the epoll set ---- */

static void on_readable(gps_conn *c)
{
    ssize_t n = recv(c->s.fd, rbuf, sizeof rbuf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(c, n == 0 ? "peer closed" : "read failed");
        return;
    }
    c->last_ms = core_now_ms();
    if (c->s.proto == P_OSMAND)
        feed_http(c, rbuf, (size_t)n);
    else
        feed_binary(c, rbuf, (size_t)n);
    if (!c->closed)
        flush(c);
}

static void conn_open(web_gps *g, int proto, int fd, const struct sockaddr_storage *sa)
{
    gps_conn *c = g_new0(gps_conn, 1);
    c->g = g;
    c->s.fd = fd;
    c->s.proto = proto;
    c->last_ms = core_now_ms();
    c->wbuf = g_byte_array_new();
    c->fixes = g_array_new(FALSE, FALSE, sizeof(disp_gps_fix));
    if (proto == P_OSMAND)
        c->http = g_byte_array_new();
    else if (proto == P_GT06)
        c->gt06 = disp_gps_gt06_new();
    else
        c->tel = disp_gps_teltonika_new(teltonika_accept, c);
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        port = ntohs(a->sin_port);
    } else if (sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        port = ntohs(a->sin6_port);
    }
    g_snprintf(c->peer, sizeof c->peer, "%s:%d", ip, port);
    c->events = EPOLLIN;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &c->s};
    if (epoll_ctl(g->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        log_warn("gps.epoll", "peer=%s error=%s", c->peer, g_strerror(errno));
        close(fd);
        conn_free(c);
        return;
    }
    c->next = g->open;
    if (g->open)
        g->open->prev = c;
    g->open = c;
    g->conns++;
    core_metric_add(g->m_conns, 1);
}

static void on_acceptable(web_gps *g, gps_sock *l)
{
    for (int i = 0; i < ACCEPTS_PER_WAKE; i++) {
        struct sockaddr_storage sa;
        socklen_t len = sizeof sa;
        int fd = accept4(l->fd, (struct sockaddr *)&sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Out of descriptors or memory: the waiting connections
                 * stay in the kernel's backlog; stop listening for a second
                 * (the sweep resumes) rather than wake for them in a loop. */
                log_warn("gps.accept", "protocol=%s error=\"%s\" paused_s=1", proto_names[l->proto],
                         g_strerror(errno));
                epoll_ctl(g->ep, EPOLL_CTL_DEL, l->fd, NULL);
                l->paused = 1;
            } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                       errno != ECONNABORTED) {
                log_warn("gps.accept", "protocol=%s error=\"%s\"", proto_names[l->proto],
                         g_strerror(errno));
            }
            return;
        }
        if (g->conns >= g->max_conns) {
            core_metric_add(g->m_refused, 1);
            close(fd);
            continue;
        }
        conn_open(g, l->proto, fd, &sa);
    }
}

/* Handles what the epoll set has ready, up to a few rounds; the number of
 * events. */
static int drain(web_gps *g)
{
    struct epoll_event ev[EVENTS_PER_WAKE];
    int total = 0, n;
    g->in_batch = 1;
    for (int round = 0; round < DRAIN_ROUNDS; round++) {
        n = epoll_wait(g->ep, ev, EVENTS_PER_WAKE, 0);
        for (int i = 0; i < n; i++) {
            gps_sock *s = ev[i].data.ptr;
            if (s->is_listener) {
                on_acceptable(g, s);
                continue;
            }
            gps_conn *c = (gps_conn *)s;
            if (c->closed)
                continue;
            if (ev[i].events & EPOLLOUT)
                flush(c);
            if (!c->closed && (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) &&
                !c->close_after_write)
                on_readable(c);
            else if (!c->closed && (ev[i].events & (EPOLLHUP | EPOLLERR)))
                conn_close(c, "peer gone");
        }
        total += n > 0 ? n : 0;
        if (n < EVENTS_PER_WAKE)
            break;
    }
    g->in_batch = 0;
    for (guint i = 0; i < g->dead->len; i++)
        conn_free(g->dead->pdata[i]);
    g_ptr_array_set_size(g->dead, 0);
    return total;
}

static gboolean on_batch(gpointer user);

/* The first bytes after a quiet spell: handled at once, then the set is
 * looked at every BATCH_MS while there is traffic, so a busy fleet wakes
 * the loop a few hundred times a second, not once per packet. */
static gboolean on_epoll(gint fd, GIOCondition cond, gpointer user)
{
    web_gps *g = user;
    (void)fd;
    (void)cond;
    drain(g);
    g->ep_source = 0;
    g->batch = g_timeout_add(BATCH_MS, on_batch, g);
    return G_SOURCE_REMOVE;
}

static gboolean on_batch(gpointer user)
{
    web_gps *g = user;
    if (drain(g) > 0)
        return G_SOURCE_CONTINUE;
    g->batch = 0;
    g->ep_source = g_unix_fd_add(g->ep, G_IO_IN, on_epoll, g);
    return G_SOURCE_REMOVE;
}

/* Resumes paused listeners; closes the connections silent for
 * --gps-idle-timeout. */
static gboolean on_sweep(gpointer user)
{
    web_gps *g = user;
    for (int p = 0; p < P_COUNT; p++) {
        gps_sock *l = &g->lsn[p];
        if (l->fd >= 0 && l->paused) {
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = l};
            epoll_ctl(g->ep, EPOLL_CTL_ADD, l->fd, &ev);
            l->paused = 0;
        }
    }
    gint64 cutoff = core_now_ms() - (gint64)g->idle_s * 1000;
    for (gps_conn *c = g->open, *next; c; c = next) {
        next = c->next;
        if (c->last_ms < cutoff)
            conn_close(c, "idle");
    }
    return G_SOURCE_CONTINUE;
}

/* ---- the listeners ---- */

static int listen_on(web_gps *g, int proto, const char *addr, char **err)
{
    core_hostport hp = {0};
    if (core_hostport_parse(addr, &hp) != 0) {
        *err = g_strdup_printf("--gps-%s: expected HOST:PORT, got '%s'", proto_names[proto], addr);
        return CORE_EINVAL;
    }
    const char *host = strcmp(hp.host, "localhost") == 0 ? "127.0.0.1" : hp.host;
    char port[16];
    g_snprintf(port, sizeof port, "%d", hp.port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE},
                    *ai = NULL;
    if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai) {
        *err = g_strdup_printf("--gps-%s: '%s' is not an IP address", proto_names[proto], hp.host);
        g_free(hp.host);
        return CORE_EINVAL;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    const char *failed = fd < 0 ? "socket" : NULL;
    if (!failed)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (!failed && bind(fd, ai->ai_addr, ai->ai_addrlen) != 0)
        failed = "bind";
    /* A fleet reconnects all at once after a restart: a short backlog
     * would leave most of it waiting on the kernel. */
    if (!failed && listen(fd, 1024) != 0)
        failed = "listen";
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    if (!failed && getsockname(fd, (struct sockaddr *)&bound, &blen) != 0)
        failed = "getsockname";
    freeaddrinfo(ai);
    if (failed) {
        *err = g_strdup_printf("--gps-%s %s: %s: %s", proto_names[proto], addr, failed,
                               g_strerror(errno));
        if (fd >= 0)
            close(fd);
        g_free(hp.host);
        return CORE_EINVAL;
    }
    g->port[proto] = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                       : ((struct sockaddr_in *)&bound)->sin_port);
    g->lsn[proto] = (gps_sock){.fd = fd, .proto = proto, .is_listener = 1};
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &g->lsn[proto]};
    epoll_ctl(g->ep, EPOLL_CTL_ADD, fd, &ev);
    log_info("gps.listening", "protocol=%s host=%s port=%d", proto_names[proto], hp.host,
             g->port[proto]);
    g_free(hp.host);
    return 0;
}

web_gps *web_gps_new(disp_avl *avl, const char *osmand, const char *gt06, const char *teltonika,
                     int idle_s, int max_conns, char **err)
{
    web_gps *g = g_new0(web_gps, 1);
    g->avl = avl;
    g->idle_s = idle_s;
    g->max_conns = max_conns;
    g->dead = g_ptr_array_new();
    for (int p = 0; p < P_COUNT; p++)
        g->lsn[p].fd = -1;
    g->ep = epoll_create1(EPOLL_CLOEXEC);
    if (g->ep < 0) {
        *err = g_strdup_printf("gps listeners: epoll: %s", g_strerror(errno));
        g_ptr_array_unref(g->dead);
        g_free(g);
        return NULL;
    }
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
    g->ep_source = g_unix_fd_add(g->ep, G_IO_IN, on_epoll, g);
    g->sweep = g_timeout_add_seconds(1, on_sweep, g);
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
        if (g->lsn[p].fd >= 0) {
            epoll_ctl(g->ep, EPOLL_CTL_DEL, g->lsn[p].fd, NULL);
            close(g->lsn[p].fd);
            g->lsn[p].fd = -1;
        }
    }
    while (g->open)
        conn_close(g->open, "shutting down");
}

void web_gps_free(web_gps *g)
{
    if (!g)
        return;
    web_gps_stop(g);
    if (g->ep_source)
        g_source_remove(g->ep_source);
    if (g->batch)
        g_source_remove(g->batch);
    if (g->sweep)
        g_source_remove(g->sweep);
    close(g->ep);
    g_ptr_array_unref(g->dead);
    g_free(g);
}
