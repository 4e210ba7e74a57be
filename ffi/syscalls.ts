/**
 * Raw system call wrappers with the kernel's own convention: a result `>= 0`
 * on success, `-errno` on failure (e.g. `-EAGAIN`). They never allocate on
 * failure, so a hot loop can "drain until EAGAIN" cheaply:
 *
 * ```ts
 * import { close, read } from "./syscalls.ts";
 * import { EAGAIN, ErrnoError } from "@ffinet/ffinet/ffi";
 * import { pipe } from "@ffinet/ffinet/ffi";
 * const [fd, w] = pipe({ nonblock: true });
 * const buf = new Uint8Array(64);
 * for (;;) {
 *   const n = read(fd, buf);
 *   if (n > 0) continue; // consume buf.subarray(0, n)
 *   if (n === -EAGAIN) break; // drained: wait for the next readiness
 *   if (n === 0) break; // EOF
 *   throw new ErrnoError("read", -n);
 * }
 * close(fd);
 * close(w);
 * ```
 *
 * Every call that takes memory checks its lengths, offsets and counts
 * against the view it is given before the call and throws a `RangeError`
 * naming the call ("Cannot read: length 16 exceeds the buffer's 4 bytes");
 * fds must be `int`s. A view's size is the engine's (read through the
 * intrinsic `TypedArray` / `DataView` getters, never a subclass's or a
 * getter's), nothing a caller wrote runs between a check and its call, and
 * anything but a real view is a `TypeError`. A length cell the kernel reads
 * and writes back (`addrLen`, `valueLen`) is checked and copied into a
 * private cell, then copied back: a cell in shared memory cannot change
 * between the check and the kernel's read. `fcntl` takes only the commands
 * whose argument is an integer. Calls that take structs of raw addresses (`readv`,
 * `writev`, `recvmsg`, `sendmsg`) take the `IovecArray` / `Msghdr` codecs
 * from `msghdr.ts`, never hand-encoded bytes (a `TypeError` otherwise): the
 * codecs encode the addresses from checked views at each call. These
 * argument checks are the only throws.
 *
 * `size_t` arguments are passed as a BigInt from a small cache of recent
 * lengths. Measured on Deno 2.9.6 (x86_64, `bench/usize_bench.ts`,
 * medians of 3 runs of 10M calls): a `number` for a 64-bit parameter leaves
 * V8's fast call and costs 5-9x the FFI overhead of a cached BigInt, without
 * allocating; a fresh `BigInt(n)` per call costs about 2x and allocates (one
 * scavenge per ~44,000 calls). The cache hands out the same BigInt for a
 * repeated length (the reactor reads with one buffer size), so the common
 * call is the fastest of the three and allocates nothing.
 *
 * errno is read right after the call. EINTR is retried (by
 * {@linkcode interrupted}) for every call where restarting is correct;
 * `connect` and `close` are not retried (a restarted connect reports
 * EALREADY; Linux releases the fd even when close reports EINTR), nor is
 * `epoll_wait` (the caller recomputes its timeout). Use {@linkcode check}
 * from `errno.ts` to turn a result into a thrown {@linkcode ErrnoError}.
 *
 * @module
 */
import { libc } from "./libc.ts";
import { errnoCell } from "./errno.ts";
import { IOCTL } from "./constants.ts";
import { IovecArray, Msghdr } from "./msghdr.ts";
import { EPOLL_EVENT } from "./epoll_event.ts";
import {
  byteLengthOf,
  checkElements,
  checkFd,
  checkInteger,
  checkLength,
  copyInto,
  elementsOf,
  INT32_MAX,
  interrupted,
  lengthCell,
  result,
} from "./_view.ts";

/** `sizeof(struct itimerspec)`: four 64-bit fields. */
const ITIMERSPEC_LONGS = 4;

/** Slots of the direct-mapped cache of `size_t` BigInts (a power of two). */
const SIZE_CACHE_SLOTS = 256;
const sizeCacheKeys = new Float64Array(SIZE_CACHE_SLOTS).fill(-1);
const sizeCacheValues: bigint[] = new Array<bigint>(SIZE_CACHE_SLOTS).fill(0n);

/** `n` (already checked: an integer in 0..2^32-1) as a `size_t` argument. */
function sizeArg(n: number): bigint {
  const slot = n & (SIZE_CACHE_SLOTS - 1);
  if (sizeCacheKeys[slot] === n) return sizeCacheValues[slot]!;
  const big = BigInt(n);
  sizeCacheKeys[slot] = n;
  sizeCacheValues[slot] = big;
  return big;
}

export { interrupted, result };

/**
 * `socket(2)`: a new socket fd, or -errno.
 *
 * @example
 * ```ts
 * import { close, socket } from "./syscalls.ts";
 * import { AF, SOCK } from "@ffinet/ffinet/ffi";
 * const fd = socket(AF.INET, SOCK.STREAM | SOCK.NONBLOCK | SOCK.CLOEXEC, 0);
 * if (fd >= 0) close(fd);
 * ```
 */
export function socket(domain: number, type: number, protocol: number): number {
  return result(libc.socket(domain, type, protocol));
}

/**
 * `socketpair(2)`: writes two fds into `out` (which must hold 2); returns 0
 * or -errno.
 *
 * @example
 * ```ts
 * import { close, socketpair } from "./syscalls.ts";
 * import { AF, SOCK } from "@ffinet/ffinet/ffi";
 * const fds = new Int32Array(2);
 * if (socketpair(AF.UNIX, SOCK.STREAM | SOCK.CLOEXEC, 0, fds) === 0) {
 *   close(fds[0]!);
 *   close(fds[1]!);
 * }
 * ```
 */
export function socketpair(
  domain: number,
  type: number,
  protocol: number,
  out: Int32Array,
): number {
  checkElements("socketpair", "out", out, 2, 4);
  return result(libc.socketpair(domain, type, protocol, out));
}

/**
 * `bind(2)` with an encoded address (see `encodeSockaddr`); 0 or -errno.
 *
 * @example
 * ```ts
 * import { bind, close, socket } from "./syscalls.ts";
 * import { AF, SOCK } from "@ffinet/ffinet/ffi";
 * import { encodeSockaddr } from "@ffinet/ffinet/ffi";
 * const fd = socket(AF.INET, SOCK.STREAM | SOCK.CLOEXEC, 0);
 * bind(fd, encodeSockaddr({ family: "inet", address: "127.0.0.1", port: 0 }));
 * close(fd);
 * ```
 */
export function bind(fd: number, sockaddr: Uint8Array): number {
  checkFd("bind", fd);
  return result(libc.bind(fd, sockaddr, byteLengthOf("bind", "sockaddr", sockaddr)));
}

/**
 * `listen(2)`; 0 or -errno. `backlog` must be an integer from 0 to
 * `INT_MAX` (the kernel caps it at `net.core.somaxconn`).
 *
 * @example
 * ```ts
 * import { bind, close, listen, socket } from "./syscalls.ts";
 * import { AF, SOCK } from "@ffinet/ffinet/ffi";
 * import { encodeSockaddr } from "@ffinet/ffinet/ffi";
 * const fd = socket(AF.INET, SOCK.STREAM | SOCK.CLOEXEC, 0);
 * bind(fd, encodeSockaddr({ family: "inet", address: "127.0.0.1", port: 0 }));
 * listen(fd, 511);
 * close(fd);
 * ```
 */
export function listen(fd: number, backlog: number): number {
  checkFd("listen", fd);
  checkInteger("listen", "backlog", backlog, 0, INT32_MAX);
  return result(libc.listen(fd, backlog));
}

/**
 * `accept4(2)`: the new fd, or -errno (`-EAGAIN` when the queue is empty).
 * Pass `addr` and `addrLen` (one u32, set to at most `addr`'s size before
 * the call) to learn the peer's address, or `null` for both.
 *
 * @example
 * ```ts
 * import { accept4, close, socket } from "./syscalls.ts";
 * import { AF, SOCK } from "@ffinet/ffinet/ffi";
 * const fd = socket(AF.INET, SOCK.STREAM | SOCK.CLOEXEC, 0);
 * accept4(fd, null, null, SOCK.NONBLOCK | SOCK.CLOEXEC); // -EINVAL: not listening
 * close(fd);
 * ```
 */
export function accept4(
  fd: number,
  addr: Uint8Array | null,
  addrLen: Uint32Array | null,
  flags: number,
): number {
  checkFd("accept4", fd);
  const cell = checkAddressOut("accept4", addr, addrLen);
  let r: number;
  do r = libc.accept4(fd, addr, cell, flags); while (interrupted(r));
  return addressOutResult(r, addrLen);
}

/**
 * Check an `(addr, addrLen)` out pair: both or neither, `addrLen[0] <=
 * addr`'s size. Returns the private length cell holding the checked value
 * (or `null`): the kernel reads and writes that copy, never the caller's
 * cell, which another thread could change after the check.
 */
function checkAddressOut(
  call: string,
  addr: Uint8Array | null,
  addrLen: Uint32Array | null,
): Uint32Array | null {
  if (addr === null && addrLen === null) return null;
  if (addr === null || addrLen === null) {
    throw new RangeError(`Cannot ${call}: pass both addr and addrLen, or neither`);
  }
  return checkLengthCell(call, "address length", addrLen, byteLengthOf(call, "addr", addr));
}

/**
 * Check a caller's one-u32 length cell against `size` and copy its value
 * into the private {@linkcode lengthCell}, which is what the kernel gets.
 */
function checkLengthCell(
  call: string,
  what: string,
  cell: Uint32Array,
  size: number,
): Uint32Array {
  if (elementsOf(call, `${what} cell`, cell) < 1) {
    throw new RangeError(`Cannot ${call}: the ${what} cell holds no element, it needs 1`);
  }
  const len = cell[0]!;
  checkLength(call, what, len, size);
  lengthCell[0] = len;
  return lengthCell;
}

/** After a call that wrote a length: copy it back to the caller's cell; the result. */
function addressOutResult(r: number, addrLen: Uint32Array | null): number {
  const out = result(r);
  if (addrLen !== null && out >= 0) addrLen[0] = lengthCell[0]!;
  return out;
}

/**
 * `connect(2)`; 0 or -errno (`-EINPROGRESS` for a non-blocking socket).
 * Not retried on EINTR.
 *
 * @example
 * ```ts
 * import { close, connect, socket } from "./syscalls.ts";
 * import { AF, SOCK } from "@ffinet/ffinet/ffi";
 * import { encodeSockaddr } from "@ffinet/ffinet/ffi";
 * const fd = socket(AF.INET, SOCK.STREAM | SOCK.NONBLOCK | SOCK.CLOEXEC, 0);
 * connect(fd, encodeSockaddr({ family: "inet", address: "127.0.0.1", port: 9 }));
 * close(fd);
 * ```
 */
export function connect(fd: number, sockaddr: Uint8Array): number {
  checkFd("connect", fd);
  return result(libc.connect(fd, sockaddr, byteLengthOf("connect", "sockaddr", sockaddr)));
}

/**
 * `shutdown(2)`; 0 or -errno.
 *
 * @example
 * ```ts
 * import { close, shutdown, socketpair } from "./syscalls.ts";
 * import { AF, SHUT, SOCK } from "@ffinet/ffinet/ffi";
 * const fds = new Int32Array(2);
 * socketpair(AF.UNIX, SOCK.STREAM | SOCK.CLOEXEC, 0, fds);
 * shutdown(fds[0]!, SHUT.WR);
 * close(fds[0]!);
 * close(fds[1]!);
 * ```
 */
export function shutdown(fd: number, how: number): number {
  checkFd("shutdown", fd);
  return result(libc.shutdown(fd, how));
}

/**
 * `close(2)`; 0 or -errno. Never retried: on Linux the fd is released even
 * when close reports EINTR.
 *
 * @example
 * ```ts
 * import { sys } from "@ffinet/ffinet/ffi";
 * sys.close(-1); // -9 (-EBADF)
 * ```
 */
export function close(fd: number): number {
  checkFd("close", fd);
  return result(libc.close(fd));
}

/**
 * `read(2)` into `buf` (up to `len` bytes, default all of it): the count,
 * 0 at EOF, or -errno.
 *
 * @example
 * ```ts
 * import { close, read, write } from "./syscalls.ts";
 * import { pipe } from "@ffinet/ffinet/ffi";
 * const [r, w] = pipe();
 * write(w, new Uint8Array([1, 2, 3]));
 * const n = read(r, new Uint8Array(16)); // 3
 * close(r);
 * close(w);
 * ```
 */
export function read(fd: number, buf: Uint8Array, len?: number): number {
  checkFd("read", fd);
  const bytes = byteLengthOf("read", "buf", buf);
  if (len === undefined) len = bytes;
  else checkLength("read", "length", len, bytes);
  const size = sizeArg(len);
  let r: number;
  do r = libc.read(fd, buf, size); while (interrupted(r));
  return result(r);
}

/**
 * `write(2)` from `buf` (up to `len` bytes, default all of it): the count
 * or -errno.
 *
 * @example
 * ```ts
 * import { close, write } from "./syscalls.ts";
 * import { pipe } from "@ffinet/ffinet/ffi";
 * const [r, w] = pipe();
 * write(w, new TextEncoder().encode("hi")); // 2
 * close(r);
 * close(w);
 * ```
 */
export function write(fd: number, buf: Uint8Array, len?: number): number {
  checkFd("write", fd);
  const bytes = byteLengthOf("write", "buf", buf);
  if (len === undefined) len = bytes;
  else checkLength("write", "length", len, bytes);
  const size = sizeArg(len);
  let r: number;
  do r = libc.write(fd, buf, size); while (interrupted(r));
  return result(r);
}

// The codecs' own methods (their prototypes are frozen): each checks that
// its receiver was built by its class, and a subclass's overrides are never
// called. Read at the call, as msghdr.ts and this module import each other.
const reflectApply = Reflect.apply;

/**
 * `readv(2)` into the chunks of an {@linkcode IovecArray}: count, 0 at EOF,
 * or -errno. The iovecs are encoded from the chunks' current views at the
 * call, so they never point outside them.
 *
 * @example
 * ```ts
 * import { close, readv, write } from "./syscalls.ts";
 * import { IovecArray } from "@ffinet/ffinet/ffi";
 * import { pipe } from "@ffinet/ffinet/ffi";
 * const [r, w] = pipe();
 * write(w, new Uint8Array([1, 2, 3]));
 * readv(r, new IovecArray([new Uint8Array(2), new Uint8Array(2)])); // 3
 * close(r);
 * close(w);
 * ```
 */
export function readv(fd: number, iov: IovecArray): number {
  return reflectApply(IovecArray.prototype.readv, iov, [fd]);
}

/**
 * `writev(2)` from the chunks of an {@linkcode IovecArray}: count or -errno.
 *
 * @example
 * ```ts
 * import { close, writev } from "./syscalls.ts";
 * import { IovecArray } from "@ffinet/ffinet/ffi";
 * import { pipe } from "@ffinet/ffinet/ffi";
 * const [r, w] = pipe();
 * writev(w, new IovecArray([new Uint8Array([1]), new Uint8Array([2, 3])])); // 3
 * close(r);
 * close(w);
 * ```
 */
export function writev(fd: number, iov: IovecArray): number {
  return reflectApply(IovecArray.prototype.writev, iov, [fd]);
}

/**
 * `recv(2)` into `buf` (up to `len` bytes): count, 0 at EOF, or -errno.
 *
 * @example
 * ```ts
 * import { close, recv, socketpair } from "./syscalls.ts";
 * import { AF, MSG, SOCK } from "@ffinet/ffinet/ffi";
 * const fds = new Int32Array(2);
 * socketpair(AF.UNIX, SOCK.STREAM | SOCK.CLOEXEC, 0, fds);
 * const buf = new Uint8Array(16);
 * recv(fds[0]!, buf, buf.length, MSG.DONTWAIT); // -11 (-EAGAIN)
 * close(fds[0]!);
 * close(fds[1]!);
 * ```
 */
export function recv(fd: number, buf: Uint8Array, len: number, flags: number): number {
  checkFd("recv", fd);
  checkLength("recv", "length", len, byteLengthOf("recv", "buf", buf));
  const size = sizeArg(len);
  let r: number;
  do r = libc.recv(fd, buf, size, flags); while (interrupted(r));
  return result(r);
}

/**
 * `send(2)` from `buf` (up to `len` bytes): count or -errno. Pass
 * `MSG.NOSIGNAL` to get `-EPIPE` instead of a SIGPIPE when the peer is gone.
 *
 * @example
 * ```ts
 * import { close, send, socketpair } from "./syscalls.ts";
 * import { AF, MSG, SOCK } from "@ffinet/ffinet/ffi";
 * const fds = new Int32Array(2);
 * socketpair(AF.UNIX, SOCK.STREAM | SOCK.CLOEXEC, 0, fds);
 * const data = new TextEncoder().encode("hi");
 * send(fds[0]!, data, data.length, MSG.NOSIGNAL); // 2
 * close(fds[0]!);
 * close(fds[1]!);
 * ```
 */
export function send(fd: number, buf: Uint8Array, len: number, flags: number): number {
  checkFd("send", fd);
  checkLength("send", "length", len, byteLengthOf("send", "buf", buf));
  const size = sizeArg(len);
  let r: number;
  do r = libc.send(fd, buf, size, flags); while (interrupted(r));
  return result(r);
}

/**
 * `recvfrom(2)`: count or -errno; the sender's address lands in `addr`
 * (its length in `addrLen[0]`, which must hold at most `addr`'s size
 * before the call). Pass `null` for both to ignore the sender.
 *
 * @example
 * ```ts
 * import { close, recvfrom, socketpair } from "./syscalls.ts";
 * import { AF, SOCK } from "@ffinet/ffinet/ffi";
 * const fds = new Int32Array(2);
 * socketpair(AF.UNIX, SOCK.DGRAM | SOCK.NONBLOCK | SOCK.CLOEXEC, 0, fds);
 * const buf = new Uint8Array(16), addr = new Uint8Array(128);
 * const addrLen = new Uint32Array([addr.length]);
 * recvfrom(fds[0]!, buf, buf.length, 0, addr, addrLen); // -11 (-EAGAIN)
 * close(fds[0]!);
 * close(fds[1]!);
 * ```
 */
export function recvfrom(
  fd: number,
  buf: Uint8Array,
  len: number,
  flags: number,
  addr: Uint8Array | null,
  addrLen: Uint32Array | null,
): number {
  checkFd("recvfrom", fd);
  checkLength("recvfrom", "length", len, byteLengthOf("recvfrom", "buf", buf));
  const cell = checkAddressOut("recvfrom", addr, addrLen);
  const size = sizeArg(len);
  let r: number;
  do r = libc.recvfrom(fd, buf, size, flags, addr, cell); while (interrupted(r));
  return addressOutResult(r, addrLen);
}

/**
 * `sendto(2)` of `buf` (up to `len` bytes) to an encoded address (or `null`
 * on a connected socket).
 *
 * @example
 * ```ts
 * import { close, sendto, socket } from "./syscalls.ts";
 * import { AF, SOCK } from "@ffinet/ffinet/ffi";
 * import { encodeSockaddr } from "@ffinet/ffinet/ffi";
 * const fd = socket(AF.INET, SOCK.DGRAM | SOCK.CLOEXEC, 0);
 * const data = new Uint8Array([1]);
 * sendto(fd, data, data.length, 0, encodeSockaddr({ family: "inet", address: "127.0.0.1", port: 9 }));
 * close(fd);
 * ```
 */
export function sendto(
  fd: number,
  buf: Uint8Array,
  len: number,
  flags: number,
  addr: Uint8Array | null,
): number {
  checkFd("sendto", fd);
  checkLength("sendto", "length", len, byteLengthOf("sendto", "buf", buf));
  const size = sizeArg(len);
  const addrSize = addr === null ? 0 : byteLengthOf("sendto", "addr", addr);
  let r: number;
  do r = libc.sendto(fd, buf, size, flags, addr, addrSize); while (interrupted(r));
  return result(r);
}

/**
 * `recvmsg(2)` with a {@linkcode Msghdr}: bytes received, 0 at EOF, or
 * -errno; read the lengths and flags the kernel wrote from `msg`. The
 * header is encoded from its buffers' current views at the call.
 *
 * @example
 * ```ts
 * import { close, recvmsg, socketpair } from "./syscalls.ts";
 * import { AF, MSG, SOCK } from "@ffinet/ffinet/ffi";
 * import { IovecArray, Msghdr } from "@ffinet/ffinet/ffi";
 * const fds = new Int32Array(2);
 * socketpair(AF.UNIX, SOCK.STREAM | SOCK.NONBLOCK | SOCK.CLOEXEC, 0, fds);
 * const msg = new Msghdr({ iov: new IovecArray([new Uint8Array(8)]) });
 * recvmsg(fds[0]!, msg, MSG.CMSG_CLOEXEC); // -11 (-EAGAIN)
 * close(fds[0]!);
 * close(fds[1]!);
 * ```
 */
export function recvmsg(fd: number, msg: Msghdr, flags: number): number {
  return reflectApply(Msghdr.prototype.recvmsg, msg, [fd, flags]);
}

/**
 * `sendmsg(2)` with a {@linkcode Msghdr}: bytes sent or -errno.
 *
 * @example
 * ```ts
 * import { close, sendmsg, socketpair } from "./syscalls.ts";
 * import { AF, MSG, SOCK } from "@ffinet/ffinet/ffi";
 * import { IovecArray, Msghdr } from "@ffinet/ffinet/ffi";
 * const fds = new Int32Array(2);
 * socketpair(AF.UNIX, SOCK.STREAM | SOCK.CLOEXEC, 0, fds);
 * const msg = new Msghdr({ iov: new IovecArray([new Uint8Array([7])]) });
 * sendmsg(fds[0]!, msg, MSG.NOSIGNAL); // 1
 * close(fds[0]!);
 * close(fds[1]!);
 * ```
 */
export function sendmsg(fd: number, msg: Msghdr, flags: number): number {
  return reflectApply(Msghdr.prototype.sendmsg, msg, [fd, flags]);
}

/**
 * `setsockopt(2)` with the option value's bytes (all of `value`); 0 or -errno.
 *
 * @example
 * ```ts
 * import { close, setsockopt, socket } from "./syscalls.ts";
 * import { AF, SO, SOCK, SOL } from "@ffinet/ffinet/ffi";
 * const fd = socket(AF.INET, SOCK.STREAM | SOCK.CLOEXEC, 0);
 * setsockopt(fd, SOL.SOCKET, SO.REUSEADDR, new Uint8Array(new Int32Array([1]).buffer));
 * close(fd);
 * ```
 */
export function setsockopt(fd: number, level: number, name: number, value: Uint8Array): number {
  checkFd("setsockopt", fd);
  return result(
    libc.setsockopt(fd, level, name, value, byteLengthOf("setsockopt", "value", value)),
  );
}

/**
 * `getsockopt(2)` into `value`; the value's length lands in `valueLen[0]`,
 * which must hold at most `value`'s size before the call. 0 or -errno.
 *
 * @example
 * ```ts
 * import { close, getsockopt, socket } from "./syscalls.ts";
 * import { AF, SO, SOCK, SOL } from "@ffinet/ffinet/ffi";
 * const fd = socket(AF.INET, SOCK.STREAM | SOCK.CLOEXEC, 0);
 * const value = new Uint8Array(4), len = new Uint32Array([4]);
 * getsockopt(fd, SOL.SOCKET, SO.ERROR, value, len); // 0
 * close(fd);
 * ```
 */
export function getsockopt(
  fd: number,
  level: number,
  name: number,
  value: Uint8Array,
  valueLen: Uint32Array,
): number {
  checkFd("getsockopt", fd);
  const size = byteLengthOf("getsockopt", "value", value);
  const cell = checkLengthCell("getsockopt", "value length", valueLen, size);
  return addressOutResult(libc.getsockopt(fd, level, name, value, cell), valueLen);
}

/**
 * `getsockname(2)`: the bound address into `addr`, its length into
 * `addrLen[0]` (at most `addr`'s size before the call); 0 or -errno.
 *
 * @example
 * ```ts
 * import { close, getsockname, socket } from "./syscalls.ts";
 * import { AF, SOCK } from "@ffinet/ffinet/ffi";
 * const fd = socket(AF.INET, SOCK.STREAM | SOCK.CLOEXEC, 0);
 * const addr = new Uint8Array(128), len = new Uint32Array([addr.length]);
 * getsockname(fd, addr, len); // 0; len[0] is 16
 * close(fd);
 * ```
 */
export function getsockname(fd: number, addr: Uint8Array, addrLen: Uint32Array): number {
  checkFd("getsockname", fd);
  const cell = checkAddressOut("getsockname", addr, addrLen);
  return addressOutResult(libc.getsockname(fd, addr, cell), addrLen);
}

/**
 * `getpeername(2)`: the peer's address into `addr`, its length into
 * `addrLen[0]` (at most `addr`'s size before the call); 0 or -errno.
 *
 * @example
 * ```ts
 * import { close, getpeername, socket } from "./syscalls.ts";
 * import { AF, SOCK } from "@ffinet/ffinet/ffi";
 * const fd = socket(AF.INET, SOCK.STREAM | SOCK.CLOEXEC, 0);
 * const addr = new Uint8Array(128), len = new Uint32Array([addr.length]);
 * getpeername(fd, addr, len); // -107 (-ENOTCONN)
 * close(fd);
 * ```
 */
export function getpeername(fd: number, addr: Uint8Array, addrLen: Uint32Array): number {
  checkFd("getpeername", fd);
  const cell = checkAddressOut("getpeername", addr, addrLen);
  return addressOutResult(libc.getpeername(fd, addr, cell), addrLen);
}

/**
 * The `fcntl(2)` commands whose third argument is an integer (or unused).
 * Every other command (`F_GETLK`, `F_SETLK`, `F_OFD_*`, `F_GETOWN_EX`,
 * `F_SETOWN_EX`, `F_GET_RW_HINT` …) takes a pointer, which the kernel would
 * read or write at whatever address the integer names.
 */
const FCNTL_INT_COMMANDS: ReadonlySet<number> = new Set([
  0, // F_DUPFD
  1, // F_GETFD
  2, // F_SETFD
  3, // F_GETFL
  4, // F_SETFL
  8, // F_SETOWN
  9, // F_GETOWN
  10, // F_SETSIG
  11, // F_GETSIG
  1024, // F_SETLEASE
  1025, // F_GETLEASE
  1026, // F_NOTIFY
  1030, // F_DUPFD_CLOEXEC
  1031, // F_SETPIPE_SZ
  1032, // F_GETPIPE_SZ
  1033, // F_ADD_SEALS
  1034, // F_GET_SEALS
]);

/**
 * `fcntl(2)` in its integer-argument form (`F_GETFL`, `F_SETFL`, `F_GETFD`,
 * `F_SETFD`, `F_DUPFD_CLOEXEC`, `F_SETPIPE_SZ` …): the result or -errno.
 * A command that takes a pointer (`F_GETLK`, `F_SETOWN_EX` …) is refused
 * with a `RangeError`: an integer there would be used as an address.
 *
 * @example
 * ```ts
 * import { fcntl } from "./syscalls.ts";
 * import { F } from "@ffinet/ffinet/ffi";
 * const flags = fcntl(1, F.GETFL, 0);
 * ```
 */
export function fcntl(fd: number, cmd: number, arg: number): number {
  checkFd("fcntl", fd);
  if (!FCNTL_INT_COMMANDS.has(cmd)) {
    throw new RangeError(
      `Cannot fcntl: command ${cmd} is not one whose argument is an integer (a pointer-taking command would use ${arg} as an address)`,
    );
  }
  checkInteger("fcntl", "arg", arg, -0x8000_0000, INT32_MAX);
  let r: number;
  do r = libc.fcntl(fd, cmd, arg); while (interrupted(r));
  return result(r);
}

const fionreadCell = new Int32Array(1);
const FIONREAD_REQUEST = BigInt(IOCTL.FIONREAD);
/**
 * `ioctl(fd, FIONREAD)`: how many bytes are waiting to be read, or -errno.
 *
 * @example
 * ```ts
 * import { close, fionread, write } from "./syscalls.ts";
 * import { pipe } from "@ffinet/ffinet/ffi";
 * const [r, w] = pipe();
 * write(w, new Uint8Array(5));
 * fionread(r); // 5
 * close(r);
 * close(w);
 * ```
 */
export function fionread(fd: number): number {
  checkFd("ioctl", fd);
  const r = libc.ioctl(fd, FIONREAD_REQUEST, fionreadCell);
  return r >= 0 ? fionreadCell[0]! : -errnoCell[0]!;
}

/**
 * `pipe2(2)`: writes `[readFd, writeFd]` into `out` (which must hold 2);
 * 0 or -errno.
 *
 * @example
 * ```ts
 * import { close, pipe2 } from "./syscalls.ts";
 * import { O } from "@ffinet/ffinet/ffi";
 * const fds = new Int32Array(2);
 * pipe2(fds, O.CLOEXEC | O.NONBLOCK);
 * close(fds[0]!);
 * close(fds[1]!);
 * ```
 */
export function pipe2(out: Int32Array, flags: number): number {
  checkElements("pipe2", "out", out, 2, 4);
  return result(libc.pipe2(out, flags));
}

/**
 * `eventfd(2)`: the fd or -errno. `initval` is an `unsigned int`.
 *
 * @example
 * ```ts
 * import { close, eventfd } from "./syscalls.ts";
 * import { EFD } from "@ffinet/ffinet/ffi";
 * const efd = eventfd(0, EFD.NONBLOCK | EFD.CLOEXEC);
 * close(efd);
 * ```
 */
export function eventfd(initval: number, flags: number): number {
  checkInteger("eventfd", "initval", initval, 0, 0xffff_ffff);
  return result(libc.eventfd(initval, flags));
}

/**
 * `timerfd_create(2)`: the fd or -errno.
 *
 * @example
 * ```ts
 * import { close, timerfd_create } from "./syscalls.ts";
 * import { TFD } from "@ffinet/ffinet/ffi";
 * const tfd = timerfd_create(TFD.CLOCK_MONOTONIC, TFD.NONBLOCK | TFD.CLOEXEC);
 * close(tfd);
 * ```
 */
export function timerfd_create(clock: number, flags: number): number {
  return result(libc.timerfd_create(clock, flags));
}

/**
 * `timerfd_settime(2)` with a `struct itimerspec` of 4 `i64`s
 * (`it_interval` then `it_value`, each `{ tv_sec; tv_nsec }`); `spec` must
 * hold at least 4.
 *
 * @example
 * ```ts
 * import { close, timerfd_create, timerfd_settime } from "./syscalls.ts";
 * import { TFD } from "@ffinet/ffinet/ffi";
 * const tfd = timerfd_create(TFD.CLOCK_MONOTONIC, TFD.CLOEXEC);
 * timerfd_settime(tfd, 0, new BigInt64Array([0n, 0n, 1n, 0n])); // 0
 * close(tfd);
 * ```
 */
export function timerfd_settime(fd: number, flags: number, spec: BigInt64Array): number {
  checkFd("timerfd_settime", fd);
  checkElements("timerfd_settime", "spec", spec, ITIMERSPEC_LONGS, 8);
  return result(libc.timerfd_settime(fd, flags, spec, null));
}

/**
 * `epoll_create1(2)`: the epoll fd or -errno.
 *
 * @example
 * ```ts
 * import { close, epoll_create1 } from "./syscalls.ts";
 * import { EPOLL } from "@ffinet/ffinet/ffi";
 * const epfd = epoll_create1(EPOLL.CLOEXEC);
 * close(epfd);
 * ```
 */
export function epoll_create1(flags: number): number {
  return result(libc.epoll_create1(flags));
}

/**
 * `epoll_ctl(2)` with one encoded `epoll_event` (at least
 * `EPOLL_EVENT.size` bytes), or `null` for DEL.
 *
 * @example
 * ```ts
 * import { close, epoll_create1, epoll_ctl } from "./syscalls.ts";
 * import { EPOLL } from "@ffinet/ffinet/ffi";
 * import { EPOLL_EVENT, writeEpollEvent } from "@ffinet/ffinet/ffi";
 * import { eventfd } from "@ffinet/ffinet/ffi";
 * const epfd = epoll_create1(EPOLL.CLOEXEC), efd = eventfd();
 * const event = new Uint8Array(EPOLL_EVENT.size);
 * writeEpollEvent(new DataView(event.buffer), 0, { events: EPOLL.IN, token: 1, generation: 0 });
 * epoll_ctl(epfd, EPOLL.CTL_ADD, efd, event); // 0
 * close(efd);
 * close(epfd);
 * ```
 */
export function epoll_ctl(epfd: number, op: number, fd: number, event: Uint8Array | null): number {
  checkFd("epoll_ctl", epfd);
  checkFd("epoll_ctl", fd);
  const size = event === null ? EPOLL_EVENT.size : byteLengthOf("epoll_ctl", "event", event);
  if (size < EPOLL_EVENT.size) {
    throw new RangeError(
      `Cannot epoll_ctl: event is ${size} bytes, struct epoll_event needs ${EPOLL_EVENT.size}`,
    );
  }
  return result(libc.epoll_ctl(epfd, op, fd, event));
}

function checkEvents(call: string, events: Uint8Array, maxEvents: number, timeoutMs: number): void {
  const bytes = byteLengthOf(call, "events", events);
  const capacity = Math.floor(bytes / EPOLL_EVENT.size);
  if (maxEvents >>> 0 !== maxEvents || maxEvents < 1 || maxEvents > capacity) {
    throw new RangeError(
      `Cannot ${call}: maxEvents ${maxEvents} is not an integer from 1 to ${capacity} (the events its ${bytes}-byte buffer holds)`,
    );
  }
  if ((timeoutMs | 0) !== timeoutMs || timeoutMs < -1) {
    throw new RangeError(
      `Cannot ${call}: timeoutMs ${timeoutMs} is not an integer from -1 to ${INT32_MAX}`,
    );
  }
}

/**
 * `epoll_wait(2)` on this thread: the number of events written to `events`,
 * or -errno (`-EINTR` is returned, not retried, so the caller can recompute
 * its timeout). `maxEvents` must fit `events`; `timeoutMs` 0 polls without
 * blocking, -1 waits forever.
 *
 * @example
 * ```ts
 * import { close, epoll_create1, epoll_wait } from "./syscalls.ts";
 * import { EPOLL } from "@ffinet/ffinet/ffi";
 * import { EPOLL_EVENT } from "@ffinet/ffinet/ffi";
 * const epfd = epoll_create1(EPOLL.CLOEXEC);
 * const events = new Uint8Array(EPOLL_EVENT.size * 256);
 * epoll_wait(epfd, events, 256, 0); // 0
 * close(epfd);
 * ```
 */
export function epoll_wait(
  epfd: number,
  events: Uint8Array,
  maxEvents: number,
  timeoutMs: number,
): number {
  checkFd("epoll_wait", epfd);
  checkEvents("epoll_wait", events, maxEvents, timeoutMs);
  return result(libc.epoll_wait(epfd, events, maxEvents, timeoutMs));
}

/** Private event buffers for {@linkcode epollWaitAsync}, reused once a wait settles. */
const spareEventBuffers: Uint8Array[] = [];

/** A private buffer of at least `bytes` bytes, never one a wait in progress uses. */
function takeEventBuffer(bytes: number): Uint8Array {
  for (let i = spareEventBuffers.length - 1; i >= 0; i--) {
    const spare = spareEventBuffers[i]!;
    if (spare.byteLength >= bytes) {
      spareEventBuffers[i] = spareEventBuffers[spareEventBuffers.length - 1]!;
      spareEventBuffers.pop();
      return spare;
    }
  }
  const fresh = new Uint8Array(bytes);
  void fresh.buffer; // off V8's movable heap before a pool thread gets its address
  return fresh;
}

/**
 * `epoll_wait(2)` on a pool thread, so this thread's event loop keeps
 * running while it waits. Resolves to the event count, or -1 on failure
 * (errno lives on the pool thread and cannot be read; treat -1 as "wait
 * again"). `maxEvents` must fit `events`; `timeoutMs` as for
 * {@linkcode epoll_wait}.
 *
 * The pool thread writes into a private buffer that this module owns, and
 * the events are copied into `events` when the promise settles: detaching,
 * transferring or shrinking `events` meanwhile can lose events, never
 * corrupt memory (only the bytes that still fit are copied).
 *
 * @example
 * ```ts
 * import { close, epoll_create1, epollWaitAsync } from "./syscalls.ts";
 * import { EPOLL } from "@ffinet/ffinet/ffi";
 * import { EPOLL_EVENT } from "@ffinet/ffinet/ffi";
 * const epfd = epoll_create1(EPOLL.CLOEXEC);
 * const n = await epollWaitAsync(epfd, new Uint8Array(EPOLL_EVENT.size * 8), 8, 0); // 0
 * close(epfd);
 * ```
 */
export function epollWaitAsync(
  epfd: number,
  events: Uint8Array,
  maxEvents: number,
  timeoutMs: number,
): Promise<number> {
  checkFd("epoll_wait", epfd);
  checkEvents("epoll_wait", events, maxEvents, timeoutMs);
  return waitInto(epfd, events, maxEvents, timeoutMs);
}

/** {@linkcode epollWaitAsync} once checked: wait into a private buffer, then copy. */
async function waitInto(
  epfd: number,
  events: Uint8Array,
  maxEvents: number,
  timeoutMs: number,
): Promise<number> {
  const scratch = takeEventBuffer(maxEvents * EPOLL_EVENT.size);
  try {
    const n = await libc.epoll_wait_nonblocking(epfd, scratch, maxEvents, timeoutMs);
    if (n > 0) copyInto("epoll_wait", "events", events, scratch.subarray(0, n * EPOLL_EVENT.size));
    return n;
  } finally {
    spareEventBuffers.push(scratch);
  }
}
