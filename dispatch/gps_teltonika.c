/*
 * gps_teltonika.c — Teltonika's TCP data sending: the IMEI handshake, then
 * AVL data packets in Codec 8 (0x08) or Codec 8 Extended (0x8E).
 *
 * The device first sends a 2-byte length and its IMEI in ASCII; the server
 * answers one byte, 0x01 to accept it or 0x00 to refuse. Then each AVL
 * packet is four zero bytes, a 4-byte data field length, the data field
 * (codec id, record count, records, record count again) and 4 bytes whose
 * low two are the CRC-16/IBM (CRC-16/ARC) of the data field. The server
 * answers with the number of records it received as a 4-byte integer; "if
 * sent data number and reported by server doesn't match, module resends
 * sent data" (Teltonika wiki). So a packet with a bad CRC is answered 0 and
 * comes again, while a packet with a good CRC is answered with its full
 * count even when a record in it fails the position check: sending it again
 * would not mend it. The device may also send a single 0xFF byte between
 * packets to keep the link open (Traccar's TeltonikaFrameDecoder skips it).
 *
 * A record: timestamp (8 bytes, UTC ms), priority (1), longitude and
 * latitude (4 each, signed, degrees × 1e7), altitude (2, signed, m), angle
 * (2, degrees), satellites (1), speed (2, km/h), then the IO elements. In
 * Codec 8 the event IO id, the total count and the counts of the 1-, 2-, 4-
 * and 8-byte elements are 1 byte each and element ids are 1 byte; in 8E
 * they are 2 bytes, and a last group holds variable-length elements (id 2,
 * length 2, value). The IO elements are skipped, but every length in them is
 * checked against the bytes present. "If record are without valid
 * coordinates ... Angle, Satellites and Speed are 0": satellites 0 marks a
 * fix as not valid.
 *
 * Source: Teltonika wiki, "Teltonika Data Sending Protocols" (formerly
 * "Codec"): https://wiki.teltonika-gps.com/view/Teltonika_Data_Sending_Protocols
 * whose Codec 8 and Codec 8 Extended examples are the test fixtures.
 */
#include "gps_internal.h"

#include "../core/core.h"

#include <math.h>
#include <string.h>

#define TELTONIKA_CODEC8 0x08
#define TELTONIKA_CODEC8E 0x8E
#define TELTONIKA_PING 0xFF
#define TELTONIKA_IMEI_MAX 31 /* disp_gps_fix.device holds 31 digits */
#define TELTONIKA_HEADER 8    /* preamble and data field length */
#define TELTONIKA_CRC 4

struct disp_gps_teltonika {
    disp_gps__buf buf;
    disp_gps_teltonika_accept_fn accept;
    void *user;
    char imei[TELTONIKA_IMEI_MAX + 1];
};

disp_gps_teltonika *disp_gps_teltonika_new(disp_gps_teltonika_accept_fn accept, void *user)
{
    disp_gps_teltonika *st = g_new0(disp_gps_teltonika, 1);
    st->buf.cap = GPS_TELTONIKA_MAX_PACKET;
    st->accept = accept;
    st->user = user;
    return st;
}

void disp_gps_teltonika_free(disp_gps_teltonika *st)
{
    if (!st)
        return;
    disp_gps__buf_free(&st->buf);
    g_free(st);
}

const char *disp_gps_teltonika_imei(const disp_gps_teltonika *st)
{
    return st->imei[0] ? st->imei : NULL;
}

/* ---- a bounds-checked reader: past the end, reads give 0 and set bad ---- */

typedef struct {
    const uint8_t *p, *end;
    int bad;
} rd;

static const uint8_t *rd_take(rd *r, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = 1;
        return NULL;
    }
    const uint8_t *at = r->p;
    r->p += n;
    return at;
}

static uint64_t rd_uint(rd *r, size_t n)
{
    const uint8_t *at = rd_take(r, n);
    uint64_t v = 0;
    for (size_t i = 0; at && i < n; i++)
        v = v << 8 | at[i];
    return v;
}

/* ---- records ---- */

static void skip_io(rd *r, int ext)
{
    size_t w = ext ? 2 : 1; /* width of ids and counts */
    rd_take(r, 2 * w);      /* event IO id, total count */
    for (size_t size = 1; size <= 8; size *= 2) {
        uint64_t count = rd_uint(r, w);
        rd_take(r, (size_t)count * (w + size));
    }
    if (!ext)
        return;
    uint64_t nx = rd_uint(r, 2);
    for (uint64_t i = 0; i < nx && !r->bad; i++) {
        rd_take(r, 2);
        rd_take(r, (size_t)rd_uint(r, 2));
    }
}

/* Reads one record; appends it to fixes when its position is good. */
static void read_record(const disp_gps_teltonika *st, rd *r, int ext, GArray *fixes)
{
    disp_gps_fix fix;
    disp_gps_fix_init(&fix);
    g_strlcpy(fix.device, st->imei, sizeof(fix.device));
    uint64_t ts = rd_uint(r, 8);
    rd_take(r, 1); /* priority */
    fix.lon = (int32_t)(uint32_t)rd_uint(r, 4) / 1e7;
    fix.lat = (int32_t)(uint32_t)rd_uint(r, 4) / 1e7;
    fix.altitude_m = (int16_t)(uint16_t)rd_uint(r, 2);
    uint64_t angle = rd_uint(r, 2);
    fix.satellites = (int)rd_uint(r, 1);
    fix.speed_kmh = (double)rd_uint(r, 2);
    skip_io(r, ext);
    if (r->bad || ts > INT64_MAX || disp_gps__check_position(fix.lat, fix.lon))
        return;
    fix.fix_ms = (int64_t)ts;
    fix.course_deg = angle <= 360 ? (double)angle : NAN;
    fix.valid = fix.satellites > 0;
    g_array_append_val(fixes, fix);
}

/* The data field: codec id .. second record count, CRC already checked.
 * Returns the record count, or CORE_EINVAL with no fixes added. */
static int read_data(const disp_gps_teltonika *st, const uint8_t *p, size_t n, GArray *fixes)
{
    rd r = {p, p + n, 0};
    guint before = fixes->len;
    uint64_t codec = rd_uint(&r, 1);
    uint64_t count = rd_uint(&r, 1);
    if (codec != TELTONIKA_CODEC8 && codec != TELTONIKA_CODEC8E)
        return CORE_EINVAL;
    for (uint64_t i = 0; i < count && !r.bad; i++)
        read_record(st, &r, codec == TELTONIKA_CODEC8E, fixes);
    if (rd_uint(&r, 1) != count || r.bad || r.p != r.end) {
        g_array_set_size(fixes, before);
        return CORE_EINVAL;
    }
    return (int)count;
}

/* ---- framing ---- */

static void reply_count(GByteArray *reply, uint32_t count)
{
    uint8_t a[4] = {(uint8_t)(count >> 24), (uint8_t)(count >> 16), (uint8_t)(count >> 8),
                    (uint8_t)count};
    g_byte_array_append(reply, a, 4);
}

static int handshake(disp_gps_teltonika *st, const uint8_t *p, size_t n, disp_gps__out *out,
                     size_t *used)
{
    if (n < 2)
        return 0;
    size_t len = disp_gps__be16(p);
    if (len == 0 || len > TELTONIKA_IMEI_MAX)
        return CORE_EINVAL;
    if (n < 2 + len)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!g_ascii_isdigit(p[2 + i]))
            return CORE_EINVAL;
    *used = 2 + len;
    memcpy(st->imei, p + 2, len);
    st->imei[len] = '\0';
    int ok = !st->accept || st->accept(st->imei, st->user);
    uint8_t answer = ok ? 0x01 : 0x00;
    g_byte_array_append(out->reply, &answer, 1);
    return ok ? 0 : CORE_ENOTFOUND;
}

static int packet(disp_gps_teltonika *st, const uint8_t *p, size_t n, disp_gps__out *out,
                  size_t *used)
{
    if (p[0] == TELTONIKA_PING) {
        *used = 1;
        return 0;
    }
    for (size_t i = 0; i < MIN(n, 4); i++)
        if (p[i] != 0)
            return CORE_EINVAL; /* not the preamble: there is no marker to resync on */
    if (n < TELTONIKA_HEADER)
        return 0;
    uint32_t len = disp_gps__be32(p + 4);
    if (len < 3 || len > GPS_TELTONIKA_MAX_PACKET - TELTONIKA_HEADER - TELTONIKA_CRC)
        return CORE_EINVAL;
    size_t total = TELTONIKA_HEADER + (size_t)len + TELTONIKA_CRC;
    if (n < total)
        return 0;
    *used = total;
    const uint8_t *data = p + TELTONIKA_HEADER;
    if (disp_gps__be32(data + len) != disp_gps_crc16_arc(data, len)) {
        reply_count(out->reply, 0);
        return 0;
    }
    int count = read_data(st, data, len, out->fixes);
    if (count < 0)
        return count;
    reply_count(out->reply, (uint32_t)count);
    return 0;
}

static int teltonika_frame_fn(void *arg, const uint8_t *p, size_t n, disp_gps__out *out,
                              size_t *used)
{
    disp_gps_teltonika *st = arg;
    *used = 0;
    return st->imei[0] ? packet(st, p, n, out, used) : handshake(st, p, n, out, used);
}

int disp_gps_teltonika_feed(disp_gps_teltonika *st, const uint8_t *in, size_t n, GArray *fixes,
                            GByteArray *reply)
{
    disp_gps__out out = {fixes, reply};
    return disp_gps__feed(&st->buf, in, n, teltonika_frame_fn, st, &out);
}
