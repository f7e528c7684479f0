/*
** census_states.h - the states of the Census Bureau's cartographic
** boundary files (50 states, DC and Puerto Rico): FIPS code, USPS code,
** and about how many tracts each has (2010 tracts), which fetch_tracts
** uses to start the largest downloads first and the tools use to size
** generated data. An X-macro: define TR_STATE(fips, usps, tracts), then
** expand TR_STATES. Shared by ext/fetch.c and tools/states.h.
*/
#ifndef TRACTS_CENSUS_STATES_H
#define TRACTS_CENSUS_STATES_H

#define TR_STATES \
  TR_STATE( 1, "AL", 1181) TR_STATE( 2, "AK",  167) TR_STATE( 4, "AZ", 1526) \
  TR_STATE( 5, "AR",  686) TR_STATE( 6, "CA", 8057) TR_STATE( 8, "CO", 1249) \
  TR_STATE( 9, "CT",  833) TR_STATE(10, "DE",  218) TR_STATE(11, "DC",  179) \
  TR_STATE(12, "FL", 4245) TR_STATE(13, "GA", 1969) TR_STATE(15, "HI",  351) \
  TR_STATE(16, "ID",  298) TR_STATE(17, "IL", 3123) TR_STATE(18, "IN", 1511) \
  TR_STATE(19, "IA",  825) TR_STATE(20, "KS",  770) TR_STATE(21, "KY", 1115) \
  TR_STATE(22, "LA", 1148) TR_STATE(23, "ME",  358) TR_STATE(24, "MD", 1406) \
  TR_STATE(25, "MA", 1478) TR_STATE(26, "MI", 2813) TR_STATE(27, "MN", 1338) \
  TR_STATE(28, "MS",  664) TR_STATE(29, "MO", 1393) TR_STATE(30, "MT",  271) \
  TR_STATE(31, "NE",  532) TR_STATE(32, "NV",  687) TR_STATE(33, "NH",  295) \
  TR_STATE(34, "NJ", 2010) TR_STATE(35, "NM",  499) TR_STATE(36, "NY", 4918) \
  TR_STATE(37, "NC", 2195) TR_STATE(38, "ND",  205) TR_STATE(39, "OH", 2952) \
  TR_STATE(40, "OK", 1046) TR_STATE(41, "OR",  834) TR_STATE(42, "PA", 3218) \
  TR_STATE(44, "RI",  244) TR_STATE(45, "SC", 1103) TR_STATE(46, "SD",  222) \
  TR_STATE(47, "TN", 1497) TR_STATE(48, "TX", 5265) TR_STATE(49, "UT",  588) \
  TR_STATE(50, "VT",  184) TR_STATE(51, "VA", 1907) TR_STATE(53, "WA", 1458) \
  TR_STATE(54, "WV",  484) TR_STATE(55, "WI", 1409) TR_STATE(56, "WY",  132) \
  TR_STATE(72, "PR",  945)

#endif /* TRACTS_CENSUS_STATES_H */
