/**
 * The life of a server (private), shared by `serve()` and `serveRaw()`:
 * binding (or adopting an inherited socket), the connection set, the
 * timeout sweep, graceful drain, signals, and systemd readiness.
 *
 * @module
 */
import { envVar } from "../reactor/env.ts";
import type { SocketAddress } from "../ffi/sockaddr.ts";
import { Listener, type ListenOptions } from "../reactor/listener.ts";
import type { ProxyInfo } from "../reactor/proxy/protocol.ts";
import { TlsListener } from "../tls/listener.ts";
import type { TlsInfo } from "../tls/tls_connection.ts";
import type { Reactor } from "../reactor/reactor.ts";
import { type ListenFd, listenFds, notify, watchdogInterval } from "../reactor/sd_notify.ts";
import type { Timer } from "../reactor/timer_queue.ts";
import { acquireReactor, refReactor, releaseReactor, startReactor } from "./_reactor.ts";
import type { ResolvedOptions } from "./_options.ts";
import type { HttpServer, NetAddr, UnixAddr } from "./types.ts";

/** What the core needs from a protocol's connection. */
export interface CoreConn {
  /** Enforce timeouts; called every sweep period with the reactor clock. */
  sweep(now: number): void;
  /**
   * The server drains (see `ServerCore.shutdown`): answer what is in flight
   * and what still arrives with `connection: close`; close at once only when
   * between requests and idle for `drainIdleMs` already (or it is 0).
   */
  drain(): void;
  /** While draining, every few ms: close if idle between requests for `drainIdleMs`. */
  drainCheck(now: number): void;
  /** Cut the connection (drain timeout). */
  abort(): void;
}

/**
 * The members of an accepted connection the HTTP lifecycle uses: a reactor
 * `Connection` (plaintext) and a `TlsConnection` (HTTPS) both have them, so
 * one lifecycle serves both. The handlers' second argument is the
 * connection itself, which the lifecycle never reads (hence `never`).
 */
export interface ServerConnection {
  /** Called with each chunk read (decrypted); the view is only valid during the call. */
  onData: ((data: Uint8Array, conn: never) => void) | undefined;
  /** Called when the peer has finished sending. */
  onEnd: ((conn: never) => void) | undefined;
  /** Called when the output queue empties after `write()` returned false. */
  onDrain: ((conn: never) => void) | undefined;
  /** Called once when the connection is closed. */
  onClose: ((conn: never, error?: Error) => void) | undefined;
  /** `"open"` while it can be written. */
  readonly state: string;
  /** Bytes queued for sending. */
  readonly writableLength: number;
  /** Bytes written so far (progress of a slow reader). */
  readonly bytesWritten: number;
  /** The PROXY protocol header the connection arrived with, if any. */
  readonly proxyInfo: ProxyInfo | undefined;
  /** What the TLS handshake negotiated (a `TlsConnection` only). */
  readonly info?: TlsInfo | undefined;
  remoteAddress(): SocketAddress;
  localAddress(): SocketAddress;
  write(data: Uint8Array): boolean;
  pause(): void;
  resume(): void;
  end(): void;
  close(): void;
  abort(error?: Error): void;
}

/** Makes a protocol connection for an accepted one. */
export type ConnFactory = (conn: ServerConnection, core: ServerCore) => CoreConn;

let inherited: ListenFd[] | undefined;

/** The socket-activation fds of this process (read once). */
function inheritedFds(): ListenFd[] {
  if (inherited === undefined) {
    try {
      inherited = listenFds();
    } catch (e) {
      console.error(`ffinet http: ignoring LISTEN_FDS: ${(e as Error).message}`);
      inherited = [];
    }
  }
  return inherited;
}

/** `Deno.NetAddr`/`Deno.UnixAddr` shape of a socket address. */
export function toAddr(addr: SocketAddress): NetAddr | UnixAddr {
  return addr.family === "unix"
    ? { transport: "unix", path: addr.path }
    : { transport: "tcp", hostname: addr.address, port: addr.port };
}

// The servers that SIGTERM/SIGINT drain (then the process exits 0 once all
// of them have finished): one listener pair for all of them.
const signalServers = new Set<HttpServer>();
let signalDraining = false;

function onDrainSignal(): void {
  if (signalDraining) return;
  signalDraining = true;
  Promise.all([...signalServers].map((s) => s.shutdown())).then(() => Deno.exit(0));
}

/** SIGTERM and SIGINT drain `server` (with the others so registered), then exit 0. */
export function drainOnSignals(server: HttpServer): void {
  if (signalServers.size === 0) {
    Deno.addSignalListener("SIGTERM", onDrainSignal);
    Deno.addSignalListener("SIGINT", onDrainSignal);
  }
  signalServers.add(server);
}

/** `server` has finished: it no longer takes part. */
export function stopDrainingOnSignals(server: HttpServer): void {
  // While a signal's drain is under way the listeners stay (a second signal does nothing).
  if (!signalServers.delete(server) || signalServers.size > 0 || signalDraining) return;
  Deno.removeSignalListener("SIGTERM", onDrainSignal);
  Deno.removeSignalListener("SIGINT", onDrainSignal);
}

/** One server: a listener and its connections on this thread's reactor. */
export class ServerCore implements HttpServer {
  readonly reactor: Reactor;
  readonly options: ResolvedOptions;
  readonly addr: NetAddr | UnixAddr;
  readonly finished: Promise<void>;
  /** Set once `shutdown()` began: connections close between requests. */
  draining = false;
  readonly #listener: Listener | TlsListener;
  readonly #conns = new Set<CoreConn>();
  /** Upgraded connections that hold the drain (see `hold`). */
  readonly #held = new Set<{ goingAway(): void; abort(): void }>();
  readonly #factory: ConnFactory;
  #sweep: Timer | undefined;
  #drainTimer: Timer | undefined;
  #drainCheck: Timer | undefined;
  #watchdog: ReturnType<typeof setInterval> | undefined;
  #resolveFinished!: () => void;
  #finishing = false;
  #abortHandler: (() => void) | undefined;

  constructor(options: ResolvedOptions, factory: ConnFactory, notifyReady: boolean) {
    this.options = options;
    this.#factory = factory;
    this.finished = new Promise((resolve) => this.#resolveFinished = resolve);
    const reactor = this.reactor = acquireReactor(options.reactor, this);
    try {
      // With TLS, the certificates are loaded and checked before the socket
      // is bound (bad input throws with OpenSSL's text); connections reach
      // the lifecycle once their handshake has completed.
      const tls = options.tls;
      this.#listener = tls === undefined
        ? Listener.listen(reactor, this.#listenOptions(), (conn) => this.#accept(conn))
        : TlsListener.listen(
          reactor,
          { ...this.#listenOptions(), tls },
          (conn) => this.#accept(conn),
        );
    } catch (e) {
      void releaseReactor(this);
      throw e;
    }
    startReactor();
    this.addr = toAddr(this.#listener.address());
    const timeouts = [options.headerTimeoutMs, options.bodyTimeoutMs, options.idleTimeoutMs]
      .filter((t) => t > 0);
    if (timeouts.length > 0) {
      const period = Math.max(25, Math.min(1000, Math.floor(Math.min(...timeouts) / 4)));
      // forEach, not for…of: a sweep of every connection allocates nothing
      // per connection, so an idle server lets V8 shrink its heap.
      this.#sweep = reactor.setInterval(() => {
        const now = reactor.now;
        this.#conns.forEach((c) => c.sweep(now));
      }, period);
    }
    if (options.signal !== undefined) {
      const signal = options.signal;
      this.#abortHandler = () => void this.shutdown();
      if (signal.aborted) queueMicrotask(this.#abortHandler);
      else signal.addEventListener("abort", this.#abortHandler, { once: true });
    }
    if (options.drainOnSignals) drainOnSignals(this);
    options.onListen(this.addr);
    if (notifyReady) this.#notifyReady();
  }

  #listenOptions(): ListenOptions {
    const o = this.options;
    const connection = { highWaterMark: o.highWaterMark, allowHalfOpen: true };
    const passthrough = o.listener;
    if (o.path !== undefined) return { ...passthrough, path: o.path, connection };
    // Socket activation (or a supervisor): an inherited listening socket is
    // adopted instead of binding, the one named `listenFdName` or else the
    // first not taken yet by another server of this process.
    const fds = o.inherit ? inheritedFds() : [];
    if (o.listenFdName !== undefined || fds.length > 0) {
      const i = o.listenFdName !== undefined ? fds.findIndex((f) => f.name === o.listenFdName) : 0;
      if (i >= 0 && i < fds.length) {
        const pick = fds.splice(i, 1)[0]!;
        return { ...passthrough, fd: pick.fd, connection };
      }
      if (o.listenFdName !== undefined) {
        throw new Error(
          `Cannot serve: no inherited socket is named "${o.listenFdName}" (LISTEN_FDNAMES)`,
        );
      }
    }
    return {
      ...passthrough,
      host: o.hostname,
      port: o.port,
      reusePort: o.reusePort,
      connection,
    };
  }

  #notifyReady(): void {
    if (envVar("NOTIFY_SOCKET") === undefined) return;
    try {
      notify("READY=1");
      const ms = watchdogInterval();
      if (ms !== null) {
        const id = setInterval(() => {
          try {
            notify("WATCHDOG=1");
          } catch { /* the manager went away */ }
        }, Math.max(1, Math.floor(ms / 2)));
        Deno.unrefTimer(id);
        this.#watchdog = id;
      }
    } catch (e) {
      console.error(`ffinet http: ${(e as Error).message}`);
    }
  }

  #accept(conn: ServerConnection): void {
    if (this.draining && !(this.#listener instanceof TlsListener)) {
      conn.close();
      return;
    }
    const c = this.#factory(conn, this);
    this.#conns.add(c);
    // HTTPS: a handshake that was under way when the drain began ends here;
    // its first request is answered with `connection: close`.
    if (this.draining) c.drain();
  }

  /**
   * HTTPS: encrypt new session tickets with `material` (80 bytes) from now
   * on; tickets of the previous two keys still resume. Plaintext: nothing.
   */
  rotateTicketKeys(material: Uint8Array): void {
    if (this.#listener instanceof TlsListener) this.#listener.rotateTicketKeys(material);
  }

  /** A connection is gone. */
  remove(c: CoreConn): void {
    this.#conns.delete(c);
    if (this.draining && this.#conns.size === 0 && this.#held.size === 0) this.#finish();
  }

  /**
   * An upgraded connection (no longer one of the server's) holds the drain
   * until the returned release is called: `goingAway` runs when `shutdown()`
   * begins (soon, if it has begun), `abort` at the drain timeout.
   */
  hold(goingAway: () => void, abort: () => void): () => void {
    const entry = { goingAway, abort };
    this.#held.add(entry);
    if (this.draining) queueMicrotask(goingAway);
    return () => {
      if (!this.#held.delete(entry)) return;
      if (this.draining && this.#conns.size === 0 && this.#held.size === 0) this.#finish();
    };
  }

  /** The number of open connections. */
  get connections(): number {
    return this.#conns.size;
  }

  shutdown(): Promise<void> {
    if (!this.draining) {
      this.draining = true;
      // A drain under way holds the process (also for an unref'd server), so
      // that `await server.shutdown()` completes.
      refReactor(this, true);
      // Stop accepting at once: the listening socket is closed (a load
      // balancer's health check sees it), and in-flight requests get
      // `connection: close`. A kept-alive connection between requests is
      // still read for `drainIdleMs` from its last response, so that a
      // request already on its way is answered (with `connection: close`)
      // instead of meeting a close; after that grace of idleness it is
      // closed with a FIN. A connection idle longer than the grace when the
      // drain begins closes at once: its client is no likelier to send in the
      // next instant than after a grace, so waiting buys nothing there.
      this.#listener.close();
      // HTTPS: handshakes under way may finish within the grace (their
      // client is about to send a request); those still unfinished then are
      // reset.
      if (this.#listener instanceof TlsListener) this.#holdHandshakes(this.#listener);
      for (const c of [...this.#conns]) c.drain();
      for (const h of [...this.#held]) h.goingAway();
      if (this.#conns.size === 0 && this.#held.size === 0) {
        this.#finish();
      } else {
        const grace = this.options.drainIdleMs;
        if (grace > 0) {
          const period = Math.max(5, Math.min(50, Math.floor(grace / 5)));
          this.#drainCheck = this.reactor.setInterval(() => {
            const now = this.reactor.now;
            for (const c of [...this.#conns]) c.drainCheck(now);
          }, period);
        }
        this.#drainTimer = this.reactor.setTimeout(() => {
          for (const c of [...this.#conns]) c.abort();
          for (const h of [...this.#held]) h.abort();
          this.#finish();
        }, this.options.drainTimeoutMs);
      }
    }
    return this.finished;
  }

  /**
   * Hold the drain until `listener` has no handshake under way, for at most
   * `drainIdleMs` (the grace an idle kept-alive connection gets): handshakes
   * still unfinished then are reset. The hold ends with the last handshake
   * (the listener tells when none is under way), with no polling.
   */
  #holdHandshakes(listener: TlsListener): void {
    if (listener.stats.inProgress === 0) return;
    let done = false;
    const stop = () => {
      if (done) return;
      done = true;
      deadline.cancel();
      listener.abortHandshakes();
      release();
    };
    const release = this.hold(() => {}, stop);
    const deadline = this.reactor.setTimeout(stop, this.options.drainIdleMs);
    listener.handshakesSettled().then(stop);
  }

  #finish(): void {
    if (this.#finishing) return;
    this.#finishing = true;
    this.#sweep?.cancel();
    this.#drainTimer?.cancel();
    this.#drainCheck?.cancel();
    if (this.#watchdog !== undefined) clearInterval(this.#watchdog);
    stopDrainingOnSignals(this);
    if (this.#abortHandler !== undefined) {
      this.options.signal?.removeEventListener("abort", this.#abortHandler);
    }
    // Let the last callbacks (onClose of aborted connections) settle first.
    queueMicrotask(() => {
      releaseReactor(this).then(() => this.#resolveFinished());
    });
  }

  ref(): void {
    refReactor(this, true);
  }

  unref(): void {
    refReactor(this, false);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }
}
