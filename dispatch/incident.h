/*
 * incident.h — calls and incidents: the category catalogue, intake of
 * calls from the five lines, fusion of calls into incidents, and the
 * incident lifecycle.
 *
 * A call is validated on the loop thread (fields, catalogue, location:
 * coordinates inside the city, or a place text resolved by the GIS search)
 * and written by the store's writer, which decides fusion there: the
 * writer is the one place where calls are serialised, so two callers
 * reporting the same fire at the same instant still join one incident.
 * Every change is an event with subject "incident/ID" (the timeline is the
 * event log of that subject) carrying the incident's agencies, by which
 * the feed and the API decide who may see it.
 *
 * All functions run on the loop thread; results come back through
 * callbacks on the loop thread after the store committed or read.
 */
#ifndef CITYCMD_DISPATCH_INCIDENT_H
#define CITYCMD_DISPATCH_INCIDENT_H

#include "../core/store.h"
#include "../gis/gis.h"
#include "dispatch.h"

/* ---- the catalogue ---- */

typedef struct {
    char *name;      /* "fire/structure" */
    char *family;    /* "fire": calls fuse only within a family */
    char *owner;     /* owning agency */
    char **joint;    /* further agencies (NULL-terminated) */
    int priority;    /* 1 (highest) .. 5 */
    double radius_m; /* fusion: same incident within this distance … */
    int window_s;    /* … and this long after its last call */
} disp_category;

typedef struct disp_catalogue disp_catalogue;

/* The built-in catalogue, or the JSON file at path (docs/CALLS.md). NULL
 * with *err when the file is wrong. */
disp_catalogue *disp_catalogue_new(const char *path, char **err);
void disp_catalogue_free(disp_catalogue *c);
const disp_category *disp_category_find(const disp_catalogue *c, const char *name);
/* {"categories":[…]} (new reference). */
json_t *disp_catalogue_json(const disp_catalogue *c);

/* ---- calls and incidents ---- */

#define DISP_CALL_TEXT_MAX 8000

typedef struct disp_incidents disp_incidents;

void disp_incidents_register(core_store *st);
/* city may be NULL (then locations are checked only as lon/lat). A call's
 * address and districts are looked up on loop's workers (NULL: inline).
 * Loads the open incidents (the live board) from the store, so call it
 * after core_store_open. */
disp_incidents *disp_incidents_new(core_store *st, core_bus *bus, core_loop *loop,
                                   disp_catalogue *cat, gis_city *city);
void disp_incidents_free(disp_incidents *d);

/* Validates a call (docs/API.md, POST /api/v1/calls) and queues it; done
 * gets {"call":{…},"incident":{…},"joined":bool}. CORE_EINVAL with *field
 * and *message (g_free) naming the problem. */
int disp_call_add(disp_incidents *d, const json_t *body, const char *call_taker, const char *agency,
                  const char *source, disp_json_done done, void *arg, char **field, char **message);

/* Incidents of the given agencies (NULL: all), newest activity first; open
 * ones only unless all. done gets an array. */
int disp_incidents_list(disp_incidents *d, char **agencies, int all, int limit, disp_json_done done,
                        void *arg);
/* One incident with its calls and timeline; done gets it or CORE_ENOTFOUND. */
int disp_incident_get(disp_incidents *d, int64_t id, disp_json_done done, void *arg);
/* Adds a snapshot or clip to the incident's record: an "incident.media"
 * event on its timeline with the item (taken), which GET lists under
 * "media". done gets the item; CORE_ENOTFOUND for no such incident. */
int disp_incident_media_add(disp_incidents *d, int64_t id, json_t *media, const char *actor,
                            const char *source, disp_json_done done, void *arg);

/* Changes status, priority, response level, or adds a note:
 * {"status":"dispatched"|…, "priority":1-5, "level":"I"-"IV", "note":"…"}.
 * CORE_EINVAL (*field, *message) for a bad body or an impossible status
 * change (checked in the writer against the stored status). */
int disp_incident_update(disp_incidents *d, int64_t id, const json_t *body, const char *actor,
                         const char *source, disp_json_done done, void *arg, char **field,
                         char **message);

/* Merges incident id into `into`: its calls move there, it becomes
 * "merged" with replaced_by, the two are linked (REPLACED/REPLACING, as
 * NENA EIDO says). done gets the incident merged into. CORE_ECONFLICT with
 * {"message"} when either is not open. */
int disp_incident_merge(disp_incidents *d, int64_t id, int64_t into, const char *actor,
                        const char *source, disp_json_done done, void *arg);
/* Splits calls out of incident id: back into the incident they came from
 * when it was merged here (restored exactly, status and all), else into a
 * new incident linked as SPLIT from this one. done gets that incident. */
int disp_incident_split(disp_incidents *d, int64_t id, const int64_t *calls, size_t n,
                        const char *actor, const char *source, disp_json_done done, void *arg);

/* Checks every second for priority-1 incidents still unassigned ("new")
 * after unassigned_s or not on scene after arrival_s, and raises each
 * alarm once: an incident.alarm event {"kind":"unassigned"|"no_arrival"}
 * and the incident's "alarms". */
void disp_incidents_start_timers(disp_incidents *d, int unassigned_s, int arrival_s);

/* The incident (as disp_incident_get gives it) as NENA EIDO JSON; origin
 * names this centre in the EIDO identifiers (new reference). */
json_t *disp_incident_eido(const json_t *incident, const char *origin);
/* A public warning about the incident as an OASIS CAP 1.2 alert (g_free):
 * category from the family, urgency and severity from the priority, the
 * area a circle of radius_km around the incident. */
char *disp_incident_cap(const json_t *incident, const char *sender, const char *headline,
                        const char *description, const char *instruction, double radius_km);

/* Hazards recorded at an address (gas cylinders, a dangerous dog, a
 * violent occupant): {"location", "radius_m" (1-500, default 30), "kind",
 * "text"}; every incident within 50 m of one lists it under "hazards".
 * done gets the hazard. */
int disp_hazard_add(disp_incidents *d, const json_t *body, const char *author, const char *agency,
                    const char *source, disp_json_done done, void *arg, char **field,
                    char **message);
/* Hazards whose circle comes within within_m of a point; done gets an array. */
int disp_hazards_near(disp_incidents *d, double lon, double lat, double within_m,
                      disp_json_done done, void *arg);
/* Marks a hazard removed (kept on record); CORE_ENOTFOUND if there is none. */
int disp_hazard_remove(disp_incidents *d, int64_t id, const char *author, const char *source,
                       disp_json_done done, void *arg);

/* ---- the live board ---- */

/* Every open incident, kept in memory on the loop thread: loaded at start,
 * then kept by the committed events, which carry the incident's state after
 * each change. Screens take a snapshot of it, then follow its changes. */
typedef struct {
    int64_t id;
    double lon, lat;
    char **agencies;  /* owner first, then the joint ones */
    json_t *incident; /* as disp_incidents_list gives it */
    json_t *changed;  /* what the last change changed: {"id", fields…}; NULL when new */
} disp_live;

/* gone: the incident closed, was cancelled or merged; this is its last call. */
typedef void (*disp_live_fn)(const disp_live *inc, int gone, void *user);
/* fn is called after every committed change of an open incident, in order. */
void disp_live_watch(disp_incidents *d, disp_live_fn fn, void *user);
void disp_live_unwatch(disp_incidents *d, disp_live_fn fn, void *user);
/* Calls fn for every open incident (gone is 0), in no particular order. */
void disp_live_foreach(disp_incidents *d, disp_live_fn fn, void *user);
/* The open incident id, or NULL; valid until its next change. */
const disp_live *disp_live_get(disp_incidents *d, int64_t id);
unsigned disp_live_count(const disp_incidents *d);

/* The agencies of an incident JSON ("agency" and "joint"), for authorization. */
char **disp_incident_agencies(const json_t *incident);

#endif
