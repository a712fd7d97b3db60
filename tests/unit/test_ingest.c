/* Unit tests: a camera's ingest against the RTSP camera simulator
 * (tools/camera-sim, CITYCMD_CAMERA_SIM, a gst-rtsp-server).
 *
 * - The init segment carries the codec string of the simulator's file
 *   (Big Buck Bunny, H.264 High@L3.1 1280x720: avc1.64001f), fragments come
 *   for every frame, and the keyframe group a new viewer gets starts on a
 *   keyframe.
 * - A snapshot of the last keyframe is a JPEG of 1280x720 (read from its
 *   SOF marker), made without a decoder kept per camera.
 * - A clip from the ring starts on a keyframe at or before the pre-roll asked
 *   for and plays: GStreamer demuxes and decodes it, and its length is what
 *   was asked.
 * - The simulator stopped: the ingest says why and retries; started again on
 *   the same port: the stream comes back by itself.
 * - Wrong credentials: "unauthorized". The right ones, given apart or in
 *   the URL, play. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../core/loop.h"
#include "../../video/ingest.h"
#include "../../video/video.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <gst/gst.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static core_loop *loop;
static int port;
/* What a failed test leaves behind, for the teardown. */
static vid_ingest *live;
static GPid live_sim;

typedef struct {
    int fragments, keyframes, first_is_key;
    vid_state state;
    char why[200];
} seen;

static void on_fragment(vid_ingest *in, const vid_fragment *f, void *user)
{
    (void)in;
    seen *s = user;
    if (!s->fragments)
        s->first_is_key = f->keyframe;
    s->fragments++;
    s->keyframes += f->keyframe;
}

static void on_state(vid_ingest *in, vid_state st, const char *why, void *user)
{
    (void)in;
    seen *s = user;
    s->state = st;
    g_strlcpy(s->why, why, sizeof s->why);
}

/* Runs the loop until pred or timeout_ms. */
static int run_until(int (*pred)(void *), void *arg, int timeout_ms)
{
    int64_t end = g_get_monotonic_time() + (int64_t)timeout_ms * 1000;
    GMainContext *ctx = core_loop_context(loop);
    while (!pred(arg) && g_get_monotonic_time() < end)
        g_main_context_iteration(ctx, FALSE) || (g_usleep(2000), 0);
    return pred(arg);
}

static int never(void *p)
{
    (void)p;
    return 0;
}

static int frames_over(void *p)
{
    return ((seen *)p)->fragments >= 120;
}
static int is_retrying(void *p)
{
    return ((seen *)p)->state == VID_STATE_RETRYING;
}
static int is_playing(void *p)
{
    return ((seen *)p)->state == VID_STATE_PLAYING;
}

static GPid start_sim(const char *const *extra)
{
    const char *bin = getenv("CITYCMD_CAMERA_SIM");
    const char *file = getenv("CITYCMD_VIDEO_BBB");
    char portbuf[16];
    g_snprintf(portbuf, sizeof portbuf, "%d", port);
    const char *argv[16] = {
        bin ? bin : "build/camera-sim", "--port", portbuf, "--cameras", "1", "--synthetic", "0"};
    int n = 7;
    if (file)
        argv[n++] = "--file", argv[n++] = file;
    for (; extra && *extra && n < 15; extra++)
        argv[n++] = *extra;
    GPid pid;
    GError *e = NULL;
    if (!g_spawn_async(NULL, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &pid, &e))
        fail_msg("camera-sim: %s", e->message);
    g_usleep(700 * 1000); /* it listens within a moment */
    live_sim = pid;
    return pid;
}

static void stop_sim(GPid pid)
{
    live_sim = 0;
    kill(pid, SIGTERM);
    int status;
    waitpid(pid, &status, 0);
    g_spawn_close_pid(pid);
}

static char *url(const char *user_pass)
{
    return g_strdup_printf("rtsp://%s%s127.0.0.1:%d/cam1", user_pass ? user_pass : "",
                           user_pass ? "@" : "", port);
}

/* The size a JPEG's first SOF marker says. */
static int jpeg_size(GBytes *b, int *w, int *h)
{
    gsize n;
    const guint8 *p = g_bytes_get_data(b, &n);
    if (n < 4 || p[0] != 0xFF || p[1] != 0xD8 || p[n - 2] != 0xFF || p[n - 1] != 0xD9)
        return -1;
    for (gsize i = 2; i + 9 < n;) {
        if (p[i] != 0xFF)
            return -1;
        guint8 m = p[i + 1];
        gsize len = (gsize)p[i + 2] << 8 | p[i + 3];
        if (m >= 0xC0 && m <= 0xC2) {
            *h = p[i + 5] << 8 | p[i + 6];
            *w = p[i + 7] << 8 | p[i + 8];
            return 0;
        }
        i += 2 + len;
    }
    return -1;
}

/* Demuxes and decodes a file: the frames decoded and the last frame's time. */
typedef struct {
    int frames;
    GstClockTime last;
} counted;

static GstPadProbeReturn count_frame(GstPad *pad, GstPadProbeInfo *info, gpointer user)
{
    (void)pad;
    counted *c = user;
    GstBuffer *b = GST_PAD_PROBE_INFO_BUFFER(info);
    c->frames++;
    if (GST_BUFFER_PTS_IS_VALID(b))
        c->last = MAX(c->last, GST_BUFFER_PTS(b));
    return GST_PAD_PROBE_OK;
}

static int play_file(const char *path, int *frames, double *last_s)
{
    char *desc = g_strdup_printf(
        "filesrc location=\"%s\" ! qtdemux ! h264parse ! decodebin ! fakesink name=sink sync=false",
        path);
    GError *e = NULL;
    GstElement *p = gst_parse_launch(desc, &e);
    g_free(desc);
    if (!p) {
        g_clear_error(&e);
        return -1;
    }
    GstElement *sink = gst_bin_get_by_name(GST_BIN(p), "sink");
    GstPad *pad = gst_element_get_static_pad(sink, "sink");
    counted c = {0, 0};
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, count_frame, &c, NULL);
    gst_element_set_state(p, GST_STATE_PLAYING);
    GstBus *bus = gst_element_get_bus(p);
    GstMessage *m =
        gst_bus_timed_pop_filtered(bus, 20 * GST_SECOND, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
    int ok = m && GST_MESSAGE_TYPE(m) == GST_MESSAGE_EOS;
    if (m)
        gst_message_unref(m);
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(bus);
    gst_object_unref(pad);
    gst_object_unref(sink);
    gst_object_unref(p);
    *frames = c.frames;
    *last_s = (double)c.last / GST_SECOND;
    return ok ? 0 : -1;
}

static void test_stream_snapshot_clip(void **state)
{
    (void)state;
    GPid sim = start_sim(NULL);
    seen s = {0};
    char *u = url(NULL), *err = NULL;
    vid_source src = {.url = u, .ring_seconds = 20};
    vid_ingest *in = live = vid_ingest_new(loop, &src, on_fragment, on_state, &s, &err);
    assert_non_null(in);
    vid_ingest_start(in);
    assert_true(run_until(frames_over, &s, 20000)); /* 5 s of video at 24 fps */
    assert_int_equal(vid_ingest_state(in), VID_STATE_PLAYING);
    assert_string_equal(vid_ingest_codec_string(in), "avc1.64001f");
    assert_true(s.first_is_key);
    assert_true(s.keyframes >= 2); /* an IDR every 2.5 s */
    uint32_t init_id = 0;
    GBytes *init = vid_ingest_init_segment(in, &init_id);
    assert_non_null(init);
    assert_memory_equal((const char *)g_bytes_get_data(init, NULL) + 4, "ftyp", 4);
    g_bytes_unref(init);
    /* What a new viewer gets starts on a keyframe. */
    GPtrArray *gop = vid_ingest_gop(in);
    assert_true(gop->len >= 1);
    g_ptr_array_unref(gop);

    /* A snapshot of the last keyframe. */
    uint32_t w = 0, h = 0;
    GBytes *key = vid_ingest_last_keyframe(in, &w, &h);
    assert_non_null(key);
    assert_int_equal(w, 1280);
    assert_int_equal(h, 720);
    GBytes *jpeg = NULL;
    if (getenv("CITYCMD_TEST_DUMP_KEY"))
        g_file_set_contents(getenv("CITYCMD_TEST_DUMP_KEY"), g_bytes_get_data(key, NULL),
                            (gssize)g_bytes_get_size(key), NULL);
    int rc = vid_snapshot_jpeg(VID_CODEC_H264, key, 85, &jpeg, &err);
    if (rc)
        fail_msg("snapshot: %s", err);
    int jw = 0, jh = 0;
    assert_int_equal(jpeg_size(jpeg, &jw, &jh), 0);
    assert_int_equal(jw, 1280);
    assert_int_equal(jh, 720);
    g_bytes_unref(jpeg);
    g_bytes_unref(key);

    /* A clip from 3 s ago to now: it starts at a keyframe at or before.
     * (The snapshot held the loop: take in the frames that came meanwhile.) */
    run_until(never, NULL, 500);
    int64_t now = g_get_monotonic_time();
    double start_s = 0, dur_s = 0;
    GBytes *clip = vid_ingest_clip(in, now - 3 * G_USEC_PER_SEC, now, &start_s, &dur_s, &err);
    if (!clip)
        fail_msg("clip: %s", err);
    assert_true(start_s <= 0.01 && start_s > -2.6);
    char *path = g_build_filename(g_get_tmp_dir(), "citycmd-test-clip.mp4", NULL);
    assert_true(g_file_set_contents(path, g_bytes_get_data(clip, NULL),
                                    (gssize)g_bytes_get_size(clip), NULL));
    int frames = 0;
    double last = 0;
    assert_int_equal(play_file(path, &frames, &last), 0);
    print_message("clip: pre-roll %.2f s, %.2f s long, %d frames decoded, last at %.2f s\n",
                  -start_s, dur_s, frames, last);
    /* From the keyframe before the pre-roll to now, less a frame or two in flight. */
    assert_true(dur_s > 3 - start_s - 0.4 && dur_s < 3 - start_s + 0.1);
    assert_true(frames >= (int)(dur_s * 24) - 2);
    g_unlink(path);
    g_free(path);
    g_bytes_unref(clip);

    /* The camera goes away: the ingest says so and retries; back: it plays. */
    stop_sim(sim);
    assert_true(run_until(is_retrying, &s, 15000));
    print_message("camera stopped: %s\n", s.why);
    assert_true(s.why[0]);
    sim = start_sim(NULL);
    assert_true(run_until(is_playing, &s, 20000));
    uint64_t restarts = 0;
    vid_ingest_counts(in, NULL, NULL, &restarts);
    assert_true(restarts >= 1);
    vid_ingest_free(in);
    live = NULL;
    stop_sim(sim);
    g_free(u);
}

static void test_wrong_credentials(void **state)
{
    (void)state;
    static const char *const auth[] = {"--user", "viewer", "--password", "the password", NULL};
    GPid sim = start_sim(auth);
    seen s = {0};
    char *u = url(NULL), *err = NULL;
    vid_source src = {.url = u, .user = "viewer", .password = "not the password"};
    vid_ingest *in = live = vid_ingest_new(loop, &src, on_fragment, on_state, &s, &err);
    assert_non_null(in);
    vid_ingest_start(in);
    assert_true(run_until(is_retrying, &s, 15000));
    assert_string_equal(s.why, "unauthorized");
    assert_int_equal(s.fragments, 0);
    vid_ingest_free(in);
    live = NULL;
    stop_sim(sim);
    g_free(u);
}

static int three_seconds(void *p)
{
    return ((seen *)p)->fragments >= 72;
}

/* The right credentials (Digest, which the simulator offers first), given
 * apart or in the URL, play. */
static void test_credentials(void **state)
{
    (void)state;
    static const char *const auth[] = {"--user", "viewer", "--password", "the password", NULL};
    GPid sim = start_sim(auth);
    seen s = {0};
    char *u = url(NULL), *err = NULL;
    vid_source src = {.url = u, .user = "viewer", .password = "the password"};
    vid_ingest *in = live = vid_ingest_new(loop, &src, on_fragment, on_state, &s, &err);
    assert_non_null(in);
    vid_ingest_start(in);
    assert_true(run_until(three_seconds, &s, 20000));
    uint64_t restarts = 1;
    vid_ingest_counts(in, NULL, NULL, &restarts);
    assert_int_equal(restarts, 0);
    vid_ingest_free(in);
    g_free(u);

    seen s2 = {0};
    u = url("viewer:the%20password");
    vid_source in_url = {.url = u};
    in = live = vid_ingest_new(loop, &in_url, on_fragment, on_state, &s2, &err);
    assert_non_null(in);
    vid_ingest_start(in);
    assert_true(run_until(is_playing, &s2, 15000));
    vid_ingest_free(in);
    live = NULL;
    stop_sim(sim);
    g_free(u);
}

/* A failed test returns through cmocka's longjmp: stop what it started. */
static int teardown(void **state)
{
    (void)state;
    vid_ingest_free(live);
    live = NULL;
    if (live_sim)
        stop_sim(live_sim);
    core_loop_drain(loop);
    port++; /* the next test on a fresh port */
    return 0;
}

int main(void)
{
    if (vid_init(NULL))
        return 1;
    loop = core_loop_new(1, 16);
    port = 20000 + (int)(getpid() % 20000);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_stream_snapshot_clip, teardown),
        cmocka_unit_test_teardown(test_wrong_credentials, teardown),
        cmocka_unit_test_teardown(test_credentials, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    core_loop_free(loop);
    return rc;
}
