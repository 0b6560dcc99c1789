#!/bin/sh
# A short accounts session (make demo, after the classic swarm): a tracker with a store,
# alice shares a file with a group, bob asks to join, alice accepts, bob downloads it.
set -u
here=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd) || exit 1
work=$(mktemp -d "${TMPDIR:-/tmp}/udpswarm-demo-accounts-XXXXXX") || exit 1
pids=""
cleanup() {
  exec 3>&- 4>&- 2>/dev/null
  for p in $pids; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  if [ -z "${KEEP:-}" ]; then rm -rf "$work"; else echo "kept $work"; fi
}
trap cleanup EXIT
say() { printf '\n== %s\n' "$*"; }

# wait_for FILE PATTERN: until a line of FILE matches (30 s at most).
wait_for() {
  n=0
  until grep -q -e "$2" "$1" 2>/dev/null; do
    n=$((n + 1))
    if [ "$n" -gt 300 ]; then
      echo "demo FAILED: no \"$2\" in $1" >&2
      exit 1
    fi
    sleep 0.1
  done
}

mkdir -p "$work/tracker" "$work/alice" "$work/bob"
cd "$work/tracker" || exit 1
sh "$here/tracker.sh" --store ./udpswarm.db > stdout.txt 2> stderr.txt &
pids="$pids $!"
wait_for stderr.txt 'listening on port'
echo "127.0.0.1 $(cat port.txt)" > "$work/trackers"
head -c 1500000 /dev/urandom > "$work/alice/report.bin"

mkfifo "$work/alice/.stdin" "$work/bob/.stdin"
(cd "$work/alice" && exec sh "$here/client.sh" ../trackers < .stdin > out.txt 2> err.txt) &
alice=$!
pids="$pids $alice"
exec 3> "$work/alice/.stdin"
(cd "$work/bob" && exec sh "$here/client.sh" ../trackers < .stdin > out.txt 2> err.txt) &
bob=$!
pids="$pids $bob"
exec 4> "$work/bob/.stdin"

printf 'create_user alice s3cret-a\nlogin alice s3cret-a\ncreate_group demo\nupload_file report.bin demo\n' >&3
wait_for "$work/alice/out.txt" '^uploaded report.bin'
printf 'create_user bob s3cret-b\nlogin bob s3cret-b\nlist_files demo\njoin_group demo\n' >&4
wait_for "$work/bob/out.txt" '^asked to join demo'
printf 'list_requests demo\naccept_request demo bob\n' >&3
wait_for "$work/alice/out.txt" '^bob is now a member of demo'
printf 'list_files demo\ndownload_file demo report.bin ./incoming\n' >&4
wait_for "$work/bob/err.txt" '^downloaded report.bin'
printf 'show_downloads\nquit\n' >&4
printf 'list_files demo\nquit\n' >&3
exec 3>&- 4>&-
wait "$alice" "$bob"

for who in alice bob; do
  say "$who (stdout; errors and news on stderr marked !)"
  sed 's/^/  /' "$work/$who/out.txt"
  sed 's/^/  ! /' "$work/$who/err.txt"
done
if cmp -s "$work/alice/report.bin" "$work/bob/incoming/report.bin"; then
  say "accounts demo OK: bob's copy of report.bin is byte-identical"
else
  echo "accounts demo FAILED: bob's copy differs" >&2
  exit 1
fi
