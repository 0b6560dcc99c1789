import { byNameBytes } from "../util/output-lines.js";

/** The tracker's exact stdout lines (SPEC §5). Each block function returns one whole block. */

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
  const { head, tail } = acquiredParts(peerId, chunks, name);
  return `${head}${chunk + 1}${tail}`;
}

/** An ACQUIRED line around its chunk number, so a writer builds many lines cheaply. */
export function acquiredParts(peerId: number, chunks: number, name: string): { head: string; tail: string } {
  return { head: `PEER ${peerId} ACQUIRED: CHUNK `, tail: `/${chunks} ${name}` };
}

export function disconnectBlock(peerId: number, received: Iterable<string>): string[] {
  const sorted = [...received].sort(byNameBytes);
  return [`PEER ${peerId} DISCONNECT: RECEIVED ${sorted.length}`, ...sorted.map((name) => `${peerId}    ${name}`)];
}
