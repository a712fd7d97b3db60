/*
 * units_internal.h — shared by units.c (fields, writes), units_read.c (the
 * mirror, reads) and units_import.c (files) only.
 */
#ifndef CITYCMD_DISPATCH_UNITS_INTERNAL_H
#define CITYCMD_DISPATCH_UNITS_INTERNAL_H

#include "internal.h"
#include "units.h"

struct disp_units {
    core_store *store;
    core_bus *bus;
    char *agencies;        /* the known agencies, comma-separated */
    GHashTable *by_id;     /* int64 id -> disp_unit_info* (owned): the mirror */
    GHashTable *by_device; /* device -> disp_unit_info* (the same entries) */
    unsigned sub;
};

#define UNIT_COLUMNS                                                                               \
    "id, call_sign, kind, agency, station, capabilities, device, primary_status, status,"          \
    " incident_id, status_ms, home_lon, home_lat, created_ms, updated_ms, removed_ms"

/* The unit of a row of UNIT_COLUMNS, as the API shows it (docs/API.md). */
json_t *disp__unit_row(sqlite3_stmt *s);

/* Checks a unit's fields. create: all required fields there, defaults
 * filled in; otherwise only the fields given. status: "status" and
 * "incident" accepted. *out gets the fields in stored form ("device" and
 * "home" may be null; "incident" an integer, 0 for none). 0 or CORE_EINVAL
 * with *field and *message. */
int disp__unit_check(disp_units *u, const json_t *body, int create, int status, json_t **out,
                     char **field, char **message);

/* Writer: one imported row. fields as disp__unit_check(create) gives them.
 * *what: 'c' created, 'u' updated, '=' unchanged. On error, *error gets
 * {"field","message"} or {"forbidden": agency}. */
int disp__unit_upsert(core_txn *txn, json_t *fields, char **may, const char *actor,
                      const char *source, char *what, json_t **error);

/* The mirror (units_read.c). */
void disp__mirror_start(disp_units *u);
void disp__mirror_stop(disp_units *u);

/* "U-12" / "12" -> 12, else 0; the same for another prefix. */
int64_t disp__parse_ext(const char *s, char prefix);

#endif
