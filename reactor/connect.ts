/**
 * `connect()`: a non-blocking client connection on a {@linkcode Reactor}.
 *
 * A host name is resolved as `Deno.connect` resolves it (`getaddrinfo(3)`,
 * on a pool thread), and the addresses are tried in the order it returns
 * them until one connects. Each socket is created non-blocking;
 * `connect(2)` returns EINPROGRESS; the reactor waits for writability;
 * `SO_ERROR` then tells success from failure. Failures reject with an
 * `ErrnoError` naming the errno (`ECONNREFUSED`, `EHOSTUNREACH`, ...), an
 * unknown name with an `AddressLookupError`, and the timeout with
 * `ETIMEDOUT`.
 *
 * This is the `connect` of `mod.ts`. The others are lower or other layers:
 * `Socket.connect` is `connect(2)` on one socket you own, `sys.connect` in
 * `./ffi` is the raw syscall, and `connect` in `./deno` mirrors
 * `Deno.connect` (a `Deno.Conn`).
 *
 * @module
 */
import { parseIPv4, parseIPv6 } from "../ffi/inet.ts";
import { ErrnoError, ETIMEDOUT } from "../ffi/errno.ts";
import { resolveHost } from "../ffi/dns.ts";
import { formatAddress, ipAddress, type SocketAddress } from "../ffi/sockaddr.ts";
import { Socket } from "../ffi/socket.ts";
import { Connection, type ConnectionOptions, resolveConnectionOptions } from "./connection.ts";
import { Interest } from "./interest.ts";
import type { Reactor } from "./reactor.ts";
import { MAX_TIMER_MS } from "./timer_queue.ts";
import { booleanOption, finiteOption, integerOption, signalOption } from "../ffi/validate.ts";

/**
 * Where to connect: a host (a name such as `"localhost"`, or an IPv4/IPv6
 * address; default `"127.0.0.1"`) and port, a Unix path, or an address.
 */
export type ConnectTarget = { host?: string; port: number } | { path: string } | SocketAddress;

/** Options for {@linkcode connect}. */
export interface ConnectOptions extends ConnectionOptions {
  /**
   * Give up after this long, name resolution included (ETIMEDOUT). Default
   * 10 000 ms; 0 waits for the kernel. A number of ms in 0 to 2^31 - 1.
   */
  timeoutMs?: number;
  /** `TCP_NODELAY` on TCP connections. Default true. */
  noDelay?: boolean;
  /** Abort the attempt (rejects with the signal's reason); an aborted signal rejects at once. */
  signal?: AbortSignal;
}

interface CheckedConnect {
  timeoutMs: number;
  noDelay: boolean;
  signal: AbortSignal | undefined;
  connection: ConnectionOptions;
}

function checkConnect(target: ConnectTarget, options: ConnectOptions): CheckedConnect {
  const action = "connect";
  if (typeof target !== "object" || target === null) {
    throw new TypeError("Cannot connect: the target must be an object");
  }
  if (typeof options !== "object" || options === null) {
    throw new TypeError("Cannot connect: options must be an object");
  }
  if (!("family" in target) && !("path" in target)) {
    integerOption(action, "port", target.port, 0, 0, 65535);
    if (target.host !== undefined && (typeof target.host !== "string" || target.host === "")) {
      throw new TypeError(`Cannot connect: host ${String(target.host)} is not a host name`);
    }
  }
  const { timeoutMs, noDelay, signal, ...connection } = options;
  resolveConnectionOptions(action, connection);
  return {
    timeoutMs: finiteOption(action, "timeoutMs", timeoutMs, 10_000, { min: 0, max: MAX_TIMER_MS }),
    noDelay: booleanOption(action, "noDelay", noDelay, true),
    connection,
    // Last: an already-aborted signal throws before any resource is taken.
    signal: signalOption(action, signal),
  };
}

/** A host that needs no lookup: an IP literal (bracketed IPv6 too). */
function literalAddress(host: string, port: number): SocketAddress | undefined {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  if (parseIPv4(bare) !== null || parseIPv6(bare) !== null) return ipAddress(bare, port);
  return undefined;
}

/**
 * Connect to a server. Resolves with an open {@linkcode Connection}.
 * Options are checked first (a `RangeError` naming the option).
 *
 * @example
 * ```ts
 * import { connect, Listener, Reactor } from "@ffinet/ffinet/reactor";
 * import type { InetAddress } from "@ffinet/ffinet/ffi";
 * await using reactor = new Reactor();
 * using listener = Listener.listen(reactor, { host: "127.0.0.1", port: 0 });
 * const { port } = listener.address() as InetAddress;
 * const running = reactor.run();
 * using conn = await connect(reactor, { host: "localhost", port }, { timeoutMs: 2000 });
 * conn.write(new TextEncoder().encode("GET / HTTP/1.0\r\n\r\n"));
 * reactor.stop();
 * await running;
 * ```
 */
export async function connect(
  reactor: Reactor,
  target: ConnectTarget,
  options: ConnectOptions = {},
): Promise<Connection> {
  const checked = checkConnect(target, options);
  const deadline = checked.timeoutMs > 0 ? performance.now() + checked.timeoutMs : Infinity;
  let addrs: SocketAddress[];
  if ("family" in target) addrs = [target];
  else if ("path" in target) addrs = [{ family: "unix", path: target.path }];
  else {
    const host = target.host ?? "127.0.0.1";
    const literal = literalAddress(host, target.port);
    addrs = literal !== undefined
      ? [literal]
      : await lookup(reactor, host, target.port, deadline, checked.signal);
  }
  let lastError: unknown;
  for (const addr of addrs) {
    checked.signal?.throwIfAborted();
    const left = deadline - performance.now();
    if (left <= 0) throw timedOut(addr);
    try {
      return await attempt(reactor, addr, checked, deadline === Infinity ? 0 : left);
    } catch (e) {
      // A refused or unreachable address: try the next one, as Deno does.
      if (!(e instanceof ErrnoError) || e.errno === ETIMEDOUT) throw e;
      lastError = e;
    }
  }
  throw lastError ?? new Error(`Cannot connect: no address for ${formatTarget(target)}`);
}

function formatTarget(target: ConnectTarget): string {
  if ("family" in target) return formatAddress(target);
  if ("path" in target) return target.path;
  return `${target.host ?? "127.0.0.1"}:${target.port}`;
}

function timedOut(addr: SocketAddress | string): ErrnoError {
  return new ErrnoError("connect", ETIMEDOUT, {
    detail: typeof addr === "string" ? addr : formatAddress(addr),
  });
}

/** Resolve `host`, giving up at `deadline` or when `signal` aborts. */
function lookup(
  reactor: Reactor,
  host: string,
  port: number,
  deadline: number,
  signal: AbortSignal | undefined,
): Promise<SocketAddress[]> {
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (fn: () => void) => {
      if (done) return;
      done = true;
      timer?.cancel();
      signal?.removeEventListener("abort", onAbort);
      fn();
    };
    const onAbort = () => finish(() => reject(signal!.reason));
    const timer = deadline === Infinity ? undefined : reactor.setTimeout(
      () => finish(() => reject(timedOut(`${host}:${port}`))),
      Math.max(0, Math.min(deadline - performance.now(), MAX_TIMER_MS)),
    );
    signal?.addEventListener("abort", onAbort, { once: true });
    resolveHost(host, { port }).then(
      (addrs) => finish(() => resolve(addrs)),
      (e) => finish(() => reject(e)),
    );
  });
}

/** One connection attempt to one address. */
function attempt(
  reactor: Reactor,
  addr: SocketAddress,
  checked: CheckedConnect,
  timeoutMs: number,
): Promise<Connection> {
  const socket = Socket.create(addr.family, "stream");
  const finish = (): Connection => {
    if (addr.family !== "unix" && checked.noDelay) socket.setOption("noDelay", true);
    return new Connection(reactor, socket, checked.connection);
  };
  try {
    if (socket.connect(addr) === "connected") return Promise.resolve(finish());
  } catch (e) {
    socket.close();
    return Promise.reject(e);
  }
  const signal = checked.signal;
  return new Promise<Connection>((resolve, reject) => {
    let settled = false;
    let reg: { deregister(): void } | undefined;
    let timer: { cancel(): void } | undefined;
    const settle = (error: unknown, ok?: () => Connection) => {
      if (settled) return;
      settled = true;
      timer?.cancel();
      signal?.removeEventListener("abort", onAbort);
      reg?.deregister();
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
    const onAbort = () => settle(signal!.reason);
    try {
      reg = reactor.register(socket.fd, Interest.WRITABLE, () => {
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
      if (timeoutMs > 0) {
        timer = reactor.setTimeout(() => settle(timedOut(addr)), timeoutMs);
      }
      signal?.addEventListener("abort", onAbort, { once: true });
    } catch (e) {
      settle(e);
    }
  });
}
