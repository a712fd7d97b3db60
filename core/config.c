/*
 * config.c — the option table and its parser.
 *
 * Flags are "--name VALUE" or "--name=VALUE"; a boolean is "--name",
 * "--no-name" or "--name=true|false". The key file uses the same names in the
 * [citycmd] group:  http = 0.0.0.0:8080
 */
#include "config.h"
#include "core.h"

#include <errno.h>
#include <glib.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef enum { T_STR, T_INT, T_BOOL, T_HOSTPORT } opt_type;

typedef struct {
    const char *name;
    opt_type type;
    size_t offset;
    const char *def;
    long min, max;
    const char *metavar;
    const char *help;
} opt;

#define F(field) offsetof(core_config, field)
static const opt options[] = {
    {"http", T_HOSTPORT, F(http), "127.0.0.1:8080", 0, 0, "HOST:PORT",
     "address for HTTP, the API and WebSockets"},
    {"state", T_STR, F(state_dir), "state", 0, 0, "DIR",
     "where the durable store lives (created if missing)"},
    {"city", T_STR, F(city), NULL, 0, 0, "PATH", "city package to load"},
    {"alarm-unassigned", T_INT, F(alarm_unassigned), "60", 1, 86400, "SECONDS",
     "alarm when a priority-1 incident has no unit assigned after this long"},
    {"alarm-arrival", T_INT, F(alarm_arrival), "600", 1, 86400, "SECONDS",
     "alarm when no unit is on scene at a priority-1 incident after this long"},
    {"catalogue", T_STR, F(catalogue), NULL, 0, 0, "FILE",
     "call categories (JSON; default: the built-in catalogue)"},
    {"response-plans", T_STR, F(response_plans), NULL, 0, 0, "FILE",
     "response plans, the units each kind of incident needs (JSON; default: built-in)"},
    {"repair-approval-customers", T_INT, F(repair_approval_customers), "200", 1, 10000000, "N",
     "a repair order cutting off more customers than this (or any priority one) needs approval"},
    {"route-emergency-percent", T_INT, F(route_emergency_percent), "120", 50, 200, "PERCENT",
     "emergency vehicles' speed on the road graph, in percent of the signed or usual speed"},
    {"redis", T_STR, F(redis_url), NULL, 0, 0, "URL",
     "redis://[:password@]host[:port][/db]; events are published to a stream"},
    {"redis-stream", T_STR, F(redis_stream), "citycmd:events", 0, 0, "KEY",
     "Redis stream that receives every event"},
    {"redis-maxlen", T_INT, F(redis_maxlen), "1000000", 1000, 100000000, "N",
     "approximate length the Redis stream is trimmed to"},
    {"config", T_STR, F(config_file), NULL, 0, 0, "FILE",
     "key file ([citycmd] group) whose keys the flags override"},
    {"static", T_STR, F(static_dir), NULL, 0, 0, "DIR",
     "browser clients to serve at / (default: www/ beside the binary)"},
    {"log-level", T_STR, F(log_level), "info", 0, 0, "LEVEL", "debug, info, warn or error"},
    {"agencies", T_STR, F(agencies), "police,fire,ems,traffic,hotline,water,gas,government,command",
     0, 0, "LIST", "the agencies users may belong to"},
    {"demo", T_BOOL, F(demo), "false", 0, 0, NULL, "run the bundled demo city with simulators"},
    {"workers", T_INT, F(workers), "2", 1, 64, "N", "worker threads for heavy jobs"},
    {"group-commit", T_BOOL, F(group_commit), "true", 0, 0, NULL,
     "commit many queued writes with one fsync"},
    {"group-max", T_INT, F(group_max), "512", 1, 100000, "N", "most writes in one commit"},
    {"store-queue-max", T_INT, F(store_queue_max), "20000", 10, 10000000, "N",
     "writes waiting for the store before requests get 503"},
    {"http-max-body", T_INT, F(http_max_body), "1048576", 1024, 67108864, "BYTES",
     "largest accepted request body"},
    {"ws-max-message", T_INT, F(ws_max_message), "65536", 256, 16777216, "BYTES",
     "largest accepted WebSocket message (closed with 1009 beyond)"},
    {"ws-idle-timeout", T_INT, F(ws_idle_timeout), "60", 5, 3600, "SECONDS",
     "close a WebSocket silent for this long"},
    {"ws-ping-interval", T_INT, F(ws_ping_interval), "20", 1, 3600, "SECONDS",
     "send a ping after this long without traffic"},
    {"ws-queue-max", T_INT, F(ws_queue_max), "1048576", 16384, 268435456, "BYTES",
     "per-client send queue soft limit (2 s grace; hard limit 4x)"},
    {"ws-max-clients", T_INT, F(ws_max_clients), "10000", 1, 1000000, "N",
     "WebSocket clients accepted at once"},
    {"ws-rate", T_INT, F(ws_rate), "50", 1, 100000, "N",
     "messages a second a WebSocket client may send (bursts of 2x)"},
    {"session-idle", T_INT, F(session_idle), "1800", 1, 604800, "SECONDS",
     "end a session unused for this long"},
    {"session-lifetime", T_INT, F(session_lifetime), "43200", 1, 2592000, "SECONDS",
     "end a session this long after login"},
    {"lockout-failures", T_INT, F(lockout_failures), "5", 1, 100, "N",
     "failed logins that lock an account"},
    {"lockout-seconds", T_INT, F(lockout_seconds), "600", 1, 86400, "SECONDS",
     "how long a locked account stays locked"},
    {"allowed-origins", T_STR, F(allowed_origins), "", 0, 0, "LIST",
     "extra browser origins allowed to open the WebSocket (the server's own always are)"},
    {"metrics-public", T_BOOL, F(metrics_public), "true", 0, 0, NULL,
     "serve /metrics without a session (for Prometheus scrapers)"},
    {"tls-cert", T_STR, F(tls_cert), "", 0, 0, "FILE",
     "serve HTTPS and WSS with this PEM certificate (chain) and --tls-key"},
    {"tls-key", T_STR, F(tls_key), "", 0, 0, "FILE", "the PEM private key of --tls-cert"},
    {"allow-plain-http", T_BOOL, F(allow_plain_http), "false", 0, 0, NULL,
     "serve plain HTTP on a non-loopback address (only behind a TLS-terminating proxy)"},
    {"drain-timeout-ms", T_INT, F(drain_timeout_ms), "4000", 100, 60000, "MS",
     "on SIGTERM, how long to finish pending work before exiting"},
    {"ws-units-interval", T_INT, F(ws_units_interval), "250", 20, 10000, "MS",
     "how often a WebSocket client gets the units that moved in its view"},
    {"ws-send-buffer", T_INT, F(ws_send_buffer), "0", 0, 16777216, "BYTES",
     "the kernel send buffer of each WebSocket (0: the kernel's own sizing); smaller keeps a "
     "slow screen's data fresh"},
    {"history-days", T_INT, F(history_days), "7", 1, 3650, "DAYS",
     "how long the units' positions are kept (positions.db in --state)"},
    {"history-interval-ms", T_INT, F(history_interval_ms), "1000", 0, 3600000, "MS",
     "keep at most one position per unit per this much fix time (0: every accepted fix; the "
     "live map always gets every fix)"},
    {"gps-osmand", T_STR, F(gps_osmand), NULL, 0, 0, "HOST:PORT",
     "listen for OsmAnd / Traccar Client positions over HTTP (port 5055 by convention)"},
    {"gps-gt06", T_STR, F(gps_gt06), NULL, 0, 0, "HOST:PORT",
     "listen for GT06 (Concox) trackers over TCP (5023 by convention)"},
    {"gps-teltonika", T_STR, F(gps_teltonika), NULL, 0, 0, "HOST:PORT",
     "listen for Teltonika Codec 8/8E trackers over TCP (5027 by convention)"},
    {"gps-idle-timeout", T_INT, F(gps_idle_timeout), "300", 5, 86400, "SECONDS",
     "close a tracker connection silent for this long"},
    {"gps-max-connections", T_INT, F(gps_max_connections), "20000", 1, 1000000, "N",
     "tracker connections accepted at once"},
    {"video-idle", T_INT, F(video_idle_s), "30", 0, 3600, "SECONDS",
     "stop a camera's stream this long after its last viewer or clip"},
    {"video-ring", T_INT, F(video_ring_s), "30", 0, 600, "SECONDS",
     "recent video kept per watched camera for clips (0: no clips)"},
    {"video-max-tiles", T_INT, F(video_max_tiles), "64", 1, 1024, "N",
     "live video tiles one WebSocket may watch"},
    {"video-viewer-lag", T_INT, F(video_viewer_queue_ms), "1000", 100, 30000, "MS",
     "a viewer this far behind live skips to the next keyframe"},
    {"clip-max", T_INT, F(clip_max_s), "120", 1, 3600, "SECONDS",
     "longest clip (seconds before + after) an incident may save"},
    {"onvif-network", T_STR, F(onvif_network), "", 0, 0, "CIDR",
     "the network searched for ONVIF cameras (unicast probes to each address; empty: multicast "
     "only)"},
    {"onvif-discovery", T_STR, F(onvif_discovery), "239.255.255.250:3702", 0, 0, "HOST:PORT",
     "where WS-Discovery probes go"},
};
#undef F

static const opt *find_opt(const char *name, size_t len)
{
    for (size_t i = 0; i < G_N_ELEMENTS(options); i++)
        if (strlen(options[i].name) == len && strncmp(options[i].name, name, len) == 0)
            return &options[i];
    return NULL;
}

int core_hostport_parse(const char *text, core_hostport *out)
{
    if (!text || !*text)
        return CORE_EINVAL;
    const char *colon;
    char *host;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':')
            return CORE_EINVAL;
        host = g_strndup(text + 1, (gsize)(close - text - 1));
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (!colon || colon == text)
            return CORE_EINVAL;
        host = g_strndup(text, (gsize)(colon - text));
    }
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || port < 0 || port > 65535) {
        g_free(host);
        return CORE_EINVAL;
    }
    g_free(out->host);
    out->host = host;
    out->port = (int)port;
    return 0;
}

static int parse_bool(const char *v, int *out)
{
    if (!g_ascii_strcasecmp(v, "true") || !g_ascii_strcasecmp(v, "yes") ||
        !g_ascii_strcasecmp(v, "on") || !strcmp(v, "1"))
        *out = 1;
    else if (!g_ascii_strcasecmp(v, "false") || !g_ascii_strcasecmp(v, "no") ||
             !g_ascii_strcasecmp(v, "off") || !strcmp(v, "0"))
        *out = 0;
    else
        return CORE_EINVAL;
    return 0;
}

/* Stores value into the field of o; on failure sets *err naming `where`. */
static int apply(core_config *cfg, const opt *o, const char *value, const char *where, char **err)
{
    void *field = (char *)cfg + o->offset;
    switch (o->type) {
    case T_STR:
        g_free(*(char **)field);
        *(char **)field = value ? g_strdup(value) : NULL;
        return 0;
    case T_BOOL:
        if (parse_bool(value, (int *)field) == 0)
            return 0;
        *err = g_strdup_printf("%s: expected true or false, got '%s'", where, value);
        return CORE_EINVAL;
    case T_HOSTPORT:
        if (core_hostport_parse(value, (core_hostport *)field) == 0)
            return 0;
        *err = g_strdup_printf("%s: expected HOST:PORT, got '%s'", where, value);
        return CORE_EINVAL;
    case T_INT: {
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || !*value || *end || v < o->min || v > o->max) {
            *err = g_strdup_printf("%s: expected an integer from %ld to %ld, got '%s'", where,
                                   o->min, o->max, value);
            return CORE_EINVAL;
        }
        *(int *)field = (int)v;
        return 0;
    }
    }
    return CORE_EINVAL;
}

static int apply_defaults(core_config *cfg, char **err)
{
    for (size_t i = 0; i < G_N_ELEMENTS(options); i++) {
        int rc = apply(cfg, &options[i], options[i].def, options[i].name, err);
        if (rc)
            return rc;
    }
    return 0;
}

static int apply_key_file(core_config *cfg, const char *path, char **err)
{
    GKeyFile *kf = g_key_file_new();
    GError *gerr = NULL;
    int rc = 0;
    if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &gerr)) {
        *err = g_strdup_printf("--config %s: %s", path, gerr->message);
        g_error_free(gerr);
        g_key_file_free(kf);
        return CORE_ECONFIG;
    }
    gsize ngroups = 0;
    char **groups = g_key_file_get_groups(kf, &ngroups);
    for (gsize g = 0; g < ngroups && !rc; g++) {
        if (strcmp(groups[g], "citycmd") != 0) {
            *err = g_strdup_printf("%s: unknown group [%s] (expected [citycmd])", path, groups[g]);
            rc = CORE_ECONFIG;
            break;
        }
        char **keys = g_key_file_get_keys(kf, groups[g], NULL, NULL);
        for (char **k = keys; k && *k && !rc; k++) {
            const opt *o = find_opt(*k, strlen(*k));
            if (!o || strcmp(o->name, "config") == 0) {
                *err = g_strdup_printf("%s: unknown key '%s'", path, *k);
                rc = CORE_ECONFIG;
                break;
            }
            char *v = g_key_file_get_string(kf, groups[g], *k, NULL);
            char *where = g_strdup_printf("%s: %s", path, *k);
            rc = apply(cfg, o, v ? g_strstrip(v) : "", where, err);
            g_free(where);
            g_free(v);
        }
        g_strfreev(keys);
    }
    g_strfreev(groups);
    g_key_file_free(kf);
    return rc;
}

/* Finds --config in argv without applying anything else. */
static const char *find_config_flag(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            return argv[i + 1];
        if (strncmp(argv[i], "--config=", 9) == 0)
            return argv[i] + 9;
    }
    return NULL;
}

static int apply_flags(core_config *cfg, int argc, char **argv, char **err)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            return CORE_CONFIG_HELP;
        if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0)
            return CORE_CONFIG_VERSION;
        if (strncmp(a, "--", 2) != 0) {
            *err = g_strdup_printf("unexpected argument '%s' (see --help)", a);
            return CORE_EINVAL;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const opt *o = find_opt(name, nlen);
        const char *value = eq ? eq + 1 : NULL;
        if (!o && nlen > 3 && strncmp(name, "no-", 3) == 0 && !eq) {
            o = find_opt(name + 3, nlen - 3);
            if (o && o->type == T_BOOL) {
                value = "false";
            } else {
                o = NULL;
            }
        }
        if (!o) {
            *err = g_strdup_printf("unknown option '%s' (see --help)", a);
            return CORE_EINVAL;
        }
        if (!value && o->type == T_BOOL)
            value = "true";
        if (!value) {
            if (i + 1 >= argc) {
                *err = g_strdup_printf("--%s needs a value (%s)", o->name, o->metavar);
                return CORE_EINVAL;
            }
            value = argv[++i];
        }
        char *where = g_strdup_printf("--%s", o->name);
        int rc = apply(cfg, o, value, where, err);
        g_free(where);
        if (rc)
            return rc;
    }
    return CORE_CONFIG_RUN;
}

int core_config_is_loopback(const char *host)
{
    return strcmp(host, "localhost") == 0 || g_str_has_prefix(host, "127.") ||
           strcmp(host, "::1") == 0 || strcmp(host, "[::1]") == 0;
}

/* Rules between options. */
static int check_combined(core_config *cfg, char **err)
{
    int cert = cfg->tls_cert && *cfg->tls_cert, key = cfg->tls_key && *cfg->tls_key;
    if (cert != key) {
        *err = g_strdup("--tls-cert and --tls-key go together");
        return CORE_EINVAL;
    }
    const char *files[] = {cfg->tls_cert, cfg->tls_key};
    for (int i = 0; cert && i < 2; i++) {
        if (!g_file_test(files[i], G_FILE_TEST_IS_REGULAR) || access(files[i], R_OK) != 0) {
            *err = g_strdup_printf("--%s %s: not a readable file", i ? "tls-key" : "tls-cert",
                                   files[i]);
            return CORE_EINVAL;
        }
    }
    if (!cert && !cfg->allow_plain_http && !core_config_is_loopback(cfg->http.host)) {
        *err = g_strdup_printf("refusing to serve plain HTTP on %s: give --tls-cert and --tls-key,"
                               " or --allow-plain-http when a TLS proxy stands in front",
                               cfg->http.host);
        return CORE_EINVAL;
    }
    return 0;
}

int core_config_parse(core_config *cfg, int argc, char **argv, char **err)
{
    *err = NULL;
    int rc = apply_defaults(cfg, err);
    const char *file = find_config_flag(argc, argv);
    if (!rc && file)
        rc = apply_key_file(cfg, file, err);
    if (!rc)
        rc = apply_flags(cfg, argc, argv, err);
    if (rc == CORE_CONFIG_RUN)
        rc = check_combined(cfg, err);
    return rc;
}

void core_config_clear(core_config *cfg)
{
    for (size_t i = 0; i < G_N_ELEMENTS(options); i++) {
        void *field = (char *)cfg + options[i].offset;
        if (options[i].type == T_STR)
            g_free(*(char **)field);
        else if (options[i].type == T_HOSTPORT)
            g_free(((core_hostport *)field)->host);
    }
    memset(cfg, 0, sizeof *cfg);
}

void core_config_usage(FILE *out)
{
    for (size_t i = 0; i < G_N_ELEMENTS(options); i++) {
        const opt *o = &options[i];
        char flag[64];
        g_snprintf(flag, sizeof flag, "--%s%s%s", o->name, o->metavar ? " " : "",
                   o->metavar ? o->metavar : "");
        fprintf(out, "  %-28s %s", flag, o->help);
        if (o->def && o->type != T_BOOL)
            fprintf(out, " [%s]", o->def);
        else if (o->type == T_BOOL)
            fprintf(out, " [%s; --no-%s]", o->def, o->name);
        fputc('\n', out);
    }
}
