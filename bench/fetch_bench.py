#!/usr/bin/python3
"""make bench, part 2: fetch_tracts('*') against the usual ways of
downloading the 52 state tract zips, from a local stand-in for the Census
server with 300 ms latency and a 20 Mbit/s (2.5 MB/s) cap per connection.

    /usr/bin/python3 bench/fetch_bench.py [--runs 3] [--runs-slow 1]

With --vertices N the zips are a set of their own (gentracts --vertices N,
in build/bench/states-vN); make bench uses 325, which gives 181 MB, the
size of the real 2019 files.

Data: the 52 generated state zips of bench/bench.py (build/bench/states,
made with build/gentracts if missing), hard-linked (or copied) under their
Census names into build/bench/mirror/geo/tiger/GENZ2019/shp/ and served by
tests/census_server.py (a subprocess, rules latency_ms 300, rate 2500000,
stopped at the end, also on error or Ctrl-C) at
http://127.0.0.1:PORT/geo/tiger/GENZ2019/shp/cb_2019_SS_tract_500k.zip.

Methods, each downloading all 52 files into a fresh directory (or a fresh
database and cache), timed as the wall time of the whole command from the
parent (so a Python method includes starting its interpreter, ~0.03 s):

  curl loop        `curl -sf -o FILE URL`, one file after another
                   (--runs-slow times, default once: it takes ~1 min)
  ThreadPool       a Python child: concurrent.futures.ThreadPoolExecutor()
                   with the default max_workers (min(32, nproc + 4)), one
                   task per file, urllib.request to disk (the notebook's way)
  xargs -P 16      `xargs -P 16 -n 1 curl -sf --output-dir DIR -O`
  fetch_tracts     a /usr/bin/python3 child: sqlite3, build/tracts.so, fresh
                   database and cache_dir, tracts_config connections 16,
                   progress -1, then SELECT * FROM fetch_tracts('*'); every
                   row must have a NULL error and the tracts loaded must
                   equal the records of the .dbf files. Unlike the peers it
                   also verifies (inflates, CRCs) and LOADS every file into
                   SQLite, overlapped with the downloads.
  ... 8 conns      the same with the default connections (8)
  ... no split     the same, 16 connections, split_kb 0 (no Range pieces)
  ... warm cache   again on the database and cache of the 16-connection
                   run: every state must be a 304 from the cache, and the
                   database must not be written (total_changes 0, same
                   mtime and size)

Each peer's files are checked byte for byte (size and sha256) against the
sources; fetch_tracts's cache files likewise. The fast methods run --runs
times, interleaved round by round; the table shows medians.

Also measured per method: the CPU seconds of the server process (utime +
stime from /proc/PID/stat) and of the client (RUSAGE_CHILDREN), so a reader
can tell whether the Python server, on a small machine, was the bottleneck;
and once per round the largest file alone on one capped connection (a single
curl), against its floor size / 2.5 MB/s + 0.3 s.

The bar (from the issue): with 16 connections fetch_tracts is no slower than
xargs -P 16 curl, and within 1.3x of total bytes / (16 x 2.5 MB/s).

Takes bench/bench.py's arguments as well, so that bench/run.sh can pass it
"$@": it runs only when --only is not given or names `fetch`, and ignores
--points, --no-peers and --big. Results go to stdout and
build/bench/fetch_results.md.
"""
import argparse
import hashlib
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers"))
from common import cpu_model  # noqa: E402
import urllib.request
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
B = os.path.join(ROOT, "build")
D = os.path.join(B, "bench")
STATES = os.path.join(D, "states")
SHP = "geo/tiger/GENZ2019/shp"
MIRROR = os.path.join(D, "mirror")
W = os.path.join(D, "fetch")             # scratch: downloads, dbs, caches
EXT = os.path.join(B, "tracts")
PY = "/usr/bin/python3"

LATENCY_MS = 300
RATE = 2500000                           # bytes/s per connection: 20 Mbit/s
CONNS = 16
FIPS = [1, 2, 4, 5, 6, 8, 9, 10, 11, 12, 13, 15, 16, 17, 18, 19, 20, 21, 22,
        23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
        41, 42, 44, 45, 46, 47, 48, 49, 50, 51, 53, 54, 55, 56, 72]
NAMES = ["cb_2019_%02d_tract_500k.zip" % f for f in FIPS]

ENV = dict(os.environ, no_proxy="127.0.0.1,localhost",
           NO_PROXY="127.0.0.1,localhost")


def die(msg):
    raise SystemExit("fetch_bench: " + msg)


# ---- data -----------------------------------------------------------------

def data(vertices=None):
    """Make the state zips if missing (as bench.py's data() does, or with
    --vertices a set of its own) and the mirror tree; return {name: (size,
    sha256, dbf records)}."""
    if vertices and not os.path.exists(os.path.join(STATES, NAMES[-1])):
        os.makedirs(STATES, exist_ok=True)
        r = subprocess.run([os.path.join(B, "gentracts"), "--out", STATES,
                            "--states", "all", "--vertices", str(vertices)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            die("gentracts failed:\n" + r.stdout + r.stderr)
    if not os.path.exists(os.path.join(STATES, NAMES[-1])):
        os.makedirs(STATES, exist_ok=True)
        nat = os.path.join(D, "national")
        os.makedirs(nat, exist_ok=True)
        r = subprocess.run([os.path.join(B, "gentracts"), "--out", STATES,
                            "--states", "all", "--national"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            die("gentracts failed:\n" + r.stdout + r.stderr)
        shutil.move(os.path.join(STATES, "cb_2019_us_tract_500k.zip"), nat)
    mdir = os.path.join(MIRROR, SHP)
    os.makedirs(mdir, exist_ok=True)
    src = {}
    for n in NAMES:
        s = os.path.join(STATES, n)
        m = os.path.join(mdir, n)
        if not os.path.exists(s):
            die("missing %s" % s)
        st = os.stat(s)
        try:
            mt = os.stat(m)
            same = (mt.st_ino == st.st_ino or
                    (mt.st_size == st.st_size and sha256(m) == sha256(s)))
        except FileNotFoundError:
            same = False
        if not same:
            if os.path.lexists(m):
                os.remove(m)
            try:
                os.link(s, m)
            except OSError:
                shutil.copyfile(s, m)
        src[n] = (st.st_size, sha256(s), dbf_records(s))
    return src


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def dbf_records(path):
    """Record count of the zip's .dbf (header bytes 4..7)."""
    with zipfile.ZipFile(path) as z:
        dbf = [i for i in z.namelist() if i.lower().endswith(".dbf")]
        if len(dbf) != 1:
            die("%s: %d .dbf members" % (path, len(dbf)))
        with z.open(dbf[0]) as f:
            return int.from_bytes(f.read(8)[4:8], "little")


def check_files(dirname, src, what):
    """Every source file is in dirname, byte for byte; nothing else."""
    got = sorted(x for x in os.listdir(dirname) if x.endswith(".zip"))
    if got != sorted(src):
        die("%s: expected the 52 zips in %s, found %d (%s)"
            % (what, dirname, len(got), ", ".join(sorted(set(src) ^ set(got)))[:300]))
    for n, (size, h, _) in src.items():
        p = os.path.join(dirname, n)
        if os.path.getsize(p) != size or sha256(p) != h:
            die("%s: %s differs from the source (%d bytes, want %d)"
                % (what, p, os.path.getsize(p), size))


# ---- the server -----------------------------------------------------------

class Server:
    def __init__(self):
        rules = os.path.join(W, "rules.json")
        with open(rules, "w") as f:
            json.dump([{"match": "*", "latency_ms": LATENCY_MS,
                        "rate": RATE}], f)
        self.p = subprocess.Popen(
            [PY, os.path.join(ROOT, "tests", "census_server.py"),
             "--root", MIRROR, "--rules", rules, "--quiet"],
            stdout=subprocess.PIPE, text=True, env=ENV)
        line = self.p.stdout.readline().strip()
        if not line.isdigit():
            self.stop()
            die("the server did not start (said %r)" % line)
        self.port = int(line)
        self.base = "http://127.0.0.1:%d/geo/tiger/" % self.port
        self.tick = os.sysconf("SC_CLK_TCK")
        # The log's times count from the server's start on CLOCK_MONOTONIC,
        # as time.monotonic() does: find the offset with one request.
        self.control("reset")
        t = time.monotonic()
        req = urllib.request.Request(self.url(NAMES[0]), method="HEAD")
        urllib.request.urlopen(req).close()
        self.offset = t - self.control("log")[0]["t"]

    def control(self, what):
        """POST /_control/reset, or GET /_control/log (parsed)."""
        url = "http://127.0.0.1:%d/_control/%s" % (self.port, what)
        req = urllib.request.Request(url, data=b"" if what == "reset" else None)
        with urllib.request.urlopen(req) as r:
            return json.loads(r.read())

    def transfers(self, t0):
        """From the log since the last reset: (GETs made, the first one's
        arrival and the estimated last body byte (arrival + latency +
        bytes / rate), both in seconds after t0, a time.monotonic())."""
        log = [e for e in self.control("log") if e["method"] == "GET"]
        if not log:
            return 0, None, None
        first = min(e["t"] for e in log) + self.offset - t0
        last = max(e["t"] + LATENCY_MS / 1000 + e["bytes"] / RATE
                   for e in log) + self.offset - t0
        return len(log), first, last

    def url(self, name):
        return "%sGENZ2019/shp/%s" % (self.base, name)

    def cpu(self):
        """utime + stime of the server process, seconds."""
        with open("/proc/%d/stat" % self.p.pid) as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return (int(rest[11]) + int(rest[12])) / self.tick

    def alive(self):
        if self.p.poll() is not None:
            die("the server exited (status %s)" % self.p.returncode)

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


# ---- measuring ------------------------------------------------------------

def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(srv, cmd, stdin=None):
    """Run cmd; return (wall, server cpu, client cpu, stdout); the server's
    view of it in srv.last: (GETs, first arrival, last byte) after start."""
    srv.alive()
    srv.control("reset")
    s0, c0 = srv.cpu(), children_cpu()
    t0 = time.monotonic()
    r = subprocess.run(cmd, input=stdin, capture_output=True, text=True,
                       env=ENV)
    wall = time.monotonic() - t0
    s1, c1 = srv.cpu(), children_cpu()
    srv.last = srv.transfers(t0)
    if r.returncode != 0:
        die("failed (status %d): %s\n%s%s" % (r.returncode, " ".join(cmd)[:300],
                                             r.stdout[-2000:], r.stderr[-2000:]))
    return wall, s1 - s0, c1 - c0, r.stdout


def fresh_dir(path):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def m_seq(srv, src, run):
    d = fresh_dir(os.path.join(W, "seq"))
    cmd = ["sh", "-c", 'd=$1; shift; for u; do '
           'curl -sf -o "$d/${u##*/}" "$u" || exit 1; done', "_", d]
    res = timed(srv, cmd + [srv.url(n) for n in NAMES])
    check_files(d, src, "curl loop")
    shutil.rmtree(d)
    return res[:3], {}


POOL = r"""
import concurrent.futures, os, shutil, sys, urllib.request
d = sys.argv[1]
def download(url):
    path = os.path.join(d, url.rsplit("/", 1)[1])
    with urllib.request.urlopen(url) as r, open(path, "wb") as f:
        shutil.copyfileobj(r, f, 1 << 16)
    return path
with concurrent.futures.ThreadPoolExecutor() as pool:
    futures = [pool.submit(download, u) for u in sys.argv[2:]]
concurrent.futures.wait(futures)
paths = [f.result() for f in futures]
print(pool._max_workers)
"""


def m_pool(srv, src, run):
    d = fresh_dir(os.path.join(W, "pool"))
    w, s, c, out = timed(srv, [PY, "-c", POOL, d] + [srv.url(n) for n in NAMES])
    check_files(d, src, "ThreadPoolExecutor")
    shutil.rmtree(d)
    return (w, s, c), {"workers": int(out)}


def m_xargs(srv, src, run):
    d = fresh_dir(os.path.join(W, "xargs"))
    cmd = ["xargs", "-P", str(CONNS), "-n", "1", "curl", "-sf",
           "--output-dir", d, "-O"]
    res = timed(srv, cmd, "".join(srv.url(n) + "\n" for n in NAMES))
    check_files(d, src, "xargs -P %d curl" % CONNS)
    shutil.rmtree(d)
    return res[:3], {}


FETCH = r"""
import json, sqlite3, sys, time
ext, db, cache, base, conns, split = sys.argv[1:7]
t0 = time.monotonic()
con = sqlite3.connect(db)
con.enable_load_extension(True)
con.load_extension(ext)
for k, v in [("base_url", base), ("cache_dir", cache),
             ("connections", int(conns)), ("progress", -1)] + (
             [("split_kb", int(split))] if split != "-" else []):
    con.execute("select tracts_config(?, ?)", (k, v))
changes0 = con.total_changes
t1 = time.monotonic()
cur = con.execute("select * from fetch_tracts('*')")
cols = [c[0] for c in cur.description]
rows = [dict(zip(cols, r)) for r in cur]
con.commit()
t2 = time.monotonic()
n = con.execute("select count(*) from tracts").fetchone()[0]
print(json.dumps({"rows": rows, "count": n, "query_s": t2 - t1,
                  "setup_s": t1 - t0,
                  "changes": con.total_changes - changes0}))
"""


def fetch_run(srv, db, cache, conns, split="-"):
    w, s, c, out = timed(srv, [PY, "-c", FETCH, EXT, db, cache, srv.base,
                               str(conns), str(split)])
    return (w, s, c), json.loads(out)


def check_fetch(res, src, what, warm=False):
    rows = res["rows"]
    want = sum(v[2] for v in src.values())
    bad = [r for r in rows if r["error"] is not None]
    if bad:
        die("%s: %d states failed: %s" % (what, len(bad), "; ".join(
            "%s: %s" % (r["state"], r["error"]) for r in bad)[:1500]))
    if len(rows) != 52:
        die("%s: %d rows, want 52" % (what, len(rows)))
    for r in rows:
        name = "cb_2019_%s_tract_500k.zip" % r["fips"]
        if r["tracts"] != src[name][2]:
            die("%s: %s loaded %s tracts, the .dbf has %d"
                % (what, r["state"], r["tracts"], src[name][2]))
        if r["bytes"] != src[name][0]:
            die("%s: %s: %s bytes, want %d" % (what, r["state"], r["bytes"],
                                               src[name][0]))
        if warm and (r["status"] != 304 or r["from_cache"] != 1):
            die("%s: %s: status %s, from_cache %s (want a 304 from the cache)"
                % (what, r["state"], r["status"], r["from_cache"]))
        if not warm and (r["status"] not in (200, 206) or r["from_cache"]):
            die("%s: %s: status %s, from_cache %s"
                % (what, r["state"], r["status"], r["from_cache"]))
    if res["count"] != want:
        die("%s: tracts has %d rows, the .dbf files %d" % (what, res["count"], want))


def cache_dir_files(cache, srv):
    return os.path.join(cache, "127.0.0.1_%d" % srv.port, SHP)


def m_fetch(conns, split="-"):
    def f(srv, src, run):
        tag = "ft%d%s" % (conns, "" if split == "-" else "s%s" % split)
        db = os.path.join(W, tag + ".db")
        cache = os.path.join(W, tag + ".cache")
        for p in (db, db + "-journal", db + "-wal"):
            if os.path.exists(p):
                os.remove(p)
        shutil.rmtree(cache, ignore_errors=True)
        times, res = fetch_run(srv, db, cache, conns, split)
        what = "fetch_tracts (%d connections%s)" % (
            conns, "" if split == "-" else ", split_kb %s" % split)
        check_fetch(res, src, what)
        check_files(cache_dir_files(cache, srv), src, what + " cache")
        return times, {"requests": sum(r["requests"] for r in res["rows"]),
                       "query_s": res["query_s"], "db": db, "cache": cache}
    return f


def m_warm(srv, src, run):
    """On the database and cache the 16-connection run left."""
    db = os.path.join(W, "ft%d.db" % CONNS)
    cache = os.path.join(W, "ft%d.cache" % CONNS)
    st0 = os.stat(db)
    times, res = fetch_run(srv, db, cache, CONNS)
    check_fetch(res, src, "fetch_tracts (warm cache)", warm=True)
    st1 = os.stat(db)
    if res["changes"] or (st0.st_mtime_ns, st0.st_size) != (st1.st_mtime_ns,
                                                           st1.st_size):
        die("fetch_tracts (warm cache): the database was written "
            "(total_changes %d, size %d -> %d)" % (res["changes"], st0.st_size,
                                                    st1.st_size))
    return times, {"requests": sum(r["requests"] for r in res["rows"]),
                   "query_s": res["query_s"]}


def m_largest(srv, largest):
    d = fresh_dir(os.path.join(W, "largest"))
    w, s, c, _ = timed(srv, ["curl", "-sf", "--output-dir", d, "-O",
                             srv.url(largest)])
    shutil.rmtree(d)
    return w


LOAD = r"""
import sqlite3, sys
con = sqlite3.connect(sys.argv[2])
con.enable_load_extension(True)
con.load_extension(sys.argv[1])
n = con.execute("select count(*) from load_tracts(?)", (sys.argv[3],)).fetchone()[0]
con.commit()
print(n, con.execute("select count(*) from tracts").fetchone()[0])
"""


def m_load(src):
    """load_tracts on the same 52 files, local: the loading alone."""
    db = os.path.join(W, "load.db")
    for p in (db, db + "-journal"):
        if os.path.exists(p):
            os.remove(p)
    t0 = time.monotonic()
    r = subprocess.run([PY, "-c", LOAD, EXT, db, STATES], capture_output=True,
                       text=True)
    w = time.monotonic() - t0
    want = "52 %d" % sum(v[2] for v in src.values())
    if r.returncode != 0 or r.stdout.strip() != want:
        die("load_tracts on %s: %s%s (want %s)" % (STATES, r.stdout, r.stderr, want))
    os.remove(db)
    return w


# ---- main -----------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3,
                    help="runs of each fast method (median shown)")
    ap.add_argument("--runs-slow", type=int, default=1,
                    help="runs of the sequential curl loop (0: skip it)")
    ap.add_argument("--only", default=None,
                    help="bench.py's sections: run only if this names fetch")
    ap.add_argument("--points", help="ignored (bench.py's)")
    ap.add_argument("--no-peers", action="store_true", help="ignored (bench.py's)")
    ap.add_argument("--big", action="store_true", help="ignored (bench.py's)")
    ap.add_argument("--vertices", type=int, default=None,
                    help="a data set of its own with this many vertices per "
                    "tract (gentracts --vertices; 340 gives about the 182 MB "
                    "of the real 2019 files)")
    a = ap.parse_args()
    if a.vertices:
        global STATES, MIRROR
        STATES = os.path.join(D, "states-v%d" % a.vertices)
        MIRROR = os.path.join(D, "mirror-v%d" % a.vertices)
    if a.only is not None and "fetch" not in a.only.split(","):
        return
    if a.runs < 1:
        die("--runs must be at least 1")
    if not os.path.exists(EXT + ".so"):
        r = subprocess.run(["make", "-C", ROOT, "all", "tools"])
        if r.returncode != 0 or not os.path.exists(EXT + ".so"):
            die("build/tracts.so is missing and make failed")
    for tool in ("curl", "xargs"):
        if not shutil.which(tool):
            die("needs %s" % tool)
    os.makedirs(W, exist_ok=True)
    src = data(a.vertices)
    total = sum(v[0] for v in src.values())
    largest = max(src, key=lambda n: src[n][0])

    # SIGTERM ends the run like Ctrl-C: the finally below stops the server.
    def on_term(signum, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_term)
    srv = Server()
    try:
        results, extra, (largest_w, load_w) = run_all(a, srv, src, largest)
    finally:
        srv.stop()
        shutil.rmtree(W, ignore_errors=True)
    report(a, src, total, largest, results, extra, largest_w, load_w)


METHODS = [  # key, label, function, slow
    ("seq", "sequential curl loop (`curl -sf -o`)", m_seq, True),
    ("pool", "Python ThreadPoolExecutor() + urllib", m_pool, False),
    ("xargs", "`xargs -P 16 curl`", m_xargs, False),
    ("ft16", "fetch_tracts('*'), 16 connections", m_fetch(16), False),
    ("warm", "fetch_tracts('*'), 16 connections, warm cache (304s)", m_warm, False),
    ("ft8", "fetch_tracts('*'), 8 connections (default)", m_fetch(8), False),
    ("ft16s0", "fetch_tracts('*'), 16 connections, split_kb 0", m_fetch(16, 0), False),
]


def run_all(a, srv, src, largest):
    results = {k: [] for k, *_ in METHODS}
    extra = {k: [] for k, *_ in METHODS}
    largest_w, load_w = [], []
    rounds = max(a.runs, a.runs_slow)
    for i in range(rounds):
        for key, label, fn, slow in METHODS:
            if i >= (a.runs_slow if slow else a.runs):
                continue
            sys.stderr.write("fetch_bench: run %d/%d: %s ... " % (i + 1, rounds, key))
            sys.stderr.flush()
            times, ex = fn(srv, src, i)
            ex["gets"], ex["first"], ex["last"] = srv.last
            results[key].append(times)
            extra[key].append(ex)
            sys.stderr.write("%.2f s (server cpu %.2f s)\n" % (times[0], times[1]))
        if i < a.runs:
            largest_w.append(m_largest(srv, largest))
            load_w.append(m_load(src))
    return results, extra, (largest_w, load_w)


def report(a, src, total, largest, results, extra, largest_w, load_w):
    out = []
    say = lambda s="": (print(s), out.append(s))
    cpu = cpu_model()
    med = lambda key, j: statistics.median(x[j] for x in results[key])
    ideal = total / (CONNS * RATE)
    lsize = src[largest][0]
    say("# fetch_tracts benchmark: downloading the 52 state zips")
    say()
    say("Machine: %d cores (%s), %s. Data: the 52 generated state zips of "
        "%s, %d files, %.1f MB (%d bytes), %d tracts. Server: "
        "tests/census_server.py on 127.0.0.1, %d ms latency per request, "
        "%.1f MB/s (%d Mbit/s) per connection. Median of %d runs (the "
        "curl loop: %d)."
        % (os.cpu_count(), cpu, time.strftime("%Y-%m-%d"),
           "bench.py" if not a.vertices else
           "gentracts --vertices %d (the size of the real 2019 files)" % a.vertices,
           len(src), total / 1e6,
           total, sum(v[2] for v in src.values()), LATENCY_MS, RATE / 1e6,
           RATE * 8 // 1000000, a.runs, a.runs_slow))
    say()
    say("| method | seconds | MB/s | / fetch_tracts (16) | GETs | "
        "first GET / last byte at, s | server CPU s (% of wall) | "
        "client CPU s |")
    say("|---|---:|---:|---:|---:|---:|---:|---:|")
    ref = med("ft16", 0)
    for key, label, fn, slow in METHODS:
        if not results[key]:
            continue
        w, s, c = med(key, 0), med(key, 1), med(key, 2)
        ex = extra[key]
        req = "%d" % statistics.median(e["gets"] for e in ex)
        fl = "%.2f / %.2f" % (statistics.median(e["first"] for e in ex),
                              statistics.median(e["last"] for e in ex))
        if key == "pool":
            label += " (%d workers)" % extra[key][0]["workers"]
        mbs = "—" if key == "warm" else "%.1f" % (total / w / 1e6)
        say("| %s | %.2f | %s | %.2fx | %s | %s | %.2f (%.0f%%) | %.2f |"
            % (label, w, mbs, w / ref, req, fl, s, 100 * s / w, c))
    say()
    say("Ideal, total bytes / (%d x %.1f MB/s): %.2f s. fetch_tracts "
        "(16 connections): %.2f s = %.2fx the ideal (bar: 1.30x); "
        "xargs -P 16 curl / fetch_tracts: %.2fx (bar: >= 1.00x)."
        % (CONNS, RATE / 1e6, ideal, ref, ref / ideal, med("xargs", 0) / ref))
    say()
    floor = (total / RATE + len(src) * LATENCY_MS / 1000) / CONNS
    say("That ideal leaves out the latency: the server answers each request "
        "%d ms after it arrives and one connection serves one request at a "
        "time, so %d connections cannot finish before (total bytes / "
        "%.1f MB/s + 52 requests x %.1f s) / %d = %.2f s = %.2fx the ideal "
        "(every Range piece adds %.3f s). fetch_tracts (16): %.2fx this "
        "floor; its last byte left the server at %.2f s = %.2fx it."
        % (LATENCY_MS, CONNS, RATE / 1e6, LATENCY_MS / 1000, CONNS, floor,
           floor / ideal, LATENCY_MS / 1000 / CONNS, ref / floor,
           statistics.median(e["last"] for e in extra["ft16"]),
           statistics.median(e["last"] for e in extra["ft16"]) / floor))
    say()
    say("The largest file (%s, %.1f MB) alone on one capped connection: "
        "%.2f s measured (median, one curl), floor %.2f s (size / %.1f MB/s "
        "+ %.1f s); no method that fetches a file on one connection can "
        "finish sooner."
        % (largest, lsize / 1e6, statistics.median(largest_w),
           lsize / RATE + LATENCY_MS / 1000, RATE / 1e6, LATENCY_MS / 1000))
    say()
    say("Loading alone: load_tracts on the same 52 files from the local disk "
        "(fresh database, a /usr/bin/python3 child, no network) takes %.2f s "
        "(median) on this machine."
        % statistics.median(load_w))
    say()
    qs = statistics.median(e["query_s"] for e in extra["ft16"])
    say("Seconds are the wall time of the whole command, started from the "
        "benchmark (a Python method includes starting its interpreter; "
        "fetch_tracts (16) inside its process, from the SELECT to the "
        "commit: %.2f s). fetch_tracts also verifies every zip (inflate, "
        "CRCs, shapefile) and loads it into a fresh SQLite database, "
        "overlapped with the downloads; the peers only write the files. "
        "GETs: as the server logged them (Range pieces and retries count); "
        "first GET / last byte: when the first GET reached the server and "
        "when the last body byte left it (its arrival + %d ms + bytes / "
        "rate, an estimate), after the command started: for fetch_tracts, "
        "the time after the last byte is spent verifying and loading. "
        "Server CPU: utime + stime of the one Python server process during "
        "the method (100%% = one of the %d cores); client CPU: the method's "
        "processes (curl, xargs, python + tracts.so)."
        % (qs, LATENCY_MS, os.cpu_count()))
    say()
    say("Every peer's files were checked against the sources (size, sha256), "
        "as were fetch_tracts's cache files; every fetch_tracts row had a "
        "NULL error and loaded as many tracts as its .dbf has records; the "
        "warm run answered 304 for all 52 and left the database unwritten.")
    say()
    say("Command: `%s`." % " ".join(["/usr/bin/python3", "bench/fetch_bench.py"]
                                    + sys.argv[1:]))
    with open(os.path.join(D, "fetch_results.md"), "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("fetch_bench: interrupted")
