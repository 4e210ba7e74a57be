/**
 * Validation of `serve()`/`serveRaw()` options (private): every value is
 * checked before anything is bound, and a bad one is a `RangeError` or
 * `TypeError` naming the option.
 *
 * @module
 */
import { envVar } from "../reactor/_env.ts";
import type { ListenerPassthrough, NetAddr, ServeOptions, UnixAddr } from "./types.ts";

/** The options with defaults applied. */
export interface ResolvedOptions {
  hostname: string;
  port: number;
  portGiven: boolean;
  path: string | undefined;
  reusePort: boolean;
  signal: AbortSignal | undefined;
  onListen: (addr: NetAddr | UnixAddr) => void;
  maxHeaderBytes: number;
  maxBodyBytes: number;
  maxTargetBytes: number;
  headerTimeoutMs: number;
  bodyTimeoutMs: number;
  idleTimeoutMs: number;
  highWaterMark: number;
  drainTimeoutMs: number;
  /** The drain's grace for idle kept-alive connections (≤ drainTimeoutMs). */
  drainIdleMs: number;
  workers: number;
  listenFdName: string | undefined;
  /** Adopt an inherited socket (`LISTEN_FDS`) when there is one (false in serve Workers). */
  inherit: boolean;
  drainOnSignals: boolean;
  reactor: { sliceMs?: number; busyWaitMs?: number };
  listener: ListenerPassthrough;
}

function integer(
  options: Readonly<Record<string, unknown>>,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const value = options[name];
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new RangeError(
      `Cannot serve: ${name} must be an integer from ${min} to ${max}, got ${String(value)}`,
    );
  }
  return value;
}

function defaultOnListen(addr: NetAddr | UnixAddr): void {
  if (addr.transport === "unix") {
    console.error(`Listening on ${addr.path}`);
  } else {
    const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
    console.error(`Listening on http://${host}:${addr.port}/`);
  }
}

const MAX_MS = 2 ** 31 - 1;
/** The default drain grace for idle kept-alive connections. */
const DRAIN_IDLE_MS = 500;

/** Validate `options` and apply the defaults; `raw` selects serveRaw's defaults. */
export function resolveOptions(options: ServeOptions, raw: boolean): ResolvedOptions {
  const o = options as Readonly<Record<string, unknown>>;
  if (options.hostname !== undefined && typeof options.hostname !== "string") {
    throw new TypeError("Cannot serve: hostname must be a string");
  }
  if (options.path !== undefined && (typeof options.path !== "string" || options.path === "")) {
    throw new TypeError("Cannot serve: path must be a non-empty string");
  }
  if (options.onListen !== undefined && typeof options.onListen !== "function") {
    throw new TypeError("Cannot serve: onListen must be a function");
  }
  if (options.onError !== undefined && typeof options.onError !== "function") {
    throw new TypeError("Cannot serve: onError must be a function");
  }
  const workerId = envVar("FFINET_WORKER_ID");
  const drainTimeoutMs = integer(o, "drainTimeoutMs", 10_000, 0, MAX_MS);
  const drainIdleMs = integer(o, "drainIdleMs", Math.min(DRAIN_IDLE_MS, drainTimeoutMs), 0, MAX_MS);
  if (drainIdleMs > drainTimeoutMs) {
    throw new RangeError(
      `Cannot serve: drainIdleMs (${drainIdleMs}) must not exceed drainTimeoutMs (${drainTimeoutMs})`,
    );
  }
  return {
    hostname: options.hostname ?? "0.0.0.0",
    port: integer(o, "port", 8000, 0, 65535),
    portGiven: options.port !== undefined,
    path: options.path,
    reusePort: options.reusePort ?? false,
    signal: options.signal,
    onListen: options.onListen ?? defaultOnListen,
    maxHeaderBytes: integer(o, "maxHeaderBytes", raw ? 8192 : 16384, 64, 2 ** 24),
    maxBodyBytes: integer(
      o,
      "maxBodyBytes",
      raw ? 1024 * 1024 : Number.MAX_SAFE_INTEGER,
      1,
      Number.MAX_SAFE_INTEGER,
    ),
    maxTargetBytes: integer(o, "maxTargetBytes", 8192, 1, 2 ** 24),
    headerTimeoutMs: integer(o, "headerTimeoutMs", 10_000, 0, MAX_MS),
    bodyTimeoutMs: integer(o, "bodyTimeoutMs", 30_000, 0, MAX_MS),
    idleTimeoutMs: integer(o, "idleTimeoutMs", 60_000, 0, MAX_MS),
    highWaterMark: integer(o, "highWaterMark", 256 * 1024, 1, 2 ** 30),
    drainTimeoutMs,
    drainIdleMs,
    workers: integer(o, "workers", 1, 1, 1024),
    listenFdName: options.listenFdName,
    inherit: true,
    drainOnSignals: options.drainOnSignals ?? (workerId !== undefined && workerId !== ""),
    reactor: validateReactor(options.reactor ?? {}),
    listener: options.listener ?? {},
  };
}

function validateReactor(r: { sliceMs?: number; busyWaitMs?: number }): {
  sliceMs?: number;
  busyWaitMs?: number;
} {
  for (const name of ["sliceMs", "busyWaitMs"] as const) {
    const v = r[name];
    if (v !== undefined && !(typeof v === "number" && Number.isFinite(v) && v >= 0)) {
      throw new RangeError(`Cannot serve: reactor.${name} must be a number of milliseconds >= 0`);
    }
  }
  if (r.sliceMs === 0) throw new RangeError("Cannot serve: reactor.sliceMs must be positive");
  return r;
}
