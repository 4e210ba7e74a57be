/**
 * Starts the server under test for the HTTP tests: ffinet's `serve()` by
 * default; `FFINET_HTTP_TEST_SERVER=deno` runs the same tests against
 * `Deno.serve` (to check a test itself against a reference server).
 *
 * @module
 */
import { serve } from "../../http/mod.ts";
import type { ServeHandler, ServeOptions } from "../../http/types.ts";

/** A running server under test. */
export interface TestServer {
  port: number;
  /** Which server this is: "ffinet" or "deno". */
  kind: "ffinet" | "deno";
  /** Graceful shutdown, resolved once everything is released. */
  close(): Promise<void>;
}

/** Whether the tests run against Deno.serve instead of ffinet's serve(). */
export const USE_DENO: boolean = (() => {
  try {
    return Deno.env.get("FFINET_HTTP_TEST_SERVER") === "deno";
  } catch {
    return false;
  }
})();

/**
 * Start a server on 127.0.0.1, ephemeral port.
 *
 * @example
 * ```ts
 * import { startServer } from "./_serve.ts";
 * const server = startServer({}, () => new Response("hi"));
 * await server.close();
 * ```
 */
export function startServer(
  options: Omit<ServeOptions, "hostname" | "port" | "onListen">,
  handler: ServeHandler,
): TestServer {
  if (USE_DENO) {
    const opts: Deno.ServeTcpOptions = {
      hostname: "127.0.0.1",
      port: 0,
      onListen() {},
    };
    if (options.onError) opts.onError = options.onError;
    const server = Deno.serve(opts, handler as Deno.ServeHandler);
    return {
      port: server.addr.port,
      kind: "deno",
      async close() {
        await server.shutdown();
        await server.finished;
      },
    };
  }
  const server = serve({ ...options, hostname: "127.0.0.1", port: 0, onListen() {} }, handler);
  const addr = server.addr;
  if (addr.transport !== "tcp") throw new Error("expected a TCP server");
  return {
    port: addr.port,
    kind: "ffinet",
    async close() {
      await server.shutdown();
      await server.finished;
    },
  };
}

/**
 * A promise with its resolver, for signalling between handler and test.
 *
 * @example
 * ```ts
 * import { deferred } from "./_serve.ts";
 * const d = deferred<number>();
 * d.resolve(1);
 * console.log(await d.promise);
 * ```
 */
export function deferred<T = void>(): {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
} {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((a, b) => {
    resolve = a;
    reject = b;
  });
  return { promise, resolve, reject };
}

/**
 * Reject after `ms` with a message naming `what`.
 *
 * @example
 * ```ts
 * import { within } from "./_serve.ts";
 * await within(Promise.resolve(1), 1000, "a resolved promise");
 * ```
 */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]);
}

/** A server in a child process (tests/http/_serve_child.ts). */
export interface ChildServer {
  port: number;
  pid: number;
  child: Deno.ChildProcess;
  /** Whether the child has exited (a crash, when the test did not kill it). */
  exited(): boolean;
  /** SIGKILL it and wait. */
  kill(): Promise<void>;
}

/**
 * Start tests/http/_serve_child.ts with `mode` and wait for its port.
 *
 * @example
 * ```ts
 * import { spawnServerChild } from "./_serve.ts";
 * const child = await spawnServerChild("hello");
 * await child.kill();
 * ```
 */
export async function spawnServerChild(
  mode: "hello" | "fuzz" | "fuzz-raw",
): Promise<ChildServer> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-ffi",
      "--allow-env",
      "--allow-net",
      new URL("./_serve_child.ts", import.meta.url).pathname,
      mode,
    ],
    env: USE_DENO ? { FFINET_HTTP_TEST_SERVER: "deno" } : {},
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const reader = child.stdout.getReader();
  let seen = "";
  try {
    while (!/listening on [^:]+:(\d+)/.test(seen)) {
      const { value, done } = await within(reader.read(), 20_000, "child server start");
      if (done) throw new Error(`Cannot start the child server: it exited (${seen})`);
      seen += new TextDecoder().decode(value);
    }
  } catch (e) {
    reader.releaseLock();
    child.kill("SIGKILL");
    await status;
    await child.stdout.cancel().catch(() => {});
    throw e;
  }
  reader.releaseLock();
  // Keep draining stdout so the child never blocks on a full pipe.
  const drain = child.stdout.pipeTo(new WritableStream()).catch(() => {});
  return {
    port: Number(/listening on [^:]+:(\d+)/.exec(seen)![1]),
    pid: child.pid,
    child,
    exited: () => exited,
    async kill() {
      if (!exited) child.kill("SIGKILL");
      await status;
      await drain;
    },
  };
}

/** A `serve({ workers })` program in a child process, its output collected. */
export interface WorkersChild {
  pid: number;
  /** Everything the child wrote to stdout so far. */
  stdout(): string;
  /** Everything the child wrote to stderr so far. */
  stderr(): string;
  /**
   * Resolve once `from` (stdout by default) matches `pattern` `count` times;
   * throw when the child exits first or after `ms`.
   */
  waitOutput(
    pattern: RegExp,
    count: number,
    what: string,
    from?: "stdout" | "stderr",
    ms?: number,
  ): Promise<void>;
  /** SIGTERM, then the exit status (within `ms`) and everything written to stderr. */
  stop(ms?: number): Promise<{ status: Deno.CommandStatus; stderr: string }>;
  /** SIGKILL when still running, wait, and release the pipes (idempotent). */
  close(): Promise<void>;
}

/** How {@linkcode spawnWorkersChild} starts the child. */
export interface SpawnOptions {
  /** Added to the child's environment. */
  env?: Record<string, string>;
  /** Deno's permission flags (default: FFI, env, read and net). */
  permissions?: string[];
  /**
   * Shell commands run first, in `sh -c '<shell> exec deno …'` (e.g.
   * `ulimit -n 20000 &&`); `exec` keeps the pid the child's own.
   */
  shell?: string | undefined;
}

/**
 * Run `script` with `args` in a child Deno (FFI, env, read and net allowed
 * unless `permissions` says otherwise), reading its stdout and stderr as
 * they come so that it never blocks on a full pipe.
 *
 * @example
 * ```ts
 * import { spawnWorkersChild } from "./_serve.ts";
 * const child = spawnWorkersChild(new URL("./_workers_child.ts", import.meta.url), ["0", "2"]);
 * try {
 *   await child.waitOutput(/listening on/, 2, "2 Workers listening");
 *   console.log((await child.stop()).status.code);
 * } finally {
 *   await child.close();
 * }
 * ```
 */
export function spawnWorkersChild(
  script: URL,
  args: string[],
  options: SpawnOptions = {},
): WorkersChild {
  const permissions = options.permissions ??
    ["--allow-ffi", "--allow-env", "--allow-read", "--allow-net"];
  const deno = [Deno.execPath(), "run", ...permissions, script.pathname, ...args];
  const quoted = deno.map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(" ");
  const child = new Deno.Command(options.shell === undefined ? deno[0]! : "sh", {
    args: options.shell === undefined ? deno.slice(1) : ["-c", `${options.shell} exec ${quoted}`],
    env: options.env ?? {},
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const text = { stdout: "", stderr: "" };
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const read = async (from: "stdout" | "stderr") => {
    for await (const chunk of child[from].pipeThrough(new TextDecoderStream())) {
      text[from] += chunk;
    }
  };
  const reading = Promise.all([read("stdout"), read("stderr")]);
  const signal = (sig: Deno.Signal) => {
    try {
      if (!exited) child.kill(sig);
    } catch { /* it exited in between */ }
  };
  return {
    pid: child.pid,
    stdout: () => text.stdout,
    stderr: () => text.stderr,
    async waitOutput(pattern, count, what, from = "stdout", ms = 30_000) {
      const all = new RegExp(
        pattern.source,
        pattern.flags.includes("g") ? pattern.flags : pattern.flags + "g",
      );
      const seen = () => (text[from].match(all) ?? []).length >= count;
      const end = Date.now() + ms;
      while (!seen()) {
        if (exited) {
          await reading;
          if (seen()) return;
          const code = (await status).code;
          throw new Error(
            `Cannot see ${what}: the child exited (${code}): ${text.stdout}\n${text.stderr}`,
          );
        }
        if (Date.now() > end) {
          throw new Error(`Timed out after ${ms} ms: ${what}: ${text.stdout}\n${text.stderr}`);
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async stop(ms = 10_000) {
      signal("SIGTERM");
      const s = await within(status, ms, "the child's exit after SIGTERM");
      await reading;
      return { status: s, stderr: text.stderr };
    },
    async close() {
      signal("SIGKILL");
      await status;
      await reading;
    },
  };
}
