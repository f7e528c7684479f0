#!/usr/bin/python3
"""SQL-level tests of the tracts extension, from a Python host.

Run by tests/run.sh with Debian's /usr/bin/python3 (a Python whose sqlite3
module can load extensions):

    /usr/bin/python3 tests/test_tracts.py build/tracts.so

Every test_* function runs in order; a test passes when it raises nothing.
The last line is "python: N passed, N failed, N skipped".

Fixtures are made at run time under build/fixtures by build/gentracts (the
census-layout generator in tools/), by hand-written WKT, and by corrupting
good zips byte by byte; the real-data check converts spData's
boston_tracts.shp (Debian package r-cran-spdata, fetched by
tests/realdata.sh with apt-get download) into the census layout with
ogr2ogr, geometry untouched.

Independent references: shapely (GEOS) on geometries read by GDAL from
the source files, and SpatiaLite's ST_Covers through mod_spatialite.
"""
import math
import os
import random
import shutil
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import zipfile

from harness import EXT, ROOT, ASAN, Skip, connect, expect_error, eq, run

BUILD = os.path.join(ROOT, "build")
FX = os.path.join(BUILD, "fixtures")
GEN = os.path.join(BUILD, "gentracts")

def snapshot(c):
    """Everything load_tracts may touch, to compare before and after."""
    names = [r[0] for r in c.execute(
        "select name from sqlite_schema where name like 'tracts%' order by 1")]
    out = {"schema": names}
    for t in ("tracts", "tracts_files", "tracts_rtree"):
        if t in names:
            out[t] = c.execute("select * from %s order by 1, 2" % t).fetchall()
    return out


def gen(*args):
    subprocess.run([GEN] + list(args), check=True, stdout=subprocess.DEVNULL)


def write_wkt(path, rows):
    with open(path, "w") as f:
        for geoid, wkt in rows:
            f.write("%s\t%s\n" % (geoid, wkt))


def sq(x0, y0, x1, y1):
    return "(%r %r, %r %r, %r %r, %r %r, %r %r)" % (
        x0, y0, x0, y1, x1, y1, x1, y0, x0, y0)


# Hand-made Rhode Island fixture: a 3x2 block of squares (shared edges and
# a 4-way... 6-tract shared vertex set), a tract with a hole filled by
# another tract, a multipolygon with an island, GEOIDs chosen so the
# smallest-GEOID rule is visible.
HAND = [
    ("44007000100", "POLYGON(%s)" % sq(-71.5, 41.5, -71.4, 41.6)),
    ("44007000200", "POLYGON(%s)" % sq(-71.4, 41.5, -71.3, 41.6)),
    ("44007000300", "POLYGON(%s)" % sq(-71.3, 41.5, -71.2, 41.6)),
    ("44007000400", "POLYGON(%s)" % sq(-71.5, 41.6, -71.4, 41.7)),
    ("44007000050", "POLYGON(%s)" % sq(-71.4, 41.6, -71.3, 41.7)),
    ("44007000600", "POLYGON(%s,%s)" % (sq(-71.3, 41.6, -71.2, 41.7),
                                        sq(-71.28, 41.62, -71.22, 41.68))),
    ("44007000700", "POLYGON(%s)" % sq(-71.28, 41.62, -71.22, 41.68)),
    ("44009000800", "MULTIPOLYGON((%s),(%s))" % (sq(-71.2, 41.5, -71.1, 41.7),
                                                 sq(-71.05, 41.55, -71.0, 41.6))),
]

BOWTIE = [("44001000100", "POLYGON((-71.5 41.5, -71.4 41.6, -71.4 41.5, "
                          "-71.5 41.6, -71.5 41.5))"),
          ("44001000200", "POLYGON(%s)" % sq(-71.3, 41.5, -71.2, 41.6))]


def setup_fixtures():
    if os.path.isdir(FX):
        shutil.rmtree(FX)
    os.makedirs(FX)
    write_wkt(os.path.join(FX, "hand.txt"), HAND)
    os.makedirs(os.path.join(FX, "hand"))
    gen("--from", os.path.join(FX, "hand.txt"), "--out", os.path.join(FX, "hand"))
    os.makedirs(os.path.join(FX, "handshp"))
    gen("--from", os.path.join(FX, "hand.txt"), "--out",
        os.path.join(FX, "handshp"), "--no-zip")
    write_wkt(os.path.join(FX, "bowtie.txt"), BOWTIE)
    os.makedirs(os.path.join(FX, "bowtie"))
    gen("--from", os.path.join(FX, "bowtie.txt"), "--out",
        os.path.join(FX, "bowtie"), "--keep-rings")
    os.makedirs(os.path.join(FX, "point"))
    gen("--from", os.path.join(FX, "hand.txt"), "--out",
        os.path.join(FX, "point"), "--shape-type", "point")
    gen("--out", os.path.join(FX, "synth"), "--states", "44,25", "--tracts",
        "400", "--vertices", "60", "--national")


HAND_ZIP = lambda: os.path.join(FX, "hand", "cb_2019_44_tract_500k.zip")
SYN = lambda s: os.path.join(FX, "synth", "cb_2019_%s_tract_500k.zip" % s)


def zip_members(path):
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def write_zip(path, members, compress=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compress) as z:
        for n, data in members.items():
            z.writestr(n, data)


# ---------------------------------------------------------------- basics

def test_registered_functions_and_modules():
    c = connect()
    funcs = sorted(set(r[0] for r in c.execute(
        "select name from pragma_function_list where name like 'tract%' "
        "or name like 'load_tract%' or name like 'monitor%' "
        "or name like 'boundar%'")))
    eq(funcs, ["boundary_of", "monitor_mark", "monitor_plot", "monitor_start",
               "monitor_stop", "tract_of", "tracts_assign",
               "tracts_assign_points", "tracts_config", "tracts_debug",
               "tracts_touch", "tracts_version"], "functions")
    plain = sqlite3.connect(":memory:")
    mods = sorted(set(r[0] for r in c.execute("select name from pragma_module_list"))
                  - set(r[0] for r in plain.execute("select name from pragma_module_list"))
                  - {"pragma_function_list"})
    eq(mods, ["census_layers", "fetch_boundaries", "fetch_for_points",
              "fetch_tracts",
              "load_boundaries", "load_tracts", "monitor_marks",
              "monitor_samples", "tracts_assign_rows", "tracts_cache"],
       "modules")
    eq(c.execute("select tracts_version()").fetchone()[0], "0.1.0")
    assert "geos 3." in c.execute("select tracts_debug()").fetchone()[0]


def test_extension_exports_one_symbol():
    out = subprocess.run(["nm", "-D", "--defined-only", EXT],
                         capture_output=True, text=True).stdout
    syms = [l.split()[-1] for l in out.splitlines() if " T " in l]
    eq([s for s in syms if not s.startswith("__")], ["sqlite3_tracts_init"])


def test_config():
    c = connect()
    eq(c.execute("select tracts_config('repair')").fetchone()[0], 1)
    eq(c.execute("select tracts_config('repair', 0)").fetchone()[0], 0)
    eq(c.execute("select tracts_config('repair')").fetchone()[0], 0)
    eq(c.execute("select tracts_config('repair', NULL)").fetchone()[0], 1)
    eq(c.execute("select tracts_config('threads', 3)").fetchone()[0], 3)
    expect_error(c, "select tracts_config('colour')", (),
                 "tracts_config: unknown setting 'colour' (known: repair, "
                 "threads, workers, nearest_m, year, base_url, cache_dir, "
                 "user_agent, connections, offline, retries, retry_wait_ms, "
                 "retry_max_s, connect_timeout, low_speed_timeout, split_kb, "
                 "progress, persist_index)")
    expect_error(c, "select tracts_config('repair', 'yes')", (),
                 "tracts_config: repair must be an integer from 0 to 1, got 'yes'")
    expect_error(c, "select tracts_config('threads', 65)", (),
                 "tracts_config: threads must be an integer from 0 to 64, got '65'")
    expect_error(c, "select tracts_config(NULL)", (),
                 "tracts_config: the setting name is NULL")
    env = dict(os.environ, TRACTS_REPAIR="0")
    out = subprocess.run(["sqlite3", ":memory:", ".load %s" % EXT[:-3],
                          "select tracts_config('repair')"],
                         capture_output=True, text=True, env=env)
    eq(out.stdout.strip(), "0", "TRACTS_REPAIR env default")


def test_tract_of_without_tracts_is_an_error():
    c = connect()
    expect_error(c, "select tract_of(-71.45, 41.55)", (),
                 "tract_of: no tracts loaded (run load_tracts)")
    expect_error(c, "select tract_of(1)", (),
                 "wrong number of arguments to function tract_of()")
    expect_error(c, "select tract_of(1, 2, 3)", (),
                 "wrong number of arguments to function tract_of()")


# ------------------------------------------------------------ loading

def test_load_hand_fixture():
    c = connect()
    rows = c.execute("select file, state, year, tracts, repaired, error "
                     "from load_tracts(?)", (HAND_ZIP(),)).fetchall()
    eq(rows, [(HAND_ZIP(), "44", 2019, 8, 0, None)])
    eq(c.execute("select count(*) from tracts").fetchone()[0], 8)
    eq(c.execute("select count(*) from tracts_rtree").fetchone()[0], 8)
    r = c.execute("select STATEFP, COUNTYFP, TRACTCE, AFFGEOID, NAME, LSAD, "
                  "typeof(ALAND) from tracts where GEOID='44007000100'").fetchone()
    eq(r, ("44", "007", "000100", "1400000US44007000100", "1", "CT", "integer"))
    f = c.execute("select layer, state, file, year, length(sha256), tracts "
                  "from tracts_files").fetchall()
    eq(f, [("tracts", "44", HAND_ZIP(), 2019, 64, 8)])
    box = c.execute("select minx, maxx, miny, maxy from tracts_rtree join tracts "
                    "on id=tracts.rowid where GEOID='44009000800'").fetchone()
    assert box[0] <= -71.2 and box[1] >= -71.0 and box[2] <= 41.5 and box[3] >= 41.7, box


def test_tract_of_rules():
    c = connect()
    c.execute("select * from load_tracts(?)", (HAND_ZIP(),)).fetchall()
    t = lambda x, y: c.execute("select tract_of(?, ?)", (x, y)).fetchone()[0]
    eq(t(-71.45, 41.55), "44007000100", "interior")
    eq(t(-71.25, 41.65), "44007000700", "inside the hole: the filling tract")
    eq(t(-71.29, 41.61), "44007000600", "between hole and shell")
    eq(t(-71.025, 41.575), "44009000800", "island part")
    eq(t(-71.07, 41.575), None, "water between the parts")
    eq(t(-71.4, 41.55), "44007000100", "shared edge: smaller GEOID")
    eq(t(-71.35, 41.6), "44007000050", "shared edge, 50 < 200")
    eq(t(-71.4, 41.6), "44007000050", "vertex of four tracts")
    eq(t(-71.28, 41.65), "44007000600", "hole edge: 600 < 700")
    eq(t(-71.5, 41.5), "44007000100", "outer corner is covered")
    eq(t(-71.0, 41.6), "44009000800", "island corner")
    eq(t(-80, 30), None, "far away")


def test_tract_of_inputs():
    c = connect()
    c.execute("select * from load_tracts(?)", (HAND_ZIP(),)).fetchall()
    t = lambda x, y: c.execute("select tract_of(?, ?)", (x, y)).fetchone()[0]
    eq(t(None, 41.55), None)
    eq(t(-71.45, None), None)
    eq(t("-71.45", "41.55"), "44007000100", "numeric text")
    eq(t(" -71.45 ", "41.55  "), "44007000100", "numeric text with spaces")
    eq(t("abc", 41.55), None, "non-numeric text")
    eq(t("-71.45x", 41.55), None, "trailing junk")
    eq(t(b"\x00\x01", 41.55), None, "blob")
    eq(t("", 41.55), None, "empty text")
    eq(c.execute("select tract_of(9e999, 41.55), tract_of(-9e999, 1), "
                 "tract_of(-71.45, 'nan'), tract_of('inf', 41)").fetchone(),
       (None, None, None, None), "infinities and nan")
    eq(t(-71.45, 90.0000001), None, "latitude > 90")
    eq(t(-180.0000001, 41.55), None, "longitude < -180")
    eq(t(180, 90), None)
    eq(t(-71, 41), None)
    eq(c.execute("select tract_of(-71, 41)").fetchone()[0], None, "integers")
    eq(c.execute("select tract_of(cast(-71.45 as text), 41.55)").fetchone()[0],
       "44007000100")


def test_reload_replaces_and_other_state_kept():
    c = connect()
    c.execute("select * from load_tracts(?)", (SYN("25"),)).fetchall()
    n25 = c.execute("select count(*) from tracts").fetchone()[0]
    c.execute("select * from load_tracts(?)", (HAND_ZIP(),)).fetchall()
    c.execute("select * from load_tracts(?)", (HAND_ZIP(),)).fetchall()
    eq(c.execute("select count(*) from tracts").fetchone()[0], n25 + 8)
    eq(c.execute("select count(*) from tracts_rtree").fetchone()[0], n25 + 8)
    # the synthetic RI replaces the hand-made RI entirely
    c.execute("select * from load_tracts(?)", (SYN("44"),)).fetchall()
    eq(c.execute("select count(*) from tracts where GEOID='44007000100' "
                 "and NAME='1'").fetchone()[0], 0)
    eq(c.execute("select group_concat(state) from (select state from tracts_files "
                 "order by 1)").fetchone()[0], "25,44")
    eq(c.execute("select count(*) from tracts_rtree").fetchone()[0],
       c.execute("select count(*) from tracts").fetchone()[0])


def test_national_file_and_directory():
    c = connect()
    nat = os.path.join(FX, "synth", "cb_2019_us_tract_500k.zip")
    rows = c.execute("select state, tracts, error from load_tracts(?)",
                     (nat,)).fetchall()
    eq(rows, [("44,25", 400, None)] if rows[0][0].startswith("44") else
       [("25,44", 400, None)])
    d = connect()
    rows = d.execute("select file, state, tracts, error from load_tracts(?)",
                     (os.path.join(FX, "synth"),)).fetchall()
    eq([(os.path.basename(r[0]), r[1], r[3]) for r in rows],
       [("cb_2019_25_tract_500k.zip", "25", None),
        ("cb_2019_44_tract_500k.zip", "44", None),
        ("cb_2019_us_tract_500k.zip", rows[2][1], None)])
    eq(sum(r[2] for r in rows[:2]), 400)
    eq(d.execute("select count(*) from tracts").fetchone()[0], 400)
    a = c.execute("select GEOID, geometry from tracts order by 1").fetchall()
    b = d.execute("select GEOID, geometry from tracts order by 1").fetchall()
    eq(a == b, True, "national file and state files load the same rows")


def test_bare_shapefile():
    c = connect()
    shp = os.path.join(FX, "handshp", "cb_2019_44_tract_500k.shp")
    rows = c.execute("select state, tracts, error from load_tracts(?)",
                     (shp,)).fetchall()
    eq(rows, [("44", 8, None)])
    d = connect()
    d.execute("select * from load_tracts(?)", (HAND_ZIP(),)).fetchall()
    eq(c.execute("select GEOID, geometry from tracts order by 1").fetchall(),
       d.execute("select GEOID, geometry from tracts order by 1").fetchall())


def test_invalid_polygon_repaired_or_refused():
    z = os.path.join(FX, "bowtie", "cb_2019_44_tract_500k.zip")
    c = connect()
    rows = c.execute("select tracts, repaired, error from load_tracts(?)",
                     (z,)).fetchall()
    eq(rows, [(2, 1, None)])
    eq(c.execute("select repaired from tracts_files").fetchone()[0], 1)
    # both lobes of the bow-tie are covered after the repair
    eq(c.execute("select tract_of(-71.49, 41.55), tract_of(-71.41, 41.55)")
       .fetchone(), ("44001000100", "44001000100"))
    d = connect()
    d.execute("select tracts_config('repair', 0)")
    expect_error(d, "select * from load_tracts(?)", (z,),
                 "load_tracts: %s: record 1: invalid polygon (Self-intersection"
                 "[-71.45 41.55]); set tracts_config('repair', 1) to repair" % z)
    eq(snapshot(d)["schema"], [], "nothing written")


def test_spatialite_interop():
    c = connect()
    try:
        c.load_extension("mod_spatialite")
    except sqlite3.Error as e:
        raise Skip("mod_spatialite: %s" % e)
    c.execute("select * from load_tracts(?)", (HAND_ZIP(),)).fetchall()
    c.execute("select * from load_tracts(?)", (SYN("25"),)).fetchall()
    bad = c.execute("select count(*) from tracts where ST_IsValid(geometry) != 1 "
                    "or ST_Srid(geometry) != 4269 or "
                    "GeometryType(geometry) != 'MULTIPOLYGON'").fetchone()[0]
    eq(bad, 0, "valid MULTIPOLYGON 4269 per SpatiaLite")
    a = c.execute("select ST_Area(geometry) from tracts where GEOID='44007000600'"
                  ).fetchone()[0]
    assert abs(a - (0.01 - 0.0036)) < 1e-9, a
    rnd = random.Random(7)
    n = 0
    for i in range(1500):
        x = rnd.uniform(-71.55, -70.95) if i % 2 else rnd.uniform(-72.6, -69.4)
        y = rnd.uniform(41.45, 41.75) if i % 2 else rnd.uniform(41.0, 43.2)
        ours = c.execute("select tract_of(?, ?)", (x, y)).fetchone()[0]
        ref = c.execute(
            "select min(GEOID) from tracts join tracts_rtree on id=tracts.rowid "
            "where minx<=?1 and maxx>=?1 and miny<=?2 and maxy>=?2 and "
            "ST_Covers(geometry, MakePoint(?1, ?2, 4269))", (x, y)).fetchone()[0]
        eq(ours, ref, "point (%r, %r)" % (x, y))
        n += ref is not None
    assert n > 250, n


def shapely_reference(zip_path):
    """(STRtree, [(geom, geoid)]) from the file as GDAL reads it."""
    from osgeo import ogr
    from shapely import wkb
    from shapely.strtree import STRtree
    ds = ogr.Open("/vsizip/" + zip_path)
    lyr = ds.GetLayer(0)
    items = []
    for f in lyr:
        items.append((wkb.loads(bytes(f.GetGeometryRef().ExportToWkb())),
                      f.GetField("GEOID")))
    return items


def compare_with_shapely(c, zip_path, box, n, seed):
    from shapely.geometry import Point
    from shapely.strtree import STRtree
    items = shapely_reference(zip_path)
    geoms = [g for g, _ in items]
    byid = {id(g): k for g, k in items}
    tree = STRtree(geoms)
    rnd = random.Random(seed)
    pts = [(rnd.uniform(box[0], box[2]), rnd.uniform(box[1], box[3]))
           for _ in range(n)]
    got = dict(c.execute(
        "select key, tract_of(x, y) from (select value as key, "
        "json_extract(?, '$[' || value || '][0]') as x, "
        "json_extract(?, '$[' || value || '][1]') as y from "
        "json_each(?))", (repr(pts).replace("(", "[").replace(")", "]"),) * 2 +
        ("[" + ",".join(str(i) for i in range(n)) + "]",)).fetchall())
    nIn = nNear = 0
    for i, (x, y) in enumerate(pts):
        p = Point(x, y)
        cands = tree.query(p)
        cover = sorted(byid[id(g)] for g in cands if g.covers(p))
        near = any(g.boundary.distance(p) < 1e-6 for g in cands)
        if near:
            nNear += 1
            continue
        exp = cover[0] if cover else None
        eq(got[i], exp, "point %d (%r, %r)" % (i, x, y))
        nIn += exp is not None
    return nIn, nNear


def test_random_points_against_shapely_synthetic():
    c = connect()
    c.execute("select * from load_tracts(?)", (SYN("44"),)).fetchall()
    box = c.execute("select min(minx), min(miny), max(maxx), max(maxy) "
                    "from tracts_rtree").fetchone()
    nIn, nNear = compare_with_shapely(c, SYN("44"), box, 4000, 11)
    assert nIn > 2000, nIn


def spdata_boston():
    """build/fixtures/boston83/cb_2019_25_tract_500k.zip from spData: the
    file is NAD27; GDAL takes it to NAD83 here, so that shapely, reading
    the same zip, sees what tract_of indexes (the reprojection itself is
    tested on its own)."""
    out = os.path.join(FX, "boston83")
    z = os.path.join(out, "cb_2019_25_tract_500k.zip")
    if os.path.exists(z):
        return z
    r = subprocess.run(["sh", os.path.join(ROOT, "tests", "realdata.sh")],
                       capture_output=True, text=True)
    if r.returncode:
        raise Skip(r.stderr.strip()[-300:])
    src = os.path.join(BUILD, "realdata", "boston_tracts.shp")
    os.makedirs(out, exist_ok=True)
    shp = os.path.join(out, "cb_2019_25_tract_500k.shp")
    sql = ("SELECT '25' AS STATEFP, '025' AS COUNTYFP, "
           "printf('%06d', rowid + 1) AS TRACTCE, "
           "'1400000US25025' || printf('%06d', rowid + 1) AS AFFGEOID, "
           "'25025' || printf('%06d', rowid + 1) AS GEOID, "
           "poltract AS NAME, 'CT' AS LSAD, 0 AS ALAND, 0 AS AWATER, "
           "Geometry FROM boston_tracts")
    subprocess.run(["ogr2ogr", "-f", "ESRI Shapefile", "-t_srs", "EPSG:4269",
                    shp, src, "-dialect",
                    "sqlite", "-sql", sql, "-nln", "cb_2019_25_tract_500k"],
                   check=True, capture_output=True)
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        for ext in ("shp", "shx", "dbf", "prj", "cpg"):
            p = shp[:-3] + ext
            if os.path.exists(p):
                zf.write(p, os.path.basename(p))
    return z


def test_real_boston_tracts_against_shapely():
    z = spdata_boston()
    c = connect()
    rows = c.execute("select tracts, repaired, error from load_tracts(?)",
                     (z,)).fetchall()
    eq(rows[0][0], 506)
    eq(rows[0][2], None)
    box = c.execute("select min(minx), min(miny), max(maxx), max(maxy) "
                    "from tracts_rtree").fetchone()
    if rows[0][1]:
        # repaired polygons differ from the file by design: compare those
        # with SpatiaLite on the stored geometry instead (below)
        pass
    nIn, nNear = compare_with_shapely_excluding(c, z, box, 5000, 3,
                                                repaired=rows[0][1])
    assert nIn > 2000, nIn


def compare_with_shapely_excluding(c, z, box, n, seed, repaired):
    if not repaired:
        return compare_with_shapely(c, z, box, n, seed)
    # some polygons were repaired: use the repaired geometry as reference
    from shapely import wkb
    try:
        c.load_extension("mod_spatialite")
    except sqlite3.Error as e:
        raise Skip("mod_spatialite: %s" % e)
    items = [(wkb.loads(bytes(b)), k) for k, b in c.execute(
        "select GEOID, AsBinary(geometry) from tracts")]
    from shapely.geometry import Point
    from shapely.strtree import STRtree
    geoms = [g for g, _ in items]
    byid = {id(g): k for g, k in items}
    tree = STRtree(geoms)
    rnd = random.Random(seed)
    nIn = nNear = 0
    for i in range(n):
        x, y = rnd.uniform(box[0], box[2]), rnd.uniform(box[1], box[3])
        p = Point(x, y)
        cands = tree.query(p)
        if any(g.boundary.distance(p) < 1e-6 for g in cands):
            nNear += 1
            continue
        cover = sorted(byid[id(g)] for g in cands if g.covers(p))
        exp = cover[0] if cover else None
        eq(c.execute("select tract_of(?, ?)", (x, y)).fetchone()[0], exp,
           "point (%r, %r)" % (x, y))
        nIn += exp is not None
    return nIn, nNear


def test_index_follows_table_changes():
    db = os.path.join(BUILD, "fixtures", "follow.db")
    if os.path.exists(db):
        os.remove(db)
    c = connect(db)
    c.execute("select * from load_tracts(?)", (HAND_ZIP(),)).fetchall()
    t = lambda x, y, conn=c: conn.execute("select tract_of(?, ?)",
                                          (x, y)).fetchone()[0]
    eq(t(-71.45, 41.55), "44007000100")
    c.execute("delete from tracts where GEOID='44007000100'")
    eq(t(-71.45, 41.55), None, "deleted in this connection")
    c.execute("begin")
    c.execute("select * from load_tracts(?)", (HAND_ZIP(),)).fetchall()
    eq(t(-71.45, 41.55), "44007000100", "reloaded inside a transaction")
    c.execute("rollback")
    eq(t(-71.45, 41.55), None, "after rollback")
    # a change committed by another connection
    d = sqlite3.connect(db, isolation_level=None)
    d.execute("update tracts set GEOID='44007000011' where GEOID='44007000050'")
    d.close()
    eq(t(-71.35, 41.65), "44007000011", "changed by another connection")
    # a plain sqlite3 connection (no extension) can still write the table
    e = sqlite3.connect(db, isolation_level=None)
    e.execute("delete from tracts where GEOID='44007000011'")
    e.close()
    eq(t(-71.35, 41.65), None)
    c.close()


def test_tract_of_first_used_in_a_write_statement():
    db = os.path.join(BUILD, "fixtures", "firstwrite.db")
    if os.path.exists(db):
        os.remove(db)
    c = connect(db)                       # loaded before the table exists
    d = connect(db)
    d.execute("select * from load_tracts(?)", (HAND_ZIP(),)).fetchall()
    d.close()
    c.execute("create table r as select tract_of(-71.45, 41.55) as g")
    eq(c.execute("select g from r").fetchone()[0], "44007000100")
    c.execute("begin")
    c.execute("insert into r select tract_of(-71.35, 41.65)")
    c.execute("delete from tracts where GEOID='44007000050'")
    c.execute("insert into r select tract_of(-71.35, 41.65)")
    c.execute("commit")
    eq([x[0] for x in c.execute("select g from r")],
       ["44007000100", "44007000050", None], "own change seen in a transaction")
    expect_error(c, "create table r2 as select * from load_tracts(?)",
                 (HAND_ZIP(),), "load_tracts: %s: cannot write inside a "
                 "statement that writes; run SELECT * FROM load_tracts(...) "
                 "on its own" % HAND_ZIP())
    c.execute("create table pts(id INTEGER PRIMARY KEY, lon, lat)")
    expect_error(c, "create table r3 as select tracts_assign('pts', 'lon', "
                 "'lat', 'o')", (), "tracts_assign: cannot run inside a "
                 "statement that writes; call it on its own")
    c.execute("drop table tracts")
    expect_error(c, "select tract_of(-71.45, 41.55)", (),
                 "tract_of: no tracts loaded (run load_tracts)")


def test_python_host_with_threads():
    """The extension in a multi-threaded host: one connection per thread."""
    errors = []

    def work(i):
        try:
            c = connect()
            c.execute("select * from load_tracts(?)", (HAND_ZIP(),)).fetchall()
            for k in range(200):
                v = c.execute("select tract_of(-71.45, 41.55)").fetchone()[0]
                if v != "44007000100":
                    errors.append(v)
            c.close()
        except Exception as e:  # noqa
            errors.append(repr(e))
    ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    eq(errors, [])


# ---------------------------------------------------------- bad input

def bad_load(c, path, text):
    before = snapshot(c)
    expect_error(c, "select * from load_tracts(?)", (path,),
                 "load_tracts: %s: %s" % (path, text))
    eq(snapshot(c), before, "database unchanged after %s" % text)


def loaded_conn():
    c = connect()
    c.execute("select * from load_tracts(?)", (SYN("25"),)).fetchall()
    return c


def test_bad_paths():
    c = loaded_conn()
    before = snapshot(c)
    expect_error(c, "select * from load_tracts('/nonexistent/x.zip')", (),
                 "load_tracts: cannot open '/nonexistent/x.zip': "
                 "No such file or directory")
    expect_error(c, "select * from load_tracts(NULL)", (),
                 "load_tracts: the path is NULL")
    expect_error(c, "select * from load_tracts('')", (),
                 "load_tracts: the path is empty")
    expect_error(c, "select * from load_tracts", (),
                 "load_tracts: needs a path argument")
    empty = os.path.join(FX, "emptydir")
    os.makedirs(empty, exist_ok=True)
    expect_error(c, "select * from load_tracts(?)", (empty,),
                 "load_tracts: no census tract zips "
                 "(cb_{year}_{st}_tract_{res}.zip) in '%s'" % empty)
    eq(snapshot(c), before)


def test_bad_zips():
    c = loaded_conn()
    d = os.path.join(FX, "bad")
    os.makedirs(d, exist_ok=True)
    good = zip_members(HAND_ZIP())
    base = "cb_2019_44_tract_500k"

    p = os.path.join(d, "html", base + ".zip")
    os.makedirs(os.path.dirname(p), exist_ok=True)
    open(p, "wb").write(b"<!DOCTYPE html><html><body>Service Unavailable</body></html>")
    bad_load(c, p, "not a zip archive (starts with '<!DOCTYPE html><')")

    p = os.path.join(d, "empty.zip")
    open(p, "wb").write(b"")
    bad_load(c, p, "not a zip archive (empty file)")

    p = os.path.join(d, "noshp.zip")
    write_zip(p, {k: v for k, v in good.items() if not k.endswith(".shp")})
    bad_load(c, p, "the zip holds no .shp file")

    p = os.path.join(d, "nodbf.zip")
    write_zip(p, {k: v for k, v in good.items() if not k.endswith(".dbf")})
    bad_load(c, p, "the zip holds no %s.dbf" % base)

    p = os.path.join(d, "noshx.zip")
    write_zip(p, {k: v for k, v in good.items() if not k.endswith(".shx")})
    bad_load(c, p, "the zip holds no %s.shx" % base)

    # a truncated zip file (the download stopped)
    raw = open(HAND_ZIP(), "rb").read()
    p = os.path.join(d, "cut.zip")
    open(p, "wb").write(raw[:len(raw) // 2])
    bad_load(c, p, "not a valid zip archive: Not a zip archive")

    # a flipped byte inside the deflated .shp: CRC or inflate error
    p = os.path.join(d, "corrupt.zip")
    with zipfile.ZipFile(HAND_ZIP()) as z:
        info = z.getinfo(base + ".shp")
    off = info.header_offset + 30 + len(info.filename) + len(info.extra) + 40
    bad = bytearray(raw)
    bad[off] ^= 0x55
    open(p, "wb").write(bytes(bad))
    try:
        c.execute("select * from load_tracts(?)", (p,)).fetchall()
        raise AssertionError("corrupt zip loaded")
    except sqlite3.Error as e:
        assert str(e).startswith("load_tracts: %s: member %s.shp is corrupt: "
                                 % (p, base)), str(e)

    # the .shp's header fields patched (local header and central
    # directory alike): a wrong CRC, a declared size too small or too large
    def patched(name, field, value):
        b = bytearray(raw)
        with zipfile.ZipFile(HAND_ZIP()) as z:
            info = z.getinfo(name)
        local = {"crc": 14, "usize": 22}[field]
        struct.pack_into("<I", b, info.header_offset + local, value)
        k = b.find(b"PK\x01\x02")
        while k >= 0:
            n = struct.unpack_from("<H", b, k + 28)[0]
            if bytes(b[k + 46:k + 46 + n]) == name.encode():
                struct.pack_into("<I", b, k + {"crc": 16, "usize": 24}[field], value)
                break
            k = b.find(b"PK\x01\x02", k + 4)
        assert k >= 0
        return bytes(b), info
    shp = base + ".shp"
    data, info = patched(shp, "crc", 0x12345678)
    p = os.path.join(d, "crc.zip")
    open(p, "wb").write(data)
    bad_load(c, p, "member %s is corrupt: CRC error" % shp)
    raw_small, _ = patched(shp, "usize", info.file_size - 8)
    p = os.path.join(d, "small.zip")
    open(p, "wb").write(raw_small)
    bad_load(c, p, "member %s is corrupt: it inflates past its declared size"
             % shp)
    raw_big, _ = patched(shp, "usize", info.file_size + 8)
    p = os.path.join(d, "big.zip")
    open(p, "wb").write(raw_big)
    bad_load(c, p, "member %s is corrupt: it inflates to %d of its declared "
             "%d bytes" % (shp, info.file_size, info.file_size + 8))

    # stored (not deflated) members load as the deflated ones do
    p = os.path.join(d, "stored", base + ".zip")
    os.makedirs(os.path.dirname(p), exist_ok=True)
    write_zip(p, good, zipfile.ZIP_STORED)
    c2 = connect()
    got = c2.execute("select tracts, error from load_tracts(?)", (p,)).fetchall()
    want = c2.execute("select count(*) from tracts").fetchone()
    c3 = connect()
    c3.execute("select * from load_tracts(?)", (HAND_ZIP(),)).fetchall()
    eq(got, [(want[0], None)])
    eq(c2.execute("select GEOID, hex(geometry) from tracts order by 1").fetchall(),
       c3.execute("select GEOID, hex(geometry) from tracts order by 1").fetchall())

    # a .shp member truncated inside a valid zip
    p = os.path.join(d, "shortshp.zip")
    m = dict(good)
    m[base + ".shp"] = m[base + ".shp"][:300]
    write_zip(p, m)
    bad_load(c, p, "record 2: unreadable shape: Error in fread() reading "
                   "object of size 136 at offset 236 from .shp file")

    # a .dbf without the GEOID field
    p = os.path.join(d, "nogeoid.zip")
    m = dict(good)
    m[base + ".dbf"] = m[base + ".dbf"].replace(b"GEOID" + b"\x00" * 6 + b"C",
                                                b"GEOXX" + b"\x00" * 6 + b"C", 1)
    write_zip(p, m)
    bad_load(c, p, "the .dbf has no field GEOID")

    # .dbf with fewer records than the .shp
    p = os.path.join(d, "dbfcount.zip")
    m = dict(good)
    dbf = bytearray(m[base + ".dbf"])
    struct.pack_into("<I", dbf, 4, 5)
    m[base + ".dbf"] = bytes(dbf)
    write_zip(p, m)
    bad_load(c, p, "the .dbf has 5 records but the .shp has 8")

    # a point shapefile
    p = os.path.join(FX, "point", base + ".zip")
    bad_load(c, p, "the shapefile holds POINT shapes, not polygons")

    # member paths that escape
    p = os.path.join(d, "slip.zip")
    m = dict(good)
    m["../../etc/" + base + ".prj"] = b"x"
    write_zip(p, m)
    bad_load(c, p, "member ../../etc/%s.prj has an unsafe path" % base)

    # two shapefiles in one zip
    p = os.path.join(d, "two.zip")
    m = dict(good)
    m["other.shp"] = m[base + ".shp"]
    write_zip(p, m)
    bad_load(c, p, "the zip holds more than one .shp")

    # a .prj PROJ cannot read
    p = os.path.join(d, "proj.zip")
    m = dict(good)
    m[base + ".prj"] = b'PROJCS["NAD_1983_UTM_Zone_18N",GEOGCS["GCS_North_American_1983"]]'
    write_zip(p, m)
    bad_load(c, p, "the .prj is not a coordinate system PROJ can read: "
                   "missing CONVERSION node")

    # file named for another state
    p = os.path.join(d, "cb_2019_25_tract_500k.zip")
    write_zip(p, {k.replace("_44_", "_25_"): v for k, v in good.items()})
    bad_load(c, p, "record 1 has STATEFP '44' but the file is named for state 25")


def patch_zip_size(src, dst, member, new_size):
    """Copy a zip, declaring new_size as member's uncompressed size in both
    the local header and the central directory."""
    raw = bytearray(open(src, "rb").read())
    with zipfile.ZipFile(src) as z:
        info = z.getinfo(member)
    struct.pack_into("<I", raw, info.header_offset + 22, new_size)
    cd = raw.rfind(b"PK\x01\x02" + raw[0:0])
    i = 0
    while True:
        i = raw.find(b"PK\x01\x02", i)
        if i < 0:
            break
        nlen = struct.unpack_from("<H", raw, i + 28)[0]
        if raw[i + 46:i + 46 + nlen].decode() == member:
            struct.pack_into("<I", raw, i + 24, new_size)
        i += 4
    open(dst, "wb").write(bytes(raw))


def test_huge_declared_sizes():
    c = loaded_conn()
    base = "cb_2019_44_tract_500k"
    p = os.path.join(FX, "bad", "huge.zip")
    patch_zip_size(HAND_ZIP(), p, base + ".shp", 0xfffffff0)
    bad_load(c, p, "member %s.shp declares 4294967280 bytes (limit 2147483648)"
             % base)
    # a .shx claiming a huge record count with a tiny .shp
    good = zip_members(HAND_ZIP())
    m = dict(good)
    shx = bytearray(m[base + ".shx"])
    struct.pack_into(">I", shx, 24, 0x7ffffff0)   # file length in words
    m[base + ".shx"] = bytes(shx)
    p = os.path.join(FX, "bad", "manyrecs.zip")
    write_zip(p, m)
    before = snapshot(c)
    try:
        c.execute("select * from load_tracts(?)", (p,)).fetchall()
        raise AssertionError("absurd record count loaded")
    except sqlite3.Error as e:
        assert str(e).startswith("load_tracts: %s: " % p), str(e)
    eq(snapshot(c), before)


def test_fuzzed_shapefiles_never_crash():
    """Random byte flips in .shp/.shx/.dbf: an error or a load, never a crash;
    a failed load leaves the database as it was."""
    c = loaded_conn()
    good = zip_members(HAND_ZIP())
    base = "cb_2019_44_tract_500k"
    rnd = random.Random(5)
    d = os.path.join(FX, "fuzz")
    os.makedirs(d, exist_ok=True)
    nErr = nOk = 0
    for i in range(150 if not ASAN else 60):
        m = dict(good)
        part = base + rnd.choice([".shp", ".shp", ".shx", ".dbf"])
        b = bytearray(m[part])
        for _ in range(rnd.randint(1, 6)):
            k = rnd.randrange(len(b))
            b[k] = rnd.randrange(256)
        m[part] = bytes(b)
        p = os.path.join(d, "f%d" % i, base + ".zip")
        os.makedirs(os.path.dirname(p), exist_ok=True)
        write_zip(p, m)
        before = snapshot(c)
        try:
            c.execute("select * from load_tracts(?)", (p,)).fetchall()
            nOk += 1
            c.execute("select tract_of(-71.45, 41.55)").fetchone()
        except sqlite3.Error as e:
            assert str(e).startswith("load_tracts: ") or \
                str(e).startswith("tract_of: "), str(e)
            if str(e).startswith("load_tracts: "):
                eq(snapshot(c), before)
            nErr += 1
    assert nErr > 10, (nErr, nOk)


def test_directory_with_a_bad_file():
    d = os.path.join(FX, "mixed")
    os.makedirs(d, exist_ok=True)
    shutil.copy(SYN("25"), d)
    open(os.path.join(d, "cb_2019_44_tract_500k.zip"), "wb").write(b"<html>")
    c = connect()
    rows = c.execute("select state, tracts, error from load_tracts(?)",
                     (d,)).fetchall()
    eq(rows[0][0], "25")
    eq(rows[0][2], None)
    eq(rows[1], (None, 0, "load_tracts: %s/cb_2019_44_tract_500k.zip: not a "
                 "zip archive (starts with '<html>')" % d))
    eq(c.execute("select group_concat(distinct STATEFP) from tracts").fetchone()[0],
       "25")


def test_malformed_geometry_in_table():
    c = connect()
    c.execute("select * from load_tracts(?)", (HAND_ZIP(),)).fetchall()
    c.execute("update tracts set geometry=x'0001' where GEOID='44007000200'")
    expect_error(c, "select tract_of(-71.45, 41.55)", (),
                 "tract_of: tract '44007000200' has a malformed geometry")
    c.execute("update tracts set geometry=randomblob(100) where GEOID='44007000200'")
    expect_error(c, "select tract_of(-71.45, 41.55)", (),
                 "tract_of: tract '44007000200' has a malformed geometry")
    c.execute("delete from tracts where GEOID='44007000200'")
    eq(c.execute("select tract_of(-71.45, 41.55)").fetchone()[0], "44007000100")


def test_directonly_from_schema():
    c = connect()
    for i, table in enumerate(("load_tracts", "tracts_assign_rows")):
        c.execute("create view v%d as select * from %s('x')" % (i, table))
        expect_error(c, "select * from v%d" % i, (),
                     "unsafe use of virtual table \"%s\"" % table)
    for i, call in enumerate(("tracts_config('repair', 0)",
                              "tracts_assign_points(1, 2, 3, 4)")):
        c.execute("create table t%d(x)" % i)
        c.execute("create trigger tr%d after insert on t%d begin select %s; end"
                  % (i, i, call))
        expect_error(c, "insert into t%d values(1)" % i, (),
                     "unsafe use of %s()" % call.split("(")[0])


# ------------------------------------------------------------ tracts_assign

def assign_fixture(c, n=20000, seed=3):
    """Random points over RI's box, every tract vertex of a sample, and bad
    rows, in table pts(id INTEGER PRIMARY KEY, lon, lat)."""
    c.execute("select * from load_tracts(?)", (SYN("44"),)).fetchall()
    box = c.execute("select min(minx), min(miny), max(maxx), max(maxy) "
                    "from tracts_rtree").fetchone()
    rnd = random.Random(seed)
    rows = [(rnd.uniform(box[0] - 0.1, box[2] + 0.1),
             rnd.uniform(box[1] - 0.1, box[3] + 0.1)) for _ in range(n)]
    rows += [(None, 41.5), ("abc", 41.5), (-71.4, 95.0), ("-71.4", " 41.5 "),
             (float("inf"), 41.0), (b"\x01", 1.0)]
    c.execute("drop table if exists pts")
    c.execute("create table pts(id INTEGER PRIMARY KEY, lon, lat)")
    c.executemany("insert into pts(lon, lat) values(?, ?)", rows)
    # vertices: points on shared edges and corners
    try:
        c.load_extension("mod_spatialite")
        c.execute("insert into pts(lon, lat) select ST_X(ST_PointN(ST_ExteriorRing("
                  "ST_GeometryN(geometry, 1)), 5)), ST_Y(ST_PointN(ST_ExteriorRing("
                  "ST_GeometryN(geometry, 1)), 5)) from tracts")
    except sqlite3.Error:
        pass
    return c.execute("select count(*) from pts").fetchone()[0]


def test_assign_matches_tract_of_for_any_worker_count():
    c = connect()
    n = assign_fixture(c)
    ref = c.execute("select id, tract_of(lon, lat) from pts order by id").fetchall()
    for w in (1, 2, 3, 7):
        got = c.execute("select tracts_assign('pts', 'lon', 'lat', 'out', ?)",
                        (w,)).fetchone()[0]
        eq(got, n, "rows written")
        eq(c.execute("select id, geoid from out order by id").fetchall(), ref,
           "workers=%d" % w)
    how = dict(c.execute("select how, count(*) from out group by how").fetchall())
    assert how["inside"] > 1000 and how["outside"] > 100, how
    assert how.get("edge", 0) >= 30, how
    eq(how["invalid"], 5, "NULL, text, |lat| > 90, inf, blob")
    eq(c.execute("select geoid from out where how in ('invalid', 'outside') "
                 "and geoid is not null").fetchall(), [])
    # numeric text counts as the number
    eq(c.execute("select how from out join pts using(id) where lon='-71.4'")
       .fetchone()[0] in ("inside", "edge", "outside"), True)
    eq(c.execute("select typeof(id), typeof(geoid) from out where how='inside' "
                 "limit 1").fetchone(), ("integer", "text"))
    no_zombies()


def test_assign_chunk_boundaries():
    """Sources of 0 rows, one row, and around the 16,384-point chunks the
    helpers take and the writer waits for: the same rows as tract_of."""
    c = connect()
    assign_fixture(c, n=40000)
    for n in (0, 1, 16383, 16384, 16385, 32769):
        c.execute("drop table if exists p2")
        c.execute("create table p2 as select * from pts order by id limit ?", (n,))
        ref = c.execute("select rowid, tract_of(lon, lat) from p2 "
                        "order by rowid").fetchall()
        for w in (1, 2, 3):
            eq(c.execute("select tracts_assign('p2', 'lon', 'lat', 'o2', ?)",
                         (w,)).fetchone()[0], n, "rows, n=%d w=%d" % (n, w))
            got = c.execute("select id, geoid from o2 order by id").fetchall()
            eq(len(got), len(ref), "n=%d w=%d" % (n, w))
            eq([g for g, r in zip(got, ref) if g != r][:3], [],
               "first rows unlike tract_of, n=%d w=%d" % (n, w))
    no_zombies()


def no_zombies():
    try:
        r = os.waitpid(-1, os.WNOHANG)
        raise AssertionError("a child process is left: %r" % (r,))
    except ChildProcessError:
        pass


def test_assign_helper_killed():
    """A helper killed while the points are read, or (":write") once they
    are all read, while the parent writes rows and waits for its chunk."""
    import re
    c = connect()
    assign_fixture(c, n=120000)
    c.execute("create table out(x)")
    c.execute("insert into out values('before')")
    for hook in ("1", "1:write", "2:write"):
        os.environ["TRACTS_TEST_HELPER_CRASH"] = hook
        try:
            try:
                c.execute("select tracts_assign('pts', 'lon', 'lat', 'out', 3)"
                          ).fetchall()
                raise AssertionError("no error from a killed helper")
            except sqlite3.Error as e:
                msg = str(e)
        finally:
            del os.environ["TRACTS_TEST_HELPER_CRASH"]
        m = re.fullmatch(r"tracts_assign: helper (\d) \(pid \d+\) was killed by "
                         r"signal 9 while on source rows (\d+) to (\d+) "
                         r"\(rowid \d+ to \d+\)", msg)
        assert m and m.group(1) == hook[0], (hook, msg)
        eq(int(m.group(3)) - int(m.group(2)), 16383, "one chunk")
        eq(c.execute("select * from out").fetchall(), [("before",)],
           "dest unchanged")
        eq(c.execute("select count(*) from sqlite_schema where name='out'")
           .fetchone()[0], 1)
        no_zombies()
    # and the next call works
    eq(c.execute("select tracts_assign('pts', 'lon', 'lat', 'out', 2)")
       .fetchone()[0] > 0, True)


def test_assign_internals_refuse_sql():
    """tracts_assign reads and writes rows through tracts_assign_points and
    tracts_assign_rows, handing them its job by sqlite3_bind_pointer; from
    SQL they refuse, whatever they are given."""
    c = connect()
    n = assign_fixture(c, n=100)
    for sql in ("select tracts_assign_points(1, 2, 3, 4)",
                "select tracts_assign_points(null, rowid, lon, lat) from pts",
                "select tracts_assign_points(x'00', 1, 2, 3)",
                "select tracts_assign_points('tracts_assign_points', 1, 2, 3)"):
        expect_error(c, sql, (), "tracts_assign_points is internal to tracts_assign")
    for sql in ("select * from tracts_assign_rows",
                "select * from tracts_assign_rows(1)",
                "select * from tracts_assign_rows(null)",
                "select id, k0 from tracts_assign_rows where job = 'x'",
                "select * from tracts_assign_rows('tracts_assign_rows')"):
        expect_error(c, sql, (), "tracts_assign_rows is internal to tracts_assign")
    # a table or a function of the user's under those names: an error, the
    # destination untouched
    c.execute("create table out(x)")
    c.execute("create table tracts_assign_rows(x)")
    expect_error(c, "select tracts_assign('pts', 'lon', 'lat', 'out')", (),
                 "tracts_assign: cannot write \"main\".\"out\": "
                 "'tracts_assign_rows' is not a function")
    c.execute("drop table tracts_assign_rows")
    c.create_function("tracts_assign_points", 4, lambda *a: None)
    expect_error(c, "select tracts_assign('pts', 'lon', 'lat', 'out')", (),
                 "tracts_assign: read 0 of the source's %d rows (a virtual "
                 "table that changed, or tracts_assign_points redefined)" % n)
    eq(c.execute("select count(*) from out").fetchone()[0], 0)
    eq(c.execute("select count(*) from pragma_table_info('out')").fetchone()[0], 1)


def test_assign_interrupt():
    """Interrupts at many moments: the call fails with one message, the
    destination is unchanged and the connection is never left inside a
    transaction (a later write would be lost at close), on a file
    database."""
    path = os.path.join(FX, "interrupt.db")
    for f in (path, path + "-journal"):
        if os.path.exists(f):
            os.remove(f)
    m = connect()
    n = assign_fixture(m, n=300000)          # built in memory, then saved
    m.execute("create table out(x)")
    m.execute("create table log(x)")
    m.execute("vacuum into ?", (path,))
    m.close()
    c = connect(path)
    t0 = time.time()
    c.execute("select tracts_assign('pts', 'lon', 'lat', 'o2', 2)").fetchall()
    whole = time.time() - t0
    seen = []
    for k in range(12):
        for w in (1, 2, 3):
            t = threading.Timer(whole * k / 10, c.interrupt)
            t.start()
            try:
                c.execute("select tracts_assign('pts', 'lon', 'lat', 'out', ?)",
                          (w,)).fetchall()
                t.cancel()
                c.execute("drop table out")
                c.execute("create table out(x)")
            except sqlite3.Error as e:
                t.join()
                seen.append(str(e))
                # "interrupted" alone: SQLite stopped the statement before
                # or after the call ran
                assert str(e) in ("tracts_assign: interrupted",
                                  "interrupted"), str(e)
                eq(c.in_transaction, False, "left inside a transaction")
                # unchanged; or, when SQLite stopped the host's statement
                # after the call had committed, complete
                got = c.execute("select count(*) from out").fetchone()[0]
                assert got == 0 or (got == n and str(e) == "interrupted"), \
                    (str(e), got)
                c.execute("drop table out")
                c.execute("create table out(x)")
            c.execute("insert into log values(?)", (k,))
            c.commit()
    assert seen, "no call was interrupted"
    no_zombies()
    c.close()
    c = sqlite3.connect(path)
    eq(c.execute("select count(*) from log").fetchone()[0], 36,
       "writes after interrupted calls kept")
    c.close()
    c = connect(path)
    eq(c.execute("select tracts_assign('pts', 'lon', 'lat', 'out', 2)")
       .fetchone()[0], n)


def test_assign_interrupt_while_checking_names():
    """An interrupt that stops tracts_assign's own lookups of the source
    table and its columns is an interrupt, never 'no such table' or 'no
    such column' (an authorizer interrupts at the lookup's prepare)."""
    c = connect()
    assign_fixture(c, n=2000)
    seen = []
    for look in ("table_list", "table_xinfo"):
        def auth(action, a1, a2, db, src, look=look):
            if a1 and look in str(a1) or a2 and look in str(a2):
                seen.append((action, a1, a2))
                c.interrupt()
            return sqlite3.SQLITE_OK
        c.set_authorizer(auth)
        try:
            c.execute("select tracts_assign('pts', 'lon', 'lat', 'out', 1)").fetchall()
            raise AssertionError("not interrupted (%s)" % look)
        except sqlite3.OperationalError as e:
            eq(str(e), "tracts_assign: interrupted", look)
        finally:
            c.set_authorizer(None)
        assert seen, "the authorizer never saw %s" % look
        eq(c.in_transaction, False)
        eq(c.execute("select count(*) from sqlite_master where name='out'").fetchone()[0], 0)
    # and without the interrupt, the call works
    eq(c.execute("select tracts_assign('pts', 'lon', 'lat', 'out', 1)").fetchone()[0],
       c.execute("select count(*) from pts").fetchone()[0])


def test_assign_interrupt_inside_a_transaction():
    """Inside the caller's transaction an interrupt leaves either that
    transaction as it was (the destination unchanged), or, when it lands
    while rows are written, rolls all of it back, as SQLite does for any
    interrupted write; never a half-written destination."""
    c = connect()
    n = assign_fixture(c, n=300000)
    c.execute("create table out(x)")
    c.execute("insert into out values('before')")
    c.execute("create table z(x)")
    t0 = time.time()
    c.execute("select tracts_assign('pts', 'lon', 'lat', 'o2', 1)").fetchall()
    whole = time.time() - t0
    kept = rolled = 0
    for k in range(12):
        c.execute("begin")
        c.execute("insert into z values(?)", (k,))
        t = threading.Timer(whole * k / 10, c.interrupt)
        t.start()
        try:
            c.execute("select tracts_assign('pts', 'lon', 'lat', 'out', 1)"
                      ).fetchall()
            t.cancel()
            eq(c.execute("select count(*) from out").fetchone()[0], n)
            c.execute("rollback")
            continue
        except sqlite3.Error as e:
            t.join()
            msg = str(e)
        got = c.execute("select count(*) from out").fetchone()[0]
        if c.in_transaction:
            kept += 1
            assert msg in ("tracts_assign: interrupted", "interrupted"), msg
            eq(c.execute("select count(*) from z where x=?", (k,)).fetchone()[0], 1)
            # unchanged; or, when SQLite stopped the host's statement after
            # the call had finished, complete
            if not (got == n and msg == "interrupted"):
                eq(c.execute("select * from out").fetchall(), [("before",)], msg)
            c.execute("rollback")
        else:
            rolled += 1
            eq(msg, "tracts_assign: interrupted (the transaction it ran in "
               "was rolled back)")
            eq(c.execute("select count(*) from z where x=?", (k,)).fetchone()[0], 0)
            eq(c.execute("select * from out").fetchall(), [("before",)], msg)
    assert kept + rolled, "no call was interrupted"
    no_zombies()


def test_assign_memory_and_temp_tables():
    c = connect()
    n = assign_fixture(c, n=40000)
    c.execute("create temp table tpts as select * from pts")
    eq(c.execute("select tracts_assign('temp.tpts', 'lon', 'lat', 'temp.tout', 2)")
       .fetchone()[0], n)
    eq(c.execute("select count(*) from temp.tout").fetchone()[0], n)
    eq(c.execute("select count(*) from sqlite_schema where name='tout'")
       .fetchone()[0], 0, "created in temp, not main")
    c.execute("attach ':memory:' as aux")
    c.execute("create table aux.p2 as select * from pts")
    eq(c.execute("select tracts_assign('aux.p2', 'lon', 'lat', 'aux.o2', 3)")
       .fetchone()[0], n)
    eq(c.execute("select count(*) from aux.o2 join temp.tout using(id) "
                 "where aux.o2.geoid is not temp.tout.geoid").fetchone()[0], 0)


def test_assign_busy_python_thread():
    c = connect()
    n = assign_fixture(c, n=100000)
    stop = []

    def spin():
        x = 0
        while not stop:
            x += 1
    th = threading.Thread(target=spin)
    th.start()
    try:
        for _ in range(3):
            eq(c.execute("select tracts_assign('pts', 'lon', 'lat', 'out', 2)")
               .fetchone()[0], n)
    finally:
        stop.append(1)
        th.join()
    no_zombies()


def test_assign_hostile_identifiers():
    c = connect()
    assign_fixture(c, n=2000)
    src = 'we"ird; drop table pts;-- ü'
    c.execute('create table "we""ird; drop table pts;-- ü"("i d" INTEGER PRIMARY KEY, '
              '"lo""n", "la t;")')
    c.execute('insert into "we""ird; drop table pts;-- ü" select * from pts')
    dst = "o'ut\"; drop table pts;--"
    n = c.execute("select tracts_assign(?, 'lo\"n', 'la t;', ?, 2)",
                  (src, dst)).fetchone()[0]
    eq(n, c.execute("select count(*) from pts").fetchone()[0])
    eq(c.execute('select count(*) from "o\'ut""; drop table pts;--"').fetchone()[0], n)
    expect_error(c, "select tracts_assign('nope', 'lon', 'lat', 'out')", (),
                 "tracts_assign: no such table: nope")
    expect_error(c, "select tracts_assign('pts', 'lonx', 'lat', 'out')", (),
                 "tracts_assign: no such column: lonx")
    c.execute("create view vpts as select * from pts")
    expect_error(c, "select tracts_assign('vpts', 'lon', 'lat', 'out')", (),
                 "tracts_assign: 'vpts' has no rowid (a view or a WITHOUT ROWID table)")
    expect_error(c, "select tracts_assign('pts', 'lon', 'lat', 'pts')", (),
                 "tracts_assign: the destination 'pts' is the source")
    expect_error(c, "select tracts_assign('pts', 'lon', 'lat', 'tracts')", (),
                 "tracts_assign: 'tracts' is a table of the extension; choose "
                 "another destination")
    expect_error(c, "select tracts_assign('pts', 'lon', 'lat', 'out', 0)", (),
                 "tracts_assign: workers must be an integer from 1 to 64, got '0'")
    expect_error(c, "select tracts_assign('pts', 'lon', 'lat', 'out', 'two')", (),
                 "tracts_assign: workers must be an integer from 1 to 64, got 'two'")
    expect_error(c, "select tracts_assign(NULL, 'lon', 'lat', 'out')", (),
                 "tracts_assign: the source table is NULL")
    expect_error(c, "select tracts_assign('pts', 'lon', '', 'out')", (),
                 "tracts_assign: the latitude column is empty")
    expect_error(c, "select tracts_assign('pts', 'lon', 'lat')", (),
                 "wrong number of arguments to function tracts_assign()")
    expect_error(c, "create table x as select tracts_assign('pts', 'lon', "
                 "'lat', 'out') as n", (), "tracts_assign: cannot run inside a "
                 "statement that writes; call it on its own")
    eq(c.in_transaction, False)
    # a virtual table as the source (read NOT INDEXED, in rowid order)
    eq(c.execute("select tracts_assign('tracts_rtree', 'minx', 'miny', 'o3', 2)")
       .fetchone()[0], c.execute("select count(*) from tracts_rtree").fetchone()[0])
    eq(c.execute("select count(*) from pts").fetchone()[0] > 0, True, "pts intact")
    d = connect()
    expect_error(d, "select tracts_assign('x', 'lon', 'lat', 'out')", (),
                 "tracts_assign: no tracts loaded (run load_tracts)")


def test_nearest_fallback():
    c = connect()
    c.execute("select * from load_tracts(?)", (HAND_ZIP(),)).fetchall()
    # 0.001 degree east of the island's edge at 41.58 N: about 83 m
    x, y = -70.999, 41.58
    t = lambda: c.execute("select tract_of(?, ?)", (x, y)).fetchone()[0]
    eq(t(), None, "off by default")
    eq(c.execute("select tracts_config('nearest_m', 100)").fetchone()[0], 100)
    eq(t(), "44009000800", "within 100 m")
    c.execute("select tracts_config('nearest_m', 50)")
    eq(t(), None, "not within 50 m")
    c.execute("select tracts_config('nearest_m', 100)")
    c.execute("create table p(id INTEGER PRIMARY KEY, lon, lat)")
    c.executemany("insert into p(lon, lat) values(?, ?)",
                  [(x, y), (-71.45, 41.55), (-69.0, 41.0), (None, 1)])
    for w in (1, 2):
        c.execute("select tracts_assign('p', 'lon', 'lat', 'o', ?)", (w,))
        eq(c.execute("select id, geoid, how from o order by id").fetchall(),
           [(1, "44009000800", "nearest"), (2, "44007000100", "inside"),
            (3, None, "outside"), (4, None, "invalid")])
    expect_error(c, "select tracts_config('nearest_m', -1)", (),
                 "tracts_config: nearest_m must be an integer from 0 to 100000, got '-1'")


def test_assign_while_monitor_runs():
    """Fork while the extension's own sampler thread runs: helpers must not
    inherit it running or a held lock, and their CPU shows in the samples."""
    c = connect()
    n = assign_fixture(c, n=200000)
    tasks = lambda: len(os.listdir("/proc/self/task"))
    before = tasks()
    c.execute("select monitor_start(0.01)")
    for w in (2, 3):
        eq(c.execute("select tracts_assign('pts', 'lon', 'lat', 'out', ?)",
                     (w,)).fetchone()[0], n)
    c.execute("select monitor_stop()")
    no_zombies()
    eq(tasks(), before, "sampler thread joined")
    marks = [r[0] for r in c.execute("select label from monitor_marks")]
    assert "assign: write" in marks and "index built" in marks, marks


def test_assign_inside_write_transaction():
    c = connect()
    n = assign_fixture(c, n=50000)
    c.execute("begin")
    c.execute("insert into pts(lon, lat) values(-71.4, 41.6)")
    eq(c.execute("select tracts_assign('pts', 'lon', 'lat', 'out', 2)")
       .fetchone()[0], n + 1)
    c.execute("rollback")
    eq(c.execute("select count(*) from sqlite_schema where name='out'")
       .fetchone()[0], 0, "rolled back with the transaction")


# ------------------------------------------------------------ sqlite3 shell

def shell(db, script, env=None):
    return subprocess.run(["sqlite3", "-batch", db], input=script,
                          capture_output=True, text=True, env=env)


# ---------------------------------------------------------- saved index

def idx_hash(h, data):
    data = bytes(data) + b"\0" * ((-len(data)) % 8)
    for (w,) in struct.iter_unpack("<Q", data):
        h = ((h ^ w) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def idx_rehash(c):
    """Recompute the saved index's checksum after a test forged a part."""
    parts = dict(c.execute("select part, data from tracts_index"))
    h = 0xcbf29ce484222325
    for name in ("keys", "keyoff", "v", "node", "cell", "leaf"):
        h = idx_hash(h, parts[name])
    hdr = list(struct.unpack("<14Q", parts["header"]))
    hdr[13] = h
    c.execute("update tracts_index set data=? where part='header'",
              (struct.pack("<14Q", *hdr),))


def index_source(c):
    """How the connection's index came to be: 'index read' or 'index built'."""
    c.execute("select monitor_start(0.01)")
    c.execute("select tract_of(0, 0)").fetchone()
    c.execute("select monitor_stop()")
    marks = [r[0] for r in c.execute("select label from monitor_marks")]
    return [m for m in marks if m in ("index read", "index built")]


def test_saved_index_is_read_back_and_checked():
    d = os.path.join(FX, "saved-index")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    gen("--out", d, "--states", "RI,CT", "--tracts", "300", "--seed", "3")
    db = os.path.join(d, "t.db")
    c = connect(db)
    c.execute("select count(*) from load_tracts(?)", (d,)).fetchone()
    x0, x1, y0, y1 = c.execute("select min(minx), max(maxx), min(miny), "
                               "max(maxy) from tracts_rtree").fetchone()
    rnd = random.Random(5)
    pts = [(rnd.uniform(x0, x1), rnd.uniform(y0, y1)) for _ in range(3000)]
    c.execute("create table pts(id INTEGER PRIMARY KEY, lon, lat)")
    c.executemany("insert into pts(lon, lat) values(?, ?)", pts)

    def answers(conn):
        return [r[0] for r in conn.execute(
            "select tract_of(lon, lat) from pts order by id")]

    c.execute("select tracts_config('persist_index', 0)")
    ref = answers(c)
    assert len(set(ref)) > 50, "the points hit many tracts"
    eq(c.execute("select count(*) from tracts_index").fetchone()[0], 0,
       "persist_index 0 writes nothing")
    c.close()
    c = connect(db)
    eq(index_source(c), ["index built"])
    eq(answers(c), ref)
    eq(sorted(r[0] for r in c.execute("select part from tracts_index")),
       ["cell", "header", "keyoff", "keys", "leaf", "node", "v"])
    c.close()
    c = connect(db)
    eq(index_source(c), ["index read"])
    eq(answers(c), ref, "answers from the saved index")
    c.execute("select tracts_assign('pts', 'lon', 'lat', 'out', 2)")
    eq([r[0] for r in c.execute("select geoid from out order by id")], ref)
    c.close()

    def forge(sql, params=(), rehash=True):
        w = connect(db)
        w.execute(sql, params)
        if rehash:
            idx_rehash(w)
        w.close()
        r = connect(db)
        src = index_source(r)
        got = answers(r)
        r.close()
        eq(src, ["index built"], "a damaged index is rebuilt: " + sql)
        eq(got, ref, "answers after " + sql)

    # accidental damage: the checksum catches it
    forge("update tracts_index set data=cast(substr(data, 1, 1000) || "
          "x'ff' || substr(data, 1002) as blob) where part='v'", rehash=False)
    forge("update tracts_index set data=substr(data, 1, length(data)-4) "
          "where part='cell'", rehash=False)
    forge("update tracts_index set generation=generation+1 where part='leaf'",
          rehash=False)
    # forged with a valid checksum: the structure check catches it
    w = connect(db)
    ncell = w.execute("select length(data)/4 from tracts_index where "
                      "part='cell'").fetchone()[0]
    w.close()
    forge("update tracts_index set data=? where part='cell'",
          (struct.pack("<I", 0xC0000000) * ncell,))         # every cell a loop
    forge("update tracts_index set data=? where part='cell'",
          (struct.pack("<I", 0x80000000 | 0x3fffffff) * ncell,))  # far leaves
    w = connect(db)
    leaf = bytearray(w.execute("select data from tracts_index where "
                               "part='leaf'").fetchone()[0])
    w.close()
    for off in range(0, len(leaf), 12):
        leaf[off:off+4] = b"\xff\xff\xff\x7f"   # runs and counts out of range
    forge("update tracts_index set data=? where part='leaf'", (bytes(leaf),))
    forge("update tracts_index set data=? where part='keyoff'",
          (b"\xff" * 4 * 600,))
    # a changed table is never answered from an old index
    w = connect(db)
    victim = ref[0]
    w.execute("delete from tracts where GEOID=?", (victim,))
    got = [r[0] for r in w.execute("select tract_of(lon, lat) from pts "
                                   "order by id limit 1")]
    assert got[0] != victim, got
    w.close()
    r = connect(db)
    eq(index_source(r), ["index read"], "the rebuilt index was saved")
    eq(answers(r)[1:], [None if a == victim else a for a in ref[1:]])
    r.close()
    # a read-only connection reads the index but never writes one
    r = sqlite3.connect("file:%s?mode=ro" % db, uri=True, isolation_level=None)
    r.enable_load_extension(True)
    r.load_extension(EXT)
    eq(index_source(r), ["index read"])
    r.close()


def encoded_variant(name, name_bytes, cpg, ldid=None):
    """The hand-made zip with record 1's NAME set to name_bytes (raw), its
    .cpg replaced by cpg (None: no .cpg) and the DBF's language driver
    byte set to ldid; returns the new zip's path."""
    src = zipfile.ZipFile(HAND_ZIP())
    d = os.path.join(FX, "enc-" + name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    out = os.path.join(d, "cb_2019_44_tract_500k.zip")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for m in src.namelist():
            data = src.read(m)
            if m.endswith(".cpg"):
                continue
            if m.endswith(".dbf"):
                data = bytearray(data)
                hl = struct.unpack("<H", data[8:10])[0]
                off, i = 1, 32
                while data[i] != 0x0D:
                    fname = data[i:i+11].split(b"\0")[0]
                    width = data[i+16]
                    if fname == b"NAME":
                        break
                    off += width
                    i += 32
                data[hl+off:hl+off+width] = name_bytes.ljust(width, b" ")
                if ldid is not None:
                    data[29] = ldid
                data = bytes(data)
            z.writestr(m, data)
        if cpg is not None:
            z.writestr("cb_2019_44_tract_500k.cpg", cpg)
    return out


def test_dbf_text_in_the_encoding_its_cpg_names():
    def name_of(path):
        c = connect()
        c.execute("select count(*) from load_tracts(?)", (path,)).fetchone()
        return c.execute("select NAME from tracts where GEOID='44007000100'"
                         ).fetchone()[0]
    latin = "Cañón City".encode("latin-1")
    eq(name_of(encoded_variant("latin1", latin, "ISO-8859-1")), "Cañón City")
    eq(name_of(encoded_variant("esri", latin, "88591")), "Cañón City")
    eq(name_of(encoded_variant("cp1252", b"\x93Quoted\x94", "1252\r\n")),
       "\u201cQuoted\u201d")
    eq(name_of(encoded_variant("ldid87", b"\x93Quoted\x94", None, 0x57)),
       "\u201cQuoted\u201d")
    eq(name_of(encoded_variant("utf8", "Cañón City".encode(), "UTF-8")),
       "Cañón City")
    eq(name_of(encoded_variant("nocpg-utf8", "Cañón City".encode(), None)),
       "Cañón City")
    for tag, cpg in (("lying", "UTF-8"), ("nocpg", None)):
        z = encoded_variant(tag, latin, cpg)
        c = connect()
        expect_error(c, "select * from load_tracts(?)", (z,),
                     "load_tracts: %s: record 1: field NAME is not valid "
                     "UTF-8 (for text in another encoding, a .cpg naming it, "
                     "such as ISO-8859-1, lets it load)" % z)
        eq(snapshot(c)["schema"], [], "nothing written")
    z = encoded_variant("klingon", latin, "KLINGON-9")
    c = connect()
    expect_error(c, "select * from load_tracts(?)", (z,),
                 "load_tracts: %s: the .cpg names an encoding that cannot be "
                 "read: 'KLINGON-9'" % z)
    z = encoded_variant("badsjis", b"\x81", "SHIFT_JIS")
    expect_error(c, "select * from load_tracts(?)", (z,),
                 "load_tracts: %s: record 1: field NAME is not valid "
                 "SHIFT_JIS" % z)


def projected_variant(name, srs):
    """The hand-made fixture reprojected by GDAL (ogr2ogr -t_srs srs), as a
    census-named zip; returns its path."""
    d = os.path.join(FX, "crs-" + name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    out = os.path.join(d, "shp")
    subprocess.run(["ogr2ogr", "-t_srs", srs, out,
                    os.path.join(FX, "handshp", "cb_2019_44_tract_500k.shp")],
                   check=True, capture_output=True)
    z = os.path.join(d, "cb_2019_44_tract_500k.zip")
    with zipfile.ZipFile(z, "w") as w:
        for f in os.listdir(out):
            w.write(os.path.join(out, f), f)
    return z, os.path.join(out, "cb_2019_44_tract_500k.shp")


def vertices(c):
    """GEOID -> the exterior ring's vertices of each tract, via SpatiaLite."""
    out = {}
    for geoid, wkt in c.execute("select GEOID, AsText(geometry) from tracts"):
        nums = [float(x) for x in wkt.replace("(", " ").replace(")", " ")
                .replace(",", " ").split()[1:]]
        out[geoid] = list(zip(nums[0::2], nums[1::2]))
    return out


def test_projected_and_other_datum_files_are_reprojected():
    """UTM 19N (projected) and NAD27 (another datum) versions of the hand
    fixture, made by GDAL: loaded, every vertex must be where GDAL puts it
    back in NAD83 (within 1e-7 degree), and tract_of must agree with the
    original at points away from the edges."""
    c0 = connect()
    c0.execute("select count(*) from load_tracts(?)", (HAND_ZIP(),)).fetchone()
    try:
        c0.load_extension("mod_spatialite")
    except sqlite3.OperationalError as e:
        raise Skip("mod_spatialite: %s" % e)
    pts = [(-71.5 + 0.0137 * i, 41.5 + 0.0093 * j) for i in range(40)
           for j in range(22)]
    want = [c0.execute("select tract_of(?, ?)", p).fetchone()[0] for p in pts]
    for name, srs in (("utm19", "EPSG:26919"), ("nad27", "EPSG:4267")):
        z, shp = projected_variant(name, srs)
        c = connect()
        c.execute("select count(*) from load_tracts(?)", (z,)).fetchone()
        c.load_extension("mod_spatialite")
        back = os.path.join(FX, "crs-" + name, "back")
        subprocess.run(["ogr2ogr", "-t_srs", "EPSG:4269", back, shp],
                       check=True, capture_output=True)
        g = connect()
        g.execute("select count(*) from load_tracts(?)",
                  (os.path.join(back, "cb_2019_44_tract_500k.shp"),)).fetchone()
        g.load_extension("mod_spatialite")
        ours, gdal = vertices(c), vertices(g)
        eq(sorted(ours), sorted(gdal), name)
        worst = max(max(abs(a[0] - b[0]), abs(a[1] - b[1]))
                    for k in ours for a, b in zip(ours[k], gdal[k]))
        assert worst < 1e-7, "%s: vertices off by %g degree" % (name, worst)
        got = [c.execute("select tract_of(?, ?)", p).fetchone()[0] for p in pts]
        near = sum(1 for a, b in zip(got, want) if a != b)
        assert near <= len(pts) // 100, "%s: %d of %d differ" % (name, near, len(pts))


def test_reprojected_file_of_many_ranges_on_several_threads():
    """A NAD27 file of 5,000 tracts (three ranges of records, read by
    reader threads that keep their PROJ transformations between ranges)
    loads the same with 1 and 3 threads, and every vertex is where GDAL
    puts it back in NAD83."""
    d = os.path.join(FX, "crs-many")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    gen("--out", os.path.join(d, "src"), "--states", "06", "--tracts", "5000",
        "--vertices", "12")
    src = "/vsizip/" + os.path.join(d, "src", "cb_2019_06_tract_500k.zip")
    out = os.path.join(d, "shp")
    subprocess.run(["ogr2ogr", "-t_srs", "EPSG:4267", out, src], check=True,
                   capture_output=True)
    z = os.path.join(d, "cb_2019_06_tract_500k.zip")
    with zipfile.ZipFile(z, "w") as w:
        for f in os.listdir(out):
            w.write(os.path.join(out, f), f)
    got = {}
    for threads in (1, 3):
        c = connect()
        c.execute("select tracts_config('threads', ?)", (threads,))
        eq(c.execute("select tracts, error from load_tracts(?)", (z,)).fetchall(),
           [(5000, None)], "threads %d" % threads)
        got[threads] = c.execute("select GEOID, hex(geometry) from tracts "
                                 "order by GEOID").fetchall()
        if threads == 3:
            try:
                c.load_extension("mod_spatialite")
            except sqlite3.OperationalError as e:
                raise Skip("mod_spatialite: %s" % e)
            ours = vertices(c)
    eq(got[1], got[3], "the same rows with 1 and 3 threads")
    back = os.path.join(d, "back")
    subprocess.run(["ogr2ogr", "-t_srs", "EPSG:4269", back,
                    os.path.join(out, "cb_2019_06_tract_500k.shp")],
                   check=True, capture_output=True)
    g = connect()
    g.execute("select count(*) from load_tracts(?)",
              (os.path.join(back, "cb_2019_06_tract_500k.shp"),)).fetchone()
    g.load_extension("mod_spatialite")
    gdal = vertices(g)
    eq(sorted(ours), sorted(gdal))
    worst = max(max(abs(a[0] - b[0]), abs(a[1] - b[1]))
                for k in ours for a, b in zip(ours[k], gdal[k]))
    assert worst < 1e-7, "vertices off by %g degree" % worst


def busy_db(name):
    """A fresh database file with a table a reader can hold open."""
    db = os.path.join(FX, name)
    for x in (db, db + "-journal"):
        if os.path.exists(x):
            os.remove(x)
    setup = connect(db)
    setup.execute("create table big(x)")
    setup.executemany("insert into big values(?)", [(i,) for i in range(5000)])
    setup.close()
    return db


def test_directory_files_commit_together_each_whole():
    """Files the writer finds waiting are committed together (one
    transaction, each file in its own savepoint): a bad file among them
    leaves the others loaded; a commit a reader blocks leaves none of
    them, each row saying so, and no transaction open."""
    d = os.path.join(FX, "batch")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    shutil.copy(SYN("25"), d)
    shutil.copy(SYN("44"), d)
    bad = os.path.join(d, "cb_2019_30_tract_500k.zip")
    open(bad, "wb").write(b"PK\x03\x04 not really")
    want_bad = "load_tracts: %s: not a valid zip archive: Not a zip archive" % bad
    c = connect()
    rows = c.execute("select state, tracts>0, error from load_tracts(?)",
                     (d,)).fetchall()
    eq(rows, [("25", 1, None), (None, 0, want_bad), ("44", 1, None)])
    eq(c.execute("select group_concat(distinct STATEFP) from "
                 "(select STATEFP from tracts order by 1)").fetchone()[0], "25,44")
    eq(c.in_transaction, False)

    db = busy_db("batchbusy.db")
    a = sqlite3.connect(db, isolation_level=None, timeout=0.2)
    a.enable_load_extension(True)
    a.load_extension(EXT)
    b = sqlite3.connect(db, isolation_level=None)
    cur = b.execute("select * from big")
    cur.fetchone()                           # holds a shared lock
    rows = a.execute("select file, tracts, error from load_tracts(?)",
                     (d,)).fetchall()
    locked = "load_tracts: %s: cannot commit: database is locked"
    eq(rows, [(os.path.join(d, "cb_2019_25_tract_500k.zip"), 0,
               locked % os.path.join(d, "cb_2019_25_tract_500k.zip")),
              (bad, 0, want_bad),
              (os.path.join(d, "cb_2019_44_tract_500k.zip"), 0,
               locked % os.path.join(d, "cb_2019_44_tract_500k.zip"))])
    eq(a.in_transaction, False, "no transaction left open by the load")
    cur.fetchall()
    b.close()
    eq(a.execute("select count(*) from sqlite_schema where name like 'tracts%'")
       .fetchone()[0], 0, "the blocked load left nothing")
    a.close()


def test_commit_blocked_by_a_reader_leaves_no_open_transaction():
    """In rollback-journal mode a reader blocks the commit (RELEASE of the
    outermost savepoint): the work is undone and the connection is out of
    any transaction, so nothing later is lost silently."""
    db = busy_db("busy.db")

    def reader():
        b = sqlite3.connect(db, isolation_level=None)
        cur = b.execute("select * from big")
        cur.fetchone()                       # holds a shared lock
        return b, cur

    a = sqlite3.connect(db, isolation_level=None, timeout=0.2)
    a.enable_load_extension(True)
    a.load_extension(EXT)
    b, cur = reader()
    expect_error(a, "select * from load_tracts(?)", (HAND_ZIP(),),
                 "load_tracts: %s: cannot commit: database is locked" % HAND_ZIP())
    eq(a.in_transaction, False, "no transaction left open by the load")
    cur.fetchall()
    b.close()
    eq(a.execute("select count(*) from sqlite_schema where name like 'tracts%'")
       .fetchone()[0], 0, "the failed load left nothing")
    eq(a.execute("select count(*) from load_tracts(?)", (HAND_ZIP(),))
       .fetchone()[0], 1)
    # the saved index: a blocked commit means it is just not saved
    a.close()
    a = sqlite3.connect(db, isolation_level=None, timeout=0.2)
    a.enable_load_extension(True)
    a.load_extension(EXT)
    b, cur = reader()
    eq(a.execute("select tract_of(-71.45, 41.55)").fetchone()[0], "44007000100")
    eq(a.in_transaction, False, "no transaction left open by tract_of")
    cur.fetchall()
    b.close()
    a.execute("insert into big values(-1)")
    eq(a.execute("select count(*) from tracts_index").fetchone()[0], 0)
    a.close()
    a = sqlite3.connect(db)
    eq(a.execute("select count(*) from big where x=-1").fetchone()[0], 1,
       "a later write was committed")
    a.close()


def test_sqlite3_shell_batch():
    db = os.path.join(FX, "shell.db")
    if os.path.exists(db):
        os.remove(db)
    script = """.load %s
.mode list
select state, tracts, error is null from load_tracts('%s');
select tract_of(-71.45, 41.55), tract_of('-71.4', ' 41.6 '), tract_of(0, 0) is null;
""" % (EXT[:-3], HAND_ZIP())
    r = shell(db, script)
    eq(r.stdout, "44|8|1\n44007000100|44007000050|1\n")
    eq(r.stderr, "")
    # a failing load in a batch job with .bail on stops the job
    r = shell(db, ".bail on\n.load %s\nselect * from load_tracts('/no/such.zip');\n"
              "select 'not reached';\n" % EXT[:-3])
    eq(r.returncode, 1)
    eq(r.stdout, "")
    assert "load_tracts: cannot open '/no/such.zip': No such file or directory" \
        in r.stderr, r.stderr
    # the rows written by the first job are there for a plain sqlite3
    r = subprocess.run(["sqlite3", db, "select count(*) from tracts"],
                       capture_output=True, text=True)
    eq(r.stdout, "8\n")


# ----------------------------------------------------------------- main

def main():
    setup_fixtures()
    return run("python", globals())


if __name__ == "__main__":
    sys.exit(main())
