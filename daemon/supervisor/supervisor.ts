/**
 * `Supervisor`: runs N worker processes with systemd's protocol, restarts
 * the ones that crash with an exponential backoff, drains them on shutdown
 * and replaces them one at a time on reload.
 *
 * - **Spawning** is `posix_spawn` through FFI (`ffi/spawn.ts`, never
 *   `fork`, never `Deno.Command`): each worker gets a new session, an empty
 *   signal mask and default signal dispositions, stdin from `/dev/null`,
 *   stdout/stderr on pipes, and no fd except those listed here: every other
 *   fd of the supervisor is closed in the child.
 * - **Sockets** (socket activation): with `listen`, the supervisor binds
 *   the sockets once and every worker gets them on fd 3, 4, … with
 *   `LISTEN_FDS`, `LISTEN_FDNAMES` and `LISTEN_PID`. When the supervisor
 *   was itself socket-activated it passes those sockets on instead.
 *   `LISTEN_PID` must be the worker's own pid, unknown before it is
 *   spawned: the worker is started as
 *   `/bin/sh -c 'LISTEN_PID=$$ exec "$0" "$@"' <command> <args>`, and
 *   `exec` keeps the shell's pid, so `$$` is the worker's pid.
 *   `reusePort: true` passes no socket (the app binds with `SO_REUSEPORT`).
 * - **App**: with `app`, a worker is
 *   `deno run <denoFlags> --preload daemon/supervisor/worker_main.ts <app> <appArgs…>`:
 *   the app is the main module (`import.meta.main` is true,
 *   `Deno.mainModule` is its URL, `Deno.args` are `appArgs`), and
 *   `worker_main.ts`, evaluated before it, watches the lifeline.
 * - **Lifeline**: every worker also gets the read end of a pipe whose write
 *   end only the supervisor holds (`FFINET_LIFELINE_FD`); it reads EOF the
 *   moment the supervisor dies, even by `kill -9`, and the worker exits
 *   then (the preloaded `daemon/supervisor/worker_main.ts` polls it).
 * - **Watching**: each child's pidfd is registered on the supervisor's
 *   {@linkcode Reactor}; readable means exited, and it is reaped with
 *   `waitid(P_PIDFD, …, WNOHANG)` (never `waitpid(-1)`), so no zombie stays.
 * - **Readiness**: the supervisor owns a `NOTIFY_SOCKET` (in a private 0700
 *   directory); a worker is up on `READY=1` sent by the worker's own pid
 *   (checked with `SCM_CREDENTIALS`). `STATUS=` is kept for status;
 *   with `watchdogMs` workers get `WATCHDOG_USEC` and one that stops sending
 *   `WATCHDOG=1` is killed and replaced. `readiness: "listen"` declares an
 *   app that cannot notify ready once it waits to accept (`/proc`), and
 *   `"stdout"` keeps the older `listening on ` line.
 * - **Outer manager**: with its own `NOTIFY_SOCKET` the supervisor sends
 *   `READY=1` + `MAINPID`, `RELOADING=1` on reload then `READY=1`, and
 *   `STOPPING=1`; under a manager's watchdog (`WATCHDOG_USEC`) it sends
 *   `WATCHDOG=1` only while it can still supervise ({@linkcode
 *   Supervisor.supervising}), so a supervisor that gave a worker up, or
 *   whose event loop is blocked, is restarted by its manager.
 * - **Restarts**: see `backoff.ts` (100 ms, ×1.5, capped at 15 s, crash
 *   loops reported). **Shutdown**: SIGTERM, SIGKILL after `drainTimeoutMs`.
 * - **Reload**: for each slot a new worker is started; once it is ready the
 *   old one gets SIGTERM and drains. The listening socket stays open in the
 *   supervisor throughout, so no connection is refused.
 * - **Privileges**: with `user`/`group` workers run through `setpriv` (see
 *   `privileges.ts`) with a `DENO_DIR` of their own.
 *
 * @example
 * ```ts
 * import { Supervisor } from "@ffinet/ffinet/daemon";
 * async function main(): Promise<void> {
 *   const sup = new Supervisor({
 *     app: "./server.ts",
 *     listen: { host: "127.0.0.1", port: 8080 },
 *     workers: 2,
 *     handleSignals: true,
 *   });
 *   await sup.start();
 *   console.log(sup.status());
 *   await sup.finished; // until SIGTERM
 * }
 * ```
 *
 * @module
 */
import { pipe } from "../../ffi/fd.ts";
import type { ChildExit } from "../../ffi/spawn.ts";
import { unblockSignals } from "../../ffi/spawn.ts";
import { close } from "../../ffi/syscalls.ts";
import { integerOption } from "../../ffi/validate.ts";
import { Reactor } from "../../reactor/reactor.ts";
import { notify, watchdogInterval } from "../../reactor/sd_notify.ts";
import { monotonicUsec } from "./_monotonic.ts";
import { Backoff, checkNumber, RestartPolicy } from "./backoff.ts";
import {
  closeListenSockets,
  inheritedListenSockets,
  type ListenSocket,
  type ListenSpec,
  openListenSockets,
  validateListenSpecs,
} from "./listen_sockets.ts";
import { NotifyServer } from "./notify_server.ts";
import { ChannelHub } from "./worker_channel.ts";
import { DEFAULT_TICKET_KEY_ROTATION_MS } from "../../tls/options.ts";
import { MAX_TIMER_MS } from "../../reactor/timer_queue.ts";
import { prepareDenoDir, type PrivilegeDrop, resolveDrop } from "./privileges.ts";
import { acceptsConnections } from "./readiness_probe.ts";
import {
  type ReadinessMode,
  type SupervisorCounters,
  type SupervisorEvent,
  type SupervisorLogger,
  type SupervisorOptions,
  type SupervisorState,
  type SupervisorStatus,
  WORKER_PERMISSIONS,
  type WorkerExit,
  type WorkerStatus,
} from "./types.ts";
import { describeExit, explainFailure, ownPortHint, Slot, Worker } from "./_slot.ts";
import { type RestartContext, scheduleRestart } from "./_restart.ts";
import {
  appArgs,
  modulePath,
  WORKER_MAIN,
  workerCommand,
  workerEnvironment,
} from "./worker_command.ts";

export type {
  ReadinessMode,
  SupervisorCounters,
  SupervisorEvent,
  SupervisorLogger,
  SupervisorOptions,
  SupervisorState,
  SupervisorStatus,
  WorkerExit,
  WorkerState,
  WorkerStatus,
} from "./types.ts";
export { WORKER_PERMISSIONS } from "./types.ts";

const READY_PREFIX = "listening on ";
const encoder = new TextEncoder();

/**
 * A process supervisor for N workers. See the module documentation.
 *
 * @example
 * ```ts
 * import { Supervisor } from "@ffinet/ffinet/daemon";
 * async function main(): Promise<void> {
 *   await using sup = new Supervisor({ app: "./app.ts", listen: { port: 8080 }, workers: 4 });
 *   await sup.start(); // every worker sent READY=1
 *   await sup.reload(); // rolling restart
 * }
 * ```
 */
export class Supervisor implements AsyncDisposable {
  readonly #path: string;
  readonly #args: string[];
  readonly #env: Record<string, string>;
  readonly #cwd: string | undefined;
  readonly #policy: RestartPolicy;
  readonly #startTimeout: number;
  readonly #drainTimeout: number;
  readonly #watchdogMs: number | null;
  readonly #logger: SupervisorLogger;
  readonly #onEvent: ((event: SupervisorEvent) => void) | undefined;
  readonly #onOutput: (line: string, stream: "stdout" | "stderr", worker: WorkerStatus) => void;
  readonly #handleSignals: boolean;
  readonly #detached: boolean;
  readonly #notifyManager: boolean;
  readonly #managerSocketOption: string | undefined;
  readonly #managerWatchdogOption: number | undefined;
  readonly #announceReady: boolean;
  readonly #passEnv: readonly string[];
  readonly #specs: ListenSpec[];
  readonly #reusePort: boolean;
  readonly #readinessOption: ReadinessMode | undefined;
  readonly #drop: PrivilegeDrop | null;
  readonly #denoDirOption: string | undefined;
  readonly #restartContext: RestartContext;
  readonly #ticketKeyRotationMs: number;
  readonly #channelQueueBytes: number;
  #channels: ChannelHub | null = null;
  readonly #slots: Slot[] = [];
  readonly #live = new Set<Worker>();
  readonly #finished: Promise<void>;
  #resolveFinished!: () => void;
  #state: SupervisorState = "idle";
  #readiness: ReadinessMode = "stdout";
  #startedAt: number | null = null;
  #stopping: Promise<void> | undefined;
  #reloading: Promise<boolean> | undefined;
  #reloadAgain = false;
  #signalHandlers: [Deno.Signal, () => void][] = [];
  #reactor: Reactor | null = null;
  #reactorRun: Promise<void> | null = null;
  #reactorFailed = false;
  #notifyServer: NotifyServer | null = null;
  #sockets: ListenSocket[] = [];
  #lifeline: [number, number] | null = null;
  #denoDir: { path: string; temporary: boolean } | null = null;
  #managerSocket: string | undefined;
  #watchdogTimer: ReturnType<typeof setInterval> | undefined;
  #managerWatchdogTimer: ReturnType<typeof setInterval> | undefined;
  readonly #counters: SupervisorCounters = {
    spawned: 0,
    exits: 0,
    crashes: 0,
    watchdogKills: 0,
    reloads: 0,
    failedReloads: 0,
    published: 0,
    publishesRelayed: 0,
    publishesDropped: 0,
  };

  /**
   * Check the options; nothing starts before {@linkcode Supervisor.start}.
   * Throws `RangeError` for a bad number or combination (e.g. `group`
   * without `user`), before taking any resource.
   */
  constructor(options: SupervisorOptions) {
    const workers = integerOption("create supervisor", "workers", options.workers, 1, 1, 1024);
    this.#policy = new RestartPolicy(options);
    this.#startTimeout = checkNumber("startTimeoutMs", options.startTimeoutMs, 10_000);
    this.#drainTimeout = checkNumber("drainTimeoutMs", options.drainTimeoutMs, 10_000);
    this.#ticketKeyRotationMs = integerOption(
      "create supervisor",
      "ticketKeyRotationMs",
      options.ticketKeyRotationMs,
      DEFAULT_TICKET_KEY_ROTATION_MS,
      0,
      MAX_TIMER_MS,
    );
    this.#channelQueueBytes = integerOption(
      "create supervisor",
      "channelQueueBytes",
      options.channelQueueBytes,
      8 * 1024 * 1024,
      1024,
      1024 * 1024 * 1024,
    );
    this.#watchdogMs = options.watchdogMs === undefined
      ? null
      : checkNumber("watchdogMs", options.watchdogMs, 0, 1);
    const specs = options.listen === undefined
      ? []
      : Array.isArray(options.listen)
      ? [...options.listen as readonly ListenSpec[]]
      : [options.listen as ListenSpec];
    validateListenSpecs(specs);
    this.#specs = specs;
    this.#reusePort = options.reusePort ?? false;
    const r = options.readiness;
    if (r !== undefined && r !== "notify" && r !== "listen" && r !== "stdout") {
      throw new RangeError(`Cannot create supervisor: readiness must be notify, listen or stdout`);
    }
    this.#readinessOption = r;
    if (options.app !== undefined) {
      this.#path = Deno.execPath();
      this.#args = appArgs({
        app: options.app,
        appArgs: options.appArgs ?? [],
        denoFlags: options.denoFlags ?? WORKER_PERMISSIONS,
      });
    } else if (options.command !== undefined) {
      this.#path = modulePath(options.command);
      this.#args = [...(options.args ?? [])];
    } else {
      throw new TypeError("Cannot create supervisor: give app or command");
    }
    this.#drop = resolveDrop(options.user ?? options.uid, options.group ?? options.gid);
    this.#denoDirOption = options.denoDir;
    this.#env = { ...(options.env ?? {}) };
    this.#cwd = options.cwd === undefined ? undefined : modulePath(options.cwd);
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
    this.#notifyManager = options.notifyManager ?? true;
    this.#managerSocketOption = options.managerSocket;
    this.#managerWatchdogOption = options.managerWatchdogMs === undefined
      ? undefined
      : integerOption(
        "create supervisor",
        "managerWatchdogMs",
        options.managerWatchdogMs,
        0,
        0,
        86_400_000,
      );
    this.#announceReady = options.announceReady ?? true;
    this.#passEnv = [...(options.passEnv ?? [])];
    this.#finished = new Promise((r) => this.#resolveFinished = r);
    this.#restartContext = {
      policy: this.#policy,
      logger: this.#logger,
      emit: (e) => this.#emit(e),
      active: () => this.#state === "running" || this.#state === "reloading",
      respawn: (slot) => void this.#spawn(slot, false),
    };
    for (let i = 0; i < workers; i++) this.#slots.push(new Slot(i, new Backoff(this.#policy)));
  }

  /** The supervisor's state. @example `sup.state === "running"` */
  get state(): SupervisorState {
    return this.#state;
  }

  /** Resolves once the supervisor has stopped. @example `await sup.finished` */
  get finished(): Promise<void> {
    return this.#finished;
  }

  /** The pids of the running workers (including ones being replaced). @example `sup.pids` */
  get pids(): number[] {
    return [...this.#live].filter((w) => w.proc.alive).map((w) => w.proc.pid);
  }

  /**
   * Whether it can still supervise: running (or reloading) with every slot
   * either serving or about to restart, none given up. The supervisor
   * passes its own manager's watchdog on only while this is true.
   *
   * @example
   * ```ts
   * import type { Supervisor } from "@ffinet/ffinet/daemon";
   * function tick(sup: Supervisor, ping: () => void): void {
   *   if (sup.supervising) ping();
   * }
   * ```
   */
  get supervising(): boolean {
    if (this.#state !== "running" && this.#state !== "reloading") return false;
    if (this.#reactorFailed) return false;
    return this.#slots.every((s) => s.state !== "failed");
  }

  /** The `NOTIFY_SOCKET` path workers get, while running. @example `sup.notifySocket` */
  get notifySocket(): string | null {
    return this.#notifyServer?.path ?? null;
  }

  /**
   * A snapshot: per worker slot, pid, state, uptime, restarts, last exit,
   * RSS, CPU time and `STATUS=` text, plus counters.
   *
   * @example
   * ```ts
   * import type { Supervisor } from "@ffinet/ffinet/daemon";
   * function show(sup: Supervisor): void {
   *   for (const w of sup.status().workers) console.log(w.id, w.pid, w.state, w.cpuMs);
   * }
   * ```
   */
  status(): SupervisorStatus {
    const now = Date.now();
    return {
      state: this.#state,
      pid: Deno.pid,
      startedAt: this.#startedAt,
      uptimeMs: this.#startedAt === null ? null : now - this.#startedAt,
      mode: this.#sockets.length > 0 ? "shared" : this.#reusePort ? "reuseport" : "none",
      readiness: this.#readiness,
      listen: this.#sockets.map((s, i) => ({ fd: 3 + i, name: s.name, address: s.address })),
      counters: {
        ...this.#counters,
        ...(this.#channels === null ? {} : {
          published: this.#channels.counters.published,
          publishesRelayed: this.#channels.counters.relayed,
          publishesDropped: this.#channels.counters.dropped,
        }),
      },
      workers: this.#slots.map((s) => s.status(now)),
    };
  }

  /**
   * Bind (or take over) the sockets, open the notify socket, start every
   * worker and resolve once each is ready. Rejects, after stopping the
   * others, when a worker exits or times out first, with the real reason:
   * `Cannot start worker 0 (pid 123): it did not send READY=1 within
   * 10000 ms; last stderr line: …`.
   *
   * @example
   * ```ts
   * import type { Supervisor } from "@ffinet/ffinet/daemon";
   * async function begin(sup: Supervisor): Promise<void> {
   *   await sup.start();
   * }
   * ```
   */
  async start(): Promise<void> {
    if (this.#state !== "idle") {
      throw new Error(`Cannot start supervisor: it is ${this.#state}`);
    }
    this.#state = "starting";
    this.#startedAt = Date.now();
    const workers: Worker[] = [];
    try {
      if (this.#handleSignals) {
        unblockSignals(["SIGTERM", "SIGINT", "SIGHUP"]);
        this.#installSignals();
      }
      if (this.#notifyManager) {
        this.#managerSocket = this.#managerSocketOption ?? Deno.env.get("NOTIFY_SOCKET");
      }
      const inherited = inheritedListenSockets();
      this.#sockets = inherited.length > 0
        ? inherited
        : this.#reusePort
        ? []
        : openListenSockets(this.#specs);
      this.#readiness = this.#readinessOption ??
        (this.#sockets.length > 0 || this.#args.includes(WORKER_MAIN) ? "notify" : "stdout");
      if (this.#drop !== null) this.#denoDir = prepareDenoDir(this.#drop, this.#denoDirOption);
      this.#lifeline = pipe();
      this.#reactor = new Reactor();
      this.#reactorRun = this.#reactor.run();
      this.#reactorRun.catch(() => this.#reactorFailed = true);
      this.#notifyServer = NotifyServer.open(
        this.#reactor,
        (m) => this.#notified(m.pid, m.fields),
        this.#drop === null ? {} : { owner: { uid: this.#drop.uid, gid: this.#drop.gid } },
      );
      this.#channels = new ChannelHub(this.#reactor, this.#logger, {
        ticketKeyRotationMs: this.#ticketKeyRotationMs,
        queueBytes: this.#channelQueueBytes,
      });
      if (this.#watchdogMs !== null) this.#armWatchdog(this.#watchdogMs);
      for (const slot of this.#slots) workers.push(this.#spawn(slot, false));
    } catch (e) {
      await this.#halt();
      throw new Error(`Cannot start supervisor: ${e instanceof Error ? e.message : e}`, {
        cause: e,
      });
    }
    const results = await Promise.all(workers.map((w) => w.ready.promise));
    const failed = results.findIndex((ok, i) => !ok || !workers[i]!.proc.alive);
    if (failed >= 0 || this.#state !== "starting") {
      const w = workers[failed >= 0 ? failed : 0]!;
      let reason = "the supervisor was stopped";
      if (failed >= 0 && this.#state === "starting") {
        if (w.proc.alive && !w.timedOut) w.proc.signal("SIGTERM");
        const exit = await w.exited.promise; // its stderr is complete once it exited
        reason = w.timedOut
          ? `${this.#notReadyText()} within ${this.#startTimeout} ms` +
            (w.lastStderr() === null ? "" : `; last stderr line: ${w.lastStderr()}`)
          : explainFailure(w.stderrTail) ?? describeExit(exit);
        const hint = ownPortHint(w.ownPortLines);
        if (hint !== null) reason += `; ${hint}`;
      }
      await this.#halt();
      throw new Error(`Cannot start worker ${w.slot.id} (pid ${w.proc.pid}): ${reason}`);
    }
    this.#state = "running";
    const where = workers[0]!.listeningOn ?? "(no address)";
    this.#logger.info(`supervisor: ${this.#slots.length} worker(s) ready on ${where}`);
    if (this.#announceReady) {
      this.#tellManager({
        READY: "1",
        MAINPID: Deno.pid,
        STATUS: `${this.#slots.length} worker(s) on ${where}`,
      });
    }
    this.#feedManagerWatchdog();
  }

  /**
   * Pass the manager's watchdog on: `WATCHDOG=1` at half its interval, only
   * while this supervisor can still supervise. A slot given up or a failed
   * reactor stops the pings (and a blocked event loop sends none), so the
   * manager restarts the whole service.
   */
  #feedManagerWatchdog(): void {
    if (this.#managerSocket === undefined || this.#managerSocket === "") return;
    const ms = this.#managerWatchdogOption ?? watchdogInterval() ?? 0;
    if (ms <= 0) return;
    this.#managerWatchdogTimer = setInterval(() => {
      if (this.supervising) this.#tellManager({ WATCHDOG: "1" });
    }, Math.max(1, Math.floor(ms / 2)));
  }

  #notReadyText(): string {
    return this.#readiness === "stdout"
      ? `it did not print "${READY_PREFIX.trim()}"`
      : this.#readiness === "listen"
      ? "it did not start accepting connections"
      : "it did not send READY=1 on NOTIFY_SOCKET";
  }

  /**
   * Rolling restart: for each slot, start a new worker, wait until it is
   * ready, then SIGTERM the old one and wait for it to exit. Resolves true
   * when every slot was replaced, false when a new worker failed (the old
   * one is kept and the rest of the reload is abandoned).
   *
   * @example
   * ```ts
   * import type { Supervisor } from "@ffinet/ffinet/daemon";
   * async function onSighup(sup: Supervisor): Promise<void> {
   *   if (!(await sup.reload())) console.error("reload failed");
   * }
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
    const now = monotonicUsec();
    this.#tellManager({
      RELOADING: "1",
      ...(now === null ? {} : { MONOTONIC_USEC: String(now) }),
      STATUS: "reloading",
    });
    this.#reloading = run().finally(() => {
      this.#reloading = undefined;
      if (this.#state === "reloading") this.#state = "running";
    });
    return this.#reloading.then((ok) => {
      if (ok) this.#counters.reloads++;
      else this.#counters.failedReloads++;
      this.#emit({ type: "reload-done", ok });
      this.#logger.info(`supervisor: rolling restart ${ok ? "done" : "abandoned"}`);
      if (this.#state === "running") {
        this.#tellManager({ READY: "1", STATUS: ok ? "reloaded" : "reload failed" });
      }
      return ok;
    });
  }

  /**
   * Stop: SIGTERM every worker, SIGKILL those still running after
   * `drainTimeoutMs`, resolve once every one is reaped and every resource
   * (sockets, notify socket, reactor) is released. Idempotent.
   *
   * @example
   * ```ts
   * import type { Supervisor } from "@ffinet/ffinet/daemon";
   * async function shutdown(sup: Supervisor): Promise<void> {
   *   await sup.stop();
   * }
   * ```
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop(true);
    return this.#stopping;
  }

  /**
   * The listening sockets the workers share, as this process holds them
   * (fd, `LISTEN_FDNAMES` name): what a supervisor upgrade hands over.
   *
   * @example
   * ```ts
   * import type { Supervisor } from "@ffinet/ffinet/daemon";
   * function fds(sup: Supervisor): number[] {
   *   return sup.listenSockets.map((s) => s.fd);
   * }
   * ```
   */
  get listenSockets(): { fd: number; name: string }[] {
    return this.#sockets.map((s) => ({ fd: s.fd, name: s.name }));
  }

  /**
   * Another supervisor took over the sockets and serves with its own
   * workers: drain and stop these workers as {@linkcode Supervisor.stop}
   * does, but tell the service manager nothing (`STOPPING=1` would stop the
   * service) and leave Unix socket paths in place (they are the new
   * supervisor's now).
   *
   * @example
   * ```ts
   * import type { Supervisor } from "@ffinet/ffinet/daemon";
   * async function retire(sup: Supervisor): Promise<void> {
   *   await sup.handOver();
   * }
   * ```
   */
  handOver(): Promise<void> {
    for (const socket of this.#sockets) socket.path = null;
    this.#managerSocket = undefined;
    this.#logger.info("supervisor: handed over to the new supervisor; draining the old workers");
    return this.stop();
  }

  /** Stop because start-up failed: the `"stopping"` event says it was not requested. */
  #halt(): Promise<void> {
    this.#stopping ??= this.#stop(false);
    return this.#stopping;
  }

  /** Same as {@linkcode Supervisor.stop}. @example `await using sup = new Supervisor(options)` */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  async #stop(requested: boolean): Promise<void> {
    const wasStarting = this.#state === "starting";
    this.#state = "stopping";
    this.#emit({ type: "stopping", requested });
    this.#tellManager({ STOPPING: "1" });
    if (!wasStarting) this.#logger.info("supervisor: stopping");
    clearInterval(this.#watchdogTimer);
    clearInterval(this.#managerWatchdogTimer);
    for (const slot of this.#slots) {
      slot.clearTimers();
      slot.state = slot.current?.proc.alive || slot.next?.proc.alive ? "stopping" : "stopped";
    }
    const workers = [...this.#live];
    for (const w of workers) {
      w.expected = true;
      w.proc.signal("SIGTERM");
    }
    let killTimer: ReturnType<typeof setTimeout> | undefined;
    if (workers.length > 0) {
      killTimer = setTimeout(() => {
        const left = workers.filter((w) => w.proc.alive);
        if (left.length === 0) return;
        this.#logger.warning(
          `supervisor: ${left.length} worker(s) still running after ${this.#drainTimeout} ms: SIGKILL (pid ${
            left.map((w) => w.proc.pid).join(", ")
          })`,
        );
        for (const w of left) w.proc.signal("SIGKILL");
      }, this.#drainTimeout);
    }
    await Promise.all(workers.map((w) => w.exited.promise));
    clearTimeout(killTimer);
    for (const slot of this.#slots) slot.state = "stopped";
    this.#removeSignals();
    this.#notifyServer?.close();
    this.#notifyServer = null;
    if (this.#channels !== null) {
      const c = this.#channels.counters;
      this.#counters.published = c.published;
      this.#counters.publishesRelayed = c.relayed;
      this.#counters.publishesDropped = c.dropped;
      this.#channels.close();
      this.#channels = null;
    }
    if (this.#reactor !== null) {
      this.#reactor.stop();
      try {
        await this.#reactorRun;
      } catch (e) {
        this.#logger.error("supervisor: reactor failed", e);
      }
      this.#reactor.close();
      this.#reactor = null;
    }
    if (this.#lifeline !== null) {
      close(this.#lifeline[0]);
      close(this.#lifeline[1]);
      this.#lifeline = null;
    }
    closeListenSockets(this.#sockets);
    if (this.#denoDir?.temporary) {
      try {
        Deno.removeSync(this.#denoDir.path, { recursive: true });
      } catch { /* gone */ }
    }
    this.#state = "stopped";
    this.#emit({ type: "stopped" });
    if (!wasStarting) this.#logger.info("supervisor: stopped");
    this.#resolveFinished();
  }

  #tellManager(state: Record<string, string | number>): void {
    if (this.#managerSocket === undefined || this.#managerSocket === "") return;
    try {
      notify(state, { socket: this.#managerSocket });
    } catch { /* no manager listening */ }
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

  #spawn(slot: Slot, replacement: boolean): Worker {
    const { path, args } = workerCommand({
      path: this.#path,
      args: this.#args,
      drop: this.#drop,
      sockets: this.#sockets.length,
    });
    const env = workerEnvironment({
      id: slot.id,
      extra: this.#env,
      notifySocket: this.#notifyServer!.path,
      sockets: this.#sockets,
      watchdogMs: this.#watchdogMs,
      drop: this.#drop === null ? null : { drop: this.#drop, denoDir: this.#denoDir!.path },
      passEnv: this.#passEnv,
      drainTimeoutMs: this.#drainTimeout,
      channel: true,
    });
    const channel = this.#channels!.open();
    let w: Worker;
    try {
      w = new Worker(slot, this.#reactor!, {
        path,
        args,
        env,
        fds: [...this.#sockets.map((s) => s.fd), this.#lifeline![0], channel.childFd],
        ...(this.#cwd === undefined ? {} : { cwd: this.#cwd }),
        setsid: this.#detached,
        onLine: (line, stream) => this.#line(w, line, stream),
        onExit: (exit) => this.#exited(w, exit),
      }, replacement);
    } catch (e) {
      channel.close();
      throw e;
    }
    channel.releaseChild();
    channel.name = `worker ${slot.id} (pid ${w.proc.pid})`;
    w.channel = channel;
    this.#counters.spawned++;
    this.#live.add(w);
    if (replacement) slot.next = w;
    else {
      slot.current = w;
      slot.state = "starting";
    }
    w.startTimer = setTimeout(() => {
      w.startTimer = undefined;
      if (w.isReady || !w.proc.alive) return;
      this.#logger.warning(
        `supervisor: worker ${slot.id} (pid ${w.proc.pid}): ${this.#notReadyText()} within ${this.#startTimeout} ms: SIGKILL`,
      );
      w.timedOut = true;
      w.ready.resolve(false);
      w.proc.signal("SIGKILL");
    }, this.#startTimeout);
    if (this.#readiness === "listen") {
      const inodes = new Set(this.#sockets.map((s) => s.inode));
      w.probeTimer = setInterval(() => {
        if (w.isReady || !w.proc.alive) return clearInterval(w.probeTimer);
        if (acceptsConnections(w.proc.pid, inodes)) this.#ready(w, this.#address());
      }, 50);
    }
    this.#emit({ type: "spawn", id: slot.id, pid: w.proc.pid, replacement });
    return w;
  }

  #address(): string | null {
    if (this.#sockets.length > 0) return this.#sockets.map((s) => s.address).join(", ");
    const s = this.#specs[0];
    if (s === undefined) return null;
    return "path" in s ? s.path : `${s.host ?? "127.0.0.1"}:${s.port}`;
  }

  #line(w: Worker, line: string, stream: "stdout" | "stderr"): void {
    if (
      stream === "stdout" && this.#readiness === "stdout" && !w.isReady &&
      line.startsWith(READY_PREFIX)
    ) {
      this.#ready(w, line.slice(READY_PREFIX.length).trim());
      return;
    }
    if (stream === "stderr") w.noteStderr(line);
    try {
      this.#onOutput(line, stream, w.slot.status(Date.now(), w, false));
    } catch { /* never let output handling kill the supervisor */ }
  }

  #notified(pid: number, fields: Map<string, string>): void {
    const w = [...this.#live].find((x) => x.proc.pid === pid && x.proc.alive);
    if (w === undefined) return; // only a worker's own pid is listened to
    const status = fields.get("STATUS");
    if (status !== undefined) {
      w.statusText = status;
      this.#emit({ type: "status", id: w.slot.id, pid, text: status });
    }
    if (fields.get("WATCHDOG") === "1") w.lastWatchdog = Date.now();
    if (fields.get("READY") === "1" && !w.isReady) this.#ready(w, this.#address());
  }

  #armWatchdog(ms: number): void {
    this.#watchdogTimer = setInterval(() => {
      const now = Date.now();
      for (const w of this.#live) {
        if (!w.isReady || !w.proc.alive || w.expected || w.watchdogKilled) continue;
        const silent = now - w.lastWatchdog;
        if (silent <= ms) continue;
        w.watchdogKilled = true;
        w.slot.watchdogKills++;
        this.#counters.watchdogKills++;
        this.#logger.warning(
          `supervisor: worker ${w.slot.id} (pid ${w.proc.pid}) sent no WATCHDOG=1 for ${silent} ms (limit ${ms} ms): SIGKILL`,
        );
        this.#emit({ type: "watchdog", id: w.slot.id, pid: w.proc.pid, silentMs: silent });
        w.proc.signal("SIGKILL");
      }
    }, Math.max(10, Math.floor(ms / 4)));
  }

  #ready(w: Worker, address: string | null): void {
    clearTimeout(w.startTimer);
    w.startTimer = undefined;
    clearInterval(w.probeTimer);
    w.isReady = true;
    w.listeningOn = address;
    w.lastWatchdog = Date.now();
    const slot = w.slot;
    if (slot.current === w && w.proc.alive && !w.expected) {
      slot.state = "listening";
      slot.pendingDelay = null;
      this.#armStable(slot, w);
    }
    this.#emit({ type: "listening", id: slot.id, pid: w.proc.pid, address: address ?? "" });
    w.ready.resolve(true);
  }

  #armStable(slot: Slot, w: Worker): void {
    clearTimeout(slot.stableTimer);
    slot.stableTimer = setTimeout(() => {
      slot.stableTimer = undefined;
      if (slot.current !== w || !w.proc.alive) return;
      if (slot.backoff.reset()) {
        this.#logger.info(`supervisor: worker ${slot.id} recovered from its crash loop`);
        this.#emit({ type: "recovered", id: slot.id });
      }
    }, this.#policy.stableAfterMs);
  }

  #exited(w: Worker, child: ChildExit): void {
    const exit: WorkerExit = { code: child.code, signal: child.signal };
    w.channel?.close();
    clearTimeout(w.startTimer);
    clearInterval(w.probeTimer);
    w.startTimer = undefined;
    this.#live.delete(w);
    this.#counters.exits++;
    w.ready.resolve(false);
    w.exited.resolve(exit);
    const slot = w.slot;
    const uptimeMs = Date.now() - w.proc.startedAt;
    this.#emit({
      type: "exit",
      id: slot.id,
      pid: w.proc.pid,
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
    this.#counters.crashes++;
    scheduleRestart(this.#restartContext, w, exit, uptimeMs);
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
      const ok = await fresh.ready.promise;
      if (!ok || !fresh.proc.alive || this.#state !== "reloading") {
        if (fresh.proc.alive) {
          fresh.expected = true;
          fresh.proc.signal("SIGTERM");
        }
        const why = explainFailure(fresh.stderrTail);
        if (this.#state === "reloading") {
          this.#logger.error(
            `supervisor: reload: new worker ${slot.id} did not start` +
              (why === null ? "" : `: ${why}`) + "; keeping the old one",
          );
        }
        await fresh.exited.promise;
        return false;
      }
      const old = slot.current;
      slot.next = null;
      slot.current = fresh;
      clearTimeout(slot.restartTimer);
      slot.restartTimer = undefined;
      slot.pendingDelay = null;
      slot.state = "listening";
      this.#armStable(slot, fresh);
      if (old !== null && old.proc.alive) {
        old.expected = true;
        old.proc.signal("SIGTERM");
        const killTimer = setTimeout(() => {
          if (!old.proc.alive) return;
          this.#logger.warning(
            `supervisor: reload: old worker ${slot.id} (pid ${old.proc.pid}) still running after ${this.#drainTimeout} ms: SIGKILL`,
          );
          old.proc.signal("SIGKILL");
        }, this.#drainTimeout);
        await old.exited.promise;
        clearTimeout(killTimer);
      }
    }
    return true;
  }
}
