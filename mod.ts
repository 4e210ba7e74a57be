/**
 * ffinet: Linux networking for Deno through FFI — raw socket syscalls, an
 * epoll reactor you control, and servers that run as real Unix daemons.
 *
 * @example An echo server
 * ```ts ignore
 * import { Listener, Reactor } from "./mod.ts";
 * const reactor = new Reactor();
 * Listener.listen(reactor, { host: "127.0.0.1", port: 9000 }, (conn) => {
 *   conn.onData = (data) => conn.write(data);
 * });
 * await reactor.run();
 * ```
 *
 * @module
 */
export * from "./ffi/mod.ts";
export * from "./reactor/mod.ts";
