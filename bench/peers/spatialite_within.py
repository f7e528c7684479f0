#!/usr/bin/python3
"""spatialite_within.py -- peer benchmark: SQLite + mod_spatialite, end to end.

What it measures: points in a SQLite table -> a new SQLite table res(id,
geoid) in a fresh output db, in SQL alone, as a SpatiaLite user would:
load.db (tracts + tracts_rtree, written by load_tracts) opened with
mod_spatialite loaded, the points db and the fresh out db attached, and

  CREATE TABLE out.res AS
  SELECT p.id,
         (SELECT t.GEOID FROM tracts t JOIN tracts_rtree r ON r.id = t.rowid
           WHERE r.minx <= p.lon AND r.maxx >= p.lon
             AND r.miny <= p.lat AND r.maxy >= p.lat
             AND ST_Within(MakePoint(p.lon, p.lat, 4269), t.geometry)
           ORDER BY t.GEOID LIMIT 1) AS geoid
    FROM pts.points p WHERE p.id <= :max_id

(max_id = the id of the --limit'th point: the first N points by id.) The
R*Tree gives the candidates, ST_Within (GEOS, through SpatiaLite, which
parses both blobs on every call) decides. Rule: `within` (points on tract
boundaries get NULL), ties (overlaps only) to the smallest GEOID.

It is slow, so --limit defaults to 100000; --limit -1 = every point.

Phases: startup (imports, connect, load mod_spatialite, attach), query (the
CREATE TABLE ... AS, which reads, joins and writes in one statement).
"seconds" = wall from the start of the script to the end of the query.
Also reports points_per_s = points / query seconds, and the query plan.

Output: one JSON line: method, points, seconds, phases, points_per_s,
peak_rss_mb, peak_rss_children_mb, answers_sha (sha256 of the
"id,geoid\\n" lines ordered by id of points with a GEOID, read back from the
out db after timing), n_assigned, spatialite_version, geos_version.

Run (from /work/main):
  /usr/bin/python3 bench/peers/spatialite_within.py \
      --points-db build/bench/points_1000000.db \
      --out-db /tmp/peer-out/spatialite.db [--tracts-db build/bench/load.db] \
      [--limit 100000]
"""
import time

T0 = time.monotonic()

import argparse
import json
import os
import resource
import sqlite3

from common import ROOT, answers, fresh


QUERY = """CREATE TABLE out.res AS
SELECT p.id,
       (SELECT t.GEOID FROM tracts t JOIN tracts_rtree r ON r.id = t.rowid
         WHERE r.minx <= p.lon AND r.maxx >= p.lon
           AND r.miny <= p.lat AND r.maxy >= p.lat
           AND ST_Within(MakePoint(p.lon, p.lat, 4269), t.geometry)
         ORDER BY t.GEOID LIMIT 1) AS geoid
  FROM pts.points p WHERE p.id <= ?"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--points-db", required=True)
    ap.add_argument("--out-db", required=True)
    ap.add_argument("--tracts-db", default=os.path.join(ROOT, "build", "bench", "load.db"))
    ap.add_argument("--limit", type=int, default=100000)
    a = ap.parse_args()

    fresh(a.out_db)
    # load.db is opened read-write only because SQLite opens attached
    # databases with the main database's flags; nothing is written to it.
    con = sqlite3.connect(a.tracts_db, isolation_level=None)
    con.enable_load_extension(True)
    con.load_extension("mod_spatialite")
    con.execute("ATTACH ? AS pts", (a.points_db,))
    con.execute("ATTACH ? AS out", (a.out_db,))
    max_id = con.execute("SELECT max(id) FROM (SELECT id FROM pts.points ORDER BY id LIMIT ?)",
                         (a.limit,)).fetchone()[0]
    npoints = con.execute("SELECT count(*) FROM pts.points WHERE id <= ?", (max_id,)).fetchone()[0]
    sv, gv = con.execute("SELECT spatialite_version(), geos_version()").fetchone()
    plan = [r[3] for r in con.execute("EXPLAIN QUERY PLAN " + QUERY.split("AS\n", 1)[1], (max_id,))]
    ph = {"startup": time.monotonic() - T0}

    t = time.monotonic()
    con.execute(QUERY, (max_id,))
    ph["query"] = time.monotonic() - t
    con.close()
    total = time.monotonic() - T0

    sha, n = answers(a.out_db)
    print(json.dumps({
        "method": "spatialite_within", "points": npoints, "seconds": round(total, 3),
        "phases": {k: round(v, 3) for k, v in ph.items()},
        "points_per_s": round(npoints / ph["query"], 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_children_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "answers_sha": sha, "n_assigned": n, "rule": "within",
        "spatialite_version": sv, "geos_version": gv, "plan": plan,
    }))


if __name__ == "__main__":
    main()
