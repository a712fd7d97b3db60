/*
 * gps.h — decoders for the protocols vehicle trackers speak: Concox GT06
 * (binary, TCP), Teltonika Codec 8 / 8 Extended (binary, TCP) and OsmAnd
 * (HTTP query string, and the JSON body of the current Traccar Client).
 *
 * The decoders are pure: they take the bytes a peer sent and return the
 * positions in them and the bytes to send back. They own no socket, read no
 * clock except where a position carries no time (OsmAnd), and never trust a
 * length field beyond the bytes present. A per-connection decoder buffers at
 * most one frame (GPS_GT06_MAX_FRAME, GPS_TELTONIKA_MAX_PACKET bytes), so a
 * hostile peer cannot grow memory; what cannot be decoded is an error and
 * the caller closes the connection.
 *
 * Every position is checked the same way: latitude within -90..90 and
 * longitude within -180..180, neither NaN. A record that fails is dropped
 * (and still acknowledged, since sending it again would not mend it); it
 * never becomes a fix. Errors are 0 or CORE_E* (core/core.h).
 *
 * A decoder state belongs to one connection and one thread at a time; the
 * functions keep no global state, so different connections may be decoded
 * on different threads.
 */
#ifndef CITYCMD_DISPATCH_GPS_H
#define CITYCMD_DISPATCH_GPS_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

/* One position report. Unknown values are NAN, or -1 for satellites. */
typedef struct {
    char device[32];   /* OsmAnd id; GT06 and Teltonika IMEI digits */
    int64_t fix_ms;    /* UTC ms since the epoch of the fix */
    double lon, lat;   /* WGS84 degrees */
    double speed_kmh;  /* km/h */
    double course_deg; /* 0..360, clockwise from north */
    double altitude_m; /* metres above sea level */
    double accuracy_m; /* horizontal accuracy, metres */
    double battery_pct;
    int satellites;
    int valid; /* the device says the fix is valid (GPS positioned) */
} disp_gps_fix;

/* Sets every field to "unknown": empty device, zero time, NAN values,
 * satellites -1, valid 0. */
void disp_gps_fix_init(disp_gps_fix *f);

/* ---- GT06 (Concox), TCP port 5023 ---- */

#define GPS_GT06_MAX_FRAME 1024

typedef struct disp_gps_gt06 disp_gps_gt06;

disp_gps_gt06 *disp_gps_gt06_new(void);
void disp_gps_gt06_free(disp_gps_gt06 *st); /* accepts NULL */

/* Decodes n bytes received on the connection. Positions are appended to
 * fixes (a GArray of disp_gps_fix) and the bytes to send back (acknowledgements)
 * to reply; both stay owned by the caller. A frame may arrive in any number
 * of pieces. Frames with a bad CRC are dropped without an answer, as the
 * protocol says. Returns 0, or CORE_EINVAL when the connection must be
 * closed: a frame over GPS_GT06_MAX_FRAME, bytes that are not frames and
 * cannot be resynchronised, a malformed login, or a position before the
 * login. On an error, fixes and reply still hold what the frames before the
 * bad one produced: send the reply, then close; later calls return the same
 * error. */
int disp_gps_gt06_feed(disp_gps_gt06 *st, const uint8_t *in, size_t n, GArray *fixes,
                       GByteArray *reply);

/* The IMEI of the login on this connection, or NULL before the login. */
const char *disp_gps_gt06_imei(const disp_gps_gt06 *st);

/* ---- Teltonika Codec 8 and 8 Extended, TCP port 5027 ---- */

#define GPS_TELTONIKA_MAX_PACKET 8192

/* Decides whether a device may send data (the handshake's answer 0x01 or
 * 0x00). Called on the thread that feeds, during disp_gps_teltonika_feed. */
typedef int (*disp_gps_teltonika_accept_fn)(const char *imei, void *user);

typedef struct disp_gps_teltonika disp_gps_teltonika;

/* accept may be NULL: every device is accepted. */
disp_gps_teltonika *disp_gps_teltonika_new(disp_gps_teltonika_accept_fn accept, void *user);
void disp_gps_teltonika_free(disp_gps_teltonika *st); /* accepts NULL */

/* As disp_gps_gt06_feed. The handshake (IMEI) gets 0x01, or 0x00 and
 * CORE_ENOTFOUND when accept refuses the device (send the reply, then
 * close). An AVL packet gets the 4-byte count of its records, or 0 when its
 * CRC is wrong, which makes the device send it again. Returns CORE_EINVAL
 * for anything that is not the protocol: a bad handshake, a packet over
 * GPS_TELTONIKA_MAX_PACKET, an unknown codec, records that do not fit. */
int disp_gps_teltonika_feed(disp_gps_teltonika *st, const uint8_t *in, size_t n, GArray *fixes,
                            GByteArray *reply);

/* The IMEI of the handshake, or NULL before it. */
const char *disp_gps_teltonika_imei(const disp_gps_teltonika *st);

/* ---- OsmAnd, HTTP port 5055 ---- */

/* Parses the parameters of a request, from its query string or from a
 * form-encoded body (with or without the leading '?'). Returns 0 with *out
 * filled, or CORE_EINVAL with *err (g_free) naming the parameter; after an
 * error *out is not a fix. */
int disp_gps_osmand_parse_query(const char *query, disp_gps_fix *out, char **err);

/* Parses the JSON body (application/json) of the current Traccar Client.
 * Returns 0, CORE_EPARSE (not JSON), CORE_ETOOBIG (over 64 KiB) or
 * CORE_EINVAL, with *err (g_free) naming the field. */
int disp_gps_osmand_parse_json(const char *body, size_t n, disp_gps_fix *out, char **err);

/* ---- checksums, exposed for tests and tools that build frames ---- */

/* CRC-16/X-25 (the GT06 manual's CRC-ITU): poly 0x1021 reflected, init and
 * final xor 0xFFFF. */
uint16_t disp_gps_crc16_x25(const uint8_t *p, size_t n);
/* CRC-16/ARC (Teltonika's CRC-16/IBM): poly 0x8005 reflected, init 0. */
uint16_t disp_gps_crc16_arc(const uint8_t *p, size_t n);

#endif
