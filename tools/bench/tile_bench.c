/*
 * tile_bench.c — vector tiles per second for a city, made cold (cache
 * empty) and served from the cache, against GDAL's own MVT writer
 * (`ogr2ogr -f MVT`) making the same zoom range from the same layers in
 * the same run.
 *
 *   build/bench/tile_bench --city build/city/monaco [--minzoom 12] [--maxzoom 16]
 */
#include "../../gis/gis.h"

#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void tile_xy(double lon, double lat, int z, int *x, int *y)
{
    double n = (double)(1 << z), r = lat * G_PI / 180;
    *x = (int)floor((lon + 180) / 360 * n);
    *y = (int)floor((1 - log(tan(r) + 1 / cos(r)) / G_PI) / 2 * n);
}

typedef struct {
    int z, x, y;
} tile_id;

static GArray *tiles_of(const double bbox[4], int minz, int maxz)
{
    GArray *ids = g_array_new(FALSE, FALSE, sizeof(tile_id));
    for (int z = minz; z <= maxz; z++) {
        int x0, y0, x1, y1;
        tile_xy(bbox[0], bbox[3], z, &x0, &y0);
        tile_xy(bbox[2], bbox[1], z, &x1, &y1);
        for (int x = x0; x <= x1; x++)
            for (int y = y0; y <= y1; y++) {
                tile_id t = {z, x, y};
                g_array_append_val(ids, t);
            }
    }
    return ids;
}

/* Makes every tile once; returns seconds, bytes and non-empty tiles. */
static double run(gis_city *c, GArray *ids, size_t *bytes, int *nonempty, int *from_cache)
{
    *bytes = 0;
    *nonempty = *from_cache = 0;
    int64_t t0 = g_get_monotonic_time();
    for (guint i = 0; i < ids->len; i++) {
        tile_id *t = &g_array_index(ids, tile_id, i);
        GBytes *b = NULL;
        int cached = 0;
        if (gis_tile(c, "base", t->z, t->x, t->y, &b, &cached) != 0) {
            fprintf(stderr, "tile %d/%d/%d failed\n", t->z, t->x, t->y);
            exit(1);
        }
        *bytes += g_bytes_get_size(b);
        *nonempty += g_bytes_get_size(b) > 0;
        *from_cache += cached;
        g_bytes_unref(b);
    }
    return (g_get_monotonic_time() - t0) / 1e6;
}

static int count_files(const char *dir)
{
    int n = 0;
    GDir *d = g_dir_open(dir, 0, NULL);
    if (!d)
        return 0;
    const char *name;
    while ((name = g_dir_read_name(d))) {
        char *p = g_build_filename(dir, name, NULL);
        if (g_file_test(p, G_FILE_TEST_IS_DIR))
            n += count_files(p);
        else if (g_str_has_suffix(name, ".pbf") || g_str_has_suffix(name, ".mvt"))
            n++;
        g_free(p);
    }
    g_dir_close(d);
    return n;
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    int minz = 12, maxz = 16;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--city") == 0)
            dir = argv[i + 1];
        else if (strcmp(argv[i], "--minzoom") == 0)
            minz = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--maxzoom") == 0)
            maxz = atoi(argv[i + 1]);
    }
    if (!dir || minz < 0 || maxz > GIS_MAX_ZOOM || minz > maxz) {
        fprintf(stderr, "usage: tile_bench --city DIR [--minzoom Z] [--maxzoom Z]\n");
        return 2;
    }
    char *err = NULL;
    gis_city *c = gis_city_load(dir, &err);
    if (!c) {
        fprintf(stderr, "tile_bench: %s\n", err);
        return 1;
    }
    json_t *info = gis_city_info(c);
    double bbox[4];
    for (int i = 0; i < 4; i++)
        bbox[i] = json_number_value(json_array_get(json_object_get(info, "bbox"), (size_t)i));
    json_decref(info);
    GArray *ids = tiles_of(bbox, minz, maxz);
    size_t bytes;
    int nonempty, cached;
    double cold = run(c, ids, &bytes, &nonempty, &cached);
    if (cached != 0) {
        fprintf(stderr, "tile_bench: cold run hit the cache\n");
        return 1;
    }
    size_t bytes2;
    int nonempty2;
    double warm = run(c, ids, &bytes2, &nonempty2, &cached);
    if (cached != (int)ids->len || bytes2 != bytes) {
        fprintf(stderr, "tile_bench: cached run differs\n");
        return 1;
    }

    /* The peer: GDAL's MVT writer, same layers, same zooms, uncompressed. */
    char *tmp = g_dir_make_tmp("citycmd-mvt-XXXXXX", NULL);
    char *out = g_build_filename(tmp, "tiles", NULL);
    char *gpkg = g_build_filename(dir, "city.gpkg", NULL);
    char *minarg = g_strdup_printf("MINZOOM=%d", minz),
         *maxarg = g_strdup_printf("MAXZOOM=%d", maxz);
    char *args[] = {"ogr2ogr",
                    "-f",
                    "MVT",
                    "-dsco",
                    minarg,
                    "-dsco",
                    maxarg,
                    "-dsco",
                    "COMPRESS=NO",
                    "-dsco",
                    "FORMAT=DIRECTORY",
                    out,
                    gpkg,
                    "districts",
                    "water",
                    "buildings",
                    "roads",
                    "stations",
                    "places",
                    NULL};
    int64_t t0 = g_get_monotonic_time();
    int status = -1;
    gboolean ok =
        g_spawn_sync(NULL, args, NULL,
                     G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                     NULL, NULL, NULL, NULL, &status, NULL);
    double peer = (g_get_monotonic_time() - t0) / 1e6;
    int peer_tiles = ok && status == 0 ? count_files(out) : 0;

    printf("tiles z%d-%d over %s: %u tiles (%d with features, %.1f MiB)\n", minz, maxz, dir,
           ids->len, nonempty, bytes / 1048576.0);
    printf("%-32s %10s %12s\n", "", "seconds", "tiles/s");
    printf("%-32s %10.3f %12.0f\n", "citycmd, cold (made now)", cold, ids->len / cold);
    printf("%-32s %10.3f %12.0f\n", "citycmd, from the cache", warm, ids->len / warm);
    if (peer_tiles > 0)
        printf("%-32s %10.3f %12.0f   (%d tiles written)\n", "ogr2ogr -f MVT (GDAL)", peer,
               peer_tiles / peer, peer_tiles);
    else
        printf("ogr2ogr -f MVT: not run (ogr2ogr missing or failed)\n");

    char *rm[] = {"rm", "-rf", tmp, NULL};
    g_spawn_sync(NULL, rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
    g_free(tmp);
    g_free(out);
    g_free(gpkg);
    g_free(minarg);
    g_free(maxarg);
    g_array_free(ids, TRUE);
    gis_city_free(c);
    return 0;
}
