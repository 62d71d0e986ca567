#!/usr/bin/env bash
# Build the code_interpreter sandbox image offline-from-registry: Debian packages via debootstrap,
# then `docker import`. Same contents and tag as sandbox/image/Dockerfile (which needs a registry).
#
#   .ci/build-sandbox-image.sh [TAG]        # default TAG: agent-sandbox:latest
#
# Idempotent: exits 0 at once if TAG exists (FORCE=1 rebuilds). Cached under $CACHE_DIR
# (/var/cache/agent-sandbox): the downloaded .debs (debootstrap --make-tarball) and the finished
# rootfs tarball, so a second build after `docker rmi` is just an import.
set -euo pipefail

TAG="${1:-agent-sandbox:latest}"
CACHE_DIR="${CACHE_DIR:-/var/cache/agent-sandbox}"
SUITE=bookworm
PACKAGES="python3,python3-numpy,python3-pandas,python3-matplotlib,python3-scipy,python3-sympy,python3-pil,tini,ca-certificates"

log() { printf '[build-sandbox-image] %s\n' "$*" >&2; }

if [[ "${FORCE:-0}" != 1 ]] && docker image inspect "$TAG" >/dev/null 2>&1; then
    log "$TAG already present"
    exit 0
fi

# Debian mirror: whatever apt on this machine uses (deb822 or one-line sources).
mirror() {
    local uri
    uri=$(grep -rhsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
        | grep -E '/debian/?( |$)' | grep -v security | head -n1 \
        | sed -E 's/^URIs:[[:space:]]*//; s/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?//; s/[[:space:]].*$//')
    echo "${uri:-http://deb.debian.org/debian}"
}
MIRROR="${MIRROR:-$(mirror)}"

# Post-install recipe (runs in the chroot). Its hash keys the rootfs cache.
read -r -d '' SETUP <<'EOF' || true
set -e
mkdir -p /mnt/data /run/k /opt/mplconfig
chown 65534:65534 /mnt/data /run/k
chmod 0700 /mnt/data
MPLCONFIGDIR=/opt/mplconfig MPLBACKEND=Agg python3 -c \
    'import matplotlib.pyplot as plt, matplotlib.font_manager as fm; fm.findfont("DejaVu Sans"); plt.plot([1,2]); plt.savefig("/tmp/x.png")'
rm -f /tmp/x.png
chmod -R a+rX /opt/mplconfig
# Compilers and -dev packages come in only through python3-pythran (scipy's build-time helper).
TRIM="python3-pythran python3-beniget python3-gast g++ g++-12 gcc gcc-12 cpp cpp-12 libboost1.74-dev
      libboost-dev libopenblas-pthread-dev libopenblas-dev libblas-dev liblapack-dev libstdc++-12-dev
      libgcc-12-dev libc6-dev linux-libc-dev libc-dev-bin libexpat1-dev zlib1g-dev python3-dev python3.11-dev
      libpython3-dev libpython3.11-dev python3-all-dev python3-all python3-all-dev libjs-jquery-ui
      python3-numpy-dev libperl5.36 perl perl-modules-5.36 binutils binutils-common
      binutils-x86-64-linux-gnu libbinutils libctf0 libctf-nobfd0 libgprofng0 libisl23
      libcc1-0 libitm1 libasan8 liblsan0 libtsan2 libubsan1"
PRESENT=$(for p in $TRIM; do dpkg-query -W -f='${Package}\n' "$p" 2>/dev/null || true; done)
[ -z "$PRESENT" ] || dpkg --purge --force-depends $PRESENT >/dev/null
python3 -c 'import numpy, pandas, matplotlib.pyplot, scipy.optimize, scipy.stats, sympy, PIL.Image'
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/share/doc/* /usr/share/man/* /usr/share/info/* \
    /var/log/*.log /var/log/apt/* /tmp/*
find /usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'C.*' -exec rm -rf {} +
EOF

KEY=$(printf '%s\n%s\n%s\n' "$SUITE" "$PACKAGES" "$SETUP" | sha256sum | cut -c1-16)
DEBS="$CACHE_DIR/debs-$SUITE-$(printf '%s' "$PACKAGES" | sha256sum | cut -c1-16).tgz"
ROOTFS_TAR="$CACHE_DIR/rootfs-$KEY.tar"
mkdir -p "$CACHE_DIR"
exec 9>"$CACHE_DIR/.lock"
flock 9  # one build at a time; a concurrent run finds the image afterwards
if [[ "${FORCE:-0}" != 1 ]] && docker image inspect "$TAG" >/dev/null 2>&1; then
    log "$TAG already present"
    exit 0
fi

if [[ ! -s "$ROOTFS_TAR" ]]; then
    if ! command -v debootstrap >/dev/null; then
        log "installing debootstrap"
        apt-get install -y -q debootstrap >&2 || { apt-get update -q >&2 && apt-get install -y -q debootstrap >&2; }
    fi
    WORK=$(mktemp -d /var/tmp/agent-sandbox-build.XXXXXX)
    cleanup() {
        for m in proc sys dev; do mountpoint -q "$WORK/rootfs/$m" 2>/dev/null && umount -l "$WORK/rootfs/$m"; done
        rm -rf "$WORK"
    }
    trap cleanup EXIT
    if [[ ! -s "$DEBS" ]]; then
        log "downloading packages from $MIRROR"
        debootstrap --variant=minbase --include="$PACKAGES" --make-tarball="$DEBS.part" \
            "$SUITE" "$WORK/dl" "$MIRROR" >&2
        mv "$DEBS.part" "$DEBS"
    fi
    log "installing rootfs from $DEBS"
    debootstrap --variant=minbase --include="$PACKAGES" --unpack-tarball="$DEBS" \
        "$SUITE" "$WORK/rootfs" "$MIRROR" >&2
    chroot "$WORK/rootfs" /bin/sh -c "$SETUP" >&2
    log "packing rootfs"
    tar --numeric-owner --xattrs -C "$WORK/rootfs" -cf "$ROOTFS_TAR.part" .
    mv "$ROOTFS_TAR.part" "$ROOTFS_TAR"
    # Keep only the current rootfs tarball.
    find "$CACHE_DIR" -maxdepth 1 -name 'rootfs-*.tar' ! -path "$ROOTFS_TAR" -delete
fi

log "importing $ROOTFS_TAR as $TAG"
docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PYTHONDONTWRITEBYTECODE=1' \
    --change 'ENV PYTHONUNBUFFERED=1' \
    --change 'ENV MPLBACKEND=Agg' \
    --change 'ENV MPLCONFIGDIR=/tmp/mpl' \
    --change 'ENV OPENBLAS_NUM_THREADS=1' \
    --change 'USER 65534:65534' \
    --change 'WORKDIR /mnt/data' \
    --change 'ENTRYPOINT ["/usr/bin/tini", "--"]' \
    --change 'CMD ["python3"]' \
    --change 'LABEL org.opencontainers.image.title=agent-sandbox' \
    - "$TAG" < "$ROOTFS_TAR" >/dev/null
log "done: $TAG"
