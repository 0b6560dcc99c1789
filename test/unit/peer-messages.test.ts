import test from "ava";
import { interruptedDownloads } from "../../src/peer/resume-report.js";

test("interrupted: the line says what was kept, or that nothing was", (t) => {
  t.is(interruptedDownloads([], "st"), "nothing was being downloaded");
  t.is(
    interruptedDownloads(["a b.bin"], ".udpswarm-staging"),
    '1 partial download kept in .udpswarm-staging for the next start: "a b.bin"',
  );
  t.is(
    interruptedDownloads(["a", "b"], ".udpswarm-staging"),
    '2 partial downloads kept in .udpswarm-staging for the next start: "a", "b"',
  );
  t.is(
    interruptedDownloads(["a", "b", "c", "d", "e"], ".udpswarm-staging"),
    '5 partial downloads kept in .udpswarm-staging for the next start: "a", "b", "c" and 2 more',
  );
});
