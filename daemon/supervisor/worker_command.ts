/**
 * What a supervised worker is started with: its command line (the
 * `LISTEN_PID` shell shim, the `setpriv` privilege drop) and its
 * environment (socket activation, `NOTIFY_SOCKET`, lifeline, watchdog).
 *
 * **Why a shell shim.** Socket activation says a process may use the
 * `LISTEN_FDS` sockets only when `LISTEN_PID` is its own pid, and that pid
 * is unknown before `posix_spawn` returns. So a worker with sockets is
 * started as `/bin/sh -c 'LISTEN_PID=$$ exec "$0" "$@"' <command> <args…>`:
 * `$$` is the shell's pid, and `exec` replaces the shell with the command
 * in the same process, so the pid the command sees is `LISTEN_PID`. The
 * shell costs one exec (about a millisecond); it works for any command,
 * not only for `deno run --preload worker_main.ts APP`.
 *
 * @example
 * ```ts
 * import { workerCommand } from "./worker_command.ts";
 * workerCommand({ path: "/usr/bin/deno", args: ["run", "app.ts"], drop: null, sockets: 1 });
 * // { path: "/bin/sh", args: ["-c", 'LISTEN_PID=$$ exec "$0" "$@"', "/usr/bin/deno", "run", "app.ts"] }
 * ```
 *
 * @module
 */
import type { ListenSocket } from "./listen_sockets.ts";
import { type PrivilegeDrop, setprivArgs } from "./privileges.ts";
import { CHANNEL_FD_ENV } from "./worker_channel.ts";

export type { ListenSocket } from "./listen_sockets.ts";
export type { PrivilegeDrop } from "./privileges.ts";

/** The service manager's variables, which belong to the supervisor, not to its workers. */
export const MANAGER_VARIABLES: readonly string[] = Object.freeze([
  "NOTIFY_SOCKET",
  "LISTEN_FDS",
  "LISTEN_PID",
  "LISTEN_FDNAMES",
  "WATCHDOG_USEC",
  "WATCHDOG_PID",
]);

/** The shell line that gives a worker `LISTEN_PID` = its own pid (exec keeps the pid). */
export const LISTEN_PID_SHIM = 'LISTEN_PID=$$ exec "$0" "$@"';

/**
 * A module path as `deno run` takes it: a `file:` URL as a path, another
 * URL as it is.
 *
 * @example
 * ```ts
 * import { modulePath } from "./worker_command.ts";
 * modulePath(new URL("file:///srv/app.ts")); // "/srv/app.ts"
 * ```
 */
export function modulePath(p: string | URL): string {
  if (typeof p === "string") return p;
  return p.protocol === "file:" ? decodeURIComponent(p.pathname) : p.href;
}

/** `daemon/supervisor/worker_main.ts`, as `deno run --preload` takes it. */
export const WORKER_MAIN: string = modulePath(new URL("./worker_main.ts", import.meta.url));

/**
 * An app (path or URL) as the main module argument of `deno run`: a URL as
 * it is (a `file:` URL object as its path), a path as it is (`deno run`
 * resolves a relative one against the worker's working directory), with
 * `./` in front when it starts with `-`, so that it is not read as a flag.
 * Throws `TypeError` for an empty one.
 *
 * @example
 * ```ts
 * import { appSpecifier } from "./worker_command.ts";
 * appSpecifier("app.ts"); // "app.ts"
 * appSpecifier("-app.ts"); // "./-app.ts"
 * appSpecifier(new URL("https://example.com/app.ts")); // "https://example.com/app.ts"
 * ```
 */
export function appSpecifier(app: string | URL): string {
  const spec = modulePath(app);
  if (spec === "") throw new TypeError("Cannot run the app: its path is empty");
  return spec.startsWith("-") ? `./${spec}` : spec;
}

/** What {@linkcode appArgs} needs. */
export interface AppCommandInput {
  /** The app module (path or URL): the main module. */
  app: string | URL;
  /** Its arguments (its `Deno.args`, passed as they are). */
  appArgs: readonly string[];
  /** The `deno run` flags (permissions, …). */
  denoFlags: readonly string[];
}

/**
 * The `deno` arguments that run an app as a supervised worker:
 * `run <denoFlags> --preload <WORKER_MAIN> <app> <appArgs…>`. The app is the
 * main module (`import.meta.main` true, `Deno.mainModule` its URL,
 * `Deno.args` = `appArgs`); `worker_main.ts` runs first and only watches the
 * lifeline.
 *
 * @example
 * ```ts
 * import { appArgs, WORKER_MAIN } from "./worker_command.ts";
 * const args = appArgs({ app: "/srv/app.ts", appArgs: ["--", "-v"], denoFlags: ["--allow-net"] });
 * // ["run", "--allow-net", "--preload", WORKER_MAIN, "/srv/app.ts", "--", "-v"]
 * console.log(args[3] === WORKER_MAIN);
 * ```
 */
export function appArgs(input: AppCommandInput): string[] {
  const app = appSpecifier(input.app);
  return [
    "run",
    ...importFlags(input.denoFlags, [WORKER_MAIN, app]),
    "--preload",
    WORKER_MAIN,
    app,
    ...input.appArgs,
  ];
}

/** The `host[:port]` of a remote module specifier, or null for a local one. */
function remoteHost(specifier: string): string | null {
  if (!/^https?:\/\//.test(specifier)) return null;
  try {
    return new URL(specifier).host;
  } catch {
    return null;
  }
}

/**
 * `flags` with `--allow-import` for the hosts of the remote modules a worker
 * loads (the preload and the app, when `daemon/cli.ts` itself was run by
 * URL): Deno asks for it on every remote import, and a worker cannot answer
 * a prompt. A bare `--allow-import`, `-A` or `--allow-all` already covers
 * them; an `--allow-import=LIST` is extended.
 *
 * @example
 * ```ts
 * import { importFlags } from "./worker_command.ts";
 * importFlags(["--allow-net"], ["https://deno.land/x/app.ts", "/srv/app.ts"]);
 * // ["--allow-net", "--allow-import=deno.land"]
 * ```
 */
export function importFlags(flags: readonly string[], modules: readonly string[]): string[] {
  const hosts = [...new Set(modules.map(remoteHost).filter((h) => h !== null))];
  const out = [...flags];
  if (hosts.length === 0) return out;
  if (out.some((f) => f === "-A" || f === "--allow-all" || f === "--allow-import")) return out;
  const i = out.findIndex((f) => f.startsWith("--allow-import="));
  if (i < 0) {
    out.push(`--allow-import=${hosts.join(",")}`);
    return out;
  }
  const have = out[i]!.slice("--allow-import=".length).split(",").filter((h) => h !== "");
  out[i] = `--allow-import=${[...new Set([...have, ...hosts])].join(",")}`;
  return out;
}

/** What {@linkcode workerCommand} wraps. */
export interface WorkerCommandInput {
  /** The program. */
  path: string;
  /** Its arguments. */
  args: readonly string[];
  /** Run it through `setpriv` as this user, or null. */
  drop: PrivilegeDrop | null;
  /** How many sockets it gets on fd 3+ (the `LISTEN_PID` shim is needed when > 0). */
  sockets: number;
}

/**
 * The program and arguments that start a worker: `setpriv …` around the
 * command when dropping privileges, and the `LISTEN_PID` shim around that
 * when it gets sockets.
 *
 * @example
 * ```ts
 * import { workerCommand } from "./worker_command.ts";
 * workerCommand({ path: "/bin/true", args: [], drop: null, sockets: 0 }); // unchanged
 * ```
 */
export function workerCommand(input: WorkerCommandInput): { path: string; args: string[] } {
  let path = input.path;
  let args = [...input.args];
  if (input.drop !== null) {
    args = [...setprivArgs(input.drop), path, ...args];
    path = input.drop.setpriv;
  }
  if (input.sockets > 0) {
    args = ["-c", LISTEN_PID_SHIM, path, ...args];
    path = "/bin/sh";
  }
  return { path, args };
}

/**
 * The variables a worker that runs as another user (`user`) keeps from the
 * supervisor's environment; everything else (secrets, `HOME=/root`, the
 * supervisor's own markers) stays out of reach of `/proc/PID/environ`. The
 * target user's `HOME`, `USER` and `LOGNAME` are set, and the operator adds
 * more by name (`--env NAME` or `--env NAME=VALUE`).
 *
 * @example
 * ```ts
 * import { DROP_ENV_ALLOW } from "./worker_command.ts";
 * console.log(DROP_ENV_ALLOW.includes("PATH")); // true
 * ```
 */
export const DROP_ENV_ALLOW: readonly string[] = Object.freeze([
  "PATH",
  "LANG",
  "LANGUAGE",
  "TZ",
  "TMPDIR",
  "NO_COLOR",
]);

/**
 * The supervisor's own variables, never passed to a worker: the daemon
 * marker, the manager socket a daemonized supervisor forwards to, and what
 * a supervisor taking over from another one is started with.
 */
const SUPERVISOR_VARIABLES: readonly string[] = Object.freeze([
  "FFINET_DAEMONIZED",
  "FFINET_MANAGER_NOTIFY_SOCKET",
  "FFINET_UPGRADE_FROM",
]);

/**
 * The variable through which a worker's `serve()` learns the supervisor's
 * drain timeout (`--drain-timeout`), when the app gives no `drainTimeoutMs`.
 *
 * @example
 * ```ts
 * import { DRAIN_TIMEOUT_ENV } from "./worker_command.ts";
 * console.log(DRAIN_TIMEOUT_ENV); // "FFINET_DRAIN_TIMEOUT_MS"
 * ```
 */
export const DRAIN_TIMEOUT_ENV = "FFINET_DRAIN_TIMEOUT_MS";

/** What {@linkcode workerEnvironment} needs. */
export interface WorkerEnvironmentInput {
  /** The slot number (`FFINET_WORKER_ID`). */
  id: number;
  /** The supervisor's environment (default `Deno.env.toObject()`). */
  base?: Readonly<Record<string, string>>;
  /** Extra variables from the options. */
  extra: Readonly<Record<string, string>>;
  /** The supervisor's notify socket path. */
  notifySocket: string;
  /** The sockets passed on fd 3+. */
  sockets: readonly ListenSocket[];
  /** The watchdog interval, or null. */
  watchdogMs: number | null;
  /** The privilege drop and its `DENO_DIR`, or null. */
  drop: { drop: PrivilegeDrop; denoDir: string } | null;
  /** More names of the supervisor's variables kept under a privilege drop. */
  passEnv?: readonly string[];
  /** The drain timeout, given as {@linkcode DRAIN_TIMEOUT_ENV}. */
  drainTimeoutMs?: number;
  /** Whether it gets a channel (`FFINET_CHANNEL_FD`, the fd after the lifeline). */
  channel?: boolean;
}

/**
 * A worker's whole environment: the supervisor's (under a privilege drop
 * only {@linkcode DROP_ENV_ALLOW}, `LC_*`, `passEnv` and the user's `HOME`),
 * without the service manager's and the supervisor's own variables, plus
 * `extra`, `FFINET_DRAIN_TIMEOUT_MS`, `FFINET_WORKER_ID`, `NO_COLOR=1`,
 * `NOTIFY_SOCKET`, `FFINET_LIFELINE_FD` (the fd after the sockets),
 * `FFINET_CHANNEL_FD` (the fd after that, with `channel`),
 * `LISTEN_FDS`/`LISTEN_FDNAMES` (the shim adds `LISTEN_PID`),
 * `WATCHDOG_USEC`, and `DENO_DIR`/`USER`/`LOGNAME` when dropping.
 *
 * @example
 * ```ts
 * import { workerEnvironment } from "./worker_command.ts";
 * const env = workerEnvironment({
 *   id: 0, base: {}, extra: {}, notifySocket: "/tmp/n", sockets: [], watchdogMs: null, drop: null,
 * });
 * env.FFINET_LIFELINE_FD; // "3"
 * ```
 */
export function workerEnvironment(input: WorkerEnvironmentInput): Record<string, string> {
  const base = input.base ?? Deno.env.toObject();
  let env: Record<string, string> = { ...base };
  if (input.drop !== null) {
    env = {};
    const keep = new Set([...DROP_ENV_ALLOW, ...(input.passEnv ?? [])]);
    for (const [name, value] of Object.entries(base)) {
      if (keep.has(name) || name.startsWith("LC_")) env[name] = value;
    }
    env.HOME = input.drop.drop.home;
  }
  for (const name of MANAGER_VARIABLES) delete env[name];
  for (const name of SUPERVISOR_VARIABLES) delete env[name];
  delete env[CHANNEL_FD_ENV]; // a nested supervisor's own channel is not its workers'

  Object.assign(env, input.extra, {
    FFINET_WORKER_ID: String(input.id),
    NO_COLOR: "1",
    NOTIFY_SOCKET: input.notifySocket,
    FFINET_LIFELINE_FD: String(3 + input.sockets.length),
  });
  if (input.channel === true) env[CHANNEL_FD_ENV] = String(4 + input.sockets.length);
  if (input.sockets.length > 0) {
    env.LISTEN_FDS = String(input.sockets.length);
    env.LISTEN_FDNAMES = input.sockets.map((s) => s.name).join(":");
  }
  if (input.watchdogMs !== null) env.WATCHDOG_USEC = String(Math.round(input.watchdogMs * 1000));
  if (input.drainTimeoutMs !== undefined) env[DRAIN_TIMEOUT_ENV] = String(input.drainTimeoutMs);
  if (input.drop !== null) {
    env.DENO_DIR = input.drop.denoDir;
    env.USER = env.LOGNAME = input.drop.drop.userName;
  }
  return env;
}
