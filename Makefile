# tracts - SQLite extension attaching US Census tracts to points.
#
#   make            build build/tracts.so
#   make deps       install the Debian packages it needs (apt-get, as root)
#   make test       deps + build + every test, plain and ASan/UBSan builds;
#                   ends "N passed, N failed, N skipped"
#   make test-plain only the plain build
#   make asan-test  only the ASan/UBSan build
#   make demo       deps + build + examples/demo.sql end to end, offline
#   make fuzz / fuzz-index  libFuzzer: the zip reader / the saved-index check
#   make bench      national-scale benchmark and downloads (not part of the
#                   tests; bench/run.sh --runs 3 --big)
#   make install    copy the extension to $(PREFIX)/lib
#   make clean

CC      ?= cc
PREFIX  ?= /usr/local
BUILD   ?= build
PKGS    := libzip geos shapelib libcrypto cairo libcurl proj sqlite3
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra $(if $(CI),-Werror,)
XCFLAGS := -fPIC -fvisibility=hidden -std=gnu11 -D_GNU_SOURCE $(WARN) \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# The extension links its libraries but never libsqlite3.
XLIBS   := $(shell pkg-config --libs libzip geos shapelib libcrypto cairo libcurl proj 2>/dev/null) \
           -ldeflate -lgeos_c -lpthread -lm

SRC     := ext/main.c ext/config.c ext/geom.c ext/shpzip.c ext/layer.c ext/registry.c \
           ext/pip.c ext/lookup.c ext/assign.c ext/monitor.c ext/fetch.c
HDR     := ext/tracts_int.h ext/tracts_sql.h ext/census_states.h ext/census_layers.h include/tracts.h

DEB_BUILD := gcc make pkg-config libsqlite3-dev sqlite3 libzip-dev \
             libshp-dev libgeos-dev libssl-dev libcairo2-dev \
             libcurl4-openssl-dev libproj-dev proj-data libdeflate-dev
DEB_TEST  := python3 python3-shapely python3-gdal libsqlite3-mod-spatialite \
             gdal-bin clang valgrind python3-geopandas
DEB_BENCH := postgresql-15 postgresql-15-postgis-3 \
             python3-psycopg2

.PHONY: all deps deps-test deps-bench test test-plain asan-test fuzz fuzz-index demo bench install clean tools

all: $(BUILD)/tracts.so

$(BUILD)/tracts.so: $(SRC) $(HDR) Makefile
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) $(XCFLAGS) -shared -o $@ $(SRC) $(XLIBS)
	@nm -D --defined-only $@ | grep -q ' sqlite3_tracts_init$$'
	@! nm -D --undefined-only $@ | grep -q ' sqlite3_[a-z_]*$$' || \
	  (echo "tracts.so must not link libsqlite3"; exit 1)

$(BUILD)/asan/tracts.so: $(SRC) $(HDR) Makefile
	@mkdir -p $(BUILD)/asan
	clang -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
	  -fno-sanitize-recover=undefined $(XCFLAGS) -shared -o $@ $(SRC) $(XLIBS)

tools: $(BUILD)/gentracts $(BUILD)/genpoints

$(BUILD)/gentracts: tools/gentracts.c tools/states.h tools/common.h ext/census_states.h
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) $(WARN) -o $@ $< $(shell pkg-config --cflags --libs shapelib libzip) -lm

$(BUILD)/genpoints: tools/genpoints.c tools/states.h tools/common.h ext/census_states.h
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) $(WARN) -o $@ $< $(shell pkg-config --cflags --libs sqlite3) -lm

$(BUILD)/unit: tests/unit.c ext/geom.c ext/pip.c ext/tracts_int.h
	$(CC) $(CFLAGS) $(XCFLAGS) -o $@ tests/unit.c ext/geom.c ext/pip.c \
	  -lgeos_c -lm

# Install what is missing, once; needs root and the Debian package mirror.
deps:
	@sh tests/deps.sh $(DEB_BUILD)
deps-test: deps
	@sh tests/deps.sh $(DEB_TEST)
deps-bench: deps-test
	@sh tests/deps.sh $(DEB_BENCH)

# The README's test command: plain build (with valgrind) and ASan/UBSan.
test: deps-test
	@sh tests/deps.sh clang valgrind
	@$(MAKE) --no-print-directory all tools $(BUILD)/unit \
	  $(BUILD)/asan/tracts.so $(BUILD)/asan/unit
	@sh tests/all.sh

test-plain: deps-test
	@$(MAKE) --no-print-directory all tools $(BUILD)/unit
	@sh tests/run.sh $(BUILD)/tracts.so

asan-test: deps-test
	@sh tests/deps.sh clang
	@$(MAKE) --no-print-directory $(BUILD)/asan/tracts.so $(BUILD)/asan/unit tools
	@TRACTS_ASAN=1 sh tests/run.sh $(BUILD)/asan/tracts.so

demo: deps-test
	@$(MAKE) --no-print-directory all tools
	@sh examples/demo.sh

bench: deps-bench
	@sh bench/run.sh --runs 3 --big

install: all
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include
	install -m 0644 $(BUILD)/tracts.so $(DESTDIR)$(PREFIX)/lib/tracts.so
	install -m 0644 include/tracts.h $(DESTDIR)$(PREFIX)/include/tracts.h

clean:
	rm -rf $(BUILD)

$(BUILD)/asan/unit: tests/unit.c ext/geom.c ext/pip.c ext/tracts_int.h
	@mkdir -p $(BUILD)/asan
	clang -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
	  -fno-sanitize-recover=undefined $(XCFLAGS) -o $@ tests/unit.c \
	  ext/geom.c ext/pip.c -lgeos_c -lm

$(BUILD)/geos_baseline: bench/peers/geos_baseline.c
	$(CC) -O2 -o $@ $< $(shell pkg-config --cflags --libs sqlite3 geos libcrypto) -lm

$(BUILD)/pipbench: bench/pipbench.c ext/geom.c ext/pip.c ext/tracts_int.h
	$(CC) $(CFLAGS) $(XCFLAGS) -o $@ bench/pipbench.c ext/geom.c ext/pip.c \
	  $(shell pkg-config --libs sqlite3) -lgeos_c -lm

# libFuzzer harness for the zip/shapefile reader (tests/fuzz_zip.c).
$(BUILD)/fuzz_zip: tests/fuzz_zip.c ext/shpzip.c ext/geom.c ext/pip.c ext/tracts_int.h
	clang -O1 -g -fsanitize=fuzzer,address,undefined $(XCFLAGS) -o $@ \
	  tests/fuzz_zip.c ext/shpzip.c ext/geom.c ext/pip.c \
	  $(shell pkg-config --libs libzip shapelib libcrypto proj) -ldeflate -lgeos_c -lpthread -lm

# libFuzzer harness for the saved-index check (tests/fuzz_index.c).
$(BUILD)/fuzz_index: tests/fuzz_index.c ext/pip.c ext/tracts_int.h
	clang -O1 -g -fsanitize=fuzzer,address,undefined $(XCFLAGS) -o $@ \
	  tests/fuzz_index.c ext/pip.c -lpthread -lm

fuzz-index: deps-test
	@sh tests/deps.sh clang
	@$(MAKE) --no-print-directory $(BUILD)/fuzz_index
	@mkdir -p $(BUILD)/fuzz-index-corpus
	cd $(BUILD) && ./fuzz_index -max_total_time=$${FUZZ_SECONDS:-60} \
	  -timeout=5 -max_len=4096 fuzz-index-corpus

fuzz: deps-test
	@sh tests/deps.sh clang
	@$(MAKE) --no-print-directory $(BUILD)/fuzz_zip
	@mkdir -p $(BUILD)/fuzz-corpus
	cd $(BUILD) && LSAN_OPTIONS=suppressions=../tests/lsan.supp \
	  ASAN_OPTIONS=fast_unwind_on_malloc=0 \
	  ./fuzz_zip -max_total_time=$${FUZZ_SECONDS:-60} -max_len=65536 \
	  fuzz-corpus ../tests/fuzz-seeds
