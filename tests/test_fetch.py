#!/usr/bin/python3
"""Tests of fetch_tracts and tracts_cache against a local, fault-injecting
stand-in for the Census server (tests/census_server.py on 127.0.0.1).

    /usr/bin/python3 tests/test_fetch.py build/tracts.so

No test reaches the internet. The mirror holds census-layout zips made by
build/gentracts for five small states; the reference for "the database
content of a clean run" is load_tracts of the very same files. Each fault
is checked four ways: the rows (status, requests, error), the database
(equal to the clean run for every state that can succeed, untouched for
the others), the cache (only complete, verified files, no .part left) and
the server's request log (how many requests, which headers).

The last line is "fetch: N passed, N failed, N skipped".
"""
import glob
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time

from harness import EXT, ROOT, connect, expect_error, eq, local_only, run

sys.path.insert(0, os.path.join(ROOT, "tests"))
import census_server  # noqa: E402

BUILD = os.path.join(ROOT, "build")
FX = os.path.join(BUILD, "fixtures", "fetch")
MIRROR = os.path.join(FX, "mirror")
SHP = os.path.join(MIRROR, "geo", "tiger", "GENZ2019", "shp")
STATES = {"RI": "44", "MA": "25", "CT": "09", "VT": "50", "NH": "33"}
COLS = ("GEOID, STATEFP, COUNTYFP, TRACTCE, AFFGEOID, NAME, LSAD, ALAND, "
        "AWATER, geometry")

_server = None
_port = None
_ref = {}


def setup():
    """Mirror, reference content per state, and the server (once)."""
    global _server, _port
    if _server:
        return
    local_only()
    shutil.rmtree(FX, ignore_errors=True)
    os.makedirs(SHP)
    subprocess.run([os.path.join(BUILD, "gentracts"), "--out", SHP,
                    "--states", ",".join(STATES), "--tracts", "900",
                    "--seed", "7"], check=True, stdout=subprocess.DEVNULL)
    ref = connect()
    rows = ref.execute("select file, error from load_tracts(?)",
                       (SHP,)).fetchall()
    assert len(rows) == len(STATES) and all(e is None for _, e in rows), rows
    for usps, fips in STATES.items():
        _ref[fips] = ref.execute("select %s from tracts where STATEFP=? "
                                 "order by GEOID" % COLS, (fips,)).fetchall()
        assert _ref[fips], usps
    _server, _thread, _port = census_server.start(MIRROR)


def url(fips):
    return "http://127.0.0.1:%d/geo/tiger/GENZ2019/shp/cb_2019_%s_tract_500k.zip" % (
        _port, fips)


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def src(fips):
    return os.path.join(SHP, "cb_2019_%s_tract_500k.zip" % fips)


class Env:
    """A fresh database and cache, rules installed, log cleared."""

    def __init__(self, name, rules=(), **config):
        setup()
        self.dir = os.path.join(FX, name)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.cache = os.path.join(self.dir, "cache")
        self.db = os.path.join(self.dir, "db.sqlite")
        _server.set_rules(list(rules))
        _server.reset()
        self.c = connect(self.db)
        cfg = {"base_url": "http://127.0.0.1:%d/geo/tiger/" % _port,
               "cache_dir": self.cache, "retry_wait_ms": 1, "progress": -1}
        cfg.update(config)
        self.set(**cfg)

    def set(self, **config):
        for k, v in config.items():
            self.c.execute("select tracts_config(?, ?)", (k, v))

    def fetch(self, states, *args):
        q = "select state, fips, url, status, bytes, from_cache, requests, " \
            "seconds, tracts, error from fetch_tracts(?%s)" % (", ?" * len(args))
        cur = self.c.execute(q, (states,) + args)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]

    def rules(self, rules):
        _server.set_rules(list(rules))
        _server.reset()

    def log(self, fips=None):
        with _server.lock:
            entries = [dict(e) for e in _server.log]
        if fips:
            entries = [e for e in entries if "_%s_tract" % fips in e["path"]]
        return entries

    def content(self, fips):
        if not self.c.execute("select 1 from sqlite_schema where name="
                              "'tracts'").fetchone():
            return []
        return self.c.execute("select %s from tracts where STATEFP=? order by "
                              "GEOID" % COLS, (fips,)).fetchall()

    def cache_files(self):
        return sorted(glob.glob(os.path.join(self.cache, "**", "*"),
                                recursive=True))

    def check(self, good, bad=(), db=True):
        """Good states are loaded exactly as a clean run loads them, and
        cached as the server's bytes; bad ones have no rows, no cache file;
        no temporary file remains anywhere. db=False: the cache only."""
        for fips in good:
            if db:
                eq(self.content(fips), _ref[fips], "content of %s" % fips)
            cached = [f for f in self.cache_files()
                      if f.endswith("_%s_tract_500k.zip" % fips)]
            eq(len(cached), 1, "cache file of %s" % fips)
            eq(sha(cached[0]), sha(src(fips)), "cached bytes of %s" % fips)
        for fips in bad:
            eq(self.content(fips), [], "rows of failed state %s" % fips)
            eq([f for f in self.cache_files()
                if f.endswith("_%s_tract_500k.zip" % fips)], [],
               "cache of failed state %s" % fips)
        parts = [f for f in self.cache_files() if ".part" in f]
        eq(parts, [], "temporary files left")


def gets(entries):
    return [e for e in entries if e["method"] == "GET"]


# ---- the normal path ------------------------------------------------------

def test_clean_fetch_loads_what_load_tracts_loads():
    e = Env("clean")
    rows = e.fetch("RI,MA,CT")
    eq([r["state"] for r in rows], ["RI", "MA", "CT"])
    for r in rows:
        fips = r["fips"]
        eq(r["url"], url(fips))
        eq((r["status"], r["from_cache"], r["requests"], r["error"]),
           (200, 0, 1, None), r["state"])
        eq(r["bytes"], os.path.getsize(src(fips)))
        eq(r["tracts"], len(_ref[fips]))
    e.check(["44", "25", "09"], ["50", "33"])
    files = e.c.execute("select state, file, sha256 from tracts_files "
                        "order by state").fetchall()
    eq(files, sorted((f, url(f), sha(src(f))) for f in ("44", "25", "09")))
    eq(len(gets(e.log())), 3)
    ua = gets(e.log())[0]["user_agent"]
    assert ua.startswith("tracts/"), ua


def test_state_codes_fips_lowercase_duplicates_and_all():
    e = Env("codes")
    eq([r["state"] for r in e.fetch(" 44, ma ,RI,25")], ["RI", "MA"])
    rows = e.fetch("*")
    eq(len(rows), 52)
    eq(len(set(r["fips"] for r in rows)), 52)
    ok = sorted(r["fips"] for r in rows if r["error"] is None)
    eq(ok, sorted(STATES.values()))
    for r in rows:
        if r["error"]:
            eq(r["error"], "HTTP 404 Not Found: %s" % r["url"])
            eq(r["requests"], 1, "a 404 is not retried")
    e.check(STATES.values())


def test_bad_arguments_are_clear_errors():
    e = Env("args")
    expect_error(e.c, "select * from fetch_tracts('RI,XX')", (),
                 "fetch_tracts: unknown state 'XX' (USPS codes like RI, FIPS "
                 "codes like 44, or '*' for all)")
    expect_error(e.c, "select * from fetch_tracts('3')", (),
                 "fetch_tracts: unknown state '3' (USPS codes like RI, FIPS "
                 "codes like 44, or '*' for all)")
    expect_error(e.c, "select * from fetch_tracts(' , ')", (),
                 "fetch_tracts: no states given (USPS codes like RI, FIPS "
                 "codes like 44, or '*' for all)")
    expect_error(e.c, "select * from fetch_tracts(NULL)", (),
                 "fetch_tracts: the states argument is NULL")
    expect_error(e.c, "select * from fetch_tracts", (),
                 "fetch_tracts: needs the states argument, e.g. "
                 "fetch_tracts('RI')")
    expect_error(e.c, "select * from fetch_tracts('RI', 'soon')", (),
                 "fetch_tracts: year must be an integer from 1990 to 2100, "
                 "got 'soon'")
    expect_error(e.c, "select * from fetch_tracts('RI', 1850)", (),
                 "fetch_tracts: year must be an integer from 1990 to 2100, "
                 "got '1850'")
    expect_error(e.c, "select * from fetch_tracts('RI', 2019, 'fast')", (),
                 "fetch_tracts: unknown option 'fast' (known: refresh, "
                 "offline, strict)")
    for bad in ("ftp://x/", "http://", "http:///x/", "http://h/a?b=1",
                "http://h/a#f", "http://h/../etc/", "http://h/a/..", "x",
                "http://user:secret@h/x/"):
        expect_error(e.c, "select tracts_config('base_url', ?)", (bad,),
                     "tracts_config: base_url must be an http:// or https:// "
                     "URL of a directory (no query, fragment, .. or user@), got '%s'"
                     % bad)
    expect_error(e.c, "select tracts_config('user_agent', 'a' || char(10) || "
                 "'X-Evil: 1')", (),
                 "tracts_config: user_agent must be printable text, got "
                 "'a\nX-Evil: 1'")
    expect_error(e.c, "select tracts_config('connections', 0)", (),
                 "tracts_config: connections must be an integer from 1 to 64, "
                 "got '0'")
    eq(e.c.execute("select tracts_config('base_url', 'http://h/x')")
       .fetchone()[0], "http://h/x/")
    e.c.execute("select tracts_config('base_url', NULL)")
    eq(e.c.execute("select tracts_config('base_url')").fetchone()[0],
       "https://www2.census.gov/geo/tiger/")
    eq(e.log(), [], "bad arguments made no request")
    eq(e.c.execute("select count(*) from sqlite_schema").fetchone()[0], 0)


def test_year_argument_and_setting_choose_the_url():
    e = Env("year")
    rows = e.fetch("RI", 2020)
    eq(rows[0]["url"], url("44").replace("2019", "2020"))
    eq(rows[0]["error"], "HTTP 404 Not Found: %s" % rows[0]["url"])
    e.set(year=2019)
    eq(e.fetch("RI", None)[0]["error"], None)


def test_cache_dir_that_is_a_file_is_an_error():
    e = Env("cachefile")
    blocker = os.path.join(e.dir, "blocker")
    open(blocker, "w").close()
    e.set(cache_dir=blocker)
    expect_error(e.c, "select * from fetch_tracts('RI')", (),
                 "fetch_tracts: cannot create cache directory '%s': Not a "
                 "directory" % blocker)


def test_cache_dir_defaults_to_env_then_xdg():
    e = Env("cachedefault")
    e.set(cache_dir=None)
    old = {k: os.environ.get(k) for k in ("TRACTS_CACHE_DIR", "XDG_CACHE_HOME")}
    try:
        os.environ["TRACTS_CACHE_DIR"] = os.path.join(e.dir, "envcache")
        eq(e.c.execute("select tracts_config('cache_dir')").fetchone()[0],
           os.path.join(e.dir, "envcache"))
        del os.environ["TRACTS_CACHE_DIR"]
        os.environ["XDG_CACHE_HOME"] = os.path.join(e.dir, "xdg")
        eq(e.c.execute("select tracts_config('cache_dir')").fetchone()[0],
           os.path.join(e.dir, "xdg", "tracts"))
        eq(e.fetch("RI")[0]["error"], None)
        assert glob.glob(os.path.join(e.dir, "xdg", "tracts", "**",
                                      "cb_2019_44_tract_500k.zip"),
                         recursive=True)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# ---- the cache -------------------------------------------------------------

def test_second_fetch_revalidates_with_etag_and_uses_the_cache():
    e = Env("revalidate")
    e.fetch("RI,MA")
    loaded = e.c.execute("select state, loaded_at from tracts_files "
                         "order by 1").fetchall()
    e.rules([])
    rows = e.fetch("RI,MA")
    eq(e.c.execute("select state, loaded_at from tracts_files order by 1")
       .fetchall(), loaded, "an unchanged file already loaded is not rewritten")
    for r in rows:
        eq((r["status"], r["from_cache"], r["requests"], r["error"]),
           (304, 1, 1, None), r["state"])
        eq(r["tracts"], len(_ref[r["fips"]]))
    for g in gets(e.log()):
        eq(g["status"], 304)
        assert g["if_none_match"], g
    e.check(["44", "25"])
    e.rules([])
    rows = e.fetch("RI", 2019, "refresh")
    eq((rows[0]["status"], rows[0]["from_cache"]), (200, 0))
    eq(gets(e.log())[0]["if_none_match"], None, "refresh sends no validator")
    e.check(["44"])


def test_last_modified_revalidation_without_etag():
    e = Env("lastmod")
    e.fetch("RI")
    meta = glob.glob(os.path.join(e.cache, "**", "*.meta"), recursive=True)[0]
    text = open(meta).read()
    open(meta, "w").write("\n".join(l for l in text.splitlines()
                                    if not l.startswith("etag=")) + "\n")
    e.rules([])
    rows = e.fetch("RI")
    eq((rows[0]["status"], rows[0]["from_cache"]), (304, 1))
    g = gets(e.log())[0]
    eq(g["if_none_match"], None)
    assert g["if_modified_since"], g


def test_offline_uses_only_the_cache():
    e = Env("offline")
    rows = e.fetch("RI", 2019, "offline")
    eq(rows[0]["error"], "not in the cache (offline): %s" % url("44"))
    eq(rows[0]["requests"], 0)
    e.fetch("RI")
    e.c.execute("delete from tracts")
    e.rules([])
    e.set(offline=1)
    rows = e.fetch("RI,MA")
    eq((rows[0]["from_cache"], rows[0]["status"], rows[0]["error"]),
       (1, None, None))
    eq(rows[1]["error"], "not in the cache (offline): %s" % url("25"))
    eq(e.log(), [], "offline makes no request")
    e.check(["44"], ["25"])


def test_tracts_cache_lists_and_delete_prunes():
    e = Env("cacheview")
    e.fetch("RI,MA,CT")
    rows = e.c.execute("select url, path, bytes, sha256, fetched_at, etag, "
                       "last_modified from tracts_cache order by url").fetchall()
    eq([r[0] for r in rows], sorted(url(f) for f in ("44", "25", "09")))
    for r in rows:
        fips = r[0].split("_")[-3]
        eq(r[2], os.path.getsize(src(fips)))
        eq(r[3], sha(src(fips)))
        eq(sha(r[1]), r[3])
        assert r[4].endswith("Z") and r[5].startswith('"') and r[6], r
    eq(e.c.execute("select count(*) from tracts_cache a, tracts_cache b")
       .fetchone()[0], 9, "two cursors, each its own listing")
    eq(e.c.execute("delete from tracts_cache where path in (select path from "
                   "tracts_cache where instr(url, '_25_tract'))").rowcount, 1)
    eq(sorted(r[0] for r in e.c.execute("select url from tracts_cache")),
       sorted(url(f) for f in ("44", "09")))
    eq(e.c.execute("delete from tracts_cache where instr(url, '_44_tract')")
       .rowcount, 1)
    eq(e.c.execute("select count(*) from tracts_cache").fetchone()[0], 1)
    eq([f for f in e.cache_files() if "_44_" in f or "_25_" in f], [])
    expect_error(e.c, "update tracts_cache set bytes=0", (),
                 "tracts_cache: only DELETE is supported (fetch_tracts fills "
                 "the cache)")
    e.c.execute("delete from tracts_cache")
    eq([f for f in e.cache_files() if os.path.isfile(f)], [])
    e.set(cache_dir=os.path.join(e.dir, "nothing-here"))
    eq(e.c.execute("select count(*) from tracts_cache").fetchone()[0], 0)


def test_damaged_cache_file_is_fetched_again():
    e = Env("damagedcache")
    e.fetch("RI")
    path = [f for f in e.cache_files() if f.endswith(".zip")][0]
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(path, "wb").write(data)
    e.c.execute("delete from tracts")
    e.rules([{"match": "*", "no_etag": True}])
    rows = e.fetch("RI")
    eq((rows[0]["error"], rows[0]["from_cache"], rows[0]["status"]),
       (None, 0, 200))
    e.check(["44"])


def test_unreachable_server_falls_back_to_the_cache():
    e = Env("fallback", retries=1)
    e.fetch("RI")
    e.c.execute("delete from tracts")
    e.rules([{"match": "*", "status": 503}])
    rows = e.fetch("RI,MA")
    eq((rows[0]["from_cache"], rows[0]["status"], rows[0]["error"]),
       (1, 503, None))
    eq(rows[1]["error"], "HTTP 503 after 1 retry: %s" % url("25"))
    e.check(["44"], ["25"])
    rows = e.fetch("RI", 2019, "refresh")
    eq(rows[0]["error"], "HTTP 503 after 1 retry: %s" % url("44"))


# ---- faults ------------------------------------------------------------------

def test_first_503s_are_retried_as_configured():
    e = Env("first503", retries=3)
    e.rules([{"match": "cb_2019_44_*", "fail_first": 3},
             {"match": "cb_2019_25_*", "fail_first": 4}])
    rows = e.fetch("RI,MA,CT")
    eq([(r["state"], r["requests"], r["status"]) for r in rows],
       [("RI", 4, 200), ("MA", 4, 503), ("CT", 1, 200)])
    eq(rows[1]["error"], "HTTP 503 after 3 retries: %s" % url("25"))
    eq(len(gets(e.log("44"))), 4)
    eq(len(gets(e.log("25"))), 4, "3 retries means 4 requests")
    e.check(["44", "09"], ["25"])


def test_retry_after_is_honoured_on_503_and_429():
    e = Env("retryafter", retry_wait_ms=0)
    e.rules([{"match": "cb_2019_44_*", "fail_first": 1, "retry_after": 1},
             {"match": "cb_2019_25_*", "fail_first": 1, "retry_after": 1,
              "fail_status": 429}])
    rows = e.fetch("RI,MA")
    eq([(r["requests"], r["error"]) for r in rows], [(2, None), (2, None)])
    for fips in ("44", "25"):
        g = gets(e.log(fips))
        eq([x["status"] for x in g], [503 if fips == "44" else 429, 200])
        assert g[1]["t"] - g[0]["t"] >= 0.9, "waited %.3f s" % (
            g[1]["t"] - g[0]["t"])
    e.check(["44", "25"])


def test_retry_max_caps_a_long_retry_after():
    e = Env("retrymax", retry_max_s=0)
    e.rules([{"match": "*", "fail_first": 1, "retry_after": 3600}])
    rows = e.fetch("RI")
    eq((rows[0]["requests"], rows[0]["error"]), (2, None))


def test_random_503_and_429_mixed():
    e = Env("random", retries=20)
    e.rules([{"match": "*", "fail_rate": 0.3, "retry_after": 0},
             {"match": "cb_2019_25_*", "fail_status": 429}])
    rows = e.fetch(",".join(STATES))
    eq([r["error"] for r in rows], [None] * 5)
    eq(sum(r["requests"] for r in rows), len(gets(e.log())))
    assert any(g["status"] in (503, 429) for g in gets(e.log()))
    e.check(STATES.values())


def test_truncated_body_resumes_with_range():
    e = Env("truncate")
    e.rules([{"match": "cb_2019_25_*", "truncate": {"times": 2, "at": 0.4}}])
    rows = e.fetch("MA")
    eq((rows[0]["requests"], rows[0]["error"]), (3, None))
    g = gets(e.log())
    eq(g[0]["range"], None)
    assert g[1]["range"] and g[1]["range"].startswith("bytes="), g[1]
    assert g[1]["if_range"], "a resumption guards with If-Range"
    e.check(["25"])


def test_truncated_body_without_range_support_starts_over():
    e = Env("truncnorange")
    e.rules([{"match": "*", "truncate": {"times": 1, "at": 0.5},
              "no_range": True}])
    rows = e.fetch("MA")
    eq((rows[0]["requests"], rows[0]["error"]), (2, None))
    eq([g["range"] for g in gets(e.log())], [None, None])
    e.check(["25"])


def test_connection_reset_and_stall_are_retried():
    e = Env("reset", low_speed_timeout=1)
    e.rules([{"match": "cb_2019_44_*", "reset": {"times": 2, "at": 5000}},
             {"match": "cb_2019_25_*", "stall": {"times": 1, "at": 2000}}])
    rows = e.fetch("RI,MA")
    eq([r["error"] for r in rows], [None, None])
    eq(rows[0]["requests"], 3)
    eq(rows[1]["requests"], 2)
    e.check(["44", "25"])


def test_corrupt_bytes_are_caught_and_fetched_again():
    e = Env("corrupt", retries=2)
    e.rules([{"match": "cb_2019_44_*", "corrupt": {"times": 1}},
             {"match": "cb_2019_25_*", "corrupt": {"times": -1}}])
    rows = e.fetch("RI,MA")
    eq((rows[0]["requests"], rows[0]["error"]), (2, None))
    eq(rows[1]["requests"], 3)
    err = rows[1]["error"]
    assert err.startswith("fetch_tracts: %s: member " % url("25")) and \
        "is corrupt" in err and err.endswith("(after 2 retries)"), err
    e.check(["44"], ["25"])


def test_html_and_empty_bodies_are_not_zips():
    e = Env("html", retries=2)
    e.rules([{"match": "cb_2019_44_*", "html": 1},
             {"match": "cb_2019_25_*", "html": -1},
             {"match": "cb_2019_09_*", "empty": 1},
             {"match": "cb_2019_50_*", "empty": -1}])
    rows = e.fetch("RI,MA,CT,VT")
    eq([(r["requests"], r["error"]) for r in rows], [
        (2, None),
        (3, "the server sent an HTML page, not a zip after 2 retries: %s"
         % url("25")),
        (2, None),
        (3, "the server sent an empty body after 2 retries: %s" % url("50"))])
    e.check(["44", "09"], ["25", "50"])


def test_404_and_403_are_not_retried():
    e = Env("notfound", retries=5)
    e.rules([{"match": "cb_2019_25_*", "require_ua": "Mozilla"}])
    rows = e.fetch("RI,MA,NY")
    eq(rows[0]["error"], None)
    eq(rows[1]["error"], "HTTP 403 Forbidden: %s (the server refused this "
       "client; another user_agent setting may help)" % url("25"))
    eq(rows[2]["error"], "HTTP 404 Not Found: %s" % url("36"))
    eq([r["requests"] for r in rows], [1, 1, 1])
    e.set(user_agent="Mozilla/5.0 (compatible; tracts-test)")
    e.rules([{"match": "cb_2019_25_*", "require_ua": "Mozilla"}])
    eq(e.fetch("MA")[0]["error"], None)
    eq(gets(e.log())[0]["user_agent"], "Mozilla/5.0 (compatible; tracts-test)")
    e.check(["44", "25"])


def test_unreachable_host_is_retried_then_reported():
    e = Env("refused", retries=2)
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = s.getsockname()[1]
    s.close()
    e.set(base_url="http://127.0.0.1:%d/geo/tiger/" % dead)
    rows = e.fetch("RI")
    eq(rows[0]["requests"], 3)
    assert rows[0]["error"].startswith("Couldn't connect to server after 2 "
                                       "retries: http://127.0.0.1:%d/" % dead), rows


def raw_server(reply):
    """A one-shot-per-connection HTTP server on 127.0.0.1 that reads the
    request and sends reply(); returns (port, hits, stop)."""
    import socket
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    hits = []

    def serve():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            try:
                conn.recv(65536)
                hits.append(1)
                for part in reply():
                    conn.sendall(part)
            except OSError:
                pass
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return srv.getsockname()[1], hits, srv.close


def test_absurd_content_length_is_refused():
    port, hits, stop = raw_server(lambda: [
        b"HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\n"
        b"Content-Length: 5000000000\r\n\r\nPK\x03\x04" + b"x" * 1000])
    e = Env("huge")
    e.set(base_url="http://127.0.0.1:%d/geo/tiger/" % port)
    rows = e.fetch("RI")
    stop()
    u = rows[0]["url"]
    eq(rows[0]["error"], "the file is larger than 4 GiB (5000000000 bytes): %s" % u)
    eq((rows[0]["requests"], len(hits)), (1, 1), "not retried")
    e.check([], ["44"])


def test_large_files_split_into_parallel_ranges():
    e = Env("split", connections=6, split_kb=64)
    e.rules([{"match": "*", "rate": 400000, "latency_ms": 150}])
    rows = e.fetch("MA")
    eq(rows[0]["error"], None)
    g = gets(e.log())
    ranged = [x for x in g if x["range"]]
    assert len(ranged) >= 3, g
    eq(len(g), rows[0]["requests"])
    assert rows[0]["seconds"] >= 0.15, "each request waited for the latency"
    e.check(["25"])
    e2 = Env("nosplit", connections=6, split_kb=0)
    e2.rules([{"match": "*", "rate": 2000000}])
    eq(e2.fetch("MA")[0]["requests"], 1)


def test_one_file_on_many_connections():
    e = Env("earlysplit", connections=16, split_kb=64)
    e.rules([{"match": "*", "rate": 300000}])
    rows = e.fetch("MA")
    eq(rows[0]["error"], None)
    g = gets(e.log())
    ranged = [x["range"] for x in g if x["range"]]
    eq(len(g), len(ranged) + 1, "one whole-file request, the rest pieces")
    assert len(ranged) >= 3, g
    starts = sorted(int(r.split("=")[1].split("-")[0]) for r in ranged)
    eq(len(set(starts)), len(starts), "no piece is fetched twice")
    eq(rows[0]["requests"], len(g))
    e.check(["25"])


def test_a_file_that_arrives_at_once_is_not_cut():
    # no latency, no cap: the file is in before its speed is even measured
    e = Env("fastone", connections=16, split_kb=64)
    rows = e.fetch("MA")
    eq((rows[0]["error"], rows[0]["requests"]), (None, 1))
    eq([x["range"] for x in gets(e.log())], [None])
    e.check(["25"])


def test_only_files_that_would_arrive_late_are_cut():
    # 4 connections at 200 KB/s: MA (650 KB) would arrive long after the
    # rest, so it is cut into pieces; NH (140 KB, 0.7 s) runs past the
    # half second that measures the speed but arrives in time: one request
    e = Env("plan", connections=4, split_kb=64)
    e.rules([{"match": "*", "rate": 200000, "latency_ms": 100}])
    rows = {r["state"]: r for r in e.fetch("MA,CT,NH,RI,VT")}
    eq([rows[s]["error"] for s in STATES], [None] * 5)
    ma = gets(e.log("25"))
    assert len(ma) >= 2 and all(x["range"] for x in ma[1:]), ma
    for usps in ("NH", "RI", "VT"):
        g = gets(e.log(STATES[usps]))
        eq((rows[usps]["requests"], len(g), g[0]["range"]), (1, 1, None),
           usps)
    e.check(list(STATES.values()))


def test_server_that_advertises_ranges_but_ignores_them():
    e = Env("ignorerange", connections=8, split_kb=64, retries=2)
    e.rules([{"match": "*", "ignore_range": True, "rate": 1000000}])
    rows = e.fetch("MA,CT")
    eq([r["error"] for r in rows], [None, None])
    for fips in ("25", "09"):
        g = gets(e.log(fips))
        eq(g[0]["range"], None)
        assert all(x["status"] == 200 for x in g), g
    e.check(["25", "09"])
    # after one refused range, the file is never asked for a range again
    assert len(gets(e.log())) <= 2 + 2 * 8, len(gets(e.log()))


def test_weak_etag_is_never_used_for_if_range():
    e = Env("weaketag", connections=4, split_kb=64)
    e.rules([{"match": "*", "weak_etag": True, "rate": 400000,
              "truncate": {"times": 1, "at": 0.3}}])
    rows = e.fetch("MA")
    eq(rows[0]["error"], None)
    for x in gets(e.log()):
        if x["if_range"]:
            assert not x["if_range"].startswith("W/"), x
    e.check(["25"])
    e.rules([{"match": "*", "weak_etag": True}])
    eq(e.fetch("MA")[0]["status"], 304, "a weak ETag still revalidates")


def test_body_without_length_and_a_stray_content_range():
    data = open(src("44"), "rb").read()
    port, hits, stop = raw_server(lambda: [
        b"HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\n"
        b"Content-Range: bytes 0-9/10\r\nConnection: close\r\n\r\n", data])
    e = Env("nolength")
    e.set(base_url="http://127.0.0.1:%d/geo/tiger/" % port)
    rows = e.fetch("RI")
    stop()
    eq((rows[0]["error"], rows[0]["bytes"], len(hits)), (None, len(data), 1))
    eq(e.content("44"), _ref["44"])


def test_endless_error_body_is_cut_short():
    def reply():
        yield (b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: "
               b"100000000\r\n\r\n")
        for _ in range(64):
            yield b"x" * 16384
    port, hits, stop = raw_server(reply)
    e = Env("endless", retries=1)
    e.set(base_url="http://127.0.0.1:%d/geo/tiger/" % port)
    rows = e.fetch("RI")
    stop()
    eq(rows[0]["error"], "HTTP 503 after 1 retry: %s" % rows[0]["url"])
    eq(len(hits), 2)


def test_split_survives_faults_in_pieces():
    e = Env("splitfault", connections=4, split_kb=64, retries=8)
    e.rules([{"match": "*", "rate": 300000, "fail_rate": 0.2},
             {"match": "*", "truncate": {"times": 3, "at": 0.3}}])
    rows = e.fetch("MA,CT")
    eq([r["error"] for r in rows], [None, None])
    e.check(["25", "09"])


def test_strict_option_fails_the_statement_but_keeps_good_states():
    e = Env("strict")
    expect_error(e.c, "select * from fetch_tracts('RI,NY', 2019, 'strict')", (),
                 "fetch_tracts: 1 of 2 states failed (strict); NY: HTTP 404 "
                 "Not Found: %s" % url("36"))
    e.check(["44"])


def test_fetch_inside_a_transaction_is_part_of_it():
    e = Env("txn")
    e.c.execute("begin")
    rows = e.fetch("RI")
    eq(rows[0]["error"], None)
    eq(len(e.content("44")), len(_ref["44"]))
    e.c.execute("rollback")
    eq(e.content("44"), [], "rolled back with the transaction")
    eq(e.c.in_transaction, False)
    # the verified download stays in the cache: the next fetch revalidates
    e.rules([])
    rows = e.fetch("RI")
    eq((rows[0]["status"], rows[0]["from_cache"], rows[0]["error"]),
       (304, 1, None))
    e.check(["44"])


def test_fetch_inside_a_writing_statement_says_how_to_run_it():
    e = Env("insidewrite")
    e.c.execute("create table x as select state, error from fetch_tracts('RI')")
    eq(e.c.execute("select * from x").fetchall(), [(
        "RI", "fetch_tracts: %s: cannot write inside a statement that writes; "
        "run SELECT * FROM fetch_tracts(...) on its own" % url("44"))])
    eq(e.content("44"), [])


def test_a_failing_state_keeps_its_previous_rows():
    e = Env("keep", retries=0)
    e.fetch("RI")
    e.rules([{"match": "*", "no_etag": True, "corrupt": {"times": -1}}])
    rows = e.fetch("RI", 2019, "refresh")
    assert rows[0]["error"] and "is corrupt" in rows[0]["error"], rows
    eq(e.content("44"), _ref["44"], "old rows stay")


# ---- interrupt, progress, concurrency -------------------------------------

def test_proxy_from_the_environment():
    """libcurl's usual variables: http_proxy sends every request through
    the proxy (a tiny forwarding proxy here that logs what it relays)."""
    import http.server
    import urllib.request
    relayed = []

    class Proxy(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_GET(self):
            relayed.append(self.path)
            req = urllib.request.Request(self.path, headers={
                k: v for k, v in self.headers.items()
                if k.lower() not in ("host", "proxy-connection", "connection")})
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            try:
                r = opener.open(req)
                code, body, hdrs = r.status, r.read(), r.headers.items()
            except urllib.error.HTTPError as e:
                code, body, hdrs = e.code, e.read(), e.headers.items()
            self.send_response(code)
            for k, v in hdrs:
                if k.lower() not in ("content-length", "connection",
                                     "transfer-encoding"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    old = {k: os.environ.get(k) for k in ("http_proxy", "no_proxy", "NO_PROXY")}
    try:
        os.environ["http_proxy"] = "http://127.0.0.1:%d" % srv.server_address[1]
        os.environ.pop("no_proxy", None)
        os.environ.pop("NO_PROXY", None)
        e = Env("proxy")
        rows = e.fetch("RI,NY")
        eq(rows[0]["error"], None)
        eq(rows[1]["error"], "HTTP 404 Not Found: %s" % url("36"))
        eq(sorted(relayed), sorted([url("44"), url("36")]))
        e.check(["44"])
        os.environ["no_proxy"] = "127.0.0.1"
        relayed.clear()
        eq(e.fetch("MA")[0]["error"], None)
        eq(relayed, [], "no_proxy bypasses it")
    finally:
        srv.shutdown()
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_interrupt_stops_downloads_and_leaves_nothing_partial():
    e = Env("interrupt")
    e.c.close()
    e.c = sqlite3.connect(e.db, isolation_level=None, check_same_thread=False)
    e.c.enable_load_extension(True)
    e.c.load_extension(EXT)
    e.set(base_url="http://127.0.0.1:%d/geo/tiger/" % _port, cache_dir=e.cache,
          progress=-1)
    e.rules([{"match": "*", "rate": 20000}])
    out = {}

    def go():
        try:
            e.fetch("RI,MA,CT")
        except sqlite3.Error as ex:
            out["err"] = str(ex)
        out["t"] = time.monotonic()

    t = threading.Thread(target=go)
    t.start()
    time.sleep(1.0)
    t0 = time.monotonic()
    e.c.interrupt()
    t.join(30)
    assert not t.is_alive(), "fetch_tracts did not stop"
    eq(out.get("err"), "fetch_tracts: interrupted")
    assert out["t"] - t0 < 5, "stopped after %.1f s" % (out["t"] - t0)
    e.check([], ["44", "25", "09"])
    eq(e.c.execute("select count(*) from tracts_cache").fetchone()[0], 0)
    # the connection still works, and a new fetch completes
    e.rules([])
    eq([r["error"] for r in e.fetch("RI")], [None])


def shell(db, sql, env=None):
    return subprocess.run(["sqlite3", db], input=".load %s\n%s" % (EXT, sql),
                          capture_output=True, text=True, env=env, timeout=120)


def test_progress_line_only_when_asked():
    e = Env("progress")
    base = "select tracts_config('base_url', 'http://127.0.0.1:%d/geo/tiger/');" \
           "select tracts_config('cache_dir', '%s');" % (_port, e.cache)
    r = shell(e.db, base + "select count(*) from fetch_tracts('RI,MA');")
    eq((r.returncode, r.stderr), (0, ""), "batch mode is quiet")
    r = shell(e.db, base + "select tracts_config('progress', 1);"
              "select count(*) from fetch_tracts('RI,MA');")
    eq(r.returncode, 0)
    assert "fetch_tracts: 2/2 states" in r.stderr, r.stderr


def test_two_processes_share_one_cache():
    e = Env("twoproc")
    e.rules([{"match": "*", "rate": 300000}])
    sql = ("select tracts_config('base_url', 'http://127.0.0.1:%d/geo/tiger/');"
           "select tracts_config('cache_dir', '%s');"
           "select tracts_config('retry_wait_ms', 1);"
           "select state, error from fetch_tracts('RI,MA,CT', 2019, 'refresh');"
           % (_port, e.cache))
    procs = [subprocess.Popen(["sqlite3", os.path.join(e.dir, "p%d.db" % i)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    outs = [p.communicate(".load %s\n%s" % (EXT, sql), timeout=120)
            for p in procs]
    for p, (o, err) in zip(procs, outs):
        eq((p.returncode, err), (0, ""))
        eq([l for l in o.split() if "|" in l], ["RI|", "MA|", "CT|"])
    eq(len(gets(e.log())), 6, "both downloaded everything")
    for i in range(2):
        c = sqlite3.connect(os.path.join(e.dir, "p%d.db" % i))
        for fips in ("44", "25", "09"):
            eq(c.execute("select %s from tracts where STATEFP=? order by GEOID"
                         % COLS, (fips,)).fetchall(), _ref[fips])
        c.close()
    e.check(["44", "25", "09"], db=False)


def test_fetch_then_tract_of_sees_the_new_tracts():
    e = Env("lookup")
    e.fetch("RI")
    geoid, blob = e.c.execute("select GEOID, geometry from tracts limit 1").fetchone()
    lon, lat = e.c.execute(
        "select (minx+maxx)/2, (miny+maxy)/2 from tracts_rtree r join tracts t "
        "on t.rowid=r.id where GEOID=?", (geoid,)).fetchone()
    got = e.c.execute("select tract_of(?, ?)", (lon, lat)).fetchone()[0]
    assert got is not None and got.startswith("44"), got
    e.fetch("MA")
    eq(e.c.execute("select count(distinct STATEFP) from tracts").fetchone()[0], 2)


if __name__ == "__main__":
    try:
        status = run("fetch", globals())
    finally:
        if _server:
            census_server.stop(_server)
    sys.exit(status)
