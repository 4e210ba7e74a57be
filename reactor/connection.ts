/**
 * `Connection`: a stream socket (TCP or Unix) driven by a {@linkcode Reactor},
 * with an input path that reads straight into a shared buffer and an output
 * queue for what the kernel cannot take at once.
 *
 * - Reads are level-triggered: one `read` of up to 64 KiB per report, so a
 *   busy peer cannot starve the others and no syscall is spent on EAGAIN. `onData` receives a view that is valid **only during the call**:
 *   copy what you keep.
 * - `write()` sends at once when nothing is queued; the rest is copied into
 *   the queue, `EPOLLOUT` interest is turned on only while the queue is not
 *   empty, and queued chunks go out with `writev`. `write()` returns false
 *   once `highWaterMark` bytes are queued; `onDrain` runs when the queue
 *   empties after that (pause the producer in between).
 * - `end()` half-closes (`shutdown(SHUT_WR)`) after the queue is flushed;
 *   `close()` closes after the flush; `abort()` closes at once with an RST
 *   (`SO_LINGER` 0). A peer's EOF calls `onEnd`, then closes the connection
 *   unless `allowHalfOpen` is set.
 * - Sends use `MSG_NOSIGNAL`: a vanished peer is an `EPIPE` error passed to
 *   `onClose`, never a SIGPIPE.
 *
 * @module
 */
import { MSG } from "../ffi/constants.ts";
import { EAGAIN, ErrnoError } from "../ffi/errno.ts";
import { recvFds, sendFds } from "../ffi/msghdr.ts";
import { writevChunks } from "../ffi/writev.ts";
import type { SocketAddress } from "../ffi/sockaddr.ts";
import type { Socket } from "../ffi/socket.ts";
import * as sys from "../ffi/syscalls.ts";
import { Interest } from "./interest.ts";
import type { Reactor } from "./reactor.ts";
import type { Readiness } from "./readiness.ts";
import type { Registration } from "./registration.ts";
import type { Timer } from "./timer_queue.ts";

/** Options for connections (also accepted by listeners and `connect`). */
export interface ConnectionOptions {
  /** Queued bytes at which `write()` starts returning false. Default 1 MiB. */
  highWaterMark?: number;
  /** Close the connection after this long without reads or writes. Default 0: never. */
  idleTimeoutMs?: number;
  /** Keep the write side open after the peer's EOF. Default false. */
  allowHalfOpen?: boolean;
  /**
   * Unix sockets: receive up to this many fds per read (`SCM_RIGHTS`, via
   * `recvmsg`) and hand them to `onFds`. Default 0: plain reads (fds sent by
   * the peer are then closed by the kernel).
   */
  receiveFds?: number;
}

/** Where a connection is in its life. */
export type ConnectionState = "open" | "ending" | "closing" | "closed";

const READ_BUFFER_SIZE = 64 * 1024;
const readBuf = new Uint8Array(READ_BUFFER_SIZE);

function onReady(ready: Readiness, reg: Registration<Connection>): void {
  reg.data._ready(ready);
}

/**
 * A stream connection on a reactor.
 *
 * @example An echo handler
 * ```ts ignore
 * listener.onConnection = (conn) => {
 *   conn.onData = (data) => {
 *     if (!conn.write(data)) conn.pause();
 *   };
 *   conn.onDrain = () => conn.resume();
 * };
 * ```
 */
export class Connection {
  /** The socket; the connection owns it and closes it. */
  readonly socket: Socket;
  /** The reactor driving it. */
  readonly reactor: Reactor;
  /** Bytes received. */
  bytesRead = 0;
  /** Bytes handed to the kernel. */
  bytesWritten = 0;
  /** Called with each chunk read. The view is only valid during the call. */
  onData: ((data: Uint8Array, conn: Connection) => void) | undefined;
  /** Called when the peer has finished sending (EOF). */
  onEnd: ((conn: Connection) => void) | undefined;
  /** Called when the output queue empties after `write()` returned false. */
  onDrain: ((conn: Connection) => void) | undefined;
  /** Called once when the connection is closed, with the error that closed it, if any. */
  onClose: ((conn: Connection, error?: Error) => void) | undefined;
  /**
   * Called with fds received alongside the next `onData` chunk (needs the
   * `receiveFds` option). The callee owns them and must close them.
   */
  onFds: ((fds: number[], conn: Connection) => void) | undefined;
  /** Anything the application wants to keep with the connection. */
  context: unknown;

  readonly #fd: number;
  readonly #reg: Registration<Connection>;
  #interest: number;
  #queue: Uint8Array[] = [];
  #head = 0; // index of the first unsent chunk
  #headOffset = 0; // bytes of queue[head] already sent
  #queued = 0;
  #state: ConnectionState = "open";
  #readPaused = false;
  #readEnded = false;
  #writeEnded = false;
  #needDrain = false;
  #highWaterMark: number;
  #allowHalfOpen: boolean;
  #idleTimeoutMs: number;
  #idleTimer: Timer | undefined;
  #lastActive: number;
  #receiveFds: number;

  /**
   * Wrap a connected, non-blocking socket and register it with the reactor.
   *
   * @example
   * ```ts ignore
   * const conn = new Connection(reactor, socket, { idleTimeoutMs: 30_000 });
   * ```
   */
  constructor(reactor: Reactor, socket: Socket, options: ConnectionOptions = {}) {
    this.reactor = reactor;
    this.socket = socket;
    this.#fd = socket.fd;
    this.#highWaterMark = options.highWaterMark ?? 1024 * 1024;
    this.#allowHalfOpen = options.allowHalfOpen ?? false;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? 0;
    this.#receiveFds = options.receiveFds ?? 0;
    this.#interest = Interest.READABLE;
    this.#reg = reactor.register<Connection>(this.#fd, this.#interest, onReady, this);
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
    return this.#queued;
  }

  /** Whether the peer's EOF has been read. */
  get readEnded(): boolean {
    return this.#readEnded;
  }

  /** The peer's address. @example `conn.remoteAddress()` */
  remoteAddress(): SocketAddress {
    return this.socket.remoteAddress();
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
        this.#destroy(
          new ErrnoError("read", 110, /* ETIMEDOUT */ { detail: "idle timeout" }),
          true,
        );
      } else {
        this.#armIdle(this.#idleTimeoutMs - idle);
      }
    }, delay);
  }

  #updateInterest(): void {
    if (this.#state === "closed") return;
    const want = (this.#readPaused || this.#readEnded ? 0 : Interest.READABLE) |
      (this.#queued > 0 ? Interest.WRITABLE : 0);
    if (want !== this.#interest) {
      this.#interest = want;
      this.#reg.modify(want);
    }
  }

  /** @internal Called by the reactor. */
  _ready(ready: Readiness): void {
    if (this.#queued > 0 && (ready.writable || ready.error)) {
      this.#flush();
      if (this.#state === "closed") return;
    }
    if ((this.#interest & Interest.READABLE) !== 0 && (ready.readable || ready.error)) this.#read();
  }

  #read(): void {
    // One read per report: the registration is level-triggered, so whatever
    // is left is reported by the next wait (as the C reference does). Reading
    // again after a full buffer would mostly cost an extra EAGAIN syscall.
    if (this.#receiveFds === 0) {
      this.#consume(sys.read(this.#fd, readBuf, READ_BUFFER_SIZE), "read");
      return;
    }
    const got = recvFds(this.#fd, readBuf, this.#receiveFds);
    if (got.fds.length > 0) {
      if (this.onFds) this.onFds(got.fds, this);
      else for (const fd of got.fds) sys.close(fd);
    }
    this.#consume(got.bytes, "recvmsg");
  }

  /** Hand `n` bytes of `readBuf` to `onData`, or handle EOF / -errno from `call`. */
  #consume(n: number, call: string): void {
    if (n > 0) {
      this.bytesRead += n;
      this.#lastActive = this.reactor.now;
      this.onData?.(readBuf.subarray(0, n), this);
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
   * ```ts ignore
   * conn.sendFds([accepted.fd], new Uint8Array([1]));
   * ```
   */
  sendFds(fds: readonly number[], data: Uint8Array): void {
    if (this.#state !== "open") {
      throw new Error(`Cannot send fds: the connection is ${this.#state}`);
    }
    if (this.#queued > 0) {
      throw new Error("Cannot send fds: output is still queued; wait for onDrain");
    }
    const n = sendFds(this.#fd, fds, data);
    if (n < 0) throw new ErrnoError("sendmsg", -n);
    this.bytesWritten += n;
    if (n < data.byteLength) {
      this.#enqueue(data.slice(n));
      this.#updateInterest();
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
   * empties. Throws once `end()` or `close()` has been called.
   *
   * @example
   * ```ts ignore
   * if (!conn.write(chunk)) producer.pause();
   * ```
   */
  write(data: Uint8Array): boolean {
    if (this.#state !== "open") {
      throw new Error(`Cannot write: the connection is ${this.#state}`);
    }
    const len = data.byteLength;
    if (len === 0) return this.#queued < this.#highWaterMark;
    if (this.#queued === 0) {
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
    if (this.#queued >= this.#highWaterMark) {
      this.#needDrain = true;
      return false;
    }
    return true;
  }

  #enqueue(chunk: Uint8Array): void {
    this.#queue.push(chunk);
    this.#queued += chunk.byteLength;
  }

  #flush(): void {
    const fd = this.#fd;
    while (this.#queued > 0) {
      const count = this.#queue.length - this.#head;
      let n: number;
      if (count === 1) {
        const chunk = this.#queue[this.#head]!;
        const rest = this.#headOffset === 0 ? chunk : chunk.subarray(this.#headOffset);
        n = sys.send(fd, rest, rest.byteLength, MSG.NOSIGNAL);
      } else {
        n = writevChunks(fd, this.#queue, this.#head, this.#headOffset);
      }
      if (n === -EAGAIN || n === 0) break;
      if (n < 0) {
        this.#destroy(new ErrnoError(count === 1 ? "send" : "writev", -n), false);
        return;
      }
      this.bytesWritten += n;
      this.#queued -= n;
      this.#lastActive = this.reactor.now;
      // advance over fully sent chunks
      let left = n;
      while (left > 0) {
        const chunk = this.#queue[this.#head]!;
        const remain = chunk.byteLength - this.#headOffset;
        if (left >= remain) {
          left -= remain;
          this.#queue[this.#head] = undefined as unknown as Uint8Array;
          this.#head++;
          this.#headOffset = 0;
        } else {
          this.#headOffset += left;
          left = 0;
        }
      }
    }
    if (this.#queued === 0) {
      this.#queue.length = 0;
      this.#head = 0;
      this.#headOffset = 0;
      this.#afterFlush();
    } else if (this.#head > 1024) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
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
    sys.shutdown(this.#fd, 1 /* SHUT_WR */);
    if (this.#readEnded) this.#destroy(undefined, false);
  }

  /**
   * Stop reading (turn off readable interest) until `resume()`.
   *
   * @example
   * ```ts ignore
   * conn.pause();
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
   * ```ts ignore
   * conn.resume();
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
   * ```ts ignore
   * conn.write(lastChunk);
   * conn.end();
   * ```
   */
  end(): void {
    if (this.#state !== "open") return;
    this.#state = "ending";
    if (this.#queued === 0) {
      this.#shutdownWrite();
    }
  }

  /**
   * Graceful close: stop reading, flush what is queued, then close.
   *
   * @example
   * ```ts ignore
   * conn.close();
   * ```
   */
  close(): void {
    if (this.#state === "closed" || this.#state === "closing") return;
    this.#state = "closing";
    this.#readPaused = true;
    if (this.#queued === 0) {
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
   * ```ts ignore
   * conn.abort();
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
    this.#queue = [];
    this.#queued = 0;
    try {
      this.#reg.deregister();
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
}
