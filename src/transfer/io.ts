/** Where datagrams go: a UDP socket, a fault injector, or the fake network of the tests. */
export interface DatagramPort {
  send(bytes: Buffer, host: string, port: number): void;
}

/** Where verified pieces live. Throwing from either method is a fatal I/O error. */
export interface PieceStore {
  /** Bytes of chunks [firstChunk, firstChunk + count) of a file whose pieces we hold. */
  read(fileId: number, firstChunk: number, count: number): Buffer;
  writePiece(fileId: number, piece: number, firstChunk: number, data: Buffer): void;
}
