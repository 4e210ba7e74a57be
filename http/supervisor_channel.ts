/**
 * The channel between ffinet's supervisor and each of its worker processes:
 * one Unix stream socket pair per worker, the worker's end inherited as an
 * fd named by {@linkcode CHANNEL_FD_ENV} (the variable carries the fd
 * number, never a secret). Two kinds of message travel on it:
 *
 * - **Session ticket keys** (supervisor → worker): the supervisor makes
 *   them in memory and rotates them on a schedule; every worker's HTTPS
 *   `serve()` encrypts tickets with the newest one and decrypts with the
 *   last three, so a client resumes on whichever worker accepts it. The
 *   keys never touch a file, argv or the environment. The supervisor writes
 *   the current keys into the socket before the worker starts, so `serve()`
 *   reads them synchronously and its first handshake already uses them.
 * - **WebSocket publishes** (both ways): `publish(topic, data)` in one
 *   worker is sent to the supervisor, which relays the same bytes to every
 *   other worker; each delivers it to its own subscribers. The messages
 *   are those the Workers of `serve({ workers })` post to their main
 *   thread (`{ type: WEBSOCKET_PUBLISH, topic, data }`).
 *
 * **Framing** ({@linkcode encodePublish}, {@linkcode encodeTicketKey},
 * {@linkcode FrameDecoder}, {@linkcode decodeFrame}): a frame is a 4-byte
 * little-endian body length, then the body: a kind byte, then for a
 * publish a 2-byte topic length, the topic (UTF-8) and the data (UTF-8
 * text or binary, by kind); for a ticket key its 80 bytes. The limits
 * are in {@linkcode CHANNEL_LIMITS}.
 *
 * **Bounds**: a side whose peer stops reading drops publishes once its
 * queue holds more than `queueBytes` (and says so once per episode, then
 * how many it dropped when the peer reads again); ticket keys are never
 * dropped. Neither side's memory grows past the queue limit plus one frame.
 *
 * @example
 * ```ts
 * import { decodeFrame, encodePublish, FrameDecoder } from "./supervisor_channel.ts";
 * const frames: Uint8Array[] = [];
 * const decoder = new FrameDecoder();
 * decoder.push(encodePublish("room", "hi"), (frame) => frames.push(frame));
 * console.log(decodeFrame(frames[0]!)); // { type: "ffinet.websocket.publish", topic: "room", data: "hi" }
 * ```
 *
 * @module
 */
import { EAGAIN } from "../ffi/errno.ts";
import { isOpen, setCloexec, setNonBlocking } from "../ffi/fd.ts";
import { Socket } from "../ffi/socket.ts";
import { read } from "../ffi/syscalls.ts";
import { Connection } from "../reactor/connection.ts";
import { envDelete, envVar } from "../reactor/env.ts";
import { acquireReactor, refReactor, startReactor } from "./_reactor.ts";
import { isServeWorker, WEBSOCKET_PUBLISH } from "./workers.ts";

/**
 * The variable naming the worker's end of the channel (an fd number).
 *
 * @example
 * ```ts
 * import { CHANNEL_FD_ENV } from "./supervisor_channel.ts";
 * console.log(CHANNEL_FD_ENV); // "FFINET_CHANNEL_FD"
 * ```
 */
export const CHANNEL_FD_ENV = "FFINET_CHANNEL_FD";

/**
 * The type of a ticket key message (also posted by the main thread of
 * `serve({ workers })` to its Workers).
 *
 * @example
 * ```ts
 * import { TICKET_KEYS } from "./supervisor_channel.ts";
 * console.log({ type: TICKET_KEYS, material: new Uint8Array(80) });
 * ```
 */
export const TICKET_KEYS = "ticketKeys";

/**
 * The channel's limits, in one place: the largest frame body, the longest
 * topic, the bytes a side queues for a peer that does not read before it
 * drops publishes, the ticket key size and how many keys are kept.
 *
 * @example
 * ```ts
 * import { CHANNEL_LIMITS } from "./supervisor_channel.ts";
 * console.log(CHANNEL_LIMITS.maxFrameBytes); // 16777216
 * ```
 */
export const CHANNEL_LIMITS: Readonly<{
  maxFrameBytes: number;
  maxTopicBytes: number;
  queueBytes: number;
  ticketKeyBytes: number;
  ticketKeysKept: number;
}> = Object.freeze({
  maxFrameBytes: 16 * 1024 * 1024,
  maxTopicBytes: 0xffff,
  queueBytes: 8 * 1024 * 1024,
  ticketKeyBytes: 80,
  ticketKeysKept: 3,
});

/** Frame kinds (the body's first byte). */
const KIND_TEXT = 1;
const KIND_BINARY = 2;
const KIND_TICKET_KEY = 3;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A message of the channel, as the Workers of `serve({ workers })` post
 * them too.
 *
 * @example
 * ```ts
 * import type { ChannelMessage } from "./supervisor_channel.ts";
 * const m: ChannelMessage = { type: "ffinet.websocket.publish", topic: "room", data: "hi" };
 * ```
 */
export type ChannelMessage =
  | { type: typeof WEBSOCKET_PUBLISH; topic: string; data: string | Uint8Array }
  | { type: typeof TICKET_KEYS; material: Uint8Array };

function frame(kind: number, bodyBytes: number): { out: Uint8Array; view: DataView } {
  if (bodyBytes > CHANNEL_LIMITS.maxFrameBytes) {
    throw new RangeError(
      `Cannot relay the message: ${bodyBytes} bytes is more than the ` +
        `${CHANNEL_LIMITS.maxFrameBytes} a channel frame may hold`,
    );
  }
  const out = new Uint8Array(4 + bodyBytes);
  const view = new DataView(out.buffer);
  view.setUint32(0, bodyBytes, true);
  out[4] = kind;
  return { out, view };
}

/**
 * The frame of a publish (`data` a string: text; else binary, copied).
 * Throws a `RangeError` for a topic longer than 65 535 UTF-8 bytes or a
 * frame past {@linkcode CHANNEL_LIMITS}.
 *
 * @example
 * ```ts
 * import { encodePublish } from "./supervisor_channel.ts";
 * encodePublish("room", new Uint8Array([1, 2])).byteLength; // 4 + 1 + 2 + 4 + 2
 * ```
 */
export function encodePublish(topic: string, data: string | Uint8Array): Uint8Array {
  const t = encoder.encode(topic);
  if (t.byteLength > CHANNEL_LIMITS.maxTopicBytes) {
    throw new RangeError(
      `Cannot relay the message: its topic is ${t.byteLength} bytes, more than ${CHANNEL_LIMITS.maxTopicBytes}`,
    );
  }
  const d = typeof data === "string" ? encoder.encode(data) : data;
  const n = d.byteLength; // read once: the copy below uses this length
  const { out, view } = frame(
    typeof data === "string" ? KIND_TEXT : KIND_BINARY,
    3 + t.byteLength + n,
  );
  view.setUint16(5, t.byteLength, true);
  out.set(t, 7);
  out.set(d.subarray(0, n), 7 + t.byteLength);
  return out;
}

/**
 * The frame of a ticket key (exactly 80 bytes; a `RangeError` otherwise).
 *
 * @example
 * ```ts
 * import { encodeTicketKey } from "./supervisor_channel.ts";
 * encodeTicketKey(crypto.getRandomValues(new Uint8Array(80))).byteLength; // 85
 * ```
 */
export function encodeTicketKey(material: Uint8Array): Uint8Array {
  const n = material.byteLength;
  if (n !== CHANNEL_LIMITS.ticketKeyBytes) {
    throw new RangeError(
      `Cannot send the ticket key: it is ${CHANNEL_LIMITS.ticketKeyBytes} bytes, got ${n}`,
    );
  }
  const { out } = frame(KIND_TICKET_KEY, 1 + n);
  out.set(material.subarray(0, n), 5);
  return out;
}

/**
 * What a whole frame (length prefix included) carries, checked without
 * decoding its text: a publish (kind, topic length within the frame) or a
 * ticket key (exactly 80 bytes). Throws a `RangeError` naming what is
 * wrong for a malformed one. The relay checks frames with it alone.
 *
 * @example
 * ```ts
 * import { encodePublish, frameType } from "./supervisor_channel.ts";
 * frameType(encodePublish("room", "hi")); // "ffinet.websocket.publish"
 * ```
 */
export function frameType(bytes: Uint8Array): ChannelMessage["type"] {
  const len = bytes.byteLength;
  if (len < 5) throw new RangeError(`Cannot read the channel: a frame of ${len} bytes`);
  if ((bytes[0]! | bytes[1]! << 8 | bytes[2]! << 16) + bytes[3]! * 0x1000000 !== len - 4) {
    throw new RangeError("Cannot read the channel: a frame's length does not match its body");
  }
  const kind = bytes[4];
  if (kind === KIND_TICKET_KEY) {
    if (len !== 5 + CHANNEL_LIMITS.ticketKeyBytes) {
      throw new RangeError(`Cannot read the channel: a ticket key frame of ${len} bytes`);
    }
    return TICKET_KEYS;
  }
  if (kind !== KIND_TEXT && kind !== KIND_BINARY) {
    throw new RangeError(`Cannot read the channel: unknown frame kind ${kind}`);
  }
  if (len < 7) throw new RangeError("Cannot read the channel: a publish frame without a topic");
  if (7 + (bytes[5]! | bytes[6]! << 8) > len) {
    throw new RangeError("Cannot read the channel: a topic past the frame's end");
  }
  return WEBSOCKET_PUBLISH;
}

/**
 * The message of a whole frame (length prefix included) that
 * {@linkcode FrameDecoder} produced. Throws a `RangeError` naming what is
 * wrong for a malformed one (see {@linkcode frameType}).
 *
 * @example
 * ```ts
 * import { decodeFrame, encodeTicketKey } from "./supervisor_channel.ts";
 * decodeFrame(encodeTicketKey(new Uint8Array(80))).type; // "ticketKeys"
 * ```
 */
export function decodeFrame(bytes: Uint8Array): ChannelMessage {
  if (frameType(bytes) === TICKET_KEYS) return { type: TICKET_KEYS, material: bytes.slice(5) };
  const t = bytes[5]! | bytes[6]! << 8;
  const kind = bytes[4];
  const topic = decoder.decode(bytes.subarray(7, 7 + t));
  const body = bytes.subarray(7 + t);
  return {
    type: WEBSOCKET_PUBLISH,
    topic,
    data: kind === KIND_TEXT ? decoder.decode(body) : body.slice(),
  };
}

/**
 * Splits a byte stream into frames: each frame (length prefix included)
 * is handed on as a copy of its own, whole. A frame body that is empty or
 * longer than {@linkcode CHANNEL_LIMITS}`.maxFrameBytes` throws a
 * `RangeError` (the stream cannot be trusted after that); a partial frame
 * is kept until the rest arrives.
 *
 * @example
 * ```ts
 * import { encodePublish, FrameDecoder } from "./supervisor_channel.ts";
 * const d = new FrameDecoder();
 * const f = encodePublish("t", "x");
 * d.push(f.subarray(0, 3), () => {});
 * d.push(f.subarray(3), (frame) => console.log(frame.byteLength)); // 12
 * ```
 */
export class FrameDecoder {
  /** The frame being filled (its full size is known once the prefix is). */
  #partial: Uint8Array | null = null;
  #filled = 0;
  /** Prefix bytes when fewer than 4 arrived. */
  readonly #head = new Uint8Array(4);
  #headLen = 0;

  /** Bytes held for an incomplete frame. */
  get pending(): number {
    return this.#partial === null ? this.#headLen : this.#filled;
  }

  /** Feed `chunk` (only read during the call); `onFrame` gets each whole frame. */
  push(chunk: Uint8Array, onFrame: (frame: Uint8Array) => void): void {
    let off = 0;
    const end = chunk.byteLength;
    while (off < end) {
      if (this.#partial === null) {
        if (this.#headLen === 0 && end - off >= 4) {
          const size = this.#size(chunk, off);
          if (end - off >= size) {
            const whole = chunk.slice(off, off + size);
            off += size;
            onFrame(whole);
            continue;
          }
          this.#partial = new Uint8Array(size);
          this.#partial.set(chunk.subarray(off, end));
          this.#filled = end - off;
          return;
        }
        while (this.#headLen < 4 && off < end) this.#head[this.#headLen++] = chunk[off++]!;
        if (this.#headLen < 4) return;
        const size = this.#size(this.#head, 0);
        this.#headLen = 0;
        this.#partial = new Uint8Array(size);
        this.#partial.set(this.#head, 0);
        this.#filled = 4;
      }
      const want = this.#partial.byteLength - this.#filled;
      const take = Math.min(want, end - off);
      this.#partial.set(chunk.subarray(off, off + take), this.#filled);
      this.#filled += take;
      off += take;
      if (this.#filled === this.#partial.byteLength) {
        const whole = this.#partial;
        this.#partial = null;
        this.#filled = 0;
        onFrame(whole);
      }
    }
  }

  /** The whole size of the frame whose prefix starts at `off`. */
  #size(bytes: Uint8Array, off: number): number {
    const body = (bytes[off]! | bytes[off + 1]! << 8 | bytes[off + 2]! << 16) +
      bytes[off + 3]! * 0x1000000;
    if (body === 0 || body > CHANNEL_LIMITS.maxFrameBytes) {
      throw new RangeError(
        `Cannot read the channel: a frame of ${body} bytes (at most ${CHANNEL_LIMITS.maxFrameBytes})`,
      );
    }
    return 4 + body;
  }
}

/**
 * A worker process's end of the channel (see the module documentation).
 * Obtained with {@linkcode supervisorChannel}; `serve()` and `publish()`
 * use it by themselves.
 *
 * @example
 * ```ts
 * import { supervisorChannel } from "./supervisor_channel.ts";
 * const ch = supervisorChannel(); // null when not supervised
 * const stop = ch?.onPublish((topic, data) => console.log(topic, data));
 * ch?.publish("room", "hello from another process");
 * stop?.();
 * ```
 */
export class SupervisorChannel {
  readonly #fd: number;
  readonly #decoder = new FrameDecoder();
  #conn: Connection | null = null;
  #closed = false;
  /** The ticket keys, oldest first (copies). */
  readonly #keys: Uint8Array[] = [];
  readonly #keyListeners = new Set<(material: Uint8Array) => void>();
  readonly #publishListeners = new Set<(topic: string, data: string | Uint8Array) => void>();
  #dropping = 0;

  private constructor(fd: number) {
    this.#fd = fd;
    // What the supervisor wrote before this process started (the keys) is
    // read now, so that the first server starts with them.
    const buf = new Uint8Array(16384);
    for (;;) {
      const n = read(fd, buf);
      if (n === -EAGAIN) break;
      if (n <= 0) {
        this.#closed = true;
        break;
      }
      this.#decoder.push(buf.subarray(0, n), (f) => this.#frame(f));
    }
  }

  /** @internal Made by {@linkcode supervisorChannel}. */
  static open(fd: number): SupervisorChannel {
    return new SupervisorChannel(fd);
  }

  /** The ticket keys the supervisor handed out, oldest first (copies; the newest encrypts). */
  ticketKeys(): Uint8Array[] {
    return this.#keys.map((k) => k.slice());
  }

  /** Call `listener` with each new ticket key; returns a function that stops it. */
  onTicketKey(listener: (material: Uint8Array) => void): () => void {
    this.#keyListeners.add(listener);
    return () => this.#keyListeners.delete(listener);
  }

  /** Call `listener` with each publish of another worker; returns a function that stops it. */
  onPublish(listener: (topic: string, data: string | Uint8Array) => void): () => void {
    this.#publishListeners.add(listener);
    this.attach();
    return () => this.#publishListeners.delete(listener);
  }

  /**
   * Send a publish to the other workers (through the supervisor). False
   * when it was dropped: the channel is closed, or the supervisor has not
   * read the last `queueBytes` (logged once per episode).
   */
  publish(topic: string, data: string | Uint8Array): boolean {
    this.attach();
    const conn = this.#conn;
    if (conn === null) return false;
    if (conn.writableLength > CHANNEL_LIMITS.queueBytes) {
      if (this.#dropping++ === 0) {
        console.error(
          `ffinet http: Cannot relay publishes to the other workers: the supervisor has not read ` +
            `${conn.writableLength} bytes (limit ${CHANNEL_LIMITS.queueBytes}); dropping them until it does`,
        );
      }
      return false;
    }
    conn.write(encodePublish(topic, data));
    return true;
  }

  /**
   * Read the channel on this thread's reactor from now on (it does not keep
   * the process alive). Called once a server runs, so that the server's
   * reactor settings come first.
   */
  attach(): void {
    if (this.#conn !== null || this.#closed) return;
    const reactor = acquireReactor(undefined, this);
    refReactor(this, false);
    const conn = new Connection(reactor, new Socket(this.#fd));
    startReactor();
    this.#conn = conn;
    conn.onData = (data) => {
      try {
        this.#decoder.push(data, (f) => this.#frame(f));
      } catch (e) {
        console.error(`ffinet http: ${(e as Error).message}; closing the supervisor channel`);
        conn.close();
      }
    };
    conn.onEnd = () => conn.close();
    conn.onDrain = () => {
      if (this.#dropping > 0) {
        console.error(
          `ffinet http: the supervisor reads the channel again; ${this.#dropping} publish(es) were dropped`,
        );
        this.#dropping = 0;
      }
    };
    conn.onClose = () => {
      this.#conn = null;
      this.#closed = true;
    };
  }

  #frame(bytes: Uint8Array): void {
    const m = decodeFrame(bytes);
    if (m.type === TICKET_KEYS) {
      this.#keys.push(m.material);
      if (this.#keys.length > CHANNEL_LIMITS.ticketKeysKept) this.#keys.shift()!.fill(0);
      for (const l of this.#keyListeners) this.#call(() => l(m.material.slice()));
    } else {
      for (const l of this.#publishListeners) this.#call(() => l(m.topic, m.data));
    }
  }

  #call(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      console.error("ffinet http: a supervisor channel listener threw:", e);
    }
  }
}

let channel: SupervisorChannel | null | undefined;

/**
 * This process's end of the supervisor channel: null outside a supervised
 * worker (no {@linkcode CHANNEL_FD_ENV}), in a Worker thread, or when the
 * fd is not usable (said once on stderr). The variable is removed from the
 * environment and the fd made close-on-exec, so the app's own children
 * inherit neither.
 *
 * @example
 * ```ts
 * import { supervisorChannel } from "./supervisor_channel.ts";
 * const ch = supervisorChannel();
 * console.log(ch === null ? "not supervised" : `${ch.ticketKeys().length} ticket key(s)`);
 * ```
 */
export function supervisorChannel(): SupervisorChannel | null {
  if (channel !== undefined) return channel;
  channel = null;
  // deno-lint-ignore no-explicit-any
  if (isServeWorker() || typeof (globalThis as any).WorkerGlobalScope !== "undefined") {
    return channel;
  }
  const value = envVar(CHANNEL_FD_ENV);
  if (value === undefined) return channel;
  envDelete(CHANNEL_FD_ENV);
  if (!/^[0-9]{1,7}$/.test(value) || !isOpen(Number(value))) {
    console.error(`ffinet http: ignoring ${CHANNEL_FD_ENV}="${value}": not an open fd`);
    return channel;
  }
  const fd = Number(value);
  try {
    setCloexec(fd, true);
    setNonBlocking(fd, true);
    channel = SupervisorChannel.open(fd);
  } catch (e) {
    console.error(`ffinet http: Cannot use the supervisor channel: ${(e as Error).message}`);
  }
  return channel;
}
