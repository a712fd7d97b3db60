/*
 * fuzz_teltonika.c — libFuzzer harness for the Teltonika decoder.
 *
 * The input is what one connection received. It is decoded twice: at once,
 * and in pieces of 1..7 bytes whose sizes the input's own bytes choose. Both
 * must give the same result, fixes and reply (framing may not depend on how
 * TCP cut the stream), and every fix must hold a device and a position
 * within range. A difference aborts, which libFuzzer reports as a crash.
 * Devices whose IMEI ends in 9 are refused, so that path is fuzzed too.
 */
#include "../../dispatch/gps.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    int rc;
    GArray *fixes;
    GByteArray *reply;
} outcome;

static int accept_device(const char *imei, void *user)
{
    return imei[strlen(imei) - 1] != '9';
}

static outcome decode(const uint8_t *data, size_t size, int pieces)
{
    outcome o = {0, g_array_new(FALSE, FALSE, sizeof(disp_gps_fix)), g_byte_array_new()};
    disp_gps_teltonika *st = disp_gps_teltonika_new(accept_device, NULL);
    for (size_t off = 0, n; off < size && o.rc == 0; off += n) {
        n = MIN(pieces ? 1 + data[off] % 7u : size, size - off);
        o.rc = disp_gps_teltonika_feed(st, data + off, n, o.fixes, o.reply);
    }
    disp_gps_teltonika_free(st);
    return o;
}

static int same(const outcome *a, const outcome *b)
{
    return a->rc == b->rc && a->fixes->len == b->fixes->len && a->reply->len == b->reply->len &&
           (a->fixes->len == 0 ||
            memcmp(a->fixes->data, b->fixes->data, a->fixes->len * sizeof(disp_gps_fix)) == 0) &&
           (a->reply->len == 0 || memcmp(a->reply->data, b->reply->data, a->reply->len) == 0);
}

static int sound(const disp_gps_fix *f)
{
    return f->device[0] && memchr(f->device, '\0', sizeof(f->device)) && fabs(f->lat) <= 90 &&
           fabs(f->lon) <= 180;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    outcome whole = decode(data, size, 0), split = decode(data, size, 1);
    if (!same(&whole, &split))
        abort();
    for (guint i = 0; i < whole.fixes->len; i++)
        if (!sound(&g_array_index(whole.fixes, disp_gps_fix, i)))
            abort();
    for (int k = 0; k < 2; k++) {
        outcome *o = k ? &split : &whole;
        g_array_free(o->fixes, TRUE);
        g_byte_array_unref(o->reply);
    }
    return 0;
}
