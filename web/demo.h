/*
 * demo.h — --demo: the bundled demo city and its simulators.
 *
 * Today the demo keeps the duty journal alive with a simulated shift log so
 * every screen shows live traffic; the demo city, simulated calls, vehicles
 * and cameras join as their modules land. Loop thread only.
 */
#ifndef CITYCMD_WEB_DEMO_H
#define CITYCMD_WEB_DEMO_H

#include "../core/store.h"

typedef struct web_demo web_demo;

/* interval_ms: time between simulated journal entries. */
web_demo *web_demo_start(core_store *store, int interval_ms);
void web_demo_stop(web_demo *demo);

#endif
