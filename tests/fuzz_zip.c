/*
** fuzz_zip.c - libFuzzer harness for the census zip and shapefile reader
** (shpzip.c, geom.c): any bytes given as a zip must give an error or
** records, never a crash, a leak or undefined behaviour.
**
**   make fuzz                     # builds build/fuzz_zip, runs 60 s
**   build/fuzz_zip -max_total_time=600 build/fuzz-corpus tests/fuzz-seeds
**
** Seeds: tests/fuzz-seeds/ holds small census-layout zips (the hand-made
** fixture of the tests, made by build/gentracts). The harness also reads
** every record through trSourceRead and parses each blob back.
*/
#include "../ext/tracts_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const TrField aField[] = {
  { "STATEFP", 0 }, { "COUNTYFP", 0 }, { "TRACTCE", 0 }, { "AFFGEOID", 0 },
  { "GEOID", 0 }, { "NAME", 0 }, { "LSAD", 0 }, { "ALAND", 1 },
  { "AWATER", 1 },
};
static const TrLayer layer = { "tracts", "tract", "tracts", "GEOID",
  "STATEFP", 9, aField };

/* Read every record of s, and parse each blob back. */
static void readAll(TrSource *s){
  TrShapes shp;
  int i;
  if( trSourceRead(s, 0, trSourceCount(s), 1, &shp)==0 ){
    for(i=0; i<shp.nRec; i++){
      TrGeom g;
      if( trGeomFromBlob(&g, shp.aRec[i].pBlob, shp.aRec[i].nBlob)==0 ){
        trGeomFree(&g);
      }
    }
    trShapesFree(&shp);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *a, size_t n){
  TrSource *s = 0;
  TrLayer user;
  char zErr[TR_ERR_SIZE];
  /* as a census tract file */
  if( trSourceOpenZipMem(&s, &layer, a, n, zErr)==0 ){
    readAll(s);
    trSourceClose(s);
  }
  /* as a file of the user's own (load_boundaries' way): opened with no
  ** field, its DBF fields listed, then read with all of them; the CRS
  ** stated as NAD27 on every other input */
  memset(&user, 0, sizeof(user));
  user.zName = user.zTable = "mine";
  user.srid = (n & 1) ? 4267 : 0;
  if( trSourceOpenZipMem(&s, &user, a, n, zErr)==0 ){
    int nField = 0;
    TrField *aField = trSourceFields(s, &nField);
    trSourceClose(s);
    s = 0;
    if( aField && nField<=TR_MAX_FIELDS ){
      user.aField = aField;
      user.nField = nField;
      if( trSourceOpenZipMem(&s, &user, a, n, zErr)==0 ){
        readAll(s);
        trSourceClose(s);
      }
    }
    free(aField);
  }
  return 0;
}
