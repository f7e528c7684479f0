/*
** unit.c - C unit tests of the point-in-polygon index and the geometry
** BLOB codec, without SQLite.
**
** The index is checked against a brute-force answer computed here with
** the definition itself: for every polygon, is the point on one of its
** edges (exact integer test) or inside by the even-odd rule; the answer
** is the lowest such polygon. Both work on the same 1e-7 degree grid, so
** they must agree on every point, including points on edges and vertices.
**
** Fixtures are random partitions: a jittered grid of quads whose shared
** edges are random polylines (identical vertices on both sides), some
** quads with a hole filled by another polygon, some multipolygons with an
** island, plus overlapping polygons to exercise the lowest-number rule.
**
** Output: one line per failed check, then "unit: N passed, N failed".
*/
#include "../ext/tracts_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int nPass, nFail;

#define CHECK(cond, ...) do{ if(cond){ nPass++; }else{ nFail++; \
  printf("FAIL %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); \
  printf("\n"); } }while(0)

static uint64_t rngState = 88172645463325252ull;
static uint64_t rnd(void){
  uint64_t z = (rngState += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z>>30))*0xbf58476d1ce4e5b9ull;
  z = (z ^ (z>>27))*0x94d049bb133111ebull;
  return z ^ (z>>31);
}
static double frand(void){ return (double)(rnd()>>11)*(1.0/9007199254740992.0); }

/* A polygon of the fixture: rings as lon/lat doubles on the 1e-7 grid. */
typedef struct Poly Poly;
struct Poly {
  int nRing;
  int aN[8];            /* points per ring (closed) */
  double *aXY[8];       /* ring coordinates */
};

static double snap(double d){ return round(d*1e7)/1e7; }

/* ---- brute force ------------------------------------------------------ */

static int64_t q(double d, double off){ return llround((d+off)*1e7); }

static int onSeg(int64_t ax, int64_t ay, int64_t bx, int64_t by,
                 int64_t px, int64_t py){
  __int128 d = (__int128)(bx-ax)*(py-ay) - (__int128)(by-ay)*(px-ax);
  if( d!=0 ) return 0;
  return px>=(ax<bx?ax:bx) && px<=(ax<bx?bx:ax)
      && py>=(ay<by?ay:by) && py<=(ay<by?by:ay);
}

/* 2 on boundary, 1 inside, 0 outside */
static int bruteIn(const Poly *p, double lon, double lat){
  int64_t px = q(lon, 180), py = q(lat, 90);
  int r, c = 0;
  for(r=0; r<p->nRing; r++){
    int i;
    for(i=0; i+1<p->aN[r]; i++){
      int64_t ax = q(p->aXY[r][2*i], 180), ay = q(p->aXY[r][2*i+1], 90);
      int64_t bx = q(p->aXY[r][2*i+2], 180), by = q(p->aXY[r][2*i+3], 90);
      if( onSeg(ax, ay, bx, by, px, py) ) return 2;
      if( (ay>py)!=(by>py) ){
        /* x of the crossing compared exactly: px < ax + (bx-ax)(py-ay)/(by-ay) */
        __int128 lhs = (__int128)(px-ax)*(by-ay);
        __int128 rhs = (__int128)(bx-ax)*(py-ay);
        if( by>ay ? lhs<rhs : lhs>rhs ) c = !c;
      }
    }
  }
  return c;
}

static int64_t brute(Poly *aP, int n, double lon, double lat, int *pbEdge){
  int i;
  for(i=0; i<n; i++){
    int r = bruteIn(&aP[i], lon, lat);
    if( r ){ *pbEdge = r==2; return i; }
  }
  *pbEdge = 0;
  return -1;
}

/* ---- fixture ---------------------------------------------------------- */

/* Random polyline from a to b with k inner points, snapped. */
static double *polyline(double ax, double ay, double bx, double by, int k,
                        double jit){
  double *a = malloc(sizeof(double)*2*(size_t)(k+2));
  int i;
  a[0] = ax; a[1] = ay;
  for(i=1; i<=k; i++){
    double t = (double)i/(k+1);
    a[2*i] = snap(ax + (bx-ax)*t + (frand()-0.5)*jit);
    a[2*i+1] = snap(ay + (by-ay)*t + (frand()-0.5)*jit);
  }
  a[2*k+2] = bx; a[2*k+3] = by;
  return a;
}

static void ringAppend(double *aOut, int *pn, const double *aLine, int nPt,
                       int bRev){
  int i;
  for(i=0; i<nPt-1; i++){
    int j = bRev ? nPt-1-i : i;
    aOut[2*(*pn)] = aLine[2*j];
    aOut[2*(*pn)+1] = aLine[2*j+1];
    (*pn)++;
  }
}

/* A G x G grid over [x0,x0+w]x[y0,y0+w]. Returns polygons in *paP. */
static int makeGrid(Poly **paP, int G, double x0, double y0, double w, int k,
                    int bHoles, int bOverlap){
  int nMax = G*G + G*G + 4, n = 0, i, j;
  double *gx = malloc(sizeof(double)*(size_t)(G+1)*(G+1));
  double *gy = malloc(sizeof(double)*(size_t)(G+1)*(G+1));
  double **h = calloc((size_t)(G+1)*(G+1), sizeof(double*));  /* horizontal */
  double **v = calloc((size_t)(G+1)*(G+1), sizeof(double*));  /* vertical */
  Poly *aP = calloc((size_t)nMax, sizeof(Poly));
  double cw = w/G;
  for(j=0; j<=G; j++) for(i=0; i<=G; i++){
    double jx = (i>0 && i<G) ? (frand()-0.5)*cw*0.4 : 0;
    double jy = (j>0 && j<G) ? (frand()-0.5)*cw*0.4 : 0;
    gx[j*(G+1)+i] = snap(x0 + i*cw + jx);
    gy[j*(G+1)+i] = snap(y0 + j*cw + jy);
  }
  for(j=0; j<=G; j++) for(i=0; i<G; i++){
    int a = j*(G+1)+i, b = a+1;
    h[a] = polyline(gx[a], gy[a], gx[b], gy[b], (int)(rnd()%k), cw*0.2);
  }
  for(j=0; j<G; j++) for(i=0; i<=G; i++){
    int a = j*(G+1)+i, b = a+G+1;
    v[a] = polyline(gx[a], gy[a], gx[b], gy[b], (int)(rnd()%k), cw*0.2);
  }
  /* count of inner points is lost: recompute by matching the end point */
  for(j=0; j<G; j++) for(i=0; i<G; i++){
    Poly *p = &aP[n++];
    int a = j*(G+1)+i;
    double *ring = malloc(sizeof(double)*2*(size_t)(4*k+16));
    int m = 0, t;
    const double *lines[4];
    int rev[4], cnt[4];
    lines[0] = h[a];         rev[0] = 0;   /* bottom, left to right */
    lines[1] = v[a+1];       rev[1] = 0;   /* right, bottom to top */
    lines[2] = h[a+G+1];     rev[2] = 1;   /* top, right to left */
    lines[3] = v[a];         rev[3] = 1;   /* left, top to bottom */
    for(t=0; t<4; t++){
      /* find the polyline length: it ends at a grid vertex */
      const double *L = lines[t];
      int c = 1;
      double ex = t==0 ? gx[a+1] : t==1 ? gx[a+G+2] : t==2 ? gx[a+G+2] : gx[a+G+1];
      double ey = t==0 ? gy[a+1] : t==1 ? gy[a+G+2] : t==2 ? gy[a+G+2] : gy[a+G+1];
      while( !(L[2*c]==ex && L[2*c+1]==ey) ) c++;
      cnt[t] = c+1;
    }
    for(t=0; t<4; t++) ringAppend(ring, &m, lines[t], cnt[t], rev[t]);
    ring[2*m] = ring[0]; ring[2*m+1] = ring[1]; m++;
    p->nRing = 1;
    p->aN[0] = m;
    p->aXY[0] = ring;
    if( bHoles && (rnd()%4)==0 ){
      /* a square hole around the cell centre, filled by a new polygon */
      double cx = snap((gx[a]+gx[a+G+2])/2), cy = snap((gy[a]+gy[a+G+2])/2);
      double r = snap(cw*0.1);
      double *hole = malloc(sizeof(double)*10), *fill = malloc(sizeof(double)*10);
      double sq[10] = {cx-r,cy-r, cx+r,cy-r, cx+r,cy+r, cx-r,cy+r, cx-r,cy-r};
      memcpy(hole, sq, sizeof(sq));
      memcpy(fill, sq, sizeof(sq));
      p->aXY[1] = hole; p->aN[1] = 5; p->nRing = 2;
      aP[n].nRing = 1; aP[n].aN[0] = 5; aP[n].aXY[0] = fill; n++;
    }
  }
  if( bOverlap ){
    /* a polygon overlapping several cells: the lowest number wins */
    double *r = malloc(sizeof(double)*10);
    double s[10] = {x0+cw*0.5,y0+cw*0.5, x0+cw*2.5,y0+cw*0.7, x0+cw*2.2,y0+cw*2.9,
                    x0+cw*0.3,y0+cw*2.1, x0+cw*0.5,y0+cw*0.5};
    for(i=0; i<10; i++) s[i] = snap(s[i]);
    memcpy(r, s, sizeof(s));
    aP[n].nRing = 1; aP[n].aN[0] = 5; aP[n].aXY[0] = r; n++;
  }
  for(i=0; i<(G+1)*(G+1); i++){ free(h[i]); free(v[i]); }
  free(h); free(v); free(gx); free(gy);
  *paP = aP;
  return n;
}

static void putF64(unsigned char *z, double v){
  uint64_t u; int i;
  memcpy(&u, &v, 8);
  for(i=0; i<8; i++) z[i] = (unsigned char)(u>>(8*i));
}

static PipIndex *buildIndex(Poly *aP, int n){
  PipBuilder *b = pipBuilderNew();
  int i, r;
  for(i=0; i<n; i++){
    for(r=0; r<aP[i].nRing; r++){
      unsigned char *a = malloc(16*(size_t)aP[i].aN[r]);
      int k;
      for(k=0; k<2*aP[i].aN[r]; k++) putF64(a+8*k, aP[i].aXY[r][k]);
      if( pipBuilderRing(b, (uint32_t)i, aP[i].aN[r], a) ) printf("ring failed\n");
      free(a);
    }
  }
  return pipBuild(b);
}

static void freePolys(Poly *aP, int n){
  int i, r;
  for(i=0; i<n; i++) for(r=0; r<aP[i].nRing; r++) free(aP[i].aXY[r]);
  free(aP);
}

/* Brute-force nearest polygon within maxM metres (same metric as pip.c). */
static int64_t bruteNearest(Poly *aP, int n, double lon, double lat,
                            double maxM, double *pD){
  double ky = 6371008.8*3.14159265358979323846/180.0/1e7;
  double kx = ky*cos(lat*3.14159265358979323846/180.0);
  double px = (double)q(lon, 180), py = (double)q(lat, 90);
  double best = maxM*maxM;
  int64_t bestPoly = -1;
  int i, r, k;
  for(i=0; i<n; i++){
    for(r=0; r<aP[i].nRing; r++){
      for(k=0; k+1<aP[i].aN[r]; k++){
        double ax = (double)q(aP[i].aXY[r][2*k], 180), ay = (double)q(aP[i].aXY[r][2*k+1], 90);
        double bx = (double)q(aP[i].aXY[r][2*k+2], 180), by = (double)q(aP[i].aXY[r][2*k+3], 90);
        double x0 = (ax-px)*kx, y0 = (ay-py)*ky, dx = (bx-ax)*kx, dy = (by-ay)*ky;
        double l2 = dx*dx + dy*dy, t = 0, d;
        if( l2>0 ){ t = -(x0*dx + y0*dy)/l2; if( t<0 ) t = 0; else if( t>1 ) t = 1; }
        x0 += t*dx; y0 += t*dy;
        d = x0*x0 + y0*y0;
        if( d<best || (d==best && i<bestPoly) ){ best = d; bestPoly = i; }
      }
    }
  }
  *pD = sqrt(best);
  return bestPoly;
}

/* Compare index and brute force on random, vertex and edge points. */
static void testGrid(int G, double x0, double y0, double w, int k, int nRand,
                     int bHoles, int bOverlap){
  Poly *aP;
  int n = makeGrid(&aP, G, x0, y0, w, k, bHoles, bOverlap);
  PipIndex *pIdx = buildIndex(aP, n);
  int i, nBad = 0, nEdge = 0, nTot = 0;
  CHECK(pIdx!=0, "index built");
  if( pIdx==0 ) return;
  for(i=0; i<nRand; i++){
    double lon, lat;
    int e1, e2;
    int64_t a, b;
    int kind = (int)(rnd()%4);
    if( kind==0 ){
      /* a random vertex */
      Poly *p = &aP[rnd()%(uint64_t)n];
      int m = (int)(rnd()%(uint64_t)p->aN[0]);
      lon = p->aXY[0][2*m]; lat = p->aXY[0][2*m+1];
    }else if( kind==1 ){
      /* the midpoint of a random edge (on the grid: may be just off it) */
      Poly *p = &aP[rnd()%(uint64_t)n];
      int m = (int)(rnd()%(uint64_t)(p->aN[0]-1));
      lon = snap((p->aXY[0][2*m] + p->aXY[0][2*m+2])/2);
      lat = snap((p->aXY[0][2*m+1] + p->aXY[0][2*m+3])/2);
    }else{
      lon = snap(x0 - w*0.05 + frand()*w*1.1);
      lat = snap(y0 - w*0.05 + frand()*w*1.1);
    }
    a = pipLookup(pIdx, lon, lat, &e1);
    b = brute(aP, n, lon, lat, &e2);
    nTot++;
    nEdge += e2;
    if( a!=b || (a>=0 && e1!=e2) ){
      if( nBad<5 ) printf("  mismatch at (%.7f, %.7f): index %lld edge %d, "
                          "brute %lld edge %d\n", lon, lat, (long long)a, e1,
                          (long long)b, e2);
      nBad++;
    }
  }
  CHECK(nBad==0, "grid %dx%d at (%g,%g) size %g: %d of %d points differ",
        G, G, x0, y0, w, nBad, nTot);
  /* nearest polygon for points around the grid */
  {
    int nNear = 0, nNearBad = 0, nFound = 0;
    for(i=0; i<2000; i++){
      double lon = snap(x0 - w*0.1 + frand()*w*1.2);
      double lat = snap(y0 - w*0.1 + frand()*w*1.2);
      double maxM = 200.0 + frand()*w*40000.0, d1 = 0, d2 = 0;
      int e;
      int64_t a1, b1;
      if( lon>180.0 || brute(aP, n, lon, lat, &e)>=0 ) continue;
      nNear++;
      a1 = pipNearest(pIdx, lon, lat, maxM, &d1);
      b1 = bruteNearest(aP, n, lon, lat, maxM, &d2);
      nFound += a1>=0;
      if( a1!=b1 && !(a1>=0 && b1>=0 && fabs(d1-d2)<1e-6) ){
        if( nNearBad<5 ) printf("  nearest at (%.7f, %.7f) within %.0f m: index "
                                "%lld (%.3f m), brute %lld (%.3f m)\n", lon, lat,
                                maxM, (long long)a1, d1, (long long)b1, d2);
        nNearBad++;
      }
    }
    CHECK(nNearBad==0 && nFound>0, "grid %dx%d: nearest polygon for %d outside "
          "points (%d found, %d differ)", G, G, nNear, nFound, nNearBad);
  }
  CHECK(nEdge>nTot/20, "grid %dx%d: edge points exercised (%d)", G, G, nEdge);
  pipFree(pIdx);
  freePolys(aP, n);
}

static void testBlob(void){
  double x[] = {0,0,1,1,0, 0.2,0.4,0.4,0.2,0.2, 5,5,6,5};
  double y[] = {0,1,1,0,0, 0.2,0.2,0.4,0.4,0.2, 5,6,6,5};
  int aPart[] = {0, 5, 10};
  TrGeom g, g2;
  const char *zErr = 0;
  unsigned char *pBlob;
  int nBlob = 0, rc, i;
  rc = trGeomFromRings(&g, 3, aPart, 14, x, y, &zErr);
  CHECK(rc==0, "rings assembled (%s)", zErr ? zErr : "");
  CHECK(g.nPoly==2 && g.nRing==3 && g.aPolyRings[0]==2, "shell+hole, island: "
        "nPoly=%d nRing=%d", g.nPoly, g.nRing);
  pBlob = trGeomToBlob(&g, 4269, &nBlob);
  CHECK(pBlob!=0 && pBlob[0]==0 && pBlob[38]==0x7c && pBlob[nBlob-1]==0xfe,
        "blob markers");
  rc = trGeomFromBlob(&g2, pBlob, nBlob);
  CHECK(rc==0 && g2.nPt==g.nPt && g2.nPoly==2
        && memcmp(g2.aXY, g.aXY, sizeof(double)*2*(size_t)g.nPt)==0,
        "blob round trip");
  /* every truncation and every single-byte corruption is refused or parsed
  ** safely (ASan watches the reads) */
  for(i=0; i<nBlob; i++){
    TrGeom g3;
    if( trGeomFromBlob(&g3, pBlob, i)==0 ){ trGeomFree(&g3); CHECK(0, "truncated to %d accepted", i); }
  }
  for(i=0; i<nBlob; i++){
    TrGeom g3;
    unsigned char c = pBlob[i];
    pBlob[i] ^= 0xff;
    if( trGeomFromBlob(&g3, pBlob, nBlob)==0 ) trGeomFree(&g3);
    pBlob[i] = c;
  }
  nPass++;
  trGeomFree(&g2);
  trGeomFree(&g);
  free(pBlob);
  /* degenerate input */
  {
    double dx[] = {0,1,0}, dy[] = {0,0,0};
    int p0[] = {0};
    rc = trGeomFromRings(&g, 1, p0, 3, dx, dy, &zErr);
    CHECK(rc==1, "ring of 3 points refused");
    p0[0] = 7;
    rc = trGeomFromRings(&g, 1, p0, 3, dx, dy, &zErr);
    CHECK(rc==1, "bad part offset refused");
  }
}

/* Rings out of range or degenerate never break the builder. */
static void testBadRings(void){
  PipBuilder *b = pipBuilderNew();
  unsigned char a[16*5];
  double bad[10] = {200,0, 201,0, 201,1, 200,1, 200,0};
  double nanv[10] = {0,0, NAN,0, 1,1, 0,1, 0,0};
  PipIndex *p;
  int k, e;
  for(k=0; k<10; k++) putF64(a+8*k, bad[k]);
  CHECK(pipBuilderRing(b, 0, 5, a)!=0, "longitude 200 refused");
  for(k=0; k<10; k++) putF64(a+8*k, nanv[k]);
  CHECK(pipBuilderRing(b, 0, 5, a)!=0, "NaN refused");
  p = pipBuild(b);
  CHECK(p!=0 && pipLookup(p, 0.5, 0.5, &e)==-1, "empty index answers -1");
  CHECK(pipLookup(p, NAN, 0, &e)==-1 && pipLookup(p, 0, 91, &e)==-1,
        "bad points answer -1");
  pipFree(p);
}

/* The fast validity proof never clears a polygon GEOS finds invalid. */
static int geosValid(GEOSContextHandle_t h, const TrGeom *g){
  GEOSGeometry *p = trGeomToGeos(h, g);
  int v = p ? GEOSisValid_r(h, p) : -1;
  if( p ) GEOSGeom_destroy_r(h, p);
  return v;
}

static void checkProof(GEOSContextHandle_t h, const char *zName, int nPart,
                       const int *aPart, int nPt, const double *aX,
                       const double *aY, int expectProven){
  TrGeom g;
  const char *zErr = 0;
  int proven, valid;
  if( trGeomFromRings(&g, nPart, aPart, nPt, aX, aY, &zErr) ){
    CHECK(expectProven==0, "%s: not assembled (%s)", zName, zErr);
    return;
  }
  proven = trGeomProvenValid(&g);
  valid = geosValid(h, &g);
  CHECK(!proven || valid==1, "%s: proven valid but GEOS says %d", zName, valid);
  if( expectProven>=0 ){
    CHECK(proven==expectProven, "%s: proven=%d expected %d (GEOS %d)", zName,
          proven, expectProven, valid);
  }
  trGeomFree(&g);
}

static void testValidityProof(void){
  TrGeosErr err;
  GEOSContextHandle_t h = trGeosInit(&err);
  int i;
  /* shapefile rings: outer clockwise, holes counter-clockwise */
  { double x[] = {0,0,1,1,0}, y[] = {0,1,1,0,0}; int pt[] = {0};
    checkProof(h, "square", 1, pt, 5, x, y, 1); }
  { double x[] = {0,1,1,0,0}, y[] = {0,1,0,1,0}; int pt[] = {0};
    checkProof(h, "bow-tie", 1, pt, 5, x, y, 0); }
  { double x[] = {0,0,1,1,0, .2,.4,.4,.2,.2}, y[] = {0,1,1,0,0, .2,.2,.4,.4,.2};
    int pt[] = {0,5};
    checkProof(h, "square with hole", 2, pt, 10, x, y, 1); }
  { double x[] = {0,0,1,1,0, 0,.4,.4,0,0}, y[] = {0,1,1,0,0, .2,.2,.4,.4,.2};
    int pt[] = {0,5};
    checkProof(h, "hole touching shell along an edge", 2, pt, 10, x, y, 0); }
  { double x[] = {0,0,1,1,0, 0,.4,.4,0}, y[] = {0,1,1,0,0, .5,.2,.4,.5};
    int pt[] = {0,5};
    checkProof(h, "hole touching shell at a vertex", 2, pt, 9, x, y, 0); }
  { double x[] = {0,0,1,1,0, .5,.5,1.5,1.5,.5}, y[] = {0,1,1,0,0, .5,1.5,1.5,.5,.5};
    int pt[] = {0,5};
    checkProof(h, "overlapping shells", 2, pt, 10, x, y, 0); }
  { double x[] = {0,0,3,3,0, 1,1,2,2,1}, y[] = {0,3,3,0,0, 1,2,2,1,1};
    int pt[] = {0,5};
    checkProof(h, "shell inside shell", 2, pt, 10, x, y, 0); }
  { double x[] = {0,0,1,1,0, 2,2,3,3,2}, y[] = {0,1,1,0,0, 0,1,1,0,0};
    int pt[] = {0,5};
    checkProof(h, "two islands", 2, pt, 10, x, y, 1); }
  { double x[] = {0,0,1,1,0, 1,1,2,2,1}, y[] = {0,1,1,0,0, 0,1,1,0,0};
    int pt[] = {0,5};
    checkProof(h, "shells sharing an edge", 2, pt, 10, x, y, 0); }
  { double x[] = {0,0,1,2,1,1,0}, y[] = {0,1,1,1,1,0,0}; int pt[] = {0};
    checkProof(h, "spike", 1, pt, 7, x, y, 0); }
  { double x[] = {0,0,0,1,1,0}, y[] = {0,1,1,1,0,0}; int pt[] = {0};
    checkProof(h, "repeated point", 1, pt, 6, x, y, 1); }
  { double x[] = {0,0,1,1,0, .1,.1,.3,.3,.1, .2,.2,.25,.25,.2};
    double y[] = {0,1,1,0,0, .1,.3,.3,.1,.1, .15,.25,.25,.15,.15};
    int pt[] = {0,5,10};
    checkProof(h, "hole inside hole", 3, pt, 15, x, y, -1); }
  { double x[] = {0,0,4,4,0, 1,3,3,1,1, 1.5,1.5,2.5,2.5,1.5};
    double y[] = {0,4,4,0,0, 1,1,3,3,1, 1.5,2.5,2.5,1.5,1.5};
    int pt[] = {0,5,10};
    checkProof(h, "island in a lake", 3, pt, 15, x, y, 1); }
  /* random star polygons and random scribbles */
  {
  int nPassBefore = nPass, nFailBefore = nFail, nProven = 0;
  for(i=0; i<3000; i++){
    double x[40], y[40];
    int n = 4 + (int)(rnd()%30), k, pt[] = {0};
    int bStar = (i%2)==0;
    for(k=0; k<n-1; k++){
      double a = -2*3.141592653589793*k/(n-1), r = bStar ? 0.5+frand() : frand();
      x[k] = bStar ? r*cos(a) : frand(); y[k] = bStar ? r*sin(a) : frand();
      if( (rnd()%7)==0 && k>0 ){ x[k] = x[k-1]; y[k] = y[k-1] + (rnd()%2 ? 0 : 1e-17); }
    }
    x[n-1] = x[0]; y[n-1] = y[0];
    checkProof(h, bStar ? "random star" : "random scribble", 1, pt, n, x, y, -1);
  }
  (void)nProven;
  nPass = nPassBefore;
  CHECK(nFail==nFailBefore, "3000 random polygons: proven valid only when "
        "GEOS agrees");
  }
  /* large rings, whose grid cells follow the mean edge length: a fine
  ** circle (proven), the same with two far vertices swapped (it crosses
  ** itself), a long thin comb of short and long edges, and wiggly stars */
  {
    enum { N = 4001 };
    static double x[N], y[N];
    int pt[] = {0}, k, t;
    for(k=0; k<N-1; k++){
      double a = -2*3.141592653589793*k/(N-1);
      x[k] = cos(a); y[k] = sin(a);
    }
    x[N-1] = x[0]; y[N-1] = y[0];
    checkProof(h, "circle of 4000 edges", 1, pt, N, x, y, 1);
    { double tx = x[100], ty = y[100];
      x[100] = x[2100]; y[100] = y[2100]; x[2100] = tx; y[2100] = ty; }
    checkProof(h, "circle with two far vertices swapped", 1, pt, N, x, y, 0);
    /* comb: teeth of 1e-4 wide and 1 long along a 0.2-wide base */
    for(k=0, t=0; t<500; t++){
      double x0 = t*4e-4;
      x[k] = x0; y[k++] = 0;
      x[k] = x0; y[k++] = 1;
      x[k] = x0 + 2e-4; y[k++] = 1;
      x[k] = x0 + 2e-4; y[k++] = 0;
    }
    x[k] = x[k-1]; y[k++] = -1;
    x[k] = 0; y[k++] = -1;
    x[k] = 0; y[k++] = 0;
    checkProof(h, "comb of 500 teeth", 1, pt, k, x, y, -1);
    x[1001] += 3e-4;                /* one tooth leans into the next */
    checkProof(h, "comb with a leaning tooth", 1, pt, k, x, y, 0);
    for(t=0; t<40; t++){
      int n = 100 + (int)(rnd()%3000);
      for(k=0; k<n-1; k++){
        double a = -2*3.141592653589793*k/(n-1);
        double r = 1.0 + 0.05*frand() + ((t%4)==0 ? 0.3*frand() : 0.0);
        x[k] = r*cos(a); y[k] = r*sin(a);
      }
      x[n-1] = x[0]; y[n-1] = y[0];
      checkProof(h, "large wiggly star", 1, pt, n, x, y, -1);
    }
  }
  GEOS_finish_r(h);
}

int main(void){
  testValidityProof();
  testBlob();
  testBadRings();
  testGrid(3, -71.5, 41.5, 0.3, 4, 20000, 0, 1);
  testGrid(12, -100.0, 35.0, 1.0, 12, 40000, 1, 0);
  testGrid(40, -0.5, -0.5, 1.0, 6, 10000, 1, 1);       /* crosses lon/lat 0 */
  testGrid(8, 179.0, 50.0, 0.95, 20, 20000, 1, 0);  /* near the antimeridian */
  testGrid(30, -80.0, 40.0, 0.01, 5, 40000, 1, 0);     /* tiny cells */
  printf("unit: %d passed, %d failed\n", nPass, nFail);
  return nFail!=0;
}
