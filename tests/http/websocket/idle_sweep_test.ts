// The keep-alive sweep of WebSocket sessions (http/websocket/_idle.ts): one
// interval for all sessions. An idle server's sweep must allocate nothing per
// session: garbage made on every sweep keeps V8's allocation rate up, and V8
// then never shrinks the heap a connect burst grew (its memory reducer waits
// for a low allocation rate).
import { assert, assertEquals } from "@std/assert";
import { idleSweep, type IdleTarget, SWEEP_MS } from "../../../http/websocket/_idle.ts";
import { allocatedBytes, sleep } from "../../_helpers.ts";

function target(): IdleTarget & { idled: number } {
  return {
    heard: false,
    silentMs: 0,
    pingSent: false,
    idled: 0,
    idle() {
      this.idled++;
    },
  };
}

Deno.test("idle sweep: a silent session is reported after its idle time, a heard one is not", async () => {
  const silent = target();
  const heard = target();
  idleSweep.add(silent, SWEEP_MS);
  idleSweep.add(heard, SWEEP_MS);
  try {
    const end = Date.now() + 10_000;
    while (silent.idled === 0 && Date.now() < end) {
      heard.heard = true;
      heard.pingSent = true;
      await sleep(SWEEP_MS / 10);
    }
    assert(silent.idled > 0, "the silent session was never reported idle");
    assertEquals(heard.idled, 0, "a session heard on every sweep was reported idle");
    // A sweep that found the session heard cleared its ping and silence.
    assertEquals(heard.pingSent, false);
  } finally {
    idleSweep.delete(silent);
    idleSweep.delete(heard);
  }
});

Deno.test("idle sweep: sweeping 20,000 sessions allocates nothing per session", () => {
  const count = 20_000;
  const targets = Array.from({ length: count }, target);
  // Never idle during the test (a day), so the sweep only visits them.
  for (const t of targets) idleSweep.add(t, 86_400_000);
  try {
    // Sweeps run synchronously here, so nothing else in the isolate (timers,
    // other tests' promises) allocates between the two counts. The first
    // sweeps compile and optimize the visit; they are not counted.
    for (let i = 0; i < 20; i++) idleSweep.sweep();
    // Reading V8's counter allocates by itself, so an empty measurement is
    // taken first and subtracted.
    const empty = allocatedBytes();
    const baseline = allocatedBytes() - empty;
    const sweeps = 50;
    const silentBefore = targets[0]!.silentMs;
    const before = allocatedBytes();
    for (let i = 0; i < sweeps; i++) idleSweep.sweep();
    const allocated = allocatedBytes() - before - baseline;
    assertEquals(
      targets[0]!.silentMs - silentBefore,
      sweeps * SWEEP_MS,
      "a sweep skipped a session",
    );
    // A [key, value] entry per session per sweep is >= 32 bytes (84-121 measured).
    const perSession = allocated / (count * sweeps);
    assert(
      perSession < 1,
      `a sweep allocated ${
        perSession.toFixed(2)
      } bytes per session (${allocated} in ${sweeps} sweeps)`,
    );
  } finally {
    for (const t of targets) idleSweep.delete(t);
  }
});
