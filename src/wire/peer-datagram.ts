import { udpswarm } from "./gen/swarm.js";
import { CHUNK_SIZE, MAX_CHUNKS_PER_REQUEST, MAX_DATAGRAM_BYTES, MAX_REQUEST_SPAN, SHA256_BYTES } from "./limits.js";

/** Peer-link datagram layout; see proto/swarm.proto (DatagramKind, ChunkHeader). */
export const PROTOCOL_VERSION = udpswarm.ProtocolVersion.RECEIPTS_PEER_LINK;
export const KIND_MESSAGE = udpswarm.DatagramKind.KIND_MESSAGE;
export const KIND_CHUNK = udpswarm.DatagramKind.KIND_CHUNK;
/** Fixed chunk header: see ChunkHeader in proto/swarm.proto. */
export const CHUNK_HEADER_BYTES = 32;
/** Offset of the chunk's receipt share (RECEIPT_BYTES) in a chunk datagram. */
export const RECEIPT_SHARE_OFFSET = 24;
/** Offset of the chunk bytes inside a chunk datagram. */
export const CHUNK_DATA_OFFSET = CHUNK_HEADER_BYTES;

export type ChunkDatagram = {
  readonly kind: "chunk";
  readonly seq: number;
  readonly requestSeq: number;
  readonly token: number;
  readonly fileId: number;
  readonly chunk: number;
  /** A view into the datagram: copy it before the datagram buffer is reused. */
  readonly data: Buffer;
  /** The whole datagram (its receipt share is at RECEIPT_SHARE_OFFSET): no view is made per chunk. */
  readonly datagram: Buffer;
};

export type RequestDatagram = {
  readonly kind: "request";
  readonly seq: number;
  readonly fileId: number;
  readonly first: number;
  /** 0-based chunk indices named by the request, ascending. */
  readonly chunks: number[];
  readonly token: number;
  readonly auth: Uint8Array;
  readonly cookie: Uint8Array;
};

export type HashRequestDatagram = {
  readonly kind: "hash-request";
  readonly seq: number;
  readonly fileId: number;
  readonly piece: number;
  readonly token: number;
  readonly auth: Uint8Array;
  readonly cookie: Uint8Array;
};

export type CookieDatagram = {
  readonly kind: "cookie";
  readonly seq: number;
  readonly requestSeq: number;
  readonly token: number;
  readonly cookie: Uint8Array;
};

export type HashReplyDatagram = {
  readonly kind: "hash-reply";
  readonly seq: number;
  readonly fileId: number;
  readonly piece: number;
  readonly token: number;
  readonly hashes: Uint8Array;
};

export type PeerDatagram = ChunkDatagram | RequestDatagram | HashRequestDatagram | HashReplyDatagram | CookieDatagram;

export type DecodeFailure = { readonly kind: "invalid"; readonly reason: DropReason };

/** Why an incoming datagram was dropped (each is a counter). */
export type DropReason = "short" | "oversize" | "kind" | "version" | "malformed" | "range";

/**
 * Writes the 32-byte chunk header at `offset` of `out`; the chunk bytes go right after it.
 * The receipt share is the first 8 bytes at `shareAt` of `shares` (zeros without).
 */
export function writeChunkHeader(
  out: Buffer,
  offset: number,
  seq: number,
  requestSeq: number,
  token: number,
  fileId: number,
  chunk: number,
  shares?: Buffer,
  shareAt = 0,
): void {
  out[offset] = KIND_CHUNK;
  out[offset + 1] = PROTOCOL_VERSION;
  out[offset + 2] = 0;
  out[offset + 3] = 0;
  out.writeUInt32BE(seq >>> 0, offset + 4);
  out.writeUInt32BE(requestSeq >>> 0, offset + 8);
  out.writeUInt32BE(token >>> 0, offset + 12);
  out.writeUInt32BE(fileId >>> 0, offset + 16);
  out.writeUInt32BE(chunk >>> 0, offset + 20);
  // Byte moves: V8 inlines them; a copy() or readInt32 call per chunk costs more.
  const at = offset + RECEIPT_SHARE_OFFSET;
  if (shares === undefined) for (let b = 0; b < 8; b++) out[at + b] = 0;
  else for (let b = 0; b < 8; b++) out[at + b] = shares[shareAt + b] as number;
}

/** Encodes one chunk datagram (header + data) into a fresh buffer. */
export function encodeChunk(
  seq: number,
  requestSeq: number,
  token: number,
  fileId: number,
  chunk: number,
  data: Uint8Array,
  share?: Buffer,
): Buffer {
  const out = Buffer.allocUnsafe(CHUNK_HEADER_BYTES + data.length);
  writeChunkHeader(out, 0, seq, requestSeq, token, fileId, chunk, share);
  out.set(data, CHUNK_HEADER_BYTES);
  return out;
}

export function encodeRequest(
  seq: number,
  fileId: number,
  first: number,
  chunks: readonly number[],
  token: number,
  auth: Uint8Array = EMPTY,
  cookie: Uint8Array = EMPTY,
): Buffer {
  if (chunks.length > MAX_CHUNKS_PER_REQUEST) throw new RangeError(`${chunks.length} chunks in one request`);
  const mask = new Uint8Array(MAX_REQUEST_SPAN / 8);
  let last = 0;
  for (const c of chunks) {
    const bit = c - first;
    if (bit < 0 || bit >= MAX_REQUEST_SPAN) throw new RangeError(`chunk ${c} outside request window at ${first}`);
    mask[bit >> 3] = (mask[bit >> 3] ?? 0) | (1 << (bit & 7));
    last = Math.max(last, bit);
  }
  const body = udpswarm.PeerMessage.encode({
    version: PROTOCOL_VERSION,
    seq: seq >>> 0,
    request: { fileId, first, mask: mask.subarray(0, (last >> 3) + 1), token: token >>> 0, auth, cookie },
  }).finish();
  return withKind(body);
}

const EMPTY = new Uint8Array(0);
/** Longer cookies are refused (ours are 16 bytes). */
const MAX_COOKIE_BYTES = 32;

function withKind(body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(1 + body.length);
  out[0] = KIND_MESSAGE;
  out.set(body, 1);
  return out;
}

export function encodeHashRequest(
  seq: number,
  fileId: number,
  piece: number,
  token: number,
  auth: Uint8Array = EMPTY,
  cookie: Uint8Array = EMPTY,
): Buffer {
  return withKind(
    udpswarm.PeerMessage.encode({
      version: PROTOCOL_VERSION,
      seq: seq >>> 0,
      hashRequest: { fileId, piece, token: token >>> 0, auth, cookie },
    }).finish(),
  );
}

/** The answer to a request from an address not validated yet: the cookie to echo. */
export function encodeCookie(seq: number, requestSeq: number, token: number, cookie: Uint8Array): Buffer {
  return withKind(
    udpswarm.PeerMessage.encode({
      version: PROTOCOL_VERSION,
      seq: seq >>> 0,
      cookie: { requestSeq: requestSeq >>> 0, token: token >>> 0, cookie },
    }).finish(),
  );
}

export function encodeHashReply(seq: number, fileId: number, piece: number, token: number, hashes: Uint8Array): Buffer {
  return withKind(
    udpswarm.PeerMessage.encode({
      version: PROTOCOL_VERSION,
      seq: seq >>> 0,
      hashReply: { fileId, piece, token: token >>> 0, hashes },
    }).finish(),
  );
}

function decodeRequest(msg: udpswarm.PeerMessage): RequestDatagram | DecodeFailure {
  const req = msg.request;
  if (req === undefined || req === null) return { kind: "invalid", reason: "malformed" };
  const mask = req.mask ?? EMPTY;
  const first = req.first ?? 0;
  if (mask.length === 0 || mask.length > MAX_REQUEST_SPAN / 8) return { kind: "invalid", reason: "range" };
  const chunks: number[] = [];
  for (let bit = 0; bit < mask.length * 8; bit++) {
    if (((mask[bit >> 3] ?? 0) >> (bit & 7)) & 1) chunks.push(first + bit);
  }
  if (chunks.length === 0 || chunks.length > MAX_CHUNKS_PER_REQUEST) return { kind: "invalid", reason: "range" };
  return {
    kind: "request",
    seq: msg.seq,
    fileId: req.fileId ?? 0,
    first,
    chunks,
    token: req.token ?? 0,
    auth: req.auth ?? EMPTY,
    cookie: req.cookie ?? EMPTY,
  };
}

/** Why `buf`, a datagram of KIND_CHUNK, is no valid chunk datagram (undefined: it is one). */
function chunkDatagramFault(buf: Buffer): DropReason | undefined {
  // In decodePeerDatagram's order: a datagram too long for any kind is "oversize" first.
  if (buf.length > MAX_DATAGRAM_BYTES) return "oversize";
  if (buf.length < CHUNK_DATA_OFFSET + 1) return "short";
  if (buf[1] !== PROTOCOL_VERSION) return "version";
  if (buf.length > CHUNK_DATA_OFFSET + CHUNK_SIZE) return "oversize";
  return undefined;
}

/**
 * The header of a chunk datagram, read in place into this one reused object: the receive
 * path reads one per chunk, so it makes neither a decoded object nor a view of the data
 * per datagram (decodePeerDatagram makes both). The fields hold the last datagram read.
 */
export class ChunkHeader {
  seq = 0;
  requestSeq = 0;
  token = 0;
  fileId = 0;
  chunk = 0;
  /** Bytes of chunk data, at CHUNK_DATA_OFFSET of the datagram. */
  dataLength = 0;

  /** Reads `buf`, a datagram of KIND_CHUNK; returns why it is invalid (then the fields are stale), or undefined. */
  read(buf: Buffer): DropReason | undefined {
    const fault = chunkDatagramFault(buf);
    if (fault !== undefined) return fault;
    this.seq = buf.readUInt32BE(4);
    this.requestSeq = buf.readUInt32BE(8);
    this.token = buf.readUInt32BE(12);
    this.fileId = buf.readUInt32BE(16);
    this.chunk = buf.readUInt32BE(20);
    this.dataLength = buf.length - CHUNK_DATA_OFFSET;
    return undefined;
  }
}

/**
 * Decodes one datagram; never throws. Range checks that need swarm state (is the file
 * known, is the chunk inside it) are the caller's.
 */
export function decodePeerDatagram(buf: Buffer): PeerDatagram | DecodeFailure {
  if (buf.length < 2) return { kind: "invalid", reason: "short" };
  if (buf.length > MAX_DATAGRAM_BYTES) return { kind: "invalid", reason: "oversize" };
  const kind = buf[0];
  if (kind === KIND_CHUNK) {
    const fault = chunkDatagramFault(buf);
    if (fault !== undefined) return { kind: "invalid", reason: fault };
    return {
      kind: "chunk",
      seq: buf.readUInt32BE(4),
      requestSeq: buf.readUInt32BE(8),
      token: buf.readUInt32BE(12),
      fileId: buf.readUInt32BE(16),
      chunk: buf.readUInt32BE(20),
      data: buf.subarray(CHUNK_DATA_OFFSET),
      datagram: buf,
    };
  }
  if (kind === KIND_MESSAGE) {
    let msg: udpswarm.PeerMessage;
    try {
      msg = udpswarm.PeerMessage.decode(buf.subarray(1));
    } catch {
      return { kind: "invalid", reason: "malformed" };
    }
    if (msg.version !== PROTOCOL_VERSION) return { kind: "invalid", reason: "version" };
    switch (msg.body) {
      case "request":
        return decodeRequest(msg);
      case "hashRequest": {
        const h = msg.hashRequest;
        if (h === null || h === undefined) return { kind: "invalid", reason: "malformed" };
        return {
          kind: "hash-request",
          seq: msg.seq,
          fileId: h.fileId ?? 0,
          piece: h.piece ?? 0,
          token: h.token ?? 0,
          auth: h.auth ?? EMPTY,
          cookie: h.cookie ?? EMPTY,
        };
      }
      case "cookie": {
        const k = msg.cookie;
        if (k === null || k === undefined) return { kind: "invalid", reason: "malformed" };
        const cookie = k.cookie ?? EMPTY;
        if (cookie.length === 0 || cookie.length > MAX_COOKIE_BYTES) return { kind: "invalid", reason: "range" };
        return { kind: "cookie", seq: msg.seq, requestSeq: k.requestSeq ?? 0, token: k.token ?? 0, cookie };
      }
      case "hashReply": {
        const h = msg.hashReply;
        if (h === null || h === undefined) return { kind: "invalid", reason: "malformed" };
        const hashes = h.hashes ?? EMPTY;
        if (hashes.length === 0 || hashes.length % SHA256_BYTES !== 0) return { kind: "invalid", reason: "range" };
        return {
          kind: "hash-reply",
          seq: msg.seq,
          fileId: h.fileId ?? 0,
          piece: h.piece ?? 0,
          token: h.token ?? 0,
          hashes,
        };
      }
      default:
        return { kind: "invalid", reason: "malformed" };
    }
  }
  return { kind: "invalid", reason: "kind" };
}
