/*
 * history.h — where each unit has been: its accepted positions, at most one
 * per --history-interval-ms of fix time per unit (1 s: the rate a replay
 * needs, and a tracker reporting 50 times a second does not write 50 rows),
 * kept for --history-days in a database of its own (positions.db in the
 * state directory), queryable per unit and time range for the replay of a
 * response. The live map gets every fix; only what is kept is thinned.
 *
 * The live path never waits for it: the loop thread appends to a bounded
 * queue (positions beyond DISP_HISTORY_QUEUE_MAX are dropped and counted)
 * and a thread of its own writes the queue in one transaction every 200 ms,
 * and removes what is older than the retention once a minute. Positions
 * are telemetry, not changes: they are neither events nor audited, and the
 * database is synchronous=NORMAL (a crash may lose the last moments of
 * tracks, never the store's records). Queries run on the loop's workers
 * with read-only connections.
 */
#ifndef CITYCMD_DISPATCH_HISTORY_H
#define CITYCMD_DISPATCH_HISTORY_H

#include "../core/loop.h"
#include "avl.h"
#include "dispatch.h"

#define DISP_HISTORY_QUEUE_MAX 200000

typedef struct disp_history disp_history;

/* Opens (creating) dir/positions.db and starts the writer thread. NULL
 * with *err (g_free) when the database cannot be opened. */
disp_history *disp_history_new(const char *dir, int keep_days, int interval_ms, core_loop *loop,
                               char **err);
/* Writes what is queued, stops the thread, closes. NULL is fine. */
void disp_history_free(disp_history *h);

/* Loop thread: queues a position; never blocks. */
void disp_history_add(disp_history *h, const disp_avl_pos *p);

/* The positions of a unit with from_ms <= fix time <= to_ms, oldest first,
 * at most limit: done gets {"positions":[{"at","lon","lat","speed_kmh",
 * "course"}…],"truncated":bool}. Positions still queued are not in it. */
int disp_history_track(disp_history *h, int64_t unit_id, int64_t from_ms, int64_t to_ms, int limit,
                       disp_json_done done, void *arg);

/* Positions written, and dropped because the queue was full. */
uint64_t disp_history_written(disp_history *h);
uint64_t disp_history_dropped(disp_history *h);

#endif
