#!/bin/sh
# make demo: a tracker and four peers on loopback, with generated files of different
# sizes, in a temporary folder. Shows their output, checks every copy byte for byte,
# stops the tracker, and exits 0 when everything converged.
set -eu

root=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/udpswarm-demo.XXXXXX")
tracker_pid=""
http_port=${DEMO_HTTP_PORT:-0}

cleanup() {
  if [ -n "$tracker_pid" ] && kill -0 "$tracker_pid" 2>/dev/null; then kill "$tracker_pid" 2>/dev/null || true; fi
  if [ -z "${KEEP:-}" ]; then rm -rf "$work"; else echo "demo files kept in $work"; fi
}
trap cleanup EXIT INT TERM

say() { printf '\033[1m== %s\033[0m\n' "$*"; }

mkdir -p "$work/tracker"
for i in 1 2 3 4; do mkdir -p "$work/peer$i/Shared"; done
printf 'hello, swarm\n' > "$work/peer1/Shared/hello.txt"
: > "$work/peer1/Shared/empty.dat"
head -c 1048576 /dev/urandom > "$work/peer2/Shared/photo.jpg"
head -c 8388608 /dev/urandom > "$work/peer3/Shared/video.mp4"
head -c 513 /dev/urandom > "$work/peer4/Shared/notes with spaces.txt"
head -c 300000 /dev/urandom > "$work/peer4/Shared/résumé.pdf"

say "files offered"
for i in 1 2 3 4; do
  for f in "$work/peer$i/Shared"/*; do printf '  peer%s  %9s bytes  %s\n' "$i" "$(wc -c < "$f" | tr -d ' ')" "$(basename "$f")"; done
done

if [ "${DEMO_HTTP:-1}" = 1 ]; then
  set -- --http "$http_port"
  say "starting the tracker with its live web view (URL below; DEMO_HTTP_PORT=N picks the port)"
else
  set --
  say "starting the tracker"
fi
(cd "$work/tracker" && exec sh "$root/tracker.sh" "$@" > stdout.txt 2> stderr.txt) &
tracker_pid=$!
tries=0
while [ ! -s "$work/tracker/port.txt" ]; do
  tries=$((tries + 1))
  if [ "$tries" -gt 200 ] || ! kill -0 "$tracker_pid" 2>/dev/null; then
    echo "the tracker did not start:" >&2
    cat "$work/tracker/stderr.txt" >&2
    exit 1
  fi
  sleep 0.05
done
port=$(cat "$work/tracker/port.txt")
sed 's/^/  /' "$work/tracker/stderr.txt"

say "starting 4 peers (MIN_ALIVE 1 s, a third of a second apart)"
pids=""
for i in 1 2 3 4; do
  (cd "$work/peer$i" && exec sh "$root/peer.sh" 127.0.0.1 "$port" 1 > stdout.txt 2> stderr.txt) &
  pids="$pids $!"
  sleep 0.3
done
status=0
for pid in $pids; do wait "$pid" || status=1; done

say "tracker stdout (ACQUIRED lines counted per peer)"
grep -v ' ACQUIRED: ' "$work/tracker/stdout.txt" | sed 's/^/  /'
grep ' ACQUIRED: ' "$work/tracker/stdout.txt" | awk '{n[$2]++} END {for (p in n) printf "  peer %s acquired %d chunks\n", p, n[p]}' | sort
say "peer stdout"
for i in 1 2 3 4; do sed 's/^/  /' "$work/peer$i/stdout.txt"; done

say "checking every copy byte for byte"
bad=0
for src in 1 2 3 4; do
  for f in "$work/peer$src/Shared"/*; do
    name=$(basename "$f")
    for dst in 1 2 3 4; do
      if ! cmp -s "$f" "$work/peer$dst/Shared/$name"; then
        echo "  MISMATCH: peer$dst/$name differs from peer$src's" >&2
        bad=1
      fi
    done
  done
done

kill "$tracker_pid"
wait "$tracker_pid" || { echo "the tracker did not exit 0" >&2; bad=1; }
tracker_pid=""

if [ "$status" -ne 0 ] || [ "$bad" -ne 0 ]; then
  echo "demo FAILED" >&2
  for i in 1 2 3 4; do sed "s/^/  peer$i stderr: /" "$work/peer$i/stderr.txt" >&2; done
  exit 1
fi
say "demo OK: 4 peers exited 0 and every peer holds a byte-identical copy of all 6 files"
