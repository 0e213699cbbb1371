#!/bin/bash
# Runs once, when the postgres container initialises an empty data
# directory: one role per application, each owning its own databases.
# The dispatcher's role owns `dispatcher`; Temporal's role may create
# databases so that temporal-sql-tool makes `temporal` and
# `temporal_visibility` itself.
set -euo pipefail

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
	-v dispatcher_pw="$DISPATCHER_DB_PASSWORD" -v temporal_pw="$TEMPORAL_DB_PASSWORD" <<'SQL'
CREATE ROLE dispatcher LOGIN PASSWORD :'dispatcher_pw';
CREATE DATABASE dispatcher OWNER dispatcher;
CREATE ROLE temporal LOGIN CREATEDB PASSWORD :'temporal_pw';
SQL
