#!/usr/bin/python3
"""geopandas_sjoin.py -- peer benchmark: one GeoPandas spatial join, end to end.

What it measures: points in a SQLite table -> a new SQLite table
res(id INTEGER, geoid TEXT) in a fresh output db, the way a GeoPandas user
does it in one process:

  startup      importing pandas/geopandas (counted in "seconds")
  read_points  pandas.read_sql("SELECT id, lon, lat FROM points ORDER BY id
               [LIMIT n]") and a GeoDataFrame of points_from_xy (EPSG:4269)
  read_tracts  geopandas.read_file("zip:///.../cb_2019_SS_tract_500k.zip")
               for all 52 state zips (the notebook's way), pd.concat, keeping
               GEOID and geometry
  join         gpd.sjoin(points, tracts, how="left", predicate="within"),
               then drop_duplicates on id keeping the first (a point inside
               overlapping tracts could match twice; a point on a shared
               edge matches none with `within`, and gets NULL)
  write        DataFrame.to_sql("res", sqlite3 connection, index=False):
               one row per point, geoid NULL where no tract matched

Rule: `within` (points on tract boundaries get no tract), unlike tract_of's
`covers` + smallest GEOID. Compare answers with bench/peers/compare.py.

Output: one JSON line: method, points, seconds (wall from the start of the
script, imports included, to the end of the write), phases, peak_rss_mb
(getrusage SELF), peak_rss_children_mb (none here, for uniformity),
answers_sha (sha256 of the "id,geoid\\n" lines ordered by id of the points
with a GEOID, read back from the out db after timing), n_assigned.

Run (from /work/main, Debian's python: it has geopandas 0.12 / shapely 1.8):
  /usr/bin/python3 bench/peers/geopandas_sjoin.py \
      --points-db build/bench/points_1000000.db --out-db /tmp/peer-out/gpd.db \
      [--states-dir build/bench/states] [--limit N]
"""
import time

T0 = time.monotonic()

import argparse
import glob
import json
import os
import resource
import sqlite3
import warnings

from common import ROOT, answers, write_res

import geopandas as gpd
import pandas as pd

warnings.filterwarnings("ignore")  # geopandas 0.12's shapely/pygeos notices


def peak_mb(who):
    return resource.getrusage(who).ru_maxrss / 1024.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--points-db", required=True)
    ap.add_argument("--out-db", required=True)
    ap.add_argument("--states-dir", default=os.path.join(ROOT, "build", "bench", "states"))
    ap.add_argument("--limit", type=int, default=-1)
    a = ap.parse_args()
    ph = {"startup": time.monotonic() - T0}

    t = time.monotonic()
    con = sqlite3.connect("file:%s?mode=ro" % a.points_db, uri=True)
    df = pd.read_sql("SELECT id, lon, lat FROM points ORDER BY id LIMIT ?", con,
                     params=(a.limit,))
    con.close()
    detail = {"read_sql": time.monotonic() - t}
    pts = gpd.GeoDataFrame(df[["id"]], geometry=gpd.points_from_xy(df["lon"], df["lat"]),
                           crs="EPSG:4269")
    del df
    ph["read_points"] = time.monotonic() - t
    detail["points_from_xy"] = ph["read_points"] - detail["read_sql"]

    t = time.monotonic()
    zips = sorted(glob.glob(os.path.join(a.states_dir, "cb_*_tract_*.zip")))
    if not zips:
        raise SystemExit("no cb_*_tract_*.zip in %s" % a.states_dir)
    tracts = pd.concat([gpd.read_file("zip://" + os.path.abspath(z))[["GEOID", "geometry"]]
                        for z in zips], ignore_index=True)
    tracts = gpd.GeoDataFrame(tracts, geometry="geometry", crs="EPSG:4269")
    ph["read_tracts"] = time.monotonic() - t

    t = time.monotonic()
    j = gpd.sjoin(pts, tracts, how="left", predicate="within")
    j = j.drop_duplicates("id", keep="first")
    out = pd.DataFrame({"id": j["id"].to_numpy(), "geoid": j["GEOID"].to_numpy()})
    del j
    ph["join"] = time.monotonic() - t

    t = time.monotonic()
    write_res(a.out_db, out)
    ph["write"] = time.monotonic() - t
    total = time.monotonic() - T0

    sha, n = answers(a.out_db)
    print(json.dumps({
        "method": "geopandas_sjoin", "points": len(out), "seconds": round(total, 3),
        "phases": {k: round(v, 3) for k, v in ph.items()},
        "detail": {k: round(v, 3) for k, v in detail.items()},
        "peak_rss_mb": round(peak_mb(resource.RUSAGE_SELF), 1),
        "peak_rss_children_mb": round(peak_mb(resource.RUSAGE_CHILDREN), 1),
        "answers_sha": sha, "n_assigned": n, "tracts": len(tracts),
        "rule": "within", "versions": {"geopandas": gpd.__version__, "pandas": pd.__version__},
    }))


if __name__ == "__main__":
    main()
