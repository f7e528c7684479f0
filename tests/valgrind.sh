#!/bin/sh
# tests/valgrind.sh EXT - the sqlite3 shell opens several connections in a
# row, each loading the extension, loading tracts and other layers,
# fetching them from a local server (tests/census_server.py), building the
# indexes, assigning several layers in one pass and closing;
# valgrind must find no definitely or indirectly lost bytes that come from
# the extension.
set -u
EXT=${1:-build/tracts.so}
cd "$(dirname "$0")/.."
ZIP=build/fixtures/hand/cb_2019_44_tract_500k.zip
LOG=build/test-output/valgrind-raw.log
SCRIPT=build/test-output/valgrind.sql
VG=build/test-output/valgrind-fetch
rm -rf $VG
mkdir -p $VG/mirror/geo/tiger/GENZ2019/shp
cp $ZIP $VG/mirror/geo/tiger/GENZ2019/shp/
/usr/bin/python3 tests/census_server.py --root $VG/mirror > $VG/port &
SERVER=$!
trap 'kill $SERVER 2>/dev/null' EXIT
for i in $(seq 50); do [ -s $VG/port ] && break; sleep 0.1; done
PORT=$(cat $VG/port)
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost
: > "$SCRIPT"
for i in 1 2 3; do
  cat >> "$SCRIPT" <<SQL
.open :memory:
.load ${EXT%.so}
select tracts_config('base_url', 'http://127.0.0.1:$PORT/geo/tiger/');
select tracts_config('cache_dir', '$VG/cache'), tracts_config('retries', 1);
select state, tracts, error is null from fetch_tracts('RI,MA');
select count(*) from tracts_cache;
select count(*) from load_tracts('$ZIP');
select tract_of(-71.45, 41.55), tracts_config('threads', 2);
select * from load_tracts('/nonexistent.zip');
select tract_of('x', 1), tracts_debug() is not null;
create table pts(id INTEGER PRIMARY KEY, lon, lat);
insert into pts(lon, lat) values(-71.45, 41.55), (-71.4, 41.6), (NULL, 1), ('x', 2);
select tracts_assign('pts', 'lon', 'lat', 'out', 1), tracts_assign('pts', 'lon', 'lat', 'out', 2);
select tracts_assign('nope', 'lon', 'lat', 'out');
select count(*) from census_layers;
select features, error from load_boundaries('mine', '$ZIP', 'NAME');
select features from load_boundaries('tracts_2019', '$ZIP');
select * from load_boundaries('mine', '$ZIP', 'NOPE');
select * from load_boundaries('bad name', '$ZIP');
select boundary_of('mine', -71.45, 41.55), boundary_of('nope', 1, 2);
select tracts_assign('pts', 'lon', 'lat', 'out3', 2, 'tracts,mine,tracts_2019');
select state, error is null from fetch_boundaries('tracts_2019', 'RI');
select * from fetch_boundaries('counties', 'RI');
select * from fetch_for_points('tracts', 'pts', 'lon', 'lat');
SQL
done
# a file database: the saved index is written to disk (no byte of it
# may be uninitialised) and read back by the next connection
rm -f $VG/saved.db
for i in 1 2; do
  cat >> "$SCRIPT" <<SQL
.open $VG/saved.db
.load ${EXT%.so}
select count(*) from load_tracts('$ZIP') where $i = 1;
select tract_of(-71.45, 41.55), count(*) from tracts_index;
SQL
done
echo ".open :memory:" >> "$SCRIPT"
valgrind --child-silent-after-fork=yes --leak-check=full --errors-for-leak-kinds=definite,indirect \
  --suppressions=tests/valgrind.supp \
  --error-exitcode=9 --log-file="$LOG" sqlite3 < "$SCRIPT" > build/test-output/valgrind.out 2>&1
rc=$?
pass=0 fail=0
if [ $rc -ne 9 ] && grep -q "44007000100" build/test-output/valgrind.out; then
  pass=1
else
  fail=1
  grep -A12 "definitely lost\|Invalid" "$LOG" | head -60
fi
grep -E "definitely lost|indirectly lost|ERROR SUMMARY" "$LOG"
echo "valgrind: $pass passed, $fail failed"
