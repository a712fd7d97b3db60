/*
 * copy.c — one layer from any GDAL vector source into a city package:
 * reprojected with PROJ (through OGR) from the CRS the source declares, or
 * the one given for sources that declare none, to WGS84 in lon/lat order;
 * every geometry checked on the way in (finite coordinates in range after
 * reprojection, valid polygons, a vertex cap), so a hostile or broken file
 * is refused with the feature that is wrong rather than loaded.
 */
#include "internal.h"

#include <math.h>
#include <string.h>

#define MAX_FEATURE_VERTICES 1000000

/* Finite and within lon/lat range: checks every vertex of g. */
static const char *coords_problem(OGRGeometryH g, int *vertices)
{
    int parts = OGR_G_GetGeometryCount(g);
    if (parts > 0) {
        for (int i = 0; i < parts; i++) {
            const char *p = coords_problem(OGR_G_GetGeometryRef(g, i), vertices);
            if (p)
                return p;
        }
        return NULL;
    }
    int n = OGR_G_GetPointCount(g);
    *vertices += n;
    if (*vertices > MAX_FEATURE_VERTICES)
        return "more than a million vertices";
    for (int i = 0; i < n; i++) {
        double x = OGR_G_GetX(g, i), y = OGR_G_GetY(g, i);
        if (!isfinite(x) || !isfinite(y))
            return "a coordinate is not a finite number";
        if (!gis_lonlat_valid(x, y))
            return "a coordinate is outside longitude -180..180 / latitude -90..90 after"
                   " reprojection (wrong CRS?)";
    }
    return NULL;
}

static OGRSpatialReferenceH source_srs(OGRLayerH from, const char *default_srs, char **err)
{
    OGRSpatialReferenceH declared = OGR_L_GetSpatialRef(from);
    OGRSpatialReferenceH srs = declared ? OSRClone(declared) : NULL;
    if (!srs && default_srs) {
        srs = OSRNewSpatialReference(NULL);
        if (OSRSetFromUserInput(srs, default_srs) != OGRERR_NONE) {
            *err = g_strdup_printf("--source-srs %s: not a CRS PROJ knows", default_srs);
            OSRDestroySpatialReference(srs);
            return NULL;
        }
    }
    if (!srs) {
        *err = g_strdup_printf("layer %s declares no CRS: give --source-srs", OGR_L_GetName(from));
        return NULL;
    }
    OSRSetAxisMappingStrategy(srs, OAMS_TRADITIONAL_GIS_ORDER);
    return srs;
}

static int copy_features(OGRLayerH from, OGRLayerH to, OGRCoordinateTransformationH ct,
                         const char *name, char **err)
{
    OGR_L_ResetReading(from);
    OGRFeatureH f;
    int64_t index = 0;
    int rc = 0;
    while (!rc && (f = OGR_L_GetNextFeature(from))) {
        index++;
        OGRGeometryH g = OGR_F_GetGeometryRef(f);
        OGRGeometryH out = g ? OGR_G_Clone(g) : NULL;
        int vertices = 0;
        const char *problem = out ? NULL : "has no geometry (or one GDAL could not read)";
        if (out && OGR_G_Transform(out, ct) != OGRERR_NONE)
            problem = "cannot be reprojected (coordinates not finite or out of the CRS's area)";
        if (out && !problem)
            problem = coords_problem(out, &vertices);
        if (out && !problem && OGR_G_GetDimension(out) == 2 && !OGR_G_IsValid(out))
            problem = "is not a valid polygon (self-intersecting or badly nested rings)";
        if (problem) {
            *err = g_strdup_printf("--layer %s: feature %" G_GINT64_FORMAT ": %s", name, index,
                                   problem);
            rc = CORE_EINVAL;
        } else {
            OGRFeatureH nf = OGR_F_Create(OGR_L_GetLayerDefn(to));
            OGR_F_SetFrom(nf, f, TRUE);
            OGR_F_SetGeometryDirectly(nf, out);
            out = NULL;
            if (OGR_L_CreateFeature(to, nf) != OGRERR_NONE) {
                *err = g_strdup_printf("--layer %s: feature %" G_GINT64_FORMAT ": %s", name, index,
                                       CPLGetLastErrorMsg());
                rc = CORE_EIO;
            }
            OGR_F_Destroy(nf);
        }
        if (out)
            OGR_G_DestroyGeometry(out);
        OGR_F_Destroy(f);
    }
    if (!rc && index == 0 && CPLGetLastErrorType() >= CE_Failure) {
        *err = g_strdup_printf("--layer %s: %s", name, CPLGetLastErrorMsg());
        rc = CORE_EINVAL;
    }
    return rc;
}

int gis__copy_layer(GDALDatasetH ds, OGRSpatialReferenceH wgs84, const char *name, OGRLayerH from,
                    const char *default_srs, char **err)
{
    OGRSpatialReferenceH srs = source_srs(from, default_srs, err);
    if (!srs)
        return CORE_EINVAL;
    OGRCoordinateTransformationH ct = OCTNewCoordinateTransformation(srs, wgs84);
    OSRDestroySpatialReference(srs);
    if (!ct) {
        *err = g_strdup_printf("--layer %s: no transformation to WGS84: %s", name,
                               CPLGetLastErrorMsg());
        return CORE_EINVAL;
    }
    if (GDALDatasetStartTransaction(ds, FALSE) != OGRERR_NONE) {
        OCTDestroyCoordinateTransformation(ct);
        *err = g_strdup("cannot start a transaction on the package");
        return CORE_EIO;
    }
    for (int i = 0; i < GDALDatasetGetLayerCount(ds); i++)
        if (strcmp(OGR_L_GetName(GDALDatasetGetLayer(ds, i)), name) == 0) {
            GDALDatasetDeleteLayer(ds, i);
            break;
        }
    OGRFeatureDefnH defn = OGR_L_GetLayerDefn(from);
    char **opts = CSLSetNameValue(NULL, "SPATIAL_INDEX", "YES");
    OGRLayerH to = GDALDatasetCreateLayer(ds, name, wgs84, OGR_FD_GetGeomType(defn), opts);
    CSLDestroy(opts);
    int rc = 0;
    if (!to) {
        *err = g_strdup_printf("--layer %s: cannot create it: %s", name, CPLGetLastErrorMsg());
        rc = CORE_EIO;
    }
    for (int i = 0; !rc && i < OGR_FD_GetFieldCount(defn); i++)
        OGR_L_CreateField(to, OGR_FD_GetFieldDefn(defn, i), TRUE);
    if (!rc)
        rc = copy_features(from, to, ct, name, err);
    OCTDestroyCoordinateTransformation(ct);
    if (rc)
        GDALDatasetRollbackTransaction(ds);
    else if (GDALDatasetCommitTransaction(ds) != OGRERR_NONE) {
        *err = g_strdup_printf("--layer %s: cannot commit: %s", name, CPLGetLastErrorMsg());
        rc = CORE_EIO;
    }
    return rc;
}
