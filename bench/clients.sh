#!/usr/bin/env bash
# Benchmark: adding 100 P-256 client certificates to an existing PKI with `dockertls client add`
# (all names in one call, and one process per name) against the Docker docs' openssl commands
# per client (key, CSR, signing with the CA, chmod), in one run.
#
#   bench/clients.sh [CLIENTS] [RUNS]      (defaults: 100 and 5)
set -euo pipefail
cd "$(dirname "$0")/.."
clients=${1:-100}
runs=${2:-5}
cargo build --release --quiet
bin=$PWD/target/release/dockertls
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
names=$(seq -f 'user%g' 1 "$clients" | paste -sd, -)

fresh_pki() { rm -rf "$work/pki"; "$bin" --dir "$work/pki" init --host example.com --client seed >/dev/null; }

one_call() { "$bin" --dir "$work/pki" client add "$names" >/dev/null; }
per_name() { local i; for ((i = 1; i <= clients; i++)); do "$bin" --dir "$work/pki" client add "user$i" >/dev/null; done; }
openssl_docs() {
  local ca=$work/pki/ca i d
  echo "extendedKeyUsage = clientAuth" > "$work/extfile-client.cnf"
  for ((i = 1; i <= clients; i++)); do
    d=$work/ossl/user$i
    mkdir -p "$d"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/key.pem"
    openssl req -subj "/CN=user$i" -new -key "$d/key.pem" -out "$d/client.csr"
    openssl x509 -req -days 365 -sha256 -in "$d/client.csr" -CA "$ca/ca.pem" -CAkey "$ca/ca-key.pem" \
      -CAcreateserial -CAserial "$work/ca.srl" -out "$d/cert.pem" -extfile "$work/extfile-client.cnf" 2>/dev/null
    rm "$d/client.csr"
    chmod 0400 "$d/key.pem"
    chmod 0444 "$d/cert.pem"
  done
}

# median_s FUNCTION: a fresh PKI before each run; the median wall time of RUNS runs, seconds.
median_s() {
  local fn=$1 r start end times=()
  for ((r = 0; r < runs; r++)); do
    fresh_pki
    rm -rf "$work/ossl"
    start=$EPOCHREALTIME
    "$fn"
    end=$EPOCHREALTIME
    times+=("$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.4f", e - s }')")
  done
  printf '%s\n' "${times[@]}" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

ossl=$(median_s openssl_docs)
one=$(median_s one_call)
each=$(median_s per_name)
echo "$clients P-256 client certificates from an existing CA (median of $runs runs, $(nproc) cores)"
awk -v o="$ossl" -v a="$one" -v b="$each" -v n="$clients" 'BEGIN {
  printf "  %-40s %8.3f s  %6.1f ms/client   1.0x\n", "openssl, Docker docs commands", o, o * 1000 / n
  printf "  %-40s %8.3f s  %6.1f ms/client  %5.0fx\n", "dockertls client add (one call)", a, a * 1000 / n, o / a
  printf "  %-40s %8.3f s  %6.1f ms/client  %5.0fx\n", "dockertls client add (one process each)", b, b * 1000 / n, o / b
}'
