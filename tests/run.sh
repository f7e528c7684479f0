#!/bin/sh
# tests/run.sh EXT - run every test against the extension EXT.
#
#   unit     C unit tests of the index and the blob codec (build/unit)
#   python   SQL-level tests from a Python host (tests/test_tracts.py),
#            including sqlite3 shell batch tests
#   monitor  the resource monitor (tests/test_monitor.py): sampling,
#            descendants, marks, charts, threads, bad input
#   fetch    fetch_tracts and tracts_cache against a fault-injecting
#            local server (tests/test_fetch.py, tests/census_server.py)
#   layers   census_layers, load_boundaries, boundary_of, fetch_boundaries,
#            several layers in one tracts_assign (tests/test_layers.py)
#   real     real projected and NAD27 shapefiles from Debian packages
#            against GeoPandas (tests/test_real.py, tests/realdata.sh)
#   valgrind load/unload cycles in the sqlite3 shell leak nothing
#
# With TRACTS_ASAN=1 the extension is an ASan/UBSan build: the hosts run
# with the sanitizer runtime preloaded and any report fails the run.
# The last line is "N passed, N failed, N skipped".
set -u
EXT=${1:-build/tracts.so}
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
pass=0 fail=0 skip=0
OUT=build/test-output
mkdir -p "$OUT"

# add LOGFILE: fold the "name: N passed, N failed[, N skipped]" line in.
add() {
  line=$(grep -E '^[a-z]+: [0-9]+ passed, [0-9]+ failed' "$1" | tail -1)
  if [ -z "$line" ]; then
    echo "no result line in $1"; fail=$((fail + 1)); return
  fi
  p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
  f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
  s=$(echo "$line" | sed -nE 's/.* ([0-9]+) skipped.*/\1/p')
  pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + ${s:-0}))
}

if [ "${TRACTS_ASAN:-}" = 1 ]; then
  RT=$(clang -print-file-name=libclang_rt.asan-x86_64.so)
  # Python itself keeps memory until exit: leaks are checked by valgrind
  # on the plain build instead.
  export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:halt_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  UNIT=build/asan/unit
else
  UNIT=build/unit
fi

echo "== unit ($UNIT)"
"$UNIT" > "$OUT/unit.log" 2>&1
cat "$OUT/unit.log"
add "$OUT/unit.log"

[ "${TRACTS_ASAN:-}" = 1 ] && export LD_PRELOAD="$RT"

# pyfile NAME FILE: run a Python test file, fold its result line in.
pyfile() {
  echo "== $1 ($EXT)"
  "$PY" "$2" "$EXT" > "$OUT/$1.log" 2>&1
  rc=$?
  grep -v "ShapelyDeprecationWarning\|tree = STRtree" "$OUT/$1.log"
  add "$OUT/$1.log"
  if [ $rc -ne 0 ] && ! grep -q "failed, " "$OUT/$1.log"; then
    echo "$1 tests crashed (exit $rc)"; fail=$((fail + 1))
  fi
  if grep -q "ERROR: AddressSanitizer\|runtime error:" "$OUT/$1.log"; then
    echo "sanitizer report in $1 tests"; fail=$((fail + 1))
  fi
}
pyfile python tests/test_tracts.py
pyfile monitor tests/test_monitor.py
pyfile fetch tests/test_fetch.py
pyfile layers tests/test_layers.py
pyfile real tests/test_real.py
unset LD_PRELOAD

if [ "${TRACTS_ASAN:-}" != 1 ]; then
  echo "== valgrind: load/unload cycles"
  if command -v valgrind >/dev/null; then
    sh tests/valgrind.sh "$EXT" > "$OUT/valgrind.log" 2>&1
    cat "$OUT/valgrind.log"
    add "$OUT/valgrind.log"
  else
    echo "valgrind: 0 passed, 0 failed, 1 skipped" | tee "$OUT/valgrind.log"
    add "$OUT/valgrind.log"
  fi
fi

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
