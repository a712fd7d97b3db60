/*
 * pipes.h — a main bursts: the city's pipe networks live, isolations and
 * repair orders (dispatch/pipes.c, dispatch/repairs.c; docs/API.md, "A main
 * bursts").
 *
 * The networks of the city package (gis/pipes.h) are loaded at start; each
 * belongs to the agency of its utility ("water", "gas"). What changes is
 * kept in the store and applied again at every start:
 *
 * - valve states (open, closed, inoperable) as crews find them: table
 *   pipe_valve_states, events pipes.valve;
 * - isolations: a burst pipe, optionally a time window (planned works), the
 *   valves a crew reported closed or failed to close; the answer is
 *   computed from the network as it is whenever it is asked for, so a
 *   failed valve or a valve marked inoperable changes it at once. Table
 *   pipe_isolations, events pipes.isolation.*;
 * - repair orders (repairs.c): the isolation given to a crew, with a status
 *   (planned → in_progress → valves_closed → repaired → restored → closed)
 *   and an approval when it cuts off many customers or a priority one.
 *   Table repair_orders, events repair.*.
 *
 * Every event names the network's agency ("agencies"), so only those who
 * may read that agency's pipes see it. A call of category
 * utility/water-main-burst (or utility/gas-leak) proposes an isolation of
 * the nearest pipe of that utility by itself, in the incident's timeline.
 *
 * Loop thread only. Isolation queries run on it: they cost milliseconds on
 * a network of 500,000 pipes (docs/BENCHMARKS.md).
 */
#ifndef CITYCMD_DISPATCH_PIPES_H
#define CITYCMD_DISPATCH_PIPES_H

#include "../core/bus.h"
#include "../core/session.h"
#include "../core/store.h"
#include "../gis/pipes.h"
#include "avl.h"
#include "dispatch.h"
#include "incident.h"
#include "roads.h"
#include "units.h"

#include <jansson.h>

#define DISP_PIPES_SNAP_M 100.0         /* how far from a pipe a clicked point may be */
#define DISP_PIPES_APPROVAL_DEFAULT 200 /* customers above which an order needs approval */

typedef struct disp_pipes disp_pipes;

typedef struct {
    core_store *store;
    core_bus *bus;
    disp_units *units;
    disp_avl *avl;
    disp_roads *roads;         /* may be NULL: no crew by road */
    disp_incidents *incidents; /* may be NULL: no incident timeline */
    int approval_customers;    /* 0: DISP_PIPES_APPROVAL_DEFAULT */
} disp_pipes_deps;

void disp_pipes_register(core_store *st);
/* Takes the networks (ownership passes; NULL-terminated array of loaded,
 * finished networks, freed with g_free after). */
disp_pipes *disp_pipes_new(const disp_pipes_deps *deps, gis_pipenet **networks);
void disp_pipes_free(disp_pipes *p);

size_t disp_pipes_network_count(const disp_pipes *p);
/* The agency of a network by name, or NULL when there is none. */
const char *disp_pipes_agency(const disp_pipes *p, const char *network);
/* The agency that owns an isolation or an order, or NULL when unknown. */
const char *disp_isolation_agency(const disp_pipes *p, int64_t id);
const char *disp_repair_agency(const disp_pipes *p, int64_t id);

/* ---- reads (new refs; NULL when not found) ---- */

/* {"networks":[{"name","utility","agency","nodes","links","valves","customers","segments","bbox"}]}
 * for the networks session s may read. */
json_t *disp_pipes_networks_json(disp_pipes *p, const core_session *s);
json_t *disp_pipes_segments_json(disp_pipes *p, const char *network);
/* A GeoJSON FeatureCollection of one layer (links, valves, nodes,
 * customers) inside bbox (NULL: all). CORE_EINVAL in *rc for an unknown layer. */
json_t *disp_pipes_layer_json(disp_pipes *p, const char *network, const char *layer,
                              const double *bbox, int *rc);
/* One isolation with its answer as the network is now (detail: geometry
 * and customers). */
json_t *disp_isolation_json(disp_pipes *p, int64_t id, int detail);
/* Open isolations (all: also cancelled and finished) the session may read. */
json_t *disp_isolations_json(disp_pipes *p, const core_session *s, int all);

/* ---- writes: 0 and done later with the result, or an error at once;
 * CORE_EINVAL with *field and *message (g_free) for a bad body ---- */

/* {"network"?, "pipe"? | "point":[lon,lat], "window"?:{"from","to"}, "incident"?,
 * "failed"?:[valve ids], "note"?}: stores an isolation. allowed(agency) says
 * whether the actor may isolate on a network of that agency. */
typedef int (*disp_pipes_allowed)(const char *agency, void *user);
int disp_isolation_create(disp_pipes *p, const json_t *body, const char *actor, const char *source,
                          disp_pipes_allowed allowed, void *user, disp_json_done done, void *arg,
                          char **field, char **message);
/* A crew's report on one valve of an isolation: "closed" or "failed". */
int disp_isolation_report(disp_pipes *p, int64_t id, const char *valve, const char *result,
                          const char *actor, const char *source, disp_json_done done, void *arg,
                          char **field, char **message);
/* Ends an isolation ("cancelled" or "done"). */
int disp_isolation_end(disp_pipes *p, int64_t id, const char *status, const char *actor,
                       const char *source, disp_json_done done, void *arg);
/* {"state":"open|closed|inoperable","reason"?}: a valve as the crew found it. */
int disp_pipes_valve_set(disp_pipes *p, const char *network, const char *valve, const json_t *body,
                         const char *actor, const char *source, disp_json_done done, void *arg,
                         char **field, char **message);

/* Changes to a network itself (networks.c): change "valve.added" with body
 * {"link","node","id"?}, "valve.removed" or "link.removed" of element. The
 * segments are recomputed when it is committed; done gets {"change":{…,
 * "segments"}}. CORE_ENOTFOUND for an unknown network or element. */
int disp_pipes_edit(disp_pipes *p, const char *network, const char *change, const json_t *body,
                    const char *element, const char *actor, const char *source, disp_json_done done,
                    void *arg, char **field, char **message);

/* ---- repair orders (repairs.c) ---- */

json_t *disp_repair_json(disp_pipes *p, int64_t id);
json_t *disp_repairs_json(disp_pipes *p, const core_session *s, int all);
/* {"isolation": id, "crew"?: "U-n", "notes"?}: the crew is the nearest
 * available crew of the network's agency by road when not given. */
int disp_repair_create(disp_pipes *p, const json_t *body, const char *actor, const char *source,
                       disp_json_done done, void *arg, char **field, char **message);
/* {"status": next}: one step along the lifecycle (or "cancelled"). */
int disp_repair_status(disp_pipes *p, int64_t id, const json_t *body, const char *actor,
                       const char *source, disp_json_done done, void *arg, char **field,
                       char **message);
int disp_repair_approve(disp_pipes *p, int64_t id, const char *actor, const char *source,
                        disp_json_done done, void *arg, char **field, char **message);

#endif
