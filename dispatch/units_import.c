/*
 * units_import.c — a fleet list as a file: CSV (RFC 4180: quoted fields,
 * doubled quotes, CRLF or LF) or a GeoJSON FeatureCollection, read by the
 * shared import steps (core/import.h) into rows that are each checked like
 * a unit created through the API. What is the units' own is here: the
 * columns, capabilities as "a;b", the home station's Point, a call sign or
 * device twice in a file.
 *
 * Parsing and checking happen before anything is written, so a file with
 * a mistake changes nothing and the answer names the first line (CSV,
 * counted from 1 with the header) or feature (features[i], from 0) and the
 * field. The rows are then written by one store write (units.c), all or
 * nothing. Loop thread; the body is at most --http-max-body bytes.
 */
#include "units_internal.h"

#include "../core/import.h"

#include <string.h>

#define IMPORT_ROWS_MAX 50000

static const char *const columns[] = {"call_sign", "kind",         "agency", "station",
                                      "device",    "capabilities", NULL};

/* The same call sign or device twice in one file. */
typedef struct {
    disp_units *u;
    GHashTable *call_signs, *devices; /* value -> where (owned by rows) */
} seen;

static int check_unique(seen *s, const json_t *unit, const char *at, core_import_err *e)
{
    const char *cs = json_string_value(json_object_get(unit, "call_sign"));
    const char *dev = json_string_value(json_object_get(unit, "device"));
    const char *other = g_hash_table_lookup(s->call_signs, cs);
    if (other)
        return core_import_refuse(e, g_strdup(at), "call_sign",
                                  g_strdup_printf("call sign %s is also on %s", cs, other));
    other = dev ? g_hash_table_lookup(s->devices, dev) : NULL;
    if (other)
        return core_import_refuse(e, g_strdup(at), "device",
                                  g_strdup_printf("device %s is also on %s", dev, other));
    return 0;
}

/* Checks a row's body and appends {key: n, "unit"} to rows. Takes at. */
static int add_row(void *ctx, json_t *rows, const json_t *body, const char *key, int n, char *at,
                   core_import_err *e)
{
    seen *s = ctx;
    json_t *unit = NULL;
    int rc = disp__unit_check(s->u, body, 1, 0, &unit, e->field, e->message);
    if (!rc)
        rc = check_unique(s, unit, at, e);
    if (rc) {
        if (!*e->where)
            *e->where = g_strdup(at);
        g_free(at);
        json_decref(unit);
        return rc;
    }
    json_t *row = json_pack("{siso}", key, n, "unit", unit);
    json_array_append_new(rows, row);
    /* The tables point into rows, which outlive them. */
    g_hash_table_insert(s->call_signs,
                        (gpointer)json_string_value(json_object_get(unit, "call_sign")), at);
    if (json_string_value(json_object_get(unit, "device")))
        g_hash_table_insert(
            s->devices, (gpointer)json_string_value(json_object_get(unit, "device")), g_strdup(at));
    return 0;
}

static void seen_init(seen *s, disp_units *u)
{
    s->u = u;
    s->call_signs = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
    s->devices = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
}

static void seen_clear(seen *s)
{
    g_hash_table_destroy(s->call_signs);
    g_hash_table_destroy(s->devices);
}

/* "a;b; c" -> ["a","b","c"] */
static json_t *split_capabilities(const char *s)
{
    json_t *a = json_array();
    char **parts = g_strsplit(s, ";", -1);
    for (char **p = parts; *p; p++)
        if (*g_strstrip(*p))
            json_array_append_new(a, json_string(*p));
    g_strfreev(parts);
    return a;
}

/* ---- CSV ---- */

/* The header: the index of each known column, -1 when absent. */
static int csv_header(GPtrArray *names, int *index, core_import_err *e)
{
    char *bad = NULL;
    if (core_import_columns(names, columns, index, &bad)) {
        int rc = core_import_refuse(e, g_strdup("line 1"), bad,
                                    g_strdup_printf("line 1: column '%s' is unknown or repeated"
                                                    " (columns: call_sign,kind,agency,station,"
                                                    "device,capabilities)",
                                                    bad));
        g_free(bad);
        return rc;
    }
    for (int k = 0; k < 3; k++)
        if (index[k] < 0)
            return core_import_refuse(
                e, g_strdup("line 1"), columns[k],
                g_strdup_printf("line 1: the header has no column %s", columns[k]));
    return 0;
}

static json_t *csv_body(GPtrArray *f, const int *index)
{
    json_t *body = json_object();
    for (int k = 0; columns[k]; k++) {
        if (index[k] < 0)
            continue;
        char *v = g_strstrip(g_strdup(f->pdata[index[k]]));
        json_object_set_new(body, columns[k],
                            strcmp(columns[k], "capabilities") == 0 ? split_capabilities(v)
                                                                    : json_string(v));
        g_free(v);
    }
    return body;
}

/* ---- GeoJSON ---- */

/* The properties as a unit body, the Point as the home station. */
static int feature_body(const json_t *feat, json_t **body, core_import_err *e)
{
    json_t *props = json_object_get(feat, "properties"), *geom = json_object_get(feat, "geometry");
    if (!json_is_object(feat) ||
        g_strcmp0(json_string_value(json_object_get(feat, "type")), "Feature") != 0 ||
        !json_is_object(props))
        return disp__refuse(e->field, e->message, "properties",
                            g_strdup("a Feature whose properties carry the unit's fields"));
    *body = json_object();
    for (int k = 0; columns[k]; k++) {
        json_t *v = json_object_get(props, columns[k]);
        if (v && strcmp(columns[k], "capabilities") == 0 && json_is_string(v))
            json_object_set_new(*body, columns[k], split_capabilities(json_string_value(v)));
        else if (v)
            json_object_set(*body, columns[k], v);
    }
    if (!geom || json_is_null(geom))
        return 0;
    json_t *xy = json_object_get(geom, "coordinates");
    if (g_strcmp0(json_string_value(json_object_get(geom, "type")), "Point") != 0 ||
        json_array_size(xy) < 2 || !json_is_number(json_array_get(xy, 0)) ||
        !json_is_number(json_array_get(xy, 1))) {
        json_decref(*body);
        *body = NULL;
        return disp__refuse(e->field, e->message, "geometry",
                            g_strdup("a Point (the home station, WGS84 lon, lat) or null"));
    }
    json_object_set_new(
        *body, "home",
        json_pack("{sOsO}", "lon", json_array_get(xy, 0), "lat", json_array_get(xy, 1)));
    return 0;
}

static const core_import_spec spec = {
    .noun = "units",
    .max_rows = IMPORT_ROWS_MAX,
    .columns = G_N_ELEMENTS(columns),
    .no_head_field = "call_sign",
    .no_head_message = "line 1: the header call_sign,kind,agency,station,device,capabilities is"
                       " missing",
    .header = csv_header,
    .csv_body = csv_body,
    .feature_body = feature_body,
    .add = add_row,
};

int disp_units_parse_csv(disp_units *u, const char *text, size_t len, json_t **rows, char **where,
                         char **field, char **message)
{
    seen s;
    seen_init(&s, u);
    core_import_err e = {where, field, message};
    int rc = core_import_csv(&spec, &s, text, len, rows, &e);
    seen_clear(&s);
    return rc;
}

int disp_units_parse_geojson(disp_units *u, const json_t *doc, json_t **rows, char **where,
                             char **field, char **message)
{
    seen s;
    seen_init(&s, u);
    core_import_err e = {where, field, message};
    int rc = core_import_geojson(&spec, &s, doc, rows, &e);
    seen_clear(&s);
    return rc;
}
