#!/bin/sh
# Starts the udpswarm client: sh client.sh TRACKERS_FILE (SPEC §10). Keeps its session and
# uploads in ./.udpswarm/ of the current working directory.
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd) || exit 1
if [ ! -f "$here/dist/src/client/main.js" ]; then
  echo "udpswarm: not built; run 'make' in $here" >&2
  exit 1
fi
# The client never speaks TLS, and Node 20 parses every CA certificate named by
# NODE_EXTRA_CA_CERTS at start-up, used or not: ~60 ms per command here.
unset NODE_EXTRA_CA_CERTS
exec node "$here/dist/src/client/main.js" "$@"
