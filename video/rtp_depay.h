/*
 * rtp_depay.h — RTP H.264 (RFC 6184) and H.265 (RFC 7798) packets to whole
 * access units in Annex B form (video/rtp_depay.c).
 *
 * In: the RTP packets of one stream, in order, as they came off the RTSP
 * connection. Out: one callback per access unit: the NAL units with 4-byte
 * start codes, the RTP time extended to 64 bits and counted from the first
 * packet (the stream's clock, 90 kHz for video), and whether it is a keyframe (H.264 IDR; H.265
 * IRAP, types 16–21). An access unit ends at the RTP marker bit, or when a packet with a new
 * timestamp arrives first.
 *
 * Parameter sets: the latest VPS/SPS/PPS seen, first from the SDP's
 * sprop-parameter-sets (H.264) or sprop-vps/-sps/-pps (H.265), then in the
 * stream, are put before every keyframe that does not carry its own, so a
 * keyframe can always start a decoder (the fMP4 writer, a snapshot).
 *
 * Loss: a gap in sequence numbers, a fragment without its start or a
 * malformed packet spoils the access unit in progress; it and everything
 * after it are dropped until the next keyframe, so what comes out always
 * decodes. Packets that are not video of the codec (a wrong payload type,
 * interleaved or MTAP modes, PACI) are counted and skipped. An access unit
 * larger than VID_DEPAY_MAX_AU is dropped the same way.
 *
 * Not locked: one thread at a time.
 */
#ifndef CITYCMD_VIDEO_RTP_DEPAY_H
#define CITYCMD_VIDEO_RTP_DEPAY_H

#include "fmp4.h"

#include <glib.h>
#include <stdint.h>

#define VID_DEPAY_MAX_AU ((size_t)4 << 20)

typedef struct vid_depay vid_depay;

/* au: the access unit, owned by the callee (g_bytes_unref). */
typedef void (*vid_depay_fn)(GBytes *au, int64_t rtp_time, int key, void *user);

typedef struct {
    uint64_t packets, skipped, lost, dropped_aus, aus;
} vid_depay_counts;

/* payload_type: the RTP payload type of the stream (from the SDP's rtpmap),
 * or -1 for any. fmtp: the SDP's a=fmtp value for it, or NULL. */
vid_depay *vid_depay_new(vid_codec codec, int payload_type, const char *fmtp, vid_depay_fn fn,
                         void *user);
void vid_depay_free(vid_depay *d);
/* One RTP packet (header and payload). */
void vid_depay_push(vid_depay *d, const uint8_t *pkt, size_t len);
void vid_depay_counts_get(const vid_depay *d, vid_depay_counts *c);

#endif
