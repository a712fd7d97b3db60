/*
 * alarms.c — priority-1 timers: an alarm when no unit is assigned, and when
 * none arrives. Loop thread (the timer), a reader and the writer.
 */
#include "internal.h"

/* ---- timers ---- */

/* Priority-1 incidents raise an alarm, once each: still "new" (no unit
 * assigned) after unassigned_s, not on scene after arrival_s. A reader
 * finds candidates every second; the writer re-checks and records the
 * alarm, so a restart or two checks at once never raise one twice. */

typedef struct {
    disp_incidents *d;
    GArray *due; /* {int64 id, int kind} */
} alarm_scan;

typedef struct {
    int64_t id;
    int kind; /* 0 unassigned, 1 no_arrival */
} alarm_due;

static const char *const alarm_kinds[] = {"unassigned", "no_arrival"};

static void alarm_read(sqlite3 *db, void *arg)
{
    alarm_scan *a = arg;
    int64_t now = core_now_ms();
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db,
                           "SELECT id, status, opened_ms FROM incidents WHERE priority = 1 AND"
                           " closed_ms = 0 AND status IN ('new', 'dispatched', 'en_route') AND"
                           " opened_ms <= ? AND (SELECT count(*) FROM incident_alarms WHERE"
                           " incident_id = incidents.id) < 2",
                           -1, &s, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_int64(s, 1, now - (int64_t)MIN(a->d->unassigned_s, a->d->arrival_s) * 1000);
    while (sqlite3_step(s) == SQLITE_ROW) {
        int64_t age = now - sqlite3_column_int64(s, 2);
        alarm_due due = {sqlite3_column_int64(s, 0), -1};
        if (strcmp(disp__col_text(s, 1), "new") == 0 && age >= (int64_t)a->d->unassigned_s * 1000) {
            due.kind = 0;
            g_array_append_val(a->due, due);
        }
        if (age >= (int64_t)a->d->arrival_s * 1000) {
            due.kind = 1;
            g_array_append_val(a->due, due);
        }
    }
    sqlite3_finalize(s);
}

static int alarm_write(core_txn *txn, void *arg)
{
    alarm_due *due = arg;
    sqlite3_stmt *s = core_txn_prepare(
        txn, "INSERT OR IGNORE INTO incident_alarms (incident_id, kind, at_ms) VALUES (?, ?, ?)");
    if (!s)
        return CORE_EDB;
    sqlite3_bind_int64(s, 1, due->id);
    sqlite3_bind_text(s, 2, alarm_kinds[due->kind], -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, core_now_ms());
    int rc = core_txn_check(txn, sqlite3_step(s));
    if (rc || sqlite3_changes(core_txn_db(txn)) == 0)
        return rc; /* already raised */
    disp__update_op u = {.id = due->id, .actor = "system", .source = "local"};
    return disp__emit_change(txn, &u, "incident.alarm",
                             json_pack("{ss}", "kind", alarm_kinds[due->kind]));
}

static void alarm_written(int rc, GPtrArray *events, void *arg)
{
    g_free(arg);
}

static void alarm_scanned(void *arg)
{
    alarm_scan *a = arg;
    a->d->checking = 0;
    for (guint i = 0; i < a->due->len; i++) {
        alarm_due *due = g_memdup2(&g_array_index(a->due, alarm_due, i), sizeof *due);
        if (core_store_write(a->d->store, alarm_write, alarm_written, due) != 0)
            g_free(due);
    }
    g_array_free(a->due, TRUE);
    g_free(a);
}

static gboolean alarm_tick(gpointer p)
{
    disp_incidents *d = p;
    if (d->checking)
        return G_SOURCE_CONTINUE;
    alarm_scan *a = g_new0(alarm_scan, 1);
    a->d = d;
    a->due = g_array_new(FALSE, FALSE, sizeof(alarm_due));
    d->checking = 1;
    if (core_store_read(d->store, alarm_read, alarm_scanned, a) != 0) {
        d->checking = 0;
        g_array_free(a->due, TRUE);
        g_free(a);
    }
    return G_SOURCE_CONTINUE;
}

void disp_incidents_start_timers(disp_incidents *d, int unassigned_s, int arrival_s)
{
    d->unassigned_s = unassigned_s;
    d->arrival_s = arrival_s;
    d->timer = g_timeout_add(1000, alarm_tick, d);
}
