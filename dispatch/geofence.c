/*
 * geofence.c — the fences (table, writes, the loop-thread mirror) and what
 * positions do with them: enter/exit events and automatic statuses.
 *
 * The mirror holds every live fence with its shape; it is loaded at start
 * and changed by this module's own writes once they committed (no one else
 * writes the table). For each unit that has reported, the sorted ids of the
 * fences it is inside. A position is tested against every fence whose box
 * holds it (there are a few hundred at most); when the set changes, one
 * write carries the exits then the enters. Automatic statuses go through
 * disp_unit_set_status, one request per unit at a time, decided on the
 * units mirror (committed state). Loop thread only.
 */
#include "geofence.h"

#include "internal.h"
#include "units.h"

#include "../core/core.h"
#include "../core/log.h"

#include <glib.h>
#include <math.h>
#include <string.h>

static const core_migration migrations[] = {
    {"geofences", 1,
     "CREATE TABLE geofences ("
     "  id INTEGER PRIMARY KEY,"
     "  name TEXT NOT NULL,"
     "  kind TEXT NOT NULL CHECK (kind IN ('station','hospital','hazard','custom')),"
     "  agency TEXT NOT NULL DEFAULT '',"
     "  shape TEXT NOT NULL CHECK (shape IN ('polygon','circle')),"
     "  polygon TEXT CHECK (polygon IS NULL OR json_valid(polygon)),"
     "  lon REAL,"
     "  lat REAL,"
     "  radius_m REAL CHECK (radius_m IS NULL OR radius_m BETWEEN 1 AND 50000),"
     "  created_ms INTEGER NOT NULL,"
     "  removed_ms INTEGER NOT NULL DEFAULT 0)"},
};

static const char *const kinds[] = {"station", "hospital", "hazard", "custom", NULL};

typedef struct {
    int64_t id;
    char *name, *kind, *agency;
    json_t *geometry; /* as the client gave it (a Polygon or a Circle) */
    int64_t created_ms;
    disp_geofence_shape shape;
} fence;

typedef struct {
    GArray *inside; /* int64 fence ids, ascending */
    int asking;     /* an automatic status change is in the store's queue */
} unit_state;

struct disp_geofences {
    core_store *store;
    struct disp_units *units;
    struct disp_incidents *incidents;
    GHashTable *fences;   /* int64 id -> fence* */
    GHashTable *units_in; /* int64 unit id -> unit_state* */
};

void disp_geofences_register(core_store *st)
{
    core_store_add_migrations(st, migrations, G_N_ELEMENTS(migrations));
}

static void fence_free(gpointer p)
{
    fence *f = p;
    g_free(f->name);
    g_free(f->kind);
    g_free(f->agency);
    json_decref(f->geometry);
    disp_geofence_shape_clear(&f->shape);
    g_free(f);
}

static void unit_state_free(gpointer p)
{
    unit_state *u = p;
    g_array_free(u->inside, TRUE);
    g_free(u);
}

/* "G-12" / "U-3" into buf. */
static const char *ext(char *buf, size_t len, char prefix, int64_t id)
{
    g_snprintf(buf, len, "%c-%" G_GINT64_FORMAT, prefix, id);
    return buf;
}

static json_t *fence_json(const fence *f)
{
    char at[32], id[24];
    core_iso8601(f->created_ms, at, sizeof at);
    return json_pack("{sssssssssOss}", "id", ext(id, sizeof id, 'G', f->id), "name", f->name,
                     "kind", f->kind, "agency", f->agency, "geometry", f->geometry, "created_at",
                     at);
}

/* ---- the mirror ---- */

/* Takes geometry; NULL when it is not a usable shape (logged). */
static fence *fence_new(int64_t id, const char *name, const char *kind, const char *agency,
                        json_t *geometry, int64_t created_ms)
{
    fence *f = g_new0(fence, 1);
    char *field = NULL, *message = NULL;
    if (disp_geofence_shape_parse(geometry, &f->shape, &field, &message) != 0) {
        log_warn("geofence.load", "id=%" G_GINT64_FORMAT " field=%s error=\"%s\"", id,
                 field ? field : "geometry", message ? message : "");
        g_free(field);
        g_free(message);
        json_decref(geometry);
        g_free(f);
        return NULL;
    }
    f->id = id;
    f->name = g_strdup(name);
    f->kind = g_strdup(kind);
    f->agency = g_strdup(agency ? agency : "");
    f->geometry = geometry;
    f->created_ms = created_ms;
    return f;
}

static void mirror_put(disp_geofences *g, fence *f)
{
    if (f)
        g_hash_table_replace(g->fences, &f->id, f);
}

static const char *col(sqlite3_stmt *s, int i)
{
    const char *t = (const char *)sqlite3_column_text(s, i);
    return t ? t : "";
}

static void load(sqlite3 *db, void *arg)
{
    disp_geofences *g = arg;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db,
                           "SELECT id, name, kind, agency, shape, polygon, lon, lat, radius_m,"
                           " created_ms FROM geofences WHERE removed_ms = 0",
                           -1, &s, NULL) != SQLITE_OK) {
        log_error("geofence.load", "error=\"%s\"", sqlite3_errmsg(db));
        return;
    }
    while (sqlite3_step(s) == SQLITE_ROW) {
        json_t *geometry = strcmp(col(s, 4), "circle") == 0
                               ? json_pack("{sss[ff]sf}", "type", "Circle", "coordinates",
                                           sqlite3_column_double(s, 6), sqlite3_column_double(s, 7),
                                           "radius_m", sqlite3_column_double(s, 8))
                               : json_loads(col(s, 5), 0, NULL);
        mirror_put(g, fence_new(sqlite3_column_int64(s, 0), col(s, 1), col(s, 2), col(s, 3),
                                geometry, sqlite3_column_int64(s, 9)));
    }
    sqlite3_finalize(s);
}

disp_geofences *disp_geofences_new(core_store *st, struct disp_units *units,
                                   struct disp_incidents *incidents)
{
    disp_geofences *g = g_new0(disp_geofences, 1);
    g->store = st;
    g->units = units;
    g->incidents = incidents;
    g->fences = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, fence_free);
    g->units_in = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, unit_state_free);
    if (st && core_store_load(st, load, g) != 0)
        log_error("geofence.load", "error=\"cannot read the store\"");
    return g;
}

void disp_geofences_free(disp_geofences *g)
{
    if (!g)
        return;
    g_hash_table_destroy(g->fences);
    g_hash_table_destroy(g->units_in);
    g_free(g);
}

unsigned disp_geofences_count(const disp_geofences *g)
{
    return g_hash_table_size(g->fences);
}

const char *disp_geofence_agency(disp_geofences *g, int64_t id)
{
    fence *f = g_hash_table_lookup(g->fences, &id);
    return f ? f->agency : NULL;
}

static gint by_id(gconstpointer a, gconstpointer b)
{
    int64_t x = (*(fence *const *)a)->id, y = (*(fence *const *)b)->id;
    return x < y ? -1 : x > y;
}

json_t *disp_geofences_json(disp_geofences *g)
{
    GPtrArray *all = g_ptr_array_new();
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, g->fences);
    while (g_hash_table_iter_next(&it, NULL, &v))
        g_ptr_array_add(all, v);
    g_ptr_array_sort(all, by_id);
    json_t *out = json_array();
    for (guint i = 0; i < all->len; i++)
        json_array_append_new(out, fence_json(all->pdata[i]));
    g_ptr_array_free(all, TRUE);
    return out;
}

/* ---- writes ---- */

typedef struct {
    disp_geofences *g;
    fence *f;   /* add: the fence to insert (id set by the write) */
    int64_t id; /* remove */
    char *actor, *source;
    json_t *events; /* transitions: [{type, data}] */
    int64_t unit_id;
    json_t *result;
    disp_json_done done;
    void *arg;
} fence_op;

static fence_op *op_new(disp_geofences *g, const char *actor, const char *source,
                        disp_json_done done, void *arg)
{
    fence_op *op = g_new0(fence_op, 1);
    op->g = g;
    op->actor = g_strdup(actor);
    op->source = g_strdup(source ? source : "");
    op->done = done;
    op->arg = arg;
    return op;
}

static void op_free(fence_op *op)
{
    if (op->f)
        fence_free(op->f);
    g_free(op->actor);
    g_free(op->source);
    json_decref(op->events);
    json_decref(op->result);
    g_free(op);
}

static int emit(core_txn *txn, const char *type, const char *subject, json_t *data,
                const char *actor, const char *source)
{
    core_event *ev = core_event_new(type, actor, subject, data);
    core_event_set_source(ev, source);
    return core_txn_emit(txn, ev);
}

/* Events of a fence name its agency, so that only that agency's readers see them. */
static json_t *fence_event_data(const fence *f)
{
    json_t *d = fence_json(f);
    if (*f->agency)
        json_object_set_new(d, "agencies", json_pack("[s]", f->agency));
    return d;
}

static int add_write(core_txn *txn, void *arg)
{
    fence_op *op = arg;
    fence *f = op->f;
    int circle = f->shape.form == DISP_GEOFENCE_CIRCLE;
    sqlite3_stmt *s = core_txn_prepare(
        txn, "INSERT INTO geofences (name, kind, agency, shape, polygon, lon, lat, radius_m,"
             " created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    if (!s)
        return CORE_EDB;
    f->created_ms = core_now_ms();
    sqlite3_bind_text(s, 1, f->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, f->kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, f->agency, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, circle ? "circle" : "polygon", -1, SQLITE_STATIC);
    if (circle) {
        sqlite3_bind_double(s, 6, f->shape.lon);
        sqlite3_bind_double(s, 7, f->shape.lat);
        sqlite3_bind_double(s, 8, f->shape.radius_m);
    } else {
        char *text = json_dumps(f->geometry, JSON_COMPACT);
        sqlite3_bind_text(s, 5, text, -1, SQLITE_TRANSIENT);
        free(text);
    }
    sqlite3_bind_int64(s, 9, f->created_ms);
    int rc = core_txn_check(txn, sqlite3_step(s));
    if (rc)
        return rc;
    f->id = sqlite3_last_insert_rowid(core_txn_db(txn));
    char subject[40];
    g_snprintf(subject, sizeof subject, "geofence/%" G_GINT64_FORMAT, f->id);
    json_decref(op->result);
    op->result = fence_json(f);
    return emit(txn, "geofence.created", subject, fence_event_data(f), op->actor, op->source);
}

static void add_done(int rc, GPtrArray *events, void *arg)
{
    fence_op *op = arg;
    (void)events;
    if (!rc) {
        mirror_put(op->g, op->f);
        op->f = NULL;
    }
    if (op->done)
        op->done(rc, rc ? NULL : json_incref(op->result), op->arg);
    op_free(op);
}

static int refuse(char **field, char **message, const char *f, const char *msg)
{
    *field = g_strdup(f);
    *message = g_strdup(msg);
    return CORE_EINVAL;
}

int disp_geofence_add(disp_geofences *g, const json_t *body, const char *actor, const char *source,
                      disp_json_done done, void *arg, char **field, char **message)
{
    const json_t *name = json_object_get(body, "name"), *agency = json_object_get(body, "agency");
    const char *kind = json_string_value(json_object_get(body, "kind"));
    char *trimmed = g_strstrip(g_strdup(json_is_string(name) ? json_string_value(name) : ""));
    disp_geofence_shape shape;
    int rc = 0;
    if (!*trimmed || strlen(trimmed) > 100 ||
        strlen(json_string_value(name)) != json_string_length(name))
        rc = refuse(field, message, "name", "1 to 100 bytes of text, without NUL");
    else if (!kind || !g_strv_contains(kinds, kind))
        rc = refuse(field, message, "kind", "one of station, hospital, hazard, custom");
    else if (agency && !json_is_string(agency))
        rc = refuse(field, message, "agency", "an agency, or \"\" for all");
    else
        rc = disp_geofence_shape_parse(json_object_get(body, "geometry"), &shape, field, message);
    if (rc) {
        g_free(trimmed);
        return rc;
    }
    fence_op *op = op_new(g, actor, source, done, arg);
    op->f = g_new0(fence, 1);
    op->f->name = trimmed;
    op->f->kind = g_strdup(kind);
    op->f->agency = g_strdup(json_is_string(agency) ? json_string_value(agency) : "");
    /* As the mirror reloads it, whatever else the client sent along. */
    op->f->geometry =
        shape.form == DISP_GEOFENCE_CIRCLE
            ? json_pack("{sss[ff]sf}", "type", "Circle", "coordinates", shape.lon, shape.lat,
                        "radius_m", shape.radius_m)
            : json_pack("{sssO}", "type", "Polygon", "coordinates",
                        json_object_get(json_object_get(body, "geometry"), "coordinates"));
    op->f->shape = shape;
    rc = core_store_write(g->store, add_write, add_done, op);
    if (rc)
        op_free(op);
    return rc;
}

static int remove_write(core_txn *txn, void *arg)
{
    fence_op *op = arg;
    int rc = disp__mark_removed(txn, "geofences", op->id);
    if (rc)
        return rc;
    char subject[40];
    g_snprintf(subject, sizeof subject, "geofence/%" G_GINT64_FORMAT, op->id);
    op->result = json_object();
    return emit(txn, "geofence.removed", subject, json_deep_copy(op->events), op->actor,
                op->source);
}

/* The units inside a removed fence forget it without an exit: it is gone, they did not move. */
static void forget_fence(disp_geofences *g, int64_t id)
{
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, g->units_in);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        GArray *in = ((unit_state *)v)->inside;
        for (guint i = 0; i < in->len; i++)
            if (g_array_index(in, int64_t, i) == id)
                g_array_remove_index(in, i--);
    }
}

static void remove_done(int rc, GPtrArray *events, void *arg)
{
    fence_op *op = arg;
    (void)events;
    if (!rc) {
        g_hash_table_remove(op->g->fences, &op->id);
        forget_fence(op->g, op->id);
    }
    if (op->done)
        op->done(rc, rc ? NULL : json_incref(op->result), op->arg);
    op_free(op);
}

int disp_geofence_remove(disp_geofences *g, int64_t id, const char *actor, const char *source,
                         disp_json_done done, void *arg)
{
    fence *f = g_hash_table_lookup(g->fences, &id);
    if (!f)
        return CORE_ENOTFOUND;
    fence_op *op = op_new(g, actor, source, done, arg);
    op->id = id;
    /* The removed event says which fence it was (data for the event). */
    op->events = fence_event_data(f);
    int rc = core_store_write(g->store, remove_write, remove_done, op);
    if (rc)
        op_free(op);
    return rc;
}

/* ---- positions ---- */

static int transitions_write(core_txn *txn, void *arg)
{
    fence_op *op = arg;
    char subject[32];
    g_snprintf(subject, sizeof subject, "unit/%" G_GINT64_FORMAT, op->unit_id);
    size_t i;
    json_t *e;
    json_array_foreach(op->events, i, e)
    {
        int rc = emit(txn, json_string_value(json_object_get(e, "type")), subject,
                      json_incref(json_object_get(e, "data")), "system", "geofence");
        if (rc)
            return rc;
    }
    return 0;
}

static void transitions_done(int rc, GPtrArray *events, void *arg)
{
    fence_op *op = arg;
    (void)events;
    if (rc)
        log_warn("geofence.events", "unit=%" G_GINT64_FORMAT " error=\"%s\"", op->unit_id,
                 core_strerror(rc));
    op_free(op);
}

static json_t *transition(const char *type, const fence *f, const disp_avl_pos *p)
{
    char at[32], fid[24], uid[24];
    core_iso8601(p->fix_ms, at, sizeof at);
    json_t *d = json_pack("{sssssssssss[s]}", "fence", ext(fid, sizeof fid, 'G', f->id), "name",
                          f->name, "kind", f->kind, "unit", ext(uid, sizeof uid, 'U', p->unit_id),
                          "at", at, "agencies", p->agency);
    return json_pack("{ssso}", "type", type, "data", d);
}

/* Queues one write with the unit's exits and enters. Takes events. */
static void write_transitions(disp_geofences *g, int64_t unit_id, json_t *events)
{
    fence_op *op = op_new(g, "system", "geofence", NULL, NULL);
    op->unit_id = unit_id;
    op->events = events;
    int rc = core_store_write(g->store, transitions_write, transitions_done, op);
    if (rc) {
        log_warn("geofence.events", "unit=%" G_GINT64_FORMAT " error=\"%s\"", unit_id,
                 core_strerror(rc));
        op_free(op);
    }
}

typedef struct {
    disp_geofences *g;
    int64_t unit_id;
    char status[24];
} status_ask;

static void status_set(int rc, json_t *result, void *arg)
{
    status_ask *a = arg;
    unit_state *u = g_hash_table_lookup(a->g->units_in, &a->unit_id);
    if (u)
        u->asking = 0;
    if (rc)
        log_warn("geofence.status", "unit=%" G_GINT64_FORMAT " status=%s error=\"%s\"", a->unit_id,
                 a->status, core_strerror(rc));
    json_decref(result);
    g_free(a);
}

/* The automatic statuses and the only ones each may follow ("unless the unit says otherwise"). */
static const struct {
    const char *to;
    const char *const from[3];
} automatic[] = {
    {"at_hospital", {"transporting", NULL}},
    {"in_station", {"returning", NULL}},
    {"on_scene", {"dispatched", "en_route", NULL}},
};

/* Asks for an automatic status change, one at a time per unit. The writer
 * checks the status it follows again: a person may have changed it since
 * the mirror said so. */
static void ask_status(disp_geofences *g, unit_state *u, int64_t unit_id, const char *status)
{
    const char *const *from = NULL;
    for (size_t i = 0; i < G_N_ELEMENTS(automatic); i++)
        if (strcmp(automatic[i].to, status) == 0)
            from = automatic[i].from;
    if (u->asking || !from)
        return;
    status_ask *a = g_new0(status_ask, 1);
    a->g = g;
    a->unit_id = unit_id;
    g_strlcpy(a->status, status, sizeof a->status);
    /* incident 0: the unit's own, which every status here keeps. */
    int rc = disp_unit_set_status_if(g->units, unit_id, from, status, 0, "system", "geofence",
                                     status_set, a);
    if (rc) {
        log_warn("geofence.status", "unit=%" G_GINT64_FORMAT " status=%s error=\"%s\"", unit_id,
                 status, core_strerror(rc));
        g_free(a);
        return;
    }
    u->asking = 1;
}

/* What entering f means for the unit's status, or NULL. */
static const char *status_on_enter(const fence *f, const disp_unit_info *info)
{
    if (strcmp(f->kind, "hospital") == 0 && strcmp(info->status, "transporting") == 0)
        return "at_hospital";
    if (strcmp(f->kind, "station") == 0 && strcmp(info->status, "returning") == 0 &&
        info->station && *info->station && strcmp(info->station, f->name) == 0)
        return "in_station";
    return NULL;
}

/* Dispatched or en route and within DISP_GEOFENCE_ARRIVAL_M of its open incident. */
static int arrived(disp_geofences *g, const disp_unit_info *info, const disp_avl_pos *p)
{
    if (!g->incidents || info->incident_id <= 0 ||
        (strcmp(info->status, "dispatched") != 0 && strcmp(info->status, "en_route") != 0))
        return 0;
    const disp_live *l = disp_live_get(g->incidents, info->incident_id);
    return l && disp_geofence_distance_m(l->lon, l->lat, p->lon, p->lat) <= DISP_GEOFENCE_ARRIVAL_M;
}

static unit_state *unit_state_of(disp_geofences *g, int64_t unit_id)
{
    unit_state *u = g_hash_table_lookup(g->units_in, &unit_id);
    if (!u) {
        u = g_new0(unit_state, 1);
        u->inside = g_array_new(FALSE, FALSE, sizeof(int64_t));
        g_hash_table_insert(g->units_in, g_memdup2(&unit_id, sizeof unit_id), u);
    }
    return u;
}

static gint cmp_id(gconstpointer a, gconstpointer b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The ids of the live fences holding the point, ascending. */
static GArray *fences_at(disp_geofences *g, double lon, double lat)
{
    GArray *now = g_array_new(FALSE, FALSE, sizeof(int64_t));
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, g->fences);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        const fence *f = v;
        if (disp_geofence_contains(&f->shape, lon, lat))
            g_array_append_val(now, f->id);
    }
    g_array_sort(now, cmp_id);
    return now;
}

static int has(const GArray *a, int64_t id)
{
    for (guint i = 0; i < a->len; i++)
        if (g_array_index(a, int64_t, i) == id)
            return 1;
    return 0;
}

void disp_geofences_position(const disp_avl_pos *p, void *user)
{
    disp_geofences *g = user;
    const disp_unit_info *info = g->units ? disp_units_get(g->units, p->unit_id) : NULL;
    unit_state *u = unit_state_of(g, p->unit_id);
    GArray *now = fences_at(g, p->lon, p->lat);
    json_t *events = json_array();
    const char *status = NULL;
    for (guint i = 0; i < u->inside->len; i++) {
        int64_t id = g_array_index(u->inside, int64_t, i);
        fence *f = g_hash_table_lookup(g->fences, &id);
        if (f && !has(now, id))
            json_array_append_new(events, transition("geofence.exit", f, p));
    }
    for (guint i = 0; i < now->len; i++) {
        int64_t id = g_array_index(now, int64_t, i);
        fence *f = g_hash_table_lookup(g->fences, &id);
        if (has(u->inside, id))
            continue;
        json_array_append_new(events, transition("geofence.enter", f, p));
        if (info && !status)
            status = status_on_enter(f, info);
    }
    g_array_free(u->inside, TRUE);
    u->inside = now;
    if (json_array_size(events) > 0)
        write_transitions(g, p->unit_id, events);
    else
        json_decref(events);
    if (!status && info && arrived(g, info, p))
        status = "on_scene";
    if (status)
        ask_status(g, u, p->unit_id, status);
}
