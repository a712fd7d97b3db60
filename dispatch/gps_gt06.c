/*
 * gps_gt06.c — the Concox GT06 protocol (and the many trackers that clone
 * it): login, heartbeat and location frames over TCP.
 *
 * A frame is 78 78, a 1-byte length, the protocol number, the content, a
 * 2-byte serial number, a CRC-16/X-25 over length..serial, and 0D 0A; the
 * length counts protocol..CRC. Frames that start 79 79 have a 2-byte length
 * and are otherwise the same. All numbers are big-endian. The connection
 * starts with a login (0x01) whose 8-byte BCD terminal id is the IMEI with
 * a leading 0; a position before it is refused with an error, since it
 * belongs to no device.
 *
 * Framing: bytes that do not start a frame, or a frame whose stop bits are
 * wrong, are skipped one byte at a time until a start marker lines up
 * again; more than GT06_MAX_SKIP such bytes since the last good frame mean
 * the peer does not speak GT06, and the connection is closed. A frame with
 * a bad CRC is discarded unanswered (manual 4.6); the device sends it again.
 *
 * Answers: the login (0x01), heartbeat (0x13) and alarm (0x16) have a
 * documented server response: 78 78 05, the protocol number, the serial
 * number, the CRC, 0D 0A (manual 5.1.2, 5.3.2, 5.4.2). The manual gives the
 * location packet (0x12) no response, but Traccar's decoder answers every
 * location message the same way and GT06 devices in the field accept it; so
 * do we, for 0x12 and its newer form 0x22, so that no device waits for an
 * answer it does not get. A 79 79 frame is answered in the long form.
 *
 * Sources: "GPS Tracker Communication Protocol (GT06)", Shenzhen Concox
 * (sections 4, 5.1, 5.2, 5.4 and Appendix B: the login and location examples
 * used by the tests); Traccar's Gt06ProtocolDecoder for the 79 79 form, 0x22
 * and acknowledging locations. Date and time are taken as UTC.
 */
#include "gps_internal.h"

#include "../core/core.h"

#include <math.h>
#include <string.h>

enum {
    GT06_LOGIN = 0x01,
    GT06_GPS_LBS = 0x12,
    GT06_STATUS = 0x13, /* the heartbeat */
    GT06_ALARM = 0x16,
    GT06_GPS_LBS_2 = 0x22,
};

#define GT06_MIN_LENGTH 5 /* protocol, serial and CRC, with no content */
#define GT06_GPS_BYTES 18 /* date/time 6, satellites 1, lat 4, lon 4, speed 1, course 2 */
#define GT06_MAX_SKIP 64

struct disp_gps_gt06 {
    disp_gps__buf buf;
    char imei[17];
    size_t skipped; /* bytes outside frames since the last good frame */
};

typedef struct {
    int ext; /* 79 79: 2-byte length */
    uint8_t proto;
    const uint8_t *content;
    size_t content_len;
    uint16_t serial;
} gt06_frame;

disp_gps_gt06 *disp_gps_gt06_new(void)
{
    disp_gps_gt06 *st = g_new0(disp_gps_gt06, 1);
    st->buf.cap = GPS_GT06_MAX_FRAME;
    return st;
}

void disp_gps_gt06_free(disp_gps_gt06 *st)
{
    if (!st)
        return;
    disp_gps__buf_free(&st->buf);
    g_free(st);
}

const char *disp_gps_gt06_imei(const disp_gps_gt06 *st)
{
    return st->imei[0] ? st->imei : NULL;
}

/* ---- messages ---- */

/* The terminal id is 16 BCD digits: the 15-digit IMEI behind a 0. Some
 * devices append a type code and time zone: only the first 8 bytes count. */
static int gt06_login(disp_gps_gt06 *st, const gt06_frame *f)
{
    char digits[17];
    if (f->content_len < 8)
        return CORE_EINVAL;
    for (int i = 0; i < 16; i++) {
        uint8_t b = f->content[i / 2];
        unsigned d = i % 2 ? b & 0x0F : b >> 4;
        if (d > 9)
            return CORE_EINVAL;
        digits[i] = (char)('0' + d);
    }
    digits[16] = '\0';
    g_strlcpy(st->imei, digits[0] == '0' ? digits + 1 : digits, sizeof(st->imei));
    return 0;
}

/* The GPS block that 0x12, 0x16 and 0x22 start with (manual 5.2.1). Course
 * and status: bit 12 positioned, bit 11 west, bit 10 north, bits 0-9 the
 * course in degrees. Latitude and longitude are minutes × 30000. */
static void gt06_location(const disp_gps_gt06 *st, const gt06_frame *f, GArray *fixes)
{
    const uint8_t *c = f->content;
    if (f->content_len < GT06_GPS_BYTES)
        return;
    GDateTime *t = g_date_time_new_utc(2000 + c[0], c[1], c[2], c[3], c[4], c[5]);
    if (!t)
        return;
    disp_gps_fix fix;
    disp_gps_fix_init(&fix);
    g_strlcpy(fix.device, st->imei, sizeof(fix.device));
    fix.fix_ms = g_date_time_to_unix(t) * 1000;
    g_date_time_unref(t);
    fix.satellites = c[6] & 0x0F;
    fix.lat = disp_gps__be32(c + 7) / 1800000.0;
    fix.lon = disp_gps__be32(c + 11) / 1800000.0;
    fix.speed_kmh = c[15];
    uint16_t cs = disp_gps__be16(c + 16);
    fix.course_deg = (cs & 0x3FF) <= 360 ? (double)(cs & 0x3FF) : NAN;
    fix.valid = (cs >> 12) & 1;
    if (!(cs & 1 << 10))
        fix.lat = -fix.lat;
    if (cs & 1 << 11)
        fix.lon = -fix.lon;
    if (disp_gps__check_position(fix.lat, fix.lon) == 0)
        g_array_append_val(fixes, fix);
}

static void gt06_ack(const gt06_frame *f, GByteArray *reply)
{
    uint8_t a[11];
    size_t i = 0;
    a[i++] = f->ext ? 0x79 : 0x78;
    a[i++] = f->ext ? 0x79 : 0x78;
    if (f->ext)
        a[i++] = 0x00;
    a[i++] = 0x05;
    a[i++] = f->proto;
    a[i++] = (uint8_t)(f->serial >> 8);
    a[i++] = (uint8_t)f->serial;
    uint16_t crc = disp_gps_crc16_x25(a + 2, i - 2);
    a[i++] = (uint8_t)(crc >> 8);
    a[i++] = (uint8_t)crc;
    a[i++] = 0x0D;
    a[i++] = 0x0A;
    g_byte_array_append(reply, a, (guint)i);
}

static int gt06_message(disp_gps_gt06 *st, const gt06_frame *f, disp_gps__out *out)
{
    switch (f->proto) {
    case GT06_LOGIN:
        if (gt06_login(st, f))
            return CORE_EINVAL;
        break;
    case GT06_STATUS:
        break;
    case GT06_GPS_LBS:
    case GT06_GPS_LBS_2:
    case GT06_ALARM:
        if (!st->imei[0])
            return CORE_EINVAL;
        gt06_location(st, f, out->fixes);
        break;
    default:
        return 0; /* no position, and no documented answer */
    }
    gt06_ack(f, out->reply);
    return 0;
}

/* ---- framing ---- */

static int gt06_skip(disp_gps_gt06 *st, size_t *used)
{
    if (++st->skipped > GT06_MAX_SKIP)
        return CORE_EINVAL;
    *used = 1;
    return 0;
}

static int gt06_frame_fn(void *arg, const uint8_t *p, size_t n, disp_gps__out *out, size_t *used)
{
    disp_gps_gt06 *st = arg;
    *used = 0;
    if (n < 2)
        return p[0] == 0x78 || p[0] == 0x79 ? 0 : gt06_skip(st, used);
    int ext = p[0] == 0x79 && p[1] == 0x79;
    if (!ext && !(p[0] == 0x78 && p[1] == 0x78))
        return gt06_skip(st, used);
    size_t hdr = ext ? 4 : 3;
    if (n < hdr)
        return 0;
    size_t len = ext ? disp_gps__be16(p + 2) : p[2];
    size_t total = hdr + len + 2;
    if (len < GT06_MIN_LENGTH)
        return gt06_skip(st, used);
    if (total > GPS_GT06_MAX_FRAME)
        return CORE_EINVAL;
    if (n < total)
        return 0;
    if (p[total - 2] != 0x0D || p[total - 1] != 0x0A)
        return gt06_skip(st, used);
    *used = total;
    if (disp_gps__be16(p + total - 4) != disp_gps_crc16_x25(p + 2, total - 6))
        return 0;
    st->skipped = 0;
    gt06_frame f = {ext, p[hdr], p + hdr + 1, len - GT06_MIN_LENGTH, disp_gps__be16(p + total - 6)};
    return gt06_message(st, &f, out);
}

int disp_gps_gt06_feed(disp_gps_gt06 *st, const uint8_t *in, size_t n, GArray *fixes,
                       GByteArray *reply)
{
    disp_gps__out out = {fixes, reply};
    return disp_gps__feed(&st->buf, in, n, gt06_frame_fn, st, &out);
}
