/*
 * cameras_check.c — a camera's fields as a client sends them, checked and
 * put into stored form (cameras_internal.h). Pure apart from the list of
 * known agencies; loop thread.
 *
 * Every field is checked on its own, so the answer names the first one
 * that is wrong; unknown fields are refused (a misspelt "fov_deg" would
 * otherwise be dropped without a word), while the read-only ones of a reply
 * (id, credentials, times) may come back and are ignored. Credentials are
 * length- and character-checked only, and an RTSP URL must not carry them.
 */
#include "cameras_internal.h"

#include "../core/auth.h"
#include "../core/core.h"

#include <glib.h>
#include <math.h>
#include <string.h>

#define NAME_MAX_BYTES 100
#define URL_MAX_BYTES 2048
#define CREDENTIAL_MAX_BYTES 256
#define HEIGHT_MAX_M 1000.0
#define PROFILE_MAX_BYTES 64 /* an ONVIF ReferenceToken */

/* Every field of a camera a client may set, and the ones it may send back
 * unchanged from a reply (ignored). */
const char *const vid__camera_fields[] = {
    "name",     "agency",   "lon",      "lat", "height_m", "heading",   "fov",           "range_m",
    "rtsp_url", "username", "password", "ptz", "codec",    "onvif_url", "onvif_profile", NULL};
static const char *const read_only[] = {"id", "credentials", "created_at", "updated_at", NULL};
static const char *const required[] = {"name",   "heading", "fov", "rtsp_url",
                                       "agency", "lon",     "lat", NULL};

int vid__refuse(char **field, char **message, const char *f, char *msg)
{
    *field = g_strdup(f);
    *message = msg;
    return CORE_EINVAL;
}

/* ---- checks ---- */

static int has_control(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 1;
    return 0;
}

/* Why an RTSP URL is refused, or NULL. */
static const char *url_problem(const char *u)
{
    if (strlen(u) > URL_MAX_BYTES)
        return "an rtsp:// or rtsps:// URL of up to 2048 bytes";
    for (const unsigned char *p = (const unsigned char *)u; *p; p++)
        if (*p <= 0x20 || *p == 0x7f)
            return "an rtsp:// or rtsps:// URL without spaces or control characters";
    GUri *uri = g_uri_parse(u, G_URI_FLAGS_NONE, NULL);
    const char *why = NULL;
    if (!uri ||
        (g_ascii_strcasecmp(g_uri_get_scheme(uri), "rtsp") != 0 &&
         g_ascii_strcasecmp(g_uri_get_scheme(uri), "rtsps") != 0) ||
        !g_uri_get_host(uri) || !*g_uri_get_host(uri))
        why = "an rtsp:// or rtsps:// URL with a host";
    else if (g_uri_get_userinfo(uri))
        why = "a URL without user or password: give them as username and password";
    if (uri)
        g_uri_unref(uri);
    return why;
}

/* Why an ONVIF device address is refused, or NULL. */
static const char *onvif_url_problem(const char *u)
{
    const char *want = "an http:// or https:// ONVIF device service address of up to 2048 bytes,"
                       " without user or password";
    if (strlen(u) > URL_MAX_BYTES || has_control(u) || strchr(u, ' '))
        return want;
    GUri *uri = g_uri_parse(u, G_URI_FLAGS_NONE, NULL);
    int ok = uri &&
             (!g_ascii_strcasecmp(g_uri_get_scheme(uri), "http") ||
              !g_ascii_strcasecmp(g_uri_get_scheme(uri), "https")) &&
             g_uri_get_host(uri) && *g_uri_get_host(uri) && !g_uri_get_userinfo(uri);
    if (uri)
        g_uri_unref(uri);
    return ok ? NULL : want;
}

/* Checks onvif_url and onvif_profile ("" or null: none). */
static int check_onvif(const char *k, json_t *v, json_t *out, char **field, char **message)
{
    const char *s = json_string_value(v);
    if (!json_is_null(v) && !s)
        return vid__refuse(field, message, k, g_strdup("text, or null"));
    if (!strcmp(k, "onvif_url") && s && *s && onvif_url_problem(s))
        return vid__refuse(field, message, k, g_strdup(onvif_url_problem(s)));
    if (!strcmp(k, "onvif_profile") && s &&
        (strlen(s) > PROFILE_MAX_BYTES || has_control(s) || !g_utf8_validate(s, -1, NULL)))
        return vid__refuse(field, message, k,
                           g_strdup("an ONVIF profile token of up to 64 bytes, or null"));
    json_object_set_new(out, k, json_string(s ? s : ""));
    return 0;
}

/* A number within [min, max] (min excluded when open). */
static int number_in(const json_t *v, double min, int open, double max, double *out)
{
    if (!json_is_number(v))
        return 0;
    double d = json_number_value(v);
    if (!isfinite(d) || d > max || d < min || (open && d == min))
        return 0;
    *out = d;
    return 1;
}

static int listed(const char *const *list, const char *k)
{
    return g_strv_contains(list, k);
}

/* Checks one field and puts its stored form into out. */
static int check_field(const vid_cameras *c, const char *k, json_t *v, json_t *out, char **field,
                       char **message)
{
    double d = 0;
    const char *s = json_string_value(v);
    if (strcmp(k, "name") == 0) {
        char *t = s ? g_strstrip(g_strdup(s)) : NULL;
        int ok = t && *t && strlen(t) <= NAME_MAX_BYTES && !has_control(t);
        if (ok)
            json_object_set_new(out, k, json_string(t));
        g_free(t);
        return ok ? 0
                  : vid__refuse(field, message, k, g_strdup("a name of 1 to 100 bytes of text"));
    }
    if (strcmp(k, "agency") == 0) {
        if (!s || !core_agency_known(c->agencies, s))
            return vid__refuse(field, message, k,
                               g_strdup_printf("a known agency (%s)", c->agencies));
        json_object_set(out, k, v);
        return 0;
    }
    if (strcmp(k, "lon") == 0 || strcmp(k, "lat") == 0) {
        int lat = k[1] == 'a';
        if (!number_in(v, lat ? -VID_LAT_MAX : -180, 0, lat ? VID_LAT_MAX : 180, &d))
            return vid__refuse(field, message, k,
                               g_strdup(lat ? "latitude in degrees, -85 to 85"
                                            : "longitude in degrees, -180 to 180"));
        json_object_set_new(out, k, json_real(d));
        return 0;
    }
    if (strcmp(k, "height_m") == 0) {
        if (!number_in(v, 0, 0, HEIGHT_MAX_M, &d))
            return vid__refuse(field, message, k,
                               g_strdup("the mounting height in metres, 0 to 1000"));
        json_object_set_new(out, k, json_real(d));
        return 0;
    }
    if (strcmp(k, "heading") == 0) {
        if (!number_in(v, 0, 0, 360, &d))
            return vid__refuse(field, message, k,
                               g_strdup("degrees clockwise from north, 0 to 360"));
        json_object_set_new(out, k, json_real(d == 360 ? 0 : d));
        return 0;
    }
    if (strcmp(k, "fov") == 0) {
        if (!number_in(v, 0, 1, 360, &d))
            return vid__refuse(field, message, k,
                               g_strdup("the horizontal field of view in degrees,"
                                        " more than 0 and at most 360"));
        json_object_set_new(out, k, json_real(d));
        return 0;
    }
    if (strcmp(k, "range_m") == 0) {
        if (!number_in(v, 0, 1, VID_RANGE_MAX_M, &d))
            return vid__refuse(field, message, k,
                               g_strdup("how far the camera sees, in metres: more than 0,"
                                        " at most 5000"));
        json_object_set_new(out, k, json_real(d));
        return 0;
    }
    if (strcmp(k, "rtsp_url") == 0) {
        const char *why = s ? url_problem(s) : "an rtsp:// or rtsps:// URL";
        if (why)
            return vid__refuse(field, message, k, g_strdup(why));
        json_object_set(out, k, v);
        return 0;
    }
    if (strcmp(k, "username") == 0 || strcmp(k, "password") == 0) {
        if (!json_is_null(v) &&
            (!s || strlen(s) > CREDENTIAL_MAX_BYTES || has_control(s) || strchr(s, '\n')))
            return vid__refuse(
                field, message, k,
                g_strdup("text of up to 256 bytes without control characters, or null"));
        json_object_set_new(out, k, json_string(s ? s : ""));
        return 0;
    }
    if (strcmp(k, "ptz") == 0) {
        if (!json_is_boolean(v))
            return vid__refuse(field, message, k,
                               g_strdup("true when the camera can pan, tilt and zoom"));
        json_object_set(out, k, v);
        return 0;
    }
    if (strcmp(k, "onvif_url") == 0 || strcmp(k, "onvif_profile") == 0)
        return check_onvif(k, v, out, field, message);
    /* codec */
    if (!json_is_null(v) && !(s && (!*s || !strcmp(s, "h264") || !strcmp(s, "h265"))))
        return vid__refuse(field, message, k, g_strdup("h264, h265 or null"));
    json_object_set_new(out, k, json_string(s ? s : ""));
    return 0;
}

int vid__camera_check(const vid_cameras *c, const json_t *body, int create, json_t **out,
                      char **field, char **message)
{
    *out = NULL;
    if (!json_is_object(body))
        return vid__refuse(field, message, "", g_strdup("a JSON object"));
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)body, k, v)
    {
        if (!listed(vid__camera_fields, k) && !listed(read_only, k))
            return vid__refuse(field, message, k,
                               g_strdup_printf("'%.40s' is not a field of a camera", k));
    }
    for (const char *const *r = required; create && *r; r++)
        if (!json_object_get(body, *r))
            return vid__refuse(field, message, *r, g_strdup_printf("%s is required", *r));
    json_t *o = json_object();
    for (const char *const *f = vid__camera_fields; *f; f++) {
        json_t *given = json_object_get(body, *f);
        if (!given)
            continue;
        int rc = check_field(c, *f, given, o, field, message);
        if (rc) {
            json_decref(o);
            return rc;
        }
    }
    if (create) {
        json_t *defaults = json_pack("{sfsfsssssssbssss}", "height_m", 0.0, "range_m",
                                     VID_RANGE_DEFAULT_M, "username", "", "password", "", "codec",
                                     "", "ptz", 0, "onvif_url", "", "onvif_profile", "");
        json_object_update_missing(o, defaults);
        json_decref(defaults);
    }
    *out = o;
    return 0;
}
