/**
 * {@linkcode FfiTlsConn}: a connection with the shape of `Deno.TlsConn`:
 * the `FfiConn` adapter (reads, writes with backpressure, streams,
 * half-close, lifetime) over a `TlsConnection`, plus `handshake()`.
 *
 * @module
 */
import type { TlsConnection, TlsInfo } from "../tls/tls_connection.ts";
import { FfiConn } from "./conn.ts";

/**
 * A TLS connection with the shape of `Deno.TlsConn`, made by `listenTls`
 * (`accept()`), `connectTls` and `startTls`. Everything but `handshake()` is
 * {@linkcode FfiConn}'s, over the decrypted stream: `closeWrite()` sends
 * TLS close_notify, then half-closes.
 *
 * ffinet hands a connection over once its handshake has completed (a
 * failed handshake never reaches `accept()`; the listener counts it), so
 * `handshake()` resolves at once. `tlsInfo` tells more than Deno does: the
 * protocol version, cipher, SNI name, resumption and the peer certificate.
 *
 * @example
 * ```ts
 * import { connectTls } from "@ffinet/ffinet/deno";
 *
 * const conn = await connectTls({
 *   hostname: "localhost",
 *   port: 8443,
 *   caCerts: [Deno.readTextFileSync("ca.pem")],
 *   alpnProtocols: ["http/1.1"],
 * });
 * const { alpnProtocol } = await conn.handshake();
 * console.log(alpnProtocol, conn.tlsInfo?.protocol);
 * conn.close();
 * ```
 */
export class FfiTlsConn extends FfiConn<Deno.NetAddr, TlsConnection> implements Deno.TlsConn {
  /**
   * The ALPN protocol the handshake chose (`null` when none), as
   * `Deno.TlsConn.handshake()`. The handshake is already complete.
   *
   * @example
   * ```ts
   * import { connectTls } from "@ffinet/ffinet/deno";
   *
   * const conn = await connectTls({ hostname: "localhost", port: 8443, alpnProtocols: ["h2"] });
   * console.log((await conn.handshake()).alpnProtocol); // "h2" or null
   * conn.close();
   * ```
   */
  handshake(): Promise<Deno.TlsHandshakeInfo> {
    return Promise.resolve({ alpnProtocol: this.connection.info?.alpnProtocol ?? null });
  }

  /** What the handshake negotiated (ffinet extension). */
  get tlsInfo(): TlsInfo | undefined {
    return this.connection.info;
  }
}
