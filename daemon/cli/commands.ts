/**
 * The commands of `serve` (`status`, `reload`, `stop`, `upgrade`) in one
 * table ({@linkcode COMMANDS}: name, usage, help and client), read by the
 * argument parser, by the client here and, through the handlers it types,
 * by the supervisor's control socket. A new command is a row here and its
 * handler in `main.ts`. The client acts on the supervisor named by a pid
 * file through its control socket.
 *
 * Nothing is signalled unless it is verifiably our supervisor: the pid file
 * must be a regular file owned by the caller (no symlink, no hard link), its
 * lock must be held, and the control socket beside it must answer with the
 * same pid. No pid is ever signalled: every command goes through the
 * control socket. A planted pid is refused.
 *
 * `stop`, `reload` and `upgrade` wait as long as the running supervisor's
 * own plan needs (its workers, start and drain timeouts, read with
 * `status`) unless `--timeout` says otherwise.
 *
 * @example
 * ```ts
 * import { runCommand } from "./commands.ts";
 * import { parseServeArgs } from "./args.ts";
 * async function status(): Promise<never> {
 *   Deno.exit(await runCommand(parseServeArgs(["status", "--json"])));
 * }
 * ```
 *
 * @module
 */
import { ErrnoError } from "../../ffi/errno.ts";
import { kill, openFile } from "../../ffi/process.ts";
import { O } from "../../ffi/constants.ts";
import * as sys from "../../ffi/syscalls.ts";
import type { ServeOptions } from "./args.ts";
import { type ControlReply, controlRequest, ControlUnavailableError } from "../control.ts";
import { controlSocketPath, type PidFileStatus, readPidFile, runtimeDir } from "../pidfile.ts";

/** One worker line of `serve status` (and of `status --json`). */
export interface WorkerLine {
  /** Slot number. */
  id: number;
  /** Current pid, or null. */
  pid: number | null;
  /** Slot state (`listening` = ready). */
  state: string;
  /** Uptime of the current process in ms, or null. */
  uptimeMs: number | null;
  /** Unexpected exits followed by a restart. */
  restarts: number;
  /** How the previous process ended (`code 1`, `SIGKILL`), or null. */
  lastExit: string | null;
  /** Resident memory in bytes, or null. */
  rssBytes: number | null;
  /** CPU time used in ms, or null. */
  cpuMs: number | null;
  /** CPU use since the previous sample (or over its life), percent, or null. */
  cpuPercent: number | null;
  /** Output lines dropped under a flood. */
  droppedLines: number;
  /** Times this slot's worker was killed for a missed `WATCHDOG=1`. */
  watchdogKills?: number;
}

/** The timing a supervisor runs with, from which clients derive how long to wait. */
export interface SupervisorPlan {
  /** Worker slots. */
  workers: number;
  /** `--start-timeout`. */
  startTimeoutMs: number;
  /** `--drain-timeout`. */
  drainTimeoutMs: number;
  /** `--watchdog` (0: none). */
  watchdogMs: number;
}

/** What `status` returns over the control socket. */
export interface StatusData {
  /** The supervisor's pid. */
  pid: number;
  /** Its state. */
  state: string;
  /** Its uptime in ms, or null. */
  uptimeMs: number | null;
  /** The app (path or URL), or `"default"`. */
  app: string;
  /** What it listens on (`127.0.0.1:8080`). */
  listen: string[];
  /** One entry per worker slot. */
  workers: WorkerLine[];
  /** Its timing (absent from a supervisor of an older version). */
  plan?: SupervisorPlan;
  /** Its counters (spawned, crashes, watchdog kills, reloads, upgrades, …). */
  counters?: Record<string, number>;
}

/**
 * How long a client waits for `command` on a supervisor running `plan`:
 * a reload replaces every worker one at a time (each may take the start
 * timeout, and its predecessor the drain timeout); an upgrade starts every
 * worker at once and drains the old ones; a stop drains. Plus 5 s.
 *
 * @example
 * ```ts
 * import { planTimeout } from "./commands.ts";
 * planTimeout("reload", { workers: 4, startTimeoutMs: 10_000, drainTimeoutMs: 30_000, watchdogMs: 0 });
 * // 165000
 * ```
 */
export function planTimeout(command: "stop" | "reload" | "upgrade", plan: SupervisorPlan): number {
  const ms = command === "reload"
    ? plan.workers * (plan.startTimeoutMs + plan.drainTimeoutMs)
    : command === "upgrade"
    ? 2 * plan.startTimeoutMs + plan.drainTimeoutMs
    : plan.drainTimeoutMs;
  return Math.min(3_600_000, ms + 5000);
}

/**
 * The pid file of a client command: `--pidfile`, or the default one in
 * {@linkcode runtimeDir} (which is not created).
 *
 * @example
 * ```ts
 * import { clientPidfile } from "./commands.ts";
 * import { parseServeArgs } from "./args.ts";
 * clientPidfile(parseServeArgs(["status", "--pidfile", "/tmp/x/app.pid"])); // "/tmp/x/app.pid"
 * ```
 */
export function clientPidfile(o: ServeOptions): string {
  return o.pidfile ?? `${runtimeDir()}/serve.pid`;
}

/**
 * `1h02m`, `3m04s`, `5.2s`-style durations.
 *
 * @example
 * ```ts
 * import { formatDuration } from "./commands.ts";
 * formatDuration(62_000); // "1m02s"
 * ```
 */
export function formatDuration(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms) || ms < 0) return "-";
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const pad = (n: number) => String(n).padStart(2, "0");
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${pad(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86400)}d${pad(Math.floor(s / 3600) % 24)}h`;
}

function formatBytes(n: number | null): string {
  if (n === null) return "-";
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GB`;
}

/**
 * The `serve status` table: a summary line, then one line per worker (id,
 * pid, state, uptime, restarts, last exit, RSS, CPU, dropped log lines).
 *
 * @example
 * ```ts
 * import { formatStatus } from "./commands.ts";
 * console.log(formatStatus({
 *   pid: 100, state: "running", uptimeMs: 5000, app: "default", listen: ["127.0.0.1:8080"],
 *   workers: [{ id: 0, pid: 101, state: "listening", uptimeMs: 5000, restarts: 0,
 *     lastExit: null, rssBytes: 40_000_000, cpuMs: 120, cpuPercent: 0.5, droppedLines: 0 }],
 * }));
 * ```
 */
export function formatStatus(data: StatusData): string {
  const head = `supervisor pid ${data.pid} ${data.state}, up ${formatDuration(data.uptimeMs)}, ` +
    `listening on ${data.listen.join(", ") || "-"}, app ${data.app}`;
  const rows: string[][] = [[
    "id",
    "pid",
    "state",
    "uptime",
    "restarts",
    "last exit",
    "rss",
    "cpu",
    "dropped",
  ]];
  for (const w of data.workers) {
    rows.push([
      String(w.id),
      w.pid === null ? "-" : String(w.pid),
      w.state,
      formatDuration(w.uptimeMs),
      String(w.restarts),
      w.lastExit ?? "-",
      formatBytes(w.rssBytes),
      w.cpuPercent === null ? "-" : `${w.cpuPercent.toFixed(1)}%`,
      String(w.droppedLines),
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd());
  return [head, ...lines].join("\n");
}

/** Read the pid file, turning a refusal (symlink, owner, ...) into a printed error. */
function readPidFileOrRefuse(path: string): PidFileStatus | string {
  try {
    return readPidFile(path);
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

type Target =
  | { kind: "absent"; message: string; code: number }
  | { kind: "refused"; message: string }
  | { kind: "control"; pid: number; socket: string };

/**
 * Whether the pid file, read again after a reply, names the pid that
 * replied (and is held). During an upgrade the old supervisor stops
 * answering on the control socket before the new one renames its pid file
 * over the old one, and the new one answers only after that: so a reply
 * from a pid other than the one read before comes from a hand-over that
 * happened in between, and the pid file names it now. A planted pid file
 * still names the planted pid.
 */
function namesNow(path: string, pid: number): boolean {
  try {
    const st = readPidFile(path);
    return st.running && st.pid === pid;
  } catch {
    return false;
  }
}

/** Find the supervisor a pid file names, checking it is really ours. */
async function locate(path: string, action: string): Promise<Target> {
  const st = readPidFileOrRefuse(path);
  if (typeof st === "string") return { kind: "refused", message: st };
  if (!st.exists) return { kind: "absent", message: `not running (no pid file ${path})`, code: 3 };
  if (!st.running || st.pid === null) {
    return {
      kind: "absent",
      message: `not running (stale pid file ${path}${st.pid === null ? "" : `, pid ${st.pid}`})`,
      code: 1,
    };
  }
  const socket = controlSocketPath(path);
  let reply: ControlReply;
  try {
    reply = await controlRequest(socket, "ping", { timeoutMs: 5000 });
  } catch (e) {
    if (!(e instanceof ControlUnavailableError)) {
      return { kind: "refused", message: `Cannot ${action}: ${(e as Error).message}` };
    }
    return {
      kind: "refused",
      message: `Cannot ${action} pid ${st.pid}: no control socket answers at ${socket} ` +
        `(no signal is sent to a pid that cannot be verified as an ffinet supervisor)`,
    };
  }
  if (reply.pid !== st.pid && !namesNow(path, reply.pid)) {
    return {
      kind: "refused",
      message: `Cannot ${action}: the pid file ${path} names pid ${st.pid} but the control ` +
        `socket ${socket} belongs to pid ${reply.pid} (refusing to act)`,
    };
  }
  return { kind: "control", pid: reply.pid, socket };
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
    return e instanceof ErrnoError && e.code === "ESRCH";
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

function stillRunning(path: string): boolean {
  try {
    return readPidFile(path).running;
  } catch {
    return false;
  }
}

/**
 * One command of `serve <command>` and of the control protocol: its name
 * (the subcommand and the protocol's verb), its line of `--help`, and how
 * its client behaves around the request they all share.
 *
 * @example
 * ```ts
 * import type { Command } from "./commands.ts";
 * const ping: Command = {
 *   name: "ping", usage: "[--pidfile PATH]", help: "check that it answers",
 *   action: "ping", failCode: 1, absent: () => 3,
 *   timeoutMs: () => Promise.resolve(5000),
 *   done: (_o, _path, pid) => (console.log(`pid ${pid} answers`), 0),
 * };
 * ```
 */
export interface Command {
  /** Its name: the subcommand and the control protocol's verb. */
  readonly name: string;
  /** Its options in the usage line. */
  readonly usage: string;
  /** What it does, for `--help`. */
  readonly help: string;
  /** The action in error messages (`Cannot <action> pid N: …`). */
  readonly action: string;
  /** The exit code of a refusal or a failed request. */
  readonly failCode: number;
  /** Print "not running" and return the exit code. */
  absent(o: ServeOptions, path: string, message: string, code: number): number;
  /** How long to wait for the reply. */
  timeoutMs(o: ServeOptions, socket: string): Promise<number>;
  /** Added to a failure's message. */
  failNote?(pid: number): string;
  /** Whether the command then waits for the supervisor to exit (the wait is planned first). */
  readonly waitsForExit?: boolean;
  /** Print the result of a successful reply and return the exit code. */
  done(
    o: ServeOptions,
    path: string,
    pid: number,
    reply: ControlReply,
    exitWaitMs: number,
  ): Promise<number> | number;
}

/** The wait for `command`: `--timeout`, else derived from the supervisor's plan. */
function planned(command: "stop" | "reload" | "upgrade") {
  return async (o: ServeOptions, socket: string) =>
    Math.max(1, o.timeoutMs ?? await derivedTimeout(socket, command));
}

/**
 * Every command, in `--help` order: the argument parser (subcommands and
 * `--help`), the client ({@linkcode runCommand}) and the supervisor's
 * control socket handlers (typed by {@linkcode CommandName}, so the
 * compiler asks for one per row) all read this table. A new command is a
 * row here and its handler on the supervisor's side (`main.ts`).
 *
 * @example
 * ```ts
 * import { COMMANDS } from "./commands.ts";
 * console.log(COMMANDS.map((c) => c.name)); // ["status", "reload", "stop", "upgrade"]
 * ```
 */
export const COMMANDS = [
  // Exit codes as LSB init scripts: 0 running, 1 dead with a pid file left,
  // 3 not running, 4 unknown (the pid file or control socket was refused).
  {
    name: "status",
    usage: "[--json] [--pidfile PATH]",
    help: "one line per worker (or JSON)",
    action: "read status of",
    failCode: 4,
    absent(o, path, message, code) {
      console.log(
        o.json ? JSON.stringify({ running: false, pidfile: path, reason: message }) : message,
      );
      return code;
    },
    timeoutMs: () => Promise.resolve(5000),
    done(o, _path, _pid, reply) {
      const data = reply.data as StatusData;
      console.log(o.json ? JSON.stringify({ running: true, ...data }) : formatStatus(data));
      return 0;
    },
  },
  {
    name: "reload",
    usage: "[--pidfile PATH]",
    help: "rolling restart of the workers",
    action: "reload",
    failCode: 1,
    absent(_o, _path, message) {
      console.error(`ffinet serve: Cannot reload: ${message}`);
      return 1;
    },
    timeoutMs: planned("reload"),
    done(_o, _path, pid) {
      console.log(`reloaded (pid ${pid})`);
      return 0;
    },
  },
  {
    name: "stop",
    usage: "[--pidfile PATH]",
    help: "drain the workers and stop",
    action: "stop",
    failCode: 1,
    absent(_o, _path, message) {
      console.log(message);
      return 0;
    },
    timeoutMs: () => Promise.resolve(5000),
    // The reply comes at once; then wait until it has exited and released
    // its pid file.
    waitsForExit: true,
    async done(_o, path, pid, _reply, timeoutMs) {
      const end = Date.now() + timeoutMs;
      while (stillRunning(path) || !processGone(pid)) {
        if (Date.now() > end) {
          console.error(
            `ffinet serve: Cannot stop pid ${pid}: still running after ${timeoutMs} ms`,
          );
          return 1;
        }
        await new Promise((r) => setTimeout(r, 25));
      }
      console.log(`stopped (pid ${pid})`);
      return 0;
    },
  },
  {
    name: "upgrade",
    usage: "[--pidfile PATH]",
    help: "replace the supervisor itself (new code,\n" +
      "                                                     new Deno) without closing the socket",
    action: "upgrade",
    failCode: 1,
    absent(_o, _path, message) {
      console.error(`ffinet serve: Cannot upgrade: ${message}`);
      return 1;
    },
    timeoutMs: planned("upgrade"),
    failNote: (pid) => ` (pid ${pid} is still in charge)`,
    done(_o, _path, pid, reply) {
      const next = (reply.data as { pid?: number } | undefined)?.pid;
      console.log(`upgraded (pid ${pid} -> ${next ?? "?"})`);
      return 0;
    },
  },
] as const satisfies readonly Command[];

/** A command's name: `"status"`, `"reload"`, `"stop"` or `"upgrade"`. */
export type CommandName = typeof COMMANDS[number]["name"];

/**
 * The command names, for lookups.
 *
 * @example
 * ```ts
 * import { COMMAND_NAMES } from "./commands.ts";
 * COMMAND_NAMES.has("upgrade"); // true
 * ```
 */
export const COMMAND_NAMES: ReadonlySet<string> = new Set(COMMANDS.map((c) => c.name));

/**
 * The `deno task serve <command>` usage lines of `--help`.
 *
 * @example
 * ```ts
 * import { commandUsage } from "./commands.ts";
 * console.log(commandUsage().split("\n")[0]); // "  deno task serve status [--json] …"
 * ```
 */
export function commandUsage(): string {
  return COMMANDS.map((c) => {
    const left = `  deno task serve ${c.name} ${c.usage}`;
    return `${left.padEnd(53)}${c.help}`;
  }).join("\n");
}

/**
 * Run the client of `o.command` (`status`, `reload`, `stop`, `upgrade`):
 * find the supervisor the pid file names and check it through its control
 * socket, send the command, print the outcome; returns the exit code.
 *
 * - `status`: the table (or JSON with `--json`); exit codes as LSB init
 *   scripts: 0 running, 1 dead with a pid file left, 3 not running, 4
 *   unknown (the pid file or control socket was refused);
 * - `reload`: a rolling restart; 0 once done, 1 when it failed;
 * - `stop`: drain and stop; waits until the supervisor exited and released
 *   its pid file;
 * - `upgrade`: replace the supervisor (see `upgrade.ts`); prints the new
 *   pid, or why the old one stays in charge.
 *
 * @example
 * ```ts
 * import { runCommand } from "./commands.ts";
 * import { parseServeArgs } from "./args.ts";
 * async function status(): Promise<never> {
 *   Deno.exit(await runCommand(parseServeArgs(["status", "--json"])));
 * }
 * ```
 */
export async function runCommand(o: ServeOptions): Promise<number> {
  if (o.command === "run" || o.command === "help") {
    throw new RangeError(`Cannot run "${o.command}" as a client command`);
  }
  const name: CommandName = o.command;
  const c: Command = COMMANDS.find((row) => row.name === name)!;
  const path = clientPidfile(o);
  const t = await locate(path, c.action);
  if (t.kind === "refused") {
    console.error(`ffinet serve: ${t.message}`);
    return c.failCode;
  }
  if (t.kind === "absent") return c.absent(o, path, t.message, t.code);
  const exitWaitMs = c.waitsForExit ? o.timeoutMs ?? await derivedTimeout(t.socket, "stop") : 0;
  let reply: ControlReply;
  try {
    reply = await controlRequest(t.socket, name, { timeoutMs: await c.timeoutMs(o, t.socket) });
    if (!reply.ok) throw new Error(reply.error ?? "refused");
    // A hand-over between the check and the request: `status` (read only)
    // shows the new supervisor once the pid file names it; a command that
    // acts is not repeated on a process it did not check.
    if (reply.pid !== t.pid && !(name === "status" && namesNow(path, reply.pid))) {
      throw new Error(`the control socket now answers for pid ${reply.pid}`);
    }
  } catch (e) {
    console.error(
      `ffinet serve: Cannot ${c.action} pid ${t.pid}: ${(e as Error).message}` +
        (c.failNote?.(t.pid) ?? ""),
    );
    return c.failCode;
  }
  return await c.done(o, path, reply.pid, reply, exitWaitMs);
}

/**
 * The wait for `command` derived from the supervisor's plan (read with
 * `status`), or, from a supervisor that does not say, 10 minutes.
 */
async function derivedTimeout(
  socket: string,
  command: "stop" | "reload" | "upgrade",
): Promise<number> {
  try {
    const reply = await controlRequest(socket, "status", { timeoutMs: 5000 });
    const plan = (reply.data as StatusData | undefined)?.plan;
    if (reply.ok && plan !== undefined) return planTimeout(command, plan);
  } catch { /* fall back below */ }
  return 600_000;
}
