#!/usr/bin/python3
"""SQL-level tests of the resource monitor (ext/monitor.c), from a Python
host.

Run by tests/run.sh with Debian's /usr/bin/python3 (a Python whose sqlite3
module can load extensions):

    /usr/bin/python3 tests/test_monitor.py build/tracts.so

Every test_* function runs in order; a test passes when it raises nothing.
The last line is "monitor: N passed, N failed, N skipped". The whole file
takes about 15 s.

The Python process hosts the extension, so the monitor measures it: busy
SQL on this thread shows as CPU, tables in a :memory: database as memory,
and sqlite3 processes started with subprocess.Popen as descendants.
Charts are written under build/monitor/ (kept, to look at).
"""
import os
import re
import sqlite3
import struct
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

from harness import EXT, ROOT, ASAN, Skip, connect, expect_error, eq, run

OUT = os.path.join(ROOT, "build", "monitor")
MiB = 1024 * 1024

# Busy SQL: about 0.3 s per million rows on a current core.
BUSY = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c "
        "WHERE x<%d) SELECT count(*) FROM c")


def one(c, sql, params=()):
    return c.execute(sql, params).fetchone()[0]


def threads():
    return len(os.listdir("/proc/self/task"))


def wait_threads(n, what):
    """The thread count reaches n within 2 s (a joined thread leaves
    /proc/self/task a moment after pthread_join returns)."""
    deadline = time.time() + 2.0
    while threads() != n and time.time() < deadline:
        time.sleep(0.002)
    eq(threads(), n, what)


def samples(c, where="1"):
    cols = ("t, cpu_pct, cpu_children_pct, rss_bytes, children_rss_bytes, "
            "children_pss_bytes, threads, children")
    names = [x.strip() for x in cols.split(",")]
    sql = "select %s from monitor_samples where %s" % (cols, where)
    return [dict(zip(names, r)) for r in c.execute(sql)]


def marks(c):
    return dict((l, t) for t, l in
                c.execute("select t, label from monitor_marks"))


def mean(xs):
    xs = list(xs)
    assert xs, "no samples in the range"
    return sum(xs) / len(xs)


def temporaries():
    """Temporary files monitor_plot left in OUT (this process's)."""
    mine = ".%d-" % os.getpid()
    return sorted(f for f in os.listdir(OUT) if mine in f and ".tmp" in f)


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    eq(head[:8], b"\x89PNG\r\n\x1a\n", "PNG signature")
    eq(head[12:16], b"IHDR", "first chunk")
    return struct.unpack(">II", head[16:24])


# ---------------------------------------------------------------- basics

def test_registered_functions_and_modules():
    c = connect()
    funcs = sorted(set(r[0] for r in c.execute(
        "select name from pragma_function_list where name like 'monitor%'")))
    eq(funcs, ["monitor_mark", "monitor_plot", "monitor_start",
               "monitor_stop"], "functions")
    mods = sorted(r[0] for r in c.execute(
        "select name from pragma_module_list where name like 'monitor%'"))
    eq(mods, ["monitor_marks", "monitor_samples"], "modules")
    cur = c.execute("select * from monitor_samples")
    eq([d[0] for d in cur.description],
       ["t", "cpu_pct", "cpu_children_pct", "rss_bytes",
        "children_rss_bytes", "children_pss_bytes", "threads", "children"])
    eq(cur.fetchall(), [], "no run yet")
    cur = c.execute("select * from monitor_marks")
    eq([d[0] for d in cur.description], ["t", "label"])


def test_start_stop_and_a_new_run():
    c = connect()
    eq(one(c, "select monitor_start(0.02)"), 1)
    time.sleep(0.25)
    n = one(c, "select monitor_stop()")
    assert 8 <= n <= 16, n
    rows = samples(c)
    eq(len(rows), n, "rows")
    ts = [r["t"] for r in rows]
    assert ts == sorted(ts) and 0 < ts[0] < 0.1 and ts[-1] < 0.5, ts
    for r in rows:
        assert r["threads"] >= 2, r              # this thread and the sampler
        assert r["rss_bytes"] > 5 * MiB, r
        eq(r["children"], 0, "children")
        assert r["cpu_pct"] >= 0 and r["cpu_children_pct"] == 0, r
    eq(c.execute("select typeof(t), typeof(cpu_pct), typeof(rss_bytes), "
                 "typeof(threads) from monitor_samples limit 1").fetchall(),
       [("real", "real", "integer", "integer")])
    # default interval 0.5 s; a new run forgets the old samples and marks
    c.execute("select monitor_mark('old')")
    eq(one(c, "select monitor_start()"), 1)
    eq(one(c, "select count(*) from monitor_samples"), 0, "cleared")
    eq(one(c, "select count(*) from monitor_marks"), 0, "marks cleared")
    time.sleep(0.6)
    n = one(c, "select monitor_stop()")
    assert n in (1, 2), n
    assert abs(samples(c)[0]["t"] - 0.5) < 0.05, samples(c)
    # text that reads as a number is a number
    eq(one(c, "select monitor_start(' 0.05 ')"), 1)
    assert one(c, "select monitor_stop()") >= 1
    # a stop right after a start still gives one sample
    c.execute("select monitor_start(10)")
    eq(one(c, "select monitor_stop()"), 1)


def test_samples_readable_while_running():
    c = connect()
    c.execute("select monitor_start(0.02)")
    time.sleep(0.15)
    n1 = one(c, "select count(*) from monitor_samples")
    time.sleep(0.15)
    n2 = one(c, "select count(*) from monitor_samples")
    n = one(c, "select monitor_stop()")
    assert 0 < n1 < n2 <= n, (n1, n2, n)
    # ORDER BY t is the table order
    eq(c.execute("select t from monitor_samples order by t").fetchall(),
       c.execute("select t from monitor_samples").fetchall())


# ------------------------------------------------------- what it measures

def test_cpu_rises_while_busy_and_falls_after():
    c = connect()
    c.execute("select monitor_start(0.05)")
    time.sleep(0.4)
    c.execute("select monitor_mark('busy')")
    eq(one(c, BUSY % 3000000), 3000000)
    c.execute("select monitor_mark('idle')")
    time.sleep(0.5)
    c.execute("select monitor_stop()")
    m = marks(c)
    assert m["idle"] - m["busy"] > 0.3, m
    before = mean(r["cpu_pct"] for r in samples(c, "t < %r" % m["busy"]))
    busy = mean(r["cpu_pct"] for r in samples(
        c, "t > %r and t <= %r" % (m["busy"] + 0.06, m["idle"])))
    after = mean(r["cpu_pct"] for r in samples(c, "t > %r" % (m["idle"] + 0.1)))
    assert busy > 40, busy                   # one core, or part of it
    assert before < 15 and after < 15, (before, after)
    assert max(r["cpu_pct"] for r in samples(c)) < 100 * os.cpu_count() + 20


def test_memory_rises_after_a_large_allocation():
    c = connect()
    c.execute("select monitor_start(0.05)")
    time.sleep(0.15)
    c.execute("select monitor_mark('alloc')")
    big = connect()                              # a :memory: database
    big.execute("create table big(b)")
    big.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 "
                "FROM c WHERE x<75000) INSERT INTO big SELECT zeroblob(2000) "
                "FROM c")
    time.sleep(0.15)
    c.execute("select monitor_mark('free')")
    big.close()
    time.sleep(0.1)
    c.execute("select monitor_stop()")
    m = marks(c)
    start = samples(c, "t < %r" % m["alloc"])[0]["rss_bytes"]
    peak = max(r["rss_bytes"] for r in samples(c, "t <= %r" % m["free"]))
    assert peak - start > 120 * MiB, (start / MiB, peak / MiB)


def busy_sqlite3(n):
    return ["sqlite3", ":memory:", BUSY % n]


def test_descendants_are_counted():
    c = connect()
    c.execute("select monitor_start(0.05)")
    time.sleep(0.15)
    # a child, and a shell with two children of its own: four descendants
    procs = [subprocess.Popen(busy_sqlite3(2500000), stdout=subprocess.DEVNULL),
             subprocess.Popen(["sh", "-c", "%s & %s; wait" % (
                 " ".join("'%s'" % a for a in busy_sqlite3(2500000)),
                 " ".join("'%s'" % a for a in busy_sqlite3(2500000)))],
                 stdout=subprocess.DEVNULL)]
    time.sleep(0.4)
    c.execute("select monitor_mark('running')")
    for p in procs:
        eq(p.wait(), 0, "child exit")
    c.execute("select monitor_mark('done')")
    # a child that exited and is not reaped yet (a zombie) is not live
    z = subprocess.Popen(["true"])
    time.sleep(0.3)
    c.execute("select monitor_stop()")
    z.wait()
    m = marks(c)
    rows = samples(c, "t <= %r" % m["done"])
    eq(max(r["children"] for r in rows), 4, "descendants")
    during = [r for r in rows if r["children"] == 4]
    assert during, rows
    assert max(r["cpu_children_pct"] for r in rows) > 80, rows
    rss_seen = 0
    for r in rows:
        rss_seen = max(rss_seen, r["children_rss_bytes"])
        if r["children"] != 4:
            continue
        assert r["children_rss_bytes"] > 4 * 1024 * 4, r
        # PSS (smaps_rollup, exact) is read again only when its cost fits
        # the budget (less often under ASan, where reading costs more), so
        # a sample may repeat an earlier reading: it is bounded by the
        # largest RSS seen so far (stat counters that may lag), not by
        # this sample's
        assert 0 < r["children_pss_bytes"] <= 2 * rss_seen, (r, rss_seen)
        assert r["cpu_pct"] >= r["cpu_children_pct"] - 1e-9, r
    # every CPU figure is >= 0 although children exited between samples
    assert min(r["cpu_children_pct"] for r in samples(c)) >= 0
    last = samples(c)[-1]
    eq((last["children"], last["children_rss_bytes"],
        last["children_pss_bytes"]), (0, 0, 0), "after the children")


def test_marks():
    c = connect()
    c.execute("select monitor_start(0.05)")
    t1 = one(c, "select monitor_mark('first')")
    time.sleep(0.3)
    t2 = one(c, "select monitor_mark('second')")
    t3 = one(c, "select monitor_mark(42)")
    n = one(c, "select monitor_stop()")
    t4 = one(c, "select monitor_mark('after stop')")
    eq(c.execute("select label from monitor_marks").fetchall(),
       [("first",), ("second",), ("42",), ("after stop",)])
    eq([r[0] for r in c.execute("select t from monitor_marks")],
       [t1, t2, t3, t4])
    assert 0 <= t1 < 0.05, t1
    assert 0.25 < t2 - t1 < 0.45, (t1, t2)
    last = samples(c)[-1]["t"]
    assert t3 <= last + 0.01 < t4 + 0.01, (t3, last, t4)
    assert n >= 5, n


# --------------------------------------------------------------- the chart

def run_with_marks():
    c = connect()
    c.execute("select monitor_start(0.05)")
    time.sleep(0.2)
    c.execute("select monitor_mark('busy SQL')")
    c.execute(BUSY % 1500000).fetchall()
    c.execute("select monitor_mark('children')")
    p = subprocess.Popen(busy_sqlite3(1500000), stdout=subprocess.DEVNULL)
    p.wait()
    c.execute("select monitor_mark('idle')")
    time.sleep(0.2)
    c.execute("select monitor_stop()")
    return c


def test_plot_png():
    os.makedirs(OUT, exist_ok=True)
    c = run_with_marks()
    path = os.path.join(OUT, "usage.png")
    if os.path.exists(path):
        os.remove(path)
    eq(one(c, "select monitor_plot(?)", (path,)), path)
    eq(png_size(path), (1000, 600), "default size")
    path2 = os.path.join(OUT, "usage-small.PNG")
    eq(one(c, "select monitor_plot(?, 'It''s \u00e9t\u00e9: small', 640, 400)",
           (path2,)), path2)
    eq(png_size(path2), (640, 400), "asked size")
    eq(one(c, "select monitor_plot(?, NULL, '1200', 700.0)", (path2,)), path2)
    eq(png_size(path2), (1200, 700), "asked size, numeric text")
    # no temporary file left beside it
    eq(temporaries(), [], "temporaries")


def test_plot_svg():
    os.makedirs(OUT, exist_ok=True)
    c = run_with_marks()
    path = os.path.join(OUT, "usage.svg")
    eq(one(c, "select monitor_plot(?, 'SVG <&> chart')", (path,)), path)
    root = ET.parse(path).getroot()
    eq(root.tag, "{http://www.w3.org/2000/svg}svg")
    eq((root.get("width"), root.get("height")), ("1000px", "600px"))


def test_plot_one_sample_and_many_samples():
    os.makedirs(OUT, exist_ok=True)
    c = connect()
    c.execute("select monitor_start(5)")
    eq(one(c, "select monitor_stop()"), 1)
    path = os.path.join(OUT, "one.png")
    eq(one(c, "select monitor_plot(?)", (path,)), path)
    png_size(path)
    c.execute("select monitor_start(0.01)")
    for i in range(60):
        c.execute("select monitor_mark(?)", ("mark %d" % i,))
        time.sleep(0.01)
    c.execute("select monitor_stop()")
    path = os.path.join(OUT, "many-marks.svg")
    eq(one(c, "select monitor_plot(?, ?)", (path, "x" * 500)), path)
    ET.parse(path)


# ------------------------------------------------------ threads and closing

def test_no_leaked_threads():
    c = connect()
    time.sleep(0.05)                             # earlier tests' threads gone
    base = threads()
    for i in range(25):
        c.execute("select monitor_start(0.01)")
        eq(threads(), base + 1, "while running")
        c.execute("select monitor_stop()")
        wait_threads(base, "after stop")
    # errors leave no thread behind either
    expect_error(c, "select monitor_start(0)", (),
                 "monitor_start: interval must be between 0.01 and 3600 "
                 "seconds, got '0'")
    wait_threads(base, "after an error")


def test_close_while_running_stops_the_sampler():
    time.sleep(0.05)
    base = threads()
    c = connect()
    c.execute("select monitor_start(0.01)")
    wait_threads(base + 1, "running")
    c.close()
    wait_threads(base, "closing joined the sampler")
    # several connections, each its own monitor
    cs = [connect() for i in range(3)]
    for x in cs:
        x.execute("select monitor_start(0.02)")
    wait_threads(base + 3, "three running")
    cs[0].execute("select monitor_mark('only in 0')")
    eq(one(cs[1], "select count(*) from monitor_marks"), 0)
    for x in cs:
        x.close()
    wait_threads(base, "after closing three")


def test_sampler_cost_under_one_percent():
    c = connect()
    c.execute("select monitor_start(0.1)")
    t0 = time.process_time()
    time.sleep(2.0)
    used = time.process_time() - t0
    c.execute("select monitor_stop()")
    pct = 100 * used / 2.0
    print("     sampler at 0.1 s: %.2f%% of one core" % pct)
    assert pct < (3.0 if ASAN else 1.0), pct


def test_forked_child_keeps_off():
    c = connect()
    c.execute("select monitor_start(0.01)")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                 # the child: never returns
        code = 0
        try:
            os.close(r)
            msgs = []
            for sql in ("select monitor_mark('x')", "select monitor_stop()",
                        "select * from monitor_samples"):
                try:
                    c.execute(sql).fetchall()
                    msgs.append("no error")
                except sqlite3.Error as e:
                    msgs.append(str(e))
            os.write(w, "\n".join(msgs).encode())
        except BaseException:
            code = 1
        os._exit(code)
    os.close(w)
    out = b""
    while True:
        b = os.read(r, 4096)
        if not b:
            break
        out += b
    os.close(r)
    _, status = os.waitpid(pid, 0)
    eq(status, 0, "child exit")
    eq(out.decode().split("\n"),
       ["monitor_mark: not available in a forked child",
        "monitor_stop: not available in a forked child",
        "monitor_samples: not available in a forked child"])
    assert one(c, "select monitor_stop()") > 0
    eq(one(c, "select count(*) from monitor_marks"), 0, "no mark from child")


# --------------------------------------------------------------- bad input

def test_bad_input():
    c = connect()
    bad = "monitor_start: interval must be between 0.01 and 3600 seconds, got "
    for arg, shown in ((0, "'0'"), (-1, "'-1'"), (0.001, "'0.001'"),
                       (3601, "'3601'"), (1e308 * 10, "'Inf'"),
                       ("fast", "'fast'"), ("", "''"), ("1s", "'1s'"),
                       (None, "NULL"), (float("nan"), "NULL"),
                       (b"\x00", "a blob")):
        expect_error(c, "select monitor_start(?)", (arg,), bad + shown)
    expect_error(c, "select monitor_start('NaN')", (), bad + "'NaN'")
    expect_error(c, "select monitor_start(1, 2)", (),
                 "wrong number of arguments to function monitor_start()")
    expect_error(c, "select monitor_stop()", (),
                 "monitor_stop: the monitor is not running")
    expect_error(c, "select monitor_mark('x')", (),
                 "monitor_mark: the monitor has not been started "
                 "(call monitor_start first)")
    expect_error(c, "select monitor_plot('x.png')", (),
                 "monitor_plot: no samples (run monitor_start and "
                 "monitor_stop first)")
    c.execute("select monitor_start(0.05)")
    expect_error(c, "select monitor_start(0.05)", (),
                 "monitor_start: the monitor is already running "
                 "(call monitor_stop first)")
    expect_error(c, "select monitor_mark(NULL)", (),
                 "monitor_mark: the label is NULL")
    expect_error(c, "select monitor_mark('')", (),
                 "monitor_mark: the label is empty")
    expect_error(c, "select monitor_mark(?)", ("x" * 1001,),
                 "monitor_mark: the label is longer than 1000 bytes")
    time.sleep(0.06)
    c.execute("select monitor_stop()")
    expect_error(c, "select monitor_stop()", (),
                 "monitor_stop: the monitor is not running")
    expect_error(c, "select monitor_plot(NULL)", (),
                 "monitor_plot: the path is NULL")
    for p in ("x.jpg", "x", "", "x.png.txt", ".png"):
        expect_error(c, "select monitor_plot(?)", (p,),
                     "monitor_plot: '%s' must end in .png or .svg" % p)
    expect_error(c, "select monitor_plot('/no/such/dir/y.png')", (),
                 "monitor_plot: cannot write '/no/such/dir/y.png': "
                 "No such file or directory")
    os.makedirs(OUT, exist_ok=True)
    d = os.path.join(OUT, "a-directory.png")
    os.makedirs(d, exist_ok=True)
    expect_error(c, "select monitor_plot(?)", (d,),
                 "monitor_plot: cannot write '%s': Is a directory" % d)
    expect_error(c, "select monitor_plot('x.png', 't', 10, 600)", (),
                 "monitor_plot: width must be between 300 and 8000 pixels, "
                 "got '10'")
    expect_error(c, "select monitor_plot('x.png', 't', 1000, 'big')", (),
                 "monitor_plot: height must be between 200 and 8000 pixels, "
                 "got 'big'")
    expect_error(c, "select monitor_plot('x.png', 't', 1000.5, 600)", (),
                 "monitor_plot: width must be between 300 and 8000 pixels, "
                 "got '1000.5'")
    expect_error(c, "select monitor_plot('x.png', 't', 1000)", (),
                 "wrong number of arguments to function monitor_plot()")
    eq(temporaries(), [], "temporaries")


def test_directonly_from_schema():
    c = connect()
    c.execute("create table t(x)")
    c.execute("create view v as select monitor_start(0.1)")
    expect_error(c, "select * from v", (), "unsafe use of monitor_start()")
    c.execute("create trigger tr after insert on t begin "
              "select monitor_plot('x.png'); end")
    expect_error(c, "insert into t values(1)", (),
                 "unsafe use of monitor_plot()")
    # the tables may be read from a view
    c.execute("create view s as select count(*) from monitor_samples")
    eq(one(c, "select * from s"), 0)


# ------------------------------------------------------------ sqlite3 shell

def test_sqlite3_shell():
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "shell.png")
    if os.path.exists(path):
        os.remove(path)
    script = """.load %s
.mode list
select monitor_start(0.05);
select monitor_mark('count') >= 0;
%s;
select monitor_stop() > 0;
select count(*) > 0, max(cpu_pct) > 50 from monitor_samples;
select monitor_plot('%s');
select monitor_start(0.01);
""" % (EXT[:-3], BUSY % 1000000, path)
    # the last run is never stopped: closing the shell must join it
    t0 = time.time()
    r = subprocess.run(["sqlite3", "-batch", ":memory:"], input=script,
                       capture_output=True, text=True, timeout=30)
    eq(r.stderr, "")
    eq(r.stdout, "1\n1\n1000000\n1\n1|1\n%s\n1\n" % path)
    eq(r.returncode, 0)
    assert time.time() - t0 < 10
    eq(png_size(path), (1000, 600))


# ----------------------------------------------------------------- main

def main():
    return run("monitor", globals())


if __name__ == "__main__":
    sys.exit(main())
