/*
** census_layers.h - the Census Bureau's cartographic boundary layers that
** fetch_boundaries and load_boundaries know, one line per layer and
** naming scheme. An X-macro: define TR_LAYER(...) and expand TR_LAYERS.
** census_layers (the SQL table-valued function) lists them.
**
**   name     the layer's name, which is also its table ("tracts")
**   tag      the part of the file name that names the layer
**   file     its path under base_url: {year}, {st} (state FIPS; files
**            with "_us_" are national, one file) and {res} (resolution)
**   first    first vintage of the line; last: last one (0: still published)
**   res      resolutions published, comma-separated (the first is default)
**   key      the key column (the table's PRIMARY KEY)
**   keyexpr  what boundary_of returns when not the key itself: an SQL
**            expression over the columns (the 2010 files key by GEO_ID,
**            "1400000US" + the GEOID), or 0
**   group    the column a file replaces rows by (a state's rows), or 0: a
**            file replaces the whole layer
**   fields   the DBF fields every file must have, copied into the table,
**            space-separated; ":i" makes an INTEGER column, ":r" REAL
**            (else TEXT)
**
** A name has a line per naming scheme: the cb_ series from 2013 (ZCTAs
** were renamed from zcta510 to zcta520 for 2020) and the 2010 files
** (gz_2010_..., by summary level, in GENZ2010/ itself).
*/
#ifndef TRACTS_CENSUS_LAYERS_H
#define TRACTS_CENSUS_LAYERS_H

#define TR_CB(x)  "GENZ{year}/shp/cb_{year}_" x "_{res}.zip"
#define TR_GZ(x)  "GENZ{year}/gz_{year}_" x "_{res}.zip"
#define TR_GZKEY  "substr(GEO_ID, 10)"

#define TR_LAYERS \
  TR_LAYER("states", "state", TR_CB("us_state"), 2013, 0, "500k,5m,20m", \
    "GEOID", 0, "STATEFP", \
    "STATEFP STATENS AFFGEOID GEOID STUSPS NAME LSAD ALAND:i AWATER:i") \
  TR_LAYER("states", "040", TR_GZ("us_040_00"), 2010, 2010, "500k,5m,20m", \
    "GEO_ID", TR_GZKEY, "STATE", "GEO_ID STATE NAME LSAD CENSUSAREA:r") \
  TR_LAYER("counties", "county", TR_CB("us_county"), 2013, 0, "500k,5m,20m", \
    "GEOID", 0, "STATEFP", \
    "STATEFP COUNTYFP COUNTYNS AFFGEOID GEOID NAME LSAD ALAND:i AWATER:i") \
  TR_LAYER("counties", "050", TR_GZ("us_050_00"), 2010, 2010, "500k,5m,20m", \
    "GEO_ID", TR_GZKEY, "STATE", "GEO_ID STATE COUNTY NAME LSAD CENSUSAREA:r") \
  TR_LAYER("tracts", "tract", TR_CB("{st}_tract"), 2013, 0, "500k", \
    "GEOID", 0, "STATEFP", \
    "STATEFP COUNTYFP TRACTCE AFFGEOID GEOID NAME LSAD ALAND:i AWATER:i") \
  TR_LAYER("tracts", "140", TR_GZ("{st}_140_00"), 2010, 2010, "500k", \
    "GEO_ID", TR_GZKEY, "STATE", \
    "GEO_ID STATE COUNTY TRACT NAME LSAD CENSUSAREA:r") \
  TR_LAYER("block_groups", "bg", TR_CB("{st}_bg"), 2013, 0, "500k", \
    "GEOID", 0, "STATEFP", "STATEFP COUNTYFP TRACTCE BLKGRPCE AFFGEOID GEOID " \
    "NAME LSAD ALAND:i AWATER:i") \
  TR_LAYER("block_groups", "150", TR_GZ("{st}_150_00"), 2010, 2010, "500k", \
    "GEO_ID", TR_GZKEY, "STATE", \
    "GEO_ID STATE COUNTY TRACT BLKGRP NAME LSAD CENSUSAREA:r") \
  TR_LAYER("zctas", "zcta510", TR_CB("us_zcta510"), 2013, 2019, "500k", \
    "GEOID10", 0, 0, "ZCTA5CE10 AFFGEOID10 GEOID10 ALAND10:i AWATER10:i") \
  TR_LAYER("zctas", "zcta520", TR_CB("us_zcta520"), 2020, 0, "500k", \
    "GEOID20", 0, 0, "ZCTA5CE20 AFFGEOID20 GEOID20 ALAND20:i AWATER20:i") \
  TR_LAYER("zctas", "860", TR_GZ("us_860_00"), 2010, 2010, "500k", \
    "GEO_ID", TR_GZKEY, 0, "GEO_ID ZCTA5 NAME LSAD CENSUSAREA:r") \
  TR_LAYER("places", "place", TR_CB("{st}_place"), 2013, 0, "500k", \
    "GEOID", 0, "STATEFP", \
    "STATEFP PLACEFP PLACENS AFFGEOID GEOID NAME LSAD ALAND:i AWATER:i") \
  TR_LAYER("places", "160", TR_GZ("{st}_160_00"), 2010, 2010, "500k", \
    "GEO_ID", TR_GZKEY, "STATE", "GEO_ID STATE PLACE NAME LSAD CENSUSAREA:r") \
  TR_LAYER("county_subdivisions", "cousub", TR_CB("{st}_cousub"), 2013, 0, \
    "500k", "GEOID", 0, "STATEFP", "STATEFP COUNTYFP COUSUBFP COUSUBNS " \
    "AFFGEOID GEOID NAME LSAD ALAND:i AWATER:i") \
  TR_LAYER("county_subdivisions", "060", TR_GZ("{st}_060_00"), 2010, 2010, \
    "500k", "GEO_ID", TR_GZKEY, "STATE", \
    "GEO_ID STATE COUNTY COUSUB NAME LSAD CENSUSAREA:r")

#endif /* TRACTS_CENSUS_LAYERS_H */
