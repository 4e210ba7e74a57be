/**
 * Test helpers shared by every test file: fd leak checks and small utilities.
 *
 * Deno's resource sanitizer cannot see raw fds, so every test that opens
 * any wraps its body in {@linkcode withFdCheck} (or calls {@linkcode countFds}
 * before and after) to prove it leaves none behind.
 *
 * @module
 */
import { assertEquals } from "@std/assert";
import { listOpenFds } from "../ffi/fd.ts";

/**
 * The number of open fds of this process, from `/proc/self/fd`.
 *
 * @example
 * ```ts
 * const before = countFds();
 * ```
 */
export function countFds(): number {
  return listOpenFds().size;
}

/** The open fds of this process, with what they point to. */
export function listFds(): Map<number, string> {
  return listOpenFds();
}

/**
 * Run `fn` and assert that it leaves exactly as many fds open as before,
 * naming the leaked ones when it does not.
 *
 * @example
 * ```ts
 * Deno.test("no leak", () => withFdCheck(() => {}));
 * ```
 */
export async function withFdCheck(fn: () => unknown | Promise<unknown>): Promise<void> {
  const before = listFds();
  await fn();
  const after = listFds();
  const leaked = [...after].filter(([fd, what]) => before.get(fd) !== what);
  assertEquals(
    leaked.map(([fd, what]) => `${fd} -> ${what}`),
    [],
    "fds leaked by the test",
  );
}

/** Resolve after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Poll `cond` every 10 ms until true or `timeoutMs` passes; throws on timeout. */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
  what = "condition",
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}
