"""What the Python test files share: the extension under test, a connection
that has loaded it, exact-outcome assertions, and the runner that prints the
closing "NAME: N passed, N failed, N skipped" line tests/run.sh reads.

    from harness import EXT, ROOT, ASAN, Skip, connect, expect_error, eq, run
    ...
    if __name__ == "__main__":
        sys.exit(run("python", globals()))
"""
import os
import sqlite3
import sys
import traceback

EXT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/tracts.so")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASAN = os.environ.get("TRACTS_ASAN") == "1"


class Skip(Exception):
    """Raised by a test that cannot run here; counted as skipped."""


def connect(path=":memory:"):
    c = sqlite3.connect(path, isolation_level=None)
    c.enable_load_extension(True)
    c.load_extension(EXT)
    return c


def local_only():
    """Reach the tests' local server directly, whatever proxy the host
    has set."""
    for k in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY",
              "HTTPS_PROXY", "ALL_PROXY"):
        os.environ.pop(k, None)
    os.environ["no_proxy"] = os.environ["NO_PROXY"] = "127.0.0.1,localhost"


def expect_error(c, sql, params, text):
    try:
        c.execute(sql, params).fetchall()
    except sqlite3.Error as e:
        assert str(e) == text, "error was %r, expected %r" % (str(e), text)
        return
    raise AssertionError("no error from %s, expected %r" % (sql, text))


def eq(a, b, what=""):
    assert a == b, "%s: %r != %r" % (what, a, b)


def run(name, namespace):
    """Run every test_* function of namespace in order (only those whose
    name holds $TRACTS_TEST, if set); return the exit status."""
    tests = [(n, f) for n, f in namespace.items()
             if n.startswith("test_") and callable(f)]
    only = os.environ.get("TRACTS_TEST")
    npass = nfail = nskip = 0
    for tname, f in tests:
        if only and only not in tname:
            continue
        try:
            f()
            npass += 1
            print("ok   %s" % tname)
        except Skip as e:
            nskip += 1
            print("skip %s: %s" % (tname, e))
        except Exception:
            nfail += 1
            print("FAIL %s" % tname)
            traceback.print_exc(file=sys.stdout)
        sys.stdout.flush()
    print("%s: %d passed, %d failed, %d skipped" % (name, npass, nfail, nskip))
    return 1 if nfail else 0
