/*
 * store.c — SQLite store with one group-committing writer thread.
 *
 * Invariants:
 *  - Only the writer thread touches st->wdb, st->next_seq and the statement
 *    cache. The loop thread touches the queue only under st->lock.
 *  - Event seqs are dense and increasing: a write that rolls back returns the
 *    seqs it took, and a failed commit returns the whole batch's.
 *  - Batches are posted to the loop in commit order (core_loop_post is FIFO),
 *    so the bus sees events in seq order.
 *  - Once st->failed is set it is never cleared.
 */
#include "store.h"
#include "core.h"
#include "log.h"
#include "metrics.h"

#include <errno.h>
#include <sodium.h>
#include <glib/gstdio.h>
#include <string.h>

typedef struct {
    core_write_fn fn;
    core_write_done_fn done;
    void *arg;
    int rc;
    GPtrArray *events;
} wjob;

struct core_txn {
    core_store *st;
    wjob *job;
    int fatal; /* an I/O-class error happened in this batch */
};

struct core_store {
    core_store_opts opts;
    char *dir, *path, *vfs;
    core_loop *loop;
    core_bus *bus;
    GArray *migrations; /* of const core_migration* */
    sqlite3 *wdb;
    GHashTable *stmts; /* sql text -> sqlite3_stmt*, writer thread only */
    int64_t next_seq;
    int64_t next_audit;
    char audit_hash[65]; /* hash of the last audit row (writer thread) */
    GThread *writer;
    GMutex lock;
    GCond cond;
    GQueue queue;      /* of wjob*, guarded by lock */
    gboolean stopping; /* guarded by lock */
    gint failed;
    char *error;     /* set once, before failed */
    gint64 last_seq; /* atomic */
    gint64 commits;  /* atomic */
    core_metric *m_commits, *m_writes, *m_errors, *m_commit_secs, *m_group;
};

static const double group_buckets[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};

static const core_migration core_migrations[] = {
    {"core", 1,
     "CREATE TABLE events ("
     "  seq INTEGER PRIMARY KEY,"
     "  at_ms INTEGER NOT NULL,"
     "  type TEXT NOT NULL,"
     "  actor TEXT NOT NULL,"
     "  subject TEXT NOT NULL,"
     "  data TEXT NOT NULL CHECK (json_valid(data)));"
     "CREATE INDEX events_subject ON events(subject, seq);"
     "CREATE TRIGGER events_no_update BEFORE UPDATE ON events"
     "  BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;"
     "CREATE TRIGGER events_no_delete BEFORE DELETE ON events"
     "  BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;"},
    {"core", 2,
     "CREATE TABLE audit ("
     "  seq INTEGER PRIMARY KEY,"
     "  at_ms INTEGER NOT NULL,"
     "  actor TEXT NOT NULL,"
     "  action TEXT NOT NULL,"
     "  object TEXT NOT NULL,"
     "  source TEXT NOT NULL,"
     "  outcome TEXT NOT NULL,"
     "  detail TEXT NOT NULL,"
     "  prev_hash TEXT NOT NULL,"
     "  hash TEXT NOT NULL);"
     "CREATE INDEX audit_actor ON audit(actor, seq);"
     "CREATE INDEX audit_action ON audit(action, seq);"
     "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
     "  BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;"
     "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
     "  BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;"},
    /* The head of the chain, kept apart from it: rows cut off the end of
     * the chain leave the head pointing past them. */
    {"core", 3,
     "CREATE TABLE audit_head (one INTEGER PRIMARY KEY CHECK (one = 1),"
     "  seq INTEGER NOT NULL, hash TEXT NOT NULL);"
     "INSERT INTO audit_head SELECT 1, seq, hash FROM audit ORDER BY seq DESC LIMIT 1;"
     "CREATE TRIGGER audit_head_follows AFTER INSERT ON audit BEGIN"
     "  INSERT OR REPLACE INTO audit_head VALUES (1, new.seq, new.hash); END;"},
};

/* The hash the first audit row links to. */
#define AUDIT_GENESIS "0000000000000000000000000000000000000000000000000000000000000000"

static void finalize_stmt(gpointer p)
{
    sqlite3_finalize(p);
}

static double queued_metric(void *user)
{
    core_store_status_t s;
    core_store_status(user, &s);
    return s.queued;
}

core_store *core_store_new(const core_store_opts *opts, core_loop *loop, core_bus *bus)
{
    core_store *st = g_new0(core_store, 1);
    st->opts = *opts;
    st->dir = g_strdup(opts->dir);
    st->vfs = g_strdup(opts->vfs);
    st->path = g_build_filename(opts->dir, "citycmd.db", NULL);
    if (st->opts.group_max < 1)
        st->opts.group_max = 512;
    if (!st->opts.group_commit)
        st->opts.group_max = 1;
    if (st->opts.queue_max < 1)
        st->opts.queue_max = 20000;
    st->loop = loop;
    st->bus = bus;
    st->migrations = g_array_new(FALSE, FALSE, sizeof(const core_migration *));
    g_mutex_init(&st->lock);
    g_cond_init(&st->cond);
    g_queue_init(&st->queue);
    st->stmts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, finalize_stmt);
    core_store_add_migrations(st, core_migrations, G_N_ELEMENTS(core_migrations));
    st->m_commits =
        core_counter("citycmd_store_commits_total", "Store transactions committed.", "");
    st->m_writes = core_counter("citycmd_store_writes_total", "Writes committed.", "");
    st->m_errors = core_counter("citycmd_store_write_errors_total", "Writes that failed.", "");
    st->m_commit_secs = core_histogram("citycmd_store_commit_seconds",
                                       "Time to commit (and fsync) one transaction.", "",
                                       core_latency_buckets, core_latency_nbuckets);
    st->m_group = core_histogram("citycmd_store_writes_per_commit", "Writes in one commit.", "",
                                 group_buckets, G_N_ELEMENTS(group_buckets));
    core_gauge_fn("citycmd_store_queue_depth", "Writes waiting for the store writer.", "",
                  queued_metric, st);
    return st;
}

void core_store_add_migrations(core_store *st, const core_migration *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const core_migration *p = &m[i];
        g_array_append_val(st->migrations, p);
    }
}

const char *core_store_path(const core_store *st)
{
    return st->path;
}

static int is_fatal(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_IOERR:
    case SQLITE_CORRUPT:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_NOTADB:
    case SQLITE_PROTOCOL:
    case SQLITE_NOMEM:
        return 1;
    }
    return 0;
}

/* Marks the store stopped; the first reason wins. Writer thread. */
static void stop_store(core_store *st, const char *what, int rc)
{
    if (g_atomic_int_get(&st->failed))
        return;
    st->error = g_strdup_printf("%s: %s (sqlite %d)", what,
                                st->wdb ? sqlite3_errmsg(st->wdb) : sqlite3_errstr(rc), rc);
    g_atomic_int_set(&st->failed, 1);
    log_error("store.stopped", "reason=\"%s\" action=\"writes refused until restart\"", st->error);
}

static int exec(sqlite3 *db, const char *sql, char **err)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK && err)
        *err = g_strdup_printf("%s", msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return rc;
}

static int open_db(core_store *st, int flags, sqlite3 **out)
{
    int rc = sqlite3_open_v2(st->path, out, flags | SQLITE_OPEN_NOMUTEX, st->vfs);
    if (rc == SQLITE_OK)
        sqlite3_busy_timeout(*out, 5000);
    return rc;
}

static int migration_applied(sqlite3 *db, const core_migration *m, int *applied, int *newest)
{
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(db, "SELECT max(version) FROM schema_migrations WHERE module = ?",
                                -1, &s, NULL);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, m->module, -1, SQLITE_STATIC);
    *newest = 0;
    if (sqlite3_step(s) == SQLITE_ROW)
        *newest = sqlite3_column_int(s, 0);
    *applied = m->version <= *newest;
    return sqlite3_finalize(s);
}

static int migrate(core_store *st, char **err)
{
    int rc = exec(st->wdb,
                  "CREATE TABLE IF NOT EXISTS schema_migrations ("
                  "  module TEXT NOT NULL, version INTEGER NOT NULL,"
                  "  applied_at_ms INTEGER NOT NULL, PRIMARY KEY (module, version))",
                  err);
    for (guint i = 0; !rc && i < st->migrations->len; i++) {
        const core_migration *m = g_array_index(st->migrations, const core_migration *, i);
        int applied, newest;
        if ((rc = migration_applied(st->wdb, m, &applied, &newest)))
            break;
        if (applied)
            continue;
        if (m->version != newest + 1) {
            *err = g_strdup_printf("migration %s/%d follows %s/%d: a step is missing", m->module,
                                   m->version, m->module, newest);
            return CORE_ECONFIG;
        }
        char *sql = g_strdup_printf(
            "BEGIN IMMEDIATE; %s;"
            " INSERT INTO schema_migrations VALUES ('%s', %d, %" G_GINT64_FORMAT "); COMMIT;",
            m->sql, m->module, m->version, core_now_ms());
        rc = exec(st->wdb, sql, err);
        g_free(sql);
        if (rc) {
            exec(st->wdb, "ROLLBACK", NULL);
            char *why = *err;
            *err = g_strdup_printf("migration %s/%d: %s", m->module, m->version, why);
            g_free(why);
            return CORE_EDB;
        }
        log_info("store.migrated", "module=%s version=%d", m->module, m->version);
    }
    return rc ? CORE_EDB : 0;
}

static int newer_schema_check(core_store *st, char **err)
{
    /* A database written by a newer citycmd has versions this build does not know. */
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(st->wdb,
                                "SELECT module, max(version) FROM schema_migrations"
                                " GROUP BY module",
                                -1, &s, NULL);
    if (rc)
        return CORE_EDB;
    int bad = 0;
    while (!bad && sqlite3_step(s) == SQLITE_ROW) {
        const char *mod = (const char *)sqlite3_column_text(s, 0);
        int v = sqlite3_column_int(s, 1), known = 0;
        for (guint i = 0; i < st->migrations->len; i++) {
            const core_migration *m = g_array_index(st->migrations, const core_migration *, i);
            if (strcmp(m->module, mod) == 0 && m->version > known)
                known = m->version;
        }
        if (v > known) {
            *err = g_strdup_printf("the store has schema %s/%d but this citycmd knows only %s/%d;"
                                   " run a newer citycmd",
                                   mod, v, mod, known);
            bad = 1;
        }
    }
    sqlite3_finalize(s);
    return bad ? CORE_ECONFIG : 0;
}

/* Reads the last event seq and audit hash from the database: another
 * process may have written since our last transaction. Writer thread, inside
 * a transaction (or before the writer starts). */
static void read_heads(core_store *st)
{
    sqlite3_stmt *s;
    sqlite3_prepare_v2(st->wdb, "SELECT coalesce(max(seq), 0) FROM events", -1, &s, NULL);
    sqlite3_step(s);
    st->next_seq = sqlite3_column_int64(s, 0) + 1;
    sqlite3_finalize(s);
    g_strlcpy(st->audit_hash, AUDIT_GENESIS, sizeof st->audit_hash);
    st->next_audit = 1;
    sqlite3_prepare_v2(st->wdb, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", -1, &s,
                       NULL);
    if (sqlite3_step(s) == SQLITE_ROW) {
        st->next_audit = sqlite3_column_int64(s, 0) + 1;
        g_strlcpy(st->audit_hash, (const char *)sqlite3_column_text(s, 1), sizeof st->audit_hash);
    }
    sqlite3_finalize(s);
}

static gpointer writer_main(gpointer p);

int core_store_open(core_store *st, char **err)
{
    *err = NULL;
    if (g_mkdir_with_parents(st->dir, 0750) != 0) {
        *err = g_strdup_printf("cannot create state directory %s: %s", st->dir, g_strerror(errno));
        return CORE_EIO;
    }
    int rc = open_db(st, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &st->wdb);
    if (rc) {
        *err = g_strdup_printf("cannot open %s: %s", st->path, sqlite3_errstr(rc));
        return CORE_EIO;
    }
    char *sqlerr = NULL;
    if (exec(st->wdb, "PRAGMA journal_mode=WAL", &sqlerr) ||
        exec(st->wdb, "PRAGMA synchronous=FULL", &sqlerr) ||
        exec(st->wdb, "PRAGMA foreign_keys=ON", &sqlerr)) {
        *err = g_strdup_printf("cannot configure %s: %s", st->path, sqlerr);
        g_free(sqlerr);
        return CORE_EDB;
    }
    if ((rc = migrate(st, err)) || (rc = newer_schema_check(st, err)))
        return rc;
    read_heads(st);
    int64_t last = st->next_seq - 1;
    g_atomic_pointer_set((gpointer *)&st->last_seq, (gpointer)(gssize)last);
    if (st->bus)
        core_bus_set_last_seq(st->bus, last);
    st->writer = g_thread_new("store-writer", writer_main, st);
    log_info("store.open", "path=%s last_seq=%" G_GINT64_FORMAT " group_max=%d", st->path, last,
             st->opts.group_max);
    return 0;
}

/* ---- writer thread ---- */

sqlite3 *core_txn_db(core_txn *txn)
{
    return txn->st->wdb;
}

sqlite3_stmt *core_txn_prepare(core_txn *txn, const char *sql)
{
    sqlite3_stmt *s = g_hash_table_lookup(txn->st->stmts, sql);
    if (s) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        return s;
    }
    int rc = sqlite3_prepare_v3(txn->st->wdb, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
    if (rc) {
        core_txn_check(txn, rc);
        log_error("store.prepare", "error=\"%s\"", sqlite3_errmsg(txn->st->wdb));
        return NULL;
    }
    g_hash_table_insert(txn->st->stmts, g_strdup(sql), s);
    return s;
}

int core_txn_check(core_txn *txn, int rc)
{
    if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW)
        return 0;
    if (is_fatal(rc)) {
        txn->fatal = rc;
        return CORE_ESTOPPED;
    }
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        return CORE_ECONFLICT;
    return CORE_EDB;
}

int core_txn_emit(core_txn *txn, core_event *ev)
{
    sqlite3_stmt *s = core_txn_prepare(txn, "INSERT INTO events (seq, at_ms, type, actor, subject,"
                                            " data) VALUES (?, ?, ?, ?, ?, ?)");
    if (!s) {
        core_event_unref(ev);
        return CORE_EDB;
    }
    ev->seq = txn->st->next_seq;
    char *data = json_dumps(ev->data, JSON_COMPACT);
    sqlite3_bind_int64(s, 1, ev->seq);
    sqlite3_bind_int64(s, 2, ev->at_ms);
    sqlite3_bind_text(s, 3, ev->type, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, ev->actor, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, ev->subject, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, data ? data : "{}", -1, SQLITE_TRANSIENT);
    free(data);
    int rc = core_txn_check(txn, sqlite3_step(s));
    sqlite3_reset(s);
    if (!rc)
        rc = core_txn_audit(txn, ev->actor, ev->type, ev->subject, ev->source, "ok", "");
    if (rc) {
        core_event_unref(ev);
        return rc;
    }
    txn->st->next_seq++;
    g_ptr_array_add(txn->job->events, ev);
    return 0;
}

/* The chain: hash = BLAKE2b-256 over the previous hash and every field,
 * NUL-separated so that no two different rows hash the same input. */
static void audit_hash(const char *prev, int64_t seq, int64_t at_ms, const char *actor,
                       const char *action, const char *object, const char *source,
                       const char *outcome, const char *detail, char out[65])
{
    crypto_generichash_state h;
    unsigned char digest[32];
    char num[48];
    crypto_generichash_init(&h, NULL, 0, sizeof digest);
    g_snprintf(num, sizeof num, "%" G_GINT64_FORMAT "|%" G_GINT64_FORMAT, seq, at_ms);
    crypto_generichash_update(&h, (const unsigned char *)num, strlen(num) + 1);
    const char *parts[] = {prev, actor, action, object, source, outcome, detail};
    for (size_t i = 0; i < G_N_ELEMENTS(parts); i++)
        crypto_generichash_update(&h, (const unsigned char *)parts[i], strlen(parts[i]) + 1);
    crypto_generichash_final(&h, digest, sizeof digest);
    sodium_bin2hex(out, 65, digest, sizeof digest);
}

int core_txn_audit(core_txn *txn, const char *actor, const char *action, const char *object,
                   const char *source, const char *outcome, const char *detail)
{
    core_store *st = txn->st;
    sqlite3_stmt *s = core_txn_prepare(txn, "INSERT INTO audit (seq, at_ms, actor, action, object,"
                                            " source, outcome, detail, prev_hash, hash)"
                                            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    if (!s)
        return CORE_EDB;
    source = source ? source : "";
    detail = detail ? detail : "";
    int64_t at = core_now_ms();
    char hash[65];
    audit_hash(st->audit_hash, st->next_audit, at, actor, action, object, source, outcome, detail,
               hash);
    sqlite3_bind_int64(s, 1, st->next_audit);
    sqlite3_bind_int64(s, 2, at);
    sqlite3_bind_text(s, 3, actor, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, action, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, object, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, source, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 7, outcome, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 8, detail, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 9, st->audit_hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 10, hash, -1, SQLITE_STATIC);
    int rc = core_txn_check(txn, sqlite3_step(s));
    sqlite3_reset(s);
    if (rc)
        return rc;
    st->next_audit++;
    memcpy(st->audit_hash, hash, sizeof hash);
    return 0;
}

int core_audit_verify(sqlite3 *db, int64_t *rows, int64_t *bad_seq, char **why)
{
    sqlite3_stmt *s;
    *rows = 0;
    *bad_seq = 0;
    *why = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT seq, at_ms, actor, action, object, source, outcome, detail,"
                           " prev_hash, hash FROM audit ORDER BY seq",
                           -1, &s, NULL) != SQLITE_OK) {
        *why = g_strdup(sqlite3_errmsg(db));
        return CORE_EDB;
    }
    char prev[65] = AUDIT_GENESIS;
    int64_t expect = 1;
    int rc = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        int64_t seq = sqlite3_column_int64(s, 0);
        const char *col[8];
        for (int i = 0; i < 8; i++) {
            const char *t = (const char *)sqlite3_column_text(s, 2 + i);
            col[i] = t ? t : "";
        }
        char hash[65];
        audit_hash(prev, seq, sqlite3_column_int64(s, 1), col[0], col[1], col[2], col[3], col[4],
                   col[5], hash);
        if (seq != expect)
            *why = g_strdup_printf("row %" G_GINT64_FORMAT " follows row %" G_GINT64_FORMAT
                                   ": rows between them are missing",
                                   seq, expect - 1);
        else if (strcmp(col[6], prev) != 0)
            *why = g_strdup("its link to the previous row does not match (a row was changed or"
                            " removed before it)");
        else if (strcmp(col[7], hash) != 0)
            *why = g_strdup("its contents do not match its hash (the row was edited)");
        if (*why) {
            *bad_seq = seq;
            rc = CORE_ECONFLICT;
            break;
        }
        memcpy(prev, col[7], sizeof prev - 1);
        prev[64] = '\0';
        expect++;
        (*rows)++;
    }
    sqlite3_finalize(s);
    if (rc == 0 &&
        sqlite3_prepare_v2(db, "SELECT seq, hash FROM audit_head", -1, &s, NULL) == SQLITE_OK) {
        if (sqlite3_step(s) == SQLITE_ROW) {
            int64_t head = sqlite3_column_int64(s, 0);
            const char *hash = (const char *)sqlite3_column_text(s, 1);
            if (head != *rows || !hash || strcmp(hash, prev) != 0) {
                *bad_seq = *rows + 1;
                *why = head > *rows ? g_strdup_printf("the trail ends at row %" G_GINT64_FORMAT
                                                      " but its head records row %" G_GINT64_FORMAT
                                                      " (rows removed at the end)",
                                                      *rows, head)
                                    : g_strdup("the trail's head does not match its last row");
                rc = CORE_ECONFLICT;
            }
        } else if (*rows > 0) {
            *bad_seq = 1;
            *why = g_strdup("the trail's head is missing");
            rc = CORE_ECONFLICT;
        }
        sqlite3_finalize(s);
    }
    return rc;
}

static void fail_job(wjob *j, int rc)
{
    j->rc = rc;
    g_ptr_array_set_size(j->events, 0);
}

/* A statement of the writer's own (BEGIN, SAVEPOINT, …) from the statement
 * cache: parsing them for every write was a tenth of the writer's time. */
static int exec_cached(core_store *st, const char *sql)
{
    sqlite3_stmt *s = g_hash_table_lookup(st->stmts, sql);
    if (!s) {
        int rc = sqlite3_prepare_v3(st->wdb, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
        if (rc)
            return rc;
        g_hash_table_insert(st->stmts, g_strdup(sql), s);
    }
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* Runs one job inside its savepoint. Returns nonzero if the batch must stop. */
static int run_job(core_store *st, core_txn *txn, wjob *j)
{
    int64_t seq_before = st->next_seq, audit_before = st->next_audit;
    char hash_before[65];
    memcpy(hash_before, st->audit_hash, sizeof hash_before);
    int rc = exec_cached(st, "SAVEPOINT w");
    if (rc) {
        core_txn_check(txn, rc);
        fail_job(j, CORE_EDB);
        return txn->fatal;
    }
    txn->job = j;
    j->rc = j->fn(txn, j->arg);
    if (txn->fatal && !j->rc)
        j->rc = CORE_ESTOPPED;
    if (j->rc) {
        fail_job(j, j->rc);
        st->next_seq = seq_before;
        st->next_audit = audit_before;
        memcpy(st->audit_hash, hash_before, sizeof hash_before);
        rc = exec_cached(st, "ROLLBACK TO w");
        if (!rc)
            rc = exec_cached(st, "RELEASE w");
    } else {
        rc = exec_cached(st, "RELEASE w");
    }
    if (rc)
        core_txn_check(txn, rc);
    return txn->fatal;
}

static void run_batch(core_store *st, GPtrArray *batch)
{
    core_txn txn = {st, NULL, 0};
    if (g_atomic_int_get(&st->failed)) {
        for (guint i = 0; i < batch->len; i++)
            fail_job(batch->pdata[i], CORE_ESTOPPED);
        return;
    }
    int rc = exec_cached(st, "BEGIN IMMEDIATE");
    if (rc)
        core_txn_check(&txn, rc);
    else
        read_heads(st);
    int64_t seq_start = st->next_seq;
    for (guint i = 0; !rc && !txn.fatal && i < batch->len; i++)
        run_job(st, &txn, batch->pdata[i]);
    int64_t t0 = core_mono_us();
    if (!rc && !txn.fatal)
        rc = exec_cached(st, "COMMIT");
    if (rc || txn.fatal) {
        int why = txn.fatal ? txn.fatal : rc;
        if (is_fatal(why))
            stop_store(st, "commit failed", why);
        exec(st->wdb, "ROLLBACK", NULL);
        st->next_seq = seq_start;
        for (guint i = 0; i < batch->len; i++)
            fail_job(batch->pdata[i], is_fatal(why) ? CORE_ESTOPPED : CORE_EDB);
        core_metric_add(st->m_errors, batch->len);
        return;
    }
    core_metric_observe(st->m_commit_secs, (double)(core_mono_us() - t0) / 1e6);
    core_metric_observe(st->m_group, batch->len);
    core_metric_add(st->m_commits, 1);
    g_atomic_pointer_add((gssize *)&st->commits, 1);
    g_atomic_pointer_set((gpointer *)&st->last_seq, (gpointer)(gssize)(st->next_seq - 1));
    for (guint i = 0; i < batch->len; i++) {
        wjob *j = batch->pdata[i];
        core_metric_add(j->rc ? st->m_errors : st->m_writes, 1);
    }
}

typedef struct {
    core_store *st;
    GPtrArray *jobs;
} done_batch;

static void batch_done(void *p)
{
    done_batch *b = p;
    for (guint i = 0; i < b->jobs->len; i++) {
        wjob *j = b->jobs->pdata[i];
        if (!j->rc && b->st->bus)
            for (guint e = 0; e < j->events->len; e++)
                core_bus_publish(b->st->bus, j->events->pdata[e]);
        if (j->done)
            j->done(j->rc, j->events, j->arg);
        g_ptr_array_free(j->events, TRUE);
        g_free(j);
    }
    g_ptr_array_free(b->jobs, TRUE);
    g_free(b);
}

static gpointer writer_main(gpointer p)
{
    core_store *st = p;
    for (;;) {
        g_mutex_lock(&st->lock);
        while (g_queue_is_empty(&st->queue) && !st->stopping)
            g_cond_wait(&st->cond, &st->lock);
        if (g_queue_is_empty(&st->queue)) {
            g_mutex_unlock(&st->lock);
            break;
        }
        GPtrArray *jobs = g_ptr_array_new();
        while (jobs->len < (guint)st->opts.group_max && !g_queue_is_empty(&st->queue))
            g_ptr_array_add(jobs, g_queue_pop_head(&st->queue));
        g_mutex_unlock(&st->lock);
        run_batch(st, jobs);
        done_batch *b = g_new(done_batch, 1);
        *b = (done_batch){st, jobs};
        core_loop_post(st->loop, batch_done, b);
    }
    return NULL;
}

int core_store_write(core_store *st, core_write_fn fn, core_write_done_fn done, void *arg)
{
    if (g_atomic_int_get(&st->failed))
        return CORE_ESTOPPED;
    g_mutex_lock(&st->lock);
    int rc = 0;
    if (st->stopping || !st->writer)
        rc = CORE_ESHUTDOWN;
    else if ((int)st->queue.length >= st->opts.queue_max)
        rc = CORE_EBUSY;
    if (!rc) {
        wjob *j = g_new0(wjob, 1);
        *j = (wjob){fn, done, arg, 0,
                    g_ptr_array_new_with_free_func((GDestroyNotify)core_event_unref)};
        g_queue_push_tail(&st->queue, j);
        g_cond_signal(&st->cond);
    }
    g_mutex_unlock(&st->lock);
    return rc;
}

void core_store_status(core_store *st, core_store_status_t *out)
{
    out->ok = !g_atomic_int_get(&st->failed);
    out->error = out->ok ? NULL : st->error;
    g_mutex_lock(&st->lock);
    out->queued = (int)st->queue.length;
    g_mutex_unlock(&st->lock);
    out->last_seq = (int64_t)(gssize)g_atomic_pointer_get((gpointer *)&st->last_seq);
    out->commits = (int64_t)(gssize)g_atomic_pointer_get((gpointer *)&st->commits);
}

void core_store_stop(core_store *st)
{
    g_mutex_lock(&st->lock);
    st->stopping = TRUE;
    g_cond_signal(&st->cond);
    GThread *writer = st->writer;
    st->writer = NULL;
    g_mutex_unlock(&st->lock);
    if (writer)
        g_thread_join(writer);
}

void core_store_free(core_store *st)
{
    if (!st)
        return;
    core_store_stop(st);
    g_hash_table_destroy(st->stmts);
    if (st->wdb)
        sqlite3_close_v2(st->wdb);
    g_array_free(st->migrations, TRUE);
    g_mutex_clear(&st->lock);
    g_cond_clear(&st->cond);
    g_free(st->error);
    g_free(st->dir);
    g_free(st->path);
    g_free(st->vfs);
    g_free(st);
}

/* ---- reads ---- */

typedef struct {
    core_store *st;
    char *path;
    sqlite3 *db;
} read_conn;

static void read_conn_free(gpointer p)
{
    read_conn *rc = p;
    if (rc) {
        sqlite3_close_v2(rc->db);
        g_free(rc->path);
        g_free(rc);
    }
}

static GPrivate read_conn_key = G_PRIVATE_INIT(read_conn_free);

static sqlite3 *thread_read_db(core_store *st)
{
    read_conn *rc = g_private_get(&read_conn_key);
    if (rc && strcmp(rc->path, st->path) == 0)
        return rc->db;
    rc = g_new0(read_conn, 1);
    rc->path = g_strdup(st->path);
    if (open_db(st, SQLITE_OPEN_READONLY, &rc->db) != SQLITE_OK) {
        log_error("store.read_open", "path=%s error=\"%s\"", st->path, sqlite3_errmsg(rc->db));
    }
    g_private_replace(&read_conn_key, rc);
    return rc->db;
}

typedef struct {
    core_store *st;
    core_read_fn fn;
    core_done_fn done;
    void *arg;
} read_job;

static void read_work(void *p)
{
    read_job *r = p;
    r->fn(thread_read_db(r->st), r->arg);
}

static void read_done(void *p)
{
    read_job *r = p;
    if (r->done)
        r->done(r->arg);
    g_free(r);
}

int core_store_read(core_store *st, core_read_fn fn, core_done_fn done, void *arg)
{
    read_job *r = g_new(read_job, 1);
    *r = (read_job){st, fn, done, arg};
    int rc = core_work_submit(st->loop, read_work, read_done, r);
    if (rc)
        g_free(r);
    return rc;
}

int core_store_load(core_store *st, core_read_fn fn, void *arg)
{
    sqlite3 *db = NULL;
    int rc = open_db(st, SQLITE_OPEN_READONLY, &db);
    if (rc == SQLITE_OK)
        fn(db, arg);
    sqlite3_close_v2(db);
    return rc == SQLITE_OK ? 0 : CORE_EIO;
}

GPtrArray *core_store_events_after(sqlite3 *db, int64_t after, int limit)
{
    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)core_event_unref);
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db,
                           "SELECT seq, at_ms, type, actor, subject, data FROM events"
                           " WHERE seq > ? ORDER BY seq LIMIT ?",
                           -1, &s, NULL) != SQLITE_OK)
        return out;
    sqlite3_bind_int64(s, 1, after);
    sqlite3_bind_int(s, 2, limit);
    while (sqlite3_step(s) == SQLITE_ROW) {
        core_event *ev = core_event_from_row(
            sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1),
            (const char *)sqlite3_column_text(s, 2), (const char *)sqlite3_column_text(s, 3),
            (const char *)sqlite3_column_text(s, 4), (const char *)sqlite3_column_text(s, 5));
        if (ev)
            g_ptr_array_add(out, ev);
    }
    sqlite3_finalize(s);
    return out;
}

typedef struct {
    int64_t after;
    int limit;
    GPtrArray *events;
    core_events_done done;
    void *arg;
} events_read;

static void events_read_fn(sqlite3 *db, void *p)
{
    events_read *r = p;
    r->events = core_store_events_after(db, r->after, r->limit);
}

static void events_read_done(void *p)
{
    events_read *r = p;
    r->done(r->events, r->arg);
    g_ptr_array_free(r->events, TRUE);
    g_free(r);
}

int core_store_read_events(core_store *st, int64_t after, int limit, core_events_done done,
                           void *arg)
{
    events_read *r = g_new0(events_read, 1);
    *r = (events_read){after, limit, NULL, done, arg};
    int rc = core_store_read(st, events_read_fn, events_read_done, r);
    if (rc)
        g_free(r);
    return rc;
}
