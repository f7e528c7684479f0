-- examples/demo.sql - the job tracts does, as a scripted SQL batch:
--
--   sqlite3 build/demo/demo.db < examples/demo.sql
--
-- The database already holds a table points(id, lon, lat) (examples/demo.sh
-- makes it, and serves the census tract zips from a local mirror named by
-- TRACTS_BASE_URL; without that setting they come from www2.census.gov).
.bail on
.load build/tracts
.mode box
.timer off

-- 0. Watch CPU and memory of this process and its helpers while it works.
SELECT monitor_start(0.05) AS monitor;

-- 1. Download Rhode Island's and Massachusetts' tract zips in parallel,
--    verify them, keep them in the cache and load them (one row per state).
--    A second run revalidates the cache (HTTP 304) instead of downloading.
SELECT state, status, bytes, from_cache, tracts, round(seconds, 2) AS seconds,
       error
  FROM fetch_tracts('RI,MA');
SELECT substr(url, instr(url, 'cb_')) AS cached_file, bytes,
       substr(sha256, 1, 12) AS sha256
  FROM tracts_cache ORDER BY 1;

-- 2. Attach a tract to every point: the parallel join on forked helpers
--    creates points_tract(id, geoid, how) in one transaction.
.timer on
SELECT tracts_assign('points', 'lon', 'lat', 'points_tract') AS rows_written;
.timer off
SELECT how, count(*) AS points FROM points_tract GROUP BY how ORDER BY 2 DESC;

-- 3. A short summary.
SELECT count(*) AS points,
       count(geoid) AS in_a_tract,
       count(*) - count(geoid) AS outside,
       count(DISTINCT geoid) AS tracts_used
  FROM points_tract;

SELECT substr(geoid, 1, 2) AS state, count(*) AS points
  FROM points_tract WHERE geoid IS NOT NULL
 GROUP BY 1 ORDER BY 2 DESC;

SELECT geoid, count(*) AS points
  FROM points_tract WHERE geoid IS NOT NULL
 GROUP BY geoid ORDER BY points DESC LIMIT 5;

-- 4. Other boundary layers: the counties (one national file), assigned
--    with the tracts in one pass over the points.
SELECT state, status, features, error FROM fetch_boundaries('counties', '*');
SELECT tracts_assign('points', 'lon', 'lat', 'points_geo', NULL,
                     'tracts,counties') AS rows_written;
SELECT counties AS county, count(*) AS points, count(DISTINCT tracts) AS tracts
  FROM points_geo WHERE counties IS NOT NULL
 GROUP BY 1 ORDER BY 2 DESC LIMIT 5;

-- 5. Stop the monitor and chart it next to the database.
SELECT monitor_stop() AS samples;
SELECT round(max(cpu_pct)) AS peak_cpu_pct,
       round(max(rss_bytes + children_pss_bytes) / 1048576.0) AS peak_mib
  FROM monitor_samples;
SELECT monitor_plot('build/demo/usage.png', 'tracts demo: load, index, join') AS chart;

-- 6. One point by hand, and the files behind the answers.
SELECT id, lon, lat, tract_of(lon, lat) AS tract,
       boundary_of('counties', lon, lat) AS county FROM points WHERE id = 1;
SELECT layer, state, substr(file, instr(file, 'cb_')) AS file, year, tracts,
       substr(sha256, 1, 12) AS sha256
  FROM tracts_files ORDER BY layer, state;
