/*
 * ingest.c — one camera's live stream (ingest.h).
 *
 * The pipeline is built from parts because the codec is known only when
 * rtspsrc offers its stream: its pad-added callback (a streaming thread)
 * adds the depayloader, parser, caps filter and appsink for H.264 or H.265
 * and links them; a stream that is not video is left unlinked. The appsink
 * callback copies each access unit into an `au` and posts it to the loop
 * (core_loop_post). The bus is watched on the loop thread: errors and EOS
 * tear the pipeline down and arm the retry timer; a watchdog a second
 * notices a stream that stopped without saying so.
 *
 * Invariants: the pipeline and every timer belong to the loop thread; the
 * streaming threads touch only the atomic pending counter, the drop flag
 * and the generation number (an access unit posted by a pipeline that has
 * since been torn down is recognised by its generation and thrown away).
 */
#include "ingest_internal.h"

#include "../core/log.h"

#include <gst/app/gstappsink.h>
#include <string.h>

static const char *const state_names[] = {"idle", "connecting", "playing", "retrying"};

const char *vid_state_name(vid_state s)
{
    return state_names[s];
}

/* ---- from the streaming thread ---- */

typedef struct {
    vid_ingest *in;
    unsigned gen;
    vid__au au;
} posted;

static void on_posted(void *p);
static void unref(vid_ingest *in);

static GstFlowReturn new_sample(GstAppSink *sink, gpointer user)
{
    vid_ingest *in = user;
    GstSample *sample = gst_app_sink_pull_sample(sink);
    if (!sample)
        return GST_FLOW_EOS;
    GstBuffer *buf = gst_sample_get_buffer(sample);
    int key = buf && !GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_DELTA_UNIT);
    if (!buf || (g_atomic_int_get(&in->dropping) && !key) ||
        g_atomic_int_get(&in->pending) >= VID_INGEST_MAX_PENDING) {
        /* The loop is behind: drop until the next keyframe, which restarts cleanly. */
        g_atomic_int_set(&in->dropping, 1);
        g_atomic_int_inc(&in->dropped);
        gst_sample_unref(sample);
        return GST_FLOW_OK;
    }
    g_atomic_int_set(&in->dropping, 0);
    GstMapInfo map;
    if (!gst_buffer_map(buf, &map, GST_MAP_READ)) {
        gst_sample_unref(sample);
        return GST_FLOW_OK;
    }
    posted *p = g_new0(posted, 1);
    p->in = in;
    p->gen = (unsigned)g_atomic_int_get(&in->gen);
    p->au.data = g_bytes_new(map.data, map.size);
    GstClockTime dts = GST_BUFFER_DTS_OR_PTS(buf), pts = GST_BUFFER_PTS(buf);
    p->au.dts =
        GST_CLOCK_TIME_IS_VALID(dts) ? (int64_t)gst_util_uint64_scale(dts, 90000, GST_SECOND) : -1;
    p->au.pts = GST_CLOCK_TIME_IS_VALID(pts)
                    ? (int64_t)gst_util_uint64_scale(pts, 90000, GST_SECOND)
                    : p->au.dts;
    p->au.key = key;
    p->au.recv_us = g_get_monotonic_time();
    gst_buffer_unmap(buf, &map);
    gst_sample_unref(sample);
    g_atomic_int_inc(&in->pending);
    g_atomic_int_inc(&in->refs); /* the posted frame keeps the ingest alive */
    core_loop_post(in->loop, on_posted, p);
    return GST_FLOW_OK;
}

/* rtspsrc offered a stream: video gets a depayloader, a parser and the sink. */
static void pad_added(GstElement *src, GstPad *pad, gpointer user)
{
    vid_ingest *in = user;
    (void)src;
    GstCaps *caps = gst_pad_get_current_caps(pad);
    if (!caps)
        caps = gst_pad_query_caps(pad, NULL);
    const GstStructure *st = caps ? gst_caps_get_structure(caps, 0) : NULL;
    const char *media = st ? gst_structure_get_string(st, "media") : NULL;
    const char *enc = st ? gst_structure_get_string(st, "encoding-name") : NULL;
    int h265 = enc && (!g_ascii_strcasecmp(enc, "H265") || !g_ascii_strcasecmp(enc, "HEVC"));
    int h264 = enc && !g_ascii_strcasecmp(enc, "H264");
    if (!media || strcmp(media, "video") != 0 || (!h264 && !h265) ||
        g_atomic_int_get(&in->linked)) {
        if (caps)
            gst_caps_unref(caps);
        return;
    }
    gst_caps_unref(caps);
    GstElement *depay = gst_element_factory_make(h265 ? "rtph265depay" : "rtph264depay", NULL);
    GstElement *parse = gst_element_factory_make(h265 ? "h265parse" : "h264parse", NULL);
    GstElement *pre = gst_element_factory_make("capsfilter", NULL);
    GstElement *filter = gst_element_factory_make("capsfilter", NULL);
    GstElement *sink = gst_element_factory_make("appsink", NULL);
    if (!depay || !parse || !pre || !filter || !sink) {
        g_clear_object(&depay);
        g_clear_object(&parse);
        g_clear_object(&pre);
        g_clear_object(&filter);
        g_clear_object(&sink);
        return;
    }
    g_object_set(parse, "config-interval", -1, NULL);
    GstCaps *want =
        gst_caps_new_simple(h265 ? "video/x-h265" : "video/x-h264", "stream-format", G_TYPE_STRING,
                            "byte-stream", "alignment", G_TYPE_STRING, "au", NULL);
    /* Whole access units from the depayloader too (it delimits them by the
     * RTP marker bit): left to choose, it hands the parser single NAL units,
     * and the parser then cuts a picture of several slices in two. */
    g_object_set(pre, "caps", want, NULL);
    g_object_set(filter, "caps", want, NULL);
    gst_caps_unref(want);
    g_object_set(sink, "sync", FALSE, "max-buffers", 200, "drop", TRUE, NULL);
    GstAppSinkCallbacks cb = {.new_sample = new_sample};
    gst_app_sink_set_callbacks(GST_APP_SINK(sink), &cb, in, NULL);
    gst_bin_add_many(GST_BIN(in->pipeline), depay, pre, parse, filter, sink, NULL);
    if (!gst_element_link_many(depay, pre, parse, filter, sink, NULL)) {
        g_atomic_int_set(&in->link_failed, 1);
        return;
    }
    gst_element_sync_state_with_parent(sink);
    gst_element_sync_state_with_parent(filter);
    gst_element_sync_state_with_parent(parse);
    gst_element_sync_state_with_parent(pre);
    gst_element_sync_state_with_parent(depay);
    GstPad *sinkpad = gst_element_get_static_pad(depay, "sink");
    if (gst_pad_link(pad, sinkpad) == GST_PAD_LINK_OK) {
        g_atomic_int_set(&in->codec_seen, h265 ? VID_CODEC_H265 : VID_CODEC_H264);
        g_atomic_int_set(&in->linked, 1);
    }
    gst_object_unref(sinkpad);
}

/* ---- the loop side ---- */

static void set_state(vid_ingest *in, vid_state s, const char *why)
{
    g_strlcpy(in->reason, why ? why : "", sizeof in->reason);
    if (in->state == s)
        return;
    in->state = s;
    log_info("video.state", "url=\"%s\" state=%s reason=\"%s\"", in->safe_url, vid_state_name(s),
             in->reason);
    if (in->on_state)
        in->on_state(in, s, in->reason, in->user_data);
}

static void teardown(vid_ingest *in)
{
    g_atomic_int_inc(&in->gen);
    if (in->bus_watch)
        g_source_remove(in->bus_watch), in->bus_watch = 0;
    if (in->pipeline) {
        gst_element_set_state(in->pipeline, GST_STATE_NULL);
        gst_object_unref(in->pipeline);
        in->pipeline = NULL;
    }
    g_atomic_int_set(&in->linked, 0);
    vid__writer_reset(in);
}

static void connect_now(vid_ingest *in);

static gboolean retry_fire(gpointer p)
{
    vid_ingest *in = p;
    in->retry_timer = 0;
    connect_now(in);
    return G_SOURCE_REMOVE;
}

static void fail(vid_ingest *in, const char *why)
{
    teardown(in);
    if (!in->wanted) {
        set_state(in, VID_STATE_IDLE, why);
        return;
    }
    in->restarts++;
    set_state(in, VID_STATE_RETRYING, why);
    in->retry_ms = in->retry_ms ? MIN(in->retry_ms * 2, VID_INGEST_RETRY_MAX_MS) : 1000;
    in->retry_timer = g_timeout_add((guint)in->retry_ms, retry_fire, in);
}

static const char *error_reason(GError *e, char *buf, size_t len)
{
    if (e->domain == GST_RESOURCE_ERROR) {
        switch (e->code) {
        case GST_RESOURCE_ERROR_NOT_AUTHORIZED:
            return "unauthorized";
        case GST_RESOURCE_ERROR_NOT_FOUND:
        case GST_RESOURCE_ERROR_OPEN_READ:
        case GST_RESOURCE_ERROR_OPEN_READ_WRITE:
        case GST_RESOURCE_ERROR_READ:
            return strstr(e->message, "401") || strstr(e->message, "uthori") ? "unauthorized"
                                                                             : "unreachable";
        default:
            break;
        }
    }
    g_snprintf(buf, len, "error: %s", e->message);
    return buf;
}

static gboolean on_bus(GstBus *bus, GstMessage *msg, gpointer p)
{
    vid_ingest *in = p;
    (void)bus;
    if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
        GError *e = NULL;
        gst_message_parse_error(msg, &e, NULL);
        char buf[200];
        const char *why = error_reason(e, buf, sizeof buf);
        g_clear_error(&e);
        in->bus_watch = 0; /* returning FALSE removes it */
        fail(in, why);
        return G_SOURCE_REMOVE;
    }
    if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_EOS) {
        in->bus_watch = 0;
        fail(in, "ended");
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

static void connect_now(vid_ingest *in)
{
    teardown(in);
    in->pipeline = gst_pipeline_new(NULL);
    GstElement *src = gst_element_factory_make("rtspsrc", NULL);
    if (!src) {
        fail(in, "error: rtspsrc is missing (gstreamer1.0-plugins-good)");
        return;
    }
    g_object_set(src, "location", in->url, "latency", 200, "do-retransmission", FALSE, "timeout",
                 (guint64)3 * 1000000, "tcp-timeout", (guint64)5 * 1000000, NULL);
    gst_util_set_object_arg(G_OBJECT(src), "protocols", "tcp");
    if (in->user)
        g_object_set(src, "user-id", in->user, "user-pw", in->password ? in->password : "", NULL);
    g_signal_connect(src, "pad-added", G_CALLBACK(pad_added), in);
    gst_bin_add(GST_BIN(in->pipeline), src);
    GstBus *bus = gst_element_get_bus(in->pipeline);
    in->bus_watch = gst_bus_add_watch(bus, on_bus, in);
    gst_object_unref(bus);
    in->connect_us = g_get_monotonic_time();
    in->last_au_us = 0;
    set_state(in, VID_STATE_CONNECTING, "");
    if (gst_element_set_state(in->pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE)
        fail(in, "unreachable");
}

/* A second's look: a stream that says nothing but sends nothing is stalled. */
static gboolean watchdog(gpointer p)
{
    vid_ingest *in = p;
    int64_t now = g_get_monotonic_time(), since = in->last_au_us ? in->last_au_us : in->connect_us;
    if (in->pipeline && (in->state == VID_STATE_PLAYING || in->state == VID_STATE_CONNECTING) &&
        now - since > (int64_t)VID_INGEST_STALL_MS * 1000)
        fail(in, g_atomic_int_get(&in->linked) || in->state == VID_STATE_PLAYING ? "stalled"
                 : g_atomic_int_get(&in->link_failed)                            ? "no_video"
                                                                                 : "unreachable");
    return G_SOURCE_CONTINUE;
}

static void on_posted(void *pp)
{
    posted *p = pp;
    vid_ingest *in = p->in;
    g_atomic_int_dec_and_test(&in->pending);
    if (!in->freed && p->gen == (unsigned)g_atomic_int_get(&in->gen) && in->pipeline) {
        in->frames++;
        in->last_au_us = p->au.recv_us;
        if (in->state != VID_STATE_PLAYING) {
            in->retry_ms = 0;
            set_state(in, VID_STATE_PLAYING, "");
        }
        in->codec = (vid_codec)g_atomic_int_get(&in->codec_seen);
        vid__take_au(in, &p->au);
    }
    g_bytes_unref(p->au.data);
    g_free(p);
    unref(in);
}

/* ---- public ---- */

/* The URL without credentials, for logs. */
static char *safe_url(const char *url)
{
    const char *at = strchr(url, '@'), *scheme = strstr(url, "://");
    if (!at || !scheme || at < scheme)
        return g_strdup(url);
    return g_strdup_printf("%.*s://…@%s", (int)(scheme - url), url, at + 1);
}

vid_ingest *vid_ingest_new(core_loop *loop, const vid_source *src, vid_fragment_fn on_fragment,
                           vid_state_fn on_state, void *user, char **err)
{
    if (vid_init(err))
        return NULL;
    if (!src || !src->url || !g_str_has_prefix(src->url, "rtsp")) {
        if (err)
            *err = g_strdup("an rtsp:// or rtsps:// URL");
        return NULL;
    }
    vid_ingest *in = g_new0(vid_ingest, 1);
    in->loop = loop;
    in->url = g_strdup(src->url);
    in->safe_url = safe_url(src->url);
    in->user = g_strdup(src->user);
    in->password = g_strdup(src->password);
    in->ring_us = (int64_t)MAX(src->ring_seconds, 0) * G_USEC_PER_SEC;
    in->ring_bytes = src->ring_bytes ? src->ring_bytes : (size_t)64 << 20;
    in->on_fragment = on_fragment;
    in->on_state = on_state;
    in->user_data = user;
    in->refs = 1;
    in->gop = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    g_queue_init(&in->ring);
    in->frag = g_byte_array_new();
    in->watchdog = g_timeout_add(1000, watchdog, in);
    return in;
}

void vid_ingest_start(vid_ingest *in)
{
    if (in->wanted)
        return;
    in->wanted = 1;
    in->retry_ms = 0;
    connect_now(in);
}

void vid_ingest_stop(vid_ingest *in)
{
    in->wanted = 0;
    if (in->retry_timer)
        g_source_remove(in->retry_timer), in->retry_timer = 0;
    teardown(in);
    set_state(in, VID_STATE_IDLE, "");
}

static void unref(vid_ingest *in)
{
    if (!g_atomic_int_dec_and_test(&in->refs))
        return;
    vid__ring_clear(in);
    g_ptr_array_unref(in->gop);
    g_byte_array_unref(in->frag);
    if (in->last_key)
        g_bytes_unref(in->last_key);
    g_free(in->url);
    g_free(in->safe_url);
    g_free(in->user);
    g_free(in->password);
    g_free(in);
}

/* Frames still posted to the loop hold a reference each: the memory goes
 * with the last of them, and they are ignored once the ingest is freed. */
void vid_ingest_free(vid_ingest *in)
{
    if (!in)
        return;
    vid_ingest_stop(in);
    g_source_remove(in->watchdog);
    in->freed = 1;
    unref(in);
}

vid_state vid_ingest_state(const vid_ingest *in)
{
    return in->state;
}
const char *vid_ingest_reason(const vid_ingest *in)
{
    return in->reason;
}
vid_codec vid_ingest_codec(const vid_ingest *in)
{
    return in->codec;
}

void vid_ingest_counts(const vid_ingest *in, uint64_t *frames, uint64_t *dropped,
                       uint64_t *restarts)
{
    if (frames)
        *frames = in->frames;
    if (dropped)
        *dropped = (uint64_t)g_atomic_int_get(&((vid_ingest *)in)->dropped);
    if (restarts)
        *restarts = in->restarts;
}
