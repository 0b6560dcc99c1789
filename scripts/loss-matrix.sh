#!/bin/sh
# Completion time and datagrams per chunk for N peers (each offering one file of SIZE_KB)
# at a given loss rate, everyone fetching everything, on loopback.
#
#   sh scripts/loss-matrix.sh MODE LOSS PEERS SIZE_KB
#     MODE  kernel: a private network namespace whose loopback drops LOSS of all UDP
#                   (iptables -m statistic --mode random; needs root, ip, iptables)
#           flag:   the peers' own packet-loss test mode (--loss LOSS on every peer)
#
# Prints one line: mode, loss, peers, seconds from the first peer's start to the last
# peer's exit, chunk datagrams sent per chunk acquired, all datagrams (requests included)
# per chunk acquired.
set -eu

mode=${1:?MODE (kernel|flag)}
loss=${2:?LOSS}
peers=${3:?PEERS}
size_kb=${4:?SIZE_KB}
root=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/udpswarm-loss.XXXXXX")
ns=""
tracker=""

cleanup() {
  if [ -n "$tracker" ]; then kill "$tracker" 2>/dev/null || true; fi
  if [ -n "$ns" ]; then ip netns del "$ns" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

prefix=""
peer_args=""
case "$mode" in
  kernel)
    ns="udpswarm-loss-$$"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip netns exec "$ns" iptables -A INPUT -i lo -p udp -m statistic --mode random --probability "$loss" -j DROP
    prefix="ip netns exec $ns"
    ;;
  flag) peer_args="--loss $loss" ;;
  *) echo "MODE must be kernel or flag" >&2; exit 2 ;;
esac

mkdir -p "$work/tracker"
i=1
while [ "$i" -le "$peers" ]; do
  mkdir -p "$work/p$i/Shared"
  head -c $((size_kb * 1024 + i * 777)) /dev/urandom > "$work/p$i/Shared/file$i.bin"
  i=$((i + 1))
done
# shellcheck disable=SC2086 # prefix is a list of words
(cd "$work/tracker" && exec $prefix sh "$root/tracker.sh" > out.txt 2> err.txt) &
tracker=$!
while [ ! -s "$work/tracker/port.txt" ]; do sleep 0.05; done
port=$(cat "$work/tracker/port.txt")

start=$(date +%s.%N)
pids=""
i=1
while [ "$i" -le "$peers" ]; do
  # shellcheck disable=SC2086 # prefix and peer_args are lists of words
  (cd "$work/p$i" && exec $prefix sh "$root/peer.sh" 127.0.0.1 "$port" 1 --quiet --stats stats.json $peer_args > out.txt 2> err.txt) &
  pids="$pids $!"
  i=$((i + 1))
done
failed=0
for pid in $pids; do wait "$pid" || failed=1; done
end=$(date +%s.%N)

i=1
while [ "$i" -le "$peers" ]; do
  j=1
  while [ "$j" -le "$peers" ]; do
    cmp -s "$work/p$j/Shared/file$j.bin" "$work/p$i/Shared/file$j.bin" || { echo "peer $i lacks file$j" >&2; failed=1; }
    j=$((j + 1))
  done
  i=$((i + 1))
done

node -e '
const fs = require("fs");
const [dir, peers, mode, loss, start, end, failed] = process.argv.slice(1);
let chunks = 0, sent = 0, all = 0;
for (let i = 1; i <= Number(peers); i++) {
  const s = JSON.parse(fs.readFileSync(`${dir}/p${i}/stats.json`, "utf8"));
  chunks += s.chunksAcquired; sent += s.chunksSent; all += s.datagramsSent;
}
const secs = (Number(end) - Number(start)).toFixed(2);
console.log(`${mode} loss=${loss} peers=${peers} seconds=${secs} chunk-datagrams/chunk=${(sent / chunks).toFixed(3)} all-datagrams/chunk=${(all / chunks).toFixed(3)} ok=${failed === "0"}`);
' "$work" "$peers" "$mode" "$loss" "$start" "$end" "$failed"
exit "$failed"
