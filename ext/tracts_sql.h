/*
** tracts_sql.h - what the SQL-facing files of tracts share (main.c,
** config.c, layer.c, lookup.c). They see SQLite only through the loadable
** extension API (sqlite3ext.h); the extension never links libsqlite3.
*/
#ifndef TRACTS_SQL_H
#define TRACTS_SQL_H

#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3

#include "tracts_int.h"

#include <time.h>

/* Settings, in the order of the table in config.c. */
enum {
  TR_SET_REPAIR = 0,     /* repair invalid polygons on load (0/1) */
  TR_SET_THREADS,        /* threads validating polygons on load */
  TR_SET_WORKERS,        /* helper processes of tracts_assign */
  TR_SET_NEAREST,        /* nearest-tract fallback distance, metres */
  TR_SET_YEAR,           /* fetch_tracts: default vintage */
  TR_SET_BASE_URL,       /* text: the Census boundary directory URL */
  TR_SET_CACHE_DIR,      /* text: download cache directory */
  TR_SET_USER_AGENT,     /* text: User-Agent header */
  TR_SET_CONNECTIONS,    /* parallel connections */
  TR_SET_OFFLINE,        /* cache only */
  TR_SET_RETRIES,        /* retries per file */
  TR_SET_RETRY_WAIT,     /* first backoff wait, ms */
  TR_SET_RETRY_MAX,      /* longest wait, s */
  TR_SET_CONNECT_TIMEOUT,/* seconds */
  TR_SET_LOW_SPEED,      /* seconds under 1 KB/s before a transfer drops */
  TR_SET_SPLIT_KB,       /* smallest Range piece, KiB; 0 never split */
  TR_SET_PROGRESS,       /* -1 never, 0 on a terminal, 1 always */
  TR_SET_PERSIST_INDEX,  /* keep the built index in tracts_index */
  TR_N_SETTING
};

typedef struct TrLookup TrLookup;
typedef struct TrMonitor TrMonitor;

/* Per-connection state, the user data of every function and module. */
typedef struct TractsConn TractsConn;
struct TractsConn {
  sqlite3 *db;                        /* the connection */
  int nRef;                           /* registrations holding this */
  char *azSetting[TR_N_SETTING];      /* set values, NULL = default */
  TrLookup *pLookup;                  /* index caches, one per layer */
  TrMonitor *pMonitor;                /* monitor.c's sampler and samples */
};

void trConnUnref(void *p);            /* destructor of registrations */
/* Register an SQL function (SQLITE_UTF8 | eFlags) or an eponymous module
** whose user data is pConn, taking a reference on it. */
int trFunction(sqlite3 *db, TractsConn *pConn, const char *zName, int nArg,
               int eFlags, void (*xFunc)(sqlite3_context*, int, sqlite3_value**));
int trModule(sqlite3 *db, TractsConn *pConn, const char *zName,
             const sqlite3_module *pModule);

/* Split "schema.table" when schema is an attached database; else the
** whole string is the table. *pzSchema (NULL if none) and *pzTable are
** sqlite3_malloc'd. trQuotedName: "schema"."table" or "table". */
int trSplitName(sqlite3 *db, const char *zName, char **pzSchema,
                char **pzTable);
char *trQuotedName(const char *zSchema, const char *zTable);

/* 1 if table zTable (of schema zSchema; NULL: as SQLite finds it) has a
** column zCol, or any column if zCol is NULL (the table exists). */
int trHasColumn(sqlite3 *db, const char *zSchema, const char *zTable,
                const char *zCol);

/* 1 if zSql, with zArg bound to ?1, returns a row (0 on any error). */
int trSqlExists(sqlite3 *db, const char *zSql, const char *zArg);

/* Monotonic seconds, and a time in them as a timespec for timed waits on
** a CLOCK_MONOTONIC condition variable. */
double trNow(void);
void trTimespec(double t, struct timespec *pTs);

/* Savepoints that may begin the transaction. trSavepointBegin notes in
** bOuter whether it did. trSavepointCommit releases it; when that is the
** commit and it fails (SQLITE_BUSY: another connection reads, in
** rollback-journal mode), everything is undone and the connection is out
** of the transaction again, and the error returned. trSavepointUndo rolls
** back all the savepoint did and ends it.
**
** After sqlite3_interrupt() every statement the call still runs fails,
** ROLLBACK and RELEASE included (SQLite clears the flag only when the
** host's statement ends), which would leave the savepoint, and so a
** transaction, open. So trSavepointBegin first prepares pLever, a VACUUM
** that is never meant to run: stepped while interrupted, it is a writing
** statement interrupted inside a transaction, and SQLite rolls the whole
** transaction back (a caller's own too, as for any interrupted write);
** stepped otherwise inside a transaction it only fails. It is prepared
** beforehand because an interrupted connection cannot prepare. */
typedef struct TrSavepoint TrSavepoint;
struct TrSavepoint {
  const char *zName;            /* a static name */
  int bOuter;                   /* it began the transaction */
  sqlite3_stmt *pLever;         /* see above */
};
int trSavepointBegin(sqlite3 *db, const char *zName, TrSavepoint *p);
int trSavepointCommit(sqlite3 *db, TrSavepoint *p);
void trSavepointUndo(sqlite3 *db, TrSavepoint *p);

/* The virtual tables (all eponymous table-valued functions) share these.
** Each vtab object starts with a TrVtab. */
typedef struct TrVtab TrVtab;
struct TrVtab {
  sqlite3_vtab base;                  /* base class, must be first */
  TractsConn *pConn;                  /* the connection's state (pAux) */
};
/* xConnect: declare zSchema, allocate nByte zeroed bytes with pConn set;
** bDirectOnly: usable only from top-level SQL (not views or triggers). */
int trVtabConnect(sqlite3 *db, void *pAux, const char *zSchema, size_t nByte,
                  int bDirectOnly, sqlite3_vtab **ppVtab);
int trVtabFree(sqlite3_vtab *pVtab);  /* xDisconnect */
int trCursorNew(size_t nByte, sqlite3_vtab_cursor **ppCur);  /* for xOpen */
/* xBestIndex for nArg hidden argument columns from column iFirst, given
** as equality constraints: the first is required (else the plan costs
** 1e99), the others optional; idxNum has bit k set for argument k, and
** xFilter's argv holds the given ones in order. */
int trArgsBestIndex(sqlite3_index_info *p, int iFirst, int nArg);

/* config.c */
int trConfigRegister(sqlite3 *db, TractsConn *pConn);
int64_t trConfigInt(TractsConn *pConn, int iSetting);
/* A text setting (set value, environment, default), sqlite3_malloc'd;
** NULL if it has none. URLs end in '/'. */
char *trConfigText(TractsConn *pConn, int iSetting);
void trConfigFree(TractsConn *pConn);

/* registry.c: census layers (census_layers.h) and layer names */
int trRegistryRegister(sqlite3 *db, TractsConn *pConn);
const TrKind *trKindFind(const char *zName, int year);
int trKindCovers(const TrKind *k, int year);   /* 1 if it publishes year */
/* The census layer names, each once, zSep between them (error messages). */
void trKindNames(sqlite3_str *s, const char *zSep);
/* Check a layer name: 1 a census layer (its census name in zBase[64],
** the vintage of a "_YYYY" suffix in *pYear), 0 a user layer (the name,
** lower case, in zBase), -1 not a layer name (*pzErr). */
int trLayerName(const char *zLayer, char *zBase, int *pYear, char **pzErr);
/* Layers as loaded (sqlite3_malloc'd, trLayerFree). trLayerUser copies
** the fields (dropping unnamed and repeated ones) and finds the key
** (NULL: GEOID); NULL with *pzErr if there is no such field, or on OOM. */
TrLayer *trLayerCensus(const TrKind *k, const char *zName, int year, int srid);
TrLayer *trLayerUser(const char *zName, const TrField *aField, int nField,
                     const char *zKey, int srid, char **pzErr);
void trLayerFree(TrLayer *p);
/* The path of a file of line k under base_url,
** "GENZ2019/shp/cb_2019_44_tract_500k.zip" (sqlite3_malloc'd). */
char *trKindFile(const TrKind *k, int year, const char *zState,
                 const char *zRes);
int trKindNational(const TrKind *k);      /* one national file */
/* 1 if the base name of zPath is a file of line k (of a year it covers):
** the year into *pYear, the state ("44", "us") into zSt[3] if not NULL. */
int trKindMatch(const TrKind *k, const char *zPath, int *pYear, char *zSt);
/* The line of census layer zName whose files zPath is named like. */
const TrKind *trKindForFile(const char *zName, const char *zPath, int *pYear);

/* layer.c */
int trLayerRegister(sqlite3 *db, TractsConn *pConn);
/* Create the layer's tables if missing (inside the caller's transaction). */
int trLayerEnsureSchema(sqlite3 *db, const TrLayer *pLayer, char **pzErr);

/* The layer zLayer (a census or user layer name) as zFunc loads it from
** zPath (a directory if bDir; NULL for fetches): for a census layer the
** line of its vintage (from the name, the file name, what it holds, or
** the year setting), for a user layer the fields of the file and the key
** column zKey (NULL: GEOID). srid 0: from the .prj. NULL with *pzErr. */
TrLayer *trLayerResolve(TractsConn *pConn, const char *zFunc,
                        const char *zLayer, const char *zPath, int bDir,
                        const char *zKey, int srid, char **pzErr);

/* A load: files are added (from any thread) and written by the thread
** that calls trLoadStep, each in one savepoint (files already waiting are
** committed together, see layer.c), while reader threads open and read
** the files ahead of it. load_tracts adds its files up front;
** fetch_tracts adds each as its download completes. */
typedef struct TrLoadRow TrLoadRow;
struct TrLoadRow {
  char *zFile;        /* name of the file (sqlite3_malloc) */
  char *zState;       /* state code(s) */
  int year;           /* from the file name, 0 if unknown */
  int nTract;         /* rows written */
  int nRepaired;      /* polygons repaired */
  double rSeconds;    /* wall time for this file */
  char *zError;       /* NULL, or why it failed */
};
typedef struct TrLoad TrLoad;
/* Called on a reader thread once a file is opened (rc 0, its sha256) or
** failed to open (rc 1 for bad content, 2 for a damaged archive, with
** zErr), before any of it is written; and with rc -1 from trLoadFree for
** a file never opened. Returning non-zero withdraws the file: it gets no
** row. */
typedef int (*TrLoadOpened)(void *pTag, int rc, const char *zErr,
                            const char *zSha256);
/* NULL if no reader thread could start. zFunc names the SQL function in
** errors ("load_tracts"). */
TrLoad *trLoadNew(TractsConn *pConn, const TrLayer *pLayer, const char *zFunc);
/* Queue zFile (copied); zName (NULL: zFile) names it in rows, errors and
** tracts_files. Any thread. SQLITE_OK or SQLITE_NOMEM. */
int trLoadAdd(TrLoad *p, const char *zFile, const char *zName, void *pTag,
              TrLoadOpened xOpened);
void trLoadClose(TrLoad *p);   /* no more files will be added */
/* Write the next file in *pRow (caller frees its strings): SQLITE_ROW,
** its error if any in pRow->zError and its tag in *ppTag, once it is
** committed; SQLITE_BUSY if none was ready within msWait ms (negative:
** wait); SQLITE_DONE when closed and all written; SQLITE_NOMEM or
** SQLITE_INTERRUPT (the files not yet committed are rolled back). */
int trLoadStep(TrLoad *p, int msWait, TrLoadRow *pRow, void **ppTag);
void trLoadFree(TrLoad *p);    /* stops and joins the readers */

/* lookup.c */
int trLookupRegister(sqlite3 *db, TractsConn *pConn);
void trLookupFree(TrLookup *p);
/* Make the TEMP triggers that watch the tracts table, if it exists and no
** write transaction is open (called at load time and after loads). */
void trLookupWatch(TractsConn *pConn);
/* The connection's index of layer zLayer, built or rebuilt if its table
** changed; zFunc names the SQL function in errors. NULL with *pzErr
** (sqlite3_malloc'd) on error. The object lives as long as the
** connection; its index until the layer changes and it is asked again. */
TrLookup *trLookupGet(TractsConn *pConn, const char *zLayer,
                      const char *zFunc, char **pzErr);
const PipIndex *trLookupPip(const TrLookup *p);

/* The keys (GEOIDs) of the polygons of the current index: polygon i's
** key is zKeys + aOff[i]. Valid until the index is rebuilt. */
typedef struct TrLookupKeys TrLookupKeys;
struct TrLookupKeys {
  const char *zKeys;
  const uint32_t *aOff;
  uint32_t nPoly;
};
void trLookupKeys(const TrLookup *p, TrLookupKeys *pKeys);

/* fetch.c */
int trFetchRegister(sqlite3 *db, TractsConn *pConn);
/* The cache directory in effect (sqlite3_malloc'd), NULL if none. */
char *trCacheDir(TractsConn *pConn);

/* assign.c */
int trAssignRegister(sqlite3 *db, TractsConn *pConn);

/* monitor.c */
int trMonitorRegister(sqlite3 *db, TractsConn *pConn);
/* Stop and join the sampler, free the monitor (from trConnUnref). */
void trMonitorFree(TractsConn *pConn);
/* Record a labelled event in the running monitor; a no-op when it is not
** running. Any thread may call it; zLabel is copied. */
void trMonitorMark(TractsConn *pConn, const char *zLabel);

/* 1 if the connection was interrupted (sqlite3_interrupt); works on 3.40,
** which has no sqlite3_is_interrupted. */
int trInterrupted(sqlite3 *db);

#endif /* TRACTS_SQL_H */
