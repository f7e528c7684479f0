#!/usr/bin/python3
"""make bench, part 3: tracts_assign over several boundary layers, one pass
against one pass per layer.

    /usr/bin/python3 bench/layers_bench.py [--runs 3] [--points 1000000]

Data (made once under build/bench-layers/, deterministic, reused if present):

  tracts       the 52 state tract zips of bench/bench.py's national set
               (gentracts --states all: 74,000 tracts, ~15M vertices)
  tracts_2020  another vintage: gentracts --states all --year 2020 --seed 9
               (other tract geometry, 2020 file names and fields)
  counties     the national county zip of the first set:
               gentracts --states all --layer county
  points       genpoints --n N, clustered like businesses (as bench.py)

loaded into build/bench-layers/layers.db with load_tracts / load_boundaries.

Everything is measured in this one process (/usr/bin/python3's sqlite3,
which can load extensions), on one connection, after one warm-up call per
layer (SELECT boundary_of(layer, 0, 0): it builds the layer's index, or
reads the one saved in tracts_index, keeps it in the connection and saves
it). The timed calls are then

    SELECT tracts_assign('p.points', 'lon', 'lat', dest, workers, layers)

with layers one of 'tracts', 'tracts_2020', 'tracts,tracts_2020',
'counties', 'tracts,counties', workers 2 and 1; the destination is dropped
before (untimed), so a call is: read the points, look them up, write the
table. Each figure is the median of --runs runs; the cases are interleaved
within a run. The one-pass tables' columns are compared with the tables of
the separate passes (and workers 1 with workers 2): every row whose geoid
or how differs, or that is missing on one side, is a mismatch.

Also shown, for where the time goes: the floor (SQLite reading the points
and writing a table of the same shape with constant values), the time of
reading the points and looking them up on one thread (SELECT
count(boundary_of(layer, lon, lat))), and the time a fresh connection
takes to read each saved index.

Results go to stdout and build/bench-layers/results.md.
"""
import argparse
import hashlib
import os
import sqlite3
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers"))
from common import cpu_model  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
B = os.path.join(ROOT, "build")
D = os.path.join(B, "bench-layers")
EXT = os.path.join(B, "tracts")
LAYERS = ("tracts", "tracts_2020", "counties")


def run(cmd):
    t = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("failed: %s\n%s%s" % (" ".join(cmd), r.stdout, r.stderr))
    return time.monotonic() - t


def gen(sub, marker, args):
    """build/gentracts --out D/sub ARGS unless D/sub/marker exists."""
    out = os.path.join(D, sub)
    if not os.path.exists(os.path.join(out, marker)):
        os.makedirs(out, exist_ok=True)
        print("generating %s: gentracts %s" % (sub, " ".join(args)), flush=True)
        run([os.path.join(B, "gentracts"), "--out", out] + args)
    return out


def data(npoints):
    t19 = gen("tracts", "cb_2019_72_tract_500k.zip", ["--states", "all"])
    t20 = gen("tracts_2020", "cb_2020_72_tract_500k.zip",
              ["--states", "all", "--year", "2020", "--seed", "9"])
    cty = os.path.join(gen("counties", "cb_2019_us_county_500k.zip",
                           ["--states", "all", "--layer", "county"]),
                       "cb_2019_us_county_500k.zip")
    pts = os.path.join(D, "points_%d.db" % npoints)
    if not os.path.exists(pts):
        print("generating points: genpoints --n %d" % npoints, flush=True)
        run([os.path.join(B, "genpoints"), "--db", pts + ".tmp", "--table",
             "points", "--n", str(npoints)])
        os.rename(pts + ".tmp", pts)
    return {"tracts": t19, "tracts_2020": t20, "counties": cty}, pts


def same_as_bench_py(t19):
    """Whether our 2019 tract zips are byte-identical to bench.py's (if it
    has made them): the same generator arguments must give the same data."""
    other = os.path.join(B, "bench", "states")
    if not os.path.isdir(other):
        return "bench.py's set not present to compare"
    def digest(d):
        h = hashlib.sha256()
        for f in sorted(os.listdir(d)):
            if f.endswith(".zip"):
                h.update(f.encode())
                with open(os.path.join(d, f), "rb") as fh:
                    h.update(fh.read())
        return h.hexdigest()
    return ("byte-identical to bench.py's build/bench/states"
            if digest(t19) == digest(other) else
            "DIFFERS from bench.py's build/bench/states")


def connect(db):
    con = sqlite3.connect(db, isolation_level=None)   # autocommit: no open
    con.enable_load_extension(True)                   # write transaction, so
    con.load_extension(EXT)                           # tracts_assign forks
    return con


def loaded(con):
    """{layer: features} of the layers the database holds."""
    try:
        have = {r[0] for r in con.execute("SELECT layer FROM tracts_layers")}
    except sqlite3.OperationalError:
        return {}
    return {l: con.execute('SELECT count(*) FROM "%s"' % l).fetchall()[0][0]
            for l in LAYERS if l in have}


def load(db, paths):
    con = connect(db) if os.path.exists(db) else None
    have = loaded(con) if con else {}
    if con:
        con.close()
    if set(have) == set(LAYERS) and have["tracts"] == 74000 \
            and have["tracts_2020"] == 74000 and have["counties"] > 0:
        return have, "reused"
    for p in (db, db + "-journal"):
        if os.path.exists(p):
            os.remove(p)
    con = connect(db)
    for l in LAYERS:
        t = time.monotonic()
        rows = con.execute("SELECT error FROM load_boundaries(?, ?)",
                           (l, paths[l])).fetchall()
        errs = [r[0] for r in rows if r[0]]
        if errs:
            sys.exit("load_boundaries(%s): %s" % (l, errs[0]))
        print("loaded %s: %d files, %.1f s" % (l, len(rows), time.monotonic() - t),
              flush=True)
    have = loaded(con)
    con.close()
    return have, "loaded now"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--points", type=int, default=1000000)
    ap.add_argument("--only", default=None,
                    help="bench.py's sections: run only if this names layers")
    ap.add_argument("--no-peers", action="store_true", help="ignored (bench.py's)")
    ap.add_argument("--big", action="store_true", help="ignored (bench.py's)")
    ap.add_argument("--vertices", help="ignored (fetch_bench.py's)")
    a = ap.parse_args()
    if a.only is not None and "layers" not in a.only.split(","):
        return
    os.makedirs(D, exist_ok=True)
    n = a.points
    paths, pts = data(n)
    db = os.path.join(D, "layers.db")
    have, how_loaded = load(db, paths)

    con = connect(db)
    con.execute("ATTACH ? AS p", (pts,))
    npts = con.execute("SELECT count(*) FROM p.points").fetchall()[0][0]

    # ---- warm-up: one call per layer builds (or reads) its index, keeps it
    # in this connection and saves it in tracts_index.
    warm = {}
    for l in LAYERS:
        t = time.monotonic()
        con.execute("SELECT boundary_of(?, 0, 0)", (l,)).fetchall()
        warm[l] = time.monotonic() - t
    saved = dict(con.execute(
        "SELECT i.layer, count(*) FROM tracts_index i JOIN tracts_layers y "
        "ON y.layer = i.layer AND y.generation = i.generation GROUP BY 1"))
    missing = [l for l in LAYERS if not saved.get(l)]
    if missing:
        sys.exit("index not saved for %s" % ", ".join(missing))
    # and what a fresh connection pays to read each saved index
    con2 = connect(db)
    read_saved = {}
    for l in LAYERS:
        t = time.monotonic()
        con2.execute("SELECT boundary_of(?, 0, 0)", (l,)).fetchall()
        read_saved[l] = time.monotonic() - t
    con2.close()
    con.execute("SELECT count(*), sum(lon), sum(lat) FROM p.points").fetchall()

    cases = [("a", "tracts"), ("b", "tracts_2020"), ("c", "tracts,tracts_2020"),
             ("d", "counties"), ("e", "tracts,counties")]
    workers = (2, 1)

    def dest(case, w):
        return "out_%s_w%d" % (case, w)

    def assign(case, layers, w):
        d = dest(case, w)
        con.execute('DROP TABLE IF EXISTS "%s"' % d)
        t = time.monotonic()
        got = con.execute("SELECT tracts_assign('p.points', 'lon', 'lat', ?, ?, ?)",
                          (d, w, layers)).fetchall()[0][0]
        dt = time.monotonic() - t
        if got != npts:
            sys.exit("tracts_assign(%s, %d) wrote %s rows, not %d"
                     % (layers, w, got, npts))
        return dt

    def floor(ncol):
        """SQLite alone: read the points, write a table of the shape of a
        tracts_assign destination with ncol layers, constant values."""
        con.execute("DROP TABLE IF EXISTS floor_out")
        cols = ", ".join('"l%d" TEXT, "l%d_how" TEXT NOT NULL' % (i, i)
                         for i in range(ncol))
        vals = ", ".join("'00000000000', 'inside'" for _ in range(ncol))
        t = time.monotonic()
        con.execute("SAVEPOINT f")
        con.execute("CREATE TABLE floor_out(id INTEGER PRIMARY KEY, %s)" % cols)
        con.execute("INSERT INTO floor_out SELECT id, %s FROM p.points" % vals)
        con.execute("RELEASE f")
        return time.monotonic() - t

    def lookups(l):
        t = time.monotonic()
        con.execute("SELECT count(boundary_of(?, lon, lat)) FROM p.points",
                    (l,)).fetchall()
        return time.monotonic() - t

    times = {(c, w): [] for c, _ in cases for w in workers}
    fl = {1: [], 2: []}
    lk = {l: [] for l in LAYERS}
    for r in range(a.runs):
        for w in workers:
            for c, layers in cases:
                times[(c, w)].append(assign(c, layers, w))
        for k in fl:
            fl[k].append(floor(k))
        for l in LAYERS:
            lk[l].append(lookups(l))
        print("run %d of %d done" % (r + 1, a.runs), flush=True)
    con.execute("DROP TABLE IF EXISTS floor_out")
    med = {k: statistics.median(v) for k, v in times.items()}
    fmed = {k: statistics.median(v) for k, v in fl.items()}
    lmed = {k: statistics.median(v) for k, v in lk.items()}

    # ---- answers: one pass against the separate passes, w1 against w2
    def diff(t1, c1, t2, c2):
        q = ('SELECT (SELECT count(*) FROM "{t1}" x JOIN "{t2}" y USING (id) '
             'WHERE x."{c1}" IS NOT y."{c2}" OR x."{c1}_how" IS NOT y."{c2}_how")'
             ' + (SELECT count(*) FROM "{t1}" WHERE id NOT IN (SELECT id FROM "{t2}"))'
             ' + (SELECT count(*) FROM "{t2}" WHERE id NOT IN (SELECT id FROM "{t1}"))')
        return con.execute(q.format(t1=t1, c1=c1, t2=t2, c2=c2)).fetchall()[0][0]
    mism = {}
    for w in workers:
        mism[("c", w)] = (diff(dest("c", w), "tracts", dest("a", w), "tracts")
                          + diff(dest("c", w), "tracts_2020", dest("b", w), "tracts_2020"))
        mism[("e", w)] = (diff(dest("e", w), "tracts", dest("a", w), "tracts")
                          + diff(dest("e", w), "counties", dest("d", w), "counties"))
    cross = sum(diff(dest(c, 1), l, dest(c, 2), l)
                for c, ls in cases for l in ls.split(","))
    inside = {l: con.execute('SELECT count(*) FROM "%s" WHERE "%s" IS NOT NULL'
                             % (dest("c" if l != "counties" else "e", 2), l)).fetchall()[0][0]
              for l in LAYERS}
    version = con.execute("SELECT sqlite_version()").fetchall()[0][0]
    for c, _ in cases:
        for w in workers:
            con.execute('DROP TABLE IF EXISTS "%s"' % dest(c, w))
    con.close()

    # ---- report
    out = []
    say = lambda s="": (print(s), out.append(s))
    cpu = cpu_model()
    say("# tracts_assign over several layers: one pass against one per layer")
    say()
    say("Machine: %d cores (%s), %s, SQLite %s (Python's). Data (%s): tracts "
        "%d (2019, the national set of bench.py: %s), tracts_2020 %d "
        "(--year 2020 --seed 9), counties %d; %d points clustered like "
        "businesses. Median of %d runs, all in one process and connection."
        % (os.cpu_count(), cpu, time.strftime("%Y-%m-%d"), version, how_loaded,
           have["tracts"], same_as_bench_py(paths["tracts"]),
           have["tracts_2020"], have["counties"], npts, a.runs))
    say()
    say("Warm-up, one call per layer (`SELECT boundary_of(layer, 0, 0)`), so "
        "every index is built, saved in tracts_index and held by the "
        "connection before the timed calls: %s. A fresh connection reads "
        "the saved indexes in %s (not in the times below)."
        % (", ".join("%s %.2f s" % (l, warm[l]) for l in LAYERS),
           ", ".join("%s %.2f s" % (l, read_saved[l]) for l in LAYERS)))
    say()
    say("| layers (`tracts_assign(..., workers, layers)`) | 2 workers, s | 1 worker, s |")
    say("|---|---:|---:|")
    for c, layers in cases:
        say("| (%s) `'%s'` | %.2f | %.2f |" % (c, layers, med[(c, 2)], med[(c, 1)]))
    for c, x, y in (("c", "a", "b"), ("e", "a", "d")):
        say("| one pass / separate passes: (%s) / ((%s) + (%s)) | %.2f | %.2f |"
            % (c, x, y, med[(c, 2)] / (med[(x, 2)] + med[(y, 2)]),
               med[(c, 1)] / (med[(x, 1)] + med[(y, 1)])))
    say("| mismatches, one-pass columns against separate tables | %d | %d |"
        % (mism[("c", 2)] + mism[("e", 2)], mism[("c", 1)] + mism[("e", 1)]))
    say()
    spread = max(((max(v) / min(v), k) for k, v in times.items()))
    say("Run to run, the widest spread of one case (slowest / fastest run) "
        "was %.2fx, for (%s) with %d worker%s." % (spread[0], spread[1][0],
        spread[1][1], "s" if spread[1][1] > 1 else ""))
    say()
    say("Mismatches between the 1-worker and 2-worker tables: %d. Points with "
        "a feature: %s."
        % (cross, ", ".join("%s %d" % (l, inside[l]) for l in LAYERS)))
    say()
    say("Where the time goes: the floor (SQLite reading the points and writing "
        "the same-shaped table of constants) is %.2f s for one layer's "
        "columns and %.2f s for two; reading the points and looking them up "
        "on one thread without writing (`SELECT count(boundary_of(layer, "
        "lon, lat)) FROM points`) takes %s."
        % (fmed[1], fmed[2],
           ", ".join("%s %.2f s" % (l, lmed[l]) for l in LAYERS)))
    say()
    say("Command: `/usr/bin/python3 bench/layers_bench.py --runs %d --points %d` "
        "(the last step of `make bench`)." % (a.runs, n))
    with open(os.path.join(D, "results.md"), "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
