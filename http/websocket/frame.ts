/**
 * RFC 6455 frames: the opcodes, the close codes a peer may send, and the
 * one frame serializer.
 *
 * @module
 */

/**
 * The frame opcodes of RFC 6455 §5.2.
 *
 * @example
 * ```ts
 * import { Opcode } from "@ffinet/ffinet/websocket";
 * console.log(Opcode.Text); // 1
 * ```
 */
export const Opcode: {
  readonly Continuation: 0x0;
  readonly Text: 0x1;
  readonly Binary: 0x2;
  readonly Close: 0x8;
  readonly Ping: 0x9;
  readonly Pong: 0xa;
} = Object.freeze({
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa,
});

/** The largest payload of a control frame (RFC 6455 §5.5). */
export const MAX_CONTROL_PAYLOAD = 125;

/**
 * Whether `code` may travel in a close frame (RFC 6455 §7.4): 1000-1003,
 * 1007-1011 (1012-1014 registered since), and 3000-4999. 1004, 1005, 1006
 * and 1015 are reserved and never sent.
 *
 * @example
 * ```ts
 * import { isValidCloseCode } from "@ffinet/ffinet/websocket";
 * console.log(isValidCloseCode(1000), isValidCloseCode(1005)); // true false
 * ```
 */
export function isValidCloseCode(code: number): boolean {
  if (code >= 3000 && code <= 4999) return true;
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014);
}

/** Options of {@linkcode encodeFrame}. */
export interface EncodeFrameOptions {
  /** Whether this is the last frame of its message. Default true. */
  fin?: boolean;
  /** The RSV1 bit (a compressed message's first frame, RFC 7692). Default false. */
  rsv1?: boolean;
  /** A 4-byte masking key (a client's frames); omitted: unmasked (a server's). */
  mask?: Uint8Array;
}

/**
 * The bytes of an unmasked frame header for a payload of `length` bytes
 * (2, 4 or 10).
 *
 * @example
 * ```ts
 * import { frameHeaderLength } from "@ffinet/ffinet/websocket";
 * console.log(frameHeaderLength(125), frameHeaderLength(126), frameHeaderLength(65536)); // 2 4 10
 * ```
 */
export function frameHeaderLength(length: number): number {
  return length < 126 ? 2 : length < 65536 ? 4 : 10;
}

function checkFrame(opcode: number, length: number, fin: boolean): void {
  if (!Number.isInteger(opcode) || opcode < 0 || opcode > 15) {
    throw new RangeError(`Cannot encode a frame: opcode ${opcode} is not from 0 to 15`);
  }
  if (opcode >= 8 && (length > MAX_CONTROL_PAYLOAD || !fin)) {
    throw new RangeError(
      `Cannot encode a frame: a control frame carries at most ${MAX_CONTROL_PAYLOAD} bytes and is never fragmented`,
    );
  }
}

/**
 * Write the header of a frame whose `length`-byte payload follows it, so
 * that it ends at `end` in `target`: the frame starts at
 * `end - frameHeaderLength(length)` (returned). The payload is not masked
 * (a server's frame). The serializer's one header writer, used where the
 * payload is already in place.
 *
 * @throws {RangeError} As {@linkcode encodeFrame}, or when the header does
 *   not fit before `end`.
 *
 * @example
 * ```ts
 * import { frameHeaderLength, Opcode, writeFrameHeader } from "@ffinet/ffinet/websocket";
 * const buf = new Uint8Array(16);
 * buf.set(new TextEncoder().encode("hi"), 10);
 * const start = writeFrameHeader(buf, 10, Opcode.Text, 2);
 * console.log(buf.subarray(start, 12)); // Uint8Array(4) [ 129, 2, 104, 105 ]
 * ```
 */
export function writeFrameHeader(
  target: Uint8Array,
  end: number,
  opcode: number,
  length: number,
  options?: { fin?: boolean; rsv1?: boolean },
): number {
  const fin = options?.fin ?? true;
  checkFrame(opcode, length, fin);
  const start = end - frameHeaderLength(length);
  if (start < 0 || end > target.length) {
    throw new RangeError("Cannot encode a frame: the header does not fit before the payload");
  }
  target[start] = (fin ? 0x80 : 0) | (options?.rsv1 ? 0x40 : 0) | opcode;
  if (length < 126) {
    target[start + 1] = length;
  } else if (length < 65536) {
    target[start + 1] = 126;
    target[start + 2] = length >>> 8;
    target[start + 3] = length & 0xff;
  } else {
    target[start + 1] = 127;
    // Payloads stay far below 2^53: the high word fits a number.
    const high = Math.floor(length / 0x1_0000_0000);
    const low = length >>> 0;
    target[start + 2] = high >>> 24;
    target[start + 3] = (high >>> 16) & 0xff;
    target[start + 4] = (high >>> 8) & 0xff;
    target[start + 5] = high & 0xff;
    target[start + 6] = low >>> 24;
    target[start + 7] = (low >>> 16) & 0xff;
    target[start + 8] = (low >>> 8) & 0xff;
    target[start + 9] = low & 0xff;
  }
  return start;
}

/**
 * One frame as bytes: the header, then `payload` (masked with
 * `options.mask` when given), in one new buffer so that it leaves in one
 * write.
 *
 * @throws {RangeError} For an opcode that is not a 4-bit number, a control
 *   frame over 125 bytes or fragmented, or a mask that is not 4 bytes.
 *
 * @example
 * ```ts
 * import { encodeFrame, Opcode } from "@ffinet/ffinet/websocket";
 * const frame = encodeFrame(Opcode.Text, new TextEncoder().encode("hi"));
 * console.log(frame); // Uint8Array(4) [ 129, 2, 104, 105 ]
 * ```
 */
export function encodeFrame(
  opcode: number,
  payload: Uint8Array,
  options: EncodeFrameOptions = {},
): Uint8Array<ArrayBuffer> {
  const mask = options.mask;
  if (mask !== undefined && (!(mask instanceof Uint8Array) || mask.byteLength !== 4)) {
    throw new RangeError("Cannot encode a frame: the mask is not 4 bytes");
  }
  const length = payload.byteLength;
  const head = frameHeaderLength(length);
  const masked = mask !== undefined;
  const out = new Uint8Array(head + (masked ? 4 : 0) + length);
  writeFrameHeader(out, head, opcode, length, options);
  if (!masked) {
    out.set(payload, head);
    return out;
  }
  out[1] = out[1]! | 0x80;
  out.set(mask, head);
  const at = head + 4;
  out.set(payload, at);
  const m0 = mask[0]!, m1 = mask[1]!, m2 = mask[2]!, m3 = mask[3]!;
  for (let i = 0; i < length; i++) {
    const j = at + i;
    const k = i & 3;
    out[j] = out[j]! ^ (k === 0 ? m0 : k === 1 ? m1 : k === 2 ? m2 : m3);
  }
  return out;
}

const encoder = new TextEncoder();

/**
 * The payload of a close frame: the code (big-endian) and the UTF-8 reason;
 * empty when `code` is undefined.
 *
 * @throws {RangeError} For a code a close frame may not carry, or a reason
 *   over 123 bytes (the frame's 125 less the code).
 *
 * @example
 * ```ts
 * import { encodeClosePayload } from "@ffinet/ffinet/websocket";
 * console.log(encodeClosePayload(1000, "bye")); // Uint8Array(5) [ 3, 232, 98, 121, 101 ]
 * ```
 */
export function encodeClosePayload(code?: number, reason = ""): Uint8Array<ArrayBuffer> {
  if (code === undefined) {
    if (reason !== "") throw new RangeError("Cannot encode a close frame: a reason needs a code");
    return new Uint8Array(0);
  }
  if (!Number.isInteger(code) || !isValidCloseCode(code)) {
    throw new RangeError(`Cannot encode a close frame: ${code} is not a valid close code`);
  }
  const text = encoder.encode(reason);
  if (text.byteLength > MAX_CONTROL_PAYLOAD - 2) {
    throw new RangeError(
      `Cannot encode a close frame: the reason is ${text.byteLength} bytes (at most ${
        MAX_CONTROL_PAYLOAD - 2
      })`,
    );
  }
  const out = new Uint8Array(2 + text.byteLength);
  out[0] = code >>> 8;
  out[1] = code & 0xff;
  out.set(text, 2);
  return out;
}
