/*
 * onvif_soap.c — the SOAP of ONVIF (onvif.h): requests as text, replies
 * read with libxml2. Pure functions, any thread.
 *
 * A reply is refused before parsing when it is over VID_ONVIF_REPLY_MAX or
 * carries a DTD (SOAP forbids them, and refusing them shuts out entity
 * expansion and external fetches); libxml2 never touches the network
 * (XML_PARSE_NONET) and never prints. Elements are found by local name
 * among the children of the element before, so a camera may use any
 * prefixes; text taken from a reply is trimmed, stripped of control
 * characters and bounded before it reaches an error message.
 */
#include "onvif_internal.h"

#include "../core/core.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <sodium.h>
#include <string.h>

#define TEXT_MAX 256     /* bytes of a name, model, token… kept from a reply */
#define URL_MAX 2048     /* bytes of an address */
#define XADDRS_MAX 8     /* addresses kept per device */
#define PROFILES_MAX 32  /* profiles kept per device */
#define WHY_TEXT_MAX 160 /* bytes of a camera's words quoted in an error */

#define NS_SOAP "http://www.w3.org/2003/05/soap-envelope"
#define NS_WSSE "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
#define NS_WSU "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
#define WSS_DIGEST                                                                                 \
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"           \
    "#PasswordDigest"
#define WSS_BASE64                                                                                 \
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0"            \
    "#Base64Binary"
#define NS_MEDIA "http://www.onvif.org/ver10/media/wsdl"
#define NS_PTZ "http://www.onvif.org/ver20/ptz/wsdl"

static int fail(char **why, int rc, char *msg)
{
    if (why)
        *why = msg;
    else
        g_free(msg);
    return rc;
}

/* ---- requests ---- */

char *vid_onvif_password_digest(const unsigned char *nonce, size_t nonce_len, const char *created,
                                const char *password)
{
    GChecksum *sha = g_checksum_new(G_CHECKSUM_SHA1);
    g_checksum_update(sha, nonce, nonce_len);
    g_checksum_update(sha, (const guchar *)created, strlen(created));
    g_checksum_update(sha, (const guchar *)password, strlen(password));
    guint8 digest[20];
    gsize n = sizeof digest;
    g_checksum_get_digest(sha, digest, &n);
    g_checksum_free(sha);
    return g_base64_encode(digest, n);
}

/* The WS-Security header for auth, or "" (g_free). */
static char *security_header(const vid_onvif_auth *auth, gint64 clock_offset_s)
{
    if (!auth || !auth->username || !*auth->username)
        return g_strdup("");
    unsigned char nonce[16];
    randombytes_buf(nonce, sizeof nonce);
    GDateTime *now = g_date_time_new_now_utc();
    GDateTime *then = g_date_time_add_seconds(now, (gdouble)clock_offset_s);
    char *created = g_date_time_format(then, "%Y-%m-%dT%H:%M:%SZ");
    g_date_time_unref(then);
    g_date_time_unref(now);
    char *digest = vid_onvif_password_digest(nonce, sizeof nonce, created,
                                             auth->password ? auth->password : "");
    char *nonce64 = g_base64_encode(nonce, sizeof nonce);
    char *user = g_markup_escape_text(auth->username, -1);
    char *h = g_strdup_printf(
        "<s:Header><wsse:Security s:mustUnderstand=\"1\" xmlns:wsse=\"" NS_WSSE
        "\" xmlns:wsu=\"" NS_WSU "\"><wsse:UsernameToken><wsse:Username>%s</wsse:Username>"
        "<wsse:Password Type=\"" WSS_DIGEST "\">%s</wsse:Password>"
        "<wsse:Nonce EncodingType=\"" WSS_BASE64 "\">%s</wsse:Nonce>"
        "<wsu:Created>%s</wsu:Created></wsse:UsernameToken></wsse:Security></s:Header>",
        user, digest, nonce64, created);
    g_free(user);
    g_free(nonce64);
    g_free(digest);
    g_free(created);
    return h;
}

char *vid__onvif_envelope_at(const char *body, const vid_onvif_auth *auth, gint64 clock_offset_s)
{
    char *header = security_header(auth, clock_offset_s);
    char *env = g_strdup_printf(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
        "<s:Envelope xmlns:s=\"" NS_SOAP "\" xmlns:tds=\"http://www.onvif.org/ver10/device/wsdl\""
        " xmlns:trt=\"" NS_MEDIA "\" xmlns:tptz=\"" NS_PTZ "\""
        " xmlns:tt=\"http://www.onvif.org/ver10/schema\">%s<s:Body>%s</s:Body></s:Envelope>",
        header, body);
    g_free(header);
    return env;
}

char *vid_onvif_envelope(const char *body, const vid_onvif_auth *auth)
{
    return vid__onvif_envelope_at(body, auth, 0);
}

char *vid_onvif_probe_message(const char *message_id)
{
    char *id = g_markup_escape_text(message_id, -1);
    char *m = g_strdup_printf(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
        "<s:Envelope xmlns:s=\"" NS_SOAP "\""
        " xmlns:a=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\""
        " xmlns:d=\"http://schemas.xmlsoap.org/ws/2005/04/discovery\""
        " xmlns:dn=\"http://www.onvif.org/ver10/network/wsdl\">"
        "<s:Header><a:MessageID>%s</a:MessageID>"
        "<a:To s:mustUnderstand=\"1\">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>"
        "<a:Action s:mustUnderstand=\"1\">http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe"
        "</a:Action></s:Header>"
        "<s:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></s:Body>"
        "</s:Envelope>",
        id);
    g_free(id);
    return m;
}

/* ---- reading replies ---- */

static int is(const xmlNode *n, const char *local)
{
    return n && n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, local) == 0;
}

/* The first element child of n named local, or NULL. */
static xmlNode *child(const xmlNode *n, const char *local)
{
    for (xmlNode *c = n ? n->children : NULL; c; c = c->next)
        if (is(c, local))
            return c;
    return NULL;
}

/* The element at the end of a path of local names below n, or NULL. */
static xmlNode *path(const xmlNode *n, const char *const *names)
{
    const xmlNode *at = n;
    for (; at && *names; names++)
        at = child(at, *names);
    return (xmlNode *)at;
}
#define PATH(n, ...) path((n), (const char *const[]){__VA_ARGS__, NULL})

/* The trimmed text of n without control characters, at most max bytes
 * (cut at a character), or NULL when n is absent or the text empty (g_free). */
static char *text_of(const xmlNode *n, size_t max)
{
    if (!n)
        return NULL;
    xmlChar *raw = xmlNodeGetContent(n);
    char *t = g_strstrip(g_strdup(raw ? (const char *)raw : ""));
    xmlFree(raw);
    for (char *p = t; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    if (!g_utf8_validate(t, -1, NULL)) {
        char *v = g_utf8_make_valid(t, -1);
        g_free(t);
        t = v;
    }
    if (strlen(t) > max) {
        const char *end = g_utf8_find_prev_char(t, t + max + 1);
        t[end ? end - t : 0] = '\0';
    }
    if (!*t) {
        g_free(t);
        return NULL;
    }
    return t;
}

static char *attr_of(const xmlNode *n, const char *name, size_t max)
{
    xmlChar *raw = xmlGetProp(n, (const xmlChar *)name);
    if (!raw)
        return NULL;
    char *t = g_strstrip(g_strdup((const char *)raw));
    xmlFree(raw);
    if (!*t || strlen(t) > max || !g_utf8_validate(t, -1, NULL)) {
        g_free(t);
        return NULL;
    }
    return t;
}

/* An http:// or https:// address with a host, of sane length. */
static int web_url(const char *u)
{
    if (!u || strlen(u) > URL_MAX || strpbrk(u, " \t\r\n"))
        return 0;
    GUri *uri = g_uri_parse(u, G_URI_FLAGS_NONE, NULL);
    int ok = uri &&
             (!g_ascii_strcasecmp(g_uri_get_scheme(uri), "http") ||
              !g_ascii_strcasecmp(g_uri_get_scheme(uri), "https")) &&
             g_uri_get_host(uri) && *g_uri_get_host(uri);
    if (uri)
        g_uri_unref(uri);
    return ok;
}

/* The fault's code and reason as a sentence (g_free). */
static char *fault_text(const xmlNode *fault)
{
    /* SOAP 1.2: the innermost Subcode's Value is the specific reason
     * (ter:NotAuthorized); SOAP 1.1: faultcode and faultstring. */
    const xmlNode *code = child(fault, "Code");
    char *value = text_of(child(code, "Value"), WHY_TEXT_MAX);
    for (const xmlNode *sub = child(code, "Subcode"); sub; sub = child(sub, "Subcode")) {
        char *v = text_of(child(sub, "Value"), WHY_TEXT_MAX);
        if (v) {
            g_free(value);
            value = v;
        }
    }
    if (!value)
        value = text_of(child(fault, "faultcode"), WHY_TEXT_MAX);
    char *reason = text_of(PATH(fault, "Reason", "Text"), WHY_TEXT_MAX);
    if (!reason)
        reason = text_of(child(fault, "faultstring"), WHY_TEXT_MAX);
    char *s = g_strdup_printf("the camera answered with a SOAP fault: %s%s%s%s",
                              value ? value : "(no code)", reason ? " (" : "", reason ? reason : "",
                              reason ? ")" : "");
    g_free(value);
    g_free(reason);
    return s;
}

/* Parses a reply: *doc (xmlFreeDoc) and *body, the envelope's Body. */
static int soap_open(const char *xml, size_t len, xmlDoc **doc, xmlNode **body, char **why)
{
    *doc = NULL;
    if (len > VID_ONVIF_REPLY_MAX)
        return fail(why, CORE_ETOOBIG, g_strdup("the camera's reply is over 1 MiB"));
    if (!xml || !len)
        return fail(why, CORE_EPARSE, g_strdup("the camera's reply is empty"));
    if (g_strstr_len(xml, (gssize)len, "<!DOCTYPE") || g_strstr_len(xml, (gssize)len, "<!ENTITY"))
        return fail(why, CORE_EPARSE,
                    g_strdup("the camera's reply carries a DTD, which SOAP forbids"));
    *doc = xmlReadMemory(xml, (int)len, NULL, NULL,
                         XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!*doc)
        return fail(why, CORE_EPARSE, g_strdup("the camera's reply is not well-formed XML"));
    xmlNode *root = xmlDocGetRootElement(*doc);
    *body = is(root, "Envelope") ? child(root, "Body") : NULL;
    int rc = 0;
    if (!*body)
        rc = fail(why, CORE_EPARSE, g_strdup("the camera's reply is not a SOAP envelope"));
    else if (child(*body, "Fault"))
        rc = fail(why, CORE_EIO, fault_text(child(*body, "Fault")));
    if (rc) {
        xmlFreeDoc(*doc);
        *doc = NULL;
    }
    return rc;
}

/* The body's element named local, or a CORE_EPARSE naming it. */
static int response(xmlDoc *doc, xmlNode *body, const char *local, xmlNode **out, char **why)
{
    *out = child(body, local);
    if (*out)
        return 0;
    xmlFreeDoc(doc);
    return fail(why, CORE_EPARSE, g_strdup_printf("the camera's reply has no %s", local));
}

void vid__onvif_profile_free(gpointer p)
{
    vid_onvif_profile *pr = p;
    if (!pr)
        return;
    g_free(pr->token);
    g_free(pr->name);
    g_free(pr->stream_uri);
    g_free(pr->encoding);
    g_free(pr);
}

vid_onvif_device *vid_onvif_device_new(const char *address)
{
    vid_onvif_device *d = g_new0(vid_onvif_device, 1);
    d->address = g_strdup(address);
    d->xaddrs = g_ptr_array_new_with_free_func(g_free);
    d->profiles = g_ptr_array_new_with_free_func(vid__onvif_profile_free);
    return d;
}

void vid_onvif_device_free(vid_onvif_device *d)
{
    if (!d)
        return;
    g_free(d->address);
    g_ptr_array_unref(d->xaddrs);
    g_free(d->manufacturer);
    g_free(d->model);
    g_free(d->serial);
    g_free(d->firmware);
    g_free(d->media_url);
    g_free(d->ptz_url);
    g_ptr_array_unref(d->profiles);
    g_free(d);
}

/* Adds the http(s) addresses of a space-separated list not there yet. */
static void add_xaddrs(GPtrArray *to, const char *list)
{
    char **parts = g_strsplit_set(list ? list : "", " \t", -1);
    for (char **p = parts; *p && to->len < XADDRS_MAX; p++) {
        int known = 0;
        for (guint i = 0; i < to->len && !known; i++)
            known = !strcmp(to->pdata[i], *p);
        if (!known && web_url(*p))
            g_ptr_array_add(to, g_strdup(*p));
    }
    g_strfreev(parts);
}

int vid_onvif_parse_probe_matches(const char *xml, size_t len, const char *relates_to,
                                  GPtrArray *devices, char **why)
{
    xmlDoc *doc;
    xmlNode *body, *matches;
    int rc = soap_open(xml, len, &doc, &body, why);
    if (rc || (rc = response(doc, body, "ProbeMatches", &matches, why)))
        return rc;
    char *rel = text_of(PATH(xmlDocGetRootElement(doc), "Header", "RelatesTo"), TEXT_MAX);
    if (!relates_to || (rel && !strcmp(rel, relates_to))) {
        for (xmlNode *m = matches->children; m; m = m->next) {
            if (!is(m, "ProbeMatch"))
                continue;
            char *address = text_of(PATH(m, "EndpointReference", "Address"), TEXT_MAX);
            char *xaddrs = text_of(child(m, "XAddrs"), URL_MAX * XADDRS_MAX);
            if (address) {
                vid_onvif_device *d = vid_onvif_device_new(address);
                add_xaddrs(d->xaddrs, xaddrs);
                g_ptr_array_add(devices, d);
            }
            g_free(address);
            g_free(xaddrs);
        }
    }
    g_free(rel);
    xmlFreeDoc(doc);
    return 0;
}

void vid__onvif_merge(vid_onvif_device *into, const vid_onvif_device *d)
{
    for (guint i = 0; i < d->xaddrs->len; i++)
        add_xaddrs(into->xaddrs, d->xaddrs->pdata[i]);
}

static void set(char **field, char *value)
{
    g_free(*field);
    *field = value;
}

int vid_onvif_parse_device_information(const char *xml, size_t len, vid_onvif_device *d, char **why)
{
    xmlDoc *doc;
    xmlNode *body, *r;
    int rc = soap_open(xml, len, &doc, &body, why);
    if (rc || (rc = response(doc, body, "GetDeviceInformationResponse", &r, why)))
        return rc;
    set(&d->manufacturer, text_of(child(r, "Manufacturer"), TEXT_MAX));
    set(&d->model, text_of(child(r, "Model"), TEXT_MAX));
    set(&d->serial, text_of(child(r, "SerialNumber"), TEXT_MAX));
    set(&d->firmware, text_of(child(r, "FirmwareVersion"), TEXT_MAX));
    xmlFreeDoc(doc);
    return 0;
}

/* The service address in n, if it is an http(s) URL. */
static char *service_url(const xmlNode *n)
{
    char *u = text_of(n, URL_MAX);
    if (u && !web_url(u)) {
        g_free(u);
        u = NULL;
    }
    return u;
}

int vid_onvif_parse_services(const char *xml, size_t len, vid_onvif_device *d, char **why)
{
    xmlDoc *doc;
    xmlNode *body;
    int rc = soap_open(xml, len, &doc, &body, why);
    if (rc)
        return rc;
    xmlNode *caps = PATH(body, "GetCapabilitiesResponse", "Capabilities");
    xmlNode *services = child(body, "GetServicesResponse");
    if (caps) {
        set(&d->media_url, service_url(PATH(caps, "Media", "XAddr")));
        set(&d->ptz_url, service_url(PATH(caps, "PTZ", "XAddr")));
    } else if (services) {
        set(&d->media_url, NULL);
        set(&d->ptz_url, NULL);
        for (xmlNode *s = services->children; s; s = s->next) {
            char *ns = is(s, "Service") ? text_of(child(s, "Namespace"), TEXT_MAX) : NULL;
            if (ns && !strcmp(ns, NS_MEDIA) && !d->media_url)
                d->media_url = service_url(child(s, "XAddr"));
            else if (ns && !strcmp(ns, NS_PTZ) && !d->ptz_url)
                d->ptz_url = service_url(child(s, "XAddr"));
            g_free(ns);
        }
    } else {
        xmlFreeDoc(doc);
        return fail(why, CORE_EPARSE,
                    g_strdup("the camera's reply has no GetCapabilitiesResponse/Capabilities"
                             " or GetServicesResponse"));
    }
    xmlFreeDoc(doc);
    return 0;
}

/* A dimension of a resolution: 1…100000 pixels, else 0. */
static int pixels(const xmlNode *n)
{
    char *t = text_of(n, 16), *end = NULL;
    gint64 v = t ? g_ascii_strtoll(t, &end, 10) : 0;
    int ok = t && !*end && v > 0 && v <= 100000;
    g_free(t);
    return ok ? (int)v : 0;
}

int vid_onvif_parse_profiles(const char *xml, size_t len, vid_onvif_device *d, char **why)
{
    xmlDoc *doc;
    xmlNode *body, *r;
    int rc = soap_open(xml, len, &doc, &body, why);
    if (rc || (rc = response(doc, body, "GetProfilesResponse", &r, why)))
        return rc;
    GPtrArray *list = g_ptr_array_new_with_free_func(vid__onvif_profile_free);
    for (xmlNode *p = r->children; p && list->len < PROFILES_MAX; p = p->next) {
        if (!is(p, "Profiles"))
            continue;
        char *token = attr_of(p, "token", 64);
        if (!token)
            continue; /* not usable: every call names the profile by its token */
        vid_onvif_profile *pr = g_new0(vid_onvif_profile, 1);
        pr->token = token;
        pr->name = text_of(child(p, "Name"), TEXT_MAX);
        xmlNode *venc = child(p, "VideoEncoderConfiguration");
        pr->encoding = text_of(child(venc, "Encoding"), 16);
        pr->width = pixels(PATH(venc, "Resolution", "Width"));
        pr->height = pixels(PATH(venc, "Resolution", "Height"));
        pr->ptz = child(p, "PTZConfiguration") != NULL;
        g_ptr_array_add(list, pr);
    }
    xmlFreeDoc(doc);
    if (!list->len) {
        g_ptr_array_unref(list);
        return fail(why, CORE_EPARSE, g_strdup("the camera has no media profile with a token"));
    }
    g_ptr_array_unref(d->profiles);
    d->profiles = list;
    return 0;
}

int vid_onvif_parse_stream_uri(const char *xml, size_t len, char **uri, char **why)
{
    xmlDoc *doc;
    xmlNode *body, *r;
    *uri = NULL;
    int rc = soap_open(xml, len, &doc, &body, why);
    if (rc || (rc = response(doc, body, "GetStreamUriResponse", &r, why)))
        return rc;
    char *u = text_of(PATH(r, "MediaUri", "Uri"), URL_MAX);
    xmlFreeDoc(doc);
    if (!u || (g_ascii_strncasecmp(u, "rtsp://", 7) && g_ascii_strncasecmp(u, "rtsps://", 8)) ||
        strpbrk(u, " \t")) {
        g_free(u);
        return fail(why, CORE_EPARSE, g_strdup("the camera's stream URI is not an rtsp:// URL"));
    }
    *uri = u;
    return 0;
}

int vid_onvif_parse_ok(const char *xml, size_t len, char **why)
{
    xmlDoc *doc;
    xmlNode *body;
    int rc = soap_open(xml, len, &doc, &body, why);
    if (!rc)
        xmlFreeDoc(doc);
    return rc;
}

/* A whole number in [min, max] from n, or -1. */
static int number_in(const xmlNode *n, int min, int max)
{
    char *t = text_of(n, 8), *end = NULL;
    gint64 v = t ? g_ascii_strtoll(t, &end, 10) : -1;
    int ok = t && !*end && v >= min && v <= max;
    g_free(t);
    return ok ? (int)v : -1;
}

int vid__onvif_parse_time(const char *xml, size_t len, gint64 *unix_s, char **why)
{
    xmlDoc *doc;
    xmlNode *body, *r;
    int rc = soap_open(xml, len, &doc, &body, why);
    if (rc || (rc = response(doc, body, "GetSystemDateAndTimeResponse", &r, why)))
        return rc;
    xmlNode *utc = PATH(r, "SystemDateAndTime", "UTCDateTime");
    xmlNode *date = child(utc, "Date"), *time = child(utc, "Time");
    int y = number_in(child(date, "Year"), 1970, 9999), mo = number_in(child(date, "Month"), 1, 12);
    int d = number_in(child(date, "Day"), 1, 31), h = number_in(child(time, "Hour"), 0, 23);
    int mi = number_in(child(time, "Minute"), 0, 59), s = number_in(child(time, "Second"), 0, 61);
    xmlFreeDoc(doc);
    GDateTime *t = y < 0 || mo < 0 || d < 0 || h < 0 || mi < 0 || s < 0
                       ? NULL
                       : g_date_time_new_utc(y, mo, d, h, mi, s > 59 ? 59 : s);
    if (!t)
        return fail(why, CORE_EPARSE, g_strdup("the camera's reply has no usable UTCDateTime"));
    *unix_s = g_date_time_to_unix(t);
    g_date_time_unref(t);
    return 0;
}
