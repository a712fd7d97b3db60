/*
 * pipes_io.c — pipe networks in a city package: DIR/networks/NAME.gpkg and
 * NAME.json (docs/CITY.md), and reprojecting a network to WGS84.
 *
 * Saving writes a complete GeoPackage under a temporary name in the same
 * directory and renames it over the old one, so a failed import leaves the
 * previous network in place; the JSON beside it is replaced the same way.
 * Elements refer to each other by id in the file (a link's `from`/`to`, a
 * valve's `link`/`node`), so a file edited in a desktop GIS stays readable.
 *
 * Loading reads the four layers with the OGR C API (no GEOS: a line's
 * vertices are copied straight out of OGR) and rebuilds the network with
 * the gis_pipenet_add_* builder, then finishes it.
 *
 * Reprojection goes through PROJ with lon/lat (x = longitude) order on both
 * sides (proj_normalize_for_visualization), like gis/proj.c, and refuses
 * any coordinate PROJ cannot transform into a finite lon/lat and back.
 *
 * Any thread may call these on a network it owns; GDAL and PROJ state is
 * per call.
 */
#include "pipes_internal.h"
#include "internal.h"

#include <proj.h>

#include <errno.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

/* ---- saving ---- */

typedef struct {
    const char *name;
    OGRFieldType type;
} field_def;

static const field_def node_fields[] = {{"id", OFTString}, {"kind", OFTString}, {NULL, 0}};
static const field_def link_fields[] = {
    {"id", OFTString}, {"kind", OFTString},   {"from", OFTString},
    {"to", OFTString}, {"length_m", OFTReal}, {"diameter_mm", OFTReal},
    {NULL, 0}};
static const field_def valve_fields[] = {
    {"id", OFTString}, {"link", OFTString}, {"node", OFTString}, {"state", OFTString}, {NULL, 0}};
static const field_def customer_fields[] = {{"id", OFTString},
                                            {"name", OFTString},
                                            {"kind", OFTString},
                                            {"units", OFTInteger},
                                            {"link", OFTString},
                                            {"node", OFTString},
                                            {NULL, 0}};

static OGRLayerH create_layer(GDALDatasetH ds, OGRSpatialReferenceH wgs84, const char *name,
                              OGRwkbGeometryType type, const field_def *fields)
{
    char **opts = CSLSetNameValue(NULL, "SPATIAL_INDEX", "YES");
    OGRLayerH l = GDALDatasetCreateLayer(ds, name, wgs84, type, opts);
    CSLDestroy(opts);
    for (const field_def *f = fields; l && f->name; f++) {
        OGRFieldDefnH d = OGR_Fld_Create(f->name, f->type);
        if (OGR_L_CreateField(l, d, TRUE) != OGRERR_NONE)
            l = NULL;
        OGR_Fld_Destroy(d);
    }
    return l;
}

/* Adds f (with geometry g, taken) to l and frees f. */
static int put(OGRLayerH l, OGRFeatureH f, OGRGeometryH g)
{
    OGR_F_SetGeometryDirectly(f, g);
    int rc = OGR_L_CreateFeature(l, f) == OGRERR_NONE ? 0 : CORE_EIO;
    OGR_F_Destroy(f);
    return rc;
}

static OGRGeometryH point(double x, double y)
{
    OGRGeometryH g = OGR_G_CreateGeometry(wkbPoint);
    OGR_G_SetPoint_2D(g, 0, x, y);
    return g;
}

static const char *node_id(const gis_pipenet *n, int i)
{
    return i >= 0 ? g_array_index(n->nodes, gis_pipe_node, i).id : NULL;
}

static const char *link_id(const gis_pipenet *n, int i)
{
    return i >= 0 ? g_array_index(n->links, gis_pipe_link, i).id : NULL;
}

static int write_nodes(const gis_pipenet *n, OGRLayerH l)
{
    int rc = 0;
    for (guint i = 0; !rc && i < n->nodes->len; i++) {
        const gis_pipe_node *d = &g_array_index(n->nodes, gis_pipe_node, i);
        OGRFeatureH f = OGR_F_Create(OGR_L_GetLayerDefn(l));
        OGR_F_SetFieldString(f, 0, d->id);
        OGR_F_SetFieldString(f, 1, gis_node_kind_name(d->kind));
        rc = put(l, f, point(d->x, d->y));
    }
    return rc;
}

static int write_links(const gis_pipenet *n, OGRLayerH l)
{
    int rc = 0;
    for (guint i = 0; !rc && i < n->links->len; i++) {
        const gis_pipe_link *k = &g_array_index(n->links, gis_pipe_link, i);
        if (k->removed)
            continue;
        OGRFeatureH f = OGR_F_Create(OGR_L_GetLayerDefn(l));
        OGR_F_SetFieldString(f, 0, k->id);
        OGR_F_SetFieldString(f, 1, gis_link_kind_name(k->kind));
        OGR_F_SetFieldString(f, 2, node_id(n, k->from));
        OGR_F_SetFieldString(f, 3, node_id(n, k->to));
        OGR_F_SetFieldDouble(f, 4, k->length_m);
        OGR_F_SetFieldDouble(f, 5, k->diameter_mm);
        OGRGeometryH g = OGR_G_CreateGeometry(wkbLineString);
        OGR_G_SetPointCount(g, (int)k->nvert);
        for (size_t v = 0; v < k->nvert; v++)
            OGR_G_SetPoint_2D(g, (int)v, k->xy[2 * v], k->xy[2 * v + 1]);
        rc = put(l, f, g);
    }
    return rc;
}

static int write_valves(const gis_pipenet *n, OGRLayerH l)
{
    int rc = 0;
    for (guint i = 0; !rc && i < n->valves->len; i++) {
        const gis_pipe_valve *v = &g_array_index(n->valves, gis_pipe_valve, i);
        if (v->removed)
            continue;
        OGRFeatureH f = OGR_F_Create(OGR_L_GetLayerDefn(l));
        OGR_F_SetFieldString(f, 0, v->id);
        OGR_F_SetFieldString(f, 1, link_id(n, v->link));
        OGR_F_SetFieldString(f, 2, node_id(n, v->node));
        OGR_F_SetFieldString(f, 3, gis_valve_state_name(v->state));
        rc = put(l, f, point(v->x, v->y));
    }
    return rc;
}

static int write_customers(const gis_pipenet *n, OGRLayerH l)
{
    int rc = 0;
    for (guint i = 0; !rc && i < n->customers->len; i++) {
        const gis_pipe_customer *c = &g_array_index(n->customers, gis_pipe_customer, i);
        OGRFeatureH f = OGR_F_Create(OGR_L_GetLayerDefn(l));
        OGR_F_SetFieldString(f, 0, c->id);
        OGR_F_SetFieldString(f, 1, c->name);
        OGR_F_SetFieldString(f, 2, c->kind);
        OGR_F_SetFieldInteger(f, 3, c->units);
        if (c->link >= 0)
            OGR_F_SetFieldString(f, 4, link_id(n, c->link));
        if (c->node >= 0)
            OGR_F_SetFieldString(f, 5, node_id(n, c->node));
        rc = put(l, f, point(c->x, c->y));
    }
    return rc;
}

static OGRSpatialReferenceH wgs84_new(void)
{
    OGRSpatialReferenceH s = OSRNewSpatialReference(NULL);
    OSRImportFromEPSG(s, 4326);
    OSRSetAxisMappingStrategy(s, OAMS_TRADITIONAL_GIS_ORDER);
    return s;
}

static int write_gpkg(const gis_pipenet *n, const char *path, char **err)
{
    GDALAllRegister();
    g_unlink(path);
    GDALDatasetH ds = GDALCreate(GDALGetDriverByName("GPKG"), path, 0, 0, 0, GDT_Unknown, NULL);
    if (!ds)
        return pipes__error(err, CORE_EIO, "cannot create %s: %s", path, CPLGetLastErrorMsg());
    OGRSpatialReferenceH wgs84 = wgs84_new();
    OGRLayerH ln = create_layer(ds, wgs84, "nodes", wkbPoint, node_fields);
    OGRLayerH ll = create_layer(ds, wgs84, "links", wkbLineString, link_fields);
    OGRLayerH lv = create_layer(ds, wgs84, "valves", wkbPoint, valve_fields);
    OGRLayerH lc = create_layer(ds, wgs84, "customers", wkbPoint, customer_fields);
    OSRDestroySpatialReference(wgs84);
    int rc = ln && ll && lv && lc ? 0 : CORE_EIO;
    if (!rc && GDALDatasetStartTransaction(ds, FALSE) != OGRERR_NONE)
        rc = CORE_EIO;
    if (!rc)
        rc = write_nodes(n, ln);
    if (!rc)
        rc = write_links(n, ll);
    if (!rc)
        rc = write_valves(n, lv);
    if (!rc)
        rc = write_customers(n, lc);
    if (!rc && GDALDatasetCommitTransaction(ds) != OGRERR_NONE)
        rc = CORE_EIO;
    if (rc)
        pipes__error(err, rc, "cannot write %s: %s", path, CPLGetLastErrorMsg());
    GDALClose(ds);
    if (rc)
        g_unlink(path);
    return rc;
}

static json_t *metadata(const gis_pipenet *n, const json_t *report)
{
    size_t links = 0, valves = 0;
    for (guint i = 0; i < n->links->len; i++)
        links += !g_array_index(n->links, gis_pipe_link, i).removed;
    for (guint i = 0; i < n->valves->len; i++)
        valves += !g_array_index(n->valves, gis_pipe_valve, i).removed;
    double b[4];
    gis_pipenet_bbox(n, b);
    json_t *counts =
        json_pack("{sI sI sI sI}", "nodes", (json_int_t)n->nodes->len, "links", (json_int_t)links,
                  "valves", (json_int_t)valves, "customers", (json_int_t)n->customers->len);
    if (n->finished)
        json_object_set_new(counts, "segments", json_integer((json_int_t)n->nseg));
    return json_pack("{ss ss so s[ffff] sO}", "name", n->name, "utility", n->utility, "counts",
                     counts, "bbox", b[0], b[1], b[2], b[3], "report",
                     report ? (json_t *)report : json_null());
}

static int write_json(const gis_pipenet *n, const json_t *report, const char *path, char **err)
{
    char *tmp = g_strconcat(path, ".tmp", NULL);
    json_t *meta = metadata(n, report);
    int rc = 0;
    if (json_dump_file(meta, tmp, JSON_INDENT(2) | JSON_SORT_KEYS) != 0)
        rc = pipes__error(err, CORE_EIO, "cannot write %s", tmp);
    else if (g_rename(tmp, path) != 0)
        rc = pipes__error(err, CORE_EIO, "cannot rename %s: %s", tmp, g_strerror(errno));
    if (rc)
        g_unlink(tmp);
    json_decref(meta);
    g_free(tmp);
    return rc;
}

/* A network name becomes a file name: letters, digits, '-', '_' only. */
static int name_ok(const char *name)
{
    if (!name || !*name || strlen(name) > 64)
        return 0;
    for (const char *s = name; *s; s++)
        if (!g_ascii_isalnum(*s) && *s != '-' && *s != '_')
            return 0;
    return 1;
}

int gis_pipenet_save(const gis_pipenet *n, const char *city_dir, const json_t *report, char **err)
{
    if (!name_ok(n->name))
        return pipes__error(err, CORE_EINVAL,
                            "network name '%s': use 1-64 letters, digits, '-' or '_'", n->name);
    char *dir = g_build_filename(city_dir, "networks", NULL);
    char *base = g_strconcat(n->name, ".gpkg", NULL), *tmpbase = g_strconcat(".", base, NULL);
    char *path = g_build_filename(dir, base, NULL), *tmp = g_build_filename(dir, tmpbase, NULL);
    char *json = g_strdup_printf("%s/%s.json", dir, n->name);
    int rc = 0;
    if (g_mkdir_with_parents(dir, 0755) != 0)
        rc = pipes__error(err, CORE_EIO, "cannot create %s: %s", dir, g_strerror(errno));
    if (!rc)
        rc = write_gpkg(n, tmp, err);
    if (!rc && g_rename(tmp, path) != 0) {
        rc =
            pipes__error(err, CORE_EIO, "cannot rename %s to %s: %s", tmp, path, g_strerror(errno));
        g_unlink(tmp);
    }
    if (!rc)
        rc = write_json(n, report, json, err);
    g_free(dir), g_free(base), g_free(tmpbase), g_free(path), g_free(tmp), g_free(json);
    return rc;
}

/* ---- loading ---- */

typedef struct {
    int f[6]; /* field indices in the order of the layer's field_def */
} field_ix;

static OGRLayerH open_layer(GDALDatasetH ds, const char *name, const field_def *fields,
                            field_ix *ix, const char *path, char **err)
{
    OGRLayerH l = GDALDatasetGetLayerByName(ds, name);
    if (!l) {
        pipes__error(err, CORE_EINVAL, "%s: no layer %s (not a citycmd network file)", path, name);
        return NULL;
    }
    OGRFeatureDefnH d = OGR_L_GetLayerDefn(l);
    for (int i = 0; fields[i].name; i++)
        ix->f[i] = OGR_FD_GetFieldIndex(d, fields[i].name);
    OGR_L_ResetReading(l);
    return l;
}

static const char *field_str(OGRFeatureH f, int i)
{
    return i >= 0 && OGR_F_IsFieldSetAndNotNull(f, i) ? OGR_F_GetFieldAsString(f, i) : NULL;
}

static double field_num(OGRFeatureH f, int i, double dflt)
{
    return i >= 0 && OGR_F_IsFieldSetAndNotNull(f, i) ? OGR_F_GetFieldAsDouble(f, i) : dflt;
}

static int kind_index(const char *s, const char *(*name)(int), int count)
{
    for (int k = 0; s && k < count; k++)
        if (strcmp(s, name(k)) == 0)
            return k;
    return 0;
}

static const char *node_kind_name_i(int k)
{
    return gis_node_kind_name((gis_node_kind)k);
}
static const char *link_kind_name_i(int k)
{
    return gis_link_kind_name((gis_link_kind)k);
}

/* The point of a point geometry; 0 when there is none. */
static int point_xy(OGRFeatureH f, double *x, double *y)
{
    OGRGeometryH g = OGR_F_GetGeometryRef(f);
    if (!g || OGR_G_IsEmpty(g) || wkbFlatten(OGR_G_GetGeometryType(g)) != wkbPoint)
        return 0;
    *x = OGR_G_GetX(g, 0), *y = OGR_G_GetY(g, 0);
    return 1;
}

static int load_nodes(gis_pipenet *n, GDALDatasetH ds, const char *path, char **err)
{
    field_ix ix;
    OGRLayerH l = open_layer(ds, "nodes", node_fields, &ix, path, err);
    if (!l)
        return CORE_EINVAL;
    OGRFeatureH f;
    int rc = 0;
    while (!rc && (f = OGR_L_GetNextFeature(l))) {
        double x = NAN, y = NAN;
        point_xy(f, &x, &y);
        int kind = kind_index(field_str(f, ix.f[1]), node_kind_name_i, 3);
        rc = MIN(gis_pipenet_add_node(n, field_str(f, ix.f[0]), kind, x, y, err), 0);
        OGR_F_Destroy(f);
    }
    return rc;
}

static int load_links(gis_pipenet *n, GDALDatasetH ds, const char *path, char **err)
{
    field_ix ix;
    OGRLayerH l = open_layer(ds, "links", link_fields, &ix, path, err);
    if (!l)
        return CORE_EINVAL;
    GArray *xy = g_array_new(FALSE, FALSE, sizeof(double));
    OGRFeatureH f;
    int rc = 0;
    while (!rc && (f = OGR_L_GetNextFeature(l))) {
        OGRGeometryH g = OGR_F_GetGeometryRef(f);
        int np =
            g && wkbFlatten(OGR_G_GetGeometryType(g)) == wkbLineString ? OGR_G_GetPointCount(g) : 0;
        g_array_set_size(xy, 2 * (guint)MAX(np, 0));
        if (np > 0)
            OGR_G_GetPoints(g, xy->data, 2 * sizeof(double), (double *)(void *)xy->data + 1,
                            2 * sizeof(double), NULL, 0);
        int kind = kind_index(field_str(f, ix.f[1]), link_kind_name_i, 3);
        rc = MIN(gis_pipenet_add_link(
                     n, field_str(f, ix.f[0]), kind, field_str(f, ix.f[2]), field_str(f, ix.f[3]),
                     field_num(f, ix.f[4], 0), field_num(f, ix.f[5], 0),
                     np >= 2 ? (double *)(void *)xy->data : NULL, (size_t)MAX(np, 0), err),
                 0);
        OGR_F_Destroy(f);
    }
    g_array_free(xy, TRUE);
    return rc;
}

static int load_valves(gis_pipenet *n, GDALDatasetH ds, const char *path, char **err)
{
    field_ix ix;
    OGRLayerH l = open_layer(ds, "valves", valve_fields, &ix, path, err);
    if (!l)
        return CORE_EINVAL;
    OGRFeatureH f;
    int rc = 0;
    while (!rc && (f = OGR_L_GetNextFeature(l))) {
        int st = gis_valve_state_parse(field_str(f, ix.f[3]));
        rc = MIN(gis_pipenet_add_valve(n, field_str(f, ix.f[0]), field_str(f, ix.f[1]),
                                       field_str(f, ix.f[2]), st < 0 ? GIS_VALVE_OPEN : st, err),
                 0);
        OGR_F_Destroy(f);
    }
    return rc;
}

static int load_customers(gis_pipenet *n, GDALDatasetH ds, const char *path, char **err)
{
    field_ix ix;
    OGRLayerH l = open_layer(ds, "customers", customer_fields, &ix, path, err);
    if (!l)
        return CORE_EINVAL;
    OGRFeatureH f;
    int rc = 0;
    while (!rc && (f = OGR_L_GetNextFeature(l))) {
        double x = NAN, y = NAN;
        point_xy(f, &x, &y);
        rc = MIN(gis_pipenet_add_customer(n, field_str(f, ix.f[0]), field_str(f, ix.f[1]),
                                          field_str(f, ix.f[2]), (int)field_num(f, ix.f[3], 1), x,
                                          y, field_str(f, ix.f[4]), field_str(f, ix.f[5]), err),
                 0);
        OGR_F_Destroy(f);
    }
    return rc;
}

/* NAME.json beside the file gives the utility; the file name gives the name. */
static char *stored_utility(const char *gpkg_path)
{
    char *stem =
        g_strndup(gpkg_path,
                  strlen(gpkg_path) - (g_str_has_suffix(gpkg_path, ".gpkg") ? strlen(".gpkg") : 0));
    char *json_path = g_strconcat(stem, ".json", NULL);
    json_t *meta = json_load_file(json_path, 0, NULL);
    const char *u = json_string_value(json_object_get(meta, "utility"));
    char *out = g_strdup(u ? u : "water");
    json_decref(meta);
    g_free(json_path);
    g_free(stem);
    return out;
}

int gis_pipenet_load(const char *gpkg_path, gis_pipenet **out, char **err)
{
    *out = NULL;
    GDALAllRegister();
    GDALDatasetH ds = GDALOpenEx(gpkg_path, GDAL_OF_VECTOR | GDAL_OF_READONLY, NULL, NULL, NULL);
    if (!ds)
        return pipes__error(err, CORE_ENOTFOUND, "cannot open network %s: %s", gpkg_path,
                            CPLGetLastErrorMsg());
    char *base = g_path_get_basename(gpkg_path), *dot = strrchr(base, '.');
    if (dot)
        *dot = '\0';
    char *utility = stored_utility(gpkg_path);
    gis_pipenet *n = gis_pipenet_new(base, utility);
    g_free(base);
    g_free(utility);
    int rc = load_nodes(n, ds, gpkg_path, err);
    if (!rc)
        rc = load_links(n, ds, gpkg_path, err);
    if (!rc)
        rc = load_valves(n, ds, gpkg_path, err);
    if (!rc)
        rc = load_customers(n, ds, gpkg_path, err);
    GDALClose(ds);
    if (!rc)
        rc = gis_pipenet_finish(n, 1, err);
    if (rc) {
        gis_pipenet_free(n);
        return rc;
    }
    *out = n;
    return 0;
}

static gint compare_str(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **gis_pipenet_list(const char *city_dir)
{
    char *dir = g_build_filename(city_dir, "networks", NULL);
    GPtrArray *names = g_ptr_array_new();
    GDir *d = g_dir_open(dir, 0, NULL);
    const char *e;
    while (d && (e = g_dir_read_name(d)))
        if (e[0] != '.' && g_str_has_suffix(e, ".gpkg"))
            g_ptr_array_add(names, g_strndup(e, strlen(e) - strlen(".gpkg")));
    if (d)
        g_dir_close(d);
    g_free(dir);
    g_ptr_array_sort(names, compare_str);
    g_ptr_array_add(names, NULL);
    return (char **)g_ptr_array_free(names, FALSE);
}

/* ---- reprojection ---- */

typedef struct {
    PJ_CONTEXT *ctx;
    PJ *pj;
    const char *srs;
} reproj;

static int reproj_open(reproj *r, const char *srs, char **err)
{
    r->srs = srs;
    r->ctx = proj_context_create();
    PJ *p = proj_create_crs_to_crs(r->ctx, srs, "EPSG:4326", NULL);
    r->pj = p ? proj_normalize_for_visualization(r->ctx, p) : NULL;
    proj_destroy(p);
    if (!r->pj) {
        pipes__error(err, CORE_EINVAL, "CRS %s: not one PROJ can transform to WGS84: %s", srs,
                     proj_context_errno_string(r->ctx, proj_context_errno(r->ctx)));
        proj_context_destroy(r->ctx);
        return CORE_EINVAL;
    }
    return 0;
}

static void reproj_close(reproj *r)
{
    proj_destroy(r->pj);
    proj_context_destroy(r->ctx);
}

/* Transforms one point in place; 0 or CORE_EINVAL with a message naming what. */
static int reproj_point(const reproj *r, double *x, double *y, const char *what, const char *id,
                        char **err)
{
    PJ_COORD c = proj_trans(r->pj, PJ_FWD, proj_coord(*x, *y, 0, 0));
    /* Far outside a projection's domain PROJ can return a plausible lon/lat
     * (1e30 ft in a Kentucky zone comes out as 134°E, 90°S): only a point
     * that transforms back to where it was counts. */
    PJ_COORD b = proj_trans(r->pj, PJ_INV, c);
    double tol = 1e-3 + 1e-7 * fmax(fabs(*x), fabs(*y));
    if (!gis_lonlat_valid(c.xy.x, c.xy.y) || !(fabs(b.xy.x - *x) <= tol) ||
        !(fabs(b.xy.y - *y) <= tol))
        return pipes__error(err, CORE_EINVAL,
                            "%s %s at (%g, %g) cannot be reprojected from %s to longitude/latitude"
                            " (wrong CRS, or a coordinate outside its area)",
                            what, id, *x, *y, r->srs);
    *x = c.xy.x, *y = c.xy.y;
    return 0;
}

static int reproject_links(gis_pipenet *n, const reproj *r, char **err)
{
    int rc = 0;
    for (guint i = 0; !rc && i < n->links->len; i++) {
        gis_pipe_link *l = &g_array_index(n->links, gis_pipe_link, i);
        double *xy =
            &g_array_index(n->verts, double, g_array_index(n->lx, pipes__link_extra, i).xy_off);
        for (size_t v = 0; !rc && v < l->nvert; v++)
            rc = reproj_point(r, &xy[2 * v], &xy[2 * v + 1], "a vertex of link", l->id, err);
    }
    return rc;
}

int gis_pipenet_reproject(gis_pipenet *n, const char *srs, char **err)
{
    if (n->finished)
        return pipes__error(err, CORE_EINVAL, "network %s: reproject before finishing it", n->name);
    reproj r;
    int rc = reproj_open(&r, srs, err);
    if (rc)
        return rc;
    for (guint i = 0; !rc && i < n->nodes->len; i++) {
        gis_pipe_node *d = &g_array_index(n->nodes, gis_pipe_node, i);
        rc = reproj_point(&r, &d->x, &d->y, "node", d->id, err);
    }
    if (!rc)
        rc = reproject_links(n, &r, err);
    for (guint i = 0; !rc && i < n->valves->len; i++) {
        gis_pipe_valve *v = &g_array_index(n->valves, gis_pipe_valve, i);
        rc = reproj_point(&r, &v->x, &v->y, "valve", v->id, err);
    }
    for (guint i = 0; !rc && i < n->customers->len; i++) {
        gis_pipe_customer *c = &g_array_index(n->customers, gis_pipe_customer, i);
        rc = reproj_point(&r, &c->x, &c->y, "customer", c->id, err);
    }
    reproj_close(&r);
    return rc;
}
