/**
 * The restart policy's defaults and its reset after a stable uptime: a
 * worker up 30 s (the default `stableAfterMs`) starts the delay again from
 * the first one and ends a crash loop; one up a millisecond less does not.
 * The supervisor builds its policy from its options with these defaults.
 *
 * @module
 */
import { assertEquals, assertThrows } from "@std/assert";
import { Backoff, RestartPolicy } from "../../../daemon/supervisor/backoff.ts";

Deno.test("backoff: the documented defaults (100 ms, x1.5, 15 s cap, stable after 30 s, 5 crashes in 60 s)", () => {
  const p = new RestartPolicy({});
  assertEquals(
    [p.initialDelayMs, p.factor, p.maxDelayMs, p.stableAfterMs, p.loopCount, p.loopWindowMs],
    [100, 1.5, 15_000, 30_000, 5, 60_000],
  );
  assertEquals(p.maxRestarts, Infinity);
});

Deno.test("backoff: by default a worker up 30 s resets the delay and ends the crash loop; 29.999 s does not", () => {
  const b = new Backoff(new RestartPolicy({}));
  const t0 = 1_000_000;
  const delays = [0, 1, 2, 3, 4].map((i) => b.crashed(t0 + i, 50).delayMs);
  assertEquals(delays, [100, 150, 225, 337.5, 506.25]);
  assertEquals(b.crashLooping, true, "5 crashes within 60 s");
  // Up one millisecond short of the default: the delay keeps growing.
  assertEquals(b.crashed(t0 + 10, 29_999).delayMs, 759.375);
  assertEquals(b.crashLooping, true);
  // Up exactly the default: the first delay again, the loop is over.
  const d = b.crashed(t0 + 20, 30_000);
  assertEquals(d.delayMs, 100);
  assertEquals(d.crashesInWindow, 1, "the crash window starts over");
  assertEquals(b.crashLooping, false);
  assertEquals(b.crashed(t0 + 30, 50).delayMs, 150);
});

Deno.test("backoff: an explicit stableAfterMs replaces the default; a bad one names the option", () => {
  const b = new Backoff(new RestartPolicy({ stableAfterMs: 500 }));
  b.crashed(0, 10);
  assertEquals(b.crashed(1, 10).delayMs, 150);
  assertEquals(b.crashed(2, 500).delayMs, 100);
  assertThrows(
    () => new RestartPolicy({ stableAfterMs: -1 }),
    RangeError,
    "Cannot create supervisor: stableAfterMs must be a number >= 0",
  );
});
