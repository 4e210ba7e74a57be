/**
 * systemd integration without libsystemd: {@linkcode notify} (`sd_notify`),
 * {@linkcode watchdogInterval} (`sd_watchdog_enabled`) and
 * {@linkcode listenFds} (`sd_listen_fds_with_names`, socket activation).
 *
 * @example A `Type=notify` service
 * ```ts
 * import { listenFds, notify, watchdogInterval } from "@ffinet/ffinet";
 * const inherited = listenFds(); // [{ fd: 3, name: "http" }] under socket activation
 * notify({ READY: "1", STATUS: "serving" });
 * const ms = watchdogInterval();
 * if (ms !== null) setInterval(() => notify("WATCHDOG=1"), ms / 2);
 * ```
 *
 * @module
 */
import { EAGAIN, ErrnoError } from "../ffi/errno.ts";
import { setCloexec } from "../ffi/fd.ts";
import { Socket } from "../ffi/socket.ts";
import { envDelete, envVar } from "./env.ts";

/** The first fd systemd passes (`SD_LISTEN_FDS_START`). */
export const SD_LISTEN_FDS_START = 3;

const encoder = new TextEncoder();

/** A notification: `"READY=1"` lines, or assignments such as `{ READY: "1" }`. */
export type NotifyState = string | Readonly<Record<string, string | number>>;

/** Options for {@linkcode notify}. */
export interface NotifyOptions {
  /** The socket address, `/path` or `@abstract` (default `$NOTIFY_SOCKET`). */
  socket?: string;
  /** Remove `NOTIFY_SOCKET` from the environment afterwards (default false). */
  unsetEnvironment?: boolean;
}

/**
 * Parse a `NOTIFY_SOCKET` value: an absolute path, or `@name` for the
 * abstract namespace. Throws `TypeError` for anything else (such as
 * systemd's `vsock:` addresses, which ffinet does not support).
 *
 * @example
 * ```ts
 * import { notifySocketAddress } from "./sd_notify.ts";
 * notifySocketAddress("@sd"); // { family: "unix", path: "\0sd" }
 * ```
 */
export function notifySocketAddress(value: string): { family: "unix"; path: string } {
  if (value.startsWith("/")) return { family: "unix", path: value };
  if (value.startsWith("@") && value.length > 1) {
    return { family: "unix", path: "\0" + value.slice(1) };
  }
  throw new TypeError(
    `Cannot notify: unsupported NOTIFY_SOCKET "${value}" (need an absolute path or @name)`,
  );
}

/**
 * The text of a notification: a string as it is, or `KEY=value` lines.
 * Throws `TypeError` for a key that is empty or has `=` or a newline, or a
 * value with a newline, which would change the message's meaning.
 *
 * @example
 * ```ts
 * import { formatNotifyState } from "@ffinet/ffinet/daemon";
 * formatNotifyState({ READY: 1, STATUS: "up" }); // "READY=1\nSTATUS=up"
 * ```
 */
export function formatNotifyState(state: NotifyState): string {
  if (typeof state === "string") return state;
  const lines: string[] = [];
  for (const [key, raw] of Object.entries(state)) {
    const value = String(raw);
    if (key === "" || /[=\n]/.test(key)) {
      throw new TypeError(`Cannot notify: invalid variable name ${JSON.stringify(key)}`);
    }
    if (value.includes("\n")) {
      throw new TypeError(`Cannot notify: the value of ${key} contains a newline`);
    }
    lines.push(`${key}=${value}`);
  }
  return lines.join("\n");
}

/**
 * Send a state notification to the service manager (`sd_notify(3)`): one
 * datagram on a Unix datagram socket to `$NOTIFY_SOCKET` (a path, or
 * `@name` for the abstract namespace). Common states: `READY=1`,
 * `RELOADING=1`, `STOPPING=1`, `STATUS=text`, `WATCHDOG=1`, `MAINPID=n`.
 *
 * Returns `false` when `NOTIFY_SOCKET` is unset (not run by systemd) and
 * `true` once the datagram is sent. It never waits: a full receive queue
 * (`EAGAIN`) or a refused connection throws an {@linkcode ErrnoError}.
 *
 * @example
 * ```ts
 * import { notify } from "@ffinet/ffinet";
 * notify("READY=1");
 * notify({ STATUS: "42 connections" });
 * notify({ STOPPING: "1" });
 * ```
 */
export function notify(state: NotifyState, options: NotifyOptions = {}): boolean {
  const target = options.socket ?? envVar("NOTIFY_SOCKET");
  if (target === undefined || target === "") return false;
  const address = notifySocketAddress(target);
  const bytes = encoder.encode(formatNotifyState(state));
  using socket = Socket.create("unix", "dgram");
  const n = socket.sendTo(bytes, address);
  if (n === null) {
    throw new ErrnoError("sendto", EAGAIN, { detail: `${target}: the notify queue is full` });
  }
  if (options.unsetEnvironment) envDelete("NOTIFY_SOCKET");
  return true;
}

/** An environment as {@linkcode parseWatchdog} and {@linkcode parseListenFds} read it. */
export type Environment = Readonly<Record<string, string | undefined>>;

/**
 * `sd_watchdog_enabled` on a given environment and pid: the watchdog
 * interval in milliseconds from `WATCHDOG_USEC`, or `null` when there is no
 * watchdog, the value is not a positive integer, or `WATCHDOG_PID` names
 * another process.
 *
 * @example
 * ```ts
 * import { parseWatchdog } from "@ffinet/ffinet/daemon";
 * parseWatchdog({ WATCHDOG_USEC: "3000000", WATCHDOG_PID: "42" }, 42); // 3000
 * ```
 */
export function parseWatchdog(env: Environment, pid: number): number | null {
  const usec = env.WATCHDOG_USEC;
  if (usec === undefined || !/^[0-9]{1,19}$/.test(usec)) return null;
  const value = Number(usec);
  if (value <= 0) return null;
  const owner = env.WATCHDOG_PID;
  if (owner !== undefined && owner !== "" && Number(owner) !== pid) return null;
  return value / 1000;
}

/**
 * The systemd watchdog interval in milliseconds, or `null` when this
 * process has no watchdog (`WATCHDOG_USEC` unset, invalid, or
 * `WATCHDOG_PID` is another process). Send `WATCHDOG=1` with
 * {@linkcode notify} at about half this interval.
 *
 * @example
 * ```ts
 * import { notify, watchdogInterval } from "@ffinet/ffinet";
 * const ms = watchdogInterval();
 * if (ms !== null) setInterval(() => notify("WATCHDOG=1"), ms / 2);
 * ```
 */
export function watchdogInterval(): number | null {
  return parseWatchdog(readEnv(["WATCHDOG_USEC", "WATCHDOG_PID"]), Deno.pid);
}

const LISTEN_VARIABLES = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] as const;

/** The readable ones of `names` (without `--allow-env` for a name, it reads as unset). */
function readEnv(names: readonly string[]): Environment {
  const env: Record<string, string | undefined> = {};
  for (const name of names) env[name] = envVar(name);
  return env;
}

/** One fd passed by socket activation. */
export interface ListenFd {
  /** The fd number (3, 4, ...). */
  fd: number;
  /** Its name from `LISTEN_FDNAMES` (`FileDescriptorName=`), or `"unknown"`. */
  name: string;
}

/**
 * The socket-activation fds an environment passes to process `pid`, with
 * their names, without touching them: `LISTEN_FDS` fds from 3 when
 * `LISTEN_PID` is `pid`, and none otherwise. Throws `RangeError` for a
 * malformed `LISTEN_FDS`, or a `LISTEN_FDNAMES` whose count differs.
 *
 * @example
 * ```ts
 * import { parseListenFds } from "@ffinet/ffinet/daemon";
 * parseListenFds({ LISTEN_PID: "7", LISTEN_FDS: "2", LISTEN_FDNAMES: "http:https" }, 7);
 * // [{ fd: 3, name: "http" }, { fd: 4, name: "https" }]
 * ```
 */
export function parseListenFds(env: Environment, pid: number): ListenFd[] {
  const owner = env.LISTEN_PID;
  if (owner === undefined || !/^[0-9]+$/.test(owner) || Number(owner) !== pid) return [];
  const count = env.LISTEN_FDS;
  if (count === undefined || !/^[0-9]{1,7}$/.test(count)) {
    throw new RangeError(`Cannot read LISTEN_FDS: "${count ?? ""}" is not a count`);
  }
  const n = Number(count);
  const names = env.LISTEN_FDNAMES === undefined ? null : env.LISTEN_FDNAMES.split(":");
  if (names !== null && n > 0 && names.length !== n) {
    throw new RangeError(
      `Cannot read LISTEN_FDNAMES: it names ${names.length} fds, LISTEN_FDS says ${n}`,
    );
  }
  const out: ListenFd[] = [];
  for (let i = 0; i < n; i++) {
    out.push({ fd: SD_LISTEN_FDS_START + i, name: names?.[i] || "unknown" });
  }
  return out;
}

/** Options for {@linkcode listenFds}. */
export interface ListenFdsOptions {
  /**
   * Remove `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES` from the
   * environment, so child processes do not take the fds for theirs
   * (default true, like `sd_listen_fds(1)`).
   */
  unsetEnvironment?: boolean;
}

/**
 * Socket activation (`sd_listen_fds_with_names(3)`): the fds systemd passed
 * to this process, from 3 on, when `LISTEN_PID` is this process. Each is set
 * close-on-exec, and the `LISTEN_*` variables are removed from the
 * environment (unless `unsetEnvironment` is false), whatever they held.
 *
 * @example
 * ```ts
 * import { listenFds } from "@ffinet/ffinet";
 * import { Socket } from "@ffinet/ffinet/ffi";
 * const sockets = listenFds().map(({ fd }) => new Socket(fd));
 * ```
 */
export function listenFds(options: ListenFdsOptions = {}): ListenFd[] {
  try {
    const fds = parseListenFds(readEnv(LISTEN_VARIABLES), Deno.pid);
    for (const { fd } of fds) setCloexec(fd, true);
    return fds;
  } finally {
    if (options.unsetEnvironment ?? true) {
      for (const name of LISTEN_VARIABLES) envDelete(name);
    }
  }
}
