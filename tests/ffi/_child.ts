/**
 * Child Deno processes for the ffi tests that must not run a call in the
 * test runner itself (it would drop privileges, or write to its stderr).
 */
import { assert } from "@std/assert";
import { DENO_SPAWN_SKIP, skipped } from "./_emulation.ts";

/**
 * The name and `ignore` of a test that spawns `Deno.execPath()`: ignored,
 * with the printed reason, where that cannot run (see `DENO_SPAWN_SKIP`).
 */
export function spawnsDeno(name: string): { name: string; ignore: boolean } {
  return { name, ignore: skipped(name, DENO_SPAWN_SKIP) };
}

/**
 * Runs `script` with `deno eval --no-config` (`flags` before it), asserts
 * that it exited 0 (its stderr as the message), and returns its output.
 */
export async function evalChild(
  script: string,
  flags: string[] = [],
): Promise<{ stdout: string; stderr: string }> {
  const result = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", ...flags, script],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(result.stderr);
  assert(result.success, stderr);
  return { stdout: new TextDecoder().decode(result.stdout), stderr };
}
