/*
 * units_import.c — a fleet list as a file: CSV (RFC 4180: quoted fields,
 * doubled quotes, CRLF or LF) or a GeoJSON FeatureCollection, read into
 * rows that are each checked like a unit created through the API.
 *
 * Parsing and checking happen before anything is written, so a file with
 * a mistake changes nothing and the answer names the first line (CSV,
 * counted from 1 with the header) or feature (features[i], from 0) and the
 * field. The rows are then written by one store write (units.c), all or
 * nothing. Loop thread; the body is at most --http-max-body bytes.
 */
#include "units_internal.h"

#include "../core/csv.h"

#include <string.h>

#define IMPORT_ROWS_MAX 50000

static const char *const columns[] = {"call_sign", "kind",         "agency", "station",
                                      "device",    "capabilities", NULL};

/* ---- CSV ---- */

static int refuse_at(char **where, char **field, char **message, char *at, const char *f, char *msg)
{
    *where = at;
    return disp__refuse(field, message, f, msg);
}

/* The same call sign or device twice in one file. */
typedef struct {
    GHashTable *call_signs, *devices; /* value -> where (owned by rows) */
} seen;

static int check_unique(seen *s, const json_t *unit, const char *at, char **where, char **field,
                        char **message)
{
    const char *cs = json_string_value(json_object_get(unit, "call_sign"));
    const char *dev = json_string_value(json_object_get(unit, "device"));
    const char *other = g_hash_table_lookup(s->call_signs, cs);
    if (other)
        return refuse_at(where, field, message, g_strdup(at), "call_sign",
                         g_strdup_printf("call sign %s is also on %s", cs, other));
    other = dev ? g_hash_table_lookup(s->devices, dev) : NULL;
    if (other)
        return refuse_at(where, field, message, g_strdup(at), "device",
                         g_strdup_printf("device %s is also on %s", dev, other));
    return 0;
}

/* Checks a row's body and appends {key: n, "unit"} to rows. */
static int add_row(disp_units *u, json_t *rows, seen *s, json_t *body, const char *key, int n,
                   char *at, char **where, char **field, char **message)
{
    json_t *unit = NULL;
    int rc = disp__unit_check(u, body, 1, 0, &unit, field, message);
    if (!rc)
        rc = check_unique(s, unit, at, where, field, message);
    if (rc) {
        if (!*where)
            *where = g_strdup(at);
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

static void seen_init(seen *s)
{
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

/* The header: the index of each known column, -1 when absent. */
static int csv_header(GPtrArray *names, int *index, char **where, char **field, char **message)
{
    for (int k = 0; columns[k]; k++)
        index[k] = -1;
    for (guint i = 0; i < names->len; i++) {
        char *name = g_ascii_strdown(g_strstrip((char *)names->pdata[i]), -1);
        int k = 0;
        while (columns[k] && strcmp(columns[k], name) != 0)
            k++;
        int bad = !columns[k] || index[k] >= 0;
        if (!bad)
            index[k] = (int)i;
        if (bad) {
            int rc = refuse_at(where, field, message, g_strdup("line 1"), name,
                               g_strdup_printf("line 1: column '%s' is unknown or repeated"
                                               " (columns: call_sign,kind,agency,station,device,"
                                               "capabilities)",
                                               name));
            g_free(name);
            return rc;
        }
        g_free(name);
    }
    for (int k = 0; k < 3; k++)
        if (index[k] < 0)
            return refuse_at(where, field, message, g_strdup("line 1"), columns[k],
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

/* "line 3: message" for a message about a field of that line. */
static void prefix_message(char **message, const char *where)
{
    char *m = g_strdup_printf("%s: %s", where, *message);
    g_free(*message);
    *message = m;
}

static int csv_rows(disp_units *u, core_csv *c, json_t *rows, char **where, char **field,
                    char **message)
{
    GPtrArray *f = g_ptr_array_new_with_free_func(g_free);
    int index[G_N_ELEMENTS(columns)], rc = 0;
    guint ncols = 0;
    seen s;
    seen_init(&s);
    if (core_csv_record(c, f) != 1)
        rc = refuse_at(where, field, message, g_strdup("line 1"), "call_sign",
                       g_strdup("line 1: the header call_sign,kind,agency,station,device,"
                                "capabilities is missing"));
    else
        rc = csv_header(f, index, where, field, message);
    ncols = f->len;
    while (!rc) {
        int line = c->line, r = core_csv_record(c, f);
        char *at = g_strdup_printf("line %d", line);
        if (r == 0) {
            g_free(at);
            break;
        }
        if (r < 0)
            rc = refuse_at(where, field, message, at, "",
                           g_strdup_printf("%s: a quoted field is not closed properly", at));
        else if (f->len == 1 && !*(char *)f->pdata[0])
            g_free(at); /* a blank line */
        else if (f->len != ncols)
            rc = refuse_at(
                where, field, message, at, "",
                g_strdup_printf("%s: %u fields where the header has %u", at, f->len, ncols));
        else if (json_array_size(rows) >= IMPORT_ROWS_MAX)
            rc = refuse_at(where, field, message, at, "",
                           g_strdup_printf("at most %d units in one file", IMPORT_ROWS_MAX));
        else {
            json_t *body = csv_body(f, index);
            rc = add_row(u, rows, &s, body, "line", line, at, where, field, message);
            json_decref(body);
        }
    }
    seen_clear(&s);
    g_ptr_array_free(f, TRUE);
    return rc;
}

int disp_units_parse_csv(disp_units *u, const char *text, size_t len, json_t **rows, char **where,
                         char **field, char **message)
{
    *rows = json_array();
    *where = *field = *message = NULL;
    const char *bad = NULL;
    int rc = 0;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        text += 3;
        len -= 3;
    }
    if (!g_utf8_validate(text, (gssize)len, &bad) || memchr(text, 0, len)) {
        rc = refuse_at(where, field, message, g_strdup("file"), "",
                       g_strdup("the file is not UTF-8 text"));
    } else {
        core_csv c = {text, text + len, 1};
        rc = csv_rows(u, &c, *rows, where, field, message);
    }
    if (rc) {
        if (*message && *where && strcmp(*where, "file") != 0 &&
            !g_str_has_prefix(*message, *where))
            prefix_message(message, *where);
        json_decref(*rows);
        *rows = NULL;
    }
    return rc;
}

/* ---- GeoJSON ---- */

/* The properties as a unit body, the Point as the home station. */
static int feature_body(const json_t *feat, json_t **body, char **field, char **message)
{
    json_t *props = json_object_get(feat, "properties"), *geom = json_object_get(feat, "geometry");
    if (!json_is_object(feat) ||
        g_strcmp0(json_string_value(json_object_get(feat, "type")), "Feature") != 0 ||
        !json_is_object(props))
        return disp__refuse(field, message, "properties",
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
        return disp__refuse(field, message, "geometry",
                            g_strdup("a Point (the home station, WGS84 lon, lat) or null"));
    }
    json_object_set_new(
        *body, "home",
        json_pack("{sOsO}", "lon", json_array_get(xy, 0), "lat", json_array_get(xy, 1)));
    return 0;
}

int disp_units_parse_geojson(disp_units *u, const json_t *doc, json_t **rows, char **where,
                             char **field, char **message)
{
    *rows = json_array();
    *where = *field = *message = NULL;
    json_t *features = json_object_get(doc, "features");
    int rc = 0;
    if (g_strcmp0(json_string_value(json_object_get(doc, "type")), "FeatureCollection") != 0 ||
        !json_is_array(features))
        rc = refuse_at(where, field, message, g_strdup("file"), "type",
                       g_strdup("a GeoJSON FeatureCollection"));
    else if (json_array_size(features) > IMPORT_ROWS_MAX)
        rc = refuse_at(where, field, message, g_strdup("file"), "features",
                       g_strdup_printf("at most %d units in one file", IMPORT_ROWS_MAX));
    seen s;
    seen_init(&s);
    size_t i;
    json_t *feat;
    json_array_foreach(features, i, feat)
    {
        if (rc)
            break;
        char *at = g_strdup_printf("features[%zu]", i);
        json_t *body = NULL;
        rc = feature_body(feat, &body, field, message);
        if (rc)
            *where = at;
        else
            rc = add_row(u, *rows, &s, body, "feature", (int)i, at, where, field, message);
        json_decref(body);
    }
    seen_clear(&s);
    if (rc) {
        if (*message && *where && strcmp(*where, "file") != 0)
            prefix_message(message, *where);
        json_decref(*rows);
        *rows = NULL;
    }
    return rc;
}
