/* Unit tests: the RTP H.264/H.265 depayloader (video/rtp_depay.h).
 *
 * - Packets made by hand (RFC 6184 single NAL, STAP-A, FU-A; RFC 7798
 *   AP and FU): the access unit out is the NAL units with start codes,
 *   byte for byte, the fragmented header rebuilt, keyframes flagged.
 * - The SDP's parameter sets go before a keyframe that lacks them.
 * - A lost packet drops its unit and what follows up to the next keyframe;
 *   a unit without its marker ends at the next timestamp; timestamps wrap.
 * - Malformed packets (short, wrong version, wrong payload type, padding and
 *   extension lengths that lie, random bytes) are skipped without a crash.
 * - Against GStreamer as the reference: the Big Buck Bunny clip (H.264)
 *   and a test pattern encoded with x265 (H.265), packetized by
 *   rtph264pay / rtph265pay with a small MTU, come out as the same access
 *   units (the same slices, keyframe flags and times) that h264parse /
 *   h265parse cut from the elementary stream. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../video/rtp_depay.h"

#include <glib.h>
#include <stdlib.h>
#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <string.h>

typedef struct {
    GPtrArray *aus; /* GBytes */
    GArray *times;  /* int64_t */
    GArray *keys;   /* int */
} got;

static void on_au(GBytes *au, int64_t t, int key, void *user)
{
    got *g = user;
    g_ptr_array_add(g->aus, au);
    g_array_append_val(g->times, t);
    g_array_append_val(g->keys, key);
}

static void got_init(got *g)
{
    g->aus = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    g->times = g_array_new(FALSE, FALSE, sizeof(int64_t));
    g->keys = g_array_new(FALSE, FALSE, sizeof(int));
}

static void got_clear(got *g)
{
    g_ptr_array_unref(g->aus);
    g_array_unref(g->times);
    g_array_unref(g->keys);
}

/* An RTP packet: version 2, payload type 96, the marker, seq and ts. */
static GByteArray *rtp(uint16_t seq, uint32_t ts, int marker, const uint8_t *payload, size_t n)
{
    GByteArray *p = g_byte_array_new();
    uint8_t h[12] = {0x80,
                     (uint8_t)(96 | (marker ? 0x80 : 0)),
                     (uint8_t)(seq >> 8),
                     (uint8_t)seq,
                     (uint8_t)(ts >> 24),
                     (uint8_t)(ts >> 16),
                     (uint8_t)(ts >> 8),
                     (uint8_t)ts,
                     1,
                     2,
                     3,
                     4};
    g_byte_array_append(p, h, 12);
    g_byte_array_append(p, payload, (guint)n);
    return p;
}

static void push(vid_depay *d, uint16_t seq, uint32_t ts, int marker, const uint8_t *pl, size_t n)
{
    GByteArray *p = rtp(seq, ts, marker, pl, n);
    vid_depay_push(d, p->data, p->len);
    g_byte_array_unref(p);
}

static void assert_au(GBytes *b, const uint8_t *want, size_t n)
{
    gsize len;
    const uint8_t *p = g_bytes_get_data(b, &len);
    assert_int_equal(len, n);
    assert_memory_equal(p, want, n);
}

static const uint8_t SPS[] = {0x67, 0x64, 0x00, 0x1f, 0xac};
static const uint8_t PPS[] = {0x68, 0xeb, 0xe3};

/* STAP-A with SPS and PPS, then an IDR in three FU-A pieces, then a P slice. */
static void test_h264_packets(void **state)
{
    (void)state;
    got g;
    got_init(&g);
    vid_depay *d = vid_depay_new(VID_CODEC_H264, 96, NULL, on_au, &g);
    uint8_t stap[] = {0x78, 0, 5, 0x67, 0x64, 0x00, 0x1f, 0xac, 0, 3, 0x68, 0xeb, 0xe3};
    push(d, 100, 9000, 0, stap, sizeof stap);
    uint8_t fu1[] = {0x7c, 0x85, 0xb8, 0x01}; /* NRI 3, S, type 5 */
    uint8_t fu2[] = {0x7c, 0x05, 0x02, 0x03};
    uint8_t fu3[] = {0x7c, 0x45, 0x04}; /* E */
    push(d, 101, 9000, 0, fu1, sizeof fu1);
    push(d, 102, 9000, 0, fu2, sizeof fu2);
    push(d, 103, 9000, 1, fu3, sizeof fu3);
    uint8_t p[] = {0x41, 0x9a, 0x11};
    push(d, 104, 12750, 1, p, sizeof p);
    assert_int_equal(g.aus->len, 2);
    const uint8_t want[] = {0, 0, 0,    1,    0x67, 0x64, 0x00, 0x1f, 0xac,
                            0, 0, 0,    1,    0x68, 0xeb, 0xe3, 0,    0,
                            0, 1, 0x65, 0xb8, 0x01, 0x02, 0x03, 0x04};
    assert_au(g.aus->pdata[0], want, sizeof want);
    assert_int_equal(g_array_index(g.keys, int, 0), 1);
    assert_int_equal(g_array_index(g.times, int64_t, 0), 0); /* counted from the first */
    const uint8_t want_p[] = {0, 0, 0, 1, 0x41, 0x9a, 0x11};
    assert_au(g.aus->pdata[1], want_p, sizeof want_p);
    assert_int_equal(g_array_index(g.keys, int, 1), 0);
    assert_int_equal(g_array_index(g.times, int64_t, 1), 3750);
    vid_depay_free(d);
    got_clear(&g);
}

/* An IDR alone gets the SDP's parameter sets in front; one with its own
 * does not get them twice. */
static void test_h264_sprop(void **state)
{
    (void)state;
    got g;
    got_init(&g);
    char *s = g_base64_encode(SPS, sizeof SPS), *pp = g_base64_encode(PPS, sizeof PPS);
    char *fmtp = g_strdup_printf("packetization-mode=1; profile-level-id=64001f; "
                                 "sprop-parameter-sets=%s,%s",
                                 s, pp);
    vid_depay *d = vid_depay_new(VID_CODEC_H264, 96, fmtp, on_au, &g);
    uint8_t idr[] = {0x65, 0x88, 0x80};
    push(d, 1, 0, 1, idr, sizeof idr);
    const uint8_t want[] = {0, 0,    0,    1,    0x67, 0x64, 0x00, 0x1f, 0xac, 0,    0,   0,
                            1, 0x68, 0xeb, 0xe3, 0,    0,    0,    1,    0x65, 0x88, 0x80};
    assert_int_equal(g.aus->len, 1);
    assert_au(g.aus->pdata[0], want, sizeof want);
    uint8_t sps2[] = {0x67, 0x4d, 0x00, 0x28};
    push(d, 2, 3000, 0, sps2, sizeof sps2);
    push(d, 3, 3000, 0, PPS, sizeof PPS);
    push(d, 4, 3000, 1, idr, sizeof idr);
    const uint8_t want2[] = {0, 0,    0,    1,    0x67, 0x4d, 0x00, 0x28, 0,    0,    0,
                             1, 0x68, 0xeb, 0xe3, 0,    0,    0,    1,    0x65, 0x88, 0x80};
    assert_au(g.aus->pdata[1], want2, sizeof want2);
    /* The newer SPS is the one kept for the next bare keyframe. */
    push(d, 5, 6000, 1, idr, sizeof idr);
    assert_au(g.aus->pdata[2], want2, sizeof want2);
    vid_depay_free(d);
    g_free(fmtp), g_free(s), g_free(pp);
    got_clear(&g);
}

/* A lost packet: its unit and the P frames after it are dropped, the next
 * keyframe comes through. A unit without a marker ends at the next time. */
static void test_h264_loss(void **state)
{
    (void)state;
    got g;
    got_init(&g);
    char *s = g_base64_encode(SPS, sizeof SPS), *pp = g_base64_encode(PPS, sizeof PPS);
    char *fmtp = g_strdup_printf("sprop-parameter-sets=%s,%s", s, pp);
    vid_depay *d = vid_depay_new(VID_CODEC_H264, 96, fmtp, on_au, &g);
    uint8_t idr[] = {0x65, 0x88}, pslice[] = {0x41, 0x9a};
    uint8_t fu_s[] = {0x5c, 0x81, 0x01}, fu_e[] = {0x5c, 0x41, 0x02};
    push(d, 10, 0, 1, pslice, sizeof pslice); /* before any keyframe: dropped */
    push(d, 11, 100, 1, idr, sizeof idr);     /* 1 */
    push(d, 12, 200, 0, fu_s, sizeof fu_s);
    push(d, 14, 200, 1, fu_e, sizeof fu_e);     /* 13 lost: dropped */
    push(d, 15, 300, 1, pslice, sizeof pslice); /* dropped: no keyframe yet */
    push(d, 16, 400, 1, idr, sizeof idr);       /* 2 */
    push(d, 17, 500, 0, pslice, sizeof pslice); /* no marker: ends at the next time */
    push(d, 18, 600, 1, pslice, sizeof pslice); /* 3 and 4 */
    push(d, 19, 700, 0, fu_e, sizeof fu_e);     /* an end without a start */
    push(d, 20, 800, 1, pslice, sizeof pslice); /* dropped with it */
    push(d, 21, 900, 1, idr, sizeof idr);       /* 5 */
    assert_int_equal(g.aus->len, 5);
    int64_t times[] = {100, 400, 500, 600, 900};
    int keys[] = {1, 1, 0, 0, 1};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(g_array_index(g.times, int64_t, i), times[i]);
        assert_int_equal(g_array_index(g.keys, int, i), keys[i]);
    }
    vid_depay_counts c;
    vid_depay_counts_get(d, &c);
    assert_int_equal(c.lost, 1);
    assert_int_equal(c.dropped_aus, 5);
    assert_int_equal(c.aus, 5);
    vid_depay_free(d);
    g_free(fmtp), g_free(s), g_free(pp);
    got_clear(&g);
}

/* Packets lost at the start of a unit whose first packet to arrive has a
 * new time: the loss is that unit's, so the keyframe missing its first
 * slices is dropped too, and so is what follows until a whole keyframe. */
static void test_loss_at_unit_start(void **state)
{
    (void)state;
    got g;
    got_init(&g);
    vid_depay *d = vid_depay_new(VID_CODEC_H264, 96, NULL, on_au, &g);
    uint8_t idr[] = {0x65, 0x88}, pslice[] = {0x41, 0x9a};
    push(d, 1, 0, 1, idr, sizeof idr);          /* whole: out */
    push(d, 2, 3000, 1, pslice, sizeof pslice); /* out */
    push(d, 6, 6000, 1, idr, sizeof idr);       /* 3-5 lost: the last slice of an IDR only */
    push(d, 7, 9000, 1, pslice, sizeof pslice);
    push(d, 8, 12000, 1, idr, sizeof idr); /* whole again */
    assert_int_equal(g.aus->len, 3);
    assert_int_equal(g_array_index(g.times, int64_t, 2), 12000);
    vid_depay_free(d);
    got_clear(&g);
}

/* 32-bit RTP times run on past the wrap. */
static void test_wrap(void **state)
{
    (void)state;
    got g;
    got_init(&g);
    vid_depay *d = vid_depay_new(VID_CODEC_H264, -1, NULL, on_au, &g);
    uint8_t idr3[] = {0x65, 0x88};
    uint32_t ts[] = {0xFFFFF000u, 0xFFFFFC00u, 0x00000800u};
    for (int i = 0; i < 3; i++)
        push(d, (uint16_t)(65534 + i), ts[i], 1, idr3, sizeof idr3);
    assert_int_equal(g.aus->len, 3);
    assert_int_equal(g_array_index(g.times, int64_t, 0), 0);
    assert_int_equal(g_array_index(g.times, int64_t, 1), 0xC00);
    assert_int_equal(g_array_index(g.times, int64_t, 2), 0x1800);
    vid_depay_free(d);
    got_clear(&g);
}

/* H.265: an AP with VPS, SPS and PPS, then an IDR_W_RADL in two FU pieces. */
static void test_h265_packets(void **state)
{
    (void)state;
    got g;
    got_init(&g);
    vid_depay *d = vid_depay_new(VID_CODEC_H265, 96, NULL, on_au, &g);
    uint8_t ap[] = {0x60, 0x01, 0,    3, 0x40, 0x01, 0x0c, 0,   3,
                    0x42, 0x01, 0x01, 0, 3,    0x44, 0x01, 0xc1}; /* type 48 */
    push(d, 1, 0, 0, ap, sizeof ap);
    uint8_t fu1[] = {0x62, 0x01, 0x93, 0xaf, 0x01}; /* type 49, S, type 19 */
    uint8_t fu2[] = {0x62, 0x01, 0x53, 0x02};       /* E */
    push(d, 2, 0, 0, fu1, sizeof fu1);
    push(d, 3, 0, 1, fu2, sizeof fu2);
    uint8_t trail[] = {0x02, 0x01, 0xd0}; /* TRAIL_R */
    push(d, 4, 3000, 1, trail, sizeof trail);
    assert_int_equal(g.aus->len, 2);
    const uint8_t want[] = {0, 0, 0, 1,    0x40, 0x01, 0x0c, 0, 0, 0, 1,    0x42, 0x01, 0x01, 0,
                            0, 0, 1, 0x44, 0x01, 0xc1, 0,    0, 0, 1, 0x26, 0x01, 0xaf, 0x01, 0x02};
    assert_au(g.aus->pdata[0], want, sizeof want);
    assert_int_equal(g_array_index(g.keys, int, 0), 1);
    assert_int_equal(g_array_index(g.keys, int, 1), 0);
    vid_depay_free(d);
    got_clear(&g);
}

/* Headers that lie, wrong versions and types, random bytes: skipped, and
 * whatever comes out is start-coded. */
static void test_malformed(void **state)
{
    (void)state;
    got g;
    got_init(&g);
    vid_depay *d = vid_depay_new(VID_CODEC_H264, 96, "sprop-parameter-sets=!!!,", on_au, &g);
    uint8_t idr[] = {0x65, 0x88};
    GByteArray *p = rtp(1, 0, 1, idr, sizeof idr);
    vid_depay_push(d, p->data, 11); /* short */
    p->data[0] = 0x40;              /* version 1 */
    vid_depay_push(d, p->data, p->len);
    p->data[0] = 0x8F; /* 15 CSRCs: longer than the packet */
    vid_depay_push(d, p->data, p->len);
    p->data[0] = 0x90; /* an extension header that is not there */
    vid_depay_push(d, p->data, p->len);
    p->data[0] = 0xA0; /* padding longer than the packet */
    p->data[p->len - 1] = 200;
    vid_depay_push(d, p->data, p->len);
    p->data[p->len - 1] = 0x88;
    p->data[0] = 0x80;
    p->data[1] = 0x80 | 97; /* another payload type */
    vid_depay_push(d, p->data, p->len);
    vid_depay_counts c;
    vid_depay_counts_get(d, &c);
    assert_int_equal(c.skipped, 6);
    assert_int_equal(g.aus->len, 0);
    uint8_t stap_bad[] = {0x78, 0, 9, 0x67};
    push(d, 2, 10, 1, stap_bad, sizeof stap_bad);
    assert_int_equal(g.aus->len, 0);
    g_byte_array_unref(p);
    GRand *r = g_rand_new_with_seed(7);
    uint8_t buf[300];
    for (int i = 0; i < 20000; i++) {
        size_t n = (size_t)g_rand_int_range(r, 0, sizeof buf);
        for (size_t k = 0; k < n; k++)
            buf[k] = (uint8_t)g_rand_int(r);
        if (n > 1)
            buf[0] = (uint8_t)(0x80 | (buf[0] & 0x3F)), buf[1] = (uint8_t)(buf[1] & 0x80) | 96;
        vid_depay_push(d, buf, n);
    }
    for (guint i = 0; i < g.aus->len; i++) {
        gsize n;
        const uint8_t *a = g_bytes_get_data(g.aus->pdata[i], &n);
        assert_true(n > 4);
        assert_memory_equal(a, "\0\0\0\1", 4);
    }
    g_rand_free(r);
    vid_depay_free(d);
    got_clear(&g);
}

/* ---- against GStreamer ---- */

/* The VCL NAL units of an Annex B unit, start codes stripped, joined. */
static GByteArray *slices(vid_codec codec, const uint8_t *p, size_t n)
{
    GByteArray *out = g_byte_array_new();
    size_t i = 0;
    while (i + 3 <= n) {
        if (p[i] == 0 && p[i + 1] == 0 && p[i + 2] == 1) {
            size_t s = i + 3, e = s;
            while (e + 3 <= n && !(p[e] == 0 && p[e + 1] == 0 && (p[e + 2] == 1 || p[e + 2] == 0)))
                e++;
            if (e + 3 > n)
                e = n;
            int type = codec == VID_CODEC_H265 ? (p[s] >> 1) & 0x3F : p[s] & 0x1F;
            int vcl = codec == VID_CODEC_H265 ? type < 32 : type >= 1 && type <= 5;
            if (vcl && e > s)
                g_byte_array_append(out, p + s, (guint)(e - s));
            i = e;
        } else {
            i++;
        }
    }
    return out;
}

static GstElement *sink_of(GstElement *pipe, const char *name)
{
    GstElement *s = gst_bin_get_by_name(GST_BIN(pipe), name);
    assert_non_null(s);
    return s;
}

/* Runs the pipeline to its end: "ref" has the parser's access units,
 * "rtp" the payloader's packets. */
static void reference(vid_codec codec, const char *desc)
{
    GError *e = NULL;
    GstElement *pipe = gst_parse_launch(desc, &e);
    if (!pipe)
        fail_msg("pipeline: %s", e ? e->message : "?");
    GstElement *ref = sink_of(pipe, "ref"), *pkts = sink_of(pipe, "rtp");
    gst_element_set_state(pipe, GST_STATE_PLAYING);
    GstBus *bus = gst_element_get_bus(pipe);
    GstMessage *m =
        gst_bus_timed_pop_filtered(bus, 60 * GST_SECOND, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
    assert_non_null(m);
    assert_int_equal(GST_MESSAGE_TYPE(m), GST_MESSAGE_EOS);
    gst_message_unref(m);

    got g;
    got_init(&g);
    vid_depay *d = vid_depay_new(codec, 96, NULL, on_au, &g);
    GstSample *s;
    int packets = 0;
    while ((s = gst_app_sink_try_pull_sample(GST_APP_SINK(pkts), 0))) {
        GstMapInfo map;
        GstBuffer *b = gst_sample_get_buffer(s);
        assert_true(gst_buffer_map(b, &map, GST_MAP_READ));
        vid_depay_push(d, map.data, map.size);
        packets++;
        gst_buffer_unmap(b, &map);
        gst_sample_unref(s);
    }
    int n = 0, keys = 0;
    int64_t t0 = 0;
    GstClockTime p0 = 0;
    while ((s = gst_app_sink_try_pull_sample(GST_APP_SINK(ref), 0))) {
        GstBuffer *b = gst_sample_get_buffer(s);
        GstMapInfo map;
        assert_true(gst_buffer_map(b, &map, GST_MAP_READ));
        assert_true(n < (int)g.aus->len);
        gsize len;
        const uint8_t *ours = g_bytes_get_data(g.aus->pdata[n], &len);
        GByteArray *a = slices(codec, map.data, map.size), *o = slices(codec, ours, len);
        assert_true(a->len > 0);
        assert_int_equal(a->len, o->len);
        assert_memory_equal(a->data, o->data, a->len);
        g_byte_array_unref(a);
        g_byte_array_unref(o);
        int key = !GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DELTA_UNIT);
        assert_int_equal(g_array_index(g.keys, int, n), key);
        keys += key;
        /* The same times, counted from the first (90 kHz; pay rounds). */
        int64_t t = g_array_index(g.times, int64_t, n);
        if (n == 0)
            t0 = t, p0 = GST_BUFFER_PTS(b);
        int64_t want = (int64_t)gst_util_uint64_scale(GST_BUFFER_PTS(b) - p0, 90000, GST_SECOND);
        assert_true(llabs((t - t0) - want) <= 1);
        gst_buffer_unmap(b, &map);
        gst_sample_unref(s);
        n++;
    }
    assert_int_equal(n, (int)g.aus->len);
    assert_true(n >= 50);
    assert_true(keys >= 2);
    assert_true(packets > n * 2); /* most units in several packets */
    print_message("%s: %d packets, %d access units, %d keyframes, all equal\n",
                  codec == VID_CODEC_H265 ? "H.265" : "H.264", packets, n, keys);
    vid_depay_free(d);
    got_clear(&g);
    gst_object_unref(bus);
    gst_element_set_state(pipe, GST_STATE_NULL);
    gst_object_unref(ref);
    gst_object_unref(pkts);
    gst_object_unref(pipe);
}

#define SINKS                                                                                      \
    " ! tee name=t t. ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=0 ! appsink "      \
    "name=ref sync=false max-buffers=0 wait-on-eos=false t. ! queue max-size-buffers=0 "           \
    "max-size-bytes=0 "                                                                            \
    "max-size-time=0 ! %s mtu=1000 config-interval=-1 pt=96 ! appsink name=rtp sync=false "        \
    "wait-on-eos=false "                                                                           \
    "max-buffers=0"

static void test_gstreamer_h264(void **state)
{
    (void)state;
    const char *bbb = g_getenv("CITYCMD_VIDEO_BBB");
    if (!bbb || !g_file_test(bbb, G_FILE_TEST_EXISTS))
        fail_msg("CITYCMD_VIDEO_BBB (../shared/data/video/big_buck_bunny_10s.mp4) is missing");
    char *sinks = g_strdup_printf(SINKS, "rtph264pay");
    char *desc = g_strdup_printf("filesrc location=\"%s\" ! qtdemux ! h264parse config-interval=-1 "
                                 "! video/x-h264,stream-format=byte-stream,alignment=au%s",
                                 bbb, sinks);
    reference(VID_CODEC_H264, desc);
    g_free(desc);
    g_free(sinks);
}

static void test_gstreamer_h265(void **state)
{
    (void)state;
    GstElementFactory *f = gst_element_factory_find("x265enc");
    if (!f)
        fail_msg("x265enc is missing (gstreamer1.0-plugins-bad)");
    gst_object_unref(f);
    char *sinks = g_strdup_printf(SINKS, "rtph265pay");
    char *desc = g_strdup_printf(
        "videotestsrc num-buffers=90 pattern=ball ! "
        "video/x-raw,width=640,height=360,framerate=30/1 "
        "! x265enc key-int-max=30 speed-preset=ultrafast tune=zerolatency bitrate=2000 "
        "! h265parse config-interval=-1 ! video/x-h265,stream-format=byte-stream,alignment=au%s",
        sinks);
    reference(VID_CODEC_H265, desc);
    g_free(desc);
    g_free(sinks);
}

int main(void)
{
    gst_init(NULL, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_h264_packets),   cmocka_unit_test(test_h264_sprop),
        cmocka_unit_test(test_h264_loss),      cmocka_unit_test(test_loss_at_unit_start),
        cmocka_unit_test(test_wrap),           cmocka_unit_test(test_h265_packets),
        cmocka_unit_test(test_malformed),      cmocka_unit_test(test_gstreamer_h264),
        cmocka_unit_test(test_gstreamer_h265),
    };
    return cmocka_run_group_tests_name("rtp_depay", tests, NULL, NULL);
}
