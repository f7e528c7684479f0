/*
** genpoints.c -- fill an SQLite table with N deterministic pseudo-random
** points "clustered like businesses" over the states that gentracts.c
** generates, for benchmarks of the "tracts" SQLite extension.
**
** BUILD
**
**   gcc -O2 -g -Wall -Wextra -Werror -o build/genpoints tools/genpoints.c \
**       $(pkg-config --cflags --libs sqlite3) -lm
**
** USAGE
**
**   genpoints --db FILE [--table points] [--n 1000000] [--seed S]
**             [--bbox lonmin,latmin,lonmax,latmax] [--states LIST|all]
**             [--cities C] [--shuffle]
**
**   --db FILE       SQLite database, created if missing.
**   --table NAME    table to (re)create (default "points"); an existing table
**                   of that name is dropped.  Its schema is
**                       NAME(id INTEGER PRIMARY KEY, lon REAL, lat REAL)
**   --n N           number of rows (default 1000000); ids are 1..N.
**   --seed S        64-bit seed (default 1).  Same arguments, same rows.
**   --states LIST   comma separated FIPS codes or USPS abbreviations, or
**                   "all" (default): the states whose rectangles (as placed
**                   by gentracts) receive the points.
**   --bbox ...      only generate points inside this lon/lat box; the state
**                   rectangles are clipped to it (if none overlaps, the box
**                   itself is used as the land area).
**   --cities C      number of cluster centres (default 300).
**   --shuffle       insert the rows in a random order of id instead of in
**                   increasing id order: same table content, but about 5
**                   times slower (30 s for 10M rows), up to 1 GB of page
**                   cache, and a file twice as large (half-full pages).
**
**   One line is printed on stdout:
**       TABLE rows=N cluster=A background=B water=C seconds=T
**
** HOW IT WORKS
**
**   Every row is an independent draw from one mixture distribution, so the
**   ids are in random spatial order (the same as generating the points
**   city by city and shuffling them):
**
**   - 94.5% of the points belong to a "city".  C city centres are drawn
**     uniformly inside the state rectangles, the state chosen with
**     probability proportional to its real tract count (a population
**     proxy) times the clipped share of its rectangle.  Each city has a size
**     drawn from a Pareto distribution (alpha 1.5, capped at 100 times the
**     smallest; with 300 cities the largest gets 5-10% of the points),
**     which is its probability of being chosen, and a spread sigma between
**     0.01 and 0.3 degrees (0.1 or more for the largest cities).  A
**     point is centre + sigma * N(0,1) in longitude and in latitude; points
**     near the coast may fall in the water.  With --bbox, points outside
**     the box are redrawn.
**   - 5% are uniform "background" points over the (clipped) state
**     rectangles, the rectangle chosen proportionally to its area.
**   - 0.5% are "water" points: uniform over the bounding box of the chosen
**     rectangles widened by their water margin (or over --bbox), rejected
**     while they fall inside ANY of the 52 state rectangles, so they are
**     outside every tract except, rarely, a small island part.
**
**   Coordinates are rounded to 6 decimal places.  All rows are inserted
**   by one prepared statement inside one transaction with
**   PRAGMA synchronous=OFF and journal_mode=MEMORY; 10 million rows take
**   a few seconds.  The PRNG is splitmix64; no time() or rand().
**
**   The state table and statePlace() below are a copy of the ones in
**   tools/gentracts.c.  KEEP THEM IN SYNC: if the placement of the states
**   changes there, change it here too.
**
** LIMITS
**
**   N up to 2^31-1 rows.  --shuffle needs 4 bytes of memory per row.
**   Determinism relies on the platform's libm (log, sqrt, cos).
*/
#define _GNU_SOURCE 1
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sqlite3.h>

#ifndef M_PI
# define M_PI 3.14159265358979323846
#endif

static const char *zArgv0 = "genpoints";

#include "common.h"

/****************************************************************************
** State table and placement: tools/states.h, shared with gentracts.
*/
#include "states.h"

/****************************************************************************
** Point generator
*/
typedef struct Area Area;          /* a land rectangle (clipped state) */
struct Area {
  double aBox[4];
  double rWeight;                  /* cumulative, for choosing cities */
  double rArea;                    /* cumulative, for background points */
};

typedef struct City City;
struct City {
  double x, y;                     /* centre */
  double sigma;                    /* spread, degrees */
  double rCum;                     /* cumulative size */
};

typedef struct Gen Gen;
struct Gen {
  Rng rng;
  int nArea;
  Area aArea[N_STATE+1];
  int nCity;
  City *aCity;
  int bBox;
  double aBbox[4];                 /* --bbox */
  double aWater[4];                /* extent for water points */
  double aAll[N_STATE][4];         /* every state rectangle */
  long long nCluster, nBack, nWater;
};

/* Index of the first element with cumulative value > u*total */
static int pickCum(const double *aCum, int stride, int n, double u){
  int lo = 0, hi = n-1;
  double t = u*aCum[(size_t)(n-1)*stride];
  while( lo<hi ){
    int mid = (lo+hi)/2;
    if( aCum[(size_t)mid*stride]>t ) hi = mid; else lo = mid+1;
  }
  return lo;
}

static int inAnyState(const Gen *p, double x, double y){
  int i;
  for(i=0; i<N_STATE; i++){
    if( x>=p->aAll[i][0] && x<=p->aAll[i][2]
     && y>=p->aAll[i][1] && y<=p->aAll[i][3] ) return 1;
  }
  return 0;
}

static int inBbox(const Gen *p, double x, double y){
  return !p->bBox || (x>=p->aBbox[0] && x<=p->aBbox[2]
                   && y>=p->aBbox[1] && y<=p->aBbox[3]);
}

static void uniformInBox(Rng *pRng, const double *aBox, double *pX, double *pY){
  *pX = aBox[0] + rngUnit(pRng)*(aBox[2]-aBox[0]);
  *pY = aBox[1] + rngUnit(pRng)*(aBox[3]-aBox[1]);
}

static void genInit(Gen *p, const int *aSel, int nSel, uint64_t iSeed,
                    int nCity){
  int i, k;
  double aExt[4] = { 1e9, 1e9, -1e9, -1e9 };
  double cw = 0.0, ca = 0.0, cs = 0.0;
  for(i=0; i<N_STATE; i++){
    double mx, my;
    statePlace(&aStateDef[i], p->aAll[i], &mx, &my);
  }
  p->rng.s = iSeed ^ 0x6a09e667f3bcc908ULL;
  splitmix64(&p->rng.s);
  p->nArea = 0;
  for(k=0; k<nSel; k++){
    const StateDef *pDef = &aStateDef[aSel[k]];
    double aBox[4], mx, my, full, a;
    Area *pA = &p->aArea[p->nArea];
    statePlace(pDef, aBox, &mx, &my);
    if( aBox[0]-mx<aExt[0] ) aExt[0] = aBox[0]-mx;
    if( aBox[1]-my<aExt[1] ) aExt[1] = aBox[1]-my;
    if( aBox[2]+mx>aExt[2] ) aExt[2] = aBox[2]+mx;
    if( aBox[3]+my>aExt[3] ) aExt[3] = aBox[3]+my;
    full = (aBox[2]-aBox[0])*(aBox[3]-aBox[1]);
    if( p->bBox ){
      aBox[0] = fmax(aBox[0], p->aBbox[0]);
      aBox[1] = fmax(aBox[1], p->aBbox[1]);
      aBox[2] = fmin(aBox[2], p->aBbox[2]);
      aBox[3] = fmin(aBox[3], p->aBbox[3]);
      if( aBox[0]>=aBox[2] || aBox[1]>=aBox[3] ) continue;
    }
    memcpy(pA->aBox, aBox, sizeof(aBox));
    a = (aBox[2]-aBox[0])*(aBox[3]-aBox[1]);
    cw += pDef->nWeight*(a/full);
    ca += a*cos(0.5*(aBox[1]+aBox[3])*M_PI/180.0);
    pA->rWeight = cw;
    pA->rArea = ca;
    p->nArea++;
  }
  if( p->bBox ){
    memcpy(p->aWater, p->aBbox, sizeof(p->aWater));
    if( p->nArea==0 ){
      memcpy(p->aArea[0].aBox, p->aBbox, sizeof(p->aBbox));
      p->aArea[0].rWeight = p->aArea[0].rArea = 1.0;
      p->nArea = 1;
    }
  }else{
    memcpy(p->aWater, aExt, sizeof(aExt));
  }

  /* Cities */
  p->nCity = nCity;
  p->aCity = xmalloc(sizeof(City)*nCity);
  for(i=0; i<nCity; i++){
    City *pC = &p->aCity[i];
    int a = pickCum(&p->aArea[0].rWeight, sizeof(Area)/sizeof(double),
                    p->nArea, rngUnit(&p->rng));
    double size, v;
    uniformInBox(&p->rng, p->aArea[a].aBox, &pC->x, &pC->y);
    size = pow(1.0 - rngUnit(&p->rng), -1.0/1.5);
    if( size>100.0 ) size = 100.0;
    v = 0.3*rngUnit(&p->rng) + 0.7*log(size)/log(100.0);
    pC->sigma = 0.01*pow(30.0, v);
    cs += size;
    pC->rCum = cs;
  }
}

static void genPoint(Gen *p, double *pX, double *pY){
  double u = rngUnit(&p->rng);
  double x, y;
  int n;
  if( u<0.005 ){
    for(n=0; n<1000; n++){
      uniformInBox(&p->rng, p->aWater, &x, &y);
      if( !inAnyState(p, x, y) ) break;
    }
    p->nWater++;
  }else if( u<0.055 ){
    int a = pickCum(&p->aArea[0].rArea, sizeof(Area)/sizeof(double),
                    p->nArea, rngUnit(&p->rng));
    uniformInBox(&p->rng, p->aArea[a].aBox, &x, &y);
    p->nBack++;
  }else{
    int c = pickCum(&p->aCity[0].rCum, sizeof(City)/sizeof(double),
                    p->nCity, rngUnit(&p->rng));
    const City *pC = &p->aCity[c];
    for(n=0; n<100; n++){
      x = pC->x + pC->sigma*rngNormal(&p->rng);
      y = pC->y + pC->sigma*rngNormal(&p->rng);
      if( inBbox(p, x, y) ) break;
    }
    if( n==100 ){ x = pC->x; y = pC->y; }
    p->nCluster++;
  }
  *pX = round6(x);
  *pY = round6(y);
}

/****************************************************************************
** Main
*/
static void usage(void){
  fprintf(stderr,
    "usage: %s --db FILE [--table points] [--n 1000000] [--seed S]\n"
    "           [--bbox lonmin,latmin,lonmax,latmax] [--states LIST|all]\n"
    "           [--cities C] [--shuffle]\n"
    "See the comment at the top of tools/genpoints.c for details.\n", zArgv0);
  exit(2);
}

static void execSql(sqlite3 *db, const char *zSql){
  char *zErr = 0;
  if( sqlite3_exec(db, zSql, 0, 0, &zErr)!=SQLITE_OK ){
    fatal("%s: %s", zSql, zErr ? zErr : sqlite3_errmsg(db));
  }
}

int main(int argc, char **argv){
  const char *zDb = 0, *zTable = "points", *zStates = "all", *zBbox = 0;
  long long nRow = 1000000;
  uint64_t iSeed = 1;
  int nCity = 300, bShuffle = 0;
  int aSel[N_STATE], nSel = 0, i;
  Gen *pGen;
  sqlite3 *db;
  sqlite3_stmt *pStmt;
  char *zSql;
  uint32_t *aPerm = 0;
  struct timespec t0, t1;

  clock_gettime(CLOCK_MONOTONIC, &t0);
  for(i=1; i<argc; i++){
    const char *zVal;
    char zKey[64];
    const char *z = optName(argv[i], zKey, sizeof(zKey), &zVal);
    if( z==0 ) usage();
#define ARG (zVal ? zVal : (i+1<argc ? argv[++i] : (usage(), "")))
    if( strcmp(z, "-db")==0 ) zDb = ARG;
    else if( strcmp(z, "-table")==0 ) zTable = ARG;
    else if( strcmp(z, "-n")==0 ) nRow = atoll(ARG);
    else if( strcmp(z, "-seed")==0 ) iSeed = strtoull(ARG, 0, 0);
    else if( strcmp(z, "-bbox")==0 ) zBbox = ARG;
    else if( strcmp(z, "-states")==0 ) zStates = ARG;
    else if( strcmp(z, "-cities")==0 ) nCity = atoi(ARG);
    else if( strcmp(z, "-shuffle")==0 ) bShuffle = 1;
    else usage();
#undef ARG
  }
  if( zDb==0 ) usage();
  if( nRow<0 || nRow>2147483647LL ) fatal("--n out of range");
  if( nCity<1 ) fatal("--cities must be at least 1");

  if( strcmp(zStates, "all")==0 ){
    for(i=0; i<N_STATE; i++) aSel[nSel++] = i;
  }else{
    char *zList = strdup(zStates), *zTok, *zSave = 0;
    int aUsed[N_STATE];
    memset(aUsed, 0, sizeof(aUsed));
    if( zList==0 ) fatal("out of memory");
    for(zTok=strtok_r(zList, ",", &zSave); zTok; zTok=strtok_r(0, ",", &zSave)){
      const StateDef *pDef = stateFind(zTok);
      if( pDef==0 ) fatal("unknown state: %s", zTok);
      aUsed[pDef-aStateDef] = 1;
    }
    for(i=0; i<N_STATE; i++) if( aUsed[i] ) aSel[nSel++] = i;
    free(zList);
    if( nSel==0 ) fatal("no states chosen");
  }

  pGen = xmalloc(sizeof(Gen));
  memset(pGen, 0, sizeof(Gen));
  if( zBbox ){
    double *a = pGen->aBbox;
    if( sscanf(zBbox, "%lf,%lf,%lf,%lf", &a[0], &a[1], &a[2], &a[3])!=4
     || a[0]>=a[2] || a[1]>=a[3] ){
      fatal("bad --bbox, expected lonmin,latmin,lonmax,latmax: %s", zBbox);
    }
    pGen->bBox = 1;
  }
  genInit(pGen, aSel, nSel, iSeed, nCity);

  if( bShuffle ){
    Rng r;
    long long k;
    r.s = iSeed ^ 0xbb67ae8584caa73bULL;
    aPerm = xmalloc(sizeof(uint32_t)*(nRow ? nRow : 1));
    for(k=0; k<nRow; k++) aPerm[k] = (uint32_t)(k+1);
    for(k=nRow-1; k>0; k--){
      long long j = (long long)(rngUnit(&r)*(k+1));
      uint32_t t = aPerm[k];
      aPerm[k] = aPerm[j];
      aPerm[j] = t;
    }
  }

  if( sqlite3_open(zDb, &db)!=SQLITE_OK ){
    fatal("cannot open %s: %s", zDb, sqlite3_errmsg(db));
  }
  /* Appending in id order needs little cache; random order needs the whole
  ** table in cache to avoid re-reading pages. */
  execSql(db, "PRAGMA synchronous=OFF; PRAGMA journal_mode=MEMORY");
  execSql(db, bShuffle ? "PRAGMA cache_size=-1048576" : "PRAGMA cache_size=-16384");
  execSql(db, "BEGIN");
  zSql = sqlite3_mprintf("DROP TABLE IF EXISTS \"%w\";"
                         "CREATE TABLE \"%w\"(id INTEGER PRIMARY KEY,"
                         " lon REAL, lat REAL)", zTable, zTable);
  execSql(db, zSql);
  sqlite3_free(zSql);
  zSql = sqlite3_mprintf("INSERT INTO \"%w\"(id,lon,lat) VALUES(?1,?2,?3)",
                         zTable);
  if( sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0)!=SQLITE_OK ){
    fatal("%s: %s", zSql, sqlite3_errmsg(db));
  }
  sqlite3_free(zSql);
  {
    long long k;
    for(k=0; k<nRow; k++){
      double x, y;
      genPoint(pGen, &x, &y);
      sqlite3_bind_int64(pStmt, 1, aPerm ? (sqlite3_int64)aPerm[k] : k+1);
      sqlite3_bind_double(pStmt, 2, x);
      sqlite3_bind_double(pStmt, 3, y);
      if( sqlite3_step(pStmt)!=SQLITE_DONE ){
        fatal("insert failed: %s", sqlite3_errmsg(db));
      }
      sqlite3_reset(pStmt);
    }
  }
  sqlite3_finalize(pStmt);
  execSql(db, "COMMIT");
  if( sqlite3_close(db)!=SQLITE_OK ) fatal("cannot close %s", zDb);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("%s rows=%lld cluster=%lld background=%lld water=%lld seconds=%.2f\n",
         zTable, nRow, pGen->nCluster, pGen->nBack, pGen->nWater,
         (t1.tv_sec-t0.tv_sec) + 1e-9*(t1.tv_nsec-t0.tv_nsec));
  free(pGen->aCity);
  free(pGen);
  free(aPerm);
  return 0;
}
