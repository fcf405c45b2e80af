#!/usr/bin/env bash
# A node of docker compose's three-broker cluster (docker-compose.brokers3.yml): the one-broker
# server.properties with what a node changes, printed to stdout. The same changes as the no-Docker
# stack's (deploy/local/localstack/components.py, Kafka._cluster_properties), but for the network:
# the controllers reach each other across the containers' network, so their listener has TLS too.
# Environment: SHOP_KAFKA_NODE_ID (1..3), SHOP_KAFKA_VOTERS (id@host:9093,...), SHOP_KAFKA_HOST_PORT
# (this node's port on the host: 9092, 9094, 9096).
# Usage: cluster.sh SERVER_PROPERTIES
set -euo pipefail
config=${1:?usage: cluster.sh SERVER_PROPERTIES}
: "${SHOP_KAFKA_NODE_ID:?}" "${SHOP_KAFKA_VOTERS:?}" "${SHOP_KAFKA_HOST_PORT:?}"
host=$(hostname)
changed='node.id|controller.quorum.voters|listeners|advertised.listeners|listener.security.protocol.map'
changed+='|offsets.topic.replication.factor|transaction.state.log.replication.factor'
changed+='|transaction.state.log.min.isr|share.coordinator.state.topic.replication.factor'
changed+='|share.coordinator.state.topic.min.isr|min.insync.replicas'
grep -vE "^(${changed//./\\.})=" "$config"
cat <<PROPS

# This node of three (cluster.sh).
node.id=$SHOP_KAFKA_NODE_ID
controller.quorum.voters=$SHOP_KAFKA_VOTERS
listeners=CLIENT://:19092,HOST://:$SHOP_KAFKA_HOST_PORT,CONTROLLER://:9093
advertised.listeners=CLIENT://$host:19092,HOST://localhost:$SHOP_KAFKA_HOST_PORT
listener.security.protocol.map=CLIENT:SASL_SSL,HOST:SASL_SSL,CONTROLLER:SASL_SSL
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
min.insync.replicas=2
PROPS
