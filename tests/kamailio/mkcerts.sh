#!/usr/bin/env bash
# Throwaway test PKI for the TLS / WSS tests, made at test time (never committed):
#   mkcerts.sh <dir>
#   ca.pem            trust anchor ("sipreg test CA")
#   server.pem/.key   signed by ca: localhost, 127.0.0.1, ::1
#   wronghost.pem/.key signed by ca, only for wrong.example.invalid
#   other-ca.pem      an unrelated CA (the "wrong CA" of negative tests)
#   expired.pem/.key  signed by ca for 127.0.0.1/localhost, valid only in January 2020
set -euo pipefail
dir="$1"
mkdir -p "$dir"
cd "$dir"
[ -s server.pem ] && [ -s wronghost.pem ] && [ -s other-ca.pem ] && [ -s expired.pem ] && exit 0
O="/O=sipreg loopback test"
ca() {
	openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -keyout "$1.key" -out "$1.pem" \
		-subj "$O/CN=$2" -addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}
leaf() {
	openssl req -new -newkey rsa:2048 -nodes -sha256 -keyout "$1.key" -out "$1.csr" \
		-subj "$O/CN=$2" 2>/dev/null
	printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' "$3" >"$1.ext"
	openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days 3650 \
		-extfile "$1.ext" -out "$1.pem" 2>/dev/null
	rm -f "$1.csr" "$1.ext"
}
ca ca "sipreg test CA"
ca other-ca "sipreg unrelated CA"
leaf server localhost "DNS:localhost,IP:127.0.0.1,IP:::1"
leaf wronghost wrong.example.invalid "DNS:wrong.example.invalid"
# An expired certificate: `openssl ca` takes explicit validity dates.
mkdir -p ca-db
: >ca-db/index.txt
echo 1000 >ca-db/serial
cat >ca-db/ca.cnf <<'CNF'
[ca]
default_ca = test
[test]
database = ca-db/index.txt
serial = ca-db/serial
new_certs_dir = ca-db
policy = any
default_md = sha256
copy_extensions = copy
[any]
commonName = supplied
CNF
openssl req -new -newkey rsa:2048 -nodes -sha256 -keyout expired.key -out expired.csr \
	-subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
openssl ca -batch -config ca-db/ca.cnf -cert ca.pem -keyfile ca.key -notext \
	-startdate 20200101000000Z -enddate 20200201000000Z -in expired.csr -out expired.pem 2>/dev/null
rm -f expired.csr
chmod 600 ./*.key
