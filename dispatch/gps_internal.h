/*
 * gps_internal.h — shared by the device protocol decoders of dispatch/
 * only: the per-connection frame buffer and the helpers of gps_common.c.
 */
#ifndef CITYCMD_DISPATCH_GPS_INTERNAL_H
#define CITYCMD_DISPATCH_GPS_INTERNAL_H

#include "gps.h"

typedef struct {
    uint8_t *data; /* an unfinished frame; grows up to cap */
    size_t len, alloc, cap;
    int err; /* the first error; every later feed returns it */
} disp_gps__buf;

typedef struct {
    GArray *fixes;
    GByteArray *reply;
} disp_gps__out;

/* Decodes the frame at the start of p[0..n): sets *used to its length (0:
 * more bytes are needed), or returns CORE_E*. */
typedef int (*disp_gps__frame_fn)(void *st, const uint8_t *p, size_t n, disp_gps__out *out,
                                  size_t *used);

int disp_gps__feed(disp_gps__buf *b, const uint8_t *in, size_t n, disp_gps__frame_fn frame,
                   void *st, disp_gps__out *out);
void disp_gps__buf_free(disp_gps__buf *b);
/* 0 when lat/lon are numbers within range, else CORE_EINVAL. */
int disp_gps__check_position(double lat, double lon);
uint16_t disp_gps__be16(const uint8_t *p);
uint32_t disp_gps__be32(const uint8_t *p);

#endif
