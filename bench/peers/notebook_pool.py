#!/usr/bin/python3
"""notebook_pool.py -- peer benchmark: the seed notebook's process pool, end to end.

What it measures: points in a SQLite table -> a new SQLite table
res(id INTEGER, geoid TEXT) in a fresh output db, the way the seed notebook
(/work/shared/seed-notebook.txt, "identify census tracts from coordinates")
does it: concurrent.futures.ProcessPoolExecutor(W) with one task per state.

Each task (in a worker process, forked from the parent):
  - reads its state's zip with geopandas.read_file("zip://...") (GEOID,
    geometry; with --notebook-crs also .to_crs(EPSG:4326) as the notebook did),
  - reads from SQLite the points whose lon/lat fall in that state's bounding
    box (tracts.total_bounds): pandas.read_sql with a bbox WHERE (the points
    table has no index on lon/lat, so each task scans the table),
  - gpd.sjoin(points, tracts, how="left", predicate="within"),
  - returns the (id, GEOID) frame (pickled back to the parent).
The parent concatenates the frames, keeps per id the first non-NULL GEOID
(a point inside several state boxes comes back once per box, NULL from the
states it is not in), gives NULL to ids matched by no state, and writes the
table with DataFrame.to_sql. Points that fall in no state's bounding box are
seen by no task and get no row (reported as "rows_written").

Phases: startup (imports), pool (submit + all tasks: read zip, read points,
sjoin, in the workers), gather (concat + dedup in the parent), write.
Inside-task times are summed over tasks in "task_seconds_sum".

Memory: peak_rss_mb = getrusage(RUSAGE_SELF) of the parent;
peak_rss_children_mb = getrusage(RUSAGE_CHILDREN), i.e. the largest single
worker (not a sum); sampled_peak_sum_rss_mb / sampled_peak_sum_pss_mb = the
largest sum over parent + live workers of Rss / Pss from
/proc/PID/smaps_rollup, sampled every 0.25 s by a thread in the parent.

Rule: `within` (points on tract boundaries get NULL). answers_sha = sha256
of the "id,geoid\\n" lines ordered by id of the points with a GEOID, read
back from the out db after timing.

Run (from /work/main):
  /usr/bin/python3 bench/peers/notebook_pool.py \
      --points-db build/bench/points_1000000.db --out-db /tmp/peer-out/pool.db \
      --workers 2 [--states-dir build/bench/states] [--limit N] [--notebook-crs]
"""
import time

T0 = time.monotonic()

import argparse
import concurrent.futures
import glob
import json
import os
import resource
import sqlite3
import warnings

from common import ROOT, Sampler, answers, write_res

import geopandas as gpd
import pandas as pd

warnings.filterwarnings("ignore")


def tracts_from_coords(zip_path, points_db, max_id, notebook_crs):
    """One state: the notebook's task, reading points from SQLite by bbox."""
    t = time.monotonic()
    tracts = gpd.read_file("zip://" + zip_path)[["GEOID", "geometry"]]
    if notebook_crs:
        tracts = tracts.to_crs("EPSG:4326")
    minx, miny, maxx, maxy = tracts.total_bounds
    con = sqlite3.connect("file:%s?mode=ro" % points_db, uri=True)
    df = pd.read_sql("SELECT id, lon, lat FROM points WHERE lon BETWEEN ? AND ? "
                     "AND lat BETWEEN ? AND ? AND id <= ?", con,
                     params=(minx, maxx, miny, maxy, max_id))
    con.close()
    if len(df) == 0:
        return None, time.monotonic() - t
    df = gpd.GeoDataFrame(df[["id"]], geometry=gpd.points_from_xy(df["lon"], df["lat"]),
                          crs="EPSG:4326" if notebook_crs else "EPSG:4269")
    df = gpd.sjoin(df, tracts, how="left", predicate="within")
    return pd.DataFrame(df[["id", "GEOID"]]), time.monotonic() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--points-db", required=True)
    ap.add_argument("--out-db", required=True)
    ap.add_argument("--states-dir", default=os.path.join(ROOT, "build", "bench", "states"))
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--limit", type=int, default=-1)
    ap.add_argument("--notebook-crs", action="store_true",
                    help="also tracts.to_crs(EPSG:4326) in each task, as the notebook did")
    a = ap.parse_args()
    ph = {"startup": time.monotonic() - T0}
    smp = Sampler([os.getpid()], 0.25)
    smp.start()

    t = time.monotonic()
    con = sqlite3.connect("file:%s?mode=ro" % a.points_db, uri=True)
    max_id = con.execute("SELECT max(id) FROM (SELECT id FROM points ORDER BY id LIMIT ?)",
                         (a.limit,)).fetchone()[0]
    npoints = con.execute("SELECT count(*) FROM points WHERE id <= ?", (max_id,)).fetchone()[0]
    con.close()
    zips = sorted(os.path.abspath(z)
                  for z in glob.glob(os.path.join(a.states_dir, "cb_*_tract_*.zip")))
    if not zips:
        raise SystemExit("no cb_*_tract_*.zip in %s" % a.states_dir)
    with concurrent.futures.ProcessPoolExecutor(a.workers) as pool:
        res = list(pool.map(tracts_from_coords, zips, [a.points_db] * len(zips),
                            [max_id] * len(zips), [a.notebook_crs] * len(zips)))
    ph["pool"] = time.monotonic() - t

    t = time.monotonic()
    task_sum = sum(s for _, s in res)
    frames = [f for f, _ in res if f is not None]
    df = pd.concat(frames, ignore_index=True)
    rows_returned = len(df)
    hit = df[df["GEOID"].notna()].drop_duplicates("id", keep="first")
    miss = pd.DataFrame({"id": pd.unique(df["id"][~df["id"].isin(hit["id"])])})
    miss["GEOID"] = None
    out = pd.concat([hit, miss], ignore_index=True).sort_values("id", kind="stable")
    out = pd.DataFrame({"id": out["id"].to_numpy(), "geoid": out["GEOID"].to_numpy()})
    del df, hit, miss, frames, res
    ph["gather"] = time.monotonic() - t

    t = time.monotonic()
    write_res(a.out_db, out)
    ph["write"] = time.monotonic() - t
    total = time.monotonic() - T0
    smp.stop.set()
    smp.join()

    sha, n = answers(a.out_db)
    print(json.dumps({
        "method": "notebook_pool", "points": npoints, "seconds": round(total, 3),
        "phases": {k: round(v, 3) for k, v in ph.items()},
        "task_seconds_sum": round(task_sum, 3), "workers": a.workers, "tasks": len(zips),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_children_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "sampled_peak_sum_rss_mb": round(smp.peak_rss / 1024, 1),
        "sampled_peak_sum_pss_mb": round(smp.peak_pss / 1024, 1),
        "rows_returned": rows_returned, "rows_written": len(out),
        "answers_sha": sha, "n_assigned": n, "rule": "within",
        "notebook_crs": a.notebook_crs,
    }))


if __name__ == "__main__":
    main()
