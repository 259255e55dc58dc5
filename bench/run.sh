#!/usr/bin/env bash
# Benchmarks ecrpush against crane, skopeo, go-containerregistry's MultiWrite and the bare protocol
# on Debian's docker-registry.
#
#   bench/run.sh            full run (≈ 15 min): waits (≤ 20 min) for the 1-minute load to drop
#                           below 0.7, then writes bench/RESULTS.md and bench/results.json
#   bench/run.sh --quick    small inputs, 2 runs each (≈ 2 min): proves the harness works; writes
#                           its results to the work directory, asserts nothing about speed
#
# Any other flags go to the driver (go run ./bench/cmd/bench -h), e.g. --only P1,P3 --runs 7;
# --profile DIR runs ecrpush with a CPU profile per run into DIR (bench/cmd/ecrpush-prof).
# Needs go, docker-registry and skopeo (apt-get install docker-registry skopeo) and /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

crane_version=v0.22.1
quick=false
profile=
args=()
while (($#)); do
  case "$1" in
    --quick|-quick) quick=true; args+=(-quick) ;;
    --profile|-profile) profile=$(mkdir -p "$2" && cd "$2" && pwd); shift ;;
    *) args+=("$1") ;;
  esac
  shift
done

for tool in docker-registry skopeo; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing: apt-get install $tool" >&2; exit 1; }
done

# Binaries: ecrpush, the driver, the limit and go-containerregistry clients and the bare hello are
# rebuilt every time; crane once per version.
bin=$root/bench/.bin
mkdir -p "$bin"
if [[ "$("$bin/crane" version 2>/dev/null || true)" != "$crane_version" ]]; then
  echo "bench: installing crane $crane_version into $bin" >&2
  GOBIN=$bin go install "github.com/google/go-containerregistry/cmd/crane@$crane_version"
fi
go build -o "$bin/ecrpush" .
go build -o "$bin/bench" ./bench/cmd/bench
go build -o "$bin/limit" ./bench/cmd/limit
go build -o "$bin/ggcrpush" ./bench/cmd/ggcrpush
go build -o "$bin/hello" ./bench/cmd/hello
ecrpush=$bin/ecrpush
if [[ -n "$profile" ]]; then
  # ecrpush with a CPU profile per process: go tool pprof -top bench/.bin/ecrpush-prof DIR/NNN.pprof
  go build -o "$bin/ecrpush-prof" ./bench/cmd/ecrpush-prof
  ecrpush=$bin/ecrpush-prof
  args+=(-profile "$profile")
fi

if $quick; then
  if [[ "${CI:-}" == true ]]; then
    work=$(mktemp -d "${TMPDIR:-/tmp}/ecrpush-bench-ci.XXXXXX")
    cleanup_work=$work
  else
    work=${BENCH_WORK:-${TMPDIR:-/tmp}/ecrpush-bench-quick-$(id -u)}
  fi
  out=$work/out
  extra=()
else
  work=${BENCH_WORK:-${TMPDIR:-/tmp}/ecrpush-bench-$(id -u)}
  out=$root/bench
  extra=(-wait-load "${BENCH_WAIT_LOAD:-0.7}")
fi

pid=
cleanup() {
  # The driver stops its registries itself; this covers run.sh being interrupted.
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; fi
  if [[ -n "${cleanup_work:-}" ]]; then rm -rf "$cleanup_work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$bin/bench" -ecrpush "$ecrpush" -crane "$bin/crane" -limit "$bin/limit" -ggcr "$bin/ggcrpush" -hello "$bin/hello" \
  -work "$work" -out "$out" "${extra[@]}" "${args[@]}" &
pid=$!
wait "$pid"
