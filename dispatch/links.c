/*
 * links.c — merging incidents and splitting calls back out, linked as NENA
 * EIDO does (REPLACED/REPLACING, SPLIT). Writer functions on the store's
 * writer thread; the rest on the loop thread.
 */
#include "internal.h"

/* ---- merge and split ---- */

typedef struct {
    int64_t id, into; /* merge: id into `into`; split: calls out of id */
    GArray *calls;    /* split: call ids (int64) */
    char *actor, *source, *why;
    json_t *result;
    disp_json_done done;
    void *arg;
} link_op;

static void link_op_free(link_op *op)
{
    if (op->calls)
        g_array_free(op->calls, TRUE);
    g_free(op->actor);
    g_free(op->source);
    g_free(op->why);
    json_decref(op->result);
    g_free(op);
}

static int exec_ids(core_txn *txn, const char *sql, int64_t a, int64_t b, int64_t c)
{
    sqlite3_stmt *s = core_txn_prepare(txn, sql);
    if (!s)
        return CORE_EDB;
    sqlite3_bind_int64(s, 1, a);
    sqlite3_bind_int64(s, 2, b);
    sqlite3_bind_int64(s, 3, c);
    return core_txn_check(txn, sqlite3_step(s));
}

static int link_event(core_txn *txn, link_op *op, int64_t id, const char *type, json_t *data)
{
    disp__update_op u = {.id = id, .actor = op->actor, .source = op->source};
    return disp__emit_change(txn, &u, type, data);
}

static int is_open(core_txn *txn, int64_t id, char **status)
{
    json_t *inc = NULL;
    if (disp__read_incident(txn, id, &inc))
        return 0;
    *status = g_strdup(json_string_value(json_object_get(inc, "status")));
    json_decref(inc);
    int i = disp__status_index(*status);
    return i >= 0 && i < 5;
}

static int merge_write(core_txn *txn, void *arg)
{
    link_op *op = arg;
    char *from_status = NULL, *into_status = NULL;
    int from_open = is_open(txn, op->id, &from_status);
    int ok = is_open(txn, op->into, &into_status) && from_open;
    int rc = 0;
    if (op->id == op->into)
        op->why = g_strdup("an incident cannot be merged into itself");
    else if (!from_status || !into_status)
        rc = CORE_ENOTFOUND;
    else if (!ok)
        op->why = g_strdup("only open incidents can be merged");
    if (!rc && op->why)
        rc = CORE_ECONFLICT;
    int64_t now = core_now_ms();
    if (!rc)
        rc = exec_ids(txn,
                      "UPDATE incidents SET callers = callers + (SELECT count(*) FROM calls"
                      " WHERE incident_id = ?1), last_call_ms = max(last_call_ms, (SELECT"
                      " last_call_ms FROM incidents WHERE id = ?1)), updated_ms = ?3 WHERE id = ?2",
                      op->id, op->into, now);
    if (!rc)
        rc = exec_ids(txn, "UPDATE calls SET incident_id = ?2 WHERE incident_id = ?1", op->id,
                      op->into, 0);
    if (!rc)
        rc = exec_ids(txn,
                      "UPDATE incidents SET status_before = status, status = 'merged',"
                      " merged_into = ?2, closed_ms = ?3, updated_ms = ?3 WHERE id = ?1",
                      op->id, op->into, now);
    if (!rc)
        rc = exec_ids(txn,
                      "INSERT INTO incident_links (from_id, to_id, kind, at_ms)"
                      " VALUES (?1, ?2, 'merged', ?3)",
                      op->id, op->into, now);
    char *from = disp__ext_id('I', op->id), *into = disp__ext_id('I', op->into);
    if (!rc)
        rc = link_event(txn, op, op->id, "incident.merged", json_pack("{ss}", "into", into));
    if (!rc)
        rc = link_event(txn, op, op->into, "incident.merged_in", json_pack("{ss}", "from", from));
    g_free(from);
    g_free(into);
    g_free(from_status);
    g_free(into_status);
    if (!rc)
        rc = disp__read_incident(txn, op->into, &op->result);
    return rc;
}

/* Moves calls out of op->id: back into the incident they came from when
 * that one was merged here (restoring it as it was), else into a new
 * incident split from this one. */
static int split_write(core_txn *txn, void *arg)
{
    link_op *op = arg;
    char *status = NULL;
    if (!is_open(txn, op->id, &status)) {
        int rc = status ? CORE_ECONFLICT : CORE_ENOTFOUND;
        if (status)
            op->why = g_strdup("only an open incident can have calls split out");
        g_free(status);
        return rc;
    }
    g_free(status);
    int64_t origin = -1, now = core_now_ms();
    for (guint i = 0; i < op->calls->len; i++) {
        sqlite3_stmt *s = core_txn_prepare(
            txn, "SELECT origin_incident_id FROM calls WHERE id = ? AND incident_id = ?");
        if (!s)
            return CORE_EDB;
        sqlite3_bind_int64(s, 1, g_array_index(op->calls, int64_t, i));
        sqlite3_bind_int64(s, 2, op->id);
        int64_t o = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -2;
        sqlite3_reset(s);
        if (o == -2) {
            op->why = g_strdup_printf("call C-%" G_GINT64_FORMAT " is not on this incident",
                                      g_array_index(op->calls, int64_t, i));
            return CORE_ECONFLICT;
        }
        origin = origin == -1 || origin == o ? o : 0;
    }
    sqlite3_stmt *s = core_txn_prepare(txn, "SELECT count(*) FROM calls WHERE incident_id = ?");
    sqlite3_bind_int64(s, 1, op->id);
    int64_t total = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    if ((int64_t)op->calls->len >= total) {
        op->why = g_strdup("at least one call must stay on the incident");
        return CORE_ECONFLICT;
    }
    /* Restore the merged incident these calls came from, if that is what they are. */
    int64_t target = 0;
    s = core_txn_prepare(txn, "SELECT count(*) FROM calls WHERE origin_incident_id = ?1 AND"
                              " incident_id = ?2");
    sqlite3_bind_int64(s, 1, origin);
    sqlite3_bind_int64(s, 2, op->id);
    int64_t from_origin =
        origin > 0 && sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    sqlite3_reset(s);
    s = core_txn_prepare(txn, "SELECT merged_into FROM incidents WHERE id = ?");
    sqlite3_bind_int64(s, 1, origin);
    int64_t merged_into =
        origin > 0 && sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    int rc = 0;
    if (origin > 0 && origin != op->id && merged_into == op->id &&
        from_origin == (int64_t)op->calls->len) {
        target = origin;
        rc = exec_ids(txn,
                      "UPDATE incidents SET status = status_before, status_before = '',"
                      " merged_into = 0, closed_ms = 0, updated_ms = ?2 WHERE id = ?1",
                      target, now, 0);
        if (!rc)
            rc = exec_ids(txn,
                          "DELETE FROM incident_links WHERE from_id = ?1 AND to_id = ?2"
                          " AND kind = 'merged'",
                          target, op->id, 0);
    } else {
        /* A new incident like this one, at the first moved call. */
        rc = exec_ids(txn,
                      "INSERT INTO incidents (type, family, priority, status, lon, lat, address,"
                      " districts, agency, joint, callers, opened_ms, last_call_ms, updated_ms)"
                      " SELECT i.type, i.family, i.priority, 'new', c.lon, c.lat, i.address,"
                      " i.districts, i.agency, i.joint, 0, ?3, c.received_ms, ?3"
                      " FROM incidents i, calls c WHERE i.id = ?1 AND c.id = ?2",
                      op->id, g_array_index(op->calls, int64_t, 0), now);
        target = sqlite3_last_insert_rowid(core_txn_db(txn));
        if (!rc)
            rc = exec_ids(txn,
                          "INSERT INTO incident_links (from_id, to_id, kind, at_ms)"
                          " VALUES (?1, ?2, 'split', ?3)",
                          target, op->id, now);
    }
    for (guint i = 0; !rc && i < op->calls->len; i++)
        rc = exec_ids(txn, "UPDATE calls SET incident_id = ?1 WHERE id = ?2", target,
                      g_array_index(op->calls, int64_t, i), 0);
    /* Callers are recounted from the calls on both. */
    if (!rc)
        rc = exec_ids(txn,
                      "UPDATE incidents SET callers = (SELECT count(*) FROM calls WHERE"
                      " incident_id = incidents.id), updated_ms = ?3 WHERE id IN (?1, ?2)",
                      target, op->id, now);
    char *t = disp__ext_id('I', target), *f = disp__ext_id('I', op->id);
    if (!rc)
        rc = link_event(txn, op, op->id, "incident.split",
                        json_pack("{sssi}", "into", t, "calls", (int)op->calls->len));
    if (!rc)
        rc = link_event(txn, op, target, origin == target ? "incident.restored" : "incident.opened",
                        json_pack("{ss}", "split_from", f));
    g_free(t);
    g_free(f);
    if (!rc)
        rc = disp__read_incident(txn, target, &op->result);
    return rc;
}

static void link_done(int rc, GPtrArray *events, void *arg)
{
    link_op *op = arg;
    if (rc == CORE_ECONFLICT && op->why) {
        op->done(rc, json_pack("{ss}", "message", op->why), op->arg);
    } else {
        op->done(rc, rc ? NULL : op->result, op->arg);
        op->result = NULL;
    }
    link_op_free(op);
}

static int start_link(disp_incidents *d, link_op *op, core_write_fn fn)
{
    int rc = core_store_write(d->store, fn, link_done, op);
    if (rc)
        link_op_free(op);
    return rc;
}

int disp_incident_merge(disp_incidents *d, int64_t id, int64_t into, const char *actor,
                        const char *source, disp_json_done done, void *arg)
{
    link_op *op = g_new0(link_op, 1);
    op->id = id;
    op->into = into;
    op->actor = g_strdup(actor);
    op->source = g_strdup(source);
    op->done = done;
    op->arg = arg;
    return start_link(d, op, merge_write);
}

int disp_incident_split(disp_incidents *d, int64_t id, const int64_t *calls, size_t n,
                        const char *actor, const char *source, disp_json_done done, void *arg)
{
    link_op *op = g_new0(link_op, 1);
    op->id = id;
    op->calls = g_array_new(FALSE, FALSE, sizeof(int64_t));
    g_array_append_vals(op->calls, calls, (guint)n);
    op->actor = g_strdup(actor);
    op->source = g_strdup(source);
    op->done = done;
    op->arg = arg;
    return start_link(d, op, split_write);
}
