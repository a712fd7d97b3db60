/*
 * metrics.c — the process-wide metric registry.
 *
 * Metrics are kept in registration order in a GPtrArray; rendering groups
 * them by name so HELP/TYPE lines appear once per family. Histogram sums are
 * kept in microunits (value × 1e6) as an atomic integer, which is exact for
 * latencies in seconds down to a microsecond.
 */
#include "metrics.h"

#include <glib.h>
#include <string.h>

typedef enum { M_COUNTER, M_GAUGE, M_HISTOGRAM, M_GAUGE_FN } metric_kind;

struct core_metric {
    metric_kind kind;
    char *name, *help, *labels;
    gint64 value;     /* counter/gauge; histogram count */
    gint64 sum_micro; /* histogram */
    double *bounds;
    gint64 *buckets; /* nbounds entries, non-cumulative */
    int nbounds;
    double (*fn)(void *);
    void *user;
};

const double core_latency_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                       0.1,    0.25,  0.5,    1,     2.5,  10};
const int core_latency_nbuckets = G_N_ELEMENTS(core_latency_buckets);

static GMutex reg_lock;
static GPtrArray *registry;

static void metric_free(gpointer p)
{
    core_metric *m = p;
    g_free(m->name);
    g_free(m->help);
    g_free(m->labels);
    g_free(m->bounds);
    g_free(m->buckets);
    g_free(m);
}

static core_metric *lookup_or_add(metric_kind kind, const char *name, const char *help,
                                  const char *labels)
{
    labels = labels ? labels : "";
    if (!registry)
        registry = g_ptr_array_new_with_free_func(metric_free);
    for (guint i = 0; i < registry->len; i++) {
        core_metric *m = registry->pdata[i];
        if (m->kind == kind && strcmp(m->name, name) == 0 && strcmp(m->labels, labels) == 0)
            return m;
    }
    core_metric *m = g_new0(core_metric, 1);
    m->kind = kind;
    m->name = g_strdup(name);
    m->help = g_strdup(help);
    m->labels = g_strdup(labels);
    g_ptr_array_add(registry, m);
    return m;
}

core_metric *core_counter(const char *name, const char *help, const char *labels)
{
    g_mutex_lock(&reg_lock);
    core_metric *m = lookup_or_add(M_COUNTER, name, help, labels);
    g_mutex_unlock(&reg_lock);
    return m;
}

core_metric *core_gauge(const char *name, const char *help, const char *labels)
{
    g_mutex_lock(&reg_lock);
    core_metric *m = lookup_or_add(M_GAUGE, name, help, labels);
    g_mutex_unlock(&reg_lock);
    return m;
}

core_metric *core_histogram(const char *name, const char *help, const char *labels,
                            const double *bounds, int nbounds)
{
    g_mutex_lock(&reg_lock);
    core_metric *m = lookup_or_add(M_HISTOGRAM, name, help, labels);
    if (!m->bounds) {
        m->bounds = g_memdup2(bounds, sizeof(double) * (gsize)nbounds);
        m->buckets = g_new0(gint64, nbounds);
        m->nbounds = nbounds;
    }
    g_mutex_unlock(&reg_lock);
    return m;
}

void core_gauge_fn(const char *name, const char *help, const char *labels, double (*fn)(void *user),
                   void *user)
{
    g_mutex_lock(&reg_lock);
    core_metric *m = lookup_or_add(M_GAUGE_FN, name, help, labels);
    m->fn = fn;
    m->user = user;
    g_mutex_unlock(&reg_lock);
}

void core_metric_add(core_metric *m, int64_t delta)
{
    if (m)
        g_atomic_pointer_add((gssize *)&m->value, (gssize)delta);
}

void core_metric_set(core_metric *m, int64_t value)
{
    if (m)
        g_atomic_pointer_set((gpointer *)&m->value, (gpointer)(gssize)value);
}

int64_t core_metric_value(const core_metric *m)
{
    return m ? (int64_t)(gssize)g_atomic_pointer_get((gpointer *)&m->value) : 0;
}

void core_metric_observe(core_metric *m, double value)
{
    if (!m || m->kind != M_HISTOGRAM)
        return;
    int i = 0;
    while (i < m->nbounds && value > m->bounds[i])
        i++;
    if (i < m->nbounds)
        g_atomic_pointer_add((gssize *)&m->buckets[i], 1);
    g_atomic_pointer_add((gssize *)&m->sum_micro, (gssize)(value * 1e6));
    g_atomic_pointer_add((gssize *)&m->value, 1);
}

static gint64 load(const gint64 *p)
{
    return (gint64)(gssize)g_atomic_pointer_get((gpointer *)p);
}

static void render_series(GString *out, const core_metric *m)
{
    const char *l = m->labels;
    const char *sep = *l ? "," : "";
    switch (m->kind) {
    case M_COUNTER:
    case M_GAUGE:
        g_string_append_printf(out, "%s%s%s%s %" G_GINT64_FORMAT "\n", m->name, *l ? "{" : "", l,
                               *l ? "}" : "", load(&m->value));
        break;
    case M_GAUGE_FN:
        g_string_append_printf(out, "%s%s%s%s %.17g\n", m->name, *l ? "{" : "", l, *l ? "}" : "",
                               m->fn(m->user));
        break;
    case M_HISTOGRAM: {
        gint64 cum = 0;
        for (int i = 0; i < m->nbounds; i++) {
            cum += load(&m->buckets[i]);
            g_string_append_printf(out, "%s_bucket{%s%sle=\"%g\"} %" G_GINT64_FORMAT "\n", m->name,
                                   l, sep, m->bounds[i], cum);
        }
        gint64 count = load(&m->value);
        g_string_append_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %" G_GINT64_FORMAT "\n", m->name, l,
                               sep, count);
        g_string_append_printf(out, "%s_sum%s%s%s %.6f\n", m->name, *l ? "{" : "", l, *l ? "}" : "",
                               (double)load(&m->sum_micro) / 1e6);
        g_string_append_printf(out, "%s_count%s%s%s %" G_GINT64_FORMAT "\n", m->name, *l ? "{" : "",
                               l, *l ? "}" : "", count);
        break;
    }
    }
}

char *core_metrics_render(void)
{
    static const char *const types[] = {"counter", "gauge", "histogram", "gauge"};
    GString *out = g_string_sized_new(4096);
    g_mutex_lock(&reg_lock);
    GHashTable *done = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; registry && i < registry->len; i++) {
        core_metric *first = registry->pdata[i];
        if (g_hash_table_contains(done, first->name))
            continue;
        g_hash_table_add(done, first->name);
        g_string_append_printf(out, "# HELP %s %s\n# TYPE %s %s\n", first->name, first->help,
                               first->name, types[first->kind]);
        for (guint j = i; j < registry->len; j++) {
            core_metric *m = registry->pdata[j];
            if (strcmp(m->name, first->name) == 0)
                render_series(out, m);
        }
    }
    g_hash_table_destroy(done);
    g_mutex_unlock(&reg_lock);
    return g_string_free(out, FALSE);
}

void core_metrics_reset(void)
{
    g_mutex_lock(&reg_lock);
    if (registry)
        g_ptr_array_free(registry, TRUE);
    registry = NULL;
    g_mutex_unlock(&reg_lock);
}
