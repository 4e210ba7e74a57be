/**
 * `TlsListener`: a reactor `Listener` whose connections speak TLS. Each
 * accepted connection is handed to `onConnection` as a
 * {@linkcode TlsConnection} once its handshake has completed; a handshake
 * that fails or times out is counted and closed without bothering the
 * application (scanners and broken clients are routine).
 *
 * Certificates can change while it serves: {@linkcode TlsListener.setTls}
 * builds the new contexts first (a bad certificate throws and changes
 * nothing), then new handshakes use them while open connections keep the
 * old ones until they close.
 *
 * @module
 */
import { Ssl } from "../ffi/openssl_ssl.ts";
import type { SocketAddress } from "../ffi/sockaddr.ts";
import type { Connection } from "../reactor/connection.ts";
import { Listener, type ListenOptions } from "../reactor/listener.ts";
import { type Reactor, reactorControl } from "../reactor/reactor.ts";
import { resolveConnectionOptions } from "../reactor/connection_options.ts";
import { type ServerContexts, serverContexts } from "./_contexts.ts";
import { DEFAULT_TICKET_KEY_ROTATION_MS, type TlsServerOptions } from "./options.ts";
import { TicketKeyring } from "../ffi/openssl_tickets.ts";
import { finiteOption } from "../ffi/validate.ts";
import { MAX_TIMER_MS, type Timer } from "../reactor/timer_queue.ts";
import { type HandshakeHooks, TlsConnection } from "./tls_connection.ts";

/**
 * Check server TLS options as `TlsListener.listen` does (certificates parse
 * and are valid now, keys decrypt and match, CAs parse), without listening:
 * for a process that hands the options to others (serve Workers) and must
 * fail at once on bad input.
 */
export function checkTlsServerOptions(options: TlsServerOptions): void {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("Cannot listen: tls options must be an object");
  }
  finiteOption("listen", "ticketKeyRotationMs", options.ticketKeyRotationMs, 0, {
    min: 0,
    max: MAX_TIMER_MS,
  });
  serverContexts(options, new TicketKeyring(options.ticketKeys)).close();
}

/** Options of {@linkcode TlsListener.listen}: where to listen, and `tls`. */
export type TlsListenOptions = ListenOptions & {
  /** Certificates, ALPN, client certificates, handshake timeout. */
  tls: TlsServerOptions;
};

/** Counters a TLS listener keeps. */
export interface TlsListenerStats {
  /** Handshakes completed (connections handed to `onConnection`). */
  handshakes: number;
  /** Handshakes resumed from a session ticket or id (part of `handshakes`). */
  resumed: number;
  /** Handshakes that failed, timed out, or whose peer went away first. */
  failedHandshakes: number;
  /** Of those, the ones that ran out of `handshakeTimeoutMs`. */
  timedOut: number;
  /** Handshakes under way now. */
  inProgress: number;
}

/**
 * A TLS server socket on a reactor. `using server = …` closes it.
 *
 * @example
 * ```ts
 * import { TlsListener } from "@ffinet/ffinet/tls";
 * import { Reactor } from "@ffinet/ffinet/reactor";
 * await using reactor = new Reactor();
 * using server = TlsListener.listen(reactor, {
 *   host: "127.0.0.1",
 *   port: 0,
 *   tls: {
 *     cert: Deno.readTextFileSync("cert.pem"),
 *     key: Deno.readTextFileSync("key.pem"),
 *     alpnProtocols: ["http/1.1"],
 *   },
 * }, (conn) => {
 *   console.log(conn.info?.protocol, conn.info?.alpnProtocol);
 *   conn.onData = (data) => conn.write(data);
 * });
 * console.log(server.address());
 * ```
 */
export class TlsListener implements Disposable {
  /** The plain listener underneath (its `stats` count TCP accepts). */
  readonly listener: Listener;
  /** Called with every connection whose handshake completed. */
  onConnection: (conn: TlsConnection) => void;
  /** Called with every failed handshake (optional: they are counted in `stats` anyway). */
  onHandshakeError: ((error: Error, conn: TlsConnection) => void) | undefined;
  /** Counters. */
  readonly stats: TlsListenerStats = {
    handshakes: 0,
    resumed: 0,
    failedHandshakes: 0,
    timedOut: 0,
    inProgress: 0,
  };
  #contexts: ServerContexts;
  /** Connections whose handshake is under way. */
  readonly #handshaking = new Set<TlsConnection>();
  readonly #tickets: TicketKeyring;
  readonly #ticketsGiven: boolean;
  #rotation: Timer | undefined;
  readonly #highWaterMark: number;
  readonly #allowHalfOpen: boolean;
  readonly #hooks: HandshakeHooks = {
    secure: (conn) => this.#secure(conn),
    failed: (conn, error) => this.#failed(conn, error),
    report: (error, conn) => this.#report(error, conn),
  };

  private constructor(
    reactor: Reactor,
    options: TlsListenOptions,
    contexts: ServerContexts,
    tickets: TicketKeyring,
    onConnection: (conn: TlsConnection) => void,
  ) {
    this.#contexts = contexts;
    this.#tickets = tickets;
    this.#ticketsGiven = options.tls.ticketKeys !== undefined;
    this.onConnection = onConnection;
    const resolved = resolveConnectionOptions("listen", options.connection ?? {});
    this.#highWaterMark = resolved.highWaterMark;
    this.#allowHalfOpen = resolved.allowHalfOpen;
    const { tls: _tls, ...plain } = options;
    contexts.reportTo((error) => this.#report(error));
    this.listener = Listener.listen(reactor, plain as ListenOptions, (conn) => this.#accept(conn));
    const every = finiteOption(
      "listen",
      "ticketKeyRotationMs",
      options.tls.ticketKeyRotationMs,
      DEFAULT_TICKET_KEY_ROTATION_MS,
      { min: 0, max: MAX_TIMER_MS },
    );
    if (!this.#ticketsGiven && every > 0) this.#scheduleRotation(every);
  }

  #scheduleRotation(every: number): void {
    this.#rotation = this.listener.reactor.setTimeout(() => {
      this.#tickets.rotate();
      this.#scheduleRotation(every);
    }, every);
  }

  /**
   * Encrypt new session tickets with `material` (80 bytes: name 16, HMAC
   * 32, AES 32; default random) from now on. Tickets made with the previous
   * two keys still resume (and are renewed). Give every server that shares
   * the keys the same material at about the same time.
   *
   * @example
   * ```ts
   * import { TlsListener } from "@ffinet/ffinet/tls";
   * import { Reactor } from "@ffinet/ffinet/reactor";
   * await using reactor = new Reactor();
   * const key = crypto.getRandomValues(new Uint8Array(80));
   * using server = TlsListener.listen(reactor, {
   *   port: 0,
   *   tls: {
   *     cert: Deno.readTextFileSync("cert.pem"),
   *     key: Deno.readTextFileSync("key.pem"),
   *     ticketKeys: key,
   *   },
   * });
   * server.rotateTicketKeys(crypto.getRandomValues(new Uint8Array(80)));
   * ```
   */
  rotateTicketKeys(material?: Uint8Array): void {
    this.#tickets.rotate(material);
  }

  /**
   * Check the TLS options (certificates parse and are valid now, keys
   * decrypt and match), then bind and listen. Throws before any socket
   * exists when the TLS options are bad: "Cannot load key (default
   * certificate): wrong passphrase or damaged key: …".
   *
   * @example
   * ```ts
   * import { TlsListener } from "@ffinet/ffinet/tls";
   * import { Reactor } from "@ffinet/ffinet/reactor";
   * await using reactor = new Reactor();
   * using server = TlsListener.listen(reactor, {
   *   port: 0,
   *   tls: { cert: Deno.readTextFileSync("cert.pem"), key: Deno.readTextFileSync("key.pem") },
   * });
   * ```
   */
  static listen(
    reactor: Reactor,
    options: TlsListenOptions,
    onConnection: (conn: TlsConnection) => void = (conn) => conn.close(),
  ): TlsListener {
    if (typeof options !== "object" || options === null) {
      throw new TypeError("Cannot listen: options must be an object");
    }
    if (typeof onConnection !== "function") {
      throw new TypeError("Cannot listen: onConnection is not a function");
    }
    if (typeof options.tls !== "object" || options.tls === null) {
      throw new TypeError("Cannot listen: tls options must be an object");
    }
    finiteOption("listen", "ticketKeyRotationMs", options.tls.ticketKeyRotationMs, 0, {
      min: 0,
      max: MAX_TIMER_MS,
    });
    const tickets = new TicketKeyring(options.tls.ticketKeys);
    const contexts = serverContexts(options.tls, tickets);
    try {
      return new TlsListener(reactor, options, contexts, tickets, onConnection);
    } catch (e) {
      contexts.close();
      throw e;
    }
  }

  /** Hand an error to the listener's `onError`, else the reactor's. Never throws. */
  #report(error: unknown, conn?: TlsConnection): void {
    const handler = this.listener?.onError;
    if (handler !== undefined) {
      try {
        handler(error, conn?.transport);
        return;
      } catch (e) {
        error = e;
      }
    }
    reactorControl.report(this.listener.reactor, error, undefined);
  }

  /**
   * Serve new certificates (or other TLS options) from now on: new
   * handshakes use them, open connections keep theirs. The new options are
   * checked completely first; on error nothing changes.
   *
   * @example
   * ```ts
   * import { TlsListener } from "@ffinet/ffinet/tls";
   * import { Reactor } from "@ffinet/ffinet/reactor";
   * await using reactor = new Reactor();
   * using server = TlsListener.listen(reactor, {
   *   port: 0,
   *   tls: { cert: Deno.readTextFileSync("old.pem"), key: Deno.readTextFileSync("old.key") },
   * });
   * server.setTls({ cert: Deno.readTextFileSync("new.pem"), key: Deno.readTextFileSync("new.key") });
   * ```
   */
  setTls(options: TlsServerOptions): void {
    const next = serverContexts(options, this.#tickets);
    next.reportTo((error) => this.#report(error));
    const old = this.#contexts;
    this.#contexts = next;
    old.close();
  }

  #accept(conn: Connection): void {
    const contexts = this.#contexts;
    const ssl = Ssl.create(contexts.main);
    this.stats.inProgress++;
    this.#handshaking.add(
      new TlsConnection(conn, ssl, {
        handshakeTimeoutMs: contexts.handshakeTimeoutMs,
        highWaterMark: this.#highWaterMark,
        allowHalfOpen: this.#allowHalfOpen,
        hooks: this.#hooks,
      }),
    );
  }

  /**
   * Reset every connection whose handshake is still under way (they count
   * as failed handshakes). A server that stops serving calls it after
   * `close()`: those connections have not sent a request yet.
   *
   * @example
   * ```ts
   * import { TlsListener } from "@ffinet/ffinet/tls";
   * import { Reactor } from "@ffinet/ffinet/reactor";
   * await using reactor = new Reactor();
   * const server = TlsListener.listen(reactor, {
   *   port: 0,
   *   tls: { cert: Deno.readTextFileSync("cert.pem"), key: Deno.readTextFileSync("key.pem") },
   * });
   * server.close();
   * server.abortHandshakes();
   * ```
   */
  abortHandshakes(): void {
    for (const conn of [...this.#handshaking]) conn.abort();
  }

  #secure(conn: TlsConnection): void {
    this.#handshaking.delete(conn);
    this.stats.inProgress--;
    this.stats.handshakes++;
    if (conn.info?.sessionReused) this.stats.resumed++;
    this.onConnection(conn);
  }

  #failed(conn: TlsConnection, error: Error): void {
    this.#handshaking.delete(conn);
    this.stats.inProgress--;
    this.stats.failedHandshakes++;
    if (error instanceof Deno.errors.TimedOut) this.stats.timedOut++;
    try {
      this.onHandshakeError?.(error, conn);
    } catch (e) {
      this.#report(e);
    }
  }

  /** The bound address. @example `server.address()` */
  address(): SocketAddress {
    return this.listener.address();
  }

  /** Whether {@linkcode TlsListener.close} has run. */
  get closed(): boolean {
    return this.listener.closed;
  }

  /**
   * Stop listening and drop the contexts (each is freed when its last
   * connection closes). Accepted connections are not touched. Idempotent.
   *
   * @example
   * ```ts
   * import { TlsListener } from "@ffinet/ffinet/tls";
   * import { Reactor } from "@ffinet/ffinet/reactor";
   * await using reactor = new Reactor();
   * const server = TlsListener.listen(reactor, {
   *   port: 0,
   *   tls: { cert: Deno.readTextFileSync("cert.pem"), key: Deno.readTextFileSync("key.pem") },
   * });
   * server.close();
   * ```
   */
  close(): void {
    if (this.listener.closed) return;
    this.listener.close();
    this.#rotation?.cancel();
    this.#contexts.close();
  }

  /** Close (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }
}
