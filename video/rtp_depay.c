/*
 * rtp_depay.c — RTP H.264/H.265 packets to Annex B access units
 * (rtp_depay.h).
 *
 * The access unit in progress is built in place in d->au: each NAL unit is
 * appended with a 4-byte start code, the NAL units of an aggregation packet
 * one by one, a fragmented one by its pieces (its header rebuilt from the
 * fragment header). What the unit holds is noted as it grows (a keyframe
 * slice, which parameter sets), so the end of the unit needs no second pass
 * except when parameter sets must be put in front.
 *
 * State: `broken` spoils the unit in progress, `wait_key` drops whole units
 * until a keyframe; `in_fu` is set between a fragment's start and its end.
 */
#include "rtp_depay.h"
#include "video.h"

#include <string.h>

enum { PS_VPS, PS_SPS, PS_PPS, PS_N };

struct vid_depay {
    vid_codec codec;
    int pt;
    vid_depay_fn fn;
    void *user;

    GByteArray *au;
    int have_ts, broken, wait_key, in_fu, key, has_ps[PS_N];
    uint32_t ts;    /* of the unit in progress */
    int64_t ext_ts; /* its extended time */
    int have_seq;
    uint16_t next_seq;

    GBytes *ps[PS_N]; /* the latest of each, without start code */
    vid_depay_counts n;
};

static const uint8_t start_code[4] = {0, 0, 0, 1};

#define AU_START (64 * 1024) /* the first unit's buffer; it doubles as it grows */

/* ---- NAL units ---- */

static int nal_type(const vid_depay *d, const uint8_t *nal)
{
    return d->codec == VID_CODEC_H265 ? (nal[0] >> 1) & 0x3F : nal[0] & 0x1F;
}

static int header_len(const vid_depay *d)
{
    return d->codec == VID_CODEC_H265 ? 2 : 1;
}

/* The parameter set kind of a NAL type, or -1. */
static int ps_kind(const vid_depay *d, int type)
{
    if (d->codec == VID_CODEC_H265)
        return type == 32 ? PS_VPS : type == 33 ? PS_SPS : type == 34 ? PS_PPS : -1;
    return type == 7 ? PS_SPS : type == 8 ? PS_PPS : -1;
}

static int is_key(const vid_depay *d, int type)
{
    return d->codec == VID_CODEC_H265 ? type >= 16 && type <= 21 : type == 5;
}

static void keep_ps(vid_depay *d, int kind, const uint8_t *nal, size_t len)
{
    if (d->ps[kind] && g_bytes_get_size(d->ps[kind]) == len &&
        !memcmp(g_bytes_get_data(d->ps[kind], NULL), nal, len))
        return;
    if (d->ps[kind])
        g_bytes_unref(d->ps[kind]);
    d->ps[kind] = g_bytes_new(nal, len);
}

/* Notes what a whole NAL unit of the unit in progress is. */
static void note_nal(vid_depay *d, const uint8_t *nal, size_t len)
{
    int type = nal_type(d, nal), kind = ps_kind(d, type);
    if (kind >= 0) {
        d->has_ps[kind] = 1;
        keep_ps(d, kind, nal, len);
    }
    if (is_key(d, type))
        d->key = 1;
}

static void append(vid_depay *d, const uint8_t *p, size_t len)
{
    if (d->au->len + len > VID_DEPAY_MAX_AU) {
        d->broken = 1;
        return;
    }
    g_byte_array_append(d->au, p, (guint)len);
}

static void add_nal(vid_depay *d, const uint8_t *nal, size_t len)
{
    if (len < (size_t)header_len(d)) {
        d->broken = 1;
        return;
    }
    append(d, start_code, 4);
    append(d, nal, len);
    note_nal(d, nal, len);
}

/* ---- the unit's end ---- */

static void reset_unit(vid_depay *d)
{
    g_byte_array_set_size(d->au, 0);
    d->broken = d->in_fu = d->key = 0;
    memset(d->has_ps, 0, sizeof d->has_ps);
}

static int needs_ps(const vid_depay *d, int kind)
{
    return (kind != PS_VPS || d->codec == VID_CODEC_H265) && !d->has_ps[kind] && d->ps[kind];
}

static void emit(vid_depay *d)
{
    if (!d->au->len && !d->broken) {
        reset_unit(d);
        return;
    }
    /* A spoiled unit, even one with nothing kept of it, was a picture the
     * next ones may refer to. */
    if (d->broken || d->in_fu)
        d->wait_key = 1;
    else if (d->key)
        d->wait_key = 0;
    if (d->wait_key) {
        d->n.dropped_aus++;
        reset_unit(d);
        return;
    }
    GByteArray *out = d->au;
    if (d->key && (needs_ps(d, PS_VPS) || needs_ps(d, PS_SPS) || needs_ps(d, PS_PPS))) {
        out = g_byte_array_sized_new(d->au->len + 256);
        for (int k = 0; k < PS_N; k++) {
            if (!needs_ps(d, k))
                continue;
            gsize n;
            const uint8_t *p = g_bytes_get_data(d->ps[k], &n);
            g_byte_array_append(out, start_code, 4);
            g_byte_array_append(out, p, (guint)n);
        }
        g_byte_array_append(out, d->au->data, d->au->len);
    }
    /* The unit goes on at its exact size; the buffer keeps room for one a
     * little larger than it. */
    GBytes *au = vid_bytes_take(out, out->len + out->len / 4);
    if (out != d->au)
        g_byte_array_unref(out);
    int key = d->key;
    reset_unit(d);
    d->n.aus++;
    d->fn(au, d->ext_ts, key, d->user);
}

/* ---- payloads ---- */

/* Aggregation: 16-bit sizes, each followed by a NAL unit. */
static void aggregated(vid_depay *d, const uint8_t *p, size_t len)
{
    while (len >= 2) {
        size_t n = (size_t)p[0] << 8 | p[1];
        p += 2, len -= 2;
        if (n == 0 || n > len) {
            d->broken = 1;
            return;
        }
        add_nal(d, p, n);
        p += n, len -= n;
    }
    if (len)
        d->broken = 1;
}

/* A fragment: hdr is the rebuilt NAL header (hlen bytes), fu the fragment
 * header (S, E, type), data what follows it. */
static void fragment(vid_depay *d, const uint8_t *hdr, int hlen, uint8_t fu, const uint8_t *data,
                     size_t len)
{
    int start = fu & 0x80, end = fu & 0x40;
    if (start) {
        if (d->in_fu)
            d->broken = 1; /* the last one never ended */
        append(d, start_code, 4);
        d->in_fu = (int)d->au->len;
        append(d, hdr, (size_t)hlen);
    } else if (!d->in_fu) {
        d->broken = 1; /* its start was lost */
        return;
    }
    append(d, data, len);
    if (end && !d->broken) {
        size_t at = (size_t)d->in_fu;
        note_nal(d, d->au->data + at, d->au->len - at);
        d->in_fu = 0;
    }
}

static void payload_h264(vid_depay *d, const uint8_t *p, size_t len)
{
    int type = p[0] & 0x1F;
    if (type >= 1 && type <= 23)
        add_nal(d, p, len);
    else if (type == 24)
        aggregated(d, p + 1, len - 1);
    else if (type == 28 && len >= 2) {
        uint8_t hdr = (uint8_t)((p[0] & 0xE0) | (p[1] & 0x1F));
        fragment(d, &hdr, 1, p[1], p + 2, len - 2);
    } else if (type == 28)
        d->broken = 1;
    else
        d->n.skipped++; /* STAP-B, MTAP, FU-B: interleaved mode only */
}

static void payload_h265(vid_depay *d, const uint8_t *p, size_t len)
{
    if (len < 2) {
        d->broken = 1;
        return;
    }
    int type = (p[0] >> 1) & 0x3F;
    if (type < 48)
        add_nal(d, p, len);
    else if (type == 48)
        aggregated(d, p + 2, len - 2);
    else if (type == 49 && len >= 3) {
        uint8_t hdr[2] = {(uint8_t)((p[0] & 0x81) | (p[2] & 0x3F) << 1), p[1]};
        fragment(d, hdr, 2, p[2], p + 3, len - 3);
    } else if (type == 49)
        d->broken = 1;
    else
        d->n.skipped++; /* PACI and reserved types */
}

/* ---- packets ---- */

void vid_depay_push(vid_depay *d, const uint8_t *pkt, size_t len)
{
    d->n.packets++;
    if (len < 12 || (pkt[0] >> 6) != 2) {
        d->n.skipped++;
        return;
    }
    int pt = pkt[1] & 0x7F, marker = pkt[1] >> 7;
    if (d->pt >= 0 && pt != d->pt) {
        d->n.skipped++;
        return;
    }
    uint16_t seq = (uint16_t)(pkt[2] << 8 | pkt[3]);
    uint32_t ts = (uint32_t)pkt[4] << 24 | (uint32_t)pkt[5] << 16 | (uint32_t)pkt[6] << 8 | pkt[7];
    size_t off = 12 + 4 * (size_t)(pkt[0] & 0x0F), end = len;
    if (off <= len && (pkt[0] & 0x10)) { /* header extension */
        if (off + 4 > len) {
            d->n.skipped++;
            return;
        }
        off += 4 + 4 * (size_t)(pkt[off + 2] << 8 | pkt[off + 3]);
    }
    if ((pkt[0] & 0x20) && len > 12) /* padding: its length is the last byte */
        end = pkt[len - 1] <= len ? len - pkt[len - 1] : 0;
    if (off >= end) {
        d->n.skipped++;
        return;
    }
    int gap = d->have_seq && seq != d->next_seq;
    if (gap) {
        d->n.lost += (uint16_t)(seq - d->next_seq);
        d->broken = 1; /* the lost packets were this unit's, or the next one's */
    }
    d->have_seq = 1;
    d->next_seq = (uint16_t)(seq + 1);
    if (d->have_ts && ts != d->ts) {
        emit(d); /* the last unit never had its marker */
        d->broken = gap;
    }
    d->ext_ts = d->have_ts ? d->ext_ts + (int32_t)(ts - d->ts) : 0;
    d->ts = ts;
    d->have_ts = 1;
    if (d->codec == VID_CODEC_H265)
        payload_h265(d, pkt + off, end - off);
    else
        payload_h264(d, pkt + off, end - off);
    if (marker)
        emit(d);
}

/* ---- the SDP's parameter sets ---- */

static void sprop(vid_depay *d, const char *list)
{
    char **sets = g_strsplit(list, ",", 8);
    for (char **s = sets; *s; s++) {
        gsize n = 0;
        guchar *nal = **s ? g_base64_decode(*s, &n) : NULL;
        int kind = n >= (gsize)header_len(d) ? ps_kind(d, nal_type(d, nal)) : -1;
        if (kind >= 0)
            keep_ps(d, kind, nal, n);
        g_free(nal);
    }
    g_strfreev(sets);
}

static void read_fmtp(vid_depay *d, const char *fmtp)
{
    char **params = g_strsplit(fmtp, ";", 32);
    for (char **p = params; *p; p++) {
        char *kv = g_strstrip(*p), *eq = strchr(kv, '=');
        if (!eq)
            continue;
        *eq = 0;
        if (!g_ascii_strcasecmp(kv, "sprop-parameter-sets") ||
            !g_ascii_strcasecmp(kv, "sprop-vps") || !g_ascii_strcasecmp(kv, "sprop-sps") ||
            !g_ascii_strcasecmp(kv, "sprop-pps"))
            sprop(d, g_strstrip(eq + 1));
    }
    g_strfreev(params);
}

vid_depay *vid_depay_new(vid_codec codec, int payload_type, const char *fmtp, vid_depay_fn fn,
                         void *user)
{
    vid_depay *d = g_new0(vid_depay, 1);
    d->codec = codec;
    d->pt = payload_type;
    d->fn = fn;
    d->user = user;
    d->au = g_byte_array_sized_new(AU_START);
    d->wait_key = 1; /* a stream starts at a keyframe */
    if (fmtp)
        read_fmtp(d, fmtp);
    return d;
}

void vid_depay_free(vid_depay *d)
{
    if (!d)
        return;
    g_byte_array_unref(d->au);
    for (int k = 0; k < PS_N; k++)
        if (d->ps[k])
            g_bytes_unref(d->ps[k]);
    g_free(d);
}

void vid_depay_counts_get(const vid_depay *d, vid_depay_counts *c)
{
    *c = d->n;
}
