/**
 * `DatagramSocket`: UDP (IPv4/IPv6) and Unix datagram sockets on a
 * {@linkcode Reactor}: bind (with `SO_REUSEPORT` if asked: several sockets,
 * processes or Workers share one UDP port and the kernel spreads datagrams),
 * connect (e.g. to `/dev/log`), `send` with or without an address, and
 * `onMessage` with the sender's address.
 *
 * A datagram the kernel cannot take now (EAGAIN: the socket buffer is full)
 * is dropped and counted, never queued: datagrams are allowed to be lost,
 * and a sender must never block the reactor.
 *
 * @module
 */
import { MSG } from "../ffi/constants.ts";
import { EAGAIN, ErrnoError } from "../ffi/errno.ts";
import {
  decodeSockaddr,
  encodeSockaddr,
  formatAddress,
  ipAddress,
  SOCKADDR_STORAGE_SIZE,
  type SocketAddress,
} from "../ffi/sockaddr.ts";
import { Socket, type SocketFamily } from "../ffi/socket.ts";
import * as sys from "../ffi/syscalls.ts";
import { Interest } from "./interest.ts";
import type { Reactor } from "./reactor.ts";
import type { Registration } from "./poller.ts";
import { booleanOption, integerOption } from "../ffi/validate.ts";

/** `ENOBUFS`: the interface queue is full; the datagram is dropped like on EAGAIN. */
const ENOBUFS = 105;
/** The largest datagram buffer: 16 MiB (a UDP datagram is at most 64 KiB). */
const MAX_MESSAGE_SIZE = 16 * 1024 * 1024;

/** Options for {@linkcode DatagramSocket.open}. */
export interface DatagramOptions {
  /** The family when neither `bind` nor `connect` says it. Default `"inet"`. */
  family?: SocketFamily;
  /** Bind here: a TCP-style host/port, a Unix path, or an address. */
  bind?: { host?: string; port: number } | { path: string } | SocketAddress;
  /** Connect here (fixes the peer; `send` may omit the address). */
  connect?: { host?: string; port: number } | { path: string } | SocketAddress;
  /** `SO_REUSEPORT`. Default false. */
  reusePort?: boolean;
  /** `SO_REUSEADDR`. Default false. */
  reuseAddress?: boolean;
  /** `SO_BROADCAST`. Default false. */
  broadcast?: boolean;
  /** Largest datagram received whole (longer ones are truncated). Default 65 536; 1 to 16 MiB. */
  maxMessageSize?: number;
}

/** Counters of a datagram socket. */
export interface DatagramStats {
  /** Datagrams sent. */
  sent: number;
  /** Datagrams dropped because the kernel could not take them (EAGAIN). */
  dropped: number;
  /** Datagrams received. */
  received: number;
}

function toAddress(
  target: { host?: string; port: number } | { path: string } | SocketAddress,
): SocketAddress {
  if ("family" in target) return target;
  if ("path" in target) return { family: "unix", path: target.path };
  return ipAddress(target.host ?? "127.0.0.1", target.port);
}

/**
 * A datagram socket on a reactor.
 *
 * A reply to `from` goes to exactly the sender's address: a Unix peer's name
 * is kept as its exact bytes (`from.bytes` when it is not valid UTF-8).
 *
 * @example A UDP echo
 * ```ts
 * import { DatagramSocket, Reactor } from "@ffinet/ffinet/reactor";
 * await using reactor = new Reactor();
 * using udp = DatagramSocket.open(reactor, { bind: { host: "127.0.0.1", port: 0 } });
 * udp.onMessage = (data, from) => udp.send(data, from);
 * ```
 */
export class DatagramSocket implements Disposable {
  /** The socket (owned). */
  readonly socket: Socket;
  /** The reactor. */
  readonly reactor: Reactor;
  /** Called with each datagram; the view is only valid during the call. */
  onMessage: ((data: Uint8Array, from: SocketAddress, socket: DatagramSocket) => void) | undefined;
  /**
   * Called when receiving fails (e.g. ECONNREFUSED after sending to a closed
   * UDP port), and with errors thrown by `onMessage`. When unset, they go to
   * the reactor's `onError`.
   */
  onError: ((error: unknown) => void) | undefined;
  /** Counters. */
  readonly stats: DatagramStats = { sent: 0, dropped: 0, received: 0 };
  readonly #reg: Registration<DatagramSocket>;
  readonly #buf: Uint8Array;
  readonly #addr = new Uint8Array(SOCKADDR_STORAGE_SIZE);
  readonly #addrLen = new Uint32Array(1);
  #boundPath: string | undefined;
  #closed = false;

  /** @ignore Internal: see the static factory. */
  private constructor(reactor: Reactor, socket: Socket, maxMessageSize: number) {
    this.reactor = reactor;
    this.socket = socket;
    this.#buf = new Uint8Array(maxMessageSize);
    this.#reg = reactor.register<DatagramSocket>(
      socket.fd,
      Interest.READABLE,
      DatagramSocket.#onReady,
      this,
    );
  }

  static #onReady(_r: unknown, reg: Registration<DatagramSocket>): void {
    const d = reg.data;
    try {
      d.#receive();
    } catch (e) {
      if (d.onError === undefined) throw e; // the reactor reports it
      d.onError(e);
    }
  }

  /**
   * Create, bind and/or connect a datagram socket and start receiving.
   *
   * @example
   * ```ts
   * import { DatagramSocket, Reactor } from "@ffinet/ffinet/reactor";
   * await using reactor = new Reactor();
   * using udp = DatagramSocket.open(reactor, { connect: { host: "127.0.0.1", port: 9 } });
   * ```
   */
  static open(reactor: Reactor, options: DatagramOptions = {}): DatagramSocket {
    const action = "open datagram socket";
    if (typeof options !== "object" || options === null) {
      throw new TypeError(`Cannot ${action}: options must be an object`);
    }
    const maxMessageSize = integerOption(
      action,
      "maxMessageSize",
      options.maxMessageSize,
      65536,
      1,
      MAX_MESSAGE_SIZE,
    );
    const reuseAddress = booleanOption(action, "reuseAddress", options.reuseAddress, false);
    const reusePort = booleanOption(action, "reusePort", options.reusePort, false);
    const broadcast = booleanOption(action, "broadcast", options.broadcast, false);
    const bindAddr = options.bind === undefined ? undefined : toAddress(options.bind);
    const peer = options.connect === undefined ? undefined : toAddress(options.connect);
    const family = bindAddr?.family ?? peer?.family ?? options.family ?? "inet";
    const socket = Socket.create(family, "dgram");
    let boundPath: string | undefined;
    try {
      if (reuseAddress) socket.setOption("reuseAddress", true);
      if (reusePort) socket.setOption("reusePort", true);
      if (broadcast) socket.setOption("broadcast", true);
      if (bindAddr !== undefined) {
        socket.bind(bindAddr);
        if (bindAddr.family === "unix" && !bindAddr.path.startsWith("\0") && bindAddr.path !== "") {
          boundPath = bindAddr.path;
        }
      }
      if (peer !== undefined) socket.connect(peer);
    } catch (e) {
      socket.close();
      if (boundPath !== undefined) Deno.removeSync(boundPath);
      throw e;
    }
    let d: DatagramSocket;
    try {
      d = new DatagramSocket(reactor, socket, maxMessageSize);
    } catch (e) {
      socket.close();
      if (boundPath !== undefined) Deno.removeSync(boundPath);
      throw e;
    }
    d.#boundPath = boundPath;
    return d;
  }

  /** The bound address. @example `udp.address()` */
  address(): SocketAddress {
    return this.socket.localAddress();
  }

  /**
   * Send one datagram (to `to`, or to the connected peer). Returns false when
   * the kernel could not take it now (it is dropped and counted); throws an
   * `ErrnoError` for real errors (e.g. ECONNREFUSED, EMSGSIZE).
   *
   * @example
   * ```ts
   * import { DatagramSocket, Reactor } from "@ffinet/ffinet/reactor";
   * await using reactor = new Reactor();
   * using udp = DatagramSocket.open(reactor, { bind: { host: "127.0.0.1", port: 0 } });
   * udp.send(new TextEncoder().encode("ping"), udp.address());
   * ```
   */
  send(data: Uint8Array, to?: SocketAddress): boolean {
    if (this.#closed) {
      throw new Deno.errors.BadResource("Cannot send: the datagram socket is closed");
    }
    const sa = to === undefined ? null : encodeSockaddr(to);
    const r = sys.sendto(this.socket.fd, data, data.byteLength, MSG.NOSIGNAL, sa);
    if (r >= 0) {
      this.stats.sent++;
      return true;
    }
    if (r === -EAGAIN || r === -ENOBUFS) {
      this.stats.dropped++;
      return false;
    }
    throw new ErrnoError("sendto", -r, to === undefined ? {} : { detail: formatAddress(to) });
  }

  #receive(): void {
    const fd = this.socket.fd;
    for (let i = 0; i < 64 && !this.#closed; i++) {
      this.#addrLen[0] = this.#addr.byteLength;
      const n = sys.recvfrom(fd, this.#buf, this.#buf.byteLength, 0, this.#addr, this.#addrLen);
      if (n >= 0) {
        this.stats.received++;
        this.onMessage?.(
          this.#buf.subarray(0, n),
          decodeSockaddr(this.#addr, this.#addrLen[0]!),
          this,
        );
        continue;
      }
      if (n === -EAGAIN) return;
      throw new ErrnoError("recvfrom", -n);
    }
  }

  /**
   * Deregister and close; removes a Unix socket file it bound.
   *
   * @example
   * ```ts
   * import { DatagramSocket, Reactor } from "@ffinet/ffinet/reactor";
   * await using reactor = new Reactor();
   * const udp = DatagramSocket.open(reactor);
   * udp.close();
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#reg.deregister();
    this.socket.close();
    if (this.#boundPath !== undefined) {
      try {
        Deno.removeSync(this.#boundPath);
      } catch { /* gone */ }
    }
  }

  /** Close (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }
}
