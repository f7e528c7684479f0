#!/bin/sh
# make bench: build what the benchmark needs, then bench/bench.py,
# bench/fetch_bench.py (on 181 MB of zips, the size of the real files) and
# bench/layers_bench.py (several boundary layers in one tracts_assign pass).
set -e
cd "$(dirname "$0")/.."
make --no-print-directory all tools build/pipbench build/geos_baseline >/dev/null
/usr/bin/python3 bench/bench.py "$@"
/usr/bin/python3 bench/fetch_bench.py --vertices 325 "$@"   # unless --only leaves out fetch
/usr/bin/python3 bench/layers_bench.py "$@"   # unless --only leaves out layers
