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

int LLVMFuzzerTestOneInput(const uint8_t *a, size_t n){
  TrSource *s = 0;
  TrShapes shp;
  char zErr[TR_ERR_SIZE];
  int i;
  if( trSourceOpenZipMem(&s, &layer, a, n, zErr) ) return 0;
  if( trSourceRead(s, 0, trSourceCount(s), 1, &shp)==0 ){
    for(i=0; i<shp.nRec; i++){
      TrGeom g;
      if( trGeomFromBlob(&g, shp.aRec[i].pBlob, shp.aRec[i].nBlob)==0 ){
        trGeomFree(&g);
      }
    }
    trShapesFree(&shp);
  }
  trSourceClose(s);
  return 0;
}
