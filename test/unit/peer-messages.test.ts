import test from "ava";
import { interruptedDownloads } from "../../src/peer/peer.js";

test("interrupted: the line says what was removed, or that nothing was", (t) => {
  t.is(interruptedDownloads([]), "nothing was being downloaded");
  t.is(interruptedDownloads(["a b.bin"]), '1 partial download removed: "a b.bin"');
  t.is(interruptedDownloads(["a", "b"]), '2 partial downloads removed: "a", "b"');
  t.is(interruptedDownloads(["a", "b", "c", "d", "e"]), '5 partial downloads removed: "a", "b", "c" and 2 more');
});
