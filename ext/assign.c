/*
** assign.c - tracts_assign(): the point-in-polygon join on forked helpers.
**
** Usage
**
**     SELECT tracts_assign('points', 'lon', 'lat', 'points_tract');
**     SELECT tracts_assign('main.points', 'lon', 'lat', 'points_tract', 2);
**
**   Reads every row of the source table (a schema may be named:
**   'temp.pts', 'aux.points'), assigns a tract to each, and creates the
**   destination table (replacing one of that name)
**
**     dest(id INTEGER PRIMARY KEY, geoid TEXT, how TEXT)
**
**   id is the source row's rowid (its INTEGER PRIMARY KEY if it has one),
**   geoid the tract as tract_of() gives it, how one of
**     inside   strictly inside a tract
**     edge     on a tract boundary; the tract is chosen by tract_of's rule
**              (the smallest GEOID among the tracts covering the point)
**     nearest  in no tract, but within tracts_config('nearest_m') metres of
**              one: the nearest (off by default)
**     outside  in no tract (geoid NULL)
**     invalid  coordinates NULL, not numbers, out of range (geoid NULL)
**   Returns the number of rows written. The optional fifth argument is the
**   number of workers; without it the workers setting (0: one per online
**   CPU). 1 works in this process, without fork.
**
** How it works
**
**   The connection's tract index (lookup.c) is built first, so helpers
**   inherit it complete and share it copy-on-write: it is never written
**   after it is built, so no page of it is copied. An anonymous shared
**   mapping, populated before any fork, holds the counters, the points'
**   coordinates and rowids, one int32 result per point and layer, and a
**   done flag per chunk of CHUNK points. workers-1 helpers are forked
**   (from helperFork(), the one place that forks) before the points are
**   read, and take chunks from a counter in the mapping as soon as their
**   points are there. A helper touches nothing else: no SQLite, no
**   malloc, no file; it closes every inherited descriptor and leaves with
**   _exit().
**
**   This process is the only one that touches SQLite. It reads the points
**   with SELECT tracts_assign_points(?1, rowid, lon, lat) FROM src, an
**   internal aggregate handed the job by sqlite3_bind_pointer(), so
**   SQLite's own loop moves the rows (no step or column call per row). It
**   then writes the table in one savepoint, with INSERT INTO dest SELECT
**   ... FROM tracts_assign_rows(?1), an internal table that yields the
**   results chunk by chunk: a chunk nobody has taken is joined here, one a
**   helper is still on is waited for, so the writing overlaps the helpers'
**   last chunks. The old table (if any) is dropped and the new one
**   appears only if everything succeeded. The helpers are reaped by pid;
**   an interrupt or a failed helper (checked while reading and while
**   waiting) kills and reaps them all and the call fails, naming the
**   helper and the rows it was on.
**
** Limits and rules for the host
**
**   The source is read in rowid order (NOT INDEXED); WITHOUT ROWID tables
**   are refused. Inside an open write transaction the join runs in this
**   process (no fork). Inside any transaction of the caller's the join is
**   finished before the first row is written: an interrupted write rolls
**   the caller's whole transaction back (SQLite's rule), so that window is
**   kept to the writing. An interrupt never leaves a transaction this call
**   began open (see TrSavepoint). The host must not rely on SIGCHLD for
**   processes it did not start (helpers are reaped here, by pid; if the
**   host ignores SIGCHLD the kernel reaps them and completion is read from
**   the shared mapping).
**   Destination names of the extension's own tables are refused.
*/
#include "tracts_sql.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK       16384          /* points a helper takes at a time */
#define MAX_WORKERS 64
#define MAX_LAYERS  8              /* layers assigned in one pass */
#define RES_OUTSIDE (-1)
#define RES_INVALID (-2)
#define RES_EDGE    0x40000000     /* or'ed into a polygon number */
#define RES_NEAREST 0x20000000     /* likewise: the nearest, not covering */
#define RES_POLY(r) ((uint32_t)(r) & 0x1fffffffu)

/* Shared between the parent and its helpers (an anonymous MAP_SHARED
** mapping made before fork). */
typedef struct AssignShared AssignShared;
struct AssignShared {
  int64_t iNext;                   /* next chunk start, taken atomically */
  int64_t nReady;                  /* points read so far (parent writes) */
  int64_t nTotal;                  /* -1 while reading, then all points */
  int64_t aBusy[MAX_WORKERS];      /* chunk each helper is on, -1 idle */
  int aDone[MAX_WORKERS];          /* helper finished every chunk */
};

/* What the join works on. */
typedef struct AssignJob AssignJob;
struct AssignJob {
  int nLayer;                      /* layers assigned */
  const PipIndex *apIdx[MAX_LAYERS];  /* their indexes */
  double rNearest;                 /* nearest-tract distance, 0 = off */
  int64_t nCap;                    /* room for points in the mapping */
  int64_t nPt;                     /* points read */
  double *aXY;                     /* 2 per point, NaN when invalid (mapped) */
  int32_t *aRes;                   /* one result per point and layer, layer
                                   ** by layer: aRes[l*nCap + i] (mapped) */
  sqlite3_int64 *aId;              /* rowids (mapped) */
  uint8_t *aChunkDone;             /* 1 when chunk i/CHUNK is assigned (mapped) */
  AssignShared *pSh;               /* counters, then aXY and aRes */
  size_t nSh;                      /* bytes of the mapping */
};

/* Assign points [i0, i1), one layer after the other (its index stays in
** the caches). */
static void assignRange(const AssignJob *j, int64_t i0, int64_t i1){
  int64_t i;
  int l;
  for(l=0; l<j->nLayer; l++){
    const PipIndex *pIdx = j->apIdx[l];
    int32_t *aRes = j->aRes + (size_t)l*(size_t)j->nCap;
    for(i=i0; i<i1; i++){
      double lon = j->aXY[2*i], lat = j->aXY[2*i+1];
      int bEdge = 0;
      int64_t r;
      if( isnan(lon) ){ aRes[i] = RES_INVALID; continue; }
      r = pipLookup(pIdx, lon, lat, &bEdge);
      if( r<0 && j->rNearest>0.0 ){
        r = pipNearest(pIdx, lon, lat, j->rNearest, 0);
        if( r>=0 ){ aRes[i] = (int32_t)(r | RES_NEAREST); continue; }
      }
      aRes[i] = r<0 ? RES_OUTSIDE : (int32_t)(r | (bEdge ? RES_EDGE : 0));
    }
  }
}

/* Take the next chunk: its bounds in *pi0, *pi1, waiting until the
** parent has read its points. Returns 0 when no chunk is left. */
static int takeChunk(AssignShared *s, int64_t nCap, int64_t *pi0,
                     int64_t *pi1){
  int64_t i0, i1;
  i0 = __atomic_fetch_add(&s->iNext, CHUNK, __ATOMIC_RELAXED);
  if( i0>=nCap ) return 0;
  for(;;){
    int64_t ready = __atomic_load_n(&s->nReady, __ATOMIC_ACQUIRE);
    int64_t total = __atomic_load_n(&s->nTotal, __ATOMIC_ACQUIRE);
    struct timespec ts = { 0, 200000 };          /* 0.2 ms */
    if( ready>=i0+CHUNK ){ i1 = i0+CHUNK; break; }
    if( total>=0 ){ i1 = i0+CHUNK < total ? i0+CHUNK : total; break; }
    nanosleep(&ts, 0);
  }
  if( i0>=i1 ) return 0;
  *pi0 = i0;
  *pi1 = i1;
  return 1;
}

/* Assign chunk [i0, i1) and mark it done for the writer. */
static void chunkJoin(const AssignJob *j, int64_t i0, int64_t i1){
  assignRange(j, i0, i1);
  __atomic_store_n(&j->aChunkDone[i0/CHUNK], 1, __ATOMIC_RELEASE);
}

/* The body of helper number w: take chunks until none is left. */
static void helperMain(const AssignJob *j, int w){
  AssignShared *s = j->pSh;
  const char *zCrash = getenv("TRACTS_TEST_HELPER_CRASH");
  int nChunk = 0;
  int64_t i0, i1;
  while( takeChunk(s, j->nCap, &i0, &i1) ){
    __atomic_store_n(&s->aBusy[w], i0, __ATOMIC_RELAXED);
    if( zCrash && atoi(zCrash)==w && nChunk==1 ){
      /* "W:write": die only once every point is read, so that the
      ** parent, writing, finds the chunk never done */
      while( strstr(zCrash, ":write")
          && __atomic_load_n(&s->nTotal, __ATOMIC_ACQUIRE)<0 ){
        struct timespec ts = { 0, 200000 };
        nanosleep(&ts, 0);
      }
      raise(SIGKILL);
    }
    chunkJoin(j, i0, i1);
    nChunk++;
  }
  __atomic_store_n(&s->aBusy[w], -1, __ATOMIC_RELAXED);
  __atomic_store_n(&s->aDone[w], 1, __ATOMIC_RELEASE);
}

/* The one place that forks. Starts helper w; returns its pid, or -1 with
** errno set. The child runs helperMain and leaves with _exit(). */
static pid_t helperFork(const AssignJob *j, int w){
  pid_t pid = fork();
  if( pid==0 ){
    /* child: nothing inherited is used but the index and the mapping */
#ifdef SYS_close_range
    syscall(SYS_close_range, 3, ~0U, 0);
#else
    { int fd; for(fd=3; fd<1024; fd++) close(fd); }
#endif
    helperMain(j, w);
    _exit(0);
  }
  return pid;
}

/* Wait for pid without blocking (bBlock 0) or blocking. Returns 1 when it
** has ended (status in *pStatus, or -1 if the kernel reaped it because the
** host ignores SIGCHLD), 0 if it is still running. */
static int helperReap(pid_t pid, int bBlock, int *pStatus){
  for(;;){
    pid_t r = waitpid(pid, pStatus, bBlock ? 0 : WNOHANG);
    if( r==pid ) return 1;
    if( r==0 ) return 0;
    if( errno==EINTR ) continue;
    *pStatus = -1;                 /* ECHILD: reaped by the kernel */
    return 1;
  }
}

static int32_t isEnded(pid_t pid){
  /* with SIGCHLD ignored the pid disappears when the child ends */
  return kill(pid, 0)!=0 && errno==ESRCH;
}

/* The helpers of one call. */
typedef struct Helpers Helpers;
struct Helpers {
  int nWorker;                     /* workers, this process included */
  int nLive;                       /* helpers not reaped yet */
  pid_t aPid[MAX_WORKERS];         /* helper w's pid (w >= 1), 0 if none */
  int aLive[MAX_WORKERS];          /* 1 until reaped */
};

/* Check helper w: SQLITE_OK if running or finished well, else
** SQLITE_ERROR with *pzErr naming it and the rows it was on. */
static int helperCheck(const AssignJob *j, Helpers *h, int w, char **pzErr){
  int status = 0, bEnded, bOk;
  if( !h->aLive[w] ) return SQLITE_OK;
  bEnded = helperReap(h->aPid[w], 0, &status);
  if( bEnded && status==-1 && !isEnded(h->aPid[w]) ) bEnded = 0;
  if( !bEnded ) return SQLITE_OK;
  h->aLive[w] = 0;
  h->nLive--;
  bOk = status==-1 ? __atomic_load_n(&j->pSh->aDone[w], __ATOMIC_ACQUIRE)
                   : (WIFEXITED(status) && WEXITSTATUS(status)==0
                      && j->pSh->aDone[w]);
  if( !bOk ){
    int64_t i0 = j->pSh->aBusy[w];
    char zHow[64];
    if( status!=-1 && WIFSIGNALED(status) ){
      snprintf(zHow, sizeof(zHow), "was killed by signal %d", WTERMSIG(status));
    }else if( status!=-1 && WIFEXITED(status) ){
      snprintf(zHow, sizeof(zHow), "exited with status %d", WEXITSTATUS(status));
    }else{
      snprintf(zHow, sizeof(zHow), "ended without finishing");
    }
    if( i0>=0 && i0<j->nPt ){
      int64_t i1 = i0+CHUNK < j->nPt ? i0+CHUNK : j->nPt;
      *pzErr = sqlite3_mprintf("tracts_assign: helper %d (pid %d) %s while "
          "on source rows %lld to %lld (rowid %lld to %lld)", w,
          (int)h->aPid[w], zHow, (long long)i0+1, (long long)i1,
          (long long)j->aId[i0], (long long)j->aId[i1-1]);
    }else{
      *pzErr = sqlite3_mprintf("tracts_assign: helper %d (pid %d) %s",
                               w, (int)h->aPid[w], zHow);
    }
    return SQLITE_ERROR;
  }
  return SQLITE_OK;
}

/* Check every helper. */
static int helpersCheck(const AssignJob *j, Helpers *h, char **pzErr){
  int w, rc = SQLITE_OK;
  for(w=1; w<h->nWorker && rc==SQLITE_OK; w++) rc = helperCheck(j, h, w, pzErr);
  return rc;
}

/* Fork h->nWorker-1 helpers; they wait for points as they are read. */
static int helpersStart(const AssignJob *j, Helpers *h, char **pzErr){
  int w;
  for(w=0; w<h->nWorker; w++) j->pSh->aBusy[w] = -1;
  for(w=1; w<h->nWorker; w++){
    h->aPid[w] = helperFork(j, w);
    if( h->aPid[w]<0 ){
      h->aPid[w] = 0;
      *pzErr = sqlite3_mprintf("tracts_assign: cannot start helper %d: %s",
                               w, strerror(errno));
      return SQLITE_ERROR;
    }
    h->aLive[w] = 1;
    h->nLive++;
  }
  return SQLITE_OK;
}

/* Kill and reap every helper still running. */
static void helpersStop(Helpers *h){
  int w;
  for(w=1; w<h->nWorker; w++){
    int status;
    if( h->aPid[w]<=0 || !h->aLive[w] ) continue;
    kill(h->aPid[w], SIGKILL);
    helperReap(h->aPid[w], 1, &status);
    h->aLive[w] = 0;
    h->nLive--;
  }
}

/* After the read: this process takes chunks too, checking the helpers and
** sqlite3_interrupt() between them, then waits for the helpers. Returns
** SQLITE_OK, or an error code with *pzErr set; every helper is reaped. */
static int helpersFinish(sqlite3 *db, const AssignJob *j, Helpers *h,
                         char **pzErr){
  int rc = SQLITE_OK;
  while( rc==SQLITE_OK && h->nLive>0 ){
    struct timespec ts = { 0, 1000000 };   /* 1 ms */
    rc = helpersCheck(j, h, pzErr);
    if( rc==SQLITE_OK && h->nLive>0 ){
      if( trInterrupted(db) ){
        *pzErr = sqlite3_mprintf("tracts_assign: interrupted");
        rc = SQLITE_INTERRUPT;
        break;
      }
      nanosleep(&ts, 0);
    }
  }
  helpersStop(h);
  return rc;
}

/* For the writer: make sure the chunk holding point i is assigned. Chunks
** nobody has taken are joined here, in order; one a helper holds is waited
** for (checking the helpers and interrupts). */
static int chunkReady(sqlite3 *db, const AssignJob *j, Helpers *h, int64_t i,
                      char **pzErr){
  AssignShared *s = j->pSh;
  int nWait = 0;
  while( !__atomic_load_n(&j->aChunkDone[i/CHUNK], __ATOMIC_ACQUIRE) ){
    int64_t i0, i1;
    int rc;
    if( __atomic_load_n(&s->iNext, __ATOMIC_RELAXED)<j->nPt
     && takeChunk(s, j->nCap, &i0, &i1) ){
      chunkJoin(j, i0, i1);
      continue;
    }
    /* a helper has it: spin a little, then check and sleep in turn */
    if( nWait<64 ){
      nWait++;
      sched_yield();
      continue;
    }
    rc = helpersCheck(j, h, pzErr);
    if( rc ) return rc;
    if( trInterrupted(db) ){
      *pzErr = sqlite3_mprintf("tracts_assign: interrupted");
      return SQLITE_INTERRUPT;
    }
    {
      struct timespec ts = { 0, 50000 };   /* 50 us */
      nanosleep(&ts, 0);
    }
  }
  return SQLITE_OK;
}

/* ---- reading the points ------------------------------------------------- */

/* The number in v, like tract_of's arguments: NaN if it is NULL, not a
** number, infinite or out of range (for lon/lat: bLat). */
static double valueNumber(sqlite3_value *v, int bLat){
  double r;
  int t = sqlite3_value_type(v);
  if( t==SQLITE_TEXT ){
    sqlite3_value *d = sqlite3_value_dup(v);
    if( d==0 ) return NAN;
    t = sqlite3_value_numeric_type(d);
    r = sqlite3_value_double(d);
    sqlite3_value_free(d);
  }else{
    r = sqlite3_value_double(v);
  }
  if( t!=SQLITE_INTEGER && t!=SQLITE_FLOAT ) return NAN;
  if( !isfinite(r) ) return NAN;
  if( bLat ? (r<-90.0 || r>90.0) : (r<-180.0 || r>180.0) ) return NAN;
  return r;
}

/* Reading the points: tracts_assign runs SELECT tracts_assign_points(?1,
** rowid, lon, lat) FROM src with ?1 the job, bound by
** sqlite3_bind_pointer(), so SQLite's own loop hands over each row with no
** step or column call per row. Any other first argument is an error, so SQL
** cannot reach the job. */
#define POINTS_PTR "tracts_assign_points"   /* the pointer type */

typedef struct AssignPoints AssignPoints;
struct AssignPoints {
  AssignJob *pJob;
  Helpers *pHelpers;                /* checked as rows arrive */
  char *zErr;                       /* why a helper failed */
};

static void pointsStep(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  AssignPoints *p = sqlite3_value_pointer(argv[0], POINTS_PTR);
  AssignJob *j;
  double lon, lat;
  (void)argc;
  if( p==0 ){
    sqlite3_result_error(ctx, "tracts_assign_points is internal to "
                         "tracts_assign", -1);
    return;
  }
  j = p->pJob;
  if( j->nPt>=j->nCap ){    /* cannot be: one read snapshot */
    sqlite3_result_error(ctx, "tracts_assign: the source changed while it "
                         "was read", -1);
    return;
  }
  j->aId[j->nPt] = sqlite3_value_int64(argv[1]);
  lon = valueNumber(argv[2], 0);
  lat = valueNumber(argv[3], 1);
  if( isnan(lat) ) lon = NAN;
  j->aXY[2*j->nPt] = lon;
  j->aXY[2*j->nPt+1] = lat;
  j->nPt++;
  if( (j->nPt & 4095)==0 ){
    __atomic_store_n(&j->pSh->nReady, j->nPt, __ATOMIC_RELEASE);
    if( (j->nPt & 0xffff)==0 && p->zErr==0
     && helpersCheck(j, p->pHelpers, &p->zErr) ){
      sqlite3_result_error(ctx, p->zErr ? p->zErr : "tracts_assign: a helper "
                           "failed", -1);
    }
  }
}

static void pointsFinal(sqlite3_context *ctx){
  (void)ctx;
}

/* The how column for result r, and its length in *pn. */
static const char *howName(int32_t r, int *pn){
  const char *z;
  if( r==RES_INVALID ) z = "invalid";
  else if( r==RES_OUTSIDE ) z = "outside";
  else if( r & RES_NEAREST ) z = "nearest";
  else z = (r & RES_EDGE) ? "edge" : "inside";
  *pn = (int)strlen(z);     /* of a constant: folded */
  return z;
}

/* The rows tracts_assign writes, for its own INSERT ... SELECT: the
** eponymous table tracts_assign_rows(?) yields (id, k0, h0, ..., k7, h7),
** a rowid and each layer's key and how, from the job bound to it with
** sqlite3_bind_pointer(). Any other argument is an error, so SQL cannot
** reach the job. SQLite's own loop moves the rows: no bind per value. Each
** chunk is made ready (chunkReady) as the rows reach it, so the writing
** overlaps the helpers' last chunks. */
#define ROWS_JOB  (1 + 2*MAX_LAYERS)   /* the hidden argument's column */
#define ROWS_PTR  "tracts_assign_rows"  /* the pointer type */

typedef struct AssignRows AssignRows;
struct AssignRows {                   /* what the pointer points at */
  sqlite3 *db;
  const AssignJob *pJob;
  const TrLookupKeys *aKeys;          /* each layer's keys */
  uint32_t *aLen[MAX_LAYERS];         /* and their lengths */
  Helpers *pHelpers;                  /* joining the chunks not yet done */
  int rc;                             /* why the rows stopped, if they did */
  char *zErr;
};

typedef struct RowsCursor RowsCursor;
struct RowsCursor {
  sqlite3_vtab_cursor base;
  AssignRows *pRows;
  int64_t i;
};

static int rowsConnect(sqlite3 *db, void *pAux, int argc,
                       const char *const *argv, sqlite3_vtab **ppVtab,
                       char **pzErr){
  (void)argc; (void)argv; (void)pzErr;
  return trVtabConnect(db, pAux, "CREATE TABLE x(id, k0, h0, k1, h1, k2, h2, "
      "k3, h3, k4, h4, k5, h5, k6, h6, k7, h7, job HIDDEN)", sizeof(TrVtab), 1,
      ppVtab);
}

static int rowsBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *p){
  (void)pVtab;
  return trArgsBestIndex(p, ROWS_JOB, 1);
}

static int rowsOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCur){
  (void)pVtab;
  return trCursorNew(sizeof(RowsCursor), ppCur);
}

static int rowsClose(sqlite3_vtab_cursor *cur){
  sqlite3_free(cur);
  return SQLITE_OK;
}

/* The chunk the cursor has reached is assigned, or an error. */
static int rowsReady(RowsCursor *c){
  AssignRows *p = c->pRows;
  if( c->i>=p->pJob->nPt ) return SQLITE_OK;
  p->rc = chunkReady(p->db, p->pJob, p->pHelpers, c->i, &p->zErr);
  if( p->rc ){
    sqlite3_free(c->base.pVtab->zErrMsg);
    c->base.pVtab->zErrMsg = sqlite3_mprintf("%s", p->zErr ? p->zErr : "");
  }
  return p->rc;
}

static int rowsFilter(sqlite3_vtab_cursor *cur, int idxNum, const char *idxStr,
                      int argc, sqlite3_value **argv){
  RowsCursor *c = (RowsCursor*)cur;
  (void)idxStr;
  c->pRows = (idxNum & 1) && argc>0
           ? sqlite3_value_pointer(argv[0], ROWS_PTR) : 0;
  c->i = 0;
  if( c->pRows==0 ){
    sqlite3_free(cur->pVtab->zErrMsg);
    cur->pVtab->zErrMsg = sqlite3_mprintf("tracts_assign_rows is internal to "
                                          "tracts_assign");
    return SQLITE_ERROR;
  }
  return rowsReady(c);
}

static int rowsNext(sqlite3_vtab_cursor *cur){
  RowsCursor *c = (RowsCursor*)cur;
  c->i++;
  return (c->i % CHUNK)==0 ? rowsReady(c) : SQLITE_OK;
}

static int rowsEof(sqlite3_vtab_cursor *cur){
  RowsCursor *c = (RowsCursor*)cur;
  return c->i >= c->pRows->pJob->nPt;
}

static int rowsColumn(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int k){
  RowsCursor *c = (RowsCursor*)cur;
  const AssignJob *j = c->pRows->pJob;
  int l = (k - 1)/2;
  int32_t r;
  if( k==0 ){
    sqlite3_result_int64(ctx, j->aId[c->i]);
    return SQLITE_OK;
  }
  if( k>=ROWS_JOB || l>=j->nLayer ) return SQLITE_OK;     /* NULL */
  r = j->aRes[(size_t)l*(size_t)j->nCap + (size_t)c->i];
  if( k & 1 ){
    if( r>=0 ){
      const TrLookupKeys *pKeys = &c->pRows->aKeys[l];
      uint32_t iPoly = RES_POLY(r);
      sqlite3_result_text(ctx, pKeys->zKeys + pKeys->aOff[iPoly],
                          (int)c->pRows->aLen[l][iPoly], SQLITE_STATIC);
    }
  }else{
    int n;
    const char *z = howName(r, &n);
    sqlite3_result_text(ctx, z, n, SQLITE_STATIC);
  }
  return SQLITE_OK;
}

static int rowsRowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *pRowid){
  *pRowid = ((RowsCursor*)cur)->i;
  return SQLITE_OK;
}

static sqlite3_module rowsModule = {
  .xConnect = rowsConnect, .xBestIndex = rowsBestIndex,
  .xDisconnect = trVtabFree, .xOpen = rowsOpen, .xClose = rowsClose,
  .xFilter = rowsFilter, .xNext = rowsNext, .xEof = rowsEof,
  .xColumn = rowsColumn, .xRowid = rowsRowid,
};

/* Write the results into the destination in one savepoint: (id, geoid,
** how), or with azLayer (id, <layer>, <layer>_how, ...). */
static int assignWrite(sqlite3 *db, const AssignJob *j, Helpers *h,
                       TrLookupKeys *aKeys, char **azLayer, const char *zDest,
                       char **pzErr){
  sqlite3_stmt *pIns = 0;
  char *zSql;
  AssignRows rows;
  TrSavepoint sp;
  int rc, bOpen = 0, l;
  memset(&rows, 0, sizeof(rows));
  rc = trSavepointBegin(db, "tracts_assign", &sp);
  if( rc==SQLITE_BUSY ){
    *pzErr = sqlite3_mprintf("tracts_assign: cannot run inside a statement "
                             "that writes; call it on its own");
    return rc;
  }
  if( rc ) goto fail;
  bOpen = 1;
  {
    sqlite3_str *pSql = sqlite3_str_new(db);
    sqlite3_str_appendf(pSql, "DROP TABLE IF EXISTS %s;CREATE TABLE %s(id "
                        "INTEGER PRIMARY KEY", zDest, zDest);
    for(l=0; l<j->nLayer; l++){
      if( azLayer ){
        sqlite3_str_appendf(pSql, ", \"%w\" TEXT, \"%w_how\" TEXT NOT NULL",
                            azLayer[l], azLayer[l]);
      }else{
        sqlite3_str_appendall(pSql, ", geoid TEXT, how TEXT NOT NULL");
      }
    }
    sqlite3_str_appendall(pSql, ")");
    zSql = sqlite3_str_finish(pSql);
  }
  rc = zSql ? sqlite3_exec(db, zSql, 0, 0, pzErr) : SQLITE_NOMEM;
  sqlite3_free(zSql);
  if( rc ) goto fail;
  {
    sqlite3_str *pSql = sqlite3_str_new(db);
    sqlite3_str_appendf(pSql, "INSERT INTO %s SELECT id", zDest);
    for(l=0; l<j->nLayer; l++) sqlite3_str_appendf(pSql, ", k%d, h%d", l, l);
    sqlite3_str_appendall(pSql, " FROM main.tracts_assign_rows(?1)");
    zSql = sqlite3_str_finish(pSql);
  }
  rc = zSql ? sqlite3_prepare_v2(db, zSql, -1, &pIns, 0) : SQLITE_NOMEM;
  sqlite3_free(zSql);
  if( rc ) goto fail;
  rows.db = db;
  rows.pJob = j;
  rows.aKeys = aKeys;
  rows.pHelpers = h;
  for(l=0; l<j->nLayer; l++){
    uint32_t k;
    rows.aLen[l] = sqlite3_malloc64(sizeof(uint32_t)*(aKeys[l].nPoly+1));
    if( rows.aLen[l]==0 ){ rc = SQLITE_NOMEM; goto fail; }
    for(k=0; k<aKeys[l].nPoly; k++){
      rows.aLen[l][k] = (uint32_t)strlen(aKeys[l].zKeys + aKeys[l].aOff[k]);
    }
  }
  sqlite3_bind_pointer(pIns, 1, &rows, ROWS_PTR, 0);
  if( sqlite3_step(pIns)!=SQLITE_DONE ){
    rc = rows.rc ? rows.rc : sqlite3_errcode(db);
    *pzErr = rows.zErr;
    goto fail;
  }
  sqlite3_finalize(pIns);
  pIns = 0;
  /* every chunk is written: the helpers have ended or are ending */
  rc = helpersFinish(db, j, h, pzErr);
  if( rc ) goto fail;
  bOpen = 0;
  rc = trSavepointCommit(db, &sp);   /* undone on failure */
  if( rc ) goto fail;
  for(l=0; l<MAX_LAYERS; l++) sqlite3_free(rows.aLen[l]);
  return SQLITE_OK;
fail:
  if( rc==SQLITE_INTERRUPT ){
    sqlite3_free(*pzErr);
    *pzErr = 0;
  }
  if( *pzErr && strncmp(*pzErr, "tracts_assign: ", 15)!=0 ){
    char *z = sqlite3_mprintf("tracts_assign: cannot write %s: %s", zDest,
                              *pzErr);
    sqlite3_free(*pzErr);
    *pzErr = z;
  }
  if( *pzErr==0 ){
    *pzErr = rc==SQLITE_INTERRUPT ? sqlite3_mprintf("tracts_assign: interrupted")
           : sqlite3_mprintf("tracts_assign: cannot write %s: %s", zDest,
                             sqlite3_errmsg(db));
  }
  sqlite3_finalize(pIns);
  if( bOpen ) trSavepointUndo(db, &sp);
  if( !sp.bOuter && sqlite3_get_autocommit(db) && *pzErr ){
    /* SQLite rolled the caller's transaction back */
    char *z = sqlite3_mprintf("%s (the transaction it ran in was rolled "
                              "back)", *pzErr);
    sqlite3_free(*pzErr);
    *pzErr = z;
  }
  for(l=0; l<MAX_LAYERS; l++) sqlite3_free(rows.aLen[l]);
  return rc ? rc : SQLITE_ERROR;
}

/* 1 if zTable names a table of the extension, a layer's or its R*Tree's
** (never a destination). */
static int isOwnTable(sqlite3 *db, const char *zTable){
  static const char *az[] = { "tracts", "tracts_rtree", "tracts_rtree_node",
    "tracts_rtree_rowid", "tracts_rtree_parent", "tracts_files",
    "tracts_layers", "tracts_index" };
  size_t i;
  for(i=0; i<sizeof(az)/sizeof(az[0]); i++){
    if( sqlite3_stricmp(az[i], zTable)==0 ) return 1;
  }
  return trSqlExists(db, "SELECT 1 FROM main.tracts_layers WHERE lower(?1) "
      "IN (layer, layer||'_rtree', layer||'_rtree_node', layer||'_rtree_rowid',"
      " layer||'_rtree_parent')", zTable);
}

static void assignFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  TractsConn *pConn = (TractsConn*)sqlite3_user_data(ctx);
  sqlite3 *db = pConn->db;
  const char *azArg[4];
  char *azLayer[MAX_LAYERS];
  TrLookupKeys aKeys[MAX_LAYERS];
  int nLayer = 1, bNamed = 0;
  char *zSrcSchema = 0, *zSrcTable = 0, *zDstSchema = 0, *zDstTable = 0;
  char *zSrc = 0, *zDst = 0, *zSql = 0, *zErr = 0;
  sqlite3_stmt *pStmt = 0;
  AssignJob job;
  Helpers helpers;
  AssignPoints points;
  sqlite3_stmt *pCount = 0;
  int nWorker, i, rc = SQLITE_OK, bForkOk;
  static const char *azWhat[4] = { "source table", "longitude column",
                                   "latitude column", "destination table" };
  memset(&job, 0, sizeof(job));
  memset(&helpers, 0, sizeof(helpers));
  memset(azLayer, 0, sizeof(azLayer));
  for(i=0; i<4; i++){
    azArg[i] = (const char*)sqlite3_value_text(argv[i]);
    if( azArg[i]==0 || azArg[i][0]==0 ){
      zErr = sqlite3_mprintf("tracts_assign: the %s is %s", azWhat[i],
                             azArg[i] ? "empty" : "NULL");
      goto done;
    }
  }
  if( argc>4 && sqlite3_value_type(argv[4])!=SQLITE_NULL ){
    sqlite3_int64 v = sqlite3_value_int64(argv[4]);
    if( sqlite3_value_type(argv[4])!=SQLITE_INTEGER || v<1 || v>MAX_WORKERS ){
      zErr = sqlite3_mprintf("tracts_assign: workers must be an integer from "
                             "1 to %d, got '%q'", MAX_WORKERS,
                             (const char*)sqlite3_value_text(argv[4]));
      goto done;
    }
    nWorker = (int)v;
  }else{
    nWorker = (int)trConfigInt(pConn, TR_SET_WORKERS);
  }
  if( argc>5 ){
    /* the layers, comma-separated */
    const char *z = (const char*)sqlite3_value_text(argv[5]);
    nLayer = 0;
    bNamed = 1;
    while( z && *z ){
      char zName[64], zBase[64];
      size_t n;
      int year, k;
      char *zMsg = 0;
      while( *z==',' || *z==' ' ) z++;
      if( *z==0 ) break;
      n = strcspn(z, ", ");
      if( n>=sizeof(zName) ) n = sizeof(zName)-1;
      memcpy(zName, z, n);
      zName[n] = 0;
      z += strcspn(z, ", ");
      if( trLayerName(zName, zBase, &year, &zMsg)<0 ){
        zErr = sqlite3_mprintf("tracts_assign: %s", zMsg);
        sqlite3_free(zMsg);
        goto done;
      }
      for(k=0; k<(int)n; k++) zName[k] = (char)tolower((unsigned char)zName[k]);
      for(k=0; k<nLayer && strcmp(azLayer[k], zName)!=0; k++){}
      if( k<nLayer ){
        zErr = sqlite3_mprintf("tracts_assign: layer %s is named twice", zName);
        goto done;
      }
      if( nLayer>=MAX_LAYERS ){
        zErr = sqlite3_mprintf("tracts_assign: at most %d layers in one pass",
                               MAX_LAYERS);
        goto done;
      }
      azLayer[nLayer] = sqlite3_mprintf("%s", zName);
      if( azLayer[nLayer++]==0 ){ rc = SQLITE_NOMEM; goto done; }
    }
    if( nLayer==0 ){
      zErr = sqlite3_mprintf("tracts_assign: no layers given (a comma-"
                             "separated list such as 'tracts,counties')");
      goto done;
    }
    /* the columns id, <layer>, <layer>_how must differ */
    for(i=0; i<nLayer && zErr==0; i++){
      int k;
      if( sqlite3_stricmp(azLayer[i], "id")==0 ){
        zErr = sqlite3_mprintf("tracts_assign: a layer named id would make a "
                               "second column id");
      }
      for(k=0; k<nLayer && zErr==0; k++){
        size_t m = strlen(azLayer[k]);
        if( strncmp(azLayer[i], azLayer[k], m)==0
         && sqlite3_stricmp(azLayer[i]+m, "_how")==0 ){
          zErr = sqlite3_mprintf("tracts_assign: layers %s and %s would make "
                                 "two columns %s", azLayer[k], azLayer[i],
                                 azLayer[i]);
        }
      }
    }
    if( zErr ) goto done;
  }
  rc = trSplitName(db, azArg[0], &zSrcSchema, &zSrcTable);
  if( rc==SQLITE_OK ) rc = trSplitName(db, azArg[3], &zDstSchema, &zDstTable);
  if( rc ) goto done;
  if( (zDstSchema==0 || sqlite3_stricmp(zDstSchema, "main")==0)
   && isOwnTable(db, zDstTable) ){
    zErr = sqlite3_mprintf("tracts_assign: '%q' is a table of the extension; "
                           "choose another destination", zDstTable);
    goto done;
  }
  zSrc = trQuotedName(zSrcSchema, zSrcTable);
  zDst = trQuotedName(zDstSchema ? zDstSchema : "main", zDstTable);
  if( zSrc==0 || zDst==0 ){ rc = SQLITE_NOMEM; goto done; }
  if( sqlite3_stricmp(zSrcTable, zDstTable)==0
   && sqlite3_stricmp(zSrcSchema ? zSrcSchema : "main",
                      zDstSchema ? zDstSchema : "main")==0 ){
    zErr = sqlite3_mprintf("tracts_assign: the destination '%q' is the source",
                           azArg[3]);
    goto done;
  }

  /* the indexes, before anything else: helpers inherit them built */
  job.nLayer = nLayer;
  for(i=0; i<nLayer; i++){
    TrLookup *pL = trLookupGet(pConn, bNamed ? azLayer[i] : "tracts",
                               "tracts_assign", &zErr);
    if( pL==0 ) goto done;
    job.apIdx[i] = trLookupPip(pL);
    trLookupKeys(pL, &aKeys[i]);
    if( aKeys[i].nPoly>RES_POLY(0xffffffffu) ){
      zErr = sqlite3_mprintf("tracts_assign: %u polygons are more than it can "
                             "number (%u)", aKeys[i].nPoly, RES_POLY(0xffffffffu));
      goto done;
    }
  }
  job.rNearest = (double)trConfigInt(pConn, TR_SET_NEAREST);

  /* the source must be a rowid table */
  {
    sqlite3_stmt *pTl = 0;
    int bFound = 0, bRowid = 0;
    rc = sqlite3_prepare_v2(db, zSrcSchema
          ? "SELECT type, wr FROM pragma_table_list(?1) WHERE schema=?2 "
            "COLLATE NOCASE"
          : "SELECT type, wr FROM pragma_table_list(?1) ORDER BY schema<>'temp', "
            "schema<>'main'", -1, &pTl, 0);
    if( rc ){ sqlite3_finalize(pTl); goto done; }
    sqlite3_bind_text(pTl, 1, zSrcTable, -1, SQLITE_STATIC);
    if( zSrcSchema ) sqlite3_bind_text(pTl, 2, zSrcSchema, -1, SQLITE_STATIC);
    if( sqlite3_step(pTl)==SQLITE_ROW ){
      const char *zType = (const char*)sqlite3_column_text(pTl, 0);
      bFound = 1;
      bRowid = zType && strcmp(zType, "view")!=0 && sqlite3_column_int(pTl, 1)==0;
    }
    sqlite3_finalize(pTl);
    if( !bFound && trInterrupted(db) ){
      /* the lookup was stopped, not empty */
      rc = SQLITE_INTERRUPT;
      zErr = sqlite3_mprintf("tracts_assign: interrupted");
      goto done;
    }
    if( !bFound ){
      zErr = sqlite3_mprintf("tracts_assign: no such table: %s", azArg[0]);
      goto done;
    }
    if( !bRowid ){
      zErr = sqlite3_mprintf("tracts_assign: '%q' has no rowid (a view or a "
                             "WITHOUT ROWID table)", azArg[0]);
      goto done;
    }
  }
  /* the columns must exist: a double-quoted name that does not would be
  ** read by SQLite as a string literal */
  for(i=1; i<=2; i++){
    if( !trHasColumn(db, zSrcSchema, zSrcTable, azArg[i]) ){
      if( trInterrupted(db) ){
        rc = SQLITE_INTERRUPT;
        zErr = sqlite3_mprintf("tracts_assign: interrupted");
        goto done;
      }
      zErr = trHasColumn(db, zSrcSchema, zSrcTable, 0)
           ? sqlite3_mprintf("tracts_assign: no such column: %s", azArg[i])
           : sqlite3_mprintf("tracts_assign: no such table: %s", azArg[0]);
      goto done;
    }
  }

  trMonitorMark(pConn, "assign: read");
  /* One read snapshot for the count and the rows: the count statement
  ** stays stepped, so active, until the rows are read, which keeps the
  ** read transaction open. (A savepoint would too, but after an interrupt
  ** it could not be released: the connection would stay in a
  ** transaction.) */
  bForkOk = sqlite3_txn_state(db, 0)!=SQLITE_TXN_WRITE;
  zSql = sqlite3_mprintf("SELECT count(*) FROM %s", zSrc);
  if( zSql==0 ){ rc = SQLITE_NOMEM; goto done; }
  rc = sqlite3_prepare_v2(db, zSql, -1, &pCount, 0);
  sqlite3_free(zSql);
  zSql = 0;
  if( rc ) goto done;
  if( sqlite3_step(pCount)!=SQLITE_ROW ){
    rc = sqlite3_errcode(db);
    if( rc==SQLITE_OK ) rc = SQLITE_ERROR;
    goto done;
  }
  job.nCap = sqlite3_column_int64(pCount, 0);

  /* the shared mapping: counters, coordinates, results, rowids. Shared,
  ** so fork leaves it writable here (no copy-on-write faults), and
  ** populated now, not a fault per page while the points are read. */
  {
    size_t nHead = (sizeof(AssignShared) + 63) & ~(size_t)63;
    size_t nCap = (size_t)(job.nCap ? job.nCap : 1);
    job.nSh = nHead + nCap*2*sizeof(double) + nCap*sizeof(sqlite3_int64)
            + nCap*sizeof(int32_t)*(size_t)nLayer + nCap/CHUNK + 1;
    job.pSh = mmap(0, job.nSh, PROT_READ|PROT_WRITE,
                   MAP_SHARED|MAP_ANONYMOUS|MAP_POPULATE, -1, 0);
    if( job.pSh==MAP_FAILED ){
      job.pSh = 0;
      zErr = sqlite3_mprintf("tracts_assign: cannot map %zu bytes: %s",
                             job.nSh, strerror(errno));
      goto done;
    }
    job.aXY = (double*)((char*)job.pSh + nHead);
    job.aId = (sqlite3_int64*)(job.aXY + 2*nCap);
    job.aRes = (int32_t*)(job.aId + nCap);
    job.aChunkDone = (uint8_t*)(job.aRes + nCap*(size_t)nLayer);
    job.pSh->nTotal = -1;
  }

  /* helpers start now and join points as they are read */
  if( (int64_t)nWorker*CHUNK > job.nCap ){
    nWorker = (int)((job.nCap + CHUNK - 1)/CHUNK);
    if( nWorker<1 ) nWorker = 1;
  }
  if( !bForkOk ) nWorker = 1;
  helpers.nWorker = nWorker;
  if( nWorker>1 ){
    rc = helpersStart(&job, &helpers, &zErr);
    if( rc ) goto done;
  }

  /* the points: SQLite's loop hands each row to pointsStep */
  zSql = sqlite3_mprintf("SELECT tracts_assign_points(?1, rowid, \"%w\", "
                         "\"%w\") FROM %s NOT INDEXED", azArg[1], azArg[2],
                         zSrc);
  if( zSql==0 ){ rc = SQLITE_NOMEM; goto done; }
  rc = sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0);
  if( rc ){
    zErr = sqlite3_mprintf("tracts_assign: %s", sqlite3_errmsg(db));
    goto done;
  }
  points.pJob = &job;
  points.pHelpers = &helpers;
  points.zErr = 0;
  sqlite3_bind_pointer(pStmt, 1, &points, POINTS_PTR, 0);
  while( (rc = sqlite3_step(pStmt))==SQLITE_ROW ){}
  if( rc!=SQLITE_DONE ){
    const char *zMsg = sqlite3_errmsg(db);
    zErr = points.zErr ? points.zErr
         : sqlite3_mprintf(strncmp(zMsg, "tracts_assign: ", 15)==0 ? "%s"
                           : "tracts_assign: %s", zMsg);
    goto done;
  }
  if( job.nPt!=job.nCap ){    /* a virtual table may answer so */
    zErr = sqlite3_mprintf("tracts_assign: read %lld of the source's %lld "
                           "rows (a virtual table that changed, or "
                           "tracts_assign_points redefined)",
                           (long long)job.nPt, (long long)job.nCap);
    rc = SQLITE_ERROR;
    goto done;
  }
  sqlite3_finalize(pStmt);
  pStmt = 0;
  rc = SQLITE_OK;
  __atomic_store_n(&job.pSh->nReady, job.nPt, __ATOMIC_RELEASE);
  __atomic_store_n(&job.pSh->nTotal, job.nPt, __ATOMIC_RELEASE);
  sqlite3_finalize(pCount);          /* the read transaction ends */
  pCount = 0;
  if( !sqlite3_get_autocommit(db) ){
    /* Inside the caller's transaction an interrupted write rolls all of
    ** it back (SQLite's rule), so finish the join before writing: only
    ** the writing itself can then be interrupted that way. */
    int64_t i0;
    for(i0=0; i0<job.nPt; i0+=CHUNK){
      rc = chunkReady(db, &job, &helpers, i0, &zErr);
      if( rc ) goto done;
    }
  }

  trMonitorMark(pConn, "assign: write");
  rc = assignWrite(db, &job, &helpers, aKeys, bNamed ? azLayer : 0, zDst, &zErr);
  if( rc ) goto done;
  sqlite3_result_int64(ctx, job.nPt);

done:
  if( rc==SQLITE_NOMEM && zErr==0 ){
    sqlite3_result_error_nomem(ctx);
  }else if( zErr ){
    sqlite3_result_error(ctx, zErr, -1);
    if( rc==SQLITE_INTERRUPT ) sqlite3_result_error_code(ctx, SQLITE_INTERRUPT);
  }else if( rc ){
    char *z = sqlite3_mprintf("tracts_assign: %s", sqlite3_errmsg(db));
    sqlite3_result_error(ctx, z ? z : "tracts_assign: error", -1);
    sqlite3_result_error_code(ctx, rc);
    sqlite3_free(z);
  }
  sqlite3_finalize(pStmt);
  helpersStop(&helpers);
  sqlite3_finalize(pCount);
  if( job.pSh ) munmap(job.pSh, job.nSh);
  sqlite3_free(zSql);
  sqlite3_free(zErr);
  sqlite3_free(zSrc);
  sqlite3_free(zDst);
  sqlite3_free(zSrcSchema);
  sqlite3_free(zSrcTable);
  sqlite3_free(zDstSchema);
  sqlite3_free(zDstTable);
  for(i=0; i<MAX_LAYERS; i++) sqlite3_free(azLayer[i]);
}

int trAssignRegister(sqlite3 *db, TractsConn *pConn){
  int rc = trFunction(db, pConn, "tracts_assign", 4, SQLITE_DIRECTONLY,
                      assignFunc);
  if( rc ) return rc;
  rc = trFunction(db, pConn, "tracts_assign", 5, SQLITE_DIRECTONLY, assignFunc);
  if( rc ) return rc;
  rc = trFunction(db, pConn, "tracts_assign", 6, SQLITE_DIRECTONLY, assignFunc);
  if( rc ) return rc;
  rc = sqlite3_create_function_v2(db, "tracts_assign_points", 4,
      SQLITE_UTF8|SQLITE_DIRECTONLY, 0, 0, pointsStep, pointsFinal, 0);
  if( rc ) return rc;
  return trModule(db, pConn, "tracts_assign_rows", &rowsModule);
}
