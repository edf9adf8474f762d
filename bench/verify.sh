#!/usr/bin/env bash
# Benchmark: `dockertls verify` on a fleet of client cert dirs against the usual shell audit
# (per dir: openssl x509 -checkend, openssl verify, public-key comparison), in one run, and a
# check that both find exactly the same problems.
#
#   bench/verify.sh [DIRS] [RUNS]      (defaults: 1000 and 5)
#
# The fleet mixes key types (P-256, P-384, Ed25519, RSA-2048, RSA-4096) and key formats
# (PKCS#8, SEC1, PKCS#1), and holds expired, expiring, mismatched and wrong-CA dirs.
set -euo pipefail
cd "$(dirname "$0")/.."
dirs=${1:-1000}
runs=${2:-5}
for tool in openssl faketime python3; do
  command -v "$tool" >/dev/null || { echo "bench/verify.sh needs $tool" >&2; exit 1; }
done
cargo build --release --quiet
bin=$PWD/target/release/dockertls
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src=$work/src
mkdir -p "$src"

# Source client dirs: name -> what is wrong with it.
n=0
make() { # NAME KEY_TYPE [faketime date] [days]
  local name=$1 type=$2 when=${3:-} days=${4:-365}
  if [ -n "$when" ]; then
    faketime "$when" "$bin" --dir "$work/pki-$name" init --host fleet.example.com --key-type "$type" --days "$days" >/dev/null
  else
    "$bin" --dir "$work/pki-$name" init --host fleet.example.com --key-type "$type" --days "$days" >/dev/null
  fi
  mkdir -p "$src/$name"
  cp "$work/pki-$name/clients/client/"*.pem "$src/$name/"
  chmod u+w "$src/$name/"*
  n=$((n + 1))
}
for type in ecdsa-p256 ecdsa-p384 ed25519 rsa-2048 rsa-4096; do make "ok-$type" "$type"; done
# Same keys in the other formats Docker loads.
make ok-sec1 ecdsa-p256 && openssl ec -in "$src/ok-sec1/key.pem" -out "$src/ok-sec1/key.pem.new" 2>/dev/null && mv "$src/ok-sec1/key.pem.new" "$src/ok-sec1/key.pem"
make ok-pkcs1 rsa-2048 && openssl rsa -traditional -in "$src/ok-pkcs1/key.pem" -out "$src/ok-pkcs1/key.pem.new" 2>/dev/null && mv "$src/ok-pkcs1/key.pem.new" "$src/ok-pkcs1/key.pem"
make expired ecdsa-p256 "$(date -u -d '2 years ago' '+%Y-%m-%d %H:%M:%S')" 30
make expiring rsa-2048 "$(date -u -d '350 days ago' '+%Y-%m-%d %H:%M:%S')" 365
make mismatched ecdsa-p256 && cp "$src/ok-ecdsa-p256/key.pem" "$src/mismatched/key.pem"
make wrong-ca ed25519 && cp "$src/ok-ecdsa-p384/ca.pem" "$src/wrong-ca/ca.pem"
sources=("$src"/*)

fleet=$work/fleet
mkdir -p "$fleet"
for ((i = 0; i < dirs; i++)); do
  s=${sources[$((i % ${#sources[@]}))]}
  d=$(printf '%s/host%04d-%s' "$fleet" "$i" "$(basename "$s")")
  mkdir "$d"
  cp "$s"/*.pem "$d/"
done
chmod 0400 "$fleet"/*/key.pem
chmod 0444 "$fleet"/*/cert.pem "$fleet"/*/ca.pem

audit() { # the usual shell audit; prints "dir expired expiring chain_bad mismatch" per dir
  local d
  for d in "$fleet"/*/; do
    local expired=0 expiring=0 chain=0 mismatch=0
    openssl x509 -in "$d/cert.pem" -noout -checkend 0 >/dev/null || expired=1
    [ $expired = 1 ] || openssl x509 -in "$d/cert.pem" -noout -checkend $((30 * 86400)) >/dev/null || expiring=1
    openssl verify -no_check_time -CAfile "$d/ca.pem" "$d/cert.pem" >/dev/null 2>&1 || chain=1
    [ "$(openssl x509 -in "$d/cert.pem" -noout -pubkey)" = "$(openssl pkey -in "$d/key.pem" -pubout)" ] || mismatch=1
    echo "$(basename "$d") $expired $expiring $chain $mismatch"
  done
}

now() { date +%s.%N; }
t0=$(now); audit > "$work/audit.txt"; t1=$(now)
audit_s=$(echo "$t1 - $t0" | bc -l)

times=()
for ((r = 0; r < runs; r++)); do
  t0=$(now)
  "$bin" verify "$fleet" --format json > "$work/verify.json" || true
  t1=$(now)
  times+=("$(echo "$t1 - $t0" | bc -l)")
done
verify_s=$(printf '%s\n' "${times[@]}" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')

python3 - "$work/audit.txt" "$work/verify.json" <<'PY'
import json, os, sys
audit = {}
for line in open(sys.argv[1]):
    name, *flags = line.split()
    audit[name] = tuple(int(f) for f in flags)
ours = {}
for t in json.load(open(sys.argv[2]))["targets"]:
    checks = {c["id"]: c["status"] for c in t["checks"]}
    ours[os.path.basename(t["path"])] = (
        int(checks.get("validity") == "fail"),
        int(checks.get("validity") == "warn"),
        int(checks.get("chain") == "fail"),
        int(checks.get("key-match") == "fail"),
    )
same = audit == ours
counts = [sum(v[i] for v in audit.values()) for i in range(4)]
print(f"findings identical: {'yes' if same else 'NO'} ({len(audit)} dirs: {counts[0]} expired, "
      f"{counts[1]} expiring within 30 days, {counts[2]} not signed by their ca.pem, {counts[3]} key mismatches)")
if not same:
    for name in sorted(set(audit) | set(ours)):
        if audit.get(name) != ours.get(name):
            print("  differs:", name, "audit", audit.get(name), "dockertls", ours.get(name))
    sys.exit(1)
PY
echo
echo "verify $dirs client cert dirs ($(nproc) cores)"
awk -v a="$audit_s" -v v="$verify_s" -v r="$runs" 'BEGIN {
  printf "  %-46s %10.3f s   1.0x\n", "shell audit (openssl x509/verify/pkey per dir)", a
  printf "  %-46s %10.3f s  %5.0fx   (median of %d runs)\n", "dockertls verify", v, a / v, r
}'
