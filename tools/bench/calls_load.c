/*
 * calls_load — sustained call intake against a running citycmd, measured from
 * outside: acknowledged calls per second, and the latency from sending a call
 * to its 201 and to its effect reaching every console on the WebSocket feed.
 *
 *   build/bench/calls_load --port P [--host 127.0.0.1] --token TOKEN --bbox W,S,E,N
 *       [--rate 2000] [--seconds 10] [--connections 64] [--consoles 100]
 *       [--topic incidents|events]
 *
 * Design. One thread, one epoll set and no JSON parser: the tool shares a
 * 2-core machine with the server it measures, so it spends as little CPU as
 * it can and scans bytes (memmem) for the few fields it needs. Calls are
 * posted open loop: call i is due at start + i/rate (a periodic timerfd wakes
 * the loop) and goes out on an idle keep-alive connection, one request per
 * connection at a time; when none is idle the call is counted as not sent,
 * so a slow server never builds a backlog here.
 *
 * Consoles subscribe to one topic and read everything as it comes. On
 * "incidents" a call has reached a console when the console holds the call's
 * incident with at least the callers its 201 reported. Each console keeps
 * only the highest callers it has seen per incident; the moment that first
 * reaches c is recorded once per (incident, c), globally, as how many
 * consoles got there and when the last one did. That gives the same answer as
 * keeping every (callers, time) pair per console, in a few bytes per
 * incident. On "events" the same pair is kept per call tag.
 *
 * Invariants: every buffer a peer can grow is capped (MAX_FRAME), and a peer
 * that goes beyond is dropped; a connection carries at most one call; times
 * are CLOCK_MONOTONIC nanoseconds, taken right after the read that brought
 * the bytes.
 */
#include <glib.h>

#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define NS 1000000000LL
#define MAX_FRAME (64u << 20)   /* largest WebSocket message or HTTP response */
#define MAX_INCIDENT (1 << 24)  /* incident numbers beyond are ignored */
#define MAX_CALLERS (1 << 20)   /* callers counts beyond are ignored */
#define HTTP_BUF (16 << 10)     /* initial read buffer of a call connection */
#define CONSOLE_BUF (256 << 10) /* initial read buffer of a console */
#define READY_TIMEOUT (10 * NS) /* consoles subscribed, connections open */
#define DRAIN_TIMEOUT (30 * NS) /* last responses after the last call */
#define SETTLE (1 * NS)         /* last pushes after the last response */

/* An incident's whole state ("incident") or its changed fields ("incident.changed"). */
static const char INC_PAT[] = "{\"type\":\"incident";
static const char INC_ID_PAT[] = "\"data\":{\"id\":\"I-";
static const char MSG_PAT[] = "{\"type\":";
static const char TAG_PAT[] = "\"caller\":\"bench-";
static const char CALLERS_PAT[] = "\"callers\":";

enum { KIND_TIMER, KIND_HTTP, KIND_CONSOLE };

typedef struct {
    int kind;
    int fd;            /* -1 when closed */
    bool connecting;   /* a non-blocking connect is under way */
    bool watching_out; /* EPOLLOUT is in the interest set */
    GByteArray *out;   /* bytes the kernel has not taken yet */
    char *in;
    size_t in_len, in_cap;
} sock;

typedef struct {
    sock s;   /* first: epoll hands back a sock * */
    int call; /* the tag in flight, -1 when idle */
} http_conn;

typedef struct {
    sock s;
    int idx;
    bool upgraded, subscribe_sent, ready, closed;
    bool in_msg;     /* a fragmented message is being reassembled */
    GByteArray *msg; /* its fragments so far */
    guint32 *seen;   /* per incident: highest callers seen + 1, 0 = none */
    size_t n_seen;
} console;

typedef struct {
    int64_t t0, t_ack;
    int status, incident, callers;
} call_rec;

/* How many consoles got there, and when the last of them did. */
typedef struct {
    int32_t count;
    int64_t t;
} reach;

typedef struct {
    const char *host, *token, *topic;
    int port, rate, seconds, connections, consoles;
    double bbox[4];
} opts;

typedef struct {
    opts o;
    bool events; /* topic "events" rather than "incidents" */
    struct sockaddr_in addr;
    int ep;
    sock timer;
    GRand *rng;
    char *req_head; /* the request line and headers up to Content-Length */
    http_conn *conns;
    console *cons;
    int cursor; /* where the next search for an idle connection starts */
    call_rec *calls;
    int total, next, sent, inflight, not_sent, n_ready, n_closed;
    bool running; /* past the start: a lost console no longer aborts */
    int64_t start, last_response;
    GPtrArray *inc_reach; /* incident -> GArray of reach indexed by callers */
    reach *tag_reach;     /* events topic: per tag */
} load;

static void fail(const char *fmt, ...) G_GNUC_PRINTF(1, 2) G_GNUC_NORETURN;

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("calls_load: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

/* Reads a non-negative decimal at p (at most 9 digits); -1 when there is none. */
/* Does lit start at k (within end)? */
static bool has_at(const char *k, const char *end, const char *lit)
{
    size_t n = strlen(lit);
    return (size_t)(end - k) >= n && memcmp(k, lit, n) == 0;
}

static int read_uint(const char *p, const char *end)
{
    int v = 0, n = 0;
    for (; p < end && n < 9 && *p >= '0' && *p <= '9'; p++, n++)
        v = v * 10 + (*p - '0');
    return n ? v : -1;
}

/* ---- sockets ---------------------------------------------------------- */

static void sock_watch(load *L, sock *s)
{
    bool want = s->connecting || s->out->len > 0;
    if (want == s->watching_out)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = s};
    epoll_ctl(L->ep, EPOLL_CTL_MOD, s->fd, &ev);
    s->watching_out = want;
}

static int sock_open(load *L, sock *s)
{
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0)
        return -errno;
    int one = 1;
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(s->fd, (struct sockaddr *)&L->addr, sizeof L->addr) && errno != EINPROGRESS) {
        int rc = -errno;
        close(s->fd);
        s->fd = -1;
        return rc;
    }
    s->connecting = s->watching_out = true;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = s};
    epoll_ctl(L->ep, EPOLL_CTL_ADD, s->fd, &ev);
    return 0;
}

static void sock_close(sock *s)
{
    if (s->fd >= 0)
        close(s->fd); /* also leaves the epoll set */
    s->fd = -1;
    s->connecting = s->watching_out = false;
    s->in_len = 0;
    g_byte_array_set_size(s->out, 0);
}

static int sock_flush(load *L, sock *s)
{
    while (s->out->len > 0) {
        ssize_t n = send(s->fd, s->out->data, s->out->len, MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN)
            break;
        if (n < 0)
            return -errno;
        g_byte_array_remove_range(s->out, 0, (guint)n);
    }
    sock_watch(L, s);
    return 0;
}

/* Queues bytes and writes what the kernel takes now. */
static int sock_send(load *L, sock *s, const void *data, size_t len)
{
    g_byte_array_append(s->out, data, (guint)len);
    return s->connecting ? 0 : sock_flush(L, s);
}

/* One read into the buffer, grown to keep at least `room` free. */
static ssize_t sock_fill(sock *s, size_t room)
{
    if (s->in_cap - s->in_len < room) {
        if (s->in_len > MAX_FRAME + 16)
            return -1;
        s->in_cap = MAX(s->in_cap * 2, s->in_len + room);
        s->in = g_realloc(s->in, s->in_cap);
    }
    ssize_t n = read(s->fd, s->in + s->in_len, s->in_cap - s->in_len);
    if (n < 0 && errno == EAGAIN)
        return -2;
    if (n > 0)
        s->in_len += (size_t)n;
    return n < 0 ? -1 : n;
}

static void sock_consume(sock *s, size_t n)
{
    memmove(s->in, s->in + n, s->in_len - n);
    s->in_len -= n;
}

/* Ends a connect; 0 when it succeeded. */
static int sock_connected(load *L, sock *s)
{
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err)
        return -err;
    s->connecting = false;
    return sock_flush(L, s);
}

static void sock_init(sock *s, int kind, size_t cap)
{
    *s = (sock){.kind = kind, .fd = -1, .out = g_byte_array_new(), .in_cap = cap};
    s->in = g_malloc(cap);
}

static void sock_fini(sock *s)
{
    sock_close(s);
    g_byte_array_unref(s->out);
    g_free(s->in);
}

/* ---- HTTP: the calls -------------------------------------------------- */

/* The status code of a response head, 0 when it is not one. */
static int http_status(const char *p, size_t len)
{
    if (len < 12 || memcmp(p, "HTTP/1.", 7) != 0)
        return 0;
    return MAX(read_uint(p + 9, p + 12), 0);
}

/* Content-Length (-1 when absent) and whether the server closes after this. */
static void http_headers(const char *p, const char *end, long *clen, bool *close_after)
{
    static const char CL[] = "content-length:", CONN[] = "connection:";
    *clen = -1;
    *close_after = false;
    for (const char *line = p; line < end;) {
        const char *eol = memmem(line, (size_t)(end - line), "\r\n", 2);
        eol = eol ? eol : end;
        size_t n = (size_t)(eol - line);
        if (n > sizeof CL - 1 && !g_ascii_strncasecmp(line, CL, sizeof CL - 1))
            *clen = strtol(line + sizeof CL - 1, NULL, 10);
        else if (n > sizeof CONN - 1 && !g_ascii_strncasecmp(line, CONN, sizeof CONN - 1))
            *close_after = g_strstr_len(line, (gssize)n, "close") != NULL ||
                           g_strstr_len(line, (gssize)n, "Close") != NULL;
        line = eol + 2;
    }
}

/* The incident number and its callers after this call, from a 201's body. */
static void call_scan(call_rec *r, const char *p, size_t len)
{
    static const char ID[] = "\"incident_id\":\"I-";
    const char *end = p + len, *k = memmem(p, len, ID, sizeof ID - 1);
    r->incident = k ? read_uint(k + sizeof ID - 1, end) : -1;
    r->callers = 0;
    for (k = p; (k = memmem(k, (size_t)(end - k), CALLERS_PAT, sizeof CALLERS_PAT - 1));) {
        k += sizeof CALLERS_PAT - 1;
        r->callers = MAX(read_uint(k, end), 0);
    }
}

static void call_finish(load *L, http_conn *h, int status, int64_t now)
{
    call_rec *r = &L->calls[h->call];
    r->status = status;
    r->t_ack = now;
    L->last_response = now;
    L->inflight--;
    h->call = -1;
}

/* The connection broke: its call is an error, and a new one takes its place. */
static void http_lost(load *L, http_conn *h, int64_t now)
{
    if (h->call >= 0)
        call_finish(L, h, 0, now);
    sock_close(&h->s);
    int rc = sock_open(L, &h->s);
    if (rc && !L->running)
        fail("cannot connect to %s:%d: %s", L->o.host, L->o.port, g_strerror(-rc));
    if (rc) /* out of the run: idle_conn() skips it */
        fprintf(stderr, "calls_load: a connection could not reconnect: %s\n", g_strerror(-rc));
}

/* Handles a complete response if the buffer holds one. */
static void http_parse(load *L, http_conn *h, int64_t now)
{
    sock *s = &h->s;
    const char *head_end = memmem(s->in, s->in_len, "\r\n\r\n", 4);
    if (!head_end) {
        if (s->in_len > 65536)
            http_lost(L, h, now);
        return;
    }
    size_t hlen = (size_t)(head_end - s->in) + 4;
    long clen;
    bool close_after;
    http_headers(s->in, head_end, &clen, &close_after);
    clen = MAX(clen, 0);
    if ((size_t)clen > MAX_FRAME || h->call < 0) {
        http_lost(L, h, now);
        return;
    }
    if (s->in_len < hlen + (size_t)clen)
        return;
    int status = http_status(s->in, hlen);
    if (status == 201)
        call_scan(&L->calls[h->call], s->in + hlen, (size_t)clen);
    call_finish(L, h, status, now);
    sock_consume(s, hlen + (size_t)clen);
    if (close_after)
        http_lost(L, h, now);
}

static void http_readable(load *L, http_conn *h)
{
    ssize_t n = sock_fill(&h->s, HTTP_BUF / 2);
    int64_t now = mono_ns();
    if (n > 0)
        http_parse(L, h, now);
    else if (n != -2)
        http_lost(L, h, now);
}

/* The request for call `tag`, built as the Node client built it. */
static int call_request(load *L, int tag, char *out, size_t cap)
{
    static const char *const cats[] = {"fire/structure", "medical/cardiac", "traffic/collision",
                                       "police/disturbance", "hotline/noise"};
    static const char *const lines[] = {"119", "120", "122", "110", "12345"};
    int seq = tag + 1, k = seq % 5;
    /* A tenth repeat a few hundred places, so fusion has work. */
    double r = seq % 10 == 0 ? (seq % 300) / 300.0 : g_rand_double(L->rng);
    const double *b = L->o.bbox;
    double lon = b[0] + (b[2] - b[0]) * (0.2 + 0.6 * r);
    double lat = b[1] + (b[3] - b[1]) * (0.2 + 0.6 * fmod(r * 7.31, 1.0));
    char body[512];
    int n = snprintf(body, sizeof body,
                     "{\"line\":\"%s\",\"caller\":\"bench-%d\",\"category\":\"%s\","
                     "\"text\":\"benchmark call\",\"location\":{\"lon\":%.7f,\"lat\":%.7f}}",
                     lines[k], tag, cats[k], lon, lat);
    return snprintf(out, cap, "%sContent-Length: %d\r\n\r\n%s", L->req_head, n, body);
}

static http_conn *idle_conn(load *L)
{
    for (int i = 0; i < L->o.connections; i++) {
        http_conn *h = &L->conns[(L->cursor + i) % L->o.connections];
        if (h->s.fd >= 0 && !h->s.connecting && h->call < 0) {
            L->cursor = (L->cursor + i + 1) % L->o.connections;
            return h;
        }
    }
    return NULL;
}

static void call_send(load *L)
{
    http_conn *h = idle_conn(L);
    if (!h) {
        L->not_sent++;
        return;
    }
    char req[4096];
    int tag = L->sent++, n = call_request(L, tag, req, sizeof req);
    if (n <= 0 || (size_t)n >= sizeof req)
        fail("request too large (is the token that long?)");
    h->call = tag;
    L->inflight++;
    L->calls[tag].t0 = mono_ns();
    if (sock_send(L, &h->s, req, (size_t)n))
        http_lost(L, h, mono_ns());
}

/* The timer: sends every call that is due. */
static void timer_fire(load *L)
{
    uint64_t ticks;
    if (read(L->timer.fd, &ticks, sizeof ticks) < 0)
        return;
    int64_t now = mono_ns();
    while (L->next < L->total && L->start + (int64_t)L->next * NS / L->o.rate <= now) {
        call_send(L);
        L->next++;
    }
    if (L->next == L->total) {
        struct itimerspec off = {0};
        timerfd_settime(L->timer.fd, 0, &off, NULL);
    }
}

/* ---- WebSocket: the consoles ------------------------------------------ */

/* Sends one masked frame (payloads here are small: subscribe, pong, close). */
static int ws_send(load *L, console *c, int op, const void *payload, size_t n)
{
    unsigned char f[4096 + 8];
    if (n > 4096)
        return -1;
    size_t h = 0;
    f[h++] = (unsigned char)(0x80 | op);
    if (n < 126) {
        f[h++] = (unsigned char)(0x80 | n);
    } else {
        f[h++] = 0x80 | 126;
        f[h++] = (unsigned char)(n >> 8);
        f[h++] = (unsigned char)n;
    }
    guint32 key = g_rand_int(L->rng);
    memcpy(f + h, &key, 4);
    const unsigned char *m = f + h, *p = payload;
    h += 4;
    for (size_t i = 0; i < n; i++)
        f[h + i] = p[i] ^ m[i & 3];
    return sock_send(L, &c->s, f, h + n);
}

static void console_lost(load *L, console *c, const char *why)
{
    if (!L->running)
        fail("console %d: %s before it was ready", c->idx, why);
    if (!c->closed) {
        c->closed = true;
        L->n_closed++;
    }
    sock_close(&c->s);
}

static void reach_free(gpointer a)
{
    if (a)
        g_array_unref(a);
}

static GArray *incident_reach(load *L, int inc, int callers)
{
    if ((guint)inc >= L->inc_reach->len)
        g_ptr_array_set_size(L->inc_reach, MAX((guint)inc + 1, L->inc_reach->len * 2));
    GArray *r = g_ptr_array_index(L->inc_reach, inc);
    if (!r) {
        r = g_array_new(FALSE, TRUE, sizeof(reach));
        L->inc_reach->pdata[inc] = r;
    }
    if ((guint)callers >= r->len)
        g_array_set_size(r, (guint)callers + 1);
    return r;
}

/* Console c holds incident inc with `callers` callers at `now`. */
static void incident_seen(load *L, console *c, int inc, int callers, int64_t now)
{
    if (inc < 0 || inc >= MAX_INCIDENT || callers < 0 || callers >= MAX_CALLERS)
        return;
    if ((size_t)inc >= c->n_seen) {
        size_t n = MAX((size_t)inc + 1, c->n_seen * 2);
        c->seen = g_renew(guint32, c->seen, n);
        memset(c->seen + c->n_seen, 0, (n - c->n_seen) * sizeof *c->seen);
        c->n_seen = n;
    }
    guint32 from = c->seen[inc];
    if ((guint32)callers < from)
        return;
    GArray *r = incident_reach(L, inc, callers);
    for (guint32 v = from; v <= (guint32)callers; v++) {
        reach *x = &g_array_index(r, reach, v);
        x->count++;
        x->t = now;
    }
    c->seen[inc] = (guint32)callers + 1;
}

static void scan_incidents(load *L, console *c, const char *p, size_t n, int64_t now)
{
    const char *end = p + n;
    for (const char *k = p; (k = memmem(k, (size_t)(end - k), INC_PAT, sizeof INC_PAT - 1));) {
        k += sizeof INC_PAT - 1;
        /* "incident" or "incident.changed", not "incident.removed" / ".snapshot". */
        if (has_at(k, end, "\","))
            k += 2;
        else if (has_at(k, end, ".changed\","))
            k += 10;
        else
            continue;
        if (!has_at(k, end, INC_ID_PAT))
            continue;
        k += sizeof INC_ID_PAT - 1;
        int inc = read_uint(k, end);
        /* The callers of this message only: a change may not carry them. */
        const char *next = memmem(k, (size_t)(end - k), MSG_PAT, sizeof MSG_PAT - 1);
        const char *stop = next ? next : end;
        const char *cl = memmem(k, (size_t)(stop - k), CALLERS_PAT, sizeof CALLERS_PAT - 1);
        if (cl)
            incident_seen(L, c, inc, read_uint(cl + sizeof CALLERS_PAT - 1, stop), now);
    }
}

static void scan_events(load *L, const char *p, size_t n, int64_t now)
{
    const char *end = p + n;
    for (const char *k = p; (k = memmem(k, (size_t)(end - k), TAG_PAT, sizeof TAG_PAT - 1));) {
        k += sizeof TAG_PAT - 1;
        int tag = read_uint(k, end);
        if (tag >= 0 && tag < L->sent) {
            L->tag_reach[tag].count++;
            L->tag_reach[tag].t = now;
        }
    }
}

static void console_message(load *L, console *c, const char *p, size_t n, int64_t now)
{
    static const char HELLO[] = "{\"type\":\"hello\"", SUBSCRIBED[] = "{\"type\":\"subscribed\"";
    if (!c->subscribe_sent && memmem(p, n, HELLO, sizeof HELLO - 1)) {
        char *sub = g_strdup_printf(
            "{\"type\":\"subscribe\",\"id\":\"s\",\"data\":{\"topics\":[\"%s\"]}}", L->o.topic);
        ws_send(L, c, 0x1, sub, strlen(sub));
        g_free(sub);
        c->subscribe_sent = true;
    }
    if (!c->ready && memmem(p, n, SUBSCRIBED, sizeof SUBSCRIBED - 1)) {
        c->ready = true;
        L->n_ready++;
    }
    if (L->events)
        scan_events(L, p, n, now);
    else
        scan_incidents(L, c, p, n, now);
}

typedef struct {
    int op;
    bool fin;
    size_t hlen;
    uint64_t plen;
    unsigned char *mask; /* NULL for the unmasked frames a server sends */
} ws_hdr;

/* 1 when p holds a whole frame, 0 when more bytes are needed, -1 when it is too big. */
static int ws_header(unsigned char *p, size_t len, ws_hdr *h)
{
    if (len < 2)
        return 0;
    h->fin = p[0] & 0x80;
    h->op = p[0] & 0x0f;
    uint64_t n = p[1] & 0x7f;
    size_t hl = 2;
    if (n == 126) {
        if (len < 4)
            return 0;
        n = (uint64_t)p[2] << 8 | p[3];
        hl = 4;
    } else if (n == 127) {
        if (len < 10)
            return 0;
        n = 0;
        for (int i = 0; i < 8; i++)
            n = n << 8 | p[2 + i];
        hl = 10;
    }
    h->mask = NULL;
    if (p[1] & 0x80) {
        h->mask = p + hl;
        hl += 4;
    }
    if (n > MAX_FRAME)
        return -1;
    h->hlen = hl;
    h->plen = n;
    return len >= hl + n ? 1 : 0;
}

/* Handles one frame; -1 when the console is to be dropped. */
static int console_frame(load *L, console *c, const ws_hdr *h, unsigned char *pl, int64_t now)
{
    size_t n = (size_t)h->plen;
    if (h->mask)
        for (size_t i = 0; i < n; i++)
            pl[i] ^= h->mask[i & 3];
    switch (h->op) {
    case 0x1:
    case 0x2:
        if (h->fin && h->op == 0x1)
            console_message(L, c, (const char *)pl, n, now);
        else if (!h->fin) {
            g_byte_array_set_size(c->msg, 0);
            g_byte_array_append(c->msg, pl, (guint)n);
            c->in_msg = h->op == 0x1;
        }
        return 0;
    case 0x0:
        if (!c->in_msg)
            return 0; /* the rest of a binary message */
        if (c->msg->len + n > MAX_FRAME)
            return -1;
        g_byte_array_append(c->msg, pl, (guint)n);
        if (h->fin) {
            console_message(L, c, (const char *)c->msg->data, c->msg->len, now);
            c->in_msg = false;
        }
        return 0;
    case 0x9:
        return ws_send(L, c, 0xA, pl, n);
    case 0xA:
        return 0;
    case 0x8:
        ws_send(L, c, 0x8, pl, MIN(n, 2));
        console_lost(L, c, "closed by the server");
        return 1;
    default:
        return -1;
    }
}

/* Checks the 101 and leaves the frames that followed it in the buffer. */
static int console_upgrade(load *L, console *c)
{
    sock *s = &c->s;
    const char *end = memmem(s->in, s->in_len, "\r\n\r\n", 4);
    if (!end)
        return s->in_len > 65536 ? -1 : 0;
    if (http_status(s->in, s->in_len) != 101) {
        const char *eol = memchr(s->in, '\r', s->in_len);
        fail("console %d: upgrade refused: %.*s", c->idx, (int)(eol - s->in), s->in);
    }
    sock_consume(s, (size_t)(end - s->in) + 4);
    c->upgraded = true;
    return 0;
}

static void console_parse(load *L, console *c, int64_t now)
{
    sock *s = &c->s;
    if (!c->upgraded) {
        if (console_upgrade(L, c))
            console_lost(L, c, "no upgrade response");
        if (!c->upgraded)
            return;
    }
    size_t off = 0;
    ws_hdr h;
    int rc;
    while ((rc = ws_header((unsigned char *)s->in + off, s->in_len - off, &h)) == 1) {
        int r = console_frame(L, c, &h, (unsigned char *)s->in + off + h.hlen, now);
        if (r) {
            if (r < 0) {
                fprintf(stderr, "calls_load: console %d: bad frame or write error\n", c->idx);
                console_lost(L, c, "bad frame or write error");
            }
            return;
        }
        off += h.hlen + (size_t)h.plen;
    }
    if (rc < 0) {
        fprintf(stderr, "calls_load: console %d: frame over %u bytes\n", c->idx, MAX_FRAME);
        console_lost(L, c, "oversized frame");
        return;
    }
    sock_consume(s, off);
}

static void console_readable(load *L, console *c)
{
    ssize_t n = sock_fill(&c->s, CONSOLE_BUF / 2);
    if (n > 0)
        console_parse(L, c, mono_ns());
    else if (n != -2)
        console_lost(L, c, "connection lost");
}

static void console_open(load *L, console *c)
{
    guint32 key[4];
    for (int i = 0; i < 4; i++)
        key[i] = g_rand_int(L->rng);
    gchar *k64 = g_base64_encode((const guchar *)key, sizeof key);
    gchar *req = g_strdup_printf("GET /ws HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                                 "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                                 "Sec-WebSocket-Version: 13\r\n"
                                 "Sec-WebSocket-Protocol: citycmd.v1, bearer.%s\r\n\r\n",
                                 L->o.host, L->o.port, k64, L->o.token);
    int rc = sock_open(L, &c->s);
    if (rc)
        fail("cannot connect to %s:%d: %s", L->o.host, L->o.port, g_strerror(-rc));
    sock_send(L, &c->s, req, strlen(req));
    g_free(req);
    g_free(k64);
}

/* ---- the loop --------------------------------------------------------- */

static void dispatch(load *L, sock *s, uint32_t events)
{
    if (s->kind == KIND_TIMER) {
        timer_fire(L);
        return;
    }
    int rc = 0;
    if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
        rc = s->connecting ? sock_connected(L, s) : sock_flush(L, s);
    if (s->kind == KIND_HTTP) {
        http_conn *h = (http_conn *)s;
        if (rc && !L->running)
            fail("cannot connect to %s:%d: %s", L->o.host, L->o.port, g_strerror(-rc));
        if (rc)
            http_lost(L, h, mono_ns());
        else if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
            http_readable(L, h);
    } else {
        console *c = (console *)s;
        if (rc && !L->running)
            fail("console %d: cannot connect: %s", c->idx, g_strerror(-rc));
        if (rc)
            console_lost(L, c, "connection lost");
        else if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
            console_readable(L, c);
    }
}

static void pump(load *L, int timeout_ms)
{
    struct epoll_event ev[256];
    int n = epoll_wait(L->ep, ev, G_N_ELEMENTS(ev), timeout_ms);
    for (int i = 0; i < n; i++) {
        sock *s = ev[i].data.ptr;
        if (s->fd >= 0)
            dispatch(L, s, ev[i].events);
    }
}

static bool all_ready(load *L)
{
    for (int i = 0; i < L->o.connections; i++)
        if (L->conns[i].s.connecting)
            return false;
    return L->n_ready == L->o.consoles;
}

static void start_posting(load *L)
{
    L->running = true;
    L->start = L->last_response = mono_ns();
    int64_t period = MAX(NS / L->o.rate, 1);
    struct itimerspec it = {
        .it_interval = {period / NS, period % NS},
        .it_value = {L->start / NS, L->start % NS},
    };
    timerfd_settime(L->timer.fd, TFD_TIMER_ABSTIME, &it, NULL);
}

static void run(load *L)
{
    int64_t deadline = mono_ns() + READY_TIMEOUT;
    while (!all_ready(L)) {
        if (mono_ns() > deadline)
            fail("%d of %d consoles subscribed after 10 s", L->n_ready, L->o.consoles);
        pump(L, 100);
    }
    start_posting(L);
    while (L->next < L->total)
        pump(L, 100);
    deadline = mono_ns() + DRAIN_TIMEOUT;
    while (L->inflight > 0 && mono_ns() < deadline)
        pump(L, 100);
    int64_t now = mono_ns();
    for (int i = 0; i < L->o.connections; i++)
        if (L->conns[i].call >= 0) /* unanswered after 30 s: an error */
            call_finish(L, &L->conns[i], 0, now);
    for (deadline = mono_ns() + SETTLE; (now = mono_ns()) < deadline;)
        pump(L, (int)((deadline - now) / 1000000) + 1);
}

/* ---- the result ------------------------------------------------------- */

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The q quantile in ms of n sorted latencies, as "%.1f", or "-" for none. */
static const char *pct(char *out, size_t cap, int64_t *v, int n, double q)
{
    if (n == 0)
        return "-";
    int i = MIN(n - 1, (int)floor(q * n));
    snprintf(out, cap, "%.1f", (double)v[i] / 1e6);
    return out;
}

/* When call `tag` had reached every console, or -1. */
static int64_t reached_all(load *L, int tag)
{
    const call_rec *r = &L->calls[tag];
    if (L->o.consoles == 0)
        return -1;
    if (L->events)
        return L->tag_reach[tag].count == L->o.consoles ? L->tag_reach[tag].t : -1;
    if (r->incident < 0 || (guint)r->incident >= L->inc_reach->len)
        return -1;
    GArray *a = g_ptr_array_index(L->inc_reach, r->incident);
    if (!a || (guint)r->callers >= a->len)
        return -1;
    reach *x = &g_array_index(a, reach, r->callers);
    return x->count == L->o.consoles ? x->t : -1;
}

static void report(load *L)
{
    int64_t *ack = g_new(int64_t, L->sent + 1), *ev = g_new(int64_t, L->sent + 1);
    int n_ack = 0, n_ev = 0;
    for (int i = 0; i < L->sent; i++) {
        if (L->calls[i].status != 201)
            continue;
        ack[n_ack++] = L->calls[i].t_ack - L->calls[i].t0;
        int64_t t = reached_all(L, i);
        if (t >= 0)
            ev[n_ev++] = t - L->calls[i].t0;
    }
    qsort(ack, (size_t)n_ack, sizeof *ack, cmp64);
    qsort(ev, (size_t)n_ev, sizeof *ev, cmp64);
    double secs = (double)(L->last_response - L->start) / 1e9;
    char a[32], b[32];
    printf("calls_load: target %d calls/s for %d s, %d connections, %d consoles on \"%s\"\n",
           L->o.rate, L->o.seconds, L->o.connections, L->o.consoles, L->o.topic);
    printf("  acknowledged   %d of %d (%.0f calls/s), %d errors, %d not sent (all connections "
           "busy)\n",
           n_ack, L->total, secs > 0 ? n_ack / secs : 0.0, L->sent - n_ack, L->not_sent);
    printf("  to 201         p50 %s ms   ", pct(a, sizeof a, ack, n_ack, 0.5));
    printf("p99 %s ms\n", pct(b, sizeof b, ack, n_ack, 0.99));
    printf("  to every console p50 %s ms   ", pct(a, sizeof a, ev, n_ev, 0.5));
    printf("p99 %s ms   (%d of %d calls reached all %d)\n", pct(b, sizeof b, ev, n_ev, 0.99), n_ev,
           n_ack, L->o.consoles);
    printf("  consoles closed by the server: %d\n", L->n_closed);
    fflush(stdout);
    g_free(ack);
    g_free(ev);
}

/* ---- setup ------------------------------------------------------------ */

static void usage(void) G_GNUC_NORETURN;

static void usage(void)
{
    fail("usage: calls_load --port P [--host 127.0.0.1] --token TOKEN --bbox W,S,E,N "
         "[--rate 2000] [--seconds 10] [--connections 64] [--consoles 100] "
         "[--topic incidents|events]");
}

static int int_arg(const char *v, int min)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || n < min || n > 100000000)
        usage();
    return (int)n;
}

static void parse_args(int argc, char **argv, opts *o)
{
    *o = (opts){.host = "127.0.0.1",
                .topic = "incidents",
                .rate = 2000,
                .seconds = 10,
                .connections = 64,
                .consoles = 100};
    bool bbox = false;
    for (int i = 1; i < argc; i += 2) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        if (!strcmp(k, "--port"))
            o->port = int_arg(v, 1);
        else if (!strcmp(k, "--host"))
            o->host = v;
        else if (!strcmp(k, "--token"))
            o->token = v;
        else if (!strcmp(k, "--bbox"))
            bbox = sscanf(v, "%lf,%lf,%lf,%lf", &o->bbox[0], &o->bbox[1], &o->bbox[2],
                          &o->bbox[3]) == 4;
        else if (!strcmp(k, "--rate"))
            o->rate = int_arg(v, 1);
        else if (!strcmp(k, "--seconds"))
            o->seconds = int_arg(v, 1);
        else if (!strcmp(k, "--connections"))
            o->connections = int_arg(v, 1);
        else if (!strcmp(k, "--consoles"))
            o->consoles = int_arg(v, 0);
        else if (!strcmp(k, "--topic"))
            o->topic = v;
        else
            usage();
    }
    if (!o->port || !o->token || !bbox ||
        (strcmp(o->topic, "incidents") && strcmp(o->topic, "events")))
        usage();
    if ((int64_t)o->rate * o->seconds > 100000000)
        fail("--rate times --seconds is over 100000000 calls");
}

static void load_init(load *L, const opts *o)
{
    *L = (load){.o = *o, .events = !strcmp(o->topic, "events")};
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai;
    int rc = getaddrinfo(o->host, NULL, &hints, &ai);
    if (rc)
        fail("--host %s: %s", o->host, gai_strerror(rc));
    memcpy(&L->addr, ai->ai_addr, sizeof L->addr);
    L->addr.sin_port = htons((uint16_t)o->port);
    freeaddrinfo(ai);
    L->ep = epoll_create1(EPOLL_CLOEXEC);
    sock_init(&L->timer, KIND_TIMER, 0);
    L->timer.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &L->timer};
    if (L->ep < 0 || L->timer.fd < 0 || epoll_ctl(L->ep, EPOLL_CTL_ADD, L->timer.fd, &ev))
        fail("epoll/timerfd: %s", g_strerror(errno));
    L->rng = g_rand_new();
    L->req_head = g_strdup_printf("POST /api/v1/calls HTTP/1.1\r\nHost: %s:%d\r\n"
                                  "Content-Type: application/json\r\n"
                                  "Authorization: Bearer %s\r\n",
                                  o->host, o->port, o->token);
    L->total = o->rate * o->seconds;
    L->calls = g_new0(call_rec, L->total);
    L->tag_reach = g_new0(reach, L->total);
    L->inc_reach = g_ptr_array_new_with_free_func(reach_free);
    L->conns = g_new0(http_conn, o->connections);
    L->cons = g_new0(console, MAX(o->consoles, 1));
    for (int i = 0; i < o->consoles; i++) {
        console *c = &L->cons[i];
        sock_init(&c->s, KIND_CONSOLE, CONSOLE_BUF);
        c->idx = i;
        c->msg = g_byte_array_new();
        console_open(L, c);
    }
    for (int i = 0; i < o->connections; i++) {
        http_conn *h = &L->conns[i];
        sock_init(&h->s, KIND_HTTP, HTTP_BUF);
        h->call = -1;
        rc = sock_open(L, &h->s);
        if (rc)
            fail("cannot connect to %s:%d: %s", o->host, o->port, g_strerror(-rc));
    }
}

static void load_fini(load *L)
{
    for (int i = 0; i < L->o.consoles; i++) {
        sock_fini(&L->cons[i].s);
        g_byte_array_unref(L->cons[i].msg);
        g_free(L->cons[i].seen);
    }
    for (int i = 0; i < L->o.connections; i++)
        sock_fini(&L->conns[i].s);
    sock_fini(&L->timer);
    close(L->ep);
    g_rand_free(L->rng);
    g_free(L->req_head);
    g_free(L->calls);
    g_free(L->tag_reach);
    g_ptr_array_unref(L->inc_reach);
    g_free(L->conns);
    g_free(L->cons);
}

int main(int argc, char **argv)
{
    opts o;
    parse_args(argc, argv, &o);
    load L;
    load_init(&L, &o);
    run(&L);
    report(&L);
    load_fini(&L);
    return 0;
}
