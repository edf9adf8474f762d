#!/usr/bin/env bash
# Benchmark: what `dockertls authz serve` adds to every API call, in one run.
#  1. Latency per request (p50, p99) of GET /_ping and GET /containers/json over TLS with a
#     client certificate, REQUESTS each on one keep-alive connection, against a private dockerd
#     without the plugin and then with it (same PKI, same client).
#  2. The plugin's resident memory (VmRSS) after 0, 1,000, 10,000, 50,000 and 100,000 decisions,
#     its socket driven directly with dockerd's AuthZReq bodies (certificate included), and the
#     plugin's own latency per decision (what of the added time is the plugin's, not dockerd's
#     plugin client: each API call is two plugin round trips, AuthZReq and AuthZRes).
#
#   bench/authz.sh [REQUESTS]        (default 5000; root, dockerd and python3 needed)
#   DOCKERTLS_BIN=path/to/dockertls bench/authz.sh   (skips the release build)
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${1:-5000}
if [[ -z ${DOCKERTLS_BIN:-} ]]; then
  cargo build --release --quiet
  bin=$PWD/target/release/dockertls
else
  bin=$DOCKERTLS_BIN
fi
work=$(mktemp -d)
name="dockertls-bench-$$"
spec=/etc/docker/plugins/$name.spec
dockerd_pid='' plugin_pid=''
cleanup() {
  [[ -n $dockerd_pid ]] && kill "$dockerd_pid" 2>/dev/null && wait "$dockerd_pid" 2>/dev/null
  [[ -n $plugin_pid ]] && kill "$plugin_pid" 2>/dev/null && wait "$plugin_pid" 2>/dev/null
  rm -f "$spec"
  rm -rf "$work"
}
trap cleanup EXIT

"$bin" --dir "$work/pki" init --host localhost --client alice >/dev/null 2>&1
server=$work/pki/server
[[ -d $server ]] || server=$(dirname "$(ls "$work"/pki/servers/*/server-cert.pem | head -1)")
mkdir "$work/tls"
cp "$work/pki/ca/ca.pem" "$work/tls/ca.pem"
echo '{"format": 1, "clients": {"alice": "admin"}}' > "$work/tls/authz.json"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

start_dockerd() { # [PLUGIN NAME]
  local plugins='[]'
  [[ $# -gt 0 ]] && plugins="[\"$1\"]"
  rm -rf "$work/d"; mkdir -p "$work/d"
  cat > "$work/d/daemon.json" <<EOF
{"hosts": ["unix://$work/d/docker.sock", "tcp://127.0.0.1:$port"], "tls": true, "tlsverify": true,
 "tlscacert": "$server/ca.pem", "tlscert": "$server/server-cert.pem", "tlskey": "$server/server-key.pem",
 "authorization-plugins": $plugins}
EOF
  dockerd --config-file "$work/d/daemon.json" --data-root "$work/d/root" --exec-root "$work/d/exec" \
    --pidfile "$work/d/docker.pid" --iptables=false --bridge=none --storage-driver=vfs \
    >"$work/d/log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 300); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && return
    sleep 0.1
  done
  echo "dockerd did not start:" >&2; cat "$work/d/log" >&2; exit 1
}
stop_dockerd() { kill "$dockerd_pid"; wait "$dockerd_pid" 2>/dev/null || true; dockerd_pid=''; }

# latency LABEL: p50/p99 of REQUESTS calls of each path on one TLS keep-alive connection.
latency() {
  python3 - "$1" "$port" "$work/pki/clients/alice" "$requests" <<'EOF'
import http.client, ssl, sys, time
label, port, folder, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
ctx = ssl.create_default_context(cafile=f"{folder}/ca.pem")
ctx.load_cert_chain(f"{folder}/cert.pem", f"{folder}/key.pem")
conn = http.client.HTTPSConnection("localhost", port, context=ctx)
for path in ("/_ping", "/v1.41/containers/json"):
    for _ in range(200):  # warm up
        conn.request("GET", path); r = conn.getresponse(); r.read()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        conn.request("GET", path); r = conn.getresponse(); r.read()
        times.append(time.perf_counter() - t)
        assert r.status == 200, (r.status, path)
    times.sort()
    p = lambda q: times[min(len(times) - 1, int(q * len(times)))] * 1000
    print(f"{label:15} GET {path:24} n={n}  p50 {p(0.50):.3f} ms  p99 {p(0.99):.3f} ms")
EOF
}

start_dockerd
latency "without plugin"
stop_dockerd

echo "unix://$work/plugin.sock" > "$spec"
"$bin" authz serve --socket "$work/plugin.sock" --tls-dir "$work/tls" --audit-log "$work/audit.log" 2>/dev/null &
plugin_pid=$!
for _ in $(seq 100); do [[ -S $work/plugin.sock ]] && break; sleep 0.05; done
start_dockerd "$name"
latency "with plugin"
stop_dockerd

# Memory: 100,000 decisions straight to the plugin's socket (keep-alive), as dockerd sends them.
python3 - "$work/plugin.sock" "$work/pki/clients/alice/cert.pem" "$plugin_pid" <<'EOF'
import base64, json, socket, sys
sock_path, cert, pid = sys.argv[1], open(sys.argv[2], "rb").read(), sys.argv[3]
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return line.split()[1] + " kB"
body = json.dumps({"User": "alice", "UserAuthNMethod": "TLS", "RequestMethod": "GET",
    "RequestUri": "/v1.41/containers/json?all=1", "RequestHeaders": {"User-Agent": "bench"},
    "RequestPeerCertificates": [base64.b64encode(cert).decode()]}).encode()
head = (f"POST /AuthZPlugin.AuthZReq HTTP/1.1\r\nHost: plugin\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n").encode()
s = socket.socket(socket.AF_UNIX); s.connect(sock_path); f = s.makefile("rb")
def one():
    s.sendall(head + body)
    length = 0
    while True:
        line = f.readline()
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
        if line == b"\r\n":
            break
    answer = json.loads(f.read(length))
    assert answer["Allow"] is True, answer
import time
done, times = 0, []
print(f"plugin RSS after {done:>7} decisions: {rss()}")
for target in (1000, 10000, 50000, 100000):
    while done < target:
        started = time.perf_counter(); one(); times.append(time.perf_counter() - started)
        done += 1
    print(f"plugin RSS after {done:>7} decisions: {rss()}")
times.sort()
print(f"plugin alone (AuthZReq on its socket): p50 {times[len(times) // 2] * 1000:.3f} ms"
      f"  p99 {times[int(len(times) * 0.99)] * 1000:.3f} ms")
EOF
