/*
 * fmp4.h — a fragmented MP4 (ISO BMFF) writer for live H.264/H.265 video to
 * browsers through Media Source Extensions (video/fmp4.c).
 *
 * In: access units in Annex B byte-stream form (start codes), one per push,
 * with decode and presentation times in the writer's timescale (90 kHz for
 * RTP video) and the caller's keyframe flag. Parameter sets (VPS/SPS/PPS) are
 * taken from the keyframes that carry them (an ingest with
 * `h264parse config-interval=-1` puts them before every IDR); until a
 * keyframe with a complete set has been seen, access units are dropped.
 *
 * Out: an init segment and media segments, laid out as follows.
 *
 *   init segment:  ftyp (iso5: default-base-is-moof is used)
 *                  moov ─ mvhd (duration 0: live, length unknown)
 *                       ─ trak ─ tkhd (width/height from the SPS, cropped)
 *                              ─ mdia ─ mdhd (the writer's timescale), hdlr 'vide'
 *                                     ─ minf ─ vmhd, dinf/dref/'url '
 *                                            ─ stbl ─ stsd ─ avc1+avcC | hvc1+hvcC
 *                                                   ─ stts, stsc, stsz, stco (all empty)
 *                       ─ mvex ─ trex (track 1; no defaults: every trun says all)
 *                              (+ mehd before trex in vid_fmp4_file_init_segment)
 *   media segment: moof ─ mfhd (sequence number 1, 2, 3 … per writer)
 *                       ─ traf ─ tfhd (track 1, default-base-is-moof)
 *                              ─ tfdt (v1: 64-bit decode time of the first sample)
 *                              ─ trun (v1, per sample: duration, size, flags,
 *                                      signed composition offset; data offset)
 *                  mdat ─ the samples, NAL units with 4-byte length prefixes
 *
 * Why: MSE (the ISO BMFF byte stream format) wants one init segment with an
 * empty sample table and a mvex, then self-contained media segments, each a
 * moof with exactly one traf followed by its mdat. default-base-is-moof makes
 * each moof+mdat relocatable: data offsets are relative to the moof, so a
 * fragment can be sent to any viewer in any order of joining. tfdt carries the
 * absolute decode time so a late joiner (or a dropped fragment) does not shift
 * the timeline. Every sample carries its own flags, so a fragment that starts
 * with a keyframe is marked sync (a browser may start there) and the rest are
 * marked non-sync. The sample entry is avc1/hvc1: parameter sets live only in
 * the avcC/hvcC, and the copies in the stream are removed from the samples,
 * so init + any fragment that starts with a keyframe is decodable alone.
 * Access unit delimiters and filler data are dropped as well.
 *
 * Fragments: VID_FMP4_PER_FRAME makes one moof per access unit (low latency;
 * typical for live), VID_FMP4_PER_GOP one per keyframe interval. A sample's
 * duration is the distance to the next decode time, so a fragment is complete
 * when the next access unit arrives: push returns the fragment of the previous
 * access unit (per frame) or the previous GOP (per GOP, when a keyframe comes).
 * vid_fmp4_flush ends the stream and returns what is pending, its last sample
 * lasting as long as the one before. VID_FMP4_LIVE does not wait: push
 * returns the access unit's own fragment, its duration the distance between
 * the two access units before (tfdt keeps the timeline exact, so an estimate
 * that is off by a frame only leaves a gap or an overlap of that frame,
 * which MSE players bridge); live viewers get each frame as it arrives. A GOP fragment is also cut
 * early at VID_FMP4_MAX_FRAG bytes or VID_FMP4_MAX_SAMPLES samples (it then does not start with a
 * keyframe, and info.keyframe says so).
 *
 * When a keyframe brings parameter sets different from the current init
 * segment (a camera changed resolution), the writer starts a new init segment:
 * vid_fmp4_init_segment returns it and vid_fmp4_frag.init_id counts up; the
 * caller must send the new init segment before the fragment that needs it.
 *
 * Threads: a writer is not locked; one thread at a time. The SPS and codec
 * string functions are pure and may be called from any thread.
 */
#ifndef CITYCMD_VIDEO_FMP4_H
#define CITYCMD_VIDEO_FMP4_H

#include "../core/core.h"

#include <glib.h>

typedef enum {
    VID_CODEC_H264 = 1,
    VID_CODEC_H265 = 2,
} vid_codec;

typedef enum {
    VID_FMP4_PER_FRAME = 0, /* one moof+mdat per access unit */
    VID_FMP4_PER_GOP = 1,   /* one moof+mdat per keyframe interval */
    VID_FMP4_LIVE = 2,      /* one moof+mdat per access unit, at once, duration estimated */
} vid_fmp4_mode;

/* An access unit larger than this is refused with CORE_ETOOBIG. */
#define VID_FMP4_MAX_AU (8u << 20)
/* A pending GOP fragment is cut at this many mdat bytes or samples. */
#define VID_FMP4_MAX_FRAG (32u << 20)
#define VID_FMP4_MAX_SAMPLES 1024u
/* Parameter sets larger than this are refused (CORE_ETOOBIG). */
#define VID_FMP4_MAX_PARAM 4096u

/* What an SPS says, for the sample entry and the codec string. */
typedef struct {
    vid_codec codec;
    uint32_t width, height; /* luma samples after the cropping window */
    uint8_t profile_idc;
    uint8_t level_idc;
    uint8_t chroma_format_idc; /* 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4 */
    uint8_t bit_depth_luma, bit_depth_chroma;
    uint8_t sps_id;
    /* H.264 */
    uint8_t constraint_flags; /* constraint_set0..5 flags and reserved bits, the SPS's 2nd byte */
    /* H.265: profile_tier_level and sub-layers */
    uint8_t profile_space, tier_flag;
    uint32_t compat_flags;  /* general_profile_compatibility_flag[0] is the top bit */
    uint8_t constraint[6];  /* general progressive_source_flag … 48 bits as in the SPS */
    uint8_t max_sub_layers; /* sps_max_sub_layers_minus1 + 1 */
    uint8_t temporal_id_nesting;
    char codec_string[48]; /* RFC 6381: "avc1.64001f", "hvc1.1.6.L93.B0" */
} vid_sps;

/* Parses one SPS NAL unit (its NAL header included, no start code, emulation
 * prevention bytes still in). 0, CORE_EPARSE (malformed, unsupported, or a
 * picture size out of range), CORE_ETOOBIG (over VID_FMP4_MAX_PARAM) or
 * CORE_EINVAL. */
int vid_sps_parse(vid_codec codec, const uint8_t *nal, size_t len, vid_sps *out);

typedef struct vid_fmp4 vid_fmp4;

/* What a fragment returned by push/flush is. */
typedef struct {
    uint32_t samples;  /* 0: nothing was appended to out */
    int keyframe;      /* the first sample is a sync sample: a viewer may start here */
    uint32_t sequence; /* its mfhd sequence number */
    uint32_t init_id;  /* the init segment it needs (vid_fmp4_init_id) */
    int64_t dts;       /* decode time of the first sample, as pushed */
} vid_fmp4_frag;

/* A writer for one track; timescale > 0 ticks per second. NULL if codec,
 * mode or timescale is invalid. Free with vid_fmp4_free. */
vid_fmp4 *vid_fmp4_new(vid_codec codec, uint32_t timescale, vid_fmp4_mode mode);
void vid_fmp4_free(vid_fmp4 *m);

/* Pushes one Annex B access unit (au is read, not kept). dts must increase
 * from one push to the next; pts >= dts - 2^31. When a fragment is complete
 * it is appended to out (the caller's array; nothing else is touched) and
 * described in *info (info may be NULL); otherwise info->samples == 0.
 * Returns 0, CORE_EPARSE (no start code, empty or truncated NAL unit,
 * forbidden bit set, no picture data, bad parameter set: the access unit is
 * dropped and the writer stays usable), CORE_ETOOBIG (au over
 * VID_FMP4_MAX_AU), CORE_EINVAL (arguments, or dts not increasing). On error
 * out is unchanged. Access units before the first usable keyframe are
 * dropped with 0. */
int vid_fmp4_push(vid_fmp4 *m, const uint8_t *au, size_t len, int64_t dts, int64_t pts,
                  int keyframe, GByteArray *out, vid_fmp4_frag *info);

/* Appends the pending fragment, if any, to out (see push). 0 or CORE_EINVAL. */
int vid_fmp4_flush(vid_fmp4 *m, GByteArray *out, vid_fmp4_frag *info);

/* The current init segment (a new reference: g_bytes_unref it), or NULL
 * until a keyframe with parameter sets has been pushed. */
GBytes *vid_fmp4_init_segment(vid_fmp4 *m);
/* For writing a finished recording to a file (a clip), not for MSE: the
 * init segment with the duration of everything emitted so far in mvhd, tkhd,
 * mdhd and a mvex/mehd, so players know the length without reading every
 * fragment. A new reference (g_bytes_unref), or NULL like the above. The file
 * is this + every fragment since the first, after vid_fmp4_flush. */
GBytes *vid_fmp4_file_init_segment(vid_fmp4 *m);
/* Counts init segments: 0 before the first, then 1, 2, … */
uint32_t vid_fmp4_init_id(const vid_fmp4 *m);
/* RFC 6381 codec string for MediaSource.isTypeSupported / addSourceBuffer
 * ('video/mp4; codecs="…"'); owned by the writer, valid until the next push
 * or free; NULL until the init segment exists. */
const char *vid_fmp4_codec_string(const vid_fmp4 *m);
/* Picture size of the current init segment (0x0 before it exists). */
void vid_fmp4_size(const vid_fmp4 *m, uint32_t *width, uint32_t *height);

#endif
