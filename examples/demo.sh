#!/bin/sh
# examples/demo.sh - make demo: sample census tract zips for Rhode Island
# and Massachusetts (generated in the exact Census layout by
# build/gentracts; no internet needed), 200,000 points clustered like
# businesses, then examples/demo.sql end to end.
set -e
cd "$(dirname "$0")/.."
D=build/demo
mkdir -p $D/tracts
build/gentracts --out $D/tracts --states RI,MA --tracts 1700 > /dev/null
rm -f $D/demo.db
build/genpoints --db $D/demo.db --table points --n 200000 --states RI,MA > /dev/null
echo "tract zips: $(ls $D/tracts | tr '\n' ' ')"
echo "points:     $D/demo.db, table points(id, lon, lat), 200000 rows"
sqlite3 $D/demo.db < examples/demo.sql
echo "results:    $D/demo.db, table points_tract(id, geoid, how)"
echo "chart:      $D/usage.png (CPU and memory over the run)"
