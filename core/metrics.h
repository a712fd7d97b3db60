/*
 * metrics.h — counters, gauges and histograms rendered in Prometheus text
 * format for GET /metrics.
 *
 * One process-wide registry. A metric is identified by name plus a label
 * string ("method=\"GET\",code=\"200\""); asking twice for the same pair
 * returns the same object, so callers may look metrics up lazily. Updates are
 * atomic and may come from any thread; registration takes a mutex. Metric
 * objects live until core_metrics_reset() (tests) or process exit.
 */
#ifndef CITYCMD_CORE_METRICS_H
#define CITYCMD_CORE_METRICS_H

#include <stdint.h>

typedef struct core_metric core_metric;

core_metric *core_counter(const char *name, const char *help, const char *labels);
core_metric *core_gauge(const char *name, const char *help, const char *labels);
/* Buckets in seconds for latency histograms; bounds must be ascending. */
core_metric *core_histogram(const char *name, const char *help, const char *labels,
                            const double *bounds, int nbounds);
/* A gauge whose value is read by calling fn at render time (on the render thread). */
void core_gauge_fn(const char *name, const char *help, const char *labels, double (*fn)(void *user),
                   void *user);

void core_metric_add(core_metric *m, int64_t delta);
void core_metric_set(core_metric *m, int64_t value);
void core_metric_observe(core_metric *m, double value);
int64_t core_metric_value(const core_metric *m);

/* Default latency buckets: 0.5 ms … 10 s. */
extern const double core_latency_buckets[];
extern const int core_latency_nbuckets;

/* Renders all metrics; caller frees with g_free(). */
char *core_metrics_render(void);
/* Drops every metric (for unit tests). */
void core_metrics_reset(void);

#endif
