#!/usr/bin/env bash
# docker compose's broker: format the storage with the admin user on first start, then run the broker
# with deploy/compose/kafka/server.properties. Passwords come from the environment (.env.example) and
# reach the tools through files only, never a command line (`ps` shows every container's processes).
set -euo pipefail
CONFIG=/etc/kafka/shop/server.properties
DATA=/var/lib/kafka/data
MARKER="$DATA/.shop-admin-user"   # a plain file: Kafka reads only directories and its own files
BIN=/opt/kafka/bin
: "${KAFKA_ADMIN_PASSWORD:?}" "${KAFKA_CONTROLLER_PASSWORD:?}" "${KAFKA_KEYSTORE_PASSWORD:?}" "${CLUSTER_ID:?}"
# They go into JAAS lines and SCRAM arguments: what those would read as syntax is refused (as the
# Python settings refuse it, shared/settings.py).
for pw in "$KAFKA_ADMIN_PASSWORD" "$KAFKA_CONTROLLER_PASSWORD" "$KAFKA_KEYSTORE_PASSWORD"; do
  case "$pw" in *[[:space:]\"\\,\]\$]*) echo "a Kafka password holds whitespace or one of \" \\ , ] \$" >&2; exit 2;; esac
done
# The tools below are short-lived JVMs: KAFKA_HEAP_OPTS (the broker's 512 MB) is for the broker only.
BROKER_HEAP="${KAFKA_HEAP_OPTS:-}"
export KAFKA_HEAP_OPTS="-Xmx128m"
umask 077
secrets=$(mktemp -d)
trap 'rm -rf "$secrets"' EXIT

# A node of three (docker-compose.brokers3.yml sets SHOP_KAFKA_VOTERS): its own properties. How many
# brokers the storage was made for is kept beside it: a one-broker volume cannot join a cluster.
brokers=1
if [ -n "${SHOP_KAFKA_VOTERS:-}" ]; then
  brokers=$(tr ',' '\n' <<< "$SHOP_KAFKA_VOTERS" | grep -c .)
  bash /etc/kafka/shop/cluster.sh "$CONFIG" > /tmp/server.properties
  CONFIG=/tmp/server.properties
fi
if [ -f "$DATA/meta.properties" ]; then
  formatted=$(cat "$DATA/.shop-brokers" 2>/dev/null || echo 1)
  if [ "$formatted" != "$brokers" ]; then
    echo "kafka: this volume was made for $formatted broker(s), not $brokers:" \
      "\`docker compose down -v\` first (it deletes the stack's data)" >&2
    exit 2
  fi
fi

if [ ! -f "$DATA/meta.properties" ]; then
  # printf is a shell builtin: the password is in no process's arguments, only in the @-file java reads.
  printf '%s\n' format -t "$CLUSTER_ID" -c "$CONFIG" \
    --add-scram "SCRAM-SHA-512=[name=admin,password=$KAFKA_ADMIN_PASSWORD]" > "$secrets/format.args"
  "$BIN/kafka-storage.sh" "@$secrets/format.args"
  touch "$MARKER"
  echo "$brokers" > "$DATA/.shop-brokers"
elif [ ! -f "$MARKER" ]; then
  # A volume formatted before the broker required logins has no admin user, and formatting again
  # would lose its events: run the broker once as it was (unsecured, on the container's loopback only),
  # add the admin through it, and stop it.
  echo "kafka: adding the admin user to storage from before authentication"
  cat > "$secrets/unsecured.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:9093
listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$DATA
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
auto.create.topics.enable=false
PROPS
  KAFKA_HEAP_OPTS="$BROKER_HEAP" "$BIN/kafka-server-start.sh" "$secrets/unsecured.properties" &
  broker=$!
  until "$BIN/kafka-broker-api-versions.sh" --bootstrap-server 127.0.0.1:9092 > /dev/null 2>&1; do
    kill -0 "$broker" 2>/dev/null || { echo "kafka did not start unsecured" >&2; exit 1; }
    sleep 2
  done
  printf 'SCRAM-SHA-512=password=%s\n' "$KAFKA_ADMIN_PASSWORD" > "$secrets/admin.config"
  "$BIN/kafka-configs.sh" --bootstrap-server 127.0.0.1:9092 --alter --entity-type users \
    --entity-name admin --add-config-file "$secrets/admin.config"
  kill "$broker" && wait "$broker" || true
  touch "$MARKER"
fi

# For the healthcheck: the admin's login, readable by this container's user alone.
cat > /tmp/admin-client.properties <<PROPS
security.protocol=SASL_SSL
ssl.truststore.type=PEM
ssl.truststore.location=/etc/kafka/tls/ca.crt
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$KAFKA_ADMIN_PASSWORD";
PROPS
export KAFKA_HEAP_OPTS="$BROKER_HEAP"
rm -rf "$secrets" && trap - EXIT  # exec replaces this shell: its EXIT trap would never run
exec "$BIN/kafka-server-start.sh" "$CONFIG"
