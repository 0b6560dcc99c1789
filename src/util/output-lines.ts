/** Output rules both programs share (SPEC §5); the tracker's own blocks are in tracker/output.ts. */

/** Sorts names by the byte order of their UTF-8 encoding (SPEC §5). */
export function byNameBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/** The peer's SHUTDOWN block. */
export function shutdownBlock(peerId: number, has: Iterable<string>): string[] {
  const sorted = [...has].sort(byNameBytes);
  return [`PEER ${peerId} SHUTDOWN: HAS ${sorted.length}`, ...sorted.map((name) => `${peerId}    ${name}`)];
}
