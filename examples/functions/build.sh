#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Builds the example functions into OUTDIR:
#
#   examples/functions/build.sh OUTDIR
#
#   OUTDIR/<name>.wasm            each examples/functions/*.c (clang, wasm32-wasi; ABI v1,
#                                 wordcount_window ABI v2)
#   OUTDIR/<name>.wasm            each examples/functions/wat/*.wat (wat2wasm)
#   OUTDIR/hostile/<name>.wasm    each examples/functions/hostile/*.wat
#   OUTDIR/wordcount.tar.gz       a function package: function.wasm + manifest.toml
#
# Needs the Debian packages clang, lld, wasi-libc, libclang-rt-14-dev-wasm32 and wabt.
# Environment: CLANG (default clang), WAT2WASM (default wat2wasm), WASI_SYSROOT (default: the
# first of /usr/share/wasi-sysroot (wasi-sdk layout) and /usr (Debian's wasi-libc)).
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
mkdir -p "$1"
OUT="$(cd "$1" && pwd)"

CLANG="${CLANG:-clang}"
WAT2WASM="${WAT2WASM:-wat2wasm}"

die() {
  echo "build.sh: $*" >&2
  exit 1
}

need_tool() {
  command -v "$1" >/dev/null || die "$1 not found: install the Debian package $2"
}
need_tool "$CLANG" clang
need_tool wasm-ld lld
need_tool "$WAT2WASM" wabt
need_tool tar tar
need_tool gzip gzip

if [[ -z "${WASI_SYSROOT:-}" ]]; then
  if [[ -f /usr/share/wasi-sysroot/lib/wasm32-wasi/libc.a ]]; then
    WASI_SYSROOT=/usr/share/wasi-sysroot
  elif [[ -f /usr/lib/wasm32-wasi/libc.a ]]; then
    WASI_SYSROOT=/usr
  else
    die "no WASI libc in /usr/share/wasi-sysroot or /usr/lib/wasm32-wasi:" \
      "install the Debian package wasi-libc, or set WASI_SYSROOT"
  fi
fi

CFLAGS=(--target=wasm32-wasi "--sysroot=$WASI_SYSROOT" -O2 -std=c11 -Wall -Wextra -Werror
  -Wl,--strip-debug
  -I "$ROOT/offload/abi")

# clang links wasm32 programs against compiler-rt's builtins (64-bit division and the like).
BUILTINS="$("$CLANG" --target=wasm32-wasi -print-libgcc-file-name)"
[[ -f "$BUILTINS" ]] ||
  die "$BUILTINS missing: install the Debian package libclang-rt-14-dev-wasm32" \
    "(the one matching your clang version)"

mkdir -p "$OUT/hostile"

for src in "$HERE"/*.c; do
  name="$(basename "$src" .c)"
  "$CLANG" "${CFLAGS[@]}" -o "$OUT/$name.wasm" "$src" ||
    die "compiling $src failed"
done

for src in "$HERE"/wat/*.wat; do
  "$WAT2WASM" -o "$OUT/$(basename "$src" .wat).wasm" "$src" || die "assembling $src failed"
done
for src in "$HERE"/hostile/*.wat; do
  "$WAT2WASM" -o "$OUT/hostile/$(basename "$src" .wat).wasm" "$src" ||
    die "assembling $src failed"
done

# The package: fixed owner, mode and time, and no gzip timestamp, so it is byte-reproducible.
PKG="$(mktemp -d)"
trap 'rm -rf "$PKG"' EXIT
cp "$OUT/wordcount.wasm" "$PKG/function.wasm"
cp "$HERE/wordcount.manifest.toml" "$PKG/manifest.toml"
tar -C "$PKG" --owner=0 --group=0 --numeric-owner --mode=0644 --mtime=@0 \
  -cf - manifest.toml function.wasm | gzip -n -9 >"$OUT/wordcount.tar.gz"

echo "build.sh: built $(find "$OUT" -name '*.wasm' | wc -l) modules and wordcount.tar.gz in $OUT"
