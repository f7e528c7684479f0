/*
** tracts_int.h - what the files of the tracts extension share.
**
** Files and their concerns:
**
**   main.c     entry point, per-connection state, tracts_version()
**   config.c   tracts_config(): per-connection settings
**   geom.c     polygon geometry in flat arrays, SpatiaLite BLOBs, GEOS
**              conversion, validity check and repair
**   shpzip.c   reading census zips and shapefiles in memory (libzip,
**              shapelib) into records; no SQLite in this file
**   registry.c boundary layers: census layers (census_layers.h), layer
**              names and vintages, census_layers()
**   layer.c    load_tracts() and load_boundaries(): schema, provenance,
**              writing files into the database
**   pip.c      the point-in-polygon index; no SQLite in this file
**   lookup.c   tract_of(), boundary_of() and the per-layer index caches
**   assign.c   tracts_assign(): the join on forked helpers
**   monitor.c  the resource monitor: sampling thread, monitor_* functions
**              and tables, cairo charts
**   fetch.c    fetch_tracts() and fetch_boundaries(): downloads on a libcurl
**              thread, the verified cache, tracts_cache
**
** geom.c, shpzip.c and pip.c use malloc/free and never call SQLite, so
** the C unit tests and fuzz harnesses link them without SQLite.
*/
#ifndef TRACTS_INT_H
#define TRACTS_INT_H

#include <stddef.h>
#include <stdint.h>
#include <geos_c.h>

/* ------------------------------------------------------------------ */
/* Geometry (geom.c)                                                  */
/* ------------------------------------------------------------------ */

/* A polygonal geometry (POLYGON or MULTIPOLYGON) in flat arrays.
** Polygon i has aPolyRings[i] rings, the first being its shell; ring j
** (counting over all polygons) has aRingPts[j] points, closed (first point
** repeated last); aXY holds 2*nPt doubles x0,y0,x1,y1,... */
typedef struct TrGeom TrGeom;
struct TrGeom {
  int nPoly;           /* number of polygons */
  int *aPolyRings;     /* rings per polygon, nPoly entries */
  int nRing;           /* number of rings over all polygons */
  int *aRingPts;       /* points per ring, nRing entries */
  int nPt;             /* number of points over all rings */
  double *aXY;         /* 2*nPt coordinates */
  double aBox[4];      /* minx, miny, maxx, maxy */
};

#define TR_SRID_NAD83 4269

void trGeomFree(TrGeom *p);                 /* frees arrays, zeroes *p */
void trGeomBox(TrGeom *p);                  /* recompute aBox */

/* Assemble shapefile rings (outer rings clockwise, holes counter-clockwise)
** into polygons. aPart/nPart/aXY/nPt as in an SHPObject (x and y in
** separate arrays). Returns 0, or 1 with *pzErr set to a static message.
** On success *p owns new arrays. */
int trGeomFromRings(TrGeom *p, int nPart, const int *aPart, int nPt,
                    const double *aX, const double *aY, const char **pzErr);

/* SpatiaLite geometry BLOB of p, always MULTIPOLYGON, with srid. Returns a
** malloc'd buffer (caller frees) and its size in *pnBlob, or NULL on OOM. */
unsigned char *trGeomToBlob(const TrGeom *p, int srid, int *pnBlob);

/* Callback-based reader of a SpatiaLite POLYGON/MULTIPOLYGON BLOB: calls
** xRing(pCtx, nPt, aXY) for every ring, aXY pointing at nPt little-endian
** (x,y) double pairs that may be unaligned (read them with memcpy).
** Returns 0, or 1 if the blob is malformed (nothing is trusted). Box of
** the blob in aBox if not NULL. */
int trBlobRings(const unsigned char *pBlob, int nBlob, double *aBox,
                int (*xRing)(void*, int, const unsigned char*), void *pCtx);

/* Parse a blob into *p (malloc'd arrays). 0 on success, 1 if malformed,
** 2 on OOM. */
int trGeomFromBlob(TrGeom *p, const unsigned char *pBlob, int nBlob);

/* GEOS conversion; both return NULL on failure (GEOS's message is in the
** context's error handler). */
GEOSGeometry *trGeomToGeos(GEOSContextHandle_t h, const TrGeom *p);
int trGeomFromGeos(GEOSContextHandle_t h, const GEOSGeometry *g, TrGeom *p);

/* 1 if p is proven valid (OGC) by a fast exact-filtered check, 0 if that
** could not be proven (GEOS must decide). Never 1 for an invalid p. */
int trGeomProvenValid(const TrGeom *p);

/* Check p with GEOS; if it is invalid and bRepair, replace it with the
** polygonal part of GEOSMakeValid. Returns 0 valid, 1 repaired, -1 invalid
** and not repaired (reason in zErr[nErr]), -2 GEOS failure (zErr). */
int trGeomValidate(GEOSContextHandle_t h, TrGeom *p, int bRepair,
                   char *zErr, int nErr);

/* A new reentrant GEOS context whose error and notice handlers write into
** the zMsg buffer of the caller-owned TrGeosErr (never a global). */
typedef struct TrGeosErr TrGeosErr;
struct TrGeosErr { char zMsg[256]; };
GEOSContextHandle_t trGeosInit(TrGeosErr *pErr);

/* ------------------------------------------------------------------ */
/* Boundary layers (layer.c)                                          */
/* ------------------------------------------------------------------ */

/* One attribute column of a layer: a DBF field copied to a table column. */
typedef struct TrField TrField;
struct TrField {
  const char *zName;   /* column name (and DBF field name) */
  int bInteger;        /* column type: 1 INTEGER, 2 REAL, 0 TEXT */
  const char *zDbf;    /* the DBF field, when not zName (or NULL) */
};
#define trFieldDbf(f) ((f)->zDbf ? (f)->zDbf : (f)->zName)

/* A Census layer: one line of census_layers.h. */
typedef struct TrKind TrKind;
struct TrKind {
  const char *zName;        /* layer name and table, "tracts" */
  const char *zTag;         /* file tag, "tract" */
  const char *zFile;        /* path pattern under base_url, {year} {st} {res} */
  int yearFirst, yearLast;  /* vintages of this line (yearLast 0: open) */
  const char *zRes;         /* resolutions, "500k,5m,20m" */
  const char *zKey;         /* key column */
  const char *zKeyExpr;     /* what boundary_of returns, if not the key */
  const char *zGroup;       /* column a file replaces rows by, or NULL */
  const char *zFields;      /* "STATEFP ... ALAND:i AWATER:i" */
};

/* A boundary layer as loaded: its table, key, fields and file naming. */
typedef struct TrLayer TrLayer;
struct TrLayer {
  const char *zName;        /* layer name, e.g. "tracts" */
  const char *zFileTag;     /* the census file tag ("tract"), NULL for a
                            ** user layer (pKind has the file naming) */
  const char *zTable;       /* table holding the polygons (= zName) */
  const char *zKey;         /* key column, e.g. "GEOID" */
  const char *zGroup;       /* column a file replaces rows by: "STATEFP";
                            ** NULL: a file replaces the whole layer */
  int nField;               /* number of attribute fields */
  const TrField *aField;    /* attribute fields */
  int year;                 /* the one vintage it holds ("tracts_2010"), 0 */
  int srid;                 /* CRS the caller stated (EPSG), 0: the .prj */
  const TrKind *pKind;      /* its census_layers line, NULL: user layer */
};

/* ------------------------------------------------------------------ */
/* Census zips and shapefiles (shpzip.c)                              */
/* ------------------------------------------------------------------ */

/* One record read from a shapefile: the layer's attributes as text (NULL
** where the DBF value is empty) and its geometry. */
typedef struct TrRecord TrRecord;
struct TrRecord {
  char **azAttr;       /* pLayer->nField strings, one malloc block */
  TrGeom geom;         /* the polygons; after validation only aBox */
  unsigned char *pBlob;/* SpatiaLite blob, made by trShapesFinish */
  int nBlob;
  int bRepaired;       /* geometry was repaired by GEOS */
};

/* What one file held. */
typedef struct TrShapes TrShapes;
struct TrShapes {
  int nRec;            /* records */
  TrRecord *aRec;
  int nRepaired;       /* records whose geometry was repaired */
  int nVertex;         /* total points */
  char zSha256[65];    /* of the file as read (zip or .shp) */
  char zErr[512];      /* error message if reading failed (TR_ERR_SIZE) */
};

/* Limits on what a file may declare, checked before allocating. */
#define TR_MAX_MEMBER   ((int64_t)2 << 30)   /* 2 GiB per zip member */
#define TR_MAX_RECORDS  10000000             /* records per shapefile */
#define TR_MAX_FIELDS   255                  /* attribute fields of a layer */

#define TR_ERR_SIZE 512

/* A census zip (or a bare .shp with its .shx/.dbf siblings) opened for
** pLayer: read into memory (zip members inflated), the shapefile checked
** (polygon type, record counts, the layer's DBF fields), and the CRC of
** every zip member checked. Returns 0; or 1 (bad content) or 2 (a damaged
** archive: not a zip, truncated, corrupt) with zErr[TR_ERR_SIZE] saying
** why. */
typedef struct TrSource TrSource;
int trSourceOpen(TrSource **pp, const TrLayer *pLayer, const char *zPath,
                 char *zErr);
/* Same from a zip held in memory (the fuzz harness, later downloads). */
int trSourceOpenZipMem(TrSource **pp, const TrLayer *pLayer,
                       const void *pZip, size_t nZip, char *zErr);
int trSourceCount(const TrSource *s);          /* records */
/* The DBF's fields (names, and 1 INTEGER / 2 REAL / 0 TEXT from the
** field type: N without decimals INTEGER up to 18 digits, TEXT wider) in
** one malloc'd block (free() it); *pnField entries. NULL on OOM. */
TrField *trSourceFields(const TrSource *s, int *pnField);
const char *trSourceSha256(const TrSource *s); /* of the file, hex */
/* Records [iFirst, iFirst+n) into *p, validated (GEOS where the fast
** proof fails; repaired if bRepair) and encoded as blobs. Several threads
** may read different ranges of one source at once. On failure returns 1
** and p->zErr says why; p holds nothing. The caller frees p with
** trShapesFree. */
int trSourceRead(TrSource *s, int iFirst, int n, int bRepair, TrShapes *p);
void trSourceClose(TrSource *s);
void trShapesFree(TrShapes *p);

/* ------------------------------------------------------------------ */
/* Point-in-polygon index (pip.c)                                     */
/* ------------------------------------------------------------------ */

typedef struct PipIndex PipIndex;
typedef struct PipBuilder PipBuilder;

/* Coordinates are held as unsigned 32-bit integers in units of 1e-7
** degree: u = round((lon + 180) * 1e7), v = round((lat + 90) * 1e7). */
#define PIP_SCALE 1e7

PipBuilder *pipBuilderNew(void);
/* Room for nPt more points (a hint; growing still works). 0 or 1 on OOM. */
int pipBuilderReserve(PipBuilder *p, size_t nPt);
/* Add polygon number iPoly (0-based, in the order of the rule: the lowest
** number wins when several polygons cover a point). Rings of all its parts
** are added one at a time with pipBuilderRing, aXY being nPt (x,y) pairs
** as little-endian doubles, possibly unaligned. Return 0 or non-zero on OOM
** or if a coordinate is out of range. */
int pipBuilderRing(PipBuilder *p, uint32_t iPoly, int nPt,
                   const unsigned char *aXY);
/* Build the index; the builder is consumed. NULL on OOM. */
PipIndex *pipBuild(PipBuilder *p);
void pipBuilderFree(PipBuilder *p);
void pipFree(PipIndex *p);

/* The polygon covering (lon, lat): the lowest polygon number among those
** whose closed area contains the point, or -1 if none. *pbEdge (if not
** NULL) is set when the point lies on the boundary of that polygon. */
int64_t pipLookup(const PipIndex *p, double lon, double lat, int *pbEdge);

/* The polygon nearest to (lon, lat) whose boundary is within maxMetres
** (on a local equirectangular projection), the lowest number on a tie, or
** -1. For points outside every polygon. *pMetres gets the distance. */
int64_t pipNearest(const PipIndex *p, double lon, double lat,
                   double maxMetres, double *pMetres);

/* Bytes held by the index, and counts for tracts_debug(). */
size_t pipBytes(const PipIndex *p);

/* The arrays of an index, for saving it (pipArrays: a view, still owned
** by the index) and loading it back (pipAdopt: malloc'd arrays whose
** ownership passes to the new index). pipAdopt checks that every lookup
** stays inside the arrays and ends, whatever bytes they hold; NULL (the
** arrays freed) if they fail the check or on OOM. A grid node is
** PIP_NODE_BYTES bytes (host layout). */
#define PIP_NODE_BYTES 8
typedef struct PipArrays PipArrays;
struct PipArrays {
  uint32_t root, nPoly;
  uint32_t *aV;   size_t nV;         /* 2 words per vertex */
  void *aNode;    size_t nNode;      /* grid nodes */
  uint32_t *aCell; size_t nCell;     /* cell words */
  uint32_t *aLeaf; size_t nLeaf;     /* leaf records */
  size_t nEdgeRef, nLeafCell, nFullCell;   /* statistics */
};
void pipArrays(const PipIndex *p, PipArrays *a);
/* malloc for the index's large arrays (free() frees it): big ones are
** aligned to and backed by huge pages where the kernel allows. */
void *trBigAlloc(size_t n);
/* Fault in the whole pages of [p, p+n) in one call, where the kernel can
** (MADV_POPULATE_WRITE): on a virtual machine a page fault per 4 KiB, as
** memory takes when first written, costs about as much as filling the
** page. For buffers about to be written whole. */
void trBigPopulate(void *p, size_t n);
PipIndex *pipAdopt(PipArrays *a);
void pipStats(const PipIndex *p, char *zBuf, int nBuf);

#endif /* TRACTS_INT_H */
