/*
 * plans.h — response plans (run cards): which kinds of unit, and how many,
 * an incident needs (dispatch/plans.c; docs/API.md).
 *
 * A plan file is {"plans":[{"category":"fire/structure", "priority":[1,2]?,
 * "district":"Monaco-Ville"?, "hours":"22-06"?, "slots":[{"kind":"engine","capabilities":["foam"]?,
 * "count":2}, …]}, …]}. "category" is a category name, a family followed
 * by a slash and a star (fire/ then *), or a lone star. The first plan whose conditions all hold is
 * the incident's plan (so a file lists the specific before the general). With no file the built-in
 * plans (plans.c) are used.
 */
#ifndef CITYCMD_DISPATCH_PLANS_H
#define CITYCMD_DISPATCH_PLANS_H

#include <jansson.h>

typedef struct disp_plans disp_plans;

/* The built-in plans (path NULL) or those of the file at path. NULL with
 * *err (g_free) naming what is wrong. */
disp_plans *disp_plans_new(const char *path, char **err);
void disp_plans_free(disp_plans *p);

/* The plan for an incident of category and priority at a place whose
 * districts' names are in districts (a JSON array of {"name",…}, may be
 * NULL), at local hour 0..23: the matching plan object (borrowed; valid
 * as long as p), or NULL when none matches. */
const json_t *disp_plans_match(const disp_plans *p, const char *category, int priority,
                               const json_t *districts, int hour);
/* {"plans":[…]} (borrowed). */
const json_t *disp_plans_json(const disp_plans *p);

#endif
