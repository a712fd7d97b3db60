/*
 * fmp4_sps.c — reading H.264 and H.265 sequence parameter sets, and the
 * RFC 6381 codec strings made from them (fmp4.h).
 *
 * Only what the fMP4 sample entry and the browser need is read: profile,
 * level, chroma format, bit depths and the cropped picture size (H.264
 * 7.3.2.1.1, H.265 7.3.2.2 and 7.3.3). The NAL payload is first copied
 * without its emulation prevention bytes into a bounded buffer (at most
 * VID_FMP4_MAX_PARAM bytes); the bit reader has a sticky error flag, so a
 * read past the end or an Exp-Golomb code longer than 32 bits makes the whole
 * parse fail with CORE_EPARSE instead of producing numbers. Pure functions,
 * any thread.
 */
#include "fmp4.h"

#include <stdio.h>
#include <string.h>

/* Largest picture side accepted; larger SPS values are taken as garbage. */
#define MAX_SIDE 16384u

typedef struct {
    const uint8_t *p;
    size_t len; /* bytes */
    size_t bit; /* next bit to read */
    int err;
} bitreader;

static uint32_t get_bits(bitreader *b, unsigned n)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < n; i++) {
        if (b->bit >= b->len * 8) {
            b->err = 1;
            return 0;
        }
        v = (v << 1) | ((b->p[b->bit >> 3] >> (7 - (b->bit & 7))) & 1u);
        b->bit++;
    }
    return v;
}

/* ue(v), 9.1: up to 31 leading zeros, so the value fits 32 bits. */
static uint32_t get_ue(bitreader *b)
{
    unsigned zeros = 0;
    while (!b->err && get_bits(b, 1) == 0) {
        if (++zeros > 31) {
            b->err = 1;
            return 0;
        }
    }
    if (b->err)
        return 0;
    return (uint32_t)((1ull << zeros) - 1 + get_bits(b, zeros));
}

static int32_t get_se(bitreader *b)
{
    uint32_t k = get_ue(b);
    return (k & 1) ? (int32_t)((k + 1) / 2) : -(int32_t)(k / 2);
}

/* Copies the NAL unit without emulation_prevention_three_byte (7.3.1). */
static int unescape(const uint8_t *nal, size_t len, uint8_t *rbsp, size_t *out_len)
{
    size_t n = 0, zeros = 0;
    if (len > VID_FMP4_MAX_PARAM)
        return CORE_ETOOBIG;
    for (size_t i = 0; i < len; i++) {
        if (zeros >= 2 && nal[i] == 3) {
            zeros = 0;
            continue;
        }
        zeros = nal[i] == 0 ? zeros + 1 : 0;
        rbsp[n++] = nal[i];
    }
    *out_len = n;
    return 0;
}

/* scaling_list() of H.264 7.3.2.1.1.1: only walked over. */
static void skip_scaling_list(bitreader *b, int size)
{
    int last = 8, next = 8;
    for (int j = 0; j < size && !b->err; j++) {
        if (next != 0) {
            int32_t delta = get_se(b);
            if (delta < -128 || delta > 127) {
                b->err = 1;
                return;
            }
            next = (last + delta + 256) % 256;
        }
        last = next == 0 ? last : next;
    }
}

/* The chroma fields of the high profiles (H.264 7.3.2.1.1); returns ChromaArrayType. */
static int h264_chroma(bitreader *b, vid_sps *s)
{
    uint32_t chroma = get_ue(b);
    if (chroma > 3) {
        b->err = 1;
        return 1;
    }
    s->chroma_format_idc = (uint8_t)chroma;
    int chroma_array_type = (int)chroma;
    if (chroma == 3 && get_bits(b, 1))
        chroma_array_type = 0; /* separate colour planes */
    uint32_t luma = get_ue(b), chr = get_ue(b);
    if (luma > 6 || chr > 6) {
        b->err = 1;
        return 1;
    }
    s->bit_depth_luma = (uint8_t)(8 + luma);
    s->bit_depth_chroma = (uint8_t)(8 + chr);
    get_bits(b, 1); /* qpprime_y_zero_transform_bypass_flag */
    if (get_bits(b, 1)) {
        int lists = chroma != 3 ? 8 : 12;
        for (int i = 0; i < lists && !b->err; i++)
            if (get_bits(b, 1))
                skip_scaling_list(b, i < 6 ? 16 : 64);
    }
    return chroma_array_type;
}

static int h264_high(uint8_t profile)
{
    static const uint8_t high[] = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135};
    return memchr(high, profile, sizeof high) != NULL;
}

static void h264_poc(bitreader *b)
{
    uint32_t type = get_ue(b);
    if (type == 0) {
        get_ue(b); /* log2_max_pic_order_cnt_lsb_minus4 */
    } else if (type == 1) {
        get_bits(b, 1);
        get_se(b);
        get_se(b);
        uint32_t cycle = get_ue(b);
        if (cycle > 255)
            b->err = 1;
        for (uint32_t i = 0; i < cycle && !b->err; i++)
            get_se(b);
    } else if (type != 2) {
        b->err = 1;
    }
}

/* Size from macroblocks and the cropping window, in crop units (7.4.2.1.1). */
static int h264_size(bitreader *b, vid_sps *s, int chroma_array_type)
{
    uint64_t w_mbs = (uint64_t)get_ue(b) + 1, h_units = (uint64_t)get_ue(b) + 1;
    uint32_t frame_mbs_only = get_bits(b, 1);
    if (!frame_mbs_only)
        get_bits(b, 1); /* mb_adaptive_frame_field_flag */
    get_bits(b, 1);     /* direct_8x8_inference_flag */
    uint64_t crop[4] = {0, 0, 0, 0};
    if (get_bits(b, 1))
        for (int i = 0; i < 4; i++)
            crop[i] = get_ue(b);
    if (b->err)
        return CORE_EPARSE;
    uint64_t w = w_mbs * 16, h = (2 - frame_mbs_only) * h_units * 16;
    uint64_t sub_w = chroma_array_type == 1 || chroma_array_type == 2 ? 2 : 1;
    uint64_t sub_h = chroma_array_type == 1 ? 2 : 1;
    uint64_t cx = sub_w, cy = sub_h * (2 - frame_mbs_only);
    if (w > MAX_SIDE || h > MAX_SIDE || (crop[0] + crop[1]) * cx >= w ||
        (crop[2] + crop[3]) * cy >= h)
        return CORE_EPARSE;
    s->width = (uint32_t)(w - (crop[0] + crop[1]) * cx);
    s->height = (uint32_t)(h - (crop[2] + crop[3]) * cy);
    return 0;
}

static int h264_sps(bitreader *b, vid_sps *s)
{
    if ((get_bits(b, 8) & 0x1f) != 7) /* NAL header */
        return CORE_EPARSE;
    s->profile_idc = (uint8_t)get_bits(b, 8);
    s->constraint_flags = (uint8_t)get_bits(b, 8);
    s->level_idc = (uint8_t)get_bits(b, 8);
    uint32_t id = get_ue(b);
    if (id > 31)
        return CORE_EPARSE;
    s->sps_id = (uint8_t)id;
    s->chroma_format_idc = 1;
    s->bit_depth_luma = s->bit_depth_chroma = 8;
    int chroma_array_type = 1;
    if (h264_high(s->profile_idc))
        chroma_array_type = h264_chroma(b, s);
    if (get_ue(b) > 12) /* log2_max_frame_num_minus4 */
        return CORE_EPARSE;
    h264_poc(b);
    get_ue(b);      /* max_num_ref_frames */
    get_bits(b, 1); /* gaps_in_frame_num_value_allowed_flag */
    if (b->err)
        return CORE_EPARSE;
    int rc = h264_size(b, s, chroma_array_type);
    if (rc)
        return rc;
    snprintf(s->codec_string, sizeof s->codec_string, "avc1.%02x%02x%02x", s->profile_idc,
             s->constraint_flags, s->level_idc);
    return 0;
}

/* profile_tier_level(1, max_sub_layers_minus1) of H.265 7.3.3. */
static void h265_ptl(bitreader *b, vid_sps *s)
{
    s->profile_space = (uint8_t)get_bits(b, 2);
    s->tier_flag = (uint8_t)get_bits(b, 1);
    s->profile_idc = (uint8_t)get_bits(b, 5);
    s->compat_flags = get_bits(b, 32);
    for (int i = 0; i < 6; i++)
        s->constraint[i] = (uint8_t)get_bits(b, 8);
    s->level_idc = (uint8_t)get_bits(b, 8);
    unsigned sub = s->max_sub_layers - 1u, present[8];
    for (unsigned i = 0; i < sub; i++)
        present[i] = get_bits(b, 2); /* profile present << 1 | level present */
    if (sub > 0)
        get_bits(b, 2 * (8 - sub)); /* reserved_zero_2bits */
    for (unsigned i = 0; i < sub; i++) {
        if (present[i] & 2) {
            get_bits(b, 32);
            get_bits(b, 32);
            get_bits(b, 24); /* sub-layer profile: 88 bits */
        }
        if (present[i] & 1)
            get_bits(b, 8);
    }
}

static int h265_size(bitreader *b, vid_sps *s, int separate_planes)
{
    uint64_t w = get_ue(b), h = get_ue(b), win[4] = {0, 0, 0, 0};
    if (get_bits(b, 1))
        for (int i = 0; i < 4; i++)
            win[i] = get_ue(b);
    if (b->err)
        return CORE_EPARSE;
    int cat = separate_planes ? 0 : s->chroma_format_idc;
    uint64_t sub_w = cat == 1 || cat == 2 ? 2 : 1, sub_h = cat == 1 ? 2 : 1;
    if (w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE || (win[0] + win[1]) * sub_w >= w ||
        (win[2] + win[3]) * sub_h >= h)
        return CORE_EPARSE;
    s->width = (uint32_t)(w - (win[0] + win[1]) * sub_w);
    s->height = (uint32_t)(h - (win[2] + win[3]) * sub_h);
    return 0;
}

/* ISO/IEC 14496-15 E.3: hvc1.[A-C]?profile.compat(reversed, hex).(L|H)level[.constraint…]. */
static void h265_codec_string(vid_sps *s)
{
    uint32_t rev = 0;
    for (int i = 0; i < 32; i++)
        if (s->compat_flags & (1u << (31 - i)))
            rev |= 1u << i;
    static const char *space[] = {"", "A", "B", "C"};
    int n = snprintf(s->codec_string, sizeof s->codec_string, "hvc1.%s%u.%X.%c%u",
                     space[s->profile_space & 3], s->profile_idc, rev, s->tier_flag ? 'H' : 'L',
                     s->level_idc);
    int last = 5;
    while (last >= 0 && s->constraint[last] == 0)
        last--;
    for (int i = 0; i <= last && n > 0 && (size_t)n < sizeof s->codec_string; i++)
        n += snprintf(s->codec_string + n, sizeof s->codec_string - (size_t)n, ".%X",
                      s->constraint[i]);
}

static int h265_sps(bitreader *b, vid_sps *s)
{
    if (((get_bits(b, 16) >> 9) & 0x3f) != 33) /* NAL header: type 33 */
        return CORE_EPARSE;
    get_bits(b, 4); /* sps_video_parameter_set_id */
    s->max_sub_layers = (uint8_t)(get_bits(b, 3) + 1);
    s->temporal_id_nesting = (uint8_t)get_bits(b, 1);
    if (s->max_sub_layers > 7)
        return CORE_EPARSE;
    h265_ptl(b, s);
    uint32_t id = get_ue(b), chroma = get_ue(b);
    if (b->err || id > 15 || chroma > 3)
        return CORE_EPARSE;
    s->sps_id = (uint8_t)id;
    s->chroma_format_idc = (uint8_t)chroma;
    int separate_planes = chroma == 3 ? (int)get_bits(b, 1) : 0;
    int rc = h265_size(b, s, separate_planes);
    if (rc)
        return rc;
    uint32_t luma = get_ue(b), chr = get_ue(b);
    if (b->err || luma > 8 || chr > 8)
        return CORE_EPARSE;
    s->bit_depth_luma = (uint8_t)(8 + luma);
    s->bit_depth_chroma = (uint8_t)(8 + chr);
    h265_codec_string(s);
    return 0;
}

int vid_sps_parse(vid_codec codec, const uint8_t *nal, size_t len, vid_sps *out)
{
    if (!nal || !out || (codec != VID_CODEC_H264 && codec != VID_CODEC_H265))
        return CORE_EINVAL;
    uint8_t rbsp[VID_FMP4_MAX_PARAM];
    size_t n;
    int rc = unescape(nal, len, rbsp, &n);
    if (rc)
        return rc;
    bitreader b = {rbsp, n, 0, 0};
    vid_sps s;
    memset(&s, 0, sizeof s);
    s.codec = codec;
    if (n == 0 || (rbsp[0] & 0x80)) /* forbidden_zero_bit */
        return CORE_EPARSE;
    rc = codec == VID_CODEC_H264 ? h264_sps(&b, &s) : h265_sps(&b, &s);
    if (rc || b.err)
        return rc ? rc : CORE_EPARSE;
    *out = s;
    return 0;
}
