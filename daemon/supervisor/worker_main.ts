/**
 * The preload module a {@linkcode Supervisor} gives every worker:
 *
 * ```
 * deno run <permissions> --preload daemon/supervisor/worker_main.ts <APP> <app args…>
 * ```
 *
 * Deno evaluates it before the app, which is the main module: in the app
 * `import.meta.main` is true (an app guarded by `if (import.meta.main)`
 * runs), `Deno.mainModule` is the app's URL (so `serve({ workers })` of
 * `http/` re-runs the app in its Deno Workers) and `Deno.args` are the app's
 * own arguments, untouched. This module never imports the app, never touches
 * `Deno.args` and never keeps the process alive. At top level it:
 *
 * 1. **Lifeline**: the supervisor passes the read end of a pipe whose write
 *    end only it holds, on the fd named by `FFINET_LIFELINE_FD` (the fd
 *    after the `LISTEN_FDS` sockets). An unref'd interval polls it every
 *    250 ms with `poll(2)` and timeout 0: EOF/hang-up means the supervisor
 *    is gone (even by `kill -9`), and the worker then SIGTERMs itself (the
 *    app drains, if it handles SIGTERM) and exits at the latest 1 s later.
 *    This follows the supervisor *process*, unlike `PR_SET_PDEATHSIG`,
 *    which follows the thread that spawned the worker. Without
 *    `--allow-ffi` the fd cannot be polled, and the worker watches
 *    `Deno.ppid` instead (it is re-parented when the supervisor dies).
 *    `FFINET_LIFELINE_FD` is then removed from the environment and the fd
 *    made close-on-exec, so the app's own child processes do not inherit it.
 * 2. Sets `NO_COLOR=1` (log lines go to syslog).
 * 3. **Heartbeat**: with `WATCHDOG_USEC` (the supervisor's watchdog), an
 *    unref'd interval sends `WATCHDOG=1` on `NOTIFY_SOCKET` every third of
 *    it, from the app's own event loop: a loop blocked by the app (a busy
 *    loop, a synchronous wait) stops the heartbeat, and the supervisor
 *    replaces the worker. The supervisor counts it only once the worker is
 *    ready, so this never announces readiness.
 * 4. **Channel**: makes the `FFINET_CHANNEL_FD` fd (ticket keys and
 *    WebSocket publishes, read by `serve()`) close-on-exec, so that the
 *    app's own children do not inherit it. The name is spelled here rather
 *    than imported: this module loads nothing that needs `--allow-ffi`.
 *
 * Outside a supervisor (no `FFINET_LIFELINE_FD`), or without `--allow-env`
 * (the variable cannot be read), it does nothing. The app sees the
 * socket-activation environment untouched (`LISTEN_FDS`, `LISTEN_PID`,
 * `NOTIFY_SOCKET`, …): `serve()` adopts the sockets and sends `READY=1`.
 *
 * @example
 * ```ts
 * import { LIFELINE_INTERVAL_MS, ORPHAN_GRACE_MS } from "./worker_main.ts";
 * // What the supervisor runs, APP being the main module:
 * // deno run --allow-net --allow-env --allow-read --allow-ffi \
 * //   --preload daemon/supervisor/worker_main.ts ./app.ts --flag
 * console.log(LIFELINE_INTERVAL_MS, ORPHAN_GRACE_MS); // 250 1000
 * ```
 *
 * @module
 */
import { envVar } from "../../reactor/env.ts";

/** How often the lifeline is checked. */
export const LIFELINE_INTERVAL_MS = 250;
/** How long the app may drain after the supervisor died. */
export const ORPHAN_GRACE_MS = 1000;
/** The variable naming the lifeline fd. */
const LIFELINE_ENV = "FFINET_LIFELINE_FD";

function ffiGranted(): boolean {
  return Deno.permissions.querySync({ name: "ffi" }).state === "granted";
}

/**
 * Poll `fd` every `intervalMs` (an unref'd interval, so it never keeps the
 * process alive by itself) with `poll(2)`, timeout 0, and call `onGone`
 * once it hangs up; `fd` is made close-on-exec. Without `--allow-ffi` it
 * watches `Deno.ppid` instead (the worker is re-parented when the
 * supervisor dies). Resolves with a function that stops watching.
 *
 * @example
 * ```ts
 * import { pipe } from "@ffinet/ffinet/ffi";
 * import { close } from "../../ffi/syscalls.ts";
 * import { watchLifeline } from "./worker_main.ts";
 * const [readEnd, writeEnd] = pipe();
 * const gone = Promise.withResolvers<void>();
 * const stop = await watchLifeline(readEnd, () => gone.resolve(), 10);
 * close(writeEnd); // the "supervisor" dies: the read end hangs up
 * const keepAlive = setTimeout(() => {}, 5000); // the watch itself is unref'd
 * await gone.promise;
 * clearTimeout(keepAlive);
 * stop();
 * close(readEnd);
 * ```
 */
export async function watchLifeline(
  fd: number,
  onGone: () => void,
  intervalMs = LIFELINE_INTERVAL_MS,
): Promise<() => void> {
  let gone: () => boolean;
  if (ffiGranted()) {
    // Loaded only now: without --allow-ffi these modules cannot load.
    const { fdHungUp } = await import("../../ffi/spawn.ts");
    const { setCloexec } = await import("../../ffi/fd.ts");
    setCloexec(fd, true); // the app's own children must not hold it
    gone = () => {
      try {
        return fdHungUp(fd);
      } catch {
        return true; // the fd was closed under us: treat as gone
      }
    };
  } else {
    // Without FFI the fd cannot be polled: watch for re-parenting instead
    // (the supervisor is the parent; its death hands the worker to init).
    const parent = Deno.ppid;
    gone = () => Deno.ppid !== parent;
  }
  const timer = setInterval(() => {
    if (!gone()) return;
    clearInterval(timer);
    onGone();
  }, intervalMs);
  Deno.unrefTimer(timer);
  return () => clearInterval(timer);
}

/**
 * Send `WATCHDOG=1` every third of the watchdog interval from this event
 * loop (unref'd: it never keeps the process alive). Returns a function that
 * stops it, or null when there is no watchdog or no FFI to send with.
 *
 * @example
 * ```ts
 * import { startHeartbeat } from "./worker_main.ts";
 * const stop = await startHeartbeat(); // null outside a supervisor with a watchdog
 * stop?.();
 * ```
 */
export async function startHeartbeat(): Promise<(() => void) | null> {
  if (!ffiGranted()) return null;
  const { notify, watchdogInterval } = await import("../../reactor/sd_notify.ts");
  const ms = watchdogInterval();
  if (ms === null || envVar("NOTIFY_SOCKET") === undefined) return null;
  const timer = setInterval(() => {
    try {
      notify("WATCHDOG=1");
    } catch { /* the supervisor is gone: the lifeline deals with it */ }
  }, Math.max(1, Math.floor(ms / 3)));
  Deno.unrefTimer(timer);
  return () => clearInterval(timer);
}

/** Ask the app to drain (SIGTERM to itself), or exit at once when no signal can be sent. */
async function selfTerminator(): Promise<() => void> {
  // Deno.kill needs --allow-run, which workers rarely get; kill(2) through
  // FFI needs only --allow-ffi, the lifeline's own requirement.
  if (ffiGranted()) {
    const { kill } = await import("../../ffi/process.ts");
    const { SIG } = await import("../../ffi/constants.ts");
    return () => kill(Deno.pid, SIG.TERM);
  }
  return () => Deno.kill(Deno.pid, "SIGTERM");
}

/**
 * Make the channel fd (`FFINET_CHANNEL_FD`, read later by `serve()`)
 * close-on-exec at once, so that a process the app spawns before it serves
 * does not inherit it.
 */
async function guardChannel(): Promise<void> {
  const value = envVar("FFINET_CHANNEL_FD");
  if (value === undefined || !/^[0-9]{1,7}$/.test(value) || !ffiGranted()) return;
  try {
    const { setCloexec } = await import("../../ffi/fd.ts");
    setCloexec(Number(value), true);
  } catch { /* not an open fd: serve() says so when it looks */ }
}

/** The preload's work: start the lifeline watch and set NO_COLOR, under a supervisor only. */
async function preload(): Promise<void> {
  const value = envVar(LIFELINE_ENV);
  if (value === undefined) return; // not supervised (or no --allow-env)
  try {
    Deno.env.delete(LIFELINE_ENV); // the app and its children need not see it
  } catch { /* --allow-env for reading only */ }
  try {
    Deno.env.set("NO_COLOR", "1");
  } catch { /* the supervisor put NO_COLOR=1 in the environment already */ }
  if (!/^[0-9]{1,7}$/.test(value)) {
    console.error(`worker: Cannot watch the lifeline: ${LIFELINE_ENV}="${value}" is not an fd`);
    return;
  }
  const fd = Number(value);
  await guardChannel();
  try {
    await startHeartbeat();
  } catch (e) {
    console.error(`worker: Cannot start the watchdog heartbeat: ${(e as Error).message}`);
  }
  try {
    const terminate = await selfTerminator();
    await watchLifeline(fd, () => {
      console.error(`worker ${envVar("FFINET_WORKER_ID") ?? "?"}: supervisor gone, exiting`);
      // A ref'd timer: whatever the app does with SIGTERM, the worker is
      // gone within ORPHAN_GRACE_MS.
      setTimeout(() => Deno.exit(1), ORPHAN_GRACE_MS);
      try {
        terminate();
      } catch {
        Deno.exit(1);
      }
    });
  } catch (e) {
    console.error(`worker: Cannot watch the lifeline fd ${fd}: ${(e as Error).message}`);
  }
}

if (import.meta.main) {
  console.error(
    "Cannot run worker_main.ts: it is a preload module " +
      "(deno run --preload daemon/supervisor/worker_main.ts APP [ARGS…])",
  );
  Deno.exit(2);
}
await preload();
