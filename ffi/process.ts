/**
 * Typed, throwing wrappers for the process-level calls a daemon needs:
 * identity, sessions, umask, working directory, signals, pidfds, resource
 * limits, files, locks and credentials. Every failure throws an
 * {@linkcode ErrnoError} naming the call, e.g.
 * `Cannot unlink: ENOENT (No such file or directory) [/tmp/x]`.
 *
 * Paths are passed to libc as NUL-terminated UTF-8.
 *
 * @module
 */
import { EAGAIN, errnoCell, ErrnoError } from "./errno.ts";
import { LOCK, O } from "./constants.ts";
import { libc } from "./libc.ts";
import { close, interrupted, read } from "./syscalls.ts";
import { checkFd, checkInt32, checkInteger, ID_MAX, INT32_MAX } from "./_view.ts";

/** `NGROUPS_MAX`: the most supplementary groups a process may have. */
const NGROUPS_MAX = 65536;
/** The highest signal number (`SIGRTMAX`). */
const SIGNAL_MAX = 64;
/** The permission bits `umask` keeps. */
const MODE_BITS = 0o777;
/** The bits of a file mode `open` accepts (permissions, setuid/setgid, sticky). */
const OPEN_MODE_MAX = 0o7777;
/** The first read size of {@linkcode readProcFile}; it doubles while the file fills it. */
const PROC_FILE_CHUNK = 65536;
/** The most {@linkcode readProcFile} reads: a larger file is an error, never cut short. */
const PROC_FILE_MAX = 256 * 1024 * 1024;

const encoder = new TextEncoder();

/** `path` as NUL-terminated UTF-8; `TypeError` for an embedded NUL. */
function cString(action: string, path: string): Uint8Array<ArrayBuffer> {
  if (path.includes("\0")) {
    throw new TypeError(`Cannot ${action}: path contains a NUL byte`);
  }
  return encoder.encode(path + "\0");
}

/** `RLIM_INFINITY` (`~0UL`). */
const RLIM_INFINITY = 0xffff_ffff_ffff_ffffn;

/**
 * `getpid(2)`: this process's id.
 *
 * @example
 * ```ts
 * import { getpid } from "@ffinet/ffinet/ffi";
 * getpid() === Deno.pid; // true
 * ```
 */
export function getpid(): number {
  return libc.getpid();
}

/**
 * `getppid(2)`: the parent process's id.
 *
 * @example
 * ```ts
 * import { getppid } from "@ffinet/ffinet/ffi";
 * getppid() === Deno.ppid; // true
 * ```
 */
export function getppid(): number {
  return libc.getppid();
}

/**
 * `setsid(2)`: start a new session with this process as its leader; returns
 * the new session id. Throws `EPERM` when this process is already a
 * process-group leader (fork first).
 *
 * @example
 * ```ts
 * import { setsid } from "@ffinet/ffinet/ffi";
 * // In a child process that should leave its parent's session:
 * export function detachSession(): number {
 *   return setsid();
 * }
 * ```
 */
export function setsid(): number {
  const r = libc.setsid();
  if (r < 0) throw new ErrnoError("setsid", errnoCell[0]!);
  return r;
}

/**
 * `getsid(2)`: the session id of process `pid` (0, the default, means this one).
 *
 * @example
 * ```ts
 * import { getsid } from "@ffinet/ffinet/ffi";
 * const sid = getsid();
 * ```
 */
export function getsid(pid = 0): number {
  checkInteger("getsid", "pid", pid, 0, INT32_MAX);
  const r = libc.getsid(pid);
  if (r < 0) throw new ErrnoError("getsid", errnoCell[0]!, { detail: `pid ${pid}` });
  return r;
}

/**
 * `umask(2)`: set the file mode creation mask and return the previous one.
 *
 * @example
 * ```ts
 * import { umask } from "@ffinet/ffinet/ffi";
 * const old = umask(0o027);
 * umask(old);
 * ```
 */
export function umask(mask: number): number {
  checkInteger("umask", "mask", mask, 0, MODE_BITS);
  return libc.umask(mask);
}

/**
 * `fchmod(2)`: set the mode of the file `fd` refers to. On a Unix socket
 * before `bind(2)`, Linux gives the socket file this mode (less the umask).
 *
 * @example
 * ```ts
 * import { fchmod } from "@ffinet/ffinet/ffi";
 * import { Socket } from "@ffinet/ffinet/ffi";
 * using s = Socket.create("unix", "stream");
 * fchmod(s.fd, 0o660);
 * ```
 */
export function fchmod(fd: number, mode: number): void {
  if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) {
    throw new RangeError(`Cannot fchmod: fd ${fd} is not a valid file descriptor`);
  }
  checkInteger("fchmod", "mode", mode, 0, 0o7777);
  if (libc.fchmod(fd, mode) < 0) {
    throw new ErrnoError("fchmod", errnoCell[0]!, { detail: `fd ${fd}` });
  }
}

/** `sizeof(struct statx)`, and the offset of its `stx_mode` (u16). */
const STATX_BYTES = 256;
const STATX_MODE_OFFSET = 28;
/** `AT_EMPTY_PATH`, `STATX_TYPE | STATX_MODE`, `S_IFMT`, `S_IFSOCK`. */
const AT_EMPTY_PATH = 0x1000;
const STATX_TYPE_MODE = 0x3;
const S_IFMT = 0o170000;
const S_IFSOCK = 0o140000;
const EMPTY_PATH = new Uint8Array(1);

/**
 * Set the mode of the Unix socket file at `path` to exactly `mode`, without
 * touching the process-wide umask and without following a symlink: the name
 * is opened once with `O_PATH | O_NOFOLLOW`, the inode checked to be a
 * socket (`statx`), and that inode changed through `/proc/self/fd/N`. A name
 * swapped for anything else meanwhile is refused, never changed. Throws
 * `ErrnoError` (e.g. `ENOENT`) or an `Error` for a name that is not a socket.
 *
 * @example
 * ```ts
 * import { chmodSocketFile } from "@ffinet/ffinet/ffi";
 * import { Socket } from "@ffinet/ffinet/ffi";
 * const dir = Deno.makeTempDirSync();
 * using s = Socket.create("unix", "stream");
 * s.bind({ family: "unix", path: `${dir}/app.sock` });
 * chmodSocketFile(`${dir}/app.sock`, 0o660);
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export function chmodSocketFile(path: string, mode: number): void {
  checkInteger("chmod socket file", "mode", mode, 0, 0o7777);
  let fd: number;
  do fd = libc.open(cString("chmod socket file", path), O.PATH | O.NOFOLLOW | O.CLOEXEC, 0); while (
    interrupted(fd)
  );
  if (fd < 0) throw new ErrnoError("open", errnoCell[0]!, { detail: path });
  try {
    const stat = new Uint8Array(STATX_BYTES);
    if (libc.statx(fd, EMPTY_PATH, AT_EMPTY_PATH, STATX_TYPE_MODE, stat) < 0) {
      throw new ErrnoError("statx", errnoCell[0]!, { detail: path });
    }
    const type = new DataView(stat.buffer).getUint16(STATX_MODE_OFFSET, true) & S_IFMT;
    if (type !== S_IFSOCK) {
      throw new Error(`Cannot chmod socket file: ${path} is not a socket`);
    }
    if (libc.chmod(encoder.encode(`/proc/self/fd/${fd}\0`), mode) < 0) {
      throw new ErrnoError("chmod", errnoCell[0]!, { detail: path });
    }
  } finally {
    libc.close(fd);
  }
}

/**
 * `chdir(2)`: change the working directory.
 *
 * @example
 * ```ts
 * import { chdir } from "@ffinet/ffinet/ffi";
 * chdir("/");
 * ```
 */
export function chdir(path: string): void {
  if (libc.chdir(cString("chdir", path)) < 0) {
    throw new ErrnoError("chdir", errnoCell[0]!, { detail: path });
  }
}

/**
 * `dup2(2)`: make `newFd` a copy of `oldFd` (closing what `newFd` was) and
 * return `newFd`. The copy is not close-on-exec.
 *
 * @example
 * ```ts
 * import { dup2, openFile } from "@ffinet/ffinet/ffi";
 * import { O } from "@ffinet/ffinet/ffi";
 * // In a daemon: stdin from /dev/null.
 * export function stdinFromDevNull(): void {
 *   const devNullFd = openFile("/dev/null", O.RDONLY | O.CLOEXEC);
 *   dup2(devNullFd, 0);
 * }
 * ```
 */
export function dup2(oldFd: number, newFd: number): number {
  checkInt32("dup2", "oldFd", oldFd);
  checkInt32("dup2", "newFd", newFd);
  let r: number;
  do r = libc.dup2(oldFd, newFd); while (interrupted(r));
  if (r >= 0) return r;
  throw new ErrnoError("dup2", errnoCell[0]!, { detail: `${oldFd} -> ${newFd}` });
}

/**
 * `kill(2)`: send signal number `signal` (see `SIG` in `constants.ts`) to
 * `pid`. Signal 0 only checks that the process exists (throws `ESRCH` when
 * it does not).
 *
 * @example
 * ```ts
 * import { kill } from "@ffinet/ffinet/ffi";
 * kill(Deno.pid, 0); // this process exists
 * ```
 */
export function kill(pid: number, signal: number): void {
  checkInt32("kill", "pid", pid);
  checkInteger("kill", "signal", signal, 0, SIGNAL_MAX);
  if (libc.kill(pid, signal) < 0) {
    throw new ErrnoError("kill", errnoCell[0]!, { detail: `pid ${pid}, signal ${signal}` });
  }
}

/**
 * `pidfd_open(2)`: a close-on-exec fd that refers to process `pid`; it
 * becomes readable when the process exits. Throws an `Error` when the
 * loaded glibc has no `pidfd_open` (it needs glibc 2.36 or newer).
 *
 * @example
 * ```ts
 * import { pidfdOpen } from "@ffinet/ffinet/ffi";
 * import { sys } from "@ffinet/ffinet/ffi";
 * sys.close(pidfdOpen(Deno.pid));
 * ```
 */
export function pidfdOpen(pid: number, flags = 0): number {
  const fn = libc.pidfd_open;
  if (fn === null) {
    throw new Error(
      "Cannot pidfd_open: this glibc has no pidfd_open (it needs glibc 2.36 or newer)",
    );
  }
  checkInteger("pidfd_open", "pid", pid, 1, INT32_MAX);
  checkInteger("pidfd_open", "flags", flags, 0, 0xffff_ffff);
  const r = fn(pid, flags);
  if (r < 0) throw new ErrnoError("pidfd_open", errnoCell[0]!, { detail: `pid ${pid}` });
  return r;
}

/** A resource limit; `Infinity` stands for `RLIM_INFINITY`. */
export interface ResourceLimit {
  /** The soft (current) limit. */
  soft: number;
  /** The hard (maximum) limit. */
  hard: number;
}

/**
 * `getrlimit(2)`: the soft and hard limits of `resource` (see `RLIMIT` in
 * `constants.ts`), with `RLIM_INFINITY` as `Infinity`.
 *
 * @example
 * ```ts
 * import { getrlimit } from "@ffinet/ffinet/ffi";
 * import { RLIMIT } from "@ffinet/ffinet/ffi";
 * const { soft, hard } = getrlimit(RLIMIT.NOFILE);
 * ```
 */
export function getrlimit(resource: number): ResourceLimit {
  checkInteger("getrlimit", "resource", resource, 0, INT32_MAX);
  const rlim = new BigUint64Array(2);
  if (libc.getrlimit(resource, rlim) < 0) {
    throw new ErrnoError("getrlimit", errnoCell[0]!, { detail: `resource ${resource}` });
  }
  const toNumber = (v: bigint) => v === RLIM_INFINITY ? Infinity : Number(v);
  return { soft: toNumber(rlim[0]!), hard: toNumber(rlim[1]!) };
}

/**
 * `setrlimit(2)`: set the soft and hard limits of `resource` (`Infinity`
 * means `RLIM_INFINITY`). Throws `RangeError` for a negative or fractional
 * limit; raising the hard limit needs `CAP_SYS_RESOURCE` (`EPERM`).
 *
 * @example
 * ```ts
 * import { getrlimit, setrlimit } from "@ffinet/ffinet/ffi";
 * import { RLIMIT } from "@ffinet/ffinet/ffi";
 * const limit = getrlimit(RLIMIT.NOFILE);
 * setrlimit(RLIMIT.NOFILE, { soft: limit.hard, hard: limit.hard });
 * ```
 */
export function setrlimit(resource: number, limit: ResourceLimit): void {
  checkInteger("setrlimit", "resource", resource, 0, INT32_MAX);
  const toBig = (v: number, which: string): bigint => {
    if (v === Infinity) return RLIM_INFINITY;
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new RangeError(`Cannot setrlimit: ${which} limit ${v} is not a non-negative integer`);
    }
    return BigInt(v);
  };
  const rlim = new BigUint64Array([toBig(limit.soft, "soft"), toBig(limit.hard, "hard")]);
  if (libc.setrlimit(resource, rlim) < 0) {
    throw new ErrnoError("setrlimit", errnoCell[0]!, {
      detail: `resource ${resource}, soft ${limit.soft}, hard ${limit.hard}`,
    });
  }
}

/**
 * `open(2)`: open `path` with `O_*` flags (see `O` in `constants.ts`) and
 * creation `mode`, returning the fd. Retried on `EINTR`. Pass `O.CLOEXEC`
 * unless the fd is meant to survive `exec`.
 *
 * @example
 * ```ts
 * import { openFile } from "@ffinet/ffinet/ffi";
 * import { O } from "@ffinet/ffinet/ffi";
 * import { sys } from "@ffinet/ffinet/ffi";
 * sys.close(openFile("/dev/null", O.RDONLY | O.CLOEXEC));
 * ```
 */
export function openFile(path: string, flags: number, mode = 0o666): number {
  checkInt32("open", "flags", flags);
  checkInteger("open", "mode", mode, 0, OPEN_MODE_MAX);
  const p = cString("open", path);
  let r: number;
  do r = libc.open(p, flags, mode); while (interrupted(r));
  if (r >= 0) return r;
  throw new ErrnoError("open", errnoCell[0]!, { detail: path });
}

/**
 * `flock(2)`: apply or remove an advisory lock (`LOCK.SH`, `LOCK.EX`,
 * `LOCK.UN`, optionally `| LOCK.NB`). Returns `true` when done, and `false`
 * when `LOCK.NB` was given and another open file description holds a
 * conflicting lock (`EWOULDBLOCK`). Retried on `EINTR`.
 *
 * @example
 * ```ts
 * import { flock, openFile } from "@ffinet/ffinet/ffi";
 * import { LOCK, O } from "@ffinet/ffinet/ffi";
 * import { sys } from "@ffinet/ffinet/ffi";
 * const dir = Deno.makeTempDirSync();
 * const pidFileFd = openFile(`${dir}/app.pid`, O.RDWR | O.CREAT | O.CLOEXEC, 0o644);
 * if (!flock(pidFileFd, LOCK.EX | LOCK.NB)) throw new Error("already running");
 * sys.close(pidFileFd);
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export function flock(fd: number, operation: number): boolean {
  checkFd("flock", fd);
  checkInt32("flock", "operation", operation);
  let r: number;
  do r = libc.flock(fd, operation); while (interrupted(r));
  if (r >= 0) return true;
  r = errnoCell[0]!;
  if (r === EAGAIN && (operation & LOCK.NB) !== 0) return false; // EWOULDBLOCK
  throw new ErrnoError("flock", r, { detail: `fd ${fd}` });
}

/**
 * `unlink(2)`: remove a file name.
 *
 * @example
 * ```ts
 * import { unlink } from "@ffinet/ffinet/ffi";
 * const dir = Deno.makeTempDirSync();
 * Deno.writeTextFileSync(`${dir}/mydaemon.pid`, "1\n");
 * unlink(`${dir}/mydaemon.pid`);
 * Deno.removeSync(dir);
 * ```
 */
export function unlink(path: string): void {
  if (libc.unlink(cString("unlink", path)) < 0) {
    throw new ErrnoError("unlink", errnoCell[0]!, { detail: path });
  }
}

/**
 * `getuid(2)`: the real user id.
 *
 * @example
 * ```ts
 * import { getuid } from "@ffinet/ffinet/ffi";
 * const isRoot = getuid() === 0;
 * ```
 */
export function getuid(): number {
  return libc.getuid();
}

/**
 * `setuid(2)`: set the user id (as root: all of real, effective and saved).
 * Note that glibc applies it to every thread of the process. Throws
 * `RangeError` (before the call) unless `uid` is an integer from 0 to
 * 4294967294: `NaN`, fractions and 2^32 are never wrapped to uid 0.
 *
 * @example
 * ```ts
 * import { setgid, setgroups, setuid } from "@ffinet/ffinet/ffi";
 * // As root, after binding privileged ports: become nobody for good.
 * export function dropPrivileges(): void {
 *   setgroups([]);
 *   setgid(65534);
 *   setuid(65534); // drop root last
 * }
 * ```
 */
export function setuid(uid: number): void {
  checkInteger("setuid", "uid", uid, 0, ID_MAX);
  if (libc.setuid(uid) < 0) {
    throw new ErrnoError("setuid", errnoCell[0]!, { detail: `uid ${uid}` });
  }
}

/**
 * `setgid(2)`: set the group id. Throws `RangeError` (before the call)
 * unless `gid` is an integer from 0 to 4294967294.
 *
 * @example
 * ```ts
 * import { setgid } from "@ffinet/ffinet/ffi";
 * export function becomeNogroup(): void {
 *   setgid(65534);
 * }
 * ```
 */
export function setgid(gid: number): void {
  checkInteger("setgid", "gid", gid, 0, ID_MAX);
  if (libc.setgid(gid) < 0) {
    throw new ErrnoError("setgid", errnoCell[0]!, { detail: `gid ${gid}` });
  }
}

/**
 * `setgroups(2)`: set the supplementary group ids (`[]` clears them; needs
 * `CAP_SETGID`). Throws `RangeError` (before the call) for more than 65536
 * ids or an id that is not an integer from 0 to 4294967294.
 *
 * @example
 * ```ts
 * import { setgroups } from "@ffinet/ffinet/ffi";
 * export function dropSupplementaryGroups(): void {
 *   setgroups([]);
 * }
 * ```
 */
export function setgroups(gids: readonly number[]): void {
  if (gids.length > NGROUPS_MAX) {
    throw new RangeError(
      `Cannot setgroups: ${gids.length} groups exceed NGROUPS_MAX (${NGROUPS_MAX})`,
    );
  }
  const list = Uint32Array.from(
    gids,
    (g, i) => checkInteger("setgroups", `gids[${i}]`, g, 0, ID_MAX),
  );
  if (libc.setgroups(BigInt(list.length), list) < 0) {
    throw new ErrnoError("setgroups", errnoCell[0]!, { detail: `[${gids.join(", ")}]` });
  }
}

/**
 * `ftruncate(2)`, retried on EINTR; throws an {@linkcode ErrnoError}
 * (with `detail`, e.g. the path, in its message).
 *
 * @example
 * ```ts
 * import { ftruncate, openFile } from "@ffinet/ffinet/ffi";
 * import { O } from "@ffinet/ffinet/ffi";
 * import { sys } from "@ffinet/ffinet/ffi";
 * const dir = Deno.makeTempDirSync();
 * const fd = openFile(`${dir}/app.pid`, O.RDWR | O.CREAT | O.CLOEXEC, 0o644);
 * ftruncate(fd, 0, `${dir}/app.pid`);
 * sys.close(fd);
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export function ftruncate(fd: number, length: number, detail?: string): void {
  checkFd("ftruncate", fd);
  checkInteger("ftruncate", "length", length, 0, Number.MAX_SAFE_INTEGER);
  const size = BigInt(length);
  let r: number;
  do r = libc.ftruncate(fd, size); while (interrupted(r));
  if (r < 0) {
    throw new ErrnoError("ftruncate", errnoCell[0]!, detail === undefined ? {} : { detail });
  }
}

/**
 * Read a whole file through libc (up to 256 MiB; more is a RangeError,
 * never a truncated text): for `/proc/<pid>/...` and `/proc/sys/...` files,
 * which Deno refuses to read without `--allow-all`.
 *
 * @example
 * ```ts
 * import { readProcFile } from "@ffinet/ffinet/ffi";
 * const status = readProcFile("/proc/self/status");
 * ```
 */
export function readProcFile(path: string): string {
  const fd = openFile(path, O.RDONLY | O.CLOEXEC);
  try {
    let buf = new Uint8Array(PROC_FILE_CHUNK);
    let len = 0;
    for (;;) {
      if (len === buf.byteLength) {
        if (buf.byteLength >= PROC_FILE_MAX) {
          throw new RangeError(`Cannot read ${path}: larger than ${PROC_FILE_MAX} bytes`);
        }
        const bigger = new Uint8Array(buf.byteLength * 2);
        bigger.set(buf);
        buf = bigger;
      }
      const n = read(fd, buf.subarray(len));
      if (n < 0) throw new ErrnoError("read", -n, { detail: path });
      if (n === 0) return new TextDecoder().decode(buf.subarray(0, len));
      len += n;
    }
  } finally {
    close(fd);
  }
}
