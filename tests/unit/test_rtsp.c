/* Unit tests: the RTSP client session (video/rtsp.h) against a scripted
 * camera on a loopback port (a mock: a peer that answers each request with
 * the next reply of its script, so that what real cameras do now and then
 * can be made to happen every time; tools/camera-sim is the real server the
 * ingest tests use).
 *
 * - Basic, then Digest authentication, answered as RFC 2617 computes it.
 * - The setup URL from Content-Base and the media's control; the channel the
 *   camera chose; the session on PLAY and later requests.
 * - While streaming: RTCP frames, an RTSP reply and stray bytes between the
 *   RTP frames are read past; every RTP packet arrives whole; the camera closing is
 *   "ended"; the session is kept alive within its timeout (gst-rtsp-server
 *   never expires a session whose TCP connection is open, cameras do).
 * - Failures named: no video in the description, a status, an oversized
 *   reply, no connection; a cancel ends a session waiting for a reply at
 *   once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../video/rtsp.h"

#include <arpa/inet.h>
#include <glib.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    int lfd, port;
    const char *const *replies; /* NULL-ended; "%d" is the port */
    GByteArray *tail;           /* written after the last reply */
    int hold;                   /* keep the connection open after the tail */
    int stream_ms;              /* then send an RTP frame every 100 ms for this long */
    GString *after;             /* what the client sent after the script */
    GPtrArray *requests;        /* char*, as received */
    GThread *thread;
} peer;

static char *read_request(int fd)
{
    GString *r = g_string_new(NULL);
    char c;
    while (!strstr(r->str, "\r\n\r\n")) {
        if (read(fd, &c, 1) != 1) {
            g_string_free(r, TRUE);
            return NULL;
        }
        g_string_append_c(r, c);
    }
    return g_string_free(r, FALSE);
}

static void write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w <= 0)
            return;
        c += w, n -= (size_t)w;
    }
}

static gpointer serve(gpointer p)
{
    peer *pe = p;
    int fd = accept(pe->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    for (const char *const *r = pe->replies; *r; r++) {
        char *req = read_request(fd);
        if (!req)
            break;
        g_ptr_array_add(pe->requests, req);
        GString *reply = g_string_new(*r);
        char port[16];
        g_snprintf(port, sizeof port, "%d", pe->port);
        g_string_replace(reply, "%d", port, 0);
        write_all(fd, reply->str, reply->len);
        g_string_free(reply, TRUE);
    }
    if (pe->tail)
        write_all(fd, pe->tail->data, pe->tail->len);
    for (int t = 0; t < pe->stream_ms; t += 100) {
        const uint8_t rtp[] = {'$', 0, 0, 12, 0x80, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1};
        write_all(fd, rtp, sizeof rtp);
        g_usleep(100 * 1000);
        char buf[512];
        ssize_t n;
        while ((n = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
            g_string_append_len(pe->after, buf, n);
    }
    if (pe->hold) {
        char buf[512];
        while (read(fd, buf, sizeof buf) > 0) /* until the client closes */
            ;
    }
    close(fd);
    return NULL;
}

static peer *peer_start(const char *const *replies, GByteArray *tail, int hold)
{
    peer *pe = g_new0(peer, 1);
    pe->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(pe->lfd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(pe->lfd, (struct sockaddr *)&a, &len);
    pe->port = ntohs(a.sin_port);
    assert_int_equal(listen(pe->lfd, 1), 0);
    pe->replies = replies;
    pe->tail = tail;
    pe->hold = hold;
    pe->requests = g_ptr_array_new_with_free_func(g_free);
    pe->after = g_string_new(NULL);
    pe->thread = g_thread_new("peer", serve, pe);
    return pe;
}

/* Waits for the peer to finish its script (the requests may then be read). */
static void peer_wait(peer *pe)
{
    if (pe->thread)
        g_thread_join(pe->thread);
    pe->thread = NULL;
}

static void peer_free(peer *pe)
{
    peer_wait(pe);
    close(pe->lfd);
    g_ptr_array_unref(pe->requests);
    g_string_free(pe->after, TRUE);
    if (pe->tail)
        g_byte_array_unref(pe->tail);
    g_free(pe);
}

static char *url_of(const peer *pe, const char *path)
{
    return g_strdup_printf("rtsp://127.0.0.1:%d%s", pe->port, path);
}

#define SDP_H264                                                                                   \
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=cam\r\nt=0 0\r\na=control:*\r\n"                         \
    "m=audio 0 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=control:trackID=0\r\n"                       \
    "m=video 0 RTP/AVP 97\r\na=rtpmap:97 H264/90000\r\n"                                           \
    "a=fmtp:97 packetization-mode=1;sprop-parameter-sets=Z2QAH6w=,aO48gA==\r\n"                    \
    "a=control:trackID=1\r\n"

static const char *reply_sdp(void)
{
    static char buf[1024];
    g_snprintf(buf, sizeof buf,
               "RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Base: rtsp://127.0.0.1:%%d/live/\r\n"
               "Content-Type: application/sdp\r\nContent-Length: %zu\r\n\r\n%s",
               strlen(SDP_H264), SDP_H264);
    return buf;
}

/* A camera that asks for Basic, describes an audio track and an H.264 one
 * under a Content-Base, and sends the video on channels 2-3. */
static const char *const *basic_script(void)
{
    static const char *replies[5];
    replies[0] =
        "RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\nWWW-Authenticate: Basic realm=\"cam\"\r\n\r\n";
    replies[1] = reply_sdp();
    replies[2] = "RTSP/1.0 200 OK\r\nCSeq: 3\r\nSession: 5ab3;timeout=30\r\n"
                 "Transport: RTP/AVP/TCP;unicast;interleaved=2-3\r\n\r\n";
    replies[3] = "RTSP/1.0 200 OK\r\nCSeq: 4\r\nSession: 5ab3\r\n\r\n";
    return replies;
}

static void on_packet(const uint8_t *pkt, size_t len, void *user)
{
    g_ptr_array_add(user, g_bytes_new(pkt, len));
}

static void frame(GByteArray *a, int channel, const char *payload, size_t n)
{
    uint8_t h[4] = {'$', (uint8_t)channel, (uint8_t)(n >> 8), (uint8_t)n};
    g_byte_array_append(a, h, 4);
    g_byte_array_append(a, (const uint8_t *)payload, (guint)n);
}

static const char *header_of(const char *req, const char *name)
{
    const char *h = strstr(req, name);
    return h ? h + strlen(name) : "";
}

/* Basic: asked for, answered; the description, setup and play as a camera
 * with a Content-Base, an audio track first and channels 2-3 has them. */
static void test_session_basic(void **state)
{
    (void)state;
    GByteArray *tail = g_byte_array_new();
    frame(tail, 3, "rtcp-sr", 7); /* RTCP: not ours */
    frame(tail, 2, "\x80\x61packet-one", 12);
    const char *keepalive = "RTSP/1.0 200 OK\r\nCSeq: 9\r\nContent-Length: 5\r\n\r\nhello";
    g_byte_array_append(tail, (const uint8_t *)keepalive, (guint)strlen(keepalive));
    g_byte_array_append(tail, (const uint8_t *)"\r\n\x01\x02", 4); /* stray bytes: skipped */
    frame(tail, 2, "\x80\x61packet-two", 12);
    char big[3000];
    memset(big, 'x', sizeof big);
    big[0] = (char)0x80;
    frame(tail, 2, big, sizeof big);
    peer *pe = peer_start(basic_script(), tail, 0);
    char *u = url_of(pe, "/live"), *why = NULL;
    vid_rtsp *r = vid_rtsp_open(u, "user", "pw", NULL, &why);
    if (!r)
        fail_msg("open: %s", why);
    const vid_rtsp_media *m = vid_rtsp_media_get(r);
    assert_int_equal(m->codec, VID_CODEC_H264);
    assert_int_equal(m->payload_type, 97);
    assert_int_equal(m->clock_rate, 90000);
    assert_string_equal(m->fmtp, "packetization-mode=1;sprop-parameter-sets=Z2QAH6w=,aO48gA==");
    GPtrArray *pkts = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    GCancellable *c = g_cancellable_new();
    why = vid_rtsp_read(r, on_packet, pkts, c);
    assert_string_equal(why, "ended");
    g_free(why);
    assert_int_equal(pkts->len, 3);
    gsize n;
    assert_memory_equal(g_bytes_get_data(pkts->pdata[0], &n), "\x80\x61packet-one", 12);
    assert_int_equal(n, 12);
    assert_memory_equal(g_bytes_get_data(pkts->pdata[1], &n), "\x80\x61packet-two", 12);
    assert_int_equal(g_bytes_get_size(pkts->pdata[2]), sizeof big);
    vid_rtsp_close(r);
    peer_free(pe);
    g_ptr_array_unref(pkts);
    g_object_unref(c);
    g_free(u);
}

/* The requests the camera got, in order (checked apart so a failure says
 * which). */
static void test_session_requests(void **state)
{
    (void)state;
    peer *pe = peer_start(basic_script(), NULL, 1);
    char *u = g_strdup_printf("rtsp://user:pw@127.0.0.1:%d/live", pe->port), *why = NULL;
    vid_rtsp *r = vid_rtsp_open(u, NULL, NULL, NULL, &why);
    if (!r)
        fail_msg("open: %s", why);
    vid_rtsp_close(r); /* says TEARDOWN */
    peer_wait(pe);
    assert_int_equal(pe->requests->len, 4);
    const char *describe = pe->requests->pdata[0], *again = pe->requests->pdata[1];
    const char *setup = pe->requests->pdata[2], *play = pe->requests->pdata[3];
    char *line = g_strdup_printf("DESCRIBE rtsp://127.0.0.1:%d/live RTSP/1.0\r\n", pe->port);
    assert_true(g_str_has_prefix(describe, line)); /* no credentials in the URL sent */
    assert_null(strstr(describe, "Authorization"));
    assert_true(g_str_has_prefix(again, line));
    assert_true(g_str_has_prefix(header_of(again, "Authorization: "), "Basic dXNlcjpwdw==\r\n"));
    g_free(line);
    line = g_strdup_printf("SETUP rtsp://127.0.0.1:%d/live/trackID=1 RTSP/1.0\r\n", pe->port);
    assert_true(g_str_has_prefix(setup, line));
    assert_true(g_str_has_prefix(header_of(setup, "Transport: "), "RTP/AVP/TCP;unicast;"));
    g_free(line);
    line = g_strdup_printf("PLAY rtsp://127.0.0.1:%d/live/ RTSP/1.0\r\n", pe->port);
    assert_true(g_str_has_prefix(play, line));
    assert_true(g_str_has_prefix(header_of(play, "Session: "), "5ab3\r\n"));
    assert_true(g_str_has_prefix(header_of(play, "Authorization: "), "Basic "));
    g_free(line);
    g_free(u);
    peer_free(pe);
}

static void count_packet(const uint8_t *pkt, size_t len, void *user)
{
    (void)pkt, (void)len;
    ++*(int *)user;
}

/* A session that times out after 2 s gets an OPTIONS with its id about
 * every second while the video flows. */
static void test_keepalive(void **state)
{
    (void)state;
    const char *replies[] = {
        reply_sdp(),
        "RTSP/1.0 200 OK\r\nCSeq: 2\r\nSession: k33p;timeout=2\r\n"
        "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n",
        "RTSP/1.0 200 OK\r\nCSeq: 3\r\nSession: k33p\r\n\r\n",
        NULL,
    };
    peer *pe = peer_start(replies, NULL, 0);
    pe->stream_ms = 3500;
    char *u = url_of(pe, "/k"), *why = NULL;
    vid_rtsp *r = vid_rtsp_open(u, NULL, NULL, NULL, &why);
    if (!r)
        fail_msg("open: %s", why);
    int packets = 0;
    GCancellable *c = g_cancellable_new();
    why = vid_rtsp_read(r, count_packet, &packets, c);
    assert_string_equal(why, "ended");
    g_free(why);
    vid_rtsp_close(r);
    peer_wait(pe);
    assert_int_equal(packets, 35);
    int options = 0;
    for (const char *p = pe->after->str; (p = strstr(p, "OPTIONS ")); p++) {
        options++;
        const char *end = strstr(p, "\r\n\r\n");
        const char *sess = strstr(p, "Session: k33p\r\n");
        assert_true(end && sess && sess < end);
    }
    print_message("%d keep-alives in 3.5 s\n", options);
    assert_true(options >= 3 && options <= 4);
    g_object_unref(c);
    g_free(u);
    peer_free(pe);
}

static char *md5(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    char *h = g_compute_checksum_for_string(G_CHECKSUM_MD5, s, -1);
    g_free(s);
    return h;
}

/* Digest without qop, and with qop=auth: the response is RFC 2617's. */
static void test_digest(void **state)
{
    (void)state;
    for (int qop = 0; qop < 2; qop++) {
        const char *replies[] = {
            qop ? "RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\nWWW-Authenticate: Basic realm=\"b\"\r\n"
                  "WWW-Authenticate: Digest realm=\"IP Camera\", nonce=\"c0ffee\", qop=\"auth\", "
                  "opaque=\"op1\"\r\n\r\n"
                : "RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\nWWW-Authenticate: Digest "
                  "realm=\"IP Camera\",nonce=\"c0ffee\"\r\n\r\n",
            "RTSP/1.0 404 Not Found\r\nCSeq: 2\r\n\r\n",
            NULL,
        };
        peer *pe = peer_start(replies, NULL, 0);
        char *u = url_of(pe, "/s"), *why = NULL;
        assert_null(vid_rtsp_open(u, "admin", "se cret", NULL, &why));
        assert_string_equal(why, "error: DESCRIBE 404 Not Found");
        g_free(why);
        peer_wait(pe);
        const char *auth = header_of(pe->requests->pdata[1], "Authorization: Digest ");
        assert_true(*auth);
        char *ha1 = md5("admin:IP Camera:se cret"), *ha2 = md5("DESCRIBE:%s", u), *want;
        if (qop) {
            char *nc = g_strndup(header_of(auth, "nc="), 8);
            const char *cn = header_of(auth, "cnonce=\"");
            char *cnonce = g_strndup(cn, strcspn(cn, "\""));
            assert_string_equal(nc, "00000001");
            want = md5("%s:c0ffee:%s:%s:auth:%s", ha1, nc, cnonce, ha2);
            assert_non_null(strstr(auth, "opaque=\"op1\""));
            g_free(nc), g_free(cnonce);
        } else {
            want = md5("%s:c0ffee:%s", ha1, ha2);
        }
        char *resp = g_strdup_printf("response=\"%s\"", want);
        assert_non_null(strstr(auth, resp));
        assert_non_null(strstr(auth, "username=\"admin\""));
        g_free(resp), g_free(want), g_free(ha1), g_free(ha2), g_free(u);
        peer_free(pe);
    }
}

/* Failures, each named. */
static void test_failures(void **state)
{
    (void)state;
    const char *sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=a\r\nt=0 0\r\nm=audio 0 RTP/AVP "
                      "0\r\na=rtpmap:0 PCMU/8000\r\n";
    char *audio_only = g_strdup_printf(
        "RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Length: %zu\r\n\r\n%s", strlen(sdp), sdp);
    const char *one[] = {audio_only, NULL};
    peer *pe = peer_start(one, NULL, 0);
    char *u = url_of(pe, "/a"), *why = NULL;
    assert_null(vid_rtsp_open(u, NULL, NULL, NULL, &why));
    assert_string_equal(why, "no_video");
    g_free(why), g_free(u), g_free(audio_only);
    peer_free(pe);

    const char *refused[] = {"RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\n\r\n", NULL};
    pe = peer_start(refused, NULL, 0);
    u = url_of(pe, "/a");
    assert_null(vid_rtsp_open(u, "u", "p", NULL, &why));
    assert_string_equal(why, "unauthorized");
    g_free(why), g_free(u);
    peer_free(pe);

    /* A reply header that never ends. */
    GByteArray *flood = g_byte_array_new();
    const char *start = "RTSP/1.0 200 OK\r\nX-Pad: ";
    g_byte_array_append(flood, (const uint8_t *)start, (guint)strlen(start));
    for (int i = 0; i < VID_RTSP_MAX_MESSAGE + 100; i++)
        g_byte_array_append(flood, (const uint8_t *)"y", 1);
    const char *none[] = {NULL};
    pe = peer_start(none, flood, 1);
    u = url_of(pe, "/a");
    assert_null(vid_rtsp_open(u, NULL, NULL, NULL, &why));
    assert_string_equal(why, "error: the camera sent an oversized message");
    g_free(why), g_free(u);
    peer_free(pe);

    /* Nobody listening: a port bound for a moment, then let go. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    getsockname(fd, (struct sockaddr *)&a, &len);
    int port = ntohs(a.sin_port);
    close(fd);
    u = g_strdup_printf("rtsp://127.0.0.1:%d/a", port);
    assert_null(vid_rtsp_open(u, NULL, NULL, NULL, &why));
    assert_string_equal(why, "unreachable");
    g_free(why), g_free(u);

    assert_null(vid_rtsp_open("rtsp://[bad", NULL, NULL, NULL, &why));
    assert_string_equal(why, "error: the camera's URL does not parse");
    g_free(why);
}

static gboolean cancel_later(gpointer c)
{
    g_cancellable_cancel(c);
    return G_SOURCE_REMOVE;
}

static gpointer cancel_thread(gpointer c)
{
    g_usleep(200 * 1000);
    cancel_later(c);
    return NULL;
}

/* A camera that answers nothing: a cancel ends the wait at once, and a
 * cancelled session has no reason to give. */
static void test_cancel(void **state)
{
    (void)state;
    GByteArray *nothing = g_byte_array_new();
    const char *none[] = {NULL};
    peer *pe = peer_start(none, nothing, 1);
    char *u = url_of(pe, "/a"), *why = g_strdup("unset");
    GCancellable *c = g_cancellable_new();
    GThread *t = g_thread_new("cancel", cancel_thread, c);
    int64_t t0 = g_get_monotonic_time();
    g_free(why);
    assert_null(vid_rtsp_open(u, NULL, NULL, c, &why));
    int64_t took = g_get_monotonic_time() - t0;
    assert_null(why);
    assert_true(took < 1500 * 1000); /* not the 5 s timeout */
    g_thread_join(t);
    peer_free(pe);
    g_object_unref(c);
    g_free(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session_basic), cmocka_unit_test(test_session_requests),
        cmocka_unit_test(test_digest),        cmocka_unit_test(test_failures),
        cmocka_unit_test(test_cancel),        cmocka_unit_test(test_keepalive),
    };
    return cmocka_run_group_tests_name("rtsp", tests, NULL, NULL);
}
