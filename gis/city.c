/*
 * city.c — a city package in memory, and the spatial questions asked of it.
 *
 * At load every road, district and point is read from city.gpkg (GDAL),
 * converted to the city's local metric projection and put in GEOS STR trees;
 * districts get prepared geometries. A point-in-district question is one
 * tree query and a prepared containment test per candidate; a nearest-road
 * question is a branch-and-bound nearest search over the road tree with the
 * exact GEOS distance. Searches by name run over a normalised (lower-case,
 * accent-free) copy of every street, place, station and address.
 *
 * Thread use: any thread, one at a time; a mutex serialises queries (GEOS
 * contexts and prepared geometries are not to be shared concurrently).
 * Layer exports (gis_layer_geojson) read the package file and belong on a
 * worker.
 */
#include "internal.h"

#include "../core/log.h"

#include <math.h>
#include <string.h>

typedef struct {
    GEOSGeometry *g;
    const GEOSPreparedGeometry *prep;
    char *kind, *name;
    int level;
    int64_t id;
} district;

typedef struct {
    GEOSGeometry *g;
    double *xy; /* a line's vertices (local metres), for distances without GEOS; or NULL */
    unsigned n;
    char *name, *klass;
    int64_t id;
} road;

typedef struct {
    GEOSGeometry *g; /* local point */
    double lon, lat;
    char *name, *kind;
    int64_t id;
} point_feature;

typedef struct {
    char *name;
    GPtrArray *features; /* point_feature* */
    GEOSSTRtree *tree;
} point_layer;

typedef struct {
    char *name, *norm, *kind;
    double lon, lat;
    int rank; /* lower first: places, streets, stations, addresses */
} search_entry;

struct gis_city {
    GMutex lock;
    char *dir, *gpkg;
    json_t *meta;
    gis__local *local;
    GEOSContextHandle_t h;
    GPtrArray *districts; /* district* */
    GEOSSTRtree *district_tree;
    GPtrArray *roads; /* road* */
    GEOSSTRtree *road_tree;
    GHashTable *point_layers; /* name -> point_layer* */
    GPtrArray *search;        /* search_entry* */
    char **layer_names;
    gis__tiles *tiles;
};

/* ---- text normalisation for search ---- */

/* Lower case without accents ("Évêché" -> "eveche"); other scripts as they are. */
static char *normalise(const char *s)
{
    if (!s || !g_utf8_validate(s, -1, NULL))
        return g_strdup("");
    char *d = g_utf8_normalize(s, -1, G_NORMALIZE_NFD);
    GString *out = g_string_new("");
    for (const char *p = d; *p; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);
        if (g_unichar_type(c) == G_UNICODE_NON_SPACING_MARK)
            continue;
        if (c == '-' || c == '\'' || c == 0x2019)
            c = ' ';
        g_string_append_unichar(out, g_unichar_tolower(c));
    }
    g_free(d);
    return g_string_free(out, FALSE);
}

/* ---- loading ---- */

static const char *field_str(OGRFeatureH f, const char *name)
{
    int i = OGR_F_GetFieldIndex(f, name);
    return i >= 0 && OGR_F_IsFieldSetAndNotNull(f, i) ? OGR_F_GetFieldAsString(f, i) : "";
}

static int64_t field_int(OGRFeatureH f, const char *name)
{
    int i = OGR_F_GetFieldIndex(f, name);
    return i >= 0 && OGR_F_IsFieldSetAndNotNull(f, i) ? OGR_F_GetFieldAsInteger64(f, i) : 0;
}

static void add_search(gis_city *c, const char *name, const char *kind, double lon, double lat,
                       int rank)
{
    if (!name || !*name)
        return;
    search_entry *e = g_new0(search_entry, 1);
    e->name = g_strdup(name);
    e->norm = normalise(name);
    e->kind = g_strdup(kind);
    e->lon = lon;
    e->lat = lat;
    e->rank = rank;
    g_ptr_array_add(c->search, e);
}

static void load_districts(gis_city *c, OGRLayerH l)
{
    OGRFeatureH f;
    OGR_L_ResetReading(l);
    while ((f = OGR_L_GetNextFeature(l))) {
        OGRGeometryH g = OGR_F_GetGeometryRef(f);
        GEOSGeometry *lg = g ? gis__to_local(c->h, c->local, g) : NULL;
        if (lg && GEOSisValid_r(c->h, lg) != 1) {
            GEOSGeometry *fixed = GEOSMakeValid_r(c->h, lg);
            GEOSGeom_destroy_r(c->h, lg);
            lg = fixed;
        }
        if (lg) {
            district *d = g_new0(district, 1);
            d->g = lg;
            d->prep = GEOSPrepare_r(c->h, lg);
            d->kind = g_strdup(field_str(f, "kind"));
            d->name = g_strdup(field_str(f, "name"));
            d->level = (int)field_int(f, "level");
            d->id = OGR_F_GetFID(f);
            g_ptr_array_add(c->districts, d);
            GEOSSTRtree_insert_r(c->h, c->district_tree, lg, d);
        }
        OGR_F_Destroy(f);
    }
}

static void road_vertices(gis_city *c, road *r)
{
    const GEOSCoordSequence *s =
        GEOSGeomTypeId_r(c->h, r->g) == GEOS_LINESTRING ? GEOSGeom_getCoordSeq_r(c->h, r->g) : NULL;
    unsigned n = 0;
    if (!s || !GEOSCoordSeq_getSize_r(c->h, s, &n) || n < 2)
        return;
    r->xy = g_new(double, 2 * (gsize)n);
    r->n = n;
    for (unsigned i = 0; i < n; i++)
        GEOSCoordSeq_getXY_r(c->h, s, i, &r->xy[2 * i], &r->xy[2 * i + 1]);
}

/* Distance from (x, y) to a polyline, and the nearest point on it. */
static double polyline_distance(const double *xy, unsigned n, double x, double y, double *nx,
                                double *ny)
{
    double best = INFINITY;
    for (unsigned i = 0; i + 1 < n; i++) {
        double ax = xy[2 * i], ay = xy[2 * i + 1], bx = xy[2 * i + 2], by = xy[2 * i + 3];
        double dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy;
        double t = len2 > 0 ? ((x - ax) * dx + (y - ay) * dy) / len2 : 0;
        t = t < 0 ? 0 : t > 1 ? 1 : t;
        double px = ax + t * dx, py = ay + t * dy;
        double d = hypot(x - px, y - py);
        if (d < best) {
            best = d;
            *nx = px;
            *ny = py;
        }
    }
    return best;
}

static void load_roads(gis_city *c, OGRLayerH l)
{
    GHashTable *named = g_hash_table_new(g_str_hash, g_str_equal);
    OGRFeatureH f;
    OGR_L_ResetReading(l);
    while ((f = OGR_L_GetNextFeature(l))) {
        OGRGeometryH g = OGR_F_GetGeometryRef(f);
        GEOSGeometry *lg = g ? gis__to_local(c->h, c->local, g) : NULL;
        if (lg) {
            road *r = g_new0(road, 1);
            r->g = lg;
            road_vertices(c, r);
            r->name = g_strdup(field_str(f, "name"));
            r->klass = g_strdup(field_str(f, "class"));
            r->id = OGR_F_GetFID(f);
            g_ptr_array_add(c->roads, r);
            GEOSSTRtree_insert_r(c->h, c->road_tree, lg, r);
            /* One search entry per street name, at the middle of its first way. */
            if (*r->name && !g_hash_table_contains(named, r->name)) {
                g_hash_table_add(named, r->name);
                OGRGeometryH mid = OGR_G_Value(g, OGR_G_Length(g) / 2);
                if (mid) {
                    add_search(c, r->name, "street", OGR_G_GetX(mid, 0), OGR_G_GetY(mid, 0), 1);
                    OGR_G_DestroyGeometry(mid);
                }
            }
        }
        OGR_F_Destroy(f);
    }
    g_hash_table_destroy(named);
}

static void point_layer_free(gpointer p)
{
    point_layer *pl = p;
    g_free(pl->name);
    g_ptr_array_free(pl->features, TRUE);
    g_free(pl);
}

/* Any layer of points (stations, places, addresses, extra ones). */
static void load_points(gis_city *c, OGRLayerH l)
{
    const char *lname = OGR_L_GetName(l);
    point_layer *pl = g_new0(point_layer, 1);
    pl->name = g_strdup(lname);
    pl->features = g_ptr_array_new();
    pl->tree = GEOSSTRtree_create_r(c->h, 10);
    int addresses = strcmp(lname, "addresses") == 0;
    int rank = strcmp(lname, "places") == 0 ? 0 : addresses ? 3 : 2;
    OGRFeatureH f;
    OGR_L_ResetReading(l);
    while ((f = OGR_L_GetNextFeature(l))) {
        OGRGeometryH g = OGR_F_GetGeometryRef(f);
        if (g && wkbFlatten(OGR_G_GetGeometryType(g)) == wkbPoint) {
            point_feature *p = g_new0(point_feature, 1);
            p->lon = OGR_G_GetX(g, 0);
            p->lat = OGR_G_GetY(g, 0);
            double x, y;
            gis__local_fwd(c->local, p->lon, p->lat, &x, &y);
            p->g = GEOSGeom_createPointFromXY_r(c->h, x, y);
            p->id = OGR_F_GetFID(f);
            p->kind = g_strdup(field_str(f, "kind"));
            p->name = addresses ? g_strdup_printf("%s %s", field_str(f, "housenumber"),
                                                  field_str(f, "street"))
                                : g_strdup(field_str(f, "name"));
            g_ptr_array_add(pl->features, p);
            GEOSSTRtree_insert_r(c->h, pl->tree, p->g, p);
            add_search(c, p->name,
                       addresses  ? "address"
                       : *p->kind ? p->kind
                                  : lname,
                       p->lon, p->lat, rank);
        }
        OGR_F_Destroy(f);
    }
    g_hash_table_insert(c->point_layers, pl->name, pl);
}

static int load_layers(gis_city *c, char **err)
{
    GDALAllRegister();
    GDALDatasetH ds = GDALOpenEx(c->gpkg, GDAL_OF_VECTOR | GDAL_OF_READONLY, NULL, NULL, NULL);
    if (!ds) {
        *err = g_strdup_printf("cannot open %s: %s", c->gpkg, CPLGetLastErrorMsg());
        return CORE_EIO;
    }
    int n = GDALDatasetGetLayerCount(ds);
    c->layer_names = g_new0(char *, (size_t)n + 1);
    for (int i = 0; i < n; i++) {
        OGRLayerH l = GDALDatasetGetLayer(ds, i);
        const char *name = OGR_L_GetName(l);
        c->layer_names[i] = g_strdup(name);
        OGRwkbGeometryType t = wkbFlatten(OGR_L_GetGeomType(l));
        if (strcmp(name, "districts") == 0)
            load_districts(c, l);
        else if (strcmp(name, "roads") == 0)
            load_roads(c, l);
        else if (t == wkbPoint)
            load_points(c, l);
    }
    GDALClose(ds);
    return 0;
}

static void geos_message(const char *fmt, ...) {}

gis_city *gis_city_load(const char *dir, char **err)
{
    *err = NULL;
    int64_t t0 = g_get_monotonic_time();
    gis_city *c = g_new0(gis_city, 1);
    g_mutex_init(&c->lock);
    c->dir = g_strdup(dir);
    c->gpkg = g_build_filename(dir, "city.gpkg", NULL);
    char *meta_path = g_build_filename(dir, "city.json", NULL);
    json_error_t jerr;
    c->meta = json_load_file(meta_path, 0, &jerr);
    g_free(meta_path);
    json_t *center = json_object_get(c->meta, "center");
    if (!c->meta || !json_is_array(center) || json_array_size(center) != 2) {
        *err = g_strdup_printf("%s: no valid city.json (%s)", dir,
                               c->meta ? "no \"center\"" : jerr.text);
        gis_city_free(c);
        return NULL;
    }
    c->local = gis__local_new(json_number_value(json_array_get(center, 0)),
                              json_number_value(json_array_get(center, 1)), err);
    if (!c->local) {
        gis_city_free(c);
        return NULL;
    }
    c->h = GEOS_init_r();
    GEOSContext_setNoticeHandler_r(c->h, geos_message);
    GEOSContext_setErrorHandler_r(c->h, geos_message);
    c->districts = g_ptr_array_new();
    c->roads = g_ptr_array_new();
    c->district_tree = GEOSSTRtree_create_r(c->h, 10);
    c->road_tree = GEOSSTRtree_create_r(c->h, 10);
    c->point_layers = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, point_layer_free);
    c->search = g_ptr_array_new();
    if (load_layers(c, err) != 0) {
        gis_city_free(c);
        return NULL;
    }
    c->tiles = gis__tiles_new(c->gpkg);
    log_info("gis.loaded", "city=\"%s\" roads=%u districts=%u point_layers=%u ms=%.1f",
             gis_city_name(c), c->roads->len, c->districts->len, g_hash_table_size(c->point_layers),
             (g_get_monotonic_time() - t0) / 1000.0);
    return c;
}

void gis_city_free(gis_city *c)
{
    if (!c)
        return;
    gis__tiles_free(c->tiles);
    if (c->h) {
        for (guint i = 0; i < c->districts->len; i++) {
            district *d = c->districts->pdata[i];
            GEOSPreparedGeom_destroy_r(c->h, d->prep);
            GEOSGeom_destroy_r(c->h, d->g);
            g_free(d->kind);
            g_free(d->name);
            g_free(d);
        }
        for (guint i = 0; i < c->roads->len; i++) {
            road *r = c->roads->pdata[i];
            GEOSGeom_destroy_r(c->h, r->g);
            g_free(r->xy);
            g_free(r->name);
            g_free(r->klass);
            g_free(r);
        }
        GHashTableIter it;
        gpointer k, v;
        g_hash_table_iter_init(&it, c->point_layers);
        while (g_hash_table_iter_next(&it, &k, &v)) {
            point_layer *pl = v;
            for (guint i = 0; i < pl->features->len; i++) {
                point_feature *p = pl->features->pdata[i];
                GEOSGeom_destroy_r(c->h, p->g);
                g_free(p->name);
                g_free(p->kind);
                g_free(p);
            }
            GEOSSTRtree_destroy_r(c->h, pl->tree);
        }
        g_hash_table_destroy(c->point_layers);
        GEOSSTRtree_destroy_r(c->h, c->district_tree);
        GEOSSTRtree_destroy_r(c->h, c->road_tree);
        g_ptr_array_free(c->districts, TRUE);
        g_ptr_array_free(c->roads, TRUE);
        for (guint i = 0; i < c->search->len; i++) {
            search_entry *e = c->search->pdata[i];
            g_free(e->name);
            g_free(e->norm);
            g_free(e->kind);
            g_free(e);
        }
        g_ptr_array_free(c->search, TRUE);
        GEOS_finish_r(c->h);
    }
    gis__local_free(c->local);
    json_decref(c->meta);
    g_strfreev(c->layer_names);
    g_free(c->dir);
    g_free(c->gpkg);
    g_mutex_clear(&c->lock);
    g_free(c);
}

const char *gis_city_name(const gis_city *c)
{
    const char *n = json_string_value(json_object_get(c->meta, "name"));
    return n ? n : "city";
}

const char *const *gis_city_layers(const gis_city *c)
{
    return (const char *const *)c->layer_names;
}

json_t *gis_city_info(const gis_city *c)
{
    json_t *info =
        json_pack("{sOsOsOsOsO}", "name", json_object_get(c->meta, "name"), "bbox",
                  json_object_get(c->meta, "bbox"), "center", json_object_get(c->meta, "center"),
                  "attribution", json_object_get(c->meta, "attribution"), "layers",
                  json_object_get(c->meta, "counts"));
    json_object_set_new(info, "local_crs", json_string(gis__local_definition(c->local)));
    return info;
}

/* ---- point in district ---- */

typedef struct {
    gis_city *c;
    const GEOSGeometry *pt;
    const char *kind;
    GPtrArray *hits;
} district_query;

static void district_candidate(void *item, void *user)
{
    district *d = item;
    district_query *q = user;
    if (q->kind && strcmp(q->kind, d->kind) != 0)
        return;
    if (GEOSPreparedIntersects_r(q->c->h, d->prep, q->pt) == 1)
        g_ptr_array_add(q->hits, d);
}

static const district *district_by_id(const gis_city *c, int64_t id)
{
    for (guint i = 0; i < c->districts->len; i++) {
        const district *d = c->districts->pdata[i];
        if (d->id == id)
            return d;
    }
    return NULL;
}

int gis_district_bbox(gis_city *c, int64_t id, double bbox[4])
{
    g_mutex_lock(&c->lock);
    const district *d = district_by_id(c, id);
    double x0, y0, x1, y1;
    int rc = d && GEOSGeom_getXMin_r(c->h, d->g, &x0) && GEOSGeom_getYMin_r(c->h, d->g, &y0) &&
                     GEOSGeom_getXMax_r(c->h, d->g, &x1) && GEOSGeom_getYMax_r(c->h, d->g, &y1)
                 ? 0
                 : CORE_ENOTFOUND;
    if (!rc) {
        /* The local projection is conformal and the extent small: the
         * corners' lon/lat bound the district. */
        double lon[4], lat[4];
        gis__local_inv(c->local, x0, y0, &lon[0], &lat[0]);
        gis__local_inv(c->local, x1, y0, &lon[1], &lat[1]);
        gis__local_inv(c->local, x0, y1, &lon[2], &lat[2]);
        gis__local_inv(c->local, x1, y1, &lon[3], &lat[3]);
        bbox[0] = MIN(MIN(lon[0], lon[1]), MIN(lon[2], lon[3]));
        bbox[2] = MAX(MAX(lon[0], lon[1]), MAX(lon[2], lon[3]));
        bbox[1] = MIN(MIN(lat[0], lat[1]), MIN(lat[2], lat[3]));
        bbox[3] = MAX(MAX(lat[0], lat[1]), MAX(lat[2], lat[3]));
    }
    g_mutex_unlock(&c->lock);
    return rc;
}

int gis_district_contains(gis_city *c, int64_t id, double lon, double lat)
{
    if (!gis_lonlat_valid(lon, lat))
        return 0;
    g_mutex_lock(&c->lock);
    const district *d = district_by_id(c, id);
    int in = 0;
    if (d) {
        double x, y;
        gis__local_fwd(c->local, lon, lat, &x, &y);
        GEOSGeometry *pt = GEOSGeom_createPointFromXY_r(c->h, x, y);
        in = GEOSPreparedIntersects_r(c->h, d->prep, pt) == 1;
        GEOSGeom_destroy_r(c->h, pt);
    }
    g_mutex_unlock(&c->lock);
    return in;
}

static gint by_kind_level(gconstpointer a, gconstpointer b)
{
    const district *x = *(district *const *)a, *y = *(district *const *)b;
    int k = strcmp(x->kind, y->kind);
    return k ? k : y->level - x->level;
}

json_t *gis_districts_at(gis_city *c, double lon, double lat, const char *kind)
{
    json_t *out = json_array();
    if (!gis_lonlat_valid(lon, lat))
        return out;
    g_mutex_lock(&c->lock);
    double x, y;
    gis__local_fwd(c->local, lon, lat, &x, &y);
    GEOSGeometry *pt = GEOSGeom_createPointFromXY_r(c->h, x, y);
    district_query q = {c, pt, kind, g_ptr_array_new()};
    GEOSSTRtree_query_r(c->h, c->district_tree, pt, district_candidate, &q);
    g_ptr_array_sort(q.hits, by_kind_level);
    for (guint i = 0; i < q.hits->len; i++) {
        district *d = q.hits->pdata[i];
        json_t *j =
            json_pack("{sssssI}", "kind", d->kind, "name", d->name, "id", (json_int_t)d->id);
        if (d->level)
            json_object_set_new(j, "level", json_integer(d->level));
        json_array_append_new(out, j);
    }
    g_ptr_array_free(q.hits, TRUE);
    GEOSGeom_destroy_r(c->h, pt);
    g_mutex_unlock(&c->lock);
    return out;
}

/* ---- nearest road ---- */

typedef struct {
    gis_city *c;
    int named_only;
    double x, y;
} road_query;

static int road_distance(const void *item, const void *query, double *distance, void *user)
{
    const road *r = item;
    road_query *q = user;
    double nx, ny;
    if (r->xy)
        *distance = polyline_distance(r->xy, r->n, q->x, q->y, &nx, &ny);
    else if (GEOSDistance_r(q->c->h, r->g, query, distance) != 1)
        return 0;
    /* Unnamed roads count as far away when a name is wanted: still a valid
     * bound for the search, which only needs distances never under the truth. */
    if (q->named_only && !*r->name)
        *distance += 1e9;
    return 1;
}

static int nearest_road_locked(gis_city *c, double lon, double lat, double max_m, int named_only,
                               gis_road_hit *hit)
{
    if (!gis_lonlat_valid(lon, lat) || c->roads->len == 0)
        return CORE_ENOTFOUND;
    double x, y;
    gis__local_fwd(c->local, lon, lat, &x, &y);
    GEOSGeometry *pt = GEOSGeom_createPointFromXY_r(c->h, x, y);
    road_query q = {c, named_only, x, y};
    const road *r = GEOSSTRtree_nearest_generic_r(c->h, c->road_tree, pt, pt, road_distance, &q);
    int rc = CORE_ENOTFOUND;
    double d = INFINITY, nx = x, ny = y;
    if (r && r->xy) {
        d = polyline_distance(r->xy, r->n, x, y, &nx, &ny);
    } else if (r && GEOSDistance_r(c->h, r->g, pt, &d) == 1) {
        GEOSCoordSequence *near = GEOSNearestPoints_r(c->h, r->g, pt);
        if (near) {
            GEOSCoordSeq_getXY_r(c->h, near, 0, &nx, &ny);
            GEOSCoordSeq_destroy_r(c->h, near);
        }
    }
    if (r && d <= max_m && !(named_only && !*r->name)) {
        hit->name = r->name;
        hit->klass = r->klass;
        hit->id = r->id;
        hit->distance_m = d;
        gis__local_inv(c->local, nx, ny, &hit->lon, &hit->lat);
        rc = 0;
    }
    GEOSGeom_destroy_r(c->h, pt);
    return rc;
}

int gis_nearest_road(gis_city *c, double lon, double lat, double max_m, int named_only,
                     gis_road_hit *hit)
{
    g_mutex_lock(&c->lock);
    int rc = nearest_road_locked(c, lon, lat, max_m, named_only, hit);
    g_mutex_unlock(&c->lock);
    return rc;
}

/* ---- point layers ---- */

typedef struct {
    gis_city *c;
    const GEOSGeometry *area;
    GEOSGeometry *center;
    double radius;
    GPtrArray *hits; /* point_feature* */
} points_query;

static void point_candidate(void *item, void *user)
{
    point_feature *p = item;
    points_query *q = user;
    double d = 0;
    if (q->center) {
        if (GEOSDistance_r(q->c->h, p->g, q->center, &d) == 1 && d <= q->radius)
            g_ptr_array_add(q->hits, p);
    } else if (GEOSIntersects_r(q->c->h, q->area, p->g) == 1) {
        g_ptr_array_add(q->hits, p);
    }
}

static json_t *point_json(gis_city *c, const point_feature *p, const GEOSGeometry *from)
{
    json_t *j = json_pack("{sIsssssfsf}", "id", (json_int_t)p->id, "name", p->name, "kind", p->kind,
                          "lon", p->lon, "lat", p->lat);
    double d;
    if (from && GEOSDistance_r(c->h, p->g, from, &d) == 1)
        json_object_set_new(j, "distance_m", json_real(round(d * 10) / 10));
    return j;
}

typedef struct {
    gis_city *c;
    const GEOSGeometry *from;
} sort_ctx;

static gint by_distance(gconstpointer a, gconstpointer b, gpointer user)
{
    sort_ctx *s = user;
    double da = 0, db = 0;
    GEOSDistance_r(s->c->h, (*(point_feature *const *)a)->g, s->from, &da);
    GEOSDistance_r(s->c->h, (*(point_feature *const *)b)->g, s->from, &db);
    return da < db ? -1 : da > db;
}

static json_t *query_points(gis_city *c, const char *layer, GEOSGeometry *area,
                            GEOSGeometry *center, double radius, int limit)
{
    point_layer *pl = g_hash_table_lookup(c->point_layers, layer);
    if (!pl)
        return NULL;
    points_query q = {c, area, center, radius, g_ptr_array_new()};
    GEOSSTRtree_query_r(c->h, pl->tree, area, point_candidate, &q);
    if (center) {
        sort_ctx s = {c, center};
        g_ptr_array_sort_with_data(q.hits, by_distance, &s);
    }
    json_t *out = json_array();
    for (guint i = 0; i < q.hits->len && (int)i < limit; i++)
        json_array_append_new(out, point_json(c, q.hits->pdata[i], center));
    g_ptr_array_free(q.hits, TRUE);
    return out;
}

json_t *gis_points_near(gis_city *c, const char *layer, double lon, double lat, double radius_m,
                        int limit)
{
    if (!gis_lonlat_valid(lon, lat) || !isfinite(radius_m) || radius_m < 0)
        return json_array();
    g_mutex_lock(&c->lock);
    double x, y;
    gis__local_fwd(c->local, lon, lat, &x, &y);
    GEOSGeometry *center = GEOSGeom_createPointFromXY_r(c->h, x, y);
    GEOSGeometry *box =
        GEOSGeom_createRectangle_r(c->h, x - radius_m, y - radius_m, x + radius_m, y + radius_m);
    json_t *out = query_points(c, layer, box, center, radius_m, limit);
    GEOSGeom_destroy_r(c->h, box);
    GEOSGeom_destroy_r(c->h, center);
    g_mutex_unlock(&c->lock);
    return out;
}

json_t *gis_points_in_box(gis_city *c, const char *layer, double w, double s, double e, double n,
                          int limit)
{
    if (!gis_lonlat_valid(w, s) || !gis_lonlat_valid(e, n) || w > e || s > n)
        return json_array();
    g_mutex_lock(&c->lock);
    /* The box's corners and edge midpoints in local metres: a lon/lat box is
     * not a rectangle there, so take the envelope and filter exactly. */
    double xs[4], ys[4];
    gis__local_fwd(c->local, w, s, &xs[0], &ys[0]);
    gis__local_fwd(c->local, e, s, &xs[1], &ys[1]);
    gis__local_fwd(c->local, e, n, &xs[2], &ys[2]);
    gis__local_fwd(c->local, w, n, &xs[3], &ys[3]);
    GEOSCoordSequence *seq = GEOSCoordSeq_create_r(c->h, 5, 2);
    for (int i = 0; i < 5; i++)
        GEOSCoordSeq_setXY_r(c->h, seq, (unsigned)i, xs[i % 4], ys[i % 4]);
    GEOSGeometry *ring = GEOSGeom_createLinearRing_r(c->h, seq);
    GEOSGeometry *area = GEOSGeom_createPolygon_r(c->h, ring, NULL, 0);
    json_t *out = query_points(c, layer, area, NULL, 0, limit);
    GEOSGeom_destroy_r(c->h, area);
    g_mutex_unlock(&c->lock);
    return out;
}

/* ---- reverse geocoding ---- */

/* The nearest address on the named street within 60 m, or NULL. */
static point_feature *address_on(gis_city *c, const char *street, double lon, double lat)
{
    point_layer *pl = g_hash_table_lookup(c->point_layers, "addresses");
    if (!pl || !street || !*street)
        return NULL;
    double x, y;
    gis__local_fwd(c->local, lon, lat, &x, &y);
    GEOSGeometry *center = GEOSGeom_createPointFromXY_r(c->h, x, y);
    GEOSGeometry *box = GEOSGeom_createRectangle_r(c->h, x - 60, y - 60, x + 60, y + 60);
    points_query q = {c, box, center, 60, g_ptr_array_new()};
    GEOSSTRtree_query_r(c->h, pl->tree, box, point_candidate, &q);
    sort_ctx s = {c, center};
    g_ptr_array_sort_with_data(q.hits, by_distance, &s);
    point_feature *best = NULL;
    size_t slen = strlen(street);
    for (guint i = 0; i < q.hits->len && !best; i++) {
        point_feature *p = q.hits->pdata[i];
        size_t n = strlen(p->name);
        if (n > slen && strcmp(p->name + n - slen, street) == 0)
            best = p;
    }
    g_ptr_array_free(q.hits, TRUE);
    GEOSGeom_destroy_r(c->h, box);
    GEOSGeom_destroy_r(c->h, center);
    return best;
}

/* The nearest settlement or quarter within 5 km, preferring the finest. */
static point_feature *place_near(gis_city *c, double lon, double lat)
{
    point_layer *pl = g_hash_table_lookup(c->point_layers, "places");
    if (!pl || pl->features->len == 0)
        return NULL;
    double x, y;
    gis__local_fwd(c->local, lon, lat, &x, &y);
    GEOSGeometry *center = GEOSGeom_createPointFromXY_r(c->h, x, y);
    point_feature *best = NULL;
    double best_d = 5000;
    for (guint i = 0; i < pl->features->len; i++) {
        point_feature *p = pl->features->pdata[i];
        double d;
        if (strcmp(p->kind, "locality") == 0 || strcmp(p->kind, "island") == 0)
            continue;
        if (GEOSDistance_r(c->h, p->g, center, &d) == 1 && d < best_d) {
            best_d = d;
            best = p;
        }
    }
    GEOSGeom_destroy_r(c->h, center);
    return best;
}

json_t *gis_reverse(gis_city *c, double lon, double lat)
{
    return gis_reverse_within(c, lon, lat, 150);
}

json_t *gis_reverse_within(gis_city *c, double lon, double lat, double max_m)
{
    json_t *districts = gis_districts_at(c, lon, lat, NULL);
    g_mutex_lock(&c->lock);
    gis_road_hit hit;
    int found = nearest_road_locked(c, lon, lat, max_m, 1, &hit) == 0 ||
                nearest_road_locked(c, lon, lat, max_m, 0, &hit) == 0;
    point_feature *addr = found ? address_on(c, hit.name, lon, lat) : NULL;
    point_feature *place = place_near(c, lon, lat);
    GString *text = g_string_new("");
    if (addr)
        g_string_append_printf(text, "near %s", addr->name);
    else if (found && *hit.name)
        g_string_append_printf(text, "near %s", hit.name);
    else if (found)
        g_string_append_printf(text, "near an unnamed %s road", hit.klass);
    if (place)
        g_string_append_printf(text, "%s%s", text->len ? ", " : "", place->name);
    if (!text->len)
        g_string_append_printf(text, "%.5f, %.5f", lat, lon);
    json_t *out = json_pack("{ss so}", "text", text->str, "districts", districts);
    g_string_free(text, TRUE);
    json_object_set_new(out, "road",
                        found ? json_pack("{sssssIsfs[ff]}", "name", hit.name, "class", hit.klass,
                                          "id", (json_int_t)hit.id, "distance_m",
                                          round(hit.distance_m * 10) / 10, "at", hit.lon, hit.lat)
                              : json_null());
    json_object_set_new(out, "address", addr ? point_json(c, addr, NULL) : json_null());
    json_object_set_new(out, "place", place ? point_json(c, place, NULL) : json_null());
    g_mutex_unlock(&c->lock);
    return out;
}

/* ---- forward search ---- */

typedef struct {
    search_entry *e;
    int score;
} scored;

static gint by_score(gconstpointer a, gconstpointer b)
{
    const scored *x = a, *y = b;
    if (x->score != y->score)
        return x->score - y->score;
    return strcmp(x->e->name, y->e->name);
}

/* 0: the whole name; 1: a word starts with the text; 2: contains it; -1 no. */
static int match(const char *norm, const char *text)
{
    if (strcmp(norm, text) == 0)
        return 0;
    const char *p = strstr(norm, text);
    if (!p)
        return -1;
    for (; p; p = strstr(p + 1, text))
        if (p == norm || p[-1] == ' ')
            return 1;
    return 2;
}

json_t *gis_search(gis_city *c, const char *text, int limit)
{
    json_t *out = json_array();
    char *q = normalise(text);
    g_strstrip(q);
    if (!*q || limit <= 0) {
        g_free(q);
        return out;
    }
    g_mutex_lock(&c->lock);
    GArray *hits = g_array_new(FALSE, FALSE, sizeof(scored));
    for (guint i = 0; i < c->search->len; i++) {
        search_entry *e = c->search->pdata[i];
        int m = match(e->norm, q);
        if (m >= 0) {
            scored s = {e, m * 10 + e->rank};
            g_array_append_val(hits, s);
        }
    }
    g_array_sort(hits, by_score);
    for (guint i = 0; i < hits->len && (int)i < limit; i++) {
        search_entry *e = g_array_index(hits, scored, i).e;
        json_array_append_new(out, json_pack("{sssssfsf}", "name", e->name, "kind", e->kind, "lon",
                                             e->lon, "lat", e->lat));
    }
    g_array_free(hits, TRUE);
    g_mutex_unlock(&c->lock);
    g_free(q);
    return out;
}

/* ---- vector tiles ---- */

int gis_tile(gis_city *c, const char *layer, int z, int x, int y, GBytes **tile, int *cached)
{
    *tile = NULL;
    *cached = 0;
    if (z < 0 || z > GIS_MAX_ZOOM || x < 0 || y < 0 || x >= (1 << z) || y >= (1 << z))
        return CORE_EINVAL;
    if (!c->tiles || !gis__tiles_has_layer(c->tiles, layer))
        return CORE_ENOTFOUND;
    *tile = gis__tiles_get(c->tiles, layer, z, x, y, cached);
    return 0;
}

void gis_tiles_clear(gis_city *c)
{
    if (c->tiles)
        gis__tiles_clear_cache(c->tiles);
}

/* ---- GeoJSON export ---- */

/* A GDAL feature as a GeoJSON Feature (new reference). */
static json_t *feature_json(OGRFeatureH f)
{
    OGRGeometryH g = OGR_F_GetGeometryRef(f);
    char *gj = g ? OGR_G_ExportToJson(g) : NULL;
    json_t *props = json_object();
    OGRFeatureDefnH defn = OGR_F_GetDefnRef(f);
    for (int i = 0; i < OGR_FD_GetFieldCount(defn); i++) {
        if (!OGR_F_IsFieldSetAndNotNull(f, i))
            continue;
        OGRFieldDefnH fd = OGR_FD_GetFieldDefn(defn, i);
        OGRFieldType t = OGR_Fld_GetType(fd);
        json_object_set_new(props, OGR_Fld_GetNameRef(fd),
                            t == OFTInteger || t == OFTInteger64
                                ? json_integer(OGR_F_GetFieldAsInteger64(f, i))
                            : t == OFTReal ? json_real(OGR_F_GetFieldAsDouble(f, i))
                                           : json_string(OGR_F_GetFieldAsString(f, i)));
    }
    json_t *out =
        json_pack("{sssIsoso}", "type", "Feature", "id", (json_int_t)OGR_F_GetFID(f), "properties",
                  props, "geometry", gj ? json_loads(gj, 0, NULL) : json_null());
    CPLFree(gj);
    return out;
}

/* The package's layer opened for reading, or NULL. *ds to GDALClose. */
static OGRLayerH open_layer(gis_city *c, const char *layer, GDALDatasetH *ds)
{
    *ds = NULL;
    if (!g_strv_contains((const char *const *)c->layer_names, layer))
        return NULL;
    *ds = GDALOpenEx(c->gpkg, GDAL_OF_VECTOR | GDAL_OF_READONLY, NULL, NULL, NULL);
    OGRLayerH l = *ds ? GDALDatasetGetLayerByName(*ds, layer) : NULL;
    if (!l && *ds) {
        GDALClose(*ds);
        *ds = NULL;
    }
    return l;
}

json_t *gis_feature_geojson(gis_city *c, const char *layer, int64_t id)
{
    GDALDatasetH ds;
    OGRLayerH l = open_layer(c, layer, &ds);
    if (!l)
        return NULL;
    OGRFeatureH f = OGR_L_GetFeature(l, id);
    json_t *out = f ? feature_json(f) : NULL;
    if (f)
        OGR_F_Destroy(f);
    GDALClose(ds);
    return out;
}

json_t *gis_layer_geojson(gis_city *c, const char *layer, const double *bbox, int limit)
{
    GDALDatasetH ds;
    OGRLayerH l = open_layer(c, layer, &ds);
    if (!l)
        return NULL;
    if (bbox)
        OGR_L_SetSpatialFilterRect(l, bbox[0], bbox[1], bbox[2], bbox[3]);
    json_t *features = json_array();
    OGRFeatureH f;
    int n = 0;
    while (n < limit && (f = OGR_L_GetNextFeature(l))) {
        json_array_append_new(features, feature_json(f));
        OGR_F_Destroy(f);
        n++;
    }
    GDALClose(ds);
    return json_pack("{sssoss}", "type", "FeatureCollection", "features", features, "attribution",
                     json_string_value(json_object_get(c->meta, "attribution"))
                         ? json_string_value(json_object_get(c->meta, "attribution"))
                         : "");
}
