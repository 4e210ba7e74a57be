/**
 * Helpers shared by the example programs: waiting for a stop signal.
 *
 * @module
 */

/**
 * Resolve at the first SIGINT or SIGTERM; both listeners are removed then.
 *
 * @example
 * ```ts ignore
 * await stopSignal();
 * ```
 */
export function stopSignal(): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = () => {
      Deno.removeSignalListener("SIGINT", stop);
      Deno.removeSignalListener("SIGTERM", stop);
      resolve();
    };
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
  });
}
