/**
 * One WebSocket connection's lifecycle on an upgraded ffinet connection
 * (private): the parser on the input, frames on the output, the close
 * handshake with its timeout, keep-alive pings, exact buffered bytes and
 * the backpressure limit. Both socket APIs (`ServerWebSocket` and the
 * handler-shaped one) sit on this one class.
 *
 * @module
 */
import type { RawConnection } from "../upgrade.ts";
import { FrameParser } from "./frame_parser.ts";
import { encodeClosePayload, encodeFrame, Opcode, writeFrameHeader } from "./frame.ts";
import type { ResolvedWebSocketLimits } from "./limits.ts";
import type { MessageDeflate } from "./permessage_deflate.ts";
import { idleSweep } from "./_idle.ts";

/** What a session reports to its socket API. */
export interface SessionHooks {
  /** A complete message. */
  message(data: string | Uint8Array<ArrayBuffer>): void;
  /** The queue emptied after a write that passed the connection's high-water mark. */
  drain(): void;
  /** A violation, an abrupt close or a timeout (before `closed`). */
  error(message: string): void;
  /** The connection is closed (once). */
  closed(code: number, reason: string, wasClean: boolean): void;
}

/** Session states. */
export const OPEN = 1;
export const CLOSING = 2;
export const CLOSED = 3;

const encoder = new TextEncoder();
const EMPTY = new Uint8Array(0);

/**
 * Frames up to 64 KiB are built here, the payload after room for the
 * largest header, and handed to the connection, which sends them or copies
 * what it cannot send at once (the reactor's `Connection.write` never keeps
 * the view it is given): one buffer for this thread, no allocation per frame.
 */
const HEAD_ROOM = 10;
const OUT_PAYLOAD = 64 * 1024;
const out = new Uint8Array(HEAD_ROOM + OUT_PAYLOAD);
const outPayload = out.subarray(HEAD_ROOM);

/** `text` as UTF-8 in `outPayload` (it fits: at most 3 bytes per UTF-16 unit); its length. */
function encodeText(text: string): number {
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c > 0x7f) return encoder.encodeInto(text, outPayload).written;
    out[HEAD_ROOM + i] = c;
  }
  return n;
}

/** One WebSocket connection (server side). */
export class Session {
  readonly #conn: RawConnection;
  readonly #limits: ResolvedWebSocketLimits;
  readonly #hooks: SessionHooks;
  readonly #deflate: MessageDeflate | undefined;
  readonly #parser: FrameParser;
  state = OPEN;
  // The close handshake.
  #closeSent = false;
  #closeReceived = false;
  #code = 1006;
  #reason = "";
  #clean = false;
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  #reported = false;
  /** The TCP connection is closed and everything released. */
  #finished = false;
  // Keep-alive: set on every read, cleared by the sweep.
  heard = true;
  silentMs = 0;
  pingSent = false;
  // Exact buffered bytes: frames not yet handed to the kernel, in order.
  #written = 0;
  #frameEnds: number[] = [];
  #framePayloads: number[] = [];
  #pendingPayload = 0;
  #pausedForOutput = false;
  /** The size of the last frame handed to the connection. */
  lastFrameBytes = 0;
  /** Lets the server's drain finish once the connection is closed. */
  #release: (() => void) | undefined;

  constructor(
    conn: RawConnection,
    limits: ResolvedWebSocketLimits,
    hooks: SessionHooks,
    deflate?: MessageDeflate,
  ) {
    this.#conn = conn;
    this.#limits = limits;
    this.#hooks = hooks;
    this.#deflate = deflate;
    this.#parser = new FrameParser({
      onMessage: (data) => {
        if (this.state === OPEN) hooks.message(data);
      },
      onPing: (payload) => {
        if (!this.#closeSent) this.#writeFrame(Opcode.Pong, payload, 0, false);
      },
      onPong: () => {},
      onClose: (code, reason) => this.#peerClosed(code, reason),
      onFail: (code, reason) => this.#fail(code, reason),
    }, deflate !== undefined ? { limits, inflater: deflate } : { limits });
  }

  /**
   * Take over the connection; `head` holds bytes read after the request
   * head. With `hold` (the upgrade's), the server's `shutdown()` closes the
   * socket with 1001 (going away) and waits for it.
   */
  start(head: Uint8Array, hold?: (goingAway: () => void) => () => void): void {
    const conn = this.#conn;
    if (hold !== undefined) {
      this.#release = hold(() => this.close(1001, "the server is shutting down"));
    }
    conn.onData = (data) => {
      this.heard = true;
      this.#parser.push(data);
    };
    conn.onEnd = () => {
      if (!this.#closeReceived && !this.#reported && !this.#finished) {
        this.#hooks.error("Unexpected EOF");
      }
      if (conn.state === "open") conn.close();
    };
    conn.onDrain = () => {
      if (this.#pausedForOutput) {
        this.#pausedForOutput = false;
        if (this.state === OPEN) conn.resume();
      }
      this.#trimBuffered();
      if (this.state === OPEN) this.#hooks.drain();
    };
    conn.onClose = (_c, error) => this.#finish(error);
    if (this.#limits.idleTimeout > 0) idleSweep.add(this, this.#limits.idleTimeout * 1000);
    if (head.length > 0) this.#parser.push(head);
  }

  /** Bytes of application data queued and not yet handed to the kernel. */
  get bufferedAmount(): number {
    this.#trimBuffered();
    const ends = this.#frameEnds;
    if (ends.length === 0) return 0;
    // The first frame may be partly sent: only its unsent payload counts.
    const accepted = this.#written - this.#conn.writableLength;
    const unsentOfFirst = ends[0]! - accepted;
    const firstPayload = this.#framePayloads[0]!;
    return this.#pendingPayload - firstPayload + Math.min(firstPayload, unsentOfFirst);
  }

  #trimBuffered(): void {
    const ends = this.#frameEnds;
    if (ends.length === 0) return;
    const accepted = this.#written - this.#conn.writableLength;
    let n = 0;
    while (n < ends.length && ends[n]! <= accepted) {
      this.#pendingPayload -= this.#framePayloads[n]!;
      n++;
    }
    if (n > 0) {
      ends.splice(0, n);
      this.#framePayloads.splice(0, n);
    }
  }

  /**
   * Send a text or binary message. Returns 0 when it was handed to the
   * kernel or queued below the connection's high-water mark, 1 when the
   * queue is past that mark (backpressure: `drain` follows), or -1 when
   * the session is not open or the message would pass the backpressure
   * limit (the session then closes with the limit's code).
   */
  send(data: string | Uint8Array): number {
    if (this.state !== OPEN) return -1;
    let opcode: number = Opcode.Binary;
    let payload: Uint8Array;
    if (typeof data === "string") {
      opcode = Opcode.Text;
      payload = data.length * 3 <= OUT_PAYLOAD
        ? outPayload.subarray(0, encodeText(data))
        : encoder.encode(data);
    } else {
      payload = data;
    }
    const appBytes = payload.byteLength;
    let rsv1 = false;
    const deflate = this.#deflate;
    if (deflate !== undefined) {
      const packed = deflate.compress(payload);
      if (packed !== null) {
        payload = packed;
        rsv1 = true;
      }
    }
    return this.#writeFrame(opcode, payload, appBytes, rsv1);
  }

  /** Send a ping (a keep-alive probe). */
  ping(payload: Uint8Array = EMPTY): void {
    if (this.state === OPEN) this.#writeFrame(Opcode.Ping, payload, 0, false);
  }

  /** Send an unsolicited pong (a one-way heartbeat). */
  pong(payload: Uint8Array = EMPTY): void {
    if (this.state === OPEN) this.#writeFrame(Opcode.Pong, payload, 0, false);
  }

  /** Reset the connection at once (no closing handshake): reported as 1006. */
  terminate(): void {
    if (!this.#finished) this.#conn.abort();
  }

  /** One frame out: 0 sent or queued, 1 past the high-water mark, -1 dropped. */
  #writeFrame(opcode: number, payload: Uint8Array, appBytes: number, rsv1: boolean): number {
    const conn = this.#conn;
    if (conn.state !== "open") return -1;
    const length = payload.length;
    let frame: Uint8Array;
    if (length <= OUT_PAYLOAD) {
      if (payload.buffer !== out.buffer || payload.byteOffset !== HEAD_ROOM) {
        out.set(payload, HEAD_ROOM);
      }
      const start = writeFrameHeader(out, HEAD_ROOM, opcode, length, rsv1 ? { rsv1 } : undefined);
      frame = out.subarray(start, HEAD_ROOM + length);
    } else {
      frame = encodeFrame(opcode, payload, rsv1 ? { rsv1 } : {});
    }
    const queued = conn.writableLength;
    if (queued > 0 && queued + frame.length > this.#limits.maxBufferedAmount) {
      const limit = this.#limits.maxBufferedAmount;
      this.#fail(
        this.#limits.backpressureCloseCode,
        `the peer does not read: over ${limit} bytes queued`,
      );
      return -1;
    }
    const below = conn.write(frame);
    this.#written += frame.length;
    this.lastFrameBytes = frame.length;
    const left = conn.writableLength;
    if (left > 0) {
      this.#frameEnds.push(this.#written);
      this.#framePayloads.push(appBytes);
      this.#pendingPayload += appBytes;
      if (!below && !this.#pausedForOutput) {
        // Read no more (pings to answer, messages to echo) until the peer reads.
        this.#pausedForOutput = true;
        conn.pause();
      }
    }
    return below ? 0 : 1;
  }

  /** Start the closing handshake (a valid code, or undefined for none). */
  close(code?: number, reason = ""): void {
    if (this.state !== OPEN) return;
    encodeClosePayload(code, reason); // throws for a bad code or reason, before any change
    this.state = CLOSING;
    this.#code = code ?? 1005;
    this.#reason = reason;
    this.#sendClose(code, reason);
  }

  #sendClose(code: number | undefined, reason: string): void {
    const conn = this.#conn;
    this.#closeSent = true;
    if (conn.state === "open") {
      const frame = encodeFrame(Opcode.Close, encodeClosePayload(code, reason));
      conn.write(frame);
      this.#written += frame.length;
      if (this.#closeReceived) {
        conn.end();
      }
    }
    this.#armCloseTimer();
  }

  #armCloseTimer(): void {
    if (this.#closeTimer !== undefined || this.#finished) return;
    this.#closeTimer = setTimeout(() => {
      this.#closeTimer = undefined;
      if (this.#finished) return;
      if (!this.#reported) {
        this.#hooks.error("the peer did not finish the closing handshake in time");
        this.#clean = false;
      }
      this.#conn.abort();
    }, this.#limits.closeTimeoutMs);
  }

  /**
   * The peer's close frame: the closing handshake is complete once ours is
   * out too. The socket is reported closed at once (as Deno does); the TCP
   * connection ends with our FIN, and what the peer still sends is read and
   * dropped until its FIN (closing with unread input would reset the
   * connection and could destroy our close frame), or until the close
   * timeout resets it.
   */
  #peerClosed(code: number, reason: string): void {
    this.#closeReceived = true;
    this.#clean = true;
    this.#code = code;
    this.#reason = reason;
    this.state = CLOSING;
    if (!this.#closeSent) {
      // Echo the peer's code and reason (RFC 6455 §5.5.1), as Deno does.
      this.#sendClose(code === 1005 ? undefined : code, reason);
    } else {
      this.#conn.end();
    }
    this.#conn.resume();
    this.#report(code, reason, true);
  }

  #report(code: number, reason: string, wasClean: boolean): void {
    if (this.#reported) return;
    this.#reported = true;
    // Closed for the application; the TCP connection may still be ending.
    this.state = CLOSED;
    this.#hooks.closed(code, reason, wasClean);
  }

  /** Fail the connection: send the close code, half-close, wait for the peer. */
  #fail(code: number, reason: string): void {
    if (this.state === CLOSED) return;
    this.#parser.stop();
    this.#hooks.error(reason);
    this.#clean = false;
    this.#code = code;
    this.#reason = reason;
    this.state = CLOSING;
    if (!this.#closeSent) {
      this.#closeSent = true;
      const conn = this.#conn;
      if (conn.state === "open") {
        const frame = encodeFrame(Opcode.Close, encodeClosePayload(code, ""));
        conn.write(frame);
        this.#written += frame.length;
        conn.end();
        conn.resume();
      }
      this.#armCloseTimer();
    }
  }

  /** The peer was silent for its idle time: ping, or give up after a ping. */
  idle(): void {
    if (this.state !== OPEN) return;
    if (!this.pingSent) {
      this.pingSent = true;
      this.#writeFrame(Opcode.Ping, EMPTY, 0, false);
      return;
    }
    this.#hooks.error("the peer did not answer a ping in time (idleTimeout)");
    this.#clean = false;
    this.#code = 1006;
    this.#conn.abort();
  }

  #finish(error?: Error): void {
    if (this.#finished) return;
    const abrupt = !this.#closeReceived && !this.#closeSent;
    this.#finished = true;
    this.#release?.();
    this.#release = undefined;
    this.state = CLOSED;
    this.#parser.stop();
    idleSweep.delete(this);
    if (this.#closeTimer !== undefined) clearTimeout(this.#closeTimer);
    this.#closeTimer = undefined;
    this.#frameEnds = [];
    this.#framePayloads = [];
    this.#pendingPayload = 0;
    this.#deflate?.close();
    if (this.#reported) return;
    if (abrupt) {
      if (error !== undefined) this.#hooks.error(error.message);
      this.#report(1006, "", false);
      return;
    }
    this.#report(this.#code, this.#reason, this.#clean);
  }
}
