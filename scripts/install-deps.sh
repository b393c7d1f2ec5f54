#!/usr/bin/env bash
# Installs what weft needs to build, test and run its lab on Debian 12.
# Safe to run again: apt-get skips what is already there.
#   --tests  also what some tests need beyond the build: vagrant,
#            vagrant-libvirt and shellcheck for the vagrant/ lab's checks
#            (ctest vagrant_validate), iperf3 for the e2e throughput checks,
#            iperf3 and iptables for the benchmark's smoke run (ctest
#            bench_neutron_smoke: Neutron's security groups are iptables),
#            etcd-server and etcd-client for weftd's etcd tests, qemu,
#            busybox-static and xz-utils for the qemu guest's test
#            (tests/e2e/guest/make-guest.sh), openssl for the etcd TLS test's CA,
#            neutron-server, mariadb-server and python3-pymysql for the test
#            with a real Neutron (tests/e2e/test_neutron.py starts its own
#            servers: the packages' services are not started on install)
#   --ci     --tests, and what CI's own checks need: a fresh Debian 12 root
#            to build in (mmdebstrap), Debian 12's 6.1 kernel booted in qemu
#            to load every BPF object on its verifier (qemu, busybox), and
#            clang-format and clang-tidy for scripts/lint.sh
#   --bench  iperf3, iptables and python3-matplotlib (the plot) for
#            bench/neutron_compare.py
#   --neutron  etcd-server, etcd-client, openssl, neutron-server,
#            mariadb-server and python3-pymysql for scripts/demo.sh
#            --with-neutron (a subset of --tests)
#   Flags combine.
set -euo pipefail

packages=(
  build-essential cmake pkg-config clang llvm
  libbpf-dev bpftool libelf-dev zlib1g-dev linux-libc-dev
  libnl-3-dev libnl-route-3-dev libcli11-dev nlohmann-json3-dev libsystemd-dev
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc prometheus-cpp-dev
  libgtest-dev libgmock-dev
  iproute2 iputils-ping netcat-openbsd python3 util-linux
)
for flag in "$@"; do
  case "$flag" in
  --ci)
    packages+=(mmdebstrap qemu-system-x86 busybox-static procps git ca-certificates
      clang-format clang-tidy vagrant vagrant-libvirt shellcheck iperf3 iptables etcd-server etcd-client
      xz-utils openssl neutron-server mariadb-server python3-pymysql)
    ;;
  --tests) packages+=(vagrant vagrant-libvirt shellcheck iperf3 iptables etcd-server etcd-client
    qemu-system-x86 busybox-static xz-utils openssl neutron-server mariadb-server python3-pymysql) ;;
  --bench) packages+=(iperf3 iptables python3-matplotlib) ;;
  --neutron) packages+=(etcd-server etcd-client openssl neutron-server mariadb-server python3-pymysql) ;;
  *)
    echo "install-deps: unknown flag $flag (--tests, --ci, --bench, --neutron)" >&2
    exit 2
    ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "weft: build dependencies already installed"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "weft: need root to install: ${missing[*]}" >&2
  exit 1
fi

echo "weft: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# No service of these packages is started on install (neutron-server,
# mariadb, etcd): the tests start their own, on their own ports and data.
no_start=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  no_start=/usr/sbin/policy-rc.d
  printf '#!/bin/sh\nexit 101\n' >"$no_start"
  chmod 755 "$no_start"
  trap 'rm -f "$no_start"' EXIT
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "weft: dependencies installed"
