/**
 * The options of the Deno-shaped adapters ({@linkcode "./mod.ts"}).
 *
 * @module
 */
import type { Reactor } from "../reactor/reactor.ts";
import type { ConnectOptions } from "../reactor/connect.ts";
import { integerOption } from "../ffi/validate.ts";

/** The address kinds the adapters use. */
export type FfiAddr = Deno.NetAddr | Deno.UnixAddr;

/** Options every adapter takes. */
export interface FfiAdapterOptions {
  /**
   * The reactor to run on. Default: the shared default reactor, run and
   * closed for you. A reactor you pass is yours to run and close (and
   * `ref()`/`unref()` do nothing then).
   */
  reactor?: Reactor;
  /** Bytes queued for sending at which `write()` starts waiting for a drain. Default 256 KiB. */
  highWaterMark?: number;
  /**
   * Bytes received and not yet read (by `read()` or from `readable`) at which
   * the connection stops reading from the socket. Default 256 KiB.
   */
  readBufferLimit?: number;
  /** How long `close()` may spend flushing queued output before a reset. Default 10 000 ms. */
  closeTimeoutMs?: number;
  /**
   * Keep a connection open after the peer's EOF until you call `close()`, so
   * that you can still write to it. Default false: once the peer has ended
   * and you have read everything (`read()` returned `null` or `readable`
   * ended), the connection sends what is queued and closes itself, so a
   * program that never calls `close()` leaks nothing (Node's default, and
   * what Deno does when `readable` ends). A connection on which you called
   * `closeWrite()` stays open until the peer's EOF either way.
   */
  allowHalfOpen?: boolean;
}

/** Options for wrapping a `Connection` in an `FfiConn` yourself. */
export interface FfiConnOptions extends Omit<FfiAdapterOptions, "reactor" | "highWaterMark"> {
  /** Called once when the connection has closed (e.g. to release a reactor). */
  onRelease?: () => void;
}

/** Options for a TCP `listen`, as for `Deno.listen`. */
export interface FfiTcpListenOptions extends FfiAdapterOptions {
  /** `"tcp"` (the default). */
  transport?: "tcp";
  /** The IP address to bind. Default `"0.0.0.0"`, as in Deno. */
  hostname?: string;
  /** The port; 0 (the default) asks the kernel for a free one. */
  port?: number;
  /** `SO_REUSEPORT`: several listeners share the port. Default false. */
  reusePort?: boolean;
  /** `listen(2)` backlog. Default 511. */
  backlog?: number;
}

/** Options for a Unix `listen`, as for `Deno.listen({ transport: "unix" })`. */
export interface FfiUnixListenOptions extends FfiAdapterOptions {
  /** `"unix"`. */
  transport: "unix";
  /** The socket path, or `"\0name"` for the abstract namespace. */
  path: string;
  /** The socket file's permission bits (ffinet extension). */
  mode?: number;
  /** `listen(2)` backlog. Default 511. */
  backlog?: number;
}

/** Options for a TCP `connect`, as for `Deno.connect`. */
export interface FfiTcpConnectOptions extends FfiAdapterOptions {
  /** `"tcp"` (the default). */
  transport?: "tcp";
  /** The host to connect to: an IP address or a name (resolved as by `Deno.connect`). Default `"127.0.0.1"`. */
  hostname?: string;
  /** The port. */
  port: number;
  /** Give up after this long (`Deno.errors.TimedOut`). Default 10 000 ms. */
  timeoutMs?: number;
  /** Abort the attempt. */
  signal?: AbortSignal;
}

/** Options for a Unix `connect`, as for `Deno.connect({ transport: "unix" })`. */
export interface FfiUnixConnectOptions extends FfiAdapterOptions {
  /** `"unix"`. */
  transport: "unix";
  /** The socket path, or `"\0name"` for the abstract namespace. */
  path: string;
  /** Give up after this long (`Deno.errors.TimedOut`). Default 10 000 ms. */
  timeoutMs?: number;
  /** Abort the attempt. */
  signal?: AbortSignal;
}

/** Default `highWaterMark`. */
export const DEFAULT_HWM = 256 * 1024;
/** Default `readBufferLimit`. */
export const DEFAULT_READ_LIMIT = 256 * 1024;
/** Default `closeTimeoutMs`. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 10_000;

/** The largest delay a timer takes (2^31 - 1 ms, as `setTimeout`). */
const MAX_DELAY_MS = 2 ** 31 - 1;

/**
 * Check the options every adapter takes (before any resource is taken):
 * a RangeError naming the option.
 */
export function validateAdapterOptions(call: string, options: FfiAdapterOptions): void {
  integerOption(call, "highWaterMark", options.highWaterMark, 1, 1, Number.MAX_SAFE_INTEGER);
  integerOption(call, "readBufferLimit", options.readBufferLimit, 1, 1, Number.MAX_SAFE_INTEGER);
  integerOption(call, "closeTimeoutMs", options.closeTimeoutMs, 0, 0, MAX_DELAY_MS);
}

/**
 * What a Deno-shaped connect (`connect`, `connectTls`) hands to the reactor:
 * the connect options (Deno's half-open streams, the write high-water mark,
 * the timeout and signal) and the adapter's own connection options.
 */
export function connectOptionsOf(
  options: FfiTcpConnectOptions | FfiUnixConnectOptions,
): { connect: ConnectOptions; conn: FfiConnOptions } {
  const connect: ConnectOptions = {
    allowHalfOpen: true,
    highWaterMark: options.highWaterMark ?? DEFAULT_HWM,
  };
  if (options.timeoutMs !== undefined) connect.timeoutMs = options.timeoutMs;
  if (options.signal !== undefined) connect.signal = options.signal;
  const conn: FfiConnOptions = {};
  if (options.readBufferLimit !== undefined) conn.readBufferLimit = options.readBufferLimit;
  if (options.closeTimeoutMs !== undefined) conn.closeTimeoutMs = options.closeTimeoutMs;
  if (options.allowHalfOpen !== undefined) conn.allowHalfOpen = options.allowHalfOpen;
  return { connect, conn };
}
