/*
 * rtsp.c — an RTSP session with the video interleaved (rtsp.h).
 *
 * One buffer (r->buf, read position r->pos) serves the whole connection:
 * the replies of the setup, then the interleaved frames ('$', channel,
 * 16-bit length, packet) and any RTSP message the camera puts between them
 * (the replies to keep-alives, or its own requests, which are read past).
 * Each read asks for up to READ_CHUNK bytes, so a busy camera costs one
 * system call for many packets; the buffer never holds more than one frame
 * or one message beyond the chunk, both bounded (64 KiB). Once the video
 * flows over plain TCP, the socket is read and written directly, blocking
 * with the timeout set on it (one system call a read, where GIO's
 * cancellable streams poll first); cancelling shuts the socket down, which
 * ends a blocked read at once. Over TLS the GIO streams stay.
 *
 * The description is read with GStreamer's SDP parser; authentication is
 * Basic or Digest (RFC 2617, MD5, with or without qop=auth), answered again
 * on every request once the camera has asked for it.
 *
 * The owning thread only (rtsp.h).
 */
#include "rtsp.h"

#include <errno.h>
#include <fcntl.h>
#include <gst/sdp/sdp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define READ_CHUNK (64 * 1024)

typedef struct {
    char *name, *value;
} header;

typedef struct {
    int status;
    char *reason;
    GPtrArray *headers; /* header* */
    char *body;
} reply;

struct vid_rtsp {
    GSocketConnection *conn;
    GIOStream *io; /* conn, or TLS over it */
    GInputStream *in;
    GOutputStream *out;
    int tls;
    int fd; /* streaming over plain TCP: the socket, blocking; else -1 */

    char *url; /* without credentials */
    char *user, *password;
    int cseq;
    char *session;
    int session_timeout_s;
    int64_t keepalive_due_us;

    /* authentication, once asked for */
    int auth; /* 0 none, 1 Basic, 2 Digest */
    char *realm, *nonce, *opaque;
    int qop;
    unsigned nc;

    GByteArray *buf;
    size_t pos;
    size_t scanned; /* the header scan got this far (an index into buf) */

    int rtp_channel;
    char *play_url;
    vid_rtsp_media media;
    char *fmtp;
};

/* ---- reading ---- */

static char *fill_raw(vid_rtsp *r, guint had, GCancellable *cancel)
{
    ssize_t n;
    do
        n = recv(r->fd, r->buf->data + had, READ_CHUNK, 0);
    while (n < 0 && errno == EINTR);
    int err = errno;
    g_byte_array_set_size(r->buf, had + (guint)MAX(n, 0));
    if (n > 0)
        return NULL;
    if (g_cancellable_is_cancelled(cancel))
        return g_strdup("");
    if (n == 0)
        return g_strdup("ended");
    if (err == EAGAIN || err == EWOULDBLOCK)
        return g_strdup("stalled");
    return err == ECONNRESET || err == EPIPE ? g_strdup("ended")
                                             : g_strdup_printf("error: %s", g_strerror(err));
}

/* Reads what the camera has sent (at least one byte). NULL, or why ("" when
 * cancelled). */
static char *fill(vid_rtsp *r, GCancellable *cancel)
{
    if (r->pos && r->pos == r->buf->len) {
        g_byte_array_set_size(r->buf, 0);
        r->pos = r->scanned = 0;
    } else if (r->pos > READ_CHUNK) {
        memmove(r->buf->data, r->buf->data + r->pos, r->buf->len - r->pos);
        g_byte_array_set_size(r->buf, (guint)(r->buf->len - r->pos));
        r->scanned = r->scanned > r->pos ? r->scanned - r->pos : 0;
        r->pos = 0;
    }
    guint had = r->buf->len;
    g_byte_array_set_size(r->buf, had + READ_CHUNK);
    if (r->fd >= 0)
        return fill_raw(r, had, cancel);
    GError *e = NULL;
    gssize n = g_input_stream_read(r->in, r->buf->data + had, READ_CHUNK, cancel, &e);
    g_byte_array_set_size(r->buf, had + (guint)MAX(n, 0));
    if (n > 0)
        return NULL;
    if (n == 0)
        return g_strdup("ended");
    char *why = g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED)   ? g_strdup("")
                : g_error_matches(e, G_IO_ERROR, G_IO_ERROR_TIMED_OUT) ? g_strdup("stalled")
                : g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED) ||
                        g_error_matches(e, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE)
                    ? g_strdup("ended")
                    : g_strdup_printf("error: %s", e->message);
    g_error_free(e);
    return why;
}

static void reply_free(reply *m)
{
    if (!m)
        return;
    g_free(m->reason);
    g_ptr_array_unref(m->headers);
    g_free(m->body);
    g_free(m);
}

static void header_free(gpointer p)
{
    header *h = p;
    g_free(h->name);
    g_free(h->value);
    g_free(h);
}

static const char *reply_header(const reply *m, const char *name)
{
    for (guint i = 0; i < m->headers->len; i++) {
        header *h = m->headers->pdata[i];
        if (!g_ascii_strcasecmp(h->name, name))
            return h->value;
    }
    return NULL;
}

/* The end of the message header starting at r->pos (its length), or 0
 * when it is not all here yet. A header that arrives a byte at a time is
 * scanned once, not once per byte: the scan goes on from where it stopped. */
static size_t header_end(vid_rtsp *r)
{
    const char *s = (const char *)r->buf->data;
    size_t from = MAX(r->pos, r->scanned >= 3 ? r->scanned - 3 : 0);
    for (size_t i = from; i + 3 < r->buf->len; i++)
        if (s[i] == '\r' && s[i + 1] == '\n' && s[i + 2] == '\r' && s[i + 3] == '\n')
            return i + 4 - r->pos;
    r->scanned = r->buf->len;
    return 0;
}

/* Whether the bytes at p can start an RTSP message: "RTSP/" (a reply) or
 * a method in capitals and a space (a request). 1, 0, or -1 when too few
 * bytes are here to tell. */
static int message_start(const uint8_t *p, size_t n)
{
    if (n >= 5 && !memcmp(p, "RTSP/", 5))
        return 1;
    for (size_t i = 0; i < n && i < 16; i++) {
        if (p[i] == ' ')
            return i >= 3;
        if (!g_ascii_isupper(p[i]) && p[i] != '_')
            return 0;
    }
    return n < 16 ? -1 : 0;
}

/* Parses one whole message at r->pos (header_end says it is here); the
 * body is read after it. NULL with *why. */
static reply *parse_message(vid_rtsp *r, size_t head, GCancellable *cancel, char **why)
{
    char *text = g_strndup((const char *)r->buf->data + r->pos, head);
    char **lines = g_strsplit(text, "\r\n", 0);
    g_free(text);
    reply *m = g_new0(reply, 1);
    m->headers = g_ptr_array_new_with_free_func(header_free);
    if (g_str_has_prefix(lines[0], "RTSP/")) {
        char *sp = strchr(lines[0], ' ');
        m->status = sp ? atoi(sp + 1) : 0;
        char *sp2 = sp ? strchr(sp + 1, ' ') : NULL;
        m->reason = g_strdup(sp2 ? sp2 + 1 : "");
    }
    for (char **l = lines + 1; *l && **l; l++) {
        char *colon = strchr(*l, ':');
        if (!colon)
            continue;
        header *h = g_new(header, 1);
        h->name = g_strstrip(g_strndup(*l, (gsize)(colon - *l)));
        h->value = g_strstrip(g_strdup(colon + 1));
        g_ptr_array_add(m->headers, h);
    }
    g_strfreev(lines);
    r->pos += head;
    const char *cl = reply_header(m, "Content-Length");
    long len = cl ? strtol(cl, NULL, 10) : 0;
    if (len < 0 || len > VID_RTSP_MAX_MESSAGE) {
        *why = g_strdup("error: the camera sent an oversized message");
        reply_free(m);
        return NULL;
    }
    while (r->buf->len - r->pos < (size_t)len)
        if ((*why = fill(r, cancel))) {
            reply_free(m);
            return NULL;
        }
    m->body = g_strndup((const char *)r->buf->data + r->pos, (gsize)len);
    r->pos += (size_t)len;
    return m;
}

/* The next message that is not interleaved data (which is skipped: none
 * is expected before PLAY's reply). */
static reply *read_message(vid_rtsp *r, GCancellable *cancel, char **why)
{
    for (;;) {
        size_t avail = r->buf->len - r->pos;
        const uint8_t *p = r->buf->data + r->pos;
        if (avail >= 4 && p[0] == '$') {
            size_t n = 4 + ((size_t)p[2] << 8 | p[3]);
            if (avail >= n) {
                r->pos += n;
                continue;
            }
        } else if (avail) {
            size_t head = header_end(r);
            if (head)
                return parse_message(r, head, cancel, why);
            if (avail > VID_RTSP_MAX_MESSAGE) {
                *why = g_strdup("error: the camera sent an oversized message");
                return NULL;
            }
        }
        if ((*why = fill(r, cancel)))
            return NULL;
    }
}

/* ---- writing ---- */

static char *md5_hex(const char *s)
{
    return g_compute_checksum_for_string(G_CHECKSUM_MD5, s, -1);
}

static char *authorization(vid_rtsp *r, const char *method, const char *uri)
{
    if (r->auth == 1) {
        char *pair = g_strdup_printf("%s:%s", r->user, r->password);
        char *b64 = g_base64_encode((const guchar *)pair, strlen(pair));
        char *h = g_strdup_printf("Authorization: Basic %s\r\n", b64);
        g_free(pair);
        g_free(b64);
        return h;
    }
    char *a1 = g_strdup_printf("%s:%s:%s", r->user, r->realm, r->password);
    char *a2 = g_strdup_printf("%s:%s", method, uri);
    char *ha1 = md5_hex(a1), *ha2 = md5_hex(a2), *resp, *qop = NULL;
    if (r->qop) {
        char cnonce[17];
        g_snprintf(cnonce, sizeof cnonce, "%08x%08x", g_random_int(), g_random_int());
        char *all = g_strdup_printf("%s:%s:%08x:%s:auth:%s", ha1, r->nonce, ++r->nc, cnonce, ha2);
        resp = md5_hex(all);
        g_free(all);
        qop = g_strdup_printf(", qop=auth, nc=%08x, cnonce=\"%s\"", r->nc, cnonce);
    } else {
        char *all = g_strdup_printf("%s:%s:%s", ha1, r->nonce, ha2);
        resp = md5_hex(all);
        g_free(all);
    }
    char *op = r->opaque ? g_strdup_printf(", opaque=\"%s\"", r->opaque) : g_strdup("");
    char *h = g_strdup_printf("Authorization: Digest username=\"%s\", realm=\"%s\", "
                              "nonce=\"%s\", uri=\"%s\", response=\"%s\"%s%s\r\n",
                              r->user, r->realm, r->nonce, uri, resp, op, qop ? qop : "");
    g_free(a1), g_free(a2), g_free(ha1), g_free(ha2), g_free(resp), g_free(qop), g_free(op);
    return h;
}

static char *request_text(vid_rtsp *r, const char *method, const char *uri, const char *extra)
{
    char *auth = r->auth ? authorization(r, method, uri) : g_strdup("");
    char *session = r->session ? g_strdup_printf("Session: %s\r\n", r->session) : g_strdup("");
    char *text = g_strdup_printf("%s %s RTSP/1.0\r\nCSeq: %d\r\nUser-Agent: citycmd\r\n%s%s%s\r\n",
                                 method, uri, ++r->cseq, auth, session, extra ? extra : "");
    g_free(auth);
    g_free(session);
    return text;
}

static char *send_request(vid_rtsp *r, const char *method, const char *uri, const char *extra,
                          GCancellable *cancel)
{
    char *text = request_text(r, method, uri, extra);
    if (r->fd >= 0) {
        size_t len = strlen(text), done = 0;
        while (done < len) {
            ssize_t n = send(r->fd, text + done, len - done, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            done += (size_t)n;
        }
        g_free(text);
        return done == len ? NULL : g_strdup(g_cancellable_is_cancelled(cancel) ? "" : "ended");
    }
    GError *e = NULL;
    gboolean ok = g_output_stream_write_all(r->out, text, strlen(text), NULL, cancel, &e);
    g_free(text);
    if (ok)
        return NULL;
    char *why =
        g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED) ? g_strdup("") : g_strdup("ended");
    g_error_free(e);
    return why;
}

/* ---- authentication ---- */

/* The value of one parameter of a challenge (name=value or name="value"). */
static char *challenge_param(const char *c, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = c; (p = strstr(p, name)); p += n) {
        if (p > c && (g_ascii_isalnum(p[-1]) || p[-1] == '-'))
            continue;
        const char *v = p + n;
        while (*v == ' ')
            v++;
        if (*v++ != '=')
            continue;
        while (*v == ' ')
            v++;
        if (*v == '"') {
            const char *end = strchr(v + 1, '"');
            return end ? g_strndup(v + 1, (gsize)(end - v - 1)) : NULL;
        }
        return g_strndup(v, strcspn(v, ", "));
    }
    return NULL;
}

/* Takes the camera's challenge: Digest if it offers it, else Basic. 0, or
 * -1 when there is nothing to answer with. */
static int take_challenge(vid_rtsp *r, const reply *m)
{
    const char *basic = NULL, *digest = NULL;
    for (guint i = 0; i < m->headers->len; i++) {
        header *h = m->headers->pdata[i];
        if (g_ascii_strcasecmp(h->name, "WWW-Authenticate"))
            continue;
        if (!g_ascii_strncasecmp(h->value, "Digest", 6))
            digest = h->value;
        else if (!g_ascii_strncasecmp(h->value, "Basic", 5))
            basic = h->value;
    }
    if (!r->user || (!digest && !basic))
        return -1;
    if (!digest) {
        r->auth = 1;
        return 0;
    }
    g_free(r->realm), g_free(r->nonce), g_free(r->opaque);
    r->realm = challenge_param(digest + 6, "realm");
    r->nonce = challenge_param(digest + 6, "nonce");
    r->opaque = challenge_param(digest + 6, "opaque");
    char *qop = challenge_param(digest + 6, "qop");
    r->qop = qop && strstr(qop, "auth") != NULL;
    g_free(qop);
    r->nc = 0;
    r->auth = r->realm && r->nonce ? 2 : 0;
    return r->auth ? 0 : -1;
}

/* One request and its reply, answering a challenge once. NULL with *why. */
static reply *exchange(vid_rtsp *r, const char *method, const char *uri, const char *extra,
                       GCancellable *cancel, char **why)
{
    for (int attempt = 0;; attempt++) {
        if ((*why = send_request(r, method, uri, extra, cancel)))
            return NULL;
        reply *m = read_message(r, cancel, why);
        if (!m)
            return NULL;
        if (m->status == 401 && attempt == 0 && take_challenge(r, m) == 0) {
            reply_free(m);
            continue;
        }
        if (m->status == 401 || m->status == 403) {
            reply_free(m);
            *why = g_strdup("unauthorized");
            return NULL;
        }
        if (m->status != 200) {
            *why =
                g_strdup_printf("error: %s %d %s", method, m->status, m->reason ? m->reason : "");
            reply_free(m);
            return NULL;
        }
        return m;
    }
}

/* ---- the description ---- */

/* A control attribute against the base: absolute, "*" (the base), or
 * appended to the base as RTSP servers expect (not RFC 3986 resolution). */
static char *control_url(const char *base, const char *control)
{
    if (!control || !strcmp(control, "*"))
        return g_strdup(base);
    if (strstr(control, "://"))
        return g_strdup(control);
    return g_strdup_printf("%s%s%s", base, g_str_has_suffix(base, "/") ? "" : "/", control);
}

/* The first H.264/H.265 video: its codec, payload type, clock and fmtp. */
static int pick_video(vid_rtsp *r, const GstSDPMessage *sdp, const char *base)
{
    for (guint i = 0; i < gst_sdp_message_medias_len(sdp); i++) {
        const GstSDPMedia *md = gst_sdp_message_get_media(sdp, i);
        if (g_strcmp0(gst_sdp_media_get_media(md), "video") || !gst_sdp_media_formats_len(md))
            continue;
        int pt = atoi(gst_sdp_media_get_format(md, 0));
        for (guint a = 0; a < gst_sdp_media_attributes_len(md); a++) {
            const GstSDPAttribute *at = gst_sdp_media_get_attribute(md, a);
            if (g_strcmp0(at->key, "rtpmap") || !at->value || atoi(at->value) != pt)
                continue;
            const char *enc = strchr(at->value, ' ');
            enc = enc ? enc + 1 : "";
            vid_codec codec = !g_ascii_strncasecmp(enc, "H264/", 5)   ? VID_CODEC_H264
                              : !g_ascii_strncasecmp(enc, "H265/", 5) ? VID_CODEC_H265
                                                                      : 0;
            if (!codec)
                break;
            r->media.codec = codec;
            r->media.payload_type = pt;
            r->media.clock_rate = atoi(strchr(enc, '/') + 1);
            for (guint f = 0; f < gst_sdp_media_attributes_len(md); f++) {
                const GstSDPAttribute *fa = gst_sdp_media_get_attribute(md, f);
                if (!r->fmtp && !g_strcmp0(fa->key, "fmtp") && fa->value && atoi(fa->value) == pt &&
                    strchr(fa->value, ' '))
                    r->fmtp = g_strdup(strchr(fa->value, ' ') + 1);
            }
            r->media.fmtp = r->fmtp;
            r->play_url = control_url(base, gst_sdp_message_get_attribute_val(sdp, "control"));
            return (int)i;
        }
    }
    return -1;
}

static char *describe(vid_rtsp *r, char **setup_url, GCancellable *cancel)
{
    char *why = NULL;
    reply *m = exchange(r, "DESCRIBE", r->url, "Accept: application/sdp\r\n", cancel, &why);
    if (!m)
        return why;
    const char *base = reply_header(m, "Content-Base");
    if (!base)
        base = reply_header(m, "Content-Location");
    GstSDPMessage *sdp = NULL;
    if (gst_sdp_message_new_from_text(m->body, &sdp) != GST_SDP_OK) {
        reply_free(m);
        return g_strdup("error: the camera's description does not parse");
    }
    char *b = g_strdup(base ? base : r->url);
    int i = pick_video(r, sdp, b);
    if (i < 0)
        why = g_strdup("no_video");
    else
        *setup_url = control_url(b, gst_sdp_media_get_attribute_val(
                                        gst_sdp_message_get_media(sdp, (guint)i), "control"));
    g_free(b);
    gst_sdp_message_free(sdp);
    reply_free(m);
    return why;
}

static char *setup(vid_rtsp *r, const char *setup_url, GCancellable *cancel)
{
    char *why = NULL;
    reply *m = exchange(r, "SETUP", setup_url, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n",
                        cancel, &why);
    if (!m)
        return why;
    const char *s = reply_header(m, "Session"), *t = reply_header(m, "Transport");
    if (!s) {
        reply_free(m);
        return g_strdup("error: SETUP without a session");
    }
    r->session = g_strndup(s, strcspn(s, ";"));
    const char *to = strstr(s, "timeout=");
    r->session_timeout_s = to ? atoi(to + 8) : 60;
    if (r->session_timeout_s <= 0)
        r->session_timeout_s = 60;
    const char *il = t ? strstr(t, "interleaved=") : NULL;
    r->rtp_channel = il ? atoi(il + 12) : 0;
    if (t && !strstr(t, "TCP")) {
        reply_free(m);
        return g_strdup("error: the camera will not send over TCP");
    }
    reply_free(m);
    return NULL;
}

/* ---- the session ---- */

static char *connect_to(vid_rtsp *r, GUri *uri, GCancellable *cancel)
{
    int port = g_uri_get_port(uri) > 0 ? g_uri_get_port(uri) : r->tls ? 322 : 554;
    GSocketClient *client = g_socket_client_new();
    g_socket_client_set_timeout(client, VID_RTSP_TIMEOUT_S);
    g_socket_client_set_tls(client, r->tls);
    GSocketConnectable *addr = g_network_address_new(g_uri_get_host(uri), (guint16)port);
    GError *e = NULL;
    r->conn = g_socket_client_connect(client, addr, cancel, &e);
    g_object_unref(addr);
    g_object_unref(client);
    if (!r->conn) {
        char *why = g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED) ? g_strdup("")
                    : r->tls && e->domain == G_TLS_ERROR ? g_strdup_printf("error: %s", e->message)
                                                         : g_strdup("unreachable");
        g_error_free(e);
        return why;
    }
    g_socket_set_keepalive(g_socket_connection_get_socket(r->conn), TRUE);
    r->io = G_IO_STREAM(r->conn);
    r->in = g_io_stream_get_input_stream(r->io);
    r->out = g_io_stream_get_output_stream(r->io);
    return NULL;
}

/* From here on the socket itself: blocking, with the timeout on it. */
static void go_raw(vid_rtsp *r)
{
    int fd = g_socket_get_fd(g_socket_connection_get_socket(r->conn));
    int flags = fcntl(fd, F_GETFL);
    struct timeval tv = {VID_RTSP_TIMEOUT_S, 0};
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0)
        return; /* the streams go on working */
    r->fd = fd;
}

static char *start(vid_rtsp *r, const char *url, const char *user, const char *password,
                   GCancellable *cancel)
{
    GError *e = NULL;
    GUri *uri = g_uri_parse(url, G_URI_FLAGS_HAS_PASSWORD | G_URI_FLAGS_ENCODED, &e);
    if (!uri) {
        g_error_free(e); /* it may quote the URL, password and all */
        return g_strdup("error: the camera's URL does not parse");
    }
    r->tls = !g_ascii_strcasecmp(g_uri_get_scheme(uri), "rtsps");
    if (user) {
        r->user = g_strdup(user);
        r->password = g_strdup(password ? password : "");
    } else if (g_uri_get_user(uri)) {
        r->user = g_uri_unescape_string(g_uri_get_user(uri), NULL);
        r->password = g_uri_get_password(uri) ? g_uri_unescape_string(g_uri_get_password(uri), NULL)
                                              : g_strdup("");
    }
    r->url = g_uri_to_string_partial(uri, G_URI_HIDE_USERINFO);
    char *why = connect_to(r, uri, cancel);
    g_uri_unref(uri);
    char *setup_url = NULL;
    if (!why)
        why = describe(r, &setup_url, cancel);
    if (!why)
        why = setup(r, setup_url, cancel);
    g_free(setup_url);
    if (!why) {
        reply *m = exchange(r, "PLAY", r->play_url, "Range: npt=0.000-\r\n", cancel, &why);
        reply_free(m);
    }
    r->keepalive_due_us = g_get_monotonic_time() + (int64_t)r->session_timeout_s * 500000;
    if (!why && !r->tls)
        go_raw(r);
    return why;
}

vid_rtsp *vid_rtsp_open(const char *url, const char *user, const char *password,
                        GCancellable *cancel, char **why)
{
    vid_rtsp *r = g_new0(vid_rtsp, 1);
    r->buf = g_byte_array_sized_new(2 * READ_CHUNK);
    r->rtp_channel = -1;
    r->fd = -1;
    *why = start(r, url, user, password, cancel);
    if (!*why)
        return r;
    if (!**why)
        g_clear_pointer(why, g_free); /* cancelled */
    vid_rtsp_close(r);
    return NULL;
}

const vid_rtsp_media *vid_rtsp_media_get(const vid_rtsp *r)
{
    return &r->media;
}

/* Keeps the session alive: the camera's reply is read past with the data. */
static char *keepalive(vid_rtsp *r, GCancellable *cancel)
{
    int64_t now = g_get_monotonic_time();
    if (now < r->keepalive_due_us)
        return NULL;
    r->keepalive_due_us = now + (int64_t)r->session_timeout_s * 500000;
    return send_request(r, "OPTIONS", r->url, NULL, cancel);
}

static void shut(GCancellable *cancel, gpointer user)
{
    (void)cancel;
    shutdown(((vid_rtsp *)user)->fd, SHUT_RDWR);
}

char *vid_rtsp_read(vid_rtsp *r, vid_rtsp_packet_fn fn, void *user, GCancellable *cancel)
{
    char *why = NULL;
    gulong cancelled = r->fd >= 0 ? g_cancellable_connect(cancel, G_CALLBACK(shut), r, NULL) : 0;
    for (;;) {
        const uint8_t *p = r->buf->data + r->pos;
        size_t avail = r->buf->len - r->pos;
        if (avail >= 4 && p[0] == '$') {
            size_t n = (size_t)p[2] << 8 | p[3];
            if (avail >= 4 + n) {
                if (p[1] == r->rtp_channel)
                    fn(p + 4, n, user);
                r->pos += 4 + n;
                continue;
            }
        } else if (avail && p[0] != '$') {
            int start = message_start(p, avail);
            if (start == 0) {
                /* Neither a frame nor a message (a stray line end, a body
                 * longer than its Content-Length said): on to the next '$'. */
                const uint8_t *next = memchr(p + 1, '$', avail - 1);
                r->pos = next ? (size_t)(next - r->buf->data) : r->buf->len;
                continue;
            }
            size_t head = start > 0 ? header_end(r) : 0;
            if (head) {
                reply_free(parse_message(r, head, cancel, &why));
                if (why)
                    break;
                continue;
            }
            if (avail > VID_RTSP_MAX_MESSAGE) {
                why = g_strdup("error: the camera sent an oversized message");
                break;
            }
        }
        if ((why = keepalive(r, cancel)) || (why = fill(r, cancel)))
            break;
    }
    g_cancellable_disconnect(cancel, cancelled);
    if (!*why)
        g_clear_pointer(&why, g_free);
    return why;
}

void vid_rtsp_close(vid_rtsp *r)
{
    if (!r)
        return;
    if (r->session && r->conn && !r->tls) {
        /* Said without waiting: the camera may free the session at once. */
        char *text = request_text(r, "TEARDOWN", r->play_url ? r->play_url : r->url, NULL);
        send(g_socket_get_fd(g_socket_connection_get_socket(r->conn)), text, strlen(text),
             MSG_DONTWAIT | MSG_NOSIGNAL);
        g_free(text);
    }
    if (r->conn) {
        g_io_stream_close(G_IO_STREAM(r->conn), NULL, NULL);
        g_object_unref(r->conn);
    }
    g_byte_array_unref(r->buf);
    g_free(r->url), g_free(r->user), g_free(r->password), g_free(r->session);
    g_free(r->realm), g_free(r->nonce), g_free(r->opaque);
    g_free(r->play_url), g_free(r->fmtp);
    g_free(r);
}
