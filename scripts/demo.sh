#!/bin/sh
# make demo: a tracker and four peers on loopback, with generated files of different
# sizes, in a temporary folder. Shows their output, checks every copy byte for byte,
# and exits 0 when everything converged. On a terminal the tracker (and its web view)
# stays up until Enter or Ctrl-C; otherwise (CI) it is stopped at once.
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

if [ -t 1 ]; then
  say() { printf '\033[1m== %s\033[0m\n' "$*"; }
else
  say() { printf '== %s\n' "$*"; }
fi

stop_tracker() {
  [ -n "$tracker_pid" ] || return 0
  kill "$tracker_pid"
  wait "$tracker_pid" || { echo "the tracker did not exit 0" >&2; tracker_pid=""; exit 1; }
  tracker_pid=""
}

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

# Started together, with MIN_ALIVE 2 s: a peer only waits for the peers the tracker knows,
# so peers started one after the other on a busy machine could leave before the last one
# joined, each half of the swarm with half of the files.
say "starting 4 peers together (MIN_ALIVE 2 s)"
pids=""
for i in 1 2 3 4; do
  (cd "$work/peer$i" && exec sh "$root/peer.sh" 127.0.0.1 "$port" 2 > stdout.txt 2> stderr.txt) &
  pids="$pids $!"
done
status=0
for pid in $pids; do wait "$pid" || status=1; done

say "tracker stdout (ACQUIRED lines counted per peer)"
grep -v ' ACQUIRED: ' "$work/tracker/stdout.txt" | sed 's/^/  /'
grep ' ACQUIRED: ' "$work/tracker/stdout.txt" | awk '{n[$2]++} END {for (p in n) printf "  peer %s acquired %d chunks\n", p, n[p]}' | sort
say "peer stdout"
for i in 1 2 3 4; do sed 's/^/  /' "$work/peer$i/stdout.txt"; done
# Diagnostics, if any (a quiet run has none beyond the tracker's two start-up lines).
grep -v -e '^udpswarm tracker: web view at ' -e '^udpswarm tracker: listening on port ' \
  "$work/tracker/stderr.txt" > "$work/tracker/diagnostics.txt" || true
if [ -s "$work/tracker/diagnostics.txt" ] || cat "$work"/peer*/stderr.txt | grep -q .; then
  say "stderr (diagnostics)"
  sed 's/^/  /' "$work/tracker/diagnostics.txt"
  for i in 1 2 3 4; do sed "s/^/  peer$i: /" "$work/peer$i/stderr.txt"; done
fi

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

if [ "$status" -ne 0 ] || [ "$bad" -ne 0 ]; then
  echo "demo FAILED" >&2
  exit 1
fi
say "demo OK: 4 peers exited 0 and every peer holds a byte-identical copy of all 6 files"

# On a terminal, keep the tracker up so that its web view link still works (it lists
# the departed peers and what each received). Not on a terminal (CI): stop at once.
url=$(sed -n 's/^udpswarm tracker: web view at //p' "$work/tracker/stderr.txt")
if [ -n "$url" ] && [ -t 0 ] && [ -t 1 ]; then
  trap 'echo; stop_tracker; exit 0' INT
  printf 'The tracker and its web view are still up: %s\nPress Enter (or Ctrl-C) to stop them. ' "$url"
  read -r _ || true
fi
stop_tracker
