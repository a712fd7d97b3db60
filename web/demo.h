/*
 * demo.h — --demo: the bundled demo city and its simulators.
 *
 * The demo has one account per kind of user and a fleet of units at the demo city's stations, and
 * it keeps the duty journal alive with a simulated shift log so every screen shows live traffic;
 * simulated calls, vehicles and cameras join as their modules land. Loop thread only.
 */
#ifndef CITYCMD_WEB_DEMO_H
#define CITYCMD_WEB_DEMO_H

#include "../core/store.h"

typedef struct web_demo web_demo;

/* The password of every demo account (published in the README). */
#define WEB_DEMO_PASSWORD "citycmd-demo"

/* Queues the creation of the demo accounts (operator, duty, calltaker,
 * police, fire, ems, water, leader, auditor) if the state has no users. */
int web_demo_accounts(core_store *store);

struct disp_units;
struct gis_city;
/* Queues a plausible fleet for the city when the registry is empty: per
 * fire station 2 engines and a ladder, per police station 3 patrol cars,
 * per hospital or ambulance station 2 ambulances, and 2 tow trucks, 2
 * water crews and 2 gas crews at the centre; a kind of station the city
 * lacks gets 2 units at the centre. Trackers "demo-0001", … */
void web_demo_fleet(struct disp_units *units, struct gis_city *city);

struct vid_cameras;
struct disp_roads;
/* Queues a few street cameras around the city's centre when the registry
 * is empty: each placed 30 m from a street (the road graph's nearest point
 * to a spot around the centre; the spot itself without a graph) and
 * looking at it, police and traffic cameras, streams at
 * rtsp://127.0.0.1:8554/cam1 … (tools/camera-sim serves them). */
void web_demo_cameras(struct vid_cameras *cameras, struct gis_city *city, struct disp_roads *roads);

/* interval_ms: time between simulated journal entries. */
web_demo *web_demo_start(core_store *store, int interval_ms);
void web_demo_stop(web_demo *demo);

#endif
