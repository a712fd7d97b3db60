/*
 * store_bench — acknowledged-write throughput and latency of the store.
 *
 * Keeps C writes in flight (as C concurrent API clients would), each one a
 * row plus its event in the same transaction, and measures from queueing a
 * write to its commit callback on the loop — the moment an API client would
 * get its answer. Runs group commit off and on back to back in one process on
 * the same disk, so the two figures compare like with like.
 *
 *   build/bench/store_bench [--writes N] [--concurrency C] [--dir DIR]
 */
#include "../../core/core.h"
#include "../../core/log.h"
#include "../../core/metrics.h"
#include "../../core/store.h"

#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    core_loop *loop;
    core_store *st;
    int total, issued, done, failed, concurrency;
    int64_t *lat_us;
    int64_t t_start, t_end;
} bench;

typedef struct {
    bench *b;
    int64_t t0;
    int n;
} op;

static const core_migration migs[] = {
    {"bench", 1, "CREATE TABLE item (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)"}};

static int write_fn(core_txn *txn, void *arg)
{
    op *o = arg;
    sqlite3_stmt *s = core_txn_prepare(txn, "INSERT INTO item (payload) VALUES (?)");
    if (!s)
        return CORE_EDB;
    char payload[160];
    g_snprintf(payload, sizeof payload, "call %d: caller reports smoke from a 3rd floor window",
               o->n);
    sqlite3_bind_text(s, 1, payload, -1, SQLITE_TRANSIENT);
    int rc = core_txn_check(txn, sqlite3_step(s));
    if (rc)
        return rc;
    return core_txn_emit(
        txn, core_event_new("bench.written", "bench", "item", json_pack("{si}", "n", o->n)));
}

static void issue(bench *b);

static void done_fn(int rc, GPtrArray *events, void *arg)
{
    op *o = arg;
    bench *b = o->b;
    if (rc)
        b->failed++;
    b->lat_us[b->done++] = core_mono_us() - o->t0;
    g_free(o);
    if (b->done == b->total) {
        b->t_end = core_mono_us();
        core_loop_quit(b->loop);
        return;
    }
    issue(b);
}

static void issue(bench *b)
{
    while (b->issued < b->total && b->issued - b->done < b->concurrency) {
        op *o = g_new(op, 1);
        *o = (op){b, core_mono_us(), b->issued++};
        if (core_store_write(b->st, write_fn, done_fn, o) != 0) {
            fprintf(stderr, "store_bench: write refused\n");
            exit(1);
        }
    }
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static gboolean kick(gpointer p)
{
    bench *b = p;
    b->t_start = core_mono_us();
    issue(b);
    return G_SOURCE_REMOVE;
}

static void run(const char *root, int group, int total, int concurrency)
{
    char *dir = g_strdup_printf("%s/group-%s", root, group ? "on" : "off");
    core_metrics_reset();
    bench b = {0};
    b.total = total;
    b.concurrency = concurrency;
    b.lat_us = g_new0(int64_t, total);
    b.loop = core_loop_new(2, 1024);
    core_store_opts so = {dir, group, 512, total + 1, NULL};
    b.st = core_store_new(&so, b.loop, NULL);
    core_store_add_migrations(b.st, migs, 1);
    char *err = NULL;
    if (core_store_open(b.st, &err)) {
        fprintf(stderr, "store_bench: %s\n", err);
        exit(1);
    }
    g_idle_add(kick, &b);
    core_loop_run(b.loop);
    core_store_status_t s;
    core_store_status(b.st, &s);
    qsort(b.lat_us, (size_t)total, sizeof(int64_t), cmp64);
    double secs = (double)(b.t_end - b.t_start) / 1e6;
    printf("group_commit=%-3s writes=%d concurrency=%d failed=%d commits=%" G_GINT64_FORMAT
           " writes_per_s=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
           group ? "on" : "off", total, concurrency, b.failed, s.commits, total / secs,
           (double)b.lat_us[total / 2] / 1000, (double)b.lat_us[(int)(total * 0.99)] / 1000,
           (double)b.lat_us[total - 1] / 1000);
    fflush(stdout);
    core_store_free(b.st);
    core_loop_free(b.loop);
    g_free(b.lat_us);
    g_free(dir);
}

int main(int argc, char **argv)
{
    int writes_on = 20000, writes_off = 2000, concurrency = 64;
    const char *dir = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--writes"))
            writes_on = writes_off = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--concurrency"))
            concurrency = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--dir"))
            dir = argv[i + 1];
    }
    core_log_set_level(CORE_LOG_WARN);
    char *tmp = dir ? g_strdup(dir) : g_dir_make_tmp("store-bench-XXXXXX", NULL);
    printf("store_bench: SQLite %s, WAL, synchronous=FULL, dir=%s\n", sqlite3_libversion(), tmp);
    run(tmp, 0, writes_off, concurrency);
    run(tmp, 1, writes_on, concurrency);
    if (!dir) {
        char *cmd = g_strdup_printf("rm -rf '%s'", tmp);
        if (system(cmd) != 0)
            fprintf(stderr, "store_bench: could not remove %s\n", tmp);
        g_free(cmd);
    }
    g_free(tmp);
    return 0;
}
