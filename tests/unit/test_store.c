/*
 * Unit tests: the store — migrations, commits and their events, a failing
 * write rolling back alone, group commit, append-only events, reads,
 * refusing a newer schema, and stopping (not retrying) after a failed fsync,
 * injected through a SQLite VFS shim.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../core/core.h"
#include "../../core/metrics.h"
#include "../../core/store.h"

#include <glib.h>
#include <stdlib.h>
#include <string.h>

/* ---- fault-injecting VFS: forwards everything, fails xSync on demand ---- */

static sqlite3_vfs *real_vfs;
static sqlite3_vfs fault_vfs;
static int fail_sync;
static int syncs;

typedef struct {
    sqlite3_file base;
    sqlite3_file *real;
} ffile;

#define REAL(f) (((ffile *)(f))->real)
static int f_close(sqlite3_file *f)
{
    return REAL(f)->pMethods->xClose(REAL(f));
}
static int f_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o)
{
    return REAL(f)->pMethods->xRead(REAL(f), b, n, o);
}
static int f_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{
    return REAL(f)->pMethods->xWrite(REAL(f), b, n, o);
}
static int f_truncate(sqlite3_file *f, sqlite3_int64 s)
{
    return REAL(f)->pMethods->xTruncate(REAL(f), s);
}
static int f_sync(sqlite3_file *f, int flags)
{
    syncs++;
    if (fail_sync)
        return SQLITE_IOERR_FSYNC;
    return REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int f_size(sqlite3_file *f, sqlite3_int64 *s)
{
    return REAL(f)->pMethods->xFileSize(REAL(f), s);
}
static int f_lock(sqlite3_file *f, int l)
{
    return REAL(f)->pMethods->xLock(REAL(f), l);
}
static int f_unlock(sqlite3_file *f, int l)
{
    return REAL(f)->pMethods->xUnlock(REAL(f), l);
}
static int f_reserved(sqlite3_file *f, int *r)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), r);
}
static int f_fcntl(sqlite3_file *f, int op, void *a)
{
    return REAL(f)->pMethods->xFileControl(REAL(f), op, a);
}
static int f_sector(sqlite3_file *f)
{
    return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int f_devchar(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int f_shmmap(sqlite3_file *f, int i, int sz, int ext, void volatile **pp)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), i, sz, ext, pp);
}
static int f_shmlock(sqlite3_file *f, int o, int n, int fl)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), o, n, fl);
}
static void f_shmbarrier(sqlite3_file *f)
{
    REAL(f)->pMethods->xShmBarrier(REAL(f));
}
static int f_shmunmap(sqlite3_file *f, int d)
{
    return REAL(f)->pMethods->xShmUnmap(REAL(f), d);
}

static const sqlite3_io_methods fio = {
    2,         f_close,      f_read,     f_write, f_truncate, f_sync,    f_size,
    f_lock,    f_unlock,     f_reserved, f_fcntl, f_sector,   f_devchar, f_shmmap,
    f_shmlock, f_shmbarrier, f_shmunmap, NULL,    NULL};

static int f_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *out)
{
    ffile *ff = (ffile *)file;
    ff->real = (sqlite3_file *)(ff + 1);
    int rc = real_vfs->xOpen(real_vfs, name, ff->real, flags, out);
    file->pMethods = rc == SQLITE_OK ? &fio : NULL;
    return rc;
}

static void register_fault_vfs(void)
{
    if (real_vfs)
        return;
    real_vfs = sqlite3_vfs_find(NULL);
    fault_vfs = *real_vfs;
    fault_vfs.zName = "citycmd-fault";
    fault_vfs.szOsFile = (int)sizeof(ffile) + real_vfs->szOsFile;
    fault_vfs.xOpen = f_open;
    fault_vfs.pNext = NULL;
    assert_int_equal(sqlite3_vfs_register(&fault_vfs, 0), SQLITE_OK);
}

/* ---- fixture ---- */

typedef struct {
    char *dir;
    core_loop *loop;
    core_bus *bus;
    core_store *st;
    GPtrArray *bus_seen; /* seqs seen on the bus */
} fx;

static const core_migration item_v1[] = {
    {"item", 1, "CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)"}};
static const core_migration item_v2[] = {
    {"item", 1, "CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)"},
    {"item", 2, "ALTER TABLE item ADD COLUMN note TEXT"}};

static void on_bus(core_event *ev, void *user)
{
    g_ptr_array_add(user, GINT_TO_POINTER((int)ev->seq));
}

static int open_fx(fx *f, int group, const char *vfs, const core_migration *m, size_t n, char **err)
{
    f->loop = core_loop_new(2, 100);
    f->bus = core_bus_new();
    if (!f->bus_seen)
        f->bus_seen = g_ptr_array_new();
    core_bus_subscribe(f->bus, "", on_bus, f->bus_seen);
    core_store_opts so = {f->dir, group, 64, 1000, vfs};
    f->st = core_store_new(&so, f->loop, f->bus);
    core_store_add_migrations(f->st, m, n);
    return core_store_open(f->st, err);
}

static void close_fx(fx *f)
{
    core_store_free(f->st);
    core_loop_free(f->loop);
    core_bus_free(f->bus);
    f->st = NULL;
}

static int setup(void **state)
{
    fx *f = g_new0(fx, 1);
    f->dir = g_dir_make_tmp("citycmd-store-XXXXXX", NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    if (f->st)
        close_fx(f);
    char *cmd = g_strdup_printf("rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    g_free(cmd);
    g_free(f->dir);
    if (f->bus_seen)
        g_ptr_array_free(f->bus_seen, TRUE);
    g_free(f);
    core_metrics_reset();
    return 0;
}

/* ---- writes used by the tests ---- */

typedef struct {
    const char *name;
    int fail_after_insert; /* return this error after inserting and emitting */
    int rc;
    int done;
    int64_t seq;
    int nevents;
} wr;

static int insert_item(core_txn *txn, void *arg)
{
    wr *w = arg;
    sqlite3_stmt *s = core_txn_prepare(txn, "INSERT INTO item (name) VALUES (?)");
    sqlite3_bind_text(s, 1, w->name, -1, SQLITE_STATIC);
    int rc = core_txn_check(txn, sqlite3_step(s));
    if (rc)
        return rc;
    rc = core_txn_emit(
        txn, core_event_new("item.created", "tester", "item", json_pack("{ss}", "name", w->name)));
    if (rc)
        return rc;
    return w->fail_after_insert;
}

static void wrote(int rc, GPtrArray *events, void *arg)
{
    wr *w = arg;
    w->rc = rc;
    w->done = 1;
    w->nevents = (int)events->len;
    w->seq = events->len ? ((core_event *)events->pdata[0])->seq : 0;
}

static void run_until(fx *f, int *flag)
{
    for (int i = 0; i < 100000 && !*flag; i++)
        g_main_context_iteration(core_loop_context(f->loop), TRUE);
    assert_true(*flag);
}

static void write_and_wait(fx *f, wr *w)
{
    assert_int_equal(core_store_write(f->st, insert_item, wrote, w), 0);
    run_until(f, &w->done);
}

static int64_t count_items(fx *f);

/* ---- tests ---- */

static void test_commit_and_reopen(void **state)
{
    fx *f = *state;
    char *err = NULL;
    assert_int_equal(open_fx(f, 1, NULL, item_v1, 1, &err), 0);
    wr a = {.name = "engine-1"}, b = {.name = "engine-2"};
    write_and_wait(f, &a);
    write_and_wait(f, &b);
    assert_int_equal(a.rc, 0);
    assert_int_equal(a.seq, 1);
    assert_int_equal(b.seq, 2);
    assert_int_equal(f->bus_seen->len, 2);
    assert_int_equal(GPOINTER_TO_INT(f->bus_seen->pdata[1]), 2);
    close_fx(f);
    /* Reopening keeps the data, applies no migration twice, and continues the seq. */
    assert_int_equal(open_fx(f, 1, NULL, item_v2, 2, &err), 0);
    core_store_status_t st;
    core_store_status(f->st, &st);
    assert_int_equal(st.last_seq, 2);
    assert_int_equal(core_bus_last_seq(f->bus), 2);
    assert_int_equal(count_items(f), 2);
    wr c = {.name = "engine-3"};
    write_and_wait(f, &c);
    assert_int_equal(c.seq, 3);
}

static void test_failing_write_rolls_back_alone(void **state)
{
    fx *f = *state;
    char *err = NULL;
    assert_int_equal(open_fx(f, 1, NULL, item_v1, 1, &err), 0);
    wr a = {.name = "a"}, bad = {.name = "bad", .fail_after_insert = CORE_EINVAL},
       dup = {.name = "a"}, c = {.name = "c"};
    /* Queued together, so the writer runs them in one transaction. */
    assert_int_equal(core_store_write(f->st, insert_item, wrote, &a), 0);
    assert_int_equal(core_store_write(f->st, insert_item, wrote, &bad), 0);
    assert_int_equal(core_store_write(f->st, insert_item, wrote, &dup), 0);
    assert_int_equal(core_store_write(f->st, insert_item, wrote, &c), 0);
    run_until(f, &c.done);
    assert_int_equal(a.rc, 0);
    assert_int_equal(bad.rc, CORE_EINVAL);
    assert_int_equal(bad.nevents, 0);
    assert_int_equal(dup.rc, CORE_ECONFLICT); /* UNIQUE constraint */
    assert_int_equal(c.rc, 0);
    /* Sequence numbers stay dense: the failed writes gave theirs back. */
    assert_int_equal(a.seq, 1);
    assert_int_equal(c.seq, 2);
    assert_int_equal(count_items(f), 2);
}

static void test_group_commit_batches(void **state)
{
    fx *f = *state;
    char *err = NULL;
    assert_int_equal(open_fx(f, 1, NULL, item_v1, 1, &err), 0);
    wr w[100];
    char names[100][16];
    for (int i = 0; i < 100; i++) {
        g_snprintf(names[i], sizeof names[i], "u%d", i);
        w[i] = (wr){.name = names[i]};
        assert_int_equal(core_store_write(f->st, insert_item, wrote, &w[i]), 0);
    }
    run_until(f, &w[99].done);
    core_store_status_t st;
    core_store_status(f->st, &st);
    assert_int_equal(st.last_seq, 100);
    assert_true(st.commits < 100); /* many writes per fsync */
    for (int i = 0; i < 100; i++)
        assert_int_equal(w[i].seq, i + 1);
}

static void test_no_group_commit(void **state)
{
    fx *f = *state;
    char *err = NULL;
    assert_int_equal(open_fx(f, 0, NULL, item_v1, 1, &err), 0);
    wr w[20];
    char names[20][16];
    for (int i = 0; i < 20; i++) {
        g_snprintf(names[i], sizeof names[i], "n%d", i);
        w[i] = (wr){.name = names[i]};
        assert_int_equal(core_store_write(f->st, insert_item, wrote, &w[i]), 0);
    }
    run_until(f, &w[19].done);
    core_store_status_t st;
    core_store_status(f->st, &st);
    assert_int_equal(st.commits, 20);
}

typedef struct {
    const char *sql;
    int rc, done;
} simple;

static int tamper(core_txn *txn, void *arg)
{
    sqlite3_stmt *s = core_txn_prepare(txn, ((simple *)arg)->sql);
    return core_txn_check(txn, sqlite3_step(s));
}

static void simple_done(int rc, GPtrArray *events, void *arg)
{
    simple *s = arg;
    s->rc = rc;
    s->done = 1;
}

static void test_events_append_only(void **state)
{
    fx *f = *state;
    char *err = NULL;
    assert_int_equal(open_fx(f, 1, NULL, item_v1, 1, &err), 0);
    wr a = {.name = "a"};
    write_and_wait(f, &a);
    const char *sqls[] = {"UPDATE events SET type = 'x'", "DELETE FROM events"};
    for (int i = 0; i < 2; i++) {
        simple s = {.sql = sqls[i]};
        assert_int_equal(core_store_write(f->st, tamper, simple_done, &s), 0);
        run_until(f, &s.done);
        assert_int_equal(s.rc, CORE_ECONFLICT); /* RAISE(ABORT) in the trigger */
    }
}

typedef struct {
    GPtrArray *events;
    int done;
} readback;

static void read_events(sqlite3 *db, void *arg)
{
    ((readback *)arg)->events = core_store_events_after(db, 1, 10);
}

static void read_finished(void *arg)
{
    ((readback *)arg)->done = 1;
}

static void test_reads_on_workers(void **state)
{
    fx *f = *state;
    char *err = NULL;
    assert_int_equal(open_fx(f, 1, NULL, item_v1, 1, &err), 0);
    wr a = {.name = "a"}, b = {.name = "b"}, c = {.name = "c"};
    write_and_wait(f, &a);
    write_and_wait(f, &b);
    write_and_wait(f, &c);
    readback r = {0};
    assert_int_equal(core_store_read(f->st, read_events, read_finished, &r), 0);
    run_until(f, &r.done);
    assert_int_equal(r.events->len, 2);
    core_event *ev = r.events->pdata[0];
    assert_int_equal(ev->seq, 2);
    assert_string_equal(ev->type, "item.created");
    assert_string_equal(json_string_value(json_object_get(ev->data, "name")), "b");
    g_ptr_array_free(r.events, TRUE);
}

static void test_newer_schema_refused(void **state)
{
    fx *f = *state;
    char *err = NULL;
    assert_int_equal(open_fx(f, 1, NULL, item_v2, 2, &err), 0);
    close_fx(f);
    assert_int_equal(open_fx(f, 1, NULL, item_v1, 1, &err), CORE_ECONFIG);
    assert_non_null(strstr(err, "newer"));
    g_free(err);
}

static void test_failed_fsync_stops_store(void **state)
{
    fx *f = *state;
    char *err = NULL;
    register_fault_vfs();
    fail_sync = 0;
    assert_int_equal(open_fx(f, 1, "citycmd-fault", item_v1, 1, &err), 0);
    wr a = {.name = "before"};
    write_and_wait(f, &a);
    assert_int_equal(a.rc, 0);
    assert_true(syncs > 0);
    fail_sync = 1;
    wr b = {.name = "during"};
    write_and_wait(f, &b);
    assert_int_equal(b.rc, CORE_ESTOPPED);
    core_store_status_t st;
    core_store_status(f->st, &st);
    assert_int_equal(st.ok, 0);
    assert_non_null(st.error);
    assert_non_null(strstr(st.error, "commit failed"));
    /* The disk "recovers", but the store does not silently retry or resume. */
    fail_sync = 0;
    wr c = {.name = "after"};
    assert_int_equal(core_store_write(f->st, insert_item, wrote, &c), CORE_ESTOPPED);
    assert_int_equal(c.done, 0);
    close_fx(f);
    /* Only the write acknowledged before the failure is in the database. */
    assert_int_equal(open_fx(f, 1, NULL, item_v1, 1, &err), 0);
    assert_int_equal(count_items(f), 1);
}

typedef struct {
    int rc;
    int64_t rows, bad;
    char *why;
} verdict;

static void verify_chain(sqlite3 *db, void *arg)
{
    verdict *v = arg;
    v->rc = core_audit_verify(db, &v->rows, &v->bad, &v->why);
}

static verdict verify(fx *f)
{
    verdict v = {0};
    assert_int_equal(core_store_load(f->st, verify_chain, &v), 0);
    return v;
}

/* Tampering as someone with the file would: triggers dropped, SQL run directly. */
static void tamper_file(fx *f, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(core_store_path(f->st), &db), SQLITE_OK);
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc)
        fail_msg("tamper: %s", err);
    sqlite3_close(db);
}

static void test_audit_chain_detects_tampering(void **state)
{
    fx *f = *state;
    char *err = NULL;
    assert_int_equal(open_fx(f, 1, NULL, item_v1, 1, &err), 0);
    wr w[6];
    char names[6][8];
    for (int i = 0; i < 6; i++) {
        g_snprintf(names[i], sizeof names[i], "a%d", i);
        w[i] = (wr){.name = names[i], .fail_after_insert = i == 2 ? CORE_EINVAL : 0};
        assert_int_equal(core_store_write(f->st, insert_item, wrote, &w[i]), 0);
    }
    run_until(f, &w[5].done);
    /* One audit row per committed event; the failed write left none. */
    verdict v = verify(f);
    assert_int_equal(v.rc, 0);
    assert_int_equal(v.rows, 5);
    /* Rows written after a reopen continue the same chain. */
    close_fx(f);
    assert_int_equal(open_fx(f, 1, NULL, item_v1, 1, &err), 0);
    wr more = {.name = "later"};
    write_and_wait(f, &more);
    v = verify(f);
    assert_int_equal(v.rc, 0);
    assert_int_equal(v.rows, 6);

    tamper_file(f,
                "DROP TRIGGER audit_no_update; UPDATE audit SET actor = 'mallory' WHERE seq = 3");
    v = verify(f);
    assert_int_equal(v.rc, CORE_ECONFLICT);
    assert_int_equal(v.bad, 3);
    assert_non_null(strstr(v.why, "edited"));
    g_free(v.why);
}

static void test_audit_chain_detects_deletion(void **state)
{
    fx *f = *state;
    char *err = NULL;
    assert_int_equal(open_fx(f, 1, NULL, item_v1, 1, &err), 0);
    wr a = {.name = "a"}, b = {.name = "b"}, c = {.name = "c"};
    write_and_wait(f, &a);
    write_and_wait(f, &b);
    write_and_wait(f, &c);
    tamper_file(f, "DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 2");
    verdict v = verify(f);
    assert_int_equal(v.rc, CORE_ECONFLICT);
    assert_int_equal(v.bad, 3);
    g_free(v.why);
    /* Deleting the newest row cannot be seen from the chain alone, but the
     * row count no longer matches the events: verify-audit compares both. */
}

static void count_rows(sqlite3 *db, void *arg)
{
    sqlite3_stmt *s;
    sqlite3_prepare_v2(db, "SELECT count(*) FROM item", -1, &s, NULL);
    sqlite3_step(s);
    *(int64_t *)arg = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
}

static int64_t count_items(fx *f)
{
    int64_t n = -1;
    assert_int_equal(core_store_load(f->st, count_rows, &n), 0);
    return n;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commit_and_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_write_rolls_back_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_group_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_append_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reads_on_workers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_fsync_stops_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_chain_detects_tampering, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_chain_detects_deletion, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
