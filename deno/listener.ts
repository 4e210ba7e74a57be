/**
 * {@linkcode FfiListener} and {@linkcode listen}: a listener with the shape
 * of `Deno.Listener`, on an ffinet `Listener` (or a `TlsListener`, for
 * `listenTls`).
 *
 * @module
 */
import type { Connection, ConnectionOptions } from "../reactor/connection.ts";
import { Listener, type ListenOptions } from "../reactor/listener.ts";
import { TlsListener } from "../tls/listener.ts";
import { TlsConnection } from "../tls/tls_connection.ts";
import { toDenoAddr } from "./_addr.ts";
import { closedError, toDenoError } from "./_errors.ts";
import { FfiConn, type StreamConnection, wrapLeased } from "./conn.ts";
import {
  DEFAULT_HWM,
  type FfiAdapterOptions,
  type FfiAddr,
  type FfiConnOptions,
  type FfiTcpListenOptions,
  type FfiUnixListenOptions,
  validateAdapterOptions,
} from "./options.ts";
import { acquire, type Lease } from "./shared_reactor.ts";
import { FfiTlsConn } from "./tls_conn.ts";
import { type FfiTlsListenOptions, tlsServerOptionsOf } from "./tls_options.ts";

/** Accepted connections held for `accept()` before the listener pauses. */
const MAX_PENDING_ACCEPTS = 128;

/**
 * A listener with the shape of `Deno.Listener`, on an ffinet `Listener`
 * (so it keeps serving through EMFILE). Made by {@linkcode listen}.
 * Accepted connections wait for `accept()` in a short queue; when it is
 * full the listener pauses and they wait in the kernel's backlog.
 *
 * An open listener keeps the process alive until `close()` or `unref()`.
 *
 * With TLS options (`cert` and `key`, or `certFile` and `keyFile`: see
 * `listenTls`) it accepts `FfiTlsConn`s, each once its handshake has
 * completed.
 *
 * @example
 * ```ts
 * import { listen } from "@ffinet/ffinet/deno";
 *
 * using listener = listen({ hostname: "127.0.0.1", port: 8080 });
 * for await (const conn of listener) conn.readable.pipeTo(conn.writable);
 * ```
 */
export class FfiListener<
  A extends FfiAddr = FfiAddr,
  C extends FfiConn<A, StreamConnection> = FfiConn<A>,
> implements Deno.Listener<C, A> {
  /** The bound address (with the real port when 0 was asked). */
  readonly addr: A;
  readonly #listener: Listener;
  readonly #tls: TlsListener | undefined;
  readonly #lease: Lease;
  readonly #options: FfiAdapterOptions;
  #pending: C[] = [];
  #waiters: { resolve: (c: C) => void; reject: (e: Error) => void }[] = [];
  #closed = false;
  #backlogPaused = false;

  /**
   * Bind and listen. Use {@linkcode listen}, which types the address.
   *
   * @example
   * ```ts
   * import { FfiListener } from "@ffinet/ffinet/deno";
   *
   * const listener = new FfiListener({ hostname: "127.0.0.1", port: 0 });
   * listener.close();
   * ```
   */
  constructor(options: FfiTcpListenOptions | FfiUnixListenOptions | FfiTlsListenOptions) {
    validateAdapterOptions("listen", options);
    this.#options = options;
    const connection: ConnectionOptions = {
      allowHalfOpen: true,
      highWaterMark: options.highWaterMark ?? DEFAULT_HWM,
    };
    let target: ListenOptions;
    if (options.transport === "unix") {
      target = { path: options.path, connection };
      if (options.mode !== undefined) target.mode = options.mode;
    } else {
      target = {
        host: options.hostname ?? "0.0.0.0",
        port: options.port ?? 0,
        reusePort: options.reusePort ?? false,
        connection,
      };
    }
    if (options.backlog !== undefined) target.backlog = options.backlog;
    const tls = options.transport === "unix" ? undefined : tlsServerOptionsOf(options);
    this.#lease = acquire(options.reactor);
    try {
      if (tls === undefined) {
        this.#listener = Listener.listen(
          this.#lease.reactor,
          target,
          (conn) => this.#onConnection(conn),
        );
      } else {
        this.#tls = TlsListener.listen(
          this.#lease.reactor,
          { ...target, tls },
          (conn) => this.#onConnection(conn),
        );
        this.#listener = this.#tls.listener;
      }
      this.addr = toDenoAddr(this.#listener.address()) as A;
    } catch (e) {
      this.#lease.release();
      throw toDenoError(e);
    }
  }

  /** The underlying ffinet listener (for its stats; do not replace its callbacks). */
  get listener(): Listener {
    return this.#listener;
  }

  /**
   * The ffinet TLS listener underneath, with TLS options (for its `stats`
   * and `setTls`; do not replace its callbacks); undefined without.
   */
  get tlsListener(): TlsListener | undefined {
    return this.#tls;
  }

  #onConnection(conn: Connection | TlsConnection): void {
    let ffi: C;
    const lease = acquire(this.#options.reactor);
    try {
      ffi = wrapLeased<StreamConnection, C>(
        conn,
        lease,
        (c) =>
          (c instanceof TlsConnection
            ? new FfiTlsConn(c, this.#connOptions())
            : new FfiConn<A>(c as Connection, this.#connOptions())) as unknown as C,
      );
    } catch (e) {
      console.error(e);
      return;
    }
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) {
      waiter.resolve(ffi);
      return;
    }
    this.#pending.push(ffi);
    if (this.#pending.length >= MAX_PENDING_ACCEPTS && !this.#backlogPaused) {
      this.#backlogPaused = true;
      this.#listener.pause();
    }
  }

  #connOptions(): FfiConnOptions {
    const o = this.#options;
    const out: FfiConnOptions = {};
    if (o.readBufferLimit !== undefined) out.readBufferLimit = o.readBufferLimit;
    if (o.closeTimeoutMs !== undefined) out.closeTimeoutMs = o.closeTimeoutMs;
    if (o.allowHalfOpen !== undefined) out.allowHalfOpen = o.allowHalfOpen;
    return out;
  }

  /**
   * The next connection. Rejects with `Deno.errors.BadResource` once the
   * listener is closed.
   *
   * @example
   * ```ts
   * import { listen } from "@ffinet/ffinet/deno";
   *
   * const listener = listen({ hostname: "127.0.0.1", port: 8080 });
   * const conn = await listener.accept();
   * conn.close();
   * listener.close();
   * ```
   */
  accept(): Promise<C> {
    if (this.#closed) return Promise.reject(closedError("accept", "listener"));
    const next = this.#pending.shift();
    if (next !== undefined) {
      if (this.#backlogPaused && this.#pending.length < MAX_PENDING_ACCEPTS / 2) {
        this.#backlogPaused = false;
        this.#listener.resume();
      }
      return Promise.resolve(next);
    }
    const { promise, resolve, reject } = Promise.withResolvers<C>();
    this.#waiters.push({ resolve, reject });
    return promise;
  }

  /**
   * Stop listening: pending `accept()` calls reject, connections accepted
   * but not yet taken are closed, a Unix socket file is removed. Accepted
   * connections stay open. A second call throws `Deno.errors.BadResource`.
   *
   * @example
   * ```ts
   * import { listen } from "@ffinet/ffinet/deno";
   *
   * const listener = listen({ hostname: "127.0.0.1", port: 0 });
   * listener.close();
   * ```
   */
  close(): void {
    if (this.#closed) throw closedError("close", "listener");
    this.#closed = true;
    if (this.#tls === undefined) {
      this.#listener.close();
    } else {
      // Handshakes under way would complete into a queue nobody takes.
      this.#tls.close();
      this.#tls.abortHandshakes();
    }
    const error = closedError("accept", "listener");
    for (const waiter of this.#waiters.splice(0)) waiter.reject(error);
    for (const conn of this.#pending.splice(0)) conn.close();
    this.#lease.release();
  }

  /**
   * Accept connections until the listener is closed.
   *
   * @example
   * ```ts
   * import { listen } from "@ffinet/ffinet/deno";
   *
   * const listener = listen({ hostname: "127.0.0.1", port: 8080 });
   * for await (const conn of listener) {
   *   await conn.write(new TextEncoder().encode("hello\n"));
   *   conn.close();
   * }
   * ```
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<C> {
    while (true) {
      let conn: C;
      try {
        conn = await this.accept();
      } catch (e) {
        if (e instanceof Deno.errors.BadResource) return;
        throw e;
      }
      yield conn;
    }
  }

  /**
   * Let this open listener keep the process alive again (the default).
   * Does nothing on a reactor you passed in `options.reactor`.
   *
   * @example
   * ```ts
   * import { listen } from "@ffinet/ffinet/deno";
   *
   * const listener = listen({ hostname: "127.0.0.1", port: 0 });
   * listener.unref();
   * listener.ref();
   * listener.close();
   * ```
   */
  ref(): void {
    this.#lease.ref();
  }

  /**
   * Do not keep the process alive for this listener, as
   * `Deno.Listener.unref()`: the process exits when nothing else keeps it
   * up, even with the listener open (a pending `accept()` does not hold it
   * either). Does nothing on a reactor you passed in `options.reactor`.
   *
   * @example
   * ```ts
   * import { listen } from "@ffinet/ffinet/deno";
   *
   * const listener = listen({ hostname: "127.0.0.1", port: 0 });
   * listener.unref(); // serves while the program runs, does not hold it open
   * ```
   */
  unref(): void {
    this.#lease.unref();
  }

  /**
   * Close unless already closed (never throws).
   *
   * @example
   * ```ts
   * import { listen } from "@ffinet/ffinet/deno";
   *
   * using listener = listen({ hostname: "127.0.0.1", port: 0 });
   * ```
   */
  [Symbol.dispose](): void {
    if (!this.#closed) this.close();
  }
}

/**
 * Listen on TCP, like `Deno.listen`: returns at once, bound and accepting.
 * Failures throw Deno's error classes, e.g. `Deno.errors.AddrInUse`.
 *
 * @example
 * ```ts
 * import { listen } from "@ffinet/ffinet/deno";
 *
 * const listener = listen({ hostname: "127.0.0.1", port: 0 });
 * console.log(listener.addr.port);
 * listener.close();
 * ```
 */
export function listen(options: FfiTcpListenOptions): FfiListener<Deno.NetAddr>;
/**
 * Listen on a Unix socket, like `Deno.listen({ transport: "unix", path })`.
 *
 * @example
 * ```ts
 * import { listen } from "@ffinet/ffinet/deno";
 *
 * const dir = Deno.makeTempDirSync();
 * const listener = listen({ transport: "unix", path: `${dir}/app.sock` });
 * listener.close(); // removes the socket file
 * ```
 */
export function listen(options: FfiUnixListenOptions): FfiListener<Deno.UnixAddr>;
/**
 * Listen on TCP or a Unix socket.
 *
 * @example
 * ```ts
 * import { listen } from "@ffinet/ffinet/deno";
 *
 * const listener = listen({ port: 0 });
 * listener.close();
 * ```
 */
export function listen(
  options: FfiTcpListenOptions | FfiUnixListenOptions,
): FfiListener<Deno.NetAddr> | FfiListener<Deno.UnixAddr> {
  return options.transport === "unix"
    ? new FfiListener<Deno.UnixAddr>(options)
    : new FfiListener<Deno.NetAddr>(options);
}
