/*
 * test_onvif.c — the ONVIF client's SOAP (video/onvif_soap.c) and network
 * arithmetic (video/onvif_discover.c): replies shaped as cameras send them
 * (other prefixes, SOAP 1.1 and 1.2 faults), broken and oversized replies,
 * the PasswordDigest against known values, the requests read back as XML.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../core/core.h"
#include "../../video/onvif.h"

#include <arpa/inet.h>
#include <libxml/parser.h>
#include <string.h>

#define ENV_OPEN                                                                                   \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"                                                   \
    "<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://www.w3.org/2003/05/soap-envelope\""                \
    " xmlns:wsa=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\""                              \
    " xmlns:d=\"http://schemas.xmlsoap.org/ws/2005/04/discovery\""                                 \
    " xmlns:tds=\"http://www.onvif.org/ver10/device/wsdl\""                                        \
    " xmlns:trt=\"http://www.onvif.org/ver10/media/wsdl\""                                         \
    " xmlns:tt=\"http://www.onvif.org/ver10/schema\">"
#define ENV_CLOSE "</SOAP-ENV:Envelope>"
#define BODY(x) ENV_OPEN "<SOAP-ENV:Body>" x "</SOAP-ENV:Body>" ENV_CLOSE

static size_t len_of(const char *s)
{
    return strlen(s);
}

/* ---- PasswordDigest ---- */

static void test_password_digest(void **state)
{
    /* The ONVIF Application Programmer's Guide example, checked with
     *   (echo -n LKqI6G/AikKCQrN0zqZFlg== | base64 -d; printf 2010-09-16T07:50:45Z;
     *    printf userpassword) | openssl dgst -sha1 -binary | base64
     * -> tuOSpGlFlIXsozq4HFNeeGeFLEI= */
    gsize n = 0;
    guchar *nonce = g_base64_decode("LKqI6G/AikKCQrN0zqZFlg==", &n);
    char *d = vid_onvif_password_digest(nonce, n, "2010-09-16T07:50:45Z", "userpassword");
    assert_string_equal(d, "tuOSpGlFlIXsozq4HFNeeGeFLEI=");
    g_free(d);
    g_free(nonce);
    /* (printf nonce-0123456789; printf 2024-01-01T12:00:00Z; printf secret)
     *   | openssl dgst -sha1 -binary | base64 -> Mos+SvRHYWpnmUK0pCzj8Zlo+5c= */
    d = vid_onvif_password_digest((const unsigned char *)"nonce-0123456789", 16,
                                  "2024-01-01T12:00:00Z", "secret");
    assert_string_equal(d, "Mos+SvRHYWpnmUK0pCzj8Zlo+5c=");
    g_free(d);
}

/* The envelope is well-formed XML; the token carries a digest that
 * verifies against its own nonce and Created; no password in clear. */
static void test_envelope_with_token(void **state)
{
    vid_onvif_auth auth = {"ad<min", "pa&ss \"word\"", 0};
    char *env = vid_onvif_envelope("<tds:GetDeviceInformation/>", &auth);
    assert_null(strstr(env, "pa&ss"));
    assert_null(strstr(env, "pa&amp;ss"));
    xmlDoc *doc = xmlReadMemory(env, (int)strlen(env), NULL, NULL, XML_PARSE_NONET);
    assert_non_null(doc);
    xmlChar *user = NULL, *pw = NULL, *nonce64 = NULL, *created = NULL;
    for (xmlNode *n = xmlDocGetRootElement(doc)->children; n; n = n->next)
        for (xmlNode *sec = n->children; sec; sec = sec->next)
            for (xmlNode *tok = sec->children; tok; tok = tok->next)
                for (xmlNode *f = tok->children; f; f = f->next) {
                    const char *name = (const char *)f->name;
                    if (!strcmp(name, "Username"))
                        user = xmlNodeGetContent(f);
                    else if (!strcmp(name, "Password"))
                        pw = xmlNodeGetContent(f);
                    else if (!strcmp(name, "Nonce"))
                        nonce64 = xmlNodeGetContent(f);
                    else if (!strcmp(name, "Created"))
                        created = xmlNodeGetContent(f);
                }
    assert_non_null(user);
    assert_string_equal((char *)user, "ad<min");
    assert_non_null(pw);
    assert_non_null(nonce64);
    assert_non_null(created);
    assert_int_equal(strlen((char *)created), 20); /* 2024-01-01T12:00:00Z */
    gsize n = 0;
    guchar *nonce = g_base64_decode((char *)nonce64, &n);
    assert_int_equal(n, 16);
    char *want = vid_onvif_password_digest(nonce, n, (char *)created, "pa&ss \"word\"");
    assert_string_equal((char *)pw, want);
    g_free(want);
    g_free(nonce);
    xmlFree(user);
    xmlFree(pw);
    xmlFree(nonce64);
    xmlFree(created);
    xmlFreeDoc(doc);
    g_free(env);
    /* No username: no header at all. */
    vid_onvif_auth none = {"", "x", 0};
    env = vid_onvif_envelope("<tds:GetDeviceInformation/>", &none);
    assert_null(strstr(env, "Security"));
    g_free(env);
}

static void test_probe_message(void **state)
{
    char *m = vid_onvif_probe_message("urn:uuid:1234");
    xmlDoc *doc = xmlReadMemory(m, (int)strlen(m), NULL, NULL, XML_PARSE_NONET);
    assert_non_null(doc);
    xmlFreeDoc(doc);
    assert_non_null(strstr(m, "<a:MessageID>urn:uuid:1234</a:MessageID>"));
    assert_non_null(strstr(m, "dn:NetworkVideoTransmitter"));
    g_free(m);
}

/* ---- ProbeMatches ---- */

#define PROBE_MATCHES(rel, matches)                                                                \
    ENV_OPEN "<SOAP-ENV:Header><wsa:MessageID>urn:uuid:ffff</wsa:MessageID>"                       \
             "<wsa:RelatesTo>" rel "</wsa:RelatesTo></SOAP-ENV:Header>"                            \
             "<SOAP-ENV:Body><d:ProbeMatches>" matches                                             \
             "</d:ProbeMatches></SOAP-ENV:Body>" ENV_CLOSE

static void test_probe_matches(void **state)
{
    const char *xml = PROBE_MATCHES(
        "urn:uuid:1234",
        "<d:ProbeMatch><wsa:EndpointReference><wsa:Address>urn:uuid:cam-1</wsa:Address>"
        "</wsa:EndpointReference><d:Types>dn:NetworkVideoTransmitter tds:Device</d:Types>"
        "<d:XAddrs>http://10.0.0.5/onvif/device_service "
        "http://[fe80::1]/onvif/device_service ftp://10.0.0.5/x</d:XAddrs></d:ProbeMatch>"
        "<d:ProbeMatch><d:XAddrs>http://10.0.0.6/onvif/device_service</d:XAddrs>"
        "</d:ProbeMatch>" /* no address: dropped */
        "<d:ProbeMatch><wsa:EndpointReference><wsa:Address> urn:uuid:cam-2 </wsa:Address>"
        "</wsa:EndpointReference><d:XAddrs>https://10.0.0.7:8443/onvif/device_service</d:XAddrs>"
        "</d:ProbeMatch>");
    GPtrArray *found = g_ptr_array_new_with_free_func((GDestroyNotify)vid_onvif_device_free);
    char *why = NULL;
    assert_int_equal(vid_onvif_parse_probe_matches(xml, len_of(xml), "urn:uuid:1234", found, &why),
                     0);
    assert_int_equal(found->len, 2);
    vid_onvif_device *a = found->pdata[0], *b = found->pdata[1];
    assert_string_equal(a->address, "urn:uuid:cam-1");
    assert_int_equal(a->xaddrs->len, 2); /* the ftp:// one is not an ONVIF address */
    assert_string_equal(a->xaddrs->pdata[0], "http://10.0.0.5/onvif/device_service");
    assert_string_equal(b->address, "urn:uuid:cam-2");
    assert_string_equal(b->xaddrs->pdata[0], "https://10.0.0.7:8443/onvif/device_service");
    /* A reply to another probe is ignored. */
    g_ptr_array_set_size(found, 0);
    assert_int_equal(vid_onvif_parse_probe_matches(xml, len_of(xml), "urn:uuid:other", found, &why),
                     0);
    assert_int_equal(found->len, 0);
    /* Not ProbeMatches at all. */
    const char *hello = BODY("<d:Hello/>");
    assert_int_equal(vid_onvif_parse_probe_matches(hello, len_of(hello), NULL, found, &why),
                     CORE_EPARSE);
    assert_non_null(strstr(why, "ProbeMatches"));
    g_free(why);
    g_ptr_array_unref(found);
}

/* ---- the device ---- */

static void test_device_information(void **state)
{
    const char *xml = BODY("<tds:GetDeviceInformationResponse><tds:Manufacturer> ACME "
                           "</tds:Manufacturer><tds:Model>PTZ-9000</tds:Model>"
                           "<tds:FirmwareVersion>5.1</tds:FirmwareVersion>"
                           "<tds:SerialNumber>SN&amp;42</tds:SerialNumber>"
                           "<tds:HardwareId>x</tds:HardwareId></tds:GetDeviceInformationResponse>");
    vid_onvif_device *d = vid_onvif_device_new("urn:uuid:x");
    char *why = NULL;
    assert_int_equal(vid_onvif_parse_device_information(xml, len_of(xml), d, &why), 0);
    assert_string_equal(d->manufacturer, "ACME");
    assert_string_equal(d->model, "PTZ-9000");
    assert_string_equal(d->serial, "SN&42");
    assert_string_equal(d->firmware, "5.1");
    vid_onvif_device_free(d);
}

static void test_capabilities_and_services(void **state)
{
    const char *caps =
        BODY("<tds:GetCapabilitiesResponse><tds:Capabilities>"
             "<tt:Device><tt:XAddr>http://10.0.0.5/onvif/device_service</tt:XAddr></tt:Device>"
             "<tt:Media><tt:XAddr>http://10.0.0.5/onvif/Media</tt:XAddr></tt:Media>"
             "<tt:PTZ><tt:XAddr>http://10.0.0.5/onvif/PTZ</tt:XAddr></tt:PTZ>"
             "</tds:Capabilities></tds:GetCapabilitiesResponse>");
    vid_onvif_device *d = vid_onvif_device_new("urn:uuid:x");
    char *why = NULL;
    assert_int_equal(vid_onvif_parse_services(caps, len_of(caps), d, &why), 0);
    assert_string_equal(d->media_url, "http://10.0.0.5/onvif/Media");
    assert_string_equal(d->ptz_url, "http://10.0.0.5/onvif/PTZ");
    const char *services =
        BODY("<tds:GetServicesResponse><tds:Service><tds:Namespace>"
             "http://www.onvif.org/ver10/media/wsdl</tds:Namespace>"
             "<tds:XAddr>http://10.0.0.9/media</tds:XAddr></tds:Service>"
             "<tds:Service><tds:Namespace>http://www.onvif.org/ver10/events/wsdl</tds:Namespace>"
             "<tds:XAddr>http://10.0.0.9/events</tds:XAddr></tds:Service>"
             "</tds:GetServicesResponse>");
    assert_int_equal(vid_onvif_parse_services(services, len_of(services), d, &why), 0);
    assert_string_equal(d->media_url, "http://10.0.0.9/media");
    assert_null(d->ptz_url); /* a fixed camera */
    const char *neither = BODY("<tds:GetScopesResponse/>");
    assert_int_equal(vid_onvif_parse_services(neither, len_of(neither), d, &why), CORE_EPARSE);
    g_free(why);
    vid_onvif_device_free(d);
}

static void test_profiles(void **state)
{
    const char *xml = BODY(
        "<trt:GetProfilesResponse>"
        "<trt:Profiles token=\"Profile_1\" fixed=\"true\"><tt:Name>mainStream</tt:Name>"
        "<tt:VideoEncoderConfiguration token=\"VideoEncoder_1\"><tt:Name>v</tt:Name>"
        "<tt:Encoding>H264</tt:Encoding><tt:Resolution><tt:Width>2560</tt:Width>"
        "<tt:Height>1440</tt:Height></tt:Resolution></tt:VideoEncoderConfiguration>"
        "<tt:PTZConfiguration token=\"PTZ\"><tt:NodeToken>n</tt:NodeToken></tt:PTZConfiguration>"
        "</trt:Profiles>"
        "<trt:Profiles><tt:Name>no token: unusable</tt:Name></trt:Profiles>"
        "<trt:Profiles token=\"Profile_2\"><tt:Name>subStream</tt:Name>"
        "<tt:VideoEncoderConfiguration><tt:Encoding>H265</tt:Encoding><tt:Resolution>"
        "<tt:Width>abc</tt:Width><tt:Height>-5</tt:Height></tt:Resolution>"
        "</tt:VideoEncoderConfiguration></trt:Profiles>"
        "</trt:GetProfilesResponse>");
    vid_onvif_device *d = vid_onvif_device_new("urn:uuid:x");
    char *why = NULL;
    assert_int_equal(vid_onvif_parse_profiles(xml, len_of(xml), d, &why), 0);
    assert_int_equal(d->profiles->len, 2);
    vid_onvif_profile *p = d->profiles->pdata[0], *q = d->profiles->pdata[1];
    assert_string_equal(p->token, "Profile_1");
    assert_string_equal(p->name, "mainStream");
    assert_string_equal(p->encoding, "H264");
    assert_int_equal(p->width, 2560);
    assert_int_equal(p->height, 1440);
    assert_true(p->ptz);
    assert_string_equal(q->token, "Profile_2");
    assert_string_equal(q->encoding, "H265");
    assert_int_equal(q->width, 0); /* not a number: unknown */
    assert_int_equal(q->height, 0);
    assert_false(q->ptz);
    const char *none = BODY("<trt:GetProfilesResponse/>");
    assert_int_equal(vid_onvif_parse_profiles(none, len_of(none), d, &why), CORE_EPARSE);
    assert_non_null(strstr(why, "profile"));
    g_free(why);
    assert_int_equal(d->profiles->len, 2); /* kept on failure */
    vid_onvif_device_free(d);
}

static void test_stream_uri(void **state)
{
    const char *xml = BODY("<trt:GetStreamUriResponse><trt:MediaUri>"
                           "<tt:Uri>rtsp://10.0.0.5:554/Streaming/Channels/101?transportmode="
                           "unicast&amp;profile=Profile_1</tt:Uri>"
                           "<tt:InvalidAfterConnect>false</tt:InvalidAfterConnect>"
                           "</trt:MediaUri></trt:GetStreamUriResponse>");
    char *uri = NULL, *why = NULL;
    assert_int_equal(vid_onvif_parse_stream_uri(xml, len_of(xml), &uri, &why), 0);
    assert_string_equal(uri, "rtsp://10.0.0.5:554/Streaming/Channels/101?transportmode=unicast"
                             "&profile=Profile_1");
    g_free(uri);
    const char *http = BODY("<trt:GetStreamUriResponse><trt:MediaUri><tt:Uri>http://x/y</tt:Uri>"
                            "</trt:MediaUri></trt:GetStreamUriResponse>");
    assert_int_equal(vid_onvif_parse_stream_uri(http, len_of(http), &uri, &why), CORE_EPARSE);
    assert_null(uri);
    assert_non_null(strstr(why, "rtsp://"));
    g_free(why);
}

/* ---- what goes wrong ---- */

static void test_faults(void **state)
{
    /* SOAP 1.2, as most cameras: the innermost Subcode is the reason. */
    const char *f12 = BODY("<SOAP-ENV:Fault><SOAP-ENV:Code><SOAP-ENV:Value>SOAP-ENV:Sender"
                           "</SOAP-ENV:Value><SOAP-ENV:Subcode><SOAP-ENV:Value>ter:NotAuthorized"
                           "</SOAP-ENV:Value></SOAP-ENV:Subcode></SOAP-ENV:Code><SOAP-ENV:Reason>"
                           "<SOAP-ENV:Text xml:lang=\"en\">Sender not Authorized</SOAP-ENV:Text>"
                           "</SOAP-ENV:Reason></SOAP-ENV:Fault>");
    char *why = NULL;
    vid_onvif_device *d = vid_onvif_device_new("urn:uuid:x");
    assert_int_equal(vid_onvif_parse_device_information(f12, len_of(f12), d, &why), CORE_EIO);
    assert_string_equal(why, "the camera answered with a SOAP fault: ter:NotAuthorized"
                             " (Sender not Authorized)");
    g_free(why);
    assert_null(d->manufacturer);
    /* SOAP 1.1 (older firmware), another prefix. */
    const char *f11 =
        "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\">"
        "<s:Body><s:Fault><faultcode>s:Client</faultcode>"
        "<faultstring>Action not supported\n\t(really)</faultstring></s:Fault></s:Body>"
        "</s:Envelope>";
    assert_int_equal(vid_onvif_parse_ok(f11, len_of(f11), &why), CORE_EIO);
    assert_non_null(strstr(why, "s:Client (Action not supported"));
    assert_null(strchr(why, '\n')); /* control characters never reach a message */
    g_free(why);
    vid_onvif_device_free(d);
}

static void test_malformed(void **state)
{
    static const char *const bad[] = {
        "",
        "not xml at all",
        "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Body>",
        "<html><body>404 Not Found</body></html>",
        "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"/>",
        "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 "
        "\"&lol;&lol;&lol;&lol;\">]><s:Envelope xmlns:s=\"x\"><s:Body>&lol2;</s:Body></s:Envelope>",
        "<?xml version=\"1.0\"?><!DOCTYPE x SYSTEM \"http://example.com/x.dtd\"><x/>",
        "\xff\xfe<bad encoding/>",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        char *why = NULL, *uri = NULL;
        int rc = vid_onvif_parse_stream_uri(bad[i], strlen(bad[i]), &uri, &why);
        assert_int_equal(rc, CORE_EPARSE);
        assert_non_null(why);
        assert_null(uri);
        g_free(why);
    }
    /* A NULL why is allowed. */
    assert_int_equal(vid_onvif_parse_ok("junk", 4, NULL), CORE_EPARSE);
    /* A body without the expected response. */
    const char *other = BODY("<trt:GetProfilesResponse/>");
    char *why = NULL;
    vid_onvif_device *d = vid_onvif_device_new("urn:uuid:x");
    assert_int_equal(vid_onvif_parse_device_information(other, len_of(other), d, &why),
                     CORE_EPARSE);
    assert_non_null(strstr(why, "GetDeviceInformationResponse"));
    g_free(why);
    vid_onvif_device_free(d);
}

static void test_huge_reply(void **state)
{
    /* Well-formed and valid, only too large: refused before parsing. */
    GString *s = g_string_new(ENV_OPEN "<SOAP-ENV:Body><tds:GetDeviceInformationResponse>"
                                       "<tds:Manufacturer>");
    while (s->len <= VID_ONVIF_REPLY_MAX)
        g_string_append(s, "ACME ACME ACME ACME ACME ACME ACME ACME ");
    g_string_append(
        s, "</tds:Manufacturer></tds:GetDeviceInformationResponse></SOAP-ENV:Body>" ENV_CLOSE);
    vid_onvif_device *d = vid_onvif_device_new("urn:uuid:x");
    char *why = NULL;
    assert_int_equal(vid_onvif_parse_device_information(s->str, s->len, d, &why), CORE_ETOOBIG);
    assert_non_null(strstr(why, "1 MiB"));
    g_free(why);
    assert_null(d->manufacturer);
    /* Just under the limit it parses, and a long text is cut to a bounded size. */
    g_string_truncate(s, 0);
    g_string_append(s, ENV_OPEN "<SOAP-ENV:Body><tds:GetDeviceInformationResponse>"
                                "<tds:Manufacturer>");
    while (s->len < VID_ONVIF_REPLY_MAX - 1000)
        g_string_append(s, "ACMEé");
    g_string_append(
        s, "</tds:Manufacturer></tds:GetDeviceInformationResponse></SOAP-ENV:Body>" ENV_CLOSE);
    assert_int_equal(vid_onvif_parse_device_information(s->str, s->len, d, &why), 0);
    assert_non_null(d->manufacturer);
    assert_true(strlen(d->manufacturer) <= 256);
    assert_true(g_utf8_validate(d->manufacturer, -1, NULL));
    vid_onvif_device_free(d);
    g_string_free(s, TRUE);
}

/* ---- networks ---- */

static void test_cidr(void **state)
{
    guint32 first = 0, count = 0;
    char *why = NULL;
    assert_int_equal(vid_onvif_cidr_hosts("192.168.1.0/24", 20, &first, &count, &why), 0);
    assert_int_equal(first, ntohl(inet_addr("192.168.1.1")));
    assert_int_equal(count, 254);
    /* Host bits are ignored: the network of the address. */
    assert_int_equal(vid_onvif_cidr_hosts("10.1.2.77/28", 20, &first, &count, &why), 0);
    assert_int_equal(first, ntohl(inet_addr("10.1.2.65")));
    assert_int_equal(count, 14);
    assert_int_equal(vid_onvif_cidr_hosts("127.0.0.1/32", 20, &first, &count, &why), 0);
    assert_int_equal(first, ntohl(inet_addr("127.0.0.1")));
    assert_int_equal(count, 1);
    assert_int_equal(vid_onvif_cidr_hosts("10.0.0.7/31", 20, &first, &count, &why), 0);
    assert_int_equal(first, ntohl(inet_addr("10.0.0.6")));
    assert_int_equal(count, 2);
    /* The largest allowed: a /20, 4094 hosts. */
    assert_int_equal(vid_onvif_cidr_hosts("172.16.0.0/20", 20, &first, &count, &why), 0);
    assert_int_equal(count, 4094);
    /* Larger is refused, saying so. */
    assert_int_equal(vid_onvif_cidr_hosts("172.16.0.0/19", 20, &first, &count, &why), CORE_EINVAL);
    assert_non_null(strstr(why, "larger than /20"));
    g_free(why);
    assert_int_equal(vid_onvif_cidr_hosts("0.0.0.0/0", 20, &first, &count, &why), CORE_EINVAL);
    g_free(why);
    static const char *const bad[] = {"",          "10.0.0.0",     "10.0.0.0/",   "10.0.0.0/33",
                                      "10.0.0/24", "10.0.0.0/2x",  "10.0.0.0/-1", "::1/128",
                                      "/24",       "999.0.0.0/24", "10.0.0.0/ 24"};
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        why = NULL;
        assert_int_equal(vid_onvif_cidr_hosts(bad[i], 20, &first, &count, &why), CORE_EINVAL);
        assert_non_null(strstr(why, "IPv4 network"));
        g_free(why);
    }
    assert_int_equal(vid_onvif_cidr_hosts(NULL, 20, &first, &count, &why), CORE_EINVAL);
    g_free(why);
}

static void test_discover_refuses(void **state)
{
    GPtrArray *found = NULL;
    char *why = NULL;
    vid_onvif_probe p = {"127.0.0.1:3702", "10.0.0.0/8", 100};
    assert_int_equal(vid_onvif_discover(&p, &found, &why), CORE_EINVAL);
    assert_null(found);
    assert_non_null(strstr(why, "larger than /20"));
    g_free(why);
    vid_onvif_probe nothing = {"", NULL, 100};
    assert_int_equal(vid_onvif_discover(&nothing, &found, &why), CORE_EINVAL);
    g_free(why);
    vid_onvif_probe noport = {"127.0.0.1", NULL, 100};
    assert_int_equal(vid_onvif_discover(&noport, &found, &why), CORE_EINVAL);
    assert_non_null(strstr(why, "HOST:PORT"));
    g_free(why);
}

static void test_ptz_refuses_bad_values(void **state)
{
    char *why = NULL;
    /* Checked before any network traffic. */
    assert_int_equal(vid_onvif_ptz_move("http://127.0.0.1:1/onvif/device_service", NULL, NULL, 1.5,
                                        0, 0, 0, &why),
                     CORE_EINVAL);
    g_free(why);
    assert_int_equal(vid_onvif_ptz_move("http://127.0.0.1:1/onvif/device_service", NULL, NULL, 0, 0,
                                        0, -1, &why),
                     CORE_EINVAL);
    g_free(why);
    assert_int_equal(vid_onvif_ptz_stop("rtsp://127.0.0.1/x", NULL, NULL, &why), CORE_EINVAL);
    g_free(why);
    /* Nothing listens on port 1: a clear transport error, no crash. */
    assert_int_equal(vid_onvif_ptz_stop("http://127.0.0.1:1/onvif/device_service", "p", NULL, &why),
                     CORE_EIO);
    assert_non_null(strstr(why, "cannot connect"));
    g_free(why);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_password_digest),
        cmocka_unit_test(test_envelope_with_token),
        cmocka_unit_test(test_probe_message),
        cmocka_unit_test(test_probe_matches),
        cmocka_unit_test(test_device_information),
        cmocka_unit_test(test_capabilities_and_services),
        cmocka_unit_test(test_profiles),
        cmocka_unit_test(test_stream_uri),
        cmocka_unit_test(test_faults),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_huge_reply),
        cmocka_unit_test(test_cidr),
        cmocka_unit_test(test_discover_refuses),
        cmocka_unit_test(test_ptz_refuses_bad_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
