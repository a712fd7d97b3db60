/*
 * incident_read.c — the incidents as the API reads them (incident.h):
 * the list an agency may see, and one incident whole, with its calls, its
 * timeline, the media attached to it (snapshots and clips), its links to
 * merged and split incidents, and the hazards near it.
 *
 * Both run on the store's reader (core_store_read), off the loop; the
 * result goes back to the loop in read_done. An incident is visible to the
 * agencies it names (its own and the joint ones).
 */
#include "internal.h"

#include "../core/core.h"

#include <glib.h>
#include <string.h>

typedef struct {
    disp_incidents *d;
    char **agencies;
    int all, limit, rc;
    int64_t id;
    json_t *result;
    disp_json_done done;
    void *arg;
} read_op;

static int visible(char **agencies, json_t *inc)
{
    if (!agencies)
        return 1;
    char **mine = disp_incident_agencies(inc);
    int ok = 0;
    for (char **a = mine; *a && !ok; a++)
        ok = g_strv_contains((const char *const *)agencies, *a);
    g_strfreev(mine);
    return ok;
}

static void list_read(sqlite3 *db, void *arg)
{
    read_op *op = arg;
    op->result = json_array();
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db,
                           "SELECT " INCIDENT_COLUMNS " FROM incidents WHERE (? OR closed_ms = 0)"
                           " ORDER BY updated_ms DESC LIMIT 20000",
                           -1, &s, NULL) != SQLITE_OK) {
        op->rc = CORE_EDB;
        return;
    }
    sqlite3_bind_int(s, 1, op->all);
    while (sqlite3_step(s) == SQLITE_ROW && (int)json_array_size(op->result) < op->limit) {
        json_t *inc = disp__incident_row(s);
        if (visible(op->agencies, inc))
            json_array_append_new(op->result, inc);
        else
            json_decref(inc);
    }
    sqlite3_finalize(s);
}

static void get_read(sqlite3 *db, void *arg)
{
    read_op *op = arg;
    sqlite3_stmt *s;
    op->rc = CORE_ENOTFOUND;
    if (sqlite3_prepare_v2(db, "SELECT " INCIDENT_COLUMNS " FROM incidents WHERE id = ?", -1, &s,
                           NULL) != SQLITE_OK) {
        op->rc = CORE_EDB;
        return;
    }
    sqlite3_bind_int64(s, 1, op->id);
    if (sqlite3_step(s) == SQLITE_ROW) {
        op->result = disp__incident_row(s);
        op->rc = 0;
    }
    sqlite3_finalize(s);
    if (op->rc)
        return;
    json_t *calls = json_array();
    sqlite3_prepare_v2(db,
                       "SELECT id, line, caller, received_ms, lon, lat, location_text, confidence,"
                       " category, text, call_taker FROM calls WHERE incident_id = ? ORDER BY id",
                       -1, &s, NULL);
    sqlite3_bind_int64(s, 1, op->id);
    while (sqlite3_step(s) == SQLITE_ROW) {
        char at[32];
        core_iso8601(sqlite3_column_int64(s, 3), at, sizeof at);
        char *cid = disp__ext_id('C', sqlite3_column_int64(s, 0));
        json_array_append_new(
            calls, json_pack("{sssssssss{sfsfsssf}ssssss}", "id", cid, "line", disp__col_text(s, 1),
                             "caller", disp__col_text(s, 2), "received_at", at, "location", "lon",
                             sqlite3_column_double(s, 4), "lat", sqlite3_column_double(s, 5),
                             "text", disp__col_text(s, 6), "confidence",
                             sqlite3_column_double(s, 7), "category", disp__col_text(s, 8), "text",
                             disp__col_text(s, 9), "call_taker", disp__col_text(s, 10)));
        g_free(cid);
    }
    sqlite3_finalize(s);
    json_object_set_new(op->result, "calls", calls);
    json_t *timeline = json_array(), *media = json_array();
    char subject[32];
    g_snprintf(subject, sizeof subject, "incident/%" G_GINT64_FORMAT, op->id);
    sqlite3_prepare_v2(db,
                       "SELECT seq, at_ms, type, actor, data FROM events WHERE subject = ?"
                       " ORDER BY seq",
                       -1, &s, NULL);
    sqlite3_bind_text(s, 1, subject, -1, SQLITE_STATIC);
    while (sqlite3_step(s) == SQLITE_ROW) {
        char at[32];
        core_iso8601(sqlite3_column_int64(s, 1), at, sizeof at);
        json_t *data = json_loads(disp__col_text(s, 4), 0, NULL);
        json_object_del(data, "agencies");
        if (data && strcmp(disp__col_text(s, 2), "incident.media") == 0)
            json_array_append(media, data);
        json_array_append_new(
            timeline, json_pack("{sIsssssssO}", "seq", (json_int_t)sqlite3_column_int64(s, 0), "at",
                                at, "type", disp__col_text(s, 2), "actor", disp__col_text(s, 3),
                                "data", data ? data : json_null()));
        json_decref(data);
    }
    sqlite3_finalize(s);
    json_object_set_new(op->result, "timeline", timeline);
    json_object_set_new(op->result, "media", media);
    /* EIDO-style links: this incident REPLACED by / REPLACING / SPLIT from others. */
    json_t *links = json_array();
    sqlite3_prepare_v2(db,
                       "SELECT 'replaced_by', to_id FROM incident_links WHERE from_id = ?1 AND"
                       " kind = 'merged' UNION ALL SELECT 'replaces', from_id FROM incident_links"
                       " WHERE to_id = ?1 AND kind = 'merged' UNION ALL SELECT 'split_from', to_id"
                       " FROM incident_links WHERE from_id = ?1 AND kind = 'split' UNION ALL"
                       " SELECT 'split_into', from_id FROM incident_links WHERE to_id = ?1 AND"
                       " kind = 'split'",
                       -1, &s, NULL);
    sqlite3_bind_int64(s, 1, op->id);
    while (sqlite3_step(s) == SQLITE_ROW) {
        char *other = disp__ext_id('I', sqlite3_column_int64(s, 1));
        json_array_append_new(links,
                              json_pack("{ssss}", "kind", disp__col_text(s, 0), "incident", other));
        g_free(other);
    }
    sqlite3_finalize(s);
    json_object_set_new(op->result, "links", links);
    json_t *loc = json_object_get(op->result, "location");
    json_object_set_new(op->result, "hazards",
                        disp__hazards_near(db, json_number_value(json_object_get(loc, "lon")),
                                           json_number_value(json_object_get(loc, "lat")), 50));
}

static void read_done(void *arg)
{
    read_op *op = arg;
    json_t *r = op->rc ? NULL : op->result;
    op->result = NULL;
    op->done(op->rc, r, op->arg);
    g_strfreev(op->agencies);
    g_free(op);
}

int disp_incidents_list(disp_incidents *d, char **agencies, int all, int limit, disp_json_done done,
                        void *arg)
{
    read_op *op = g_new0(read_op, 1);
    op->d = d;
    op->agencies = agencies ? g_strdupv(agencies) : NULL;
    op->all = all;
    op->limit = CLAMP(limit, 1, 5000);
    op->done = done;
    op->arg = arg;
    int rc = core_store_read(d->store, list_read, read_done, op);
    if (rc) {
        g_strfreev(op->agencies);
        g_free(op);
    }
    return rc;
}

int disp_incident_get(disp_incidents *d, int64_t id, disp_json_done done, void *arg)
{
    read_op *op = g_new0(read_op, 1);
    op->d = d;
    op->id = id;
    op->done = done;
    op->arg = arg;
    int rc = core_store_read(d->store, get_read, read_done, op);
    if (rc)
        g_free(op);
    return rc;
}
