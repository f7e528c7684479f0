/*
** lookup.c - tract_of(lon, lat) and the per-connection index cache.
**
** Usage
**
**     SELECT tract_of(-71.4128, 41.8240);            -- '44007000700'
**     SELECT id, tract_of(lon, lat) FROM points;
**
**   Returns the GEOID of the tract covering the point, or NULL when no
**   loaded tract covers it (with tracts_config('nearest_m', M) > 0: the
**   nearest tract within M metres, else NULL). A point on an edge or vertex shared by several
**   tracts gets the one with the smallest GEOID (see pip.c). Longitude and
**   latitude are degrees; NAD83 (the Census datum) and WGS84 are treated
**   as the same (they differ by about a metre in the conterminous US).
**
** Inputs
**
**   NULL gives NULL. Integers and reals are used as they are; text that
**   SQLite reads as a number ('-71.41', ' -71.41 ', what .import stores)
**   counts as that number. Other text, blobs, NaN, infinities, latitudes
**   outside [-90, 90] and longitudes outside [-180, 180] give NULL.
**   tract_of with other than 2 arguments is an SQL error. With no tracts
**   table the call fails: "tract_of: no tracts loaded (run load_tracts)".
**
** How it works
**
**   On first use the connection reads every (GEOID, geometry) of the
**   tracts table, in GEOID order, and builds a PipIndex. The index is kept
**   until the table changes:
**   - changes made through this connection fire TEMP triggers that call
**     tracts_touch(), which marks the index stale (no cost per call); the
**     triggers are made when the extension is loaded, by load_tracts, or
**     by the first call, but never inside a write transaction (a schema
**     change there aborts the statement): until they exist every call
**     asks the layer's generation (a few microseconds);
**   - commits by any connection change the pager's data version
**     (SQLITE_FCNTL_DATA_VERSION, read on every call); then the layer's
**     generation in tracts_layers, kept by triggers stored with the table,
**     says whether the tracts changed. A statement that reads no table
**     (SELECT tract_of(-71.4, 41.8)) holds no read transaction, so the
**     version may be old: such calls always ask the generation.
**   A stale index is rebuilt by the next call. A ROLLBACK fires no
**   trigger, so an index built inside an open transaction is checked
**   against the generation on every call (a few microseconds) until a call
**   made outside any transaction finds it current.
**
** Limits
**
**   The tracts table of the main schema. tract_of is not DETERMINISTIC
**   (its answer depends on the table), so it cannot be used in indexes or
**   generated columns.
*/
#include "tracts_sql.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct TrLookup {
  PipIndex *pIdx;           /* the index, NULL until built */
  char *zKeys;              /* keys of the polygons, NUL-terminated */
  uint32_t *aKeyOff;        /* offset of polygon i's key in zKeys */
  uint32_t nPoly;           /* polygons */
  int bStale;               /* set by tracts_touch() */
  int bTriggers;            /* TEMP triggers created */
  unsigned int iDataVersion;/* pager data version when last checked */
  int bInTxn;               /* built inside a transaction: recheck */
  sqlite3_int64 iGen;       /* tracts_layers.generation of the index */
};

static void lookupClear(TrLookup *p){
  pipFree(p->pIdx);
  p->pIdx = 0;
  free(p->zKeys);
  p->zKeys = 0;
  free(p->aKeyOff);
  p->aKeyOff = 0;
  p->nPoly = 0;
}

void trLookupFree(TrLookup *p){
  if( p==0 ) return;
  lookupClear(p);
  sqlite3_free(p);
}

int trInterrupted(sqlite3 *db){
  /* A statement prepared or started while the connection is interrupted
  ** fails with SQLITE_INTERRUPT; this works on every SQLite since 3.7.
  ** (The parser checks too, so prepare itself may fail.) */
  sqlite3_stmt *pStmt = 0;
  int rc = sqlite3_prepare_v2(db, "SELECT 1", -1, &pStmt, 0);
  if( rc ) return rc==SQLITE_INTERRUPT;
  rc = sqlite3_step(pStmt);
  sqlite3_finalize(pStmt);
  return rc==SQLITE_INTERRUPT;
}

/* Generation of the tracts layer, or -1 if there is no such table. */
static sqlite3_int64 layerGeneration(sqlite3 *db){
  sqlite3_stmt *pStmt = 0;
  sqlite3_int64 g = -1;
  if( sqlite3_prepare_v2(db, "SELECT generation FROM main.tracts_layers "
                         "WHERE layer='tracts' AND EXISTS(SELECT 1 FROM "
                         "main.sqlite_schema WHERE type='table' AND "
                         "name='tracts')", -1, &pStmt, 0)==SQLITE_OK
   && sqlite3_step(pStmt)==SQLITE_ROW ){
    g = sqlite3_column_int64(pStmt, 0);
  }
  sqlite3_finalize(pStmt);
  return g;
}

static unsigned int dataVersion(sqlite3 *db){
  unsigned int v = 0;
  sqlite3_file_control(db, "main", SQLITE_FCNTL_DATA_VERSION, &v);
  return v;
}

/* Make sure TEMP triggers tell this connection about changes to the
** tracts table. Never inside a write transaction: a schema change there
** would abort the statement being run (CREATE TABLE ... AS SELECT
** tract_of(...) would fail). Sets p->bTriggers when they exist. */
static void lookupWatch(TractsConn *pConn, TrLookup *p){
  sqlite3 *db = pConn->db;
  sqlite3_stmt *pStmt = 0;
  int nHave = 0, bTable = 0, i;
  static const char *azEvent[3] = { "INSERT", "UPDATE", "DELETE" };
  if( sqlite3_prepare_v2(db, "SELECT (SELECT count(*) FROM temp.sqlite_schema "
        "WHERE type='trigger' AND name LIKE 'tracts_touch__'), EXISTS(SELECT 1 "
        "FROM main.sqlite_schema WHERE type='table' AND name='tracts')", -1,
        &pStmt, 0)==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
    nHave = sqlite3_column_int(pStmt, 0);
    bTable = sqlite3_column_int(pStmt, 1);
  }
  sqlite3_finalize(pStmt);
  p->bTriggers = nHave==3;
  if( p->bTriggers || !bTable ) return;
  if( sqlite3_txn_state(db, "main")==SQLITE_TXN_WRITE
   || sqlite3_txn_state(db, "temp")==SQLITE_TXN_WRITE ) return;
  for(i=0; i<3; i++){
    char *zSql = sqlite3_mprintf(
      "CREATE TEMP TRIGGER IF NOT EXISTS tracts_touch_%c AFTER %s ON "
      "main.tracts BEGIN SELECT tracts_touch(); END", azEvent[i][0]+32,
      azEvent[i]);
    int rc = zSql ? sqlite3_exec(db, zSql, 0, 0, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
    if( rc ) return;
  }
  p->bTriggers = 1;
}

static TrLookup *lookupGet(TractsConn *pConn){
  TrLookup *p = pConn->pLookup;
  if( p==0 ){
    p = pConn->pLookup = sqlite3_malloc(sizeof(TrLookup));
    if( p==0 ) return 0;
    memset(p, 0, sizeof(*p));
    p->bStale = 1;
  }
  return p;
}

void trLookupWatch(TractsConn *pConn){
  TrLookup *p = lookupGet(pConn);
  if( p ) lookupWatch(pConn, p);
}

/* Feed a blob's rings to the builder. */
typedef struct RingFeed RingFeed;
struct RingFeed {
  PipBuilder *pB;
  uint32_t iPoly;
};
static int feedRing(void *pCtx, int nPt, const unsigned char *aXY){
  RingFeed *f = (RingFeed*)pCtx;
  return pipBuilderRing(f->pB, f->iPoly, nPt, aXY);
}

/* Build the index from the tracts table. */
static int lookupBuild(TractsConn *pConn, TrLookup *p, char **pzErr){
  sqlite3 *db = pConn->db;
  sqlite3_stmt *pStmt = 0;
  PipBuilder *pB = 0;
  size_t nKey = 0, nKeyAlloc = 0;
  uint32_t nPoly = 0, nOffAlloc = 0;
  int rc;
  lookupClear(p);
  p->iGen = layerGeneration(db);
  p->iDataVersion = dataVersion(db);
  if( p->iGen<0 ){
    *pzErr = sqlite3_mprintf("tract_of: no tracts loaded (run load_tracts)");
    return SQLITE_ERROR;
  }
  lookupWatch(pConn, p);
  rc = sqlite3_prepare_v2(db, "SELECT GEOID, geometry FROM main.tracts "
                          "ORDER BY GEOID", -1, &pStmt, 0);
  if( rc ){
    *pzErr = sqlite3_mprintf("tract_of: cannot read the tracts table: %s",
                             sqlite3_errmsg(db));
    return rc;
  }
  trMonitorMark(pConn, "index build");
  pB = pipBuilderNew();
  if( pB==0 ){ rc = SQLITE_NOMEM; goto fail; }
  {
    /* size the vertex arrays once: a blob holds 16 bytes a point */
    sqlite3_stmt *pSum = 0;
    if( sqlite3_prepare_v2(db, "SELECT sum(length(geometry)) FROM main.tracts",
                           -1, &pSum, 0)==SQLITE_OK
     && sqlite3_step(pSum)==SQLITE_ROW ){
      sqlite3_int64 n = sqlite3_column_int64(pSum, 0)/16;
      if( n>0 && n<((sqlite3_int64)1<<32) ) pipBuilderReserve(pB, (size_t)n);
    }
    sqlite3_finalize(pSum);
  }
  while( (rc = sqlite3_step(pStmt))==SQLITE_ROW ){
    const unsigned char *zKey = sqlite3_column_text(pStmt, 0);
    int nK = sqlite3_column_bytes(pStmt, 0);
    const unsigned char *pBlob = sqlite3_column_blob(pStmt, 1);
    int nBlob = sqlite3_column_bytes(pStmt, 1);
    RingFeed feed;
    int rcBlob;
    if( zKey==0 ) continue;
    if( pBlob==0 ) continue;            /* a tract without geometry */
    feed.pB = pB;
    feed.iPoly = nPoly;
    rcBlob = trBlobRings(pBlob, nBlob, 0, feedRing, &feed);
    if( rcBlob ){
      *pzErr = sqlite3_mprintf("tract_of: tract '%s' has a %s geometry",
                               zKey, rcBlob==1 ? "malformed" : "out-of-range");
      rc = SQLITE_ERROR;
      goto fail;
    }
    if( nPoly>=nOffAlloc ){
      uint32_t nNew = nOffAlloc*2 + 1024;
      uint32_t *a = realloc(p->aKeyOff, sizeof(uint32_t)*nNew);
      if( a==0 ){ rc = SQLITE_NOMEM; goto fail; }
      p->aKeyOff = a;
      nOffAlloc = nNew;
    }
    if( nKey + (size_t)nK + 1 > nKeyAlloc ){
      size_t nNew = (nKey + (size_t)nK + 1)*2 + 4096;
      char *a = realloc(p->zKeys, nNew);
      if( a==0 || nNew>0xffffffffu ){ free(a==p->zKeys?0:a); rc = SQLITE_NOMEM; goto fail; }
      p->zKeys = a;
      nKeyAlloc = nNew;
    }
    p->aKeyOff[nPoly] = (uint32_t)nKey;
    memcpy(p->zKeys + nKey, zKey, (size_t)nK + 1);
    nKey += (size_t)nK + 1;
    nPoly++;
  }
  if( rc!=SQLITE_DONE ){
    *pzErr = sqlite3_mprintf("tract_of: cannot read the tracts table: %s",
                             sqlite3_errmsg(db));
    goto fail;
  }
  sqlite3_finalize(pStmt);
  pStmt = 0;
  p->pIdx = pipBuild(pB);
  pB = 0;
  if( p->pIdx==0 ){ rc = SQLITE_NOMEM; goto fail; }
  p->nPoly = nPoly;
  p->bStale = 0;
  trMonitorMark(pConn, "index built");
  p->bInTxn = !sqlite3_get_autocommit(db);
  return SQLITE_OK;
fail:
  sqlite3_finalize(pStmt);
  pipBuilderFree(pB);
  lookupClear(p);
  if( rc==SQLITE_NOMEM && *pzErr==0 ){
    *pzErr = sqlite3_mprintf("tract_of: out of memory building the index");
  }
  return rc;
}

const PipIndex *trLookupIndex(TractsConn *pConn, char **pzErr){
  sqlite3 *db = pConn->db;
  TrLookup *p = lookupGet(pConn);
  if( p==0 ){ *pzErr = sqlite3_mprintf("tract_of: out of memory"); return 0; }
  if( !p->bStale && p->pIdx ){
    unsigned int v = dataVersion(db);
    /* Trusted without asking when every cheap sign says nothing changed:
    ** the TEMP triggers watch this connection, no commit changed the data
    ** version, and a read transaction holds it current (SELECT
    ** tract_of(1, 2) reads no table, so the pager has not looked at the
    ** file). After a build inside a transaction a ROLLBACK could undo
    ** changes without firing any trigger, so that too means asking. */
    if( p->bTriggers && !p->bInTxn && v==p->iDataVersion
     && sqlite3_txn_state(db, "main")!=SQLITE_TXN_NONE ){
      return p->pIdx;
    }
    p->iDataVersion = v;
    if( layerGeneration(db)==p->iGen ){
      p->bInTxn = !sqlite3_get_autocommit(db);
      if( !p->bTriggers ) lookupWatch(pConn, p);
      return p->pIdx;
    }
  }
  if( lookupBuild(pConn, p, pzErr) ) return 0;
  return p->pIdx;
}

void trLookupKeys(TractsConn *pConn, TrLookupKeys *p){
  TrLookup *q = pConn->pLookup;
  p->zKeys = q ? q->zKeys : 0;
  p->aOff = q ? q->aKeyOff : 0;
  p->nPoly = q ? q->nPoly : 0;
}

/* The number in v, or 1 if v is not a usable number. */
static int argDouble(sqlite3_value *v, double *pr){
  int t = sqlite3_value_type(v);
  if( t==SQLITE_TEXT ) t = sqlite3_value_numeric_type(v);
  if( t!=SQLITE_INTEGER && t!=SQLITE_FLOAT ) return 1;
  *pr = sqlite3_value_double(v);
  return !isfinite(*pr);
}

static void tractOfFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  TractsConn *pConn = (TractsConn*)sqlite3_user_data(ctx);
  const PipIndex *pIdx;
  double lon, lat;
  int64_t i;
  char *zErr = 0;
  (void)argc;
  if( argDouble(argv[0], &lon) || argDouble(argv[1], &lat) ) return;
  if( lon<-180.0 || lon>180.0 || lat<-90.0 || lat>90.0 ) return;
  pIdx = trLookupIndex(pConn, &zErr);
  if( pIdx==0 ){
    sqlite3_result_error(ctx, zErr ? zErr : "tract_of: out of memory", -1);
    sqlite3_free(zErr);
    return;
  }
  i = pipLookup(pIdx, lon, lat, 0);
  if( i<0 ){
    int64_t m = trConfigInt(pConn, TR_SET_NEAREST);
    if( m>0 ) i = pipNearest(pIdx, lon, lat, (double)m, 0);
  }
  if( i>=0 && (uint32_t)i<pConn->pLookup->nPoly ){
    const char *z = pConn->pLookup->zKeys + pConn->pLookup->aKeyOff[i];
    sqlite3_result_text(ctx, z, -1, SQLITE_TRANSIENT);
  }
}

/* tracts_touch(): called by TEMP triggers when the tracts table changes. */
static void touchFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  TractsConn *pConn = (TractsConn*)sqlite3_user_data(ctx);
  (void)argc; (void)argv;
  if( pConn->pLookup ) pConn->pLookup->bStale = 1;
}

int trLookupRegister(sqlite3 *db, TractsConn *pConn){
  int rc;
  pConn->nRef++;
  rc = sqlite3_create_function_v2(db, "tract_of", 2,
         SQLITE_UTF8|SQLITE_INNOCUOUS, pConn, tractOfFunc, 0, 0, trConnUnref);
  if( rc ) return rc;
  pConn->nRef++;
  return sqlite3_create_function_v2(db, "tracts_touch", 0,
         SQLITE_UTF8|SQLITE_INNOCUOUS, pConn, touchFunc, 0, 0, trConnUnref);
}
