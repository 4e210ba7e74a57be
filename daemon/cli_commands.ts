/**
 * `serve status`, `serve stop` and `serve reload`: the client side, acting
 * on the supervisor named by a pid file through its control socket.
 *
 * Nothing is signalled unless it is verifiably our supervisor: the pid file
 * must be a regular file owned by the caller (no symlink, no hard link), its
 * lock must be held, and the control socket beside it must answer with the
 * same pid. Only when no control socket answers (a supervisor from before
 * control sockets) is a signal sent, and only to a process whose
 * `/proc/<pid>/cmdline` runs `daemon/cli.ts`. A planted pid is refused.
 *
 * @example
 * ```ts
 * import { statusCommand } from "./cli_commands.ts";
 * import { parseServeArgs } from "./cli_args.ts";
 * async function status(): Promise<never> {
 *   Deno.exit(await statusCommand(parseServeArgs(["status", "--json"])));
 * }
 * ```
 *
 * @module
 */
import { ErrnoError } from "../ffi/errno.ts";
import { kill, openFile } from "../ffi/process.ts";
import { O } from "../ffi/constants.ts";
import * as sys from "../ffi/syscalls.ts";
import type { ServeOptions } from "./cli_args.ts";
import { type ControlReply, controlRequest, ControlUnavailableError } from "./control.ts";
import {
  controlSocketPath,
  isServeProcess,
  type PidFileStatus,
  readPidFile,
  runtimeDir,
} from "./pidfile.ts";

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
}

/**
 * The pid file of a client command: `--pidfile`, or the default one in
 * {@linkcode runtimeDir} (which is not created).
 *
 * @example
 * ```ts
 * import { clientPidfile } from "./cli_commands.ts";
 * import { parseServeArgs } from "./cli_args.ts";
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
 * import { formatDuration } from "./cli_commands.ts";
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
 * import { formatStatus } from "./cli_commands.ts";
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
  | { kind: "control"; pid: number; socket: string }
  | { kind: "legacy"; pid: number };

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
    if (isServeProcess(st.pid)) return { kind: "legacy", pid: st.pid };
    return {
      kind: "refused",
      message: `Cannot ${action} pid ${st.pid}: no control socket answers at ${socket} and ` +
        `/proc/${st.pid}/cmdline does not run daemon/cli.ts (refusing to signal a process ` +
        `that is not an ffinet supervisor)`,
    };
  }
  if (reply.pid !== st.pid) {
    return {
      kind: "refused",
      message: `Cannot ${action}: the pid file ${path} names pid ${st.pid} but the control ` +
        `socket ${socket} belongs to pid ${reply.pid} (refusing to act)`,
    };
  }
  return { kind: "control", pid: st.pid, socket };
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
 * `serve status`: print the table (or JSON with `--json`). Exit codes as
 * LSB init scripts: 0 running, 1 dead with a pid file left, 3 not running,
 * 4 unknown (the pid file or control socket was refused).
 *
 * @example
 * ```ts
 * import { statusCommand } from "./cli_commands.ts";
 * import { parseServeArgs } from "./cli_args.ts";
 * async function status(): Promise<never> {
 *   Deno.exit(await statusCommand(parseServeArgs(["status"])));
 * }
 * ```
 */
export async function statusCommand(o: ServeOptions): Promise<number> {
  const path = clientPidfile(o);
  const t = await locate(path, "read status");
  const print = (json: unknown, text: string) => console.log(o.json ? JSON.stringify(json) : text);
  switch (t.kind) {
    case "refused":
      console.error(`ffinet serve: ${t.message}`);
      return 4;
    case "absent":
      print({ running: false, pidfile: path, reason: t.message }, t.message);
      return t.code;
    case "legacy":
      print({ running: true, pid: t.pid, workers: null }, `running (pid ${t.pid})`);
      return 0;
    case "control": {
      let reply: ControlReply;
      try {
        reply = await controlRequest(t.socket, "status", { timeoutMs: 5000 });
      } catch (e) {
        console.error(`ffinet serve: ${(e as Error).message}`);
        return 4;
      }
      if (!reply.ok || reply.pid !== t.pid) {
        console.error(`ffinet serve: Cannot read status: ${reply.error ?? "pid changed"}`);
        return 4;
      }
      const data = reply.data as StatusData;
      print({ running: true, ...data }, formatStatus(data));
      return 0;
    }
  }
}

/**
 * `serve stop`: ask the supervisor to drain and stop, and wait (up to
 * `--timeout`) until it has exited and released its pid file.
 *
 * @example
 * ```ts
 * import { stopCommand } from "./cli_commands.ts";
 * import { parseServeArgs } from "./cli_args.ts";
 * async function stop(): Promise<never> {
 *   Deno.exit(await stopCommand(parseServeArgs(["stop"])));
 * }
 * ```
 */
export async function stopCommand(o: ServeOptions): Promise<number> {
  const path = clientPidfile(o);
  const t = await locate(path, "stop");
  switch (t.kind) {
    case "refused":
      console.error(`ffinet serve: ${t.message}`);
      return 1;
    case "absent":
      console.log(t.message);
      return 0;
    case "control": {
      try {
        const reply = await controlRequest(t.socket, "stop", { timeoutMs: 5000 });
        if (!reply.ok) throw new Error(reply.error ?? "refused");
      } catch (e) {
        console.error(`ffinet serve: Cannot stop pid ${t.pid}: ${(e as Error).message}`);
        return 1;
      }
      break;
    }
    case "legacy":
      try {
        Deno.kill(t.pid, "SIGTERM");
      } catch (e) {
        console.error(`ffinet serve: Cannot stop pid ${t.pid}: ${(e as Error).message}`);
        return 1;
      }
      break;
  }
  const end = Date.now() + o.timeoutMs;
  while (stillRunning(path) || !processGone(t.pid)) {
    if (Date.now() > end) {
      console.error(
        `ffinet serve: Cannot stop pid ${t.pid}: still running after ${o.timeoutMs} ms`,
      );
      return 1;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  console.log(`stopped (pid ${t.pid})`);
  return 0;
}

/**
 * `serve reload`: a rolling restart; returns once it is done (0) or failed (1).
 *
 * @example
 * ```ts
 * import { reloadCommand } from "./cli_commands.ts";
 * import { parseServeArgs } from "./cli_args.ts";
 * async function reload(): Promise<never> {
 *   Deno.exit(await reloadCommand(parseServeArgs(["reload"])));
 * }
 * ```
 */
export async function reloadCommand(o: ServeOptions): Promise<number> {
  const path = clientPidfile(o);
  const t = await locate(path, "reload");
  switch (t.kind) {
    case "refused":
      console.error(`ffinet serve: ${t.message}`);
      return 1;
    case "absent":
      console.error(`ffinet serve: Cannot reload: ${t.message}`);
      return 1;
    case "legacy":
      try {
        Deno.kill(t.pid, "SIGHUP");
      } catch (e) {
        console.error(`ffinet serve: Cannot reload pid ${t.pid}: ${(e as Error).message}`);
        return 1;
      }
      console.log(`reload signalled (pid ${t.pid})`);
      return 0;
    case "control": {
      try {
        const reply = await controlRequest(t.socket, "reload", {
          timeoutMs: Math.max(1, o.timeoutMs),
        });
        if (!reply.ok) throw new Error(reply.error ?? "refused");
      } catch (e) {
        console.error(`ffinet serve: Cannot reload pid ${t.pid}: ${(e as Error).message}`);
        return 1;
      }
      console.log(`reloaded (pid ${t.pid})`);
      return 0;
    }
  }
}
