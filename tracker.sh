#!/bin/sh
# Starts the udpswarm tracker. Writes ./port.txt in the current working directory.
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd) || exit 1
if [ ! -f "$here/dist/src/tracker/main.js" ]; then
  echo "udpswarm: not built; run 'make' in $here" >&2
  exit 1
fi
# Node 20 parses every CA certificate named by NODE_EXTRA_CA_CERTS at start-up, used or
# not (~60 ms of CPU here); the tracker speaks TLS only to a PostgreSQL store, if at all.
case " $* " in
  *postgres://* | *postgresql://*) ;;
  *) unset NODE_EXTRA_CA_CERTS ;;
esac
exec node "$here/dist/src/tracker/main.js" "$@"
