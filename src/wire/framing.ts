import { SwarmError } from "../util/errors.js";

/**
 * Tracker-link framing: a protobuf varint length, then that many bytes (the format of
 * protobufjs encodeDelimited). The length is checked against `maxFrameBytes` before a
 * single byte of the body is buffered.
 */
export function encodeFrame(body: Uint8Array): Buffer {
  return Buffer.concat([varint(body.length), body]);
}

/** A protobuf varint (n < 2^53). */
export function varint(n: number): Buffer {
  const bytes: number[] = [];
  while (n >= 0x80) {
    bytes.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  bytes.push(n);
  return Buffer.from(bytes);
}

/** Splits a TCP byte stream into frames, whatever the chunk boundaries. */
export class FrameDecoder {
  #maxFrameBytes: number;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** Length of the frame being collected, once its header has been read. */
  #expected: number | undefined;

  constructor(maxFrameBytes: number) {
    this.#maxFrameBytes = maxFrameBytes;
  }

  /** The largest frame accepted from now on (a link may allow more once the peer is known). */
  get maxFrameBytes(): number {
    return this.#maxFrameBytes;
  }

  set maxFrameBytes(bytes: number) {
    this.#maxFrameBytes = bytes;
  }

  /** Declared length of the frame being collected (0 while between frames). */
  get pendingFrameBytes(): number {
    return this.#expected ?? 0;
  }

  /** Bytes received but not yet returned as a frame. */
  get bufferedBytes(): number {
    return this.#pendingBytes;
  }

  /**
   * Feeds bytes; returns every frame they complete. Throws SwarmError
   * ERR_FRAME_TOO_LARGE / ERR_BAD_MESSAGE when the stream cannot be trusted any more.
   */
  push(data: Uint8Array): Buffer[] {
    if (data.length > 0) {
      this.#pending.push(Buffer.from(data.buffer, data.byteOffset, data.length));
      this.#pendingBytes += data.length;
    }
    const frames: Buffer[] = [];
    for (;;) {
      if (this.#expected === undefined) {
        const header = this.#readHeader();
        if (header === undefined) break;
        this.#expected = header;
      }
      if (this.#pendingBytes < this.#expected) break;
      frames.push(this.#take(this.#expected));
      this.#expected = undefined;
    }
    return frames;
  }

  #readHeader(): number | undefined {
    let value = 0;
    let multiplier = 1;
    let index = 0;
    for (const buf of this.#pending) {
      for (let i = 0; i < buf.length; i++) {
        const byte = buf[i] ?? 0;
        value += (byte & 0x7f) * multiplier;
        index++;
        if ((byte & 0x80) === 0) {
          if (value > this.#maxFrameBytes) {
            throw new SwarmError(
              "ERR_FRAME_TOO_LARGE",
              `frame of ${value} bytes exceeds the ${this.#maxFrameBytes}-byte limit`,
            );
          }
          this.#take(index);
          return value;
        }
        multiplier *= 128;
        if (index >= 5) throw new SwarmError("ERR_BAD_MESSAGE", "frame length prefix longer than 5 bytes");
      }
    }
    return undefined;
  }

  #take(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let written = 0;
    while (written < n) {
      const head = this.#pending[0];
      if (head === undefined) throw new Error("FrameDecoder: take beyond buffered bytes");
      const need = n - written;
      if (head.length <= need) {
        head.copy(out, written);
        written += head.length;
        this.#pending.shift();
      } else {
        head.copy(out, written, 0, need);
        this.#pending[0] = head.subarray(need);
        written += need;
      }
    }
    this.#pendingBytes -= n;
    return out;
  }
}
