/*
** fuzz_index.c - libFuzzer harness for pipAdopt (pip.c), the check that
** stands between the rows of tracts_index (any bytes a database may hold)
** and pipLookup/pipNearest: whatever arrays it accepts must be safe to
** look up in, and every lookup must end quickly.
**
**   make fuzz-index               # builds build/fuzz_index, runs 60 s
**
** At start the harness builds a real index (a few hundred polygons: a
** grid of squares, some with holes and wiggly edges, and overlapping
** ones) and keeps its arrays. Each input is a list of 8-byte edits
** (array, word index, new value) applied to a copy of those arrays; the
** copy is handed to pipAdopt, and if it is accepted, every point of a
** grid over the polygons and around them is looked up, with and without
** the nearest-polygon search. ASan/UBSan catch bad reads; libFuzzer's
** -timeout catches lookups that crawl.
*/
#include "../ext/tracts_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <stdio.h>

static PipArrays gBase;          /* the real index's arrays */
static unsigned long gTried, gTaken;   /* inputs, and those pipAdopt took */

static void report(void){
  fprintf(stderr, "fuzz_index: pipAdopt took %lu of %lu edited indexes\n",
          gTaken, gTried);
}
static PipIndex *gIdx;           /* owns them */

static void putXY(unsigned char *a, int i, double x, double y){
  memcpy(a + 16*i, &x, 8);
  memcpy(a + 16*i + 8, &y, 8);
}

/* A square ring from (x0,y0) of side d, with w extra points per side. */
static int squareRing(unsigned char *a, double x0, double y0, double d, int w,
                      int bReverse){
  int n = 0, s, k;
  double cx[4] = { x0, x0, x0+d, x0+d }, cy[4] = { y0, y0+d, y0+d, y0 };
  for(s=0; s<4; s++){
    int t = bReverse ? 3-s : s, u = bReverse ? (t+3)%4 : (t+1)%4;
    for(k=0; k<=w; k++){
      double f = (double)k/(w+1);
      double wig = (k%2) ? d*0.01 : 0.0;
      putXY(a, n++, cx[t] + (cx[u]-cx[t])*f + wig, cy[t] + (cy[u]-cy[t])*f);
    }
  }
  putXY(a, n, cx[bReverse ? 3 : 0], cy[bReverse ? 3 : 0]);
  return n+1;
}

int LLVMFuzzerInitialize(int *pArgc, char ***pArgv){
  PipBuilder *b = pipBuilderNew();
  static unsigned char a[16*4096];
  uint32_t iPoly = 0;
  int i, j, n;
  (void)pArgc; (void)pArgv;
  for(i=0; i<16; i++){
    for(j=0; j<16; j++){
      double x = -72.0 + i*0.01, y = 41.0 + j*0.01;
      n = squareRing(a, x, y, 0.01, (i*j)%7, 0);
      pipBuilderRing(b, iPoly, n, a);
      if( (i+j)%5==0 ){
        n = squareRing(a, x+0.003, y+0.003, 0.004, 2, 1);   /* a hole */
        pipBuilderRing(b, iPoly, n, a);
      }
      iPoly++;
    }
  }
  n = squareRing(a, -71.995, 41.005, 0.05, 40, 0);           /* overlaps */
  pipBuilderRing(b, iPoly++, n, a);
  gIdx = pipBuild(b);
  if( gIdx==0 ) abort();
  atexit(report);
  pipArrays(gIdx, &gBase);
  return 0;
}

static void *dup(const void *p, size_t n){
  void *q = malloc(n ? n : 1);
  if( q && n ) memcpy(q, p, n);
  return q;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n){
  PipArrays a = gBase;
  PipIndex *p;
  size_t k;
  int i, j;
  a.aV = dup(gBase.aV, gBase.nV*8);
  a.aNode = dup(gBase.aNode, gBase.nNode*PIP_NODE_BYTES);
  a.aCell = dup(gBase.aCell, gBase.nCell*4);
  a.aLeaf = dup(gBase.aLeaf, gBase.nLeaf*4);
  if( !a.aV || !a.aNode || !a.aCell || !a.aLeaf ) abort();
  for(k=0; k+8<=n; k+=8){
    uint32_t w, v;
    memcpy(&w, d+k, 4);
    memcpy(&v, d+k+4, 4);
    switch( w>>28 ){
      case 0: if( a.nCell ) a.aCell[(w & 0x0fffffff) % a.nCell] = v; break;
      case 1: if( a.nLeaf ) a.aLeaf[(w & 0x0fffffff) % a.nLeaf] = v; break;
      case 2: if( a.nNode ) ((uint32_t*)a.aNode)[(w & 0x0fffffff) % (a.nNode*2)] = v; break;
      case 3: if( a.nV ) a.aV[(w & 0x0fffffff) % (a.nV*2)] = v; break;
      case 4: a.root = v; break;
      case 5: a.nPoly = v % 1024; break;
      case 6: a.nLeaf = a.nLeaf ? (w & 0x0fffffff) % a.nLeaf : 0; break;
      case 7: a.nCell = a.nCell ? (w & 0x0fffffff) % a.nCell : 0; break;
      default: a.aLeaf[v % (a.nLeaf ? a.nLeaf : 1)] ^= w; break;
    }
  }
  /* shrunk counts: exact allocations, so ASan sees any read past them */
  a.aLeaf = realloc(a.aLeaf, a.nLeaf ? a.nLeaf*4 : 1);
  a.aCell = realloc(a.aCell, a.nCell ? a.nCell*4 : 1);
  if( !a.aLeaf || !a.aCell ) abort();
  gTried++;
  p = pipAdopt(&a);               /* frees the arrays if refused */
  if( p==0 ) return 0;
  gTaken++;
  for(i=-2; i<34; i++){
    for(j=-2; j<34; j++){
      double lon = -72.0 + i*0.005 + 0.0001*j, lat = 41.0 + j*0.005;
      int bEdge;
      double m;
      (void)pipLookup(p, lon, lat, &bEdge);
      if( ((i+j)&7)==0 ) (void)pipNearest(p, lon, lat, 2000.0, &m);
    }
  }
  pipFree(p);
  return 0;
}
