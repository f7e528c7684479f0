/*
** shpzip.c - read census zips and shapefiles in memory.
**
** What it does
**
**   trSourceOpen() opens a Census cartographic boundary zip (for example
**   cb_2019_44_tract_500k.zip) or a bare .shp with its .shx and .dbf
**   beside it; trSourceRead() returns a range of its records: the layer's
**   DBF attributes as text and each polygon checked with GEOS and encoded
**   as a SpatiaLite BLOB. Nothing is written anywhere: the zip
**   members are inflated into memory (libzip) and shapelib reads them
**   there through its SAHooks I/O table.
**
** How it works
**
**   shapelib's hooks open files by name and carry no user pointer, so the
**   name we hand to SHPOpenLL/DBFOpenLL encodes the address of a MemSet
**   ("trmem/<hex address>"); the FOpen hook decodes it and serves the
**   .shp, .shx, .dbf or .cpg buffer from that set. No global state is
**   involved, so several threads may read files at once. shapelib reports
**   problems through the Error hook, which keeps the last message in a
**   thread-local buffer that the reader copies into its error.
**
**   Each trSourceRead() call opens its own shapelib handles (and GEOS
**   context) over the shared in-memory parts, so the loader's reader
**   threads read different ranges of one file at once.
**
** Limits
**
**   A zip member may declare at most TR_MAX_MEMBER bytes and a shapefile
**   at most TR_MAX_RECORDS records; sizes are checked before allocating.
**   Member names with "../" or a leading "/" are refused. A zip must hold
**   exactly one .shp. Coordinates must be lon/lat degrees (|x| <= 180,
**   |y| <= 90); a .prj naming a projected CRS is refused.
**
** Threads and fork
**
**   Reentrant; a TrSource may be read by several threads at once. No
**   thread is started here.
*/
#include "tracts_int.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <iconv.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libdeflate.h>
#include <openssl/evp.h>
#include <proj.h>
#include <shapefil.h>
#include <zip.h>

/* One file held in memory. */
typedef struct MemBuf MemBuf;
struct MemBuf {
  unsigned char *a;    /* bytes (owned by the MemSet) */
  size_t n;            /* size */
};

/* A buffer for a zip or an inflated part (free() frees it), as the index's
** big arrays are made (trBigAlloc), with its first nPop bytes faulted in
** at once (trBigPopulate: a national load took 81,000 page faults, now
** about 20,000). nPop is what will surely be written, so that a size a
** damaged zip declares commits no memory it does not fill. */
static int bufAlloc(MemBuf *pBuf, size_t n, size_t nPop){
  pBuf->n = 0;
  pBuf->a = trBigAlloc(n);
  if( pBuf->a==0 ) return 1;
  trBigPopulate(pBuf->a, nPop<n ? nPop : n);
  return 0;
}

/* The parts of one shapefile, served to shapelib by name. */
typedef struct MemSet MemSet;
struct MemSet {
  MemBuf shp, shx, dbf, cpg, prj;
};

/* An open "file" of shapelib's: a cursor over a MemBuf. */
typedef struct MemFile MemFile;
struct MemFile {
  const MemBuf *pBuf;
  size_t iPos;
};

static _Thread_local char shpLastErr[256];

static int extIs(const char *zName, const char *zExt){
  size_t n = strlen(zName), m = strlen(zExt);
  return n>=m && strcasecmp(zName+n-m, zExt)==0;
}

static SAFile memOpen(const char *zName, const char *zAccess){
  MemSet *pSet = 0;
  const MemBuf *pBuf = 0;
  MemFile *f;
  if( strncmp(zName, "trmem/", 6)!=0 ) return 0;
  if( strchr(zAccess, 'w') || strchr(zAccess, '+') || strchr(zAccess, 'a') ){
    return 0;
  }
  if( sscanf(zName+6, "%p", (void**)&pSet)!=1 || pSet==0 ) return 0;
  if( extIs(zName, ".shp") ) pBuf = &pSet->shp;
  else if( extIs(zName, ".shx") ) pBuf = &pSet->shx;
  else if( extIs(zName, ".dbf") ) pBuf = &pSet->dbf;
  else if( extIs(zName, ".cpg") ) pBuf = &pSet->cpg;
  else if( extIs(zName, ".prj") ) pBuf = &pSet->prj;
  if( pBuf==0 || pBuf->a==0 ) return 0;
  /* shapelib asks for "foo.shp" then "foo.SHP": serve the first only */
  if( zName[strlen(zName)-1]<'a' ) return 0;
  f = calloc(1, sizeof(*f));
  if( f==0 ) return 0;
  f->pBuf = pBuf;
  return (SAFile)f;
}
static SAOffset memRead(void *p, SAOffset size, SAOffset nmemb, SAFile file){
  MemFile *f = (MemFile*)file;
  size_t nWant, nLeft;
  if( size==0 || nmemb==0 ) return 0;
  if( nmemb > ((size_t)-1)/size ) return 0;
  nWant = size*nmemb;
  nLeft = f->iPos < f->pBuf->n ? f->pBuf->n - f->iPos : 0;
  /* as fread: a short read still delivers the bytes there are (shapelib
  ** reads the .cpg as one item larger than the file) */
  if( nWant>nLeft ) nWant = nLeft;
  if( nWant ) memcpy(p, f->pBuf->a + f->iPos, nWant);
  f->iPos += nWant;
  return nWant/size;
}
static SAOffset memWrite(void *p, SAOffset size, SAOffset nmemb, SAFile file){
  (void)p; (void)size; (void)nmemb; (void)file;
  return 0;
}
static SAOffset memSeek(SAFile file, SAOffset offset, int whence){
  MemFile *f = (MemFile*)file;
  size_t base;
  if( whence==SEEK_SET ) base = 0;
  else if( whence==SEEK_CUR ) base = f->iPos;
  else if( whence==SEEK_END ) base = f->pBuf->n;
  else return (SAOffset)-1;
  if( offset > ((size_t)-1) - base ) return (SAOffset)-1;
  f->iPos = base + offset;
  return 0;
}
static SAOffset memTell(SAFile file){ return ((MemFile*)file)->iPos; }
static int memFlush(SAFile file){ (void)file; return 0; }
static int memClose(SAFile file){ free(file); return 0; }
static int memRemove(const char *zName){ (void)zName; return -1; }
static void memError(const char *zMsg){
  snprintf(shpLastErr, sizeof(shpLastErr), "%s", zMsg);
}
static double memAtof(const char *z){ return strtod(z, 0); }

static void memHooks(SAHooks *h){
  memset(h, 0, sizeof(*h));
  h->FOpen = memOpen;
  h->FRead = memRead;
  h->FWrite = memWrite;
  h->FSeek = memSeek;
  h->FTell = memTell;
  h->FFlush = memFlush;
  h->FClose = memClose;
  h->Remove = memRemove;
  h->Error = memError;
  h->Atof = memAtof;
}

static void memSetFree(MemSet *s){
  free(s->shp.a); free(s->shx.a); free(s->dbf.a); free(s->cpg.a);
  free(s->prj.a);
  memset(s, 0, sizeof(*s));
}

static int setErr(TrShapes *p, const char *zFmt, ...){
  va_list ap;
  va_start(ap, zFmt);
  vsnprintf(p->zErr, sizeof(p->zErr), zFmt, ap);
  va_end(ap);
  return 1;
}

void trShapesFree(TrShapes *p){
  int i;
  for(i=0; i<p->nRec; i++){
    free(p->aRec[i].azAttr);
    trGeomFree(&p->aRec[i].geom);
    free(p->aRec[i].pBlob);
  }
  free(p->aRec);
  p->aRec = 0;
  p->nRec = 0;
}

static void sha256Hex(const void *a, size_t n, char *zOut){
  unsigned char md[32];
  unsigned int nMd = 0, i;
  if( !EVP_Digest(a, n, md, &nMd, EVP_sha256(), 0) || nMd!=32 ){
    zOut[0] = 0;
    return;
  }
  for(i=0; i<32; i++) sprintf(zOut+2*i, "%02x", md[i]);
}

/* Read a whole file into *pBuf. Returns 0, or an errno value. */
static int readFile(const char *zPath, MemBuf *pBuf, int64_t nMax){
  FILE *f = fopen(zPath, "rb");
  struct stat st;
  size_t n;
  memset(pBuf, 0, sizeof(*pBuf));
  if( f==0 ) return errno ? errno : EIO;
  if( fstat(fileno(f), &st) || !S_ISREG(st.st_mode) ){
    fclose(f);
    return S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
  }
  if( st.st_size > nMax ){ fclose(f); return EFBIG; }
  if( bufAlloc(pBuf, (size_t)st.st_size + 1, (size_t)st.st_size) ){
    fclose(f);
    return ENOMEM;
  }
  n = fread(pBuf->a, 1, (size_t)st.st_size, f);
  fclose(f);
  if( n!=(size_t)st.st_size ){ free(pBuf->a); pBuf->a = 0; return EIO; }
  pBuf->n = n;
  return 0;
}

/* ---- Stage 2: validation and blobs on threads ------------------------- */

/* Check every record with GEOS (after the fast proof), repairing when
** bRepair, and encode it as a blob; the arrays are dropped, the box kept.
** Record numbers in errors count from iFirst+1. */
static int validateAll(TrShapes *p, int bRepair, int iFirst){
  TrGeosErr geosErr;
  GEOSContextHandle_t h = trGeosInit(&geosErr);
  int i;
  if( h==0 ) return setErr(p, "cannot start GEOS");
  for(i=0; i<p->nRec; i++){
    TrRecord *r = &p->aRec[i];
    char zWhy[160];
    int rc = trGeomValidate(h, &r->geom, bRepair, zWhy, sizeof(zWhy));
    if( rc<0 ){
      GEOS_finish_r(h);
      if( rc==-2 && geosErr.zMsg[0] ){
        return setErr(p, "record %d: GEOS: %s", iFirst+i+1, geosErr.zMsg);
      }else if( rc==-2 ){
        return setErr(p, "record %d: %s", iFirst+i+1, zWhy);
      }
      return setErr(p, "record %d: invalid polygon (%s)%s", iFirst+i+1, zWhy,
                    bRepair ? " that GEOS could not repair"
                            : "; set tracts_config('repair', 1) to repair");
    }
    r->bRepaired = rc==1;
    p->nRepaired += r->bRepaired;
    r->pBlob = trGeomToBlob(&r->geom, TR_SRID_NAD83, &r->nBlob);
    if( r->pBlob==0 ){
      GEOS_finish_r(h);
      return setErr(p, "record %d: out of memory", iFirst+i+1);
    }
    /* the blob holds the geometry now: drop the arrays, keep the box */
    {
      double aBox[4];
      memcpy(aBox, r->geom.aBox, sizeof(aBox));
      trGeomFree(&r->geom);
      memcpy(r->geom.aBox, aBox, sizeof(aBox));
    }
  }
  GEOS_finish_r(h);
  return 0;
}

/* ---- Stage 1: records from the shapefile parts ----------------------- */

static const char *shapeTypeName(int t){
  switch( t ){
    case SHPT_NULL: return "NULL";
    case SHPT_POINT: case SHPT_POINTZ: case SHPT_POINTM: return "POINT";
    case SHPT_ARC: case SHPT_ARCZ: case SHPT_ARCM: return "POLYLINE";
    case SHPT_MULTIPOINT: case SHPT_MULTIPOINTZ: case SHPT_MULTIPOINTM:
      return "MULTIPOINT";
    case SHPT_MULTIPATCH: return "MULTIPATCH";
  }
  return "unknown";
}
static int isPolygonType(int t){
  return t==SHPT_POLYGON || t==SHPT_POLYGONZ || t==SHPT_POLYGONM;
}

/* 1 if z[0..n-1] is well-formed UTF-8. */
static int isUtf8(const unsigned char *z, size_t n){
  size_t i = 0;
  while( i<n ){
    unsigned c = z[i];
    size_t k;
    uint32_t v, m;
    if( c<0x80 ){ i++; continue; }
    if( c>=0xc2 && c<=0xdf ){ k = 1; v = c & 0x1f; m = 0x80; }
    else if( c>=0xe0 && c<=0xef ){ k = 2; v = c & 0x0f; m = 0x800; }
    else if( c>=0xf0 && c<=0xf4 ){ k = 3; v = c & 0x07; m = 0x10000; }
    else return 0;
    if( n-i<=k ) return 0;                 /* sequence cut short */
    for(i++; k>0; k--, i++){
      if( (z[i] & 0xc0)!=0x80 ) return 0;
      v = (v<<6) | (z[i] & 0x3f);
    }
    if( v<m || v>0x10ffff || (v>=0xd800 && v<=0xdfff) ) return 0;
  }
  return 1;
}

/* Copy DBF text, trimming spaces; NULL for empty. One malloc for all. */
/* ---- the coordinate system ------------------------------------------- */

/* A PROJ context that keeps quiet (PROJ logs to stderr by default; its
** reasons reach the caller through the error list instead). */
static PJ_CONTEXT *projContext(void){
  PJ_CONTEXT *ctx = proj_context_create();
  if( ctx ) proj_log_level(ctx, PJ_LOG_NONE);
  return ctx;
}

/* The .prj as a PROJ CRS in ctx; NULL with p->zErr if PROJ cannot read it. */
static PJ *prjCrs(TrShapes *p, PJ_CONTEXT *ctx, const MemBuf *pPrj){
  PROJ_STRING_LIST azWarn = 0, azErr = 0;
  PJ *crs = proj_create_from_wkt(ctx, (const char*)pPrj->a, 0, &azWarn, &azErr);
  if( crs==0 || !proj_is_crs(crs) ){
    setErr(p, "the .prj is not a coordinate system PROJ can read%s%s",
           azErr && azErr[0] ? ": " : "", azErr && azErr[0] ? azErr[0] : "");
    if( crs ) proj_destroy(crs);
    crs = 0;
  }
  proj_string_list_destroy(azWarn);
  proj_string_list_destroy(azErr);
  return crs;
}

/* 1 if PROJ gave every vertex of o a finite value (it marks failures
** with HUGE_VAL). */
static int projOk(const SHPObject *o){
  int k;
  for(k=0; k<o->nVertices; k++){
    if( !isfinite(o->padfX[k]) || !isfinite(o->padfY[k]) ) return 0;
  }
  return 1;
}

/* The file's CRS: EPSG:srid when the caller stated one, else the .prj;
** NULL with p->zErr if neither gives one. */
static PJ *srcCrs(TrShapes *p, PJ_CONTEXT *ctx, const MemBuf *pPrj, int srid){
  PJ *crs;
  if( srid>0 ){
    char zCode[32];
    snprintf(zCode, sizeof(zCode), "EPSG:%d", srid);
    crs = proj_create(ctx, zCode);
    if( crs==0 || !proj_is_crs(crs) ){
      if( crs ) proj_destroy(crs);
      setErr(p, "SRID %d is not a coordinate system PROJ knows", srid);
      return 0;
    }
    return crs;
  }
  if( pPrj->a==0 ){
    setErr(p, "the shapefile has no .prj, so its coordinate system is "
           "unknown: state it as an SRID (load_boundaries' fourth "
           "argument, 4269 for NAD83 longitude/latitude)");
    return 0;
  }
  return prjCrs(p, ctx, pPrj);
}

/* The transformation from the file's CRS (srcCrs) to NAD83 longitude/
** latitude, in (x = lon, y = lat) order; NULL with p->zErr if there is
** none. *pbNone is set when none is needed: the file is NAD83 or WGS84
** lon/lat already (the two are treated as the same, as everywhere in
** tracts). */
static PJ *prjToNad83(TrShapes *p, PJ_CONTEXT *ctx, const MemBuf *pPrj,
                      int srid, int *pbNone){
  PJ *crs = srcCrs(p, ctx, pPrj, srid), *nad83 = 0, *wgs84 = 0, *t = 0, *tn = 0;
  *pbNone = 0;
  if( crs==0 ) return 0;
  nad83 = proj_create(ctx, "EPSG:4269");
  wgs84 = proj_create(ctx, "EPSG:4326");
  if( nad83==0 || wgs84==0 ){
    setErr(p, "PROJ cannot find EPSG:4269 (is proj-data installed?)");
  }else if( proj_is_equivalent_to_with_ctx(ctx, crs, nad83,
                PJ_COMP_EQUIVALENT_EXCEPT_AXIS_ORDER_GEOGCRS)
         || proj_is_equivalent_to_with_ctx(ctx, crs, wgs84,
                PJ_COMP_EQUIVALENT_EXCEPT_AXIS_ORDER_GEOGCRS) ){
    *pbNone = 1;
  }else{
    t = proj_create_crs_to_crs_from_pj(ctx, crs, nad83, 0, 0);
    tn = t ? proj_normalize_for_visualization(ctx, t) : 0;
    if( tn==0 ){
      setErr(p, "PROJ has no transformation from %s to NAD83",
             proj_get_name(crs) ? proj_get_name(crs) : "the .prj's CRS");
    }
  }
  if( t ) proj_destroy(t);
  if( nad83 ) proj_destroy(nad83);
  if( wgs84 ) proj_destroy(wgs84);
  proj_destroy(crs);
  return tn;
}

/* The encoding of the DBF's text, as an iconv name in zEnc, "" for UTF-8:
** from the .cpg (shapelib reads it), else from the DBF's language driver
** byte (87 is Windows ANSI); otherwise UTF-8 is assumed. 0, or 1 with
** p->zErr if the .cpg names an encoding iconv cannot read. */
static int dbfEncoding(TrShapes *p, DBFHandle hDbf, char *zEnc, size_t nEnc){
  const char *zCp = DBFGetCodePage(hDbf);
  char zUp[64];
  size_t n = 0, i;
  iconv_t cd;
  zEnc[0] = 0;
  if( zCp==0 ) return 0;
  while( *zCp==' ' || *zCp=='\t' ) zCp++;
  if( strncmp(zCp, "LDID/", 5)==0 ){
    if( atoi(zCp+5)==87 ) snprintf(zEnc, nEnc, "CP1252");
    return 0;
  }
  for(i=0; zCp[i] && n+1<sizeof(zUp); i++){
    char c = zCp[i];
    if( c=='\r' || c=='\n' ) break;
    zUp[n++] = (char)toupper((unsigned char)c);
  }
  while( n>0 && zUp[n-1]==' ' ) n--;
  zUp[n] = 0;
  if( n==0 || strcmp(zUp, "UTF-8")==0 || strcmp(zUp, "UTF8")==0 ) return 0;
  if( strcmp(zUp, "88591")==0 || strcmp(zUp, "8859-1")==0
   || strcmp(zUp, "ISO88591")==0 || strcmp(zUp, "LATIN1")==0 ){
    snprintf(zEnc, nEnc, "ISO-8859-1");
  }else if( strspn(zUp, "0123456789")==n ){
    snprintf(zEnc, nEnc, "CP%s", zUp);              /* "1252": a code page */
  }else if( strncmp(zUp, "ANSI ", 5)==0 && strspn(zUp+5, "0123456789")==n-5 ){
    snprintf(zEnc, nEnc, "CP%s", zUp+5);
  }else{
    snprintf(zEnc, nEnc, "%s", zUp);
  }
  cd = iconv_open("UTF-8", zEnc);
  if( cd==(iconv_t)-1 ){
    setErr(p, "the .cpg names an encoding that cannot be read: '%s'", zUp);
    return 1;
  }
  iconv_close(cd);
  return 0;
}

/* Text of n bytes in the DBF's encoding as UTF-8 (malloc'd), or NULL if
** it is not valid in that encoding (or on OOM: *pbOom). */
static char *toUtf8(iconv_t cd, const char *s, size_t n, int *pbOom){
  char *zOut, *zIn = (char*)s, *z;
  size_t nIn = n, nOut = 4*n + 1;
  if( cd==(iconv_t)-1 ){
    if( !isUtf8((const unsigned char*)s, n) ) return 0;
    zOut = malloc(n+1);
    if( zOut==0 ){ *pbOom = 1; return 0; }
    memcpy(zOut, s, n);
    zOut[n] = 0;
    return zOut;
  }
  zOut = z = malloc(nOut);
  if( zOut==0 ){ *pbOom = 1; return 0; }
  iconv(cd, 0, 0, 0, 0);
  if( iconv(cd, &zIn, &nIn, &z, &nOut)==(size_t)-1 || nIn!=0 ){
    free(zOut);
    return 0;
  }
  *z = 0;
  return zOut;
}

static char **readAttrs(DBFHandle hDbf, iconv_t cd, const int *aiField,
                        int nField, int iRec, int *piBad){
  size_t nTotal = sizeof(char*)*(size_t)nField;
  const char *az[TR_MAX_FIELDS];
  size_t an[TR_MAX_FIELDS];
  char **azOut, *z;
  int i;
  for(i=0; i<nField; i++){
    const char *s = aiField[i]>=0 ? DBFReadStringAttribute(hDbf, iRec, aiField[i]) : 0;
    size_t n;
    if( s==0 ){ az[i] = 0; an[i] = 0; continue; }
    /* DBFReadStringAttribute returns a buffer reused by the next call */
    while( *s==' ' ) s++;
    n = strlen(s);
    while( n>0 && s[n-1]==' ' ) n--;
    /* converted (and copied: the next read overwrites s) */
    {
      int bOom = 0, k;
      char *c = toUtf8(cd, s, n, &bOom);
      if( c==0 ){
        for(k=0; k<i; k++) free((char*)az[k]);
        if( !bOom ) *piBad = i;
        return 0;
      }
      az[i] = c;
      an[i] = strlen(c);
      nTotal += an[i] + 1;
    }
  }
  azOut = malloc(nTotal);
  if( azOut ){
    z = (char*)&azOut[nField];
    for(i=0; i<nField; i++){
      if( az[i]==0 || an[i]==0 ){ azOut[i] = 0; }
      else{ memcpy(z, az[i], an[i]+1); azOut[i] = z; z += an[i]+1; }
    }
  }
  for(i=0; i<nField; i++) free((char*)az[i]);
  return azOut;
}

/* Check the shapefile in pSet for pLayer: polygons, record counts, the
** layer's DBF fields (their indexes into aiField). 0, or 1 with p->zErr. */
static int openCheck(TrShapes *p, const TrLayer *pLayer, MemSet *pSet,
                     int *pnEnt, int *aiField, char *zEnc, size_t nEnc,
                     int *pbProject){
  SAHooks hooks;
  char zName[64];
  SHPHandle hShp = 0;
  DBFHandle hDbf = 0;
  int nEnt = 0, nType = 0, nDbf, i, rc = 1;
  double aMin[4], aMax[4];

  *pbProject = 0;
  if( pSet->prj.a==0 || pLayer->srid>0 ){
    /* no .prj, or a stated SRID: PROJ decides (or says it is unknown) */
    PJ_CONTEXT *ctx = projContext();
    PJ *t;
    int bNone = 0;
    if( ctx==0 ) return setErr(p, "out of memory");
    t = prjToNad83(p, ctx, &pSet->prj, pLayer->srid, &bNone);
    if( t ) proj_destroy(t);
    proj_context_destroy(ctx);
    if( t==0 && !bNone ) return 1;
    *pbProject = !bNone;
  }else{
    /* a .prj other than NAD83/WGS84 lon/lat: reprojected while reading.
    ** The last .prj found to be NAD83 is remembered: a directory of
    ** census files asks PROJ once. */
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static char zLastNad83[2048];   /* static: nothing to free at unload */
    int bNone = 0;
    pSet->prj.a[pSet->prj.n] = 0;
    pthread_mutex_lock(&mu);
    bNone = zLastNad83[0] && strcmp(zLastNad83, (char*)pSet->prj.a)==0;
    pthread_mutex_unlock(&mu);
    if( !bNone ){
      PJ_CONTEXT *ctx = projContext();
      PJ *t;
      if( ctx==0 ) return setErr(p, "out of memory");
      t = prjToNad83(p, ctx, &pSet->prj, 0, &bNone);
      if( t ) proj_destroy(t);
      proj_context_destroy(ctx);
      if( t==0 && !bNone ) return 1;
      if( bNone && pSet->prj.n<sizeof(zLastNad83) ){
        pthread_mutex_lock(&mu);
        memcpy(zLastNad83, pSet->prj.a, pSet->prj.n+1);
        pthread_mutex_unlock(&mu);
      }
    }
    *pbProject = !bNone;
  }
  memHooks(&hooks);
  snprintf(zName, sizeof(zName), "trmem/%p", (void*)pSet);
  shpLastErr[0] = 0;
  hShp = SHPOpenLL(zName, "rb", &hooks);
  if( hShp==0 ){
    return setErr(p, "not a valid shapefile%s%s",
                  shpLastErr[0] ? ": " : "", shpLastErr);
  }
  SHPGetInfo(hShp, &nEnt, &nType, aMin, aMax);
  if( !isPolygonType(nType) ){
    setErr(p, "the shapefile holds %s shapes, not polygons",
           shapeTypeName(nType));
    goto done;
  }
  if( nEnt<0 || nEnt>TR_MAX_RECORDS ){
    setErr(p, "the shapefile declares %d records (limit %d)", nEnt,
           TR_MAX_RECORDS);
    goto done;
  }
  if( nEnt==0 ){ setErr(p, "the shapefile holds no records"); goto done; }
  shpLastErr[0] = 0;
  hDbf = DBFOpenLL(zName, "rb", &hooks);
  if( hDbf==0 ){
    setErr(p, "the .dbf is not a valid dBASE file%s%s",
           shpLastErr[0] ? ": " : "", shpLastErr);
    goto done;
  }
  nDbf = DBFGetRecordCount(hDbf);
  if( nDbf!=nEnt ){
    setErr(p, "the .dbf has %d records but the .shp has %d", nDbf, nEnt);
    goto done;
  }
  if( dbfEncoding(p, hDbf, zEnc, nEnc) ) goto done;
  if( pLayer->nField>TR_MAX_FIELDS ){
    setErr(p, "more than %d fields", TR_MAX_FIELDS);
    goto done;
  }
  for(i=0; i<pLayer->nField; i++){
    aiField[i] = DBFGetFieldIndex(hDbf, trFieldDbf(&pLayer->aField[i]));
    if( aiField[i]<0 ){
      setErr(p, "the .dbf has no field %s", trFieldDbf(&pLayer->aField[i]));
      goto done;
    }
  }
  *pnEnt = nEnt;
  rc = 0;
done:
  if( hShp ) SHPClose(hShp);
  if( hDbf ) DBFClose(hDbf);
  return rc;
}

/* Read records [iFirst, iFirst+n) of the checked shapefile in pSet into
** p->aRec, validated and encoded. Each call opens its own shapelib
** handles on the shared buffers, so threads may read ranges at once.
** Record numbers in errors count from 1 over the whole file. */
static int readRange(TrShapes *p, const TrLayer *pLayer, MemSet *pSet,
                     const int *aiField, const char *zEnc, PJ *pj,
                     int iFirst, int n, int bRepair){
  SAHooks hooks;
  char zName[64];
  SHPHandle hShp = 0;
  DBFHandle hDbf = 0;
  iconv_t cd = (iconv_t)-1;
  int i, rc = 1;

  memHooks(&hooks);
  snprintf(zName, sizeof(zName), "trmem/%p", (void*)pSet);
  shpLastErr[0] = 0;
  hShp = SHPOpenLL(zName, "rb", &hooks);
  hDbf = hShp ? DBFOpenLL(zName, "rb", &hooks) : 0;
  if( hShp==0 || hDbf==0 ){
    setErr(p, "cannot reopen the shapefile%s%s", shpLastErr[0] ? ": " : "",
           shpLastErr);
    goto done;
  }
  if( zEnc[0] ){
    cd = iconv_open("UTF-8", zEnc);
    if( cd==(iconv_t)-1 ){
      setErr(p, "cannot convert from %s: %s", zEnc, strerror(errno));
      goto done;
    }
  }
  p->aRec = calloc((size_t)(n>0 ? n : 1), sizeof(TrRecord));
  if( p->aRec==0 ){ setErr(p, "out of memory"); goto done; }
  for(i=0; i<n; i++){
    TrRecord *r = &p->aRec[i];
    const char *zWhy = 0;
    SHPObject *o;
    int k, iRec = iFirst + i;
    shpLastErr[0] = 0;
    o = SHPReadObject(hShp, iRec);
    p->nRec = i+1;
    if( o==0 ){
      setErr(p, "record %d: unreadable shape%s%s", iRec+1,
             shpLastErr[0] ? ": " : "", shpLastErr);
      goto done;
    }
    if( o->nSHPType==SHPT_NULL || o->nVertices==0 ){
      SHPDestroyObject(o);
      setErr(p, "record %d: empty geometry", iRec+1);
      goto done;
    }
    if( !isPolygonType(o->nSHPType) ){
      setErr(p, "record %d: %s shape in a polygon shapefile", iRec+1,
             shapeTypeName(o->nSHPType));
      SHPDestroyObject(o);
      goto done;
    }
    if( pj ){
      size_t nOk = proj_trans_generic(pj, PJ_FWD, o->padfX, sizeof(double),
                                      (size_t)o->nVertices, o->padfY,
                                      sizeof(double), (size_t)o->nVertices,
                                      0, 0, 0, 0, 0, 0);
      if( nOk!=(size_t)o->nVertices || !projOk(o) ){
        setErr(p, "record %d: cannot reproject a vertex to NAD83", iRec+1);
        SHPDestroyObject(o);
        goto done;
      }
    }
    for(k=0; k<o->nVertices; k++){
      double x = o->padfX[k], y = o->padfY[k];
      if( !(x>=-180.0 && x<=180.0 && y>=-90.0 && y<=90.0) ){
        setErr(p, "record %d: coordinate (%.17g, %.17g) is not longitude/"
               "latitude", iRec+1, x, y);
        SHPDestroyObject(o);
        goto done;
      }
    }
    if( trGeomFromRings(&r->geom, o->nParts, o->panPartStart, o->nVertices,
                        o->padfX, o->padfY, &zWhy) ){
      setErr(p, "record %d: %s", iRec+1, zWhy);
      SHPDestroyObject(o);
      goto done;
    }
    p->nVertex += r->geom.nPt;
    SHPDestroyObject(o);
    {
      int iBad = -1;
      r->azAttr = readAttrs(hDbf, cd, aiField, pLayer->nField, iRec, &iBad);
      if( r->azAttr==0 && iBad>=0 && zEnc[0] ){
        setErr(p, "record %d: field %s is not valid %s", iRec+1,
               trFieldDbf(&pLayer->aField[iBad]), zEnc);
        goto done;
      }
      if( r->azAttr==0 && iBad>=0 ){
        setErr(p, "record %d: field %s is not valid UTF-8 (for text in "
               "another encoding, a .cpg naming it, such as ISO-8859-1, "
               "lets it load)", iRec+1, trFieldDbf(&pLayer->aField[iBad]));
        goto done;
      }
      if( r->azAttr==0 ){ setErr(p, "out of memory"); goto done; }
    }
  }
  SHPClose(hShp); hShp = 0;
  DBFClose(hDbf); hDbf = 0;
  rc = validateAll(p, bRepair, iFirst);
done:
  if( cd!=(iconv_t)-1 ) iconv_close(cd);
  if( hShp ) SHPClose(hShp);
  if( hDbf ) DBFClose(hDbf);
  if( rc ) trShapesFree(p);
  return rc;
}

/* ---- zips ------------------------------------------------------------ */

/* Inflate member iIdx of z into *pBuf after checking its declared size,
** or, with pBuf NULL, only read it through (nothing is kept). Either way
** the whole member is read, so libzip checks its CRC. 0; 1 with p->zErr
** if too large to keep; 2 (a damaged archive) if it cannot be read back
** whole with its CRC. */
/* zipMember for a deflated member that is kept: its compressed bytes are
** inflated in one call by libdeflate (about twice zlib's speed, and the
** inflate is most of a load's reading) and its CRC-32 checked. pBuf->a
** holds nSize + 1 bytes. Returns as zipMember does. */
static int zipInflate(TrShapes *p, zip_t *z, size_t nZip, zip_uint64_t iIdx,
                      const char *zName, const zip_stat_t *pSt, MemBuf *pBuf){
  struct libdeflate_decompressor *d;
  enum libdeflate_result r;
  MemBuf in;
  unsigned char *aIn;
  zip_file_t *f;
  zip_int64_t n;
  size_t nIn, nGot = 0, nOut = 0;
  if( !(pSt->valid & ZIP_STAT_COMP_SIZE) || !(pSt->valid & ZIP_STAT_CRC)
   || pSt->comp_size > (zip_uint64_t)TR_MAX_MEMBER ){
    setErr(p, "member %s is corrupt: its compressed size is not known or "
           "too large", zName);
    return 2;
  }
  nIn = (size_t)pSt->comp_size;
  if( bufAlloc(&in, nIn, nZip) ){
    return setErr(p, "out of memory for member %s", zName);
  }
  aIn = in.a;
  f = zip_fopen_index(z, iIdx, ZIP_FL_COMPRESSED);
  if( f==0 ){
    setErr(p, "cannot open member %s: %s", zName,
           zip_error_strerror(zip_get_error(z)));
    free(in.a);
    return 2;
  }
  while( nGot<nIn ){
    n = zip_fread(f, aIn + nGot, nIn - nGot);
    if( n<=0 ) break;
    nGot += (size_t)n;
  }
  zip_fclose(f);
  if( nGot!=nIn ){
    setErr(p, "member %s is truncated (%zu of %zu compressed bytes)",
           zName, nGot, nIn);
    free(in.a);
    return 2;
  }
  d = libdeflate_alloc_decompressor();
  if( d==0 ){
    free(in.a);
    return setErr(p, "out of memory for member %s", zName);
  }
  r = libdeflate_deflate_decompress(d, aIn, nIn, pBuf->a, (size_t)pSt->size,
                                    &nOut);
  libdeflate_free_decompressor(d);
  free(in.a);
  if( r==LIBDEFLATE_INSUFFICIENT_SPACE ){
    setErr(p, "member %s is corrupt: it inflates past its declared size",
           zName);
    return 2;
  }
  if( r!=LIBDEFLATE_SUCCESS ){
    setErr(p, "member %s is corrupt: Compression error", zName);
    return 2;
  }
  if( nOut!=(size_t)pSt->size ){
    setErr(p, "member %s is corrupt: it inflates to %zu of its declared %"
           PRIu64 " bytes", zName, nOut, (uint64_t)pSt->size);
    return 2;
  }
  if( libdeflate_crc32(0, pBuf->a, nOut)!=pSt->crc ){
    setErr(p, "member %s is corrupt: CRC error", zName);
    return 2;
  }
  pBuf->n = nOut;
  return 0;
}

static int zipMember(TrShapes *p, zip_t *z, size_t nZip, zip_uint64_t iIdx,
                     const char *zName, const zip_stat_t *pSt, MemBuf *pBuf){
  unsigned char aScratch[16384];
  zip_uint64_t nSize = pSt->size;
  zip_file_t *f;
  zip_int64_t n;
  size_t nGot = 0, nPop;
  if( pBuf ){
    if( nSize > (zip_uint64_t)TR_MAX_MEMBER ){
      return setErr(p, "member %s declares %" PRIu64 " bytes (limit %" PRId64
                    ")", zName, (uint64_t)nSize, (int64_t)TR_MAX_MEMBER);
    }
    /* a deflated shapefile part is rarely 16 times smaller */
    nPop = nZip < ((size_t)1 << 40) ? 16*nZip : (size_t)nSize;
    if( bufAlloc(pBuf, (size_t)nSize + 1, nPop) ){
      return setErr(p, "out of memory for member %s", zName);
    }
  }
  if( pBuf && pSt->comp_method==ZIP_CM_DEFLATE
   && (pSt->valid & ZIP_STAT_ENCRYPTION_METHOD)
   && pSt->encryption_method==ZIP_EM_NONE ){
    return zipInflate(p, z, nZip, iIdx, zName, pSt, pBuf);
  }
  f = zip_fopen_index(z, iIdx, 0);
  if( f==0 ){
    setErr(p, "cannot open member %s: %s", zName,
           zip_error_strerror(zip_get_error(z)));
    return 2;
  }
  while( nGot<nSize ){
    zip_uint64_t nWant = nSize - nGot;
    if( pBuf==0 && nWant>sizeof(aScratch) ) nWant = sizeof(aScratch);
    n = zip_fread(f, pBuf ? pBuf->a + nGot : aScratch, nWant);
    if( n<0 ){
      setErr(p, "member %s is corrupt: %s", zName,
             zip_error_strerror(zip_file_get_error(f)));
      zip_fclose(f);
      return 2;
    }
    if( n==0 ) break;
    nGot += (size_t)n;
  }
  if( nGot==nSize ){
    /* a read at the end makes libzip check the CRC */
    n = zip_fread(f, aScratch, 1);
    if( n!=0 ){
      /* a damaged deflate stream may inflate past the declared size */
      setErr(p, "member %s is corrupt: %s", zName, n<0
             ? zip_error_strerror(zip_file_get_error(f))
             : "it inflates past its declared size");
      zip_fclose(f);
      return 2;
    }
  }
  zip_fclose(f);
  if( nGot!=nSize ){
    setErr(p, "member %s is truncated (%zu of %" PRIu64 " bytes)",
           zName, nGot, (uint64_t)nSize);
    return 2;
  }
  if( pBuf ) pBuf->n = nGot;
  return 0;
}

static int unsafeName(const char *z){
  if( z[0]=='/' || z[0]=='\\' ) return 1;
  if( strncmp(z, "../", 3)==0 || strncmp(z, "..\\", 3)==0 ) return 1;
  if( strstr(z, "/../") || strstr(z, "\\..\\") ) return 1;
  return strcmp(z, "..")==0;
}

/* Inflate the shapefile parts of the zip pZip into *pSet (caller frees
** with memSetFree), and check the CRC of every other member. 0; 1 with
** p->zErr if the archive is whole but not a usable shapefile; 2 if it is
** damaged (not a zip, truncated, a CRC mismatch), which a download can
** cure by fetching it again. */
static int zipToSet(TrShapes *p, const void *pZip, size_t nZip, MemSet *pSet){
  zip_error_t err;
  zip_source_t *src;
  zip_t *z;
  zip_int64_t nEntry, i;
  zip_int64_t iShp = -1, iShx = -1, iDbf = -1, iCpg = -1, iPrj = -1;
  char zBase[512];
  MemSet set;
  int rc = 1;
  memset(&set, 0, sizeof(set));
  sha256Hex(pZip, nZip, p->zSha256);
  if( nZip<4 || memcmp(pZip, "PK\003\004", 4)!=0 ){
    const unsigned char *a = (const unsigned char*)pZip;
    char zStart[24];
    size_t k, m = 0;
    for(k=0; k<nZip && k<16; k++){
      zStart[m++] = (a[k]>=32 && a[k]<127 && a[k]!='\'') ? (char)a[k] : '.';
    }
    zStart[m] = 0;
    if( nZip==0 ) setErr(p, "not a zip archive (empty file)");
    else setErr(p, "not a zip archive (starts with '%s')", zStart);
    return 2;
  }
  zip_error_init(&err);
  src = zip_source_buffer_create(pZip, nZip, 0, &err);
  if( src==0 ){
    setErr(p, "cannot read zip: %s", zip_error_strerror(&err));
    zip_error_fini(&err);
    return 1;
  }
  z = zip_open_from_source(src, ZIP_RDONLY|ZIP_CHECKCONS, &err);
  if( z==0 ){
    setErr(p, "not a valid zip archive: %s", zip_error_strerror(&err));
    zip_source_free(src);
    zip_error_fini(&err);
    return 2;
  }
  zip_error_fini(&err);
  nEntry = zip_get_num_entries(z, 0);
  for(i=0; i<nEntry; i++){
    const char *zName = zip_get_name(z, (zip_uint64_t)i, 0);
    if( zName==0 ) continue;
    if( unsafeName(zName) ){
      setErr(p, "member %s has an unsafe path", zName);
      goto done;
    }
    if( extIs(zName, ".shp") ){
      if( iShp>=0 ){ setErr(p, "the zip holds more than one .shp"); goto done; }
      iShp = i;
    }
  }
  if( iShp<0 ){ setErr(p, "the zip holds no .shp file"); goto done; }
  {
    const char *zShp = zip_get_name(z, (zip_uint64_t)iShp, 0);
    size_t n = strlen(zShp) - 4;
    if( n>=sizeof(zBase) ){ setErr(p, "member name too long"); goto done; }
    memcpy(zBase, zShp, n);
    zBase[n] = 0;
    for(i=0; i<nEntry; i++){
      const char *zName = zip_get_name(z, (zip_uint64_t)i, 0);
      if( zName==0 || strlen(zName)!=n+4 || strncmp(zName, zBase, n)!=0 ) continue;
      if( extIs(zName, ".shx") ) iShx = i;
      else if( extIs(zName, ".dbf") ) iDbf = i;
      else if( extIs(zName, ".cpg") ) iCpg = i;
      else if( extIs(zName, ".prj") ) iPrj = i;
    }
  }
  if( iShx<0 ){ setErr(p, "the zip holds no %s.shx", zBase); goto done; }
  if( iDbf<0 ){ setErr(p, "the zip holds no %s.dbf", zBase); goto done; }
  /* every member is read through, so that every CRC is checked; the
  ** shapefile's parts are kept */
  for(i=0; i<nEntry; i++){
    MemBuf *pBuf = i==iShp ? &set.shp : i==iShx ? &set.shx
                 : i==iDbf ? &set.dbf : i==iCpg ? &set.cpg
                 : i==iPrj ? &set.prj : 0;
    zip_stat_t st;
    zip_stat_init(&st);
    if( zip_stat_index(z, (zip_uint64_t)i, 0, &st)
     || !(st.valid & ZIP_STAT_SIZE) || !(st.valid & ZIP_STAT_NAME) ){
      const char *zName = zip_get_name(z, (zip_uint64_t)i, 0);
      setErr(p, "cannot stat member %s", zName ? zName : "(unnamed)");
      goto done;
    }
    rc = zipMember(p, z, nZip, (zip_uint64_t)i, st.name, &st, pBuf);
    if( rc ) goto done;
    rc = 1;
  }
  zip_discard(z);
  z = 0;
  *pSet = set;
  memset(&set, 0, sizeof(set));
  rc = 0;
done:
  if( z ) zip_discard(z);
  memSetFree(&set);
  return rc;
}

/* Read zPath with extension zExt swapped for the ".shp" of zShp. */
static int readSibling(TrShapes *p, const char *zShp, const char *zExt,
                       MemBuf *pBuf, int bRequired){
  size_t n = strlen(zShp);
  char *zPath = malloc(n + 1);
  int rc, k;
  if( zPath==0 ) return setErr(p, "out of memory");
  memcpy(zPath, zShp, n+1);
  for(k=0; k<3; k++){
    /* keep the case of the .shp's extension */
    char c = zExt[k+1];
    zPath[n-3+k] = isupper((unsigned char)zShp[n-3+k]) ? (char)toupper(c) : c;
  }
  rc = readFile(zPath, pBuf, TR_MAX_MEMBER);
  if( rc && (bRequired || rc!=ENOENT) ){
    setErr(p, "cannot read %s: %s", zPath, strerror(rc));
    free(zPath);
    return 1;
  }
  free(zPath);
  return 0;
}

/* Read zPath (a zip, or a .shp with its siblings) into *pSet. */
static int pathToSet(TrShapes *p, const char *zPath, MemSet *pSet){
  MemBuf file;
  int rc;
  memset(pSet, 0, sizeof(*pSet));
  if( extIs(zPath, ".shp") ){
    rc = readFile(zPath, &pSet->shp, TR_MAX_MEMBER);
    if( rc ) return setErr(p, "cannot read: %s", strerror(rc));
    sha256Hex(pSet->shp.a, pSet->shp.n, p->zSha256);
    if( readSibling(p, zPath, ".shx", &pSet->shx, 1)
     || readSibling(p, zPath, ".dbf", &pSet->dbf, 1)
     || readSibling(p, zPath, ".cpg", &pSet->cpg, 0)
     || readSibling(p, zPath, ".prj", &pSet->prj, 0) ){
      memSetFree(pSet);
      return 1;
    }
    return 0;
  }
  rc = readFile(zPath, &file, (int64_t)4 << 30);
  if( rc==EFBIG ) return setErr(p, "file is larger than 4 GiB");
  if( rc ) return setErr(p, "cannot read: %s", strerror(rc));
  rc = zipToSet(p, file.a, file.n, pSet);   /* 0, 1 or 2 */
  free(file.a);
  return rc;
}

/* A PROJ context and the transformation to NAD83 made in it, used by one
** thread at a time. A source keeps those its readers made, so a reader
** builds one per file rather than one per range: for NAD27 PROJ takes
** 0.15-0.2 s to choose among the datum shifts. */
typedef struct ProjSlot ProjSlot;
struct ProjSlot {
  PJ_CONTEXT *ctx;
  PJ *pj;
  ProjSlot *pNext;
};

static void projSlotFree(ProjSlot *q){
  if( q->pj ) proj_destroy(q->pj);
  if( q->ctx ) proj_context_destroy(q->ctx);
  free(q);
}

/* A shapefile opened for reading by ranges. */
struct TrSource {
  const TrLayer *pLayer;  /* the layer read */
  MemSet set;             /* the parts, in memory */
  int nRec;               /* records */
  int aiField[TR_MAX_FIELDS];  /* DBF field of each layer field */
  char zEnc[80];          /* iconv name of the DBF's text encoding, "" UTF-8 */
  int bProject;           /* vertices are reprojected to NAD83 lon/lat */
  char zSha256[65];       /* of the file */
  pthread_mutex_t muProj; /* guards pProj */
  ProjSlot *pProj;        /* transformations not in use (bProject) */
};

static int sourceFinish(TrSource **pp, const TrLayer *pLayer, MemSet *pSet,
                        TrShapes *pErr, char *zErr){
  TrSource *s = calloc(1, sizeof(TrSource));
  if( s==0 ){
    memSetFree(pSet);
    snprintf(zErr, TR_ERR_SIZE, "out of memory");
    return 1;
  }
  pthread_mutex_init(&s->muProj, 0);
  s->pLayer = pLayer;
  s->set = *pSet;
  memcpy(s->zSha256, pErr->zSha256, sizeof(s->zSha256));
  if( openCheck(pErr, pLayer, &s->set, &s->nRec, s->aiField, s->zEnc,
                sizeof(s->zEnc), &s->bProject) ){
    snprintf(zErr, TR_ERR_SIZE, "%s", pErr->zErr);
    trSourceClose(s);
    return 1;
  }
  *pp = s;
  return 0;
}

int trSourceOpen(TrSource **pp, const TrLayer *pLayer, const char *zPath,
                 char *zErr){
  TrShapes tmp;
  MemSet set;
  int rc;
  *pp = 0;
  memset(&tmp, 0, sizeof(tmp));
  rc = pathToSet(&tmp, zPath, &set);
  if( rc ){
    snprintf(zErr, TR_ERR_SIZE, "%s", tmp.zErr);
    return rc;
  }
  return sourceFinish(pp, pLayer, &set, &tmp, zErr);
}

int trSourceOpenZipMem(TrSource **pp, const TrLayer *pLayer,
                       const void *pZip, size_t nZip, char *zErr){
  TrShapes tmp;
  MemSet set;
  *pp = 0;
  memset(&tmp, 0, sizeof(tmp));
  if( zipToSet(&tmp, pZip, nZip, &set) ){
    snprintf(zErr, TR_ERR_SIZE, "%s", tmp.zErr);
    return 1;
  }
  return sourceFinish(pp, pLayer, &set, &tmp, zErr);
}

int trSourceCount(const TrSource *s){ return s->nRec; }
const char *trSourceSha256(const TrSource *s){ return s->zSha256; }

TrField *trSourceFields(const TrSource *s, int *pnField){
  SAHooks hooks;
  char zName[64];
  DBFHandle hDbf;
  TrField *a = 0;
  int n, i;
  size_t nByte;
  *pnField = 0;
  memHooks(&hooks);
  snprintf(zName, sizeof(zName), "trmem/%p", (void*)&s->set);
  hDbf = DBFOpenLL(zName, "rb", &hooks);
  if( hDbf==0 ) return 0;
  n = DBFGetFieldCount(hDbf);
  if( n<0 ) n = 0;
  nByte = sizeof(TrField)*(size_t)(n ? n : 1) + (size_t)n*12;
  a = malloc(nByte);
  if( a ){
    char *z = (char*)&a[n ? n : 1];
    for(i=0; i<n; i++){
      int nWidth = 0, nDec = 0;
      char zF[XBASE_FLDNAME_LEN_READ+1];
      char c;
      zF[0] = 0;
      DBFGetFieldInfo(hDbf, i, zF, &nWidth, &nDec);
      zF[11] = 0;
      c = DBFGetNativeFieldType(hDbf, i);
      memcpy(z, zF, strlen(zF)+1);
      a[i].zName = z;
      a[i].zDbf = 0;
      z += 12;
      /* numbers as numbers, except integers too wide for 64 bits: their
      ** digits are kept as text */
      a[i].bInteger = (c=='N' || c=='F') ? (nDec>0 ? 2 : nWidth>18 ? 0 : 1) : 0;
    }
    *pnField = n;
  }
  DBFClose(hDbf);
  return a;
}

int trSourceRead(TrSource *s, int iFirst, int n, int bRepair, TrShapes *p){
  ProjSlot *q = 0;
  int rc;
  memset(p, 0, sizeof(*p));
  memcpy(p->zSha256, s->zSha256, sizeof(p->zSha256));
  if( iFirst<0 || n<0 || iFirst>s->nRec - n ){
    return setErr(p, "records %d to %d are out of range", iFirst+1, iFirst+n);
  }
  if( s->bProject ){
    pthread_mutex_lock(&s->muProj);
    q = s->pProj;
    if( q ) s->pProj = q->pNext;
    pthread_mutex_unlock(&s->muProj);
    if( q==0 ){
      int bNone = 0;
      q = calloc(1, sizeof(ProjSlot));
      if( q==0 ) return setErr(p, "out of memory");
      q->ctx = projContext();
      q->pj = q->ctx ? prjToNad83(p, q->ctx, &s->set.prj, s->pLayer->srid,
                                  &bNone) : 0;
      if( q->pj==0 ){
        if( q->ctx==0 ) setErr(p, "out of memory");
        projSlotFree(q);
        return 1;
      }
    }
  }
  rc = readRange(p, s->pLayer, &s->set, s->aiField, s->zEnc, q ? q->pj : 0,
                 iFirst, n, bRepair);
  if( q ){
    pthread_mutex_lock(&s->muProj);
    q->pNext = s->pProj;
    s->pProj = q;
    pthread_mutex_unlock(&s->muProj);
  }
  return rc;
}

void trSourceClose(TrSource *s){
  if( s==0 ) return;
  while( s->pProj ){
    ProjSlot *q = s->pProj;
    s->pProj = q->pNext;
    projSlotFree(q);
  }
  pthread_mutex_destroy(&s->muProj);
  memSetFree(&s->set);
  free(s);
}
