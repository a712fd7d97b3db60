/*
 * camera-sim: an RTSP server that stands in for the city's IP cameras in the
 * video tests and the demo (issue 9).
 *
 * Two kinds of mount, each one shared pipeline for all its clients:
 *  - /cam1 … /camN loop an MP4 file without re-encoding. A "feed" pipeline per
 *    camera (filesrc ! qtdemux ! h264parse ! appsink sync=true) runs for the
 *    whole life of the process, like a real camera: it plays the file at real
 *    time and loops it with non-flushing segment seeks, so its running time
 *    keeps increasing across loops. Each access unit is pushed into the appsrc
 *    of the mount's RTSP media (if a client is watching), restamped from the
 *    feed's running time to the media's, so the media is live ("npt=now-") and
 *    a client sees one continuous stream.
 *  - /synth1 … /synthM encode a live test pattern with the wall clock, to the
 *    millisecond, burnt in (set on a textoverlay by a pad probe on every
 *    frame), for glass-to-glass latency measurements. A second probe, on the
 *    encoder's input, also paints the clock in machine-readable form: a row
 *    of black and white blocks along the bottom of the raw I420 frame (see
 *    "The clock blocks" below), which a browser can read back off a canvas.
 *
 * Threads: GLib's main loop runs the RTSP server, the feeds' bus watches, the
 * signal and stop-after sources; each feed's streaming thread pushes into the
 * appsrcs. feed->lock guards feed->outs, the list of attached appsrcs; an out
 * is added when the server configures a media and removed when it unprepares.
 */
#include <gst/gst.h>
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/rtsp-server/rtsp-server.h>
#include <gst/video/gstvideometa.h>
#include <glib-unix.h>

#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef CAMERA_SIM_FILE
#define CAMERA_SIM_FILE "../shared/data/video/big_buck_bunny_10s.mp4"
#endif

/* Restamped access units are this far in the media's future: room for the
 * feed's scheduling jitter and the loop-point seek, so none arrives late. */
#define SIM_MARGIN (100 * GST_MSECOND)
/* The most an appsrc queues when its media stalls (older data is dropped). */
#define SIM_APPSRC_MAX_BYTES (4u * 1024 * 1024)
#define SIM_MAX_MOUNTS 64

/* The clock blocks: SIM_CLOCK_BLOCKS square blocks of side
 * sim_clock_block(width) px in the bottom block row of the frame, from the
 * left edge: white, black (the start pattern), then the wall clock in
 * milliseconds mod 2^32, most significant bit first (white = 1), then a
 * parity block, white when the 32 bits hold an odd number of ones. Luma
 * SIM_CLOCK_WHITE or SIM_CLOCK_BLACK, neutral chroma. A frame narrower than
 * the blocks need (560 px) gets none. tools/bench/video_glass.mjs reads them. */
#define SIM_CLOCK_BITS 32
#define SIM_CLOCK_BLOCKS (2 + SIM_CLOCK_BITS + 1)
#define SIM_CLOCK_MIN_BLOCK 16
#define SIM_CLOCK_WHITE 235
#define SIM_CLOCK_BLACK 16

struct sim_opts {
    gint port;
    gchar *address;
    gchar *file;
    gint cameras;
    gint synthetic;
    gint width, height, fps, bitrate;
    gboolean h265;
    gboolean list;
    gint stop_after;
    gint stagger; /* ms: file camera i starts i × stagger into the file */
    gchar *user;
    gchar *password;
};

struct sim_feed {
    gchar *name;
    GstElement *pipeline;
    GstCaps *caps; /* of the access units, for the appsrcs */
    GMutex lock;
    GPtrArray *outs; /* struct sim_out *, under lock */
    GMainLoop *loop;
    guint bus_watch;
};

/* One media's appsrc fed by a feed. */
struct sim_out {
    struct sim_feed *feed;
    GstRTSPMedia *media;
    GstElement *appsrc;
    gulong unprepared_id;
    gboolean need_key; /* drop until an IDR: after attaching or a pause */
};

static int exit_code = 0;

static void sim_out_free(gpointer p)
{
    struct sim_out *out = p;
    g_signal_handler_disconnect(out->media, out->unprepared_id);
    gst_object_unref(out->appsrc);
    g_object_unref(out->media);
    g_free(out);
}

static gboolean element_playing(GstElement *e)
{
    GST_OBJECT_LOCK(e);
    gboolean playing =
        GST_STATE(e) == GST_STATE_PLAYING && GST_STATE_PENDING(e) == GST_STATE_VOID_PENDING;
    GST_OBJECT_UNLOCK(e);
    return playing;
}

/* Pushes a copy of buf, restamped to the out's media running time. */
static void sim_out_push(struct sim_out *out, GstBuffer *buf, gint64 feed_rt, gint64 pts)
{
    if (!element_playing(out->appsrc)) {
        out->need_key = TRUE;
        return;
    }
    if (out->need_key && GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_DELTA_UNIT))
        return;
    gint64 shift = feed_rt - pts + (gint64)gst_element_get_base_time(out->feed->pipeline) -
                   (gint64)gst_element_get_base_time(out->appsrc) + (gint64)SIM_MARGIN;
    if (pts + shift < 0)
        return;
    GstBuffer *copy = gst_buffer_copy(buf);
    GST_BUFFER_PTS(copy) = (GstClockTime)(pts + shift);
    if (GST_BUFFER_DTS_IS_VALID(buf) && (gint64)GST_BUFFER_DTS(buf) + shift >= 0)
        GST_BUFFER_DTS(copy) = (GstClockTime)((gint64)GST_BUFFER_DTS(buf) + shift);
    else
        GST_BUFFER_DTS(copy) = GST_CLOCK_TIME_NONE;
    if (out->need_key)
        GST_BUFFER_FLAG_SET(copy, GST_BUFFER_FLAG_DISCONT);
    out->need_key = FALSE;
    gst_app_src_push_buffer(GST_APP_SRC(out->appsrc), copy);
}

/* The feed's streaming thread, once per access unit, at its play time. */
static GstFlowReturn on_feed_sample(GstAppSink *sink, gpointer data)
{
    struct sim_feed *feed = data;
    GstSample *sample = gst_app_sink_pull_sample(sink);
    if (!sample)
        return GST_FLOW_EOS;
    GstBuffer *buf = gst_sample_get_buffer(sample);
    const GstSegment *seg = gst_sample_get_segment(sample);
    guint64 rt;
    if (buf && seg && GST_BUFFER_PTS_IS_VALID(buf) &&
        gst_segment_to_running_time_full(seg, GST_FORMAT_TIME, GST_BUFFER_PTS(buf), &rt) > 0) {
        g_mutex_lock(&feed->lock);
        for (guint i = 0; i < feed->outs->len; i++)
            sim_out_push(g_ptr_array_index(feed->outs, i), buf, (gint64)rt,
                         (gint64)GST_BUFFER_PTS(buf));
        g_mutex_unlock(&feed->lock);
    }
    gst_sample_unref(sample);
    return GST_FLOW_OK;
}

static gboolean feed_seek(struct sim_feed *feed, GstSeekFlags flags, gint64 start)
{
    return gst_element_seek(feed->pipeline, 1.0, GST_FORMAT_TIME, flags | GST_SEEK_FLAG_SEGMENT,
                            GST_SEEK_TYPE_SET, start, GST_SEEK_TYPE_NONE, GST_CLOCK_TIME_NONE);
}

static void report_error(const char *who, GstMessage *msg)
{
    GError *err = NULL;
    gchar *debug = NULL;
    gst_message_parse_error(msg, &err, &debug);
    g_printerr("camera-sim: %s: %s (%s)\n", who, err->message, debug ? debug : "");
    g_clear_error(&err);
    g_free(debug);
}

static void feed_fail(struct sim_feed *feed)
{
    exit_code = 1;
    g_main_loop_quit(feed->loop);
}

static gboolean on_feed_message(GstBus *bus, GstMessage *msg, gpointer data)
{
    struct sim_feed *feed = data;
    switch (GST_MESSAGE_TYPE(msg)) {
    /* The loop's end: a non-flushing seek, so the next loop goes on from this
     * one. EOS is not expected; a flushing seek resets the running time, but
     * the restamping follows the clock. */
    case GST_MESSAGE_SEGMENT_DONE:
    case GST_MESSAGE_EOS:
        if (!feed_seek(feed,
                       GST_MESSAGE_TYPE(msg) == GST_MESSAGE_EOS ? GST_SEEK_FLAG_FLUSH
                                                                : GST_SEEK_FLAG_NONE,
                       0)) {
            g_printerr("camera-sim: %s: cannot loop\n", feed->name);
            feed_fail(feed);
        }
        break;
    case GST_MESSAGE_ERROR:
        report_error(feed->name, msg);
        feed_fail(feed);
        break;
    default:
        break;
    }
    return G_SOURCE_CONTINUE;
}

static void feed_free(struct sim_feed *feed)
{
    if (!feed)
        return;
    if (feed->pipeline)
        gst_element_set_state(feed->pipeline, GST_STATE_NULL);
    if (feed->bus_watch)
        g_source_remove(feed->bus_watch);
    g_ptr_array_free(feed->outs, TRUE);
    g_mutex_clear(&feed->lock);
    if (feed->caps)
        gst_caps_unref(feed->caps);
    if (feed->pipeline)
        gst_object_unref(feed->pipeline);
    g_free(feed->name);
    g_free(feed);
}

/* Prerolls the file (so a bad file fails at start-up, naming why), then
 * plays from offset_ms into it (modulo its length; the first loop is
 * shorter). Cameras started together but at different points of the file
 * send their keyframes at different moments, as real cameras do; from the
 * same point, all their keyframes would arrive at once. */
static int feed_start(struct sim_feed *feed, const char *file, gint64 offset_ms)
{
    GError *err = NULL;
    feed->pipeline = gst_parse_launch("filesrc name=file ! qtdemux name=demux demux.video_0 ! "
                                      "h264parse ! video/x-h264,stream-format=avc,alignment=au ! "
                                      "appsink name=sink sync=true max-buffers=8",
                                      &err);
    if (!feed->pipeline) {
        g_printerr("camera-sim: %s: %s\n", feed->name, err->message);
        g_clear_error(&err);
        return -1;
    }
    GstClock *clock = gst_system_clock_obtain(); /* the media's clock too: see new_factory() */
    gst_pipeline_use_clock(GST_PIPELINE(feed->pipeline), clock);
    gst_object_unref(clock);
    GstElement *src = gst_bin_get_by_name(GST_BIN(feed->pipeline), "file");
    g_object_set(src, "location", file, NULL);
    gst_object_unref(src);
    GstElement *sink = gst_bin_get_by_name(GST_BIN(feed->pipeline), "sink");
    GstAppSinkCallbacks cb = {.new_sample = on_feed_sample};
    gst_app_sink_set_callbacks(GST_APP_SINK(sink), &cb, feed, NULL);

    GstBus *bus = gst_element_get_bus(feed->pipeline);
    gst_element_set_state(feed->pipeline, GST_STATE_PAUSED);
    int rc = -1;
    if (gst_element_get_state(feed->pipeline, NULL, NULL, 10 * GST_SECOND) !=
        GST_STATE_CHANGE_SUCCESS) {
        GstMessage *msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
        if (msg)
            report_error(file, msg);
        else
            g_printerr("camera-sim: %s: does not preroll (not an MP4 with H.264?)\n", file);
        gst_clear_message(&msg);
        goto out;
    }
    GstPad *pad = gst_element_get_static_pad(sink, "sink");
    feed->caps = gst_pad_get_current_caps(pad);
    gst_object_unref(pad);
    gint64 dur = 0, start = 0;
    if (offset_ms > 0 && gst_element_query_duration(feed->pipeline, GST_FORMAT_TIME, &dur) &&
        dur > 0)
        start = offset_ms * GST_MSECOND % dur;
    if (!feed->caps || !feed_seek(feed, GST_SEEK_FLAG_FLUSH | GST_SEEK_FLAG_ACCURATE, start)) {
        g_printerr("camera-sim: %s: cannot loop %s\n", feed->name, file);
        goto out;
    }
    feed->bus_watch = gst_bus_add_watch(bus, on_feed_message, feed);
    gst_element_set_state(feed->pipeline, GST_STATE_PLAYING);
    rc = 0;
out:
    gst_object_unref(bus);
    gst_object_unref(sink);
    return rc;
}

/* The server's main loop: a media stopped; its appsrc gets nothing more. */
static void on_media_unprepared(GstRTSPMedia *media, gpointer data)
{
    struct sim_out *out = data;
    struct sim_feed *feed = out->feed;
    g_mutex_lock(&feed->lock);
    g_ptr_array_remove(feed->outs, out); /* frees out */
    g_mutex_unlock(&feed->lock);
}

static void on_file_media(GstRTSPMediaFactory *factory, GstRTSPMedia *media, gpointer data)
{
    struct sim_feed *feed = data;
    GstElement *bin = gst_rtsp_media_get_element(media);
    GstElement *appsrc = gst_bin_get_by_name(GST_BIN(bin), "src");
    gst_object_unref(bin);
    g_object_set(appsrc, "caps", feed->caps, "format", GST_FORMAT_TIME, "is-live", TRUE,
                 "max-bytes", (guint64)SIM_APPSRC_MAX_BYTES, "leaky-type", 2 /* downstream */,
                 NULL);
    struct sim_out *out = g_new0(struct sim_out, 1);
    out->feed = feed;
    out->media = g_object_ref(media);
    out->appsrc = appsrc;
    out->need_key = TRUE;
    out->unprepared_id =
        g_signal_connect(media, "unprepared", G_CALLBACK(on_media_unprepared), out);
    g_mutex_lock(&feed->lock);
    g_ptr_array_add(feed->outs, out);
    g_mutex_unlock(&feed->lock);
}

/* Each frame of a synthetic camera shows the wall clock when it was made. */
static GstPadProbeReturn on_synth_frame(GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
    const char *name = data;
    gint64 now = g_get_real_time();
    time_t secs = (time_t)(now / G_USEC_PER_SEC);
    struct tm tm;
    char stamp[32];
    localtime_r(&secs, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
    gchar *text = g_strdup_printf("%s %s.%03d", name, stamp, (int)((now % G_USEC_PER_SEC) / 1000));
    GstElement *overlay = gst_pad_get_parent_element(pad);
    g_object_set(overlay, "text", text, NULL);
    gst_object_unref(overlay);
    g_free(text);
    return GST_PAD_PROBE_OK;
}

/* Side of a clock block for a frame this wide: even, at least
 * SIM_CLOCK_MIN_BLOCK, about a 40th of the width; 0 when they do not fit. */
static gint sim_clock_block(gint width)
{
    gint block = MAX(SIM_CLOCK_MIN_BLOCK, (width / 40) & ~1);
    return block * SIM_CLOCK_BLOCKS <= width ? block : 0;
}

/* Fills a w x h rectangle of one plane with a byte value. */
static void fill_rect(guint8 *plane, gint stride, gint x, gint y, gint w, gint h, guint8 v)
{
    for (gint row = y; row < y + h; row++)
        memset(plane + (gsize)row * stride + x, v, (gsize)w);
}

/* The planes of an I420 frame: from its video meta when it has one, else
 * GStreamer's default layout (which the size must then match). */
static gboolean i420_layout(GstBuffer *buf, gint width, gint height, gsize size, gsize offset[3],
                            gint stride[3])
{
    static GType meta_api;
    if (!meta_api)
        meta_api = g_type_from_name("GstVideoMetaAPI"); /* 0 until libgstvideo registers it */
    GstVideoMeta *meta = meta_api ? (GstVideoMeta *)gst_buffer_get_meta(buf, meta_api) : NULL;
    if (meta && meta->n_planes == 3) {
        for (int i = 0; i < 3; i++) {
            offset[i] = meta->offset[i];
            stride[i] = meta->stride[i];
        }
        return TRUE;
    }
    gint h2 = GST_ROUND_UP_2(height);
    stride[0] = GST_ROUND_UP_4(width);
    stride[1] = stride[2] = GST_ROUND_UP_4(GST_ROUND_UP_2(width) / 2);
    offset[0] = 0;
    offset[1] = (gsize)stride[0] * h2;
    offset[2] = offset[1] + (gsize)stride[1] * (h2 / 2);
    return offset[2] + (gsize)stride[2] * (h2 / 2) == size;
}

/* Paints the clock blocks for `ms` into a mapped I420 frame. */
static void paint_clock(guint8 *data, const gsize offset[3], const gint stride[3], gint width,
                        gint height, guint32 ms)
{
    gint block = sim_clock_block(width);
    if (!block || height < block)
        return;
    guint8 bits[SIM_CLOCK_BLOCKS];
    bits[0] = 1;
    bits[1] = 0;
    guint ones = 0;
    for (int i = 0; i < SIM_CLOCK_BITS; i++) {
        bits[2 + i] = (ms >> (SIM_CLOCK_BITS - 1 - i)) & 1;
        ones += bits[2 + i];
    }
    bits[SIM_CLOCK_BLOCKS - 1] = ones & 1;
    gint y = (height - block) & ~1;
    for (int i = 0; i < SIM_CLOCK_BLOCKS; i++) {
        gint x = i * block;
        fill_rect(data + offset[0], stride[0], x, y, block, block,
                  bits[i] ? SIM_CLOCK_WHITE : SIM_CLOCK_BLACK);
        for (int c = 1; c < 3; c++)
            fill_rect(data + offset[c], stride[c], x / 2, y / 2, block / 2, block / 2, 128);
    }
}

/* The encoder's input, once per raw frame: the clock blocks, stamped now. */
static GstPadProbeReturn on_synth_raw(GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
    const struct sim_opts *o = data;
    guint32 ms = (guint32)((guint64)(g_get_real_time() / 1000) & 0xffffffffu);
    GstBuffer *buf = gst_buffer_make_writable(gst_pad_probe_info_get_buffer(info));
    GST_PAD_PROBE_INFO_DATA(info) = buf;
    GstMapInfo map;
    if (!gst_buffer_map(buf, &map, GST_MAP_READWRITE))
        return GST_PAD_PROBE_OK;
    gsize offset[3];
    gint stride[3];
    if (i420_layout(buf, o->width, o->height, map.size, offset, stride))
        paint_clock(map.data, offset, stride, o->width, o->height, ms);
    gst_buffer_unmap(buf, &map);
    return GST_PAD_PROBE_OK;
}

/* The factory's user data: the mount's name and the options. */
struct sim_synth {
    gchar *name;
    const struct sim_opts *opts;
};

static void free_synth(gpointer data, GClosure *closure)
{
    struct sim_synth *synth = data;
    g_free(synth->name);
    g_free(synth);
}

static void on_synth_media(GstRTSPMediaFactory *factory, GstRTSPMedia *media, gpointer data)
{
    const struct sim_synth *synth = data;
    GstElement *bin = gst_rtsp_media_get_element(media);
    GstElement *overlay = gst_bin_get_by_name(GST_BIN(bin), "clock");
    GstPad *pad = gst_element_get_static_pad(overlay, "video_sink");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, on_synth_frame, g_strdup(synth->name),
                      g_free);
    gst_object_unref(pad);
    gst_object_unref(overlay);
    GstElement *enc = gst_bin_get_by_name(GST_BIN(bin), "enc");
    pad = gst_element_get_static_pad(enc, "sink");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, on_synth_raw, (gpointer)synth->opts, NULL);
    gst_object_unref(pad);
    gst_object_unref(enc);
    gst_object_unref(bin);
}

static gchar *synth_launch(const struct sim_opts *o)
{
    const char *codec = o->h265 ? "265" : "264";
    return g_strdup_printf("( videotestsrc is-live=true pattern=ball ! "
                           "video/x-raw,format=I420,width=%d,height=%d,framerate=%d/1 ! "
                           "textoverlay name=clock font-desc=\"Monospace %d\" valignment=top "
                           "halignment=left shaded-background=true ! "
                           "x%senc name=enc tune=zerolatency speed-preset=ultrafast key-int-max=%d "
                           "bitrate=%d ! h%sparse config-interval=-1 ! rtph%spay name=pay0 pt=96 )",
                           o->width, o->height, o->fps, MAX(o->height / 24, 6), codec, o->fps,
                           o->bitrate, codec, codec);
}

/* Returns 0 when every named element is installed, else names what is not. */
static int need_elements(const char *const *names, const char *package)
{
    for (; *names; names++) {
        GstElementFactory *f = gst_element_factory_find(*names);
        if (!f) {
            g_printerr("camera-sim: GStreamer element %s is missing (Debian package %s)\n", *names,
                       package);
            return -1;
        }
        gst_object_unref(f);
    }
    return 0;
}

static int check_plugins(const struct sim_opts *o)
{
    static const char *const base[] = {"appsrc", "appsink", "videotestsrc", NULL};
    static const char *const good[] = {"qtdemux", "rtph264pay", "rtph265pay", NULL};
    static const char *const bad[] = {"h264parse", "h265parse", NULL};
    static const char *const x264[] = {"x264enc", NULL};
    static const char *const x265[] = {"x265enc", NULL};
    static const char *const pango[] = {"textoverlay", NULL};
    if (need_elements(base, "gstreamer1.0-plugins-base") ||
        need_elements(good, "gstreamer1.0-plugins-good") ||
        need_elements(bad, "gstreamer1.0-plugins-bad"))
        return -1;
    if (o->synthetic > 0 && need_elements(pango, "gstreamer1.0-x"))
        return -1;
    if (o->synthetic > 0 && !o->h265 && need_elements(x264, "gstreamer1.0-plugins-ugly"))
        return -1;
    if (o->synthetic > 0 && o->h265 && need_elements(x265, "gstreamer1.0-plugins-bad"))
        return -1;
    return 0;
}

static void print_mounts(const struct sim_opts *o)
{
    const char *host = strcmp(o->address, "0.0.0.0") == 0 ? "127.0.0.1" : o->address;
    gchar *base = g_path_get_basename(o->file);
    const char *credit =
        strstr(base, "big_buck_bunny") ? " (Big Buck Bunny © Blender Foundation, CC BY 3.0)" : "";
    for (int i = 1; i <= o->cameras; i++)
        printf("rtsp://%s:%d/cam%d file %s, H.264 looped%s\n", host, o->port, i, base, credit);
    for (int i = 1; i <= o->synthetic; i++)
        printf("rtsp://%s:%d/synth%d synthetic %dx%d %d fps %d kbit/s %s, wall clock burnt in\n",
               host, o->port, i, o->width, o->height, o->fps, o->bitrate,
               o->h265 ? "H.265" : "H.264");
    fflush(stdout);
    g_free(base);
}

static gboolean on_quit(gpointer data)
{
    g_main_loop_quit(data);
    return G_SOURCE_REMOVE;
}

static GstRTSPFilterResult drop_client(GstRTSPServer *server, GstRTSPClient *client, gpointer d)
{
    return GST_RTSP_FILTER_REMOVE;
}

static void secure(GstRTSPServer *server, const struct sim_opts *o)
{
    GstRTSPAuth *auth = gst_rtsp_auth_new();
    GstRTSPToken *token =
        gst_rtsp_token_new(GST_RTSP_TOKEN_MEDIA_FACTORY_ROLE, G_TYPE_STRING, "viewer", NULL);
    gchar *basic = gst_rtsp_auth_make_basic(o->user, o->password);
    gst_rtsp_auth_add_basic(auth, basic, token);
    gst_rtsp_auth_add_digest(auth, o->user, o->password, token);
    gst_rtsp_auth_set_supported_methods(auth, GST_RTSP_AUTH_BASIC | GST_RTSP_AUTH_DIGEST);
    gst_rtsp_server_set_auth(server, auth);
    g_free(basic);
    gst_rtsp_token_unref(token);
    g_object_unref(auth);
}

static GstRTSPMediaFactory *new_factory(const struct sim_opts *o, const char *launch)
{
    GstRTSPMediaFactory *f = gst_rtsp_media_factory_new();
    gst_rtsp_media_factory_set_launch(f, launch);
    gst_rtsp_media_factory_set_shared(f, TRUE);
    GstClock *clock = gst_system_clock_obtain();
    gst_rtsp_media_factory_set_clock(f, clock);
    gst_object_unref(clock);
    if (o->user)
        gst_rtsp_media_factory_add_role(f, "viewer", GST_RTSP_PERM_MEDIA_FACTORY_ACCESS,
                                        G_TYPE_BOOLEAN, TRUE, GST_RTSP_PERM_MEDIA_FACTORY_CONSTRUCT,
                                        G_TYPE_BOOLEAN, TRUE, NULL);
    return f;
}

static int parse_opts(int argc, char **argv, struct sim_opts *o)
{
    GOptionEntry entries[] = {
        {"port", 0, 0, G_OPTION_ARG_INT, &o->port, "RTSP port (8554)", "PORT"},
        {"address", 0, 0, G_OPTION_ARG_STRING, &o->address, "address to listen on (127.0.0.1)",
         "ADDR"},
        {"file", 0, 0, G_OPTION_ARG_FILENAME, &o->file, "MP4 (H.264) the file cameras loop",
         "PATH"},
        {"cameras", 0, 0, G_OPTION_ARG_INT, &o->cameras, "file cameras /cam1../camN (1)", "N"},
        {"synthetic", 0, 0, G_OPTION_ARG_INT, &o->synthetic,
         "synthetic cameras /synth1../synthM (1)", "M"},
        {"width", 0, 0, G_OPTION_ARG_INT, &o->width, "synthetic width (1280)", "W"},
        {"height", 0, 0, G_OPTION_ARG_INT, &o->height, "synthetic height (720)", "H"},
        {"fps", 0, 0, G_OPTION_ARG_INT, &o->fps, "synthetic frame rate (25)", "F"},
        {"bitrate", 0, 0, G_OPTION_ARG_INT, &o->bitrate, "synthetic bitrate, kbit/s (2000)",
         "KBPS"},
        {"h265", 0, 0, G_OPTION_ARG_NONE, &o->h265, "encode the synthetic cameras in H.265", NULL},
        {"list", 0, 0, G_OPTION_ARG_NONE, &o->list, "print the mounts and exit", NULL},
        {"stop-after", 0, 0, G_OPTION_ARG_INT, &o->stop_after, "exit after S seconds", "S"},
        {"stagger", 0, 0, G_OPTION_ARG_INT, &o->stagger,
         "file camera i starts i*MS into the file, so keyframes do not all come at once (0)", "MS"},
        {"user", 0, 0, G_OPTION_ARG_STRING, &o->user, "require this RTSP user", "U"},
        {"password", 0, 0, G_OPTION_ARG_STRING, &o->password, "and this password", "P"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    GOptionContext *ctx = g_option_context_new("- RTSP camera simulator");
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_option_context_add_group(ctx, gst_init_get_option_group());
    GError *err = NULL;
    gboolean ok = g_option_context_parse(ctx, &argc, &argv, &err);
    g_option_context_free(ctx);
    if (!ok) {
        g_printerr("camera-sim: %s\n", err->message);
        g_clear_error(&err);
        return -1;
    }
    const char *bad = NULL;
    if (o->port < 1 || o->port > 65535)
        bad = "--port must be 1..65535";
    else if (o->cameras < 0 || o->synthetic < 0 || o->cameras + o->synthetic > SIM_MAX_MOUNTS)
        bad = "--cameras and --synthetic must be 0 or more, 64 in all";
    else if (o->width < 16 || o->width > 7680 || o->height < 16 || o->height > 4320)
        bad = "--width and --height must be 16..7680 and 16..4320";
    else if (o->fps < 1 || o->fps > 120 || o->bitrate < 16 || o->bitrate > 100000)
        bad = "--fps must be 1..120 and --bitrate 16..100000";
    else if (o->stagger < 0 || o->stagger > 3600 * 1000)
        bad = "--stagger must be 0..3600000 ms";
    else if (o->stop_after < 0 || o->stop_after > 30 * 86400)
        bad = "--stop-after must be 0 (never) to 2592000 (30 days)";
    else if (!o->user != !o->password)
        bad = "--user and --password go together";
    if (bad)
        g_printerr("camera-sim: %s\n", bad);
    return bad ? -1 : 0;
}

static int serve(const struct sim_opts *o, GMainLoop *loop, struct sim_feed **feeds)
{
    GstRTSPServer *server = gst_rtsp_server_new();
    gchar *service = g_strdup_printf("%d", o->port);
    gst_rtsp_server_set_address(server, o->address);
    gst_rtsp_server_set_service(server, service);
    g_free(service);
    /* A thread per client, as independent cameras would answer: a new client
     * of a file camera waits for its next keyframe, which must not hold up
     * the clients of the others. */
    GstRTSPThreadPool *pool = gst_rtsp_server_get_thread_pool(server);
    gst_rtsp_thread_pool_set_max_threads(pool, 4 * SIM_MAX_MOUNTS);
    g_object_unref(pool);
    if (o->user)
        secure(server, o);
    GstRTSPMountPoints *mounts = gst_rtsp_server_get_mount_points(server);
    for (int i = 0; i < o->cameras; i++) {
        GstRTSPMediaFactory *f = new_factory(o, "( appsrc name=src is-live=true format=time ! "
                                                "rtph264pay name=pay0 pt=96 config-interval=-1 )");
        g_signal_connect(f, "media-configure", G_CALLBACK(on_file_media), feeds[i]);
        gchar *path = g_strdup_printf("/cam%d", i + 1);
        gst_rtsp_mount_points_add_factory(mounts, path, f);
        g_free(path);
    }
    gchar *launch = synth_launch(o);
    for (int i = 0; i < o->synthetic; i++) {
        GstRTSPMediaFactory *f = new_factory(o, launch);
        struct sim_synth *synth = g_new0(struct sim_synth, 1);
        synth->name = g_strdup_printf("synth%d", i + 1);
        synth->opts = o;
        gchar *path = g_strdup_printf("/%s", synth->name);
        g_signal_connect_data(f, "media-configure", G_CALLBACK(on_synth_media), synth, free_synth,
                              0);
        gst_rtsp_mount_points_add_factory(mounts, path, f);
        g_free(path);
    }
    g_free(launch);
    g_object_unref(mounts);

    int rc = 0;
    guint source = gst_rtsp_server_attach(server, NULL);
    if (!source) {
        g_printerr("camera-sim: cannot listen on %s:%d\n", o->address, o->port);
        rc = 1;
    } else {
        print_mounts(o);
        g_main_loop_run(loop);
        rc = exit_code;
        gst_rtsp_server_client_filter(server, drop_client, NULL);
        g_source_remove(source);
    }
    g_object_unref(server);
    return rc;
}

/* Serves until a signal, --stop-after or a feed's error: the exit status. */
static int run(const struct sim_opts *o)
{
    gst_init(NULL, NULL);
    if (check_plugins(o))
        return 1;
    GMainLoop *loop = g_main_loop_new(NULL, FALSE);
    struct sim_feed *feeds[SIM_MAX_MOUNTS] = {0};
    int rc = 0;
    for (int i = 0; i < o->cameras && rc == 0; i++) {
        feeds[i] = g_new0(struct sim_feed, 1);
        feeds[i]->name = g_strdup_printf("cam%d", i + 1);
        feeds[i]->outs = g_ptr_array_new_with_free_func(sim_out_free);
        feeds[i]->loop = loop;
        g_mutex_init(&feeds[i]->lock);
        if (feed_start(feeds[i], o->file, (gint64)i * o->stagger))
            rc = 1;
    }
    if (rc == 0) {
        g_unix_signal_add(SIGINT, on_quit, loop);
        g_unix_signal_add(SIGTERM, on_quit, loop);
        if (o->stop_after > 0)
            g_timeout_add((guint)o->stop_after * 1000, on_quit, loop);
        rc = serve(o, loop, feeds);
    }
    for (int i = 0; i < o->cameras; i++)
        feed_free(feeds[i]);
    g_main_loop_unref(loop);
    return rc;
}

int main(int argc, char **argv)
{
    struct sim_opts o = {.port = 8554,
                         .cameras = 1,
                         .synthetic = 1,
                         .width = 1280,
                         .height = 720,
                         .fps = 25,
                         .bitrate = 2000};
    setlocale(LC_ALL, "");
    int rc = parse_opts(argc, argv, &o) ? 2 : 0;
    if (!o.address)
        o.address = g_strdup("127.0.0.1");
    if (!o.file)
        o.file = g_strdup(CAMERA_SIM_FILE);
    if (rc == 0 && o.list)
        print_mounts(&o);
    else if (rc == 0)
        rc = run(&o);
    g_free(o.address);
    g_free(o.file);
    g_free(o.user);
    g_free(o.password);
    return rc;
}
