/*
 * incident.c — calls, their fusion into incidents, and the incident
 * lifecycle (see incident.h for the design).
 *
 * Fusion runs inside the store's write function, on the writer thread:
 * the open incidents of the call's family whose last call is within the
 * category's window are read with a bounding-box prefilter, the nearest
 * within the category's radius is joined, else a new incident is opened.
 * Ids go out as strings ("I-12", "C-345") so integrations never do
 * arithmetic on them.
 */
#include "incident.h"

#include "../core/core.h"

#include <glib.h>
#include <math.h>
#include <string.h>

static const core_migration migrations[] = {
    {"dispatch", 3,
     "CREATE TABLE incidents ("
     "  id INTEGER PRIMARY KEY,"
     "  type TEXT NOT NULL,"
     "  family TEXT NOT NULL,"
     "  priority INTEGER NOT NULL,"
     "  level TEXT NOT NULL DEFAULT '',"
     "  status TEXT NOT NULL,"
     "  lon REAL NOT NULL,"
     "  lat REAL NOT NULL,"
     "  address TEXT NOT NULL,"
     "  districts TEXT NOT NULL CHECK (json_valid(districts)),"
     "  agency TEXT NOT NULL,"
     "  joint TEXT NOT NULL,"
     "  callers INTEGER NOT NULL,"
     "  opened_ms INTEGER NOT NULL,"
     "  last_call_ms INTEGER NOT NULL,"
     "  updated_ms INTEGER NOT NULL,"
     "  closed_ms INTEGER NOT NULL DEFAULT 0);"
     "CREATE INDEX incidents_open ON incidents(family, closed_ms, last_call_ms);"
     "CREATE TABLE calls ("
     "  id INTEGER PRIMARY KEY,"
     "  incident_id INTEGER NOT NULL REFERENCES incidents(id),"
     "  line TEXT NOT NULL,"
     "  caller TEXT NOT NULL,"
     "  received_ms INTEGER NOT NULL,"
     "  created_ms INTEGER NOT NULL,"
     "  lon REAL NOT NULL,"
     "  lat REAL NOT NULL,"
     "  location_text TEXT NOT NULL,"
     "  confidence REAL NOT NULL,"
     "  category TEXT NOT NULL,"
     "  text TEXT NOT NULL,"
     "  call_taker TEXT NOT NULL,"
     "  agency TEXT NOT NULL);"
     "CREATE INDEX calls_incident ON calls(incident_id)"},
    /* Merge and split: a call remembers the incident it first opened or
     * joined; a merged incident remembers where it went and its status. */
    {"dispatch", 4,
     "ALTER TABLE calls ADD COLUMN origin_incident_id INTEGER NOT NULL DEFAULT 0;"
     "UPDATE calls SET origin_incident_id = incident_id;"
     "ALTER TABLE incidents ADD COLUMN merged_into INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE incidents ADD COLUMN status_before TEXT NOT NULL DEFAULT '';"
     "CREATE TABLE incident_links ("
     "  from_id INTEGER NOT NULL, to_id INTEGER NOT NULL, kind TEXT NOT NULL,"
     "  at_ms INTEGER NOT NULL);"
     "CREATE INDEX incident_links_from ON incident_links(from_id);"
     "CREATE INDEX incident_links_to ON incident_links(to_id)"},
    {"dispatch", 5,
     "CREATE TABLE incident_alarms (incident_id INTEGER NOT NULL, kind TEXT NOT NULL,"
     "  at_ms INTEGER NOT NULL, PRIMARY KEY (incident_id, kind))"},
    {"dispatch", 6,
     "CREATE TABLE hazards (id INTEGER PRIMARY KEY, lon REAL NOT NULL, lat REAL NOT NULL,"
     "  radius_m REAL NOT NULL, kind TEXT NOT NULL, text TEXT NOT NULL, location_text TEXT NOT "
     "NULL,"
     "  author TEXT NOT NULL, agency TEXT NOT NULL, created_ms INTEGER NOT NULL,"
     "  removed_ms INTEGER NOT NULL DEFAULT 0);"
     "CREATE INDEX hazards_place ON hazards(removed_ms, lat, lon)"},
};

static const char *const lines[] = {"110", "119", "120", "122", "12345", NULL};
/* Open ones first: index < 5 is open. */
static const char *const statuses[] = {"new",       "dispatched",    "en_route",
                                       "on_scene",  "under_control", "closed",
                                       "cancelled", "merged",        NULL};
static const char *const levels[] = {"", "I", "II", "III", "IV", NULL};

struct disp_incidents {
    core_store *store;
    disp_catalogue *cat;
    gis_city *city;
    double bbox[4];              /* the city's extent, for the location check */
    int unassigned_s, arrival_s; /* alarm thresholds for priority-1 incidents */
    guint timer;
    int checking;
};

void disp_incidents_register(core_store *st)
{
    core_store_add_migrations(st, migrations, G_N_ELEMENTS(migrations));
}

disp_incidents *disp_incidents_new(core_store *st, disp_catalogue *cat, gis_city *city)
{
    disp_incidents *d = g_new0(disp_incidents, 1);
    d->store = st;
    d->cat = cat;
    d->city = city;
    if (city) {
        json_t *info = gis_city_info(city), *bb = json_object_get(info, "bbox");
        for (int i = 0; i < 4; i++)
            d->bbox[i] = json_number_value(json_array_get(bb, (size_t)i));
        json_decref(info);
    }
    return d;
}

void disp_incidents_free(disp_incidents *d)
{
    if (d && d->timer)
        g_source_remove(d->timer);
    g_free(d);
}

static char *ext_id(char prefix, int64_t id)
{
    return g_strdup_printf("%c-%" G_GINT64_FORMAT, prefix, id);
}

/* ---- JSON of rows ---- */

static const char *col_text(sqlite3_stmt *s, int i)
{
    const char *t = (const char *)sqlite3_column_text(s, i);
    return t ? t : "";
}

#define INCIDENT_COLUMNS                                                                           \
    "id, type, family, priority, level, status, lon, lat, address, districts, agency, joint,"      \
    " callers, opened_ms, last_call_ms, updated_ms, closed_ms, merged_into,"                       \
    " (SELECT group_concat(kind) FROM incident_alarms WHERE incident_id = incidents.id)"

static json_t *incident_row(sqlite3_stmt *s)
{
    char opened[32], updated[32], closed[32];
    core_iso8601(sqlite3_column_int64(s, 13), opened, sizeof opened);
    core_iso8601(sqlite3_column_int64(s, 15), updated, sizeof updated);
    char *id = ext_id('I', sqlite3_column_int64(s, 0));
    json_t *joint = json_array();
    char **parts = g_strsplit(col_text(s, 11), ",", -1);
    for (char **p = parts; *p; p++)
        if (**p)
            json_array_append_new(joint, json_string(*p));
    g_strfreev(parts);
    json_t *j = json_pack(
        "{sssssssIsssss{sfsf}sssosssosIssss}", "id", id, "type", col_text(s, 1), "family",
        col_text(s, 2), "priority", (json_int_t)sqlite3_column_int64(s, 3), "level", col_text(s, 4),
        "status", col_text(s, 5), "location", "lon", sqlite3_column_double(s, 6), "lat",
        sqlite3_column_double(s, 7), "address", col_text(s, 8), "districts",
        json_loads(col_text(s, 9), 0, NULL), "agency", col_text(s, 10), "joint", joint, "callers",
        (json_int_t)sqlite3_column_int64(s, 12), "opened_at", opened, "updated_at", updated);
    if (sqlite3_column_int64(s, 16)) {
        core_iso8601(sqlite3_column_int64(s, 16), closed, sizeof closed);
        json_object_set_new(j, "closed_at", json_string(closed));
    }
    json_t *alarms = json_array();
    char **kinds = g_strsplit(col_text(s, 18), ",", -1);
    for (char **k = kinds; *k; k++)
        if (**k)
            json_array_append_new(alarms, json_string(*k));
    g_strfreev(kinds);
    json_object_set_new(j, "alarms", alarms);
    if (sqlite3_column_int64(s, 17)) {
        char *into = ext_id('I', sqlite3_column_int64(s, 17));
        json_object_set_new(j, "replaced_by", json_string(into));
        g_free(into);
    }
    g_free(id);
    return j;
}

char **disp_incident_agencies(const json_t *inc)
{
    GPtrArray *a = g_ptr_array_new();
    const char *owner = json_string_value(json_object_get(inc, "agency"));
    if (owner)
        g_ptr_array_add(a, g_strdup(owner));
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(inc, "joint"), i, v) if (json_is_string(v))
        g_ptr_array_add(a, g_strdup(json_string_value(v)));
    g_ptr_array_add(a, NULL);
    return (char **)g_ptr_array_free(a, FALSE);
}

/* Every incident event carries the incident's agencies, for the feed. */
static json_t *with_agencies(json_t *data, const char *owner, const char *joint_csv)
{
    json_t *a = json_array();
    json_array_append_new(a, json_string(owner));
    char **parts = g_strsplit(joint_csv, ",", -1);
    for (char **p = parts; *p; p++)
        if (**p)
            json_array_append_new(a, json_string(*p));
    g_strfreev(parts);
    json_object_set_new(data, "agencies", a);
    return data;
}

/* ---- intake ---- */

typedef struct {
    disp_incidents *d;
    const disp_category *cat;
    char *line, *caller, *location_text, *text, *call_taker, *agency, *source, *address;
    char *districts; /* JSON array text */
    double lon, lat, confidence;
    int64_t received_ms;
    /* results */
    int64_t call_id, incident_id;
    int joined;
    json_t *result;
    disp_json_done done;
    void *arg;
} call_op;

static void call_op_free(call_op *op)
{
    g_free(op->line);
    g_free(op->caller);
    g_free(op->location_text);
    g_free(op->text);
    g_free(op->call_taker);
    g_free(op->agency);
    g_free(op->source);
    g_free(op->address);
    g_free(op->districts);
    json_decref(op->result);
    g_free(op);
}

static double distance_m(double lon1, double lat1, double lon2, double lat2)
{
    double k = cos((lat1 + lat2) / 2 * G_PI / 180);
    double dx = (lon2 - lon1) * 111320.0 * k, dy = (lat2 - lat1) * 110540.0;
    return sqrt(dx * dx + dy * dy);
}

/* The open incident this call joins, or 0. */
static int64_t fuse(core_txn *txn, call_op *op, int64_t now)
{
    const disp_category *c = op->cat;
    double dlat = c->radius_m / 110540.0 + 1e-9;
    double dlon = c->radius_m / (111320.0 * cos(op->lat * G_PI / 180)) + 1e-9;
    sqlite3_stmt *s = core_txn_prepare(
        txn, "SELECT id, lon, lat FROM incidents WHERE family = ? AND closed_ms = 0"
             " AND last_call_ms >= ? AND lat BETWEEN ? AND ? AND lon BETWEEN ? AND ?");
    if (!s)
        return 0;
    sqlite3_bind_text(s, 1, c->family, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, op->received_ms - (int64_t)c->window_s * 1000);
    sqlite3_bind_double(s, 3, op->lat - dlat);
    sqlite3_bind_double(s, 4, op->lat + dlat);
    sqlite3_bind_double(s, 5, op->lon - dlon);
    sqlite3_bind_double(s, 6, op->lon + dlon);
    int64_t best = 0;
    double best_d = c->radius_m;
    while (sqlite3_step(s) == SQLITE_ROW) {
        double dd =
            distance_m(op->lon, op->lat, sqlite3_column_double(s, 1), sqlite3_column_double(s, 2));
        if (dd <= best_d) {
            best_d = dd;
            best = sqlite3_column_int64(s, 0);
        }
    }
    sqlite3_reset(s);
    (void)now;
    return best;
}

static int read_incident(core_txn *txn, int64_t id, json_t **out)
{
    sqlite3_stmt *s =
        core_txn_prepare(txn, "SELECT " INCIDENT_COLUMNS " FROM incidents WHERE id = ?");
    if (!s)
        return CORE_EDB;
    sqlite3_bind_int64(s, 1, id);
    int rc = sqlite3_step(s) == SQLITE_ROW ? 0 : CORE_ENOTFOUND;
    if (!rc)
        *out = incident_row(s);
    sqlite3_reset(s);
    return rc;
}

static int open_incident(core_txn *txn, call_op *op, int64_t now)
{
    const disp_category *c = op->cat;
    char *joint = g_strjoinv(",", c->joint);
    sqlite3_stmt *s = core_txn_prepare(
        txn, "INSERT INTO incidents (type, family, priority, status, lon, lat, address, districts,"
             " agency, joint, callers, opened_ms, last_call_ms, updated_ms)"
             " VALUES (?, ?, ?, 'new', ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)");
    if (!s) {
        g_free(joint);
        return CORE_EDB;
    }
    sqlite3_bind_text(s, 1, c->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, c->family, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, c->priority);
    sqlite3_bind_double(s, 4, op->lon);
    sqlite3_bind_double(s, 5, op->lat);
    sqlite3_bind_text(s, 6, op->address, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 7, op->districts, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 8, c->owner, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 9, joint, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 10, now);
    sqlite3_bind_int64(s, 11, op->received_ms);
    sqlite3_bind_int64(s, 12, now);
    g_free(joint);
    int rc = core_txn_check(txn, sqlite3_step(s));
    if (rc)
        return rc;
    op->incident_id = sqlite3_last_insert_rowid(core_txn_db(txn));
    return 0;
}

static json_t *call_json(const call_op *op, int64_t created_ms)
{
    char received[32], created[32];
    core_iso8601(op->received_ms, received, sizeof received);
    core_iso8601(created_ms, created, sizeof created);
    char *id = ext_id('C', op->call_id), *iid = ext_id('I', op->incident_id);
    json_t *j = json_pack("{sssssssssssss{sfsfsssf}ssssss}", "id", id, "incident_id", iid, "line",
                          op->line, "caller", op->caller, "received_at", received, "created_at",
                          created, "location", "lon", op->lon, "lat", op->lat, "text",
                          op->location_text, "confidence", op->confidence, "category",
                          op->cat->name, "text", op->text, "call_taker", op->call_taker);
    g_free(id);
    g_free(iid);
    return j;
}

static int call_write(core_txn *txn, void *arg)
{
    call_op *op = arg;
    int64_t now = core_now_ms();
    int64_t joined = fuse(txn, op, now);
    int rc = 0;
    op->joined = joined != 0;
    if (joined)
        op->incident_id = joined;
    else
        rc = open_incident(txn, op, now);
    if (rc)
        return rc;
    sqlite3_stmt *s = core_txn_prepare(
        txn, "INSERT INTO calls (incident_id, line, caller, received_ms, created_ms, lon, lat,"
             " location_text, confidence, category, text, call_taker, agency, origin_incident_id)"
             " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?1)");
    if (!s)
        return CORE_EDB;
    sqlite3_bind_int64(s, 1, op->incident_id);
    sqlite3_bind_text(s, 2, op->line, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, op->caller, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, op->received_ms);
    sqlite3_bind_int64(s, 5, now);
    sqlite3_bind_double(s, 6, op->lon);
    sqlite3_bind_double(s, 7, op->lat);
    sqlite3_bind_text(s, 8, op->location_text, -1, SQLITE_STATIC);
    sqlite3_bind_double(s, 9, op->confidence);
    sqlite3_bind_text(s, 10, op->cat->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 11, op->text, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 12, op->call_taker, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 13, op->agency, -1, SQLITE_STATIC);
    if ((rc = core_txn_check(txn, sqlite3_step(s))))
        return rc;
    op->call_id = sqlite3_last_insert_rowid(core_txn_db(txn));
    s = core_txn_prepare(txn, "UPDATE incidents SET callers = callers + 1,"
                              " last_call_ms = max(last_call_ms, ?), updated_ms = ? WHERE id = ?");
    if (!s)
        return CORE_EDB;
    sqlite3_bind_int64(s, 1, op->received_ms);
    sqlite3_bind_int64(s, 2, now);
    sqlite3_bind_int64(s, 3, op->incident_id);
    if ((rc = core_txn_check(txn, sqlite3_step(s))))
        return rc;
    json_t *inc = NULL;
    if ((rc = read_incident(txn, op->incident_id, &inc)))
        return rc;
    char subject[32];
    g_snprintf(subject, sizeof subject, "incident/%" G_GINT64_FORMAT, op->incident_id);
    const char *owner = json_string_value(json_object_get(inc, "agency"));
    char **ag = disp_incident_agencies(inc);
    char *joint = g_strjoinv(",", ag + 1);
    g_strfreev(ag);
    if (!joined) {
        core_event *ev = core_event_new("incident.opened", op->call_taker, subject,
                                        with_agencies(json_deep_copy(inc), owner, joint));
        core_event_set_source(ev, op->source);
        if ((rc = core_txn_emit(txn, ev))) {
            g_free(joint);
            json_decref(inc);
            return rc;
        }
    }
    json_t *call = call_json(op, now);
    json_t *data = json_pack("{sOsbsO}", "call", call, "joined", op->joined, "callers",
                             json_object_get(inc, "callers"));
    core_event *ev =
        core_event_new("call.received", op->call_taker, subject, with_agencies(data, owner, joint));
    core_event_set_source(ev, op->source);
    g_free(joint);
    rc = core_txn_emit(txn, ev);
    op->result = json_pack("{sosbso}", "call", call, "joined", op->joined, "incident", inc);
    return rc;
}

static void call_done(int rc, GPtrArray *events, void *arg)
{
    call_op *op = arg;
    json_t *r = rc ? NULL : json_incref(op->result);
    op->done(rc, r, op->arg);
    call_op_free(op);
}

static int refuse(char **field, char **message, const char *f, char *msg)
{
    *field = g_strdup(f);
    *message = msg;
    return CORE_EINVAL;
}

/* The line as a string ("119"), from a string or a number. */
static char *line_of(json_t *v)
{
    if (json_is_string(v))
        return g_strdup(json_string_value(v));
    if (json_is_integer(v))
        return g_strdup_printf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
    return NULL;
}

static int parse_time(json_t *v, int64_t *ms)
{
    if (!v) {
        *ms = core_now_ms();
        return 0;
    }
    if (!json_is_string(v))
        return -1;
    GDateTime *t = g_date_time_new_from_iso8601(json_string_value(v), NULL);
    if (!t)
        return -1;
    *ms = g_date_time_to_unix(t) * 1000 + g_date_time_get_microsecond(t) / 1000;
    g_date_time_unref(t);
    return 0;
}

typedef struct {
    double lon, lat, confidence;
    char *location_text;
} place;

/* Coordinates, or a text resolved by the city's search. */
static int locate(disp_incidents *d, place *op, json_t *loc, char **field, char **message)
{
    if (!json_is_object(loc))
        return refuse(field, message, "location",
                      g_strdup("\"location\" is {\"lon\":…,\"lat\":…} or {\"text\":\"…\"}"));
    json_t *lon = json_object_get(loc, "lon"), *lat = json_object_get(loc, "lat");
    const char *text = json_string_value(json_object_get(loc, "text"));
    if (lon || lat) {
        if (!json_is_number(lon) || !json_is_number(lat) ||
            !gis_lonlat_valid(json_number_value(lon), json_number_value(lat)))
            return refuse(field, message, "location",
                          g_strdup("\"lon\" and \"lat\" must be numbers within -180..180 and"
                                   " -90..90"));
        op->lon = json_number_value(lon);
        op->lat = json_number_value(lat);
        op->confidence = 1;
        if (d->city) {
            /* The city's extent and 5 km around it. */
            double pad_lat = 0.045, pad_lon = 0.045 / cos(op->lat * G_PI / 180);
            int inside = op->lon >= d->bbox[0] - pad_lon && op->lat >= d->bbox[1] - pad_lat &&
                         op->lon <= d->bbox[2] + pad_lon && op->lat <= d->bbox[3] + pad_lat;
            if (!inside)
                return refuse(field, message, "location",
                              g_strdup_printf("%.5f, %.5f is outside %s", op->lat, op->lon,
                                              gis_city_name(d->city)));
        }
        if (text)
            op->location_text = g_strndup(text, 200);
        return 0;
    }
    if (!text || !*text || strlen(text) > 200 || !g_utf8_validate(text, -1, NULL))
        return refuse(field, message, "location.text", g_strdup("1 to 200 bytes of text"));
    if (!d->city)
        return refuse(field, message, "location.text",
                      g_strdup("no city is loaded to resolve a place text: send lon/lat"));
    json_t *hits = gis_search(d->city, text, 1);
    json_t *best = json_array_get(hits, 0);
    if (!best) {
        json_decref(hits);
        return refuse(field, message, "location.text",
                      g_strdup_printf("no street or place matches '%s'", text));
    }
    op->lon = json_number_value(json_object_get(best, "lon"));
    op->lat = json_number_value(json_object_get(best, "lat"));
    const char *name = json_string_value(json_object_get(best, "name"));
    /* The whole name matched: sure; part of it: a street's middle, roughly. */
    op->confidence = g_ascii_strcasecmp(name, text) == 0 ? 0.9 : 0.6;
    op->location_text = g_strdup(text);
    json_decref(hits);
    return 0;
}

int disp_call_add(disp_incidents *d, const json_t *body, const char *call_taker, const char *agency,
                  const char *source, disp_json_done done, void *arg, char **field, char **message)
{
    call_op *op = g_new0(call_op, 1);
    op->d = d;
    int rc = 0;
    json_t *caller = json_object_get(body, "caller"), *text = json_object_get(body, "text");
    const char *category = json_string_value(json_object_get(body, "category"));
    op->line = line_of(json_object_get(body, "line"));
    if (!op->line || !g_strv_contains(lines, op->line))
        rc = refuse(field, message, "line", g_strdup("one of 110, 119, 120, 122, 12345"));
    else if (!json_is_string(caller) || json_string_length(caller) == 0 ||
             json_string_length(caller) > 32)
        rc = refuse(field, message, "caller", g_strdup("the caller's number: 1 to 32 characters"));
    else if (parse_time(json_object_get(body, "received_at"), &op->received_ms) ||
             op->received_ms > core_now_ms() + 300000)
        rc = refuse(field, message, "received_at",
                    g_strdup("an ISO 8601 time with its offset, not in the future"));
    else if (!(op->cat = disp_category_find(d->cat, category)))
        rc = refuse(field, message, "category",
                    g_strdup_printf("unknown category '%s' (see GET /api/v1/catalogue)",
                                    category ? category : ""));
    else if (text && (!json_is_string(text) || json_string_length(text) > DISP_CALL_TEXT_MAX))
        rc = refuse(field, message, "text",
                    g_strdup_printf("free text of at most %d bytes", DISP_CALL_TEXT_MAX));
    else {
        place where = {0};
        rc = locate(d, &where, json_object_get(body, "location"), field, message);
        op->lon = where.lon;
        op->lat = where.lat;
        op->confidence = where.confidence;
        op->location_text = where.location_text;
    }
    if (rc) {
        call_op_free(op);
        return rc;
    }
    op->caller = g_strdup(json_string_value(caller));
    op->text = g_strdup(text ? json_string_value(text) : "");
    if (!op->location_text)
        op->location_text = g_strdup("");
    op->call_taker = g_strdup(call_taker);
    op->agency = g_strdup(agency);
    op->source = g_strdup(source);
    json_t *where = d->city ? gis_reverse(d->city, op->lon, op->lat) : NULL;
    op->address = g_strdup(where ? json_string_value(json_object_get(where, "text")) : "");
    if (where) {
        char *districts = json_dumps(json_object_get(where, "districts"), JSON_COMPACT);
        op->districts = g_strdup(districts);
        free(districts);
    } else {
        op->districts = g_strdup("[]");
    }
    json_decref(where);
    op->done = done;
    op->arg = arg;
    rc = core_store_write(d->store, call_write, call_done, op);
    if (rc)
        call_op_free(op);
    return rc;
}

/* ---- reads ---- */

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
        json_t *inc = incident_row(s);
        if (visible(op->agencies, inc))
            json_array_append_new(op->result, inc);
        else
            json_decref(inc);
    }
    sqlite3_finalize(s);
}

static json_t *hazard_row(sqlite3_stmt *s, double distance)
{
    char at[32];
    core_iso8601(sqlite3_column_int64(s, 8), at, sizeof at);
    char *id = ext_id('H', sqlite3_column_int64(s, 0));
    json_t *j = json_pack("{sss{sfsf}sfsssssssssssf}", "id", id, "location", "lon",
                          sqlite3_column_double(s, 1), "lat", sqlite3_column_double(s, 2),
                          "radius_m", sqlite3_column_double(s, 3), "kind", col_text(s, 4), "text",
                          col_text(s, 5), "location_text", col_text(s, 6), "author", col_text(s, 7),
                          "created_at", at, "distance_m", round(distance * 10) / 10);
    g_free(id);
    return j;
}

/* Hazards whose circle comes within `extra` metres of a point, nearest first. */
static json_t *hazards_near(sqlite3 *db, double lon, double lat, double extra)
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
        double d = distance_m(lon, lat, sqlite3_column_double(s, 1), sqlite3_column_double(s, 2));
        if (d <= sqlite3_column_double(s, 3) + extra)
            json_array_append_new(out, hazard_row(s, d));
    }
    sqlite3_finalize(s);
    return out;
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
        op->result = incident_row(s);
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
        char *cid = ext_id('C', sqlite3_column_int64(s, 0));
        json_array_append_new(
            calls,
            json_pack("{sssssssss{sfsfsssf}ssssss}", "id", cid, "line", col_text(s, 1), "caller",
                      col_text(s, 2), "received_at", at, "location", "lon",
                      sqlite3_column_double(s, 4), "lat", sqlite3_column_double(s, 5), "text",
                      col_text(s, 6), "confidence", sqlite3_column_double(s, 7), "category",
                      col_text(s, 8), "text", col_text(s, 9), "call_taker", col_text(s, 10)));
        g_free(cid);
    }
    sqlite3_finalize(s);
    json_object_set_new(op->result, "calls", calls);
    json_t *timeline = json_array();
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
        json_t *data = json_loads(col_text(s, 4), 0, NULL);
        json_object_del(data, "agencies");
        json_array_append_new(timeline, json_pack("{sIsssssssO}", "seq",
                                                  (json_int_t)sqlite3_column_int64(s, 0), "at", at,
                                                  "type", col_text(s, 2), "actor", col_text(s, 3),
                                                  "data", data ? data : json_null()));
        json_decref(data);
    }
    sqlite3_finalize(s);
    json_object_set_new(op->result, "timeline", timeline);
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
        char *other = ext_id('I', sqlite3_column_int64(s, 1));
        json_array_append_new(links,
                              json_pack("{ssss}", "kind", col_text(s, 0), "incident", other));
        g_free(other);
    }
    sqlite3_finalize(s);
    json_object_set_new(op->result, "links", links);
    json_t *loc = json_object_get(op->result, "location");
    json_object_set_new(op->result, "hazards",
                        hazards_near(db, json_number_value(json_object_get(loc, "lon")),
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

/* ---- updates ---- */

typedef struct {
    int64_t id;
    char *status, *level, *note, *actor, *source;
    int priority;
    char *why; /* a refusal found in the writer */
    json_t *result;
    disp_json_done done;
    void *arg;
} update_op;

static int status_index(const char *s)
{
    for (int i = 0; statuses[i]; i++)
        if (strcmp(statuses[i], s) == 0)
            return i;
    return -1;
}

/* Forward along new → … → closed, or to cancelled from any open status. */
static int transition_ok(const char *from, const char *to)
{
    int f = status_index(from), t = status_index(to);
    if (f < 0 || t < 0 || f >= 5 || t == 7)
        return 0; /* closed, cancelled and merged are final; merging has its own call */
    if (t == 6)
        return 1;
    return t > f;
}

static int emit_change(core_txn *txn, update_op *op, json_t *inc, const char *type, json_t *data)
{
    char subject[32];
    g_snprintf(subject, sizeof subject, "incident/%" G_GINT64_FORMAT, op->id);
    char **ag = disp_incident_agencies(inc);
    char *joint = g_strjoinv(",", ag + 1);
    core_event *ev = core_event_new(type, op->actor, subject, with_agencies(data, ag[0], joint));
    g_strfreev(ag);
    g_free(joint);
    core_event_set_source(ev, op->source);
    return core_txn_emit(txn, ev);
}

static int update_write(core_txn *txn, void *arg)
{
    update_op *op = arg;
    json_t *inc = NULL;
    int rc = read_incident(txn, op->id, &inc);
    if (rc)
        return rc;
    const char *status = json_string_value(json_object_get(inc, "status"));
    int64_t now = core_now_ms();
    if (op->status && !transition_ok(status, op->status)) {
        op->why = g_strdup_printf("an incident that is %s cannot become %s", status, op->status);
        json_decref(inc);
        return CORE_ECONFLICT;
    }
    int prio = (int)json_integer_value(json_object_get(inc, "priority"));
    if (op->priority && op->priority > prio) {
        op->why = g_strdup_printf("priority can only be raised (it is %d; 1 is the highest)", prio);
        json_decref(inc);
        return CORE_ECONFLICT;
    }
    sqlite3_stmt *s = core_txn_prepare(
        txn,
        "UPDATE incidents SET status = coalesce(?1, status), priority = coalesce(?2, priority),"
        " level = coalesce(?3, level), updated_ms = ?4,"
        " closed_ms = CASE WHEN ?1 IN ('closed', 'cancelled') THEN ?4 ELSE closed_ms END"
        " WHERE id = ?5");
    if (!s) {
        json_decref(inc);
        return CORE_EDB;
    }
    if (op->status)
        sqlite3_bind_text(s, 1, op->status, -1, SQLITE_STATIC);
    if (op->priority)
        sqlite3_bind_int(s, 2, op->priority);
    if (op->level)
        sqlite3_bind_text(s, 3, op->level, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, now);
    sqlite3_bind_int64(s, 5, op->id);
    rc = core_txn_check(txn, sqlite3_step(s));
    if (!rc && op->status && strcmp(op->status, status) != 0)
        rc = emit_change(txn, op, inc, "incident.status",
                         json_pack("{ssss}", "from", status, "to", op->status));
    if (!rc && op->priority && op->priority != prio)
        rc = emit_change(txn, op, inc, "incident.priority",
                         json_pack("{sisi}", "from", prio, "to", op->priority));
    if (!rc && op->level)
        rc = emit_change(txn, op, inc, "incident.level", json_pack("{ss}", "to", op->level));
    if (!rc && op->note)
        rc = emit_change(txn, op, inc, "incident.note", json_pack("{ss}", "text", op->note));
    json_decref(inc);
    if (!rc)
        rc = read_incident(txn, op->id, &op->result);
    return rc;
}

static void update_done(int rc, GPtrArray *events, void *arg)
{
    update_op *op = arg;
    if (rc == CORE_ECONFLICT && op->why) {
        op->done(rc, json_pack("{ss}", "message", op->why), op->arg);
    } else {
        op->done(rc, rc ? NULL : op->result, op->arg);
        op->result = NULL;
    }
    json_decref(op->result);
    g_free(op->status);
    g_free(op->level);
    g_free(op->note);
    g_free(op->actor);
    g_free(op->source);
    g_free(op->why);
    g_free(op);
}

int disp_incident_update(disp_incidents *d, int64_t id, const json_t *body, const char *actor,
                         const char *source, disp_json_done done, void *arg, char **field,
                         char **message)
{
    json_t *status = json_object_get(body, "status"), *priority = json_object_get(body, "priority");
    json_t *level = json_object_get(body, "level"), *note = json_object_get(body, "note");
    if (!status && !priority && !level && !note)
        return refuse(field, message, "status",
                      g_strdup("give \"status\", \"priority\", \"level\" or \"note\""));
    if (status && (!json_is_string(status) || status_index(json_string_value(status)) < 0))
        return refuse(field, message, "status",
                      g_strdup("one of new, dispatched, en_route, on_scene, under_control,"
                               " closed, cancelled"));
    if (priority && (!json_is_integer(priority) || json_integer_value(priority) < 1 ||
                     json_integer_value(priority) > 5))
        return refuse(field, message, "priority", g_strdup("1 (highest) to 5"));
    if (level && (!json_is_string(level) || !g_strv_contains(levels, json_string_value(level))))
        return refuse(field, message, "level", g_strdup("I, II, III, IV, or \"\" for none"));
    if (note && (!json_is_string(note) || json_string_length(note) == 0 ||
                 json_string_length(note) > DISP_CALL_TEXT_MAX))
        return refuse(field, message, "note",
                      g_strdup_printf("1 to %d bytes of text", DISP_CALL_TEXT_MAX));
    update_op *op = g_new0(update_op, 1);
    op->id = id;
    op->status = g_strdup(json_string_value(status));
    op->priority = priority ? (int)json_integer_value(priority) : 0;
    op->level = g_strdup(json_string_value(level));
    op->note = g_strdup(json_string_value(note));
    op->actor = g_strdup(actor);
    op->source = g_strdup(source);
    op->done = done;
    op->arg = arg;
    int rc = core_store_write(d->store, update_write, update_done, op);
    if (rc) {
        g_free(op->status);
        g_free(op->level);
        g_free(op->note);
        g_free(op->actor);
        g_free(op->source);
        g_free(op);
    }
    return rc;
}

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
    json_t *inc = NULL;
    int rc = read_incident(txn, id, &inc);
    if (rc) {
        json_decref(data);
        return rc;
    }
    update_op u = {.id = id, .actor = op->actor, .source = op->source};
    rc = emit_change(txn, &u, inc, type, data);
    json_decref(inc);
    return rc;
}

static int is_open(core_txn *txn, int64_t id, char **status)
{
    json_t *inc = NULL;
    if (read_incident(txn, id, &inc))
        return 0;
    *status = g_strdup(json_string_value(json_object_get(inc, "status")));
    json_decref(inc);
    int i = status_index(*status);
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
    char *from = ext_id('I', op->id), *into = ext_id('I', op->into);
    if (!rc)
        rc = link_event(txn, op, op->id, "incident.merged", json_pack("{ss}", "into", into));
    if (!rc)
        rc = link_event(txn, op, op->into, "incident.merged_in", json_pack("{ss}", "from", from));
    g_free(from);
    g_free(into);
    g_free(from_status);
    g_free(into_status);
    if (!rc)
        rc = read_incident(txn, op->into, &op->result);
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
    char *t = ext_id('I', target), *f = ext_id('I', op->id);
    if (!rc)
        rc = link_event(txn, op, op->id, "incident.split",
                        json_pack("{sssi}", "into", t, "calls", (int)op->calls->len));
    if (!rc)
        rc = link_event(txn, op, target, origin == target ? "incident.restored" : "incident.opened",
                        json_pack("{ss}", "split_from", f));
    g_free(t);
    g_free(f);
    if (!rc)
        rc = read_incident(txn, target, &op->result);
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
        if (strcmp(col_text(s, 1), "new") == 0 && age >= (int64_t)a->d->unassigned_s * 1000) {
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
    json_t *inc = NULL;
    if ((rc = read_incident(txn, due->id, &inc)))
        return rc;
    update_op u = {.id = due->id, .actor = "system", .source = "local"};
    rc = emit_change(txn, &u, inc, "incident.alarm",
                     json_pack("{ss}", "kind", alarm_kinds[due->kind]));
    json_decref(inc);
    return rc;
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

/* ---- hazards at an address ---- */

typedef struct {
    place where;
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
    char subject[32], *hid = ext_id('H', op->id);
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
        rc = refuse(field, message, "kind",
                    g_strdup("what the hazard is, 1 to 40 bytes (\"gas-cylinders\", \"dog\", …)"));
    else if (text && (!json_is_string(text) || json_string_length(text) > 1000))
        rc = refuse(field, message, "text", g_strdup("at most 1,000 bytes of text"));
    else if (radius && (!json_is_number(radius) || json_number_value(radius) < 1 ||
                        json_number_value(radius) > 500))
        rc = refuse(field, message, "radius_m", g_strdup("1 to 500 metres"));
    else
        rc = locate(d, &op->where, json_object_get(body, "location"), field, message);
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
    op->result = hazards_near(db, op->lon, op->lat, op->extra);
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

static int hazard_remove_write(core_txn *txn, void *arg)
{
    hazard_op *op = arg;
    sqlite3_stmt *s =
        core_txn_prepare(txn, "UPDATE hazards SET removed_ms = ? WHERE id = ? AND removed_ms = 0");
    if (!s)
        return CORE_EDB;
    sqlite3_bind_int64(s, 1, core_now_ms());
    sqlite3_bind_int64(s, 2, op->id);
    int rc = core_txn_check(txn, sqlite3_step(s));
    if (rc)
        return rc;
    if (sqlite3_changes(core_txn_db(txn)) == 0)
        return CORE_ENOTFOUND;
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
