/*
 * catalogue.c — the categories a call can have: for each, its family
 * (calls fuse only within one), priority, owning and joint agencies
 * (linkage rules: a collision with injuries is traffic + ems), and how
 * near and how recent a call must be to join an open incident.
 *
 * Built in, or replaced by a JSON file (--catalogue) of the same shape:
 * {"categories":[{"name":"fire/structure","family":"fire","priority":1,
 *   "agency":"fire","joint":["ems"],"radius_m":300,"window_s":1800}, …]}.
 */
#include "incident.h"

#include <glib.h>
#include <string.h>

static const char builtin[] =
    "{\"categories\":["
    "{\"name\":\"fire/structure\",\"family\":\"fire\",\"priority\":1,\"agency\":\"fire\","
    "\"joint\":[\"ems\"],\"radius_m\":300,\"window_s\":3600},"
    "{\"name\":\"fire/vehicle\",\"family\":\"fire\",\"priority\":2,\"agency\":\"fire\","
    "\"joint\":[],\"radius_m\":200,\"window_s\":1800},"
    "{\"name\":\"fire/wildland\",\"family\":\"fire\",\"priority\":2,\"agency\":\"fire\","
    "\"joint\":[],\"radius_m\":1500,\"window_s\":7200},"
    "{\"name\":\"fire/alarm\",\"family\":\"fire\",\"priority\":3,\"agency\":\"fire\","
    "\"joint\":[],\"radius_m\":100,\"window_s\":1800},"
    "{\"name\":\"fire/other\",\"family\":\"fire\",\"priority\":3,\"agency\":\"fire\","
    "\"joint\":[],\"radius_m\":200,\"window_s\":1800},"
    "{\"name\":\"medical/cardiac\",\"family\":\"medical\",\"priority\":1,\"agency\":\"ems\","
    "\"joint\":[],\"radius_m\":100,\"window_s\":1200},"
    "{\"name\":\"medical/breathing\",\"family\":\"medical\",\"priority\":1,\"agency\":\"ems\","
    "\"joint\":[],\"radius_m\":100,\"window_s\":1200},"
    "{\"name\":\"medical/injury\",\"family\":\"medical\",\"priority\":2,\"agency\":\"ems\","
    "\"joint\":[],\"radius_m\":100,\"window_s\":1200},"
    "{\"name\":\"medical/other\",\"family\":\"medical\",\"priority\":3,\"agency\":\"ems\","
    "\"joint\":[],\"radius_m\":100,\"window_s\":1200},"
    "{\"name\":\"traffic/collision\",\"family\":\"traffic\",\"priority\":3,\"agency\":\"traffic\","
    "\"joint\":[],\"radius_m\":250,\"window_s\":1800},"
    "{\"name\":\"traffic/collision-injury\",\"family\":\"traffic\",\"priority\":2,"
    "\"agency\":\"traffic\",\"joint\":[\"ems\"],\"radius_m\":250,\"window_s\":1800},"
    "{\"name\":\"traffic/collision-trapped\",\"family\":\"traffic\",\"priority\":1,"
    "\"agency\":\"traffic\",\"joint\":[\"ems\",\"fire\"],\"radius_m\":250,\"window_s\":1800},"
    "{\"name\":\"traffic/congestion\",\"family\":\"traffic\",\"priority\":4,\"agency\":\"traffic\","
    "\"joint\":[],\"radius_m\":500,\"window_s\":3600},"
    "{\"name\":\"traffic/hazard\",\"family\":\"traffic\",\"priority\":3,\"agency\":\"traffic\","
    "\"joint\":[],\"radius_m\":300,\"window_s\":3600},"
    "{\"name\":\"police/robbery\",\"family\":\"police\",\"priority\":2,\"agency\":\"police\","
    "\"joint\":[],\"radius_m\":300,\"window_s\":1800},"
    "{\"name\":\"police/assault\",\"family\":\"police\",\"priority\":2,\"agency\":\"police\","
    "\"joint\":[\"ems\"],\"radius_m\":200,\"window_s\":1800},"
    "{\"name\":\"police/burglary\",\"family\":\"police\",\"priority\":3,\"agency\":\"police\","
    "\"joint\":[],\"radius_m\":150,\"window_s\":3600},"
    "{\"name\":\"police/disturbance\",\"family\":\"police\",\"priority\":3,\"agency\":\"police\","
    "\"joint\":[],\"radius_m\":200,\"window_s\":1800},"
    "{\"name\":\"utility/water-main-burst\",\"family\":\"utility\",\"priority\":2,"
    "\"agency\":\"water\",\"joint\":[\"traffic\"],\"radius_m\":400,\"window_s\":7200},"
    "{\"name\":\"utility/gas-leak\",\"family\":\"utility\",\"priority\":1,\"agency\":\"gas\","
    "\"joint\":[\"fire\"],\"radius_m\":300,\"window_s\":3600},"
    "{\"name\":\"utility/power-outage\",\"family\":\"utility\",\"priority\":3,"
    "\"agency\":\"government\",\"joint\":[],\"radius_m\":1000,\"window_s\":7200},"
    "{\"name\":\"hotline/noise\",\"family\":\"hotline\",\"priority\":5,\"agency\":\"hotline\","
    "\"joint\":[],\"radius_m\":150,\"window_s\":86400},"
    "{\"name\":\"hotline/sanitation\",\"family\":\"hotline\",\"priority\":5,\"agency\":\"hotline\","
    "\"joint\":[],\"radius_m\":100,\"window_s\":259200},"
    "{\"name\":\"hotline/"
    "road-damage\",\"family\":\"hotline\",\"priority\":4,\"agency\":\"hotline\","
    "\"joint\":[\"traffic\"],\"radius_m\":100,\"window_s\":604800},"
    "{\"name\":\"hotline/other\",\"family\":\"hotline\",\"priority\":5,\"agency\":\"hotline\","
    "\"joint\":[],\"radius_m\":100,\"window_s\":86400}"
    "]}";

struct disp_catalogue {
    GPtrArray *categories; /* disp_category* */
    GHashTable *by_name;
    json_t *json;
};

static void category_free(gpointer p)
{
    disp_category *c = p;
    g_free(c->name);
    g_free(c->family);
    g_free(c->owner);
    g_strfreev(c->joint);
    g_free(c);
}

static int parse(disp_catalogue *cat, json_t *root, char **err)
{
    json_t *list = json_object_get(root, "categories");
    if (!json_is_array(list) || json_array_size(list) == 0) {
        *err = g_strdup("a catalogue is {\"categories\":[…]} with at least one category");
        return CORE_EINVAL;
    }
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c)
    {
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *family = json_string_value(json_object_get(c, "family"));
        const char *owner = json_string_value(json_object_get(c, "agency"));
        json_t *prio = json_object_get(c, "priority"), *joint = json_object_get(c, "joint");
        json_t *radius = json_object_get(c, "radius_m"), *window = json_object_get(c, "window_s");
        if (!name || !strchr(name, '/') || !family || !owner || !json_is_integer(prio) ||
            json_integer_value(prio) < 1 || json_integer_value(prio) > 5 ||
            (joint && !json_is_array(joint)) || !json_is_number(radius) ||
            json_number_value(radius) < 0 || !json_is_integer(window) ||
            json_integer_value(window) < 0) {
            *err = g_strdup_printf("category %zu: needs \"name\" (family/kind), \"family\","
                                   " \"agency\", \"priority\" 1-5, \"radius_m\" and \"window_s\"",
                                   i + 1);
            return CORE_EINVAL;
        }
        if (g_hash_table_contains(cat->by_name, name)) {
            *err = g_strdup_printf("category %s appears twice", name);
            return CORE_EINVAL;
        }
        disp_category *d = g_new0(disp_category, 1);
        d->name = g_strdup(name);
        d->family = g_strdup(family);
        d->owner = g_strdup(owner);
        d->priority = (int)json_integer_value(prio);
        d->radius_m = json_number_value(radius);
        d->window_s = (int)json_integer_value(window);
        d->joint = g_new0(char *, json_array_size(joint) + 1);
        size_t k;
        json_t *a;
        int n = 0;
        json_array_foreach(joint, k, a) if (json_is_string(a)) d->joint[n++] =
            g_strdup(json_string_value(a));
        g_ptr_array_add(cat->categories, d);
        g_hash_table_insert(cat->by_name, d->name, d);
    }
    return 0;
}

disp_catalogue *disp_catalogue_new(const char *path, char **err)
{
    *err = NULL;
    json_error_t jerr;
    json_t *root = path ? json_load_file(path, 0, &jerr) : json_loads(builtin, 0, &jerr);
    if (!root) {
        *err = g_strdup_printf("%s: %s (line %d)", path ? path : "built-in catalogue", jerr.text,
                               jerr.line);
        return NULL;
    }
    disp_catalogue *cat = g_new0(disp_catalogue, 1);
    cat->categories = g_ptr_array_new_with_free_func(category_free);
    cat->by_name = g_hash_table_new(g_str_hash, g_str_equal);
    cat->json = root;
    if (parse(cat, root, err)) {
        disp_catalogue_free(cat);
        return NULL;
    }
    return cat;
}

void disp_catalogue_free(disp_catalogue *c)
{
    if (!c)
        return;
    g_hash_table_destroy(c->by_name);
    g_ptr_array_free(c->categories, TRUE);
    json_decref(c->json);
    g_free(c);
}

const disp_category *disp_category_find(const disp_catalogue *c, const char *name)
{
    return name ? g_hash_table_lookup(c->by_name, name) : NULL;
}

json_t *disp_catalogue_json(const disp_catalogue *c)
{
    return json_incref(c->json);
}
