/*
 * pipes_bench — valve-isolated segments and burst isolation on pipe
 * networks (gis/pipes.h): the time to load or generate a network, to
 * compute its segments (gis_pipenet_finish) and to recompute them after one
 * valve is taken out (what keeping segments up to date costs), its memory,
 * and the latency of one isolation over --queries random pipes (2,000).
 *
 * Networks: Net6.inp and BWSN_Network_2.inp from --data DIR (or
 * $CITYCMD_WATER_DATA; default ../shared/data/water beside the source
 * tree), each with a strategic N-1 valve layer (at a node with d links,
 * valves on d - 1 of them) and one customer per pipe; and a generated grid
 * city (pipes_gen.h) of --pipes pipes (500,000), --valves valves (100,000)
 * and one customer per pipe, twice: valves at zone boundaries
 * (grid-zoned), and valves on random (link, node) pairs (grid). Random
 * valves this sparse (a tenth of the pipe ends) leave one segment holding
 * nearly the whole city, so every burst there shuts off everything; its
 * queries are slow and few (--random-queries, 20).
 *
 * One query is gis_pipes_isolate with its unintended isolation and
 * customers; the JSON answer (gis_iso_result_json without detail, what the
 * API sends) is timed on its own. The failed-valve re-query takes the first
 * valve of each answer's closing order as failed to close and asks again.
 * Seeded, so runs are comparable; memory is the resident set the network
 * added and the process's peak.
 *
 *   build/bench/pipes_bench [--data DIR] [--queries 2000] [--random-queries 20]
 *                           [--pipes 500000] [--valves 100000] [--seed S]
 *                           [--only net6,bwsn2,grid-zoned,grid]
 */
#include "../../core/core.h"
#include "../../core/log.h"
#include "../../gis/pipes.h"
#include "pipes_gen.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define SEED 20261123u
#define TARGET_MS 5.0
#define RECOMPUTES 5

typedef struct {
    const char *data, *only;
    int queries, random_queries;
    size_t pipes, valves;
    unsigned seed;
} bench_opt;

typedef struct {
    double p50, p99, max;
} dist3;

typedef struct {
    const char *name;
    size_t nodes, links, valves, customers, segments, largest;
    double load_ms, finish_ms, recompute_ms, rss_mb, peak_mb;
    dist3 iso, json, failed;
    double close_avg, dry_avg, cust_avg;
    size_t close_max;
    int failed_n, queries;
} bench_row;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

static double rss_mb(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return (double)rss * (double)sysconf(_SC_PAGESIZE) / 1048576.0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static dist3 distribution(double *v, size_t m)
{
    dist3 d = {0, 0, 0};
    if (!m)
        return d;
    qsort(v, m, sizeof *v, cmp_double);
    d.p50 = v[(m - 1) / 2];
    d.p99 = v[(size_t)ceil(0.99 * (double)m) - 1];
    d.max = v[m - 1];
    return d;
}

/* ---- building the networks ---- */

static gis_pipenet *load_inp(const bench_opt *o, const char *file, bench_row *row, char **err)
{
    char *path = g_build_filename(o->data, file, NULL);
    gis_pipenet *n = NULL;
    double t0 = now_ms();
    int rc = gis_pipenet_read_inp(path, file, "water", &n, err);
    row->load_ms = now_ms() - t0;
    g_free(path);
    if (rc < 0)
        return NULL;
    rc = pipes_gen_strategic_valves(n, 1, o->seed);
    if (rc >= 0)
        rc = pipes_gen_customers(n, gis_pipenet_link_count(n), o->seed + 1);
    if (rc < 0) {
        *err = g_strdup_printf("%s: cannot add valves or customers: %s", file, core_strerror(rc));
        gis_pipenet_free(n);
        return NULL;
    }
    return n;
}

static gis_pipenet *generate(const bench_opt *o, int zoned, bench_row *row, char **err)
{
    double t0 = now_ms();
    gis_pipenet *n = zoned ? pipes_gen_grid_zoned(o->pipes, o->valves, o->pipes, o->seed)
                           : pipes_gen_grid(o->pipes, o->valves, o->pipes, o->seed);
    row->load_ms = now_ms() - t0;
    if (!n)
        *err = g_strdup_printf("cannot generate %zu pipes with %zu valves", o->pipes, o->valves);
    return n;
}

/* ---- measuring ---- */

static int finish(gis_pipenet *n, bench_row *row, char **err)
{
    double t0 = now_ms();
    int rc = gis_pipenet_finish(n, 0, err);
    row->finish_ms = now_ms() - t0;
    if (rc < 0)
        return rc;
    row->nodes = gis_pipenet_node_count(n);
    row->links = gis_pipenet_link_count(n);
    row->valves = gis_pipenet_valve_count(n);
    row->customers = gis_pipenet_customer_count(n);
    row->segments = gis_pipenet_segment_count(n);
    for (size_t s = 0; s < row->segments; s++)
        row->largest = MAX(row->largest, gis_pipenet_segment_size(n, (int)s));
    return 0;
}

/* Median of RECOMPUTES removals of a random valve. */
static void recompute(gis_pipenet *n, GRand *rng, bench_row *row)
{
    double t[RECOMPUTES];
    size_t nv = gis_pipenet_valve_count(n);
    for (int k = 0; k < RECOMPUTES; k++) {
        size_t v = (size_t)g_rand_int_range(rng, 0, (gint32)nv);
        double t0 = now_ms();
        gis_pipenet_remove_valve(n, v);
        t[k] = now_ms() - t0;
    }
    row->recompute_ms = distribution(t, RECOMPUTES).p50;
}

static int pick_link(const gis_pipenet *n, GRand *rng)
{
    size_t nl = gis_pipenet_link_count(n);
    for (;;) {
        int j = g_rand_int_range(rng, 0, (gint32)nl);
        if (gis_pipenet_link_segment(n, (size_t)j) >= 0)
            return j;
    }
}

static int run_queries(gis_pipenet *n, size_t m, GRand *rng, bench_row *row)
{
    double *iso = g_new(double, m), *js = g_new(double, m), *fail = g_new(double, m);
    double close_sum = 0, dry_sum = 0, cust_sum = 0;
    int rc = 0;
    for (size_t i = 0; i < m && rc == 0; i++) {
        gis_iso_query q = {.link = pick_link(n, rng), .at_x = NAN, .at_y = NAN};
        gis_iso_result r;
        double t0 = now_ms();
        rc = gis_pipes_isolate(n, &q, &r);
        double t1 = now_ms();
        json_t *j = gis_iso_result_json(n, &r, 0, 0);
        double t2 = now_ms();
        json_decref(j);
        iso[i] = t1 - t0, js[i] = t2 - t1;
        close_sum += r.close->len, dry_sum += r.dry->len, cust_sum += (double)r.customers;
        row->close_max = MAX(row->close_max, r.close->len);
        if (rc == 0 && r.close->len) {
            int failed = g_array_index(r.close, int, 0);
            gis_iso_query qf = q;
            qf.failed = &failed, qf.n_failed = 1;
            gis_iso_result rf;
            t0 = now_ms();
            rc = gis_pipes_isolate(n, &qf, &rf);
            fail[row->failed_n++] = now_ms() - t0;
            gis_iso_result_clear(&rf);
        }
        gis_iso_result_clear(&r);
    }
    row->iso = distribution(iso, m);
    row->json = distribution(js, m);
    row->failed = distribution(fail, (size_t)row->failed_n);
    row->close_avg = close_sum / (double)m;
    row->dry_avg = dry_sum / (double)m;
    row->cust_avg = cust_sum / (double)m;
    g_free(iso);
    g_free(js);
    g_free(fail);
    return rc;
}

static int bench_one(const bench_opt *o, const char *key, bench_row *row)
{
    char *err = NULL;
    double rss0 = rss_mb();
    gis_pipenet *n = NULL;
    if (strcmp(key, "grid") == 0 || strcmp(key, "grid-zoned") == 0)
        n = generate(o, strcmp(key, "grid-zoned") == 0, row, &err);
    else
        n = load_inp(o, strcmp(key, "net6") == 0 ? "Net6.inp" : "BWSN_Network_2.inp", row, &err);
    int rc = n ? finish(n, row, &err) : CORE_EINVAL;
    row->rss_mb = rss_mb() - rss0;
    row->peak_mb = peak_rss_mb();
    if (rc == 0) {
        GRand *rng = g_rand_new_with_seed(o->seed);
        row->queries = strcmp(key, "grid") == 0 ? o->random_queries : o->queries;
        rc = run_queries(n, (size_t)row->queries, rng, row);
        recompute(n, rng, row);
        g_rand_free(rng);
    }
    if (rc < 0)
        fprintf(stderr, "pipes_bench: %s: %s\n", key, err ? err : core_strerror(rc));
    g_free(err);
    gis_pipenet_free(n);
    return rc < 0 ? 1 : 0;
}

/* ---- output ---- */

static void print_rows(const bench_row *rows, size_t nrows, const bench_opt *o)
{
    printf("\n| network | nodes | links | valves | customers | segments | largest segment |\n"
           "|---|---:|---:|---:|---:|---:|---:|\n");
    for (size_t i = 0; i < nrows; i++) {
        const bench_row *r = &rows[i];
        printf("| %s | %zu | %zu | %zu | %zu | %zu | %zu |\n", r->name, r->nodes, r->links,
               r->valves, r->customers, r->segments, r->largest);
    }
    printf("\n| network | load or generate | segments (finish) | recompute after removing a valve "
           "| RSS added | peak RSS |\n|---|---:|---:|---:|---:|---:|\n");
    for (size_t i = 0; i < nrows; i++) {
        const bench_row *r = &rows[i];
        printf("| %s | %.1f ms | %.1f ms | %.2f ms | %.1f MB | %.0f MB |\n", r->name, r->load_ms,
               r->finish_ms, r->recompute_ms, r->rss_mb, r->peak_mb);
    }
    printf("\nms p50 / p99 / max\n\n"
           "| network | queries | isolate | JSON (no detail) | failed-valve re-query | valves to "
           "close avg "
           "(max) | dry segments avg | customers avg | under %.0f ms (p99, isolate + JSON) |\n"
           "|---|---:|---:|---:|---:|---:|---:|---:|---|\n",
           TARGET_MS);
    for (size_t i = 0; i < nrows; i++) {
        const bench_row *r = &rows[i];
        printf(
            "| %s | %d | %.3f / %.3f / %.3f | %.3f / %.3f / %.3f | %.3f / %.3f / %.3f | %.1f (%zu) "
            "| %.1f | %.1f | %s |\n",
            r->name, r->queries, r->iso.p50, r->iso.p99, r->iso.max, r->json.p50, r->json.p99,
            r->json.max, r->failed.p50, r->failed.p99, r->failed.max, r->close_avg, r->close_max,
            r->dry_avg, r->cust_avg, r->iso.p99 + r->json.p99 < TARGET_MS ? "yes" : "no");
    }
}

/* ---- arguments ---- */

static int usage(void)
{
    fprintf(stderr, "usage: pipes_bench [--data DIR] [--queries N] [--pipes N] [--valves N]"
                    " [--seed S] [--random-queries N] [--only net6,bwsn2,grid-zoned,grid]\n");
    return 2;
}

static int parse_args(int argc, char **argv, bench_opt *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return usage();
        if (strcmp(a, "--data") == 0)
            o->data = v;
        else if (strcmp(a, "--queries") == 0)
            o->queries = atoi(v);
        else if (strcmp(a, "--random-queries") == 0)
            o->random_queries = atoi(v);
        else if (strcmp(a, "--pipes") == 0)
            o->pipes = strtoul(v, NULL, 10);
        else if (strcmp(a, "--valves") == 0)
            o->valves = strtoul(v, NULL, 10);
        else if (strcmp(a, "--seed") == 0)
            o->seed = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(a, "--only") == 0)
            o->only = v;
        else
            return usage();
        i++;
    }
    return o->queries > 0 && o->random_queries > 0 ? 0 : usage();
}

int main(int argc, char **argv)
{
    bench_opt o = {
        .queries = 2000, .random_queries = 20, .pipes = 500000, .valves = 100000, .seed = SEED};
    o.data = getenv("CITYCMD_WATER_DATA") ? getenv("CITYCMD_WATER_DATA") : PIPES_BENCH_DATA;
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc;
    core_log_set_level(CORE_LOG_WARN);
    static const char *const keys[] = {"net6", "bwsn2", "grid-zoned", "grid"};
    static const char *const names[] = {"Net6", "BWSN_Network_2", "grid, zone valves",
                                        "grid, random valves"};
    bench_row rows[4];
    size_t nrows = 0;
    char **only = o.only ? g_strsplit(o.only, ",", -1) : NULL;
    for (size_t k = 0; k < G_N_ELEMENTS(keys) && rc == 0; k++) {
        if (only && !g_strv_contains((const char *const *)only, keys[k]))
            continue;
        bench_row *r = &rows[nrows++];
        memset(r, 0, sizeof *r);
        r->name = names[k];
        printf("pipes_bench: %s ...\n", names[k]);
        fflush(stdout);
        rc = bench_one(&o, keys[k], r);
    }
    g_strfreev(only);
    if (rc == 0) {
        printf("pipes_bench: data %s; grid %zu pipes, %zu valves; seed %u\n", o.data, o.pipes,
               o.valves, o.seed);
        print_rows(rows, nrows, &o);
    }
    return rc;
}
