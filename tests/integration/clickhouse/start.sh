#!/usr/bin/env bash
# tests/integration/clickhouse/start.sh DIR: start a private ClickHouse server for tests.
#
# Interface (reused by the chat-service, demo and bench tests; keep it stable):
#   start.sh DIR     Starts Debian's clickhouse-server (18.16; any newer one works too) with a
#                    config generated in DIR (data, logs, tmp all under DIR), listening on
#                    127.0.0.1 only, on free ports (HTTP and native TCP). Waits until
#                    GET /ping answers "Ok." (deadline $LG_CH_START_TIMEOUT_S, default 60 s),
#                    then prints exactly one line on stdout:
#                        clickhouse http://127.0.0.1:PORT
#                    and exits 0 (the server keeps running in the background).
#                    Files left in DIR: url (the URL), http_port, tcp_port, pid, server.log.
#                    If DIR already holds a config from an earlier start, the same ports and
#                    data are reused: this is how a test restarts ClickHouse after an outage.
#   stop.sh DIR      SIGTERM, wait (deadline 30 s), then SIGKILL. `stop.sh DIR -9` kills at
#                    once (crash simulation). Idempotent; exits 0 when nothing runs.
#   client.sh DIR [clickhouse-client args...]   clickhouse-client on the server's TCP port.
# LG_CH_HTTPS=1 (first start of DIR only): also serve HTTPS on a free port with a fresh
# self-signed certificate for 127.0.0.1 (openssl); DIR/https_url holds https://127.0.0.1:PORT
# and DIR/ca.pem the certificate to trust. The printed line stays the plain HTTP URL.
# Users: "default" with no password, and "llmgate" with password "llmgate-secret" (for auth
# tests: basic auth in the URL or X-ClickHouse-User/-Key). Server timezone UTC. Exit status != 0 (and a reason on
# stderr, with the tail of the server log) when the server does not come up in time.
# LG_CLICKHOUSE_IMPL=chdb (first start of DIR decides; later starts reuse it): current
# ClickHouse instead, the chDB engine (26.x, npm package installed by scripts/install-npm)
# behind chdb/chdb_http.js, a loopback HTTP interface for the SQL the tests send; same
# interface, same users, data in DIR/data. HTTP only (no TCP port, client.sh, or HTTPS).
set -euo pipefail
DIR=${1:?usage: start.sh DIR}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
SERVER=${LG_CLICKHOUSE_SERVER:-$(command -v clickhouse-server || echo /usr/sbin/clickhouse-server)}
TIMEOUT=${LG_CH_START_TIMEOUT_S:-60}

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

if [ -f "$DIR/pid" ] && kill -0 "$(cat "$DIR/pid")" 2>/dev/null; then
  echo "clickhouse $(cat "$DIR/url")"
  exit 0
fi

HERE=$(cd "$(dirname "$0")" && pwd)
if [ ! -f "$DIR/config.xml" ] && [ ! -f "$DIR/impl" ] && [ "${LG_CLICKHOUSE_IMPL:-}" = chdb ]; then
  if [ ! -d "$HERE/chdb/node_modules/@chdb/lib-linux-x64-gnu" ]; then
    echo "start.sh: LG_CLICKHOUSE_IMPL=chdb but $HERE/chdb/node_modules is missing (scripts/install-npm)" >&2
    exit 1
  fi
  mkdir -p "$DIR/data"
  HTTP_PORT=$(free_port)
  echo chdb > "$DIR/impl"
  echo "$HTTP_PORT" > "$DIR/http_port"
  echo "http://127.0.0.1:$HTTP_PORT" > "$DIR/url"
fi
if [ -f "$DIR/impl" ]; then
  HTTP_PORT=$(cat "$DIR/http_port")
  setsid node "$HERE/chdb/chdb_http.js" "$DIR" "$HTTP_PORT" >>"$DIR/server.log" 2>&1 < /dev/null &
  echo $! > "$DIR/pid"
elif [ ! -f "$DIR/config.xml" ]; then
  HTTP_PORT=$(free_port)
  TCP_PORT=$(free_port)
  while [ "$TCP_PORT" = "$HTTP_PORT" ]; do TCP_PORT=$(free_port); done
  INTER_PORT=$(free_port)
  mkdir -p "$DIR/data" "$DIR/tmp" "$DIR/user_files" "$DIR/format_schemas"
  HTTPS_XML=""
  if [ "${LG_CH_HTTPS:-0}" = 1 ]; then
    HTTPS_PORT=$(free_port)
    while [ "$HTTPS_PORT" = "$HTTP_PORT" ] || [ "$HTTPS_PORT" = "$TCP_PORT" ]; do
      HTTPS_PORT=$(free_port)
    done
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
      -addext "subjectAltName=IP:127.0.0.1" -keyout "$DIR/key.pem" -out "$DIR/ca.pem" 2>/dev/null
    HTTPS_XML="<https_port>$HTTPS_PORT</https_port>
    <openSSL><server>
        <certificateFile>$DIR/ca.pem</certificateFile><privateKeyFile>$DIR/key.pem</privateKeyFile>
        <verificationMode>none</verificationMode><loadDefaultCAFile>false</loadDefaultCAFile>
        <cacheSessions>true</cacheSessions><disableProtocols>sslv2,sslv3</disableProtocols>
        <preferServerCiphers>true</preferServerCiphers>
    </server></openSSL>"
    echo "https://127.0.0.1:$HTTPS_PORT" > "$DIR/https_url"
  fi
  cat > "$DIR/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>$DIR/server.log</log>
        <errorlog>$DIR/server.err.log</errorlog>
        <size>100M</size>
        <count>2</count>
    </logger>
    <http_port>$HTTP_PORT</http_port>
    <tcp_port>$TCP_PORT</tcp_port>
    <interserver_http_port>$INTER_PORT</interserver_http_port>
    <listen_host>127.0.0.1</listen_host>
    <max_connections>256</max_connections>
    <keep_alive_timeout>10</keep_alive_timeout>
    <max_concurrent_queries>64</max_concurrent_queries>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mark_cache_size>268435456</mark_cache_size>
    <path>$DIR/data/</path>
    <tmp_path>$DIR/tmp/</tmp_path>
    <user_files_path>$DIR/user_files/</user_files_path>
    <format_schema_path>$DIR/format_schemas/</format_schema_path>
    <users_config>$DIR/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
    <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
    <max_session_timeout>3600</max_session_timeout>
    <default_session_timeout>60</default_session_timeout>
    $HTTPS_XML
</yandex>
XML
  cat > "$DIR/users.xml" <<XML
<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <load_balancing>random</load_balancing>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
        <llmgate>
            <password>llmgate-secret</password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </llmgate>
    </users>
    <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
        <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>
    </interval></default></quotas>
</yandex>
XML
  echo "$HTTP_PORT" > "$DIR/http_port"
  echo "$TCP_PORT" > "$DIR/tcp_port"
  echo "http://127.0.0.1:$HTTP_PORT" > "$DIR/url"
fi

if [ ! -f "$DIR/impl" ]; then
  HTTP_PORT=$(cat "$DIR/http_port")
  # setsid: the server must not die with the caller's process group (ctest kills groups).
  setsid "$SERVER" --config-file="$DIR/config.xml" >>"$DIR/stdout.log" 2>&1 < /dev/null &
  echo $! > "$DIR/pid"
fi

deadline=$(( $(date +%s) + TIMEOUT ))
while :; do
  if [ "$(curl -s -m 2 "http://127.0.0.1:$HTTP_PORT/ping" 2>/dev/null || true)" = "Ok." ]; then
    break
  fi
  if ! kill -0 "$(cat "$DIR/pid")" 2>/dev/null; then
    echo "start.sh: the server exited; log tail:" >&2
    tail -n 20 "$DIR/server.err.log" "$DIR/stdout.log" "$DIR/server.log" >&2 2>/dev/null || true
    exit 1
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "start.sh: the server did not answer /ping within ${TIMEOUT}s" >&2
    tail -n 20 "$DIR/server.err.log" "$DIR/server.log" >&2 2>/dev/null || true
    exit 1
  fi
  sleep 0.1
done
echo "clickhouse $(cat "$DIR/url")"
