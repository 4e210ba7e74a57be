/**
 * Starting and reaping child processes without `fork()` and without
 * `Deno.Command`: `posix_spawn(3)` through FFI (glibc runs it with
 * `clone(CLONE_VM | CLONE_VFORK)`, which is safe from a multi-threaded
 * process such as Deno), plus pidfds to watch, signal and reap the child.
 *
 * - {@linkcode spawn}: extra fds mapped to 3, 4, … (the socket-activation
 *   layout), stdin from `/dev/null`, stdout/stderr to pipes, inherited or
 *   `/dev/null`, a new session (`POSIX_SPAWN_SETSID`), an empty signal mask
 *   (`POSIX_SPAWN_SETSIGMASK`) and default dispositions for every catchable
 *   signal (`POSIX_SPAWN_SETSIGDEF`). Every other fd is closed in the child
 *   (`posix_spawn_file_actions_addclosefrom_np`), so nothing leaks even from
 *   fds that are not close-on-exec. Returns the pid and a pidfd.
 * - {@linkcode waitPidfd}: `waitid(P_PIDFD, pidfd, WEXITED | WNOHANG)`.
 *   Deno reaps only the children of `Deno.Command`: a child started here
 *   stays a zombie until it is reaped with this (never `waitpid(-1)`).
 * - {@linkcode pidfdSendSignal}, {@linkcode pidfdOpenAny} (with a raw
 *   `syscall` when libc lacks `pidfd_open`).
 * - {@linkcode unblockSignals} / {@linkcode blockedSignals}: the calling
 *   thread's signal mask (`pthread_sigmask`).
 * - {@linkcode fdHungUp}: `poll(2)` with timeout 0, for a lifeline pipe.
 *
 * @example
 * ```ts
 * import { spawn, waitPidfd } from "./spawn.ts";
 * import { sys } from "@ffinet/ffinet/ffi";
 * const child = spawn({ path: "/bin/true", args: [], env: {} });
 * let exit = waitPidfd(child.pidfd);
 * while (exit === null) {
 *   await new Promise((r) => setTimeout(r, 5));
 *   exit = waitPidfd(child.pidfd);
 * }
 * sys.close(child.pidfd);
 * console.log(exit.code); // 0
 * ```
 *
 * @module
 */
import { EINTR, errnoCell, ErrnoError } from "./errno.ts";
import { F, O } from "./constants.ts";
import { libc } from "./libc.ts";
import { close, fcntl, pipe2 } from "./syscalls.ts";

const encoder = new TextEncoder();

/** `POSIX_SPAWN_*` flags (glibc values). */
const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const POSIX_SPAWN_SETSID = 0x80;
/** `sizeof(posix_spawnattr_t)` is 336 and `sizeof(posix_spawn_file_actions_t)` 80 on glibc x86_64/aarch64; room to spare. */
const ATTR_SIZE = 512;
const FILE_ACTIONS_SIZE = 256;
/** `sizeof(sigset_t)` in glibc (1024 bits). */
const SIGSET_SIZE = 128;
/** `sizeof(siginfo_t)`. */
const SIGINFO_SIZE = 128;
const P_PIDFD = 3;
const WEXITED = 4;
const WNOHANG = 1;
const CLD_EXITED = 1;
const SIG_UNBLOCK = 1;
const SIG_BLOCK = 0;
const SYS_PIDFD_OPEN = 434n; // the same number on x86_64 and aarch64
const SYS_PIDFD_SEND_SIGNAL = 424n;
const POLLIN = 0x1;
const POLLERR = 0x8;
const POLLHUP = 0x10;
const POLLNVAL = 0x20;
/** The highest signal number (`_NSIG - 1`). */
const MAX_SIGNAL = 64;

/** Linux signal numbers (x86_64 and aarch64 share them), by Deno's names. */
export const SIGNAL_NUMBERS: Readonly<Record<string, number>> = Object.freeze({
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
  SIGSTKFLT: 16,
  SIGCHLD: 17,
  SIGCONT: 18,
  SIGSTOP: 19,
  SIGTSTP: 20,
  SIGTTIN: 21,
  SIGTTOU: 22,
  SIGURG: 23,
  SIGXCPU: 24,
  SIGXFSZ: 25,
  SIGVTALRM: 26,
  SIGPROF: 27,
  SIGWINCH: 28,
  SIGIO: 29,
  SIGPWR: 30,
  SIGSYS: 31,
});

/**
 * The number of a signal given by name (`"SIGTERM"`) or number. Throws
 * `RangeError` for an unknown name or a number outside 0..64 (0: no signal,
 * only an existence check for {@linkcode pidfdSendSignal}).
 *
 * @example
 * ```ts
 * import { signalNumber } from "./spawn.ts";
 * signalNumber("SIGTERM"); // 15
 * ```
 */
export function signalNumber(signal: Deno.Signal | number): number {
  if (typeof signal === "number") {
    if (!Number.isInteger(signal) || signal < 0 || signal > MAX_SIGNAL) {
      throw new RangeError(`Cannot use signal ${signal}: not a signal number from 0 to 64`);
    }
    return signal;
  }
  // Own names only: "toString" or "__proto__" are not signals.
  const n = typeof signal === "string" && Object.hasOwn(SIGNAL_NUMBERS, signal)
    ? SIGNAL_NUMBERS[signal]!
    : undefined;
  if (n === undefined) throw new RangeError(`Cannot use signal ${String(signal)}: unknown signal`);
  return n;
}

/**
 * The Deno name of a signal number (`15` → `"SIGTERM"`), or null for a
 * real-time or unknown one.
 *
 * @example
 * ```ts
 * import { signalName } from "./spawn.ts";
 * signalName(9); // "SIGKILL"
 * ```
 */
export function signalName(signal: number): Deno.Signal | null {
  for (const [name, n] of Object.entries(SIGNAL_NUMBERS)) {
    if (n === signal) return name as Deno.Signal;
  }
  return null;
}

/** Where a child's stdout or stderr goes. */
export type SpawnOutput = "inherit" | "null" | "piped";

/** Options for {@linkcode spawn}. */
export interface SpawnOptions {
  /** The program: a path with a `/`, or a name looked up in `PATH` of `env` (else this process's). */
  path: string;
  /** The arguments after `argv[0]`. */
  args: readonly string[];
  /** `argv[0]` (default `path`). */
  argv0?: string;
  /** The child's whole environment (nothing is inherited implicitly). */
  env: Readonly<Record<string, string>>;
  /** Fds of this process to give the child as fd 3, 4, … in order. */
  fds?: readonly number[];
  /** stdout (default `"inherit"`). A `"piped"` read end is non-blocking and close-on-exec. */
  stdout?: SpawnOutput;
  /** stderr (default `"inherit"`). */
  stderr?: SpawnOutput;
  /** The child's working directory (default this process's). */
  cwd?: string;
  /** Start the child in a new session, `POSIX_SPAWN_SETSID` (default true). */
  setsid?: boolean;
}

/** A child started by {@linkcode spawn}. */
export interface SpawnedChild {
  /** Its pid. */
  pid: number;
  /** A close-on-exec pidfd for it: readable once it exited. Close it after reaping. */
  pidfd: number;
  /** The read end of its stdout pipe (`"piped"`), else null. Close it when done. */
  stdout: number | null;
  /** The read end of its stderr pipe (`"piped"`), else null. */
  stderr: number | null;
}

/** How a reaped child ended. */
export interface ChildExit {
  /** The exit code, or 128 + the signal number when a signal killed it. */
  code: number;
  /** The signal that killed it, or null. */
  signal: Deno.Signal | null;
  /** The signal number that killed it, or null. */
  signalNumber: number | null;
}

function cString(what: string, s: string): string {
  if (typeof s !== "string") throw new TypeError(`Cannot spawn: ${what} is not a string`);
  if (s.includes("\0")) throw new TypeError(`Cannot spawn: ${what} contains a NUL byte`);
  return s;
}

/** NUL-terminated strings packed in one buffer, and a NULL-terminated array of pointers to them. */
function stringArray(strings: readonly string[]): { data: Uint8Array; ptrs: BigUint64Array } {
  const parts = strings.map((s) => encoder.encode(s + "\0"));
  const data = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0) || 1);
  const ptrs = new BigUint64Array(strings.length + 1);
  // `ptrs` holds raw addresses into `data`, so its bytes must never move:
  // V8 keeps a small typed array on its movable heap, and the BigInt
  // arithmetic below (or any allocation before posix_spawn) can run a
  // scavenge that moves it, leaving posix_spawn to read stale memory.
  // Reading `.buffer` moves the bytes to a fixed off-heap store first.
  void data.buffer;
  const base = Deno.UnsafePointer.value(Deno.UnsafePointer.of(data));
  let offset = 0;
  parts.forEach((p, i) => {
    data.set(p, offset);
    ptrs[i] = BigInt(base) + BigInt(offset);
    offset += p.byteLength;
  });
  ptrs[strings.length] = 0n;
  return { data, ptrs };
}

function resolvePath(path: string, env: Readonly<Record<string, string>>): string {
  if (path.includes("/")) return path;
  const search = env.PATH ?? Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin";
  for (const dir of search.split(":")) {
    if (dir === "") continue;
    const candidate = `${dir}/${path}`;
    try {
      if (Deno.statSync(candidate).isFile) return candidate;
    } catch { /* not there */ }
  }
  throw new Error(`Cannot spawn ${path}: not found in PATH`);
}

/** A sigset_t with the given signal numbers set. */
function sigset(call: string, signals: Iterable<number>): Uint8Array {
  const set = new Uint8Array(SIGSET_SIZE);
  for (const s of signals) {
    // Signal 0 is no signal: its bit would be byte -1 of the set.
    if (!Number.isInteger(s) || s < 1 || s > MAX_SIGNAL) {
      throw new RangeError(`Cannot ${call}: signal ${s} is not a signal number from 1 to 64`);
    }
    set[(s - 1) >> 3]! |= 1 << ((s - 1) & 7);
  }
  return set;
}

function checkFd(call: string, fd: number): void {
  if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) {
    throw new RangeError(`Cannot ${call}: ${fd} is not a file descriptor`);
  }
}

const OUTPUT_MODES: readonly SpawnOutput[] = ["inherit", "null", "piped"];

/** A valid stdout/stderr option, default `"inherit"`; a `TypeError` naming the option otherwise. */
function outputMode(name: string, mode: SpawnOutput | undefined): SpawnOutput {
  if (mode === undefined) return "inherit";
  if (!OUTPUT_MODES.includes(mode)) {
    throw new TypeError(
      `Cannot spawn: ${name} ${JSON.stringify(mode)} is not "inherit", "null" or "piped"`,
    );
  }
  return mode;
}

function check(call: string, r: number): void {
  if (r !== 0) throw new ErrnoError(call, r);
}

/** `fcntl(F_DUPFD_CLOEXEC)`: a close-on-exec copy of `fd` numbered `min` or above. */
function dupAbove(fd: number, min: number): number {
  const r = fcntl(fd, F.DUPFD_CLOEXEC, min);
  if (r < 0) throw new ErrnoError("fcntl", -r, { detail: `F_DUPFD_CLOEXEC of fd ${fd}` });
  return r;
}

function makePipe(): [number, number] {
  const fds = new Int32Array(2);
  const r = pipe2(fds, O.CLOEXEC);
  if (r < 0) throw new ErrnoError("pipe2", -r);
  // Only the parent's read end is non-blocking: the child's stdout/stderr
  // must block (Deno's console.log throws EAGAIN on a full non-blocking pipe).
  const s = fcntl(fds[0]!, F.SETFL, O.NONBLOCK);
  if (s < 0) {
    close(fds[0]!);
    close(fds[1]!);
    throw new ErrnoError("fcntl", -s, { detail: "F_SETFL O_NONBLOCK on a pipe" });
  }
  return [fds[0]!, fds[1]!];
}

/**
 * Start a process with `posix_spawn(3)`. See the module documentation for
 * what the child gets. Throws `TypeError` for a NUL byte in the path, an
 * argument or the environment, `RangeError` for an invalid fd, and an
 * {@linkcode ErrnoError} naming the call when spawning fails (`ENOENT` for
 * a missing program is reported by `posix_spawn` itself).
 *
 * @example
 * ```ts
 * import { spawn, waitPidfd } from "./spawn.ts";
 * import { sys } from "@ffinet/ffinet/ffi";
 * const c = spawn({ path: "sh", args: ["-c", "exit 3"], env: { PATH: "/usr/bin:/bin" } });
 * while (waitPidfd(c.pidfd) === null) await new Promise((r) => setTimeout(r, 5));
 * sys.close(c.pidfd);
 * ```
 */
export function spawn(options: SpawnOptions): SpawnedChild {
  // Validate everything before taking any resource.
  const path = cString("the path", resolvePath(cString("the path", options.path), options.env));
  const argv = [options.argv0 ?? options.path, ...options.args].map((a, i) =>
    cString(`argument ${i}`, a)
  );
  const envp = Object.entries(options.env).map(([k, v]) => {
    if (k === "" || k.includes("=")) {
      throw new TypeError(`Cannot spawn: invalid environment variable name ${JSON.stringify(k)}`);
    }
    return `${cString(`environment variable ${k}`, k)}=${cString(`the value of ${k}`, v)}`;
  });
  const fds = options.fds ?? [];
  fds.forEach((fd, i) => {
    if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) {
      throw new RangeError(`Cannot spawn: fds[${i}] ${fd} is not a file descriptor`);
    }
  });
  const cwd = options.cwd === undefined ? undefined : cString("the working directory", options.cwd);
  if (cwd !== undefined && libc.posix_spawn_file_actions_addchdir_np === null) {
    throw new Error("Cannot spawn: this glibc cannot set the child's working directory");
  }
  const closeFrom = libc.posix_spawn_file_actions_addclosefrom_np;
  if (closeFrom === null) {
    throw new Error("Cannot spawn: this glibc has no posix_spawn_file_actions_addclosefrom_np");
  }
  const stdoutMode = outputMode("stdout", options.stdout);
  const stderrMode = outputMode("stderr", options.stderr);

  const owned: number[] = []; // closed in this process whatever happens
  let outRead: number | null = null;
  let errRead: number | null = null;
  const attr = new Uint8Array(ATTR_SIZE);
  const actions = new Uint8Array(FILE_ACTIONS_SIZE);
  let attrInit = false;
  let actionsInit = false;
  try {
    // Copies of the mapped fds above every target, so no dup2 overwrites a
    // source another dup2 still needs.
    const top = 3 + fds.length;
    const sources = fds.map((fd) => {
      const copy = dupAbove(fd, top);
      owned.push(copy);
      return copy;
    });
    let outWrite = -1;
    let errWrite = -1;
    if (stdoutMode === "piped") {
      const [r, w] = makePipe();
      outRead = r;
      owned.push(w);
      outWrite = dupAbove(w, top);
      owned.push(outWrite);
    }
    if (stderrMode === "piped") {
      const [r, w] = makePipe();
      errRead = r;
      owned.push(w);
      errWrite = dupAbove(w, top);
      owned.push(errWrite);
    }

    check("posix_spawnattr_init", libc.posix_spawnattr_init(attr));
    attrInit = true;
    let flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    if (options.setsid ?? true) flags |= POSIX_SPAWN_SETSID;
    check("posix_spawnattr_setflags", libc.posix_spawnattr_setflags(attr, flags));
    check("posix_spawnattr_setsigmask", libc.posix_spawnattr_setsigmask(attr, sigset("spawn", [])));
    const catchable: number[] = [];
    for (let s = 1; s <= MAX_SIGNAL; s++) if (s !== 9 && s !== 19) catchable.push(s);
    check(
      "posix_spawnattr_setsigdefault",
      libc.posix_spawnattr_setsigdefault(attr, sigset("spawn", catchable)),
    );

    check("posix_spawn_file_actions_init", libc.posix_spawn_file_actions_init(actions));
    actionsInit = true;
    const devNull = encoder.encode("/dev/null\0");
    check(
      "posix_spawn_file_actions_addopen",
      libc.posix_spawn_file_actions_addopen(actions, 0, devNull, O.RDONLY, 0),
    );
    const output = (mode: SpawnOutput, target: number, pipeEnd: number) => {
      if (mode === "piped") {
        check(
          "posix_spawn_file_actions_adddup2",
          libc.posix_spawn_file_actions_adddup2(actions, pipeEnd, target),
        );
      } else if (mode === "null") {
        check(
          "posix_spawn_file_actions_addopen",
          libc.posix_spawn_file_actions_addopen(actions, target, devNull, O.WRONLY, 0),
        );
      }
    };
    output(stdoutMode, 1, outWrite);
    output(stderrMode, 2, errWrite);
    sources.forEach((src, i) => {
      check(
        "posix_spawn_file_actions_adddup2",
        libc.posix_spawn_file_actions_adddup2(actions, src, 3 + i),
      );
    });
    check("posix_spawn_file_actions_addclosefrom_np", closeFrom(actions, top));
    const cwdBytes = cwd === undefined ? null : encoder.encode(cwd + "\0");
    if (cwdBytes !== null) {
      check(
        "posix_spawn_file_actions_addchdir_np",
        libc.posix_spawn_file_actions_addchdir_np!(actions, cwdBytes),
      );
    }

    const pathBytes = encoder.encode(path + "\0");
    const a = stringArray(argv);
    const e = stringArray(envp);
    const pidOut = new Int32Array(1);
    const r = libc.posix_spawn(pidOut, pathBytes, actions, attr, a.ptrs, e.ptrs);
    // Keep the string buffers alive (and referenced) until after the call.
    if (a.data.byteLength === 0 || e.data.byteLength === 0) throw new Error("unreachable");
    if (r !== 0) throw new ErrnoError("posix_spawn", r, { detail: path });
    const pid = pidOut[0]!;
    let pidfd: number;
    try {
      pidfd = pidfdOpenAny(pid);
    } catch (err) {
      // Cannot watch it: kill and reap it rather than leave an orphan.
      libc.kill(pid, 9);
      const info = new Uint8Array(SIGINFO_SIZE);
      libc.waitid(1, /* P_PID */ pid, info, WEXITED);
      throw err;
    }
    const child: SpawnedChild = { pid, pidfd, stdout: outRead, stderr: errRead };
    outRead = errRead = null; // handed over
    return child;
  } finally {
    if (actionsInit) libc.posix_spawn_file_actions_destroy(actions);
    if (attrInit) libc.posix_spawnattr_destroy(attr);
    for (const fd of owned) close(fd);
    if (outRead !== null) close(outRead);
    if (errRead !== null) close(errRead);
  }
}

/**
 * `pidfd_open(2)`: a close-on-exec pidfd for `pid`, through glibc's
 * wrapper when it has one, else `syscall(SYS_pidfd_open)`.
 *
 * @example
 * ```ts
 * import { pidfdOpenAny } from "./spawn.ts";
 * import { sys } from "@ffinet/ffinet/ffi";
 * sys.close(pidfdOpenAny(Deno.pid));
 * ```
 */
export function pidfdOpenAny(pid: number): number {
  // pid_t is an int: 2^32 + n would wrap to pid n, another process.
  if (!Number.isInteger(pid) || pid <= 0 || pid > 0x7fffffff) {
    throw new RangeError(`Cannot pidfd_open: pid ${pid} is not an integer from 1 to 2147483647`);
  }
  const fn = libc.pidfd_open;
  const r = fn !== null
    ? fn(pid, 0)
    : Number(libc.syscall(SYS_PIDFD_OPEN, BigInt(pid), 0n, 0n, 0n));
  if (r < 0) throw new ErrnoError("pidfd_open", errnoCell[0]!, { detail: `pid ${pid}` });
  return r;
}

/**
 * `pidfd_send_signal(2)`: send `signal` to the process of `pidfd`. Unlike
 * `kill(pid)` it cannot hit a recycled pid. Returns false when the process
 * has already exited (`ESRCH`); throws an {@linkcode ErrnoError} otherwise.
 *
 * @example
 * ```ts
 * import { pidfdSendSignal, spawn, waitPidfd } from "./spawn.ts";
 * import { sys } from "@ffinet/ffinet/ffi";
 * const child = spawn({ path: "sleep", args: ["10"], env: { PATH: "/usr/bin:/bin" } });
 * console.log(pidfdSendSignal(child.pidfd, "SIGTERM")); // true: delivered
 * while (waitPidfd(child.pidfd) === null) await new Promise((r) => setTimeout(r, 5));
 * sys.close(child.pidfd);
 * ```
 */
export function pidfdSendSignal(pidfd: number, signal: Deno.Signal | number): boolean {
  checkFd("pidfd_send_signal", pidfd);
  const sig = signalNumber(signal);
  const fn = libc.pidfd_send_signal;
  const r = fn !== null
    ? fn(pidfd, sig, null, 0)
    : Number(libc.syscall(SYS_PIDFD_SEND_SIGNAL, BigInt(pidfd), BigInt(sig), 0n, 0n));
  if (r === 0) return true;
  const e = errnoCell[0]!;
  if (e === 3 /* ESRCH */) return false;
  throw new ErrnoError("pidfd_send_signal", e, { detail: `pidfd ${pidfd}, signal ${sig}` });
}

/**
 * Reap the child of `pidfd` if it has exited:
 * `waitid(P_PIDFD, pidfd, WEXITED | WNOHANG)`. Returns how it ended, or
 * null while it still runs. Throws an {@linkcode ErrnoError} (`ECHILD`)
 * when it is not this process's child or was reaped already.
 *
 * @example
 * ```ts
 * import { spawn, waitPidfd } from "./spawn.ts";
 * import { sys } from "@ffinet/ffinet/ffi";
 * const child = spawn({ path: "true", args: [], env: { PATH: "/usr/bin:/bin" } });
 * let exit = waitPidfd(child.pidfd); // null while it runs
 * while (exit === null) {
 *   await new Promise((r) => setTimeout(r, 5));
 *   exit = waitPidfd(child.pidfd);
 * }
 * console.log(exit); // { code: 0, signal: null, signalNumber: null }
 * sys.close(child.pidfd);
 * ```
 */
export function waitPidfd(pidfd: number): ChildExit | null {
  checkFd("waitid", pidfd);
  const info = new Uint8Array(SIGINFO_SIZE);
  const view = new DataView(info.buffer);
  for (;;) {
    const r = libc.waitid(P_PIDFD, pidfd, info, WEXITED | WNOHANG);
    if (r === 0) break;
    const e = errnoCell[0]!;
    if (e !== EINTR) throw new ErrnoError("waitid", e, { detail: `pidfd ${pidfd}` });
  }
  if (view.getInt32(16, true) === 0) return null; // si_pid: nothing exited yet
  const code = view.getInt32(8, true);
  const status = view.getInt32(24, true);
  if (code === CLD_EXITED) return { code: status, signal: null, signalNumber: null };
  return { code: 128 + status, signal: signalName(status), signalNumber: status };
}

/**
 * Unblock `signals` (names or numbers) in the calling thread's signal mask
 * (`pthread_sigmask(SIG_UNBLOCK)`): a process started by a parent that
 * blocked SIGTERM would otherwise never see it.
 *
 * @example
 * ```ts
 * import { unblockSignals } from "./spawn.ts";
 * unblockSignals(["SIGTERM", "SIGHUP", "SIGINT"]);
 * ```
 */
export function unblockSignals(signals: readonly (Deno.Signal | number)[]): void {
  const set = sigset("pthread_sigmask", signals.map(signalNumber));
  const r = libc.pthread_sigmask(SIG_UNBLOCK, set, null);
  if (r !== 0) throw new ErrnoError("pthread_sigmask", r);
}

/**
 * Block `signals` in the calling thread's mask (`pthread_sigmask(SIG_BLOCK)`);
 * mostly for tests of {@linkcode unblockSignals}.
 *
 * @example
 * ```ts
 * import { blockSignals, unblockSignals } from "./spawn.ts";
 * blockSignals(["SIGUSR2"]);
 * unblockSignals(["SIGUSR2"]);
 * ```
 */
export function blockSignals(signals: readonly (Deno.Signal | number)[]): void {
  const set = sigset("pthread_sigmask", signals.map(signalNumber));
  const r = libc.pthread_sigmask(SIG_BLOCK, set, null);
  if (r !== 0) throw new ErrnoError("pthread_sigmask", r);
}

/**
 * The signal numbers blocked in the calling thread's mask.
 *
 * @example
 * ```ts
 * import { blockedSignals } from "./spawn.ts";
 * console.log(blockedSignals()); // [] in a plain process
 * ```
 */
export function blockedSignals(): number[] {
  const old = new Uint8Array(SIGSET_SIZE);
  const r = libc.pthread_sigmask(SIG_BLOCK, null, old);
  if (r !== 0) throw new ErrnoError("pthread_sigmask", r);
  const out: number[] = [];
  for (let s = 1; s <= MAX_SIGNAL; s++) {
    if ((old[(s - 1) >> 3]! & (1 << ((s - 1) & 7))) !== 0) out.push(s);
  }
  return out;
}

/**
 * Whether `fd` has hung up or is readable, without waiting
 * (`poll(2)` with timeout 0). For a lifeline pipe whose writer never
 * writes, either one means the writer is gone. Throws
 * {@linkcode ErrnoError} for an fd that is not open (`POLLNVAL`, `EBADF`).
 *
 * @example
 * ```ts
 * import { fdHungUp } from "./spawn.ts";
 * import { pipe } from "@ffinet/ffinet/ffi";
 * import { sys } from "@ffinet/ffinet/ffi";
 * const [r, w] = pipe();
 * fdHungUp(r); // false
 * sys.close(w);
 * fdHungUp(r); // true
 * sys.close(r);
 * ```
 */
export function fdHungUp(fd: number): boolean {
  checkFd("poll", fd);
  const pfd = new Uint8Array(8);
  const view = new DataView(pfd.buffer);
  view.setInt32(0, fd, true);
  view.setInt16(4, POLLIN, true);
  for (;;) {
    const r = libc.poll(pfd, 1n, 0);
    if (r >= 0) break;
    const e = errnoCell[0]!;
    if (e !== EINTR) throw new ErrnoError("poll", e, { detail: `fd ${fd}` });
  }
  const revents = view.getInt16(6, true);
  if ((revents & POLLNVAL) !== 0) throw new ErrnoError("poll", 9, { detail: `fd ${fd}` });
  return (revents & (POLLIN | POLLHUP | POLLERR)) !== 0;
}
