#!/bin/sh
# Sets up Temporal's two PostgreSQL databases with temporal-sql-tool (in the
# admin-tools image, whose version must match the server's).
#
# Each step is safe to rerun, so every start runs them all: `create` fails
# when the database exists (ignored), `setup-schema -v 0.0` adds the version
# tables when missing and leaves a recorded version above 0.0 as it is, and
# `update-schema` applies what a newer image brings (the schema step of a
# Temporal upgrade).
set -eu

tool() {
	temporal-sql-tool --plugin postgres12_pgx --ep "$POSTGRES_SEEDS" -p "${DB_PORT:-5432}" \
		-u "$POSTGRES_USER" "$@"
}

for pair in temporal:temporal temporal_visibility:visibility; do
	db=${pair%%:*}
	schema=${pair#*:}
	if tool --db "$db" create; then
		echo "created database $db"
	else
		echo "database $db exists (or could not be created)"
	fi
	tool --db "$db" setup-schema -v 0.0
	tool --db "$db" update-schema -d "/etc/temporal/schema/postgresql/v12/$schema/versioned"
done
echo "temporal schemas are up to date"
