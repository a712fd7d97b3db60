/*
 * fuzz_osmand.c — libFuzzer harness for the OsmAnd parsers.
 *
 * Every input goes to both: as a query string (up to its first NUL) and as
 * a JSON body. A parser must either fail with an error text, or succeed
 * without one and return a fix with a device and a position within range.
 * Anything else aborts, which libFuzzer reports as a crash.
 */
#include "../../dispatch/gps.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int rc, const disp_gps_fix *f, char *err)
{
    if (rc == 0 && (err || !f->device[0] || !memchr(f->device, '\0', sizeof(f->device)) ||
                    !(fabs(f->lat) <= 90 && fabs(f->lon) <= 180)))
        abort();
    if (rc != 0 && (rc > 0 || !err))
        abort();
    g_free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    disp_gps_fix f;
    char *err = NULL;
    char *query = g_strndup((const char *)data, size);
    check(disp_gps_osmand_parse_query(query, &f, &err), &f, err);
    g_free(query);
    err = NULL;
    check(disp_gps_osmand_parse_json((const char *)data, size, &f, &err), &f, err);
    return 0;
}
