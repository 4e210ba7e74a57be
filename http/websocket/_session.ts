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
import { type FrameEvents, FrameParser } from "./frame_parser.ts";
import {
  encodeClosePayload,
  encodeFrame,
  frameHeaderLength,
  MAX_CONTROL_PAYLOAD,
  Opcode,
  writeFrameHeader,
} from "./frame.ts";
import type { ResolvedWebSocketLimits } from "./limits.ts";
import type { MessageDeflate } from "./permessage_deflate.ts";
import { idleSweep } from "./_idle.ts";

/**
 * What a session reports to its socket API, with the session's `owner`
 * (the socket): one hooks object serves every socket of its kind, so an
 * idle connection costs no closures here.
 */
export interface SessionHooks<O = unknown> {
  /** A complete message. */
  message(data: string | Uint8Array<ArrayBuffer>, owner: O): void;
  /** The queue emptied after a write that passed the connection's high-water mark. */
  drain(owner: O): void;
  /** A violation, an abrupt close or a timeout (before `closed`). */
  error(message: string, owner: O): void;
  /** The connection is closed (once). */
  closed(code: number, reason: string, wasClean: boolean, owner: O): void;
}

/** Session states. */
export const OPEN = 1;
export const CLOSING = 2;
export const CLOSED = 3;

const encoder = new TextEncoder();
const EMPTY = new Uint8Array(0);
const RSV1 = { rsv1: true } as const;

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
/** Text shorter than this takes the path without views (`Session.send`). */
const SMALL_TEXT = 1024;
/** The frame views of payloads under 126 bytes (2-byte header), made at first use. */
const smallFrames: Uint8Array[] = [];

/**
 * Text shorter than this is encoded by a loop here; longer text by
 * `encodeInto`, whose call costs about as much as a loop over this many
 * characters and which then runs at memory speed (a 1000-character text
 * costs a tenth of the loop's time).
 */
const LOOP_TEXT = 48;

/** `text` as UTF-8 in `outPayload` (it fits: at most 3 bytes per UTF-16 unit); its length. */
function encodeText(text: string): number {
  const n = text.length;
  if (n >= LOOP_TEXT) return encoder.encodeInto(text, outPayload).written;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c > 0x7f) return encoder.encodeInto(text, outPayload).written;
    out[HEAD_ROOM + i] = c;
  }
  return n;
}

/**
 * While a session parses a chunk of input (with nothing queued on its
 * connection), the frames it sends are gathered here and handed to the
 * connection once the chunk is parsed: one `send` for a batch of messages
 * (16 echoes in flight cost one write, not one per frame plus a corked
 * flush). One batch for this thread: parsing is never nested.
 */
const BATCH = 16 * 1024;
const batchBuf = new Uint8Array(BATCH);
let batchLen = 0;
// deno-lint-ignore no-explicit-any
let batchOwner: Session<any> | undefined;
/** Per frame in the batch: where it ends, and its application bytes. */
const batchEnds: number[] = [];
const batchPayloads: number[] = [];
let batchApp = 0;
/** Views of the batch's first `n` bytes for small `n`, made at first use (no view per write). */
const BATCH_VIEWS = 2048;
const batchViews: Uint8Array[] = [];

/**
 * Whether `chunk` is exactly one client frame by the header it starts with
 * (the usual chunk of a request-response exchange): its answer goes to the
 * connection directly, with nothing to gather. A guess only decides the
 * way, never the bytes: a chunk that starts mid-frame is parsed the same.
 */
function oneFrame(chunk: Uint8Array): boolean {
  const n = chunk.length;
  if (n < 6) return true;
  const len7 = chunk[1]! & 0x7f;
  if (len7 < 126) return n === 6 + len7;
  return len7 === 126 && n === 8 + ((chunk[2]! << 8) | chunk[3]!);
}

/** The session of each connection taken over (see `Session.start`). */
const sessions = new WeakMap<RawConnection, Session>();

/**
 * One WebSocket connection (server side). It is its parser's
 * `FrameEvents` itself (the `on…` methods), so that a connection costs no
 * closures.
 */
export class Session<O = unknown> implements FrameEvents {
  readonly #conn: RawConnection;
  readonly #limits: ResolvedWebSocketLimits;
  readonly #hooks: SessionHooks<O>;
  readonly #owner: O;
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
  // (made at the first frame the kernel does not take at once)
  #frameEnds: number[] | undefined;
  #framePayloads: number[] | undefined;
  #pendingPayload = 0;
  #pausedForOutput = false;
  /** The size of the last frame handed to the connection. */
  lastFrameBytes = 0;
  /** Lets the server's drain finish once the connection is closed. */
  #release: (() => void) | undefined;

  constructor(
    conn: RawConnection,
    limits: ResolvedWebSocketLimits,
    hooks: SessionHooks<O>,
    deflate?: MessageDeflate,
    owner?: O,
  ) {
    this.#conn = conn;
    this.#limits = limits;
    this.#hooks = hooks;
    this.#owner = owner as O;
    this.#deflate = deflate;
    this.#parser = new FrameParser(
      this,
      deflate !== undefined ? { limits, inflater: deflate } : { limits },
    );
  }

  /** The parser's report: a complete message. */
  onMessage(data: string | Uint8Array<ArrayBuffer>): void {
    if (this.state === OPEN) this.#hooks.message(data, this.#owner);
  }

  /** The parser's report: a ping, answered with its payload. */
  onPing(payload: Uint8Array<ArrayBuffer>): void {
    if (!this.#closeSent) this.#writeFrame(Opcode.Pong, payload, 0, false);
  }

  /** The parser's report: a pong (being heard is all that counts). */
  onPong(): void {}

  /** The parser's report: the peer's close frame. */
  onClose(code: number, reason: string): void {
    this.#peerClosed(code, reason);
  }

  /** The parser's report: a violation. */
  onFail(code: number, reason: string): void {
    this.#fail(code, reason);
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
    sessions.set(conn, this as Session);
    conn.onData = Session.#onData;
    conn.onEnd = Session.#onEnd;
    conn.onDrain = Session.#onDrain;
    conn.onClose = Session.#onClose;
    if (this.#limits.idleTimeout > 0) idleSweep.add(this, this.#limits.idleTimeout * 1000);
    if (head.length > 0) this.#parser.push(head);
  }

  // The connection's handlers: the same functions for every connection,
  // finding the session by its connection (an idle one costs no closures).
  static #onData(data: Uint8Array, conn: RawConnection): void {
    const session = sessions.get(conn);
    if (session === undefined) return;
    session.heard = true;
    if (batchOwner !== undefined || conn.writableLength > 0 || oneFrame(data)) {
      session.#parser.push(data);
      return;
    }
    batchOwner = session;
    try {
      session.#parser.push(data);
    } finally {
      batchOwner = undefined;
      session.#flushBatch();
    }
  }

  /** Hand the batch to the connection, accounting for each frame (as `#put`). */
  #flushBatch(): void {
    const len = batchLen;
    if (len === 0) return;
    batchLen = 0;
    const conn = this.#conn;
    if (conn.state === "open") {
      const below = conn.write(
        len < BATCH_VIEWS
          ? batchViews[len] ??= batchBuf.subarray(0, len)
          : batchBuf.subarray(0, len),
      );
      const base = this.#written;
      this.#written += len;
      if (conn.writableLength > 0) {
        const ends = this.#frameEnds ??= [];
        const payloads = this.#framePayloads ??= [];
        for (let k = 0; k < batchEnds.length; k++) {
          ends.push(base + batchEnds[k]!);
          payloads.push(batchPayloads[k]!);
        }
        this.#pendingPayload += batchApp;
        if (!below && !this.#pausedForOutput) {
          this.#pausedForOutput = true;
          conn.pause();
        }
      }
    }
    batchEnds.length = 0;
    batchPayloads.length = 0;
    batchApp = 0;
  }

  /** Bytes queued on the connection or waiting in this session's batch. */
  #queued(): number {
    return this.#conn.writableLength + (batchOwner === this ? batchLen : 0);
  }

  static #onEnd(conn: RawConnection): void {
    const session = sessions.get(conn);
    if (session !== undefined && !session.#closeReceived && !session.#reported) {
      if (!session.#finished) session.#hooks.error("Unexpected EOF", session.#owner);
    }
    if (conn.state === "open") conn.close();
  }

  static #onDrain(conn: RawConnection): void {
    const session = sessions.get(conn);
    if (session === undefined) return;
    if (session.#pausedForOutput) {
      session.#pausedForOutput = false;
      if (session.state === OPEN) conn.resume();
    }
    session.#trimBuffered();
    if (session.state === OPEN) session.#hooks.drain(session.#owner);
  }

  static #onClose(conn: RawConnection, error?: Error): void {
    const session = sessions.get(conn);
    if (session !== undefined) session.#finish(error);
  }

  /** Bytes of application data queued and not yet handed to the kernel. */
  get bufferedAmount(): number {
    this.#trimBuffered();
    const batched = batchOwner === this ? batchApp : 0;
    const ends = this.#frameEnds;
    if (ends === undefined || ends.length === 0) return batched;
    // The first frame may be partly sent: only its unsent payload counts.
    const accepted = this.#written - this.#conn.writableLength;
    const unsentOfFirst = ends[0]! - accepted;
    const firstPayload = this.#framePayloads![0]!;
    return this.#pendingPayload - firstPayload + Math.min(firstPayload, unsentOfFirst) + batched;
  }

  #trimBuffered(): void {
    const ends = this.#frameEnds;
    if (ends === undefined || ends.length === 0) return;
    const payloads = this.#framePayloads!;
    const accepted = this.#written - this.#conn.writableLength;
    let n = 0;
    while (n < ends.length && ends[n]! <= accepted) {
      this.#pendingPayload -= payloads[n]!;
      n++;
    }
    if (n === ends.length) {
      // All out: the arrays go (an idle connection keeps none).
      this.#frameEnds = this.#framePayloads = undefined;
    } else if (n > 0) {
      ends.splice(0, n);
      payloads.splice(0, n);
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
    if (typeof data === "string" && data.length < SMALL_TEXT && this.#deflate === undefined) {
      // A short text: encoded straight into the frame buffer, no view made.
      const n = encodeText(data);
      return this.#writeOut(Opcode.Text, n, n, false);
    }
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

  /**
   * Send one published message whose frame was built once for every
   * subscriber: `frame` (FIN, no RSV1, its last `appBytes` bytes the
   * payload; only read during the call, never kept) goes to the connection
   * as it is, with `send`'s results. A session that compresses frames
   * `message` itself; past the backpressure limit the payload takes
   * `send`'s path (fragments, then the limit's close).
   */
  sendFrame(frame: Uint8Array, appBytes: number, message: string | Uint8Array): number {
    if (this.state !== OPEN) return -1;
    if (this.#deflate !== undefined) return this.send(message);
    const conn = this.#conn;
    if (conn.state !== "open") return -1;
    const size = frame.length;
    if (this.#queued() + size > this.#limits.maxBufferedAmount) {
      return this.#writeFrame(frame[0]! & 0x0f, frame.subarray(size - appBytes), appBytes, false);
    }
    this.lastFrameBytes = size;
    return this.#put(frame, appBytes) ? 0 : 1;
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

  /**
   * One message or control frame out: 0 sent or queued, 1 past the
   * high-water mark, -1 dropped. A message whose frame would take the
   * queue past `maxBufferedAmount` goes out as fragments (RFC 6455 §5.4)
   * while the queue stays within the limit; the fragment that would pass
   * it is not queued, and the connection closes with the limit's code (a
   * close frame may follow any fragment). So one large `send()` to a peer
   * that does not read queues at most the limit, not the whole message.
   */
  #writeFrame(opcode: number, payload: Uint8Array, appBytes: number, rsv1: boolean): number {
    const conn = this.#conn;
    if (conn.state !== "open") return -1;
    const length = payload.length;
    const queued = this.#queued();
    const limit = this.#limits.maxBufferedAmount;
    if (queued + length + frameHeaderLength(length) > limit) {
      if (opcode < 8) return this.#writeFragments(opcode, payload, appBytes, rsv1);
      if (queued > 0) return this.#overLimit();
    }
    if (length <= OUT_PAYLOAD) {
      if (payload.buffer !== out.buffer || payload.byteOffset !== HEAD_ROOM) {
        out.set(payload, HEAD_ROOM);
      }
      return this.#writeOut(opcode, length, appBytes, rsv1);
    }
    const frame = encodeFrame(opcode, payload, rsv1 ? RSV1 : {});
    this.lastFrameBytes = frame.length;
    return this.#put(frame, appBytes) ? 0 : 1;
  }

  /**
   * The frame whose `length`-byte payload is in the shared buffer already
   * (at `HEAD_ROOM`): the header before it, then out (as `#writeFrame`).
   * Frames under 126 bytes go out through a view made once per length.
   */
  #writeOut(opcode: number, length: number, appBytes: number, rsv1: boolean): number {
    const conn = this.#conn;
    if (conn.state !== "open") return -1;
    const queued = this.#queued();
    const size = length + frameHeaderLength(length);
    if (queued + size > this.#limits.maxBufferedAmount) {
      if (opcode < 8) {
        return this.#writeFragments(opcode, outPayload.slice(0, length), appBytes, rsv1);
      }
      if (queued > 0) return this.#overLimit();
    }
    const start = writeFrameHeader(out, HEAD_ROOM, opcode, length, rsv1 ? RSV1 : undefined);
    const frame = length < 126
      ? smallFrames[length] ??= out.subarray(HEAD_ROOM - 2, HEAD_ROOM + length)
      : out.subarray(start, HEAD_ROOM + length);
    this.lastFrameBytes = size;
    return this.#put(frame, appBytes) ? 0 : 1;
  }

  /**
   * A message in fragments of at most an eighth of the limit (and 64 KiB),
   * each framed in the shared buffer, while the queue stays within the
   * limit. The first carries the opcode (and RSV1); the last, FIN. Each
   * fragment counts its own payload in `bufferedAmount` (a compressed
   * message counts its uncompressed size on the last).
   */
  #writeFragments(opcode: number, payload: Uint8Array, appBytes: number, rsv1: boolean): number {
    const conn = this.#conn;
    const limit = this.#limits.maxBufferedAmount;
    const length = payload.length;
    // The text payload may already sit in the shared buffer: fragments are framed there.
    if (payload.buffer === out.buffer) payload = payload.slice();
    const step = Math.min(OUT_PAYLOAD, Math.max(MAX_CONTROL_PAYLOAD, Math.floor(limit / 8)));
    let offset = 0;
    let total = 0;
    let below = true;
    do {
      const n = Math.min(step, length - offset);
      const end = offset + n;
      const size = n + frameHeaderLength(n);
      if (this.#queued() + size > limit) return this.#overLimit();
      out.set(payload.subarray(offset, end), HEAD_ROOM);
      const start = writeFrameHeader(
        out,
        HEAD_ROOM,
        offset === 0 ? opcode : Opcode.Continuation,
        n,
        { fin: end === length, rsv1: rsv1 && offset === 0 },
      );
      const counted = rsv1 ? (end === length ? appBytes : 0) : n;
      below = this.#put(out.subarray(start, HEAD_ROOM + n), counted);
      total += size;
      offset = end;
      if (conn.state !== "open") return -1;
    } while (offset < length);
    this.lastFrameBytes = total;
    return below ? 0 : 1;
  }

  /** The backpressure limit is reached: close with its code. */
  #overLimit(): number {
    this.#fail(
      this.#limits.backpressureCloseCode,
      `the peer does not read: over ${this.#limits.maxBufferedAmount} bytes queued`,
    );
    return -1;
  }

  /**
   * Hand one frame to the connection (which sends it or copies what the
   * kernel does not take) and account for its `appBytes` until the kernel
   * has it all; reading pauses past the high-water mark. Whether the queue
   * is below that mark.
   */
  #put(frame: Uint8Array, appBytes: number): boolean {
    if (batchOwner === this) {
      const n = frame.length;
      // At most half the backpressure limit waits here (fragments of a
      // large message are checked against the limit with the batch counted).
      if (batchLen + n <= Math.min(BATCH, this.#limits.maxBufferedAmount >>> 1)) {
        batchBuf.set(frame, batchLen);
        batchLen += n;
        batchEnds.push(batchLen);
        batchPayloads.push(appBytes);
        batchApp += appBytes;
        return true;
      }
      this.#flushBatch();
    }
    const conn = this.#conn;
    const below = conn.write(frame);
    this.#written += frame.length;
    if (conn.writableLength > 0) {
      (this.#frameEnds ??= []).push(this.#written);
      (this.#framePayloads ??= []).push(appBytes);
      this.#pendingPayload += appBytes;
      if (!below && !this.#pausedForOutput) {
        // Read no more (pings to answer, messages to echo) until the peer reads.
        this.#pausedForOutput = true;
        conn.pause();
      }
    }
    return below;
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
    if (batchOwner === this) this.#flushBatch();
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
        this.#hooks.error("the peer did not finish the closing handshake in time", this.#owner);
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
    if (batchOwner === this) this.#flushBatch();
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
    this.#hooks.closed(code, reason, wasClean, this.#owner);
  }

  /** Fail the connection: send the close code, half-close, wait for the peer. */
  #fail(code: number, reason: string): void {
    if (this.state === CLOSED) return;
    this.#parser.stop();
    this.#hooks.error(reason, this.#owner);
    this.#clean = false;
    this.#code = code;
    this.#reason = reason;
    this.state = CLOSING;
    if (batchOwner === this) this.#flushBatch();
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
    this.#hooks.error("the peer did not answer a ping in time (idleTimeout)", this.#owner);
    this.#clean = false;
    this.#code = 1006;
    this.#conn.abort();
  }

  #finish(error?: Error): void {
    if (this.#finished) return;
    const abrupt = !this.#closeReceived && !this.#closeSent;
    this.#finished = true;
    sessions.delete(this.#conn);
    this.#release?.();
    this.#release = undefined;
    this.state = CLOSED;
    this.#parser.stop();
    idleSweep.delete(this);
    if (this.#closeTimer !== undefined) clearTimeout(this.#closeTimer);
    this.#closeTimer = undefined;
    this.#frameEnds = this.#framePayloads = undefined;
    this.#pendingPayload = 0;
    this.#deflate?.close();
    if (this.#reported) return;
    if (abrupt) {
      if (error !== undefined) this.#hooks.error(error.message, this.#owner);
      this.#report(1006, "", false);
      return;
    }
    this.#report(this.#code, this.#reason, this.#clean);
  }
}
