/**
 * The ffi layer: libc through `Deno.dlopen`, errno, struct codecs, raw
 * syscalls and the typed `Socket`.
 *
 * @example
 * ```ts ignore
 * import { Socket } from "./mod.ts";
 * using s = Socket.create("inet", "stream");
 * ```
 *
 * @module
 */
export * from "./errno.ts";
export * from "./constants.ts";
export * from "./inet.ts";
export * from "./sockaddr.ts";
export * from "./epoll_event.ts";
export * from "./sockopt.ts";
export * from "./socket.ts";
