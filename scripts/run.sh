#!/usr/bin/env bash
# run.sh starts everything a developer needs on one machine, and is what
# `make run` executes:
#
#   - a Temporal dev server (bin/temporal, state in .run/temporal.db),
#   - a local mail catcher (bin/mailcatcher, built from cmd/mailcatcher) so the
#     mails the service sends can be read,
#   - the service itself (bin/dispatcher serve),
#
# then prints the URLs and an admin token. Ctrl-C stops all of it; if any part
# dies, the others are stopped and the script exits non-zero.
#
# Every setting comes from the environment and a variable that is already set
# is never overwritten (see the defaults below). Local state lives in .run/
# (DISPATCHER_RUN_DIR).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
run_dir=${DISPATCHER_RUN_DIR:-.run}
mkdir -p "$run_dir"

# ---------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------
: "${DISPATCHER_BIN:=$root/bin/dispatcher}"
: "${TEMPORAL_CLI:=$root/bin/temporal}"
: "${MAILCATCHER_BIN:=$root/bin/mailcatcher}"

: "${DATABASE_URL:=sqlite:$run_dir/dispatcher.db}"
: "${DISPATCHER_HTTP_ADDR:=127.0.0.1:8080}"
: "${TEMPORAL_ADDRESS:=127.0.0.1:7233}"
: "${DISPATCHER_TEMPORAL_UI_PORT:=8233}"
: "${DISPATCHER_MAIL_SMTP_PORT:=1025}"
: "${DISPATCHER_MAIL_UI_PORT:=8025}"
: "${DISPATCHER_STARTUP_TIMEOUT:=60}" # seconds, for each service

if [[ -z "${DISPATCHER_JWT_SECRET:-}" ]]; then
	secret_file=$run_dir/jwt-secret
	if [[ ! -s $secret_file ]]; then
		(umask 077 && head -c 48 /dev/urandom | base64 | tr -d '\n=' >"$secret_file")
	fi
	DISPATCHER_JWT_SECRET=$(<"$secret_file")
fi

# /metrics takes a token of its own.
if [[ -z "${DISPATCHER_METRICS_TOKEN:-}" ]]; then
	metrics_file=$run_dir/metrics-token
	if [[ ! -s $metrics_file ]]; then
		(umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$metrics_file")
	fi
	DISPATCHER_METRICS_TOKEN=$(<"$metrics_file")
fi

export DATABASE_URL DISPATCHER_HTTP_ADDR TEMPORAL_ADDRESS DISPATCHER_JWT_SECRET DISPATCHER_METRICS_TOKEN

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
bold="" red="" plain=""
if [[ -t 2 ]]; then bold=$'\033[1m' red=$'\033[31m' plain=$'\033[0m'; fi
say() { printf '%s>> %s%s\n' "$bold" "$*" "$plain" >&2; }
warn() { printf '%s!! %s%s\n' "$red" "$*" "$plain" >&2; }
die() { warn "$@"; exit 1; }

# with_timeout SECONDS COMMAND...: timeout(1) where it exists (not on stock macOS).
with_timeout() {
	if command -v timeout >/dev/null; then timeout "$@"; else shift && "$@"; fi
}

# redact URL: URL with the password of its user information hidden, and
# that of a key=value connection string.
redact() { sed -E "s#(://[^/@:]*):[^/]*@#\\1:xxxxx@#; s#(password=)('[^']*'|[^ &]*)#\\1xxxxx#g" <<<"$1"; }

host_of() { local a=${1##*://}; a=${a%%/*}; echo "${a%:*}"; }
port_of() { local a=${1##*://}; a=${a%%/*}; echo "${a##*:}"; }

# listening HOST PORT: true if something accepts TCP connections there.
listening() {
	local host=${1:-127.0.0.1} port=$2
	[[ $host == "" || $host == "0.0.0.0" || $host == "[::]" ]] && host=127.0.0.1
	# shellcheck disable=SC2016 # $0 and $1 expand in the inner shell
	with_timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$host" "$port" 2>/dev/null
}

# http_ok URL: true if URL answers 200.
http_ok() {
	if command -v curl >/dev/null; then
		[[ $(curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" || true) == 200 ]]
		return
	fi
	local rest=${1#http://} hostport path
	hostport=${rest%%/*}
	path=/${rest#*/}
	[[ $rest == "$hostport" ]] && path=/
	# shellcheck disable=SC2016 # expands in the inner shell
	with_timeout 3 bash -c '
		exec 3<>"/dev/tcp/$0/$1" || exit 1
		printf "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" "$2" "$0:$1" >&3
		read -r _ code _ <&3
		[[ $code == 200 ]]' "$(host_of "$hostport")" "$(port_of "$hostport")" "$path" 2>/dev/null
}

# Children we started, by name; stopped in reverse order on exit.
declare -a child_pids=() child_names=() child_logs=()
last_pid=""

# Each child runs in a session of its own (setsid), so a Ctrl-C in the terminal
# reaches only this script, which then stops the children in order; otherwise
# they would race it to exit. Without setsid (stock macOS) they share our group.
own_group=""
command -v setsid >/dev/null && own_group=setsid

start_child() { # NAME LOG COMMAND...; LOG "-" means the terminal
	local name=$1 log=$2
	shift 2
	if [[ $log == - ]]; then
		$own_group "$@" &
	else
		$own_group "$@" >"$log" 2>&1 &
	fi
	last_pid=$!
	child_pids+=("$last_pid")
	child_names+=("$name")
	child_logs+=("$log")
}

alive() { kill -0 "$1" 2>/dev/null; }

# dead_child prints the index of the first child that is no longer running.
dead_child() {
	local i
	for i in "${!child_pids[@]}"; do
		alive "${child_pids[$i]}" || { echo "$i"; return 0; }
	done
	return 1
}

log_tail() { # LOG
	[[ $1 != - && -f $1 ]] || return 0
	echo "---- last lines of $1 ----" >&2
	tail -n 25 "$1" >&2
	echo "----" >&2
}

# wait_for NAME SECONDS PID LOG CHECK...: runs CHECK until it succeeds, fails
# with the log tail when PID dies or SECONDS pass.
wait_for() {
	local name=$1 secs=$2 pid=$3 log=$4 deadline
	shift 4
	deadline=$((SECONDS + secs))
	until "$@"; do
		if ! alive "$pid"; then
			log_tail "$log"
			die "$name exited during start-up${log:+ (log: $log)}"
		fi
		if ((SECONDS >= deadline)); then
			log_tail "$log"
			die "$name did not come up within ${secs}s${log:+ (log: $log)}"
		fi
		sleep 0.3
	done
}

# signal_child SIGNAL PID: signals the child's whole process group when it has one.
signal_child() {
	if [[ -n $own_group ]]; then
		kill -"$1" -- "-$2" 2>/dev/null || kill -"$1" "$2" 2>/dev/null || true
	else
		kill -"$1" "$2" 2>/dev/null || true
	fi
}

stopping=0
# cleanup stops the children newest first (the service before what it uses),
# each with SIGTERM and, after 15 s, SIGKILL.
cleanup() {
	local status=$?
	((stopping)) && return
	stopping=1
	# Its output may be gone (a closed terminal, `make run | tee` stopped
	# with Ctrl-C): a line that cannot be written must not stop it before
	# the children are.
	trap '' INT TERM HUP PIPE
	set +e
	local i pid deadline
	for ((i = ${#child_pids[@]} - 1; i >= 0; i--)); do
		pid=${child_pids[$i]}
		if alive "$pid"; then
			say "stopping ${child_names[$i]} (pid $pid)"
			signal_child TERM "$pid"
			deadline=$((SECONDS + 15))
			while alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
			if alive "$pid"; then
				say "${child_names[$i]} did not stop within 15s, killing it"
				signal_child KILL "$pid"
			fi
		fi
		wait "$pid" 2>/dev/null || true
	done
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE

# Both are checked on their port, and printed for the CLI.
for addr in DISPATCHER_HTTP_ADDR TEMPORAL_ADDRESS; do
	[[ $(port_of "${!addr}") =~ ^[1-9][0-9]*$ ]] ||
		die "$addr=${!addr}: \`make run\` needs host:port with a port of its own (not 0): it checks the service there and prints it"
done

# ---------------------------------------------------------------------------
# Temporal dev server
# ---------------------------------------------------------------------------
temporal_host=$(host_of "$TEMPORAL_ADDRESS")
temporal_port=$(port_of "$TEMPORAL_ADDRESS")
temporal_ui="http://${temporal_host/localhost/127.0.0.1}:${DISPATCHER_TEMPORAL_UI_PORT}"
temporal_log=$run_dir/temporal.log

temporal_healthy() {
	"$TEMPORAL_CLI" operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1
}

# The service links to executions in the Web UI.
: "${DISPATCHER_TEMPORAL_UI_URL:=$temporal_ui}"
export DISPATCHER_TEMPORAL_UI_URL

if listening "$temporal_host" "$temporal_port"; then
	warn "Temporal: something already listens on $TEMPORAL_ADDRESS, using it (not starting a dev server; set TEMPORAL_ADDRESS to start one elsewhere)"
	temporal_ui="$DISPATCHER_TEMPORAL_UI_URL (if that server has its UI there)"
else
	case $temporal_host in
	127.0.0.1 | localhost) ;;
	*) die "TEMPORAL_ADDRESS=$TEMPORAL_ADDRESS does not answer, and a dev server can only be started on 127.0.0.1" ;;
	esac
	[[ -x $TEMPORAL_CLI ]] || die "$TEMPORAL_CLI not found: run \`make bin/temporal\` (or \`make run\`)"
	say "Temporal: starting dev server on $TEMPORAL_ADDRESS, UI on port $DISPATCHER_TEMPORAL_UI_PORT (log: $temporal_log)"
	start_child "temporal dev server" "$temporal_log" \
		"$TEMPORAL_CLI" server start-dev \
		--ip 127.0.0.1 \
		--port "$temporal_port" \
		--ui-port "$DISPATCHER_TEMPORAL_UI_PORT" \
		--db-filename "$run_dir/temporal.db" \
		--sqlite-pragma journal_mode=wal \
		--sqlite-pragma synchronous=normal \
		--log-level warn
	wait_for "Temporal dev server" "$DISPATCHER_STARTUP_TIMEOUT" "$last_pid" "$temporal_log" temporal_healthy
fi

# ---------------------------------------------------------------------------
# Mail catcher
# ---------------------------------------------------------------------------
mail_ui=""
if [[ -n "${DISPATCHER_SMTP_URL:-}" ]]; then
	say "Mail: DISPATCHER_SMTP_URL is set ($(redact "$DISPATCHER_SMTP_URL")), not starting a mail catcher"
	mail_ui="(none: mails go to $(redact "$DISPATCHER_SMTP_URL"))"
elif listening 127.0.0.1 "$DISPATCHER_MAIL_SMTP_PORT"; then
	warn "Mail: something already listens on 127.0.0.1:$DISPATCHER_MAIL_SMTP_PORT, using it as the mail catcher (set DISPATCHER_MAIL_SMTP_PORT to start one elsewhere)"
	DISPATCHER_SMTP_URL=smtp://127.0.0.1:$DISPATCHER_MAIL_SMTP_PORT
	mail_ui="http://127.0.0.1:$DISPATCHER_MAIL_UI_PORT (if that catcher has a UI there)"
else
	[[ -x $MAILCATCHER_BIN ]] || die "$MAILCATCHER_BIN not found: run \`make mailcatcher\` (or \`make run\`), or set DISPATCHER_SMTP_URL"
	DISPATCHER_SMTP_URL=smtp://127.0.0.1:$DISPATCHER_MAIL_SMTP_PORT
	mail_ui=http://127.0.0.1:$DISPATCHER_MAIL_UI_PORT
	mail_log=$run_dir/mailcatcher.log
	say "Mail: starting the mail catcher, SMTP on 127.0.0.1:$DISPATCHER_MAIL_SMTP_PORT, UI on $mail_ui (log: $mail_log)"
	# Mails live in its memory only: a restart forgets them.
	start_child "mail catcher" "$mail_log" \
		"$MAILCATCHER_BIN" \
		-smtp "127.0.0.1:$DISPATCHER_MAIL_SMTP_PORT" \
		-http "127.0.0.1:$DISPATCHER_MAIL_UI_PORT"
	wait_for "mail catcher" "$DISPATCHER_STARTUP_TIMEOUT" "$last_pid" "$mail_log" http_ok "$mail_ui/healthz"
fi
if [[ -n ${DISPATCHER_SMTP_URL:-} ]]; then
	export DISPATCHER_SMTP_URL
fi
# Functions on this machine (the README's, on the mail catcher at 127.0.0.1:8025) are
# loopback addresses, which the dispatcher refuses unless allowed; set
# DISPATCHER_OUTBOUND_ALLOW (even to nothing) to choose otherwise.
export DISPATCHER_OUTBOUND_ALLOW=${DISPATCHER_OUTBOUND_ALLOW-127.0.0.0/8,::1/128}

# ---------------------------------------------------------------------------
# The service
# ---------------------------------------------------------------------------
[[ -x $DISPATCHER_BIN ]] || die "$DISPATCHER_BIN not found: run \`make build\` (or \`make run\`)"
http_host=$(host_of "$DISPATCHER_HTTP_ADDR")
http_port=$(port_of "$DISPATCHER_HTTP_ADDR")
[[ -z $http_host || $http_host == 0.0.0.0 ]] && http_host=127.0.0.1
api_url="http://$http_host:$http_port"
if listening "$http_host" "$http_port"; then
	die "something already listens on $DISPATCHER_HTTP_ADDR: stop it or set DISPATCHER_HTTP_ADDR"
fi

say "Dispatcher: starting on $api_url (database: $(redact "$DATABASE_URL"))"
start_child "dispatcher" - "$DISPATCHER_BIN" serve
wait_for "dispatcher" "$DISPATCHER_STARTUP_TIMEOUT" "$last_pid" - http_ok "$api_url/health"

token=$("$DISPATCHER_BIN" token --admin --ttl 24h) || die "\`$DISPATCHER_BIN token --admin --ttl 24h\` failed"

# What the CLI needs in another terminal: the API and, for the commands
# that read the database themselves (audit, migrate, encryption), a
# SQLite path that works from any directory. A PostgreSQL URL is the
# user's own setting, and may hold a password: not printed.
cli_env="DISPATCHER_URL=$api_url DISPATCHER_TOKEN=$token"
if [[ $DATABASE_URL == sqlite:* ]]; then
	db_path=${DATABASE_URL#sqlite:}
	[[ $db_path == /* ]] || db_path=$root/$db_path
	cli_env+=" DATABASE_URL=$(printf %q "sqlite:$db_path")"
fi
# dispatcher token signs with the secret this run made (one the user set
# is theirs to pass): read from its file, never printed.
if [[ -n ${secret_file:-} ]]; then
	secret_path=$secret_file
	[[ $secret_path == /* ]] || secret_path=$root/$secret_path
	cli_env+=" DISPATCHER_JWT_SECRET=\"\$(cat $(printf %q "$secret_path"))\""
fi

# The metrics token by reference, not in clear in whatever keeps this
# output.
metrics_ref='$DISPATCHER_METRICS_TOKEN'
if [[ -n ${metrics_file:-} ]]; then
	metrics_path=$metrics_file
	[[ $metrics_path == /* ]] || metrics_path=$root/$metrics_path
	metrics_ref="\$(cat $(printf %q "$metrics_path"))"
fi

cat >&2 <<EOF

  ────────────────────────────────────────────────────────────────────
  Dispatcher is running. Ctrl-C stops everything.

    API              $api_url
    Console          $api_url/console  (sign in with the token below)
    Temporal Web UI  $temporal_ui
    Mail catcher UI  $mail_ui  (mails, and calls to functions at /fn/<name>)
    SMTP             $(redact "${DISPATCHER_SMTP_URL:-(none)}")
    Outbound allow   ${DISPATCHER_OUTBOUND_ALLOW:-(none: functions must be https to public hosts)}
    Database         $(redact "$DATABASE_URL")
    Logs             $run_dir/*.log (Temporal, mail catcher); the dispatcher's here

  Admin token (valid 24h):
    $token

  Try:
    curl -s -H "Authorization: Bearer $token" $api_url/dispatchers/v1/
    curl -s -H "Authorization: Bearer $metrics_ref" $api_url/metrics

  The CLI, in another terminal:
    export $cli_env
    $DISPATCHER_BIN executions list
  ────────────────────────────────────────────────────────────────────

EOF

# ---------------------------------------------------------------------------
# Supervise: stop everything as soon as one part dies.
# ---------------------------------------------------------------------------
while true; do
	if i=$(dead_child); then
		status=0
		wait "${child_pids[$i]}" 2>/dev/null || status=$?
		log_tail "${child_logs[$i]}"
		warn "${child_names[$i]} exited (status $status); stopping the rest"
		exit 1
	fi
	# sleep in the background so a signal interrupts `wait` at once.
	sleep 1 &
	wait $! || true
done
