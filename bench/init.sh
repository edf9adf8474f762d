#!/usr/bin/env bash
# Benchmark: `dockertls init` against Docker's documented openssl procedure ("Protect the
# Docker daemon socket": CA key and certificate, server key + CSR + signing, client key + CSR +
# signing, chmods) and, where installed, cfssl, in one run, side by side.
#
#   bench/init.sh [RUNS_P256] [RUNS_RSA4096]      (defaults: 50 and 7)
#
# Each figure is the median wall time of one complete PKI (CA, server, one client) in a fresh
# folder, measured with bash's EPOCHREALTIME around the commands alone.
set -euo pipefail
cd "$(dirname "$0")/.."
runs_ec=${1:-50}
runs_rsa=${2:-7}

cargo build --release --quiet
bin=$PWD/target/release/dockertls
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
host=example.com

# The Docker docs' procedure, verbatim but for the key-generation command and a passphrase
# given on the command line instead of typed.
openssl_procedure() { # $1: genkey command for a key file, given the file as last argument
  local genkey=$1
  $genkey ca-key.pem aes
  openssl req -new -x509 -days 365 -key ca-key.pem -passin pass:benchmark -sha256 -out ca.pem \
    -subj "/CN=$host CA" 2>/dev/null
  $genkey server-key.pem
  openssl req -subj "/CN=$host" -sha256 -new -key server-key.pem -out server.csr
  echo "subjectAltName = DNS:$host,IP:192.168.1.1,IP:127.0.0.1" >> extfile.cnf
  echo "extendedKeyUsage = serverAuth" >> extfile.cnf
  openssl x509 -req -days 365 -sha256 -in server.csr -CA ca.pem -CAkey ca-key.pem \
    -passin pass:benchmark -CAcreateserial -out server-cert.pem -extfile extfile.cnf 2>/dev/null
  $genkey key.pem
  openssl req -subj '/CN=client' -new -key key.pem -out client.csr
  echo "extendedKeyUsage = clientAuth" > extfile-client.cnf
  openssl x509 -req -days 365 -sha256 -in client.csr -CA ca.pem -CAkey ca-key.pem \
    -passin pass:benchmark -CAcreateserial -out cert.pem -extfile extfile-client.cnf 2>/dev/null
  rm client.csr server.csr extfile.cnf extfile-client.cnf
  chmod 0400 ca-key.pem key.pem server-key.pem
  chmod 0444 ca.pem server-cert.pem cert.pem
}
genkey_p256() {
  if [ "${2:-}" = aes ]; then
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -aes256 -pass pass:benchmark -out "$1"
  else
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"
  fi
}
genkey_rsa4096() {
  if [ "${2:-}" = aes ]; then
    openssl genrsa -aes256 -passout pass:benchmark -out "$1" 4096 2>/dev/null
  else
    openssl genrsa -out "$1" 4096 2>/dev/null
  fi
}

cfssl_procedure() {
  cat > ca-csr.json <<JSON
{"CN": "$host CA", "key": {"algo": "ecdsa", "size": 256}}
JSON
  cat > config.json <<'JSON'
{"signing": {"profiles": {
  "server": {"expiry": "8760h", "usages": ["signing", "key encipherment", "server auth"]},
  "client": {"expiry": "8760h", "usages": ["signing", "key encipherment", "client auth"]}}}}
JSON
  cat > server-csr.json <<JSON
{"CN": "$host", "hosts": ["$host", "192.168.1.1", "127.0.0.1"], "key": {"algo": "ecdsa", "size": 256}}
JSON
  cat > client-csr.json <<'JSON'
{"CN": "client", "key": {"algo": "ecdsa", "size": 256}}
JSON
  cfssl gencert -initca ca-csr.json 2>/dev/null | cfssljson -bare ca
  cfssl gencert -ca ca.pem -ca-key ca-key.pem -config config.json -profile server \
    server-csr.json 2>/dev/null | cfssljson -bare server
  cfssl gencert -ca ca.pem -ca-key ca-key.pem -config config.json -profile client \
    client-csr.json 2>/dev/null | cfssljson -bare client
}

dockertls_p256() { "$bin" --dir pki init --host "$host" --allow 192.168.1.1 >/dev/null; }
dockertls_rsa4096() { "$bin" --dir pki init --host "$host" --allow 192.168.1.1 --key-type rsa-4096 >/dev/null; }
openssl_p256() { openssl_procedure genkey_p256; }
openssl_rsa4096() { openssl_procedure genkey_rsa4096; }

# median_ms FUNCTION RUNS: runs FUNCTION in a fresh folder RUNS times, prints the median in ms.
median_ms() {
  local fn=$1 runs=$2 i start end
  local times=()
  for ((i = 0; i < runs; i++)); do
    local dir="$work/$fn-$i"
    mkdir "$dir"
    pushd "$dir" >/dev/null
    start=$EPOCHREALTIME
    "$fn"
    end=$EPOCHREALTIME
    popd >/dev/null
    rm -rf "$dir"
    times+=("$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f", (e - s) * 1000 }')")
  done
  printf '%s\n' "${times[@]}" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

row() { # label runs ms baseline_ms
  awk -v l="$1" -v r="$2" -v t="$3" -v b="$4" 'BEGIN { printf "  %-34s %5d runs  %10.1f ms  %7.1fx\n", l, r, t, b / t }'
}

echo "dockertls init vs Docker's openssl procedure (median of N runs; speed-up vs openssl)"
echo "machine: $(nproc) cores, $(openssl version | cut -d' ' -f1-2), $(uname -m)"
echo
echo "ECDSA P-256"
ossl=$(median_ms openssl_p256 "$runs_ec")
row "openssl procedure (docs)" "$runs_ec" "$ossl" "$ossl"
if command -v cfssl >/dev/null && command -v cfssljson >/dev/null; then
  row "cfssl $(cfssl version | awk '/Version/ { print $2 }')" "$runs_ec" "$(median_ms cfssl_procedure "$runs_ec")" "$ossl"
else
  echo "  cfssl                              not installed (apt-get install golang-cfssl)"
fi
row "dockertls init" "$runs_ec" "$(median_ms dockertls_p256 "$runs_ec")" "$ossl"
echo
echo "RSA-4096"
ossl=$(median_ms openssl_rsa4096 "$runs_rsa")
row "openssl procedure (docs)" "$runs_rsa" "$ossl" "$ossl"
row "dockertls init" "$runs_rsa" "$(median_ms dockertls_rsa4096 "$runs_rsa")" "$ossl"
