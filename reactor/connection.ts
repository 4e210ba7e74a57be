/**
 * `Connection`: a stream socket (TCP or Unix) driven by a {@linkcode Reactor},
 * with an input path that reads straight into a shared buffer and an output
 * queue for what the kernel cannot take at once.
 *
 * - Reads are level-triggered: one `read` of up to 256 KiB per report, so a
 *   busy peer cannot starve the others and no syscall is spent on EAGAIN.
 *   `onData` receives a view that is valid **only during the call**: copy
 *   what you keep. Bytes that arrive before `onData` is set are held (and
 *   reading paused) until it is.
 * - `write()` sends at once when nothing is queued. A second write in the
 *   same turn of the loop (a stream's chunks, a chunk's size line, data and
 *   CRLF) is corked instead: copied into a buffer that goes out in one send
 *   when the turn's promise continuations have run, or at once when it
 *   reaches 64 KiB. What the kernel cannot take is copied into
 *   the queue, `EPOLLOUT` interest is turned on only while the queue is not
 *   empty, and queued chunks go out with one `sendmsg`. `write()` returns false
 *   once `highWaterMark` bytes are queued; `onDrain` runs when the queue
 *   empties after that (pause the producer in between).
 * - `end()` half-closes (`shutdown(SHUT_WR)`) after the queue is flushed;
 *   `close()` closes after the flush; `abort()` closes at once with an RST
 *   (`SO_LINGER` 0). A peer's EOF calls `onEnd`, then closes the connection
 *   unless `allowHalfOpen` is set.
 * - A connection a `Listener` accepted owns its fd alone: its close takes
 *   it out of the epoll set (Linux drops the registration with the last
 *   descriptor of a file), without an `EPOLL_CTL_DEL` first. Do not `dup()`
 *   its fd; to hand the socket to another process, send it with
 *   `sendFds()` on a `Connection` (which notes it is shared from then on)
 *   or take it over with `socket.release()`.
 * - Sends use `MSG_NOSIGNAL`: a vanished peer is an `EPIPE` error passed to
 *   `onClose`, never a SIGPIPE.
 * - An idle connection (`idleTimeoutMs`) is closed gracefully (FIN) and
 *   `onClose` receives a `Deno.errors.TimedOut`. Writing to a connection
 *   that is closing or closed throws `Deno.errors.BadResource`.
 * - A handler (`onData`, `onEnd`, `onDrain`, `onFds`) that throws closes
 *   this connection at once (RST) and the error goes to the listener's
 *   `onError`, else the reactor's: the server keeps serving the others.
 *
 * @module
 */
import { MSG, SHUT } from "../ffi/constants.ts";
import { EAGAIN, ErrnoError } from "../ffi/errno.ts";
import { recvFds, sendFds } from "../ffi/fd_passing.ts";
import type { SocketAddress } from "../ffi/sockaddr.ts";
import type { Socket } from "../ffi/socket.ts";
import * as sys from "../ffi/syscalls.ts";
import { Interest } from "./interest.ts";
import { deferFlush, type Reactor, reactorControl, writeTurns } from "./reactor.ts";
import { type Readiness, type Registration, registrationControl } from "./poller.ts";
import type { ProxyInfo } from "./proxy/protocol.ts";
import type { Timer } from "./timer_queue.ts";
import { writevChunks } from "../ffi/writev.ts";
import {
  type ConnectionOptions,
  type FdsInfo,
  resolveConnectionOptions,
} from "./connection_options.ts";

export {
  type ConnectionOptions,
  type FdsInfo,
  resolveConnectionOptions,
  type ResolvedConnectionOptions,
} from "./connection_options.ts";

/** What {@linkcode Connection.onData} receives: a view valid only during the call. */
export type DataHandler = (data: Uint8Array, conn: Connection) => void;

/** Where errors thrown by a connection's handlers go (set by its listener; internal). */
export type ConnectionErrorSink = (error: unknown, conn: Connection) => void;

/** Module-private hooks between `Connection` and `Listener` (not exported by `mod.ts`). */
export const connectionControl = {} as {
  setErrorSink(conn: Connection, sink: ConnectionErrorSink | undefined): void;
  /** The fd came from this process's `accept4` (close-on-exec) and is shared with no one. */
  setExclusive(conn: Connection): void;
};

/** Where a connection is in its life. */
export type ConnectionState = "open" | "ending" | "closing" | "closed";

/**
 * The most one read takes: large enough that a bulk upload costs few reads
 * and wake-ups per MiB (a 64 KiB read cost a third more CPU per GiB), small
 * enough that one busy peer cannot hold the loop for long.
 */
const READ_BUFFER_SIZE = 256 * 1024;
const readBuf = new Uint8Array(READ_BUFFER_SIZE);
/** `readBuf`'s memory: views of it are made with the constructor (cheaper than `subarray`). */
const readMemory = readBuf.buffer;

/**
 * A stream connection on a reactor.
 *
 * @example An echo handler
 * ```ts
 * import { Listener, Reactor } from "@ffinet/ffinet/reactor";
 * await using reactor = new Reactor();
 * using listener = Listener.listen(reactor, { host: "127.0.0.1", port: 0 });
 * listener.onConnection = (conn) => {
 *   conn.onData = (data) => {
 *     if (!conn.write(data)) conn.pause();
 *   };
 *   conn.onDrain = () => conn.resume();
 * };
 * ```
 */
export class Connection implements Disposable {
  /** The socket; the connection owns it and closes it. */
  readonly socket: Socket;
  /** The reactor driving it. */
  readonly reactor: Reactor;
  /** Bytes received. */
  bytesRead = 0;
  /** Bytes handed to the kernel. */
  bytesWritten = 0;
  /** Called with each chunk read. The view is only valid during the call. */
  get onData(): DataHandler | undefined {
    return this.#onData;
  }

  /**
   * Set the data handler. Bytes that arrived before any handler was set
   * (e.g. a greeting sent as soon as `connect()` resolved) were kept, with
   * reading held, and are delivered to the new handler right after this
   * task's synchronous code.
   */
  set onData(handler: DataHandler | undefined) {
    this.#onData = handler;
    if (handler !== undefined && this.#early !== undefined && !this.#earlyScheduled) {
      this.#earlyScheduled = true;
      queueMicrotask(() => this.#deliverEarly());
    }
  }
  /** Called when the peer has finished sending (EOF). */
  onEnd: ((conn: Connection) => void) | undefined;
  /** Called when the output queue empties after `write()` returned false. */
  onDrain: ((conn: Connection) => void) | undefined;
  /** Called once when the connection is closed, with the error that closed it, if any. */
  onClose: ((conn: Connection, error?: Error) => void) | undefined;
  /**
   * Called with fds received alongside the next `onData` chunk (needs the
   * `receiveFds` option). The callee owns them and must close them. When the
   * peer sent more fds than fit, it is called with no fds and
   * `info.truncated` true (see also {@linkcode Connection.truncatedFds}).
   */
  onFds: ((fds: number[], conn: Connection, info: FdsInfo) => void) | undefined;
  /** Messages whose fds were cut off (more than `receiveFds` were sent); they were closed. */
  truncatedFds = 0;
  /** Anything the application wants to keep with the connection. */
  context: unknown;
  /**
   * The PROXY protocol header this connection arrived with (listeners with a
   * `proxyProtocol` option set it before `onConnection`); `undefined`
   * otherwise. `remoteAddress()` then returns the client's address from it,
   * and `proxyInfo.proxyAddress` is the proxy's.
   */
  proxyInfo: ProxyInfo | undefined;

  readonly #fd: number;
  readonly #reg: Registration<Connection>;
  #interest: number;
  #out = new OutputQueue();
  /** Corked bytes (`#corkLen` of them), sent before anything queued after them. */
  #cork: Uint8Array | undefined;
  #corkLen = 0;
  /** The write turn of the last send at once (see `writeTurns`). */
  #sentEpoch = -1;
  #state: ConnectionState = "open";
  #readPaused = false;
  #onData: DataHandler | undefined;
  /** Bytes read before `onData` was set (a copy); reading is held meanwhile. */
  #early: Uint8Array | undefined;
  #earlyScheduled = false;
  #readEnded = false;
  #writeEnded = false;
  #needDrain = false;
  #highWaterMark: number;
  #allowHalfOpen: boolean;
  #idleTimeoutMs: number;
  #idleTimer: Timer | undefined;
  #lastActive: number;
  #receiveFds: number;
  #errorSink: ConnectionErrorSink | undefined;

  /**
   * Whether no other descriptor (a dup, a copy sent to another process)
   * refers to this socket: then closing the fd takes it out of the epoll set,
   * and no `EPOLL_CTL_DEL` is needed before the close.
   */
  #exclusive = false;

  static {
    connectionControl.setErrorSink = (conn, sink) => {
      conn.#errorSink = sink;
    };
    connectionControl.setExclusive = (conn) => {
      conn.#exclusive = true;
    };
  }

  /** The reactor callback: runs the connection's I/O; a throwing handler closes it. */
  static #onReady(ready: Readiness, reg: Registration<Connection>): void {
    const conn = reg.data;
    try {
      conn.#ready(ready);
    } catch (error) {
      conn.#fail(error);
    }
  }

  /** A handler threw: reset this connection and hand the error on. */
  #fail(error: unknown): void {
    try {
      this.#destroy(error instanceof Error ? error : new Error(String(error)), true);
    } catch (e) {
      // onClose threw as well: report that one too.
      this.#reportError(e);
    }
    this.#reportError(error);
  }

  #reportError(error: unknown): void {
    const sink = this.#errorSink;
    if (sink !== undefined) {
      try {
        sink(error, this);
        return;
      } catch (e) {
        error = e; // the listener's onError threw: the reactor reports that
      }
    }
    reactorControl.report(this.reactor, error, this.#reg);
  }

  /**
   * Wrap a connected, non-blocking socket and register it with the reactor.
   * Options are checked first (a `RangeError` naming the option).
   *
   * @example
   * ```ts
   * import { Connection, Reactor } from "@ffinet/ffinet/reactor";
   * import { Socket } from "@ffinet/ffinet/ffi";
   * await using reactor = new Reactor();
   * const [a, b] = Socket.pair();
   * using conn = new Connection(reactor, a, { idleTimeoutMs: 30_000 });
   * b.close();
   * ```
   */
  constructor(reactor: Reactor, socket: Socket, options: ConnectionOptions = {}) {
    const resolved = resolveConnectionOptions("create connection", options);
    this.reactor = reactor;
    this.socket = socket;
    this.#fd = socket.fd;
    this.#highWaterMark = resolved.highWaterMark;
    this.#allowHalfOpen = resolved.allowHalfOpen;
    this.#idleTimeoutMs = resolved.idleTimeoutMs;
    this.#receiveFds = resolved.receiveFds;
    this.#interest = Interest.READABLE;
    this.#reg = reactor.register<Connection>(
      this.#fd,
      this.#interest,
      Connection.#onReady,
      this,
    );
    this.#lastActive = reactor.now;
    if (this.#idleTimeoutMs > 0) this.#armIdle(this.#idleTimeoutMs);
  }

  /** The fd (owned by {@linkcode Connection.socket}). */
  get fd(): number {
    return this.#fd;
  }

  /** `"open"`, `"ending"` (write side shutting), `"closing"` (flushing), `"closed"`. */
  get state(): ConnectionState {
    return this.#state;
  }

  /** Bytes queued for sending. */
  get writableLength(): number {
    return this.#out.bytes + this.#corkLen;
  }

  /** Whether the peer's EOF has been read. */
  get readEnded(): boolean {
    return this.#readEnded;
  }

  /**
   * The peer's address (see `SocketAddress` in `./ffi`); behind a PROXY-protocol proxy, the
   * client's address from the header (`proxyInfo.proxyAddress` is the proxy's).
   * @example `conn.remoteAddress()`
   */
  remoteAddress(): SocketAddress {
    return this.proxyInfo?.source ?? this.socket.remoteAddress();
  }

  /** The local address. @example `conn.localAddress()` */
  localAddress(): SocketAddress {
    return this.socket.localAddress();
  }

  #armIdle(delay: number): void {
    this.#idleTimer = this.reactor.setTimeout(() => {
      this.#idleTimer = undefined;
      if (this.#state === "closed") return;
      const idle = this.reactor.now - this.#lastActive;
      if (idle >= this.#idleTimeoutMs) {
        // A graceful close (FIN): the peer did nothing wrong by being quiet.
        this.#destroy(
          new Deno.errors.TimedOut(
            `Cannot keep connection open: idle for ${this.#idleTimeoutMs} ms (idleTimeoutMs)`,
          ),
          false,
        );
      } else {
        this.#armIdle(this.#idleTimeoutMs - idle);
      }
    }, delay);
  }

  #updateInterest(): void {
    if (this.#state === "closed") return;
    const want =
      (this.#readPaused || this.#readEnded || this.#early !== undefined ? 0 : Interest.READABLE) |
      (this.#out.bytes > 0 ? Interest.WRITABLE : 0);
    if (want !== this.#interest) {
      this.#interest = want;
      this.#reg.modify(want);
    }
  }

  #ready(ready: Readiness): void {
    if (this.#out.bytes > 0 && (ready.writable || ready.error)) {
      this.#flush();
      if (this.#state === "closed") return;
    }
    if ((this.#interest & Interest.READABLE) !== 0 && (ready.readable || ready.error)) this.#read();
  }

  #read(): void {
    // One read per report: the registration is level-triggered, so whatever
    // is left is reported by the next wait (as a C epoll server does). Reading
    // again after a full buffer would mostly cost an extra EAGAIN syscall.
    if (this.#receiveFds === 0) {
      this.#consume(sys.read(this.#fd, readBuf, READ_BUFFER_SIZE), "read");
      return;
    }
    const got = recvFds(this.#fd, readBuf, this.#receiveFds);
    if (got.truncated) this.truncatedFds++;
    if (got.fds.length > 0 || got.truncated) {
      if (this.onFds) this.onFds(got.fds, this, { truncated: got.truncated });
      else for (const fd of got.fds) sys.close(fd);
    }
    this.#consume(got.bytes, "recvmsg");
  }

  /** Hand `n` bytes of `readBuf` to `onData`, or handle EOF / -errno from `call`. */
  #consume(n: number, call: string): void {
    if (n > 0) {
      this.bytesRead += n;
      this.#lastActive = this.reactor.now;
      const handler = this.#onData;
      if (handler !== undefined) handler(new Uint8Array(readMemory, 0, n), this);
      else {
        // No handler yet: keep the bytes and hold reading until one is set.
        this.#early = readBuf.slice(0, n);
        this.#updateInterest();
      }
    } else if (n === 0) {
      this.#eof();
    } else if (n !== -EAGAIN) {
      this.#destroy(new ErrnoError(call, -n), false);
    }
  }

  /**
   * Send fds over a Unix stream socket (`SCM_RIGHTS`) with at least one byte
   * of `data`. The fds stay open here (the peer gets duplicates). Throws when
   * output is still queued (order would be lost) or the kernel cannot take
   * the message now.
   *
   * @example
   * ```ts
   * import { Connection, Reactor } from "@ffinet/ffinet/reactor";
   * import { Socket } from "@ffinet/ffinet/ffi";
   * await using reactor = new Reactor();
   * const [a, b] = Socket.pair();
   * using conn = new Connection(reactor, a);
   * conn.sendFds([0], new Uint8Array([1])); // the peer gets a copy of stdin
   * b.close();
   * ```
   */
  sendFds(fds: readonly number[], data: Uint8Array): void {
    if (this.#state !== "open") {
      throw new Deno.errors.BadResource(`Cannot send fds: the connection is ${this.#state}`);
    }
    this.#uncork();
    if (this.#out.bytes > 0) {
      throw new Error("Cannot send fds: output is still queued; wait for onDrain");
    }
    // A connection whose socket is sent elsewhere is shared from now on: its
    // close must take it out of the epoll set explicitly.
    for (const fd of fds) {
      const owner = this.reactor.registrationOf(fd)?.data;
      if (owner instanceof Connection) owner.#exclusive = false;
    }
    const n = sendFds(this.#fd, fds, data);
    if (n < 0) throw new ErrnoError("sendmsg", -n);
    this.bytesWritten += n;
    if (n < data.byteLength) {
      this.#enqueue(data.slice(n));
      this.#updateInterest();
    }
  }

  #deliverEarly(): void {
    this.#earlyScheduled = false;
    const early = this.#early;
    const handler = this.#onData;
    if (early === undefined || handler === undefined || this.#state === "closed") return;
    this.#early = undefined;
    try {
      handler(early, this);
      this.#updateInterest();
    } catch (error) {
      this.#fail(error); // outside the reactor's dispatch: report through the same path
    }
  }

  #eof(): void {
    this.#readEnded = true;
    this.onEnd?.(this);
    if (this.#state === "closed") return;
    if (!this.#allowHalfOpen || this.#writeEnded) {
      this.close();
    } else {
      this.#updateInterest();
    }
  }

  /**
   * Send bytes. Returns false once `highWaterMark` bytes are queued (keep
   * writing if you must; memory grows), and `onDrain` follows when the queue
   * empties. Throws `Deno.errors.BadResource` once `end()` or `close()`
   * has been called or the connection was closed.
   *
   * @example
   * ```ts
   * import { Connection, Reactor } from "@ffinet/ffinet/reactor";
   * import { Socket } from "@ffinet/ffinet/ffi";
   * await using reactor = new Reactor();
   * const [a, b] = Socket.pair();
   * using conn = new Connection(reactor, a);
   * if (!conn.write(new TextEncoder().encode("hello"))) conn.pause();
   * b.close();
   * ```
   */
  write(data: Uint8Array): boolean {
    if (this.#state !== "open") {
      throw new Deno.errors.BadResource(`Cannot write: the connection is ${this.#state}`);
    }
    writeTurns.writes++;
    const len = data.byteLength;
    if (len === 0) return this.writableLength < this.#highWaterMark;
    if (this.#corkLen > 0 || this.#out.bytes === 0 && this.#sentEpoch === writeTurns.epoch) {
      // A second write this turn: cork it while it fits below the limits.
      const limit = Math.min(CORK_LIMIT, this.#highWaterMark);
      if (this.#corkLen + len < limit) {
        if (this.#corkLen === 0) {
          this.#cork ??= takeCork();
          deferFlush(this, Connection.#flushCork);
        }
        if (this.#corkLen + len > this.#cork!.length) {
          this.#cork = growCork(this.#cork!, this.#corkLen);
        }
        this.#cork!.set(data, this.#corkLen);
        this.#corkLen += len;
        return true;
      }
      if (this.#corkLen > 0) return this.#sendCorkWith(data);
    }
    if (this.#out.bytes === 0) {
      this.#sentEpoch = writeTurns.epoch;
      const n = sys.send(this.#fd, data, len, MSG.NOSIGNAL);
      if (n === len) {
        this.bytesWritten += n;
        this.#lastActive = this.reactor.now;
        return true;
      }
      if (n >= 0) {
        this.bytesWritten += n;
        this.#enqueue(data.slice(n));
      } else if (n === -EAGAIN) {
        this.#enqueue(data.slice());
      } else {
        this.#destroy(new ErrnoError("send", -n), false);
        return false;
      }
      this.#updateInterest();
    } else {
      this.#enqueue(data.slice());
    }
    if (this.#out.bytes >= this.#highWaterMark) {
      this.#needDrain = true;
      return false;
    }
    return true;
  }

  /** Send the corked bytes and `data` in one gather call; queue what is left. */
  #sendCorkWith(data: Uint8Array): boolean {
    const cork = this.#cork!;
    const corked = this.#corkLen;
    this.#corkLen = 0;
    this.#sentEpoch = writeTurns.epoch;
    const n = writevChunks(this.#fd, [cork.subarray(0, corked), data], 0, 0);
    if (n >= 0 || n === -EAGAIN) {
      const sent = n > 0 ? n : 0;
      this.bytesWritten += sent;
      if (sent > 0) this.#lastActive = this.reactor.now;
      if (sent < corked) {
        this.#enqueue(cork.slice(sent, corked));
        this.#enqueue(data.slice());
      } else if (sent < corked + data.byteLength) {
        this.#enqueue(data.slice(sent - corked));
      }
    } else {
      this.#destroy(new ErrnoError("sendmsg", -n), false);
      return false;
    }
    this.#releaseCork();
    if (this.#out.bytes === 0) return true;
    this.#updateInterest();
    if (this.#out.bytes >= this.#highWaterMark) {
      this.#needDrain = true;
      return false;
    }
    return true;
  }

  /** The end of the turn: send what was corked (see `deferFlush`). */
  static #flushCork(conn: Connection): void {
    if (conn.#corkLen === 0 || conn.#state === "closed") return;
    try {
      conn.#uncork();
    } catch (error) {
      conn.#fail(error); // a handler run by the flush (onDrain) threw
    }
  }

  /** Send the corked bytes now; queue what the kernel does not take. */
  #uncork(): void {
    const corked = this.#corkLen;
    if (corked === 0) return;
    const cork = this.#cork!;
    this.#corkLen = 0;
    this.#sentEpoch = writeTurns.epoch;
    const n = sys.send(this.#fd, cork, corked, MSG.NOSIGNAL);
    if (n < 0 && n !== -EAGAIN) {
      this.#releaseCork();
      this.#destroy(new ErrnoError("send", -n), false);
      return;
    }
    const sent = n > 0 ? n : 0;
    if (sent > 0) {
      this.bytesWritten += sent;
      this.#lastActive = this.reactor.now;
    }
    if (sent < corked) this.#enqueue(cork.slice(sent, corked));
    this.#releaseCork();
    if (this.#out.bytes === 0) this.#afterFlush();
    else this.#updateInterest();
  }

  #releaseCork(): void {
    const cork = this.#cork;
    if (cork === undefined) return;
    this.#cork = undefined;
    returnCork(cork);
  }

  #enqueue(chunk: Uint8Array): void {
    this.#out.push(chunk);
  }

  #flush(): void {
    const out = this.#out;
    const n = out.flush(this.#fd);
    const sent = n >= 0 ? n : out.sentBeforeError;
    if (sent > 0) {
      this.bytesWritten += sent;
      this.#lastActive = this.reactor.now;
    }
    if (n < 0) {
      this.#destroy(new ErrnoError(out.failedCall, -n), false);
      return;
    }
    if (out.bytes === 0) this.#afterFlush();
  }

  #afterFlush(): void {
    if (this.#state === "ending") {
      this.#shutdownWrite();
    } else if (this.#state === "closing") {
      this.#destroy(undefined, false);
      return;
    }
    this.#updateInterest();
    if (this.#needDrain) {
      this.#needDrain = false;
      this.onDrain?.(this);
    }
  }

  #shutdownWrite(): void {
    if (this.#writeEnded) return;
    this.#writeEnded = true;
    sys.shutdown(this.#fd, SHUT.WR);
    if (this.#readEnded) this.#destroy(undefined, false);
  }

  /**
   * Stop reading (turn off readable interest) until `resume()`.
   *
   * @example
   * ```ts
   * import { Connection, Reactor } from "@ffinet/ffinet/reactor";
   * import { Socket } from "@ffinet/ffinet/ffi";
   * await using reactor = new Reactor();
   * const [a, b] = Socket.pair();
   * const conn = new Connection(reactor, a);
   * conn.pause();
   * conn.close();
   * b.close();
   * ```
   */
  pause(): void {
    if (this.#readPaused) return;
    this.#readPaused = true;
    this.#updateInterest();
  }

  /**
   * Start reading again after `pause()`.
   *
   * @example
   * ```ts
   * import { Connection, Reactor } from "@ffinet/ffinet/reactor";
   * import { Socket } from "@ffinet/ffinet/ffi";
   * await using reactor = new Reactor();
   * const [a, b] = Socket.pair();
   * const conn = new Connection(reactor, a);
   * conn.pause();
   * conn.resume();
   * conn.close();
   * b.close();
   * ```
   */
  resume(): void {
    if (!this.#readPaused) return;
    this.#readPaused = false;
    this.#updateInterest();
  }

  /**
   * Half-close: after the queue is flushed, `shutdown(SHUT_WR)`; reading
   * goes on until the peer's EOF, then the connection closes.
   *
   * @example
   * ```ts
   * import { Connection, Reactor } from "@ffinet/ffinet/reactor";
   * import { Socket } from "@ffinet/ffinet/ffi";
   * await using reactor = new Reactor();
   * const [a, b] = Socket.pair();
   * const conn = new Connection(reactor, a);
   * conn.write(new TextEncoder().encode("bye"));
   * conn.end();
   * conn.abort();
   * b.close();
   * ```
   */
  end(): void {
    if (this.#state !== "open") return;
    this.#uncork();
    if (this.#state !== "open") return;
    this.#state = "ending";
    if (this.#out.bytes === 0) {
      this.#shutdownWrite();
    }
  }

  /**
   * Graceful close: stop reading, flush what is queued, then close.
   *
   * @example
   * ```ts
   * import { Connection, Reactor } from "@ffinet/ffinet/reactor";
   * import { Socket } from "@ffinet/ffinet/ffi";
   * await using reactor = new Reactor();
   * const [a, b] = Socket.pair();
   * const conn = new Connection(reactor, a);
   * conn.close();
   * b.close();
   * ```
   */
  close(): void {
    if (this.#state === "closed" || this.#state === "closing") return;
    this.#uncork(); // may fail and close
    if ((this.#state as ConnectionState) === "closed") return;
    this.#state = "closing";
    this.#readPaused = true;
    if (this.#out.bytes === 0) {
      this.#destroy(undefined, false);
    } else {
      this.#updateInterest();
    }
  }

  /**
   * Abortive close: drop what is queued and reset the connection (the peer
   * sees ECONNRESET), via `SO_LINGER` 0.
   *
   * @example
   * ```ts
   * import { Connection, Reactor } from "@ffinet/ffinet/reactor";
   * import { Socket } from "@ffinet/ffinet/ffi";
   * await using reactor = new Reactor();
   * const [a, b] = Socket.pair();
   * const conn = new Connection(reactor, a);
   * conn.abort();
   * b.close();
   * ```
   */
  abort(error?: Error): void {
    this.#destroy(error, true);
  }

  #destroy(error: Error | undefined, reset: boolean): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#idleTimer?.cancel();
    this.#idleTimer = undefined;
    this.#out.clear();
    this.#corkLen = 0;
    this.#releaseCork();
    try {
      // An fd nothing else shares leaves the epoll set with its close.
      if (this.#exclusive && !this.socket.closed) registrationControl.closing(this.#reg);
      else this.#reg.deregister();
    } finally {
      if (reset) {
        try {
          this.socket.setOption("linger", { seconds: 0 });
        } catch { /* the socket may already be dead */ }
      }
      this.socket.close();
    }
    this.onClose?.(this, error);
  }

  /** Close gracefully (for `using`): the same as {@linkcode Connection.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}

// ---------------------------------------------------------------------------
// The output queue: the chunks the kernel could not take at once, sent in
// order with `send` (one chunk) or `sendmsg` (several), never copying them
// again; and the cork buffers of the writes a turn of the loop defers.

/** Compact the chunk array once this many sent chunks sit before the head. */
const COMPACT_AFTER = 1024;

/** Queued chunks and how far the first unsent one has gone. */
class OutputQueue {
  #chunks: Uint8Array[] = [];
  #head = 0; // index of the first unsent chunk
  #headOffset = 0; // bytes of chunks[head] already sent
  #bytes = 0;
  /** The call that failed in the last {@linkcode OutputQueue.flush}, if any. */
  failedCall: "send" | "sendmsg" = "send";

  /** Bytes queued. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Queue a chunk (the caller hands over ownership: copy it first if it may change). */
  push(chunk: Uint8Array): void {
    this.#chunks.push(chunk);
    this.#bytes += chunk.byteLength;
  }

  /** Drop everything queued. */
  clear(): void {
    this.#chunks = [];
    this.#head = 0;
    this.#headOffset = 0;
    this.#bytes = 0;
  }

  /**
   * Send queued bytes to `fd` until the queue is empty or the kernel pushes
   * back (EAGAIN). Returns the bytes sent, or -errno when a call failed
   * (bytes sent before the failure are counted in `sentBeforeError`).
   */
  flush(fd: number): number {
    let sent = 0;
    this.sentBeforeError = 0;
    while (this.#bytes > 0) {
      const count = this.#chunks.length - this.#head;
      let n: number;
      if (count === 1) {
        const chunk = this.#chunks[this.#head]!;
        const rest = this.#headOffset === 0 ? chunk : chunk.subarray(this.#headOffset);
        n = sys.send(fd, rest, rest.byteLength, MSG.NOSIGNAL);
      } else {
        n = writevChunks(fd, this.#chunks, this.#head, this.#headOffset);
      }
      if (n === -EAGAIN || n === 0) break;
      if (n < 0) {
        this.failedCall = count === 1 ? "send" : "sendmsg";
        this.sentBeforeError = sent;
        return n;
      }
      sent += n;
      this.#advance(n);
    }
    if (this.#bytes === 0) {
      this.#chunks.length = 0;
      this.#head = 0;
      this.#headOffset = 0;
    } else if (this.#head > COMPACT_AFTER) {
      this.#chunks = this.#chunks.slice(this.#head);
      this.#head = 0;
    }
    return sent;
  }

  /** Bytes sent by the last {@linkcode OutputQueue.flush} before it failed. */
  sentBeforeError = 0;

  /** Step over `n` sent bytes: whole chunks, then part of the next. */
  #advance(n: number): void {
    this.#bytes -= n;
    let left = n;
    while (left > 0) {
      const chunk = this.#chunks[this.#head]!;
      const remain = chunk.byteLength - this.#headOffset;
      if (left >= remain) {
        left -= remain;
        this.#chunks[this.#head] = undefined as unknown as Uint8Array;
        this.#head++;
        this.#headOffset = 0;
      } else {
        this.#headOffset += left;
        left = 0;
      }
    }
  }
}

/** The most bytes a connection corks before it sends them at once. */
const CORK_LIMIT = 64 * 1024;

/**
 * A cork starts small (most turns cork a few small writes) and grows to
 * {@linkcode CORK_LIMIT} when it must: a turn in which hundreds of
 * connections cork takes buffers from the spares instead of allocating
 * (and zeroing) 64 KiB for each.
 */
const SMALL_CORK = 4 * 1024;
const spareCorks: Uint8Array[] = [];
const spareLargeCorks: Uint8Array[] = [];

/** A cork buffer of {@linkcode SMALL_CORK} bytes (reused). */
function takeCork(): Uint8Array {
  return spareCorks.pop() ?? new Uint8Array(SMALL_CORK);
}

/** `cork` with room for {@linkcode CORK_LIMIT} bytes, its first `used` bytes kept. */
function growCork(cork: Uint8Array, used: number): Uint8Array {
  const large = spareLargeCorks.pop() ?? new Uint8Array(CORK_LIMIT);
  large.set(cork.subarray(0, used));
  returnCork(cork);
  return large;
}

/** Give a cork buffer back once nothing refers to its bytes. */
function returnCork(cork: Uint8Array): void {
  if (cork.length === SMALL_CORK) {
    if (spareCorks.length < 1024) spareCorks.push(cork);
  } else if (spareLargeCorks.length < 8) spareLargeCorks.push(cork);
}
