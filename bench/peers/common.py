"""What the peer programs share: a fresh output database and the hash of
its answers, so methods can be compared (see compare.py for details)."""
import hashlib
import os
import sqlite3

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def fresh(path):
    """Remove the database at path and its journal files."""
    for p in (path, path + "-journal", path + "-wal", path + "-shm"):
        if os.path.exists(p):
            os.remove(p)


def answers(out_db):
    """(sha256 of the "id,geoid" lines of res in id order, for points that
    got a GEOID; how many did)."""
    con = sqlite3.connect(out_db)
    h = hashlib.sha256()
    n = 0
    for i, g in con.execute("SELECT id, geoid FROM res WHERE geoid IS NOT NULL ORDER BY id"):
        h.update(b"%d,%s\n" % (i, g.encode()))
        n += 1
    con.close()
    return h.hexdigest(), n
