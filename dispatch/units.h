/*
 * units.h — the unit registry and unit status: every police car, fire
 * engine, ambulance, tow truck and utility crew van, who owns it, what it
 * carries, which tracker it has, and what it is doing.
 *
 * A unit's status follows NENA EIDO (NENA-STA-021, after the NENA/APCO
 * EIDD): a secondary status says what the unit is doing (in_station,
 * en_route, …) and determines its primary status, whether it can be sent
 * (available, conditionally_available, not_available). The statuses that
 * concern an incident carry its id. docs/API.md has the tables.
 *
 * Every change is one store write with its events (subject "unit/N",
 * "agencies":[agency] for the feed); a status change that concerns an
 * incident also writes incident.unit into that incident's timeline. The
 * writer checks what depends on stored state (unique call signs and
 * devices, the incident being open). A loop-thread mirror of the units
 * that are not removed is loaded at start and kept by the committed
 * events, for the GPS module's lookups by device.
 *
 * All functions run on the loop thread; results come back through
 * callbacks on the loop thread after the store committed or read. On an
 * error found in the writer, done gets rc and {"field", "message"}
 * (CORE_EINVAL, CORE_EEXISTS), {"message"} (CORE_ECONFLICT), {"forbidden":
 * "agency"} (an import touching another agency's unit) or NULL.
 */
#ifndef CITYCMD_DISPATCH_UNITS_H
#define CITYCMD_DISPATCH_UNITS_H

#include "../core/store.h"
#include "dispatch.h"

typedef struct disp_units disp_units;

typedef struct {
    int64_t id;
    char *call_sign, *kind, *agency, *station, *device; /* device may be NULL */
    char *primary, *status;
    char **capabilities; /* NULL-terminated ("foam", "als", …) */
    int64_t incident_id, status_ms;
} disp_unit_info;

/* Registers the units table with the store (before core_store_open). */
void disp_units_register(core_store *st);
/* agencies: the known agencies (comma-separated; NULL: the default list).
 * Loads the mirror from the store, so call it after core_store_open. */
disp_units *disp_units_new(core_store *st, core_bus *bus, const char *agencies);
void disp_units_free(disp_units *u);

/* Loop thread. NULL when no unit has that device / id. Valid until the next write completes. */
const disp_unit_info *disp_units_by_device(disp_units *u, const char *device);
const disp_unit_info *disp_units_get(disp_units *u, int64_t id);
typedef void (*disp_unit_fn)(const disp_unit_info *u, void *user);
/* Loop thread: fn for every unit in the mirror, in no particular order. */
void disp_units_foreach(disp_units *u, disp_unit_fn fn, void *user);
/* Units in the mirror (not removed). */
unsigned disp_units_count(const disp_units *u);

/* The kinds and secondary statuses (NULL-terminated), and a status's
 * primary state (NULL for an unknown status). */
const char *const *disp_unit_kinds(void);
const char *const *disp_unit_statuses(void);
const char *disp_unit_primary(const char *status);

/* Sets a unit's status for the system (a geofence, arrival at an incident): the same checks and
 * events as the API, actor as given ("system"). done may be NULL.
 * incident_id 0: the unit's own incident when the status concerns one. CORE_EINVAL at once for
 * an unknown status (done is not called); done gets the unit, or an error as above. */
int disp_unit_set_status(disp_units *u, int64_t id, const char *status, int64_t incident_id,
                         const char *actor, const char *source, disp_json_done done, void *arg);

/* The same, only while the unit's status is one of from (NULL-terminated;
 * NULL: any), checked in the writer: CORE_ECONFLICT with {"message"} when
 * it is not (someone changed it meanwhile). */
int disp_unit_set_status_if(disp_units *u, int64_t id, const char *const *from, const char *status,
                            int64_t incident_id, const char *actor, const char *source,
                            disp_json_done done, void *arg);

/* Creates a unit from {"call_sign", "kind", "agency", "station", "device",
 * "capabilities": [...], "home": {"lon","lat"}, "status", "incident"}
 * (docs/API.md). CORE_EINVAL with *field and *message (g_free) for a bad
 * body; done gets the unit, or CORE_EEXISTS naming call_sign or device. */
int disp_unit_add(disp_units *u, const json_t *body, const char *actor, const char *source,
                  disp_json_done done, void *arg, char **field, char **message);
/* Changes any of those fields and/or the status ("status", "incident":
 * "I-n"). agency (NULL: any) is the unit's agency the caller was
 * authorized for: the write refuses with CORE_ECONFLICT if it changed
 * meanwhile. done gets the unit, or CORE_ENOTFOUND. */
int disp_unit_update(disp_units *u, int64_t id, const json_t *body, const char *agency,
                     const char *actor, const char *source, disp_json_done done, void *arg,
                     char **field, char **message);
/* Marks the unit removed (kept on record; its device is freed). */
int disp_unit_remove(disp_units *u, int64_t id, const char *agency, const char *actor,
                     const char *source, disp_json_done done, void *arg);

/* Units not removed (all: removed ones too) of the given agencies (NULL:
 * all), filtered by agency, status (secondary or primary) and kind when
 * not NULL, by call sign. done gets an array. */
int disp_units_list(disp_units *u, char **agencies, const char *agency, const char *status,
                    const char *kind, int all, disp_json_done done, void *arg);
/* One unit with "history": its latest status changes, newest first. */
int disp_unit_get(disp_units *u, int64_t id, disp_json_done done, void *arg);

/* Parses an import file into rows: CSV (header call_sign,kind,agency,
 * station,device,capabilities; capabilities separated by ';') or a GeoJSON
 * FeatureCollection whose properties carry the same fields (a Point is the
 * home station's place). Every row is checked as disp_unit_add checks a
 * body. 0 and *rows (an array of {"line"|"feature": n, "unit": {…}}), or
 * CORE_EINVAL with *where ("line 3", "feature 2"), *field and *message
 * (g_free). */
int disp_units_parse_csv(disp_units *u, const char *text, size_t len, json_t **rows, char **where,
                         char **field, char **message);
int disp_units_parse_geojson(disp_units *u, const json_t *doc, json_t **rows, char **where,
                             char **field, char **message);
/* Writes parsed rows all or nothing: a call sign already registered is
 * updated (restored if removed), others are created. may (NULL: any) lists
 * the agencies whose units the caller may change. done gets {"created",
 * "updated", "unchanged"}, or an error naming the row ({"line"|"feature",
 * "field", "message"}). Takes rows. */
int disp_units_import(disp_units *u, json_t *rows, char **may, const char *actor,
                      const char *source, disp_json_done done, void *arg);

#endif
