#!/usr/bin/env bash
# Build the optional peer-credentials addon (native/peercred.c) and copy the
# stripped binaries to prebuilds/<platform>-<arch>[-musl]/peercred.node, which
# are committed and shipped inside the npm package (no install script runs).
#
#   scripts/build-native.sh            host build with node-gyp, plus the
#                                      linux-x64-musl / linux-arm64 cross builds
#                                      when their compilers are installed
#   scripts/build-native.sh --host     host build only
#
# Cross compilers (Debian): apt-get install musl-tools gcc-aarch64-linux-gnu
#                           libc6-dev-arm64-cross
#
# Offline: node-gyp is pointed at local Node headers (NODEDIR, npm's `nodedir`,
# or the running node's own prefix) so it never downloads a header tarball.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
native="$root/native"
host_only=0
[[ "${1:-}" == "--host" ]] && host_only=1

# --- node-gyp: $NODE_GYP, then a project-local one, then the one bundled with npm
if [[ -n "${NODE_GYP:-}" ]]; then
  node_gyp=("$NODE_GYP")
elif [[ -x "$root/node_modules/.bin/node-gyp" ]]; then
  node_gyp=("$root/node_modules/.bin/node-gyp")
else
  node_gyp=(node "$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js")
fi

# --- headers: must contain include/node/node_api.h
nodedir="${NODEDIR:-${npm_config_nodedir:-}}"
if [[ -z "$nodedir" ]]; then
  nodedir=$(npm config get nodedir 2>/dev/null || true)
  [[ "$nodedir" == "undefined" || "$nodedir" == "null" ]] && nodedir=""
fi
if [[ -z "$nodedir" ]]; then
  prefix=$(dirname "$(dirname "$(node -p process.execPath)")")
  [[ -f "$prefix/include/node/node_api.h" ]] && nodedir="$prefix"
fi
gyp_args=()
if [[ -n "$nodedir" ]]; then
  gyp_args+=("--nodedir=$nodedir")
else
  echo "build-native: no local Node headers found; node-gyp will try to download them" >&2
fi

platform=$(node -p process.platform)
arch=$(node -p process.arch)
tag="$platform-$arch"
if [[ "$platform" == "linux" ]] && ! node -e 'process.exit(process.report.getReport().header.glibcVersionRuntime ? 0 : 1)'; then
  tag="$tag-musl"
fi

install_binary() { # src tag strip-tool
  local dest="$root/prebuilds/$2/peercred.node"
  mkdir -p "$(dirname "$dest")"
  cp "$1" "$dest"
  "$3" --strip-all "$dest"
  printf 'build-native: %-40s %6d bytes\n' "prebuilds/$2/peercred.node" "$(wc -c <"$dest")"
}

echo "build-native: $("${node_gyp[@]}" --version 2>/dev/null | tail -1), headers: ${nodedir:-download}"
(cd "$native" && "${node_gyp[@]}" rebuild --release --loglevel=warn "${gyp_args[@]}" >/dev/null)
install_binary "$native/build/Release/peercred.node" "$tag" strip

# --- optional Linux cross builds. An N-API addon needs only the four N-API
# headers and leaves its napi_* symbols undefined (Node provides them), so a
# plain `cc -shared` is enough; the headers are copied aside so the cross
# compiler cannot pick up anything else from the host include tree.
# native/build is scratch; remove it so a stray `files: ["native"]` can never ship it.
trap 'rm -rf "$native/build"' EXIT

[[ $host_only == 1 || "$tag" != "linux-x64" ]] && exit 0
hdr_src="${nodedir:-$prefix}/include/node"
hdr="$native/build/napi-include"
mkdir -p "$hdr"
cp "$hdr_src"/{node_api.h,node_api_types.h,js_native_api.h,js_native_api_types.h} "$hdr/"
cflags=(-shared -fPIC -O2 -Wall -Wextra -Werror -fvisibility=hidden -DNAPI_VERSION=8 -I"$hdr")

cross() { # compiler strip tag
  if ! command -v "$1" >/dev/null; then
    echo "build-native: $1 not installed, skipping prebuilds/$3 (kept as is)"
    return
  fi
  "$1" "${cflags[@]}" -o "$native/build/peercred-$3.node" "$native/peercred.c"
  install_binary "$native/build/peercred-$3.node" "$3" "$2"
}
cross musl-gcc strip linux-x64-musl
cross aarch64-linux-gnu-gcc aarch64-linux-gnu-strip linux-arm64
