/**
 * The listener side of the PROXY protocol: a {@linkcode ProxyGate} screens
 * each accepted socket (peers outside the trusted CIDR list are refused at
 * once), then reads the header off the connection under its own timeout,
 * before the application sees the connection at all. A malformed, truncated,
 * oversized or late header closes the connection (with an RST, so the
 * sender notices); the application never hears of it. Once the header is
 * in, `conn.proxyInfo` holds it, `conn.remoteAddress()` returns the client's
 * address from it, and the bytes that followed the header in the same read
 * are passed to the application's `onData` right after `onConnection`.
 *
 * @module
 */
import type { SocketAddress } from "../../ffi/sockaddr.ts";
import type { Socket } from "../../ffi/socket.ts";
import type { Connection } from "../connection.ts";
import {
  checkProxyParserOptions,
  ProxyHeaderParser,
  type ProxyParserOptions,
  type ProxyProtocolError,
  type ProxyProtocolVersion,
} from "./protocol.ts";
import { TrustList } from "./trust.ts";

/** The `proxyProtocol` option of listeners (and of `serve()`). */
export interface ProxyProtocolOptions extends ProxyParserOptions {
  /** `"v1"` (text), `"v2"` (binary) or `"any"`. Only configured listeners read headers: never guess. */
  version: ProxyProtocolVersion;
  /**
   * Peers allowed to connect and send a header: CIDR blocks (`"10.0.0.0/8"`,
   * `"fd00::/8"`), bare addresses, or `"unix"` for peers on a Unix-socket
   * listener. Anyone else is refused at once.
   */
  trusted: readonly string[];
  /** How long the whole header may take to arrive, in ms (1–600000). Default 3000. */
  timeoutMs?: number;
}

/** What a gate has done, counted. */
export interface ProxyGateStats {
  /** Headers read; the connection was handed to the application. */
  accepted: number;
  /** Of those, v2 LOCAL headers (the proxy's own connections, e.g. health checks). */
  local: number;
  /** Connections refused because the peer is not in `trusted`. */
  untrusted: number;
  /** Connections closed because the header was malformed or oversized. */
  malformed: number;
  /** Connections closed because the header did not complete within `timeoutMs`. */
  timedOut: number;
  /** Connections the peer closed before the header was complete. */
  closedEarly: number;
  /** The last header error, for logs. */
  lastError: ProxyProtocolError | undefined;
}

/**
 * Validate a `proxyProtocol` option; throws `TypeError`/`RangeError` naming
 * the field, before any resource is taken.
 *
 * @example
 * ```ts
 * import { checkProxyProtocolOptions } from "./gate.ts";
 * checkProxyProtocolOptions({ version: "v2", trusted: ["127.0.0.1"] });
 * ```
 */
export function checkProxyProtocolOptions(options: ProxyProtocolOptions): void {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("Cannot use proxyProtocol: expected { version, trusted, timeoutMs? }");
  }
  if (options.version === undefined) {
    throw new TypeError('Cannot use proxyProtocol: version ("v1", "v2" or "any") is required');
  }
  checkProxyParserOptions(options);
  new TrustList(options.trusted);
  const t = options.timeoutMs;
  if (t !== undefined && (!Number.isInteger(t) || t < 1 || t > 600_000)) {
    throw new RangeError(
      `Cannot use proxyProtocol.timeoutMs ${t}: expected an integer in 1-600000`,
    );
  }
}

/**
 * Screens accepted sockets and reads their PROXY headers. Listeners make one
 * from their `proxyProtocol` option; it can also be driven by hand.
 *
 * @example
 * ```ts
 * import { ProxyGate } from "./gate.ts";
 * const gate = new ProxyGate({ version: "any", trusted: ["127.0.0.0/8"], timeoutMs: 2000 });
 * gate.stats.accepted; // 0
 * ```
 */
export class ProxyGate {
  /** Counters. */
  readonly stats: ProxyGateStats = {
    accepted: 0,
    local: 0,
    untrusted: 0,
    malformed: 0,
    timedOut: 0,
    closedEarly: 0,
    lastError: undefined,
  };
  readonly #trust: TrustList;
  readonly #parser: ProxyParserOptions;
  readonly #timeoutMs: number;

  /** Validate the options and build the gate. */
  constructor(options: ProxyProtocolOptions) {
    checkProxyProtocolOptions(options);
    this.#trust = new TrustList(options.trusted);
    const parser: ProxyParserOptions = { version: options.version };
    if (options.maxHeaderBytes !== undefined) parser.maxHeaderBytes = options.maxHeaderBytes;
    this.#parser = parser;
    this.#timeoutMs = options.timeoutMs ?? 3000;
  }

  /**
   * Check that `socket`'s peer may send a header: returns the peer's address,
   * or closes the socket (with an RST) and returns `undefined` when the peer
   * is not trusted or already gone.
   *
   * @example
   * ```ts
   * import { ProxyGate } from "./gate.ts";
   * import type { Socket } from "@ffinet/ffinet/ffi";
   * const gate = new ProxyGate({ version: "v2", trusted: ["10.0.0.0/8"] });
   * function onAccept(socket: Socket): void {
   *   const peer = gate.screen(socket);
   *   if (peer === undefined) return; // refused and closed
   *   console.log("proxy at", peer);
   * }
   * ```
   */
  screen(socket: Socket): SocketAddress | undefined {
    let peer: SocketAddress;
    try {
      peer = socket.remoteAddress();
    } catch {
      this.stats.closedEarly++;
      socket.close();
      return undefined;
    }
    if (this.#trust.trusts(peer)) return peer;
    this.stats.untrusted++;
    try {
      socket.setOption("linger", { seconds: 0 });
    } catch { /* already reset */ }
    socket.close();
    return undefined;
  }

  /**
   * Read the header off `conn` (whose socket passed {@linkcode ProxyGate.screen}
   * with peer `proxyAddress`), then set `conn.proxyInfo`, call `ready(conn)`
   * and pass the bytes that followed the header to `conn.onData`. The
   * connection's callbacks belong to the gate until `ready` runs.
   *
   * @example
   * ```ts
   * import { ProxyGate } from "./gate.ts";
   * import type { Connection } from "@ffinet/ffinet/reactor";
   * import type { SocketAddress } from "@ffinet/ffinet/ffi";
   * const gate = new ProxyGate({ version: "any", trusted: ["127.0.0.1", "::1"], timeoutMs: 2000 });
   * function onScreened(conn: Connection, peer: SocketAddress): void {
   *   gate.admit(conn, peer, (c) => console.log(c.proxyInfo, c.remoteAddress()));
   * }
   * ```
   */
  admit(conn: Connection, proxyAddress: SocketAddress, ready: (conn: Connection) => void): void {
    const parser = new ProxyHeaderParser(this.#parser);
    const stats = this.stats;
    const timer = conn.reactor.setTimeout(() => {
      stats.timedOut++;
      conn.onClose = undefined;
      conn.abort();
    }, this.#timeoutMs);
    conn.onClose = () => {
      timer.cancel();
      stats.closedEarly++;
    };
    conn.onData = (data) => {
      let header;
      try {
        header = parser.push(data);
      } catch (e) {
        timer.cancel();
        stats.malformed++;
        stats.lastError = e as ProxyProtocolError;
        conn.onData = undefined;
        conn.onClose = undefined;
        conn.abort();
        return;
      }
      if (header === null) return;
      timer.cancel();
      conn.onData = undefined;
      conn.onClose = undefined;
      conn.proxyInfo = { ...header, proxyAddress };
      stats.accepted++;
      if (header.command === "local") stats.local++;
      const rest = parser.rest;
      ready(conn);
      if (rest.length > 0 && (conn.state === "open" || conn.state === "ending")) {
        (conn.onData as Connection["onData"])?.(rest, conn);
      }
    };
  }
}
