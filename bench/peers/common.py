"""What the peer programs share: a fresh output database and the hash of
its answers, so methods can be compared (see compare.py for details)."""
import hashlib
import os
import sqlite3
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cpu_model():
    """The CPU model name lscpu reports, for the benchmarks' headers."""
    import subprocess
    return subprocess.run(["sh", "-c", "lscpu | grep 'Model name' | sed 's/.*: *//'"],
                          capture_output=True, text=True).stdout.strip()


def fresh(path):
    """Remove the database at path and its journal files."""
    for p in (path, path + "-journal", path + "-wal", path + "-shm"):
        if os.path.exists(p):
            os.remove(p)


def write_res(out_db, df):
    """A pandas DataFrame (id, geoid) as table res of a fresh out_db, the
    way the notebook writes results: DataFrame.to_sql."""
    fresh(out_db)
    con = sqlite3.connect(out_db)
    df.to_sql("res", con, index=False)
    con.commit()
    con.close()


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


def tree_mem(roots):
    """Summed Rss and Pss (kB) of the pids in roots and their descendants."""
    rss = pss = 0
    stack = list(roots)
    while stack:
        p = stack.pop()
        try:
            with open("/proc/%d/smaps_rollup" % p) as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
            for t in os.listdir("/proc/%d/task" % p):
                with open("/proc/%d/task/%s/children" % (p, t)) as f:
                    stack += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return rss, pss


class Sampler(threading.Thread):
    """Peak of the summed Rss/Pss (kB) of the given roots and their descendants."""

    def __init__(self, roots, period):
        super().__init__(daemon=True)
        self.roots = roots
        self.period = period
        self.stop = threading.Event()
        self.peak_rss = self.peak_pss = 0

    def sample(self):
        rss, pss = tree_mem(self.roots)
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_pss = max(self.peak_pss, pss)

    def run(self):
        while not self.stop.wait(self.period):
            self.sample()
