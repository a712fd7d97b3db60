/*
 * hazards.c — hazards recorded at an address, shown on incidents near
 * them. Loop thread, readers and the writer.
 */
#include "internal.h"

static json_t *hazard_row(sqlite3_stmt *s, double distance)
{
    char at[32];
    core_iso8601(sqlite3_column_int64(s, 8), at, sizeof at);
    char *id = disp__ext_id('H', sqlite3_column_int64(s, 0));
    json_t *j = json_pack(
        "{sss{sfsf}sfsssssssssssf}", "id", id, "location", "lon", sqlite3_column_double(s, 1),
        "lat", sqlite3_column_double(s, 2), "radius_m", sqlite3_column_double(s, 3), "kind",
        disp__col_text(s, 4), "text", disp__col_text(s, 5), "location_text", disp__col_text(s, 6),
        "author", disp__col_text(s, 7), "created_at", at, "distance_m", round(distance * 10) / 10);
    g_free(id);
    return j;
}

/* Hazards whose circle comes within `extra` metres of a point, nearest first. */
json_t *disp__hazards_near(sqlite3 *db, double lon, double lat, double extra)
{
    json_t *out = json_array();
    sqlite3_stmt *s;
    /* 500 m is the largest radius a hazard may have. */
    double dlat = (500 + extra) / 110540.0,
           dlon = (500 + extra) / (111320.0 * cos(lat * G_PI / 180));
    if (sqlite3_prepare_v2(db,
                           "SELECT id, lon, lat, radius_m, kind, text, location_text, author,"
                           " created_ms FROM hazards WHERE removed_ms = 0 AND lat BETWEEN ? AND ?"
                           " AND lon BETWEEN ? AND ?",
                           -1, &s, NULL) != SQLITE_OK)
        return out;
    sqlite3_bind_double(s, 1, lat - dlat);
    sqlite3_bind_double(s, 2, lat + dlat);
    sqlite3_bind_double(s, 3, lon - dlon);
    sqlite3_bind_double(s, 4, lon + dlon);
    while (sqlite3_step(s) == SQLITE_ROW) {
        double d =
            disp__distance_m(lon, lat, sqlite3_column_double(s, 1), sqlite3_column_double(s, 2));
        if (d <= sqlite3_column_double(s, 3) + extra)
            json_array_append_new(out, hazard_row(s, d));
    }
    sqlite3_finalize(s);
    return out;
}

/* ---- hazards at an address ---- */

typedef struct {
    disp__place where;
    double radius;
    char *kind, *text, *author, *agency, *source;
    int64_t id;
    double lon, lat, extra;
    json_t *result;
    int rc;
    disp_json_done done;
    void *arg;
} hazard_op;

static void hazard_op_free(hazard_op *op)
{
    g_free(op->where.location_text);
    g_free(op->kind);
    g_free(op->text);
    g_free(op->author);
    g_free(op->agency);
    g_free(op->source);
    json_decref(op->result);
    g_free(op);
}

static int hazard_write(core_txn *txn, void *arg)
{
    hazard_op *op = arg;
    int64_t now = core_now_ms();
    sqlite3_stmt *s = core_txn_prepare(
        txn, "INSERT INTO hazards (lon, lat, radius_m, kind, text, location_text, author, agency,"
             " created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    if (!s)
        return CORE_EDB;
    sqlite3_bind_double(s, 1, op->where.lon);
    sqlite3_bind_double(s, 2, op->where.lat);
    sqlite3_bind_double(s, 3, op->radius);
    sqlite3_bind_text(s, 4, op->kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, op->text, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, op->where.location_text ? op->where.location_text : "", -1,
                      SQLITE_STATIC);
    sqlite3_bind_text(s, 7, op->author, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 8, op->agency, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 9, now);
    int rc = core_txn_check(txn, sqlite3_step(s));
    if (rc)
        return rc;
    op->id = sqlite3_last_insert_rowid(core_txn_db(txn));
    char subject[32], *hid = disp__ext_id('H', op->id);
    g_snprintf(subject, sizeof subject, "hazard/%" G_GINT64_FORMAT, op->id);
    op->result =
        json_pack("{sss{sfsf}sfssss}", "id", hid, "location", "lon", op->where.lon, "lat",
                  op->where.lat, "radius_m", op->radius, "kind", op->kind, "text", op->text);
    g_free(hid);
    core_event *ev =
        core_event_new("hazard.created", op->author, subject, json_deep_copy(op->result));
    core_event_set_source(ev, op->source);
    return core_txn_emit(txn, ev);
}

static void hazard_done(int rc, GPtrArray *events, void *arg)
{
    hazard_op *op = arg;
    op->done(rc, rc ? NULL : json_incref(op->result), op->arg);
    hazard_op_free(op);
}

int disp_hazard_add(disp_incidents *d, const json_t *body, const char *author, const char *agency,
                    const char *source, disp_json_done done, void *arg, char **field,
                    char **message)
{
    json_t *kind = json_object_get(body, "kind"), *text = json_object_get(body, "text");
    json_t *radius = json_object_get(body, "radius_m");
    hazard_op *op = g_new0(hazard_op, 1);
    int rc = 0;
    if (!json_is_string(kind) || json_string_length(kind) == 0 || json_string_length(kind) > 40)
        rc = disp__refuse(
            field, message, "kind",
            g_strdup("what the hazard is, 1 to 40 bytes (\"gas-cylinders\", \"dog\", …)"));
    else if (text && (!json_is_string(text) || json_string_length(text) > 1000))
        rc = disp__refuse(field, message, "text", g_strdup("at most 1,000 bytes of text"));
    else if (radius && (!json_is_number(radius) || json_number_value(radius) < 1 ||
                        json_number_value(radius) > 500))
        rc = disp__refuse(field, message, "radius_m", g_strdup("1 to 500 metres"));
    else
        rc = disp__locate(d, &op->where, json_object_get(body, "location"), field, message);
    if (rc) {
        hazard_op_free(op);
        return rc;
    }
    op->radius = radius ? json_number_value(radius) : 30;
    op->kind = g_strdup(json_string_value(kind));
    op->text = g_strdup(text ? json_string_value(text) : "");
    op->author = g_strdup(author);
    op->agency = g_strdup(agency);
    op->source = g_strdup(source);
    op->done = done;
    op->arg = arg;
    rc = core_store_write(d->store, hazard_write, hazard_done, op);
    if (rc)
        hazard_op_free(op);
    return rc;
}

static void hazards_read(sqlite3 *db, void *arg)
{
    hazard_op *op = arg;
    op->result = disp__hazards_near(db, op->lon, op->lat, op->extra);
}

static void hazards_read_done(void *arg)
{
    hazard_op *op = arg;
    op->done(0, json_incref(op->result), op->arg);
    hazard_op_free(op);
}

int disp_hazards_near(disp_incidents *d, double lon, double lat, double within_m,
                      disp_json_done done, void *arg)
{
    hazard_op *op = g_new0(hazard_op, 1);
    op->lon = lon;
    op->lat = lat;
    op->extra = within_m;
    op->done = done;
    op->arg = arg;
    int rc = core_store_read(d->store, hazards_read, hazards_read_done, op);
    if (rc)
        hazard_op_free(op);
    return rc;
}

int disp__mark_removed(core_txn *txn, const char *table, int64_t id)
{
    char *sql =
        g_strdup_printf("UPDATE %s SET removed_ms = ? WHERE id = ? AND removed_ms = 0", table);
    sqlite3_stmt *s = core_txn_prepare(txn, sql);
    g_free(sql);
    if (!s)
        return CORE_EDB;
    sqlite3_bind_int64(s, 1, core_now_ms());
    sqlite3_bind_int64(s, 2, id);
    int rc = core_txn_check(txn, sqlite3_step(s));
    if (!rc && sqlite3_changes(core_txn_db(txn)) == 0)
        rc = CORE_ENOTFOUND;
    return rc;
}

static int hazard_remove_write(core_txn *txn, void *arg)
{
    hazard_op *op = arg;
    int rc = disp__mark_removed(txn, "hazards", op->id);
    if (rc)
        return rc;
    char subject[32];
    g_snprintf(subject, sizeof subject, "hazard/%" G_GINT64_FORMAT, op->id);
    core_event *ev = core_event_new("hazard.removed", op->author, subject, json_object());
    core_event_set_source(ev, op->source);
    op->result = json_object();
    return core_txn_emit(txn, ev);
}

int disp_hazard_remove(disp_incidents *d, int64_t id, const char *author, const char *source,
                       disp_json_done done, void *arg)
{
    hazard_op *op = g_new0(hazard_op, 1);
    op->id = id;
    op->author = g_strdup(author);
    op->source = g_strdup(source);
    op->done = done;
    op->arg = arg;
    int rc = core_store_write(d->store, hazard_remove_write, hazard_done, op);
    if (rc)
        hazard_op_free(op);
    return rc;
}
