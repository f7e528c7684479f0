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

/* Settings, in the order of the table in config.c. */
enum {
  TR_SET_REPAIR = 0,     /* repair invalid polygons on load (0/1) */
  TR_SET_THREADS,        /* threads validating polygons on load */
  TR_SET_WORKERS,        /* helper processes of tracts_assign */
  TR_SET_NEAREST,        /* nearest-tract fallback distance, metres */
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
  TrLookup *pLookup;                  /* tract_of's index cache */
  TrMonitor *pMonitor;                /* monitor.c's sampler and samples */
};

void trConnUnref(void *p);            /* destructor of registrations */

/* config.c */
int trConfigRegister(sqlite3 *db, TractsConn *pConn);
int64_t trConfigInt(TractsConn *pConn, int iSetting);
void trConfigFree(TractsConn *pConn);

/* layer.c */
int trLayerRegister(sqlite3 *db, TractsConn *pConn);
/* Create the layer's tables if missing (inside the caller's transaction). */
int trLayerEnsureSchema(sqlite3 *db, const TrLayer *pLayer, char **pzErr);

/* lookup.c */
int trLookupRegister(sqlite3 *db, TractsConn *pConn);
void trLookupFree(TrLookup *p);
/* Make the TEMP triggers that watch the tracts table, if it exists and no
** write transaction is open (called at load time and after loads). */
void trLookupWatch(TractsConn *pConn);
/* Index for the layer, built or rebuilt if the table changed. NULL with
** *pzErr (sqlite3_malloc'd) on error. */
const PipIndex *trLookupIndex(TractsConn *pConn, char **pzErr);

/* The keys (GEOIDs) of the polygons of the current index: polygon i's
** key is zKeys + aOff[i]. Valid until the index is rebuilt. */
typedef struct TrLookupKeys TrLookupKeys;
struct TrLookupKeys {
  const char *zKeys;
  const uint32_t *aOff;
  uint32_t nPoly;
};
void trLookupKeys(TractsConn *pConn, TrLookupKeys *p);

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
