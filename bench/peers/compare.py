#!/usr/bin/python3
"""compare.py -- count disagreements between two peer output databases.

Each peer writes a table (id, geoid) into its own out db (table `res` by
default; bench.py's tract_of run writes `out` in load.db: use DB:TABLE).
This joins the two tables on id and counts, over the ids present in both:

  same         both have the same GEOID (or both NULL: counted as both_null)
  only_a/only_b one has a GEOID, the other NULL
  different    both have a GEOID and they differ
plus ids present in only one table (missing_in_a / missing_in_b).

With --tracts-db (load.db; needs mod_spatialite) every disagreeing point is
classified with SpatiaLite through the R*Tree: how many tracts COVER it and
how many it is strictly WITHIN. "boundary" = covered by some tract without
being within any (on an edge or vertex: `within` gives no tract there,
`covers` gives one); "interior" = within exactly one tract (a real
disagreement); "outside" = covered by none. Up to --show examples are printed.

Prints one JSON line on stdout.

  /usr/bin/python3 bench/peers/compare.py /tmp/peer-out/geos.db \
      /tmp/peer-out/gpd.db --points-db build/bench/points_1000000.db \
      --tracts-db build/bench/load.db
"""
import argparse
import json
import sqlite3


def split(spec, default="res"):
    if ":" in spec and not spec.startswith("file:"):
        path, table = spec.rsplit(":", 1)
        return path, table
    return spec, default


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a", help="out db, or DB:TABLE")
    ap.add_argument("b", help="out db, or DB:TABLE")
    ap.add_argument("--points-db", help="points db, to classify disagreements")
    ap.add_argument("--tracts-db", help="load.db, to classify disagreements (mod_spatialite)")
    ap.add_argument("--show", type=int, default=5)
    a = ap.parse_args()
    pa, ta = split(a.a)
    pb, tb = split(a.b)
    con = sqlite3.connect("file:%s?mode=ro" % pa, uri=True)
    con.execute("ATTACH ? AS b", ("file:%s?mode=ro" % pb,))
    con.execute("CREATE TEMP TABLE ja AS SELECT id, geoid FROM main.%s" % ta)
    con.execute("CREATE TEMP TABLE jb AS SELECT id, geoid FROM b.%s" % tb)
    con.execute("CREATE INDEX temp.ja_id ON ja(id)")
    con.execute("CREATE INDEX temp.jb_id ON jb(id)")
    r = {}
    r["rows_a"] = con.execute("SELECT count(*) FROM ja").fetchone()[0]
    r["rows_b"] = con.execute("SELECT count(*) FROM jb").fetchone()[0]
    r["dup_ids_a"] = r["rows_a"] - con.execute("SELECT count(DISTINCT id) FROM ja").fetchone()[0]
    r["dup_ids_b"] = r["rows_b"] - con.execute("SELECT count(DISTINCT id) FROM jb").fetchone()[0]
    q = """SELECT
        sum(x.geoid IS NOT NULL AND x.geoid = y.geoid),
        sum(x.geoid IS NULL AND y.geoid IS NULL),
        sum(x.geoid IS NOT NULL AND y.geoid IS NULL),
        sum(x.geoid IS NULL AND y.geoid IS NOT NULL),
        sum(x.geoid IS NOT NULL AND y.geoid IS NOT NULL AND x.geoid <> y.geoid)
      FROM ja x JOIN jb y USING (id)"""
    (r["same"], r["both_null"], r["only_a"], r["only_b"], r["different"]) = (
        v or 0 for v in con.execute(q).fetchone())
    r["missing_in_b"] = con.execute(
        "SELECT count(*) FROM ja WHERE id NOT IN (SELECT id FROM jb)").fetchone()[0]
    r["missing_in_a"] = con.execute(
        "SELECT count(*) FROM jb WHERE id NOT IN (SELECT id FROM ja)").fetchone()[0]
    dis = con.execute("""SELECT x.id, x.geoid, y.geoid FROM ja x JOIN jb y USING (id)
                         WHERE x.geoid IS NOT y.geoid ORDER BY x.id""").fetchall()
    r["disagreements"] = len(dis)
    if a.tracts_db and a.points_db and dis:
        s = sqlite3.connect("file:%s?mode=ro" % a.tracts_db, uri=True)
        s.enable_load_extension(True)
        s.load_extension("mod_spatialite")
        s.execute("ATTACH ? AS pts", ("file:%s?mode=ro" % a.points_db,))
        kinds = {"boundary": 0, "interior": 0, "outside": 0, "overlap": 0}
        examples = []
        for pid, ga, gb in dis:
            lon, lat = s.execute("SELECT lon, lat FROM pts.points WHERE id = ?", (pid,)).fetchone()
            rows = s.execute("""SELECT t.GEOID,
                    ST_Covers(t.geometry, MakePoint(?1, ?2, 4269)),
                    ST_Within(MakePoint(?1, ?2, 4269), t.geometry)
                  FROM tracts t JOIN tracts_rtree r ON r.id = t.rowid
                  WHERE r.minx <= ?1 AND r.maxx >= ?1 AND r.miny <= ?2 AND r.maxy >= ?2
                  ORDER BY t.GEOID""", (lon, lat)).fetchall()
            cov = [g for g, c, w in rows if c == 1]
            wit = [g for g, c, w in rows if w == 1]
            if not cov:
                k = "outside"
            elif not wit:
                k = "boundary"
            elif len(wit) == 1:
                k = "interior"
            else:
                k = "overlap"
            kinds[k] += 1
            if len(examples) < a.show:
                examples.append({"id": pid, "lon": lon, "lat": lat, "a": ga, "b": gb,
                                 "kind": k, "covers": cov, "within": wit})
        r["disagreement_kinds"] = kinds
        r["examples"] = examples
    elif dis:
        r["examples"] = [{"id": i, "a": x, "b": y} for i, x, y in dis[:a.show]]
    r["a"], r["b"] = a.a, a.b
    print(json.dumps(r))


if __name__ == "__main__":
    main()
