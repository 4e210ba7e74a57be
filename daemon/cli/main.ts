/**
 * `deno task serve`: run an app (or the bundled hello-world app) under a
 * {@linkcode Supervisor}, in the foreground or as a daemon, and control a
 * running daemon. Run `deno task serve --help` for the options.
 *
 * - `serve [APP]` binds `--host`:`--port` once and runs `--workers` copies
 *   of APP (default `daemon/cli/default_app.ts`), each getting the socket on fd 3
 *   (`LISTEN_FDS`, systemd's socket activation protocol) and reporting
 *   `READY=1` on `NOTIFY_SOCKET`. It prints `listening on HOST:PORT` once
 *   every worker is ready. SIGTERM or SIGINT drains and stops; SIGHUP
 *   restarts the workers one by one. Under systemd (`Type=notify`) the
 *   supervisor reports `READY=1`, `RELOADING=1` and `STOPPING=1` itself.
 * - `serve --daemon` detaches (see `../detach.ts`), holds a locked pid file
 *   for its life and serves the control socket beside it, logs to syslog,
 *   and returns once the daemon is ready (printing its pid), or exits 1
 *   with the daemon's reason.
 * - `serve status [--json]`, `serve stop` and `serve reload` act on the
 *   daemon named by the pid file, through its control socket (see
 *   `commands.ts`); a pid that is not verifiably our supervisor is
 *   never signalled.
 *
 * Worker output goes to syslog with the worker's pid (stdout `info`,
 * stderr `err`, colours stripped) and, in the foreground, to stderr;
 * floods are cut and counted (see `output.ts`).
 *
 * Exit codes: 0 success, 1 failure, 2 bad usage, and for `status` 0
 * running, 1 dead with a pid file left, 3 not running, 4 unknown (as LSB
 * init scripts).
 *
 * @example
 * ```sh
 * deno task serve                                   # hello world on 127.0.0.1:8080
 * deno task serve ./app.ts --port 8080 --workers 4 -- --app-flag
 * deno task serve ./app.ts --daemon --pidfile /run/ffinet/app.pid
 * deno task serve status --pidfile /run/ffinet/app.pid
 * deno task serve stop --pidfile /run/ffinet/app.pid
 * ```
 *
 * @module
 */
import { HELP, parseServeArgs, type ServeOptions, UsageError } from "./args.ts";
import { type CommandName, runCommand, type StatusData, type WorkerLine } from "./commands.ts";
import { OutputForwarder } from "./output.ts";
import { ControlServer } from "../control.ts";
import {
  DAEMON_PERMISSIONS,
  daemonize,
  DaemonizeError,
  enterDaemon,
  isDaemon,
  notifyFailure,
  notifyReady,
  resetSignalMask,
} from "../detach.ts";
import { controlSocketPath, defaultPidfilePath, PidFile, readPidFile } from "../pidfile.ts";
import { listenFds, notify } from "../sd_notify.ts";
import { Supervisor } from "../supervisor/supervisor.ts";
import type { SupervisorStatus } from "../supervisor/types.ts";
import { createLogger, type Logger } from "../syslog.ts";
import {
  awaitHandOver,
  CONTROL_FD_NAME,
  HANDOVER_FD_NAME,
  startSuccessor,
  UPGRADE_ENV,
} from "../supervisor/upgrade.ts";

/**
 * The app `serve` runs without an APP argument: `daemon/cli/default_app.ts`.
 *
 * @example
 * ```ts
 * import { DEFAULT_APP } from "./main.ts";
 * console.log(DEFAULT_APP.endsWith("/daemon/cli/default_app.ts")); // true
 * ```
 */
export const DEFAULT_APP: string = new URL("./default_app.ts", import.meta.url).href;

/** The variable through which a daemon (or a successor) learns its service manager's socket. */
const MANAGER_SOCKET_ENV = "FFINET_MANAGER_NOTIFY_SOCKET";

/** The arguments the daemon (or a successor) is run with: every parsed option, explicit. */
function daemonArgs(o: ServeOptions, pidfile: string): string[] {
  const args: string[] = [];
  if (o.app !== null) args.push(o.app);
  args.push(
    "--host",
    o.host,
    "--port",
    String(o.port),
    "--workers",
    String(o.workers),
    "--pidfile",
    pidfile,
    "--umask",
    (o.umask ?? 0o022).toString(8).padStart(3, "0"),
    "--drain-timeout",
    String(o.drainTimeoutMs),
    "--start-timeout",
    String(o.startTimeoutMs),
    "--watchdog",
    String(o.watchdogMs),
  );
  if (o.uid !== null) args.push("--user", String(o.uid));
  if (o.gid !== null) args.push("--group", String(o.gid));
  if (o.syslogPath !== null) args.push("--syslog", o.syslogPath);
  for (const name of o.passEnv) {
    args.push("--env", name in o.env ? `${name}=${o.env[name]}` : name);
  }
  for (const flag of o.extraDenoFlags) args.push(`--deno-flag=${flag}`);
  if (o.appArgs.length > 0) args.push("--", ...o.appArgs);
  return args;
}

/** Whether the syslog socket the daemon will log to exists. */
function syslogReachable(path: string): boolean {
  try {
    return Deno.lstatSync(path).isSocket === true;
  } catch {
    return false;
  }
}

async function launch(o: ServeOptions): Promise<number> {
  const syslog = o.syslogPath ?? "/dev/log";
  if (!syslogReachable(syslog)) {
    console.error(
      `ffinet serve: warning: ${syslog} is not a syslog socket here: the daemon's and its ` +
        `workers' output will be lost (start a syslog daemon or journald, or give --syslog PATH)`,
    );
  }
  // Ctrl-C (or SIGTERM) while waiting aborts the start: the daemon is stopped.
  const abort = new AbortController();
  let interruptedBy: Deno.Signal | null = null;
  const handlers: [Deno.Signal, () => void][] = (["SIGINT", "SIGTERM"] as const).map((sig) => {
    const fn = () => {
      interruptedBy = sig;
      abort.abort();
    };
    Deno.addSignalListener(sig, fn);
    return [sig, fn];
  });
  const outer = Deno.env.get("NOTIFY_SOCKET");
  try {
    const pidfile = o.pidfile ?? defaultPidfilePath();
    const { pid } = await daemonize({
      args: daemonArgs(o, pidfile),
      // The daemon's supervisor starts workers within the start timeout;
      // binding, the pid file and Deno's own start-up come on top.
      timeoutMs: o.startTimeoutMs + 15_000,
      signal: abort.signal,
      ...(outer === undefined || outer === "" ? {} : { env: { [MANAGER_SOCKET_ENV]: outer } }),
    });
    if (outer !== undefined && outer !== "") {
      // Under a service manager (Type=notify): the daemon is the main process now.
      try {
        notify({ READY: "1", MAINPID: String(pid) }, { socket: outer });
      } catch (e) {
        console.error(
          `ffinet serve: warning: cannot tell the service manager: ${(e as Error).message}`,
        );
      }
    }
    console.log(pid);
    return 0;
  } catch (e) {
    const reason = e instanceof DaemonizeError ? e.reason : (e as Error).message;
    console.error(`ffinet serve: ${reason}`);
    return interruptedBy !== null ? 130 : 1;
  } finally {
    for (const [sig, fn] of handlers) Deno.removeSignalListener(sig, fn);
  }
}

/** Builds `status` replies: the supervisor's status plus CPU % and dropped lines. */
class StatusReporter {
  readonly #samples = new Map<number, { cpuMs: number; at: number }>();
  constructor(
    readonly sup: Supervisor,
    readonly output: OutputForwarder,
    readonly app: string,
    readonly o: ServeOptions,
  ) {}

  data(): StatusData {
    const s: SupervisorStatus = this.sup.status();
    const now = Date.now();
    const seen = new Set<number>();
    const workers: WorkerLine[] = s.workers.map((w) => {
      let cpuPercent: number | null = null;
      if (w.pid !== null && w.cpuMs !== null) {
        seen.add(w.pid);
        const prev = this.#samples.get(w.pid);
        if (prev !== undefined && now - prev.at >= 100) {
          cpuPercent = (w.cpuMs - prev.cpuMs) / (now - prev.at) * 100;
        } else if (w.uptimeMs !== null && w.uptimeMs > 0) {
          cpuPercent = w.cpuMs / w.uptimeMs * 100;
        }
        if (prev === undefined || now - prev.at >= 100) {
          this.#samples.set(w.pid, { cpuMs: w.cpuMs, at: now });
        }
      }
      return {
        id: w.id,
        pid: w.pid,
        state: w.state,
        uptimeMs: w.uptimeMs,
        restarts: w.restarts,
        lastExit: w.lastExit === null ? null : w.lastExit.signal ?? `code ${w.lastExit.code}`,
        rssBytes: w.rssBytes,
        cpuMs: w.cpuMs,
        cpuPercent: cpuPercent === null ? null : Math.round(cpuPercent * 10) / 10,
        droppedLines: this.output.dropped(w.id),
        watchdogKills: w.watchdogKills,
      };
    });
    for (const pid of this.#samples.keys()) if (!seen.has(pid)) this.#samples.delete(pid);
    return {
      pid: s.pid,
      state: s.state,
      uptimeMs: s.uptimeMs,
      app: this.app,
      listen: s.listen.map((l) => l.address),
      workers,
      plan: {
        workers: this.o.workers,
        startTimeoutMs: this.o.startTimeoutMs,
        drainTimeoutMs: this.o.drainTimeoutMs,
        watchdogMs: this.o.watchdogMs,
      },
      counters: { ...s.counters },
    };
  }
}

function formatHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Check a local app exists before starting workers that would all fail on it. */
function checkApp(app: string): void {
  if (!app.startsWith("file:") && !app.startsWith("/")) return; // remote: Deno fetches it
  const path = app.startsWith("file:") ? new URL(app).pathname : app;
  try {
    if (!Deno.statSync(path).isFile) throw new Error("not a file");
  } catch (e) {
    throw new Error(`Cannot start: app ${path} is not a readable file (${(e as Error).message})`);
  }
}

/** Read and remove a variable of the supervisor's own. */
function takeEnv(name: string): string | undefined {
  const value = Deno.env.get(name);
  Deno.env.delete(name);
  return value === "" ? undefined : value;
}

/**
 * In a successor: the control socket and the hand-over pipe among the
 * inherited fds (the last two, named `ffinet-control` and
 * `ffinet-handover`; a supervisor of an older version passes no pipe),
 * taken out of `LISTEN_FDS` so that the workers get only the listening
 * sockets.
 */
function takeControlFds(): { control: number; handOver: number | null } {
  const fds = listenFds({ unsetEnvironment: false });
  const handOver = fds.at(-1)?.name === HANDOVER_FD_NAME ? fds.pop()!.fd : null;
  const last = fds.pop();
  if (last === undefined || last.name !== CONTROL_FD_NAME) {
    throw new Error(
      `Cannot take over: no inherited control socket (LISTEN_FDNAMES has no ${CONTROL_FD_NAME})`,
    );
  }
  Deno.env.set("LISTEN_FDS", String(fds.length));
  Deno.env.set("LISTEN_FDNAMES", fds.map((f) => f.name).join(":"));
  return { control: last.fd, handOver };
}

/** How long a successor waits for the old supervisor to yield the control socket. */
const HANDOVER_TIMEOUT_MS = 15_000;

/**
 * The upgrade failed: serve the control socket again (if it was yielded)
 * and, if the failed successor had already renamed its pid file over
 * `path`, write ours again. Returns the pid file to hold from now on.
 */
function reclaim(
  ctl: ControlServer,
  path: string,
  held: PidFile | null,
  log: Logger,
): PidFile | null {
  ctl.resumeAccepting();
  try {
    if (readPidFile(path).pid === Deno.pid) return held;
  } catch { /* unreadable: write it again below */ }
  // Our old file is no longer at the path: drop its lock (release leaves a
  // path that names another pid alone), then put a new one there.
  held?.release();
  try {
    return PidFile.takeOver(path);
  } catch (e) {
    log.error(`Cannot write the pid file again: ${(e as Error).message}`);
    return null;
  }
}

async function serve(o: ServeOptions): Promise<number> {
  const daemon = isDaemon();
  const upgradeFrom = takeEnv(UPGRADE_ENV);
  const managerSocket = takeEnv(MANAGER_SOCKET_ENV);
  resetSignalMask();
  const fail = (log: Logger | null, e: unknown): number => {
    const message = e instanceof Error ? e.message : String(e);
    log?.error(message);
    notifyFailure(e);
    console.error(`ffinet serve: ${message}`);
    return 1;
  };
  const app = o.app ?? DEFAULT_APP;
  let pidfilePath: string | null = o.pidfile;
  let inherited: { control: number; handOver: number | null } | null = null;
  try {
    checkApp(app); // before chdir("/") cannot matter: paths are absolute already
    if (daemon) enterDaemon({ umask: o.umask ?? 0o022 });
    else if (o.umask !== null) Deno.umask(o.umask);
    if (pidfilePath === null && daemon) pidfilePath = defaultPidfilePath();
    if (upgradeFrom !== undefined) {
      if (pidfilePath === null) throw new Error("Cannot take over: no --pidfile to take over");
      inherited = takeControlFds();
    }
  } catch (e) {
    return fail(null, e);
  }
  let pidFile: PidFile | null = null;
  if (pidfilePath !== null && upgradeFrom === undefined) {
    try {
      pidFile = PidFile.acquire(pidfilePath);
    } catch (e) {
      return fail(null, e);
    }
  }
  const log = createLogger({
    ident: "ffinet-serve",
    facility: "daemon",
    perror: !daemon,
    ...(o.syslogPath === null ? {} : { path: o.syslogPath }),
  });
  const output = new OutputForwarder({ logger: log });
  let control: ControlServer | null = null;
  let onUpgradeSignal: (() => void) | null = null;
  let handedOverTo: number | null = null;
  try {
    let sup: Supervisor;
    let stopRequested = false;
    // The manager (systemd) is told READY/RELOADING/STOPPING by the
    // supervisor itself: its NOTIFY_SOCKET in the foreground, the socket
    // the launcher or the previous supervisor passed on otherwise (their
    // own NOTIFY_SOCKET is for the start-up report only).
    const outerSocket = daemon || upgradeFrom !== undefined
      ? managerSocket
      : Deno.env.get("NOTIFY_SOCKET");
    try {
      sup = new Supervisor({
        app,
        appArgs: o.appArgs,
        denoFlags: o.denoFlags,
        listen: { host: o.host, port: o.port },
        workers: o.workers,
        drainTimeoutMs: o.drainTimeoutMs,
        startTimeoutMs: o.startTimeoutMs,
        ...(o.watchdogMs > 0 ? { watchdogMs: o.watchdogMs } : {}),
        ...(o.uid === null ? {} : { user: o.uid }),
        ...(o.gid === null ? {} : { group: o.gid }),
        env: { NO_COLOR: "1", ...o.env },
        passEnv: o.passEnv,
        logger: log,
        handleSignals: true,
        notifyManager: outerSocket !== undefined,
        ...(outerSocket === undefined ? {} : { managerSocket: outerSocket }),
        announceReady: upgradeFrom === undefined,
        onOutput: (line, stream, w) => output.line(w.id, w.pid ?? Deno.pid, stream, line),
        onEvent: (e) => {
          if (e.type === "stopping" && e.requested) stopRequested = true;
        },
      });
    } catch (e) {
      return fail(log, e);
    }
    const reporter = new StatusReporter(sup, output, o.app ?? "default", o);
    let upgrading: Promise<number> | null = null;
    /** Failures upgrade() has logged already (a refusal before it starts is not). */
    const upgradeLogged = new WeakSet<Error>();
    const upgrade = (): Promise<number> => {
      if (upgrading !== null) {
        return Promise.reject(new Error("an upgrade is already in progress"));
      }
      if (sup.state !== "running") {
        return Promise.reject(new Error(`the supervisor is ${sup.state}, not running`));
      }
      const sockets = sup.listenSockets;
      if (control === null || pidfilePath === null || sockets.length === 0) {
        return Promise.reject(
          new Error("an upgrade needs a pid file, a control socket and shared listening sockets"),
        );
      }
      const ctl = control;
      const path = pidfilePath;
      upgrading = (async () => {
        // The new supervisor answers on the control socket only once this
        // one has stopped accepting on it (ctl.stopAccepting), so a status
        // never names this pid after the pid file names the new one.
        log.info(`upgrade: starting a new supervisor from ${Deno.mainModule}`);
        const env = Deno.env.toObject();
        env[UPGRADE_ENV] = String(Deno.pid);
        if (outerSocket !== undefined) env[MANAGER_SOCKET_ENV] = outerSocket;
        delete env.WATCHDOG_PID; // the manager's watchdog follows MAINPID
        const { pid } = await startSuccessor({
          command: Deno.execPath(),
          args: ["run", ...DAEMON_PERMISSIONS, Deno.mainModule, ...daemonArgs(o, path)],
          sockets,
          control: ctl,
          env,
          timeoutMs: 2 * o.startTimeoutMs + 15_000,
          setsid: daemon,
          cwd: Deno.cwd(),
        });
        handedOverTo = pid;
        if (outerSocket !== undefined) {
          try {
            notify({ MAINPID: String(pid), READY: "1" }, { socket: outerSocket });
          } catch { /* no manager listening */ }
        }
        ctl.handedOver();
        log.info(`upgrade: pid ${pid} took over; the old workers drain`);
        // Reply first (the client waits on this socket), then hand over.
        setTimeout(() => {
          void ctl.close().then(() => sup.handOver());
        }, 100);
        return pid;
      })().catch((e) => {
        upgrading = null;
        pidFile = reclaim(ctl, path, pidFile, log);
        const message = e instanceof Error ? e.message : String(e);
        log.error(`${message}; this supervisor (pid ${Deno.pid}) stays in charge`);
        const refusal = new Error(message.replace(/^Cannot upgrade: /, ""));
        upgradeLogged.add(refusal);
        throw refusal;
      });
      return upgrading;
    };
    // The server's side of the command table: one handler per row.
    const handlers: Record<CommandName, () => unknown> = {
      status: () => reporter.data(),
      stop: () => void sup.stop(),
      reload: async () => {
        if (!(await sup.reload())) throw new Error("reload failed");
      },
      upgrade: async () => ({ pid: await upgrade() }),
    };
    if (pidFile !== null) {
      try {
        control = ControlServer.listen({ path: controlSocketPath(pidFile.path), handlers });
      } catch (e) {
        return fail(log, e);
      }
    }
    // Listen for SIGUSR2 before the workers start: the manager hears READY=1
    // from sup.start(), and a SIGUSR2 sent right after it must not be lost.
    onUpgradeSignal = () => {
      upgrade().catch((e) => {
        if (!upgradeLogged.has(e)) log.error(`upgrade: Cannot upgrade: ${(e as Error).message}`);
      });
    };
    Deno.addSignalListener("SIGUSR2", onUpgradeSignal);
    try {
      await sup.start();
    } catch (e) {
      await sup.stop().catch(() => {});
      if (stopRequested && !daemon) {
        // SIGTERM/SIGINT (or `serve stop`) during start-up: a requested stop.
        log.info("stopped during start-up");
        return 0;
      }
      return fail(log, e);
    }
    if (upgradeFrom !== undefined) {
      // Every worker is ready: once the old supervisor has stopped accepting
      // on the control socket, take the pid file and the socket over.
      try {
        const { control: controlFd, handOver } = inherited!;
        if (handOver !== null) await awaitHandOver(handOver, HANDOVER_TIMEOUT_MS);
        pidFile = PidFile.takeOver(pidfilePath!);
        control = ControlServer.listen({
          path: controlSocketPath(pidfilePath!),
          fd: controlFd,
          handlers,
        });
      } catch (e) {
        await sup.stop().catch(() => {});
        return fail(log, e);
      }
      log.info(`took over from pid ${upgradeFrom}`);
    }
    const listen = sup.status().listen.map((l) => l.address);
    const where = listen.length > 0 ? listen.join(", ") : formatHostPort(o.host, o.port);
    console.log(`listening on ${where}`);
    log.info(`listening on ${where} with ${o.workers} worker(s) of ${o.app ?? "the default app"}`);
    if (daemon || upgradeFrom !== undefined) notifyReady(`listening on ${where}`);
    if (upgradeFrom !== undefined) {
      Deno.env.delete("NOTIFY_SOCKET");
      // The main process now (the old supervisor says MAINPID= too).
      if (outerSocket !== undefined) {
        try {
          notify({ READY: "1", MAINPID: String(Deno.pid) }, { socket: outerSocket });
        } catch { /* no manager listening */ }
      }
    }
    await sup.finished;
    if (handedOverTo !== null) log.info(`upgrade: handed over to pid ${handedOverTo}; exiting`);
    return 0;
  } finally {
    if (onUpgradeSignal !== null) Deno.removeSignalListener("SIGUSR2", onUpgradeSignal);
    await control?.close();
    output.close();
    pidFile?.release();
    log.close();
  }
}

/**
 * Run `serve` with `args` and return its exit code.
 *
 * @example
 * ```ts
 * import { main } from "./main.ts";
 * async function status(): Promise<never> {
 *   Deno.exit(await main(["status"]));
 * }
 * ```
 */
export async function main(args: readonly string[]): Promise<number> {
  let o: ServeOptions;
  try {
    o = parseServeArgs(args);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`ffinet serve: ${e.message}\nRun "deno task serve --help" for usage.`);
    return 2;
  }
  switch (o.command) {
    case "help":
      console.log(HELP);
      return 0;
    case "run":
      if (
        o.addressGiven && Deno.env.get(UPGRADE_ENV) === undefined &&
        listenFds({ unsetEnvironment: false }).length > 0
      ) {
        // Say which one wins rather than ignore a flag silently.
        console.error(
          "ffinet serve: warning: --host/--port are ignored: this process was socket-activated " +
            "(LISTEN_FDS), and the activated sockets are served",
        );
      }
      if (o.daemon && !isDaemon()) return await launch(o);
      return await serve(o);
    default:
      return await runCommand(o); // status, reload, stop, upgrade
  }
}
