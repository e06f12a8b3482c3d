#!/usr/bin/env bash
# Builds, from Debian's packages and this machine's Rust toolchain, stand-ins for the base images
# that the Dockerfile and docker-compose.yml name, under the same tags, when they cannot be pulled.
# An image already present (built earlier, or pulled) is left alone: a second run builds nothing.
#
#   debian:bookworm-slim      debootstrap --variant=minbase bookworm, imported
#   rust:1.95-slim-bookworm   gcc, libc6-dev, pkg-config, ca-certificates + the machine's 1.95 toolchain
#   postgres:15-bookworm      Debian's postgresql-15 + an entrypoint honouring POSTGRES_USER/PASSWORD/DB
#   haproxy:2.6-bookworm      Debian's haproxy 2.6, run as the official image runs it
#
# Needs root, debootstrap (installed when missing) and the Debian mirror apt is configured with.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
log() { printf '[standins] %s\n' "$*"; }

have() { docker image inspect "$1" >/dev/null 2>&1; }

# Proxy settings, if this machine has any, go to the builds as the predefined build args.
build_args=()
for v in HTTP_PROXY HTTPS_PROXY NO_PROXY http_proxy https_proxy no_proxy; do
  [ -n "${!v:-}" ] && build_args+=(--build-arg "$v")
done

mirror() {
  # The first deb URI of the main archive apt uses here (deb822 or one-line sources).
  local uri
  uri=$(grep -hE '^\s*URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)
  [ -n "$uri" ] || uri=$(grep -hE '^\s*deb\s' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

build_debian() {
  local tag=debian:bookworm-slim
  if have "$tag"; then log "$tag: present"; return; fi
  log "$tag: cannot be pulled here; building a stand-in with debootstrap (about 2 minutes)"
  command -v debootstrap >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
  local dir; dir=$(mktemp -d /var/tmp/standin-debian.XXXXXX)
  debootstrap --variant=minbase bookworm "$dir/root" "$(mirror)" >"$dir/debootstrap.log" 2>&1 \
    || { tail -n 20 "$dir/debootstrap.log"; exit 1; }
  # As the official slim image: deb822 sources with updates and security, no docs, no lists.
  rm -f "$dir/root/etc/apt/sources.list"
  cat >"$dir/root/etc/apt/sources.list.d/debian.sources" <<'SOURCES'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
  rm -rf "$dir/root"/var/cache/apt/archives/*.deb "$dir/root"/var/lib/apt/lists/* \
         "$dir/root"/usr/share/doc/* "$dir/root"/usr/share/man/* "$dir/root"/usr/share/locale/*
  tar --numeric-owner -C "$dir/root" -c . | docker import -c 'CMD ["bash"]' - "$tag" >/dev/null
  rm -rf "$dir"
  log "$tag: built"
}

build_rust() {
  local tag=rust:1.95-slim-bookworm
  if have "$tag"; then log "$tag: present"; return; fi
  log "$tag: cannot be pulled here; building a stand-in from this machine's Rust 1.95 toolchain"
  local sysroot
  sysroot=$(rustup run 1.95.0 rustc --print sysroot 2>/dev/null || rustc --print sysroot)
  case "$("$sysroot/bin/rustc" --version)" in
    "rustc 1.95."*) ;;
    *) echo "the machine's toolchain at $sysroot is not Rust 1.95" >&2; exit 1 ;;
  esac
  local dir; dir=$(mktemp -d /var/tmp/standin-rust.XXXXXX)
  mkdir -p "$dir/toolchain" "$dir/extra-ca"
  # The toolchain without its documentation (share/doc is most of its size).
  tar -C "$sysroot" --exclude=./share/doc -c . | tar -C "$dir/toolchain" -x
  cp "$(command -v rustup)" "$dir/rustup"
  # The machine's own trusted certificates (e.g. its registry proxy's CA), for cargo's fetches.
  if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$dir/extra-ca/"
  fi
  cp "$here/rust.Dockerfile" "$dir/Dockerfile"
  docker build -q --network host "${build_args[@]}" -t "$tag" "$dir" >/dev/null
  rm -rf "$dir"
  log "$tag: built"
}

# The stand-in's recipe, hashed: a stand-in built from an older recipe (an image cache survives
# between runs on one machine) is rebuilt, never silently reused.
postgres_recipe() { cat "$here/postgres.Dockerfile" "$here/docker-entrypoint.sh" | sha256sum | cut -c1-16; }

# A postgres:15-bookworm that is a stand-in of another recipe: built here (it has no PG_MAJOR,
# which the official image sets) without this recipe's label.
stale_postgres() {
  local tag=postgres:15-bookworm
  have "$tag" || return 1
  local label env
  label=$(docker image inspect -f '{{ index .Config.Labels "jobtracker.standin" }}' "$tag" 2>/dev/null || true)
  env=$(docker image inspect -f '{{ join .Config.Env " " }}' "$tag" 2>/dev/null || true)
  case " $env " in *" PG_MAJOR="*) return 1 ;; esac
  [ "$label" != "$(postgres_recipe)" ]
}

if [ "${1:-}" = "--drop-stale" ]; then
  if stale_postgres; then
    log "postgres:15-bookworm: a stand-in from an older recipe; removing it to rebuild"
    docker image rm -f postgres:15-bookworm >/dev/null
  fi
  exit 0
fi

build_postgres() {
  local tag=postgres:15-bookworm
  if have "$tag"; then log "$tag: present"; return; fi
  log "$tag: cannot be pulled here; building a stand-in from Debian's postgresql-15"
  local dir; dir=$(mktemp -d /var/tmp/standin-postgres.XXXXXX)
  cp "$here/postgres.Dockerfile" "$dir/Dockerfile"
  cp "$here/docker-entrypoint.sh" "$dir/"
  docker build -q --network host "${build_args[@]}" --label "jobtracker.standin=$(postgres_recipe)" \
    -t "$tag" "$dir" >/dev/null
  rm -rf "$dir"
  log "$tag: built"
}

build_haproxy() {
  local tag=haproxy:2.6-bookworm
  if have "$tag"; then log "$tag: present"; return; fi
  log "$tag: cannot be pulled here; building a stand-in from Debian's haproxy"
  local dir; dir=$(mktemp -d /var/tmp/standin-haproxy.XXXXXX)
  cp "$here/haproxy.Dockerfile" "$dir/Dockerfile"
  docker build -q --network host "${build_args[@]}" -t "$tag" "$dir" >/dev/null
  rm -rf "$dir"
  log "$tag: built"
}

start=$(date +%s)
build_debian
build_rust
build_postgres
build_haproxy
log "stand-ins ready in $(( $(date +%s) - start )) s"
