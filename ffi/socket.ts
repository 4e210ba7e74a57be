/**
 * `Socket`: an owning, typed handle on a socket fd, closed exactly once.
 *
 * Sockets are created `SOCK_NONBLOCK | SOCK_CLOEXEC` unless asked otherwise.
 * Every failure throws an {@linkcode ErrnoError} naming the call and the
 * errno; the I/O methods return `null` for EAGAIN instead of throwing, so a
 * caller can drain a socket until it would block.
 *
 * @module
 */
import { AF, MSG, SHUT, SOCK } from "./constants.ts";
import { EAGAIN, EINPROGRESS, EINTR, ErrnoError } from "./errno.ts";
import {
  decodeSockaddr,
  encodeSockaddr,
  formatAddress,
  SOCKADDR_STORAGE_SIZE,
  type SocketAddress,
} from "./sockaddr.ts";
import {
  getSocketOption,
  setSocketOption,
  type SocketOptionName,
  type SocketOptionValue,
  type WritableSocketOptionName,
} from "./sockopt.ts";
import * as sys from "./syscalls.ts";
import { byteLengthOf, checkInt32, checkInteger, INT32_MAX } from "./_view.ts";

/** The default `listen(2)` backlog, as in nginx. */
export const DEFAULT_BACKLOG = 511;

/** Address families by name. */
export type SocketFamily = "inet" | "inet6" | "unix";
/** Socket types by name. */
export type SocketType = "stream" | "dgram" | "seqpacket";

/** Options for {@linkcode Socket.create}. */
export interface SocketCreateOptions {
  /** `SOCK_NONBLOCK` (default true). */
  nonblocking?: boolean;
  /** `SOCK_CLOEXEC` (default true). */
  cloexec?: boolean;
  /** The protocol number (default 0). */
  protocol?: number;
}

const FAMILIES: Record<SocketFamily, number> = { inet: AF.INET, inet6: AF.INET6, unix: AF.UNIX };
const TYPES: Record<SocketType, number> = {
  stream: SOCK.STREAM,
  dgram: SOCK.DGRAM,
  seqpacket: SOCK.SEQPACKET,
};

const addrBuf = new Uint8Array(SOCKADDR_STORAGE_SIZE);
const addrLen = new Uint32Array(1);

/**
 * The result of a non-blocking connect: `"connected"` at once (Unix sockets,
 * usually) or `"in-progress"` (wait for writability, then check
 * {@linkcode Socket.takeError}).
 */
export type ConnectState = "connected" | "in-progress";

/**
 * An owning socket handle.
 *
 * @example A TCP listener on an ephemeral loopback port
 * ```ts
 * import { Socket } from "@ffinet/ffinet/ffi";
 * using s = Socket.create("inet", "stream");
 * s.setOption("reuseAddress", true);
 * s.bind({ family: "inet", address: "127.0.0.1", port: 0 });
 * s.listen();
 * console.log(s.localAddress());
 * ```
 */
export class Socket implements Disposable {
  #fd: number;

  /** Wrap an fd this socket will own (and close). */
  constructor(fd: number) {
    this.#fd = checkInteger("wrap socket", "fd", fd, 0, INT32_MAX);
  }

  /**
   * Create a socket: `socket(2)` with `SOCK_NONBLOCK | SOCK_CLOEXEC` by default.
   *
   * @example
   * ```ts
   * import { Socket } from "@ffinet/ffinet/ffi";
   * using udp = Socket.create("inet6", "dgram");
   * ```
   */
  static create(
    family: SocketFamily,
    type: SocketType,
    options: SocketCreateOptions = {},
  ): Socket {
    const domain = FAMILIES[family];
    const base = TYPES[type];
    if (domain === undefined) {
      throw new TypeError(`Cannot create socket: unknown family "${family}"`);
    }
    if (base === undefined) throw new TypeError(`Cannot create socket: unknown type "${type}"`);
    const protocol = checkInt32("create socket", "protocol", options.protocol ?? 0);
    const flags = (options.nonblocking ?? true ? SOCK.NONBLOCK : 0) |
      (options.cloexec ?? true ? SOCK.CLOEXEC : 0);
    const fd = sys.socket(domain, base | flags, protocol);
    if (fd < 0) throw new ErrnoError("socket", -fd, { detail: `${family}/${type}` });
    return new Socket(fd);
  }

  /**
   * A connected pair (`socketpair(2)`), Unix stream by default.
   *
   * @example
   * ```ts
   * import { Socket } from "@ffinet/ffinet/ffi";
   * const [a, b] = Socket.pair();
   * a.close();
   * b.close();
   * ```
   */
  static pair(type: SocketType = "stream", options: SocketCreateOptions = {}): [Socket, Socket] {
    const base = TYPES[type];
    if (base === undefined) {
      throw new TypeError(`Cannot create socket pair: unknown type "${type}"`);
    }
    const protocol = checkInt32("create socket pair", "protocol", options.protocol ?? 0);
    const flags = (options.nonblocking ?? true ? SOCK.NONBLOCK : 0) |
      (options.cloexec ?? true ? SOCK.CLOEXEC : 0);
    const fds = new Int32Array(2);
    const r = sys.socketpair(AF.UNIX, base | flags, protocol, fds);
    if (r < 0) throw new ErrnoError("socketpair", -r);
    return [new Socket(fds[0]!), new Socket(fds[1]!)];
  }

  /** The fd. Throws once the socket is closed. */
  get fd(): number {
    if (this.#fd < 0) throw new Error("Cannot use socket: it is closed");
    return this.#fd;
  }

  /** Whether {@linkcode Socket.close} has run. */
  get closed(): boolean {
    return this.#fd < 0;
  }

  /**
   * Give up ownership: return the fd without closing it.
   *
   * @example
   * ```ts
   * import { Socket } from "@ffinet/ffinet/ffi";
   * import { sys } from "@ffinet/ffinet/ffi";
   * const sock = Socket.create("inet", "stream");
   * const fd = sock.release(); // the caller now closes fd
   * sys.close(fd);
   * ```
   */
  release(): number {
    const fd = this.fd;
    this.#fd = -1;
    return fd;
  }

  /**
   * `bind(2)`; throws an {@linkcode ErrnoError} naming the address (e.g. EADDRINUSE).
   *
   * @example
   * ```ts
   * import { Socket } from "@ffinet/ffinet/ffi";
   * using sock = Socket.create("inet", "stream");
   * sock.bind({ family: "inet", address: "127.0.0.1", port: 0 });
   * ```
   */
  bind(addr: SocketAddress): void {
    const sa = encodeSockaddr(addr);
    const r = sys.bind(this.fd, sa);
    if (r < 0) throw new ErrnoError("bind", -r, { detail: formatAddress(addr) });
  }

  /**
   * `listen(2)`; the backlog defaults to 511 as in nginx. Throws
   * `RangeError` unless `backlog` is an integer from 0 to `INT_MAX` (the
   * kernel caps it at `net.core.somaxconn`).
   *
   * @example
   * ```ts
   * import { Socket } from "@ffinet/ffinet/ffi";
   * using s = Socket.create("inet", "stream");
   * s.bind({ family: "inet", address: "127.0.0.1", port: 0 });
   * s.listen(1024);
   * ```
   */
  listen(backlog: number = DEFAULT_BACKLOG): void {
    checkInteger("listen", "backlog", backlog, 0, INT32_MAX);
    const r = sys.listen(this.fd, backlog);
    if (r < 0) throw new ErrnoError("listen", -r);
  }

  /**
   * `connect(2)`. On a non-blocking socket returns `"in-progress"` for
   * EINPROGRESS; wait for writability, then call {@linkcode Socket.takeError}.
   *
   * @example
   * ```ts
   * import { Socket } from "@ffinet/ffinet/ffi";
   * using server = Socket.create("inet", "stream");
   * server.bind({ family: "inet", address: "127.0.0.1", port: 0 });
   * server.listen();
   * using sock = Socket.create("inet", "stream");
   * if (sock.connect(server.localAddress()) === "in-progress") {
   *   // wait until writable (e.g. with the reactor), then:
   *   // sock.takeError();
   * }
   * ```
   */
  connect(addr: SocketAddress): ConnectState {
    const sa = encodeSockaddr(addr);
    const r = sys.connect(this.fd, sa);
    if (r === 0) return "connected";
    if (r === -EINPROGRESS || r === -EAGAIN) return "in-progress";
    throw new ErrnoError("connect", -r, { detail: formatAddress(addr) });
  }

  /**
   * `accept4(2)`: the next connection (non-blocking, CLOEXEC), or `null` when
   * none is waiting.
   *
   * @example
   * ```ts
   * import { Socket } from "@ffinet/ffinet/ffi";
   * using listener = Socket.create("inet", "stream");
   * listener.bind({ family: "inet", address: "127.0.0.1", port: 0 });
   * listener.listen();
   * for (let c; (c = listener.accept()) !== null;) c.close(); // none waiting yet
   * ```
   */
  accept(): Socket | null {
    const r = sys.accept4(this.fd, null, null, SOCK.NONBLOCK | SOCK.CLOEXEC);
    if (r >= 0) return new Socket(r);
    if (r === -EAGAIN) return null;
    throw new ErrnoError("accept4", -r);
  }

  /**
   * `read(2)` into all of `buf`: bytes read, 0 at EOF, or `null` when it would block.
   *
   * @example
   * ```ts
   * import { Socket } from "@ffinet/ffinet/ffi";
   * const [sock, peer] = Socket.pair();
   * peer.write(new Uint8Array([1, 2]));
   * sock.read(new Uint8Array(16)); // 2
   * sock.read(new Uint8Array(16)); // null: nothing more yet
   * sock.close();
   * peer.close();
   * ```
   */
  read(buf: Uint8Array): number | null {
    const r = sys.read(this.fd, buf);
    if (r >= 0) return r;
    if (r === -EAGAIN) return null;
    throw new ErrnoError("read", -r);
  }

  /**
   * `send(2)` with `MSG_NOSIGNAL` (a vanished peer is EPIPE, not SIGPIPE):
   * bytes written, or `null` when it would block.
   *
   * @example
   * ```ts
   * import { Socket } from "@ffinet/ffinet/ffi";
   * const [sock, peer] = Socket.pair();
   * sock.write(new TextEncoder().encode("hello")); // 5
   * sock.close();
   * peer.close();
   * ```
   */
  write(buf: Uint8Array): number | null {
    const r = sys.send(this.fd, buf, byteLengthOf("send", "buf", buf), MSG.NOSIGNAL);
    if (r >= 0) return r;
    if (r === -EAGAIN) return null;
    throw new ErrnoError("send", -r);
  }

  /**
   * `sendto(2)`: one datagram to `addr` (or to the connected peer).
   *
   * @example
   * ```ts
   * import { Socket } from "@ffinet/ffinet/ffi";
   * using udp = Socket.create("inet", "dgram");
   * const data = new TextEncoder().encode("ping");
   * udp.sendTo(data, { family: "inet", address: "127.0.0.1", port: 9000 });
   * ```
   */
  sendTo(buf: Uint8Array, addr?: SocketAddress): number | null {
    const sa = addr === undefined ? null : encodeSockaddr(addr);
    const r = sys.sendto(this.fd, buf, byteLengthOf("sendto", "buf", buf), MSG.NOSIGNAL, sa);
    if (r >= 0) return r;
    if (r === -EAGAIN) return null;
    throw new ErrnoError("sendto", -r, addr === undefined ? {} : { detail: formatAddress(addr) });
  }

  /**
   * `recvfrom(2)`: one datagram and its sender, or `null` when none waits.
   *
   * @example
   * ```ts
   * import { Socket } from "@ffinet/ffinet/ffi";
   * using udp = Socket.create("inet", "dgram");
   * udp.bind({ family: "inet", address: "127.0.0.1", port: 0 });
   * udp.sendTo(new Uint8Array([1]), udp.localAddress());
   * const got = udp.receiveFrom(new Uint8Array(64)); // { bytes: 1, from }, or null
   * ```
   */
  receiveFrom(buf: Uint8Array): { bytes: number; from: SocketAddress } | null {
    addrLen[0] = addrBuf.byteLength;
    const r = sys.recvfrom(this.fd, buf, byteLengthOf("recvfrom", "buf", buf), 0, addrBuf, addrLen);
    if (r >= 0) return { bytes: r, from: decodeSockaddr(addrBuf, addrLen[0]!) };
    if (r === -EAGAIN) return null;
    throw new ErrnoError("recvfrom", -r);
  }

  /**
   * `shutdown(2)`: `"read"`, `"write"` (the default) or `"both"`.
   *
   * @example
   * ```ts
   * import { Socket } from "@ffinet/ffinet/ffi";
   * const [sock, peer] = Socket.pair();
   * sock.shutdown("write");
   * peer.read(new Uint8Array(1)); // 0: EOF
   * sock.close();
   * peer.close();
   * ```
   */
  shutdown(how: "read" | "write" | "both" = "write"): void {
    const r = sys.shutdown(
      this.fd,
      how === "read" ? SHUT.RD : how === "write" ? SHUT.WR : SHUT.RDWR,
    );
    if (r < 0) throw new ErrnoError("shutdown", -r);
  }

  /**
   * The bound address (`getsockname(2)`).
   *
   * @example
   * ```ts
   * import { Socket } from "@ffinet/ffinet/ffi";
   * using sock = Socket.create("inet6", "stream");
   * sock.bind({ family: "inet6", address: "::1", port: 0 });
   * sock.localAddress(); // { family: "inet6", address: "::1", port: 4xxxx, ... }
   * ```
   */
  localAddress(): SocketAddress {
    addrLen[0] = addrBuf.byteLength;
    const r = sys.getsockname(this.fd, addrBuf, addrLen);
    if (r < 0) throw new ErrnoError("getsockname", -r);
    return decodeSockaddr(addrBuf, addrLen[0]!);
  }

  /**
   * The peer's address (`getpeername(2)`).
   *
   * @example
   * ```ts
   * import { Socket } from "@ffinet/ffinet/ffi";
   * const [sock, peer] = Socket.pair();
   * sock.remoteAddress(); // { family: "unix", path: "" }: an unnamed peer
   * sock.close();
   * peer.close();
   * ```
   */
  remoteAddress(): SocketAddress {
    addrLen[0] = addrBuf.byteLength;
    const r = sys.getpeername(this.fd, addrBuf, addrLen);
    if (r < 0) throw new ErrnoError("getpeername", -r);
    return decodeSockaddr(addrBuf, addrLen[0]!);
  }

  /**
   * Set an option by name, type- and range-checked (see `setSocketOption`).
   *
   * @example
   * ```ts
   * import { Socket } from "@ffinet/ffinet/ffi";
   * using sock = Socket.create("inet", "stream");
   * sock.setOption("noDelay", true).setOption("keepAlive", true);
   * ```
   */
  setOption<N extends WritableSocketOptionName>(name: N, value: SocketOptionValue<N>): this {
    setSocketOption(this.fd, name, value);
    return this;
  }

  /**
   * Read an option by name.
   *
   * @example
   * ```ts
   * import { Socket } from "@ffinet/ffinet/ffi";
   * using sock = Socket.create("inet", "stream");
   * sock.getOption("receiveBufferSize"); // e.g. 131072
   * ```
   */
  getOption<N extends SocketOptionName>(name: N): SocketOptionValue<N> {
    return getSocketOption(this.fd, name);
  }

  /**
   * Read and clear `SO_ERROR`; throws it as an {@linkcode ErrnoError} for
   * `call` (default `"connect"`) when set.
   *
   * @example
   * ```ts
   * import { Socket } from "@ffinet/ffinet/ffi";
   * using sock = Socket.create("inet", "stream");
   * sock.takeError(); // after a non-blocking connect became writable: nothing pending here
   * ```
   */
  takeError(call = "connect"): void {
    const e = getSocketOption(this.fd, "error");
    if (e !== 0) throw new ErrnoError(call, e);
  }

  /**
   * Close the fd. Idempotent: a second close does nothing, so an fd number
   * reused by someone else is never closed by mistake.
   *
   * @example
   * ```ts
   * import { Socket } from "@ffinet/ffinet/ffi";
   * const sock = Socket.create("inet", "stream");
   * sock.close();
   * sock.close(); // does nothing
   * ```
   */
  close(): void {
    const fd = this.#fd;
    if (fd < 0) return;
    this.#fd = -1;
    const r = sys.close(fd);
    if (r < 0 && r !== -EINTR /* released anyway */) throw new ErrnoError("close", -r);
  }

  /** Same as {@linkcode Socket.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}
