/*
 * fmp4.c — the fragmented MP4 writer: Annex B access units in, an init
 * segment and moof+mdat fragments out (fmp4.h has the box layout and why).
 *
 * A push first checks the whole access unit (start codes, NAL headers, at
 * least one slice, parameter sets that parse) before it changes any state,
 * so a malformed unit is refused with nothing half-written. Then the pending
 * fragment is closed if this unit ends it (every unit per frame, a keyframe
 * per GOP, or the caps), because the pending samples' last duration is only
 * known now; then a keyframe with new parameter sets installs a new init
 * segment; then the unit is converted to length-prefixed NAL units and kept
 * as the new pending sample.
 *
 * Invariants: pending samples all belong to the current init segment (it
 * changes only at a keyframe, after the pending fragment was emitted); the
 * pending mdat never exceeds VID_FMP4_MAX_FRAG nor VID_FMP4_MAX_SAMPLES; dts
 * strictly increases, so every duration is > 0 and tfdt never goes back.
 * One thread at a time per writer.
 */
#include "fmp4.h"

#include <string.h>

#define MAX_NALS 1024u   /* NAL units in one access unit */
#define MAX_PARAMS 16u   /* parameter sets of one kind in the init segment */
#define FALLBACK_FPS 30u /* last duration when there was never a second sample */

enum { PS_VPS, PS_SPS, PS_PPS, PS_KINDS };
enum { NAL_OTHER, NAL_VCL, NAL_PARAM_VPS, NAL_PARAM_SPS, NAL_PARAM_PPS, NAL_DROP };

typedef struct {
    size_t off, len; /* into the access unit, start code excluded */
    int kind;
} nal_ref;

typedef struct {
    int64_t dts;
    int32_t cts; /* pts - dts */
    uint32_t size;
    int key;
} sample;

struct vid_fmp4 {
    vid_codec codec;
    vid_fmp4_mode mode;
    uint32_t timescale;
    GPtrArray *params[PS_KINDS]; /* GBytes of the current init segment, NAL headers included */
    vid_sps sps;                 /* the first SPS of the current init segment */
    GBytes *init;
    uint32_t init_id;
    uint32_t sequence;  /* the last mfhd sequence number used */
    GArray *nals;       /* nal_ref scratch for one push */
    GArray *samples;    /* pending sample */
    GByteArray *mdat;   /* pending samples' bytes */
    int64_t base_dts;   /* the first sample's dts: tfdt 0 */
    int64_t last_dts;   /* the last accepted access unit's dts */
    int have_dts;       /* base_dts and last_dts are set */
    uint32_t last_dur;  /* the last emitted or computed duration, for flush */
    int64_t end_dts;    /* where the last emitted sample ends (base_dts before any) */
    char codec_str[48]; /* copy of sps.codec_string */
};

/* ---- byte writing ---- */

static void put_u8(GByteArray *a, uint8_t v)
{
    g_byte_array_append(a, &v, 1);
}

static void put_u16(GByteArray *a, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    g_byte_array_append(a, b, 2);
}

static void put_u32(GByteArray *a, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    g_byte_array_append(a, b, 4);
}

static void put_u64(GByteArray *a, uint64_t v)
{
    put_u32(a, (uint32_t)(v >> 32));
    put_u32(a, (uint32_t)v);
}

static void put_zeros(GByteArray *a, size_t n)
{
    static const uint8_t zeros[32];
    while (n > 0) {
        size_t k = n < sizeof zeros ? n : sizeof zeros;
        g_byte_array_append(a, zeros, (guint)k);
        n -= k;
    }
}

static void patch_u32(GByteArray *a, size_t at, uint32_t v)
{
    a->data[at] = (uint8_t)(v >> 24);
    a->data[at + 1] = (uint8_t)(v >> 16);
    a->data[at + 2] = (uint8_t)(v >> 8);
    a->data[at + 3] = (uint8_t)v;
}

/* A box is opened with a zero size that box_close patches. */
static size_t box_open(GByteArray *a, const char *type)
{
    size_t at = a->len;
    put_u32(a, 0);
    g_byte_array_append(a, (const uint8_t *)type, 4);
    return at;
}

static size_t full_open(GByteArray *a, const char *type, uint8_t version, uint32_t flags)
{
    size_t at = box_open(a, type);
    put_u32(a, (uint32_t)version << 24 | (flags & 0xffffff));
    return at;
}

static void box_close(GByteArray *a, size_t at)
{
    patch_u32(a, at, (uint32_t)(a->len - at));
}

/* ---- Annex B ---- */

static int nal_kind(vid_codec codec, const uint8_t *n)
{
    if (codec == VID_CODEC_H264) {
        int t = n[0] & 0x1f;
        if (t >= 1 && t <= 5)
            return NAL_VCL;
        if (t == 7 || t == 8)
            return t == 7 ? NAL_PARAM_SPS : NAL_PARAM_PPS;
        return t == 9 || t == 12 ? NAL_DROP : NAL_OTHER; /* AUD, filler */
    }
    int t = (n[0] >> 1) & 0x3f;
    if (t <= 31)
        return NAL_VCL;
    if (t >= 32 && t <= 34)
        return NAL_PARAM_VPS + (t - 32);
    return t == 35 || t == 38 ? NAL_DROP : NAL_OTHER; /* AUD, filler */
}

/* A NAL unit's header is sane and a slice has a payload after it. */
static int nal_check(vid_codec codec, const uint8_t *n, size_t len, int *kind)
{
    size_t header = codec == VID_CODEC_H264 ? 1 : 2;
    if (len < header || (n[0] & 0x80))
        return CORE_EPARSE;
    if (codec == VID_CODEC_H265 && (n[1] & 7) == 0) /* nuh_temporal_id_plus1 */
        return CORE_EPARSE;
    *kind = nal_kind(codec, n);
    if (*kind == NAL_VCL && len <= header)
        return CORE_EPARSE;
    return 0;
}

/* Where the NAL unit starting at i ends: the next 00 00 00 or 00 00 01. */
static size_t nal_end(const uint8_t *b, size_t len, size_t i)
{
    /* memchr finds the zeros fast; they are rare in coded slices. */
    while (i + 2 < len) {
        const uint8_t *z = memchr(b + i, 0, len - 2 - i);
        if (!z)
            break;
        i = (size_t)(z - b);
        if (b[i + 1] == 0 && b[i + 2] <= 1)
            return i;
        i++;
    }
    return len;
}

/* After zero bytes, either the end or a start code; *next is after it. */
static int next_start(const uint8_t *b, size_t len, size_t i, size_t *next)
{
    size_t zeros = 0;
    while (i < len && b[i] == 0) {
        i++;
        zeros++;
    }
    if (i == len) {
        *next = len;
        return 0;
    }
    if (b[i] != 1 || zeros < 2 || i + 1 == len) /* a start code ends the unit: empty NAL */
        return CORE_EPARSE;
    *next = i + 1;
    return 0;
}

static int split_annexb(vid_codec codec, const uint8_t *au, size_t len, GArray *nals)
{
    size_t i;
    g_array_set_size(nals, 0);
    int rc = next_start(au, len, 0, &i);
    if (rc || i == len)
        return CORE_EPARSE; /* no start code at all */
    while (i < len) {
        nal_ref r = {i, nal_end(au, len, i) - i, NAL_OTHER};
        rc = nal_check(codec, au + r.off, r.len, &r.kind);
        if (rc)
            return rc;
        if (nals->len >= MAX_NALS)
            return CORE_ETOOBIG;
        g_array_append_val(nals, r);
        rc = next_start(au, len, r.off + r.len, &i);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- parameter sets ---- */

static int params_contain(GPtrArray *set, const uint8_t *n, size_t len)
{
    for (guint i = 0; set && i < set->len; i++) {
        gsize sz;
        const void *d = g_bytes_get_data(set->pdata[i], &sz);
        if (sz == len && memcmp(d, n, len) == 0)
            return 1;
    }
    return 0;
}

static int params_equal(GPtrArray *a, GPtrArray *b)
{
    if (a->len != b->len)
        return 0;
    for (guint i = 0; i < a->len; i++)
        if (!g_bytes_equal(a->pdata[i], b->pdata[i]))
            return 0;
    return 1;
}

static void params_free(GPtrArray *p[PS_KINDS])
{
    for (int k = 0; k < PS_KINDS; k++)
        if (p[k])
            g_ptr_array_unref(p[k]);
}

/* The parameter sets a keyframe carries, each SPS parsed; *first is the first SPS. */
static int collect_params(vid_fmp4 *m, const uint8_t *au, GPtrArray *p[PS_KINDS], vid_sps *first)
{
    for (int k = 0; k < PS_KINDS; k++)
        p[k] = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    for (guint i = 0; i < m->nals->len; i++) {
        nal_ref *r = &g_array_index(m->nals, nal_ref, i);
        if (r->kind < NAL_PARAM_VPS || r->kind > NAL_PARAM_PPS)
            continue;
        GPtrArray *set = p[r->kind - NAL_PARAM_VPS];
        if (r->len > VID_FMP4_MAX_PARAM || set->len >= MAX_PARAMS)
            return CORE_ETOOBIG;
        if (params_contain(set, au + r->off, r->len))
            continue;
        if (r->kind == NAL_PARAM_SPS) {
            vid_sps s;
            int rc = vid_sps_parse(m->codec, au + r->off, r->len, &s);
            if (rc)
                return rc;
            if (set->len == 0)
                *first = s;
        }
        g_ptr_array_add(set, g_bytes_new(au + r->off, r->len));
    }
    return 0;
}

static int params_complete(const vid_fmp4 *m, GPtrArray *p[PS_KINDS])
{
    return p[PS_SPS]->len > 0 && p[PS_PPS]->len > 0 &&
           (m->codec == VID_CODEC_H264 || p[PS_VPS]->len > 0);
}

static int params_changed(const vid_fmp4 *m, GPtrArray *p[PS_KINDS])
{
    if (!m->init)
        return 1;
    for (int k = 0; k < PS_KINDS; k++)
        if (!params_equal(m->params[k], p[k]))
            return 1;
    return 0;
}

/* ---- init segment ---- */

/* The NAL units with 16-bit lengths, after a count of count_bytes (0: none). */
static void put_nal_list(GByteArray *a, GPtrArray *set, int count_bytes)
{
    if (count_bytes == 1)
        put_u8(a, (uint8_t)set->len);
    else if (count_bytes == 2)
        put_u16(a, (uint16_t)set->len);
    for (guint i = 0; i < set->len; i++) {
        gsize sz;
        const uint8_t *d = g_bytes_get_data(set->pdata[i], &sz);
        put_u16(a, (uint16_t)sz);
        g_byte_array_append(a, d, (guint)sz);
    }
}

/* AVCDecoderConfigurationRecord, ISO/IEC 14496-15 5.3.3.1. */
static void put_avcc(GByteArray *a, const vid_fmp4 *m)
{
    const vid_sps *s = &m->sps;
    size_t box = box_open(a, "avcC");
    put_u8(a, 1);
    put_u8(a, s->profile_idc);
    put_u8(a, s->constraint_flags);
    put_u8(a, s->level_idc);
    put_u8(a, 0xfc | 3);                                 /* lengthSizeMinusOne: 4-byte lengths */
    put_u8(a, (uint8_t)(0xe0 | m->params[PS_SPS]->len)); /* 3 reserved bits, numOfSPS */
    put_nal_list(a, m->params[PS_SPS], 0);
    put_nal_list(a, m->params[PS_PPS], 1);
    if (s->profile_idc == 100 || s->profile_idc == 110 || s->profile_idc == 122 ||
        s->profile_idc == 144) {
        put_u8(a, 0xfc | s->chroma_format_idc);
        put_u8(a, (uint8_t)(0xf8 | (s->bit_depth_luma - 8)));
        put_u8(a, (uint8_t)(0xf8 | (s->bit_depth_chroma - 8)));
        put_u8(a, 0); /* numOfSequenceParameterSetExt */
    }
    box_close(a, box);
}

/* HEVCDecoderConfigurationRecord, ISO/IEC 14496-15 8.3.3.1. */
static void put_hvcc(GByteArray *a, const vid_fmp4 *m)
{
    const vid_sps *s = &m->sps;
    size_t box = box_open(a, "hvcC");
    put_u8(a, 1);
    put_u8(a, (uint8_t)(s->profile_space << 6 | s->tier_flag << 5 | (s->profile_idc & 0x1f)));
    put_u32(a, s->compat_flags);
    g_byte_array_append(a, s->constraint, 6);
    put_u8(a, s->level_idc);
    put_u16(a, 0xf000); /* min_spatial_segmentation_idc 0 */
    put_u8(a, 0xfc);    /* parallelismType 0: unknown */
    put_u8(a, 0xfc | s->chroma_format_idc);
    put_u8(a, (uint8_t)(0xf8 | (s->bit_depth_luma - 8)));
    put_u8(a, (uint8_t)(0xf8 | (s->bit_depth_chroma - 8)));
    put_u16(a, 0); /* avgFrameRate unknown */
    put_u8(a, (uint8_t)((s->max_sub_layers & 7) << 3 | (s->temporal_id_nesting & 1) << 2 | 3));
    put_u8(a, PS_KINDS);
    for (int k = 0; k < PS_KINDS; k++) {
        put_u8(a, (uint8_t)(0x80 | (32 + k))); /* array_completeness, NAL type 32/33/34 */
        put_nal_list(a, m->params[k], 2);
    }
    box_close(a, box);
}

static void put_sample_entry(GByteArray *a, const vid_fmp4 *m)
{
    size_t box = box_open(a, m->codec == VID_CODEC_H264 ? "avc1" : "hvc1");
    put_zeros(a, 6);
    put_u16(a, 1); /* data_reference_index */
    put_zeros(a, 16);
    put_u16(a, (uint16_t)m->sps.width);
    put_u16(a, (uint16_t)m->sps.height);
    put_u32(a, 0x00480000); /* 72 dpi */
    put_u32(a, 0x00480000);
    put_u32(a, 0);
    put_u16(a, 1);      /* frame_count */
    put_zeros(a, 32);   /* compressorname */
    put_u16(a, 0x0018); /* depth */
    put_u16(a, 0xffff); /* pre_defined -1 */
    if (m->codec == VID_CODEC_H264)
        put_avcc(a, m);
    else
        put_hvcc(a, m);
    box_close(a, box);
}

static void put_matrix(GByteArray *a)
{
    static const uint32_t unity[9] = {0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000};
    for (int i = 0; i < 9; i++)
        put_u32(a, unity[i]);
}

static uint32_t clamp32(uint64_t v)
{
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

static void put_mvhd(GByteArray *a, uint32_t timescale, uint64_t duration)
{
    size_t box = full_open(a, "mvhd", 0, 0);
    put_zeros(a, 8); /* creation, modification */
    put_u32(a, timescale);
    put_u32(a, clamp32(duration)); /* 0: unknown, live */
    put_u32(a, 0x10000);           /* rate 1.0 */
    put_u16(a, 0x100);             /* volume 1.0 */
    put_zeros(a, 10);
    put_matrix(a);
    put_zeros(a, 24); /* pre_defined */
    put_u32(a, 2);    /* next_track_ID */
    box_close(a, box);
}

static void put_tkhd(GByteArray *a, const vid_sps *s, uint64_t duration)
{
    size_t box = full_open(a, "tkhd", 0, 3); /* enabled, in movie */
    put_zeros(a, 8);
    put_u32(a, 1); /* track_ID */
    put_u32(a, 0);
    put_u32(a, clamp32(duration));
    put_zeros(a, 8 + 2 + 2 + 2 + 2);
    put_matrix(a);
    put_u32(a, s->width << 16);
    put_u32(a, s->height << 16);
    box_close(a, box);
}

static void put_mdhd_hdlr(GByteArray *a, uint32_t timescale, uint64_t duration)
{
    size_t box = full_open(a, "mdhd", 0, 0);
    put_zeros(a, 8);
    put_u32(a, timescale);
    put_u32(a, clamp32(duration));
    put_u16(a, 0x55c4); /* 'und' */
    put_u16(a, 0);
    box_close(a, box);
    box = full_open(a, "hdlr", 0, 0);
    put_u32(a, 0);
    g_byte_array_append(a, (const uint8_t *)"vide", 4);
    put_zeros(a, 12);
    g_byte_array_append(a, (const uint8_t *)"VideoHandler", 13);
    box_close(a, box);
}

static void put_minf(GByteArray *a, const vid_fmp4 *m)
{
    size_t minf = box_open(a, "minf");
    size_t box = full_open(a, "vmhd", 0, 1);
    put_zeros(a, 8);
    box_close(a, box);
    size_t dinf = box_open(a, "dinf");
    box = full_open(a, "dref", 0, 0);
    put_u32(a, 1);
    box_close(a, full_open(a, "url ", 0, 1)); /* media in this file */
    box_close(a, box);
    box_close(a, dinf);
    size_t stbl = box_open(a, "stbl");
    box = full_open(a, "stsd", 0, 0);
    put_u32(a, 1);
    put_sample_entry(a, m);
    box_close(a, box);
    static const char *empty[] = {"stts", "stsc", "stco"};
    for (int i = 0; i < 3; i++) {
        box = full_open(a, empty[i], 0, 0);
        put_u32(a, 0);
        box_close(a, box);
    }
    box = full_open(a, "stsz", 0, 0);
    put_zeros(a, 8); /* sample_size, sample_count */
    box_close(a, box);
    box_close(a, stbl);
    box_close(a, minf);
}

/* duration 0 for live (MSE); else the whole recording's, for a file. */
static GBytes *build_init(const vid_fmp4 *m, uint64_t duration)
{
    GByteArray *a = g_byte_array_sized_new(1024);
    size_t box = box_open(a, "ftyp");
    g_byte_array_append(a, (const uint8_t *)"iso5", 4);
    put_u32(a, 512);
    g_byte_array_append(a, (const uint8_t *)"iso5iso6mp41", 12);
    box_close(a, box);
    size_t moov = box_open(a, "moov");
    put_mvhd(a, m->timescale, duration);
    size_t trak = box_open(a, "trak");
    put_tkhd(a, &m->sps, duration);
    size_t mdia = box_open(a, "mdia");
    put_mdhd_hdlr(a, m->timescale, duration);
    put_minf(a, m);
    box_close(a, mdia);
    box_close(a, trak);
    size_t mvex = box_open(a, "mvex");
    if (duration > 0) {
        box = full_open(a, "mehd", 1, 0);
        put_u64(a, duration); /* fragment_duration: all fragments together */
        box_close(a, box);
    }
    box = full_open(a, "trex", 0, 0);
    put_u32(a, 1); /* track_ID */
    put_u32(a, 1); /* default_sample_description_index */
    put_zeros(a, 12);
    box_close(a, box);
    box_close(a, mvex);
    box_close(a, moov);
    return g_byte_array_free_to_bytes(a);
}

static void install_params(vid_fmp4 *m, GPtrArray *p[PS_KINDS], const vid_sps *first)
{
    params_free(m->params);
    for (int k = 0; k < PS_KINDS; k++)
        m->params[k] = p[k];
    m->sps = *first;
    g_strlcpy(m->codec_str, first->codec_string, sizeof m->codec_str);
    if (m->init)
        g_bytes_unref(m->init);
    m->init = build_init(m, 0);
    m->init_id++;
}

/* ---- media segments ---- */

#define SYNC_FLAGS 0x02000000u     /* sample_depends_on 2: an I picture */
#define NON_SYNC_FLAGS 0x01010000u /* depends on others, sample_is_non_sync_sample */

static uint32_t duration_to(int64_t from, int64_t to)
{
    int64_t d = to - from;
    return d > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

/* Returns the last sample's duration. */
static uint32_t put_trun(GByteArray *a, const vid_fmp4 *m, int64_t next_dts, int have_next,
                         size_t *data_offset_at)
{
    uint32_t dur = 0;
    guint n = m->samples->len;
    size_t box = full_open(a, "trun", 1, 0x000f01); /* data offset; duration, size, flags, cts */
    put_u32(a, n);
    *data_offset_at = a->len;
    put_u32(a, 0);
    for (guint i = 0; i < n; i++) {
        const sample *s = &g_array_index(m->samples, sample, i);
        dur = m->last_dur;
        if (i + 1 < n)
            dur = duration_to(s->dts, g_array_index(m->samples, sample, i + 1).dts);
        else if (have_next)
            dur = duration_to(s->dts, next_dts);
        put_u32(a, dur);
        put_u32(a, s->size);
        put_u32(a, s->key ? SYNC_FLAGS : NON_SYNC_FLAGS);
        put_u32(a, (uint32_t)s->cts);
    }
    box_close(a, box);
    return dur;
}

/* Appends moof+mdat of the pending samples to out and empties them. */
static void emit(vid_fmp4 *m, int64_t next_dts, int have_next, GByteArray *out, vid_fmp4_frag *info)
{
    const sample *first = &g_array_index(m->samples, sample, 0);
    size_t moof = box_open(out, "moof");
    size_t box = full_open(out, "mfhd", 0, 0);
    put_u32(out, ++m->sequence);
    box_close(out, box);
    size_t traf = box_open(out, "traf");
    box = full_open(out, "tfhd", 0, 0x020000); /* default-base-is-moof */
    put_u32(out, 1);
    box_close(out, box);
    box = full_open(out, "tfdt", 1, 0);
    put_u64(out, (uint64_t)(first->dts - m->base_dts));
    box_close(out, box);
    size_t data_offset_at;
    uint32_t last = put_trun(out, m, next_dts, have_next, &data_offset_at);
    m->end_dts = g_array_index(m->samples, sample, m->samples->len - 1).dts + last;
    box_close(out, traf);
    box_close(out, moof);
    patch_u32(out, data_offset_at, (uint32_t)(out->len - moof + 8));
    put_u32(out, (uint32_t)(8 + m->mdat->len));
    g_byte_array_append(out, (const uint8_t *)"mdat", 4);
    g_byte_array_append(out, m->mdat->data, m->mdat->len);
    if (info) {
        info->samples = m->samples->len;
        info->keyframe = first->key;
        info->sequence = m->sequence;
        info->init_id = m->init_id;
        info->dts = first->dts;
    }
    g_array_set_size(m->samples, 0);
    g_byte_array_set_size(m->mdat, 0);
}

/* The access unit as 4-byte length-prefixed NAL units, without what the init
 * segment already holds, delimiters and filler. */
static void append_sample(vid_fmp4 *m, const uint8_t *au, int64_t dts, int64_t pts, int key)
{
    sample s = {dts, (int32_t)(pts - dts), 0, key};
    size_t start = m->mdat->len;
    for (guint i = 0; i < m->nals->len; i++) {
        const nal_ref *r = &g_array_index(m->nals, nal_ref, i);
        if (r->kind == NAL_DROP)
            continue;
        if (r->kind >= NAL_PARAM_VPS && r->kind <= NAL_PARAM_PPS &&
            params_contain(m->params[r->kind - NAL_PARAM_VPS], au + r->off, r->len))
            continue;
        put_u32(m->mdat, (uint32_t)r->len);
        g_byte_array_append(m->mdat, au + r->off, (guint)r->len);
    }
    s.size = (uint32_t)(m->mdat->len - start);
    g_array_append_val(m->samples, s);
}

/* ---- the writer ---- */

vid_fmp4 *vid_fmp4_new(vid_codec codec, uint32_t timescale, vid_fmp4_mode mode)
{
    if ((codec != VID_CODEC_H264 && codec != VID_CODEC_H265) || timescale == 0 ||
        (mode != VID_FMP4_PER_FRAME && mode != VID_FMP4_PER_GOP && mode != VID_FMP4_LIVE))
        return NULL;
    vid_fmp4 *m = g_new0(vid_fmp4, 1);
    m->codec = codec;
    m->mode = mode;
    m->timescale = timescale;
    m->nals = g_array_new(FALSE, FALSE, sizeof(nal_ref));
    m->samples = g_array_new(FALSE, FALSE, sizeof(sample));
    m->mdat = g_byte_array_new();
    m->last_dur = timescale / FALLBACK_FPS ? timescale / FALLBACK_FPS : 1;
    return m;
}

void vid_fmp4_free(vid_fmp4 *m)
{
    if (!m)
        return;
    params_free(m->params);
    if (m->init)
        g_bytes_unref(m->init);
    g_array_unref(m->nals);
    g_array_unref(m->samples);
    g_byte_array_unref(m->mdat);
    g_free(m);
}

static int has_vcl(const vid_fmp4 *m)
{
    for (guint i = 0; i < m->nals->len; i++)
        if (g_array_index(m->nals, nal_ref, i).kind == NAL_VCL)
            return 1;
    return 0;
}

/* The pending fragment ends before this access unit. */
static int ends_fragment(const vid_fmp4 *m, size_t len, int keyframe)
{
    if (m->samples->len == 0)
        return 0;
    if (m->mode == VID_FMP4_PER_FRAME || keyframe)
        return 1;
    /* Length prefixes make a sample at most 4 bytes per NAL unit longer. */
    return m->samples->len >= VID_FMP4_MAX_SAMPLES ||
           m->mdat->len + len + 4 * (size_t)m->nals->len > VID_FMP4_MAX_FRAG;
}

/* Checks the unit; *p gets the parameter sets of a keyframe (or NULLs). */
static int check_unit(vid_fmp4 *m, const uint8_t *au, size_t len, int64_t dts, int64_t pts,
                      int keyframe, GPtrArray *p[PS_KINDS], vid_sps *first)
{
    if (len > VID_FMP4_MAX_AU)
        return CORE_ETOOBIG;
    if ((m->have_dts && dts <= m->last_dts) || pts - dts > INT32_MAX || pts - dts < INT32_MIN)
        return CORE_EINVAL;
    int rc = split_annexb(m->codec, au, len, m->nals);
    if (rc)
        return rc;
    if (!has_vcl(m))
        return CORE_EPARSE;
    if (!keyframe)
        return 0;
    rc = collect_params(m, au, p, first);
    if (rc == 0 && !params_complete(m, p))
        rc = CORE_ENOTFOUND; /* keep the current ones */
    if (rc) {
        params_free(p);
        memset(p, 0, sizeof(GPtrArray *) * PS_KINDS);
    }
    return rc == CORE_ENOTFOUND ? 0 : rc;
}

int vid_fmp4_push(vid_fmp4 *m, const uint8_t *au, size_t len, int64_t dts, int64_t pts,
                  int keyframe, GByteArray *out, vid_fmp4_frag *info)
{
    if (info)
        memset(info, 0, sizeof *info);
    if (!m || !au || !out || dts < INT64_MIN / 4 || dts > INT64_MAX / 4 || pts < INT64_MIN / 4 ||
        pts > INT64_MAX / 4)
        return CORE_EINVAL;
    GPtrArray *p[PS_KINDS] = {NULL, NULL, NULL};
    vid_sps first;
    memset(&first, 0, sizeof first);
    int rc = check_unit(m, au, len, dts, pts, keyframe, p, &first);
    if (rc)
        return rc;
    int new_init = p[0] && params_changed(m, p);
    if (!m->init && !new_init) {
        params_free(p);
        return 0; /* nothing decodable yet */
    }
    if (m->have_dts)
        m->last_dur = duration_to(m->last_dts, dts);
    if (ends_fragment(m, len, keyframe))
        emit(m, dts, 1, out, info);
    if (new_init)
        install_params(m, p, &first);
    else
        params_free(p);
    if (!m->have_dts)
        m->base_dts = dts;
    m->have_dts = 1;
    m->last_dts = dts;
    append_sample(m, au, dts, pts, keyframe);
    if (m->mode == VID_FMP4_LIVE)
        emit(m, 0, 0, out, info);
    return 0;
}

int vid_fmp4_flush(vid_fmp4 *m, GByteArray *out, vid_fmp4_frag *info)
{
    if (info)
        memset(info, 0, sizeof *info);
    if (!m || !out)
        return CORE_EINVAL;
    if (m->samples->len > 0)
        emit(m, 0, 0, out, info);
    return 0;
}

GBytes *vid_fmp4_init_segment(vid_fmp4 *m)
{
    return m && m->init ? g_bytes_ref(m->init) : NULL;
}

GBytes *vid_fmp4_file_init_segment(vid_fmp4 *m)
{
    if (!m || !m->init)
        return NULL;
    return build_init(m, (uint64_t)(m->end_dts > m->base_dts ? m->end_dts - m->base_dts : 0));
}

uint32_t vid_fmp4_init_id(const vid_fmp4 *m)
{
    return m ? m->init_id : 0;
}

const char *vid_fmp4_codec_string(const vid_fmp4 *m)
{
    return m && m->init ? m->codec_str : NULL;
}

void vid_fmp4_size(const vid_fmp4 *m, uint32_t *width, uint32_t *height)
{
    int ok = m && m->init;
    if (width)
        *width = ok ? m->sps.width : 0;
    if (height)
        *height = ok ? m->sps.height : 0;
}
