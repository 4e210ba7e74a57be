/**
 * `connectTls()`: a TLS client connection on a reactor. It connects with
 * the reactor's `connect`, then runs the handshake: the server's
 * certificate must chain to `caCerts` (or to the system's authorities) and
 * name the host (DNS name or IP address), unless `rejectUnauthorized` is
 * false. Resolves once the handshake has completed. `startTls()` runs the
 * same client handshake on a connection that is already open.
 *
 * @module
 */
import { parseIPv4, parseIPv6 } from "../ffi/inet.ts";
import { Ssl } from "../ffi/openssl_ssl.ts";
import { connect, type ConnectOptions, type ConnectTarget } from "../reactor/connect.ts";
import type { Connection } from "../reactor/connection.ts";
import { resolveConnectionOptions } from "../reactor/connection_options.ts";
import { type Reactor, reactorControl } from "../reactor/reactor.ts";
import { type ClientContext, clientContext } from "./_contexts.ts";
import type { TlsClientOptions } from "./options.ts";
import { TlsConnection } from "./tls_connection.ts";

/** Options of {@linkcode connectTls}: the reactor's `connect` options plus TLS. */
export interface TlsConnectOptions extends ConnectOptions, TlsClientOptions {}

function isIpLiteral(host: string): boolean {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  return parseIPv4(bare) !== null || parseIPv6(bare) !== null;
}

/**
 * Connect and complete a TLS handshake. Rejects with an `OpenSslError`
 * ("Cannot complete TLS handshake: certificate verify failed (self-signed
 * certificate) …"), a `Deno.errors.TimedOut` when `handshakeTimeoutMs` runs
 * out, or the error `connect` gives.
 *
 * @example
 * ```ts
 * import { connectTls } from "@ffinet/ffinet/tls";
 * import { Reactor } from "@ffinet/ffinet/reactor";
 * await using reactor = new Reactor();
 * const running = reactor.run();
 * const conn = await connectTls(reactor, { host: "localhost", port: 8443 }, {
 *   caCerts: [Deno.readTextFileSync("ca.pem")],
 *   alpnProtocols: ["http/1.1"],
 * });
 * console.log(conn.info?.protocol, conn.info?.alpnProtocol);
 * conn.close();
 * reactor.stop();
 * await running;
 * ```
 */
export async function connectTls(
  reactor: Reactor,
  target: ConnectTarget,
  options: TlsConnectOptions = {},
): Promise<TlsConnection> {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("Cannot connect with TLS: options must be an object");
  }
  const {
    caCerts,
    serverName,
    alpnProtocols,
    cert,
    key,
    passphrase,
    rejectUnauthorized,
    handshakeTimeoutMs,
    trustSystemStore,
    ...plain
  } = options;
  const tlsOptions: TlsClientOptions = {};
  Object.assign(tlsOptions, {
    caCerts,
    serverName,
    alpnProtocols,
    cert,
    key,
    passphrase,
    rejectUnauthorized,
    handshakeTimeoutMs,
    trustSystemStore,
  });
  for (const k of Object.keys(tlsOptions) as (keyof TlsClientOptions)[]) {
    if (tlsOptions[k] === undefined) delete tlsOptions[k];
  }
  const host = typeof target === "object" && target !== null && "port" in target &&
      !("family" in target)
    ? target.host ?? "127.0.0.1"
    : undefined;
  const resolved = resolveConnectionOptions("connect with TLS", plain);
  const client = clientContext(tlsOptions, host);
  let transport;
  try {
    transport = await connect(reactor, target, plain);
  } catch (e) {
    client.context.release();
    throw e;
  }
  return await secureClient(transport, client, resolved);
}

/**
 * Run the client handshake over `transport` with `client`'s context (whose
 * reference this releases). Resolves with the connection once the
 * handshake has completed; on any failure the transport is gone.
 */
function secureClient(
  transport: Connection,
  client: ClientContext,
  resolved: { highWaterMark: number; allowHalfOpen: boolean },
): Promise<TlsConnection> {
  let ssl: Ssl | undefined;
  try {
    ssl = Ssl.create(client.context);
    const name = client.serverName;
    if (name === undefined && client.rejectUnauthorized) {
      throw new TypeError(
        "Cannot connect with TLS: give serverName (the name the certificate must carry)",
      );
    }
    if (name !== undefined) {
      if (!isIpLiteral(name)) ssl.setServerName(name);
      if (client.rejectUnauthorized) ssl.verifyHost(name);
    }
    if (client.alpnProtocols.length > 0) ssl.offerAlpn(client.alpnProtocols);
  } catch (e) {
    ssl?.free();
    transport.abort();
    return Promise.reject(e);
  } finally {
    client.context.release(); // the Ssl holds its own reference
  }
  const made = ssl;
  const reactor = transport.reactor;
  return new Promise<TlsConnection>((resolve, reject) => {
    new TlsConnection(transport, made, {
      handshakeTimeoutMs: client.handshakeTimeoutMs,
      highWaterMark: resolved.highWaterMark,
      allowHalfOpen: resolved.allowHalfOpen,
      hooks: {
        secure: resolve,
        failed: (_conn, error) => reject(error),
        report: (error) => reactorControl.report(reactor, error, undefined),
      },
    });
  });
}

/** Options of {@linkcode startTls}: the TLS client options, and the connection's. */
export interface TlsStartOptions extends TlsClientOptions {
  /**
   * The host the connection went to: the default `serverName` (sent as SNI
   * unless it is an IP address, and checked against the certificate).
   */
  host?: string;
  /** Ciphertext queued at which `write()` returns false. Default: the reactor's default. */
  highWaterMark?: number;
  /** Keep writing after the peer's close_notify or EOF. Default false. */
  allowHalfOpen?: boolean;
}

/**
 * Start TLS as a client on a connection that is already open (after a
 * plaintext exchange such as SMTP's or PostgreSQL's STARTTLS): the
 * `TlsConnection` takes the transport over (its handlers are replaced)
 * and resolves once the handshake has completed. Nothing may be left
 * unread on the transport: the server's first TLS bytes come after the
 * ClientHello. On any failure (bad options too) the transport is reset.
 * Rejects as {@linkcode connectTls} does.
 *
 * @example
 * ```ts
 * import { startTls } from "@ffinet/ffinet/tls";
 * import { connect, Reactor } from "@ffinet/ffinet/reactor";
 * await using reactor = new Reactor();
 * const running = reactor.run();
 * const plain = await connect(reactor, { host: "127.0.0.1", port: 8443 });
 * const conn = await startTls(plain, { host: "localhost", caCerts: [Deno.readTextFileSync("ca.pem")] });
 * console.log(conn.info?.protocol);
 * conn.close();
 * reactor.stop();
 * await running;
 * ```
 */
export function startTls(
  transport: Connection,
  options: TlsStartOptions = {},
): Promise<TlsConnection> {
  if (typeof options !== "object" || options === null) {
    return Promise.reject(new TypeError("Cannot start TLS: options must be an object"));
  }
  if (transport.state !== "open") {
    return Promise.reject(
      new Deno.errors.BadResource(`Cannot start TLS: the connection is ${transport.state}`),
    );
  }
  const { host, highWaterMark, allowHalfOpen, ...tlsOptions } = options;
  let resolved;
  let client;
  try {
    const plain: { highWaterMark?: number; allowHalfOpen?: boolean } = {};
    if (highWaterMark !== undefined) plain.highWaterMark = highWaterMark;
    if (allowHalfOpen !== undefined) plain.allowHalfOpen = allowHalfOpen;
    resolved = resolveConnectionOptions("start TLS", plain);
    client = clientContext(tlsOptions, host);
  } catch (e) {
    transport.abort();
    return Promise.reject(e);
  }
  transport.resume();
  return secureClient(transport, client, resolved);
}
