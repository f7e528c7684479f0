/*
** pip.c - the point-in-polygon index behind tract_of() and tracts_assign().
**
** What it answers
**
**   pipLookup(p, lon, lat) returns the number of the polygon covering the
**   point: among the polygons whose closed area (interior plus boundary)
**   contains it, the lowest number. Callers number polygons in GEOID order,
**   so a point on an edge or vertex shared by several tracts gets the
**   tract with the smallest GEOID, the same one every time. -1 if none.
**
** Coordinates
**
**   Vertices and query points are snapped to a grid of 1e-7 degree (about
**   1.1 cm): u = round((lon+180)*1e7), v = round((lat+90)*1e7), both held
**   in 32 bits (rounded half up, the same way for vertices and queries).
**   On that grid every predicate is exact integer arithmetic
**   (orientation in 128 bits), so answers are consistent: no point is in
**   two tracts or in none because of rounding. Census coordinates have 6
**   decimals and fall on the grid exactly; a point farther than 1e-7
**   degree from every boundary gets the same answer as GEOS.
**
** How it works
**
**   An adaptive grid of power-of-two squares over the whole lon/lat plane.
**   The root splits the plane into 256 x 256 cells; a cell crossed by more
**   than LEAF_MAX (24) edges is split again into 2^b x 2^b cells, b chosen
**   so that about LEAF_AIM (12) edges cross each, down to MIN_SHIFT.
**   Each final cell is one 32-bit word:
**
**     EMPTY            no edge, in no polygon
**     FULL(poly)       no edge, wholly inside one polygon
**     LEAF(offset)     a reference point r inside the cell that lies on
**                      no edge, the set of polygons containing r, and the
**                      edges crossing the cell, grouped by polygon into
**                      runs of consecutive vertices
**     CHILD(node)      a finer grid
**
**   A query walks down by shifts and masks. In a LEAF cell it draws the
**   segment r->p and counts, per polygon, the edges it crosses: the parity
**   flips the polygon's state at r. Crossings use the half-open rule (a
**   vertex on the segment's line counts as being on its right), which is
**   the ray-casting rule generalised to any direction, so vertices on the
**   segment are counted once. A point on an edge is detected exactly.
**
**   The states at the reference points are computed while building: the
**   root's reference point lies outside every polygon (v >= 2^32-1 is not a
**   latitude), and each child's is derived from a neighbour's by the same
**   crossing count, over the edges of the two cells the connecting segment
**   lies in. Nothing is ever decided by a full polygon scan.
**
** Memory
**
**   8 bytes per vertex (two 32-bit coordinates), plus the cell words and
**   the leaf records (about two words per run of edges in a cell). The
**   index is one set of flat arrays, never written after pipBuild, so
**   forked helpers share it copy-on-write.
**
** Threads and fork
**
**   A built index is read-only: any number of threads or forked children
**   may call pipLookup at once. Building uses only the calling thread.
*/
#include "tracts_int.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define TAG_EMPTY 0u
#define TAG_FULL  1u
#define TAG_LEAF  2u
#define TAG_CHILD 3u
#define TAG(w)     ((w)>>30)
#define PAYLOAD(w) ((w)&0x3fffffffu)
#define WORD(t,p)  (((uint32_t)(t)<<30)|(uint32_t)(p))
#define MAX_PAYLOAD 0x3fffffffu

#define ROOT_BITS  8      /* root grid 256 x 256 cells of 2^24 units */
#define LEAF_MAX   24     /* split a cell crossed by more edges */
#define LEAF_AIM   12     /* when splitting, aim at this many edges a cell */
#define MAX_BITS   6      /* split a cell into at most 64 x 64 */
#define MIN_SHIFT  4      /* never split below 16 units (1.6e-6 degree) */
#define NONE       0xffffffffu

typedef struct PipNode PipNode;
struct PipNode {
  uint32_t iBase;     /* first cell word in aCell */
  uint8_t shift;      /* log2 of a cell's side, in units */
  uint8_t bits;       /* log2 of cells per side */
  uint16_t spare;     /* 0: a saved index holds no uninitialised bytes */
};

struct PipIndex {
  uint32_t *aV;       /* 2 words per vertex: u, v */
  size_t nV;          /* vertices */
  PipNode *aNode;     /* grids */
  size_t nNode;
  uint32_t *aCell;    /* cell words of all grids */
  size_t nCell;
  uint32_t *aLeaf;    /* leaf records */
  size_t nLeaf;
  uint32_t root;      /* word of the whole plane */
  uint32_t nPoly;     /* 1 + highest polygon number */
  size_t nEdgeRef;    /* statistics: edges summed over leaves */
  size_t nLeafCell, nFullCell;
};

/* A growable array of uint32. */
typedef struct U32Vec U32Vec;
struct U32Vec {
  uint32_t *a;
  size_t n, nAlloc;
};
/* Resize a (possibly big) array of nOld words to nNew words. */
static uint32_t *wordsResize(uint32_t *a, size_t nOld, size_t nNew){
  uint32_t *b;
  if( nNew*sizeof(uint32_t) < ((size_t)4<<20) && nOld*sizeof(uint32_t) < ((size_t)4<<20) ){
    return realloc(a, nNew*sizeof(uint32_t));
  }
  b = trBigAlloc(nNew*sizeof(uint32_t));
  if( b==0 ) return 0;
  if( a ) memcpy(b, a, (nOld<nNew ? nOld : nNew)*sizeof(uint32_t));
  free(a);
  return b;
}
static int vecReserve(U32Vec *v, size_t nMore){
  if( v->n + nMore > v->nAlloc ){
    size_t nNew = (v->n + nMore)*2 + 64;
    uint32_t *a = wordsResize(v->a, v->n, nNew);
    if( a==0 ) return 1;
    v->a = a;
    v->nAlloc = nNew;
  }
  return 0;
}
struct PipBuilder {
  U32Vec v;           /* u,v per vertex */
  U32Vec edgePoly;    /* per vertex: polygon of the edge it starts, or NONE */
  uint32_t nPoly;
  /* while building */
  U32Vec cell, leaf;
  PipNode *aNode;
  size_t nNode, nNodeAlloc;
  size_t nEdgeRef, nLeafCell, nFullCell;
  int bOom;
  int nThread;        /* threads for the root's cells */
  int bShared;        /* v and edgePoly belong to another builder */
};

PipBuilder *pipBuilderNew(void){
  return calloc(1, sizeof(PipBuilder));
}

void pipBuilderFree(PipBuilder *p){
  if( p==0 ) return;
  if( !p->bShared ){
    free(p->v.a);
    free(p->edgePoly.a);
  }
  free(p->cell.a);
  free(p->leaf.a);
  free(p->aNode);
  free(p);
}

void pipFree(PipIndex *p){
  if( p==0 ) return;
  free(p->aV);
  free(p->aNode);
  free(p->aCell);
  free(p->aLeaf);
  free(p);
}

#if !(defined(__BYTE_ORDER__) && __BYTE_ORDER__==__ORDER_LITTLE_ENDIAN__)
static double getF64(const unsigned char *z){
  uint64_t u = 0;
  double v;
  int i;
  for(i=0; i<8; i++) u |= (uint64_t)z[i]<<(8*i);
  memcpy(&v, &u, 8);
  return v;
}
#endif

/* Snap lon/lat to the grid; 0 on success, 1 if out of range. */
static int quantize(double lon, double lat, uint32_t *pu, uint32_t *pv){
  if( !(lon>=-180.0 && lon<=180.0 && lat>=-90.0 && lat<=90.0) ) return 1;
  *pu = (uint32_t)((lon + 180.0)*PIP_SCALE + 0.5);
  *pv = (uint32_t)((lat + 90.0)*PIP_SCALE + 0.5);
  return 0;
}

int pipBuilderReserve(PipBuilder *p, size_t nPt){
  if( vecReserve(&p->v, 2*nPt + 2) || vecReserve(&p->edgePoly, nPt + 1) ) return 1;
  return 0;
}

int pipBuilderRing(PipBuilder *p, uint32_t iPoly, int nPt,
                   const unsigned char *aXY){
  size_t iStart = p->v.n, n;
  uint32_t *V, *E;
  size_t nV, nE;
  int i;
  if( iPoly>=MAX_PAYLOAD ) return 1;
  if( vecReserve(&p->v, 2*(size_t)nPt + 2)
   || vecReserve(&p->edgePoly, (size_t)nPt + 1) ) return 1;
  V = p->v.a;
  E = p->edgePoly.a;
  nV = p->v.n;
  nE = p->edgePoly.n;
  for(i=0; i<nPt; i++){
    uint32_t u, v;
    double xy[2];
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__==__ORDER_LITTLE_ENDIAN__
    memcpy(xy, aXY + 16*i, 16);               /* the blob is little-endian */
#else
    xy[0] = getF64(aXY+16*i);
    xy[1] = getF64(aXY+16*i+8);
#endif
    if( quantize(xy[0], xy[1], &u, &v) ){
      p->v.n = iStart;
      p->edgePoly.n = iStart/2;
      return 1;
    }
    if( nV>iStart && V[nV-2]==u && V[nV-1]==v ) continue;
    V[nV++] = u;
    V[nV++] = v;
    E[nE++] = iPoly;
  }
  p->v.n = nV;
  p->edgePoly.n = nE;
  n = (p->v.n - iStart)/2;
  if( n>0 && (p->v.a[iStart]!=p->v.a[p->v.n-2]
           || p->v.a[iStart+1]!=p->v.a[p->v.n-1]) ){
    p->v.a[p->v.n++] = p->v.a[iStart];        /* close the ring */
    p->v.a[p->v.n++] = p->v.a[iStart+1];
    p->edgePoly.a[p->edgePoly.n++] = iPoly;
    n++;
  }
  if( n<4 ){                                   /* degenerate: drop */
    p->v.n = iStart;
    p->edgePoly.n = iStart/2;
    return 0;
  }
  p->edgePoly.a[p->edgePoly.n-1] = NONE;       /* last vertex starts no edge */
  if( iPoly+1>p->nPoly ) p->nPoly = iPoly+1;
  return 0;
}

/* ---- exact predicates ------------------------------------------------ */

/* Sign of the orientation of (a, b, c): >0 left turn, <0 right, 0 on line. */
static inline int orient(int64_t ax, int64_t ay, int64_t bx, int64_t by,
                         int64_t cx, int64_t cy){
  __int128 d = (__int128)(bx-ax)*(cy-ay) - (__int128)(by-ay)*(cx-ax);
  return (d>0) - (d<0);
}

/* Result of testing edge (a,b) against segment r->p: bit 0 crossing, bit 1
** p lies on the edge. */
static inline int edgeTest(int64_t rx, int64_t ry, int64_t px, int64_t py,
                           int64_t ax, int64_t ay, int64_t bx, int64_t by){
  int op, sa, sb;
  /* bounding boxes */
  if( (ax<rx && ax<px && bx<rx && bx<px) || (ax>rx && ax>px && bx>rx && bx>px)
   || (ay<ry && ay<py && by<ry && by<py) || (ay>ry && ay>py && by>ry && by>py) ){
    return 0;
  }
  op = orient(ax, ay, bx, by, px, py);
  if( op==0 ){
    if( px>=(ax<bx?ax:bx) && px<=(ax<bx?bx:ax)
     && py>=(ay<by?ay:by) && py<=(ay<by?by:ay) ) return 2;
    return 0;
  }
  sa = orient(rx, ry, px, py, ax, ay)>0;
  sb = orient(rx, ry, px, py, bx, by)>0;
  if( sa==sb ) return 0;
  return (orient(ax, ay, bx, by, rx, ry)>0) != (op>0);
}

/* ---- lookup ---------------------------------------------------------- */

static int64_t leafLookup(const PipIndex *p, const uint32_t *a,
                          uint32_t pu, uint32_t pv, int *pbEdge){
  int64_t rx = a[0], ry = a[1], px = pu, py = pv;
  uint32_t nIn = a[2], i, j, nGroup;
  const uint32_t *aIn = a+3, *g;
  const uint32_t *V = p->aV;
  int64_t best = -1;
  int bEdge = 0;
  g = aIn + nIn;
  nGroup = *g++;
  for(i=0; i<nGroup; i++){
    uint32_t poly = g[0], nRun = g[1];
    const uint32_t *run = g+2;
    int par = 0, on = 0;
    g = run + 2*nRun;
    for(j=0; j<nRun && !on; j++){
      const uint32_t *e = V + 2*(size_t)run[2*j];
      uint32_t k, nE = run[2*j+1];
      for(k=0; k<nE; k++, e+=2){
        int t = edgeTest(rx, ry, px, py, e[0], e[1], e[2], e[3]);
        if( t ){
          if( t&2 ){ on = 1; break; }
          par ^= 1;
        }
      }
    }
    if( !on ){
      uint32_t m;
      for(m=0; m<nIn; m++) if( aIn[m]==poly ){ par ^= 1; break; }
    }
    if( on || par ){
      best = poly;
      bEdge = on;
      break;                  /* groups ascend: this is the lowest */
    }
  }
  /* polygons containing r with no edge here contain p too */
  for(i=0; i<nIn; i++){
    uint32_t q = aIn[i], k;
    const uint32_t *h;
    int bHas = 0;
    if( best>=0 && q>=best ) continue;
    h = aIn + nIn + 1;
    for(k=0; k<nGroup; k++){
      if( h[0]==q ){ bHas = 1; break; }
      h += 2 + 2*h[1];
    }
    if( !bHas ){ best = q; bEdge = 0; }
  }
  if( pbEdge ) *pbEdge = bEdge;
  return best;
}

int64_t pipLookup(const PipIndex *p, double lon, double lat, int *pbEdge){
  uint32_t u, v, w;
  if( pbEdge ) *pbEdge = 0;
  if( p==0 || quantize(lon, lat, &u, &v) ) return -1;
  w = p->root;
  while( TAG(w)==TAG_CHILD ){
    const PipNode *n = &p->aNode[PAYLOAD(w)];
    uint32_t m = (1u<<n->bits) - 1;
    uint32_t cx = (uint32_t)((uint64_t)u >> n->shift) & m;
    uint32_t cy = (uint32_t)((uint64_t)v >> n->shift) & m;
    w = p->aCell[n->iBase + (cy<<n->bits) + cx];
  }
  switch( TAG(w) ){
    case TAG_FULL: return PAYLOAD(w);
    case TAG_LEAF: return leafLookup(p, p->aLeaf + PAYLOAD(w), u, v, pbEdge);
  }
  return -1;
}

/* ---- nearest polygon ---------------------------------------------------- */

/* A search for the polygon nearest to a point, within a distance. Distances
** are metres on a local equirectangular projection at the point: exact
** enough (better than 0.5%) for the few hundred metres this is meant for. */
typedef struct NearSearch NearSearch;
struct NearSearch {
  const PipIndex *p;
  double px, py;               /* the point, in grid units */
  double kx, ky;               /* metres per unit along x and y */
  int64_t x0, y0, x1, y1;      /* window (closed), grid units */
  double best;                 /* best squared distance so far, m^2 */
  int64_t bestPoly;            /* its polygon, -1 if none */
};

/* Squared distance in metres from the point to segment (a, b). */
static double segDist2(const NearSearch *s, double ax, double ay,
                       double bx, double by){
  double x0 = (ax - s->px)*s->kx, y0 = (ay - s->py)*s->ky;
  double dx = (bx - ax)*s->kx, dy = (by - ay)*s->ky;
  double l2 = dx*dx + dy*dy, t = 0.0;
  if( l2>0.0 ){
    t = -(x0*dx + y0*dy)/l2;
    if( t<0.0 ) t = 0.0; else if( t>1.0 ) t = 1.0;
  }
  x0 += t*dx; y0 += t*dy;
  return x0*x0 + y0*y0;
}

static void nearLeaf(NearSearch *s, const uint32_t *a){
  uint32_t nIn = a[2], nGroup, i, j, k;
  const uint32_t *g = a + 3 + nIn;
  nGroup = *g++;
  for(i=0; i<nGroup; i++){
    uint32_t poly = g[0], nRun = g[1];
    const uint32_t *run = g+2;
    g = run + 2*nRun;
    for(j=0; j<nRun; j++){
      const uint32_t *e = s->p->aV + 2*(size_t)run[2*j];
      for(k=0; k<run[2*j+1]; k++, e+=2){
        double d = segDist2(s, e[0], e[1], e[2], e[3]);
        if( d<s->best || (d==s->best && (int64_t)poly<s->bestPoly) ){
          s->best = d;
          s->bestPoly = poly;
        }
      }
    }
  }
}

/* Visit the cells under word w, whose square starts at (ox, oy) and has
** side 2^shift, that meet the window. */
static void nearWalk(NearSearch *s, uint32_t w, int64_t ox, int64_t oy,
                     int shift){
  if( TAG(w)==TAG_LEAF ){
    nearLeaf(s, s->p->aLeaf + PAYLOAD(w));
  }else if( TAG(w)==TAG_CHILD ){
    const PipNode *n = &s->p->aNode[PAYLOAD(w)];
    int64_t side = (int64_t)1<<n->shift, cx, cy, cx0, cy0, cx1, cy1;
    int64_t nCell = (int64_t)1<<n->bits;
    (void)shift;
    cx0 = s->x0>ox ? (s->x0-ox)>>n->shift : 0;
    cy0 = s->y0>oy ? (s->y0-oy)>>n->shift : 0;
    cx1 = s->x1>=ox ? (s->x1-ox)>>n->shift : -1;
    cy1 = s->y1>=oy ? (s->y1-oy)>>n->shift : -1;
    if( cx1>=nCell ) cx1 = nCell-1;
    if( cy1>=nCell ) cy1 = nCell-1;
    for(cy=cy0; cy<=cy1; cy++){
      for(cx=cx0; cx<=cx1; cx++){
        nearWalk(s, s->p->aCell[n->iBase + (size_t)((cy<<n->bits) + cx)],
                 ox + cx*side, oy + cy*side, n->shift);
      }
    }
  }
}

int64_t pipNearest(const PipIndex *p, double lon, double lat,
                   double maxMetres, double *pMetres){
  NearSearch s;
  uint32_t u, v;
  double rUnits;
  if( p==0 || !(maxMetres>0.0) || quantize(lon, lat, &u, &v) ) return -1;
  memset(&s, 0, sizeof(s));
  s.p = p;
  s.px = u;
  s.py = v;
  /* 6371008.8 m mean earth radius: metres per degree, then per unit */
  s.ky = 6371008.8*3.14159265358979323846/180.0/PIP_SCALE;
  s.kx = s.ky*cos(lat*3.14159265358979323846/180.0);
  if( s.kx<s.ky*1e-6 ) s.kx = s.ky*1e-6;
  rUnits = maxMetres/s.ky;
  s.y0 = (int64_t)floor(s.py - rUnits) - 1;
  s.y1 = (int64_t)ceil(s.py + rUnits) + 1;
  rUnits = maxMetres/s.kx;
  if( rUnits>4e9 ) rUnits = 4e9;
  s.x0 = (int64_t)floor(s.px - rUnits) - 1;
  s.x1 = (int64_t)ceil(s.px + rUnits) + 1;
  if( s.x0<0 ) s.x0 = 0;
  if( s.y0<0 ) s.y0 = 0;
  s.best = maxMetres*maxMetres;
  s.bestPoly = -1;
  nearWalk(&s, p->root, 0, 0, 32);
  if( s.bestPoly>=0 && pMetres ) *pMetres = sqrt(s.best);
  return s.bestPoly;
}

/* ---- build ----------------------------------------------------------- */

/* A set of polygons, kept sorted. */
typedef struct PolySet PolySet;
struct PolySet {
  uint32_t *a;
  uint32_t n;
};

/* Edges of the cells being split: the list of cell i is aE[aOff[i]..]. */

/* Toggle q in the sorted set s (allocated with room for nMax). */
static int setToggle(U32Vec *s, uint32_t q){
  size_t i, lo = 0, hi = s->n;
  while( lo<hi ){
    size_t mid = (lo+hi)/2;
    if( s->a[mid]<q ) lo = mid+1; else hi = mid;
  }
  if( lo<s->n && s->a[lo]==q ){
    memmove(s->a+lo, s->a+lo+1, (s->n-lo-1)*sizeof(uint32_t));
    s->n--;
    return 0;
  }
  if( vecReserve(s, 1) ) return 1;
  for(i=s->n; i>lo; i--) s->a[i] = s->a[i-1];
  s->a[lo] = q;
  s->n++;
  return 0;
}

/* Starting from the set at (rx,ry) in s, make s the set at (qx,qy): toggle
** the polygon of every edge of the sorted lists e1 and e2 (duplicates
** counted once) that the segment crosses. */
static int propagate(PipBuilder *b, U32Vec *s, int64_t rx, int64_t ry,
                     int64_t qx, int64_t qy, const uint32_t *e1, size_t n1,
                     const uint32_t *e2, size_t n2){
  size_t i = 0, j = 0;
  const uint32_t *V = b->v.a;
  while( i<n1 || j<n2 ){
    uint32_t e;
    if( j>=n2 || (i<n1 && e1[i]<e2[j]) ) e = e1[i++];
    else if( i>=n1 || e2[j]<e1[i] ) e = e2[j++];
    else { e = e1[i]; i++; j++; }
    if( edgeTest(rx, ry, qx, qy, V[2*e], V[2*e+1], V[2*e+2], V[2*e+3])==1 ){
      if( setToggle(s, b->edgePoly.a[e]) ) return 1;
    }
  }
  return 0;
}

/* 1 if (x,y) lies on one of the edges. */
static int onAnyEdge(PipBuilder *b, int64_t x, int64_t y,
                     const uint32_t *aE, size_t nE){
  const uint32_t *V = b->v.a;
  size_t i;
  for(i=0; i<nE; i++){
    uint32_t e = aE[i];
    if( edgeTest(x, y, x, y, V[2*e], V[2*e+1], V[2*e+2], V[2*e+3])&2 ) return 1;
  }
  return 0;
}

/* Choose the reference point of the cell [x0,x0+side)^2: near its centre,
** on no edge. */
static void chooseRef(PipBuilder *b, int64_t x0, int64_t y0, int64_t side,
                      const uint32_t *aE, size_t nE, int64_t *px, int64_t *py){
  int64_t cx = x0 + side/2, cy = y0 + side/2;
  int64_t d;
  for(d=0; d<side/2; d++){
    int64_t k;
    /* walk the square ring at distance d around the centre */
    for(k=-d; k<=d; k++){
      int64_t cand[4][2] = {{cx+k, cy-d}, {cx+k, cy+d}, {cx-d, cy+k}, {cx+d, cy+k}};
      int m;
      for(m=0; m<4; m++){
        int64_t x = cand[m][0], y = cand[m][1];
        if( x<x0 || y<y0 || x>=x0+side || y>=y0+side ) continue;
        if( !onAnyEdge(b, x, y, aE, nE) ){ *px = x; *py = y; return; }
      }
    }
    if( d>64 ) break;
  }
  *px = cx; *py = cy;   /* not reached with real data: a cell's edges
                        ** cannot cover every grid point near its centre */
}

/* 1 if segment (a,b) meets the closed box [x0,x1]x[y0,y1], given that
** their bounding boxes overlap. */
static int segMeetsBox(int64_t ax, int64_t ay, int64_t bx, int64_t by,
                       int64_t x0, int64_t y0, int64_t x1, int64_t y1){
  int s1 = orient(ax, ay, bx, by, x0, y0);
  int s2 = orient(ax, ay, bx, by, x1, y0);
  int s3 = orient(ax, ay, bx, by, x0, y1);
  int s4 = orient(ax, ay, bx, by, x1, y1);
  if( s1>0 && s2>0 && s3>0 && s4>0 ) return 0;
  if( s1<0 && s2<0 && s3<0 && s4<0 ) return 0;
  return 1;
}

static int cmpGroup(const void *pa, const void *pb){
  const uint32_t *a = (const uint32_t*)pa, *b = (const uint32_t*)pb;
  if( a[0]!=b[0] ) return a[0]<b[0] ? -1 : 1;
  return a[1]<b[1] ? -1 : a[1]>b[1];
}

/* The word of a final cell with reference point (rx,ry), set s, edges aE. */
static uint32_t makeLeaf(PipBuilder *b, int64_t rx, int64_t ry,
                         const U32Vec *s, const uint32_t *aE, size_t nE){
  uint32_t *aPair;
  size_t i, off;
  uint32_t nGroup = 0;
  if( nE==0 ){
    if( s->n==0 ) return WORD(TAG_EMPTY, 0);
    if( s->n==1 ){ b->nFullCell++; return WORD(TAG_FULL, s->a[0]); }
  }
  /* (poly, edge) pairs sorted by poly then edge */
  aPair = malloc(sizeof(uint32_t)*2*(nE ? nE : 1));
  if( aPair==0 ){ b->bOom = 1; return 0; }
  for(i=0; i<nE; i++){
    aPair[2*i] = b->edgePoly.a[aE[i]];
    aPair[2*i+1] = aE[i];
  }
  qsort(aPair, nE, 2*sizeof(uint32_t), cmpGroup);
  off = b->leaf.n;
  if( off>MAX_PAYLOAD || vecReserve(&b->leaf, 4 + s->n + 4*nE) ){
    free(aPair); b->bOom = 1; return 0;
  }
  b->leaf.a[b->leaf.n++] = (uint32_t)rx;
  b->leaf.a[b->leaf.n++] = (uint32_t)ry;
  b->leaf.a[b->leaf.n++] = s->n;
  for(i=0; i<s->n; i++) b->leaf.a[b->leaf.n++] = s->a[i];
  {
    size_t iCount = b->leaf.n++;
    size_t iRunCount = 0;
    for(i=0; i<nE; i++){
      uint32_t poly = aPair[2*i], e = aPair[2*i+1];
      if( i==0 || poly!=aPair[2*i-2] ){
        nGroup++;
        b->leaf.a[b->leaf.n++] = poly;
        iRunCount = b->leaf.n++;
        b->leaf.a[iRunCount] = 0;
      }
      if( i>0 && poly==aPair[2*i-2] && e==aPair[2*i-1]+1 ){
        b->leaf.a[b->leaf.n-1]++;                 /* extend the run */
      }else{
        b->leaf.a[b->leaf.n++] = e;
        b->leaf.a[b->leaf.n++] = 1;
        b->leaf.a[iRunCount]++;
      }
    }
    b->leaf.a[iCount] = nGroup;
  }
  free(aPair);
  b->nEdgeRef += nE;
  b->nLeafCell++;
  return WORD(TAG_LEAF, off);
}

#define MAX_THREADS 16

/* Run x on each of the n jobs aJob[i] (szJob bytes apart), one thread a
** job, the first on the calling thread; a job whose thread cannot start
** runs here too. Returns when every job has ended. */
static void runJobs(void *aJob, size_t szJob, int n, void *(*x)(void*)){
  pthread_t aTid[MAX_THREADS];
  int i, nStarted = 0;
  char *a = (char*)aJob;
  for(i=1; i<n && i<MAX_THREADS; i++){
    if( pthread_create(&aTid[i], 0, x, a + szJob*(size_t)i) ) break;
    nStarted++;
  }
  x(a);
  for(i=nStarted+1; i<n; i++) x(a + szJob*(size_t)i);
  for(i=1; i<=nStarted; i++) pthread_join(aTid[i], 0);
}

/* One pass of distributing edges aE[k0..k1) to the n x n cells of side
** 2^cs at (x0, y0): pass 0 counts into aCount[c], pass 1 writes each edge
** at aPos[c]++ in aOut. An edge goes to every cell its segment meets. */
static void distRange(const PipBuilder *b, const uint32_t *aE, size_t k0,
                      size_t k1, int64_t x0, int64_t y0, int cs, int n,
                      int pass, size_t *aCountOrPos, uint32_t *aOut){
  const uint32_t *V = b->v.a;
  size_t k;
  for(k=k0; k<k1; k++){
    uint32_t e = aE[k];
    int64_t ax = V[2*e], ay = V[2*e+1], bx = V[2*e+2], by = V[2*e+3];
    int64_t mnx = ax<bx?ax:bx, mxx = ax<bx?bx:ax;
    int64_t mny = ay<by?ay:by, mxy = ay<by?by:ay;
    int64_t i0, i1, j0, j1, ii, jj;
    i0 = mnx>x0 ? (mnx-x0-1)>>cs : 0;
    j0 = mny>y0 ? (mny-y0-1)>>cs : 0;
    i1 = mxx>=x0 ? (mxx-x0)>>cs : -1;
    j1 = mxy>=y0 ? (mxy-y0)>>cs : -1;
    if( i1>=n ) i1 = n-1;
    if( j1>=n ) j1 = n-1;
    if( i0>=n || j0>=n || i1<0 || j1<0 ) continue;
    for(jj=j0; jj<=j1; jj++){
      for(ii=i0; ii<=i1; ii++){
        size_t c = (size_t)(jj*n + ii);
        if( (i0!=i1 || j0!=j1) ){
          int64_t bx0 = x0 + (ii<<cs), by0 = y0 + (jj<<cs);
          if( !segMeetsBox(ax, ay, bx, by, bx0, by0,
                           bx0 + ((int64_t)1<<cs), by0 + ((int64_t)1<<cs)) ){
            continue;
          }
        }
        if( pass==0 ) aCountOrPos[c]++;
        else aOut[aCountOrPos[c]++] = e;
      }
    }
  }
}

/* A thread's share of the root's distribution. */
typedef struct DistJob DistJob;
struct DistJob {
  const PipBuilder *b;
  const uint32_t *aE;
  size_t k0, k1;            /* its edges */
  int64_t x0, y0;
  int cs, n, pass;
  size_t *aCount;           /* pass 0: counts; pass 1: positions */
  uint32_t *aOut;
};
static void *distThread(void *pArg){
  DistJob *j = (DistJob*)pArg;
  distRange(j->b, j->aE, j->k0, j->k1, j->x0, j->y0, j->cs, j->n, j->pass,
            j->aCount, j->aOut);
  return 0;
}

/* Distribute the root's edges on b->nThread threads, each over a slice of
** aE: they count per cell, then write their edges at positions that keep
** every cell's list in aE's order. Fills aOff[0..n*n] (cell starts) and
** returns the lists (malloc'd), or NULL on OOM. */
static uint32_t *distributeParallel(PipBuilder *b, const uint32_t *aE,
                                    size_t nE, int64_t x0, int64_t y0, int cs,
                                    int n, size_t *aOff){
  int nT = b->nThread, t, pass;
  size_t nCell = (size_t)n*n, c;
  DistJob *aJob = calloc((size_t)nT, sizeof(DistJob));
  uint32_t *aOut = 0;
  int bOk = aJob!=0;
  for(t=0; bOk && t<nT; t++){
    aJob[t].b = b;
    aJob[t].aE = aE;
    aJob[t].k0 = nE*(size_t)t/(size_t)nT;
    aJob[t].k1 = nE*(size_t)(t+1)/(size_t)nT;
    aJob[t].x0 = x0; aJob[t].y0 = y0; aJob[t].cs = cs; aJob[t].n = n;
    aJob[t].aCount = calloc(nCell, sizeof(size_t));
    if( aJob[t].aCount==0 ) bOk = 0;
  }
  for(pass=0; bOk && pass<2; pass++){
    if( pass==1 ){
      /* cell starts, then each thread's position within each cell */
      size_t acc = 0;
      for(c=0; c<nCell; c++){
        aOff[c] = acc;
        for(t=0; t<nT; t++){
          size_t m = aJob[t].aCount[c];
          aJob[t].aCount[c] = acc;
          acc += m;
        }
      }
      aOff[nCell] = acc;
      aOut = malloc(sizeof(uint32_t)*(acc ? acc : 1));
      if( aOut==0 ){ bOk = 0; break; }
    }
    for(t=0; t<nT; t++){ aJob[t].pass = pass; aJob[t].aOut = aOut; }
    runJobs(aJob, sizeof(DistJob), nT, distThread);
  }
  for(t=0; aJob && t<nT; t++) free(aJob[t].aCount);
  free(aJob);
  if( !bOk ){ free(aOut); return 0; }
  return aOut;
}

static uint32_t buildCell(PipBuilder *b, int64_t x0, int64_t y0, int shift,
                          const uint32_t *aE, size_t nE,
                          int64_t rx, int64_t ry, const U32Vec *s);

/* Work of one thread building a share of the root's cells. */
typedef struct RootJob RootJob;
struct RootJob {
  PipBuilder sub;         /* own pools; v and edgePoly shared (bShared) */
  int iFirst, iLast;      /* root cells [iFirst, iLast) */
  uint32_t *aWord;        /* their words, relative to sub's pools */
  int64_t x0, y0;         /* the root's corner */
  int cs, n;              /* cell shift and cells per side */
  const uint32_t *aChildE;
  const size_t *aOff;
  const int64_t *aRef;
  const U32Vec *aSet;
};

static void *rootThread(void *pArg){
  RootJob *j = (RootJob*)pArg;
  int i;
  for(i=j->iFirst; i<j->iLast && !j->sub.bOom; i++){
    int ii = i % j->n, jj = i / j->n;
    j->aWord[i - j->iFirst] = buildCell(&j->sub,
        j->x0 + ((int64_t)ii<<j->cs), j->y0 + ((int64_t)jj<<j->cs), j->cs,
        j->aChildE + j->aOff[i], j->aOff[i+1] - j->aOff[i],
        j->aRef[2*i], j->aRef[2*i+1], &j->aSet[i]);
  }
  return 0;
}

/* Move a word of a sub-builder into b's numbering. */
static uint32_t relocate(uint32_t w, size_t nodeOff, size_t leafOff){
  if( TAG(w)==TAG_CHILD ) return WORD(TAG_CHILD, PAYLOAD(w) + nodeOff);
  if( TAG(w)==TAG_LEAF ) return WORD(TAG_LEAF, PAYLOAD(w) + leafOff);
  return w;
}

/* Build the root's n*n cells on b->nThread threads, each over a contiguous
** range of cells holding about the same number of edges, then append their
** pools to b's, renumbering node and leaf references. Returns 0, or 1 with
** b->bOom set. The index is the same as a one-thread build's but for the
** order of its pools. */
static int buildRootChildren(PipBuilder *b, int64_t x0, int64_t y0, int cs,
                             int n, const uint32_t *aChildE,
                             const size_t *aOff, const int64_t *aRef,
                             const U32Vec *aSet, size_t iBase){
  int nT = b->nThread, t, i, nCell = n*n;
  RootJob *aJob = calloc((size_t)nT, sizeof(RootJob));
  size_t nTotal = aOff[nCell], acc = 0;
  int rc = 0;
  if( aJob==0 ){ b->bOom = 1; return 1; }
  /* split by edge count */
  for(t=0, i=0; t<nT; t++){
    RootJob *j = &aJob[t];
    size_t target = nTotal*(size_t)(t+1)/(size_t)nT;
    j->iFirst = i;
    while( i<nCell && (t==nT-1 || acc<target) ){ acc += aOff[i+1]-aOff[i]; i++; }
    j->iLast = i;
    j->aWord = calloc((size_t)(j->iLast - j->iFirst + 1), sizeof(uint32_t));
    if( j->aWord==0 ) b->bOom = 1;
    j->sub.v = b->v;
    j->sub.edgePoly = b->edgePoly;
    j->sub.bShared = 1;
    j->sub.nPoly = b->nPoly;
    j->x0 = x0; j->y0 = y0; j->cs = cs; j->n = n;
    j->aChildE = aChildE; j->aOff = aOff; j->aRef = aRef; j->aSet = aSet;
  }
  if( !b->bOom ) runJobs(aJob, sizeof(RootJob), nT, rootThread);
  for(t=0; t<nT; t++){
    RootJob *j = &aJob[t];
    size_t nodeOff = b->nNode, cellOff = b->cell.n, leafOff = b->leaf.n, k;
    if( j->sub.bOom ) b->bOom = 1;
    if( b->bOom ) continue;
    /* append pools */
    if( b->nNode + j->sub.nNode > b->nNodeAlloc ){
      size_t nNew = b->nNode + j->sub.nNode + 64;
      PipNode *a = realloc(b->aNode, nNew*sizeof(PipNode));
      if( a==0 ){ b->bOom = 1; continue; }
      b->aNode = a;
      b->nNodeAlloc = nNew;
    }
    if( vecReserve(&b->cell, j->sub.cell.n) || vecReserve(&b->leaf, j->sub.leaf.n)
     || b->leaf.n + j->sub.leaf.n > MAX_PAYLOAD
     || b->nNode + j->sub.nNode > MAX_PAYLOAD ){
      b->bOom = 1; continue;
    }
    for(k=0; k<j->sub.nNode; k++){
      PipNode nd = j->sub.aNode[k];
      nd.iBase = (uint32_t)(nd.iBase + cellOff);
      b->aNode[b->nNode++] = nd;
    }
    for(k=0; k<j->sub.cell.n; k++){
      b->cell.a[b->cell.n++] = relocate(j->sub.cell.a[k], nodeOff, leafOff);
    }
    if( j->sub.leaf.n ){
      memcpy(b->leaf.a + b->leaf.n, j->sub.leaf.a, j->sub.leaf.n*sizeof(uint32_t));
    }
    b->leaf.n += j->sub.leaf.n;
    for(i=j->iFirst; i<j->iLast; i++){
      b->cell.a[iBase + (size_t)i] = relocate(j->aWord[i - j->iFirst],
                                              nodeOff, leafOff);
    }
    b->nEdgeRef += j->sub.nEdgeRef;
    b->nLeafCell += j->sub.nLeafCell;
    b->nFullCell += j->sub.nFullCell;
  }
  for(t=0; t<nT; t++){
    free(aJob[t].aWord);
    free(aJob[t].sub.cell.a);
    free(aJob[t].sub.leaf.a);
    free(aJob[t].sub.aNode);
  }
  free(aJob);
  if( b->bOom ) rc = 1;
  return rc;
}

/* Build the cell [x0, x0+2^shift)^2 holding edges aE (sorted), reference
** point (rx,ry) with polygon set s. Returns its word. */
static uint32_t buildCell(PipBuilder *b, int64_t x0, int64_t y0, int shift,
                          const uint32_t *aE, size_t nE,
                          int64_t rx, int64_t ry, const U32Vec *s){
  int bits, cs, i, n;
  size_t nNode, iBase, *aOff = 0, *aFill = 0, nTot;
  uint32_t *aChildE = 0;
  int64_t *aRef = 0;
  U32Vec *aSet = 0;
  uint32_t result = 0;
  if( b->bOom ) return 0;
  if( nE<=LEAF_MAX || shift<=MIN_SHIFT ){
    return makeLeaf(b, rx, ry, s, aE, nE);
  }
  if( shift==32 ){
    bits = ROOT_BITS;
  }else{
    size_t nWant = nE/LEAF_AIM;
    bits = 1;
    while( bits<MAX_BITS && ((size_t)1<<(2*bits))<nWant ) bits++;
    if( shift-bits<MIN_SHIFT ) bits = shift-MIN_SHIFT;
  }
  cs = shift - bits;
  n = 1<<bits;

  /* a grid node with n*n cells */
  if( b->nNode>=b->nNodeAlloc ){
    size_t nNew = b->nNodeAlloc*2 + 64;
    PipNode *a = realloc(b->aNode, nNew*sizeof(PipNode));
    if( a==0 ){ b->bOom = 1; return 0; }
    b->aNode = a;
    b->nNodeAlloc = nNew;
  }
  nNode = b->nNode++;
  if( nNode>MAX_PAYLOAD || vecReserve(&b->cell, (size_t)n*n) ){
    b->bOom = 1; return 0;
  }
  iBase = b->cell.n;
  b->cell.n += (size_t)n*n;
  b->aNode[nNode].iBase = (uint32_t)iBase;
  b->aNode[nNode].shift = (uint8_t)cs;
  b->aNode[nNode].bits = (uint8_t)bits;
  b->aNode[nNode].spare = 0;

  /* distribute the edges: count, then fill */
  aOff = calloc((size_t)n*n + 1, sizeof(size_t));
  aFill = calloc((size_t)n*n, sizeof(size_t));
  aRef = malloc(sizeof(int64_t)*2*(size_t)n*n);
  aSet = calloc((size_t)n*n, sizeof(U32Vec));
  if( !aOff || !aFill || !aRef || !aSet ){ b->bOom = 1; goto done; }
  if( shift==32 && b->nThread>1 && nE>100000 ){
    aChildE = distributeParallel(b, aE, nE, x0, y0, cs, n, aOff);
    if( aChildE==0 ){ b->bOom = 1; goto done; }
  }else{
    distRange(b, aE, 0, nE, x0, y0, cs, n, 0, aOff+1, 0);
    {
      size_t c;
      for(c=0; c<(size_t)n*n; c++) aOff[c+1] += aOff[c];
    }
    nTot = aOff[(size_t)n*n];
    aChildE = malloc(sizeof(uint32_t)*(nTot ? nTot : 1));
    if( aChildE==0 ){ b->bOom = 1; goto done; }
    memcpy(aFill, aOff, sizeof(size_t)*(size_t)n*n);
    distRange(b, aE, 0, nE, x0, y0, cs, n, 1, aFill, aChildE);
  }

  /* reference points and their polygon sets, row by row */
  for(i=0; i<n*n; i++){
    int ii = i % n, jj = i / n;
    int64_t cx0 = x0 + ((int64_t)ii<<cs), cy0 = y0 + ((int64_t)jj<<cs);
    const uint32_t *e = aChildE + aOff[i];
    size_t ne = aOff[i+1] - aOff[i];
    int64_t qx, qy;
    chooseRef(b, cx0, cy0, (int64_t)1<<cs, e, ne, &qx, &qy);
    aRef[2*i] = qx;
    aRef[2*i+1] = qy;
    if( i==0 ){
      if( vecReserve(&aSet[0], s->n+1) ){ b->bOom = 1; goto done; }
      if( s->n ) memcpy(aSet[0].a, s->a, s->n*sizeof(uint32_t));
      aSet[0].n = s->n;
      if( propagate(b, &aSet[0], rx, ry, qx, qy, aE, nE, 0, 0) ){
        b->bOom = 1; goto done;
      }
    }else{
      int from = ii>0 ? i-1 : i-n;     /* left neighbour, else below */
      const U32Vec *pf = &aSet[from];
      if( vecReserve(&aSet[i], pf->n+1) ){ b->bOom = 1; goto done; }
      if( pf->n ) memcpy(aSet[i].a, pf->a, pf->n*sizeof(uint32_t));
      aSet[i].n = pf->n;
      if( propagate(b, &aSet[i], aRef[2*from], aRef[2*from+1], qx, qy,
                    aChildE + aOff[from], aOff[from+1]-aOff[from], e, ne) ){
        b->bOom = 1; goto done;
      }
    }
  }

  /* the cells themselves: the root's on several threads */
  if( shift==32 && b->nThread>1 && nE>100000 ){
    if( buildRootChildren(b, x0, y0, cs, n, aChildE, aOff, aRef, aSet, iBase) ){
      goto done;
    }
  }else{
    for(i=0; i<n*n; i++){
      int ii = i % n, jj = i / n;
      uint32_t w = buildCell(b, x0 + ((int64_t)ii<<cs), y0 + ((int64_t)jj<<cs),
                             cs, aChildE + aOff[i], aOff[i+1]-aOff[i],
                             aRef[2*i], aRef[2*i+1], &aSet[i]);
      if( b->bOom ) goto done;
      b->cell.a[iBase + (size_t)i] = w;
    }
  }
  result = WORD(TAG_CHILD, nNode);
done:
  if( aSet ){
    for(i=0; i<n*n; i++) free(aSet[i].a);
  }
  free(aSet);
  free(aRef);
  free(aChildE);
  free(aFill);
  free(aOff);
  return result;
}

PipIndex *pipBuild(PipBuilder *b){
  PipIndex *p = 0;
  uint32_t *aE = 0;
  size_t nE = 0, i, nVert = b->v.n/2;
  U32Vec s = {0, 0, 0};
  uint32_t root;
  aE = malloc(sizeof(uint32_t)*(nVert ? nVert : 1));
  if( aE==0 ) goto fail;
  for(i=0; i+1<nVert; i++){
    if( b->edgePoly.a[i]!=NONE ) aE[nE++] = (uint32_t)i;
  }
  if( nVert>0xfffffff0u ) goto fail;
  if( b->nThread==0 ){
    long nCpu = sysconf(_SC_NPROCESSORS_ONLN);
    b->nThread = nCpu<1 ? 1 : nCpu>MAX_THREADS ? MAX_THREADS : (int)nCpu;
  }
  root = buildCell(b, 0, 0, 32, aE, nE, 0xffffffffLL, 0xffffffffLL, &s);
  free(aE);
  aE = 0;
  if( b->bOom ) goto fail;
  p = calloc(1, sizeof(*p));
  if( p==0 ) goto fail;
  p->aV = b->v.a;            b->v.a = 0;
  p->nV = nVert;
  p->aNode = b->aNode;       b->aNode = 0;
  p->nNode = b->nNode;
  p->aCell = b->cell.a;      b->cell.a = 0;
  p->nCell = b->cell.n;
  p->aLeaf = b->leaf.a;      b->leaf.a = 0;
  p->nLeaf = b->leaf.n;
  p->root = root;
  p->nPoly = b->nPoly;
  p->nEdgeRef = b->nEdgeRef;
  p->nLeafCell = b->nLeafCell;
  p->nFullCell = b->nFullCell;
  /* give back the growth slack: the index lives long */
  if( p->nLeaf ){
    uint32_t *a = wordsResize(p->aLeaf, p->nLeaf, p->nLeaf);
    if( a ) p->aLeaf = a;
  }
  if( p->nCell ){
    uint32_t *a = wordsResize(p->aCell, p->nCell, p->nCell);
    if( a ) p->aCell = a;
  }
  if( p->nV ){
    uint32_t *a = wordsResize(p->aV, p->nV*2, p->nV*2);
    if( a ) p->aV = a;
  }
  pipBuilderFree(b);
  return p;
fail:
  free(aE);
  pipBuilderFree(b);
  return 0;
}

/* ---- saving and loading ----------------------------------------------- */

void *trBigAlloc(size_t n){
  void *p = 0;
  if( n < ((size_t)4<<20) ) return malloc(n ? n : 1);
  /* 2 MiB aligned and backed by huge pages where the kernel allows: one
  ** page fault per 2 MiB instead of per 4 KiB when the array is filled */
  if( posix_memalign(&p, (size_t)2<<20, n) ) return 0;
#ifdef MADV_HUGEPAGE
  madvise(p, n, MADV_HUGEPAGE);
#endif
  return p;
}

void trBigPopulate(void *p, size_t n){
#ifdef MADV_POPULATE_WRITE
  uintptr_t a = ((uintptr_t)p + 4095) & ~(uintptr_t)4095;
  uintptr_t b = ((uintptr_t)p + n) & ~(uintptr_t)4095;
  if( b>a ) madvise((void*)a, b - a, MADV_POPULATE_WRITE);  /* else: faults */
#else
  (void)p; (void)n;
#endif
}

_Static_assert(sizeof(PipNode)==PIP_NODE_BYTES, "PipNode layout");

void pipArrays(const PipIndex *p, PipArrays *a){
  memset(a, 0, sizeof(*a));
  a->root = p->root;
  a->nPoly = p->nPoly;
  a->aV = p->aV;        a->nV = p->nV;
  a->aNode = p->aNode;  a->nNode = p->nNode;
  a->aCell = p->aCell;  a->nCell = p->nCell;
  a->aLeaf = p->aLeaf;  a->nLeaf = p->nLeaf;
  a->nEdgeRef = p->nEdgeRef;
  a->nLeafCell = p->nLeafCell;
  a->nFullCell = p->nFullCell;
}

/* Check the leaf record at aLeaf[off]: every word read by leafLookup and
** nearLeaf is inside the arrays; its edges are added to *pnEdge (the
** caller bounds the total, so that no lookup can be made to crawl). 0 if
** good. */
static int checkLeaf(const PipArrays *a, size_t off, uint64_t *pnEdge){
  const uint32_t *L = a->aLeaf;
  size_t n = a->nLeaf, i, nIn, nGroup, k;
  if( off+4>n ) return 1;
  nIn = L[off+2];
  if( nIn > n - off - 4 ) return 1;
  for(i=0; i<nIn; i++) if( L[off+3+i]>=a->nPoly ) return 1;
  off += 3 + nIn;
  nGroup = L[off++];
  for(k=0; k<nGroup; k++){
    size_t nRun, j;
    if( off+2>n ) return 1;
    if( L[off]>=a->nPoly ) return 1;
    nRun = L[off+1];
    off += 2;
    if( nRun > (n - off)/2 ) return 1;
    for(j=0; j<nRun; j++){
      uint64_t iFirst = L[off+2*j], nE = L[off+2*j+1];
      if( nE>0 && iFirst + nE >= a->nV ) return 1;   /* reads vertex iFirst+nE */
      *pnEdge += nE;
    }
    off += 2*nRun;
  }
  return 0;
}

PipIndex *pipAdopt(PipArrays *a){
  const PipNode *aNode = (const PipNode*)a->aNode;
  uint8_t *aSeenNode = 0, *aSeenLeaf = 0;
  size_t *aStack = 0, nStack = 0;
  uint64_t nEdge = 0;
  PipIndex *p = 0;
  int bad = 0;
  /* Walk the grid from the root: every word's target exists, every
  ** child grid covers exactly its parent cell (so walks end), every leaf
  ** record stays inside the arrays. The grid is a tree: a grid or leaf
  ** reached twice is refused (shared ones would let a forged index make
  ** walks exponential), and the edges of all leaves together may not
  ** exceed 16 per vertex (a built index has about 1.3), so no lookup
  ** can be made to scan the whole vertex array many times over. */
  if( a->nV>0xfffffff0u || a->nCell>MAX_PAYLOAD || a->nLeaf>MAX_PAYLOAD
   || a->nNode>MAX_PAYLOAD ){
    goto done;
  }
  aSeenNode = calloc(a->nNode+1, 1);
  aSeenLeaf = calloc(a->nLeaf+1, 1);
  aStack = malloc(sizeof(size_t)*(a->nNode+1));
  if( aSeenNode==0 || aSeenLeaf==0 || aStack==0 ) goto done;
  switch( TAG(a->root) ){
    case TAG_FULL: bad = PAYLOAD(a->root)>=a->nPoly; break;
    case TAG_LEAF: bad = checkLeaf(a, PAYLOAD(a->root), &nEdge); break;
    case TAG_CHILD: {
      size_t k = PAYLOAD(a->root);
      bad = k>=a->nNode || aNode[k].shift + aNode[k].bits != 32;
      if( !bad ){ aSeenNode[k] = 1; aStack[nStack++] = k; }
      break;
    }
  }
  while( !bad && nStack>0 ){
    const PipNode *n = &aNode[aStack[--nStack]];
    size_t nCells, c;
    if( n->bits<1 || n->bits>ROOT_BITS || n->shift+n->bits>32 ){ bad = 1; break; }
    nCells = (size_t)1 << (2*n->bits);
    if( n->iBase > a->nCell || nCells > a->nCell - n->iBase ){ bad = 1; break; }
    for(c=0; c<nCells && !bad; c++){
      uint32_t w = a->aCell[n->iBase + c];
      size_t k = PAYLOAD(w);
      switch( TAG(w) ){
        case TAG_FULL: bad = k>=a->nPoly; break;
        case TAG_LEAF:
          if( k>=a->nLeaf || aSeenLeaf[k] ){ bad = 1; break; }
          aSeenLeaf[k] = 1;
          bad = checkLeaf(a, k, &nEdge)
             || nEdge > 16*(uint64_t)a->nV + 65536;
          break;
        case TAG_CHILD:
          if( k>=a->nNode || aSeenNode[k]
           || aNode[k].shift + aNode[k].bits != n->shift ){
            bad = 1; break;
          }
          aSeenNode[k] = 1;
          aStack[nStack++] = k;
          break;
      }
    }
  }
  if( bad ) goto done;
  p = calloc(1, sizeof(*p));
  if( p==0 ) goto done;
  p->aV = a->aV;        p->nV = a->nV;
  p->aNode = a->aNode;  p->nNode = a->nNode;
  p->aCell = a->aCell;  p->nCell = a->nCell;
  p->aLeaf = a->aLeaf;  p->nLeaf = a->nLeaf;
  p->root = a->root;
  p->nPoly = a->nPoly;
  p->nEdgeRef = a->nEdgeRef;
  p->nLeafCell = a->nLeafCell;
  p->nFullCell = a->nFullCell;
  memset(a, 0, sizeof(*a));
done:
  free(aSeenNode);
  free(aSeenLeaf);
  free(aStack);
  if( p==0 ){
    free(a->aV);
    free(a->aNode);
    free(a->aCell);
    free(a->aLeaf);
    memset(a, 0, sizeof(*a));
  }
  return p;
}

size_t pipBytes(const PipIndex *p){
  if( p==0 ) return 0;
  return sizeof(*p) + p->nV*8 + p->nNode*sizeof(PipNode) + p->nCell*4
       + p->nLeaf*4;
}

void pipStats(const PipIndex *p, char *zBuf, int nBuf){
  if( p==0 ){ snprintf(zBuf, (size_t)nBuf, "no index"); return; }
  snprintf(zBuf, (size_t)nBuf,
           "polygons=%u vertices=%zu grids=%zu cells=%zu leaf_cells=%zu "
           "full_cells=%zu edge_refs=%zu leaf_words=%zu bytes=%zu",
           p->nPoly, p->nV, p->nNode, p->nCell, p->nLeafCell, p->nFullCell,
           p->nEdgeRef, p->nLeaf, pipBytes(p));
}
