/*
 * web.h — the libwebsockets server: HTTP API, static files, the /ws feed.
 *
 * Runs on the core loop (libwebsockets' glib event library with the loop as
 * its foreign loop). Every handler runs on the loop thread and must not
 * block; handlers that need the store reply later from a callback.
 */
#ifndef CITYCMD_WEB_H
#define CITYCMD_WEB_H

#include "../core/bus.h"
#include "../core/config.h"
#include "../core/loop.h"
#include "../core/redis.h"
#include "../core/session.h"
#include "../core/store.h"

typedef struct web_server web_server;

typedef struct {
    const core_config *cfg;
    core_loop *loop;
    core_store *store;
    core_bus *bus;
    core_redis *redis; /* NULL without --redis */
    core_sessions *sessions;
    struct gis_city *city; /* NULL without --city */
    struct disp_incidents *incidents;
    struct disp_units *units;         /* the unit registry and its mirror */
    struct disp_avl *avl;             /* the units' positions */
    struct disp_history *history;     /* where they have been; NULL: not kept */
    struct disp_geofences *geofences; /* stations, hospitals, hazard zones drawn on the map */
    struct disp_catalogue *catalogue;
    struct disp_roads *roads;       /* the city's road graph; NULL without --city */
    struct disp_plans *plans;       /* response plans */
    struct disp_closures *closures; /* road closures (applied to roads) */
    struct disp_pipes *pipes;       /* pipe networks, isolations, repair orders */
    struct vid_cameras *cameras;    /* the CCTV camera registry */
    const char *static_dir;
} web_deps;

/* Starts listening. Returns NULL and sets *err when the port cannot be bound. */
web_server *web_server_new(const web_deps *deps, char **err);
/* The port actually bound (useful with port 0). */
int web_server_port(const web_server *srv);
/* Stops taking new work: new requests get 503, WebSockets close with 1001. */
void web_server_begin_drain(web_server *srv);
/* HTTP requests still waiting for a reply. */
int web_server_pending(const web_server *srv);
void web_server_free(web_server *srv);

/* Registers every module's tables with the store (before core_store_open). */
void web_register_migrations(core_store *st);
/* `citycmd admin …`; returns the exit status. */
int web_admin_main(int argc, char **argv);

#endif
