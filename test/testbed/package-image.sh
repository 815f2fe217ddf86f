#!/usr/bin/env bash
# Builds a Docker image (docker-archive tar, what `docker load` reads) of a minimal
# Debian trixie root holding the given packages, from this machine's own mirror.
# Cached under $TESTBED_CACHE/images/ keyed by this script and the arguments; built
# under a lock so two beds never build the same image twice. Prints the tar's path.
# Usage: package-image.sh TAG PACKAGE...   e.g. package-image.sh testbed/services:1 postgresql redis-server
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

tag=${1:?image tag, e.g. testbed/services:1}
shift
[ $# -gt 0 ] || die "name at least one Debian package"
[[ $tag == *:* ]] || tag="$tag:latest"
[ "$(id -u)" = 0 ] || die "building an image root needs root"

images="$TESTBED_CACHE/images"
mkdir -p "$images"
key=$( { sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1; printf '%s\n' "$tag" "$@"; } | sha256sum | cut -c1-16)
out="$images/$(printf '%s' "$tag" | tr '/:' '__')-$key.tar"

exec 8>"$images/.build.lock"
flock 8
if [ -f "$out" ]; then echo "$out"; exit 0; fi

command -v debootstrap >/dev/null || { log "installing debootstrap"; apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
mirror=$(debian_mirror)
work=$(mktemp -d "$images/build.XXXXXX")
root="$work/root"
cleanup() {
  for m in proc dev; do umount -l "$root/$m" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

log "image $tag: debootstrap trixie (minbase)"
debootstrap --variant=minbase trixie "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
echo "deb $mirror trixie main" >"$root/etc/apt/sources.list"
# Docs, man pages and translations are not needed in a test image: dpkg skips them.
cat >"$root/etc/dpkg/dpkg.cfg.d/01-nodoc" <<'CFG'
path-exclude /usr/share/doc/*
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
CFG
# Services must not start while packages install.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod +x "$root/usr/sbin/policy-rc.d"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
in_root() { chroot "$root" env DEBIAN_FRONTEND=noninteractive LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
apt_opts=(-o Acquire::Check-Valid-Until=false -o APT::Install-Recommends=false -o Dpkg::Use-Pty=0 -qq)

log "image $tag: installing $*"
in_root apt-get "${apt_opts[@]}" update
in_root apt-get "${apt_opts[@]}" install -y "$@" >/dev/null
in_root apt-get "${apt_opts[@]}" clean
umount -l "$root/dev" "$root/proc"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/log/* "$root"/usr/share/doc/* \
  "$root"/usr/share/man/* "$root"/usr/share/locale/* "$root"/usr/sbin/policy-rc.d
# /dev and /proc are Docker's to fill.
find "$root/dev" -mindepth 1 -delete

# docker-archive layout: one layer, an image config naming its diff id, a manifest.
arc="$work/archive"
mkdir -p "$arc"
tar --numeric-owner --xattrs --xattrs-include='*' -C "$root" -cf "$arc/layer.tar" .
diff_id=$(sha256sum "$arc/layer.tar" | cut -d' ' -f1)
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
arch=$(dpkg --print-architecture)
cat >"$arc/config.json" <<JSON
{"architecture":"$arch","os":"linux","created":"$created",
 "config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","LANG=C.UTF-8"],"Cmd":["bash"]},
 "rootfs":{"type":"layers","diff_ids":["sha256:$diff_id"]},
 "history":[{"created":"$created","created_by":"test/testbed/package-image.sh $tag $*"}]}
JSON
config_id=$(sha256sum "$arc/config.json" | cut -d' ' -f1)
mv "$arc/config.json" "$arc/$config_id.json"
mkdir "$arc/$diff_id"
mv "$arc/layer.tar" "$arc/$diff_id/layer.tar"
printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]\n' "$config_id" "$tag" "$diff_id" >"$arc/manifest.json"
tar -C "$arc" -cf "$work/image.tar" .
mv "$work/image.tar" "$out"
# Older builds of the same tag are of an older recipe.
find "$images" -maxdepth 1 -name "$(printf '%s' "$tag" | tr '/:' '__')-*.tar" ! -path "$out" -delete
log "image $tag ready: $out ($(du -h "$out" | cut -f1))"
echo "$out"
