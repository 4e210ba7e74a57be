/**
 * `Supervisor`: runs N worker processes, restarts the ones that crash with an
 * exponential backoff, detects crash loops, drains them on shutdown and
 * replaces them one at a time on reload.
 *
 * - **Workers** are started with `Deno.Command` (never `fork`), one per slot
 *   `0..workers-1`, each in a session of its own (so a terminal's Ctrl-C
 *   reaches only the supervisor, which drains them); each gets
 *   `FFINET_WORKER_ID=<slot>` in its environment
 *   and loses the service manager's variables (`NOTIFY_SOCKET`,
 *   `LISTEN_FDS`, `LISTEN_PID`, `LISTEN_FDNAMES`, `WATCHDOG_USEC`,
 *   `WATCHDOG_PID`), which belong to the supervisor.
 * - **Up** means listening: a worker counts as up once it prints a line
 *   starting with `listening on ` on stdout. Its stdout and stderr are piped;
 *   every other line goes to `onOutput` (by default to the supervisor's own
 *   stdout and stderr), and the last stderr lines are kept to explain a
 *   failure (`Cannot bind: EADDRINUSE (Address already in use) [...]`).
 * - **Restarts** (PM2-like): a worker that exits unexpectedly is started
 *   again after `restartDelayMs` (100 ms), then ×`restartDelayFactor` (1.5)
 *   per consecutive crash, capped at `maxRestartDelayMs` (15 s). A worker
 *   that ran `stableAfterMs` (30 s) resets the delay.
 * - **Crash loops**: `crashLoopCount` (5) crashes of one slot within
 *   `crashLoopWindowMs` (60 s) mark the slot as crash looping: the logger's
 *   `error` says so once (and `info` when it recovers), a `"crash-loop"`
 *   event fires, and restarts keep following the growing backoff instead of
 *   spinning. `maxRestarts` (default unlimited) gives a slot up entirely.
 * - **Shutdown** ({@linkcode Supervisor.stop}, or SIGTERM/SIGINT with
 *   `handleSignals`): SIGTERM to every worker, SIGKILL to those still
 *   running after `drainTimeoutMs` (10 s); resolves once every child's
 *   status has been collected, so no zombie is left.
 * - **Reload** ({@linkcode Supervisor.reload}, or SIGHUP with
 *   `handleSignals`): a rolling restart. For each slot in turn a new worker
 *   is started, and only once it listens is the old one sent SIGTERM and
 *   awaited. With `SO_REUSEPORT` old and new listen on the port together,
 *   so no connection is refused.
 *
 * @example
 * ```ts ignore
 * import { Supervisor } from "./supervisor.ts";
 * const sup = new Supervisor({
 *   command: Deno.execPath(),
 *   args: ["run", "--allow-net", "server.ts", "--port", "8080", "--reuse-port"],
 *   workers: 2,
 *   handleSignals: true,
 * });
 * await sup.start();
 * console.log(sup.status());
 * await sup.finished; // until SIGTERM
 * ```
 *
 * @module
 */
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

/** Where a worker slot is in its life. */
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

/** How a worker process ended. */
export interface WorkerExit {
  /** The exit code (128 + n for a signal, as `Deno.CommandStatus` reports it). */
  code: number;
  /** The signal that killed it, or null. */
  signal: Deno.Signal | null;
}

/** A snapshot of one worker slot. */
export interface WorkerStatus {
  /** The slot number, also the worker's `FFINET_WORKER_ID`. */
  id: number;
  /** The current process's pid, or null while none runs. */
  pid: number | null;
  /** The slot's state. */
  state: WorkerState;
  /** Unexpected exits that were (or will be) followed by a restart. */
  restarts: number;
  /** What the current process printed after `listening on `, once it did. */
  listeningOn: string | null;
  /** When the current process was started (`Date.now()`), or null. */
  startedAt: number | null;
  /** How the previous process of this slot ended, or null. */
  lastExit: WorkerExit | null;
  /** The delay of the pending restart while in `"backoff"`, else null. */
  restartDelayMs: number | null;
  /** Whether the slot is in a crash loop. */
  crashLooping: boolean;
}

/** A snapshot of a supervisor. */
export interface SupervisorStatus {
  /** The supervisor's state. */
  state: SupervisorState;
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
  | { type: "restart-scheduled"; id: number; delayMs: number; restarts: number }
  | { type: "crash-loop"; id: number; crashes: number; windowMs: number; delayMs: number }
  | { type: "recovered"; id: number }
  | { type: "gave-up"; id: number; restarts: number }
  | { type: "reload-start" }
  | { type: "reload-done"; ok: boolean }
  | { type: "stopping" }
  | { type: "stopped" };

/** Options for {@linkcode Supervisor}. */
export interface SupervisorOptions {
  /** The program of every worker, e.g. `Deno.execPath()`. */
  command: string | URL;
  /** Its arguments. */
  args?: readonly string[];
  /** How many workers (default 1). */
  workers?: number;
  /** Extra environment for the workers (on top of the supervisor's own). */
  env?: Record<string, string>;
  /** The workers' working directory (default the supervisor's). */
  cwd?: string | URL;
  /** Run the workers as this user id (the supervisor must be root). */
  uid?: number;
  /** Run the workers as this group id (the supervisor must be root). */
  gid?: number;
  /** The first restart delay (default 100 ms). */
  restartDelayMs?: number;
  /** The factor applied per consecutive crash (default 1.5). */
  restartDelayFactor?: number;
  /** The cap on the delay (default 15 000 ms). */
  maxRestartDelayMs?: number;
  /** A worker that ran this long resets the delay (default 30 000 ms). */
  stableAfterMs?: number;
  /** Crashes within `crashLoopWindowMs` that make a crash loop (default 5). */
  crashLoopCount?: number;
  /** The crash loop window (default 60 000 ms). */
  crashLoopWindowMs?: number;
  /** Give a slot up after this many restarts (default Infinity). */
  maxRestarts?: number;
  /** How long a worker may take to print `listening on ` (default 10 000 ms). */
  startTimeoutMs?: number;
  /** How long stopping workers may drain before SIGKILL (default 10 000 ms). */
  drainTimeoutMs?: number;
  /** Where to log (default: warnings and errors to stderr). */
  logger?: SupervisorLogger;
  /** Called for every {@linkcode SupervisorEvent}. */
  onEvent?: (event: SupervisorEvent) => void;
  /**
   * Called for every line a worker prints, except its `listening on ` line.
   * Default: write it to the supervisor's stdout or stderr.
   */
  onOutput?: (line: string, stream: "stdout" | "stderr", worker: WorkerStatus) => void;
  /** SIGTERM/SIGINT stop, SIGHUP reloads (default false). */
  handleSignals?: boolean;
  /**
   * Start each worker in its own session (`setsid`, default true), so the
   * SIGINT a terminal sends its foreground process group on Ctrl-C reaches
   * only the supervisor, which then drains the workers with SIGTERM.
   */
  detached?: boolean;
}

const READY_PREFIX = "listening on ";
const STDERR_TAIL = 20;
const MANAGER_VARIABLES = [
  "NOTIFY_SOCKET",
  "LISTEN_FDS",
  "LISTEN_PID",
  "LISTEN_FDNAMES",
  "WATCHDOG_USEC",
  "WATCHDOG_PID",
];
const encoder = new TextEncoder();

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => resolve = r);
  return { promise, resolve };
}

function positive(name: string, value: number | undefined, fallback: number, min = 0): number {
  const v = value ?? fallback;
  if (typeof v !== "number" || Number.isNaN(v) || v < min) {
    throw new RangeError(`Cannot create supervisor: ${name} must be a number >= ${min}, got ${v}`);
  }
  return v;
}

/**
 * The most useful line of a worker's stderr: an ffinet error message
 * (`Cannot <action>: <reason>`) with Deno's `error: Uncaught (in promise) X:`
 * prefix removed, else the first line that looks like an error, else the
 * last line.
 */
function explainFailure(stderrLines: readonly string[]): string | null {
  for (const line of stderrLines) {
    const m = /\bCannot [^:]+: .*$/.exec(line);
    if (m !== null) return m[0];
  }
  for (const line of stderrLines) {
    const m = /^error: (?:Uncaught (?:\(in promise\) )?)?(.*)$/.exec(line);
    if (m !== null) return m[1]!;
  }
  const last = stderrLines.findLast((l) => l.trim() !== "");
  return last === undefined ? null : last.trim();
}

/** How a worker reports to its supervisor. */
interface WorkerHooks {
  listening(w: Worker): void;
  output(line: string, stream: "stdout" | "stderr", w: Worker): void;
}

/** One worker process. */
class Worker {
  readonly slot: Slot;
  readonly child: Deno.ChildProcess;
  readonly pid: number;
  readonly startedAt = Date.now();
  readonly replacement: boolean;
  listeningOn: string | null = null;
  /** Set when the supervisor asked it to stop. */
  expected = false;
  alive = true;
  timedOut = false;
  stderrTail: string[] = [];
  /** Resolves true when it listens, false when it exits (or times out) first. */
  readonly listening = deferred<boolean>();
  /** Resolves once it exited and both pipes are drained. */
  readonly exited: Promise<WorkerExit>;
  startTimer: ReturnType<typeof setTimeout> | undefined;

  readonly #hooks: WorkerHooks;

  constructor(slot: Slot, child: Deno.ChildProcess, replacement: boolean, hooks: WorkerHooks) {
    this.#hooks = hooks;
    this.slot = slot;
    this.child = child;
    this.pid = child.pid;
    this.replacement = replacement;
    const out = this.#lines(child.stdout, "stdout");
    const err = this.#lines(child.stderr, "stderr");
    this.exited = Promise.all([child.status, out, err]).then(([s]) => {
      this.alive = false;
      return { code: s.code, signal: s.signal };
    });
  }

  kill(signal: Deno.Signal): void {
    if (!this.alive) return;
    try {
      this.child.kill(signal);
    } catch { /* it exited meanwhile */ }
  }

  async #lines(stream: ReadableStream<Uint8Array>, which: "stdout" | "stderr"): Promise<void> {
    let rest = "";
    const decoder = new TextDecoder();
    const emit = (line: string) => {
      if (line.endsWith("\r")) line = line.slice(0, -1);
      if (which === "stdout" && this.listeningOn === null && line.startsWith(READY_PREFIX)) {
        this.listeningOn = line.slice(READY_PREFIX.length).trim();
        this.#hooks.listening(this);
        return;
      }
      if (which === "stderr") {
        this.stderrTail.push(line);
        if (this.stderrTail.length > STDERR_TAIL) this.stderrTail.shift();
      }
      this.#hooks.output(line, which, this);
    };
    try {
      for await (const chunk of stream) {
        rest += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = rest.indexOf("\n")) >= 0) {
          emit(rest.slice(0, nl));
          rest = rest.slice(nl + 1);
        }
      }
    } catch { /* the pipe broke: nothing more to read */ }
    rest += decoder.decode();
    if (rest !== "") emit(rest);
  }
}

/** One of the N places a worker runs in. */
class Slot {
  readonly id: number;
  current: Worker | null = null;
  next: Worker | null = null;
  state: WorkerState = "stopped";
  restarts = 0;
  nextDelay: number;
  pendingDelay: number | null = null;
  restartTimer: ReturnType<typeof setTimeout> | undefined;
  crashes: number[] = [];
  crashLooping = false;
  lastExit: WorkerExit | null = null;
  stableTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(id: number, initialDelay: number) {
    this.id = id;
    this.nextDelay = initialDelay;
  }

  status(): WorkerStatus {
    const w = this.current;
    return {
      id: this.id,
      pid: w?.alive ? w.pid : null,
      state: this.state,
      restarts: this.restarts,
      listeningOn: w?.alive ? w.listeningOn : null,
      startedAt: w?.alive ? w.startedAt : null,
      lastExit: this.lastExit,
      restartDelayMs: this.state === "backoff" ? this.pendingDelay : null,
      crashLooping: this.crashLooping,
    };
  }
}

/**
 * A process supervisor for N workers. See the module documentation for
 * the restart, crash-loop, shutdown and reload policies.
 *
 * @example
 * ```ts ignore
 * import { Supervisor } from "./supervisor.ts";
 * await using sup = new Supervisor({ command: "/usr/bin/my-server", workers: 4 });
 * await sup.start(); // every worker printed "listening on ..."
 * await sup.reload(); // rolling restart
 * ```
 */
export class Supervisor implements AsyncDisposable {
  readonly #command: string | URL;
  readonly #args: string[];
  readonly #env: Record<string, string>;
  readonly #cwd: string | URL | undefined;
  readonly #uid: number | undefined;
  readonly #gid: number | undefined;
  readonly #restartDelayMs: number;
  readonly #factor: number;
  readonly #maxDelay: number;
  readonly #stableAfter: number;
  readonly #loopCount: number;
  readonly #loopWindow: number;
  readonly #maxRestarts: number;
  readonly #startTimeout: number;
  readonly #drainTimeout: number;
  readonly #logger: SupervisorLogger;
  readonly #onEvent: ((event: SupervisorEvent) => void) | undefined;
  readonly #onOutput: (line: string, stream: "stdout" | "stderr", worker: WorkerStatus) => void;
  readonly #handleSignals: boolean;
  readonly #detached: boolean;
  readonly #slots: Slot[] = [];
  readonly #live = new Set<Worker>();
  readonly #finished = deferred<void>();
  #state: SupervisorState = "idle";
  #stopping: Promise<void> | undefined;
  #reloading: Promise<boolean> | undefined;
  #reloadAgain = false;
  #signalHandlers: [Deno.Signal, () => void][] = [];

  /**
   * Check the options; nothing starts before {@linkcode Supervisor.start}.
   * Throws `RangeError` for a bad number.
   */
  constructor(options: SupervisorOptions) {
    this.#command = options.command;
    this.#args = [...(options.args ?? [])];
    this.#env = { ...(options.env ?? {}) };
    this.#cwd = options.cwd;
    this.#uid = options.uid;
    this.#gid = options.gid;
    const workers = positive("workers", options.workers, 1, 1);
    if (!Number.isInteger(workers)) {
      throw new RangeError(`Cannot create supervisor: workers must be an integer, got ${workers}`);
    }
    this.#restartDelayMs = positive("restartDelayMs", options.restartDelayMs, 100);
    this.#factor = positive("restartDelayFactor", options.restartDelayFactor, 1.5, 1);
    this.#maxDelay = positive("maxRestartDelayMs", options.maxRestartDelayMs, 15_000);
    this.#stableAfter = positive("stableAfterMs", options.stableAfterMs, 30_000);
    this.#loopCount = positive("crashLoopCount", options.crashLoopCount, 5, 1);
    this.#loopWindow = positive("crashLoopWindowMs", options.crashLoopWindowMs, 60_000);
    this.#maxRestarts = positive("maxRestarts", options.maxRestarts, Infinity);
    this.#startTimeout = positive("startTimeoutMs", options.startTimeoutMs, 10_000);
    this.#drainTimeout = positive("drainTimeoutMs", options.drainTimeoutMs, 10_000);
    this.#logger = options.logger ?? {
      info: () => {},
      warning: (m: unknown, ...a: unknown[]) => console.error(`warning: ${m}`, ...a),
      error: (m: unknown, ...a: unknown[]) => console.error(`error: ${m}`, ...a),
    };
    this.#onEvent = options.onEvent;
    this.#onOutput = options.onOutput ?? ((line, stream) => {
      try {
        (stream === "stdout" ? Deno.stdout : Deno.stderr).writeSync(encoder.encode(line + "\n"));
      } catch { /* nowhere to write */ }
    });
    this.#handleSignals = options.handleSignals ?? false;
    this.#detached = options.detached ?? true;
    for (let i = 0; i < workers; i++) this.#slots.push(new Slot(i, this.#restartDelayMs));
  }

  /** The supervisor's state. @example `sup.state === "running"` */
  get state(): SupervisorState {
    return this.#state;
  }

  /** Resolves once the supervisor has stopped (by `stop()` or a signal). @example `await sup.finished` */
  get finished(): Promise<void> {
    return this.#finished.promise;
  }

  /**
   * A snapshot of every slot: pid, state, restarts.
   *
   * @example
   * ```ts ignore
   * for (const w of sup.status().workers) console.log(w.id, w.pid, w.state, w.restarts);
   * ```
   */
  status(): SupervisorStatus {
    return { state: this.#state, workers: this.#slots.map((s) => s.status()) };
  }

  /** The pids of the running worker processes (including ones being replaced). @example `sup.pids` */
  get pids(): number[] {
    return [...this.#live].filter((w) => w.alive).map((w) => w.pid);
  }

  /**
   * Start every worker and resolve once each one listens. Rejects, after
   * stopping the others, when a worker exits or times out first, with the
   * reason from its stderr: `Cannot start worker 0: Cannot bind: EADDRINUSE
   * (Address already in use) [127.0.0.1:8080]`.
   *
   * @example
   * ```ts ignore
   * await sup.start();
   * ```
   */
  async start(): Promise<void> {
    if (this.#state !== "idle") {
      throw new Error(`Cannot start supervisor: it is ${this.#state}`);
    }
    this.#state = "starting";
    if (this.#handleSignals) this.#installSignals();
    const workers: Worker[] = [];
    try {
      for (const slot of this.#slots) workers.push(this.#spawn(slot, false));
    } catch (e) {
      await this.stop();
      throw new Error(`Cannot start supervisor: ${e instanceof Error ? e.message : e}`, {
        cause: e,
      });
    }
    const results = await Promise.all(workers.map((w) => w.listening.promise));
    const failed = results.findIndex((ok, i) => !ok || !workers[i]!.alive);
    if (failed >= 0 || this.#state !== "starting") {
      const w = workers[failed >= 0 ? failed : 0]!;
      let reason = "the supervisor was stopped";
      if (failed >= 0 && this.#state === "starting") {
        if (w.alive && !w.timedOut) w.kill("SIGTERM");
        const exit = await w.exited; // its stderr is complete once it exited
        reason = explainFailure(w.stderrTail) ??
          (w.timedOut
            ? `it did not print "${READY_PREFIX.trim()}" within ${this.#startTimeout} ms`
            : describeExit(exit));
      }
      await this.stop();
      throw new Error(`Cannot start worker ${w.slot.id}: ${reason}`);
    }
    this.#state = "running";
    this.#logger.info(
      `supervisor: ${this.#slots.length} worker(s) listening on ${workers[0]!.listeningOn}`,
    );
  }

  /**
   * Rolling restart: for each slot, start a new worker, wait until it
   * listens, then SIGTERM the old one and wait for it to exit. Resolves
   * true when every slot was replaced, false when a new worker failed (the
   * old one is kept and the rest of the reload is abandoned). A reload asked
   * for during another one runs once more after it.
   *
   * @example
   * ```ts ignore
   * Deno.addSignalListener("SIGHUP", () => sup.reload());
   * ```
   */
  reload(): Promise<boolean> {
    if (this.#state !== "running" && this.#state !== "reloading") {
      return Promise.resolve(false);
    }
    if (this.#reloading !== undefined) {
      this.#reloadAgain = true;
      return this.#reloading;
    }
    const run = async (): Promise<boolean> => {
      let ok = true;
      do {
        this.#reloadAgain = false;
        ok = await this.#rollOnce();
      } while (ok && this.#reloadAgain && this.#state === "reloading");
      return ok;
    };
    this.#state = "reloading";
    this.#emit({ type: "reload-start" });
    this.#logger.info("supervisor: rolling restart");
    this.#reloading = run().finally(() => {
      this.#reloading = undefined;
      if (this.#state === "reloading") this.#state = "running";
    });
    return this.#reloading.then((ok) => {
      this.#emit({ type: "reload-done", ok });
      this.#logger.info(`supervisor: rolling restart ${ok ? "done" : "abandoned"}`);
      return ok;
    });
  }

  /**
   * Stop: SIGTERM every worker, SIGKILL those still running after
   * `drainTimeoutMs`, and resolve once every one has exited. Idempotent.
   *
   * @example
   * ```ts ignore
   * await sup.stop();
   * ```
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  /** Same as {@linkcode Supervisor.stop}. @example `await using sup = new Supervisor(options)` */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  async #stop(): Promise<void> {
    const wasStarting = this.#state === "starting";
    this.#state = "stopping";
    this.#emit({ type: "stopping" });
    if (!wasStarting) this.#logger.info("supervisor: stopping");
    for (const slot of this.#slots) {
      clearTimeout(slot.restartTimer);
      clearTimeout(slot.stableTimer);
      slot.restartTimer = slot.stableTimer = undefined;
      slot.state = slot.current?.alive || slot.next?.alive ? "stopping" : "stopped";
    }
    const workers = [...this.#live];
    for (const w of workers) {
      w.expected = true;
      w.kill("SIGTERM");
    }
    let killTimer: ReturnType<typeof setTimeout> | undefined;
    if (workers.length > 0) {
      killTimer = setTimeout(() => {
        const left = workers.filter((w) => w.alive);
        if (left.length === 0) return;
        this.#logger.warning(
          `supervisor: ${left.length} worker(s) still running after ${this.#drainTimeout} ms: SIGKILL`,
        );
        for (const w of left) w.kill("SIGKILL");
      }, this.#drainTimeout);
    }
    await Promise.all(workers.map((w) => w.exited));
    clearTimeout(killTimer);
    for (const slot of this.#slots) slot.state = "stopped";
    this.#removeSignals();
    this.#state = "stopped";
    this.#emit({ type: "stopped" });
    if (!wasStarting) this.#logger.info("supervisor: stopped");
    this.#finished.resolve();
  }

  #installSignals(): void {
    const on = (signal: Deno.Signal, fn: () => void) => {
      Deno.addSignalListener(signal, fn);
      this.#signalHandlers.push([signal, fn]);
    };
    const stop = () => void this.stop();
    on("SIGTERM", stop);
    on("SIGINT", stop);
    on("SIGHUP", () => void this.reload());
  }

  #removeSignals(): void {
    for (const [signal, fn] of this.#signalHandlers) Deno.removeSignalListener(signal, fn);
    this.#signalHandlers = [];
  }

  #emit(event: SupervisorEvent): void {
    try {
      this.#onEvent?.(event);
    } catch (e) {
      this.#logger.error("supervisor: onEvent threw", e);
    }
  }

  #workerEnv(id: number): Record<string, string> {
    const env = Deno.env.toObject();
    for (const name of MANAGER_VARIABLES) delete env[name];
    return { ...env, ...this.#env, FFINET_WORKER_ID: String(id) };
  }

  #spawn(slot: Slot, replacement: boolean): Worker {
    const options: Deno.CommandOptions = {
      args: this.#args,
      env: this.#workerEnv(slot.id),
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      detached: this.#detached,
    };
    if (this.#cwd !== undefined) options.cwd = this.#cwd;
    if (this.#uid !== undefined) options.uid = this.#uid;
    if (this.#gid !== undefined) options.gid = this.#gid;
    const child = new Deno.Command(this.#command, options).spawn();
    const w = new Worker(slot, child, replacement, this.#hooks);
    this.#live.add(w);
    if (replacement) slot.next = w;
    else {
      slot.current = w;
      slot.state = "starting";
    }
    w.startTimer = setTimeout(() => {
      w.startTimer = undefined;
      if (w.listeningOn !== null || !w.alive) return;
      this.#logger.warning(
        `supervisor: worker ${slot.id} (pid ${w.pid}) did not listen within ${this.#startTimeout} ms: SIGKILL`,
      );
      w.timedOut = true;
      w.listening.resolve(false);
      w.kill("SIGKILL");
    }, this.#startTimeout);
    this.#emit({ type: "spawn", id: slot.id, pid: w.pid, replacement });
    w.exited.then((exit) => {
      try {
        this.#exited(w, exit);
      } catch (e) {
        this.#logger.error(`supervisor: cannot handle the exit of worker ${slot.id}`, e);
      }
    });
    return w;
  }

  readonly #hooks: WorkerHooks = {
    listening: (w) => this.#listening(w),
    output: (line, stream, w) => this.#output(line, stream, w),
  };

  #listening(w: Worker): void {
    clearTimeout(w.startTimer);
    w.startTimer = undefined;
    const slot = w.slot;
    if (slot.current === w && w.alive && !w.expected) {
      slot.state = "listening";
      slot.pendingDelay = null;
      this.#armStable(slot, w);
    }
    this.#emit({ type: "listening", id: slot.id, pid: w.pid, address: w.listeningOn! });
    w.listening.resolve(true);
  }

  #output(line: string, stream: "stdout" | "stderr", w: Worker): void {
    try {
      this.#onOutput(line, stream, { ...w.slot.status(), pid: w.pid });
    } catch { /* never let output handling kill the supervisor */ }
  }

  #armStable(slot: Slot, w: Worker): void {
    clearTimeout(slot.stableTimer);
    slot.stableTimer = setTimeout(() => {
      slot.stableTimer = undefined;
      if (slot.current !== w || !w.alive) return;
      slot.nextDelay = this.#restartDelayMs;
      slot.crashes = [];
      if (slot.crashLooping) {
        slot.crashLooping = false;
        this.#logger.info(`supervisor: worker ${slot.id} recovered from its crash loop`);
        this.#emit({ type: "recovered", id: slot.id });
      }
    }, this.#stableAfter);
  }

  #exited(w: Worker, exit: WorkerExit): void {
    clearTimeout(w.startTimer);
    w.startTimer = undefined;
    this.#live.delete(w);
    w.listening.resolve(false);
    const slot = w.slot;
    const uptimeMs = Date.now() - w.startedAt;
    this.#emit({
      type: "exit",
      id: slot.id,
      pid: w.pid,
      code: exit.code,
      signal: exit.signal,
      uptimeMs,
      expected: w.expected,
    });
    if (slot.next === w) {
      slot.next = null;
      return; // a replacement that died: the reload deals with it
    }
    if (slot.current !== w) return; // an old worker retired by a reload
    slot.lastExit = exit;
    if (w.expected || this.#state === "stopping" || this.#state === "stopped") return;
    if (this.#state === "starting") return; // start() reports it
    clearTimeout(slot.stableTimer);
    slot.stableTimer = undefined;
    const why = explainFailure(w.stderrTail);
    this.#logger.warning(
      `supervisor: worker ${slot.id} (pid ${w.pid}) ${describeExit(exit)} after ${uptimeMs} ms` +
        (why === null ? "" : `: ${why}`),
    );
    if (uptimeMs >= this.#stableAfter) {
      slot.nextDelay = this.#restartDelayMs;
      slot.crashes = [];
    }
    if (slot.restarts >= this.#maxRestarts) {
      slot.state = "failed";
      this.#logger.error(
        `supervisor: worker ${slot.id} gave up after ${slot.restarts} restarts`,
      );
      this.#emit({ type: "gave-up", id: slot.id, restarts: slot.restarts });
      return;
    }
    const delay = slot.nextDelay;
    slot.nextDelay = Math.min(slot.nextDelay * this.#factor, this.#maxDelay);
    slot.restarts++;
    const now = Date.now();
    slot.crashes.push(now);
    slot.crashes = slot.crashes.filter((t) => now - t <= this.#loopWindow);
    if (!slot.crashLooping && slot.crashes.length >= this.#loopCount) {
      slot.crashLooping = true;
      this.#logger.error(
        `supervisor: worker ${slot.id} is in a crash loop: ${slot.crashes.length} crashes within ${this.#loopWindow} ms; restarting with backoff (next in ${
          Math.round(delay)
        } ms, at most every ${this.#maxDelay} ms)`,
      );
      this.#emit({
        type: "crash-loop",
        id: slot.id,
        crashes: slot.crashes.length,
        windowMs: this.#loopWindow,
        delayMs: delay,
      });
    }
    slot.state = "backoff";
    slot.pendingDelay = delay;
    this.#emit({ type: "restart-scheduled", id: slot.id, delayMs: delay, restarts: slot.restarts });
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined;
      slot.pendingDelay = null;
      if (this.#state !== "running" && this.#state !== "reloading") return;
      if (slot.current !== w) return; // a reload put a new worker in meanwhile
      try {
        this.#spawn(slot, false);
      } catch (e) {
        this.#logger.error(`supervisor: cannot restart worker ${slot.id}`, e);
        slot.state = "failed";
      }
    }, delay);
  }

  async #rollOnce(): Promise<boolean> {
    for (const slot of this.#slots) {
      if (this.#state !== "reloading") return false;
      let fresh: Worker;
      try {
        fresh = this.#spawn(slot, true);
      } catch (e) {
        this.#logger.error(`supervisor: reload: cannot start worker ${slot.id}`, e);
        return false;
      }
      const ok = await fresh.listening.promise;
      if (!ok || !fresh.alive || this.#state !== "reloading") {
        if (fresh.alive) {
          fresh.expected = true;
          fresh.kill("SIGTERM");
        }
        const why = explainFailure(fresh.stderrTail);
        if (this.#state === "reloading") {
          this.#logger.error(
            `supervisor: reload: new worker ${slot.id} did not start` +
              (why === null ? "" : `: ${why}`) + "; keeping the old one",
          );
        }
        await fresh.exited;
        return false;
      }
      // Promote the new worker, then retire the old one.
      const old = slot.current;
      slot.next = null;
      slot.current = fresh;
      clearTimeout(slot.restartTimer);
      slot.restartTimer = undefined;
      slot.pendingDelay = null;
      slot.state = "listening";
      this.#armStable(slot, fresh);
      if (old !== null && old.alive) {
        old.expected = true;
        old.kill("SIGTERM");
        const killTimer = setTimeout(() => old.kill("SIGKILL"), this.#drainTimeout);
        await old.exited;
        clearTimeout(killTimer);
      }
    }
    return true;
  }
}

function describeExit(exit: WorkerExit): string {
  return exit.signal !== null ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
}
