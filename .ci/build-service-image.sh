#!/usr/bin/env bash
# Build the service's own image (top-level Dockerfile) on a machine without a registry: first an offline
# base made from Debian packages (debootstrap bookworm minbase + python3 + venv, then `docker import`),
# then `docker build --build-arg BASE=<that base>`; Python packages come from PyPI inside the build.
# With a registry, plain `docker build .` uses python:3.11-slim instead and gives the same image contents.
#
#   .ci/build-service-image.sh            # prints the service image's tag (agent:src-<hash of the sources>)
#
# Idempotent and cached: the base rootfs under $CACHE_DIR (/var/cache/agent-image) and as the image
# $BASE_TAG; the service image is tagged by a hash of what goes into it, so an unchanged tree builds
# nothing. FORCE=1 rebuilds both.
#
# TLS: when this machine trusts certificate authorities that Debian's bundle lacks (a TLS-inspecting
# proxy), they are added to the base (update-ca-certificates), so pip inside the build trusts what the
# build machine trusts. The base keeps them; the registry build (python:3.11-slim) does not have them.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_TAG="${BASE_TAG:-agent-python-base:bookworm}"
IMAGE_REPO="${IMAGE_REPO:-agent}"
CACHE_DIR="${CACHE_DIR:-/var/cache/agent-image}"
SUITE=bookworm
PACKAGES="python3,python3-venv,ca-certificates"
HOST_CA=/etc/ssl/certs/ca-certificates.crt

log() { printf '[build-service-image] %s\n' "$*" >&2; }

mirror() {
    local uri
    uri=$(grep -rhsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
        | grep -E '/debian/?( |$)' | grep -v security | head -n1 \
        | sed -E 's/^URIs:[[:space:]]*//; s/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?//; s/[[:space:]].*$//')
    echo "${uri:-http://deb.debian.org/debian}"
}

# Post-install recipe (runs in the chroot). Its hash keys the rootfs cache.
read -r -d '' SETUP <<'EOF' || true
set -e
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then update-ca-certificates >/dev/null; fi
python3 -m venv /tmp/venv-check && /tmp/venv-check/bin/python -c 'import ensurepip, ssl'
rm -rf /tmp/venv-check
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/share/doc/* /usr/share/man/* /usr/share/info/* \
    /var/log/*.log /var/log/apt/* /tmp/*
find /usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'C.*' -exec rm -rf {} +
EOF

# Certificates this machine trusts beyond what the rootfs bundle has (PEM blocks, one per file).
extra_cas() {  # $1: rootfs
    python3 - "$HOST_CA" "$1/etc/ssl/certs/ca-certificates.crt" "$1/usr/local/share/ca-certificates" <<'PY'
import re, sys, pathlib
pem = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)
def blocks(p):
    try:
        return pem.findall(pathlib.Path(p).read_text(errors="replace"))
    except OSError:
        return []
have = {"".join(b.split()) for b in blocks(sys.argv[2])}
out = pathlib.Path(sys.argv[3])
n = 0
for b in blocks(sys.argv[1]):
    if "".join(b.split()) not in have:
        n += 1
        (out / f"build-host-{n}.crt").write_text(b + "\n")
print(n)
PY
}

build_base() {
    local host_ca_sum key debs rootfs_tar
    host_ca_sum=$( (sha256sum "$HOST_CA" 2>/dev/null || echo none) | cut -c1-16)
    key=$(printf '%s\n%s\n%s\n%s\n' "$SUITE" "$PACKAGES" "$SETUP" "$host_ca_sum" | sha256sum | cut -c1-16)
    debs="$CACHE_DIR/debs-$SUITE-$(printf '%s' "$PACKAGES" | sha256sum | cut -c1-16).tgz"
    rootfs_tar="$CACHE_DIR/base-$key.tar"
    if [[ "${FORCE:-0}" != 1 ]] && [[ "$(docker image inspect -f '{{index .Config.Labels "agent.base-key"}}' \
        "$BASE_TAG" 2>/dev/null)" == "$key" ]]; then
        return 0
    fi
    if [[ ! -s "$rootfs_tar" ]]; then
        command -v debootstrap >/dev/null || apt-get install -y -q debootstrap >&2 \
            || { apt-get update -q >&2 && apt-get install -y -q debootstrap >&2; }
        local mirror_url work
        mirror_url="${MIRROR:-$(mirror)}"
        work=$(mktemp -d /var/tmp/agent-image-build.XXXXXX)
        # shellcheck disable=SC2064
        trap "for m in proc sys dev; do mountpoint -q '$work/rootfs/\$m' 2>/dev/null && umount -l '$work/rootfs/\$m'; done; rm -rf '$work'" EXIT
        if [[ ! -s "$debs" ]]; then
            log "downloading packages from $mirror_url"
            debootstrap --variant=minbase --include="$PACKAGES" --make-tarball="$debs.part" \
                "$SUITE" "$work/dl" "$mirror_url" >&2
            mv "$debs.part" "$debs"
        fi
        log "installing rootfs from $debs"
        debootstrap --variant=minbase --include="$PACKAGES" --unpack-tarball="$debs" \
            "$SUITE" "$work/rootfs" "$mirror_url" >&2
        log "certificate authorities added from this machine: $(extra_cas "$work/rootfs")"
        chroot "$work/rootfs" /bin/sh -c "$SETUP" >&2
        tar --numeric-owner --xattrs -C "$work/rootfs" -cf "$rootfs_tar.part" .
        mv "$rootfs_tar.part" "$rootfs_tar"
        find "$CACHE_DIR" -maxdepth 1 -name 'base-*.tar' ! -path "$rootfs_tar" -delete
        rm -rf "$work"
        trap - EXIT
    fi
    log "importing $rootfs_tar as $BASE_TAG"
    docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change "ENV PIP_CERT=$HOST_CA" \
        --change "LABEL agent.base-key=$key" \
        --change 'CMD ["python3"]' \
        - "$BASE_TAG" <"$rootfs_tar" >/dev/null
}

mkdir -p "$CACHE_DIR"
exec 9>"$CACHE_DIR/.lock"
flock 9 # one build at a time; a concurrent run finds the images afterwards
build_base

base_id=$(docker image inspect -f '{{.Id}}' "$BASE_TAG")
src_hash=$( {
    echo "$base_id"
    find Dockerfile .dockerignore pyproject.toml README.md agent sandbox -type f \
        ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum
} | sha256sum | cut -c1-16)
TAG="$IMAGE_REPO:src-$src_hash"
if [[ "${FORCE:-0}" == 1 ]] || ! docker image inspect "$TAG" >/dev/null 2>&1; then
    log "building $TAG on $BASE_TAG"
    DOCKER_BUILDKIT=0 docker build --build-arg "BASE=$BASE_TAG" -t "$TAG" . >&2
    # keep only this tree's image among the ones this script made
    docker image ls --format '{{.Repository}}:{{.Tag}}' "$IMAGE_REPO" | grep -E ':src-[0-9a-f]{16}$' \
        | grep -vxF "$TAG" | xargs -r docker rmi >/dev/null 2>&1 || true
fi
echo "$TAG"
