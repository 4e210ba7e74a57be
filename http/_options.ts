/**
 * Validation of `serve()`/`serveRaw()` options (private): every value is
 * checked before anything is bound, and a bad one is a `RangeError` or
 * `TypeError` naming the option.
 *
 * @module
 */
import { finiteOption, integerOption } from "../ffi/validate.ts";
import { envVar } from "../reactor/env.ts";
import {
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_MAX_STREAMED_BODY_BYTES,
  parserLimits,
} from "./parser/limits.ts";
import type { ListenerPassthrough, NetAddr, ServeOptions, UnixAddr } from "./types.ts";
import { TLS_SERVER_OPTION_KEYS, type TlsServerOptions } from "../tls/options.ts";

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
  maxHeaderCount: number;
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
  /** HTTPS: the TLS options (undefined: plaintext). */
  tls: TlsServerOptions | undefined;
}

function integer(
  options: Readonly<Record<string, unknown>>,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  return integerOption("serve", name, options[name], fallback, min, max);
}

// The line Deno.serve's default onListen writes, on the same stream (stderr,
// as Deno 2 does), so tools that wait for it work unchanged.
function defaultOnListen(addr: NetAddr | UnixAddr, scheme = "http"): void {
  if (addr.transport === "unix") {
    console.error(`Listening on ${addr.path}`);
  } else {
    const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
    const any = addr.hostname === "0.0.0.0" || addr.hostname === "::";
    const local = any ? ` (${scheme}://localhost:${addr.port}/)` : "";
    console.error(`Listening on ${scheme}://${host}:${addr.port}/${local}`);
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
  const tls = tlsOptions(options);
  const workerId = envVar("FFINET_WORKER_ID");
  // Under a supervisor, its --drain-timeout is the default (FFINET_DRAIN_TIMEOUT_MS).
  const supervisorDrain = envVar("FFINET_DRAIN_TIMEOUT_MS");
  const drainDefault = supervisorDrain !== undefined && /^[0-9]{1,9}$/.test(supervisorDrain)
    ? Math.min(Number(supervisorDrain), MAX_MS)
    : 10_000;
  const drainTimeoutMs = integer(o, "drainTimeoutMs", drainDefault, 0, MAX_MS);
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
    onListen: options.onListen ??
      (tls === undefined ? defaultOnListen : (addr) => defaultOnListen(addr, "https")),
    ...parserLimits(
      "serve",
      options,
      raw ? DEFAULT_MAX_BODY_BYTES : DEFAULT_MAX_STREAMED_BODY_BYTES,
    ),
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
    tls,
  };
}

/** The reactor options, checked with the bounds the Reactor itself applies. */
function validateReactor(r: { sliceMs?: number; busyWaitMs?: number }): {
  sliceMs?: number;
  busyWaitMs?: number;
} {
  finiteOption("serve", "reactor.sliceMs", r.sliceMs, 0, { above: 0, max: 60_000 });
  finiteOption("serve", "reactor.busyWaitMs", r.busyWaitMs, 0, { min: 0, max: 60_000 });
  return r;
}

/**
 * The TLS part of `options`: undefined without `cert`/`key`/`certificates`
 * (then any other TLS option is an error: it would be ignored). The
 * certificates themselves are checked when the server starts.
 */
function tlsOptions(options: ServeOptions): TlsServerOptions | undefined {
  const o = options as Readonly<Record<string, unknown>>;
  const given = [...Object.keys(TLS_SERVER_OPTION_KEYS), "keyFormat"].filter((k) =>
    o[k] !== undefined
  );
  if (o.keyFormat !== undefined && o.keyFormat !== "pem") {
    throw new TypeError(`Cannot serve: keyFormat must be "pem"`);
  }
  if (given.length === 0) return undefined;
  if (
    o.cert === undefined && o.key === undefined && o.certificates === undefined &&
    o.certFile === undefined && o.keyFile === undefined
  ) {
    throw new TypeError(
      `Cannot serve: ${given.join(", ")} ${given.length === 1 ? "needs" : "need"} cert and key`,
    );
  }
  // serve() speaks HTTP/1.1: it says so in ALPN, and offers nothing else.
  const alpn = o.alpnProtocols ?? ["http/1.1"];
  if (!Array.isArray(alpn) || alpn.some((p) => p !== "http/1.1")) {
    throw new TypeError(
      `Cannot serve: alpnProtocols may only list "http/1.1" (serve() speaks HTTP/1.1)`,
    );
  }
  const tls: Record<string, unknown> = {};
  for (const k of given) if (k !== "keyFormat") tls[k] = o[k];
  tls.alpnProtocols = alpn;
  return tls as TlsServerOptions;
}
