#!/usr/bin/python3
"""make bench: national-scale figures for tracts, peers measured in the same run.

    /usr/bin/python3 bench/bench.py [--runs 3] [--points 1000000]

Data (made once under build/bench/, deterministic): the 52 state tract zips
and the national zip of tools/gentracts.c (74,000 tracts, ~15M vertices),
and a 1M-point table clustered like businesses (tools/genpoints.c).

Measured, each the median of --runs runs, on a fresh database each time:

  load   load_tracts on the 52 state zips; on the national zip;
         ogr2ogr -f SQLite -dsco SPATIALITE=YES from /vsizip/ on the
         national zip, and once per state zip (-append), as GDAL users do.
  index  build time and bytes of the point-in-polygon index against the raw
         coordinate bytes (bench/pipbench.c, no SQL), and its raw lookup rate.
  query  SELECT count(tract_of(lon, lat)) FROM points (index already built);
         CREATE TABLE ... AS SELECT id, tract_of(lon, lat) FROM points; and
         the floor: the same CREATE TABLE writing a constant 11-char GEOID,
         i.e. SQLite reading the points and writing (id, geoid) alone.

Results go to stdout and build/bench/results.md.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers"))
from common import cpu_model, tree_mem  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
B = os.path.join(ROOT, "build")
D = os.path.join(B, "bench")
EXT = os.path.join(B, "tracts")


def run(cmd, **kw):
    t = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    dt = time.monotonic() - t
    if r.returncode != 0:
        sys.exit("failed: %s\n%s%s" % (" ".join(cmd), r.stdout, r.stderr))
    return dt, r.stdout


def pss_tree(pid):
    """Summed PSS (bytes) of pid and its descendants."""
    return tree_mem([pid])[1] * 1024


MARK = os.path.join(D, "sampling.mark")


def run_sampled(cmd, script):
    """Run cmd with script on stdin; return (stdout, peak summed PSS). If
    the script creates the file MARK (.shell touch), only samples taken
    after that count (to leave out the index build)."""
    import threading
    if os.path.exists(MARK):
        os.remove(MARK)
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    peak = [0]
    done = []
    gated = ".shell touch" in script

    def sample():
        while not done:
            if not gated or os.path.exists(MARK):
                peak[0] = max(peak[0], pss_tree(p.pid))
            time.sleep(0.02)
    th = threading.Thread(target=sample)
    th.start()
    out, err = p.communicate(script)
    done.append(1)
    th.join()
    if p.returncode != 0:
        sys.exit("failed: %s\n%s" % (" ".join(cmd), err))
    return out, peak[0]


def sql(db, script):
    return run(["sqlite3", "-batch", db], input=script)


def median_of(n, fn):
    xs = [fn() for _ in range(n)]
    return statistics.median(xs), xs


def fresh(path):
    for p in (path, path + "-journal"):
        if os.path.exists(p):
            os.remove(p)
    return path


def data(npoints):
    states = os.path.join(D, "states")
    nat = os.path.join(D, "national")
    if not os.path.exists(os.path.join(states, "cb_2019_72_tract_500k.zip")):
        os.makedirs(states, exist_ok=True)
        os.makedirs(nat, exist_ok=True)
        run([os.path.join(B, "gentracts"), "--out", states, "--states", "all",
             "--national"])
        shutil.move(os.path.join(states, "cb_2019_us_tract_500k.zip"), nat)
    pts = os.path.join(D, "points_%d.db" % npoints)
    if not os.path.exists(pts):
        run([os.path.join(B, "genpoints"), "--db", pts, "--table", "points",
             "--n", str(npoints)])
    return states, os.path.join(nat, "cb_2019_us_tract_500k.zip"), pts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--points", type=int, default=1000000)
    ap.add_argument("--only", default="load,index,sql,assign,peers",
                    help="comma list of sections to run")
    ap.add_argument("--no-peers", action="store_true",
                    help="skip GeoPandas, SpatiaLite and the GEOS program")
    ap.add_argument("--big", action="store_true",
                    help="also 10x --points for tracts_assign")
    a = ap.parse_args()
    os.makedirs(D, exist_ok=True)
    states, natzip, pts = data(a.points)
    out = []
    say = lambda s="": (print(s), out.append(s))
    cpu = cpu_model()
    say("# tracts benchmark")
    say()
    say("Machine: %d cores (%s), %s. Data: 52 generated state zips, 74,000 "
        "tracts, ~15M vertices; %d points. Median of %d runs."
        % (os.cpu_count(), cpu, time.strftime("%Y-%m-%d"), a.points, a.runs))
    say()

    only = set(a.only.split(","))
    if a.no_peers:
        only.discard("peers")
    # ---- load
    db = os.path.join(D, "load.db")

    def ours(path):
        fresh(db)
        return sql(db, ".load %s\nselect count(*) from load_tracts('%s');\n"
                   % (EXT, path))[0]

    def ogr_nat():
        fresh(db)
        return run(["ogr2ogr", "-f", "SQLite", "-dsco", "SPATIALITE=YES",
                    "-nlt", "PROMOTE_TO_MULTI", db, "/vsizip/" + natzip])[0]

    def ogr_states():
        fresh(db)
        t = 0.0
        for i, z in enumerate(sorted(os.listdir(states))):
            cmd = ["ogr2ogr", "-f", "SQLite", "-nlt", "PROMOTE_TO_MULTI",
                   "-nln", "tracts"]
            cmd += ["-dsco", "SPATIALITE=YES"] if i == 0 else ["-append"]
            t += run(cmd + [db, "/vsizip/" + os.path.join(states, z)])[0]
        return t

    if "load" in only:
        load_section(a, say, ours, ogr_nat, ogr_states)
    fresh(db)          # the peers above left their own tables: load ours
    sql(db, ".load %s\nselect count(*) from load_tracts('%s');\n" % (EXT, states))
    index_and_rest(a, say, db, pts, out, only)


def load_section(a, say, ours, ogr_nat, ogr_states):
    states = os.path.join(D, "states")
    natzip = os.path.join(D, "national", "cb_2019_us_tract_500k.zip")
    m_states, _ = median_of(a.runs, lambda: ours(states))
    m_nat, _ = median_of(a.runs, lambda: ours(natzip))
    o_nat, _ = median_of(a.runs, ogr_nat)
    o_states, _ = median_of(a.runs, ogr_states)
    say("## Loading the national set")
    say()
    say("| method | seconds | ogr2ogr (national zip) / method |")
    say("|---|---:|---:|")
    for name, v in [("load_tracts, 52 state zips (directory)", m_states),
                    ("load_tracts, national zip", m_nat),
                    ("ogr2ogr, national zip from /vsizip/", o_nat),
                    ("ogr2ogr, 52 state zips from /vsizip/ (-append)", o_states)]:
        say("| %s | %.2f | %.2fx |" % (name, v, o_nat / v))
    say()


def index_and_rest(a, say, db, pts, out, only):
    n = a.points
    # ---- index
    pb = []
    for _ in range(a.runs if "index" in only else 0):
        _, o = run([os.path.join(B, "pipbench"), db, pts])
        kv = dict(x.split("=") for x in o.split("\n")[0].split())
        pb.append(kv)
    if pb:
        index_table(say, pb)
    sql_and_rest(a, say, db, pts, out, only)


def index_table(say, pb):
    build = statistics.median(float(k["build_s"]) for k in pb)
    rate = statistics.median(float(k["lookups_per_s"]) for k in pb)
    say("## The point-in-polygon index (bench/pipbench.c, no SQL)")
    say()
    say("| measure | value |")
    say("|---|---:|")
    say("| polygons / vertices | %s / %s |" % (pb[0]["polygons"], pb[0]["vertices"]))
    say("| raw coordinate bytes (16 per vertex) | %.0f MB |" % (int(pb[0]["raw_bytes"]) / 1e6))
    say("| index bytes | %.0f MB (%.2fx raw) |" % (int(pb[0]["index_bytes"]) / 1e6,
                                                  float(pb[0]["ratio"])))
    say("| build, from the tracts table | %.2f s |" % build)
    say("| lookups per second, one thread | %.2f M |" % (rate / 1e6))
    say()


def sql_and_rest(a, say, db, pts, out, only):
    n = a.points
    # ---- SQL throughput
    def q_count():
        return sql(db, ".load %s\nselect tract_of(0, 0);\nattach '%s' as p;\n"
                   ".timer on\nselect count(tract_of(lon, lat)) from p.points;\n"
                   % (EXT, pts))[1]

    def timer(outp):
        for line in outp.splitlines():
            if line.startswith("Run Time: real"):
                return float(line.split()[3])
        raise RuntimeError(outp)

    def q_create(expr):
        def f():
            o = sql(db, ".load %s\nselect tract_of(0, 0);\nattach '%s' as p;\n"
                    "drop table if exists out;\n.timer on\n"
                    "create table out as select id, %s as geoid from p.points;\n"
                    % (EXT, pts, expr))[1]
            return timer(o)
        return f

    c_floor, _ = median_of(a.runs, q_create("'00000000000'"))
    if "sql" in only:
        c_count, _ = median_of(a.runs, lambda: timer(q_count()))
        c_create, _ = median_of(a.runs, q_create("tract_of(lon, lat)"))
        sql_table(say, n, c_count, c_create, c_floor)
    if "assign" in only:
        assign_section(a, say, db, pts, n, c_floor, timer)
    if "peers" in only:
        peers_section(a, say, db, pts, n, timer)
    say("Command: `make bench` (bench/bench.py --runs %d --points %d%s)." %
        (a.runs, n, " --big" if a.big else ""))
    with open(os.path.join(D, "results.md"), "w") as f:
        f.write("\n".join(out) + "\n")


def sql_table(say, n, c_count, c_create, c_floor):
    say("## tract_of in SQL, one process (index built beforehand)")
    say()
    say("| query | seconds | points/s | / floor |")
    say("|---|---:|---:|---:|")
    say("| `SELECT count(tract_of(lon, lat)) FROM points` | %.2f | %.2f M | |"
        % (c_count, n / c_count / 1e6))
    say("| `CREATE TABLE out AS SELECT id, tract_of(lon, lat) ...` | %.2f | %.2f M | %.2fx |"
        % (c_create, n / c_create / 1e6, c_create / c_floor))
    say("| floor: the same writing a constant GEOID | %.2f | %.2f M | 1.00x |"
        % (c_floor, n / c_floor / 1e6))
    say()


def assign_section(a, say, db, pts, n, c_floor, timer):
    # ---- tracts_assign
    say("## tracts_assign: points table to (id, geoid, how) table")
    say()
    say("Index built beforehand (its build time is in the index table); "
        "peak memory is the summed PSS of sqlite3 and its helpers during the "
        "call, sampled every 20 ms from /proc/PID/smaps_rollup. The floor "
        "here writes a constant GEOID; writing real 11-character GEOIDs and "
        "the how column in plain SQL takes about 2x that.")
    say()
    say("| points | workers | seconds | points/s | / floor | peak PSS | PSS / 1 worker |")
    say("|---:|---:|---:|---:|---:|---:|---:|")
    big = [(pts, n, c_floor)]
    if a.big:
        _, _, pts10 = data(10 * n)
        f10, _ = median_of(a.runs, lambda: timer(sql(db, (
            ".load %s\nselect tract_of(0, 0);\nattach '%s' as p;\n"
            "drop table if exists out;\n.timer on\ncreate table out as "
            "select id, '00000000000' as geoid from p.points;\n")
            % (EXT, pts10))[1]))
        big.append((pts10, 10 * n, f10))
    assign_results = {}
    for path, npts, floor in big:
        pss1 = None
        for w in (1, 2):
            def one():
                # the old table is dropped untimed, as the floor's is
                script = (".load %s\nselect tract_of(0, 0);\nattach '%s' as p;\n"
                          "drop table if exists out;\n.shell touch %s\n"
                          ".timer on\nselect tracts_assign('p.points', 'lon', "
                          "'lat', 'out', %d);\n" % (EXT, path, MARK, w))
                o, peak = run_sampled(["sqlite3", "-batch", db], script)
                return timer(o), peak
            xs = [one() for _ in range(a.runs)]
            sec = statistics.median(x[0] for x in xs)
            peak = max(x[1] for x in xs)
            if w == 1:
                pss1 = peak
            assign_results[(npts, w)] = sec
            say("| %d | %d | %.2f | %.2f M | %.2fx | %.0f MB | %.2fx |"
                % (npts, w, sec, npts / sec / 1e6, sec / floor, peak / 1e6,
                   peak / pss1))
    say()
    for npts in sorted(set(k[0] for k in assign_results)):
        say("Scaling 1 -> 2 workers at %d points: %.2fx." %
            (npts, assign_results[(npts, 1)] / assign_results[(npts, 2)]))
    say()
    # SQLite's own cost for tracts_assign's table: plain SQL reading the
    # coordinates and writing (id INTEGER PRIMARY KEY, geoid, how) with
    # constants, no join. The parent's part of a call cannot go below it.
    shape = median_of(a.runs, lambda: timer(sql(db, (
        "attach '%s' as p;\ndrop table if exists out;\n"
        "create table out(id INTEGER PRIMARY KEY, geoid TEXT, how TEXT NOT NULL);\n"
        ".timer on\ninsert into out select id, '00000000000', 'inside' "
        "from p.points where lon is not null and lat is not null;\n")
        % pts)[1]))[0]
    say("Plain SQL writing the same table shape (id INTEGER PRIMARY KEY, geoid, "
        "how; constants, reading lon and lat, no join) at %d points: %.2f s = "
        "%.2fx the floor; tracts_assign with 2 workers takes %.2fx that."
        % (n, shape, shape / c_floor, assign_results[(n, 2)] / shape))
    say()


def peers_section(a, say, db, pts, n, timer):
    # ---- peers: the whole job, points table to (id, geoid) table
    if True:
        say("## The join end to end against peers (%d points, same data, same run)" % n)
        say()
        say("Each starts from the points table and the tract files or tables "
            "and ends with an (id, geoid) table written, in a fresh process. "
            "tracts_assign rows: 'index saved' reads the index an earlier call "
            "saved in tracts_index (the usual case after the first use); "
            "'index built' builds it from the tracts table first "
            "(tracts_index emptied, persist_index 0), like the peers that "
            "build an STRtree. Slow peers run once; tracts rows are medians of "
            "%d runs. SpatiaLite runs on the first 100,000 points. Ratios "
            "are against tracts_assign, 2 workers, index saved." % a.runs)
        say()
        say("| method | seconds | points/s | tracts_assign(2) is faster by | peak memory |")
        say("|---|---:|---:|---:|---|")

        def e2e(w, saved):
            pre = "" if saved else (
                "select tracts_config('persist_index', 0);\n"
                "delete from tracts_index;\n")
            def f():
                o, peak = run_sampled(["sqlite3", "-batch", db], (
                    ".load %s\nattach '%s' as p;\n%sdrop table if exists out;\n"
                    ".timer on\n"
                    "select tracts_assign('p.points', 'lon', 'lat', 'out', %d);\n"
                    % (EXT, pts, pre, w)))
                return timer(o), peak
            xs = [f() for _ in range(a.runs)]
            return statistics.median(x[0] for x in xs), max(x[1] for x in xs)
        tb2, mb2 = e2e(2, False)
        tb1, mb1 = e2e(1, False)
        sql(db, ".load %s\nselect count(tract_of(0, 0)) ;" % EXT)   # saves it
        t2, m2 = e2e(2, True)
        t1, m1 = e2e(1, True)
        outdb = os.path.join(D, "peer_out.db")
        peers = [
            ("GeoPandas 0.12 sjoin within (one process)",
             ["/usr/bin/python3", "bench/peers/geopandas_sjoin.py"], n),
            ("the notebook: ProcessPoolExecutor(2), one state a task",
             ["/usr/bin/python3", "bench/peers/notebook_pool.py", "--workers", "2"], n),
            ("SpatiaLite ST_Within with its R*Tree (100k points)",
             ["/usr/bin/python3", "bench/peers/spatialite_within.py",
              "--tracts-db", db, "--limit", "100000"], 100000),
            ("PostGIS 3.3 ST_Within, 2 parallel workers (COPY in and out; tracts load + GIST counted)",
             ["/usr/bin/python3", "bench/peers/postgis_within.py",
              "--tracts-db", db, "--workers", "2"], n),
            ("plain GEOS C: STRtree + prepared polygons, 1 process",
             [os.path.join(B, "geos_baseline"), "--tracts-db", db, "--workers", "1"], n),
            ("plain GEOS C: STRtree + prepared polygons, 2 processes",
             [os.path.join(B, "geos_baseline"), "--tracts-db", db, "--workers", "2"], n),
            ("floor: SQLite reads the points, writes (id, constant geoid)",
             ["/usr/bin/python3", "bench/peers/floor.py"], n),
        ]
        for name, t, m in (("2 workers, index saved", t2, m2),
                           ("1 worker, index saved", t1, m1),
                           ("2 workers, index built", tb2, mb2),
                           ("1 worker, index built", tb1, mb1)):
            say("| tracts_assign, %s | %.2f | %.2f M | %.2fx | %.0f MB PSS |"
                % (name, t, n / t / 1e6, t / t2, m / 1e6))
        import json
        for name, cmd, npts in peers:
            _, o = run(cmd + ["--points-db", pts, "--out-db", fresh(outdb)],
                       cwd=ROOT)
            j = json.loads(o.strip().splitlines()[-1])
            sec = float(j["seconds"])
            mem = "%.0f MB RSS" % j.get("peak_rss_mb", 0)
            if "join_pss_sum_mb" in j:
                mem = "%.0f MB PSS (parent + children)" % j["join_pss_sum_mb"]
            elif "sampled_peak_sum_pss_mb" in j:
                mem = "%.0f MB PSS (parent + children)" % j["sampled_peak_sum_pss_mb"]
            # compare per point: peers on fewer points are scaled
            per_pt_ratio = (sec / npts) / (t2 / n)
            say("| %s | %.2f | %s | %.1fx | %s |"
                % (name, sec, "%.3f M" % (npts / sec / 1e6), per_pt_ratio, mem))
        say()



if __name__ == "__main__":
    main()
