/*
** pipbench.c - the point-in-polygon index alone, without SQL overhead:
** build time, bytes, and lookups per second.
**
**   build/pipbench TRACTS.db POINTS.db [table]
**
** Reads (GEOID, geometry) from TRACTS.db's tracts table exactly as
** tract_of does, builds the index, then looks up every (lon, lat) of the
** points table (read into memory first, so SQLite is not timed).
** Prints one line: polygons, vertices, raw coordinate bytes, index bytes,
** their ratio, build seconds, lookups per second, and a checksum of the
** answers (to compare builds).
*/
#include "../ext/tracts_int.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void){
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec*1e-9;
}

typedef struct Feed { PipBuilder *pB; uint32_t iPoly; } Feed;
static int feedRing(void *p, int nPt, const unsigned char *a){
  Feed *f = (Feed*)p;
  return pipBuilderRing(f->pB, f->iPoly, nPt, a);
}

int main(int argc, char **argv){
  sqlite3 *db;
  sqlite3_stmt *st;
  PipBuilder *pB;
  PipIndex *pIdx;
  Feed feed;
  double t0, tRead, tBuild, tLook, *aPt = 0;
  size_t nPt = 0, nAlloc = 0, nVert = 0, i;
  uint64_t sum = 0;
  int64_t nHit = 0;
  char zStat[512];
  const char *zTab = argc>3 ? argv[3] : "points";
  char *zSql;
  if( argc<3 ){ fprintf(stderr, "usage: %s TRACTS.db POINTS.db [table]\n", argv[0]); return 2; }
  if( sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READONLY, 0) ) return 1;
  t0 = now();
  pB = pipBuilderNew();
  if( sqlite3_prepare_v2(db, "SELECT sum(length(geometry)) FROM tracts", -1, &st, 0)==SQLITE_OK
   && sqlite3_step(st)==SQLITE_ROW ){
    pipBuilderReserve(pB, (size_t)(sqlite3_column_int64(st, 0)/16));
  }
  sqlite3_finalize(st);
  feed.pB = pB;
  feed.iPoly = 0;
  if( sqlite3_prepare_v2(db, "SELECT GEOID, geometry FROM tracts ORDER BY GEOID", -1, &st, 0) ){
    fprintf(stderr, "%s\n", sqlite3_errmsg(db)); return 1;
  }
  while( sqlite3_step(st)==SQLITE_ROW ){
    const unsigned char *b = sqlite3_column_blob(st, 1);
    int n = sqlite3_column_bytes(st, 1);
    if( trBlobRings(b, n, 0, feedRing, &feed) ){ fprintf(stderr, "bad blob\n"); return 1; }
    nVert += (size_t)(n - 48) / 16;
    feed.iPoly++;
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  tRead = now() - t0;
  pIdx = pipBuild(pB);
  tBuild = now() - t0;
  if( pIdx==0 ){ fprintf(stderr, "out of memory\n"); return 1; }
  if( sqlite3_open_v2(argv[2], &db, SQLITE_OPEN_READONLY, 0) ) return 1;
  zSql = sqlite3_mprintf("SELECT lon, lat FROM \"%w\"", zTab);
  if( sqlite3_prepare_v2(db, zSql, -1, &st, 0) ){ fprintf(stderr, "%s\n", sqlite3_errmsg(db)); return 1; }
  sqlite3_free(zSql);
  while( sqlite3_step(st)==SQLITE_ROW ){
    if( nPt>=nAlloc ){ nAlloc = nAlloc*2 + 1024; aPt = realloc(aPt, nAlloc*2*sizeof(double)); }
    aPt[2*nPt] = sqlite3_column_double(st, 0);
    aPt[2*nPt+1] = sqlite3_column_double(st, 1);
    nPt++;
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  t0 = now();
  for(i=0; i<nPt; i++){
    int64_t r = pipLookup(pIdx, aPt[2*i], aPt[2*i+1], 0);
    if( r>=0 ){ nHit++; sum = sum*31 + (uint64_t)r; }
  }
  tLook = now() - t0;
  pipStats(pIdx, zStat, sizeof(zStat));
  printf("polygons=%u vertices=%zu raw_bytes=%zu index_bytes=%zu ratio=%.2f "
         "read_s=%.2f build_s=%.2f points=%zu hits=%lld lookups_per_s=%.0f checksum=%016llx\n",
         feed.iPoly, nVert, nVert*16, pipBytes(pIdx),
         (double)pipBytes(pIdx)/(double)(nVert*16), tRead, tBuild, nPt,
         (long long)nHit, (double)nPt/tLook, (unsigned long long)sum);
  printf("%s\n", zStat);
  pipFree(pIdx);
  free(aPt);
  return 0;
}
