/*
** states.h -- the state table and the placement of each state's rectangle,
** shared by tools/gentracts.c (which writes tracts inside the rectangles)
** and tools/genpoints.c (which draws points inside them). Included by
** both; everything is static.
**
** The including file provides <math.h>, <stdlib.h>, <string.h> and
** <strings.h>.
*/
#ifndef TRACTS_TOOLS_STATES_H
#define TRACTS_TOOLS_STATES_H

typedef struct StateDef StateDef;
struct StateDef {
  int iFips;            /* state FIPS code */
  const char *zAbbr;    /* USPS abbreviation */
  int nWeight;          /* approximate real tract count (2010 tracts) */
  int iRow, iCol;       /* cell in the 7x7 grid, north-west is 0,0; -1 = own */
};

static const StateDef aStateDef[] = {
  {  1, "AL", 1181, 5, 3 }, {  2, "AK",  167,-1,-1 }, {  4, "AZ", 1526, 4, 0 },
  {  5, "AR",  686, 5, 2 }, {  6, "CA", 8057, 3, 0 }, {  8, "CO", 1249, 4, 1 },
  {  9, "CT",  833, 5, 6 }, { 10, "DE",  218, 5, 5 }, { 11, "DC",  179, 6, 6 },
  { 12, "FL", 4245, 6, 3 }, { 13, "GA", 1969, 6, 2 }, { 15, "HI",  351,-1,-1 },
  { 16, "ID",  298, 1, 1 }, { 17, "IL", 3123, 1, 4 }, { 18, "IN", 1511, 2, 4 },
  { 19, "IA",  825, 1, 3 }, { 20, "KS",  770, 3, 2 }, { 21, "KY", 1115, 3, 3 },
  { 22, "LA", 1148, 6, 0 }, { 23, "ME",  358, 0, 6 }, { 24, "MD", 1406, 4, 5 },
  { 25, "MA", 1478, 3, 6 }, { 26, "MI", 2813, 0, 5 }, { 27, "MN", 1338, 0, 3 },
  { 28, "MS",  664, 6, 1 }, { 29, "MO", 1393, 2, 3 }, { 30, "MT",  271, 0, 1 },
  { 31, "NE",  532, 2, 2 }, { 32, "NV",  687, 2, 0 }, { 33, "NH",  295, 2, 6 },
  { 34, "NJ", 2010, 3, 5 }, { 35, "NM",  499, 5, 0 }, { 36, "NY", 4918, 1, 5 },
  { 37, "NC", 2195, 6, 5 }, { 38, "ND",  205, 0, 2 }, { 39, "OH", 2952, 3, 4 },
  { 40, "OK", 1046, 4, 2 }, { 41, "OR",  834, 1, 0 }, { 42, "PA", 3218, 2, 5 },
  { 44, "RI",  244, 4, 6 }, { 45, "SC", 1103, 6, 4 }, { 46, "SD",  222, 1, 2 },
  { 47, "TN", 1497, 4, 3 }, { 48, "TX", 5265, 5, 1 }, { 49, "UT",  588, 3, 1 },
  { 50, "VT",  184, 1, 6 }, { 51, "VA", 1907, 5, 4 }, { 53, "WA", 1458, 0, 0 },
  { 54, "WV",  484, 4, 4 }, { 55, "WI", 1409, 0, 4 }, { 56, "WY",  132, 2, 1 },
  { 72, "PR",  945,-1,-1 },
};
#define N_STATE ((int)(sizeof(aStateDef)/sizeof(aStateDef[0])))

#define GRID_LON0 (-125.0)
#define GRID_LON1  (-66.0)
#define GRID_LAT0   (24.0)
#define GRID_LAT1   (49.0)
#define GRID_N         7

/* Compute the rectangle of a state: aBox = lonmin,latmin,lonmax,latmax,
** rounded to 6 decimals, and the width of the water margin around it in
** longitude and latitude degrees (other states are at least twice that
** far away). */
static void statePlace(const StateDef *p, double *aBox,
                       double *pMarginLon, double *pMarginLat){
  if( p->iRow>=0 ){
    double cw = (GRID_LON1-GRID_LON0)/GRID_N;
    double ch = (GRID_LAT1-GRID_LAT0)/GRID_N;
    double f = (p->iFips==11) ? 0.30 : 0.88;
    double cx = GRID_LON0 + (p->iCol+0.5)*cw;
    double cy = GRID_LAT1 - (p->iRow+0.5)*ch;
    aBox[0] = round6(cx - 0.5*f*cw);
    aBox[1] = round6(cy - 0.5*f*ch);
    aBox[2] = round6(cx + 0.5*f*cw);
    aBox[3] = round6(cy + 0.5*f*ch);
    *pMarginLon = 0.5*(1.0-f)*cw;
    *pMarginLat = 0.5*(1.0-f)*ch;
  }else{
    switch( p->iFips ){
      case 2:
        aBox[0] = -168.0; aBox[1] = 55.0; aBox[2] = -141.0; aBox[3] = 70.0;
        break;
      case 15:
        aBox[0] = -160.3; aBox[1] = 18.9; aBox[2] = -154.8; aBox[3] = 22.3;
        break;
      default: /* 72 */
        aBox[0] = -67.3; aBox[1] = 17.9; aBox[2] = -65.2; aBox[3] = 18.55;
        break;
    }
    *pMarginLon = 0.3;
    *pMarginLat = 0.3;
  }
}

static const StateDef *stateFind(const char *z){
  int i;
  char *zEnd = 0;
  long v = strtol(z, &zEnd, 10);
  if( zEnd!=z && *zEnd==0 ){
    for(i=0; i<N_STATE; i++) if( aStateDef[i].iFips==v ) return &aStateDef[i];
    return 0;
  }
  for(i=0; i<N_STATE; i++){
    if( strcasecmp(z, aStateDef[i].zAbbr)==0 ) return &aStateDef[i];
  }
  return 0;
}

#endif /* TRACTS_TOOLS_STATES_H */
