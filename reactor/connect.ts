/**
 * `connect()`: a non-blocking client connection on a {@linkcode Reactor}.
 *
 * The socket is created non-blocking; `connect(2)` returns EINPROGRESS; the
 * reactor waits for writability; `SO_ERROR` then tells success from failure.
 * Failures reject with an `ErrnoError` naming the errno (`ECONNREFUSED`,
 * `EHOSTUNREACH`, ...); a timeout rejects with `ETIMEDOUT`.
 *
 * @module
 */
import { ErrnoError, ETIMEDOUT } from "../ffi/errno.ts";
import { formatAddress, ipAddress, type SocketAddress } from "../ffi/sockaddr.ts";
import { Socket } from "../ffi/socket.ts";
import { Connection, type ConnectionOptions } from "./connection.ts";
import { Interest } from "./interest.ts";
import type { Reactor } from "./reactor.ts";

/** Where to connect: a TCP host and port, a Unix path, or an address. */
export type ConnectTarget = { host?: string; port: number } | { path: string } | SocketAddress;

/** Options for {@linkcode connect}. */
export interface ConnectOptions extends ConnectionOptions {
  /** Give up after this long (ETIMEDOUT). Default 10 000 ms; 0 waits for the kernel. */
  timeoutMs?: number;
  /** `TCP_NODELAY` on TCP connections. Default true. */
  noDelay?: boolean;
  /** Abort the attempt. */
  signal?: AbortSignal;
}

function toAddress(target: ConnectTarget): SocketAddress {
  if ("family" in target) return target;
  if ("path" in target) return { family: "unix", path: target.path };
  return ipAddress(target.host ?? "127.0.0.1", target.port);
}

/**
 * Connect to a server. Resolves with an open {@linkcode Connection}.
 *
 * @example
 * ```ts ignore
 * const conn = await connect(reactor, { host: "127.0.0.1", port: 8080 }, { timeoutMs: 2000 });
 * conn.write(new TextEncoder().encode("GET / HTTP/1.0\r\n\r\n"));
 * ```
 */
export function connect(
  reactor: Reactor,
  target: ConnectTarget,
  options: ConnectOptions = {},
): Promise<Connection> {
  let addr: SocketAddress;
  let socket: Socket;
  try {
    addr = toAddress(target);
    socket = Socket.create(addr.family, "stream");
  } catch (e) {
    return Promise.reject(e);
  }
  const { timeoutMs = 10_000, noDelay = true, signal, ...connOptions } = options;
  const finish = (): Connection => {
    if (addr.family !== "unix" && noDelay) socket.setOption("noDelay", true);
    return new Connection(reactor, socket, connOptions);
  };
  try {
    signal?.throwIfAborted();
    if (socket.connect(addr) === "connected") return Promise.resolve(finish());
  } catch (e) {
    socket.close();
    return Promise.reject(e);
  }
  return new Promise<Connection>((resolve, reject) => {
    let settled = false;
    const settle = (error: unknown, ok?: () => Connection) => {
      if (settled) return;
      settled = true;
      timer?.cancel();
      signal?.removeEventListener("abort", onAbort);
      reg.deregister();
      if (error !== undefined) {
        socket.close();
        reject(error);
        return;
      }
      try {
        resolve(ok!());
      } catch (e) {
        socket.close();
        reject(e);
      }
    };
    const reg = reactor.register(socket.fd, Interest.WRITABLE, () => {
      let errno: number;
      try {
        errno = socket.getOption("error");
      } catch (e) {
        settle(e);
        return;
      }
      if (errno !== 0) settle(new ErrnoError("connect", errno, { detail: formatAddress(addr) }));
      else settle(undefined, finish);
    });
    const timer = timeoutMs > 0
      ? reactor.setTimeout(
        () => settle(new ErrnoError("connect", ETIMEDOUT, { detail: formatAddress(addr) })),
        timeoutMs,
      )
      : undefined;
    const onAbort = () => settle(signal!.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
