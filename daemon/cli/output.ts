/**
 * {@linkcode OutputForwarder}: where `deno task serve` sends its workers'
 * stdout and stderr lines. Each line loses its ANSI colour codes and goes to
 * syslog tagged with the worker's own pid (`ffinet-serve[<worker pid>]:`),
 * stdout at `info` and stderr at `err`, and to the supervisor's stderr when
 * it runs in the foreground (the logger's `perror`).
 *
 * Forwarding is bounded: each worker may send `burst` lines at once and
 * `linesPerSecond` on average (a token bucket); lines past that, and lines
 * syslog could not take at once, are dropped and counted. The count is
 * logged (`worker 0 (pid 1234): dropped 5120 output lines`) once the flood
 * eases, at most once a second, and shown by `serve status`.
 *
 * @example
 * ```ts
 * import { OutputForwarder, stripAnsi } from "./output.ts";
 * import { Logger } from "@ffinet/ffinet/daemon";
 * const dir = Deno.makeTempDirSync();
 * const log = new Logger({ path: `${dir}/nobody-listens` });
 * const out = new OutputForwarder({ logger: log, burst: 2, linesPerSecond: 1 });
 * for (let i = 0; i < 5; i++) out.line(0, 4242, "stdout", `\x1b[32mline ${i}\x1b[0m`);
 * console.log(out.dropped(0)); // 3
 * console.log(stripAnsi("\x1b[1mbold\x1b[0m")); // "bold"
 * out.close();
 * log.close();
 * Deno.removeSync(dir, { recursive: true });
 * ```
 *
 * @module
 */
import type { SyslogPriorityName } from "../syslog.ts";
import { checkInteger } from "../../ffi/validate.ts";

/**
 * A worker line's syslog level: stdout is `info`, stderr `err`, except
 * the lines a server prints to stderr when all is well (`Listening on …`,
 * the banner of `Deno.serve` and `serve()`), which are `info`.
 */
function stderrLevel(stream: "stdout" | "stderr", line: string): "err" | "info" {
  return stream === "stderr" && !/^Listening on /.test(line) ? "err" : "info";
}

/** What an {@linkcode OutputForwarder} logs through: a subset of `syslog.ts`'s `Logger`. */
export interface ForwardingLogger {
  /** Log `message` tagged with another process's pid. */
  logFor(pid: number, priority: SyslogPriorityName | number, message: unknown): void;
  /** Log a warning as this process. */
  warning(message: unknown, ...args: unknown[]): void;
  /** Counters: a send that fails raises `dropped`. */
  readonly stats: { dropped: number };
  /** Whether the syslog socket is connected (drops while it is not are not counted). */
  readonly connected: boolean;
}

/** Options for {@linkcode OutputForwarder}. */
export interface OutputForwarderOptions {
  /** The logger (syslog, and the terminal through its `perror`). */
  logger: ForwardingLogger;
  /** Average lines per second per worker (default 1000). */
  linesPerSecond?: number;
  /** Lines a worker may send at once (default 2000). */
  burst?: number;
  /** Longer lines are cut to this many characters (default 4096). */
  maxLineLength?: number;
  /** How often pending drop counts are logged, in ms (default 1000). */
  reportIntervalMs?: number;
}

// CSI sequences (colours, cursor moves), OSC sequences (titles, links), and
// the remaining two-character escapes.
const ANSI =
  // deno-lint-ignore no-control-regex
  /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]|\x9b[0-?]*[ -/]*[@-~]/g;

/**
 * Remove ANSI escape sequences (SGR colours and other CSI, OSC, and
 * two-character escapes) from `text`.
 *
 * @example
 * ```ts
 * import { stripAnsi } from "./output.ts";
 * stripAnsi("\x1b[31merror\x1b[0m: x"); // "error: x"
 * ```
 */
export function stripAnsi(text: string): string {
  return text.includes("\x1b") || text.includes("\x9b") ? text.replace(ANSI, "") : text;
}

function checkInt(name: string, value: number, min: number, max: number): number {
  return checkInteger("create output forwarder", name, value, min, max);
}

interface Bucket {
  tokens: number;
  last: number;
  dropped: number;
  unreported: number;
  pid: number;
}

/**
 * Forwards worker output lines to a logger, bounded and counted (see the
 * module documentation).
 *
 * @example
 * ```ts
 * import { type ForwardingLogger, OutputForwarder } from "./output.ts";
 * const logger: ForwardingLogger = {
 *   logFor: (pid, priority, message) => console.log(pid, priority, message),
 *   warning: (message) => console.warn(message),
 *   stats: { dropped: 0 },
 *   connected: true,
 * };
 * const out = new OutputForwarder({ logger, linesPerSecond: 100 });
 * out.line(0, 1234, "stderr", "\x1b[31mboom\x1b[0m"); // logged as "boom" for pid 1234
 * console.log(out.dropped(0)); // 0
 * out.close();
 * ```
 */
export class OutputForwarder {
  readonly #log: ForwardingLogger;
  readonly #rate: number;
  readonly #burst: number;
  readonly #maxLength: number;
  readonly #buckets = new Map<number, Bucket>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  /** Validate the options (RangeError naming the option) and start the report timer. */
  constructor(options: OutputForwarderOptions) {
    this.#rate = checkInt("linesPerSecond", options.linesPerSecond ?? 1000, 1, 1_000_000);
    this.#burst = checkInt("burst", options.burst ?? 2000, 1, 10_000_000);
    this.#maxLength = checkInt("maxLineLength", options.maxLineLength ?? 4096, 16, 1 << 20);
    const interval = checkInt("reportIntervalMs", options.reportIntervalMs ?? 1000, 10, 3_600_000);
    this.#log = options.logger;
    const timer = setInterval(() => this.report(), interval);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  /**
   * Forward one line that worker `id` (process `pid`) printed on `stream`.
   * Returns whether it was sent.
   *
   * @example
   * ```ts
   * import type { OutputForwarder } from "./output.ts";
   * function forward(out: OutputForwarder, pid: number, text: string): boolean {
   *   return out.line(0, pid, "stdout", text); // false when the line was dropped
   * }
   * ```
   */
  line(id: number, pid: number, stream: "stdout" | "stderr", text: string): boolean {
    if (this.#closed) return false;
    const b = this.#bucket(id, pid);
    const now = performance.now();
    b.tokens = Math.min(this.#burst, b.tokens + (now - b.last) * this.#rate / 1000);
    b.last = now;
    if (b.tokens < 1) {
      b.dropped++;
      b.unreported++;
      return false;
    }
    b.tokens--;
    let clean = stripAnsi(text);
    if (clean.length > this.#maxLength) clean = clean.slice(0, this.#maxLength) + "…";
    const connected = this.#log.connected;
    const before = this.#log.stats.dropped;
    this.#log.logFor(pid, stderrLevel(stream, clean), clean);
    if (connected && this.#log.stats.dropped > before) {
      b.dropped++;
      b.unreported++;
      return false;
    }
    return true;
  }

  #bucket(id: number, pid: number): Bucket {
    let b = this.#buckets.get(id);
    if (b === undefined) {
      b = { tokens: this.#burst, last: performance.now(), dropped: 0, unreported: 0, pid };
      this.#buckets.set(id, b);
    }
    b.pid = pid;
    return b;
  }

  /**
   * Lines of worker `id` dropped so far (0 for an unknown worker).
   *
   * @example
   * ```ts
   * import type { OutputForwarder } from "./output.ts";
   * function droppedOf(out: OutputForwarder, workerId: number): number {
   *   return out.dropped(workerId);
   * }
   * ```
   */
  dropped(id: number): number {
    return this.#buckets.get(id)?.dropped ?? 0;
  }

  /**
   * Log the drop counts not logged yet, one warning per worker. Runs by
   * itself every `reportIntervalMs`; call it to flush at once.
   *
   * @example
   * ```ts
   * import type { OutputForwarder } from "./output.ts";
   * function flush(out: OutputForwarder): void {
   *   out.report();
   * }
   * ```
   */
  report(): void {
    for (const [id, b] of this.#buckets) {
      if (b.unreported === 0) continue;
      const n = b.unreported;
      b.unreported = 0;
      this.#log.warning(
        `worker ${id} (pid ${b.pid}): dropped ${n} output line${n === 1 ? "" : "s"}` +
          ` (${b.dropped} in all): more than ${this.#rate}/s or syslog busy`,
      );
    }
  }

  /**
   * Log pending drop counts and stop the timer; later lines are ignored.
   * Idempotent.
   *
   * @example
   * ```ts
   * import type { OutputForwarder } from "./output.ts";
   * function shutdown(out: OutputForwarder): void {
   *   out.close();
   * }
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.report();
    this.#closed = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
