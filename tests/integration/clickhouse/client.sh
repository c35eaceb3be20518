#!/usr/bin/env bash
# tests/integration/clickhouse/client.sh DIR [args...]: clickhouse-client against start.sh DIR.
set -euo pipefail
DIR=${1:?usage: client.sh DIR [clickhouse-client args...]}
shift
exec clickhouse-client --host 127.0.0.1 --port "$(cat "$DIR/tcp_port")" "$@"
