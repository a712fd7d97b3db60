/*
 * recommend.c — ranking units for an incident's response plan (recommend.h).
 *
 * One search of the road graph gives every candidate's travel time (many
 * to one, from the units to the incident); then a path search for each
 * recommended unit gives its route.
 */
#include "recommend.h"

#include "../core/core.h"

#include <glib.h>
#include <math.h>
#include <string.h>

#define TIE_MS 5000 /* travel times in the same 5 s step are tied */

typedef struct {
    const disp_unit_info *u;
    disp_roads_pos pos;
    int64_t ms;
    double m;
    int diversion, own, used;
} cand;

typedef struct {
    disp_incidents *incidents;
    disp_avl *avl;
    disp_roads *roads;
    const json_t *incident;
    int64_t incident_id;
    int priority;
    GArray *cands;      /* cand */
    GPtrArray *on_this; /* units already on this incident */
    json_t *unplaced;   /* units with no position on the graph */
} pass;

static int has_agency(const json_t *incident, const char *agency)
{
    if (g_strcmp0(json_string_value(json_object_get(incident, "agency")), agency) == 0)
        return 1;
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(incident, "joint"), i,
                       a) if (g_strcmp0(json_string_value(a), agency) == 0) return 1;
    return 0;
}

/* Is the unit on an incident of lower priority than this one, and only on
 * its way there (dispatched or en route)? */
static int divertible(pass *p, const disp_unit_info *u)
{
    if (!u->incident_id || u->incident_id == p->incident_id ||
        (strcmp(u->status, "dispatched") != 0 && strcmp(u->status, "en_route") != 0))
        return 0;
    const disp_live *other = p->incidents ? disp_live_get(p->incidents, u->incident_id) : NULL;
    int prio = other ? (int)json_integer_value(json_object_get(other->incident, "priority")) : 0;
    return prio > p->priority;
}

/* The unit's home station is the station of one of the incident's
 * districts (derived districts are named "<kind>: <station>"). */
static int own_district(const json_t *incident, const disp_unit_info *u)
{
    if (!u->station || !*u->station)
        return 0;
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(incident, "districts"), i, d)
    {
        const char *name = json_string_value(json_object_get(d, "name")),
                   *station = json_string_value(json_object_get(d, "station"));
        if (station && strcmp(station, u->station) == 0)
            return 1;
        const char *colon = name ? strstr(name, ": ") : NULL;
        if (colon && strcmp(colon + 2, u->station) == 0)
            return 1;
    }
    return 0;
}

static void consider(const disp_unit_info *u, void *user)
{
    pass *p = user;
    if (!has_agency(p->incident, u->agency))
        return;
    if (u->incident_id == p->incident_id && p->incident_id) {
        g_ptr_array_add(p->on_this, (gpointer)u);
        return;
    }
    int diversion = 0;
    if (strcmp(u->primary, "available") != 0 && strcmp(u->status, "returning") != 0) {
        diversion = divertible(p, u);
        if (!diversion)
            return;
    }
    const disp_avl_pos *where = p->avl ? disp_avl_get(p->avl, u->id) : NULL;
    cand c = {u, {0}, DISP_ROADS_UNREACHABLE, -1, diversion, own_district(p->incident, u), 0};
    if (!where ||
        disp_roads_snap(p->roads, where->lon, where->lat, DISP_RECOMMEND_SNAP_M, &c.pos) != 0) {
        char id[32];
        g_snprintf(id, sizeof id, "U-%" G_GINT64_FORMAT, u->id);
        json_array_append_new(p->unplaced, json_string(id));
        return;
    }
    g_array_append_val(p->cands, c);
}

/* Has the unit every capability the slot asks for? */
static int capable(const disp_unit_info *u, const json_t *slot)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(slot, "capabilities"), i,
                       c) if (!u->capabilities ||
                              !g_strv_contains((const char *const *)u->capabilities,
                                               json_string_value(c))) return 0;
    return 1;
}

static int rank(gconstpointer x, gconstpointer y)
{
    const cand *a = x, *b = y;
    int64_t sa = a->ms / TIE_MS, sb = b->ms / TIE_MS;
    if (sa != sb)
        return sa < sb ? -1 : 1;
    if (a->own != b->own)
        return a->own ? -1 : 1;
    if (a->ms != b->ms)
        return a->ms < b->ms ? -1 : 1;
    return strcmp(a->u->call_sign, b->u->call_sign);
}

static json_t *unit_id(int64_t id)
{
    return json_sprintf("U-%" JSON_INTEGER_FORMAT, (json_int_t)id);
}

static json_t *route_json(disp_roads *roads, const cand *c, const disp_roads_pos *target)
{
    GArray *pts = disp_roads_path(roads, &c->pos, target, NULL, NULL);
    if (!pts)
        return json_null();
    json_t *line = disp_roads_geojson_line(pts);
    g_array_unref(pts);
    return line;
}

static json_t *cand_json(const cand *c, int recommended)
{
    return json_pack("{so ss ss ss ss ss sI sf sb sb sb sb}", "id", unit_id(c->u->id), "call_sign",
                     c->u->call_sign, "kind", c->u->kind, "agency", c->u->agency, "status",
                     c->u->status, "station", c->u->station ? c->u->station : "", "eta_ms",
                     (json_int_t)c->ms, "distance_m", round(c->m), "recommended", recommended,
                     "diversion", c->diversion, "own_district", c->own, "reachable",
                     c->ms != DISP_ROADS_UNREACHABLE);
}

json_t *disp_recommend(disp_roads *roads, disp_units *units, disp_avl *avl,
                       disp_incidents *incidents, const json_t *incident, const json_t *plan,
                       const char **code, const char **message)
{
    json_t *loc = json_object_get(incident, "location");
    double lon = json_real_value(json_object_get(loc, "lon")),
           lat = json_real_value(json_object_get(loc, "lat"));
    disp_roads_pos target;
    if (!roads || disp_roads_snap(roads, lon, lat, DISP_RECOMMEND_SNAP_M, &target) != 0) {
        *code = "not_routable";
        *message = "the incident is not within 500 m of a drivable road of the city";
        return NULL;
    }
    const char *id = json_string_value(json_object_get(incident, "id"));
    pass p = {incidents,
              avl,
              roads,
              incident,
              id ? g_ascii_strtoll(id + (id[0] == 'I' && id[1] == '-' ? 2 : 0), NULL, 10) : 0,
              (int)json_integer_value(json_object_get(incident, "priority")),
              g_array_new(FALSE, FALSE, sizeof(cand)),
              g_ptr_array_new(),
              json_array()};
    disp_units_foreach(units, consider, &p);
    /* One search for every candidate's time. */
    size_t n = p.cands->len;
    disp_roads_pos *src = g_new(disp_roads_pos, n + 1);
    int64_t *ms = g_new(int64_t, n + 1);
    double *m = g_new(double, n + 1);
    for (size_t i = 0; i < n; i++)
        src[i] = g_array_index(p.cands, cand, i).pos;
    disp_roads_times_to(roads, &target, src, n, ms, m);
    for (size_t i = 0; i < n; i++) {
        cand *c = &g_array_index(p.cands, cand, i);
        c->ms = ms[i];
        c->m = m[i];
    }
    g_free(src);
    g_free(ms);
    g_free(m);
    g_array_sort(p.cands, rank);

    json_t *slots = json_array();
    size_t si;
    json_t *slot;
    json_array_foreach(json_object_get(plan, "slots"), si, slot)
    {
        const char *kind = json_string_value(json_object_get(slot, "kind"));
        int count = (int)json_integer_value(json_object_get(slot, "count"));
        json_t *assigned = json_array(), *list = json_array();
        /* Units already on the incident fill their kind's slots first. */
        for (guint i = 0; i < p.on_this->len; i++) {
            disp_unit_info *u = p.on_this->pdata[i];
            if (u && strcmp(u->kind, kind) == 0 && capable(u, slot) &&
                (int)json_array_size(assigned) < count) {
                json_array_append_new(assigned, unit_id(u->id));
                p.on_this->pdata[i] = NULL;
            }
        }
        int need = count - (int)json_array_size(assigned), listed = 0;
        for (guint i = 0; i < p.cands->len && listed < need + DISP_RECOMMEND_ALTERNATIVES; i++) {
            cand *c = &g_array_index(p.cands, cand, i);
            if (c->used || strcmp(c->u->kind, kind) != 0 || c->ms == DISP_ROADS_UNREACHABLE ||
                !capable(c->u, slot))
                continue;
            int rec = listed < need;
            json_t *j = cand_json(c, rec);
            if (rec) {
                c->used = 1;
                json_object_set_new(j, "route", route_json(roads, c, &target));
            }
            json_array_append_new(list, j);
            listed++;
        }
        json_t *js = json_pack("{sssisososi}", "kind", kind, "count", count, "assigned", assigned,
                               "units", list, "missing", need - MIN(need, listed));
        if (json_object_get(slot, "capabilities"))
            json_object_set(js, "capabilities", json_object_get(slot, "capabilities"));
        json_array_append_new(slots, js);
    }
    json_t *unreachable = json_array();
    for (guint i = 0; i < p.cands->len; i++) {
        const cand *c = &g_array_index(p.cands, cand, i);
        if (c->ms == DISP_ROADS_UNREACHABLE)
            json_array_append_new(unreachable, unit_id(c->u->id));
    }
    json_t *out = json_pack("{sOsosos{sfsfsf}sOso}", "plan", plan ? (json_t *)plan : json_null(),
                            "slots", slots, "unreachable", unreachable, "target", "lon",
                            round(target.lon * 1e7) / 1e7, "lat", round(target.lat * 1e7) / 1e7,
                            "snapped_m", round(target.distance_m * 10) / 10, "incident",
                            json_object_get(incident, "id"), "unplaced", p.unplaced);
    g_array_free(p.cands, TRUE);
    g_ptr_array_free(p.on_this, TRUE);
    return out;
}
