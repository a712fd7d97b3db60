/*
 * demo.h — --demo: the bundled demo city and its simulators.
 *
 * The demo has one account per kind of user, and it keeps the duty journal alive with a simulated
 * shift log so every screen shows live traffic; the demo city, simulated calls, vehicles and
 * cameras join as their modules land. Loop thread only.
 */
#ifndef CITYCMD_WEB_DEMO_H
#define CITYCMD_WEB_DEMO_H

#include "../core/store.h"

typedef struct web_demo web_demo;

/* The password of every demo account (published in the README). */
#define WEB_DEMO_PASSWORD "citycmd-demo"

/* Queues the creation of the demo accounts (operator, duty, calltaker,
 * police, fire, ems, water, leader, auditor) if the state has no users. */
int web_demo_accounts(core_store *store);

/* interval_ms: time between simulated journal entries. */
web_demo *web_demo_start(core_store *store, int interval_ms);
void web_demo_stop(web_demo *demo);

#endif
