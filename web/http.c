/*
 * http.c — HTTP requests on libwebsockets: routing, bodies, replies, static files.
 *
 * A request object lives from LWS_CALLBACK_HTTP until both its reply has
 * been written and the handler has replied: two references, one held by the
 * connection and one by the pending reply. If the client goes away first, the
 * connection reference is dropped and the eventual reply is simply discarded,
 * so a handler waiting on the store never touches a dead connection.
 *
 * Bodies are accumulated up to --http-max-body. A larger Content-Length
 * gets 413 once the body has been read and thrown away (up to
 * DRAIN_FACTOR times the limit): a server that answers and closes while the
 * client is still sending makes the kernel reset the connection, and the
 * client may never see the answer. Beyond that it is answered at once and
 * the connection closed.
 * Loop thread only.
 */
#include "internal.h"

#include "../core/core.h"
#include "../core/log.h"

#include <string.h>
#include <sys/stat.h>

#define CHUNK 16384
#define DRAIN_FACTOR 8

typedef struct {
    web_req *req;
} http_pss;

static void req_unref(web_req *req)
{
    if (--req->refs > 0)
        return;
    if (req->body)
        g_byte_array_unref(req->body);
    if (req->query)
        g_hash_table_destroy(req->query);
    if (req->resp)
        g_bytes_unref(req->resp);
    g_free(req->path);
    g_free(req->token);
    g_free(req->content_type);
    g_free(req->body_type);
    g_free(req->extra_headers);
    g_free(req);
}

static web_method map_method(int m)
{
    switch (m) {
    case LWSHUMETH_GET:
        return WEB_GET;
    case LWSHUMETH_POST:
        return WEB_POST;
    case LWSHUMETH_PUT:
        return WEB_PUT;
    case LWSHUMETH_PATCH:
        return WEB_PATCH;
    case LWSHUMETH_DELETE:
        return WEB_DELETE;
    case LWSHUMETH_HEAD:
        return WEB_HEAD;
    case LWSHUMETH_OPTIONS:
        return WEB_OPTIONS;
    }
    return WEB_METHOD_OTHER;
}

static GHashTable *read_query(struct lws *wsi)
{
    GHashTable *q = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    char buf[1024];
    for (int i = 0; i < 64; i++) {
        int n = lws_hdr_copy_fragment(wsi, buf, sizeof buf, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0)
            break;
        char *eq = strchr(buf, '=');
        if (eq) {
            *eq = '\0';
            g_hash_table_replace(q, g_strdup(buf), g_strdup(eq + 1));
        } else if (buf[0]) {
            g_hash_table_replace(q, g_strdup(buf), g_strdup(""));
        }
    }
    return q;
}

const char *web_query_get(const web_req *req, const char *name)
{
    return req->query ? g_hash_table_lookup(req->query, name) : NULL;
}

void web_req_add_header(web_req *req, const char *name, const char *value)
{
    char *prev = req->extra_headers;
    req->extra_headers = g_strdup_printf("%s%s: %s\r\n", prev ? prev : "", name, value);
    g_free(prev);
}

static void count_request(web_req *req)
{
    char labels[256];
    g_snprintf(labels, sizeof labels, "method=\"%s\",route=\"%s\",code=\"%d\"",
               web_method_name(req->method), req->route ? req->route : "unmatched", req->status);
    core_metric_add(core_counter("citycmd_http_requests_total", "HTTP requests answered.", labels),
                    1);
    g_snprintf(labels, sizeof labels, "route=\"%s\"", req->route ? req->route : "unmatched");
    double secs = (double)(core_mono_us() - req->started_us) / 1e6;
    core_metric_observe(core_histogram("citycmd_http_request_seconds",
                                       "Time from request to reply.", labels, core_latency_buckets,
                                       core_latency_nbuckets),
                        secs);
    core_log_level lvl = req->status >= 500 ? CORE_LOG_WARN : CORE_LOG_DEBUG;
    core_log(lvl, "http.request", "method=%s path=%s status=%d ms=%.2f",
             web_method_name(req->method), req->path, req->status, secs * 1000);
}

void web_reply(web_req *req, int status, const char *content_type, GBytes *body)
{
    if (req->replied) {
        g_bytes_unref(body);
        return;
    }
    req->replied = 1;
    req->status = status;
    req->content_type = g_strdup(content_type);
    req->resp = body;
    req->srv->pending--;
    count_request(req);
    if (req->wsi)
        lws_callback_on_writable(req->wsi);
    req_unref(req);
}

void web_reply_json(web_req *req, int status, json_t *body)
{
    if (!body) {
        log_error("http.internal", "path=%s reason=\"reply body could not be built\"", req->path);
        web_reply_error(req, 500, "internal", "internal error");
        return;
    }
    char *s = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(12));
    json_decref(body);
    size_t n = strlen(s);
    GBytes *b = g_bytes_new_with_free_func(s, n, free, s);
    web_reply(req, status, "application/json", b);
}

void web_reply_error(web_req *req, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    char *s = web_error_body(code, msg);
    g_free(msg);
    web_reply(req, status, "application/json", g_bytes_new_with_free_func(s, strlen(s), free, s));
}

void web_reply_core_error(web_req *req, int err)
{
    int status = 500;
    switch (err) {
    case CORE_EINVAL:
    case CORE_EPARSE:
        status = 400;
        break;
    case CORE_ENOTFOUND:
        status = 404;
        break;
    case CORE_EEXISTS:
    case CORE_ECONFLICT:
        status = 409;
        break;
    case CORE_ETOOBIG:
        status = 413;
        break;
    case CORE_ETIMEDOUT:
        status = 422; /* the input is too costly to handle, not the server's fault */
        break;
    case CORE_EBUSY:
    case CORE_ESTOPPED:
    case CORE_ESHUTDOWN:
        status = 503;
        break;
    }
    if (status == 503)
        web_req_add_header(req, "retry-after", "1");
    web_reply_error(req, status, core_errcode(err), "%s", core_strerror(err));
}

json_t *web_req_json(web_req *req)
{
    json_error_t jerr;
    json_t *j =
        json_loadb((const char *)(req->body ? req->body->data : (guint8 *)""),
                   req->body ? req->body->len : 0, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!j) {
        web_reply_error(req, 400, "malformed_json",
                        "request body is not valid JSON (line %d, column %d: %s)", jerr.line,
                        jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        web_reply_error(req, 400, "invalid_body", "request body must be a JSON object");
        return NULL;
    }
    return j;
}

/* ---- writing the reply ---- */

static int write_headers(struct lws *wsi, web_req *req)
{
    unsigned char buf[LWS_PRE + 4096], *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf;
    size_t len = req->resp ? g_bytes_get_size(req->resp) : 0;
    if (lws_add_http_common_headers(wsi, (unsigned)req->status, req->content_type,
                                    (lws_filepos_t)len, &p, end))
        return -1;
    /* API answers are not cached unless the handler says otherwise (tiles). */
    GString *extra = g_string_new("x-content-type-options: nosniff\r\n");
    if (!req->extra_headers || !strstr(req->extra_headers, "cache-control:"))
        g_string_append(extra, "cache-control: no-store\r\n");
    if (req->extra_headers)
        g_string_append(extra, req->extra_headers);
    if (req->close_after)
        g_string_append(extra, "connection: close\r\n");
    /* Each line is "name: value\r\n"; lws wants "name:" and the value apart. */
    char **lines = g_strsplit(extra->str, "\r\n", -1);
    g_string_free(extra, TRUE);
    int rc = 0;
    for (char **l = lines; *l && **l && !rc; l++) {
        char *colon = strchr(*l, ':');
        if (!colon)
            continue;
        char name[128];
        g_snprintf(name, sizeof name, "%.*s:", (int)(colon - *l), *l);
        const char *v = colon + 1;
        while (*v == ' ')
            v++;
        rc = lws_add_http_header_by_name(wsi, (const unsigned char *)name, (const unsigned char *)v,
                                         (int)strlen(v), &p, end);
    }
    g_strfreev(lines);
    if (rc || lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    req->headers_sent = 1;
    return 0;
}

/* Returns -1 to close, 0 to keep going. */
static int on_writeable(struct lws *wsi, http_pss *pss)
{
    web_req *req = pss->req;
    if (!req || !req->replied)
        return 0;
    if (!req->headers_sent) {
        if (write_headers(wsi, req))
            return -1;
    }
    size_t total = req->resp ? g_bytes_get_size(req->resp) : 0;
    if (req->sent < total && req->method != WEB_HEAD) {
        static unsigned char buf[LWS_PRE + CHUNK];
        size_t n = MIN(CHUNK, total - req->sent);
        const guint8 *data = g_bytes_get_data(req->resp, NULL);
        memcpy(buf + LWS_PRE, data + req->sent, n);
        req->sent += n;
        enum lws_write_protocol wp = req->sent == total ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP;
        if (lws_write(wsi, buf + LWS_PRE, n, wp) != (int)n)
            return -1;
        if (req->sent < total) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    }
    int close = req->close_after;
    pss->req = NULL;
    req->wsi = NULL;
    req_unref(req);
    if (close)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* ---- static files ---- */

static const char *mime_for(const char *path)
{
    static const struct {
        const char *ext, *mime;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".jpg", "image/jpeg"},
        {".ico", "image/x-icon"},
        {".woff2", "font/woff2"},
        {".pbf", "application/x-protobuf"},
        {".map", "application/json"},
        {".txt", "text/plain; charset=utf-8"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(types); i++)
        if (g_str_has_suffix(path, types[i].ext))
            return types[i].mime;
    return "application/octet-stream";
}

static const char static_headers[] =
    "cache-control: no-cache\r\n"
    "x-content-type-options: nosniff\r\n"
    "referrer-policy: no-referrer\r\n"
    "content-security-policy: default-src 'self'; connect-src 'self' ws: wss:; "
    "img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self' 'unsafe-inline'; "
    "worker-src 'self' blob:; "
    "frame-ancestors 'self'\r\n";

/* Returns a file path under root for the URL path, or NULL when it is not servable. */
static char *static_path(const char *root, const char *path)
{
    if (!root || strstr(path, "..") || strchr(path, '\\'))
        return NULL;
    char *full = g_build_filename(root, path, NULL);
    struct stat st;
    if (stat(full, &st) == 0 && S_ISDIR(st.st_mode)) {
        char *idx = g_build_filename(full, "index.html", NULL);
        g_free(full);
        full = idx;
    }
    if (stat(full, &st) == 0 && S_ISREG(st.st_mode))
        return full;
    g_free(full);
    /* Client-side routes ("/console") get the app shell. */
    const char *last = strrchr(path, '/');
    if (last && !strchr(last, '.')) {
        full = g_build_filename(root, "index.html", NULL);
        if (stat(full, &st) == 0 && S_ISREG(st.st_mode))
            return full;
        g_free(full);
    }
    return NULL;
}

/* ---- request start ---- */

static web_req *req_new(web_server *srv, struct lws *wsi, web_method m, const char *path)
{
    web_req *req = g_new0(web_req, 1);
    req->srv = srv;
    req->wsi = wsi;
    req->method = m;
    req->path = g_strdup(path);
    req->query = read_query(wsi);
    lws_get_peer_simple(wsi, req->peer, sizeof req->peer);
    char type[128];
    if (lws_hdr_copy(wsi, type, sizeof type, WSI_TOKEN_HTTP_CONTENT_TYPE) > 0) {
        type[strcspn(type, ";")] = 0;
        req->body_type = g_ascii_strdown(g_strstrip(type), -1);
    }
    req->started_us = core_mono_us();
    req->refs = 2; /* connection + pending reply */
    srv->pending++;
    return req;
}

static void forbidden_recorded(void *arg)
{
    web_req *req = arg;
    web_reply_error(req, 403, "forbidden", "you may not %s here", req->denied_action);
}

/* The 403 goes out once the refusal is on record. */
void web_reply_forbidden(web_req *req, const char *actor, const char *action, const char *object)
{
    g_strlcpy(req->denied_action, action, sizeof req->denied_action);
    core_sessions_audit_denied(req->srv->deps.sessions, actor, action, object, req->peer,
                               web_method_name(req->method), forbidden_recorded, req);
}

/* The route's action, with /metrics public when configured so. */
static int route_action(const web_server *srv, const web_route *rt)
{
    if (rt->action == CORE_ACT_METRICS_READ && srv->cfg->metrics_public)
        return WEB_PUBLIC;
    return rt->action;
}

/* Checks the session again (it may have ended while the body arrived) and
 * the role, then runs the handler. */
static void dispatch(web_req *req)
{
    req->dispatched = 1;
    int action = route_action(req->srv, req->rt);
    if (action != WEB_PUBLIC) {
        const char *why;
        req->session = core_sessions_check(req->srv->deps.sessions, req->token, &why);
        if (!req->session) {
            web_req_add_header(req, "www-authenticate", "Bearer");
            web_reply_error(req, 401, "unauthorized", "sign in first (%s)", why);
            return;
        }
        if (action >= 0 && !core_may(req->session, (core_action)action, NULL)) {
            web_reply_forbidden(req, req->session->username, core_action_name((core_action)action),
                                req->path);
            req->session = NULL;
            return;
        }
    }
    req->rt->handler(req);
    req->session = NULL;
}

/* Reads "Authorization: Bearer TOKEN"; NULL when absent. */
static char *bearer_token(struct lws *wsi)
{
    char buf[256];
    if (lws_hdr_copy(wsi, buf, sizeof buf, WSI_TOKEN_HTTP_AUTHORIZATION) <= 0)
        return NULL;
    if (g_ascii_strncasecmp(buf, "Bearer ", 7) != 0)
        return NULL;
    return g_strdup(g_strstrip(buf + 7));
}

/* Refuses a request without a live session before its body is read. */
static int authenticate_early(web_req *req, struct lws *wsi)
{
    if (route_action(req->srv, req->rt) == WEB_PUBLIC)
        return 0;
    req->token = bearer_token(wsi);
    const char *why;
    if (core_sessions_check(req->srv->deps.sessions, req->token, &why))
        return 0;
    if (req->token) /* a presented but bad token is a denied attempt */
        core_sessions_audit_denied(req->srv->deps.sessions, "", "session.check", req->path,
                                   req->peer, why, NULL, NULL);
    /* An unread body cannot stay on a keep-alive connection. */
    req->close_after = req->method == WEB_POST || req->method == WEB_PUT ||
                       req->method == WEB_PATCH || req->method == WEB_DELETE;
    web_req_add_header(req, "www-authenticate", "Bearer");
    web_reply_error(req, 401, "unauthorized", "sign in first (%s)", why);
    return -1;
}

static int body_expected(struct lws *wsi, web_method m)
{
    if (m != WEB_POST && m != WEB_PUT && m != WEB_PATCH && m != WEB_DELETE)
        return 0;
    char cl[32] = "";
    if (lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0)
        return g_ascii_strtoll(cl, NULL, 10) > 0;
    return 0; /* a body needs a Content-Length (chunked ones get 411) */
}

static int on_http(struct lws *wsi, web_server *srv, http_pss *pss)
{
    char *uri = NULL;
    int ulen = 0;
    web_method m = map_method(lws_http_get_uri_and_method(wsi, &uri, &ulen));
    char path[2048];
    g_snprintf(path, sizeof path, "%.*s", uri ? ulen : 1, uri ? uri : "/");
    web_req *req = req_new(srv, wsi, m, path);
    pss->req = req;
    if (srv->draining) {
        web_reply_error(req, 503, "shutting_down", "the server is shutting down");
        req->close_after = 1;
        return 0;
    }
    void *h = NULL;
    char allow[64];
    const char *pattern = NULL;
    web_route_result r =
        web_router_match(srv->router, m, path, &h, &req->params, &pattern, allow, sizeof allow);
    req->route = pattern;
    if (r == WEB_ROUTE_FOUND) {
        req->rt = h;
        if (authenticate_early(req, wsi))
            return 0;
        char cl[32] = "";
        int has_length = lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0;
        /* The HTTP/1.1 library does not undo chunked request bodies: ask for a length
         * rather than wait for a body that never completes. */
        if (!has_length && lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
            req->close_after = 1;
            web_reply_error(req, 411, "length_required",
                            "send the body with a Content-Length, not chunked");
            return 0;
        }
        int64_t length = has_length ? g_ascii_strtoll(cl, NULL, 10) : 0;
        if (length > srv->cfg->http_max_body) {
            req->close_after = 1;
            if (length <= (int64_t)DRAIN_FACTOR * srv->cfg->http_max_body) {
                req->discard_body = 1; /* 413 at the end of the body */
                return 0;
            }
            web_reply_error(req, 413, "too_large", "request body over %d bytes",
                            srv->cfg->http_max_body);
            return 0;
        }
        if (body_expected(wsi, m)) {
            req->body = g_byte_array_new();
            return 0;
        }
        dispatch(req);
        return 0;
    }
    if (r == WEB_ROUTE_BAD_METHOD) {
        web_req_add_header(req, "allow", allow);
        web_reply_error(req, 405, "method_not_allowed", "%s is not allowed on %s (allowed: %s)",
                        web_method_name(m), path, allow);
        return 0;
    }
    if ((m == WEB_GET || m == WEB_HEAD) && !g_str_has_prefix(path, "/api/")) {
        char *file = static_path(srv->static_dir, path);
        if (file) {
            /* Static files are served by lws itself; this request object is not used. */
            req->route = "static";
            req->status = 200;
            count_request(req);
            req->replied = 1;
            srv->pending--;
            req_unref(req); /* pending reference */
            pss->req = NULL;
            req->wsi = NULL;
            req_unref(req); /* connection reference */
            /* Over TLS, browsers are told to use nothing else for a year. */
            char *headers = g_strconcat(static_headers,
                                        srv->cfg->tls_cert && *srv->cfg->tls_cert
                                            ? "strict-transport-security: max-age=31536000\r\n"
                                            : "",
                                        NULL);
            int n = lws_serve_http_file(wsi, file, mime_for(file), headers, (int)strlen(headers));
            g_free(headers);
            g_free(file);
            if (n < 0)
                return -1;
            if (n > 0 && lws_http_transaction_completed(wsi))
                return -1;
            return 0;
        }
    }
    web_reply_error(req, 404, "not_found", "no such resource: %s", path);
    return 0;
}

int web_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                      size_t len)
{
    http_pss *pss = user;
    web_server *srv = lws_context_user(lws_get_context(wsi));
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return on_http(wsi, srv, pss);
    case LWS_CALLBACK_HTTP_BODY: {
        web_req *req = pss->req;
        if (!req || req->replied || !req->body)
            return 0; /* includes a body read only to be thrown away */
        if (req->body->len + len > (size_t)srv->cfg->http_max_body) {
            req->close_after = 1;
            web_reply_error(req, 413, "too_large", "request body over %d bytes",
                            srv->cfg->http_max_body);
            return 0;
        }
        g_byte_array_append(req->body, in, (guint)len);
        return 0;
    }
    case LWS_CALLBACK_HTTP_BODY_COMPLETION: {
        web_req *req = pss->req;
        if (!req || req->replied || req->dispatched)
            return 0;
        if (req->discard_body)
            web_reply_error(req, 413, "too_large", "request body over %d bytes",
                            srv->cfg->http_max_body);
        else if (req->rt)
            dispatch(req);
        else
            web_reply_error(req, 404, "not_found", "no such resource: %s", req->path);
        return 0;
    }
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return on_writeable(wsi, pss);
    case LWS_CALLBACK_HTTP_FILE_COMPLETION:
        /* lws leaves ending the transaction (keep-alive or close) to us. */
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    case LWS_CALLBACK_CLOSED_HTTP:
        if (pss && pss->req) {
            web_req *req = pss->req;
            pss->req = NULL;
            req->wsi = NULL;
            /* Closed before its body arrived: no handler will ever reply. */
            if (!req->replied && !req->dispatched) {
                req->replied = 1;
                srv->pending--;
                req_unref(req);
            }
            req_unref(req);
        }
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}
