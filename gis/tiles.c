/*
 * tiles.c — Mapbox Vector Tiles (MVT 2.1) of a city, made on request and
 * cached.
 *
 * At load the map layers (roads, buildings, water, districts, places,
 * stations) are read once and kept in Web Mercator metres with an STR tree
 * each. A tile is: the features whose envelopes meet the tile (plus a
 * margin so lines and labels continue across edges), each clipped to the
 * buffered tile rectangle and simplified to a fraction of a pixel (GEOS),
 * quantised to the 4096-unit tile grid, and encoded as protobuf by hand
 * (the format is small: layers of features with zig-zag delta commands).
 * Which features appear depends on the zoom: buildings from 14, minor roads
 * from 13, the main roads always.
 *
 * Tiles are cached by layer/z/x/y, newest kept, up to GIS_TILE_CACHE_BYTES.
 * Thread use: any thread; the tiles have their own GEOS context and lock,
 * apart from the city's, so making a tile never delays another query.
 */
#include "internal.h"

#include <math.h>
#include <string.h>

#define EXTENT 4096
#define BUFFER 64 /* tile units drawn beyond each edge */
#define R_EARTH 6378137.0
#define GIS_TILE_CACHE_BYTES (64u << 20)

typedef struct {
    GEOSGeometry *g; /* Web Mercator metres */
    char *name, *kind;
    int minzoom;
    int64_t id;
} map_feature;

typedef struct {
    char *name;
    GPtrArray *features; /* map_feature* */
    GEOSSTRtree *tree;
} map_layer;

struct gis__tiles {
    GMutex lock; /* everything below */
    GEOSContextHandle_t h;
    GPtrArray *layers; /* map_layer* */
    GHashTable *cache; /* "layer/z/x/y" -> GBytes */
    GQueue order;      /* keys, oldest first */
    size_t cached_bytes;
    uint64_t hits, misses;
};

/* ---- Web Mercator ---- */

static void mercator(double lon, double lat, double *x, double *y)
{
    lat = CLAMP(lat, -85.05112878, 85.05112878);
    *x = R_EARTH * lon * G_PI / 180.0;
    *y = R_EARTH * log(tan(G_PI / 4 + lat * G_PI / 360.0));
}

static int to_mercator(double *x, double *y, void *user)
{
    mercator(*x, *y, x, y);
    return 1;
}

/* ---- loading ---- */

static const char *field(OGRFeatureH f, const char *name)
{
    int i = OGR_F_GetFieldIndex(f, name);
    return i >= 0 && OGR_F_IsFieldSetAndNotNull(f, i) ? OGR_F_GetFieldAsString(f, i) : "";
}

/* The zoom from which a feature is drawn. */
static int min_zoom(const char *layer, const char *kind)
{
    static const char *const major[] = {"motorway", "motorway_link", "trunk",     "trunk_link",
                                        "primary",  "primary_link",  "secondary", NULL};
    static const char *const middle[] = {"secondary_link", "tertiary",    "tertiary_link",
                                         "unclassified",   "residential", NULL};
    if (strcmp(layer, "buildings") == 0)
        return 14;
    if (strcmp(layer, "roads") == 0)
        return g_strv_contains(major, kind) ? 0 : g_strv_contains(middle, kind) ? 12 : 14;
    if (strcmp(layer, "addresses") == 0)
        return 16;
    return 0;
}

static void load_layer(gis__tiles *t, GDALDatasetH ds, const char *name)
{
    OGRLayerH l = GDALDatasetGetLayerByName(ds, name);
    if (!l)
        return;
    map_layer *ml = g_new0(map_layer, 1);
    ml->name = g_strdup(name);
    ml->features = g_ptr_array_new();
    ml->tree = GEOSSTRtree_create_r(t->h, 10);
    GEOSWKBReader *r = GEOSWKBReader_create_r(t->h);
    OGRFeatureH f;
    OGR_L_ResetReading(l);
    while ((f = OGR_L_GetNextFeature(l))) {
        OGRGeometryH g = OGR_F_GetGeometryRef(f);
        if (g && !OGR_G_IsEmpty(g)) {
            size_t n = (size_t)OGR_G_WkbSize(g);
            unsigned char *wkb = g_malloc(n);
            OGR_G_ExportToWkb(g, wkbNDR, wkb);
            GEOSGeometry *in = GEOSWKBReader_read_r(t->h, r, wkb, n);
            g_free(wkb);
            GEOSGeometry *m = in ? GEOSGeom_transformXY_r(t->h, in, to_mercator, NULL) : NULL;
            GEOSGeom_destroy_r(t->h, in);
            if (m) {
                map_feature *mf = g_new0(map_feature, 1);
                mf->g = m;
                mf->name = g_strdup(field(f, "name"));
                mf->kind = g_strdup(*field(f, "kind") ? field(f, "kind") : field(f, "class"));
                mf->minzoom = min_zoom(name, mf->kind);
                mf->id = OGR_F_GetFID(f);
                g_ptr_array_add(ml->features, mf);
                GEOSSTRtree_insert_r(t->h, ml->tree, m, mf);
            }
        }
        OGR_F_Destroy(f);
    }
    GEOSWKBReader_destroy_r(t->h, r);
    g_ptr_array_add(t->layers, ml);
}

static void quiet(const char *fmt, ...) {}

gis__tiles *gis__tiles_new(const char *gpkg)
{
    GDALDatasetH ds = GDALOpenEx(gpkg, GDAL_OF_VECTOR | GDAL_OF_READONLY, NULL, NULL, NULL);
    if (!ds)
        return NULL;
    gis__tiles *t = g_new0(gis__tiles, 1);
    /* Its own GEOS context and lock: a tile being made never holds up the
     * city's other questions. */
    t->h = GEOS_init_r();
    GEOSContext_setNoticeHandler_r(t->h, quiet);
    GEOSContext_setErrorHandler_r(t->h, quiet);
    g_mutex_init(&t->lock);
    t->layers = g_ptr_array_new();
    t->cache =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_bytes_unref);
    g_queue_init(&t->order);
    /* Drawn bottom to top in this order. */
    static const char *const order[] = {"districts", "water",    "buildings",
                                        "roads",     "stations", "places"};
    for (size_t i = 0; i < G_N_ELEMENTS(order); i++)
        load_layer(t, ds, order[i]);
    GDALClose(ds);
    return t;
}

void gis__tiles_free(gis__tiles *t)
{
    if (!t)
        return;
    for (guint i = 0; i < t->layers->len; i++) {
        map_layer *ml = t->layers->pdata[i];
        for (guint j = 0; j < ml->features->len; j++) {
            map_feature *mf = ml->features->pdata[j];
            GEOSGeom_destroy_r(t->h, mf->g);
            g_free(mf->name);
            g_free(mf->kind);
            g_free(mf);
        }
        g_ptr_array_free(ml->features, TRUE);
        GEOSSTRtree_destroy_r(t->h, ml->tree);
        g_free(ml->name);
        g_free(ml);
    }
    g_ptr_array_free(t->layers, TRUE);
    g_hash_table_destroy(t->cache);
    g_queue_clear(&t->order); /* the keys belong to the hash table */
    GEOS_finish_r(t->h);
    g_mutex_clear(&t->lock);
    g_free(t);
}

/* ---- protobuf ---- */

static void pb_varint(GByteArray *b, uint64_t v)
{
    while (v >= 0x80) {
        guint8 c = (guint8)(v | 0x80);
        g_byte_array_append(b, &c, 1);
        v >>= 7;
    }
    guint8 c = (guint8)v;
    g_byte_array_append(b, &c, 1);
}

static void pb_key(GByteArray *b, unsigned field, unsigned wire)
{
    pb_varint(b, (uint64_t)field << 3 | wire);
}

static void pb_bytes(GByteArray *b, unsigned field, const void *data, size_t len)
{
    pb_key(b, field, 2);
    pb_varint(b, len);
    g_byte_array_append(b, data, (guint)len);
}

static uint32_t zigzag(int32_t v)
{
    return ((uint32_t)v << 1) ^ (uint32_t)(v >> 31);
}

/* ---- geometry encoding ---- */

typedef struct {
    GArray *cmds; /* uint32 */
    int32_t cx, cy;
    double ox, oy, scale; /* tile origin (mercator, top-left) and units per metre */
} geom_enc;

static void quantise(const geom_enc *e, double x, double y, int32_t *qx, int32_t *qy)
{
    *qx = (int32_t)lround((x - e->ox) * e->scale);
    *qy = (int32_t)lround((e->oy - y) * e->scale);
}

static void cmd(geom_enc *e, unsigned id, unsigned count)
{
    uint32_t c = (id & 7) | (count << 3);
    g_array_append_val(e->cmds, c);
}

static void param(geom_enc *e, int32_t x, int32_t y)
{
    uint32_t dx = zigzag(x - e->cx), dy = zigzag(y - e->cy);
    g_array_append_val(e->cmds, dx);
    g_array_append_val(e->cmds, dy);
    e->cx = x;
    e->cy = y;
}

/* A sequence of points quantised, consecutive duplicates dropped. */
static GArray *quantised_points(GEOSContextHandle_t h, const geom_enc *e,
                                const GEOSCoordSequence *seq)
{
    unsigned n = 0;
    GEOSCoordSeq_getSize_r(h, seq, &n);
    GArray *pts = g_array_sized_new(FALSE, FALSE, sizeof(int32_t) * 2, n);
    for (unsigned i = 0; i < n; i++) {
        double x, y;
        GEOSCoordSeq_getXY_r(h, seq, i, &x, &y);
        int32_t q[2];
        quantise(e, x, y, &q[0], &q[1]);
        if (pts->len) {
            int32_t *last = &g_array_index(pts, int32_t, (pts->len - 1) * 2);
            if (last[0] == q[0] && last[1] == q[1])
                continue;
        }
        g_array_append_vals(pts, q, 1);
    }
    return pts;
}

static void encode_line(GEOSContextHandle_t h, geom_enc *e, const GEOSGeometry *g)
{
    GArray *pts = quantised_points(h, e, GEOSGeom_getCoordSeq_r(h, g));
    if (pts->len >= 2) {
        int32_t *p = (int32_t *)pts->data;
        cmd(e, 1, 1);
        param(e, p[0], p[1]);
        cmd(e, 2, pts->len - 1);
        for (guint i = 1; i < pts->len; i++)
            param(e, p[i * 2], p[i * 2 + 1]);
    }
    g_array_free(pts, TRUE);
}

/* A ring with the winding MVT wants: exterior positive area (clockwise
 * with y down), holes negative. */
static void encode_ring(GEOSContextHandle_t h, geom_enc *e, const GEOSGeometry *ring, int exterior)
{
    GArray *pts = quantised_points(h, e, GEOSGeom_getCoordSeq_r(h, ring));
    /* Drop the closing point: ClosePath draws it. */
    if (pts->len >= 2) {
        int32_t *p = (int32_t *)pts->data;
        if (p[0] == p[(pts->len - 1) * 2] && p[1] == p[(pts->len - 1) * 2 + 1])
            g_array_set_size(pts, pts->len - 1);
    }
    if (pts->len >= 3) {
        int32_t *p = (int32_t *)pts->data;
        double area = 0;
        for (guint i = 0; i < pts->len; i++) {
            guint j = (i + 1) % pts->len;
            area += (double)p[i * 2] * p[j * 2 + 1] - (double)p[j * 2] * p[i * 2 + 1];
        }
        int reverse = exterior ? area < 0 : area > 0;
        if (area != 0) {
            cmd(e, 1, 1);
            guint first = reverse ? pts->len - 1 : 0;
            param(e, p[first * 2], p[first * 2 + 1]);
            cmd(e, 2, pts->len - 1);
            for (guint k = 1; k < pts->len; k++) {
                guint i = reverse ? pts->len - 1 - k : k;
                param(e, p[i * 2], p[i * 2 + 1]);
            }
            cmd(e, 7, 1);
        }
    }
    g_array_free(pts, TRUE);
}

/* Appends g's commands; returns the MVT type (1 point, 2 line, 3 polygon) or 0. */
static int encode_geometry(GEOSContextHandle_t h, geom_enc *e, const GEOSGeometry *g)
{
    int type = GEOSGeomTypeId_r(h, g);
    int parts = GEOSGetNumGeometries_r(h, g);
    switch (type) {
    case GEOS_POINT:
    case GEOS_MULTIPOINT: {
        GArray *pts = g_array_new(FALSE, FALSE, sizeof(int32_t) * 2);
        for (int i = 0; i < parts; i++) {
            double x, y;
            const GEOSGeometry *p = GEOSGetGeometryN_r(h, g, i);
            if (GEOSGeomGetX_r(h, p, &x) != 1 || GEOSGeomGetY_r(h, p, &y) != 1)
                continue;
            int32_t q[2];
            quantise(e, x, y, &q[0], &q[1]);
            if (q[0] < 0 || q[0] >= EXTENT || q[1] < 0 || q[1] >= EXTENT)
                continue; /* a point belongs to one tile only */
            g_array_append_vals(pts, q, 1);
        }
        if (pts->len) {
            cmd(e, 1, pts->len);
            for (guint i = 0; i < pts->len; i++)
                param(e, g_array_index(pts, int32_t, i * 2),
                      g_array_index(pts, int32_t, i * 2 + 1));
        }
        g_array_free(pts, TRUE);
        return e->cmds->len ? 1 : 0;
    }
    case GEOS_LINESTRING:
    case GEOS_MULTILINESTRING:
        for (int i = 0; i < parts; i++)
            encode_line(h, e, GEOSGetGeometryN_r(h, g, i));
        return e->cmds->len ? 2 : 0;
    case GEOS_POLYGON:
    case GEOS_MULTIPOLYGON:
        for (int i = 0; i < parts; i++) {
            const GEOSGeometry *poly = GEOSGetGeometryN_r(h, g, i);
            encode_ring(h, e, GEOSGetExteriorRing_r(h, poly), 1);
            int holes = GEOSGetNumInteriorRings_r(h, poly);
            for (int k = 0; k < holes; k++)
                encode_ring(h, e, GEOSGetInteriorRingN_r(h, poly, k), 0);
        }
        return e->cmds->len ? 3 : 0;
    case GEOS_GEOMETRYCOLLECTION: {
        /* Clipping can leave a mix; keep the parts of the highest dimension. */
        int best = 0;
        for (int i = 0; i < parts; i++)
            best = MAX(best, GEOSGeom_getDimensions_r(h, GEOSGetGeometryN_r(h, g, i)));
        int got = 0;
        for (int i = 0; i < parts; i++) {
            const GEOSGeometry *p = GEOSGetGeometryN_r(h, g, i);
            if (GEOSGeom_getDimensions_r(h, p) == best)
                got = encode_geometry(h, e, p);
        }
        return got;
    }
    default:
        return 0;
    }
}

/* ---- layers ---- */

typedef struct {
    GByteArray *body;          /* layer message being built */
    GHashTable *keys, *values; /* string -> index */
    GPtrArray *key_list, *value_list;
} layer_enc;

static uint32_t intern(GHashTable *t, GPtrArray *list, const char *s)
{
    gpointer v;
    if (g_hash_table_lookup_extended(t, s, NULL, &v))
        return GPOINTER_TO_UINT(v);
    uint32_t i = list->len;
    g_ptr_array_add(list, g_strdup(s));
    g_hash_table_insert(t, list->pdata[i], GUINT_TO_POINTER(i));
    return i;
}

static void add_tag(layer_enc *le, GArray *tags, const char *k, const char *v)
{
    if (!v || !*v)
        return;
    uint32_t ki = intern(le->keys, le->key_list, k), vi = intern(le->values, le->value_list, v);
    g_array_append_val(tags, ki);
    g_array_append_val(tags, vi);
}

static void packed(GByteArray *b, unsigned field, GArray *u32)
{
    GByteArray *tmp = g_byte_array_new();
    for (guint i = 0; i < u32->len; i++)
        pb_varint(tmp, g_array_index(u32, uint32_t, i));
    pb_bytes(b, field, tmp->data, tmp->len);
    g_byte_array_unref(tmp);
}

typedef struct {
    GEOSContextHandle_t h;
    const GEOSGeometry *clip;
    int z;
    GPtrArray *hits;
} tile_query;

static void tile_candidate(void *item, void *user)
{
    map_feature *f = item;
    tile_query *q = user;
    if (f->minzoom <= q->z)
        g_ptr_array_add(q->hits, f);
}

static gint by_id(gconstpointer a, gconstpointer b)
{
    int64_t x = (*(map_feature *const *)a)->id, y = (*(map_feature *const *)b)->id;
    return x < y ? -1 : x > y;
}

/* Encodes one layer of the tile into out; returns the features written. */
static int encode_layer(gis__tiles *t, map_layer *ml, int z, const geom_enc *proto,
                        const GEOSGeometry *clip, double bounds[4], double tolerance,
                        GByteArray *out)
{
    tile_query q = {t->h, clip, z, g_ptr_array_new()};
    GEOSSTRtree_query_r(t->h, ml->tree, clip, tile_candidate, &q);
    g_ptr_array_sort(q.hits, by_id); /* the same tile every time */
    layer_enc le = {g_byte_array_new(), g_hash_table_new(g_str_hash, g_str_equal),
                    g_hash_table_new(g_str_hash, g_str_equal),
                    g_ptr_array_new_with_free_func(g_free), g_ptr_array_new_with_free_func(g_free)};
    int written = 0;
    int points = strcmp(ml->name, "places") == 0 || strcmp(ml->name, "stations") == 0;
    for (guint i = 0; i < q.hits->len; i++) {
        map_feature *f = q.hits->pdata[i];
        GEOSGeometry *part =
            points ? GEOSGeom_clone_r(t->h, f->g)
                   : GEOSClipByRect_r(t->h, f->g, bounds[0], bounds[1], bounds[2], bounds[3]);
        if (!part || GEOSisEmpty_r(t->h, part)) {
            GEOSGeom_destroy_r(t->h, part);
            continue;
        }
        if (!points && tolerance > 0) {
            GEOSGeometry *s = GEOSTopologyPreserveSimplify_r(t->h, part, tolerance);
            if (s) {
                GEOSGeom_destroy_r(t->h, part);
                part = s;
            }
        }
        geom_enc e = *proto;
        e.cmds = g_array_new(FALSE, FALSE, sizeof(uint32_t));
        int type = encode_geometry(t->h, &e, part);
        GEOSGeom_destroy_r(t->h, part);
        if (type) {
            GByteArray *fb = g_byte_array_new();
            pb_key(fb, 1, 0);
            pb_varint(fb, (uint64_t)f->id);
            GArray *tags = g_array_new(FALSE, FALSE, sizeof(uint32_t));
            add_tag(&le, tags, "name", f->name);
            add_tag(&le, tags, "kind", f->kind);
            if (tags->len)
                packed(fb, 2, tags);
            g_array_free(tags, TRUE);
            pb_key(fb, 3, 0);
            pb_varint(fb, (uint64_t)type);
            packed(fb, 4, e.cmds);
            pb_bytes(le.body, 2, fb->data, fb->len);
            g_byte_array_unref(fb);
            written++;
        }
        g_array_free(e.cmds, TRUE);
    }
    if (written) {
        GByteArray *lb = g_byte_array_new();
        pb_key(lb, 15, 0);
        pb_varint(lb, 2);
        pb_bytes(lb, 1, ml->name, strlen(ml->name));
        g_byte_array_append(lb, le.body->data, le.body->len);
        for (guint i = 0; i < le.key_list->len; i++)
            pb_bytes(lb, 3, le.key_list->pdata[i], strlen(le.key_list->pdata[i]));
        for (guint i = 0; i < le.value_list->len; i++) {
            GByteArray *vb = g_byte_array_new();
            pb_bytes(vb, 1, le.value_list->pdata[i], strlen(le.value_list->pdata[i]));
            pb_bytes(lb, 4, vb->data, vb->len);
            g_byte_array_unref(vb);
        }
        pb_key(lb, 5, 0);
        pb_varint(lb, EXTENT);
        pb_bytes(out, 3, lb->data, lb->len);
        g_byte_array_unref(lb);
    }
    g_byte_array_unref(le.body);
    g_hash_table_destroy(le.keys);
    g_hash_table_destroy(le.values);
    g_ptr_array_free(le.key_list, TRUE);
    g_ptr_array_free(le.value_list, TRUE);
    g_ptr_array_free(q.hits, TRUE);
    return written;
}

static GBytes *render(gis__tiles *t, const char *layer, int z, int x, int y)
{
    double size = 2 * G_PI * R_EARTH / (double)(1u << z);
    double minx = -G_PI * R_EARTH + x * size, maxy = G_PI * R_EARTH - y * size;
    double margin = size * BUFFER / EXTENT;
    double bounds[4] = {minx - margin, maxy - size - margin, minx + size + margin, maxy + margin};
    GEOSGeometry *clip =
        GEOSGeom_createRectangle_r(t->h, bounds[0], bounds[1], bounds[2], bounds[3]);
    geom_enc proto = {NULL, 0, 0, minx, maxy, EXTENT / size};
    /* Half a tile unit: finer detail cannot be drawn. */
    double tolerance = size / EXTENT / 2;
    GByteArray *out = g_byte_array_new();
    int all = strcmp(layer, "base") == 0;
    for (guint i = 0; i < t->layers->len; i++) {
        map_layer *ml = t->layers->pdata[i];
        if (all || strcmp(ml->name, layer) == 0)
            encode_layer(t, ml, z, &proto, clip, bounds, tolerance, out);
    }
    GEOSGeom_destroy_r(t->h, clip);
    return g_byte_array_free_to_bytes(out);
}

static GBytes *tile_locked(gis__tiles *t, const char *layer, int z, int x, int y, int *cached);

int gis__tiles_has_layer(const gis__tiles *t, const char *layer)
{
    if (strcmp(layer, "base") == 0)
        return 1;
    for (guint i = 0; i < t->layers->len; i++)
        if (strcmp(((map_layer *)t->layers->pdata[i])->name, layer) == 0)
            return 1;
    return 0;
}

GBytes *gis__tiles_get(gis__tiles *t, const char *layer, int z, int x, int y, int *cached)
{
    g_mutex_lock(&t->lock);
    GBytes *b = tile_locked(t, layer, z, x, y, cached);
    g_mutex_unlock(&t->lock);
    return b;
}

static GBytes *tile_locked(gis__tiles *t, const char *layer, int z, int x, int y, int *cached)
{
    char *key = g_strdup_printf("%s/%d/%d/%d", layer, z, x, y);
    GBytes *b = g_hash_table_lookup(t->cache, key);
    *cached = b != NULL;
    if (b) {
        t->hits++;
        g_free(key);
        return g_bytes_ref(b);
    }
    t->misses++;
    b = render(t, layer, z, x, y);
    g_hash_table_insert(t->cache, key, g_bytes_ref(b));
    g_queue_push_tail(&t->order, key);
    t->cached_bytes += g_bytes_get_size(b) + 64;
    while (t->cached_bytes > GIS_TILE_CACHE_BYTES && t->order.length > 1) {
        char *old = g_queue_pop_head(&t->order);
        GBytes *ob = g_hash_table_lookup(t->cache, old);
        t->cached_bytes -= g_bytes_get_size(ob) + 64;
        g_hash_table_remove(t->cache, old);
    }
    return b;
}

void gis__tiles_clear_cache(gis__tiles *t)
{
    g_mutex_lock(&t->lock);
    g_hash_table_remove_all(t->cache);
    g_queue_clear(&t->order);
    t->cached_bytes = 0;
    g_mutex_unlock(&t->lock);
}
