/* Unit tests: the fragmented MP4 writer (video/fmp4.h). SPS parsing and codec strings on
 * SPS bytes made by hand from the syntax tables; then the Big Buck Bunny clip (shared data,
 * CITYCMD_VIDEO_BBB) demuxed and parsed by GStreamer, pushed through the writer, and the
 * files it makes read back by GStreamer's discoverer; malformed input last. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../core/core.h"
#include "../../video/fmp4.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <gst/gst.h>
#include <gst/app/gstappsink.h>
#include <gst/pbutils/pbutils.h>
#include <string.h>

/* ---- hand-made parameter sets ----
 * Each is the RBSP written bit by bit from H.264 7.3.2.1.1 / H.265 7.3.2.2, then the stop bit,
 * zero padding, and an emulation prevention byte after every 00 00 followed by 00..03. */

/* H.264: nal 0x67; profile_idc 100 (High), constraint flags 0, level_idc 31;
 * sps_id ue 0 "1", chroma_format_idc ue 1 "010", bit depths ue 0 "1" "1", qpprime "0",
 * scaling matrix "0", log2_max_frame_num_minus4 ue 0 "1", poc type ue 0 "1",
 * log2_max_poc_lsb_minus4 ue 2 "011", max_num_ref_frames ue 4 "00101", gaps "0",
 * pic_width_in_mbs_minus1 ue 79 "0000001010000", pic_height_in_map_units_minus1 ue 44
 * "00000101101", frame_mbs_only "1", direct_8x8 "1", cropping "0", vui "0", stop "1".
 * => 80 * 16 = 1280 wide, 45 * 16 = 720 high, "avc1." 64 00 1f. */
#define SPS_HIGH_720P "67 64 00 1f ac d9 40 50 05 b9"
/* H.264: profile_idc 77 (Main, no chroma fields), constraint 0x40 (set1), level_idc 40;
 * sps_id 0, log2_max_frame_num_minus4 0, poc type 0, lsb_minus4 ue 2, refs ue 4, gaps 0,
 * width_mbs_minus1 ue 119, height_map_units_minus1 ue 67, frame_mbs_only 1, direct_8x8 1,
 * cropping 1 with left 0 right 0 top 0 bottom ue 4, vui 0.
 * => 120 * 16 = 1920 wide; 68 * 16 = 1088 minus CropUnitY (2 for 4:2:0 frames) * 4 = 1080. */
#define SPS_MAIN_1080P "67 4d 40 28 ec a0 3c 01 13 f2 a0"
/* H.265: nal header 42 01 (type 33); vps_id 0, max_sub_layers_minus1 0, nesting 1;
 * profile_space 0, tier 0 (Main), profile_idc 1, compatibility flags [1] and [2] set,
 * constraint flags progressive 1 interlaced 0 non_packed 0 frame_only 1 then zeros,
 * level_idc 123 (4.1); sps_id ue 0, chroma_format_idc ue 1, width ue 1920, height ue 1088,
 * conformance window 1 with left/right/top 0, bottom ue 4, bit depths ue 0 ue 0.
 * => 1920x(1088 - SubHeightC 2 * 4) = 1920x1080; "hvc1." profile 1, compatibility
 * reversed 0b110 = 6, L123, constraint bytes 90 (then five zero bytes, left out). */
#define SPS_HEVC_1080P                                                                             \
    "42 01 01 01 60 00 00 03 00 90 00 00 03 00 00 03 00 7b a0 03 c0 80 11 07 cb c0"

static GByteArray *hex(const char *s)
{
    GByteArray *a = g_byte_array_new();
    while (*s) {
        if (*s == ' ') {
            s++;
            continue;
        }
        char b[3] = {s[0], s[1], 0};
        guint8 v = (guint8)strtoul(b, NULL, 16);
        g_byte_array_append(a, &v, 1);
        s += 2;
    }
    return a;
}

static vid_sps parse_hex(vid_codec codec, const char *s, int expect_rc)
{
    GByteArray *a = hex(s);
    vid_sps sps;
    memset(&sps, 0, sizeof sps);
    assert_int_equal(vid_sps_parse(codec, a->data, a->len, &sps), expect_rc);
    g_byte_array_unref(a);
    return sps;
}

static void test_sps_h264_high_720p(void **state)
{
    (void)state;
    vid_sps s = parse_hex(VID_CODEC_H264, SPS_HIGH_720P, 0);
    assert_int_equal(s.width, 1280);
    assert_int_equal(s.height, 720);
    assert_int_equal(s.profile_idc, 100);
    assert_int_equal(s.level_idc, 31);
    assert_int_equal(s.chroma_format_idc, 1);
    assert_int_equal(s.bit_depth_luma, 8);
    assert_string_equal(s.codec_string, "avc1.64001f");
}

static void test_sps_h264_cropped(void **state)
{
    (void)state;
    vid_sps s = parse_hex(VID_CODEC_H264, SPS_MAIN_1080P, 0);
    assert_int_equal(s.width, 1920);
    assert_int_equal(s.height, 1080);
    assert_string_equal(s.codec_string, "avc1.4d4028");
}

static void test_sps_h265(void **state)
{
    (void)state;
    vid_sps s = parse_hex(VID_CODEC_H265, SPS_HEVC_1080P, 0);
    assert_int_equal(s.width, 1920);
    assert_int_equal(s.height, 1080);
    assert_int_equal(s.profile_idc, 1);
    assert_int_equal(s.level_idc, 123);
    assert_int_equal(s.compat_flags, 0x60000000u);
    assert_string_equal(s.codec_string, "hvc1.1.6.L123.90");
}

static void test_sps_garbage(void **state)
{
    (void)state;
    /* Truncated after the level; all-zero Exp-Golomb codes longer than 32 bits; sps_id
     * "0000001 011111" = 126 (over 31); Baseline with pic_width_in_mbs_minus1 ue 1100 (17616
     * pixels wide); a 16-pixel-wide picture cropped by 2 * 8 on the left; the wrong NAL type;
     * the forbidden bit; an H.265 SPS cut inside profile_tier_level; an H.264 SPS as H.265. */
    parse_hex(VID_CODEC_H264, "67 64 00 1f", CORE_EPARSE);
    parse_hex(VID_CODEC_H264, "67 64 00 1f 00 00 03 00 00 03 00 00 03 00 00 00", CORE_EPARSE);
    parse_hex(VID_CODEC_H264, "67 42 00 1e 02 ff ff", CORE_EPARSE);
    parse_hex(VID_CODEC_H264, "67 42 00 1e da 00 11 37 90", CORE_EPARSE);
    parse_hex(VID_CODEC_H264, "67 42 00 1e da 7c 4f 40", CORE_EPARSE);
    parse_hex(VID_CODEC_H264, "68 64 00 1f ac d9 40 50 05 b9", CORE_EPARSE);
    parse_hex(VID_CODEC_H264, "e7 64 00 1f ac d9 40 50 05 b9", CORE_EPARSE);
    parse_hex(VID_CODEC_H265, "42 01 01 01 60 00 00 03 00 90", CORE_EPARSE);
    parse_hex(VID_CODEC_H265, SPS_HIGH_720P, CORE_EPARSE);
    vid_sps s;
    assert_int_equal(vid_sps_parse(VID_CODEC_H264, NULL, 0, &s), CORE_EINVAL);
}

/* ---- the clip through GStreamer ---- */

typedef struct {
    GBytes *data;
    int64_t dts, pts; /* 90 kHz */
    int key;
} au;

static GPtrArray *aus;  /* au *, the whole clip */
static char *gst_codec; /* gst_codec_utils_caps_get_mime_codec of the demuxed caps */
static char *tmpdir;

static void au_free(gpointer p)
{
    au *a = p;
    g_bytes_unref(a->data);
    g_free(a);
}

static int64_t ticks(GstClockTime t)
{
    return (int64_t)gst_util_uint64_scale(t, 90000, GST_SECOND);
}

static void pull_all(GstElement *sink)
{
    GstSample *smp;
    while ((smp = gst_app_sink_pull_sample(GST_APP_SINK(sink))) != NULL) {
        GstBuffer *buf = gst_sample_get_buffer(smp);
        GstMapInfo map;
        assert_true(gst_buffer_map(buf, &map, GST_MAP_READ));
        au *a = g_new0(au, 1);
        a->data = g_bytes_new(map.data, map.size);
        GstClockTime pts = GST_BUFFER_PTS(buf), dts = GST_BUFFER_DTS(buf);
        a->pts = ticks(pts);
        a->dts = GST_CLOCK_TIME_IS_VALID(dts) ? ticks(dts) : a->pts;
        a->key = !GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_DELTA_UNIT);
        gst_buffer_unmap(buf, &map);
        gst_sample_unref(smp);
        g_ptr_array_add(aus, a);
    }
}

static int setup_clip(void **state)
{
    (void)state;
    const char *path = g_getenv("CITYCMD_VIDEO_BBB");
    if (!path) {
        fprintf(stderr, "CITYCMD_VIDEO_BBB is not set\n");
        return -1;
    }
    gst_init(NULL, NULL);
    char *desc = g_strdup_printf("filesrc location=\"%s\" ! qtdemux ! h264parse name=parse "
                                 "config-interval=-1 ! video/x-h264,stream-format=byte-stream,"
                                 "alignment=au ! appsink name=sink sync=false",
                                 path);
    GError *err = NULL;
    GstElement *pipe = gst_parse_launch(desc, &err);
    g_free(desc);
    if (!pipe) {
        fprintf(stderr, "pipeline: %s\n", err ? err->message : "?");
        g_clear_error(&err);
        return -1;
    }
    GstElement *sink = gst_bin_get_by_name(GST_BIN(pipe), "sink");
    GstElement *parse = gst_bin_get_by_name(GST_BIN(pipe), "parse");
    aus = g_ptr_array_new_with_free_func(au_free);
    gst_element_set_state(pipe, GST_STATE_PLAYING);
    pull_all(sink);
    /* The parser's input caps are qtdemux's (avc, with the avcC as codec_data). */
    GstPad *pad = gst_element_get_static_pad(parse, "sink");
    GstCaps *caps = gst_pad_get_current_caps(pad);
    gst_codec = caps ? gst_codec_utils_caps_get_mime_codec(caps) : NULL;
    if (caps)
        gst_caps_unref(caps);
    gst_object_unref(pad);
    gst_element_set_state(pipe, GST_STATE_NULL);
    gst_object_unref(parse);
    gst_object_unref(sink);
    gst_object_unref(pipe);
    tmpdir = g_dir_make_tmp("test_fmp4_XXXXXX", NULL);
    return aus->len > 0 && tmpdir ? 0 : -1;
}

static void rm_tmpdir(void)
{
    GDir *d = g_dir_open(tmpdir, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name(d)) != NULL) {
        char *p = g_build_filename(tmpdir, name, NULL);
        g_unlink(p);
        g_free(p);
    }
    if (d)
        g_dir_close(d);
    g_rmdir(tmpdir);
}

static int teardown_clip(void **state)
{
    (void)state;
    if (aus)
        g_ptr_array_unref(aus);
    g_free(gst_codec);
    if (tmpdir)
        rm_tmpdir();
    g_free(tmpdir);
    gst_deinit();
    return 0;
}

/* One writer's output: the init segment and each fragment apart. */
typedef struct {
    GBytes *init;
    GBytes *file_init; /* with the duration, after the flush */
    GPtrArray *frags;  /* GByteArray * */
    GArray *infos;     /* vid_fmp4_frag */
    char codec[48];
} output;

static void keep(output *o, GByteArray *frag, const vid_fmp4_frag *info)
{
    if (info->samples == 0) {
        assert_int_equal(frag->len, 0);
        g_byte_array_unref(frag);
        return;
    }
    assert_true(frag->len > 0);
    g_ptr_array_add(o->frags, frag);
    g_array_append_val(o->infos, *info);
}

static output run_writer(vid_fmp4_mode mode)
{
    output o = {NULL, NULL, g_ptr_array_new_with_free_func((GDestroyNotify)g_byte_array_unref),
                g_array_new(FALSE, FALSE, sizeof(vid_fmp4_frag)), ""};
    vid_fmp4 *m = vid_fmp4_new(VID_CODEC_H264, 90000, mode);
    assert_non_null(m);
    assert_null(vid_fmp4_init_segment(m));
    assert_null(vid_fmp4_codec_string(m));
    vid_fmp4_frag info;
    for (guint i = 0; i < aus->len; i++) {
        const au *a = aus->pdata[i];
        gsize len;
        const uint8_t *d = g_bytes_get_data(a->data, &len);
        GByteArray *frag = g_byte_array_new();
        assert_int_equal(vid_fmp4_push(m, d, len, a->dts, a->pts, a->key, frag, &info), 0);
        keep(&o, frag, &info);
    }
    GByteArray *frag = g_byte_array_new();
    assert_int_equal(vid_fmp4_flush(m, frag, &info), 0);
    keep(&o, frag, &info);
    o.init = vid_fmp4_init_segment(m);
    assert_non_null(o.init);
    o.file_init = vid_fmp4_file_init_segment(m);
    assert_non_null(o.file_init);
    assert_int_equal(vid_fmp4_init_id(m), 1);
    g_strlcpy(o.codec, vid_fmp4_codec_string(m), sizeof o.codec);
    uint32_t w, h;
    vid_fmp4_size(m, &w, &h);
    assert_int_equal(w, 1280);
    assert_int_equal(h, 720);
    vid_fmp4_free(m);
    return o;
}

static void output_free(output *o)
{
    g_bytes_unref(o->init);
    g_bytes_unref(o->file_init);
    g_ptr_array_unref(o->frags);
    g_array_unref(o->infos);
}

/* Writes init + fragments [from, end) to a file in tmpdir; returns its path (g_free). */
static char *write_file(GBytes *init, const output *o, guint from, const char *name)
{
    GByteArray *file = g_byte_array_new();
    gsize len;
    const uint8_t *d = g_bytes_get_data(init, &len);
    g_byte_array_append(file, d, (guint)len);
    for (guint i = from; i < o->frags->len; i++) {
        GByteArray *f = o->frags->pdata[i];
        g_byte_array_append(file, f->data, f->len);
    }
    char *path = g_build_filename(tmpdir, name, NULL);
    assert_true(g_file_set_contents(path, (const char *)file->data, file->len, NULL));
    g_byte_array_unref(file);
    return path;
}

/* GStreamer's discoverer on the file: readable, its picture size, its duration in s. */
static double discover(const char *path, int *width, int *height)
{
    GError *err = NULL;
    GstDiscoverer *dc = gst_discoverer_new(20 * GST_SECOND, &err);
    assert_non_null(dc);
    char *uri = gst_filename_to_uri(path, NULL);
    GstDiscovererInfo *info = gst_discoverer_discover_uri(dc, uri, &err);
    g_free(uri);
    if (err)
        fprintf(stderr, "discoverer: %s\n", err->message);
    assert_non_null(info);
    assert_int_equal(gst_discoverer_info_get_result(info), GST_DISCOVERER_OK);
    GList *vs = gst_discoverer_info_get_video_streams(info);
    assert_int_equal(g_list_length(vs), 1);
    *width = (int)gst_discoverer_video_info_get_width(vs->data);
    *height = (int)gst_discoverer_video_info_get_height(vs->data);
    double dur = (double)gst_discoverer_info_get_duration(info) / GST_SECOND;
    gst_discoverer_stream_info_list_free(vs);
    gst_discoverer_info_unref(info);
    g_object_unref(dc);
    g_clear_error(&err);
    return dur;
}

/* Plays the file through qtdemux (and a decoder when there is one): the frames that come
 * out and the span of their presentation times, in s. Any pipeline error fails the test. */
static guint play_file(const char *path, int *decoded, double *span)
{
    GstElementFactory *dec = gst_element_factory_find("openh264dec");
    *decoded = dec != NULL;
    char *desc = g_strdup_printf("filesrc location=\"%s\" ! qtdemux ! %s appsink name=sink "
                                 "sync=false",
                                 path, dec ? "h264parse ! openh264dec !" : "");
    if (dec)
        gst_object_unref(dec);
    GstElement *pipe = gst_parse_launch(desc, NULL);
    g_free(desc);
    assert_non_null(pipe);
    GstElement *sink = gst_bin_get_by_name(GST_BIN(pipe), "sink");
    gst_element_set_state(pipe, GST_STATE_PLAYING);
    guint frames = 0;
    GstClockTime first = GST_CLOCK_TIME_NONE, end = 0;
    GstSample *smp;
    while ((smp = gst_app_sink_pull_sample(GST_APP_SINK(sink))) != NULL) {
        GstBuffer *b = gst_sample_get_buffer(smp);
        GstClockTime pts = GST_BUFFER_PTS(b), dur = GST_BUFFER_DURATION(b);
        if (!GST_CLOCK_TIME_IS_VALID(first) || pts < first)
            first = pts;
        if (GST_CLOCK_TIME_IS_VALID(dur) && pts + dur > end)
            end = pts + dur;
        frames++;
        gst_sample_unref(smp);
    }
    GstBus *bus = gst_element_get_bus(pipe);
    GstMessage *msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
    if (msg) {
        GError *e = NULL;
        gst_message_parse_error(msg, &e, NULL);
        fprintf(stderr, "playing %s: %s\n", path, e ? e->message : "?");
        g_clear_error(&e);
        gst_message_unref(msg);
        fail();
    }
    gst_object_unref(bus);
    gst_element_set_state(pipe, GST_STATE_NULL);
    gst_object_unref(sink);
    gst_object_unref(pipe);
    *span = (double)(end - first) / GST_SECOND;
    return frames;
}

/* The file from the fragments [from, end) is read by the discoverer as 1280x720 (with
 * want_s: that long, from the file init segment), and plays (decodes) every frame. */
static void check_file(const output *o, guint from, const char *name, double want_s)
{
    char *path = write_file(want_s > 0 ? o->file_init : o->init, o, from, name);
    int w = 0, h = 0;
    double dur = discover(path, &w, &h);
    int decoded;
    double span;
    guint frames = play_file(path, &decoded, &span);
    fprintf(stderr, "%s: %dx%d, %.3f s; %u frames %s over %.3f s\n", name, w, h, dur, frames,
            decoded ? "decoded" : "demuxed", span);
    assert_int_equal(w, 1280);
    assert_int_equal(h, 720);
    if (want_s > 0)
        assert_true(dur > want_s - 0.1 && dur < want_s + 0.1);
    guint want_frames = 0;
    for (guint i = from; i < o->infos->len; i++)
        want_frames += g_array_index(o->infos, vid_fmp4_frag, i).samples;
    assert_int_equal(frames, want_frames);
    double want_span = want_frames / 24.0; /* 24 fps */
    assert_true(span > want_span - 0.1 && span < want_span + 0.1);
    g_free(path);
}

/* ---- a small box reader for the checks ---- */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The payload of the first box of that type in [p, p+len), or NULL. */
static const uint8_t *find_box(const uint8_t *p, size_t len, const char *type, size_t *out_len)
{
    size_t i = 0;
    while (i + 8 <= len) {
        uint32_t sz = be32(p + i);
        if (sz < 8 || sz > len - i)
            return NULL;
        if (memcmp(p + i + 4, type, 4) == 0) {
            *out_len = sz - 8;
            return p + i + 8;
        }
        i += sz;
    }
    return NULL;
}

/* The fragment's trun: sample count, first sample's flags, sum of sample sizes. */
static void read_trun(const GByteArray *f, uint32_t *count, uint32_t *flags0, uint64_t *bytes)
{
    size_t moof_len, traf_len, trun_len, mdat_len;
    const uint8_t *moof = find_box(f->data, f->len, "moof", &moof_len);
    assert_non_null(moof);
    assert_non_null(find_box(f->data, f->len, "mdat", &mdat_len));
    const uint8_t *traf = find_box(moof, moof_len, "traf", &traf_len);
    assert_non_null(traf);
    const uint8_t *trun = find_box(traf, traf_len, "trun", &trun_len);
    assert_non_null(trun);
    assert_int_equal(be32(trun) & 0xffffff, 0xf01);
    *count = be32(trun + 4);
    /* data_offset: from the moof start to the first byte of the mdat payload. */
    assert_int_equal(be32(trun + 8), moof_len + 8 + 8);
    assert_int_equal(trun_len, 12 + 16 * (size_t)*count);
    *flags0 = be32(trun + 12 + 8);
    *bytes = 0;
    for (uint32_t i = 0; i < *count; i++)
        *bytes += be32(trun + 12 + 16 * i + 4);
    assert_int_equal(*bytes, mdat_len);
}

static void check_fragments(const output *o)
{
    for (guint i = 0; i < o->frags->len; i++) {
        const vid_fmp4_frag *info = &g_array_index(o->infos, vid_fmp4_frag, i);
        uint32_t count, flags0;
        uint64_t bytes;
        read_trun(o->frags->pdata[i], &count, &flags0, &bytes);
        assert_int_equal(count, info->samples);
        assert_int_equal(info->sequence, i + 1);
        assert_int_equal(info->init_id, 1);
        /* sample_is_non_sync_sample (bit 16) clear exactly on keyframes */
        assert_int_equal((flags0 >> 16) & 1, info->keyframe ? 0 : 1);
    }
}

static void test_per_frame(void **state)
{
    (void)state;
    output o = run_writer(VID_FMP4_PER_FRAME);
    assert_int_equal(o.frags->len, aus->len);
    guint keys = 0;
    for (guint i = 0; i < aus->len; i++) {
        const au *a = aus->pdata[i];
        assert_int_equal(g_array_index(o.infos, vid_fmp4_frag, i).keyframe, a->key);
        keys += a->key ? 1 : 0;
    }
    assert_int_equal(keys, 4); /* IDR every 2.5 s */
    check_fragments(&o);
    check_file(&o, 0, "per_frame.mp4", 10.0);
    output_free(&o);
}

/* Live: each access unit's fragment comes back from its own push (nothing
 * waits for the next frame), with the duration of the frame before it; the
 * stream still plays as a file. */
static void test_live(void **state)
{
    (void)state;
    output o = run_writer(VID_FMP4_LIVE);
    assert_int_equal(o.frags->len, aus->len); /* flush had nothing left */
    for (guint i = 0; i < aus->len; i++) {
        const au *a = aus->pdata[i];
        const vid_fmp4_frag *info = &g_array_index(o.infos, vid_fmp4_frag, i);
        assert_int_equal(info->keyframe, a->key);
        assert_int_equal(info->samples, 1);
        assert_int_equal(info->dts, a->dts);
        if (i >= 1) {
            /* the sample's duration: the distance from the frame before */
            const au *p1 = aus->pdata[i - 1];
            const GByteArray *f = o.frags->pdata[i];
            size_t moof_len, traf_len, trun_len;
            const uint8_t *moof = find_box(f->data, f->len, "moof", &moof_len);
            const uint8_t *traf = find_box(moof, moof_len, "traf", &traf_len);
            const uint8_t *trun = find_box(traf, traf_len, "trun", &trun_len);
            assert_int_equal(be32(trun + 12), (uint32_t)(a->dts - p1->dts));
        }
    }
    check_fragments(&o);
    check_file(&o, 0, "live.mp4", 0);
    output_free(&o);
}

static void test_codec_string(void **state)
{
    (void)state;
    output o = run_writer(VID_FMP4_PER_FRAME);
    assert_non_null(gst_codec);
    fprintf(stderr, "writer %s, GStreamer %s\n", o.codec, gst_codec);
    /* RFC 6381 hex digits are case-insensitive; GStreamer prints them upper case. */
    assert_int_equal(g_ascii_strcasecmp(o.codec, gst_codec), 0);
    assert_string_equal(o.codec, "avc1.64001f");
    output_free(&o);
}

static void test_per_gop(void **state)
{
    (void)state;
    output o = run_writer(VID_FMP4_PER_GOP);
    assert_int_equal(o.frags->len, 4);
    for (guint i = 0; i < o.frags->len; i++)
        assert_true(g_array_index(o.infos, vid_fmp4_frag, i).keyframe);
    check_fragments(&o);
    check_file(&o, 0, "per_gop.mp4", 10.0);
    output_free(&o);
}

/* A viewer who joins at the second keyframe gets init + the fragments from there. */
static void test_late_joiner(void **state)
{
    (void)state;
    output o = run_writer(VID_FMP4_PER_FRAME);
    guint seen = 0, from = 0;
    for (guint i = 0; i < o.infos->len && seen < 2; i++)
        if (g_array_index(o.infos, vid_fmp4_frag, i).keyframe && ++seen == 2)
            from = i;
    assert_int_equal(seen, 2);
    assert_true(from > 0);
    check_file(&o, from, "late.mp4", 0);
    output_free(&o);
}

/* An H.265 keyframe (VPS, the hand-made SPS, PPS, an IDR_W_RADL slice) makes an hvc1 init
 * segment, and the parameter sets leave the sample. The writer copies VPS and PPS without
 * reading them, so their bodies here are only plausible bytes. */
static void test_hevc_init(void **state)
{
    (void)state;
    vid_fmp4 *m = vid_fmp4_new(VID_CODEC_H265, 90000, VID_FMP4_PER_FRAME);
    GByteArray *a = hex("00 00 00 01 40 01 0c 01 ff ff 01 60 00 00 03 00 90 00 00 03 00 00 03 00 "
                        "7b 95 98 09 00 00 00 01 " SPS_HEVC_1080P " 00 00 00 01 44 01 c1 72 b4 "
                        "62 40 00 00 01 26 01 af 1d 80");
    GByteArray *out = g_byte_array_new();
    vid_fmp4_frag info;
    assert_int_equal(vid_fmp4_push(m, a->data, a->len, 0, 0, 1, out, &info), 0);
    assert_int_equal(info.samples, 0);
    assert_int_equal(vid_fmp4_flush(m, out, &info), 0);
    assert_int_equal(info.samples, 1);
    assert_true(info.keyframe);
    assert_string_equal(vid_fmp4_codec_string(m), "hvc1.1.6.L123.90");
    GBytes *init = vid_fmp4_init_segment(m);
    gsize len;
    const uint8_t *d = g_bytes_get_data(init, &len);
    assert_non_null(memmem(d, len, "hvc1", 4));
    const uint8_t *hvcc = memmem(d, len, "hvcC", 4);
    assert_non_null(hvcc);
    /* configurationVersion 1; profile space 0, tier 0, profile 1; compatibility 60 00 00 00 */
    assert_memory_equal(hvcc + 4, "\x01\x01\x60\x00\x00\x00", 6);
    uint32_t w, h;
    vid_fmp4_size(m, &w, &h);
    assert_int_equal(w, 1920);
    assert_int_equal(h, 1080);
    /* the mdat holds only the slice: 4-byte length 5, then 26 01 af 1d 80 */
    assert_memory_equal(out->data + out->len - 9, "\x00\x00\x00\x05\x26\x01\xaf\x1d\x80", 9);
    g_bytes_unref(init);
    g_byte_array_unref(a);
    g_byte_array_unref(out);
    vid_fmp4_free(m);
}

/* ---- malformed input ---- */

static int push_hex(vid_fmp4 *m, const char *s, int64_t dts, int key, GByteArray *out)
{
    GByteArray *a = hex(s);
    vid_fmp4_frag info;
    int rc = vid_fmp4_push(m, a->data, a->len, dts, dts, key, out, &info);
    g_byte_array_unref(a);
    return rc;
}

#define IDR_720P "00 00 00 01 " SPS_HIGH_720P " 00 00 00 01 68 ee 3c 80 00 00 01 65 88 84"

static void test_malformed(void **state)
{
    (void)state;
    vid_fmp4 *m = vid_fmp4_new(VID_CODEC_H264, 90000, VID_FMP4_PER_FRAME);
    GByteArray *out = g_byte_array_new();
    /* no start code; only zeros; garbage before the first start code */
    assert_int_equal(push_hex(m, "65 88 84 00 11 22", 0, 1, out), CORE_EPARSE);
    assert_int_equal(push_hex(m, "00 00 00 00", 0, 1, out), CORE_EPARSE);
    assert_int_equal(push_hex(m, "12 00 00 01 65 88 84 00", 0, 1, out), CORE_EPARSE);
    /* an empty NAL unit; a start code at the very end; a slice of a header only */
    assert_int_equal(push_hex(m, "00 00 01 00 00 01 65 88 84", 0, 1, out), CORE_EPARSE);
    assert_int_equal(push_hex(m, "00 00 01 65 88 84 00 00 01", 0, 1, out), CORE_EPARSE);
    assert_int_equal(push_hex(m, "00 00 01 65", 0, 1, out), CORE_EPARSE);
    /* the forbidden bit; no slice at all (a delimiter only) */
    assert_int_equal(push_hex(m, "00 00 01 e5 88 84", 0, 1, out), CORE_EPARSE);
    assert_int_equal(push_hex(m, "00 00 01 09 f0", 0, 1, out), CORE_EPARSE);
    /* a keyframe whose SPS is truncated, or garbage */
    assert_int_equal(
        push_hex(m, "00 00 01 67 64 00 00 00 01 68 ee 3c 80 00 00 01 65 88 84", 0, 1, out),
        CORE_EPARSE);
    assert_int_equal(push_hex(m,
                              "00 00 01 67 42 00 1e 02 ff ff 00 00 01 68 ee 3c 80 "
                              "00 00 01 65 88 84",
                              0, 1, out),
                     CORE_EPARSE);
    assert_int_equal(out->len, 0);
    assert_null(vid_fmp4_init_segment(m));
    /* too big */
    uint8_t *big = g_malloc0(VID_FMP4_MAX_AU + 1);
    big[2] = 1;
    big[3] = 0x65;
    assert_int_equal(vid_fmp4_push(m, big, VID_FMP4_MAX_AU + 1, 0, 0, 1, out, NULL), CORE_ETOOBIG);
    g_free(big);
    /* the writer still works: a good keyframe, then time must go forward */
    assert_int_equal(push_hex(m, IDR_720P, 0, 1, out), 0);
    GBytes *init = vid_fmp4_init_segment(m);
    assert_non_null(init);
    g_bytes_unref(init);
    assert_int_equal(push_hex(m, IDR_720P, 0, 1, out), CORE_EINVAL);
    assert_int_equal(out->len, 0);
    assert_int_equal(push_hex(m, IDR_720P, 3750, 1, out), 0);
    assert_true(out->len > 0);
    assert_int_equal(vid_fmp4_push(m, NULL, 0, 0, 0, 0, out, NULL), CORE_EINVAL);
    assert_null(vid_fmp4_new(VID_CODEC_H264, 0, VID_FMP4_PER_FRAME));
    vid_fmp4_free(NULL);
    vid_fmp4_free(m);
    g_byte_array_unref(out);
}

int main(void)
{
    const struct CMUnitTest sps[] = {
        cmocka_unit_test(test_sps_h264_high_720p), cmocka_unit_test(test_sps_h264_cropped),
        cmocka_unit_test(test_sps_h265),           cmocka_unit_test(test_sps_garbage),
        cmocka_unit_test(test_hevc_init),          cmocka_unit_test(test_malformed),
    };
    const struct CMUnitTest clip[] = {
        cmocka_unit_test(test_per_frame),    cmocka_unit_test(test_live),
        cmocka_unit_test(test_codec_string), cmocka_unit_test(test_per_gop),
        cmocka_unit_test(test_late_joiner),
    };
    int failed = cmocka_run_group_tests_name("sps", sps, NULL, NULL);
    return failed + cmocka_run_group_tests_name("clip", clip, setup_clip, teardown_clip);
}
