/**
 * Raw system call wrappers with the kernel's own convention: a result `>= 0`
 * on success, `-errno` on failure (e.g. `-EAGAIN`). They never throw and never
 * allocate on failure, so a hot loop can "drain until EAGAIN" cheaply:
 *
 * ```ts ignore
 * for (;;) {
 *   const n = read(fd, buf);
 *   if (n > 0) { consume(buf, n); continue; }
 *   if (n === -EAGAIN) break;      // drained: wait for the next readiness
 *   if (n === 0) { onEof(); break; }
 *   throw new ErrnoError("read", -n);
 * }
 * ```
 *
 * `size_t` arguments are passed as `BigInt(n)`: V8 turns that into a plain
 * 64-bit register write in the fast call (measured: as fast as a literal),
 * while passing a `number` for a 64-bit parameter takes Deno's slow path.
 *
 * errno is read in the expression right after the call. EINTR is retried
 * for every call where restarting is correct; `connect` and `close` are not
 * retried (a restarted connect reports EALREADY; Linux releases the fd even
 * when close reports EINTR). Use {@linkcode check} from `errno.ts` to turn
 * a result into a thrown {@linkcode ErrnoError}.
 *
 * @module
 */
import { libc } from "./libc.ts";
import { EINTR, errnoCell } from "./errno.ts";
import { IOCTL } from "./constants.ts";

/**
 * `socket(2)`: a new socket fd, or -errno.
 *
 * @example
 * ```ts
 * import { socket, close } from "./syscalls.ts";
 * import { AF, SOCK } from "./constants.ts";
 * const fd = socket(AF.INET, SOCK.STREAM | SOCK.NONBLOCK | SOCK.CLOEXEC, 0);
 * if (fd >= 0) close(fd);
 * ```
 */
export function socket(domain: number, type: number, protocol: number): number {
  const r = libc.socket(domain, type, protocol);
  return r >= 0 ? r : -errnoCell[0]!;
}

/**
 * `socketpair(2)`: writes two fds into `out`; returns 0 or -errno.
 *
 * @example
 * ```ts
 * import { socketpair } from "./syscalls.ts";
 * import { AF, SOCK } from "./constants.ts";
 * const fds = new Int32Array(2);
 * socketpair(AF.UNIX, SOCK.STREAM | SOCK.CLOEXEC, 0, fds);
 * ```
 */
export function socketpair(
  domain: number,
  type: number,
  protocol: number,
  out: Int32Array,
): number {
  const r = libc.socketpair(domain, type, protocol, out);
  return r >= 0 ? r : -errnoCell[0]!;
}

/**
 * `bind(2)` with an encoded address (see `encodeSockaddr`); 0 or -errno.
 *
 * @example
 * ```ts ignore
 * bind(fd, encodeSockaddr({ family: "inet", address: "127.0.0.1", port: 0 }));
 * ```
 */
export function bind(fd: number, sockaddr: Uint8Array): number {
  const r = libc.bind(fd, sockaddr, sockaddr.byteLength);
  return r >= 0 ? r : -errnoCell[0]!;
}

/**
 * `listen(2)`; 0 or -errno.
 *
 * @example
 * ```ts ignore
 * listen(fd, 511);
 * ```
 */
export function listen(fd: number, backlog: number): number {
  const r = libc.listen(fd, backlog);
  return r >= 0 ? r : -errnoCell[0]!;
}

/**
 * `accept4(2)`: the new fd, or -errno (`-EAGAIN` when the queue is empty).
 * Pass `addr` (≥ 128 bytes) and `addrLen` (one u32, set to `addr`'s size
 * before the call) to learn the peer's address, or `null` for neither.
 *
 * @example
 * ```ts ignore
 * const c = accept4(listenFd, null, null, SOCK.NONBLOCK | SOCK.CLOEXEC);
 * ```
 */
export function accept4(
  fd: number,
  addr: Uint8Array | null,
  addrLen: Uint32Array | null,
  flags: number,
): number {
  let r: number;
  do {
    r = libc.accept4(fd, addr, addrLen, flags);
    if (r >= 0) return r;
    r = -errnoCell[0]!;
  } while (r === -EINTR);
  return r;
}

/**
 * `connect(2)`; 0 or -errno (`-EINPROGRESS` for a non-blocking socket).
 * Not retried on EINTR.
 *
 * @example
 * ```ts ignore
 * connect(fd, encodeSockaddr({ family: "inet", address: "127.0.0.1", port: 80 }));
 * ```
 */
export function connect(fd: number, sockaddr: Uint8Array): number {
  const r = libc.connect(fd, sockaddr, sockaddr.byteLength);
  return r >= 0 ? r : -errnoCell[0]!;
}

/**
 * `shutdown(2)`; 0 or -errno.
 *
 * @example
 * ```ts ignore
 * shutdown(fd, SHUT.WR);
 * ```
 */
export function shutdown(fd: number, how: number): number {
  const r = libc.shutdown(fd, how);
  return r >= 0 ? r : -errnoCell[0]!;
}

/**
 * `close(2)`; 0 or -errno. Never retried: on Linux the fd is released even
 * when close reports EINTR.
 *
 * @example
 * ```ts ignore
 * close(fd);
 * ```
 */
export function close(fd: number): number {
  const r = libc.close(fd);
  return r >= 0 ? r : -errnoCell[0]!;
}

/**
 * `read(2)` into `buf` (up to `len` bytes): the count, 0 at EOF, or -errno.
 *
 * @example
 * ```ts ignore
 * const n = read(fd, buf);
 * ```
 */
export function read(fd: number, buf: Uint8Array, len: number = buf.byteLength): number {
  let r: number;
  do {
    r = libc.read(fd, buf, BigInt(len));
    if (r >= 0) return r;
    r = -errnoCell[0]!;
  } while (r === -EINTR);
  return r;
}

/**
 * `write(2)` from `buf` (up to `len` bytes): the count or -errno.
 *
 * @example
 * ```ts ignore
 * const n = write(fd, new TextEncoder().encode("hi"));
 * ```
 */
export function write(fd: number, buf: Uint8Array, len: number = buf.byteLength): number {
  let r: number;
  do {
    r = libc.write(fd, buf, BigInt(len));
    if (r >= 0) return r;
    r = -errnoCell[0]!;
  } while (r === -EINTR);
  return r;
}

/**
 * `readv(2)` with an encoded iovec array (see `msghdr.ts`): count or -errno.
 *
 * @example
 * ```ts ignore
 * const n = readv(fd, iov.buffer, iov.count);
 * ```
 */
export function readv(fd: number, iov: Uint8Array, count: number): number {
  let r: number;
  do {
    r = libc.readv(fd, iov, count);
    if (r >= 0) return r;
    r = -errnoCell[0]!;
  } while (r === -EINTR);
  return r;
}

/**
 * `writev(2)` with an encoded iovec array: count or -errno.
 *
 * @example
 * ```ts ignore
 * const n = writev(fd, iov.buffer, iov.count);
 * ```
 */
export function writev(fd: number, iov: Uint8Array, count: number): number {
  let r: number;
  do {
    r = libc.writev(fd, iov, count);
    if (r >= 0) return r;
    r = -errnoCell[0]!;
  } while (r === -EINTR);
  return r;
}

/**
 * `recv(2)`: count, 0 at EOF, or -errno.
 *
 * @example
 * ```ts ignore
 * const n = recv(fd, buf, buf.length, MSG.PEEK);
 * ```
 */
export function recv(fd: number, buf: Uint8Array, len: number, flags: number): number {
  let r: number;
  do {
    r = libc.recv(fd, buf, BigInt(len), flags);
    if (r >= 0) return r;
    r = -errnoCell[0]!;
  } while (r === -EINTR);
  return r;
}

/**
 * `send(2)`: count or -errno. Pass `MSG.NOSIGNAL` to get `-EPIPE` instead of
 * a SIGPIPE when the peer is gone.
 *
 * @example
 * ```ts ignore
 * const n = send(fd, data, data.length, MSG.NOSIGNAL);
 * ```
 */
export function send(fd: number, buf: Uint8Array, len: number, flags: number): number {
  let r: number;
  do {
    r = libc.send(fd, buf, BigInt(len), flags);
    if (r >= 0) return r;
    r = -errnoCell[0]!;
  } while (r === -EINTR);
  return r;
}

/**
 * `recvfrom(2)`: count or -errno; the sender's address lands in `addr`
 * (its length in `addrLen[0]`, which must hold `addr`'s size before the call).
 *
 * @example
 * ```ts ignore
 * addrLen[0] = addr.length;
 * const n = recvfrom(fd, buf, buf.length, 0, addr, addrLen);
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
  let r: number;
  do {
    r = libc.recvfrom(fd, buf, BigInt(len), flags, addr, addrLen);
    if (r >= 0) return r;
    r = -errnoCell[0]!;
  } while (r === -EINTR);
  return r;
}

/**
 * `sendto(2)` to an encoded address (or `null` on a connected socket).
 *
 * @example
 * ```ts ignore
 * sendto(fd, data, data.length, 0, encodeSockaddr(peer));
 * ```
 */
export function sendto(
  fd: number,
  buf: Uint8Array,
  len: number,
  flags: number,
  addr: Uint8Array | null,
): number {
  let r: number;
  do {
    r = libc.sendto(fd, buf, BigInt(len), flags, addr, addr === null ? 0 : addr.byteLength);
    if (r >= 0) return r;
    r = -errnoCell[0]!;
  } while (r === -EINTR);
  return r;
}

/**
 * `recvmsg(2)` with an encoded `struct msghdr` (see `msghdr.ts`).
 *
 * @example
 * ```ts ignore
 * const n = recvmsg(fd, msg.header, MSG.CMSG_CLOEXEC);
 * ```
 */
export function recvmsg(fd: number, msghdr: Uint8Array, flags: number): number {
  let r: number;
  do {
    r = libc.recvmsg(fd, msghdr, flags);
    if (r >= 0) return r;
    r = -errnoCell[0]!;
  } while (r === -EINTR);
  return r;
}

/**
 * `sendmsg(2)` with an encoded `struct msghdr`.
 *
 * @example
 * ```ts ignore
 * const n = sendmsg(fd, msg.header, MSG.NOSIGNAL);
 * ```
 */
export function sendmsg(fd: number, msghdr: Uint8Array, flags: number): number {
  let r: number;
  do {
    r = libc.sendmsg(fd, msghdr, flags);
    if (r >= 0) return r;
    r = -errnoCell[0]!;
  } while (r === -EINTR);
  return r;
}

/**
 * `setsockopt(2)` with the option value's bytes; 0 or -errno.
 *
 * @example
 * ```ts ignore
 * setsockopt(fd, SOL.SOCKET, SO.REUSEADDR, new Uint8Array(new Int32Array([1]).buffer));
 * ```
 */
export function setsockopt(fd: number, level: number, name: number, value: Uint8Array): number {
  const r = libc.setsockopt(fd, level, name, value, value.byteLength);
  return r >= 0 ? r : -errnoCell[0]!;
}

/**
 * `getsockopt(2)` into `value`; the value's length lands in `valueLen[0]`,
 * which must hold `value`'s size before the call. 0 or -errno.
 *
 * @example
 * ```ts ignore
 * len[0] = 4;
 * getsockopt(fd, SOL.SOCKET, SO.ERROR, value, len);
 * ```
 */
export function getsockopt(
  fd: number,
  level: number,
  name: number,
  value: Uint8Array,
  valueLen: Uint32Array,
): number {
  const r = libc.getsockopt(fd, level, name, value, valueLen);
  return r >= 0 ? r : -errnoCell[0]!;
}

/**
 * `getsockname(2)`; 0 or -errno.
 *
 * @example
 * ```ts ignore
 * len[0] = addr.length;
 * getsockname(fd, addr, len);
 * ```
 */
export function getsockname(fd: number, addr: Uint8Array, addrLen: Uint32Array): number {
  const r = libc.getsockname(fd, addr, addrLen);
  return r >= 0 ? r : -errnoCell[0]!;
}

/**
 * `getpeername(2)`; 0 or -errno.
 *
 * @example
 * ```ts ignore
 * len[0] = addr.length;
 * getpeername(fd, addr, len);
 * ```
 */
export function getpeername(fd: number, addr: Uint8Array, addrLen: Uint32Array): number {
  const r = libc.getpeername(fd, addr, addrLen);
  return r >= 0 ? r : -errnoCell[0]!;
}

/**
 * `fcntl(2)` in its fixed-argument form (`F_GETFL`, `F_SETFL`, `F_GETFD`,
 * `F_SETFD`, `F_DUPFD_CLOEXEC`): the result or -errno.
 *
 * @example
 * ```ts ignore
 * const flags = fcntl(fd, F.GETFL, 0);
 * ```
 */
export function fcntl(fd: number, cmd: number, arg: number): number {
  let r: number;
  do {
    r = libc.fcntl(fd, cmd, arg);
    if (r >= 0) return r;
    r = -errnoCell[0]!;
  } while (r === -EINTR);
  return r;
}

const fionreadCell = new Int32Array(1);
/**
 * `ioctl(fd, FIONREAD)`: how many bytes are waiting to be read, or -errno.
 *
 * @example
 * ```ts ignore
 * const waiting = fionread(fd);
 * ```
 */
export function fionread(fd: number): number {
  const r = libc.ioctl(fd, BigInt(IOCTL.FIONREAD), fionreadCell);
  return r >= 0 ? fionreadCell[0]! : -errnoCell[0]!;
}

/**
 * `pipe2(2)`: writes `[readFd, writeFd]` into `out`; 0 or -errno.
 *
 * @example
 * ```ts ignore
 * const fds = new Int32Array(2);
 * pipe2(fds, O.CLOEXEC | O.NONBLOCK);
 * ```
 */
export function pipe2(out: Int32Array, flags: number): number {
  const r = libc.pipe2(out, flags);
  return r >= 0 ? r : -errnoCell[0]!;
}

/**
 * `eventfd(2)`: the fd or -errno.
 *
 * @example
 * ```ts ignore
 * const efd = eventfd(0, EFD.NONBLOCK | EFD.CLOEXEC);
 * ```
 */
export function eventfd(initval: number, flags: number): number {
  const r = libc.eventfd(initval, flags);
  return r >= 0 ? r : -errnoCell[0]!;
}

/**
 * `timerfd_create(2)`: the fd or -errno.
 *
 * @example
 * ```ts ignore
 * const tfd = timerfd_create(TFD.CLOCK_MONOTONIC, TFD.NONBLOCK | TFD.CLOEXEC);
 * ```
 */
export function timerfd_create(clock: number, flags: number): number {
  const r = libc.timerfd_create(clock, flags);
  return r >= 0 ? r : -errnoCell[0]!;
}

/**
 * `timerfd_settime(2)` with a 32-byte `struct itimerspec`
 * (`it_interval` then `it_value`, each `{ i64 tv_sec; i64 tv_nsec }`).
 *
 * @example
 * ```ts ignore
 * timerfd_settime(tfd, 0, new BigInt64Array([0n, 0n, 1n, 0n]));
 * ```
 */
export function timerfd_settime(fd: number, flags: number, spec: BigInt64Array): number {
  const r = libc.timerfd_settime(fd, flags, spec, null);
  return r >= 0 ? r : -errnoCell[0]!;
}

/**
 * `epoll_create1(2)`: the epoll fd or -errno.
 *
 * @example
 * ```ts ignore
 * const epfd = epoll_create1(EPOLL.CLOEXEC);
 * ```
 */
export function epoll_create1(flags: number): number {
  const r = libc.epoll_create1(flags);
  return r >= 0 ? r : -errnoCell[0]!;
}

/**
 * `epoll_ctl(2)` with one encoded `epoll_event` (or `null` for DEL).
 *
 * @example
 * ```ts ignore
 * epoll_ctl(epfd, EPOLL.CTL_ADD, fd, event);
 * ```
 */
export function epoll_ctl(epfd: number, op: number, fd: number, event: Uint8Array | null): number {
  const r = libc.epoll_ctl(epfd, op, fd, event);
  return r >= 0 ? r : -errnoCell[0]!;
}

/**
 * `epoll_wait(2)` on this thread: the number of events written to `events`,
 * or -errno (`-EINTR` is returned, not retried, so the caller can recompute
 * its timeout). `timeoutMs` 0 polls without blocking.
 *
 * @example
 * ```ts ignore
 * const n = epoll_wait(epfd, events, 256, 0);
 * ```
 */
export function epoll_wait(
  epfd: number,
  events: Uint8Array,
  maxEvents: number,
  timeoutMs: number,
): number {
  const r = libc.epoll_wait(epfd, events, maxEvents, timeoutMs);
  return r >= 0 ? r : -errnoCell[0]!;
}

/**
 * `epoll_wait(2)` on a pool thread, so this thread's event loop keeps
 * running while it waits. Resolves to the event count, or -1 on failure
 * (errno lives on the pool thread and cannot be read; treat -1 as "wait
 * again"). `events` must not be touched until the promise settles.
 *
 * @example
 * ```ts ignore
 * const n = await epollWaitAsync(epfd, events, 256, -1);
 * ```
 */
export function epollWaitAsync(
  epfd: number,
  events: Uint8Array,
  maxEvents: number,
  timeoutMs: number,
): Promise<number> {
  return libc.epoll_wait_nonblocking(epfd, events, maxEvents, timeoutMs);
}
