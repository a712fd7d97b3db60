/*
 * api_video.c — snapshots and clips (docs/API.md, "Live video"):
 *
 *   GET  /api/v1/cameras/{id}/snapshot.jpg          cameras.read, the camera's agency
 *   POST /api/v1/incidents/{id}/snapshots           incidents.update (the incident) and
 *        {"camera":"C-2"}                           cameras.read (the camera)
 *   POST /api/v1/incidents/{id}/clips               the same
 *        {"camera":"C-2","before":10,"after":5}
 *   GET  /api/v1/incidents/{id}/media/{name}        incidents.read, the incident
 *
 * A snapshot decodes the camera's latest keyframe once, on a worker: the
 * stream keeps no decoder. A camera nobody watches is started for it (and
 * stops --video-idle later); the request waits up to SNAP_WAIT_S for its
 * first keyframe.
 *
 * A clip holds the camera's stream from the request until `after` seconds
 * later, then cuts the ring of recent video (video/ingest.h) from the last
 * keyframe at or before `before` seconds before the request, writes it as
 * an MP4 on a worker and adds it to the incident's record. The request is
 * answered 202 at once; the clip appears on the incident (an
 * "incident.media" event) when it is written, or the failure does.
 *
 * Files: --state/media/I-<n>/<kind>-C-<camera>-<ms>.<jpg|mp4>.
 */
#include "internal.h"

#include "../core/log.h"
#include "../dispatch/incident.h"
#include "../video/relay.h"

#include <glib/gstdio.h>
#include <string.h>

#define SNAP_WAIT_S 8
#define SNAP_QUALITY 85
#define CLIP_SLACK_MS 400 /* frames of the last instant still on their way */
/* Snapshots and clips under way at once: each holds a camera's stream, and
 * a clip its file in memory while it is written. */
#define MAX_JOBS 32

typedef enum { JOB_SNAPSHOT, JOB_INCIDENT_SNAPSHOT, JOB_CLIP } job_kind;

typedef struct {
    web_server *srv; /* NULL once the server is gone: the job only frees itself */
    web_req *req;    /* NULL once answered */
    core_session *who;
    job_kind kind;
    int64_t camera, incident;
    vid_watch *w;
    guint timer;
    int working; /* on a worker */
    /* snapshot */
    vid_codec codec;
    GBytes *key;
    uint32_t width, height;
    /* clip */
    int before, after;
    int64_t asked_us, from_us, to_us;
    int64_t asked_ms;
    double start_s, duration_s;
    vid_clip *clip; /* cut from the ring, made into a file on a worker */
    /* the result */
    GBytes *out;
    char *path, *name, *err;
    int rc;
} media_job;

static void job_free(media_job *j)
{
    if (j->srv)
        j->srv->media_jobs = g_list_remove(j->srv->media_jobs, j);
    if (j->timer)
        g_source_remove(j->timer);
    vid_watch_end(j->w);
    core_session_copy_free(j->who);
    vid_clip_free(j->clip);
    if (j->key)
        g_bytes_unref(j->key);
    if (j->out)
        g_bytes_unref(j->out);
    g_free(j->path);
    g_free(j->name);
    g_free(j->err);
    g_free(j);
}

/* The camera the session may read, or a reply (404 or 403) and NULL. */
static const vid_camera *readable_camera(web_req *req, const core_session *who, json_t *id)
{
    int64_t cid = json_is_integer(id)  ? json_integer_value(id)
                  : json_is_string(id) ? vid_camera_parse_id(json_string_value(id))
                                       : 0;
    const vid_camera *cam =
        cid > 0 && req->srv->deps.cameras ? vid_cameras_get(req->srv->deps.cameras, cid) : NULL;
    if (!cam || !req->srv->relay) {
        web_reply_error(req, 404, "not_found", "no such camera");
        return NULL;
    }
    if (!core_may(who, CORE_ACT_CAMERAS_READ, cam->agency)) {
        web_forbid(req, who->username, CORE_ACT_CAMERAS_READ);
        return NULL;
    }
    return cam;
}

static void reply_job(media_job *j, int status, const char *code, const char *msg)
{
    if (j->req)
        web_reply_error(j->req, status, code, "%s", msg);
    j->req = NULL;
}

/* ---- the incident's record ---- */

static void media_added(int rc, json_t *item, void *arg)
{
    media_job *j = arg;
    if (j->req) {
        if (rc)
            web_reply_core_error(j->req, rc);
        else
            web_reply_json(j->req, 201, json_pack("{sO}", "media", item));
        j->req = NULL;
    }
    if (rc)
        log_warn("video.media", "incident=I-%" G_GINT64_FORMAT " error=\"%s\"", j->incident,
                 core_strerror(rc));
    json_decref(item);
    job_free(j);
}

/* Adds the job's file (or its failure) to the incident. */
static void add_media(media_job *j)
{
    char at[32];
    core_iso8601(j->asked_ms, at, sizeof at);
    json_t *item = json_object();
    json_object_set_new(item, "kind", json_string(j->kind == JOB_CLIP ? "clip" : "snapshot"));
    json_object_set_new(item, "camera", vid_camera_id_json(j->camera));
    json_object_set_new(item, "at", json_string(at));
    if (j->rc == 0) {
        json_object_set_new(item, "name", json_string(j->name));
        char *url = g_strdup_printf("/api/v1/incidents/I-%" G_GINT64_FORMAT "/media/%s",
                                    j->incident, j->name);
        json_object_set_new(item, "url", json_string(url));
        g_free(url);
        json_object_set_new(item, "bytes", json_integer((json_int_t)g_bytes_get_size(j->out)));
    } else {
        json_object_set_new(item, "error", json_string(j->err ? j->err : core_strerror(j->rc)));
    }
    if (j->kind == JOB_CLIP) {
        json_object_set_new(item, "requested_before_s", json_integer(j->before));
        json_object_set_new(item, "requested_after_s", json_integer(j->after));
        if (j->rc == 0) {
            json_object_set_new(item, "before_s", json_real(j->before - j->start_s));
            json_object_set_new(item, "duration_s", json_real(j->duration_s));
        }
    } else if (j->rc == 0) {
        json_object_set_new(item, "width", json_integer(j->width));
        json_object_set_new(item, "height", json_integer(j->height));
    }
    int rc = disp_incident_media_add(j->srv->deps.incidents, j->incident, item, j->who->username,
                                     "video", media_added, j);
    if (rc) {
        reply_job(j, 503, "busy", core_strerror(rc));
        job_free(j);
    }
}

/* ---- worker: decode, write ---- */

static int write_file(media_job *j, const char *ext)
{
    char *dir =
        g_strdup_printf("%s/media/I-%" G_GINT64_FORMAT, j->srv->cfg->state_dir, j->incident);
    j->name =
        g_strdup_printf("%s-C-%" G_GINT64_FORMAT "-%" G_GINT64_FORMAT ".%s",
                        j->kind == JOB_CLIP ? "clip" : "snapshot", j->camera, j->asked_ms, ext);
    j->path = g_build_filename(dir, j->name, NULL);
    GError *ge = NULL;
    int rc = 0;
    if (g_mkdir_with_parents(dir, 0750) != 0 ||
        !g_file_set_contents(j->path, g_bytes_get_data(j->out, NULL),
                             (gssize)g_bytes_get_size(j->out), &ge)) {
        j->err = g_strdup_printf("cannot write %s: %s", j->path, ge ? ge->message : "no directory");
        rc = CORE_EIO;
    }
    g_clear_error(&ge);
    g_free(dir);
    return rc;
}

static void work(void *p)
{
    media_job *j = p;
    if (j->kind == JOB_CLIP) {
        j->out = vid_clip_file(j->clip, &j->start_s, &j->duration_s, &j->err);
        j->rc = j->out ? write_file(j, "mp4") : CORE_ENOTFOUND;
        return;
    }
    j->rc = vid_snapshot_jpeg(j->codec, j->key, SNAP_QUALITY, &j->out, &j->err);
    if (j->rc == 0 && j->kind == JOB_INCIDENT_SNAPSHOT)
        j->rc = write_file(j, "jpg");
}

static void worked(void *p)
{
    media_job *j = p;
    j->working = 0;
    if (!j->srv) {
        job_free(j);
        return;
    }
    vid_watch_end(j->w);
    j->w = NULL;
    if (j->kind == JOB_SNAPSHOT) {
        if (j->rc)
            reply_job(j, 502, "camera_error", j->err ? j->err : core_strerror(j->rc));
        else if (j->req) {
            web_req_add_header(j->req, "cache-control", "no-store");
            web_reply(j->req, 200, "image/jpeg", g_bytes_ref(j->out));
            j->req = NULL;
        }
        job_free(j);
        return;
    }
    if (j->rc)
        log_warn("video.media",
                 "incident=I-%" G_GINT64_FORMAT " camera=C-%" G_GINT64_FORMAT " error=\"%s\"",
                 j->incident, j->camera, j->err ? j->err : "");
    add_media(j);
}

static void submit(media_job *j)
{
    if (j->timer) {
        g_source_remove(j->timer);
        j->timer = 0;
    }
    j->working = 1;
    int rc = core_work_submit(j->srv->deps.loop, work, worked, j);
    if (rc) {
        j->working = 0;
        reply_job(j, 503, "busy", "the server is busy; try again");
        job_free(j);
    }
}

/* ---- snapshots ---- */

/* The stream's latest keyframe, if it has one: decode it. */
static int try_snapshot(media_job *j)
{
    vid_ingest *in = vid_watch_ingest(j->w);
    j->key = vid_ingest_last_keyframe(in, &j->width, &j->height);
    if (!j->key)
        return 0;
    j->codec = vid_ingest_codec(in);
    submit(j);
    return 1;
}

static void snap_fragment(vid_watch *w, const vid_relay_frag *f, void *user)
{
    (void)w;
    media_job *j = user;
    if (f->keyframe && !j->working && !j->key)
        try_snapshot(j);
}

static const vid_watch_ops snap_ops = {snap_fragment, NULL};

static gboolean snap_timeout(gpointer p)
{
    media_job *j = p;
    j->timer = 0;
    const char *why = vid_ingest_reason(vid_watch_ingest(j->w));
    char *msg = g_strdup_printf("no picture from camera C-%" G_GINT64_FORMAT " within %d s%s%s",
                                j->camera, SNAP_WAIT_S, *why ? ": " : "", why);
    reply_job(j, 504, "camera_unavailable", msg);
    g_free(msg);
    job_free(j);
    return G_SOURCE_REMOVE;
}

/* A new job, or NULL after replying 503 when MAX_JOBS are under way. */
static media_job *job_new(web_req *req, const core_session *who, job_kind kind, int64_t camera)
{
    if (g_list_length(req->srv->media_jobs) >= MAX_JOBS) {
        web_reply_error(req, 503, "busy", "%d snapshots and clips are under way; try again soon",
                        MAX_JOBS);
        return NULL;
    }
    media_job *j = g_new0(media_job, 1);
    j->srv = req->srv;
    j->req = req;
    j->who = core_session_copy(who);
    j->kind = kind;
    j->camera = camera;
    j->asked_ms = core_now_ms();
    j->asked_us = core_mono_us();
    req->srv->media_jobs = g_list_prepend(req->srv->media_jobs, j);
    return j;
}

static int start_watch(media_job *j, const vid_watch_ops *ops)
{
    char *err = NULL;
    j->w = vid_relay_watch(j->srv->relay, j->camera, ops, j, &err);
    if (!j->w) {
        reply_job(j, 502, "camera_error", err ? err : "the camera cannot be watched");
        g_free(err);
        job_free(j);
        return -1;
    }
    return 0;
}

static void start_snapshot(media_job *j)
{
    if (start_watch(j, &snap_ops) < 0)
        return;
    if (!try_snapshot(j))
        j->timer = g_timeout_add_seconds(SNAP_WAIT_S, snap_timeout, j);
}

static void camera_snapshot(web_req *req)
{
    json_t *id = json_string(web_param(&req->params, "id"));
    const vid_camera *cam = readable_camera(req, req->session, id);
    json_decref(id);
    media_job *j = cam ? job_new(req, req->session, JOB_SNAPSHOT, cam->id) : NULL;
    if (j)
        start_snapshot(j);
}

/* ---- incident media ---- */

typedef struct {
    web_req *req;
    core_session *who;
    json_t *body;
    job_kind kind;
    core_action need;
    char *name; /* GET media: the file */
} inc_check;

static void inc_check_free(inc_check *c)
{
    core_session_copy_free(c->who);
    json_decref(c->body);
    g_free(c->name);
    g_free(c);
}

static gboolean clip_due(gpointer p);

static void start_clip(web_req *req, inc_check *c, int64_t incident, const vid_camera *cam)
{
    json_t *b = json_object_get(c->body, "before"), *a = json_object_get(c->body, "after");
    int ring = req->srv->cfg->video_ring_s, max = req->srv->cfg->clip_max_s;
    if (ring <= 0) {
        web_reply_error(req, 409, "clips_off", "the server keeps no recent video (--video-ring 0)");
        return;
    }
    if (b && (!json_is_integer(b) || json_integer_value(b) < 0 || json_integer_value(b) > ring)) {
        char *m = g_strdup_printf("whole seconds from 0 to %d (--video-ring)", ring);
        web_reply_invalid(req, "before", m);
        g_free(m);
        return;
    }
    int before = b ? (int)json_integer_value(b) : 10;
    if (a && (!json_is_integer(a) || json_integer_value(a) < 0 ||
              json_integer_value(a) + before > max)) {
        char *m =
            g_strdup_printf("whole seconds from 0; before + after at most %d (--clip-max)", max);
        web_reply_invalid(req, "after", m);
        g_free(m);
        return;
    }
    int after = a ? (int)json_integer_value(a) : 5;
    if (before + after == 0) {
        web_reply_invalid(req, "after", "a clip needs some time: before + after above 0");
        return;
    }
    media_job *j = job_new(req, c->who, JOB_CLIP, cam->id);
    if (!j)
        return;
    j->incident = incident;
    j->before = before;
    j->after = after;
    j->from_us = j->asked_us - (int64_t)before * G_USEC_PER_SEC;
    j->to_us = j->asked_us + (int64_t)after * G_USEC_PER_SEC;
    if (start_watch(j, NULL) < 0)
        return;
    j->timer = g_timeout_add((guint)after * 1000 + CLIP_SLACK_MS, clip_due, j);
    char ready[32];
    core_iso8601(j->asked_ms + (int64_t)after * 1000 + CLIP_SLACK_MS, ready, sizeof ready);
    web_reply_json(req, 202,
                   json_pack("{s{sosisiss}}", "clip", "camera", vid_camera_id_json(cam->id),
                             "before", before, "after", after, "ready_at", ready));
    j->req = NULL;
}

static gboolean clip_due(gpointer p)
{
    media_job *j = p;
    j->timer = 0;
    vid_ingest *in = vid_watch_ingest(j->w);
    char *err = NULL;
    j->clip = vid_ingest_clip_cut(in, j->from_us, j->to_us, &err);
    if (!j->clip) {
        const char *why = vid_ingest_reason(in);
        j->rc = CORE_ENOTFOUND;
        j->err = *why ? g_strdup_printf("%s (camera: %s)", err ? err : "no video", why)
                      : g_strdup(err ? err : "no video");
        g_free(err);
        vid_watch_end(j->w);
        j->w = NULL;
        add_media(j);
        return G_SOURCE_REMOVE;
    }
    submit(j);
    return G_SOURCE_REMOVE;
}

/* Media files are named by add_media: nothing else is served. */
static int media_name_ok(const char *s)
{
    if (!s || !*s || strlen(s) > 80 || s[0] == '.')
        return 0;
    for (const char *p = s; *p; p++)
        if (!g_ascii_isalnum(*p) && *p != '-' && *p != '.')
            return 0;
    return !strstr(s, "..") && (g_str_has_suffix(s, ".jpg") || g_str_has_suffix(s, ".mp4"));
}

static void serve_media(web_req *req, int64_t incident, const char *name)
{
    char *path = g_strdup_printf("%s/media/I-%" G_GINT64_FORMAT "/%s", req->srv->cfg->state_dir,
                                 incident, name);
    GError *ge = NULL;
    GMappedFile *mf = g_mapped_file_new(path, FALSE, &ge);
    g_free(path);
    if (!mf) {
        g_clear_error(&ge);
        web_reply_error(req, 404, "not_found", "no media %s on incident I-%" G_GINT64_FORMAT, name,
                        incident);
        return;
    }
    GBytes *b = g_mapped_file_get_bytes(mf);
    g_mapped_file_unref(mf);
    web_req_add_header(req, "cache-control", "private, max-age=3600");
    web_reply(req, 200, g_str_has_suffix(name, ".mp4") ? "video/mp4" : "image/jpeg", b);
}

static void incident_read(int rc, json_t *inc, void *arg)
{
    inc_check *c = arg;
    web_req *req = c->req;
    int64_t id = web_parse_ext(web_param(&req->params, "id"), 'I');
    char **agencies = rc ? NULL : disp_incident_agencies(inc);
    if (rc == CORE_ENOTFOUND) {
        web_reply_error(req, 404, "not_found", "no incident I-%" G_GINT64_FORMAT, id);
    } else if (rc) {
        web_reply_core_error(req, rc);
    } else if (!core_may_any(c->who, c->need, agencies)) {
        web_reply_forbidden(req, c->who->username, core_action_name(c->need), req->path);
    } else if (c->name) {
        serve_media(req, id, c->name);
    } else {
        const vid_camera *cam = readable_camera(req, c->who, json_object_get(c->body, "camera"));
        if (cam && c->kind == JOB_CLIP) {
            start_clip(req, c, id, cam);
        } else if (cam) {
            media_job *j = job_new(req, c->who, JOB_INCIDENT_SNAPSHOT, cam->id);
            if (j) {
                j->incident = id;
                start_snapshot(j);
            }
        }
    }
    g_strfreev(agencies);
    json_decref(inc);
    inc_check_free(c);
}

static void check_incident(web_req *req, inc_check *c)
{
    int64_t id = web_parse_ext(web_param(&req->params, "id"), 'I');
    if (!id) {
        web_reply_error(req, 400, "invalid_parameter", "an incident id is I-<number>");
        inc_check_free(c);
        return;
    }
    c->req = req;
    c->who = core_session_copy(req->session);
    int rc = disp_incident_get(req->srv->deps.incidents, id, incident_read, c);
    if (rc) {
        web_reply_core_error(req, rc);
        inc_check_free(c);
    }
}

static void incident_media_post(web_req *req, job_kind kind)
{
    json_t *body = web_req_json(req);
    if (!body)
        return;
    if (!json_object_get(body, "camera")) {
        web_reply_invalid(req, "camera", "the camera, such as \"C-2\"");
        json_decref(body);
        return;
    }
    inc_check *c = g_new0(inc_check, 1);
    c->body = body;
    c->kind = kind;
    c->need = CORE_ACT_INCIDENTS_UPDATE;
    check_incident(req, c);
}

static void incident_snapshot(web_req *req)
{
    incident_media_post(req, JOB_INCIDENT_SNAPSHOT);
}

static void incident_clip(web_req *req)
{
    incident_media_post(req, JOB_CLIP);
}

static void incident_media_get(web_req *req)
{
    const char *name = web_param(&req->params, "name");
    if (!media_name_ok(name)) {
        web_reply_error(req, 404, "not_found", "no such media");
        return;
    }
    inc_check *c = g_new0(inc_check, 1);
    c->need = CORE_ACT_INCIDENTS_READ;
    c->name = g_strdup(name);
    check_incident(req, c);
}

/* ---- registration ---- */

static const web_route routes[] = {
    {WEB_GET, "/api/v1/cameras/{id}/snapshot.jpg", camera_snapshot, CORE_ACT_CAMERAS_READ},
    {WEB_POST, "/api/v1/incidents/{id}/snapshots", incident_snapshot, CORE_ACT_INCIDENTS_UPDATE},
    {WEB_POST, "/api/v1/incidents/{id}/clips", incident_clip, CORE_ACT_INCIDENTS_UPDATE},
    {WEB_GET, "/api/v1/incidents/{id}/media/{name}", incident_media_get, CORE_ACT_INCIDENTS_READ},
};

void web_api_video_register(web_server *srv)
{
    web_routes_add(srv, routes, G_N_ELEMENTS(routes));
}

static const double relay_buckets[] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02,
                                       0.05,   0.1,   0.25,  0.5,   1.0};

static double streams_metric(void *user)
{
    unsigned n = 0;
    vid_relay_counts(((web_server *)user)->relay, &n, NULL);
    return n;
}

void web_video_init(web_server *srv)
{
    srv->m_video_sent = core_counter("citycmd_video_fragments_sent_total",
                                     "Video fragments written to WebSocket viewers.", "");
    srv->m_video_skipped =
        core_counter("citycmd_video_fragments_skipped_total",
                     "Video fragments a viewer did not get: it fell behind, or waits for a"
                     " keyframe.",
                     "");
    srv->m_video_relay = core_histogram(
        "citycmd_video_relay_seconds",
        "From an access unit leaving the camera's depayloader to its WebSocket write.", "",
        relay_buckets, G_N_ELEMENTS(relay_buckets));
    if (!srv->deps.cameras)
        return;
    srv->relay = vid_relay_new(srv->deps.loop, srv->deps.cameras, LWS_PRE + 6,
                               srv->cfg->video_idle_s, srv->cfg->video_ring_s);
    core_gauge_fn("citycmd_video_streams", "Camera streams running.", "", streams_metric, srv);
}

void web_video_fini(web_server *srv)
{
    /* Jobs on a worker free themselves when they come back. */
    for (GList *l = srv->media_jobs, *next; l; l = next) {
        next = l->next;
        media_job *j = l->data;
        j->srv = NULL;
        if (j->timer)
            g_source_remove(j->timer);
        j->timer = 0;
        vid_watch_end(j->w);
        j->w = NULL;
        if (!j->working)
            job_free(j);
    }
    g_list_free(srv->media_jobs);
    srv->media_jobs = NULL;
    vid_relay_free(srv->relay);
    srv->relay = NULL;
}
