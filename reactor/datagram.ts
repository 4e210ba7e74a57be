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
import type { Registration } from "./registration.ts";

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
  /** Largest datagram received whole (longer ones are truncated). Default 65 536. */
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

function onDatagramReady(_r: unknown, reg: Registration<DatagramSocket>): void {
  reg.data._receive();
}

/**
 * A datagram socket on a reactor.
 *
 * @example A UDP echo
 * ```ts ignore
 * const udp = DatagramSocket.open(reactor, { bind: { host: "127.0.0.1", port: 9001 } });
 * udp.onMessage = (data, from) => udp.send(data, from);
 * ```
 */
export class DatagramSocket {
  /** The socket (owned). */
  readonly socket: Socket;
  /** The reactor. */
  readonly reactor: Reactor;
  /** Called with each datagram; the view is only valid during the call. */
  onMessage: ((data: Uint8Array, from: SocketAddress, socket: DatagramSocket) => void) | undefined;
  /** Called when receiving fails (e.g. ECONNREFUSED after sending to a closed UDP port). */
  onError: ((error: ErrnoError) => void) | undefined;
  /** Counters. */
  readonly stats: DatagramStats = { sent: 0, dropped: 0, received: 0 };
  readonly #reg: Registration<DatagramSocket>;
  readonly #buf: Uint8Array;
  readonly #addr = new Uint8Array(SOCKADDR_STORAGE_SIZE);
  readonly #addrLen = new Uint32Array(1);
  #boundPath: string | undefined;
  #closed = false;

  private constructor(reactor: Reactor, socket: Socket, maxMessageSize: number) {
    this.reactor = reactor;
    this.socket = socket;
    this.#buf = new Uint8Array(maxMessageSize);
    this.#reg = reactor.register<DatagramSocket>(
      socket.fd,
      Interest.READABLE,
      onDatagramReady,
      this,
    );
  }

  /**
   * Create, bind and/or connect a datagram socket and start receiving.
   *
   * @example
   * ```ts ignore
   * const log = DatagramSocket.open(reactor, { connect: { path: "/dev/log" } });
   * ```
   */
  static open(reactor: Reactor, options: DatagramOptions = {}): DatagramSocket {
    const bindAddr = options.bind === undefined ? undefined : toAddress(options.bind);
    const peer = options.connect === undefined ? undefined : toAddress(options.connect);
    const family = bindAddr?.family ?? peer?.family ?? options.family ?? "inet";
    const socket = Socket.create(family, "dgram");
    let boundPath: string | undefined;
    try {
      if (options.reuseAddress) socket.setOption("reuseAddress", true);
      if (options.reusePort) socket.setOption("reusePort", true);
      if (options.broadcast) socket.setOption("broadcast", true);
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
    const d = new DatagramSocket(reactor, socket, options.maxMessageSize ?? 65536);
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
   * ```ts ignore
   * udp.send(new TextEncoder().encode("ping"), { family: "inet", address: "127.0.0.1", port: 9001 });
   * ```
   */
  send(data: Uint8Array, to?: SocketAddress): boolean {
    const sa = to === undefined ? null : encodeSockaddr(to);
    const r = sys.sendto(this.socket.fd, data, data.byteLength, 0x4000, sa);
    if (r >= 0) {
      this.stats.sent++;
      return true;
    }
    if (r === -EAGAIN || r === -105 /* ENOBUFS */) {
      this.stats.dropped++;
      return false;
    }
    throw new ErrnoError("sendto", -r, to === undefined ? {} : { detail: formatAddress(to) });
  }

  /** @internal */
  _receive(): void {
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
      const error = new ErrnoError("recvfrom", -n);
      if (this.onError) this.onError(error);
      else console.error(error.message);
      return;
    }
  }

  /**
   * Deregister and close; removes a Unix socket file it bound.
   *
   * @example
   * ```ts ignore
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
}
