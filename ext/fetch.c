/*
** fetch.c - fetch_tracts(), fetch_boundaries(), fetch_for_points():
** parallel, cached, verified downloads of the Census Bureau's boundary
** files, loaded as they arrive; tracts_cache.
**
**   fetch_boundaries(layer, states [, year [, resolution [, options]]])
**   fetches any census layer (registry.c) by its file naming; a national
**   layer is one file (states '*'). fetch_tracts(states, ...) is
**   fetch_boundaries('tracts', states, ...). fetch_for_points (below)
**   fetches only the states a table's points fall in.
**
** Usage
**
**     SELECT * FROM fetch_tracts('RI,MA');          -- USPS codes
**     SELECT * FROM fetch_tracts('44,25', 2020);    -- FIPS codes, a year
**     SELECT * FROM fetch_tracts('*');              -- 50 states, DC, PR
**     SELECT * FROM fetch_tracts('RI', 2019, 'refresh');  -- re-download
**     SELECT * FROM tracts_cache;                   -- what the cache holds
**     DELETE FROM tracts_cache WHERE fetched_at < date('now', '-90 days');
**
**   One row per state: state, fips, url, status (the last HTTP status),
**   bytes, from_cache, requests (HTTP requests made for it), seconds,
**   tracts (rows loaded), error (NULL, or why the state was not loaded).
**   A state that fails leaves its old rows, if any, as they were and does
**   not stop the others. Options (third argument, comma separated):
**   refresh (download even if cached), offline (cache only), strict (the
**   statement fails if any state failed, after the others are loaded).
**
**   The URL is {base_url}GENZ{year}/shp/cb_{year}_{SS}_tract_500k.zip;
**   tracts_config() holds base_url, year, connections, cache_dir,
**   user_agent, offline, retries, retry_wait_ms, retry_max_s,
**   connect_timeout, low_speed_timeout, split_kb and progress.
**
** How it works
**
**   One download thread drives libcurl's multi interface with up to
**   `connections` transfers, largest states first. Each file is written to
**   a temporary name in the cache directory, in pieces: once its size and
**   the connections' speed are known, a file that would arrive too late
**   to be loaded before the fetch's expected end is cut into Range pieces
**   (planSplit), and a connection with nothing left to start takes the
**   second half of the transfer that would end last (the first transfer
**   stops where the new piece starts). A failed piece is retried after an
**   exponential backoff with jitter (Retry-After on 429 and 503), resuming
**   where it stopped when the server honours ranges (If-Range guards
**   against the file changing); 404 and 403 are not retried.
**
**   A complete file goes to the loader of load_tracts (layer.c): its
**   reader threads open it, which inflates every member and checks its
**   CRC and the shapefile. Only then is it synced to the disk (by that
**   reader, so a slow disk never stalls the transfers) and renamed into
**   the cache, with a
**   .meta file beside it (url, etag, last-modified, sha256); a damaged
**   file is deleted and fetched again. This thread writes each file in
**   its own savepoint as it arrives, while the others download. A cached
**   file is revalidated with If-None-Match / If-Modified-Since; a 304
**   loads the cached copy. If the server cannot be reached, a cached copy
**   is loaded and the row's status says what the server answered.
**
**   Renames are atomic and temporary names are per process, so several
**   processes may fetch into one cache at once. sqlite3_interrupt() stops
**   the transfers within a tenth of a second; temporary files are removed
**   and the state being written is rolled back.
**
** Errors (statement)
**
**     fetch_tracts: unknown state 'XX' (USPS codes like RI, FIPS codes
**         like 44, or '*' for all)
**     fetch_tracts: year must be an integer from 1990 to 2100, got 'x'
**     fetch_tracts: unknown option 'x' (known: refresh, offline, strict)
**     fetch_tracts: no cache directory: set tracts_config('cache_dir', ...)
**     fetch_tracts: cannot create cache directory '...': ...
**     fetch_tracts: interrupted
**     fetch_tracts: 2 of 5 states failed (strict): RI: ...
**
** Errors (rows)
**
**     HTTP 404 Not Found: URL
**     HTTP 403 Forbidden: URL (the server refused this client; another
**         user_agent setting may help)
**     HTTP 503 after 5 retries: URL
**     Timeout was reached after 5 retries: URL
**     the server sent an HTML page, not a zip, after 5 retries: URL
**     not in the cache (offline): URL
**     fetch_tracts: URL: member ... is corrupt: ... (after the retries)
*/
#include "tracts_sql.h"
#include "../include/tracts.h"
#include "census_states.h"

#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The states of the cartographic tract files: FIPS and USPS code, and
** about how many tracts (the larger files start first). */
#define TR_STATE(fips, usps, tracts) { fips, usps, tracts },
static const struct { int iFips; const char *zUsps; int nTract; } aState[] = {
  TR_STATES
};
#undef TR_STATE
#define N_STATE ((int)(sizeof(aState)/sizeof(aState[0])))

#define MAX_SEG      32          /* pieces one file may be split into */
#define SPLIT_ALIGN  65536       /* piece boundaries are multiples of this */
#define PLAN_MEASURE 0.5         /* seconds of a transfer that measure speed */
#define PLAN_LOAD    2.0         /* a file's load, in its bytes' time at the
                                 ** whole fetch's rate (see planSplit) */
#define ERRMSG       512
#define MAX_FILE     ((int64_t)4 << 30)   /* load_tracts reads at most this */

/* ---- the cache directory ---------------------------------------------- */

char *trCacheDir(TractsConn *pConn){
  char *z = trConfigText(pConn, TR_SET_CACHE_DIR);
  const char *zEnv;
  if( z ) return z;
  zEnv = getenv("XDG_CACHE_HOME");
  if( zEnv && zEnv[0]=='/' ) return sqlite3_mprintf("%s/tracts", zEnv);
  zEnv = getenv("HOME");
  if( zEnv && zEnv[0] ) return sqlite3_mprintf("%s/.cache/tracts", zEnv);
  return 0;
}

/* mkdir -p the directory part of zPath (bFile) or zPath itself. 0 or
** an errno value. */
static int makeDirs(const char *zPath, int bFile){
  char *z = strdup(zPath);
  char *p;
  int rc = 0;
  if( z==0 ) return ENOMEM;
  if( bFile ){
    p = strrchr(z, '/');
    if( p==0 ){ free(z); return 0; }
    *p = 0;
  }
  for(p=z+1; ; p++){
    if( *p=='/' || *p==0 ){
      char c = *p;
      *p = 0;
      if( z[0] && mkdir(z, 0777) && errno!=EEXIST ){ rc = errno; break; }
      *p = c;
      if( c==0 ) break;
    }
  }
  if( rc==0 ){
    struct stat st;
    if( stat(z, &st) ) rc = errno;
    else if( !S_ISDIR(st.st_mode) ) rc = ENOTDIR;
  }
  free(z);
  return rc;
}

/* The cache path of zUrl under zDir: {dir}/{host[_port]}/{path}. NULL if
** the URL has no usable path (or on OOM). */
static char *cachePath(const char *zDir, const char *zUrl){
  const char *zHost = strstr(zUrl, "://");
  const char *zPath;
  char *z, *p;
  if( zHost==0 ) return 0;
  zHost += 3;
  zPath = strchr(zHost, '/');
  if( zPath==0 || strstr(zPath, "/../") || strstr(zPath, "/./")
   || strchr(zPath, '?') || strchr(zPath, '#') ){
    return 0;
  }
  z = sqlite3_mprintf("%s/%.*s%s", zDir, (int)(zPath-zHost), zHost, zPath);
  if( z==0 ) return 0;
  for(p=z+strlen(zDir)+1; *p && *p!='/'; p++){
    if( *p==':' || *p=='@' ) *p = '_';
  }
  return z;
}

/* ---- cache metadata (.meta beside each file) -------------------------- */

typedef struct CacheMeta CacheMeta;
struct CacheMeta {
  char zUrl[2048];
  char zEtag[256];
  char zLastMod[64];
  char zFetched[32];
  char zSha256[65];
  int64_t nBytes;          /* -1 unknown */
};

/* Read zFile.meta into *p. 0 if read and it describes zFile as it is. */
static int metaRead(const char *zFile, CacheMeta *p){
  char zPath[4200], zLine[2300];
  struct stat st;
  FILE *f;
  memset(p, 0, sizeof(*p));
  p->nBytes = -1;
  if( snprintf(zPath, sizeof(zPath), "%s.meta", zFile)>=(int)sizeof(zPath) ){
    return 1;
  }
  f = fopen(zPath, "r");
  if( f==0 ) return 1;
  while( fgets(zLine, sizeof(zLine), f) ){
    char *zVal = strchr(zLine, '=');
    size_t n;
    if( zVal==0 ) continue;
    *zVal++ = 0;
    n = strlen(zVal);
    while( n>0 && (zVal[n-1]=='\n' || zVal[n-1]=='\r') ) zVal[--n] = 0;
#define META_STR(K, F) if( strcmp(zLine, K)==0 ) snprintf(p->F, sizeof(p->F), "%s", zVal)
    META_STR("url", zUrl);
    META_STR("etag", zEtag);
    META_STR("last_modified", zLastMod);
    META_STR("fetched_at", zFetched);
    META_STR("sha256", zSha256);
#undef META_STR
    if( strcmp(zLine, "bytes")==0 ) p->nBytes = strtoll(zVal, 0, 10);
  }
  fclose(f);
  /* another process may have replaced the file but not yet its .meta */
  if( stat(zFile, &st) || st.st_size!=p->nBytes ) return 1;
  return 0;
}

/* Flush zFile's data to the disk, so that a rename makes it visible only
** whole, even after a crash. 0 or an errno value. */
static int syncFile(const char *zFile){
  int fd = open(zFile, O_RDONLY | O_CLOEXEC), rc = 0;
  if( fd<0 ) return errno;
  if( fdatasync(fd) ) rc = errno ? errno : EIO;
  close(fd);
  return rc;
}

/* Write zFile.meta atomically. 0 or an errno value. */
static int metaWrite(const char *zFile, const CacheMeta *p){
  char zPath[4200], zTmp[4300];
  FILE *f;
  int rc = 0;
  snprintf(zPath, sizeof(zPath), "%s.meta", zFile);
  snprintf(zTmp, sizeof(zTmp), "%s.%d.%lx.part", zPath, (int)getpid(),
           (unsigned long)pthread_self());
  f = fopen(zTmp, "w");
  if( f==0 ) return errno;
  fprintf(f, "url=%s\netag=%s\nlast_modified=%s\nfetched_at=%s\n"
          "sha256=%s\nbytes=%lld\n", p->zUrl, p->zEtag, p->zLastMod,
          p->zFetched, p->zSha256, (long long)p->nBytes);
  if( fflush(f) || fsync(fileno(f)) ) rc = errno ? errno : EIO;
  if( fclose(f) && rc==0 ) rc = errno ? errno : EIO;
  if( rc==0 && rename(zTmp, zPath) ) rc = errno;
  if( rc ) unlink(zTmp);
  return rc;
}

/* ---- one fetch --------------------------------------------------------- */

typedef struct Fetch Fetch;
typedef struct FetchJob FetchJob;
typedef struct Xfer Xfer;

/* A byte range of a file, fetched by at most one transfer at a time. */
typedef struct Seg Seg;
struct Seg {
  int64_t iPos;            /* next byte wanted */
  int64_t iEnd;            /* one past the last byte; -1 until the size is known */
  Xfer *pX;                /* its transfer, or NULL */
  double tWake;            /* not before this time (backoff) */
};

/* Job states */
#define J_QUEUED   0       /* not started */
#define J_RUN      1       /* pieces downloading or waiting to retry */
#define J_OPENING  2       /* complete, handed to the loader to verify */
#define J_LOADING  3       /* verified (or cached): the loader writes it */
#define J_FAILED   4       /* given up; zErr says why */

/* One state's file. */
struct FetchJob {
  Fetch *pF;
  int iFips;
  const char *zUsps;
  int nWeight;             /* expected size (tracts): larger start first */
  char *zUrl;              /* sqlite3_malloc'd */
  char *zCache;            /* its cache path */
  char *zTmp;              /* temporary name while downloading, or NULL */
  int fd;                  /* zTmp open for writing, or -1 */
  int eState;
  int64_t nSize;           /* bytes, -1 until known */
  int bRanges;             /* the server serves ranges of it */
  int bNoRanges;           /* it refused a range once: never ask again */
  int nSeg;
  Seg aSeg[MAX_SEG];
  int nRetry;              /* failures so far */
  int nRequest;            /* HTTP requests made */
  int status;              /* last HTTP status */
  int bCached;             /* a verified copy is in the cache */
  int bFromCache;          /* the loaded copy came from the cache */
  int bRevalidate;         /* send If-None-Match / If-Modified-Since */
  CacheMeta old;           /* the cached copy's metadata */
  char zEtag[256];         /* validators of the copy being downloaded */
  char zLastMod[64];
  char zErr[ERRMSG];       /* why it failed */
  double t0, t1;           /* started, finished */
  char zLoadedSha[65];      /* sha256 of the file this state was loaded from */
  int nLoadedRows;         /* its rows now in the tracts table */
  /* filled from the loader's row */
  int nTract;
  char *zLoadErr;
  int bLoaded;             /* a row came back from the loader */
  int bPlanned;            /* planSplit has decided its pieces */
};

/* One transfer: an easy handle fetching one piece. */
struct Xfer {
  FetchJob *pJob;
  int iSeg;
  CURL *h;
  struct curl_slist *pHdr;
  int bRange;              /* asked for a range */
  int bStarted;            /* the body began */
  int bDiscard;            /* an error body: read and dropped */
  int bRestart;            /* the server ignored or refused the range */
  int bClipped;            /* stopped on purpose where the next piece starts */
  int bNotZip;             /* the body is not a zip (an HTML page, ...) */
  int64_t nDiscard;        /* bytes of an error body read and dropped */
  char zStart[24];         /* its first bytes, printable */
  double rRetryAfter;      /* seconds from Retry-After, -1 if none */
  char zEtag[256];
  char zLastMod[64];
  int bAcceptRanges;
  int bHtml;               /* Content-Type: text/html */
  int64_t iRangeStart, iRangeTotal;   /* from Content-Range, -1 if none */
  double tReq;             /* when it was asked for */
  double tFirst;           /* when its body began, 0 before */
  int64_t nGot;            /* body bytes it brought */
  char zCurlErr[CURL_ERROR_SIZE];
};

struct Fetch {
  TractsConn *pConn;
  const char *zFunc;       /* "fetch_tracts" or "fetch_boundaries" */
  TrLayer *pLayer;         /* the layer loaded */
  const char *zRes;        /* resolution, "500k" */
  int year;
  TrLoad *pLoad;
  FetchJob *aJob;          /* in the order asked (the rows) */
  int nJob;
  int *aOrder;             /* job numbers, largest expected file first */
  /* settings, read once */
  char *zUserAgent;
  int nConn, nRetryMax, msWait, sWaitMax, sConnect, sLowSpeed;
  int64_t nSplit;          /* smallest piece, bytes; 0: never split */
  int bOffline, bRefresh, bProgress;
  /* the download thread */
  CURLM *pMulti;
  pthread_t tid;
  pthread_mutex_t mu;      /* guards eState/nRetry of jobs across threads */
  int bAbort;              /* stop: set by the SQL thread (atomic) */
  uint64_t rng;            /* jitter */
  /* progress */
  double t0, tDrawn;
  int64_t nGot;            /* body bytes written */
  int bDrew;
  /* what finished transfers showed, for planSplit */
  double rDoneBytes, rDoneTime;   /* body bytes, seconds receiving them */
  double rLatSum;          /* seconds from request to first byte, summed */
  int nLat;
};

static double rand01(Fetch *p){
  /* xorshift64*, good enough for jitter */
  uint64_t x = p->rng;
  x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
  p->rng = x;
  return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

/* Seconds to wait before retry n (1-based) of a job. */
static double backoff(Fetch *p, int n, double rRetryAfter){
  double d;
  if( rRetryAfter>=0 ){
    d = rRetryAfter;
  }else{
    d = p->msWait/1000.0 * (double)(1u << (n>10 ? 10 : n-1));
    d *= 0.5 + rand01(p);
  }
  if( d>p->sWaitMax ) d = p->sWaitMax;
  return d;
}

static int jobDone(const FetchJob *j){
  int i;
  if( j->nSize<0 ) return 0;
  for(i=0; i<j->nSeg; i++){
    if( j->aSeg[i].pX || j->aSeg[i].iPos<j->aSeg[i].iEnd ) return 0;
  }
  return 1;
}

static void jobCloseTmp(FetchJob *j, int bUnlink){
  if( j->fd>=0 ){ close(j->fd); j->fd = -1; }
  if( j->zTmp ){
    if( bUnlink ) unlink(j->zTmp);
    sqlite3_free(j->zTmp);
    j->zTmp = 0;
  }
}

/* Start the file over: one piece from byte 0, an empty temporary file. */
static void jobReset(FetchJob *j){
  j->nSeg = 1;
  j->nSize = -1;
  j->bPlanned = 0;
  memset(&j->aSeg[0], 0, sizeof(Seg));
  j->aSeg[0].iEnd = -1;
  if( j->fd>=0 && ftruncate(j->fd, 0) ){ /* the rewrite overwrites it */ }
}

/* ---- libcurl callbacks ------------------------------------------------- */

static void copyHeaderValue(char *zOut, size_t nOut, const char *z, size_t n){
  size_t i;
  while( n>0 && (*z==' ' || *z=='\t') ){ z++; n--; }
  while( n>0 && (z[n-1]=='\r' || z[n-1]=='\n' || z[n-1]==' ') ) n--;
  if( n>=nOut ) n = 0;             /* too long to be trusted: dropped */
  for(i=0; i<n; i++){
    /* these go back into request headers and .meta lines: printable
    ** ASCII only, else the value is dropped */
    if( (unsigned char)z[i]<0x20 || (unsigned char)z[i]>0x7e ){ n = 0; break; }
  }
  memcpy(zOut, z, n);
  zOut[n] = 0;
}

/* The validator to send in If-Range: a strong ETag, else Last-Modified
** (a weak ETag may not be used there); NULL if there is none. */
static const char *rangeValidator(const FetchJob *j){
  if( j->zEtag[0] && strncmp(j->zEtag, "W/", 2)!=0 ) return j->zEtag;
  if( j->zLastMod[0] ) return j->zLastMod;
  return 0;
}

static int headerIs(const char *z, size_t n, const char *zName){
  size_t m = strlen(zName);
  return n>m && strncasecmp(z, zName, m)==0 && z[m]==':';
}

static size_t onHeader(char *z, size_t sz, size_t nItem, void *pArg){
  Xfer *x = (Xfer*)pArg;
  size_t n = sz*nItem;
  char zVal[300];
  if( n>=5 && strncmp(z, "HTTP/", 5)==0 ){
    /* a new response (after a redirect or a 100): forget the last one */
    x->zEtag[0] = x->zLastMod[0] = 0;
    x->rRetryAfter = -1;
    x->bAcceptRanges = x->bHtml = 0;
    x->iRangeStart = x->iRangeTotal = -1;
  }else if( headerIs(z, n, "ETag") ){
    copyHeaderValue(x->zEtag, sizeof(x->zEtag), z+5, n-5);
  }else if( headerIs(z, n, "Last-Modified") ){
    copyHeaderValue(x->zLastMod, sizeof(x->zLastMod), z+14, n-14);
  }else if( headerIs(z, n, "Accept-Ranges") ){
    copyHeaderValue(zVal, sizeof(zVal), z+14, n-14);
    x->bAcceptRanges = strcasecmp(zVal, "bytes")==0;
  }else if( headerIs(z, n, "Content-Type") ){
    copyHeaderValue(zVal, sizeof(zVal), z+13, n-13);
    x->bHtml = strncasecmp(zVal, "text/html", 9)==0;
  }else if( headerIs(z, n, "Retry-After") ){
    char *zEnd = 0;
    double d;
    copyHeaderValue(zVal, sizeof(zVal), z+12, n-12);
    d = strtod(zVal, &zEnd);
    if( zEnd && zEnd!=zVal && *zEnd==0 && d>=0 ){
      x->rRetryAfter = d;
    }else{
      time_t t = curl_getdate(zVal, 0);
      if( t!=(time_t)-1 ){
        d = difftime(t, time(0));
        x->rRetryAfter = d>0 ? d : 0;
      }
    }
  }else if( headerIs(z, n, "Content-Range") ){
    long long a = -1, b = -1, t = -1;
    copyHeaderValue(zVal, sizeof(zVal), z+14, n-14);
    if( sscanf(zVal, "bytes %lld-%lld/%lld", &a, &b, &t)==3 ){
      x->iRangeStart = a;
      x->iRangeTotal = t;
    }
  }
  return n;
}

/* The first bytes of a body: decide what it is. 0 to go on, 1 to stop. */
static int bodyStart(Xfer *x, const char *z, size_t n){
  FetchJob *j = x->pJob;
  Seg *s = &j->aSeg[x->iSeg];
  long code = 0;
  curl_off_t nLen = -1;
  curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_getinfo(x->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &nLen);
  x->bStarted = 1;
  x->tFirst = trNow();
  j->pF->rLatSum += x->tFirst - x->tReq;
  j->pF->nLat++;
  j->status = (int)code;
  if( code!=200 && code!=206 ){
    x->bDiscard = 1;             /* an error page: judged when done */
    return 0;
  }
  if( code==200 && (x->bRange || s->iPos>0) ){
    x->bRestart = 1;             /* the range was ignored */
    return 1;
  }
  if( code==206 ){
    if( !x->bRange || x->iRangeStart!=s->iPos
     || (j->nSize>=0 && x->iRangeTotal!=j->nSize) ){
      x->bRestart = 1;
      return 1;
    }
    return 0;
  }
  /* 200, the whole file */
  if( x->bHtml || z[0]!='P' || (n>=2 && z[1]!='K') ){
    size_t k, m = 0;
    for(k=0; k<n && k<16; k++){
      unsigned char c = (unsigned char)z[k];
      x->zStart[m++] = (c>=32 && c<127) ? (char)c : '.';
    }
    x->zStart[m] = 0;
    x->bNotZip = 1;
    return 1;
  }
  j->nSize = nLen>=0 ? (int64_t)nLen : -1;
  if( j->nSize>MAX_FILE ){
    snprintf(j->zErr, sizeof(j->zErr), "the file is larger than 4 GiB "
             "(%lld bytes): %s", (long long)j->nSize, j->zUrl);
    return 1;
  }
  s->iEnd = j->nSize;
  snprintf(j->zEtag, sizeof(j->zEtag), "%s", x->zEtag);
  snprintf(j->zLastMod, sizeof(j->zLastMod), "%s", x->zLastMod);
  j->bRanges = !j->bNoRanges && x->bAcceptRanges && j->nSize>0
            && rangeValidator(j)!=0;
  return 0;
}

static size_t onBody(char *z, size_t sz, size_t nItem, void *pArg){
  Xfer *x = (Xfer*)pArg;
  FetchJob *j = x->pJob;
  Seg *s = &j->aSeg[x->iSeg];
  size_t n = sz*nItem, nWrite = n, k = 0;
  if( !x->bStarted && n>0 && bodyStart(x, z, n) ) return 0;
  if( x->bDiscard ){
    /* an error page is judged by its status: 64 KiB of it is plenty */
    x->nDiscard += (int64_t)n;
    return x->nDiscard > 65536 ? 0 : n;
  }
  if( s->iPos + (int64_t)n > MAX_FILE ){
    snprintf(j->zErr, sizeof(j->zErr), "the file is larger than 4 GiB: %s",
             j->zUrl);
    return 0;
  }
  if( s->iEnd>=0 ){
    int64_t nLeft = s->iEnd - s->iPos;
    if( (int64_t)nWrite>nLeft ){
      nWrite = (size_t)(nLeft>0 ? nLeft : 0);
    }
  }
  while( k<nWrite ){
    ssize_t w = pwrite(j->fd, z+k, nWrite-k, (off_t)(s->iPos + (int64_t)k));
    if( w<0 ){
      if( errno==EINTR ) continue;
      snprintf(j->zErr, sizeof(j->zErr), "cannot write %s: %s", j->zTmp,
               strerror(errno));
      return 0;
    }
    k += (size_t)w;
  }
  s->iPos += (int64_t)nWrite;
  x->nGot += (int64_t)nWrite;
  j->pF->nGot += (int64_t)nWrite;
  if( nWrite<n ){
    x->bClipped = 1;             /* the rest belongs to the next piece */
    return 0;
  }
  return n;
}

/* Check the abort flag from inside a transfer. */
static int onProgress(void *pArg, curl_off_t a, curl_off_t b, curl_off_t c,
                      curl_off_t d){
  Xfer *x = (Xfer*)pArg;
  (void)a; (void)b; (void)c; (void)d;
  return __atomic_load_n(&x->pJob->pF->bAbort, __ATOMIC_RELAXED);
}

/* ---- starting and finishing transfers ---------------------------------- */

static void xferFree(Xfer *x){
  if( x==0 ) return;
  if( x->h ) curl_easy_cleanup(x->h);
  curl_slist_free_all(x->pHdr);
  free(x);
}

/* Start a transfer of piece iSeg of job j. 0, or 1 on OOM. */
static int xferStart(Fetch *p, FetchJob *j, int iSeg){
  Seg *s = &j->aSeg[iSeg];
  Xfer *x = calloc(1, sizeof(Xfer));
  char zBuf[400];
  if( x==0 ) return 1;
  x->pJob = j;
  x->iSeg = iSeg;
  x->rRetryAfter = -1;
  x->iRangeStart = x->iRangeTotal = -1;
  x->tReq = trNow();
  x->h = curl_easy_init();
  if( x->h==0 ){ free(x); return 1; }
  curl_easy_setopt(x->h, CURLOPT_URL, j->zUrl);
  curl_easy_setopt(x->h, CURLOPT_PRIVATE, x);
  curl_easy_setopt(x->h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(x->h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(x->h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(x->h, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(x->h, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(x->h, CURLOPT_USERAGENT, p->zUserAgent);
  curl_easy_setopt(x->h, CURLOPT_CONNECTTIMEOUT, (long)p->sConnect);
  curl_easy_setopt(x->h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(x->h, CURLOPT_LOW_SPEED_TIME, (long)p->sLowSpeed);
  curl_easy_setopt(x->h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(x->h, CURLOPT_ERRORBUFFER, x->zCurlErr);
  curl_easy_setopt(x->h, CURLOPT_HEADERFUNCTION, onHeader);
  curl_easy_setopt(x->h, CURLOPT_HEADERDATA, x);
  curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, onBody);
  curl_easy_setopt(x->h, CURLOPT_WRITEDATA, x);
  curl_easy_setopt(x->h, CURLOPT_XFERINFOFUNCTION, onProgress);
  curl_easy_setopt(x->h, CURLOPT_XFERINFODATA, x);
  curl_easy_setopt(x->h, CURLOPT_NOPROGRESS, 0L);
  if( s->iPos>0 || (s->iEnd>=0 && s->iEnd<j->nSize) ){
    /* a piece, or a resumption: only if the file is the one we have */
    if( s->iEnd>=0 ){
      snprintf(zBuf, sizeof(zBuf), "%lld-%lld", (long long)s->iPos,
               (long long)s->iEnd-1);
    }else{
      snprintf(zBuf, sizeof(zBuf), "%lld-", (long long)s->iPos);
    }
    curl_easy_setopt(x->h, CURLOPT_RANGE, zBuf);
    x->bRange = 1;
    snprintf(zBuf, sizeof(zBuf), "If-Range: %s", rangeValidator(j));
    x->pHdr = curl_slist_append(x->pHdr, zBuf);
  }else if( j->bRevalidate ){
    if( j->old.zEtag[0] ){
      snprintf(zBuf, sizeof(zBuf), "If-None-Match: %s", j->old.zEtag);
      x->pHdr = curl_slist_append(x->pHdr, zBuf);
    }
    if( j->old.zLastMod[0] ){
      snprintf(zBuf, sizeof(zBuf), "If-Modified-Since: %s", j->old.zLastMod);
      x->pHdr = curl_slist_append(x->pHdr, zBuf);
    }
  }
  if( x->pHdr ) curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, x->pHdr);
  if( curl_multi_add_handle(p->pMulti, x->h)!=CURLM_OK ){
    xferFree(x);
    return 1;
  }
  s->pX = x;
  j->nRequest++;
  return 0;
}

/* Stop the transfers of pieces iFirst.. of j. */
static void jobStopFrom(Fetch *p, FetchJob *j, int iFirst){
  int i;
  for(i=iFirst; i<j->nSeg; i++){
    Xfer *x = j->aSeg[i].pX;
    if( x ){
      curl_multi_remove_handle(p->pMulti, x->h);
      xferFree(x);
      j->aSeg[i].pX = 0;
    }
  }
}

/* Stop every transfer of j (it failed, or the fetch is aborted). */
static void jobStopAll(Fetch *p, FetchJob *j){
  jobStopFrom(p, j, 0);
}

/* Stop every piece but piece 0, which stays as it is. */
static void jobStopOthers(Fetch *p, FetchJob *j){
  jobStopFrom(p, j, 1);
  j->nSeg = 1;
}

static void jobUseCache(Fetch *p, FetchJob *j);

static void jobFail(Fetch *p, FetchJob *j, const char *zFmt, ...){
  va_list ap;
  char zMsg[ERRMSG];
  va_start(ap, zFmt);
  vsnprintf(zMsg, sizeof(zMsg), zFmt, ap);
  va_end(ap);
  jobStopAll(p, j);
  jobCloseTmp(j, 1);
  j->t1 = trNow();
  if( j->bCached && !p->bRefresh ){
    /* the server is unreachable but a verified copy is at hand */
    j->zErr[0] = 0;
    jobUseCache(p, j);
    return;
  }
  snprintf(j->zErr, sizeof(j->zErr), "%s", zMsg);
  pthread_mutex_lock(&p->mu);
  j->eState = J_FAILED;
  pthread_mutex_unlock(&p->mu);
}

static int loaderOpened(void *pTag, int rc, const char *zErr,
                        const char *zSha256);

/* Hand the cached copy of j to the loader, unless it is the very file
** the state was loaded from and its rows are all there. */
static void jobUseCache(Fetch *p, FetchJob *j){
  j->bFromCache = 1;
  if( j->old.zSha256[0] && strcmp(j->old.zSha256, j->zLoadedSha)==0 ){
    pthread_mutex_lock(&p->mu);
    j->eState = J_LOADING;
    j->bLoaded = 1;
    j->nTract = j->nLoadedRows;
    j->t1 = trNow();
    pthread_mutex_unlock(&p->mu);
    return;
  }
  pthread_mutex_lock(&p->mu);
  j->eState = J_OPENING;
  pthread_mutex_unlock(&p->mu);
  if( trLoadAdd(p->pLoad, j->zCache, j->zUrl, j, loaderOpened) ){
    j->eState = J_FAILED;
    snprintf(j->zErr, sizeof(j->zErr), "out of memory");
  }
}

/* A transfer of j failed in a way worth retrying: schedule piece s. */
static void segRetry(Fetch *p, FetchJob *j, Seg *s, double rRetryAfter,
                     const char *zFmt, ...){
  char zMsg[ERRMSG];
  va_list ap;
  va_start(ap, zFmt);
  vsnprintf(zMsg, sizeof(zMsg), zFmt, ap);
  va_end(ap);
  j->nRetry++;
  if( j->nRetry > p->nRetryMax ){
    if( p->nRetryMax>0 ){
      jobFail(p, j, "%s after %d retr%s: %s", zMsg, p->nRetryMax,
              p->nRetryMax==1 ? "y" : "ies", j->zUrl);
    }else{
      jobFail(p, j, "%s: %s", zMsg, j->zUrl);
    }
    return;
  }
  if( !j->bRanges ){
    /* no resumption: the whole file again, once its pieces stop */
    jobStopAll(p, j);
    jobReset(j);
    s = &j->aSeg[0];
  }
  s->tWake = trNow() + backoff(p, j->nRetry, rRetryAfter);
}

/* The file is complete: flush it and let the loader verify and load it. */
static void jobComplete(Fetch *p, FetchJob *j){
  /* not synced here: a sync would stall every transfer on this thread;
  ** loaderOpened syncs it, on a loader thread, before it enters the cache */
  if( close(j->fd) ){
    j->fd = -1;
    jobFail(p, j, "cannot write %s: %s", j->zTmp, strerror(errno));
    return;
  }
  j->fd = -1;
  j->bFromCache = 0;
  pthread_mutex_lock(&p->mu);
  j->eState = J_OPENING;
  pthread_mutex_unlock(&p->mu);
  if( trLoadAdd(p->pLoad, j->zTmp, j->zUrl, j, loaderOpened) ){
    jobFail(p, j, "out of memory");
  }
}

/* A transfer finished (res is libcurl's result). */
static void xferDone(Fetch *p, Xfer *x, CURLcode res){
  FetchJob *j = x->pJob;
  Seg *s = &j->aSeg[x->iSeg];
  long code = 0;
  curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &code);
  curl_multi_remove_handle(p->pMulti, x->h);
  s->pX = 0;
  if( x->tFirst>0 && x->nGot>0 ){
    p->rDoneBytes += (double)x->nGot;
    p->rDoneTime += trNow() - x->tFirst;
  }
  if( code ) j->status = (int)code;
  if( j->eState!=J_RUN ){
    /* the job failed or restarted while this piece was running */
  }else if( x->bRestart ){
    /* the server refused a range: never ask it for one again */
    Seg *s0 = &j->aSeg[0];
    j->bRanges = 0;
    j->bNoRanges = 1;
    if( x->iSeg!=0 && s0->pX && !s0->pX->bRange && j->nSize>=0 ){
      /* piece 0 streams the whole file: it brings the rest too */
      jobStopOthers(p, j);
      s0->iEnd = j->nSize;
    }else{
      segRetry(p, j, s, -1, "the server ignored a Range request");
    }
  }else if( x->bNotZip ){
    segRetry(p, j, s, -1, x->bHtml || x->zStart[0]=='<'
             ? "the server sent an HTML page, not a zip"
             : "the server sent something other than a zip (it starts '%s')",
             x->zStart);
  }else if( code==304 && j->bRevalidate && !x->bRange ){
    jobStopAll(p, j);
    jobCloseTmp(j, 1);
    jobUseCache(p, j);
  }else if( (code==404 || code==410) && trKindNational(p->pLayer->pKind) ){
    jobFail(p, j, "HTTP %ld Not Found: %s (the server does not publish %s "
            "for %d at %s)", code, j->zUrl, p->pLayer->pKind->zName, p->year,
            p->zRes);
  }else if( code==404 || code==410 ){
    jobFail(p, j, "HTTP %ld Not Found: %s", code, j->zUrl);
  }else if( code==403 ){
    jobFail(p, j, "HTTP 403 Forbidden: %s (the server refused this client; "
            "another user_agent setting may help)", j->zUrl);
  }else if( code==416 ){
    j->bRanges = 0;
    segRetry(p, j, s, -1, "HTTP 416 Range Not Satisfiable");
  }else if( code>=400 && code!=408 && code!=429 && code<500 ){
    jobFail(p, j, "HTTP %ld: %s", code, j->zUrl);
  }else if( code>=400 ){
    segRetry(p, j, s, (code==429 || code==503) ? x->rRetryAfter : -1,
             "HTTP %ld", code);
  }else if( res==CURLE_OK || (res==CURLE_WRITE_ERROR && x->bClipped) ){
    if( code!=200 && code!=206 ){
      jobFail(p, j, "unexpected HTTP %ld: %s", code, j->zUrl);
    }else if( s->iEnd<0 && code==200 ){
      /* no Content-Length: the end of the body is the end of the file */
      s->iEnd = s->iPos;
      j->nSize = s->iPos;
    }
    if( j->eState!=J_RUN ){
      /* failed above */
    }else if( j->nSize==0 ){
      segRetry(p, j, s, -1, "the server sent an empty body");
    }else if( s->iEnd<0 || s->iPos<s->iEnd ){
      segRetry(p, j, s, -1, "the body was truncated");
    }
  }else if( res==CURLE_WRITE_ERROR && j->zErr[0] ){
    jobFail(p, j, "%s", j->zErr);
  }else if( res==CURLE_ABORTED_BY_CALLBACK ){
    /* interrupted: the caller cleans up */
  }else if( res==CURLE_PEER_FAILED_VERIFICATION || res==CURLE_SSL_CACERT_BADFILE
         || res==CURLE_SSL_CERTPROBLEM || res==CURLE_UNSUPPORTED_PROTOCOL
         || res==CURLE_URL_MALFORMAT || res==CURLE_TOO_MANY_REDIRECTS ){
    jobFail(p, j, "%s: %s", x->zCurlErr[0] ? x->zCurlErr
            : curl_easy_strerror(res), j->zUrl);
  }else{
    segRetry(p, j, s, -1, "%s", curl_easy_strerror(res));
  }
  xferFree(x);
  if( j->eState==J_RUN && jobDone(j) ) jobComplete(p, j);
}

/* ---- the loader's side ------------------------------------------------- */

/* Called on a loader thread when file j has been opened (or not). A
** downloaded file that opened is renamed into the cache; a damaged one
** is deleted and fetched again while retries remain. */
static int loaderOpened(void *pTag, int rc, const char *zErr,
                        const char *zSha256){
  FetchJob *j = (FetchJob*)pTag;
  Fetch *p = j->pF;
  int bWithdraw = 0;
  if( rc==-1 ){
    /* never opened (the fetch was stopped) */
    if( !j->bFromCache && j->zTmp ) unlink(j->zTmp);
    return 0;
  }
  if( j->bFromCache ){
    if( rc==2 ){
      /* the cached copy is damaged: drop it and download it again */
      char zMeta[4200];
      snprintf(zMeta, sizeof(zMeta), "%s.meta", j->zCache);
      unlink(j->zCache);
      unlink(zMeta);
      pthread_mutex_lock(&p->mu);
      j->bCached = j->bRevalidate = 0;
      if( !p->bOffline && !__atomic_load_n(&p->bAbort, __ATOMIC_RELAXED) ){
        j->eState = J_QUEUED;
        bWithdraw = 1;
      }
      pthread_mutex_unlock(&p->mu);
      if( bWithdraw ) curl_multi_wakeup(p->pMulti);
    }
    if( !bWithdraw ){
      pthread_mutex_lock(&p->mu);
      j->eState = J_LOADING;
      pthread_mutex_unlock(&p->mu);
    }
    return bWithdraw;
  }
  if( rc==0 ){
    CacheMeta m;
    struct tm tm;
    time_t t = time(0);
    memset(&m, 0, sizeof(m));
    snprintf(m.zUrl, sizeof(m.zUrl), "%s", j->zUrl);
    snprintf(m.zEtag, sizeof(m.zEtag), "%s", j->zEtag);
    snprintf(m.zLastMod, sizeof(m.zLastMod), "%s", j->zLastMod);
    snprintf(m.zSha256, sizeof(m.zSha256), "%s", zSha256 ? zSha256 : "");
    gmtime_r(&t, &tm);
    strftime(m.zFetched, sizeof(m.zFetched), "%Y-%m-%dT%H:%M:%SZ", &tm);
    m.nBytes = j->nSize;
    if( syncFile(j->zTmp)==0 && rename(j->zTmp, j->zCache)==0 ){
      metaWrite(j->zCache, &m);
    }else{
      unlink(j->zTmp);     /* loaded all the same, just not kept */
    }
  }else{
    unlink(j->zTmp);
  }
  pthread_mutex_lock(&p->mu);
  if( rc==2 && j->nRetry < p->nRetryMax
   && !__atomic_load_n(&p->bAbort, __ATOMIC_RELAXED) ){
    /* damaged in transit: fetch it again */
    j->nRetry++;
    j->eState = J_QUEUED;
    bWithdraw = 1;
  }else{
    j->eState = J_LOADING;
    if( rc==2 && p->nRetryMax>0 ){
      snprintf(j->zErr, sizeof(j->zErr), "after %d retr%s", p->nRetryMax,
               p->nRetryMax==1 ? "y" : "ies");
    }
  }
  pthread_mutex_unlock(&p->mu);
  if( bWithdraw ) curl_multi_wakeup(p->pMulti);
  (void)zErr;
  return bWithdraw;
}

/* ---- the download thread ------------------------------------------------ */

/* Begin job j: the cache decides whether it needs the network. */
static void jobStart(Fetch *p, FetchJob *j){
  int rc;
  j->t0 = trNow();
  j->zErr[0] = 0;
  if( !p->bRefresh && j->bCached && (p->bOffline || !j->bRevalidate) ){
    jobUseCache(p, j);
    return;
  }
  if( p->bOffline ){
    snprintf(j->zErr, sizeof(j->zErr), "not in the cache (offline): %s",
             j->zUrl);
    j->eState = J_FAILED;
    return;
  }
  rc = makeDirs(j->zCache, 1);
  if( rc ){
    jobFail(p, j, "cannot create the cache directory for %s: %s", j->zCache,
            strerror(rc));
    return;
  }
  sqlite3_free(j->zTmp);    /* a file fetched again after a damaged copy */
  j->zTmp = sqlite3_mprintf("%s.%d.%08x.part", j->zCache, (int)getpid(),
                            (unsigned)(rand01(p)*4294967295.0));
  if( j->zTmp==0 ){ jobFail(p, j, "out of memory"); return; }
  j->fd = open(j->zTmp, O_RDWR|O_CREAT|O_EXCL|O_CLOEXEC, 0666);
  if( j->fd<0 ){
    int e = errno;
    sqlite3_free(j->zTmp);
    j->zTmp = 0;
    jobFail(p, j, "cannot create %s: %s", j->zCache, strerror(e));
    return;
  }
  j->bFromCache = 0;
  j->eState = J_RUN;
  jobReset(j);
}

/* ---- planning the pieces ------------------------------------------------
**
** Each request costs a connection the server's latency L before its first
** byte; then the connection brings R bytes a second. Both are measured as
** the fetch goes. The work left is the rest of every running transfer,
** plus L and the bytes of every piece and file still to start (a file not
** started yet is guessed from its expected tracts and the bytes per tract
** seen so far). Shared among the connections, it says when the fetch
** should end: T.
**
** A file should arrive by T less PLAN_LOAD times what its bytes take at
** the whole fetch's rate. Once that time is about what its load takes
** after it arrives; twice leaves room for the files loading before it.
** (Measured on the benchmark of bench/fetch_bench.py: with once, the
** biggest files arrive near the end and their loads queue; two and three
** times came out alike, four split more than it saved.) So planSplit cuts
** a file that would arrive later into as few Range pieces as arrive in
** time, the others starting as connections come free. A connection with
** nothing left to start takes the second half of the transfer that would
** end last, when that ends it sooner. No piece is shorter than split_kb.
** Every cut costs a request, and so L on some connection: this makes
** about 56 requests for the 52 files of the benchmark, where cutting
** every file over 2 MB into up to 4 pieces made 76 and ended later. */

/* Bytes a second one connection brings (from finished transfers and ones
** that have run PLAN_MEASURE seconds), 0 before that is known; the mean
** latency L in *pL. */
static double connRate(Fetch *p, double tNow, double *pL){
  double b = p->rDoneBytes, t = p->rDoneTime;
  int i, k;
  for(i=0; i<p->nJob; i++){
    FetchJob *j = &p->aJob[i];
    for(k=0; k<j->nSeg; k++){
      Xfer *x = j->aSeg[k].pX;
      if( x && x->tFirst>0 && tNow-x->tFirst>=PLAN_MEASURE ){
        b += (double)x->nGot;
        t += tNow - x->tFirst;
      }
    }
  }
  *pL = p->nLat ? p->rLatSum/p->nLat : 0.0;
  return t>=PLAN_MEASURE && b>0 ? b/t : 0.0;
}

/* Seconds until transfer x of piece s ends, at R bytes a second (nLeft
** its remaining bytes). */
static double xferLeft(const Xfer *x, int64_t nLeft, double tNow, double R,
                       double L){
  double lat = x->tFirst>0 ? 0.0 : L - (tNow - x->tReq);
  return (lat>0 ? lat : 0.0) + (double)(nLeft>0 ? nLeft : 0)/R;
}

static int cmpDouble(const void *a, const void *b){
  double x = *(const double*)a, y = *(const double*)b;
  return x<y ? -1 : x>y;
}

/* Decide the pieces of job j, whose piece 0 streams the whole file and
** whose size is known (see the comment above), R and L as connRate
** measured them. */
static void planSplit(Fetch *p, FetchJob *j, double tNow, double R,
                      double L){
  Seg *s0 = &j->aSeg[0];
  double rW = 0.0, rNeed, T, D, aEnd[64];
  double rKnown = 0.0, rKnownW = 0.0, rRatio;
  int i, k, nEnd = 0, nActive = 0, nPend = 0, kBest = 0;
  int64_t aB[MAX_SEG+1], aBest[MAX_SEG+1];
  j->bPlanned = 1;
  for(i=0; i<p->nJob; i++){
    if( p->aJob[i].nSize>0 ){
      rKnown += (double)p->aJob[i].nSize;
      rKnownW += p->aJob[i].nWeight;
    }
  }
  rRatio = rKnownW>0 ? rKnown/rKnownW : 0.0;
  for(i=0; i<p->nJob; i++){
    FetchJob *jj = &p->aJob[i];
    if( jj->eState==J_QUEUED ){
      /* a cached copy is most likely still current: a 304 */
      rW += L + (jj->bRevalidate ? 0.0 : jj->nWeight*rRatio/R);
      continue;
    }
    if( jj->eState!=J_RUN ) continue;
    for(k=0; k<jj->nSeg; k++){
      Seg *s = &jj->aSeg[k];
      int64_t iLast = s->iEnd>=0 ? s->iEnd : (int64_t)(jj->nWeight*rRatio);
      if( s->pX ){
        nActive++;
        if( jj==j && k==0 ) continue;
        if( nEnd<64 ){
          aEnd[nEnd] = xferLeft(s->pX, iLast - s->iPos, tNow, R, L);
          rW += aEnd[nEnd++];
        }
      }else if( s->iEnd>s->iPos ){
        nPend++;
        rW += L + (double)(s->iEnd - s->iPos)/R;
      }
    }
  }
  for(i=nActive; i<p->nConn && nEnd<64; i++) aEnd[nEnd++] = 0.0;
  qsort(aEnd, (size_t)nEnd, sizeof(double), cmpDouble);
  rNeed = (double)(j->nSize - s0->iPos)/R;
  T = (rW + rNeed)/p->nConn;
  D = T - PLAN_LOAD*(double)j->nSize/(p->nConn*R);
  if( rNeed<=D ) return;
  /* k pieces: this one, and k-1 starting as the next connections not
  ** already promised to waiting pieces come free, all ending at E */
  for(k=2; k<=MAX_SEG && nPend+k-1<=nEnd; k++){
    double E = rNeed, rDue;
    int bOk = 1;
    for(i=0; i<k-1; i++) E += aEnd[nPend+i] + L;
    E /= k;
    aB[0] = s0->iPos;
    aB[1] = s0->iPos + (int64_t)(E*R);
    for(i=1; i<k; i++){
      if( i>1 ) aB[i] = aB[i-1] + (int64_t)((E - aEnd[nPend+i-2] - L)*R);
      aB[i] -= aB[i] % SPLIT_ALIGN;
      if( aB[i] - aB[i-1] < p->nSplit ) bOk = 0;
    }
    aB[k] = j->nSize;
    if( aB[k] - aB[k-1] < p->nSplit ) bOk = 0;
    if( !bOk ) break;
    kBest = k;
    memcpy(aBest, aB, sizeof(int64_t)*(size_t)(k+1));
    rDue = T + (k-1)*L/p->nConn - PLAN_LOAD*(double)j->nSize/(p->nConn*R);
    if( E<=rDue ) break;
  }
  if( kBest<2 ) return;
  s0->iEnd = aBest[1];
  for(k=1; k<kBest; k++){
    Seg *t = &j->aSeg[j->nSeg++];
    memset(t, 0, sizeof(*t));
    t->iPos = aBest[k];
    t->iEnd = aBest[k+1];
  }
}

/* Plan the files whose size is known, once the connections' speed is. */
static void planWork(Fetch *p){
  double tNow = trNow(), R, L;
  int i;
  if( p->nSplit<=0 ) return;
  R = connRate(p, tNow, &L);
  if( R<=0.0 ) return;                  /* not yet known: later */
  for(i=0; i<p->nJob; i++){
    FetchJob *j = &p->aJob[i];
    Xfer *x = j->aSeg[0].pX;
    if( j->eState==J_RUN && j->bRanges && !j->bPlanned && j->nSeg==1
     && x && x->tFirst>0 && !x->bRange && j->aSeg[0].iEnd==j->nSize ){
      planSplit(p, j, tNow, R, L);
    }
  }
}

/* An idle connection with nothing to start: take the second half of the
** transfer that would end last, if that ends it sooner by more than a
** request's latency costs. Returns the job and the new piece, or 0. */
static FetchJob *splitLatest(Fetch *p, int *piSeg){
  FetchJob *jBest = 0;
  Seg *sBest = 0;
  double tNow = trNow(), R, L, rBest = 0.0, lat = 0.0;
  int i, k;
  int64_t iMid;
  if( p->nSplit<=0 ) return 0;
  R = connRate(p, tNow, &L);
  if( R<=0.0 ) return 0;                /* no cut before speed is known */
  for(i=0; i<p->nJob; i++){
    FetchJob *j = &p->aJob[i];
    if( j->eState!=J_RUN || !j->bRanges || j->nSeg>=MAX_SEG ) continue;
    for(k=0; k<j->nSeg; k++){
      Seg *s = &j->aSeg[k];
      double t;
      if( s->pX==0 || s->iEnd<0 ) continue;
      t = xferLeft(s->pX, s->iEnd - s->iPos, tNow, R, L);
      if( t>rBest ){ rBest = t; jBest = j; sBest = s; }
    }
  }
  /* the new piece waits L, the old one goes on: both end at once when
  ** the old stops at iMid; worth it if that is 0.05 s sooner */
  if( jBest==0 || rBest - L < 0.1 ) return 0;
  if( sBest->pX->tFirst<=0 ){
    lat = L - (tNow - sBest->pX->tReq);
    if( lat<0 ) lat = 0;
  }
  iMid = (sBest->iPos + sBest->iEnd + (int64_t)((L - lat)*R))/2;
  iMid -= iMid % SPLIT_ALIGN;
  if( iMid<=sBest->iPos || sBest->iEnd - iMid < p->nSplit ) return 0;
  {
    Seg *sNew = &jBest->aSeg[jBest->nSeg];
    memset(sNew, 0, sizeof(*sNew));
    sNew->iPos = iMid;
    sNew->iEnd = sBest->iEnd;
    sBest->iEnd = iMid;
    *piSeg = jBest->nSeg++;
  }
  return jBest;
}

/* Transfers running now. */
static int activeCount(Fetch *p){
  int i, k, n = 0;
  for(i=0; i<p->nJob; i++){
    for(k=0; k<p->aJob[i].nSeg; k++) n += p->aJob[i].aSeg[k].pX!=0;
  }
  return n;
}

/* Fill idle connections: pieces due for a retry, then new files, then
** splits. Returns the seconds until the next piece is due (for the poll
** timeout), or a large value. */
static double startWork(Fetch *p){
  double tNow = trNow(), tNext = 1e9;
  int i, k, iNext = 0, nActive = activeCount(p);
  for(;;){
    FetchJob *jPick = 0;
    int iSeg = -1;
    if( nActive>=p->nConn ) break;
    /* a piece that is due */
    for(i=0; i<p->nJob && jPick==0; i++){
      FetchJob *j = &p->aJob[i];
      if( j->eState!=J_RUN ) continue;
      for(k=0; k<j->nSeg; k++){
        Seg *s = &j->aSeg[k];
        if( s->pX || (s->iEnd>=0 && s->iPos>=s->iEnd) ) continue;
        if( s->iEnd<0 && k>0 ) continue;
        if( s->tWake<=tNow ){ jPick = j; iSeg = k; break; }
        if( s->tWake-tNow < tNext ) tNext = s->tWake-tNow;
      }
    }
    /* a file not yet started */
    while( jPick==0 && iNext<p->nJob ){
      FetchJob *j = &p->aJob[p->aOrder[iNext++]];
      int e;
      pthread_mutex_lock(&p->mu);
      e = j->eState;
      pthread_mutex_unlock(&p->mu);
      if( e!=J_QUEUED ) continue;
      jobStart(p, j);
      if( j->eState==J_RUN ){ jPick = j; iSeg = 0; }
    }
    if( jPick==0 ) jPick = splitLatest(p, &iSeg);
    if( jPick==0 ) break;
    if( xferStart(p, jPick, iSeg) ){
      jobFail(p, jPick, "out of memory");
      continue;
    }
    nActive++;
  }
  return tNext;
}

static void progressDraw(Fetch *p, int bFinal){
  int i, nDone = 0, nKnown = 0;
  int64_t nKnownBytes = 0;
  double t = trNow() - p->t0, rate, est;
  char zEta[32] = "";
  if( !p->bProgress ) return;
  for(i=0; i<p->nJob; i++){
    FetchJob *j = &p->aJob[i];
    int e = __atomic_load_n(&j->eState, __ATOMIC_RELAXED);
    if( e==J_LOADING || e==J_FAILED ) nDone++;
    if( j->nSize>=0 ){ nKnown++; nKnownBytes += j->nSize; }
  }
  rate = t>0 ? (double)p->nGot/t : 0;
  est = nKnown ? (double)nKnownBytes/nKnown*p->nJob : 0;
  if( !bFinal && rate>0 && est>(double)p->nGot ){
    snprintf(zEta, sizeof(zEta), ", ETA %.0f s", (est-(double)p->nGot)/rate);
  }
  fprintf(stderr, "\r%s: %d/%d states, %.1f MB, %.1f MB/s%s\033[K%s",
          p->zFunc, nDone, p->nJob, (double)p->nGot/1e6, rate/1e6, zEta,
          bFinal ? "\n" : "");
  fflush(stderr);
  p->bDrew = 1;
}

static void *fetchThread(void *pArg){
  Fetch *p = (Fetch*)pArg;
  int i;
  for(;;){
    int nRunning = 0, bLeft = 0, nMsg, nEnded = 0;
    double tNext;
    CURLMsg *m;
    if( __atomic_load_n(&p->bAbort, __ATOMIC_RELAXED) ) break;
    planWork(p);
    tNext = startWork(p);
    curl_multi_perform(p->pMulti, &nRunning);
    while( (m = curl_multi_info_read(p->pMulti, &nMsg))!=0 ){
      Xfer *x = 0;
      if( m->msg!=CURLMSG_DONE ) continue;
      curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char**)&x);
      xferDone(p, x, m->data.result);
      nEnded++;
    }
    if( p->bProgress && trNow()-p->tDrawn>0.25 ){
      progressDraw(p, 0);
      p->tDrawn = trNow();
    }
    pthread_mutex_lock(&p->mu);
    for(i=0; i<p->nJob; i++){
      int e = p->aJob[i].eState;
      if( e!=J_LOADING && e!=J_FAILED ) bLeft = 1;
    }
    pthread_mutex_unlock(&p->mu);
    if( !bLeft ) break;
    /* files requeued by the loader start at the next startWork; a
    ** connection a transfer just left starts its next one at once */
    if( nEnded==0 ){
      curl_multi_poll(p->pMulti, 0, 0, tNext<0.099 ? (int)(tNext*1000)+1 : 100, 0);
    }
  }
  /* stop what still runs (an abort); temporary files go */
  for(i=0; i<p->nJob; i++){
    FetchJob *j = &p->aJob[i];
    if( j->eState==J_RUN || j->eState==J_QUEUED ){
      jobStopAll(p, j);
      jobCloseTmp(j, 1);
      if( j->zErr[0]==0 ) snprintf(j->zErr, sizeof(j->zErr), "interrupted");
      pthread_mutex_lock(&p->mu);
      j->eState = J_FAILED;
      pthread_mutex_unlock(&p->mu);
    }
  }
  if( p->bProgress && p->bDrew ) progressDraw(p, 1);
  trLoadClose(p->pLoad);
  return 0;
}

/* ---- the fetch_tracts virtual table ------------------------------------ */

#define FT_STATE      0
#define FT_FIPS       1
#define FT_URL        2
#define FT_STATUS     3
#define FT_BYTES      4
#define FT_FROM_CACHE 5
#define FT_REQUESTS   6
#define FT_SECONDS    7
#define FT_TRACTS     8
#define FT_ERROR      9
#define FT_ARG0       10    /* fetch_boundaries: layer; fetch_tracts: states */
#define FT_SCHEMA "CREATE TABLE x(state TEXT, fips TEXT, url TEXT, " \
  "status INTEGER, bytes INTEGER, from_cache INTEGER, requests INTEGER, " \
  "seconds REAL, tracts INTEGER, error TEXT, " \
  "states HIDDEN, year HIDDEN, options HIDDEN)"
#define FB_SCHEMA "CREATE TABLE x(state TEXT, fips TEXT, url TEXT, " \
  "status INTEGER, bytes INTEGER, from_cache INTEGER, requests INTEGER, " \
  "seconds REAL, features INTEGER, error TEXT, layer HIDDEN, " \
  "states HIDDEN, year HIDDEN, resolution HIDDEN, options HIDDEN)"

typedef struct FtVtab FtVtab;
struct FtVtab {
  sqlite3_vtab base;       /* a TrVtab */
  TractsConn *pConn;
  int bBoundaries;         /* fetch_boundaries */
};

typedef struct FtRow FtRow;
struct FtRow {
  char zUsps[3], zFips[12];
  char *zUrl, *zError;
  int status, bFromCache, nRequest, nTract;
  int64_t nBytes;
  double rSeconds;
};

typedef struct FtCursor FtCursor;
struct FtCursor {
  sqlite3_vtab_cursor base;
  FtRow *aRow;
  int nRow, iRow;
};

static int ftConnect(sqlite3 *db, void *pAux, int argc,
                     const char *const *argv, sqlite3_vtab **ppVtab,
                     char **pzErr){
  (void)argc; (void)argv; (void)pzErr;
  return trVtabConnect(db, pAux, FT_SCHEMA, sizeof(FtVtab), 1, ppVtab);
}

static int fbConnect(sqlite3 *db, void *pAux, int argc,
                     const char *const *argv, sqlite3_vtab **ppVtab,
                     char **pzErr){
  int rc = trVtabConnect(db, pAux, FB_SCHEMA, sizeof(FtVtab), 1, ppVtab);
  (void)argc; (void)argv; (void)pzErr;
  if( rc==SQLITE_OK ) ((FtVtab*)*ppVtab)->bBoundaries = 1;
  return rc;
}

static int ftOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCur){
  (void)pVtab;
  return trCursorNew(sizeof(FtCursor), ppCur);
}

static void ftRowsFree(FtCursor *c){
  int i;
  for(i=0; i<c->nRow; i++){
    sqlite3_free(c->aRow[i].zUrl);
    sqlite3_free(c->aRow[i].zError);
  }
  sqlite3_free(c->aRow);
  c->aRow = 0;
  c->nRow = c->iRow = 0;
}

static int ftClose(sqlite3_vtab_cursor *cur){
  ftRowsFree((FtCursor*)cur);
  sqlite3_free(cur);
  return SQLITE_OK;
}

/* Parse the states argument into aPick (indexes into aState), in order,
** without duplicates. Returns the count, or -1 with *pzErr. */
static int parseStates(const char *zFunc, const char *z, int *aPick,
                       char **pzErr){
  int n = 0, i;
  char aSeen[N_STATE];
  memset(aSeen, 0, sizeof(aSeen));
  while( *z ){
    char zTok[16];
    int m = 0, iFound = -1;
    while( *z==',' || *z==' ' || *z=='\t' ) z++;
    if( *z==0 ) break;
    while( *z && *z!=',' && *z!=' ' && *z!='\t' ){
      if( m<(int)sizeof(zTok)-1 ) zTok[m++] = *z;
      z++;
    }
    zTok[m] = 0;
    if( strcmp(zTok, "*")==0 ){
      for(i=0; i<N_STATE; i++){
        if( !aSeen[i] ){ aSeen[i] = 1; aPick[n++] = i; }
      }
      continue;
    }
    for(i=0; i<N_STATE; i++){
      char *zEnd = 0;
      long v;
      if( strcasecmp(zTok, aState[i].zUsps)==0 ){ iFound = i; break; }
      v = strtol(zTok, &zEnd, 10);
      if( m>0 && m<=2 && zEnd && *zEnd==0 && v==aState[i].iFips ){
        iFound = i; break;
      }
    }
    if( iFound<0 ){
      *pzErr = sqlite3_mprintf("%s: unknown state '%s' (USPS codes "
                               "like RI, FIPS codes like 44, or '*' for all)",
                               zFunc, zTok);
      return -1;
    }
    if( !aSeen[iFound] ){ aSeen[iFound] = 1; aPick[n++] = iFound; }
  }
  if( n==0 ){
    *pzErr = sqlite3_mprintf("%s: no states given (USPS codes like "
                             "RI, FIPS codes like 44, or '*' for all)", zFunc);
    return -1;
  }
  return n;
}

/* Options: refresh, offline, strict. 0, or 1 with *pzErr. */
static int parseOptions(const char *zFunc, const char *z, int *pbRefresh,
                        int *pbOffline, int *pbStrict, char **pzErr){
  while( z && *z ){
    char zTok[32];
    int m = 0;
    while( *z==',' || *z==' ' ) z++;
    if( *z==0 ) break;
    while( *z && *z!=',' && *z!=' ' ){
      if( m<(int)sizeof(zTok)-1 ) zTok[m++] = *z;
      z++;
    }
    zTok[m] = 0;
    if( strcmp(zTok, "refresh")==0 ) *pbRefresh = 1;
    else if( strcmp(zTok, "offline")==0 ) *pbOffline = 1;
    else if( strcmp(zTok, "strict")==0 ) *pbStrict = 1;
    else{
      *pzErr = sqlite3_mprintf("%s: unknown option '%s' (known: "
                               "refresh, offline, strict)", zFunc, zTok);
      return 1;
    }
  }
  return 0;
}

static void curlInitOnce(void){
  curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Remove temporary files (.part) older than a day from a cache directory:
** what a killed process left. Others' recent ones are theirs. */
static void sweepOldParts(const char *zDir){
  DIR *d = opendir(zDir);
  struct dirent *e;
  time_t tNow = time(0);
  if( d==0 ) return;
  while( (e = readdir(d))!=0 ){
    size_t n = strlen(e->d_name);
    char zPath[4200];
    struct stat st;
    if( n<5 || strcmp(e->d_name+n-5, ".part")!=0 ) continue;
    if( snprintf(zPath, sizeof(zPath), "%s/%s", zDir, e->d_name)
        >=(int)sizeof(zPath) ) continue;
    if( stat(zPath, &st)==0 && tNow - st.st_mtime > 86400 ) unlink(zPath);
  }
  closedir(d);
}

/* What tracts_files says state zFips ("*": a layer a file replaces
** whole) of layer L was loaded from, if its rows are all still in the
** layer's table: the sha256 into zSha, the row count. */
static void loadedFrom(sqlite3 *db, const TrLayer *L, const char *zFips,
                       char *zSha, int *pnRow){
  sqlite3_stmt *pStmt = 0;
  char *zSql;
  zSha[0] = 0;
  *pnRow = 0;
  if( L->zGroup ){
    zSql = sqlite3_mprintf("SELECT f.sha256, f.tracts, (SELECT count(*) "
        "FROM main.\"%w\" WHERE \"%w\"=?1) FROM main.tracts_files f WHERE "
        "f.layer=%Q AND f.state=?1", L->zTable, L->zGroup, L->zName);
  }else{
    zSql = sqlite3_mprintf("SELECT f.sha256, f.tracts, (SELECT count(*) "
        "FROM main.\"%w\") FROM main.tracts_files f WHERE "
        "f.layer=%Q AND f.state=?1", L->zTable, L->zName);
  }
  if( zSql && sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0)==SQLITE_OK ){
    sqlite3_bind_text(pStmt, 1, zFips, -1, SQLITE_STATIC);
    if( sqlite3_step(pStmt)==SQLITE_ROW && sqlite3_column_text(pStmt, 0)
     && sqlite3_column_int(pStmt, 1)==sqlite3_column_int(pStmt, 2)
     && sqlite3_column_bytes(pStmt, 0)==64 ){
      memcpy(zSha, sqlite3_column_text(pStmt, 0), 65);
      *pnRow = sqlite3_column_int(pStmt, 1);
    }
  }
  sqlite3_finalize(pStmt);
  sqlite3_free(zSql);
}

/* Jobs, larger expected files first (the longest transfers start early,
** so the end is not one big file on one connection). */
static int cmpJobSize(const void *a, const void *b, void *pJobs){
  const FetchJob *aJob = (const FetchJob*)pJobs;
  const FetchJob *x = &aJob[*(const int*)a], *y = &aJob[*(const int*)b];
  if( x->nWeight!=y->nWeight ) return x->nWeight>y->nWeight ? -1 : 1;
  return *(const int*)a - *(const int*)b;
}

/* Set up the jobs of p for the states aPick[0..n-1]. */
static int fetchSetup(Fetch *p, const int *aPick, int n, int year,
                      const char *zBase, const char *zDir){
  int i;
  p->aJob = sqlite3_malloc64(sizeof(FetchJob)*(sqlite3_uint64)n);
  p->aOrder = sqlite3_malloc64(sizeof(int)*(sqlite3_uint64)n);
  if( p->aJob==0 || p->aOrder==0 ) return SQLITE_NOMEM;
  memset(p->aJob, 0, sizeof(FetchJob)*(size_t)n);
  for(i=0; i<n; i++) p->aJob[i].fd = -1;
  p->nJob = n;
  for(i=0; i<n; i++){
    FetchJob *j = &p->aJob[i];
    j->pF = p;
    j->fd = -1;
    if( aPick[i]<0 ){
      j->iFips = -1;             /* the national file */
      j->zUsps = "US";
      j->nWeight = 1;
    }else{
      j->iFips = aState[aPick[i]].iFips;
      j->zUsps = aState[aPick[i]].zUsps;
      j->nWeight = aState[aPick[i]].nTract;
    }
    p->aOrder[i] = i;
    {
      char zSt[8];
      char *zFile;
      snprintf(zSt, sizeof(zSt), "%02d", j->iFips);
      zFile = trKindFile(p->pLayer->pKind, year, zSt, p->zRes);
      j->zUrl = zFile ? sqlite3_mprintf("%s%s", zBase, zFile) : 0;
      sqlite3_free(zFile);
    }
    if( j->zUrl==0 ) return SQLITE_NOMEM;
    j->zCache = cachePath(zDir, j->zUrl);
    if( j->zCache==0 ) return SQLITE_NOMEM;
    if( !p->bRefresh && (j->iFips>=0 || p->pLayer->zGroup==0) ){
      char zFips[3];
      snprintf(zFips, sizeof(zFips), "%02d", j->iFips);
      loadedFrom(p->pConn->db, p->pLayer, j->iFips>=0 ? zFips : "*",
                 j->zLoadedSha, &j->nLoadedRows);
    }
    if( !p->bRefresh && metaRead(j->zCache, &j->old)==0 ){
      j->bCached = 1;
      j->bRevalidate = j->old.zEtag[0] || j->old.zLastMod[0];
    }else if( !p->bRefresh && access(j->zCache, R_OK)==0 ){
      j->bCached = 1;      /* a copy without metadata: used when offline */
      if( !p->bOffline ) j->bCached = 0;
    }
    if( i==0 || strcmp(j->zCache, p->aJob[0].zCache)!=0 ){
      char *zSlash = strrchr(j->zCache, '/');
      if( zSlash ){
        *zSlash = 0;
        sweepOldParts(j->zCache);
        *zSlash = '/';
      }
    }
  }
  qsort_r(p->aOrder, (size_t)n, sizeof(int), cmpJobSize, p->aJob);
  return SQLITE_OK;
}

static void fetchFree(Fetch *p){
  int i;
  for(i=0; i<p->nJob; i++){
    FetchJob *j = &p->aJob[i];
    jobStopAll(p, j);
    jobCloseTmp(j, 1);
    sqlite3_free(j->zUrl);
    sqlite3_free(j->zCache);
    sqlite3_free(j->zLoadErr);
  }
  sqlite3_free(p->aJob);
  sqlite3_free(p->aOrder);
  if( p->pMulti ) curl_multi_cleanup(p->pMulti);
  sqlite3_free(p->zUserAgent);
  pthread_mutex_destroy(&p->mu);
}

/* Run the fetch: the download thread feeds the loader; this thread writes
** what it loads. Returns SQLITE_OK, SQLITE_NOMEM or SQLITE_INTERRUPT. */
static int fetchRun(Fetch *p){
  sqlite3 *db = p->pConn->db;
  int rc = SQLITE_OK;
  p->t0 = trNow();
  p->pLoad = trLoadNew(p->pConn, p->pLayer, p->zFunc);
  if( p->pLoad==0 ) return SQLITE_ERROR;
  p->pMulti = curl_multi_init();
  if( p->pMulti==0 ){ trLoadFree(p->pLoad); p->pLoad = 0; return SQLITE_NOMEM; }
  curl_multi_setopt(p->pMulti, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)p->nConn);
  curl_multi_setopt(p->pMulti, CURLMOPT_MAX_HOST_CONNECTIONS, (long)p->nConn);
  curl_multi_setopt(p->pMulti, CURLMOPT_PIPELINING, CURLPIPE_NOTHING);
  trMonitorMark(p->pConn, p->zFunc);
  if( pthread_create(&p->tid, 0, fetchThread, p) ){
    trLoadFree(p->pLoad);
    p->pLoad = 0;
    return SQLITE_ERROR;
  }
  for(;;){
    TrLoadRow row;
    void *pTag = 0;
    int rcStep = trLoadStep(p->pLoad, 100, &row, &pTag);
    if( rcStep==SQLITE_ROW ){
      FetchJob *j = (FetchJob*)pTag;
      j->bLoaded = 1;
      j->nTract = row.nTract;
      j->zLoadErr = row.zError;
      row.zError = 0;
      j->t1 = trNow();
    }
    sqlite3_free(row.zFile);
    sqlite3_free(row.zState);
    sqlite3_free(row.zError);
    if( rcStep==SQLITE_DONE ) break;
    if( rcStep==SQLITE_BUSY && !trInterrupted(db) ) continue;
    if( rcStep==SQLITE_ROW && !trInterrupted(db) ) continue;
    rc = rcStep==SQLITE_NOMEM ? SQLITE_NOMEM : SQLITE_INTERRUPT;
    __atomic_store_n(&p->bAbort, 1, __ATOMIC_RELAXED);
    curl_multi_wakeup(p->pMulti);
    break;
  }
  pthread_join(p->tid, 0);
  trLoadFree(p->pLoad);       /* files never opened: their .part goes */
  p->pLoad = 0;
  trLookupWatch(p->pConn);
  return rc;
}

static int ftFilter(sqlite3_vtab_cursor *cur, int idxNum, const char *idxStr,
                    int argc, sqlite3_value **argv){
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  FtCursor *c = (FtCursor*)cur;
  FtVtab *pTab = (FtVtab*)cur->pVtab;
  TractsConn *pConn = pTab->pConn;
  const char *zFunc = pTab->bBoundaries ? "fetch_boundaries" : "fetch_tracts";
  const char *zStates, *zOpts = 0, *zLayer = "tracts", *zRes = 0;
  int aPick[N_STATE];
  int nPick, year, iArg = 0, i, rc, bStrict = 0, nFailed = 0, yearName = 0;
  int bArgStates = 1, bArgYear = 2, bArgOpts = 4;
  char *zBase = 0, *zDir = 0;
  char zLayerBase[64], zResDefault[16];
  const TrKind *pKind;
  Fetch f;
  (void)idxStr; (void)argc;
  ftRowsFree(c);
  sqlite3_free(pTab->base.zErrMsg);
  pTab->base.zErrMsg = 0;
  if( pTab->bBoundaries ){
    char *zMsg = 0;
    if( (idxNum & 1)==0 ){
      pTab->base.zErrMsg = sqlite3_mprintf("fetch_boundaries: needs a layer, "
          "e.g. fetch_boundaries('counties', '*')");
      return SQLITE_ERROR;
    }
    zLayer = (const char*)sqlite3_value_text(argv[iArg++]);
    if( trLayerName(zLayer, zLayerBase, &yearName, &zMsg)!=1 ){
      if( zMsg==0 ){
        sqlite3_str *x = sqlite3_str_new(0);
        sqlite3_str_appendf(x, "%s is not a census layer (census_layers "
                            "lists them: ", zLayer);
        trKindNames(x, " ");
        sqlite3_str_appendf(x, "); load_boundaries loads your own files");
        zMsg = sqlite3_str_finish(x);
      }
      pTab->base.zErrMsg = sqlite3_mprintf("fetch_boundaries: %s", zMsg);
      sqlite3_free(zMsg);
      return SQLITE_ERROR;
    }
    bArgStates = 2; bArgYear = 4; bArgOpts = 16;
  }else{
    snprintf(zLayerBase, sizeof(zLayerBase), "tracts");
  }
  zStates = (idxNum & bArgStates) ? (const char*)sqlite3_value_text(argv[iArg++]) : 0;
  if( zStates==0 && !pTab->bBoundaries ){
    pTab->base.zErrMsg = sqlite3_mprintf((idxNum & 1)
        ? "fetch_tracts: the states argument is NULL"
        : "fetch_tracts: needs the states argument, e.g. fetch_tracts('RI')");
    return SQLITE_ERROR;
  }
  year = yearName ? yearName : (int)trConfigInt(pConn, TR_SET_YEAR);
  if( idxNum & bArgYear ){
    sqlite3_value *v = argv[iArg++];
    const char *z = (const char*)sqlite3_value_text(v);
    char *zEnd = 0;
    long y = z ? strtol(z, &zEnd, 10) : 0;
    if( sqlite3_value_type(v)!=SQLITE_NULL ){
      if( z==0 || zEnd==z || *zEnd || y<1990 || y>2100
       || sqlite3_value_type(v)==SQLITE_FLOAT ){
        pTab->base.zErrMsg = sqlite3_mprintf("%s: year must be an "
            "integer from 1990 to 2100, got '%s'", zFunc, z ? z : "");
        return SQLITE_ERROR;
      }
      if( yearName && y!=yearName ){
        pTab->base.zErrMsg = sqlite3_mprintf("%s: layer %s holds %d "
            "boundaries, not %ld", zFunc, zLayer, yearName, y);
        return SQLITE_ERROR;
      }
      year = (int)y;
    }
  }
  pKind = trKindFind(zLayerBase, year);
  if( !trKindCovers(pKind, year) ){
    pTab->base.zErrMsg = sqlite3_mprintf("%s: the Census Bureau publishes no "
        "cartographic %s file for %d (census_layers lists the years of each "
        "layer)", zFunc, pKind->zName, year);
    return SQLITE_ERROR;
  }
  if( pTab->bBoundaries && (idxNum & 8) ){
    zRes = (const char*)sqlite3_value_text(argv[iArg++]);
  }
  if( zRes==0 ){
    /* the first resolution listed */
    snprintf(zResDefault, sizeof(zResDefault), "%.*s",
             (int)strcspn(pKind->zRes, ","), pKind->zRes);
    zRes = zResDefault;
  }else{
    const char *z = pKind->zRes;
    size_t n = strlen(zRes);
    while( z && !(strncmp(z, zRes, n)==0 && (z[n]==',' || z[n]==0)) ){
      z = strchr(z, ',');
      if( z ) z++;
    }
    if( z==0 || n==0 ){
      pTab->base.zErrMsg = sqlite3_mprintf("%s: %s are published at %s, not "
          "'%s'", zFunc, pKind->zName, pKind->zRes, zRes);
      return SQLITE_ERROR;
    }
  }
  if( trKindNational(pKind) ){
    if( zStates && strcmp(zStates, "*")!=0 ){
      pTab->base.zErrMsg = sqlite3_mprintf("%s: %s come in one national file: "
          "give '*' as the states", zFunc, pKind->zName);
      return SQLITE_ERROR;
    }
    nPick = 1;
    aPick[0] = -1;
  }else{
    if( zStates==0 ){
      pTab->base.zErrMsg = sqlite3_mprintf("%s: needs the states (USPS codes "
          "like RI, FIPS codes like 44, or '*' for all)", zFunc);
      return SQLITE_ERROR;
    }
    nPick = parseStates(zFunc, zStates, aPick, &pTab->base.zErrMsg);
    if( nPick<0 ) return SQLITE_ERROR;
  }
  memset(&f, 0, sizeof(f));
  if( idxNum & bArgOpts ) zOpts = (const char*)sqlite3_value_text(argv[iArg++]);
  if( parseOptions(zFunc, zOpts, &f.bRefresh, &f.bOffline, &bStrict,
                   &pTab->base.zErrMsg) ){
    return SQLITE_ERROR;
  }
  f.zFunc = zFunc;
  f.zRes = zRes;
  f.year = year;
  {
    char zTable[72];
    if( yearName ) snprintf(zTable, sizeof(zTable), "%s_%d", zLayerBase, yearName);
    else snprintf(zTable, sizeof(zTable), "%s", zLayerBase);
    f.pLayer = trLayerCensus(pKind, zTable, yearName, 0);
    if( f.pLayer==0 ) return SQLITE_NOMEM;
  }
  zBase = trConfigText(pConn, TR_SET_BASE_URL);
  zDir = trCacheDir(pConn);
  if( zBase==0 ){
    sqlite3_free(zDir);
    trLayerFree(f.pLayer);
    return SQLITE_NOMEM;
  }
  if( zDir==0 ){
    sqlite3_free(zBase);
    trLayerFree(f.pLayer);
    pTab->base.zErrMsg = sqlite3_mprintf("%s: no cache directory: "
        "set tracts_config('cache_dir', ...) or TRACTS_CACHE_DIR", zFunc);
    return SQLITE_ERROR;
  }
  rc = makeDirs(zDir, 0);
  if( rc ){
    pTab->base.zErrMsg = sqlite3_mprintf("%s: cannot create cache "
        "directory '%s': %s", zFunc, zDir, strerror(rc));
    sqlite3_free(zBase);
    sqlite3_free(zDir);
    trLayerFree(f.pLayer);
    return SQLITE_ERROR;
  }
  pthread_once(&once, curlInitOnce);
  f.pConn = pConn;
  pthread_mutex_init(&f.mu, 0);
  f.zUserAgent = trConfigText(pConn, TR_SET_USER_AGENT);
  f.nConn = (int)trConfigInt(pConn, TR_SET_CONNECTIONS);
  f.nRetryMax = (int)trConfigInt(pConn, TR_SET_RETRIES);
  f.msWait = (int)trConfigInt(pConn, TR_SET_RETRY_WAIT);
  f.sWaitMax = (int)trConfigInt(pConn, TR_SET_RETRY_MAX);
  f.sConnect = (int)trConfigInt(pConn, TR_SET_CONNECT_TIMEOUT);
  f.sLowSpeed = (int)trConfigInt(pConn, TR_SET_LOW_SPEED);
  f.nSplit = trConfigInt(pConn, TR_SET_SPLIT_KB)*1024;
  f.bOffline |= (int)trConfigInt(pConn, TR_SET_OFFLINE);
  i = (int)trConfigInt(pConn, TR_SET_PROGRESS);
  f.bProgress = i>0 || (i==0 && isatty(2));
  f.rng = ((uint64_t)time(0) << 20) ^ (uint64_t)getpid() ^ (uint64_t)(uintptr_t)&f;
  if( f.rng==0 ) f.rng = 1;
  rc = f.zUserAgent ? fetchSetup(&f, aPick, nPick, year, zBase, zDir)
                    : SQLITE_NOMEM;
  sqlite3_free(zBase);
  sqlite3_free(zDir);
  if( rc==SQLITE_OK ) rc = fetchRun(&f);
  if( rc==SQLITE_OK ){
    c->aRow = sqlite3_malloc64(sizeof(FtRow)*(sqlite3_uint64)f.nJob);
    if( c->aRow==0 ) rc = SQLITE_NOMEM;
  }
  if( rc==SQLITE_OK ){
    sqlite3_str *pFail = sqlite3_str_new(0);
    memset(c->aRow, 0, sizeof(FtRow)*(size_t)f.nJob);
    c->nRow = f.nJob;
    for(i=0; i<f.nJob; i++){
      FetchJob *j = &f.aJob[i];
      FtRow *r = &c->aRow[i];
      memcpy(r->zUsps, j->zUsps, 3);
      if( j->iFips<0 ) memcpy(r->zFips, "us", 3);
      else snprintf(r->zFips, sizeof(r->zFips), "%02d", j->iFips);
      r->zUrl = j->zUrl;
      j->zUrl = 0;
      r->status = j->status;
      r->bFromCache = j->bFromCache;
      r->nRequest = j->nRequest;
      r->nTract = j->bLoaded ? j->nTract : 0;
      r->rSeconds = (j->t1>0 ? j->t1 : trNow()) - (j->t0>0 ? j->t0 : f.t0);
      if( j->bFromCache ){
        struct stat st;
        r->nBytes = stat(j->zCache, &st)==0 ? (int64_t)st.st_size : -1;
      }else{
        r->nBytes = j->nSize;
      }
      if( j->zLoadErr ){
        r->zError = j->zErr[0]
          ? sqlite3_mprintf("%s (%s)", j->zLoadErr, j->zErr)
          : sqlite3_mprintf("%s", j->zLoadErr);
      }else if( j->eState==J_FAILED || !j->bLoaded ){
        r->zError = sqlite3_mprintf("%s", j->zErr[0] ? j->zErr : "not loaded");
      }
      if( r->zError ){
        nFailed++;
        if( nFailed<=3 ) sqlite3_str_appendf(pFail, "; %s: %s", r->zUsps, r->zError);
      }
    }
    if( bStrict && nFailed ){
      char *z = sqlite3_str_finish(pFail);
      pTab->base.zErrMsg = sqlite3_mprintf("%s: %d of %d states "
          "failed (strict)%s", zFunc, nFailed, f.nJob, z ? z : "");
      sqlite3_free(z);
      rc = SQLITE_ERROR;
    }else{
      sqlite3_free(sqlite3_str_finish(pFail));
    }
  }else if( rc==SQLITE_INTERRUPT ){
    pTab->base.zErrMsg = sqlite3_mprintf("%s: interrupted", zFunc);
  }else if( rc==SQLITE_ERROR ){
    pTab->base.zErrMsg = sqlite3_mprintf("%s: cannot start a thread", zFunc);
  }
  fetchFree(&f);
  trLayerFree(f.pLayer);
  return rc;
}

static int ftNext(sqlite3_vtab_cursor *cur){
  ((FtCursor*)cur)->iRow++;
  return SQLITE_OK;
}

static int ftEof(sqlite3_vtab_cursor *cur){
  FtCursor *c = (FtCursor*)cur;
  return c->iRow>=c->nRow;
}

static int ftColumn(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int i){
  FtCursor *c = (FtCursor*)cur;
  const FtRow *r = &c->aRow[c->iRow];
  switch( i ){
    case FT_STATE: sqlite3_result_text(ctx, r->zUsps, -1, SQLITE_TRANSIENT); break;
    case FT_FIPS:  sqlite3_result_text(ctx, r->zFips, -1, SQLITE_TRANSIENT); break;
    case FT_URL:   sqlite3_result_text(ctx, r->zUrl, -1, SQLITE_TRANSIENT); break;
    case FT_STATUS: if( r->status ) sqlite3_result_int(ctx, r->status); break;
    case FT_BYTES: if( r->nBytes>=0 ) sqlite3_result_int64(ctx, r->nBytes); break;
    case FT_FROM_CACHE: sqlite3_result_int(ctx, r->bFromCache); break;
    case FT_REQUESTS: sqlite3_result_int(ctx, r->nRequest); break;
    case FT_SECONDS: sqlite3_result_double(ctx, r->rSeconds); break;
    case FT_TRACTS: sqlite3_result_int(ctx, r->nTract); break;
    case FT_ERROR:
      if( r->zError ) sqlite3_result_text(ctx, r->zError, -1, SQLITE_TRANSIENT);
      break;
  }
  return SQLITE_OK;
}

static int ftRowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *pRowid){
  *pRowid = ((FtCursor*)cur)->iRow + 1;
  return SQLITE_OK;
}

/* The hidden arguments: states (required), year, options; for
** fetch_boundaries layer (required), states, year, resolution, options. */
static int ftBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *p){
  return trArgsBestIndex(p, FT_ARG0, ((FtVtab*)pVtab)->bBoundaries ? 5 : 3);
}

static sqlite3_module ftModule = {
  0, 0, ftConnect, ftBestIndex, trVtabFree, 0, ftOpen, ftClose, ftFilter,
  ftNext, ftEof, ftColumn, ftRowid, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
};

static sqlite3_module fbModule = {
  0, 0, fbConnect, ftBestIndex, trVtabFree, 0, ftOpen, ftClose, ftFilter,
  ftNext, ftEof, ftColumn, ftRowid, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
};

/* ---- fetch_for_points: only the states the points need ----------------
**
**     SELECT * FROM fetch_for_points('tracts', 'points', 'lon', 'lat');
**     SELECT * FROM fetch_for_points('block_groups', 'main.pts', 'x', 'y', 2020);
**
** Routes the points with the national states layer of the year (layer
** states_YYYY, fetched first if it is not loaded), then fetches and loads
** the layer for those states only: the rows of fetch_boundaries. A
** national layer is fetched whole. Points in no state are routed by the
** nearest_m setting like boundary_of. */

#define FP_SCHEMA "CREATE TABLE x(state TEXT, fips TEXT, url TEXT, " \
  "status INTEGER, bytes INTEGER, from_cache INTEGER, requests INTEGER, " \
  "seconds REAL, features INTEGER, error TEXT, layer HIDDEN, " \
  "src HIDDEN, lon_col HIDDEN, lat_col HIDDEN, year HIDDEN)"

static int fpConnect(sqlite3 *db, void *pAux, int argc,
                     const char *const *argv, sqlite3_vtab **ppVtab,
                     char **pzErr){
  (void)argc; (void)argv; (void)pzErr;
  return trVtabConnect(db, pAux, FP_SCHEMA, sizeof(FtVtab), 1, ppVtab);
}

static int fpBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *p){
  (void)pVtab;
  return trArgsBestIndex(p, FT_ARG0, 5);
}

/* The value of column iCol of pStmt as a new string (NULL if NULL). */
static char *colDup(sqlite3_stmt *pStmt, int iCol){
  const unsigned char *z = sqlite3_column_text(pStmt, iCol);
  return z ? sqlite3_mprintf("%s", z) : 0;
}

/* Run SELECT ... FROM fetch_boundaries(zLayer, zStates, year) into c. */
static int fpFetch(sqlite3 *db, FtCursor *c, const char *zLayer,
                   const char *zStates, int year, char **pzErr){
  sqlite3_stmt *pStmt = 0;
  int rc, nAlloc = 0;
  rc = sqlite3_prepare_v2(db, "SELECT state, fips, url, status, bytes, "
      "from_cache, requests, seconds, features, error FROM "
      "fetch_boundaries(?1, ?2, ?3)", -1, &pStmt, 0);
  if( rc ){
    *pzErr = sqlite3_mprintf("fetch_for_points: %s", sqlite3_errmsg(db));
    return rc;
  }
  sqlite3_bind_text(pStmt, 1, zLayer, -1, SQLITE_STATIC);
  sqlite3_bind_text(pStmt, 2, zStates, -1, SQLITE_STATIC);
  sqlite3_bind_int(pStmt, 3, year);
  while( (rc = sqlite3_step(pStmt))==SQLITE_ROW ){
    FtRow *r;
    if( c->nRow>=nAlloc ){
      FtRow *a;
      nAlloc = nAlloc*2 + 8;
      a = sqlite3_realloc64(c->aRow, sizeof(FtRow)*(sqlite3_uint64)nAlloc);
      if( a==0 ){ rc = SQLITE_NOMEM; break; }
      c->aRow = a;
    }
    r = &c->aRow[c->nRow++];
    memset(r, 0, sizeof(*r));
    snprintf(r->zUsps, sizeof(r->zUsps), "%s",
             (const char*)sqlite3_column_text(pStmt, 0));
    snprintf(r->zFips, sizeof(r->zFips), "%s",
             (const char*)sqlite3_column_text(pStmt, 1));
    r->zUrl = colDup(pStmt, 2);
    r->status = sqlite3_column_int(pStmt, 3);
    r->nBytes = sqlite3_column_type(pStmt, 4)==SQLITE_NULL ? -1
              : sqlite3_column_int64(pStmt, 4);
    r->bFromCache = sqlite3_column_int(pStmt, 5);
    r->nRequest = sqlite3_column_int(pStmt, 6);
    r->rSeconds = sqlite3_column_double(pStmt, 7);
    r->nTract = sqlite3_column_int(pStmt, 8);
    r->zError = colDup(pStmt, 9);
  }
  if( rc==SQLITE_DONE ){
    rc = SQLITE_OK;
  }else if( rc!=SQLITE_NOMEM ){
    const char *zMsg = sqlite3_errmsg(db);
    *pzErr = strncmp(zMsg, "fetch_boundaries: ", 18)==0
           ? sqlite3_mprintf("fetch_for_points: %s", zMsg+18)
           : sqlite3_mprintf("fetch_for_points: %s", zMsg);
  }
  sqlite3_finalize(pStmt);
  return rc;
}

static int fpFilter(sqlite3_vtab_cursor *cur, int idxNum, const char *idxStr,
                    int argc, sqlite3_value **argv){
  FtCursor *c = (FtCursor*)cur;
  FtVtab *pTab = (FtVtab*)cur->pVtab;
  TractsConn *pConn = pTab->pConn;
  sqlite3 *db = pConn->db;
  const char *azArg[4];
  char zBase[64], zRoute[32];
  char *zMsg = 0, *zSchema = 0, *zTable = 0, *zSrc = 0, *zSql = 0;
  char *zStates = 0;
  const TrKind *pKind;
  int year = 0, yearName = 0, i, rc = SQLITE_OK;
  static const char *azWhat[4] = { "layer", "source table",
                                   "longitude column", "latitude column" };
  (void)idxStr; (void)argc;
  ftRowsFree(c);
  sqlite3_free(pTab->base.zErrMsg);
  pTab->base.zErrMsg = 0;
  for(i=0; i<4; i++){
    azArg[i] = (idxNum & (1<<i)) ? (const char*)sqlite3_value_text(argv[i]) : 0;
    if( azArg[i]==0 || azArg[i][0]==0 ){
      pTab->base.zErrMsg = sqlite3_mprintf("fetch_for_points: the %s is %s",
          azWhat[i], (idxNum & (1<<i)) && azArg[i] ? "empty" : "missing or NULL");
      return SQLITE_ERROR;
    }
  }
  if( trLayerName(azArg[0], zBase, &yearName, &zMsg)!=1 ){
    pTab->base.zErrMsg = sqlite3_mprintf("fetch_for_points: %s", zMsg
        ? zMsg : "only census layers are fetched (census_layers lists them)");
    sqlite3_free(zMsg);
    return SQLITE_ERROR;
  }
  year = yearName ? yearName : (int)trConfigInt(pConn, TR_SET_YEAR);
  if( (idxNum & 16) && sqlite3_value_type(argv[4])!=SQLITE_NULL ){
    if( sqlite3_value_type(argv[4])!=SQLITE_INTEGER
     || sqlite3_value_int(argv[4])<1990 || sqlite3_value_int(argv[4])>2100 ){
      pTab->base.zErrMsg = sqlite3_mprintf("fetch_for_points: year must be an "
          "integer from 1990 to 2100");
      return SQLITE_ERROR;
    }
    year = sqlite3_value_int(argv[4]);
  }
  pKind = trKindFind(zBase, year);
  if( trKindNational(pKind) ){
    return fpFetch(db, c, azArg[0], "*", year, &pTab->base.zErrMsg);
  }
  /* the source and its columns (a quoted name that is not a column would
  ** be read as a string) */
  rc = trSplitName(db, azArg[1], &zSchema, &zTable);
  if( rc ) goto done;
  for(i=2; i<4; i++){
    if( !trHasColumn(db, zSchema, zTable, azArg[i]) ){
      pTab->base.zErrMsg = sqlite3_mprintf("fetch_for_points: no such column "
                                           "%s in %s", azArg[i], azArg[1]);
      rc = SQLITE_ERROR;
      goto done;
    }
  }
  zSrc = trQuotedName(zSchema, zTable);
  if( zSrc==0 ){ rc = SQLITE_NOMEM; goto done; }
  /* the routing layer */
  snprintf(zRoute, sizeof(zRoute), "states_%d", year);
  if( !trSqlExists(db, "SELECT 1 FROM main.tracts_layers WHERE layer=?1 AND "
        "EXISTS(SELECT 1 FROM main.sqlite_schema WHERE name=?1)", zRoute) ){
    FtCursor tmp;
    memset(&tmp, 0, sizeof(tmp));
    rc = fpFetch(db, &tmp, zRoute, "*", year, &pTab->base.zErrMsg);
    if( rc==SQLITE_OK && (tmp.nRow!=1 || tmp.aRow[0].zError) ){
      pTab->base.zErrMsg = sqlite3_mprintf("fetch_for_points: cannot fetch "
          "the states layer that routes the points: %s", tmp.nRow
          ? tmp.aRow[0].zError : "no row");
      rc = SQLITE_ERROR;
    }
    ftRowsFree(&tmp);
    if( rc ) goto done;
  }
  zSql = sqlite3_mprintf("SELECT group_concat(DISTINCT boundary_of(%Q, "
      "\"%w\", \"%w\")) FROM %s", zRoute, azArg[2], azArg[3], zSrc);
  if( zSql==0 ){ rc = SQLITE_NOMEM; goto done; }
  {
    sqlite3_stmt *pStmt = 0;
    rc = sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0);
    if( rc==SQLITE_OK ){
      if( sqlite3_step(pStmt)==SQLITE_ROW ){
        zStates = colDup(pStmt, 0);
      }
      rc = sqlite3_finalize(pStmt);
    }
    if( rc ){
      pTab->base.zErrMsg = sqlite3_mprintf("fetch_for_points: %s",
                                           sqlite3_errmsg(db));
      goto done;
    }
  }
  if( zStates ){
    /* only the states the files come for (the states layer also has the
    ** island areas: AS, GU, MP, VI have no per-state files here) */
    char *zOut = zStates, *z = zStates;
    while( *z ){
      size_t n = strcspn(z, ",");
      int k, v = (n==2 && isdigit((unsigned char)z[0])
                  && isdigit((unsigned char)z[1])) ? atoi(z) : -1;
      for(k=0; k<N_STATE && aState[k].iFips!=v; k++){}
      if( k<N_STATE ){
        if( zOut>zStates ) *zOut++ = ',';
        memmove(zOut, z, 2);
        zOut += 2;
      }
      z += n;
      if( *z==',' ) z++;
    }
    *zOut = 0;
    if( zStates[0] ){
      rc = fpFetch(db, c, azArg[0], zStates, year, &pTab->base.zErrMsg);
    }
  }
done:
  sqlite3_free(zStates);
  sqlite3_free(zSql);
  sqlite3_free(zSrc);
  sqlite3_free(zSchema);
  sqlite3_free(zTable);
  return rc;
}

static sqlite3_module fpModule = {
  0, 0, fpConnect, fpBestIndex, trVtabFree, 0, ftOpen, ftClose, fpFilter,
  ftNext, ftEof, ftColumn, ftRowid, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
};

/* ---- tracts_cache: the cache, listed and pruned ------------------------ */

#define TC_URL      0
#define TC_PATH     1
#define TC_BYTES    2
#define TC_SHA256   3
#define TC_FETCHED  4
#define TC_ETAG     5
#define TC_LASTMOD  6
#define TC_SCHEMA "CREATE TABLE x(url TEXT, path TEXT, bytes INTEGER, " \
  "sha256 TEXT, fetched_at TEXT, etag TEXT, last_modified TEXT)"

typedef struct TcEntry TcEntry;
struct TcEntry {
  char *zPath;
  CacheMeta m;
  int bMeta;
  int64_t nBytes;
  sqlite3_int64 iRowid;    /* its number in the vtab's path table */
};

/* The vtab numbers every path any of its cursors has listed, so a rowid
** names one file for as long as the connection lasts, whichever cursor
** it came from (DELETE gets only the rowid). */
typedef struct TcVtab TcVtab;
struct TcVtab {
  sqlite3_vtab base;       /* a TrVtab */
  TractsConn *pConn;
  char **azPath;           /* rowid -> path */
  int nPath, nPathAlloc;
};

/* A cursor owns its listing. */
typedef struct TcCursor TcCursor;
struct TcCursor {
  sqlite3_vtab_cursor base;
  TcEntry *a;
  int n, nAlloc;
  int i;
  int bOom;
};

static void tcEntriesFree(TcCursor *c){
  int i;
  for(i=0; i<c->n; i++) sqlite3_free(c->a[i].zPath);
  sqlite3_free(c->a);
  c->a = 0;
  c->n = c->nAlloc = 0;
}

/* nftw has no user pointer: the listing being built, per thread. */
static _Thread_local TcCursor *tcBuilding;

static int tcVisit(const char *zPath, const struct stat *st, int type,
                   struct FTW *ftw){
  TcCursor *c = tcBuilding;
  size_t n = strlen(zPath);
  TcEntry *e;
  (void)ftw;
  if( type!=FTW_F || n<4 || strcmp(zPath+n-4, ".zip")!=0 ) return 0;
  if( c->n>=c->nAlloc ){
    int nNew = c->nAlloc*2 + 16;
    TcEntry *a = sqlite3_realloc64(c->a, sizeof(TcEntry)*(sqlite3_uint64)nNew);
    if( a==0 ){ c->bOom = 1; return 1; }
    c->a = a;
    c->nAlloc = nNew;
  }
  e = &c->a[c->n];
  memset(e, 0, sizeof(*e));
  e->zPath = sqlite3_mprintf("%s", zPath);
  if( e->zPath==0 ){ c->bOom = 1; return 1; }
  e->bMeta = metaRead(zPath, &e->m)==0;
  e->nBytes = st->st_size;
  c->n++;
  return 0;
}

static int tcCmp(const void *a, const void *b){
  return strcmp(((const TcEntry*)a)->zPath, ((const TcEntry*)b)->zPath);
}

/* The rowid of zPath, added to the path table if new; -1 on OOM. */
static sqlite3_int64 tcRowid(TcVtab *p, const char *zPath){
  int i;
  for(i=0; i<p->nPath; i++){
    if( strcmp(p->azPath[i], zPath)==0 ) return i;
  }
  if( p->nPath>=p->nPathAlloc ){
    int nNew = p->nPathAlloc*2 + 16;
    char **az = sqlite3_realloc64(p->azPath, sizeof(char*)*(sqlite3_uint64)nNew);
    if( az==0 ) return -1;
    p->azPath = az;
    p->nPathAlloc = nNew;
  }
  p->azPath[p->nPath] = sqlite3_mprintf("%s", zPath);
  if( p->azPath[p->nPath]==0 ) return -1;
  return p->nPath++;
}

static int tcConnect(sqlite3 *db, void *pAux, int argc,
                     const char *const *argv, sqlite3_vtab **ppVtab,
                     char **pzErr){
  (void)argc; (void)argv; (void)pzErr;
  return trVtabConnect(db, pAux, TC_SCHEMA, sizeof(TcVtab), 1, ppVtab);
}

static int tcDisconnect(sqlite3_vtab *pVtab){
  TcVtab *p = (TcVtab*)pVtab;
  int i;
  for(i=0; i<p->nPath; i++) sqlite3_free(p->azPath[i]);
  sqlite3_free(p->azPath);
  return trVtabFree(pVtab);
}

static int tcOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCur){
  (void)pVtab;
  return trCursorNew(sizeof(TcCursor), ppCur);
}

static int tcClose(sqlite3_vtab_cursor *cur){
  tcEntriesFree((TcCursor*)cur);
  sqlite3_free(cur);
  return SQLITE_OK;
}

static int tcFilter(sqlite3_vtab_cursor *cur, int idxNum, const char *idxStr,
                    int argc, sqlite3_value **argv){
  TcCursor *c = (TcCursor*)cur;
  TcVtab *p = (TcVtab*)cur->pVtab;
  char *zDir = trCacheDir(p->pConn);
  struct stat st;
  int i;
  (void)idxNum; (void)idxStr; (void)argc; (void)argv;
  tcEntriesFree(c);
  c->i = 0;
  c->bOom = 0;
  if( zDir && stat(zDir, &st)==0 && S_ISDIR(st.st_mode) ){
    tcBuilding = c;
    nftw(zDir, tcVisit, 16, FTW_PHYS);
    tcBuilding = 0;
    if( c->n>1 ) qsort(c->a, (size_t)c->n, sizeof(TcEntry), tcCmp);
  }
  sqlite3_free(zDir);
  for(i=0; i<c->n && !c->bOom; i++){
    c->a[i].iRowid = tcRowid(p, c->a[i].zPath);
    if( c->a[i].iRowid<0 ) c->bOom = 1;
  }
  return c->bOom ? SQLITE_NOMEM : SQLITE_OK;
}

static int tcNext(sqlite3_vtab_cursor *cur){
  ((TcCursor*)cur)->i++;
  return SQLITE_OK;
}

static int tcEof(sqlite3_vtab_cursor *cur){
  TcCursor *c = (TcCursor*)cur;
  return c->i >= c->n;
}

static void resultTextOrNull(sqlite3_context *ctx, int bHave, const char *z){
  if( bHave && z[0] ) sqlite3_result_text(ctx, z, -1, SQLITE_TRANSIENT);
}

static int tcColumn(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int i){
  TcCursor *c = (TcCursor*)cur;
  const TcEntry *e = &c->a[c->i];
  switch( i ){
    case TC_URL:     resultTextOrNull(ctx, e->bMeta, e->m.zUrl); break;
    case TC_PATH:    sqlite3_result_text(ctx, e->zPath, -1, SQLITE_TRANSIENT); break;
    case TC_BYTES:   sqlite3_result_int64(ctx, e->nBytes); break;
    case TC_SHA256:  resultTextOrNull(ctx, e->bMeta, e->m.zSha256); break;
    case TC_FETCHED: resultTextOrNull(ctx, e->bMeta, e->m.zFetched); break;
    case TC_ETAG:    resultTextOrNull(ctx, e->bMeta, e->m.zEtag); break;
    case TC_LASTMOD: resultTextOrNull(ctx, e->bMeta, e->m.zLastMod); break;
  }
  return SQLITE_OK;
}

static int tcRowidOf(sqlite3_vtab_cursor *cur, sqlite3_int64 *pRowid){
  TcCursor *c = (TcCursor*)cur;
  *pRowid = c->a[c->i].iRowid;
  return SQLITE_OK;
}

static int tcBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *p){
  (void)pVtab;
  p->estimatedCost = 100.0;
  p->estimatedRows = 100;
  return SQLITE_OK;
}

/* DELETE removes the file and its .meta; nothing else may change. */
static int tcUpdate(sqlite3_vtab *pVtab, int argc, sqlite3_value **argv,
                    sqlite3_int64 *pRowid){
  TcVtab *p = (TcVtab*)pVtab;
  sqlite3_int64 i;
  char zMeta[4200];
  (void)pRowid;
  sqlite3_free(pVtab->zErrMsg);
  pVtab->zErrMsg = 0;
  if( argc!=1 ){
    pVtab->zErrMsg = sqlite3_mprintf("tracts_cache: only DELETE is "
                                     "supported (fetch_tracts fills the cache)");
    return SQLITE_ERROR;
  }
  i = sqlite3_value_int64(argv[0]);
  if( i<0 || i>=p->nPath ) return SQLITE_OK;
  if( unlink(p->azPath[i]) && errno!=ENOENT ){
    pVtab->zErrMsg = sqlite3_mprintf("tracts_cache: cannot delete '%s': %s",
                                     p->azPath[i], strerror(errno));
    return SQLITE_ERROR;
  }
  snprintf(zMeta, sizeof(zMeta), "%s.meta", p->azPath[i]);
  unlink(zMeta);
  return SQLITE_OK;
}

static sqlite3_module tcModule = {
  0, 0, tcConnect, tcBestIndex, tcDisconnect, 0, tcOpen, tcClose, tcFilter,
  tcNext, tcEof, tcColumn, tcRowidOf, tcUpdate, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
};

int trFetchRegister(sqlite3 *db, TractsConn *pConn){
  int rc = trModule(db, pConn, "fetch_tracts", &ftModule);
  if( rc==SQLITE_OK ) rc = trModule(db, pConn, "fetch_boundaries", &fbModule);
  if( rc==SQLITE_OK ) rc = trModule(db, pConn, "fetch_for_points", &fpModule);
  if( rc ) return rc;
  return trModule(db, pConn, "tracts_cache", &tcModule);
}
