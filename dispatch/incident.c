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
#include "internal.h"

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
    /* Fusion looks for open incidents of a family within a few hundred
     * metres: the latitude strip narrows the scan, and the index covers
     * what is checked next, so no table row is read for a miss. */
    {"dispatch", 7,
     "DROP INDEX incidents_open;"
     "CREATE INDEX incidents_fuse ON incidents(family, closed_ms, lat, lon, last_call_ms)"},
};

static const char *const lines[] = {"110", "119", "120", "122", "12345", NULL};
/* Open ones first: index < 5 is open. */
static const char *const statuses[] = {"new",       "dispatched",    "en_route",
                                       "on_scene",  "under_control", "closed",
                                       "cancelled", "merged",        NULL};
static const char *const levels[] = {"", "I", "II", "III", "IV", NULL};

void disp_incidents_register(core_store *st)
{
    core_store_add_migrations(st, migrations, G_N_ELEMENTS(migrations));
}

disp_incidents *disp_incidents_new(core_store *st, core_bus *bus, core_loop *loop,
                                   disp_catalogue *cat, gis_city *city)
{
    disp_incidents *d = g_new0(disp_incidents, 1);
    d->store = st;
    d->bus = bus;
    d->loop = loop;
    d->cat = cat;
    d->city = city;
    if (city) {
        json_t *info = gis_city_info(city), *bb = json_object_get(info, "bbox");
        for (int i = 0; i < 4; i++)
            d->bbox[i] = json_number_value(json_array_get(bb, (size_t)i));
        json_decref(info);
    }
    disp__board_start(d);
    return d;
}

void disp_incidents_free(disp_incidents *d)
{
    if (!d)
        return;
    if (d->timer)
        g_source_remove(d->timer);
    disp__board_stop(d);
    g_free(d);
}

char *disp__ext_id(char prefix, int64_t id)
{
    return g_strdup_printf("%c-%" G_GINT64_FORMAT, prefix, id);
}

/* ---- JSON of rows ---- */

const char *disp__col_text(sqlite3_stmt *s, int i)
{
    const char *t = (const char *)sqlite3_column_text(s, i);
    return t ? t : "";
}

json_t *disp__incident_row(sqlite3_stmt *s)
{
    char opened[32], updated[32], closed[32];
    core_iso8601(sqlite3_column_int64(s, 13), opened, sizeof opened);
    core_iso8601(sqlite3_column_int64(s, 15), updated, sizeof updated);
    char *id = disp__ext_id('I', sqlite3_column_int64(s, 0));
    json_t *joint = json_array();
    char **parts = g_strsplit(disp__col_text(s, 11), ",", -1);
    for (char **p = parts; *p; p++)
        if (**p)
            json_array_append_new(joint, json_string(*p));
    g_strfreev(parts);
    json_t *j = json_pack(
        "{sssssssIsssss{sfsf}sssosssosIssss}", "id", id, "type", disp__col_text(s, 1), "family",
        disp__col_text(s, 2), "priority", (json_int_t)sqlite3_column_int64(s, 3), "level",
        disp__col_text(s, 4), "status", disp__col_text(s, 5), "location", "lon",
        sqlite3_column_double(s, 6), "lat", sqlite3_column_double(s, 7), "address",
        disp__col_text(s, 8), "districts", json_loads(disp__col_text(s, 9), 0, NULL), "agency",
        disp__col_text(s, 10), "joint", joint, "callers", (json_int_t)sqlite3_column_int64(s, 12),
        "opened_at", opened, "updated_at", updated);
    if (sqlite3_column_int64(s, 16)) {
        core_iso8601(sqlite3_column_int64(s, 16), closed, sizeof closed);
        json_object_set_new(j, "closed_at", json_string(closed));
    }
    json_t *alarms = json_array();
    char **kinds = g_strsplit(disp__col_text(s, 18), ",", -1);
    for (char **k = kinds; *k; k++)
        if (**k)
            json_array_append_new(alarms, json_string(*k));
    g_strfreev(kinds);
    json_object_set_new(j, "alarms", alarms);
    if (sqlite3_column_int64(s, 17)) {
        char *into = disp__ext_id('I', sqlite3_column_int64(s, 17));
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

double disp__distance_m(double lon1, double lat1, double lon2, double lat2)
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
        double dd = disp__distance_m(op->lon, op->lat, sqlite3_column_double(s, 1),
                                     sqlite3_column_double(s, 2));
        if (dd <= best_d) {
            best_d = dd;
            best = sqlite3_column_int64(s, 0);
        }
    }
    sqlite3_reset(s);
    (void)now;
    return best;
}

int disp__read_incident(core_txn *txn, int64_t id, json_t **out)
{
    sqlite3_stmt *s =
        core_txn_prepare(txn, "SELECT " INCIDENT_COLUMNS " FROM incidents WHERE id = ?");
    if (!s)
        return CORE_EDB;
    sqlite3_bind_int64(s, 1, id);
    int rc = sqlite3_step(s) == SQLITE_ROW ? 0 : CORE_ENOTFOUND;
    if (!rc)
        *out = disp__incident_row(s);
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
    char *id = disp__ext_id('C', op->call_id), *iid = disp__ext_id('I', op->incident_id);
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
    if ((rc = disp__read_incident(txn, op->incident_id, &inc)))
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
    core_event_set_state(ev, json_incref(inc));
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

/* Worker (or loop without a city): the call's address and districts. */
static void call_place(void *arg)
{
    call_op *op = arg;
    json_t *where = op->d->city ? gis_reverse(op->d->city, op->lon, op->lat) : NULL;
    op->address = g_strdup(where ? json_string_value(json_object_get(where, "text")) : "");
    if (where) {
        char *districts = json_dumps(json_object_get(where, "districts"), JSON_COMPACT);
        op->districts = g_strdup(districts);
        free(districts);
    } else {
        op->districts = g_strdup("[]");
    }
    json_decref(where);
}

/* Loop: placed; now the writer decides fusion. */
static void call_placed(void *arg)
{
    call_op *op = arg;
    int rc = core_store_write(op->d->store, call_write, call_done, op);
    if (rc) {
        op->done(rc, NULL, op->arg);
        call_op_free(op);
    }
}

int disp__refuse(char **field, char **message, const char *f, char *msg)
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

/* Coordinates, or a text resolved by the city's search. */
int disp__locate(disp_incidents *d, disp__place *op, json_t *loc, char **field, char **message)
{
    if (!json_is_object(loc))
        return disp__refuse(field, message, "location",
                            g_strdup("\"location\" is {\"lon\":…,\"lat\":…} or {\"text\":\"…\"}"));
    json_t *lon = json_object_get(loc, "lon"), *lat = json_object_get(loc, "lat");
    const char *text = json_string_value(json_object_get(loc, "text"));
    if (lon || lat) {
        if (!json_is_number(lon) || !json_is_number(lat) ||
            !gis_lonlat_valid(json_number_value(lon), json_number_value(lat)))
            return disp__refuse(field, message, "location",
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
                return disp__refuse(field, message, "location",
                                    g_strdup_printf("%.5f, %.5f is outside %s", op->lat, op->lon,
                                                    gis_city_name(d->city)));
        }
        if (text)
            op->location_text = g_strndup(text, 200);
        return 0;
    }
    if (!text || !*text || strlen(text) > 200 || !g_utf8_validate(text, -1, NULL))
        return disp__refuse(field, message, "location.text", g_strdup("1 to 200 bytes of text"));
    if (!d->city)
        return disp__refuse(
            field, message, "location.text",
            g_strdup("no city is loaded to resolve a disp__place text: send lon/lat"));
    json_t *hits = gis_search(d->city, text, 1);
    json_t *best = json_array_get(hits, 0);
    if (!best) {
        json_decref(hits);
        return disp__refuse(field, message, "location.text",
                            g_strdup_printf("no street or disp__place matches '%s'", text));
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
        rc = disp__refuse(field, message, "line", g_strdup("one of 110, 119, 120, 122, 12345"));
    else if (!json_is_string(caller) || json_string_length(caller) == 0 ||
             json_string_length(caller) > 32)
        rc = disp__refuse(field, message, "caller",
                          g_strdup("the caller's number: 1 to 32 characters"));
    else if (parse_time(json_object_get(body, "received_at"), &op->received_ms) ||
             op->received_ms > core_now_ms() + 300000)
        rc = disp__refuse(field, message, "received_at",
                          g_strdup("an ISO 8601 time with its offset, not in the future"));
    else if (!(op->cat = disp_category_find(d->cat, category)))
        rc = disp__refuse(field, message, "category",
                          g_strdup_printf("unknown category '%s' (see GET /api/v1/catalogue)",
                                          category ? category : ""));
    else if (text && (!json_is_string(text) || json_string_length(text) > DISP_CALL_TEXT_MAX))
        rc = disp__refuse(field, message, "text",
                          g_strdup_printf("free text of at most %d bytes", DISP_CALL_TEXT_MAX));
    else {
        disp__place where = {0};
        rc = disp__locate(d, &where, json_object_get(body, "location"), field, message);
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
    op->done = done;
    op->arg = arg;
    /* The address and districts come from the GIS layer on a worker: the
     * loop thread only validates and hands over. */
    if (d->city && d->loop) {
        rc = core_work_submit(d->loop, call_place, call_placed, op);
    } else {
        call_place(op);
        rc = core_store_write(d->store, call_write, call_done, op);
    }
    if (rc)
        call_op_free(op);
    return rc;
}

/* ---- updates ---- */

int disp__status_index(const char *s)
{
    for (int i = 0; statuses[i]; i++)
        if (strcmp(statuses[i], s) == 0)
            return i;
    return -1;
}

/* Forward along new → … → closed, or to cancelled from any open status. */
static int transition_ok(const char *from, const char *to)
{
    int f = disp__status_index(from), t = disp__status_index(to);
    if (f < 0 || t < 0 || f >= 5 || t == 7)
        return 0; /* closed, cancelled and merged are final; merging has its own call */
    if (t == 6)
        return 1;
    return t > f;
}

int disp__emit_change(core_txn *txn, disp__update_op *op, const char *type, json_t *data)
{
    json_t *inc = NULL;
    int rc = disp__read_incident(txn, op->id, &inc);
    if (rc) {
        json_decref(data);
        return rc;
    }
    char subject[32];
    g_snprintf(subject, sizeof subject, "incident/%" G_GINT64_FORMAT, op->id);
    char **ag = disp_incident_agencies(inc);
    char *joint = g_strjoinv(",", ag + 1);
    core_event *ev = core_event_new(type, op->actor, subject, with_agencies(data, ag[0], joint));
    g_strfreev(ag);
    g_free(joint);
    core_event_set_source(ev, op->source);
    core_event_set_state(ev, inc);
    return core_txn_emit(txn, ev);
}

static int update_write(core_txn *txn, void *arg)
{
    disp__update_op *op = arg;
    json_t *inc = NULL;
    int rc = disp__read_incident(txn, op->id, &inc);
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
        rc = disp__emit_change(txn, op, "incident.status",
                               json_pack("{ssss}", "from", status, "to", op->status));
    if (!rc && op->priority && op->priority != prio)
        rc = disp__emit_change(txn, op, "incident.priority",
                               json_pack("{sisi}", "from", prio, "to", op->priority));
    if (!rc && op->level)
        rc = disp__emit_change(txn, op, "incident.level", json_pack("{ss}", "to", op->level));
    if (!rc && op->note)
        rc = disp__emit_change(txn, op, "incident.note", json_pack("{ss}", "text", op->note));
    json_decref(inc);
    if (!rc)
        rc = disp__read_incident(txn, op->id, &op->result);
    return rc;
}

static void update_done(int rc, GPtrArray *events, void *arg)
{
    disp__update_op *op = arg;
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
    json_decref(op->media);
    g_free(op);
}

static int media_write(core_txn *txn, void *arg)
{
    disp__update_op *op = arg;
    op->result = json_deep_copy(op->media);
    return disp__emit_change(txn, op, "incident.media", json_incref(op->media));
}

int disp_incident_media_add(disp_incidents *d, int64_t id, json_t *media, const char *actor,
                            const char *source, disp_json_done done, void *arg)
{
    disp__update_op *op = g_new0(disp__update_op, 1);
    op->id = id;
    op->media = media;
    op->actor = g_strdup(actor);
    op->source = g_strdup(source);
    op->done = done;
    op->arg = arg;
    int rc = core_store_write(d->store, media_write, update_done, op);
    if (rc) {
        json_decref(op->media);
        g_free(op->actor);
        g_free(op->source);
        g_free(op);
    }
    return rc;
}

int disp_incident_update(disp_incidents *d, int64_t id, const json_t *body, const char *actor,
                         const char *source, disp_json_done done, void *arg, char **field,
                         char **message)
{
    json_t *status = json_object_get(body, "status"), *priority = json_object_get(body, "priority");
    json_t *level = json_object_get(body, "level"), *note = json_object_get(body, "note");
    if (!status && !priority && !level && !note)
        return disp__refuse(field, message, "status",
                            g_strdup("give \"status\", \"priority\", \"level\" or \"note\""));
    if (status && (!json_is_string(status) || disp__status_index(json_string_value(status)) < 0))
        return disp__refuse(field, message, "status",
                            g_strdup("one of new, dispatched, en_route, on_scene, under_control,"
                                     " closed, cancelled"));
    if (priority && (!json_is_integer(priority) || json_integer_value(priority) < 1 ||
                     json_integer_value(priority) > 5))
        return disp__refuse(field, message, "priority", g_strdup("1 (highest) to 5"));
    if (level && (!json_is_string(level) || !g_strv_contains(levels, json_string_value(level))))
        return disp__refuse(field, message, "level", g_strdup("I, II, III, IV, or \"\" for none"));
    if (note && (!json_is_string(note) || json_string_length(note) == 0 ||
                 json_string_length(note) > DISP_CALL_TEXT_MAX))
        return disp__refuse(field, message, "note",
                            g_strdup_printf("1 to %d bytes of text", DISP_CALL_TEXT_MAX));
    disp__update_op *op = g_new0(disp__update_op, 1);
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
