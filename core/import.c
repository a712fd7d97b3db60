/*
 * import.c — the shared steps of a registry import (import.h): the file
 * checked as UTF-8 text, CSV records and GeoJSON features walked in order
 * with their places, the limits on rows, the message led by its place, and
 * the all-or-nothing write of the rows.
 *
 * Nothing is written while a file is read: the registry's add callback
 * checks a row and appends it, and the first refusal ends the walk with
 * rows dropped. Loop thread for the parsing, the writer for
 * core_import_write.
 */
#include "import.h"

#include "core.h"
#include "csv.h"

#include <string.h>

int core_import_refuse(core_import_err *e, char *at, const char *field, char *message)
{
    *e->where = at;
    *e->field = g_strdup(field);
    *e->message = message;
    return CORE_EINVAL;
}

int core_import_columns(GPtrArray *names, const char *const *columns, int *index, char **bad)
{
    for (int k = 0; columns[k]; k++)
        index[k] = -1;
    for (guint i = 0; i < names->len; i++) {
        char *name = g_ascii_strdown(g_strstrip((char *)names->pdata[i]), -1);
        int k = 0;
        while (columns[k] && strcmp(columns[k], name) != 0)
            k++;
        if (!columns[k] || index[k] >= 0) {
            *bad = name;
            return -1;
        }
        index[k] = (int)i;
        g_free(name);
    }
    return 0;
}

/* "where: message" for a message about a row (not the whole file). */
static void lead_with_place(core_import_err *e)
{
    const char *where = *e->where;
    if (!*e->message || !where || !strcmp(where, "file") || g_str_has_prefix(*e->message, where))
        return;
    char *m = g_strdup_printf("%s: %s", where, *e->message);
    g_free(*e->message);
    *e->message = m;
}

/* The end of a parse: the rows, or the error with its place. */
static int finish(int rc, json_t **rows, core_import_err *e)
{
    if (rc) {
        lead_with_place(e);
        json_decref(*rows);
        *rows = NULL;
    }
    return rc;
}

/* One record after the header. 1 at the end of the file. */
static int csv_record(const core_import_spec *spec, void *ctx, core_csv *in, GPtrArray *f,
                      const int *index, guint ncols, json_t *rows, core_import_err *e)
{
    int line = in->line, r = core_csv_record(in, f);
    char *at = g_strdup_printf("line %d", line);
    if (r == 0 || (r > 0 && f->len == 1 && !*(char *)f->pdata[0])) {
        g_free(at); /* the end, or a blank line */
        return r == 0;
    }
    if (r < 0)
        return core_import_refuse(e, at, "", g_strdup("a quoted field is not closed properly"));
    if (f->len != ncols)
        return core_import_refuse(
            e, at, "", g_strdup_printf("%u fields where the header has %u", f->len, ncols));
    if (json_array_size(rows) >= (size_t)spec->max_rows)
        return core_import_refuse(
            e, at, "", g_strdup_printf("at most %d %s in one file", spec->max_rows, spec->noun));
    json_t *body = spec->csv_body(f, index);
    int rc = spec->add(ctx, rows, body, "line", line, at, e);
    json_decref(body);
    return rc;
}

static int csv_rows(const core_import_spec *spec, void *ctx, core_csv *in, json_t *rows,
                    core_import_err *e)
{
    GPtrArray *f = g_ptr_array_new_with_free_func(g_free);
    int *index = g_new(int, spec->columns), rc;
    if (core_csv_record(in, f) != 1)
        rc = core_import_refuse(e, g_strdup("line 1"), spec->no_head_field,
                                g_strdup(spec->no_head_message));
    else
        rc = spec->header(f, index, e);
    guint ncols = f->len;
    while (!rc)
        rc = csv_record(spec, ctx, in, f, index, ncols, rows, e);
    g_free(index);
    g_ptr_array_free(f, TRUE);
    return rc > 0 ? 0 : rc;
}

int core_import_csv(const core_import_spec *spec, void *ctx, const char *text, size_t len,
                    json_t **rows, core_import_err *e)
{
    *rows = json_array();
    *e->where = *e->field = *e->message = NULL;
    int rc;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        text += 3;
        len -= 3;
    }
    if (!g_utf8_validate(text, (gssize)len, NULL) || memchr(text, 0, len)) {
        rc = core_import_refuse(e, g_strdup("file"), "", g_strdup("the file is not UTF-8 text"));
    } else {
        core_csv in = {text, text + len, 1};
        rc = csv_rows(spec, ctx, &in, *rows, e);
    }
    return finish(rc, rows, e);
}

int core_import_geojson(const core_import_spec *spec, void *ctx, const json_t *doc, json_t **rows,
                        core_import_err *e)
{
    *rows = json_array();
    *e->where = *e->field = *e->message = NULL;
    json_t *features = json_object_get(doc, "features");
    int rc = 0;
    if (g_strcmp0(json_string_value(json_object_get(doc, "type")), "FeatureCollection") != 0 ||
        !json_is_array(features))
        rc = core_import_refuse(e, g_strdup("file"), "type",
                                g_strdup("a GeoJSON FeatureCollection"));
    else if (json_array_size(features) > (size_t)spec->max_rows)
        rc = core_import_refuse(
            e, g_strdup("file"), "features",
            g_strdup_printf("at most %d %s in one file", spec->max_rows, spec->noun));
    size_t i;
    json_t *feat;
    json_array_foreach(features, i, feat)
    {
        if (rc)
            break;
        char *at = g_strdup_printf("features[%zu]", i);
        json_t *body = NULL;
        rc = spec->feature_body(feat, &body, e);
        if (rc)
            *e->where = at;
        else
            rc = spec->add(ctx, *rows, body, "feature", (int)i, at, e);
        json_decref(body);
    }
    return finish(rc, rows, e);
}

int core_import_write(core_txn *txn, const json_t *rows, const char *key,
                      core_import_upsert_fn upsert, void *op, json_t **result, json_t **error)
{
    int created = 0, updated = 0, unchanged = 0;
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        char what = 0;
        int rc = upsert(txn, op, json_object_get(row, key), &what, error);
        if (rc) {
            if (!*error)
                *error = json_object();
            json_object_update_missing(*error, row);
            json_object_del(*error, key);
            return rc;
        }
        created += what == 'c';
        updated += what == 'u';
        unchanged += what == '=';
    }
    *result = json_pack("{sisisi}", "created", created, "updated", updated, "unchanged", unchanged);
    return 0;
}
