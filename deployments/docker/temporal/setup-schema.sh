#!/bin/sh
# Sets up Temporal's two PostgreSQL databases with temporal-sql-tool (in the
# admin-tools image, whose version must match the server's).
#
# First start: create each database, initialise its schema version, apply
# every versioned schema. Later starts: `create` fails because the database
# exists, and only `update-schema` runs, applying what a newer image brings
# (this is the schema step of a Temporal upgrade). Never rerun
# `setup-schema` on a database in use: it resets the recorded version.
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
		tool --db "$db" setup-schema -v 0.0
	else
		echo "database $db exists (or could not be created): updating its schema only"
	fi
	tool --db "$db" update-schema -d "/etc/temporal/schema/postgresql/v12/$schema/versioned"
done
echo "temporal schemas are up to date"
