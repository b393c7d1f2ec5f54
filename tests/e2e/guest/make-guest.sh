#!/usr/bin/env bash
# Builds the tiny qemu guest of tests/e2e/test_agent_qemu.py, once: Debian
# 12's own kernel (a VM's kernel on a Nova compute node is a distribution's,
# not the host's) and a busybox initramfs whose /init configures eth0
# (virtio-net) from the kernel command line, pings, and stays up.
#
#   make-guest.sh        prints "kernel PATH" and "initrd PATH"
#
# The kernel is the package's own, uncompressed (vmlinux, an ELF with a PVH
# entry, which qemu boots directly): under TCG the bzImage's decompressor
# alone takes about 4 s, longer than the rest of the boot.
#
# Environment (optional):
#   WEFT_GUEST_CACHE  where the kernel package and the guest are kept
#                     (default /var/cache/weft-guest)
#   WEFT_GUEST_KPKG   the kernel package (default: a package already in the
#                     cache, else the linux-image-6.1.0-N-amd64 that apt's
#                     linux-image-amd64 depends on)
#
# The guest's kernel command line:
#   weft.ip=ADDR/LEN   eth0's address (its MAC is qemu's -device mac=)
#   weft.peer=ADDR     pinged three times: WEFT-GUEST-PING-OK or -FAIL
#   weft.spoof=ADDR    then pinged from this source address, which is not
#                      the port's: WEFT-GUEST-SPOOFED-PING-OK or -FAIL
#   weft.mtu=N         eth0's MTU (optional)
#
# Once the kernel package is cached nothing is downloaded: the guest keeps
# the kernel it was first built with until the cache is removed, so a test
# run does not depend on the archive or on a point release's timing. The
# guest is rebuilt when this script changes.
#
# Needs: apt-get, apt-cache, dpkg-deb, busybox-static, gzip, xz-utils,
# grep, flock, sha256sum.
set -euo pipefail

cache=${WEFT_GUEST_CACHE:-/var/cache/weft-guest}
# virtio_pci finds the device, virtio_net drives it; what they need is
# taken from the modules themselves.
modules=(virtio_pci virtio_net)

log() { echo "make-guest: $*" >&2; }
die() {
  log "$*"
  exit 1
}

mkdir -p "$cache"
dl='' work=''
# An interrupted download or build leaves nothing in the cache.
trap 'rm -rf "$dl" "$work"' EXIT
exec 9>"$cache/.lock"
# Two test runs at once share one download and one build.
flock 9

newest_cached_deb() {
  find "$cache" -maxdepth 1 -name 'linux-image-6.1.0-*-amd64_*_amd64.deb' -printf '%f\n' |
    sort -V | tail -n 1
}

kernel_package() {
  if [ -n "${WEFT_GUEST_KPKG:-}" ]; then
    echo "$WEFT_GUEST_KPKG"
    return
  fi
  local deb pkg
  deb=$(newest_cached_deb)
  if [ -n "$deb" ]; then
    echo "${deb%%_*}"
    return
  fi
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
    awk '/Depends: linux-image-6\.1\.0-[0-9]+-amd64$/ {print $2; exit}')
  if [ -z "$pkg" ]; then
    # A fresh machine may have no package lists yet.
    [ "$(id -u)" -eq 0 ] || die "apt knows no linux-image-6.1.0-N-amd64 and only root can apt-get update"
    log "apt knows no Debian 12 kernel package: apt-get update"
    apt-get update -qq >&2
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
      awk '/Depends: linux-image-6\.1\.0-[0-9]+-amd64$/ {print $2; exit}')
  fi
  [ -n "$pkg" ] || die "apt's linux-image-amd64 does not depend on a linux-image-6.1.0-N-amd64 (not Debian 12?)"
  echo "$pkg"
}

pkg=$(kernel_package)
[[ $pkg =~ ^linux-image-6\.1\.0-[0-9]+-amd64$ ]] || die "not a Debian 12 kernel package: $pkg"

deb=$(find "$cache" -maxdepth 1 -name "${pkg}_*_amd64.deb" -printf '%f\n' | sort -V | tail -n 1)
if [ -z "$deb" ]; then
  log "downloading $pkg into $cache"
  dl=$(mktemp -d "$cache/.download.XXXXXX")
  # As root apt-get would try to drop to _apt, which cannot write here.
  (cd "$dl" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2) ||
    die "apt-get download $pkg failed"
  deb=$(find "$dl" -maxdepth 1 -name "${pkg}_*_amd64.deb" -printf '%f\n' | head -n 1)
  [ -n "$deb" ] || die "apt-get download $pkg left no ${pkg}_*_amd64.deb"
  # Renamed into place whole: an interrupted download is never taken for a package.
  mv "$dl/$deb" "$cache/$deb"
  rm -rf "$dl"
fi

key=$(cat "${BASH_SOURCE[0]}" <(echo "$deb") | sha256sum | cut -c1-12)
out="$cache/guest-$key"
if [ -s "$out/vmlinux" ] && [ -s "$out/initrd.gz" ]; then
  echo "kernel $out/vmlinux"
  echo "initrd $out/initrd.gz"
  exit 0
fi

command -v xz >/dev/null || die "xz is missing (apt-get install xz-utils)"
bb=$(command -v busybox) || die "busybox is missing (apt-get install busybox-static)"
# The initramfs has no C library: a dynamic busybox would not start.
if ldd "$bb" >/dev/null 2>&1; then
  die "$bb is dynamically linked: install busybox-static"
fi

work=$(mktemp -d "$cache/.build.XXXXXX")
log "building the guest from $deb"
dpkg-deb -x "$cache/$deb" "$work/pkg"
kver=$(find "$work/pkg/lib/modules" -mindepth 1 -maxdepth 1 -printf '%f\n' | head -n 1)
[ -n "$kver" ] || die "$deb has no /lib/modules/VERSION"
moddir="$work/pkg/lib/modules/$kver"
[ -f "$work/pkg/boot/vmlinuz-$kver" ] || die "$deb has no /boot/vmlinuz-$kver"

root="$work/root"
mkdir -p "$root"/{bin,dev,proc,sys,tmp,mods}
cp "$bb" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"

# The package ships no modules.dep (its postinst runs depmod); each module
# names its own dependencies in .modinfo (depends=), which is what depmod
# reads too.
find "$moddir/kernel" \( -name '*.ko' -o -name '*.ko.xz' \) >"$work/all-modules"

module_depends() {
  tr '\0' '\n' <"$1" | sed -n 's/^depends=//p' | head -n 1
}

add_module() {
  local name=$1 file dep deps plain
  grep -qx "$name" "$root/mods/order" 2>/dev/null && return 0
  file=$(grep -E "/(${name}|${name//_/-})\.ko(\.xz)?$" "$work/all-modules" | head -n 1 || true)
  if [ -z "$file" ]; then
    # Built into this kernel: nothing to load.
    grep -qE "/(${name}|${name//_/-})\.ko$" "$moddir/modules.builtin" && return 0
    die "module $name is neither in $deb nor built in"
  fi
  plain="$root/mods/$name.ko"
  case "$file" in
  *.ko.xz)
    # busybox's insmod may not read xz; the guest gets plain modules.
    xz -dc "$file" >"$plain"
    ;;
  *) cp "$file" "$plain" ;;
  esac
  deps=$(module_depends "$plain")
  for dep in ${deps//,/ }; do
    add_module "$dep"
  done
  echo "$name" >>"$root/mods/order"
}

for m in "${modules[@]}"; do
  add_module "$m"
done

# Quoted: the guest expands it, not this script.
cat >"$root/init" <<'EOF'
#!/bin/sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1

for m in $(cat /mods/order); do
  insmod "/mods/$m.ko" || echo "WEFT-GUEST-ERROR insmod $m"
done

addr= peer= spoof= mtu=
for arg in $(cat /proc/cmdline); do
  case "$arg" in
  weft.ip=*) addr=${arg#weft.ip=} ;;
  weft.peer=*) peer=${arg#weft.peer=} ;;
  weft.spoof=*) spoof=${arg#weft.spoof=} ;;
  weft.mtu=*) mtu=${arg#weft.mtu=} ;;
  esac
done

# The driver's probe may come after insmod returns.
n=0
while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 50 ]; do
  sleep 0.1
  n=$((n + 1))
done
if [ ! -e /sys/class/net/eth0 ]; then
  echo "WEFT-GUEST-ERROR no eth0"
else
  ip link set lo up
  [ -n "$mtu" ] && ip link set eth0 mtu "$mtu"
  [ -n "$addr" ] && ip addr add "$addr" dev eth0
  ip link set eth0 up
  # The firmware's last line ends without a newline; the marker starts one.
  echo
  echo "WEFT-GUEST-READY mac=$(cat /sys/class/net/eth0/address) ip=$addr uptime=$(cut -d' ' -f1 /proc/uptime)"
  if [ -n "$peer" ]; then
    out=$(ping -n -q -c 3 -i 0.2 -W 2 "$peer" 2>&1)
    got=$(echo "$out" | sed -n 's/.* \([0-9]*\) packets received.*/\1/p')
    if [ "${got:-0}" -gt 0 ]; then
      echo "WEFT-GUEST-PING-OK $peer received=$got/3"
    else
      echo "WEFT-GUEST-PING-FAIL $peer received=${got:-0}/3: $out"
    fi
    if [ -n "$spoof" ]; then
      ip addr add "$spoof/32" dev eth0
      out=$(ping -n -q -c 3 -i 0.2 -W 2 -I "$spoof" "$peer" 2>&1)
      got=$(echo "$out" | sed -n 's/.* \([0-9]*\) packets received.*/\1/p')
      if [ "${got:-0}" -gt 0 ]; then
        echo "WEFT-GUEST-SPOOFED-PING-OK $spoof to $peer received=$got/3"
      else
        echo "WEFT-GUEST-SPOOFED-PING-FAIL $spoof to $peer received=${got:-0}/3"
      fi
      ip addr del "$spoof/32" dev eth0
    fi
  fi
  echo "WEFT-GUEST-DONE uptime=$(cut -d' ' -f1 /proc/uptime)"
fi
# The kernel answers echo requests; init only has to stay (qemu is killed).
while :; do sleep 3600; done
EOF
chmod 755 "$root/init"

mkdir -p "$work/out"
extract_vmlinux() {
  local image=$1 dest=$2 offset
  grep -q '^CONFIG_PVH=y' "$work/pkg/boot/config-$kver" ||
    die "$kver has no PVH entry (CONFIG_PVH): qemu cannot boot its vmlinux"
  grep -q '^CONFIG_KERNEL_XZ=y' "$work/pkg/boot/config-$kver" ||
    die "$kver's bzImage is not xz-compressed: extracting its vmlinux is not done here"
  # The payload is an xz stream somewhere in the bzImage; the magic may also
  # occur by chance, so each candidate is tried until one yields an ELF.
  while read -r offset; do
    # Fed by a process substitution: xz stops at the stream's end, and tail's
    # broken pipe must not count as a failure.
    if xz -dc --single-stream < <(tail -c "+$((offset + 1))" "$image") >"$dest" 2>/dev/null &&
      [ "$(head -c 4 "$dest" | od -An -c | tr -d ' ')" = '177ELF' ]; then
      return 0
    fi
  done < <(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$image" | cut -d: -f1)
  die "no vmlinux found in $image"
}
extract_vmlinux "$work/pkg/boot/vmlinuz-$kver" "$work/out/vmlinux"
(cd "$root" && find . | busybox cpio -o -H newc 2>/dev/null) | gzip -1 >"$work/out/initrd.gz"
echo "$kver" >"$work/out/release"
log "guest: kernel $kver, modules $(tr '\n' ' ' <"$root/mods/order")initrd $(du -h "$work/out/initrd.gz" | cut -f1)"

# Older guests (this script changed, or another kernel) are not used again.
find "$cache" -maxdepth 1 -name 'guest-*' -type d -exec rm -rf {} +
mv "$work/out" "$out"
echo "kernel $out/vmlinux"
echo "initrd $out/initrd.gz"
