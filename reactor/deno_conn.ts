/**
 * Adapters with the shape of Deno's `Deno.listen()` and `Deno.connect()`, so
 * code written for them moves to ffinet by changing one import:
 *
 * ```ts ignore
 * // import { listen } from "Deno";  (i.e. Deno.listen)
 * import { listen } from "@ffinet/ffinet/reactor";
 * for await (const conn of listen({ port: 8080 })) conn.readable.pipeTo(conn.writable);
 * ```
 *
 * {@linkcode listen} returns an {@linkcode FfiListener} (a `Deno.Listener`)
 * and {@linkcode connect} resolves to an {@linkcode FfiConn} (a `Deno.Conn`;
 * a `Deno.TcpConn` for TCP). Errors are Deno's error classes
 * (`Deno.errors.ConnectionRefused`, `AddrInUse`, `ConnectionReset`, ...)
 * with the ffinet `ErrnoError` as `cause` and its errno name as `code`.
 *
 * They run on a shared default {@linkcode Reactor} that starts when the first
 * adapter object opens and stops, closing its fds and letting the process
 * exit, when the last one closes ({@linkcode defaultReactorIdle} resolves
 * then). Pass `reactor` in the options to use your own instead: you run it,
 * and it is never stopped or closed for you.
 *
 * Differences from Deno, all on the side of not losing data:
 *
 * - `write()` resolves as soon as the bytes are queued below the
 *   connection's high-water mark (at once, usually), and later once the
 *   queue drains: that is the backpressure. It always takes the whole
 *   buffer (the result is `p.byteLength`).
 * - `close()` flushes what is still queued before closing the socket
 *   (bounded by `closeTimeoutMs`, then the connection is reset).
 * - Reaching EOF on `readable` does not close the connection (the write
 *   side stays usable); closing `writable` half-closes it (`closeWrite()`).
 *   Once both directions are finished the connection closes by itself.
 * - `ref()` and `unref()` do nothing: the shared reactor always keeps the
 *   process alive while an adapter object is open.
 * - Host names must be IP literals or `"localhost"` (no DNS lookup).
 *
 * @module
 */
import { ErrnoError } from "../ffi/errno.ts";
import type { SocketAddress } from "../ffi/sockaddr.ts";
import { connect as connectConnection, type ConnectOptions } from "./connect.ts";
import type { Connection, ConnectionOptions } from "./connection.ts";
import { Listener, type ListenOptions } from "./listener.ts";
import { Reactor } from "./reactor.ts";
import type { Timer } from "./timer_queue.ts";

/** The address kinds the adapters use. */
export type FfiAddr = Deno.NetAddr | Deno.UnixAddr;

/** Options every adapter takes. */
export interface FfiAdapterOptions {
  /**
   * The reactor to run on. Default: the shared default reactor, run and
   * closed for you. A reactor you pass is yours to run and close.
   */
  reactor?: Reactor;
  /** Bytes queued for sending at which `write()` starts waiting for a drain. Default 256 KiB. */
  highWaterMark?: number;
  /**
   * Bytes received and not yet read (by `read()` or from `readable`) at which
   * the connection stops reading from the socket. Default 256 KiB.
   */
  readBufferLimit?: number;
  /** How long `close()` may spend flushing queued output before a reset. Default 10 000 ms. */
  closeTimeoutMs?: number;
}

/** Options for wrapping a {@linkcode Connection} in an {@linkcode FfiConn} yourself. */
export interface FfiConnOptions extends Omit<FfiAdapterOptions, "reactor" | "highWaterMark"> {
  /** Called once when the connection has closed (e.g. to release a reactor). */
  onRelease?: () => void;
}

/** Options for a TCP {@linkcode listen}, as for `Deno.listen`. */
export interface FfiTcpListenOptions extends FfiAdapterOptions {
  /** `"tcp"` (the default). */
  transport?: "tcp";
  /** The IP address to bind. Default `"0.0.0.0"`, as in Deno. */
  hostname?: string;
  /** The port; 0 (the default) asks the kernel for a free one. */
  port?: number;
  /** `SO_REUSEPORT`: several listeners share the port. Default false. */
  reusePort?: boolean;
  /** `listen(2)` backlog. Default 511. */
  backlog?: number;
}

/** Options for a Unix {@linkcode listen}, as for `Deno.listen({ transport: "unix" })`. */
export interface FfiUnixListenOptions extends FfiAdapterOptions {
  /** `"unix"`. */
  transport: "unix";
  /** The socket path, or `"\0name"` for the abstract namespace. */
  path: string;
  /** The socket file's permission bits (ffinet extension). */
  mode?: number;
  /** `listen(2)` backlog. Default 511. */
  backlog?: number;
}

/** Options for a TCP {@linkcode connect}, as for `Deno.connect`. */
export interface FfiTcpConnectOptions extends FfiAdapterOptions {
  /** `"tcp"` (the default). */
  transport?: "tcp";
  /** The IP address to connect to. Default `"127.0.0.1"`. */
  hostname?: string;
  /** The port. */
  port: number;
  /** Give up after this long (`Deno.errors.TimedOut`). Default 10 000 ms. */
  timeoutMs?: number;
  /** Abort the attempt. */
  signal?: AbortSignal;
}

/** Options for a Unix {@linkcode connect}, as for `Deno.connect({ transport: "unix" })`. */
export interface FfiUnixConnectOptions extends FfiAdapterOptions {
  /** `"unix"`. */
  transport: "unix";
  /** The socket path, or `"\0name"` for the abstract namespace. */
  path: string;
  /** Give up after this long (`Deno.errors.TimedOut`). Default 10 000 ms. */
  timeoutMs?: number;
  /** Abort the attempt. */
  signal?: AbortSignal;
}

const DEFAULT_HWM = 256 * 1024;
const DEFAULT_READ_LIMIT = 256 * 1024;
const DEFAULT_CLOSE_TIMEOUT_MS = 10_000;
/** Accepted connections held for `accept()` before the listener pauses. */
const MAX_PENDING_ACCEPTS = 128;

// ---------------------------------------------------------------------------
// The shared default reactor.

interface Lease {
  readonly reactor: Reactor;
  release(): void;
}

class SharedReactor {
  #reactor: Reactor | undefined;
  #users = 0;
  #loop: Promise<void> | undefined;

  acquire(): Reactor {
    const reactor = this.#reactor ??= new Reactor({
      onError: (error) => console.error(error),
    });
    this.#users++;
    if (this.#loop === undefined) this.#loop = this.#drive(reactor);
    return reactor;
  }

  release(): void {
    if (this.#users === 0) return;
    if (--this.#users === 0) this.#reactor?.stop();
  }

  async idle(): Promise<void> {
    while (this.#loop !== undefined) await this.#loop;
  }

  async #drive(reactor: Reactor): Promise<void> {
    try {
      // A stop() may race with a new acquire(): run again while anyone is left.
      while (this.#users > 0) await reactor.run();
    } catch (e) {
      console.error(e);
    } finally {
      this.#loop = undefined;
      if (this.#reactor === reactor) this.#reactor = undefined;
      reactor.close();
    }
  }
}

const shared = new SharedReactor();

function acquire(reactor: Reactor | undefined): Lease {
  if (reactor !== undefined) return { reactor, release() {} };
  const r = shared.acquire();
  let held = true;
  return {
    reactor: r,
    release() {
      if (!held) return;
      held = false;
      shared.release();
    },
  };
}

/**
 * Resolves once every adapter object on the shared default reactor is
 * closed and the reactor has stopped and closed its fds (at once when it is
 * not running). Test code awaits it to leave no pending op or fd behind.
 *
 * @example
 * ```ts ignore
 * conn.close();
 * listener.close();
 * await defaultReactorIdle();
 * ```
 */
export function defaultReactorIdle(): Promise<void> {
  return shared.idle();
}

// ---------------------------------------------------------------------------
// Addresses and errors.

function toDenoAddr(addr: SocketAddress): FfiAddr {
  if (addr.family === "unix") return { transport: "unix", path: addr.path };
  return { transport: "tcp", hostname: addr.address, port: addr.port };
}

type ErrorClass = new (message: string, options?: ErrorOptions) => Error;

const ERROR_CLASSES: Record<string, ErrorClass> = {
  ECONNREFUSED: Deno.errors.ConnectionRefused,
  ECONNRESET: Deno.errors.ConnectionReset,
  ECONNABORTED: Deno.errors.ConnectionAborted,
  ENOTCONN: Deno.errors.NotConnected,
  EADDRINUSE: Deno.errors.AddrInUse,
  EADDRNOTAVAIL: Deno.errors.AddrNotAvailable,
  EPIPE: Deno.errors.BrokenPipe,
  ETIMEDOUT: Deno.errors.TimedOut,
  ENOENT: Deno.errors.NotFound,
  EACCES: Deno.errors.PermissionDenied,
  EPERM: Deno.errors.PermissionDenied,
  EINTR: Deno.errors.Interrupted,
};

/** An `ErrnoError` as the matching `Deno.errors` class (cause and code kept). */
function toDenoError(error: unknown): Error {
  if (!(error instanceof ErrnoError)) {
    return error instanceof Error ? error : new Error(String(error));
  }
  const Class = ERROR_CLASSES[error.code];
  if (Class === undefined) return error;
  const converted = new Class(error.message, { cause: error });
  Object.defineProperty(converted, "code", { value: error.code, enumerable: true });
  return converted;
}

function closedError(action: string, what: string): Error {
  return new Deno.errors.BadResource(`Cannot ${action}: the ${what} is closed`);
}

// ---------------------------------------------------------------------------
// FfiConn

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
 * A stream connection with the shape of `Deno.Conn` (and `Deno.TcpConn`
 * for TCP), on an ffinet {@linkcode Connection}. Made by {@linkcode connect}
 * and {@linkcode FfiListener.accept}.
 *
 * @example
 * ```ts ignore
 * const conn = await connect({ hostname: "127.0.0.1", port: 8080 });
 * await conn.write(new TextEncoder().encode("ping"));
 * const buf = new Uint8Array(16);
 * const n = await conn.read(buf);
 * conn.close();
 * ```
 */
export class FfiConn<A extends FfiAddr = FfiAddr> implements Deno.Conn<A> {
  /** The local address. */
  readonly localAddr: A;
  /** The peer's address. */
  readonly remoteAddr: A;
  readonly #conn: Connection;
  readonly #onRelease: (() => void) | undefined;
  readonly #readLimit: number;
  readonly #closeTimeoutMs: number;
  readonly #isTcp: boolean;
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

  /**
   * Wrap an open {@linkcode Connection} made with `allowHalfOpen: true`
   * (the adapter takes over its callbacks). {@linkcode connect} and
   * {@linkcode listen} do this for you.
   *
   * @example
   * ```ts ignore
   * const ffi = new FfiConn(await connectConnection(reactor, { port: 8080 }, { allowHalfOpen: true }));
   * ```
   */
  constructor(connection: Connection, options: FfiConnOptions = {}) {
    this.#conn = connection;
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
  get connection(): Connection {
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
  }

  #onDrain(): void {
    for (const writer of this.#writers.splice(0)) writer.resolve();
  }

  #onClose(error: Error | undefined): void {
    if (this.#connClosed) return;
    this.#connClosed = true;
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
   * ```ts ignore
   * const n = await conn.read(buf); // null at EOF
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
   * ```ts ignore
   * await conn.write(new TextEncoder().encode("hello"));
   * ```
   */
  write(p: Uint8Array): Promise<number> {
    if (this.#userClosed) return Promise.reject(closedError("write", "connection"));
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
   * on; the connection closes by itself after the peer's EOF too.
   *
   * @example
   * ```ts ignore
   * await conn.closeWrite();
   * ```
   */
  closeWrite(): Promise<void> {
    if (this.#userClosed) return Promise.reject(closedError("close the write side", "connection"));
    if (this.#error !== undefined) return Promise.reject(this.#error);
    this.#conn.end();
    return Promise.resolve();
  }

  /**
   * Close: pending reads reject (`Deno.errors.Interrupted`), unread input is
   * dropped, queued output is flushed (for at most `closeTimeoutMs`), then
   * the socket is closed. A second call throws `Deno.errors.BadResource`.
   *
   * @example
   * ```ts ignore
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
    if (this.#connClosed) return;
    this.#conn.close();
    if (!this.#connClosed && this.#closeTimeoutMs > 0) {
      this.#closeTimer = this.#conn.reactor.setTimeout(() => {
        this.#closeTimer = undefined;
        this.#conn.abort(
          new Error(`Cannot close gracefully: output not flushed in ${this.#closeTimeoutMs} ms`),
        );
      }, this.#closeTimeoutMs);
    }
  }

  /**
   * The incoming bytes as a byte stream (created on first use; `read()` may
   * not be used after). When its queue holds `readBufferLimit` bytes the
   * socket is not read until the consumer pulls. EOF closes the stream, not
   * the connection; cancelling it closes the connection.
   *
   * @example
   * ```ts ignore
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
   * ```ts ignore
   * await conn.readable.pipeTo(conn.writable); // echo
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
        if (this.#userClosed || this.#connClosed) return;
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
   * ```ts ignore
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
   * ```ts ignore
   * conn.setKeepAlive();
   * ```
   */
  setKeepAlive(keepAlive = true): void {
    if (!this.#isTcp) return;
    if (this.#connClosed) throw closedError("set SO_KEEPALIVE", "connection");
    this.#conn.socket.setOption("keepAlive", keepAlive);
  }

  /** A no-op: the shared reactor keeps the process alive while the connection is open. */
  ref(): void {}

  /** A no-op: the shared reactor keeps the process alive while the connection is open. */
  unref(): void {}

  /** Close unless already closed (never throws). */
  [Symbol.dispose](): void {
    if (!this.#userClosed) this.close();
  }
}

// ---------------------------------------------------------------------------
// FfiListener

/**
 * A listener with the shape of `Deno.Listener`, on an ffinet
 * {@linkcode Listener} (so it keeps serving through EMFILE). Made by
 * {@linkcode listen}. Accepted connections wait for `accept()` in a short
 * queue; when it is full the listener pauses and they wait in the kernel's
 * backlog.
 *
 * @example
 * ```ts ignore
 * using listener = listen({ hostname: "127.0.0.1", port: 8080 });
 * for await (const conn of listener) conn.readable.pipeTo(conn.writable);
 * ```
 */
export class FfiListener<A extends FfiAddr = FfiAddr> implements Deno.Listener<FfiConn<A>, A> {
  /** The bound address (with the real port when 0 was asked). */
  readonly addr: A;
  readonly #listener: Listener;
  readonly #lease: Lease;
  readonly #options: FfiAdapterOptions;
  #pending: FfiConn<A>[] = [];
  #waiters: { resolve: (c: FfiConn<A>) => void; reject: (e: Error) => void }[] = [];
  #closed = false;
  #backlogPaused = false;

  /**
   * Bind and listen. Use {@linkcode listen}, which types the address.
   *
   * @example
   * ```ts ignore
   * const l = new FfiListener({ hostname: "127.0.0.1", port: 0 });
   * ```
   */
  constructor(options: FfiTcpListenOptions | FfiUnixListenOptions) {
    this.#options = options;
    const connection: ConnectionOptions = {
      allowHalfOpen: true,
      highWaterMark: options.highWaterMark ?? DEFAULT_HWM,
    };
    let target: ListenOptions;
    if (options.transport === "unix") {
      target = { path: options.path, connection };
      if (options.mode !== undefined) target.mode = options.mode;
    } else {
      target = {
        host: options.hostname ?? "0.0.0.0",
        port: options.port ?? 0,
        reusePort: options.reusePort ?? false,
        connection,
      };
    }
    if (options.backlog !== undefined) target.backlog = options.backlog;
    this.#lease = acquire(options.reactor);
    try {
      this.#listener = Listener.listen(
        this.#lease.reactor,
        target,
        (conn) => this.#onConnection(conn),
      );
      this.addr = toDenoAddr(this.#listener.address()) as A;
    } catch (e) {
      this.#lease.release();
      throw toDenoError(e);
    }
  }

  /** The underlying ffinet listener (for its stats; do not replace its callbacks). */
  get listener(): Listener {
    return this.#listener;
  }

  #onConnection(conn: Connection): void {
    let ffi: FfiConn<A>;
    const lease = acquire(this.#options.reactor);
    try {
      ffi = new FfiConn<A>(conn, { ...this.#options, onRelease: lease.release });
    } catch (e) {
      conn.abort();
      lease.release();
      console.error(e);
      return;
    }
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) {
      waiter.resolve(ffi);
      return;
    }
    this.#pending.push(ffi);
    if (this.#pending.length >= MAX_PENDING_ACCEPTS && !this.#backlogPaused) {
      this.#backlogPaused = true;
      this.#listener.pause();
    }
  }

  /**
   * The next connection. Rejects with `Deno.errors.BadResource` once the
   * listener is closed.
   *
   * @example
   * ```ts ignore
   * const conn = await listener.accept();
   * ```
   */
  accept(): Promise<FfiConn<A>> {
    if (this.#closed) return Promise.reject(closedError("accept", "listener"));
    const next = this.#pending.shift();
    if (next !== undefined) {
      if (this.#backlogPaused && this.#pending.length < MAX_PENDING_ACCEPTS / 2) {
        this.#backlogPaused = false;
        this.#listener.resume();
      }
      return Promise.resolve(next);
    }
    const { promise, resolve, reject } = Promise.withResolvers<FfiConn<A>>();
    this.#waiters.push({ resolve, reject });
    return promise;
  }

  /**
   * Stop listening: pending `accept()` calls reject, connections accepted
   * but not yet taken are closed, a Unix socket file is removed. Accepted
   * connections stay open. A second call throws `Deno.errors.BadResource`.
   *
   * @example
   * ```ts ignore
   * listener.close();
   * ```
   */
  close(): void {
    if (this.#closed) throw closedError("close", "listener");
    this.#closed = true;
    this.#listener.close();
    const error = closedError("accept", "listener");
    for (const waiter of this.#waiters.splice(0)) waiter.reject(error);
    for (const conn of this.#pending.splice(0)) conn.close();
    this.#lease.release();
  }

  /**
   * Accept connections until the listener is closed.
   *
   * @example
   * ```ts ignore
   * for await (const conn of listener) handle(conn);
   * ```
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<FfiConn<A>> {
    while (true) {
      let conn: FfiConn<A>;
      try {
        conn = await this.accept();
      } catch (e) {
        if (e instanceof Deno.errors.BadResource) return;
        throw e;
      }
      yield conn;
    }
  }

  /** A no-op: the shared reactor keeps the process alive while the listener is open. */
  ref(): void {}

  /** A no-op: the shared reactor keeps the process alive while the listener is open. */
  unref(): void {}

  /** Close unless already closed (never throws). */
  [Symbol.dispose](): void {
    if (!this.#closed) this.close();
  }
}

// ---------------------------------------------------------------------------
// listen / connect

/**
 * Listen on TCP, like `Deno.listen`: returns at once, bound and accepting.
 * Failures throw Deno's error classes, e.g. `Deno.errors.AddrInUse`.
 *
 * @example
 * ```ts ignore
 * const listener = listen({ hostname: "127.0.0.1", port: 0 });
 * console.log(listener.addr.port);
 * ```
 */
export function listen(options: FfiTcpListenOptions): FfiListener<Deno.NetAddr>;
/**
 * Listen on a Unix socket, like `Deno.listen({ transport: "unix", path })`.
 *
 * @example
 * ```ts ignore
 * const listener = listen({ transport: "unix", path: "/tmp/app.sock" });
 * ```
 */
export function listen(options: FfiUnixListenOptions): FfiListener<Deno.UnixAddr>;
/**
 * Listen on TCP or a Unix socket.
 *
 * @example
 * ```ts ignore
 * const listener = listen({ port: 8080 });
 * ```
 */
export function listen(
  options: FfiTcpListenOptions | FfiUnixListenOptions,
): FfiListener<Deno.NetAddr> | FfiListener<Deno.UnixAddr> {
  return options.transport === "unix"
    ? new FfiListener<Deno.UnixAddr>(options)
    : new FfiListener<Deno.NetAddr>(options);
}

/**
 * Connect over TCP, like `Deno.connect`. Failures reject with Deno's error
 * classes (`Deno.errors.ConnectionRefused`, `TimedOut`, ...).
 *
 * @example
 * ```ts ignore
 * const conn = await connect({ hostname: "127.0.0.1", port: 8080 });
 * ```
 */
export function connect(options: FfiTcpConnectOptions): Promise<FfiConn<Deno.NetAddr>>;
/**
 * Connect to a Unix socket, like `Deno.connect({ transport: "unix", path })`.
 *
 * @example
 * ```ts ignore
 * const conn = await connect({ transport: "unix", path: "/tmp/app.sock" });
 * ```
 */
export function connect(options: FfiUnixConnectOptions): Promise<FfiConn<Deno.UnixAddr>>;
/**
 * Connect over TCP or to a Unix socket.
 *
 * @example
 * ```ts ignore
 * const conn = await connect({ port: 8080 });
 * ```
 */
export async function connect(
  options: FfiTcpConnectOptions | FfiUnixConnectOptions,
): Promise<FfiConn<Deno.NetAddr> | FfiConn<Deno.UnixAddr>> {
  const lease = acquire(options.reactor);
  const connectOptions: ConnectOptions = {
    allowHalfOpen: true,
    highWaterMark: options.highWaterMark ?? DEFAULT_HWM,
  };
  if (options.timeoutMs !== undefined) connectOptions.timeoutMs = options.timeoutMs;
  if (options.signal !== undefined) connectOptions.signal = options.signal;
  let conn: Connection;
  try {
    conn = await connectConnection(
      lease.reactor,
      options.transport === "unix"
        ? { path: options.path }
        : { host: options.hostname ?? "127.0.0.1", port: options.port },
      connectOptions,
    );
  } catch (e) {
    lease.release();
    throw toDenoError(e);
  }
  try {
    return new FfiConn<Deno.NetAddr>(conn, { ...options, onRelease: lease.release });
  } catch (e) {
    conn.abort();
    lease.release();
    throw toDenoError(e);
  }
}
