/**
 * The reactor of this thread (private): one per thread, shared by every
 * server started on it, running while at least one server uses it, and
 * keeping the process alive while at least one of them is ref'd.
 *
 * @module
 */
import { Reactor } from "../reactor/reactor.ts";

/** Reactor tuning a server may ask for. */
export interface ReactorTuning {
  sliceMs?: number;
  busyWaitMs?: number;
}

const DEFAULTS = { sliceMs: 10, busyWaitMs: 2 } as const;

let reactor: Reactor | undefined;
let tuning: { sliceMs: number; busyWaitMs: number } = { ...DEFAULTS };
let running: Promise<void> | undefined;
const users = new Set<object>();
const unrefed = new Set<object>();

/** Whether this thread's reactor runs already (its tuning is then fixed). */
export function threadReactorRuns(): boolean {
  return reactor !== undefined;
}

/**
 * Take a reference to this thread's reactor for `user` (created on first
 * use, with `options`; started by {@link startReactor} once the user has
 * registered what it needs). While it exists, its tuning is fixed: a later
 * server asking for other values gets a `RangeError` (instead of running
 * with values it did not ask for).
 */
export function acquireReactor(options: ReactorTuning = {}, user: object = {}): Reactor {
  if (reactor === undefined) {
    const wanted = {
      sliceMs: options.sliceMs ?? DEFAULTS.sliceMs,
      busyWaitMs: options.busyWaitMs ?? DEFAULTS.busyWaitMs,
    };
    reactor = new Reactor({
      ...wanted,
      onError: (error) => console.error("ffinet http: internal error:", error),
    });
    tuning = wanted;
  } else {
    for (const name of ["sliceMs", "busyWaitMs"] as const) {
      const v = options[name];
      if (v !== undefined && v !== tuning[name]) {
        throw new RangeError(
          `Cannot serve: reactor.${name} ${v} cannot apply: this thread's reactor already runs ` +
            `with ${name} ${tuning[name]} (set by the first server of the thread; ` +
            `one reactor serves every server of a thread)`,
        );
      }
    }
  }
  users.add(user);
  applyRef();
  return reactor;
}

/**
 * Run this thread's reactor if it does not run yet. A server starts it only
 * after its socket is bound: one that fails to bind releases a reactor that
 * never ran, so nothing of it (an epoll wait on another thread) outlives
 * the failed call.
 */
export function startReactor(): void {
  if (reactor === undefined || running !== undefined) return;
  running = reactor.run().catch((e) => console.error("ffinet http: reactor stopped:", e));
}

/** Whether `user` keeps the process alive (`server.ref()`/`unref()`). */
export function refReactor(user: object, refed: boolean): void {
  if (!users.has(user)) return;
  if (refed) unrefed.delete(user);
  else unrefed.add(user);
  applyRef();
}

/** The thread's reactor keeps the process alive while one of its users is ref'd. */
function applyRef(): void {
  if (reactor === undefined) return;
  if (unrefed.size < users.size) reactor.ref();
  else reactor.unref();
}

/** Drop `user`'s reference; the last one stops and closes the reactor. */
export async function releaseReactor(user?: object): Promise<void> {
  if (user !== undefined) {
    if (!users.delete(user)) return;
    unrefed.delete(user);
  } else {
    // A caller without an identity: drop any one reference.
    const any = users.values().next();
    if (any.done) return;
    users.delete(any.value);
    unrefed.delete(any.value);
  }
  if (users.size > 0 || reactor === undefined) {
    applyRef();
    return;
  }
  const r = reactor;
  const run = running;
  reactor = undefined;
  running = undefined;
  r.stop();
  await run;
  r.close();
}
