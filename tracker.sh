#!/bin/sh
# Starts the udpswarm tracker. Writes ./port.txt in the current working directory.
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd) || exit 1
if [ ! -f "$here/dist/src/tracker/main.js" ]; then
  echo "udpswarm: not built; run 'make' in $here" >&2
  exit 1
fi
exec node "$here/dist/src/tracker/main.js" "$@"
