/*
 * gps_osmand.c — the OsmAnd protocol: one position per HTTP request, sent by
 * phone apps (the Traccar Client, OsmAnd's own tracker) and many gateways.
 *
 * The query form (GET or a form-encoded POST body), as Traccar's
 * OsmAndProtocolDecoder reads it: id or deviceid, lat, lon, timestamp,
 * speed in knots, bearing or heading, altitude, accuracy, batt (percent),
 * valid. Empty values count as absent, unknown parameters are ignored, and
 * for a repeated one the last value counts. timestamp comes in four forms:
 * unix seconds, unix milliseconds (any number from 2^31 - 1 up), "yyyy-MM-dd
 * HH:mm:ss" and ISO 8601 with or without an offset; a time without an offset
 * is UTC (Traccar takes the server's zone; ours is UTC). Without a timestamp
 * the fix is stamped with the time of receipt. A '+' in an offset that the
 * client did not percent-encode has become a space; it is put back.
 *
 * The JSON form is what the current Traccar Client apps send (Content-Type
 * application/json), read as Traccar's OsmAndProtocolDecoder.decodeJson does:
 *   {"device_id": "…", "location": {"timestamp": "2024-05-01T10:00:00.000Z",
 *     "coords": {"latitude": …, "longitude": …, "speed": m/s, "heading": deg,
 *                "altitude": m, "accuracy": m},
 *     "battery": {"level": 0..1, "is_charging": bool}, "is_moving": …,
 *     "odometer": …, "event": …, "activity": {…}, "extras": {…}}}
 * speed is metres per second (Traccar converts with knotsFromMps), and a
 * negative speed, heading, accuracy or battery level means "not known", as
 * Traccar treats it. The same rule applies to the query form, where apps
 * send -1. Fields beyond the position are ignored.
 *
 * Sources: Traccar's OsmAndProtocolDecoder (github.com/traccar/traccar,
 * src/main/java/org/traccar/protocol/OsmAndProtocolDecoder.java) and its
 * earlier LacakProtocolDecoder for the JSON form. Pure functions, any thread.
 */
#include "gps_internal.h"

#include "../core/core.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

#define OSMAND_JSON_MAX (64 * 1024)
#define OSMAND_MAX_MS G_GUINT64_CONSTANT(253402300799999) /* 9999-12-31T23:59:59.999Z */
#define KNOTS_TO_KMH 1.852
#define MPS_TO_KMH 3.6

static int fail(char **err, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static int fail(char **err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    *err = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    return CORE_EINVAL;
}

/* ---- values shared by both forms ---- */

static int parse_time(const char *s, int64_t *ms)
{
    if (s[0] && strspn(s, "0123456789") == strlen(s)) {
        guint64 v;
        if (!g_ascii_string_to_unsigned(s, 10, 0, OSMAND_MAX_MS, &v, NULL))
            return CORE_EINVAL;
        *ms = v < G_MAXINT32 ? (int64_t)v * 1000 : (int64_t)v;
        return 0;
    }
    GTimeZone *utc = g_time_zone_new_utc();
    GDateTime *t = g_date_time_new_from_iso8601(s, utc);
    g_time_zone_unref(utc);
    if (!t)
        return CORE_EINVAL;
    *ms = g_date_time_to_unix(t) * 1000 + g_date_time_get_microsecond(t) / 1000;
    g_date_time_unref(t);
    return 0;
}

/* Stores x in *v when it lies in lo..hi; a negative x is "not known" (NAN)
 * when negative_unknown. */
static int in_range(const char *name, double x, double lo, double hi, int negative_unknown,
                    double *v, char **err)
{
    if (negative_unknown && x < 0) {
        *v = NAN;
        return 0;
    }
    if (!(x >= lo && x <= hi))
        return fail(err, "%s is out of range (%g..%g)", name, lo, hi);
    *v = x;
    return 0;
}

static int set_device(disp_gps_fix *f, const char *name, const char *id, char **err)
{
    if (!id || !id[0])
        return fail(err, "missing %s", name);
    if (strlen(id) >= sizeof(f->device))
        return fail(err, "%s is longer than %zu characters", name, sizeof(f->device) - 1);
    g_strlcpy(f->device, id, sizeof(f->device));
    return 0;
}

static void scale(double *v, double factor)
{
    if (!isnan(*v))
        *v *= factor;
}

/* ---- the query form ---- */

/* The value of the first of the names present with a value, or NULL. */
static const char *param(GHashTable *h, const char *a, const char *b, const char **name)
{
    const char *v = g_hash_table_lookup(h, a);
    *name = a;
    if ((!v || !v[0]) && b) {
        v = g_hash_table_lookup(h, b);
        *name = b;
    }
    return v && v[0] ? v : NULL;
}

static int query_number(GHashTable *h, const char *a, const char *b, int required, double lo,
                        double hi, int negative_unknown, double *v, char **err)
{
    const char *name;
    const char *s = param(h, a, b, &name);
    if (!s)
        return required ? fail(err, "missing %s", a) : 0;
    char *end;
    double x = g_ascii_strtod(s, &end);
    if (end == s || *end || !isfinite(x))
        return fail(err, "%s is not a number", name);
    return in_range(name, x, lo, hi, negative_unknown, v, err);
}

static int query_time(GHashTable *h, disp_gps_fix *f, char **err)
{
    const char *name;
    const char *s = param(h, "timestamp", NULL, &name);
    if (!s) {
        f->fix_ms = g_get_real_time() / 1000;
        return 0;
    }
    /* An offset's '+' that the client left unencoded arrives as a space. */
    char *t = g_strdup(s);
    char *sep = strchr(t, 'T');
    char *space = sep ? strchr(sep, ' ') : NULL;
    if (space)
        *space = '+';
    int rc = parse_time(t, &f->fix_ms);
    g_free(t);
    if (rc)
        return fail(err, "timestamp is neither unix seconds or milliseconds nor a date and time");
    return 0;
}

static int query_fields(GHashTable *h, disp_gps_fix *f, char **err)
{
    const char *name;
    const char *id = param(h, "id", "deviceid", &name);
    const char *valid = param(h, "valid", NULL, &name);
    int rc;
    if ((rc = set_device(f, "id", id, err)) ||
        (rc = query_number(h, "lat", NULL, 1, -90, 90, 0, &f->lat, err)) ||
        (rc = query_number(h, "lon", NULL, 1, -180, 180, 0, &f->lon, err)) ||
        (rc = query_time(h, f, err)) ||
        (rc = query_number(h, "speed", NULL, 0, 0, 10000, 1, &f->speed_kmh, err)) ||
        (rc = query_number(h, "bearing", "heading", 0, 0, 360, 1, &f->course_deg, err)) ||
        (rc = query_number(h, "altitude", NULL, 0, -1e5, 1e6, 0, &f->altitude_m, err)) ||
        (rc = query_number(h, "accuracy", NULL, 0, 0, 1e7, 1, &f->accuracy_m, err)) ||
        (rc = query_number(h, "batt", NULL, 0, 0, 100, 1, &f->battery_pct, err)))
        return rc;
    scale(&f->speed_kmh, KNOTS_TO_KMH);
    f->valid = !valid || g_ascii_strcasecmp(valid, "true") == 0 || strcmp(valid, "1") == 0;
    return disp_gps__check_position(f->lat, f->lon) ? fail(err, "lat/lon out of range") : 0;
}

int disp_gps_osmand_parse_query(const char *query, disp_gps_fix *out, char **err)
{
    *err = NULL;
    disp_gps_fix_init(out);
    if (query[0] == '?')
        query++;
    GError *gerr = NULL;
    GHashTable *h = g_uri_parse_params(query, -1, "&", G_URI_PARAMS_WWW_FORM, &gerr);
    if (!h) {
        int rc = fail(err, "malformed query: %s", gerr->message);
        g_error_free(gerr);
        return rc;
    }
    int rc = query_fields(h, out, err);
    g_hash_table_unref(h);
    return rc;
}

/* ---- the JSON form ---- */

static int json_number(json_t *obj, const char *key, const char *name, int required, double lo,
                       double hi, int negative_unknown, double *v, char **err)
{
    json_t *j = json_object_get(obj, key);
    if (!j || json_is_null(j))
        return required ? fail(err, "missing %s", name) : 0;
    if (!json_is_number(j))
        return fail(err, "%s is not a number", name);
    return in_range(name, json_number_value(j), lo, hi, negative_unknown, v, err);
}

static int json_coords(json_t *c, disp_gps_fix *f, char **err)
{
    if (!json_is_object(c))
        return fail(err, "missing location.coords");
    int rc;
    if ((rc =
             json_number(c, "latitude", "location.coords.latitude", 1, -90, 90, 0, &f->lat, err)) ||
        (rc = json_number(c, "longitude", "location.coords.longitude", 1, -180, 180, 0, &f->lon,
                          err)) ||
        (rc = json_number(c, "speed", "location.coords.speed", 0, 0, 10000, 1, &f->speed_kmh,
                          err)) ||
        (rc = json_number(c, "heading", "location.coords.heading", 0, 0, 360, 1, &f->course_deg,
                          err)) ||
        (rc = json_number(c, "altitude", "location.coords.altitude", 0, -1e5, 1e6, 0,
                          &f->altitude_m, err)) ||
        (rc = json_number(c, "accuracy", "location.coords.accuracy", 0, 0, 1e7, 1, &f->accuracy_m,
                          err)))
        return rc;
    scale(&f->speed_kmh, MPS_TO_KMH);
    return 0;
}

static int json_fields(json_t *root, disp_gps_fix *f, char **err)
{
    if (!json_is_object(root))
        return fail(err, "the body is not a JSON object");
    int rc = set_device(f, "device_id", json_string_value(json_object_get(root, "device_id")), err);
    if (rc)
        return rc;
    json_t *loc = json_object_get(root, "location");
    if (!json_is_object(loc))
        return fail(err, "missing location");
    const char *ts = json_string_value(json_object_get(loc, "timestamp"));
    if (!ts)
        return fail(err, "missing location.timestamp");
    if (parse_time(ts, &f->fix_ms))
        return fail(err, "location.timestamp is not an ISO 8601 date and time");
    if ((rc = json_coords(json_object_get(loc, "coords"), f, err)))
        return rc;
    json_t *battery = json_object_get(loc, "battery");
    if (json_is_object(battery) && (rc = json_number(battery, "level", "location.battery.level", 0,
                                                     0, 1, 1, &f->battery_pct, err)))
        return rc;
    scale(&f->battery_pct, 100);
    f->valid = 1;
    return disp_gps__check_position(f->lat, f->lon) ? fail(err, "coordinates out of range") : 0;
}

int disp_gps_osmand_parse_json(const char *body, size_t n, disp_gps_fix *out, char **err)
{
    *err = NULL;
    disp_gps_fix_init(out);
    if (n > OSMAND_JSON_MAX) {
        *err = g_strdup("the body is over 64 KiB");
        return CORE_ETOOBIG;
    }
    json_error_t je;
    json_t *root = json_loadb(body, n, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        *err = g_strdup_printf("not JSON: %s", je.text);
        return CORE_EPARSE;
    }
    int rc = json_fields(root, out, err);
    json_decref(root);
    return rc;
}
