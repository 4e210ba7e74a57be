/**
 * The server side of the RFC 6455 §4.2 opening handshake: the checks of the
 * client's request and the `Sec-WebSocket-Accept` key.
 *
 * @module
 */
import { isServeRequest } from "../upgrade.ts";
import {
  type ResolvedWebSocketLimits,
  resolveWebSocketLimits,
  type WebSocketLimits,
} from "./limits.ts";
import {
  createMessageDeflate,
  type MessageDeflate,
  negotiatePerMessageDeflate,
  type PerMessageDeflateOptions,
} from "./permessage_deflate.ts";
import { sha1 } from "./_sha1.ts";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const encoder = new TextEncoder();
/** Where `acceptKey` puts its input (keys up to 64 UTF-16 units). */
const keyInput = new Uint8Array(64 * 3 + GUID.length);
const KEY = /^[A-Za-z0-9+/]{22}==$/;

/**
 * The `Sec-WebSocket-Accept` value for a client's `Sec-WebSocket-Key`
 * (RFC 6455 §4.2.2): base64 of SHA-1 of the key and the protocol's GUID.
 *
 * @example
 * ```ts
 * import { acceptKey } from "@ffinet/ffinet/websocket";
 * console.log(acceptKey("dGhlIHNhbXBsZSBub25jZQ==")); // s3pPLMBiTxaQ9kYGzzhZRbK+xOo=
 * ```
 */
export function acceptKey(key: string): string {
  // The key and the GUID as UTF-8 in a reused buffer (a client's key is 24
  // bytes: the handshake allocates no input copy).
  const input = key.length * 3 + GUID.length <= keyInput.length
    ? keyInput
    : new Uint8Array(key.length * 3 + GUID.length);
  const n = encoder.encodeInto(key, input).written;
  for (let i = 0; i < GUID.length; i++) input[n + i] = GUID.charCodeAt(i);
  const digest = sha1(input, n + GUID.length);
  return btoa(String.fromCharCode.apply(null, digest as unknown as number[]));
}

function hasToken(value: string | null, token: string): boolean {
  if (value === null) return false;
  return value.split(",").some((t) => t.trim().toLowerCase() === token);
}

/**
 * Check that `request` opens a WebSocket (RFC 6455 §4.2.1: GET, `Upgrade:
 * websocket`, `Connection: upgrade`, a 16-byte base64 `Sec-WebSocket-Key`,
 * `Sec-WebSocket-Version: 13`) and return its key.
 *
 * @throws {TypeError} Naming the header that is missing or wrong.
 *
 * @example
 * ```ts
 * import { checkHandshake } from "@ffinet/ffinet/websocket";
 * const key = checkHandshake(new Request("http://a/", {
 *   headers: {
 *     upgrade: "websocket",
 *     connection: "Upgrade",
 *     "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
 *     "sec-websocket-version": "13",
 *   },
 * }));
 * console.log(key); // dGhlIHNhbXBsZSBub25jZQ==
 * ```
 */
export function checkHandshake(request: Request): string {
  const fail = (what: string): never => {
    throw new TypeError(`Cannot upgrade to WebSocket: ${what}`);
  };
  if (request.method !== "GET") fail(`the method is ${request.method}, not GET`);
  const headers = request.headers;
  if (!hasToken(headers.get("upgrade"), "websocket")) {
    fail("the 'upgrade' header does not contain 'websocket'");
  }
  if (!hasToken(headers.get("connection"), "upgrade")) {
    fail("the 'connection' header does not contain 'upgrade'");
  }
  const version = headers.get("sec-websocket-version");
  if (version === null || version.trim() !== "13") {
    fail("the 'sec-websocket-version' header is not 13");
  }
  const key = headers.get("sec-websocket-key")?.trim() ?? "";
  if (!KEY.test(key)) fail("the 'sec-websocket-key' header is not 16 bytes in base64");
  return key;
}

/** What both upgrade shapes ask of a handshake. */
export interface HandshakeOptions {
  /** Limits for the connection; `idleTimeout` overrides `limits.idleTimeout`. */
  limits?: WebSocketLimits;
  /** The idle timeout (ms). */
  idleTimeout?: number;
  /** The subprotocol to answer with; it must be one the client offered. */
  protocol?: string;
  /** permessage-deflate: off (`false`, the default), on, or with options. */
  compression?: boolean | PerMessageDeflateOptions;
}

/** A handshake checked and negotiated: the 101's fields and what the session runs with. */
export interface Negotiated {
  /** The 101's WebSocket fields (accept key, subprotocol, extensions). */
  headers: Headers;
  /** The resolved limits. */
  limits: ResolvedWebSocketLimits;
  /** The answered subprotocol, or "". */
  protocol: string;
  /** The answered extensions header, or "". */
  extensions: string;
  /** The agreed compressor, if permessage-deflate was agreed. */
  deflate: MessageDeflate | undefined;
}

/** The default limits with each idle timeout used (a few per process; at most 64 kept). */
const defaultLimitsByIdle = new Map<number | undefined, ResolvedWebSocketLimits>();

/**
 * The limits of a handshake: `limits` with `idleTimeout` over its own. The
 * defaults are resolved once per idle timeout, not once per connection.
 */
function handshakeLimits(
  limits: WebSocketLimits | undefined,
  idleTimeout: number | undefined,
): ResolvedWebSocketLimits {
  if (limits === undefined) {
    const known = defaultLimitsByIdle.get(idleTimeout);
    if (known !== undefined) return known;
  }
  const limitsIn: WebSocketLimits = { ...limits };
  if (idleTimeout !== undefined) limitsIn.idleTimeout = idleTimeout;
  const resolved = resolveWebSocketLimits(limitsIn);
  if (limits === undefined && defaultLimitsByIdle.size < 64) {
    defaultLimitsByIdle.set(idleTimeout, resolved);
  }
  return resolved;
}

/**
 * Check a `serve()` request's WebSocket handshake and negotiate its
 * subprotocol and permessage-deflate: the one path of both upgrade shapes.
 * Throws `TypeError` naming what is wrong.
 */
export function negotiateHandshake(request: Request, options: HandshakeOptions): Negotiated {
  if (!isServeRequest(request)) {
    throw new TypeError(
      "Cannot upgrade to WebSocket: the request did not come from an ffinet serve() handler",
    );
  }
  const key = checkHandshake(request);
  const limits = handshakeLimits(options.limits, options.idleTimeout);
  const protocol = options.protocol ?? "";
  const headers = new Headers({ "sec-websocket-accept": acceptKey(key) });
  if (protocol !== "") {
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(protocol)) {
      throw new TypeError(
        `Cannot upgrade to WebSocket: protocol ${JSON.stringify(protocol)} is not a token`,
      );
    }
    const offered = (request.headers.get("sec-websocket-protocol") ?? "").split(",")
      .map((p) => p.trim());
    if (!offered.includes(protocol)) {
      throw new TypeError(
        `Cannot upgrade to WebSocket: protocol '${protocol}' is not in the request's protocol list`,
      );
    }
    headers.set("sec-websocket-protocol", protocol);
  }
  let extensions = "";
  let deflate: MessageDeflate | undefined;
  const compression = options.compression ?? false;
  if (compression !== false) {
    const agreed = negotiatePerMessageDeflate(
      request.headers.get("sec-websocket-extensions"),
      compression === true ? {} : compression,
    );
    if (agreed !== null) {
      extensions = agreed.header;
      headers.set("sec-websocket-extensions", extensions);
      deflate = createMessageDeflate(agreed);
    }
  }
  return { headers, limits, protocol, extensions, deflate };
}
