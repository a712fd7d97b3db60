/*
 * cameras.c — the camera registry: the table, the writes (create, change,
 * remove, import) and the mirror (cameras.h); the fields are checked in
 * cameras_check.c before a write is queued.
 *
 * Every write runs in the store's writer against the stored row: names are
 * unique (checked there to name the camera holding one; the UNIQUE
 * constraint is the backstop), and a change or removal authorized for one
 * agency is refused if the camera moved to another meanwhile. Each write
 * reads the row back and hands the camera to its completion, which puts it
 * into the mirror on the loop thread once committed; completions run in
 * commit order, so the mirror never goes back to an older state. The
 * queueing and the import's row walk are shared with the other registries
 * (core/write_op.h, core/import.h).
 *
 * The credentials are columns of their own and are only ever copied into a
 * vid_camera; vid_camera_json, which makes every reply and event, shows
 * whether they are set and nothing else.
 */
#include "cameras_internal.h"

#include "../core/auth.h"
#include "../core/core.h"
#include "../core/import.h"
#include "../core/log.h"
#include "../core/write_op.h"

#include <glib.h>
#include <sqlite3.h>
#include <string.h>

static const core_migration migrations[] = {
    {"cameras", 1,
     "CREATE TABLE cameras ("
     "  id INTEGER PRIMARY KEY,"
     "  name TEXT UNIQUE NOT NULL,"
     "  agency TEXT NOT NULL,"
     "  lon REAL NOT NULL,"
     "  lat REAL NOT NULL,"
     "  height_m REAL NOT NULL DEFAULT 0,"
     "  heading REAL NOT NULL,"
     "  fov REAL NOT NULL,"
     "  range_m REAL NOT NULL,"
     "  rtsp_url TEXT NOT NULL,"
     "  username TEXT NOT NULL DEFAULT '',"
     "  password TEXT NOT NULL DEFAULT '',"
     "  ptz INTEGER NOT NULL DEFAULT 0,"
     "  codec TEXT NOT NULL DEFAULT '',"
     "  created_ms INTEGER NOT NULL,"
     "  updated_ms INTEGER NOT NULL)"},
    /* ONVIF: the device service address (discovery, PTZ) and the profile PTZ moves. */
    {"cameras", 2,
     "ALTER TABLE cameras ADD COLUMN onvif_url TEXT NOT NULL DEFAULT '';"
     "ALTER TABLE cameras ADD COLUMN onvif_profile TEXT NOT NULL DEFAULT ''"},
};

#define COLUMNS                                                                                    \
    "id, name, agency, lon, lat, height_m, heading, fov, range_m, rtsp_url, username, password,"   \
    " ptz, codec, created_ms, updated_ms, onvif_url, onvif_profile"

void vid_cameras_register(core_store *st)
{
    core_store_add_migrations(st, migrations, G_N_ELEMENTS(migrations));
}

static void camera_free(gpointer p)
{
    vid_camera *cam = p;
    if (!cam)
        return;
    g_free(cam->name);
    g_free(cam->agency);
    g_free(cam->rtsp_url);
    g_free(cam->username);
    if (cam->password)
        memset(cam->password, 0, strlen(cam->password));
    g_free(cam->password);
    g_free(cam->codec);
    g_free(cam->onvif_url);
    g_free(cam->onvif_profile);
    g_free(cam);
}

int64_t vid_camera_parse_id(const char *s)
{
    if (!s)
        return 0;
    if (s[0] == 'C' && s[1] == '-')
        s += 2;
    if (!*s || strlen(s) > 18 || strspn(s, "0123456789") != strlen(s))
        return 0;
    return g_ascii_strtoll(s, NULL, 10);
}

json_t *vid_camera_id_json(int64_t id)
{
    char text[32];
    g_snprintf(text, sizeof text, "C-%" G_GINT64_FORMAT, id);
    return json_string(text);
}

json_t *vid_camera_json(const vid_camera *cam)
{
    char id[32], created[32], updated[32];
    g_snprintf(id, sizeof id, "C-%" G_GINT64_FORMAT, cam->id);
    core_iso8601(cam->created_ms, created, sizeof created);
    core_iso8601(cam->updated_ms, updated, sizeof updated);
    json_t *j = json_pack(
        "{ss ss ss sf sf sf sf sf sf ss sb sb so ss ss}", "id", id, "name", cam->name, "agency",
        cam->agency, "lon", cam->cone.lon, "lat", cam->cone.lat, "height_m", cam->height_m,
        "heading", cam->cone.heading_deg, "fov", cam->cone.fov_deg, "range_m", cam->cone.range_m,
        "rtsp_url", cam->rtsp_url, "credentials", *cam->username || *cam->password, "ptz", cam->ptz,
        "codec", *cam->codec ? json_string(cam->codec) : json_null(), "created_at", created,
        "updated_at", updated);
    json_object_set_new(j, "onvif_url",
                        *cam->onvif_url ? json_string(cam->onvif_url) : json_null());
    json_object_set_new(j, "onvif_profile",
                        *cam->onvif_profile ? json_string(cam->onvif_profile) : json_null());
    return j;
}

static const char *col(sqlite3_stmt *s, int i)
{
    const char *t = (const char *)sqlite3_column_text(s, i);
    return t ? t : "";
}

/* The camera of a row of COLUMNS. */
static vid_camera *camera_row(sqlite3_stmt *s)
{
    vid_camera *cam = g_new0(vid_camera, 1);
    cam->id = sqlite3_column_int64(s, 0);
    cam->name = g_strdup(col(s, 1));
    cam->agency = g_strdup(col(s, 2));
    cam->cone.lon = sqlite3_column_double(s, 3);
    cam->cone.lat = sqlite3_column_double(s, 4);
    cam->height_m = sqlite3_column_double(s, 5);
    cam->cone.heading_deg = sqlite3_column_double(s, 6);
    cam->cone.fov_deg = sqlite3_column_double(s, 7);
    cam->cone.range_m = sqlite3_column_double(s, 8);
    cam->rtsp_url = g_strdup(col(s, 9));
    cam->username = g_strdup(col(s, 10));
    cam->password = g_strdup(col(s, 11));
    cam->ptz = sqlite3_column_int(s, 12) != 0;
    cam->codec = g_strdup(col(s, 13));
    cam->created_ms = sqlite3_column_int64(s, 14);
    cam->updated_ms = sqlite3_column_int64(s, 15);
    cam->onvif_url = g_strdup(col(s, 16));
    cam->onvif_profile = g_strdup(col(s, 17));
    return cam;
}

/* Every settable field of a camera, credentials included (never replied). */
static json_t *fields_of(const vid_camera *cam)
{
    return json_pack("{ss ss sf sf sf sf sf sf ss ss ss sb ss ss ss}", "name", cam->name, "agency",
                     cam->agency, "lon", cam->cone.lon, "lat", cam->cone.lat, "height_m",
                     cam->height_m, "heading", cam->cone.heading_deg, "fov", cam->cone.fov_deg,
                     "range_m", cam->cone.range_m, "rtsp_url", cam->rtsp_url, "username",
                     cam->username, "password", cam->password, "ptz", cam->ptz, "codec", cam->codec,
                     "onvif_url", cam->onvif_url, "onvif_profile", cam->onvif_profile);
}

/* ---- writer helpers ---- */

static const char *str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static double num(const json_t *o, const char *k)
{
    return json_number_value(json_object_get(o, k));
}

static int read_camera(core_txn *txn, int64_t id, vid_camera **out)
{
    sqlite3_stmt *s = core_txn_prepare(txn, "SELECT " COLUMNS " FROM cameras WHERE id = ?");
    if (!s)
        return CORE_EDB;
    sqlite3_bind_int64(s, 1, id);
    int rc = sqlite3_step(s) == SQLITE_ROW ? 0 : CORE_ENOTFOUND;
    if (!rc)
        *out = camera_row(s);
    sqlite3_reset(s);
    return rc;
}

/* The camera named so other than id, or 0. */
static int64_t holder(core_txn *txn, const char *name, int64_t id)
{
    sqlite3_stmt *s = core_txn_prepare(txn, "SELECT id FROM cameras WHERE name = ? AND id != ?");
    if (!s)
        return 0;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, id);
    int64_t other = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return other;
}

static int name_free(core_txn *txn, const json_t *f, int64_t id, json_t **error)
{
    int64_t other = holder(txn, str(f, "name"), id);
    if (!other)
        return 0;
    *error = core_write_refusal(
        "name", g_strdup_printf("a camera named %s is already registered (C-%" G_GINT64_FORMAT ")",
                                str(f, "name"), other));
    return CORE_EEXISTS;
}

/* Binds the fields of f to ?1…?13, ?15 and ?16 in the order of fields[]. */
static void bind_fields(sqlite3_stmt *s, const json_t *f)
{
    sqlite3_bind_text(s, 1, str(f, "name"), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, str(f, "agency"), -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(s, 3, num(f, "lon"));
    sqlite3_bind_double(s, 4, num(f, "lat"));
    sqlite3_bind_double(s, 5, num(f, "height_m"));
    sqlite3_bind_double(s, 6, num(f, "heading"));
    sqlite3_bind_double(s, 7, num(f, "fov"));
    sqlite3_bind_double(s, 8, num(f, "range_m"));
    sqlite3_bind_text(s, 9, str(f, "rtsp_url"), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 10, str(f, "username"), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 11, str(f, "password"), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(s, 12, json_is_true(json_object_get(f, "ptz")));
    sqlite3_bind_text(s, 13, str(f, "codec"), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 15, str(f, "onvif_url"), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 16, str(f, "onvif_profile"), -1, SQLITE_TRANSIENT);
}

/* Emits an event on the camera (data: NULL for the camera itself), for
 * its agency and another (a camera moved between agencies). */
static int emit(core_txn *txn, const char *type, const vid_camera *cam, json_t *data,
                const char *other_agency, const char *actor, const char *source)
{
    json_t *public = vid_camera_json(cam);
    if (!data) {
        data = json_deep_copy(public);
        json_object_del(data, "id");
    }
    json_t *agencies = json_pack("[s]", cam->agency);
    if (other_agency && strcmp(other_agency, cam->agency) != 0)
        json_array_append_new(agencies, json_string(other_agency));
    json_object_set(data, "camera", json_object_get(public, "id"));
    json_object_set(data, "name", json_object_get(public, "name"));
    json_object_set_new(data, "agencies", agencies);
    char subject[40];
    g_snprintf(subject, sizeof subject, "camera/%" G_GINT64_FORMAT, cam->id);
    core_event *ev = core_event_new(type, actor, subject, data);
    core_event_set_source(ev, source);
    core_event_set_state(ev, public);
    return core_txn_emit(txn, ev);
}

static int insert_camera(core_txn *txn, const json_t *f, const char *actor, const char *source,
                         vid_camera **out, json_t **error)
{
    int rc = name_free(txn, f, 0, error);
    if (rc)
        return rc;
    sqlite3_stmt *s = core_txn_prepare(
        txn, "INSERT INTO cameras (name, agency, lon, lat, height_m, heading, fov, range_m,"
             " rtsp_url, username, password, ptz, codec, created_ms, updated_ms, onvif_url,"
             " onvif_profile) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
             " ?14, ?14, ?15, ?16)");
    if (!s)
        return CORE_EDB;
    bind_fields(s, f);
    sqlite3_bind_int64(s, 14, core_now_ms());
    rc = core_txn_check(txn, sqlite3_step(s));
    if (!rc)
        rc = read_camera(txn, sqlite3_last_insert_rowid(core_txn_db(txn)), out);
    return rc ? rc : emit(txn, "camera.created", *out, NULL, NULL, actor, source);
}

/* What changed between two cameras' fields, without credential values:
 * {"field": {"from","to"}}, and "credentials" when either was set anew. */
static json_t *changes_of(const json_t *before, const json_t *after)
{
    json_t *changes = json_object();
    int creds = 0;
    for (const char *const *k = vid__camera_fields; *k; k++) {
        json_t *from = json_object_get(before, *k), *to = json_object_get(after, *k);
        if (json_equal(from, to))
            continue;
        if (!strcmp(*k, "username") || !strcmp(*k, "password"))
            creds = 1;
        else
            json_object_set_new(changes, *k, json_pack("{sOsO}", "from", from, "to", to));
    }
    if (creds)
        json_object_set_new(changes, "credentials",
                            json_pack("{sbsb}", "from",
                                      *str(before, "username") || *str(before, "password"), "to",
                                      *str(after, "username") || *str(after, "password")));
    return changes;
}

/* Applies the fields of f that differ from the stored camera; *changed
 * says whether any did; *out gets the camera as it is now. */
static int change_camera(core_txn *txn, const vid_camera *before, const json_t *f,
                         const char *actor, const char *source, int *changed, vid_camera **out,
                         json_t **error)
{
    json_t *old = fields_of(before), *merged = json_deep_copy(old);
    json_object_update(merged, (json_t *)f);
    json_t *changes = changes_of(old, merged);
    int rc = 0;
    *changed = json_object_size(changes) > 0;
    if (*changed && json_object_get(changes, "name"))
        rc = name_free(txn, merged, before->id, error);
    sqlite3_stmt *s = NULL;
    if (!rc && *changed &&
        !(s = core_txn_prepare(txn, "UPDATE cameras SET name = ?1, agency = ?2, lon = ?3,"
                                    " lat = ?4, height_m = ?5, heading = ?6, fov = ?7,"
                                    " range_m = ?8, rtsp_url = ?9, username = ?10,"
                                    " password = ?11, ptz = ?12, codec = ?13, updated_ms = ?14,"
                                    " onvif_url = ?15, onvif_profile = ?16 WHERE id = ?17")))
        rc = CORE_EDB;
    if (s) {
        bind_fields(s, merged);
        sqlite3_bind_int64(s, 14, core_now_ms());
        sqlite3_bind_int64(s, 17, before->id);
        rc = core_txn_check(txn, sqlite3_step(s));
    }
    if (!rc)
        rc = read_camera(txn, before->id, out);
    if (!rc && *changed)
        rc = emit(txn, "camera.changed", *out, json_pack("{sO}", "changes", changes),
                  before->agency, actor, source);
    json_decref(changes);
    json_decref(merged);
    json_decref(old);
    return rc;
}

/* ---- the writes ---- */

typedef struct {
    core_write_op w; /* first: the op is freed as one */
    vid_cameras *c;
    GPtrArray *put; /* vid_camera*: the states to mirror once committed */
    int removed;
} cam_op;

static void op_clear(core_write_op *w)
{
    g_ptr_array_unref(((cam_op *)w)->put);
}

/* The mirror takes what the write committed. */
static void op_committed(core_write_op *w)
{
    cam_op *op = (cam_op *)w;
    if (op->removed)
        g_hash_table_remove(op->c->by_id, &w->id);
    gsize n = 0;
    gpointer *cams = g_ptr_array_steal(op->put, &n);
    for (gsize i = 0; i < n; i++)
        g_hash_table_replace(op->c->by_id, &((vid_camera *)cams[i])->id, cams[i]);
    g_free(cams);
}

static cam_op *op_new(vid_cameras *c, const char *actor, const char *source, vid_json_done done,
                      void *arg)
{
    cam_op *op = (cam_op *)core_write_op_new(sizeof(cam_op), c->store, actor, source, done, arg);
    op->c = c;
    op->put = g_ptr_array_new_with_free_func(camera_free);
    op->w.clear = op_clear;
    op->w.committed = op_committed;
    return op;
}

/* The stored camera, if it is there and (when the caller was authorized
 * for an agency) still of that agency. */
static int current_camera(core_txn *txn, cam_op *op, vid_camera **cam)
{
    int rc = read_camera(txn, op->w.id, cam);
    if (!rc && op->w.agency && strcmp((*cam)->agency, op->w.agency) != 0) {
        op->w.error =
            core_write_refusal(NULL, g_strdup("the camera moved to another agency meanwhile"));
        camera_free(*cam);
        *cam = NULL;
        rc = CORE_ECONFLICT;
    }
    return rc;
}

/* The result of a write that leaves one camera: it, as the API shows it. */
static int keep(cam_op *op, int rc, vid_camera *cam)
{
    if (rc) {
        camera_free(cam);
        return rc;
    }
    op->w.result = vid_camera_json(cam);
    g_ptr_array_add(op->put, cam);
    return 0;
}

static int add_write(core_txn *txn, void *arg)
{
    cam_op *op = arg;
    vid_camera *cam = NULL;
    int rc = insert_camera(txn, op->w.fields, op->w.actor, op->w.source, &cam, &op->w.error);
    return keep(op, rc, cam);
}

static int update_write(core_txn *txn, void *arg)
{
    cam_op *op = arg;
    vid_camera *before = NULL, *after = NULL;
    int changed = 0, rc = current_camera(txn, op, &before);
    if (!rc)
        rc = change_camera(txn, before, op->w.fields, op->w.actor, op->w.source, &changed, &after,
                           &op->w.error);
    camera_free(before);
    return keep(op, rc, after);
}

static int remove_write(core_txn *txn, void *arg)
{
    cam_op *op = arg;
    vid_camera *cam = NULL;
    int rc = current_camera(txn, op, &cam);
    sqlite3_stmt *s = rc ? NULL : core_txn_prepare(txn, "DELETE FROM cameras WHERE id = ?");
    if (!rc && !s)
        rc = CORE_EDB;
    if (s) {
        sqlite3_bind_int64(s, 1, op->w.id);
        rc = core_txn_check(txn, sqlite3_step(s));
    }
    if (!rc)
        rc = emit(txn, "camera.removed", cam, json_object(), NULL, op->w.actor, op->w.source);
    camera_free(cam);
    if (!rc) {
        op->removed = 1;
        op->w.result = json_object();
    }
    return rc;
}

/* One imported row: by name, created or changed. *what: 'c', 'u' or '='. */
static int upsert(core_txn *txn, void *arg, const json_t *f, char *what, json_t **error)
{
    cam_op *op = arg;
    int rc = core_write_may_touch(op->w.may, str(f, "agency"), error);
    int64_t id = rc ? 0 : holder(txn, str(f, "name"), 0);
    vid_camera *before = NULL, *after = NULL;
    if (!rc && !id) {
        *what = 'c';
        rc = insert_camera(txn, f, op->w.actor, op->w.source, &after, error);
    } else if (!rc) {
        rc = read_camera(txn, id, &before);
        if (!rc)
            rc = core_write_may_touch(op->w.may, before->agency, error);
        int changed = 0;
        if (!rc)
            rc = change_camera(txn, before, f, op->w.actor, op->w.source, &changed, &after, error);
        *what = changed ? 'u' : '=';
        camera_free(before);
    }
    if (rc || *what == '=')
        camera_free(after);
    else
        g_ptr_array_add(op->put, after);
    return rc;
}

static int import_write(core_txn *txn, void *arg)
{
    cam_op *op = arg;
    return core_import_write(txn, op->w.rows, "camera", upsert, op, &op->w.result, &op->w.error);
}

/* ---- the public calls ---- */

int vid_camera_add(vid_cameras *c, const json_t *body, const char *actor, const char *source,
                   vid_json_done done, void *arg, char **field, char **message)
{
    json_t *f = NULL;
    int rc = vid__camera_check(c, body, 1, &f, field, message);
    if (rc)
        return rc;
    cam_op *op = op_new(c, actor, source, done, arg);
    return core_write_op_queue(&op->w, add_write, 0, NULL, f, NULL, NULL);
}

int vid_camera_update(vid_cameras *c, int64_t id, const json_t *body, const char *agency,
                      const char *actor, const char *source, vid_json_done done, void *arg,
                      char **field, char **message)
{
    json_t *f = NULL;
    int rc = vid__camera_check(c, body, 0, &f, field, message);
    if (rc)
        return rc;
    cam_op *op = op_new(c, actor, source, done, arg);
    return core_write_op_queue(&op->w, update_write, id, agency, f, NULL, NULL);
}

int vid_camera_remove(vid_cameras *c, int64_t id, const char *agency, const char *actor,
                      const char *source, vid_json_done done, void *arg)
{
    cam_op *op = op_new(c, actor, source, done, arg);
    return core_write_op_queue(&op->w, remove_write, id, agency, NULL, NULL, NULL);
}

int vid_cameras_import(vid_cameras *c, json_t *rows, char **may, const char *actor,
                       const char *source, vid_json_done done, void *arg)
{
    cam_op *op = op_new(c, actor, source, done, arg);
    return core_write_op_queue(&op->w, import_write, 0, NULL, NULL, rows, may);
}

/* ---- the mirror ---- */

static void load(sqlite3 *db, void *arg)
{
    vid_cameras *c = arg;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, "SELECT " COLUMNS " FROM cameras", -1, &s, NULL) != SQLITE_OK) {
        log_error("cameras.load", "error=\"%s\"", sqlite3_errmsg(db));
        return;
    }
    while (sqlite3_step(s) == SQLITE_ROW) {
        vid_camera *cam = camera_row(s);
        g_hash_table_replace(c->by_id, &cam->id, cam);
    }
    sqlite3_finalize(s);
}

vid_cameras *vid_cameras_new(core_store *st, const char *agencies)
{
    vid_cameras *c = g_new0(vid_cameras, 1);
    c->store = st;
    c->agencies = g_strdup(agencies ? agencies : CORE_DEFAULT_AGENCIES);
    c->by_id = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, camera_free);
    if (st && core_store_load(st, load, c) != 0)
        log_error("cameras.load", "error=\"cannot read the store\"");
    return c;
}

void vid_cameras_free(vid_cameras *c)
{
    if (!c)
        return;
    g_hash_table_destroy(c->by_id);
    g_free(c->agencies);
    g_free(c);
}

const vid_camera *vid_cameras_get(const vid_cameras *c, int64_t id)
{
    return g_hash_table_lookup(c->by_id, &id);
}

unsigned vid_cameras_count(const vid_cameras *c)
{
    return g_hash_table_size(c->by_id);
}

static gint by_id(gconstpointer a, gconstpointer b)
{
    int64_t x = (*(vid_camera *const *)a)->id, y = (*(vid_camera *const *)b)->id;
    return x < y ? -1 : x > y;
}

GPtrArray *vid_cameras_all(const vid_cameras *c)
{
    GPtrArray *all = g_ptr_array_sized_new(g_hash_table_size(c->by_id));
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, c->by_id);
    while (g_hash_table_iter_next(&it, NULL, &v))
        g_ptr_array_add(all, v);
    g_ptr_array_sort(all, by_id);
    return all;
}
