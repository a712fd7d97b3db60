/*
 * main.c — the citycmd server: wires the modules, runs the loop, drains on
 * SIGTERM/SIGINT.
 *
 * Start-up order: config → loop → bus → store (migrations, memory rebuilt
 * from it) → Redis publisher → HTTP/WebSocket server → demo. Shutdown runs
 * in reverse after a drain: new requests get 503, WebSockets close with 1001,
 * and the loop keeps running until pending replies and queued writes are done
 * or --drain-timeout-ms passes. A second signal exits at once.
 */
#include "../core/auth.h"
#include "../dispatch/incident.h"
#include "../gis/gis.h"
#include "../core/session.h"
#include "../core/config.h"
#include "../core/core.h"
#include "../core/log.h"
#include "../dispatch/dispatch.h"
#include "../dispatch/avl.h"
#include "../dispatch/geofence.h"
#include "../dispatch/history.h"
#include "../dispatch/units.h"
#include "../dispatch/plans.h"
#include "../dispatch/roads.h"
#include "../dispatch/closures.h"
#include "../dispatch/pipes.h"
#include "../gis/pipes.h"
#include "../video/cameras.h"
#include "demo.h"
#include "gps.h"
#include "web.h"

#include <gdal.h>
#include <geos_c.h>
#include <glib-unix.h>
#include <gst/gst.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <libwebsockets.h>
#include <malloc.h>
#include <proj.h>
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    core_config cfg;
    core_loop *loop;
    core_bus *bus;
    core_store *store;
    core_redis *redis;
    core_sessions *sessions;
    gis_city *city;
    disp_catalogue *catalogue;
    disp_roads *roads;
    disp_plans *plans;
    disp_closures *closures;
    disp_pipes *pipes;
    vid_cameras *cameras;
    char *city_dir;
    disp_incidents *incidents;
    disp_units *units;
    disp_avl *avl;
    disp_history *history;
    disp_geofences *geofences;
    web_gps *gps;
    web_server *web;
    web_demo *demo;
    int signals;
    int64_t drain_deadline_us;
} app;

static void print_version(void)
{
    printf("citycmd %s\n", CITYCMD_VERSION);
    printf("  libwebsockets %s, GLib %u.%u.%u, SQLite %s, hiredis %d.%d.%d, jansson %s,\n",
           lws_get_library_version(), glib_major_version, glib_minor_version, glib_micro_version,
           sqlite3_libversion(), HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH,
           jansson_version_str());
    guint gmaj, gmin, gmic, gnano;
    gst_version(&gmaj, &gmin, &gmic, &gnano);
    printf("  libsodium %s, GDAL %s, GEOS %s, PROJ %s, GStreamer %u.%u.%u\n",
           sodium_version_string(), GDALVersionInfo("RELEASE_NAME"), GEOSversion(),
           proj_info().version, gmaj, gmin, gmic);
}

static void usage(FILE *out)
{
    fprintf(out, "Usage: citycmd [OPTION]...\n"
                 "Real-time server for a city's emergency command centre.\n\n"
                 "Options (also keys of the --config file's [citycmd] group):\n");
    core_config_usage(out);
    fprintf(out, "  %-28s %s\n  %-28s %s\n", "--help", "show this help and exit", "--version",
            "show versions and exit");
}

/* The www/ directory beside the executable, if there is one. */
/* A directory next to the executable (build/www, build/city/monaco), or NULL. */
static char *beside_exe(const char *name)
{
    char *exe = g_file_read_link("/proc/self/exe", NULL);
    if (!exe)
        return NULL;
    char *dir = g_path_get_dirname(exe);
    char *path = g_build_filename(dir, name, NULL);
    g_free(exe);
    g_free(dir);
    if (g_file_test(path, G_FILE_TEST_IS_DIR))
        return path;
    g_free(path);
    return NULL;
}

static gboolean drain_tick(gpointer p)
{
    app *a = p;
    core_store_status_t st;
    core_store_status(a->store, &st);
    gboolean idle = web_server_pending(a->web) == 0 && st.queued == 0;
    if (idle || core_mono_us() > a->drain_deadline_us) {
        if (!idle)
            log_warn("server.drain_timeout", "pending_requests=%d queued_writes=%d",
                     web_server_pending(a->web), st.queued);
        core_loop_quit(a->loop);
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

static gboolean on_signal(gpointer p)
{
    app *a = p;
    if (++a->signals > 1) {
        log_warn("server.exit", "reason=\"second signal\"");
        _exit(1);
    }
    log_info("server.draining", "timeout_ms=%d", a->cfg.drain_timeout_ms);
    web_demo_stop(a->demo);
    a->demo = NULL;
    web_gps_stop(a->gps);
    web_server_begin_drain(a->web);
    a->drain_deadline_us = core_mono_us() + (int64_t)a->cfg.drain_timeout_ms * 1000;
    g_timeout_add(10, drain_tick, a);
    return G_SOURCE_CONTINUE;
}

/* The unit a tracker reports for, from the registry's mirror. */
static int64_t unit_of_device(const char *device, const char **agency, void *user)
{
    const disp_unit_info *u = disp_units_by_device(user, device);
    if (!u)
        return 0;
    *agency = u->agency;
    return u->id;
}

static void keep_position(const disp_avl_pos *p, void *user)
{
    disp_history_add(user, p);
}

/* The tracker listeners: as configured; the demo also listens on the
 * conventional ports (or any free ones when those are taken). */
/* The city package's pipe networks (the .gpkg files of DIR/networks), each loaded and
 * finished; a network that fails to load is reported and left out. */
static void start_pipes(app *a)
{
    GPtrArray *nets = g_ptr_array_new();
    char **names = a->city_dir ? gis_pipenet_list(a->city_dir) : NULL;
    for (char **n = names; n && *n; n++) {
        char *file = g_strdup_printf("%s.gpkg", *n);
        char *path = g_build_filename(a->city_dir, "networks", file, NULL);
        char *err = NULL;
        gis_pipenet *net = NULL;
        int64_t t0 = core_mono_us();
        if (gis_pipenet_load(path, &net, &err) == 0) {
            log_info("pipes.loaded",
                     "network=%s links=%zu valves=%zu customers=%zu segments=%zu ms=%lld", *n,
                     gis_pipenet_link_count(net), gis_pipenet_valve_count(net),
                     gis_pipenet_customer_count(net), gis_pipenet_segment_count(net),
                     (long long)((core_mono_us() - t0) / 1000));
            g_ptr_array_add(nets, net);
        } else {
            log_error("pipes.load", "network=%s error=\"%s\"", *n, err);
        }
        g_free(err);
        g_free(path);
        g_free(file);
    }
    g_strfreev(names);
    g_ptr_array_add(nets, NULL);
    disp_pipes_deps d = {.store = a->store,
                         .bus = a->bus,
                         .units = a->units,
                         .avl = a->avl,
                         .roads = a->roads,
                         .incidents = a->incidents,
                         .approval_customers = a->cfg.repair_approval_customers};
    a->pipes = disp_pipes_new(&d, (gis_pipenet **)nets->pdata);
    g_ptr_array_free(nets, TRUE);
}

static int start_gps(app *a, char **err)
{
    const core_config *c = &a->cfg;
    const char *addr[3] = {c->gps_osmand, c->gps_gt06, c->gps_teltonika};
    char *demo[3] = {NULL, NULL, NULL};
    static const int ports[3] = {5055, 5023, 5027};
    for (int i = 0; i < 3 && c->demo; i++)
        if (!addr[i] || !*addr[i])
            addr[i] = demo[i] = g_strdup_printf("%s:%d", c->http.host, ports[i]);
    a->gps = web_gps_new(a->avl, addr[0], addr[1], addr[2], c->gps_idle_timeout,
                         c->gps_max_connections, err);
    if (!a->gps && c->demo) {
        log_warn("gps.demo_ports", "error=\"%s\" action=\"listening on free ports\"", *err);
        g_free(*err);
        *err = NULL;
        for (int i = 0; i < 3; i++) {
            if (demo[i]) {
                g_free(demo[i]);
                addr[i] = demo[i] = g_strdup_printf("%s:0", c->http.host);
            }
        }
        a->gps = web_gps_new(a->avl, addr[0], addr[1], addr[2], c->gps_idle_timeout,
                             c->gps_max_connections, err);
    }
    for (int i = 0; i < 3; i++)
        g_free(demo[i]);
    return a->gps ? 0 : CORE_EINVAL;
}

static int start(app *a, const char *argv0)
{
    char *err = NULL;
    core_store_opts so = {a->cfg.state_dir, a->cfg.group_commit, a->cfg.group_max,
                          a->cfg.store_queue_max, NULL};
    a->loop = core_loop_new(a->cfg.workers, 4096);
    a->bus = core_bus_new();
    a->store = core_store_new(&so, a->loop, a->bus);
    web_register_migrations(a->store);
    if (core_store_open(a->store, &err)) {
        fprintf(stderr, "citycmd: %s\n", err);
        g_free(err);
        return 1;
    }
    /* Before serving: the accounts' write is first in the store's queue. */
    if (a->cfg.demo && web_demo_accounts(a->store) != 0) {
        fprintf(stderr, "citycmd: cannot create the demo accounts\n");
        return 1;
    }
    a->sessions = core_sessions_new(a->store, a->loop, a->cfg.session_idle, a->cfg.session_lifetime,
                                    a->cfg.lockout_failures, a->cfg.lockout_seconds);
    core_sessions_load(a->sessions);
    if (a->cfg.redis_url) {
        a->redis = core_redis_new(a->loop, a->store, a->bus, a->cfg.redis_url, a->cfg.redis_stream,
                                  a->cfg.redis_maxlen, &err);
        if (!a->redis) {
            fprintf(stderr, "citycmd: %s\n", err);
            g_free(err);
            return 2;
        }
    }
    /* The demo's city is built next to the binary from data/monaco.osm.pbf. */
    char *city = a->cfg.city   ? g_strdup(a->cfg.city)
                 : a->cfg.demo ? beside_exe("city/monaco")
                               : NULL;
    if (city) {
        a->city_dir = g_strdup(city);
        a->city = gis_city_load(city, &err);
        if (a->city) {
            disp_roads_options ro = {a->cfg.route_emergency_percent / 100.0, 0};
            char *rerr = NULL;
            a->roads = disp_roads_load(city, &ro, &rerr);
            if (a->roads)
                log_info("roads.loaded", "nodes=%u edges=%u restrictions=%u",
                         disp_roads_node_count(a->roads), disp_roads_edge_count(a->roads),
                         disp_roads_restriction_count(a->roads));
            else
                log_warn("roads.none", "error=\"%s\" note=\"no travel times or recommendations\"",
                         rerr);
            g_free(rerr);
        }
        g_free(city);
        if (!a->city) {
            fprintf(stderr, "citycmd: --city: %s\n", err);
            g_free(err);
            return 1;
        }
    } else if (a->cfg.demo) {
        log_warn("demo.city", "note=\"the demo city was not built next to the binary; no map\"");
    }
    a->plans = disp_plans_new(a->cfg.response_plans, &err);
    if (!a->plans) {
        fprintf(stderr, "citycmd: --response-plans: %s\n", err);
        g_free(err);
        return 1;
    }
    a->catalogue = disp_catalogue_new(a->cfg.catalogue, &err);
    if (!a->catalogue) {
        fprintf(stderr, "citycmd: --catalogue: %s\n", err);
        g_free(err);
        return 1;
    }
    a->incidents = disp_incidents_new(a->store, a->bus, a->loop, a->catalogue, a->city);
    disp_incidents_start_timers(a->incidents, a->cfg.alarm_unassigned, a->cfg.alarm_arrival);
    a->units = disp_units_new(a->store, a->bus, a->cfg.agencies);
    a->avl = disp_avl_new(unit_of_device, a->units);
    a->history = disp_history_new(a->cfg.state_dir, a->cfg.history_days, a->cfg.history_interval_ms,
                                  a->loop, &err);
    if (!a->history) {
        fprintf(stderr, "citycmd: position history: %s\n", err);
        g_free(err);
        return 1;
    }
    disp_avl_watch(a->avl, keep_position, a->history);
    a->geofences = disp_geofences_new(a->store, a->units, a->incidents);
    a->closures = disp_closures_new(a->store, a->roads);
    start_pipes(a);
    a->cameras = vid_cameras_new(a->store, a->cfg.agencies);
    disp_avl_watch(a->avl, disp_geofences_position, a->geofences);
    if (start_gps(a, &err)) {
        fprintf(stderr, "citycmd: %s\n", err);
        g_free(err);
        return 1;
    }
    if (a->cfg.demo && a->city)
        web_demo_fleet(a->units, a->city);
    if (a->cfg.demo && a->city)
        web_demo_cameras(a->cameras, a->city, a->roads);
    char *www = a->cfg.static_dir ? g_strdup(a->cfg.static_dir) : beside_exe("www");
    web_deps deps = {.cfg = &a->cfg,
                     .loop = a->loop,
                     .store = a->store,
                     .bus = a->bus,
                     .redis = a->redis,
                     .sessions = a->sessions,
                     .city = a->city,
                     .incidents = a->incidents,
                     .units = a->units,
                     .avl = a->avl,
                     .history = a->history,
                     .geofences = a->geofences,
                     .catalogue = a->catalogue,
                     .roads = a->roads,
                     .plans = a->plans,
                     .closures = a->closures,
                     .pipes = a->pipes,
                     .cameras = a->cameras,
                     .static_dir = www};
    a->web = web_server_new(&deps, &err);
    g_free(www);
    if (!a->web) {
        fprintf(stderr, "citycmd: %s\n", err);
        g_free(err);
        return 1;
    }
    if (a->cfg.demo)
        a->demo = web_demo_start(a->store, 30000);
    (void)argv0;
    return 0;
}

/* Shutdown in phases, so every completion runs while what it touches exists:
 * workers finish, the writer commits what is queued, their callbacks run
 * (answering requests still connected), then the server and store close. */
static void stop(app *a)
{
    web_demo_stop(a->demo);
    core_redis_free(a->redis);
    if (a->loop)
        core_loop_stop_workers(a->loop);
    if (a->store)
        core_store_stop(a->store);
    if (a->loop)
        core_loop_drain(a->loop);
    web_gps_free(a->gps);
    web_server_free(a->web);
    core_sessions_free(a->sessions);
    disp_avl_free(a->avl);
    disp_history_free(a->history);
    disp_geofences_free(a->geofences);
    disp_units_free(a->units);
    disp_incidents_free(a->incidents);
    disp_catalogue_free(a->catalogue);
    disp_closures_free(a->closures);
    disp_pipes_free(a->pipes);
    vid_cameras_free(a->cameras);
    g_free(a->city_dir);
    disp_roads_free(a->roads);
    disp_plans_free(a->plans);
    gis_city_free(a->city);
    core_store_free(a->store);
    core_loop_free(a->loop);
    core_bus_free(a->bus);
}

int main(int argc, char **argv)
{
    int64_t t0 = core_mono_us();
    app a;
    memset(&a, 0, sizeof a);
    if (argc > 1 && strcmp(argv[1], "admin") == 0)
        return web_admin_main(argc, argv);
    if (argc > 1 && strcmp(argv[1], "import-city") == 0)
        return gis_import_main(argc, argv);
    if (argc > 1 && strcmp(argv[1], "import-network") == 0)
        return gis_import_network_main(argc, argv);
    /* Video access units (20 KiB – 1 MiB) are made on the camera readers'
     * threads and freed on the loop: with glibc's defaults each arena's top
     * is handed back to the kernel and faulted in again many times a second,
     * and large keyframes are mapped and unmapped one by one. */
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
    mallopt(M_TRIM_THRESHOLD, 32 << 20);
    if (argc > 1 && argv[1][0] != '-') {
        fprintf(stderr, "citycmd: unknown command '%s' (see --help)\n", argv[1]);
        return 2;
    }
    char *err = NULL;
    int rc = core_config_parse(&a.cfg, argc, argv, &err);
    if (rc == CORE_CONFIG_HELP) {
        usage(stdout);
        core_config_clear(&a.cfg);
        return 0;
    }
    if (rc == CORE_CONFIG_VERSION) {
        print_version();
        core_config_clear(&a.cfg);
        return 0;
    }
    core_log_level level = CORE_LOG_INFO;
    if (!rc && core_log_level_parse(a.cfg.log_level, &level) != 0) {
        err = g_strdup_printf("--log-level: expected debug, info, warn or error, got '%s'",
                              a.cfg.log_level);
        rc = CORE_EINVAL;
    }
    if (!rc && a.cfg.redis_url)
        rc = core_redis_url_check(a.cfg.redis_url, &err);
    if (!rc && a.cfg.city && !g_file_test(a.cfg.city, G_FILE_TEST_EXISTS)) {
        err = g_strdup_printf("--city %s: no such file or directory", a.cfg.city);
        rc = CORE_EINVAL;
    }
    if (rc) {
        fprintf(stderr, "citycmd: %s\n", err);
        g_free(err);
        core_config_clear(&a.cfg);
        return 2;
    }
    core_log_set_level(level);
    core_log_capture_libraries();
    signal(SIGPIPE, SIG_IGN);
    if (sodium_init() < 0) {
        fprintf(stderr, "citycmd: libsodium failed to initialise\n");
        return 1;
    }
    rc = start(&a, argv[0]);
    if (rc) {
        stop(&a);
        core_config_clear(&a.cfg);
        return rc;
    }
    g_unix_signal_add(SIGTERM, on_signal, &a);
    g_unix_signal_add(SIGINT, on_signal, &a);
    log_info("server.ready", "version=%s port=%d startup_ms=%.1f pid=%d", CITYCMD_VERSION,
             web_server_port(a.web), (double)(core_mono_us() - t0) / 1000, (int)getpid());
    core_loop_run(a.loop);
    stop(&a);
    log_info("server.exit", "reason=\"signal\" status=0");
    core_config_clear(&a.cfg);
    return 0;
}
