/**
 * One child process of a supervisor, started with `posix_spawn` (see
 * `ffi/spawn.ts`) and watched on a {@linkcode Reactor}: its pidfd becomes
 * readable when it exits (then it is reaped with
 * `waitid(P_PIDFD, …, WNOHANG)`), and its stdout/stderr pipes are read
 * there too and split into lines.
 *
 * @example
 * ```ts
 * import { WorkerProcess } from "./worker_process.ts";
 * import { Reactor } from "@ffinet/ffinet/reactor";
 * const reactor = new Reactor();
 * WorkerProcess.spawn(reactor, {
 *   path: "/bin/sh",
 *   args: ["-c", "echo hi"],
 *   env: {},
 *   onLine: (line, stream) => console.log(stream, line),
 *   onExit: (exit) => {
 *     console.log(exit.code); // 0
 *     reactor.stop();
 *   },
 * });
 * await reactor.run();
 * reactor.close();
 * ```
 *
 * @module
 */
import { EAGAIN } from "../../ffi/errno.ts";
import { readProcFile } from "../../ffi/process.ts";
import { type ChildExit, pidfdSendSignal, spawn, waitPidfd } from "../../ffi/spawn.ts";
import { close, read } from "../../ffi/syscalls.ts";
import { Interest } from "../../reactor/interest.ts";
import type { Reactor } from "../../reactor/reactor.ts";
import type { Registration } from "../../reactor/poller.ts";

/** Longest line kept; longer ones are cut (and marked with `…`). */
const MAX_LINE = 8192;
/** Bytes read from one pipe per readiness event, so a flooding worker cannot hog the loop. */
const READ_BUDGET = 64 * 1024;
const CLOCK_TICKS = 100; // sysconf(_SC_CLK_TCK) on Linux

/** Options for {@linkcode WorkerProcess.spawn}. */
export interface WorkerProcessOptions {
  /** The program. */
  path: string;
  /** Its arguments. */
  args: readonly string[];
  /** Its whole environment. */
  env: Readonly<Record<string, string>>;
  /** Fds given to it as 3, 4, … */
  fds?: readonly number[];
  /** Its working directory. */
  cwd?: string;
  /** Start it in its own session (default true). */
  setsid?: boolean;
  /** Called for every line it prints (without the newline). */
  onLine: (line: string, stream: "stdout" | "stderr") => void;
  /** Called once, after it was reaped and its pipes were drained. */
  onExit: (exit: ChildExit) => void;
}

/** CPU and memory of a running process, from `/proc`. */
export interface ProcessUsage {
  /** Resident set size in bytes (`VmRSS`). */
  rssBytes: number;
  /** User + system CPU time in milliseconds. */
  cpuMs: number;
}

/**
 * Read `/proc/<pid>/stat` and `/proc/<pid>/status`: CPU time and RSS, or
 * null when the process is gone.
 *
 * @example
 * ```ts
 * import { processUsage } from "./worker_process.ts";
 * processUsage(Deno.pid)!.rssBytes > 0; // true
 * ```
 */
export function processUsage(pid: number): ProcessUsage | null {
  try {
    const stat = readProcFile(`/proc/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(f[11]) + Number(f[12]); // utime, stime (fields 14, 15)
    const m = /VmRSS:\s+(\d+) kB/.exec(readProcFile(`/proc/${pid}/status`));
    return {
      rssBytes: m === null ? 0 : Number(m[1]) * 1024,
      cpuMs: Math.round(ticks * 1000 / CLOCK_TICKS),
    };
  } catch {
    return null;
  }
}

class LineReader {
  readonly fd: number;
  readonly #stream: "stdout" | "stderr";
  readonly #onLine: (line: string, stream: "stdout" | "stderr") => void;
  readonly #decoder = new TextDecoder();
  readonly #buf = new Uint8Array(16384);
  #rest = "";
  reg: Registration<undefined> | null = null;
  open = true;

  constructor(
    fd: number,
    stream: "stdout" | "stderr",
    onLine: (line: string, stream: "stdout" | "stderr") => void,
  ) {
    this.fd = fd;
    this.#stream = stream;
    this.#onLine = onLine;
  }

  /** Read what is there (up to the budget); returns false at EOF or error. */
  pump(budget = READ_BUDGET): boolean {
    let used = 0;
    while (used < budget) {
      const n = read(this.fd, this.#buf);
      if (n === -EAGAIN) return true;
      if (n <= 0) return false;
      used += n;
      this.#rest += this.#decoder.decode(this.#buf.subarray(0, n), { stream: true });
      let nl: number;
      while ((nl = this.#rest.indexOf("\n")) >= 0) {
        this.#emit(this.#rest.slice(0, nl));
        this.#rest = this.#rest.slice(nl + 1);
      }
      if (this.#rest.length > MAX_LINE) {
        this.#emit(this.#rest.slice(0, MAX_LINE) + "…");
        this.#rest = "";
      }
    }
    return true;
  }

  #emit(line: string): void {
    if (line.endsWith("\r")) line = line.slice(0, -1);
    try {
      this.#onLine(line, this.#stream);
    } catch { /* output handling never breaks the reader */ }
  }

  finish(): void {
    if (!this.open) return;
    this.open = false;
    if (this.reg?.registered) this.reg.deregister();
    this.#rest += this.#decoder.decode();
    if (this.#rest !== "") this.#emit(this.#rest);
    this.#rest = "";
    close(this.fd);
  }
}

/** A spawned, watched worker process. */
export class WorkerProcess {
  /** Its pid. */
  readonly pid: number;
  /** `Date.now()` at spawn. */
  readonly startedAt: number = Date.now();
  readonly #pidfd: number;
  readonly #pidReg: Registration<undefined>;
  readonly #readers: LineReader[] = [];
  #exit: ChildExit | null = null;
  readonly #onExit: (exit: ChildExit) => void;

  private constructor(reactor: Reactor, options: WorkerProcessOptions) {
    const child = spawn({
      path: options.path,
      args: options.args,
      env: options.env,
      fds: options.fds ?? [],
      stdout: "piped",
      stderr: "piped",
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      setsid: options.setsid ?? true,
    });
    this.pid = child.pid;
    this.#pidfd = child.pidfd;
    this.#onExit = options.onExit;
    for (const [fd, stream] of [[child.stdout!, "stdout"], [child.stderr!, "stderr"]] as const) {
      const r = new LineReader(fd, stream, options.onLine);
      r.reg = reactor.register(fd, Interest.READABLE, () => {
        if (!r.pump()) r.finish();
      });
      this.#readers.push(r);
    }
    this.#pidReg = reactor.register(this.#pidfd, Interest.READABLE, () => this.#reap());
  }

  /**
   * Start a process and watch it on `reactor`. Throws what `spawn` throws.
   *
   * @example
   * ```ts
   * import { WorkerProcess, type WorkerProcessOptions } from "./worker_process.ts";
   * import type { Reactor } from "@ffinet/ffinet/reactor";
   * function start(reactor: Reactor, options: WorkerProcessOptions): number {
   *   const p = WorkerProcess.spawn(reactor, options);
   *   return p.pid;
   * }
   * ```
   */
  static spawn(reactor: Reactor, options: WorkerProcessOptions): WorkerProcess {
    return new WorkerProcess(reactor, options);
  }

  /** Whether it has not been reaped yet. @example `p.alive` */
  get alive(): boolean {
    return this.#exit === null;
  }

  /** How it ended, once reaped. @example `p.exit?.code` */
  get exit(): ChildExit | null {
    return this.#exit;
  }

  /**
   * Send a signal through its pidfd (never a recycled pid). Returns false
   * when it has already exited.
   *
   * @example
   * ```ts
   * import type { WorkerProcess } from "./worker_process.ts";
   * function terminate(p: WorkerProcess): boolean {
   *   return p.signal("SIGTERM"); // false when it is gone
   * }
   * ```
   */
  signal(signal: Deno.Signal): boolean {
    if (this.#exit !== null) return false;
    try {
      return pidfdSendSignal(this.#pidfd, signal);
    } catch {
      return false;
    }
  }

  /** Its CPU time and RSS, or null once gone. @example `p.usage()?.cpuMs` */
  usage(): ProcessUsage | null {
    return this.#exit === null ? processUsage(this.pid) : null;
  }

  #reap(): void {
    let exit: ChildExit | null;
    try {
      exit = waitPidfd(this.#pidfd);
    } catch {
      exit = { code: -1, signal: null, signalNumber: null };
    }
    if (exit === null) return; // spurious
    // What it wrote before exiting is in the pipes: drain it, then close
    // them even if a grandchild still holds the write ends.
    for (const r of this.#readers) {
      if (r.open) {
        r.pump(1 << 20);
        r.finish();
      }
    }
    this.#pidReg.deregister();
    close(this.#pidfd);
    this.#exit = exit;
    this.#onExit(exit);
  }
}
