/**
 * Small throwing helpers for raw file descriptors: pipes, eventfds, the
 * non-blocking and close-on-exec flags, a checked `close`, and the list of
 * open fds. Failures throw an {@linkcode ErrnoError}.
 *
 * @module
 */
import { EAGAIN, EBADF, EINTR, ENOENT, errnoCell, ErrnoError } from "./errno.ts";
import { EFD, F, O } from "./constants.ts";
import { libc } from "./libc.ts";
import * as sys from "./syscalls.ts";
import { checkInteger, INT32_MAX } from "./_view.ts";

/** Options for {@linkcode pipe}. */
export interface PipeOptions {
  /** Open both ends `O_NONBLOCK` (default false). */
  nonblock?: boolean;
  /** Open both ends `O_CLOEXEC` (default true). */
  cloexec?: boolean;
}

/**
 * `pipe2(2)`: a new pipe as `[readFd, writeFd]`, close-on-exec by default.
 *
 * @example
 * ```ts
 * import { closeFd, pipe } from "@ffinet/ffinet/ffi";
 * const [r, w] = pipe({ nonblock: true });
 * closeFd(r);
 * closeFd(w);
 * ```
 */
export function pipe(options: PipeOptions = {}): [number, number] {
  const flags = (options.nonblock ? O.NONBLOCK : 0) | (options.cloexec === false ? 0 : O.CLOEXEC);
  const fds = new Int32Array(2);
  const r = sys.pipe2(fds, flags);
  if (r < 0) throw new ErrnoError("pipe2", -r);
  return [fds[0]!, fds[1]!];
}

/** Options for {@linkcode eventfd}. */
export interface EventfdOptions {
  /** The counter's initial value (default 0). */
  initial?: number;
  /** Open it `EFD_NONBLOCK` (default true). */
  nonblock?: boolean;
  /** Open it `EFD_CLOEXEC` (default true). */
  cloexec?: boolean;
  /** `EFD_SEMAPHORE`: each read takes 1 instead of the whole count (default false). */
  semaphore?: boolean;
}

/**
 * `eventfd(2)`: a new eventfd, non-blocking and close-on-exec by default.
 *
 * @example
 * ```ts
 * import { closeFd, eventfd, eventfdRead, eventfdWrite } from "@ffinet/ffinet/ffi";
 * const efd = eventfd();
 * eventfdWrite(efd, 3);
 * eventfdRead(efd); // 3
 * closeFd(efd);
 * ```
 */
export function eventfd(options: EventfdOptions = {}): number {
  const flags = (options.nonblock === false ? 0 : EFD.NONBLOCK) |
    (options.cloexec === false ? 0 : EFD.CLOEXEC) |
    (options.semaphore ? EFD.SEMAPHORE : 0);
  const r = sys.eventfd(options.initial ?? 0, flags);
  if (r < 0) throw new ErrnoError("eventfd", -r);
  return r;
}

/** An eventfd's counter: one `uint64_t`. */
const EVENTFD_COUNTER_BYTES = 8;
const counterBytes = new Uint8Array(EVENTFD_COUNTER_BYTES);
const counter = new BigUint64Array(counterBytes.buffer);

/**
 * Add `n` (default 1) to an eventfd's counter. Throws `EAGAIN` when a
 * non-blocking eventfd's counter would overflow.
 *
 * @example
 * ```ts
 * import { closeFd, eventfd, eventfdWrite } from "@ffinet/ffinet/ffi";
 * const wakeFd = eventfd();
 * eventfdWrite(wakeFd); // wake whoever waits on it
 * closeFd(wakeFd);
 * ```
 */
export function eventfdWrite(fd: number, n = 1): void {
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new RangeError(`Cannot write eventfd: ${n} is not a positive integer`);
  }
  counter[0] = BigInt(n);
  const r = sys.write(fd, counterBytes, EVENTFD_COUNTER_BYTES);
  if (r < 0) throw new ErrnoError("write", -r, { detail: `eventfd ${fd}` });
}

/**
 * Read and reset an eventfd's counter (or take 1 from it in semaphore
 * mode). Returns 0 when a non-blocking eventfd's counter is zero (`EAGAIN`).
 *
 * @example
 * ```ts
 * import { closeFd, eventfd, eventfdRead } from "@ffinet/ffinet/ffi";
 * const wakeFd = eventfd();
 * const wakeups = eventfdRead(wakeFd); // 0: nobody woke it
 * closeFd(wakeFd);
 * ```
 */
export function eventfdRead(fd: number): number {
  const r = sys.read(fd, counterBytes, EVENTFD_COUNTER_BYTES);
  if (r === -EAGAIN) return 0;
  if (r < 0) throw new ErrnoError("read", -r, { detail: `eventfd ${fd}` });
  return Number(counter[0]!);
}

function getFlags(fd: number, cmd: number, name: string): number {
  const r = sys.fcntl(fd, cmd, 0);
  if (r < 0) throw new ErrnoError("fcntl", -r, { detail: `${name} on fd ${fd}` });
  return r;
}

function setFlags(fd: number, cmd: number, value: number, name: string): void {
  const r = sys.fcntl(fd, cmd, value);
  if (r < 0) throw new ErrnoError("fcntl", -r, { detail: `${name} on fd ${fd}` });
}

/**
 * Turn `O_NONBLOCK` on or off for `fd` (it belongs to the open file
 * description, so duplicates of the fd share it).
 *
 * @example
 * ```ts
 * import { closeFd, pipe, setNonBlocking } from "@ffinet/ffinet/ffi";
 * const [r, w] = pipe();
 * setNonBlocking(r, true);
 * closeFd(r);
 * closeFd(w);
 * ```
 */
export function setNonBlocking(fd: number, on: boolean): void {
  const flags = getFlags(fd, F.GETFL, "F_GETFL");
  const next = on ? flags | O.NONBLOCK : flags & ~O.NONBLOCK;
  if (next !== flags) setFlags(fd, F.SETFL, next, "F_SETFL");
}

/**
 * Whether `O_NONBLOCK` is set on `fd`.
 *
 * @example
 * ```ts
 * import { closeFd, isNonBlocking, pipe } from "@ffinet/ffinet/ffi";
 * const [r, w] = pipe({ nonblock: true });
 * isNonBlocking(r); // true
 * closeFd(r);
 * closeFd(w);
 * ```
 */
export function isNonBlocking(fd: number): boolean {
  return (getFlags(fd, F.GETFL, "F_GETFL") & O.NONBLOCK) !== 0;
}

/**
 * Turn `FD_CLOEXEC` on or off for `fd` (per fd, not shared by duplicates).
 *
 * @example
 * ```ts
 * import { closeFd, pipe, setCloexec } from "@ffinet/ffinet/ffi";
 * const [r, w] = pipe();
 * setCloexec(r, false); // let a child process inherit it
 * closeFd(r);
 * closeFd(w);
 * ```
 */
export function setCloexec(fd: number, on: boolean): void {
  const flags = getFlags(fd, F.GETFD, "F_GETFD");
  const next = on ? flags | F.FD_CLOEXEC : flags & ~F.FD_CLOEXEC;
  if (next !== flags) setFlags(fd, F.SETFD, next, "F_SETFD");
}

/**
 * Whether `FD_CLOEXEC` is set on `fd`.
 *
 * @example
 * ```ts
 * import { closeFd, isCloexec, pipe } from "@ffinet/ffinet/ffi";
 * const [r, w] = pipe();
 * isCloexec(r); // true: pipe() sets O_CLOEXEC by default
 * closeFd(r);
 * closeFd(w);
 * ```
 */
export function isCloexec(fd: number): boolean {
  return (getFlags(fd, F.GETFD, "F_GETFD") & F.FD_CLOEXEC) !== 0;
}

/**
 * Whether `fd` is an open file descriptor (`fcntl(F_GETFD)` does not fail
 * with `EBADF`).
 *
 * @example
 * ```ts
 * import { isOpen } from "@ffinet/ffinet/ffi";
 * isOpen(-1); // false
 * ```
 */
export function isOpen(fd: number): boolean {
  const r = sys.fcntl(fd, F.GETFD, 0);
  if (r >= 0) return true;
  if (r === -EBADF) return false;
  throw new ErrnoError("fcntl", -r, { detail: `F_GETFD on fd ${fd}` });
}

/**
 * `close(2)` that throws on failure (`EBADF` for a closed fd). `EINTR` counts
 * as success: Linux has released the fd by then, so it must not be retried.
 *
 * @example
 * ```ts
 * import { closeFd, pipe } from "@ffinet/ffinet/ffi";
 * const [r, w] = pipe();
 * closeFd(r);
 * closeFd(w);
 * ```
 */
export function closeFd(fd: number): void {
  const r = sys.close(fd);
  if (r < 0 && r !== -EINTR) throw new ErrnoError("close", -r, { detail: `fd ${fd}` });
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** `offsetof(struct dirent, d_name)` on 64-bit glibc. */
const DIRENT_NAME = 19;
const linkBuffer = new Uint8Array(4096);
const LINK_BUFFER_SIZE = BigInt(linkBuffer.byteLength);

/**
 * The open fds of this process, each with what it refers to (the target of
 * its `/proc/self/fd` link, e.g. `"pipe:[1234]"` or a path). Read through
 * libc, so it needs no `--allow-read` (Deno restricts `/proc/self/fd` to
 * `--allow-all`). Useful to find inherited fds and to check for leaks.
 *
 * @example
 * ```ts
 * import { listOpenFds } from "@ffinet/ffinet/ffi";
 * for (const [fd, target] of listOpenFds()) console.log(fd, target);
 * ```
 */
export function listOpenFds(pid?: number): Map<number, string> {
  if (pid !== undefined) checkInteger("list open fds", "pid", pid, 1, INT32_MAX);
  const base = pid === undefined ? "/proc/self/fd" : `/proc/${pid}/fd`;
  const dir = libc.opendir(encoder.encode(`${base}\0`));
  if (dir === null) throw new ErrnoError("opendir", errnoCell[0]!, { detail: base });
  const fds: number[] = [];
  try {
    const own = libc.dirfd(dir);
    for (let ent = libc.readdir(dir); ent !== null; ent = libc.readdir(dir)) {
      const name = Deno.UnsafePointerView.getCString(ent, DIRENT_NAME);
      if (name === "." || name === "..") continue;
      const fd = Number(name);
      if (pid !== undefined || fd !== own) fds.push(fd);
    }
  } finally {
    libc.closedir(dir);
  }
  const out = new Map<number, string>();
  for (const fd of fds) {
    const n = libc.readlink(encoder.encode(`${base}/${fd}\0`), linkBuffer, LINK_BUFFER_SIZE);
    if (n >= 0) out.set(fd, decoder.decode(linkBuffer.subarray(0, n)));
    else if (errnoCell[0] !== ENOENT) out.set(fd, "");
  }
  return out;
}
