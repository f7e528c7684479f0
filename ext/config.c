/*
** config.c - tracts_config(): per-connection settings.
**
** Usage
**
**     SELECT tracts_config('repair');        -- read: 1
**     SELECT tracts_config('repair', 0);     -- set, returns the new value
**     SELECT tracts_config('base_url', 'http://127.0.0.1:8000/geo/tiger/');
**     SELECT tracts_config('repair', NULL);  -- back to the default
**
** Settings (integers unless marked text)
**
**     repair   1 (default): an invalid polygon is repaired with GEOS
**              MakeValid on load; 0: the file is refused instead.
**     threads  threads that validate and encode polygons on load;
**              0 (default) means the number of online CPUs.
**     workers  processes tracts_assign uses, this one included; 0
**              (default) means the number of online CPUs, 1 means no fork.
**     nearest_m  a point outside every tract but within this many metres
**              of one gets the nearest (tract_of, and how = 'nearest' in
**              tracts_assign); 0 (default) turns it off. Census files are
**              clipped to the shoreline, so coastal points fall outside.
**   fetch_tracts (fetch.c):
**     year     vintage fetched when none is given (2019)
**     base_url (text) the Census server's boundary directory,
**              https://www2.census.gov/geo/tiger/
**     cache_dir (text) where downloads are kept; unset: TRACTS_CACHE_DIR,
**              then $XDG_CACHE_HOME/tracts, then ~/.cache/tracts
**     user_agent (text) the User-Agent header sent
**     connections  parallel connections (8)
**     offline  1: use the cache only, never the network (0)
**     retries  retries of one file after a failure (5)
**     retry_wait_ms  first backoff wait; doubles per retry, with jitter (1000)
**     retry_max_s  the longest single wait, Retry-After included (60)
**     connect_timeout  seconds to connect (30)
**     low_speed_timeout  seconds under 1 KB/s before a transfer is dropped
**              and resumed (30)
**     split_kb  smallest Range piece a file is cut into, to be fetched
**              on several connections at once; 0: never cut (1024)
**     progress  -1 never, 0 (default) when stderr is a terminal, 1 always
**     persist_index  1 (default): tract_of and tracts_assign save the index
**              they build in the table tracts_index, so later connections
**              read it instead of building it; 0: never write it
**
**   A setting's default can be overridden for every connection of a
**   process by the environment variable TRACTS_<NAME> (TRACTS_REPAIR,
**   TRACTS_CACHE_DIR, ...), read when the setting is read;
**   tracts_config(key, value) overrides both for this connection.
**
** Errors
**
**     tracts_config: unknown setting 'x' (known: repair, threads, ...)
**     tracts_config: repair must be an integer from 0 to 1, got 'yes'
**     tracts_config: base_url must be an http:// or https:// URL of a
**         directory (no query, fragment, .. or user@), got 'x'
**     tracts_config: user_agent must be printable text, got '...'
*/
#include "tracts_sql.h"
#include "../include/tracts.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T_INT  0
#define T_TEXT 1
#define T_URL  2            /* text: an http(s) URL, kept ending in '/' */

/* One setting: its name, type, default and the range it accepts. */
typedef struct TrSetting TrSetting;
struct TrSetting {
  const char *zName;       /* key in tracts_config() */
  const char *zEnv;        /* environment variable overriding the default */
  int eType;               /* T_INT, T_TEXT or T_URL */
  int64_t iDefault;        /* default value (integers) */
  int64_t iMin, iMax;      /* accepted range (integers) */
  const char *zDefault;    /* default value (text); NULL: none */
};

static const TrSetting aSetting[TR_N_SETTING] = {
  [TR_SET_REPAIR]  = { "repair",  "TRACTS_REPAIR",  T_INT, 1, 0, 1, 0 },
  [TR_SET_THREADS] = { "threads", "TRACTS_THREADS", T_INT, 0, 0, 64, 0 },
  [TR_SET_WORKERS] = { "workers", "TRACTS_WORKERS", T_INT, 0, 0, 64, 0 },
  [TR_SET_NEAREST] = { "nearest_m", "TRACTS_NEAREST_M", T_INT, 0, 0, 100000, 0 },
  [TR_SET_YEAR]    = { "year", "TRACTS_YEAR", T_INT, 2019, 1990, 2100, 0 },
  [TR_SET_BASE_URL]= { "base_url", "TRACTS_BASE_URL", T_URL, 0, 0, 0,
                       "https://www2.census.gov/geo/tiger/" },
  [TR_SET_CACHE_DIR]={ "cache_dir", "TRACTS_CACHE_DIR", T_TEXT, 0, 0, 0, 0 },
  [TR_SET_USER_AGENT]={ "user_agent", "TRACTS_USER_AGENT", T_TEXT, 0, 0, 0,
                       "tracts/" TRACTS_VERSION " (SQLite extension; libcurl)" },
  [TR_SET_CONNECTIONS]={ "connections", "TRACTS_CONNECTIONS", T_INT, 8, 1, 64, 0 },
  [TR_SET_OFFLINE] = { "offline", "TRACTS_OFFLINE", T_INT, 0, 0, 1, 0 },
  [TR_SET_RETRIES] = { "retries", "TRACTS_RETRIES", T_INT, 5, 0, 100, 0 },
  [TR_SET_RETRY_WAIT]={ "retry_wait_ms", "TRACTS_RETRY_WAIT_MS", T_INT,
                       1000, 0, 600000, 0 },
  [TR_SET_RETRY_MAX]={ "retry_max_s", "TRACTS_RETRY_MAX_S", T_INT, 60, 0, 3600, 0 },
  [TR_SET_CONNECT_TIMEOUT]={ "connect_timeout", "TRACTS_CONNECT_TIMEOUT",
                       T_INT, 30, 1, 3600, 0 },
  [TR_SET_LOW_SPEED]={ "low_speed_timeout", "TRACTS_LOW_SPEED_TIMEOUT",
                       T_INT, 30, 1, 3600, 0 },
  [TR_SET_SPLIT_KB]= { "split_kb", "TRACTS_SPLIT_KB", T_INT, 1024, 0, 1<<20, 0 },
  [TR_SET_PROGRESS]= { "progress", "TRACTS_PROGRESS", T_INT, 0, -1, 1, 0 },
  [TR_SET_PERSIST_INDEX]={ "persist_index", "TRACTS_PERSIST_INDEX", T_INT,
                       1, 0, 1, 0 },
};

/* Parse z as an integer in [iMin, iMax]; 0 on success. */
static int parseInt(const char *z, const TrSetting *s, int64_t *pOut){
  char *zEnd = 0;
  long long v;
  if( z==0 || *z==0 ) return 1;
  v = strtoll(z, &zEnd, 10);
  while( zEnd && *zEnd==' ' ) zEnd++;
  if( zEnd==0 || *zEnd!=0 || v<s->iMin || v>s->iMax ) return 1;
  *pOut = v;
  return 0;
}

/* 0 if z is acceptable for the text setting s. Text goes into HTTP
** headers and paths, so control characters are refused. */
static int checkText(const char *z, const TrSetting *s){
  const unsigned char *p;
  if( z==0 || *z==0 ) return 1;
  for(p=(const unsigned char*)z; *p; p++){
    if( *p<0x20 || *p==0x7f ) return 1;
  }
  if( s->eType==T_URL ){
    /* a directory URL: its paths below become cache paths */
    const char *zHost = strstr(z, "://");
    if( strncmp(z, "http://", 7)!=0 && strncmp(z, "https://", 8)!=0 ) return 1;
    if( zHost[3]==0 || zHost[3]=='/' ) return 1;
    {
      /* no user:password@ (it would land in cache paths and rows) */
      const char *zSlash = strchr(zHost+3, '/');
      const char *zAt = strchr(zHost+3, '@');
      if( zAt && (zSlash==0 || zAt<zSlash) ) return 1;
    }
    if( strpbrk(z, " ?#\\") || strstr(z, "/../") || strstr(z, "/./") ) return 1;
    if( strlen(z)>=2 && strcmp(z+strlen(z)-2, "/.")==0 ) return 1;
    if( strlen(z)>=3 && strcmp(z+strlen(z)-3, "/..")==0 ) return 1;
  }
  return 0;
}

int64_t trConfigInt(TractsConn *pConn, int i){
  const TrSetting *s = &aSetting[i];
  int64_t v = s->iDefault;
  if( pConn->azSetting[i] ){
    parseInt(pConn->azSetting[i], s, &v);
  }else{
    const char *zEnv = getenv(s->zEnv);
    if( zEnv && parseInt(zEnv, s, &v) ) v = s->iDefault;
  }
  if( (i==TR_SET_THREADS || i==TR_SET_WORKERS) && v==0 ){
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    v = n>0 ? n : 1;
    if( v>aSetting[i].iMax ) v = aSetting[i].iMax;
  }
  return v;
}

char *trConfigText(TractsConn *pConn, int i){
  const TrSetting *s = &aSetting[i];
  const char *z = pConn->azSetting[i];
  if( z==0 ){
    z = getenv(s->zEnv);
    if( z && checkText(z, s) ) z = 0;
  }
  if( z==0 ) z = s->zDefault;
  if( z==0 ) return 0;
  if( s->eType==T_URL && z[strlen(z)-1]!='/' ) return sqlite3_mprintf("%s/", z);
  return sqlite3_mprintf("%s", z);
}

void trConfigFree(TractsConn *pConn){
  int i;
  for(i=0; i<TR_N_SETTING; i++){
    sqlite3_free(pConn->azSetting[i]);
    pConn->azSetting[i] = 0;
  }
}

static void resultError(sqlite3_context *ctx, char *z){
  sqlite3_result_error(ctx, z ? z : "tracts_config: out of memory", -1);
  sqlite3_free(z);
}

static void configFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  TractsConn *pConn = (TractsConn*)sqlite3_user_data(ctx);
  const char *zKey = (const char*)sqlite3_value_text(argv[0]);
  const TrSetting *s;
  int i;
  if( zKey==0 ){
    sqlite3_result_error(ctx, "tracts_config: the setting name is NULL", -1);
    return;
  }
  for(i=0; i<TR_N_SETTING; i++){
    if( strcmp(zKey, aSetting[i].zName)==0 ) break;
  }
  if( i==TR_N_SETTING ){
    sqlite3_str *p = sqlite3_str_new(0);
    int k;
    sqlite3_str_appendf(p, "tracts_config: unknown setting '%q' (known:", zKey);
    for(k=0; k<TR_N_SETTING; k++){
      sqlite3_str_appendf(p, "%s %s", k ? "," : "", aSetting[k].zName);
    }
    sqlite3_str_appendchar(p, 1, ')');
    resultError(ctx, sqlite3_str_finish(p));
    return;
  }
  s = &aSetting[i];
  if( argc==2 ){
    const char *zVal = (const char*)sqlite3_value_text(argv[1]);
    int64_t v;
    char *zCopy = 0;
    if( sqlite3_value_type(argv[1])==SQLITE_NULL ){
      /* NULL restores the default */
      sqlite3_free(pConn->azSetting[i]);
      pConn->azSetting[i] = 0;
    }else if( s->eType==T_INT ){
      if( sqlite3_value_type(argv[1])==SQLITE_FLOAT || parseInt(zVal, s, &v) ){
        resultError(ctx, sqlite3_mprintf("tracts_config: %s must be an integer "
                    "from %lld to %lld, got '%q'", s->zName, (long long)s->iMin,
                    (long long)s->iMax, zVal ? zVal : ""));
        return;
      }
      zCopy = sqlite3_mprintf("%lld", (long long)v);
    }else{
      if( checkText(zVal, s) ){
        resultError(ctx, sqlite3_mprintf(s->eType==T_URL
                    ? "tracts_config: %s must be an http:// or https:// URL "
                      "of a directory (no query, fragment, .. or user@), "
                      "got '%q'"
                    : "tracts_config: %s must be printable text, got '%q'",
                    s->zName, zVal ? zVal : ""));
        return;
      }
      zCopy = sqlite3_mprintf("%s", zVal);
    }
    if( sqlite3_value_type(argv[1])!=SQLITE_NULL ){
      if( zCopy==0 ){ sqlite3_result_error_nomem(ctx); return; }
      sqlite3_free(pConn->azSetting[i]);
      pConn->azSetting[i] = zCopy;
    }
  }
  if( s->eType==T_INT ){
    sqlite3_result_int64(ctx, trConfigInt(pConn, i));
  }else{
    char *z = trConfigText(pConn, i);
    if( z ) sqlite3_result_text(ctx, z, -1, sqlite3_free);
    else if( i==TR_SET_CACHE_DIR ){
      z = trCacheDir(pConn);
      if( z ) sqlite3_result_text(ctx, z, -1, sqlite3_free);
    }
  }
}

int trConfigRegister(sqlite3 *db, TractsConn *pConn){
  int rc = trFunction(db, pConn, "tracts_config", 1, SQLITE_DIRECTONLY,
                      configFunc);
  if( rc ) return rc;
  return trFunction(db, pConn, "tracts_config", 2, SQLITE_DIRECTONLY,
                    configFunc);
}
