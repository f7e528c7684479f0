#!/usr/bin/python3
"""postgis_within.py -- peer benchmark: PostGIS ST_Within join, end to end.

What it measures: points in a SQLite table -> a new SQLite table res(id
INTEGER, geoid TEXT) in a fresh output db, through a PostgreSQL 15 +
PostGIS 3.3 server, as a PostGIS user would: COPY the data in, one SQL
join with parallel workers, COPY the answers out.

The server is a throwaway cluster, not counted: initdb (as the `postgres`
user when run as root: PostgreSQL refuses root) into a fresh temp dir,
pg_ctl start listening only on a unix socket in that dir, CREATE EXTENSION
postgis; at the end (also on error or SIGTERM) pg_ctl stop -m immediate and
the temp dir removed. Settings (appended to postgresql.conf):
  max_parallel_workers_per_gather = --workers (2), and points gets
  parallel_workers = --workers, so the join runs as the leader + 2 workers
  whatever the table size; shared_buffers = 1GB (holds every table and the
  index: tracts ~0.3 GB); work_mem = 64MB; maintenance_work_mem = 512MB
  (GIST build); default_toast_compression = lz4 (tract geometries, ~3 kB
  each, are TOASTed: lz4 loads ~1.7x faster than the default pglz, the
  join is no slower); jit = off (see --jit); everything else the defaults.
Tables are UNLOGGED (a scratch join: no WAL; the default fsync stays on).

Counted, in this order ("seconds" = their sum + startup):
  startup       imports and argument parsing (from the start of the script)
  tracts_load   SELECT GEOID, AsBinary(geometry) FROM tracts (the same
                load.db the SpatiaLite and GEOS peers read, mod_spatialite
                for the WKB) streamed by binary COPY into
                tracts(geoid text, geom geometry(MultiPolygon, 4269))
  tracts_index  CREATE INDEX ... USING gist (geom); ANALYZE tracts
  points_in     SELECT id, lon, lat FROM points ORDER BY id [LIMIT n]
                streamed by binary COPY into points(id int8, lon, lat
                float8); ANALYZE points
  join          CREATE UNLOGGED TABLE res AS
                  SELECT p.id, min(t.geoid) AS geoid FROM points p
                    LEFT JOIN tracts t
                      ON ST_Within(ST_Point(p.lon, p.lat, 4269), t.geom)
                   GROUP BY p.id
                The plan (in the output): Gather Merge of 2 workers, each a
                Parallel Seq Scan on points, a nested loop into a GIST index
                scan of tracts (bbox), ST_Within on the candidates, and a
                partial aggregate; the final aggregate in the leader.  (The
                SpatiaLite peer's form, a LATERAL/correlated subquery with
                ORDER BY geoid LIMIT 1, gets no parallel plan in
                PostgreSQL 15: a subquery with LIMIT or outer references is
                not parallel safe.  It ran about 1.7x slower, serial.)
  results_out   COPY res TO STDOUT -> fresh out db, CREATE TABLE res(id
                INTEGER, geoid TEXT), one INSERT per row in one transaction
As GeoPandas, the notebook, the GEOS program and tracts_assign do (and
unlike the SpatiaLite peer, which uses the R*Tree load_tracts built),
reading the polygons and building the spatial index are counted;
"seconds_without_tracts" leaves tracts_load and tracts_index out, for
comparison with a PostGIS database that already holds the tracts.

Rule: `within` (points on tract boundaries get NULL), ties (overlaps only)
to the smallest GEOID (C collation: byte order, as SQLite), like the
SpatiaLite peer.

Memory: sampled_peak_sum_rss_mb / sampled_peak_sum_pss_mb = the largest
sum over this process and the postmaster with all its children (backend,
parallel workers, background processes) of Rss / Pss from
/proc/PID/smaps_rollup, sampled every 0.1 s during the counted phases
(shared_buffers pages count once they are touched; Pss splits them among
the processes). peak_rss_mb = getrusage of this process alone.

Output: one JSON line: method, points, seconds, seconds_without_tracts,
phases, uncounted (cluster setup and teardown), peak_rss_mb,
peak_rss_children_mb, sampled_peak_sum_rss_mb, sampled_peak_sum_pss_mb,
answers_sha (sha256 of the "id,geoid\\n" lines ordered by id of the points
with a GEOID, read back from the out db after timing), n_assigned, rule,
workers, workers_planned, plan, settings, versions.

Needs (Debian 12): postgresql-15 postgresql-15-postgis-3 python3-psycopg2
libsqlite3-mod-spatialite.

Run (from /work/main, as root or as a user who may run initdb):
  /usr/bin/python3 bench/peers/postgis_within.py \
      --points-db build/bench/points_1000000.db \
      --out-db /tmp/peer-out/postgis.db [--tracts-db build/bench/load.db] \
      [--workers 2] [--limit N]
"""
import time

T0 = time.monotonic()

import argparse
import glob
import io
import json
import os
import pwd
import resource
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import tempfile

from common import ROOT, Sampler, answers, fresh

import psycopg2

PGCOPY_HEADER = b"PGCOPY\n\xff\r\n\0" + struct.pack("!ii", 0, 0)
PGCOPY_TRAILER = struct.pack("!h", -1)

JOIN = """CREATE UNLOGGED TABLE res AS
SELECT p.id, min(t.geoid) AS geoid
  FROM points p
  LEFT JOIN tracts t ON ST_Within(ST_Point(p.lon, p.lat, 4269), t.geom)
 GROUP BY p.id"""


def pg_bindir():
    for d in ["/usr/lib/postgresql/15/bin"] + sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                                                     reverse=True):
        if os.path.exists(os.path.join(d, "initdb")):
            return d
    raise SystemExit("no PostgreSQL server: apt-get install postgresql-15 postgresql-15-postgis-3")


class CopyIn:
    """File-like object for cursor.copy_expert(... FROM STDIN (FORMAT binary)):
    read(size) returns the next piece (about size bytes, any length will do)
    of the binary COPY stream of rows; pack(row) gives a row's bytes as a
    tuple of parts, joined once."""

    def __init__(self, rows, pack):
        self.rows, self.pack = iter(rows), pack
        self.head = [PGCOPY_HEADER]
        self.done = False

    def read(self, size=1 << 20):
        if self.done:
            return b""
        parts, n = self.head, 0
        self.head = []
        for r in self.rows:
            p = self.pack(r)
            parts.extend(p)
            n += len(p[-1])
            if n >= size:
                break
        else:
            self.done = True
            parts.append(PGCOPY_TRAILER)
        return b"".join(parts)


POINT = struct.Struct("!hiqidid")
POINT_NULL = struct.pack("!i", -1)


def pack_point(r):
    i, lon, lat = r
    if lon is not None and lat is not None:
        return (POINT.pack(3, 8, i, 8, float(lon), 8, float(lat)),)
    f = lambda v: POINT_NULL if v is None else struct.pack("!id", 8, float(v))
    return (struct.pack("!hiq", 3, 8, i) + f(lon) + f(lat),)


TRACT_HEAD = struct.Struct("!hi")
WKB_LEN = struct.Struct("!i")


def pack_tract(r):
    g, wkb = r
    g = g.encode()
    return TRACT_HEAD.pack(2, len(g)), g, WKB_LEN.pack(len(wkb)), wkb


class Cluster:
    """A throwaway PostgreSQL cluster in a temp dir, unix socket only."""

    def __init__(self, conf):
        self.bindir = pg_bindir()
        self.dir = tempfile.mkdtemp(prefix="tracts-postgis-")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "server.log")
        self.as_user = []
        self.started = False
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        s = socket.socket()
        s.bind(("127.0.0.1", 0))       # a free port number: it only names the socket
        self.port = s.getsockname()[1]
        s.close()
        self.run("initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                 "--locale=C", "--no-sync", "--no-instructions")
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("\n# postgis_within.py\nlisten_addresses = ''\nport = %d\n"
                    "unix_socket_directories = '%s'\n" % (self.port, self.dir))
            for k, v in conf.items():
                f.write("%s = %s\n" % (k, v))
        self.started = True           # from here on, stop() tries pg_ctl stop
        self.run("pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "start")

    def run(self, prog, *args):
        r = subprocess.run(self.as_user + [os.path.join(self.bindir, prog)] + list(args),
                           capture_output=True, text=True)
        if r.returncode != 0:
            log = ""
            if os.path.exists(self.log):
                with open(self.log) as f:
                    log = f.read()[-4000:]
            raise RuntimeError("%s failed:\n%s%s%s" % (prog, r.stdout, r.stderr, log))

    def postmaster_pid(self):
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            return int(f.readline())

    def connect(self):
        return psycopg2.connect(host=self.dir, port=self.port, user="postgres",
                                dbname="postgres")

    def stop(self):
        try:
            if self.started:
                try:
                    self.run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "-t", "30", "stop")
                except Exception:
                    try:               # pg_ctl failed: end our postmaster by its pid
                        os.kill(self.postmaster_pid(), signal.SIGQUIT)
                        time.sleep(1)
                    except (OSError, ValueError):
                        pass
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--points-db", required=True)
    ap.add_argument("--out-db", required=True)
    ap.add_argument("--tracts-db", default=os.path.join(ROOT, "build", "bench", "load.db"))
    ap.add_argument("--workers", type=int, default=2,
                    help="max_parallel_workers_per_gather (the leader also works)")
    ap.add_argument("--limit", type=int, default=-1)
    ap.add_argument("--shared-buffers", default="1GB")
    ap.add_argument("--work-mem", default="64MB")
    ap.add_argument("--jit", default="off")
    a = ap.parse_args()
    ph = {"startup": time.monotonic() - T0}

    # SIGTERM/SIGINT -> an exception, so the finally below tears the cluster down
    def on_signal(sig, frame):
        raise SystemExit("signal %d" % sig)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    conf = {"shared_buffers": a.shared_buffers, "work_mem": a.work_mem,
            "maintenance_work_mem": "512MB",
            "max_parallel_workers_per_gather": a.workers,
            "max_parallel_workers": max(8, a.workers),
            "max_worker_processes": max(8, a.workers + 2),
            "default_toast_compression": "lz4",
            "jit": a.jit}
    unc = {}
    t = time.monotonic()
    cl = Cluster(conf)
    try:
        pg = cl.connect()
        pg.autocommit = True
        cur = pg.cursor()
        cur.execute("CREATE EXTENSION postgis")
        cur.execute("SELECT version(), postgis_full_version()")
        versions = dict(zip(("postgresql", "postgis"), cur.fetchone()))
        unc["cluster_setup"] = time.monotonic() - t
        smp = Sampler([os.getpid(), cl.postmaster_pid()], 0.1)
        smp.start()
        plan, planned = run_counted(a, cur, ph)
        smp.stop.set()
        smp.join()
        smp.sample()
        settings = {}
        for k in conf:
            cur.execute("SELECT current_setting(%s)", (k,))
            settings[k] = cur.fetchone()[0]
        pg.close()
    finally:
        t = time.monotonic()
        cl.stop()
        unc["cluster_teardown"] = time.monotonic() - t

    total = sum(ph.values())
    sha, n = answers(a.out_db)
    con = sqlite3.connect(a.out_db)
    npoints = con.execute("SELECT count(*) FROM res").fetchone()[0]
    con.close()
    print(json.dumps({
        "method": "postgis_within", "points": npoints, "seconds": round(total, 3),
        "seconds_without_tracts": round(total - ph["tracts_load"] - ph["tracts_index"], 3),
        "phases": {k: round(v, 3) for k, v in ph.items()},
        "uncounted": {k: round(v, 3) for k, v in unc.items()},
        "points_per_s_join": round(npoints / ph["join"], 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_children_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "sampled_peak_sum_rss_mb": round(smp.peak_rss / 1024, 1),
        "sampled_peak_sum_pss_mb": round(smp.peak_pss / 1024, 1),
        "answers_sha": sha, "n_assigned": n, "rule": "within",
        "workers": a.workers, "workers_planned": planned, "plan": plan,
        "settings": settings, "versions": versions,
    }))


def run_counted(a, cur, ph):
    # -- tracts_load
    t = time.monotonic()
    s = sqlite3.connect("file:%s?mode=ro" % a.tracts_db, uri=True)
    s.enable_load_extension(True)
    s.load_extension("mod_spatialite")
    cur.execute("CREATE UNLOGGED TABLE tracts(geoid text, geom geometry(MultiPolygon, 4269))")
    src = CopyIn(s.execute("SELECT GEOID, AsBinary(geometry) FROM tracts"), pack_tract)
    cur.copy_expert("COPY tracts FROM STDIN (FORMAT binary)", src, size=1 << 20)
    s.close()
    ph["tracts_load"] = time.monotonic() - t

    # -- tracts_index
    t = time.monotonic()
    cur.execute("CREATE INDEX tracts_geom ON tracts USING gist (geom)")
    cur.execute("ANALYZE tracts")
    ph["tracts_index"] = time.monotonic() - t

    # -- points_in
    t = time.monotonic()
    s = sqlite3.connect("file:%s?mode=ro" % a.points_db, uri=True)
    cur.execute("CREATE UNLOGGED TABLE points(id int8, lon float8, lat float8) "
                "WITH (parallel_workers = %d)" % a.workers)
    src = CopyIn(s.execute("SELECT id, lon, lat FROM points ORDER BY id LIMIT ?", (a.limit,)),
                 pack_point)
    cur.copy_expert("COPY points FROM STDIN (FORMAT binary)", src, size=1 << 20)
    s.close()
    cur.execute("ANALYZE points")
    ph["points_in"] = time.monotonic() - t

    # -- join (the plan is taken before the clock starts)
    cur.execute("EXPLAIN " + JOIN)
    plan = [r[0] for r in cur.fetchall()]
    t = time.monotonic()
    cur.execute(JOIN)
    ph["join"] = time.monotonic() - t
    planned = None
    for line in plan:
        if "Workers Planned" in line:
            planned = int(line.split(":")[1])

    # -- results_out
    t = time.monotonic()
    buf = io.BytesIO()
    cur.copy_expert("COPY res TO STDOUT", buf, size=1 << 20)
    fresh(a.out_db)
    o = sqlite3.connect(a.out_db)
    o.execute("CREATE TABLE res(id INTEGER, geoid TEXT)")

    def rows():
        for line in buf.getvalue().split(b"\n"):
            if line:
                i, g = line.split(b"\t")
                yield int(i), (None if g == b"\\N" else g.decode())
    o.executemany("INSERT INTO res VALUES (?, ?)", rows())
    o.commit()
    o.close()
    ph["results_out"] = time.monotonic() - t
    return plan, planned


if __name__ == "__main__":
    main()
