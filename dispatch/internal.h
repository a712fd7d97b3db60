/*
 * internal.h — shared by the files of dispatch/ only: the incidents'
 * state and the helpers the intake, links, alarms and hazards have in
 * common. All on the threads the functions say (writer functions take a
 * core_txn; readers a sqlite3 connection).
 */
#ifndef CITYCMD_DISPATCH_INTERNAL_H
#define CITYCMD_DISPATCH_INTERNAL_H

#include "incident.h"

#include "../core/core.h"

#include <glib.h>
#include <math.h>
#include <string.h>

struct disp_incidents {
    core_store *store;
    core_bus *bus;
    core_loop *loop; /* its workers place calls on the map */
    disp_catalogue *cat;
    gis_city *city;
    double bbox[4];              /* the city's extent, for the location check */
    int unassigned_s, arrival_s; /* alarm thresholds for priority-1 incidents */
    guint timer;
    int checking;
    /* the live board (board.c) */
    GHashTable *live; /* id -> disp_live* */
    GArray *watchers; /* of {disp_live_fn, user} */
    unsigned live_sub;
};

typedef struct {
    int64_t id;
    char *status, *level, *note, *actor, *source;
    int priority;
    char *why;     /* a refusal found in the writer */
    json_t *media; /* disp_incident_media_add: the item */
    json_t *result;
    disp_json_done done;
    void *arg;
} disp__update_op;

/* A call's or a hazard's place. */
typedef struct {
    double lon, lat, confidence;
    char *location_text;
} disp__place;

#define INCIDENT_COLUMNS                                                                           \
    "id, type, family, priority, level, status, lon, lat, address, districts, agency, joint,"      \
    " callers, opened_ms, last_call_ms, updated_ms, closed_ms, merged_into,"                       \
    " (SELECT group_concat(kind) FROM incident_alarms WHERE incident_id = incidents.id)"

/* The incident of a row of INCIDENT_COLUMNS. */
json_t *disp__incident_row(sqlite3_stmt *s);
/* Loads the live board and follows the feed (board.c). */
void disp__board_start(disp_incidents *d);
void disp__board_stop(disp_incidents *d);

/* "I-12", "C-3", "H-7" (g_free). */
char *disp__ext_id(char prefix, int64_t id);
const char *disp__col_text(sqlite3_stmt *s, int i);
/* Metres between two lon/lat points a few kilometres apart. */
double disp__distance_m(double lon1, double lat1, double lon2, double lat2);
/* Writer: the incident as JSON into *out, or CORE_ENOTFOUND. */
int disp__read_incident(core_txn *txn, int64_t id, json_t **out);
/* Writer: an incident event (data stolen) with the incident's agencies for
 * the feed and its state after the change for the live board; call it
 * after the change is made. */
int disp__emit_change(core_txn *txn, disp__update_op *op, const char *type, json_t *data);
/* CORE_EINVAL with *field and *message (msg taken). */
int disp__refuse(char **field, char **message, const char *f, char *msg);
/* Coordinates inside the city, or a text resolved by its search. */
int disp__locate(disp_incidents *d, disp__place *op, json_t *loc, char **field, char **message);
/* Index in the status list (open ones below 5), or -1. */
int disp__status_index(const char *s);
/* Writer: sets removed_ms of row id of table (a constant) if it is not
 * removed yet; 0, CORE_ENOTFOUND or CORE_EDB. */
int disp__mark_removed(core_txn *txn, const char *table, int64_t id);
/* Reader: hazards whose circle comes within extra metres of a point. */
json_t *disp__hazards_near(sqlite3 *db, double lon, double lat, double extra);

#endif
