/**
 * Raw system call wrappers with the kernel's own convention: a result `>= 0`
 * on success, `-errno` on failure (e.g. `-EAGAIN`). They never allocate on
 * failure, so a hot loop can "drain until EAGAIN" cheaply:
 *
 * ```ts
 * import { close, read } from "./syscalls.ts";
 * import { EAGAIN, ErrnoError } from "./errno.ts";
 * import { pipe } from "./fd.ts";
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
 * fds must be `int`s. Calls that take structs of raw addresses (`readv`,
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
import { interrupted, result } from "./_call.ts";
import { IovecArray, Msghdr } from "./msghdr.ts";
import { EPOLL_EVENT } from "./epoll_event.ts";
import { checkElements, checkFd, checkInteger, checkLength, INT32_MAX } from "./_validate.ts";

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

export { interrupted, result } from "./_call.ts";

/**
 * `socket(2)`: a new socket fd, or -errno.
 *
 * @example
 * ```ts
 * import { close, socket } from "./syscalls.ts";
 * import { AF, SOCK } from "./constants.ts";
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
 * import { AF, SOCK } from "./constants.ts";
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
  checkElements("socketpair", "out", out, 2);
  return result(libc.socketpair(domain, type, protocol, out));
}

/**
 * `bind(2)` with an encoded address (see `encodeSockaddr`); 0 or -errno.
 *
 * @example
 * ```ts
 * import { bind, close, socket } from "./syscalls.ts";
 * import { AF, SOCK } from "./constants.ts";
 * import { encodeSockaddr } from "./sockaddr.ts";
 * const fd = socket(AF.INET, SOCK.STREAM | SOCK.CLOEXEC, 0);
 * bind(fd, encodeSockaddr({ family: "inet", address: "127.0.0.1", port: 0 }));
 * close(fd);
 * ```
 */
export function bind(fd: number, sockaddr: Uint8Array): number {
  checkFd("bind", fd);
  return result(libc.bind(fd, sockaddr, sockaddr.byteLength));
}

/**
 * `listen(2)`; 0 or -errno. `backlog` must be an integer from 0 to
 * `INT_MAX` (the kernel caps it at `net.core.somaxconn`).
 *
 * @example
 * ```ts
 * import { bind, close, listen, socket } from "./syscalls.ts";
 * import { AF, SOCK } from "./constants.ts";
 * import { encodeSockaddr } from "./sockaddr.ts";
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
 * import { AF, SOCK } from "./constants.ts";
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
  checkAddressOut("accept4", addr, addrLen);
  let r: number;
  do r = libc.accept4(fd, addr, addrLen, flags); while (interrupted(r));
  return result(r);
}

/** Check an `(addr, addrLen)` out pair: both or neither, `addrLen[0] <= addr`'s size. */
function checkAddressOut(call: string, addr: Uint8Array | null, addrLen: Uint32Array | null): void {
  if (addr === null && addrLen === null) return;
  if (addr === null || addrLen === null) {
    throw new RangeError(`Cannot ${call}: pass both addr and addrLen, or neither`);
  }
  checkElements(call, "addrLen", addrLen, 1);
  checkLength(call, "address length", addrLen[0]!, addr.byteLength);
}

/**
 * `connect(2)`; 0 or -errno (`-EINPROGRESS` for a non-blocking socket).
 * Not retried on EINTR.
 *
 * @example
 * ```ts
 * import { close, connect, socket } from "./syscalls.ts";
 * import { AF, SOCK } from "./constants.ts";
 * import { encodeSockaddr } from "./sockaddr.ts";
 * const fd = socket(AF.INET, SOCK.STREAM | SOCK.NONBLOCK | SOCK.CLOEXEC, 0);
 * connect(fd, encodeSockaddr({ family: "inet", address: "127.0.0.1", port: 9 }));
 * close(fd);
 * ```
 */
export function connect(fd: number, sockaddr: Uint8Array): number {
  checkFd("connect", fd);
  return result(libc.connect(fd, sockaddr, sockaddr.byteLength));
}

/**
 * `shutdown(2)`; 0 or -errno.
 *
 * @example
 * ```ts
 * import { close, shutdown, socketpair } from "./syscalls.ts";
 * import { AF, SHUT, SOCK } from "./constants.ts";
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
 * import { close } from "./syscalls.ts";
 * close(-1); // -9 (-EBADF)
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
 * import { pipe } from "./fd.ts";
 * const [r, w] = pipe();
 * write(w, new Uint8Array([1, 2, 3]));
 * const n = read(r, new Uint8Array(16)); // 3
 * close(r);
 * close(w);
 * ```
 */
export function read(fd: number, buf: Uint8Array, len: number = buf.byteLength): number {
  checkFd("read", fd);
  checkLength("read", "length", len, buf.byteLength);
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
 * import { pipe } from "./fd.ts";
 * const [r, w] = pipe();
 * write(w, new TextEncoder().encode("hi")); // 2
 * close(r);
 * close(w);
 * ```
 */
export function write(fd: number, buf: Uint8Array, len: number = buf.byteLength): number {
  checkFd("write", fd);
  checkLength("write", "length", len, buf.byteLength);
  const size = sizeArg(len);
  let r: number;
  do r = libc.write(fd, buf, size); while (interrupted(r));
  return result(r);
}

function checkIovec(call: string, iov: IovecArray): void {
  if (!(iov instanceof IovecArray)) {
    throw new TypeError(
      `Cannot ${call}: iov must be an IovecArray (a hand-encoded iovec could point anywhere)`,
    );
  }
}

/**
 * `readv(2)` into the chunks of an {@linkcode IovecArray}: count, 0 at EOF,
 * or -errno. The iovecs are encoded from the chunks' current views at the
 * call, so they never point outside them.
 *
 * @example
 * ```ts
 * import { close, readv, write } from "./syscalls.ts";
 * import { IovecArray } from "./msghdr.ts";
 * import { pipe } from "./fd.ts";
 * const [r, w] = pipe();
 * write(w, new Uint8Array([1, 2, 3]));
 * readv(r, new IovecArray([new Uint8Array(2), new Uint8Array(2)])); // 3
 * close(r);
 * close(w);
 * ```
 */
export function readv(fd: number, iov: IovecArray): number {
  checkFd("readv", fd);
  checkIovec("readv", iov);
  return iov.readv(fd);
}

/**
 * `writev(2)` from the chunks of an {@linkcode IovecArray}: count or -errno.
 *
 * @example
 * ```ts
 * import { close, writev } from "./syscalls.ts";
 * import { IovecArray } from "./msghdr.ts";
 * import { pipe } from "./fd.ts";
 * const [r, w] = pipe();
 * writev(w, new IovecArray([new Uint8Array([1]), new Uint8Array([2, 3])])); // 3
 * close(r);
 * close(w);
 * ```
 */
export function writev(fd: number, iov: IovecArray): number {
  checkFd("writev", fd);
  checkIovec("writev", iov);
  return iov.writev(fd);
}

/**
 * `recv(2)` into `buf` (up to `len` bytes): count, 0 at EOF, or -errno.
 *
 * @example
 * ```ts
 * import { close, recv, socketpair } from "./syscalls.ts";
 * import { AF, MSG, SOCK } from "./constants.ts";
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
  checkLength("recv", "length", len, buf.byteLength);
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
 * import { AF, MSG, SOCK } from "./constants.ts";
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
  checkLength("send", "length", len, buf.byteLength);
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
 * import { AF, SOCK } from "./constants.ts";
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
  checkLength("recvfrom", "length", len, buf.byteLength);
  checkAddressOut("recvfrom", addr, addrLen);
  const size = sizeArg(len);
  let r: number;
  do r = libc.recvfrom(fd, buf, size, flags, addr, addrLen); while (interrupted(r));
  return result(r);
}

/**
 * `sendto(2)` of `buf` (up to `len` bytes) to an encoded address (or `null`
 * on a connected socket).
 *
 * @example
 * ```ts
 * import { close, sendto, socket } from "./syscalls.ts";
 * import { AF, SOCK } from "./constants.ts";
 * import { encodeSockaddr } from "./sockaddr.ts";
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
  checkLength("sendto", "length", len, buf.byteLength);
  const size = sizeArg(len);
  const addrSize = addr === null ? 0 : addr.byteLength;
  let r: number;
  do r = libc.sendto(fd, buf, size, flags, addr, addrSize); while (interrupted(r));
  return result(r);
}

function checkMsghdr(call: string, msg: Msghdr): void {
  if (!(msg instanceof Msghdr)) {
    throw new TypeError(
      `Cannot ${call}: msg must be a Msghdr (a hand-encoded msghdr could point anywhere)`,
    );
  }
}

/**
 * `recvmsg(2)` with a {@linkcode Msghdr}: bytes received, 0 at EOF, or
 * -errno; read the lengths and flags the kernel wrote from `msg`. The
 * header is encoded from its buffers' current views at the call.
 *
 * @example
 * ```ts
 * import { close, recvmsg, socketpair } from "./syscalls.ts";
 * import { AF, MSG, SOCK } from "./constants.ts";
 * import { IovecArray, Msghdr } from "./msghdr.ts";
 * const fds = new Int32Array(2);
 * socketpair(AF.UNIX, SOCK.STREAM | SOCK.NONBLOCK | SOCK.CLOEXEC, 0, fds);
 * const msg = new Msghdr({ iov: new IovecArray([new Uint8Array(8)]) });
 * recvmsg(fds[0]!, msg, MSG.CMSG_CLOEXEC); // -11 (-EAGAIN)
 * close(fds[0]!);
 * close(fds[1]!);
 * ```
 */
export function recvmsg(fd: number, msg: Msghdr, flags: number): number {
  checkFd("recvmsg", fd);
  checkMsghdr("recvmsg", msg);
  return msg.recvmsg(fd, flags);
}

/**
 * `sendmsg(2)` with a {@linkcode Msghdr}: bytes sent or -errno.
 *
 * @example
 * ```ts
 * import { close, sendmsg, socketpair } from "./syscalls.ts";
 * import { AF, MSG, SOCK } from "./constants.ts";
 * import { IovecArray, Msghdr } from "./msghdr.ts";
 * const fds = new Int32Array(2);
 * socketpair(AF.UNIX, SOCK.STREAM | SOCK.CLOEXEC, 0, fds);
 * const msg = new Msghdr({ iov: new IovecArray([new Uint8Array([7])]) });
 * sendmsg(fds[0]!, msg, MSG.NOSIGNAL); // 1
 * close(fds[0]!);
 * close(fds[1]!);
 * ```
 */
export function sendmsg(fd: number, msg: Msghdr, flags: number): number {
  checkFd("sendmsg", fd);
  checkMsghdr("sendmsg", msg);
  return msg.sendmsg(fd, flags);
}

/**
 * `setsockopt(2)` with the option value's bytes (all of `value`); 0 or -errno.
 *
 * @example
 * ```ts
 * import { close, setsockopt, socket } from "./syscalls.ts";
 * import { AF, SO, SOCK, SOL } from "./constants.ts";
 * const fd = socket(AF.INET, SOCK.STREAM | SOCK.CLOEXEC, 0);
 * setsockopt(fd, SOL.SOCKET, SO.REUSEADDR, new Uint8Array(new Int32Array([1]).buffer));
 * close(fd);
 * ```
 */
export function setsockopt(fd: number, level: number, name: number, value: Uint8Array): number {
  checkFd("setsockopt", fd);
  return result(libc.setsockopt(fd, level, name, value, value.byteLength));
}

/**
 * `getsockopt(2)` into `value`; the value's length lands in `valueLen[0]`,
 * which must hold at most `value`'s size before the call. 0 or -errno.
 *
 * @example
 * ```ts
 * import { close, getsockopt, socket } from "./syscalls.ts";
 * import { AF, SO, SOCK, SOL } from "./constants.ts";
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
  checkElements("getsockopt", "valueLen", valueLen, 1);
  checkLength("getsockopt", "value length", valueLen[0]!, value.byteLength);
  return result(libc.getsockopt(fd, level, name, value, valueLen));
}

/**
 * `getsockname(2)`: the bound address into `addr`, its length into
 * `addrLen[0]` (at most `addr`'s size before the call); 0 or -errno.
 *
 * @example
 * ```ts
 * import { close, getsockname, socket } from "./syscalls.ts";
 * import { AF, SOCK } from "./constants.ts";
 * const fd = socket(AF.INET, SOCK.STREAM | SOCK.CLOEXEC, 0);
 * const addr = new Uint8Array(128), len = new Uint32Array([addr.length]);
 * getsockname(fd, addr, len); // 0; len[0] is 16
 * close(fd);
 * ```
 */
export function getsockname(fd: number, addr: Uint8Array, addrLen: Uint32Array): number {
  checkFd("getsockname", fd);
  checkAddressOut("getsockname", addr, addrLen);
  return result(libc.getsockname(fd, addr, addrLen));
}

/**
 * `getpeername(2)`: the peer's address into `addr`, its length into
 * `addrLen[0]` (at most `addr`'s size before the call); 0 or -errno.
 *
 * @example
 * ```ts
 * import { close, getpeername, socket } from "./syscalls.ts";
 * import { AF, SOCK } from "./constants.ts";
 * const fd = socket(AF.INET, SOCK.STREAM | SOCK.CLOEXEC, 0);
 * const addr = new Uint8Array(128), len = new Uint32Array([addr.length]);
 * getpeername(fd, addr, len); // -107 (-ENOTCONN)
 * close(fd);
 * ```
 */
export function getpeername(fd: number, addr: Uint8Array, addrLen: Uint32Array): number {
  checkFd("getpeername", fd);
  checkAddressOut("getpeername", addr, addrLen);
  return result(libc.getpeername(fd, addr, addrLen));
}

/**
 * `fcntl(2)` in its fixed-argument form (`F_GETFL`, `F_SETFL`, `F_GETFD`,
 * `F_SETFD`, `F_DUPFD_CLOEXEC`): the result or -errno.
 *
 * @example
 * ```ts
 * import { fcntl } from "./syscalls.ts";
 * import { F } from "./constants.ts";
 * const flags = fcntl(1, F.GETFL, 0);
 * ```
 */
export function fcntl(fd: number, cmd: number, arg: number): number {
  checkFd("fcntl", fd);
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
 * import { pipe } from "./fd.ts";
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
 * import { O } from "./constants.ts";
 * const fds = new Int32Array(2);
 * pipe2(fds, O.CLOEXEC | O.NONBLOCK);
 * close(fds[0]!);
 * close(fds[1]!);
 * ```
 */
export function pipe2(out: Int32Array, flags: number): number {
  checkElements("pipe2", "out", out, 2);
  return result(libc.pipe2(out, flags));
}

/**
 * `eventfd(2)`: the fd or -errno. `initval` is an `unsigned int`.
 *
 * @example
 * ```ts
 * import { close, eventfd } from "./syscalls.ts";
 * import { EFD } from "./constants.ts";
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
 * import { TFD } from "./constants.ts";
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
 * import { TFD } from "./constants.ts";
 * const tfd = timerfd_create(TFD.CLOCK_MONOTONIC, TFD.CLOEXEC);
 * timerfd_settime(tfd, 0, new BigInt64Array([0n, 0n, 1n, 0n])); // 0
 * close(tfd);
 * ```
 */
export function timerfd_settime(fd: number, flags: number, spec: BigInt64Array): number {
  checkFd("timerfd_settime", fd);
  checkElements("timerfd_settime", "spec", spec, ITIMERSPEC_LONGS);
  return result(libc.timerfd_settime(fd, flags, spec, null));
}

/**
 * `epoll_create1(2)`: the epoll fd or -errno.
 *
 * @example
 * ```ts
 * import { close, epoll_create1 } from "./syscalls.ts";
 * import { EPOLL } from "./constants.ts";
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
 * import { EPOLL } from "./constants.ts";
 * import { EPOLL_EVENT, writeEpollEvent } from "./epoll_event.ts";
 * import { eventfd } from "./fd.ts";
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
  if (event !== null && event.byteLength < EPOLL_EVENT.size) {
    throw new RangeError(
      `Cannot epoll_ctl: event is ${event.byteLength} bytes, struct epoll_event needs ${EPOLL_EVENT.size}`,
    );
  }
  return result(libc.epoll_ctl(epfd, op, fd, event));
}

function checkEvents(call: string, events: Uint8Array, maxEvents: number, timeoutMs: number): void {
  const capacity = Math.floor(events.byteLength / EPOLL_EVENT.size);
  if (maxEvents >>> 0 !== maxEvents || maxEvents < 1 || maxEvents > capacity) {
    throw new RangeError(
      `Cannot ${call}: maxEvents ${maxEvents} is not an integer from 1 to ${capacity} (the events its ${events.byteLength}-byte buffer holds)`,
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
 * import { EPOLL } from "./constants.ts";
 * import { EPOLL_EVENT } from "./epoll_event.ts";
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

/**
 * `epoll_wait(2)` on a pool thread, so this thread's event loop keeps
 * running while it waits. Resolves to the event count, or -1 on failure
 * (errno lives on the pool thread and cannot be read; treat -1 as "wait
 * again"). `maxEvents` must fit `events`, which must not be over a
 * resizable `ArrayBuffer`, and must not be touched (nor its buffer detached
 * or transferred) until the promise settles.
 *
 * @example
 * ```ts
 * import { close, epoll_create1, epollWaitAsync } from "./syscalls.ts";
 * import { EPOLL } from "./constants.ts";
 * import { EPOLL_EVENT } from "./epoll_event.ts";
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
  if (events.buffer instanceof ArrayBuffer && events.buffer.resizable) {
    throw new TypeError(
      "Cannot epoll_wait: events is over a resizable ArrayBuffer, which could shrink while a pool thread writes into it",
    );
  }
  return libc.epoll_wait_nonblocking(epfd, events, maxEvents, timeoutMs);
}
