/**
 * The reactor of this thread (private): one per thread, shared by every
 * server started on it, running while at least one server uses it.
 *
 * @module
 */
import { Reactor } from "../reactor/reactor.ts";

let reactor: Reactor | undefined;
let users = 0;
let running: Promise<void> | undefined;

/** Take a reference to this thread's reactor (created and started on first use). */
export function acquireReactor(options: { sliceMs?: number; busyWaitMs?: number } = {}): Reactor {
  if (reactor === undefined) {
    reactor = new Reactor({
      sliceMs: options.sliceMs ?? 10,
      busyWaitMs: options.busyWaitMs ?? 2,
      onError: (error) => console.error("ffinet http: internal error:", error),
    });
  }
  users++;
  if (running === undefined) {
    const r = reactor;
    running = r.run().catch((e) => console.error("ffinet http: reactor stopped:", e));
  }
  return reactor;
}

/** Drop a reference; the last one stops and closes the reactor. */
export async function releaseReactor(): Promise<void> {
  if (--users > 0 || reactor === undefined) return;
  const r = reactor;
  const run = running;
  reactor = undefined;
  running = undefined;
  r.stop();
  await run;
  r.close();
}
