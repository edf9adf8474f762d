#!/usr/bin/env bash
# Benchmark (issue 12): a PKI of SERVERS servers and CLIENTS clients (P-256).
#   - `server add` per call, at full size (the median of the last 20 calls),
#   - `verify` of the whole PKI (median of RUNS runs),
#   - `rotate --all`: every leaf re-issued (median of RUNS runs, each on a fresh copy).
#
#   bench/fleet.sh [SERVERS] [CLIENTS] [RUNS]      (defaults: 200, 1000 and 3)
#   DOCKERTLS_BIN=/tmp/dockertls-before bench/fleet.sh    (a given binary, not this tree's)
set -euo pipefail
cd "$(dirname "$0")/.."
servers=${1:-200}
clients=${2:-1000}
runs=${3:-3}
# DOCKERTLS_BIN=path: time that binary (e.g. a copy built from another commit) instead.
if [[ -n ${DOCKERTLS_BIN:-} ]]; then
  bin=$DOCKERTLS_BIN
else
  cargo build --release --quiet
  bin=$PWD/target/release/dockertls
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 700 "$work"
pki=$work/pki
names=$(seq -f 'user%g' 1 "$clients" | paste -sd, -)

ms() { awk -v s="$1" -v e="$2" 'BEGIN { printf "%.1f", (e - s) * 1000 }'; }
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

"$bin" --dir "$pki" init --host server1.example --name server1 --client "$names" --yes >/dev/null
last=()
for ((i = 2; i <= servers; i++)); do
  start=$EPOCHREALTIME
  "$bin" --dir "$pki" server add "server$i" --host "server$i.example" >/dev/null
  end=$EPOCHREALTIME
  if ((i > servers - 20)); then last+=("$(ms "$start" "$end")"); fi
done
add=$(printf '%s\n' "${last[@]}" | median)

times=()
for ((r = 0; r < runs; r++)); do
  start=$EPOCHREALTIME
  "$bin" --dir "$pki" verify --warn-days 0 >/dev/null
  end=$EPOCHREALTIME
  times+=("$(ms "$start" "$end")")
done
verify=$(printf '%s\n' "${times[@]}" | median)

# Every copy is made before the first timed run and none is deleted until the last: on an
# ext4 without a journal (this machine's), the kernel skips inodes freed in the last seconds
# (minutes while their table block is dirty) when it allocates new ones, one lookup each, so
# a run right after `rm -rf` of a 7,000-file copy measures that deletion, not dockertls.
for ((r = 0; r < runs; r++)); do cp -a "$pki" "$work/copy$r"; done
sync
times=()
for ((r = 0; r < runs; r++)); do
  start=$EPOCHREALTIME
  "$bin" --dir "$work/copy$r" rotate --all --keep-backups 1 >/dev/null
  end=$EPOCHREALTIME
  times+=("$(ms "$start" "$end")")
done
rotate=$(printf '%s\n' "${times[@]}" | median)
# The same, each run right after deleting a copy of the PKI (the worst case above).
times=()
for ((r = 0; r < runs; r++)); do
  cp -a "$pki" "$work/fresh"
  rm -rf "$work/copy$r"
  start=$EPOCHREALTIME
  "$bin" --dir "$work/fresh" rotate --all --keep-backups 1 >/dev/null
  end=$EPOCHREALTIME
  times+=("$(ms "$start" "$end")")
  rm -rf "$work/fresh"
done
rotate_after_rm=$(printf '%s\n' "${times[@]}" | median)

echo "a PKI of $servers servers and $clients clients, P-256 ($(nproc) cores)"
printf '  %-44s %9s ms\n' "server add, one call at full size (median of 20)" "$add"
printf '  %-44s %9s ms\n' "verify of the whole PKI (median of $runs)" "$verify"
printf '  %-44s %9s ms\n' "rotate --all, $((servers + clients)) leaves (median of $runs)" "$rotate"
printf '  %-44s %9s ms\n' "  the same, right after deleting a PKI copy" "$rotate_after_rm"
