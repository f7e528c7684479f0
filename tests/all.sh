#!/bin/sh
# tests/all.sh - the whole suite twice: against build/tracts.so (with the
# valgrind leak check) and against the ASan/UBSan build. Ends with the
# combined "N passed, N failed, N skipped".
cd "$(dirname "$0")/.."
sh tests/run.sh build/tracts.so | tee build/test-output-plain.log
TRACTS_ASAN=1 sh tests/run.sh build/asan/tracts.so | tee build/test-output-asan.log
p=0 f=0 s=0
for log in build/test-output-plain.log build/test-output-asan.log; do
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
  [ -z "$line" ] && { f=$((f + 1)); continue; }
  set -- $line
  p=$((p + $1)); f=$((f + $3)); s=$((s + ${5:-0}))
done
echo "== all (plain + asan)"
echo "$p passed, $f failed, $s skipped"
[ "$f" -eq 0 ]
