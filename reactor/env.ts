/**
 * Reading the environment without needing `--allow-env`: the variables the
 * library looks at (`LISTEN_FDS`, `NOTIFY_SOCKET`, `WATCHDOG_USEC`,
 * `FFINET_WORKER_ID`, …) read as unset when this process may not read
 * them, so code that runs under `Deno.serve`'s permissions runs here too and
 * the library never prompts.
 *
 * @module
 */

function granted(name: string): boolean {
  return Deno.permissions.querySync({ name: "env", variable: name }).state === "granted";
}

/**
 * The value of `name`, or `undefined` when it is unset or not readable.
 *
 * @example
 * ```ts
 * import { envVar } from "./env.ts";
 * const socket = envVar("NOTIFY_SOCKET"); // undefined without --allow-env
 * ```
 */
export function envVar(name: string): string | undefined {
  return granted(name) ? Deno.env.get(name) : undefined;
}

/**
 * Remove `name` from the environment when this process may write it.
 *
 * @example
 * ```ts
 * import { envDelete } from "./env.ts";
 * envDelete("LISTEN_FDS");
 * ```
 */
export function envDelete(name: string): void {
  if (granted(name)) Deno.env.delete(name);
}
