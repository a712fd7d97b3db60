/*
 * units_read.c — the units mirror (loop thread) and the registry's reads.
 *
 * The mirror holds every unit that is not removed, indexed by id and by
 * device, for lookups that must not wait for the store (a GPS position
 * arriving from a tracker). It is loaded once at start and then kept by
 * the committed unit events, each of which carries the unit as it stands
 * after the change (core_event.state); events arrive in commit order, so
 * an older state never replaces a newer one. An entry is replaced whole on
 * every change, which is why a pointer handed out is valid only until the
 * next write completes.
 */
#include "units_internal.h"

#include "../core/log.h"

static void info_free(gpointer p)
{
    disp_unit_info *i = p;
    g_free(i->call_sign);
    g_free(i->kind);
    g_free(i->agency);
    g_free(i->station);
    g_free(i->device);
    g_free(i->primary);
    g_free(i->status);
    g_strfreev(i->capabilities);
    g_free(i);
}

static int64_t iso_ms(const char *s)
{
    GDateTime *t = s ? g_date_time_new_from_iso8601(s, NULL) : NULL;
    if (!t)
        return 0;
    int64_t ms = g_date_time_to_unix(t) * 1000 + g_date_time_get_microsecond(t) / 1000;
    g_date_time_unref(t);
    return ms;
}

static const char *text(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static void mirror_drop(disp_units *u, int64_t id)
{
    disp_unit_info *old = g_hash_table_lookup(u->by_id, &id);
    if (!old)
        return;
    if (old->device && g_hash_table_lookup(u->by_device, old->device) == old)
        g_hash_table_remove(u->by_device, old->device);
    g_hash_table_remove(u->by_id, &id);
}

/* Puts (or, when removed, drops) the unit of a JSON state. */
static void mirror_put(disp_units *u, const json_t *unit)
{
    int64_t id = disp__parse_ext(json_string_value(json_object_get(unit, "id")), 'U');
    if (id <= 0)
        return;
    mirror_drop(u, id);
    if (json_object_get(unit, "removed_at"))
        return;
    disp_unit_info *i = g_new0(disp_unit_info, 1);
    i->id = id;
    i->call_sign = g_strdup(text(unit, "call_sign"));
    i->kind = g_strdup(text(unit, "kind"));
    i->agency = g_strdup(text(unit, "agency"));
    i->station = g_strdup(text(unit, "station"));
    i->device = g_strdup(json_string_value(json_object_get(unit, "device")));
    i->primary = g_strdup(text(unit, "primary"));
    i->status = g_strdup(text(unit, "status"));
    json_t *caps = json_object_get(unit, "capabilities");
    i->capabilities = g_new0(char *, json_array_size(caps) + 1);
    size_t k, n = 0;
    json_t *c;
    json_array_foreach(caps, k, c) if (json_is_string(c)) i->capabilities[n++] =
        g_strdup(json_string_value(c));
    i->incident_id = disp__parse_ext(json_string_value(json_object_get(unit, "incident")), 'I');
    i->status_ms = iso_ms(json_string_value(json_object_get(unit, "status_at")));
    g_hash_table_insert(u->by_id, &i->id, i);
    if (i->device)
        g_hash_table_insert(u->by_device, i->device, i);
}

static void on_event(core_event *ev, void *user)
{
    if (ev->state && g_str_has_prefix(ev->subject, "unit/"))
        mirror_put(user, ev->state);
}

static void load(sqlite3 *db, void *arg)
{
    disp_units *u = arg;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, "SELECT " UNIT_COLUMNS " FROM units WHERE removed_ms = 0", -1, &s,
                           NULL) != SQLITE_OK) {
        log_error("units.load", "error=\"%s\"", sqlite3_errmsg(db));
        return;
    }
    while (sqlite3_step(s) == SQLITE_ROW) {
        json_t *unit = disp__unit_row(s);
        mirror_put(u, unit);
        json_decref(unit);
    }
    sqlite3_finalize(s);
}

void disp__mirror_start(disp_units *u)
{
    u->by_id = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, info_free);
    u->by_device = g_hash_table_new(g_str_hash, g_str_equal);
    if (core_store_load(u->store, load, u) != 0)
        log_error("units.load", "error=\"cannot read the store\"");
    if (u->bus)
        u->sub = core_bus_subscribe(u->bus, "unit.", on_event, u);
}

void disp__mirror_stop(disp_units *u)
{
    if (u->sub)
        core_bus_unsubscribe(u->bus, u->sub);
    g_hash_table_destroy(u->by_device);
    g_hash_table_destroy(u->by_id);
}

const disp_unit_info *disp_units_by_device(disp_units *u, const char *device)
{
    return device ? g_hash_table_lookup(u->by_device, device) : NULL;
}

const disp_unit_info *disp_units_get(disp_units *u, int64_t id)
{
    return g_hash_table_lookup(u->by_id, &id);
}

void disp_units_foreach(disp_units *u, disp_unit_fn fn, void *user)
{
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, u->by_id);
    while (g_hash_table_iter_next(&it, NULL, &v))
        fn(v, user);
}

unsigned disp_units_count(const disp_units *u)
{
    return g_hash_table_size(u->by_id);
}

/* ---- the unit as JSON ---- */

json_t *disp__unit_row(sqlite3_stmt *s)
{
    char status_at[32], created[32], updated[32];
    core_iso8601(sqlite3_column_int64(s, 10), status_at, sizeof status_at);
    core_iso8601(sqlite3_column_int64(s, 13), created, sizeof created);
    core_iso8601(sqlite3_column_int64(s, 14), updated, sizeof updated);
    char *id = disp__ext_id('U', sqlite3_column_int64(s, 0));
    json_t *caps = json_loads(disp__col_text(s, 5), 0, NULL);
    json_t *j = json_pack("{sssssssssssossssssssss}", "id", id, "call_sign", disp__col_text(s, 1),
                          "kind", disp__col_text(s, 2), "agency", disp__col_text(s, 3), "station",
                          disp__col_text(s, 4), "capabilities", caps ? caps : json_array(),
                          "status", disp__col_text(s, 8), "primary", disp__col_text(s, 7),
                          "status_at", status_at, "created_at", created, "updated_at", updated);
    g_free(id);
    json_object_set_new(
        j, "device",
        sqlite3_column_type(s, 6) == SQLITE_NULL ? json_null() : json_string(disp__col_text(s, 6)));
    int64_t inc = sqlite3_column_int64(s, 9);
    char *iid = inc ? disp__ext_id('I', inc) : NULL;
    json_object_set_new(j, "incident", iid ? json_string(iid) : json_null());
    g_free(iid);
    json_object_set_new(j, "home",
                        sqlite3_column_type(s, 11) == SQLITE_NULL
                            ? json_null()
                            : json_pack("{sfsf}", "lon", sqlite3_column_double(s, 11), "lat",
                                        sqlite3_column_double(s, 12)));
    if (sqlite3_column_int64(s, 15)) {
        char removed[32];
        core_iso8601(sqlite3_column_int64(s, 15), removed, sizeof removed);
        json_object_set_new(j, "removed_at", json_string(removed));
    }
    return j;
}

/* ---- reads ---- */

typedef struct {
    char **agencies; /* visible; NULL: all */
    char *agency, *status, *kind;
    int all, rc;
    int64_t id;
    json_t *result;
    disp_json_done done;
    void *arg;
} read_op;

static void read_op_free(read_op *op)
{
    g_strfreev(op->agencies);
    g_free(op->agency);
    g_free(op->status);
    g_free(op->kind);
    json_decref(op->result);
    g_free(op);
}

static void list_read(sqlite3 *db, void *arg)
{
    read_op *op = arg;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db,
                           "SELECT " UNIT_COLUMNS " FROM units WHERE (?1 OR removed_ms = 0)"
                           " AND (?2 IS NULL OR agency = ?2)"
                           " AND (?3 IS NULL OR status = ?3 OR primary_status = ?3)"
                           " AND (?4 IS NULL OR kind = ?4) ORDER BY call_sign",
                           -1, &s, NULL) != SQLITE_OK) {
        op->rc = CORE_EDB;
        return;
    }
    sqlite3_bind_int(s, 1, op->all);
    sqlite3_bind_text(s, 2, op->agency, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, op->status, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, op->kind, -1, SQLITE_STATIC);
    op->result = json_array();
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *agency = disp__col_text(s, 3);
        if (!op->agencies || g_strv_contains((const char *const *)op->agencies, agency))
            json_array_append_new(op->result, disp__unit_row(s));
    }
    sqlite3_finalize(s);
}

static const char *const history_keys[] = {"from", "to", "primary", "incident", NULL};

/* The unit's latest status changes, newest first. */
static json_t *history(sqlite3 *db, int64_t id)
{
    json_t *h = json_array();
    char subject[32];
    g_snprintf(subject, sizeof subject, "unit/%" G_GINT64_FORMAT, id);
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db,
                           "SELECT seq, at_ms, actor, data FROM events WHERE subject = ?"
                           " AND type = 'unit.status' ORDER BY seq DESC LIMIT 50",
                           -1, &s, NULL) != SQLITE_OK)
        return h;
    sqlite3_bind_text(s, 1, subject, -1, SQLITE_STATIC);
    while (sqlite3_step(s) == SQLITE_ROW) {
        char at[32];
        core_iso8601(sqlite3_column_int64(s, 1), at, sizeof at);
        json_t *data = json_loads(disp__col_text(s, 3), 0, NULL);
        json_t *e = json_pack("{sIssss}", "seq", (json_int_t)sqlite3_column_int64(s, 0), "at", at,
                              "actor", disp__col_text(s, 2));
        for (const char *const *k = history_keys; *k; k++) {
            json_t *v = json_object_get(data, *k);
            json_object_set(e, *k, v ? v : json_null());
        }
        json_array_append_new(h, e);
        json_decref(data);
    }
    sqlite3_finalize(s);
    return h;
}

static void get_read(sqlite3 *db, void *arg)
{
    read_op *op = arg;
    sqlite3_stmt *s;
    op->rc = CORE_ENOTFOUND;
    if (sqlite3_prepare_v2(db, "SELECT " UNIT_COLUMNS " FROM units WHERE id = ?", -1, &s, NULL) !=
        SQLITE_OK) {
        op->rc = CORE_EDB;
        return;
    }
    sqlite3_bind_int64(s, 1, op->id);
    if (sqlite3_step(s) == SQLITE_ROW) {
        op->result = disp__unit_row(s);
        op->rc = 0;
    }
    sqlite3_finalize(s);
    if (!op->rc)
        json_object_set_new(op->result, "history", history(db, op->id));
}

static void read_done(void *arg)
{
    read_op *op = arg;
    op->done(op->rc, op->rc ? NULL : g_steal_pointer(&op->result), op->arg);
    read_op_free(op);
}

static int start_read(disp_units *u, read_op *op, core_read_fn fn)
{
    int rc = core_store_read(u->store, fn, read_done, op);
    if (rc)
        read_op_free(op);
    return rc;
}

int disp_units_list(disp_units *u, char **agencies, const char *agency, const char *status,
                    const char *kind, int all, disp_json_done done, void *arg)
{
    read_op *op = g_new0(read_op, 1);
    op->agencies = agencies ? g_strdupv(agencies) : NULL;
    op->agency = g_strdup(agency);
    op->status = g_strdup(status);
    op->kind = g_strdup(kind);
    op->all = all;
    op->done = done;
    op->arg = arg;
    return start_read(u, op, list_read);
}

int disp_unit_get(disp_units *u, int64_t id, disp_json_done done, void *arg)
{
    read_op *op = g_new0(read_op, 1);
    op->id = id;
    op->done = done;
    op->arg = arg;
    return start_read(u, op, get_read);
}
