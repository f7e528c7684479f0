/*
** config.c - tracts_config(): per-connection settings.
**
** Usage
**
**     SELECT tracts_config('repair');        -- read: 1
**     SELECT tracts_config('repair', 0);     -- set, returns the new value
**     SELECT tracts_config('threads', 2);
**
** Settings
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
**
**   A setting's default can be overridden for every connection of a
**   process by the environment variable TRACTS_<NAME> (TRACTS_REPAIR,
**   TRACTS_THREADS, TRACTS_WORKERS, TRACTS_NEAREST_M), read when the setting is read; tracts_config(key,
**   value) overrides both for this connection.
**
** Errors
**
**     tracts_config: unknown setting 'x' (known: repair, threads, workers, nearest_m)
**     tracts_config: repair must be an integer from 0 to 1, got 'yes'
*/
#include "tracts_sql.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One setting: its name, default and the integer range it accepts. */
typedef struct TrSetting TrSetting;
struct TrSetting {
  const char *zName;       /* key in tracts_config() */
  const char *zEnv;        /* environment variable overriding the default */
  int64_t iDefault;        /* default value */
  int64_t iMin, iMax;      /* accepted range */
};

static const TrSetting aSetting[TR_N_SETTING] = {
  /* TR_SET_REPAIR  */ { "repair",  "TRACTS_REPAIR",  1, 0, 1 },
  /* TR_SET_THREADS */ { "threads", "TRACTS_THREADS", 0, 0, 64 },
  /* TR_SET_WORKERS */ { "workers", "TRACTS_WORKERS", 0, 0, 64 },
  /* TR_SET_NEAREST */ { "nearest_m", "TRACTS_NEAREST_M", 0, 0, 100000 },
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

void trConfigFree(TractsConn *pConn){
  int i;
  for(i=0; i<TR_N_SETTING; i++){
    sqlite3_free(pConn->azSetting[i]);
    pConn->azSetting[i] = 0;
  }
}

static void configFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  TractsConn *pConn = (TractsConn*)sqlite3_user_data(ctx);
  const char *zKey = (const char*)sqlite3_value_text(argv[0]);
  int i;
  if( zKey==0 ){
    sqlite3_result_error(ctx, "tracts_config: the setting name is NULL", -1);
    return;
  }
  for(i=0; i<TR_N_SETTING; i++){
    if( strcmp(zKey, aSetting[i].zName)==0 ) break;
  }
  if( i==TR_N_SETTING ){
    char *z = sqlite3_mprintf("tracts_config: unknown setting '%q' "
                              "(known: repair, threads, workers, nearest_m)", zKey);
    sqlite3_result_error(ctx, z ? z : "tracts_config: unknown setting", -1);
    sqlite3_free(z);
    return;
  }
  if( argc==2 ){
    const char *zVal = (const char*)sqlite3_value_text(argv[1]);
    int64_t v;
    char *zCopy;
    if( sqlite3_value_type(argv[1])==SQLITE_NULL ){
      /* NULL restores the default */
      sqlite3_free(pConn->azSetting[i]);
      pConn->azSetting[i] = 0;
    }else if( sqlite3_value_type(argv[1])==SQLITE_FLOAT
           || parseInt(zVal, &aSetting[i], &v) ){
      char *z = sqlite3_mprintf("tracts_config: %s must be an integer from "
                                "%lld to %lld, got '%q'", aSetting[i].zName,
                                (long long)aSetting[i].iMin,
                                (long long)aSetting[i].iMax,
                                zVal ? zVal : "");
      sqlite3_result_error(ctx, z ? z : "tracts_config: bad value", -1);
      sqlite3_free(z);
      return;
    }else{
      zCopy = sqlite3_mprintf("%lld", (long long)v);
      if( zCopy==0 ){ sqlite3_result_error_nomem(ctx); return; }
      sqlite3_free(pConn->azSetting[i]);
      pConn->azSetting[i] = zCopy;
    }
  }
  sqlite3_result_int64(ctx, trConfigInt(pConn, i));
}

int trConfigRegister(sqlite3 *db, TractsConn *pConn){
  int rc;
  pConn->nRef++;
  rc = sqlite3_create_function_v2(db, "tracts_config", 1,
         SQLITE_UTF8|SQLITE_DIRECTONLY, pConn, configFunc, 0, 0, trConnUnref);
  if( rc ) return rc;
  pConn->nRef++;
  return sqlite3_create_function_v2(db, "tracts_config", 2,
         SQLITE_UTF8|SQLITE_DIRECTONLY, pConn, configFunc, 0, 0, trConnUnref);
}
