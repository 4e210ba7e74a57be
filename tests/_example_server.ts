/**
 * Example servers as child processes, for tests that drive them for real:
 * start one on an ephemeral loopback port, wait for its `listening on
 * HOST:PORT` line, and stop it (SIGTERM, then SIGKILL).
 *
 * @module
 */
import { waitFor } from "./_helpers.ts";

const EXAMPLES = new URL("../examples/", import.meta.url);

/** An example server running as a child process. */
export interface ExampleServer {
  readonly pid: number;
  readonly port: number;
  /** Whether the process has exited. */
  readonly exited: boolean;
  /** Its stdout and stderr so far. */
  output(): string;
  /** Resolves when it has exited and its output is read. */
  readonly status: Promise<Deno.CommandStatus>;
  /** SIGTERM (SIGKILL after 10 s), then wait for it and its output. */
  stop(): Promise<Deno.CommandStatus>;
}

/** An example's run line, as its header comment gives it to users. */
export interface RunLine {
  /** The whole line: `deno run FLAGS examples/NAME ARGS`. */
  readonly line: string;
  /** The `deno run` flags: every permission the example needs, and only those. */
  readonly flags: string[];
  /** The example's own arguments on that line. */
  readonly args: string[];
}

/**
 * The run line of `examples/<name>`: the one indented `deno run … examples/<name> …`
 * line of its header comment. Tests start every example with exactly these
 * flags, so a permission missing from the documented line fails a test.
 */
export function exampleRunLine(name: string): RunLine {
  const text = Deno.readTextFileSync(new URL(name, EXAMPLES));
  const header = text.slice(0, text.indexOf("*/"));
  const found = [...header.matchAll(/^ \* {5}(deno run .*)$/gm)].map((m) => m[1]!);
  if (found.length !== 1) {
    throw new Error(`examples/${name}: ${found.length} run lines in the header, expected 1`);
  }
  const line = found[0]!;
  const words = line.split(" ").filter((w) => w !== "");
  const at = words.indexOf(`examples/${name}`);
  if (at < 0) throw new Error(`examples/${name}: its run line runs another file: ${line}`);
  return { line, flags: words.slice(2, at), args: words.slice(at + 1) };
}

/**
 * Start `examples/<name>` with the flags of its run line on an ephemeral
 * loopback port, optionally under `ulimit -n nofile` (or the hard limit, if
 * lower), and wait for its `listening on HOST:PORT` line.
 */
export function startExample(
  name: string,
  args: string[] = [],
  nofile?: number,
): Promise<ExampleServer> {
  return startScript(new URL(name, EXAMPLES).pathname, {
    flags: exampleRunLine(name).flags,
    args: ["--port", "0", ...args],
    nofile,
  });
}

/** Options for {@linkcode startScript}. */
export interface StartScriptOptions {
  /** `deno run` flags before the script. */
  flags: string[];
  /** The script's own arguments. */
  args?: string[];
  /** Working directory of the child. */
  cwd?: string | undefined;
  /** Run under `ulimit -n nofile` (or the hard limit, if lower). */
  nofile?: number | undefined;
}

/**
 * Run any Deno server script as a child process and wait for its
 * `listening on HOST:PORT` line.
 */
export async function startScript(
  script: string,
  { flags, args = [], cwd, nofile }: StartScriptOptions,
): Promise<ExampleServer> {
  const name = script.slice(script.lastIndexOf("/") + 1);
  const denoArgs = ["run", ...flags, script, ...args];
  const options = {
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    ...(cwd === undefined ? {} : { cwd }),
  } as const;
  const child = nofile === undefined
    ? new Deno.Command(Deno.execPath(), { args: denoArgs, ...options }).spawn()
    : new Deno.Command("sh", {
      args: [
        "-c",
        `ulimit -n ${nofile} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"`,
        "sh",
        Deno.execPath(),
        ...denoArgs,
      ],
      ...options,
    }).spawn();
  let out = "";
  let exited = false;
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) out += chunk;
  };
  const done = Promise.all([child.status, pump(child.stdout), pump(child.stderr)]).then(
    ([status]) => {
      exited = true;
      return status;
    },
  );
  const stop = async (): Promise<Deno.CommandStatus> => {
    if (!exited) {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
    }
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
    }, 10_000);
    try {
      return await done;
    } finally {
      clearTimeout(timer);
    }
  };
  let port = 0;
  try {
    await waitFor(
      () => {
        const m = out.match(/^listening on \S+:(\d+)$/m);
        if (m) port = Number(m[1]);
        if (exited && port === 0) throw new Error(`${name} exited without listening:\n${out}`);
        return port !== 0;
      },
      30_000,
      `${name} to listen`,
    );
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    pid: child.pid,
    port,
    get exited() {
      return exited;
    },
    output: () => out,
    status: done,
    stop,
  };
}
