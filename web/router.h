/*
 * router.h — matches "METHOD /path" to a handler, with {name} path segments.
 *
 * Pure data structure, no I/O: tested on its own. A path that matches a
 * route's pattern under another method yields WEB_ROUTE_BAD_METHOD and the
 * Allow list, so the server can answer 405 rather than 404.
 * Not thread-safe; build at start-up, match on the loop thread.
 */
#ifndef CITYCMD_WEB_ROUTER_H
#define CITYCMD_WEB_ROUTER_H

#include <stddef.h>

#define WEB_MAX_PARAMS 4
#define WEB_PARAM_MAX 128

typedef enum {
    WEB_GET,
    WEB_POST,
    WEB_PUT,
    WEB_PATCH,
    WEB_DELETE,
    WEB_HEAD,
    WEB_OPTIONS,
    WEB_METHOD_COUNT,
    WEB_METHOD_OTHER = WEB_METHOD_COUNT
} web_method;

const char *web_method_name(web_method m);

typedef struct {
    int count;
    char name[WEB_MAX_PARAMS][32];
    char value[WEB_MAX_PARAMS][WEB_PARAM_MAX];
} web_params;

/* Returns the value of a path parameter, or NULL. */
const char *web_param(const web_params *p, const char *name);

typedef struct web_router web_router;

web_router *web_router_new(void);
void web_router_free(web_router *r);
/* pattern: "/api/v1/journal/{id}". handler is opaque to the router. 0 or CORE_EINVAL. */
int web_router_add(web_router *r, web_method m, const char *pattern, void *handler);

typedef enum { WEB_ROUTE_FOUND, WEB_ROUTE_NOT_FOUND, WEB_ROUTE_BAD_METHOD } web_route_result;

/* On FOUND sets *handler, *params and *pattern (the route's pattern, for metrics).
 * On BAD_METHOD writes "GET, POST" into allow. Parameters longer than
 * WEB_PARAM_MAX-1 bytes do not match. */
web_route_result web_router_match(const web_router *r, web_method m, const char *path,
                                  void **handler, web_params *params, const char **pattern,
                                  char *allow, size_t allow_len);

#endif
