/*
 * onvif-mock: a MOCK ONVIF camera for the tests, standing in for a real IP
 * camera's ONVIF services (none is available where the tests run). It is
 * not a camera: it streams nothing, and answers only what citycmd asks.
 *
 *  - WS-Discovery: answers a unicast Probe for NetworkVideoTransmitters on
 *    --udp-port with a ProbeMatch (its endpoint reference and device
 *    service address), RelatesTo the Probe's MessageID.
 *  - ONVIF over HTTP on --http-port (SOAP 1.2): the device service
 *    (/onvif/device_service: GetSystemDateAndTime, GetDeviceInformation,
 *    GetCapabilities, GetServices), the media service
 *    (/onvif/media_service: GetProfiles, GetStreamUri) and the PTZ service
 *    (/onvif/ptz_service: ContinuousMove, Stop, GetStatus). Two profiles:
 *    "main" (1920x1080 H.264, with PTZ unless --no-ptz) streams --rtsp,
 *    "sub" (640x360 H.264) streams --rtsp-sub (or --rtsp).
 *  - With --user and --password every call but GetSystemDateAndTime needs
 *    a WS-Security UsernameToken whose PasswordDigest is
 *    Base64(SHA1(nonce + created + password)) and whose Created is within
 *    5 minutes of the mock's clock (its own clock plus --clock-offset
 *    seconds, to play a camera whose clock is wrong); otherwise HTTP 401
 *    with a SOAP fault ter:NotAuthorized.
 *
 * Standard output, one JSON object per line, flushed: {"event":"ready",…}
 * once listening (the ports, the device address), {"event":"ptz",…} for
 * each PTZ command taken (the velocities as received), {"event":
 * "auth_failed",…} for each refused call. --move-delay-ms makes each
 * ContinuousMove take that long before it is taken (and printed), as a
 * slow camera would, so a test can see whether a later Stop overtakes it. The PTZ position (each
 * move adds a tenth of its velocity, clamped to -1..1) is what GetStatus says.
 *
 * Threads: the main loop answers probes; GThreadedSocketService runs each
 * HTTP connection on its own thread (one request per connection); `lock`
 * guards the position and standard output.
 */
#include <gio/gio.h>
#include <glib-unix.h>
#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#define REQUEST_MAX (1024 * 1024)
#define HEADER_LINE_MAX 8192
#define HEADER_LINES_MAX 64
#define CREATED_WINDOW_S 300

static struct {
    int udp_port, http_port;
    char *bind, *rtsp, *rtsp_sub, *user, *password, *uuid;
    char *manufacturer, *model, *serial;
    gboolean no_ptz;
    int clock_offset_s;
    int move_delay_ms;
} opt = {.udp_port = 0, .http_port = 0};

static GMutex lock;
static double pos[3]; /* pan, tilt, zoom */
static int http_port_bound;

/* Prints one JSON line (takes j). */
static void emit(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(12));
    g_mutex_lock(&lock);
    printf("%s\n", s);
    fflush(stdout);
    g_mutex_unlock(&lock);
    free(s);
    json_decref(j);
}

/* ---- XML ---- */

static int is(const xmlNode *n, const char *local)
{
    return n && n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, local);
}

static xmlNode *child(const xmlNode *n, const char *local)
{
    for (xmlNode *c = n ? n->children : NULL; c; c = c->next)
        if (is(c, local))
            return c;
    return NULL;
}

static xmlNode *first_element(const xmlNode *n)
{
    for (xmlNode *c = n ? n->children : NULL; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE)
            return c;
    return NULL;
}

/* The trimmed text of n (g_free), "" when absent. */
static char *text(const xmlNode *n)
{
    xmlChar *raw = n ? xmlNodeGetContent(n) : NULL;
    char *t = g_strstrip(g_strdup(raw ? (const char *)raw : ""));
    xmlFree(raw);
    return t;
}

static double attr_number(const xmlNode *n, const char *name, int *ok)
{
    xmlChar *raw = n ? xmlGetProp(n, (const xmlChar *)name) : NULL;
    char *end = NULL;
    double d = raw ? g_ascii_strtod((const char *)raw, &end) : 0;
    if (raw && (*end || !isfinite(d)))
        *ok = 0;
    xmlFree(raw);
    return d;
}

static char *esc(const char *s)
{
    return g_markup_escape_text(s, -1);
}

/* ---- WS-Discovery ---- */

static char *device_url(void)
{
    return g_strdup_printf("http://%s:%d/onvif/device_service", opt.bind, http_port_bound);
}

static char *probe_match(const char *relates_to)
{
    char *uuid = g_uuid_string_random(), *rel = esc(relates_to), *url = device_url();
    char *m = g_strdup_printf(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
        "<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://www.w3.org/2003/05/soap-envelope\""
        " xmlns:wsa=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\""
        " xmlns:wsdd=\"http://schemas.xmlsoap.org/ws/2005/04/discovery\""
        " xmlns:dn=\"http://www.onvif.org/ver10/network/wsdl\">"
        "<SOAP-ENV:Header><wsa:MessageID>urn:uuid:%s</wsa:MessageID>"
        "<wsa:RelatesTo>%s</wsa:RelatesTo>"
        "<wsa:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:To>"
        "<wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</wsa:Action>"
        "</SOAP-ENV:Header><SOAP-ENV:Body><wsdd:ProbeMatches><wsdd:ProbeMatch>"
        "<wsa:EndpointReference><wsa:Address>urn:uuid:%s</wsa:Address></wsa:EndpointReference>"
        "<wsdd:Types>dn:NetworkVideoTransmitter</wsdd:Types>"
        "<wsdd:Scopes>onvif://www.onvif.org/type/video_encoder"
        " onvif://www.onvif.org/name/onvif-mock</wsdd:Scopes>"
        "<wsdd:XAddrs>%s</wsdd:XAddrs><wsdd:MetadataVersion>1</wsdd:MetadataVersion>"
        "</wsdd:ProbeMatch></wsdd:ProbeMatches></SOAP-ENV:Body></SOAP-ENV:Envelope>",
        uuid, rel, opt.uuid, url);
    g_free(uuid);
    g_free(rel);
    g_free(url);
    return m;
}

static gboolean on_probe(GSocket *sock, GIOCondition cond, gpointer unused)
{
    char buf[65536];
    GSocketAddress *from = NULL;
    gssize n = g_socket_receive_from(sock, &from, buf, sizeof buf, NULL, NULL);
    if (n <= 0) {
        g_clear_object(&from);
        return G_SOURCE_CONTINUE;
    }
    xmlDoc *doc = xmlReadMemory(buf, (int)n, NULL, NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
    xmlNode *probe = child(child(root, "Body"), "Probe");
    char *id = text(child(child(root, "Header"), "MessageID"));
    char *types = text(child(probe, "Types"));
    if (probe && *id && (!*types || strstr(types, "NetworkVideoTransmitter"))) {
        char *m = probe_match(id);
        g_socket_send_to(sock, from, m, strlen(m), NULL, NULL);
        g_free(m);
    }
    g_free(id);
    g_free(types);
    if (doc)
        xmlFreeDoc(doc);
    g_clear_object(&from);
    return G_SOURCE_CONTINUE;
}

/* ---- SOAP replies ---- */

typedef struct {
    int status;
    char *body; /* the Body's content */
} reply;

#define ENVELOPE_OPEN                                                                              \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"                                                   \
    "<env:Envelope xmlns:env=\"http://www.w3.org/2003/05/soap-envelope\""                          \
    " xmlns:tds=\"http://www.onvif.org/ver10/device/wsdl\""                                        \
    " xmlns:trt=\"http://www.onvif.org/ver10/media/wsdl\""                                         \
    " xmlns:tptz=\"http://www.onvif.org/ver20/ptz/wsdl\""                                          \
    " xmlns:tt=\"http://www.onvif.org/ver10/schema\""                                              \
    " xmlns:ter=\"http://www.onvif.org/ver10/error\"><env:Body>"
#define ENVELOPE_CLOSE "</env:Body></env:Envelope>"

static reply fault(int status, const char *code, const char *subcode, const char *reason)
{
    return (reply){status, g_strdup_printf("<env:Fault><env:Code><env:Value>env:%s</env:Value>"
                                           "<env:Subcode><env:Value>%s</env:Value></env:Subcode>"
                                           "</env:Code><env:Reason><env:Text xml:lang=\"en\">%s"
                                           "</env:Text></env:Reason></env:Fault>",
                                           code, subcode, reason)};
}

static reply ok(char *body)
{
    return (reply){200, body};
}

static GDateTime *mock_now(void)
{
    GDateTime *now = g_date_time_new_now_utc();
    GDateTime *t = g_date_time_add_seconds(now, opt.clock_offset_s);
    g_date_time_unref(now);
    return t;
}

static reply system_time(void)
{
    GDateTime *t = mock_now();
    reply r = ok(g_strdup_printf(
        "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime>"
        "<tt:DateTimeType>Manual</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings>"
        "<tt:UTCDateTime><tt:Time><tt:Hour>%d</tt:Hour><tt:Minute>%d</tt:Minute>"
        "<tt:Second>%d</tt:Second></tt:Time><tt:Date><tt:Year>%d</tt:Year>"
        "<tt:Month>%d</tt:Month><tt:Day>%d</tt:Day></tt:Date></tt:UTCDateTime>"
        "</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>",
        g_date_time_get_hour(t), g_date_time_get_minute(t), g_date_time_get_second(t),
        g_date_time_get_year(t), g_date_time_get_month(t), g_date_time_get_day_of_month(t)));
    g_date_time_unref(t);
    return r;
}

static reply device_information(void)
{
    char *m = esc(opt.manufacturer), *mo = esc(opt.model), *s = esc(opt.serial);
    reply r = ok(g_strdup_printf("<tds:GetDeviceInformationResponse>"
                                 "<tds:Manufacturer>%s</tds:Manufacturer><tds:Model>%s</tds:Model>"
                                 "<tds:FirmwareVersion>1.0-mock</tds:FirmwareVersion>"
                                 "<tds:SerialNumber>%s</tds:SerialNumber>"
                                 "<tds:HardwareId>onvif-mock</tds:HardwareId>"
                                 "</tds:GetDeviceInformationResponse>",
                                 m, mo, s));
    g_free(m);
    g_free(mo);
    g_free(s);
    return r;
}

static char *service_url(const char *name)
{
    return g_strdup_printf("http://%s:%d/onvif/%s", opt.bind, http_port_bound, name);
}

static reply capabilities(void)
{
    char *dev = service_url("device_service"), *media = service_url("media_service");
    char *ptz = opt.no_ptz ? g_strdup("")
                           : g_strdup_printf("<tt:PTZ><tt:XAddr>http://%s:%d/onvif/ptz_service"
                                             "</tt:XAddr></tt:PTZ>",
                                             opt.bind, http_port_bound);
    reply r = ok(g_strdup_printf(
        "<tds:GetCapabilitiesResponse><tds:Capabilities>"
        "<tt:Device><tt:XAddr>%s</tt:XAddr></tt:Device>"
        "<tt:Media><tt:XAddr>%s</tt:XAddr><tt:StreamingCapabilities>"
        "<tt:RTPMulticast>false</tt:RTPMulticast><tt:RTP_TCP>true</tt:RTP_TCP>"
        "<tt:RTP_RTSP_TCP>true</tt:RTP_RTSP_TCP></tt:StreamingCapabilities></tt:Media>%s"
        "</tds:Capabilities></tds:GetCapabilitiesResponse>",
        dev, media, ptz));
    g_free(dev);
    g_free(media);
    g_free(ptz);
    return r;
}

static reply services(void)
{
    char *dev = service_url("device_service"), *media = service_url("media_service");
    char *ptz = opt.no_ptz ? g_strdup("")
                           : g_strdup_printf("<tds:Service><tds:Namespace>"
                                             "http://www.onvif.org/ver20/ptz/wsdl</tds:Namespace>"
                                             "<tds:XAddr>http://%s:%d/onvif/ptz_service</tds:XAddr>"
                                             "</tds:Service>",
                                             opt.bind, http_port_bound);
    reply r = ok(g_strdup_printf(
        "<tds:GetServicesResponse><tds:Service><tds:Namespace>"
        "http://www.onvif.org/ver10/device/wsdl</tds:Namespace><tds:XAddr>%s</tds:XAddr>"
        "</tds:Service><tds:Service><tds:Namespace>http://www.onvif.org/ver10/media/wsdl"
        "</tds:Namespace><tds:XAddr>%s</tds:XAddr></tds:Service>%s</tds:GetServicesResponse>",
        dev, media, ptz));
    g_free(dev);
    g_free(media);
    g_free(ptz);
    return r;
}

static char *profile_xml(const char *token, const char *name, int w, int h, int ptz)
{
    return g_strdup_printf(
        "<trt:Profiles token=\"%s\" fixed=\"true\"><tt:Name>%s</tt:Name>"
        "<tt:VideoSourceConfiguration token=\"vsc\"><tt:Name>vsc</tt:Name>"
        "<tt:UseCount>2</tt:UseCount><tt:SourceToken>vs</tt:SourceToken>"
        "<tt:Bounds x=\"0\" y=\"0\" width=\"1920\" height=\"1080\"/>"
        "</tt:VideoSourceConfiguration>"
        "<tt:VideoEncoderConfiguration token=\"venc_%s\"><tt:Name>venc_%s</tt:Name>"
        "<tt:UseCount>1</tt:UseCount><tt:Encoding>H264</tt:Encoding>"
        "<tt:Resolution><tt:Width>%d</tt:Width><tt:Height>%d</tt:Height></tt:Resolution>"
        "<tt:Quality>5</tt:Quality></tt:VideoEncoderConfiguration>%s</trt:Profiles>",
        token, name, token, token, w, h,
        ptz ? "<tt:PTZConfiguration token=\"ptz0\"><tt:Name>ptz0</tt:Name>"
              "<tt:UseCount>1</tt:UseCount><tt:NodeToken>ptznode</tt:NodeToken>"
              "</tt:PTZConfiguration>"
            : "");
}

static reply profiles(void)
{
    char *main_p = profile_xml("main", "MainStream", 1920, 1080, !opt.no_ptz);
    char *sub_p = profile_xml("sub", "SubStream", 640, 360, 0);
    reply r = ok(
        g_strdup_printf("<trt:GetProfilesResponse>%s%s</trt:GetProfilesResponse>", main_p, sub_p));
    g_free(main_p);
    g_free(sub_p);
    return r;
}

static reply stream_uri(xmlNode *op)
{
    char *token = text(child(op, "ProfileToken"));
    const char *uri = !strcmp(token, "main")  ? opt.rtsp
                      : !strcmp(token, "sub") ? (opt.rtsp_sub ? opt.rtsp_sub : opt.rtsp)
                                              : NULL;
    g_free(token);
    if (!uri)
        return fault(400, "Sender", "ter:InvalidArgVal", "No such profile");
    char *u = esc(uri);
    reply r = ok(g_strdup_printf("<trt:GetStreamUriResponse><trt:MediaUri><tt:Uri>%s</tt:Uri>"
                                 "<tt:InvalidAfterConnect>false</tt:InvalidAfterConnect>"
                                 "<tt:InvalidAfterReboot>false</tt:InvalidAfterReboot>"
                                 "<tt:Timeout>PT0S</tt:Timeout></trt:MediaUri>"
                                 "</trt:GetStreamUriResponse>",
                                 u));
    g_free(u);
    return r;
}

static double clamp1(double v)
{
    return v < -1 ? -1 : v > 1 ? 1 : v;
}

static reply ptz(xmlNode *op, const char *name)
{
    char *token = text(child(op, "ProfileToken"));
    int known = !strcmp(token, "main") && !opt.no_ptz;
    json_t *line = json_pack("{ssssss}", "event", "ptz", "command", name, "profile", token);
    g_free(token);
    if (!known) {
        json_decref(line);
        return fault(400, "Sender", "ter:InvalidArgVal", "No PTZ profile with this token");
    }
    if (!strcmp(name, "ContinuousMove")) {
        if (opt.move_delay_ms > 0)
            g_usleep((gulong)opt.move_delay_ms * 1000);
        xmlNode *v = child(op, "Velocity"), *pt = child(v, "PanTilt"), *z = child(v, "Zoom");
        int good = 1;
        double x = attr_number(pt, "x", &good), y = attr_number(pt, "y", &good),
               zz = attr_number(z, "x", &good);
        char *timeout = text(child(op, "Timeout"));
        if (!good || fabs(x) > 1 || fabs(y) > 1 || fabs(zz) > 1) {
            g_free(timeout);
            json_decref(line);
            return fault(400, "Sender", "ter:InvalidArgVal", "Velocity out of range");
        }
        json_object_set_new(line, "pan", json_real(x));
        json_object_set_new(line, "tilt", json_real(y));
        json_object_set_new(line, "zoom", json_real(zz));
        json_object_set_new(line, "timeout", *timeout ? json_string(timeout) : json_null());
        g_free(timeout);
        g_mutex_lock(&lock);
        pos[0] = clamp1(pos[0] + x / 10);
        pos[1] = clamp1(pos[1] + y / 10);
        pos[2] = clamp1(pos[2] + zz / 10);
        g_mutex_unlock(&lock);
    } else {
        char *pt = text(child(op, "PanTilt")), *z = text(child(op, "Zoom"));
        json_object_set_new(line, "pan_tilt", json_boolean(!*pt || !strcmp(pt, "true")));
        json_object_set_new(line, "zoom", json_boolean(!*z || !strcmp(z, "true")));
        g_free(pt);
        g_free(z);
    }
    emit(line);
    return ok(g_strdup_printf("<tptz:%sResponse/>", name));
}

static reply ptz_status(void)
{
    char p[3][G_ASCII_DTOSTR_BUF_SIZE];
    g_mutex_lock(&lock);
    for (int i = 0; i < 3; i++)
        g_ascii_formatd(p[i], sizeof p[i], "%.6g", pos[i]);
    g_mutex_unlock(&lock);
    return ok(g_strdup_printf("<tptz:GetStatusResponse><tptz:PTZStatus><tt:Position>"
                              "<tt:PanTilt x=\"%s\" y=\"%s\"/><tt:Zoom x=\"%s\"/></tt:Position>"
                              "</tptz:PTZStatus></tptz:GetStatusResponse>",
                              p[0], p[1], p[2]));
}

/* ---- authentication ---- */

/* NULL when the UsernameToken is right, else why not. */
static const char *auth_problem(xmlNode *root)
{
    xmlNode *tok = child(child(child(root, "Header"), "Security"), "UsernameToken");
    if (!tok)
        return "no UsernameToken";
    char *user = text(child(tok, "Username")), *pw = text(child(tok, "Password"));
    char *nonce64 = text(child(tok, "Nonce")), *created = text(child(tok, "Created"));
    xmlChar *type = xmlGetProp(child(tok, "Password"), (const xmlChar *)"Type");
    const char *why = NULL;
    gsize nlen = 0;
    guchar *nonce = g_base64_decode(nonce64, &nlen);
    GDateTime *c = g_date_time_new_from_iso8601(created, NULL), *now = mock_now();
    if (strcmp(user, opt.user) != 0)
        why = "unknown user";
    else if (!type || !strstr((const char *)type, "#PasswordDigest"))
        why = "not a PasswordDigest";
    else if (!c || ABS(g_date_time_difference(now, c)) > CREATED_WINDOW_S * G_USEC_PER_SEC)
        why = "Created is not within 5 minutes of the camera's clock";
    else {
        GChecksum *sha = g_checksum_new(G_CHECKSUM_SHA1);
        g_checksum_update(sha, nonce, nlen);
        g_checksum_update(sha, (const guchar *)created, strlen(created));
        g_checksum_update(sha, (const guchar *)opt.password, strlen(opt.password));
        guint8 d[20];
        gsize dl = sizeof d;
        g_checksum_get_digest(sha, d, &dl);
        g_checksum_free(sha);
        char *want = g_base64_encode(d, dl);
        if (strcmp(want, pw) != 0)
            why = "wrong password digest";
        g_free(want);
    }
    if (c)
        g_date_time_unref(c);
    g_date_time_unref(now);
    xmlFree(type);
    g_free(nonce);
    g_free(user);
    g_free(pw);
    g_free(nonce64);
    g_free(created);
    return why;
}

/* ---- HTTP ---- */

static reply dispatch(const char *path, const char *body, size_t len)
{
    xmlDoc *doc = xmlReadMemory(body, (int)len, NULL, NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
    xmlNode *op = first_element(child(root, "Body"));
    if (!is(root, "Envelope") || !op) {
        if (doc)
            xmlFreeDoc(doc);
        return fault(400, "Sender", "ter:WellFormed", "Not a SOAP envelope");
    }
    const char *name = (const char *)op->name;
    const char *why = NULL;
    reply r;
    if (opt.user && strcmp(name, "GetSystemDateAndTime") != 0 && (why = auth_problem(root))) {
        emit(json_pack("{ssssss}", "event", "auth_failed", "operation", name, "why", why));
        r = fault(401, "Sender", "ter:NotAuthorized", "Sender not Authorized");
    } else if (!strcmp(path, "/onvif/device_service")) {
        r = !strcmp(name, "GetSystemDateAndTime")   ? system_time()
            : !strcmp(name, "GetDeviceInformation") ? device_information()
            : !strcmp(name, "GetCapabilities")      ? capabilities()
            : !strcmp(name, "GetServices")
                ? services()
                : fault(400, "Sender", "ter:ActionNotSupported", "Not supported by this service");
    } else if (!strcmp(path, "/onvif/media_service")) {
        r = !strcmp(name, "GetProfiles") ? profiles()
            : !strcmp(name, "GetStreamUri")
                ? stream_uri(op)
                : fault(400, "Sender", "ter:ActionNotSupported", "Not supported by this service");
    } else if (!strcmp(path, "/onvif/ptz_service") && !opt.no_ptz) {
        r = !strcmp(name, "ContinuousMove") || !strcmp(name, "Stop") ? ptz(op, name)
            : !strcmp(name, "GetStatus")
                ? ptz_status()
                : fault(400, "Sender", "ter:ActionNotSupported", "Not supported by this service");
    } else {
        r = fault(400, "Sender", "ter:ActionNotSupported", "No such service");
    }
    xmlFreeDoc(doc);
    return r;
}

static const char *status_text(int status)
{
    return status == 200 ? "OK" : status == 401 ? "Unauthorized" : "Bad Request";
}

static void respond(GOutputStream *out, int status, const char *body)
{
    char *full = g_strconcat(ENVELOPE_OPEN, body, ENVELOPE_CLOSE, NULL);
    char *head =
        g_strdup_printf("HTTP/1.1 %d %s\r\nContent-Type: application/soap+xml;"
                        " charset=utf-8\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                        status, status_text(status), strlen(full));
    g_output_stream_write_all(out, head, strlen(head), NULL, NULL, NULL);
    g_output_stream_write_all(out, full, strlen(full), NULL, NULL, NULL);
    g_free(head);
    g_free(full);
}

/* Reads the request line and headers: the path (g_free) and the body's length. */
static char *read_head(GDataInputStream *in, gsize *content_length)
{
    gsize n = 0;
    char *line = g_data_input_stream_read_line(in, &n, NULL, NULL);
    char **parts = line ? g_strsplit(g_strchomp(line), " ", 3) : NULL;
    char *path =
        parts && g_strv_length(parts) == 3 && !strcmp(parts[0], "POST") ? g_strdup(parts[1]) : NULL;
    g_strfreev(parts);
    g_free(line);
    *content_length = 0;
    for (int i = 0; path && i < HEADER_LINES_MAX; i++) {
        line = g_data_input_stream_read_line(in, &n, NULL, NULL);
        if (!line || n > HEADER_LINE_MAX) {
            g_free(line);
            g_free(path);
            return NULL;
        }
        g_strchomp(line);
        if (!*line) {
            g_free(line);
            return path;
        }
        if (!g_ascii_strncasecmp(line, "content-length:", 15))
            *content_length = (gsize)g_ascii_strtoull(line + 15, NULL, 10);
        g_free(line);
    }
    g_free(path);
    return NULL;
}

static gboolean on_connection(GThreadedSocketService *svc, GSocketConnection *conn, GObject *source,
                              gpointer unused)
{
    g_socket_set_timeout(g_socket_connection_get_socket(conn), 10);
    GInputStream *raw = g_io_stream_get_input_stream(G_IO_STREAM(conn));
    GOutputStream *out = g_io_stream_get_output_stream(G_IO_STREAM(conn));
    GDataInputStream *in = g_data_input_stream_new(raw);
    g_filter_input_stream_set_close_base_stream(G_FILTER_INPUT_STREAM(in), FALSE);
    gsize len = 0;
    char *path = read_head(in, &len);
    if (!path || len == 0 || len > REQUEST_MAX) {
        respond(out, 400, "");
    } else {
        char *body = g_malloc(len + 1);
        gsize got = 0;
        if (g_input_stream_read_all(G_INPUT_STREAM(in), body, len, &got, NULL, NULL) &&
            got == len) {
            body[len] = '\0';
            reply r = dispatch(path, body, len);
            respond(out, r.status, r.body);
            g_free(r.body);
        }
        g_free(body);
    }
    g_free(path);
    g_object_unref(in);
    g_io_stream_close(G_IO_STREAM(conn), NULL, NULL);
    return TRUE;
}

/* ---- start-up ---- */

static gboolean on_signal(gpointer loop)
{
    g_main_loop_quit(loop);
    return G_SOURCE_REMOVE;
}

static int parse_args(int argc, char **argv)
{
    GOptionEntry entries[] = {
        {"udp-port", 0, 0, G_OPTION_ARG_INT, &opt.udp_port,
         "WS-Discovery port for unicast Probes (0: any free one)", "PORT"},
        {"http-port", 0, 0, G_OPTION_ARG_INT, &opt.http_port,
         "port of the ONVIF services (0: any free one)", "PORT"},
        {"bind", 0, 0, G_OPTION_ARG_STRING, &opt.bind, "IPv4 address to listen on (127.0.0.1)",
         "ADDR"},
        {"rtsp", 0, 0, G_OPTION_ARG_STRING, &opt.rtsp, "stream URI of the main profile (required)",
         "URL"},
        {"rtsp-sub", 0, 0, G_OPTION_ARG_STRING, &opt.rtsp_sub, "stream URI of the sub profile",
         "URL"},
        {"user", 0, 0, G_OPTION_ARG_STRING, &opt.user, "require this UsernameToken user", "NAME"},
        {"password", 0, 0, G_OPTION_ARG_STRING, &opt.password, "and this password", "PW"},
        {"uuid", 0, 0, G_OPTION_ARG_STRING, &opt.uuid, "endpoint reference UUID", "UUID"},
        {"manufacturer", 0, 0, G_OPTION_ARG_STRING, &opt.manufacturer, "manufacturer", "TEXT"},
        {"model", 0, 0, G_OPTION_ARG_STRING, &opt.model, "model", "TEXT"},
        {"serial", 0, 0, G_OPTION_ARG_STRING, &opt.serial, "serial number", "TEXT"},
        {"no-ptz", 0, 0, G_OPTION_ARG_NONE, &opt.no_ptz, "a fixed camera: no PTZ service", NULL},
        {"clock-offset", 0, 0, G_OPTION_ARG_INT, &opt.clock_offset_s,
         "the camera's clock is this many seconds off", "SECONDS"},
        {"move-delay-ms", 0, 0, G_OPTION_ARG_INT, &opt.move_delay_ms,
         "take this long over each ContinuousMove (a slow camera)", "MS"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    GOptionContext *ctx = g_option_context_new("- a MOCK ONVIF camera for the tests");
    g_option_context_add_main_entries(ctx, entries, NULL);
    GError *err = NULL;
    gboolean parsed = g_option_context_parse(ctx, &argc, &argv, &err);
    g_option_context_free(ctx);
    if (!parsed || !opt.rtsp || (!opt.user != !opt.password)) {
        fprintf(stderr, "onvif-mock: %s\n",
                err ? err->message : "--rtsp is required; --user and --password go together");
        g_clear_error(&err);
        return -1;
    }
    if (!opt.bind)
        opt.bind = g_strdup("127.0.0.1");
    if (!opt.uuid)
        opt.uuid = g_uuid_string_random();
    if (!opt.manufacturer)
        opt.manufacturer = g_strdup("Mock Cameras");
    if (!opt.model)
        opt.model = g_strdup("MOCK-PTZ-1");
    if (!opt.serial)
        opt.serial = g_strdup("MOCK0001");
    return 0;
}

static GSocket *udp_open(GInetAddress *addr, GError **err)
{
    GSocket *s =
        g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, err);
    GSocketAddress *sa = g_inet_socket_address_new(addr, (guint16)opt.udp_port);
    if (s && !g_socket_bind(s, sa, TRUE, err))
        g_clear_object(&s);
    g_object_unref(sa);
    return s;
}

int main(int argc, char **argv)
{
    if (parse_args(argc, argv))
        return 2;
    xmlInitParser();
    GError *err = NULL;
    GInetAddress *addr = g_inet_address_new_from_string(opt.bind);
    GSocket *udp = addr ? udp_open(addr, &err) : NULL;
    GSocketService *svc = g_threaded_socket_service_new(8);
    GSocketAddress *http = addr ? g_inet_socket_address_new(addr, (guint16)opt.http_port) : NULL;
    GSocketAddress *bound = NULL;
    if (!udp || !g_socket_listener_add_address(G_SOCKET_LISTENER(svc), http, G_SOCKET_TYPE_STREAM,
                                               G_SOCKET_PROTOCOL_TCP, NULL, &bound, &err)) {
        fprintf(stderr, "onvif-mock: cannot listen on %s: %s\n", opt.bind,
                err ? err->message : "not an IPv4 address");
        return 1;
    }
    http_port_bound = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
    GSocketAddress *udp_addr = g_socket_get_local_address(udp, NULL);
    int udp_port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(udp_addr));
    g_signal_connect(svc, "run", G_CALLBACK(on_connection), NULL);
    g_socket_service_start(svc);
    GSource *probe = g_socket_create_source(udp, G_IO_IN, NULL);
    g_source_set_callback(probe, G_SOURCE_FUNC(on_probe), NULL, NULL);
    g_source_attach(probe, NULL);
    GMainLoop *loop = g_main_loop_new(NULL, FALSE);
    g_unix_signal_add(SIGINT, on_signal, loop);
    g_unix_signal_add(SIGTERM, on_signal, loop);
    char *url = device_url(), *address = g_strconcat("urn:uuid:", opt.uuid, NULL);
    emit(json_pack("{sssisisssssb}", "event", "ready", "udp_port", udp_port, "http_port",
                   http_port_bound, "device_url", url, "address", address, "ptz", !opt.no_ptz));
    g_main_loop_run(loop);
    g_free(url);
    g_free(address);
    g_socket_service_stop(svc);
    g_source_destroy(probe);
    g_source_unref(probe);
    g_object_unref(udp_addr);
    g_object_unref(bound);
    g_object_unref(http);
    g_object_unref(svc);
    g_object_unref(udp);
    g_object_unref(addr);
    g_main_loop_unref(loop);
    return 0;
}
