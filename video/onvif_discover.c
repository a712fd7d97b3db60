/*
 * onvif_discover.c — WS-Discovery (onvif.h): one Probe for
 * NetworkVideoTransmitters to the discovery address (the multicast group
 * 239.255.255.250:3702 by default), and one to each host of a network
 * when one is given, for cameras on routed subnets that multicast does
 * not reach. Blocking; a worker thread.
 *
 * One UDP socket sends every Probe with the same MessageID and receives
 * the ProbeMatches; a reply relating to another message is ignored. The
 * sweep drains the socket every few sends so replies do not pile up in
 * the kernel, then listens for wait_ms after the last send. Devices are
 * one per endpoint reference (a camera answering on two paths is one),
 * at most VID_ONVIF_DEVICES_MAX; a datagram is at most 64 KiB, so no reply
 * can grow memory. IPv4 only.
 */
#include "onvif_internal.h"

#include "../core/core.h"
#include "../core/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DATAGRAM_MAX 65536
#define SEND_BATCH 64 /* sends between two drains of the socket */
#define RCVBUF_BYTES (1024 * 1024)

static int fail(char **why, int rc, char *msg)
{
    if (why)
        *why = msg;
    else
        g_free(msg);
    return rc;
}

int vid_onvif_cidr_hosts(const char *cidr, int min_prefix, guint32 *first, guint32 *count,
                         char **why)
{
    const char *slash = cidr ? strchr(cidr, '/') : NULL;
    char addr[INET_ADDRSTRLEN] = "";
    struct in_addr in;
    char *end = NULL;
    gint64 prefix = slash ? g_ascii_strtoll(slash + 1, &end, 10) : -1;
    if (!slash || (size_t)(slash - cidr) >= sizeof addr || !slash[1] || *end || prefix < 0 ||
        prefix > 32 || !g_ascii_isdigit(slash[1]))
        return fail(why, CORE_EINVAL,
                    g_strdup_printf("'%.60s' is not an IPv4 network such as 192.168.1.0/24",
                                    cidr ? cidr : ""));
    memcpy(addr, cidr, (size_t)(slash - cidr));
    if (inet_pton(AF_INET, addr, &in) != 1)
        return fail(why, CORE_EINVAL,
                    g_strdup_printf("'%.60s' is not an IPv4 network such as 192.168.1.0/24", cidr));
    if (prefix < min_prefix)
        return fail(why, CORE_EINVAL,
                    g_strdup_printf("the network %s is larger than /%d (%u hosts): give a smaller"
                                    " one, or several in turn",
                                    cidr, min_prefix, (1u << (32 - min_prefix)) - 2));
    guint32 mask = prefix ? 0xffffffffu << (32 - prefix) : 0;
    guint32 net = ntohl(in.s_addr) & mask;
    if (prefix >= 31) {
        *first = prefix == 32 ? ntohl(in.s_addr) : net;
        *count = prefix == 32 ? 1 : 2;
    } else {
        *first = net + 1;
        *count = (1u << (32 - prefix)) - 2;
    }
    return 0;
}

/* HOST:PORT (IPv4 or a name) to an address. */
static int resolve(const char *target, struct sockaddr_in *sa, char **why)
{
    const char *colon = strrchr(target, ':');
    char *end = NULL;
    gint64 port = colon ? g_ascii_strtoll(colon + 1, &end, 10) : 0;
    if (!colon || colon == target || !colon[1] || *end || port < 1 || port > 65535)
        return fail(why, CORE_EINVAL,
                    g_strdup_printf("the discovery address '%.80s' is not HOST:PORT", target));
    char *host = g_strndup(target, (gsize)(colon - target));
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_DGRAM}, *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc) {
        char *msg =
            g_strdup_printf("cannot resolve the discovery host %s: %s", host, gai_strerror(rc));
        g_free(host);
        return fail(why, CORE_EINVAL, msg);
    }
    g_free(host);
    memcpy(sa, res->ai_addr, sizeof *sa);
    sa->sin_port = htons((uint16_t)port);
    freeaddrinfo(res);
    return 0;
}

typedef struct {
    int fd;
    char *message_id;
    GPtrArray *devices;  /* vid_onvif_device*, in the order found */
    GHashTable *by_addr; /* address -> the device (borrowed) */
    char *buf;
} probe_run;

/* Reads every datagram waiting (or until deadline_us, when positive). */
static void receive(probe_run *r, gint64 deadline_us)
{
    for (;;) {
        int timeout = 0;
        if (deadline_us > 0) {
            gint64 left = deadline_us - g_get_monotonic_time();
            if (left <= 0)
                return;
            timeout = (int)((left + 999) / 1000);
        }
        struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
        int n = poll(&pfd, 1, timeout);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        ssize_t got = recv(r->fd, r->buf, DATAGRAM_MAX, MSG_DONTWAIT);
        if (got <= 0)
            continue;
        GPtrArray *found = g_ptr_array_new_with_free_func((GDestroyNotify)vid_onvif_device_free);
        char *why = NULL;
        if (vid_onvif_parse_probe_matches(r->buf, (size_t)got, r->message_id, found, &why))
            log_debug("onvif.probe", "ignored=\"%s\"", why);
        g_free(why);
        for (guint i = 0; i < found->len; i++) {
            vid_onvif_device *d = found->pdata[i];
            vid_onvif_device *known = g_hash_table_lookup(r->by_addr, d->address);
            if (known) {
                vid__onvif_merge(known, d);
            } else if (r->devices->len < VID_ONVIF_DEVICES_MAX) {
                found->pdata[i] = NULL;
                g_hash_table_insert(r->by_addr, d->address, d);
                g_ptr_array_add(r->devices, d);
            }
        }
        g_ptr_array_unref(found);
    }
}

static int send_probe(probe_run *r, const char *msg, const struct sockaddr_in *to)
{
    for (;;) {
        ssize_t n = sendto(r->fd, msg, strlen(msg), 0, (const struct sockaddr *)to, sizeof *to);
        if (n >= 0)
            return 0;
        if (errno != EINTR)
            return errno;
    }
}

static int open_socket(probe_run *r, char **why)
{
    r->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (r->fd < 0)
        return fail(why, CORE_EIO,
                    g_strdup_printf("cannot open a UDP socket: %s", g_strerror(errno)));
    int rcvbuf = RCVBUF_BYTES;
    unsigned char ttl = 1, loop = 1;
    setsockopt(r->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    setsockopt(r->fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl);
    setsockopt(r->fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop);
    struct sockaddr_in any = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY)};
    if (bind(r->fd, (struct sockaddr *)&any, sizeof any) != 0)
        return fail(why, CORE_EIO,
                    g_strdup_printf("cannot bind a UDP socket: %s", g_strerror(errno)));
    return 0;
}

/* Sends the Probes: to the discovery address, then to every host of the
 * network. Fails only when none could be sent. */
static int send_all(probe_run *r, const vid_onvif_probe *p, const char *msg, char **why)
{
    struct sockaddr_in to = {0};
    guint32 first = 0, count = 0;
    int rc = 0, sent = 0, err = 0;
    int have_target = p->discovery && *p->discovery, have_net = p->network && *p->network;
    if (!have_target && !have_net)
        return fail(why, CORE_EINVAL,
                    g_strdup("nothing to probe: no discovery address and no network"));
    if (have_target && (rc = resolve(p->discovery, &to, why)))
        return rc;
    if (have_net &&
        (rc = vid_onvif_cidr_hosts(p->network, VID_ONVIF_NETWORK_MIN_PREFIX, &first, &count, why)))
        return rc;
    if (have_target) {
        err = send_probe(r, msg, &to);
        sent += !err;
        if (err)
            log_warn("onvif.probe", "to=%s error=\"%s\"", p->discovery, g_strerror(err));
    }
    uint16_t port = have_target ? to.sin_port : htons(VID_ONVIF_PORT);
    for (guint32 i = 0; have_net && i < count; i++) {
        struct sockaddr_in host = {.sin_family = AF_INET, .sin_port = port};
        host.sin_addr.s_addr = htonl(first + i);
        int e = send_probe(r, msg, &host);
        sent += !e;
        err = e ? e : err;
        if ((i + 1) % SEND_BATCH == 0)
            receive(r, 0);
    }
    if (!sent)
        return fail(why, CORE_EIO, g_strdup_printf("no Probe could be sent: %s", g_strerror(err)));
    return 0;
}

int vid_onvif_discover(const vid_onvif_probe *p, GPtrArray **found, char **why)
{
    *found = NULL;
    int wait = p->wait_ms > 0 ? MIN(p->wait_ms, VID_ONVIF_WAIT_MAX_MS) : VID_ONVIF_WAIT_DEFAULT_MS;
    probe_run r = {.fd = -1};
    char *uuid = g_uuid_string_random();
    r.message_id = g_strconcat("urn:uuid:", uuid, NULL);
    g_free(uuid);
    r.devices = g_ptr_array_new_with_free_func((GDestroyNotify)vid_onvif_device_free);
    r.by_addr = g_hash_table_new(g_str_hash, g_str_equal);
    r.buf = g_malloc(DATAGRAM_MAX);
    char *msg = vid_onvif_probe_message(r.message_id);
    int rc = open_socket(&r, why);
    if (!rc)
        rc = send_all(&r, p, msg, why);
    if (!rc)
        receive(&r, g_get_monotonic_time() + (gint64)wait * 1000);
    if (r.fd >= 0)
        close(r.fd);
    g_free(msg);
    g_free(r.buf);
    g_free(r.message_id);
    g_hash_table_destroy(r.by_addr);
    if (rc)
        g_ptr_array_unref(r.devices);
    else
        *found = r.devices;
    return rc;
}
