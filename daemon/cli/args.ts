/**
 * The command line of `deno task serve`: {@linkcode parseServeArgs} turns
 * it into {@linkcode ServeOptions}, validating every value (integers in
 * range, users and groups that exist) before anything is started; mistakes
 * are {@linkcode UsageError}s naming the flag. {@linkcode HELP} is the
 * `--help` text.
 *
 * @example
 * ```ts
 * import { parseServeArgs } from "./args.ts";
 * const o = parseServeArgs(["--port", "9000", "--workers=4", "--", "--verbose"]);
 * console.log(o.port, o.workers, o.appArgs); // 9000 4 ["--verbose"]
 * ```
 *
 * @module
 */
import { WORKER_PERMISSIONS } from "../supervisor/types.ts";
import { COMMAND_NAMES, type CommandName, commandUsage } from "./commands.ts";

/**
 * The Deno permissions workers get by default: what a network server on
 * ffinet needs (sockets through FFI, its environment, reading its files).
 *
 * @example
 * ```ts
 * import { DEFAULT_WORKER_PERMISSIONS } from "./args.ts";
 * console.log(DEFAULT_WORKER_PERMISSIONS.join(" "));
 * ```
 */
export const DEFAULT_WORKER_PERMISSIONS: readonly string[] = WORKER_PERMISSIONS;

/** The permissions `--allow NAME` accepts (Deno's `--allow-NAME` flags). */
const PERMISSIONS = new Set([
  "all",
  "net",
  "env",
  "read",
  "write",
  "ffi",
  "run",
  "sys",
  "import",
]);

/**
 * The `--help` text.
 *
 * @example
 * ```ts
 * import { HELP } from "./args.ts";
 * console.log(HELP.split("\n")[0]); // "Usage:"
 * ```
 */
export const HELP = `Usage:
  deno task serve [APP] [options] [-- APP_ARGS...]   run APP under a supervisor
${commandUsage()}

APP is a module path or URL whose server uses serve() from ffinet's http/ (or
adopts LISTEN_FDS itself). Without APP, a bundled hello-world app runs. The
supervisor binds HOST:PORT once and passes the socket to every worker on fd 3
(LISTEN_FDS=1, LISTEN_FDNAMES=http); workers report READY=1 on NOTIFY_SOCKET.

Serving options:
  --host HOST          address to listen on (default 127.0.0.1)
  --port PORT          TCP port, 1-65535 (default 8080)
  --workers N          worker processes, 1-256 (default 2)
  --daemon             detach: new session, no terminal, stdio on /dev/null, cwd /;
                       returns once the daemon is ready, printing its pid, or exits 1
                       with the daemon's error (e.g. Cannot bind: EADDRINUSE ...)
  --pidfile PATH       hold a locked pid file (and the control socket beside it) for
                       the supervisor's life (default RUNTIME_DIR/serve.pid with --daemon)
  --umask MASK         octal file mode creation mask (default 022 with --daemon)
  --user USER          workers run as this user (name or uid 0-4294967294; needs root),
                       through setpriv with no new privileges
  --group GROUP        workers' group (name or gid; default the user's group; needs --user)
  --drain-timeout MS   how long stopping workers may finish requests before SIGKILL
                       (0-86400000, default 10000)
  --start-timeout MS   how long a worker may take to send READY=1 (1-3600000,
                       default 10000); --daemon waits as long for the whole start
  --watchdog MS        a ready worker that sends no WATCHDOG=1 for MS (its event loop
                       is blocked) is killed and replaced (0 off, 100-3600000,
                       default 5000)
  --env NAME[=VALUE]   give the workers NAME (from this environment, or VALUE);
                       repeatable. Under --user workers get only PATH, LANG, LC_*,
                       TZ, TMPDIR, NO_COLOR, the user's HOME and these
  --allow NAME[=LIST]  grant the workers --allow-NAME[=LIST] too (repeatable), e.g.
                       --allow write=/var/lib/app
  --deno-flag FLAG     pass FLAG to the workers' deno run (repeatable), e.g.
                       --deno-flag=--v8-flags=--max-old-space-size=512
  --syslog PATH        syslog socket (default /dev/log)

Worker permissions by default: ${DEFAULT_WORKER_PERMISSIONS.join(" ")}

status/stop/reload options:
  --pidfile PATH       the daemon's pid file (default RUNTIME_DIR/serve.pid)
  --json               status: print JSON instead of a table
  --timeout MS         how long stop/reload/upgrade wait (default: from the running
                       supervisor's plan, e.g. workers x (start + drain timeout))

  -h, --help           show this help and exit

RUNTIME_DIR is $FFINET_RUNTIME_DIR if set, else /run/ffinet for root,
$XDG_RUNTIME_DIR/ffinet, or /tmp/ffinet-UID (created with mode 0700).

Signals to the supervisor: SIGTERM/SIGINT drain the workers and stop; SIGHUP
restarts the workers one at a time, each new one ready before the old one
stops; SIGUSR2 upgrades the supervisor itself (as "upgrade"). A crashed worker is restarted after 100 ms, then 1.5x longer per
consecutive crash (at most 15 s; reset after 30 s up).

Worker output goes to syslog (facility daemon, ident ffinet-serve, with the
worker's pid; stdout at info, stderr at err, colours stripped) and, in the
foreground, to stderr. Floods are cut to 1000 lines/s per worker; dropped
lines are counted in the log and in status.

Exit codes: 0 ok, 1 failure, 2 bad usage; status: 0 running, 1 dead but the pid
file exists, 3 not running, 4 unknown (the pid file or control socket was refused).`;

/** The subcommands. */
export type ServeCommand = "run" | "help" | CommandName;

/** Parsed command line of `serve`. */
export interface ServeOptions {
  /** What to do. */
  command: ServeCommand;
  /** The app: an absolute path or a URL, or null for the bundled default app. */
  app: string | null;
  /** Arguments after `--`, passed to the app. */
  appArgs: string[];
  /** `--host`. */
  host: string;
  /** `--port`. */
  port: number;
  /** `--workers`. */
  workers: number;
  /** `--daemon`. */
  daemon: boolean;
  /** `--pidfile`, absolute, or null for the default (resolved later). */
  pidfile: string | null;
  /** `--umask`, or null when not given. */
  umask: number | null;
  /** `--user`, resolved to a uid, or null. */
  uid: number | null;
  /** `--group` (or the user's group), resolved to a gid, or null. */
  gid: number | null;
  /** `--drain-timeout` in ms. */
  drainTimeoutMs: number;
  /** `--start-timeout` in ms. */
  startTimeoutMs: number;
  /** `--timeout` in ms (stop, reload, upgrade), or null: derived from the supervisor's plan. */
  timeoutMs: number | null;
  /** `--watchdog` in ms, 0 for none. */
  watchdogMs: number;
  /** `--env NAME=VALUE` values. */
  env: Record<string, string>;
  /** `--env NAME` names (and the NAME of `NAME=VALUE`): kept under `--user`. */
  passEnv: string[];
  /** Whether `--host` or `--port` was given (refused under socket activation). */
  addressGiven: boolean;
  /** The workers' `deno run` flags: permissions, then `--allow`/`--deno-flag` extras. */
  denoFlags: string[];
  /** The flags `--allow` and `--deno-flag` added (also at the end of `denoFlags`). */
  extraDenoFlags: string[];
  /** `--json` (status). */
  json: boolean;
  /** `--syslog`, or null for `/dev/log`. */
  syslogPath: string | null;
}

/**
 * A command-line mistake: printed to stderr, exit code 2.
 *
 * @example
 * ```ts
 * import { parseServeArgs, UsageError } from "./args.ts";
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
  "--start-timeout",
  "--timeout",
  "--allow",
  "--deno-flag",
  "--syslog",
  "--watchdog",
  "--env",
]);

const BOOLEAN_FLAGS = new Set(["--daemon", "--json"]);
const SUBCOMMANDS = COMMAND_NAMES;
/** The highest uid/gid: 2^32 - 2 (2^32 - 1 is `(uid_t) -1`, "no change"). */
const MAX_ID = 4294967294;

/**
 * Parse a decimal integer flag value in `[min, max]`; throws a
 * {@linkcode UsageError} naming the flag otherwise (`NaN`, `1e3`, `2.5`,
 * `-1`, `0x10` and out-of-range values are all refused).
 *
 * @example
 * ```ts
 * import { integerFlag } from "./args.ts";
 * integerFlag("--port", "8080", 1, 65535); // 8080
 * ```
 */
export function integerFlag(flag: string, text: string, min: number, max: number): number {
  if (!/^[0-9]{1,16}$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new UsageError(`Cannot parse ${flag}: "${text}" is not an integer from ${min} to ${max}`);
  }
  return Number(text);
}

/** `value`, or a UsageError "Cannot parse FLAG: it is empty". */
function nonEmpty(flag: string, value: string): string {
  if (value === "") throw new UsageError(`Cannot parse ${flag}: it is empty`);
  return value;
}

function lookupId(
  file: string,
  flag: string,
  what: string,
  name: string,
): { id: number; gid: number | null } {
  if (/^[0-9.+-]/.test(name) || /^(NaN|Infinity)$/.test(name)) {
    return { id: integerFlag(flag, name, 0, MAX_ID), gid: null };
  }
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch (e) {
    throw new UsageError(`Cannot resolve ${what} "${name}": ${(e as Error).message}`);
  }
  for (const line of text.split("\n")) {
    const fields = line.split(":");
    if (fields[0] === name && fields.length >= 3) {
      const id = Number(fields[2]);
      const gid = what === "user" ? Number(fields[3]) : null;
      if (!Number.isInteger(id) || id < 0 || id > MAX_ID) break;
      return { id, gid: gid !== null && Number.isInteger(gid) ? gid : null };
    }
  }
  throw new UsageError(`Cannot resolve ${what} "${name}": no such ${what} in ${file}`);
}

/**
 * The caller's directory: `deno task` runs in the directory of `deno.json`
 * and says where it was started in `INIT_CWD`; else the working directory.
 */
function callerDir(): string {
  let init: string | undefined;
  try {
    init = Deno.env.get("INIT_CWD");
  } catch { /* no --allow-env */ }
  return init !== undefined && init.startsWith("/") ? init : Deno.cwd();
}

function absolute(path: string): string {
  return path.startsWith("/") ? path : `${callerDir()}/${path}`;
}

/** An app argument: a URL stays as it is; a path becomes absolute. */
function resolveApp(app: string): string {
  if (/^(https?|file|jsr|npm|data):/.test(app)) {
    try {
      return new URL(app).href;
    } catch {
      throw new UsageError(`Cannot parse APP: "${app}" is not a valid URL`);
    }
  }
  const path = absolute(app);
  let isFile = false;
  try {
    isFile = Deno.statSync(path).isFile;
  } catch { /* reported below */ }
  if (!isFile) {
    throw new UsageError(
      `Cannot parse APP: "${app}" is not a file (commands are ${[...COMMAND_NAMES].join(", ")})`,
    );
  }
  return path;
}

/**
 * Parse `serve`'s arguments. Throws {@linkcode UsageError} for an unknown
 * flag, a missing or bad value, an unknown subcommand, or a combination that
 * makes no sense (`--group` without `--user`, `stop --daemon`).
 *
 * @example
 * ```ts
 * import { parseServeArgs } from "./args.ts";
 * const o = parseServeArgs(["status", "--json", "--pidfile", "/tmp/x/serve.pid"]);
 * console.log(o.command, o.json); // "status" true
 * ```
 */
export function parseServeArgs(args: readonly string[]): ServeOptions {
  const o: ServeOptions = {
    command: "run",
    app: null,
    appArgs: [],
    host: "127.0.0.1",
    port: 8080,
    workers: 2,
    daemon: false,
    pidfile: null,
    umask: null,
    uid: null,
    gid: null,
    drainTimeoutMs: 10_000,
    startTimeoutMs: 10_000,
    timeoutMs: null,
    watchdogMs: 5000,
    env: {},
    passEnv: [],
    addressGiven: false,
    denoFlags: [...DEFAULT_WORKER_PERMISSIONS],
    extraDenoFlags: [],
    json: false,
    syslogPath: null,
  };
  let user: string | undefined;
  let group: string | undefined;
  let sub: string | undefined;
  let app: string | undefined;
  let servingFlag: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      o.appArgs = args.slice(i + 1);
      servingFlag ??= "--";
      break;
    }
    if (arg === "-h" || arg === "--help") {
      o.command = "help";
      return o;
    }
    if (!arg.startsWith("-") || arg === "-") {
      if (sub === undefined && app === undefined && SUBCOMMANDS.has(arg)) {
        sub = arg;
        continue;
      }
      if (app !== undefined || sub !== undefined) {
        throw new UsageError(`Cannot parse arguments: unexpected "${arg}"`);
      }
      if (arg === "" || arg === "-") throw new UsageError(`Cannot parse APP: "${arg}" is empty`);
      app = arg;
      continue;
    }
    const eq = arg.indexOf("=");
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    if (BOOLEAN_FLAGS.has(flag)) {
      if (eq > 0) throw new UsageError(`Cannot parse ${flag}: it takes no value`);
      if (flag === "--daemon") {
        o.daemon = true;
        servingFlag ??= flag;
      } else o.json = true;
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
    if (!["--pidfile", "--timeout"].includes(flag)) servingFlag ??= flag;
    switch (flag) {
      case "--host":
        o.host = nonEmpty(flag, value);
        o.addressGiven = true;
        break;
      case "--port":
        o.port = integerFlag(flag, value, 1, 65535);
        o.addressGiven = true;
        break;
      case "--watchdog":
        o.watchdogMs = integerFlag(flag, value, 0, 3_600_000);
        if (o.watchdogMs > 0 && o.watchdogMs < 100) {
          throw new UsageError(
            `Cannot parse --watchdog: "${value}" is under 100 ms (0 turns it off)`,
          );
        }
        break;
      case "--env": {
        const eqAt = value.indexOf("=");
        const name = eqAt < 0 ? value : value.slice(0, eqAt);
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
          throw new UsageError(`Cannot parse --env: "${name}" is not a variable name`);
        }
        if (eqAt >= 0) o.env[name] = value.slice(eqAt + 1);
        o.passEnv.push(name);
        break;
      }
      case "--workers":
        o.workers = integerFlag(flag, value, 1, 256);
        break;
      case "--pidfile":
        o.pidfile = absolute(nonEmpty(flag, value));
        break;
      case "--umask":
        if (!/^[0-7]{1,4}$/.test(value) || parseInt(value, 8) > 0o777) {
          throw new UsageError(`Cannot parse --umask: "${value}" is not an octal mask up to 777`);
        }
        o.umask = parseInt(value, 8);
        break;
      case "--user":
        user = nonEmpty(flag, value);
        break;
      case "--group":
        group = nonEmpty(flag, value);
        break;
      case "--drain-timeout":
        o.drainTimeoutMs = integerFlag(flag, value, 0, 86_400_000);
        break;
      case "--start-timeout":
        o.startTimeoutMs = integerFlag(flag, value, 1, 3_600_000);
        break;
      case "--timeout":
        o.timeoutMs = integerFlag(flag, value, 0, 86_400_000);
        break;
      case "--allow": {
        const name = value.split("=")[0]!;
        if (!PERMISSIONS.has(name)) {
          throw new UsageError(
            `Cannot parse --allow: "${name}" is not one of ${[...PERMISSIONS].join(", ")}`,
          );
        }
        o.extraDenoFlags.push(`--allow-${value}`);
        break;
      }
      case "--deno-flag":
        if (!value.startsWith("-") || value === "-" || value === "--") {
          throw new UsageError(`Cannot parse --deno-flag: "${value}" is not a flag`);
        }
        o.extraDenoFlags.push(value);
        break;
      case "--syslog":
        if (!value.startsWith("/")) {
          throw new UsageError(`Cannot parse --syslog: "${value}" is not an absolute path`);
        }
        o.syslogPath = value;
        break;
    }
  }
  if (sub !== undefined) {
    o.command = sub as ServeCommand;
    if (servingFlag !== undefined) {
      throw new UsageError(`Cannot parse arguments: ${servingFlag} does not go with "${sub}"`);
    }
  } else if (o.json) {
    throw new UsageError(`Cannot parse arguments: --json goes with "status" only`);
  }
  if (app !== undefined) o.app = resolveApp(app);
  o.denoFlags.push(...o.extraDenoFlags);
  if (group !== undefined && user === undefined) {
    throw new UsageError(
      "Cannot parse --group: it needs --user (the workers would keep the supervisor's uid)",
    );
  }
  if (user !== undefined) {
    const u = lookupId("/etc/passwd", "--user", "user", user);
    o.uid = u.id;
    o.gid = u.gid;
  }
  if (group !== undefined) o.gid = lookupId("/etc/group", "--group", "group", group).id;
  return o;
}
