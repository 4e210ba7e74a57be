/**
 * One slow case beside the others: for a test file whose longest case only
 * waits (a timeout that must pass, a request that must outlive one), the
 * other cases run meanwhile, one after the other.
 *
 * @module
 */
import { assert } from "@std/assert";

/** A named case: a step of the test that runs it. */
export interface Case {
  name: string;
  fn: () => Promise<void>;
}

/**
 * Runs `long` as one step of `t` and, at the same time, each case of
 * `inTurn` as a step, one after the other. Two steps run at once, so the
 * steps leave the sanitizers to `t`, which checks that all of them
 * finished their ops and closed their resources. Fails if any step failed.
 */
export async function alongside(t: Deno.TestContext, long: Case, inTurn: Case[]): Promise<void> {
  const step = (c: Case) =>
    t.step({
      name: c.name,
      fn: c.fn,
      sanitizeOps: false,
      sanitizeResources: false,
      sanitizeExit: false,
    });
  const results = await Promise.all([
    step(long),
    (async () => {
      const ok: boolean[] = [];
      for (const c of inTurn) ok.push(await step(c));
      return ok.every(Boolean);
    })(),
  ]);
  assert(results.every(Boolean), "a step failed");
}
