/*
 * import.h — the steps every registry import takes (units, cameras): a
 * file read as CSV (csv.h) or a GeoJSON FeatureCollection into rows, each
 * checked by the registry, before anything is written; the first mistake
 * named by its place ("line 3", counted from 1 with the header, or
 * "features[2]", from 0), field and message; then the rows written in one
 * store write, all or nothing.
 *
 * The registry says what differs in a spec: its columns, how a header, a
 * record and a feature become a body, and how a body is checked and
 * added to the rows. Parsing runs on the loop thread, core_import_write in
 * the store's writer.
 */
#ifndef CITYCMD_CORE_IMPORT_H
#define CITYCMD_CORE_IMPORT_H

#include "store.h"

#include <glib.h>
#include <jansson.h>

/* Where a mistake is, which field, and what is wrong (each g_free'd by
 * the caller of the parse). */
typedef struct {
    char **where, **field, **message;
} core_import_err;

typedef struct {
    const char *noun; /* "units": "at most 100 units in one file" */
    int max_rows;     /* rows one file may hold */
    int columns;      /* the size of index[] (the header columns the registry knows) */
    const char *no_head_field, *no_head_message; /* a CSV file without a header */
    /* CSV: maps the header (names, mutable) onto index[columns] (-1: absent). */
    int (*header)(GPtrArray *names, int *index, core_import_err *e);
    /* CSV: a record as a body (new reference). */
    json_t *(*csv_body)(GPtrArray *fields, const int *index);
    /* GeoJSON: a feature as a body (*body: new reference), or CORE_EINVAL
     * with *e->field and *e->message. */
    int (*feature_body)(const json_t *feature, json_t **body, core_import_err *e);
    /* Checks a body and appends it to rows as {key: n, …}; takes at (the
     * place); on error *e->where is at. ctx is the parse's. */
    int (*add)(void *ctx, json_t *rows, const json_t *body, const char *key, int n, char *at,
               core_import_err *e);
} core_import_spec;

/* *e->where = at (taken), *e->field = field, *e->message = message
 * (taken); returns CORE_EINVAL. */
int core_import_refuse(core_import_err *e, char *at, const char *field, char *message);

/* Parses a CSV file (UTF-8, a byte order mark allowed) / a GeoJSON
 * FeatureCollection. 0 and *rows, or CORE_EINVAL with the error (the
 * message led by its place unless it is the whole file) and *rows NULL. */
int core_import_csv(const core_import_spec *spec, void *ctx, const char *text, size_t len,
                    json_t **rows, core_import_err *e);
int core_import_geojson(const core_import_spec *spec, void *ctx, const json_t *doc, json_t **rows,
                        core_import_err *e);

/* Maps a header onto columns (NULL-terminated): index[k] the field of
 * columns[k], -1 when absent; names are trimmed in place. -1 and *bad (the
 * name in lower case, g_free) for a column unknown or repeated, else 0. */
int core_import_columns(GPtrArray *names, const char *const *columns, int *index, char **bad);

/* Writer: one row (its body under key), created, updated or unchanged:
 * *what 'c', 'u' or '='; on error *error may get a reply object. */
typedef int (*core_import_upsert_fn)(core_txn *txn, void *op, const json_t *fields, char *what,
                                     json_t **error);
/* Writer: every row by upsert, *result {"created","updated","unchanged"};
 * the first error stops it, *error then also names the row's place. */
int core_import_write(core_txn *txn, const json_t *rows, const char *key,
                      core_import_upsert_fn upsert, void *op, json_t **result, json_t **error);

#endif
