/**
 * Timers: the heap on its own, and reactor timers (one-shot, repeating,
 * cancel, ordering, firing while the reactor is parked).
 */
import { assert, assertEquals, assertGreaterOrEqual, assertThrows } from "@std/assert";
import { Reactor } from "../../reactor/mod.ts";
import { TimerQueue } from "../../reactor/timer_queue.ts";
import { sleep, waitFor, withFdCheck } from "../_helpers.ts";
import { runFor } from "./_util.ts";
import { EMULATED, scaled } from "../ffi/_emulation.ts";

Deno.test("TimerQueue: fires due timers in deadline order, then creation order", () => {
  if (EMULATED !== undefined) {
    // Emulated, the first calls are compiled slowly (tens of ms each), which
    // would spread the five deadlines below apart: compile them first.
    const warm = new TimerQueue();
    for (let i = 0; i < 200; i++) warm.schedule(i % 3, 0, () => {});
    warm.runDue(performance.now() + 10);
  }
  const q = new TimerQueue();
  const fired: string[] = [];
  const base = performance.now();
  q.schedule(30, 0, () => fired.push("30"));
  const first = q.schedule(10, 0, () => fired.push("10a"));
  q.schedule(20, 0, () => fired.push("20"));
  q.schedule(10, 0, () => fired.push("10b"));
  const zero = q.schedule(0, 0, () => fired.push("0"));
  assertEquals(q.size, 5);
  assertEquals(q.nextTimeout(zero.deadline - 0.5), 1, "rounded up to whole ms");
  assertEquals(q.nextTimeout(zero.deadline), 0, "due now");
  assert(first.deadline < zero.deadline + 10);
  assertEquals(q.runDue(base + 15), 3);
  assertEquals(fired, ["0", "10a", "10b"]);
  assertEquals(q.runDue(base + 100), 2);
  assertEquals(fired, ["0", "10a", "10b", "20", "30"]);
  assertEquals(q.size, 0);
  assertEquals(q.nextTimeout(base), -1);
});

Deno.test("TimerQueue: equal deadlines keep creation order (many timers)", () => {
  // Deadlines are creation time + delay, so timers made one after the other
  // never share one. Repeating timers do: a late runDue reschedules each to
  // max(deadline + interval, now), which is `now` for all of them. Their
  // second firing, all at that same deadline, must follow creation order.
  const q = new TimerQueue();
  const fired: number[] = [];
  const timers = [];
  for (let i = 0; i < 100; i++) {
    timers.push(q.schedule(i % 7, 1, () => fired.push(i)));
  }
  const now = performance.now() + 1000;
  assertEquals(q.runDue(now), 200);
  const second = fired.slice(100);
  assert(timers.every((t) => t.deadline === now + 1), "the second round shared one deadline");
  assertEquals(second, Array.from({ length: 100 }, (_, i) => i), "equal deadlines out of order");
  for (const t of timers) t.cancel();
  assertEquals(q.size, 0);
});

Deno.test("TimerQueue: cancel, repeat, and errors", () => {
  const q = new TimerQueue();
  let a = 0, r = 0;
  const ta = q.schedule(5, 0, () => a++);
  const tr = q.schedule(10, 10, () => r++);
  const base = tr.deadline - 10;
  ta.cancel();
  ta.cancel(); // idempotent
  assert(ta.cancelled);
  assertEquals(q.size, 1);
  assertEquals(q.nextTimeout(base), 10, "a cancelled timer does not count");
  q.runDue(base + 10);
  q.runDue(base + 20);
  q.runDue(base + 30);
  assertEquals([a, r], [0, 3]);
  assertEquals(tr.interval, 10);
  tr.cancel();
  assertEquals(q.size, 0);
  assertEquals(q.runDue(base + 1000), 0);

  // A fired one-shot timer counts as cancelled; cancelling it again is harmless.
  const once = q.schedule(0, 0, () => {});
  q.runDue(performance.now() + 1);
  assert(once.cancelled);
  once.cancel();
  assertEquals(q.size, 0);

  // A throwing callback does not stop the others.
  const errors: unknown[] = [];
  let after = 0;
  q.schedule(0, 0, () => {
    throw new Error("first");
  });
  q.schedule(0, 0, () => after++);
  q.runDue(performance.now() + 1, (e) => errors.push(e));
  assertEquals([errors.length, after], [1, 1]);
  q.schedule(0, 0, () => {
    throw new Error("rethrown");
  });
  q.schedule(0, 0, () => after++);
  assertThrows(() => q.runDue(performance.now() + 1), Error, "rethrown");
  assertEquals(after, 2, "the rest ran before the error was rethrown");

  assertThrows(() => q.schedule(-1, 0, () => {}), RangeError, "Cannot schedule timer");
  assertThrows(() => q.schedule(NaN, 0, () => {}), RangeError);
  assertThrows(() => q.schedule(1, Infinity, () => {}), RangeError);
});

Deno.test("reactor timers: one-shot, repeating, cancel and ordering", () =>
  withFdCheck(async () => {
    await using reactor = new Reactor();
    const order: string[] = [];
    reactor.setTimeout(() => order.push("30"), 30);
    reactor.setTimeout(() => order.push("10"), 10);
    reactor.setTimeout(() => order.push("20"), 20);
    const cancelled = reactor.setTimeout(() => order.push("cancelled"), 15);
    cancelled.cancel();
    let repeats = 0;
    const interval = reactor.setInterval(() => {
      if (++repeats === 4) interval.cancel();
    }, 8);
    reactor.setTimeout(() => reactor.stop(), scaled(60));
    const t0 = performance.now();
    await runFor(reactor, scaled(2000));
    const elapsed = performance.now() - t0;
    assertEquals(order, ["10", "20", "30"]);
    assertEquals(repeats, 4, "the interval ran until it cancelled itself");
    assertGreaterOrEqual(elapsed, 59);
    assertEquals(reactor.stats.timersFired, 3 + 4 + 1);
    assertThrows(() => reactor.setInterval(() => {}, 0), RangeError, "Cannot schedule interval");
  }));

Deno.test("reactor timers fire while it is parked, including timers added while parked", () =>
  withFdCheck(async () => {
    await using reactor = new Reactor();
    const done = reactor.run(); // no fds, no timers: parked with no timeout
    await sleep(10);
    const parksBefore = reactor.stats.parks;
    const t0 = performance.now();
    let firedAt = 0;
    reactor.setTimeout(() => {
      firedAt = performance.now();
    }, 25); // must wake the parked wait to shorten its timeout
    await waitFor(() => firedAt > 0, scaled(2000), "the reactor timer");
    assertGreaterOrEqual(firedAt - t0, 24);
    assert(firedAt - t0 < scaled(1000), `fired late: ${firedAt - t0} ms`);
    assert(reactor.stats.parks > parksBefore, "the reactor was parked");

    // A repeating timer keeps firing while nothing else happens.
    let ticks = 0;
    const iv = reactor.setInterval(() => ticks++, 5);
    await waitFor(() => ticks >= 5, scaled(2000), "five interval ticks");
    iv.cancel();
    reactor.stop();
    await done;
  }));

Deno.test("a throwing reactor timer is logged without onError (the loop goes on), and reported with it", () =>
  withFdCheck(async () => {
    {
      await using reactor = new Reactor();
      reactor.setTimeout(() => {
        throw new Error("timer boom");
      }, 1);
      let fired = false;
      reactor.setTimeout(() => {
        fired = true;
        reactor.stop();
      }, 20);
      const logged: unknown[][] = [];
      const original = console.error;
      console.error = (...args: unknown[]) => logged.push(args);
      try {
        await runFor(reactor, 2000);
      } finally {
        console.error = original;
      }
      assert(fired, "the loop stopped at the throwing timer");
      assertEquals(logged.length, 1);
      assertEquals((logged[0]![1] as Error).message, "timer boom");
    }
    {
      const errors: unknown[] = [];
      await using reactor = new Reactor({ onError: (e) => errors.push(e) });
      reactor.setTimeout(() => {
        throw new Error("reported");
      }, 1);
      reactor.setTimeout(() => reactor.stop(), 10);
      await runFor(reactor, 2000);
      assertEquals(errors.length, 1);
      assertEquals((errors[0] as Error).message, "reported");
    }
  }));
