/*
 * recommend.h — which units to send to an incident (dispatch/recommend.c;
 * docs/API.md, "Who goes").
 *
 * For each slot of the incident's response plan, the units of the slot's
 * kind (with every capability it asks for) and of the incident's agencies,
 * ranked by their travel time by road from where they are now
 * (dispatch/avl) to the incident (dispatch/roads):
 *
 * - available units (primary status "available") and units returning;
 * - units dispatched or en route to another incident of lower priority
 *   (a larger number) may be offered as a diversion, marked so;
 * - any other unit (busy, out of service, already on this incident) is
 *   never offered; units already on this incident fill their slot first.
 *
 * Ranking: the travel time in 5-second steps, then the district's own units
 * (whose home station is the station of the incident's district) first,
 * then the exact time, then the call sign. The first units of each slot,
 * as many as it still needs, are recommended; a few more follow as
 * alternatives. A unit is used in one slot only.
 */
#ifndef CITYCMD_DISPATCH_RECOMMEND_H
#define CITYCMD_DISPATCH_RECOMMEND_H

#include "avl.h"
#include "incident.h"
#include "roads.h"
#include "units.h"

#include <jansson.h>

#define DISP_RECOMMEND_SNAP_M 500.0 /* how far from a drivable road a place may be */
#define DISP_RECOMMEND_ALTERNATIVES 3

/* The recommendations for incident (its JSON as the board holds it) under
 * plan (a plan object of dispatch/plans.h; NULL: none matched): {"plan":…,
 * "slots":[{"kind","count","assigned":[…],"units":[{unit, "eta_s",
 * "distance_m", "recommended", "diversion", "own_district",
 * "route"?}…]}…], "unreachable":[…]}. Routes (GeoJSON LineString
 * coordinates) come with the recommended units. NULL with *code and
 * *message (static) when the incident cannot be placed on the road graph. */
json_t *disp_recommend(disp_roads *roads, disp_units *units, disp_avl *avl,
                       disp_incidents *incidents, const json_t *incident, const json_t *plan,
                       const char **code, const char **message);

#endif
