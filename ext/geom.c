/*
** geom.c - polygon geometry in flat arrays, SpatiaLite BLOBs and GEOS.
**
** What it does
**
**   A TrGeom (tracts_int.h) holds a POLYGON or MULTIPOLYGON as three flat
**   arrays (rings per polygon, points per ring, coordinates). This file
**   makes one from the rings of a shapefile record, writes and reads the
**   SpatiaLite geometry BLOB format, converts to and from GEOS, and checks
**   validity with GEOS, repairing invalid polygons when asked.
**
** SpatiaLite BLOB format (little-endian, as SpatiaLite writes it on x86):
**
**   0x00 | 0x01 | srid:i32 | minx maxx... (4 doubles: minx,miny,maxx,maxy)
**   | 0x7C | class:i32 (3 POLYGON, 6 MULTIPOLYGON) | body | 0xFE
**
**   A MULTIPOLYGON body is nPoly:i32, then per polygon 0x69, class 3:i32,
**   nRing:i32 and per ring nPt:i32 and nPt (x,y) doubles. A POLYGON body
**   is nRing:i32 and the rings. We always write MULTIPOLYGON so the column
**   has one type; we read both. Big-endian, compressed and Z/M blobs are
**   refused as malformed (we never write them).
**
** Shapefile rings
**
**   A shapefile polygon is a list of rings: outer rings clockwise, holes
**   counter-clockwise. Each hole goes to the smallest outer ring that
**   contains its first point; a hole no outer contains becomes an outer
**   (as GDAL does); if there is no clockwise ring at all, every ring is an
**   outer (files written with the opposite orientation). Unclosed rings are
**   closed; rings with fewer than 4 points after that are dropped.
**
** Limits and rules
**
**   Nothing here calls SQLite; memory is malloc/free. Inputs are never
**   trusted: every count in a blob is checked against the blob's size.
**   GEOS objects are made and freed on the caller's context; a context is
**   used by one thread at a time.
**
** Validity, fast
**
**   GEOS's isValid costs about 50 us for a 200-vertex tract, most of a
**   national load. trGeomProvenValid() first tries to prove a geometry
**   valid cheaply: a grid of cells over the edges shows no two meet
**   (except neighbours at their shared vertex, which must not fold back),
**   and one point per ring shows the rings nest as OGC requires (holes
**   inside their shell and outside each other, no shell inside another
**   polygon's area). Orientation signs are trusted only when a
**   floating-point error bound proves them; anything it cannot prove
**   (touching rings, collinear overlaps, near-misses) goes to GEOS, which
**   decides. So the proof never accepts an invalid polygon; GEOS still
**   judges every polygon the proof cannot clear.
*/
#include "tracts_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOB_START   0x00
#define BLOB_LE      0x01
#define BLOB_MBR_END 0x7C
#define BLOB_ENTITY  0x69
#define BLOB_END     0xFE
#define CLASS_POLYGON      3
#define CLASS_MULTIPOLYGON 6
#define BLOB_HEADER  43      /* bytes up to and including the class */

void trGeomFree(TrGeom *p){
  free(p->aPolyRings);
  free(p->aRingPts);
  free(p->aXY);
  memset(p, 0, sizeof(*p));
}

void trGeomBox(TrGeom *p){
  int i;
  double *b = p->aBox;
  b[0] = b[1] = HUGE_VAL;
  b[2] = b[3] = -HUGE_VAL;
  for(i=0; i<p->nPt; i++){
    double x = p->aXY[2*i], y = p->aXY[2*i+1];
    if( x<b[0] ) b[0] = x;
    if( y<b[1] ) b[1] = y;
    if( x>b[2] ) b[2] = x;
    if( y>b[3] ) b[3] = y;
  }
  if( p->nPt==0 ) b[0] = b[1] = b[2] = b[3] = 0.0;
}

/* Twice the signed area of ring (x,y)[0..n-1]; negative when clockwise. */
static double ringArea2(const double *aX, const double *aY, int n){
  double s = 0.0;
  int i;
  for(i=0; i+1<n; i++){
    s += (aX[i] - aX[0])*(aY[i+1] - aY[0]) - (aX[i+1] - aX[0])*(aY[i] - aY[0]);
  }
  return s;
}

/* 1 if (x,y) is inside the closed ring of n points (even-odd rule). */
static int ringContains(const double *aX, const double *aY, int n,
                        double x, double y){
  int i, c = 0;
  for(i=0; i+1<n; i++){
    double xi = aX[i], yi = aY[i], xj = aX[i+1], yj = aY[i+1];
    if( (yi>y)!=(yj>y) && x < (xj-xi)*(y-yi)/(yj-yi) + xi ) c = !c;
  }
  return c;
}

/* A ring of the shapefile record being assembled. */
typedef struct RingInfo RingInfo;
struct RingInfo {
  int iStart;          /* first point in the record's arrays */
  int nPt;             /* points, not counting an added closing point */
  int bClose;          /* 1 if a closing point must be added */
  double area;         /* |area| */
  int bOuter;          /* 1 for a shell */
  int iOwner;          /* for a hole: index of its shell ring */
};

int trGeomFromRings(TrGeom *p, int nPart, const int *aPart, int nPt,
                    const double *aX, const double *aY, const char **pzErr){
  RingInfo *aR = 0;
  int nR = 0, i, j, nOuter = 0, nTotal = 0, iRing = 0, iPoly = 0, iPt = 0;
  memset(p, 0, sizeof(*p));
  if( nPart<=0 || nPt<=0 ){ *pzErr = "empty polygon"; return 1; }
  aR = calloc((size_t)nPart, sizeof(RingInfo));
  if( aR==0 ){ *pzErr = "out of memory"; return 1; }
  for(i=0; i<nPart; i++){
    int s = aPart[i], e = (i+1<nPart) ? aPart[i+1] : nPt, n, bClose;
    if( s<0 || e>nPt || s>e ){ free(aR); *pzErr = "bad ring offsets"; return 1; }
    n = e - s;
    for(j=s; j<e; j++){
      if( !isfinite(aX[j]) || !isfinite(aY[j]) ){
        free(aR); *pzErr = "non-finite coordinate"; return 1;
      }
    }
    bClose = n>0 && (aX[s]!=aX[e-1] || aY[s]!=aY[e-1]);
    if( n + bClose < 4 ) continue;             /* degenerate ring: drop */
    aR[nR].iStart = s;
    aR[nR].nPt = n;
    aR[nR].bClose = bClose;
    {
      double a = ringArea2(aX+s, aY+s, n);  /* closing edge adds 0 */
      aR[nR].bOuter = a<0.0;
      aR[nR].area = fabs(a);
    }
    aR[nR].iOwner = -1;
    nOuter += aR[nR].bOuter;
    nR++;
  }
  if( nR==0 ){ free(aR); *pzErr = "polygon has no ring of 4 or more points"; return 1; }
  if( nOuter==0 ){
    for(i=0; i<nR; i++) aR[i].bOuter = 1;
    nOuter = nR;
  }
  /* Each hole to the smallest shell containing its first point. */
  for(i=0; i<nR; i++){
    int best = -1;
    if( aR[i].bOuter ) continue;
    for(j=0; j<nR; j++){
      if( !aR[j].bOuter ) continue;
      if( best>=0 && aR[j].area>=aR[best].area ) continue;
      if( ringContains(aX+aR[j].iStart, aY+aR[j].iStart, aR[j].nPt,
                       aX[aR[i].iStart], aY[aR[i].iStart]) ){
        best = j;
      }
    }
    if( best<0 ){ aR[i].bOuter = 1; nOuter++; }
    else aR[i].iOwner = best;
  }
  for(i=0; i<nR; i++) nTotal += aR[i].nPt + aR[i].bClose;
  p->aPolyRings = malloc(sizeof(int)*(size_t)nOuter);
  p->aRingPts = malloc(sizeof(int)*(size_t)nR);
  p->aXY = malloc(sizeof(double)*2*(size_t)nTotal);
  if( !p->aPolyRings || !p->aRingPts || !p->aXY ){
    trGeomFree(p); free(aR); *pzErr = "out of memory"; return 1;
  }
  /* Emit shells in file order, each followed by its holes. */
  for(i=0; i<nR; i++){
    int k;
    if( !aR[i].bOuter ) continue;
    p->aPolyRings[iPoly] = 0;
    /* shell first */
    for(k=-1; k<nR; k++){
      const RingInfo *r;
      int m;
      if( k<0 ) r = &aR[i];
      else if( !aR[k].bOuter && aR[k].iOwner==i ) r = &aR[k];
      else continue;
      for(m=0; m<r->nPt; m++){
        p->aXY[2*iPt] = aX[r->iStart+m];
        p->aXY[2*iPt+1] = aY[r->iStart+m];
        iPt++;
      }
      if( r->bClose ){
        p->aXY[2*iPt] = aX[r->iStart];
        p->aXY[2*iPt+1] = aY[r->iStart];
        iPt++;
      }
      p->aRingPts[iRing++] = r->nPt + r->bClose;
      p->aPolyRings[iPoly]++;
    }
    iPoly++;
  }
  p->nPoly = iPoly;
  p->nRing = iRing;
  p->nPt = iPt;
  free(aR);
  trGeomBox(p);
  return 0;
}

/* ---- BLOB writing ---------------------------------------------------- */

static unsigned char *putI32(unsigned char *z, int32_t v){
  uint32_t u = (uint32_t)v;
  z[0] = (unsigned char)u; z[1] = (unsigned char)(u>>8);
  z[2] = (unsigned char)(u>>16); z[3] = (unsigned char)(u>>24);
  return z+4;
}
static unsigned char *putF64(unsigned char *z, double v){
  uint64_t u;
  int i;
  memcpy(&u, &v, 8);
  for(i=0; i<8; i++) z[i] = (unsigned char)(u>>(8*i));
  return z+8;
}
static int32_t getI32(const unsigned char *z){
  return (int32_t)((uint32_t)z[0] | (uint32_t)z[1]<<8
                   | (uint32_t)z[2]<<16 | (uint32_t)z[3]<<24);
}
static double getF64(const unsigned char *z){
  uint64_t u = 0;
  double v;
  int i;
  for(i=0; i<8; i++) u |= (uint64_t)z[i]<<(8*i);
  memcpy(&v, &u, 8);
  return v;
}

unsigned char *trGeomToBlob(const TrGeom *p, int srid, int *pnBlob){
  size_t n = BLOB_HEADER + 4 + (size_t)p->nPoly*9 + (size_t)p->nRing*4
           + (size_t)p->nPt*16 + 1;
  unsigned char *a, *z;
  int i, r = 0, k = 0;
  if( n>0x7fffffff ) return 0;
  a = z = malloc(n);
  if( a==0 ) return 0;
  *z++ = BLOB_START;
  *z++ = BLOB_LE;
  z = putI32(z, srid);
  z = putF64(z, p->aBox[0]); z = putF64(z, p->aBox[1]);
  z = putF64(z, p->aBox[2]); z = putF64(z, p->aBox[3]);
  *z++ = BLOB_MBR_END;
  z = putI32(z, CLASS_MULTIPOLYGON);
  z = putI32(z, p->nPoly);
  for(i=0; i<p->nPoly; i++){
    int j;
    *z++ = BLOB_ENTITY;
    z = putI32(z, CLASS_POLYGON);
    z = putI32(z, p->aPolyRings[i]);
    for(j=0; j<p->aPolyRings[i]; j++, r++){
      int m;
      z = putI32(z, p->aRingPts[r]);
      for(m=0; m<p->aRingPts[r]; m++, k++){
        z = putF64(z, p->aXY[2*k]);
        z = putF64(z, p->aXY[2*k+1]);
      }
    }
  }
  *z++ = BLOB_END;
  *pnBlob = (int)n;
  return a;
}

/* ---- BLOB reading ---------------------------------------------------- */

/* Read the rings of one polygon body at a[*pi], bounded by n. */
static int blobPolygon(const unsigned char *a, int n, int *pi,
                       int (*xRing)(void*, int, const unsigned char*),
                       void *pCtx){
  int i = *pi, nRing, j;
  if( n-i<4 ) return 1;
  nRing = getI32(a+i); i += 4;
  if( nRing<1 || nRing>(n-i)/4 ) return 1;
  for(j=0; j<nRing; j++){
    int nPt;
    if( n-i<4 ) return 1;
    nPt = getI32(a+i); i += 4;
    if( nPt<4 || nPt>(n-i)/16 ) return 1;
    if( xRing && xRing(pCtx, nPt, a+i) ) return 2;
    i += nPt*16;
  }
  *pi = i;
  return 0;
}

int trBlobRings(const unsigned char *a, int n, double *aBox,
                int (*xRing)(void*, int, const unsigned char*), void *pCtx){
  int i = BLOB_HEADER, cls, rc;
  if( a==0 || n<BLOB_HEADER+5 ) return 1;
  if( a[0]!=BLOB_START || a[1]!=BLOB_LE || a[38]!=BLOB_MBR_END ) return 1;
  if( a[n-1]!=BLOB_END ) return 1;
  n--;                                        /* exclude the end marker */
  if( aBox ){
    aBox[0] = getF64(a+6);  aBox[1] = getF64(a+14);
    aBox[2] = getF64(a+22); aBox[3] = getF64(a+30);
  }
  cls = getI32(a+39);
  if( cls==CLASS_POLYGON ){
    rc = blobPolygon(a, n, &i, xRing, pCtx);
    if( rc ) return rc;
  }else if( cls==CLASS_MULTIPOLYGON ){
    int nPoly, j;
    if( n-i<4 ) return 1;
    nPoly = getI32(a+i); i += 4;
    if( nPoly<1 || nPoly>(n-i)/9 ) return 1;
    for(j=0; j<nPoly; j++){
      if( n-i<5 || a[i]!=BLOB_ENTITY || getI32(a+i+1)!=CLASS_POLYGON ) return 1;
      i += 5;
      rc = blobPolygon(a, n, &i, xRing, pCtx);
      if( rc ) return rc;
    }
  }else{
    return 1;
  }
  return i==n ? 0 : 1;
}

/* Context for trGeomFromBlob: two passes, counting then filling. */
typedef struct BlobFill BlobFill;
struct BlobFill {
  TrGeom *p;
  int bFill;
};
static int blobCountRing(void *pCtx, int nPt, const unsigned char *aXY){
  BlobFill *f = (BlobFill*)pCtx;
  TrGeom *p = f->p;
  if( f->bFill ){
    int m;
    p->aRingPts[p->nRing] = nPt;
    for(m=0; m<2*nPt; m++) p->aXY[2*p->nPt + m] = getF64(aXY + 8*m);
  }
  p->nRing++;
  p->nPt += nPt;
  return 0;
}

int trGeomFromBlob(TrGeom *p, const unsigned char *a, int n){
  BlobFill f;
  int i, cls, nPoly;
  memset(p, 0, sizeof(*p));
  f.p = p;
  f.bFill = 0;
  if( trBlobRings(a, n, 0, blobCountRing, &f) ) return 1;
  cls = getI32(a+39);
  nPoly = cls==CLASS_POLYGON ? 1 : getI32(a+BLOB_HEADER);
  p->aPolyRings = malloc(sizeof(int)*(size_t)nPoly);
  p->aRingPts = malloc(sizeof(int)*(size_t)p->nRing);
  p->aXY = malloc(sizeof(double)*2*(size_t)p->nPt);
  if( !p->aPolyRings || !p->aRingPts || !p->aXY ){ trGeomFree(p); return 2; }
  p->nRing = p->nPt = 0;
  f.bFill = 1;
  trBlobRings(a, n, 0, blobCountRing, &f);
  /* rings per polygon from the blob's structure */
  if( cls==CLASS_POLYGON ){
    p->aPolyRings[0] = p->nRing;
  }else{
    int k = BLOB_HEADER + 4;
    for(i=0; i<nPoly; i++){
      int nRing = getI32(a+k+5), j;
      p->aPolyRings[i] = nRing;
      k += 9;
      for(j=0; j<nRing; j++) k += 4 + 16*getI32(a+k);
    }
  }
  p->nPoly = nPoly;
  trGeomBox(p);
  return 0;
}

/* ---- fast validity proof ---------------------------------------------- */

/* Orientation of (a, b, c) with a certainty filter: +1 or -1 when the sign
** is certain, 0 when it may be 0 (collinear or too close to tell). The
** bound is Shewchuk's ccwerrboundA for orient2d in doubles. */
static int orientSure(double ax, double ay, double bx, double by,
                      double cx, double cy){
  double l = (bx-ax)*(cy-ay), r = (by-ay)*(cx-ax), d = l - r;
  double bound = 3.3306690738754716e-16*(fabs(l) + fabs(r));
  if( d>bound ) return 1;
  if( -d>bound ) return -1;
  return 0;
}

/* One edge of the geometry being checked. */
typedef struct VEdge VEdge;
struct VEdge {
  double minx, maxx;       /* x range */
  double miny, maxy;       /* y range */
  int cx0, cy0, cx1, cy1;  /* range of grid cells its box covers */
  double x0, y0, x1, y1;   /* end points */
  int iRing, k;            /* ring number, position in the ring */
  int nRingEdge;           /* edges of that ring */
};

/* Bucket of coordinate v in [lo, lo + n*w), clamped: monotonic in v, so
** edges whose boxes meet share a bucket. iw is 1 / the bucket width. */
static int bucketOf(double v, double lo, double iw, int n){
  double t = (v - lo)*iw;
  int c;
  if( !(t>0.0) ) return 0;
  c = (int)t;
  return c>=n ? n-1 : c;
}

/* 1 if edges e and f (not adjacent, their boxes meeting) certainly do
** not meet. */
static int edgesApart(const VEdge *e, const VEdge *f){
  int o1, o2;
  o1 = orientSure(e->x0, e->y0, e->x1, e->y1, f->x0, f->y0);
  o2 = orientSure(e->x0, e->y0, e->x1, e->y1, f->x1, f->y1);
  if( o1!=0 && o1==o2 ) return 1;
  o1 = orientSure(f->x0, f->y0, f->x1, f->y1, e->x0, e->y0);
  o2 = orientSure(f->x0, f->y0, f->x1, f->y1, e->x1, e->y1);
  return o1!=0 && o1==o2;
}

/* Where (x,y) is relative to the ring of n points: 1 strictly inside, 0
** strictly outside, -1 cannot tell (on or too near an edge). */
static int ringSide(const double *a, int n, double x, double y){
  int i, c = 0;
  for(i=0; i+1<n; i++){
    double x0 = a[2*i], y0 = a[2*i+1], x1 = a[2*i+2], y1 = a[2*i+3];
    if( (y0>y)!=(y1>y) ){
      int o = orientSure(x0, y0, x1, y1, x, y);
      if( o==0 ) return -1;
      /* the edge crosses the horizontal line through (x,y): it is to the
      ** right of the point when the point is left of the upward edge */
      if( (y1>y0) ? o>0 : o<0 ) c = !c;
    }else if( y0==y && y1==y && ((x0<=x && x<=x1) || (x1<=x && x<=x0)) ){
      return -1;
    }
  }
  return c;
}

int trGeomProvenValid(const TrGeom *p){
  VEdge *a;
  int *aHead = 0, *aRef = 0;
  int nEdge = 0, i, r, k = 0, bOk = 0;
  int *aRingStart = 0;
  if( p->nPoly<1 || p->nRing<1 ) return 0;
  a = malloc(sizeof(VEdge)*(size_t)(p->nPt > 0 ? p->nPt : 1));
  aRingStart = malloc(sizeof(int)*(size_t)(p->nRing + 1));
  if( a==0 || aRingStart==0 ) goto done;
  /* edges of every ring, skipping repeated points */
  for(r=0; r<p->nRing; r++){
    const double *v = p->aXY + 2*(size_t)k;
    int n = p->aRingPts[r], m = 0, first = nEdge;
    aRingStart[r] = k;
    for(i=0; i+1<n; i++){
      VEdge *e;
      if( v[2*i]==v[2*i+2] && v[2*i+1]==v[2*i+3] ) continue;
      e = &a[nEdge++];
      e->x0 = v[2*i]; e->y0 = v[2*i+1]; e->x1 = v[2*i+2]; e->y1 = v[2*i+3];
      e->minx = e->x0<e->x1 ? e->x0 : e->x1;
      e->maxx = e->x0<e->x1 ? e->x1 : e->x0;
      e->miny = e->y0<e->y1 ? e->y0 : e->y1;
      e->maxy = e->y0<e->y1 ? e->y1 : e->y0;
      e->iRing = r;
      e->k = m++;
    }
    if( m<3 ) goto done;                       /* not a ring */
    for(i=first; i<nEdge; i++) a[i].nRingEdge = m;
    /* consecutive edges must not fold back onto each other */
    for(i=0; i<m; i++){
      const VEdge *e = &a[first+i], *f = &a[first + (i+1)%m];
      if( orientSure(e->x0, e->y0, e->x1, e->y1, f->x1, f->y1)==0 ){
        double dot = (e->x1-e->x0)*(f->x1-f->x0) + (e->y1-e->y0)*(f->y1-f->y0);
        if( !(dot>0.0) ) goto done;
      }
    }
    k += n;
  }
  aRingStart[p->nRing] = k;
  /* no two edges meet, except neighbours in a ring at their shared point:
  ** edges go into a grid of square cells about twice the mean edge long
  ** (so a cell holds a few edges: the boundary is a curve, it fills few
  ** cells), at most 4 cells per edge on average. Each edge, as it goes in,
  ** is tested against those already in its cells; a pair is tested in the
  ** first cell both boxes cover. */
  {
    double s = 0.0, cell, W = p->aBox[2] - p->aBox[0], H = p->aBox[3] - p->aBox[1];
    size_t nRef = 0, nCell;
    int Gx, Gy;
    for(i=0; i<nEdge; i++){
      s += (a[i].maxx - a[i].minx) + (a[i].maxy - a[i].miny);
    }
    cell = 2.0*s/nEdge;
    if( !(W>0.0) || !(H>0.0) || !(cell>0.0) ) goto done;
    /* at most 4 x nEdge cells: coarser when the edges are short */
    if( (W/cell + 1.0)*(H/cell + 1.0) > 4.0*nEdge ){
      cell = sqrt(W*H/(4.0*nEdge));
      if( cell<W/65536.0 ) cell = W/65536.0;
      if( cell<H/65536.0 ) cell = H/65536.0;
    }
    Gx = (int)(W/cell) + 1;
    Gy = (int)(H/cell) + 1;
    if( Gx>65536 ) Gx = 65536;
    if( Gy>65536 ) Gy = 65536;
    nCell = (size_t)Gx*(size_t)Gy;
    if( nCell > 8*(size_t)nEdge + 64 ) goto done;
    {
      double ix = 1.0/cell, x0 = p->aBox[0], y0 = p->aBox[1];
      for(i=0; i<nEdge; i++){
        VEdge *e = &a[i];
        e->cx0 = bucketOf(e->minx, x0, ix, Gx);
        e->cx1 = bucketOf(e->maxx, x0, ix, Gx);
        e->cy0 = bucketOf(e->miny, y0, ix, Gy);
        e->cy1 = bucketOf(e->maxy, y0, ix, Gy);
        nRef += (size_t)(e->cx1 - e->cx0 + 1)*(size_t)(e->cy1 - e->cy0 + 1);
      }
    }
    if( nRef > 16*(size_t)nEdge ) goto done;    /* long edges: GEOS */
    if( nRef >= 0x3fffffff ) goto done;         /* entries count in an int */
    /* each cell is a list of the edges put in it so far (aHead: 1 + the
    ** newest entry, 0 for none; aRef: pairs of edge number and the entry
    ** below it); an edge meets the ones before it in each of its cells */
    aHead = calloc(nCell, sizeof(int));
    aRef = malloc(sizeof(int)*2*(nRef ? nRef : 1));
    if( aHead==0 || aRef==0 ) goto done;
    {
      int nUsed = 0;
      for(i=0; i<nEdge; i++){
        const VEdge *e = &a[i];
        int x, y;
        for(y=e->cy0; y<=e->cy1; y++){
          for(x=e->cx0; x<=e->cx1; x++){
            int *pHead = &aHead[(size_t)y*Gx + x], m;
            for(m=*pHead; m; m=aRef[2*(m-1)+1]){
              const VEdge *f;
              if( aRef[2*(m-1)]==i-1 && e->k>0 ) continue;  /* neighbours */
              f = &a[aRef[2*(m-1)]];
              if( e->maxx<f->minx || f->maxx<e->minx
               || e->maxy<f->miny || f->maxy<e->miny ) continue;
              if( (e->cx0>f->cx0 ? e->cx0 : f->cx0)!=x
               || (e->cy0>f->cy0 ? e->cy0 : f->cy0)!=y ) continue;  /* tested in another */
              if( e->iRing==f->iRing ){
                int d = e->k - f->k;
                if( d<0 ) d = -d;
                if( d==1 || d==e->nRingEdge-1 ) continue;   /* neighbours */
              }
              if( !edgesApart(e, f) ) goto done;
            }
            aRef[2*nUsed] = i;
            aRef[2*nUsed+1] = *pHead;
            *pHead = ++nUsed;
          }
        }
      }
    }
  }
  /* nesting: holes inside their shell and outside the other holes; no
  ** shell inside another polygon's area */
  {
    int iRing = 0, iPoly, q;
    int *aFirst = malloc(sizeof(int)*(size_t)(p->nPoly + 1));
    if( aFirst==0 ) goto done;
    for(iPoly=0; iPoly<p->nPoly; iPoly++){
      aFirst[iPoly] = iRing;
      iRing += p->aPolyRings[iPoly];
    }
    aFirst[p->nPoly] = iRing;
#define RING(x) (p->aXY + 2*(size_t)aRingStart[x])
#define RINGN(x) (p->aRingPts[x])
    for(iPoly=0; iPoly<p->nPoly; iPoly++){
      int s = aFirst[iPoly], h;
      for(h=s+1; h<aFirst[iPoly+1]; h++){
        const double *v = RING(h);
        int hh;
        if( ringSide(RING(s), RINGN(s), v[0], v[1])!=1 ){ free(aFirst); goto done; }
        for(hh=s+1; hh<aFirst[iPoly+1]; hh++){
          if( hh!=h && ringSide(RING(hh), RINGN(hh), v[0], v[1])!=0 ){
            free(aFirst); goto done;
          }
        }
      }
      for(q=0; q<p->nPoly; q++){
        const double *v = RING(s);
        int sq = aFirst[q], side, h2;
        if( q==iPoly ) continue;
        side = ringSide(RING(sq), RINGN(sq), v[0], v[1]);
        if( side<0 ){ free(aFirst); goto done; }
        if( side==1 ){
          /* inside q's shell: must be inside one of q's holes */
          int bInHole = 0;
          for(h2=sq+1; h2<aFirst[q+1]; h2++){
            int t = ringSide(RING(h2), RINGN(h2), v[0], v[1]);
            if( t<0 ){ free(aFirst); goto done; }
            if( t==1 ) bInHole = 1;
          }
          if( !bInHole ){ free(aFirst); goto done; }
        }
      }
    }
#undef RING
#undef RINGN
    free(aFirst);
  }
  bOk = 1;
done:
  free(a);
  free(aHead);
  free(aRef);
  free(aRingStart);
  return bOk;
}

/* ---- GEOS ------------------------------------------------------------ */

static void geosMessage(const char *zMsg, void *pUser){
  TrGeosErr *p = (TrGeosErr*)pUser;
  snprintf(p->zMsg, sizeof(p->zMsg), "%s", zMsg ? zMsg : "unknown error");
}

GEOSContextHandle_t trGeosInit(TrGeosErr *pErr){
  GEOSContextHandle_t h = GEOS_init_r();
  if( h==0 ) return 0;
  pErr->zMsg[0] = 0;
  GEOSContext_setErrorMessageHandler_r(h, geosMessage, pErr);
  GEOSContext_setNoticeMessageHandler_r(h, 0, 0);
  return h;
}

GEOSGeometry *trGeomToGeos(GEOSContextHandle_t h, const TrGeom *p){
  GEOSGeometry **aPoly = calloc((size_t)(p->nPoly ? p->nPoly : 1),
                                sizeof(GEOSGeometry*));
  GEOSGeometry *pRes = 0;
  int i, r = 0, k = 0, nDone = 0;
  if( aPoly==0 ) return 0;
  for(i=0; i<p->nPoly; i++){
    int nRing = p->aPolyRings[i], j;
    GEOSGeometry *pShell = 0, **aHole = 0;
    aHole = calloc((size_t)(nRing ? nRing : 1), sizeof(GEOSGeometry*));
    if( aHole==0 ) goto fail;
    for(j=0; j<nRing; j++, r++){
      GEOSCoordSequence *pSeq = GEOSCoordSeq_copyFromBuffer_r(
          h, p->aXY + 2*k, (unsigned)p->aRingPts[r], 0, 0);
      GEOSGeometry *pRing;
      k += p->aRingPts[r];
      pRing = pSeq ? GEOSGeom_createLinearRing_r(h, pSeq) : 0;
      if( pRing==0 ){
        int m;
        if( pShell ) GEOSGeom_destroy_r(h, pShell);
        for(m=0; m<j-1; m++) GEOSGeom_destroy_r(h, aHole[m]);
        free(aHole);
        goto fail;
      }
      if( j==0 ) pShell = pRing; else aHole[j-1] = pRing;
    }
    aPoly[i] = GEOSGeom_createPolygon_r(h, pShell, aHole, (unsigned)(nRing-1));
    free(aHole);
    if( aPoly[i]==0 ) goto fail;
    nDone++;
  }
  pRes = GEOSGeom_createCollection_r(h, GEOS_MULTIPOLYGON, aPoly,
                                     (unsigned)p->nPoly);
  if( pRes==0 ) goto fail;
  free(aPoly);
  return pRes;
fail:
  for(i=0; i<nDone; i++) GEOSGeom_destroy_r(h, aPoly[i]);
  free(aPoly);
  return 0;
}

/* Append the polygons of g (recursing into collections) to *p, whose
** arrays are grown as needed. Returns 0, or 1 on failure. */
typedef struct GeomAcc GeomAcc;
struct GeomAcc {
  TrGeom *p;
  int nPolyAlloc, nRingAlloc, nPtAlloc;
};
static int growInts(int **pa, int *pnAlloc, int nNeed){
  if( nNeed>*pnAlloc ){
    int n = nNeed*2 + 8;
    int *a = realloc(*pa, sizeof(int)*(size_t)n);
    if( a==0 ) return 1;
    *pa = a;
    *pnAlloc = n;
  }
  return 0;
}
static int accRing(GEOSContextHandle_t h, GeomAcc *pAcc,
                   const GEOSGeometry *pRing){
  TrGeom *p = pAcc->p;
  const GEOSCoordSequence *pSeq = GEOSGeom_getCoordSeq_r(h, pRing);
  unsigned int n = 0;
  if( pSeq==0 || !GEOSCoordSeq_getSize_r(h, pSeq, &n) ) return 1;
  if( growInts(&p->aRingPts, &pAcc->nRingAlloc, p->nRing+1) ) return 1;
  if( p->nPt + (int)n > pAcc->nPtAlloc ){
    int nNew = (p->nPt + (int)n)*2 + 16;
    double *a = realloc(p->aXY, sizeof(double)*2*(size_t)nNew);
    if( a==0 ) return 1;
    p->aXY = a;
    pAcc->nPtAlloc = nNew;
  }
  if( n>0 && !GEOSCoordSeq_copyToBuffer_r(h, pSeq, p->aXY + 2*p->nPt, 0, 0) ){
    return 1;
  }
  p->aRingPts[p->nRing++] = (int)n;
  p->nPt += (int)n;
  return 0;
}
static int accGeom(GEOSContextHandle_t h, GeomAcc *pAcc, const GEOSGeometry *g){
  int t = GEOSGeomTypeId_r(h, g), i, n;
  TrGeom *p = pAcc->p;
  if( t==GEOS_POLYGON ){
    const GEOSGeometry *pShell;
    if( GEOSisEmpty_r(h, g)==1 ) return 0;
    n = GEOSGetNumInteriorRings_r(h, g);
    pShell = GEOSGetExteriorRing_r(h, g);
    if( n<0 || pShell==0 ) return 1;
    if( growInts(&p->aPolyRings, &pAcc->nPolyAlloc, p->nPoly+1) ) return 1;
    if( accRing(h, pAcc, pShell) ) return 1;
    for(i=0; i<n; i++){
      const GEOSGeometry *pHole = GEOSGetInteriorRingN_r(h, g, i);
      if( pHole==0 || accRing(h, pAcc, pHole) ) return 1;
    }
    p->aPolyRings[p->nPoly++] = n+1;
    return 0;
  }
  if( t==GEOS_MULTIPOLYGON || t==GEOS_GEOMETRYCOLLECTION ){
    n = GEOSGetNumGeometries_r(h, g);
    if( n<0 ) return 1;
    for(i=0; i<n; i++){
      const GEOSGeometry *pSub = GEOSGetGeometryN_r(h, g, i);
      if( pSub==0 || accGeom(h, pAcc, pSub) ) return 1;
    }
    return 0;
  }
  return 0;                     /* points and lines are not polygonal */
}

int trGeomFromGeos(GEOSContextHandle_t h, const GEOSGeometry *g, TrGeom *p){
  GeomAcc acc;
  memset(p, 0, sizeof(*p));
  memset(&acc, 0, sizeof(acc));
  acc.p = p;
  if( accGeom(h, &acc, g) ){ trGeomFree(p); return 1; }
  trGeomBox(p);
  return 0;
}

int trGeomValidate(GEOSContextHandle_t h, TrGeom *p, int bRepair,
                   char *zErr, int nErr){
  GEOSGeometry *g, *pFixed = 0;
  GEOSMakeValidParams *pParams = 0;
  TrGeom fixed;
  char v;
  int rc;
  if( trGeomProvenValid(p) ) return 0;
  g = trGeomToGeos(h, p);
  if( g==0 ){
    snprintf(zErr, (size_t)nErr, "GEOS could not build the geometry");
    return -2;
  }
  v = GEOSisValid_r(h, g);
  if( v==1 ){ GEOSGeom_destroy_r(h, g); return 0; }
  if( v!=0 ){
    GEOSGeom_destroy_r(h, g);
    snprintf(zErr, (size_t)nErr, "GEOS validity check failed");
    return -2;
  }
  {
    char *zWhy = GEOSisValidReason_r(h, g);
    snprintf(zErr, (size_t)nErr, "%s", zWhy ? zWhy : "invalid polygon");
    if( zWhy ) GEOSFree_r(h, zWhy);
  }
  if( !bRepair ){ GEOSGeom_destroy_r(h, g); return -1; }
  pParams = GEOSMakeValidParams_create_r(h);
  if( pParams ){
    GEOSMakeValidParams_setMethod_r(h, pParams, GEOS_MAKE_VALID_STRUCTURE);
    GEOSMakeValidParams_setKeepCollapsed_r(h, pParams, 0);
    pFixed = GEOSMakeValidWithParams_r(h, g, pParams);
    GEOSMakeValidParams_destroy_r(h, pParams);
  }
  GEOSGeom_destroy_r(h, g);
  if( pFixed==0 ) return -2;
  rc = trGeomFromGeos(h, pFixed, &fixed);
  GEOSGeom_destroy_r(h, pFixed);
  if( rc ){
    snprintf(zErr, (size_t)nErr, "out of memory repairing polygon");
    return -2;
  }
  if( fixed.nPoly==0 ){
    trGeomFree(&fixed);
    return -1;                  /* nothing polygonal left: keep reason */
  }
  trGeomFree(p);
  *p = fixed;
  return 1;
}
