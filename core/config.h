/*
 * config.h — server configuration from a key file and command-line flags.
 *
 * One declarative table (config.c) names every option once: its flag, its key
 * in the [citycmd] group of the --config file, type, default, bounds and help.
 * Precedence: built-in default < key file < flag. Unknown flags and unknown
 * keys are errors, so a typo never silently falls back to a default.
 * Not thread-safe; parse once at start-up, then treat as read-only.
 */
#ifndef CITYCMD_CORE_CONFIG_H
#define CITYCMD_CORE_CONFIG_H

#include <stdio.h>

typedef struct {
    char *host;
    int port;
} core_hostport;

typedef struct core_config {
    core_hostport http;
    char *state_dir;
    char *city;
    char *redis_url;
    char *redis_stream;
    int redis_maxlen;
    char *config_file;
    char *static_dir;
    char *log_level;
    char *agencies;
    int demo;
    int workers;
    int group_commit;
    int group_max;
    int store_queue_max;
    int http_max_body;
    int ws_max_message;
    int ws_idle_timeout;
    int ws_ping_interval;
    int ws_queue_max;
    int ws_max_clients;
    int ws_rate;
    int drain_timeout_ms;
    int session_idle;
    int session_lifetime;
    int lockout_failures;
    int lockout_seconds;
    char *allowed_origins;
    int metrics_public;
    char *tls_cert, *tls_key;
    int allow_plain_http;
    char *catalogue;
    char *response_plans;
    int route_emergency_percent;
    int repair_approval_customers;
    int history_interval_ms;
    int alarm_unassigned, alarm_arrival;
    char *gps_osmand, *gps_gt06, *gps_teltonika; /* HOST:PORT or NULL */
    int gps_idle_timeout, gps_max_connections;
    int ws_units_interval;
    int ws_send_buffer;
    int history_days;
    int video_idle_s;          /* stop a camera's ingest this long after its last viewer */
    int video_ring_s;          /* seconds of recent video kept per watched camera, for clips */
    int video_max_tiles;       /* live tiles one WebSocket may watch */
    int video_viewer_queue_ms; /* a viewer this far behind skips to the next keyframe */
    int clip_max_s;            /* longest clip before + after the request */
    char *onvif_network;       /* CIDR probed for ONVIF cameras, or "" */
    char *onvif_discovery;     /* WS-Discovery HOST:PORT (multicast by default) */
} core_config;

/* 127.x, ::1 or localhost. */
int core_config_is_loopback(const char *host);

enum { CORE_CONFIG_RUN = 0, CORE_CONFIG_HELP = 1, CORE_CONFIG_VERSION = 2 };

/* Fills cfg from defaults, the --config file and the flags in argv[1..].
 * Returns CORE_CONFIG_RUN/HELP/VERSION, or CORE_EINVAL/CORE_ECONFIG with a
 * message in *err (free with g_free). cfg must be zeroed or cleared first. */
int core_config_parse(core_config *cfg, int argc, char **argv, char **err);
/* Frees the strings in cfg and zeroes it. */
void core_config_clear(core_config *cfg);
/* Writes the option list (for --help). */
void core_config_usage(FILE *out);
/* Parses "HOST:PORT" or "[V6]:PORT"; 0 or CORE_EINVAL. */
int core_hostport_parse(const char *text, core_hostport *out);

#endif
