/*
 * server.c — creates the libwebsockets context on the core loop.
 *
 * libwebsockets runs with LWS_SERVER_OPTION_GLIB and the core GMainLoop as
 * its foreign loop, so its sockets and timers are GSources beside hiredis and
 * ours. Idle WebSockets are pinged after --ws-ping-interval and closed after
 * --ws-idle-timeout without valid traffic (lws' "validity" policy).
 */
#include "internal.h"

#include "../dispatch/closures.h"
#include "../dispatch/pipes.h"
#include "../video/cameras.h"

#include "../core/auth.h"
#include "../core/core.h"
#include "../dispatch/dispatch.h"
#include "../dispatch/geofence.h"
#include "../dispatch/incident.h"
#include "../dispatch/units.h"
#include "../core/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>
#include <string.h>

/*
 * One protocol serves both HTTP and the WebSocket. libwebsockets binds an
 * upgrade that names no subprotocol to the vhost's default protocol, but it
 * learns which one is the default only during its deferred protocol init; an
 * upgrade arriving before that lands on protocols[0]. With a single protocol
 * there is nothing to get wrong.
 */
static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
    case LWS_CALLBACK_ESTABLISHED:
    case LWS_CALLBACK_RECEIVE:
    case LWS_CALLBACK_SERVER_WRITEABLE:
    case LWS_CALLBACK_CLOSED:
        return web_ws_callback(wsi, reason, user, in, len);
    default:
        return web_http_callback(wsi, reason, user, in, len);
    }
}

/* Sends are not cut to the 4 KiB receive buffer (lws' default when
 * tx_packet_size is 0): a video frame of 20–200 KiB would go out in 4 KiB
 * pieces, each its own trip round the loop, the rest copied meanwhile. The
 * kernel takes what fits; lws keeps the remainder. */
#define TX_PACKET_MAX ((size_t)4 << 20)

static struct lws_protocols protocols[] = {
    {"citycmd.v1", callback, WEB_PSS_SIZE, 4096, 0, NULL, TX_PACKET_MAX},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Binds a throw-away socket to host:port so a failure can be reported with
 * its real reason (lws only says it failed, and leaks on that path). */
static int probe_listen(const char *host, int port, char **err)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res = NULL;
    char portstr[16];
    g_snprintf(portstr, sizeof portstr, "%d", port);
    const char *node = (!strcmp(host, "0.0.0.0") || !strcmp(host, "*") || !*host) ? NULL : host;
    int rc = getaddrinfo(node, portstr, &hints, &res);
    if (rc) {
        *err = g_strdup_printf("cannot listen on %s:%d: %s", host, port, gai_strerror(rc));
        return CORE_EINVAL;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, saved = 0;
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, res->ai_addr, res->ai_addrlen) != 0)
            saved = errno;
        close(fd);
    } else {
        saved = errno;
    }
    freeaddrinfo(res);
    if (saved) {
        *err = g_strdup_printf("cannot listen on %s:%d: %s", host, port, g_strerror(saved));
        return CORE_EIO;
    }
    return 0;
}

static void session_ended(const core_session *s, const char *why, void *user)
{
    web_ws_session_ended(user, s);
}

static int session_in_use(const core_session *s, void *user)
{
    return web_ws_session_in_use(user, s);
}

web_server *web_server_new(const web_deps *deps, char **err)
{
    if (probe_listen(deps->cfg->http.host, deps->cfg->http.port, err))
        return NULL;

    web_server *srv = g_new0(web_server, 1);
    srv->deps = *deps;
    srv->cfg = deps->cfg;
    srv->static_dir = g_strdup(deps->static_dir);
    srv->router = web_router_new();
    srv->started_ms = core_now_ms();
    web_api_register(srv);
    web_api_gis_register(srv);
    web_api_incidents_register(srv);
    web_api_units_register(srv);
    web_api_routing_register(srv);
    web_api_avl_register(srv);
    web_api_geofences_register(srv);
    web_api_pipes_register(srv);
    web_api_cameras_register(srv);
    web_api_onvif_register(srv);
    web_api_video_register(srv);
    web_ws_init(srv);
    web_video_init(srv);
    core_sessions_on_end(deps->sessions, session_ended, srv);
    core_sessions_in_use(deps->sessions, session_in_use, srv);

    static lws_retry_bo_t retry;
    retry.secs_since_valid_ping = (uint16_t)srv->cfg->ws_ping_interval;
    retry.secs_since_valid_hangup = (uint16_t)srv->cfg->ws_idle_timeout;

    void *foreign[1] = {core_loop_main(deps->loop)};
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.options = LWS_SERVER_OPTION_GLIB | LWS_SERVER_OPTION_VALIDATE_UTF8;
    /* With IPv6 on, lws 4.1 does not resolve an IPv4 literal and silently
     * listens on every interface instead; an IPv4 address means IPv4 only. */
    struct in_addr v4;
    if (inet_pton(AF_INET, srv->cfg->http.host, &v4) == 1)
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    info.foreign_loops = foreign;
    const char *host = srv->cfg->http.host;
    info.iface = (!strcmp(host, "0.0.0.0") || !strcmp(host, "*") || !*host) ? NULL : host;
    info.port = srv->cfg->http.port;
    info.protocols = protocols;
    info.vhost_name = "citycmd";
    info.user = srv;
    info.retry_and_idle_policy = &retry;
    info.timeout_secs = 10;
    info.keepalive_timeout = 30;
    info.server_string = "citycmd";
    info.count_threads = 1;
    info.fd_limit_per_thread = 0;
    int tls = srv->cfg->tls_cert && *srv->cfg->tls_cert;
    if (tls) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = srv->cfg->tls_cert;
        info.ssl_private_key_filepath = srv->cfg->tls_key;
        /* TLS 1.2 at least; the library's default ciphers otherwise. */
        info.ssl_options_set =
            SSL_OP_NO_SSLv2 | SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1;
    }

    srv->ctx = lws_create_context(&info);
    if (!srv->ctx) {
        *err =
            tls ? g_strdup_printf("cannot serve TLS on %s:%d: check that --tls-cert %s and"
                                  " --tls-key %s are a matching PEM certificate and key",
                                  host, srv->cfg->http.port, srv->cfg->tls_cert, srv->cfg->tls_key)
                : g_strdup_printf("cannot listen on %s:%d (address in use or not available)", host,
                                  srv->cfg->http.port);
        web_server_free(srv);
        return NULL;
    }
    srv->vhost = lws_get_vhost_by_name(srv->ctx, "citycmd");
    srv->port = srv->vhost ? lws_get_vhost_listen_port(srv->vhost) : srv->cfg->http.port;
    log_info("http.listen", "addr=%s port=%d scheme=%s static=%s", host, srv->port,
             tls ? "https" : "http", srv->static_dir ? srv->static_dir : "-");
    if (!tls && core_config_is_loopback(host))
        log_info("http.plain", "note=\"plain HTTP on loopback only; give --tls-cert and --tls-key"
                               " to serve other machines\"");
    else if (!tls)
        log_warn("http.plain",
                 "addr=%s note=\"plain HTTP off loopback (--allow-plain-http):"
                 " passwords and tokens cross the network unencrypted unless a TLS"
                 " proxy stands in front\"",
                 host);
    return srv;
}

void web_register_migrations(core_store *st)
{
    core_auth_register(st);
    disp_journal_register(st);
    disp_incidents_register(st);
    disp_units_register(st);
    disp_geofences_register(st);
    disp_closures_register(st);
    disp_pipes_register(st);
    vid_cameras_register(st);
}

int web_server_port(const web_server *srv)
{
    return srv->port;
}

void web_server_begin_drain(web_server *srv)
{
    srv->draining = 1;
    web_ws_close_all(srv, LWS_CLOSE_STATUS_GOINGAWAY, "server shutting down");
}

int web_server_pending(const web_server *srv)
{
    return srv->pending;
}

void web_server_free(web_server *srv)
{
    if (!srv)
        return;
    if (srv->ctx)
        lws_context_destroy(srv->ctx);
    web_ws_fini(srv);
    web_video_fini(srv);
    web_router_free(srv->router);
    g_free(srv->static_dir);
    g_list_free(srv->ws_clients);
    g_free(srv);
}
