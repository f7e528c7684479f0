/*
** layer.c - boundary layers and load_tracts().
**
** Usage
**
**     SELECT * FROM load_tracts('cb_2019_44_tract_500k.zip');
**     SELECT * FROM load_tracts('downloads/');          -- every cb_*_tract_*.zip
**     SELECT * FROM load_tracts('tl/cb_2019_44_tract_500k.shp');
**
**   One row per file: file, state, year, tracts, repaired, seconds, error.
**   `state` is the state FIPS code of the file (a comma list for the
**   national file), `tracts` the rows loaded, `repaired` how many polygons
**   GEOS had to repair, `error` NULL or why that file was not loaded.
**
** What it writes (in the main database)
**
**     tracts(GEOID TEXT PRIMARY KEY, STATEFP, COUNTYFP, TRACTCE, AFFGEOID,
**            NAME, LSAD, ALAND INTEGER, AWATER INTEGER, geometry BLOB)
**                          geometry: SpatiaLite MULTIPOLYGON, SRID 4269
**     tracts_rtree         R*Tree (id = tracts.rowid, minx, maxx, miny, maxy)
**     tracts_files         provenance: layer, state, file, year, sha256,
**                          tracts, repaired, loaded_at
**     tracts_layers        layer, generation: bumped by triggers on every
**                          change to the layer's table, so tract_of()
**                          knows when to rebuild its index
**
** How it works
**
**   Each file is read and checked completely in memory first (shpzip.c),
**   before anything is written. Reader threads (the threads setting) read
**   and validate the next files while this thread writes the current one;
**   they never touch SQLite. A lone file is validated on that many threads
**   instead. Then, inside one SAVEPOINT, the rows of
**   every state the file holds are deleted and the new ones inserted. Any
**   failure rolls the savepoint back, so a file is loaded whole or not at
**   all, and loading a state again replaces it.
**
**   A single file that fails is an SQL error naming the file. In a
**   directory each file stands alone: a failing file's row carries the
**   error and the other files still load.
**
**   The layer table (aLayer) says, per layer, the Census file tag, table,
**   key and attribute fields; load_tracts() is the "tracts" layer.
**
** Limits
**
**   Tables live in the main schema. The national file replaces every
**   state it contains. sqlite3_interrupt() stops a load between files and
**   every 1000 rows within one; the interrupted file is rolled back.
*/
#include "tracts_sql.h"

#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const TrField aTractFields[] = {
  { "STATEFP", 0 }, { "COUNTYFP", 0 }, { "TRACTCE", 0 }, { "AFFGEOID", 0 },
  { "GEOID", 0 }, { "NAME", 0 }, { "LSAD", 0 }, { "ALAND", 1 },
  { "AWATER", 1 },
};

static const TrLayer aLayer[] = {
  { "tracts", "tract", "tracts", "GEOID", "STATEFP",
    (int)(sizeof(aTractFields)/sizeof(aTractFields[0])), aTractFields },
};

const TrLayer *trLayerFind(const char *zName){
  size_t i;
  for(i=0; i<sizeof(aLayer)/sizeof(aLayer[0]); i++){
    if( strcmp(aLayer[i].zName, zName)==0 ) return &aLayer[i];
  }
  return 0;
}

static int fieldIndex(const TrLayer *pLayer, const char *zName){
  int i;
  for(i=0; i<pLayer->nField; i++){
    if( strcmp(pLayer->aField[i].zName, zName)==0 ) return i;
  }
  return -1;
}

int trLayerEnsureSchema(sqlite3 *db, const TrLayer *p, char **pzErr){
  sqlite3_str *s = sqlite3_str_new(db);
  char *zSql;
  int i, rc;
  sqlite3_str_appendf(s, "CREATE TABLE IF NOT EXISTS main.\"%w\"(", p->zTable);
  for(i=0; i<p->nField; i++){
    const TrField *f = &p->aField[i];
    sqlite3_str_appendf(s, "\"%w\" %s%s, ", f->zName,
                        f->bInteger ? "INTEGER" : "TEXT",
                        strcmp(f->zName, p->zKey)==0 ? " PRIMARY KEY NOT NULL"
                        : strcmp(f->zName, p->zGroup)==0 ? " NOT NULL" : "");
  }
  sqlite3_str_appendf(s, "geometry BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS main.\"%w_%w\" ON \"%w\"(\"%w\");"
    "CREATE VIRTUAL TABLE IF NOT EXISTS main.\"%w_rtree\" USING "
    "rtree(id, minx, maxx, miny, maxy);"
    "CREATE TABLE IF NOT EXISTS main.tracts_files(layer TEXT NOT NULL, "
    "state TEXT NOT NULL, file TEXT, year INTEGER, sha256 TEXT, "
    "tracts INTEGER, repaired INTEGER, loaded_at TEXT, "
    "PRIMARY KEY(layer, state));"
    "CREATE TABLE IF NOT EXISTS main.tracts_layers(layer TEXT PRIMARY KEY, "
    "generation INTEGER NOT NULL);"
    "INSERT OR IGNORE INTO main.tracts_layers VALUES(%Q, abs(random()/2));",
    p->zTable, p->zGroup, p->zTable, p->zGroup, p->zTable, p->zName);
  {
    static const char *azEvent[3] = { "INSERT", "UPDATE", "DELETE" };
    char *zRtreeDel = sqlite3_mprintf(" DELETE FROM \"%w_rtree\" WHERE "
                                      "id=old.rowid;", p->zTable);
    if( zRtreeDel==0 ){ sqlite3_free(sqlite3_str_finish(s)); return SQLITE_NOMEM; }
    for(i=0; i<3; i++){
      sqlite3_str_appendf(s,
        "CREATE TRIGGER IF NOT EXISTS main.\"%w_changed_%c\" AFTER %s ON "
        "\"%w\" BEGIN UPDATE tracts_layers SET generation=generation+1 "
        "WHERE layer=%Q;%s END;", p->zTable, azEvent[i][0]+32, azEvent[i],
        p->zTable, p->zName, i==2 ? zRtreeDel : "");
    }
    sqlite3_free(zRtreeDel);
  }
  zSql = sqlite3_str_finish(s);
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = sqlite3_exec(db, zSql, 0, 0, pzErr);
  sqlite3_free(zSql);
  return rc;
}

/* ---- the load_tracts virtual table ----------------------------------- */

/* Columns of load_tracts, as declared in LOAD_SCHEMA. */
#define LOAD_FILE     0
#define LOAD_STATE    1
#define LOAD_YEAR     2
#define LOAD_TRACTS   3
#define LOAD_REPAIRED 4
#define LOAD_SECONDS  5
#define LOAD_ERROR    6
#define LOAD_PATH     7   /* hidden: the argument */
#define LOAD_SCHEMA "CREATE TABLE x(file TEXT, state TEXT, year INTEGER, " \
  "tracts INTEGER, repaired INTEGER, seconds REAL, error TEXT, path HIDDEN)"

/* One result row. */
typedef struct LoadRow LoadRow;
struct LoadRow {
  char *zFile;        /* path of the file (sqlite3_malloc) */
  char *zState;       /* state code(s) */
  int year;           /* from the file name, 0 if unknown */
  int nTract;         /* rows written */
  int nRepaired;      /* polygons repaired */
  double rSeconds;    /* wall time for this file */
  char *zError;       /* NULL, or why it failed */
};

typedef struct LoadVtab LoadVtab;
struct LoadVtab {
  sqlite3_vtab base;         /* base class, must be first */
  TractsConn *pConn;         /* connection state */
  const TrLayer *pLayer;     /* the layer this module loads */
};

typedef struct LoadCursor LoadCursor;
struct LoadCursor {
  sqlite3_vtab_cursor base;  /* base class, must be first */
  LoadRow *aRow;             /* results of the last xFilter */
  int nRow;                  /* entries in aRow */
  int iRow;                  /* current row */
};

static double nowSeconds(void){
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec*1e-9;
}

static int loadConnect(sqlite3 *db, void *pAux, int argc,
                       const char *const *argv, sqlite3_vtab **ppVtab,
                       char **pzErr){
  LoadVtab *p;
  int rc;
  (void)argc; (void)argv; (void)pzErr;
  rc = sqlite3_declare_vtab(db, LOAD_SCHEMA);
  if( rc ) return rc;
  sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
  p = sqlite3_malloc(sizeof(*p));
  if( p==0 ) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->pConn = (TractsConn*)pAux;
  p->pLayer = trLayerFind("tracts");
  *ppVtab = &p->base;
  return SQLITE_OK;
}

static int loadDisconnect(sqlite3_vtab *pVtab){
  sqlite3_free(pVtab);
  return SQLITE_OK;
}

static int loadOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCur){
  LoadCursor *c = sqlite3_malloc(sizeof(*c));
  (void)pVtab;
  if( c==0 ) return SQLITE_NOMEM;
  memset(c, 0, sizeof(*c));
  *ppCur = &c->base;
  return SQLITE_OK;
}

static void loadRowsFree(LoadCursor *c){
  int i;
  for(i=0; i<c->nRow; i++){
    sqlite3_free(c->aRow[i].zFile);
    sqlite3_free(c->aRow[i].zState);
    sqlite3_free(c->aRow[i].zError);
  }
  sqlite3_free(c->aRow);
  c->aRow = 0;
  c->nRow = c->iRow = 0;
}

static int loadClose(sqlite3_vtab_cursor *cur){
  loadRowsFree((LoadCursor*)cur);
  sqlite3_free(cur);
  return SQLITE_OK;
}

/* Year and state from a Census name: cb_2019_44_tract_500k.zip gives
** 2019 and "44" (or "us"). Returns 0 if the name is not of that form. */
static int parseCensusName(const char *zPath, const char *zTag, int *pYear,
                           char *zState, int nState){
  const char *zBase = strrchr(zPath, '/');
  int year = 0, n = 0;
  char zSt[8], zT[32];
  zBase = zBase ? zBase+1 : zPath;
  if( sscanf(zBase, "cb_%4d_%7[^_]_%31[^_]_%n", &year, zSt, zT, &n)!=3
   || n==0 || strcmp(zT, zTag)!=0 ){
    return 0;
  }
  *pYear = year;
  snprintf(zState, (size_t)nState, "%s", zSt);
  return 1;
}

/* Set *pzErr to "load_tracts: FILE: message". */
static void loadErr(char **pzErr, const char *zFile, const char *zMsg){
  sqlite3_free(*pzErr);
  *pzErr = sqlite3_mprintf("load_tracts: %s: %s", zFile, zMsg);
}

/* Write the records of shp for the file zFile in one savepoint. */
static int loadWrite(LoadVtab *pTab, const char *zFile, TrShapes *shp,
                     LoadRow *pRow, char **pzErr){
  sqlite3 *db = pTab->pConn->db;
  const TrLayer *L = pTab->pLayer;
  int iGroup = fieldIndex(L, L->zGroup), iKey = fieldIndex(L, L->zKey);
  sqlite3_stmt *pIns = 0, *pBox = 0, *pDel = 0, *pDelBox = 0, *pFile = 0;
  sqlite3_str *pStates = sqlite3_str_new(db);
  char *zSql = 0, *zMsg = 0;
  int rc, i, nState = 0;
  const char *azSeen[100];
  char zName[8];
  int yearName = 0;

  rc = sqlite3_exec(db, "SAVEPOINT tracts_load", 0, 0, 0);
  if( rc ){ loadErr(pzErr, zFile, sqlite3_errmsg(db)); sqlite3_free(sqlite3_str_finish(pStates)); return rc; }
  rc = trLayerEnsureSchema(db, L, &zMsg);
  if( rc ) goto fail;
  /* The change triggers cost a statement per row (a third of the write
  ** time): drop them for this savepoint, keep the R*Tree by hand, bump the
  ** generation once, and create them again before the release. */
  zSql = sqlite3_mprintf("DROP TRIGGER main.\"%w_changed_i\";"
                         "DROP TRIGGER main.\"%w_changed_u\";"
                         "DROP TRIGGER main.\"%w_changed_d\";"
                         "UPDATE main.tracts_layers SET generation=generation+1 "
                         "WHERE layer=%Q", L->zTable, L->zTable, L->zTable,
                         L->zName);
  rc = zSql ? sqlite3_exec(db, zSql, 0, 0, &zMsg) : SQLITE_NOMEM;
  sqlite3_free(zSql);
  if( rc ) goto fail;

  /* statements */
  {
    sqlite3_str *s = sqlite3_str_new(db);
    sqlite3_str_appendf(s, "INSERT INTO main.\"%w\"(", L->zTable);
    for(i=0; i<L->nField; i++) sqlite3_str_appendf(s, "\"%w\",", L->aField[i].zName);
    sqlite3_str_appendall(s, "geometry) VALUES(");
    for(i=0; i<L->nField; i++) sqlite3_str_appendall(s, "?,");
    sqlite3_str_appendall(s, "?)");
    zSql = sqlite3_str_finish(s);
    if( zSql==0 ){ rc = SQLITE_NOMEM; goto fail; }
    rc = sqlite3_prepare_v2(db, zSql, -1, &pIns, 0);
    sqlite3_free(zSql);
    if( rc ) goto fail;
  }
  zSql = sqlite3_mprintf("INSERT OR REPLACE INTO main.\"%w_rtree\" "
                         "VALUES(?,?,?,?,?)", L->zTable);
  rc = zSql ? sqlite3_prepare_v2(db, zSql, -1, &pBox, 0) : SQLITE_NOMEM;
  sqlite3_free(zSql);
  if( rc ) goto fail;
  zSql = sqlite3_mprintf("DELETE FROM main.\"%w_rtree\" WHERE id IN "
                         "(SELECT rowid FROM main.\"%w\" WHERE \"%w\"=?1)",
                         L->zTable, L->zTable, L->zGroup);
  rc = zSql ? sqlite3_prepare_v2(db, zSql, -1, &pDelBox, 0) : SQLITE_NOMEM;
  sqlite3_free(zSql);
  if( rc ) goto fail;
  zSql = sqlite3_mprintf("DELETE FROM main.\"%w\" WHERE \"%w\"=?1",
                         L->zTable, L->zGroup);
  rc = zSql ? sqlite3_prepare_v2(db, zSql, -1, &pDel, 0) : SQLITE_NOMEM;
  sqlite3_free(zSql);
  if( rc ) goto fail;
  rc = sqlite3_prepare_v2(db,
      "INSERT OR REPLACE INTO main.tracts_files VALUES(?1,?2,?3,?4,?5,?6,?7,"
      "strftime('%Y-%m-%dT%H:%M:%fZ','now'))", -1, &pFile, 0);
  if( rc ) goto fail;

  if( !parseCensusName(zFile, L->zFileTag, &yearName, zName, sizeof(zName)) ){
    zName[0] = 0;
  }

  /* every state of the file: check, then delete its old rows */
  for(i=0; i<shp->nRec; i++){
    const char *zG = shp->aRec[i].azAttr[iGroup];
    const char *zK = shp->aRec[i].azAttr[iKey];
    int j, bSeen = 0;
    if( zK==0 ){
      zMsg = sqlite3_mprintf("record %d has an empty %s", i+1, L->zKey);
      rc = SQLITE_ERROR; goto fail;
    }
    if( zG==0 ){
      zMsg = sqlite3_mprintf("record %d has an empty %s", i+1, L->zGroup);
      rc = SQLITE_ERROR; goto fail;
    }
    if( zName[0]>='0' && zName[0]<='9' && strcmp(zName, zG)!=0 ){
      zMsg = sqlite3_mprintf("record %d has %s '%s' but the file is named "
                             "for state %s", i+1, L->zGroup, zG, zName);
      rc = SQLITE_ERROR; goto fail;
    }
    for(j=0; j<nState && !bSeen; j++){
      bSeen = strcmp(azSeen[j], zG)==0;
    }
    if( !bSeen && nState>=(int)(sizeof(azSeen)/sizeof(azSeen[0])) ){
      zMsg = sqlite3_mprintf("the file holds more than %d states",
                             (int)(sizeof(azSeen)/sizeof(azSeen[0])));
      rc = SQLITE_ERROR; goto fail;
    }
    if( bSeen ) continue;
    if( nState>0 ) sqlite3_str_appendchar(pStates, 1, ',');
    sqlite3_str_appendall(pStates, zG);
    azSeen[nState++] = zG;
    sqlite3_bind_text(pDelBox, 1, zG, -1, SQLITE_STATIC);
    sqlite3_bind_text(pDel, 1, zG, -1, SQLITE_STATIC);
    if( sqlite3_step(pDelBox)!=SQLITE_DONE || sqlite3_step(pDel)!=SQLITE_DONE ){
      rc = SQLITE_ERROR; goto fail_db;
    }
    sqlite3_reset(pDelBox);
    sqlite3_reset(pDel);
  }

  for(i=0; i<shp->nRec; i++){
    TrRecord *r = &shp->aRec[i];
    sqlite3_int64 iRowid;
    double aBox[4];
    int k;
    if( (i & 1023)==1023 && trInterrupted(db) ){
      zMsg = sqlite3_mprintf("interrupted");
      rc = SQLITE_INTERRUPT; goto fail;
    }
    for(k=0; k<L->nField; k++){
      const char *z = r->azAttr[k];
      if( z==0 ){
        sqlite3_bind_null(pIns, k+1);
      }else if( L->aField[k].bInteger ){
        char *zEnd = 0;
        long long v = strtoll(z, &zEnd, 10);
        if( zEnd && *zEnd==0 ) sqlite3_bind_int64(pIns, k+1, v);
        else sqlite3_bind_null(pIns, k+1);
      }else{
        sqlite3_bind_text(pIns, k+1, z, -1, SQLITE_STATIC);
      }
    }
    sqlite3_bind_blob(pIns, L->nField+1, r->pBlob, r->nBlob, SQLITE_STATIC);
    rc = sqlite3_step(pIns);
    if( rc!=SQLITE_DONE ){
      if( sqlite3_extended_errcode(db)==SQLITE_CONSTRAINT_PRIMARYKEY ){
        zMsg = sqlite3_mprintf("record %d: %s '%s' appears twice", i+1,
                               L->zKey, r->azAttr[iKey]);
        rc = SQLITE_CONSTRAINT;
        goto fail;
      }
      goto fail_db;
    }
    sqlite3_reset(pIns);
    iRowid = sqlite3_last_insert_rowid(db);
    memcpy(aBox, r->geom.aBox, sizeof(aBox));
    sqlite3_bind_int64(pBox, 1, iRowid);
    sqlite3_bind_double(pBox, 2, aBox[0]);
    sqlite3_bind_double(pBox, 3, aBox[2]);
    sqlite3_bind_double(pBox, 4, aBox[1]);
    sqlite3_bind_double(pBox, 5, aBox[3]);
    if( sqlite3_step(pBox)!=SQLITE_DONE ) goto fail_db;
    sqlite3_reset(pBox);
  }

  /* provenance, one row per state */
  {
    char *zList = sqlite3_str_value(pStates);
    char *zCur = zList;
    while( zCur && *zCur ){
      char *zComma = strchr(zCur, ',');
      int n = zComma ? (int)(zComma - zCur) : (int)strlen(zCur);
      int nIn = 0, nRep = 0;
      for(i=0; i<shp->nRec; i++){
        const char *zG = shp->aRec[i].azAttr[iGroup];
        if( (int)strlen(zG)==n && strncmp(zG, zCur, (size_t)n)==0 ){
          nIn++;
          nRep += shp->aRec[i].bRepaired;
        }
      }
      sqlite3_bind_text(pFile, 1, L->zName, -1, SQLITE_STATIC);
      sqlite3_bind_text(pFile, 2, zCur, n, SQLITE_STATIC);
      sqlite3_bind_text(pFile, 3, zFile, -1, SQLITE_STATIC);
      if( yearName ) sqlite3_bind_int(pFile, 4, yearName);
      else sqlite3_bind_null(pFile, 4);
      sqlite3_bind_text(pFile, 5, shp->zSha256, -1, SQLITE_STATIC);
      sqlite3_bind_int(pFile, 6, nIn);
      sqlite3_bind_int(pFile, 7, nRep);
      if( sqlite3_step(pFile)!=SQLITE_DONE ) goto fail_db;
      sqlite3_reset(pFile);
      zCur = zComma ? zComma+1 : 0;
    }
  }

  sqlite3_finalize(pIns); sqlite3_finalize(pBox); sqlite3_finalize(pDel);
  sqlite3_finalize(pDelBox); sqlite3_finalize(pFile);
  pIns = pBox = pDel = pDelBox = pFile = 0;
  rc = trLayerEnsureSchema(db, L, &zMsg);             /* the triggers */
  if( rc ) goto fail;
  rc = sqlite3_exec(db, "RELEASE tracts_load", 0, 0, 0);
  if( rc ){
    loadErr(pzErr, zFile, sqlite3_errmsg(db));
    sqlite3_exec(db, "ROLLBACK TO tracts_load; RELEASE tracts_load", 0, 0, 0);
    sqlite3_free(sqlite3_str_finish(pStates));
    return rc;
  }
  pRow->zState = sqlite3_str_finish(pStates);
  pRow->year = yearName;
  pRow->nTract = shp->nRec;
  pRow->nRepaired = shp->nRepaired;
  return SQLITE_OK;

fail_db:
  rc = sqlite3_errcode(db);
  if( rc==SQLITE_OK || rc==SQLITE_DONE || rc==SQLITE_ROW ) rc = SQLITE_ERROR;
  zMsg = sqlite3_mprintf("%s", sqlite3_errmsg(db));
fail:
  if( zMsg==0 && rc ) zMsg = sqlite3_mprintf("%s", sqlite3_errmsg(db));
  loadErr(pzErr, zFile, zMsg ? zMsg : "out of memory");
  sqlite3_free(zMsg);
  sqlite3_finalize(pIns); sqlite3_finalize(pBox); sqlite3_finalize(pDel);
  sqlite3_finalize(pDelBox); sqlite3_finalize(pFile);
  sqlite3_exec(db, "ROLLBACK TO tracts_load; RELEASE tracts_load", 0, 0, 0);
  sqlite3_free(sqlite3_str_finish(pStates));
  return rc ? rc : SQLITE_ERROR;
}

/* ---- reading ahead on threads --------------------------------------- */

/* One file of a load: read (and validated) by a reader thread, then
** written by the thread that runs the statement. */
typedef struct LoadJob LoadJob;
struct LoadJob {
  const char *zFile;   /* path (owned by the caller) */
  TrShapes shp;        /* what was read */
  int rc;              /* trShapesRead's result */
  int bDone;           /* shp and rc are ready */
  double t0;           /* when reading started */
};

/* Reader threads and the writer share this, under mu. */
typedef struct LoadPool LoadPool;
struct LoadPool {
  pthread_mutex_t mu;  /* guards every field below and bDone of jobs */
  pthread_cond_t cv;   /* signalled when a job is done or consumed */
  LoadJob *aJob;       /* the files, in load order */
  int nJob;            /* entries in aJob */
  int iNext;           /* next job a reader takes */
  int iWritten;        /* jobs the writer has finished with */
  int nAhead;          /* how many jobs may be read ahead of the writer */
  int bStop;           /* readers stop taking jobs */
  const TrLayer *pLayer;
  int bRepair;         /* repair setting */
  int nThread;         /* threads for a lone file's validation */
};

static void *loadReader(void *pArg){
  LoadPool *p = (LoadPool*)pArg;
  for(;;){
    LoadJob *j;
    pthread_mutex_lock(&p->mu);
    while( !p->bStop && p->iNext<p->nJob && p->iNext - p->iWritten>=p->nAhead ){
      pthread_cond_wait(&p->cv, &p->mu);
    }
    if( p->bStop || p->iNext>=p->nJob ){
      pthread_mutex_unlock(&p->mu);
      return 0;
    }
    j = &p->aJob[p->iNext++];
    pthread_mutex_unlock(&p->mu);
    j->t0 = nowSeconds();
    j->rc = trShapesRead(&j->shp, p->pLayer, j->zFile, p->bRepair,
                         p->nJob==1 ? p->nThread : 1);
    pthread_mutex_lock(&p->mu);
    j->bDone = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
  }
}

/* Load the files azFile[0..nFile-1] into aRow[]. Files are read and
** validated by reader threads (the threads setting) ahead of this thread,
** which writes each in turn, in order. A file's failure is in its row;
** with bStopOnError the first failure ends the load. Returns SQLITE_OK,
** SQLITE_NOMEM, SQLITE_INTERRUPT, or the failing file's code when
** bStopOnError. */
static int loadFiles(LoadVtab *pTab, char **azFile, int nFile, LoadRow *aRow,
                     int bStopOnError){
  TractsConn *pConn = pTab->pConn;
  LoadPool pool;
  pthread_t aTid[64];
  int nThread = (int)trConfigInt(pConn, TR_SET_THREADS);
  int nReader, nStarted = 0, i, rc = SQLITE_OK;
  memset(&pool, 0, sizeof(pool));
  pool.aJob = sqlite3_malloc64(sizeof(LoadJob)*(sqlite3_uint64)nFile);
  if( pool.aJob==0 ) return SQLITE_NOMEM;
  memset(pool.aJob, 0, sizeof(LoadJob)*(size_t)nFile);
  for(i=0; i<nFile; i++) pool.aJob[i].zFile = azFile[i];
  pool.nJob = nFile;
  pool.pLayer = pTab->pLayer;
  pool.bRepair = (int)trConfigInt(pConn, TR_SET_REPAIR);
  pool.nThread = nThread;
  nReader = nFile==1 ? 1 : (nThread < nFile ? nThread : nFile);
  if( nReader>64 ) nReader = 64;
  pool.nAhead = nReader + 1;
  pthread_mutex_init(&pool.mu, 0);
  pthread_cond_init(&pool.cv, 0);
  for(i=0; i<nReader; i++){
    if( pthread_create(&aTid[i], 0, loadReader, &pool) ) break;
    nStarted++;
  }
  for(i=0; i<nFile; i++){
    LoadJob *j = &pool.aJob[i];
    LoadRow *pRow = &aRow[i];
    pRow->zFile = sqlite3_mprintf("%s", j->zFile);
    if( pRow->zFile==0 ){ rc = SQLITE_NOMEM; break; }
    if( nStarted==0 ){
      /* no thread could start: read here */
      j->t0 = nowSeconds();
      j->rc = trShapesRead(&j->shp, pool.pLayer, j->zFile, pool.bRepair, 1);
      j->bDone = 1;
    }
    pthread_mutex_lock(&pool.mu);
    while( !j->bDone ) pthread_cond_wait(&pool.cv, &pool.mu);
    pthread_mutex_unlock(&pool.mu);
    if( trInterrupted(pConn->db) ){
      rc = SQLITE_INTERRUPT;
      break;
    }
    if( j->rc ){
      pRow->zError = sqlite3_mprintf("load_tracts: %s: %s", j->zFile,
                                     j->shp.zErr);
      rc = pRow->zError ? SQLITE_ERROR : SQLITE_NOMEM;
    }else{
      rc = loadWrite(pTab, j->zFile, &j->shp, pRow, &pRow->zError);
      if( rc && pRow->zError==0 ) rc = SQLITE_NOMEM;
    }
    trShapesFree(&j->shp);
    pRow->rSeconds = nowSeconds() - j->t0;
    pthread_mutex_lock(&pool.mu);
    pool.iWritten = i+1;
    pthread_cond_broadcast(&pool.cv);
    pthread_mutex_unlock(&pool.mu);
    if( rc==SQLITE_NOMEM || rc==SQLITE_INTERRUPT ) break;
    if( rc && bStopOnError ) break;
    rc = SQLITE_OK;
  }
  /* stop the readers, wait for them, drop what they read ahead */
  pthread_mutex_lock(&pool.mu);
  pool.bStop = 1;
  pthread_cond_broadcast(&pool.cv);
  pthread_mutex_unlock(&pool.mu);
  for(i=0; i<nStarted; i++) pthread_join(aTid[i], 0);
  for(i=0; i<nFile; i++){
    if( pool.aJob[i].bDone ) trShapesFree(&pool.aJob[i].shp);
  }
  pthread_cond_destroy(&pool.cv);
  pthread_mutex_destroy(&pool.mu);
  sqlite3_free(pool.aJob);
  return rc;
}

static int cmpStr(const void *a, const void *b){
  return strcmp(*(char*const*)a, *(char*const*)b);
}

/* The census zips of the layer in directory zDir, sorted; *pn entries. */
static int listDir(LoadVtab *pTab, const char *zDir, char ***pazOut, int *pn,
                   char **pzErr){
  DIR *d = opendir(zDir);
  struct dirent *e;
  char **az = 0;
  int n = 0, nAlloc = 0;
  if( d==0 ){
    *pzErr = sqlite3_mprintf("load_tracts: cannot open directory '%s': %s",
                             zDir, strerror(errno));
    return SQLITE_ERROR;
  }
  while( (e = readdir(d))!=0 ){
    int year;
    char zSt[8];
    size_t m = strlen(e->d_name);
    if( m<4 || strcmp(e->d_name+m-4, ".zip")!=0 ) continue;
    if( !parseCensusName(e->d_name, pTab->pLayer->zFileTag, &year, zSt, 8) ){
      continue;
    }
    if( n>=nAlloc ){
      char **azNew;
      nAlloc = nAlloc*2 + 16;
      azNew = sqlite3_realloc64(az, sizeof(char*)*(sqlite3_uint64)nAlloc);
      if( azNew==0 ) break;
      az = azNew;
    }
    az[n] = sqlite3_mprintf("%s%s%s", zDir,
                            zDir[strlen(zDir)-1]=='/' ? "" : "/", e->d_name);
    if( az[n]==0 ) break;
    n++;
  }
  closedir(d);
  if( e!=0 ){
    while( n>0 ) sqlite3_free(az[--n]);
    sqlite3_free(az);
    return SQLITE_NOMEM;
  }
  if( n>1 ) qsort(az, (size_t)n, sizeof(char*), cmpStr);
  *pazOut = az;
  *pn = n;
  return SQLITE_OK;
}

static int loadFilter(sqlite3_vtab_cursor *cur, int idxNum,
                      const char *idxStr, int argc, sqlite3_value **argv){
  LoadCursor *c = (LoadCursor*)cur;
  LoadVtab *pTab = (LoadVtab*)cur->pVtab;
  const char *zPath;
  struct stat st;
  int rc = SQLITE_OK;
  (void)idxStr;
  loadRowsFree(c);
  sqlite3_free(pTab->base.zErrMsg);
  pTab->base.zErrMsg = 0;
  if( idxNum!=1 || argc<1 ){
    pTab->base.zErrMsg = sqlite3_mprintf("load_tracts: needs a path argument");
    return SQLITE_ERROR;
  }
  zPath = (const char*)sqlite3_value_text(argv[0]);
  if( zPath==0 || zPath[0]==0 ){
    pTab->base.zErrMsg = sqlite3_mprintf("load_tracts: the path is %s",
                                         zPath ? "empty" : "NULL");
    return SQLITE_ERROR;
  }
  if( stat(zPath, &st) ){
    pTab->base.zErrMsg = sqlite3_mprintf("load_tracts: cannot open '%s': %s",
                                         zPath, strerror(errno));
    return SQLITE_ERROR;
  }
  if( S_ISDIR(st.st_mode) ){
    char **az = 0;
    int n = 0, i;
    rc = listDir(pTab, zPath, &az, &n, &pTab->base.zErrMsg);
    if( rc ) return rc;
    if( n==0 ){
      sqlite3_free(az);
      pTab->base.zErrMsg = sqlite3_mprintf("load_tracts: no census %s zips "
          "(cb_YYYY_SS_%s_500k.zip) in '%s'", pTab->pLayer->zFileTag,
          pTab->pLayer->zFileTag, zPath);
      return SQLITE_ERROR;
    }
    c->aRow = sqlite3_malloc64(sizeof(LoadRow)*(sqlite3_uint64)n);
    if( c->aRow==0 ){
      rc = SQLITE_NOMEM;
    }else{
      memset(c->aRow, 0, sizeof(LoadRow)*(size_t)n);
      c->nRow = n;
      rc = loadFiles(pTab, az, n, c->aRow, 0);
      if( rc==SQLITE_INTERRUPT ){
        pTab->base.zErrMsg = sqlite3_mprintf("load_tracts: interrupted");
      }
    }
    for(i=0; i<n; i++) sqlite3_free(az[i]);
    sqlite3_free(az);
    return rc;
  }
  c->aRow = sqlite3_malloc(sizeof(LoadRow));
  if( c->aRow==0 ) return SQLITE_NOMEM;
  memset(c->aRow, 0, sizeof(LoadRow));
  c->nRow = 1;
  {
    char *azOne[1];
    azOne[0] = (char*)zPath;
    rc = loadFiles(pTab, azOne, 1, c->aRow, 1);
  }
  if( rc==SQLITE_INTERRUPT ){
    pTab->base.zErrMsg = sqlite3_mprintf("load_tracts: interrupted");
  }else if( rc ){
    pTab->base.zErrMsg = c->aRow[0].zError;
    c->aRow[0].zError = 0;
  }
  return rc;
}

static int loadNext(sqlite3_vtab_cursor *cur){
  ((LoadCursor*)cur)->iRow++;
  return SQLITE_OK;
}

static int loadEof(sqlite3_vtab_cursor *cur){
  LoadCursor *c = (LoadCursor*)cur;
  return c->iRow>=c->nRow;
}

static int loadColumn(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int i){
  LoadCursor *c = (LoadCursor*)cur;
  const LoadRow *r = &c->aRow[c->iRow];
  switch( i ){
    case LOAD_FILE:   sqlite3_result_text(ctx, r->zFile, -1, SQLITE_TRANSIENT); break;
    case LOAD_STATE:
      if( r->zState ) sqlite3_result_text(ctx, r->zState, -1, SQLITE_TRANSIENT);
      break;
    case LOAD_YEAR:   if( r->year ) sqlite3_result_int(ctx, r->year); break;
    case LOAD_TRACTS: sqlite3_result_int(ctx, r->nTract); break;
    case LOAD_REPAIRED: sqlite3_result_int(ctx, r->nRepaired); break;
    case LOAD_SECONDS: sqlite3_result_double(ctx, r->rSeconds); break;
    case LOAD_ERROR:
      if( r->zError ) sqlite3_result_text(ctx, r->zError, -1, SQLITE_TRANSIENT);
      break;
  }
  return SQLITE_OK;
}

static int loadRowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *pRowid){
  *pRowid = ((LoadCursor*)cur)->iRow + 1;
  return SQLITE_OK;
}

/* The path argument must be given as an equality constraint. */
static int loadBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *p){
  int i, bUnusable = 0;
  (void)pVtab;
  for(i=0; i<p->nConstraint; i++){
    const struct sqlite3_index_constraint *c = &p->aConstraint[i];
    if( c->iColumn!=LOAD_PATH || c->op!=SQLITE_INDEX_CONSTRAINT_EQ ) continue;
    if( !c->usable ){ bUnusable = 1; continue; }
    p->aConstraintUsage[i].argvIndex = 1;
    p->aConstraintUsage[i].omit = 1;
    p->idxNum = 1;
    p->estimatedCost = 10.0;
    p->estimatedRows = 10;
    return SQLITE_OK;
  }
  if( bUnusable ) return SQLITE_CONSTRAINT;
  p->idxNum = 0;
  p->estimatedCost = 1e99;
  return SQLITE_OK;
}

/* load_tracts: an eponymous-only table-valued function. */
static sqlite3_module loadModule = {
  0,                 /* iVersion */
  0,                 /* xCreate: eponymous only */
  loadConnect,       /* xConnect */
  loadBestIndex,     /* xBestIndex */
  loadDisconnect,    /* xDisconnect */
  0,                 /* xDestroy */
  loadOpen,          /* xOpen */
  loadClose,         /* xClose */
  loadFilter,        /* xFilter: does the loading */
  loadNext,          /* xNext */
  loadEof,           /* xEof */
  loadColumn,        /* xColumn */
  loadRowid,         /* xRowid */
  0, 0, 0, 0, 0, 0,  /* xUpdate .. xRollback, xFindFunction */
  0,                 /* xRename */
  0, 0, 0,           /* xSavepoint, xRelease, xRollbackTo */
  0                  /* xShadowName */
};

int trLayerRegister(sqlite3 *db, TractsConn *pConn){
  pConn->nRef++;
  return sqlite3_create_module_v2(db, "load_tracts", &loadModule, pConn,
                                  trConnUnref);
}
