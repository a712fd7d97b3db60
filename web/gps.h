/*
 * gps.h — the listeners for vehicle trackers (web/gps.c): OsmAnd over HTTP,
 * GT06 and Teltonika over TCP, feeding dispatch/avl. Loop thread only.
 */
#ifndef CITYCMD_WEB_GPS_H
#define CITYCMD_WEB_GPS_H

#include "../dispatch/avl.h"

typedef struct web_gps web_gps;

/* Listens on each address given ("HOST:PORT"; NULL or "" for none; port 0
 * picks one, logged as gps.listening). NULL with *err (g_free) when an
 * address is wrong or cannot be bound. */
web_gps *web_gps_new(disp_avl *avl, const char *osmand, const char *gt06, const char *teltonika,
                     int idle_s, int max_conns, char **err);
/* The port bound for "osmand", "gt06" or "teltonika", or 0. */
int web_gps_port(const web_gps *g, const char *protocol);
/* Stops listening and closes every connection. Idempotent. */
void web_gps_stop(web_gps *g);
/* Stops and frees. NULL is fine. */
void web_gps_free(web_gps *g);

#endif
