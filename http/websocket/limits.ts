/**
 * The limits of a WebSocket connection, defined in one place: every size,
 * count and time the protocol enforces, with its default and its check.
 *
 * @module
 */

/**
 * Limits of one WebSocket connection. Every field is optional; a missing
 * field takes its default from {@linkcode DEFAULT_WEBSOCKET_LIMITS}.
 *
 * @example
 * ```ts
 * import { resolveWebSocketLimits } from "@ffinet/ffinet/websocket";
 * const limits = resolveWebSocketLimits({ maxMessageSize: 1 << 20 });
 * console.log(limits.maxFragments); // 1024
 * ```
 */
export interface WebSocketLimits {
  /**
   * The largest message received, in bytes after decompression (a frame or
   * an inflated message that grows past it fails the connection with 1009
   * while it arrives or inflates). Default 16 MiB.
   */
  maxMessageSize?: number;
  /** The most frames one message may arrive in (more: 1009). Default 1024. */
  maxFragments?: number;
  /**
   * The most bytes queued for a peer that does not read. A send that would
   * queue more is not queued: the connection closes with
   * {@linkcode WebSocketLimits.backpressureCloseCode} instead. A message
   * larger than what is left goes out in fragments while they fit (what
   * the kernel takes at once is not queued), so one large send cannot
   * queue more than the limit either. Default 16 MiB.
   */
  maxBufferedAmount?: number;
  /** The close code when `maxBufferedAmount` is passed: 1008 or 1009 (default). */
  backpressureCloseCode?: 1008 | 1009;
  /**
   * Milliseconds to wait for the peer's close frame (and its TCP close)
   * after ours before the connection is reset. Default 5000.
   */
  closeTimeoutMs?: number;
  /**
   * Seconds of silence from the peer before a ping; when the pong does not
   * come within as long again, the connection is closed (1006). 0 disables
   * it. Default 30 (the `idleTimeout` of `Deno.upgradeWebSocket`).
   */
  idleTimeout?: number;
}

/** {@linkcode WebSocketLimits} with every field set. */
export type ResolvedWebSocketLimits = Required<WebSocketLimits>;

/**
 * The default limits.
 *
 * @example
 * ```ts
 * import { DEFAULT_WEBSOCKET_LIMITS } from "@ffinet/ffinet/websocket";
 * console.log(DEFAULT_WEBSOCKET_LIMITS.maxMessageSize); // 16777216
 * ```
 */
export const DEFAULT_WEBSOCKET_LIMITS: Readonly<ResolvedWebSocketLimits> = Object.freeze({
  maxMessageSize: 16 * 1024 * 1024,
  maxFragments: 1024,
  maxBufferedAmount: 16 * 1024 * 1024,
  backpressureCloseCode: 1009,
  closeTimeoutMs: 5000,
  idleTimeout: 30,
});

/** The largest `maxMessageSize` and `maxBufferedAmount`: 1 GiB. */
const MAX_BYTES = 1024 * 1024 * 1024;

function integer(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(
      `Cannot use the WebSocket limits: ${name} ${
        typeof value === "string" ? JSON.stringify(value) : String(value)
      } is not an integer from ${min} to ${max}`,
    );
  }
  return value;
}

/** The frozen results of {@linkcode resolveWebSocketLimits}: resolving one again returns it. */
const resolvedLimits = new WeakSet<object>();
/**
 * Results by their values, so that the connections of one server share one
 * object (a few settings per process; at most 64 are kept).
 */
const internedLimits = new Map<string, ResolvedWebSocketLimits>();
const MAX_INTERNED = 64;

/**
 * Check `limits` and fill in the defaults. Each field is read once, so a
 * getter cannot change a value after its check. The result is frozen;
 * passing a result again returns it as it is (the parser of each
 * connection shares its session's limits).
 *
 * @throws {RangeError} For a value out of its range, naming the field.
 *
 * @example
 * ```ts
 * import { resolveWebSocketLimits } from "@ffinet/ffinet/websocket";
 * try {
 *   resolveWebSocketLimits({ maxFragments: 0 });
 * } catch (e) {
 *   console.log((e as RangeError).message); // Cannot use the WebSocket limits: maxFragments 0 …
 * }
 * ```
 */
export function resolveWebSocketLimits(limits: WebSocketLimits = {}): ResolvedWebSocketLimits {
  if (limits === null || typeof limits !== "object") {
    throw new TypeError("Cannot use the WebSocket limits: they are not an object");
  }
  if (resolvedLimits.has(limits)) return limits as ResolvedWebSocketLimits;
  const d = DEFAULT_WEBSOCKET_LIMITS;
  const pick = <K extends keyof WebSocketLimits>(key: K): unknown => {
    const v = limits[key];
    return v === undefined ? d[key] : v;
  };
  const code = pick("backpressureCloseCode");
  if (code !== 1008 && code !== 1009) {
    throw new RangeError(
      `Cannot use the WebSocket limits: backpressureCloseCode ${String(code)} is not 1008 or 1009`,
    );
  }
  const values: ResolvedWebSocketLimits = {
    maxMessageSize: integer("maxMessageSize", pick("maxMessageSize"), 1, MAX_BYTES),
    maxFragments: integer("maxFragments", pick("maxFragments"), 1, 1 << 20),
    maxBufferedAmount: integer("maxBufferedAmount", pick("maxBufferedAmount"), 1024, MAX_BYTES),
    backpressureCloseCode: code,
    closeTimeoutMs: integer("closeTimeoutMs", pick("closeTimeoutMs"), 1, 3_600_000),
    idleTimeout: integer("idleTimeout", pick("idleTimeout"), 0, 86_400),
  };
  const key =
    `${values.maxMessageSize} ${values.maxFragments} ${values.maxBufferedAmount} ${code} ${values.closeTimeoutMs} ${values.idleTimeout}`;
  const known = internedLimits.get(key);
  if (known !== undefined) return known;
  const resolved = Object.freeze(values);
  resolvedLimits.add(resolved);
  if (internedLimits.size < MAX_INTERNED) internedLimits.set(key, resolved);
  return resolved;
}
