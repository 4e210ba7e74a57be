/**
 * The RFC 6455 frame parser: bytes in, messages, pings, pongs and the close
 * out, with every rule of the protocol checked as early as the bytes allow.
 * It owns no socket and no timer, so it is tested (and fuzzed) on its own.
 *
 * A violation fails the connection with the code RFC 6455 §7.4.1 gives it:
 * - 1002: a reserved bit or an unknown opcode, a fragmented or oversized
 *   control frame, an unmasked client frame (a masked server frame), a
 *   continuation without a message or a new message inside one, a 64-bit
 *   length with its top bit set, a close frame of 1 byte or with a code
 *   that may not be sent;
 * - 1007: text that is not UTF-8, detected at the first byte that cannot
 *   start or continue a character, even mid-frame and across fragments; a
 *   compressed message that does not inflate;
 * - 1009: a message over `maxMessageSize` (checked on each frame header and
 *   while inflating) or over `maxFragments` frames.
 *
 * @module
 */
import {
  type ResolvedWebSocketLimits,
  resolveWebSocketLimits,
  type WebSocketLimits,
} from "./limits.ts";
import { isValidCloseCode, MAX_CONTROL_PAYLOAD } from "./frame.ts";

/**
 * Decompression of permessage-deflate messages for a {@linkcode FrameParser}
 * (see {@linkcode PerMessageDeflate}).
 *
 * @example
 * ```ts
 * import type { MessageInflater } from "@ffinet/ffinet/websocket";
 * const identity: MessageInflater = {
 *   inflate: (input, limit) => (input.length > limit ? 1009 : input.slice()),
 *   endMessage() {},
 * };
 * ```
 */
export interface MessageInflater {
  /**
   * Inflate the next compressed bytes of a message (the parser passes the
   * 4-byte tail `00 00 ff ff` of RFC 7692 §7.2.2 after the last frame).
   * Returns the output, or 1009 when it would pass `limit` bytes (stopping
   * while inflating), or 1007 when the data is not valid DEFLATE. `input`
   * is only valid during the call.
   */
  inflate(input: Uint8Array, limit: number): Uint8Array | 1007 | 1009;
  /** The message is complete (reset the window when there is no context takeover). */
  endMessage(): void;
}

/**
 * What a {@linkcode FrameParser} reports. Views passed in are copies the
 * callee may keep.
 *
 * @example
 * ```ts
 * import type { FrameEvents } from "@ffinet/ffinet/websocket";
 * const events: FrameEvents = {
 *   onMessage: (data) => console.log(data),
 *   onPing() {},
 *   onPong() {},
 *   onClose: (code, reason) => console.log(code, reason),
 *   onFail: (code, reason) => console.log(code, reason),
 * };
 * ```
 */
export interface FrameEvents {
  /** A complete message: text as a string, binary as bytes. */
  onMessage(data: string | Uint8Array<ArrayBuffer>): void;
  /** A ping with its payload (to answer with a pong carrying it). */
  onPing(payload: Uint8Array<ArrayBuffer>): void;
  /** A pong. */
  onPong(payload: Uint8Array<ArrayBuffer>): void;
  /** A valid close frame (1005 when it had no code). Nothing is parsed after it. */
  onClose(code: number, reason: string): void;
  /** A violation: close with `code`. Nothing is parsed after it. */
  onFail(code: number, reason: string): void;
}

/** Options of a {@linkcode FrameParser}. */
export interface FrameParserOptions {
  /**
   * `"server"` (default): the peer is a client, every frame must be masked.
   * `"client"`: the peer is a server, no frame may be masked.
   */
  role?: "server" | "client";
  /** Limits (`maxMessageSize`, `maxFragments`); defaults elsewhere. */
  limits?: WebSocketLimits;
  /** The inflater when permessage-deflate was negotiated (RSV1 allowed). */
  inflater?: MessageInflater;
}

const HEAD = 0;
const PAYLOAD = 1;
const DONE = 2;

/** The RFC 7692 §7.2.2 tail a sender removed from every compressed message. */
const DEFLATE_TAIL = new Uint8Array([0x00, 0x00, 0xff, 0xff]);

/**
 * XOR `buf` in place with the masking key `m0..m3`, `buf[0]` being at
 * position `pos` of its frame's payload. Four bytes at a time when `buf`
 * is aligned (it is always a fresh buffer here).
 */
function unmask(
  buf: Uint8Array,
  m0: number,
  m1: number,
  m2: number,
  m3: number,
  pos: number,
): void {
  const len = buf.length;
  // The key rotated so that key byte 0 goes with buf[0].
  const r = pos & 3;
  const k0 = r === 0 ? m0 : r === 1 ? m1 : r === 2 ? m2 : m3;
  const k1 = r === 0 ? m1 : r === 1 ? m2 : r === 2 ? m3 : m0;
  const k2 = r === 0 ? m2 : r === 1 ? m3 : r === 2 ? m0 : m1;
  const k3 = r === 0 ? m3 : r === 1 ? m0 : r === 2 ? m1 : m2;
  let i = 0;
  if (len >= 32 && (buf.byteOffset & 3) === 0) {
    // Little-endian words (x86_64, aarch64): byte k of a word is bits 8k..8k+7.
    const word = k0 | (k1 << 8) | (k2 << 16) | (k3 << 24);
    const words = buf.buffer === scratch.buffer && buf.byteOffset === 0
      ? scratch32
      : new Uint32Array(buf.buffer, buf.byteOffset, len >>> 2);
    const n = len >>> 2;
    for (let w = 0; w < n; w++) words[w] = words[w]! ^ word;
    i = n << 2;
  }
  for (; i + 3 < len; i += 4) {
    buf[i] = buf[i]! ^ k0;
    buf[i + 1] = buf[i + 1]! ^ k1;
    buf[i + 2] = buf[i + 2]! ^ k2;
    buf[i + 3] = buf[i + 3]! ^ k3;
  }
  if (i < len) buf[i] = buf[i]! ^ k0;
  if (i + 1 < len) buf[i + 1] = buf[i + 1]! ^ k1;
  if (i + 2 < len) buf[i + 2] = buf[i + 2]! ^ k2;
}

/**
 * Where a text message that arrives in one piece is unmasked and decoded
 * (shared by this thread's parsers: it is used within one call only).
 */
const SCRATCH = 64 * 1024;
const scratch = new Uint8Array(SCRATCH);
const scratch32 = new Uint32Array(scratch.buffer);
const fatalDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
/**
 * Decodes text already checked to be ASCII (where every decoder agrees):
 * the non-fatal decoder's call costs less than the fatal one's.
 */
const asciiDecoder = new TextDecoder("utf-8", { ignoreBOM: true });
/**
 * Text messages up to this size take the one-pass path (`#smallText`);
 * longer ones the scratch buffer and a decoder, whose call costs about as
 * much as the one-pass path over this many bytes and which then runs at
 * memory speed.
 */
const SMALL_TEXT = 80;
/** `scratch.subarray(0, n)` for each `n` up to `SMALL_TEXT`, made at first use. */
const smallViews: Uint8Array[] = [];
/** An array of `n` character codes for each `n` up to `SMALL_TEXT`, made at first use. */
const smallCodes: number[][] = [];

/**
 * `bytes` (the start of `scratch`) as text, or null when they are not
 * UTF-8: ASCII (checked four bytes at a time) through `asciiDecoder`,
 * anything else through the fatal decoder.
 */
function decodeScratch(bytes: Uint8Array): string | null {
  const n = bytes.length;
  const words = n >>> 2;
  let high = 0;
  for (let w = 0; w < words; w++) high |= scratch32[w]!;
  for (let i = words << 2; i < n; i++) high |= scratch[i]!;
  if ((high & 0x80808080) === 0) return asciiDecoder.decode(bytes);
  try {
    return fatalDecoder.decode(bytes);
  } catch {
    return null;
  }
}

/**
 * The incremental RFC 6455 parser of one connection's incoming bytes.
 * `push()` takes any split of the stream (one byte at a time works) and
 * reports through {@linkcode FrameEvents} synchronously; it never throws
 * for anything a peer sends.
 *
 * @example
 * ```ts
 * import { encodeFrame, FrameParser, Opcode } from "@ffinet/ffinet/websocket";
 * const parser = new FrameParser({
 *   onMessage: (data) => console.log(data), // "hi"
 *   onPing() {},
 *   onPong() {},
 *   onClose() {},
 *   onFail() {},
 * }, { role: "client" });
 * parser.push(encodeFrame(Opcode.Text, new TextEncoder().encode("hi")));
 * ```
 */
export class FrameParser {
  readonly #events: FrameEvents;
  readonly #limits: ResolvedWebSocketLimits;
  readonly #requireMask: boolean;
  readonly #inflater: MessageInflater | undefined;

  #state = HEAD;
  // The frame header being read.
  // (made at the first header split across chunks: most arrive whole)
  #head: Uint8Array | undefined;
  #headLen = 0;
  #fin = false;
  #opcode = 0;
  #compressedFrame = false;
  #masked = false;
  #m0 = 0;
  #m1 = 0;
  #m2 = 0;
  #m3 = 0;
  #length = 0;
  #pos = 0;
  // A control frame's payload (made at the first control frame: an idle
  // connection costs no buffer).
  #control: Uint8Array<ArrayBuffer> | undefined;
  // The message being assembled (opcode 0: none).
  #msgOpcode = 0;
  #msgCompressed = false;
  #fragments = 0;
  #msgBytes = 0;
  #wireBytes = 0;
  /** A binary message's pieces (made at its first piece: an idle parser holds none). */
  #parts: Uint8Array<ArrayBuffer>[] | undefined;
  #text = "";
  #decoder: TextDecoder | undefined;

  /** A parser reporting to `events`. */
  constructor(events: FrameEvents, options: FrameParserOptions = {}) {
    this.#events = events;
    this.#limits = resolveWebSocketLimits(options.limits);
    this.#requireMask = (options.role ?? "server") === "server";
    this.#inflater = options.inflater;
  }

  /** Whether a close frame or a violation ended the parsing. */
  get done(): boolean {
    return this.#state === DONE;
  }

  /** Stop parsing: later bytes are ignored. */
  stop(): void {
    this.#state = DONE;
    this.#parts = undefined;
    this.#text = "";
    this.#decoder = undefined;
  }

  /**
   * Parse the next bytes of the stream. `chunk` is read during the call
   * only (events get copies).
   */
  push(chunk: Uint8Array): void {
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      const state = this.#state;
      if (state === HEAD) {
        i = this.#readHead(chunk, i, n);
      } else if (state === PAYLOAD) {
        const take = Math.min(this.#length - this.#pos, n - i);
        this.#payload(chunk, i, take);
        i += take;
        if (this.#state === PAYLOAD && this.#pos === this.#length) this.#endFrame();
      } else {
        return;
      }
    }
  }

  #fail(code: number, reason: string): void {
    if (this.#state === DONE) return;
    this.stop();
    this.#events.onFail(code, reason);
  }

  /** Read header bytes from `chunk[i..n)`; returns the new index. */
  #readHead(chunk: Uint8Array, i: number, n: number): number {
    if (this.#headLen === 0 && n - i >= 2) {
      // The whole header in this chunk (the usual case): read it in place.
      const b1 = chunk[i + 1]!;
      const len7 = b1 & 0x7f;
      const need = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
      if (n - i >= need) {
        if (!this.#checkFirstByte(chunk[i]!) || !this.#checkSecondByte(b1)) return n;
        this.#startFrame(chunk, i);
        return i + need;
      }
    }
    const head = this.#head ??= new Uint8Array(14);
    // Copy bytes until the header's size is known and reached.
    while (i < n) {
      head[this.#headLen++] = chunk[i++]!;
      const have = this.#headLen;
      if (have === 1) {
        if (!this.#checkFirstByte(head[0]!)) return n;
        continue;
      }
      if (have === 2 && !this.#checkSecondByte(head[1]!)) return n;
      const len7 = head[1]! & 0x7f;
      const need = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (this.#masked ? 4 : 0);
      if (have < need) continue;
      this.#headLen = 0;
      this.#startFrame(head, 0);
      return i;
    }
    return i;
  }

  #checkFirstByte(b0: number): boolean {
    const opcode = b0 & 0x0f;
    this.#fin = (b0 & 0x80) !== 0;
    this.#opcode = opcode;
    if ((b0 & 0x30) !== 0) {
      this.#fail(1002, "a reserved bit (RSV2/RSV3) is set");
      return false;
    }
    const rsv1 = (b0 & 0x40) !== 0;
    if (opcode >= 8) {
      if (opcode > 10) {
        this.#fail(1002, `unknown opcode ${opcode}`);
        return false;
      }
      if (!this.#fin) {
        this.#fail(1002, "a control frame is fragmented");
        return false;
      }
      if (rsv1) {
        this.#fail(1002, "RSV1 is set on a control frame");
        return false;
      }
    } else if (opcode > 2) {
      this.#fail(1002, `unknown opcode ${opcode}`);
      return false;
    } else if (opcode === 0) {
      if (this.#msgOpcode === 0) {
        this.#fail(1002, "a continuation frame without a message");
        return false;
      }
      if (rsv1) {
        this.#fail(1002, "RSV1 is set on a continuation frame");
        return false;
      }
    } else {
      if (this.#msgOpcode !== 0) {
        this.#fail(1002, "a new message inside a fragmented message");
        return false;
      }
      if (rsv1 && this.#inflater === undefined) {
        this.#fail(1002, "RSV1 is set without a negotiated extension");
        return false;
      }
    }
    this.#compressedFrame = rsv1;
    return true;
  }

  #checkSecondByte(b1: number): boolean {
    this.#masked = (b1 & 0x80) !== 0;
    if (this.#masked !== this.#requireMask) {
      this.#fail(
        1002,
        this.#requireMask ? "a client frame is not masked" : "a server frame is masked",
      );
      return false;
    }
    if (this.#opcode >= 8 && (b1 & 0x7f) > MAX_CONTROL_PAYLOAD) {
      this.#fail(1002, `a control frame is over ${MAX_CONTROL_PAYLOAD} bytes`);
      return false;
    }
    return true;
  }

  /** The frame whose complete header starts at `head[h]`. */
  #startFrame(head: Uint8Array, h: number): void {
    const len7 = head[h + 1]! & 0x7f;
    let at = h + 2;
    let length = len7;
    if (len7 === 126) {
      length = (head[h + 2]! << 8) | head[h + 3]!;
      at = h + 4;
    } else if (len7 === 127) {
      if (head[h + 2]! & 0x80) {
        this.#fail(1002, "a 64-bit frame length has its top bit set");
        return;
      }
      const high = ((head[h + 2]! << 24) | (head[h + 3]! << 16) | (head[h + 4]! << 8) |
        head[h + 5]!) >>> 0;
      const low = ((head[h + 6]! << 24) | (head[h + 7]! << 16) | (head[h + 8]! << 8) |
        head[h + 9]!) >>> 0;
      length = high * 0x1_0000_0000 + low;
      at = h + 10;
    }
    if (this.#masked) {
      this.#m0 = head[at]!;
      this.#m1 = head[at + 1]!;
      this.#m2 = head[at + 2]!;
      this.#m3 = head[at + 3]!;
    }
    this.#length = length;
    this.#pos = 0;
    const opcode = this.#opcode;
    if (opcode < 8) {
      const limits = this.#limits;
      if (opcode !== 0) {
        this.#msgOpcode = opcode;
        this.#msgCompressed = this.#compressedFrame;
        this.#fragments = 0;
        this.#msgBytes = 0;
        this.#wireBytes = 0;
      }
      if (++this.#fragments > limits.maxFragments) {
        this.#fail(1009, `a message in over ${limits.maxFragments} frames`);
        return;
      }
      this.#wireBytes += length;
      if (this.#wireBytes > limits.maxMessageSize) {
        this.#fail(1009, `a message over ${limits.maxMessageSize} bytes`);
        return;
      }
    }
    this.#state = PAYLOAD;
    if (length === 0) this.#endFrame();
  }

  /** `take` payload bytes at `chunk[i]`. */
  #payload(chunk: Uint8Array, i: number, take: number): void {
    const pos = this.#pos;
    this.#pos = pos + take;
    if (this.#opcode >= 8) {
      const control = this.#control ??= new Uint8Array(MAX_CONTROL_PAYLOAD);
      for (let k = 0; k < take; k++) {
        const p = pos + k;
        const m = (p & 3) === 0
          ? this.#m0
          : (p & 3) === 1
          ? this.#m1
          : (p & 3) === 2
          ? this.#m2
          : this.#m3;
        control[p] = chunk[i + k]! ^ (this.#masked ? m : 0);
      }
      return;
    }
    if (take === 0) return;
    if (
      pos === 0 && take === this.#length && this.#msgOpcode === 1 && this.#fin &&
      this.#fragments === 1 && !this.#msgCompressed && take <= SCRATCH
    ) {
      // A whole text message in one piece: no copy kept, no streaming decoder.
      let text: string | null;
      if (take <= SMALL_TEXT) {
        text = this.#smallText(chunk, i, take);
      } else {
        const bytes = scratch.subarray(0, take);
        bytes.set(chunk.subarray(i, i + take));
        if (this.#masked) unmask(bytes, this.#m0, this.#m1, this.#m2, this.#m3, 0);
        text = decodeScratch(bytes);
      }
      if (text === null) this.#fail(1007, "a text message is not valid UTF-8");
      else this.#text = text;
      return;
    }
    const piece = chunk.slice(i, i + take);
    if (this.#masked) unmask(piece, this.#m0, this.#m1, this.#m2, this.#m3, pos);
    if (this.#msgCompressed) {
      this.#inflate(piece);
    } else {
      this.#data(piece);
    }
  }

  /**
   * A short text message at `chunk[i..i+take)`: unmasked into the scratch
   * buffer in the same pass that checks for ASCII (the common case: one
   * `String.fromCharCode` over a view made once per length), else decoded
   * as UTF-8; null when it is not UTF-8.
   */
  #smallText(chunk: Uint8Array, i: number, take: number): string | null {
    const m0 = this.#m0, m1 = this.#m1, m2 = this.#m2, m3 = this.#m3;
    // Character codes go to a plain array: `String.fromCharCode.apply` reads
    // one about twice as fast as a typed array.
    const codes = smallCodes[take] ??= Array.from({ length: take }, () => 0);
    let high = 0;
    let k = 0;
    if (this.#masked) {
      for (; k + 3 < take; k += 4) {
        const a = chunk[i + k]! ^ m0, b = chunk[i + k + 1]! ^ m1;
        const c = chunk[i + k + 2]! ^ m2, d = chunk[i + k + 3]! ^ m3;
        codes[k] = a;
        codes[k + 1] = b;
        codes[k + 2] = c;
        codes[k + 3] = d;
        high |= a | b | c | d;
      }
      for (; k < take; k++) {
        const r = k & 3;
        const v = chunk[i + k]! ^ (r === 0 ? m0 : r === 1 ? m1 : r === 2 ? m2 : m3);
        codes[k] = v;
        high |= v;
      }
    } else {
      for (; k < take; k++) {
        const v = chunk[i + k]!;
        codes[k] = v;
        high |= v;
      }
    }
    if (high < 0x80) return String.fromCharCode.apply(null, codes);
    // Not ASCII: the bytes, for the UTF-8 decoder.
    for (k = 0; k < take; k++) scratch[k] = codes[k]!;
    const view = smallViews[take] ??= scratch.subarray(0, take);
    try {
      return fatalDecoder.decode(view);
    } catch {
      return null;
    }
  }

  /** Message bytes (uncompressed): decoded at once for text, kept for binary. */
  #data(piece: Uint8Array<ArrayBuffer>): void {
    if (this.#msgOpcode === 1) {
      this.#decoder ??= new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
      try {
        this.#text += this.#decoder.decode(piece, { stream: true });
      } catch {
        this.#fail(1007, "a text message is not valid UTF-8");
      }
    } else {
      (this.#parts ??= []).push(piece);
    }
  }

  #inflate(input: Uint8Array): void {
    const limit = this.#limits.maxMessageSize;
    const out = this.#inflater!.inflate(input, limit - this.#msgBytes);
    if (out === 1009) {
      this.#fail(1009, `a message inflates to over ${limit} bytes`);
      return;
    }
    if (out === 1007) {
      this.#fail(1007, "a compressed message does not inflate");
      return;
    }
    this.#msgBytes += out.length;
    if (out.length === 0) return;
    this.#data(out as Uint8Array<ArrayBuffer>);
  }

  #endFrame(): void {
    this.#state = HEAD;
    const opcode = this.#opcode;
    if (opcode >= 8) {
      this.#endControl(opcode);
      return;
    }
    if (!this.#fin) return;
    if (this.#msgCompressed) {
      this.#inflate(DEFLATE_TAIL);
      if (this.#state === DONE) return;
      this.#inflater!.endMessage();
    }
    const events = this.#events;
    let message: string | Uint8Array<ArrayBuffer>;
    if (this.#msgOpcode === 1) {
      let text = this.#text;
      if (this.#decoder !== undefined) {
        try {
          text += this.#decoder.decode();
        } catch {
          this.#fail(1007, "a text message ends inside a UTF-8 sequence");
          return;
        }
      }
      message = text;
    } else {
      const parts = this.#parts ?? [];
      if (parts.length === 1) {
        message = parts[0]!;
      } else {
        let size = 0;
        for (const p of parts) size += p.length;
        message = new Uint8Array(size);
        let at = 0;
        for (const p of parts) {
          message.set(p, at);
          at += p.length;
        }
      }
    }
    this.#msgOpcode = 0;
    this.#parts = undefined;
    this.#text = "";
    this.#decoder = undefined;
    events.onMessage(message);
  }

  #endControl(opcode: number): void {
    const payload = this.#control?.slice(0, this.#length) ?? new Uint8Array(0);
    if (opcode === 9) {
      this.#events.onPing(payload);
    } else if (opcode === 10) {
      this.#events.onPong(payload);
    } else {
      this.#endClose(payload);
    }
  }

  #endClose(payload: Uint8Array<ArrayBuffer>): void {
    if (payload.length === 0) {
      this.stop();
      this.#events.onClose(1005, "");
      return;
    }
    if (payload.length === 1) {
      this.#fail(1002, "a close frame of 1 byte");
      return;
    }
    const code = (payload[0]! << 8) | payload[1]!;
    if (!isValidCloseCode(code)) {
      this.#fail(1002, `close code ${code} may not be sent`);
      return;
    }
    let reason: string;
    try {
      reason = fatalDecoder.decode(payload.subarray(2));
    } catch {
      this.#fail(1007, "a close reason is not valid UTF-8");
      return;
    }
    this.stop();
    this.#events.onClose(code, reason);
  }
}
