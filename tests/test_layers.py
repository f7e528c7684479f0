#!/usr/bin/python3
"""Tests of boundary layers: census_layers, load_boundaries, boundary_of,
fetch_boundaries and the several-layer form of tracts_assign.

    /usr/bin/python3 tests/test_layers.py build/tracts.so

Fixtures are census-layout zips made by build/gentracts (its --layer option
names and shapes every census layer), served for fetch_boundaries by
tests/census_server.py on 127.0.0.1. References: tract_of on the same
files loaded the long-standing way, a second database for the other
vintage, and GDAL (ogr2ogr) for projected copies.

The last line is "layers: N passed, N failed, N skipped".
"""
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import zipfile

from harness import EXT, ROOT, Skip, connect, expect_error, eq, local_only, run

sys.path.insert(0, os.path.join(ROOT, "tests"))
import census_server  # noqa: E402

BUILD = os.path.join(ROOT, "build")
FX = os.path.join(BUILD, "fixtures", "layers")
GEN = os.path.join(BUILD, "gentracts")
MIRROR = os.path.join(FX, "mirror")


def shp_dir(year):
    return os.path.join(MIRROR, "geo", "tiger", "GENZ%d" % year, "shp")


def gen(*args):
    subprocess.run([GEN] + list(args), check=True, stdout=subprocess.DEVNULL)


def f(year, st, tag):
    return os.path.join(shp_dir(year), "cb_%d_%s_%s_500k.zip" % (year, st, tag))


_server = None
_port = None


def setup():
    global _server, _port
    if _server:
        return
    local_only()
    shutil.rmtree(FX, ignore_errors=True)
    for y in (2019, 2020):
        os.makedirs(shp_dir(y))
    gen("--out", shp_dir(2019), "--states", "RI,MA", "--tracts", "300",
        "--vertices", "40")
    gen("--out", shp_dir(2020), "--states", "RI,MA", "--tracts", "340",
        "--vertices", "40", "--year", "2020", "--seed", "9")
    for layer in ("county", "state", "zcta", "bg", "place", "cousub"):
        gen("--out", shp_dir(2019), "--states", "RI,MA", "--tracts", "300",
            "--vertices", "40", "--layer", layer)
    gen("--out", shp_dir(2020), "--states", "RI,MA", "--tracts", "340",
        "--vertices", "40", "--layer", "zcta", "--year", "2020", "--seed", "9")
    gz = os.path.join(MIRROR, "geo", "tiger", "GENZ2010")
    for layer in ("tract", "county"):
        gen("--out", gz, "--states", "RI,MA", "--tracts", "300", "--vertices",
            "40", "--year", "2010", "--gz", "--layer", layer)
    _server, _thread, _port = census_server.start(MIRROR)


def points(c, table, n, seed):
    """n random points over the boxes of table's rows, plus some outside."""
    lo = c.execute("select min(minx), min(miny), max(maxx), max(maxy) from "
                   "\"%s_rtree\"" % table).fetchone()
    r = random.Random(seed)
    pts = [(r.uniform(lo[0] - 0.2, lo[2] + 0.2), r.uniform(lo[1] - 0.2, lo[3] + 0.2))
           for _ in range(n)]
    return pts


def fresh_db(name):
    """A connection to a new database file build/fixtures/layers/NAME."""
    db = os.path.join(FX, name)
    if os.path.exists(db):
        os.remove(db)
    return connect(db)


def rows(c, sql, *args):
    cur = c.execute(sql, args)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


# ---- the registry ------------------------------------------------------


def test_census_layers_lists_every_layer_and_its_naming():
    c = connect()
    got = rows(c, "select * from census_layers")
    names = [r["name"] for r in got]
    for n in ("states", "counties", "tracts", "block_groups", "zctas",
              "places", "county_subdivisions"):
        assert n in names, n
    t = [r for r in got if r["name"] == "tracts"][0]
    eq((t["tag"], t["scope"], t["key"], t["grp"]),
       ("tract", "state", "GEOID", "STATEFP"))
    eq(t["file"], "GENZ{year}/shp/cb_{year}_{st}_tract_{res}.zip")
    eq(t["answer"], "GEOID")
    t10 = [r for r in got if r["name"] == "tracts" and r["first_year"] == 2010][0]
    eq((t10["file"], t10["key"], t10["answer"], t10["grp"], t10["last_year"]),
       ("GENZ{year}/gz_{year}_{st}_140_00_{res}.zip", "GEO_ID",
        "substr(GEO_ID, 10)", "STATE", 2010))
    z = [r for r in got if r["name"] == "zctas"]
    eq(sorted((r["tag"], r["first_year"], r["last_year"], r["key"]) for r in z),
       [("860", 2010, 2010, "GEO_ID"), ("zcta510", 2013, 2019, "GEOID10"),
        ("zcta520", 2020, None, "GEOID20")])
    c2 = [r for r in got if r["name"] == "counties"][0]
    eq((c2["scope"], c2["resolutions"]), ("national", "500k,5m,20m"))


# ---- census layers and vintages -------------------------------------------


def test_every_census_layer_loads_from_its_census_file():
    setup()
    c = connect()
    want = {"states": ("us", "state", 2), "counties": ("us", "county", None),
            "block_groups": ("44", "bg", None), "places": ("44", "place", None),
            "county_subdivisions": ("44", "cousub", None),
            "zctas": ("us", "zcta510", None)}
    for layer, (st, tag, n) in want.items():
        r = rows(c, "select * from load_boundaries(?, ?)", layer, f(2019, st, tag))
        eq(len(r), 1, layer)
        assert r[0]["error"] is None and r[0]["features"] > 0, (layer, r)
        if n:
            eq(r[0]["features"], n, layer)
        key = "GEOID10" if layer == "zctas" else "GEOID"
        eq(c.execute("select count(*) from \"%s\"" % layer).fetchone()[0],
           r[0]["features"], layer)
        # every feature answers for a point inside it
        for k, wkt_x, wkt_y in c.execute(
                "select \"%s\", (minx+maxx)/2, (miny+maxy)/2 from \"%s\" join "
                "\"%s_rtree\" on id=\"%s\".rowid limit 5" % (key, layer, layer, layer)):
            got = c.execute("select boundary_of(?, ?, ?)", (layer, wkt_x, wkt_y)
                            ).fetchone()[0]
            assert got is not None, (layer, k)
    lay = {r["layer"]: r for r in rows(c, "select * from tracts_layers")}
    eq(lay["zctas"]["key"], "GEOID10")
    eq(lay["counties"]["year"], 2019)
    eq(lay["states"]["kind"], "states")


def test_block_groups_nest_in_tracts_and_counties():
    """Generated layers nest: the block group of a point starts with its
    tract's GEOID, which starts with its county's."""
    setup()
    c = connect()
    c.execute("select * from load_boundaries('tracts', ?)", (shp_dir(2019),)).fetchall()
    c.execute("select * from load_boundaries('counties', ?)", (f(2019, "us", "county"),)).fetchall()
    c.execute("select * from load_boundaries('block_groups', ?)", (f(2019, "44", "bg"),)).fetchall()
    n = 0
    for lon, lat in points(c, "block_groups", 400, 5):
        bg, tr, co = c.execute("select boundary_of('block_groups', ?1, ?2), "
                               "tract_of(?1, ?2), boundary_of('counties', ?1, ?2)",
                               (lon, lat)).fetchone()
        if bg is None:
            continue
        n += 1
        assert tr is not None and co is not None, (lon, lat, bg)
        eq(bg[:11], tr, "bg in tract")
        eq(tr[:5], co, "tract in county")
    assert n > 100, n


def test_vintages_side_by_side():
    """tracts (2019) and tracts_2020 in one database answer as each does
    alone; the layer of one vintage refuses the other's files."""
    setup()
    c = connect()
    r = rows(c, "select * from load_boundaries('tracts', ?)", shp_dir(2019))
    assert all(x["error"] is None and x["year"] == 2019 for x in r), r
    r = rows(c, "select * from load_boundaries('tracts_2020', ?)", shp_dir(2020))
    assert len(r) == 2 and all(x["error"] is None and x["year"] == 2020 for x in r), r
    alone = connect()
    alone.execute("select * from load_tracts(?)", (shp_dir(2020),)).fetchall()
    pts = points(c, "tracts", 2000, 11)
    diff = 0
    for lon, lat in pts:
        a, b, t = c.execute("select boundary_of('tracts', ?1, ?2), boundary_of("
                            "'tracts_2020', ?1, ?2), tract_of(?1, ?2)",
                            (lon, lat)).fetchone()
        eq(a, t, "tracts layer = tract_of")
        eq(b, alone.execute("select tract_of(?, ?)", (lon, lat)).fetchone()[0],
           "2020")
        diff += a != b
    assert diff > 100, "the two vintages should differ: %d" % diff
    lay = {r["layer"]: r["year"] for r in rows(c, "select * from tracts_layers")}
    eq(lay, {"tracts": 2019, "tracts_2020": 2020})
    # mixing is refused, naming the way out
    expect_error(c, "select * from load_boundaries('tracts', ?)",
                 (f(2020, "44", "tract"),),
                 "load_boundaries: %s: layer tracts holds 2019 boundaries and "
                 "this file 2020 ones: load it as tracts_2020 (vintages load "
                 "side by side), or empty the layer first (DELETE FROM tracts)"
                 % f(2020, "44", "tract"))
    expect_error(c, "select * from load_tracts(?)", (f(2020, "44", "tract"),),
                 "load_tracts: %s: layer tracts holds 2019 boundaries and "
                 "this file 2020 ones: load it as tracts_2020 (vintages load "
                 "side by side), or empty the layer first (DELETE FROM tracts)"
                 % f(2020, "44", "tract"))
    expect_error(c, "select * from load_boundaries('tracts_2020', ?)",
                 (f(2019, "44", "tract"),),
                 "load_boundaries: %s: the file holds 2019 boundaries; layer "
                 "tracts_2020 holds 2020 ones" % f(2019, "44", "tract"))
    # emptied, the layer takes the other vintage
    c.execute("delete from tracts")
    r = rows(c, "select * from load_tracts(?)", f(2020, "44", "tract"))
    eq(r[0]["error"], None)
    eq(c.execute("select year from tracts_layers where layer='tracts'").fetchone()[0], 2020)
    eq(c.execute("select group_concat(distinct year) from tracts_files where "
                 "layer='tracts'").fetchone()[0], "2020")


def gz(st, level):
    return os.path.join(MIRROR, "geo", "tiger", "GENZ2010",
                        "gz_2010_%s_%s_00_500k.zip" % (st, level))


def test_2010_files_answer_geoids():
    """The 2010 layout (gz_2010_SS_140_00, keyed by GEO_ID): loaded as
    tracts_2010 it answers 11-digit GEOIDs, the same as the 2019 files of
    the same geometry; it fetches from GENZ2010/ and joins in one pass
    with 2020 tracts."""
    setup()
    c = connect()
    r = rows(c, "select * from load_boundaries('tracts_2010', ?)",
             os.path.dirname(gz("44", "140")))
    eq([(x["state"], x["year"], x["error"]) for x in r],
       [("25", 2010, None), ("44", 2010, None)])
    eq(c.execute("select kind, year, key from tracts_layers").fetchone(),
       ("tracts", 2010, "GEO_ID"))
    eq(c.execute("select typeof(CENSUSAREA), substr(GEO_ID, 1, 9) from "
                 "tracts_2010 limit 1").fetchone(), ("real", "1400000US"))
    c.execute("select * from load_tracts(?)", (shp_dir(2019),)).fetchall()
    n = 0
    for lon, lat in points(c, "tracts", 1500, 13):
        a, b = c.execute("select boundary_of('tracts_2010', ?1, ?2), "
                         "tract_of(?1, ?2)", (lon, lat)).fetchone()
        eq(a, b, "2010 answer")
        n += a is not None
    assert n > 500, n
    # a 2010 file into a cb_ layer, and the reverse, are refused
    expect_error(c, "select * from load_boundaries('tracts_2020', ?)",
                 (gz("44", "140"),),
                 "load_boundaries: %s: the .dbf has no field STATEFP" % gz("44", "140"))
    c.execute("delete from tracts")
    expect_error(c, "select * from load_tracts(?)", (gz("44", "140"),),
                 "load_tracts: %s: layer tracts was made for other Census "
                 "files (it has no GEO_ID column); drop it first (DROP TABLE "
                 "tracts; DROP TABLE tracts_rtree) or load these under a "
                 "vintage name such as tracts_2010" % gz("44", "140"))
    c.execute("select * from load_tracts(?)", (shp_dir(2019),)).fetchall()
    # a renamed file (its year unknown) leaves the layer's vintage as it was
    renamed = os.path.join(FX, "ri_tracts.zip")
    shutil.copy(f(2019, "44", "tract"), renamed)
    eq(rows(c, "select * from load_tracts(?)", renamed)[0]["error"], None)
    eq(c.execute("select year from tracts_layers where layer='tracts'"
                 ).fetchone()[0], 2019)
    expect_error(c, "select * from load_tracts(?)", (f(2020, "25", "tract"),),
                 "load_tracts: %s: layer tracts holds 2019 boundaries and "
                 "this file 2020 ones: load it as tracts_2020 (vintages load "
                 "side by side), or empty the layer first (DELETE FROM tracts)"
                 % f(2020, "25", "tract"))
    r = rows(c, "select * from load_boundaries('counties_2010', ?)", gz("us", "050"))
    eq(r[0]["error"], None)
    e = Env("gz")
    r = rows(e.c, "select * from fetch_boundaries('tracts_2010', 'RI')")
    eq(r[0]["error"], None)
    assert r[0]["url"].endswith("/GENZ2010/gz_2010_44_140_00_500k.zip"), r[0]["url"]
    r = rows(e.c, "select * from fetch_boundaries('tracts', 'RI', 2020)")
    eq(r[0]["error"], None)
    e.c.execute("create table pts(lon, lat)")
    e.c.executemany("insert into pts values(?, ?)", points(e.c, "tracts", 3000, 2))
    e.c.execute("select tracts_assign('pts', 'lon', 'lat', 'out', 2, "
                "'tracts_2010,tracts')")
    eq(e.c.execute("select count(*) from out join pts on pts.rowid=out.id where "
                   "tracts_2010 is not boundary_of('tracts_2010', lon, lat) or "
                   "tracts is not tract_of(lon, lat)").fetchone()[0], 0)
    eq(e.c.execute("select min(length(tracts_2010)), max(length(tracts_2010)) "
                   "from out").fetchone(), (11, 11))


def test_zcta_vintages_have_their_own_names_and_keys():
    setup()
    c = connect()
    r = rows(c, "select * from load_boundaries('zctas', ?)", f(2019, "us", "zcta510"))
    eq(r[0]["error"], None)
    r = rows(c, "select * from load_boundaries('zctas_2020', ?)", f(2020, "us", "zcta520"))
    eq(r[0]["error"], None)
    cols = [x[1] for x in c.execute("pragma table_info(zctas_2020)")]
    assert "GEOID20" in cols and "GEOID10" not in cols, cols
    lon, lat = c.execute("select (minx+maxx)/2, (miny+maxy)/2 from zctas_2020_rtree "
                         "limit 1").fetchone()
    k = c.execute("select boundary_of('zctas_2020', ?, ?)", (lon, lat)).fetchone()[0]
    assert k and len(k) == 5, k


# ---- user layers -------------------------------------------------------


def test_user_layer_keyed_by_a_column_the_user_names():
    setup()
    c = connect()
    z = f(2019, "44", "tract")
    c.execute("select * from load_tracts(?)", (z,)).fetchall()
    r = rows(c, "select *, layer from load_boundaries('mine', ?, 'TRACTCE')", z)
    eq((r[0]["error"], r[0]["state"], r[0]["year"], r[0]["layer"]),
       (None, None, None, "mine"))
    cols = [x[1] for x in c.execute("pragma table_info(mine)")]
    eq(cols, ["STATEFP", "COUNTYFP", "TRACTCE", "AFFGEOID", "GEOID", "NAME",
              "LSAD", "ALAND", "AWATER", "geometry"])
    eq(c.execute("select typeof(ALAND) from mine limit 1").fetchone()[0], "integer")
    n = 0
    for lon, lat in points(c, "tracts", 1500, 3):
        g, k = c.execute("select tract_of(?1, ?2), boundary_of('mine', ?1, ?2)",
                         (lon, lat)).fetchone()
        if g is None:
            eq(k, None)
            continue
        n += 1
        # the key of the same polygon (random points miss the shared edges,
        # where the two rules could pick different neighbours)
        eq(k, g[5:], "TRACTCE of the tract")
    assert n > 500, n
    # default key GEOID
    r = rows(c, "select * from load_boundaries('mine2', ?)", z)
    eq(r[0]["error"], None)
    eq(c.execute("select key from tracts_layers where layer='mine2'").fetchone()[0],
       "GEOID")


def test_user_layer_reload_replaces_it_with_the_new_columns():
    setup()
    c = connect()
    c.execute("select * from load_boundaries('mine', ?, 'GEOID')",
              (f(2019, "44", "tract"),)).fetchall()
    c.execute("select * from load_boundaries('mine', ?, 'GEOID')",
              (f(2019, "us", "county"),)).fetchall()
    cols = [x[1] for x in c.execute("pragma table_info(mine)")]
    eq(cols, ["STATEFP", "COUNTYFP", "TRACTCE", "AFFGEOID", "GEOID", "NAME",
              "LSAD", "ALAND", "AWATER", "geometry", "COUNTYNS"])
    eq(c.execute("select count(*) from mine where TRACTCE is not null"
                 ).fetchone()[0], 0)
    eq(c.execute("select count(*) from mine").fetchone()[0],
       c.execute("select count(*) from mine_rtree").fetchone()[0])
    eq(c.execute("select min(length(GEOID)) from mine").fetchone()[0], 5)


def test_user_layer_never_replaces_a_table_of_the_user():
    setup()
    c = connect()
    c.execute("create table points(lon, lat)")
    c.execute("insert into points values(1, 2)")
    expect_error(c, "select * from load_boundaries('points', ?)",
                 (f(2019, "44", "tract"),),
                 "load_boundaries: %s: the database has a table points that "
                 "is not a boundary layer; load the layer under another name"
                 % f(2019, "44", "tract"))
    eq(c.execute("select * from points").fetchall(), [(1, 2)])
    eq(c.execute("select count(*) from sqlite_schema where name like "
                 "'points%'").fetchone()[0], 1)


def test_bad_arguments_are_clear_errors():
    setup()
    c = connect()
    z = f(2019, "44", "tract")
    bad = "is not a layer name: census layers are states, counties, tracts, " \
          "block_groups, zctas, places, county_subdivisions (with an optional " \
          "_YYYY vintage); a layer of your own is named with letters, digits " \
          "and _ (at most 48, not starting with a digit, tracts_, sqlite_ or " \
          "pragma_, not ending in _rtree, not the name of a table function)"
    for name in ("a b", "x;drop table t", "1abc", "tracts_files",
                 "sqlite_master", "foo_rtree", "x" * 49, "é", "load_boundaries",
                 "Census_Layers", "pragma_table_info", "fetch_for_points"):
        expect_error(c, "select * from load_boundaries(?, ?)", (name, z),
                     "load_boundaries: '%s' %s" % (name, bad))
    expect_error(c, "select * from load_boundaries('', ?)", (z,),
                 "load_boundaries: the layer name is empty")
    expect_error(c, "select * from load_boundaries(NULL, ?)", (z,),
                 "load_boundaries: the layer is NULL")
    expect_error(c, "select * from load_boundaries('mine')", (),
                 "load_boundaries: needs a layer and a path")
    expect_error(c, "select * from load_boundaries('mine', NULL)", (),
                 "load_boundaries: the path is NULL")
    expect_error(c, "select * from load_boundaries('mine', ?, 'NOPE')", (z,),
                 "load_boundaries: %s: the .dbf has no field NOPE (it has: "
                 "STATEFP COUNTYFP TRACTCE AFFGEOID GEOID NAME LSAD ALAND "
                 "AWATER)" % z)
    expect_error(c, "select * from load_boundaries('tracts', ?, 'NAME')", (z,),
                 "load_boundaries: the census layer tracts is keyed by GEOID, "
                 "not NAME (a layer of your own name takes any key column)")
    for srid in ("x", -1, 0, 1.5, 10**7):
        expect_error(c, "select * from load_boundaries('mine', ?, NULL, ?)",
                     (z, srid), "load_boundaries: the srid must be an EPSG "
                     "code such as 4269 or 26918")
    expect_error(c, "select * from load_boundaries('mine', ?, NULL, 999999)",
                 (z,), "load_boundaries: %s: SRID 999999 is not a coordinate "
                 "system PROJ knows" % z)
    expect_error(c, "select * from load_boundaries('mine', ?)", (shp_dir(2019),),
                 "load_boundaries: a layer of your own (mine) loads from one "
                 "shapefile or zip, not a directory")
    expect_error(c, "select * from load_boundaries('counties', ?)",
                 (f(2019, "44", "tract"),),
                 "load_boundaries: %s: the .dbf has no field COUNTYNS"
                 % f(2019, "44", "tract"))
    eq(c.execute("select count(*) from sqlite_schema").fetchone()[0], 0)
    expect_error(c, "select boundary_of('nope', 1, 2)", (),
                 "boundary_of: no layer 'nope' is loaded (run load_boundaries "
                 "or fetch_boundaries)")
    expect_error(c, "select boundary_of(NULL, 1, 2)", (),
                 "boundary_of: the layer is NULL")
    c.execute("select * from load_boundaries('mine', ?)", (z,)).fetchall()
    for lon, lat in ((None, 1), ("x", 1), (float("nan"), 1), (1, 91), (181, 0),
                     (b"\x00", 1)):
        eq(c.execute("select boundary_of('mine', ?, ?)", (lon, lat)).fetchone()[0],
           None)
    eq(c.execute("select boundary_of('MINE', 0, 0)").fetchone()[0], None)


def test_user_table_under_a_dropped_layers_name_is_never_touched():
    setup()
    c = connect()
    z = f(2019, "44", "tract")
    c.execute("select * from load_boundaries('parcels', ?)", (z,)).fetchall()
    c.execute("drop table parcels")
    c.execute("drop table parcels_rtree")
    c.execute("create table parcels(id integer primary key, owner text, "
              "geometry blob)")
    c.execute("insert into parcels(owner) values('alice'), ('bob')")
    expect_error(c, "select * from load_boundaries('parcels', ?)", (z,),
                 "load_boundaries: %s: the database has a table parcels that "
                 "is not a boundary layer; load the layer under another name" % z)
    eq(c.execute("select owner from parcels order by id").fetchall(),
       [("alice",), ("bob",)])
    eq([x[1] for x in c.execute("pragma table_info(parcels)")],
       ["id", "owner", "geometry"])


def test_rowid_named_fields_and_wide_integers():
    """A DBF field named ROWID must not stand in for the rowid (the R*Tree
    follows the real one); integers beyond 64 bits stay exact, as text."""
    setup()
    try:
        from osgeo import gdal, ogr, osr
    except ImportError as e:
        raise Skip("GDAL's python bindings: %s" % e)
    gdal.PushErrorHandler("CPLQuietErrorHandler")   # "bigger than 2^53"
    d = os.path.join(FX, "rowid")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    path = os.path.join(d, "rowid.shp")
    ds = ogr.GetDriverByName("ESRI Shapefile").CreateDataSource(path)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4269)
    lyr = ds.CreateLayer("rowid", srs, ogr.wkbPolygon)
    lyr.CreateField(ogr.FieldDefn("GEOID", ogr.OFTString))
    lyr.CreateField(ogr.FieldDefn("ROWID", ogr.OFTInteger))
    big = ogr.FieldDefn("BIG", ogr.OFTReal)
    big.SetWidth(20)
    big.SetPrecision(0)
    lyr.CreateField(big)
    for i, (geoid, rid) in enumerate((("A", 2), ("B", 1))):
        feat = ogr.Feature(lyr.GetLayerDefn())
        feat.SetField("GEOID", geoid)
        feat.SetField("ROWID", rid)
        feat.SetField("BIG", 12345678901234567890.0 + i * 1e6)
        feat.SetGeometry(ogr.CreateGeometryFromWkt(
            "POLYGON((%d 0,%d 1,%d 1,%d 0,%d 0))" % (i, i, i + 1, i + 1, i)))
        lyr.CreateFeature(feat)
    ds = None
    c = connect()
    r = rows(c, "select * from load_boundaries('u', ?)", path)
    eq(r[0]["error"], None)
    cols = [x[1] for x in c.execute("pragma table_info(u)")]
    eq(cols, ["GEOID", "ROWID_", "BIG", "geometry"])
    eq(c.execute("select type from pragma_table_info('u') where name='BIG'"
                 ).fetchone()[0], "TEXT")
    c.execute("delete from u where GEOID='A'")
    eq(c.execute("select id from u_rtree").fetchall(),
       c.execute("select rowid from u").fetchall())
    eq(c.execute("select boundary_of('u', 1.5, 0.5), boundary_of('u', 0.5, "
                 "0.5)").fetchone(), ("B", None))
    v = c.execute("select BIG, typeof(BIG) from u").fetchone()
    assert v[1] == "text" and len(v[0]) == 20 and v[0].startswith(
        "123456789012355"), v


def no_prj_copy(src, name):
    """src (a census zip) without its .prj, as NAME.zip."""
    d = os.path.join(FX, "noprj")
    os.makedirs(d, exist_ok=True)
    out = os.path.join(d, name + ".zip")
    with zipfile.ZipFile(src) as zi, zipfile.ZipFile(out, "w") as zo:
        for n in zi.namelist():
            if not n.endswith(".prj"):
                zo.writestr(n, zi.read(n))
    return out


def test_missing_prj_needs_an_srid():
    setup()
    c = connect()
    z = no_prj_copy(f(2019, "44", "tract"), "noprj")
    msg = ("the shapefile has no .prj, so its coordinate system is unknown: "
           "state it as an SRID (load_boundaries' fourth argument, 4269 for "
           "NAD83 longitude/latitude)")
    expect_error(c, "select * from load_boundaries('mine', ?)", (z,),
                 "load_boundaries: %s: %s" % (z, msg))
    expect_error(c, "select * from load_tracts(?)", (z,),
                 "load_tracts: %s: %s" % (z, msg))
    eq(c.execute("select count(*) from sqlite_schema").fetchone()[0], 0)
    r = rows(c, "select * from load_boundaries('mine', ?, NULL, 4269)", z)
    eq(r[0]["error"], None)
    r = rows(c, "select * from load_boundaries('tracts', ?, NULL, 4269)", z)
    eq(r[0]["error"], None)


def test_stated_srid_reprojects_a_file_without_prj():
    """A UTM 19N copy made by GDAL, its .prj removed: with SRID 26919 it
    answers as the original, away from edges."""
    setup()
    if shutil.which("ogr2ogr") is None:
        raise Skip("ogr2ogr (gdal-bin) is not installed")
    d = os.path.join(FX, "utm")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    subprocess.run(["ogr2ogr", "-t_srs", "EPSG:26919", os.path.join(d, "shp"),
                    "/vsizip/" + f(2019, "44", "tract")], check=True,
                   capture_output=True)
    shp = [x for x in os.listdir(os.path.join(d, "shp")) if x.endswith(".shp")][0]
    os.remove(os.path.join(d, "shp", shp[:-4] + ".prj"))
    c = connect()
    c.execute("select * from load_tracts(?)", (f(2019, "44", "tract"),)).fetchall()
    r = rows(c, "select * from load_boundaries('utm', ?, 'GEOID', 26919)",
             os.path.join(d, "shp", shp))
    eq(r[0]["error"], None)
    pts = points(c, "tracts", 1500, 8)
    differ = sum(1 for lon, lat in pts if c.execute(
        "select tract_of(?1, ?2) is not boundary_of('utm', ?1, ?2)",
        (lon, lat)).fetchone()[0])
    assert differ <= 15, "%d of %d differ" % (differ, len(pts))


# ---- assigning several layers in one pass ----------------------------------


def test_assign_several_layers_in_one_pass():
    setup()
    c = fresh_db("assign.db")
    c.execute("select * from load_tracts(?)", (shp_dir(2019),)).fetchall()
    c.execute("select * from load_boundaries('tracts_2020', ?)", (shp_dir(2020),)).fetchall()
    c.execute("select * from load_boundaries('counties', ?)", (f(2019, "us", "county"),)).fetchall()
    pts = points(c, "tracts", 30000, 21)
    c.execute("create table pts(id integer primary key, lon, lat)")
    c.executemany("insert into pts(lon, lat) values(?, ?)", pts)
    c.execute("insert into pts(lon, lat) values(NULL, 1), ('x', 'y')")
    want = c.execute("select id, tract_of(lon, lat), boundary_of('tracts_2020', "
                     "lon, lat), boundary_of('counties', lon, lat) from pts "
                     "order by id").fetchall()
    for w in (1, 2, 3):
        n = c.execute("select tracts_assign('pts', 'lon', 'lat', 'out', ?, "
                      "'tracts, tracts_2020,COUNTIES')", (w,)).fetchone()[0]
        eq(n, len(pts) + 2)
        cols = [x[1] for x in c.execute("pragma table_info(out)")]
        eq(cols, ["id", "tracts", "tracts_how", "tracts_2020", "tracts_2020_how",
                  "counties", "counties_how"])
        got = c.execute("select id, tracts, tracts_2020, counties from out "
                        "order by id").fetchall()
        eq(got, want, "workers %d" % w)
        hows = dict(c.execute("select counties_how, count(*) from out group by 1"))
        eq(hows.get("invalid"), 2)
        assert hows.get("inside", 0) > 1000 and hows.get("outside", 0) > 100, hows
    # each column equals the one-layer assignment
    c.execute("select tracts_assign('pts', 'lon', 'lat', 'one', 2)")
    eq(c.execute("select count(*) from one join out using(id) where "
                 "one.geoid is not out.tracts or one.how<>out.tracts_how"
                 ).fetchone()[0], 0)


def test_assign_layer_list_errors():
    setup()
    c = connect()
    c.execute("select * from load_tracts(?)", (f(2019, "44", "tract"),)).fetchall()
    c.execute("create table pts(lon, lat)")
    c.execute("insert into pts values(1, 2)")
    for layers, msg in (
            ("tracts,tracts", "tracts_assign: layer tracts is named twice"),
            ("tracts,nope", "tracts_assign: no layer 'nope' is loaded (run "
                            "load_boundaries or fetch_boundaries)"),
            ("", "tracts_assign: no layers given (a comma-separated list such "
                 "as 'tracts,counties')"),
            (",".join("l%d" % i for i in range(9)),
             "tracts_assign: at most 8 layers in one pass"),
            ("a;b", "tracts_assign: 'a;b' is not a layer name: census layers "
                    "are states, counties, tracts, block_groups, zctas, places, "
                    "county_subdivisions (with an optional _YYYY vintage); a "
                    "layer of your own is named with letters, digits and _ (at "
                    "most 48, not starting with a digit, tracts_, sqlite_ or "
                    "pragma_, not ending in _rtree, not the name of a table "
                    "function)")):
        expect_error(c, "select tracts_assign('pts', 'lon', 'lat', 'out', 1, ?)",
                     (layers,), msg)
    c.execute("select * from load_boundaries('mine', ?)", (f(2019, "44", "tract"),)).fetchall()
    for name in ("id", "mine_how"):
        c.execute("select * from load_boundaries(?, ?)",
                  (name, f(2019, "44", "tract"))).fetchall()
    expect_error(c, "select tracts_assign('pts', 'lon', 'lat', 'o', 1, 'tracts,id')",
                 (), "tracts_assign: a layer named id would make a second "
                 "column id")
    expect_error(c, "select tracts_assign('pts', 'lon', 'lat', 'o', 1, "
                 "'mine_how,mine')", (), "tracts_assign: layers mine and "
                 "mine_how would make two columns mine_how")
    expect_error(c, "select tracts_assign('pts', 'lon', 'lat', 'mine', 1, 'tracts')",
                 (), "tracts_assign: 'mine' is a table of the extension; choose "
                 "another destination")
    expect_error(c, "select tracts_assign('pts', 'lon', 'lat', 'MINE_rtree', 1)",
                 (), "tracts_assign: 'MINE_rtree' is a table of the extension; "
                 "choose another destination")
    eq(c.execute("select count(*) from mine").fetchone()[0], 244 if False else
       c.execute("select count(*) from tracts").fetchone()[0])


# ---- the index is kept per layer -----------------------------------------


def test_saved_index_per_layer():
    setup()
    c = fresh_db("saved.db")
    c.execute("select * from load_tracts(?)", (shp_dir(2019),)).fetchall()
    c.execute("select * from load_boundaries('counties', ?)", (f(2019, "us", "county"),)).fetchall()
    pts = points(c, "tracts", 500, 4)
    want = [c.execute("select tract_of(?1, ?2), boundary_of('counties', ?1, ?2)",
                      p).fetchone() for p in pts]
    layers = [r[0] for r in c.execute("select distinct layer from tracts_index "
                                      "order by 1")]
    eq(layers, ["counties", "tracts"])
    c.close()
    c = connect(os.path.join(FX, "saved.db"))
    got = [c.execute("select tract_of(?1, ?2), boundary_of('counties', ?1, ?2)",
                     p).fetchone() for p in pts]
    eq(got, want)
    # a change to one layer rebuilds it, the other stays
    c.execute("delete from counties where STATEFP='44'")
    got = [c.execute("select boundary_of('counties', ?1, ?2)", p).fetchone()[0]
           for p in pts]
    assert all(g is None or not g.startswith("44") for g in got)
    eq([c.execute("select tract_of(?, ?)", p).fetchone()[0] for p in pts],
       [w[0] for w in want])


def test_old_layers_table_is_migrated():
    """A database made before user layers (tracts_layers without kind,
    year, key) keeps working and gains the columns on the next load."""
    setup()
    c = connect()
    c.execute("create table tracts_layers(layer TEXT PRIMARY KEY, generation "
              "INTEGER NOT NULL)")
    r = rows(c, "select * from load_tracts(?)", f(2019, "44", "tract"))
    eq(r[0]["error"], None)
    eq(c.execute("select kind, year, key from tracts_layers").fetchone(),
       ("tracts", 2019, "GEOID"))


# ---- fetch_boundaries --------------------------------------------------


class Env:
    def __init__(self, name):
        setup()
        self.dir = os.path.join(FX, name)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        _server.set_rules([])
        _server.reset()
        self.c = connect(os.path.join(self.dir, "db.sqlite"))
        for k, v in {"base_url": "http://127.0.0.1:%d/geo/tiger/" % _port,
                     "cache_dir": os.path.join(self.dir, "cache"),
                     "retry_wait_ms": 1, "progress": -1}.items():
            self.c.execute("select tracts_config(?, ?)", (k, v))


def test_fetch_boundaries_per_state_and_national_layers():
    e = Env("fb")
    r = rows(e.c, "select * from fetch_boundaries('block_groups', 'RI,MA')")
    eq([(x["state"], x["fips"], x["status"], x["error"]) for x in r],
       [("RI", "44", 200, None), ("MA", "25", 200, None)])
    assert r[0]["url"].endswith("/GENZ2019/shp/cb_2019_44_bg_500k.zip"), r[0]["url"]
    ref = connect()
    ref.execute("select * from load_boundaries('block_groups', ?)",
                (f(2019, "44", "bg"),)).fetchall()
    ref.execute("select * from load_boundaries('block_groups', ?)",
                (f(2019, "25", "bg"),)).fetchall()
    q = "select * from block_groups order by GEOID"
    eq(e.c.execute(q).fetchall(), ref.execute(q).fetchall())
    r = rows(e.c, "select * from fetch_boundaries('counties', '*')")
    eq([(x["state"], x["fips"], x["error"]) for x in r], [("US", "us", None)])
    assert r[0]["url"].endswith("/GENZ2019/shp/cb_2019_us_county_500k.zip")
    assert r[0]["features"] > 0
    r = rows(e.c, "select * from fetch_boundaries('zctas_2020', '*')")
    eq(r[0]["error"], None)
    assert r[0]["url"].endswith("/GENZ2020/shp/cb_2020_us_zcta520_500k.zip")
    r = rows(e.c, "select * from fetch_boundaries('tracts', 'RI', 2020)")
    eq(r[0]["error"], None)          # an empty tracts layer takes any vintage
    r = rows(e.c, "select * from fetch_boundaries('tracts_2019', 'RI')")
    eq(r[0]["error"], None)
    eq(dict(e.c.execute("select layer, year from tracts_layers")),
       {"block_groups": 2019, "counties": 2019, "zctas_2020": 2020,
        "tracts": 2020, "tracts_2019": 2019})
    # a second fetch revalidates and writes nothing new
    r = rows(e.c, "select * from fetch_boundaries('counties', '*')")
    eq((r[0]["status"], r[0]["from_cache"], r[0]["error"]), (304, 1, None))


def county_centres(statefp):
    """The centre of every generated county box of a state."""
    ref = connect()
    ref.execute("select * from load_boundaries('counties', ?)",
                (f(2019, "us", "county"),)).fetchall()
    return ref.execute("select (minx+maxx)/2, (miny+maxy)/2 from counties join "
                       "counties_rtree on id=counties.rowid where STATEFP=?",
                       (statefp,)).fetchall()


def test_fetch_only_the_states_the_points_need():
    """The states layer routes the points; only their states' tract files
    are fetched (the recipe the README gives)."""
    e = Env("need")
    r = rows(e.c, "select * from fetch_boundaries('states', '*')")
    eq(r[0]["error"], None)
    e.c.execute("create table pts(lon, lat)")
    e.c.executemany("insert into pts values(?, ?)", county_centres("44"))
    e.c.execute("insert into pts values(0, 0), (NULL, NULL)")
    _server.reset()
    r = rows(e.c, "select * from fetch_boundaries('tracts', (select "
             "group_concat(distinct boundary_of('states', lon, lat)) from pts))")
    eq([(x["state"], x["error"]) for x in r], [("RI", None)])
    with _server.lock:
        paths = [x["path"] for x in _server.log]
    assert paths and all("_44_tract" in p for p in paths), paths
    eq(e.c.execute("select count(*) from pts where tract_of(lon, lat) is null"
                   ).fetchone()[0], 2)


def test_fetch_for_points_routes_with_the_states_layer():
    """fetch_for_points fetches the states layer of the year, then only the
    states the points fall in."""
    e = Env("forpts")
    e.c.execute("create table pts(id integer primary key, \"my lon\", lat)")
    e.c.executemany("insert into pts(\"my lon\", lat) values(?, ?)",
                    county_centres("25"))
    e.c.execute("insert into pts(\"my lon\", lat) values(0, 0), ('x', NULL)")
    _server.reset()
    r = rows(e.c, "select * from fetch_for_points('block_groups', 'main.pts', "
             "'my lon', 'lat')")
    eq([(x["state"], x["error"]) for x in r], [("MA", None)])
    with _server.lock:
        paths = sorted(x["path"].rsplit("/", 1)[1] for x in _server.log
                       if x["method"] == "GET")
    eq(paths, ["cb_2019_25_bg_500k.zip", "cb_2019_us_state_500k.zip"])
    eq(dict(e.c.execute("select layer, year from tracts_layers")),
       {"states_2019": 2019, "block_groups": 2019})
    eq(e.c.execute("select count(*) from pts where boundary_of('block_groups', "
                   "\"my lon\", lat) is null").fetchone()[0], 2)
    # the routing layer is not fetched again; a national layer comes whole
    _server.reset()
    r = rows(e.c, "select * from fetch_for_points('counties', 'pts', 'my lon', "
             "'lat')")
    eq([(x["state"], x["error"]) for x in r], [("US", None)])
    with _server.lock:
        eq([x["path"].rsplit("/", 1)[1] for x in _server.log],
           ["cb_2019_us_county_500k.zip"])
    # points routed to an island area (no per-state files): not fetched
    e.c.execute("update states_2019 set GEOID='66' where GEOID='25'")
    eq(rows(e.c, "select * from fetch_for_points('block_groups', 'pts', "
            "'my lon', 'lat')"), [])
    # no point in any state: nothing to fetch
    e.c.execute("create table nowhere(lon, lat)")
    e.c.execute("insert into nowhere values(0, 0)")
    eq(rows(e.c, "select * from fetch_for_points('tracts', 'nowhere', 'lon', "
            "'lat')"), [])
    for args, msg in (
            (("tracts", "pts", "lon", "lat"), "fetch_for_points: no such "
             "column lon in pts"),
            (("tracts", "nope", "my lon", "lat"), "fetch_for_points: no such "
             "column my lon in nope"),
            (("mine", "pts", "my lon", "lat"), "fetch_for_points: only census "
             "layers are fetched (census_layers lists them)"),
            (("tracts", None, "my lon", "lat"), "fetch_for_points: the source "
             "table is missing or NULL"),
            (("tracts", "pts", "my lon", "lat", "x"), "fetch_for_points: year "
             "must be an integer from 1990 to 2100"),
            (("tracts", "pts", "my lon", "lat", 2012), "fetch_for_points: the "
             "Census Bureau publishes no cartographic states file for 2012 "
             "(census_layers lists the years of each layer)")):
        expect_error(e.c, "select * from fetch_for_points(%s)" %
                     ",".join("?" * len(args)), args, msg)


def test_fetch_boundaries_errors():
    e = Env("fberr")
    for args, msg in (
            (("nope", "RI"), "fetch_boundaries: nope is not a census layer "
             "(census_layers lists them: states counties tracts block_groups "
             "zctas places county_subdivisions); load_boundaries loads your "
             "own files"),
            (("tracts_2011", "RI"), "fetch_boundaries: the Census Bureau "
             "publishes no cartographic tracts file for 2011 (census_layers "
             "lists the years of each layer)"),
            (("counties", "RI"), "fetch_boundaries: counties come in one "
             "national file: give '*' as the states"),
            (("tracts", "RI", 2019, "5m"), "fetch_boundaries: tracts are "
             "published at 500k, not '5m'"),
            (("counties", "*", 2019, "1m"), "fetch_boundaries: counties are "
             "published at 500k,5m,20m, not '1m'"),
            (("tracts_2020", "RI", 2019), "fetch_boundaries: layer tracts_2020 "
             "holds 2020 boundaries, not 2019"),
            (("tracts", "ZZ"), "fetch_boundaries: unknown state 'ZZ' (USPS "
             "codes like RI, FIPS codes like 44, or '*' for all)"),
            (("tracts",), "fetch_boundaries: needs the states (USPS codes like "
             "RI, FIPS codes like 44, or '*' for all)"),
            (("tracts", "RI", 2019, "500k", "bogus"), "fetch_boundaries: "
             "unknown option 'bogus' (known: refresh, offline, strict)")):
        expect_error(e.c, "select * from fetch_boundaries(%s)" %
                     ",".join("?" * len(args)), args, msg)
    expect_error(e.c, "select * from fetch_boundaries()", (),
                 "fetch_boundaries: needs a layer, e.g. "
                 "fetch_boundaries('counties', '*')")
    # not published on this server: a plain 404 row
    r = rows(e.c, "select * from fetch_boundaries('states', '*', 2019, '20m')")
    assert r[0]["error"].startswith("HTTP 404 Not Found: ") and r[0]["error"].endswith(
        "cb_2019_us_state_20m.zip (the server does not publish states for "
        "2019 at 20m)"), r[0]["error"]
    eq(e.c.execute("select count(*) from sqlite_schema where name='states'"
                   ).fetchone()[0], 0)


if __name__ == "__main__":
    try:
        sys.exit(run("layers", globals()))
    finally:
        if _server:
            census_server.stop(_server)
