#!/bin/sh
# Starts a udpswarm peer: sh peer.sh TRACKER_IP TRACKER_PORT MIN_ALIVE_SECONDS [options]
# Shares ./Shared in the current working directory.
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd) || exit 1
if [ ! -f "$here/dist/peer-start.cjs" ]; then
  echo "udpswarm: not built; run 'make' in $here" >&2
  exit 1
fi
# A small young generation and V8's memory-saving mode keep a long transfer under 100 MB
# of resident memory (measured: 1 GiB download peak 154 MB -> 81 MB, no loss of speed).
# dist/peer-start.cjs runs dist/peer.cjs, dist/src/peer/main.js and its imports in one file,
# compiled from V8's code cache (scripts/bundle.mjs, which reads the flags of this line):
# it starts ~120 ms of CPU sooner than the modules.
# A peer never speaks TLS, and Node 20 parses every CA certificate named by
# NODE_EXTRA_CA_CERTS at start-up, used or not: ~60 ms of CPU per start here.
unset NODE_EXTRA_CA_CERTS
exec node --max-semi-space-size=1 --optimize-for-size "$here/dist/peer-start.cjs" "$@"
