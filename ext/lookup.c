/*
** lookup.c - tract_of(lon, lat), boundary_of(layer, lon, lat) and the
** per-connection index caches (one per layer).
**
** Usage
**
**     SELECT tract_of(-71.4128, 41.8240);            -- '44007000700'
**     SELECT id, tract_of(lon, lat) FROM points;
**     SELECT boundary_of('counties', -71.4128, 41.8240);   -- '44007'
**
**   boundary_of answers from any loaded layer (registry.c) with its key
**   column, by the same rules; tract_of(lon, lat) is boundary_of('tracts',
**   lon, lat). Below, "the tracts table" stands for the layer's table.
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

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct TrLookup {
  TrLookup *pNext;          /* the connection's next layer */
  char zLayer[64];          /* the layer (its table) */
  char zKey[64];            /* its key column */
  const char *zKeyExpr;     /* the answer, if not the key (census_layers.h) */
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
  while( p ){
    TrLookup *pNext = p->pNext;
    lookupClear(p);
    sqlite3_free(p);
    p = pNext;
  }
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

/* Generation of layer p, or -1 if there is no such layer (table). Its
** key column into p->zKey (GEOID in databases from before user layers). */
static sqlite3_int64 layerGeneration(sqlite3 *db, TrLookup *p){
  sqlite3_stmt *pStmt = 0;
  sqlite3_int64 g = -1;
  if( sqlite3_prepare_v2(db, "SELECT generation, * FROM main.tracts_layers "
                         "WHERE layer=?1 AND EXISTS(SELECT 1 FROM "
                         "main.sqlite_schema WHERE type='table' AND "
                         "name=?1)", -1, &pStmt, 0)==SQLITE_OK ){
    sqlite3_bind_text(pStmt, 1, p->zLayer, -1, SQLITE_STATIC);
    if( sqlite3_step(pStmt)==SQLITE_ROW ){
      int bNew = sqlite3_column_count(pStmt)>=6;
      const char *zKey = bNew ? (const char*)sqlite3_column_text(pStmt, 5) : 0;
      const char *zKind = bNew ? (const char*)sqlite3_column_text(pStmt, 3) : 0;
      const TrKind *k = zKind ? trKindFind(zKind, sqlite3_column_int(pStmt, 4))
                              : 0;
      g = sqlite3_column_int64(pStmt, 0);
      snprintf(p->zKey, sizeof(p->zKey), "%s", zKey ? zKey : "GEOID");
      /* the expression comes from the registry, never from the database */
      p->zKeyExpr = k && k->zKeyExpr && sqlite3_stricmp(k->zKey, p->zKey)==0
                  ? k->zKeyExpr : 0;
    }
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
        "WHERE type='trigger' AND name IN ('tracts_touch_'||?1||'_i', "
        "'tracts_touch_'||?1||'_u', 'tracts_touch_'||?1||'_d')), "
        "EXISTS(SELECT 1 FROM main.sqlite_schema WHERE type='table' AND "
        "name=?1)", -1, &pStmt, 0)==SQLITE_OK ){
    sqlite3_bind_text(pStmt, 1, p->zLayer, -1, SQLITE_STATIC);
    if( sqlite3_step(pStmt)==SQLITE_ROW ){
      nHave = sqlite3_column_int(pStmt, 0);
      bTable = sqlite3_column_int(pStmt, 1);
    }
  }
  sqlite3_finalize(pStmt);
  p->bTriggers = nHave==3;
  if( p->bTriggers || !bTable ) return;
  if( sqlite3_txn_state(db, "main")==SQLITE_TXN_WRITE
   || sqlite3_txn_state(db, "temp")==SQLITE_TXN_WRITE ) return;
  for(i=0; i<3; i++){
    char *zSql = sqlite3_mprintf(
      "CREATE TEMP TRIGGER IF NOT EXISTS \"tracts_touch_%w_%c\" AFTER %s ON "
      "main.\"%w\" BEGIN SELECT tracts_touch(%Q); END", p->zLayer,
      azEvent[i][0]+32, azEvent[i], p->zLayer, p->zLayer);
    int rc = zSql ? sqlite3_exec(db, zSql, 0, 0, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
    if( rc ) return;
  }
  p->bTriggers = 1;
}

/* The connection's lookup of layer zLayer (made if new). */
static TrLookup *lookupGet(TractsConn *pConn, const char *zLayer){
  TrLookup *p;
  size_t n = strlen(zLayer), i;
  for(p=pConn->pLookup; p; p=p->pNext){
    if( sqlite3_stricmp(p->zLayer, zLayer)==0 ) return p;
  }
  if( n>=sizeof(p->zLayer) ) return 0;
  p = sqlite3_malloc(sizeof(TrLookup));
  if( p==0 ) return 0;
  memset(p, 0, sizeof(*p));
  for(i=0; i<=n; i++) p->zLayer[i] = (char)tolower((unsigned char)zLayer[i]);
  snprintf(p->zKey, sizeof(p->zKey), "GEOID");
  p->bStale = 1;
  p->pNext = pConn->pLookup;
  pConn->pLookup = p;
  return p;
}

void trLookupWatch(TractsConn *pConn){
  TrLookup *p;
  if( pConn->pLookup==0 ) lookupGet(pConn, "tracts");
  for(p=pConn->pLookup; p; p=p->pNext) lookupWatch(pConn, p);
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

/* ---- the index kept in the database (tracts_index) ---------------------
**
** A built index is saved as rows of main.tracts_index (layer, part,
** generation, data): a header of 64-bit words, then the keys, their
** offsets and the four arrays of the PipIndex, each one blob in host
** byte order. A connection that finds the parts at the layer's current
** generation reads them (incremental blob I/O, straight into the arrays)
** instead of building; pipAdopt checks them first, so a damaged or forged
** row means a rebuild, never a bad read. */

#define IDX_MAGIC  0x5452504958303031ULL     /* "TRPIX001" */
#define IDX_ORDER  0x0102030405060708ULL
#define IDX_NHDR   14         /* words of the header; the last: checksum */

/* A checksum of the parts (accidental damage; pipAdopt guards against the
** rest): 64-bit FNV-1a over little-endian 8-byte words, the tail padded
** with zeros, chained from part to part. */
static sqlite3_uint64 idxHash(sqlite3_uint64 h, const void *pData, size_t n){
  const unsigned char *a = (const unsigned char*)pData;
  size_t i;
  for(i=0; i+8<=n; i+=8){
    sqlite3_uint64 w;
    memcpy(&w, a+i, 8);
    h = (h ^ w) * 0x100000001b3ULL;
  }
  if( i<n ){
    sqlite3_uint64 w = 0;
    memcpy(&w, a+i, n-i);
    h = (h ^ w) * 0x100000001b3ULL;
  }
  return h;
}
#define IDX_HASH0 0xcbf29ce484222325ULL

static const char *const azIdxPart[6] = {
  "keys", "keyoff", "v", "node", "cell", "leaf"
};

/* Read part zPart at generation iGen into a new buffer of exactly nByte
** bytes. 0 on success. */
static int idxReadPart(sqlite3 *db, const char *zLayer, const char *zPart,
                       sqlite3_int64 iGen, size_t nByte, void **pp){
  sqlite3_stmt *pStmt = 0;
  sqlite3_blob *pBlob = 0;
  sqlite3_int64 iRow = -1;
  unsigned char *a;
  size_t nDone = 0;
  int rc = 1;
  *pp = 0;
  if( sqlite3_prepare_v2(db, "SELECT rowid, length(data) FROM main.tracts_index"
        " WHERE layer=?3 AND part=?1 AND generation=?2", -1, &pStmt,
        0)==SQLITE_OK ){
    sqlite3_bind_text(pStmt, 1, zPart, -1, SQLITE_STATIC);
    sqlite3_bind_int64(pStmt, 2, iGen);
    sqlite3_bind_text(pStmt, 3, zLayer, -1, SQLITE_STATIC);
    if( sqlite3_step(pStmt)==SQLITE_ROW
     && (sqlite3_uint64)sqlite3_column_int64(pStmt, 1)==(sqlite3_uint64)nByte ){
      iRow = sqlite3_column_int64(pStmt, 0);
    }
  }
  sqlite3_finalize(pStmt);
  if( iRow<0 ) return 1;
  a = trBigAlloc(nByte);
  if( a==0 ) return 1;
  if( nByte==0 ){ *pp = a; return 0; }
  if( sqlite3_blob_open(db, "main", "tracts_index", "data", iRow, 0, &pBlob)
      ==SQLITE_OK ){
    rc = 0;
    while( rc==0 && nDone<nByte ){
      size_t n = nByte - nDone;
      if( n>((size_t)1<<30) ) n = (size_t)1<<30;
      rc = sqlite3_blob_read(pBlob, a+nDone, (int)n, (int)nDone)!=SQLITE_OK;
      nDone += n;
    }
  }
  sqlite3_blob_close(pBlob);
  if( rc ){ free(a); return 1; }
  *pp = a;
  return 0;
}

/* Load the saved index of generation p->iGen into p. 0 if it was there
** and passed the checks. */
static int idxRead(TractsConn *pConn, TrLookup *p){
  sqlite3 *db = pConn->db;
  sqlite3_uint64 *h = 0;
  void *ap[6] = {0, 0, 0, 0, 0, 0};
  size_t an[6];
  PipArrays arr;
  PipIndex *pIdx;
  uint32_t i, nPoly;
  int k;
  if( idxReadPart(db, p->zLayer, "header", p->iGen, IDX_NHDR*8, (void**)&h) ){
    return 1;
  }
  if( h[0]!=IDX_MAGIC || h[1]!=IDX_ORDER || h[2]!=PIP_NODE_BYTES
   || h[4]>0xffffffffu || h[5]>((sqlite3_uint64)1<<32) || h[6]>(1u<<30)
   || h[7]>(1u<<30) || h[8]>(1u<<30) || h[12]>0xffffffffu || h[12]==0 ){
    free(h);
    return 1;
  }
  nPoly = (uint32_t)h[4];
  an[0] = (size_t)h[12];           an[1] = (size_t)nPoly*4;
  an[2] = (size_t)h[5]*8;          an[3] = (size_t)h[6]*PIP_NODE_BYTES;
  an[4] = (size_t)h[7]*4;          an[5] = (size_t)h[8]*4;
  for(k=0; k<6; k++){
    if( idxReadPart(db, p->zLayer, azIdxPart[k], p->iGen, an[k], &ap[k]) ) break;
  }
  if( k==6 ){
    sqlite3_uint64 x = IDX_HASH0;
    for(k=0; k<6; k++) x = idxHash(x, ap[k], an[k]);
    k = x==h[13] ? 6 : 0;
  }
  if( k==6 ){
    /* the keys: NUL-terminated strings inside the buffer */
    const char *zKeys = (const char*)ap[0];
    const uint32_t *aOff = (const uint32_t*)ap[1];
    if( zKeys[an[0]-1]!=0 ) k = 0;
    for(i=0; k==6 && i<nPoly; i++){
      if( aOff[i]>=an[0] ) k = 0;
    }
  }
  if( k<6 ){
    for(k=0; k<6; k++) free(ap[k]);
    free(h);
    return 1;
  }
  memset(&arr, 0, sizeof(arr));
  arr.root = (uint32_t)h[3];
  arr.nPoly = nPoly;
  arr.aV = ap[2];     arr.nV = (size_t)h[5];
  arr.aNode = ap[3];  arr.nNode = (size_t)h[6];
  arr.aCell = ap[4];  arr.nCell = (size_t)h[7];
  arr.aLeaf = ap[5];  arr.nLeaf = (size_t)h[8];
  arr.nEdgeRef = (size_t)h[9];
  arr.nLeafCell = (size_t)h[10];
  arr.nFullCell = (size_t)h[11];
  free(h);
  pIdx = pipAdopt(&arr);          /* frees the arrays if they fail */
  if( pIdx==0 ){
    free(ap[0]);
    free(ap[1]);
    return 1;
  }
  p->pIdx = pIdx;
  p->zKeys = ap[0];
  p->aKeyOff = ap[1];
  p->nPoly = nPoly;
  return 0;
}

/* Save p's index as the rows of tracts_index, when the persist_index
** setting allows, the table exists and a savepoint can be opened here
** (not inside a statement that writes); otherwise, or on any error,
** nothing is written. */
static void idxSave(TractsConn *pConn, TrLookup *p, size_t nKeyBytes){
  sqlite3 *db = pConn->db;
  sqlite3_stmt *pStmt = 0;
  sqlite3_uint64 h[IDX_NHDR];
  const void *ap[7];
  size_t an[7];
  PipArrays arr;
  int bTable = 0, k, rc;
  TrSavepoint sp;
  sqlite3_int64 nMax;
  if( trConfigInt(pConn, TR_SET_PERSIST_INDEX)==0 ) return;
  if( sqlite3_db_readonly(db, "main")!=0 ) return;
  if( sqlite3_prepare_v2(db, "SELECT 1 FROM main.sqlite_schema WHERE "
        "type='table' AND name='tracts_index'", -1, &pStmt, 0)==SQLITE_OK
   && sqlite3_step(pStmt)==SQLITE_ROW ){
    bTable = 1;
  }
  sqlite3_finalize(pStmt);
  pStmt = 0;
  if( !bTable ) return;
  pipArrays(p->pIdx, &arr);
  h[0] = IDX_MAGIC;   h[1] = IDX_ORDER;   h[2] = PIP_NODE_BYTES;
  h[3] = arr.root;    h[4] = arr.nPoly;   h[5] = arr.nV;
  h[6] = arr.nNode;   h[7] = arr.nCell;   h[8] = arr.nLeaf;
  h[9] = arr.nEdgeRef; h[10] = arr.nLeafCell; h[11] = arr.nFullCell;
  h[12] = nKeyBytes;
  if( arr.nPoly!=p->nPoly ) return;
  h[13] = IDX_HASH0;
  ap[0] = h;          an[0] = sizeof(h);
  ap[1] = p->zKeys;   an[1] = nKeyBytes;
  ap[2] = p->aKeyOff; an[2] = (size_t)p->nPoly*4;
  ap[3] = arr.aV;     an[3] = arr.nV*8;
  ap[4] = arr.aNode;  an[4] = arr.nNode*PIP_NODE_BYTES;
  ap[5] = arr.aCell;  an[5] = arr.nCell*4;
  ap[6] = arr.aLeaf;  an[6] = arr.nLeaf*4;
  for(k=1; k<7; k++) h[13] = idxHash(h[13], ap[k], an[k]);
  nMax = sqlite3_limit(db, SQLITE_LIMIT_LENGTH, -1);
  for(k=0; k<7; k++){
    if( (sqlite3_uint64)an[k] > (sqlite3_uint64)nMax ) return;
  }
  if( trSavepointBegin(db, "tracts_index_save", &sp) ) return;
  rc = sqlite3_prepare_v2(db, "DELETE FROM main.tracts_index WHERE layer=?1",
                          -1, &pStmt, 0);
  if( rc==SQLITE_OK ){
    sqlite3_bind_text(pStmt, 1, p->zLayer, -1, SQLITE_STATIC);
    rc = sqlite3_step(pStmt)==SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
  }
  sqlite3_finalize(pStmt);
  pStmt = 0;
  if( rc==SQLITE_OK ){
    rc = sqlite3_prepare_v2(db, "INSERT INTO main.tracts_index VALUES("
                            "?4, ?1, ?2, ?3)", -1, &pStmt, 0);
    if( rc==SQLITE_OK ){
      sqlite3_bind_text(pStmt, 4, p->zLayer, -1, SQLITE_STATIC);
    }
  }
  for(k=0; rc==SQLITE_OK && k<7; k++){
    sqlite3_bind_text(pStmt, 1, k ? azIdxPart[k-1] : "header", -1,
                      SQLITE_STATIC);
    sqlite3_bind_int64(pStmt, 2, p->iGen);
    sqlite3_bind_blob64(pStmt, 3, an[k] ? ap[k] : "", an[k], SQLITE_STATIC);
    rc = sqlite3_step(pStmt)==SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    sqlite3_reset(pStmt);
  }
  sqlite3_finalize(pStmt);
  if( rc ){
    trSavepointUndo(db, &sp);
  }else if( trSavepointCommit(db, &sp)==SQLITE_OK ){
    trMonitorMark(pConn, "index saved");
  }
}

/* Build the index of layer p from its table (or read the saved one).
** zFunc names the SQL function in errors. */
static int lookupBuild(TractsConn *pConn, TrLookup *p, const char *zFunc,
                       char **pzErr){
  sqlite3 *db = pConn->db;
  sqlite3_stmt *pStmt = 0;
  PipBuilder *pB = 0;
  size_t nKey = 0, nKeyAlloc = 0;
  uint32_t nPoly = 0, nOffAlloc = 0;
  int rc;
  lookupClear(p);
  p->iGen = layerGeneration(db, p);
  p->iDataVersion = dataVersion(db);
  if( p->iGen<0 ){
    if( strcmp(p->zLayer, "tracts")==0 ){
      *pzErr = sqlite3_mprintf("%s: no tracts loaded (run load_tracts)", zFunc);
    }else{
      *pzErr = sqlite3_mprintf("%s: no layer '%s' is loaded (run "
          "load_boundaries or fetch_boundaries)", zFunc, p->zLayer);
    }
    return SQLITE_ERROR;
  }
  lookupWatch(pConn, p);
  if( idxRead(pConn, p)==0 ){
    p->bStale = 0;
    p->bInTxn = !sqlite3_get_autocommit(db);
    trMonitorMark(pConn, "index read");
    return SQLITE_OK;
  }
  {
    char *zSql = p->zKeyExpr
      ? sqlite3_mprintf("SELECT %s, geometry FROM main.\"%w\" ORDER BY 1, "
                        "rowid", p->zKeyExpr, p->zLayer)
      : sqlite3_mprintf("SELECT \"%w\", geometry FROM main.\"%w\" ORDER BY "
                        "1, rowid", p->zKey, p->zLayer);
    rc = zSql ? sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
  }
  if( rc ){
    *pzErr = sqlite3_mprintf("%s: cannot read the %s table: %s", zFunc,
                             p->zLayer, sqlite3_errmsg(db));
    return rc;
  }
  trMonitorMark(pConn, "index build");
  pB = pipBuilderNew();
  if( pB==0 ){ rc = SQLITE_NOMEM; goto fail; }
  {
    /* size the vertex arrays once: a blob holds 16 bytes a point */
    sqlite3_stmt *pSum = 0;
    char *zSql = sqlite3_mprintf("SELECT sum(length(geometry)) FROM "
                                 "main.\"%w\"", p->zLayer);
    if( zSql && sqlite3_prepare_v2(db, zSql, -1, &pSum, 0)==SQLITE_OK
     && sqlite3_step(pSum)==SQLITE_ROW ){
      sqlite3_int64 n = sqlite3_column_int64(pSum, 0)/16;
      if( n>0 && n<((sqlite3_int64)1<<32) ) pipBuilderReserve(pB, (size_t)n);
    }
    sqlite3_finalize(pSum);
    sqlite3_free(zSql);
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
      int bTracts = strcmp(p->zLayer, "tracts")==0;
      *pzErr = sqlite3_mprintf("%s: %s%s '%s' has a %s geometry", zFunc,
                               bTracts ? "tract" : p->zLayer,
                               bTracts ? "" : " feature", zKey,
                               rcBlob==1 ? "malformed" : "out-of-range");
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
    *pzErr = sqlite3_mprintf("%s: cannot read the %s table: %s", zFunc,
                             p->zLayer, sqlite3_errmsg(db));
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
  idxSave(pConn, p, nKey ? nKey : 0);
  p->bInTxn = !sqlite3_get_autocommit(db);
  return SQLITE_OK;
fail:
  sqlite3_finalize(pStmt);
  pipBuilderFree(pB);
  lookupClear(p);
  if( rc==SQLITE_NOMEM && *pzErr==0 ){
    *pzErr = sqlite3_mprintf("%s: out of memory building the index", zFunc);
  }
  return rc;
}

TrLookup *trLookupGet(TractsConn *pConn, const char *zLayer,
                      const char *zFunc, char **pzErr){
  sqlite3 *db = pConn->db;
  TrLookup *p = lookupGet(pConn, zLayer);
  if( p==0 ){
    *pzErr = strlen(zLayer)>=60
      ? sqlite3_mprintf("%s: no layer '%s' is loaded", zFunc, zLayer)
      : sqlite3_mprintf("%s: out of memory", zFunc);
    return 0;
  }
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
      return p;
    }
    p->iDataVersion = v;
    if( layerGeneration(db, p)==p->iGen ){
      p->bInTxn = !sqlite3_get_autocommit(db);
      if( !p->bTriggers ) lookupWatch(pConn, p);
      return p;
    }
  }
  if( lookupBuild(pConn, p, zFunc, pzErr) ){
    if( p->iGen<0 && pConn->pLookup==p && p->pIdx==0 ){
      /* no such layer: forget the name (boundary_of(:any, ...) would grow
      ** the list); lookupGet put it first */
      pConn->pLookup = p->pNext;
      lookupClear(p);
      sqlite3_free(p);
    }
    return 0;
  }
  return p;
}

const PipIndex *trLookupPip(const TrLookup *p){
  return p->pIdx;
}

void trLookupKeys(const TrLookup *q, TrLookupKeys *p){
  p->zKeys = q->zKeys;
  p->aOff = q->aKeyOff;
  p->nPoly = q->nPoly;
}

/* The number in v, or 1 if v is not a usable number. */
static int argDouble(sqlite3_value *v, double *pr){
  int t = sqlite3_value_type(v);
  if( t==SQLITE_TEXT ) t = sqlite3_value_numeric_type(v);
  if( t!=SQLITE_INTEGER && t!=SQLITE_FLOAT ) return 1;
  *pr = sqlite3_value_double(v);
  return !isfinite(*pr);
}

/* The answer for (argv[0], argv[1]) from layer zLayer. */
static void lookupAnswer(sqlite3_context *ctx, const char *zLayer,
                         const char *zFunc, sqlite3_value **argv){
  TractsConn *pConn = (TractsConn*)sqlite3_user_data(ctx);
  TrLookup *p;
  double lon, lat;
  int64_t i;
  char *zErr = 0;
  if( argDouble(argv[0], &lon) || argDouble(argv[1], &lat) ) return;
  if( lon<-180.0 || lon>180.0 || lat<-90.0 || lat>90.0 ) return;
  p = trLookupGet(pConn, zLayer, zFunc, &zErr);
  if( p==0 ){
    sqlite3_result_error(ctx, zErr ? zErr : "out of memory", -1);
    sqlite3_free(zErr);
    return;
  }
  i = pipLookup(p->pIdx, lon, lat, 0);
  if( i<0 ){
    int64_t m = trConfigInt(pConn, TR_SET_NEAREST);
    if( m>0 ) i = pipNearest(p->pIdx, lon, lat, (double)m, 0);
  }
  if( i>=0 && (uint32_t)i<p->nPoly ){
    sqlite3_result_text(ctx, p->zKeys + p->aKeyOff[i], -1, SQLITE_TRANSIENT);
  }
}

static void tractOfFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  (void)argc;
  lookupAnswer(ctx, "tracts", "tract_of", argv);
}

/* boundary_of(layer, lon, lat) */
static void boundaryOfFunc(sqlite3_context *ctx, int argc,
                           sqlite3_value **argv){
  const char *zLayer = (const char*)sqlite3_value_text(argv[0]);
  (void)argc;
  if( zLayer==0 ){
    sqlite3_result_error(ctx, "boundary_of: the layer is NULL", -1);
    return;
  }
  lookupAnswer(ctx, zLayer, "boundary_of", argv+1);
}

/* tracts_touch(layer): called by TEMP triggers when a layer's table
** changes; without an argument every layer. */
static void touchFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  TractsConn *pConn = (TractsConn*)sqlite3_user_data(ctx);
  const char *zLayer = argc ? (const char*)sqlite3_value_text(argv[0]) : 0;
  TrLookup *p;
  for(p=pConn->pLookup; p; p=p->pNext){
    if( zLayer==0 || sqlite3_stricmp(p->zLayer, zLayer)==0 ) p->bStale = 1;
  }
}

int trLookupRegister(sqlite3 *db, TractsConn *pConn){
  int rc = trFunction(db, pConn, "tract_of", 2, SQLITE_INNOCUOUS, tractOfFunc);
  if( rc==SQLITE_OK ){
    rc = trFunction(db, pConn, "boundary_of", 3, SQLITE_INNOCUOUS,
                    boundaryOfFunc);
  }
  if( rc==SQLITE_OK ){
    rc = trFunction(db, pConn, "tracts_touch", 0, SQLITE_INNOCUOUS, touchFunc);
  }
  if( rc ) return rc;
  return trFunction(db, pConn, "tracts_touch", 1, SQLITE_INNOCUOUS, touchFunc);
}
