/*
 * units.c — the unit registry: the table, the kinds and statuses, checks
 * of a unit's fields, and the writes (create, change, status, remove).
 *
 * A status change runs in the writer against the stored unit: an incident
 * left out is the one the unit already works on, the incident must exist
 * and be open, and the change writes unit.status on the unit and
 * incident.unit on every incident it concerns (the one left and the one
 * joined), so each incident's timeline shows its units coming and going.
 * Uniqueness of call signs and devices is checked there too, to name the
 * field and the unit holding it; the UNIQUE constraints are the backstop.
 * Ids go out as "U-12". The queueing and the import's row walk are shared
 * with the other registries (core/write_op.h, core/import.h).
 */
#include "units_internal.h"

#include "../core/auth.h"
#include "../core/core.h"
#include "../core/import.h"
#include "../core/write_op.h"

#include <glib.h>
#include <string.h>

static const core_migration migrations[] = {
    {"units", 1,
     "CREATE TABLE units ("
     "  id INTEGER PRIMARY KEY,"
     "  call_sign TEXT UNIQUE NOT NULL,"
     "  kind TEXT NOT NULL,"
     "  agency TEXT NOT NULL,"
     "  station TEXT NOT NULL DEFAULT '',"
     "  capabilities TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(capabilities)),"
     "  device TEXT UNIQUE,"
     "  primary_status TEXT NOT NULL,"
     "  status TEXT NOT NULL,"
     "  incident_id INTEGER NOT NULL DEFAULT 0,"
     "  status_ms INTEGER NOT NULL,"
     "  home_lon REAL,"
     "  home_lat REAL,"
     "  created_ms INTEGER NOT NULL,"
     "  updated_ms INTEGER NOT NULL,"
     "  removed_ms INTEGER NOT NULL DEFAULT 0);"
     "CREATE INDEX units_incident ON units(incident_id) WHERE incident_id != 0"},
};

static const char *const kinds[] = {
    "engine",     "ladder",      "rescue",    "tanker",     "hazmat",   "ambulance",   "patrol_car",
    "motorcycle", "traffic_car", "tow_truck", "water_crew", "gas_crew", "command_car", NULL};

/* NENA EIDO secondary statuses, the primary status each implies, and
 * whether it concerns an incident (docs/API.md has the sources). */
#define UNIT_STATUSES(X)                                                                           \
    X(in_station, available, 0)                                                                    \
    X(on_patrol, available, 0)                                                                     \
    X(available_on_radio, available, 0)                                                            \
    X(returning, conditionally_available, 0)                                                       \
    X(at_hospital, conditionally_available, 1)                                                     \
    X(dispatched, not_available, 1)                                                                \
    X(en_route, not_available, 1)                                                                  \
    X(on_scene, not_available, 1)                                                                  \
    X(transporting, not_available, 1)                                                              \
    X(out_of_service, not_available, 0)

static const struct {
    const char *status, *primary;
    int incident;
} statuses[] = {
#define UNIT_STATUS_ROW(s, p, i) {#s, #p, i},
    UNIT_STATUSES(UNIT_STATUS_ROW)
#undef UNIT_STATUS_ROW
};

static const char *const status_names[] = {
#define UNIT_STATUS_NAME(s, p, i) #s,
    UNIT_STATUSES(UNIT_STATUS_NAME)
#undef UNIT_STATUS_NAME
        NULL};

void disp_units_register(core_store *st)
{
    core_store_add_migrations(st, migrations, G_N_ELEMENTS(migrations));
}

const char *const *disp_unit_kinds(void)
{
    return kinds;
}

const char *const *disp_unit_statuses(void)
{
    return status_names;
}

static int status_index(const char *s)
{
    for (size_t i = 0; s && i < G_N_ELEMENTS(statuses); i++)
        if (strcmp(statuses[i].status, s) == 0)
            return (int)i;
    return -1;
}

const char *disp_unit_primary(const char *status)
{
    int i = status_index(status);
    return i < 0 ? NULL : statuses[i].primary;
}

disp_units *disp_units_new(core_store *st, core_bus *bus, const char *agencies)
{
    disp_units *u = g_new0(disp_units, 1);
    u->store = st;
    u->bus = bus;
    u->agencies = g_strdup(agencies ? agencies : CORE_DEFAULT_AGENCIES);
    disp__mirror_start(u);
    return u;
}

void disp_units_free(disp_units *u)
{
    if (!u)
        return;
    disp__mirror_stop(u);
    g_free(u->agencies);
    g_free(u);
}

int64_t disp__parse_ext(const char *s, char prefix)
{
    if (!s)
        return 0;
    if (s[0] == prefix && s[1] == '-')
        s += 2;
    if (!*s || strlen(s) > 18)
        return 0;
    for (const char *p = s; *p; p++)
        if (!g_ascii_isdigit(*p))
            return 0;
    return g_ascii_strtoll(s, NULL, 10);
}

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* ---- writer helpers ---- */

static int read_unit(core_txn *txn, int64_t id, json_t **out)
{
    sqlite3_stmt *s = core_txn_prepare(txn, "SELECT " UNIT_COLUMNS " FROM units WHERE id = ?");
    if (!s)
        return CORE_EDB;
    sqlite3_bind_int64(s, 1, id);
    int rc = sqlite3_step(s) == SQLITE_ROW ? 0 : CORE_ENOTFOUND;
    if (!rc)
        *out = disp__unit_row(s);
    sqlite3_reset(s);
    return rc;
}

/* The unit holding a call sign or device other than id, or 0. */
static int64_t holder(core_txn *txn, const char *column, const char *value, int64_t id)
{
    char *sql = g_strdup_printf("SELECT id FROM units WHERE %s = ? AND id != ?", column);
    sqlite3_stmt *s = core_txn_prepare(txn, sql);
    g_free(sql);
    if (!s || !value)
        return 0;
    sqlite3_bind_text(s, 1, value, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, id);
    int64_t other = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return other;
}

static int unique(core_txn *txn, const json_t *f, int64_t id, json_t **error)
{
    const char *cs = str(f, "call_sign"), *dev = str(f, "device");
    int64_t other = cs ? holder(txn, "call_sign", cs, id) : 0;
    if (other) {
        *error = core_write_refusal(
            "call_sign", g_strdup_printf("call sign %s belongs to U-%" G_GINT64_FORMAT, cs, other));
        return CORE_EEXISTS;
    }
    other = dev ? holder(txn, "device", dev, id) : 0;
    if (other) {
        *error = core_write_refusal(
            "device", g_strdup_printf("device %s is fitted to U-%" G_GINT64_FORMAT, dev, other));
        return CORE_EEXISTS;
    }
    return 0;
}

/* Emits a unit event (data stolen; NULL: the whole unit) with the unit's
 * agency (and another, when it moved between agencies) and its state after
 * the change. */
static int emit_unit(core_txn *txn, int64_t id, const char *type, json_t *data, const char *actor,
                     const char *source, const char *other_agency)
{
    json_t *unit = NULL;
    int rc = read_unit(txn, id, &unit);
    if (rc) {
        json_decref(data);
        return rc;
    }
    if (!data) {
        data = json_deep_copy(unit);
        json_object_del(data, "id");
    }
    const char *agency = str(unit, "agency");
    json_t *agencies = json_pack("[s]", agency);
    if (other_agency && strcmp(other_agency, agency) != 0)
        json_array_append_new(agencies, json_string(other_agency));
    json_object_set(data, "unit", json_object_get(unit, "id"));
    json_object_set(data, "call_sign", json_object_get(unit, "call_sign"));
    json_object_set_new(data, "agencies", agencies);
    char subject[32];
    g_snprintf(subject, sizeof subject, "unit/%" G_GINT64_FORMAT, id);
    core_event *ev = core_event_new(type, actor, subject, data);
    core_event_set_source(ev, source);
    core_event_set_state(ev, unit);
    return core_txn_emit(txn, ev);
}

static void bind_fields(sqlite3_stmt *s, const json_t *f)
{
    sqlite3_bind_text(s, 1, str(f, "call_sign"), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, str(f, "kind"), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 3, str(f, "agency"), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 4, str(f, "station"), -1, SQLITE_TRANSIENT);
    char *caps = json_dumps(json_object_get(f, "capabilities"), JSON_COMPACT);
    sqlite3_bind_text(s, 5, caps ? caps : "[]", -1, SQLITE_TRANSIENT);
    free(caps);
    if (str(f, "device"))
        sqlite3_bind_text(s, 6, str(f, "device"), -1, SQLITE_TRANSIENT);
    json_t *home = json_object_get(f, "home");
    if (json_is_object(home)) {
        sqlite3_bind_double(s, 7, json_number_value(json_object_get(home, "lon")));
        sqlite3_bind_double(s, 8, json_number_value(json_object_get(home, "lat")));
    }
}

static int insert_unit(core_txn *txn, json_t *f, const char *actor, const char *source, int64_t *id,
                       json_t **error)
{
    int rc = unique(txn, f, 0, error);
    if (rc)
        return rc;
    sqlite3_stmt *s = core_txn_prepare(
        txn, "INSERT INTO units (call_sign, kind, agency, station, capabilities, device,"
             " home_lon, home_lat, primary_status, status, status_ms, created_ms, updated_ms)"
             " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'available', 'in_station', ?9, ?9, ?9)");
    if (!s)
        return CORE_EDB;
    bind_fields(s, f);
    sqlite3_bind_int64(s, 9, core_now_ms());
    if ((rc = core_txn_check(txn, sqlite3_step(s))))
        return rc;
    *id = sqlite3_last_insert_rowid(core_txn_db(txn));
    return emit_unit(txn, *id, "unit.created", NULL, actor, source, NULL);
}

static const char *const fields[] = {"call_sign", "kind",         "agency", "station",
                                     "device",    "capabilities", "home",   NULL};

/* Applies the fields of f that differ from the stored unit; *changed says
 * whether any did (restoring a removed unit counts). */
static int apply_fields(core_txn *txn, int64_t id, json_t *before, const json_t *f, int restore,
                        const char *actor, const char *source, int *changed, json_t **error)
{
    json_t *changes = json_object(), *merged = json_deep_copy(before);
    for (const char *const *k = fields; *k; k++) {
        json_t *to = json_object_get(f, *k), *from = json_object_get(before, *k);
        if (to && !json_equal(to, from)) {
            json_object_set_new(changes, *k, json_pack("{sOsO}", "from", from, "to", to));
            json_object_set(merged, *k, to);
        }
    }
    int restoring = restore && json_object_get(before, "removed_at");
    *changed = json_object_size(changes) > 0 || restoring;
    int rc = *changed ? unique(txn, merged, id, error) : 0;
    sqlite3_stmt *s = NULL;
    if (!rc && *changed &&
        !(s = core_txn_prepare(txn,
                               "UPDATE units SET call_sign = ?1, kind = ?2, agency = ?3,"
                               " station = ?4, capabilities = ?5, device = ?6, home_lon = ?7,"
                               " home_lat = ?8, updated_ms = ?9, removed_ms = 0 WHERE id = ?10")))
        rc = CORE_EDB;
    if (s) {
        bind_fields(s, merged);
        sqlite3_bind_int64(s, 9, core_now_ms());
        sqlite3_bind_int64(s, 10, id);
        rc = core_txn_check(txn, sqlite3_step(s));
    }
    json_t *data = json_pack("{so}", "changes", changes);
    if (restoring)
        json_object_set_new(data, "restored", json_true());
    if (!rc && *changed)
        rc = emit_unit(txn, id, "unit.updated", json_incref(data), actor, source,
                       str(before, "agency"));
    json_decref(data);
    json_decref(merged);
    return rc;
}

/* Records a unit coming to or leaving an incident in its timeline. */
static int incident_event(core_txn *txn, int64_t incident, json_t *unit, const char *from,
                          const char *actor, const char *source)
{
    disp__update_op op = {.id = incident, .actor = (char *)actor, .source = (char *)source};
    return disp__emit_change(txn, &op, "incident.unit",
                             json_pack("{sOsOsssOsO}", "unit", json_object_get(unit, "id"),
                                       "call_sign", json_object_get(unit, "call_sign"), "from",
                                       from, "to", json_object_get(unit, "status"), "incident",
                                       json_object_get(unit, "incident")));
}

/* The incident a status change goes to: the one given, else the unit's
 * own when the status needs one; checked to exist and be open. */
static int status_incident(core_txn *txn, const char *status, int64_t given, int64_t current,
                           int64_t *out, json_t **error)
{
    int needs = statuses[status_index(status)].incident;
    *out = needs ? (given ? given : current) : 0;
    if (needs && !*out) {
        *error = core_write_refusal(
            "incident", g_strdup_printf("%s concerns an incident: give \"incident\"", status));
        return CORE_EINVAL;
    }
    if (!needs && given) {
        *error = core_write_refusal("incident", g_strdup_printf("%s concerns no incident", status));
        return CORE_EINVAL;
    }
    if (!*out)
        return 0;
    json_t *inc = NULL;
    int rc = disp__read_incident(txn, *out, &inc);
    if (rc == CORE_ENOTFOUND) {
        *error = core_write_refusal("incident",
                                    g_strdup_printf("no incident I-%" G_GINT64_FORMAT, *out));
        return CORE_EINVAL;
    }
    const char *is = str(inc, "status");
    if (!rc && disp__status_index(is) >= 5) {
        *error = core_write_refusal(
            NULL, g_strdup_printf("incident I-%" G_GINT64_FORMAT " is %s", *out, is));
        rc = CORE_ECONFLICT;
    }
    json_decref(inc);
    return rc;
}

static int set_status(core_txn *txn, int64_t id, const char *status, int64_t given,
                      const char *actor, const char *source, json_t **error)
{
    json_t *before = NULL;
    int rc = read_unit(txn, id, &before);
    if (rc)
        return rc;
    const char *from = str(before, "status");
    int64_t current = disp__parse_ext(str(before, "incident"), 'I'), to_inc = 0;
    rc = status_incident(txn, status, given, current, &to_inc, error);
    if (rc || (strcmp(from, status) == 0 && to_inc == current)) {
        json_decref(before);
        return rc;
    }
    sqlite3_stmt *s = core_txn_prepare(
        txn, "UPDATE units SET status = ?1, primary_status = ?2, incident_id = ?3, status_ms = ?4,"
             " updated_ms = ?4 WHERE id = ?5");
    if (!s) {
        json_decref(before);
        return CORE_EDB;
    }
    sqlite3_bind_text(s, 1, status, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, disp_unit_primary(status), -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, to_inc);
    sqlite3_bind_int64(s, 4, core_now_ms());
    sqlite3_bind_int64(s, 5, id);
    rc = core_txn_check(txn, sqlite3_step(s));
    json_t *after = NULL;
    if (!rc)
        rc = read_unit(txn, id, &after);
    if (!rc)
        rc = emit_unit(txn, id, "unit.status",
                       json_pack("{sssssssO}", "from", from, "to", status, "primary",
                                 disp_unit_primary(status), "incident",
                                 json_object_get(after, "incident")),
                       actor, source, NULL);
    if (!rc && current)
        rc = incident_event(txn, current, after, from, actor, source);
    if (!rc && to_inc && to_inc != current)
        rc = incident_event(txn, to_inc, after, from, actor, source);
    json_decref(after);
    json_decref(before);
    return rc;
}

/* ---- the writes ---- */

typedef struct {
    core_write_op w;  /* first: the op is freed as one */
    char **only_from; /* a status change only from these statuses; NULL: from any */
} unit_op;

static void op_clear(core_write_op *w)
{
    g_strfreev(((unit_op *)w)->only_from);
}

static unit_op *op_new(disp_units *u, const char *actor, const char *source, disp_json_done done,
                       void *arg)
{
    unit_op *op = (unit_op *)core_write_op_new(sizeof(unit_op), u->store, actor, source, done, arg);
    op->w.clear = op_clear;
    return op;
}

/* The stored unit, if it is there, not removed, and (when the caller was
 * authorized for an agency) still of that agency. */
static int current_unit(core_txn *txn, unit_op *op, json_t **unit)
{
    int rc = read_unit(txn, op->w.id, unit);
    if (!rc && json_object_get(*unit, "removed_at"))
        rc = CORE_ENOTFOUND;
    if (!rc && op->w.agency && strcmp(str(*unit, "agency"), op->w.agency) != 0) {
        op->w.error =
            core_write_refusal(NULL, g_strdup("the unit moved to another agency meanwhile"));
        rc = CORE_ECONFLICT;
    }
    if (rc) {
        json_decref(*unit);
        *unit = NULL;
    }
    return rc;
}

static int status_part(core_txn *txn, unit_op *op)
{
    const char *status = str(op->w.fields, "status");
    if (!status)
        return 0;
    return set_status(txn, op->w.id, status,
                      json_integer_value(json_object_get(op->w.fields, "incident")), op->w.actor,
                      op->w.source, &op->w.error);
}

static int add_write(core_txn *txn, void *arg)
{
    unit_op *op = arg;
    int rc = insert_unit(txn, op->w.fields, op->w.actor, op->w.source, &op->w.id, &op->w.error);
    if (!rc) /* a unit starts in_station; another status is a change like any */
        rc = status_part(txn, op);
    return rc ? rc : read_unit(txn, op->w.id, &op->w.result);
}

static int update_write(core_txn *txn, void *arg)
{
    unit_op *op = arg;
    json_t *before = NULL;
    int rc = current_unit(txn, op, &before), changed = 0;
    if (!rc && op->only_from &&
        !g_strv_contains((const char *const *)op->only_from, str(before, "status"))) {
        op->w.error =
            core_write_refusal(NULL, g_strdup_printf("the unit is %s now", str(before, "status")));
        rc = CORE_ECONFLICT;
    }
    if (!rc)
        rc = apply_fields(txn, op->w.id, before, op->w.fields, 0, op->w.actor, op->w.source,
                          &changed, &op->w.error);
    json_decref(before);
    if (!rc)
        rc = status_part(txn, op);
    return rc ? rc : read_unit(txn, op->w.id, &op->w.result);
}

static int remove_write(core_txn *txn, void *arg)
{
    unit_op *op = arg;
    json_t *unit = NULL;
    int rc = current_unit(txn, op, &unit);
    if (rc)
        return rc;
    if (!json_is_null(json_object_get(unit, "incident"))) {
        op->w.error =
            core_write_refusal(NULL, g_strdup_printf("%s is %s for %s: change its status first",
                                                     str(unit, "call_sign"), str(unit, "status"),
                                                     str(unit, "incident")));
        json_decref(unit);
        return CORE_ECONFLICT;
    }
    /* The tracker is freed for another vehicle; the call sign stays on record. */
    sqlite3_stmt *s = core_txn_prepare(
        txn, "UPDATE units SET removed_ms = ?1, updated_ms = ?1, device = NULL WHERE id = ?2");
    if (!s) {
        json_decref(unit);
        return CORE_EDB;
    }
    sqlite3_bind_int64(s, 1, core_now_ms());
    sqlite3_bind_int64(s, 2, op->w.id);
    rc = core_txn_check(txn, sqlite3_step(s));
    if (!rc)
        rc = emit_unit(txn, op->w.id, "unit.removed",
                       json_pack("{sO}", "device", json_object_get(unit, "device")), op->w.actor,
                       op->w.source, NULL);
    json_decref(unit);
    if (!rc)
        op->w.result = json_object();
    return rc;
}

int disp__unit_upsert(core_txn *txn, json_t *f, char **may, const char *actor, const char *source,
                      char *what, json_t **error)
{
    if (core_write_may_touch(may, str(f, "agency"), error))
        return CORE_EINVAL;
    int64_t id = holder(txn, "call_sign", str(f, "call_sign"), 0);
    if (!id) {
        *what = 'c';
        return insert_unit(txn, f, actor, source, &id, error);
    }
    json_t *before = NULL;
    int rc = read_unit(txn, id, &before), changed = 0;
    if (!rc)
        rc = core_write_may_touch(may, str(before, "agency"), error);
    if (!rc)
        rc = apply_fields(txn, id, before, f, 1, actor, source, &changed, error);
    json_decref(before);
    *what = changed ? 'u' : '=';
    return rc;
}

static int import_row(core_txn *txn, void *arg, const json_t *f, char *what, json_t **error)
{
    unit_op *op = arg;
    return disp__unit_upsert(txn, (json_t *)f, op->w.may, op->w.actor, op->w.source, what, error);
}

static int import_write(core_txn *txn, void *arg)
{
    unit_op *op = arg;
    return core_import_write(txn, op->w.rows, "unit", import_row, op, &op->w.result, &op->w.error);
}

/* ---- the public calls ---- */

int disp_unit_add(disp_units *u, const json_t *body, const char *actor, const char *source,
                  disp_json_done done, void *arg, char **field, char **message)
{
    json_t *f = NULL;
    int rc = disp__unit_check(u, body, 1, 1, &f, field, message);
    if (rc)
        return rc;
    unit_op *op = op_new(u, actor, source, done, arg);
    return core_write_op_queue(&op->w, add_write, 0, NULL, f, NULL, NULL);
}

int disp_unit_update(disp_units *u, int64_t id, const json_t *body, const char *agency,
                     const char *actor, const char *source, disp_json_done done, void *arg,
                     char **field, char **message)
{
    json_t *f = NULL;
    int rc = disp__unit_check(u, body, 0, 1, &f, field, message);
    if (rc)
        return rc;
    unit_op *op = op_new(u, actor, source, done, arg);
    return core_write_op_queue(&op->w, update_write, id, agency, f, NULL, NULL);
}

int disp_unit_set_status_if(disp_units *u, int64_t id, const char *const *from, const char *status,
                            int64_t incident_id, const char *actor, const char *source,
                            disp_json_done done, void *arg)
{
    if (status_index(status) < 0 || incident_id < 0)
        return CORE_EINVAL;
    unit_op *op = op_new(u, actor, source, done, arg);
    op->only_from = from ? g_strdupv((char **)from) : NULL;
    return core_write_op_queue(
        &op->w, update_write, id, NULL,
        json_pack("{sssI}", "status", status, "incident", (json_int_t)incident_id), NULL, NULL);
}

int disp_unit_set_status(disp_units *u, int64_t id, const char *status, int64_t incident_id,
                         const char *actor, const char *source, disp_json_done done, void *arg)
{
    return disp_unit_set_status_if(u, id, NULL, status, incident_id, actor, source, done, arg);
}

int disp_unit_remove(disp_units *u, int64_t id, const char *agency, const char *actor,
                     const char *source, disp_json_done done, void *arg)
{
    unit_op *op = op_new(u, actor, source, done, arg);
    return core_write_op_queue(&op->w, remove_write, id, agency, NULL, NULL, NULL);
}

int disp_units_import(disp_units *u, json_t *rows, char **may, const char *actor,
                      const char *source, disp_json_done done, void *arg)
{
    unit_op *op = op_new(u, actor, source, done, arg);
    return core_write_op_queue(&op->w, import_write, 0, NULL, NULL, rows, may);
}
