/*
 * gps_common.c — what the GPS decoders share: the per-connection frame
 * buffer, the position check, checksums and big-endian reads.
 *
 * The buffer holds only the unfinished frame at the end of what arrived, so
 * it never grows past cap (one frame) whatever the peer sends at once, and
 * stays empty on a connection whose reads end on frame boundaries. A frame
 * whose header claims more than cap is the decoder's error to return. After
 * an error the buffer stays failed: the connection is to be closed. Any
 * thread, one connection at a time.
 */
#include "gps_internal.h"

#include "../core/core.h"

#include <math.h>
#include <string.h>

void disp_gps_fix_init(disp_gps_fix *f)
{
    memset(f, 0, sizeof(*f));
    f->lon = f->lat = NAN;
    f->speed_kmh = f->course_deg = f->altitude_m = f->accuracy_m = f->battery_pct = NAN;
    f->satellites = -1;
}

int disp_gps__check_position(double lat, double lon)
{
    /* Written so that NaN fails every comparison and lands in the error. */
    if (!(lat >= -90.0 && lat <= 90.0 && lon >= -180.0 && lon <= 180.0))
        return CORE_EINVAL;
    return 0;
}

uint16_t disp_gps__be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

uint32_t disp_gps__be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Both CRCs are the reflected form (LSB first) of a 16-bit polynomial; a
 * bitwise loop is fast enough for frames of a few hundred bytes. */
/* Byte-at-a-time tables for the two reflected polynomials, made once. */
static uint16_t crc_table[2][256];

static void crc_tables_make(void)
{
    static const uint16_t poly[2] = {0x8408, 0xA001};
    for (int t = 0; t < 2; t++)
        for (int b = 0; b < 256; b++) {
            uint16_t crc = (uint16_t)b;
            for (int bit = 0; bit < 8; bit++)
                crc = (crc & 1) ? (uint16_t)((crc >> 1) ^ poly[t]) : (uint16_t)(crc >> 1);
            crc_table[t][b] = crc;
        }
}

static uint16_t crc16_reflected(const uint8_t *p, size_t n, int table, uint16_t crc)
{
    static gsize made;
    if (g_once_init_enter(&made)) {
        crc_tables_make();
        g_once_init_leave(&made, 1);
    }
    const uint16_t *t = crc_table[table];
    for (size_t i = 0; i < n; i++)
        crc = (uint16_t)((crc >> 8) ^ t[(crc ^ p[i]) & 0xFF]);
    return crc;
}

uint16_t disp_gps_crc16_x25(const uint8_t *p, size_t n)
{
    return (uint16_t)~crc16_reflected(p, n, 0, 0xFFFF);
}

uint16_t disp_gps_crc16_arc(const uint8_t *p, size_t n)
{
    return crc16_reflected(p, n, 1, 0x0000);
}

/* Decodes the complete frames at the start of p[0..n); *taken is their length. */
static int frames(const uint8_t *p, size_t n, disp_gps__frame_fn frame, void *st,
                  disp_gps__out *out, size_t *taken)
{
    size_t off = 0, used = 0;
    int rc = 0;
    while (off < n && (rc = frame(st, p + off, n - off, out, &used)) == 0 && used > 0)
        off += used;
    *taken = off;
    return rc;
}

static void keep(disp_gps__buf *b, const uint8_t *p, size_t n)
{
    if (b->len + n > b->alloc) {
        b->alloc = MIN(b->cap, MAX(b->len + n, 2 * b->alloc));
        b->data = g_realloc(b->data, b->alloc);
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

/* With nothing buffered, frames are decoded straight from the input and only
 * an unfinished one is kept; otherwise the input tops the buffer up. A
 * decoder asks for more bytes only for a frame that fits in cap, so an
 * unfinished frame always fits, and a full buffer that decodes nothing is a
 * decoder's mistake, treated as an error. */
int disp_gps__feed(disp_gps__buf *b, const uint8_t *in, size_t n, disp_gps__frame_fn frame,
                   void *st, disp_gps__out *out)
{
    size_t taken;
    while (b->err == 0 && n > 0) {
        if (b->len == 0) {
            b->err = frames(in, n, frame, st, out, &taken);
            if (b->err == 0 && n - taken >= b->cap)
                b->err = CORE_EINVAL;
            else if (b->err == 0 && n > taken)
                keep(b, in + taken, n - taken);
            break;
        }
        size_t add = MIN(n, b->cap - b->len);
        keep(b, in, add);
        in += add;
        n -= add;
        b->err = frames(b->data, b->len, frame, st, out, &taken);
        memmove(b->data, b->data + taken, b->len - taken);
        b->len -= taken;
        if (b->err == 0 && b->len == b->cap)
            b->err = CORE_EINVAL;
    }
    return b->err;
}

void disp_gps__buf_free(disp_gps__buf *b)
{
    g_free(b->data);
    b->data = NULL;
    b->len = b->alloc = 0;
}
