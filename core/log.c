/*
 * log.c — logfmt lines to stderr. Any thread. The level is a relaxed atomic:
 * a change becomes visible to other threads shortly, which is all logging needs.
 */
#include "log.h"
#include "core.h"

#include <libwebsockets.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

static gint log_level = CORE_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void core_log_set_level(core_log_level level)
{
    g_atomic_int_set(&log_level, (gint)level);
}

core_log_level core_log_get_level(void)
{
    return (core_log_level)g_atomic_int_get(&log_level);
}

int core_log_level_parse(const char *text, core_log_level *out)
{
    for (size_t i = 0; i < G_N_ELEMENTS(level_names); i++) {
        if (text && strcmp(text, level_names[i]) == 0) {
            *out = (core_log_level)i;
            return 0;
        }
    }
    return CORE_EINVAL;
}

/* Copies src into dst escaping control characters; returns bytes written. */
static size_t escape_into(char *dst, size_t cap, const char *src)
{
    size_t o = 0;
    for (const unsigned char *s = (const unsigned char *)src; *s && o + 5 < cap; s++) {
        if (*s == '\n') {
            dst[o++] = '\\';
            dst[o++] = 'n';
        } else if (*s < 0x20 || *s == 0x7f) {
            o += (size_t)g_snprintf(dst + o, cap - o, "\\x%02x", *s);
        } else {
            dst[o++] = (char)*s;
        }
    }
    dst[o] = '\0';
    return o;
}

void core_log(core_log_level level, const char *event, const char *fmt, ...)
{
    if ((gint)level < g_atomic_int_get(&log_level))
        return;
    char msg[1536], line[2048], ts[32];
    va_list ap;
    va_start(ap, fmt);
    g_vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    core_iso8601(core_now_ms(), ts, sizeof ts);
    int n =
        g_snprintf(line, sizeof line, "ts=%s level=%s event=%s ", ts, level_names[level], event);
    if (n < 0 || (size_t)n >= sizeof line)
        n = (int)sizeof line - 2;
    size_t len = (size_t)n + escape_into(line + n, sizeof line - (size_t)n - 1, msg);
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

static void glib_log_handler(const gchar *domain, GLogLevelFlags flags, const gchar *message,
                             gpointer user)
{
    core_log_level lvl = CORE_LOG_DEBUG;
    if (flags & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
        lvl = CORE_LOG_ERROR;
    else if (flags & G_LOG_LEVEL_WARNING)
        lvl = CORE_LOG_WARN;
    else if (flags & G_LOG_LEVEL_MESSAGE)
        lvl = CORE_LOG_INFO;
    core_log(lvl, "glib", "domain=%s msg=\"%s\"", domain ? domain : "-", message);
}

static void lws_log_emit(int level, const char *line)
{
    core_log_level lvl = level == LLL_ERR      ? CORE_LOG_ERROR
                         : level == LLL_WARN   ? CORE_LOG_WARN
                         : level == LLL_NOTICE ? CORE_LOG_INFO
                                               : CORE_LOG_DEBUG;
    char clean[512];
    g_strlcpy(clean, line, sizeof clean);
    g_strstrip(clean);
    core_log(lvl, "lws", "msg=\"%s\"", clean);
}

void core_log_capture_libraries(void)
{
    g_log_set_default_handler(glib_log_handler, NULL);
    int lws_levels = LLL_ERR | LLL_WARN;
    if (core_log_get_level() == CORE_LOG_DEBUG)
        lws_levels |= LLL_NOTICE;
    lws_set_log_level(lws_levels, lws_log_emit);
}
