/** The exact stdout lines of SPEC §5. Each function returns one whole block. */

/** Sorts names by the byte order of their UTF-8 encoding (SPEC §5). */
export function byNameBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

export function connectBlock(peerId: number, offers: ReadonlyArray<{ name: string; chunks: number }>): string[] {
  const sorted = [...offers].sort((a, b) => byNameBytes(a.name, b.name));
  return [
    `PEER ${peerId} CONNECT: OFFERS ${sorted.length}`,
    ...sorted.map((f) => `${peerId}    ${f.name} ${f.chunks}`),
  ];
}

/** SYNC (§9): a connected peer offers a new file or a new version. */
export function updateBlock(peerId: number, name: string, chunks: number): string[] {
  return [`PEER ${peerId} UPDATE: ${name} ${chunks}`];
}

/** `chunk` is 0-based here and printed 1-based. */
export function acquiredLine(peerId: number, chunk: number, chunks: number, name: string): string {
  return `PEER ${peerId} ACQUIRED: CHUNK ${chunk + 1}/${chunks} ${name}`;
}

export function disconnectBlock(peerId: number, received: Iterable<string>): string[] {
  const sorted = [...received].sort(byNameBytes);
  return [`PEER ${peerId} DISCONNECT: RECEIVED ${sorted.length}`, ...sorted.map((name) => `${peerId}    ${name}`)];
}

export function shutdownBlock(peerId: number, has: Iterable<string>): string[] {
  const sorted = [...has].sort(byNameBytes);
  return [`PEER ${peerId} SHUTDOWN: HAS ${sorted.length}`, ...sorted.map((name) => `${peerId}    ${name}`)];
}
