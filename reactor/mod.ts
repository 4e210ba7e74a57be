/**
 * The reactor: epoll instances with epitem-style registrations, timers and a
 * waker, running inside Deno's event loop.
 *
 * @example
 * ```ts ignore
 * import { Interest, Reactor } from "./mod.ts";
 * const reactor = new Reactor();
 * ```
 *
 * @module
 */
export * from "./interest.ts";
export * from "./readiness.ts";
export * from "./registration.ts";
export * from "./poller.ts";
export * from "./timer_queue.ts";
export * from "./reactor.ts";
export * from "./connection.ts";
export * from "./listener.ts";
export * from "./connect.ts";
export * from "./datagram.ts";
