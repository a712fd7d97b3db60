/*
 * onvif.c — the ONVIF device over HTTP (onvif.h): describe a camera, move
 * it. Blocking, on a worker; any thread.
 *
 * Each SOAP call is one libcurl POST with a total timeout, no redirects,
 * http and https only, no signals, and a reply cut off (CORE_ETOOBIG) at
 * VID_ONVIF_REPLY_MAX; the reply is read by onvif_soap.c. A refusal of the
 * credentials that may be the camera's clock (a UsernameToken carries its
 * creation time, and cameras refuse one far from their own clock) is tried
 * once more with the camera's time (GetSystemDateAndTime needs no
 * credentials). The service addresses come from GetCapabilities, or
 * GetServices for a camera that only has the newer call. No state is kept
 * between calls: a PTZ command asks for the PTZ address each time, which is
 * one more round trip on a camera's LAN and never stale.
 */
#include "onvif_internal.h"

#include "../core/core.h"

#include <curl/curl.h>
#include <libxml/parser.h>
#include <math.h>
#include <string.h>

#define NS_DEVICE_ACTION "http://www.onvif.org/ver10/device/wsdl/"
#define NS_MEDIA_ACTION "http://www.onvif.org/ver10/media/wsdl/"
#define NS_PTZ_ACTION "http://www.onvif.org/ver20/ptz/wsdl/"
#define CLOCK_SKEW_S 5    /* a camera clock further off than this is worth a retry */
#define STREAM_URIS_MAX 8 /* profiles whose stream URI describe asks for */
#define PTZ_TIMEOUT_MAX_MS 3600000

static int fail(char **why, int rc, char *msg)
{
    if (why)
        *why = msg;
    else
        g_free(msg);
    return rc;
}

static gpointer init_once(gpointer unused)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    xmlInitParser();
    return NULL;
}

static void init(void)
{
    static GOnce once = G_ONCE_INIT;
    g_once(&once, init_once, NULL);
}

/* ---- one SOAP call ---- */

typedef struct {
    const vid_onvif_auth *auth;
    const char *device_url;
    gint64 offset_s;   /* the camera's clock minus ours */
    int clock_checked; /* asked for the camera's time already */
    int digest;        /* the camera asked for HTTP Digest */
} conn;

typedef struct {
    GByteArray *buf;
    int toobig;
} sink;

static size_t on_data(char *data, size_t size, size_t n, void *arg)
{
    sink *s = arg;
    if (s->buf->len + size * n > VID_ONVIF_REPLY_MAX) {
        s->toobig = 1;
        return 0;
    }
    g_byte_array_append(s->buf, (const guint8 *)data, (guint)(size * n));
    return size * n;
}

static int timeout_ms(const vid_onvif_auth *auth)
{
    return auth && auth->timeout_ms > 0 ? auth->timeout_ms : VID_ONVIF_TIMEOUT_MS;
}

/* Why a transfer failed, as a sentence (g_free). */
static char *transfer_error(CURLcode cc, const char *errbuf, int ms)
{
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT:
        return g_strdup_printf("the camera did not answer within %d ms", ms);
    case CURLE_COULDNT_CONNECT:
        return g_strdup_printf("cannot connect to the camera: %s",
                               *errbuf ? errbuf : curl_easy_strerror(cc));
    case CURLE_COULDNT_RESOLVE_HOST:
        return g_strdup("cannot resolve the camera's host name");
    default:
        return g_strdup_printf("the camera could not be reached: %s",
                               *errbuf ? errbuf : curl_easy_strerror(cc));
    }
}

/* POSTs envelope to url: 0 with *reply and *status, or an error. */
static int post(const conn *c, const char *url, const char *action, const char *envelope,
                GByteArray **reply, long *status, long *auth_avail, char **why)
{
    init();
    CURL *h = curl_easy_init();
    if (!h)
        return fail(why, CORE_ENOMEM, g_strdup("cannot start an HTTP transfer"));
    sink s = {g_byte_array_new(), 0};
    char errbuf[CURL_ERROR_SIZE] = "";
    char *type = g_strdup_printf("Content-Type: application/soap+xml; charset=utf-8;"
                                 " action=\"%s\"",
                                 action);
    struct curl_slist *headers = curl_slist_append(NULL, type);
    headers = curl_slist_append(headers, "Expect:");
    int ms = timeout_ms(c->auth);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)ms);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, envelope);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(envelope));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    if (c->digest) {
        /* HTTP Digest once the camera asked for it (never Basic, in clear):
         * curl then first sends the request without its body. */
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_DIGEST);
        curl_easy_setopt(h, CURLOPT_USERNAME, c->auth->username);
        curl_easy_setopt(h, CURLOPT_PASSWORD, c->auth->password ? c->auth->password : "");
    }
    CURLcode cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    if (auth_avail)
        curl_easy_getinfo(h, CURLINFO_HTTPAUTH_AVAIL, auth_avail);
    curl_easy_cleanup(h);
    curl_slist_free_all(headers);
    g_free(type);
    int rc = 0;
    if (s.toobig)
        rc = fail(why, CORE_ETOOBIG, g_strdup("the camera's reply is over 1 MiB"));
    else if (cc != CURLE_OK)
        rc = fail(why, cc == CURLE_OPERATION_TIMEDOUT ? CORE_ETIMEDOUT : CORE_EIO,
                  transfer_error(cc, errbuf, ms));
    if (rc)
        g_byte_array_unref(s.buf);
    else
        *reply = s.buf;
    return rc;
}

typedef int (*reply_fn)(const char *xml, size_t len, void *out, char **why);

/* Why a reply other than 200 failed (g_free); *auth_refused when it was the credentials. */
static char *refusal(const conn *c, long status, GByteArray *reply, int *auth_refused)
{
    char *fault = NULL;
    int rc = vid_onvif_parse_ok((const char *)reply->data, reply->len, &fault);
    int not_authorized =
        fault && (strstr(fault, "NotAuthorized") || strstr(fault, "Unauthorized") ||
                  strstr(fault, "FailedAuthentication"));
    *auth_refused = status == 401 || not_authorized;
    char *why;
    if (*auth_refused && !(c->auth && c->auth->username && *c->auth->username))
        why = g_strdup_printf("the camera wants credentials and none are set (HTTP %ld)", status);
    else if (*auth_refused)
        why = g_strdup_printf("the camera refused the credentials (HTTP %ld%s%s)", status,
                              rc == CORE_EIO ? "; " : "", rc == CORE_EIO ? fault : "");
    else if (rc == CORE_EIO)
        why = g_strdup_printf("%s (HTTP %ld)", fault, status);
    else
        why = g_strdup_printf("the camera answered HTTP %ld", status);
    g_free(fault);
    return why;
}

static int parse_time(const char *xml, size_t len, void *out, char **why)
{
    return vid__onvif_parse_time(xml, len, out, why);
}

/* Learns the camera's clock offset; 1 when it is off enough to matter. */
static int check_clock(conn *c)
{
    c->clock_checked = 1;
    char *env = vid_onvif_envelope("<tds:GetSystemDateAndTime/>", NULL);
    GByteArray *reply = NULL;
    long status = 0;
    gint64 camera_s = 0;
    int rc = post(c, c->device_url, NS_DEVICE_ACTION "GetSystemDateAndTime", env, &reply, &status,
                  NULL, NULL);
    g_free(env);
    if (!rc && status == 200)
        rc = parse_time((const char *)reply->data, reply->len, &camera_s, NULL);
    else if (!rc)
        rc = CORE_EIO;
    if (reply)
        g_byte_array_unref(reply);
    if (rc)
        return 0;
    c->offset_s = camera_s - g_get_real_time() / G_USEC_PER_SEC;
    return c->offset_s > CLOCK_SKEW_S || c->offset_s < -CLOCK_SKEW_S;
}

/* One SOAP call: body to url, the reply read by parse into out. */
static int call(conn *c, const char *url, const char *action, const char *body, reply_fn parse,
                void *out, char **why)
{
    for (;;) {
        char *env = vid__onvif_envelope_at(body, c->auth, c->offset_s);
        GByteArray *reply = NULL;
        long status = 0, avail = 0;
        int rc = post(c, url, action, env, &reply, &status, &avail, why);
        g_free(env);
        if (rc)
            return rc;
        if (status == 200) {
            rc = parse((const char *)reply->data, reply->len, out, why);
            g_byte_array_unref(reply);
            return rc;
        }
        int auth_refused = 0, creds = c->auth && c->auth->username && *c->auth->username;
        if (status == 401 && creds && !c->digest && (avail & CURLAUTH_DIGEST)) {
            g_byte_array_unref(reply);
            c->digest = 1;
            continue;
        }
        char *msg = refusal(c, status, reply, &auth_refused);
        g_byte_array_unref(reply);
        if (auth_refused && c->auth && c->auth->username && *c->auth->username &&
            !c->clock_checked && check_clock(c)) {
            g_free(msg);
            continue;
        }
        return fail(why, CORE_EIO, msg);
    }
}

/* ---- describing a device ---- */

static int parse_info(const char *xml, size_t len, void *out, char **why)
{
    return vid_onvif_parse_device_information(xml, len, out, why);
}

static int parse_services(const char *xml, size_t len, void *out, char **why)
{
    return vid_onvif_parse_services(xml, len, out, why);
}

static int parse_profiles(const char *xml, size_t len, void *out, char **why)
{
    return vid_onvif_parse_profiles(xml, len, out, why);
}

static int parse_uri(const char *xml, size_t len, void *out, char **why)
{
    return vid_onvif_parse_stream_uri(xml, len, out, why);
}

static int parse_ok(const char *xml, size_t len, void *out, char **why)
{
    return vid_onvif_parse_ok(xml, len, why);
}

/* The media and PTZ service addresses. */
static int services(conn *c, vid_onvif_device *d, char **why)
{
    int rc = call(c, c->device_url, NS_DEVICE_ACTION "GetCapabilities",
                  "<tds:GetCapabilities><tds:Category>All</tds:Category></tds:GetCapabilities>",
                  parse_services, d, why);
    if (rc != CORE_EIO && rc != CORE_EPARSE)
        return rc;
    char *first = why ? *why : NULL;
    if (why)
        *why = NULL;
    int rc2 = call(c, c->device_url, NS_DEVICE_ACTION "GetServices",
                   "<tds:GetServices><tds:IncludeCapability>false</tds:IncludeCapability>"
                   "</tds:GetServices>",
                   parse_services, d, why);
    if (!rc2) {
        g_free(first);
        return 0;
    }
    /* The first refusal says more (GetServices is the fallback). */
    if (why) {
        g_free(*why);
        *why = first;
    } else {
        g_free(first);
    }
    return rc;
}

static char *stream_uri_body(const char *token)
{
    char *t = g_markup_escape_text(token, -1);
    char *b = g_strdup_printf(
        "<trt:GetStreamUri><trt:StreamSetup><tt:Stream>RTP-Unicast</tt:Stream>"
        "<tt:Transport><tt:Protocol>RTSP</tt:Protocol></tt:Transport></trt:StreamSetup>"
        "<trt:ProfileToken>%s</trt:ProfileToken></trt:GetStreamUri>",
        t);
    g_free(t);
    return b;
}

static int check_url(const char *url, char **why)
{
    if (url &&
        (!g_ascii_strncasecmp(url, "http://", 7) || !g_ascii_strncasecmp(url, "https://", 8)))
        return 0;
    return fail(why, CORE_EINVAL,
                g_strdup("the camera's ONVIF address is not an http:// or https:// URL"));
}

int vid_onvif_describe(const char *url, const vid_onvif_auth *auth, vid_onvif_device *d, char **why)
{
    conn c = {auth, url, 0, 0, 0};
    int rc = check_url(url, why);
    if (!rc)
        rc = call(&c, url, NS_DEVICE_ACTION "GetDeviceInformation", "<tds:GetDeviceInformation/>",
                  parse_info, d, why);
    if (!rc)
        rc = services(&c, d, why);
    if (rc || !d->media_url)
        return rc;
    rc = call(&c, d->media_url, NS_MEDIA_ACTION "GetProfiles", "<trt:GetProfiles/>", parse_profiles,
              d, why);
    for (guint i = 0; !rc && i < d->profiles->len && i < STREAM_URIS_MAX; i++) {
        vid_onvif_profile *p = d->profiles->pdata[i];
        char *body = stream_uri_body(p->token), *uri = NULL, *err = NULL;
        int r = call(&c, d->media_url, NS_MEDIA_ACTION "GetStreamUri", body, parse_uri, &uri, &err);
        g_free(body);
        g_free(err);
        p->stream_uri = uri;
        /* A profile the camera will not stream is left without a URI; a
         * camera that stopped answering ends the list. */
        if (r == CORE_ETIMEDOUT || r == CORE_ETOOBIG)
            break;
    }
    for (guint i = 0; !rc && d->ptz_url && i < d->profiles->len; i++)
        d->ptz |= ((vid_onvif_profile *)d->profiles->pdata[i])->ptz;
    return rc;
}

/* ---- PTZ ---- */

/* The PTZ service address and the profile token to move (g_free both). */
static int ptz_target(conn *c, const char *profile, char **ptz_url, char **token, char **why)
{
    vid_onvif_device *d = vid_onvif_device_new(NULL);
    int rc = services(c, d, why);
    if (!rc && !d->ptz_url)
        rc = fail(why, CORE_EIO, g_strdup("the camera has no PTZ service"));
    if (!rc && (!profile || !*profile)) {
        if (!d->media_url)
            rc = fail(why, CORE_EIO, g_strdup("the camera has no media service to name a profile"));
        else
            rc = call(c, d->media_url, NS_MEDIA_ACTION "GetProfiles", "<trt:GetProfiles/>",
                      parse_profiles, d, why);
        vid_onvif_profile *pick = NULL;
        for (guint i = 0; !rc && i < d->profiles->len && !pick; i++)
            if (((vid_onvif_profile *)d->profiles->pdata[i])->ptz)
                pick = d->profiles->pdata[i];
        if (!rc && !pick)
            rc = fail(why, CORE_EIO, g_strdup("no media profile of the camera has PTZ"));
        if (!rc)
            *token = g_strdup(pick->token);
    } else if (!rc) {
        *token = g_strdup(profile);
    }
    if (!rc)
        *ptz_url = g_strdup(d->ptz_url);
    vid_onvif_device_free(d);
    return rc;
}

/* A PTZ command: Stop, or ContinuousMove with its velocities as text. */
typedef struct {
    int stop;
    char x[G_ASCII_DTOSTR_BUF_SIZE], y[G_ASCII_DTOSTR_BUF_SIZE], z[G_ASCII_DTOSTR_BUF_SIZE];
    char timeout[64]; /* "<tptz:Timeout>…</tptz:Timeout>" or "" */
} ptz_cmd;

static char *ptz_body(const ptz_cmd *cmd, const char *token)
{
    char *t = g_markup_escape_text(token, -1), *b;
    if (cmd->stop)
        b = g_strdup_printf("<tptz:Stop><tptz:ProfileToken>%s</tptz:ProfileToken>"
                            "<tptz:PanTilt>true</tptz:PanTilt><tptz:Zoom>true</tptz:Zoom>"
                            "</tptz:Stop>",
                            t);
    else
        b = g_strdup_printf("<tptz:ContinuousMove><tptz:ProfileToken>%s</tptz:ProfileToken>"
                            "<tptz:Velocity><tt:PanTilt x=\"%s\" y=\"%s\"/><tt:Zoom x=\"%s\"/>"
                            "</tptz:Velocity>%s</tptz:ContinuousMove>",
                            t, cmd->x, cmd->y, cmd->z, cmd->timeout);
    g_free(t);
    return b;
}

static int ptz_call(const char *url, const char *profile, const vid_onvif_auth *auth,
                    const ptz_cmd *cmd, char **why)
{
    conn c = {auth, url, 0, 0, 0};
    char *ptz_url = NULL, *token = NULL;
    int rc = check_url(url, why);
    if (!rc)
        rc = ptz_target(&c, profile, &ptz_url, &token, why);
    if (rc)
        return rc;
    char *body = ptz_body(cmd, token);
    rc = call(&c, ptz_url, cmd->stop ? NS_PTZ_ACTION "Stop" : NS_PTZ_ACTION "ContinuousMove", body,
              parse_ok, NULL, why);
    g_free(body);
    g_free(token);
    g_free(ptz_url);
    return rc;
}

static int velocity_ok(double v)
{
    return isfinite(v) && v >= -1 && v <= 1;
}

int vid_onvif_ptz_move(const char *url, const char *profile, const vid_onvif_auth *auth, double pan,
                       double tilt, double zoom, int timeout_ms_, char **why)
{
    if (!velocity_ok(pan) || !velocity_ok(tilt) || !velocity_ok(zoom))
        return fail(why, CORE_EINVAL, g_strdup("pan, tilt and zoom are velocities from -1 to 1"));
    if (timeout_ms_ < 0 || timeout_ms_ > PTZ_TIMEOUT_MAX_MS)
        return fail(why, CORE_EINVAL, g_strdup("the timeout is 0 to 3600000 ms"));
    ptz_cmd cmd = {0};
    /* + 0.0 turns -0 into 0 */
    g_ascii_formatd(cmd.x, sizeof cmd.x, "%.6g", pan + 0.0);
    g_ascii_formatd(cmd.y, sizeof cmd.y, "%.6g", tilt + 0.0);
    g_ascii_formatd(cmd.z, sizeof cmd.z, "%.6g", zoom + 0.0);
    if (timeout_ms_ > 0)
        g_snprintf(cmd.timeout, sizeof cmd.timeout, "<tptz:Timeout>PT%d.%03dS</tptz:Timeout>",
                   timeout_ms_ / 1000, timeout_ms_ % 1000);
    return ptz_call(url, profile, auth, &cmd, why);
}

int vid_onvif_ptz_stop(const char *url, const char *profile, const vid_onvif_auth *auth, char **why)
{
    ptz_cmd cmd = {.stop = 1};
    return ptz_call(url, profile, auth, &cmd, why);
}
