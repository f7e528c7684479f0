/*
** gentracts.c -- write US Census tract shapefiles (and, with --layer, the
** states, counties, block groups, ZCTAs, places and county subdivisions
** that go with them), packaged exactly like the Census Bureau's
** cartographic boundary files, for tests and benchmarks of the "tracts"
** SQLite extension.
**
** BUILD
**
**   gcc -O2 -g -Wall -Wextra -Werror -o build/gentracts tools/gentracts.c \
**       $(pkg-config --cflags --libs shapelib libzip) -lm
**
** OUTPUT FORMAT
**
**   Every output file is a zip archive named like the Census 2019
**   cartographic boundary tract files, for example cb_2019_44_tract_500k.zip,
**   whose members are, in this (alphabetical, as Census) order:
**
**     cb_2019_44_tract_500k.cpg    the text "UTF-8"
**     cb_2019_44_tract_500k.dbf    attributes (see below)
**     cb_2019_44_tract_500k.prj    GCS_North_American_1983 WKT, no newline
**     cb_2019_44_tract_500k.shp    geometry, shape type 5 (Polygon)
**     cb_2019_44_tract_500k.shx    index
**
**   The Census .xml metadata members are not written.  DBF fields, in
**   order, exactly as in the 2019 Census files:
**
**     STATEFP C(2)   COUNTYFP C(3)   TRACTCE C(6)
**     AFFGEOID C(20) = "1400000US" || GEOID
**     GEOID C(11)    = STATEFP || COUNTYFP || TRACTCE
**     NAME C(100)    tract number, "4001.02" for TRACTCE 400102, "12" for
**                    TRACTCE 001200
**     LSAD C(2)      = "CT"
**     ALAND N(14,0)  AWATER N(14,0)   square metres
**
**   With --year 2020 or later the tract files have, as the 2020 Census
**   files, four more fields between NAME and LSAD:
**
**     NAMELSAD C(100)   = "Census Tract " || NAME
**     STUSPS C(2)       USPS code of the state ("" if STATEFP is unknown)
**     NAMELSADCO C(100) = "County " || COUNTYFP, the county's NAME
**     STATE_NAME C(100) name of the state, "Rhode Island" ("" if unknown)
**
**   Files of the other layers (--layer, below) are made the same way,
**   with their own names and fields, and so are the files of the Census
**   2010 layout (--gz, below).  C(n) is a text field of width n, N(14,0)
**   a number, N(14,3) one with 3 decimals.
**
**   Rings follow the shapefile specification: outer rings clockwise,
**   holes counter-clockwise, every ring closed (first vertex repeated as
**   the last).  Members are deflated, carry a fixed modification time
**   (March 15th of the year after --year, 12:00 local time, which yields
**   the same DOS date in every time zone) and fixed Unix mode 0644, so the
**   same arguments always produce byte-identical zip files.  Parts are
**   written with shapelib into a temporary directory DIR/.gentracts-XXXXXX,
**   zipped with libzip into DIR/.NAME.zip.tmpPID and then rename()d into
**   place; the temporary files are removed.
**
** MODE A: SYNTHETIC STATES
**
**   gentracts --out DIR [--states LIST|all] [--tracts N] [--vertices V]
**             [--year Y] [--seed S] [--national | --national-only]
**             [--jobs J] [--level L] [--verbose] [--layer L] [--gz]
**
**   --states LIST   comma separated 2-digit FIPS codes (or USPS
**                   abbreviations such as RI), or "all" (the default) for
**                   the 52 codes 01 02 04 05 06 08 09 10 11 12 13 15 ... 56 72.
**   --tracts N      total number of tracts over the chosen states.  Default:
**                   74000 for "all", otherwise the sum of the (approximate
**                   2010-vintage, as used by the 2019 files) real tract counts
**                   of the chosen states, e.g. 244 for RI.  N is split between
**                   the states in proportion to those real counts (largest
**                   remainder), at least one tract per state.
**   --vertices V    target mean vertices per tract (default 200).
**   --year Y        year used in the file names (default 2019).
**   --seed S        64-bit seed (default 1).
**   --national      also write cb_Y_us_tract_500k.zip holding all chosen
**                   states in one shapefile; --national-only writes only it.
**   --jobs J        worker processes (default: online CPUs).  Each output
**                   file is produced by exactly one worker from the same
**                   deterministic generator, so J never changes the output.
**   --level L       deflate level 1..9 (default 6, like zip(1)).
**   --verbose       list the special tracts (antimeridian, enclaves and their
**                   hosts, island tracts, merged tracts) on stderr (tract
**                   layer only).
**   --layer L       the layer written: tract (the default), state, county,
**                   bg, zcta, place or cousub; see OTHER LAYERS.  The
**                   extension's layer names (tracts, states, counties,
**                   block_groups, zctas, places, county_subdivisions) are
**                   accepted too, and zcta510 / zcta520, which choose that
**                   ZCTA vintage whatever --year is.
**   --gz            the Census 2010 layout (gz_2010_... files, see THE 2010
**                   LAYOUT); only with --year 2010, not with zcta520.
**
**   One line per file is printed on stdout:
**       NAME.zip  tracts=T  vertices=V  bytes=B
**   (features=T instead of tracts=T for the other layers).
**
**   How the geometry is made.  Each state is an axis-aligned rectangle in
**   lon/lat degrees.  The 48 contiguous states and DC sit in a 7x7 grid over
**   lon -125..-66, lat 24..49, roughly in their real relative positions,
**   each filling 88% of its grid cell (DC 30%), so that there is "water"
**   between all states.  AK (02) is lon -168..-141, lat 55..70; HI (15) is
**   lon -160.3..-154.8, lat 18.9..22.3; PR (72) is lon -67.3..-65.2, lat
**   17.9..18.55.  genpoints.c carries a copy of this placement table and of
**   statePlace(); the two must be kept in sync.
**
**   A state is cut into a jittered grid of about N_state cells.  The grid
**   columns and rows are grouped into blocks that are the counties
**   (about 25 tracts per county, at most 500 counties), so every county is
**   an exact rectangle and the counties tile the state.  Grid nodes are
**   jittered by up to 19% of the adjacent column width / row height (which
**   keeps every cell a strictly convex quadrilateral), except that nodes on
**   a county or state border move only along that border.  Every node is
**   rounded to 6 decimal places (like the Census files) before it is used.
**
**   Every cell edge is a polyline generated by a PRNG seeded with the
**   identity of the edge (state, orientation, i, j), so the two tracts on
**   either side regenerate bitwise identical vertices.  Edges inside a
**   county wiggle (a few superposed sines plus noise); an interior vertex is
**   kept inside the two triangles formed by the edge and the centres of the
**   two adjacent cells, shrunk to 60% height, so edges can never cross one
**   another and tracts neither overlap nor leave gaps.  Edges on county and
**   state borders are straight (axis-parallel) polylines, so their interior
**   vertices are exactly on the line.  The number of interior vertices of
**   an edge is log-normally distributed (sigma 0.7) around (V-5)/4, capped so
**   that consecutive vertices are at least 2e-5 degrees apart along the edge,
**   which keeps every ring simple after rounding.
**
**   Most tracts are one cell.  In addition:
**     - merged tracts: about 1.5% of tracts are two adjacent cells of the
**       same county (a 6-edge ring);
**     - enclaves: about 1.5% of tracts (more where the cell count had to be
**       topped up to reach N exactly) lie inside a cell; the host tract has
**       a hole whose ring is the enclave's ring, same vertices, reversed;
**     - islands: a quarter of the cells on the state border get a second
**       polygon part, a small island in the water just outside the state,
**       outside every county;
**     - the south-west cell of AK (02) gets two extra island parts around
**       lon -179.90 lat 51.80 and lon +179.60 lat 51.95, as the real
**       Aleutian tracts that straddle the antimeridian;
**     - diagonal neighbours in the grid share exactly one vertex.
**   COUNTYFP is 001, 003, 005, ... numbered from the north-west.  TRACTCE is
**   increasing and unique within a county, mostly NNNN00 with some
**   NNNN01/NNNN02 pairs.  ALAND+AWATER is the tract's spherical-ish area
**   (degree area times cos(latitude) times 111319.49^2), a deterministic
**   random share of it being water.  Tracts are written in GEOID order.
**
** OTHER LAYERS (--layer L)
**
**   Every layer is made from the same states, tract counts, grid, counties
**   and seed as the tracts of the same arguments, so the layers of one set
**   of arguments nest exactly: a feature's boundary is made of the very
**   same (bitwise identical) vertices as the tract edges it follows.  All
**   features of a layer are valid polygons, never overlap, and, but for
**   places, leave no gap: their union is the union of the chosen states'
**   tracts.  Features are written in GEOID order.
**
**   Most features are "blocks": rectangles of whole grid cells [i0,i1) x
**   [j0,j1).  A block's first ring runs clockwise from its north-west node
**   along the (wiggling or straight) edges of its border cells; its other
**   parts are the island parts of its cells (and the two antimeridian
**   islands of AK if the block holds that cell), cells from the north-west.
**   So a block is exactly the union of the tracts whose cells it holds:
**   an enclave goes with the cell it sits in (no hole), and no block
**   boundary ever cuts a merged tract (a "free" grid line below is one
**   that cuts no merged tract along the stretch concerned; county borders
**   are always free).  ALAND and AWATER of a block are the sums of those
**   of its tracts in the tract file.  NS codes (STATENS, COUNTYNS, PLACENS,
**   COUSUBNS) are "0" and 7 digits hashed from the layer and the GEOID.
**   Made-up names (places and subdivisions) are 2 or 3 syllables hashed
**   the same way, "Fordleyville"; they may repeat.
**
**   state    national: cb_Y_us_state_500k.zip, one feature per chosen
**            state, the block of its whole grid (the state rectangle plus
**            its islands).
**              STATEFP C(2)  STATENS C(8)  AFFGEOID C(11) = "0400000US" ||
**              GEOID  GEOID C(2) = STATEFP  STUSPS C(2)  NAME C(100) state
**              name  LSAD C(2) = "00"  ALAND  AWATER
**
**   county   national: cb_Y_us_county_500k.zip, the counties of the tract
**            grid (blocks of grid columns and rows), as numbered in the
**            tracts.
**              STATEFP C(2)  COUNTYFP C(3)  COUNTYNS C(8)  AFFGEOID C(14)
**              = "0500000US" || GEOID  GEOID C(5) = STATEFP || COUNTYFP
**              NAME C(100) = "County " || COUNTYFP  LSAD C(2) = "06"
**              ALAND  AWATER
**
**   cousub   per state: cb_Y_SS_cousub_500k.zip.  Each county is cut in
**            1, 2 or 4 blocks: a PRNG (seeded by the county) picks a cut
**            along the free column line nearest the middle of the county,
**            along the free row line nearest its middle, or both (2x2);
**            a cut that has no free line is left out, and the other one
**            used instead.  Blocks in each county from the north-west.
**              STATEFP C(2)  COUNTYFP C(3)  COUSUBFP C(5) = 1000 + 45*k for
**              the k-th subdivision of the state (k from 0)  COUSUBNS C(8)
**              AFFGEOID C(19) = "0600000US" || GEOID  GEOID C(10) =
**              STATEFP || COUNTYFP || COUSUBFP  NAME C(100) made up
**              LSAD C(2) = "43" (town)  ALAND  AWATER
**
**   place    per state: cb_Y_SS_place_500k.zip.  The first subdivision of
**            the state and about half of the others (PRNG seeded by the
**            subdivision) hold one place: a block 1 or 2 cells wide and
**            high at a random position inside the subdivision, up to 4
**            draws until one cuts no merged tract (else no place).  Places
**            nest in subdivisions and counties and typically cover 10-30%
**            of a state (all of it when a state has very few tracts).
**              STATEFP C(2)  PLACEFP C(5) = 1500 + 45*k for the k-th place
**              of the state  PLACENS C(8)  AFFGEOID C(16) = "1600000US" ||
**              GEOID  GEOID C(7) = STATEFP || PLACEFP  NAME C(100) made up
**              LSAD C(2) = "25" (city)  ALAND  AWATER
**
**   zcta     national: cb_Y_us_zcta510_500k.zip for Y <= 2019,
**            cb_Y_us_zcta520_500k.zip from 2020 on.  Each state is cut by
**            a coarse grid that ignores counties, so ZCTAs cross county
**            lines: about every s-th column line and every s-th row line,
**            s = 3 (more if needed to stay within 1900 ZCTAs per state),
**            each moved to the nearest line free along the whole state.
**            Blocks from the north-west.  The code of the k-th ZCTA of the
**            state with index x in the table of 52 (01 is 0, 72 is 51) is
**            100 + 1920*x + k, 5 digits, unique over all states.
**              zcta510: ZCTA5CE10 C(5)  AFFGEOID10 C(14) = "8600000US" ||
**                       GEOID10  GEOID10 C(5)  ALAND10  AWATER10
**              zcta520: ZCTA5CE20 C(5)  AFFGEOID20 C(14) = "8600000US" ||
**                       GEOID20  GEOID20 C(5)  NAME20 C(100) = GEOID20
**                       LSAD20 C(2) = "Z5"  ALAND20  AWATER20
**
**   bg       per state: cb_Y_SS_bg_500k.zip, the block groups of each
**            tract, numbered 1, 2, 3 clockwise from the north:
**              - a tract of one plain cell is cut in 2 or 3 (PRNG seeded by
**                the tract) by straight "spokes" from the cell centre
**                (rounded to 6 decimals) to cell corners: 2 = spokes to
**                the north-west and south-east corners (pieces: north+east
**                edges, south+west edges); 3 = spokes to the north-west,
**                north-east and south-east corners (pieces: north edge,
**                east edge, south+west edges).  A spoke from the centre to
**                a corner is a side of the triangles inside which the
**                wiggling edges are kept, so it crosses no edge.  The
**                cell's island goes with the piece holding the edge it
**                lies off;
**              - a merged tract: one block group per cell (the northern or
**                western cell first);
**              - an enclave tract, an enclave's host (with its hole) and
**                the AK antimeridian tract: one block group "1", the
**                tract's own geometry.
**            ALAND and AWATER: the piece's area split with the tract's
**            water share; the last block group gets the remainder, so the
**            block groups add up exactly to their tract.
**              STATEFP C(2)  COUNTYFP C(3)  TRACTCE C(6)  BLKGRPCE C(1)
**              AFFGEOID C(21) = "1500000US" || GEOID  GEOID C(12) =
**              tract GEOID || BLKGRPCE  NAME C(100) = BLKGRPCE
**              LSAD C(2) = "BG"  ALAND  AWATER
**
**   A national layer writes one national file whatever --national says.
**   With --national or --national-only a per-state layer also (or only)
**   writes cb_Y_us_L_500k.zip, as the tracts.
**
** THE 2010 LAYOUT (--gz)
**
**   The Census Bureau's 2010 cartographic boundary files are named and laid
**   out differently from the cb_ series.  With --gz (only with --year 2010;
**   without it --year 2010 writes the cb_2010_ files above) every layer is
**   written in that layout: the same features in the same order, with the
**   same geometry (the .shp, .shx, .prj and .cpg members are byte-identical
**   to the cb_ file's), in a zip named gz_2010_SS_LLL_00_500k.zip (SS the
**   state, or "us" for a national file, LLL the summary level below) whose
**   members are named after that stem, in the same order.  GEOID, NAME and
**   ALAND are those of the cb_ feature (GEOID10 and ALAND10 of zcta510 for
**   ZCTAs); the DBF fields, in order:
**
**     GEO_ID C(60)        = LLL || "0000US" || GEOID, "1400000US44001012700"
**     (codes)             the GEOID cut in pieces, as listed below
**     NAME C(90)          the cb_ NAME; for ZCTAs the ZCTA code
**     LSAD C(7)           as listed below
**     CENSUSAREA N(14,3)  land area in square miles, ALAND / 2589988.11
**
**   layer  LLL  SS  LSAD      codes
**   tract  140  SS  "Tract"   STATE C(2) COUNTY C(3) TRACT C(6)
**   state  040  us  ""        STATE C(2)
**   county 050  us  "County"  STATE C(2) COUNTY C(3)
**   bg     150  SS  "BG"      STATE C(2) COUNTY C(3) TRACT C(6) BLKGRP C(1)
**   zcta   860  us  "ZCTA5"   ZCTA5 C(5)
**   place  160  SS  "city"    STATE C(2) PLACE C(5)
**   cousub 060  SS  "town"    STATE C(2) COUNTY C(3) COUSUB C(5)
**
**   --national and --national-only work as for the cb_ files: the tracts
**   of all chosen states in gz_2010_us_140_00_500k.zip, say.  An empty
**   LSAD (states) is blank in the DBF, which readers such as GDAL return
**   as NULL.
**
** MODE B: FROM A TEXT DESCRIPTION
**
**   gentracts --from FILE --out DIR [--name BASE] [--year Y]
**             [--shape-type polygon|point|arc] [--no-zip] [--keep-rings]
**
**   FILE holds one tract per line:
**       GEOID <TAB> WKT [<TAB> FIELD=VALUE]...
**   FILE may be "-" for standard input.
**   GEOID must be 11 characters; STATEFP, COUNTYFP and TRACTCE are its
**   2+3+6 characters.  WKT is POLYGON ((x y, ...), (...)), MULTIPOLYGON
**   (((...)), ...) or either of them EMPTY (written as a null shape).
**   Coordinates go through strtod() and are written bit-exactly.  Blank
**   lines and lines starting with # are ignored.  FIELD=VALUE overrides any
**   DBF field (NAME, ALAND, AWATER, LSAD, AFFGEOID, STATEFP, ...); by
**   default NAME comes from TRACTCE, ALAND from the polygon area, AWATER 0.
**   With --year 2020 or later the file has the 2020 fields, which can be
**   overridden too (NAMELSAD, STUSPS, NAMELSADCO, STATE_NAME); NAMELSAD
**   follows NAME unless given.  Mode B writes tracts only (no --layer),
**   in the cb_ layout only (no --gz).
**   The first ring of each polygon is made clockwise and the others
**   counter-clockwise, and unclosed rings are closed, unless --keep-rings
**   is given, which writes the rings exactly as in the WKT (for tests of
**   malformed input).  --shape-type point writes a Point shapefile (the
**   first vertex of each tract), --shape-type arc a PolyLine shapefile
**   whose parts are the rings; the DBF is the same.  The output is
**   DIR/BASE.zip with BASE defaulting to cb_Y_SS_tract_500k, SS the state
**   of the first GEOID; with --no-zip the five bare files are left in DIR
**   (the summary line then names BASE.shp and counts the bytes of all five).
**   Any error stops the tool with a message naming the line, and removes
**   the partial output.
**
** LIMITS
**
**   Mode A needs a few MB of memory per state; the full 74,000 tract set is
**   about 15 million vertices.  --vertices is a target: tracts on coasts,
**   merged tracts and enclave hosts have more, small edges are capped.
**   A state must have cells at least 1e-4 degrees wide, which allows
**   millions of tracts for any state but DC.  The other layers cost about
**   as much as the tracts (they compute every tract, for ALAND and AWATER);
**   a national layer is written by a single process.  Determinism relies on the
**   C library's libm (sin, cos, exp, log), so byte-identical output is
**   guaranteed on the same platform, not across different libm versions.
*/
#define _GNU_SOURCE 1
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <shapefil.h>
#include <zip.h>

#ifndef M_PI
# define M_PI 3.14159265358979323846
#endif

/* Minimum distance, in degrees, between consecutive generated vertices */
#define MIN_SPACING 2e-5

/* Metres per degree of latitude used for ALAND/AWATER */
#define METRES_PER_DEGREE 111319.49

static const char zPrj[] =
  "GEOGCS[\"GCS_North_American_1983\",DATUM[\"D_North_American_1983\","
  "SPHEROID[\"GRS_1980\",6378137,298.257222101]],PRIMEM[\"Greenwich\",0],"
  "UNIT[\"Degree\",0.017453292519943295]]";

/****************************************************************************
** Utilities
*/
static const char *zArgv0 = "gentracts";

#include "common.h"

/****************************************************************************
** Growable point and shape buffers
*/
typedef struct PtBuf PtBuf;
struct PtBuf {
  int n, nAlloc;
  double *aX, *aY;
};

static void ptReserve(PtBuf *p, int n){
  if( n>p->nAlloc ){
    int nNew = p->nAlloc ? p->nAlloc*2 : 256;
    while( nNew<n ) nNew *= 2;
    p->aX = xrealloc(p->aX, sizeof(double)*nNew);
    p->aY = xrealloc(p->aY, sizeof(double)*nNew);
    p->nAlloc = nNew;
  }
}

static void ptPush(PtBuf *p, double x, double y){
  if( p->n>=p->nAlloc ) ptReserve(p, p->n+1);
  p->aX[p->n] = x;
  p->aY[p->n] = y;
  p->n++;
}

/* Append pSrc to pDst, reversed if bRev, dropping its first point (after
** reversal) if bSkipFirst. */
static void ptAppend(PtBuf *pDst, const PtBuf *pSrc, int bRev, int bSkipFirst){
  int i, n = pSrc->n;
  ptReserve(pDst, pDst->n + n);
  for(i = bSkipFirst ? 1 : 0; i<n; i++){
    int k = bRev ? n-1-i : i;
    pDst->aX[pDst->n] = pSrc->aX[k];
    pDst->aY[pDst->n] = pSrc->aY[k];
    pDst->n++;
  }
}

static void ptFree(PtBuf *p){
  free(p->aX);
  free(p->aY);
  memset(p, 0, sizeof(*p));
}

typedef struct Shape Shape;
struct Shape {
  PtBuf pt;            /* all vertices */
  int nPart, nPartAlloc;
  int *aPart;          /* index of the first vertex of each part */
  int bNull;           /* write a null shape */
};

static void shapeReset(Shape *p){
  p->pt.n = 0;
  p->nPart = 0;
  p->bNull = 0;
}

static void shapeBeginPart(Shape *p){
  if( p->nPart>=p->nPartAlloc ){
    p->nPartAlloc = p->nPartAlloc ? p->nPartAlloc*2 : 16;
    p->aPart = xrealloc(p->aPart, sizeof(int)*p->nPartAlloc);
  }
  p->aPart[p->nPart++] = p->pt.n;
}

static int shapePartEnd(const Shape *p, int iPart){
  return iPart+1<p->nPart ? p->aPart[iPart+1] : p->pt.n;
}

static void shapeFree(Shape *p){
  ptFree(&p->pt);
  free(p->aPart);
  memset(p, 0, sizeof(*p));
}

/* Twice the signed area of vertices [i0,i1) (shoelace, closing implied);
** negative for clockwise rings. */
static double ringArea2(const double *aX, const double *aY, int i0, int i1){
  double s = 0.0;
  int i;
  if( i1-i0<3 ) return 0.0;
  for(i=i0; i<i1; i++){
    int j = (i+1<i1) ? i+1 : i0;
    s += (aX[i]-aX[i0])*(aY[j]-aY[i0]) - (aX[j]-aX[i0])*(aY[i]-aY[i0]);
  }
  return s;
}

/* Area in square metres of a polygon shape with shapefile orientation
** (clockwise rings count positive, counter-clockwise negative). */
static double shapeAreaM2(const Shape *p){
  double r = 0.0;
  int k;
  for(k=0; k<p->nPart; k++){
    int i0 = p->aPart[k], i1 = shapePartEnd(p, k), i;
    double lat = 0.0;
    if( i1-i0<3 ) continue;
    for(i=i0; i<i1; i++) lat += p->pt.aY[i];
    lat /= (i1-i0);
    r += -0.5*ringArea2(p->pt.aX, p->pt.aY, i0, i1)
         * METRES_PER_DEGREE*METRES_PER_DEGREE*cos(lat*M_PI/180.0);
  }
  return r<0.0 ? -r : r;
}

/****************************************************************************
** State table and placement: tools/states.h, shared with genpoints.
*/
#include "states.h"

/****************************************************************************
** Attributes of one tract and the output "sink" (one shapefile, later
** one zip).
*/
typedef struct TractAttr TractAttr;
struct TractAttr {
  char zStatefp[3];
  char zCountyfp[4];
  char zTractce[7];
  char zAffgeoid[21];
  char zGeoid[12];
  char zName[101];
  char zLsad[3];
  double rAland, rAwater;
  /* Only in the files of 2020 and later: */
  char zNamelsad[101];      /* used if bNamelsad, else "Census Tract "||NAME */
  int bNamelsad;
  char zStusps[3];
  char zNamelsadco[101];
  char zStateName[101];
};

/* Names of the states, by FIPS code (STATE_NAME, and NAME of the state
** layer) */
static const char *const azStateName[80] = {
  [1] = "Alabama", [2] = "Alaska", [4] = "Arizona", [5] = "Arkansas",
  [6] = "California", [8] = "Colorado", [9] = "Connecticut",
  [10] = "Delaware", [11] = "District of Columbia", [12] = "Florida",
  [13] = "Georgia", [15] = "Hawaii", [16] = "Idaho", [17] = "Illinois",
  [18] = "Indiana", [19] = "Iowa", [20] = "Kansas", [21] = "Kentucky",
  [22] = "Louisiana", [23] = "Maine", [24] = "Maryland",
  [25] = "Massachusetts", [26] = "Michigan", [27] = "Minnesota",
  [28] = "Mississippi", [29] = "Missouri", [30] = "Montana",
  [31] = "Nebraska", [32] = "Nevada", [33] = "New Hampshire",
  [34] = "New Jersey", [35] = "New Mexico", [36] = "New York",
  [37] = "North Carolina", [38] = "North Dakota", [39] = "Ohio",
  [40] = "Oklahoma", [41] = "Oregon", [42] = "Pennsylvania",
  [44] = "Rhode Island", [45] = "South Carolina", [46] = "South Dakota",
  [47] = "Tennessee", [48] = "Texas", [49] = "Utah", [50] = "Vermont",
  [51] = "Virginia", [53] = "Washington", [54] = "West Virginia",
  [55] = "Wisconsin", [56] = "Wyoming", [72] = "Puerto Rico"
};

/* USPS code and name of the state with FIPS code zFips, "" if unknown */
static void stateNames(const char *zFips, char *zUsps, int nUsps,
                       char *zName, int nName){
  const StateDef *pDef = 0;
  int i;
  if( zFips[0]>='0' && zFips[0]<='9' && zFips[1]>='0' && zFips[1]<='9' ){
    int v = (zFips[0]-'0')*10 + (zFips[1]-'0');
    for(i=0; i<N_STATE; i++) if( aStateDef[i].iFips==v ) pDef = &aStateDef[i];
  }
  snprintf(zUsps, nUsps, "%s", pDef ? pDef->zAbbr : "");
  snprintf(zName, nName, "%s", pDef ? azStateName[pDef->iFips] : "");
}

/* Derive NAME from a TRACTCE: "400102" -> "4001.02", "001200" -> "12" */
static void tractName(const char *zTractce, char *zName, int nName){
  int i;
  for(i=0; i<6; i++){
    if( zTractce[i]<'0' || zTractce[i]>'9' ) break;
  }
  if( i==6 && zTractce[6]==0 ){
    int v = atoi(zTractce);
    if( v%100 ) snprintf(zName, nName, "%d.%02d", v/100, v%100);
    else snprintf(zName, nName, "%d", v/100);
  }else{
    snprintf(zName, nName, "%s", zTractce);
  }
}

/* Fill everything but NAME, ALAND, AWATER from an 11 character GEOID */
static void attrFromGeoid(TractAttr *p, const char *zGeoid){
  memset(p, 0, sizeof(*p));
  snprintf(p->zGeoid, sizeof(p->zGeoid), "%s", zGeoid);
  memcpy(p->zStatefp, zGeoid, 2);
  memcpy(p->zCountyfp, zGeoid+2, 3);
  memcpy(p->zTractce, zGeoid+5, 6);
  snprintf(p->zAffgeoid, sizeof(p->zAffgeoid), "1400000US%s", zGeoid);
  strcpy(p->zLsad, "CT");
  tractName(p->zTractce, p->zName, sizeof(p->zName));
  stateNames(p->zStatefp, p->zStusps, sizeof(p->zStusps),
             p->zStateName, sizeof(p->zStateName));
  snprintf(p->zNamelsadco, sizeof(p->zNamelsadco), "County %s", p->zCountyfp);
}

/****************************************************************************
** DBF schemas.  A field is C(nWidth) text if nWidth>0, else the number
** N(14,-nWidth): N(14,0) if nWidth is 0, N(14,3) if it is -3.  A record
** (Rec) holds one value per field, text or number by position.
*/
typedef struct FieldDef FieldDef;
struct FieldDef {
  const char *zName;
  int nWidth;
};

#define MAX_FIELD 13

typedef struct Rec Rec;
struct Rec {
  char az[MAX_FIELD][101];
  double ar[MAX_FIELD];
};

static void recPut(Rec *p, int k, const char *zFmt, ...){
  va_list ap;
  va_start(ap, zFmt);
  vsnprintf(p->az[k], sizeof(p->az[k]), zFmt, ap);
  va_end(ap);
}

#define N_ELEM(A) ((int)(sizeof(A)/sizeof((A)[0])))

static const FieldDef aTractField[] = {         /* years before 2020 */
  { "STATEFP", 2 }, { "COUNTYFP", 3 }, { "TRACTCE", 6 }, { "AFFGEOID", 20 },
  { "GEOID", 11 }, { "NAME", 100 }, { "LSAD", 2 }, { "ALAND", 0 },
  { "AWATER", 0 }
};
static const FieldDef aTract20Field[] = {       /* 2020 and later */
  { "STATEFP", 2 }, { "COUNTYFP", 3 }, { "TRACTCE", 6 }, { "AFFGEOID", 20 },
  { "GEOID", 11 }, { "NAME", 100 }, { "NAMELSAD", 100 }, { "STUSPS", 2 },
  { "NAMELSADCO", 100 }, { "STATE_NAME", 100 }, { "LSAD", 2 },
  { "ALAND", 0 }, { "AWATER", 0 }
};
static const FieldDef aStateField[] = {
  { "STATEFP", 2 }, { "STATENS", 8 }, { "AFFGEOID", 11 }, { "GEOID", 2 },
  { "STUSPS", 2 }, { "NAME", 100 }, { "LSAD", 2 }, { "ALAND", 0 },
  { "AWATER", 0 }
};
static const FieldDef aCountyField[] = {
  { "STATEFP", 2 }, { "COUNTYFP", 3 }, { "COUNTYNS", 8 }, { "AFFGEOID", 14 },
  { "GEOID", 5 }, { "NAME", 100 }, { "LSAD", 2 }, { "ALAND", 0 },
  { "AWATER", 0 }
};
static const FieldDef aBgField[] = {
  { "STATEFP", 2 }, { "COUNTYFP", 3 }, { "TRACTCE", 6 }, { "BLKGRPCE", 1 },
  { "AFFGEOID", 21 }, { "GEOID", 12 }, { "NAME", 100 }, { "LSAD", 2 },
  { "ALAND", 0 }, { "AWATER", 0 }
};
static const FieldDef aZcta510Field[] = {
  { "ZCTA5CE10", 5 }, { "AFFGEOID10", 14 }, { "GEOID10", 5 },
  { "ALAND10", 0 }, { "AWATER10", 0 }
};
static const FieldDef aZcta520Field[] = {
  { "ZCTA5CE20", 5 }, { "AFFGEOID20", 14 }, { "GEOID20", 5 },
  { "NAME20", 100 }, { "LSAD20", 2 }, { "ALAND20", 0 }, { "AWATER20", 0 }
};
static const FieldDef aPlaceField[] = {
  { "STATEFP", 2 }, { "PLACEFP", 5 }, { "PLACENS", 8 }, { "AFFGEOID", 16 },
  { "GEOID", 7 }, { "NAME", 100 }, { "LSAD", 2 }, { "ALAND", 0 },
  { "AWATER", 0 }
};
static const FieldDef aCousubField[] = {
  { "STATEFP", 2 }, { "COUNTYFP", 3 }, { "COUSUBFP", 5 }, { "COUSUBNS", 8 },
  { "AFFGEOID", 19 }, { "GEOID", 10 }, { "NAME", 100 }, { "LSAD", 2 },
  { "ALAND", 0 }, { "AWATER", 0 }
};

/* The Census 2010 layout (--gz): one schema per layer.  The fields between
** GEO_ID and NAME are the GEOID cut in pieces of their widths. */
static const FieldDef aGzTractField[] = {
  { "GEO_ID", 60 }, { "STATE", 2 }, { "COUNTY", 3 }, { "TRACT", 6 },
  { "NAME", 90 }, { "LSAD", 7 }, { "CENSUSAREA", -3 }
};
static const FieldDef aGzStateField[] = {
  { "GEO_ID", 60 }, { "STATE", 2 }, { "NAME", 90 }, { "LSAD", 7 },
  { "CENSUSAREA", -3 }
};
static const FieldDef aGzCountyField[] = {
  { "GEO_ID", 60 }, { "STATE", 2 }, { "COUNTY", 3 }, { "NAME", 90 },
  { "LSAD", 7 }, { "CENSUSAREA", -3 }
};
static const FieldDef aGzBgField[] = {
  { "GEO_ID", 60 }, { "STATE", 2 }, { "COUNTY", 3 }, { "TRACT", 6 },
  { "BLKGRP", 1 }, { "NAME", 90 }, { "LSAD", 7 }, { "CENSUSAREA", -3 }
};
static const FieldDef aGzZctaField[] = {
  { "GEO_ID", 60 }, { "ZCTA5", 5 }, { "NAME", 90 }, { "LSAD", 7 },
  { "CENSUSAREA", -3 }
};
static const FieldDef aGzPlaceField[] = {
  { "GEO_ID", 60 }, { "STATE", 2 }, { "PLACE", 5 }, { "NAME", 90 },
  { "LSAD", 7 }, { "CENSUSAREA", -3 }
};
static const FieldDef aGzCousubField[] = {
  { "GEO_ID", 60 }, { "STATE", 2 }, { "COUNTY", 3 }, { "COUSUB", 5 },
  { "NAME", 90 }, { "LSAD", 7 }, { "CENSUSAREA", -3 }
};

/* The layers (--layer) */
#define LAYER_TRACT  0
#define LAYER_STATE  1
#define LAYER_COUNTY 2
#define LAYER_BG     3
#define LAYER_ZCTA   4
#define LAYER_PLACE  5
#define LAYER_COUSUB 6

/* The 2010 layout of each layer, by LAYER_xxx: summary level (file name
** and GEO_ID), LSAD, schema */
typedef struct GzDef GzDef;
struct GzDef {
  const char *zSumlev;
  const char *zLsad;
  const FieldDef *aField;
  int nField;
};
static const GzDef aGzDef[] = {
  { "140", "Tract",  aGzTractField,  N_ELEM(aGzTractField) },
  { "040", "",       aGzStateField,  N_ELEM(aGzStateField) },
  { "050", "County", aGzCountyField, N_ELEM(aGzCountyField) },
  { "150", "BG",     aGzBgField,     N_ELEM(aGzBgField) },
  { "860", "ZCTA5",  aGzZctaField,   N_ELEM(aGzZctaField) },
  { "160", "city",   aGzPlaceField,  N_ELEM(aGzPlaceField) },
  { "060", "town",   aGzCousubField, N_ELEM(aGzCousubField) },
};

/* Square metres per square mile, for CENSUSAREA */
#define M2_PER_SQMI 2589988.11

/* The 2010 record of a feature of layer eLayer from its cb_ GEOID, NAME
** and ALAND */
static void gzRec(int eLayer, const char *zGeoid, const char *zName,
                  double rAland, Rec *pR){
  const GzDef *pD = &aGzDef[eLayer];
  int k = 0, off = 0;
  recPut(pR, k++, "%s0000US%s", pD->zSumlev, zGeoid);
  while( strcmp(pD->aField[k].zName, "NAME")!=0 ){
    int n = pD->aField[k].nWidth;
    recPut(pR, k++, "%.*s", n, zGeoid+off);
    off += n;
  }
  recPut(pR, k++, "%s", zName);
  recPut(pR, k++, "%s", pD->zLsad);
  pR->ar[k++] = rAland/M2_PER_SQMI;
}

/* The record of a tract, in the schema of the year (b2020: 2020 or later) */
static void tractRec(const TractAttr *pA, int b2020, Rec *pR){
  int k = 0;
  recPut(pR, k++, "%s", pA->zStatefp);
  recPut(pR, k++, "%s", pA->zCountyfp);
  recPut(pR, k++, "%s", pA->zTractce);
  recPut(pR, k++, "%s", pA->zAffgeoid);
  recPut(pR, k++, "%s", pA->zGeoid);
  recPut(pR, k++, "%s", pA->zName);
  if( b2020 ){
    if( pA->bNamelsad ) recPut(pR, k++, "%s", pA->zNamelsad);
    else recPut(pR, k++, "Census Tract %s", pA->zName);
    recPut(pR, k++, "%s", pA->zStusps);
    recPut(pR, k++, "%s", pA->zNamelsadco);
    recPut(pR, k++, "%s", pA->zStateName);
  }
  recPut(pR, k++, "%s", pA->zLsad);
  pR->ar[k++] = pA->rAland;
  pR->ar[k++] = pA->rAwater;
}

typedef struct Sink Sink;
struct Sink {
  char *zDir;           /* output directory */
  char *zBase;          /* base name of the members, e.g. cb_2019_44_tract_500k */
  char *zTmp;           /* temporary directory holding the parts */
  int iYear;            /* for the fixed dates */
  const FieldDef *aField;  /* DBF schema */
  int nField;
  SHPHandle hShp;
  DBFHandle hDbf;
  int nRec;             /* records written */
  long long nVertex;    /* vertices written */
  long long nBytes;     /* size of the result, set by sinkFinish() */
};

static const char *azMemberExt[] = { "cpg", "dbf", "prj", "shp", "shx" };
#define N_MEMBER 5

static void writeTextFile(const char *zPath, const char *zText){
  FILE *f = fopen(zPath, "wb");
  if( f==0 ) fatal("cannot create %s: %s", zPath, strerror(errno));
  if( fwrite(zText, 1, strlen(zText), f)!=strlen(zText) || fclose(f)!=0 ){
    fatal("cannot write %s: %s", zPath, strerror(errno));
  }
}

/* The sink being written, for cleanup when fatal() exits */
static Sink *pOpenSink = 0;

static void sinkCleanup(void){
  Sink *p = pOpenSink;
  int i;
  if( p==0 || p->zTmp==0 ) return;
  pOpenSink = 0;
  if( p->hShp ) SHPClose(p->hShp);
  if( p->hDbf ) DBFClose(p->hDbf);
  for(i=0; i<N_MEMBER; i++){
    char *zPath = xmprintf("%s/%s.%s", p->zTmp, p->zBase, azMemberExt[i]);
    unlink(zPath);
    free(zPath);
  }
  if( p->zDir ){
    char *zPath = xmprintf("%s/.%s.zip.tmp%ld", p->zDir, p->zBase, (long)getpid());
    unlink(zPath);
    free(zPath);
  }
  rmdir(p->zTmp);
}

static void sinkOpen(Sink *p, const char *zDir, const char *zBase,
                     int eShapeType, int iYear,
                     const FieldDef *aField, int nField){
  char *zPath;
  int k;
  static int bAtexit = 0;
  if( !bAtexit ){
    atexit(sinkCleanup);
    bAtexit = 1;
  }
  memset(p, 0, sizeof(*p));
  p->zDir = xmprintf("%s", zDir);
  p->zBase = xmprintf("%s", zBase);
  p->iYear = iYear;
  p->aField = aField;
  p->nField = nField;
  p->zTmp = xmprintf("%s/.gentracts-XXXXXX", zDir);
  if( mkdtemp(p->zTmp)==0 ){
    fatal("cannot create temporary directory in %s: %s", zDir, strerror(errno));
  }
  pOpenSink = p;
  zPath = xmprintf("%s/%s.shp", p->zTmp, zBase);
  p->hShp = SHPCreate(zPath, eShapeType);
  if( p->hShp==0 ) fatal("cannot create %s", zPath);
  free(zPath);
  zPath = xmprintf("%s/%s.dbf", p->zTmp, zBase);
  /* DBFCreateEx() with a code page name writes the .cpg ("UTF-8", no
  ** newline) and language driver id 0, as the Census files have. */
  p->hDbf = DBFCreateEx(zPath, "UTF-8");
  if( p->hDbf==0 ) fatal("cannot create %s", zPath);
  free(zPath);
  DBFSetLastModifiedDate(p->hDbf, iYear+1-1900, 3, 15);
  for(k=0; k<nField; k++){
    int rc = aField[k].nWidth>0
           ? DBFAddField(p->hDbf, aField[k].zName, FTString, aField[k].nWidth, 0)
           : DBFAddField(p->hDbf, aField[k].zName, FTDouble, 14,
                         -aField[k].nWidth);
    if( rc<0 ) fatal("cannot add DBF field %s", aField[k].zName);
  }
  zPath = xmprintf("%s/%s.prj", p->zTmp, zBase);
  writeTextFile(zPath, zPrj);
  free(zPath);
}

/* Write one record.  eType is the shape type of the file. */
static void sinkWrite(Sink *p, int eType, const Shape *pS, const Rec *pR){
  SHPObject *pObj;
  DBFHandle h = p->hDbf;
  int iRec = p->nRec, k;
  if( pS->bNull || pS->pt.n==0 ){
    pObj = SHPCreateSimpleObject(SHPT_NULL, 0, 0, 0, 0);
  }else if( eType==SHPT_POINT ){
    pObj = SHPCreateSimpleObject(SHPT_POINT, 1, pS->pt.aX, pS->pt.aY, 0);
  }else{
    pObj = SHPCreateObject(eType, -1, pS->nPart, pS->aPart, 0,
                           pS->pt.n, pS->pt.aX, pS->pt.aY, 0, 0);
  }
  if( pObj==0 || SHPWriteObject(p->hShp, -1, pObj)<0 ){
    fatal("cannot write shape %d of %s", iRec, p->zBase);
  }
  p->nVertex += pObj->nVertices;
  SHPDestroyObject(pObj);
  for(k=0; k<p->nField; k++){
    int ok = p->aField[k].nWidth>0
           ? DBFWriteStringAttribute(h, iRec, k, pR->az[k])
           : DBFWriteDoubleAttribute(h, iRec, k, pR->ar[k]);
    if( !ok ) fatal("cannot write DBF record %d of %s", iRec, p->zBase);
  }
  p->nRec++;
}

static long long fileSize(const char *zPath){
  struct stat st;
  if( stat(zPath, &st)!=0 ) fatal("cannot stat %s: %s", zPath, strerror(errno));
  return (long long)st.st_size;
}

/* Close the shapefile; zip it into DIR/BASE.zip (bZip) or move the bare
** parts into DIR.  Removes the temporary directory. */
static void sinkFinish(Sink *p, int bZip, int iLevel){
  int i;
  char *azPart[N_MEMBER];
  SHPClose(p->hShp);
  DBFClose(p->hDbf);
  p->hShp = 0;
  p->hDbf = 0;
  for(i=0; i<N_MEMBER; i++){
    azPart[i] = xmprintf("%s/%s.%s", p->zTmp, p->zBase, azMemberExt[i]);
  }
  p->nBytes = 0;
  if( bZip ){
    char *zTmpZip = xmprintf("%s/.%s.zip.tmp%ld", p->zDir, p->zBase,
                             (long)getpid());
    char *zZip = xmprintf("%s/%s.zip", p->zDir, p->zBase);
    struct tm tm;
    time_t tMtime;
    int err = 0;
    zip_t *za;
    /* mktime() and libzip's localtime() conversion cancel out, so the DOS
    ** date and time in the archive are the same in every time zone. */
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = p->iYear+1-1900;
    tm.tm_mon = 2;
    tm.tm_mday = 15;
    tm.tm_hour = 12;
    tm.tm_isdst = -1;
    tMtime = mktime(&tm);
    unlink(zTmpZip);
    za = zip_open(zTmpZip, ZIP_CREATE|ZIP_TRUNCATE, &err);
    if( za==0 ) fatal("cannot create %s (libzip error %d)", zTmpZip, err);
    for(i=0; i<N_MEMBER; i++){
      char *zName = xmprintf("%s.%s", p->zBase, azMemberExt[i]);
      zip_source_t *pSrc = zip_source_file(za, azPart[i], 0, -1);
      zip_int64_t idx;
      if( pSrc==0 ) fatal("%s: %s", azPart[i], zip_strerror(za));
      idx = zip_file_add(za, zName, pSrc, ZIP_FL_OVERWRITE);
      if( idx<0 ){
        zip_source_free(pSrc);
        fatal("%s: %s", zTmpZip, zip_strerror(za));
      }
      if( zip_set_file_compression(za, idx, ZIP_CM_DEFLATE, iLevel)<0
       || zip_file_set_mtime(za, idx, tMtime, 0)<0
       || zip_file_set_external_attributes(za, idx, 0, ZIP_OPSYS_UNIX,
                                           (zip_uint32_t)0100644<<16)<0
      ){
        fatal("%s: %s", zTmpZip, zip_strerror(za));
      }
      free(zName);
    }
    if( zip_close(za)<0 ){
      fatal("cannot write %s: %s", zTmpZip, zip_strerror(za));
    }
    if( rename(zTmpZip, zZip)!=0 ){
      fatal("cannot rename %s to %s: %s", zTmpZip, zZip, strerror(errno));
    }
    p->nBytes = fileSize(zZip);
    for(i=0; i<N_MEMBER; i++) unlink(azPart[i]);
    free(zTmpZip);
    free(zZip);
  }else{
    for(i=0; i<N_MEMBER; i++){
      char *zDest = xmprintf("%s/%s.%s", p->zDir, p->zBase, azMemberExt[i]);
      if( rename(azPart[i], zDest)!=0 ){
        fatal("cannot rename %s to %s: %s", azPart[i], zDest, strerror(errno));
      }
      p->nBytes += fileSize(zDest);
      free(zDest);
    }
  }
  rmdir(p->zTmp);
  if( pOpenSink==p ) pOpenSink = 0;
  for(i=0; i<N_MEMBER; i++) free(azPart[i]);
  free(p->zDir);
  free(p->zBase);
  free(p->zTmp);
  p->zDir = p->zBase = p->zTmp = 0;
}

/****************************************************************************
** Mode A: one synthetic state ("region").
**
** Cell (i,j), 0<=i<gx, 0<=j<gy, is bounded by grid column lines i, i+1
** and row lines j, j+1; row 0 is the southernmost.  Node (i,j) is the
** intersection of column line i and row line j.  Edge H(i,j) joins node
** (i,j) to (i+1,j) (west to east), edge V(i,j) joins node (i,j) to (i,j+1)
** (south to north).
*/
#define ISLAND_NONE 0
#define ISLAND_S    1
#define ISLAND_N    2
#define ISLAND_W    3
#define ISLAND_E    4

#define MERGE_NONE  0
#define MERGE_H     1     /* merged with the cell to the east or west */
#define MERGE_V     2     /* merged with the cell to the north or south */

typedef struct Cell Cell;
struct Cell {
  int iPartner;             /* other cell of a merged tract, or -1 */
  int iTract;               /* tract holding this cell, -1 until assigned */
  unsigned char eMerge;     /* MERGE_xxx */
  unsigned char bEnclave;   /* an enclave tract sits in this cell */
  unsigned char eIsland;    /* ISLAND_xxx: side of the island part */
  unsigned char bAnti;      /* gets the antimeridian parts */
};

typedef struct Tract Tract;
struct Tract {
  int iCell;                /* cell, or the first cell of a merged pair */
  int bEnclave;             /* true for the enclave inside iCell */
  int iCounty;              /* 0-based county; COUNTYFP is 2*iCounty+1 */
  int iTractce;             /* TRACTCE as a number */
};

typedef struct Region Region;
struct Region {
  const StateDef *pDef;
  uint64_t iSeed;           /* seed for everything in this state */
  int nTract;               /* number of tracts */
  double aBox[4];           /* lonmin, latmin, lonmax, latmax */
  double mLon, mLat;        /* water margin */
  double rVert;             /* target vertices per tract */
  double kMean;             /* mean interior vertices per edge */
  int gx, gy;               /* grid size in cells */
  double *aLineX;           /* gx+1 base column line positions */
  double *aLineY;           /* gy+1 base row line positions */
  unsigned char *aColBnd;   /* gx+1: column line is a county border */
  unsigned char *aRowBnd;   /* gy+1: row line is a county border */
  int ncx, ncy;             /* counties per row and per column */
  int *aColCty;             /* gx: county column of each cell column */
  int *aRowCty;             /* gy: county row of each cell row */
  int *aColStart;           /* ncx+1: first cell column of each county column */
  int *aRowStart;           /* ncy+1: first cell row of each county row */
  double *aNodeX, *aNodeY;  /* (gx+1)*(gy+1) nodes, rounded */
  Cell *aCell;              /* gx*gy cells */
  Tract *aTract;            /* nTract tracts, in output order */
  int nCounty;
  int nMerge, nEnclave, nIsland;   /* statistics */
};

#define NODE(p,i,j)  ((j)*((p)->gx+1)+(i))
#define CELL(p,i,j)  ((j)*(p)->gx+(i))

static void regionFree(Region *p){
  free(p->aLineX); free(p->aLineY);
  free(p->aColBnd); free(p->aRowBnd);
  free(p->aColCty); free(p->aRowCty);
  free(p->aColStart); free(p->aRowStart);
  free(p->aNodeX); free(p->aNodeY);
  free(p->aCell); free(p->aTract);
  memset(p, 0, sizeof(*p));
}

/* Split n items into k>=1 non-empty groups of random size; aStart[0..k] */
static void partitionRandom(Rng *pRng, int n, int k, int *aStart){
  double *aW = xmalloc(sizeof(double)*k);
  double tot = 0.0, cum = 0.0;
  int c;
  for(c=0; c<k; c++){ aW[c] = 0.6 + 0.8*rngUnit(pRng); tot += aW[c]; }
  aStart[0] = 0;
  for(c=1; c<k; c++){
    int b;
    cum += aW[c-1];
    b = (int)floor(n*cum/tot + 0.5);
    if( b<aStart[c-1]+1 ) b = aStart[c-1]+1;
    if( b>n-(k-c) ) b = n-(k-c);
    aStart[c] = b;
  }
  aStart[k] = n;
  free(aW);
}

/* Random grid line positions from a to b over n cells, rounded */
static void gridLines(Rng *pRng, double a, double b, int n, double *aLine){
  double *aW = xmalloc(sizeof(double)*n);
  double tot = 0.0, cum = 0.0;
  int i;
  for(i=0; i<n; i++){ aW[i] = 0.5 + rngUnit(pRng); tot += aW[i]; }
  aLine[0] = a;
  for(i=1; i<n; i++){
    cum += aW[i-1];
    aLine[i] = round6(a + (b-a)*cum/tot);
  }
  aLine[n] = b;
  free(aW);
}

static void cellCentre(const Region *p, int i, int j, double *pX, double *pY){
  int a = NODE(p,i,j), b = NODE(p,i+1,j), c = NODE(p,i+1,j+1), d = NODE(p,i,j+1);
  *pX = 0.25*(p->aNodeX[a]+p->aNodeX[b]+p->aNodeX[c]+p->aNodeX[d]);
  *pY = 0.25*(p->aNodeY[a]+p->aNodeY[b]+p->aNodeY[c]+p->aNodeY[d]);
}

static int cellCounty(const Region *p, int i, int j){
  return (p->ncy-1-p->aRowCty[j])*p->ncx + p->aColCty[i];
}

static int cellFree(const Region *p, int c){
  const Cell *pC = &p->aCell[c];
  return pC->iPartner<0 && !pC->bAnti && !pC->eIsland && !pC->bEnclave;
}

/* Number each county's tracts.  aTract[i0..i1) is one county. */
static void assignTractce(const Region *p, int i0, int i1){
  Rng rng;
  int n = i1-i0, t;
  rngSeed(&rng, p->iSeed, 7, p->aTract[i0].iCounty, 0);
  if( n>2500 ){
    /* Too many for realistic numbering: 000100, 000200, ... or 1, 2, ... */
    for(t=0; t<n; t++){
      p->aTract[i0+t].iTractce = n<=9999 ? (t+1)*100 : t+1;
    }
  }else{
    int iBase = 1 + rngInt(&rng, 200);
    int bPending = 0;
    for(t=0; t<n; t++){
      int iSuffix = 0;
      if( bPending ){
        iSuffix = 2;
        bPending = 0;
      }else{
        iBase += 1 + rngInt(&rng, 3);
        if( t+1<n && rngUnit(&rng)<0.15 ){
          iSuffix = 1;
          bPending = 1;
        }
      }
      p->aTract[i0+t].iTractce = iBase*100 + iSuffix;
    }
  }
}

/* Build the grid, counties and special tracts of one state */
static void regionBuild(Region *p, const StateDef *pDef, int nTract,
                        uint64_t iSeed, double rVert){
  Rng rng;
  double w, h, aspect, g0;
  int lo, hi, gx, bestGx = 1, bestD = -1;
  int nCell, i, j, c, nCountyWant, base, d, nMergeWant, nEnclaveWant, att;
  int *aStart, *aPerm, nTr;

  memset(p, 0, sizeof(*p));
  p->pDef = pDef;
  p->nTract = nTract;
  p->iSeed = hashStep(iSeed, (uint64_t)pDef->iFips);
  p->rVert = rVert;
  p->kMean = rVert>5.0 ? (rVert-5.0)/4.0 : 0.0;
  statePlace(pDef, p->aBox, &p->mLon, &p->mLat);
  rngSeed(&rng, p->iSeed, 1, 0, 0);

  /* Grid size: about nTract square-ish cells, gx*gy<=nTract with the
  ** smallest remainder, which is made up with enclaves. */
  w = p->aBox[2]-p->aBox[0];
  h = p->aBox[3]-p->aBox[1];
  aspect = w*cos(0.5*(p->aBox[1]+p->aBox[3])*M_PI/180.0)/h;
  g0 = sqrt(nTract*aspect);
  lo = (int)floor(0.85*g0);
  hi = (int)ceil(1.18*g0);
  if( lo<1 ) lo = 1;
  if( hi>nTract ) hi = nTract;
  if( hi<lo ) hi = lo;
  for(gx=lo; gx<=hi; gx++){
    int gy = nTract/gx;
    int dd;
    if( gy<1 ) continue;
    dd = nTract - gx*gy;
    if( bestD<0 || dd<bestD
     || (dd==bestD && fabs(gx-g0)<fabs(bestGx-g0)) ){
      bestD = dd;
      bestGx = gx;
    }
  }
  p->gx = bestGx;
  p->gy = nTract/bestGx;
  if( w/p->gx<1e-4 || h/p->gy<1e-4 ){
    fatal("too many tracts (%d) for state %02d", nTract, pDef->iFips);
  }
  nCell = p->gx*p->gy;

  /* Grid lines and counties */
  p->aLineX = xmalloc(sizeof(double)*(p->gx+1));
  p->aLineY = xmalloc(sizeof(double)*(p->gy+1));
  gridLines(&rng, p->aBox[0], p->aBox[2], p->gx, p->aLineX);
  gridLines(&rng, p->aBox[1], p->aBox[3], p->gy, p->aLineY);
  nCountyWant = (int)floor(nTract/25.0 + 0.5);
  if( nCountyWant<1 ) nCountyWant = 1;
  if( nCountyWant>500 ) nCountyWant = 500;
  p->ncx = (int)floor(sqrt(nCountyWant*(double)p->gx/p->gy) + 0.5);
  if( p->ncx<1 ) p->ncx = 1;
  if( p->ncx>p->gx ) p->ncx = p->gx;
  p->ncy = (int)floor((double)nCountyWant/p->ncx + 0.5);
  if( p->ncy<1 ) p->ncy = 1;
  if( p->ncy>p->gy ) p->ncy = p->gy;
  while( p->ncx*p->ncy>500 ){
    if( p->ncx>p->ncy ) p->ncx--; else p->ncy--;
  }
  p->nCounty = p->ncx*p->ncy;
  p->aColBnd = xcalloc(p->gx+1, 1);
  p->aRowBnd = xcalloc(p->gy+1, 1);
  p->aColCty = xmalloc(sizeof(int)*p->gx);
  p->aRowCty = xmalloc(sizeof(int)*p->gy);
  aStart = xmalloc(sizeof(int)*(p->ncx+p->ncy+2));
  partitionRandom(&rng, p->gx, p->ncx, aStart);
  for(c=0; c<p->ncx; c++){
    p->aColBnd[aStart[c]] = 1;
    for(i=aStart[c]; i<aStart[c+1]; i++) p->aColCty[i] = c;
  }
  p->aColBnd[p->gx] = 1;
  partitionRandom(&rng, p->gy, p->ncy, aStart);
  for(c=0; c<p->ncy; c++){
    p->aRowBnd[aStart[c]] = 1;
    for(j=aStart[c]; j<aStart[c+1]; j++) p->aRowCty[j] = c;
  }
  p->aRowBnd[p->gy] = 1;
  free(aStart);

  /* Jittered, rounded nodes.  Nodes on a county border move only along
  ** it.  Jitter <= 0.19 of the adjacent widths keeps cells convex. */
  p->aNodeX = xmalloc(sizeof(double)*(p->gx+1)*(p->gy+1));
  p->aNodeY = xmalloc(sizeof(double)*(p->gx+1)*(p->gy+1));
  for(j=0; j<=p->gy; j++){
    for(i=0; i<=p->gx; i++){
      Rng r;
      double x = p->aLineX[i], y = p->aLineY[j];
      double ux, uy;
      rngSeed(&r, p->iSeed, 2, i, j);
      ux = 2.0*rngUnit(&r)-1.0;
      uy = 2.0*rngUnit(&r)-1.0;
      if( !p->aColBnd[i] ){
        double wm = fmin(p->aLineX[i]-p->aLineX[i-1], p->aLineX[i+1]-p->aLineX[i]);
        x = round6(x + 0.19*ux*wm);
      }
      if( !p->aRowBnd[j] ){
        double hm = fmin(p->aLineY[j]-p->aLineY[j-1], p->aLineY[j+1]-p->aLineY[j]);
        y = round6(y + 0.19*uy*hm);
      }
      p->aNodeX[NODE(p,i,j)] = x;
      p->aNodeY[NODE(p,i,j)] = y;
    }
  }

  /* Special cells */
  p->aCell = xmalloc(sizeof(Cell)*nCell);
  for(c=0; c<nCell; c++){
    memset(&p->aCell[c], 0, sizeof(Cell));
    p->aCell[c].iPartner = -1;
    p->aCell[c].iTract = -1;
  }
  if( pDef->iFips==2 ) p->aCell[0].bAnti = 1;
  for(j=0; j<p->gy; j++){
    for(i=0; i<p->gx; i++){
      int aSide[4], nSide = 0;
      double u = rngUnit(&rng);
      double v = rngUnit(&rng);
      c = CELL(p,i,j);
      if( j==0 ) aSide[nSide++] = ISLAND_S;
      if( j==p->gy-1 ) aSide[nSide++] = ISLAND_N;
      if( i==0 ) aSide[nSide++] = ISLAND_W;
      if( i==p->gx-1 ) aSide[nSide++] = ISLAND_E;
      if( nSide==0 || p->aCell[c].bAnti || u>=0.25 ) continue;
      p->aCell[c].eIsland = (unsigned char)aSide[(int)(v*nSide)];
      p->nIsland++;
    }
  }
  base = nTract>=20 ? (int)floor(0.015*nTract + 0.5) : 0;
  d = nTract - nCell;
  nMergeWant = base;
  for(att=0; att<50*nMergeWant+100 && p->nMerge<nMergeWant; att++){
    int c2, bH;
    c = rngInt(&rng, nCell);
    bH = rngInt(&rng, 2);
    i = c % p->gx;
    j = c / p->gx;
    if( !cellFree(p, c) ) continue;
    if( bH ){
      if( i+1>=p->gx ) continue;
      c2 = CELL(p,i+1,j);
      if( cellCounty(p,i,j)!=cellCounty(p,i+1,j) ) continue;
    }else{
      if( j+1>=p->gy ) continue;
      c2 = CELL(p,i,j+1);
      if( cellCounty(p,i,j)!=cellCounty(p,i,j+1) ) continue;
    }
    if( !cellFree(p, c2) ) continue;
    p->aCell[c].iPartner = c2;
    p->aCell[c2].iPartner = c;
    p->aCell[c].eMerge = p->aCell[c2].eMerge = bH ? MERGE_H : MERGE_V;
    p->nMerge++;
  }
  nEnclaveWant = p->nMerge + d;
  aPerm = xmalloc(sizeof(int)*nCell);
  for(c=0; c<nCell; c++) aPerm[c] = c;
  for(c=nCell-1; c>0; c--){
    int k = rngInt(&rng, c+1), t = aPerm[c];
    aPerm[c] = aPerm[k];
    aPerm[k] = t;
  }
  for(att=0; att<2 && p->nEnclave<nEnclaveWant; att++){
    for(c=0; c<nCell && p->nEnclave<nEnclaveWant; c++){
      Cell *pC = &p->aCell[aPerm[c]];
      if( pC->iPartner>=0 || pC->bAnti || pC->bEnclave ) continue;
      if( att==0 && pC->eIsland ) continue;
      pC->bEnclave = 1;
      p->nEnclave++;
    }
  }
  free(aPerm);
  if( p->nEnclave<nEnclaveWant ){
    fatal("state %02d: cannot place %d tracts on %d cells", pDef->iFips,
          nTract, nCell);
  }

  /* Tracts in output order: counties from the north-west, cells from the
  ** north-west within each county, each enclave after its host. */
  p->aTract = xmalloc(sizeof(Tract)*nTract);
  nTr = 0;
  {
    int cr, cc, i0, i1, j0, j1, *aColStart, *aRowStart;
    aColStart = p->aColStart = xmalloc(sizeof(int)*(p->ncx+1));
    aRowStart = p->aRowStart = xmalloc(sizeof(int)*(p->ncy+1));
    for(c=0, i=0; i<=p->gx; i++) if( p->aColBnd[i] ) aColStart[c++] = i;
    for(c=0, j=0; j<=p->gy; j++) if( p->aRowBnd[j] ) aRowStart[c++] = j;
    for(cr=p->ncy-1; cr>=0; cr--){
      for(cc=0; cc<p->ncx; cc++){
        int iFirst = nTr;
        int iCounty = (p->ncy-1-cr)*p->ncx + cc;
        i0 = aColStart[cc]; i1 = aColStart[cc+1];
        j0 = aRowStart[cr]; j1 = aRowStart[cr+1];
        for(j=j1-1; j>=j0; j--){
          for(i=i0; i<i1; i++){
            Cell *pC = &p->aCell[CELL(p,i,j)];
            if( pC->iTract>=0 ) continue;
            if( nTr>=nTract ) fatal("internal error: tract overflow");
            p->aTract[nTr].iCell = CELL(p,i,j);
            p->aTract[nTr].bEnclave = 0;
            p->aTract[nTr].iCounty = iCounty;
            pC->iTract = nTr;
            if( pC->iPartner>=0 ) p->aCell[pC->iPartner].iTract = nTr;
            nTr++;
            if( pC->bEnclave ){
              if( nTr>=nTract ) fatal("internal error: tract overflow");
              p->aTract[nTr].iCell = CELL(p,i,j);
              p->aTract[nTr].bEnclave = 1;
              p->aTract[nTr].iCounty = iCounty;
              nTr++;
            }
          }
        }
        if( nTr>iFirst ) assignTractce(p, iFirst, nTr);
      }
    }
  }
  if( nTr!=nTract ){
    fatal("internal error: state %02d has %d tracts, wanted %d",
          pDef->iFips, nTr, nTract);
  }
}

/* Height of triangle (0,0),(1,0),(tc,hc) above abscissa t in (0,1) */
static double tentHeight(double t, double tc, double hc){
  double r = HUGE_VAL;
  if( tc>0.0 ) r = hc*t/tc;
  if( tc<1.0 ){
    double r2 = hc*(1.0-t)/(1.0-tc);
    if( r2<r ) r = r2;
  }
  return r;
}

/* Generate the polyline of edge H(i,j) (bVert==0) or V(i,j) (bVert==1),
** from its first node to its second, both included.  Depends only on the
** edge's identity, so both neighbouring tracts get identical vertices. */
static void regionEdge(const Region *p, int bVert, int i, int j, PtBuf *pOut){
  Rng r;
  double ax, ay, bx, by, dx, dy, L, f;
  int k, kMax, m, bStraight;
  ax = p->aNodeX[NODE(p,i,j)];
  ay = p->aNodeY[NODE(p,i,j)];
  if( bVert ){
    bx = p->aNodeX[NODE(p,i,j+1)];
    by = p->aNodeY[NODE(p,i,j+1)];
    bStraight = p->aColBnd[i];
  }else{
    bx = p->aNodeX[NODE(p,i+1,j)];
    by = p->aNodeY[NODE(p,i+1,j)];
    bStraight = p->aRowBnd[j];
  }
  pOut->n = 0;
  ptPush(pOut, ax, ay);
  rngSeed(&r, p->iSeed, bVert ? 4 : 3, i, j);
  dx = bx-ax;
  dy = by-ay;
  L = sqrt(dx*dx+dy*dy);
  f = exp(0.7*rngNormal(&r) - 0.245);
  k = (int)(p->kMean*f + rngUnit(&r));
  kMax = (int)(0.4*L/MIN_SPACING) - 1;
  if( k>kMax ) k = kMax;
  if( k<0 ) k = 0;
  if( bStraight ){
    for(m=0; m<k; m++){
      double t = (m + 1 + 0.6*(rngUnit(&r)-0.5))/(k+1);
      if( bVert ) ptPush(pOut, ax, round6(ay + t*dy));
      else        ptPush(pOut, round6(ax + t*dx), ay);
    }
  }else{
    /* Interior edge: stays inside the triangles (A,B,centre) of the cell on
    ** either side, scaled to 60% height. */
    double ux = dx/L, uy = dy/L, nx = -uy, ny = ux;
    double clx, cly, crx, cry, tcL, hcL, tcR, hcR;
    double amp, aF[3], aPh[3];
    if( bVert ){
      cellCentre(p, i-1, j, &clx, &cly);   /* west = left of a northward edge */
      cellCentre(p, i, j, &crx, &cry);
    }else{
      cellCentre(p, i, j, &clx, &cly);     /* north = left of an eastward edge */
      cellCentre(p, i, j-1, &crx, &cry);
    }
    tcL = ((clx-ax)*ux + (cly-ay)*uy)/L;
    hcL = (clx-ax)*nx + (cly-ay)*ny;
    tcR = ((crx-ax)*ux + (cry-ay)*uy)/L;
    hcR = -((crx-ax)*nx + (cry-ay)*ny);
    amp = 0.15 + 0.85*rngUnit(&r);
    aF[0] = 1 + rngInt(&r, 3);
    aF[1] = 3 + rngInt(&r, 6);
    aF[2] = 8 + rngInt(&r, 23);
    for(m=0; m<3; m++) aPh[m] = 2.0*M_PI*rngUnit(&r);
    for(m=0; m<k; m++){
      double t = (m + 1 + 0.6*(rngUnit(&r)-0.5))/(k+1);
      double s = 0.6*sin(M_PI*aF[0]*t + aPh[0])
               + 0.3*sin(M_PI*aF[1]*t + aPh[1])
               + 0.15*sin(M_PI*aF[2]*t + aPh[2])
               + 0.2*(2.0*rngUnit(&r)-1.0);
      double hgt;
      if( s>1.0 ) s = 1.0;
      if( s<-1.0 ) s = -1.0;
      s *= amp;
      if( s>=0.0 ) hgt = s*0.6*tentHeight(t, tcL, hcL);
      else         hgt = s*0.6*tentHeight(t, tcR, hcR);
      ptPush(pOut, round6(ax + t*dx + hgt*nx), round6(ay + t*dy + hgt*ny));
    }
  }
  ptPush(pOut, bx, by);
}

/* Append a closed clockwise star-shaped ring of m vertices (plus the
** closing one) around (cx,cy), radius between 0.25 and 0.95 rho. */
static void starRing(double cx, double cy, double rho, int m, Rng *pRng,
                     PtBuf *pOut){
  int q, f1, f2, f3, mMax;
  double p1, p2, p3;
  mMax = (int)(2.0*M_PI*0.25*rho/MIN_SPACING);
  if( m>mMax ) m = mMax;
  if( m<4 ) m = 4;
  f1 = 2 + rngInt(pRng, 3);
  f2 = 5 + rngInt(pRng, 8);
  f3 = 13 + rngInt(pRng, 20);
  p1 = 2.0*M_PI*rngUnit(pRng);
  p2 = 2.0*M_PI*rngUnit(pRng);
  p3 = 2.0*M_PI*rngUnit(pRng);
  ptReserve(pOut, pOut->n + m + 1);
  for(q=0; q<m; q++){
    double th = -2.0*M_PI*q/m;
    double s = 0.6*sin(f1*th+p1) + 0.3*sin(f2*th+p2) + 0.15*sin(f3*th+p3);
    double rr;
    if( s>1.0 ) s = 1.0;
    if( s<-1.0 ) s = -1.0;
    rr = rho*(0.6 + 0.35*s);
    ptPush(pOut, round6(cx + rr*cos(th)), round6(cy + rr*sin(th)));
  }
  ptPush(pOut, pOut->aX[pOut->n-m], pOut->aY[pOut->n-m]);
}

static int partVertexCount(Rng *pRng, double rFrac, double rVert){
  int m = (int)(rFrac*rVert*(0.5 + rngUnit(pRng)));
  return m<8 ? 8 : m;
}

/* Distance from (x,y) to the line through nodes a and b */
static double lineDist(const Region *p, int a, int b, double x, double y){
  double ax = p->aNodeX[a], ay = p->aNodeY[a];
  double dx = p->aNodeX[b]-ax, dy = p->aNodeY[b]-ay;
  return fabs((x-ax)*dy - (y-ay)*dx)/sqrt(dx*dx+dy*dy);
}

/* The clockwise ring of the enclave tract inside cell c */
static void regionEnclaveRing(const Region *p, int c, PtBuf *pOut){
  int i = c % p->gx, j = c / p->gx;
  int a = NODE(p,i,j), b = NODE(p,i+1,j), cc = NODE(p,i+1,j+1), d = NODE(p,i,j+1);
  double cx, cy, rho;
  Rng r;
  cellCentre(p, i, j, &cx, &cy);
  rho = fmin(fmin(lineDist(p,a,b,cx,cy), lineDist(p,b,cc,cx,cy)),
             fmin(lineDist(p,cc,d,cx,cy), lineDist(p,d,a,cx,cy)));
  rho *= 0.3;
  rngSeed(&r, p->iSeed, 5, c, 0);
  pOut->n = 0;
  starRing(cx, cy, rho, partVertexCount(&r, 0.5, p->rVert), &r, pOut);
}

/* The island part of the tract of border cell c */
static void regionIslandRing(const Region *p, int c, PtBuf *pOut){
  int i = c % p->gx, j = c / p->gx;
  int e = p->aCell[c].eIsland;
  double ax, ay, bx, by, L, off, rho, cx, cy;
  Rng r;
  int a, b;
  switch( e ){
    case ISLAND_S: a = NODE(p,i,0);      b = NODE(p,i+1,0);      break;
    case ISLAND_N: a = NODE(p,i,p->gy);  b = NODE(p,i+1,p->gy);  break;
    case ISLAND_W: a = NODE(p,0,j);      b = NODE(p,0,j+1);      break;
    default:       a = NODE(p,p->gx,j);  b = NODE(p,p->gx,j+1);  break;
  }
  ax = p->aNodeX[a]; ay = p->aNodeY[a];
  bx = p->aNodeX[b]; by = p->aNodeY[b];
  L = (e==ISLAND_S || e==ISLAND_N) ? bx-ax : by-ay;
  off = fmin(0.6*L, 0.45*((e==ISLAND_S || e==ISLAND_N) ? p->mLat : p->mLon));
  rho = fmin(0.3*L, 0.4*off);
  switch( e ){
    case ISLAND_S: cx = 0.5*(ax+bx); cy = ay - off; break;
    case ISLAND_N: cx = 0.5*(ax+bx); cy = ay + off; break;
    case ISLAND_W: cx = ax - off; cy = 0.5*(ay+by); break;
    default:       cx = ax + off; cy = 0.5*(ay+by); break;
  }
  rngSeed(&r, p->iSeed, 6, c, 0);
  pOut->n = 0;
  starRing(cx, cy, rho, partVertexCount(&r, 0.3, p->rVert), &r, pOut);
}

typedef struct DirEdge DirEdge;
struct DirEdge { int bVert, i, j, bRev; };

/* The clockwise boundary of tract pT as a list of directed edges,
** starting at the north-west corner. */
static int tractEdges(const Region *p, const Tract *pT, DirEdge *a){
  const Cell *pC = &p->aCell[pT->iCell];
  int c = pT->iCell, n = 0;
  int i, j;
#define ADD(V,I,J,R) (a[n].bVert=(V), a[n].i=(I), a[n].j=(J), a[n].bRev=(R), n++)
  if( pC->iPartner>=0 && pC->iPartner<c ) c = pC->iPartner;
  i = c % p->gx;
  j = c / p->gx;
  if( pC->eMerge==MERGE_H ){           /* cells (i,j) and (i+1,j) */
    ADD(0,i,j+1,0); ADD(0,i+1,j+1,0); ADD(1,i+2,j,1);
    ADD(0,i+1,j,1); ADD(0,i,j,1);     ADD(1,i,j,0);
  }else if( pC->eMerge==MERGE_V ){     /* cells (i,j) and (i,j+1) */
    ADD(0,i,j+2,0); ADD(1,i+1,j+1,1); ADD(1,i+1,j,1);
    ADD(0,i,j,1);   ADD(1,i,j,0);     ADD(1,i,j+1,0);
  }else{
    ADD(0,i,j+1,0); ADD(1,i+1,j,1); ADD(0,i,j,1); ADD(1,i,j,0);
  }
#undef ADD
  return n;
}

/* Append the parts of cell c outside the state rectangle: its island, and
** the two antimeridian islands of the AK cell. */
static void cellExtraParts(const Region *p, int c, Shape *pS, PtBuf *pTmp){
  const Cell *pC = &p->aCell[c];
  if( pC->eIsland ){
    shapeBeginPart(pS);
    regionIslandRing(p, c, pTmp);
    ptAppend(&pS->pt, pTmp, 0, 0);
  }
  if( pC->bAnti ){
    Rng r;
    rngSeed(&r, p->iSeed, 9, 0, 0);
    shapeBeginPart(pS);
    pTmp->n = 0;
    starRing(-179.90, 51.80, 0.05, partVertexCount(&r, 0.3, p->rVert), &r, pTmp);
    ptAppend(&pS->pt, pTmp, 0, 0);
    shapeBeginPart(pS);
    pTmp->n = 0;
    starRing(179.60, 51.95, 0.09, partVertexCount(&r, 0.3, p->rVert), &r, pTmp);
    ptAppend(&pS->pt, pTmp, 0, 0);
  }
}

/* Build the geometry of tract iTract into pS */
static void regionTractShape(const Region *p, int iTract, Shape *pS,
                             PtBuf *pTmp){
  const Tract *pT = &p->aTract[iTract];
  const Cell *pC = &p->aCell[pT->iCell];
  DirEdge aEdge[6];
  int n, e;
  shapeReset(pS);
  if( pT->bEnclave ){
    shapeBeginPart(pS);
    regionEnclaveRing(p, pT->iCell, pTmp);
    ptAppend(&pS->pt, pTmp, 0, 0);
    return;
  }
  n = tractEdges(p, pT, aEdge);
  shapeBeginPart(pS);
  for(e=0; e<n; e++){
    regionEdge(p, aEdge[e].bVert, aEdge[e].i, aEdge[e].j, pTmp);
    ptAppend(&pS->pt, pTmp, aEdge[e].bRev, e>0);
  }
  if( pC->bEnclave ){
    shapeBeginPart(pS);
    regionEnclaveRing(p, pT->iCell, pTmp);
    ptAppend(&pS->pt, pTmp, 1, 0);       /* hole: counter-clockwise */
  }
  cellExtraParts(p, pT->iCell, pS, pTmp);
}

/* The share of water in the area of tract iTract */
static double tractWaterShare(const Region *p, int iTract){
  const Tract *pT = &p->aTract[iTract];
  const Cell *pC = &p->aCell[pT->iCell];
  double wf;
  Rng r;
  rngSeed(&r, p->iSeed, 8, iTract, 0);
  wf = rngUnit(&r)<0.65 ? 0.0 : 0.6*pow(rngUnit(&r), 3.0);
  if( !pT->bEnclave && (pC->eIsland || pC->bAnti) ) wf = fmin(0.9, wf + 0.2);
  return wf;
}

static void regionTractAttr(const Region *p, int iTract, const Shape *pS,
                            TractAttr *pA){
  const Tract *pT = &p->aTract[iTract];
  char zGeoid[32];
  double area, wf;
  snprintf(zGeoid, sizeof(zGeoid), "%02d%03d%06d", p->pDef->iFips,
           2*pT->iCounty+1, pT->iTractce);
  attrFromGeoid(pA, zGeoid);
  wf = tractWaterShare(p, iTract);
  area = shapeAreaM2(pS);
  pA->rAland = floor(area*(1.0-wf) + 0.5);
  pA->rAwater = floor(area*wf + 0.5);
}

/* Write all tracts of region p into pSink (bGz: in the 2010 layout) */
static void regionWrite(const Region *p, Sink *pSink, int b2020, int bGz,
                        int bVerbose){
  Shape s;
  PtBuf tmp;
  TractAttr attr;
  Rec rec;
  int t;
  memset(&s, 0, sizeof(s));
  memset(&tmp, 0, sizeof(tmp));
  for(t=0; t<p->nTract; t++){
    const Tract *pT = &p->aTract[t];
    const Cell *pC = &p->aCell[pT->iCell];
    regionTractShape(p, t, &s, &tmp);
    regionTractAttr(p, t, &s, &attr);
    if( bGz ) gzRec(LAYER_TRACT, attr.zGeoid, attr.zName, attr.rAland, &rec);
    else tractRec(&attr, b2020, &rec);
    sinkWrite(pSink, SHPT_POLYGON, &s, &rec);
    if( bVerbose ){
      if( pT->bEnclave ){
        TractAttr host;
        Shape s2;
        memset(&s2, 0, sizeof(s2));
        regionTractShape(p, t-1, &s2, &tmp);
        regionTractAttr(p, t-1, &s2, &host);
        shapeFree(&s2);
        fprintf(stderr, "%s enclave in %s\n", attr.zGeoid, host.zGeoid);
      }else{
        if( pC->bAnti ) fprintf(stderr, "%s antimeridian\n", attr.zGeoid);
        if( pC->bEnclave ) fprintf(stderr, "%s hole\n", attr.zGeoid);
        if( pC->eIsland ) fprintf(stderr, "%s island\n", attr.zGeoid);
        if( pC->iPartner>=0 ) fprintf(stderr, "%s merged\n", attr.zGeoid);
      }
    }
  }
  shapeFree(&s);
  ptFree(&tmp);
}

/****************************************************************************
** Mode A: the other layers (--layer).  Their features are "blocks"
** (rectangles of whole cells, bounded by the cells' own edges) or, for
** block groups, cells and parts of cells.
*/
typedef struct Block Block;
struct Block {
  int i0, j0, i1, j1;       /* cells [i0,i1) x [j0,j1) */
  int iCounty;              /* county holding the block, -1 if not one */
};

/* ALAND and AWATER of every tract of the region, as in the tract file */
static void regionTractTotals(const Region *p, double *aLand, double *aWater){
  Shape s;
  PtBuf tmp;
  TractAttr attr;
  int t;
  memset(&s, 0, sizeof(s));
  memset(&tmp, 0, sizeof(tmp));
  for(t=0; t<p->nTract; t++){
    regionTractShape(p, t, &s, &tmp);
    regionTractAttr(p, t, &s, &attr);
    aLand[t] = attr.rAland;
    aWater[t] = attr.rAwater;
  }
  shapeFree(&s);
  ptFree(&tmp);
}

/* Sums of ALAND and AWATER over the tracts in block b (a block never cuts
** a merged tract; an enclave goes with the cell it sits in) */
static void blockTotals(const Region *p, const Block *b, const double *aLand,
                        const double *aWater, double *pLand, double *pWater){
  double rLand = 0.0, rWater = 0.0;
  int i, j;
  for(j=b->j0; j<b->j1; j++){
    for(i=b->i0; i<b->i1; i++){
      int c = CELL(p,i,j), t = p->aCell[c].iTract;
      if( p->aTract[t].iCell==c ){ rLand += aLand[t]; rWater += aWater[t]; }
      if( p->aCell[c].bEnclave ){ rLand += aLand[t+1]; rWater += aWater[t+1]; }
    }
  }
  *pLand = rLand;
  *pWater = rWater;
}

/* The geometry of block b: one clockwise ring made of the edges of its
** border cells, from its north-west node, then the islands (and the
** antimeridian parts) of its cells, cells from the north-west. */
static void blockShape(const Region *p, const Block *b, Shape *pS,
                       PtBuf *pTmp){
  int i, j;
  shapeReset(pS);
  shapeBeginPart(pS);
  for(i=b->i0; i<b->i1; i++){            /* north side, eastward */
    regionEdge(p, 0, i, b->j1, pTmp);
    ptAppend(&pS->pt, pTmp, 0, i>b->i0);
  }
  for(j=b->j1-1; j>=b->j0; j--){         /* east side, southward */
    regionEdge(p, 1, b->i1, j, pTmp);
    ptAppend(&pS->pt, pTmp, 1, 1);
  }
  for(i=b->i1-1; i>=b->i0; i--){         /* south side, westward */
    regionEdge(p, 0, i, b->j0, pTmp);
    ptAppend(&pS->pt, pTmp, 1, 1);
  }
  for(j=b->j0; j<b->j1; j++){            /* west side, northward */
    regionEdge(p, 1, b->i0, j, pTmp);
    ptAppend(&pS->pt, pTmp, 0, 1);
  }
  for(j=b->j1-1; j>=b->j0; j--){
    for(i=b->i0; i<b->i1; i++) cellExtraParts(p, CELL(p,i,j), pS, pTmp);
  }
}

/* True if grid line k (a row line if bRow, else a column line) cuts no
** merged tract between cells a0 and a1 along it */
static int lineFree(const Region *p, int bRow, int k, int a0, int a1){
  int a;
  if( k<=0 || k>=(bRow ? p->gy : p->gx) ) return 1;
  for(a=a0; a<a1; a++){
    int c = bRow ? CELL(p,a,k-1) : CELL(p,k-1,a);
    int c2 = bRow ? CELL(p,a,k) : CELL(p,k,a);
    if( p->aCell[c].iPartner==c2 ) return 0;
  }
  return 1;
}

/* The free line (see lineFree()) strictly between lo and hi nearest to m,
** the smaller one on a tie; -1 if there is none */
static int lineNearest(const Region *p, int bRow, int lo, int hi, int m,
                       int a0, int a1){
  int d;
  for(d=0; m-d>lo || m+d<hi; d++){
    if( m-d>lo && m-d<hi && lineFree(p, bRow, m-d, a0, a1) ) return m-d;
    if( d>0 && m+d>lo && m+d<hi && lineFree(p, bRow, m+d, a0, a1) ) return m+d;
  }
  return -1;
}

/* The block of county iCounty */
static void regionCountyBlock(const Region *p, int iCounty, Block *b){
  int cc = iCounty % p->ncx, cr = p->ncy-1 - iCounty/p->ncx;
  b->i0 = p->aColStart[cc];
  b->i1 = p->aColStart[cc+1];
  b->j0 = p->aRowStart[cr];
  b->j1 = p->aRowStart[cr+1];
  b->iCounty = iCounty;
}

/* County subdivisions: each county cut in 1, 2 or 4 blocks.  Returns
** their number; *paB is to be freed. */
static int regionCousubs(const Region *p, Block **paB){
  Block *a = xmalloc(sizeof(Block)*4*p->nCounty);
  int n = 0, iCounty;
  for(iCounty=0; iCounty<p->nCounty; iCounty++){
    Block b;
    Rng r;
    int eMode, ci, rj, aI[3], aJ[3], nI = 1, nJ = 1, x, y;
    regionCountyBlock(p, iCounty, &b);
    rngSeed(&r, p->iSeed, 20, iCounty, 0);
    eMode = rngInt(&r, 3);          /* 0: columns, 1: rows, 2: both */
    ci = lineNearest(p, 0, b.i0, b.i1, (b.i0+b.i1)/2, b.j0, b.j1);
    rj = lineNearest(p, 1, b.j0, b.j1, (b.j0+b.j1)/2, b.i0, b.i1);
    aI[0] = b.i0;
    if( ci>=0 && (eMode!=1 || rj<0) ) aI[nI++] = ci;
    aI[nI] = b.i1;
    aJ[0] = b.j1;                   /* rows from the north */
    if( rj>=0 && (eMode!=0 || ci<0) ) aJ[nJ++] = rj;
    aJ[nJ] = b.j0;
    for(y=0; y<nJ; y++){
      for(x=0; x<nI; x++){
        Block *q = &a[n++];
        q->i0 = aI[x];
        q->i1 = aI[x+1];
        q->j0 = aJ[y+1];
        q->j1 = aJ[y];
        q->iCounty = iCounty;
      }
    }
  }
  *paB = a;
  return n;
}

/* True if no merged tract has one cell inside b and one outside */
static int blockWhole(const Region *p, const Block *b){
  int i, j;
  for(j=b->j0; j<b->j1; j++){
    for(i=b->i0; i<b->i1; i++){
      int c2 = p->aCell[CELL(p,i,j)].iPartner, i2, j2;
      if( c2<0 ) continue;
      i2 = c2 % p->gx;
      j2 = c2 / p->gx;
      if( i2<b->i0 || i2>=b->i1 || j2<b->j0 || j2>=b->j1 ) return 0;
    }
  }
  return 1;
}

/* Places: at most one per county subdivision.  Returns their number;
** *paB is to be freed. */
static int regionPlaces(const Region *p, const Block *aSub, int nSub,
                        Block **paB){
  Block *a = xmalloc(sizeof(Block)*(nSub>0 ? nSub : 1));
  int n = 0, q, att;
  for(q=0; q<nSub; q++){
    const Block *pSub = &aSub[q];
    int nw = pSub->i1-pSub->i0, nh = pSub->j1-pSub->j0;
    Rng r;
    rngSeed(&r, p->iSeed, 21, q, 0);
    if( q>0 && rngUnit(&r)>=0.5 ) continue;
    for(att=0; att<4; att++){
      int w = 1 + rngInt(&r, 2), h = 1 + rngInt(&r, 2);
      Block b;
      if( w>nw ) w = nw;
      if( h>nh ) h = nh;
      b.i0 = pSub->i0 + rngInt(&r, nw-w+1);
      b.j0 = pSub->j0 + rngInt(&r, nh-h+1);
      b.i1 = b.i0 + w;
      b.j1 = b.j0 + h;
      b.iCounty = pSub->iCounty;
      if( blockWhole(p, &b) ){
        a[n++] = b;
        break;
      }
    }
  }
  *paB = a;
  return n;
}

/* Lines 0 = a[0] < a[1] < ... < a[k-1] = n of the ZCTA grid along columns
** (or rows if bRow), about every s cells; returns k */
static int zctaLines(const Region *p, int bRow, int s, int *a){
  int n = bRow ? p->gy : p->gx, m = bRow ? p->gx : p->gy;
  int k = 0, t;
  a[k++] = 0;
  for(t=s; t<n; t+=s){
    int L;
    if( t<=a[k-1] ) continue;
    L = lineNearest(p, bRow, a[k-1], n, t, 0, m);
    if( L<0 ) break;
    a[k++] = L;
  }
  a[k++] = n;
  return k;
}

/* ZCTAs: a coarse grid of blocks over the whole state, ignoring county
** borders.  Returns their number; *paB is to be freed. */
static int regionZctas(const Region *p, Block **paB){
  int s = 3, nx, ny, x, y, n = 0, *aX, *aY;
  Block *a;
  while( (long)((p->gx+s-1)/s)*((p->gy+s-1)/s) > 1900 ) s++;
  aX = xmalloc(sizeof(int)*(p->gx/s+3));
  aY = xmalloc(sizeof(int)*(p->gy/s+3));
  nx = zctaLines(p, 0, s, aX);
  ny = zctaLines(p, 1, s, aY);
  a = xmalloc(sizeof(Block)*(nx-1)*(ny-1));
  for(y=ny-2; y>=0; y--){
    for(x=0; x<nx-1; x++){
      a[n].i0 = aX[x];
      a[n].i1 = aX[x+1];
      a[n].j0 = aY[y];
      a[n].j1 = aY[y+1];
      a[n].iCounty = -1;
      n++;
    }
  }
  free(aX);
  free(aY);
  *paB = a;
  return n;
}

/* Hash of a feature's layer and GEOID, for its NS code and name */
static uint64_t featureHash(int eLayer, const char *zGeoid){
  uint64_t h = hashStep(0x6c61796572ULL, (uint64_t)eLayer);
  while( *zGeoid ) h = hashStep(h, (unsigned char)*(zGeoid++));
  return h;
}

/* An 8 digit GNIS-like code: "0" and 7 digits */
static void featureNs(int eLayer, const char *zGeoid, char *z, int n){
  uint64_t h = featureHash(eLayer, zGeoid);
  snprintf(z, n, "%08d", (int)(100000 + h % 2900000));
}

/* A made-up place name of 2 or 3 syllables, "Ashfordley" */
static void featureName(int eLayer, const char *zGeoid, char *z, int n){
  static const char *const azSyl[32] = {
    "ash", "bel", "bran", "brook", "cam", "car", "ches", "dale",
    "den", "dor", "ell", "field", "ford", "glen", "ham", "har",
    "ing", "ken", "lan", "ley", "lin", "mar", "mont", "nor",
    "ox", "pem", "ridge", "ros", "sal", "ton", "ville", "wick"
  };
  uint64_t h = hashStep(featureHash(eLayer, zGeoid), 2);
  int k, nSyl = 2 + (int)(h % 2), len = 0;
  h /= 2;
  z[0] = 0;
  for(k=0; k<nSyl && len<n; k++){
    len += snprintf(z+len, n-len, "%s", azSyl[h % 32]);
    h /= 32;
  }
  if( z[0]>='a' && z[0]<='z' ) z[0] -= 'a'-'A';
}

/* Edge e (0 north, 1 east, 2 south, 3 west) of each ISLAND_xxx side */
static const int aIslandEdge[5] = { -1, 2, 0, 3, 1 };

/* A piece of plain cell c for a block group: edges e0 .. e0+nE-1 of the
** cell (clockwise, 0 is the north edge, from the north-west node), then
** the cell centre, closing at the first node; then the cell's island if
** it is off one of those edges. */
static void cellPiece(const Region *p, int c, int e0, int nE, Shape *pS,
                      PtBuf *pTmp){
  int i = c % p->gx, j = c / p->gx, k, iStart;
  const DirEdge a[4] = { {0,i,j+1,0}, {1,i+1,j,1}, {0,i,j,1}, {1,i,j,0} };
  double cx, cy;
  shapeReset(pS);
  shapeBeginPart(pS);
  iStart = pS->pt.n;
  for(k=0; k<nE; k++){
    const DirEdge *d = &a[(e0+k)%4];
    regionEdge(p, d->bVert, d->i, d->j, pTmp);
    ptAppend(&pS->pt, pTmp, d->bRev, k>0);
  }
  cellCentre(p, i, j, &cx, &cy);
  ptPush(&pS->pt, round6(cx), round6(cy));
  ptPush(&pS->pt, pS->pt.aX[iStart], pS->pt.aY[iStart]);
  if( p->aCell[c].eIsland
   && (aIslandEdge[p->aCell[c].eIsland]-e0+4)%4<nE ){
    shapeBeginPart(pS);
    regionIslandRing(p, c, pTmp);
    ptAppend(&pS->pt, pTmp, 0, 0);
  }
}

/* Write the block groups of region p (bGz: in the 2010 layout) */
static void regionWriteBg(const Region *p, Sink *pSink, const double *aLand,
                          const double *aWater, int bGz, PtBuf *pTmp){
  Shape aPiece[3];
  Rec rec;
  int t, k;
  memset(aPiece, 0, sizeof(aPiece));
  for(t=0; t<p->nTract; t++){
    const Tract *pT = &p->aTract[t];
    const Cell *pC = &p->aCell[pT->iCell];
    char zTract[40];
    double wf = tractWaterShare(p, t), rLand = 0.0, rWater = 0.0;
    int nPiece;
    snprintf(zTract, sizeof(zTract), "%02d%03d%06d", p->pDef->iFips,
             2*pT->iCounty+1, pT->iTractce);
    if( pT->bEnclave || pC->bEnclave || pC->bAnti ){
      nPiece = 1;
      regionTractShape(p, t, &aPiece[0], pTmp);
    }else if( pC->iPartner>=0 ){
      Block b;
      nPiece = 2;
      for(k=0; k<2; k++){
        int c = k==0 ? pT->iCell : pC->iPartner;
        b.i0 = c % p->gx;
        b.j0 = c / p->gx;
        b.i1 = b.i0+1;
        b.j1 = b.j0+1;
        b.iCounty = pT->iCounty;
        blockShape(p, &b, &aPiece[k], pTmp);
      }
    }else{
      Rng r;
      rngSeed(&r, p->iSeed, 22, t, 0);
      nPiece = 2 + rngInt(&r, 2);
      if( nPiece==2 ){
        cellPiece(p, pT->iCell, 0, 2, &aPiece[0], pTmp);
        cellPiece(p, pT->iCell, 2, 2, &aPiece[1], pTmp);
      }else{
        cellPiece(p, pT->iCell, 0, 1, &aPiece[0], pTmp);
        cellPiece(p, pT->iCell, 1, 1, &aPiece[1], pTmp);
        cellPiece(p, pT->iCell, 2, 2, &aPiece[2], pTmp);
      }
    }
    for(k=0; k<nPiece; k++){
      double area = shapeAreaM2(&aPiece[k]), rL, rW;
      char zGeoid[64], zName[16];
      int f = 0;
      if( k<nPiece-1 ){
        rL = floor(area*(1.0-wf) + 0.5);
        rW = floor(area*wf + 0.5);
        rLand += rL;
        rWater += rW;
      }else{                  /* the block groups add up to the tract */
        rL = aLand[t] - rLand;
        rW = aWater[t] - rWater;
      }
      snprintf(zGeoid, sizeof(zGeoid), "%s%d", zTract, k+1);
      snprintf(zName, sizeof(zName), "%d", k+1);
      if( bGz ){
        gzRec(LAYER_BG, zGeoid, zName, rL, &rec);
      }else{
        recPut(&rec, f++, "%.2s", zTract);
        recPut(&rec, f++, "%.3s", zTract+2);
        recPut(&rec, f++, "%.6s", zTract+5);
        recPut(&rec, f++, "%s", zName);
        recPut(&rec, f++, "1500000US%s", zGeoid);
        recPut(&rec, f++, "%s", zGeoid);
        recPut(&rec, f++, "%s", zName);
        recPut(&rec, f++, "BG");
        rec.ar[f++] = rL;
        rec.ar[f++] = rW;
      }
      sinkWrite(pSink, SHPT_POLYGON, &aPiece[k], &rec);
    }
  }
  for(k=0; k<3; k++) shapeFree(&aPiece[k]);
}

/* Write the features of layer eLayer (not LAYER_TRACT) of region p.
** bZcta520: ZCTAs in the schema of 2020; bGz: in the 2010 layout. */
static void regionWriteLayer(const Region *p, Sink *pSink, int eLayer,
                             int bZcta520, int bGz){
  double *aLand = xmalloc(sizeof(double)*p->nTract);
  double *aWater = xmalloc(sizeof(double)*p->nTract);
  int iFips = p->pDef->iFips, nB = 0, nSub = 0, k;
  Block *aB = 0, *aSub = 0;
  Shape s;
  PtBuf tmp;
  Rec rec;
  memset(&s, 0, sizeof(s));
  memset(&tmp, 0, sizeof(tmp));
  regionTractTotals(p, aLand, aWater);
  switch( eLayer ){
    case LAYER_BG:
      regionWriteBg(p, pSink, aLand, aWater, bGz, &tmp);
      break;
    case LAYER_STATE:
      nB = 1;
      aB = xmalloc(sizeof(Block));
      aB[0].i0 = aB[0].j0 = 0;
      aB[0].i1 = p->gx;
      aB[0].j1 = p->gy;
      aB[0].iCounty = -1;
      break;
    case LAYER_COUNTY:
      nB = p->nCounty;
      aB = xmalloc(sizeof(Block)*nB);
      for(k=0; k<nB; k++) regionCountyBlock(p, k, &aB[k]);
      break;
    case LAYER_COUSUB:
      nB = regionCousubs(p, &aB);
      break;
    case LAYER_PLACE:
      nSub = regionCousubs(p, &aSub);
      nB = regionPlaces(p, aSub, nSub, &aB);
      break;
    default:
      nB = regionZctas(p, &aB);
      break;
  }
  for(k=0; k<nB; k++){
    const Block *b = &aB[k];
    char zGeoid[40], zNs[40], zName[101];
    double rLand, rWater;
    int f = 0;
    blockShape(p, b, &s, &tmp);
    blockTotals(p, b, aLand, aWater, &rLand, &rWater);
    switch( eLayer ){
      case LAYER_STATE:
        snprintf(zGeoid, sizeof(zGeoid), "%02d", iFips);
        featureNs(eLayer, zGeoid, zNs, sizeof(zNs));
        recPut(&rec, f++, "%s", zGeoid);
        recPut(&rec, f++, "%s", zNs);
        recPut(&rec, f++, "0400000US%s", zGeoid);
        recPut(&rec, f++, "%s", zGeoid);
        recPut(&rec, f++, "%s", p->pDef->zAbbr);
        snprintf(zName, sizeof(zName), "%s", azStateName[iFips]);
        recPut(&rec, f++, "%s", zName);
        recPut(&rec, f++, "00");
        break;
      case LAYER_COUNTY:
        snprintf(zGeoid, sizeof(zGeoid), "%02d%03d", iFips, 2*b->iCounty+1);
        featureNs(eLayer, zGeoid, zNs, sizeof(zNs));
        recPut(&rec, f++, "%.2s", zGeoid);
        recPut(&rec, f++, "%s", zGeoid+2);
        recPut(&rec, f++, "%s", zNs);
        recPut(&rec, f++, "0500000US%s", zGeoid);
        recPut(&rec, f++, "%s", zGeoid);
        snprintf(zName, sizeof(zName), "County %s", zGeoid+2);
        recPut(&rec, f++, "%s", zName);
        recPut(&rec, f++, "06");
        break;
      case LAYER_COUSUB:
        snprintf(zGeoid, sizeof(zGeoid), "%02d%03d%05d", iFips,
                 2*b->iCounty+1, 1000+45*k);
        featureNs(eLayer, zGeoid, zNs, sizeof(zNs));
        featureName(eLayer, zGeoid, zName, sizeof(zName));
        recPut(&rec, f++, "%.2s", zGeoid);
        recPut(&rec, f++, "%.3s", zGeoid+2);
        recPut(&rec, f++, "%s", zGeoid+5);
        recPut(&rec, f++, "%s", zNs);
        recPut(&rec, f++, "0600000US%s", zGeoid);
        recPut(&rec, f++, "%s", zGeoid);
        recPut(&rec, f++, "%s", zName);
        recPut(&rec, f++, "43");
        break;
      case LAYER_PLACE:
        snprintf(zGeoid, sizeof(zGeoid), "%02d%05d", iFips, 1500+45*k);
        featureNs(eLayer, zGeoid, zNs, sizeof(zNs));
        featureName(eLayer, zGeoid, zName, sizeof(zName));
        recPut(&rec, f++, "%.2s", zGeoid);
        recPut(&rec, f++, "%s", zGeoid+2);
        recPut(&rec, f++, "%s", zNs);
        recPut(&rec, f++, "1600000US%s", zGeoid);
        recPut(&rec, f++, "%s", zGeoid);
        recPut(&rec, f++, "%s", zName);
        recPut(&rec, f++, "25");
        break;
      default:
        snprintf(zGeoid, sizeof(zGeoid), "%05d",
                 100 + (int)(p->pDef-aStateDef)*1920 + k);
        snprintf(zName, sizeof(zName), "%s", zGeoid);
        recPut(&rec, f++, "%s", zGeoid);
        recPut(&rec, f++, "8600000US%s", zGeoid);
        recPut(&rec, f++, "%s", zGeoid);
        if( bZcta520 ){
          recPut(&rec, f++, "%s", zGeoid);
          recPut(&rec, f++, "Z5");
        }
        break;
    }
    rec.ar[f++] = rLand;
    rec.ar[f++] = rWater;
    if( bGz ) gzRec(eLayer, zGeoid, zName, rLand, &rec);
    sinkWrite(pSink, SHPT_POLYGON, &s, &rec);
  }
  free(aB);
  free(aSub);
  free(aLand);
  free(aWater);
  shapeFree(&s);
  ptFree(&tmp);
}

/****************************************************************************
** Mode A driver: work units (one output file each), run by J processes.
*/
typedef struct Unit Unit;
struct Unit {
  int iState;               /* index into aStateDef, or -1 for national */
  long long nCost;          /* estimated cost, for scheduling */
  int iWorker;              /* worker that produces it */
  /* Results, written by the worker into shared memory */
  int bDone;
  int nTract;
  long long nVertex;
  long long nBytes;
  char zName[80];
};

typedef struct Opts Opts;
struct Opts {
  const char *zOut;
  const char *zStates;
  long nTracts;             /* -1: default */
  double rVert;
  int iYear;
  uint64_t iSeed;
  int eNational;            /* 0: no, 1: also, 2: only */
  int nJobs;
  int iLevel;
  int bVerbose;
  const char *zFrom;
  const char *zName;
  int eShapeType;
  int bNoZip;
  int bKeepRings;
  int eLayer;               /* LAYER_xxx */
  int iZcta;                /* 510 or 520: ZCTA vintage; 0: by --year */
  int bGz;                  /* --gz: the Census 2010 layout */
};

/* The layers of --layer: file tag, the extension's layer name (also
** accepted), national scope */
typedef struct LayerDef LayerDef;
struct LayerDef {
  const char *zTag;
  const char *zTable;
  int bNational;
};
static const LayerDef aLayerDef[] = {
  { "tract",  "tracts",              0 },     /* LAYER_TRACT */
  { "state",  "states",              1 },     /* LAYER_STATE */
  { "county", "counties",            1 },     /* LAYER_COUNTY */
  { "bg",     "block_groups",        0 },     /* LAYER_BG */
  { "zcta",   "zctas",               1 },     /* LAYER_ZCTA */
  { "place",  "places",              0 },     /* LAYER_PLACE */
  { "cousub", "county_subdivisions", 0 },     /* LAYER_COUSUB */
};

static int zctaVintage(const Opts *pOpt){
  if( pOpt->iZcta ) return pOpt->iZcta;
  return pOpt->iYear<=2019 ? 510 : 520;
}

/* Base name of an output file: state iFips, or national if iFips<0 */
static char *layerBase(const Opts *pOpt, int iFips){
  char zTag[16], zWhere[16];
  if( iFips>=0 ) snprintf(zWhere, sizeof(zWhere), "%02d", iFips);
  else snprintf(zWhere, sizeof(zWhere), "us");
  if( pOpt->bGz ){
    return xmprintf("gz_%d_%s_%s_00_500k", pOpt->iYear, zWhere,
                    aGzDef[pOpt->eLayer].zSumlev);
  }
  if( pOpt->eLayer==LAYER_ZCTA ){
    snprintf(zTag, sizeof(zTag), "zcta%d", zctaVintage(pOpt));
  }else{
    snprintf(zTag, sizeof(zTag), "%s", aLayerDef[pOpt->eLayer].zTag);
  }
  return xmprintf("cb_%d_%s_%s_500k", pOpt->iYear, zWhere, zTag);
}

/* DBF schema of the layer of pOpt */
static const FieldDef *layerSchema(const Opts *pOpt, int *pnField){
  const FieldDef *a;
  int n;
  if( pOpt->bGz ){
    *pnField = aGzDef[pOpt->eLayer].nField;
    return aGzDef[pOpt->eLayer].aField;
  }
  switch( pOpt->eLayer ){
    case LAYER_STATE:  a = aStateField;  n = N_ELEM(aStateField);  break;
    case LAYER_COUNTY: a = aCountyField; n = N_ELEM(aCountyField); break;
    case LAYER_BG:     a = aBgField;     n = N_ELEM(aBgField);     break;
    case LAYER_PLACE:  a = aPlaceField;  n = N_ELEM(aPlaceField);  break;
    case LAYER_COUSUB: a = aCousubField; n = N_ELEM(aCousubField); break;
    case LAYER_ZCTA:
      if( zctaVintage(pOpt)==510 ){
        a = aZcta510Field; n = N_ELEM(aZcta510Field);
      }else{
        a = aZcta520Field; n = N_ELEM(aZcta520Field);
      }
      break;
    default:
      if( pOpt->iYear>=2020 ){
        a = aTract20Field; n = N_ELEM(aTract20Field);
      }else{
        a = aTractField; n = N_ELEM(aTractField);
      }
      break;
  }
  *pnField = n;
  return a;
}

static void runUnit(const Opts *pOpt, Unit *pU, const int *aSel, int nSel,
                    const int *aCount){
  Sink sink;
  Region reg;
  char *zBase;
  const FieldDef *aField;
  int k, nField;
  zBase = layerBase(pOpt, pU->iState>=0 ? aStateDef[pU->iState].iFips : -1);
  aField = layerSchema(pOpt, &nField);
  sinkOpen(&sink, pOpt->zOut, zBase, SHPT_POLYGON, pOpt->iYear, aField, nField);
  for(k=0; k<nSel; k++){
    if( pU->iState>=0 && aSel[k]!=pU->iState ) continue;
    regionBuild(&reg, &aStateDef[aSel[k]], aCount[k], pOpt->iSeed, pOpt->rVert);
    if( pOpt->eLayer==LAYER_TRACT ){
      regionWrite(&reg, &sink, pOpt->iYear>=2020, pOpt->bGz,
                  pOpt->bVerbose && (pU->iState>=0 || pOpt->eNational==2));
    }else{
      regionWriteLayer(&reg, &sink, pOpt->eLayer, zctaVintage(pOpt)==520,
                       pOpt->bGz);
    }
    regionFree(&reg);
  }
  pU->nTract = sink.nRec;
  pU->nVertex = sink.nVertex;
  sinkFinish(&sink, 1, pOpt->iLevel);
  pU->nBytes = sink.nBytes;
  snprintf(pU->zName, sizeof(pU->zName), "%s.zip", zBase);
  pU->bDone = 1;
  free(zBase);
}

static int runSynthetic(const Opts *pOpt){
  int aSel[N_STATE], aCount[N_STATE], nSel = 0, bAll = 0;
  long nTotal;
  int i, k, nUnit = 0, nJobs, rc = 0;
  Unit *aUnit;
  long long aLoad[64];

  /* Chosen states */
  if( pOpt->zStates==0 || strcmp(pOpt->zStates, "all")==0 ){
    for(i=0; i<N_STATE; i++) aSel[nSel++] = i;
    bAll = 1;
  }else{
    char *zList = xmprintf("%s", pOpt->zStates);
    char *zTok, *zSave = 0;
    int aUsed[N_STATE];
    memset(aUsed, 0, sizeof(aUsed));
    for(zTok=strtok_r(zList, ",", &zSave); zTok; zTok=strtok_r(0, ",", &zSave)){
      const StateDef *pDef = stateFind(zTok);
      if( pDef==0 ) fatal("unknown state: %s", zTok);
      aUsed[pDef-aStateDef] = 1;
    }
    for(i=0; i<N_STATE; i++) if( aUsed[i] ) aSel[nSel++] = i;
    free(zList);
    if( nSel==0 ) fatal("no states chosen");
  }

  /* Tracts per state: proportional to the real counts, at least one */
  if( pOpt->nTracts>0 ){
    nTotal = pOpt->nTracts;
  }else if( bAll ){
    nTotal = 74000;
  }else{
    for(nTotal=0, k=0; k<nSel; k++) nTotal += aStateDef[aSel[k]].nWeight;
  }
  if( nTotal<nSel ) fatal("need at least one tract per state (%d)", nSel);
  {
    double wTot = 0.0, aRem[N_STATE];
    long sum = 0;
    for(k=0; k<nSel; k++) wTot += aStateDef[aSel[k]].nWeight;
    for(k=0; k<nSel; k++){
      double q = (double)nTotal*aStateDef[aSel[k]].nWeight/wTot;
      aCount[k] = (int)floor(q + 1e-9);
      aRem[k] = q - aCount[k];
      if( aCount[k]<1 ){ aCount[k] = 1; aRem[k] = -1.0; }
      sum += aCount[k];
    }
    while( sum<nTotal ){           /* largest remainder first */
      int best = -1;
      for(k=0; k<nSel; k++) if( best<0 || aRem[k]>aRem[best] ) best = k;
      aCount[best]++;
      aRem[best] -= 1.0;
      sum++;
    }
    while( sum>nTotal ){           /* smallest remainder first */
      int best = -1;
      for(k=0; k<nSel; k++){
        if( aCount[k]>1 && (best<0 || aRem[k]<aRem[best]) ) best = k;
      }
      aCount[best]--;
      aRem[best] += 1.0;
      sum--;
    }
  }

  /* Work units */
  aUnit = mmap(0, sizeof(Unit)*(N_STATE+1), PROT_READ|PROT_WRITE,
               MAP_SHARED|MAP_ANONYMOUS, -1, 0);
  if( aUnit==MAP_FAILED ) fatal("mmap failed: %s", strerror(errno));
  memset(aUnit, 0, sizeof(Unit)*(N_STATE+1));
  if( pOpt->eNational!=2 && !aLayerDef[pOpt->eLayer].bNational ){
    for(k=0; k<nSel; k++){
      aUnit[nUnit].iState = aSel[k];
      aUnit[nUnit].nCost = aCount[k];
      nUnit++;
    }
  }
  if( pOpt->eNational || aLayerDef[pOpt->eLayer].bNational ){
    aUnit[nUnit].iState = -1;
    aUnit[nUnit].nCost = nTotal;
    nUnit++;
  }
  nJobs = pOpt->nJobs;
  if( nJobs<=0 ){
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    nJobs = n>0 ? (int)n : 1;
  }
  if( nJobs>nUnit ) nJobs = nUnit;
  if( nJobs>64 ) nJobs = 64;
  if( nJobs<1 ) nJobs = 1;

  /* Longest processing time first scheduling */
  memset(aLoad, 0, sizeof(aLoad));
  {
    int *aOrder = xmalloc(sizeof(int)*nUnit);
    for(i=0; i<nUnit; i++) aOrder[i] = i;
    for(i=1; i<nUnit; i++){
      int t = aOrder[i], m = i;
      while( m>0 && aUnit[aOrder[m-1]].nCost<aUnit[t].nCost ){
        aOrder[m] = aOrder[m-1];
        m--;
      }
      aOrder[m] = t;
    }
    for(i=0; i<nUnit; i++){
      int w, best = 0;
      for(w=1; w<nJobs; w++) if( aLoad[w]<aLoad[best] ) best = w;
      aUnit[aOrder[i]].iWorker = best;
      aLoad[best] += aUnit[aOrder[i]].nCost;
    }
    free(aOrder);
  }

  fflush(stdout);
  fflush(stderr);
  if( nJobs==1 ){
    for(i=0; i<nUnit; i++) runUnit(pOpt, &aUnit[i], aSel, nSel, aCount);
  }else{
    pid_t aPid[64];
    int w;
    for(w=0; w<nJobs; w++){
      aPid[w] = fork();
      if( aPid[w]<0 ) fatal("fork failed: %s", strerror(errno));
      if( aPid[w]==0 ){
        for(i=0; i<nUnit; i++){
          if( aUnit[i].iWorker==w ) runUnit(pOpt, &aUnit[i], aSel, nSel, aCount);
        }
        fflush(stderr);
        _exit(0);
      }
    }
    for(w=0; w<nJobs; w++){
      int status = 0;
      if( waitpid(aPid[w], &status, 0)<0
       || !WIFEXITED(status) || WEXITSTATUS(status)!=0 ){
        rc = 1;
      }
    }
  }
  for(i=0; i<nUnit; i++){
    if( !aUnit[i].bDone ){ rc = 1; continue; }
    printf("%s %s=%d vertices=%lld bytes=%lld\n", aUnit[i].zName,
           pOpt->eLayer==LAYER_TRACT ? "tracts" : "features",
           aUnit[i].nTract, aUnit[i].nVertex, aUnit[i].nBytes);
  }
  munmap(aUnit, sizeof(Unit)*(N_STATE+1));
  if( rc ) fprintf(stderr, "%s: some files were not written\n", zArgv0);
  return rc;
}

/****************************************************************************
** Mode B: tracts described by GEOID<TAB>WKT lines.
*/
typedef struct Wkt Wkt;
struct Wkt {
  const char *z;            /* text */
  int i;                    /* current offset */
};

static void wktSpace(Wkt *p){
  while( p->z[p->i]==' ' || p->z[p->i]=='\t' || p->z[p->i]=='\r'
      || p->z[p->i]=='\n' ) p->i++;
}

static int wktKeyword(Wkt *p, const char *zKw){
  int n = (int)strlen(zKw);
  char c;
  wktSpace(p);
  if( strncasecmp(p->z+p->i, zKw, n)!=0 ) return 0;
  c = p->z[p->i+n];
  if( (c>='a' && c<='z') || (c>='A' && c<='Z') || c=='_' ) return 0;
  p->i += n;
  return 1;
}

static int wktChar(Wkt *p, char c){
  wktSpace(p);
  if( p->z[p->i]!=c ) return 0;
  p->i++;
  return 1;
}

static int wktNumber(Wkt *p, double *pR){
  char *zEnd = 0;
  wktSpace(p);
  *pR = strtod(p->z+p->i, &zEnd);
  if( zEnd==p->z+p->i ) return 0;
  p->i = (int)(zEnd-p->z);
  return 1;
}

/* ring := '(' x y (',' x y)* ')' ; appended to pS as a new part */
static int wktRing(Wkt *p, Shape *pS, int bKeep){
  int i0;
  if( !wktChar(p, '(') ) return 0;
  shapeBeginPart(pS);
  i0 = pS->pt.n;
  do{
    double x, y;
    if( !wktNumber(p, &x) || !wktNumber(p, &y) ) return 0;
    ptPush(&pS->pt, x, y);
  }while( wktChar(p, ',') );
  if( !wktChar(p, ')') ) return 0;
  if( !bKeep && (pS->pt.aX[i0]!=pS->pt.aX[pS->pt.n-1]
              || pS->pt.aY[i0]!=pS->pt.aY[pS->pt.n-1]
              || pS->pt.n-i0==1) ){
    ptPush(&pS->pt, pS->pt.aX[i0], pS->pt.aY[i0]);
  }
  return 1;
}

/* Reverse the vertices of part k */
static void shapeReversePart(Shape *pS, int k){
  int a = pS->aPart[k], b = shapePartEnd(pS, k)-1;
  while( a<b ){
    double t;
    t = pS->pt.aX[a]; pS->pt.aX[a] = pS->pt.aX[b]; pS->pt.aX[b] = t;
    t = pS->pt.aY[a]; pS->pt.aY[a] = pS->pt.aY[b]; pS->pt.aY[b] = t;
    a++; b--;
  }
}

/* polygon := '(' ring (',' ring)* ')'.  Orients the rings unless bKeep. */
static int wktPolygon(Wkt *p, Shape *pS, int bKeep){
  int k0 = pS->nPart, k;
  if( !wktChar(p, '(') ) return 0;
  do{
    if( !wktRing(p, pS, bKeep) ) return 0;
  }while( wktChar(p, ',') );
  if( !wktChar(p, ')') ) return 0;
  if( !bKeep ){
    for(k=k0; k<pS->nPart; k++){
      double a = ringArea2(pS->pt.aX, pS->pt.aY, pS->aPart[k], shapePartEnd(pS,k));
      if( (k==k0 && a>0.0) || (k>k0 && a<0.0) ) shapeReversePart(pS, k);
    }
  }
  return 1;
}

/* Parse POLYGON or MULTIPOLYGON text into pS.  Returns 0 on error. */
static int wktParse(const char *z, Shape *pS, int bKeep){
  Wkt w;
  w.z = z;
  w.i = 0;
  shapeReset(pS);
  if( wktKeyword(&w, "POLYGON") ){
    if( wktKeyword(&w, "EMPTY") ){
      pS->bNull = 1;
    }else if( !wktPolygon(&w, pS, bKeep) ){
      return 0;
    }
  }else if( wktKeyword(&w, "MULTIPOLYGON") ){
    if( wktKeyword(&w, "EMPTY") ){
      pS->bNull = 1;
    }else{
      if( !wktChar(&w, '(') ) return 0;
      do{
        if( !wktPolygon(&w, pS, bKeep) ) return 0;
      }while( wktChar(&w, ',') );
      if( !wktChar(&w, ')') ) return 0;
    }
  }else{
    return 0;
  }
  wktSpace(&w);
  return z[w.i]==0;
}

/* Apply one FIELD=VALUE override */
static int attrOverride(TractAttr *pA, const char *zKv, int *pbAland){
  const char *zEq = strchr(zKv, '=');
  const char *zV;
  int n;
  if( zEq==0 ) return 0;
  n = (int)(zEq-zKv);
  zV = zEq+1;
#define IS(K) (n==(int)strlen(K) && strncasecmp(zKv, K, n)==0)
  if( IS("STATEFP") ) snprintf(pA->zStatefp, sizeof(pA->zStatefp), "%s", zV);
  else if( IS("COUNTYFP") ) snprintf(pA->zCountyfp, sizeof(pA->zCountyfp), "%s", zV);
  else if( IS("TRACTCE") ) snprintf(pA->zTractce, sizeof(pA->zTractce), "%s", zV);
  else if( IS("AFFGEOID") ) snprintf(pA->zAffgeoid, sizeof(pA->zAffgeoid), "%s", zV);
  else if( IS("GEOID") ) snprintf(pA->zGeoid, sizeof(pA->zGeoid), "%s", zV);
  else if( IS("NAME") ) snprintf(pA->zName, sizeof(pA->zName), "%s", zV);
  else if( IS("LSAD") ) snprintf(pA->zLsad, sizeof(pA->zLsad), "%s", zV);
  else if( IS("ALAND") ){ pA->rAland = strtod(zV, 0); *pbAland = 1; }
  else if( IS("AWATER") ) pA->rAwater = strtod(zV, 0);
  else if( IS("NAMELSAD") ){
    snprintf(pA->zNamelsad, sizeof(pA->zNamelsad), "%s", zV);
    pA->bNamelsad = 1;
  }
  else if( IS("STUSPS") ) snprintf(pA->zStusps, sizeof(pA->zStusps), "%s", zV);
  else if( IS("NAMELSADCO") ){
    snprintf(pA->zNamelsadco, sizeof(pA->zNamelsadco), "%s", zV);
  }
  else if( IS("STATE_NAME") ){
    snprintf(pA->zStateName, sizeof(pA->zStateName), "%s", zV);
  }
  else return 0;
#undef IS
  return 1;
}

static int runFromFile(const Opts *pOpt){
  FILE *in;
  char *zLine = 0;
  size_t nAlloc = 0;
  ssize_t nLine;
  int iLine = 0, bOpen = 0;
  int eType = SHPT_POLYGON;
  Sink sink;
  Shape s;
  Rec rec;
  memset(&s, 0, sizeof(s));
  if( pOpt->eShapeType==1 ) eType = SHPT_POINT;
  if( pOpt->eShapeType==2 ) eType = SHPT_ARC;
  in = strcmp(pOpt->zFrom, "-")==0 ? stdin : fopen(pOpt->zFrom, "rb");
  if( in==0 ) fatal("cannot open %s: %s", pOpt->zFrom, strerror(errno));
  while( (nLine = getline(&zLine, &nAlloc, in))>=0 ){
    char *zGeoid, *zWkt, *zTab, *zRest;
    TractAttr attr;
    int bAland = 0;
    iLine++;
    while( nLine>0 && (zLine[nLine-1]=='\n' || zLine[nLine-1]=='\r') ){
      zLine[--nLine] = 0;
    }
    zGeoid = zLine;
    while( *zGeoid==' ' ) zGeoid++;
    if( *zGeoid==0 || *zGeoid=='#' ) continue;
    zTab = strchr(zGeoid, '\t');
    if( zTab==0 ) fatal("%s:%d: expected GEOID<TAB>WKT", pOpt->zFrom, iLine);
    *zTab = 0;
    zWkt = zTab+1;
    zRest = strchr(zWkt, '\t');
    if( zRest ) *(zRest++) = 0;
    if( strlen(zGeoid)!=11 ){
      fatal("%s:%d: GEOID must be 11 characters: %s", pOpt->zFrom, iLine, zGeoid);
    }
    if( !wktParse(zWkt, &s, pOpt->bKeepRings) ){
      fatal("%s:%d: cannot parse WKT (POLYGON or MULTIPOLYGON expected)",
            pOpt->zFrom, iLine);
    }
    attrFromGeoid(&attr, zGeoid);
    while( zRest ){
      char *zNext = strchr(zRest, '\t');
      if( zNext ) *(zNext++) = 0;
      if( *zRest && !attrOverride(&attr, zRest, &bAland) ){
        fatal("%s:%d: bad FIELD=VALUE column: %s", pOpt->zFrom, iLine, zRest);
      }
      zRest = zNext;
    }
    if( !bAland ){
      attr.rAland = (eType==SHPT_POLYGON && !s.bNull)
                    ? floor(shapeAreaM2(&s)+0.5) : 0.0;
    }
    if( !bOpen ){
      char *zBase = pOpt->zName ? xmprintf("%s", pOpt->zName)
                  : xmprintf("cb_%d_%.2s_tract_500k", pOpt->iYear, zGeoid);
      int nField;
      const FieldDef *aField = layerSchema(pOpt, &nField);
      sinkOpen(&sink, pOpt->zOut, zBase, eType, pOpt->iYear, aField, nField);
      free(zBase);
      bOpen = 1;
    }
    tractRec(&attr, pOpt->iYear>=2020, &rec);
    sinkWrite(&sink, eType, &s, &rec);
  }
  free(zLine);
  if( in!=stdin ) fclose(in);
  shapeFree(&s);
  if( !bOpen ) fatal("%s: no tracts", pOpt->zFrom);
  {
    int nRec = sink.nRec;
    long long nVertex = sink.nVertex;
    char *zBase = xmprintf("%s", sink.zBase);
    sinkFinish(&sink, !pOpt->bNoZip, pOpt->iLevel);
    printf("%s%s tracts=%d vertices=%lld bytes=%lld\n", zBase,
           pOpt->bNoZip ? ".shp" : ".zip", nRec, nVertex, sink.nBytes);
    free(zBase);
  }
  return 0;
}

/****************************************************************************
** Command line
*/
static void usage(void){
  fprintf(stderr,
    "usage: %s --out DIR [--states LIST|all] [--tracts N] [--vertices V]\n"
    "           [--year Y] [--seed S] [--national|--national-only]\n"
    "           [--jobs J] [--level L] [--verbose]\n"
    "           [--layer tract|state|county|bg|zcta|place|cousub]\n"
    "           [--gz (with --year 2010)]\n"
    "       %s --from FILE --out DIR [--name BASE] [--year Y]\n"
    "           [--shape-type polygon|point|arc] [--no-zip] [--keep-rings]\n"
    "See the comment at the top of tools/gentracts.c for details.\n",
    zArgv0, zArgv0);
  exit(2);
}

int main(int argc, char **argv){
  Opts opt;
  int i;
  memset(&opt, 0, sizeof(opt));
  opt.nTracts = -1;
  opt.rVert = 200.0;
  opt.iYear = 2019;
  opt.iSeed = 1;
  opt.iLevel = 6;
  for(i=1; i<argc; i++){
    const char *zVal;
    char zKey[64];
    const char *z = optName(argv[i], zKey, sizeof(zKey), &zVal);
    if( z==0 ) usage();
#define ARG (zVal ? zVal : (i+1<argc ? argv[++i] : (usage(), "")))
    if( strcmp(z, "-out")==0 ) opt.zOut = ARG;
    else if( strcmp(z, "-states")==0 ) opt.zStates = ARG;
    else if( strcmp(z, "-tracts")==0 ) opt.nTracts = atol(ARG);
    else if( strcmp(z, "-vertices")==0 ) opt.rVert = atof(ARG);
    else if( strcmp(z, "-year")==0 ) opt.iYear = atoi(ARG);
    else if( strcmp(z, "-seed")==0 ) opt.iSeed = strtoull(ARG, 0, 0);
    else if( strcmp(z, "-national")==0 ) opt.eNational = 1;
    else if( strcmp(z, "-national-only")==0 ) opt.eNational = 2;
    else if( strcmp(z, "-jobs")==0 ) opt.nJobs = atoi(ARG);
    else if( strcmp(z, "-level")==0 ) opt.iLevel = atoi(ARG);
    else if( strcmp(z, "-verbose")==0 || strcmp(z, "-v")==0 ) opt.bVerbose = 1;
    else if( strcmp(z, "-from")==0 ) opt.zFrom = ARG;
    else if( strcmp(z, "-name")==0 ) opt.zName = ARG;
    else if( strcmp(z, "-no-zip")==0 ) opt.bNoZip = 1;
    else if( strcmp(z, "-keep-rings")==0 ) opt.bKeepRings = 1;
    else if( strcmp(z, "-gz")==0 ) opt.bGz = 1;
    else if( strcmp(z, "-layer")==0 ){
      const char *zL = ARG;
      int k;
      for(k=0; k<N_ELEM(aLayerDef); k++){
        if( strcmp(zL, aLayerDef[k].zTag)==0
         || strcmp(zL, aLayerDef[k].zTable)==0 ) break;
      }
      opt.iZcta = 0;
      if( strcmp(zL, "zcta510")==0 ){ k = LAYER_ZCTA; opt.iZcta = 510; }
      if( strcmp(zL, "zcta520")==0 ){ k = LAYER_ZCTA; opt.iZcta = 520; }
      if( k>=N_ELEM(aLayerDef) ) fatal("unknown --layer: %s", zL);
      opt.eLayer = k;
    }
    else if( strcmp(z, "-shape-type")==0 ){
      const char *zT = ARG;
      if( strcmp(zT, "polygon")==0 ) opt.eShapeType = 0;
      else if( strcmp(zT, "point")==0 ) opt.eShapeType = 1;
      else if( strcmp(zT, "arc")==0 ) opt.eShapeType = 2;
      else fatal("unknown --shape-type: %s", zT);
    }
    else if( strcmp(z, "-help")==0 || strcmp(z, "-h")==0 ) usage();
    else{
      fprintf(stderr, "%s: unknown option: %s\n", zArgv0, argv[i]);
      usage();
    }
#undef ARG
  }
  if( opt.zOut==0 ) usage();
  if( opt.iLevel<1 || opt.iLevel>9 ) fatal("--level must be 1..9");
  if( opt.rVert<0 ) fatal("--vertices must be positive");
  if( opt.iYear<1000 || opt.iYear>9999 ) fatal("--year must have 4 digits");
  if( opt.bGz ){
    if( opt.iYear!=2010 ){
      fatal("--gz (the Census 2010 layout, gz_2010_...) needs --year 2010");
    }
    if( opt.zFrom ) fatal("--gz is for synthetic states only, not with --from");
    if( opt.eLayer==LAYER_ZCTA && opt.iZcta==520 ){
      fatal("--gz writes the 2010 ZCTAs: use --layer zcta, not zcta520");
    }
  }
  {
    struct stat st;
    if( stat(opt.zOut, &st)!=0 ){
      if( mkdir(opt.zOut, 0777)!=0 ){
        fatal("cannot create %s: %s", opt.zOut, strerror(errno));
      }
    }else if( !S_ISDIR(st.st_mode) ){
      fatal("%s is not a directory", opt.zOut);
    }
  }
  if( opt.zFrom ){
    if( opt.eLayer!=LAYER_TRACT ) fatal("--from writes tracts only (no --layer)");
    return runFromFile(&opt);
  }
  return runSynthetic(&opt);
}
