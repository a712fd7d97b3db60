/*
 * loop.h — the one event loop and the worker pool.
 *
 * citycmd runs a single GLib main loop on the main thread: libwebsockets,
 * hiredis and every timer live on it, and nothing on it may block. Heavy jobs
 * (imports, long searches, store reads) go to a small worker pool; their
 * "done" callbacks run back on the loop thread.
 *
 * Ownership: `data` passed to core_work_submit/core_loop_post belongs to the
 * callbacks; core never frees it. If core_work_submit fails, neither callback
 * is ever called and the caller still owns `data`.
 */
#ifndef CITYCMD_CORE_LOOP_H
#define CITYCMD_CORE_LOOP_H

#include <glib.h>

typedef struct core_loop core_loop;

typedef void (*core_work_fn)(void *data); /* worker thread */
typedef void (*core_done_fn)(void *data); /* loop thread */

/* workers: pool size (1..64); max_queue: jobs waiting before submit says CORE_EBUSY. */
core_loop *core_loop_new(int workers, int max_queue);
/* Waits for queued and running jobs, refuses new ones (CORE_ESHUTDOWN), then
 * runs what they posted. Part of shutdown; idempotent. */
void core_loop_stop_workers(core_loop *loop);
/* Runs every callback posted so far, now, on the calling (loop) thread. */
void core_loop_drain(core_loop *loop);
/* Stops the workers, runs what is left and frees the loop. NULL is fine. */
void core_loop_free(core_loop *loop);

GMainLoop *core_loop_main(core_loop *loop);
GMainContext *core_loop_context(core_loop *loop);
void core_loop_run(core_loop *loop);
void core_loop_quit(core_loop *loop);
/* TRUE when called on the loop thread. */
gboolean core_loop_is_loop_thread(core_loop *loop);

/* Runs work(data) on a worker, then done(data) on the loop. 0, CORE_EBUSY or CORE_ESHUTDOWN. */
int core_work_submit(core_loop *loop, core_work_fn work, core_done_fn done, void *data);
/* From any thread: runs fn(data) on the loop thread soon, in posting order. */
void core_loop_post(core_loop *loop, core_done_fn fn, void *data);
/* Jobs queued or running in the pool. */
int core_loop_work_depth(core_loop *loop);

#endif
