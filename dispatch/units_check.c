/*
 * units_check.c — checks of a unit's fields, shared by the API's create and
 * change and by the imports: each field's rules, and what is stored when a
 * field is left out. Pure: no store, no state; loop thread.
 */
#include "units_internal.h"

#include "../core/auth.h"

#include <math.h>
#include <string.h>

#define UNIT_CAPABILITIES_MAX 32

/* min..max characters of UTF-8 text without control characters. */
static int text_ok(const char *s, long min, long max)
{
    if (!g_utf8_validate(s, -1, NULL))
        return 0;
    long n = g_utf8_strlen(s, -1);
    if (n < min || n > max)
        return 0;
    for (const char *p = s; *p; p = g_utf8_next_char(p))
        if (g_unichar_iscntrl(g_utf8_get_char(p)))
            return 0;
    return 1;
}

static int ident_ok(const char *s, size_t max, const char *extra)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max)
        return 0;
    for (const char *p = s; *p; p++)
        if (!g_ascii_isalnum(*p) && !strchr(extra, *p))
            return 0;
    return 1;
}

/* A string field, trimmed, into out; "" kept. */
static int take_text(json_t *out, const json_t *v, const char *name, long min, long max,
                     char **field, char **message, const char *what)
{
    if (!json_is_string(v))
        return disp__refuse(field, message, name, g_strdup(what));
    char *t = g_strstrip(g_strdup(json_string_value(v)));
    int ok = strlen(json_string_value(v)) == json_string_length(v) && text_ok(t, min, max);
    if (ok)
        json_object_set_new(out, name, json_string(t));
    g_free(t);
    return ok ? 0 : disp__refuse(field, message, name, g_strdup(what));
}

static int check_capabilities(json_t *out, const json_t *v, char **field, char **message)
{
    const char *what = "an array of at most 32 capabilities, each 1 to 32 of a-z 0-9 _ . -"
                       " (\"foam\", \"als\", \"rescue_tools\")";
    if (!json_is_array(v) || json_array_size(v) > UNIT_CAPABILITIES_MAX)
        return disp__refuse(field, message, "capabilities", g_strdup(what));
    json_t *caps = json_array();
    size_t i;
    json_t *c;
    json_array_foreach(v, i, c)
    {
        const char *s = json_string_value(c);
        int ok = s && strlen(s) == json_string_length(c) && ident_ok(s, 32, "_.-");
        for (const char *p = s; ok && *p; p++)
            ok = !g_ascii_isupper(*p);
        if (!ok) {
            json_decref(caps);
            return disp__refuse(field, message, "capabilities", g_strdup(what));
        }
        int seen = 0;
        size_t j;
        json_t *d;
        json_array_foreach(caps, j, d) seen |= strcmp(json_string_value(d), s) == 0;
        if (!seen)
            json_array_append(caps, c);
    }
    json_object_set_new(out, "capabilities", caps);
    return 0;
}

static int check_home(json_t *out, const json_t *v, char **field, char **message)
{
    if (json_is_null(v)) {
        json_object_set_new(out, "home", json_null());
        return 0;
    }
    json_t *lon = json_object_get(v, "lon"), *lat = json_object_get(v, "lat");
    if (!json_is_number(lon) || !json_is_number(lat) || fabs(json_number_value(lon)) > 180 ||
        fabs(json_number_value(lat)) > 90)
        return disp__refuse(field, message, "home",
                            g_strdup("the home station's place {\"lon\", \"lat\"}, or null"));
    json_object_set_new(
        out, "home",
        json_pack("{sfsf}", "lon", json_number_value(lon), "lat", json_number_value(lat)));
    return 0;
}

static int check_device(json_t *out, const json_t *v, char **field, char **message)
{
    const char *d = json_string_value(v);
    if (json_is_null(v) || (d && !*d)) {
        json_object_set_new(out, "device", json_null());
        return 0;
    }
    if (!d || strlen(d) != json_string_length(v) || !ident_ok(d, 64, "._:-"))
        return disp__refuse(field, message, "device",
                            g_strdup("the tracker's identifier (IMEI or device id): 1 to 64 of"
                                     " A-Z a-z 0-9 . _ : -, or null for none"));
    json_object_set_new(out, "device", json_string(d));
    return 0;
}

static int check_status(json_t *out, const json_t *body, char **field, char **message)
{
    json_t *status = json_object_get(body, "status"), *inc = json_object_get(body, "incident");
    if (inc && !status)
        return disp__refuse(field, message, "incident",
                            g_strdup("give \"status\" with \"incident\""));
    if (!status)
        return 0;
    if (!disp_unit_primary(json_string_value(status))) {
        char *all = g_strjoinv(", ", (char **)disp_unit_statuses());
        disp__refuse(field, message, "status", g_strdup_printf("one of %s", all));
        g_free(all);
        return CORE_EINVAL;
    }
    int64_t id = 0;
    if (json_is_integer(inc) && json_integer_value(inc) > 0)
        id = json_integer_value(inc);
    else if (json_is_string(inc))
        id = disp__parse_ext(json_string_value(inc), 'I');
    if (inc && !json_is_null(inc) && id <= 0)
        return disp__refuse(field, message, "incident",
                            g_strdup("the incident the status concerns: \"I-n\", or null"));
    json_object_set(out, "status", status);
    json_object_set_new(out, "incident", json_integer(id));
    return 0;
}

static int check_kind(json_t *out, const json_t *v, char **field, char **message)
{
    if (json_is_string(v) && g_strv_contains(disp_unit_kinds(), json_string_value(v))) {
        json_object_set_new(out, "kind", json_string(json_string_value(v)));
        return 0;
    }
    char *all = g_strjoinv(", ", (char **)disp_unit_kinds());
    disp__refuse(field, message, "kind", g_strdup_printf("one of %s", all));
    g_free(all);
    return CORE_EINVAL;
}

static int check_agency(disp_units *u, json_t *out, const json_t *v, char **field, char **message)
{
    if (!json_is_string(v) || !core_agency_known(u->agencies, json_string_value(v)))
        return disp__refuse(field, message, "agency",
                            g_strdup_printf("one of the agencies: %s", u->agencies));
    json_object_set_new(out, "agency", json_string(json_string_value(v)));
    return 0;
}

/* Each field when given; the required ones also when absent on create. */
static int check_fields(disp_units *u, json_t *out, const json_t *body, int create, char **field,
                        char **message)
{
    json_t *v;
    int rc = 0;
    if ((v = json_object_get(body, "call_sign")) || create)
        rc = take_text(out, v, "call_sign", 1, 32, field, message,
                       "the unit's call sign: 1 to 32 characters (\"F-ENG-01\")");
    if (!rc && ((v = json_object_get(body, "kind")) || create))
        rc = check_kind(out, v, field, message);
    if (!rc && ((v = json_object_get(body, "agency")) || create))
        rc = check_agency(u, out, v, field, message);
    if (!rc && (v = json_object_get(body, "station")))
        rc = take_text(out, v, "station", 0, 100, field, message,
                       "the home station's name: at most 100 characters");
    if (!rc && (v = json_object_get(body, "device")))
        rc = check_device(out, v, field, message);
    if (!rc && (v = json_object_get(body, "capabilities")))
        rc = check_capabilities(out, v, field, message);
    if (!rc && (v = json_object_get(body, "home")))
        rc = check_home(out, v, field, message);
    return rc;
}

int disp__unit_check(disp_units *u, const json_t *body, int create, int status, json_t **out,
                     char **field, char **message)
{
    *out = json_object();
    int rc = check_fields(u, *out, body, create, field, message);
    if (!rc && status)
        rc = check_status(*out, body, field, message);
    else if (!rc && (json_object_get(body, "status") || json_object_get(body, "incident")))
        rc = disp__refuse(field, message, "status", g_strdup("the status is not set here"));
    if (!rc && create) {
        json_t *defaults =
            json_pack("{sssos[]sosssI}", "station", "", "device", json_null(), "capabilities",
                      "home", json_null(), "status", "in_station", "incident", (json_int_t)0);
        json_object_update_missing(*out, defaults);
        json_decref(defaults);
    }
    if (!rc && json_object_size(*out) == 0)
        rc = disp__refuse(field, message, "status",
                          g_strdup("give \"status\" (with \"incident\"), or fields to change:"
                                   " call_sign, kind, agency, station, device, capabilities,"
                                   " home"));
    if (rc) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}
