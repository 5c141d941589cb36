#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Run every test: formatting, lints, unit/integration tests, the release build, the example
# functions (built to wasm for the end-to-end tests), the end-to-end tests with real S3 clients
# (aws CLI, boto3, the quarry CLI) and the crash test, docs, benches (build only), the
# simulated-hardware benchmark (its invariants) and the no-default-features build. This is
# what CI runs (.ci/run).
#
#   ./run-tests.sh                 # everything, in order
#   ./run-tests.sh e2e doc         # only the named steps (see STEPS below); e2e needs a release build
#
# Installs what is missing first (quietly, idempotently): Debian packages via apt-get only when
# absent, Python test tools via pip (or into ./.venv when the system Python refuses pip).
#
# Environment: CARGO_BUILD_JOBS (default: all cores), CARGO_TARGET_DIR, PYTHON (default python3),
# QUARRY_CRASH_CYCLES / QUARRY_CRASH_SEED (crash test), PYTEST_ADDOPTS (extra pytest args).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"

# Debian packages the tests need. Checked with dpkg-query; apt-get runs only if one is missing.
# Later work will add: pocl-opencl-icd ocl-icd-opencl-dev libelf-dev
# clang, lld, wasi-libc, libclang-rt-14-dev-wasm32 and wabt: the functions step (C/WAT to wasm).
APT_PACKAGES=(build-essential pkg-config ca-certificates python3 python3-venv
  clang lld wasi-libc libclang-rt-14-dev-wasm32 wabt pocl-opencl-icd ocl-icd-opencl-dev clinfo lz4 fio)

# Python packages for the end-to-end tests (aws CLI v1, boto3, pytest, requests).
PIP_PACKAGES=(awscli boto3 pytest requests)
PY_IMPORTS="import awscli, boto3, botocore, pytest, requests"

STEPS=(fmt clippy test build functions e2e doc bench simhw check-no-default)

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-$(nproc 2>/dev/null || echo 2)}"
if [[ "${CI:-}" == "true" ]]; then
  # Fresh checkouts: incremental caches only cost time and disk.
  export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
fi
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export QUARRY_E2E_QUARRYD="${QUARRY_E2E_QUARRYD:-$TARGET_DIR/release/quarryd}"
export QUARRY_E2E_QUARRY_CLI="${QUARRY_E2E_QUARRY_CLI:-$TARGET_DIR/release/quarry}"
# The e2e tests start their own quarryd; never point them at another endpoint here.
unset QUARRY_E2E_ENDPOINT

T0=$SECONDS
declare -a RESULTS=()

banner() {
  printf '\n==================== %s ====================\n' "$*"
}

summary() {
  local status=$1
  banner "summary"
  local r
  for r in "${RESULTS[@]}"; do printf '  %s\n' "$r"; done
  local total=$((SECONDS - T0))
  if [[ $status -eq 0 ]]; then
    local what="ALL PASSED"
    [[ ${#SELECTED[@]} -gt 0 ]] && what="PASSED (selected steps only: ${SELECTED[*]})"
    printf 'run-tests: %s (%d steps, %dm%02ds)\n' "$what" "${#RESULTS[@]}" $((total / 60)) $((total % 60))
  else
    printf 'run-tests: FAILED at step "%s" (exit %d, %dm%02ds)\n' "$CURRENT" "$status" $((total / 60)) $((total % 60))
  fi
}

CURRENT="setup"
# step NAME COMMAND...: run one step with a banner; stop everything at the first failure.
step() {
  local name=$1
  shift
  CURRENT=$name
  banner "step: $name: $*"
  local t=$SECONDS rc=0
  "$@" || rc=$?
  if [[ $rc -ne 0 ]]; then
    RESULTS+=("FAIL  $name ($((SECONDS - t))s)")
    summary "$rc"
    exit "$rc"
  fi
  RESULTS+=("ok    $name ($((SECONDS - t))s)")
}

want() {
  # Is step $1 selected (all steps when no arguments were given)?
  [[ ${#SELECTED[@]} -eq 0 ]] && return 0
  local s
  for s in "${SELECTED[@]}"; do [[ "$s" == "$1" ]] && return 0; done
  return 1
}

SELECTED=("$@")
for s in "${SELECTED[@]}"; do
  case " ${STEPS[*]} " in
    *" $s "*) ;;
    *) echo "run-tests: unknown step '$s' (steps: ${STEPS[*]})" >&2; exit 2 ;;
  esac
done

# ---------------------------------------------------------------------------- setup

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else
    echo "run-tests: need root (or sudo) to run: $*" >&2; return 1
  fi
}

install_apt_packages() {
  local missing=() p
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  echo "run-tests: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

PY="${PYTHON:-python3}"
python_ok() {
  "$1" -c "$PY_IMPORTS" >/dev/null 2>&1 && command -v aws >/dev/null
}

setup_python() {
  if python_ok "$PY"; then return 0; fi
  if [[ -x "$ROOT/.venv/bin/python" ]] && python_ok "$ROOT/.venv/bin/python"; then
    PY="$ROOT/.venv/bin/python"
    export PATH="$ROOT/.venv/bin:$PATH"
    return 0
  fi
  echo "run-tests: installing Python test tools: ${PIP_PACKAGES[*]}"
  if "$PY" -m pip install --quiet --disable-pip-version-check "${PIP_PACKAGES[@]}" 2>/dev/null &&
    python_ok "$PY"; then
    return 0
  fi
  # The system Python refuses pip (PEP 668) or has none: use a virtual environment.
  if [[ ! -x "$ROOT/.venv/bin/python" ]]; then
    "$PY" -m venv "$ROOT/.venv"
  fi
  "$ROOT/.venv/bin/python" -m pip install --quiet --disable-pip-version-check "${PIP_PACKAGES[@]}"
  PY="$ROOT/.venv/bin/python"
  export PATH="$ROOT/.venv/bin:$PATH"
  python_ok "$PY"
}

setup() {
  command -v cargo >/dev/null || { echo "run-tests: cargo not found (install rustup)" >&2; return 1; }
  install_apt_packages
  if want e2e; then setup_python; fi
  echo "run-tests: $(cargo --version), jobs=$CARGO_BUILD_JOBS"
  if want e2e; then echo "run-tests: $("$PY" --version), $(aws --version 2>&1)"; fi
}

# ---------------------------------------------------------------------------- steps

run_e2e() {
  # The binaries must come from the release build step (or an earlier run).
  local b
  for b in "$QUARRY_E2E_QUARRYD" "$QUARRY_E2E_QUARRY_CLI"; do
    [[ -x "$b" ]] || { echo "run-tests: $b missing: run the build step first" >&2; return 1; }
  done
  # PoCL is installed above: a test that needs an OpenCL device fails without one.
  QUARRY_REQUIRE_OPENCL=1 "$PY" -m pytest -p no:cacheprovider agent/tests/e2e
}

step setup setup
want fmt && step fmt cargo fmt --all -- --check
want clippy && step clippy cargo clippy --workspace --all-targets --all-features -- -D warnings
# The differential tests fail without an OpenCL device here (PoCL is installed above).
want test && step test env QUARRY_REQUIRE_OPENCL=1 cargo test --workspace --all-features
want build && step build cargo build --release -p quarry-agent --bins --features ebpf
want functions && step functions examples/functions/build.sh "$ROOT/target/functions"
want e2e && step e2e run_e2e
want doc && step doc env RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps
# Benches use the bench profile (= release): reuses the release build's dependencies.
want bench && step bench cargo bench --workspace --no-run
# The simulated-hardware benchmark (models only, seconds): fails when a model invariant breaks.
# Its times come from the device models' virtual clock, not from the build, so a debug build
# (mostly the test step's) serves and no second release build of the bench is needed.
want simhw && step simhw cargo run -p quarry-bench --bin scenario -- sim-hw
want check-no-default && step check-no-default cargo check -p quarry-agent --no-default-features

summary 0
