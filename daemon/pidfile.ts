/**
 * {@linkcode PidFile}: a pid file that is created without races and held
 * locked (`flock(2)`) for as long as the daemon runs, and
 * {@linkcode readPidFile} to ask whether the daemon it names is running.
 *
 * The lock, not the pid written in the file, decides whether a daemon is
 * running: the kernel drops it when the holder exits, however it exits, so a
 * pid file left behind by a crash is recognised as stale and taken over, and
 * a recycled pid is never mistaken for the daemon.
 *
 * A pid file must be a regular file owned by the caller, with one link: a
 * symlink, a hard link or another user's file is refused (by
 * {@linkcode readPidFile} too), so nobody can plant a pid for `serve stop`
 * to signal. Default pid files go to {@linkcode runtimeDir}, a directory
 * only the caller can write (see {@linkcode ensurePrivateDir}).
 *
 * @example
 * ```ts
 * import { PidFile, readPidFile } from "@ffinet/ffinet/daemon";
 * const dir = Deno.makeTempDirSync();
 * {
 *   using pidFile = PidFile.acquire(`${dir}/myd.pid`); // throws if already running
 *   console.log(readPidFile(pidFile.path)); // { exists: true, pid: Deno.pid, running: true }
 * }
 * Deno.removeSync(dir, { recursive: true });
 * ```
 *
 * @module
 */
import { LOCK, O } from "../ffi/constants.ts";
import { EAGAIN, ENOENT, Errno, ErrnoError } from "../ffi/errno.ts";
import { flock, ftruncate, getuid, kill, openFile, unlink } from "../ffi/process.ts";
import * as sys from "../ffi/syscalls.ts";

const ELOOP = Errno.ELOOP!;
const EPERM = Errno.EPERM!;
const ESRCH = Errno.ESRCH!;
const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** Read the whole (small) file behind `fd` from its current offset. */
function readAll(fd: number, path: string): string {
  const chunk = new Uint8Array(4096);
  let text = "";
  for (let i = 0; i < 16; i++) { // a pid file is a few bytes: read at most 64 KiB
    const n = sys.read(fd, chunk);
    if (n === 0 || n === -EAGAIN) break;
    if (n < 0) throw new ErrnoError("read", -n, { detail: path });
    text += decoder.decode(chunk.subarray(0, n), { stream: true });
  }
  return text;
}

/** The pid in a pid file's text (`"1234\n"`), or null when there is none. */
function parsePid(text: string): number | null {
  const t = text.trim();
  if (!/^[0-9]{1,10}$/.test(t)) return null;
  const pid = Number(t);
  return pid > 0 && pid <= 0x3fffffff ? pid : null;
}

/** Whether process `pid` exists (`kill(pid, 0)`; EPERM means it does). */
function isAlive(pid: number): boolean {
  try {
    kill(pid, 0);
    return true;
  } catch (e) {
    if (e instanceof ErrnoError && e.errno === EPERM) return true;
    if (e instanceof ErrnoError && e.errno === ESRCH) return false;
    throw e;
  }
}

/** Sleep `ms` without returning to the event loop (acquire is synchronous). */
function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Open `path` without following a symlink, naming ELOOP clearly. */
function openNoFollow(path: string, flags: number, mode: number, action: string): number {
  try {
    return openFile(path, flags | O.NOFOLLOW | O.CLOEXEC | O.NONBLOCK | O.NOCTTY, mode);
  } catch (e) {
    if (e instanceof ErrnoError && e.errno === ELOOP) {
      throw new Error(
        `Cannot ${action}: ${path} is a symbolic link (refusing to follow it)`,
        { cause: e },
      );
    }
    throw e;
  }
}

/** Refuse anything at `path` that is not a plain regular file. */
function checkPlainFile(path: string, action: string): Deno.FileInfo | null {
  let info: Deno.FileInfo;
  try {
    info = Deno.lstatSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  if (info.isSymlink) {
    throw new Error(`Cannot ${action}: ${path} is a symbolic link (refusing to follow it)`);
  }
  if (!info.isFile) throw new Error(`Cannot ${action}: ${path} is not a regular file`);
  checkOwner(path, info, action);
  if ((info.nlink ?? 1) > 1) {
    throw new Error(`Cannot ${action}: ${path} has ${info.nlink} hard links (refusing to use it)`);
  }
  return info;
}

/** The caller's uid. */
function callerUid(): number {
  return getuid(); // through libc: Deno.uid() needs --allow-sys
}

/**
 * Refuse a file not owned by the caller: another user could have planted it
 * (e.g. naming a victim's pid for `serve stop` to signal).
 */
function checkOwner(path: string, info: Deno.FileInfo, action: string): void {
  const uid = callerUid();
  if (info.uid !== null && info.uid !== uid) {
    throw new Error(
      `Cannot ${action}: ${path} is owned by uid ${info.uid}, not by uid ${uid} (refusing to use it)`,
    );
  }
}

/**
 * Thrown by {@linkcode PidFile.acquire} when another process holds the pid
 * file's lock. The message reads
 * `Cannot start: already running with pid 1234 (pid file /run/myd.pid)`.
 *
 * @example
 * ```ts
 * import { AlreadyRunningError, PidFile } from "@ffinet/ffinet/daemon";
 * function lock(): PidFile | null {
 *   try {
 *     return PidFile.acquire("/run/myd.pid");
 *   } catch (e) {
 *     if (e instanceof AlreadyRunningError) console.error(`pid ${e.pid} is running`);
 *     return null;
 *   }
 * }
 * ```
 */
export class AlreadyRunningError extends Error {
  /** The pid written in the file, or null when it holds none (yet). */
  readonly pid: number | null;
  /** The pid file's path. */
  readonly path: string;

  /** Build the error for `pid` (null when unknown) and `path`. */
  constructor(pid: number | null, path: string) {
    super(
      pid === null
        ? `Cannot start: already running (pid file ${path} is locked)`
        : `Cannot start: already running with pid ${pid} (pid file ${path})`,
    );
    this.name = "AlreadyRunningError";
    this.pid = pid;
    this.path = path;
  }
}

/** Options for {@linkcode PidFile.acquire}. */
export interface PidFileOptions {
  /**
   * The file's permission bits (default `0o600`: no other user can open,
   * and so lock, it). Group- or world-writable bits are refused; an existing
   * file with wider bits is narrowed to these.
   */
  mode?: number;
  /** The pid to write (default `Deno.pid`). */
  pid?: number;
}

/**
 * A locked pid file, held until {@linkcode PidFile.release}.
 *
 * {@linkcode PidFile.acquire} opens the path with
 * `O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC` (a symlink is refused), takes
 * `flock(LOCK_EX | LOCK_NB)` and, once it holds the lock, truncates the file
 * and writes its pid. A file whose lock nobody holds is stale (its process
 * died) and is taken over; {@linkcode PidFile.stalePid} tells which pid it
 * named. After writing, the path is read back: if another process replaced
 * the file in between (it released and unlinked it while this one was
 * opening it), the attempt starts over on the new file.
 *
 * A lock is held by the open file description, so even a second
 * `PidFile.acquire` of the same path in the same process is refused.
 *
 * @example
 * ```ts
 * import { PidFile } from "@ffinet/ffinet/daemon";
 * function run(serve: () => void): void {
 *   const pidFile = PidFile.acquire("/run/myd.pid");
 *   serve();
 *   pidFile.release(); // unlink, then close (which drops the lock)
 * }
 * ```
 */
export class PidFile implements Disposable {
  /** The pid file's path. */
  readonly path: string;
  /** The pid written in it. */
  readonly pid: number;
  /** The pid a stale file named when it was taken over, else null. */
  readonly stalePid: number | null;
  #fd: number;

  private constructor(path: string, pid: number, fd: number, stalePid: number | null) {
    this.path = path;
    this.pid = pid;
    this.#fd = fd;
    this.stalePid = stalePid;
  }

  /**
   * Create (or take over a stale) pid file at `path`, lock it and write the
   * pid. Throws {@linkcode AlreadyRunningError} when another open file
   * description holds its lock, and an `Error` for a symlink, a non-regular
   * file or a file with several hard links at `path`.
   *
   * @example
   * ```ts
   * import { PidFile } from "@ffinet/ffinet/daemon";
   * const dir = Deno.makeTempDirSync();
   * {
   *   using pidFile = PidFile.acquire(`${dir}/myd.pid`, { mode: 0o644 });
   *   console.log(pidFile.path);
   * }
   * Deno.removeSync(dir, { recursive: true });
   * ```
   */
  static acquire(path: string, options: PidFileOptions = {}): PidFile {
    const mode = options.mode ?? 0o600;
    if (!Number.isInteger(mode) || mode < 0 || mode > 0o777 || (mode & 0o022) !== 0) {
      throw new RangeError(
        `Cannot create pid file: mode 0o${
          mode.toString(8)
        } is not a mode without group/world write`,
      );
    }
    const pid = options.pid ?? Deno.pid;
    if (!Number.isInteger(pid) || pid <= 0) {
      throw new RangeError(`Cannot create pid file: ${pid} is not a pid`);
    }
    const text = `${pid}\n`;
    for (let attempt = 0;; attempt++) {
      checkPlainFile(path, "create pid file");
      // O_APPEND: after the content is read, the write still lands at the
      // (truncated) end, which is offset 0; there is no lseek to rewind with.
      const fd = openNoFollow(path, O.RDWR | O.CREAT | O.APPEND, mode, "create pid file");
      let done = false;
      try {
        if (!flock(fd, LOCK.EX | LOCK.NB)) {
          const holder = parsePid(readAll(fd, path));
          // The holder may be a process that locked but has not written yet,
          // or a `readPidFile` probe holding a shared lock for a moment: look
          // again shortly unless the file names a live process.
          if (attempt < 20 && (holder === null || !isAlive(holder))) {
            sys.close(fd);
            done = true; // closed
            pause(5);
            continue;
          }
          throw new AlreadyRunningError(holder, path);
        }
        const stale = parsePid(readAll(fd, path));
        ftruncate(fd, 0, path);
        const bytes = encoder.encode(text);
        const n = sys.write(fd, bytes);
        if (n !== bytes.byteLength) {
          // A full disk (ENOSPC) or quota: leave no empty or partial pid
          // file behind for the next start to trip over. The lock is ours,
          // so the file at `path` is the one this fd wrote.
          try {
            unlink(path);
          } catch { /* gone already */ }
          if (n < 0) throw new ErrnoError("write", -n, { detail: path });
          throw new Error(`Cannot create pid file: short write to ${path}`);
        }
        // Is the file at `path` still the one this fd locked?
        let current: string | null;
        try {
          current = Deno.readTextFileSync(path);
        } catch (e) {
          if (!(e instanceof Deno.errors.NotFound)) throw e;
          current = null;
        }
        if (current !== text) {
          if (attempt >= 20) {
            throw new Error(`Cannot create pid file: ${path} keeps being replaced`);
          }
          sys.close(fd);
          done = true;
          continue;
        }
        const info = checkPlainFile(path, "create pid file");
        if (info !== null && info.mode !== null && (info.mode & 0o777 & ~mode) !== 0) {
          Deno.chmodSync(path, mode);
        }
        done = true;
        return new PidFile(path, pid, fd, stale);
      } finally {
        if (!done) sys.close(fd);
      }
    }
  }

  /**
   * Take over the pid file at `path` from a running process that hands it
   * over (a supervisor upgrade): a new file is created beside it (0600,
   * `O_EXCL`), locked and written, then renamed over `path` in one step, so
   * the path always names a locked file with a live pid. The old holder's
   * {@linkcode PidFile.release} leaves the path alone (it no longer holds
   * its pid). Throws when the file cannot be written (nothing is left
   * behind then).
   *
   * @example
   * ```ts
   * import { PidFile } from "@ffinet/ffinet/daemon";
   * const dir = Deno.makeTempDirSync();
   * const old = PidFile.acquire(`${dir}/d.pid`, { pid: 1 });
   * const next = PidFile.takeOver(`${dir}/d.pid`);
   * old.release(); // the path now holds this process's pid, and stays
   * console.log(Deno.readTextFileSync(`${dir}/d.pid`) === `${Deno.pid}\n`); // true
   * next.release();
   * Deno.removeSync(dir, { recursive: true });
   * ```
   */
  static takeOver(path: string, options: { pid?: number } = {}): PidFile {
    const pid = options.pid ?? Deno.pid;
    if (!Number.isInteger(pid) || pid <= 0) {
      throw new RangeError(`Cannot take over pid file: ${pid} is not a pid`);
    }
    checkPlainFile(path, "take over pid file");
    const temp = `${path}.${pid}.new`;
    const fd = openNoFollow(
      temp,
      O.RDWR | O.CREAT | O.EXCL | O.APPEND,
      0o600,
      "take over pid file",
    );
    let done = false;
    try {
      if (!flock(fd, LOCK.EX | LOCK.NB)) {
        throw new Error(`Cannot take over pid file: ${temp} is locked by another process`);
      }
      const bytes = encoder.encode(`${pid}\n`);
      const n = sys.write(fd, bytes);
      if (n !== bytes.byteLength) {
        if (n < 0) throw new ErrnoError("write", -n, { detail: temp });
        throw new Error(`Cannot take over pid file: short write to ${temp}`);
      }
      Deno.renameSync(temp, path);
      done = true;
      return new PidFile(path, pid, fd, null);
    } finally {
      if (!done) {
        try {
          unlink(temp);
        } catch { /* gone */ }
        sys.close(fd);
      }
    }
  }

  /** The locked fd. Throws once released. */
  get fd(): number {
    if (this.#fd < 0) throw new Error("Cannot use pid file: it is released");
    return this.#fd;
  }

  /** Whether {@linkcode PidFile.release} has run. */
  get released(): boolean {
    return this.#fd < 0;
  }

  /**
   * Remove the pid file (when it still holds this pid) and then close the fd,
   * which drops the lock. Unlinking first means no other process can lock
   * the old file in between and then see it vanish. Idempotent.
   *
   * @example
   * ```ts
   * import type { PidFile } from "@ffinet/ffinet/daemon";
   * function shutdown(pidFile: PidFile): void {
   *   pidFile.release();
   * }
   * ```
   */
  release(): void {
    const fd = this.#fd;
    if (fd < 0) return;
    this.#fd = -1;
    try {
      let current: string | null = null;
      try {
        current = Deno.readTextFileSync(this.path);
      } catch { /* gone or unreadable: nothing of ours to remove */ }
      if (current === `${this.pid}\n`) {
        try {
          unlink(this.path);
        } catch (e) {
          if (!(e instanceof ErrnoError && e.errno === ENOENT)) throw e;
        }
      }
    } finally {
      sys.close(fd);
    }
  }

  /** Same as {@linkcode PidFile.release}. */
  [Symbol.dispose](): void {
    this.release();
  }
}

/** What {@linkcode readPidFile} found. */
export interface PidFileStatus {
  /** Whether a file exists at the path. */
  exists: boolean;
  /** The pid written in it, or null (no file, empty or not a number). */
  pid: number | null;
  /** Whether some process holds the file's lock: the daemon is running. */
  running: boolean;
}

/**
 * Read a pid file without taking it: its pid, and whether the daemon is
 * running, decided by its lock (probed with `flock(LOCK_SH | LOCK_NB)` on a
 * separate, read-only open, released at once), not by whether the pid
 * exists. For `serve status` and `serve stop`.
 *
 * @example
 * ```ts
 * import { readPidFile } from "@ffinet/ffinet/daemon";
 * const { pid, running } = readPidFile("/run/myd.pid");
 * if (running && pid !== null) console.log(`myd runs as pid ${pid}`);
 * ```
 */
export function readPidFile(path: string): PidFileStatus {
  try {
    checkPlainFile(path, "read pid file");
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  let fd: number;
  try {
    fd = openNoFollow(path, O.RDONLY, 0, "read pid file");
  } catch (e) {
    if (e instanceof ErrnoError && e.errno === ENOENT) {
      return { exists: false, pid: null, running: false };
    }
    throw e;
  }
  try {
    const pid = parsePid(readAll(fd, path));
    const free = flock(fd, LOCK.SH | LOCK.NB);
    if (free) flock(fd, LOCK.UN);
    return { exists: true, pid, running: !free };
  } finally {
    sys.close(fd);
  }
}

/**
 * The environment variable that overrides {@linkcode runtimeDir} (tests point
 * it at a private temporary directory).
 *
 * @example
 * ```ts
 * import { RUNTIME_DIR_ENV } from "@ffinet/ffinet/daemon";
 * console.log(RUNTIME_DIR_ENV); // "FFINET_RUNTIME_DIR"
 * ```
 */
export const RUNTIME_DIR_ENV = "FFINET_RUNTIME_DIR";

/**
 * The directory for default pid files and control sockets, where only the
 * caller can write: `$FFINET_RUNTIME_DIR` when set, else `/run/ffinet` for
 * root, `$XDG_RUNTIME_DIR/ffinet` for other users, and `/tmp/ffinet-<uid>`
 * when there is no `XDG_RUNTIME_DIR`. It is not created here; see
 * {@linkcode ensurePrivateDir}.
 *
 * @example
 * ```ts
 * import { runtimeDir } from "@ffinet/ffinet/daemon";
 * console.log(runtimeDir()); // e.g. "/run/ffinet" as root
 * ```
 */
export function runtimeDir(): string {
  const override = Deno.env.get(RUNTIME_DIR_ENV);
  if (override !== undefined && override !== "") return override;
  const uid = callerUid();
  if (uid === 0) return "/run/ffinet";
  const xdg = Deno.env.get("XDG_RUNTIME_DIR");
  if (xdg !== undefined && xdg.startsWith("/")) return `${xdg}/ffinet`;
  return `/tmp/ffinet-${uid}`;
}

/**
 * Create `path` as a directory only the caller can use (mode 0700), or check
 * that the existing one is that: a real directory (not a symlink), owned by
 * the caller, with no group or world bits. Throws `Cannot use runtime
 * directory: <reason>` otherwise; nothing is loosened or taken over.
 *
 * @example
 * ```ts
 * import { ensurePrivateDir } from "@ffinet/ffinet/daemon";
 * const dir = Deno.makeTempDirSync();
 * ensurePrivateDir(`${dir}/ffinet`);
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export function ensurePrivateDir(path: string): void {
  try {
    Deno.mkdirSync(path, { mode: 0o700 });
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) {
      throw new Error(`Cannot use runtime directory: ${path}: ${(e as Error).message}`, {
        cause: e,
      });
    }
  }
  const info = Deno.lstatSync(path);
  if (info.isSymlink) {
    throw new Error(`Cannot use runtime directory: ${path} is a symbolic link`);
  }
  if (!info.isDirectory) {
    throw new Error(`Cannot use runtime directory: ${path} is not a directory`);
  }
  const uid = callerUid();
  if (info.uid !== null && info.uid !== uid) {
    throw new Error(
      `Cannot use runtime directory: ${path} is owned by uid ${info.uid}, not by uid ${uid}`,
    );
  }
  if (info.mode !== null && (info.mode & 0o077) !== 0) {
    throw new Error(
      `Cannot use runtime directory: ${path} has mode 0${
        (info.mode & 0o777).toString(8)
      } (group or others may use it; want 0700)`,
    );
  }
}

/**
 * The default pid file of `name` (`<runtimeDir()>/<name>.pid`), creating the
 * private runtime directory first (see {@linkcode ensurePrivateDir}).
 *
 * @example
 * ```ts
 * import { defaultPidfilePath, RUNTIME_DIR_ENV } from "@ffinet/ffinet/daemon";
 * const dir = Deno.makeTempDirSync();
 * Deno.env.set(RUNTIME_DIR_ENV, dir);
 * console.log(defaultPidfilePath("serve")); // `${dir}/serve.pid`
 * Deno.env.delete(RUNTIME_DIR_ENV);
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export function defaultPidfilePath(name = "serve"): string {
  const dir = runtimeDir();
  ensurePrivateDir(dir);
  return `${dir}/${name}.pid`;
}

/**
 * The control socket beside a pid file: `serve.pid` → `serve.sock`.
 *
 * @example
 * ```ts
 * import { controlSocketPath } from "./pidfile.ts";
 * console.log(controlSocketPath("/run/ffinet/serve.pid")); // "/run/ffinet/serve.sock"
 * ```
 */
export function controlSocketPath(pidfile: string): string {
  return pidfile.endsWith(".pid") ? `${pidfile.slice(0, -4)}.sock` : `${pidfile}.sock`;
}
