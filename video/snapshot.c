/*
 * snapshot.c — one keyframe to a JPEG, with no decoder kept per camera
 * (ingest.h). A short pipeline per request: appsrc (the keyframe, Annex B,
 * its parameter sets included) → parser → the first decoder GStreamer has
 * for the codec → videoconvert → jpegenc → appsink. It blocks until the
 * picture is out (or VID_SNAPSHOT_TIMEOUT_MS), so it runs on a worker. It
 * costs one decode of one frame per request: nothing decodes between.
 */
#include "ingest.h"
#include "video.h"

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>

#define VID_SNAPSHOT_TIMEOUT_MS 5000

static GstElement *first_of(const char *const *names)
{
    for (; *names; names++) {
        GstElement *e = gst_element_factory_make(*names, NULL);
        if (e)
            return e;
    }
    return NULL;
}

int vid_snapshot_jpeg(vid_codec codec, GBytes *keyframe, int quality, GBytes **jpeg, char **err)
{
    static const char *const h264_dec[] = {"avdec_h264", "openh264dec", NULL};
    static const char *const h265_dec[] = {"avdec_h265", "libde265dec", NULL};
    *jpeg = NULL;
    if (vid_init(err))
        return CORE_ECONFIG;
    int h265 = codec == VID_CODEC_H265;
    GstElement *pipe = gst_pipeline_new(NULL);
    GstElement *src = gst_element_factory_make("appsrc", NULL);
    GstElement *parse = gst_element_factory_make(h265 ? "h265parse" : "h264parse", NULL);
    GstElement *dec = first_of(h265 ? h265_dec : h264_dec);
    GstElement *conv = gst_element_factory_make("videoconvert", NULL);
    GstElement *enc = gst_element_factory_make("jpegenc", NULL);
    GstElement *sink = gst_element_factory_make("appsink", NULL);
    if (!src || !parse || !dec || !conv || !enc || !sink) {
        if (err)
            *err = g_strdup_printf("no %s for %s snapshots (install gstreamer1.0-libav)",
                                   dec ? "element" : "decoder", h265 ? "H.265" : "H.264");
        g_clear_object(&src);
        g_clear_object(&parse);
        g_clear_object(&dec);
        g_clear_object(&conv);
        g_clear_object(&enc);
        g_clear_object(&sink);
        gst_object_unref(pipe);
        return CORE_ECONFIG;
    }
    /* No alignment given: the parser reads the parameter sets and the frame
     * itself, and tells the decoder the size and profile it needs. */
    GstCaps *caps = gst_caps_new_simple(h265 ? "video/x-h265" : "video/x-h264", "stream-format",
                                        G_TYPE_STRING, "byte-stream", NULL);
    g_object_set(src, "caps", caps, "format", GST_FORMAT_TIME, NULL);
    gst_caps_unref(caps);
    g_object_set(enc, "quality", CLAMP(quality, 1, 100), NULL);
    g_object_set(sink, "sync", FALSE, NULL);
    gst_bin_add_many(GST_BIN(pipe), src, parse, dec, conv, enc, sink, NULL);
    int rc = 0;
    if (!gst_element_link_many(src, parse, dec, conv, enc, sink, NULL) ||
        gst_element_set_state(pipe, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
        rc = CORE_ECONFIG;
        if (err)
            *err = g_strdup("the snapshot pipeline does not start");
    } else {
        /* The keyframe twice: a decoder that finds the end of a picture only
         * when the next one begins (openh264) gives the first at the second. */
        for (int i = 0; i < 2; i++) {
            GstBuffer *buf = gst_buffer_new_wrapped_bytes(keyframe);
            GST_BUFFER_PTS(buf) = (GstClockTime)i * 40 * GST_MSECOND;
            gst_app_src_push_buffer(GST_APP_SRC(src), buf);
        }
        gst_app_src_end_of_stream(GST_APP_SRC(src));
        GstSample *s =
            gst_app_sink_try_pull_sample(GST_APP_SINK(sink), VID_SNAPSHOT_TIMEOUT_MS * GST_MSECOND);
        if (!s) {
            rc = CORE_EPARSE;
            if (err)
                *err = g_strdup("the keyframe did not decode");
        } else {
            GstBuffer *out = gst_sample_get_buffer(s);
            GstMapInfo map;
            if (out && gst_buffer_map(out, &map, GST_MAP_READ)) {
                *jpeg = g_bytes_new(map.data, map.size);
                gst_buffer_unmap(out, &map);
            }
            gst_sample_unref(s);
            if (!*jpeg) {
                rc = CORE_EPARSE;
                if (err)
                    *err = g_strdup("the decoder gave no picture");
            }
        }
    }
    gst_element_set_state(pipe, GST_STATE_NULL);
    gst_object_unref(pipe);
    return rc;
}
