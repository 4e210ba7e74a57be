/**
 * The ffi layer: libc through one `Deno.dlopen`, errno and typed errors,
 * struct codecs (`sockaddr_*`, `epoll_event`, `msghdr`/`cmsghdr`), raw
 * syscalls (the kernel's convention: `>= 0` or `-errno`, exported as `sys`),
 * the typed `Socket`, and process, fd and syslog calls.
 *
 * **Raw access can corrupt memory.** This entry point is for code that needs
 * the system calls themselves; most programs want the reactor instead.
 *
 * - `libc` (and `symbols`) are the bare `Deno.dlopen` symbols: nothing is
 *   checked, and a wrong length, pointer or out-array overwrites the heap.
 *   Use them only when no wrapper fits, and check every length yourself.
 * - `sys.*` checks every length, offset and count against the view it is
 *   given and throws a `RangeError` naming the call before the system call.
 *   The calls that take structs of raw addresses (`readv`, `writev`,
 *   `recvmsg`, `sendmsg`) accept only the `IovecArray` / `Msghdr` codecs,
 *   which encode the addresses from their views at each call and hand out
 *   copies of the encoded bytes.
 * - `epollWaitAsync` lets a pool thread write into `events` until its
 *   promise settles: detaching, transferring or shrinking that buffer
 *   meanwhile is a use-after-free no check can catch.
 *
 * @example Raw reads: -errno, and a RangeError for a length over the buffer
 * ```ts
 * import { EAGAIN, Socket, sys } from "./mod.ts";
 * const [a, b] = Socket.pair();
 * const buf = new Uint8Array(4);
 * console.log(sys.read(a.fd, buf) === -EAGAIN); // true: nothing to read yet
 * try {
 *   sys.read(a.fd, buf, 16);
 * } catch (e) {
 *   console.log((e as RangeError).message); // Cannot read: length 16 exceeds the buffer's 4 bytes
 * }
 * a.close();
 * b.close();
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
export * from "./fd_passing.ts";
export * from "./interfaces.ts";
export * from "./fd.ts";
export * from "./process.ts";
export * from "./syslog.ts";
export * from "./writev.ts";
export * as sys from "./syscalls.ts";
export { type Libc, libc, symbols } from "./libc.ts";
