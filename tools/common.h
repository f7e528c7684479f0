/*
** common.h -- what tools/gentracts.c and tools/genpoints.c share: dying
** with a message, allocation that cannot fail, rounding to the 6 decimals
** of Census files, and the deterministic PRNG (splitmix64). Everything is
** static inline, so a tool that uses only part of it gets no warning.
**
** The including file defines zArgv0 (its name, for messages) and includes
** <math.h>, <stdarg.h>, <stdint.h>, <stdio.h> and <stdlib.h> first.
*/
#ifndef TRACTS_TOOLS_COMMON_H
#define TRACTS_TOOLS_COMMON_H

static inline void fatal(const char *zFmt, ...){
  va_list ap;
  fprintf(stderr, "%s: ", zArgv0);
  va_start(ap, zFmt);
  vfprintf(stderr, zFmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(1);
}

static inline void *xmalloc(size_t n){
  void *p = malloc(n ? n : 1);
  if( p==0 ) fatal("out of memory");
  return p;
}

static inline void *xrealloc(void *pOld, size_t n){
  void *p = realloc(pOld, n ? n : 1);
  if( p==0 ) fatal("out of memory");
  return p;
}

static inline void *xcalloc(size_t nElem, size_t sz){
  void *p = calloc(nElem ? nElem : 1, sz ? sz : 1);
  if( p==0 ) fatal("out of memory");
  return p;
}

static inline char *xmprintf(const char *zFmt, ...){
  va_list ap;
  char *z = 0;
  int rc;
  va_start(ap, zFmt);
  rc = vasprintf(&z, zFmt, ap);
  va_end(ap);
  if( rc<0 ) fatal("out of memory");
  return z;
}

/* The name of command-line argument z if it is an option ("-name" or
** "--name", as "-name"), NULL if not. "-name=value" is split: the name is
** copied to zKey and *pzVal points at the value; otherwise *pzVal is NULL
** and the value, if any, is the next argument. */
static inline const char *optName(const char *z, char *zKey, size_t nKey,
                                  const char **pzVal){
  const char *zEq;
  *pzVal = 0;
  if( z[0]!='-' ) return 0;
  if( z[1]=='-' ) z++;
  zEq = strchr(z, '=');
  if( zEq && (size_t)(zEq-z)<nKey ){
    memcpy(zKey, z, (size_t)(zEq-z));
    zKey[zEq-z] = 0;
    *pzVal = zEq+1;
    return zKey;
  }
  return z;
}

/* Round to 6 decimal places, as in the Census files.  The result is the
** double nearest to k/1e6, i.e. what strtod() returns for "%.6f" text. */
static inline double round6(double x){
  return (double)llround(x*1e6)/1e6;
}

/****************************************************************************
** Deterministic PRNG: splitmix64, seeded by hashing tuples of integers.
*/
typedef struct Rng Rng;
struct Rng { uint64_t s; };

static inline uint64_t splitmix64(uint64_t *pState){
  uint64_t z = (*pState += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z>>30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z>>27)) * 0x94d049bb133111ebULL;
  return z ^ (z>>31);
}

static inline uint64_t hashStep(uint64_t h, uint64_t v){
  uint64_t s = h ^ (v + 0x632be59bd9b4e019ULL + (h<<6) + (h>>2));
  return splitmix64(&s);
}

static inline void rngSeed(Rng *p, uint64_t a, uint64_t b, uint64_t c, uint64_t d){
  p->s = hashStep(hashStep(hashStep(hashStep(0x5eed, a), b), c), d);
}

static inline uint64_t rngU64(Rng *p){ return splitmix64(&p->s); }

/* Uniform in [0,1) */
static inline double rngUnit(Rng *p){
  return (double)(rngU64(p)>>11) * (1.0/9007199254740992.0);
}

/* Uniform integer in [0,n) */
static inline int rngInt(Rng *p, int n){
  return (int)(rngUnit(p)*n);
}

/* Standard normal (Box-Muller, one value per call) */
static inline double rngNormal(Rng *p){
  double u1 = 1.0 - rngUnit(p);
  double u2 = rngUnit(p);
  return sqrt(-2.0*log(u1))*cos(2.0*M_PI*u2);
}

#endif /* TRACTS_TOOLS_COMMON_H */
