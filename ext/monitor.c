/*
** monitor.c - the resource monitor: a sampling thread that records the
** CPU and memory of this process and of its descendants while SQL runs,
** and a chart of them (what the notebook's monitor thread did).
**
** Usage
**
**     SELECT monitor_start(0.1);              -- 1: sample every 0.1 s
**     SELECT monitor_mark('load');            -- 0.000213: a labelled event
**     SELECT * FROM load_tracts('cb_2019_44_tract_500k.zip');
**     SELECT monitor_mark('lookup');
**     SELECT count(tract_of(lon, lat)) FROM points;
**     SELECT monitor_stop();                  -- 57: samples in the run
**     SELECT max(cpu_pct), max(rss_bytes) FROM monitor_samples;
**     SELECT * FROM monitor_marks;            -- t, label
**     SELECT monitor_plot('usage.png');       -- 'usage.png' (or .svg)
**
** Functions
**
**   monitor_start([interval_s])
**       Starts a run: a thread of the extension takes a sample every
**       interval_s seconds (default 0.5, from 0.01 to 3600). Returns 1.
**       A new run forgets the samples and marks of the previous one.
**   monitor_stop()
**       Ends the run: takes a last sample (unless one was taken less
**       than a fifth of an interval ago), stops and joins the thread.
**       Returns the number of samples of the run.
**   monitor_mark(label)
**       Records label at the current time and returns that time (seconds
**       since monitor_start). Allowed while a run goes on and after it
**       stopped, until the next monitor_start. Labels are text of 1 to
**       1000 bytes; a run keeps at most 100000 marks.
**   monitor_plot(path [, title [, width, height]])
**       Writes a chart of the last (or current) run to path, PNG or SVG by
**       the name's ending (.png, .svg, any case), and returns path. Two
**       panels share the time axis: CPU percent above, memory in MiB
**       below; marks are dashed vertical lines labelled at the top.
**       Default title "Resource use", default size 1000 x 600 pixels
**       (width 300 to 8000, height 200 to 8000). The file is written
**       under a temporary name beside path and renamed into place, so a
**       failure leaves no partial file.
**
**   All four are DIRECTONLY: they cannot run from a view or trigger
**   stored in a database (they start threads and write files). The two
**   tables only read, and may be used in views.
**
** Tables (eponymous, read-only)
**
**   monitor_samples: one row per sample of the last (or current) run.
**
**     t                   REAL     seconds since monitor_start
**     cpu_pct             REAL     CPU time used by the process and all
**                                  its live descendants over the interval
**                                  that ends at this sample, in percent
**                                  of one core (250 = two and a half
**                                  cores busy)
**     cpu_children_pct    REAL     the descendants' part of cpu_pct
**     rss_bytes           INTEGER  resident memory of the process
**     children_rss_bytes  INTEGER  resident memory of the descendants,
**                                  summed (a page shared by several is
**                                  counted in each)
**     children_pss_bytes  INTEGER  proportional set size of the
**                                  descendants, summed: a shared page is
**                                  divided among the processes sharing it
**                                  (the parent too), so this is what they
**                                  really add (from smaps_rollup; read
**                                  less often than RSS for very large
**                                  descendants, see Cost)
**     threads             INTEGER  threads of the process, the sampler
**                                  included
**     children            INTEGER  live descendants: children, their
**                                  children and so on (zombies are not
**                                  counted)
**
**   monitor_marks: one row per mark of the last (or current) run.
**
**     t                   REAL     seconds since monitor_start
**     label               TEXT     the label given
**
** Errors
**
**     monitor_start: the monitor is already running (call monitor_stop first)
**     monitor_start: interval must be between 0.01 and 3600 seconds, got '0'
**     monitor_stop: the monitor is not running
**     monitor_mark: the label is NULL        (also: is empty, is longer
**                                             than 1000 bytes)
**     monitor_mark: the monitor has not been started (call monitor_start first)
**     monitor_plot: no samples (run monitor_start and monitor_stop first)
**     monitor_plot: 'x.jpg' must end in .png or .svg
**     monitor_plot: cannot write 'x/y.png': No such file or directory
**     monitor_plot: the path is NULL
**     monitor_plot: width must be between 300 and 8000 pixels, got '10'
**
** How it works
**
**   Everything is read from /proc. The process's own CPU time comes from
**   clock_gettime(CLOCK_PROCESS_CPUTIME_ID) (every thread that ever ran,
**   this sampler included; exact to a scheduler tick, 1 to 4 ms, which
**   is +-20% at 0.02 s and +-2% at 0.2 s); its threads and resident
**   memory from /proc/self/stat.
**
**   Descendants are found from the parent pid of every process:
**   /proc/PID/task/TID/children would be cheaper but needs a kernel built
**   with CONFIG_PROC_CHILDREN, which many are not. The table of pids and
**   parents is kept between samples and updated only when the last pid
**   the kernel handed out (/proc/loadavg) moved: then the new pids, which
**   come in order, are read one by one (up to 64; more, or a wrap-around,
**   and /proc is listed). /proc is listed every 5 s anyway, and every
**   process read again every 60 s. For each descendant /proc/PID/stat
**   gives its CPU ticks (utime + stime) and resident memory, and
**   /proc/PID/smaps_rollup its PSS.
**
**   CPU percent is the CPU time used between two samples over the wall
**   time between them. A descendant's ticks are remembered per pid and
**   start time, so a child that exits (or a pid that is reused) never
**   gives a negative difference; a descendant that appeared since the
**   last sample counts all of its ticks. What a descendant uses in the
**   last interval before it exits is not seen. Descendants' ticks have
**   the kernel's 10 ms resolution, so at short intervals cpu_children_pct
**   moves in steps (at 0.01 s, one tick is 100%).
**
**   Samples live in a growable array, memory of the monitor, guarded by a
**   mutex that is held only to append one sample or copy the array
**   (readers copy it: monitor_samples and monitor_plot work on a copy).
**   A run keeps at most 524288 samples: when full, neighbouring samples
**   are merged in pairs (CPU averaged over both intervals; memory, threads
**   and children the larger of the two) and the interval doubles.
**
**   The thread sleeps in pthread_cond_timedwait on CLOCK_MONOTONIC
**   towards the next sample time (a fixed schedule, so there is no
**   drift); monitor_stop signals the condition, so stopping is immediate.
**
** Cost
**
**   A sample reads /proc/loadavg, /proc/self/stat, the stat of new pids
**   and of each descendant: measured 0.3% of one core at 0.1 s, with 75
**   or with 570 processes on the machine (listing /proc costs about 2 us
**   per process, every 5 s). smaps_rollup walks a descendant's page
**   tables (about 6 ms per GB resident), so PSS is read again only when
**   the last reading's cost is under 1/200 of the time since: every
**   sample for small descendants, every few seconds for descendants of
**   several GB (children_pss_bytes then repeats the last reading, while
**   children_rss_bytes is always fresh).
**
**   monitor_plot uses cairo's toy text API (fontconfig, "sans-serif").
**   Loading the extension pins libcairo (RTLD_NODELETE) so that it and
**   the libraries it brings (pixman, fontconfig) stay loaded for the
**   process: their one-time state, pixman's tables and the font caches,
**   is made once rather than lost at every unload of the extension.
**
** Threads and fork
**
**   The sampler thread uses only libc and /proc, never SQLite, so it is
**   indifferent to how SQLite was built (even SQLITE_THREADSAFE=0). It is
**   created with every signal blocked, so the host's signals go to the
**   host's threads. The monitor's state is used by the connection's
**   calls (under the connection's mutex), by the sampler and by
**   trMonitorMark() (any thread), always under the monitor's mutex.
**
**   fork() copies only the calling thread: a forked child has no sampler,
**   and the monitor's mutex may be held by the parent's sampler at that
**   moment. So a forked child never touches monitor state: every function
**   and table here checks the pid that made it first and fails in
**   another process ("monitor_stop: not available in a forked child");
**   trMonitorMark() is a no-op there, and trMonitorFree() only forgets
**   the state. No pthread_atfork handler is installed (that would be
**   process-wide state of the host).
**
**   Closing the connection stops and joins a running sampler
**   (trMonitorFree from the connection's destructor).
**
** Limits
**
**   Linux only (/proc). One run per connection at a time; each
**   connection has its own monitor. CPU and memory are those of the
**   whole process and its descendants, whatever connection or thread
**   caused them.
*/
#include "tracts_sql.h"

#include <cairo.h>
#include <cairo-svg.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define MON_DEFAULT_INTERVAL 0.5      /* seconds */
#define MON_MIN_INTERVAL     0.01
#define MON_MAX_INTERVAL     3600.0
#define MON_MAX_SAMPLE       524288   /* then samples are merged in pairs */
#define MON_MAX_MARK         100000   /* marks per run */
#define MON_MAX_LABEL        1000     /* bytes per label */
#define MON_FULL_SCAN        5.0      /* seconds between full /proc scans */
#define MON_PROBE            64       /* new pids read one by one at most */
#define MON_READ_ALL         60.0     /* seconds between reading every stat */
#define MON_PSS_BUDGET       200.0    /* PSS read at most 1/200 of the time */
#define MON_MAX_PROC         1000000  /* processes read from /proc */

/* ------------------------------------------------------------------ */
/* State                                                              */
/* ------------------------------------------------------------------ */

/* One sample. */
typedef struct MonSample MonSample;
struct MonSample {
  double t;                 /* seconds since monitor_start */
  double dt;                /* seconds the CPU figures cover */
  double rCpu;              /* CPU %, process and descendants */
  double rCpuChild;         /* CPU %, descendants */
  int64_t nRss;             /* resident bytes of the process */
  int64_t nChildRss;        /* resident bytes of the descendants */
  int64_t nChildPss;        /* PSS bytes of the descendants */
  int nThread;              /* threads of the process */
  int nChild;               /* live descendants */
};

/* One mark. */
typedef struct MonMark MonMark;
struct MonMark {
  double t;                 /* seconds since monitor_start */
  char *zLabel;             /* the label, malloc'd (in a copy: in the block) */
};

/* The monitor of one connection (pConn->pMonitor). */
struct TrMonitor {
  pthread_mutex_t mutex;    /* guards the fields from bStarted on */
  pthread_cond_t cond;      /* signalled by monitor_stop to wake the sampler */
  pid_t pidOwner;           /* process that made this; others keep off */
  pthread_t thread;         /* the sampler, valid while bThread */
  int bThread;              /* a sampler runs (connection side only) */
  int bStarted;             /* a run was started: marks may be recorded */
  int bRunning;             /* between monitor_start and monitor_stop */
  int bStop;                /* the sampler must take a last sample and end */
  double tStart;            /* CLOCK_MONOTONIC seconds at monitor_start */
  double rInterval;         /* seconds between samples (doubles on merge) */
  MonSample *aSample;       /* samples of the run, malloc'd */
  int nSample;              /* entries used in aSample */
  int nSampleAlloc;         /* entries allocated */
  MonMark *aMark;           /* marks of the run, malloc'd */
  int nMark;                /* entries used in aMark */
  int nMarkAlloc;           /* entries allocated */
};

/* 1 in a process other than the one that made the monitor (a forked
** child): there the monitor must not be touched at all. */
static int monForked(const TrMonitor *p){
  return p->pidOwner!=getpid();
}

/* Forget the samples and marks (mutex held). */
static void monClear(TrMonitor *p){
  int i;
  for(i=0; i<p->nMark; i++) free(p->aMark[i].zLabel);
  free(p->aMark);
  p->aMark = 0;
  p->nMark = p->nMarkAlloc = 0;
  free(p->aSample);
  p->aSample = 0;
  p->nSample = p->nSampleAlloc = 0;
}

/* Merge the samples in pairs and double the interval (mutex held). */
static void monThin(TrMonitor *p){
  int i, n = 0;
  for(i=0; i+1<p->nSample; i+=2){
    const MonSample *a = &p->aSample[i], *b = &p->aSample[i+1];
    MonSample m = *b;
    double dt = a->dt + b->dt;
    if( dt>0 ){
      m.rCpu = (a->rCpu*a->dt + b->rCpu*b->dt)/dt;
      m.rCpuChild = (a->rCpuChild*a->dt + b->rCpuChild*b->dt)/dt;
    }
    m.dt = dt;
    if( a->nRss>m.nRss ) m.nRss = a->nRss;
    if( a->nChildRss>m.nChildRss ) m.nChildRss = a->nChildRss;
    if( a->nChildPss>m.nChildPss ) m.nChildPss = a->nChildPss;
    if( a->nThread>m.nThread ) m.nThread = a->nThread;
    if( a->nChild>m.nChild ) m.nChild = a->nChild;
    p->aSample[n++] = m;
  }
  if( i<p->nSample ) p->aSample[n++] = p->aSample[i];
  p->nSample = n;
  p->rInterval *= 2;
}

/* Append a sample (mutex held). A sample that finds no memory is lost. */
static void monAppend(TrMonitor *p, const MonSample *s){
  if( p->nSample>=MON_MAX_SAMPLE ) monThin(p);
  if( p->nSample>=p->nSampleAlloc ){
    int nNew = p->nSampleAlloc ? p->nSampleAlloc*2 : 256;
    MonSample *aNew;
    if( nNew>MON_MAX_SAMPLE ) nNew = MON_MAX_SAMPLE;
    aNew = realloc(p->aSample, sizeof(MonSample)*(size_t)nNew);
    if( aNew==0 ) return;
    p->aSample = aNew;
    p->nSampleAlloc = nNew;
  }
  p->aSample[p->nSample++] = *s;
}

/* Record a mark of n bytes of z at the current time (mutex held). Returns
** SQLITE_OK, SQLITE_NOMEM or SQLITE_FULL (MON_MAX_MARK reached); *pT is
** the mark's time. */
static int monAddMark(TrMonitor *p, const char *z, int n, double *pT){
  char *zCopy;
  if( p->nMark>=MON_MAX_MARK ) return SQLITE_FULL;
  if( p->nMark>=p->nMarkAlloc ){
    int nNew = p->nMarkAlloc ? p->nMarkAlloc*2 : 16;
    MonMark *aNew = realloc(p->aMark, sizeof(MonMark)*(size_t)nNew);
    if( aNew==0 ) return SQLITE_NOMEM;
    p->aMark = aNew;
    p->nMarkAlloc = nNew;
  }
  zCopy = malloc((size_t)n+1);
  if( zCopy==0 ) return SQLITE_NOMEM;
  memcpy(zCopy, z, (size_t)n);
  zCopy[n] = 0;
  *pT = trNow() - p->tStart;
  p->aMark[p->nMark].t = *pT;
  p->aMark[p->nMark].zLabel = zCopy;
  p->nMark++;
  return SQLITE_OK;
}

/* ------------------------------------------------------------------ */
/* Reading /proc (the sampler thread only; libc only)                 */
/* ------------------------------------------------------------------ */

/* What a sample needs from /proc/PID/stat. */
typedef struct MonStat MonStat;
struct MonStat {
  char cState;              /* R, S, D, Z, ... */
  int ppid;                 /* parent pid */
  int64_t nTicks;           /* utime + stime, clock ticks */
  int nThread;              /* num_threads */
  int64_t nStartTime;       /* starttime, clock ticks after boot */
  int64_t nRssPages;        /* rss, pages */
};

/* A process seen in /proc. */
typedef struct MonProc MonProc;
struct MonProc {
  int pid;                  /* process id */
  int ppid;                 /* its parent, as last read (0: gone) */
  int64_t nStartTime;       /* start time, tells a reused pid apart */
  int bDesc;                /* a descendant of this process */
  int64_t nTicks;           /* CPU ticks at the last sample, -1 if it was
                            ** not a descendant then */
  int64_t nPss;             /* PSS bytes as last read, -1 if not read */
};

/* The sampler's private state. */
typedef struct MonScan MonScan;
struct MonScan {
  int pidSelf;              /* this process */
  long nTck;                /* clock ticks per second */
  long nPage;               /* bytes per page */
  char *zBuf;               /* contents of the last file read */
  size_t nBuf;              /* bytes allocated for zBuf */
  int *aPid;                /* pids listed in /proc, sorted */
  int nPid, nPidAlloc;      /* entries used and allocated in aPid */
  MonProc *aProc;           /* processes known, sorted by pid */
  int nProc, nProcAlloc;    /* entries used and allocated in aProc */
  MonProc *aNew;            /* a full scan being made */
  int nNewAlloc;            /* entries allocated in aNew */
  int iLastPid;             /* last pid created, at the last scan */
  double tFull;             /* time of the last full scan */
  double tReadAll;          /* time of the last full scan reading all */
  double tPss;              /* time PSS was last read for all */
  double rPssCost;          /* CPU seconds that reading took */
  double tPrev;             /* time of the previous reading */
  double rCpuPrev;          /* process CPU seconds at the previous reading */
};

/* Read the whole file zPath into p->zBuf, NUL-terminated. Returns the
** number of bytes, or -1 if it cannot be read. */
static int monReadFile(MonScan *p, const char *zPath){
  size_t n = 0;
  int fd = open(zPath, O_RDONLY|O_CLOEXEC);
  if( fd<0 ) return -1;
  for(;;){
    ssize_t k;
    if( n+1>=p->nBuf ){
      size_t nNew = p->nBuf ? p->nBuf*2 : 4096;
      char *zNew = nNew<=(1u<<24) ? realloc(p->zBuf, nNew) : 0;
      if( zNew==0 ){ close(fd); return -1; }
      p->zBuf = zNew;
      p->nBuf = nNew;
    }
    k = read(fd, p->zBuf+n, p->nBuf-n-1);
    if( k<0 && errno==EINTR ) continue;
    if( k<0 ){ close(fd); return -1; }
    if( k==0 ) break;
    n += (size_t)k;
  }
  close(fd);
  p->zBuf[n] = 0;
  return (int)n;
}

/* Parse /proc/PID/stat. The command name (field 2) is in parentheses
** and may hold spaces and ')', so fields are counted after the last ')'.
** Returns 0 on success. */
static int monParseStat(const char *z, MonStat *s){
  const char *zp = strrchr(z, ')');
  int64_t aField[25];
  int i;
  if( zp==0 ) return 1;
  zp++;
  while( *zp==' ' ) zp++;
  if( *zp==0 ) return 1;
  s->cState = *zp++;
  for(i=4; i<=24; i++){
    char *zEnd;
    aField[i] = strtoll(zp, &zEnd, 10);
    if( zEnd==zp ) return 1;
    zp = zEnd;
  }
  s->ppid = (int)aField[4];
  s->nTicks = aField[14] + aField[15];
  s->nThread = (int)aField[20];
  s->nStartTime = aField[22];
  s->nRssPages = aField[24];
  return 0;
}

static int monReadStat(MonScan *p, int pid, MonStat *s){
  char zPath[64];
  snprintf(zPath, sizeof(zPath), "/proc/%d/stat", pid);
  if( monReadFile(p, zPath)<0 ) return 1;
  return monParseStat(p->zBuf, s);
}

/* PSS of process pid in bytes, or 0 if it cannot be read. */
static int64_t monReadPss(MonScan *p, int pid){
  char zPath[64];
  const char *z;
  snprintf(zPath, sizeof(zPath), "/proc/%d/smaps_rollup", pid);
  if( monReadFile(p, zPath)<0 ) return 0;
  z = strstr(p->zBuf, "\nPss:");
  if( z==0 ) return 0;
  return strtoll(z+5, 0, 10)*1024;
}

/* CPU seconds used by the calling thread. */
static double monThreadCpu(void){
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec*1e-9;
}

static int monCmpInt(const void *a, const void *b){
  int x = *(const int*)a, y = *(const int*)b;
  return x<y ? -1 : x>y;
}

static int monCmpProc(const void *a, const void *b){
  return monCmpInt(&((const MonProc*)a)->pid, &((const MonProc*)b)->pid);
}

/* The last pid the kernel handed out (the last field of /proc/loadavg),
** or -1. */
static int monLastPid(MonScan *p){
  const char *z;
  if( monReadFile(p, "/proc/loadavg")<=0 ) return -1;
  z = strrchr(p->zBuf, ' ');
  return z ? atoi(z+1) : -1;
}

/* 1 if pid is a process (a thread group leader), not another thread:
** /proc/TID exists for every thread, though only processes are listed. */
static int monIsProcess(MonScan *p, int pid){
  char zPath[64];
  const char *z;
  snprintf(zPath, sizeof(zPath), "/proc/%d/status", pid);
  if( monReadFile(p, zPath)<0 ) return 0;
  z = strstr(p->zBuf, "\nTgid:");
  return z!=0 && atoi(z+6)==pid;
}

/* Fill p->aPid with the pids in /proc, sorted. 0 on success. */
static int monListPids(MonScan *p){
  DIR *d = opendir("/proc");
  struct dirent *e;
  if( d==0 ) return 1;
  p->nPid = 0;
  while( (e = readdir(d))!=0 ){
    const char *z = e->d_name;
    long v;
    char *zEnd;
    if( z[0]<'1' || z[0]>'9' ) continue;
    v = strtol(z, &zEnd, 10);
    if( *zEnd || v<=0 || v>0x7fffffff ) continue;
    if( p->nPid>=p->nPidAlloc ){
      int nNew = p->nPidAlloc ? p->nPidAlloc*2 : 512;
      int *aNew = nNew<=MON_MAX_PROC
                ? realloc(p->aPid, sizeof(int)*(size_t)nNew) : 0;
      if( aNew==0 ){ closedir(d); return 1; }
      p->aPid = aNew;
      p->nPidAlloc = nNew;
    }
    p->aPid[p->nPid++] = (int)v;
  }
  closedir(d);
  qsort(p->aPid, (size_t)p->nPid, sizeof(int), monCmpInt);
  return 0;
}

/* Index of pid in the sorted a[0..n-1], or -1. */
static int monFindProc(const MonProc *a, int n, int pid){
  int lo = 0, hi = n-1;
  while( lo<=hi ){
    int mid = (lo+hi)/2;
    if( a[mid].pid==pid ) return mid;
    if( a[mid].pid<pid ) lo = mid+1; else hi = mid-1;
  }
  return -1;
}

/* Make room for n entries in p->aProc. 0 on success. */
static int monProcRoom(MonScan *p, int n){
  MonProc *aNew;
  if( n<=p->nProcAlloc ) return 0;
  if( n>MON_MAX_PROC ) return 1;
  aNew = realloc(p->aProc, sizeof(MonProc)*(size_t)n);
  if( aNew==0 ) return 1;
  p->aProc = aNew;
  p->nProcAlloc = n;
  return 0;
}

/* The full scan: every process in /proc and its parent. With bAll every
** process's stat is read, and what was known of a process (same pid, same
** start time) is kept; else only pids not known are read. 0 on success. */
static int monFullScan(MonScan *p, int bAll){
  MonProc *aTmp;
  int i, j, n = 0;
  if( monListPids(p) ) return 1;
  if( p->nPid>p->nNewAlloc ){
    MonProc *aNew = realloc(p->aNew, sizeof(MonProc)*(size_t)p->nPid);
    if( aNew==0 ) return 1;
    p->aNew = aNew;
    p->nNewAlloc = p->nPid;
  }
  for(i=j=0; i<p->nPid; i++){
    int pid = p->aPid[i];
    MonProc *q = &p->aNew[n];
    MonStat s;
    while( j<p->nProc && p->aProc[j].pid<pid ) j++;
    if( pid==p->pidSelf ) continue;
    if( !bAll && j<p->nProc && p->aProc[j].pid==pid ){
      *q = p->aProc[j];
      n++;
      continue;
    }
    if( monReadStat(p, pid, &s) ) continue;        /* gone already */
    q->pid = pid;
    q->ppid = s.ppid;
    q->nStartTime = s.nStartTime;
    q->bDesc = 0;
    q->nTicks = -1;
    q->nPss = -1;
    if( j<p->nProc && p->aProc[j].pid==pid
     && p->aProc[j].nStartTime==s.nStartTime ){
      q->nTicks = p->aProc[j].nTicks;
      q->nPss = p->aProc[j].nPss;
    }
    n++;
  }
  aTmp = p->aProc;
  p->aProc = p->aNew;
  p->aNew = aTmp;
  i = p->nProcAlloc;
  p->nProcAlloc = p->nNewAlloc;
  p->nNewAlloc = i;
  p->nProc = n;
  return 0;
}

/* The quick scan: the processes created since the last scan, pids
** iFrom+1 to iTo, which the kernel hands out in order. 0 on success. */
static int monNewScan(MonScan *p, int iFrom, int iTo){
  int pid, nOld = p->nProc;
  for(pid=iFrom+1; pid<=iTo; pid++){
    MonStat s;
    int k;
    if( monReadStat(p, pid, &s) ) continue;
    k = monFindProc(p->aProc, nOld, pid);
    if( k>=0 && p->aProc[k].nStartTime==s.nStartTime ) continue;  /* known */
    if( !monIsProcess(p, pid) ) continue;
    if( k<0 ){
      if( monProcRoom(p, p->nProc+1) ) return 1;
      k = p->nProc++;
    }
    p->aProc[k].pid = pid;
    p->aProc[k].ppid = s.ppid;
    p->aProc[k].nStartTime = s.nStartTime;
    p->aProc[k].bDesc = 0;
    p->aProc[k].nTicks = -1;
    p->aProc[k].nPss = -1;
  }
  if( p->nProc>nOld ){
    qsort(p->aProc, (size_t)p->nProc, sizeof(MonProc), monCmpProc);
  }
  return 0;
}

/* Scan the descendants: their CPU ticks since the previous scan in
** *pnTicks, their count, resident and proportional memory in *pOut.
** Sets the baseline only when pOut is NULL.
**
** The table of processes and their parents is refreshed only when the
** last pid created (/proc/loadavg) moved, and then only the new pids are
** read (up to MON_PROBE of them, else /proc is listed and the pids not
** known are read). Every MON_FULL_SCAN seconds /proc is listed anyway
** (to forget processes that exited), and every MON_READ_ALL seconds, or
** when pids wrapped around, every process is read again. Listing /proc
** costs about 2 us per process on the machine; a quiet machine costs
** almost nothing. */
static int monScanChildren(MonScan *p, double tNow, int64_t *pnTicks,
                           MonSample *pOut){
  int iLast = monLastPid(p);
  int i, bMore, rc, bPss;
  double rPssCost = 0;
  *pnTicks = 0;
  if( p->nProc==0 || iLast<0 || iLast<p->iLastPid
   || tNow - p->tReadAll >= MON_READ_ALL ){
    rc = monFullScan(p, 1);              /* first, pids wrapped, or due */
    if( rc==0 ) p->tFull = p->tReadAll = tNow;
  }else if( tNow - p->tFull >= MON_FULL_SCAN
         || iLast - p->iLastPid > MON_PROBE ){
    rc = monFullScan(p, 0);
    if( rc==0 ) p->tFull = tNow;
  }else{
    rc = monNewScan(p, p->iLastPid, iLast);
  }
  if( rc ) return rc;
  p->iLastPid = iLast;

  /* Descendants: children of this process, of those, and so on. */
  for(i=0; i<p->nProc; i++) p->aProc[i].bDesc = 0;
  do{
    bMore = 0;
    for(i=0; i<p->nProc; i++){
      MonProc *q = &p->aProc[i];
      int k;
      if( q->bDesc || q->ppid==0 ) continue;
      if( q->ppid!=p->pidSelf ){
        k = monFindProc(p->aProc, p->nProc, q->ppid);
        if( k<0 || !p->aProc[k].bDesc ) continue;
      }
      q->bDesc = 1;
      bMore = 1;
    }
  }while( bMore );

  /* Read each descendant. */
  bPss = pOut!=0 && tNow - p->tPss >= MON_PSS_BUDGET*p->rPssCost;
  if( bPss ) rPssCost = 0;
  for(i=0; i<p->nProc; i++){
    MonProc *q = &p->aProc[i];
    MonStat s;
    if( !q->bDesc ){
      q->nTicks = -1;
      continue;
    }
    if( monReadStat(p, q->pid, &s) ){             /* gone */
      q->bDesc = 0;
      q->ppid = 0;
      q->nTicks = -1;
      continue;
    }
    if( s.nStartTime!=q->nStartTime ){           /* pid reused */
      q->nStartTime = s.nStartTime;
      q->nTicks = -1;
      q->nPss = -1;
    }
    q->ppid = s.ppid;
    if( pOut ){
      if( q->nTicks<0 ){
        *pnTicks += s.nTicks;                    /* new since last sample */
      }else if( s.nTicks>q->nTicks ){
        *pnTicks += s.nTicks - q->nTicks;
      }
      if( s.cState!='Z' && s.cState!='X' ){
        pOut->nChild++;
        pOut->nChildRss += s.nRssPages*p->nPage;
        if( bPss || q->nPss<0 ){
          double c0 = monThreadCpu();
          q->nPss = monReadPss(p, q->pid);
          rPssCost += monThreadCpu() - c0;
        }
        pOut->nChildPss += q->nPss;
      }
    }
    q->nTicks = s.nTicks;
  }
  if( bPss ){
    p->tPss = tNow;
    p->rPssCost = rPssCost;
  }
  return 0;
}

static MonScan *monScanNew(void){
  MonScan *p = calloc(1, sizeof(MonScan));
  if( p==0 ) return 0;
  p->pidSelf = (int)getpid();
  p->nTck = sysconf(_SC_CLK_TCK);
  if( p->nTck<=0 ) p->nTck = 100;
  p->nPage = sysconf(_SC_PAGESIZE);
  if( p->nPage<=0 ) p->nPage = 4096;
  return p;
}

static void monScanFree(MonScan *p){
  if( p==0 ) return;
  free(p->zBuf);
  free(p->aPid);
  free(p->aProc);
  free(p->aNew);
  free(p);
}

/* Take a reading. With pOut NULL it is the baseline of the run; else
** *pOut is the sample: CPU over the time since the previous reading. */
static int monTake(MonScan *p, double tStart, MonSample *pOut){
  struct timespec ts;
  double tNow = trNow(), rCpu, dt;
  int64_t nTicks = 0;
  MonStat s;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  rCpu = (double)ts.tv_sec + (double)ts.tv_nsec*1e-9;
  if( pOut ){
    memset(pOut, 0, sizeof(*pOut));
    if( monReadStat(p, p->pidSelf, &s)==0 ){
      pOut->nRss = s.nRssPages*p->nPage;
      pOut->nThread = s.nThread;
    }
  }
  monScanChildren(p, tNow, &nTicks, pOut);
  if( pOut ){
    dt = tNow - p->tPrev;
    if( dt<1e-6 ) dt = 1e-6;
    pOut->t = tNow - tStart;
    pOut->dt = dt;
    pOut->rCpuChild = 100.0*(double)nTicks/(double)p->nTck/dt;
    pOut->rCpu = 100.0*(rCpu - p->rCpuPrev)/dt + pOut->rCpuChild;
  }
  p->tPrev = tNow;
  p->rCpuPrev = rCpu;
  return 0;
}

/* ------------------------------------------------------------------ */
/* The sampler thread                                                 */
/* ------------------------------------------------------------------ */

/* The thread: a baseline, then a sample at tStart + k*interval until
** told to stop, then a last sample. The mutex is held only while waiting
** (pthread_cond_timedwait releases it) and to append. */
static void *monThread(void *pArg){
  TrMonitor *p = (TrMonitor*)pArg;
  MonScan *pScan = monScanNew();
  MonSample s;
  double tStart, tNext, rInterval;

  pthread_mutex_lock(&p->mutex);
  tStart = p->tStart;
  rInterval = p->rInterval;
  pthread_mutex_unlock(&p->mutex);
  if( pScan ) monTake(pScan, tStart, 0);
  tNext = tStart + rInterval;

  pthread_mutex_lock(&p->mutex);
  while( !p->bStop ){
    struct timespec ts;
    double tNow;
    trTimespec(tNext, &ts);
    pthread_cond_timedwait(&p->cond, &p->mutex, &ts);
    if( p->bStop ) break;
    tNow = trNow();
    if( tNow<tNext ) continue;                   /* woken early */
    pthread_mutex_unlock(&p->mutex);
    if( pScan ) monTake(pScan, tStart, &s);
    pthread_mutex_lock(&p->mutex);
    if( pScan ) monAppend(p, &s);
    rInterval = p->rInterval;
    tNext += rInterval;
    if( tNext<=tNow ){                           /* missed: skip ahead */
      tNext += (floor((tNow - tNext)/rInterval) + 1.0)*rInterval;
    }
  }
  pthread_mutex_unlock(&p->mutex);

  /* The last sample, unless the previous one is very recent. */
  if( pScan ){
    int bTake;
    pthread_mutex_lock(&p->mutex);
    bTake = p->nSample==0 || trNow() - pScan->tPrev >= 0.2*p->rInterval;
    pthread_mutex_unlock(&p->mutex);
    if( bTake ){
      monTake(pScan, tStart, &s);
      pthread_mutex_lock(&p->mutex);
      monAppend(p, &s);
      pthread_mutex_unlock(&p->mutex);
    }
  }
  monScanFree(pScan);
  return 0;
}

/* Stop and join the sampler; it takes its last sample first. */
static void monStopThread(TrMonitor *p){
  if( !p->bThread ) return;
  pthread_mutex_lock(&p->mutex);
  p->bStop = 1;
  pthread_cond_signal(&p->cond);
  pthread_mutex_unlock(&p->mutex);
  pthread_join(p->thread, 0);
  p->bThread = 0;
  pthread_mutex_lock(&p->mutex);
  p->bRunning = 0;
  pthread_mutex_unlock(&p->mutex);
}

/* ------------------------------------------------------------------ */
/* Copies for readers                                                 */
/* ------------------------------------------------------------------ */

/* Copy the samples into *paOut (sqlite3_malloc'd, caller frees; NULL
** when there are none) and the current interval into *prInterval.
** SQLITE_OK or SQLITE_NOMEM. */
static int monCopySamples(TrMonitor *p, MonSample **paOut, int *pn,
                          double *prInterval){
  int rc = SQLITE_OK;
  *paOut = 0;
  pthread_mutex_lock(&p->mutex);
  *pn = p->nSample;
  if( prInterval ) *prInterval = p->rInterval;
  if( p->nSample>0 ){
    *paOut = sqlite3_malloc64(sizeof(MonSample)*(sqlite3_uint64)p->nSample);
    if( *paOut ){
      memcpy(*paOut, p->aSample, sizeof(MonSample)*(size_t)p->nSample);
    }else{
      rc = SQLITE_NOMEM;
      *pn = 0;
    }
  }
  pthread_mutex_unlock(&p->mutex);
  return rc;
}

/* Copy the marks into one sqlite3_malloc'd block, labels included:
** *paOut (caller frees; NULL when there are none). */
static int monCopyMarks(TrMonitor *p, MonMark **paOut, int *pn){
  int rc = SQLITE_OK, i;
  sqlite3_uint64 nByte;
  *paOut = 0;
  pthread_mutex_lock(&p->mutex);
  *pn = p->nMark;
  nByte = sizeof(MonMark)*(sqlite3_uint64)p->nMark;
  for(i=0; i<p->nMark; i++) nByte += strlen(p->aMark[i].zLabel) + 1;
  if( p->nMark>0 ){
    MonMark *a = sqlite3_malloc64(nByte);
    if( a ){
      char *z = (char*)&a[p->nMark];
      for(i=0; i<p->nMark; i++){
        size_t n = strlen(p->aMark[i].zLabel) + 1;
        a[i].t = p->aMark[i].t;
        a[i].zLabel = z;
        memcpy(z, p->aMark[i].zLabel, n);
        z += n;
      }
      *paOut = a;
    }else{
      rc = SQLITE_NOMEM;
      *pn = 0;
    }
  }
  pthread_mutex_unlock(&p->mutex);
  return rc;
}

/* ------------------------------------------------------------------ */
/* SQL functions                                                      */
/* ------------------------------------------------------------------ */

/* Report "NAME: not available in a forked child" and return 1 if this
** is not the process that made the monitor. */
static int monCheckFork(sqlite3_context *ctx, TrMonitor *p,
                        const char *zFunc){
  char *z;
  if( !monForked(p) ) return 0;
  z = sqlite3_mprintf("%s: not available in a forked child", zFunc);
  sqlite3_result_error(ctx, z ? z : "not available in a forked child", -1);
  sqlite3_free(z);
  return 1;
}

/* Set an error "FMT" (sqlite3_mprintf format) on ctx. */
static void monError(sqlite3_context *ctx, const char *zFmt, ...){
  va_list ap;
  char *z;
  va_start(ap, zFmt);
  z = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  if( z==0 ){ sqlite3_result_error_nomem(ctx); return; }
  sqlite3_result_error(ctx, z, -1);
  sqlite3_free(z);
}

/* The argument as a real number: integers, reals and text that reads
** wholly as a number (as SQLite reads it, whatever the host's locale;
** spaces around it allowed). 0 on success. */
static int monValueReal(sqlite3_value *v, double *pr){
  switch( sqlite3_value_type(v) ){
    case SQLITE_INTEGER:
    case SQLITE_FLOAT:
      *pr = sqlite3_value_double(v);
      return 0;
    case SQLITE_TEXT: {
      sqlite3_value *pCopy = sqlite3_value_dup(v);  /* v stays as it is */
      int eType, bBad = 1;
      if( pCopy==0 ) return 1;
      eType = sqlite3_value_numeric_type(pCopy);
      if( eType==SQLITE_INTEGER || eType==SQLITE_FLOAT ){
        *pr = sqlite3_value_double(pCopy);
        bBad = 0;
      }
      sqlite3_value_free(pCopy);
      return bBad;
    }
  }
  return 1;
}

/* How a bad argument is quoted in an error: 'text', NULL or a blob. */
static char *monQuote(sqlite3_value *v){
  switch( sqlite3_value_type(v) ){
    case SQLITE_NULL: return sqlite3_mprintf("NULL");
    case SQLITE_BLOB: return sqlite3_mprintf("a blob");
  }
  return sqlite3_mprintf("'%q'", (const char*)sqlite3_value_text(v));
}

/* monitor_start([interval_s]) */
static void startFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  TractsConn *pConn = (TractsConn*)sqlite3_user_data(ctx);
  TrMonitor *p = pConn->pMonitor;
  double r = MON_DEFAULT_INTERVAL;
  sigset_t all, old;
  int rc, fd;

  if( monCheckFork(ctx, p, "monitor_start") ) return;
  if( p->bThread ){
    sqlite3_result_error(ctx, "monitor_start: the monitor is already running "
                         "(call monitor_stop first)", -1);
    return;
  }
  if( argc==1 && (monValueReal(argv[0], &r) || !(r>=MON_MIN_INTERVAL
                  && r<=MON_MAX_INTERVAL)) ){
    char *zGot = monQuote(argv[0]);
    monError(ctx, "monitor_start: interval must be between 0.01 and 3600 "
             "seconds, got %s", zGot ? zGot : "?");
    sqlite3_free(zGot);
    return;
  }
  fd = open("/proc/self/stat", O_RDONLY|O_CLOEXEC);
  if( fd<0 ){
    monError(ctx, "monitor_start: cannot read /proc/self/stat: %s",
             strerror(errno));
    return;
  }
  close(fd);

  pthread_mutex_lock(&p->mutex);
  monClear(p);
  p->tStart = trNow();
  p->rInterval = r;
  p->bStop = 0;
  p->bRunning = 1;
  p->bStarted = 1;
  pthread_mutex_unlock(&p->mutex);

  /* The sampler starts with every signal blocked (it inherits the mask of
  ** this thread, which is restored at once). */
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  rc = pthread_create(&p->thread, 0, monThread, p);
  pthread_sigmask(SIG_SETMASK, &old, 0);
  if( rc ){
    pthread_mutex_lock(&p->mutex);
    p->bRunning = 0;
    pthread_mutex_unlock(&p->mutex);
    monError(ctx, "monitor_start: cannot start the sampling thread: %s",
             strerror(rc));
    return;
  }
  p->bThread = 1;
  sqlite3_result_int(ctx, 1);
}

/* monitor_stop() */
static void stopFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  TractsConn *pConn = (TractsConn*)sqlite3_user_data(ctx);
  TrMonitor *p = pConn->pMonitor;
  int n;
  (void)argc; (void)argv;
  if( monCheckFork(ctx, p, "monitor_stop") ) return;
  if( !p->bThread ){
    sqlite3_result_error(ctx, "monitor_stop: the monitor is not running", -1);
    return;
  }
  monStopThread(p);
  pthread_mutex_lock(&p->mutex);
  n = p->nSample;
  pthread_mutex_unlock(&p->mutex);
  sqlite3_result_int(ctx, n);
}

/* monitor_mark(label) */
static void markFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  TractsConn *pConn = (TractsConn*)sqlite3_user_data(ctx);
  TrMonitor *p = pConn->pMonitor;
  const char *z;
  int n, rc = SQLITE_OK, bStarted;
  double t = 0;
  (void)argc;
  if( monCheckFork(ctx, p, "monitor_mark") ) return;
  if( sqlite3_value_type(argv[0])==SQLITE_NULL ){
    sqlite3_result_error(ctx, "monitor_mark: the label is NULL", -1);
    return;
  }
  z = (const char*)sqlite3_value_text(argv[0]);
  if( z==0 ){ sqlite3_result_error_nomem(ctx); return; }
  n = sqlite3_value_bytes(argv[0]);
  if( n==0 ){
    sqlite3_result_error(ctx, "monitor_mark: the label is empty", -1);
    return;
  }
  if( n>MON_MAX_LABEL ){
    sqlite3_result_error(ctx, "monitor_mark: the label is longer than "
                         "1000 bytes", -1);
    sqlite3_result_error_code(ctx, SQLITE_TOOBIG);
    return;
  }
  pthread_mutex_lock(&p->mutex);
  bStarted = p->bStarted;
  if( bStarted ) rc = monAddMark(p, z, n, &t);
  pthread_mutex_unlock(&p->mutex);
  if( !bStarted ){
    sqlite3_result_error(ctx, "monitor_mark: the monitor has not been "
                         "started (call monitor_start first)", -1);
  }else if( rc==SQLITE_NOMEM ){
    sqlite3_result_error_nomem(ctx);
  }else if( rc ){
    sqlite3_result_error(ctx, "monitor_mark: too many marks "
                         "(limit 100000)", -1);
    sqlite3_result_error_code(ctx, SQLITE_TOOBIG);
  }else{
    sqlite3_result_double(ctx, t);
  }
}

/* ------------------------------------------------------------------ */
/* The chart (cairo)                                                  */
/* ------------------------------------------------------------------ */

/* An axis: from lo to hi, ticks every step, labels of values/rScale with
** nDec decimals. */
typedef struct PlotAxis PlotAxis;
struct PlotAxis {
  double lo, hi;            /* range shown, in data units */
  double step;              /* tick spacing in label units (1, 2, 5 x 10^k) */
  double rScale;            /* data units per label unit */
  int nDec;                 /* decimals in tick labels */
};

/* A rectangle of the surface, in pixels. */
typedef struct PlotBox PlotBox;
struct PlotBox { double x0, y0, x1, y1; };

/* One line of a panel. */
typedef struct PlotSeries PlotSeries;
struct PlotSeries {
  const char *zName;        /* legend text */
  const double *aY;         /* n values, data units */
  double r, g, b;           /* colour */
  int bDash;                /* dashed line */
  int bFill;                /* fill the area under it, lightly */
};

/* A "nice" tick spacing for about nTarget ticks over range: 1, 2 or 5
** times a power of ten. */
static double plotNiceStep(double range, int nTarget){
  double raw, mag, f;
  if( !(range>0) ) range = 1;
  if( nTarget<1 ) nTarget = 1;
  raw = range/nTarget;
  mag = pow(10.0, floor(log10(raw)));
  f = raw/mag;
  return (f<=1.0 ? 1.0 : f<=2.0 ? 2.0 : f<=5.0 ? 5.0 : 10.0)*mag;
}

/* Axis from 0 to hi (data units); with bRound the top is rounded up to a
** tick. */
static void plotAxisInit(PlotAxis *a, double hi, double rScale, int nTarget,
                         int bRound){
  double h;
  if( !(hi>0) ) hi = rScale;
  h = hi/rScale;
  a->lo = 0;
  a->rScale = rScale;
  a->step = plotNiceStep(h, nTarget);
  a->hi = bRound ? ceil(h/a->step - 1e-9)*a->step*rScale : hi;
  a->nDec = a->step>=1 ? 0 : (int)ceil(-log10(a->step) - 1e-9);
}

static double plotX(const PlotBox *b, const PlotAxis *a, double v){
  return b->x0 + (v - a->lo)/(a->hi - a->lo)*(b->x1 - b->x0);
}

static double plotY(const PlotBox *b, const PlotAxis *a, double v){
  return b->y1 - (v - a->lo)/(a->hi - a->lo)*(b->y1 - b->y0);
}

static void plotText(cairo_t *cr, double x, double y, double rSize,
                     double rAlignX, double rAlignY, const char *z){
  cairo_text_extents_t e;
  cairo_set_font_size(cr, rSize);
  cairo_text_extents(cr, z, &e);
  cairo_move_to(cr, x - e.x_advance*rAlignX - e.x_bearing*(1 - rAlignX),
                y - e.y_bearing - e.height*rAlignY);
  cairo_show_text(cr, z);
}

/* The polyline of aY against aX within box b, at most two points per
** pixel column (the lowest and highest of the samples in it). */
static void plotPath(cairo_t *cr, const PlotBox *b, const PlotAxis *ax,
                     const PlotAxis *ay, const double *aX, const double *aY,
                     int n){
  int i, bFirst = 1;
  if( n<=2*(int)(b->x1 - b->x0) ){
    for(i=0; i<n; i++){
      double x = plotX(b, ax, aX[i]), y = plotY(b, ay, aY[i]);
      if( i==0 ) cairo_move_to(cr, x, y); else cairo_line_to(cr, x, y);
    }
    return;
  }
  for(i=0; i<n; ){
    int col = (int)floor(plotX(b, ax, aX[i]));
    int iMin = i, iMax = i, k;
    for(k=i+1; k<n && (int)floor(plotX(b, ax, aX[k]))==col; k++){
      if( aY[k]<aY[iMin] ) iMin = k;
      if( aY[k]>aY[iMax] ) iMax = k;
    }
    {
      int i1 = iMin<iMax ? iMin : iMax, i2 = iMin<iMax ? iMax : iMin;
      double x1 = plotX(b, ax, aX[i1]), y1 = plotY(b, ay, aY[i1]);
      if( bFirst ) cairo_move_to(cr, x1, y1); else cairo_line_to(cr, x1, y1);
      bFirst = 0;
      cairo_line_to(cr, plotX(b, ax, aX[i2]), plotY(b, ay, aY[i2]));
    }
    i = k;
  }
}

/* One panel: grid, axes, tick labels, the series and, with zXLabel, the
** time axis labels below it. */
static void plotPanel(cairo_t *cr, double s, const PlotBox *b,
                      const PlotAxis *ax, const PlotAxis *ay,
                      const char *zYLabel, const char *zXLabel,
                      const double *aX, const PlotSeries *aS, int nS, int n){
  char zNum[64];
  double v;
  double nYTop = ay->hi/ay->rScale + 1e-6*ay->step;   /* last tick value */
  double nXTop = ax->hi/ax->rScale + 1e-6*ax->step;
  int i, k;

  /* grid and tick labels */
  cairo_set_line_width(cr, 1.0);
  cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
  for(k=0; (v = k*ay->step)<=nYTop; k++){
    double y = floor(plotY(b, ay, v*ay->rScale)) + 0.5;
    cairo_move_to(cr, b->x0, y);
    cairo_line_to(cr, b->x1, y);
  }
  for(k=0; (v = k*ax->step)<=nXTop; k++){
    double x = floor(plotX(b, ax, v*ax->rScale)) + 0.5;
    cairo_move_to(cr, x, b->y0);
    cairo_line_to(cr, x, b->y1);
  }
  cairo_stroke(cr);
  cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
  for(k=0; (v = k*ay->step)<=nYTop; k++){
    double y = plotY(b, ay, v*ay->rScale);
    snprintf(zNum, sizeof(zNum), "%.*f", ay->nDec, v);
    plotText(cr, b->x0 - 6*s, y, 12*s, 1.0, 0.5, zNum);
    cairo_move_to(cr, b->x0 - 4*s, floor(y) + 0.5);
    cairo_line_to(cr, b->x0, floor(y) + 0.5);
  }
  if( zXLabel ){
    for(k=0; (v = k*ax->step)<=nXTop; k++){
      double x = plotX(b, ax, v*ax->rScale);
      snprintf(zNum, sizeof(zNum), "%.*f", ax->nDec, v);
      plotText(cr, x, b->y1 + 7*s, 12*s, 0.5, 0.0, zNum);
      cairo_move_to(cr, floor(x) + 0.5, b->y1);
      cairo_line_to(cr, floor(x) + 0.5, b->y1 + 4*s);
    }
    plotText(cr, (b->x0 + b->x1)/2, b->y1 + 27*s, 13*s, 0.5, 0.0, zXLabel);
  }
  cairo_stroke(cr);

  /* y axis label, rotated */
  cairo_save(cr);
  cairo_translate(cr, 22*s, (b->y0 + b->y1)/2);
  cairo_rotate(cr, -M_PI/2);
  plotText(cr, 0, 0, 13*s, 0.5, 0.5, zYLabel);
  cairo_restore(cr);

  /* the series, clipped to the box */
  cairo_save(cr);
  cairo_rectangle(cr, b->x0, b->y0 - 1, b->x1 - b->x0, b->y1 - b->y0 + 1);
  cairo_clip(cr);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  for(i=0; i<nS; i++){
    const PlotSeries *q = &aS[i];
    if( q->bFill && n>1 ){
      plotPath(cr, b, ax, ay, aX, q->aY, n);
      cairo_line_to(cr, plotX(b, ax, aX[n-1]), b->y1);
      cairo_line_to(cr, plotX(b, ax, aX[0]), b->y1);
      cairo_close_path(cr);
      cairo_set_source_rgba(cr, q->r, q->g, q->b, 0.15);
      cairo_fill(cr);
    }
    cairo_set_source_rgb(cr, q->r, q->g, q->b);
    cairo_set_line_width(cr, 2.0*s);
    if( q->bDash ){
      double aDash[2];
      aDash[0] = 6*s; aDash[1] = 3*s;
      cairo_set_dash(cr, aDash, 2, 0);
    }
    plotPath(cr, b, ax, ay, aX, q->aY, n);
    cairo_stroke(cr);
    cairo_set_dash(cr, 0, 0, 0);
    if( n<=40 ){                                 /* few samples: dots */
      for(k=0; k<n; k++){
        cairo_arc(cr, plotX(b, ax, aX[k]), plotY(b, ay, q->aY[k]),
                  2.5*s, 0, 2*M_PI);
        cairo_fill(cr);
      }
    }
  }
  cairo_restore(cr);

  /* frame */
  cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
  cairo_set_line_width(cr, 1.0);
  cairo_rectangle(cr, floor(b->x0) + 0.5, floor(b->y0) + 0.5,
                  floor(b->x1) - floor(b->x0), floor(b->y1) - floor(b->y0));
  cairo_stroke(cr);

  /* legend, right of the panel */
  for(i=0; i<nS; i++){
    const PlotSeries *q = &aS[i];
    double x = b->x1 + 14*s, y = b->y0 + 10*s + i*20*s;
    cairo_set_source_rgb(cr, q->r, q->g, q->b);
    cairo_set_line_width(cr, 2.5*s);
    if( q->bDash ){
      double aDash[2];
      aDash[0] = 6*s; aDash[1] = 3*s;
      cairo_set_dash(cr, aDash, 2, 0);
    }
    cairo_move_to(cr, x, y);
    cairo_line_to(cr, x + 24*s, y);
    cairo_stroke(cr);
    cairo_set_dash(cr, 0, 0, 0);
    cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
    plotText(cr, x + 30*s, y, 12*s, 0.0, 0.5, q->zName);
  }
}

/* Copy at most nMax bytes of zIn (UTF-8) to zOut, cut at a character;
** zOut must have room for nMax+4 bytes. */
static void plotCut(char *zOut, const char *zIn, int nMax){
  int n = (int)strnlen(zIn, (size_t)nMax+1);
  if( n>nMax ){
    n = nMax;
    while( n>0 && (zIn[n] & 0xc0)==0x80 ) n--;
  }
  memcpy(zOut, zIn, (size_t)n);
  zOut[n] = 0;
}

/* Shorten z (UTF-8) with a trailing "..." until it is at most w wide;
** z must have room for 3 more bytes than its length. */
static void plotFit(cairo_t *cr, char *z, double w){
  cairo_text_extents_t e;
  int n = (int)strlen(z);
  cairo_text_extents(cr, z, &e);
  if( e.x_advance<=w ) return;
  while( n>0 ){
    n--;
    while( n>0 && (z[n] & 0xc0)==0x80 ) n--;    /* a whole character */
    memcpy(z+n, "...", 4);
    cairo_text_extents(cr, z, &e);
    if( e.x_advance<=w ) return;
  }
}

/* Dashed vertical lines across both panels at each mark, the labels
** written upwards at the top of the upper panel. A label that would
** overlap the previous one is left out (the line is drawn). */
static void plotMarks(cairo_t *cr, double s, const PlotBox *b1,
                      const PlotBox *b2, const PlotAxis *ax,
                      const MonMark *aM, int nM){
  double aDash[2], xLast = -1e9;
  int i;
  aDash[0] = 4*s; aDash[1] = 3*s;
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
                         CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, 11*s);
  for(i=0; i<nM; i++){
    double x;
    char zLabel[MON_MAX_LABEL+4];
    cairo_text_extents_t e;
    if( aM[i].t<ax->lo || aM[i].t>ax->hi ) continue;
    x = floor(plotX(b1, ax, aM[i].t)) + 0.5;
    cairo_set_source_rgba(cr, 0.35, 0.1, 0.45, 0.85);
    cairo_set_line_width(cr, 1.2*s);
    cairo_set_dash(cr, aDash, 2, 0);
    cairo_move_to(cr, x, b1->y0);
    cairo_line_to(cr, x, b1->y1);
    cairo_move_to(cr, x, b2->y0);
    cairo_line_to(cr, x, b2->y1);
    cairo_stroke(cr);
    cairo_set_dash(cr, 0, 0, 0);
    if( x - xLast < 14*s ) continue;
    xLast = x;
    plotCut(zLabel, aM[i].zLabel, MON_MAX_LABEL);
    plotFit(cr, zLabel, (b1->y1 - b1->y0) - 12*s);
    cairo_text_extents(cr, zLabel, &e);
    cairo_save(cr);
    cairo_translate(cr, x + 4*s, b1->y0 + 6*s + e.x_advance);
    cairo_rotate(cr, -M_PI/2);
    cairo_set_source_rgba(cr, 1, 1, 1, 0.8);
    cairo_rectangle(cr, -2*s, -1*s, e.x_advance + 4*s, 13*s);
    cairo_fill(cr);
    cairo_set_source_rgb(cr, 0.35, 0.1, 0.45);
    cairo_move_to(cr, 0, 10*s);
    cairo_show_text(cr, zLabel);
    cairo_restore(cr);
  }
}

/* Draw the whole chart on cr (w x h pixels). Returns SQLITE_OK or
** SQLITE_NOMEM. */
static int plotDraw(cairo_t *cr, int w, int h, const char *zTitle,
                    const MonSample *a, int n, const MonMark *aM, int nM,
                    double rInterval){
  double s = fmin(w/1000.0, h/600.0);
  double *aBuf, *aX, *aCpu, *aCpuC, *aRss, *aCRss, *aCPss;
  double tMax = 0, rCpuMax = 0, rMemMax = 0, rPeakMem = 0;
  double rMiB = 1024.0*1024.0, rUnit;
  int i, bChild = 0, nS, nCpuLegend;
  PlotAxis ax, ayCpu, ayMem;
  PlotBox b1, b2;
  PlotSeries aS[3];
  char zSub[256];
  char zTitleFit[MON_MAX_LABEL+4];
  const char *zXLabel;

  if( s<0.8 ) s = 0.8;                         /* text stays readable */
  aBuf = sqlite3_malloc64(sizeof(double)*6*(sqlite3_uint64)n);
  if( aBuf==0 ) return SQLITE_NOMEM;
  aX = aBuf; aCpu = aX+n; aCpuC = aCpu+n;
  aRss = aCpuC+n; aCRss = aRss+n; aCPss = aCRss+n;
  for(i=0; i<n; i++){
    aX[i] = a[i].t;
    aCpu[i] = a[i].rCpu;
    aCpuC[i] = a[i].rCpuChild;
    aRss[i] = a[i].nRss/rMiB;
    aCRss[i] = a[i].nChildRss/rMiB;
    aCPss[i] = a[i].nChildPss/rMiB;
    if( a[i].t>tMax ) tMax = a[i].t;
    if( aCpu[i]>rCpuMax ) rCpuMax = aCpu[i];
    if( aRss[i]>rMemMax ) rMemMax = aRss[i];
    if( aCRss[i]>rMemMax ) rMemMax = aCRss[i];
    if( aCPss[i]>rMemMax ) rMemMax = aCPss[i];
    if( aRss[i]+aCPss[i]>rPeakMem ) rPeakMem = aRss[i]+aCPss[i];
    if( a[i].nChild>0 || a[i].nChildRss>0 || a[i].rCpuChild>0 ) bChild = 1;
  }
  for(i=0; i<nM; i++){
    if( aM[i].t>tMax ) tMax = aM[i].t;
  }
  if( tMax<=0 ) tMax = rInterval>0 ? rInterval : 1;

  /* layout */
  b1.x0 = b2.x0 = 84*s;
  b1.x1 = b2.x1 = w - 200*s;
  b1.y0 = 66*s;
  b2.y1 = h - 58*s;
  b1.y1 = b1.y0 + (b2.y1 - b1.y0 - 18*s)/2;
  b2.y0 = b1.y1 + 18*s;

  /* axes: time in s, min or h by length; CPU from 0 to at least 10%;
  ** memory from 0 to at least 1 MiB */
  if( tMax<=300 ){ rUnit = 1; zXLabel = "time (s)"; }
  else if( tMax<=5*3600 ){ rUnit = 60; zXLabel = "time (min)"; }
  else{ rUnit = 3600; zXLabel = "time (h)"; }
  plotAxisInit(&ax, tMax, rUnit, (int)((b1.x1 - b1.x0)/(90*s)), 0);
  plotAxisInit(&ayCpu, rCpuMax<10 ? 10 : rCpuMax*1.05, 1, 5, 1);
  plotAxisInit(&ayMem, rMemMax<1 ? 1 : rMemMax*1.05, 1, 5, 1);

  /* background, title, summary */
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
                         CAIRO_FONT_WEIGHT_BOLD);
  cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
  cairo_set_font_size(cr, 18*s);
  plotCut(zTitleFit, zTitle, MON_MAX_LABEL);
  plotFit(cr, zTitleFit, w - 40*s);
  plotText(cr, w/2.0, 12*s, 18*s, 0.5, 0.0, zTitleFit);
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
                         CAIRO_FONT_WEIGHT_NORMAL);
  snprintf(zSub, sizeof(zSub), "%d sample%s every %g s  \xc2\xb7  "
           "peak CPU %.0f%%  \xc2\xb7  peak memory %.0f MiB "
           "(process RSS + descendants' PSS)", n, n==1 ? "" : "s",
           rInterval, rCpuMax, rPeakMem);
  cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
  plotText(cr, w/2.0, 38*s, 12*s, 0.5, 0.0, zSub);

  /* CPU panel */
  memset(aS, 0, sizeof(aS));
  aS[0].zName = bChild ? "process + descendants" : "process";
  aS[0].aY = aCpu;
  aS[0].r = 0.12; aS[0].g = 0.47; aS[0].b = 0.71; aS[0].bFill = 1;
  aS[1].zName = "descendants";
  aS[1].aY = aCpuC;
  aS[1].r = 1.0; aS[1].g = 0.5; aS[1].b = 0.05;
  nS = bChild ? 2 : 1;
  plotPanel(cr, s, &b1, &ax, &ayCpu, "CPU (% of one core)", 0, aX, aS, nS, n);
  nCpuLegend = nS;

  /* memory panel */
  memset(aS, 0, sizeof(aS));
  aS[0].zName = "process RSS";
  aS[0].aY = aRss;
  aS[0].r = 0.17; aS[0].g = 0.63; aS[0].b = 0.17; aS[0].bFill = 1;
  aS[1].zName = "descendants RSS";
  aS[1].aY = aCRss;
  aS[1].r = 0.84; aS[1].g = 0.15; aS[1].b = 0.16;
  aS[2].zName = "descendants PSS";
  aS[2].aY = aCPss;
  aS[2].r = 0.58; aS[2].g = 0.40; aS[2].b = 0.74; aS[2].bDash = 1;
  nS = bChild ? 3 : 1;
  plotPanel(cr, s, &b2, &ax, &ayMem, "memory (MiB)", zXLabel, aX, aS, nS,
            n);

  /* marks, with a legend entry */
  if( nM>0 ){
    double aDash[2], x = b1.x1 + 14*s, y = b1.y0 + 10*s + nCpuLegend*20*s;
    aDash[0] = 4*s; aDash[1] = 3*s;
    plotMarks(cr, s, &b1, &b2, &ax, aM, nM);
    cairo_set_source_rgb(cr, 0.35, 0.1, 0.45);
    cairo_set_line_width(cr, 1.5*s);
    cairo_set_dash(cr, aDash, 2, 0);
    cairo_move_to(cr, x + 12*s, y - 8*s);
    cairo_line_to(cr, x + 12*s, y + 8*s);
    cairo_stroke(cr);
    cairo_set_dash(cr, 0, 0, 0);
    cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
    plotText(cr, x + 30*s, y, 12*s, 0.0, 0.5, "mark");
  }
  sqlite3_free(aBuf);
  return SQLITE_OK;
}

/* Where cairo's stream writers write: a file descriptor. */
typedef struct PlotOut PlotOut;
struct PlotOut {
  int fd;                   /* the temporary file */
  int iErrno;               /* errno of the first failed write, or 0 */
};

static cairo_status_t plotWrite(void *pArg, const unsigned char *a,
                                unsigned int n){
  PlotOut *p = (PlotOut*)pArg;
  while( n>0 ){
    ssize_t k = write(p->fd, a, n);
    if( k<0 && errno==EINTR ) continue;
    if( k<=0 ){
      p->iErrno = k<0 ? errno : EIO;
      return CAIRO_STATUS_WRITE_ERROR;
    }
    a += k;
    n -= (unsigned int)k;
  }
  return CAIRO_STATUS_SUCCESS;
}

/* 1 if z ends in zExt, ignoring case. */
static int plotEndsWith(const char *z, const char *zExt){
  size_t n = strlen(z), m = strlen(zExt);
  return n>m && sqlite3_stricmp(z+n-m, zExt)==0;
}

/* An integer size argument in [iMin, iMax]; 0 on success. */
static int plotSize(sqlite3_value *v, int iMin, int iMax, int *pOut){
  double r;
  if( monValueReal(v, &r) || r!=floor(r) || r<iMin || r>iMax ) return 1;
  *pOut = (int)r;
  return 0;
}

/* monitor_plot(path [, title [, width, height]]) */
static void plotFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  TractsConn *pConn = (TractsConn*)sqlite3_user_data(ctx);
  TrMonitor *p = pConn->pMonitor;
  const char *zPath = (const char*)sqlite3_value_text(argv[0]);
  const char *zTitle = "Resource use";
  int w = 1000, h = 600, nSample = 0, nMark = 0, bSvg, rc, iErr = 0;
  MonSample *aSample = 0;
  MonMark *aMark = 0;
  double rInterval = 0;
  char *zTmp = 0;
  PlotOut out;
  cairo_surface_t *pSurf = 0;
  cairo_t *cr = 0;
  cairo_status_t st = CAIRO_STATUS_SUCCESS;
  sqlite3_uint64 iRand;

  out.fd = -1;
  out.iErrno = 0;
  if( monCheckFork(ctx, p, "monitor_plot") ) return;
  if( sqlite3_value_type(argv[0])==SQLITE_NULL || zPath==0 ){
    sqlite3_result_error(ctx, "monitor_plot: the path is NULL", -1);
    return;
  }
  bSvg = plotEndsWith(zPath, ".svg");
  if( !bSvg && !plotEndsWith(zPath, ".png") ){
    monError(ctx, "monitor_plot: '%s' must end in .png or .svg", zPath);
    return;
  }
  if( argc>=2 && sqlite3_value_type(argv[1])!=SQLITE_NULL ){
    zTitle = (const char*)sqlite3_value_text(argv[1]);
    if( zTitle==0 ){ sqlite3_result_error_nomem(ctx); return; }
  }
  if( argc==4 ){
    const char *zBad = 0;
    sqlite3_value *pBad = 0;
    if( plotSize(argv[2], 300, 8000, &w) ){
      zBad = "width must be between 300 and 8000"; pBad = argv[2];
    }else if( plotSize(argv[3], 200, 8000, &h) ){
      zBad = "height must be between 200 and 8000"; pBad = argv[3];
    }
    if( zBad ){
      char *zGot = monQuote(pBad);
      monError(ctx, "monitor_plot: %s pixels, got %s", zBad,
               zGot ? zGot : "?");
      sqlite3_free(zGot);
      return;
    }
  }
  rc = monCopySamples(p, &aSample, &nSample, &rInterval);
  if( rc==SQLITE_OK ) rc = monCopyMarks(p, &aMark, &nMark);
  if( rc ){ sqlite3_result_error_nomem(ctx); goto plot_out; }
  if( nSample==0 ){
    sqlite3_result_error(ctx, "monitor_plot: no samples (run monitor_start "
                         "and monitor_stop first)", -1);
    goto plot_out;
  }

  /* Written under a temporary name beside the target, then renamed. */
  sqlite3_randomness(sizeof(iRand), &iRand);
  zTmp = sqlite3_mprintf("%s.%d-%llx.tmp", zPath, (int)getpid(),
                         (unsigned long long)iRand);
  if( zTmp==0 ){ sqlite3_result_error_nomem(ctx); goto plot_out; }
  out.fd = open(zTmp, O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC, 0666);
  if( out.fd<0 ){
    iErr = errno;
    goto plot_out;
  }
  if( bSvg ){
    pSurf = cairo_svg_surface_create_for_stream(plotWrite, &out, w, h);
    cairo_svg_surface_set_document_unit(pSurf, CAIRO_SVG_UNIT_PX);
  }else{
    pSurf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
  }
  cr = cairo_create(pSurf);
  rc = plotDraw(cr, w, h, zTitle, aSample, nSample, aMark, nMark, rInterval);
  if( rc ){ sqlite3_result_error_nomem(ctx); goto plot_out; }
  st = cairo_status(cr);
  cairo_destroy(cr);
  cr = 0;
  if( st==CAIRO_STATUS_SUCCESS ){
    if( bSvg ){
      cairo_surface_finish(pSurf);
    }else{
      st = cairo_surface_write_to_png_stream(pSurf, plotWrite, &out);
    }
  }
  if( st==CAIRO_STATUS_SUCCESS ) st = cairo_surface_status(pSurf);
  if( st!=CAIRO_STATUS_SUCCESS ){
    if( out.iErrno ){
      iErr = out.iErrno;
    }else if( st==CAIRO_STATUS_NO_MEMORY ){
      sqlite3_result_error_nomem(ctx);
    }else{
      monError(ctx, "monitor_plot: cannot draw '%s': %s", zPath,
               cairo_status_to_string(st));
    }
    goto plot_out;
  }
  if( close(out.fd) ){
    out.fd = -1;
    iErr = errno;
    goto plot_out;
  }
  out.fd = -1;
  if( rename(zTmp, zPath) ){
    iErr = errno;
    goto plot_out;
  }
  sqlite3_free(zTmp);
  zTmp = 0;
  sqlite3_result_text(ctx, zPath, -1, SQLITE_TRANSIENT);

plot_out:
  if( iErr ){
    monError(ctx, "monitor_plot: cannot write '%s': %s", zPath,
             strerror(iErr));
    sqlite3_result_error_code(ctx, SQLITE_IOERR);
  }
  if( cr ) cairo_destroy(cr);
  if( pSurf ) cairo_surface_destroy(pSurf);
  if( out.fd>=0 ) close(out.fd);
  if( zTmp ){
    unlink(zTmp);
    sqlite3_free(zTmp);
  }
  sqlite3_free(aSample);
  sqlite3_free(aMark);
}

/* ------------------------------------------------------------------ */
/* monitor_samples and monitor_marks                                  */
/* ------------------------------------------------------------------ */

#define SAMPLES_SCHEMA \
  "CREATE TABLE x(t REAL, cpu_pct REAL, cpu_children_pct REAL, " \
  "rss_bytes INTEGER, children_rss_bytes INTEGER, " \
  "children_pss_bytes INTEGER, threads INTEGER, children INTEGER)"
#define SAMPLES_T                0
#define SAMPLES_CPU_PCT          1
#define SAMPLES_CPU_CHILDREN_PCT 2
#define SAMPLES_RSS_BYTES        3
#define SAMPLES_CHILDREN_RSS     4
#define SAMPLES_CHILDREN_PSS     5
#define SAMPLES_THREADS          6
#define SAMPLES_CHILDREN         7

#define MARKS_SCHEMA "CREATE TABLE x(t REAL, label TEXT)"
#define MARKS_T                  0
#define MARKS_LABEL              1

/* A monitor table; the same struct serves both. */
typedef struct MonVtab MonVtab;
struct MonVtab {
  sqlite3_vtab base;        /* base class, must be first (a TrVtab) */
  TractsConn *pConn;        /* the connection's state */
  int bMarks;               /* monitor_marks (else monitor_samples) */
};

/* A scan: a copy of the rows taken by xFilter. */
typedef struct MonCursor MonCursor;
struct MonCursor {
  sqlite3_vtab_cursor base; /* base class, must be first */
  MonSample *aSample;       /* copied samples (monitor_samples) */
  MonMark *aMark;           /* copied marks (monitor_marks) */
  int nRow;                 /* rows in the copy */
  int iRow;                 /* current row */
};

static int monConnect(sqlite3 *db, void *pAux, const char *zSchema,
                      int bMarks, sqlite3_vtab **ppVtab){
  int rc = trVtabConnect(db, pAux, zSchema, sizeof(MonVtab), 0, ppVtab);
  if( rc==SQLITE_OK ) ((MonVtab*)*ppVtab)->bMarks = bMarks;
  return rc;
}

static int samplesConnect(sqlite3 *db, void *pAux, int argc,
                          const char *const *argv, sqlite3_vtab **ppVtab,
                          char **pzErr){
  (void)argc; (void)argv; (void)pzErr;
  return monConnect(db, pAux, SAMPLES_SCHEMA, 0, ppVtab);
}

static int marksConnect(sqlite3 *db, void *pAux, int argc,
                        const char *const *argv, sqlite3_vtab **ppVtab,
                        char **pzErr){
  (void)argc; (void)argv; (void)pzErr;
  return monConnect(db, pAux, MARKS_SCHEMA, 1, ppVtab);
}

static int monOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCur){
  (void)pVtab;
  return trCursorNew(sizeof(MonCursor), ppCur);
}

static void monCursorReset(MonCursor *c){
  sqlite3_free(c->aSample);
  sqlite3_free(c->aMark);
  c->aSample = 0;
  c->aMark = 0;
  c->nRow = c->iRow = 0;
}

static int monClose(sqlite3_vtab_cursor *cur){
  monCursorReset((MonCursor*)cur);
  sqlite3_free(cur);
  return SQLITE_OK;
}

/* Copy the rows of the last (or current) run. */
static int monFilter(sqlite3_vtab_cursor *cur, int idxNum,
                     const char *idxStr, int argc, sqlite3_value **argv){
  MonCursor *c = (MonCursor*)cur;
  MonVtab *pTab = (MonVtab*)cur->pVtab;
  TrMonitor *p = pTab->pConn->pMonitor;
  (void)idxNum; (void)idxStr; (void)argc; (void)argv;
  monCursorReset(c);
  if( monForked(p) ){
    sqlite3_free(pTab->base.zErrMsg);
    pTab->base.zErrMsg = sqlite3_mprintf("%s: not available in a forked "
                         "child", pTab->bMarks ? "monitor_marks"
                                               : "monitor_samples");
    return SQLITE_ERROR;
  }
  if( pTab->bMarks ) return monCopyMarks(p, &c->aMark, &c->nRow);
  return monCopySamples(p, &c->aSample, &c->nRow, 0);
}

static int monNext(sqlite3_vtab_cursor *cur){
  ((MonCursor*)cur)->iRow++;
  return SQLITE_OK;
}

static int monEof(sqlite3_vtab_cursor *cur){
  MonCursor *c = (MonCursor*)cur;
  return c->iRow>=c->nRow;
}

static int monColumn(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int i){
  MonCursor *c = (MonCursor*)cur;
  if( c->aMark ){
    const MonMark *m = &c->aMark[c->iRow];
    switch( i ){
      case MARKS_T:     sqlite3_result_double(ctx, m->t); break;
      case MARKS_LABEL:
        sqlite3_result_text(ctx, m->zLabel, -1, SQLITE_TRANSIENT);
        break;
    }
  }else{
    const MonSample *s = &c->aSample[c->iRow];
    switch( i ){
      case SAMPLES_T:       sqlite3_result_double(ctx, s->t); break;
      case SAMPLES_CPU_PCT: sqlite3_result_double(ctx, s->rCpu); break;
      case SAMPLES_CPU_CHILDREN_PCT:
        sqlite3_result_double(ctx, s->rCpuChild);
        break;
      case SAMPLES_RSS_BYTES:    sqlite3_result_int64(ctx, s->nRss); break;
      case SAMPLES_CHILDREN_RSS: sqlite3_result_int64(ctx, s->nChildRss); break;
      case SAMPLES_CHILDREN_PSS: sqlite3_result_int64(ctx, s->nChildPss); break;
      case SAMPLES_THREADS:      sqlite3_result_int(ctx, s->nThread); break;
      case SAMPLES_CHILDREN:     sqlite3_result_int(ctx, s->nChild); break;
    }
  }
  return SQLITE_OK;
}

static int monRowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *pRowid){
  *pRowid = ((MonCursor*)cur)->iRow + 1;
  return SQLITE_OK;
}

/* A full scan, in time order; ORDER BY t is satisfied as it is. */
static int monBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *p){
  (void)pVtab;
  p->estimatedCost = 1000.0;
  p->estimatedRows = 1000;
  if( p->nOrderBy==1 && p->aOrderBy[0].iColumn==0 && !p->aOrderBy[0].desc ){
    p->orderByConsumed = 1;
  }
  return SQLITE_OK;
}

/* monitor_samples: eponymous-only, read-only. */
static sqlite3_module samplesModule = {
  0,                 /* iVersion */
  0,                 /* xCreate: eponymous only */
  samplesConnect,    /* xConnect */
  monBestIndex,      /* xBestIndex */
  trVtabFree,        /* xDisconnect */
  0,                 /* xDestroy */
  monOpen,           /* xOpen */
  monClose,          /* xClose */
  monFilter,         /* xFilter: copies the samples */
  monNext,           /* xNext */
  monEof,            /* xEof */
  monColumn,         /* xColumn */
  monRowid,          /* xRowid */
  0, 0, 0, 0, 0, 0,  /* xUpdate .. xRollback, xFindFunction */
  0,                 /* xRename */
  0, 0, 0,           /* xSavepoint, xRelease, xRollbackTo */
  0                  /* xShadowName */
};

/* monitor_marks: eponymous-only, read-only. */
static sqlite3_module marksModule = {
  0,                 /* iVersion */
  0,                 /* xCreate: eponymous only */
  marksConnect,      /* xConnect */
  monBestIndex,      /* xBestIndex */
  trVtabFree,        /* xDisconnect */
  0,                 /* xDestroy */
  monOpen,           /* xOpen */
  monClose,          /* xClose */
  monFilter,         /* xFilter: copies the marks */
  monNext,           /* xNext */
  monEof,            /* xEof */
  monColumn,         /* xColumn */
  monRowid,          /* xRowid */
  0, 0, 0, 0, 0, 0,  /* xUpdate .. xRollback, xFindFunction */
  0,                 /* xRename */
  0, 0, 0,           /* xSavepoint, xRelease, xRollbackTo */
  0                  /* xShadowName */
};

/* ------------------------------------------------------------------ */
/* What other files call                                              */
/* ------------------------------------------------------------------ */

void trMonitorMark(TractsConn *pConn, const char *zLabel){
  TrMonitor *p;
  int n;
  double t;
  if( pConn==0 || zLabel==0 || zLabel[0]==0 ) return;
  p = pConn->pMonitor;
  if( p==0 || monForked(p) ) return;
  n = (int)strnlen(zLabel, MON_MAX_LABEL+1);
  if( n>MON_MAX_LABEL ){                        /* cut at a character */
    n = MON_MAX_LABEL;
    while( n>0 && (zLabel[n] & 0xc0)==0x80 ) n--;
  }
  pthread_mutex_lock(&p->mutex);
  if( p->bRunning ) monAddMark(p, zLabel, n, &t);
  pthread_mutex_unlock(&p->mutex);
}

void trMonitorFree(TractsConn *pConn){
  TrMonitor *p = pConn ? pConn->pMonitor : 0;
  if( p==0 ) return;
  pConn->pMonitor = 0;
  if( monForked(p) ) return;       /* a forked child: forget, touch nothing */
  monStopThread(p);
  monClear(p);
  pthread_cond_destroy(&p->cond);
  pthread_mutex_destroy(&p->mutex);
  sqlite3_free(p);
}

/* Keep libcairo, and the libraries it brought (pixman, fontconfig,
** freetype), loaded for the rest of the process. They keep state in
** their own globals (pixman's tables, made by a constructor at load;
** fontconfig's and cairo's font caches, made on first use); if they were
** unloaded with the extension (when the last connection using it
** closes) that state would be lost, about 12 KB at each load of the
** extension and 1 MB at each first plot. Pinned, it is made once per
** process and reused, as in a host that links cairo itself. */
static void monPinCairo(void){
  void *h = dlopen("libcairo.so.2", RTLD_LAZY|RTLD_NOLOAD|RTLD_NODELETE);
  if( h ) dlclose(h);              /* the library stays, pinned */
}

int trMonitorRegister(sqlite3 *db, TractsConn *pConn){
  static const struct {
    const char *zName;
    int nArg;
    void (*xFunc)(sqlite3_context*, int, sqlite3_value**);
  } aFunc[] = {
    { "monitor_start", 0, startFunc },
    { "monitor_start", 1, startFunc },
    { "monitor_stop",  0, stopFunc  },
    { "monitor_mark",  1, markFunc  },
    { "monitor_plot",  1, plotFunc  },
    { "monitor_plot",  2, plotFunc  },
    { "monitor_plot",  4, plotFunc  },
  };
  pthread_condattr_t attr;
  TrMonitor *p;
  int rc, i;

  if( pConn->pMonitor==0 ){
    p = sqlite3_malloc(sizeof(*p));
    if( p==0 ) return SQLITE_NOMEM;
    memset(p, 0, sizeof(*p));
    p->pidOwner = getpid();
    p->rInterval = MON_DEFAULT_INTERVAL;
    if( pthread_mutex_init(&p->mutex, 0) ){
      sqlite3_free(p);
      return SQLITE_NOMEM;
    }
    rc = pthread_condattr_init(&attr);
    if( rc==0 ){
      rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
      if( rc==0 ) rc = pthread_cond_init(&p->cond, &attr);
      pthread_condattr_destroy(&attr);
    }
    if( rc ){
      pthread_mutex_destroy(&p->mutex);
      sqlite3_free(p);
      return SQLITE_NOMEM;
    }
    pConn->pMonitor = p;
  }
  monPinCairo();
  for(i=0; i<(int)(sizeof(aFunc)/sizeof(aFunc[0])); i++){
    rc = trFunction(db, pConn, aFunc[i].zName, aFunc[i].nArg,
                    SQLITE_DIRECTONLY, aFunc[i].xFunc);
    if( rc ) return rc;
  }
  rc = trModule(db, pConn, "monitor_samples", &samplesModule);
  if( rc ) return rc;
  return trModule(db, pConn, "monitor_marks", &marksModule);
}
