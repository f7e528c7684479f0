#!/bin/sh
# tests/realdata.sh - put real projected shapefiles into build/realdata/
# for tests/test_real.py and test_tracts.py, from Debian packages, without installing R:
#
#   NY8_utm18.{shp,shx,dbf,prj}  r-cran-spdata  (UTM zone 18N, WGS 84)
#   boston_tracts.{...}          r-cran-spdata  (NAD27 lon/lat)
#   nc.{shp,shx,dbf,prj}         r-cran-sf      (NAD27 lon/lat)
#
# The .debs are fetched with `apt-get download` into build/realdata/debs
# (kept there; not fetched again) and unpacked with `dpkg-deb -x`. Nothing
# is done when all the files are already in place. Quiet on success; exits
# non-zero with a message on stderr when a package cannot be had.
set -u
cd "$(dirname "$0")/.." || exit 1
OUT=build/realdata
DEBS=$OUT/debs

# package, directory inside the .deb, shapefile base name
SETS="r-cran-spdata:usr/lib/R/site-library/spData/shapes:NY8_utm18
r-cran-spdata:usr/lib/R/site-library/spData/shapes:boston_tracts
r-cran-sf:usr/lib/R/site-library/sf/shape:nc"
PARTS="shp shx dbf prj"

have_all() {
  for s in $SETS; do
    base=${s##*:}
    for e in $PARTS; do
      [ -s "$OUT/$base.$e" ] || return 1
    done
  done
  return 0
}
have_all && exit 0

mkdir -p "$DEBS" || exit 1

# deb_of PKG: the downloaded .deb of PKG, if any
deb_of() {
  for f in "$DEBS/$1"_*.deb; do
    [ -f "$f" ] && { echo "$f"; return 0; }
  done
  return 1
}

# fetch PKG: apt-get download it into $DEBS (apt-get update once if the
# first try fails, as on a machine whose package lists are missing or old)
updated=0
fetch() {
  deb_of "$1" >/dev/null && return 0
  log=$OUT/apt-get.log
  (cd "$DEBS" && apt-get download -q "$1") >"$log" 2>&1
  if ! deb_of "$1" >/dev/null && [ $updated = 0 ]; then
    updated=1
    apt-get update -qq >>"$log" 2>&1
    (cd "$DEBS" && apt-get download -q "$1") >>"$log" 2>&1
  fi
  if ! deb_of "$1" >/dev/null; then
    echo "realdata.sh: apt-get download $1 failed (see $log):" >&2
    tail -3 "$log" | sed 's/^/  /' >&2
    return 1
  fi
  rm -f "$log"
}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/realdata.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM

for s in $SETS; do
  pkg=${s%%:*}
  rest=${s#*:}
  dir=${rest%:*}
  base=${rest#*:}
  fetch "$pkg" || exit 1
  deb=$(deb_of "$pkg")
  x=$TMP/$pkg
  if ! dpkg-deb -x "$deb" "$x" 2>"$TMP/err"; then
    echo "realdata.sh: dpkg-deb -x $deb failed (removed; run again to" \
         "download it again): $(cat "$TMP/err")" >&2
    rm -f "$deb"
    exit 1
  fi
  for e in $PARTS cpg; do
    f=$x/$dir/$base.$e
    if [ -f "$f" ]; then
      cp "$f" "$OUT/$base.$e" || exit 1
    elif [ "$e" != cpg ]; then
      echo "realdata.sh: $pkg has no $dir/$base.$e" >&2
      exit 1
    fi
  done
done
have_all || { echo "realdata.sh: files missing after unpacking" >&2; exit 1; }
exit 0
