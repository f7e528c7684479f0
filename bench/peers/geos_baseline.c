/*
 * geos_baseline.c -- peer benchmark: the plain GEOS C program, end to end.
 *
 * What it measures: points in a SQLite table -> a new SQLite table
 * res(id INTEGER, geoid TEXT) in a fresh output database, assigning to each
 * point the tract that COVERS it (smallest GEOID on shared edges, the same
 * rule as tract_of), done the way a C programmer would with GEOS alone:
 *
 *   read_tracts  SELECT GEOID, geometry FROM tracts ORDER BY GEOID (load.db,
 *                written by load_tracts); each SpatiaLite MULTIPOLYGON blob is
 *                parsed here (no SpatiaLite) into a GEOS geometry with the
 *                reentrant _r API (coordinates copied with
 *                GEOSCoordSeq_copyFromBuffer_r).
 *   prepare      GEOSPrepare_r on every tract, then one GEOSPreparedCovers_r
 *                call per prepared geometry on its first vertex, which builds
 *                GEOS's lazy IndexedPointInAreaLocator now (before fork, so
 *                forked workers share the built indexes copy-on-write), and
 *                a GEOSSTRtree_create_r(10) of the tract envelopes, forced to
 *                build with one query.
 *   read_points  SELECT id, lon, lat FROM points ORDER BY id [LIMIT n] into
 *                arrays.
 *   join         with --workers W: fork W-1 children (W=1: no fork); the
 *                parent and each child take one contiguous slice of the
 *                points; per point: a GEOS point, an STRtree query, and
 *                GEOSPreparedCovers_r on the candidates, keeping the smallest
 *                tract index (= smallest GEOID, tracts are read sorted by
 *                GEOID) that covers.  Children send their results to the
 *                parent through a pipe as fixed-size 12-byte records
 *                (int64 id, int32 tract index, -1 = none), then three
 *                trailer records: their own Rss and Pss in kB (read from
 *                /proc/self/smaps_rollup when their slice is done) and the
 *                milliseconds the slice took (reported in "join_detail").
 *   write        parent: fresh out db, CREATE TABLE res(id INTEGER, geoid
 *                TEXT), all rows (geoid NULL where no tract covers) inserted
 *                in one transaction with one prepared INSERT.
 *
 * Output: one JSON line on stdout:
 *   {"method","points","seconds" (wall, start of main to end of write),
 *    "phases":{...}, "peak_rss_mb" (getrusage SELF), "peak_rss_children_mb"
 *    (getrusage CHILDREN: the largest child), "join_rss_sum_mb" and
 *    "join_pss_sum_mb" (parent + children, sampled at the end of each one's
 *    slice: Pss counts shared copy-on-write pages once overall),
 *    "answers_sha" (sha256 of the "id,geoid\n" lines, ordered by id, of the
 *    points that got a GEOID, read back from the out db after timing),
 *    "n_assigned", "workers"}.
 *
 * The blob layout parsed (little-endian): 0x00, 0x01, int32 SRID, 4 doubles
 * MBR, 0x7C, int32 class (6 MULTIPOLYGON; 3 POLYGON also accepted), int32
 * nPolys, per polygon 0x69 + int32 class 3 + int32 nRings, per ring int32
 * nPts + nPts (x, y) doubles, final 0xFE; anything else is refused.
 * tracts_rtree is not used (GEOS's STRtree replaces it).
 *
 * Needs GEOS >= 3.10 (GEOSCoordSeq_copyFromBuffer_r), SQLite, and libcrypto
 * (only for the answers_sha).  Build (from /work/main):
 *   gcc -O2 -o build/geos_baseline bench/peers/geos_baseline.c \
 *       $(pkg-config --cflags --libs sqlite3 geos libcrypto) -lm
 * Run:
 *   build/geos_baseline --points-db build/bench/points_1000000.db \
 *       --out-db /tmp/peer-out/geos.db --workers 2 \
 *       [--tracts-db build/bench/load.db] [--limit N]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <geos_c.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static GEOSContextHandle_t ctx;

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "geos_baseline: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static void geos_msg(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "GEOS: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- SpatiaLite blob -> GEOS -------------------------------------------- */

typedef struct {
    const unsigned char *p;
    size_t n, off;
} rd_t;

static int rd_u8(rd_t *r, unsigned *v) {
    if (r->off + 1 > r->n) return 0;
    *v = r->p[r->off++];
    return 1;
}
static int rd_i32(rd_t *r, int32_t *v) {
    if (r->off + 4 > r->n) return 0;
    memcpy(v, r->p + r->off, 4); /* little-endian host assumed (x86-64) */
    r->off += 4;
    return 1;
}

static double *cbuf;
static size_t cbuf_cap;

static GEOSGeometry *parse_ring(rd_t *r, long *nverts) {
    int32_t np;
    if (!rd_i32(r, &np) || np < 4 || (size_t)np > (r->n - r->off) / 16) return NULL;
    if ((size_t)np * 2 > cbuf_cap) {
        cbuf_cap = (size_t)np * 2;
        cbuf = realloc(cbuf, cbuf_cap * sizeof(double));
        if (!cbuf) die("out of memory");
    }
    memcpy(cbuf, r->p + r->off, (size_t)np * 16); /* blob doubles may be unaligned */
    r->off += (size_t)np * 16;
    *nverts += np;
    GEOSCoordSequence *cs = GEOSCoordSeq_copyFromBuffer_r(ctx, cbuf, np, 0, 0);
    if (!cs) return NULL;
    return GEOSGeom_createLinearRing_r(ctx, cs);
}

static GEOSGeometry *parse_polygon(rd_t *r, long *nverts) {
    int32_t nr;
    if (!rd_i32(r, &nr) || nr < 1 || nr > 1000000) return NULL;
    GEOSGeometry *shell = parse_ring(r, nverts);
    if (!shell) return NULL;
    GEOSGeometry **holes = nr > 1 ? malloc(sizeof(*holes) * (nr - 1)) : NULL;
    for (int i = 0; i < nr - 1; i++) {
        holes[i] = parse_ring(r, nverts);
        if (!holes[i]) return NULL;
    }
    GEOSGeometry *g = GEOSGeom_createPolygon_r(ctx, shell, holes, nr - 1);
    free(holes);
    return g;
}

/* Returns NULL on a malformed blob. */
static GEOSGeometry *parse_blob(const unsigned char *p, size_t n, long *nverts) {
    rd_t r = {p, n, 0};
    if (n < 44 || p[0] != 0x00 || p[1] != 0x01 || p[38] != 0x7C || p[n - 1] != 0xFE)
        return NULL;
    r.n = n - 1; /* the final 0xFE */
    r.off = 39;
    int32_t cls;
    rd_i32(&r, &cls);
    GEOSGeometry *g = NULL;
    if (cls == 3) {
        g = parse_polygon(&r, nverts);
    } else if (cls == 6) {
        int32_t npoly;
        if (!rd_i32(&r, &npoly) || npoly < 1 || npoly > 10000000) return NULL;
        GEOSGeometry **polys = malloc(sizeof(*polys) * npoly);
        for (int i = 0; i < npoly; i++) {
            unsigned mark;
            int32_t c;
            if (!rd_u8(&r, &mark) || mark != 0x69 || !rd_i32(&r, &c) || c != 3) return NULL;
            polys[i] = parse_polygon(&r, nverts);
            if (!polys[i]) return NULL;
        }
        g = GEOSGeom_createCollection_r(ctx, GEOS_MULTIPOLYGON, polys, npoly);
        free(polys);
    } else {
        return NULL;
    }
    if (g && r.off != r.n) return NULL; /* trailing bytes: malformed */
    return g;
}

/* ---- /proc/self/smaps_rollup -------------------------------------------- */

static void smaps_rollup(long *rss_kb, long *pss_kb) {
    *rss_kb = *pss_kb = -1;
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    if (!f) return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "Rss:", 4)) *rss_kb = atol(line + 4);
        else if (!strncmp(line, "Pss:", 4)) *pss_kb = atol(line + 4);
    }
    fclose(f);
}

/* ---- the join ------------------------------------------------------------ */

static int ntracts;
static const GEOSPreparedGeometry **prep;
static GEOSSTRtree *tree;
static int *tract_ids; /* tract_ids[i] = i: the STRtree items point here */

typedef struct {
    int cand[4096];
    int n;
} cands_t;

static void collect(void *item, void *ud) {
    cands_t *c = ud;
    if (c->n < (int)(sizeof c->cand / sizeof c->cand[0])) c->cand[c->n++] = *(int *)item;
}

static int lookup(double x, double y) {
    GEOSGeometry *pt = GEOSGeom_createPointFromXY_r(ctx, x, y);
    cands_t c;
    c.n = 0;
    GEOSSTRtree_query_r(ctx, tree, pt, collect, &c);
    int best = -1;
    for (int i = 0; i < c.n; i++) {
        int k = c.cand[i];
        if (best >= 0 && k > best) continue; /* want the smallest GEOID */
        char rc = GEOSPreparedCovers_r(ctx, prep[k], pt);
        if (rc == 2) die("GEOSPreparedCovers_r failed");
        if (rc == 1) best = k;
    }
    GEOSGeom_destroy_r(ctx, pt);
    return best;
}

static int64_t *pid_arr; /* point ids */
static double *plon, *plat;
static unsigned char *pnull; /* lon or lat NULL */
static int32_t *res;

static void join_slice(long a, long b) {
    for (long i = a; i < b; i++) res[i] = pnull[i] ? -1 : lookup(plon[i], plat[i]);
}

#define REC 12
#define NTRAIL 3 /* trailer records: Rss kB, Pss kB, slice milliseconds */
static void put_rec(unsigned char *buf, int64_t id, int32_t v) {
    memcpy(buf, &id, 8);
    memcpy(buf + 8, &v, 4);
}

static void write_all(int fd, const unsigned char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            _exit(3);
        }
        p += w;
        n -= w;
    }
}

static size_t read_full(int fd, unsigned char *p, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0) {
            if (errno == EINTR) continue;
            die("read from child: %s", strerror(errno));
        }
        if (r == 0) break;
        got += r;
    }
    return got;
}

/* ---- main ---------------------------------------------------------------- */

static void sql_ok(int rc, sqlite3 *db, const char *what) {
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        die("%s: %s", what, sqlite3_errmsg(db));
}

int main(int argc, char **argv) {
    double t0 = now();
    const char *tracts_db = "build/bench/load.db", *points_db = NULL, *out_db = NULL;
    long limit = -1;
    int workers = 1;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--tracts-db")) tracts_db = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--points-db")) points_db = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--out-db")) out_db = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--limit")) limit = atol(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--workers")) workers = atoi(argv[++i]);
        else die("usage: geos_baseline --points-db P --out-db O [--tracts-db T] [--limit N] [--workers W]");
    }
    if (!points_db || !out_db) die("--points-db and --out-db are required");
    if (workers < 1 || workers > 256) die("--workers must be 1..256");

    ctx = GEOS_init_r();
    GEOSContext_setNoticeHandler_r(ctx, geos_msg);
    GEOSContext_setErrorHandler_r(ctx, geos_msg);

    /* -- read_tracts */
    double t = now();
    sqlite3 *db;
    if (sqlite3_open_v2(tracts_db, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        die("cannot open %s", tracts_db);
    sqlite3_stmt *st;
    sql_ok(sqlite3_prepare_v2(db, "SELECT count(*) FROM tracts", -1, &st, NULL), db, "count tracts");
    sql_ok(sqlite3_step(st), db, "count tracts");
    ntracts = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    GEOSGeometry **geoms = calloc(ntracts, sizeof(*geoms));
    char (*geoid)[16] = calloc(ntracts, 16);
    long nverts = 0;
    sql_ok(sqlite3_prepare_v2(db, "SELECT GEOID, geometry FROM tracts ORDER BY GEOID", -1, &st, NULL),
           db, "select tracts");
    int k = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (k >= ntracts) die("tracts table changed while reading");
        const char *g = (const char *)sqlite3_column_text(st, 0);
        if (!g || strlen(g) > 15) die("bad GEOID at row %d", k);
        strcpy(geoid[k], g);
        const unsigned char *b = sqlite3_column_blob(st, 1);
        int n = sqlite3_column_bytes(st, 1);
        geoms[k] = parse_blob(b, n, &nverts);
        if (!geoms[k]) die("tract %s: malformed geometry blob", g);
        k++;
    }
    sql_ok(rc, db, "select tracts");
    sqlite3_finalize(st);
    sqlite3_close(db);
    ntracts = k;
    double t_read_tracts = now() - t;

    /* -- prepare */
    t = now();
    prep = calloc(ntracts, sizeof(*prep));
    tract_ids = malloc(sizeof(int) * ntracts);
    tree = GEOSSTRtree_create_r(ctx, 10);
    for (int i = 0; i < ntracts; i++) {
        prep[i] = GEOSPrepare_r(ctx, geoms[i]);
        if (!prep[i]) die("GEOSPrepare_r failed on %s", geoid[i]);
        /* A point inside the envelope (the first shell vertex): Covers on it
         * goes past the envelope test and builds the point locator index. */
        const GEOSGeometry *poly = GEOSGetGeometryN_r(ctx, geoms[i], 0);
        const GEOSGeometry *shell = GEOSGetExteriorRing_r(ctx, poly);
        const GEOSCoordSequence *cs = GEOSGeom_getCoordSeq_r(ctx, shell);
        double x, y;
        GEOSCoordSeq_getXY_r(ctx, cs, 0, &x, &y);
        GEOSGeometry *pt = GEOSGeom_createPointFromXY_r(ctx, x, y);
        if (GEOSPreparedCovers_r(ctx, prep[i], pt) == 2) die("GEOSPreparedCovers_r failed");
        GEOSGeom_destroy_r(ctx, pt);
        tract_ids[i] = i;
        GEOSSTRtree_insert_r(ctx, tree, geoms[i], &tract_ids[i]);
    }
    { /* the STRtree builds itself on the first query: do it now */
        GEOSGeometry *pt = GEOSGeom_createPointFromXY_r(ctx, 0, 0);
        cands_t c;
        c.n = 0;
        GEOSSTRtree_query_r(ctx, tree, pt, collect, &c);
        GEOSGeom_destroy_r(ctx, pt);
    }
    double t_prepare = now() - t;

    /* -- read_points */
    t = now();
    if (sqlite3_open_v2(points_db, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        die("cannot open %s", points_db);
    sql_ok(sqlite3_prepare_v2(db, "SELECT count(*) FROM (SELECT 1 FROM points LIMIT ?)", -1, &st, NULL),
           db, "count points");
    sqlite3_bind_int64(st, 1, limit);
    sql_ok(sqlite3_step(st), db, "count points");
    long np = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    pid_arr = malloc(sizeof(*pid_arr) * (np + 1));
    plon = malloc(sizeof(double) * (np + 1));
    plat = malloc(sizeof(double) * (np + 1));
    pnull = calloc(np + 1, 1);
    res = malloc(sizeof(int32_t) * (np + 1));
    sql_ok(sqlite3_prepare_v2(db, "SELECT id, lon, lat FROM points ORDER BY id LIMIT ?", -1, &st, NULL),
           db, "select points");
    sqlite3_bind_int64(st, 1, limit);
    long n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < np) {
        pid_arr[n] = sqlite3_column_int64(st, 0);
        if (sqlite3_column_type(st, 1) == SQLITE_NULL || sqlite3_column_type(st, 2) == SQLITE_NULL)
            pnull[n] = 1;
        plon[n] = sqlite3_column_double(st, 1);
        plat[n] = sqlite3_column_double(st, 2);
        n++;
    }
    if (rc != SQLITE_ROW) sql_ok(rc, db, "select points");
    sqlite3_finalize(st);
    sqlite3_close(db);
    np = n;
    double t_read_points = now() - t;

    /* -- join */
    t = now();
    int nchild = workers - 1;
    pid_t *kids = calloc(nchild + 1, sizeof(pid_t));
    int *fds = calloc(nchild + 1, sizeof(int));
    fflush(stdout);
    fflush(stderr);
    for (int w = 1; w < workers; w++) {
        int pfd[2];
        if (pipe(pfd) < 0) die("pipe: %s", strerror(errno));
        pid_t pid = fork();
        if (pid < 0) die("fork: %s", strerror(errno));
        if (pid == 0) {
            close(pfd[0]);
            double tc = now();
            long a = np * w / workers, b = np * (w + 1) / workers;
            join_slice(a, b);
            int32_t slice_ms = (int32_t)((now() - tc) * 1000);
            long rss, pss;
            smaps_rollup(&rss, &pss);
            size_t nb = (size_t)(b - a + NTRAIL) * REC;
            unsigned char *buf = malloc(nb), *q = buf;
            for (long i = a; i < b; i++, q += REC) put_rec(q, pid_arr[i], res[i]);
            put_rec(q, -1, (int32_t)rss);
            put_rec(q + REC, -2, (int32_t)pss);
            put_rec(q + 2 * REC, -3, slice_ms);
            write_all(pfd[1], buf, nb);
            close(pfd[1]);
            _exit(0);
        }
        close(pfd[1]);
        kids[w] = pid;
        fds[w] = pfd[0];
    }
    double t_fork = now() - t, tp = now();
    join_slice(0, np / workers);
    double t_parent_slice = now() - tp, t_child_slice_max = 0;
    long rss_sum, pss_sum;
    smaps_rollup(&rss_sum, &pss_sum);
    for (int w = 1; w < workers; w++) {
        long a = np * w / workers, b = np * (w + 1) / workers;
        size_t nb = (size_t)(b - a + NTRAIL) * REC;
        unsigned char *buf = malloc(nb);
        if (read_full(fds[w], buf, nb) != nb) die("short read from worker %d", w);
        for (long i = a; i < b; i++) {
            int64_t id;
            int32_t v;
            memcpy(&id, buf + (i - a) * REC, 8);
            memcpy(&v, buf + (i - a) * REC + 8, 4);
            if (id != pid_arr[i] || v < -1 || v >= ntracts) die("bad record from worker %d", w);
            res[i] = v;
        }
        int32_t crss, cpss;
        memcpy(&crss, buf + (b - a) * REC + 8, 4);
        memcpy(&cpss, buf + (b - a + 1) * REC + 8, 4);
        int32_t cms;
        memcpy(&cms, buf + (b - a + 2) * REC + 8, 4);
        if (cms / 1000.0 > t_child_slice_max) t_child_slice_max = cms / 1000.0;
        rss_sum += crss;
        pss_sum += cpss;
        free(buf);
        close(fds[w]);
        int status;
        if (waitpid(kids[w], &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
            die("worker %d failed", w);
    }
    double t_join = now() - t;

    /* -- write */
    t = now();
    char jpath[4096];
    unlink(out_db);
    snprintf(jpath, sizeof jpath, "%s-journal", out_db);
    unlink(jpath);
    if (sqlite3_open(out_db, &db) != SQLITE_OK) die("cannot open %s", out_db);
    sql_ok(sqlite3_exec(db, "CREATE TABLE res(id INTEGER, geoid TEXT); BEGIN", 0, 0, 0), db, "create");
    sql_ok(sqlite3_prepare_v2(db, "INSERT INTO res(id, geoid) VALUES (?, ?)", -1, &st, NULL), db, "insert");
    long n_assigned = 0;
    for (long i = 0; i < np; i++) {
        sqlite3_bind_int64(st, 1, pid_arr[i]);
        if (res[i] >= 0) {
            sqlite3_bind_text(st, 2, geoid[res[i]], -1, SQLITE_STATIC);
            n_assigned++;
        } else {
            sqlite3_bind_null(st, 2);
        }
        if (sqlite3_step(st) != SQLITE_DONE) die("insert: %s", sqlite3_errmsg(db));
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    sql_ok(sqlite3_exec(db, "COMMIT", 0, 0, 0), db, "commit");
    sqlite3_close(db);
    double t_write = now() - t;
    double total = now() - t0;

    /* -- answers_sha, outside the timing: read back from the out db */
    if (sqlite3_open_v2(out_db, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        die("cannot reopen %s", out_db);
    sql_ok(sqlite3_prepare_v2(db, "SELECT id, geoid FROM res WHERE geoid IS NOT NULL ORDER BY id",
                              -1, &st, NULL), db, "sha select");
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    while (sqlite3_step(st) == SQLITE_ROW) {
        char line[64];
        int len = snprintf(line, sizeof line, "%lld,%s\n", (long long)sqlite3_column_int64(st, 0),
                           (const char *)sqlite3_column_text(st, 1));
        EVP_DigestUpdate(md, line, len);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    unsigned char dig[32];
    unsigned dlen;
    EVP_DigestFinal_ex(md, dig, &dlen);
    EVP_MD_CTX_free(md);
    char hex[65];
    for (int i = 0; i < 32; i++) sprintf(hex + 2 * i, "%02x", dig[i]);

    struct rusage ru, rc_;
    getrusage(RUSAGE_SELF, &ru);
    getrusage(RUSAGE_CHILDREN, &rc_);
    printf("{\"method\": \"geos_baseline\", \"points\": %ld, \"seconds\": %.3f, "
           "\"phases\": {\"read_tracts\": %.3f, \"prepare\": %.3f, \"read_points\": %.3f, "
           "\"join\": %.3f, \"write\": %.3f}, \"peak_rss_mb\": %.1f, \"peak_rss_children_mb\": %.1f, "
           "\"join_detail\": {\"fork\": %.3f, \"parent_slice\": %.3f, \"child_slice_max\": %.3f}, "
           "\"join_rss_sum_mb\": %.1f, \"join_pss_sum_mb\": %.1f, \"answers_sha\": \"%s\", "
           "\"n_assigned\": %ld, \"workers\": %d, \"tracts\": %d, \"vertices\": %ld, "
           "\"rule\": \"covers, smallest GEOID\"}\n",
           np, total, t_read_tracts, t_prepare, t_read_points, t_join, t_write,
           ru.ru_maxrss / 1024.0, rc_.ru_maxrss / 1024.0, t_fork, t_parent_slice, t_child_slice_max,
           rss_sum / 1024.0, pss_sum / 1024.0, hex,
           n_assigned, workers, ntracts, nverts);
    return 0;
}
