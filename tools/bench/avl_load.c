/*
 * avl_load — vehicle positions in, viewports out: sustained positions per
 * second from trackers to the units index, with WebSocket clients each
 * watching a viewport, and the latency from the device's packet to a
 * watching client. The same feed can instead go through the design a team
 * would otherwise build on a real redis-server: GEOADD plus PUBLISH to a
 * channel per map tile, pipelined, with the same viewers as subscribers to
 * the tiles their viewports cover.
 *
 *   build/bench/avl_load --mode citycmd --port TRACKERS --ws-port HTTP --token T --bbox W,S,E,N
 *       [--units 2000] [--rate 100000] [--seconds 10] [--clients 1000]
 *       [--protocol teltonika|gt06|osmand] [--connections C (osmand)] [--packet-ms 1000]
 *       [--view 0.0625] [--id-base 1]
 *   build/bench/avl_load --mode redis --redis-port RP --bbox W,S,E,N [same]
 *       [--producers 4] [--zoom 15]
 *
 * Design. One thread, one epoll set, no JSON parser (the tool shares the
 * machine's two cores with what it measures). Each unit is a tracker on its
 * own TCP connection (Teltonika and GT06 name one device per connection;
 * OsmAnd units may share --connections keep-alive connections). Like a real
 * device it batches: every --packet-ms it sends one Codec 8 packet carrying
 * the fixes taken since the last one, k = rate × packet-ms / units of them,
 * their fix times spread over the interval, strictly increasing and a few ms
 * behind the clock (OsmAnd: k pipelined GET requests in one write). GT06
 * times are whole seconds, so a GT06 unit sends one location a second at
 * most and the rate is at most the number of units. Device turn j of the run
 * is due at start + j × packet-ms / units (device j mod units), so the
 * devices' phases are spread evenly and the load is smooth. The server's
 * answers are checked: each packet's record count (Teltonika), each
 * location's acknowledgement (GT06), each request's "accepted" (OsmAnd).
 * Devices connect a few at a time (OPENING), as trackers coming on line do.
 *
 * Latency: each unit keeps the last few packets it sent (fix time range and
 * the moment the packet was written). A watcher reads "id":"U-n" and its
 * "fix_at" in every units message; the packet that carried that fix gives
 * the latency, arrival − write, for each (client, unit update) delivered.
 * The topic coalesces per tick, so fixes a tick skipped are not counted.
 *
 * In redis mode the same packets, at the same moments, become for each
 * position GEOADD units lon lat U-n and PUBLISH tile:<x>:<y> with the unit,
 * its fix time and the write time, pipelined over --producers connections
 * (commands formatted and replies parsed by hiredis). Each viewer SUBSCRIBEs
 * to the tiles (zoom --zoom) its viewport covers and reads the pushes in
 * place; latency is receipt − the write time in the payload. A subscriber
 * redis drops (its output buffer limit) counts as a client closed.
 *
 * Invariants: every buffer a peer can grow is capped (MAX_BUF); a device with
 * MAX_PENDING packets unanswered skips its turn (counted as not sent), so a
 * slow server never builds a backlog here. Times are CLOCK_MONOTONIC ns,
 * taken right after the read that brought the bytes.
 */
#include <glib.h>
#include <hiredis/hiredis.h>

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define NS 1000000000LL
#define MS 1000000LL
#define MAX_BUF (64u << 20)       /* largest input or output backlog of a socket */
#define WS_BUF (256 << 10)        /* initial read buffer of a watcher */
#define DEV_BUF 256               /* a device reads only acks */
#define MAX_PENDING 16            /* packets a device may have unanswered */
#define RING 8                    /* packets a unit remembers for latency */
#define MAX_RECORDS 255           /* a Codec 8 packet's record count is one byte */
#define RECORD_LEN 30             /* a Codec 8 record without IO elements */
#define READY_TIMEOUT (30 * NS)   /* watchers subscribed, devices accepted */
#define DRAIN_TIMEOUT (10 * NS)   /* last acks after the last packet */
#define SETTLE (2 * NS)           /* last deliveries after the last ack */
#define BUCKET_NS 10000           /* latency histogram: 10 µs buckets */
#define BUCKETS (10 * 1000 * 100) /* up to 10 s; beyond goes to the last */
#define TICK_NS (1 * MS)          /* how often the timer sends what is due */
#define OPENING 8                 /* devices connecting at once: the listener has a small backlog */

enum { KIND_TIMER, KIND_DEVICE, KIND_WATCHER, KIND_PRODUCER };
enum { MODE_CITYCMD, MODE_REDIS };
enum { PROTO_TELTONIKA, PROTO_GT06, PROTO_OSMAND };

typedef struct {
    char *d;
    size_t off, len, cap; /* bytes [off, len) are unsent */
} obuf;

typedef struct {
    int kind, idx;
    int fd;            /* -1 when closed */
    bool connecting;   /* a non-blocking connect is under way */
    bool watching_out; /* EPOLLOUT is in the interest set */
    obuf out;
    char *in;
    size_t in_len, in_cap;
} sock;

typedef struct {
    int64_t first_ms, last_ms, sent_ns;
} pkt_rec;

/* One tracker: a unit and, in citycmd mode, its connection. */
typedef struct {
    sock s;
    bool accepted, lost;
    int pend[MAX_PENDING]; /* record counts of the unanswered packets, oldest first */
    int pend_head, pend_n;
    double lon, lat, heading, speed; /* degrees, radians, m/s */
    int64_t last_fix_ms;
    pkt_rec ring[RING];
    int ring_next;
} device;

typedef struct {
    sock s;
    bool upgraded, subscribe_sent, ready, closed;
    bool in_msg;     /* a fragmented WebSocket message is being reassembled */
    GByteArray *msg; /* its fragments so far */
    double box[4];
    int n_channels, n_subscribed;
} watcher;

typedef struct {
    sock s;
    redisReader *rr;
} producer;

typedef struct {
    const char *host, *token, *protocol;
    int mode, port, ws_port, redis_port, units, rate, seconds, clients, packet_ms, id_base,
        producers, zoom, connections;
    double bbox[4], view;
} opts;

typedef struct {
    opts o;
    struct sockaddr_in addr;
    int ep;
    sock timer;
    GRand *rng;
    device *devs;
    watcher *ws;
    producer *prods;
    int proto;
    int k; /* positions per device per turn */
    int64_t total_pkts, next_pkt;
    int64_t offered, not_sent, acked, ack_mismatch, replies;
    int64_t deliveries, unmatched, early;
    int n_ready, n_closed, n_accepted, n_lost, n_opened;
    bool running;
    int64_t start, last_ack, end_send;
    double cpu0; /* CPU seconds used before the run */
    uint32_t *hist;
    int64_t hist_n;
} load;

static void fail(const char *fmt, ...) G_GNUC_PRINTF(1, 2) G_GNUC_NORETURN;

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("avl_load: ", stderr);
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

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads a non-negative decimal at p (at most 18 digits); -1 when there is none. */
static int64_t read_uint(const char *p, const char *end)
{
    int64_t v = 0;
    int n = 0;
    for (; p < end && n < 18 && *p >= '0' && *p <= '9'; p++, n++)
        v = v * 10 + (*p - '0');
    return n ? v : -1;
}

static void latency(load *L, int64_t ns)
{
    int64_t b = ns < 0 ? 0 : ns / BUCKET_NS;
    L->hist[MIN(b, BUCKETS - 1)]++;
    L->hist_n++;
}

/* ---- sockets ---------------------------------------------------------- */

static void obuf_put(obuf *b, const void *p, size_t n)
{
    if (b->off && b->off == b->len)
        b->off = b->len = 0;
    if (b->len + n > b->cap) {
        if (b->off) {
            memmove(b->d, b->d + b->off, b->len - b->off);
            b->len -= b->off;
            b->off = 0;
        }
        if (b->len + n > b->cap) {
            b->cap = MAX(b->cap * 2, b->len + n + 4096);
            b->d = g_realloc(b->d, b->cap);
        }
    }
    memcpy(b->d + b->len, p, n);
    b->len += n;
}

static size_t obuf_size(const obuf *b)
{
    return b->len - b->off;
}

static void sock_watch(load *L, sock *s)
{
    bool want = s->connecting || obuf_size(&s->out) > 0;
    if (want == s->watching_out)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = s};
    epoll_ctl(L->ep, EPOLL_CTL_MOD, s->fd, &ev);
    s->watching_out = want;
}

static int sock_open(load *L, sock *s, int port)
{
    struct sockaddr_in a = L->addr;
    a.sin_port = htons((uint16_t)port);
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0)
        return -errno;
    int one = 1;
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(s->fd, (struct sockaddr *)&a, sizeof a) && errno != EINPROGRESS) {
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
    s->out.off = s->out.len = 0;
}

static int sock_flush(load *L, sock *s)
{
    while (obuf_size(&s->out) > 0) {
        ssize_t n = send(s->fd, s->out.d + s->out.off, obuf_size(&s->out), MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN)
            break;
        if (n < 0)
            return -errno;
        s->out.off += (size_t)n;
    }
    sock_watch(L, s);
    return 0;
}

/* Queues bytes and writes what the kernel takes now. */
static int sock_send(load *L, sock *s, const void *data, size_t len)
{
    if (obuf_size(&s->out) + len > MAX_BUF)
        return -ENOBUFS;
    obuf_put(&s->out, data, len);
    return s->connecting ? 0 : sock_flush(L, s);
}

/* One read into the buffer, grown to keep at least `room` free. */
static ssize_t sock_fill(sock *s, size_t room)
{
    if (s->in_cap - s->in_len < room) {
        if (s->in_len > MAX_BUF)
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

static void sock_init(sock *s, int kind, int idx, size_t cap)
{
    *s = (sock){.kind = kind, .idx = idx, .fd = -1, .in_cap = cap};
    s->in = g_malloc(MAX(cap, 1));
}

static void sock_fini(sock *s)
{
    sock_close(s);
    g_free(s->out.d);
    g_free(s->in);
}

/* ---- units: where they are and what they sent ------------------------- */

static void unit_place(load *L, device *d)
{
    const double *b = L->o.bbox;
    d->lon = b[0] + (b[2] - b[0]) * g_rand_double(L->rng);
    d->lat = b[1] + (b[3] - b[1]) * g_rand_double(L->rng);
    d->heading = g_rand_double_range(L->rng, 0, 2 * G_PI);
    d->speed = g_rand_double_range(L->rng, 8, 25); /* 29–90 km/h */
}

/* Moves the unit along its heading for dt ms, turning back at the bbox. */
static void unit_move(load *L, device *d, int64_t dt)
{
    const double *b = L->o.bbox;
    double m = d->speed * (double)dt / 1000.0;
    d->heading += g_rand_double_range(L->rng, -0.05, 0.05);
    double dlat = m * cos(d->heading) / 111320.0;
    double dlon = m * sin(d->heading) / (111320.0 * cos(d->lat * G_PI / 180));
    if (d->lon + dlon < b[0] || d->lon + dlon > b[2]) {
        d->heading = -d->heading;
        dlon = -dlon;
    }
    if (d->lat + dlat < b[1] || d->lat + dlat > b[3]) {
        d->heading = G_PI - d->heading;
        dlat = -dlat;
    }
    d->lon += dlon;
    d->lat += dlat;
}

/* The fix times of a packet of n records sent now: spread over the packet
 * interval, strictly increasing, a few ms behind the clock. */
static int64_t unit_fix_time(load *L, device *d, int j, int n, int64_t now_ms)
{
    int64_t step = MAX((int64_t)L->o.packet_ms / MAX(n, 1), 1);
    int64_t t = now_ms - 3 - (int64_t)(n - 1 - j) * step;
    if (t <= d->last_fix_ms)
        t = d->last_fix_ms + 1;
    if (d->last_fix_ms)
        unit_move(L, d, t - d->last_fix_ms);
    d->last_fix_ms = t;
    return t;
}

static void unit_remember(device *d, int64_t first_ms, int64_t last_ms, int64_t sent_ns)
{
    d->ring[d->ring_next] = (pkt_rec){first_ms, last_ms, sent_ns};
    d->ring_next = (d->ring_next + 1) % RING;
}

/* A watcher got unit `id`'s fix of fix_ms at `now`. */
static void unit_delivered(load *L, int64_t id, int64_t fix_ms, int64_t now)
{
    int64_t i = id - L->o.id_base;
    if (!L->running)
        return;
    if (i < 0 || i >= L->o.units) {
        L->unmatched++;
        return;
    }
    device *d = &L->devs[i];
    for (int r = 0; r < RING; r++) {
        const pkt_rec *p = &d->ring[(d->ring_next + RING - 1 - r) % RING];
        if (p->sent_ns && fix_ms >= p->first_ms && fix_ms <= p->last_ms) {
            L->deliveries++;
            latency(L, now - p->sent_ns);
            return;
        }
    }
    L->unmatched++;
}

/* ---- Teltonika Codec 8 ------------------------------------------------ */

/* CRC-16/ARC (Teltonika: poly 0xA001, init 0) and, inverted, X.25 (GT06). */
static uint16_t crc16_reflected(const uint8_t *p, size_t n, uint16_t poly, uint16_t init)
{
    uint16_t crc = init;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int b = 0; b < 8; b++)
            crc = (crc & 1) ? (uint16_t)((crc >> 1) ^ poly) : (uint16_t)(crc >> 1);
    }
    return crc;
}

static uint8_t *put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

/* One Codec 8 record without IO elements. */
static uint8_t *put_record(uint8_t *p, const device *d, int64_t fix_ms)
{
    p = put_be(p, (uint64_t)fix_ms, 8);
    *p++ = 0; /* priority */
    p = put_be(p, (uint32_t)(int32_t)lround(d->lon * 1e7), 4);
    p = put_be(p, (uint32_t)(int32_t)lround(d->lat * 1e7), 4);
    p = put_be(p, 20, 2); /* altitude */
    double deg = fmod(d->heading * 180 / G_PI + 720, 360);
    p = put_be(p, (uint64_t)lround(deg) % 360, 2);
    *p++ = 9; /* satellites: a valid fix */
    p = put_be(p, (uint64_t)lround(d->speed * 3.6), 2);
    memset(p, 0, 6); /* event id, total, and no 1-, 2-, 4-, 8-byte elements */
    return p + 6;
}

/* Writes one AVL packet of n fixes taken up to now_ms. */
static size_t teltonika_packet(load *L, device *d, int n, int64_t now_ms, uint8_t *out)
{
    uint8_t *data = out + 8, *p = data;
    *p++ = 0x08;
    *p++ = (uint8_t)n;
    for (int j = 0; j < n; j++)
        p = put_record(p, d, unit_fix_time(L, d, j, n, now_ms));
    *p++ = (uint8_t)n;
    size_t len = (size_t)(p - data);
    put_be(out, 0, 4);
    put_be(out + 4, len, 4);
    p = put_be(p, crc16_reflected(data, len, 0xA001, 0), 4);
    return (size_t)(p - out);
}

static void device_lost(load *L, device *d, const char *why)
{
    if (!L->running)
        fail("device %d: %s before the run", d->s.idx, why);
    if (!d->lost) {
        d->lost = true;
        L->n_lost++;
        fprintf(stderr, "avl_load: device %d: %s\n", d->s.idx, why);
    }
    sock_close(&d->s);
}

static void device_imei(load *L, const device *d, char *out, size_t cap)
{
    snprintf(out, cap, "87%013d", L->o.id_base + d->s.idx);
}

/* The connection device d's positions go on (OsmAnd may share them). */
static device *device_conn(load *L, device *d)
{
    return &L->devs[d->s.idx % L->o.connections];
}

/* A GT06 frame: 78 78, length, protocol, content, serial, CRC-16/X.25, 0D 0A. */
static size_t gt06_frame(uint8_t proto, const uint8_t *content, size_t n, uint16_t serial,
                         uint8_t *out)
{
    uint8_t *p = out;
    *p++ = 0x78;
    *p++ = 0x78;
    *p++ = (uint8_t)(n + 5);
    *p++ = proto;
    memcpy(p, content, n);
    p = put_be(p + n, serial, 2);
    uint16_t crc = (uint16_t)~crc16_reflected(out + 2, (size_t)(p - out - 2), 0x8408, 0xFFFF);
    p = put_be(p, crc, 2);
    *p++ = 0x0D;
    *p++ = 0x0A;
    return (size_t)(p - out);
}

static void device_open(load *L, device *d)
{
    char imei[32];
    uint8_t hello[64];
    size_t len = 0;
    device_imei(L, d, imei, sizeof imei);
    if (L->proto == PROTO_TELTONIKA) {
        hello[0] = 0;
        hello[1] = (uint8_t)strlen(imei);
        memcpy(hello + 2, imei, strlen(imei));
        len = 2 + strlen(imei);
    } else if (L->proto == PROTO_GT06) {
        uint8_t bcd[8] = {0}; /* "0" + the 15-digit IMEI */
        for (int i = 0; i < 15; i++)
            bcd[(i + 1) / 2] |= (uint8_t)((imei[i] - '0') << ((i + 1) % 2 ? 0 : 4));
        len = gt06_frame(0x01, bcd, sizeof bcd, 1, hello);
    }
    int rc = sock_open(L, &d->s, L->o.port);
    if (rc)
        fail("cannot connect to %s:%d: %s", L->o.host, L->o.port, g_strerror(-rc));
    if (len)
        sock_send(L, &d->s, hello, len);
}

static void device_accepted(load *L, device *d)
{
    d->accepted = true;
    L->n_accepted++;
}

/* n positions of the oldest unanswered packet were answered, `good` of them well. */
static void device_acked(load *L, device *d, int n, int good, int64_t now)
{
    if (d->pend_n == 0) {
        device_lost(L, d, "an answer for nothing sent");
        return;
    }
    int *want = &d->pend[d->pend_head];
    if (L->proto == PROTO_TELTONIKA && n != *want)
        L->ack_mismatch++;
    L->ack_mismatch += n - good;
    *want -= MIN(n, *want);
    if (L->proto == PROTO_TELTONIKA || *want == 0) {
        d->pend_head = (d->pend_head + 1) % MAX_PENDING;
        d->pend_n--;
    }
    L->acked += good;
    L->last_ack = now;
}

/* Teltonika: 0x01 for the IMEI, then the record count of each packet. */
static size_t teltonika_acks(load *L, device *d, const char *in, size_t len, int64_t now)
{
    size_t off = 0;
    if (!d->accepted && len >= 1) {
        if (in[0] != 1) {
            device_lost(L, d, "IMEI refused (is the unit registered?)");
            return 0;
        }
        device_accepted(L, d);
        off = 1;
    }
    for (; len - off >= 4 && !d->lost; off += 4) {
        int count = 0;
        for (int i = 0; i < 4; i++)
            count = count << 8 | (uint8_t)in[off + i];
        device_acked(L, d, count, count, now);
    }
    return off;
}

/* GT06: 78 78 05 <protocol> <serial> <CRC> 0D 0A for the login and each location. */
static size_t gt06_acks(load *L, device *d, const char *in, size_t len, int64_t now)
{
    size_t off = 0;
    for (; len - off >= 10 && !d->lost; off += 10) {
        const uint8_t *a = (const uint8_t *)in + off;
        if (a[0] != 0x78 || a[1] != 0x78 || a[2] != 0x05) {
            device_lost(L, d, "not a GT06 answer");
            return 0;
        }
        if (a[3] == 0x01 && !d->accepted)
            device_accepted(L, d);
        else if (a[3] == 0x12)
            device_acked(L, d, 1, 1, now);
    }
    return off;
}

/* OsmAnd: an HTTP response per request, "accepted" or another verdict. */
static size_t osmand_acks(load *L, device *d, const char *in, size_t len, int64_t now)
{
    size_t off = 0;
    while (!d->lost) {
        const char *p = in + off, *end = in + len;
        const char *head = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (!head)
            break;
        const char *cl = memmem(p, (size_t)(head - p), "content-length: ", 16);
        int64_t blen = cl ? read_uint(cl + 16, head) : 0;
        if (end - (head + 4) < blen)
            break;
        bool ok = len - off > 12 && !memcmp(p + 9, "200", 3) && blen >= 8 &&
                  !memcmp(head + 4, "accepted", 8);
        device_acked(L, d, 1, ok, now);
        off = (size_t)(head + 4 + blen - in);
    }
    return off;
}

static void device_readable(load *L, device *d)
{
    ssize_t n = sock_fill(&d->s, DEV_BUF / 2);
    if (n == -2)
        return;
    if (n <= 0) {
        device_lost(L, d, "connection closed by the server");
        return;
    }
    sock *s = &d->s;
    int64_t now = mono_ns();
    size_t used = L->proto == PROTO_TELTONIKA ? teltonika_acks(L, d, s->in, s->in_len, now)
                  : L->proto == PROTO_GT06    ? gt06_acks(L, d, s->in, s->in_len, now)
                                              : osmand_acks(L, d, s->in, s->in_len, now);
    if (!d->lost)
        sock_consume(s, used);
}

/* A GT06 location (0x12) of the unit's fix at fix_ms (whole seconds). */
static size_t gt06_location(const device *d, int64_t fix_ms, uint16_t serial, uint8_t *out)
{
    uint8_t c[18], *p = c;
    time_t secs = (time_t)(fix_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    *p++ = (uint8_t)(tm.tm_year - 100);
    *p++ = (uint8_t)(tm.tm_mon + 1);
    *p++ = (uint8_t)tm.tm_mday;
    *p++ = (uint8_t)tm.tm_hour;
    *p++ = (uint8_t)tm.tm_min;
    *p++ = (uint8_t)tm.tm_sec;
    *p++ = 0xC9; /* 12 bytes of GPS information, 9 satellites */
    p = put_be(p, (uint32_t)lround(d->lat * 1800000), 4);
    p = put_be(p, (uint32_t)lround(d->lon * 1800000), 4);
    *p++ = (uint8_t)lround(d->speed * 3.6);
    double deg = fmod(d->heading * 180 / G_PI + 720, 360);
    put_be(p, 1u << 12 | 1u << 10 | ((uint32_t)lround(deg) % 360), 2); /* fixed, north, east */
    return gt06_frame(0x12, c, sizeof c, serial, out);
}

/* One OsmAnd request (a GET, as the Traccar Client sends it). */
static size_t osmand_request(load *L, const device *d, int64_t fix_ms, char *out, size_t cap)
{
    char imei[32];
    device_imei(L, d, imei, sizeof imei);
    double deg = fmod(d->heading * 180 / G_PI + 720, 360);
    int n = snprintf(out, cap,
                     "GET /?id=%s&lat=%.7f&lon=%.7f&timestamp=%" PRId64
                     "&speed=%.1f&bearing=%.0f HTTP/1.1\r\nHost: %s\r\n\r\n",
                     imei, d->lat, d->lon, fix_ms, d->speed * 3.6 / 1.852, deg, L->o.host);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* Device d's turn: the k fixes it took since its last turn, as one Teltonika
 * packet (several beyond 255 records), k GT06 locations or k OsmAnd requests
 * in one write. */
static void device_send(load *L, device *d)
{
    device *c = device_conn(L, d);
    int parts = L->proto == PROTO_TELTONIKA ? (L->k + MAX_RECORDS - 1) / MAX_RECORDS : 1;
    if (c->lost || !c->accepted || c->pend_n + parts > MAX_PENDING) {
        L->not_sent += L->k;
        return;
    }
    uint8_t buf[MAX_RECORDS * RECORD_LEN + 16];
    int64_t now_ms = wall_ms();
    GByteArray *out = g_byte_array_new();
    int64_t first = d->last_fix_ms + 1; /* fix times only grow */
    for (int left = L->k; left > 0;) {
        int n = L->proto == PROTO_TELTONIKA ? MIN(left, MAX_RECORDS) : left;
        if (L->proto == PROTO_TELTONIKA) {
            size_t len = teltonika_packet(L, d, n, now_ms - (left - n), buf);
            g_byte_array_append(out, buf, (guint)len);
            c->pend[(c->pend_head + c->pend_n++) % MAX_PENDING] = n;
        } else if (L->proto == PROTO_GT06) {
            int64_t fix = now_ms / 1000 * 1000; /* GT06 times are whole seconds */
            if (fix <= d->last_fix_ms) {
                L->not_sent += 1;
                break;
            }
            if (d->last_fix_ms)
                unit_move(L, d, fix - d->last_fix_ms);
            d->last_fix_ms = fix;
            first = fix;
            size_t len = gt06_location(d, fix, (uint16_t)(d->last_fix_ms / 1000), buf);
            g_byte_array_append(out, buf, (guint)len);
            c->pend[(c->pend_head + c->pend_n++) % MAX_PENDING] = 1;
        } else {
            for (int j = 0; j < n; j++) {
                int64_t fix = unit_fix_time(L, d, j, n, now_ms);
                size_t len = osmand_request(L, d, fix, (char *)buf, sizeof buf);
                g_byte_array_append(out, buf, (guint)len);
            }
            c->pend[(c->pend_head + c->pend_n++) % MAX_PENDING] = n;
        }
        L->offered += n;
        left -= n;
    }
    int64_t t = mono_ns();
    if (out->len && sock_send(L, &c->s, out->data, out->len))
        device_lost(L, c, "write failed");
    else if (out->len)
        unit_remember(d, first, d->last_fix_ms, t);
    g_byte_array_unref(out);
}

/* ---- redis: the same positions as GEOADD + PUBLISH -------------------- */

static void tile_of(int zoom, double lon, double lat, int *x, int *y)
{
    double n = (double)(1 << zoom), r = lat * G_PI / 180;
    *x = (int)floor((lon + 180) / 360 * n);
    *y = (int)floor((1 - log(tan(r) + 1 / cos(r)) / G_PI) / 2 * n);
}

static void redis_command(load *L, producer *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *cmd;
    int n = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    if (n < 0)
        fail("redisFormatCommand failed");
    if (sock_send(L, &p->s, cmd, (size_t)n))
        fail("redis producer %d: write failed or backlog over %u bytes", p->s.idx, MAX_BUF);
    redisFreeCommand(cmd);
}

/* Degrees with 7 decimals, as "%.7f" gives them, without the cost of %f. */
static void fmt_e7(char *out, size_t cap, double deg)
{
    long long v = llround(deg * 1e7), a = v < 0 ? -v : v;
    snprintf(out, cap, "%s%lld.%07lld", v < 0 ? "-" : "", a / 10000000, a % 10000000);
}

static void redis_device_send(load *L, device *d)
{
    producer *p = &L->prods[d->s.idx % L->o.producers];
    if (obuf_size(&p->s.out) > MAX_BUF / 4) { /* redis is not keeping up */
        L->not_sent += L->k;
        return;
    }
    int64_t now_ms = wall_ms(), t = mono_ns(), first = d->last_fix_ms + 1;
    for (int j = 0; j < L->k; j++) {
        int64_t fix = unit_fix_time(L, d, j, L->k, now_ms);
        char member[32], chan[48], payload[192], lon[24], lat[24];
        snprintf(member, sizeof member, "U-%d", L->o.id_base + d->s.idx);
        int x, y;
        tile_of(L->o.zoom, d->lon, d->lat, &x, &y);
        snprintf(chan, sizeof chan, "tile:%d:%d", x, y);
        fmt_e7(lon, sizeof lon, d->lon);
        fmt_e7(lat, sizeof lat, d->lat);
        snprintf(payload, sizeof payload,
                 "{\"id\":\"%s\",\"lon\":%s,\"lat\":%s,\"fix_ms\":%" PRId64 ",\"t\":%" PRId64 "}",
                 member, lon, lat, fix, t);
        redis_command(L, p, "GEOADD units %s %s %s", lon, lat, member);
        redis_command(L, p, "PUBLISH %s %s", chan, payload);
    }
    unit_remember(d, first, d->last_fix_ms, t);
    L->offered += L->k;
}

static void producer_readable(load *L, producer *p)
{
    ssize_t n = sock_fill(&p->s, 64 << 10);
    if (n == -2)
        return;
    if (n <= 0)
        fail("redis producer %d: connection lost", p->s.idx);
    int64_t now = mono_ns();
    redisReaderFeed(p->rr, p->s.in, (size_t)p->s.in_len);
    p->s.in_len = 0;
    void *r;
    while (redisReaderGetReply(p->rr, &r) == REDIS_OK && r) {
        redisReply *rep = r;
        if (rep->type == REDIS_REPLY_ERROR)
            fail("redis: %s", rep->str);
        freeReplyObject(r);
        if (++L->replies % 2 == 0) { /* GEOADD, then PUBLISH: one position */
            L->acked++;
            L->last_ack = now;
        }
    }
}

/* ---- the watchers: WebSocket ------------------------------------------ */

static int ws_send(load *L, watcher *c, int op, const void *payload, size_t n)
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

static void watcher_lost(load *L, watcher *c, const char *why)
{
    if (!L->running)
        fail("watcher %d: %s before it was ready", c->s.idx, why);
    if (!c->closed) {
        c->closed = true;
        L->n_closed++;
        fprintf(stderr, "avl_load: watcher %d: %s\n", c->s.idx, why);
    }
    sock_close(&c->s);
}

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* "2026-11-21T23:13:03.123Z" as Unix ms; -1 when it is not that. */
static int64_t iso_ms(const char *p, const char *end)
{
    if (end - p < 24 || p[4] != '-' || p[10] != 'T' || p[19] != '.')
        return -1;
    int64_t y = read_uint(p, p + 4), mo = read_uint(p + 5, p + 7), d = read_uint(p + 8, p + 10);
    int64_t h = read_uint(p + 11, p + 13), mi = read_uint(p + 14, p + 16);
    int64_t s = read_uint(p + 17, p + 19), ms = read_uint(p + 20, p + 23);
    if (y < 0 || mo < 1 || d < 1 || h < 0 || mi < 0 || s < 0 || ms < 0)
        return -1;
    return ((days_from_civil(y, (int)mo, (int)d) * 24 + h) * 60 + mi) * 60000 + s * 1000 + ms;
}

static void scan_units(load *L, const char *p, size_t n, int64_t now)
{
    static const char ID[] = "{\"id\":\"U-", FIX[] = "\"fix_at\":\"";
    const char *end = p + n;
    for (const char *k = p; (k = memmem(k, (size_t)(end - k), ID, sizeof ID - 1));) {
        k += sizeof ID - 1;
        int64_t id = read_uint(k, end);
        const char *f = memmem(k, (size_t)MIN(end - k, 512), FIX, sizeof FIX - 1);
        if (id < 0 || !f) {
            L->unmatched++;
            continue;
        }
        unit_delivered(L, id, iso_ms(f + sizeof FIX - 1, end), now);
    }
}

static void watcher_message(load *L, watcher *c, const char *p, size_t n, int64_t now)
{
    static const char HELLO[] = "{\"type\":\"hello\"", SUBSCRIBED[] = "{\"type\":\"subscribed\"";
    if (!c->subscribe_sent && memmem(p, n, HELLO, sizeof HELLO - 1)) {
        char sub[256];
        int len = snprintf(sub, sizeof sub,
                           "{\"type\":\"subscribe\",\"id\":\"s\",\"data\":{\"topics\":[\"units\"],"
                           "\"bbox\":[%.7f,%.7f,%.7f,%.7f]}}",
                           c->box[0], c->box[1], c->box[2], c->box[3]);
        ws_send(L, c, 0x1, sub, (size_t)len);
        c->subscribe_sent = true;
    }
    if (!c->ready && memmem(p, n, SUBSCRIBED, sizeof SUBSCRIBED - 1)) {
        c->ready = true;
        L->n_ready++;
    }
    scan_units(L, p, n, now);
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
    if (n > MAX_BUF)
        return -1;
    h->hlen = hl;
    h->plen = n;
    return len >= hl + n ? 1 : 0;
}

/* Handles one frame; -1 when the watcher is to be dropped, 1 when it closed. */
static int watcher_frame(load *L, watcher *c, const ws_hdr *h, unsigned char *pl, int64_t now)
{
    size_t n = (size_t)h->plen;
    if (h->mask)
        for (size_t i = 0; i < n; i++)
            pl[i] ^= h->mask[i & 3];
    switch (h->op) {
    case 0x1:
    case 0x2:
        if (h->fin && h->op == 0x1)
            watcher_message(L, c, (const char *)pl, n, now);
        else if (!h->fin) {
            g_byte_array_set_size(c->msg, 0);
            g_byte_array_append(c->msg, pl, (guint)n);
            c->in_msg = h->op == 0x1;
        }
        return 0;
    case 0x0:
        if (!c->in_msg)
            return 0;
        if (c->msg->len + n > MAX_BUF)
            return -1;
        g_byte_array_append(c->msg, pl, (guint)n);
        if (h->fin) {
            watcher_message(L, c, (const char *)c->msg->data, c->msg->len, now);
            c->in_msg = false;
        }
        return 0;
    case 0x9:
        return ws_send(L, c, 0xA, pl, n);
    case 0xA:
        return 0;
    case 0x8:
        ws_send(L, c, 0x8, pl, MIN(n, 2));
        watcher_lost(L, c, "closed by the server");
        return 1;
    default:
        return -1;
    }
}

/* Checks the 101 and leaves the frames that followed it in the buffer. */
static int watcher_upgrade(load *L, watcher *c)
{
    sock *s = &c->s;
    const char *end = memmem(s->in, s->in_len, "\r\n\r\n", 4);
    if (!end)
        return s->in_len > 65536 ? -1 : 0;
    if (s->in_len < 12 || memcmp(s->in + 9, "101", 3) != 0) {
        const char *eol = memchr(s->in, '\r', s->in_len);
        fail("watcher %d: upgrade refused: %.*s", c->s.idx, (int)(eol - s->in), s->in);
    }
    (void)L;
    sock_consume(s, (size_t)(end - s->in) + 4);
    c->upgraded = true;
    return 0;
}

static void ws_parse(load *L, watcher *c, int64_t now)
{
    sock *s = &c->s;
    if (!c->upgraded) {
        if (watcher_upgrade(L, c))
            watcher_lost(L, c, "no upgrade response");
        if (!c->upgraded)
            return;
    }
    size_t off = 0;
    ws_hdr h;
    int rc;
    while ((rc = ws_header((unsigned char *)s->in + off, s->in_len - off, &h)) == 1) {
        int r = watcher_frame(L, c, &h, (unsigned char *)s->in + off + h.hlen, now);
        if (r) {
            if (r < 0)
                watcher_lost(L, c, "bad frame or write error");
            return;
        }
        off += h.hlen + (size_t)h.plen;
    }
    if (rc < 0) {
        watcher_lost(L, c, "oversized frame");
        return;
    }
    sock_consume(s, off);
}

/* One RESP line at p: its type byte and the number after it; the bytes it
 * took, 0 when incomplete, -1 when it is not RESP. */
static ssize_t resp_line(const char *p, const char *end, char *type, int64_t *num)
{
    const char *eol = memchr(p, '\r', (size_t)(end - p));
    if (!eol || eol + 1 >= end)
        return 0;
    *type = *p;
    *num = read_uint(p + 1, eol);
    return *num < 0 && *type != '+' ? -1 : eol + 2 - p;
}

/* Redis: subscribe confirmations, then ["message", channel, payload], read
 * in place (hiredis' reader allocates per element, which at millions of
 * messages a second would be what this measures). Returns bytes used, or
 * -1 for bytes that are not a push of bulk strings and integers. */
static ssize_t sub_scan(load *L, watcher *c, const char *in, size_t n, int64_t now)
{
    const char *p = in, *end = in + n;
    while (p < end) {
        const char *q = p, *el[3] = {0};
        size_t el_len[3] = {0};
        char type;
        int64_t count;
        ssize_t used = resp_line(q, end, &type, &count);
        if (used <= 0)
            return used < 0 ? -1 : p - in;
        if (type != '*' || count > 3)
            return -1;
        q += used;
        int i;
        for (i = 0; i < count; i++) {
            int64_t v;
            if ((used = resp_line(q, end, &type, &v)) <= 0)
                break;
            if (type == '$' && end - (q + used) < v + 2)
                break;
            el[i] = q + used;
            el_len[i] = type == '$' ? (size_t)v : 0;
            q += used + (type == '$' ? v + 2 : 0);
        }
        if (used < 0)
            return -1;
        if (i < count)
            return p - in; /* the rest comes later */
        p = q;
        if (el_len[0] == 9 && !memcmp(el[0], "subscribe", 9)) {
            if (++c->n_subscribed == c->n_channels) {
                c->ready = true;
                L->n_ready++;
            }
        } else if (el_len[0] == 7 && !memcmp(el[0], "message", 7) && L->running) {
            const char *t = memmem(el[2], el_len[2], "\"t\":", 4);
            if (t) {
                L->deliveries++;
                latency(L, now - read_uint(t + 4, el[2] + el_len[2]));
            } else {
                L->unmatched++;
            }
        }
    }
    return p - in;
}

static void sub_parse(load *L, watcher *c, int64_t now)
{
    ssize_t used = sub_scan(L, c, c->s.in, c->s.in_len, now);
    if (used < 0)
        watcher_lost(L, c, "not a RESP push");
    else
        sock_consume(&c->s, (size_t)used);
}

static void watcher_readable(load *L, watcher *c)
{
    ssize_t n = sock_fill(&c->s, WS_BUF / 2);
    if (n == -2)
        return;
    if (n <= 0) {
        watcher_lost(L, c, "connection lost");
        return;
    }
    if (L->o.mode == MODE_REDIS)
        sub_parse(L, c, mono_ns());
    else
        ws_parse(L, c, mono_ns());
}

/* A district-sized window at a random place in the city. */
static void watcher_box(load *L, watcher *c)
{
    const double *b = L->o.bbox;
    double f = sqrt(L->o.view), w = (b[2] - b[0]) * f, h = (b[3] - b[1]) * f;
    c->box[0] = b[0] + (b[2] - b[0] - w) * g_rand_double(L->rng);
    c->box[1] = b[1] + (b[3] - b[1] - h) * g_rand_double(L->rng);
    c->box[2] = c->box[0] + w;
    c->box[3] = c->box[1] + h;
}

static void watcher_open(load *L, watcher *c)
{
    watcher_box(L, c);
    if (L->o.mode == MODE_REDIS) {
        int rc = sock_open(L, &c->s, L->o.redis_port);
        if (rc)
            fail("cannot connect to redis: %s", g_strerror(-rc));
        int x0, y0, x1, y1;
        tile_of(L->o.zoom, c->box[0], c->box[3], &x0, &y0); /* north-west */
        tile_of(L->o.zoom, c->box[2], c->box[1], &x1, &y1); /* south-east */
        GString *cmd = g_string_new(NULL);
        int n = (x1 - x0 + 1) * (y1 - y0 + 1);
        g_string_append_printf(cmd, "*%d\r\n$9\r\nSUBSCRIBE\r\n", n + 1);
        for (int x = x0; x <= x1; x++)
            for (int y = y0; y <= y1; y++) {
                char ch[48];
                int len = snprintf(ch, sizeof ch, "tile:%d:%d", x, y);
                g_string_append_printf(cmd, "$%d\r\n%s\r\n", len, ch);
            }
        c->n_channels = n;
        sock_send(L, &c->s, cmd->str, cmd->len);
        g_string_free(cmd, TRUE);
        return;
    }
    guint32 key[4];
    for (int i = 0; i < 4; i++)
        key[i] = g_rand_int(L->rng);
    gchar *k64 = g_base64_encode((const guchar *)key, sizeof key);
    gchar *req = g_strdup_printf("GET /ws HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                                 "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                                 "Sec-WebSocket-Version: 13\r\n"
                                 "Sec-WebSocket-Protocol: citycmd.v1, bearer.%s\r\n\r\n",
                                 L->o.host, L->o.ws_port, k64, L->o.token);
    int rc = sock_open(L, &c->s, L->o.ws_port);
    if (rc)
        fail("cannot connect to %s:%d: %s", L->o.host, L->o.port, g_strerror(-rc));
    sock_send(L, &c->s, req, strlen(req));
    g_free(req);
    g_free(k64);
}

/* ---- the loop --------------------------------------------------------- */

/* The timer: every packet that is due. */
static void timer_fire(load *L)
{
    uint64_t ticks;
    if (read(L->timer.fd, &ticks, sizeof ticks) < 0)
        return;
    int64_t now = mono_ns(), n = L->o.units;
    while (L->next_pkt < L->total_pkts && L->start + L->next_pkt * L->o.packet_ms * MS / n <= now) {
        device *d = &L->devs[L->next_pkt % n];
        if (L->o.mode == MODE_REDIS)
            redis_device_send(L, d);
        else
            device_send(L, d);
        L->next_pkt++;
    }
    if (L->next_pkt == L->total_pkts) {
        struct itimerspec off = {0};
        timerfd_settime(L->timer.fd, 0, &off, NULL);
        L->end_send = now;
    }
}

static void dispatch(load *L, sock *s, uint32_t events)
{
    if (s->kind == KIND_TIMER) {
        timer_fire(L);
        return;
    }
    int rc = 0;
    bool was_connecting = s->connecting;
    if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
        rc = s->connecting ? sock_connected(L, s) : sock_flush(L, s);
    if (!rc && was_connecting && !s->connecting && s->kind == KIND_DEVICE &&
        L->proto == PROTO_OSMAND)
        device_accepted(L, (device *)s); /* HTTP has no handshake */
    bool in = events & (EPOLLIN | EPOLLHUP | EPOLLERR);
    switch (s->kind) {
    case KIND_DEVICE:
        if (rc)
            device_lost(L, (device *)s, g_strerror(-rc));
        else if (in)
            device_readable(L, (device *)s);
        break;
    case KIND_WATCHER:
        if (rc)
            watcher_lost(L, (watcher *)s, g_strerror(-rc));
        else if (in)
            watcher_readable(L, (watcher *)s);
        break;
    case KIND_PRODUCER:
        if (rc)
            fail("redis producer: %s", g_strerror(-rc));
        if (in)
            producer_readable(L, (producer *)s);
        break;
    }
}

static void pump(load *L, int timeout_ms)
{
    struct epoll_event ev[512];
    int n = epoll_wait(L->ep, ev, G_N_ELEMENTS(ev), timeout_ms);
    for (int i = 0; i < n; i++) {
        sock *s = ev[i].data.ptr;
        if (s->fd >= 0)
            dispatch(L, s, ev[i].events);
    }
}

/* Connects the next devices, a few at a time, as trackers coming on line do. */
static void devices_open(load *L)
{
    while (L->o.mode == MODE_CITYCMD && L->n_opened < L->o.connections &&
           L->n_opened - L->n_accepted < OPENING)
        device_open(L, &L->devs[L->n_opened++]);
}

static bool all_ready(load *L)
{
    if (L->o.mode == MODE_REDIS)
        for (int i = 0; i < L->o.producers; i++)
            if (L->prods[i].s.connecting)
                return false;
    bool devs = L->o.mode == MODE_REDIS || L->n_accepted == L->o.connections;
    return devs && L->n_ready == L->o.clients;
}

static int64_t outstanding(load *L)
{
    if (L->o.mode == MODE_REDIS)
        return L->offered - L->acked;
    int64_t n = 0;
    for (int i = 0; i < L->o.units; i++)
        n += L->devs[i].lost ? 0 : L->devs[i].pend_n;
    return n;
}

static void run(load *L)
{
    int64_t deadline = mono_ns() + READY_TIMEOUT;
    while (devices_open(L), !all_ready(L)) {
        if (mono_ns() > deadline)
            fail("after 30 s: %d of %d watchers subscribed, %d of %d devices accepted", L->n_ready,
                 L->o.clients, L->n_accepted, L->o.units);
        pump(L, 100);
    }
    L->running = true;
    L->cpu0 = cpu_seconds();
    L->start = L->last_ack = mono_ns();
    struct itimerspec it = {
        .it_interval = {0, TICK_NS},
        .it_value = {L->start / NS, L->start % NS},
    };
    timerfd_settime(L->timer.fd, TFD_TIMER_ABSTIME, &it, NULL);
    while (L->next_pkt < L->total_pkts)
        pump(L, 100);
    int64_t now;
    for (deadline = mono_ns() + DRAIN_TIMEOUT; outstanding(L) > 0 && mono_ns() < deadline;)
        pump(L, 100);
    for (deadline = mono_ns() + SETTLE; (now = mono_ns()) < deadline;)
        pump(L, (int)((deadline - now) / MS) + 1);
}

/* ---- the result ------------------------------------------------------- */

/* The q quantile in ms, as "%.1f", ">=10000" past the histogram, "-" for none. */
static const char *quantile_ms(load *L, double q, char *out, size_t cap)
{
    int64_t want = (int64_t)ceil(q * (double)L->hist_n), seen = 0;
    for (int b = 0; L->hist_n && b < BUCKETS; b++) {
        seen += L->hist[b];
        if (seen >= want && seen > 0) {
            if (b == BUCKETS - 1)
                snprintf(out, cap, ">=%.0f", (double)BUCKETS * BUCKET_NS / 1e6);
            else
                snprintf(out, cap, "%.1f", (b + 0.5) * BUCKET_NS / 1e6);
            return out;
        }
    }
    return "-";
}

static void report(load *L)
{
    double send_s = (double)(L->end_send - L->start) / 1e9;
    double ack_s = (double)(MAX(L->last_ack, L->end_send) - L->start) / 1e9;
    double run_s = send_s + (double)SETTLE / 1e9;
    double cpu = cpu_seconds() - L->cpu0;
    bool redis = L->o.mode == MODE_REDIS;
    printf("avl_load %s: %d units (%s), %d records/packet every %d ms, %d s, %d clients "
           "watching %.1f%% of the city each\n",
           redis ? "redis" : "citycmd", L->o.units, redis ? "GEOADD+PUBLISH" : L->o.protocol, L->k,
           L->o.packet_ms, L->o.seconds, L->o.clients, L->o.view * 100);
    printf("  positions offered        %" PRId64 " (%.0f/s), not sent (backlog) %" PRId64 "\n",
           L->offered, send_s > 0 ? L->offered / send_s : 0.0, L->not_sent);
    printf("  positions acknowledged   %" PRId64 " (%.0f/s)%s", L->acked,
           ack_s > 0 ? L->acked / ack_s : 0.0, redis ? " (GEOADD+PUBLISH replies)\n" : "");
    if (!redis)
        printf(", %" PRId64 " answers not as expected, %d devices lost\n", L->ack_mismatch,
               L->n_lost);
    printf("  deliveries               %" PRId64 " (%.0f/s), %" PRId64 " unmatched\n",
           L->deliveries, send_s > 0 ? L->deliveries / send_s : 0.0, L->unmatched);
    char p50[32], p99[32];
    printf("  packet to client         p50 %s ms   p99 %s ms\n",
           quantile_ms(L, 0.5, p50, sizeof p50), quantile_ms(L, 0.99, p99, sizeof p99));
    printf("  clients closed           %d\n", L->n_closed);
    printf("  load generator CPU       %.1f s (%.0f%% of one core over the run)\n", cpu,
           100 * cpu / MAX(run_s, 1e-3));
    fflush(stdout);
}

/* ---- setup ------------------------------------------------------------ */

static void usage(void) G_GNUC_NORETURN;

static void usage(void)
{
    fail("usage: avl_load --mode citycmd|redis --bbox W,S,E,N [--port P --ws-port HP --token T] "
         "[--redis-port RP] [--units 2000] [--rate 100000] [--seconds 10] [--clients 1000] "
         "[--protocol teltonika|gt06|osmand] [--connections C] [--packet-ms 1000] [--view 0.0625] "
         "[--id-base 1] "
         "[--producers 4] [--zoom 15] [--host 127.0.0.1]");
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
                .protocol = "teltonika",
                .mode = -1,
                .units = 2000,
                .rate = 100000,
                .seconds = 10,
                .clients = 1000,
                .packet_ms = 1000,
                .id_base = 1,
                .producers = 4,
                .zoom = 15,
                .view = 1.0 / 16};
    bool bbox = false;
    for (int i = 1; i < argc; i += 2) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        if (!strcmp(k, "--mode"))
            o->mode = !strcmp(v, "citycmd") ? MODE_CITYCMD : !strcmp(v, "redis") ? MODE_REDIS : -2;
        else if (!strcmp(k, "--port"))
            o->port = int_arg(v, 1);
        else if (!strcmp(k, "--ws-port"))
            o->ws_port = int_arg(v, 1);
        else if (!strcmp(k, "--redis-port"))
            o->redis_port = int_arg(v, 1);
        else if (!strcmp(k, "--host"))
            o->host = v;
        else if (!strcmp(k, "--token"))
            o->token = v;
        else if (!strcmp(k, "--bbox"))
            bbox = sscanf(v, "%lf,%lf,%lf,%lf", &o->bbox[0], &o->bbox[1], &o->bbox[2],
                          &o->bbox[3]) == 4;
        else if (!strcmp(k, "--units"))
            o->units = int_arg(v, 1);
        else if (!strcmp(k, "--rate"))
            o->rate = int_arg(v, 1);
        else if (!strcmp(k, "--seconds"))
            o->seconds = int_arg(v, 1);
        else if (!strcmp(k, "--clients"))
            o->clients = int_arg(v, 0);
        else if (!strcmp(k, "--protocol"))
            o->protocol = v;
        else if (!strcmp(k, "--packet-ms"))
            o->packet_ms = int_arg(v, 1);
        else if (!strcmp(k, "--id-base"))
            o->id_base = int_arg(v, 1);
        else if (!strcmp(k, "--producers"))
            o->producers = int_arg(v, 1);
        else if (!strcmp(k, "--zoom"))
            o->zoom = int_arg(v, 1);
        else if (!strcmp(k, "--view"))
            o->view = g_ascii_strtod(v, NULL);
        else if (!strcmp(k, "--connections"))
            o->connections = int_arg(v, 1); /* OsmAnd only: GT06 and Teltonika have one each */
        else
            usage();
    }
    if (o->mode < 0 || !bbox || o->view <= 0 || o->view > 1 || o->zoom > 20)
        usage();
    if (o->mode == MODE_CITYCMD && (!o->port || !o->token))
        usage();
    o->ws_port = o->ws_port ? o->ws_port : o->port;
    if (o->mode == MODE_REDIS && !o->redis_port)
        usage();
    if (strcmp(o->protocol, "teltonika") && strcmp(o->protocol, "gt06") &&
        strcmp(o->protocol, "osmand"))
        usage();
    if (strcmp(o->protocol, "osmand") || !o->connections || o->connections > o->units)
        o->connections = o->units;
    if (!strcmp(o->protocol, "gt06")) { /* in redis mode too: the same feed */
        /* GT06 times are whole seconds: one fix per device per second at most. */
        if (o->rate > o->units)
            fail("GT06 carries one fix per device per second: --units must be at least --rate");
        o->packet_ms = (int)MAX(1000, llround(1000.0 * o->units / o->rate));
    }
}

static void raise_fd_limit(int need)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < (rlim_t)need) {
        r.rlim_cur = MIN(r.rlim_max, (rlim_t)need);
        setrlimit(RLIMIT_NOFILE, &r);
    }
}

static void load_init(load *L, const opts *o)
{
    *L = (load){.o = *o,
                .proto = !strcmp(o->protocol, "gt06")     ? PROTO_GT06
                         : !strcmp(o->protocol, "osmand") ? PROTO_OSMAND
                                                          : PROTO_TELTONIKA};
    raise_fd_limit(o->units + o->clients + o->producers + 64);
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai;
    int rc = getaddrinfo(o->host, NULL, &hints, &ai);
    if (rc)
        fail("--host %s: %s", o->host, gai_strerror(rc));
    memcpy(&L->addr, ai->ai_addr, sizeof L->addr);
    freeaddrinfo(ai);
    L->ep = epoll_create1(EPOLL_CLOEXEC);
    sock_init(&L->timer, KIND_TIMER, 0, 0);
    L->timer.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &L->timer};
    if (L->ep < 0 || L->timer.fd < 0 || epoll_ctl(L->ep, EPOLL_CTL_ADD, L->timer.fd, &ev))
        fail("epoll/timerfd: %s", g_strerror(errno));
    L->rng = g_rand_new_with_seed(20261121);
    L->hist = g_new0(uint32_t, BUCKETS);
    /* k fixes per packet: rate × packet interval over the units. */
    L->k = (int)MAX(1, llround((double)o->rate * o->packet_ms / 1000.0 / o->units));
    if (L->proto == PROTO_GT06)
        L->k = 1;
    L->total_pkts = (int64_t)o->seconds * 1000 / o->packet_ms * o->units;
    L->devs = g_new0(device, o->units);
    for (int i = 0; i < o->units; i++) {
        device *d = &L->devs[i];
        sock_init(&d->s, KIND_DEVICE, i, DEV_BUF);
        unit_place(L, d);
    }
    L->prods = g_new0(producer, o->producers);
    for (int i = 0; o->mode == MODE_REDIS && i < o->producers; i++) {
        producer *p = &L->prods[i];
        sock_init(&p->s, KIND_PRODUCER, i, 64 << 10);
        p->rr = redisReaderCreate();
        rc = sock_open(L, &p->s, o->redis_port);
        if (rc)
            fail("cannot connect to redis: %s", g_strerror(-rc));
    }
    L->ws = g_new0(watcher, MAX(o->clients, 1));
    for (int i = 0; i < o->clients; i++) {
        watcher *c = &L->ws[i];
        sock_init(&c->s, KIND_WATCHER, i, WS_BUF);
        c->msg = g_byte_array_new();
        watcher_open(L, c);
    }
}

static void load_fini(load *L)
{
    for (int i = 0; i < L->o.clients; i++) {
        sock_fini(&L->ws[i].s);
        g_byte_array_unref(L->ws[i].msg);
    }
    for (int i = 0; i < L->o.units; i++)
        sock_fini(&L->devs[i].s);
    for (int i = 0; L->o.mode == MODE_REDIS && i < L->o.producers; i++) {
        sock_fini(&L->prods[i].s);
        redisReaderFree(L->prods[i].rr);
    }
    sock_fini(&L->timer);
    close(L->ep);
    g_rand_free(L->rng);
    g_free(L->hist);
    g_free(L->devs);
    g_free(L->prods);
    g_free(L->ws);
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
