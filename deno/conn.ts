/**
 * {@linkcode FfiConn}: a connection with the shape of `Deno.Conn`, on an
 * ffinet `Connection`: reads, writes with backpressure, streams, half-close
 * and the connection's lifetime.
 *
 * @module
 */
import type { Connection } from "../reactor/connection.ts";
import type { Timer } from "../reactor/timer_queue.ts";
import { toDenoAddr } from "./_addr.ts";
import { closedError, toDenoError } from "./_errors.ts";
import {
  DEFAULT_CLOSE_TIMEOUT_MS,
  DEFAULT_READ_LIMIT,
  type FfiAddr,
  type FfiConnOptions,
  validateAdapterOptions,
} from "./options.ts";
import type { Lease } from "./shared_reactor.ts";

interface PendingRead {
  p: Uint8Array;
  resolve: (n: number | null) => void;
  reject: (e: Error) => void;
}

interface PendingWrite {
  resolve: () => void;
  reject: (e: Error) => void;
}

/**
 * What an {@linkcode FfiConn} drives: a reactor `Connection`, or anything
 * with the same contract (a `TlsConnection`). The callbacks' second
 * parameters are not used.
 */
export type StreamConnection =
  & Pick<
    Connection,
    | "reactor"
    | "socket"
    | "localAddress"
    | "remoteAddress"
    | "write"
    | "pause"
    | "resume"
    | "end"
    | "close"
    | "abort"
  >
  & {
    readonly state: string;
    onData: ((data: Uint8Array, conn: never) => void) | undefined;
    onEnd: ((conn: never) => void) | undefined;
    onDrain: ((conn: never) => void) | undefined;
    onClose: ((conn: never, error?: Error) => void) | undefined;
  };

/** Lets the listener and `connect` hand a connection its reactor lease. */
let setLease: (conn: FfiConn<FfiAddr, StreamConnection>, lease: Lease) => void;

/**
 * Wrap `connection` with `wrap` and give the result `lease`, the reactor
 * lease its `ref()`/`unref()` act on (internal to the adapters). When
 * wrapping throws, the connection is aborted, the lease released, and the
 * error thrown as Deno's class.
 */
export function wrapLeased<
  C extends StreamConnection,
  F extends FfiConn<FfiAddr, StreamConnection>,
>(connection: C, lease: Lease | undefined, wrap: (connection: C) => F): F {
  let ffi: F;
  try {
    ffi = wrap(connection);
  } catch (e) {
    connection.abort();
    lease?.release();
    throw toDenoError(e);
  }
  if (lease !== undefined) setLease(ffi, lease);
  return ffi;
}

/** What {@linkcode detachConnection} hands over. */
export interface Detached<C extends StreamConnection> {
  connection: C;
  lease: Lease | undefined;
  /** The adapter options to wrap the connection with again. */
  options: FfiConnOptions;
}

let detach: (conn: FfiConn<FfiAddr, StreamConnection>, call: string) => Detached<StreamConnection>;

/**
 * Take the connection out of `conn` (for `startTls`): `conn` behaves as
 * closed from now on, without closing the connection, whose handlers are
 * the caller's to set. Refused (nothing changes) while a read or write is
 * pending, once `readable` or `writable` took over, after EOF or a
 * half-close, and when received bytes were not read (they would be lost).
 * Internal to the adapters.
 */
export function detachConnection<C extends StreamConnection>(
  conn: FfiConn<FfiAddr, C>,
  call: string,
): Detached<C> {
  return detach(conn, call) as Detached<C>;
}

/**
 * A stream connection with the shape of `Deno.Conn` (and `Deno.TcpConn`
 * for TCP), on an ffinet `Connection`. Made by `connect` and
 * `FfiListener.accept`.
 *
 * Its lifetime: `close()` flushes what is queued, then closes. Without
 * `allowHalfOpen`, a connection whose peer has ended and whose input you
 * have read to the end (`read()` gave `null`, or `readable` ended) closes
 * itself once no write of yours is pending, as Node's sockets do; a later
 * `write()` rejects with `Deno.errors.BadResource` and `close()` does
 * nothing. `closeWrite()` (or closing `writable`) half-closes: reading goes
 * on, and the connection closes at the peer's EOF.
 *
 * @example
 * ```ts
 * import { connect, listen } from "@ffinet/ffinet/deno";
 *
 * const listener = listen({ hostname: "127.0.0.1", port: 0 });
 * const conn = await connect({ hostname: "127.0.0.1", port: listener.addr.port });
 * await conn.write(new TextEncoder().encode("ping"));
 * const server = await listener.accept();
 * const buf = new Uint8Array(16);
 * const n = await server.read(buf); // 4
 * console.log(n);
 * conn.close();
 * server.close();
 * listener.close();
 * ```
 */
export class FfiConn<A extends FfiAddr = FfiAddr, C extends StreamConnection = Connection>
  implements Deno.Conn<A> {
  /** The local address. */
  readonly localAddr: A;
  /** The peer's address. */
  readonly remoteAddr: A;
  readonly #conn: C;
  readonly #onRelease: (() => void) | undefined;
  readonly #readLimit: number;
  readonly #closeTimeoutMs: number;
  readonly #isTcp: boolean;
  readonly #allowHalfOpen: boolean;
  #lease: Lease | undefined;
  #chunks: Uint8Array<ArrayBuffer>[] = [];
  #head = 0;
  #headOffset = 0;
  #buffered = 0;
  #readers: PendingRead[] = [];
  #writers: PendingWrite[] = [];
  #readEnded = false;
  #connClosed = false;
  #userClosed = false;
  #error: Error | undefined;
  #closeTimer: Timer | undefined;
  #readable: ReadableStream<Uint8Array<ArrayBuffer>> | undefined;
  #controller: ReadableByteStreamController | undefined;
  #streamDone = false;
  #writable: WritableStream<Uint8Array> | undefined;
  #writableClosed = false;
  /** The program asked for a half-close (`closeWrite()` or `writable` closed). */
  #writeEndAsked = false;
  /** The connection closed itself after the peer's EOF (no `close()` was called). */
  #autoClosed = false;
  #autoCloseTimer: ReturnType<typeof setTimeout> | undefined;

  static {
    setLease = (conn, lease) => {
      if (conn.#connClosed) lease.release();
      else conn.#lease = lease;
    };
    detach = (conn, call) => {
      if (conn.#userClosed || conn.#connClosed || conn.#autoClosed) {
        throw closedError(call, "connection");
      }
      if (conn.#error !== undefined) throw conn.#error;
      if (conn.#readable !== undefined || conn.#writable !== undefined) {
        throw new TypeError(`Cannot ${call}: the connection's streams are in use`);
      }
      if (conn.#readers.length > 0 || conn.#writers.length > 0) {
        throw new TypeError(`Cannot ${call}: a read or write is pending`);
      }
      if (conn.#readEnded || conn.#writeEndAsked || conn.#conn.state !== "open") {
        throw new Deno.errors.BadResource(`Cannot ${call}: the connection is half-closed`);
      }
      if (conn.#buffered > 0) {
        throw new Deno.errors.InvalidData(
          `Cannot ${call}: ${conn.#buffered} bytes were received and not read`,
        );
      }
      conn.#userClosed = true;
      conn.#connClosed = true;
      const connection = conn.#conn;
      connection.onData = undefined;
      connection.onEnd = undefined;
      connection.onDrain = undefined;
      connection.onClose = undefined;
      const lease = conn.#lease;
      conn.#lease = undefined;
      const options: FfiConnOptions = {
        readBufferLimit: conn.#readLimit,
        closeTimeoutMs: conn.#closeTimeoutMs,
        allowHalfOpen: conn.#allowHalfOpen,
      };
      if (conn.#onRelease !== undefined) options.onRelease = conn.#onRelease;
      return { connection, lease, options };
    };
  }

  /**
   * Wrap an open {@linkcode Connection} made with `allowHalfOpen: true`
   * (the adapter takes over its callbacks). {@linkcode connect} and
   * {@linkcode listen} do this for you.
   *
   * @example
   * ```ts
   * import { connect, Listener, Reactor } from "@ffinet/ffinet/reactor";
   * import { FfiConn } from "@ffinet/ffinet/deno";
   *
   * const reactor = new Reactor();
   * const running = reactor.run();
   * const listener = Listener.listen(reactor, { host: "127.0.0.1", port: 0 }, (c) => c.close());
   * const port = (listener.address() as { port: number }).port;
   * const conn = new FfiConn(await connect(reactor, { port }, { allowHalfOpen: true }));
   * console.log(await conn.read(new Uint8Array(8))); // null: the server closed
   * conn.close();
   * listener.close();
   * reactor.stop();
   * await running;
   * reactor.close();
   * ```
   */
  constructor(connection: C, options: FfiConnOptions = {}) {
    validateAdapterOptions("wrap the connection", options);
    this.#conn = connection;
    this.#allowHalfOpen = options.allowHalfOpen ?? false;
    this.#onRelease = options.onRelease;
    this.#readLimit = options.readBufferLimit ?? DEFAULT_READ_LIMIT;
    this.#closeTimeoutMs = options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    const local = connection.localAddress();
    this.#isTcp = local.family !== "unix";
    this.localAddr = toDenoAddr(local) as A;
    let remote: FfiAddr;
    try {
      remote = toDenoAddr(connection.remoteAddress());
    } catch {
      // The peer may already have gone (ENOTCONN): keep an empty address.
      remote = this.#isTcp
        ? { transport: "tcp", hostname: "", port: 0 }
        : { transport: "unix", path: "" };
    }
    this.remoteAddr = remote as A;
    connection.onData = (data) => this.#onData(data);
    connection.onEnd = () => this.#onEnd();
    connection.onDrain = () => this.#onDrain();
    connection.onClose = (_c, error) => this.#onClose(error);
    if (connection.state === "closed") this.#onClose(undefined);
  }

  /** The underlying ffinet connection (do not replace its callbacks). */
  get connection(): C {
    return this.#conn;
  }

  /** Bytes received and not yet read. */
  get bufferedLength(): number {
    return this.#buffered;
  }

  #onData(data: Uint8Array): void {
    const controller = this.#controller;
    if (controller !== undefined) {
      if (this.#streamDone) return;
      controller.enqueue(data.slice());
      if ((controller.desiredSize ?? 0) <= 0) this.#conn.pause();
      return;
    }
    let off = 0;
    const len = data.byteLength;
    while (off < len && this.#readers.length > 0) {
      const reader = this.#readers.shift()!;
      const n = Math.min(reader.p.byteLength, len - off);
      reader.p.set(data.subarray(off, off + n));
      off += n;
      reader.resolve(n);
    }
    if (off < len) {
      this.#chunks.push(data.slice(off));
      this.#buffered += len - off;
      if (this.#buffered >= this.#readLimit) this.#conn.pause();
    }
  }

  #onEnd(): void {
    this.#readEnded = true;
    for (const reader of this.#readers.splice(0)) reader.resolve(null);
    this.#closeStream();
    if (this.#controller !== undefined || this.#buffered === 0) this.#scheduleAutoClose();
  }

  #onDrain(): void {
    for (const writer of this.#writers.splice(0)) writer.resolve();
    if (this.#readEnded && this.#buffered === 0) this.#scheduleAutoClose();
  }

  /**
   * After the peer's EOF, once everything received has been taken: close
   * the connection unless the program may still write. Checked in a
   * macrotask, so that a write issued right after `read()` gave `null` is
   * still sent (queued output is flushed before the close).
   */
  #scheduleAutoClose(): void {
    if (this.#allowHalfOpen || this.#autoCloseTimer !== undefined) return;
    if (this.#userClosed || this.#connClosed || this.#writeEndAsked) return;
    this.#autoCloseTimer = setTimeout(() => {
      this.#autoCloseTimer = undefined;
      this.#autoClose();
    }, 0);
  }

  #autoClose(): void {
    if (this.#userClosed || this.#connClosed || this.#writeEndAsked || this.#autoClosed) return;
    // A write still waiting for a drain may be followed by more: look again after the drain.
    if (this.#writers.length > 0) return;
    // `writable` in use (a pipeTo, a writer) closes itself when its source ends: wait for it.
    if (this.#writable !== undefined && this.#writable.locked && !this.#writableClosed) return;
    this.#autoClosed = true;
    this.#conn.close();
    this.#armCloseTimer();
  }

  /** Bound a graceful close: reset the connection after `closeTimeoutMs`. */
  #armCloseTimer(): void {
    if (this.#connClosed || this.#closeTimeoutMs === 0 || this.#closeTimer !== undefined) return;
    this.#closeTimer = this.#conn.reactor.setTimeout(() => {
      this.#closeTimer = undefined;
      this.#conn.abort(
        new Error(`Cannot close gracefully: output not flushed in ${this.#closeTimeoutMs} ms`),
      );
    }, this.#closeTimeoutMs);
  }

  #onClose(error: Error | undefined): void {
    if (this.#connClosed) return;
    this.#connClosed = true;
    clearTimeout(this.#autoCloseTimer);
    this.#autoCloseTimer = undefined;
    this.#closeTimer?.cancel();
    this.#closeTimer = undefined;
    if (error !== undefined) this.#error ??= toDenoError(error);
    const failure = this.#error;
    for (const reader of this.#readers.splice(0)) {
      if (failure !== undefined) reader.reject(failure);
      else reader.resolve(null);
    }
    for (const writer of this.#writers.splice(0)) {
      // Closed without error: the queue was flushed.
      if (failure !== undefined) writer.reject(failure);
      else writer.resolve();
    }
    if (failure !== undefined && this.#controller !== undefined && !this.#streamDone) {
      this.#streamDone = true;
      try {
        this.#controller.error(failure);
      } catch { /* already errored */ }
    } else {
      this.#closeStream();
    }
    this.#onRelease?.();
    this.#lease?.release();
  }

  #closeStream(): void {
    if (this.#controller === undefined || this.#streamDone) return;
    this.#streamDone = true;
    try {
      this.#controller.close();
      // A pending BYOB read is only completed (done) by responding with 0.
      this.#controller.byobRequest?.respond(0);
    } catch { /* cancelled or errored already */ }
  }

  #take(p: Uint8Array): number {
    let n = 0;
    while (n < p.byteLength && this.#head < this.#chunks.length) {
      const chunk = this.#chunks[this.#head]!;
      const take = Math.min(chunk.byteLength - this.#headOffset, p.byteLength - n);
      p.set(chunk.subarray(this.#headOffset, this.#headOffset + take), n);
      n += take;
      this.#headOffset += take;
      if (this.#headOffset === chunk.byteLength) {
        this.#head++;
        this.#headOffset = 0;
      }
    }
    this.#buffered -= n;
    if (this.#head === this.#chunks.length) {
      this.#chunks = [];
      this.#head = 0;
    }
    if (this.#buffered < this.#readLimit) this.#resumeReading();
    if (this.#buffered === 0 && this.#readEnded) this.#scheduleAutoClose();
    return n;
  }

  #resumeReading(): void {
    if (!this.#connClosed && !this.#readEnded) this.#conn.resume();
  }

  /**
   * Read into `p`: resolves to the bytes read, or `null` at EOF. Data that
   * arrives while no read is pending is kept (up to `readBufferLimit`, then
   * the socket is not read until it is taken).
   *
   * @example
   * ```ts
   * import { connect } from "@ffinet/ffinet/deno";
   *
   * const conn = await connect({ hostname: "127.0.0.1", port: 8080 });
   * const buf = new Uint8Array(4096);
   * for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
   *   console.log(buf.subarray(0, n));
   * }
   * conn.close();
   * ```
   */
  read(p: Uint8Array): Promise<number | null> {
    if (this.#userClosed) return Promise.reject(closedError("read", "connection"));
    if (this.#readable !== undefined) {
      return Promise.reject(
        new TypeError("Cannot read: the connection's readable stream has taken its input"),
      );
    }
    if (p.byteLength === 0) return Promise.resolve(0);
    if (this.#buffered > 0) return Promise.resolve(this.#take(p));
    if (this.#error !== undefined) return Promise.reject(this.#error);
    if (this.#readEnded || this.#connClosed) return Promise.resolve(null);
    const { promise, resolve, reject } = Promise.withResolvers<number | null>();
    this.#readers.push({ p, resolve, reject });
    this.#resumeReading();
    return promise;
  }

  /**
   * Send all of `p`; resolves to `p.byteLength` once it is queued below the
   * high-water mark (at once, usually), or when the queue drains.
   *
   * @example
   * ```ts
   * import { connect } from "@ffinet/ffinet/deno";
   *
   * const conn = await connect({ hostname: "127.0.0.1", port: 8080 });
   * await conn.write(new TextEncoder().encode("hello"));
   * conn.close();
   * ```
   */
  write(p: Uint8Array): Promise<number> {
    if (this.#userClosed) return Promise.reject(closedError("write", "connection"));
    if (this.#autoClosed) {
      return Promise.reject(
        new Deno.errors.BadResource(
          "Cannot write: the connection closed itself after the peer's EOF " +
            "(pass allowHalfOpen: true to write after it)",
        ),
      );
    }
    if (this.#error !== undefined) return Promise.reject(this.#error);
    if (this.#conn.state !== "open") {
      return Promise.reject(
        new Deno.errors.BrokenPipe("Cannot write: the connection's write side is closed"),
      );
    }
    const len = p.byteLength;
    let ok: boolean;
    try {
      ok = this.#conn.write(p);
    } catch (e) {
      return Promise.reject(toDenoError(e));
    }
    if (ok) return Promise.resolve(len);
    if (this.#connClosed) {
      return Promise.reject(
        this.#error ?? new Deno.errors.BrokenPipe("Cannot write: the connection closed"),
      );
    }
    const { promise, resolve, reject } = Promise.withResolvers<number>();
    this.#writers.push({ resolve: () => resolve(len), reject });
    return promise;
  }

  /**
   * Half-close: `shutdown(SHUT_WR)` once queued output is sent. Reading goes
   * on; the connection closes by itself after the peer's EOF.
   *
   * @example
   * ```ts
   * import { connect } from "@ffinet/ffinet/deno";
   *
   * const conn = await connect({ hostname: "127.0.0.1", port: 8080 });
   * await conn.write(new TextEncoder().encode("the whole request"));
   * await conn.closeWrite(); // the server reads EOF and can still answer
   * const reply = await new Response(conn.readable).text();
   * console.log(reply);
   * ```
   */
  closeWrite(): Promise<void> {
    if (this.#userClosed) return Promise.reject(closedError("close the write side", "connection"));
    if (this.#error !== undefined) return Promise.reject(this.#error);
    this.#writeEndAsked = true;
    this.#conn.end();
    return Promise.resolve();
  }

  /**
   * Close: pending reads reject (`Deno.errors.Interrupted`), unread input is
   * dropped, queued output is flushed (for at most `closeTimeoutMs`), then
   * the socket is closed. A second call throws `Deno.errors.BadResource`
   * (not after the connection closed itself at the peer's EOF: then it does
   * nothing).
   *
   * @example
   * ```ts
   * import { connect } from "@ffinet/ffinet/deno";
   *
   * const conn = await connect({ hostname: "127.0.0.1", port: 8080 });
   * conn.close();
   * ```
   */
  close(): void {
    if (this.#userClosed) throw closedError("close", "connection");
    this.#userClosed = true;
    const interrupted = new Deno.errors.Interrupted("Cannot read: the connection was closed");
    for (const reader of this.#readers.splice(0)) reader.reject(interrupted);
    this.#chunks = [];
    this.#head = 0;
    this.#headOffset = 0;
    this.#buffered = 0;
    this.#closeStream();
    clearTimeout(this.#autoCloseTimer);
    this.#autoCloseTimer = undefined;
    if (this.#connClosed) return;
    this.#conn.close();
    this.#armCloseTimer();
  }

  /**
   * The incoming bytes as a byte stream (created on first use; `read()` may
   * not be used after). When its queue holds `readBufferLimit` bytes the
   * socket is not read until the consumer pulls. EOF closes the stream (and
   * then the connection, unless `allowHalfOpen` or a write is pending);
   * cancelling it closes the connection.
   *
   * @example
   * ```ts
   * import { connect } from "@ffinet/ffinet/deno";
   *
   * const conn = await connect({ hostname: "127.0.0.1", port: 8080 });
   * for await (const chunk of conn.readable) console.log(chunk.byteLength);
   * ```
   */
  get readable(): ReadableStream<Uint8Array<ArrayBuffer>> {
    this.#readable ??= this.#makeReadable();
    return this.#readable;
  }

  #makeReadable(): ReadableStream<Uint8Array<ArrayBuffer>> {
    return new ReadableStream({
      type: "bytes",
      start: (controller) => {
        this.#controller = controller;
        const err = new TypeError("Cannot read: the connection's readable stream took its input");
        for (const reader of this.#readers.splice(0)) reader.reject(err);
        for (let i = this.#head; i < this.#chunks.length; i++) {
          const chunk = this.#chunks[i]!;
          controller.enqueue(i === this.#head ? chunk.slice(this.#headOffset) : chunk);
        }
        this.#chunks = [];
        this.#head = 0;
        this.#headOffset = 0;
        this.#buffered = 0;
        if (this.#error !== undefined) {
          this.#streamDone = true;
          controller.error(this.#error);
        } else if (this.#readEnded || this.#connClosed || this.#userClosed) {
          this.#closeStream();
          if (this.#readEnded) this.#scheduleAutoClose();
        } else if ((controller.desiredSize ?? 0) <= 0) {
          this.#conn.pause();
        } else {
          this.#resumeReading();
        }
      },
      pull: () => this.#resumeReading(),
      cancel: () => {
        this.#streamDone = true;
        if (!this.#userClosed) this.close();
      },
    }, { highWaterMark: this.#readLimit });
  }

  /**
   * A stream that writes to the connection with backpressure: each write
   * resolves as {@linkcode FfiConn.write} does. Closing it half-closes the
   * connection (`closeWrite()`); aborting it resets the connection.
   *
   * @example
   * ```ts
   * import { listen } from "@ffinet/ffinet/deno";
   *
   * const listener = listen({ hostname: "127.0.0.1", port: 8080 });
   * for await (const conn of listener) conn.readable.pipeTo(conn.writable); // echo
   * ```
   */
  get writable(): WritableStream<Uint8Array> {
    this.#writable ??= new WritableStream<Uint8Array>({
      write: async (chunk) => {
        if (!(chunk instanceof Uint8Array)) {
          throw new TypeError("Cannot write: the chunk is not a Uint8Array");
        }
        await this.write(chunk);
      },
      close: () => {
        this.#writableClosed = true;
        if (this.#userClosed || this.#connClosed) return;
        this.#writeEndAsked = true;
        this.#conn.end();
      },
      abort: (reason) => {
        if (this.#connClosed) return;
        this.#conn.abort(reason instanceof Error ? reason : new Error(String(reason)));
      },
    });
    return this.#writable;
  }

  /**
   * `TCP_NODELAY` (default true); does nothing on a Unix connection.
   *
   * @example
   * ```ts
   * import { connect } from "@ffinet/ffinet/deno";
   *
   * const conn = await connect({ hostname: "127.0.0.1", port: 8080 });
   * conn.setNoDelay(false); // let Nagle's algorithm batch small writes
   * ```
   */
  setNoDelay(noDelay = true): void {
    if (!this.#isTcp) return;
    if (this.#connClosed) throw closedError("set TCP_NODELAY", "connection");
    this.#conn.socket.setOption("noDelay", noDelay);
  }

  /**
   * `SO_KEEPALIVE` (default true); does nothing on a Unix connection.
   *
   * @example
   * ```ts
   * import { connect } from "@ffinet/ffinet/deno";
   *
   * const conn = await connect({ hostname: "127.0.0.1", port: 8080 });
   * conn.setKeepAlive();
   * ```
   */
  setKeepAlive(keepAlive = true): void {
    if (!this.#isTcp) return;
    if (this.#connClosed) throw closedError("set SO_KEEPALIVE", "connection");
    this.#conn.socket.setOption("keepAlive", keepAlive);
  }

  /**
   * Let this open connection keep the process alive again (the default).
   * Does nothing on a reactor you passed in `options.reactor`.
   *
   * @example
   * ```ts
   * import { connect } from "@ffinet/ffinet/deno";
   *
   * const conn = await connect({ hostname: "127.0.0.1", port: 8080 });
   * conn.unref();
   * conn.ref();
   * ```
   */
  ref(): void {
    this.#lease?.ref();
  }

  /**
   * Do not keep the process alive for this connection: the process may exit
   * while it is open, as with `Deno.Conn.unref()`. Does nothing on a
   * reactor you passed in `options.reactor`.
   *
   * @example
   * ```ts
   * import { connect } from "@ffinet/ffinet/deno";
   *
   * const conn = await connect({ hostname: "127.0.0.1", port: 8080 });
   * conn.unref(); // a background connection
   * ```
   */
  unref(): void {
    this.#lease?.unref();
  }

  /**
   * Close unless already closed (never throws).
   *
   * @example
   * ```ts
   * import { connect } from "@ffinet/ffinet/deno";
   *
   * using conn = await connect({ hostname: "127.0.0.1", port: 8080 });
   * ```
   */
  [Symbol.dispose](): void {
    if (!this.#userClosed) this.close();
  }
}
