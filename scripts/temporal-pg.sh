#!/usr/bin/env bash
# temporal-pg.sh runs a real Temporal server (bin/temporal-server, not the dev
# server) on PostgreSQL, with SQL visibility on PostgreSQL too: the shape the
# project deploys. `make temporal-pg` runs `start`; docs/temporal-postgres.md
# explains it all.
#
#   scripts/temporal-pg.sh start [OPTIONS]   set up, run the server, register the namespace
#   scripts/temporal-pg.sh setup [OPTIONS]   only create/upgrade the databases, write the config
#   scripts/temporal-pg.sh stop  [OPTIONS]   stop the server whose pid file is in --dir
#   scripts/temporal-pg.sh drop  [OPTIONS]   stop it, then drop its two databases
#
# `start` runs the server in the foreground (Ctrl-C stops it) or, with
# --background, detaches it and exits 0 once the frontend answers and the
# namespace exists (non-zero, with the log's tail, if it never does). Every
# step is idempotent: a second `start` on the same databases only applies
# schema versions a newer server brings, and one on a running cluster says so
# and exits 0.
#
# Options (each has an environment variable; a flag wins):
#   --pg-host HOST     TEMPORAL_PG_HOST       PostgreSQL host          (127.0.0.1)
#   --pg-port N        TEMPORAL_PG_PORT       PostgreSQL port          (5432)
#   --pg-user USER     TEMPORAL_PG_USER       PostgreSQL user          (postgres)
#                      TEMPORAL_PG_PASSWORD   its password (environment only, kept out of ps)
#   --plugin P         TEMPORAL_PG_PLUGIN     Temporal's SQL plugin: postgres12_pgx (pgx,
#                                             prepared statements cached per connection)
#                                             or postgres12 (lib/pq)
#   --db-prefix P      TEMPORAL_PG_DB_PREFIX  databases P_temporal and P_temporal_visibility
#                                             (none: temporal and temporal_visibility)
#   --port N           TEMPORAL_PG_FRONTEND_PORT  first of 10 consecutive ports (7233):
#                        N frontend gRPC, N+1 history, N+2 matching, N+3 worker,
#                        N+4 frontend HTTP, N+5..N+8 membership, N+9 Prometheus metrics
#   --dir DIR          TEMPORAL_PG_DIR        config, pid and log   (.run/temporal-pg[-P])
#   --namespace NS     TEMPORAL_PG_NAMESPACE  registered if missing (default)
#   --retention D      TEMPORAL_PG_RETENTION  its retention         (168h, as deployed)
#   --shards N         TEMPORAL_PG_SHARDS     numHistoryShards      (4; fixed at first start)
#   --log-level L      TEMPORAL_PG_LOG_LEVEL  server log level      (warn)
#   --timeout S        TEMPORAL_PG_TIMEOUT    seconds to wait until ready (120)
#   --background       TEMPORAL_PG_BACKGROUND=1  detach; log in DIR/server.log
#   --owner-pid PID    with --background: the server stops when PID exits
#                      (a benchmark passes its own pid, so a crash leaks nothing)
#
# Binaries: TEMPORAL_SERVER_BIN, TEMPORAL_SQL_TOOL, TEMPORAL_CLI (default bin/…,
# built by `make tools`). Schema files: TEMPORAL_PG_SCHEMA_DIR (the
# schema/postgresql/v12 directory of go.temporal.io/server in the module cache,
# found with `go list -m` in tools/; without Go, the copy embedded in the tool).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

bold="" red="" plain=""
if [[ -t 2 ]]; then bold=$'\033[1m' red=$'\033[31m' plain=$'\033[0m'; fi
say() { printf '%s>> %s%s\n' "$bold" "$*" "$plain" >&2; }
warn() { printf '%s!! %s%s\n' "$red" "$*" "$plain" >&2; }
die() { warn "$@"; exit 1; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

# ---------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------
[[ $# -ge 1 ]] || usage
cmd=$1
shift
case $cmd in start | setup | stop | drop) ;; -h | --help | help) usage ;; *) die "unknown command $cmd (start, setup, stop, drop)" ;; esac

pg_host=${TEMPORAL_PG_HOST:-127.0.0.1}
pg_port=${TEMPORAL_PG_PORT:-5432}
pg_user=${TEMPORAL_PG_USER:-postgres}
pg_password=${TEMPORAL_PG_PASSWORD:-}
plugin=${TEMPORAL_PG_PLUGIN:-postgres12_pgx}
prefix=${TEMPORAL_PG_DB_PREFIX:-}
port=${TEMPORAL_PG_FRONTEND_PORT:-7233}
dir=${TEMPORAL_PG_DIR:-}
namespace=${TEMPORAL_PG_NAMESPACE:-default}
retention=${TEMPORAL_PG_RETENTION:-168h}
shards=${TEMPORAL_PG_SHARDS:-4}
log_level=${TEMPORAL_PG_LOG_LEVEL:-warn}
timeout=${TEMPORAL_PG_TIMEOUT:-120}
background=${TEMPORAL_PG_BACKGROUND:-}
owner_pid=""

server_bin=${TEMPORAL_SERVER_BIN:-$root/bin/temporal-server}
sql_tool=${TEMPORAL_SQL_TOOL:-$root/bin/temporal-sql-tool}
cli=${TEMPORAL_CLI:-$root/bin/temporal}

while [[ $# -gt 0 ]]; do
	opt=$1
	val=""
	if [[ $opt == --*=* ]]; then val=${opt#*=} opt=${opt%%=*}; fi
	case $opt in
	--background) background=1 ;;
	-h | --help) usage ;;
	--pg-host | --pg-port | --pg-user | --plugin | --db-prefix | --port | --dir | --namespace | \
		--retention | --shards | --log-level | --timeout | --owner-pid)
		if [[ $1 != *=* ]]; then
			[[ $# -ge 2 ]] || die "$opt needs a value"
			val=$2
			shift
		fi
		case $opt in
		--pg-host) pg_host=$val ;;
		--pg-port) pg_port=$val ;;
		--pg-user) pg_user=$val ;;
		--plugin) plugin=$val ;;
		--db-prefix) prefix=$val ;;
		--port) port=$val ;;
		--dir) dir=$val ;;
		--namespace) namespace=$val ;;
		--retention) retention=$val ;;
		--shards) shards=$val ;;
		--log-level) log_level=$val ;;
		--timeout) timeout=$val ;;
		--owner-pid) owner_pid=$val ;;
		esac
		;;
	*) die "unknown option $opt (--help lists them)" ;;
	esac
	shift
done
[[ $background == 0 || $background == false ]] && background=""

# Database names go into SQL unquoted: keep them to what needs no quoting,
# and within PostgreSQL's 63 bytes with the longest suffix.
[[ -z $prefix || $prefix =~ ^[a-z_][a-z0-9_]{0,41}$ ]] ||
	die "--db-prefix must be lower-case letters, digits and _ (at most 42), starting with a letter: $prefix"
[[ $plugin == postgres12 || $plugin == postgres12_pgx ]] || die "--plugin must be postgres12_pgx or postgres12: $plugin"
for n in pg_port port shards timeout; do
	[[ ${!n} =~ ^[0-9]+$ ]] || die "${n//_/-} must be a number: ${!n}"
done
# The server keeps its membership ports in a smallint column.
((port >= 1 && port + 9 <= 32767)) || die "--port $port: the 10 ports from it must fit below 32768 (Temporal stores them as smallint)"
[[ -z $owner_pid || $owner_pid =~ ^[0-9]+$ ]] || die "--owner-pid must be a pid: $owner_pid"

db_main=${prefix:+${prefix}_}temporal
db_vis=${prefix:+${prefix}_}temporal_visibility
dir=${dir:-$root/.run/temporal-pg${prefix:+-$prefix}}
[[ $dir == /* ]] || dir=$PWD/$dir
# One spelling per directory: the pid check below compares it textually.
dir=$(realpath -m -- "$dir" 2>/dev/null || echo "${dir%/}")
config=$dir/temporal.yaml
pid_file=$dir/server.pid
log_file=$dir/server.log
address=127.0.0.1:$port

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
need() { [[ -x $1 ]] || die "$1 is missing: run make tools"; }

# with_timeout SECONDS COMMAND...: timeout(1) where it exists (not on stock macOS).
with_timeout() {
	if command -v timeout >/dev/null; then timeout "$@"; else shift && "$@"; fi
}

# detach COMMAND... &: run it in a session of its own (setsid; nohup where
# there is none), so it outlives this script and the terminal. Only ever
# called with &: it execs in that subshell, so $! is the command's pid.
detach() {
	if command -v setsid >/dev/null; then exec setsid "$@"; else exec nohup "$@"; fi
}

# listening PORT: true if something on 127.0.0.1 accepts TCP connections there.
listening() {
	# shellcheck disable=SC2016 # $0 expands in the inner shell
	with_timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0"' "$1" 2>/dev/null
}

# running_pid prints the pid of this directory's server if it runs.
running_pid() {
	local pid
	[[ -s $pid_file ]] || return 1
	pid=$(<"$pid_file")
	# The pid must still be our server (with this config), not a recycled pid.
	# (No `ps | grep -q`: with pipefail, grep's early exit can fail the pipe.)
	local args
	if [[ $pid =~ ^[0-9]+$ ]] && args=$(ps -ww -o args= -p "$pid" 2>/dev/null) &&
		[[ "$args " == *" --root $dir "* ]]; then
		echo "$pid"
		return 0
	fi
	rm -f "$pid_file"
	return 1
}

# sql runs temporal-sql-tool on the PostgreSQL server; its (debug-level,
# statement by statement) output is shown only when it fails.
sql() {
	local out
	if ! out=$(SQL_PASSWORD=$pg_password "$sql_tool" --plugin "$plugin" \
		--ep "$pg_host" -p "$pg_port" -u "$pg_user" "$@" 2>&1); then
		printf '%s\n' "$out" >&2
		die "temporal-sql-tool $* failed on $pg_user@$pg_host:$pg_port"
	fi
}

# schema_dir prints the schema/postgresql/v12 directory of the server module
# tools/go.mod pins (the version bin/temporal-server was built from), or
# nothing when it cannot be found.
schema_dir() {
	if [[ -n ${TEMPORAL_PG_SCHEMA_DIR:-} ]]; then
		echo "$TEMPORAL_PG_SCHEMA_DIR"
		return
	fi
	local mod
	mod=$(cd "$root/tools" && go list -m -f '{{.Dir}}' go.temporal.io/server 2>/dev/null) || return 0
	[[ -d $mod/schema/postgresql/v12 ]] && echo "$mod/schema/postgresql/v12"
	return 0
}

# tcli runs the Temporal CLI against this server only, whatever TEMPORAL_*
# variables or profile (Temporal Cloud address, TLS, API key) the user has.
tcli() { "$cli" "$@" --address "$address" --disable-config-env --disable-config-file; }

# yaml_str quotes a value for YAML (single quotes; a quote doubled).
yaml_str() { printf "'%s'" "${1//\'/\'\'}"; }

stop_server() {
	local pid
	if ! pid=$(running_pid); then
		say "no server running for $dir"
		return 0
	fi
	say "stopping the Temporal server (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 150); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	if kill -0 "$pid" 2>/dev/null; then
		warn "pid $pid still runs after 30 s: killing it"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$pid_file"
}

# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------
setup() {
	need "$sql_tool"
	local schemas pair db name
	schemas=$(schema_dir)
	for pair in "$db_main:temporal" "$db_vis:visibility"; do
		db=${pair%%:*}
		name=${pair#*:}
		# All three are idempotent: create ignores an existing database,
		# setup-schema -v 0.0 only adds the version tables if missing (it
		# never lowers a recorded version), update-schema applies only the
		# versions above the recorded one.
		sql --db "$db" create
		sql --db "$db" setup-schema -v 0.0
		if [[ -n $schemas ]]; then
			sql --db "$db" update-schema --schema-dir "$schemas/$name/versioned"
		else
			sql --db "$db" update-schema --schema-name "postgresql/v12/$name"
		fi
	done
	say "databases $db_main and $db_vis on $pg_user@$pg_host:$pg_port are up to date${schemas:+ (schema: $schemas)}"
	write_config
}

write_config() {
	mkdir -p "$dir"
	(
		umask 077 # it may hold the password
		cat >"$config" <<EOF
# Written by scripts/temporal-pg.sh for bin/temporal-server; rewritten on
# each start, so edit the script (or its options), not this file.
log:
  stdout: true
  level: $(yaml_str "$log_level")

persistence:
  defaultStore: postgres-default
  visibilityStore: postgres-visibility
  # Written into the database on the first start and fixed forever.
  numHistoryShards: $shards
  datastores:
    postgres-default:
      sql:
        pluginName: $plugin
        databaseName: $db_main
        connectAddr: $(yaml_str "$pg_host:$pg_port")
        connectProtocol: tcp
        user: $(yaml_str "$pg_user")
        password: $(yaml_str "$pg_password")
        maxConns: 20
        maxIdleConns: 20
        maxConnLifetime: 1h
    postgres-visibility:
      sql:
        pluginName: $plugin
        databaseName: $db_vis
        connectAddr: $(yaml_str "$pg_host:$pg_port")
        connectProtocol: tcp
        user: $(yaml_str "$pg_user")
        password: $(yaml_str "$pg_password")
        maxConns: 10
        maxIdleConns: 10
        maxConnLifetime: 1h

global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: 127.0.0.1
  metrics:
    prometheus:
      framework: tally
      timerType: histogram
      listenAddress: 127.0.0.1:$((port + 9))

services:
  frontend:
    rpc:
      grpcPort: $port
      httpPort: $((port + 4))
      membershipPort: $((port + 5))
      bindOnLocalHost: true
  history:
    rpc:
      grpcPort: $((port + 1))
      membershipPort: $((port + 6))
      bindOnLocalHost: true
  matching:
    rpc:
      grpcPort: $((port + 2))
      membershipPort: $((port + 7))
      bindOnLocalHost: true
  worker:
    rpc:
      grpcPort: $((port + 3))
      membershipPort: $((port + 8))
      bindOnLocalHost: true

clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: 127.0.0.1:$port

dcRedirectionPolicy:
  policy: noop

dynamicConfigClient:
  filepath: $(yaml_str "$root/deployments/temporal/dynamicconfig.yaml")
  pollInterval: 10s
EOF
	)
}

# wait_ready PID: until the frontend is healthy and the namespace exists.
# On failure it stops the server, so nothing half-started is left behind.
wait_ready() {
	local pid=$1 deadline=$((SECONDS + timeout)) why=""
	until tcli operator cluster health >/dev/null 2>&1; do
		if ! kill -0 "$pid" 2>/dev/null; then
			why="the Temporal server exited before it was ready"
		elif ((SECONDS >= deadline)); then
			why="the Temporal server is not healthy on $address after ${timeout}s"
		fi
		[[ -z $why ]] || break
		sleep 0.2
	done
	if [[ -n $why ]]; then
		:
	elif tcli operator namespace describe -n "$namespace" >/dev/null 2>&1; then
		say "namespace $namespace exists"
	elif tcli operator namespace create -n "$namespace" --retention "$retention" >/dev/null; then
		say "namespace $namespace registered (retention $retention)"
	else
		why="cannot register namespace $namespace"
	fi
	# Each service learns of a new namespace at its next refresh: ready
	# is when the frontend serves it (what dispatcher serve asks first).
	until [[ -n $why ]] || tcli operator search-attribute list -n "$namespace" >/dev/null 2>&1; do
		if ((SECONDS >= deadline)); then
			why="namespace $namespace is not served after ${timeout}s"
		fi
		sleep 0.2
	done
	[[ -n $why ]] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	rm -f "$pid_file"
	if [[ -n $background ]]; then
		tail -n 40 "$log_file" >&2
		why+=" (log: $log_file)"
	fi
	die "$why"
}

start() {
	need "$server_bin"
	need "$cli"
	local pid p
	if pid=$(running_pid); then
		say "the Temporal server for $dir already runs (pid $pid) on $address; stop it with: $0 stop --dir $dir"
		return 0
	fi
	for ((p = port; p <= port + 9; p++)); do
		listening "$p" && die "port $p is in use: the server needs $port-$((port + 9)) (choose others with --port)"
	done
	setup

	mkdir -p "$dir"
	local args=(--root "$dir" --config . --env temporal --allow-no-auth start)
	if [[ -n $background ]]; then
		detach "$server_bin" "${args[@]}" </dev/null >"$log_file" 2>&1 &
		pid=$!
		echo "$pid" >"$pid_file"
		wait_ready "$pid"
		if [[ -n $owner_pid ]]; then
			# shellcheck disable=SC2016 # expands in the watchdog's shell
			detach bash -c 'while kill -0 "$0" 2>/dev/null && kill -0 "$1" 2>/dev/null; do sleep 1; done
				kill -TERM "$1" 2>/dev/null' "$owner_pid" "$pid" </dev/null >/dev/null 2>&1 &
		fi
		banner "$pid" "stop it with: $0 stop --dir $dir"
		return 0
	fi

	"$server_bin" "${args[@]}" &
	pid=$!
	echo "$pid" >"$pid_file"
	# A non-interactive shell starts & jobs with SIGINT ignored; the server
	# catches it anyway, and this trap makes sure it stops with the script.
	trap 'kill -TERM "$pid" 2>/dev/null || true; wait "$pid" || true; rm -f "$pid_file"; exit 130' INT TERM
	wait_ready "$pid"
	banner "$pid" "Ctrl-C stops it"
	local rc=0
	wait "$pid" || rc=$?
	rm -f "$pid_file"
	return "$rc"
}

banner() {
	cat >&2 <<EOF

  ${bold}Temporal $("$server_bin" --version | awk '{print $NF}') on PostgreSQL is ready${plain} (pid $1; $2)

    Frontend (TEMPORAL_ADDRESS)  $address
    HTTP API                     http://127.0.0.1:$((port + 4))
    Metrics                      http://127.0.0.1:$((port + 9))/metrics
    Namespace                    $namespace
    Databases                    $db_main, $db_vis on $pg_user@$pg_host:$pg_port
    Config                       $config
EOF
	[[ -n $background ]] && echo "    Log                          $log_file" >&2
	echo >&2
}

drop() {
	need "$sql_tool"
	stop_server
	local db
	for db in "$db_main" "$db_vis"; do
		sql --db "$db" drop --force
	done
	say "dropped databases $db_main and $db_vis on $pg_host:$pg_port"
}

case $cmd in
setup) setup ;;
start) start ;;
stop) stop_server ;;
drop) drop ;;
esac
