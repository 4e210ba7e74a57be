/**
 * A syslog {@linkcode Logger} that never blocks the event loop.
 *
 * Each message is one RFC 3164-style datagram,
 * `<PRI>Mmm dd hh:mm:ss ident[pid]: message`, sent on a non-blocking Unix
 * datagram socket connected to `/dev/log` (rsyslog, syslog-ng and journald all
 * listen there). A message that cannot be sent at once is dropped and
 * counted, never queued or waited for:
 *
 * - `EAGAIN` / `ENOBUFS`: the receiver is behind; the message is dropped.
 * - `ECONNREFUSED` and friends: the receiver went away (a restarted syslog
 *   daemon); the socket is closed and a reconnect is tried at most once per
 *   `reconnectInterval` (1 s by default).
 * - `ENOENT` / `EACCES` at connect: no syslog here; messages are dropped and
 *   counted, and optionally written to stderr instead (`stderrFallback`) or to
 *   `/dev/console` (`cons`, like `LOG_CONS`).
 *
 * The message is never a format string: `%n%s` is logged as those four
 * characters, and extra arguments are appended, separated by spaces.
 * Newlines, CRs and NULs in the ident or the message are escaped (`\n`,
 * `\r`, `\0`), so a message can never forge a second log line.
 * {@linkcode Logger.logFor} logs on behalf of another process (a worker),
 * tagged with that process's pid.
 *
 * @example
 * ```ts
 * import { createLogger } from "@ffinet/ffinet/daemon";
 * function main(): void {
 *   using log = createLogger({ ident: "myd", facility: "daemon", mask: "info" });
 *   log.info("listening on", { port: 8080 });
 *   log.debug("not sent: below the mask");
 *   console.log(log.stats); // { sent: 1, dropped: 0 }
 * }
 * ```
 *
 * @module
 */
import { MSG, O } from "../ffi/constants.ts";
import {
  EAGAIN,
  ECONNREFUSED,
  ECONNRESET,
  EINTR,
  ENOENT,
  EPIPE,
  Errno,
  ErrnoError,
} from "../ffi/errno.ts";
import { openFile } from "../ffi/process.ts";
import { checkInteger } from "../ffi/validate.ts";
import { encodeSockaddr } from "../ffi/sockaddr.ts";
import { Socket } from "../ffi/socket.ts";
import * as sys from "../ffi/syscalls.ts";
import {
  facilityByName,
  LOG_ALERT,
  LOG_CRIT,
  LOG_DEBUG,
  LOG_EMERG,
  LOG_ERR,
  LOG_FACMASK,
  LOG_INFO,
  LOG_LOCAL7,
  LOG_NOTICE,
  LOG_UPTO,
  LOG_WARNING,
} from "../ffi/syslog.ts";

/** The syslog facility names the {@linkcode Logger} accepts. */
export type SyslogFacilityName =
  | "kern"
  | "user"
  | "mail"
  | "daemon"
  | "auth"
  | "security"
  | "syslog"
  | "lpr"
  | "news"
  | "uucp"
  | "cron"
  | "authpriv"
  | "ftp"
  | "local0"
  | "local1"
  | "local2"
  | "local3"
  | "local4"
  | "local5"
  | "local6"
  | "local7";

/** The {@linkcode Logger}'s level method names, most severe first. */
export type SyslogLevel =
  | "emergency"
  | "alert"
  | "critical"
  | "error"
  | "warning"
  | "notice"
  | "info"
  | "debug";

/**
 * A priority name: a {@linkcode SyslogLevel} or one of the `<syslog.h>` and
 * std/log spellings (`"emerg"`, `"panic"`, `"crit"`, `"err"`, `"warn"`).
 */
export type SyslogPriorityName =
  | SyslogLevel
  | "emerg"
  | "panic"
  | "crit"
  | "err"
  | "warn";

/** The priority value (`LOG_*`) of every name, in lower case. */
const PRIORITIES: Readonly<Record<string, number>> = Object.freeze({
  emergency: LOG_EMERG,
  emerg: LOG_EMERG,
  panic: LOG_EMERG,
  alert: LOG_ALERT,
  critical: LOG_CRIT,
  crit: LOG_CRIT,
  error: LOG_ERR,
  err: LOG_ERR,
  warning: LOG_WARNING,
  warn: LOG_WARNING,
  notice: LOG_NOTICE,
  info: LOG_INFO,
  debug: LOG_DEBUG,
});

/** Options for {@linkcode Logger} and {@linkcode createLogger}. */
export interface LoggerOptions {
  /** The tag in front of every message (default `"ffinet"`). */
  ident?: string;
  /**
   * The facility, by name (`"daemon"`, `"local0"`, ...) or as its `LOG_*`
   * value (e.g. `LOG_DAEMON`, 24). Default `"daemon"`.
   */
  facility?: SyslogFacilityName | number;
  /** Add `[pid]` after the ident, like `LOG_PID` (default true). */
  pid?: boolean;
  /** Also write every message to stderr, like `LOG_PERROR` (default false). */
  perror?: boolean;
  /**
   * Write a message to `/dev/console` when the syslog socket cannot be
   * reached, like `LOG_CONS` (default false). Non-blocking too.
   */
  cons?: boolean;
  /**
   * Write a message to stderr when the syslog socket cannot be reached
   * (default false). Such messages still count as dropped.
   */
  stderrFallback?: boolean;
  /**
   * Which priorities are sent: a priority name means that priority and every
   * more severe one (`LOG_UPTO`), a number is a `setlogmask(3)` bit mask
   * (`LOG_MASK(p)` bits). Default `"debug"`: everything.
   */
  mask?: SyslogPriorityName | number;
  /**
   * The syslog socket (default `"/dev/log"`); a path starting with `"\0"`
   * names the abstract namespace.
   */
  path?: string;
  /** The least time between two reconnect attempts, in ms (default 1000). */
  reconnectInterval?: number;
}

/** Counters of a {@linkcode Logger}. */
export interface LoggerStats {
  /** Messages handed to the syslog socket. */
  sent: number;
  /**
   * Messages that could not be handed to it (receiver busy or absent, or
   * the logger closed). Messages filtered out by the mask are not counted.
   */
  dropped: number;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const SEND_FLAGS = MSG.DONTWAIT | MSG.NOSIGNAL;
const ENOBUFS = Errno.ENOBUFS!;
const ENOTCONN = Errno.ENOTCONN!;
const EDESTADDRREQ = Errno.EDESTADDRREQ!;
const ENOTSOCK = Errno.ENOTSOCK!;
/** `fcntl` command: a pipe's capacity (fails for anything but a pipe). */
const F_GETPIPE_SZ = 1032;
const encoder = new TextEncoder();

function pad2(n: number): string {
  return n < 10 ? `0${n}` : `${n}`;
}

let stampSecond = -1;
let stampText = "";

/** `Mmm dd hh:mm:ss` in local time, cached for the current second. */
function timestamp(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== stampSecond) {
    const d = new Date(now);
    const day = d.getDate();
    stampText = `${MONTHS[d.getMonth()]} ${day < 10 ? ` ${day}` : day} ${pad2(d.getHours())}:${
      pad2(d.getMinutes())
    }:${pad2(d.getSeconds())}`;
    stampSecond = second;
  }
  return stampText;
}

/**
 * Format one log argument as text: strings as they are, an `Error` as its
 * stack (or `name: message`, with its `cause`), other objects as JSON (falling
 * back to `Deno.inspect` for cycles and BigInts), everything else with
 * `String`.
 *
 * @example
 * ```ts
 * import { formatLogArgument } from "./syslog.ts";
 * formatLogArgument({ port: 80 }); // '{"port":80}'
 * formatLogArgument(new Error("boom")); // "Error: boom\n    at ..."
 * ```
 */
export function formatLogArgument(value: unknown): string {
  if (typeof value === "string") return value;
  if (value instanceof Error) {
    let text = value.stack ?? `${value.name}: ${value.message}`;
    if (value.cause !== undefined) text += `\nCaused by: ${formatLogArgument(value.cause)}`;
    return text;
  }
  if (typeof value === "object" && value !== null) {
    try {
      const json = JSON.stringify(value);
      if (json !== undefined) return json;
    } catch { /* cycles, BigInt: inspect below */ }
    return Deno.inspect(value, { compact: true, breakLength: Infinity, colors: false });
  }
  return String(value);
}

/**
 * The text of a message and its arguments, joined by spaces. The message is
 * never interpreted as a format.
 *
 * @example
 * ```ts
 * import { formatLogMessage } from "@ffinet/ffinet/daemon";
 * formatLogMessage("%s%n", [1, { a: 2 }]); // '%s%n 1 {"a":2}'
 * ```
 */
export function formatLogMessage(message: unknown, args: readonly unknown[]): string {
  let text = formatLogArgument(message);
  for (const arg of args) text += " " + formatLogArgument(arg);
  return text;
}

/**
 * Escape what could forge a log line: `\n` → `\\n`, `\r` → `\\r`, NUL →
 * `\\0`. A syslog receiver (or a terminal, or a file fed by `perror`) then
 * sees one line per message, whatever the message holds.
 *
 * @example
 * ```ts
 * import { escapeLogText } from "./syslog.ts";
 * escapeLogText("a\nfake[1]: line"); // "a\\nfake[1]: line"
 * ```
 */
export function escapeLogText(text: string): string {
  return /[\n\r\0]/.test(text)
    ? text.replace(/[\n\r\0]/g, (c) => c === "\n" ? "\\n" : c === "\r" ? "\\r" : "\\0")
    : text;
}

function resolveFacility(facility: SyslogFacilityName | number | undefined): number {
  if (facility === undefined) return facilityByName.daemon!;
  if (typeof facility === "number") {
    if (
      !Number.isInteger(facility) || facility < 0 || facility > LOG_LOCAL7 ||
      (facility & ~LOG_FACMASK) !== 0
    ) {
      throw new RangeError(
        `Cannot create logger: invalid syslog facility ${facility} (use a LOG_* facility value)`,
      );
    }
    return facility;
  }
  const key = String(facility).toLowerCase();
  if (!Object.hasOwn(facilityByName, key)) {
    throw new RangeError(`Cannot create logger: unknown syslog facility "${facility}"`);
  }
  return facilityByName[key]!;
}

function resolveMask(action: string, mask: SyslogPriorityName | number | undefined): number {
  if (mask === undefined) return 0xff;
  if (typeof mask === "number") {
    if (!Number.isInteger(mask) || mask < 0 || mask > 0xff) {
      throw new RangeError(`Cannot ${action}: invalid syslog mask ${mask} (use LOG_MASK bits)`);
    }
    return mask;
  }
  const key = String(mask).toLowerCase();
  if (!Object.hasOwn(PRIORITIES, key)) {
    throw new RangeError(`Cannot ${action}: unknown syslog priority "${mask}"`);
  }
  return LOG_UPTO(PRIORITIES[key]!);
}

/**
 * A best-effort, never-blocking writer to fd 2 (or to `/dev/console`).
 *
 * A socket is written with `MSG_DONTWAIT`; a pipe or terminal is reopened
 * through `/proc/self/fd/2` as a new, `O_NONBLOCK` open file description (so
 * the flag does not leak to whoever shares the original); anything else (a
 * regular file, `/dev/null`) is written through fd 2 itself, sharing its
 * offset with everyone else's writes (disk writes do not wait for a reader).
 */
class NonBlockingWriter {
  readonly #path: string | null;
  #fd = -1;
  #mode: "unknown" | "socket" | "direct" | "own" | "broken" = "unknown";

  /** `path` null: stderr; otherwise a device to open (`/dev/console`). */
  constructor(path: string | null) {
    this.#path = path;
  }

  #setup(): void {
    if (this.#path !== null) {
      try {
        this.#fd = openFile(this.#path, O.WRONLY | O.NOCTTY | O.NONBLOCK | O.CLOEXEC);
        this.#mode = "own";
      } catch {
        this.#mode = "broken";
      }
      return;
    }
    this.#fd = 2;
    // A pipe (F_GETPIPE_SZ works) or a terminal: a new open file description
    // of the same object, made O_NONBLOCK. (libc's open, not Deno's: Deno
    // asks for --allow-all to touch /proc/self.)
    if (sys.fcntl(2, F_GETPIPE_SZ, 0) >= 0 || Deno.stderr.isTerminal()) {
      try {
        this.#fd = openFile("/proc/self/fd/2", O.WRONLY | O.NOCTTY | O.NONBLOCK | O.CLOEXEC);
        this.#mode = "own";
        return;
      } catch { /* no /proc: write fd 2 as it is */ }
      this.#mode = "direct";
      return;
    }
    // A socket (journald's stream under systemd) takes MSG_DONTWAIT; anything
    // else (a regular file, /dev/null) answers ENOTSOCK and is written as is.
    this.#mode = "socket";
  }

  /** Write `bytes`; false when it would block or failed. */
  write(bytes: Uint8Array): boolean {
    if (this.#mode === "unknown") this.#setup();
    if (this.#mode === "broken") return false;
    const r = this.#mode === "socket"
      ? sys.send(this.#fd, bytes, bytes.byteLength, SEND_FLAGS)
      : sys.write(this.#fd, bytes);
    if (r === -ENOTSOCK && this.#mode === "socket") {
      this.#mode = "direct";
      return sys.write(this.#fd, bytes) >= 0;
    }
    return r >= 0;
  }

  close(): void {
    if (this.#mode === "own") sys.close(this.#fd);
    this.#fd = -1;
    this.#mode = "broken";
  }
}

/** How the last connect or send went. */
type LinkState = "connected" | "disconnected";

/**
 * A syslog client that never blocks: every call either hands its message to
 * the kernel at once or drops it and counts the drop in
 * {@linkcode Logger.stats}.
 *
 * The socket is connected when the logger is created; when that fails, or
 * the receiver goes away later, a reconnect is tried lazily (on a later
 * message) at most once per `reconnectInterval`. Unix datagram sockets keep
 * message boundaries, and `SOCK_STREAM`-only receivers are not supported.
 *
 * @example
 * ```ts
 * import { Logger } from "@ffinet/ffinet/daemon";
 * function main(): void {
 *   const log = new Logger({ ident: "myd", facility: "local0", perror: true });
 *   log.warning("disk at", 91, "%"); // <132>Jan  5 10:00:00 myd[123]: disk at 91 %
 *   log.error(new Error("boom"));
 *   log.close();
 * }
 * ```
 */
export class Logger implements Disposable {
  readonly #path: string;
  readonly #facility: number;
  readonly #tag: string;
  readonly #ident: string;
  readonly #perror: boolean;
  readonly #stderrFallback: boolean;
  readonly #cons: boolean;
  readonly #reconnectInterval: number;
  #mask: number;
  #socket: Socket | null = null;
  #state: LinkState = "disconnected";
  #lastAttempt = -Infinity;
  #closed = false;
  #sent = 0;
  #dropped = 0;
  #stderr: NonBlockingWriter | null = null;
  #console: NonBlockingWriter | null = null;
  #buffer = new Uint8Array(8192);

  /** Create a logger and connect it (without throwing when syslog is absent). */
  constructor(options: LoggerOptions = {}) {
    this.#facility = resolveFacility(options.facility);
    this.#mask = resolveMask("create logger", options.mask);
    const ident = escapeLogText(options.ident ?? "ffinet");
    this.#ident = ident;
    this.#tag = (options.pid ?? true) ? `${ident}[${Deno.pid}]: ` : `${ident}: `;
    this.#path = options.path ?? "/dev/log";
    try {
      encodeSockaddr({ family: "unix", path: this.#path });
    } catch (e) {
      throw new RangeError(`Cannot create logger: ${(e as Error).message}`, { cause: e });
    }
    this.#perror = options.perror ?? false;
    this.#stderrFallback = options.stderrFallback ?? false;
    this.#cons = options.cons ?? false;
    const interval = options.reconnectInterval ?? 1000;
    if (!(interval >= 0)) {
      throw new RangeError(`Cannot create logger: reconnectInterval ${interval} is negative`);
    }
    this.#reconnectInterval = interval;
    this.#connect();
  }

  /** The syslog socket path this logger sends to. */
  get path(): string {
    return this.#path;
  }

  /** The facility value (`LOG_*`) of every message. */
  get facility(): number {
    return this.#facility;
  }

  /** Whether the socket is connected now (as far as the last send knows). */
  get connected(): boolean {
    return this.#state === "connected";
  }

  /** Whether {@linkcode Logger.close} has run. */
  get closed(): boolean {
    return this.#closed;
  }

  /** A snapshot of the counters. @example `log.stats.dropped` */
  get stats(): LoggerStats {
    return { sent: this.#sent, dropped: this.#dropped };
  }

  /**
   * Change which priorities are sent (see {@linkcode LoggerOptions.mask})
   * and return the previous bit mask, like `setlogmask(3)`.
   *
   * @example
   * ```ts
   * import type { Logger } from "@ffinet/ffinet/daemon";
   * function onSigusr1(log: Logger): void {
   *   const old = log.setMask("debug");
   *   setTimeout(() => log.setMask(old), 60_000);
   * }
   * ```
   */
  setMask(mask: SyslogPriorityName | number): number {
    const previous = this.#mask;
    this.#mask = resolveMask("set syslog mask", mask);
    return previous;
  }

  /**
   * Whether a message at `priority` (a `LOG_*` value or a name) passes the mask.
   *
   * @example
   * ```ts
   * import type { Logger } from "@ffinet/ffinet/daemon";
   * function dump(log: Logger, state: object): void {
   *   if (log.isEnabled("debug")) log.debug(JSON.stringify(state));
   * }
   * ```
   */
  isEnabled(priority: SyslogPriorityName | number): boolean {
    const p = typeof priority === "number" ? priority & 7 : PRIORITIES[priority.toLowerCase()];
    return p !== undefined && (this.#mask & (1 << p)) !== 0;
  }

  /**
   * Log at `priority` (a `LOG_*` priority value or a name). A function
   * `message` is called only when the priority passes the mask, and its
   * result is logged.
   *
   * @example
   * ```ts
   * import type { Logger } from "@ffinet/ffinet/daemon";
   * import { LOG_ERR } from "@ffinet/ffinet/ffi";
   * function report(log: Logger, state: object): void {
   *   log.log("notice", "reloaded", { workers: 4 });
   *   log.log(LOG_ERR, () => `state: ${JSON.stringify(state)}`);
   * }
   * ```
   */
  log(priority: SyslogPriorityName | number, message: unknown, ...args: unknown[]): void {
    let p: number | undefined;
    if (typeof priority === "number") {
      p = priority & 7;
    } else {
      p = PRIORITIES[priority.toLowerCase()];
      if (p === undefined) {
        throw new RangeError(`Cannot log: unknown syslog priority "${priority}"`);
      }
    }
    this.#emit(p, message, args);
  }

  /**
   * Log on behalf of another process, e.g. a worker whose output the
   * supervisor forwards: the message is tagged `ident[pid]:` with that
   * `pid` (a positive integer) instead of this process's.
   *
   * @example
   * ```ts
   * import type { Logger } from "@ffinet/ffinet/daemon";
   * function forward(log: Logger, workerPid: number): void {
   *   log.logFor(workerPid, "err", "worker said this on stderr");
   * }
   * ```
   */
  logFor(
    pid: number,
    priority: SyslogPriorityName | number,
    message: unknown,
    ...args: unknown[]
  ): void {
    checkInteger("log", "pid", pid, 1, 0x7fffffff);
    let p: number | undefined;
    if (typeof priority === "number") p = priority & 7;
    else {
      p = PRIORITIES[priority.toLowerCase()];
      if (p === undefined) {
        throw new RangeError(`Cannot log: unknown syslog priority "${priority}"`);
      }
    }
    this.#emit(p, message, args, `${this.#ident}[${pid}]: `);
  }

  /** Log at `LOG_DEBUG`. @example `log.debug("state", state)` */
  debug(message: unknown, ...args: unknown[]): void {
    this.#emit(LOG_DEBUG, message, args);
  }

  /** Log at `LOG_INFO`. @example `log.info("listening on", addr)` */
  info(message: unknown, ...args: unknown[]): void {
    this.#emit(LOG_INFO, message, args);
  }

  /** Log at `LOG_NOTICE`. @example `log.notice("reloaded")` */
  notice(message: unknown, ...args: unknown[]): void {
    this.#emit(LOG_NOTICE, message, args);
  }

  /** Log at `LOG_WARNING`. @example `log.warning("slow client", addr)` */
  warning(message: unknown, ...args: unknown[]): void {
    this.#emit(LOG_WARNING, message, args);
  }

  /** Log at `LOG_WARNING` (the std/log name). @example `log.warn("slow client")` */
  warn(message: unknown, ...args: unknown[]): void {
    this.#emit(LOG_WARNING, message, args);
  }

  /** Log at `LOG_ERR`. @example `log.error("accept failed", err)` */
  error(message: unknown, ...args: unknown[]): void {
    this.#emit(LOG_ERR, message, args);
  }

  /** Log at `LOG_CRIT` (also the std/log name). @example `log.critical("out of fds")` */
  critical(message: unknown, ...args: unknown[]): void {
    this.#emit(LOG_CRIT, message, args);
  }

  /** Log at `LOG_ALERT`. @example `log.alert("certificate expired")` */
  alert(message: unknown, ...args: unknown[]): void {
    this.#emit(LOG_ALERT, message, args);
  }

  /** Log at `LOG_EMERG`. @example `log.emergency("cannot continue")` */
  emergency(message: unknown, ...args: unknown[]): void {
    this.#emit(LOG_EMERG, message, args);
  }

  /**
   * Close the socket (and any stderr or console fd). Later messages are
   * dropped and counted. Idempotent.
   *
   * @example
   * ```ts
   * import type { Logger } from "@ffinet/ffinet/daemon";
   * function shutdown(log: Logger): void {
   *   log.close();
   * }
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#disconnect();
    this.#stderr?.close();
    this.#console?.close();
  }

  /** Same as {@linkcode Logger.close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  #emit(priority: number, message: unknown, args: unknown[], tag = this.#tag): void {
    if ((this.#mask & (1 << priority)) === 0) return;
    if (this.#closed) {
      this.#dropped++;
      return;
    }
    const text = formatLogMessage(typeof message === "function" ? message() : message, args);
    const body = tag + escapeLogText(text);
    if (this.#perror) this.#writeStderr(body);
    const line = `<${this.#facility | priority}>${timestamp()} ${body}`;
    let bytes: Uint8Array;
    const { read, written } = encoder.encodeInto(line, this.#buffer);
    if (read === line.length) bytes = this.#buffer.subarray(0, written);
    else bytes = encoder.encode(line);
    if (this.#send(bytes)) {
      this.#sent++;
      return;
    }
    this.#dropped++;
    if (this.#state === "disconnected") {
      if (this.#stderrFallback && !this.#perror) this.#writeStderr(body);
      if (this.#cons) {
        this.#console ??= new NonBlockingWriter("/dev/console");
        this.#console.write(encoder.encode(body + "\r\n"));
      }
    }
  }

  #writeStderr(body: string): void {
    this.#stderr ??= new NonBlockingWriter(null);
    this.#stderr.write(encoder.encode(body + "\n"));
  }

  /** Send one datagram; false when it was not sent. */
  #send(bytes: Uint8Array): boolean {
    if (this.#state !== "connected" && !this.#maybeReconnect()) return false;
    for (let attempt = 0;; attempt++) {
      const r = sys.send(this.#socket!.fd, bytes, bytes.byteLength, SEND_FLAGS);
      if (r >= 0) return true;
      if (r === -EAGAIN || r === -ENOBUFS || r === -EINTR) return false;
      if (
        r === -ECONNREFUSED || r === -ENOTCONN || r === -ECONNRESET || r === -EPIPE ||
        r === -EDESTADDRREQ || r === -ENOENT
      ) {
        // The receiver is gone (e.g. syslogd restarted and bound a new socket).
        this.#disconnect();
        if (attempt === 0 && this.#maybeReconnect()) continue;
        return false;
      }
      return false; // EMSGSIZE and the like: this message only
    }
  }

  #maybeReconnect(): boolean {
    if (performance.now() - this.#lastAttempt < this.#reconnectInterval) return false;
    return this.#connect();
  }

  #connect(): boolean {
    this.#lastAttempt = performance.now();
    this.#disconnect();
    let socket: Socket | null = null;
    try {
      socket = Socket.create("unix", "dgram");
      socket.connect({ family: "unix", path: this.#path });
    } catch (e) {
      socket?.close();
      if (e instanceof ErrnoError) return false; // absent, refused, not permitted: drop
      throw e;
    }
    this.#socket = socket;
    this.#state = "connected";
    return true;
  }

  #disconnect(): void {
    this.#state = "disconnected";
    const s = this.#socket;
    this.#socket = null;
    s?.close();
  }
}

/**
 * Create a {@linkcode Logger}: the same as `new Logger(options)`.
 *
 * @example
 * ```ts
 * import { createLogger } from "@ffinet/ffinet/daemon";
 * function main(): void {
 *   const log = createLogger({ ident: "myd", facility: "local3", mask: "notice" });
 *   log.notice("started");
 *   log.close();
 * }
 * ```
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  return new Logger(options);
}
