#!/usr/bin/env bash
# Builds cert dirs with OpenSSL alone (an independent tool), one per scenario, for the verify
# tests: good dirs in every key format, the Docker docs' recipe, docker-machine's and
# docker:dind's layouts, and at least one dir that fails or warns on each check.
#   fixtures.sh OUT
set -euo pipefail
out=$1
mkdir -p "$out"
cd "$out"
cnf=$PWD/ext.cnf
cat > "$cnf" <<'CNF'
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ca_no_ku]
basicConstraints = critical, CA:true
subjectKeyIdentifier = hash
[leaf_ca]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:docker.example.com, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[server_client_eku]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = DNS:docker.example.com
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[server_no_eku]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
subjectAltName = DNS:docker.example.com
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[server_no_san]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[server_dot]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:docker.example.com.
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[server_mapped]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:docker.example.com, IP:::ffff:10.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[server_bad_ku]
basicConstraints = critical, CA:false
keyUsage = critical, keyAgreement
extendedKeyUsage = serverAuth
subjectAltName = DNS:docker.example.com
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[server_no_aki]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:docker.example.com
subjectKeyIdentifier = hash
authorityKeyIdentifier = none
[docs_server]
subjectAltName = DNS:docker.example.com,IP:10.10.10.20,IP:127.0.0.1
extendedKeyUsage = serverAuth
[docs_client]
extendedKeyUsage = clientAuth
CNF

key() { # FILE TYPE
  case $2 in
    p256) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" ;;
    p384) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$1" ;;
    sec1) openssl ecparam -name prime256v1 -genkey -noout -out "$1" ;;
    ed25519) openssl genpkey -algorithm ed25519 -out "$1" ;;
    rsa) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null ;;
    pkcs1) openssl genrsa -traditional -out "$1" 2048 2>/dev/null ;;
    rsa1024) openssl genrsa -out "$1" 1024 2>/dev/null ;;
  esac
}
make_ca() { # DIR TYPE [SECTION] [DAYS]
  mkdir -p "$1"
  key "$1/ca-key.pem" "$2"
  openssl req -new -x509 -config "$cnf" -extensions "${3:-ca}" -key "$1/ca-key.pem" \
    -subj "/CN=fixture CA ${1//\//-}" -days "${4:-3650}" -out "$1/ca.pem"
}
sign() { # CA_DIR CSR_KEY SUBJECT SECTION OUT [DAYS] [extra openssl x509 args...]
  local ca=$1 k=$2 subject=$3 section=$4 outfile=$5 days=${6:-365}
  shift 6 2>/dev/null || shift $#
  openssl req -new -config "$cnf" -key "$k" -subj "$subject" -out "$outfile.csr"
  openssl x509 -req -in "$outfile.csr" -CA "$ca/ca.pem" -CAkey "$ca/ca-key.pem" -CAcreateserial \
    -days "$days" -extfile "$cnf" -extensions "$section" -out "$outfile" "$@" 2>/dev/null
  rm -f "$outfile.csr"
}
server_dir() { # DIR CA_DIR TYPE [SECTION] [DAYS] [extra...]
  local dir=$1 ca=$2 type=$3 section=${4:-server} days=${5:-365}
  shift 5 2>/dev/null || shift $#
  mkdir -p "$dir"
  cp "$ca/ca.pem" "$dir/ca.pem"
  key "$dir/server-key.pem" "$type"
  sign "$ca" "$dir/server-key.pem" "/CN=docker.example.com" "$section" "$dir/server-cert.pem" "$days" "$@"
}
client_dir() { # DIR CA_DIR TYPE [SECTION] [DAYS]
  mkdir -p "$1"
  cp "$2/ca.pem" "$1/ca.pem"
  key "$1/key.pem" "$3"
  sign "$2" "$1/key.pem" "/CN=alice" "${4:-client}" "$1/cert.pem" "${5:-365}"
}
secure() { # DIR...: Docker's modes
  find "$@" -name '*key*.pem' -exec chmod 0400 {} +
  find "$@" -name '*.pem' ! -name '*key*' -exec chmod 0444 {} +
}

# Good dirs in every key format: everything ok.
for type in p256 p384 sec1 ed25519 rsa pkcs1; do
  make_ca "good-$type/ca" "$type"
  server_dir "good-$type/server" "good-$type/ca" "$type"
  client_dir "good-$type/client" "good-$type/ca" "$type"
done

# Docker's documented recipe, in one folder: RSA, an encrypted CA key, a CA without keyUsage,
# leaves with only SAN/EKU extensions.
mkdir docs && (
  cd docs
  openssl genrsa -aes256 -passout pass:docs -out ca-key.pem 2048 2>/dev/null
  openssl req -new -x509 -days 365 -key ca-key.pem -passin pass:docs -sha256 -out ca.pem -subj "/CN=docs CA"
  openssl genrsa -out server-key.pem 2048 2>/dev/null
  openssl req -subj "/CN=docker.example.com" -sha256 -new -key server-key.pem -out server.csr
  openssl x509 -req -days 365 -sha256 -in server.csr -CA ca.pem -CAkey ca-key.pem -passin pass:docs \
    -CAcreateserial -out server-cert.pem -extfile "$cnf" -extensions docs_server 2>/dev/null
  openssl genrsa -out key.pem 2048 2>/dev/null
  openssl req -subj '/CN=client' -new -key key.pem -out client.csr
  openssl x509 -req -days 365 -sha256 -in client.csr -CA ca.pem -CAkey ca-key.pem -passin pass:docs \
    -CAcreateserial -out cert.pem -extfile "$cnf" -extensions docs_client 2>/dev/null
  rm -f client.csr server.csr ca.srl
)

# docker-machine: ca.pem, cert.pem/key.pem (client), server.pem/server-key.pem.
make_ca machine-ca p256
mkdir machine
cp machine-ca/ca.pem machine/ca.pem
key machine/server-key.pem p256
sign machine-ca machine/server-key.pem /CN=docker.example.com server machine/server.pem
key machine/key.pem p256
sign machine-ca machine/key.pem /CN=alice client machine/cert.pem
rm -rf machine-ca

# docker:dind's /certs: ca/{cert,key}.pem, server/{ca,cert,key}.pem, client/{ca,cert,key}.pem.
make_ca dind/ca p256
mv dind/ca/ca.pem dind/ca/cert.pem
mv dind/ca/ca-key.pem dind/ca/key.pem
mkdir -p dind/server dind/client
cp dind/ca/cert.pem dind/server/ca.pem
cp dind/ca/cert.pem dind/client/ca.pem
key dind/server/key.pem p256
openssl req -new -config "$cnf" -key dind/server/key.pem -subj /CN=docker -out s.csr
openssl x509 -req -in s.csr -CA dind/ca/cert.pem -CAkey dind/ca/key.pem -CAcreateserial -days 365 \
  -extfile "$cnf" -extensions server -out dind/server/cert.pem 2>/dev/null
key dind/client/key.pem p256
openssl req -new -config "$cnf" -key dind/client/key.pem -subj /CN=docker -out c.csr
openssl x509 -req -in c.csr -CA dind/ca/cert.pem -CAkey dind/ca/key.pem -CAcreateserial -days 365 \
  -extfile "$cnf" -extensions client -out dind/client/cert.pem 2>/dev/null
rm -f s.csr c.csr

# easy-rsa's layout: pki/ca.crt, pki/private/{ca,NAME}.key, pki/issued/NAME.crt.
mkdir -p easyrsa/pki/issued easyrsa/pki/private
key easyrsa/pki/private/ca.key p256
openssl req -new -x509 -config "$cnf" -extensions ca -key easyrsa/pki/private/ca.key -subj "/CN=Easy-RSA CA" \
  -days 3650 -out easyrsa/pki/ca.crt
for entry in docker:server alice:client; do
  name=${entry%%:*} section=${entry##*:}
  key "easyrsa/pki/private/$name.key" p256
  openssl req -new -config "$cnf" -key "easyrsa/pki/private/$name.key" -subj "/CN=$name" -out "easyrsa/$name.csr"
  openssl x509 -req -in "easyrsa/$name.csr" -CA easyrsa/pki/ca.crt -CAkey easyrsa/pki/private/ca.key -CAcreateserial \
    -days 365 -extfile "$cnf" -extensions "$section" -out "easyrsa/pki/issued/$name.crt" 2>/dev/null
  rm "easyrsa/$name.csr"
done
chmod 0600 easyrsa/pki/private/*.key

# One CA signs the failing dirs; a second one is "another CA".
make_ca bad-ca p256
make_ca other-ca p256
bad() { echo "bad/$1"; }

client_dir "$(bad files-no-ca)" bad-ca p256 && rm "$(bad files-no-ca)/ca.pem"
server_dir "$(bad parse-garbage-key)" bad-ca p256 && echo garbage > "$(bad parse-garbage-key)/server-key.pem"
client_dir "$(bad parse-encrypted-key)" bad-ca p256
openssl pkey -in "$(bad parse-encrypted-key)/key.pem" -aes256 -passout pass:x -out "$(bad parse-encrypted-key)/key.enc"
mv "$(bad parse-encrypted-key)/key.enc" "$(bad parse-encrypted-key)/key.pem"
client_dir "$(bad parse-key-in-cert)" bad-ca p256
cat "$(bad parse-key-in-cert)/key.pem" >> "$(bad parse-key-in-cert)/cert.pem"
server_dir "$(bad ca-not-ca)" bad-ca p256
mkdir -p leafca && key leafca/ca-key.pem p256
openssl req -new -x509 -config "$cnf" -extensions leaf_ca -key leafca/ca-key.pem -subj "/CN=not a CA" -days 30 -out leafca/ca.pem
server_dir "$(bad ca-not-ca)" leafca p256
rm -rf leafca
server_dir "$(bad chain-other-ca)" bad-ca p256 && cp other-ca/ca.pem "$(bad chain-other-ca)/ca.pem"
if command -v faketime >/dev/null; then
  mkdir -p "$(bad validity-expired)"
  cp bad-ca/ca.pem "$(bad validity-expired)/ca.pem"
  key "$(bad validity-expired)/server-key.pem" p256
  faketime '2020-01-01 00:00:00' openssl req -new -config "$cnf" -key "$(bad validity-expired)/server-key.pem" -subj /CN=docker.example.com -out exp.csr
  faketime '2020-01-01 00:00:00' openssl x509 -req -in exp.csr -CA bad-ca/ca.pem -CAkey bad-ca/ca-key.pem -CAcreateserial \
    -days 30 -extfile "$cnf" -extensions server -out "$(bad validity-expired)/server-cert.pem" 2>/dev/null
  rm -f exp.csr
fi
# Issued 8 of its 10 days ago: less than a third of its lifetime left, so due (the renewal
# rule, issue 15). A fresh 10-day certificate is not due.
mkdir -p "$(bad validity-expiring)"
cp bad-ca/ca.pem "$(bad validity-expiring)/ca.pem"
key "$(bad validity-expiring)/server-key.pem" p256
openssl req -new -config "$cnf" -key "$(bad validity-expiring)/server-key.pem" -subj /CN=docker.example.com -out expiring.csr
faketime -f -8d openssl x509 -req -in expiring.csr -CA bad-ca/ca.pem -CAkey bad-ca/ca-key.pem -CAcreateserial \
  -days 10 -extfile "$cnf" -extensions server -out "$(bad validity-expiring)/server-cert.pem" 2>/dev/null
rm -f expiring.csr
server_dir "$(bad key-match)" bad-ca p256
key "$(bad key-match)/server-key.pem.new" p256 && mv "$(bad key-match)/server-key.pem.new" "$(bad key-match)/server-key.pem"
server_dir "$(bad key-usage)" bad-ca p256 server_bad_ku
server_dir "$(bad eku-wrong)" bad-ca p256 server_client_eku
server_dir "$(bad eku-missing)" bad-ca p256 server_no_eku
server_dir "$(bad san-none)" bad-ca p256 server_no_san
server_dir "$(bad san-trailing-dot)" bad-ca p256 server_dot
server_dir "$(bad san-mapped-ipv4)" bad-ca p256 server_mapped
server_dir "$(bad key-strength)" bad-ca rsa1024
server_dir "$(bad sig-sha1)" bad-ca p256 server 365 -sha1
server_dir "$(bad lint-negative-serial)" bad-ca p256 server 365 -set_serial -5
server_dir "$(bad lint-no-aki)" bad-ca p256 server_no_aki
server_dir "$(bad perm-key)" bad-ca p256
server_dir "$(bad perm-cert)" bad-ca p256
rm -rf bad-ca/ca.srl other-ca ext.cnf ./*.srl bad-ca
find . -name '*.srl' -delete

secure .
chmod 0644 "$(bad perm-key)/server-key.pem"
chmod 0666 "$(bad perm-cert)/server-cert.pem"
