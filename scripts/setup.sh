#!/usr/bin/env bash
# Installs the system packages accel's build (default) or its tests (--test) need, on Debian or Ubuntu.
# Idempotent: when everything is installed it changes nothing and needs no root. Otherwise it runs apt-get as
# root, or through sudo, or says exactly what to install and exits 1. The one list: .ci/run calls it too.
#
#   bash scripts/setup.sh           what `npm run build` needs (the x64 executable and its native cc client)
#   bash scripts/setup.sh --test    everything `npm test` runs: compilers, cross toolchain, qemu, real clients
#   bash scripts/setup.sh --list    print the packages of the chosen profile and exit
set -euo pipefail

profile=build
list=false
for arg in "$@"; do
  case "$arg" in
    --test) profile=test ;;
    --build) profile=build ;;
    --list) list=true ;;
    -h | --help)
      sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "setup: unknown argument '$arg' (use --test, --build or --list)" >&2
      exit 2
      ;;
  esac
done

# The build: gcc + libc6-dev link the static native cc client (native/accel-cc.c); binutils strips Node.
build_packages=(gcc libc6-dev binutils)

# The tests, besides the build's packages, each for what uses it:
test_packages=(
  # arm64 executable and `accel conda build`: cross compilers, arm64 sysroot, qemu to run what they make
  gcc-aarch64-linux-gnu g++-aarch64-linux-gnu binutils-aarch64-linux-gnu libc6-dev-arm64-cross
  libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross qemu-user-static
  # the compile cache and farm: make builds examples/c-project; bubblewrap is the worker's sandbox; ccache
  # reads what accel stored in the shared cache
  make bubblewrap ccache
  # the MSVC driver model: clang-cl (Debian ships it as clang-cl-N in clang-tools) compiling for Windows
  clang-tools
  # the mirror's real clients: curl, Bazel 4, apt (apt-ftparchive, gpg) and xz for the test archives; nginx in
  # front of the mirror (mirror config nginx) and as a WebDAV tier of accel cc's remote caches; chromium renders
  # the mirror's status page
  curl bazel-bootstrap apt-utils gnupg xz-utils nginx chromium
  # Debian's Bazel speaks grpcs:// (the farm's Remote Execution API) only through netty-tcnative
  libnetty-tcnative-jni
  # conda builds: patches, archives (zip makes a test archive; unzip and zstd read our .conda files)
  patch bzip2 unzip zip zstd
  # a CA bundle: the upstream-channel test packages it as a stand-in for conda-forge's ca-certificates
  ca-certificates
  # what real conda-forge recipes run (autotools, pkg-config, cmake, meson, ninja, …; cmake, meson and ninja also
  # build jsoncpp through accel-cc); python3: get-sources
  autoconf automake libtool autotools-dev pkgconf cmake ninja-build meson m4 bison flex perl python3
  # ripgrep: openssl-feedstock's own test runs rg on what it built (the feedstock check against an upstream)
  ripgrep
  # mount and unshare (a full-filesystem test; builds that run what they built)
  util-linux coreutils tar gzip
)

packages=("${build_packages[@]}")
if [ "$profile" = test ]; then packages+=("${test_packages[@]}"); fi

# Ubuntu ships chromium only as a snap, which apt cannot install in a container: leave it out there (the one
# test that renders the status page in it then skips, naming it: a skip .ci/run fails on, so CI needs Debian).
if [ -r /etc/os-release ] && grep -qx 'ID=ubuntu' /etc/os-release; then
  keep=()
  for p in "${packages[@]}"; do [ "$p" = chromium ] || keep+=("$p"); done
  packages=("${keep[@]}")
fi

if $list; then
  printf '%s\n' "${packages[@]}"
  exit 0
fi

if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
  echo "setup: this is not a Debian or Ubuntu system (no dpkg/apt-get); install the equivalents of:" >&2
  echo "  ${packages[*]}" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: the ${#packages[@]} packages of the '$profile' profile are installed"
  exit 0
fi

echo "setup: installing ${#missing[@]} packages: ${missing[*]}"
if [ "$(id -u)" = 0 ]; then
  as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  as_root=(sudo)
elif command -v sudo >/dev/null && [ -t 0 ]; then
  as_root=(sudo) # asks for the password on this terminal
else
  echo "setup: these packages are missing and this user cannot install them (not root, no sudo):" >&2
  echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
  echo "setup: run that as root, then run this command again" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Without an init system (a container, a CI job) a package's service must not start while it installs: nginx's
# would take port 80, or fail to and fail the install. Debian's way to say so is a policy-rc.d that denies.
# (SETUP_POLICY_RC_D moves it, for the script's own test.)
policy=${SETUP_POLICY_RC_D:-/usr/sbin/policy-rc.d}
if [ ! -d /run/systemd/system ] && [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$policy" >/dev/null
  "${as_root[@]}" chmod 755 "$policy"
  trap '"${as_root[@]}" rm -f "$policy"' EXIT
fi
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: installed ${missing[*]}"
