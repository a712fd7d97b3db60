/*
 * plans.c — response plans (plans.h): reading and checking a plan file,
 * and finding an incident's plan.
 */
#include "plans.h"

#include "../core/core.h"
#include "units.h"

#include <glib.h>
#include <string.h>

struct disp_plans {
    json_t *doc; /* {"plans":[…]} */
};

/* What a city starts with: the first-due assignments common to European
 * and North American run cards, kept small. */
static const char builtin[] =
    "{\"plans\":["
    "{\"category\":\"fire/structure\",\"slots\":[{\"kind\":\"engine\",\"count\":2},"
    "{\"kind\":\"ladder\",\"count\":1},{\"kind\":\"ambulance\",\"count\":1}]},"
    "{\"category\":\"fire/wildland\",\"slots\":[{\"kind\":\"engine\",\"count\":2},"
    "{\"kind\":\"tanker\",\"count\":1}]},"
    "{\"category\":\"fire/*\",\"slots\":[{\"kind\":\"engine\",\"count\":1}]},"
    "{\"category\":\"medical/cardiac\",\"slots\":[{\"kind\":\"ambulance\",\"count\":1,"
    "\"capabilities\":[\"als\"]},{\"kind\":\"engine\",\"count\":1}]},"
    "{\"category\":\"medical/*\",\"priority\":[1],\"slots\":[{\"kind\":\"ambulance\",\"count\":1},"
    "{\"kind\":\"engine\",\"count\":1}]},"
    "{\"category\":\"medical/*\",\"slots\":[{\"kind\":\"ambulance\",\"count\":1}]},"
    "{\"category\":\"traffic/collision-trapped\",\"slots\":[{\"kind\":\"rescue\",\"count\":1},"
    "{\"kind\":\"ambulance\",\"count\":1},{\"kind\":\"patrol_car\",\"count\":1}]},"
    "{\"category\":\"traffic/collision-injury\",\"slots\":[{\"kind\":\"ambulance\",\"count\":1},"
    "{\"kind\":\"traffic_car\",\"count\":1}]},"
    "{\"category\":\"traffic/*\",\"slots\":[{\"kind\":\"traffic_car\",\"count\":1}]},"
    "{\"category\":\"police/"
    "*\",\"priority\":[1,2],\"slots\":[{\"kind\":\"patrol_car\",\"count\":2}]},"
    "{\"category\":\"police/*\",\"slots\":[{\"kind\":\"patrol_car\",\"count\":1}]},"
    "{\"category\":\"utility/water-main-burst\",\"slots\":[{\"kind\":\"water_crew\",\"count\":1},"
    "{\"kind\":\"patrol_car\",\"count\":1}]},"
    "{\"category\":\"utility/gas-leak\",\"slots\":[{\"kind\":\"gas_crew\",\"count\":1},"
    "{\"kind\":\"engine\",\"count\":1}]}"
    "]}";

static int refuse(char **err, size_t i, const char *what)
{
    *err = g_strdup_printf("plans[%zu]: %s", i, what);
    return CORE_EINVAL;
}

static int valid_kind(const char *k)
{
    for (const char *const *p = disp_unit_kinds(); *p; p++)
        if (strcmp(*p, k) == 0)
            return 1;
    return 0;
}

/* Parses "22-06" (hours from-to, to exclusive, across midnight allowed). */
static int parse_hours(const char *s, int *from, int *to)
{
    int a, b;
    char tail;
    if (sscanf(s, "%d-%d%c", &a, &b, &tail) != 2 || a < 0 || a > 23 || b < 0 || b > 24 || a == b)
        return -1;
    *from = a;
    *to = b;
    return 0;
}

static int check(json_t *doc, char **err)
{
    json_t *plans = json_object_get(doc, "plans");
    if (!json_is_array(plans)) {
        *err = g_strdup("expected {\"plans\":[…]}");
        return CORE_EINVAL;
    }
    size_t i;
    json_t *p;
    json_array_foreach(plans, i, p)
    {
        if (!json_is_object(p) || !json_is_string(json_object_get(p, "category")))
            return refuse(err, i, "\"category\" must be a category, \"family/*\" or \"*\"");
        json_t *prio = json_object_get(p, "priority"), *hours = json_object_get(p, "hours"),
               *district = json_object_get(p, "district"), *slots = json_object_get(p, "slots");
        if (prio) {
            size_t k;
            json_t *v;
            if (!json_is_array(prio))
                return refuse(err, i, "\"priority\" must be a list of priorities 1..5");
            json_array_foreach(
                prio, k,
                v) if (!json_is_integer(v) || json_integer_value(v) < 1 ||
                       json_integer_value(v) >
                           5) return refuse(err, i,
                                            "\"priority\" must be a list of priorities 1..5");
        }
        int a, b;
        if (hours && (!json_is_string(hours) || parse_hours(json_string_value(hours), &a, &b)))
            return refuse(err, i, "\"hours\" must be \"FROM-TO\" in hours, such as \"22-06\"");
        if (district && !json_is_string(district))
            return refuse(err, i, "\"district\" must be a district name");
        if (!json_is_array(slots) || json_array_size(slots) == 0)
            return refuse(err, i, "\"slots\" must be a non-empty list");
        size_t k;
        json_t *s;
        json_array_foreach(slots, k, s)
        {
            json_t *kind = json_object_get(s, "kind"), *count = json_object_get(s, "count");
            if (!json_is_string(kind) || !valid_kind(json_string_value(kind)))
                return refuse(err, i,
                              "a slot's \"kind\" must be a unit kind (docs/API.md lists them)");
            if (!json_is_integer(count) || json_integer_value(count) < 1 ||
                json_integer_value(count) > 20)
                return refuse(err, i, "a slot's \"count\" must be 1..20");
            json_t *caps = json_object_get(s, "capabilities"), *cap;
            size_t c;
            if (caps && !json_is_array(caps))
                return refuse(err, i, "a slot's \"capabilities\" must be a list of capabilities");
            json_array_foreach(caps, c, cap) if (!json_is_string(cap)) return refuse(
                err, i, "a slot's \"capabilities\" must be a list of capabilities");
        }
    }
    return 0;
}

disp_plans *disp_plans_new(const char *path, char **err)
{
    json_error_t je;
    json_t *doc = path && *path ? json_load_file(path, 0, &je) : json_loads(builtin, 0, &je);
    if (!doc) {
        *err = g_strdup_printf("%s: line %d: %s", path ? path : "built-in plans", je.line, je.text);
        return NULL;
    }
    if (check(doc, err) != 0) {
        json_decref(doc);
        return NULL;
    }
    disp_plans *p = g_new0(disp_plans, 1);
    p->doc = doc;
    return p;
}

void disp_plans_free(disp_plans *p)
{
    if (!p)
        return;
    json_decref(p->doc);
    g_free(p);
}

static int category_matches(const char *pattern, const char *category)
{
    if (strcmp(pattern, "*") == 0)
        return 1;
    size_t n = strlen(pattern);
    if (n >= 2 && strcmp(pattern + n - 2, "/*") == 0)
        return strncmp(pattern, category, n - 1) == 0;
    return strcmp(pattern, category) == 0;
}

const json_t *disp_plans_match(const disp_plans *p, const char *category, int priority,
                               const json_t *districts, int hour)
{
    size_t i;
    json_t *plan;
    json_array_foreach(json_object_get(p->doc, "plans"), i, plan)
    {
        if (!category_matches(json_string_value(json_object_get(plan, "category")),
                              category ? category : ""))
            continue;
        json_t *prio = json_object_get(plan, "priority");
        if (prio) {
            int ok = 0;
            size_t k;
            json_t *v;
            json_array_foreach(prio, k, v) ok |= json_integer_value(v) == priority;
            if (!ok)
                continue;
        }
        json_t *hours = json_object_get(plan, "hours");
        if (hours) {
            int a = 0, b = 0;
            parse_hours(json_string_value(hours), &a, &b);
            int in = a < b ? (hour >= a && hour < b) : (hour >= a || hour < b);
            if (!in)
                continue;
        }
        json_t *district = json_object_get(plan, "district");
        if (district) {
            int in = 0;
            size_t k;
            json_t *d;
            json_array_foreach(districts, k, d) in |=
                json_is_string(json_object_get(d, "name")) &&
                strcmp(json_string_value(json_object_get(d, "name")),
                       json_string_value(district)) == 0;
            if (!in)
                continue;
        }
        return plan;
    }
    return NULL;
}

const json_t *disp_plans_json(const disp_plans *p)
{
    return p->doc;
}
