/**
 * Daemonize by re-exec, since `fork(2)` cannot be used from Deno (the child
 * of a multi-threaded runtime dies with SIGSEGV).
 *
 * **In the launcher**, {@linkcode daemonize} starts the current program
 * again: `Deno.execPath() run <permission flags> <Deno.mainModule> <Deno.args
 * without --daemon>`, through `Deno.Command` with `detached: true`, which
 * runs `setsid(2)` in the child (a new session and process group, no
 * controlling terminal), with stdin, stdout and stderr on `/dev/null` and
 * `FFINET_DAEMONIZED=1` in its environment. It then waits for the daemon to
 * report that it is ready, as daemon(7) asks (step 14: the original process
 * exits only once the daemon is up), and resolves with the daemon's pid, or
 * rejects with {@linkcode DaemonizeError} carrying the daemon's own reason
 * (`Cannot bind: EADDRINUSE (Address already in use) [127.0.0.1:8080]`).
 *
 * **Readiness** reuses systemd's notify protocol: the launcher binds a Unix
 * datagram socket in a fresh private (0700) temporary directory and passes
 * its path to the daemon as `NOTIFY_SOCKET`, so the daemon's `sd_notify`
 * messages reach the launcher:
 *
 * - `READY=1` (from {@linkcode notifyReady}): success;
 * - `ERRNO=<n>` (from {@linkcode notifyFailure}, with `STATUS=<message>`):
 *   failure with that message;
 * - the daemon exiting first: failure with the last `STATUS=` it sent, or
 *   its exit code;
 * - nothing within `timeoutMs`: the daemon is sent SIGTERM and it is a
 *   failure;
 * - `signal` aborted (Ctrl-C in the launcher): the daemon is stopped the
 *   same way and it is a failure.
 *
 * **In the daemon**, {@linkcode enterDaemon} checks that it is a session
 * leader (`getsid(0) === getpid()`), unblocks SIGTERM, SIGHUP and SIGINT
 * (see {@linkcode resetSignalMask}), sets the umask (default `0o022`) and
 * changes to `/`; until {@linkcode notifyReady} it also reports an uncaught
 * error or unhandled rejection to the launcher before the process dies.
 *
 * **Open fds in the daemon**: 0, 1 and 2 on `/dev/null`, and nothing else
 * inherited: before spawning, the launcher marks every fd above 2 that is
 * not close-on-exec (such as fds leaked to it by its own parent) as
 * close-on-exec for the duration of the spawn. What the daemon opens itself
 * is close-on-exec too: Deno's runtime (its epoll, eventfds, pipes, module
 * cache files), ffinet's sockets, epoll and eventfds, and the pid file, so
 * worker processes inherit nothing but their stdio.
 *
 * @example
 * ```ts
 * import { daemonize, enterDaemon, isDaemon, notifyFailure, notifyReady } from "@ffinet/ffinet/daemon";
 *
 * async function main(startServing: () => Promise<void>): Promise<void> {
 *   if (Deno.args.includes("--daemon") && !isDaemon()) {
 *     const { pid } = await daemonize(); // throws DaemonizeError with the daemon's reason
 *     console.log(pid);
 *     Deno.exit(0);
 *   }
 *   if (isDaemon()) enterDaemon({ umask: 0o027 });
 *   try {
 *     await startServing();
 *     notifyReady();
 *   } catch (e) {
 *     notifyFailure(e);
 *     Deno.exit(1);
 *   }
 * }
 * ```
 *
 * @module
 */
import { ErrnoError } from "../ffi/errno.ts";
import { integerOption } from "../ffi/validate.ts";
import { isCloexec, listOpenFds, setCloexec } from "../ffi/fd.ts";
import { chdir as chdirTo, getpid, getsid, umask as setUmask } from "../ffi/process.ts";
import { Socket } from "../ffi/socket.ts";
import { unblockSignals } from "../ffi/spawn.ts";
import { Interest } from "../reactor/interest.ts";
import { Reactor } from "../reactor/reactor.ts";
import { notify } from "./sd_notify.ts";

/**
 * The environment variable that marks a process started by {@linkcode daemonize}.
 *
 * @example
 * ```ts
 * import { DAEMON_ENV } from "@ffinet/ffinet/daemon";
 * console.log(Deno.env.get(DAEMON_ENV) === "1"); // true only in the daemon
 * ```
 */
export const DAEMON_ENV = "FFINET_DAEMONIZED";

/**
 * The permission flags the daemon is started with by default: those of
 * `deno task serve`.
 *
 * @example
 * ```ts
 * import { daemonize, DAEMON_PERMISSIONS } from "@ffinet/ffinet/daemon";
 * async function start(): Promise<number> {
 *   const { pid } = await daemonize({ denoFlags: [...DAEMON_PERMISSIONS, "--unstable-net"] });
 *   return pid;
 * }
 * ```
 */
export const DAEMON_PERMISSIONS: readonly string[] = Object.freeze([
  "--allow-ffi",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-run",
  "--allow-net",
  "--allow-sys",
]);

/** Options for {@linkcode daemonize}. */
export interface DaemonizeOptions {
  /** The script to run (default `Deno.mainModule`). */
  script?: string | URL;
  /** Its arguments (default `Deno.args` without `--daemon`). */
  args?: readonly string[];
  /** The `deno run` flags (default {@linkcode DAEMON_PERMISSIONS}). */
  denoFlags?: readonly string[];
  /** Extra environment variables for the daemon. */
  env?: Record<string, string>;
  /** The daemon's initial working directory (default this process's). */
  cwd?: string;
  /** How long to wait for readiness (default 30 000 ms). */
  timeoutMs?: number;
  /**
   * Abort the start (e.g. on Ctrl-C in the launcher): the daemon is stopped
   * (SIGTERM, SIGKILL 5 s later) and {@linkcode daemonize} rejects.
   */
  signal?: AbortSignal;
}

/** What {@linkcode daemonize} resolves with. */
export interface DaemonizeResult {
  /** The daemon's pid. */
  pid: number;
  /** The last `STATUS=` it sent, or null. */
  status: string | null;
}

/**
 * Why a daemon did not come up, as {@linkcode daemonize} rejects.
 *
 * @example
 * ```ts
 * import { daemonize, DaemonizeError } from "@ffinet/ffinet/daemon";
 * async function start(): Promise<void> {
 *   try {
 *     await daemonize();
 *   } catch (e) {
 *     if (e instanceof DaemonizeError) console.error(e.reason, e.errno, e.exitCode);
 *   }
 * }
 * ```
 */
export class DaemonizeError extends Error {
  /** The daemon's pid, or null when it could not be started. */
  readonly pid: number | null;
  /** The `ERRNO=` it sent, or null. */
  readonly errno: number | null;
  /** Its exit code when it exited, or null. */
  readonly exitCode: number | null;
  /** The daemon's own reason, e.g. `Cannot bind: EADDRINUSE (...)`. */
  readonly reason: string;

  /** Build the error; the message is `Cannot daemonize: <reason>`. */
  constructor(
    reason: string,
    details: { pid?: number | null; errno?: number | null; exitCode?: number | null } = {},
  ) {
    super(`Cannot daemonize: ${reason}`);
    this.name = "DaemonizeError";
    this.reason = reason;
    this.pid = details.pid ?? null;
    this.errno = details.errno ?? null;
    this.exitCode = details.exitCode ?? null;
  }
}

/**
 * Whether this process was started by {@linkcode daemonize}.
 *
 * @example
 * ```ts
 * import { isDaemon } from "@ffinet/ffinet/daemon";
 * if (isDaemon()) console.log("running detached");
 * ```
 */
export function isDaemon(): boolean {
  return Deno.env.get(DAEMON_ENV) === "1";
}

/** Mark every inherited (non-close-on-exec) fd above 2 close-on-exec; return them. */
function hideInheritedFds(): number[] {
  const marked: number[] = [];
  let fds: number[];
  try {
    fds = [...listOpenFds().keys()]; // through libc: Deno keeps /proc/self/fd for --allow-all
  } catch {
    return marked; // no /proc: nothing we can do
  }
  for (const fd of fds) {
    if (fd <= 2) continue;
    try {
      if (!isCloexec(fd)) {
        setCloexec(fd, true);
        marked.push(fd);
      }
    } catch { /* closed meanwhile (the readdir's own fd) */ }
  }
  return marked;
}

function restoreFds(fds: number[]): void {
  for (const fd of fds) {
    try {
      setCloexec(fd, false);
    } catch { /* closed meanwhile */ }
  }
}

/** Parse `KEY=value` lines. */
function parseNotification(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) out.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return out;
}

/**
 * Start this program again as a daemon and wait until it is ready (see the
 * module documentation). Resolves with the daemon's pid; rejects with a
 * {@linkcode DaemonizeError} whose `reason` is the daemon's own message when
 * it failed, exited or timed out first.
 *
 * @example
 * ```ts
 * import { daemonize, DaemonizeError } from "@ffinet/ffinet/daemon";
 * async function start(): Promise<never> {
 *   try {
 *     const { pid } = await daemonize({ timeoutMs: 10_000 });
 *     console.log(pid);
 *     Deno.exit(0);
 *   } catch (e) {
 *     console.error(e instanceof DaemonizeError ? e.reason : e);
 *     Deno.exit(1);
 *   }
 * }
 * ```
 */
export async function daemonize(options: DaemonizeOptions = {}): Promise<DaemonizeResult> {
  const script = String(options.script ?? Deno.mainModule);
  const args = options.args ?? Deno.args.filter((a) => a !== "--daemon");
  const flags = options.denoFlags ?? DAEMON_PERMISSIONS;
  const timeoutMs = options.timeoutMs ?? 30_000;

  const dir = await Deno.makeTempDir({ prefix: "ffinet-daemonize-" }); // mode 0700
  const path = `${dir}/notify`;
  const sock = Socket.create("unix", "dgram");
  const reactor = new Reactor();
  try {
    sock.bind({ family: "unix", path });
    const env: Record<string, string> = {
      ...(options.env ?? {}),
      [DAEMON_ENV]: "1",
      NOTIFY_SOCKET: path,
    };
    const command: Deno.CommandOptions = {
      args: ["run", ...flags, script, ...args],
      env,
      stdin: "null",
      stdout: "null",
      stderr: "null",
      detached: true,
    };
    if (options.cwd !== undefined) command.cwd = options.cwd;
    let child: Deno.ChildProcess;
    const marked = hideInheritedFds();
    try {
      child = new Deno.Command(Deno.execPath(), command).spawn();
    } catch (e) {
      throw new DaemonizeError(`cannot start ${Deno.execPath()}: ${(e as Error).message}`);
    } finally {
      restoreFds(marked);
    }
    const pid = child.pid;

    let status: string | null = null;
    type Outcome =
      | { kind: "ready" }
      | { kind: "errno"; errno: number }
      | { kind: "exit"; code: number; signal: Deno.Signal | null }
      | { kind: "timeout" }
      | { kind: "aborted" };
    let settle!: (o: Outcome) => void;
    const outcome = new Promise<Outcome>((r) => settle = r);
    const buf = new Uint8Array(4096);
    const decoder = new TextDecoder();
    const reg = reactor.register(sock.fd, Interest.READABLE, () => {
      for (;;) {
        const got = sock.receiveFrom(buf);
        if (got === null) return;
        const msg = parseNotification(decoder.decode(buf.subarray(0, got.bytes)));
        if (msg.has("STATUS")) status = msg.get("STATUS")!;
        if (msg.has("ERRNO")) settle({ kind: "errno", errno: Number(msg.get("ERRNO")) });
        else if (msg.get("READY") === "1") settle({ kind: "ready" });
      }
    });
    const exited = child.status.then((s) => {
      settle({ kind: "exit", code: s.code, signal: s.signal });
      return s;
    });
    const timer = setTimeout(() => settle({ kind: "timeout" }), timeoutMs);
    const onAbort = () => settle({ kind: "aborted" });
    if (options.signal?.aborted) onAbort();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    const loop = reactor.run();
    const result = await outcome;
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
    reactor.stop();
    await loop;
    reg.deregister();
    // Collect what the daemon said just before it exited.
    for (let got; (got = sock.receiveFrom(buf)) !== null;) {
      const msg = parseNotification(decoder.decode(buf.subarray(0, got.bytes)));
      if (msg.has("STATUS")) status = msg.get("STATUS")!;
    }

    switch (result.kind) {
      case "ready":
        child.unref();
        exited.catch(() => {});
        return { pid, status };
      case "errno": {
        await waitOrTerminate(child, exited, 2000);
        throw new DaemonizeError(status ?? `the daemon failed with errno ${result.errno}`, {
          pid,
          errno: result.errno,
        });
      }
      case "exit":
        throw new DaemonizeError(
          status ??
            (result.signal !== null
              ? `the daemon (pid ${pid}) was killed by ${result.signal} before it was ready`
              : `the daemon (pid ${pid}) exited with code ${result.code} before it was ready`),
          { pid, exitCode: result.code },
        );
      case "aborted":
        await waitOrTerminate(child, exited, 0);
        throw new DaemonizeError(
          `the start was interrupted; the daemon (pid ${pid}) was stopped before it was ready`,
          { pid },
        );
      case "timeout":
        await waitOrTerminate(child, exited, 0);
        throw new DaemonizeError(
          `the daemon (pid ${pid}) did not report readiness within ${timeoutMs} ms` +
            (status === null ? "" : ` (last status: ${status})`),
          { pid },
        );
    }
  } finally {
    reactor.close();
    sock.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Wait up to `graceMs` for the child to exit, then SIGTERM it (SIGKILL 5 s later). */
async function waitOrTerminate(
  child: Deno.ChildProcess,
  exited: Promise<Deno.CommandStatus>,
  graceMs: number,
): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const kill = (signal: Deno.Signal) => {
    try {
      child.kill(signal);
    } catch { /* exited meanwhile */ }
  };
  const wait = (ms: number) => new Promise<false>((r) => timer = setTimeout(r, ms, false));
  const done = exited.then(() => true);
  if (!(await Promise.race([done, wait(graceMs)]))) {
    kill("SIGTERM");
    if (!(await Promise.race([done, wait(5000)]))) kill("SIGKILL");
  }
  clearTimeout(timer);
  await exited;
}

/**
 * The signals {@linkcode resetSignalMask} unblocks: those a daemon is
 * stopped, reloaded or interrupted with.
 *
 * @example
 * ```ts
 * import { DAEMON_SIGNALS } from "@ffinet/ffinet/daemon";
 * console.log(DAEMON_SIGNALS.includes("SIGHUP")); // true
 * ```
 */
export const DAEMON_SIGNALS: readonly Deno.Signal[] = Object.freeze([
  "SIGTERM",
  "SIGHUP",
  "SIGINT",
  "SIGQUIT",
  "SIGUSR1",
  "SIGUSR2",
]);

/**
 * Unblock {@linkcode DAEMON_SIGNALS} in the calling (main) thread: a process
 * started by a parent that blocked SIGTERM or SIGHUP (the mask is inherited
 * across `exec`) would otherwise never see `serve stop` or `serve reload`.
 * A process-directed signal is delivered to a thread that does not block
 * it, so the main thread is enough. Their dispositions need no reset: a
 * Deno signal listener installs its own handler over an inherited
 * `SIG_IGN`, and the supervisor listens for SIGTERM, SIGINT and SIGHUP.
 * Returns false (and changes nothing) when the mask cannot be changed.
 *
 * @example
 * ```ts
 * import { resetSignalMask } from "@ffinet/ffinet/daemon";
 * resetSignalMask();
 * ```
 */
export function resetSignalMask(): boolean {
  try {
    unblockSignals(DAEMON_SIGNALS);
    return true;
  } catch {
    return false;
  }
}

/** Options for {@linkcode enterDaemon}. */
export interface EnterDaemonOptions {
  /** The file mode creation mask (default `0o022`). */
  umask?: number;
  /** The working directory (default `"/"`, so no mount point stays busy). */
  chdir?: string;
  /**
   * Require this process to be a session leader, as {@linkcode daemonize}
   * makes it (default true). Throws when it is not.
   */
  requireSessionLeader?: boolean;
}

/** What {@linkcode enterDaemon} did. */
export interface DaemonInfo {
  /** This process's pid. */
  pid: number;
  /** Its session id (the pid, for a session leader). */
  sid: number;
  /** The umask before {@linkcode enterDaemon} set its own. */
  previousUmask: number;
}

let earlyFailureHandlers: {
  error: (e: ErrorEvent) => void;
  rejection: (e: PromiseRejectionEvent) => void;
} | null = null;

function installEarlyFailureReport(): void {
  if (earlyFailureHandlers !== null) return;
  const error = (e: ErrorEvent) => notifyFailure(e.error ?? e.message);
  const rejection = (e: PromiseRejectionEvent) => notifyFailure(e.reason);
  globalThis.addEventListener("error", error);
  globalThis.addEventListener("unhandledrejection", rejection);
  earlyFailureHandlers = { error, rejection };
}

function removeEarlyFailureReport(): void {
  if (earlyFailureHandlers === null) return;
  globalThis.removeEventListener("error", earlyFailureHandlers.error);
  globalThis.removeEventListener("unhandledrejection", earlyFailureHandlers.rejection);
  earlyFailureHandlers = null;
}

/**
 * In the daemon (the process {@linkcode daemonize} started): check it leads
 * its own session, set the umask and change directory. Until
 * {@linkcode notifyReady}, an uncaught error or unhandled rejection is also
 * reported to the launcher (the process still dies of it).
 *
 * @example
 * ```ts
 * import { enterDaemon, isDaemon } from "@ffinet/ffinet/daemon";
 * if (isDaemon()) enterDaemon({ umask: 0o027, chdir: "/" });
 * ```
 */
export function enterDaemon(options: EnterDaemonOptions = {}): DaemonInfo {
  const mask = integerOption("enter daemon mode", "umask", options.umask, 0o022, 0, 0o777);
  const pid = getpid();
  const sid = getsid(0);
  if ((options.requireSessionLeader ?? true) && sid !== pid) {
    throw new Error(
      `Cannot enter daemon mode: pid ${pid} is not a session leader (session ${sid}); start it with daemonize()`,
    );
  }
  resetSignalMask();
  const previousUmask = setUmask(mask);
  chdirTo(options.chdir ?? "/");
  if (isDaemon()) installEarlyFailureReport();
  return { pid, sid, previousUmask };
}

/**
 * Tell the launcher (or systemd, under `Type=notify`) that the daemon is
 * ready: `READY=1`, `MAINPID` and an optional `STATUS`. Returns whether a
 * notification was sent; never throws (a launcher that gave up is not an
 * error here). In a daemon started by {@linkcode daemonize}, the launcher's
 * socket is forgotten afterwards (`NOTIFY_SOCKET` removed), since the
 * launcher exits.
 *
 * @example
 * ```ts
 * import { notifyReady } from "@ffinet/ffinet/daemon";
 * function ready(): boolean {
 *   return notifyReady("listening on 127.0.0.1:8080"); // false when nobody waits
 * }
 * ```
 */
export function notifyReady(status?: string): boolean {
  removeEarlyFailureReport();
  const state: Record<string, string> = { READY: "1", MAINPID: String(getpid()) };
  if (status !== undefined) state.STATUS = oneLine(status);
  try {
    return notify(state, { unsetEnvironment: isDaemon() });
  } catch {
    if (isDaemon()) Deno.env.delete("NOTIFY_SOCKET");
    return false;
  }
}

/**
 * Tell the launcher (or systemd) that start-up failed: `STATUS=<message>`
 * and, for an {@linkcode ErrnoError}, `ERRNO=<n>`. The launcher prints the
 * message and exits non-zero; exit soon after calling this. Returns whether
 * a notification was sent; never throws.
 *
 * @example
 * ```ts
 * import { notifyFailure } from "@ffinet/ffinet/daemon";
 * function start(listen: () => void): void {
 *   try {
 *     listen();
 *   } catch (e) {
 *     notifyFailure(e); // "Cannot bind: EADDRINUSE (Address already in use) [0.0.0.0:80]"
 *     Deno.exit(1);
 *   }
 * }
 * ```
 */
export function notifyFailure(error: unknown): boolean {
  removeEarlyFailureReport();
  const message = error instanceof Error ? error.message : String(error);
  const state: Record<string, string> = { STATUS: oneLine(message) };
  const errno = findErrno(error);
  if (errno !== null) state.ERRNO = String(errno);
  try {
    return notify(state);
  } catch {
    return false;
  }
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").trim();
}

/** The errno of an `ErrnoError`, or of one in its `cause` chain. */
function findErrno(error: unknown): number | null {
  for (let e = error, depth = 0; e !== undefined && e !== null && depth < 8; depth++) {
    if (e instanceof ErrnoError) return e.errno;
    e = (e as { cause?: unknown }).cause;
  }
  return null;
}
