/*
 * closures.c — road closures kept in the store and applied to the road
 * graph (closures.h).
 */
#include "closures.h"

#include "../core/core.h"
#include "../core/log.h"
#include "../gis/gis.h"

#include <glib.h>
#include <math.h>
#include <sqlite3.h>
#include <string.h>

static const core_migration migrations[] = {
    {"road_closures", 1,
     "CREATE TABLE road_closures ("
     "  id INTEGER PRIMARY KEY,"
     "  lon REAL NOT NULL,"
     "  lat REAL NOT NULL,"
     "  reason TEXT NOT NULL DEFAULT '',"
     "  incident TEXT NOT NULL DEFAULT '',"
     "  actor TEXT NOT NULL,"
     "  closed_ms INTEGER NOT NULL,"
     "  reopened_ms INTEGER NOT NULL DEFAULT 0)"},
};

typedef struct {
    int64_t id;
    double lon, lat;
    char *reason, *incident, *actor;
    int64_t closed_ms;
    uint32_t edge; /* UINT32_MAX: not on the graph */
} closure;

struct disp_closures {
    core_store *store;
    disp_roads *roads;
    GHashTable *open; /* int64 id -> closure* */
};

void disp_closures_register(core_store *st)
{
    core_store_add_migrations(st, migrations, G_N_ELEMENTS(migrations));
}

static void closure_free(gpointer p)
{
    closure *c = p;
    g_free(c->reason);
    g_free(c->incident);
    g_free(c->actor);
    g_free(c);
}

/* Closes the closure's edge on the graph: the open edge nearest its point. */
static void apply(disp_closures *cs, closure *c)
{
    disp_roads_pos pos;
    c->edge = UINT32_MAX;
    if (cs->roads && disp_roads_snap(cs->roads, c->lon, c->lat, DISP_CLOSURE_SNAP_M, &pos) == 0) {
        c->edge = pos.edge;
        disp_roads_set_closed(cs->roads, -1, pos.edge, 1);
    }
}

static json_t *closure_json(const disp_closures *cs, const closure *c)
{
    char at[32];
    core_iso8601(c->closed_ms, at, sizeof at);
    json_t *geometry = json_null();
    if (cs->roads && c->edge != UINT32_MAX) {
        GArray *pts = disp_roads_edge_shape(cs->roads, c->edge);
        json_decref(geometry);
        geometry = disp_roads_geojson_line(pts);
        g_array_unref(pts);
    }
    return json_pack("{sI sf sf ss ss ss ss so sb}", "id", (json_int_t)c->id, "lon", c->lon, "lat",
                     c->lat, "reason", c->reason, "incident", c->incident, "by", c->actor,
                     "closed_at", at, "geometry", geometry, "on_graph", c->edge != UINT32_MAX);
}

static const char *col(sqlite3_stmt *s, int i)
{
    const char *t = (const char *)sqlite3_column_text(s, i);
    return t ? t : "";
}

static void load(sqlite3 *db, void *arg)
{
    disp_closures *cs = arg;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db,
                           "SELECT id, lon, lat, reason, incident, actor, closed_ms"
                           " FROM road_closures WHERE reopened_ms = 0 ORDER BY id",
                           -1, &s, NULL) != SQLITE_OK) {
        log_error("closures.load", "error=\"%s\"", sqlite3_errmsg(db));
        return;
    }
    while (sqlite3_step(s) == SQLITE_ROW) {
        closure *c = g_new0(closure, 1);
        c->id = sqlite3_column_int64(s, 0);
        c->lon = sqlite3_column_double(s, 1);
        c->lat = sqlite3_column_double(s, 2);
        c->reason = g_strdup(col(s, 3));
        c->incident = g_strdup(col(s, 4));
        c->actor = g_strdup(col(s, 5));
        c->closed_ms = sqlite3_column_int64(s, 6);
        apply(cs, c);
        g_hash_table_insert(cs->open, &c->id, c);
    }
    sqlite3_finalize(s);
}

disp_closures *disp_closures_new(core_store *st, disp_roads *roads)
{
    disp_closures *cs = g_new0(disp_closures, 1);
    cs->store = st;
    cs->roads = roads;
    cs->open = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, closure_free);
    if (st && core_store_load(st, load, cs) != 0)
        log_error("closures.load", "error=\"cannot read the store\"");
    return cs;
}

void disp_closures_free(disp_closures *cs)
{
    if (!cs)
        return;
    g_hash_table_destroy(cs->open);
    g_free(cs);
}

/* ---- writes ---- */

typedef struct {
    disp_closures *cs;
    closure *c; /* being added */
    int64_t id; /* being removed */
    char *actor, *source;
    json_t *result;
    disp_json_done done;
    void *arg;
} op_t;

static void op_free(op_t *op)
{
    if (op->c)
        closure_free(op->c);
    g_free(op->actor);
    g_free(op->source);
    json_decref(op->result);
    g_free(op);
}

static int emit(core_txn *txn, const char *type, int64_t id, json_t *data, const char *actor,
                const char *source)
{
    char subject[40];
    g_snprintf(subject, sizeof subject, "road-closure/%" G_GINT64_FORMAT, id);
    core_event *ev = core_event_new(type, actor, subject, data);
    core_event_set_source(ev, source);
    return core_txn_emit(txn, ev);
}

static int add_write(core_txn *txn, void *arg)
{
    op_t *op = arg;
    closure *c = op->c;
    sqlite3_stmt *s = core_txn_prepare(
        txn, "INSERT INTO road_closures (lon, lat, reason, incident, actor, closed_ms)"
             " VALUES (?, ?, ?, ?, ?, ?)");
    if (!s)
        return CORE_EDB;
    sqlite3_bind_double(s, 1, c->lon);
    sqlite3_bind_double(s, 2, c->lat);
    sqlite3_bind_text(s, 3, c->reason, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, c->incident, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, c->actor, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, c->closed_ms);
    int rc = core_txn_check(txn, sqlite3_step(s));
    if (rc)
        return rc;
    c->id = sqlite3_last_insert_rowid(core_txn_db(txn));
    op->result = closure_json(op->cs, c);
    return emit(txn, "road.closed", c->id, json_deep_copy(op->result), op->actor, op->source);
}

static void add_done(int rc, GPtrArray *events, void *arg)
{
    op_t *op = arg;
    (void)events;
    if (!rc) {
        disp_roads_set_closed(op->cs->roads, -1, op->c->edge, 1);
        g_hash_table_insert(op->cs->open, &op->c->id, op->c);
        op->c = NULL;
    }
    if (op->done)
        op->done(rc, rc ? NULL : json_incref(op->result), op->arg);
    op_free(op);
}

int disp_closure_add(disp_closures *cs, const json_t *body, const char *actor, const char *source,
                     disp_json_done done, void *arg, char **field, char **message)
{
    json_t *lon = json_object_get(body, "lon"), *lat = json_object_get(body, "lat"),
           *reason = json_object_get(body, "reason"), *incident = json_object_get(body, "incident");
    const char *bad = NULL, *why = NULL;
    if (!json_is_number(lon) || !json_is_number(lat) ||
        !gis_lonlat_valid(json_number_value(lon), json_number_value(lat)))
        bad = json_is_number(lon) ? "lat" : "lon",
        why = "a point on the road: lon and lat in degrees";
    else if (reason && (!json_is_string(reason) || json_string_length(reason) > 500))
        bad = "reason", why = "text of up to 500 bytes";
    else if (incident && !json_is_null(incident) &&
             (!json_is_string(incident) || !g_str_has_prefix(json_string_value(incident), "I-")))
        bad = "incident", why = "an incident id, I-<number>";
    if (bad) {
        *field = g_strdup(bad);
        *message = g_strdup(why);
        return CORE_EINVAL;
    }
    disp_roads_pos pos;
    if (!cs->roads || disp_roads_snap(cs->roads, json_number_value(lon), json_number_value(lat),
                                      DISP_CLOSURE_SNAP_M, &pos) != 0)
        return CORE_ENOTFOUND;
    op_t *op = g_new0(op_t, 1);
    op->cs = cs;
    op->actor = g_strdup(actor);
    op->source = g_strdup(source);
    op->done = done;
    op->arg = arg;
    closure *c = op->c = g_new0(closure, 1);
    c->lon = round(pos.lon * 1e7) / 1e7;
    c->lat = round(pos.lat * 1e7) / 1e7;
    c->reason = g_strdup(json_is_string(reason) ? json_string_value(reason) : "");
    c->incident = g_strdup(json_is_string(incident) ? json_string_value(incident) : "");
    c->actor = g_strdup(actor);
    c->closed_ms = core_now_ms();
    c->edge = pos.edge;
    int rc = core_store_write(cs->store, add_write, add_done, op);
    if (rc)
        op_free(op);
    return rc;
}

static int remove_write(core_txn *txn, void *arg)
{
    op_t *op = arg;
    sqlite3_stmt *s = core_txn_prepare(
        txn, "UPDATE road_closures SET reopened_ms = ? WHERE id = ? AND reopened_ms = 0");
    if (!s)
        return CORE_EDB;
    sqlite3_bind_int64(s, 1, core_now_ms());
    sqlite3_bind_int64(s, 2, op->id);
    int rc = core_txn_check(txn, sqlite3_step(s));
    if (rc)
        return rc;
    if (sqlite3_changes(core_txn_db(txn)) == 0)
        return CORE_ENOTFOUND;
    return emit(txn, "road.reopened", op->id, json_deep_copy(op->result), op->actor, op->source);
}

static void remove_done(int rc, GPtrArray *events, void *arg)
{
    op_t *op = arg;
    (void)events;
    if (!rc) {
        closure *c = g_hash_table_lookup(op->cs->open, &op->id);
        if (c && c->edge != UINT32_MAX) {
            /* Open the edge unless another closure holds it too. */
            int held = 0;
            GHashTableIter it;
            gpointer v;
            g_hash_table_iter_init(&it, op->cs->open);
            while (g_hash_table_iter_next(&it, NULL, &v))
                held |= v != c && ((closure *)v)->edge == c->edge;
            if (!held)
                disp_roads_set_closed(op->cs->roads, -1, c->edge, 0);
        }
        g_hash_table_remove(op->cs->open, &op->id);
    }
    if (op->done)
        op->done(rc, rc ? NULL : json_incref(op->result), op->arg);
    op_free(op);
}

int disp_closure_remove(disp_closures *cs, int64_t id, const char *actor, const char *source,
                        disp_json_done done, void *arg)
{
    closure *c = g_hash_table_lookup(cs->open, &id);
    if (!c)
        return CORE_ENOTFOUND;
    op_t *op = g_new0(op_t, 1);
    op->cs = cs;
    op->id = id;
    op->actor = g_strdup(actor);
    op->source = g_strdup(source);
    op->done = done;
    op->arg = arg;
    op->result = closure_json(cs, c);
    int rc = core_store_write(cs->store, remove_write, remove_done, op);
    if (rc)
        op_free(op);
    return rc;
}

static gint by_id(gconstpointer a, gconstpointer b)
{
    int64_t x = (*(closure *const *)a)->id, y = (*(closure *const *)b)->id;
    return x < y ? -1 : x > y;
}

json_t *disp_closures_json(const disp_closures *cs)
{
    GPtrArray *all = g_ptr_array_new();
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, cs->open);
    while (g_hash_table_iter_next(&it, NULL, &v))
        g_ptr_array_add(all, v);
    g_ptr_array_sort(all, by_id);
    json_t *list = json_array();
    for (guint i = 0; i < all->len; i++)
        json_array_append_new(list, closure_json(cs, all->pdata[i]));
    g_ptr_array_unref(all);
    return json_pack("{so}", "closures", list);
}
