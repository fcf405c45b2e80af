#!/usr/bin/env bash
# The registry answers an authenticated read: GET /subjects as the reader, with nothing but bash
# (later cp-schema-registry images ship no curl). start.sh wrote the reader's login to
# /tmp/healthcheck.auth (base64 of user:password, readable by this container's user alone).
# Usage: healthcheck.sh [PORT [PATH]]   (defaults 8081 /subjects)
set -euo pipefail
port=${1:-8081}
path=${2:-/subjects}
auth=$(cat "${HEALTHCHECK_AUTH:-/tmp/healthcheck.auth}")
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET %s HTTP/1.0\r\nHost: localhost\r\nAuthorization: Basic %s\r\n\r\n' "$path" "$auth" >&3
read -r -t 5 _ status _ <&3
[ "$status" = 200 ]
