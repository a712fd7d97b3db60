/*
 * gis.h — everything spatial (not yet built).
 *
 * Will hold: city packages read through GDAL, coordinate transformations with
 * PROJ (WGS84 on the wire, metric local projections inside), GEOS prepared
 * geometries and spatial indexes for point-in-district, nearest road and
 * radius/box queries, the road graph and routing, pipe networks and their
 * isolation analysis, and vector tiles for the map.
 */
#ifndef CITYCMD_GIS_H
#define CITYCMD_GIS_H

#include "../core/core.h"

#endif
