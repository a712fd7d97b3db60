/*
 * pipes_layers.c — a pipe network from GIS layers (gis_pipenet_read_layers):
 * pipes as lines, junctions and sources as points, valves and customers as
 * points, from any GDAL source, reprojected to WGS84 on the way in.
 *
 * GIS layers have geometry, not topology, so topology comes from snapping:
 * a line end takes the junction or source point within snap_m metres (the
 * one its from/to field names, if any of them, else the nearest); ends
 * near no point are grouped with the free ends within snap_m of them
 * (transitively) into new nodes "N<k>". Both searches go through a grid
 * of snap_m cells kept as a sorted array of cell keys, so snapping costs
 * O(n log n), not O(n²). Distances are metres in a local equirectangular
 * frame (the same scale gis_pipenet_finish uses).
 *
 * Fields (names matched case-insensitively; the first one present wins):
 *   pipes      id: id|name|fid; diameter: diameter (a value below 10 is
 *              metres, as WNTR and most GIS exports write it; 10 or more is
 *              millimetres) or diameter_mm; length: length (metres), else
 *              the geometry's length; from/to: from|start_node_name|node1,
 *              to|end_node_name|node2 (only to choose between points
 *              within snap_m); kind|type: "pump" or "valve", else a pipe.
 *   junctions  id|name.
 *   sources    id|name; kind|type: "tank" makes a tank, else a reservoir.
 *   valves     id|name; link and node (used when both name elements of the
 *              network); state|status (open, closed, inoperable).
 *   customers  id|name|fid, name, kind|type, units, node, link.
 * Multi-part lines become one link per part ("ID", "ID.2", ...).
 *
 * Called from the import command on its own thread.
 */
#include "pipes_io.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define REPORT_FIRST 50
#define VALVE_MAX_M 10.0
#define CUSTOMER_MAX_M 200.0

void pipes__report_add(json_t *report, const char *list, const char *id)
{
    json_t *l = json_object_get(report, list);
    if (!l) {
        l = json_pack("{sI s[]}", "count", (json_int_t)0, "first");
        json_object_set_new(report, list, l);
    }
    json_int_t count = json_integer_value(json_object_get(l, "count"));
    json_object_set_new(l, "count", json_integer(count + 1));
    if (count < REPORT_FIRST)
        json_array_append_new(json_object_get(l, "first"), json_string(id));
}

static void line_clear(gpointer p)
{
    pipes__line *l = p;
    g_free(l->id), g_free(l->from), g_free(l->to);
    if (l->xy)
        g_array_free(l->xy, TRUE);
}

static void point_clear(gpointer p)
{
    g_free(((pipes__point *)p)->id);
}

GArray *pipes__lines_new(void)
{
    GArray *a = g_array_new(FALSE, TRUE, sizeof(pipes__line));
    g_array_set_clear_func(a, line_clear);
    return a;
}

GArray *pipes__points_new(void)
{
    GArray *a = g_array_new(FALSE, TRUE, sizeof(pipes__point));
    g_array_set_clear_func(a, point_clear);
    return a;
}

/* ---- a grid of cells as sorted keys ---- */

typedef struct {
    double x0, y0, kx, ky, cell; /* lon/lat origin, metres per degree, cell size */
} frame;

typedef struct {
    gint64 key;
    int i;
} keyed;

typedef struct {
    keyed *items;
    size_t n;
} cellix;

static void cell_of(const frame *f, double lon, double lat, int *cx, int *cy)
{
    *cx = (int)floor((lon - f->x0) * f->kx / f->cell);
    *cy = (int)floor((lat - f->y0) * f->ky / f->cell);
}

static gint64 cell_key(int cx, int cy)
{
    return (gint64)(((guint64)(guint32)cx << 32) | (guint32)cy);
}

static int cmp_keyed(const void *a, const void *b)
{
    const keyed *p = a, *q = b;
    return p->key < q->key ? -1 : p->key > q->key ? 1 : p->i - q->i;
}

/* Index of the items with coordinates xy[2*idx[k]], for k < n. */
static void cellix_build(cellix *c, const frame *f, const double *xy, const int *idx, size_t n)
{
    c->items = g_new(keyed, n ? n : 1);
    c->n = n;
    for (size_t k = 0; k < n; k++) {
        int cx, cy;
        cell_of(f, xy[2 * idx[k]], xy[2 * idx[k] + 1], &cx, &cy);
        c->items[k] = (keyed){cell_key(cx, cy), idx[k]};
    }
    qsort(c->items, n, sizeof *c->items, cmp_keyed);
}

/* First item of a cell (or c->n) */
static size_t cellix_first(const cellix *c, gint64 key)
{
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c->items[mid].key < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static double frame_dist(const frame *f, double x0, double y0, double x1, double y1)
{
    return hypot((x1 - x0) * f->kx, (y1 - y0) * f->ky);
}

/* ---- snapping ---- */

typedef struct {
    gis_pipenet *n;
    GArray *lines, *points;
    frame f;
    double snap;
    double *end_xy;   /* 2 per line end: end 2i is line i's first vertex, 2i+1 its last */
    double *point_xy; /* 2 per point */
    int *end_node;    /* node index per end */
    int *point_used;
} snapper;

static const char *end_name(const snapper *s, int e)
{
    const pipes__line *l = &g_array_index(s->lines, pipes__line, e / 2);
    return e % 2 ? l->to : l->from;
}

/* The point an end takes: the one within snap that its field names, else
 * the nearest within snap; -1 when none. */
static int match_point(const snapper *s, const cellix *pts, int e)
{
    double x = s->end_xy[2 * e], y = s->end_xy[2 * e + 1], bestd = s->snap;
    const char *want = end_name(s, e);
    int cx, cy, best = -1;
    cell_of(&s->f, x, y, &cx, &cy);
    for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++) {
            gint64 key = cell_key(cx + dx, cy + dy);
            for (size_t k = cellix_first(pts, key); k < pts->n && pts->items[k].key == key; k++) {
                int p = pts->items[k].i;
                double d = frame_dist(&s->f, x, y, s->point_xy[2 * p], s->point_xy[2 * p + 1]);
                if (d > s->snap)
                    continue;
                const char *id = g_array_index(s->points, pipes__point, p).id;
                if (want && strcmp(want, id) == 0)
                    return p;
                if (d < bestd || (d == bestd && (best < 0 || p < best)))
                    bestd = d, best = p;
            }
        }
    return best;
}

static int uf_find(int *p, int x)
{
    while (p[x] != x)
        x = p[x] = p[p[x]];
    return x;
}

/* Groups the free ends (end_node < 0) within snap of each other; returns
 * per end the smallest end index of its group (or -1 for taken ends). */
static int *group_free_ends(const snapper *s, size_t nends)
{
    int *idx = g_new(int, nends ? nends : 1), *parent = g_new(int, nends ? nends : 1);
    size_t nfree = 0;
    for (size_t e = 0; e < nends; e++) {
        parent[e] = (int)e;
        if (s->end_node[e] < 0)
            idx[nfree++] = (int)e;
    }
    cellix c;
    cellix_build(&c, &s->f, s->end_xy, idx, nfree);
    for (size_t k = 0; k < nfree; k++) {
        int e = idx[k], cx, cy;
        double x = s->end_xy[2 * e], y = s->end_xy[2 * e + 1];
        cell_of(&s->f, x, y, &cx, &cy);
        for (int dy = -1; dy <= 1; dy++)
            for (int dx = -1; dx <= 1; dx++) {
                gint64 key = cell_key(cx + dx, cy + dy);
                for (size_t j = cellix_first(&c, key); j < c.n && c.items[j].key == key; j++) {
                    int o = c.items[j].i;
                    if (o != e && frame_dist(&s->f, x, y, s->end_xy[2 * o], s->end_xy[2 * o + 1]) <=
                                      s->snap) {
                        int a = uf_find(parent, e), b = uf_find(parent, o);
                        parent[MAX(a, b)] = MIN(a, b); /* the root is the group's first end */
                    }
                }
            }
    }
    g_free(c.items);
    for (size_t e = 0; e < nends; e++)
        idx[e] = s->end_node[e] < 0 ? uf_find(parent, (int)e) : -1;
    g_free(parent);
    return idx;
}

static int add_points(snapper *s, char **err)
{
    for (guint p = 0; p < s->points->len; p++) {
        const pipes__point *pt = &g_array_index(s->points, pipes__point, p);
        int rc = gis_pipenet_add_node(s->n, pt->id, pt->kind, pt->x, pt->y, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Adds a node "N<k>" (the first k free) at end e. */
static int add_free_node(snapper *s, int e, int *k, char **err)
{
    char id[32];
    do
        g_snprintf(id, sizeof id, "N%d", ++*k);
    while (gis_pipenet_find_node(s->n, id) >= 0);
    return gis_pipenet_add_node(s->n, id, GIS_NODE_JUNCTION, s->end_xy[2 * e], s->end_xy[2 * e + 1],
                                err);
}

static int assign_nodes(snapper *s, size_t nends, char **err)
{
    cellix pts;
    int *all = g_new(int, s->points->len ? s->points->len : 1);
    for (guint p = 0; p < s->points->len; p++)
        all[p] = (int)p;
    cellix_build(&pts, &s->f, s->point_xy, all, s->points->len);
    g_free(all);
    for (size_t e = 0; e < nends; e++) {
        s->end_node[e] = match_point(s, &pts, (int)e); /* point index = node index */
        if (s->end_node[e] >= 0)
            s->point_used[s->end_node[e]] = 1;
    }
    g_free(pts.items);
    int *group = group_free_ends(s, nends), k = 0, rc = 0;
    for (size_t e = 0; !rc && e < nends; e++) {
        if (group[e] < 0)
            continue;
        if (group[e] == (int)e) {
            rc = add_free_node(s, (int)e, &k, err);
            s->end_node[e] = rc;
            rc = MIN(rc, 0);
        } else {
            s->end_node[e] = s->end_node[group[e]];
        }
    }
    g_free(group);
    return rc;
}

static int add_lines(snapper *s, char **err)
{
    for (guint i = 0; i < s->lines->len; i++) {
        const pipes__line *l = &g_array_index(s->lines, pipes__line, i);
        const char *from = g_array_index(s->n->nodes, gis_pipe_node, s->end_node[2 * i]).id;
        const char *to = g_array_index(s->n->nodes, gis_pipe_node, s->end_node[2 * i + 1]).id;
        int rc =
            gis_pipenet_add_link(s->n, l->id, l->kind, from, to, l->length_m, l->diameter_mm,
                                 (const double *)(const void *)l->xy->data, l->xy->len / 2, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static double seg_dist(const gis_pipenet *n, double px, double py, const double *a, double *t)
{
    double ux = (a[2] - a[0]) * n->kx, uy = (a[3] - a[1]) * n->ky;
    double vx = (px - a[0]) * n->kx, vy = (py - a[1]) * n->ky;
    double len2 = ux * ux + uy * uy;
    *t = len2 > 0 ? fmax(0, fmin(1, (ux * vx + uy * vy) / len2)) : 0;
    return hypot(vx - *t * ux, vy - *t * uy);
}

/* Reports free ends that no other line shares, and points no line took. */
static void report_ends(const snapper *s, size_t nends, json_t *report)
{
    size_t np = s->points->len, nn = s->n->nodes->len;
    int *degree = g_new0(int, nn ? nn : 1);
    for (size_t e = 0; e < nends; e++)
        degree[s->end_node[e]]++;
    for (size_t e = 0; e < nends; e++) {
        int node = s->end_node[e];
        if (node < (int)np || degree[node] > 1)
            continue;
        const pipes__line *l = &g_array_index(s->lines, pipes__line, e / 2);
        char *what = g_strdup_printf("%s:%s", l->id, e % 2 ? "end" : "start");
        int touches = pipes__nearest_link_except(s->n, s->end_xy[2 * e], s->end_xy[2 * e + 1],
                                                 s->snap, (int)(e / 2), NULL) >= 0;
        pipes__report_add(report, touches ? "ends_on_pipe" : "dangling_ends", what);
        g_free(what);
    }
    for (size_t p = 0; p < np; p++)
        if (!s->point_used[p])
            pipes__report_add(report, "unmatched_points",
                              g_array_index(s->points, pipes__point, p).id);
    g_free(degree);
}

static void build_frame(snapper *s, size_t nends)
{
    double b[4] = {INFINITY, INFINITY, -INFINITY, -INFINITY};
    for (size_t e = 0; e < nends + s->points->len; e++) {
        const double *p = e < nends ? &s->end_xy[2 * e] : &s->point_xy[2 * (e - nends)];
        b[0] = fmin(b[0], p[0]), b[1] = fmin(b[1], p[1]);
        b[2] = fmax(b[2], p[0]), b[3] = fmax(b[3], p[1]);
    }
    if (!isfinite(b[0]))
        b[0] = b[1] = b[2] = b[3] = 0;
    pipes__lonlat_scale((b[1] + b[3]) / 2, &s->f.kx, &s->f.ky);
    s->f.x0 = b[0], s->f.y0 = b[1];
    s->f.cell = s->snap;
}

static void fill_coords(snapper *s)
{
    for (guint i = 0; i < s->lines->len; i++) {
        const GArray *xy = g_array_index(s->lines, pipes__line, i).xy;
        const double *v = (const double *)(const void *)xy->data;
        memcpy(&s->end_xy[4 * i], v, 2 * sizeof(double));
        memcpy(&s->end_xy[4 * i + 2], &v[xy->len - 2], 2 * sizeof(double));
    }
    for (guint p = 0; p < s->points->len; p++) {
        const pipes__point *pt = &g_array_index(s->points, pipes__point, p);
        s->point_xy[2 * p] = pt->x, s->point_xy[2 * p + 1] = pt->y;
    }
}

int pipes__build(gis_pipenet *n, GArray *lines, GArray *points, double snap_m, json_t *report,
                 char **err)
{
    size_t nends = 2 * (size_t)lines->len;
    snapper s = {.n = n, .lines = lines, .points = points, .snap = snap_m > 0 ? snap_m : 0.5};
    s.end_xy = g_new(double, 2 * nends + 1);
    s.point_xy = g_new(double, 2 * (size_t)points->len + 1);
    s.end_node = g_new(int, nends + 1);
    s.point_used = g_new0(int, points->len + 1);
    fill_coords(&s);
    build_frame(&s, nends);
    /* Lengths computed by the builder before finish are in metres too. */
    n->kx = s.f.kx, n->ky = s.f.ky;
    int rc = add_points(&s, err);
    if (!rc)
        rc = assign_nodes(&s, nends, err);
    if (!rc)
        rc = add_lines(&s, err);
    if (!rc) {
        pipes__grid(n);
        report_ends(&s, nends, report);
    }
    g_free(s.end_xy), g_free(s.point_xy), g_free(s.end_node), g_free(s.point_used);
    return rc;
}

/* ---- reading sources ---- */

static OGRSpatialReferenceH layer_srs(OGRLayerH l, const char *source_srs, const char *what,
                                      char **err)
{
    OGRSpatialReferenceH declared = OGR_L_GetSpatialRef(l);
    OGRSpatialReferenceH srs = declared ? OSRClone(declared) : NULL;
    if (!srs && source_srs) {
        srs = OSRNewSpatialReference(NULL);
        if (OSRSetFromUserInput(srs, source_srs) != OGRERR_NONE) {
            pipes__error(err, CORE_EINVAL, "--source-srs %s: not a CRS PROJ knows", source_srs);
            OSRDestroySpatialReference(srs);
            return NULL;
        }
    }
    if (!srs) {
        pipes__error(err, CORE_EINVAL, "%s: the layer declares no CRS: give --source-srs", what);
        return NULL;
    }
    OSRSetAxisMappingStrategy(srs, OAMS_TRADITIONAL_GIS_ORDER);
    return srs;
}

int pipes__source_open(pipes__source *s, const char *spec, const char *source_srs, const char *what,
                       char **err)
{
    memset(s, 0, sizeof *s);
    GDALAllRegister();
    char *source = g_strdup(spec), *bar = strrchr(source, '|');
    const char *layer = NULL;
    if (bar)
        *bar = '\0', layer = bar + 1;
    s->ds = GDALOpenEx(source, GDAL_OF_VECTOR | GDAL_OF_READONLY, NULL, NULL, NULL);
    s->layer = !s->ds  ? NULL
               : layer ? GDALDatasetGetLayerByName(s->ds, layer)
                       : GDALDatasetGetLayer(s->ds, 0);
    int rc = 0;
    if (!s->layer)
        rc = pipes__error(err, CORE_EINVAL, "%s %s: cannot read it: %s", what, spec,
                          s->ds ? "no such layer" : CPLGetLastErrorMsg());
    g_free(source);
    OGRSpatialReferenceH srs = rc ? NULL : layer_srs(s->layer, source_srs, what, err);
    if (!rc && !srs)
        rc = CORE_EINVAL;
    if (srs) {
        OGRSpatialReferenceH wgs84 = OSRNewSpatialReference(NULL);
        OSRImportFromEPSG(wgs84, 4326);
        OSRSetAxisMappingStrategy(wgs84, OAMS_TRADITIONAL_GIS_ORDER);
        s->ct = OCTNewCoordinateTransformation(srs, wgs84);
        if (!s->ct)
            rc = pipes__error(err, CORE_EINVAL, "%s %s: no transformation to WGS84: %s", what, spec,
                              CPLGetLastErrorMsg());
        OSRDestroySpatialReference(wgs84);
        OSRDestroySpatialReference(srs);
    }
    if (rc)
        pipes__source_close(s);
    return rc;
}

void pipes__source_close(pipes__source *s)
{
    if (s->ct)
        OCTDestroyCoordinateTransformation(s->ct);
    if (s->ds)
        GDALClose(s->ds);
    memset(s, 0, sizeof *s);
}

/* The first of the names (NULL-terminated) that is a field of f, or -1. */
static int field_of(OGRFeatureH f, const char *const *names)
{
    OGRFeatureDefnH d = OGR_F_GetDefnRef(f);
    for (; *names; names++) {
        int i = OGR_FD_GetFieldIndex(d, *names);
        if (i >= 0 && OGR_F_IsFieldSetAndNotNull(f, i))
            return i;
    }
    return -1;
}

static const char *field_str(OGRFeatureH f, const char *const *names)
{
    int i = field_of(f, names);
    return i >= 0 ? OGR_F_GetFieldAsString(f, i) : NULL;
}

static double field_num(OGRFeatureH f, const char *const *names, double dflt)
{
    int i = field_of(f, names);
    return i >= 0 ? OGR_F_GetFieldAsDouble(f, i) : dflt;
}

#define NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})

/* The feature's id field, else prefix + its FID (new string). */
static char *feature_id(OGRFeatureH f, const char *const *names, const char *prefix)
{
    const char *id = field_str(f, names);
    return id && *id ? g_strdup(id)
                     : g_strdup_printf("%s%" G_GINT64_FORMAT, prefix, (gint64)OGR_F_GetFID(f));
}

/* The feature's geometry in WGS84 (new), checked: NULL with *why otherwise. */
static OGRGeometryH wgs84_geometry(const pipes__source *s, OGRFeatureH f, const char **why)
{
    OGRGeometryH g = OGR_F_GetGeometryRef(f);
    if (!g || OGR_G_IsEmpty(g)) {
        *why = "has no geometry";
        return NULL;
    }
    g = OGR_G_Clone(g);
    if (OGR_G_Transform(g, s->ct) != OGRERR_NONE) {
        OGR_G_DestroyGeometry(g);
        *why = "cannot be reprojected (coordinates not finite or out of the CRS's area)";
        return NULL;
    }
    return g;
}

/* Copies a line part's vertices; 0 when one is not a finite lon/lat. */
static int part_xy(OGRGeometryH part, GArray *xy)
{
    int np = OGR_G_GetPointCount(part);
    for (int k = 0; k < np; k++) {
        double p[2] = {OGR_G_GetX(part, k), OGR_G_GetY(part, k)};
        if (!gis_lonlat_valid(p[0], p[1]))
            return 0;
        g_array_append_vals(xy, p, 2);
    }
    return 1;
}

static gis_link_kind line_kind(OGRFeatureH f)
{
    const char *k = field_str(f, NAMES("kind", "type"));
    if (k && g_ascii_strcasecmp(k, "pump") == 0)
        return GIS_LINK_PUMP;
    if (k && g_ascii_strcasecmp(k, "valve") == 0)
        return GIS_LINK_VALVE;
    return GIS_LINK_PIPE;
}

static void line_fields(pipes__line *l, OGRFeatureH f)
{
    l->kind = line_kind(f);
    double d = field_num(f, NAMES("diameter"), NAN);
    l->diameter_mm = isfinite(d) ? (d < 10 ? d * 1000 : d) : field_num(f, NAMES("diameter_mm"), 0);
    l->length_m = field_num(f, NAMES("length", "length_m"), 0);
    const char *from = field_str(f, NAMES("from", "start_node_name", "node1"));
    const char *to = field_str(f, NAMES("to", "end_node_name", "node2"));
    l->from = g_strdup(from), l->to = g_strdup(to);
}

/* Adds one pipes__line per part of a (multi)line feature. */
static int take_line(GArray *lines, OGRFeatureH f, OGRGeometryH g, const char *id, const char **why)
{
    OGRwkbGeometryType t = wkbFlatten(OGR_G_GetGeometryType(g));
    int parts = t == wkbMultiLineString ? OGR_G_GetGeometryCount(g) : 1;
    if (t != wkbLineString && t != wkbMultiLineString) {
        *why = "is not a line";
        return CORE_EINVAL;
    }
    for (int p = 0; p < parts; p++) {
        OGRGeometryH part = t == wkbLineString ? g : OGR_G_GetGeometryRef(g, p);
        pipes__line l = {.xy = g_array_new(FALSE, FALSE, sizeof(double))};
        l.id = p == 0 ? g_strdup(id) : g_strdup_printf("%s.%d", id, p + 1);
        line_fields(&l, f);
        if (parts > 1)
            l.length_m = 0; /* a feature's length is not its parts' */
        g_array_append_val(lines, l);
        if (!part_xy(part, l.xy)) {
            *why = "has a coordinate that is not a finite longitude/latitude after reprojection"
                   " (wrong CRS?)";
            return CORE_EINVAL;
        }
        if (l.xy->len < 4) {
            *why = "has fewer than two vertices";
            return CORE_EINVAL;
        }
    }
    return 0;
}

static int read_lines(const char *spec, const char *srs, GArray *lines, char **err)
{
    pipes__source s;
    int rc = pipes__source_open(&s, spec, srs, "--pipes", err);
    OGRFeatureH f;
    while (!rc && (f = OGR_L_GetNextFeature(s.layer))) {
        const char *why = NULL;
        char *id = feature_id(f, NAMES("id", "name", "fid"), "P");
        OGRGeometryH g = wgs84_geometry(&s, f, &why);
        if (g)
            rc = take_line(lines, f, g, id, &why);
        if (!g || rc)
            rc = pipes__error(err, CORE_EINVAL, "--pipes %s: feature %s %s", spec, id, why);
        if (g)
            OGR_G_DestroyGeometry(g);
        g_free(id);
        OGR_F_Destroy(f);
    }
    pipes__source_close(&s);
    return rc;
}

/* The feature's point in WGS84; 0 with *why when it has none. */
static int feature_point(const pipes__source *s, OGRFeatureH f, double *x, double *y,
                         const char **why)
{
    OGRGeometryH g = wgs84_geometry(s, f, why);
    if (!g)
        return 0;
    int ok = wkbFlatten(OGR_G_GetGeometryType(g)) == wkbPoint;
    if (ok)
        *x = OGR_G_GetX(g, 0), *y = OGR_G_GetY(g, 0);
    OGR_G_DestroyGeometry(g);
    if (!ok)
        *why = "is not a point";
    else if (!gis_lonlat_valid(*x, *y))
        *why = "is not a finite longitude/latitude after reprojection (wrong CRS?)", ok = 0;
    return ok;
}

static gis_node_kind point_kind(OGRFeatureH f, gis_node_kind dflt)
{
    const char *k = field_str(f, NAMES("kind", "type"));
    if (dflt == GIS_NODE_JUNCTION)
        return dflt;
    return k && g_ascii_strcasecmp(k, "tank") == 0 ? GIS_NODE_TANK : GIS_NODE_RESERVOIR;
}

static int read_points(const char *spec, const char *srs, const char *what, gis_node_kind kind,
                       GArray *points, char **err)
{
    if (!spec)
        return 0;
    pipes__source s;
    int rc = pipes__source_open(&s, spec, srs, what, err);
    OGRFeatureH f;
    while (!rc && (f = OGR_L_GetNextFeature(s.layer))) {
        pipes__point p = {feature_id(f, NAMES("id", "name"), what[2] == 'j' ? "J" : "S"),
                          point_kind(f, kind), 0, 0};
        const char *why = NULL;
        if (!feature_point(&s, f, &p.x, &p.y, &why))
            rc = pipes__error(err, CORE_EINVAL, "%s %s: feature %s %s", what, spec, p.id, why);
        g_array_append_val(points, p);
        OGR_F_Destroy(f);
    }
    pipes__source_close(&s);
    return rc;
}

/* ---- valves and customers ---- */

/* Where the nearest point of link l to (x, y) lies: metres from its from end. */
static double measure_along(const gis_pipenet *n, const gis_pipe_link *l, double x, double y)
{
    double best = INFINITY, at = 0, cum = 0;
    for (size_t v = 1; v < l->nvert; v++) {
        const double *a = &l->xy[2 * v - 2];
        double t, d = seg_dist(n, x, y, a, &t);
        double len = gis_pipenet_distance(n, a[0], a[1], a[2], a[3]);
        if (d < best)
            best = d, at = cum + t * len;
        cum += len;
    }
    return at;
}

static int place_valve(gis_pipenet *n, OGRFeatureH f, double x, double y, const char *id,
                       json_t *report, char **err)
{
    const char *link = field_str(f, NAMES("link")), *node = field_str(f, NAMES("node"));
    int st = gis_valve_state_parse(field_str(f, NAMES("state", "status")));
    gis_valve_state state = st < 0 ? GIS_VALVE_OPEN : (gis_valve_state)st;
    int li = gis_pipenet_find_link(n, link), ni = gis_pipenet_find_node(n, node);
    if (li >= 0 && ni >= 0) {
        const gis_pipe_link *l = gis_pipenet_link(n, (size_t)li);
        if (l->from == ni || l->to == ni)
            return gis_pipenet_add_valve(n, id, link, node, state, err);
    }
    li = gis_pipenet_nearest_link(n, x, y, VALVE_MAX_M, NULL);
    if (li < 0) {
        pipes__report_add(report, "unplaced_valves", id ? id : "");
        return 0;
    }
    const gis_pipe_link *l = gis_pipenet_link(n, (size_t)li);
    int near_from = measure_along(n, l, x, y) <= pipes__geom_length(n, l) / 2;
    const char *end = gis_pipenet_node(n, (size_t)(near_from ? l->from : l->to))->id;
    return gis_pipenet_add_valve(n, id, l->id, end, state, err);
}

static int read_valves(gis_pipenet *n, const char *spec, const char *srs, json_t *report,
                       char **err)
{
    if (!spec)
        return 0;
    pipes__source s;
    int rc = pipes__source_open(&s, spec, srs, "--valves", err);
    OGRFeatureH f;
    while (!rc && (f = OGR_L_GetNextFeature(s.layer))) {
        const char *id = field_str(f, NAMES("id", "name")), *why = NULL;
        double x, y;
        if (!feature_point(&s, f, &x, &y, &why))
            rc = pipes__error(err, CORE_EINVAL, "--valves %s: feature %" G_GINT64_FORMAT " %s",
                              spec, (gint64)OGR_F_GetFID(f), why);
        else
            rc = MIN(place_valve(n, f, x, y, id, report, err), 0);
        OGR_F_Destroy(f);
    }
    pipes__source_close(&s);
    return rc;
}

static int take_customer(gis_pipenet *n, OGRFeatureH f, double x, double y, json_t *report,
                         char **err)
{
    char *id = feature_id(f, NAMES("id", "fid"), "C");
    const char *link = field_str(f, NAMES("link")), *node = field_str(f, NAMES("node"));
    if (!link && !node) {
        double d = INFINITY;
        int li = pipes__nearest_link_any(n, x, y, &d);
        if (li >= 0)
            link = gis_pipenet_link(n, (size_t)li)->id;
        if (d > CUSTOMER_MAX_M)
            pipes__report_add(report, "far_customers", id);
    }
    int rc = gis_pipenet_add_customer(n, id, field_str(f, NAMES("name")),
                                      field_str(f, NAMES("kind", "type")),
                                      (int)field_num(f, NAMES("units"), 1), x, y, link, node, err);
    g_free(id);
    return MIN(rc, 0);
}

int pipes__read_customers(gis_pipenet *n, const char *spec, const char *srs, json_t *report,
                          char **err)
{
    if (!spec)
        return 0;
    if (!n->finished) { /* the grid in metres, for the nearest pipe */
        double b[4];
        gis_pipenet_bbox(n, b);
        pipes__lonlat_scale((b[1] + b[3]) / 2, &n->kx, &n->ky);
        pipes__grid(n);
    }
    pipes__source s;
    int rc = pipes__source_open(&s, spec, srs, "--customers", err);
    OGRFeatureH f;
    while (!rc && (f = OGR_L_GetNextFeature(s.layer))) {
        const char *why = NULL;
        double x, y;
        if (!feature_point(&s, f, &x, &y, &why))
            rc = pipes__error(err, CORE_EINVAL, "--customers %s: feature %" G_GINT64_FORMAT " %s",
                              spec, (gint64)OGR_F_GetFID(f), why);
        else
            rc = take_customer(n, f, x, y, report, err);
        OGR_F_Destroy(f);
    }
    pipes__source_close(&s);
    return rc;
}

/* ---- the whole import ---- */

int gis_pipenet_read_layers(const gis_pipe_layers *o, const char *name, const char *utility,
                            gis_pipenet **out, json_t **report, char **err)
{
    *out = NULL;
    *report = NULL;
    if (!o->pipes)
        return pipes__error(err, CORE_EINVAL, "no pipes layer given");
    double snap = o->snap_m > 0 ? o->snap_m : 0.5;
    GArray *lines = pipes__lines_new(), *points = pipes__points_new();
    json_t *rep = json_pack("{sf}", "snap_m", snap);
    gis_pipenet *n = gis_pipenet_new(name, utility);
    int rc = read_lines(o->pipes, o->source_srs, lines, err);
    if (!rc)
        rc =
            read_points(o->junctions, o->source_srs, "--junctions", GIS_NODE_JUNCTION, points, err);
    if (!rc)
        rc = read_points(o->sources, o->source_srs, "--sources", GIS_NODE_RESERVOIR, points, err);
    if (!rc)
        rc = pipes__build(n, lines, points, snap, rep, err);
    if (!rc)
        rc = read_valves(n, o->valves, o->source_srs, rep, err);
    if (!rc)
        rc = pipes__read_customers(n, o->customers, o->source_srs, rep, err);
    g_array_free(lines, TRUE);
    g_array_free(points, TRUE);
    if (rc) {
        gis_pipenet_free(n);
        json_decref(rep);
        return rc;
    }
    *out = n;
    *report = rep;
    return 0;
}
