/*
 * avl.h — automatic vehicle location: the positions the units' devices
 * report, filtered as a mature tracking server does, the newest one per
 * unit in memory, and a grid over the city for "which units are in this
 * viewport".
 *
 * A report is checked against the unit's last accepted position, in the
 * order it arrives (the decoders keep each connection's order): one that is
 * not newer (outdated), more than a minute ahead of the server's clock
 * (future), older than a day (stale), without a valid fix, at 0,0, or an
 * implausible jump (faster than DISP_AVL_MAX_KMH from the last one, unless
 * a minute has passed since) is refused with its reason and counted. A
 * device no unit has is refused too. Watchers (the WebSocket feed) hear of
 * every accepted position.
 *
 * Memory is one entry per unit that has reported. Loop thread only.
 */
#ifndef CITYCMD_DISPATCH_AVL_H
#define CITYCMD_DISPATCH_AVL_H

#include "gps.h"

#include <stdint.h>

#define DISP_AVL_MAX_KMH 250.0

typedef struct disp_avl disp_avl;

/* The unit a device reports for: its id (> 0) and agency, or 0 when no
 * unit has the device. */
typedef int64_t (*disp_avl_lookup_fn)(const char *device, const char **agency, void *user);

typedef struct {
    int64_t unit_id;
    char device[32];
    char agency[24];
    int64_t fix_ms;  /* the device's time of the fix */
    int64_t recv_ms; /* when the server accepted it */
    double lon, lat;
    double speed_kmh, course_deg; /* NAN when unknown */
} disp_avl_pos;

typedef enum {
    DISP_AVL_ACCEPTED,
    DISP_AVL_UNKNOWN_DEVICE,
    DISP_AVL_OUTDATED,
    DISP_AVL_FUTURE,
    DISP_AVL_STALE,
    DISP_AVL_INVALID,
    DISP_AVL_JUMP,
    DISP_AVL_VERDICTS
} disp_avl_verdict;

/* "accepted", "unknown_device", … */
const char *disp_avl_verdict_name(disp_avl_verdict v);

disp_avl *disp_avl_new(disp_avl_lookup_fn lookup, void *user);
void disp_avl_free(disp_avl *a); /* accepts NULL */

/* Does a unit have this device? (Teltonika's handshake asks.) */
int disp_avl_known(disp_avl *a, const char *device);
/* A position reported for a unit directly (a field unit's phone, signed
 * in): the same filters, without the device lookup. */
disp_avl_verdict disp_avl_report_unit(disp_avl *a, int64_t unit_id, const char *agency,
                                      const disp_gps_fix *fix, int64_t now_ms);
/* One report from a device, received now_ms. */
disp_avl_verdict disp_avl_report(disp_avl *a, const disp_gps_fix *fix, int64_t now_ms);

typedef void (*disp_avl_fn)(const disp_avl_pos *p, void *user);
/* fn hears of every accepted position, after the index has it. */
void disp_avl_watch(disp_avl *a, disp_avl_fn fn, void *user);
void disp_avl_unwatch(disp_avl *a, disp_avl_fn fn, void *user);

/* The newest position of a unit, or NULL. */
const disp_avl_pos *disp_avl_get(const disp_avl *a, int64_t unit_id);
/* Calls fn for each unit whose newest position is inside bbox (west, south,
 * east, north; NULL: everywhere), in no particular order. */
void disp_avl_foreach(const disp_avl *a, const double *bbox, disp_avl_fn fn, void *user);
unsigned disp_avl_count(const disp_avl *a);
/* Reports refused for each verdict so far (accepted included). */
uint64_t disp_avl_counted(const disp_avl *a, disp_avl_verdict v);

#endif
