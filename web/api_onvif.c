/*
 * api_onvif.c — ONVIF over HTTP: finding cameras on the network, and
 * pointing a registered camera (video/onvif.h).
 *
 *   POST /api/v1/cameras/discover        cameras.manage: WS-Discovery, then each
 *                                        device described (profiles, stream URIs)
 *   POST /api/v1/cameras/{id}/ptz        cameras.control, the camera's agency:
 *                                        ContinuousMove
 *   POST /api/v1/cameras/{id}/ptz/stop   cameras.control, the camera's agency: Stop
 *
 * The ONVIF calls block, so they run on the worker pool; the handler only
 * checks the request and copies what the worker needs (the camera's
 * address, profile and credentials, which are wiped when the job ends).
 * One discovery runs at a time (it may hold a worker for the whole sweep
 * and the descriptions, bounded by DESCRIBE_BUDGET_MS). The PTZ commands
 * of one camera run one after another in the order they came, so a stop
 * never overtakes the move before it; at most PTZ_QUEUE_MAX wait per
 * camera, beyond that 503. Every PTZ command and every discovery is a row
 * of the audit trail (outcome "ok" or "failed", the values in the detail),
 * committed before the reply. Neither credentials nor camera replies
 * beyond the error sentence reach the logs. Loop thread, apart from the
 * *_work functions.
 */
#include "internal.h"

#include "../core/core.h"
#include "../core/log.h"
#include "../video/cameras.h"
#include "../video/onvif.h"

#include <math.h>
#include <string.h>

#define CREDENTIAL_MAX_BYTES 256
#define DESCRIBE_BUDGET_MS 20000 /* the descriptions of one discovery, in all */
#define PTZ_QUEUE_MAX 8          /* commands waiting per camera */
#define PTZ_TIMEOUT_MIN_MS 100
#define PTZ_TIMEOUT_MAX_MS 60000

static void wipe(char *s)
{
    if (s) {
        memset(s, 0, strlen(s));
        g_free(s);
    }
}

/* ---- the audit trail ---- */

typedef struct {
    char *actor, *action, *object, *source, *outcome, *detail;
    web_req *req;
    int status;
    json_t *reply; /* sent once the row is committed */
} audit_op;

static int audit_write(core_txn *txn, void *arg)
{
    audit_op *a = arg;
    return core_txn_audit(txn, a->actor, a->action, a->object, a->source, a->outcome, a->detail);
}

static void audit_free(audit_op *a)
{
    g_free(a->actor);
    g_free(a->action);
    g_free(a->object);
    g_free(a->source);
    g_free(a->outcome);
    g_free(a->detail);
    json_decref(a->reply);
    g_free(a);
}

static void audit_done(int rc, GPtrArray *events, void *arg)
{
    audit_op *a = arg;
    if (rc) {
        log_error("onvif.audit", "action=%s object=%s error=\"%s\"", a->action, a->object,
                  core_strerror(rc));
        web_reply_core_error(a->req, rc);
    } else {
        web_reply_json(a->req, a->status, a->reply);
        a->reply = NULL;
    }
    audit_free(a);
}

/* Records what was done and then replies status with reply (taken). */
static void audit_then_reply(web_req *req, const char *actor, const char *action,
                             const char *object, int ok, char *detail, int status, json_t *reply)
{
    audit_op *a = g_new0(audit_op, 1);
    a->actor = g_strdup(actor);
    a->action = g_strdup(action);
    a->object = g_strdup(object);
    a->source = g_strdup(req->peer);
    a->outcome = g_strdup(ok ? "ok" : "failed");
    a->detail = detail;
    a->req = req;
    a->status = status;
    a->reply = reply;
    int rc = core_store_write(req->srv->deps.store, audit_write, audit_done, a);
    if (rc)
        audit_done(rc, NULL, a);
}

/* ---- body fields ---- */

/* Refuses fields of body not in allowed (NULL-terminated); 0 or -1 after replying. */
static int only_fields(web_req *req, json_t *body, const char *const *allowed)
{
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    {
        if (!g_strv_contains(allowed, k)) {
            char *msg = g_strdup_printf("'%.40s' is not a field here", k);
            web_reply_invalid(req, k, msg);
            g_free(msg);
            return -1;
        }
    }
    return 0;
}

/* An optional credential: *out (g_free) or NULL; -1 after replying. */
static int credential(web_req *req, json_t *body, const char *k, char **out)
{
    json_t *v = json_object_get(body, k);
    const char *s = json_string_value(v);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!s || strlen(s) > CREDENTIAL_MAX_BYTES || strpbrk(s, "\r\n")) {
        web_reply_invalid(req, k, "text of up to 256 bytes on one line, or null");
        return -1;
    }
    *out = g_strdup(s);
    return 0;
}

/* ---- discovery ---- */

static int discovering; /* a discovery is running */

typedef struct {
    web_req *req;
    core_session *who;
    char *discovery, *network, *username, *password;
    int wait_ms;
    int rc;
    char *why;
    GPtrArray *devices; /* vid_onvif_device* */
    GPtrArray *errors;  /* char* or NULL per device: why it could not be described */
    GPtrArray *used;    /* char* per device: the address it was described at (borrowed) */
} discover_job;

static void discover_free(discover_job *j)
{
    core_session_copy_free(j->who);
    g_free(j->discovery);
    g_free(j->network);
    g_free(j->username);
    wipe(j->password);
    g_free(j->why);
    if (j->devices)
        g_ptr_array_unref(j->devices);
    g_ptr_array_unref(j->errors);
    g_ptr_array_unref(j->used);
    g_free(j);
}

static void discover_work(void *p)
{
    discover_job *j = p;
    vid_onvif_probe probe = {j->discovery, j->network, j->wait_ms};
    j->rc = vid_onvif_discover(&probe, &j->devices, &j->why);
    if (j->rc)
        return;
    vid_onvif_auth auth = {j->username, j->password, 0};
    gint64 end = g_get_monotonic_time() + (gint64)DESCRIBE_BUDGET_MS * 1000;
    for (guint i = 0; i < j->devices->len; i++) {
        vid_onvif_device *d = j->devices->pdata[i];
        const char *url = d->xaddrs->len ? d->xaddrs->pdata[0] : NULL;
        char *why = NULL;
        gint64 left_ms = (end - g_get_monotonic_time()) / 1000;
        if (!url)
            why = g_strdup("the device announced no http:// address");
        else if (left_ms <= 0)
            why = g_strdup("not described: the discovery ran out of time");
        else {
            auth.timeout_ms = (int)MIN(left_ms, VID_ONVIF_TIMEOUT_MS);
            vid_onvif_describe(url, &auth, d, &why);
        }
        g_ptr_array_add(j->errors, why);
        g_ptr_array_add(j->used, (gpointer)url);
    }
}

static int same_url(const char *a, const char *b)
{
    return a && b && *a && g_ascii_strcasecmp(a, b) == 0;
}

/* The registered camera (the session may see) with the device's ONVIF
 * address or one of its stream URIs, as "C-n" (g_free), or NULL. */
static char *registered(web_req *req, const core_session *who, const vid_onvif_device *d)
{
    GPtrArray *all = vid_cameras_all(req->srv->deps.cameras);
    char *found = NULL;
    for (guint i = 0; i < all->len && !found; i++) {
        const vid_camera *cam = all->pdata[i];
        if (!core_may(who, CORE_ACT_CAMERAS_MANAGE, cam->agency) &&
            !core_may(who, CORE_ACT_CAMERAS_READ, cam->agency))
            continue;
        int match = 0;
        for (guint k = 0; k < d->xaddrs->len && !match; k++)
            match = same_url(cam->onvif_url, d->xaddrs->pdata[k]);
        for (guint k = 0; k < d->profiles->len && !match; k++)
            match = same_url(cam->rtsp_url,
                             ((const vid_onvif_profile *)d->profiles->pdata[k])->stream_uri);
        if (match)
            found = g_strdup_printf("C-%" G_GINT64_FORMAT, cam->id);
    }
    g_ptr_array_unref(all);
    return found;
}

static json_t *opt_string(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *profile_json(const vid_onvif_profile *p)
{
    json_t *j =
        json_pack("{ss so so so}", "token", p->token, "name", opt_string(p->name), "stream_uri",
                  opt_string(p->stream_uri), "encoding", opt_string(p->encoding));
    json_object_set_new(j, "width", p->width ? json_integer(p->width) : json_null());
    json_object_set_new(j, "height", p->height ? json_integer(p->height) : json_null());
    json_object_set_new(j, "ptz", json_boolean(p->ptz));
    return j;
}

static json_t *device_json(web_req *req, const discover_job *j, guint i)
{
    const vid_onvif_device *d = j->devices->pdata[i];
    json_t *xaddrs = json_array(), *profiles = json_array();
    for (guint k = 0; k < d->xaddrs->len; k++)
        json_array_append_new(xaddrs, json_string(d->xaddrs->pdata[k]));
    for (guint k = 0; k < d->profiles->len; k++)
        json_array_append_new(profiles, profile_json(d->profiles->pdata[k]));
    char *reg = registered(req, j->who, d);
    json_t *o = json_pack("{ss so so so so so so so so sb so so}", "address", d->address, "xaddrs",
                          xaddrs, "onvif_url", opt_string(j->used->pdata[i]), "manufacturer",
                          opt_string(d->manufacturer), "model", opt_string(d->model), "serial",
                          opt_string(d->serial), "firmware", opt_string(d->firmware), "profiles",
                          profiles, "ptz_url", opt_string(d->ptz_url), "ptz", d->ptz, "registered",
                          opt_string(reg), "error", opt_string(j->errors->pdata[i]));
    g_free(reg);
    return o;
}

static void discover_done(void *p)
{
    discover_job *j = p;
    web_req *req = j->req;
    discovering = 0;
    if (j->rc) {
        log_warn("onvif.discover", "error=\"%s\"", j->why);
        audit_then_reply(
            req, j->who->username, "cameras.discover", "onvif", 0, g_strdup(j->why), 502,
            json_pack("{s{ssss}}", "error", "code", "camera_error", "message", j->why));
        discover_free(j);
        return;
    }
    json_t *list = json_array();
    for (guint i = 0; i < j->devices->len; i++)
        json_array_append_new(list, device_json(req, j, i));
    log_info("onvif.discover", "devices=%u network=\"%s\"", j->devices->len,
             j->network ? j->network : "");
    audit_then_reply(
        req, j->who->username, "cameras.discover", "onvif", 1,
        g_strdup_printf("devices=%u network=%s", j->devices->len, j->network ? j->network : ""),
        200, json_pack("{so}", "devices", list));
    discover_free(j);
}

/* The network to sweep: the body's, else --onvif-network; -1 after replying. */
static int discover_network(web_req *req, json_t *body, char **network)
{
    json_t *v = json_object_get(body, "network");
    const char *s = json_string_value(v);
    const char *configured = req->srv->cfg->onvif_network;
    *network = NULL;
    if (v && !json_is_null(v) && !s) {
        web_reply_invalid(req, "network", "an IPv4 network such as 192.168.1.0/24, or null");
        return -1;
    }
    const char *net = v ? s : configured;
    if (!net || !*net)
        return 0;
    guint32 first, count;
    char *why = NULL;
    if (vid_onvif_cidr_hosts(net, VID_ONVIF_NETWORK_MIN_PREFIX, &first, &count, &why)) {
        char *msg = v ? why : g_strdup_printf("--onvif-network: %s", why);
        web_reply_invalid(req, "network", msg);
        if (msg != why)
            g_free(msg);
        g_free(why);
        return -1;
    }
    *network = g_strdup(net);
    return 0;
}

static void cameras_discover(web_req *req)
{
    static const char *const fields[] = {"username", "password", "wait_ms", "network", NULL};
    json_t *body = req->body && req->body->len ? web_req_json(req) : json_object();
    if (!body)
        return;
    discover_job *j = g_new0(discover_job, 1);
    json_t *wait = json_object_get(body, "wait_ms");
    j->wait_ms = VID_ONVIF_WAIT_DEFAULT_MS;
    int bad = only_fields(req, body, fields) || credential(req, body, "username", &j->username) ||
              credential(req, body, "password", &j->password);
    if (!bad && wait &&
        (!json_is_integer(wait) || json_integer_value(wait) < 100 ||
         json_integer_value(wait) > VID_ONVIF_WAIT_MAX_MS)) {
        web_reply_invalid(req, "wait_ms", "how long to listen for cameras, 100 to 10000 ms");
        bad = 1;
    }
    if (!bad && wait)
        j->wait_ms = (int)json_integer_value(wait);
    bad = bad || discover_network(req, body, &j->network);
    json_decref(body);
    if (!bad && discovering) {
        web_reply_error(req, 409, "discovery_running", "a discovery is running; try again soon");
        bad = 1;
    }
    j->errors = g_ptr_array_new_with_free_func(g_free);
    j->used = g_ptr_array_new();
    if (bad) {
        discover_free(j);
        return;
    }
    j->req = req;
    j->who = core_session_copy(req->session);
    j->discovery = g_strdup(req->srv->cfg->onvif_discovery);
    discovering = 1;
    int rc = core_work_submit(req->srv->deps.loop, discover_work, discover_done, j);
    if (rc) {
        discovering = 0;
        discover_free(j);
        web_reply_core_error(req, rc);
    }
}

/* ---- PTZ ---- */

typedef struct {
    web_req *req;
    char *actor;
    int64_t camera;
    char *url, *profile, *username, *password;
    int stop, timeout_ms;
    double pan, tilt, zoom;
    int rc;
    char *why;
} ptz_job;

/* The commands of one camera: one runs, the others wait in order. */
typedef struct {
    int64_t camera;
    GQueue waiting; /* ptz_job* */
} ptz_line;

static GHashTable *ptz_lines; /* camera id -> ptz_line* while a command of it runs */

static void ptz_free(ptz_job *j)
{
    g_free(j->actor);
    g_free(j->url);
    g_free(j->profile);
    g_free(j->username);
    wipe(j->password);
    g_free(j->why);
    g_free(j);
}

static void ptz_work(void *p)
{
    ptz_job *j = p;
    vid_onvif_auth auth = {j->username, j->password, 0};
    j->rc = j->stop ? vid_onvif_ptz_stop(j->url, j->profile, &auth, &j->why)
                    : vid_onvif_ptz_move(j->url, j->profile, &auth, j->pan, j->tilt, j->zoom,
                                         j->timeout_ms, &j->why);
}

static void ptz_done(void *p);

/* The detail of the audit row: what was asked. */
static char *ptz_detail(const ptz_job *j)
{
    if (j->stop)
        return g_strdup(j->rc ? j->why : "stop");
    char x[G_ASCII_DTOSTR_BUF_SIZE], y[G_ASCII_DTOSTR_BUF_SIZE], z[G_ASCII_DTOSTR_BUF_SIZE];
    g_ascii_formatd(x, sizeof x, "%.6g", j->pan);
    g_ascii_formatd(y, sizeof y, "%.6g", j->tilt);
    g_ascii_formatd(z, sizeof z, "%.6g", j->zoom);
    return g_strdup_printf("pan=%s tilt=%s zoom=%s timeout_ms=%d%s%s", x, y, z, j->timeout_ms,
                           j->rc ? ": " : "", j->rc ? j->why : "");
}

/* Replies to a finished (or refused) command, after its audit row. */
static void ptz_reply(ptz_job *j)
{
    char object[40];
    g_snprintf(object, sizeof object, "camera/%" G_GINT64_FORMAT, j->camera);
    char id[32];
    g_snprintf(id, sizeof id, "C-%" G_GINT64_FORMAT, j->camera);
    json_t *reply;
    int status = 200;
    if (j->rc == CORE_EBUSY || j->rc == CORE_ESHUTDOWN) {
        web_reply_core_error(j->req, j->rc);
        ptz_free(j);
        return;
    }
    if (j->rc) {
        status = 502;
        reply = json_pack("{s{ssss}}", "error", "code", "camera_error", "message", j->why);
        log_warn("onvif.ptz", "camera=%s error=\"%s\"", id, j->why);
    } else if (j->stop) {
        reply = json_pack("{ssss}", "camera", id, "command", "stop");
    } else {
        reply = json_pack("{ssss sf sf sf}", "camera", id, "command", "move", "pan", j->pan, "tilt",
                          j->tilt, "zoom", j->zoom);
        json_object_set_new(reply, "timeout_ms",
                            j->timeout_ms ? json_integer(j->timeout_ms) : json_null());
    }
    audit_then_reply(j->req, j->actor, j->stop ? "camera.ptz.stop" : "camera.ptz", object, !j->rc,
                     ptz_detail(j), status, reply);
    ptz_free(j);
}

/* Runs j now (its camera's line is free). */
static void ptz_start(ptz_job *j)
{
    int rc = core_work_submit(j->req->srv->deps.loop, ptz_work, ptz_done, j);
    if (rc) {
        j->rc = rc;
        ptz_done(j);
    }
}

/* The camera's next command, or the line closes. */
static void ptz_next(int64_t camera)
{
    ptz_line *line = g_hash_table_lookup(ptz_lines, &camera);
    ptz_job *next = line ? g_queue_pop_head(&line->waiting) : NULL;
    if (next)
        ptz_start(next);
    else if (line)
        g_hash_table_remove(ptz_lines, &camera);
}

static void ptz_done(void *p)
{
    ptz_job *j = p;
    int64_t camera = j->camera;
    ptz_reply(j);
    ptz_next(camera);
}

static void ptz_queue(web_req *req, ptz_job *j)
{
    if (!ptz_lines)
        ptz_lines = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, g_free);
    ptz_line *line = g_hash_table_lookup(ptz_lines, &j->camera);
    if (line && g_queue_get_length(&line->waiting) >= PTZ_QUEUE_MAX) {
        web_reply_error(req, 503, "busy", "too many PTZ commands waiting for this camera");
        ptz_free(j);
        return;
    }
    if (line) {
        g_queue_push_tail(&line->waiting, j);
        return;
    }
    line = g_new0(ptz_line, 1);
    line->camera = j->camera;
    g_queue_init(&line->waiting);
    g_hash_table_insert(ptz_lines, &line->camera, line);
    ptz_start(j);
}

/* The camera of the path if the session may point it and it can be; replies otherwise. */
static const vid_camera *ptz_camera(web_req *req)
{
    int64_t id = vid_camera_parse_id(web_param(&req->params, "id"));
    const vid_camera *cam = id > 0 ? vid_cameras_get(req->srv->deps.cameras, id) : NULL;
    if (id <= 0) {
        web_reply_error(req, 400, "invalid_parameter", "a camera id is C-<number>");
        return NULL;
    }
    if (!cam) {
        web_reply_error(req, 404, "not_found", "no camera C-%" G_GINT64_FORMAT, id);
        return NULL;
    }
    if (!core_may(req->session, CORE_ACT_CAMERAS_CONTROL, cam->agency)) {
        web_forbid(req, req->session->username, CORE_ACT_CAMERAS_CONTROL);
        return NULL;
    }
    if (!cam->ptz) {
        web_reply_error(req, 409, "not_ptz",
                        "camera C-%" G_GINT64_FORMAT " cannot pan, tilt or zoom", id);
        return NULL;
    }
    if (!*cam->onvif_url) {
        web_reply_error(req, 409, "no_onvif",
                        "camera C-%" G_GINT64_FORMAT " has no onvif_url to send PTZ commands to",
                        id);
        return NULL;
    }
    return cam;
}

static ptz_job *ptz_job_new(web_req *req, const vid_camera *cam)
{
    ptz_job *j = g_new0(ptz_job, 1);
    j->req = req;
    j->actor = g_strdup(req->session->username);
    j->camera = cam->id;
    j->url = g_strdup(cam->onvif_url);
    j->profile = g_strdup(cam->onvif_profile);
    j->username = g_strdup(cam->username);
    j->password = g_strdup(cam->password);
    return j;
}

/* A velocity field: absent is 0; -1 after replying. */
static int velocity(web_req *req, json_t *body, const char *k, double *out, int *given)
{
    json_t *v = json_object_get(body, k);
    *out = 0;
    if (!v)
        return 0;
    double d = json_number_value(v);
    if (!json_is_number(v) || !isfinite(d) || d < -1 || d > 1) {
        char *msg = g_strdup_printf("the %s velocity, -1 to 1", k);
        web_reply_invalid(req, k, msg);
        g_free(msg);
        return -1;
    }
    *out = d;
    *given = 1;
    return 0;
}

static void camera_ptz(web_req *req)
{
    static const char *const fields[] = {"pan", "tilt", "zoom", "timeout_ms", NULL};
    const vid_camera *cam = ptz_camera(req);
    json_t *body = cam ? web_req_json(req) : NULL;
    if (!body)
        return;
    double pan = 0, tilt = 0, zoom = 0;
    int given = 0;
    json_t *t = json_object_get(body, "timeout_ms");
    int bad = only_fields(req, body, fields) || velocity(req, body, "pan", &pan, &given) ||
              velocity(req, body, "tilt", &tilt, &given) ||
              velocity(req, body, "zoom", &zoom, &given);
    if (!bad && !given) {
        web_reply_invalid(req, "pan", "give at least one of pan, tilt and zoom");
        bad = 1;
    }
    if (!bad && t && !json_is_null(t) &&
        (!json_is_integer(t) || json_integer_value(t) < PTZ_TIMEOUT_MIN_MS ||
         json_integer_value(t) > PTZ_TIMEOUT_MAX_MS)) {
        web_reply_invalid(req, "timeout_ms",
                          "how long the camera moves before it stops, 100 to 60000 ms, or null");
        bad = 1;
    }
    int timeout = t && json_is_integer(t) ? (int)json_integer_value(t) : 0;
    json_decref(body);
    if (bad)
        return;
    ptz_job *j = ptz_job_new(req, cam);
    j->pan = pan;
    j->tilt = tilt;
    j->zoom = zoom;
    j->timeout_ms = timeout;
    ptz_queue(req, j);
}

static void camera_ptz_stop(web_req *req)
{
    const vid_camera *cam = ptz_camera(req);
    if (!cam)
        return;
    ptz_job *j = ptz_job_new(req, cam);
    j->stop = 1;
    ptz_queue(req, j);
}

void web_api_onvif_register(web_server *srv)
{
    static const web_route routes[] = {
        {WEB_POST, "/api/v1/cameras/discover", cameras_discover, CORE_ACT_CAMERAS_MANAGE},
        {WEB_POST, "/api/v1/cameras/{id}/ptz", camera_ptz, CORE_ACT_CAMERAS_CONTROL},
        {WEB_POST, "/api/v1/cameras/{id}/ptz/stop", camera_ptz_stop, CORE_ACT_CAMERAS_CONTROL},
    };
    web_routes_add(srv, routes, G_N_ELEMENTS(routes));
}
