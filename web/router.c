/*
 * router.c — linear route table. A command centre has tens of routes, so a
 * scan over pre-split patterns is simpler than a trie and fast enough
 * (sub-microsecond per route).
 */
#include "router.h"
#include "../core/core.h"

#include <glib.h>
#include <string.h>

typedef struct {
    web_method method;
    char *pattern;
    char **segs; /* split pattern, without the leading empty segment */
    void *handler;
} route;

struct web_router {
    GArray *routes;
};

static const char *const method_names[] = {"GET",    "POST", "PUT",    "PATCH",
                                           "DELETE", "HEAD", "OPTIONS"};

const char *web_method_name(web_method m)
{
    return m < WEB_METHOD_COUNT ? method_names[m] : "OTHER";
}

const char *web_param(const web_params *p, const char *name)
{
    for (int i = 0; i < p->count; i++)
        if (strcmp(p->name[i], name) == 0)
            return p->value[i];
    return NULL;
}

web_router *web_router_new(void)
{
    web_router *r = g_new0(web_router, 1);
    r->routes = g_array_new(FALSE, TRUE, sizeof(route));
    return r;
}

void web_router_free(web_router *r)
{
    if (!r)
        return;
    for (guint i = 0; i < r->routes->len; i++) {
        route *rt = &g_array_index(r->routes, route, i);
        g_free(rt->pattern);
        g_strfreev(rt->segs);
    }
    g_array_free(r->routes, TRUE);
    g_free(r);
}

int web_router_add(web_router *r, web_method m, const char *pattern, void *handler)
{
    if (!pattern || pattern[0] != '/' || m >= WEB_METHOD_COUNT)
        return CORE_EINVAL;
    char **segs = g_strsplit(pattern + 1, "/", -1);
    int params = 0;
    for (char **s = segs; *s; s++) {
        size_t n = strlen(*s);
        if (n >= 2 && (*s)[0] == '{' && (*s)[n - 1] == '}') {
            if (++params > WEB_MAX_PARAMS || n - 2 >= 32) {
                g_strfreev(segs);
                return CORE_EINVAL;
            }
        }
    }
    route rt = {m, g_strdup(pattern), segs, handler};
    g_array_append_val(r->routes, rt);
    return 0;
}

/* Matches path segments against a route; fills params on success. */
static int match_route(const route *rt, char **parts, web_params *params)
{
    web_params p = {0};
    int i = 0;
    for (; rt->segs[i] && parts[i]; i++) {
        const char *seg = rt->segs[i];
        size_t n = strlen(seg);
        if (n >= 2 && seg[0] == '{' && seg[n - 1] == '}') {
            size_t vlen = strlen(parts[i]);
            if (vlen == 0 || vlen >= WEB_PARAM_MAX)
                return 0;
            memcpy(p.name[p.count], seg + 1, n - 2);
            p.name[p.count][n - 2] = '\0';
            memcpy(p.value[p.count], parts[i], vlen + 1);
            p.count++;
        } else if (strcmp(seg, parts[i]) != 0) {
            return 0;
        }
    }
    if (rt->segs[i] || parts[i])
        return 0;
    if (params)
        *params = p;
    return 1;
}

web_route_result web_router_match(const web_router *r, web_method m, const char *path,
                                  void **handler, web_params *params, const char **pattern,
                                  char *allow, size_t allow_len)
{
    if (!path || path[0] != '/')
        return WEB_ROUTE_NOT_FOUND;
    char **parts = g_strsplit(path + 1, "/", -1);
    web_route_result res = WEB_ROUTE_NOT_FOUND;
    unsigned allowed = 0;
    for (guint i = 0; i < r->routes->len; i++) {
        const route *rt = &g_array_index(r->routes, route, i);
        if (rt->method == m && match_route(rt, parts, params)) {
            *handler = rt->handler;
            if (pattern)
                *pattern = rt->pattern;
            res = WEB_ROUTE_FOUND;
            break;
        }
        if (match_route(rt, parts, NULL))
            allowed |= 1u << rt->method;
    }
    g_strfreev(parts);
    if (res == WEB_ROUTE_FOUND || !allowed)
        return res;
    if (allow && allow_len) {
        allow[0] = '\0';
        for (int mm = 0; mm < WEB_METHOD_COUNT; mm++) {
            if (allowed & (1u << mm)) {
                if (allow[0])
                    g_strlcat(allow, ", ", allow_len);
                g_strlcat(allow, method_names[mm], allow_len);
            }
        }
    }
    return WEB_ROUTE_BAD_METHOD;
}
