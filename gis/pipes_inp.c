/*
 * pipes_inp.c — reading EPANET .inp files and CSV valve layers.
 *
 * An .inp file is read in two passes: the first files every line under its
 * section and collects [COORDINATES], [VERTICES] and the flow units of
 * [OPTIONS]; the second adds nodes (junctions, reservoirs, tanks) and links
 * (pipes, pumps, control valves) with their positions. US customary files
 * (flow units CFS, GPM, MGD, IMGD, AFD) give lengths in feet and diameters
 * in inches; they are converted to metres and millimetres. Pumps and
 * control valves have no length in the file and count 0 m. A node without
 * coordinates sits at 0,0 and is counted (gis_pipenet_inp_missing_coords),
 * so an importer can refuse a file that cannot be placed on a map.
 *
 * Only the topology is read: demands, curves, patterns, controls and the
 * hydraulic options do not matter to isolation.
 */
#include "pipes_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define INP_MAX_BYTES (512u << 20)

enum { S_OTHER, S_JUNCTIONS, S_RESERVOIRS, S_TANKS, S_PIPES, S_PUMPS, S_VALVES, S_COUNT };

typedef struct {
    GPtrArray *lines[S_COUNT]; /* char ** token vectors per section */
    GHashTable *coords;        /* node id -> double[2] */
    GHashTable *verts;         /* link id -> GArray of double */
    int us_units;
} inp_file;

static int section_of(const char *name)
{
    static const char *const names[] = {"",        "[JUNCTIONS]", "[RESERVOIRS]", "[TANKS]",
                                        "[PIPES]", "[PUMPS]",     "[VALVES]"};
    for (int s = 1; s < S_COUNT; s++)
        if (g_ascii_strcasecmp(name, names[s]) == 0)
            return s;
    return S_OTHER;
}

/* Splits a line into whitespace-separated tokens, dropping a ';' comment. */
static char **tokens(char *line)
{
    char *semi = strchr(line, ';');
    if (semi)
        *semi = 0;
    GPtrArray *t = g_ptr_array_new();
    for (char *s = strtok(line, " \t\r"); s; s = strtok(NULL, " \t\r"))
        g_ptr_array_add(t, g_strdup(s));
    g_ptr_array_add(t, NULL);
    return (char **)g_ptr_array_free(t, FALSE);
}

static void inp_clear(inp_file *f)
{
    for (int s = 0; s < S_COUNT; s++)
        if (f->lines[s])
            g_ptr_array_free(f->lines[s], TRUE);
    if (f->coords)
        g_hash_table_destroy(f->coords);
    if (f->verts)
        g_hash_table_destroy(f->verts);
}

static void free_verts(gpointer p)
{
    g_array_free(p, TRUE);
}

/* Files one line: section headers, coordinates, vertices, units. */
static void inp_line(inp_file *f, char *line, int *section, int *special)
{
    char *s = g_strstrip(line);
    if (*s == '[') {
        char *end = strchr(s, ']');
        if (end)
            end[1] = 0;
        *section = section_of(s);
        *special = g_ascii_strcasecmp(s, "[COORDINATES]") == 0 ? 1
                   : g_ascii_strcasecmp(s, "[VERTICES]") == 0  ? 2
                   : g_ascii_strcasecmp(s, "[OPTIONS]") == 0   ? 3
                                                               : 0;
        return;
    }
    char **t = tokens(s);
    if (!t[0]) {
        g_strfreev(t);
        return;
    }
    if (*section != S_OTHER) {
        g_ptr_array_add(f->lines[*section], t);
        return;
    }
    if (*special == 1 && t[1] && t[2]) {
        double *xy = g_new(double, 2);
        xy[0] = g_ascii_strtod(t[1], NULL), xy[1] = g_ascii_strtod(t[2], NULL);
        g_hash_table_replace(f->coords, g_strdup(t[0]), xy);
    } else if (*special == 2 && t[1] && t[2]) {
        GArray *v = g_hash_table_lookup(f->verts, t[0]);
        if (!v) {
            v = g_array_new(FALSE, FALSE, sizeof(double));
            g_hash_table_insert(f->verts, g_strdup(t[0]), v);
        }
        double xy[2] = {g_ascii_strtod(t[1], NULL), g_ascii_strtod(t[2], NULL)};
        g_array_append_vals(v, xy, 2);
    } else if (*special == 3 && t[1] && g_ascii_strcasecmp(t[0], "Units") == 0) {
        static const char *const us[] = {"CFS", "GPM", "MGD", "IMGD", "AFD"};
        for (size_t i = 0; i < G_N_ELEMENTS(us); i++)
            if (g_ascii_strcasecmp(t[1], us[i]) == 0)
                f->us_units = 1;
    }
    g_strfreev(t);
}

static int add_nodes(gis_pipenet *n, inp_file *f, int section, gis_node_kind kind, char **err)
{
    GPtrArray *lines = f->lines[section];
    for (guint i = 0; i < lines->len; i++) {
        char **t = g_ptr_array_index(lines, i);
        const double *xy = g_hash_table_lookup(f->coords, t[0]);
        if (!xy)
            n->missing_coords++;
        int rc = gis_pipenet_add_node(n, t[0], kind, xy ? xy[0] : 0, xy ? xy[1] : 0, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int add_links(gis_pipenet *n, inp_file *f, int section, gis_link_kind kind, char **err)
{
    GPtrArray *lines = f->lines[section];
    double ft = f->us_units ? 0.3048 : 1, in = f->us_units ? 25.4 : 1;
    for (guint i = 0; i < lines->len; i++) {
        char **t = g_ptr_array_index(lines, i);
        if (!t[1] || !t[2]) {
            if (err)
                *err = g_strdup_printf("link %s: needs two nodes", t[0]);
            return CORE_EPARSE;
        }
        double len = 0, diam = 0;
        if (kind == GIS_LINK_PIPE && t[3] && t[4]) {
            len = g_ascii_strtod(t[3], NULL) * ft;
            diam = g_ascii_strtod(t[4], NULL) * in;
        } else if (kind == GIS_LINK_VALVE && t[3]) {
            diam = g_ascii_strtod(t[3], NULL) * in;
        }
        if (len <= 0)
            len = 1e-9; /* pumps and control valves: no length of their own */
        /* [VERTICES] lie between the end nodes: the geometry is node, vertices, node. */
        GArray *xy = g_array_new(FALSE, FALSE, sizeof(double));
        const double *a = g_hash_table_lookup(f->coords, t[1]);
        const double *b = g_hash_table_lookup(f->coords, t[2]);
        GArray *mid = g_hash_table_lookup(f->verts, t[0]);
        if (a && b) {
            g_array_append_vals(xy, a, 2);
            if (mid)
                g_array_append_vals(xy, mid->data, mid->len);
            g_array_append_vals(xy, b, 2);
        }
        int rc = gis_pipenet_add_link(n, t[0], kind, t[1], t[2], len, diam,
                                      xy->len ? (const double *)xy->data : NULL, xy->len / 2, err);
        g_array_free(xy, TRUE);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int gis_pipenet_read_inp(const char *path, const char *name, const char *utility, gis_pipenet **out,
                         char **err)
{
    *out = NULL;
    char *text = NULL;
    gsize len = 0;
    GError *ge = NULL;
    if (!g_file_get_contents(path, &text, &len, &ge)) {
        if (err)
            *err = g_strdup(ge->message);
        g_error_free(ge);
        return CORE_EIO;
    }
    if (len > INP_MAX_BYTES) {
        g_free(text);
        if (err)
            *err = g_strdup_printf("%s: larger than %u MiB", path, INP_MAX_BYTES >> 20);
        return CORE_ETOOBIG;
    }
    inp_file f = {0};
    for (int s = 0; s < S_COUNT; s++)
        f.lines[s] = g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);
    f.coords = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    f.verts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, free_verts);
    int section = S_OTHER, special = 0;
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        inp_line(&f, line, &section, &special);
    }
    g_free(text);
    gis_pipenet *n = gis_pipenet_new(name, utility);
    int rc = add_nodes(n, &f, S_JUNCTIONS, GIS_NODE_JUNCTION, err);
    if (!rc)
        rc = add_nodes(n, &f, S_RESERVOIRS, GIS_NODE_RESERVOIR, err);
    if (!rc)
        rc = add_nodes(n, &f, S_TANKS, GIS_NODE_TANK, err);
    if (!rc)
        rc = add_links(n, &f, S_PIPES, GIS_LINK_PIPE, err);
    if (!rc)
        rc = add_links(n, &f, S_PUMPS, GIS_LINK_PUMP, err);
    if (!rc)
        rc = add_links(n, &f, S_VALVES, GIS_LINK_VALVE, err);
    inp_clear(&f);
    if (!rc && n->nodes->len == 0) {
        if (err)
            *err = g_strdup_printf("%s: no junctions, reservoirs or tanks", path);
        rc = CORE_EPARSE;
    }
    if (rc < 0) {
        gis_pipenet_free(n);
        return rc;
    }
    *out = n;
    return 0;
}

size_t gis_pipenet_inp_missing_coords(const gis_pipenet *n)
{
    return n->missing_coords;
}

int gis_pipenet_read_valves_csv(gis_pipenet *n, const char *path, char **err)
{
    char *text = NULL;
    GError *ge = NULL;
    if (!g_file_get_contents(path, &text, NULL, &ge)) {
        if (err)
            *err = g_strdup(ge->message);
        g_error_free(ge);
        return CORE_EIO;
    }
    char **lines = g_strsplit(text, "\n", -1);
    g_free(text);
    int link_col = -1, node_col = -1, count = 0, rc = 0;
    for (size_t i = 0; lines[i] && rc >= 0; i++) {
        char **c = g_strsplit(g_strstrip(lines[i]), ",", -1);
        int nc = (int)g_strv_length(c);
        if (i == 0) {
            for (int k = 0; k < nc; k++) {
                if (g_ascii_strcasecmp(g_strstrip(c[k]), "link") == 0)
                    link_col = k;
                if (g_ascii_strcasecmp(c[k], "node") == 0)
                    node_col = k;
            }
            if (link_col < 0 || node_col < 0) {
                if (err)
                    *err = g_strdup_printf("%s: the header needs `link` and `node` columns", path);
                rc = CORE_EPARSE;
            }
        } else if (nc > MAX(link_col, node_col)) {
            rc = gis_pipenet_add_valve(n, NULL, g_strstrip(c[link_col]), g_strstrip(c[node_col]),
                                       GIS_VALVE_OPEN, err);
            if (rc >= 0)
                count++;
            else if (err && *err) {
                char *m = g_strdup_printf("%s line %zu: %s", path, i + 1, *err);
                g_free(*err);
                *err = m;
            }
        }
        g_strfreev(c);
    }
    g_strfreev(lines);
    return rc < 0 ? rc : count;
}
