/**
 * {@linkcode listenTls} and {@linkcode connectTls}: TLS with the shapes of
 * `Deno.listenTls` and `Deno.connectTls`, on ffinet's TLS layer (OpenSSL
 * through FFI) and the same connection adapter as `listen`/`connect`.
 *
 * @module
 */
import { OpenSslError } from "../ffi/openssl_error.ts";
import {
  connectTls as connectTlsConnection,
  startTls as startTlsConnection,
  type TlsConnectOptions,
} from "../tls/connect.ts";
import type { TlsConnection } from "../tls/tls_connection.ts";
import { toDenoError } from "./_errors.ts";
import { detachConnection, FfiConn, wrapLeased } from "./conn.ts";
import { FfiListener } from "./listener.ts";
import { connectOptionsOf, DEFAULT_HWM, validateAdapterOptions } from "./options.ts";
import { acquire } from "./shared_reactor.ts";
import { FfiTlsConn } from "./tls_conn.ts";
import {
  type FfiStartTlsOptions,
  type FfiTlsConnectOptions,
  type FfiTlsListenOptions,
  tlsClientOptionsOf,
  tlsServerOptionsOf,
} from "./tls_options.ts";

/**
 * What {@linkcode listenTls} returns: a `Deno.TlsListener` whose
 * `accept()` gives {@linkcode FfiTlsConn}s.
 */
export type FfiTlsListener = FfiListener<Deno.NetAddr, FfiTlsConn>;

/**
 * Listen with TLS, like `Deno.listenTls`: returns at once, bound and
 * accepting. The certificates are loaded and checked first (a key that
 * does not match, an expired certificate, a wrong passphrase throw an
 * `OpenSslError` before anything is bound); binding failures throw Deno's
 * error classes (`Deno.errors.AddrInUse`).
 *
 * Differences from Deno, on purpose: `accept()` gives a connection once
 * its handshake has completed (a client that fails it never shows up; the
 * failures are counted in `tlsListener.stats`); ffinet's TLS options are
 * taken too: `certFile`/`keyFile` (re-read when the files change, so a
 * renewed certificate is served within a second), `certificates` chosen
 * by SNI, `passphrase`, client certificates (`ca`, `requestCert`).
 *
 * @example
 * ```ts
 * import { listenTls } from "@ffinet/ffinet/deno";
 *
 * const listener = listenTls({
 *   hostname: "127.0.0.1",
 *   port: 8443,
 *   cert: Deno.readTextFileSync("cert.pem"),
 *   key: Deno.readTextFileSync("key.pem"),
 *   alpnProtocols: ["echo"],
 * });
 * for await (const conn of listener) {
 *   console.log((await conn.handshake()).alpnProtocol);
 *   conn.readable.pipeTo(conn.writable);
 * }
 * ```
 */
export function listenTls(options: FfiTlsListenOptions): FfiTlsListener {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("Cannot listenTls: options must be an object");
  }
  if ((options as { transport?: unknown }).transport === "unix") {
    throw new TypeError('Cannot listenTls: transport must be "tcp"');
  }
  if (tlsServerOptionsOf(options) === undefined) {
    throw new TypeError("Cannot listenTls: give cert and key (or certFile and keyFile)");
  }
  return new FfiListener<Deno.NetAddr, FfiTlsConn>(options);
}

/**
 * A failed handshake as Deno reports one: `Deno.errors.InvalidData`
 * (rustls says "invalid peer certificate: UnknownIssuer"), with OpenSSL's
 * error as `cause`; other errors as `toDenoError` makes them.
 */
function toDenoTlsError(error: unknown): Error {
  if (error instanceof OpenSslError && error.action === "complete TLS handshake") {
    return new Deno.errors.InvalidData(error.message, { cause: error });
  }
  return toDenoError(error);
}

/**
 * Connect with TLS, like `Deno.connectTls`: resolves once the handshake has
 * completed. The server's certificate must chain to `caCerts` or to the
 * system's authorities (OpenSSL's store: `SSL_CERT_FILE`/`SSL_CERT_DIR`,
 * else the distribution's bundle; Deno uses its own Mozilla roots unless
 * `DENO_TLS_CA_STORE=system`) and carry
 * `hostname` (or `serverName`, which is also sent as SNI; default
 * `hostname` unless it is an IP address). A certificate that does not
 * verify rejects with `Deno.errors.InvalidData` (as Deno), whose `cause`
 * is the `OpenSslError` that says why ("certificate verify failed (unable
 * to get local issuer certificate)"); connection failures reject with
 * Deno's classes (`Deno.errors.ConnectionRefused`).
 *
 * @example
 * ```ts
 * import { connectTls } from "@ffinet/ffinet/deno";
 *
 * const conn = await connectTls({
 *   hostname: "localhost",
 *   port: 8443,
 *   caCerts: [Deno.readTextFileSync("ca.pem")],
 * });
 * await conn.write(new TextEncoder().encode("hello"));
 * conn.close();
 * ```
 */
export async function connectTls(options: FfiTlsConnectOptions): Promise<FfiTlsConn> {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("Cannot connectTls: options must be an object");
  }
  if ((options as { transport?: unknown }).transport === "unix") {
    throw new TypeError('Cannot connectTls: transport must be "tcp"');
  }
  validateAdapterOptions("connectTls", options);
  const tls = tlsClientOptionsOf(options);
  const { connect, conn: connOptions } = connectOptionsOf(options);
  const connectOptions: TlsConnectOptions = { ...tls, ...connect };
  const lease = acquire(options.reactor);
  let conn: TlsConnection;
  try {
    conn = await connectTlsConnection(
      lease.reactor,
      { host: options.hostname ?? "127.0.0.1", port: options.port },
      connectOptions,
    );
  } catch (e) {
    lease.release();
    throw toDenoTlsError(e);
  }
  return wrapLeased(conn, lease, (c) => new FfiTlsConn(c, connOptions));
}

/**
 * Upgrade a TCP connection of the adapters to TLS as a client, like
 * `Deno.startTls` (after a plaintext STARTTLS exchange: SMTP, PostgreSQL,
 * IMAP): resolves once the handshake has completed, with the certificate
 * checks of {@linkcode connectTls} against `hostname` (default
 * `"127.0.0.1"`). `conn` is closed for you from then on (its reads and
 * writes reject with `Deno.errors.BadResource`); the socket lives on in
 * the returned connection.
 *
 * Refused, leaving `conn` as it was, while a read or write of `conn` is
 * pending, once its `readable`/`writable` are in use, after a half-close,
 * and when bytes it received were not read (`Deno.errors.InvalidData`:
 * they would be lost). A failed handshake closes the socket.
 *
 * @example
 * ```ts
 * import { connect, startTls } from "@ffinet/ffinet/deno";
 *
 * const plain = await connect({ hostname: "127.0.0.1", port: 5432 });
 * // ... the protocol's plaintext request to start TLS, and its answer ...
 * const conn = await startTls(plain, {
 *   hostname: "db.internal",
 *   caCerts: [Deno.readTextFileSync("ca.pem")],
 * });
 * console.log((await conn.handshake()).alpnProtocol);
 * conn.close();
 * ```
 */
export async function startTls(
  conn: FfiConn<Deno.NetAddr>,
  options: FfiStartTlsOptions = {},
): Promise<FfiTlsConn> {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("Cannot startTls: options must be an object");
  }
  if (!(conn instanceof FfiConn)) {
    throw new TypeError(
      "Cannot startTls: conn is not a connection of the ffinet adapters (Deno's own take Deno.startTls)",
    );
  }
  const tls = tlsClientOptionsOf(options, "startTls");
  const hwm = options.highWaterMark ?? DEFAULT_HWM;
  validateAdapterOptions("startTls", options);
  const { connection, lease, options: connOptions } = detachConnection(conn, "startTls");
  let secured: TlsConnection;
  try {
    secured = await startTlsConnection(connection, {
      ...tls,
      host: options.hostname ?? "127.0.0.1",
      allowHalfOpen: true,
      highWaterMark: hwm,
    });
  } catch (e) {
    lease?.release();
    connOptions.onRelease?.();
    throw toDenoTlsError(e);
  }
  if (options.readBufferLimit !== undefined) connOptions.readBufferLimit = options.readBufferLimit;
  if (options.closeTimeoutMs !== undefined) connOptions.closeTimeoutMs = options.closeTimeoutMs;
  if (options.allowHalfOpen !== undefined) connOptions.allowHalfOpen = options.allowHalfOpen;
  return wrapLeased(secured, lease, (c) => new FfiTlsConn(c, connOptions));
}
