/*
** layer.c - loading boundary layers: load_tracts() and load_boundaries().
**
** Usage
**
**     SELECT * FROM load_tracts('cb_2019_44_tract_500k.zip');
**     SELECT * FROM load_tracts('downloads/');          -- every cb_*_tract_*.zip
**     SELECT * FROM load_boundaries('counties', 'cb_2019_us_county_500k.zip');
**     SELECT * FROM load_boundaries('tracts_2020', 'downloads/2020/');
**     SELECT * FROM load_boundaries('ny8', 'NY8_utm18.shp', 'AREAKEY');
**     SELECT * FROM load_boundaries('nc', 'nc.shp', 'FIPS', 4267);  -- SRID
**
**   One row per file: file, state, year, tracts (features), repaired,
**   seconds, error. `state` is the state FIPS code of the file (a comma
**   list for a national file; NULL for a layer a file replaces whole),
**   `year` from the file name, `repaired` how many polygons GEOS had to
**   repair, `error` NULL or why that file was not loaded. load_tracts(p)
**   is load_boundaries('tracts', p). Layer names, census layers and
**   vintages: registry.c.
**
** What it writes (in the main database), for layer L
**
**     L(<the layer's DBF fields>, geometry BLOB)
**                          geometry: SpatiaLite MULTIPOLYGON, SRID 4269;
**                          a census layer's key is its PRIMARY KEY
**     L_rtree              R*Tree (id = L.rowid, minx, maxx, miny, maxy)
**     tracts_files         provenance: layer, state, file, year, sha256,
**                          tracts, repaired, loaded_at
**     tracts_layers        layer, generation (bumped by triggers on every
**                          change to the layer's table, so tract_of() and
**                          boundary_of() know when to rebuild an index),
**                          kind, year (the vintage it holds), key
**
** How it works
**
**   Reader threads (the threads setting) open the files ahead of the
**   writer (zip members inflated in memory, shpzip.c) and read and validate
**   their records in chunks, several chunks of one file at once; they never
**   touch SQLite. This thread writes each file, in order, inside one
**   SAVEPOINT: the rows of every state the file holds are deleted when the
**   state first appears and the new ones inserted as chunks arrive (a
**   layer without a group column loses all its rows first). Any
**   failure rolls the savepoint back, so a file is loaded whole or not at
**   all, and loading a state again replaces it. Before writing, the
**   layer's table must be a layer's (never a user table of that name) and
**   a file must not bring a second vintage into a layer.
**
**   Commits: a file is committed when it is written, unless the next file
**   is already waiting (read ahead, or downloaded while this one was
**   written); then they are written one after another into one
**   transaction, each still in its own savepoint, and committed together
**   (at most LOAD_BATCH_ROWS rows or LOAD_BATCH_FILES files). In
**   rollback-journal mode a commit costs several fsyncs, most of the time
**   a small file takes. A commit that fails (a reader holds the database)
**   leaves none of its files, each row saying so.
**
**   A single file that fails is an SQL error naming the file. In a
**   directory each file stands alone: a failing file's row carries the
**   error and the other files still load.
**
** Limits
**
**   Tables live in the main schema. The national file replaces every
**   state it contains. sqlite3_interrupt() stops a load between files and
**   every 1000 rows within one; the interrupted file is rolled back. A
**   layer of one's own is opened twice (once to learn its fields).
*/
#include "tracts_sql.h"

#include <dirent.h>
#include <stdarg.h>
#include <pthread.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static int fieldIndex(const TrLayer *pLayer, const char *zName){
  int i;
  for(i=0; i<pLayer->nField; i++){
    if( strcmp(pLayer->aField[i].zName, zName)==0 ) return i;
  }
  return -1;
}

/* 1 if the main schema has a table (or view) named zName. */
static int hasTable(sqlite3 *db, const char *zName){
  return trSqlExists(db, "SELECT 1 FROM main.sqlite_schema WHERE type IN "
                     "('table','view') AND name=?1 COLLATE NOCASE", zName);
}

/* The column type of field f. */
static const char *colType(const TrField *f){
  return f->bInteger==1 ? "INTEGER" : f->bInteger==2 ? "REAL" : "TEXT";
}

/* Add the columns kind, year and key to a tracts_layers made before
** layers other than tracts existed. */
static int layersMigrate(sqlite3 *db, char **pzErr){
  if( trHasColumn(db, "main", "tracts_layers", "key") ) return SQLITE_OK;
  return sqlite3_exec(db, "ALTER TABLE main.tracts_layers ADD COLUMN kind TEXT;"
      "ALTER TABLE main.tracts_layers ADD COLUMN year INTEGER;"
      "ALTER TABLE main.tracts_layers ADD COLUMN key TEXT;", 0, 0, pzErr);
}

int trLayerEnsureSchema(sqlite3 *db, const TrLayer *p, char **pzErr){
  sqlite3_str *s = sqlite3_str_new(db);
  char *zSql;
  int i, rc;
  rc = sqlite3_exec(db, "CREATE TABLE IF NOT EXISTS main.tracts_files("
    "layer TEXT NOT NULL, state TEXT NOT NULL, file TEXT, year INTEGER, "
    "sha256 TEXT, tracts INTEGER, repaired INTEGER, loaded_at TEXT, "
    "PRIMARY KEY(layer, state));"
    "CREATE TABLE IF NOT EXISTS main.tracts_layers(layer TEXT PRIMARY KEY, "
    "generation INTEGER NOT NULL, kind TEXT, year INTEGER, key TEXT);"
    "CREATE TABLE IF NOT EXISTS main.tracts_index(layer TEXT NOT NULL, "
    "part TEXT NOT NULL, generation INTEGER NOT NULL, data BLOB NOT NULL, "
    "PRIMARY KEY(layer, part));", 0, 0, pzErr);
  if( rc==SQLITE_OK ) rc = layersMigrate(db, pzErr);
  if( rc ){ sqlite3_free(sqlite3_str_finish(s)); return rc; }
  sqlite3_str_appendf(s, "CREATE TABLE IF NOT EXISTS main.\"%w\"(", p->zTable);
  for(i=0; i<p->nField; i++){
    const TrField *f = &p->aField[i];
    sqlite3_str_appendf(s, "\"%w\" %s%s, ", f->zName, colType(f),
        p->pKind && strcmp(f->zName, p->zKey)==0 ? " PRIMARY KEY NOT NULL"
        : p->zGroup && strcmp(f->zName, p->zGroup)==0 ? " NOT NULL" : "");
  }
  sqlite3_str_appendf(s, "geometry BLOB NOT NULL);");
  if( p->zGroup ){
    sqlite3_str_appendf(s, "CREATE INDEX IF NOT EXISTS main.\"%w_%w\" ON "
                        "\"%w\"(\"%w\");", p->zTable, p->zGroup, p->zTable,
                        p->zGroup);
  }
  if( !p->pKind ){
    /* a layer of one's own reloaded from another file: its new fields
    ** become columns too */
    int bTable = hasTable(db, p->zTable);
    for(i=0; bTable && i<p->nField; i++){
      const TrField *f = &p->aField[i];
      if( !trHasColumn(db, "main", p->zTable, f->zName) ){
        sqlite3_str_appendf(s, "ALTER TABLE main.\"%w\" ADD COLUMN \"%w\" %s;",
                            p->zTable, f->zName, colType(f));
      }
    }
    sqlite3_str_appendf(s, "CREATE INDEX IF NOT EXISTS main.\"%w_key_idx\" ON "
                        "\"%w\"(\"%w\");", p->zTable, p->zTable, p->zKey);
  }
  sqlite3_str_appendf(s,
    "CREATE VIRTUAL TABLE IF NOT EXISTS main.\"%w_rtree\" USING "
    "rtree(id, minx, maxx, miny, maxy);"
    "INSERT OR IGNORE INTO main.tracts_layers(layer, generation) "
    "VALUES(%Q, abs(random()/2));"
    "UPDATE main.tracts_layers SET kind=%Q, key=%Q WHERE layer=%Q;",
    p->zTable, p->zName, p->pKind ? p->pKind->zName : 0, p->zKey, p->zName);
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

/* Columns of load_tracts and load_boundaries, as declared in LOAD_SCHEMA
** and BOUNDARIES_SCHEMA; their hidden argument columns follow. */
#define LOAD_FILE     0
#define LOAD_STATE    1
#define LOAD_YEAR     2
#define LOAD_TRACTS   3
#define LOAD_REPAIRED 4
#define LOAD_SECONDS  5
#define LOAD_ERROR    6
#define LOAD_ARG0     7   /* hidden: the arguments */
#define LOAD_SCHEMA "CREATE TABLE x(file TEXT, state TEXT, year INTEGER, " \
  "tracts INTEGER, repaired INTEGER, seconds REAL, error TEXT, path HIDDEN)"
#define BOUNDARIES_SCHEMA "CREATE TABLE x(file TEXT, state TEXT, " \
  "year INTEGER, features INTEGER, repaired INTEGER, seconds REAL, " \
  "error TEXT, layer HIDDEN, path HIDDEN, key_column HIDDEN, srid HIDDEN)"


typedef struct LoadVtab LoadVtab;
struct LoadVtab {
  sqlite3_vtab base;         /* base class, must be first (a TrVtab) */
  TractsConn *pConn;         /* connection state */
  int bBoundaries;           /* load_boundaries (else load_tracts) */
};

typedef struct LoadCursor LoadCursor;
struct LoadCursor {
  sqlite3_vtab_cursor base;  /* base class, must be first */
  TrLoadRow *aRow;           /* results of the last xFilter */
  int nRow;                  /* entries in aRow */
  int iRow;                  /* current row */
  char *zLayer;              /* the layer loaded */
};

static int loadConnect(sqlite3 *db, void *pAux, int argc,
                       const char *const *argv, sqlite3_vtab **ppVtab,
                       char **pzErr){
  (void)argc; (void)argv; (void)pzErr;
  return trVtabConnect(db, pAux, LOAD_SCHEMA, sizeof(LoadVtab), 1, ppVtab);
}

static int boundariesConnect(sqlite3 *db, void *pAux, int argc,
                             const char *const *argv, sqlite3_vtab **ppVtab,
                             char **pzErr){
  int rc = trVtabConnect(db, pAux, BOUNDARIES_SCHEMA, sizeof(LoadVtab), 1,
                         ppVtab);
  (void)argc; (void)argv; (void)pzErr;
  if( rc==SQLITE_OK ) ((LoadVtab*)*ppVtab)->bBoundaries = 1;
  return rc;
}

static int loadOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCur){
  (void)pVtab;
  return trCursorNew(sizeof(LoadCursor), ppCur);
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
  sqlite3_free(c->zLayer);
  c->zLayer = 0;
}

static int loadClose(sqlite3_vtab_cursor *cur){
  loadRowsFree((LoadCursor*)cur);
  sqlite3_free(cur);
  return SQLITE_OK;
}

/* ---- loads: files read on threads, written here ------------------------ */

#define LOAD_CHUNK       2048  /* records a reader reads at a time */
#define LOAD_BATCH_ROWS  4096  /* a batch commits once it has this many rows */
#define LOAD_BATCH_FILES 32    /* ... or this many files */
#define LOAD_AHEAD_CHUNK 12    /* chunks read ahead of the writer, per file */

/* One range of records of a file, read by a reader thread. */
typedef struct LoadChunk LoadChunk;
struct LoadChunk {
  TrShapes shp;        /* what was read */
  int rc;              /* trSourceRead's result */
  int bDone;           /* shp and rc are ready */
};

/* One file of a load. */
typedef struct LoadFile LoadFile;
struct LoadFile {
  char *zFile;         /* path read */
  char *zName;         /* name in rows and errors (the path, or a URL) */
  void *pTag;          /* the caller's, returned by trLoadStep */
  TrLoadOpened xOpened;/* told when the file is opened, or NULL */
  TrSource *pSrc;      /* the opened file, once eState is OPEN */
  int eState;          /* FILE_NEW, ... below */
  char zErr[TR_ERR_SIZE];  /* why it failed to open */
  int nChunk;          /* chunks, once open */
  int iTake;           /* next chunk a reader takes */
  int iWritten;        /* chunks the writer has finished with */
  LoadChunk *aChunk;   /* nChunk entries */
  double t0;           /* when opening started */
};
#define FILE_NEW       0
#define FILE_OPENING   1
#define FILE_OPEN      2
#define FILE_FAILED    3
#define FILE_WITHDRAWN 4   /* its xOpened took it back: no row */

/* A load: reader threads and the writer share it, under mu. */
struct TrLoad {
  TractsConn *pConn;   /* the connection written */
  const TrLayer *pLayer;
  const char *zFunc;   /* SQL function named in errors */
  int bRepair;         /* repair setting */
  pthread_mutex_t mu;  /* guards every field below and those of the files */
  pthread_cond_t cv;   /* signalled whenever any of them changes */
  LoadFile **apFile;   /* the files, in load order */
  int nFile, nAlloc;   /* entries in apFile, allocated */
  int iWrite;          /* file the writer is on */
  int nAhead;          /* files that may be opened ahead of the writer */
  int bClosed;         /* no more files will be added */
  int bStop;           /* readers stop taking work */
  pthread_t aTid[64];  /* reader threads */
  int nThread;         /* started */
  /* the writer's batch (see trLoadStep); only the writer touches these */
  TrSavepoint batch;   /* open while bBatch */
  int bBatch;
  int nBatchRows;      /* rows written in it */
  TrLoadRow aPend[LOAD_BATCH_FILES];  /* rows of its files, then returned */
  void *aPendTag[LOAD_BATCH_FILES];
  int nPend, iPend;    /* rows held, next to return */
};

/* Year and state from the name of a file of layer L, as the Census names
** them: cb_2019_44_tract_500k.zip gives 2019 and "44" (or "us").
** Returns 0 if the name is not of that form (or L is a user layer). */
static int parseCensusName(const char *zPath, const TrLayer *L, int *pYear,
                           char *zState, int nState){
  char zSt[3];
  if( L->pKind==0 || !trKindMatch(L->pKind, zPath, pYear, zSt) ) return 0;
  snprintf(zState, (size_t)nState, "%s", zSt);
  return 1;
}

/* Set *pzErr to "load_tracts: FILE: message" (the caller's function). */
static void loadErr(const TrLoad *p, char **pzErr, const char *zFile,
                    const char *zMsg){
  sqlite3_free(*pzErr);
  *pzErr = sqlite3_mprintf("%s: %s: %s", p->zFunc, zFile, zMsg);
}

/* ---- writing one file -------------------------------------------------- */

#define MAX_STATES 100

/* The writer's state while one file is written, in one savepoint. */
typedef struct FileWriter FileWriter;
struct FileWriter {
  TrLoad *pLoad;             /* the load */
  const char *zFile;         /* the file's path */
  const char *zSha256;       /* its hash */
  sqlite3_stmt *pIns;        /* INSERT into the layer's table */
  sqlite3_stmt *pBox;        /* INSERT into its R*Tree */
  sqlite3_stmt *pDel;        /* DELETE a state's rows */
  sqlite3_stmt *pDelBox;     /* DELETE a state's boxes */
  int iGroup, iKey;          /* field numbers of STATEFP and GEOID */
  char zName[8];             /* state from the file name, "" if none */
  int yearName;              /* year from the file name, 0 if none */
  int nState;                /* states seen */
  char azState[MAX_STATES][8];   /* their codes */
  int anTract[MAX_STATES];   /* rows written per state */
  int anRepaired[MAX_STATES];/* repaired per state */
  int nTract, nRepaired;     /* totals */
  int bOpen;                 /* the savepoint is open */
  TrSavepoint sp;            /* the file's savepoint */
};

static int prepareFmt(sqlite3 *db, sqlite3_stmt **pp, const char *zFmt, ...){
  va_list ap;
  char *zSql;
  int rc;
  va_start(ap, zFmt);
  zSql = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = sqlite3_prepare_v2(db, zSql, -1, pp, 0);
  sqlite3_free(zSql);
  return rc;
}

/* Before a file is written into layer L: its table must be the layer's
** (never a user's table of that name), and it must not mix vintages. 0,
** or SQLITE_ERROR with *pzMsg. */
static int layerCheck(sqlite3 *db, const TrLayer *L, int yearFile,
                      char **pzMsg){
  sqlite3_stmt *pStmt = 0;
  int bLayer = 0, yearHeld = 0;
  char *zRtree = sqlite3_mprintf("%s_rtree", L->zTable);
  int bTable, bOurs;
  if( zRtree==0 ) return SQLITE_NOMEM;
  bTable = hasTable(db, L->zTable) || hasTable(db, zRtree);
  sqlite3_free(zRtree);
  /* a table is the layer's only with the triggers a load makes (a user
  ** table made under the name of a dropped layer has none) */
  bOurs = trSqlExists(db, "SELECT 1 FROM main.sqlite_schema WHERE type="
                      "'trigger' AND name=?1||'_changed_i' COLLATE NOCASE",
                      L->zTable);
  if( hasTable(db, "tracts_layers")
   && sqlite3_prepare_v2(db, "SELECT 1, (SELECT year FROM main.tracts_files "
        "WHERE layer=?1 AND year IS NOT NULL AND year<>?2) FROM "
        "main.tracts_layers WHERE layer=?1", -1, &pStmt, 0)==SQLITE_OK ){
    sqlite3_bind_text(pStmt, 1, L->zName, -1, SQLITE_STATIC);
    sqlite3_bind_int(pStmt, 2, yearFile);
    if( sqlite3_step(pStmt)==SQLITE_ROW ){
      bLayer = 1;
      yearHeld = sqlite3_column_int(pStmt, 1);
    }
    sqlite3_finalize(pStmt);
  }
  if( bTable && !(bLayer && bOurs) ){
    *pzMsg = sqlite3_mprintf("the database has a table %s that is not a "
        "boundary layer; load the layer under another name", L->zTable);
    return SQLITE_ERROR;
  }
  if( L->year && yearFile && yearFile!=L->year ){
    *pzMsg = sqlite3_mprintf("the file holds %d boundaries; layer %s holds "
                             "%d ones", yearFile, L->zName, L->year);
    return SQLITE_ERROR;
  }
  if( L->pKind && bTable ){
    /* a table made for another naming scheme (2010 or ZCTA 510 against
    ** 520 columns) takes none of these files */
    if( !trHasColumn(db, "main", L->zTable, L->zKey) ){
      *pzMsg = sqlite3_mprintf("layer %s was made for other Census files (it "
          "has no %s column); drop it first (DROP TABLE %s; DROP TABLE "
          "%s_rtree) or load these under a vintage name such as %s_%d",
          L->zName, L->zKey, L->zName, L->zName, L->pKind->zName,
          yearFile ? yearFile : L->pKind->yearFirst);
      return SQLITE_ERROR;
    }
  }
  if( L->pKind && yearFile && yearHeld && bTable ){
    /* rows of another vintage still there? */
    int bRows = 0;
    char *zSql = sqlite3_mprintf("SELECT 1 FROM main.\"%w\" LIMIT 1",
                                 L->zTable);
    if( zSql && sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0)==SQLITE_OK ){
      bRows = sqlite3_step(pStmt)==SQLITE_ROW;
      sqlite3_finalize(pStmt);
    }
    sqlite3_free(zSql);
    if( bRows ){
      if( L->zGroup ){
        *pzMsg = sqlite3_mprintf("layer %s holds %d boundaries and this file "
            "%d ones: load it as %s_%d (vintages load side by side), or empty "
            "the layer first (DELETE FROM %s)", L->zName, yearHeld, yearFile,
            L->pKind->zName, yearFile, L->zName);
      }else{
        *pzMsg = sqlite3_mprintf("layer %s holds %d boundaries and this file "
            "%d ones: load it as %s_%d (vintages load side by side), or drop "
            "the layer first (DROP TABLE %s; DROP TABLE %s_rtree)", L->zName,
            yearHeld, yearFile, L->pKind->zName, yearFile, L->zName, L->zName);
      }
      return SQLITE_ERROR;
    }
  }
  return SQLITE_OK;
}

static void writerFinalize(FileWriter *w){
  sqlite3_finalize(w->pIns);
  sqlite3_finalize(w->pBox);
  sqlite3_finalize(w->pDel);
  sqlite3_finalize(w->pDelBox);
  w->pIns = w->pBox = w->pDel = w->pDelBox = 0;
}

/* Roll back everything written for this file. */
static void writerAbort(FileWriter *w){
  writerFinalize(w);
  if( w->bOpen ){
    trSavepointUndo(w->pLoad->pConn->db, &w->sp);
    w->bOpen = 0;
  }
}

/* Open the savepoint, make the schema, drop the change triggers (a
** statement per row, a third of the write time; the generation is bumped
** once instead and the triggers made again at the end) and prepare. */
static int writerBegin(FileWriter *w, TrLoad *pLoad, const char *zFile,
                       const char *zSha256, char **pzErr){
  sqlite3 *db = pLoad->pConn->db;
  const TrLayer *L = pLoad->pLayer;
  char *zMsg = 0;
  int i, rc;
  memset(w, 0, sizeof(*w));
  w->pLoad = pLoad;
  w->zFile = zFile;
  w->zSha256 = zSha256;
  w->iGroup = L->zGroup ? fieldIndex(L, L->zGroup) : -1;
  w->iKey = fieldIndex(L, L->zKey);
  if( !parseCensusName(zFile, L, &w->yearName, w->zName,
                       sizeof(w->zName)) ){
    w->zName[0] = 0;
  }
  rc = trSavepointBegin(db, "tracts_load", &w->sp);
  if( rc ){
    char *z = sqlite3_mprintf("cannot write inside a statement that "
                              "writes; run SELECT * FROM %s(...) on its own",
                              pLoad->zFunc);
    loadErr(pLoad, pzErr, zFile, rc!=SQLITE_BUSY ? sqlite3_errmsg(db)
            : z ? z : "out of memory");
    sqlite3_free(z);
    return rc;
  }
  w->bOpen = 1;
  rc = layerCheck(db, L, w->yearName, &zMsg);
  if( rc==SQLITE_OK ) rc = trLayerEnsureSchema(db, L, &zMsg);
  if( rc==SQLITE_OK && L->zGroup==0 ){
    /* a file replaces the whole layer (a table cannot be dropped while
    ** this statement reads: its rows go; new columns were added) */
    char *zSql = sqlite3_mprintf("DELETE FROM main.\"%w\";"
                                 "DELETE FROM main.\"%w_rtree\";",
                                 L->zTable, L->zTable);
    rc = zSql ? sqlite3_exec(db, zSql, 0, 0, &zMsg) : SQLITE_NOMEM;
    sqlite3_free(zSql);
  }
  if( rc==SQLITE_OK ){
    char *zSql = sqlite3_mprintf("DROP TRIGGER main.\"%w_changed_i\";"
        "DROP TRIGGER main.\"%w_changed_u\";DROP TRIGGER main.\"%w_changed_d\";"
        "UPDATE main.tracts_layers SET generation=generation+1 WHERE layer=%Q",
        L->zTable, L->zTable, L->zTable, L->zName);
    rc = zSql ? sqlite3_exec(db, zSql, 0, 0, &zMsg) : SQLITE_NOMEM;
    sqlite3_free(zSql);
  }
  if( rc==SQLITE_OK ){
    sqlite3_str *x = sqlite3_str_new(db);
    char *zSql;
    sqlite3_str_appendf(x, "INSERT INTO main.\"%w\"(", L->zTable);
    for(i=0; i<L->nField; i++) sqlite3_str_appendf(x, "\"%w\",", L->aField[i].zName);
    sqlite3_str_appendall(x, "geometry) VALUES(");
    for(i=0; i<L->nField; i++) sqlite3_str_appendall(x, "?,");
    sqlite3_str_appendall(x, "?)");
    zSql = sqlite3_str_finish(x);
    rc = zSql ? sqlite3_prepare_v2(db, zSql, -1, &w->pIns, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
  }
  if( rc==SQLITE_OK ){
    rc = prepareFmt(db, &w->pBox, "INSERT OR REPLACE INTO main.\"%w_rtree\" "
                    "VALUES(?,?,?,?,?)", L->zTable);
  }
  if( rc==SQLITE_OK && L->zGroup ){
    rc = prepareFmt(db, &w->pDelBox, "DELETE FROM main.\"%w_rtree\" WHERE id "
                    "IN (SELECT rowid FROM main.\"%w\" WHERE \"%w\"=?1)",
                    L->zTable, L->zTable, L->zGroup);
  }
  if( rc==SQLITE_OK && L->zGroup ){
    rc = prepareFmt(db, &w->pDel, "DELETE FROM main.\"%w\" WHERE \"%w\"=?1",
                    L->zTable, L->zGroup);
  }
  if( rc ){
    loadErr(pLoad, pzErr, zFile, zMsg ? zMsg : sqlite3_errmsg(db));
    sqlite3_free(zMsg);
    writerAbort(w);
    return rc;
  }
  return SQLITE_OK;
}

/* Write records shp->aRec (numbered from iFirst+1 in the file). */
static int writerChunk(FileWriter *w, TrShapes *shp, int iFirst, char **pzErr){
  sqlite3 *db = w->pLoad->pConn->db;
  const TrLayer *L = w->pLoad->pLayer;
  char *zMsg = 0;
  int i, rc = SQLITE_OK;
  for(i=0; i<shp->nRec; i++){
    TrRecord *r = &shp->aRec[i];
    const char *zG = w->iGroup>=0 ? r->azAttr[w->iGroup] : "*";
    const char *zK = r->azAttr[w->iKey];
    int k, iState;
    if( zK==0 ){
      zMsg = sqlite3_mprintf("record %d has an empty %s", iFirst+i+1, L->zKey);
      rc = SQLITE_ERROR; break;
    }
    if( zG==0 ){
      zMsg = sqlite3_mprintf("record %d has an empty %s", iFirst+i+1, L->zGroup);
      rc = SQLITE_ERROR; break;
    }
    if( w->zName[0]>='0' && w->zName[0]<='9' && strcmp(w->zName, zG)!=0 ){
      zMsg = sqlite3_mprintf("record %d has %s '%s' but the file is named "
                             "for state %s", iFirst+i+1, L->zGroup, zG, w->zName);
      rc = SQLITE_ERROR; break;
    }
    for(iState=0; iState<w->nState && strcmp(w->azState[iState], zG)!=0; iState++){}
    if( iState==w->nState ){
      /* a state first seen: its old rows go */
      if( w->nState>=MAX_STATES || strlen(zG)>=sizeof(w->azState[0]) ){
        zMsg = sqlite3_mprintf("record %d: too many or too long %s values",
                               iFirst+i+1, L->zGroup);
        rc = SQLITE_ERROR; break;
      }
      memcpy(w->azState[w->nState], zG, strlen(zG)+1);
      w->nState++;
      if( w->pDel ){
        sqlite3_bind_text(w->pDelBox, 1, zG, -1, SQLITE_STATIC);
        sqlite3_bind_text(w->pDel, 1, zG, -1, SQLITE_STATIC);
        if( sqlite3_step(w->pDelBox)!=SQLITE_DONE
         || sqlite3_step(w->pDel)!=SQLITE_DONE ){
          rc = SQLITE_ERROR; break;
        }
        sqlite3_reset(w->pDelBox);
        sqlite3_reset(w->pDel);
      }
    }
    if( (i & 1023)==1023 && trInterrupted(db) ){
      zMsg = sqlite3_mprintf("interrupted");
      rc = SQLITE_INTERRUPT; break;
    }
    for(k=0; k<L->nField; k++){
      const char *z = r->azAttr[k];
      if( z==0 ){
        sqlite3_bind_null(w->pIns, k+1);
      }else if( L->aField[k].bInteger ){
        /* numbers as numbers; what does not read as one is NULL */
        char *zEnd = 0;
        long long v;
        errno = 0;
        v = L->aField[k].bInteger==1 ? strtoll(z, &zEnd, 10) : 0;
        if( errno==ERANGE ){
          sqlite3_bind_text(w->pIns, k+1, z, -1, SQLITE_STATIC);  /* digits */
        }else if( zEnd && zEnd!=z && *zEnd==0 ){
          sqlite3_bind_int64(w->pIns, k+1, v);
        }else{
          double d = strtod(z, &zEnd);
          if( zEnd!=z && *zEnd==0 && isfinite(d) ){
            sqlite3_bind_double(w->pIns, k+1, d);
          }else{
            sqlite3_bind_null(w->pIns, k+1);
          }
        }
      }else{
        sqlite3_bind_text(w->pIns, k+1, z, -1, SQLITE_STATIC);
      }
    }
    sqlite3_bind_blob(w->pIns, L->nField+1, r->pBlob, r->nBlob, SQLITE_STATIC);
    if( sqlite3_step(w->pIns)!=SQLITE_DONE ){
      if( sqlite3_extended_errcode(db)==SQLITE_CONSTRAINT_PRIMARYKEY ){
        zMsg = sqlite3_mprintf("record %d: %s '%s' appears twice",
                               iFirst+i+1, L->zKey, zK);
      }
      rc = SQLITE_ERROR; break;
    }
    sqlite3_reset(w->pIns);
    sqlite3_bind_int64(w->pBox, 1, sqlite3_last_insert_rowid(db));
    sqlite3_bind_double(w->pBox, 2, r->geom.aBox[0]);
    sqlite3_bind_double(w->pBox, 3, r->geom.aBox[2]);
    sqlite3_bind_double(w->pBox, 4, r->geom.aBox[1]);
    sqlite3_bind_double(w->pBox, 5, r->geom.aBox[3]);
    if( sqlite3_step(w->pBox)!=SQLITE_DONE ){ rc = SQLITE_ERROR; break; }
    sqlite3_reset(w->pBox);
    w->anTract[iState]++;
    w->anRepaired[iState] += r->bRepaired;
    w->nTract++;
    w->nRepaired += r->bRepaired;
  }
  if( rc ){
    if( zMsg==0 ) zMsg = sqlite3_mprintf("%s", sqlite3_errmsg(db));
    loadErr(w->pLoad, pzErr, w->zFile, zMsg ? zMsg : "out of memory");
    sqlite3_free(zMsg);
    writerAbort(w);
  }
  return rc;
}

/* Provenance, the triggers again, release. Fills pRow. */
static int writerEnd(FileWriter *w, TrLoadRow *pRow, char **pzErr){
  sqlite3 *db = w->pLoad->pConn->db;
  const TrLayer *L = w->pLoad->pLayer;
  sqlite3_stmt *pFile = 0;
  sqlite3_str *pStates;
  char *zMsg = 0;
  int i, rc;
  writerFinalize(w);
  rc = sqlite3_prepare_v2(db,
      "INSERT OR REPLACE INTO main.tracts_files VALUES(?1,?2,?3,?4,?5,?6,?7,"
      "strftime('%Y-%m-%dT%H:%M:%fZ','now'))", -1, &pFile, 0);
  for(i=0; rc==SQLITE_OK && i<w->nState; i++){
    sqlite3_bind_text(pFile, 1, L->zName, -1, SQLITE_STATIC);
    sqlite3_bind_text(pFile, 2, w->azState[i], -1, SQLITE_STATIC);
    sqlite3_bind_text(pFile, 3, w->zFile, -1, SQLITE_STATIC);
    if( w->yearName ) sqlite3_bind_int(pFile, 4, w->yearName);
    else sqlite3_bind_null(pFile, 4);
    sqlite3_bind_text(pFile, 5, w->zSha256, -1, SQLITE_STATIC);
    sqlite3_bind_int(pFile, 6, w->anTract[i]);
    sqlite3_bind_int(pFile, 7, w->anRepaired[i]);
    if( sqlite3_step(pFile)!=SQLITE_DONE ) rc = SQLITE_ERROR;
    sqlite3_reset(pFile);
  }
  sqlite3_finalize(pFile);
  if( rc==SQLITE_OK ){
    /* the vintage the layer now holds (other years' provenance went with
    ** their rows: layerCheck let this file in only then); a file whose
    ** name does not say its year leaves the layer the vintage it has */
    int year = w->yearName ? w->yearName : L->year;
    if( year ){
      char *zSql = sqlite3_mprintf("UPDATE main.tracts_layers SET year=%d "
          "WHERE layer=%Q;DELETE FROM main.tracts_files WHERE layer=%Q AND "
          "year<>%d", year, L->zName, L->zName, year);
      rc = zSql ? sqlite3_exec(db, zSql, 0, 0, &zMsg) : SQLITE_NOMEM;
      sqlite3_free(zSql);
    }
  }
  if( rc==SQLITE_OK ) rc = trLayerEnsureSchema(db, L, &zMsg);  /* triggers */
  if( rc ){
    loadErr(w->pLoad, pzErr, w->zFile, zMsg ? zMsg : sqlite3_errmsg(db));
    sqlite3_free(zMsg);
    writerAbort(w);
    return rc;
  }
  w->bOpen = 0;
  rc = trSavepointCommit(db, &w->sp);   /* undone if it fails */
  if( rc ){
    char *z = sqlite3_mprintf("cannot commit: %s", sqlite3_errstr(rc));
    loadErr(w->pLoad, pzErr, w->zFile, z ? z : "cannot commit");
    sqlite3_free(z);
    return rc;
  }
  if( L->zGroup ){
    pStates = sqlite3_str_new(db);
    for(i=0; i<w->nState; i++){
      sqlite3_str_appendf(pStates, "%s%s", i ? "," : "", w->azState[i]);
    }
    pRow->zState = sqlite3_str_finish(pStates);
  }
  pRow->year = w->yearName;
  pRow->nTract = w->nTract;
  pRow->nRepaired = w->nRepaired;
  return SQLITE_OK;
}

/* ---- reading ahead on threads --------------------------------------- */

/* Read file F (opening it first if needed) on a reader thread. */
static void *loadReader(void *pArg){
  TrLoad *p = (TrLoad*)pArg;
  pthread_mutex_lock(&p->mu);
  for(;;){
    int f, kPick = -1, bLeft = 0;
    LoadFile *F = 0;
    if( p->bStop ) break;
    for(f=p->iWrite; f<p->nFile && f<p->iWrite+p->nAhead; f++){
      LoadFile *G = p->apFile[f];
      if( G->eState==FILE_OPEN && G->iTake<G->nChunk ){
        bLeft = 1;
        if( G->iTake - G->iWritten < LOAD_AHEAD_CHUNK ){
          F = G; kPick = G->iTake++;
          break;
        }
      }else if( G->eState==FILE_NEW ){
        F = G;
        G->eState = FILE_OPENING;
        break;
      }else if( G->eState==FILE_OPENING ){
        bLeft = 1;
      }
    }
    if( F==0 ){
      if( !bLeft && p->bClosed && p->iWrite+p->nAhead>=p->nFile ) break;
      pthread_cond_wait(&p->cv, &p->mu);
      continue;
    }
    pthread_mutex_unlock(&p->mu);
    if( kPick<0 ){
      /* open the file and cut it into chunks */
      TrSource *pSrc = 0;
      char zErr[TR_ERR_SIZE];
      int nChunk = 0, rc, bWithdraw = 0;
      LoadChunk *aChunk = 0;
      F->t0 = trNow();
      rc = trSourceOpen(&pSrc, p->pLayer, F->zFile, zErr);
      if( rc==0 ){
        nChunk = (trSourceCount(pSrc) + LOAD_CHUNK - 1)/LOAD_CHUNK;
        aChunk = calloc((size_t)(nChunk ? nChunk : 1), sizeof(LoadChunk));
        if( aChunk==0 ){
          trSourceClose(pSrc);
          pSrc = 0;
          rc = 1;
          snprintf(zErr, sizeof(zErr), "out of memory");
        }
      }
      if( F->xOpened ){
        bWithdraw = F->xOpened(F->pTag, rc, rc ? zErr : 0,
                               pSrc ? trSourceSha256(pSrc) : 0);
        if( bWithdraw ){
          trSourceClose(pSrc);
          pSrc = 0;
          free(aChunk);
          aChunk = 0;
        }
      }
      pthread_mutex_lock(&p->mu);
      if( pSrc ){
        F->pSrc = pSrc;
        F->aChunk = aChunk;
        F->nChunk = nChunk;
        F->eState = FILE_OPEN;
      }else{
        memcpy(F->zErr, zErr, sizeof(zErr));
        F->eState = bWithdraw ? FILE_WITHDRAWN : FILE_FAILED;
      }
    }else{
      LoadChunk *c = &F->aChunk[kPick];
      int iFirst = kPick*LOAD_CHUNK, n = trSourceCount(F->pSrc) - iFirst;
      if( n>LOAD_CHUNK ) n = LOAD_CHUNK;
      c->rc = trSourceRead(F->pSrc, iFirst, n, p->bRepair, &c->shp);
      pthread_mutex_lock(&p->mu);
      c->bDone = 1;
    }
    pthread_cond_broadcast(&p->cv);
  }
  pthread_mutex_unlock(&p->mu);
  return 0;
}

/* Write file F, chunk by chunk as the readers finish them, in one
** savepoint. Returns an SQLite code; the file's error is in pRow. */
static int loadWriteFile(TrLoad *p, LoadFile *F, TrLoadRow *pRow){
  FileWriter w;
  int k, rc = SQLITE_OK;
  if( trInterrupted(p->pConn->db) ) return SQLITE_INTERRUPT;
  if( F->eState==FILE_FAILED ){
    pRow->zError = sqlite3_mprintf("%s: %s: %s", p->zFunc, F->zName, F->zErr);
    return pRow->zError ? SQLITE_ERROR : SQLITE_NOMEM;
  }
  rc = writerBegin(&w, p, F->zName, trSourceSha256(F->pSrc), &pRow->zError);
  for(k=0; rc==SQLITE_OK && k<F->nChunk; k++){
    LoadChunk *c = &F->aChunk[k];
    pthread_mutex_lock(&p->mu);
    while( !c->bDone ) pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    if( c->rc ){
      pRow->zError = sqlite3_mprintf("%s: %s: %s", p->zFunc, F->zName,
                                     c->shp.zErr);
      writerAbort(&w);
      rc = SQLITE_ERROR;
    }else{
      rc = writerChunk(&w, &c->shp, k*LOAD_CHUNK, &pRow->zError);
    }
    trShapesFree(&c->shp);
    pthread_mutex_lock(&p->mu);
    F->iWritten = k+1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
  }
  if( rc==SQLITE_OK ) rc = writerEnd(&w, pRow, &pRow->zError);
  if( rc && pRow->zError==0 ) rc = SQLITE_NOMEM;
  if( rc==SQLITE_ERROR && pRow->zError
   && strcmp(pRow->zError + strlen(pRow->zError) - 11, "interrupted")==0 ){
    rc = SQLITE_INTERRUPT;
  }
  return rc;
}

TrLoad *trLoadNew(TractsConn *pConn, const TrLayer *pLayer, const char *zFunc){
  TrLoad *p = sqlite3_malloc(sizeof(TrLoad));
  pthread_condattr_t ca;
  int nThread = (int)trConfigInt(pConn, TR_SET_THREADS), i;
  if( p==0 ) return 0;
  memset(p, 0, sizeof(*p));
  p->pConn = pConn;
  p->pLayer = pLayer;
  p->zFunc = zFunc;
  p->bRepair = (int)trConfigInt(pConn, TR_SET_REPAIR);
  if( nThread>64 ) nThread = 64;
  p->nAhead = nThread + 1;
  pthread_mutex_init(&p->mu, 0);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&p->cv, &ca);
  pthread_condattr_destroy(&ca);
  for(i=0; i<nThread; i++){
    if( pthread_create(&p->aTid[i], 0, loadReader, p) ) break;
    p->nThread++;
  }
  if( p->nThread==0 ){
    trLoadFree(p);
    return 0;
  }
  trMonitorMark(pConn, zFunc);
  return p;
}

int trLoadAdd(TrLoad *p, const char *zFile, const char *zName, void *pTag,
              TrLoadOpened xOpened){
  LoadFile *F = calloc(1, sizeof(LoadFile));
  int rc = SQLITE_OK;
  if( F==0 ) return SQLITE_NOMEM;
  F->zFile = strdup(zFile);
  F->zName = strdup(zName ? zName : zFile);
  F->pTag = pTag;
  F->xOpened = xOpened;
  pthread_mutex_lock(&p->mu);
  if( F->zFile==0 || F->zName==0 ){
    rc = SQLITE_NOMEM;
  }else if( p->nFile>=p->nAlloc ){
    int nNew = p->nAlloc*2 + 16;
    LoadFile **ap = realloc(p->apFile, sizeof(LoadFile*)*(size_t)nNew);
    if( ap==0 ) rc = SQLITE_NOMEM;
    else{ p->apFile = ap; p->nAlloc = nNew; }
  }
  if( rc==SQLITE_OK ){
    p->apFile[p->nFile++] = F;
    pthread_cond_broadcast(&p->cv);
  }
  pthread_mutex_unlock(&p->mu);
  if( rc ){
    free(F->zFile);
    free(F->zName);
    free(F);
  }
  return rc;
}

void trLoadClose(TrLoad *p){
  pthread_mutex_lock(&p->mu);
  p->bClosed = 1;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

/* Wait on p->cv (held) for at most msWait ms (forever if negative).
** Returns non-zero on timeout. */
static int loadWait(TrLoad *p, const struct timespec *pDeadline){
  if( pDeadline==0 ){
    pthread_cond_wait(&p->cv, &p->mu);
    return 0;
  }
  return pthread_cond_timedwait(&p->cv, &p->mu, pDeadline)!=0;
}

/* Write the next file (trLoadStep's contract, without batches); a batch
** is begun before it if none is open. */
static int loadWriteNext(TrLoad *p, int msWait, TrLoadRow *pRow, void **ppTag){
  struct timespec deadline, *pDeadline = 0;
  LoadFile *F = 0;
  int rc;
  memset(pRow, 0, sizeof(*pRow));
  if( msWait>=0 ){
    trTimespec(trNow() + msWait/1000.0, &deadline);
    pDeadline = &deadline;
  }
  pthread_mutex_lock(&p->mu);
  for(;;){
    if( p->iWrite>=p->nFile ){
      if( p->bClosed ){ pthread_mutex_unlock(&p->mu); return SQLITE_DONE; }
    }else{
      F = p->apFile[p->iWrite];
      if( F->eState==FILE_WITHDRAWN ){
        p->iWrite++;
        pthread_cond_broadcast(&p->cv);
        continue;
      }
      if( F->eState==FILE_OPEN || F->eState==FILE_FAILED ) break;
    }
    if( loadWait(p, pDeadline) ){
      pthread_mutex_unlock(&p->mu);
      return SQLITE_BUSY;
    }
  }
  pthread_mutex_unlock(&p->mu);
  if( ppTag ) *ppTag = F->pTag;
  if( !p->bBatch && F->eState==FILE_OPEN
   && trSavepointBegin(p->pConn->db, "tracts_load_batch", &p->batch)==SQLITE_OK ){
    p->bBatch = 1;           /* else the file commits alone */
    p->nBatchRows = 0;
  }
  pRow->zFile = sqlite3_mprintf("%s", F->zName);
  if( pRow->zFile==0 ){
    rc = SQLITE_NOMEM;
  }else{
    rc = loadWriteFile(p, F, pRow);
  }
  pRow->rSeconds = trNow() - (F->t0>0 ? F->t0 : trNow());
  /* this file is done: nobody reads more of it, move on; free it now
  ** unless a reader is still inside a chunk (then trLoadFree does) */
  {
    TrSource *pSrc = 0;
    LoadChunk *aChunk = 0;
    int nChunk = 0, k, bBusy = 0;
    pthread_mutex_lock(&p->mu);
    p->iWrite++;
    for(k=0; k<F->iTake; k++) bBusy |= !F->aChunk[k].bDone;
    F->iWritten = F->nChunk;
    F->iTake = F->nChunk;
    if( !bBusy ){
      pSrc = F->pSrc;      F->pSrc = 0;
      aChunk = F->aChunk;  F->aChunk = 0;
      nChunk = F->nChunk;  F->nChunk = 0;
      F->iTake = F->iWritten = 0;
    }
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for(k=0; k<nChunk; k++){
      if( aChunk[k].bDone ) trShapesFree(&aChunk[k].shp);
    }
    free(aChunk);
    trSourceClose(pSrc);
  }
  if( rc==SQLITE_NOMEM || rc==SQLITE_INTERRUPT ) return rc;
  return SQLITE_ROW;
}

/* Free the strings of a row nobody will be given. */
static void loadRowFree(TrLoadRow *r){
  sqlite3_free(r->zFile);
  sqlite3_free(r->zState);
  sqlite3_free(r->zError);
}

/* Commit the batch. If that fails (a reader holds the database in
** rollback-journal mode), it is undone and each of its files that had
** loaded carries the error instead. */
static void loadBatchEnd(TrLoad *p){
  int rc, i;
  p->bBatch = 0;
  rc = trSavepointCommit(p->pConn->db, &p->batch);
  if( rc==SQLITE_OK ) return;
  for(i=p->iPend; i<p->nPend; i++){
    TrLoadRow *r = &p->aPend[i];
    if( r->zError ) continue;
    r->zError = sqlite3_mprintf("%s: %s: cannot commit: %s", p->zFunc,
                                r->zFile ? r->zFile : "", sqlite3_errstr(rc));
    r->nTract = r->nRepaired = 0;
  }
}

/* Files the writer finds already waiting are written one after another
** into one transaction, a batch, each still in its own savepoint (so a
** file that fails leaves the others): in rollback-journal mode a commit
** costs several fsyncs, most of the time a small file takes. A batch is
** committed as soon as no file is waiting (it is never held open while
** the writer waits for a download or a reader), and at LOAD_BATCH_ROWS
** rows or LOAD_BATCH_FILES files. Its rows are returned once it has
** committed. An interrupt undoes the files of the open batch. */
int trLoadStep(TrLoad *p, int msWait, TrLoadRow *pRow, void **ppTag){
  memset(pRow, 0, sizeof(*pRow));
  for(;;){
    TrLoadRow row;
    void *pTag = 0;
    int rc;
    if( !p->bBatch && p->iPend<p->nPend ){
      *pRow = p->aPend[p->iPend];
      if( ppTag ) *ppTag = p->aPendTag[p->iPend];
      p->iPend++;
      return SQLITE_ROW;
    }
    if( !p->bBatch ) p->nPend = p->iPend = 0;
    rc = loadWriteNext(p, p->bBatch ? 0 : msWait, &row, &pTag);
    if( rc==SQLITE_ROW ){
      p->aPend[p->nPend] = row;
      p->aPendTag[p->nPend] = pTag;
      p->nPend++;
      p->nBatchRows += row.nTract;
      if( p->bBatch && (p->nPend>=LOAD_BATCH_FILES
                        || p->nBatchRows>=LOAD_BATCH_ROWS) ){
        loadBatchEnd(p);
      }
      continue;                       /* (a file outside a batch: returned) */
    }
    if( p->bBatch && (rc==SQLITE_BUSY || rc==SQLITE_DONE) ){
      loadBatchEnd(p);                /* nothing waits: commit */
      continue;
    }
    if( p->bBatch ){                  /* interrupted, or out of memory */
      trSavepointUndo(p->pConn->db, &p->batch);
      p->bBatch = 0;
    }
    while( p->nPend>0 ) loadRowFree(&p->aPend[--p->nPend]);
    p->iPend = 0;
    return rc;
  }
}

void trLoadFree(TrLoad *p){
  int i, k;
  if( p==0 ) return;
  while( p->iPend<p->nPend ) loadRowFree(&p->aPend[p->iPend++]);  /* unasked */
  if( p->bBatch ){                  /* never left open; defensively */
    trSavepointUndo(p->pConn->db, &p->batch);
    p->bBatch = 0;
  }
  /* stop the readers, wait for them, drop what they read ahead */
  pthread_mutex_lock(&p->mu);
  p->bStop = 1;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  for(i=0; i<p->nThread; i++) pthread_join(p->aTid[i], 0);
  for(i=0; i<p->nFile; i++){
    LoadFile *F = p->apFile[i];
    for(k=0; k<F->nChunk; k++){
      if( F->aChunk[k].bDone ) trShapesFree(&F->aChunk[k].shp);
    }
    if( F->eState==FILE_NEW && F->xOpened ){
      /* never opened: its owner still hears about it */
      F->xOpened(F->pTag, -1, "not loaded", 0);
    }
    free(F->aChunk);
    trSourceClose(F->pSrc);
    free(F->zFile);
    free(F->zName);
    free(F);
  }
  free(p->apFile);
  pthread_cond_destroy(&p->cv);
  pthread_mutex_destroy(&p->mu);
  sqlite3_free(p);
}

/* Load the files azFile[0..nFile-1] into aRow[]: one TrLoad, every file
** added up front. A file's failure is in its row; with bStopOnError the
** first failure ends the load. Returns SQLITE_OK, SQLITE_NOMEM,
** SQLITE_INTERRUPT, or the failing file's code when bStopOnError. */
static int loadFiles(TractsConn *pConn, const TrLayer *pLayer,
                     const char *zFunc, char **azFile, int nFile,
                     TrLoadRow *aRow, int bStopOnError){
  TrLoad *p = trLoadNew(pConn, pLayer, zFunc);
  int i, rc = SQLITE_OK;
  if( p==0 ){
    for(i=0; i<nFile; i++){
      aRow[i].zError = sqlite3_mprintf("%s: cannot start a thread", zFunc);
    }
    return SQLITE_ERROR;
  }
  for(i=0; i<nFile && rc==SQLITE_OK; i++){
    rc = trLoadAdd(p, azFile[i], 0, 0, 0);
  }
  trLoadClose(p);
  for(i=0; rc==SQLITE_OK && i<nFile; i++){
    rc = trLoadStep(p, -1, &aRow[i], 0);
    if( rc==SQLITE_ROW ){
      rc = (aRow[i].zError && bStopOnError) ? SQLITE_ERROR : SQLITE_OK;
    }
  }
  trLoadFree(p);
  return rc;
}

static int cmpStr(const void *a, const void *b){
  return strcmp(*(char*const*)a, *(char*const*)b);
}

/* The census zips of the layer in directory zDir, sorted; *pn entries. */
static int listDir(const TrLayer *pLayer, const char *zFunc, const char *zDir,
                   char ***pazOut, int *pn, char **pzErr){
  DIR *d = opendir(zDir);
  struct dirent *e;
  char **az = 0;
  int n = 0, nAlloc = 0;
  if( d==0 ){
    *pzErr = sqlite3_mprintf("%s: cannot open directory '%s': %s", zFunc,
                             zDir, strerror(errno));
    return SQLITE_ERROR;
  }
  while( (e = readdir(d))!=0 ){
    int year;
    char zSt[8];
    size_t m = strlen(e->d_name);
    if( m<4 || strcmp(e->d_name+m-4, ".zip")!=0 ) continue;
    if( !parseCensusName(e->d_name, pLayer, &year, zSt, 8) ){
      continue;
    }
    if( pLayer->year && year!=pLayer->year ) continue;
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

/* The vintage a census layer is loaded at when nothing names it: the one
** it holds, else the year setting. */
static int layerYear(TractsConn *pConn, const char *zLayer){
  sqlite3_stmt *pStmt = 0;
  int year = 0;
  if( hasTable(pConn->db, "tracts_layers")
   && sqlite3_prepare_v2(pConn->db, "SELECT year FROM main.tracts_layers "
                         "WHERE layer=?1", -1, &pStmt, 0)==SQLITE_OK ){
    sqlite3_bind_text(pStmt, 1, zLayer, -1, SQLITE_STATIC);
    if( sqlite3_step(pStmt)==SQLITE_ROW ) year = sqlite3_column_int(pStmt, 0);
  }
  sqlite3_finalize(pStmt);
  return year ? year : (int)trConfigInt(pConn, TR_SET_YEAR);
}

TrLayer *trLayerResolve(TractsConn *pConn, const char *zFunc,
                        const char *zLayer, const char *zPath, int bDir,
                        const char *zKey, int srid, char **pzErr){
  char zBase[64], zTable[72];
  int yearName = 0, e;
  char *zMsg = 0;
  TrLayer *pLayer = 0;
  e = trLayerName(zLayer, zBase, &yearName, &zMsg);
  if( e<0 ){
    *pzErr = sqlite3_mprintf("%s: %s", zFunc, zMsg);
    sqlite3_free(zMsg);
    return 0;
  }
  if( e==1 ){
    /* a census layer: the line of its vintage (ZCTA files changed) */
    int year = yearName;
    const TrKind *k;
    if( year==0 && zPath && !bDir ) trKindForFile(zBase, zPath, &year);
    if( yearName ){
      snprintf(zTable, sizeof(zTable), "%s_%d", zBase, yearName);
    }else{
      snprintf(zTable, sizeof(zTable), "%s", zBase);
    }
    if( year==0 ) year = layerYear(pConn, zTable);
    k = trKindFind(zBase, year);
    if( zKey && sqlite3_stricmp(zKey, k->zKey)!=0 ){
      *pzErr = sqlite3_mprintf("%s: the census layer %s is keyed by %s, not "
          "%s (a layer of your own name takes any key column)", zFunc,
          zTable, k->zKey, zKey);
      return 0;
    }
    pLayer = trLayerCensus(k, zTable, yearName, srid);
  }else{
    /* a user layer: its fields are those of the file */
    TrLayer probe;
    TrSource *pSrc = 0;
    TrField *aField;
    char zErr[TR_ERR_SIZE];
    int nField = 0;
    if( bDir || zPath==0 ){
      *pzErr = sqlite3_mprintf("%s: a layer of your own (%s) loads from one "
          "shapefile or zip, not a directory", zFunc, zBase);
      return 0;
    }
    memset(&probe, 0, sizeof(probe));
    probe.zName = probe.zTable = zBase;
    probe.srid = srid;
    if( trSourceOpen(&pSrc, &probe, zPath, zErr) ){
      *pzErr = sqlite3_mprintf("%s: %s: %s", zFunc, zPath, zErr);
      return 0;
    }
    aField = trSourceFields(pSrc, &nField);
    trSourceClose(pSrc);
    if( aField==0 ) return 0;
    pLayer = trLayerUser(zBase, aField, nField, zKey, srid, &zMsg);
    free(aField);
    if( pLayer==0 && zMsg ){
      *pzErr = sqlite3_mprintf("%s: %s: %s", zFunc, zPath, zMsg);
      sqlite3_free(zMsg);
      return 0;
    }
  }
  if( pLayer==0 ) *pzErr = sqlite3_mprintf("%s: out of memory", zFunc);
  return pLayer;
}

static int loadFilter(sqlite3_vtab_cursor *cur, int idxNum,
                      const char *idxStr, int argc, sqlite3_value **argv){
  LoadCursor *c = (LoadCursor*)cur;
  LoadVtab *pTab = (LoadVtab*)cur->pVtab;
  const char *zFunc = pTab->bBoundaries ? "load_boundaries" : "load_tracts";
  const char *zPath, *zLayer = "tracts", *zKey = 0;
  TrLayer *pLayer = 0;
  struct stat st;
  int rc = SQLITE_OK, srid = 0, iArg = 0, bDir;
  (void)idxStr;
  loadRowsFree(c);
  sqlite3_free(pTab->base.zErrMsg);
  pTab->base.zErrMsg = 0;
  if( pTab->bBoundaries ){
    if( (idxNum & 3)!=3 ){
      pTab->base.zErrMsg = sqlite3_mprintf("load_boundaries: needs a layer "
                                           "and a path");
      return SQLITE_ERROR;
    }
    zLayer = (const char*)sqlite3_value_text(argv[iArg++]);
    if( zLayer==0 ){
      pTab->base.zErrMsg = sqlite3_mprintf("load_boundaries: the layer is NULL");
      return SQLITE_ERROR;
    }
  }else if( idxNum!=1 || argc<1 ){
    pTab->base.zErrMsg = sqlite3_mprintf("load_tracts: needs a path argument");
    return SQLITE_ERROR;
  }
  zPath = (const char*)sqlite3_value_text(argv[iArg++]);
  if( idxNum & 4 ) zKey = (const char*)sqlite3_value_text(argv[iArg++]);
  if( idxNum & 8 ){
    sqlite3_value *v = argv[iArg++];
    if( sqlite3_value_type(v)!=SQLITE_NULL ){
      if( sqlite3_value_numeric_type(v)!=SQLITE_INTEGER
       || sqlite3_value_int64(v)<=0 || sqlite3_value_int64(v)>999999 ){
        pTab->base.zErrMsg = sqlite3_mprintf("load_boundaries: the srid must "
            "be an EPSG code such as 4269 or 26918");
        return SQLITE_ERROR;
      }
      srid = sqlite3_value_int(v);
    }
  }
  if( zPath==0 || zPath[0]==0 ){
    pTab->base.zErrMsg = sqlite3_mprintf("%s: the path is %s", zFunc,
                                         zPath ? "empty" : "NULL");
    return SQLITE_ERROR;
  }
  if( stat(zPath, &st) ){
    pTab->base.zErrMsg = sqlite3_mprintf("%s: cannot open '%s': %s", zFunc,
                                         zPath, strerror(errno));
    return SQLITE_ERROR;
  }
  bDir = S_ISDIR(st.st_mode);
  pLayer = trLayerResolve(pTab->pConn, zFunc, zLayer, zPath, bDir, zKey, srid,
                          &pTab->base.zErrMsg);
  if( pLayer==0 ) return pTab->base.zErrMsg ? SQLITE_ERROR : SQLITE_NOMEM;
  c->zLayer = sqlite3_mprintf("%s", pLayer->zName);
  if( bDir ){
    char **az = 0;
    int n = 0, i;
    rc = listDir(pLayer, zFunc, zPath, &az, &n, &pTab->base.zErrMsg);
    if( rc ){ trLayerFree(pLayer); return rc; }
    if( n==0 ){
      sqlite3_free(az);
      const char *zPat = strrchr(pLayer->pKind->zFile, '/') + 1;
      pTab->base.zErrMsg = pLayer->year
        ? sqlite3_mprintf("%s: no census %s zips of %d (%s) in '%s'", zFunc,
                          pLayer->zFileTag, pLayer->year, zPat, zPath)
        : sqlite3_mprintf("%s: no census %s zips (%s) in '%s'", zFunc,
                          pLayer->zFileTag, zPat, zPath);
      trLayerFree(pLayer);
      return SQLITE_ERROR;
    }
    c->aRow = sqlite3_malloc64(sizeof(TrLoadRow)*(sqlite3_uint64)n);
    if( c->aRow==0 ){
      rc = SQLITE_NOMEM;
    }else{
      memset(c->aRow, 0, sizeof(TrLoadRow)*(size_t)n);
      c->nRow = n;
      rc = loadFiles(pTab->pConn, pLayer, zFunc, az, n, c->aRow, 0);
      trLookupWatch(pTab->pConn);
      if( rc==SQLITE_INTERRUPT ){
        pTab->base.zErrMsg = sqlite3_mprintf("%s: interrupted", zFunc);
      }
    }
    for(i=0; i<n; i++) sqlite3_free(az[i]);
    sqlite3_free(az);
    trLayerFree(pLayer);
    return rc;
  }
  c->aRow = sqlite3_malloc(sizeof(TrLoadRow));
  if( c->aRow==0 ){ trLayerFree(pLayer); return SQLITE_NOMEM; }
  memset(c->aRow, 0, sizeof(TrLoadRow));
  c->nRow = 1;
  {
    char *azOne[1];
    azOne[0] = (char*)zPath;
    rc = loadFiles(pTab->pConn, pLayer, zFunc, azOne, 1, c->aRow, 1);
  }
  trLayerFree(pLayer);
  trLookupWatch(pTab->pConn);
  if( rc==SQLITE_INTERRUPT ){
    pTab->base.zErrMsg = sqlite3_mprintf("%s: interrupted", zFunc);
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
  const TrLoadRow *r = &c->aRow[c->iRow];
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
    case LOAD_ARG0:       /* load_boundaries' layer */
      if( ((LoadVtab*)cur->pVtab)->bBoundaries && c->zLayer ){
        sqlite3_result_text(ctx, c->zLayer, -1, SQLITE_TRANSIENT);
      }
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
  return trArgsBestIndex(p, LOAD_ARG0, ((LoadVtab*)pVtab)->bBoundaries ? 4 : 1);
}

/* load_tracts: an eponymous-only table-valued function. */
static sqlite3_module loadModule = {
  0,                 /* iVersion */
  0,                 /* xCreate: eponymous only */
  loadConnect,       /* xConnect */
  loadBestIndex,     /* xBestIndex */
  trVtabFree,        /* xDisconnect */
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

/* load_boundaries: the same with the layer, key column and SRID. */
static sqlite3_module boundariesModule = {
  0, 0, boundariesConnect, loadBestIndex, trVtabFree, 0, loadOpen, loadClose,
  loadFilter, loadNext, loadEof, loadColumn, loadRowid,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
};

int trLayerRegister(sqlite3 *db, TractsConn *pConn){
  int rc = trModule(db, pConn, "load_tracts", &loadModule);
  if( rc ) return rc;
  return trModule(db, pConn, "load_boundaries", &boundariesModule);
}
