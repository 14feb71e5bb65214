#!/usr/bin/env bash
# The test command (README.md, "Run the tests"). On a fresh Debian machine
# with a Rust toolchain it installs what is missing, then runs, stopping at
# the first failure:
#
#   cargo fmt --all --check
#   cargo clippy --locked --all-targets -- -D warnings
#   cargo check of the fuzz targets (fuzz/, RUSTC_BOOTSTRAP=1)
#   cargo test --locked [ARGS...]
#
#   scripts/test.sh                              everything
#   scripts/test.sh s3:: -- --nocapture          arguments go to cargo test as they are
#   PGKEEP_TEST_INSTALL_ONLY=1 scripts/test.sh   install, print versions, exit 0
#
# Installed when missing (checked first, so a ready machine installs
# nothing): PostgreSQL server binaries (apt postgresql), pg_dump/psql
# (postgresql-client), runuser (util-linux, as root), python3, openssl, redis-server,
# chromium, faketime, systemd (systemd-analyze), docker-compose; a `postgres` system user when run as root (initdb
# refuses root; the tests start the server as that user); moto_server (PyPI
# moto[server] in a venv at /opt/pgkeep-moto, linked into /usr/local/bin);
# azurite-blob (npm azurite; nodejs and npm from apt when there is no npm);
# promtool (unpacked from Debian's prometheus .deb into /opt/pgkeep-promtool);
# kubernetes-validate (PyPI, in a venv at /opt/pgkeep-kubeval);
# the rustfmt and clippy toolchain components (rustup).
#
# Runs as root (CI) or as a user with sudo; without either it stops with a
# one-line hint naming what to install.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "== $*"; }
die() { echo "scripts/test.sh: $*" >&2; exit 1; }

# How to run a command as root: directly, through sudo, or not at all.
if [ "$(id -u)" = 0 ]; then
  root=()
elif command -v sudo >/dev/null 2>&1; then
  root=(sudo)
else
  root=(none)
fi
can_root() { [ "${root[*]-}" != none ]; }
as_root() { "${root[@]+"${root[@]}"}" "$@"; }

have() { command -v "$1" >/dev/null 2>&1; }

# --- apt packages: collect everything missing, then one update + install ---
need_apt=()
want() { # want PACKAGE: add it once
  local p
  for p in "${need_apt[@]+"${need_apt[@]}"}"; do [ "$p" = "$1" ] && return 0; done
  need_apt+=("$1")
}
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || want postgresql
have pg_dump || want postgresql-client
have psql || want postgresql-client
# runuser: as root the server runs as postgres (util-linux, /usr/sbin).
[ "$(id -u)" != 0 ] || have runuser || want util-linux
have python3 || want python3
have openssl || want openssl
have redis-server || want redis-server
have chromium || want chromium
have faketime || want faketime
# The deployment recipes' checks (tests/it/recipes.rs): systemd-analyze
# verifies the units, docker-compose (v1, no engine needed) the Compose file.
have systemd-analyze || want systemd
have docker-compose || want docker-compose
# moto_server needs a python3 with venv and ensurepip (Debian: python3-venv).
if ! have moto_server; then
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    want python3; want python3-venv; want python3-pip
  fi
fi
# azurite-blob comes from npm.
if ! have azurite-blob && ! have npm; then
  want nodejs; want npm
fi

if [ ${#need_apt[@]} -gt 0 ]; then
  can_root || die "missing ${need_apt[*]} (not root, no sudo): as root run: apt-get install -y ${need_apt[*]}"
  have apt-get || die "missing ${need_apt[*]} and no apt-get: install the equivalent packages by hand"
  say "installing (apt): ${need_apt[*]}"
  t0=$SECONDS
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
  say "apt install took $((SECONDS - t0)) s"
fi

# pgkeep's test extension (tests/fixtures/pgext: extension configuration
# tables and a security label provider), built with PGXS for the newest
# installed server, whose binaries the tests use, and installed into its
# directories. Needs the server's headers (postgresql-server-dev-<major>).
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
pg_major=$(basename "$(dirname "$pg_bin")")
if [ ! -d "/usr/include/postgresql/$pg_major/server" ] || ! have make || ! have gcc; then
  can_root || die "missing postgresql-server-dev-$pg_major (not root, no sudo): as root run: apt-get install -y postgresql-server-dev-$pg_major make gcc"
  say "installing (apt): postgresql-server-dev-$pg_major make gcc (to build the test extension)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "postgresql-server-dev-$pg_major" make gcc ||
    { as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "postgresql-server-dev-$pg_major" make gcc; }
fi
pgext_sum=$(cat tests/fixtures/pgext/* | sha256sum | cut -d' ' -f1)
pgext_stamp=$("$pg_bin/pg_config" --sharedir)/extension/pgkeep_fixture.sha256
if [ "$(cat "$pgext_stamp" 2>/dev/null)" != "$pgext_sum" ]; then
  can_root || die "the test extension is not installed (not root, no sudo): as root run: make -C tests/fixtures/pgext PG_CONFIG=$pg_bin/pg_config with_llvm=no install"
  say "installing: pgkeep's test extension (tests/fixtures/pgext) for PostgreSQL $pg_major"
  build_dir=$(mktemp -d)
  cp tests/fixtures/pgext/* "$build_dir"
  make -s -C "$build_dir" PG_CONFIG="$pg_bin/pg_config" with_llvm=no >/dev/null
  as_root make -s -C "$build_dir" PG_CONFIG="$pg_bin/pg_config" with_llvm=no install >/dev/null
  echo "$pgext_sum" | as_root tee "$pgext_stamp" >/dev/null
  rm -rf "$build_dir"
fi

# initdb refuses to run as root: as root, the tests (and scripts/cluster.sh)
# start the server as `postgres` (the postgresql package creates it too).
if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
  say "creating the postgres system user"
  useradd --system --create-home postgres
fi

# The S3 tests run against moto_server (PyPI moto[server]) on loopback.
if ! have moto_server; then
  can_root || die "moto_server missing (not root, no sudo): install PyPI moto[server] (pip install 'moto[server]') and put moto_server on PATH"
  say "installing: moto[server] (S3 API server for the tests) into /opt/pgkeep-moto"
  t0=$SECONDS
  as_root python3 -m venv /opt/pgkeep-moto
  as_root /opt/pgkeep-moto/bin/pip install --quiet 'moto[server]'
  as_root ln -sf /opt/pgkeep-moto/bin/moto_server /usr/local/bin/moto_server
  say "moto install took $((SECONDS - t0)) s"
fi

# The Azure tests run against Azurite (npm azurite) on loopback.
if ! have azurite-blob; then
  can_root || die "azurite-blob missing (not root, no sudo): install npm package azurite (npm install -g azurite)"
  say "installing: azurite (Azure Blob API server for the tests)"
  t0=$SECONDS
  as_root npm install -g --silent azurite
  say "azurite install took $((SECONDS - t0)) s"
fi

# promtool checks the documented alert rules, scrape config and metrics
# text: from Debian's prometheus package, unpacked (not installed: that
# would start a Prometheus server) into /opt/pgkeep-promtool.
if ! have promtool; then
  can_root || die "promtool missing (not root, no sudo): install Debian's prometheus package or put promtool on PATH"
  say "installing: promtool (from the prometheus .deb, unpacked) into /opt/pgkeep-promtool"
  t0=$SECONDS
  deb_dir=$(mktemp -d) && chmod 0755 "$deb_dir"   # apt downloads as _apt
  (cd "$deb_dir" && apt-get download prometheus >/dev/null) || { as_root apt-get update -qq && (cd "$deb_dir" && apt-get download prometheus >/dev/null); }
  as_root mkdir -p /opt/pgkeep-promtool
  as_root dpkg -x "$deb_dir"/prometheus_*.deb /opt/pgkeep-promtool
  as_root ln -sf /opt/pgkeep-promtool/usr/bin/promtool /usr/local/bin/promtool
  rm -rf "$deb_dir"
  say "promtool install took $((SECONDS - t0)) s"
fi

# kubernetes-validate (PyPI, with the Kubernetes schemas inside) checks the
# documented Kubernetes manifests offline.
if ! have kubernetes-validate; then
  can_root || die "kubernetes-validate missing (not root, no sudo): pip install kubernetes-validate and put it on PATH"
  say "installing: kubernetes-validate into /opt/pgkeep-kubeval"
  t0=$SECONDS
  as_root python3 -m venv /opt/pgkeep-kubeval
  as_root /opt/pgkeep-kubeval/bin/pip install --quiet kubernetes-validate
  as_root ln -sf /opt/pgkeep-kubeval/bin/kubernetes-validate /usr/local/bin/kubernetes-validate
  say "kubernetes-validate install took $((SECONDS - t0)) s"
fi

have cargo || die "cargo missing: install a Rust toolchain (1.85+, https://rustup.rs)"
# The format and lint steps need the rustfmt and clippy components.
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  have rustup || die "cargo fmt or cargo clippy missing: add the rustfmt and clippy components to the toolchain"
  say "installing: rustup components rustfmt clippy"
  rustup component add rustfmt clippy
fi

# Whatever was installed must now be found.
[ "$(id -u)" != 0 ] || have runuser || die "runuser still not on PATH after installing util-linux"
for c in pg_dump psql python3 openssl redis-server chromium faketime moto_server azurite-blob \
         systemd-analyze docker-compose promtool kubernetes-validate; do
  have "$c" || die "$c still not on PATH after installing"
done
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || die "no /usr/lib/postgresql/*/bin/initdb after installing postgresql"

first() { "$@" 2>/dev/null | grep -m 1 . || true; } # first non-empty line of stdout
say "toolchain: $(cargo --version); $(first cargo fmt --version); $(first cargo clippy --version)"
for bin in /usr/lib/postgresql/*/bin; do
  say "server: $bin ($(first "$bin/postgres" --version))"
done
say "client: $(first pg_dump --version); $(first psql --version)"
say "python3: $(first python3 --version); openssl: $(first openssl version)"
say "redis: $(first redis-server --version)"
say "chromium: $(first chromium --version)"
say "faketime: $(first faketime --version)"
say "recipe checks: $(first systemd-analyze --version); $(first docker-compose --version); $(first promtool --version); kubernetes-validate $(first kubernetes-validate --version)"
say "S3 / Azure test servers: $(command -v moto_server) $(command -v azurite-blob) (azurite $(first azurite-blob --version))"

if [ -n "${PGKEEP_TEST_INSTALL_ONLY:-}" ]; then
  say "PGKEEP_TEST_INSTALL_ONLY set: install done, cargo steps skipped"
  exit 0
fi

say "step: cargo fmt --all --check"
cargo fmt --all --check
say "step: cargo clippy --locked --all-targets -- -D warnings"
cargo clippy --locked --all-targets -- -D warnings
# The fuzz targets are a crate of their own (fuzz/): they must keep
# compiling against the library (a stable toolchain builds them with
# RUSTC_BOOTSTRAP=1, as docs/fuzzing.md says).
say "step: cargo check --locked --manifest-path fuzz/Cargo.toml"
RUSTC_BOOTSTRAP=1 cargo check --locked --manifest-path fuzz/Cargo.toml
say "step: cargo test --locked $*"
cargo test --locked "$@"
say "all steps passed"
