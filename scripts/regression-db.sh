#!/usr/bin/env bash
# PostgreSQL's own regression database, restored by pgkeep and judged
# against pg_dump | pg_restore of the same database (issue #13). Not part of
# the default test run: it builds PostgreSQL's regression driver and runs
# the regression suite (several minutes on 2 cores).
#
#   scripts/regression-db.sh
#
# 1. Fetches the source of the server's version from Debian's source
#    package (deb.debian.org; the same major's bookworm version when the
#    exact one is not served) and builds only what `make installcheck`
#    needs (pg_regress, regress.so).
# 2. Starts a throwaway cluster with the system's server binaries and runs
#    `make installcheck-parallel` against it: the `regression` database it
#    leaves behind has ~960 relations and nearly every object kind, written
#    by the PostgreSQL developers. Some regression tests fail against a
#    cluster not set up as the suite expects; the database stays anyway.
# 3. Restores it into the same cluster twice: `pgkeep backup` + `pgkeep
#    restore` into `by_pgkeep`, and `pg_dump -Fc` + `pg_restore` into
#    `by_pg_restore` (its error count is printed). The cluster's pg_dump of
#    the source and of each restore are compared (schema exactly, data as
#    sorted lines): source vs pg_restore's, source vs pgkeep's, and the two
#    restores; each diff is left in target/regression-db/ and its size
#    printed.
#
# Environment: PGKEEP_PG_BIN (server binaries, default the newest
# /usr/lib/postgresql/<major>/bin), PGKEEP_REGRESS_CACHE (default
# target/regression-db). Exits 0 when both restores ran (the diff is the
# result to read), non-zero when a step could not run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=${PGKEEP_REGRESS_CACHE:-$ROOT/target/regression-db}
BIN=${PGKEEP_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)}
VERSION=$("$BIN/postgres" --version | awk '{print $3}')
MAJOR=${VERSION%%.*}
mkdir -p "$CACHE"
say() { echo "== $*"; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# --- 1. the source of the server's version, and the regression driver ------
# The server's exact version when the archive serves it, else the version
# of the same major in bookworm's source index (a minor release keeps the
# server's ABI, so regress.so loads; a few expected outputs may differ).
source_version() {
  local v=$VERSION url=http://deb.debian.org/debian/pool/main/p/postgresql-$MAJOR
  if curl -fsSI "$url/postgresql-${MAJOR}_$v.orig.tar.bz2" >/dev/null 2>&1; then echo "$v"; return; fi
  curl -fsS -o "$CACHE/Sources.xz" http://deb.debian.org/debian/dists/bookworm/main/source/Sources.xz &&
    xz -dc "$CACHE/Sources.xz" |
    awk -v p="postgresql-$MAJOR" '$1 == "Package:" {f = ($2 == p)} f && !done && $1 == "Version:" {sub(/-.*/, "", $2); print $2; done = 1}'
}
SRC_VERSION=${PGKEEP_REGRESS_SOURCE:-$(source_version)}
[ -n "$SRC_VERSION" ] || { echo "no Debian source package of PostgreSQL $MAJOR" >&2; exit 1; }
SRC=$CACHE/postgresql-$SRC_VERSION
if [ ! -x "$SRC/src/test/regress/pg_regress" ]; then
  tarball=$CACHE/postgresql-${MAJOR}_$SRC_VERSION.orig.tar.bz2
  if [ ! -s "$tarball" ]; then
    url=http://deb.debian.org/debian/pool/main/p/postgresql-$MAJOR/postgresql-${MAJOR}_$SRC_VERSION.orig.tar.bz2
    say "fetching $url"
    curl -fsS -o "$tarball" "$url" || { echo "cannot fetch $url" >&2; exit 1; }
  fi
  rm -rf "$SRC" && tar -xjf "$tarball" -C "$CACHE"
  say "building pg_regress and regress.so ($SRC)"
  (cd "$SRC" && ./configure --quiet --without-readline --without-zlib --without-icu \
      --without-openssl --without-llvm >"$CACHE/configure.log" 2>&1 &&
    make -s -C src/backend generated-headers >"$CACHE/build.log" 2>&1 &&
    make -s -C src/port >>"$CACHE/build.log" 2>&1 &&
    make -s -C src/common >>"$CACHE/build.log" 2>&1 &&
    make -s -C src/test/regress >>"$CACHE/build.log" 2>&1) ||
    { echo "build failed: see $CACHE/build.log" >&2; exit 1; }
fi
chmod -R a+rX "$CACHE"

# --- 2. a throwaway cluster and the regression suite ------------------------
WORK=$(mktemp -d /tmp/pgkeep-regress.XXXXXX) && chmod 755 "$WORK"
[ "$(id -u)" = 0 ] && chown postgres "$WORK"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
as_pg "$BIN/initdb" -D "$WORK/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >/dev/null
as_pg "$BIN/pg_ctl" -D "$WORK/data" -l "$WORK/log" -w -o \
  "-p $PORT -k $WORK -c listen_addresses='' -c fsync=off -c max_prepared_transactions=2" start >/dev/null
trap 'as_pg "$BIN/pg_ctl" -D "$WORK/data" -m immediate -w stop >/dev/null 2>&1; rm -rf "$WORK"' EXIT
export PGHOST=$WORK PGPORT=$PORT PGUSER=postgres
say "make installcheck-parallel ($SRC_VERSION's suite) against PostgreSQL $VERSION (log: $CACHE/installcheck.log)"
# The suite writes its results into the source tree; the server reads
# regress.so from it.
make -C "$SRC/src/test/regress" installcheck-parallel bindir="$BIN" \
  >"$CACHE/installcheck.log" 2>&1 || true
grep -E "^# [0-9]+ of [0-9]+ tests|tests (passed|failed)" "$CACHE/installcheck.log" | tail -n 2 || true
"$BIN/psql" -X -q -d regression -c 'SELECT 1' >/dev/null ||
  { echo "no regression database was left behind" >&2; exit 1; }
"$BIN/psql" -X -At -d regression -c \
  "SELECT count(*) || ' relations' FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"

# --- 3. two restores, compared ---------------------------------------------
cargo build --locked --bin pgkeep >"$CACHE/cargo.log" 2>&1 ||
  { echo "cargo build failed: see $CACHE/cargo.log" >&2; exit 1; }
PGKEEP=${CARGO_TARGET_DIR:-$ROOT/target}/debug/pgkeep
url() { echo "postgres://postgres@/$1?host=$WORK&port=$PORT"; }
rm -rf "$CACHE/repo"
say "pgkeep backup and restore (log: $CACHE/pgkeep.log)"
pgkeep_ok=1
{ "$PGKEEP" backup --db "$(url regression)" --repo "$CACHE/repo" &&
  "$PGKEEP" restore --db "$(url by_pgkeep)" --repo "$CACHE/repo" --create latest; } \
  >"$CACHE/pgkeep.log" 2>&1 || pgkeep_ok=
tail -n 3 "$CACHE/pgkeep.log"
say "pg_dump -Fc and pg_restore (log: $CACHE/pg_restore.log)"
"$BIN/createdb" -T template0 by_pg_restore
"$BIN/pg_dump" -Fc -d regression -f "$CACHE/regression.dump"
"$BIN/pg_restore" -d by_pg_restore "$CACHE/regression.dump" >"$CACHE/pg_restore.log" 2>&1 || true
grep -E "errors ignored on restore" "$CACHE/pg_restore.log" || echo "pg_restore: no errors"
strip='/^(--|\\restrict|\\unrestrict|$)/d; /pg_attver=/d'
for db in regression by_pg_restore by_pgkeep; do
  { "$BIN/pg_dump" --schema-only -d "$db" | sed -E "$strip"
    "$BIN/pg_dump" --data-only -d "$db" | sed -E "$strip" | LC_ALL=C sort; } >"$CACHE/$db.sql" 2>/dev/null || true
done
changed() { grep -c '^[-+][^-+]' "$1" || true; }
diff -u "$CACHE/by_pg_restore.sql" "$CACHE/by_pgkeep.sql" >"$CACHE/diff" || true
diff -u "$CACHE/regression.sql" "$CACHE/by_pg_restore.sql" >"$CACHE/diff-pg_restore" || true
diff -u "$CACHE/regression.sql" "$CACHE/by_pgkeep.sql" >"$CACHE/diff-pgkeep" || true
say "pg_dump of the source vs its restore by pg_restore: $(changed "$CACHE/diff-pg_restore") lines differ ($CACHE/diff-pg_restore)"
say "pg_dump of the source vs its restore by pgkeep: $(changed "$CACHE/diff-pgkeep") lines differ ($CACHE/diff-pgkeep)"
say "pg_restore's restore vs pgkeep's: $(changed "$CACHE/diff") lines differ ($CACHE/diff)"
[ -n "$pgkeep_ok" ] || { echo "the pgkeep restore failed: see $CACHE/pgkeep.log" >&2; exit 1; }
