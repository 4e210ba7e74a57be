/**
 * The supervisor's self-upgrade, as nginx's binary upgrade (USR2, then
 * QUIT): a new supervisor is started from the code now on disk (and the
 * `deno` at the same path) and takes over without a listening socket ever
 * being closed.
 *
 * 1. The old supervisor spawns the new one (`posix_spawn`, never `fork`)
 *    with its listening sockets and its control socket on fd 3, 4, …
 *    (`LISTEN_FDS`, `LISTEN_FDNAMES`, the last one named
 *    {@linkcode CONTROL_FD_NAME}, and `LISTEN_PID` = the new pid through the
 *    same shell shim as the workers), `FFINET_UPGRADE_FROM=<old pid>`, and a
 *    `NOTIFY_SOCKET` of its own.
 * 2. The new one starts its workers on those sockets; once every one is
 *    ready it takes the pid file over (a new locked file renamed over the
 *    old one), serves the inherited control socket and sends `READY=1`.
 * 3. Only then does the old supervisor stop serving the control socket and
 *    drain its workers, and exit. Connections keep being accepted
 *    throughout: the listening sockets are the same ones.
 *
 * If the new one reports a failure (`STATUS=` with `ERRNO=`), exits, or is
 * not ready in time, it is stopped and the old one stays in charge, with
 * the reason.
 *
 * @example
 * ```ts
 * import { startSuccessor } from "./upgrade.ts";
 * async function upgrade(fds: { fd: number; name: string }[]): Promise<number> {
 *   const { pid } = await startSuccessor({
 *     command: Deno.execPath(),
 *     args: ["run", "-A", "daemon/cli.ts"],
 *     sockets: fds,
 *     env: {},
 *     timeoutMs: 30_000,
 *     setsid: true,
 *   });
 *   return pid;
 * }
 * ```
 *
 * @module
 */
import { pidfdSendSignal, spawn, waitPidfd } from "../../ffi/spawn.ts";
import { close } from "../../ffi/syscalls.ts";
import { Interest } from "../../reactor/interest.ts";
import { Reactor } from "../../reactor/reactor.ts";
import type { Registration } from "../../reactor/poller.ts";
import { NotifyServer } from "./notify_server.ts";
import { LISTEN_PID_SHIM, MANAGER_VARIABLES } from "./worker_command.ts";

/**
 * The `LISTEN_FDNAMES` name of the control socket handed to the new supervisor.
 *
 * @example
 * ```ts
 * import { CONTROL_FD_NAME } from "./upgrade.ts";
 * console.log(CONTROL_FD_NAME); // "ffinet-control"
 * ```
 */
export const CONTROL_FD_NAME = "ffinet-control";

/**
 * The variable that tells a supervisor it takes over from the pid it names.
 *
 * @example
 * ```ts
 * import { UPGRADE_ENV } from "./upgrade.ts";
 * console.log(UPGRADE_ENV); // "FFINET_UPGRADE_FROM"
 * ```
 */
export const UPGRADE_ENV = "FFINET_UPGRADE_FROM";

/** What {@linkcode startSuccessor} needs. */
export interface SuccessorOptions {
  /** The program (`Deno.execPath()`). */
  command: string;
  /** Its arguments (`run <flags> <cli.ts> <options>`). */
  args: readonly string[];
  /** The sockets to hand over, in order (fd in this process, name). */
  sockets: readonly { fd: number; name: string }[];
  /** Its environment (the manager's variables are replaced). */
  env: Readonly<Record<string, string>>;
  /** How long it may take to be ready. */
  timeoutMs: number;
  /** Start it in a new session (a daemon must lead its session). */
  setsid: boolean;
  /** Its working directory. */
  cwd?: string;
}

/** A started, ready successor. */
export interface Successor {
  /** Its pid. */
  pid: number;
}

/**
 * Start the new supervisor with the sockets and wait until it says it took
 * over (`READY=1` from its own pid). Rejects with the new one's reason
 * (its `STATUS=`, its exit, or the timeout) after making sure it is gone.
 *
 * @example
 * ```ts
 * import { startSuccessor } from "./upgrade.ts";
 * async function handOver(fd: number): Promise<number> {
 *   const next = await startSuccessor({
 *     command: Deno.execPath(),
 *     args: ["run", "-A", "/opt/ffinet/daemon/cli.ts", "--pidfile", "/run/ffinet/serve.pid"],
 *     sockets: [{ fd, name: "http" }],
 *     env: Deno.env.toObject(),
 *     timeoutMs: 35_000,
 *     setsid: true,
 *   });
 *   return next.pid;
 * }
 * ```
 */
export async function startSuccessor(options: SuccessorOptions): Promise<Successor> {
  const reactor = new Reactor();
  const loop = reactor.run();
  let status: string | null = null;
  let childPid = 0;
  type Outcome = { kind: "ready" } | { kind: "failed"; reason: string };
  let settle!: (o: Outcome) => void;
  const outcome = new Promise<Outcome>((r) => settle = r);
  let server: NotifyServer | null = null;
  let pidfd = -1;
  let reg: Registration<undefined> | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    server = NotifyServer.open(reactor, (m) => {
      if (m.pid !== childPid || childPid === 0) return;
      const s = m.fields.get("STATUS");
      if (s !== undefined) status = s;
      if (m.fields.has("ERRNO")) settle({ kind: "failed", reason: status ?? "it failed" });
      else if (m.fields.get("READY") === "1") settle({ kind: "ready" });
    });
    const env: Record<string, string> = { ...options.env };
    for (const name of MANAGER_VARIABLES) delete env[name];
    env.NOTIFY_SOCKET = server.path;
    env.LISTEN_FDS = String(options.sockets.length);
    env.LISTEN_FDNAMES = options.sockets.map((s) => s.name).join(":");
    const child = spawn({
      path: "/bin/sh",
      args: ["-c", LISTEN_PID_SHIM, options.command, ...options.args],
      env,
      fds: options.sockets.map((s) => s.fd),
      stdout: "inherit",
      stderr: "inherit",
      setsid: options.setsid,
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    });
    childPid = child.pid;
    pidfd = child.pidfd;
    reg = reactor.register(pidfd, Interest.READABLE, () => {
      const exit = waitPidfd(pidfd);
      if (exit === null) return;
      reg?.deregister();
      close(pidfd);
      pidfd = -1;
      const how = exit.signal !== null
        ? `was killed by ${exit.signal}`
        : `exited with code ${exit.code}`;
      settle({
        kind: "failed",
        reason: status ?? `the new supervisor (pid ${childPid}) ${how} before it was ready`,
      });
    });
    timer = setTimeout(() => {
      settle({
        kind: "failed",
        reason:
          `the new supervisor (pid ${childPid}) was not ready within ${options.timeoutMs} ms` +
          (status === null ? "" : ` (last status: ${status})`),
      });
    }, options.timeoutMs);
    const result = await outcome;
    clearTimeout(timer);
    if (result.kind === "ready") return { pid: childPid };
    await ensureGone(() => pidfd, (s) => pidfd >= 0 && pidfdSendSignal(pidfd, s));
    throw new Error(`Cannot upgrade: ${result.reason}`);
  } finally {
    clearTimeout(timer);
    server?.close();
    if (reg?.registered) reg.deregister();
    if (pidfd >= 0) close(pidfd); // a ready successor: it is not ours to reap
    reactor.stop();
    await loop;
    reactor.close();
  }
}

/** SIGTERM the failed successor, SIGKILL after 5 s; wait until it is reaped. */
async function ensureGone(
  fd: () => number,
  signal: (s: Deno.Signal) => boolean,
): Promise<void> {
  if (fd() < 0) return;
  signal("SIGTERM");
  const end = Date.now() + 10_000;
  let killed = false;
  while (fd() >= 0 && Date.now() < end) {
    if (!killed && Date.now() > end - 5000) {
      signal("SIGKILL");
      killed = true;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
