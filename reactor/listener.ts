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
import { AF, SOCK } from "../ffi/constants.ts";
import { EAGAIN, ECONNABORTED, EMFILE, ENFILE, ErrnoError } from "../ffi/errno.ts";
import { ipAddress, type SocketAddress } from "../ffi/sockaddr.ts";
import { Socket } from "../ffi/socket.ts";
import * as sys from "../ffi/syscalls.ts";
import { Connection, connectionControl, type ConnectionOptions } from "./connection.ts";
import { Interest } from "./interest.ts";
import { type Reactor, reactorControl } from "./reactor.ts";
import type { Registration } from "./poller.ts";
import type { Timer } from "./timer_queue.ts";
import { ProxyGate, type ProxyGateStats } from "./proxy/gate.ts";
import {
  applyListenSocketOptions,
  type CheckedListen,
  checkListenOptions,
  type ListenerErrorHandler,
  type ListenOptions,
} from "./listen_options.ts";
import { adoptListeningFd, bindUnix, openIdleFd, removeStaleSocket } from "./_listen_socket.ts";

export type { ListenerErrorHandler, ListenOptions, ListenTarget } from "./listen_options.ts";

/** `EPROTO`: protocol error on a connection that died while queued; accept the next. */
const EPROTO = 71;
/** `EPERM`: a firewall rule refused this connection; accept the next. */
const EPERM = 1;
/** Flags for accepted sockets: non-blocking and close-on-exec. */
const ACCEPT_FLAGS = SOCK.NONBLOCK | SOCK.CLOEXEC;
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

/** Set `TCP_NODELAY` on a listening socket; false when it refuses. */
function setNoDelay(socket: Socket): boolean {
  try {
    socket.setOption("noDelay", true);
    return true;
  } catch {
    return false;
  }
}

/**
 * A listening socket on a reactor. `using listener = …` closes it.
 *
 * @example
 * ```ts
 * import { Listener, Reactor } from "@ffinet/ffinet/reactor";
 * await using reactor = new Reactor();
 * using listener = Listener.listen(reactor, { host: "127.0.0.1", port: 0 }, (conn) => {
 *   conn.onData = (data) => conn.write(data);
 * });
 * console.log(listener.address());
 * ```
 */
export class Listener implements Disposable {
  /** The listening socket (owned). */
  readonly socket: Socket;
  /** The reactor. */
  readonly reactor: Reactor;
  /** Called with every accepted connection. */
  onConnection: (conn: Connection) => void;
  /**
   * Called when accepting fails in a way the listener cannot absorb, and
   * with errors thrown by `onConnection` or an accepted connection's
   * handlers (that connection is closed). When unset, those errors go to
   * the reactor's `onError`.
   */
  onError: ListenerErrorHandler | undefined;
  /** Counters. */
  readonly stats: ListenerStats = { accepted: 0, shed: 0, pauses: 0 };
  readonly #reg: Registration<Listener>;
  readonly #noDelay: boolean;
  readonly #connOptions: ConnectionOptions;
  readonly #retryMs: number;
  readonly #unixPath: string | undefined;
  #gate: ProxyGate | undefined;
  readonly #sink = (error: unknown, conn: Connection) => this.#report(error, conn);
  #idleFd: number;
  #paused = false;
  #retry: Timer | undefined;
  #closed = false;
  #signal: AbortSignal | undefined;
  #onAbort = () => this.close();

  /** @ignore Internal: see the static factory. */
  private constructor(
    reactor: Reactor,
    socket: Socket,
    checked: CheckedListen,
    isTcp: boolean,
    unixPath: string | undefined,
    onConnection: (conn: Connection) => void,
  ) {
    this.reactor = reactor;
    this.socket = socket;
    this.onConnection = onConnection;
    this.onError = checked.onError;
    this.#unixPath = unixPath;
    // TCP_NODELAY is set once, on the listening socket: Linux copies it to
    // every socket accept() returns (one setsockopt per listener instead of
    // one per connection). Should the listening socket refuse it, each
    // accepted socket gets it instead.
    this.#noDelay = isTcp && checked.noDelay && !setNoDelay(socket);
    this.#connOptions = checked.connection;
    this.#retryMs = checked.emfileRetryMs;
    this.#idleFd = openIdleFd();
    try {
      this.#reg = reactor.register<Listener>(
        socket.fd,
        Interest.READABLE,
        Listener.#onReady,
        this,
      );
    } catch (e) {
      if (this.#idleFd >= 0) sys.close(this.#idleFd);
      throw e;
    }
    this.#signal = checked.signal;
    this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  static #onReady(_ready: unknown, reg: Registration<Listener>): void {
    reg.data.#accept();
  }

  /**
   * Bind and listen (or adopt an inherited listening fd), and start accepting.
   * Options are checked before any socket is created (`RangeError`/`TypeError`
   * naming the option). Failures throw an `ErrnoError` naming the call, e.g.
   * `Cannot bind: EADDRINUSE (Address already in use) [127.0.0.1:8080]`.
   *
   * A Unix socket file gets its `mode` from `fchmod` on the socket before
   * `bind` (never a `chmod` of the path afterwards, which a swapped symlink
   * could redirect). A stale socket file left by a dead server is replaced;
   * one a live server holds is refused with EADDRINUSE (the probe never
   * blocks, even when that server's accept queue is full).
   *
   * @example
   * ```ts
   * import { Listener, Reactor } from "@ffinet/ffinet/reactor";
   * await using reactor = new Reactor();
   * using l = Listener.listen(reactor, { host: "::1", port: 0, reusePort: true });
   * console.log(l.address());
   * ```
   */
  static listen(
    reactor: Reactor,
    options: ListenOptions,
    onConnection: (conn: Connection) => void = (conn) => conn.close(),
  ): Listener {
    const checked = checkListenOptions(options);
    const gate = checked.proxyProtocol && new ProxyGate(checked.proxyProtocol);
    if (typeof onConnection !== "function") {
      throw new TypeError("Cannot listen: onConnection is not a function");
    }
    if ("fd" in options) {
      const socket = adoptListeningFd(options.fd);
      let domain: number;
      try {
        domain = socket.getOption("domain");
      } catch (e) {
        socket.close();
        throw e;
      }
      try {
        applyListenSocketOptions(socket, checked, "listen", "fd");
      } catch (e) {
        socket.close();
        throw e;
      }
      return Listener.#make(reactor, socket, checked, domain !== AF.UNIX, undefined, onConnection)
        .#withGate(gate);
    }
    if ("path" in options) {
      const path = options.path;
      const abstract = path.startsWith("\0");
      const socket = Socket.create("unix", "stream");
      try {
        if (!abstract) removeStaleSocket(path);
        bindUnix(socket, path, checked.mode);
        applyListenSocketOptions(socket, checked, "listen", "unix");
        socket.listen(checked.backlog);
        if (!abstract) CREATED_PATHS.add(path);
      } catch (e) {
        socket.close();
        throw e;
      }
      return Listener.#make(
        reactor,
        socket,
        checked,
        false,
        abstract ? undefined : path,
        onConnection,
      ).#withGate(gate);
    }
    const addr = ipAddress(options.host ?? "127.0.0.1", options.port);
    const socket = Socket.create(addr.family, "stream");
    try {
      const kind = addr.family === "inet6" ? "inet6" : "tcp";
      applyListenSocketOptions(socket, checked, "bind", kind);
      socket.bind(addr);
      applyListenSocketOptions(socket, checked, "listen", kind);
      socket.listen(checked.backlog);
    } catch (e) {
      socket.close();
      throw e;
    }
    return Listener.#make(reactor, socket, checked, true, undefined, onConnection).#withGate(gate);
  }

  #withGate(gate: ProxyGate | undefined): Listener {
    this.#gate = gate;
    return this;
  }

  /** The PROXY protocol gate's counters, when the `proxyProtocol` option is set. */
  get proxyStats(): ProxyGateStats | undefined {
    return this.#gate?.stats;
  }

  static #make(
    reactor: Reactor,
    socket: Socket,
    checked: CheckedListen,
    isTcp: boolean,
    unixPath: string | undefined,
    onConnection: (conn: Connection) => void,
  ): Listener {
    try {
      return new Listener(reactor, socket, checked, isTcp, unixPath, onConnection);
    } catch (e) {
      socket.close();
      if (unixPath !== undefined && CREATED_PATHS.delete(unixPath)) {
        try {
          Deno.removeSync(unixPath);
        } catch { /* already gone */ }
      }
      throw e;
    }
  }

  /** The bound address (with the real port when 0 was asked). @example `l.address()` */
  address(): SocketAddress {
    return this.socket.localAddress();
  }

  /** Whether accepting is paused. */
  get paused(): boolean {
    return this.#paused;
  }

  /** Whether {@linkcode Listener.close} has run. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Hand an error to `onError`, else to the reactor's (which logs it by default). Never throws. */
  #report(error: unknown, conn?: Connection): void {
    const handler = this.onError;
    if (handler !== undefined) {
      try {
        handler(error, conn);
        return;
      } catch (e) {
        error = e; // onError itself threw: the reactor reports that
      }
    }
    reactorControl.report(this.reactor, error, this.#reg);
  }

  #accept(): void {
    const lfd = this.socket.fd;
    for (;;) {
      const fd = sys.accept4(lfd, null, null, ACCEPT_FLAGS);
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
      if (fd === -ECONNABORTED || fd === -EPROTO || fd === -EPERM) continue;
      // ENOBUFS, ENOMEM and anything unexpected: back off instead of spinning.
      this.#pauseFor(this.#retryMs);
      this.#report(new ErrnoError("accept4", -fd));
      return;
    }
  }

  #adopt(fd: number): void {
    const socket = new Socket(fd);
    const proxy = this.#gate?.screen(socket);
    if (this.#gate !== undefined && proxy === undefined) return; // untrusted: refused and closed
    let conn: Connection;
    try {
      if (this.#noDelay) socket.setOption("noDelay", true);
      conn = new Connection(this.reactor, socket, this.#connOptions);
    } catch (e) {
      socket.close();
      this.#report(e);
      return;
    }
    connectionControl.setErrorSink(conn, this.#sink);
    connectionControl.setExclusive(conn);
    if (proxy !== undefined) this.#gate!.admit(conn, proxy, (c) => this.#handOver(c));
    else this.#handOver(conn);
  }

  #handOver(conn: Connection): void {
    this.stats.accepted++;
    try {
      this.onConnection(conn);
    } catch (e) {
      // One connection's failure (e.g. a peer that reset before
      // remoteAddress() could be read) must not take the listener down.
      conn.abort(e instanceof Error ? e : new Error(String(e)));
      this.#report(e, conn);
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
    const fd = sys.accept4(lfd, null, null, SOCK.CLOEXEC);
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
   * are not touched. Idempotent.
   *
   * @example
   * ```ts
   * import { Listener, Reactor } from "@ffinet/ffinet/reactor";
   * await using reactor = new Reactor();
   * const listener = Listener.listen(reactor, { port: 0 });
   * listener.close();
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#retry?.cancel();
    try {
      this.#reg.deregister();
    } finally {
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

  /** Close (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }
}
