/*
 * store.h — the durable store: SQLite in WAL mode, synchronous=FULL.
 *
 * One writer thread owns the only write connection. A state change is a
 * write function queued with core_store_write(); the writer runs queued
 * writes inside one transaction (group commit), each in its own SAVEPOINT so
 * a failing write rolls back alone, then commits with one fsync. Only after
 * the commit does the loop thread publish the writes' events on the bus and
 * call their done callbacks — so whatever a client is told succeeded is on
 * disk. Events are rows of the append-only `events` table, written in the
 * same transaction as the state they describe.
 *
 * A failed commit or fsync (an I/O error, a full disk, corruption) stops the
 * store: every queued and later write fails with CORE_ESTOPPED and
 * core_store_status() reports it. Nothing is retried: after a failed fsync
 * the contents of the page cache are unknowable, so a person must look.
 *
 * Reads run on the worker pool with per-thread read-only connections (WAL
 * lets them proceed beside the writer), and core_store_load() reads
 * synchronously at start-up, before the loop serves anyone.
 *
 * Threads: core_store_write/read/status on the loop thread; write functions on
 * the writer thread; read functions on workers.
 */
#ifndef CITYCMD_CORE_STORE_H
#define CITYCMD_CORE_STORE_H

#include "bus.h"
#include "loop.h"

#include <glib.h>
#include <sqlite3.h>

typedef struct core_store core_store;
typedef struct core_txn core_txn;

typedef struct {
    const char *module; /* "core", "dispatch", … */
    int version;        /* 1, 2, … per module, applied in order */
    const char *sql;    /* one or more statements */
} core_migration;

typedef struct {
    const char *dir;  /* state directory; created if missing */
    int group_commit; /* nonzero: many writes per commit */
    int group_max;    /* most writes per commit */
    int queue_max;    /* queued writes before core_store_write says CORE_EBUSY */
    const char *vfs;  /* SQLite VFS name, NULL for the default (tests inject faults) */
} core_store_opts;

typedef struct {
    int ok;            /* 0 once stopped by a failed write */
    const char *error; /* why it stopped, or NULL; owned by the store */
    int queued;        /* writes waiting */
    int64_t last_seq;  /* last committed event */
    int64_t commits;
} core_store_status_t;

core_store *core_store_new(const core_store_opts *opts, core_loop *loop, core_bus *bus);
/* Registers migrations (before core_store_open). The array must outlive the store. */
void core_store_add_migrations(core_store *st, const core_migration *m, size_t n);
/* Creates the directory and database, applies migrations, starts the writer. */
int core_store_open(core_store *st, char **err);
/* Finishes queued writes and stops the writer; later writes get CORE_ESHUTDOWN.
 * Their completions are posted to the loop. Idempotent. */
void core_store_stop(core_store *st);
/* Stops the writer if running, then closes. NULL is fine. */
void core_store_free(core_store *st);
const char *core_store_path(const core_store *st);

/* Writer-thread function: make changes with core_txn_*; return 0 or CORE_E*. */
typedef int (*core_write_fn)(core_txn *txn, void *arg);
/* Loop-thread completion: rc is 0 when committed; events (owned by the store,
 * valid for the call) are the ones the write emitted, with their seq. */
typedef void (*core_write_done_fn)(int rc, GPtrArray *events, void *arg);

/* Queues a write. 0, CORE_EBUSY (queue full), CORE_ESTOPPED or CORE_ESHUTDOWN;
 * on failure neither callback is called. */
int core_store_write(core_store *st, core_write_fn fn, core_write_done_fn done, void *arg);

sqlite3 *core_txn_db(core_txn *txn);
/* A cached prepared statement for sql (reset, bindings cleared); NULL on error. */
sqlite3_stmt *core_txn_prepare(core_txn *txn, const char *sql);
/* Appends ev (ownership taken) to the events table; assigns ev->seq. Also
 * appends its audit row (action = type, object = subject, outcome "ok"). */
int core_txn_emit(core_txn *txn, core_event *ev);
/* Appends an audit row without an event, e.g. a denied attempt
 * (outcome "denied") or a failed login ("failed"). */
int core_txn_audit(core_txn *txn, const char *actor, const char *action, const char *object,
                   const char *source, const char *outcome, const char *detail);

/* Checks the audit chain in db. Returns 0 and sets *rows when intact;
 * CORE_ECONFLICT with *bad_seq (first row that does not verify) and *why
 * (g_free) when a row was edited, deleted or inserted. */
int core_audit_verify(sqlite3 *db, int64_t *rows, int64_t *bad_seq, char **why);
/* Converts an SQLite result code to CORE_E*, stopping the store on I/O failure. */
int core_txn_check(core_txn *txn, int sqlite_rc);

/* Runs fn(db, arg) on a worker with a read-only connection, then done(arg) on the loop. */
typedef void (*core_read_fn)(sqlite3 *db, void *arg);
int core_store_read(core_store *st, core_read_fn fn, core_done_fn done, void *arg);
/* Runs fn(db, arg) now on the calling thread with a read-only connection. */
int core_store_load(core_store *st, core_read_fn fn, void *arg);

void core_store_status(core_store *st, core_store_status_t *out);

/* Reads events with seq > after, at most limit, in order, from db (any read
 * connection). Returns a GPtrArray of core_event* (unref'd on free). */
GPtrArray *core_store_events_after(sqlite3 *db, int64_t after, int limit);
/* The same on a worker; done(events, arg) runs on the loop. The array belongs
 * to the store and is freed after done returns (ref events to keep them).
 * 0, or CORE_EBUSY/CORE_ESHUTDOWN and done is never called. */
typedef void (*core_events_done)(GPtrArray *events, void *arg);
int core_store_read_events(core_store *st, int64_t after, int limit, core_events_done done,
                           void *arg);

#endif
