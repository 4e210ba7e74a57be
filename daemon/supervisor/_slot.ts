/**
 * The supervisor's bookkeeping: one {@linkcode Worker} per process, one
 * {@linkcode Slot} per place a worker runs in, and how failures are
 * explained. Private to `supervisor.ts`.
 *
 * @module
 */
import type { Reactor } from "../../reactor/reactor.ts";
import type { Backoff } from "./backoff.ts";
import type { WorkerExit, WorkerState, WorkerStatus } from "./types.ts";
import { WorkerProcess, type WorkerProcessOptions } from "./worker_process.ts";
import type { WorkerChannel } from "./worker_channel.ts";

const STDERR_TAIL = 20;
/** How old a stderr line may be to explain an exit. */
const RECENT_STDERR_MS = 2000;

/** Lines that say nothing about a failure (Deno.serve's own banner). */
const NOISE = /^Listening on /;

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => resolve = r);
  return { promise, resolve };
}

/**
 * The most useful line of a worker's stderr: an ffinet error message
 * (`Cannot <action>: <reason>`) with Deno's `error: Uncaught …` prefix
 * removed, else the first line that looks like an error, else the last
 * line (never Deno.serve's `Listening on …` banner).
 *
 * @example
 * ```ts
 * import { explainFailure } from "./_slot.ts";
 * explainFailure(["error: Uncaught Error: Cannot bind: EADDRINUSE"]); // "Cannot bind: EADDRINUSE"
 * ```
 */
export function explainFailure(stderrLines: readonly string[]): string | null {
  const lines = stderrLines.filter((l) => !NOISE.test(l));
  for (const line of lines) {
    const m = /\bCannot [^:]+: .*$/.exec(line);
    if (m !== null) return m[0];
  }
  for (const line of lines) {
    const m = /^error: (?:Uncaught (?:\(in promise\) )?)?(.*)$/.exec(line);
    if (m !== null) return m[1]!;
  }
  const last = lines.findLast((l) => l.trim() !== "");
  return last === undefined ? null : last.trim();
}

/**
 * Where the README says how to run an app under the supervisor: what a
 * worker that binds its own port is pointed to.
 *
 * @example
 * ```ts
 * import { OWN_PORT_HELP } from "./_slot.ts";
 * console.log(OWN_PORT_HELP.includes("#apps-that-bind-their-own-port")); // true
 * ```
 */
export const OWN_PORT_HELP = "ffinet's README.md#apps-that-bind-their-own-port";

/** Lines showing an app that binds its own port (Deno.serve's banner, EADDRINUSE). */
const OWN_PORT = /^Listening on https?:\/\/|AddrInUse|EADDRINUSE|os error 98\b/;

/**
 * The advice for an app that binds its own port (`Deno.serve({ port })`,
 * `Deno.listen`) instead of taking the supervisor's socket, or null when its
 * stderr shows no sign of it.
 *
 * @example
 * ```ts
 * import { ownPortHint } from "./_slot.ts";
 * ownPortHint(["Listening on http://0.0.0.0:8000/"]); // "the app binds its own port …"
 * ```
 */
export function ownPortHint(stderrLines: readonly string[]): string | null {
  if (!stderrLines.some((l) => OWN_PORT.test(l))) return null;
  return "the app binds its own port (Deno.serve, Deno.listen) instead of taking the " +
    "supervisor's socket: use serve() from @ffinet/ffinet/http, or adopt the LISTEN_FDS " +
    `socket (fd 3) and send READY=1; see ${OWN_PORT_HELP}`;
}

/**
 * `exited with code 1` / `was killed by SIGKILL`.
 *
 * @example
 * ```ts
 * import { describeExit } from "./_slot.ts";
 * describeExit({ code: 137, signal: "SIGKILL" }); // "was killed by SIGKILL"
 * ```
 */
export function describeExit(exit: WorkerExit): string {
  return exit.signal !== null ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
}

/** One worker process and what the supervisor knows about it. */
export class Worker {
  /** Its slot. */
  readonly slot: Slot;
  /** The process. */
  readonly proc: WorkerProcess;
  /** Started by a reload, next to the slot's current worker. */
  readonly replacement: boolean;
  /** Whether it became ready. */
  isReady = false;
  /** The address it serves, once ready. */
  listeningOn: string | null = null;
  /** Set when the supervisor asked it to stop. */
  expected = false;
  /** It missed its start deadline. */
  timedOut = false;
  /** It was killed for a missed watchdog. */
  watchdogKilled = false;
  /** The last `STATUS=`. */
  statusText: string | null = null;
  /** When it last sent `WATCHDOG=1` (or became ready). */
  lastWatchdog = 0;
  /** Its last stderr lines. */
  stderrTail: string[] = [];
  /** When each line of `stderrTail` came (`Date.now()`). */
  stderrAt: number[] = [];
  /** Its stderr lines that show it binds its own port (for the hint). */
  ownPortLines: string[] = [];
  /** Resolves true when ready, false when it exits (or times out) first. */
  readonly ready: Deferred<boolean> = deferred<boolean>();
  /** Resolves once it was reaped. */
  readonly exited: Deferred<WorkerExit> = deferred<WorkerExit>();
  /** The start deadline. */
  startTimer: ReturnType<typeof setTimeout> | undefined;
  /** The `"listen"` readiness probe. */
  probeTimer: ReturnType<typeof setInterval> | undefined;
  /** Its channel (ticket keys, publishes), or null. */
  channel: WorkerChannel | null = null;

  /** Spawn it (throws what `posix_spawn` throws). */
  constructor(slot: Slot, reactor: Reactor, options: WorkerProcessOptions, replacement: boolean) {
    this.slot = slot;
    this.replacement = replacement;
    this.proc = WorkerProcess.spawn(reactor, options);
  }

  /** Keep a stderr line for failure reports. */
  noteStderr(line: string): void {
    if (OWN_PORT.test(line) && this.ownPortLines.length < 4) this.ownPortLines.push(line);
    if (line.trim() === "" || NOISE.test(line)) return;
    this.stderrTail.push(line);
    this.stderrAt.push(Date.now());
    if (this.stderrTail.length > STDERR_TAIL) {
      this.stderrTail.shift();
      this.stderrAt.shift();
    }
    this.slot.lastStderr = line.trim();
  }

  /**
   * The stderr lines of the last `windowMs` before `now`: what may explain
   * an exit. An older line (a warning printed at start, an hour before a
   * SIGKILL) says nothing about it.
   */
  recentStderr(now: number, windowMs = RECENT_STDERR_MS): string[] {
    return this.stderrTail.filter((_, i) => now - this.stderrAt[i]! <= windowMs);
  }

  /** The last meaningful stderr line, or null. */
  lastStderr(): string | null {
    return this.stderrTail.at(-1)?.trim() ?? null;
  }
}

/** One of the N places a worker runs in. */
export class Slot {
  /** The slot number. */
  readonly id: number;
  /** Its restart state. */
  readonly backoff: Backoff;
  /** The serving worker. */
  current: Worker | null = null;
  /** A replacement being started by a reload. */
  next: Worker | null = null;
  /** Its state. */
  state: WorkerState = "stopped";
  /** The pending restart delay. */
  pendingDelay: number | null = null;
  /** The pending restart. */
  restartTimer: ReturnType<typeof setTimeout> | undefined;
  /** Resets the backoff once the worker ran long enough. */
  stableTimer: ReturnType<typeof setTimeout> | undefined;
  /** How the previous process ended. */
  lastExit: WorkerExit | null = null;
  /** The last stderr line of any of its processes. */
  lastStderr: string | null = null;
  /** Its workers killed for a missed `WATCHDOG=1`. */
  watchdogKills = 0;

  /** A slot with its backoff state. */
  constructor(id: number, backoff: Backoff) {
    this.id = id;
    this.backoff = backoff;
  }

  /** Cancel its timers. */
  clearTimers(): void {
    clearTimeout(this.restartTimer);
    clearTimeout(this.stableTimer);
    this.restartTimer = this.stableTimer = undefined;
  }

  /** A snapshot (of `w`, default the current worker). */
  status(now: number, w: Worker | null = this.current, withUsage = true): WorkerStatus {
    const alive = w !== null && w.proc.alive;
    const usage = alive && withUsage ? w.proc.usage() : null;
    return {
      id: this.id,
      slot: this.id,
      pid: alive ? w.proc.pid : null,
      state: this.state,
      restarts: this.backoff.restarts,
      listeningOn: alive ? w.listeningOn : null,
      startedAt: alive ? w.proc.startedAt : null,
      uptimeMs: alive ? now - w.proc.startedAt : null,
      lastExit: this.lastExit,
      restartDelayMs: this.state === "backoff" ? this.pendingDelay : null,
      crashLooping: this.backoff.crashLooping,
      rssBytes: usage?.rssBytes ?? null,
      cpuMs: usage?.cpuMs ?? null,
      statusText: alive ? w.statusText : null,
      lastStderr: this.lastStderr,
      watchdogKills: this.watchdogKills,
      channelQueuedBytes: alive && w.channel !== null ? w.channel.queuedBytes : null,
    };
  }
}
