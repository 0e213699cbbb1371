#!/usr/bin/env bash
# services.sh makes sure the services the tests need are there and running:
#   - PostgreSQL on 127.0.0.1 that lets user postgres in without a password,
#     with the test database;
#   - Node.js and npm, for the test that runs the Extra Horizon JavaScript SDK;
#   - RabbitMQ on 127.0.0.1:5672 (guest/guest) and NATS with JetStream on
#     127.0.0.1:4222, for the broker intakes' tests;
#   - Chromium, for the console's browser tests, and curl, for the README's.
# It installs (apt-get) and starts what is missing and is idempotent: when
# everything is in place it changes nothing and takes well under a second.
# `make services` runs it, and `make test` runs that first.
#
# Settings (all optional):
#   CI_PG_PORT       PostgreSQL port to use or start    (5432)
#   CI_PG_DATABASE   database the tests use             (dispatcher_test)
#   CI_NATS_VERSION  nats-server built from the Go module proxy when Debian
#                    has no package of it                 (v2.14.9)
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
pg_port=${CI_PG_PORT:-5432}
pg_db=${CI_PG_DATABASE:-dispatcher_test}

die() { printf '!! %s\n' "$*" >&2; exit 1; }

# Installing and starting services needs root; sudo only when not root already.
sudo=""
if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null; then sudo="sudo -n"; fi

pg_up() { pg_isready -q -h 127.0.0.1 -p "$pg_port"; }
psql_pg() { psql -X -q -w -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U postgres "$@"; }

# pg_cluster prints "VERSION NAME" of the local cluster on $pg_port.
pg_cluster() {
	pg_lsclusters --no-header 2>/dev/null | awk -v p="$pg_port" '$3 == p {print $1, $2; exit}'
}

if ! command -v pg_isready >/dev/null || ! pg_up; then
	if ! command -v pg_ctlcluster >/dev/null || [[ -z $(ls /etc/postgresql 2>/dev/null) ]]; then
		echo "PostgreSQL is not installed: installing it with apt-get"
		$sudo apt-get update -q
		$sudo apt-get install -y -q --no-install-recommends postgresql postgresql-client
	fi
	read -r pg_ver pg_name < <(pg_cluster) || true
	if [[ -z ${pg_ver:-} ]]; then
		# shellcheck disable=SC2012 # version directories are plain numbers
		pg_ver=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
		# shellcheck disable=SC2012
		[[ -n $pg_ver ]] || pg_ver=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
		pg_name=main
		if [[ -d /etc/postgresql/$pg_ver/$pg_name ]]; then
			die "cluster $pg_ver/$pg_name exists but not on port $pg_port (pg_lsclusters); set CI_PG_PORT"
		fi
		echo "creating cluster $pg_ver/$pg_name on port $pg_port"
		$sudo pg_createcluster --port "$pg_port" "$pg_ver" "$pg_name"
	fi
	echo "starting cluster $pg_ver/$pg_name"
	$sudo pg_ctlcluster --skip-systemctl-redirect "$pg_ver" "$pg_name" start || true
	for _ in $(seq 1 60); do pg_up && break; sleep 0.5; done
	pg_up || {
		tail -n 30 "/var/log/postgresql/postgresql-$pg_ver-$pg_name.log" >&2 || true
		die "PostgreSQL did not start on 127.0.0.1:$pg_port"
	}
fi
pg_isready -q -h 127.0.0.1 -p "$pg_port"

# A fresh Debian install asks for a password over TCP (scram-sha-256); the
# tests connect as postgres without one, so trust loopback connections.
if ! psql_pg -d postgres -c 'select 1' >/dev/null 2>&1; then
	read -r pg_ver pg_name < <(pg_cluster) || die "cannot find the cluster on port $pg_port to configure its authentication"
	hba=/etc/postgresql/$pg_ver/$pg_name/pg_hba.conf
	echo "configuring trust authentication for loopback TCP in $hba"
	$sudo sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
	$sudo pg_ctlcluster --skip-systemctl-redirect "$pg_ver" "$pg_name" reload
	for _ in $(seq 1 20); do psql_pg -d postgres -c 'select 1' >/dev/null 2>&1 && break; sleep 0.5; done
	psql_pg -d postgres -c 'select 1' >/dev/null || die "cannot connect as postgres to 127.0.0.1:$pg_port"
fi

# The tests run several dispatcher processes at once (each pools up to 32
# connections) beside the store tests, and the bench a Temporal server on
# PostgreSQL: Debian's 100 connections run out. Raising the limit needs a
# restart, done once.
if (($(psql_pg -d postgres -tAc 'show max_connections') < 300)); then
	read -r pg_ver pg_name < <(pg_cluster) || die "cannot find the cluster on port $pg_port to raise max_connections"
	echo "raising max_connections of $pg_ver/$pg_name to 300 (restarts PostgreSQL)"
	psql_pg -d postgres -c 'alter system set max_connections = 300'
	$sudo pg_ctlcluster --skip-systemctl-redirect "$pg_ver" "$pg_name" restart
	for _ in $(seq 1 60); do pg_up && break; sleep 0.5; done
	pg_up || die "PostgreSQL did not come back on 127.0.0.1:$pg_port after the restart"
fi

if [[ $(psql_pg -d postgres -tAc "select 1 from pg_database where datname = '$pg_db'") != 1 ]]; then
	echo "creating database $pg_db"
	psql_pg -d postgres -c "create database \"$pg_db\""
fi
echo "PostgreSQL ready: postgres://postgres@127.0.0.1:$pg_port/$pg_db?sslmode=disable"

# ---------------------------------------------------------------------------
# Node.js and npm
# ---------------------------------------------------------------------------
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	echo "Node.js or npm is not installed: installing them with apt-get"
	$sudo apt-get update -q
	$sudo apt-get install -y -q --no-install-recommends nodejs npm
fi
echo "Node.js ready: $(node --version), npm $(npm --version)"

# ---------------------------------------------------------------------------
# RabbitMQ and NATS JetStream, for the broker intakes' tests
# ---------------------------------------------------------------------------
port_up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# wait_port PORT WHAT LOG: waits up to a minute for PORT, or dies with LOG's tail.
wait_port() {
	for _ in $(seq 1 120); do port_up "$1" && return 0; sleep 0.5; done
	tail -n 30 "$3" >&2 2>/dev/null || true
	die "$2 did not start on 127.0.0.1:$1"
}

if ! port_up 5672; then
	if ! command -v rabbitmq-server >/dev/null; then
		echo "RabbitMQ is not installed: installing it with apt-get"
		$sudo apt-get update -q
		$sudo apt-get install -y -q --no-install-recommends rabbitmq-server
	fi
	echo "starting RabbitMQ"
	# Debian's package may have started it already (with systemd); the
	# port tells.
	port_up 5672 || $sudo rabbitmq-server -detached || true
	wait_port 5672 RabbitMQ /var/log/rabbitmq/rabbit@"$(hostname -s)".log
fi
echo "RabbitMQ ready: amqp://guest:guest@127.0.0.1:5672/"

nats_bin=$(command -v nats-server || true)
if [[ -z $nats_bin ]]; then
	if [[ -z $(apt-cache policy nats-server 2>/dev/null | awk '/Candidate:/ && $2 != "(none)" {print $2}') ]]; then
		$sudo apt-get update -q
	fi
	if [[ -n $(apt-cache policy nats-server 2>/dev/null | awk '/Candidate:/ && $2 != "(none)" {print $2}') ]]; then
		echo "nats-server is not installed: installing it with apt-get"
		$sudo apt-get install -y -q --no-install-recommends nats-server
		nats_bin=$(command -v nats-server)
	else
		nats_bin=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/bin/nats-server
		if [[ ! -x $nats_bin ]]; then
			echo "Debian has no nats-server: building ${CI_NATS_VERSION:-v2.14.9} from the Go module proxy into bin/"
			GOBIN=$(dirname "$nats_bin") go install "github.com/nats-io/nats-server/v2@${CI_NATS_VERSION:-v2.14.9}"
		fi
	fi
fi
if ! port_up 4222; then
	echo "starting nats-server with JetStream"
	$sudo mkdir -p /var/lib/nats-server
	$sudo start-stop-daemon --start --oknodo --background --exec "$nats_bin" -- \
		-a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
	wait_port 4222 nats-server /var/log/nats-server.log
elif pgrep -a nats-server | grep -q . && ! pgrep -a nats-server | grep -q -- ' -js\b\| --jetstream'; then
	die "a nats-server on 127.0.0.1:4222 runs without JetStream (-js); restart it with -js"
fi
echo "NATS ready: nats://127.0.0.1:4222 (JetStream)"

# ---------------------------------------------------------------------------
# Chromium and curl: the console's browser tests drive Debian's chromium
# (headless, through the DevTools protocol); the README's quick start,
# which a test runs as written, uses curl.
# ---------------------------------------------------------------------------
browser=""
for b in chromium chromium-browser google-chrome; do
	command -v "$b" >/dev/null && browser=$b && break
done
if [[ -z $browser ]] || ! command -v curl >/dev/null; then
	echo "chromium or curl is not installed: installing them with apt-get"
	$sudo apt-get update -q
	$sudo apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core curl
	browser=chromium
fi
echo "Browser ready: $("$browser" --version 2>/dev/null || echo "$browser")"
