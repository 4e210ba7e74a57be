/**
 * Frame building and event recording for the WebSocket tests: client
 * frames with any header bits (including ones the serializer refuses to
 * make), a recorder of a parser's events, and a connection double for the
 * tests whose unit is the session.
 *
 * @module
 */
import { encodeFrame, type FrameEvents, FrameParser } from "../../../http/websocket/mod.ts";
import type { RawConnection } from "../../../http/upgrade.ts";
import { concatBytes } from "../../_helpers.ts";
import { RawDeflate } from "../../../ffi/zlib.ts";

// libz is opened on first use, once per process: open it before any test
// so that the resource sanitizer does not count it against one.
new RawDeflate().close();

/** Header bits of a hand-made frame. */
export interface RawFrameOptions {
  fin?: boolean;
  rsv1?: boolean;
  rsv2?: boolean;
  rsv3?: boolean;
  /** Mask the payload (a client's frame); default true. */
  masked?: boolean;
  /** The masking key; default 37 fa 21 3d. */
  mask?: Uint8Array;
  /** Force the 64-bit length form with this high word. */
  lengthHigh?: number;
}

/** A frame with any opcode and bits, as a client sends it (masked by default). */
export function rawFrame(
  opcode: number,
  payload: Uint8Array | string,
  o: RawFrameOptions = {},
): Uint8Array {
  const bytes = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
  const masked = o.masked ?? true;
  const mask = o.mask ?? new Uint8Array([0x37, 0xfa, 0x21, 0x3d]);
  const len = bytes.length;
  const head: number[] = [
    ((o.fin ?? true) ? 0x80 : 0) | (o.rsv1 ? 0x40 : 0) | (o.rsv2 ? 0x20 : 0) |
    (o.rsv3 ? 0x10 : 0) | (opcode & 0x0f),
  ];
  const m = masked ? 0x80 : 0;
  if (o.lengthHigh !== undefined) {
    const h = o.lengthHigh;
    head.push(m | 127, h >>> 24, (h >>> 16) & 255, (h >>> 8) & 255, h & 255);
    head.push(len >>> 24, (len >>> 16) & 255, (len >>> 8) & 255, len & 255);
  } else if (len < 126) head.push(m | len);
  else if (len < 65536) head.push(m | 126, len >>> 8, len & 255);
  else {
    head.push(m | 127, 0, 0, 0, 0, len >>> 24, (len >>> 16) & 255, (len >>> 8) & 255, len & 255);
  }
  if (masked) head.push(...mask);
  const out = new Uint8Array(head.length + len);
  out.set(head);
  for (let i = 0; i < len; i++) out[head.length + i] = bytes[i]! ^ (masked ? mask[i & 3]! : 0);
  return out;
}

/** A masked client frame through the library's serializer. */
export function clientFrame(
  opcode: number,
  payload: Uint8Array | string,
  fin = true,
  rsv1 = false,
): Uint8Array {
  const bytes = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
  return encodeFrame(opcode, bytes, { fin, rsv1, mask: new Uint8Array([1, 2, 3, 4]) });
}

/** Concatenate byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  return concatBytes(parts);
}

/** A parser's events as strings, in order. */
export class Recorder implements FrameEvents {
  readonly log: string[] = [];
  onMessage(data: string | Uint8Array): void {
    this.log.push(
      typeof data === "string" ? `text:${data}` : `binary:${Array.from(data).join(",")}`,
    );
  }
  onPing(payload: Uint8Array): void {
    this.log.push(`ping:${Array.from(payload).join(",")}`);
  }
  onPong(payload: Uint8Array): void {
    this.log.push(`pong:${Array.from(payload).join(",")}`);
  }
  onClose(code: number, reason: string): void {
    this.log.push(`close:${code}:${reason}`);
  }
  onFail(code: number, reason: string): void {
    this.log.push(`fail:${code}`);
    this.reasons.push(reason);
  }
  readonly reasons: string[] = [];
}

/**
 * A connection for tests whose unit is the session: it records every
 * `write()`, and its kernel takes `takes` bytes in all (default: every
 * byte), queuing the rest until the test calls `drain(n)`. The real socket
 * path is covered by the tests that run a server.
 */
export class SessionConnection implements RawConnection {
  onData: RawConnection["onData"];
  onEnd: RawConnection["onEnd"];
  onDrain: RawConnection["onDrain"];
  onClose: RawConnection["onClose"];
  state = "open";
  /** Each `write()`'s bytes, copied. */
  readonly writes: Uint8Array[] = [];
  /** Bytes written that the kernel has not taken. */
  queued = 0;
  #budget: number;
  constructor(takes = Infinity) {
    this.#budget = takes;
  }
  get writableLength(): number {
    return this.queued;
  }
  write(data: Uint8Array): boolean {
    this.writes.push(data.slice());
    const taken = this.queued > 0 ? 0 : Math.min(data.length, this.#budget);
    this.#budget -= taken;
    this.queued += data.length - taken;
    return this.queued < 1 << 20;
  }
  /** The kernel takes `n` more queued bytes. */
  drain(n: number): void {
    this.queued -= Math.min(n, this.queued);
  }
  pause(): void {}
  resume(): void {}
  end(): void {
    this.state = "ending";
  }
  close(): void {
    this.state = "closed";
    this.onClose?.(this);
  }
  abort(): void {
    this.close();
  }
  /** Every byte written, in order. */
  bytes(): Uint8Array {
    return concat(...this.writes);
  }
  /** What the peer receives, as parsed events. */
  received(): string[] {
    const rec = new Recorder();
    new FrameParser(rec, { role: "client" }).push(this.bytes());
    return rec.log;
  }
}
