import test from "ava";
import {
  ExitStatus,
  errorMessage,
  exitStatusFor,
  exitStatusForSignal,
  PEER_EXIT_STATUSES,
  SwarmError,
  type SwarmErrorCode,
  TRACKER_EXIT_STATUSES,
} from "../../src/util/errors.js";

const EXPECTED: ReadonlyArray<readonly [SwarmErrorCode, number]> = [
  ["ERR_USAGE", 2],
  ["ERR_TRACKER_UNREACHABLE", 3],
  ["ERR_TRACKER_LOST", 4],
  ["ERR_FRAME_TOO_LARGE", 4],
  ["ERR_BAD_MESSAGE", 4],
  // Issue 9: peer.ts used to map this to 4 while errors.ts said 6.
  ["ERR_TRACKER_REFUSED", 6],
  ["ERR_PROTOCOL_VERSION", 6],
  ["ERR_IO", 5],
];

test("errors: every code has the documented exit status", (t) => {
  for (const [code, status] of EXPECTED) t.is(exitStatusFor(new SwarmError(code, "x")), status, code);
});

test("errors: an operating-system error is an I/O error; anything else is an internal error", (t) => {
  const enospc = Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
  t.is(exitStatusFor(enospc), ExitStatus.io);
  t.is(errorMessage(enospc), "ENOSPC: no space left on device, write");
  t.is(exitStatusFor(new TypeError("x is undefined")), ExitStatus.internal);
  t.is(exitStatusFor("a string"), ExitStatus.internal);
  t.is(errorMessage(new TypeError("x is undefined")), "internal error (please report it): x is undefined");
  t.is(errorMessage(new SwarmError("ERR_USAGE", "bad option")), "bad option");
});

test("errors: signals are 128 + their number", (t) => {
  t.is(exitStatusForSignal("SIGINT"), 130);
  t.is(exitStatusForSignal("SIGTERM"), 143);
});

test("errors: the status tables list each status once, and every status a peer can exit with", (t) => {
  for (const table of [PEER_EXIT_STATUSES, TRACKER_EXIT_STATUSES]) {
    const statuses = table.map(([s]) => s);
    t.deepEqual(
      statuses,
      [...new Set(statuses)].sort((a, b) => a - b),
    );
  }
  const peer = new Set(PEER_EXIT_STATUSES.map(([s]) => s));
  for (const [, status] of EXPECTED) t.true(peer.has(status), `status ${status} documented`);
  for (const s of [0, 1, 130, 143]) t.true(peer.has(s), `status ${s} documented`);
});
