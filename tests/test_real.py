#!/usr/bin/python3
"""load_boundaries and boundary_of on real projected shapefiles, against an
independent reprojecting implementation (GeoPandas: to_crs + sjoin).

Run by tests/run.sh with Debian's /usr/bin/python3:

    /usr/bin/python3 tests/test_real.py build/tracts.so

The last line is "real: N passed, N failed, N skipped".

The files come from Debian packages, put into build/realdata/ by
tests/realdata.sh (apt-get download + dpkg-deb -x, no R installed):

  NY8_utm18.shp  r-cran-spdata  281 census tracts of 8 counties of upstate
                 New York, WGS 84 / UTM zone 18N (.prj: ESRI WKT, datum
                 "D_unknown" on the WGS84 spheroid); key AREAKEY (GEOID-like,
                 unique); 5 polygons are invalid (self-intersections)
  nc.shp         r-cran-sf      the 100 counties of North Carolina, NAD27
                 lon/lat (.prj: GCS_North_American_1927); key FIPS (unique)

Neither has a .cpg. The reference is GeoPandas: read_file, to_crs('EPSG:4269'),
sjoin(predicate='within'), the smallest key where polygons overlap (as
tract_of). Seeded random points in the layer's lon/lat box (and around it)
must get exactly the reference's key, or NULL outside every polygon, except
points within 1 metre of a polygon boundary, measured both in a projected
CRS (the file's own UTM zone for NY8; EPSG:32119 for NC) and, as a lower
bound in metres, in lon/lat (an edge straight in one is curved in the
other). Points inside an invalid polygon where the possible repairs
(make_valid, buffer(0), GEOS's structure method) disagree are excluded too.

Both sides use the PROJ on this machine, which has no NADCON grids
(proj-data does not ship us_noaa_conus.tif): NAD27 -> NAD83 is PROJ's
ballpark (no shift) here, so the test checks that the extension takes the
transformation PROJ (and GeoPandas) chooses, not geodetic truth.
"""
import math
import os
import random
import shutil
import sqlite3
import struct
import subprocess
import sys

from harness import ROOT, Skip, connect, eq, run

BUILD = os.path.join(ROOT, "build")
REAL = os.path.join(BUILD, "realdata")
NY8 = os.path.join(REAL, "NY8_utm18.shp")
NC = os.path.join(REAL, "nc.shp")
NOPRJ = os.path.join(REAL, "noprj")

NEAR_M = 1.0            # metres: points closer than this to an edge are skipped
N_IN, N_OUT = 4000, 400  # points in the lon/lat box, points around it
N_BAD = 200             # points in the box of each invalid polygon


_realdata_error = []


def realdata():
    """The files, made by tests/realdata.sh when missing; Skip when it fails
    (no apt, no network), tried once per run."""
    parts = [b[:-3] + e for b in (NY8, NC) for e in ("shp", "shx", "dbf", "prj")]
    if all(os.path.exists(p) for p in parts):
        return
    if _realdata_error:
        raise Skip(_realdata_error[0])
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)     # the ASan runtime, set by run.sh
    r = subprocess.run(["sh", os.path.join(ROOT, "tests", "realdata.sh")],
                       capture_output=True, text=True, env=env)
    missing = [os.path.relpath(p, ROOT) for p in parts if not os.path.exists(p)]
    if r.returncode != 0 or missing:
        why = (r.stderr.strip() or "missing %s" % missing)[-300:]
        _realdata_error.append(
            "build/realdata is missing and tests/realdata.sh failed (exit %d): %s"
            % (r.returncode, " ".join(why.split())))
        raise Skip(_realdata_error[0])


def dbf_fields(path):
    """Field names from the .dbf header, read here byte by byte."""
    with open(path, "rb") as f:
        head = f.read(32)
        hlen = struct.unpack("<H", head[8:10])[0]
        desc = f.read(hlen - 32)
    out = []
    for o in range(0, len(desc) - 31, 32):
        if desc[o] == 0x0D:
            break
        out.append(desc[o:o + 11].split(b"\0")[0].decode("ascii"))
    return out


# ------------------------------------------------------------ the reference

def structure_repair(g):
    """GEOS MakeValid's 'structure' method as JTS GeometryFixer does it:
    every ring buffered by zero in both orientations; shells united, holes
    taken away."""
    from shapely.geometry import Polygon
    from shapely.ops import unary_union

    def ring_area(ring):
        cs = list(ring.coords)
        return unary_union([Polygon(cs).buffer(0), Polygon(cs[::-1]).buffer(0)])
    parts = getattr(g, "geoms", [g])
    out = []
    for p in parts:
        a = ring_area(p.exterior)
        for h in p.interiors:
            a = a.difference(ring_area(h))
        out.append(a)
    return unary_union(out)


def polygonal(g):
    from shapely.geometry import MultiPolygon
    from shapely.ops import unary_union
    if g.geom_type in ("Polygon", "MultiPolygon"):
        return g
    polys = [p for p in getattr(g, "geoms", []) if p.geom_type in
             ("Polygon", "MultiPolygon")]
    return unary_union(polys) if polys else MultiPolygon()


def ambiguous_area(g):
    """Where the readings of an invalid polygon disagree."""
    from shapely.ops import unary_union
    from shapely.validation import make_valid
    reads = [polygonal(make_valid(g)), g.buffer(0), structure_repair(g)]
    inter = reads[0]
    for r in reads[1:]:
        inter = inter.intersection(r)
    return unary_union(reads).difference(inter), reads


class Reference:
    """Seeded points around a shapefile and what GeoPandas says of them.

    pts[i] = (lon, lat) NAD83; want[i] = key or None; skip[i] = why the
    point is not compared (None when it is)."""

    def __init__(self, shp, key, metric_crs, seed):
        import warnings
        warnings.filterwarnings("ignore")
        import geopandas as gpd
        from shapely.geometry import box
        from shapely.strtree import STRtree

        src = gpd.read_file(shp)
        assert src.crs is not None, "%s: GeoPandas read no CRS" % shp
        self.src = src
        self.key = key
        self.n = len(src)
        assert src[key].is_unique, "%s: key %s is not unique" % (shp, key)
        ll = src.to_crs("EPSG:4269")
        self.invalid_src = int((~src.is_valid).sum())
        self.invalid_ll = int((~ll.is_valid).sum())
        self.bad = [k for k, a, b in zip(src[key], src.geometry, ll.geometry)
                    if not a.is_valid or not b.is_valid]
        minx, miny, maxx, maxy = ll.total_bounds
        self.box = (minx, miny, maxx, maxy)
        rnd = random.Random(seed)
        pts = [(rnd.uniform(minx, maxx), rnd.uniform(miny, maxy))
               for _ in range(N_IN)]
        dx, dy = (maxx - minx) * 0.2, (maxy - miny) * 0.2
        while len(pts) < N_IN + N_OUT:
            x = rnd.uniform(minx - dx, maxx + dx)
            y = rnd.uniform(miny - dy, maxy + dy)
            if not (minx <= x <= maxx and miny <= y <= maxy):
                pts.append((x, y))
        # and some in the box of each invalid polygon, so that its repair
        # is tested
        for k in self.bad:
            bx = ll.loc[ll[key] == k].geometry.iloc[0].bounds
            pts += [(rnd.uniform(bx[0], bx[2]), rnd.uniform(bx[1], bx[3]))
                    for _ in range(N_BAD)]
        self.pts = pts
        P = gpd.GeoDataFrame(
            {"pt": range(len(pts))},
            geometry=gpd.points_from_xy([p[0] for p in pts], [p[1] for p in pts]),
            crs="EPSG:4269")

        # the reference itself: sjoin within, smallest key on overlap
        j = gpd.sjoin(P, ll[[key, "geometry"]], how="left", predicate="within")
        want = [None] * len(pts)
        self.overlaps = 0
        pairs = set()
        for i, k in zip(j["pt"], j[key]):
            if isinstance(k, str) or (k == k and k is not None):
                k = str(k)
                pairs.add((i, k))
                if want[i] is not None:
                    self.overlaps += 1
                    k = min(k, want[i])
                want[i] = k
        self.want = want

        skip = [None] * len(pts)
        # 1. near an edge, in metres of a projected CRS
        m_src = src if metric_crs is None else src.to_crs(metric_crs)
        m_pts = P.to_crs(m_src.crs)
        self.metric_crs = m_src.crs.name
        lines = list(m_src.boundary)
        tree = STRtree(lines)
        mxy = zip(m_pts.geometry.x, m_pts.geometry.y, m_pts.geometry)
        for i, (x, y, p) in enumerate(mxy):
            for g in tree.query(box(x - NEAR_M, y - NEAR_M,
                                    x + NEAR_M, y + NEAR_M)):
                if not hasattr(g, "distance"):
                    g = lines[g]            # shapely 2 returns indices
                if g.distance(p) < NEAR_M:
                    skip[i] = "near an edge (%s)" % self.metric_crs
                    break
        # 2. near an edge in lon/lat: a degree is at least 110574 m of
        # latitude, 110574 * cos(lat) m of longitude
        lines_ll = list(ll.boundary)
        tree_ll = STRtree(lines_ll)
        for i, p in enumerate(P.geometry):
            if skip[i]:
                continue
            x, y = pts[i]
            tol = NEAR_M / (110574.0 * math.cos(math.radians(abs(y) + 0.5)))
            for g in tree_ll.query(box(x - tol, y - tol, x + tol, y + tol)):
                if not hasattr(g, "distance"):
                    g = lines_ll[g]
                if g.distance(p) < tol:
                    skip[i] = "near an edge (lon/lat)"
                    break
        # 3. inside an invalid polygon where its repairs disagree; and check
        # that the raw 'within' agrees with the repairs elsewhere
        self.selfcheck = []
        self.ambiguous = {}     # point -> (key, in linework repair, in structure repair)
        for k in self.bad:
            g = ll.loc[ll[key] == k].geometry.iloc[0]
            amb, reads = ambiguous_area(g)
            bb = g.bounds
            for i, p in enumerate(P.geometry):
                x, y = pts[i]
                if skip[i] or not (bb[0] <= x <= bb[2] and bb[1] <= y <= bb[3]):
                    continue
                if amb.contains(p):
                    skip[i] = "inside invalid polygon %s where repairs differ" % k
                    self.ambiguous[i] = (k, reads[0].contains(p),
                                         reads[2].contains(p))
                    continue
                raw = (i, k) in pairs
                if raw != reads[2].contains(p):
                    self.selfcheck.append((i, k, raw))
        self.skip = skip

    def summary(self):
        cmp_ = [i for i in range(len(self.pts)) if not self.skip[i]]
        inside = sum(1 for i in cmp_ if self.want[i] is not None)
        return ("%d points: %d compared (%d inside a polygon, %d outside all), "
                "%d excluded (%d near an edge, %d in ambiguous repairs)" % (
                    len(self.pts), len(cmp_), inside, len(cmp_) - inside,
                    len(self.pts) - len(cmp_),
                    sum(1 for s in self.skip if s and s.startswith("near")),
                    sum(1 for s in self.skip if s and s.startswith("inside"))))


_refs = {}


def reference(name):
    if name not in _refs:
        if name == "ny8":
            _refs[name] = Reference(NY8, "AREAKEY", None, 8)
        else:
            _refs[name] = Reference(NC, "FIPS", "EPSG:32119", 37)
    return _refs[name]


def answers(c, layer, pts):
    """boundary_of(layer, lon, lat) for every point."""
    c.execute("drop table if exists temp.pts")
    c.execute("create temp table pts(i integer primary key, lon real, lat real)")
    c.executemany("insert into pts values(?, ?, ?)",
                  [(i, x, y) for i, (x, y) in enumerate(pts)])
    got = dict(c.execute("select i, boundary_of(?, lon, lat) from pts", (layer,)))
    c.execute("drop table temp.pts")
    return [got[i] for i in range(len(pts))]


def compare(ref, got, what):
    bad = [(i, ref.pts[i], got[i], ref.want[i]) for i in range(len(ref.pts))
           if not ref.skip[i] and got[i] != ref.want[i]]
    assert not bad, "%s: %d disagree with GeoPandas; %s; first: %s" % (
        what, len(bad), ref.summary(),
        "; ".join("point %d (%r, %r): boundary_of %r, reference %r"
                  % (i, p[0], p[1], g, w) for i, p, g, w in bad[:5]))


def load(c, layer, path, *more):
    args = (layer, path) + more
    q = "select layer, features, repaired, error from load_boundaries(%s)" % \
        ", ".join("?" * len(args))
    return c.execute(q, args).fetchall()


def load_error(c, *args):
    """The SQL error load_boundaries(*args) raises."""
    try:
        rows = load(c, *args)
    except sqlite3.Error as e:
        return str(e)
    raise AssertionError("no error from load_boundaries%r: %r" % (args, rows))


def check_reference_sane(ref, min_inside, what):
    """The reference must say something: enough points inside polygons,
    some outside, few excluded, and its raw 'within' on invalid polygons
    must agree with their repairs away from where the repairs differ."""
    cmp_ = [i for i in range(len(ref.pts)) if not ref.skip[i]]
    inside = sum(1 for i in cmp_ if ref.want[i] is not None)
    outside_box = sum(1 for i in range(N_IN, N_IN + N_OUT)
                      if ref.want[i] is not None)
    assert inside >= min_inside, "%s reference: %s" % (what, ref.summary())
    assert len(cmp_) - inside >= N_OUT, "%s reference: %s" % (what, ref.summary())
    assert len(ref.pts) - len(cmp_) <= len(ref.pts) // 50, \
        "%s reference excludes too much: %s" % (what, ref.summary())
    eq(outside_box, 0, "%s reference: points outside the box inside a polygon" % what)
    eq(ref.selfcheck, [], "%s reference: raw within vs structure repair" % what)


# -------------------------------------------------------------------- tests

def test_ny8_utm18_against_geopandas():
    """NY8 (UTM 18N, WGS 84): every point away from the edges gets
    GeoPandas' key, or NULL."""
    realdata()
    ref = reference("ny8")
    check_reference_sane(ref, 2000, "NY8")
    eq(ref.n, 281, "NY8 features")
    c = connect()
    rows = load(c, "ny8", NY8, "AREAKEY")
    eq(len(rows), 1, "one row per file")
    layer, features, repaired, error = rows[0]
    eq((layer, features, error), ("ny8", 281, None), "load_boundaries row")
    # GEOS finds the same invalid polygons the reference does (5 in UTM,
    # 5 after reprojection)
    eq(repaired, ref.invalid_ll, "repaired (reference: %d invalid in UTM, %d "
       "in lon/lat: %s)" % (ref.invalid_src, ref.invalid_ll, ref.bad))
    got = answers(c, "ny8", ref.pts)
    compare(ref, got, "NY8_utm18")
    # not asserted: where the repairs of an invalid polygon differ, which
    # one boundary_of followed
    if ref.ambiguous:
        follows = {"structure": 0, "linework": 0}
        for i, (k, linework, structure) in ref.ambiguous.items():
            if linework != structure:
                follows["structure" if (got[i] == k) == structure
                        else "linework"] += 1
        print("  note: %d points where repairs of an invalid polygon differ "
              "(not compared): boundary_of follows the structure repair at "
              "%d, the linework repair at %d"
              % (len(ref.ambiguous), follows["structure"], follows["linework"]))


def test_nc_nad27_against_geopandas():
    """nc (NAD27 lon/lat): the same, key FIPS."""
    realdata()
    ref = reference("nc")
    check_reference_sane(ref, 1500, "nc")
    eq(ref.n, 100, "nc features")
    c = connect()
    rows = load(c, "nc", NC, "FIPS")
    eq(rows, [("nc", 100, 0, None)], "load_boundaries row")
    compare(ref, answers(c, "nc", ref.pts), "nc")


def test_nc_without_prj_needs_an_srid():
    """A copy of nc without its .prj: refused without an SRID (naming the
    .prj / coordinate system, loading nothing); with SRID 4267 it loads and
    answers exactly as the run that read the .prj."""
    realdata()
    if os.path.isdir(NOPRJ):
        shutil.rmtree(NOPRJ)
    os.makedirs(NOPRJ)
    for e in ("shp", "shx", "dbf"):
        shutil.copy(NC[:-3] + e, os.path.join(NOPRJ, "nc." + e))
    path = os.path.join(NOPRJ, "nc.shp")
    c = connect()
    msg = load_error(c, "nc", path, "FIPS")
    assert ".prj" in msg and ("coordinate system" in msg or "SRID" in msg), \
        "error does not mention the .prj / coordinate system: %r" % msg
    has = c.execute("select count(*) from sqlite_schema where name = 'nc'").fetchone()[0]
    if has:
        eq(c.execute("select count(*) from nc").fetchone()[0], 0,
           "rows left behind by the failed load")

    ref = reference("nc")
    with_prj = connect()
    load(with_prj, "nc", NC, "FIPS")
    want = answers(with_prj, "nc", ref.pts)
    c = connect()
    eq(load(c, "nc", path, "FIPS", 4267), [("nc", 100, 0, None)],
       "load_boundaries row with srid 4267")
    got = answers(c, "nc", ref.pts)
    diff = [(i, ref.pts[i], a, b) for i, (a, b) in enumerate(zip(got, want)) if a != b]
    assert not diff, "srid 4267 vs .prj: %d of %d points differ, first %r" % (
        len(diff), len(want), diff[:5])
    # and both agree with the reference
    compare(ref, got, "nc without .prj, srid 4267")


def test_key_column_and_dbf_fields():
    """A key column the .dbf lacks is an error naming it; the layer's table
    has every DBF field as a column, with the file's values."""
    realdata()
    c = connect()
    msg = load_error(c, "ny8", NY8, "NO_SUCH_KEY")
    assert "NO_SUCH_KEY" in msg, "error does not name the column: %r" % msg
    has = c.execute("select count(*) from sqlite_schema where name = 'ny8'").fetchone()[0]
    if has:
        eq(c.execute("select count(*) from ny8").fetchone()[0], 0,
           "rows left behind by the failed load")

    eq(load(c, "ny8", NY8, "AREAKEY")[0][1], 281, "features")
    fields = dbf_fields(NY8[:-3] + "dbf")
    eq(len(fields), 17, "NY8 DBF fields")
    cols = [r[1] for r in c.execute("select * from pragma_table_info('ny8')")]
    missing = [f for f in fields if f not in cols]
    eq(missing, [], "DBF fields that are not columns of ny8 (columns: %r)" % cols)
    eq(c.execute("select count(*) from ny8").fetchone()[0], 281, "rows of ny8")

    ref_src = reference("ny8").src
    mine = {k: (name, pop) for k, name, pop in
            c.execute("select AREAKEY, AREANAME, POP8 from ny8")}
    eq(sorted(mine), sorted(ref_src["AREAKEY"]), "AREAKEY values")
    for k, name, pop in zip(ref_src["AREAKEY"], ref_src["AREANAME"], ref_src["POP8"]):
        eq(mine[k][0], name, "AREANAME of %s" % k)
        assert abs(float(mine[k][1]) - pop) < 1e-6, \
            "POP8 of %s: %r != %r" % (k, mine[k][1], pop)
    # boundary_of returns the key column's value
    x, y = reference("ny8").pts[0]
    k = c.execute("select boundary_of('ny8', ?, ?)", (x, y)).fetchone()[0]
    assert k is None or k in mine, k


if __name__ == "__main__":
    sys.exit(run("real", globals()))
