#!/bin/bash
# Red-team review repro: a client imported from a dind layout keeps its CN
# ("docker:dind client") but is named "docker-dind-client"; authz.json is keyed by the NAME
# while the plugin (src/authz/decide.rs role_allows -> policy.lookup(cn)) looks the role up by
# the certificate's CN. Once roles are in use, `role list` shows the client as admin, yet the
# plugin denies every call it makes ("has no role in authz.json").
# Usage: review/import_cn_role.sh [path/to/dockertls]; exits 1 when the defect is present.
set -eu
B=${1:-$(cd "$(dirname "$0")/.." && pwd)/target/debug/dockertls}
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
S=$W/certs; mkdir -p "$S"/{ca,server,client}
cd "$S"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca/key.pem -out ca/cert.pem \
  -days 3650 -subj '/CN=docker:dind CA' -addext basicConstraints=critical,CA:TRUE \
  -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
leaf() { # dir cn eku [san]
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1/key.pem" -subj "/CN=$2" -out "$1/req.csr" 2>/dev/null
  printf 'extendedKeyUsage=%s\nkeyUsage=critical,digitalSignature\n%s\n' "$3" "${4:-}" > "$1/ext"
  openssl x509 -req -in "$1/req.csr" -CA ca/cert.pem -CAkey ca/key.pem -CAcreateserial -days 300 -extfile "$1/ext" -out "$1/cert.pem" 2>/dev/null
  cp ca/cert.pem "$1/ca.pem"; rm "$1/req.csr" "$1/ext"
}
leaf server docker serverAuth 'subjectAltName=DNS:docker,DNS:localhost'
leaf client 'docker:dind client' clientAuth
chmod 600 */key.pem
"$B" --dir "$W/pki" import "$S" >/dev/null
"$B" --dir "$W/pki" client add ops >/dev/null
"$B" --dir "$W/pki" client role ops read-only >/dev/null
echo "clients: $(ls "$W/pki/clients" | tr '\n' ' ')"
echo "CN of the imported client: $(openssl x509 -in "$W/pki/clients/docker-dind-client/cert.pem" -noout -subject)"
"$B" --dir "$W/pki" role list | head -3
policy=$(ls "$W"/pki/servers/*/authz.json | head -1)
echo "authz.json clients: $(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["clients"])' "$policy")"
if python3 -c 'import json,sys; sys.exit(0 if "docker:dind client" in json.load(open(sys.argv[1]))["clients"] else 1)' "$policy"; then
  echo "OK: the plugin finds the imported client's role by its CN"
else
  echo "DEFECT: the plugin looks roles up by CN 'docker:dind client', which authz.json does not hold: every call of that admin client is denied"
  exit 1
fi
