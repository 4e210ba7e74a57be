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
 * old ones until they close. With `certFile`/`keyFile` it does so by itself
 * when the files change (checked every second; a pair that fails to load
 * is reported and the previous one kept).
 *
 * @module
 */
import { Ssl } from "../ffi/openssl_ssl.ts";
import type { SocketAddress } from "../ffi/sockaddr.ts";
import type { Connection } from "../reactor/connection.ts";
import { Listener, type ListenOptions } from "../reactor/listener.ts";
import { type Reactor, reactorControl } from "../reactor/reactor.ts";
import { resolveConnectionOptions } from "../reactor/connection_options.ts";
import { certFilesSignature, type ServerContexts, serverContexts } from "./_contexts.ts";
import {
  CERT_FILE_CHECK_MS,
  DEFAULT_TICKET_KEY_ROTATION_MS,
  type TlsServerOptions,
} from "./options.ts";
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
  /**
   * Connections that were given an OpenSSL connection object another
   * connection had finished with (cleared), rather than a new one.
   */
  recycled: number;
  /** Handshakes that failed, timed out, or whose peer went away first. */
  failedHandshakes: number;
  /** Of those, the ones that ran out of `handshakeTimeoutMs`. */
  timedOut: number;
  /** Handshakes under way now. */
  inProgress: number;
  /**
   * Connections closed after their handshake because the peer sent a
   * record OpenSSL rejected (a bad MAC, a malformed or oversized record).
   */
  badRecords: number;
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
  /**
   * Called when a peer's record is rejected after the handshake (the
   * alert has been sent and the connection is closing). Unset, the error
   * goes to the listener's `onError`, else it is logged with
   * `console.error` ("ffinet tls: Cannot read TLS data: the peer … sent a
   * bad record (the alert was sent): error:0A000119:SSL routines::
   * decryption failed or bad record mac").
   */
  onBadRecord: ((error: Error, conn: TlsConnection) => void) | undefined;
  /** Counters. */
  readonly stats: TlsListenerStats = {
    handshakes: 0,
    resumed: 0,
    recycled: 0,
    failedHandshakes: 0,
    timedOut: 0,
    inProgress: 0,
    badRecords: 0,
  };
  #contexts: ServerContexts;
  /** Waiters of {@linkcode TlsListener.handshakesSettled}, until the count reaches zero. */
  #settled: PromiseWithResolvers<void> | undefined;
  /** The TLS options in use (a copy), re-read when `certFile`/`keyFile` change. */
  #tls: TlsServerOptions;
  /** What `certFile`/`keyFile` looked like when last read; undefined without them. */
  #filesSeen: string | undefined;
  #fileCheck: Timer | undefined;
  /** Why the files last failed to load, reported if they are still the same at the next check. */
  #fileFailure: Error | undefined;
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
    badRecord: (conn, error) => this.#badRecord(conn, error),
  };

  private constructor(
    reactor: Reactor,
    options: TlsListenOptions,
    contexts: ServerContexts,
    tickets: TicketKeyring,
    onConnection: (conn: TlsConnection) => void,
    filesSeen: string | undefined,
  ) {
    this.#contexts = contexts;
    this.#tls = options.tls;
    this.#filesSeen = filesSeen;
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
    this.#scheduleFileCheck();
  }

  /** Look at `certFile`/`keyFile` again in a second (when the options name them). */
  #scheduleFileCheck(): void {
    this.#fileCheck?.cancel();
    this.#fileCheck = undefined;
    if (this.#filesSeen === undefined || this.closed) return;
    this.#fileCheck = this.listener.reactor.setTimeout(() => {
      this.#fileCheck = undefined;
      this.#checkFiles();
      this.#scheduleFileCheck();
    }, CERT_FILE_CHECK_MS);
  }

  /**
   * When `certFile` or `keyFile` changed since they were last read, load
   * them again. A pair that fails to load leaves the contexts in use, and
   * is reported when the files are still unchanged at the next check: a
   * pair written one file at a time (new certificate, old key) is not an
   * error worth reporting, a pair that stays bad is. The signature is taken
   * before reading, so a change made during the read is seen next time.
   */
  #checkFiles(): void {
    let seen: string | undefined;
    try {
      seen = certFilesSignature(this.#tls);
    } catch (e) {
      this.#report(e);
      return;
    }
    if (seen === this.#filesSeen) {
      const failure = this.#fileFailure;
      this.#fileFailure = undefined;
      if (failure !== undefined) this.#report(failure);
      return;
    }
    this.#filesSeen = seen;
    let next: ServerContexts;
    try {
      next = serverContexts(this.#tls, this.#tickets);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      this.#fileFailure = new Error(
        `Cannot reload the certificate from certFile/keyFile (the previous one is still served): ${why}`,
        { cause: e },
      );
      return;
    }
    this.#fileFailure = undefined;
    this.#install(next);
  }

  /** Serve `next` to new handshakes; the old contexts are freed with their last connection. */
  #install(next: ServerContexts): void {
    next.reportTo((error) => this.#report(error));
    const old = this.#contexts;
    this.#contexts = next;
    old.close();
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
    const tls: TlsServerOptions = { ...options.tls };
    finiteOption("listen", "ticketKeyRotationMs", tls.ticketKeyRotationMs, 0, {
      min: 0,
      max: MAX_TIMER_MS,
    });
    const tickets = new TicketKeyring(tls.ticketKeys);
    const filesSeen = certFilesSignature(tls);
    const contexts = serverContexts(tls, tickets);
    try {
      return new TlsListener(
        reactor,
        { ...options, tls },
        contexts,
        tickets,
        onConnection,
        filesSeen,
      );
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
   * checked completely first; on error nothing changes. With `certFile`/
   * `keyFile` this happens by itself when the files change; `setTls` with
   * the same options forces a reload now. Throws
   * `Deno.errors.BadResource` once the listener is closed.
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
    if (this.closed) {
      throw new Deno.errors.BadResource("Cannot set TLS options: the listener is closed");
    }
    if (typeof options !== "object" || options === null) {
      throw new TypeError("Cannot set TLS options: tls options must be an object");
    }
    const tls: TlsServerOptions = { ...options };
    const filesSeen = certFilesSignature(tls);
    this.#install(serverContexts(tls, this.#tickets));
    this.#tls = tls;
    this.#filesSeen = filesSeen;
    this.#fileFailure = undefined;
    this.#scheduleFileCheck();
  }

  #accept(conn: Connection): void {
    const contexts = this.#contexts;
    const ssl = Ssl.fromPool(contexts.pool);
    if (ssl.recycled) this.stats.recycled++;
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

  /**
   * Resolves once no handshake is under way: at once when none is, else
   * after the last one's `onConnection` or `onHandshakeError` has run. A
   * server that drains waits on it (with a deadline) before it stops.
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
   * await server.handshakesSettled();
   * ```
   */
  handshakesSettled(): Promise<void> {
    if (this.stats.inProgress === 0) return Promise.resolve();
    this.#settled ??= Promise.withResolvers<void>();
    return this.#settled.promise;
  }

  /** Resolve the waiters once the last handshake under way has ended. */
  #handshakeEnded(): void {
    const settled = this.#settled;
    if (settled === undefined || this.stats.inProgress !== 0) return;
    this.#settled = undefined;
    settled.resolve();
  }

  #secure(conn: TlsConnection): void {
    this.#handshaking.delete(conn);
    this.stats.inProgress--;
    this.stats.handshakes++;
    if (conn.info?.sessionReused) this.stats.resumed++;
    try {
      this.onConnection(conn);
    } finally {
      this.#handshakeEnded();
    }
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
    this.#handshakeEnded();
  }

  #badRecord(conn: TlsConnection, error: Error): void {
    this.stats.badRecords++;
    try {
      const onError = this.listener.onError;
      if (this.onBadRecord !== undefined) this.onBadRecord(error, conn);
      else if (onError !== undefined) onError(error, conn.transport);
      else console.error(`ffinet tls: ${error.message}`);
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
    this.#fileCheck?.cancel();
    this.#fileCheck = undefined;
    this.#contexts.close();
  }

  /** Close (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }
}
