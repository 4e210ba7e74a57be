/**
 * `Listener`: a listening stream socket (TCP over IPv4/IPv6/dual-stack, Unix
 * path or abstract name, or an inherited fd) on a {@linkcode Reactor}, making
 * a {@linkcode Connection} of every accepted socket.
 *
 * Each readiness report accepts **until EAGAIN**. When `accept4` fails with
 * EMFILE/ENFILE (no fd left), the listener uses the idle-fd trick of muduo's
 * `Acceptor` and libuv's `uv__emfile_trick`: it keeps one spare fd open on
 * `/dev/null`, closes it to make room, accepts the pending connection and
 * closes it at once (the client sees the connection closed, instead of the
 * listener spinning on a level-triggered readiness it can never clear), then
 * reopens the spare. If even the spare cannot be reopened, accepting pauses
 * and retries after `emfileRetryMs`. Serving resumes by itself as fds free up.
 *
 * @module
 */
import { O } from "../ffi/constants.ts";
import {
  EAGAIN,
  ECONNABORTED,
  ECONNREFUSED,
  EMFILE,
  ENFILE,
  ENOENT,
  ErrnoError,
} from "../ffi/errno.ts";
import { openFile, umask } from "../ffi/process.ts";
import { ipAddress, type SocketAddress } from "../ffi/sockaddr.ts";
import { Socket } from "../ffi/socket.ts";
import * as sys from "../ffi/syscalls.ts";
import { Connection, type ConnectionOptions } from "./connection.ts";
import { Interest } from "./interest.ts";
import type { Reactor } from "./reactor.ts";
import type { Registration } from "./registration.ts";
import type { Timer } from "./timer_queue.ts";

/** Where to listen: a TCP host and port, a Unix path, or an inherited fd. */
export type ListenTarget =
  | { host?: string; port: number }
  | { path: string; mode?: number }
  | { fd: number };

/** Options for {@linkcode Listener.listen}. */
export type ListenOptions = ListenTarget & {
  /** `listen(2)` backlog. Default 511. */
  backlog?: number;
  /** `SO_REUSEADDR` (TCP). Default true. */
  reuseAddress?: boolean;
  /** `SO_REUSEPORT`: several listeners (processes, Workers) share the port. Default false. */
  reusePort?: boolean;
  /** `IPV6_V6ONLY` for an IPv6 host; false (the default) makes `::` dual-stack. */
  v6Only?: boolean;
  /** `TCP_NODELAY` on accepted TCP connections. Default true. */
  noDelay?: boolean;
  /** Options for each accepted connection. */
  connection?: ConnectionOptions;
  /** How long accepting pauses when no spare fd is left for the EMFILE trick. Default 100 ms. */
  emfileRetryMs?: number;
};

/** Counters a listener keeps. */
export interface ListenerStats {
  /** Connections accepted and handed to `onConnection`. */
  accepted: number;
  /** Connections accepted and closed at once because no fd was left (EMFILE trick). */
  shed: number;
  /** Times accepting paused because even the spare fd could not be reopened. */
  pauses: number;
}

const CREATED_PATHS = new Set<string>();

function onListenReady(_ready: unknown, reg: Registration<Listener>): void {
  reg.data._accept();
}

/**
 * A listening socket on a reactor.
 *
 * @example
 * ```ts ignore
 * const listener = Listener.listen(reactor, { host: "127.0.0.1", port: 8080 }, (conn) => {
 *   conn.onData = (data) => conn.write(data);
 * });
 * ```
 */
export class Listener {
  /** The listening socket (owned). */
  readonly socket: Socket;
  /** The reactor. */
  readonly reactor: Reactor;
  /** Called with every accepted connection. */
  onConnection: (conn: Connection) => void;
  /** Called when accepting fails in a way the listener cannot absorb. */
  onError: ((error: Error) => void) | undefined;
  /** Counters. */
  readonly stats: ListenerStats = { accepted: 0, shed: 0, pauses: 0 };
  readonly #reg: Registration<Listener>;
  readonly #isTcp: boolean;
  readonly #noDelay: boolean;
  readonly #connOptions: ConnectionOptions;
  readonly #retryMs: number;
  readonly #unixPath: string | undefined;
  #idleFd: number;
  #paused = false;
  #retry: Timer | undefined;
  #closed = false;

  private constructor(
    reactor: Reactor,
    socket: Socket,
    options: ListenOptions,
    isTcp: boolean,
    unixPath: string | undefined,
    onConnection: (conn: Connection) => void,
  ) {
    this.reactor = reactor;
    this.socket = socket;
    this.onConnection = onConnection;
    this.#isTcp = isTcp;
    this.#unixPath = unixPath;
    this.#noDelay = options.noDelay ?? true;
    this.#connOptions = options.connection ?? {};
    this.#retryMs = options.emfileRetryMs ?? 100;
    this.#idleFd = openIdleFd();
    this.#reg = reactor.register<Listener>(socket.fd, Interest.READABLE, onListenReady, this);
  }

  /**
   * Bind and listen (or adopt an inherited listening fd), and start accepting.
   * Failures throw an `ErrnoError` naming the call, e.g.
   * `Cannot bind: EADDRINUSE (Address already in use) [127.0.0.1:8080]`.
   *
   * @example
   * ```ts ignore
   * const l = Listener.listen(reactor, { host: "::", port: 0, reusePort: true });
   * console.log(l.address());
   * ```
   */
  static listen(
    reactor: Reactor,
    options: ListenOptions,
    onConnection: (conn: Connection) => void = (conn) => conn.close(),
  ): Listener {
    if ("fd" in options) {
      const socket = adoptListeningFd(options.fd);
      const domain = socket.getOption("domain");
      return new Listener(reactor, socket, options, domain !== 1, undefined, onConnection);
    }
    if ("path" in options) {
      const socket = Socket.create("unix", "stream");
      try {
        const abstract = options.path.startsWith("\0");
        if (!abstract) removeStaleSocket(options.path);
        bindUnix(socket, options.path, options.mode);
        socket.listen(options.backlog ?? 511);
        if (!abstract) CREATED_PATHS.add(options.path);
      } catch (e) {
        socket.close();
        throw e;
      }
      return new Listener(
        reactor,
        socket,
        options,
        false,
        options.path.startsWith("\0") ? undefined : options.path,
        onConnection,
      );
    }
    const addr = ipAddress(options.host ?? "127.0.0.1", options.port);
    const socket = Socket.create(addr.family, "stream");
    try {
      if (options.reuseAddress ?? true) socket.setOption("reuseAddress", true);
      if (options.reusePort) socket.setOption("reusePort", true);
      if (addr.family === "inet6") socket.setOption("v6Only", options.v6Only ?? false);
      socket.bind(addr);
      socket.listen(options.backlog ?? 511);
    } catch (e) {
      socket.close();
      throw e;
    }
    return new Listener(reactor, socket, options, true, undefined, onConnection);
  }

  /** The bound address (with the real port when 0 was asked). @example `l.address()` */
  address(): SocketAddress {
    return this.socket.localAddress();
  }

  /** Whether accepting is paused. */
  get paused(): boolean {
    return this.#paused;
  }

  /** @internal */
  _accept(): void {
    const lfd = this.socket.fd;
    for (;;) {
      const fd = sys.accept4(lfd, null, null, 0o4000 | 0o2000000);
      if (fd >= 0) {
        this.#adopt(fd);
        if (this.#closed) return;
        continue;
      }
      if (fd === -EAGAIN) return;
      if (fd === -EMFILE || fd === -ENFILE) {
        if (this.#shed(lfd)) continue;
        return;
      }
      if (fd === -ECONNABORTED || fd === -71 /* EPROTO */ || fd === -1 /* EPERM */) continue;
      // ENOBUFS, ENOMEM and anything unexpected: back off instead of spinning.
      this.#pauseFor(this.#retryMs);
      const error = new ErrnoError("accept4", -fd);
      if (this.onError) this.onError(error);
      else console.error(error.message);
      return;
    }
  }

  #adopt(fd: number): void {
    const socket = new Socket(fd);
    let conn: Connection;
    try {
      if (this.#isTcp && this.#noDelay) socket.setOption("noDelay", true);
      conn = new Connection(this.reactor, socket, this.#connOptions);
    } catch (e) {
      socket.close();
      this.onError?.(e as Error);
      return;
    }
    this.stats.accepted++;
    try {
      this.onConnection(conn);
    } catch (e) {
      // One connection's failure (e.g. a peer that reset before
      // remoteAddress() could be read) must not take the listener down.
      conn.abort(e as Error);
      if (this.onError) this.onError(e as Error);
      else console.error(`ffinet listener: onConnection threw: ${(e as Error)?.message ?? e}`);
    }
  }

  /** The EMFILE trick: returns true when one pending connection was shed. */
  #shed(lfd: number): boolean {
    if (this.#idleFd < 0) {
      this.#idleFd = openIdleFd();
      if (this.#idleFd < 0) {
        this.#pauseFor(this.#retryMs);
        return false;
      }
    }
    sys.close(this.#idleFd);
    this.#idleFd = -1;
    const fd = sys.accept4(lfd, null, null, 0o2000000);
    if (fd >= 0) {
      sys.close(fd);
      this.stats.shed++;
    }
    this.#idleFd = openIdleFd();
    if (this.#idleFd < 0) {
      this.#pauseFor(this.#retryMs);
      return false;
    }
    return fd >= 0;
  }

  #pauseFor(ms: number): void {
    if (this.#closed) return;
    this.pause();
    this.stats.pauses++;
    this.#retry?.cancel();
    this.#retry = this.reactor.setTimeout(() => {
      this.#retry = undefined;
      if (!this.#closed) this.resume();
    }, ms);
  }

  /** Stop accepting (connections queue in the backlog). @example `l.pause()` */
  pause(): void {
    if (this.#paused || this.#closed) return;
    this.#paused = true;
    this.#reg.modify(0);
  }

  /** Accept again after `pause()`. @example `l.resume()` */
  resume(): void {
    if (!this.#paused || this.#closed) return;
    this.#paused = false;
    this.#reg.modify(Interest.READABLE);
  }

  /**
   * Stop listening: deregister, close the socket and the spare fd, and
   * remove the Unix socket file this listener created. Accepted connections
   * are not touched.
   *
   * @example
   * ```ts ignore
   * listener.close();
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#retry?.cancel();
    this.#reg.deregister();
    this.socket.close();
    if (this.#idleFd >= 0) sys.close(this.#idleFd);
    this.#idleFd = -1;
    if (this.#unixPath !== undefined && CREATED_PATHS.delete(this.#unixPath)) {
      try {
        Deno.removeSync(this.#unixPath);
      } catch { /* already gone */ }
    }
  }
}

function openIdleFd(): number {
  try {
    return openFile("/dev/null", O.RDONLY | O.CLOEXEC);
  } catch {
    return -1;
  }
}

function adoptListeningFd(fd: number): Socket {
  if (!Number.isInteger(fd) || fd < 0) {
    throw new RangeError(`Cannot listen on fd ${fd}: not a valid file descriptor`);
  }
  const flags = sys.fcntl(fd, 3, /* F_GETFL */ 0);
  if (flags < 0) throw new ErrnoError("fcntl", -flags, { detail: `inherited fd ${fd}` });
  const socket = new Socket(fd);
  let listening: boolean;
  try {
    listening = socket.getOption("acceptConnections");
  } catch (e) {
    socket.release();
    throw new Error(`Cannot listen on fd ${fd}: it is not a socket`, { cause: e });
  }
  if (!listening) {
    socket.release();
    throw new Error(`Cannot listen on fd ${fd}: it is not a listening socket`);
  }
  const r = sys.fcntl(fd, 4, /* F_SETFL */ flags | O.NONBLOCK);
  if (r < 0) throw new ErrnoError("fcntl", -r, { detail: `inherited fd ${fd}` });
  sys.fcntl(fd, 2, /* F_SETFD */ 1 /* FD_CLOEXEC */);
  return socket;
}

function bindUnix(socket: Socket, path: string, mode: number | undefined): void {
  const addr: SocketAddress = { family: "unix", path };
  if (mode === undefined || path.startsWith("\0")) {
    socket.bind(addr);
    return;
  }
  const old = umask(~mode & 0o777);
  try {
    socket.bind(addr);
  } finally {
    umask(old);
  }
  Deno.chmodSync(path, mode);
}

/** Remove a socket file left by a dead server; refuse one that a live server holds. */
function removeStaleSocket(path: string): void {
  let info: Deno.FileInfo;
  try {
    info = Deno.lstatSync(path);
  } catch {
    return;
  }
  if (!info.isSocket) return; // bind will report EADDRINUSE for a non-socket file
  const probe = Socket.create("unix", "stream", { nonblocking: false });
  try {
    probe.connect({ family: "unix", path });
  } catch (e) {
    if (e instanceof ErrnoError && (e.errno === ECONNREFUSED || e.errno === ENOENT)) {
      Deno.removeSync(path);
    }
    return;
  } finally {
    probe.close();
  }
  throw new ErrnoError("bind", 98, { detail: `${path}: another server is listening on it` });
}
