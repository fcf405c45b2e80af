#!/usr/bin/env bash
# docker compose's schema registry (Confluent's): its logins, and its own login to Kafka, made here
# from the environment (.env.example) into files readable by this container's user alone, never a
# command line. Then the image's own entrypoint.
set -euo pipefail
: "${KAFKA_SCHEMA_REGISTRY_PASSWORD:?}" "${SCHEMA_REGISTRY_PROVISIONING_PASSWORD:?}"
: "${SCHEMA_REGISTRY_STOREFRONT_PASSWORD:?}" "${SCHEMA_REGISTRY_READER_PASSWORD:?}"
for pw in "$KAFKA_SCHEMA_REGISTRY_PASSWORD" "$SCHEMA_REGISTRY_PROVISIONING_PASSWORD" \
  "$SCHEMA_REGISTRY_STOREFRONT_PASSWORD" "$SCHEMA_REGISTRY_READER_PASSWORD"; do
  case "$pw" in *[[:space:]\"\\,\]\$]*) echo "a password holds whitespace or one of \" \\ , ] \$" >&2; exit 2;; esac
done
umask 077
dir=$(mktemp -d)

# HTTP basic: user: password,role (Jetty's property-file format). Confluent's open-source registry
# only authenticates: every user named here may read and write (README: Security).
cat > "$dir/users" <<USERS
provisioning: $SCHEMA_REGISTRY_PROVISIONING_PASSWORD,admin
storefront: $SCHEMA_REGISTRY_STOREFRONT_PASSWORD,developer
reader: $SCHEMA_REGISTRY_READER_PASSWORD,readonly
USERS
# Jetty 12 (Confluent Platform 8) moved its JAAS modules to org.eclipse.jetty.security.jaas.
module=org.eclipse.jetty.security.jaas.spi.PropertyFileLoginModule
if compgen -G "/usr/share/java/schema-registry/jetty-jaas-9*.jar" > /dev/null; then
  module=org.eclipse.jetty.jaas.spi.PropertyFileLoginModule
fi
cat > "$dir/jaas.conf" <<JAAS
SchemaRegistry {
  $module required file="$dir/users" debug="false";
};
JAAS
# For the healthcheck (healthcheck.sh, bash alone): the reader's login, as HTTP basic sends it.
printf 'reader:%s' "$SCHEMA_REGISTRY_READER_PASSWORD" | base64 -w0 > /tmp/healthcheck.auth

export SCHEMA_REGISTRY_OPTS="${SCHEMA_REGISTRY_OPTS:-} -Djava.security.auth.login.config=$dir/jaas.conf"
export SCHEMA_REGISTRY_KAFKASTORE_SASL_JAAS_CONFIG="org.apache.kafka.common.security.scram.ScramLoginModule required username=\"schema-registry\" password=\"$KAFKA_SCHEMA_REGISTRY_PASSWORD\";"
# The image turns every SCHEMA_REGISTRY_* variable into a setting in a file: the passwords above
# (and the host's view of the registry's URL) are not settings of it.
unset SCHEMA_REGISTRY_PROVISIONING_PASSWORD SCHEMA_REGISTRY_STOREFRONT_PASSWORD SCHEMA_REGISTRY_READER_PASSWORD \
  SCHEMA_REGISTRY_URL SCHEMA_REGISTRY_DB_PASSWORD KAFKA_SCHEMA_REGISTRY_PASSWORD
exec /etc/confluent/docker/run
