#!/bin/sh
# Starts a udpswarm peer: sh peer.sh TRACKER_IP TRACKER_PORT MIN_ALIVE_SECONDS [options]
# Shares ./Shared in the current working directory.
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd) || exit 1
if [ ! -f "$here/dist/src/peer/main.js" ]; then
  echo "udpswarm: not built; run 'make' in $here" >&2
  exit 1
fi
exec node "$here/dist/src/peer/main.js" "$@"
