/**
 * The public types of {@linkcode Supervisor}: its options, its status
 * snapshot (what `serve status` shows) and its events.
 *
 * @example
 * ```ts
 * import type { SupervisorStatus } from "@ffinet/ffinet/daemon";
 * function pids(s: SupervisorStatus): (number | null)[] {
 *   return s.workers.map((w) => w.pid);
 * }
 * ```
 *
 * @module
 */
import type { ListenSpec } from "./listen_sockets.ts";
import type { RestartPolicyOptions } from "./backoff.ts";

export type { ListenSpec, RestartPolicyOptions };

/**
 * What a {@linkcode Supervisor} logs through: a subset of the `Logger` of
 * `syslog.ts`, which can be passed as it is.
 */
export interface SupervisorLogger {
  /** Routine events: started, stopping, rolling restart. */
  info(message: unknown, ...args: unknown[]): void;
  /** A worker exited unexpectedly, or had to be killed. */
  warning(message: unknown, ...args: unknown[]): void;
  /** A crash loop, a worker given up, a failed reload. */
  error(message: unknown, ...args: unknown[]): void;
}

/** Where a worker slot is in its life (`"listening"` means up: ready). */
export type WorkerState =
  | "starting"
  | "listening"
  | "backoff"
  | "stopping"
  | "stopped"
  | "failed";

/** Where a supervisor is in its life. */
export type SupervisorState =
  | "idle"
  | "starting"
  | "running"
  | "reloading"
  | "stopping"
  | "stopped";

/** How workers tell they are up (not the reactor's `Readiness` of an fd). */
export type ReadinessMode = "notify" | "listen" | "stdout";

/** How a worker process ended. */
export interface WorkerExit {
  /** The exit code (128 + n for signal n). */
  code: number;
  /** The signal that killed it, or null. */
  signal: Deno.Signal | null;
}

/** A snapshot of one worker slot. */
export interface WorkerStatus {
  /** The slot number, also the worker's `FFINET_WORKER_ID`. */
  id: number;
  /** Same as `id`. */
  slot: number;
  /** The current process's pid, or null while none runs. */
  pid: number | null;
  /** The slot's state. */
  state: WorkerState;
  /** Unexpected exits that were (or will be) followed by a restart. */
  restarts: number;
  /** The address it serves (shared sockets, or its `listening on` text), once up. */
  listeningOn: string | null;
  /** When the current process was started (`Date.now()`), or null. */
  startedAt: number | null;
  /** How long the current process has run, or null. */
  uptimeMs: number | null;
  /** How the previous process of this slot ended, or null. */
  lastExit: WorkerExit | null;
  /** The delay of the pending restart while in `"backoff"`, else null. */
  restartDelayMs: number | null;
  /** Whether the slot is in a crash loop. */
  crashLooping: boolean;
  /** Resident memory of the current process in bytes, or null. */
  rssBytes: number | null;
  /** User + system CPU time of the current process in ms, or null. */
  cpuMs: number | null;
  /** The last `STATUS=` the current process sent, or null. */
  statusText: string | null;
  /** The last non-empty stderr line of this slot's processes, or null. */
  lastStderr: string | null;
  /** Times a worker of this slot was killed for a missed `WATCHDOG=1`. */
  watchdogKills: number;
  /** Bytes queued on the current process's channel (it reads them slowly or not at all), or null. */
  channelQueuedBytes: number | null;
}

/** Supervisor-wide counters. */
export interface SupervisorCounters {
  /** Processes started. */
  spawned: number;
  /** Processes that ended, for any reason. */
  exits: number;
  /** Unexpected exits. */
  crashes: number;
  /** Workers killed for a missed `WATCHDOG=1`. */
  watchdogKills: number;
  /** Completed rolling reloads. */
  reloads: number;
  /** Abandoned rolling reloads. */
  failedReloads: number;
  /** WebSocket publishes read from workers (see `worker_channel.ts`). */
  published: number;
  /** Copies of them written to the other workers. */
  publishesRelayed: number;
  /** Copies dropped because a worker did not read its channel. */
  publishesDropped: number;
}

/** A snapshot of a supervisor. */
export interface SupervisorStatus {
  /** The supervisor's state. */
  state: SupervisorState;
  /** The supervisor's pid. */
  pid: number;
  /** When `start()` was called, or null. */
  startedAt: number | null;
  /** Time since `start()`, or null. */
  uptimeMs: number | null;
  /** `"shared"`: sockets passed on fd 3+; `"reuseport"`: the app binds; `"none"`. */
  mode: "shared" | "reuseport" | "none";
  /** How workers tell they are up. */
  readiness: ReadinessMode;
  /** The sockets the workers get (`fd` is the number in the worker: 3, 4, …). */
  listen: { fd: number; name: string; address: string }[];
  /** Counters since start. */
  counters: SupervisorCounters;
  /** One entry per slot. */
  workers: WorkerStatus[];
}

/** What {@linkcode SupervisorOptions.onEvent} receives. */
export type SupervisorEvent =
  | { type: "spawn"; id: number; pid: number; replacement: boolean }
  | { type: "listening"; id: number; pid: number; address: string }
  | {
    type: "exit";
    id: number;
    pid: number;
    code: number;
    signal: Deno.Signal | null;
    uptimeMs: number;
    /** True when the supervisor asked it to stop (shutdown or reload). */
    expected: boolean;
  }
  | { type: "status"; id: number; pid: number; text: string }
  | { type: "watchdog"; id: number; pid: number; silentMs: number }
  | { type: "restart-scheduled"; id: number; delayMs: number; restarts: number }
  | { type: "crash-loop"; id: number; crashes: number; windowMs: number; delayMs: number }
  | { type: "recovered"; id: number }
  | { type: "gave-up"; id: number; restarts: number }
  | { type: "reload-start" }
  | { type: "reload-done"; ok: boolean }
  | {
    type: "stopping";
    /** True for a stop asked for (`stop()`, a signal); false when start-up failed. */
    requested: boolean;
  }
  | { type: "stopped" };

/** Options for {@linkcode Supervisor}. */
export interface SupervisorOptions extends RestartPolicyOptions {
  /**
   * The program of every worker, e.g. `Deno.execPath()`. Not needed with
   * `app`.
   */
  command?: string | URL;
  /** Its arguments. */
  args?: readonly string[];
  /**
   * An app module (path or URL; a relative path is taken from the workers'
   * working directory) to run in each worker as the main module:
   * `deno run <denoFlags> --preload daemon/supervisor/worker_main.ts <app> <appArgs…>`.
   * In the app `import.meta.main` is true, `Deno.mainModule` is its URL and
   * `Deno.args` are `appArgs`; the preloaded `worker_main.ts` only watches
   * the lifeline (exits when the supervisor is gone).
   */
  app?: string | URL;
  /** Arguments for the app (its `Deno.args`). */
  appArgs?: readonly string[];
  /** The workers' `deno run` flags with `app` (default {@linkcode WORKER_PERMISSIONS}). */
  denoFlags?: readonly string[];
  /**
   * Sockets the supervisor binds once and passes to every worker on fd
   * 3, 4, … (`LISTEN_FDS`). Ignored when the supervisor was itself socket
   * activated: it passes those sockets on instead.
   */
  listen?: ListenSpec | readonly ListenSpec[];
  /**
   * `SO_REUSEPORT` mode: pass no socket; each worker binds the port itself
   * (e.g. `Deno.serve({ reusePort: true })`).
   */
  reusePort?: boolean;
  /**
   * How a worker tells it is up: `"notify"` (`READY=1` on `NOTIFY_SOCKET`),
   * `"listen"` (once it waits to accept on the socket, read from `/proc`)
   * or `"stdout"` (a `listening on ` line). Default: `"notify"` with `app`
   * or sockets, `"stdout"` otherwise. `READY=1` counts in every mode.
   */
  readiness?: ReadinessMode;
  /**
   * How long a ready worker may go without `WATCHDOG=1` before it is
   * killed and replaced: workers get `WATCHDOG_USEC` and `serve()` (and the
   * preloaded `worker_main.ts`) send `WATCHDOG=1` from their event loop,
   * so a blocked loop is a dead worker. Default: no watchdog.
   */
  watchdogMs?: number;
  /** How many workers, 1 to 1024 (default 1). */
  workers?: number;
  /** Extra environment for the workers (on top of the supervisor's own). */
  env?: Record<string, string>;
  /**
   * Under `user`, workers get only a small allow-list of the supervisor's
   * variables (`PATH`, `LANG`, `LC_*`, `TZ`, …) and the user's `HOME`; these
   * names are kept too.
   */
  passEnv?: readonly string[];
  /** The workers' working directory (default the supervisor's). */
  cwd?: string | URL;
  /** Run the workers as this user (name or uid), through `setpriv`; needs root. */
  user?: string | number;
  /** Their group (name or gid; default the user's primary group). Needs `user`. */
  group?: string | number;
  /** Same as `user` (older name). */
  uid?: number;
  /** Same as `group` (older name). */
  gid?: number;
  /** The dropped workers' `DENO_DIR` (default a private temporary one). */
  denoDir?: string;
  /** How long a worker may take to become ready (default 10 000 ms). */
  startTimeoutMs?: number;
  /** How long stopping workers may drain before SIGKILL (default 10 000 ms). */
  drainTimeoutMs?: number;
  /**
   * How often the TLS session ticket key every worker shares is replaced
   * (ms; default 3 600 000, an hour; 0 never). The supervisor makes the
   * keys in memory and hands them to each worker over its channel
   * (`FFINET_CHANNEL_FD`); workers keep the last three for decryption.
   */
  ticketKeyRotationMs?: number;
  /**
   * Bytes of WebSocket publishes queued for a worker that does not read its
   * channel before further ones to it are dropped (and logged). Default
   * 8 MiB; from 1 KiB to 1 GiB.
   */
  channelQueueBytes?: number;
  /** Where to log (default: warnings and errors to stderr). */
  logger?: SupervisorLogger;
  /** Called for every {@linkcode SupervisorEvent}. */
  onEvent?: (event: SupervisorEvent) => void;
  /**
   * Called for every line a worker prints (except the `listening on ` line
   * in `"stdout"` readiness). Default: the supervisor's stdout or stderr.
   */
  onOutput?: (line: string, stream: "stdout" | "stderr", worker: WorkerStatus) => void;
  /** SIGTERM/SIGINT stop, SIGHUP reloads (default false); also unblocks them. */
  handleSignals?: boolean;
  /** Start each worker in its own session (default true). */
  detached?: boolean;
  /**
   * Tell the supervisor's own service manager (its `NOTIFY_SOCKET`):
   * `READY=1` + `MAINPID`, `RELOADING=1`, `STOPPING=1` (default true).
   */
  notifyManager?: boolean;
  /** The manager's socket, instead of this process's `NOTIFY_SOCKET`. */
  managerSocket?: string;
  /**
   * The manager's watchdog interval in ms (default: this process's
   * `WATCHDOG_USEC`, when `WATCHDOG_PID` is unset or names it; 0: none).
   * Once started, the supervisor sends `WATCHDOG=1` to its manager at half
   * that interval, but only while it can still supervise
   * (`Supervisor.supervising`): a supervisor that gave a worker slot up, or
   * whose event loop is blocked, stops feeding it and the manager restarts
   * it (systemd's `WatchdogSec=`).
   */
  managerWatchdogMs?: number;
  /**
   * Send `READY=1` + `MAINPID` to the manager once every worker is ready
   * (default true). False when the caller says so itself later: a
   * supervisor taking over from another one is the main process only once
   * it holds the pid file.
   */
  announceReady?: boolean;
}

/** The default `deno run` flags of app workers: what a network server needs. */
export const WORKER_PERMISSIONS: readonly string[] = Object.freeze([
  "--allow-net",
  "--allow-env",
  "--allow-read",
  "--allow-ffi",
]);
