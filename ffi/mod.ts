/**
 * The ffi layer: libc through one `Deno.dlopen`, errno and typed errors,
 * struct codecs (`sockaddr_*`, `epoll_event`, `msghdr`/`cmsghdr`), raw
 * syscalls (the kernel's convention: `>= 0` or `-errno`, exported as `sys`),
 * the typed `Socket`, and process, fd and syslog calls.
 *
 * @example
 * ```ts ignore
 * import { Socket, sys } from "./mod.ts";
 * using s = Socket.create("inet", "stream");
 * const n = sys.read(s.fd, new Uint8Array(16)); // -11 (-EAGAIN): nothing to read yet
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
export * from "./msghdr.ts";
export * from "./interfaces.ts";
export * from "./fd.ts";
export * from "./process.ts";
export * from "./syslog.ts";
export * from "./writev.ts";
export * as sys from "./syscalls.ts";
export { type Libc, libc, symbols } from "./libc.ts";
