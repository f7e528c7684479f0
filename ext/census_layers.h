/*
** census_layers.h - the Census Bureau's cartographic boundary (cb_) layers
** that fetch_boundaries and load_boundaries know, one line each. An
** X-macro: define TR_LAYER(...) and expand TR_LAYERS. census_layers (the
** SQL table-valued function) lists them.
**
**   name     the layer's name, which is also its table ("tracts")
**   tag      the file tag: cb_{year}_{SS|us}_{tag}_{resolution}.zip
**   national 1: one national file (SS = "us"); 0: one file per state
**   first    first vintage of the line; last: last one (0: still published)
**   res      resolutions published, comma-separated (the first is default)
**   key      the column boundary_of returns
**   group    the column a file replaces rows by (a state's rows), or 0: a
**            file replaces the whole layer
**   fields   the DBF fields every file must have, copied into the table,
**            space-separated; ":i" makes an INTEGER column (else TEXT)
**
** A name may appear on several lines for different vintages (ZCTAs were
** renamed from zcta510 to zcta520 for 2020). The cb_ series starts in 2013.
*/
#ifndef TRACTS_CENSUS_LAYERS_H
#define TRACTS_CENSUS_LAYERS_H

#define TR_LAYERS \
  TR_LAYER("states", "state", 1, 2013, 0, "500k,5m,20m", "GEOID", "STATEFP", \
    "STATEFP STATENS AFFGEOID GEOID STUSPS NAME LSAD ALAND:i AWATER:i") \
  TR_LAYER("counties", "county", 1, 2013, 0, "500k,5m,20m", "GEOID", "STATEFP", \
    "STATEFP COUNTYFP COUNTYNS AFFGEOID GEOID NAME LSAD ALAND:i AWATER:i") \
  TR_LAYER("tracts", "tract", 0, 2013, 0, "500k", "GEOID", "STATEFP", \
    "STATEFP COUNTYFP TRACTCE AFFGEOID GEOID NAME LSAD ALAND:i AWATER:i") \
  TR_LAYER("block_groups", "bg", 0, 2013, 0, "500k", "GEOID", "STATEFP", \
    "STATEFP COUNTYFP TRACTCE BLKGRPCE AFFGEOID GEOID NAME LSAD ALAND:i " \
    "AWATER:i") \
  TR_LAYER("zctas", "zcta510", 1, 2013, 2019, "500k", "GEOID10", 0, \
    "ZCTA5CE10 AFFGEOID10 GEOID10 ALAND10:i AWATER10:i") \
  TR_LAYER("zctas", "zcta520", 1, 2020, 0, "500k", "GEOID20", 0, \
    "ZCTA5CE20 AFFGEOID20 GEOID20 ALAND20:i AWATER20:i") \
  TR_LAYER("places", "place", 0, 2013, 0, "500k", "GEOID", "STATEFP", \
    "STATEFP PLACEFP PLACENS AFFGEOID GEOID NAME LSAD ALAND:i AWATER:i") \
  TR_LAYER("county_subdivisions", "cousub", 0, 2013, 0, "500k", "GEOID", \
    "STATEFP", "STATEFP COUNTYFP COUSUBFP COUSUBNS AFFGEOID GEOID NAME LSAD " \
    "ALAND:i AWATER:i")

#endif /* TRACTS_CENSUS_LAYERS_H */
