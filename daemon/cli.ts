/**
 * `deno task serve`: run ffinet's example HTTP server (`examples/http_server.ts`)
 * under a {@linkcode Supervisor}, in the foreground or as a daemon, and
 * control a running daemon. Run `deno task serve --help` for the options.
 *
 * - `serve` runs N workers (default 2) sharing one port with `SO_REUSEPORT`,
 *   prints `listening on HOST:PORT` once they listen, and sends sd_notify
 *   `READY=1` (so it also runs as a systemd `Type=notify` service). SIGTERM
 *   or SIGINT drains and stops; SIGHUP restarts the workers one by one.
 * - `serve --daemon` detaches (see `detach.ts`), holds a locked pid file for
 *   its life, logs to syslog, and returns once the daemon is ready (printing
 *   its pid), or exits 1 with the daemon's reason.
 * - `serve stop` and `serve status` act on the daemon named by the pid file.
 *
 * The worker script can be replaced with the `FFINET_SERVE_WORKER`
 * environment variable (a path), as the tests do; it must follow the same
 * contract as `examples/http_server.ts`.
 *
 * Exit codes: 0 success, 1 failure, 2 bad usage, and for `status` 0
 * running, 1 dead with a pid file left, 3 not running (as LSB init scripts).
 *
 * @example
 * ```sh
 * deno task serve --port 8080 --workers 4
 * deno task serve --daemon --port 8080 --pidfile /run/ffinet.pid
 * deno task serve status --pidfile /run/ffinet.pid
 * deno task serve stop --pidfile /run/ffinet.pid
 * ```
 *
 * @module
 */
import { O } from "../ffi/constants.ts";
import { Errno, ErrnoError } from "../ffi/errno.ts";
import { kill, openFile } from "../ffi/process.ts";
import { ipAddress } from "../ffi/sockaddr.ts";
import { Socket } from "../ffi/socket.ts";
import * as sys from "../ffi/syscalls.ts";
import { PidFile, readPidFile } from "./pidfile.ts";
import { createLogger, type Logger } from "./syslog.ts";
import { notify, watchdogInterval } from "./sd_notify.ts";
import { Supervisor } from "./supervisor.ts";
import {
  daemonize,
  DaemonizeError,
  enterDaemon,
  isDaemon,
  notifyFailure,
  notifyReady,
} from "./detach.ts";

const ESRCH = Errno.ESRCH!;

/**
 * The default pid file of `--daemon`, `stop` and `status`.
 *
 * @example
 * ```ts ignore
 * import { DEFAULT_PIDFILE } from "./cli.ts";
 * console.log(DEFAULT_PIDFILE); // "/tmp/ffinet-serve.pid"
 * ```
 */
export const DEFAULT_PIDFILE = "/tmp/ffinet-serve.pid";

const HELP = `Usage:
  deno task serve [options]           run the example HTTP server under a supervisor
  deno task serve stop [options]      stop the daemon named by the pid file
  deno task serve status [options]    tell whether that daemon runs

Serving options:
  --host HOST          address to listen on (default 127.0.0.1)
  --port PORT          TCP port, 1-65535 (default 8080)
  --workers N          worker processes sharing the port with SO_REUSEPORT (default 2)
  --daemon             detach: new session, no terminal, stdio on /dev/null, cwd /;
                       returns once the daemon listens, printing its pid, or exits 1
                       with the daemon's error (e.g. Cannot bind: EADDRINUSE ...)
  --pidfile PATH       hold a locked pid file for the supervisor's life, removed on exit
                       (default ${DEFAULT_PIDFILE} with --daemon, none otherwise)
  --umask MASK         octal file mode creation mask (default 022 with --daemon)
  --user USER          workers drop to this user (name or uid; needs root) right after
                       binding, so a privileged port such as 80 works. The supervisor
                       keeps its identity to manage the pid file and the workers.
  --group GROUP        run the workers with this group (default: the user's group)
  --drain-timeout MS   how long stopping workers may finish requests before SIGKILL
                       (default 10000)

stop/status options:
  --pidfile PATH       the daemon's pid file (default ${DEFAULT_PIDFILE})
  --timeout MS         how long stop waits for the daemon to exit (default 15000)

  -h, --help           show this help and exit

Signals to the supervisor: SIGTERM/SIGINT drain the workers and stop; SIGHUP
restarts the workers one at a time, each new one listening before the old one
stops, so no connection is refused. A crashed worker is restarted after 100 ms,
then 1.5x longer per consecutive crash (at most 15 s; reset after 30 s up).

Logging goes to syslog (/dev/log, facility daemon, ident ffinet-serve) and, in
the foreground, to stderr.

Exit codes: 0 ok, 1 failure, 2 bad usage; status: 0 running, 1 dead but the pid
file exists, 3 not running.`;

/** Parsed command line of `serve`. */
export interface ServeOptions {
  /** `"run"` (serve), `"stop"`, `"status"` or `"help"`. */
  command: "run" | "stop" | "status" | "help";
  /** `--host`. */
  host: string;
  /** `--port`. */
  port: number;
  /** `--workers`. */
  workers: number;
  /** `--daemon`. */
  daemon: boolean;
  /** `--pidfile`, absolute, or null for none. */
  pidfile: string | null;
  /** `--umask`, or null when not given. */
  umask: number | null;
  /** `--user`, resolved to a uid, or null. */
  uid: number | null;
  /** `--group` (or the user's group), resolved to a gid, or null. */
  gid: number | null;
  /** `--drain-timeout` in ms. */
  drainTimeoutMs: number;
  /** `--timeout` in ms (stop). */
  timeoutMs: number;
}

/**
 * A command-line mistake: printed to stderr, exit code 2.
 *
 * @example
 * ```ts ignore
 * import { parseServeArgs, UsageError } from "./cli.ts";
 * try {
 *   parseServeArgs(["--port", "x"]);
 * } catch (e) {
 *   if (e instanceof UsageError) console.error(e.message);
 * }
 * ```
 */
export class UsageError extends Error {
  /** Build it with the message to print. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

const VALUE_FLAGS = new Set([
  "--host",
  "--port",
  "--workers",
  "--pidfile",
  "--umask",
  "--user",
  "--group",
  "--drain-timeout",
  "--timeout",
]);

function integer(flag: string, text: string, min: number, max: number): number {
  if (!/^[0-9]+$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new UsageError(`Cannot parse ${flag}: "${text}" is not an integer from ${min} to ${max}`);
  }
  return Number(text);
}

function lookupId(file: string, what: string, name: string): { id: number; gid: number | null } {
  if (/^[0-9]+$/.test(name)) return { id: Number(name), gid: null };
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch (e) {
    throw new UsageError(`Cannot resolve ${what} "${name}": ${(e as Error).message}`);
  }
  for (const line of text.split("\n")) {
    const fields = line.split(":");
    if (fields[0] === name && fields.length >= 3) {
      return { id: Number(fields[2]), gid: what === "user" ? Number(fields[3]) : null };
    }
  }
  throw new UsageError(`Cannot resolve ${what} "${name}": no such ${what} in ${file}`);
}

function absolute(path: string): string {
  return path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
}

/**
 * Parse `serve`'s arguments. Throws {@linkcode UsageError} for an unknown
 * flag, a missing or bad value, or an unknown subcommand.
 *
 * @example
 * ```ts
 * import { parseServeArgs } from "./cli.ts";
 * const o = parseServeArgs(["--port", "9000", "--workers=4"]);
 * console.log(o.port, o.workers); // 9000 4
 * ```
 */
export function parseServeArgs(args: readonly string[]): ServeOptions {
  const o: ServeOptions = {
    command: "run",
    host: "127.0.0.1",
    port: 8080,
    workers: 2,
    daemon: false,
    pidfile: null,
    umask: null,
    uid: null,
    gid: null,
    drainTimeoutMs: 10_000,
    timeoutMs: 15_000,
  };
  let pidfile: string | undefined;
  let user: string | undefined;
  let group: string | undefined;
  let sub: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "-h" || arg === "--help") {
      o.command = "help";
      return o;
    }
    if (!arg.startsWith("-")) {
      if (sub !== undefined) throw new UsageError(`Cannot parse arguments: unexpected "${arg}"`);
      if (arg !== "stop" && arg !== "status") {
        throw new UsageError(
          `Cannot parse arguments: unknown command "${arg}" (use stop, status or no command)`,
        );
      }
      sub = arg;
      continue;
    }
    const eq = arg.indexOf("=");
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    if (flag === "--daemon") {
      if (eq > 0) throw new UsageError("Cannot parse --daemon: it takes no value");
      o.daemon = true;
      continue;
    }
    if (!VALUE_FLAGS.has(flag)) {
      throw new UsageError(`Cannot parse arguments: unknown flag ${flag}`);
    }
    let value: string;
    if (eq > 0) value = arg.slice(eq + 1);
    else {
      const next = args[++i];
      if (next === undefined) throw new UsageError(`Cannot parse ${flag}: it needs a value`);
      value = next;
    }
    switch (flag) {
      case "--host":
        if (value === "") throw new UsageError("Cannot parse --host: it is empty");
        o.host = value;
        break;
      case "--port":
        o.port = integer(flag, value, 1, 65535);
        break;
      case "--workers":
        o.workers = integer(flag, value, 1, 256);
        break;
      case "--pidfile":
        if (value === "") throw new UsageError("Cannot parse --pidfile: it is empty");
        pidfile = value;
        break;
      case "--umask":
        if (!/^[0-7]{1,4}$/.test(value) || parseInt(value, 8) > 0o777) {
          throw new UsageError(`Cannot parse --umask: "${value}" is not an octal mask up to 777`);
        }
        o.umask = parseInt(value, 8);
        break;
      case "--user":
        user = value;
        break;
      case "--group":
        group = value;
        break;
      case "--drain-timeout":
        o.drainTimeoutMs = integer(flag, value, 0, 86_400_000);
        break;
      case "--timeout":
        o.timeoutMs = integer(flag, value, 0, 86_400_000);
        break;
    }
  }
  if (sub !== undefined) o.command = sub as "stop" | "status";
  if (o.command !== "run" && o.daemon) {
    throw new UsageError(`Cannot parse arguments: --daemon does not go with "${o.command}"`);
  }
  const daemonized = o.daemon || isDaemon();
  if (pidfile !== undefined) o.pidfile = absolute(pidfile);
  else if (o.command !== "run" || daemonized) o.pidfile = DEFAULT_PIDFILE;
  if (user !== undefined) {
    const u = lookupId("/etc/passwd", "user", user);
    o.uid = u.id;
    o.gid = u.gid;
  }
  if (group !== undefined) o.gid = lookupId("/etc/group", "group", group).id;
  return o;
}

function formatHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

function workerScript(): string {
  const override = Deno.env.get("FFINET_SERVE_WORKER");
  if (override !== undefined && override !== "") return absolute(override);
  return new URL("../examples/http_server.ts", import.meta.url).pathname;
}

/** The arguments the daemon is re-run with: the parsed options, explicit. */
function daemonArgs(o: ServeOptions): string[] {
  const args = [
    "--host",
    o.host,
    "--port",
    String(o.port),
    "--workers",
    String(o.workers),
    "--pidfile",
    o.pidfile!,
    "--umask",
    (o.umask ?? 0o022).toString(8).padStart(3, "0"),
    "--drain-timeout",
    String(o.drainTimeoutMs),
  ];
  if (o.uid !== null) args.push("--user", String(o.uid));
  if (o.gid !== null) args.push("--group", String(o.gid));
  return args;
}

/**
 * Whether `pid` has exited (no such process, or a zombie waiting for its
 * parent). `/proc/<pid>/stat` is read through libc: Deno reserves other
 * processes' `/proc` entries for `--allow-all`.
 */
function processGone(pid: number): boolean {
  try {
    kill(pid, 0);
  } catch (e) {
    return e instanceof ErrnoError && e.errno === ESRCH;
  }
  let fd: number;
  try {
    fd = openFile(`/proc/${pid}/stat`, O.RDONLY | O.CLOEXEC);
  } catch {
    return true; // gone between the two looks
  }
  try {
    const buf = new Uint8Array(1024);
    const n = sys.read(fd, buf);
    if (n <= 0) return false;
    const stat = new TextDecoder().decode(buf.subarray(0, n));
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } finally {
    sys.close(fd);
  }
}

async function stopDaemon(o: ServeOptions): Promise<number> {
  const path = o.pidfile!;
  const st = readPidFile(path);
  if (!st.exists) {
    console.log(`not running (no pid file ${path})`);
    return 0;
  }
  if (!st.running || st.pid === null) {
    console.log(`not running (stale pid file ${path}${st.pid === null ? "" : `, pid ${st.pid}`})`);
    return 0;
  }
  const pid = st.pid;
  try {
    Deno.kill(pid, "SIGTERM");
  } catch (e) {
    console.error(`Cannot stop pid ${pid}: ${(e as Error).message}`);
    return 1;
  }
  const end = Date.now() + o.timeoutMs;
  while (readPidFile(path).running || !processGone(pid)) {
    if (Date.now() > end) {
      console.error(`Cannot stop pid ${pid}: still running after ${o.timeoutMs} ms`);
      return 1;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  console.log(`stopped (pid ${pid})`);
  return 0;
}

function status(o: ServeOptions): number {
  const path = o.pidfile!;
  const st = readPidFile(path);
  if (st.running) {
    console.log(`running (pid ${st.pid ?? "unknown"})`);
    return 0;
  }
  if (st.exists) {
    console.log(`not running (stale pid file ${path}${st.pid === null ? "" : `, pid ${st.pid}`})`);
    return 1;
  }
  console.log("not running");
  return 3;
}

async function launch(o: ServeOptions): Promise<number> {
  try {
    const override = Deno.env.get("FFINET_SERVE_WORKER");
    const { pid } = await daemonize({
      args: daemonArgs(o),
      ...(override ? { env: { FFINET_SERVE_WORKER: workerScript() } } : {}),
    });
    console.log(pid);
    return 0;
  } catch (e) {
    console.error(`ffinet serve: ${e instanceof DaemonizeError ? e.reason : (e as Error).message}`);
    return 1;
  }
}

/**
 * Refuse a port another server already listens on. The workers bind with
 * `SO_REUSEPORT`, and Linux lets any socket of the same user that set it
 * too join that port: a second `serve` would quietly take a share of the
 * first one's connections. A probe bound without `SO_REUSEPORT` gets
 * EADDRINUSE instead (`SO_REUSEADDR` keeps TIME_WAIT leftovers from counting).
 */
function ensurePortFree(host: string, port: number): void {
  const addr = ipAddress(host, port);
  const probe = Socket.create(addr.family, "stream");
  try {
    probe.setOption("reuseAddress", true);
    if (addr.family === "inet6") probe.setOption("v6Only", false);
    probe.bind(addr);
  } finally {
    probe.close();
  }
}

async function serve(o: ServeOptions): Promise<number> {
  const daemon = isDaemon();
  const script = workerScript(); // before chdir("/"): the override may be relative
  const fail = (log: Logger | null, e: unknown): number => {
    const message = e instanceof Error ? e.message : String(e);
    log?.error(message);
    notifyFailure(e);
    console.error(`ffinet serve: ${message}`);
    return 1;
  };
  try {
    if (daemon) enterDaemon({ umask: o.umask ?? 0o022 });
    else if (o.umask !== null) Deno.umask(o.umask);
  } catch (e) {
    return fail(null, e);
  }
  let pidFile: PidFile | null = null;
  if (o.pidfile !== null) {
    try {
      pidFile = PidFile.acquire(o.pidfile);
    } catch (e) {
      return fail(null, e);
    }
  }
  const log = createLogger({ ident: "ffinet-serve", facility: "daemon", perror: !daemon });
  let watchdog: ReturnType<typeof setInterval> | undefined;
  try {
    try {
      Deno.statSync(script);
    } catch {
      return fail(log, new Error(`Cannot start: worker script ${script} not found`));
    }
    try {
      ensurePortFree(o.host, o.port);
    } catch (e) {
      return fail(log, e);
    }
    const sup = new Supervisor({
      command: Deno.execPath(),
      args: [
        "run",
        "--allow-ffi",
        "--allow-read",
        "--allow-env",
        "--allow-net",
        script,
        "--host",
        o.host,
        "--port",
        String(o.port),
        "--reuse-port",
        // The worker binds first (a privileged port works as root), then drops.
        ...(o.uid === null ? [] : ["--user-id", String(o.uid)]),
        ...(o.gid === null ? [] : ["--group-id", String(o.gid)]),
      ],
      workers: o.workers,
      drainTimeoutMs: o.drainTimeoutMs,
      logger: log,
      handleSignals: true,
      ...(daemon
        ? {
          onOutput: (line: string, stream: "stdout" | "stderr", w: { id: number }) =>
            stream === "stdout"
              ? log.info(`worker ${w.id}: ${line}`)
              : log.warning(`worker ${w.id}: ${line}`),
        }
        : {}),
      onEvent: (e) => {
        try {
          if (e.type === "stopping") notify({ STOPPING: "1" });
          else if (e.type === "reload-done") notify({ READY: "1", STATUS: "reloaded" });
        } catch { /* no service manager listening */ }
      },
    });
    try {
      await sup.start();
    } catch (e) {
      return fail(log, e);
    }
    const where = formatHostPort(o.host, o.port);
    console.log(`listening on ${where}`);
    notifyReady(`listening on ${where}`);
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
    pidFile?.release();
    log.close();
  }
}

/**
 * Run `serve` with `args` and return its exit code.
 *
 * @example
 * ```ts ignore
 * import { main } from "./cli.ts";
 * Deno.exit(await main(["status"]));
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
      return await stopDaemon(o);
    case "status":
      return status(o);
    case "run":
      if (o.daemon && !isDaemon()) return await launch(o);
      return await serve(o);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
