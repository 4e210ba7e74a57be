/**
 * Test helpers shared by every test file: fd leak checks and small utilities.
 *
 * Deno's resource sanitizer cannot see raw fds, so every test that opens
 * any wraps its body in {@linkcode withFdCheck} (or calls {@linkcode countFds}
 * before and after) to prove it leaves none behind.
 *
 * @module
 */
import { assertEquals, assertInstanceOf } from "@std/assert";
import v8 from "node:v8";
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

/** What {@linkcode readText} reads: a Deno connection or anything with its `read`. */
export interface TextSource {
  /** Read into `p`: the byte count, or `null` at EOF. */
  read(p: Uint8Array): Promise<number | null>;
}

/**
 * Read `conn` as text (each chunk decoded on its own) until `until(text)`
 * holds (checked before each read) or EOF; `size` is the read buffer's size.
 *
 * @example
 * ```ts
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port: 80 });
 * const head = await readText(conn, { until: (t) => t.includes("\r\n\r\n") });
 * ```
 */
export async function readText(
  conn: TextSource,
  { until = () => false, size = 4096 }: { until?: (text: string) => boolean; size?: number } = {},
): Promise<string> {
  const decoder = new TextDecoder();
  const buf = new Uint8Array(size);
  let text = "";
  while (!until(text)) {
    const n = await conn.read(buf);
    if (n === null) break;
    text += decoder.decode(buf.subarray(0, n));
  }
  return text;
}

/**
 * Assert that a connection to 127.0.0.1:`port` is refused (nothing listens);
 * when one is accepted, fail with `message`.
 *
 * @example
 * ```ts
 * await assertConnectRefused(1, "something listens on port 1");
 * ```
 */
export async function assertConnectRefused(port: number, message: string): Promise<void> {
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    c.close();
  } catch (e) {
    assertInstanceOf(e, Deno.errors.ConnectionRefused);
    return;
  }
  throw new Error(message);
}

/** How a process run by {@linkcode runBounded} ended. */
export interface ProcessOutput {
  /** Exit code. */
  code: number;
  /** Its stdout. */
  stdout: string;
  /** Its stderr. */
  stderr: string;
}

/**
 * Run `cmd` to completion with `options` (stdout and stderr collected as
 * text); SIGKILL it after `timeoutMs`. Its stdin is closed, or, with
 * `stdin`, given `stdin.text` and held open `stdin.holdMs` more (so that a
 * server's answer can arrive before the client sees its input end), or
 * given `stdin.lines` one every `gapMs`, the first after `startMs`.
 *
 * @example
 * ```ts
 * const out = await runBounded("true", { args: [] }, 5000);
 * ```
 */
export async function runBounded(
  cmd: string,
  options: Deno.CommandOptions,
  timeoutMs: number,
  stdin?: { text: string; holdMs: number } | { lines: string[]; startMs: number; gapMs: number },
): Promise<ProcessOutput> {
  const child = new Deno.Command(cmd, {
    ...options,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
  }, timeoutMs);
  try {
    if (stdin !== undefined) {
      const w = child.stdin.getWriter();
      const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
      const write = (text: string) => w.write(new TextEncoder().encode(text)).catch(() => {});
      if ("lines" in stdin) {
        await pause(stdin.startMs);
        for (const line of stdin.lines) {
          await write(line + "\n");
          await pause(stdin.gapMs);
        }
      } else {
        if (stdin.text !== "") await write(stdin.text);
        await pause(stdin.holdMs);
      }
      await w.close().catch(() => {});
    }
    const out = await child.output();
    const decoder = new TextDecoder();
    return {
      code: out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Whether `path` names anything, a dangling symlink included (`lstat`).
 *
 * @example
 * ```ts
 * exists("/proc/self"); // true
 * ```
 */
export function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * mulberry32: a small, fast, seedable PRNG; the same seed gives the same
 * numbers in [0, 1), so a failing fuzz case can be replayed.
 *
 * @example
 * ```ts
 * const rand = prng(42);
 * const byte = Math.floor(rand() * 256);
 * ```
 */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * V8's count of bytes this isolate allocated so far (`total_allocated_bytes`,
 * newer than the typings of `node:v8`). Reading it allocates by itself, some
 * 200 KB per read: measure many operations between two reads.
 */
export function allocatedBytes(): number {
  const n = (v8.getHeapStatistics() as { total_allocated_bytes?: number }).total_allocated_bytes;
  if (typeof n !== "number") throw new Error("this V8 does not report total_allocated_bytes");
  return n;
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

/** A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** The bytes of `parts`, one after another, in a new array. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}
