#!/usr/bin/python3
"""A fault-injecting stand-in for the Census Bureau's download server
(www2.census.gov), used by the tests, the benchmark and `make demo`.

    /usr/bin/python3 tests/census_server.py --root DIR [--port 0]
        [--rules FILE.json] [--seed N] [--quiet | --verbose]

It serves the files under DIR on 127.0.0.1 (URL /a/b/c.zip is DIR/a/b/c.zip;
directories, "..", and anything resolving outside DIR are 404), prints the
port alone on one line once listening, and runs until SIGTERM or SIGINT,
then exits 0.  Standard library only.

From Python:

    import census_server
    server, thread, port = census_server.start(root, rules=[...], seed=1)
    ...
    census_server.stop(server)

Normal behaviour
----------------
HTTP/1.1 with keep-alive; GET and HEAD; every response carries a
Content-Length unless a fault closes the connection on purpose (304 has no
body and no Content-Length).  Content-Type application/zip for .zip, else
application/octet-stream.  Strong ETag ("first 16 hex of the file's
sha256", cached per path, mtime and size) and Last-Modified; If-None-Match
-> 304; If-Modified-Since >= mtime (without If-None-Match) -> 304.
Accept-Ranges: bytes; one range (bytes=a-b, a-, -n) -> 206 with
Content-Range; unsatisfiable -> 416 with Content-Range: bytes */SIZE;
If-Range that does not match the ETag (or Last-Modified date) -> full 200;
several ranges, or a malformed Range -> full 200.  Bodies stream from disk.

Rules
-----
A JSON list of objects, each with "match" (an fnmatch glob on the URL's
basename, e.g. "cb_2019_44_*" or "*") and any of the fields below.  Every
matching rule applies, merged in list order (later keys win).  "First N"
counts are per (rule index, URL path), count the GETs that match the rule,
and are taken when the request arrives.  HEAD is never failed by the
"first N"/probability faults, only by latency_ms, require_ua and status.

  latency_ms   sleep before the response headers (every request)
  rate         body bytes per second, 200 and 206 file bodies
  fail_first   N: the first N GETs get fail_status (default 503)
  fail_rate    0..1: probability a GET gets fail_status; drawn from one
               random.Random(--seed) in arrival order, so runs repeat
  fail_status  status for fail_first / fail_rate (default 503)
  retry_after  seconds (may be 0): Retry-After on fail_* and status answers
  status       always answer this status with a small text/html body
  truncate     {"times": N, "at": B}: full headers, first B body bytes,
               then shutdown and close (curl error 18)
  reset        {"times": N, "at": B}: the same but end with a TCP RST
               (SO_LINGER 0; curl error 56)
  stall        {"times": N, "at": B, "seconds": S}: send B bytes, go silent
               for S seconds (default 3600; ends at server stop), close
  corrupt      {"times": N, "offset": O, "count": C}: C bytes (default 16)
               XOR 0xFF at file offset O (default size//2), in 200 and 206
  html         N: the first N GETs get 200 text/html "Service unavailable"
  empty        N: the first N GETs get 200 application/zip, length 0
  no_etag      true: no ETag or Last-Modified; conditionals are ignored and
               an If-Range never matches (so a Range gets a full 200)
  no_range     true: no Accept-Ranges; Range is ignored (full 200)
  ignore_range true: Accept-Ranges: bytes is sent, but Range is ignored
               all the same (full 200), as some servers and proxies do
  weak_etag    true: the ETag is weak (W/"..."); an If-Range naming it
               never matches (RFC 7233 wants a strong validator there)
  require_ua   substring the User-Agent must contain, else 403
  comment      ignored

For truncate/reset/stall/corrupt/html/empty, N = -1 (or true, or "times"
left out) means every GET.  "at" is a byte count of the response body, or,
if a float below 1, that fraction of it (default 0.5).  Unknown fields are
an error, so typos are caught.  When several body faults apply, corrupt
combines with one of stall, reset, truncate (first in that order).

Control endpoints (never served from DIR, not logged, not subject to rules)
---------------------------------------------------------------------------
  GET  /_control/log    JSON list of every other request in arrival order:
                        t (seconds since start), method, path, range,
                        if_none_match, if_modified_since, if_range,
                        user_agent, status, bytes (body bytes sent), fault
                        (name, "a+b" if several, or null), done, and error
                        (why sending stopped early, or null).  Entries are
                        made on arrival and updated while sending.
  POST /_control/rules  body: a JSON list; replaces the rules, resets the
                        counters and the random draws; {"ok": true}
  POST /_control/reset  clears the log and counters, keeps the rules
  anything else under /_control/ is 404.

Threads: one daemon thread per connection (ThreadingHTTPServer); shared
state (rules, counters, the random draws, the log, the ETag cache) is behind
one lock.  Clients that hang up mid-body are recorded, never printed.
"""
import argparse
import email.utils
import errno
import fcntl
import fnmatch
import hashlib
import json
import os
import posixpath
import random
import select
import signal
import socket
import socketserver
import struct
import sys
import termios
import threading
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = 64 * 1024
RULE_FIELDS = {
    "match", "comment", "latency_ms", "rate", "fail_first", "fail_rate",
    "fail_status", "retry_after", "status", "truncate", "reset", "stall",
    "corrupt", "html", "empty", "no_etag", "no_range", "require_ua",
    "ignore_range", "weak_etag",
}
HTML_PAGE = (b"<!DOCTYPE html><html><body>Service unavailable"
             b"</body></html>")
HANGUP = (ConnectionError, TimeoutError)


def check_rules(rules):
    """Return a copy of rules, or raise ValueError naming what is wrong."""
    if not isinstance(rules, list):
        raise ValueError("rules: expected a JSON list, got %s"
                         % type(rules).__name__)
    out = []
    for i, r in enumerate(rules):
        if not isinstance(r, dict):
            raise ValueError("rule %d: expected an object" % i)
        if not isinstance(r.get("match"), str):
            raise ValueError("rule %d: 'match' must be a glob string" % i)
        for k in r:
            if k not in RULE_FIELDS:
                raise ValueError("rule %d: unknown field '%s'" % (i, k))
        for k in ("truncate", "reset", "stall", "corrupt"):
            v = r.get(k)
            if v is not None and not isinstance(v, (dict, bool)):
                raise ValueError("rule %d: '%s' must be an object" % (i, k))
        out.append(dict(r))
    return out


def _times_active(times, n):
    """True if the n-th GET (n >= 1; 0 for HEAD) falls in the first
    `times`, where -1 or true means always and false/0/None never."""
    if n <= 0 or times is None or times is False:
        return False
    if times is True or times < 0:
        return True
    return n <= times


def _fault_opts(value):
    """A body-fault value (object or true) as a dict; "times" defaults
    to -1 (always)."""
    if value is True:
        return {"times": -1}
    if not value:
        return None
    return value


def _at_bytes(at, length):
    if at is None:
        at = 0.5
    if isinstance(at, float) and 0 <= at < 1:
        n = int(length * at)
    else:
        n = int(at)
    return max(0, min(n, length))


def _parse_range(header, size):
    """(start, end) inclusive, "416", or None (ignore: full 200)."""
    h = header.strip()
    if not h.lower().startswith("bytes="):
        return None
    spec = h[6:].strip()
    if "," in spec:
        return None
    a, sep, b = spec.partition("-")
    a, b = a.strip(), b.strip()
    if not sep:
        return None
    if a == "":
        if not b.isdigit():
            return None
        n = int(b)
        if n == 0 or size == 0:
            return "416"
        return (max(0, size - n), size - 1)
    if not a.isdigit() or (b and not b.isdigit()):
        return None
    start = int(a)
    end = int(b) if b else size - 1
    if b and end < start:
        return None
    if start >= size:
        return "416"
    return (start, min(end, size - 1))


def _http_time(value):
    """Seconds since the epoch of an HTTP date, or None."""
    try:
        d = email.utils.parsedate_to_datetime(value)
        return d.timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _etag_in(header, etag):
    """If-None-Match comparison (weak: W/ is ignored on both sides)."""
    if etag.startswith("W/"):
        etag = etag[2:]
    for tag in header.split(","):
        tag = tag.strip()
        if tag == "*":
            return True
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag == etag:
            return True
    return False


def _xor(data, pos, offset, count):
    """data holds file bytes from pos on; flip those in [offset,+count)."""
    lo = max(pos, offset)
    hi = min(pos + len(data), offset + count)
    if lo >= hi:
        return data
    b = bytearray(data)
    for i in range(lo - pos, hi - pos):
        b[i] ^= 0xFF
    return bytes(b)


class CensusServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, root, rules=None, seed=1, port=0, quiet=False,
                 verbose=False):
        self.root = os.path.realpath(root)
        if not os.path.isdir(self.root):
            raise ValueError("root '%s' is not a directory"
                             % root)
        self.seed = seed
        self.quiet = quiet
        self.verbose = verbose
        self.lock = threading.Lock()
        self.rules = check_rules(rules or [])
        self.counters = {}
        self.rng = random.Random(seed)
        self.log = []
        self.etags = {}
        self.conns = set()
        self.stopping = threading.Event()
        self.t0 = time.monotonic()
        super().__init__(("127.0.0.1", port), Handler)

    def server_bind(self):
        # HTTPServer.server_bind calls getfqdn(); skip the name lookup.
        socketserver.TCPServer.server_bind(self)
        self.server_name = "127.0.0.1"
        self.server_port = self.server_address[1]

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, HANGUP) or self.quiet:
            return
        if isinstance(exc, OSError) and exc.errno in (
                errno.EBADF, errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
            return
        sys.stderr.write("census_server: error serving %s:\n"
                         % (client_address,))
        traceback.print_exc(file=sys.stderr)

    # -- shared state, all under self.lock --

    def set_rules(self, rules):
        rules = check_rules(rules)
        with self.lock:
            self.rules = rules
            self.counters = {}
            self.rng = random.Random(self.seed)

    def reset(self):
        with self.lock:
            self.log = []
            self.counters = {}
            self.rng = random.Random(self.seed)

    def plan(self, method, key, base):
        """Merge the rules matching base: {field: (value, n)} where n is
        this GET's number for the rule that supplied the field (0 for
        other methods); plus a draw for fail_rate (or None)."""
        merged = {}
        with self.lock:
            for i, r in enumerate(self.rules):
                if not fnmatch.fnmatchcase(base, r["match"]):
                    continue
                n = 0
                if method == "GET":
                    n = self.counters.get((i, key), 0) + 1
                    self.counters[(i, key)] = n
                for k, v in r.items():
                    if k not in ("match", "comment"):
                        merged[k] = (v, n)
            draw = None
            if method == "GET" and "fail_rate" in merged:
                draw = self.rng.random()
        return merged, draw

    def new_entry(self, h):
        hd = h.headers
        e = {
            "t": round(time.monotonic() - self.t0, 6),
            "port": h.client_address[1],
            "method": h.command,
            "path": h.path,
            "range": hd.get("Range"),
            "if_none_match": hd.get("If-None-Match"),
            "if_modified_since": hd.get("If-Modified-Since"),
            "if_range": hd.get("If-Range"),
            "user_agent": hd.get("User-Agent"),
            "status": None,
            "bytes": 0,
            "fault": None,
            "done": False,
            "error": None,
        }
        with self.lock:
            self.log.append(e)
        return e

    def log_json(self):
        with self.lock:
            return json.dumps([dict(e) for e in self.log]).encode()

    def etag_for(self, path, st):
        key = (path, st.st_mtime_ns, st.st_size)
        with self.lock:
            tag = self.etags.get(key)
        if tag is None:
            sha = hashlib.sha256()
            with open(path, "rb") as f:
                while True:
                    b = f.read(1 << 20)
                    if not b:
                        break
                    sha.update(b)
            tag = '"%s"' % sha.hexdigest()[:16]
            with self.lock:
                self.etags[key] = tag
        return tag

    def resolve(self, upath):
        """The regular file for decoded URL path upath, or None."""
        if "\0" in upath or "\\" in upath:
            return None
        parts = [p for p in upath.split("/") if p]
        if not parts or any(p in (".", "..") for p in parts):
            return None
        full = os.path.realpath(os.path.join(self.root, *parts))
        if os.path.commonpath([self.root, full]) != self.root:
            return None
        if not os.path.isfile(full):
            return None
        return full


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "census-test-server"
    timeout = 120          # idle keep-alive connections end after this

    def version_string(self):
        return self.server_version

    def setup(self):
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP,
                                       socket.TCP_NODELAY, 1)
        except OSError:
            pass
        with self.server.lock:
            self.server.conns.add(self.connection)
        self.hard_closed = False

    def finish(self):
        with self.server.lock:
            self.server.conns.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_request(self, code="-", size="-"):
        pass                # serve() writes its own line with --verbose

    def log_message(self, format, *args):
        if self.server.verbose:
            sys.stderr.write("census_server: %s\n" % (format % args))

    # -- entry points --

    def do_GET(self):
        self.serve(head=False)

    def do_HEAD(self):
        self.serve(head=True)

    def do_POST(self):
        if self.url_path().startswith("/_control/"):
            body = self.read_body()
            if body is not None:
                self.control(body)
            return
        self.do_other()

    def do_other(self):
        body = self.read_body()
        if body is None:
            return
        if self.url_path().startswith("/_control/"):
            self.reply(404, b"not found\n", "text/plain")
            return
        e = self.server.new_entry(self)
        try:
            self.simple(e, 405, b"method not allowed\n", "text/plain",
                        extra=[("Allow", "GET, HEAD")])
        finally:
            e["done"] = True

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_other

    def url_path(self):
        return urllib.parse.urlsplit(self.path).path

    def read_body(self):
        """The request body (Content-Length or chunked), or None after
        answering 400/411."""
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            out = b""
            while True:
                line = self.rfile.readline(1024)
                try:
                    n = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    self.send_error(400, "bad chunk")
                    return None
                if n == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n",
                                                            b""):
                        pass
                    return out
                out += self.rfile.read(n)
                self.rfile.readline(1024)
        cl = self.headers.get("Content-Length")
        if cl is None:
            return b""
        try:
            n = int(cl)
        except ValueError:
            self.send_error(400, "bad Content-Length")
            return None
        return self.rfile.read(n) if n > 0 else b""

    # -- control --

    def control(self, body=None):
        p = self.url_path()
        srv = self.server
        if p == "/_control/log" and self.command == "GET":
            self.reply(200, srv.log_json(), "application/json")
        elif p == "/_control/rules" and self.command == "POST":
            try:
                srv.set_rules(json.loads(body.decode("utf-8")))
            except (ValueError, UnicodeDecodeError) as ex:
                self.reply(400, json.dumps({"ok": False, "error": str(ex)})
                           .encode(), "application/json")
                return
            self.reply(200, b'{"ok": true}', "application/json")
        elif p == "/_control/reset" and self.command == "POST":
            srv.reset()
            self.reply(200, b'{"ok": true}', "application/json")
        else:
            self.reply(404, b"not found\n", "text/plain")

    def reply(self, code, body, ctype, extra=(), head=False):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    # -- files --

    def serve(self, head):
        if self.url_path().startswith("/_control/"):
            if head:
                self.reply(404, b"not found\n", "text/plain", head=True)
            else:
                self.control()
            return
        srv = self.server
        e = srv.new_entry(self)
        try:
            self.serve_file(e, head)
        except HANGUP as ex:
            e["error"] = "%s: %s" % (type(ex).__name__, ex)
            self.close_connection = True
        except OSError as ex:
            e["error"] = "%s: %s" % (type(ex).__name__, ex)
            self.close_connection = True
            if not srv.quiet:
                sys.stderr.write("census_server: %s %s: %s\n"
                                 % (self.command, self.path, ex))
        finally:
            e["t_done"] = round(time.monotonic() - srv.t0, 6)
            e["done"] = True
            if srv.verbose:
                sys.stderr.write("census_server: %s %s -> %s, %d bytes%s%s\n"
                                 % (e["method"], e["path"], e["status"],
                                    e["bytes"],
                                    ", fault " + e["fault"] if e["fault"]
                                    else "",
                                    ", " + e["error"] if e["error"]
                                    else ""))

    def simple(self, e, code, body, ctype, fault=None, extra=(),
               head=False):
        e["status"] = code
        e["fault"] = fault
        self.reply(code, body, ctype, extra, head)
        if not head:
            e["bytes"] = len(body)

    def status_page(self, e, code, fault, retry_after, head):
        phrase = self.responses.get(code, ("Error",))[0]
        body = ("<!DOCTYPE html><html><head><title>%d %s</title></head>"
                "<body><h1>%s</h1></body></html>\n"
                % (code, phrase, phrase)).encode()
        extra = []
        if retry_after is not None:
            extra.append(("Retry-After", "%g" % retry_after))
        self.simple(e, code, body, "text/html; charset=utf-8", fault, extra,
                    head)

    def serve_file(self, e, head):
        srv = self.server
        method = "HEAD" if head else "GET"
        upath = urllib.parse.unquote(self.url_path())
        rules, draw = srv.plan(method, upath, posixpath.basename(upath))

        def val(k, default=None):
            return rules[k][0] if k in rules else default

        def nth(k):
            return rules[k][1] if k in rules else 0

        latency = val("latency_ms")
        if latency:
            srv.stopping.wait(latency / 1000.0)
        ua = val("require_ua")
        if ua is not None and ua not in (self.headers.get("User-Agent")
                                         or ""):
            self.status_page(e, 403, "require_ua", None, head)
            return
        retry_after = val("retry_after")
        if val("status") is not None:
            self.status_page(e, int(val("status")), "status", retry_after,
                             head)
            return
        if not head:
            fail_status = int(val("fail_status", 503))
            ff = val("fail_first")
            if ff and nth("fail_first") <= ff:
                self.fail(e, fail_status, "fail_first", retry_after)
                return
            if draw is not None and draw < float(val("fail_rate")):
                self.fail(e, fail_status, "fail_rate", retry_after)
                return
            if _times_active(val("html"), nth("html")):
                self.simple(e, 200, HTML_PAGE, "text/html", "html")
                return
            if _times_active(val("empty"), nth("empty")):
                self.simple(e, 200, b"", "application/zip", "empty")
                return

        path = srv.resolve(upath)
        if path is None:
            self.status_page(e, 404, None, None, head)
            return
        st = os.stat(path)
        size = st.st_size
        no_etag = bool(val("no_etag"))
        no_range = bool(val("no_range"))
        ignore_range = bool(val("ignore_range"))
        etag = lastmod = None
        if not no_etag:
            etag = srv.etag_for(path, st)
            if val("weak_etag"):
                etag = "W/" + etag
            lastmod = email.utils.formatdate(st.st_mtime, usegmt=True)
        mtime = int(st.st_mtime)

        hd = self.headers
        if not no_etag:
            inm = hd.get("If-None-Match")
            ims = hd.get("If-Modified-Since")
            fresh = False
            if inm is not None:
                fresh = _etag_in(inm, etag)
            elif ims is not None:
                t = _http_time(ims)
                fresh = t is not None and t >= mtime
            if fresh:
                e["status"] = 304
                self.send_response(304)
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", lastmod)
                self.end_headers()
                return

        start, end, code = 0, size - 1, 200
        rh = hd.get("Range")
        if rh is not None and not no_range and not ignore_range:
            honour = True
            ifr = hd.get("If-Range")
            if ifr is not None:
                ifr = ifr.strip()
                if ifr.startswith("W/"):
                    honour = False
                elif ifr.startswith('"'):
                    honour = etag is not None and ifr == etag
                else:
                    t = _http_time(ifr)
                    honour = lastmod is not None and t == mtime
            r = _parse_range(rh, size) if honour else None
            if r == "416":
                self.simple(e, 416, b"range not satisfiable\n",
                            "text/plain", extra=[
                                ("Content-Range", "bytes */%d" % size)],
                            head=head)
                return
            if r is not None:
                start, end, code = r[0], r[1], 206
        length = end - start + 1

        faults = []
        corrupt = cut = None
        if not head:
            c = _fault_opts(val("corrupt"))
            if c and _times_active(c.get("times", -1), nth("corrupt")):
                corrupt = (int(c.get("offset", size // 2)),
                           int(c.get("count", 16)))
                faults.append("corrupt")
            for kind in ("stall", "reset", "truncate"):
                o = _fault_opts(val(kind))
                if o and _times_active(o.get("times", -1), nth(kind)):
                    cut = (kind, _at_bytes(o.get("at"), length),
                           float(o.get("seconds", 3600)))
                    faults.append(kind)
                    break
        e["fault"] = "+".join(faults) or None

        e["status"] = code
        self.send_response(code)
        self.send_header("Content-Type", "application/zip"
                         if path.endswith(".zip")
                         else "application/octet-stream")
        self.send_header("Content-Length", str(length))
        if not no_range:
            self.send_header("Accept-Ranges", "bytes")
        if code == 206:
            self.send_header("Content-Range",
                             "bytes %d-%d/%d" % (start, end, size))
        if etag:
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", lastmod)
        self.end_headers()
        if head:
            return
        limit = length if cut is None else cut[1]
        with open(path, "rb") as f:
            self.send_body(e, f, start, limit, val("rate"), corrupt)
        if cut is None:
            if e["bytes"] < length:       # the file shrank under us
                self.close_connection = True
            return
        kind, _, seconds = cut
        if kind == "stall":
            self.stall(e, seconds)
        if kind == "reset":
            self.abort()
        else:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def fail(self, e, code, fault, retry_after):
        extra = []
        if retry_after is not None:
            extra.append(("Retry-After", "%g" % retry_after))
        phrase = self.responses.get(code, ("Error",))[0]
        self.simple(e, code, ("%d %s\n" % (code, phrase)).encode(),
                    "text/plain", fault, extra)

    def send_body(self, e, f, start, limit, rate, corrupt):
        """Send limit bytes of f from start, at most rate bytes/s."""
        stopping = self.server.stopping
        step = CHUNK
        if rate:
            rate = float(rate)
            step = max(1, min(CHUNK, int(rate / 50)))
        f.seek(start)
        sent = 0
        t0 = time.monotonic()
        while sent < limit:
            data = f.read(min(step, limit - sent))
            if not data:
                return
            if rate:                # as a link would: n bytes at n/rate s
                delay = t0 + (sent + len(data)) / rate - time.monotonic()
                if delay > 0 and stopping.wait(delay):
                    self.close_connection = True
                    return
            if corrupt:
                data = _xor(data, start + sent, corrupt[0], corrupt[1])
            self.wfile.write(data)
            sent += len(data)
            e["bytes"] = sent

    def stall(self, e, seconds):
        """Send nothing for seconds, or until the server stops or the
        client hangs up (so the log entry ends when the client gives up)."""
        stopping = self.server.stopping
        p = select.poll()
        p.register(self.connection, select.POLLRDHUP | select.POLLHUP
                   | select.POLLERR)
        deadline = time.monotonic() + seconds
        while not stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if p.poll(min(left, 0.2) * 1000):
                e["error"] = "client closed the connection during the stall"
                return

    def abort(self):
        """End the connection with a TCP RST once what was written has
        reached the client."""
        self.close_connection = True
        sock = self.connection
        deadline = time.monotonic() + 2
        buf = struct.pack("i", 0)
        while time.monotonic() < deadline:
            try:                    # SIOCOUTQ: bytes not yet acked
                left = struct.unpack("i", fcntl.ioctl(
                    sock.fileno(), termios.TIOCOUTQ, buf))[0]
            except OSError:
                break
            if left == 0:
                break
            time.sleep(0.005)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack("ii", 1, 0))
        except OSError:
            pass
        # rfile holds a reference to the socket; drop both so the
        # descriptor really closes now, before any shutdown() sends a FIN.
        try:
            self.rfile.close()
        except OSError:
            pass
        sock.close()


def start(root, rules=None, seed=1, port=0, quiet=True, verbose=False):
    """Serve root in a background thread; return (server, thread, port)."""
    server = CensusServer(root, rules, seed, port, quiet, verbose)
    thread = threading.Thread(target=server.serve_forever,
                              kwargs={"poll_interval": 0.1},
                              name="census_server", daemon=True)
    thread.start()
    server.thread = thread
    return server, thread, server.server_address[1]


def stop(server):
    """Stop serving, wake stalled and throttled responses, close the
    listening socket and every open connection."""
    server.stopping.set()
    server.shutdown()
    server.server_close()
    with server.lock:
        conns = list(server.conns)
    for c in conns:
        try:
            c.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    t = getattr(server, "thread", None)
    if t is not None:
        t.join(5)


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Fault-injecting stand-in for www2.census.gov.")
    ap.add_argument("--root", required=True, help="directory to serve")
    ap.add_argument("--port", type=int, default=0, help="0: any free port")
    ap.add_argument("--rules", help="JSON file holding a list of rules")
    ap.add_argument("--seed", type=int, default=1,
                    help="seed for fail_rate (default 1)")
    ap.add_argument("--quiet", action="store_true",
                    help="print nothing but the port")
    ap.add_argument("--verbose", action="store_true",
                    help="one line per request on stderr")
    a = ap.parse_args(argv)
    rules = None
    if a.rules:
        try:
            with open(a.rules) as f:
                rules = json.load(f)
        except (OSError, ValueError) as ex:
            sys.stderr.write("census_server: %s: %s\n" % (a.rules, ex))
            return 2
    done = threading.Event()

    def on_signal(signum, frame):
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        server, _, port = start(a.root, rules, a.seed, a.port,
                                quiet=a.quiet, verbose=a.verbose)
    except (OSError, ValueError) as ex:
        sys.stderr.write("census_server: %s\n" % ex)
        return 2
    try:
        print(port, flush=True)
    except OSError:
        pass
    while not done.wait(1.0):
        pass
    stop(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
