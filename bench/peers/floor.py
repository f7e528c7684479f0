#!/usr/bin/python3
"""floor.py -- peer benchmark: the floor, SQLite alone, no geometry.

What it measures: the cost every method pays whatever its geometry: SQLite
reading the points (id, lon, lat) and writing an equal-sized (id, geoid)
table with a constant 11-character GEOID into a fresh output db:

  ATTACH points db AS pts;   -- connection opened on the fresh out db
  CREATE TABLE res AS SELECT id, '00000000000' AS geoid FROM pts.points
    [WHERE id <= max_id]     -- --limit N: the first N points by id

through Python's sqlite3 module (the same SQLite library as the other
Python peers; the sqlite3 CLI gives the same figure within noise).
lon and lat are not read by this statement (SQLite skips the columns it
does not need), as with bench.py's floor.

Phases: startup (imports + connect + attach), query (the CREATE TABLE ...
AS). "seconds" = wall from the start of the script to the end of the
query. answers_sha and n_assigned as for every peer (here every point gets
the constant, so n_assigned = points); peak_rss_mb from getrusage.

Run (from /work/main):
  /usr/bin/python3 bench/peers/floor.py \
      --points-db build/bench/points_1000000.db --out-db /tmp/peer-out/floor.db \
      [--limit N]
"""
import time

T0 = time.monotonic()

import argparse
import json
import resource
import sqlite3

from common import answers, fresh


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--points-db", required=True)
    ap.add_argument("--out-db", required=True)
    ap.add_argument("--limit", type=int, default=-1)
    a = ap.parse_args()

    fresh(a.out_db)
    con = sqlite3.connect(a.out_db, isolation_level=None)
    con.execute("ATTACH ? AS pts", (a.points_db,))
    if a.limit >= 0:
        max_id = con.execute("SELECT max(id) FROM (SELECT id FROM pts.points ORDER BY id LIMIT ?)",
                             (a.limit,)).fetchone()[0]
        where, params = " WHERE id <= ?", (max_id,)
    else:
        where, params = "", ()
    ph = {"startup": time.monotonic() - T0}
    t = time.monotonic()
    con.execute("CREATE TABLE res AS SELECT id, '00000000000' AS geoid FROM pts.points" + where,
                params)
    ph["query"] = time.monotonic() - t
    npoints = con.execute("SELECT count(*) FROM res").fetchone()[0]  # after timing
    con.close()
    total = ph["startup"] + ph["query"]

    sha, n = answers(a.out_db)
    print(json.dumps({
        "method": "floor", "points": npoints, "seconds": round(total, 3),
        "phases": {k: round(v, 3) for k, v in ph.items()},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_children_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "answers_sha": sha, "n_assigned": n, "rule": "constant GEOID",
    }))


if __name__ == "__main__":
    main()
