/*
** main.c - entry point of the tracts extension.
**
** Usage
**
**     .load ./build/tracts
**     SELECT tracts_version();          -- '0.1.0'
**     SELECT tracts_debug();            -- versions of SQLite, GEOS, libzip,
**                                       -- shapelib and the index state
**
** How it works
**
**   sqlite3_tracts_init() makes one TractsConn per connection and hands it
**   as user data to every function and module it registers (config.c,
**   layer.c, lookup.c, assign.c, monitor.c). Each registration holds a reference; SQLite calls
**   the destructor once per registration when the connection closes (or a
**   function is overridden), and the last one frees the state, the cached
**   index included. There are no mutable globals.
**
** Threads and fork
**
**   The connection state is used under the connection's own mutex (SQLite
**   calls our functions with it held).
*/
#include "tracts_sql.h"
#include "../include/tracts.h"

#include <shapefil.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

SQLITE_EXTENSION_INIT1

void trConnUnref(void *p){
  TractsConn *pConn = (TractsConn*)p;
  if( pConn==0 || --pConn->nRef>0 ) return;
  trMonitorFree(pConn);
  trLookupFree(pConn->pLookup);
  trConfigFree(pConn);
  sqlite3_free(pConn);
}

int trVtabConnect(sqlite3 *db, void *pAux, const char *zSchema, size_t nByte,
                  int bDirectOnly, sqlite3_vtab **ppVtab){
  TrVtab *p;
  int rc = sqlite3_declare_vtab(db, zSchema);
  if( rc ) return rc;
  if( bDirectOnly ) sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
  p = sqlite3_malloc64(nByte);
  if( p==0 ) return SQLITE_NOMEM;
  memset(p, 0, nByte);
  p->pConn = (TractsConn*)pAux;
  *ppVtab = &p->base;
  return SQLITE_OK;
}

int trFunction(sqlite3 *db, TractsConn *pConn, const char *zName, int nArg,
               int eFlags, void (*xFunc)(sqlite3_context*, int, sqlite3_value**)){
  pConn->nRef++;
  return sqlite3_create_function_v2(db, zName, nArg, SQLITE_UTF8|eFlags, pConn,
                                    xFunc, 0, 0, trConnUnref);
}

int trModule(sqlite3 *db, TractsConn *pConn, const char *zName,
             const sqlite3_module *pModule){
  pConn->nRef++;
  return sqlite3_create_module_v2(db, zName, pModule, pConn, trConnUnref);
}

double trNow(void){
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec*1e-9;
}

void trTimespec(double t, struct timespec *pTs){
  double s = (double)(time_t)t;     /* t >= 0: the integer part */
  pTs->tv_sec = (time_t)t;
  pTs->tv_nsec = (long)((t - s)*1e9);
  if( pTs->tv_nsec>=1000000000L ) pTs->tv_nsec = 999999999L;
}

int trSavepointBegin(sqlite3 *db, const char *zName, TrSavepoint *p){
  char *z;
  int rc;
  p->zName = zName;
  p->bOuter = sqlite3_get_autocommit(db);
  rc = sqlite3_prepare_v2(db, "VACUUM", -1, &p->pLever, 0);
  if( rc ) return rc;
  z = sqlite3_mprintf("SAVEPOINT %s", zName);
  rc = z ? sqlite3_exec(db, z, 0, 0, 0) : SQLITE_NOMEM;
  sqlite3_free(z);
  if( rc ){
    sqlite3_finalize(p->pLever);
    p->pLever = 0;
  }
  return rc;
}

void trSavepointUndo(sqlite3 *db, TrSavepoint *p){
  int rc;
  if( p->bOuter ){
    /* the transaction is ours: end it (never busy, unlike a RELEASE) */
    rc = sqlite3_get_autocommit(db) ? SQLITE_OK
       : sqlite3_exec(db, "ROLLBACK", 0, 0, 0);
  }else{
    char *z = sqlite3_mprintf("ROLLBACK TO %s; RELEASE %s", p->zName,
                              p->zName);
    rc = z ? sqlite3_exec(db, z, 0, 0, 0) : SQLITE_NOMEM;
    sqlite3_free(z);
  }
  if( rc && !sqlite3_get_autocommit(db) && p->pLever ){
    sqlite3_step(p->pLever);            /* interrupted: all rolled back */
  }
  sqlite3_finalize(p->pLever);
  p->pLever = 0;
}

int trSavepointCommit(sqlite3 *db, TrSavepoint *p){
  char *z = sqlite3_mprintf("RELEASE %s", p->zName);
  int rc = z ? sqlite3_exec(db, z, 0, 0, 0) : SQLITE_NOMEM;
  sqlite3_free(z);
  if( rc ){
    trSavepointUndo(db, p);
  }else{
    sqlite3_finalize(p->pLever);
    p->pLever = 0;
  }
  return rc;
}

int trVtabFree(sqlite3_vtab *pVtab){
  sqlite3_free(pVtab);
  return SQLITE_OK;
}

int trCursorNew(size_t nByte, sqlite3_vtab_cursor **ppCur){
  sqlite3_vtab_cursor *c = sqlite3_malloc64(nByte);
  if( c==0 ) return SQLITE_NOMEM;
  memset(c, 0, nByte);
  *ppCur = c;
  return SQLITE_OK;
}

int trArgsBestIndex(sqlite3_index_info *p, int iFirst, int nArg){
  int i, k, iArg = 1, aCons[8], bUnusable = 0;
  for(k=0; k<8; k++) aCons[k] = -1;
  for(i=0; i<p->nConstraint; i++){
    const struct sqlite3_index_constraint *c = &p->aConstraint[i];
    k = c->iColumn - iFirst;
    if( k<0 || k>=nArg || k>=8 || c->op!=SQLITE_INDEX_CONSTRAINT_EQ ) continue;
    if( !c->usable ){ bUnusable = 1; continue; }
    aCons[k] = i;
  }
  p->idxNum = 0;
  if( aCons[0]<0 ){
    if( bUnusable ) return SQLITE_CONSTRAINT;
    p->estimatedCost = 1e99;
    return SQLITE_OK;
  }
  for(k=0; k<nArg && k<8; k++){
    if( aCons[k]<0 ) continue;
    p->aConstraintUsage[aCons[k]].argvIndex = iArg++;
    p->aConstraintUsage[aCons[k]].omit = 1;
    p->idxNum |= 1<<k;
  }
  p->estimatedCost = 10.0;
  p->estimatedRows = 50;
  return SQLITE_OK;
}

int trSplitName(sqlite3 *db, const char *zName, char **pzSchema,
                char **pzTable){
  const char *zDot = strchr(zName, '.');
  *pzSchema = 0;
  *pzTable = 0;
  if( zDot ){
    sqlite3_stmt *pStmt = 0;
    int bSchema = 0;
    if( sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_database_list WHERE "
                           "name=?1 COLLATE NOCASE", -1, &pStmt, 0)==SQLITE_OK ){
      sqlite3_bind_text(pStmt, 1, zName, (int)(zDot-zName), SQLITE_STATIC);
      bSchema = sqlite3_step(pStmt)==SQLITE_ROW;
    }
    sqlite3_finalize(pStmt);
    if( bSchema ){
      *pzSchema = sqlite3_mprintf("%.*s", (int)(zDot-zName), zName);
      *pzTable = sqlite3_mprintf("%s", zDot+1);
      return (*pzSchema && *pzTable) ? SQLITE_OK : SQLITE_NOMEM;
    }
  }
  *pzTable = sqlite3_mprintf("%s", zName);
  return *pzTable ? SQLITE_OK : SQLITE_NOMEM;
}

char *trQuotedName(const char *zSchema, const char *zTable){
  if( zSchema ) return sqlite3_mprintf("\"%w\".\"%w\"", zSchema, zTable);
  return sqlite3_mprintf("\"%w\"", zTable);
}

int trHasColumn(sqlite3 *db, const char *zSchema, const char *zTable,
                const char *zCol){
  sqlite3_stmt *pStmt = 0;
  int b = 0;
  if( sqlite3_prepare_v2(db, zSchema
        ? "SELECT 1 FROM pragma_table_xinfo(?1, ?2) WHERE ?3 IS NULL OR "
          "name=?3 COLLATE NOCASE"
        : "SELECT 1 FROM pragma_table_xinfo(?1) WHERE ?3 IS NULL OR "
          "name=?3 COLLATE NOCASE", -1, &pStmt, 0)==SQLITE_OK ){
    sqlite3_bind_text(pStmt, 1, zTable, -1, SQLITE_STATIC);
    if( zSchema ) sqlite3_bind_text(pStmt, 2, zSchema, -1, SQLITE_STATIC);
    sqlite3_bind_text(pStmt, 3, zCol, -1, SQLITE_STATIC);
    b = sqlite3_step(pStmt)==SQLITE_ROW;
  }
  sqlite3_finalize(pStmt);
  return b;
}

int trSqlExists(sqlite3 *db, const char *zSql, const char *zArg){
  sqlite3_stmt *pStmt = 0;
  int b = 0;
  if( sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0)==SQLITE_OK ){
    sqlite3_bind_text(pStmt, 1, zArg, -1, SQLITE_STATIC);
    b = sqlite3_step(pStmt)==SQLITE_ROW;
  }
  sqlite3_finalize(pStmt);
  return b;
}

/* tracts_version(): the extension's version string. */
static void versionFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  (void)argc; (void)argv;
  sqlite3_result_text(ctx, TRACTS_VERSION, -1, SQLITE_STATIC);
}

/* tracts_debug(): build and run-time facts, one per line. */
static void debugFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  TractsConn *pConn = (TractsConn*)sqlite3_user_data(ctx);
  char zIdx[256];
  char *z;
  (void)argc; (void)argv;
  zIdx[0] = 0;
  if( pConn->pLookup ){
    char *zErr = 0;
    TrLookup *p = trLookupGet(pConn, "tracts", "tracts_debug", &zErr);
    sqlite3_free(zErr);
    pipStats(p ? trLookupPip(p) : 0, zIdx, sizeof(zIdx));
  }else{
    snprintf(zIdx, sizeof(zIdx), "not built");
  }
  z = sqlite3_mprintf("tracts %s\nsqlite %s\ngeos %s\nlibzip %s\n"
                      "index %s", TRACTS_VERSION, sqlite3_libversion(),
                      GEOSversion(), zip_libzip_version(), zIdx);
  if( z==0 ){ sqlite3_result_error_nomem(ctx); return; }
  sqlite3_result_text(ctx, z, -1, sqlite3_free);
}

TRACTS_API int sqlite3_tracts_init(sqlite3 *db, char **pzErrMsg,
                                   const sqlite3_api_routines *pApi){
  TractsConn *pConn;
  int rc;
  SQLITE_EXTENSION_INIT2(pApi);
  if( sqlite3_libversion_number()<3038000 ){
    *pzErrMsg = sqlite3_mprintf("tracts: needs SQLite 3.38 or later, "
                                "this is %s", sqlite3_libversion());
    return SQLITE_ERROR;
  }
  pConn = sqlite3_malloc(sizeof(*pConn));
  if( pConn==0 ) return SQLITE_NOMEM;
  memset(pConn, 0, sizeof(*pConn));
  pConn->db = db;
  pConn->nRef = 1;                       /* held during init */
  rc = trFunction(db, pConn, "tracts_version", 0,
                  SQLITE_INNOCUOUS|SQLITE_DETERMINISTIC, versionFunc);
  if( rc==SQLITE_OK ){
    rc = trFunction(db, pConn, "tracts_debug", 0, SQLITE_DIRECTONLY, debugFunc);
  }
  if( rc==SQLITE_OK ) rc = trConfigRegister(db, pConn);
  if( rc==SQLITE_OK ) rc = trLayerRegister(db, pConn);
  if( rc==SQLITE_OK ) rc = trRegistryRegister(db, pConn);
  if( rc==SQLITE_OK ) rc = trLookupRegister(db, pConn);
  if( rc==SQLITE_OK ) rc = trAssignRegister(db, pConn);
  if( rc==SQLITE_OK ) rc = trMonitorRegister(db, pConn);
  if( rc==SQLITE_OK ) rc = trFetchRegister(db, pConn);
  if( rc==SQLITE_OK ) trLookupWatch(pConn);
  if( rc!=SQLITE_OK ){
    *pzErrMsg = sqlite3_mprintf("tracts: cannot register functions: %s",
                                sqlite3_errmsg(db));
  }
  trConnUnref(pConn);                    /* drop the init reference */
  return rc;
}
