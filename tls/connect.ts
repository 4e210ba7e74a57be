/**
 * `connectTls()`: a TLS client connection on a reactor. It connects with
 * the reactor's `connect`, then runs the handshake: the server's
 * certificate must chain to `caCerts` (or to the system's authorities) and
 * name the host (DNS name or IP address), unless `rejectUnauthorized` is
 * false. Resolves once the handshake has completed.
 *
 * @module
 */
import { parseIPv4, parseIPv6 } from "../ffi/inet.ts";
import { Ssl } from "../ffi/openssl_ssl.ts";
import { connect, type ConnectOptions, type ConnectTarget } from "../reactor/connect.ts";
import { resolveConnectionOptions } from "../reactor/connection_options.ts";
import { type Reactor, reactorControl } from "../reactor/reactor.ts";
import { clientContext } from "./_contexts.ts";
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
    throw e;
  } finally {
    client.context.release(); // the Ssl holds its own reference
  }
  const made = ssl;
  return await new Promise<TlsConnection>((resolve, reject) => {
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
