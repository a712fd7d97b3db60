/*
 * cameras_import.c — a camera list as a file: CSV (core/csv.h) or a
 * GeoJSON FeatureCollection of Points, read into rows that are each
 * checked like a camera created through the API (cameras.h).
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
#include "../core/csv.h"

#include <math.h>
#include <string.h>

#define IMPORT_ROWS_MAX 10000

static const char *const columns[] = {"name",     "agency", "lon",     "lat",      "height_m",
                                      "heading",  "fov",    "range_m", "rtsp_url", "username",
                                      "password", "ptz",    "codec",   NULL};
static const char *const numeric[] = {"lon", "lat", "height_m", "heading", "fov", "range_m", NULL};
static const char *const needed[] = {"name",    "agency", "lon",      "lat",
                                     "heading", "fov",    "rtsp_url", NULL};

static int refuse_at(char **where, char **field, char **message, char *at, const char *f, char *msg)
{
    *where = at;
    return vid__refuse(field, message, f, msg);
}

/* Checks a row's body and appends {key: n, "camera": fields} to rows;
 * names: name -> where (a name twice in one file). Takes at. */
static int add_row(vid_cameras *c, json_t *rows, GHashTable *names, json_t *body, const char *key,
                   int n, char *at, char **where, char **field, char **message)
{
    json_t *cam = NULL;
    int rc = vid__camera_check(c, body, 1, &cam, field, message);
    const char *name = rc ? NULL : json_string_value(json_object_get(cam, "name"));
    const char *other = name ? g_hash_table_lookup(names, name) : NULL;
    if (other)
        rc = vid__refuse(field, message, "name",
                         g_strdup_printf("the name %s is also on %s", name, other));
    if (rc) {
        *where = at;
        json_decref(cam);
        return rc;
    }
    json_array_append_new(rows, json_pack("{siso}", key, n, "camera", cam));
    g_hash_table_insert(names, (gpointer)name, at); /* name lives in rows */
    return 0;
}

/* "where: message" for a message about a field of a row. */
static void prefix_message(char **message, const char *where)
{
    if (!*message || !where || !strcmp(where, "file") || g_str_has_prefix(*message, where))
        return;
    char *m = g_strdup_printf("%s: %s", where, *message);
    g_free(*message);
    *message = m;
}

/* ---- CSV ---- */

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
        int rc = bad ? refuse_at(where, field, message, g_strdup("line 1"), name,
                                 g_strdup_printf("column '%.40s' is unknown or repeated", name))
                     : 0;
        g_free(name);
        if (rc)
            return rc;
    }
    for (int k = 0; columns[k]; k++)
        if (index[k] < 0 && g_strv_contains(needed, columns[k]))
            return refuse_at(where, field, message, g_strdup("line 1"), columns[k],
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

static int csv_rows(vid_cameras *c, core_csv *in, json_t *rows, char **where, char **field,
                    char **message)
{
    GPtrArray *f = g_ptr_array_new_with_free_func(g_free);
    GHashTable *names = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
    int index[G_N_ELEMENTS(columns)], rc;
    if (core_csv_record(in, f) != 1)
        rc = refuse_at(where, field, message, g_strdup("line 1"), "name",
                       g_strdup("the header (name,agency,lon,lat,heading,fov,rtsp_url,…) is"
                                " missing"));
    else
        rc = csv_header(f, index, where, field, message);
    guint ncols = f->len;
    while (!rc) {
        int line = in->line, r = core_csv_record(in, f);
        char *at = g_strdup_printf("line %d", line);
        if (r == 0) {
            g_free(at);
            break;
        }
        if (r < 0) {
            rc = refuse_at(where, field, message, at, "",
                           g_strdup("a quoted field is not closed properly"));
        } else if (f->len == 1 && !*(char *)f->pdata[0]) {
            g_free(at); /* a blank line */
        } else if (f->len != ncols) {
            rc = refuse_at(where, field, message, at, "",
                           g_strdup_printf("%u fields where the header has %u", f->len, ncols));
        } else if (json_array_size(rows) >= IMPORT_ROWS_MAX) {
            rc = refuse_at(where, field, message, at, "",
                           g_strdup_printf("at most %d cameras in one file", IMPORT_ROWS_MAX));
        } else {
            json_t *body = csv_body(f, index);
            rc = add_row(c, rows, names, body, "line", line, at, where, field, message);
            json_decref(body);
        }
    }
    g_hash_table_destroy(names);
    g_ptr_array_free(f, TRUE);
    return rc;
}

int vid_cameras_parse_csv(vid_cameras *c, const char *text, size_t len, json_t **rows, char **where,
                          char **field, char **message)
{
    *rows = json_array();
    *where = *field = *message = NULL;
    int rc;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        text += 3;
        len -= 3;
    }
    if (!g_utf8_validate(text, (gssize)len, NULL) || memchr(text, 0, len)) {
        rc = refuse_at(where, field, message, g_strdup("file"), "",
                       g_strdup("the file is not UTF-8 text"));
    } else {
        core_csv in = {text, text + len, 1};
        rc = csv_rows(c, &in, *rows, where, field, message);
    }
    if (rc) {
        prefix_message(message, *where);
        json_decref(*rows);
        *rows = NULL;
    }
    return rc;
}

/* ---- GeoJSON ---- */

/* The properties as a camera body, the Point as its place. */
static int feature_body(const json_t *feat, json_t **body, char **field, char **message)
{
    json_t *props = json_object_get(feat, "properties"), *geom = json_object_get(feat, "geometry");
    json_t *xy = json_object_get(geom, "coordinates");
    if (!json_is_object(feat) ||
        g_strcmp0(json_string_value(json_object_get(feat, "type")), "Feature") != 0 ||
        !json_is_object(props))
        return vid__refuse(field, message, "properties",
                           g_strdup("a Feature whose properties carry the camera's fields"));
    if (g_strcmp0(json_string_value(json_object_get(geom, "type")), "Point") != 0 ||
        json_array_size(xy) < 2 || json_array_size(xy) > 3)
        return vid__refuse(field, message, "geometry",
                           g_strdup("a Point: the camera's place, WGS84 lon, lat"));
    *body = json_deep_copy(props);
    json_object_set(*body, "lon", json_array_get(xy, 0));
    json_object_set(*body, "lat", json_array_get(xy, 1));
    return 0;
}

int vid_cameras_parse_geojson(vid_cameras *c, const json_t *doc, json_t **rows, char **where,
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
                       g_strdup_printf("at most %d cameras in one file", IMPORT_ROWS_MAX));
    GHashTable *names = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
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
            rc = add_row(c, *rows, names, body, "feature", (int)i, at, where, field, message);
        json_decref(body);
    }
    g_hash_table_destroy(names);
    if (rc) {
        prefix_message(message, *where);
        json_decref(*rows);
        *rows = NULL;
    }
    return rc;
}
