/*
 * core.c — error texts and clocks. Thread-safe; callable from any thread.
 */
#include "core.h"

#include <glib.h>
#include <time.h>

const char *core_strerror(int err)
{
    switch (err) {
    case CORE_OK:
        return "success";
#define CORE__ERR_STR(name, val, api, msg)                                                         \
    case (val):                                                                                    \
        return msg;
        CORE_ERRORS(CORE__ERR_STR)
#undef CORE__ERR_STR
    }
    return "unknown error";
}

const char *core_errcode(int err)
{
    switch (err) {
    case CORE_OK:
        return "ok";
#define CORE__ERR_API(name, val, api, msg)                                                         \
    case (val):                                                                                    \
        return api;
        CORE_ERRORS(CORE__ERR_API)
#undef CORE__ERR_API
    }
    return "internal";
}

int64_t core_now_ms(void)
{
    return g_get_real_time() / 1000;
}

int64_t core_mono_us(void)
{
    return g_get_monotonic_time();
}

void core_iso8601(int64_t ms, char *buf, size_t len)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    g_snprintf(buf, len, "%s.%03dZ", base, (int)(ms % 1000));
}
