#!/bin/sh
# examples/demo.sh - make demo: sample census tract zips for Rhode Island
# and Massachusetts, and their counties' national file (generated in the
# exact Census layout by build/gentracts), served on 127.0.0.1 by a local mirror of the Census
# server (tests/census_server.py, with 100 ms latency per request), 200,000
# points clustered like businesses, then examples/demo.sql end to end: it
# fetches the zips from the mirror, loads them and joins. No internet.
#
# The mirror is chosen by one setting, TRACTS_BASE_URL (tracts_config's
# base_url); without it fetch_tracts downloads from www2.census.gov.
set -e
cd "$(dirname "$0")/.."
D=build/demo
SHP=$D/mirror/geo/tiger/GENZ2019/shp
rm -rf $D/mirror $D/cache
mkdir -p $SHP
build/gentracts --out $SHP --states RI,MA --tracts 1700 > /dev/null
build/gentracts --out $SHP --states RI,MA --tracts 1700 --layer county > /dev/null
echo '[{"match": "*", "latency_ms": 100}]' > $D/mirror-rules.json
/usr/bin/python3 tests/census_server.py --root $D/mirror \
  --rules $D/mirror-rules.json > $D/mirror.port &
MIRROR=$!
trap 'kill $MIRROR 2>/dev/null' EXIT
for i in $(seq 100); do [ -s $D/mirror.port ] && break; sleep 0.1; done
export TRACTS_BASE_URL=http://127.0.0.1:$(cat $D/mirror.port)/geo/tiger/
export TRACTS_CACHE_DIR=$D/cache
# the mirror is local: no proxy the machine may have applies to it
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost
echo "mirror:     $TRACTS_BASE_URL (serving $(ls $SHP | tr '\n' ' '))"
rm -f $D/demo.db
build/genpoints --db $D/demo.db --table points --n 200000 --states RI,MA > /dev/null
echo "points:     $D/demo.db, table points(id, lon, lat), 200000 rows"
sqlite3 $D/demo.db < examples/demo.sql
echo "results:    $D/demo.db, tables points_tract(id, geoid, how) and"
echo "            points_geo(id, tracts, tracts_how, counties, counties_how)"
echo "chart:      $D/usage.png (CPU and memory over the run)"
