/**
 * `deno task serve`: run an app (or the bundled hello-world app) under a
 * {@linkcode Supervisor}, in the foreground or as a daemon, and control a
 * running daemon. Run `deno task serve --help` for the options.
 *
 * - `serve [APP]` binds `--host`:`--port` once and runs `--workers` copies
 *   of APP (default `daemon/default_app.ts`), each getting the socket on fd 3
 *   (`LISTEN_FDS`, systemd's socket activation protocol) and reporting
 *   `READY=1` on `NOTIFY_SOCKET`. It prints `listening on HOST:PORT` once
 *   every worker is ready. SIGTERM or SIGINT drains and stops; SIGHUP
 *   restarts the workers one by one. Under systemd (`Type=notify`) the
 *   supervisor reports `READY=1`, `RELOADING=1` and `STOPPING=1` itself.
 * - `serve --daemon` detaches (see `detach.ts`), holds a locked pid file
 *   for its life and serves the control socket beside it, logs to syslog,
 *   and returns once the daemon is ready (printing its pid), or exits 1
 *   with the daemon's reason.
 * - `serve status [--json]`, `serve stop` and `serve reload` act on the
 *   daemon named by the pid file, through its control socket (see
 *   `cli_commands.ts`); a pid that is not verifiably our supervisor is
 *   never signalled.
 *
 * Worker output goes to syslog with the worker's pid (stdout `info`,
 * stderr `err`, colours stripped) and, in the foreground, to stderr;
 * floods are cut and counted (see `cli_output.ts`).
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
import { HELP, parseServeArgs, type ServeOptions, UsageError } from "./cli_args.ts";
import {
  reloadCommand,
  statusCommand,
  type StatusData,
  stopCommand,
  type WorkerLine,
} from "./cli_commands.ts";
import { OutputForwarder } from "./cli_output.ts";
import { ControlServer } from "./control.ts";
import {
  daemonize,
  DaemonizeError,
  enterDaemon,
  isDaemon,
  notifyFailure,
  notifyReady,
  resetSignalMask,
} from "./detach.ts";
import { controlSocketPath, defaultPidfilePath, PidFile } from "./pidfile.ts";
import { notify, watchdogInterval } from "./sd_notify.ts";
import { Supervisor } from "./supervisor.ts";
import type { SupervisorStatus } from "./supervisor_types.ts";
import { createLogger, type Logger } from "./syslog.ts";

/**
 * The app `serve` runs without an APP argument: `daemon/default_app.ts`.
 *
 * @example
 * ```ts
 * import { DEFAULT_APP } from "./cli.ts";
 * console.log(DEFAULT_APP.endsWith("/daemon/default_app.ts")); // true
 * ```
 */
export const DEFAULT_APP: string = new URL("./default_app.ts", import.meta.url).href;

/** The arguments the daemon is re-run with: the parsed options, explicit. */
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
  );
  if (o.uid !== null) args.push("--user", String(o.uid));
  if (o.gid !== null) args.push("--group", String(o.gid));
  if (o.syslogPath !== null) args.push("--syslog", o.syslogPath);
  for (const flag of o.extraDenoFlags) args.push(`--deno-flag=${flag}`);
  if (o.appArgs.length > 0) args.push("--", ...o.appArgs);
  return args;
}

async function launch(o: ServeOptions): Promise<number> {
  try {
    const pidfile = o.pidfile ?? defaultPidfilePath();
    const { pid } = await daemonize({ args: daemonArgs(o, pidfile) });
    console.log(pid);
    return 0;
  } catch (e) {
    console.error(`ffinet serve: ${e instanceof DaemonizeError ? e.reason : (e as Error).message}`);
    return 1;
  }
}

/** Builds `status` replies: the supervisor's status plus CPU % and dropped lines. */
class StatusReporter {
  readonly #samples = new Map<number, { cpuMs: number; at: number }>();
  constructor(
    readonly sup: Supervisor,
    readonly output: OutputForwarder,
    readonly app: string,
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

async function serve(o: ServeOptions): Promise<number> {
  const daemon = isDaemon();
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
  try {
    checkApp(app); // before chdir("/") cannot matter: paths are absolute already
    if (daemon) enterDaemon({ umask: o.umask ?? 0o022 });
    else if (o.umask !== null) Deno.umask(o.umask);
    if (pidfilePath === null && daemon) pidfilePath = defaultPidfilePath();
  } catch (e) {
    return fail(null, e);
  }
  let pidFile: PidFile | null = null;
  if (pidfilePath !== null) {
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
  let watchdog: ReturnType<typeof setInterval> | undefined;
  try {
    let sup: Supervisor;
    let stopRequested = false;
    try {
      sup = new Supervisor({
        app,
        appArgs: o.appArgs,
        denoFlags: o.denoFlags,
        listen: { host: o.host, port: o.port },
        workers: o.workers,
        drainTimeoutMs: o.drainTimeoutMs,
        startTimeoutMs: o.startTimeoutMs,
        ...(o.uid === null ? {} : { user: o.uid }),
        ...(o.gid === null ? {} : { group: o.gid }),
        env: { NO_COLOR: "1" },
        logger: log,
        handleSignals: true,
        // The launcher's NOTIFY_SOCKET only wants READY=1 (sent below); under
        // systemd the supervisor tells READY/RELOADING/STOPPING itself.
        notifyManager: !daemon,
        onOutput: (line, stream, w) => output.line(w.id, w.pid ?? Deno.pid, stream, line),
        onEvent: (e) => {
          if (e.type === "stopping") stopRequested = true;
        },
      });
    } catch (e) {
      return fail(log, e);
    }
    const reporter = new StatusReporter(sup, output, o.app ?? "default");
    if (pidFile !== null) {
      try {
        control = ControlServer.listen({
          path: controlSocketPath(pidFile.path),
          handlers: {
            status: () => reporter.data(),
            stop: () => void sup.stop(),
            reload: () => sup.reload(),
          },
        });
      } catch (e) {
        return fail(log, e);
      }
    }
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
    const listen = sup.status().listen.map((l) => l.address);
    const where = listen.length > 0 ? listen.join(", ") : formatHostPort(o.host, o.port);
    console.log(`listening on ${where}`);
    log.info(`listening on ${where} with ${o.workers} worker(s) of ${o.app ?? "the default app"}`);
    if (daemon) notifyReady(`listening on ${where}`);
    const interval = watchdogInterval();
    if (interval !== null) {
      watchdog = setInterval(() => {
        try {
          notify("WATCHDOG=1");
        } catch { /* the manager went away */ }
      }, interval / 2);
    }
    await sup.finished;
    return 0;
  } finally {
    clearInterval(watchdog);
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
 * import { main } from "./cli.ts";
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
    case "stop":
      return await stopCommand(o);
    case "status":
      return await statusCommand(o);
    case "reload":
      return await reloadCommand(o);
    case "run":
      if (o.daemon && !isDaemon()) return await launch(o);
      return await serve(o);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
