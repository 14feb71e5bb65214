#!/usr/bin/env bash
# End-to-end demo on a fresh machine: start a throwaway cluster, load the
# Pagila sample database, back it up with pgkeep into ./pgkeep-repo, restore
# it into a new database, and check the restored copy against the source.
# psql and pg_dump are used here only to load the sample and as the oracle.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/cluster.sh
fixtures=${PGKEEP_FIXTURES:-$root/../shared/fixtures}

cargo build --release --quiet
pgkeep=$root/target/release/pgkeep
cluster_start
echo "== cluster on port $PGPORT; loading Pagila"
createdb pagila
psql -q -X -v ON_ERROR_STOP=1 -d pagila -f "$fixtures/pagila/pagila-schema.sql" >/dev/null
psql -q -X -v ON_ERROR_STOP=1 -d pagila -f "$fixtures/pagila/pagila-data.sql" >/dev/null

repo=$root/pgkeep-repo
echo "== pgkeep backup -> $repo"
"$pgkeep" backup --db "host=$PGHOST port=$PGPORT user=postgres dbname=pagila" --repo "$repo" --jobs 2
"$pgkeep" list --repo "$repo"
echo "== pgkeep restore latest -> database pagila_restored"
"$pgkeep" restore --repo "$repo" latest --db "host=$PGHOST port=$PGPORT user=postgres dbname=pagila_restored" --create --jobs 2

echo "== check"
pg_dump --schema-only pagila | grep -v '^\\\(un\)\?restrict\|^-- Dumped' > "$CLUSTER_DIR/src.sql"
pg_dump --schema-only pagila_restored | grep -v '^\\\(un\)\?restrict\|^-- Dumped' > "$CLUSTER_DIR/dst.sql"
diff -u "$CLUSTER_DIR/src.sql" "$CLUSTER_DIR/dst.sql" && echo "schema: identical"
digest='SELECT string_agg(format($$%s %s %s$$, c.oid::regclass, (xpath($$/row/n/text()$$, query_to_xml(format($$SELECT count(*) AS n FROM ONLY %s$$, c.oid::regclass), false, true, $$$$)))[1], (xpath($$/row/h/text()$$, query_to_xml(format($$SELECT md5(string_agg(md5(t::text), $$$$,$$$$ ORDER BY md5(t::text))) AS h FROM ONLY %s t$$, c.oid::regclass), false, true, $$$$)))[1]), E$$\n$$ ORDER BY c.oid::regclass::text) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = $$r$$ AND n.nspname = $$public$$'
psql -X -At -d pagila -c "$digest" > "$CLUSTER_DIR/src.data"
psql -X -At -d pagila_restored -c "$digest" > "$CLUSTER_DIR/dst.data"
diff -u "$CLUSTER_DIR/src.data" "$CLUSTER_DIR/dst.data" && echo "data: $(wc -l < "$CLUSTER_DIR/src.data") tables, identical row counts and digests"
echo "== demo OK"
