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

#include "../ext/census_states.h"

typedef struct StateDef StateDef;
struct StateDef {
  int iFips;            /* state FIPS code */
  const char *zAbbr;    /* USPS abbreviation */
  int nWeight;          /* approximate real tract count (2010 tracts) */
};

#define TR_STATE(fips, usps, tracts) { fips, usps, tracts },
static const StateDef aStateDef[] = { TR_STATES };
#undef TR_STATE

/* Cell of each state in the 7x7 grid, by FIPS code, as row+1, col+1
** (north-west is 1,1); 0,0 for the states placed on their own (AK, HI,
** PR). */
static const signed char aGridCell[80][2] = {
  [1] = { 6, 4 }, [4] = { 5, 1 }, [5] = { 6, 3 }, [6] = { 4, 1 },
  [8] = { 5, 2 }, [9] = { 6, 7 }, [10] = { 6, 6 }, [11] = { 7, 7 },
  [12] = { 7, 4 }, [13] = { 7, 3 }, [16] = { 2, 2 }, [17] = { 2, 5 },
  [18] = { 3, 5 }, [19] = { 2, 4 }, [20] = { 4, 3 }, [21] = { 4, 4 },
  [22] = { 7, 1 }, [23] = { 1, 7 }, [24] = { 5, 6 }, [25] = { 4, 7 },
  [26] = { 1, 6 }, [27] = { 1, 4 }, [28] = { 7, 2 }, [29] = { 3, 4 },
  [30] = { 1, 2 }, [31] = { 3, 3 }, [32] = { 3, 1 }, [33] = { 3, 7 },
  [34] = { 4, 6 }, [35] = { 6, 1 }, [36] = { 2, 6 }, [37] = { 7, 6 },
  [38] = { 1, 3 }, [39] = { 4, 5 }, [40] = { 5, 3 }, [41] = { 2, 1 },
  [42] = { 3, 6 }, [44] = { 5, 7 }, [45] = { 7, 5 }, [46] = { 2, 3 },
  [47] = { 5, 4 }, [48] = { 6, 2 }, [49] = { 4, 2 }, [50] = { 2, 7 },
  [51] = { 6, 5 }, [53] = { 1, 1 }, [54] = { 5, 5 }, [55] = { 1, 5 },
  [56] = { 3, 2 }
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
  int iRow = aGridCell[p->iFips][0] - 1, iCol = aGridCell[p->iFips][1] - 1;
  if( iRow>=0 ){
    double cw = (GRID_LON1-GRID_LON0)/GRID_N;
    double ch = (GRID_LAT1-GRID_LAT0)/GRID_N;
    double f = (p->iFips==11) ? 0.30 : 0.88;
    double cx = GRID_LON0 + (iCol+0.5)*cw;
    double cy = GRID_LAT1 - (iRow+0.5)*ch;
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
