/*
 * import.c — `citycmd import-city`: builds a city package (docs/CITY.md)
 * from an OpenStreetMap extract and from any vector source GDAL reads.
 *
 * The OSM extract is read once, interleaved (GDAL's OSM driver delivers
 * points, lines and multipolygons in file order), and each feature is sorted
 * into the package's layers by its tags. Service districts that OSM lacks
 * (fire districts, police precincts, EMS zones) are derived as the area
 * nearest to each station of the kind, clipped to the city's extent, in a
 * metric local projection. `--layer NAME=SOURCE` then adds or replaces a
 * layer from a GeoPackage, Shapefile, GeoJSON, FlatGeobuf, PostGIS or any
 * other GDAL source, reprojected from the CRS it declares to WGS84.
 *
 * Runs in its own process (the command), single-threaded.
 */
#include "gis.h"
#include "internal.h"

#include "../core/log.h"

#include <gdal.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>

#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Highway classes a car may drive on. */
static const char *const drivable[] = {
    "motorway",      "motorway_link", "trunk",        "trunk_link",
    "primary",       "primary_link",  "secondary",    "secondary_link",
    "tertiary",      "tertiary_link", "unclassified", "residential",
    "living_street", "service",       "road",         NULL,
};
/* Highway values that are not roads on the ground. */
static const char *const not_roads[] = {"proposed", "construction", "abandoned", "platform",
                                        "razed",    "bus_stop",     "elevator",  NULL};
static const char *const place_kinds[] = {
    "city",          "town",   "village",  "suburb", "quarter",
    "neighbourhood", "hamlet", "locality", "island", NULL};

int gis_highway_drivable(const char *klass)
{
    return klass && g_strv_contains(drivable, klass);
}

/* ---- OSM tags ---- */

/* A feature's tag: its own field when the driver has one, else from the
 * hstore-like other_tags ("k"=>"v","k2"=>"v2"). Returns a new string or NULL. */
static char *osm_tag(OGRFeatureH f, const char *key)
{
    int i = OGR_F_GetFieldIndex(f, key);
    if (i >= 0)
        return OGR_F_IsFieldSetAndNotNull(f, i) ? g_strdup(OGR_F_GetFieldAsString(f, i)) : NULL;
    i = OGR_F_GetFieldIndex(f, "other_tags");
    if (i < 0 || !OGR_F_IsFieldSetAndNotNull(f, i))
        return NULL;
    const char *s = OGR_F_GetFieldAsString(f, i);
    char *needle = g_strdup_printf("\"%s\"=>\"", key);
    const char *p = strstr(s, needle);
    /* The key must start an entry: at the beginning or after a comma. */
    while (p && p != s && p[-1] != ',')
        p = strstr(p + 1, needle);
    char *out = NULL;
    if (p) {
        p += strlen(needle);
        GString *v = g_string_new("");
        for (; *p && *p != '"'; p++) {
            if (*p == '\\' && p[1])
                p++;
            g_string_append_c(v, *p);
        }
        out = g_string_free(v, FALSE);
    }
    g_free(needle);
    return out;
}

static int64_t osm_id(OGRFeatureH f, const char *layer)
{
    const char *field = strcmp(layer, "multipolygons") == 0 ? "osm_way_id" : "osm_id";
    int i = OGR_F_GetFieldIndex(f, field);
    if (i >= 0 && OGR_F_IsFieldSetAndNotNull(f, i))
        return OGR_F_GetFieldAsInteger64(f, i);
    i = OGR_F_GetFieldIndex(f, "osm_id");
    return i >= 0 && OGR_F_IsFieldSetAndNotNull(f, i) ? OGR_F_GetFieldAsInteger64(f, i) : 0;
}

/* ---- the package being written ---- */

typedef struct {
    const char *name;
    OGRwkbGeometryType type;
    const char *fields; /* "name:S,osm_id:L,level:I" */
} layer_schema;

static const layer_schema schemas[] = {
    {"roads", wkbLineString, "osm_id:L,name:S,class:S,ref:S,oneway:S,maxspeed:S,drivable:I"},
    {"stations", wkbPoint, "osm_id:L,kind:S,name:S,operator:S"},
    {"districts", wkbMultiPolygon, "kind:S,name:S,level:I,station:S"},
    {"buildings", wkbMultiPolygon, "osm_id:L,name:S,housenumber:S,street:S"},
    {"water", wkbMultiPolygon, "osm_id:L,name:S,kind:S"},
    {"places", wkbPoint, "osm_id:L,name:S,kind:S"},
    {"addresses", wkbPoint, "osm_id:L,housenumber:S,street:S,city:S"},
    {"restrictions", wkbGeometryCollection, "osm_id:L,restriction:S"},
};

typedef struct {
    GDALDatasetH ds;
    OGRSpatialReferenceH wgs84;
    OGRLayerH layers[G_N_ELEMENTS(schemas)];
    int64_t counts[G_N_ELEMENTS(schemas)];
} package;

enum {
    L_ROADS,
    L_STATIONS,
    L_DISTRICTS,
    L_BUILDINGS,
    L_WATER,
    L_PLACES,
    L_ADDRESSES,
    L_RESTRICTIONS
};

static OGRLayerH create_layer(GDALDatasetH ds, OGRSpatialReferenceH srs, const char *name,
                              OGRwkbGeometryType type, const char *fields)
{
    char **opts = CSLSetNameValue(NULL, "SPATIAL_INDEX", "YES");
    OGRLayerH l = GDALDatasetCreateLayer(ds, name, srs, type, opts);
    CSLDestroy(opts);
    if (!l)
        return NULL;
    char **defs = g_strsplit(fields, ",", -1);
    for (char **d = defs; *d; d++) {
        char *colon = strchr(*d, ':');
        *colon = '\0';
        OGRFieldType t = colon[1] == 'L' ? OFTInteger64 : colon[1] == 'I' ? OFTInteger : OFTString;
        OGRFieldDefnH fd = OGR_Fld_Create(*d, t);
        OGR_L_CreateField(l, fd, TRUE);
        OGR_Fld_Destroy(fd);
    }
    g_strfreev(defs);
    return l;
}

/* Adds a feature: values in the order of the schema's fields (NULL: unset). */
static void add_feature(package *p, int layer, OGRGeometryH g, const char *const *values)
{
    OGRLayerH l = p->layers[layer];
    OGRFeatureH f = OGR_F_Create(OGR_L_GetLayerDefn(l));
    for (int i = 0; values[i] != (const char *)-1; i++)
        if (values[i])
            OGR_F_SetFieldString(f, i, values[i]);
    OGR_F_SetGeometry(f, g);
    if (OGR_L_CreateFeature(l, f) == OGRERR_NONE)
        p->counts[layer]++;
    OGR_F_Destroy(f);
}
#define END ((const char *)-1)

/* ---- classification of OSM features ---- */

typedef struct {
    GArray *stations; /* gis__station */
    GPtrArray *coast; /* OGRGeometryH of natural=coastline ways */
} osm_state;

static const char *station_kind(OGRFeatureH f)
{
    char *amenity = osm_tag(f, "amenity"), *emergency = osm_tag(f, "emergency");
    const char *kind = NULL;
    if (amenity && strcmp(amenity, "police") == 0)
        kind = "police";
    else if (amenity && strcmp(amenity, "fire_station") == 0)
        kind = "fire";
    else if (amenity && strcmp(amenity, "hospital") == 0)
        kind = "hospital";
    else if (emergency && strcmp(emergency, "ambulance_station") == 0)
        kind = "ambulance";
    g_free(amenity);
    g_free(emergency);
    return kind;
}

static char *idstr(int64_t id)
{
    return g_strdup_printf("%" G_GINT64_FORMAT, id);
}

static void take_station(package *p, osm_state *st, OGRFeatureH f, OGRGeometryH g, int64_t id,
                         const char *kind)
{
    OGRGeometryH pt =
        wkbFlatten(OGR_G_GetGeometryType(g)) == wkbPoint ? OGR_G_Clone(g) : OGR_G_PointOnSurface(g);
    if (!pt)
        return;
    char *name = osm_tag(f, "name"), *op = osm_tag(f, "operator"), *sid = idstr(id);
    const char *v[] = {sid, kind, name, op, END};
    add_feature(p, L_STATIONS, pt, v);
    gis__station s = {.x = OGR_G_GetX(pt, 0), .y = OGR_G_GetY(pt, 0)};
    g_strlcpy(s.kind, kind, sizeof s.kind);
    s.name = g_strdup(name ? name : "");
    g_array_append_val(st->stations, s);
    OGR_G_DestroyGeometry(pt);
    g_free(name);
    g_free(op);
    g_free(sid);
}

static void take_address(package *p, OGRFeatureH f, OGRGeometryH g, int64_t id)
{
    char *num = osm_tag(f, "addr:housenumber"), *street = osm_tag(f, "addr:street");
    if (num && street) {
        OGRGeometryH pt = wkbFlatten(OGR_G_GetGeometryType(g)) == wkbPoint
                              ? OGR_G_Clone(g)
                              : OGR_G_PointOnSurface(g);
        if (pt) {
            char *city = osm_tag(f, "addr:city"), *sid = idstr(id);
            const char *v[] = {sid, num, street, city, END};
            add_feature(p, L_ADDRESSES, pt, v);
            OGR_G_DestroyGeometry(pt);
            g_free(city);
            g_free(sid);
        }
    }
    g_free(num);
    g_free(street);
}

static void take_point(package *p, osm_state *st, OGRFeatureH f, OGRGeometryH g)
{
    int64_t id = osm_id(f, "points");
    const char *kind = station_kind(f);
    if (kind)
        take_station(p, st, f, g, id, kind);
    char *place = osm_tag(f, "place"), *name = osm_tag(f, "name");
    if (place && name && g_strv_contains(place_kinds, place)) {
        char *sid = idstr(id);
        const char *v[] = {sid, name, place, END};
        add_feature(p, L_PLACES, g, v);
        g_free(sid);
    }
    g_free(place);
    g_free(name);
    take_address(p, f, g, id);
}

static void take_line(package *p, osm_state *st, OGRFeatureH f, OGRGeometryH g)
{
    char *natural = osm_tag(f, "natural");
    if (natural && strcmp(natural, "coastline") == 0)
        g_ptr_array_add(st->coast, OGR_G_Clone(g));
    g_free(natural);
    char *hw = osm_tag(f, "highway");
    if (hw && !g_strv_contains(not_roads, hw) && OGR_G_GetPointCount(g) >= 2) {
        char *name = osm_tag(f, "name"), *ref = osm_tag(f, "ref"), *oneway = osm_tag(f, "oneway"),
             *maxspeed = osm_tag(f, "maxspeed"), *sid = idstr(osm_id(f, "lines"));
        const char *v[] = {
            sid, name, hw, ref, oneway, maxspeed, gis_highway_drivable(hw) ? "1" : "0", END};
        add_feature(p, L_ROADS, g, v);
        g_free(name);
        g_free(ref);
        g_free(oneway);
        g_free(maxspeed);
        g_free(sid);
    }
    g_free(hw);
}

static void take_polygon(package *p, osm_state *st, OGRFeatureH f, OGRGeometryH g)
{
    int64_t id = osm_id(f, "multipolygons");
    char *sid = idstr(id), *name = osm_tag(f, "name");
    const char *kind = station_kind(f);
    if (kind)
        take_station(p, st, f, g, id, kind);
    char *building = osm_tag(f, "building");
    if (building) {
        char *num = osm_tag(f, "addr:housenumber"), *street = osm_tag(f, "addr:street");
        const char *v[] = {sid, name, num, street, END};
        add_feature(p, L_BUILDINGS, g, v);
        g_free(num);
        g_free(street);
    }
    take_address(p, f, g, id);
    char *boundary = osm_tag(f, "boundary"), *level = osm_tag(f, "admin_level");
    if (boundary && strcmp(boundary, "administrative") == 0 && level && name) {
        const char *v[] = {"admin", name, level, NULL, END};
        add_feature(p, L_DISTRICTS, g, v);
    }
    char *natural = osm_tag(f, "natural"), *waterway = osm_tag(f, "waterway"),
         *landuse = osm_tag(f, "landuse");
    const char *water = natural && strcmp(natural, "water") == 0         ? "water"
                        : waterway && strcmp(waterway, "riverbank") == 0 ? "river"
                        : landuse && strcmp(landuse, "reservoir") == 0   ? "reservoir"
                        : landuse && strcmp(landuse, "basin") == 0       ? "basin"
                        : natural && strcmp(natural, "bay") == 0         ? "bay"
                                                                         : NULL;
    if (water) {
        const char *v[] = {sid, name, water, END};
        add_feature(p, L_WATER, g, v);
    }
    g_free(natural);
    g_free(waterway);
    g_free(landuse);
    g_free(boundary);
    g_free(level);
    g_free(building);
    g_free(name);
    g_free(sid);
}

/* A turn restriction relation: its members' geometries in member order
 * (the ways as lines, the via node as a point), and the restriction. */
static void take_relation(package *p, OGRFeatureH f, OGRGeometryH g)
{
    char *type = osm_tag(f, "type"), *what = osm_tag(f, "restriction");
    if (type && strcmp(type, "restriction") == 0 && what &&
        wkbFlatten(OGR_G_GetGeometryType(g)) == wkbGeometryCollection) {
        char *sid = idstr(osm_id(f, "other_relations"));
        const char *v[] = {sid, what, END};
        add_feature(p, L_RESTRICTIONS, g, v);
        g_free(sid);
    }
    g_free(type);
    g_free(what);
}

/* GDAL's messages during an import, counted by text and reported once each:
 * an extract cut from a larger map has hundreds of incomplete relations. */
static GHashTable *gdal_messages;

static void count_message(CPLErr cls, CPLErrorNum no, const char *msg)
{
    if (cls < CE_Warning || !gdal_messages)
        return;
    gpointer n = g_hash_table_lookup(gdal_messages, msg);
    g_hash_table_replace(gdal_messages, g_strdup(msg), GINT_TO_POINTER(GPOINTER_TO_INT(n) + 1));
}

static void report_messages(void)
{
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, gdal_messages);
    while (g_hash_table_iter_next(&it, &k, &v))
        log_info("import.gdal", "times=%d msg=\"%s\"", GPOINTER_TO_INT(v), (const char *)k);
    g_hash_table_destroy(gdal_messages);
    gdal_messages = NULL;
}

static int read_osm(package *p, osm_state *st, const char *path, char **err)
{
    /* Unclosed rings in broken multipolygons are refused, not patched. */
    CPLSetConfigOption("OGR_GEOMETRY_ACCEPT_UNCLOSED_RING", "NO");
    GDALDatasetH in = GDALOpenEx(path, GDAL_OF_VECTOR | GDAL_OF_READONLY, NULL, NULL, NULL);
    if (!in || strcmp(GDALGetDriverShortName(GDALGetDatasetDriver(in)), "OSM") != 0) {
        *err = g_strdup_printf("--osm %s: not an OpenStreetMap file GDAL can read", path);
        if (in)
            GDALClose(in);
        return CORE_EINVAL;
    }
    OGRFeatureH f;
    OGRLayerH from;
    int64_t n = 0;
    while ((f = GDALDatasetGetNextFeature(in, &from, NULL, NULL, NULL))) {
        OGRGeometryH g = OGR_F_GetGeometryRef(f);
        const char *lname = OGR_L_GetName(from);
        if (g && !OGR_G_IsEmpty(g)) {
            if (strcmp(lname, "points") == 0)
                take_point(p, st, f, g);
            else if (strcmp(lname, "lines") == 0)
                take_line(p, st, f, g);
            else if (strcmp(lname, "multipolygons") == 0)
                take_polygon(p, st, f, g);
            else if (strcmp(lname, "other_relations") == 0)
                take_relation(p, f, g);
        }
        OGR_F_Destroy(f);
        n++;
    }
    GDALClose(in);
    if (n == 0) {
        *err = g_strdup_printf("--osm %s: no features (empty or truncated file)", path);
        return CORE_EINVAL;
    }
    return 0;
}

/* ---- the package files ---- */

static char *package_path(const char *dir)
{
    return g_build_filename(dir, "city.gpkg", NULL);
}

static int open_package(package *p, const char *dir, int fresh, char **err)
{
    if (g_mkdir_with_parents(dir, 0755) != 0) {
        *err = g_strdup_printf("--out %s: %s", dir, g_strerror(errno));
        return CORE_EIO;
    }
    char *path = package_path(dir);
    if (fresh)
        g_unlink(path);
    p->wgs84 = OSRNewSpatialReference(NULL);
    OSRImportFromEPSG(p->wgs84, 4326);
    OSRSetAxisMappingStrategy(p->wgs84, OAMS_TRADITIONAL_GIS_ORDER);
    if (g_file_test(path, G_FILE_TEST_EXISTS))
        p->ds = GDALOpenEx(path, GDAL_OF_VECTOR | GDAL_OF_UPDATE, NULL, NULL, NULL);
    else
        p->ds = GDALCreate(GDALGetDriverByName("GPKG"), path, 0, 0, 0, GDT_Unknown, NULL);
    if (!p->ds) {
        *err = g_strdup_printf("cannot open or create %s: %s", path, CPLGetLastErrorMsg());
        g_free(path);
        return CORE_EIO;
    }
    g_free(path);
    for (size_t i = 0; i < G_N_ELEMENTS(schemas); i++) {
        p->layers[i] = GDALDatasetGetLayerByName(p->ds, schemas[i].name);
        if (!p->layers[i])
            p->layers[i] =
                create_layer(p->ds, p->wgs84, schemas[i].name, schemas[i].type, schemas[i].fields);
        if (!p->layers[i]) {
            *err = g_strdup_printf("cannot create layer %s: %s", schemas[i].name,
                                   CPLGetLastErrorMsg());
            return CORE_EIO;
        }
    }
    return 0;
}

static void close_package(package *p)
{
    if (p->ds)
        GDALClose(p->ds);
    if (p->wgs84)
        OSRDestroySpatialReference(p->wgs84);
    memset(p, 0, sizeof *p);
}

/* Replaces (or adds) layer NAME with the features of SOURCE[|SRCLAYER],
 * reprojected to WGS84. */
static int import_layer(package *p, const char *spec, const char *default_srs, char **err)
{
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec || !eq[1]) {
        *err = g_strdup_printf("--layer %s: expected NAME=SOURCE", spec);
        return CORE_EINVAL;
    }
    char *name = g_strndup(spec, (gsize)(eq - spec));
    char *source = g_strdup(eq + 1), *bar = strchr(source, '|');
    const char *srclayer = NULL;
    if (bar) {
        *bar = '\0';
        srclayer = bar + 1;
    }
    int rc = 0;
    GDALDatasetH in = GDALOpenEx(source, GDAL_OF_VECTOR | GDAL_OF_READONLY, NULL, NULL, NULL);
    OGRLayerH from = !in        ? NULL
                     : srclayer ? GDALDatasetGetLayerByName(in, srclayer)
                                : GDALDatasetGetLayer(in, 0);
    if (!from) {
        *err = g_strdup_printf("--layer %s: cannot read %s%s%s: %s", name, source,
                               srclayer ? " layer " : "", srclayer ? srclayer : "",
                               in ? "no such layer" : CPLGetLastErrorMsg());
        rc = CORE_EINVAL;
    } else {
        rc = gis__copy_layer(p->ds, p->wgs84, name, from, default_srs, err);
        if (!rc)
            for (size_t i = 0; i < G_N_ELEMENTS(schemas); i++)
                if (strcmp(schemas[i].name, name) == 0)
                    p->layers[i] = GDALDatasetGetLayerByName(p->ds, name);
    }
    if (in)
        GDALClose(in);
    g_free(name);
    g_free(source);
    return rc;
}

static int64_t layer_count(GDALDatasetH ds, const char *name)
{
    OGRLayerH l = GDALDatasetGetLayerByName(ds, name);
    return l ? OGR_L_GetFeatureCount(l, TRUE) : -1;
}

/* Writes city.json: name, extent, centre, attribution, counts. */
static int write_metadata(package *p, const gis_import_opts *o, char **err)
{
    /* The extent of the roads, or of every layer when there are none. */
    OGREnvelope env = {0};
    int have = 0, from_roads = 0;
    OGRLayerH roads = GDALDatasetGetLayerByName(p->ds, "roads");
    if (roads && OGR_L_GetFeatureCount(roads, TRUE) > 0 &&
        OGR_L_GetExtent(roads, &env, TRUE) == OGRERR_NONE)
        have = from_roads = 1;
    for (int i = 0; !from_roads && i < GDALDatasetGetLayerCount(p->ds); i++) {
        OGRLayerH l = GDALDatasetGetLayer(p->ds, i);
        OGREnvelope e;
        if (OGR_L_GetFeatureCount(l, TRUE) == 0 || OGR_L_GetExtent(l, &e, TRUE) != OGRERR_NONE)
            continue;
        if (!have) {
            env = e;
        } else {
            env.MinX = MIN(env.MinX, e.MinX);
            env.MinY = MIN(env.MinY, e.MinY);
            env.MaxX = MAX(env.MaxX, e.MaxX);
            env.MaxY = MAX(env.MaxY, e.MaxY);
        }
        have = 1;
    }
    if (!have) {
        *err = g_strdup("the package has no features to take an extent from");
        return CORE_EINVAL;
    }
    char *meta_path = g_build_filename(o->out, "city.json", NULL);
    json_t *old = json_load_file(meta_path, 0, NULL);
    char *base = NULL;
    if (o->osm) {
        base = g_path_get_basename(o->osm);
        char *dot = strchr(base, '.');
        if (dot)
            *dot = '\0';
    }
    const char *name = o->name ? o->name
                       : json_string_value(json_object_get(old, "name"))
                           ? json_string_value(json_object_get(old, "name"))
                       : base ? base
                              : "city";
    json_t *counts = json_object();
    int n = GDALDatasetGetLayerCount(p->ds);
    for (int i = 0; i < n; i++) {
        OGRLayerH l = GDALDatasetGetLayer(p->ds, i);
        json_object_set_new(counts, OGR_L_GetName(l), json_integer(OGR_L_GetFeatureCount(l, TRUE)));
    }
    const char *attribution = o->osm ? "© OpenStreetMap contributors"
                                     : json_string_value(json_object_get(old, "attribution"));
    json_t *meta = json_pack(
        "{ss s[ffff] s[ff] ss ss* so}", "name", name, "bbox", env.MinX, env.MinY, env.MaxX,
        env.MaxY, "center", (env.MinX + env.MaxX) / 2, (env.MinY + env.MaxY) / 2, "attribution",
        attribution ? attribution : "", "source", o->osm ? o->osm : NULL, "counts", counts);
    int rc = json_dump_file(meta, meta_path, JSON_INDENT(2) | JSON_SORT_KEYS) ? CORE_EIO : 0;
    if (rc)
        *err = g_strdup_printf("cannot write %s", meta_path);
    json_decref(meta);
    json_decref(old);
    g_free(meta_path);
    g_free(base);
    return rc;
}

int gis_import_city(const gis_import_opts *o, char **err)
{
    *err = NULL;
    GDALAllRegister();
    gdal_messages = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    CPLPushErrorHandler(count_message);
    package p = {0};
    osm_state st = {.stations = g_array_new(FALSE, TRUE, sizeof(gis__station)),
                    .coast = g_ptr_array_new_with_free_func((GDestroyNotify)OGR_G_DestroyGeometry)};
    int rc = open_package(&p, o->out, o->osm != NULL, err);
    if (!rc && o->osm) {
        GDALDatasetStartTransaction(p.ds, FALSE);
        rc = read_osm(&p, &st, o->osm, err);
        if (!rc)
            rc = gis__derive_sea(p.layers[L_WATER], p.layers[L_ROADS], st.coast, &p.counts[L_WATER],
                                 err);
        if (!rc)
            rc = gis__derive_districts(p.ds, p.layers[L_DISTRICTS], p.layers[L_ROADS], st.stations,
                                       &p.counts[L_DISTRICTS], err);
        if (GDALDatasetCommitTransaction(p.ds) != OGRERR_NONE && !rc) {
            *err = g_strdup_printf("cannot write the package: %s", CPLGetLastErrorMsg());
            rc = CORE_EIO;
        }
    }
    for (const char **l = o->layers; !rc && l && *l; l++)
        rc = import_layer(&p, *l, o->source_srs, err);
    if (!rc)
        rc = write_metadata(&p, o, err);
    if (!rc && !o->quiet)
        for (size_t i = 0; i < G_N_ELEMENTS(schemas); i++)
            printf("%-10s %" G_GINT64_FORMAT "\n", schemas[i].name,
                   layer_count(p.ds, schemas[i].name));
    for (guint i = 0; i < st.stations->len; i++)
        g_free(g_array_index(st.stations, gis__station, i).name);
    g_array_free(st.stations, TRUE);
    g_ptr_array_free(st.coast, TRUE);
    close_package(&p);
    CPLPopErrorHandler();
    report_messages();
    return rc;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: citycmd import-city --out DIR [--osm FILE.osm.pbf] [--name NAME]\n"
            "                           [--layer NAME=SOURCE[|SRCLAYER]]... [--source-srs CRS]\n"
            "  --osm      build the package from an OpenStreetMap extract (replaces it)\n"
            "  --layer    add or replace layer NAME from any GDAL vector source: GeoPackage,\n"
            "             Shapefile, GeoJSON, FlatGeobuf, \"PG:dbname=…\" (PostGIS), …;\n"
            "             reprojected to WGS84 from the CRS the source declares\n"
            "  --source-srs  the CRS of --layer sources that declare none (EPSG:4549, WKT, …)\n");
    return 2;
}

int gis_import_main(int argc, char **argv)
{
    gis_import_opts o = {0};
    GPtrArray *layers = g_ptr_array_new();
    int rc = 0;
    for (int i = 2; i < argc && !rc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--quiet") == 0) {
            o.quiet = 1;
            continue;
        }
        if (!v) {
            rc = usage();
            break;
        }
        if (strcmp(a, "--osm") == 0)
            o.osm = v;
        else if (strcmp(a, "--out") == 0)
            o.out = v;
        else if (strcmp(a, "--name") == 0)
            o.name = v;
        else if (strcmp(a, "--layer") == 0)
            g_ptr_array_add(layers, (gpointer)v);
        else if (strcmp(a, "--source-srs") == 0)
            o.source_srs = v;
        else
            rc = usage();
        i++;
    }
    if (!rc && (!o.out || (!o.osm && layers->len == 0)))
        rc = usage();
    g_ptr_array_add(layers, NULL);
    o.layers = (const char **)layers->pdata;
    if (!rc) {
        char *err = NULL;
        rc = gis_import_city(&o, &err);
        if (rc) {
            fprintf(stderr, "citycmd import-city: %s\n", err ? err : core_strerror(rc));
            rc = 1;
        }
        g_free(err);
    }
    g_ptr_array_free(layers, TRUE);
    return rc;
}
