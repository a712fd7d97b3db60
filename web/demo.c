/*
 * demo.c — the demo's accounts and its simulated duty officer, who writes a
 * realistic journal entry at a fixed interval through the same path as the
 * API (validation, store, bus), so the demo exercises the real system rather
 * than a side door.
 */
#include "demo.h"

#include "../core/auth.h"
#include "../core/core.h"
#include "../core/log.h"
#include "../dispatch/dispatch.h"
#include "../dispatch/roads.h"
#include "../dispatch/units.h"
#include "../gis/gis.h"
#include "../video/cameras.h"

#include <glib.h>
#include <math.h>
#include <sodium.h>
#include <string.h>

/* One account per kind of user, all with the published demo password. */
static const struct {
    const char *username, *display_name, *agency, *roles, *leads;
} demo_users[] = {
    {"operator", "System Operator 系统运维", "command", "operator", ""},
    {"duty", "Zhang Wei 张伟", "command", "dispatcher,supervisor", ""},
    {"calltaker", "Liu Yang 刘洋", "command", "call_taker", ""},
    {"police", "Wang Fang 王芳", "police", "dispatcher", ""},
    {"fire", "Li Na 李娜", "fire", "dispatcher", ""},
    {"ems", "Chen Jie 陈杰", "ems", "dispatcher", ""},
    {"water", "Zhao Lei 赵磊", "water", "crew", ""},
    {"leader", "Deputy Mayor 副市长", "government", "leader", "*"},
    {"auditor", "Sun Li 孙丽", "government", "auditor", ""},
};

typedef struct {
    char hashes[G_N_ELEMENTS(demo_users)][128];
    int created;
} accounts_op;

/* Creates the demo accounts when the state has no users at all. */
static int accounts_write(core_txn *txn, void *arg)
{
    accounts_op *op = arg;
    sqlite3_stmt *s = core_txn_prepare(txn, "SELECT count(*) FROM users");
    if (!s || sqlite3_step(s) != SQLITE_ROW)
        return CORE_EDB;
    int64_t existing = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    if (existing > 0)
        return 0;
    for (size_t i = 0; i < G_N_ELEMENTS(demo_users); i++) {
        core_user u = {0};
        u.username = (char *)demo_users[i].username;
        u.display_name = (char *)demo_users[i].display_name;
        u.agency = (char *)demo_users[i].agency;
        u.leads = (char *)demo_users[i].leads;
        char *err = NULL;
        if (core_roles_parse(demo_users[i].roles, &u.roles, &err)) {
            g_free(err);
            return CORE_EINVAL;
        }
        u.password_hash = op->hashes[i];
        int64_t id;
        int rc = core_user_insert(txn, &u, "demo", "local", &id);
        if (rc)
            return rc;
    }
    op->created = 1;
    return 0;
}

static void accounts_done(int rc, GPtrArray *events, void *arg)
{
    accounts_op *op = arg;
    if (rc)
        log_error("demo.accounts", "error=\"%s\"", core_strerror(rc));
    else if (op->created)
        log_warn("demo.accounts",
                 "users=%zu password=\"%s\" note=\"demo accounts with a published password;"
                 " never use --demo with real data\"",
                 G_N_ELEMENTS(demo_users), WEB_DEMO_PASSWORD);
    sodium_memzero(op, sizeof *op);
    g_free(op);
}

int web_demo_accounts(core_store *store)
{
    accounts_op *op = g_new0(accounts_op, 1);
    for (size_t i = 0; i < G_N_ELEMENTS(demo_users); i++) {
        int rc = core_password_hash(WEB_DEMO_PASSWORD, op->hashes[i]);
        if (rc) {
            g_free(op);
            return rc;
        }
    }
    int rc = core_store_write(store, accounts_write, accounts_done, op);
    if (rc)
        g_free(op);
    return rc;
}

/* ---- the fleet ---- */

static const struct {
    const char *station_kinds; /* "" for units at the centre */
    int per_station;
    const char *kind, *agency, *prefix, *capabilities;
} fleet[] = {
    {"fire", 2, "engine", "fire", "F-ENG", "pump;water;foam"},
    {"fire", 1, "ladder", "fire", "F-LAD", "aerial_ladder;rescue"},
    {"police", 3, "patrol_car", "police", "P-CAR", "patrol"},
    {"hospital,ambulance", 2, "ambulance", "ems", "A-AMB", "als"},
    {"", 2, "tow_truck", "traffic", "T-TOW", "towing"},
    {"", 2, "water_crew", "water", "W-CREW", "valve_keys;pumps"},
    {"", 2, "gas_crew", "gas", "G-CREW", "gas_detector"},
};

typedef struct {
    json_t *features;
    int device;
} fleet_build;

static void add_unit(fleet_build *b, const char *call_sign, size_t f, const char *station,
                     double lon, double lat)
{
    char device[16];
    g_snprintf(device, sizeof device, "demo-%04d", ++b->device);
    json_array_append_new(b->features,
                          json_pack("{sss{ssssssssssss}s{sss[ff]}}", "type", "Feature",
                                    "properties", "call_sign", call_sign, "kind", fleet[f].kind,
                                    "agency", fleet[f].agency, "station", station, "device", device,
                                    "capabilities", fleet[f].capabilities, "geometry", "type",
                                    "Point", "coordinates", lon, lat));
}

/* n units of fleet line f at a place, numbered on from *seq. */
static void add_units(fleet_build *b, size_t f, int n, int *seq, const char *station, double lon,
                      double lat)
{
    for (int i = 0; i < n; i++) {
        char call_sign[32];
        g_snprintf(call_sign, sizeof call_sign, "%s-%02d", fleet[f].prefix, ++*seq);
        add_unit(b, call_sign, f, station, lon, lat);
    }
}

static void fleet_done(int rc, json_t *result, void *arg)
{
    if (rc)
        log_warn("demo.fleet", "error=\"%s\"", core_strerror(rc));
    else
        log_info("demo.fleet", "units=%" JSON_INTEGER_FORMAT,
                 json_integer_value(json_object_get(result, "created")));
    json_decref(result);
}

void web_demo_fleet(disp_units *units, gis_city *city)
{
    if (!units || !city || disp_units_count(units) > 0)
        return;
    json_t *info = gis_city_info(city), *bb = json_object_get(info, "bbox");
    json_t *centre = json_object_get(info, "center");
    double c_lon = json_number_value(json_array_get(centre, 0));
    double c_lat = json_number_value(json_array_get(centre, 1));
    json_t *stations = gis_points_in_box(city, "stations", json_number_value(json_array_get(bb, 0)),
                                         json_number_value(json_array_get(bb, 1)),
                                         json_number_value(json_array_get(bb, 2)),
                                         json_number_value(json_array_get(bb, 3)), 10000);
    fleet_build b = {json_array(), 0};
    for (size_t f = 0; f < G_N_ELEMENTS(fleet); f++) {
        int seq = 0;
        char **kinds = g_strsplit(fleet[f].station_kinds, ",", -1);
        size_t i;
        json_t *st;
        json_array_foreach(stations, i, st)
        {
            const char *kind = json_string_value(json_object_get(st, "kind"));
            const char *name = json_string_value(json_object_get(st, "name"));
            if (!kind || !*fleet[f].station_kinds ||
                !g_strv_contains((const char *const *)kinds, kind))
                continue;
            char *station = name && *name ? g_strndup(name, 100)
                                          : g_strdup_printf("%s station %zu", kind, i + 1);
            add_units(&b, f, fleet[f].per_station, &seq, station,
                      json_number_value(json_object_get(st, "lon")),
                      json_number_value(json_object_get(st, "lat")));
            g_free(station);
        }
        g_strfreev(kinds);
        if (seq == 0) /* none of the kind in this city: a few at the centre */
            add_units(&b, f, 2, &seq, "City centre", c_lon, c_lat);
    }
    json_t *doc = json_pack("{ssso}", "type", "FeatureCollection", "features", b.features);
    json_t *rows = NULL;
    char *where = NULL, *field = NULL, *message = NULL;
    if (disp_units_parse_geojson(units, doc, &rows, &where, &field, &message) == 0)
        disp_units_import(units, rows, NULL, "demo", "local", fleet_done, NULL);
    else
        log_warn("demo.fleet", "where=%s field=%s error=\"%s\"", where, field, message);
    g_free(where);
    g_free(field);
    g_free(message);
    json_decref(doc);
    json_decref(stations);
    json_decref(info);
}

/* ---- the cameras ---- */

static const struct {
    const char *name, *agency;
    double bearing; /* of the spot from the centre */
    int ptz;
} demo_cameras[] = {
    {"Demo street camera 1", "police", 45, 1},
    {"Demo street camera 2", "traffic", 135, 0},
    {"Demo street camera 3", "police", 225, 0},
    {"Demo street camera 4", "traffic", 315, 1},
};

#define DEMO_SPOT_M 250.0
#define DEMO_BACK_M 30.0

/* The point d metres from (lon, lat) at a bearing (locally flat). */
static void step(double *lon, double *lat, double bearing, double d)
{
    double r = 6371008.8, b = bearing * M_PI / 180;
    *lon += d * sin(b) / (r * cos(*lat * M_PI / 180)) * 180 / M_PI;
    *lat += d * cos(b) / r * 180 / M_PI;
}

/* The bearing from one place to another (degrees from north). */
static double bearing_to(double lon, double lat, double to_lon, double to_lat)
{
    vid_cone from = {lon, lat, 0, 360, VID_RANGE_MAX_M};
    double d = 0, b = 0;
    vid_cone_locate(&from, to_lon, to_lat, &d, &b);
    return b;
}

static void cameras_done(int rc, json_t *result, void *arg)
{
    if (rc)
        log_warn("demo.cameras", "error=\"%s\"", core_strerror(rc));
    else
        log_info("demo.cameras", "cameras=%" JSON_INTEGER_FORMAT,
                 json_integer_value(json_object_get(result, "created")));
    json_decref(result);
}

void web_demo_cameras(vid_cameras *cameras, gis_city *city, disp_roads *roads)
{
    if (!cameras || !city || vid_cameras_count(cameras) > 0)
        return;
    json_t *info = gis_city_info(city), *centre = json_object_get(info, "center");
    double c_lon = json_number_value(json_array_get(centre, 0));
    double c_lat = json_number_value(json_array_get(centre, 1));
    json_t *features = json_array();
    for (size_t i = 0; i < G_N_ELEMENTS(demo_cameras); i++) {
        /* A street near a spot around the centre, and the camera a little
         * way back from it towards the centre, looking at it. */
        double s_lon = c_lon, s_lat = c_lat;
        step(&s_lon, &s_lat, demo_cameras[i].bearing, DEMO_SPOT_M);
        disp_roads_pos pos;
        if (roads && disp_roads_snap(roads, s_lon, s_lat, DEMO_SPOT_M, &pos) == 0) {
            s_lon = pos.lon;
            s_lat = pos.lat;
        }
        double back = bearing_to(s_lon, s_lat, c_lon, c_lat), lon = s_lon, lat = s_lat;
        step(&lon, &lat, back, DEMO_BACK_M);
        char url[64];
        g_snprintf(url, sizeof url, "rtsp://127.0.0.1:8554/cam%zu", i + 1);
        json_array_append_new(
            features,
            json_pack("{sss{sssssfsfsfsfsssbss}s{sss[ff]}}", "type", "Feature", "properties",
                      "name", demo_cameras[i].name, "agency", demo_cameras[i].agency, "height_m",
                      6.0, "heading", round(fmod(back + 180, 360) * 10) / 10, "fov", 70.0,
                      "range_m", VID_RANGE_DEFAULT_M, "rtsp_url", url, "ptz", demo_cameras[i].ptz,
                      "codec", "h264", "geometry", "type", "Point", "coordinates",
                      round(lon * 1e7) / 1e7, round(lat * 1e7) / 1e7));
    }
    json_t *doc = json_pack("{ssso}", "type", "FeatureCollection", "features", features);
    json_t *rows = NULL;
    char *where = NULL, *field = NULL, *message = NULL;
    if (vid_cameras_parse_geojson(cameras, doc, &rows, &where, &field, &message) == 0)
        vid_cameras_import(cameras, rows, NULL, "demo", "local", cameras_done, NULL);
    else
        log_warn("demo.cameras", "where=%s field=%s error=\"%s\"", where, field, message);
    g_free(where);
    g_free(field);
    g_free(message);
    json_decref(doc);
    json_decref(info);
}

/* ---- the duty officer ---- */

struct web_demo {
    core_store *store;
    guint timer;
    unsigned next;
};

static const char *const script[][2] = {
    {"note",
     "Shift check: all consoles staffed, radio trunk test passed. 值班检查：席位到岗，通信正常。"},
    {"instruction",
     "Heavy rain expected after 18:00: pre-position pumps at the harbour underpass."},
    {"note", "12345 hotline: noise complaints rising near the stadium after the match."},
    {"handover",
     "Handover to night shift: two open water-main repairs, traffic diversion on the coast road."},
    {"note", "Hospital A reports emergency department at 85% capacity. 医院急诊接近满负荷。"},
};

static void written(int rc, json_t *entry, void *arg)
{
    if (rc)
        log_warn("demo.journal", "error=\"%d\"", rc);
    json_decref(entry);
}

static gboolean tick(gpointer p)
{
    web_demo *d = p;
    const char *const *line = script[d->next++ % G_N_ELEMENTS(script)];
    json_t *body = json_pack("{ssss}", "kind", line[0], "text", line[1]);
    char *field = NULL, *msg = NULL;
    disp_journal_add(d->store, body, "demo.duty-officer", "command", "local", written, NULL, &field,
                     &msg);
    g_free(field);
    g_free(msg);
    json_decref(body);
    return G_SOURCE_CONTINUE;
}

web_demo *web_demo_start(core_store *store, int interval_ms)
{
    web_demo *d = g_new0(web_demo, 1);
    d->store = store;
    d->timer = g_timeout_add(interval_ms, tick, d);
    log_info("demo.start", "journal_interval_ms=%d note=\"simulated duty officer\"", interval_ms);
    tick(d);
    return d;
}

void web_demo_stop(web_demo *demo)
{
    if (!demo)
        return;
    g_source_remove(demo->timer);
    g_free(demo);
}
