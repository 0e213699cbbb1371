#!/bin/sh
# Registers $NAMESPACE with $RETENTION unless it exists. Waits (bounded) for
# the frontend first: the server's port opens before it serves requests.
set -eu

tries=0
until temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; do
	tries=$((tries + 1))
	if [ "$tries" -ge 30 ]; then
		echo "temporal at $TEMPORAL_ADDRESS is not healthy after 30 tries" >&2
		exit 1
	fi
	sleep 2
done

if temporal operator namespace describe --address "$TEMPORAL_ADDRESS" -n "$NAMESPACE" >/dev/null 2>&1; then
	echo "namespace $NAMESPACE exists"
else
	temporal operator namespace create --address "$TEMPORAL_ADDRESS" -n "$NAMESPACE" --retention "$RETENTION"
	echo "namespace $NAMESPACE created (retention $RETENTION)"
fi
