/**
 * What a supervisor does when a worker crashed: log why, ask the slot's
 * backoff for a decision, report crash loops and give-ups, and schedule the
 * restart. Private to `supervisor.ts`.
 *
 * @module
 */
import type { RestartPolicy } from "./backoff.ts";
import type { SupervisorEvent, SupervisorLogger, WorkerExit } from "./types.ts";
import { describeExit, explainFailure, type Slot, type Worker } from "./_slot.ts";

/** What {@linkcode scheduleRestart} needs from the supervisor. */
export interface RestartContext {
  /** The restart numbers. */
  policy: RestartPolicy;
  /** Where to log. */
  logger: SupervisorLogger;
  /** Emit an event. */
  emit(event: SupervisorEvent): void;
  /** Whether restarts are still wanted (running or reloading). */
  active(): boolean;
  /** Start a new worker in `slot` (throws what spawning throws). */
  respawn(slot: Slot): void;
}

/**
 * Handle the unexpected exit of `w` (the current worker of its slot) after
 * `uptimeMs`: log, decide, and arm the slot's restart timer.
 *
 * @example
 * ```ts
 * import { type RestartContext, scheduleRestart } from "./_restart.ts";
 * import type { Worker } from "./_slot.ts";
 * import type { WorkerExit } from "@ffinet/ffinet/daemon";
 * function onWorkerExit(ctx: RestartContext, w: Worker, exit: WorkerExit, uptimeMs: number): void {
 *   scheduleRestart(ctx, w, exit, uptimeMs);
 * }
 * ```
 */
export function scheduleRestart(
  ctx: RestartContext,
  w: Worker,
  exit: WorkerExit,
  uptimeMs: number,
): void {
  const slot = w.slot;
  clearTimeout(slot.stableTimer);
  slot.stableTimer = undefined;
  const why = w.watchdogKilled
    ? "its watchdog expired"
    : explainFailure(w.recentStderr(Date.now()));
  ctx.logger.warning(
    `supervisor: worker ${slot.id} (pid ${w.proc.pid}) ${describeExit(exit)} after ${uptimeMs} ms` +
      (why === null ? "" : `: ${why}`),
  );
  const d = slot.backoff.crashed(Date.now(), uptimeMs);
  if (d.gaveUp) {
    slot.state = "failed";
    ctx.logger.error(
      `supervisor: worker ${slot.id} gave up after ${slot.backoff.restarts} restarts`,
    );
    ctx.emit({ type: "gave-up", id: slot.id, restarts: slot.backoff.restarts });
    return;
  }
  if (d.enteredLoop) {
    ctx.logger.error(
      `supervisor: worker ${slot.id} is in a crash loop: ${d.crashesInWindow} crashes within ${ctx.policy.loopWindowMs} ms; restarting with backoff (next in ${
        Math.round(d.delayMs)
      } ms, at most every ${ctx.policy.maxDelayMs} ms)`,
    );
    ctx.emit({
      type: "crash-loop",
      id: slot.id,
      crashes: d.crashesInWindow,
      windowMs: ctx.policy.loopWindowMs,
      delayMs: d.delayMs,
    });
  }
  slot.state = "backoff";
  slot.pendingDelay = d.delayMs;
  ctx.emit({
    type: "restart-scheduled",
    id: slot.id,
    delayMs: d.delayMs,
    restarts: slot.backoff.restarts,
  });
  slot.restartTimer = setTimeout(() => {
    slot.restartTimer = undefined;
    slot.pendingDelay = null;
    if (!ctx.active()) return;
    if (slot.current !== w) return; // a reload put a new worker in meanwhile
    try {
      ctx.respawn(slot);
    } catch (e) {
      ctx.logger.error(`supervisor: cannot restart worker ${slot.id}`, e);
      slot.state = "failed";
    }
  }, d.delayMs);
}
