/*
** registry.c - the boundary layers: the Census layers of census_layers.h,
** user layers, their names and vintages, and the census_layers table.
**
** Usage
**
**     SELECT * FROM census_layers;
**         name, tag, scope, first_year, last_year, resolutions, key,
**         grp, fields, file
**
** Layer names
**
**   A layer is stored in a table of its own name in the main schema (with
**   NAME_rtree beside it). The census names are those of census_layers.h
**   ("tracts", "counties", ...); one may carry a vintage suffix,
**   "tracts_2010", which makes a separate table holding only that year,
**   so vintages load side by side. A census layer without a suffix holds
**   one vintage at a time (loading another year is refused). Any other
**   identifier of letters, digits and '_' (at most 48 bytes, not starting
**   with a digit, "tracts_" or "sqlite_", not ending in "_rtree") names a
**   user layer: any polygon shapefile, keyed by a column the user names.
*/
#include "tracts_sql.h"

#include "census_layers.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const TrKind aKind[] = {
#define TR_LAYER(name, tag, file, first, last, res, key, keyexpr, grp, fields) \
  { name, tag, file, first, last, res, key, keyexpr, grp, fields },
  TR_LAYERS
#undef TR_LAYER
};
#define N_KIND ((int)(sizeof(aKind)/sizeof(aKind[0])))

int trKindCovers(const TrKind *k, int year){
  return year>=k->yearFirst && (k->yearLast==0 || year<=k->yearLast);
}

/* The line of census layer zName for vintage year: the line covering it,
** else (year 0, or a year none covers: trKindCovers says) the newest
** line; NULL for a name that is not a census layer. */
const TrKind *trKindFind(const char *zName, int year){
  const TrKind *pBest = 0;
  int i;
  for(i=0; i<N_KIND; i++){
    const TrKind *k = &aKind[i];
    if( sqlite3_stricmp(k->zName, zName)!=0 ) continue;
    if( year && trKindCovers(k, year) ) return k;
    if( pBest==0 || k->yearFirst>pBest->yearFirst ) pBest = k;
  }
  return pBest;
}


void trKindNames(sqlite3_str *s, const char *zSep){
  int i, j;
  for(i=0; i<N_KIND; i++){
    for(j=0; j<i && strcmp(aKind[j].zName, aKind[i].zName)!=0; j++){}
    if( j<i ) continue;
    sqlite3_str_appendf(s, "%s%s", i ? zSep : "", aKind[i].zName);
  }
}

/* 1 if a table of this name would hide one of the extension's table-
** valued functions. */
static int isFunctionName(const char *z){
  static const char *az[] = { "census_layers", "load_boundaries",
    "load_tracts", "fetch_boundaries", "fetch_tracts", "fetch_for_points",
    "monitor_samples", "monitor_marks", "json_each", "json_tree" };
  size_t i;
  for(i=0; i<sizeof(az)/sizeof(az[0]); i++){
    if( sqlite3_stricmp(az[i], z)==0 ) return 1;
  }
  return 0;
}

int trLayerName(const char *zLayer, char *zBase, int *pYear, char **pzErr){
  size_t n, i;
  *pYear = 0;
  zBase[0] = 0;
  if( zLayer==0 || zLayer[0]==0 ){
    *pzErr = sqlite3_mprintf("the layer name is %s", zLayer ? "empty" : "NULL");
    return -1;
  }
  n = strlen(zLayer);
  for(i=0; i<n; i++){
    unsigned char c = (unsigned char)zLayer[i];
    if( !(isalnum(c) || c=='_') || c>=0x80 ) break;
  }
  if( i==n && n<=48 ){
    /* a census name, or one with a vintage */
    memcpy(zBase, zLayer, n+1);
    for(i=0; i<n; i++) zBase[i] = (char)tolower((unsigned char)zBase[i]);
    if( trKindFind(zBase, 0) ) return 1;
    if( n>5 && zBase[n-5]=='_' && strspn(zBase+n-4, "0123456789")==4 ){
      zBase[n-5] = 0;
      if( trKindFind(zBase, 0) ){
        *pYear = atoi(zLayer+n-4);
        return 1;
      }
      zBase[n-5] = '_';
    }
    i = n;
  }
  if( i<n || n>48 || isdigit((unsigned char)zLayer[0])
   || sqlite3_strnicmp(zLayer, "tracts_", 7)==0
   || sqlite3_strnicmp(zLayer, "sqlite_", 7)==0
   || sqlite3_strnicmp(zLayer, "pragma_", 7)==0
   || isFunctionName(zLayer)
   || (n>=6 && sqlite3_stricmp(zLayer+n-6, "_rtree")==0) ){
    sqlite3_str *s = sqlite3_str_new(0);
    sqlite3_str_appendf(s, "'%s' is not a layer name: census layers are ",
                        zLayer);
    trKindNames(s, ", ");
    sqlite3_str_appendf(s, " (with an optional _YYYY vintage); a layer of "
        "your own is named with letters, digits and _ (at most 48, not "
        "starting with a digit, tracts_, sqlite_ or pragma_, not ending in "
        "_rtree, not the name of a table function)");
    *pzErr = sqlite3_str_finish(s);
    return -1;
  }
  return 0;      /* zBase holds the name, lower case */
}

/* ---- layers as loaded ------------------------------------------------- */

/* A TrLayer and everything it points at, in one allocation. */
typedef struct LayerBox LayerBox;
struct LayerBox {
  TrLayer layer;
  TrField aField[TR_MAX_FIELDS];
  char zName[64];
  char zKey[16];
  char zGroup[16];
  char azField[TR_MAX_FIELDS][16];
  char azDbf[TR_MAX_FIELDS][16];      /* DBF names, where they differ */
};

TrLayer *trLayerCensus(const TrKind *k, const char *zName, int year, int srid){
  LayerBox *b = sqlite3_malloc(sizeof(LayerBox));
  const char *z = k->zFields;
  int n = 0;
  if( b==0 ) return 0;
  memset(b, 0, sizeof(*b));
  snprintf(b->zName, sizeof(b->zName), "%s", zName);
  snprintf(b->zKey, sizeof(b->zKey), "%s", k->zKey);
  if( k->zGroup ) snprintf(b->zGroup, sizeof(b->zGroup), "%s", k->zGroup);
  while( *z && n<TR_MAX_FIELDS ){
    size_t m = strcspn(z, " :");
    snprintf(b->azField[n], sizeof(b->azField[n]), "%.*s", (int)m, z);
    b->aField[n].zName = b->azField[n];
    z += m;
    if( *z==':' ){ b->aField[n].bInteger = z[1]=='r' ? 2 : 1; z += 2; }
    while( *z==' ' ) z++;
    n++;
  }
  b->layer.zName = b->layer.zTable = b->zName;
  b->layer.zFileTag = k->zTag;
  b->layer.zKey = b->zKey;
  b->layer.zGroup = k->zGroup ? b->zGroup : 0;
  b->layer.nField = n;
  b->layer.aField = b->aField;
  b->layer.year = year;
  b->layer.srid = srid;
  b->layer.pKind = k;
  return &b->layer;
}

TrLayer *trLayerUser(const char *zName, const TrField *aField, int nField,
                     const char *zKey, int srid, char **pzErr){
  LayerBox *b;
  int i, j, n = 0, iKey = -1;
  if( nField>TR_MAX_FIELDS ){
    *pzErr = sqlite3_mprintf("the .dbf has %d fields (at most %d are loaded)",
                             nField, TR_MAX_FIELDS);
    return 0;
  }
  b = sqlite3_malloc(sizeof(LayerBox));
  if( b==0 ) return 0;
  memset(b, 0, sizeof(*b));
  snprintf(b->zName, sizeof(b->zName), "%s", zName);
  for(i=0; i<nField; i++){
    char zF[16];
    /* unnamed fields, and a second field of a name (SQLite's names
    ** ignore case) or "geometry", are not copied; a field named like the
    ** rowid is renamed (the R*Tree follows the real one) */
    snprintf(zF, sizeof(zF), "%s", aField[i].zName);
    if( zF[0]==0 || sqlite3_stricmp(zF, "geometry")==0 ) continue;
    if( sqlite3_stricmp(zF, "rowid")==0 || sqlite3_stricmp(zF, "oid")==0
     || sqlite3_stricmp(zF, "_rowid_")==0 ){
      size_t m = strlen(zF);
      zF[m] = '_';
      zF[m+1] = 0;
    }
    for(j=0; j<n && sqlite3_stricmp(b->azField[j], zF)!=0; j++){}
    if( j<n ) continue;
    snprintf(b->azField[n], sizeof(b->azField[n]), "%s", zF);
    b->aField[n].zName = b->azField[n];
    b->aField[n].bInteger = aField[i].bInteger;
    if( strcmp(zF, aField[i].zName)!=0 ){
      snprintf(b->azDbf[n], sizeof(b->azDbf[n]), "%s", aField[i].zName);
      b->aField[n].zDbf = b->azDbf[n];
    }
    if( iKey<0 && sqlite3_stricmp(zF, zKey ? zKey : "GEOID")==0 ) iKey = n;
    n++;
  }
  if( iKey<0 ){
    sqlite3_str *s = sqlite3_str_new(0);
    if( zKey ){
      sqlite3_str_appendf(s, "the .dbf has no field %s (it has:", zKey);
    }else{
      sqlite3_str_appendf(s, "name the key column (the third argument): "
                          "the .dbf has no GEOID; it has:");
    }
    for(j=0; j<n; j++) sqlite3_str_appendf(s, " %s", b->azField[j]);
    sqlite3_str_appendf(s, "%s", zKey ? ")" : "");
    *pzErr = sqlite3_str_finish(s);
    sqlite3_free(b);
    return 0;
  }
  snprintf(b->zKey, sizeof(b->zKey), "%s", b->azField[iKey]);
  b->layer.zName = b->layer.zTable = b->zName;
  b->layer.zKey = b->zKey;
  b->layer.nField = n;
  b->layer.aField = b->aField;
  b->layer.srid = srid;
  return &b->layer;
}

void trLayerFree(TrLayer *p){
  sqlite3_free(p);      /* the LayerBox it starts */
}

int trKindNational(const TrKind *k){
  return strstr(k->zFile, "{st}")==0;
}

char *trKindFile(const TrKind *k, int year, const char *zState,
                 const char *zRes){
  sqlite3_str *x = sqlite3_str_new(0);
  const char *z = k->zFile;
  while( *z ){
    if( strncmp(z, "{year}", 6)==0 ){ sqlite3_str_appendf(x, "%d", year); z += 6; }
    else if( strncmp(z, "{st}", 4)==0 ){ sqlite3_str_appendall(x, zState); z += 4; }
    else if( strncmp(z, "{res}", 5)==0 ){ sqlite3_str_appendall(x, zRes); z += 5; }
    else{ sqlite3_str_appendchar(x, 1, *z); z++; }
  }
  return sqlite3_str_finish(x);
}

/* Match zName against zPat ({year}: 4 digits, {st}: 2 digits or "us",
** {res}: letters and digits). 1 on a match, with what they stood for. */
static int patMatch(const char *zPat, const char *zName, int *pYear,
                    char *zSt){
  while( *zPat ){
    if( strncmp(zPat, "{year}", 6)==0 ){
      if( strspn(zName, "0123456789")<4 ) return 0;
      *pYear = (zName[0]-'0')*1000 + (zName[1]-'0')*100 + (zName[2]-'0')*10
             + (zName[3]-'0');
      zName += 4; zPat += 6;
    }else if( strncmp(zPat, "{st}", 4)==0 ){
      if( strspn(zName, "0123456789")<2 && strncmp(zName, "us", 2)!=0 ) return 0;
      memcpy(zSt, zName, 2);
      zSt[2] = 0;
      zName += 2; zPat += 4;
    }else if( strncmp(zPat, "{res}", 5)==0 ){
      size_t n = 0;
      while( isalnum((unsigned char)zName[n]) ) n++;
      if( n==0 ) return 0;
      zName += n; zPat += 5;
    }else if( *zPat++!=*zName++ ){
      return 0;
    }
  }
  return *zName==0;
}

int trKindMatch(const TrKind *k, const char *zPath, int *pYear, char *zSt){
  const char *zBase = strrchr(zPath, '/');
  const char *zPat = strrchr(k->zFile, '/');
  int year = 0;
  char zS[3] = "";
  zBase = zBase ? zBase+1 : zPath;
  zPat = zPat ? zPat+1 : k->zFile;
  if( !patMatch(zPat, zBase, &year, zS) ) return 0;
  if( !trKindCovers(k, year) ) return 0;
  if( pYear ) *pYear = year;
  if( zSt ) memcpy(zSt, zS, 3);
  return 1;
}

const TrKind *trKindForFile(const char *zName, const char *zPath, int *pYear){
  int i;
  for(i=0; i<N_KIND; i++){
    if( sqlite3_stricmp(aKind[i].zName, zName)==0
     && trKindMatch(&aKind[i], zPath, pYear, 0) ){
      return &aKind[i];
    }
  }
  return 0;
}

/* ---- census_layers ------------------------------------------------------ */

#define KL_SCHEMA "CREATE TABLE x(name TEXT, tag TEXT, scope TEXT, " \
  "first_year INTEGER, last_year INTEGER, resolutions TEXT, key TEXT, " \
  "grp TEXT, fields TEXT, file TEXT, answer TEXT)"

typedef struct KindCursor KindCursor;
struct KindCursor {
  sqlite3_vtab_cursor base;
  int i;
};

static int kindConnect(sqlite3 *db, void *pAux, int argc,
                       const char *const *argv, sqlite3_vtab **ppVtab,
                       char **pzErr){
  (void)argc; (void)argv; (void)pzErr;
  return trVtabConnect(db, pAux, KL_SCHEMA, sizeof(TrVtab), 0, ppVtab);
}

static int kindOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCur){
  (void)pVtab;
  return trCursorNew(sizeof(KindCursor), ppCur);
}

static int kindClose(sqlite3_vtab_cursor *cur){
  sqlite3_free(cur);
  return SQLITE_OK;
}

static int kindFilter(sqlite3_vtab_cursor *cur, int idxNum, const char *idxStr,
                      int argc, sqlite3_value **argv){
  (void)idxNum; (void)idxStr; (void)argc; (void)argv;
  ((KindCursor*)cur)->i = 0;
  return SQLITE_OK;
}

static int kindNext(sqlite3_vtab_cursor *cur){
  ((KindCursor*)cur)->i++;
  return SQLITE_OK;
}

static int kindEof(sqlite3_vtab_cursor *cur){
  return ((KindCursor*)cur)->i>=N_KIND;
}

static int kindColumn(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int i){
  const TrKind *k = &aKind[((KindCursor*)cur)->i];
  switch( i ){
    case 0: sqlite3_result_text(ctx, k->zName, -1, SQLITE_STATIC); break;
    case 1: sqlite3_result_text(ctx, k->zTag, -1, SQLITE_STATIC); break;
    case 2: sqlite3_result_text(ctx, trKindNational(k) ? "national" : "state", -1,
                                SQLITE_STATIC); break;
    case 3: sqlite3_result_int(ctx, k->yearFirst); break;
    case 4: if( k->yearLast ) sqlite3_result_int(ctx, k->yearLast); break;
    case 5: sqlite3_result_text(ctx, k->zRes, -1, SQLITE_STATIC); break;
    case 6: sqlite3_result_text(ctx, k->zKey, -1, SQLITE_STATIC); break;
    case 7: if( k->zGroup ) sqlite3_result_text(ctx, k->zGroup, -1,
                                                SQLITE_STATIC); break;
    case 8: sqlite3_result_text(ctx, k->zFields, -1, SQLITE_STATIC); break;
    case 9: sqlite3_result_text(ctx, k->zFile, -1, SQLITE_STATIC); break;
    case 10: sqlite3_result_text(ctx, k->zKeyExpr ? k->zKeyExpr : k->zKey, -1,
                                 SQLITE_STATIC); break;
  }
  return SQLITE_OK;
}

static int kindRowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *pRowid){
  *pRowid = ((KindCursor*)cur)->i + 1;
  return SQLITE_OK;
}

static int kindBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *p){
  (void)pVtab;
  p->estimatedCost = N_KIND;
  p->estimatedRows = N_KIND;
  return SQLITE_OK;
}

static sqlite3_module kindModule = {
  0, 0, kindConnect, kindBestIndex, trVtabFree, 0, kindOpen, kindClose,
  kindFilter, kindNext, kindEof, kindColumn, kindRowid,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
};

int trRegistryRegister(sqlite3 *db, TractsConn *pConn){
  return trModule(db, pConn, "census_layers", &kindModule);
}
