/**
 * Multi-core `serve({ workers: N })`, as `deno serve --parallel`.
 *
 * A handler is a closure: it cannot be sent to another thread. So the main
 * thread reserves the port (a bound, never listening `SO_REUSEPORT`
 * socket: it gets no connections) and starts N Deno Workers that each run
 * the **main module** again (`Deno.mainModule`); the `serve()` call in each
 * Worker sees that it runs in a serve Worker ({@linkcode isServeWorker}),
 * binds the same port with `SO_REUSEPORT` on its own reactor, and serves
 * there. The kernel spreads new connections over the N listeners.
 * `onListen` runs in each Worker once it listens; the main thread's
 * `serve()` returns at once with the reserved address.
 *
 * Keep the main module's top level to setting up the server: it runs once
 * per thread. Only the first `serve()` call of a Worker becomes its server.
 * The Workers start one after the other. A Worker that dies of an uncaught
 * error (a rejected promise nobody handles included) has its listener
 * closed at once by the main thread, so the kernel stops handing it
 * connections, and is started again (after 100 ms, doubling up to 5 s while
 * it keeps dying; reset after 30 s up); its error goes to `console.error`.
 * `shutdown()` on the main thread drains every Worker, and `finished`
 * resolves when all have stopped. A TCP port is needed (not `path`), and
 * socket activation is not combined with `workers`.
 *
 * @example
 * ```ts
 * // main.ts: run with `deno run -A main.ts`
 * import { serve } from "@ffinet/ffinet/http";
 * function main(): void {
 *   const workers = navigator.hardwareConcurrency;
 *   serve({ port: 8080, workers, handler: () => new Response("hi") });
 * }
 * ```
 *
 * @module
 */

/**
 * The Worker name prefix marking a serve worker: `ffinet-serve-worker-<i>:<port>`.
 *
 * @example
 * ```ts
 * import { WORKER_NAME_PREFIX } from "./workers.ts";
 * console.log(`${WORKER_NAME_PREFIX}0:8000`);
 * ```
 */
export const WORKER_NAME_PREFIX = "ffinet-serve-worker-";

/**
 * The type of the message a Worker of `serve({ workers })` posts to the
 * main thread for a WebSocket `publish`; the main thread relays it to the
 * other Workers (postMessage queues never drop, unlike a BroadcastChannel's).
 *
 * @example
 * ```ts
 * import { WEBSOCKET_PUBLISH } from "./workers.ts";
 * console.log({ type: WEBSOCKET_PUBLISH, topic: "room", data: "hi" });
 * ```
 */
export const WEBSOCKET_PUBLISH = "ffinet.websocket.publish";

// deno-lint-ignore no-explicit-any
const scope = globalThis as any;

/**
 * Whether this code runs in a Worker started by `serve({ workers })`.
 *
 * @example
 * ```ts
 * import { isServeWorker } from "@ffinet/ffinet/http";
 * if (!isServeWorker()) console.log("main thread");
 * ```
 */
export function isServeWorker(): boolean {
  return typeof scope.WorkerGlobalScope !== "undefined" && typeof scope.name === "string" &&
    (scope.name as string).startsWith(WORKER_NAME_PREFIX);
}
