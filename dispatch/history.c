/*
 * history.c — the positions database and its writer thread (history.h).
 *
 * The queue is a GArray of rows swapped out under a mutex: the loop thread
 * holds the lock only to append one row, the writer only to swap the array.
 * The writer wakes every FLUSH_MS (or at once when told to stop), writes
 * the rows in one transaction, and once a minute deletes rows older than
 * the retention.
 */
#include "history.h"

#include "../core/core.h"
#include "../core/log.h"
#include "../core/metrics.h"

#include <glib.h>
#include <math.h>
#include <sqlite3.h>
#include <string.h>

#define FLUSH_MS 200
#define PURGE_EVERY_US (60 * G_USEC_PER_SEC)

typedef struct {
    int64_t unit_id, fix_ms, recv_ms;
    double lon, lat, speed_kmh, course_deg;
} row;

struct disp_history {
    char *path;
    int keep_days;
    core_loop *loop;
    sqlite3 *db; /* the writer's */
    GThread *thread;
    GMutex lock;
    GCond wake;
    GArray *queue;                      /* row, under lock */
    int stopping;                       /* under lock */
    uint64_t written, dropped, thinned; /* thinned: loop thread only */
    int interval_ms;
    GHashTable *last_kept; /* unit id -> fix ms of its last kept position (loop thread) */
    int64_t last_purge_us;
};

static int exec(sqlite3 *db, const char *sql)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        log_error("history.sql", "error=\"%s\"", sqlite3_errmsg(db));
    return rc;
}

static void write_rows(disp_history *h, GArray *rows)
{
    sqlite3_stmt *s = NULL;
    if (exec(h->db, "BEGIN") != SQLITE_OK)
        return;
    if (sqlite3_prepare_v2(h->db,
                           "INSERT OR REPLACE INTO positions (unit_id, fix_ms, recv_ms, lon, lat,"
                           " speed_kmh, course) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           -1, &s, NULL) == SQLITE_OK) {
        for (guint i = 0; i < rows->len; i++) {
            const row *r = &g_array_index(rows, row, i);
            sqlite3_bind_int64(s, 1, r->unit_id);
            sqlite3_bind_int64(s, 2, r->fix_ms);
            sqlite3_bind_int64(s, 3, r->recv_ms);
            sqlite3_bind_double(s, 4, r->lon);
            sqlite3_bind_double(s, 5, r->lat);
            if (isfinite(r->speed_kmh))
                sqlite3_bind_double(s, 6, r->speed_kmh);
            else
                sqlite3_bind_null(s, 6);
            if (isfinite(r->course_deg))
                sqlite3_bind_double(s, 7, r->course_deg);
            else
                sqlite3_bind_null(s, 7);
            sqlite3_step(s);
            sqlite3_reset(s);
        }
    }
    sqlite3_finalize(s);
    if (exec(h->db, "COMMIT") == SQLITE_OK) {
        g_mutex_lock(&h->lock);
        h->written += rows->len;
        g_mutex_unlock(&h->lock);
    } else {
        exec(h->db, "ROLLBACK");
    }
}

static void purge(disp_history *h)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(h->db, "DELETE FROM positions WHERE fix_ms < ?", -1, &s, NULL) !=
        SQLITE_OK)
        return;
    sqlite3_bind_int64(s, 1, core_now_ms() - (int64_t)h->keep_days * 86400 * 1000);
    sqlite3_step(s);
    sqlite3_finalize(s);
}

static gpointer writer(gpointer p)
{
    disp_history *h = p;
    GArray *rows = g_array_new(FALSE, FALSE, sizeof(row));
    for (;;) {
        g_mutex_lock(&h->lock);
        if (!h->stopping && h->queue->len == 0)
            g_cond_wait_until(&h->wake, &h->lock,
                              g_get_monotonic_time() + FLUSH_MS * G_TIME_SPAN_MILLISECOND);
        int stop = h->stopping;
        GArray *t = h->queue;
        h->queue = rows;
        rows = t;
        g_mutex_unlock(&h->lock);
        if (rows->len)
            write_rows(h, rows);
        g_array_set_size(rows, 0);
        int64_t now = g_get_monotonic_time();
        if (now - h->last_purge_us > PURGE_EVERY_US) {
            h->last_purge_us = now;
            purge(h);
        }
        if (stop)
            break;
        g_usleep(FLUSH_MS * 1000); /* gather: one transaction per FLUSH_MS */
    }
    g_array_unref(rows);
    return NULL;
}

static double written_metric(void *h)
{
    return (double)disp_history_written(h);
}

static double thinned_metric(void *h)
{
    return (double)((disp_history *)h)->thinned;
}

static double dropped_metric(void *h)
{
    return (double)disp_history_dropped(h);
}

disp_history *disp_history_new(const char *dir, int keep_days, int interval_ms, core_loop *loop,
                               char **err)
{
    disp_history *h = g_new0(disp_history, 1);
    h->path = g_build_filename(dir, "positions.db", NULL);
    h->keep_days = keep_days;
    h->interval_ms = interval_ms;
    h->last_kept = g_hash_table_new(g_direct_hash, g_direct_equal);
    h->loop = loop;
    g_mutex_init(&h->lock);
    g_cond_init(&h->wake);
    h->queue = g_array_new(FALSE, FALSE, sizeof(row));
    if (sqlite3_open_v2(h->path, &h->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
            SQLITE_OK ||
        exec(h->db, "PRAGMA journal_mode=WAL") || exec(h->db, "PRAGMA synchronous=NORMAL") ||
        exec(h->db, "CREATE TABLE IF NOT EXISTS positions (unit_id INTEGER NOT NULL,"
                    " fix_ms INTEGER NOT NULL, recv_ms INTEGER NOT NULL, lon REAL NOT NULL,"
                    " lat REAL NOT NULL, speed_kmh REAL, course REAL,"
                    " PRIMARY KEY (unit_id, fix_ms)) WITHOUT ROWID;"
                    "CREATE INDEX IF NOT EXISTS positions_age ON positions(fix_ms)")) {
        *err = g_strdup_printf("%s: %s", h->path, h->db ? sqlite3_errmsg(h->db) : "cannot open");
        sqlite3_close(h->db);
        h->db = NULL;
        disp_history_free(h);
        return NULL;
    }
    h->last_purge_us = 0;
    h->thread = g_thread_new("history", writer, h);
    core_gauge_fn("citycmd_history_positions_written", "Positions written to the history.", "",
                  written_metric, h);
    core_gauge_fn(
        "citycmd_history_positions_thinned",
        "Accepted positions not kept: within --history-interval-ms of the unit's last kept.", "",
        thinned_metric, h);
    core_gauge_fn("citycmd_history_positions_dropped",
                  "Positions dropped because the history's queue was full.", "", dropped_metric, h);
    return h;
}

void disp_history_free(disp_history *h)
{
    if (!h)
        return;
    if (h->thread) {
        g_mutex_lock(&h->lock);
        h->stopping = 1;
        g_cond_signal(&h->wake);
        g_mutex_unlock(&h->lock);
        g_thread_join(h->thread);
    }
    if (h->db)
        sqlite3_close(h->db);
    g_array_unref(h->queue);
    g_hash_table_destroy(h->last_kept);
    g_mutex_clear(&h->lock);
    g_cond_clear(&h->wake);
    g_free(h->path);
    g_free(h);
}

void disp_history_add(disp_history *h, const disp_avl_pos *p)
{
    if (h->interval_ms > 0) {
        gpointer key = GSIZE_TO_POINTER((gsize)p->unit_id), last;
        if (g_hash_table_lookup_extended(h->last_kept, key, NULL, &last) &&
            p->fix_ms >= (int64_t)GPOINTER_TO_SIZE(last) &&
            p->fix_ms - (int64_t)GPOINTER_TO_SIZE(last) < h->interval_ms) {
            h->thinned++;
            return;
        }
        g_hash_table_insert(h->last_kept, key, GSIZE_TO_POINTER((gsize)p->fix_ms));
    }
    row r = {p->unit_id, p->fix_ms, p->recv_ms, p->lon, p->lat, p->speed_kmh, p->course_deg};
    g_mutex_lock(&h->lock);
    if (h->queue->len < DISP_HISTORY_QUEUE_MAX)
        g_array_append_val(h->queue, r);
    else
        h->dropped++;
    g_mutex_unlock(&h->lock);
}

/* ---- queries ---- */

typedef struct {
    disp_history *h;
    int64_t unit, from, to;
    int limit, rc;
    json_t *result;
    disp_json_done done;
    void *arg;
} track_op;

static void track_read(void *p)
{
    track_op *op = p;
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    if (sqlite3_open_v2(op->h->path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "SELECT fix_ms, lon, lat, speed_kmh, course FROM positions"
                           " WHERE unit_id = ? AND fix_ms BETWEEN ? AND ? ORDER BY fix_ms LIMIT ?",
                           -1, &s, NULL) != SQLITE_OK) {
        op->rc = CORE_EDB;
        sqlite3_close(db);
        return;
    }
    sqlite3_bind_int64(s, 1, op->unit);
    sqlite3_bind_int64(s, 2, op->from);
    sqlite3_bind_int64(s, 3, op->to);
    sqlite3_bind_int(s, 4, op->limit + 1);
    json_t *list = json_array();
    while (sqlite3_step(s) == SQLITE_ROW && (int)json_array_size(list) < op->limit + 1) {
        char at[32];
        core_iso8601(sqlite3_column_int64(s, 0), at, sizeof at);
        json_t *j = json_pack("{sssfsf}", "at", at, "lon", sqlite3_column_double(s, 1), "lat",
                              sqlite3_column_double(s, 2));
        for (int c = 3; c <= 4; c++)
            json_object_set_new(j, c == 3 ? "speed_kmh" : "course",
                                sqlite3_column_type(s, c) == SQLITE_NULL
                                    ? json_null()
                                    : json_real(sqlite3_column_double(s, c)));
        json_array_append_new(list, j);
    }
    int truncated = (int)json_array_size(list) > op->limit;
    if (truncated)
        json_array_remove(list, json_array_size(list) - 1);
    op->result = json_pack("{sosb}", "positions", list, "truncated", truncated);
    sqlite3_finalize(s);
    sqlite3_close(db);
}

static void track_done(void *p)
{
    track_op *op = p;
    op->done(op->rc, op->result, op->arg);
    json_decref(op->result);
    g_free(op);
}

int disp_history_track(disp_history *h, int64_t unit_id, int64_t from_ms, int64_t to_ms, int limit,
                       disp_json_done done, void *arg)
{
    track_op *op = g_new0(track_op, 1);
    *op = (track_op){h, unit_id, from_ms, to_ms, limit, 0, NULL, done, arg};
    int rc = core_work_submit(h->loop, track_read, track_done, op);
    if (rc)
        g_free(op);
    return rc;
}

uint64_t disp_history_written(disp_history *h)
{
    g_mutex_lock(&h->lock);
    uint64_t n = h->written;
    g_mutex_unlock(&h->lock);
    return n;
}

uint64_t disp_history_dropped(disp_history *h)
{
    g_mutex_lock(&h->lock);
    uint64_t n = h->dropped;
    g_mutex_unlock(&h->lock);
    return n;
}
