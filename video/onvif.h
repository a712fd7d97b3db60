/*
 * onvif.h — an ONVIF client: WS-Discovery of cameras on the network, what
 * a camera is and which streams it offers, and pan/tilt/zoom
 * (video/onvif.c, onvif_soap.c, onvif_discover.c).
 *
 * Every call here blocks (UDP waits, HTTP round trips of a few seconds at
 * most) and runs on a worker (core_work_submit), never on the loop thread.
 * Any thread may call any function; nothing here keeps state between calls.
 *
 * Errors are 0 or a negative CORE_E* code with *why (g_free), a sentence
 * that says what the camera or the network did: CORE_EINVAL (bad argument:
 * a URL, a network), CORE_EIO (the camera did not answer, refused the
 * credentials or answered with a SOAP fault), CORE_ETIMEDOUT, CORE_EPARSE
 * (a reply that is not the SOAP expected), CORE_ETOOBIG (a reply over
 * VID_ONVIF_REPLY_MAX). Credentials never appear in *why or in logs.
 *
 * Authentication is WS-Security UsernameToken with PasswordDigest
 * (Base64(SHA1(nonce + created + password))), and HTTP Digest when the
 * camera asks for it; without a username no credentials are sent.
 */
#ifndef CITYCMD_VIDEO_ONVIF_H
#define CITYCMD_VIDEO_ONVIF_H

#include <glib.h>
#include <stddef.h>

#define VID_ONVIF_REPLY_MAX (1024 * 1024) /* bytes of one SOAP reply */
#define VID_ONVIF_TIMEOUT_MS 4000         /* one HTTP call, connect included */
#define VID_ONVIF_WAIT_DEFAULT_MS 2000    /* how long discovery listens for replies */
#define VID_ONVIF_WAIT_MAX_MS 10000
#define VID_ONVIF_NETWORK_MIN_PREFIX 20 /* the largest network swept: a /20, 4094 hosts */
#define VID_ONVIF_DEVICES_MAX 256       /* devices one discovery reports */
#define VID_ONVIF_PORT 3702             /* WS-Discovery */

typedef struct {
    const char *username, *password; /* NULL or "": none */
    int timeout_ms;                  /* one HTTP call; 0: VID_ONVIF_TIMEOUT_MS */
} vid_onvif_auth;

typedef struct {
    char *token, *name;
    char *stream_uri; /* rtsp://…, or NULL when the camera would not say */
    char *encoding;   /* "H264", "H265", "JPEG" or NULL */
    int width, height;
    int ptz; /* the profile carries a PTZ configuration */
} vid_onvif_profile;

typedef struct {
    char *address;     /* the endpoint reference, e.g. urn:uuid:… */
    GPtrArray *xaddrs; /* char*: device service addresses (http://…/onvif/device_service) */
    char *manufacturer, *model, *serial, *firmware; /* NULL until described */
    char *media_url, *ptz_url;                      /* service addresses; NULL when absent */
    GPtrArray *profiles;                            /* vid_onvif_profile* */
    int ptz;                                        /* a PTZ service and a profile with PTZ */
} vid_onvif_device;

vid_onvif_device *vid_onvif_device_new(const char *address);
void vid_onvif_device_free(vid_onvif_device *d); /* NULL is fine */

/* ---- discovery (onvif_discover.c) ---- */

typedef struct {
    const char *discovery; /* HOST:PORT the Probe goes to (multicast or not); NULL/"": none */
    const char *network;   /* CIDR swept with unicast Probes to the discovery port; NULL/"": none */
    int wait_ms;           /* how long replies are collected; 0: VID_ONVIF_WAIT_DEFAULT_MS */
} vid_onvif_probe;

/* Sends the Probes and collects ProbeMatch replies until wait_ms: *found
 * gets the devices (address and xaddrs only, one per endpoint reference,
 * at most VID_ONVIF_DEVICES_MAX; g_ptr_array_unref frees them). A network
 * larger than /VID_ONVIF_NETWORK_MIN_PREFIX is refused (CORE_EINVAL). */
int vid_onvif_discover(const vid_onvif_probe *p, GPtrArray **found, char **why);
/* The host addresses of an IPv4 CIDR in host byte order: every address
 * but the network and broadcast ones (all of a /31 or /32). 0, or
 * CORE_EINVAL (not a CIDR, or larger than min_prefix) with *why. */
int vid_onvif_cidr_hosts(const char *cidr, int min_prefix, guint32 *first, guint32 *count,
                         char **why);

/* ---- the device (onvif.c) ---- */

/* Asks the device at url (its device service address) what it is
 * (GetDeviceInformation), where its services are (GetCapabilities, else
 * GetServices), its media profiles (GetProfiles) and each profile's RTSP
 * URI (GetStreamUri, RTP-Unicast over RTSP); fills d in. */
int vid_onvif_describe(const char *url, const vid_onvif_auth *auth, vid_onvif_device *d,
                       char **why);
/* ContinuousMove on the device at url: velocities in [-1, 1], timeout_ms
 * (0: none) after which the camera stops by itself. profile: the media
 * profile token, NULL or "": the first profile with a PTZ configuration. */
int vid_onvif_ptz_move(const char *url, const char *profile, const vid_onvif_auth *auth, double pan,
                       double tilt, double zoom, int timeout_ms, char **why);
/* Stop (pan, tilt and zoom) on the device at url. */
int vid_onvif_ptz_stop(const char *url, const char *profile, const vid_onvif_auth *auth,
                       char **why);

/* ---- SOAP (onvif_soap.c): building requests, reading replies ---- */

/* Base64(SHA1(nonce + created + password)) (g_free). */
char *vid_onvif_password_digest(const unsigned char *nonce, size_t nonce_len, const char *created,
                                const char *password);
/* A SOAP 1.2 envelope around body (namespace prefixes tds, trt, tptz, tt
 * declared), with a UsernameToken header when auth has a username (g_free). */
char *vid_onvif_envelope(const char *body, const vid_onvif_auth *auth);
/* The WS-Discovery Probe for NetworkVideoTransmitters with this MessageID (g_free). */
char *vid_onvif_probe_message(const char *message_id);

/* Reply parsers. Each refuses (with *why) a reply over VID_ONVIF_REPLY_MAX
 * (CORE_ETOOBIG), one that is not well-formed XML, carries a DTD or is not a
 * SOAP envelope (CORE_EPARSE), or a SOAP fault (CORE_EIO, naming the
 * fault's code and reason). Elements are matched by local name within
 * their parent, so any namespace prefixes do. */
/* ProbeMatches: appends to devices (vid_onvif_device*) one per match with an
 * address; relates_to (NULL: any) must be the reply's RelatesTo. */
int vid_onvif_parse_probe_matches(const char *xml, size_t len, const char *relates_to,
                                  GPtrArray *devices, char **why);
int vid_onvif_parse_device_information(const char *xml, size_t len, vid_onvif_device *d,
                                       char **why);
/* GetCapabilities or GetServices: media_url and ptz_url. */
int vid_onvif_parse_services(const char *xml, size_t len, vid_onvif_device *d, char **why);
/* GetProfiles: replaces d->profiles (a reply without any is CORE_EPARSE). */
int vid_onvif_parse_profiles(const char *xml, size_t len, vid_onvif_device *d, char **why);
/* GetStreamUri: *uri (g_free), which must be rtsp:// or rtsps://. */
int vid_onvif_parse_stream_uri(const char *xml, size_t len, char **uri, char **why);
/* Any reply whose body only needs to be there (ContinuousMove, Stop). */
int vid_onvif_parse_ok(const char *xml, size_t len, char **why);

#endif
