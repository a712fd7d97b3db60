/*
 * cameras_import.c — a camera list as a file: CSV or a GeoJSON
 * FeatureCollection of Points, read by the shared import steps
 * (core/import.h) into rows that are each checked like a camera created
 * through the API (cameras.h). What is the cameras' own is here: the
 * columns, a CSV cell's type, a feature's place, a name twice in a file.
 *
 * Everything is parsed and checked before anything is written, so a file
 * with a mistake changes nothing and the answer names the first line (CSV,
 * counted from 1 with the header) or feature and the field; the rows are
 * then one store write, all or nothing. A CSV cell is text: the numeric
 * columns are read as numbers when the whole cell is one, and "ptz" as
 * true/false/yes/no/1/0, so a bad cell is refused by the same check, naming
 * its column. Loop thread; the body is at most --http-max-body bytes.
 */
#include "cameras_internal.h"

#include "../core/core.h"
#include "../core/import.h"

#include <math.h>
#include <string.h>

#define IMPORT_ROWS_MAX 10000

static const char *const columns[] = {
    "name",     "agency",   "lon",      "lat", "height_m", "heading",   "fov",           "range_m",
    "rtsp_url", "username", "password", "ptz", "codec",    "onvif_url", "onvif_profile", NULL};
static const char *const numeric[] = {"lon", "lat", "height_m", "heading", "fov", "range_m", NULL};
static const char *const needed[] = {"name",    "agency", "lon",      "lat",
                                     "heading", "fov",    "rtsp_url", NULL};

/* The names already in a file, while it is read: name -> where (a name twice). */
typedef struct {
    vid_cameras *c;
    GHashTable *names;
} parse;

/* Checks a row's body and appends {key: n, "camera": fields} to rows. Takes at. */
static int add_row(void *ctx, json_t *rows, const json_t *body, const char *key, int n, char *at,
                   core_import_err *e)
{
    parse *p = ctx;
    json_t *cam = NULL;
    int rc = vid__camera_check(p->c, body, 1, &cam, e->field, e->message);
    const char *name = rc ? NULL : json_string_value(json_object_get(cam, "name"));
    const char *other = name ? g_hash_table_lookup(p->names, name) : NULL;
    if (other)
        rc = vid__refuse(e->field, e->message, "name",
                         g_strdup_printf("the name %s is also on %s", name, other));
    if (rc) {
        *e->where = at;
        json_decref(cam);
        return rc;
    }
    json_array_append_new(rows, json_pack("{siso}", key, n, "camera", cam));
    g_hash_table_insert(p->names, (gpointer)name, at); /* name lives in rows */
    return 0;
}

/* ---- CSV ---- */

static int csv_header(GPtrArray *names, int *index, core_import_err *e)
{
    char *bad = NULL;
    if (core_import_columns(names, columns, index, &bad)) {
        int rc = core_import_refuse(e, g_strdup("line 1"), bad,
                                    g_strdup_printf("column '%.40s' is unknown or repeated", bad));
        g_free(bad);
        return rc;
    }
    for (int k = 0; columns[k]; k++)
        if (index[k] < 0 && g_strv_contains(needed, columns[k]))
            return core_import_refuse(e, g_strdup("line 1"), columns[k],
                                      g_strdup_printf("the header has no column %s", columns[k]));
    return 0;
}

/* A cell as JSON: a number or boolean for those columns when it is one,
 * else the text (refused by the check); NULL for an empty cell. */
static json_t *cell(const char *column, const char *text)
{
    if (!*text)
        return NULL;
    if (g_strv_contains(numeric, column)) {
        char *end = NULL;
        double d = g_ascii_strtod(text, &end);
        return *end || !isfinite(d) ? json_string(text) : json_real(d);
    }
    if (!strcmp(column, "ptz")) {
        static const char *const yes[] = {"true", "yes", "1", NULL};
        static const char *const no[] = {"false", "no", "0", NULL};
        char *low = g_ascii_strdown(text, -1);
        json_t *v = g_strv_contains(yes, low)  ? json_true()
                    : g_strv_contains(no, low) ? json_false()
                                               : json_string(text);
        g_free(low);
        return v;
    }
    return json_string(text);
}

static json_t *csv_body(GPtrArray *f, const int *index)
{
    json_t *body = json_object();
    for (int k = 0; columns[k]; k++) {
        if (index[k] < 0)
            continue;
        /* Credentials keep their spaces; everything else is trimmed. */
        int keep = !strcmp(columns[k], "password") || !strcmp(columns[k], "username");
        char *v = g_strdup(f->pdata[index[k]]);
        json_t *j = cell(columns[k], keep ? v : g_strstrip(v));
        if (j)
            json_object_set_new(body, columns[k], j);
        g_free(v);
    }
    return body;
}

/* ---- GeoJSON ---- */

/* The properties as a camera body, the Point as its place. */
static int feature_body(const json_t *feat, json_t **body, core_import_err *e)
{
    json_t *props = json_object_get(feat, "properties"), *geom = json_object_get(feat, "geometry");
    json_t *xy = json_object_get(geom, "coordinates");
    if (!json_is_object(feat) ||
        g_strcmp0(json_string_value(json_object_get(feat, "type")), "Feature") != 0 ||
        !json_is_object(props))
        return vid__refuse(e->field, e->message, "properties",
                           g_strdup("a Feature whose properties carry the camera's fields"));
    if (g_strcmp0(json_string_value(json_object_get(geom, "type")), "Point") != 0 ||
        json_array_size(xy) < 2 || json_array_size(xy) > 3)
        return vid__refuse(e->field, e->message, "geometry",
                           g_strdup("a Point: the camera's place, WGS84 lon, lat"));
    *body = json_deep_copy(props);
    json_object_set(*body, "lon", json_array_get(xy, 0));
    json_object_set(*body, "lat", json_array_get(xy, 1));
    return 0;
}

static const core_import_spec spec = {
    .noun = "cameras",
    .max_rows = IMPORT_ROWS_MAX,
    .columns = G_N_ELEMENTS(columns),
    .no_head_field = "name",
    .no_head_message = "the header (name,agency,lon,lat,heading,fov,rtsp_url,…) is missing",
    .header = csv_header,
    .csv_body = csv_body,
    .feature_body = feature_body,
    .add = add_row,
};

int vid_cameras_parse_csv(vid_cameras *c, const char *text, size_t len, json_t **rows, char **where,
                          char **field, char **message)
{
    parse p = {c, g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free)};
    core_import_err e = {where, field, message};
    int rc = core_import_csv(&spec, &p, text, len, rows, &e);
    g_hash_table_destroy(p.names);
    return rc;
}

int vid_cameras_parse_geojson(vid_cameras *c, const json_t *doc, json_t **rows, char **where,
                              char **field, char **message)
{
    parse p = {c, g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free)};
    core_import_err e = {where, field, message};
    int rc = core_import_geojson(&spec, &p, doc, rows, &e);
    g_hash_table_destroy(p.names);
    return rc;
}
