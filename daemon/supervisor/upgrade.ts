/**
 * The supervisor's self-upgrade, as nginx's binary upgrade (USR2, then
 * QUIT): a new supervisor is started from the code now on disk (and the
 * `deno` at the same path) and takes over without a listening socket ever
 * being closed.
 *
 * 1. The old supervisor spawns the new one (`posix_spawn`, never `fork`)
 *    with its listening sockets, its control socket and the read end of a
 *    hand-over pipe on fd 3, 4, … (`LISTEN_FDS`, `LISTEN_FDNAMES`, the last
 *    two named {@linkcode CONTROL_FD_NAME} and {@linkcode HANDOVER_FD_NAME},
 *    and `LISTEN_PID` = the new pid through the same shell shim as the
 *    workers), `FFINET_UPGRADE_FROM=<old pid>`, and a `NOTIFY_SOCKET` of
 *    its own.
 * 2. The new one starts its workers on those sockets; once every one is
 *    ready it says so ({@linkcode HANDOVER_FIELD}`=1`, see
 *    {@linkcode awaitHandOver}) and waits.
 * 3. The old one stops accepting on the control socket (its listening fd
 *    leaves its reactor and is closed) and only then writes one byte on the
 *    hand-over pipe.
 * 4. On that byte the new one takes the pid file over (a new locked file
 *    renamed over the old one), serves the inherited control socket and
 *    sends `READY=1`; the old one drains its workers and exits. Connections
 *    keep being accepted throughout: the listening sockets are the same
 *    ones.
 *
 * So the control socket has one server at a time: a request that reads the
 * new pid file is answered by the new supervisor, never by the old one
 * (requests that arrive between 3 and 4 wait in the socket's backlog).
 *
 * If the new one reports a failure (`STATUS=` with `ERRNO=`), exits, or is
 * not ready in time, it is stopped and the old one stays in charge, with
 * the reason (and accepts on the control socket again, if it had stopped).
 *
 * @example
 * ```ts
 * import { startSuccessor } from "./upgrade.ts";
 * import type { ControlServer } from "../control.ts";
 * async function upgrade(
 *   fds: { fd: number; name: string }[],
 *   control: ControlServer,
 * ): Promise<number> {
 *   const { pid } = await startSuccessor({
 *     command: Deno.execPath(),
 *     args: ["run", "-A", "daemon/cli.ts"],
 *     sockets: fds,
 *     control,
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
import { EAGAIN, EINTR, ErrnoError } from "../../ffi/errno.ts";
import { pipe } from "../../ffi/fd.ts";
import { pidfdSendSignal, spawn, waitPidfd } from "../../ffi/spawn.ts";
import { close, read, write } from "../../ffi/syscalls.ts";
import { Interest } from "../../reactor/interest.ts";
import { Reactor } from "../../reactor/reactor.ts";
import type { Registration } from "../../reactor/poller.ts";
import { notify } from "../../reactor/sd_notify.ts";
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
 * The `LISTEN_FDNAMES` name of the hand-over pipe's read end (after the
 * control socket): one byte on it says the old supervisor no longer
 * accepts on the control socket.
 *
 * @example
 * ```ts
 * import { HANDOVER_FD_NAME } from "./upgrade.ts";
 * console.log(HANDOVER_FD_NAME); // "ffinet-handover"
 * ```
 */
export const HANDOVER_FD_NAME = "ffinet-handover";

/**
 * The notify variable (`X_` for a name of the application's own, as
 * systemd asks) by which the new supervisor says its workers are ready and
 * it waits for the control socket.
 *
 * @example
 * ```ts
 * import { HANDOVER_FIELD } from "./upgrade.ts";
 * console.log(HANDOVER_FIELD); // "X_FFINET_HANDOVER"
 * ```
 */
export const HANDOVER_FIELD = "X_FFINET_HANDOVER";

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

/**
 * The control socket as the old supervisor serves it (a `ControlServer`):
 * its listening fd, handed to the new supervisor, and how to stop
 * accepting on it.
 */
export interface HandOverControl {
  /** The listening socket's fd. */
  readonly fd: number;
  /**
   * Stop accepting, synchronously: called once the new supervisor is ready
   * to take over, before it is allowed to. A throw fails the upgrade.
   * (After a failure the caller accepts again.)
   */
  stopAccepting(): void;
}

/** What {@linkcode startSuccessor} needs. */
export interface SuccessorOptions {
  /** The program (`Deno.execPath()`). */
  command: string;
  /** Its arguments (`run <flags> <cli.ts> <options>`). */
  args: readonly string[];
  /** The listening sockets to hand over, in order (fd in this process, name). */
  sockets: readonly { fd: number; name: string }[];
  /** The control socket, handed over after them as {@linkcode CONTROL_FD_NAME}. */
  control: HandOverControl;
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
 * Start the new supervisor with the sockets and the hand-over pipe; when it
 * is ready to take over ({@linkcode HANDOVER_FIELD}`=1`) stop accepting
 * on the control socket and then let it (one byte on the pipe); resolve once it
 * says it took over (`READY=1` from its own pid). Rejects with the new
 * one's reason (its `STATUS=`, its exit, or the timeout) after making sure
 * it is gone.
 *
 * @example
 * ```ts
 * import { startSuccessor } from "./upgrade.ts";
 * import type { ControlServer } from "../control.ts";
 * async function handOver(fd: number, control: ControlServer): Promise<number> {
 *   const next = await startSuccessor({
 *     command: Deno.execPath(),
 *     args: ["run", "-A", "/opt/ffinet/daemon/cli.ts", "--pidfile", "/run/ffinet/serve.pid"],
 *     sockets: [{ fd, name: "http" }],
 *     control,
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
  let turn: [number, number] | null = null;
  let yielded = false;
  /** Stop accepting on the control socket, then let the new one take it. */
  const yieldTo = (): boolean => {
    if (yielded) return true;
    yielded = true;
    try {
      options.control.stopAccepting();
      const n = write(turn![1], new Uint8Array([1]));
      if (n !== 1) throw new ErrnoError("write", n < 0 ? -n : EAGAIN, { detail: "hand-over pipe" });
      return true;
    } catch (e) {
      settle({
        kind: "failed",
        reason: `the control socket could not be handed over: ${(e as Error).message}`,
      });
      return false;
    }
  };
  try {
    turn = pipe();
    server = NotifyServer.open(reactor, (m) => {
      if (m.pid !== childPid || childPid === 0) return;
      const s = m.fields.get("STATUS");
      if (s !== undefined) status = s;
      if (m.fields.has("ERRNO")) settle({ kind: "failed", reason: status ?? "it failed" });
      else if (m.fields.get(HANDOVER_FIELD) === "1") yieldTo();
      else if (m.fields.get("READY") === "1" && yieldTo()) settle({ kind: "ready" });
    });
    const env: Record<string, string> = { ...options.env };
    for (const name of MANAGER_VARIABLES) delete env[name];
    env.NOTIFY_SOCKET = server.path;
    const names = [...options.sockets.map((s) => s.name), CONTROL_FD_NAME, HANDOVER_FD_NAME];
    env.LISTEN_FDS = String(names.length);
    env.LISTEN_FDNAMES = names.join(":");
    const child = spawn({
      path: "/bin/sh",
      args: ["-c", LISTEN_PID_SHIM, options.command, ...options.args],
      env,
      fds: [...options.sockets.map((s) => s.fd), options.control.fd, turn[0]],
      stdout: "inherit",
      stderr: "inherit",
      setsid: options.setsid,
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    });
    close(turn[0]); // the new one's copy is all that is needed
    turn[0] = -1;
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
    // The write end last: a successor still waiting reads EOF and gives up.
    if (turn !== null) {
      if (turn[0] >= 0) close(turn[0]);
      close(turn[1]);
    }
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

/**
 * In the new supervisor, once its workers are ready: tell the old one
 * ({@linkcode HANDOVER_FIELD}`=1` on `NOTIFY_SOCKET`) and wait for its byte
 * on the hand-over pipe `fd`, which says it no longer accepts on the
 * control socket; only then may this one take the pid file and serve the
 * socket. Closes `fd`. Rejects when the old one closes the pipe without
 * the byte (it gave the upgrade up, or died) or after `timeoutMs`.
 *
 * @example
 * ```ts
 * import { awaitHandOver } from "./upgrade.ts";
 * async function takeOver(handOverFd: number, serveControl: () => void): Promise<void> {
 *   await awaitHandOver(handOverFd, 15_000);
 *   serveControl(); // the old supervisor has stopped accepting
 * }
 * ```
 */
export async function awaitHandOver(fd: number, timeoutMs: number): Promise<void> {
  const reactor = new Reactor();
  const loop = reactor.run();
  const watch: { reg?: Registration<undefined> } = {};
  try {
    const outcome = new Promise<string | null>((resolve) => {
      const timer = reactor.setTimeout(
        () => resolve(`no word from the old supervisor within ${timeoutMs} ms`),
        timeoutMs,
      );
      watch.reg = reactor.register(fd, Interest.READABLE, () => {
        const n = read(fd, new Uint8Array(1));
        if (n === -EAGAIN || n === -EINTR) return;
        timer.cancel();
        resolve(
          n === 1
            ? null
            : n === 0
            ? "the old supervisor gave the hand-over up"
            : `the hand-over pipe failed (errno ${-n})`,
        );
      });
    });
    // No STATUS=: the old supervisor quotes the last one as the reason of a failure.
    notify({ [HANDOVER_FIELD]: "1" });
    const why = await outcome;
    if (why !== null) throw new Error(`Cannot take over: ${why}`);
  } finally {
    if (watch.reg?.registered) watch.reg.deregister();
    reactor.stop();
    await loop;
    reactor.close();
    close(fd);
  }
}
