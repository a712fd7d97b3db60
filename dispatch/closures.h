/*
 * closures.h — road closures (dispatch/closures.c): a dispatcher or an
 * incident closes a stretch of road, and travel times go round it from the
 * next search on.
 *
 * A closure is one edge of the road graph (a street between two
 * junctions), found by the point given (snapped to the nearest open edge
 * within 50 m). It is kept in the store (table road_closures, events
 * road.closed and road.reopened, audited) and applied to the graph when
 * committed and again at every start (by its point, so a rebuilt package
 * keeps it where it was). Loop thread.
 */
#ifndef CITYCMD_DISPATCH_CLOSURES_H
#define CITYCMD_DISPATCH_CLOSURES_H

#include "../core/store.h"
#include "dispatch.h"
#include "roads.h"

#include <jansson.h>

#define DISP_CLOSURE_SNAP_M 50.0

typedef struct disp_closures disp_closures;

void disp_closures_register(core_store *st);
/* Loads the open closures and closes their edges in roads (may be NULL:
 * then closures are kept but close nothing). */
disp_closures *disp_closures_new(core_store *st, disp_roads *roads);
void disp_closures_free(disp_closures *c);

/* Closes the edge at {"lon","lat"} with an optional "reason" (up to 500
 * bytes) and "incident" ("I-n"). done gets the closure. CORE_EINVAL with
 * *field and *message (g_free) for a bad body; CORE_ENOTFOUND when no open
 * road is within DISP_CLOSURE_SNAP_M. */
int disp_closure_add(disp_closures *c, const json_t *body, const char *actor, const char *source,
                     disp_json_done done, void *arg, char **field, char **message);
/* Reopens closure id. CORE_ENOTFOUND when there is no such open closure. */
int disp_closure_remove(disp_closures *c, int64_t id, const char *actor, const char *source,
                        disp_json_done done, void *arg);
/* {"closures":[{"id","lon","lat","reason","incident","by","closed_at","geometry"}…]}. */
json_t *disp_closures_json(const disp_closures *c);

#endif
