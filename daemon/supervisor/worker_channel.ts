/**
 * The supervisor's end of the channel to each worker process (the worker's
 * end and the framing are in `http/supervisor_channel.ts`): a Unix stream
 * socket pair per worker, its other end passed to the worker as an fd
 * named by `FFINET_CHANNEL_FD`.
 *
 * - **Ticket keys.** The {@linkcode ChannelHub} makes a session ticket key
 *   (80 random bytes, in memory only) and a new one every
 *   `ticketKeyRotationMs`, and pushes each to every worker. A new channel
 *   gets the kept keys (oldest first) in its socket before the worker is
 *   spawned, so the worker's first handshake uses them. Every worker then
 *   encrypts tickets with the same newest key and decrypts with the same
 *   last three: a client resumes on whichever worker accepts it.
 * - **Publishes.** A WebSocket publish frame read from one worker is
 *   written, as the same bytes, to every other worker, in the order read
 *   (so each publisher's messages arrive in order).
 * - **Bounds.** A worker that does not read its channel gets publishes
 *   queued up to `queueBytes` (beyond what the kernel buffers); past that,
 *   publishes to it are dropped, counted and logged (once when it starts,
 *   once with the count when the worker reads again). Ticket keys are
 *   never dropped. A frame a worker sends that cannot be decoded closes
 *   that worker's channel, with the reason logged.
 *
 * @example
 * ```ts
 * import { ChannelHub } from "./worker_channel.ts";
 * import { Reactor } from "@ffinet/ffinet/reactor";
 * await using reactor = new Reactor();
 * const log = { info: console.log, warning: console.warn, error: console.error };
 * const hub = new ChannelHub(reactor, log, { ticketKeyRotationMs: 0 });
 * const ch = hub.open();
 * // spawn the worker with ch.childFd among its fds, then:
 * ch.releaseChild();
 * hub.close();
 * ```
 *
 * @module
 */
import { Socket } from "../../ffi/socket.ts";
import { integerOption } from "../../ffi/validate.ts";
import { Connection } from "../../reactor/connection.ts";
import type { Reactor } from "../../reactor/reactor.ts";
import {
  CHANNEL_LIMITS,
  encodeTicketKey,
  FrameDecoder,
  frameType,
  TICKET_KEYS,
} from "../../http/supervisor_channel.ts";
import type { SupervisorLogger } from "./types.ts";

export { CHANNEL_FD_ENV } from "../../http/supervisor_channel.ts";

/**
 * Options of a {@linkcode ChannelHub}.
 *
 * @example
 * ```ts
 * import type { ChannelHubOptions } from "./worker_channel.ts";
 * const options: ChannelHubOptions = { ticketKeyRotationMs: 3_600_000, queueBytes: 1 << 20 };
 * ```
 */
export interface ChannelHubOptions {
  /** A new ticket key this often (ms); 0 never rotates. */
  ticketKeyRotationMs: number;
  /** Bytes queued for a worker before publishes to it are dropped (default `CHANNEL_LIMITS.queueBytes`). */
  queueBytes?: number;
}

/**
 * What the channels carried: publishes relayed and dropped.
 *
 * @example
 * ```ts
 * import type { ChannelCounters } from "./worker_channel.ts";
 * const c: ChannelCounters = { published: 1, relayed: 1, dropped: 0 };
 * ```
 */
export interface ChannelCounters {
  /** Publish frames read from workers. */
  published: number;
  /** Copies written to other workers. */
  relayed: number;
  /** Copies dropped because a worker did not read its channel. */
  dropped: number;
}

/**
 * One worker's channel: the supervisor's end on the reactor, and the
 * worker's end until it was spawned.
 *
 * @example
 * ```ts
 * import type { ChannelHub } from "./worker_channel.ts";
 * function channelFor(hub: ChannelHub): number {
 *   const ch = hub.open(); // a WorkerChannel
 *   ch.name = "worker 0";
 *   return ch.childFd; // spawn with it, then ch.releaseChild()
 * }
 * ```
 */
export class WorkerChannel {
  /** The worker's end: give it to the spawned process, then {@linkcode WorkerChannel.releaseChild}. */
  readonly childFd: number;
  /** How log lines name the worker (`worker 0 (pid 123)`). */
  name = "worker";
  readonly #child: Socket;
  readonly #conn: Connection;
  readonly #hub: ChannelHub;
  readonly #decoder = new FrameDecoder();
  #dropping = 0;
  #open = true;

  /** @internal Made by {@linkcode ChannelHub.open}. */
  constructor(hub: ChannelHub, reactor: Reactor, keys: readonly Uint8Array[]) {
    this.#hub = hub;
    const [mine, child] = Socket.pair("stream");
    this.#child = child;
    this.childFd = child.fd;
    // Past the high-water mark `write` asks for onDrain (the end of a drop
    // episode); past the queue limit `send` refuses publishes.
    this.#conn = new Connection(reactor, mine, {
      highWaterMark: Math.min(64 * 1024, hub.queueBytes),
    });
    for (const k of keys) this.#conn.write(encodeTicketKey(k));
    this.#conn.onData = (data) => {
      try {
        this.#decoder.push(data, (frame) => this.#hub.fromWorker(this, frame));
      } catch (e) {
        this.#hub.logger.warning(
          `supervisor: ${this.name}: ${(e as Error).message}; closing its channel`,
        );
        this.close();
      }
    };
    this.#conn.onEnd = () => this.close();
    this.#conn.onDrain = () => {
      if (this.#dropping === 0) return;
      this.#hub.logger.warning(
        `supervisor: ${this.name} reads its channel again; ${this.#dropping} published message(s) to it were dropped`,
      );
      this.#dropping = 0;
    };
    this.#conn.onClose = () => {
      this.#open = false;
      this.#hub.forget(this);
    };
  }

  /** Bytes waiting to be written to the worker. */
  get queuedBytes(): number {
    return this.#open ? this.#conn.writableLength : 0;
  }

  /** Whether it is still open. */
  get open(): boolean {
    return this.#open;
  }

  /** Close the worker's end in this process (the worker holds its copy). Idempotent. */
  releaseChild(): void {
    if (!this.#child.closed) this.#child.close();
  }

  /**
   * Write a frame: always for a ticket key; for a publish only while at
   * most `limit` bytes are queued (else false: dropped, logged once).
   */
  send(frame: Uint8Array, droppable: boolean, limit: number): boolean {
    if (!this.#open) return false;
    if (droppable && this.#conn.writableLength > limit) {
      if (this.#dropping++ === 0) {
        this.#hub.logger.warning(
          `supervisor: ${this.name} does not read its channel (${this.#conn.writableLength} bytes ` +
            `queued, limit ${limit}): dropping published messages to it until it does`,
        );
      }
      return false;
    }
    this.#conn.write(frame);
    return true;
  }

  /** Close both ends held here. Idempotent. */
  close(): void {
    this.releaseChild();
    if (this.#open) this.#conn.close();
  }
}

/**
 * Every worker's channel, the ticket keys and their rotation, and the
 * publish relay. See the module documentation.
 *
 * @example
 * ```ts
 * import type { ChannelHub } from "./worker_channel.ts";
 * function report(hub: ChannelHub): string {
 *   hub.rotate(); // a new ticket key for every worker now
 *   return `${hub.size} channel(s), ${hub.counters.dropped} publish(es) dropped`;
 * }
 * ```
 */
export class ChannelHub {
  /** Where drops and protocol errors are logged. */
  readonly logger: SupervisorLogger;
  /** Publishes relayed and dropped. */
  readonly counters: ChannelCounters = { published: 0, relayed: 0, dropped: 0 };
  readonly #reactor: Reactor;
  readonly #channels = new Set<WorkerChannel>();
  readonly #keys: Uint8Array[] = [];
  readonly #queueBytes: number;
  #rotation: ReturnType<typeof setInterval> | undefined;

  /** A hub with one fresh ticket key, rotating it every `ticketKeyRotationMs`. */
  constructor(reactor: Reactor, logger: SupervisorLogger, options: ChannelHubOptions) {
    this.#reactor = reactor;
    this.logger = logger;
    this.#queueBytes = integerOption(
      "create supervisor",
      "channelQueueBytes",
      options.queueBytes,
      CHANNEL_LIMITS.queueBytes,
      1024,
      1024 * 1024 * 1024,
    );
    this.#addKey();
    if (options.ticketKeyRotationMs > 0) {
      this.#rotation = setInterval(() => this.rotate(), options.ticketKeyRotationMs);
    }
  }

  /** Bytes queued for a worker before publishes to it are dropped. */
  get queueBytes(): number {
    return this.#queueBytes;
  }

  /** The open channels. */
  get size(): number {
    return this.#channels.size;
  }

  /** A channel for a worker about to be spawned, holding the current keys. */
  open(): WorkerChannel {
    const ch = new WorkerChannel(this, this.#reactor, this.#keys);
    this.#channels.add(ch);
    return ch;
  }

  /** Make a new ticket key and push it to every worker (the last three stay valid there). */
  rotate(): void {
    const key = this.#addKey();
    const frame = encodeTicketKey(key);
    for (const ch of this.#channels) ch.send(frame, false, this.#queueBytes);
    frame.fill(0);
  }

  #addKey(): Uint8Array {
    const key = crypto.getRandomValues(new Uint8Array(CHANNEL_LIMITS.ticketKeyBytes));
    this.#keys.push(key);
    if (this.#keys.length > CHANNEL_LIMITS.ticketKeysKept) this.#keys.shift()!.fill(0);
    return key;
  }

  /** @internal A whole frame read from `from`'s worker. */
  fromWorker(from: WorkerChannel, frame: Uint8Array): void {
    // Checked, not decoded: the same bytes go on. A malformed frame throws
    // and the channel is closed.
    if (frameType(frame) === TICKET_KEYS) {
      throw new RangeError(
        "Cannot take a ticket key from a worker: only the supervisor makes them",
      );
    }
    this.counters.published++;
    for (const ch of this.#channels) {
      if (ch === from) continue;
      if (ch.send(frame, true, this.#queueBytes)) this.counters.relayed++;
      else this.counters.dropped++;
    }
  }

  /** @internal A channel closed. */
  forget(ch: WorkerChannel): void {
    this.#channels.delete(ch);
  }

  /** Close every channel, stop rotating and forget the keys. Idempotent. */
  close(): void {
    clearInterval(this.#rotation);
    this.#rotation = undefined;
    for (const ch of [...this.#channels]) ch.close();
    this.#channels.clear();
    for (const k of this.#keys) k.fill(0);
    this.#keys.length = 0;
  }
}
