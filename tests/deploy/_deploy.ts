/**
 * Helpers for the deploy tests: the fixture server as a child process,
 * balancer configurations rendered from the fixture files (the same files
 * the README shows), curl with a chosen source address, HAProxy's runtime
 * API, and test certificates.
 *
 * @module
 */
import { assert } from "@std/assert";
import { readText } from "../_helpers.ts";

const decoder = new TextDecoder();
/** The repository root. */
export const ROOT: string = new URL("../../", import.meta.url).pathname;
/** The fixtures directory. */
export const FIXTURES: string = `${ROOT}tests/deploy/fixtures/`;

/** Whether `cmd` can be run (`cmd -v`/`--version`-like probe args). */
export async function available(cmd: string, args: string[]): Promise<boolean> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).output();
    return out.success;
  } catch {
    return false;
  }
}

export { freePort } from "../_helpers.ts";

/** Fill `${NAME}` placeholders of a fixture file; every placeholder must be given. */
export function render(fixture: string, vars: Record<string, string | number>): string {
  const text = Deno.readTextFileSync(FIXTURES + fixture);
  const out = text.replace(/\$\{([A-Z0-9_]+)\}/g, (m, k: string) => {
    if (!(k in vars)) throw new Error(`Cannot render ${fixture}: no value for ${m}`);
    return String(vars[k]);
  });
  return out;
}

/** A child process whose output is collected line by line. */
export class Proc {
  readonly child: Deno.ChildProcess;
  readonly lines: string[] = [];
  readonly done: Promise<Deno.CommandStatus>;
  readonly #readers: Promise<void>[];

  constructor(cmd: string, args: string[], options: { cwd?: string } = {}) {
    this.child = new Deno.Command(cmd, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      ...(options.cwd ? { cwd: options.cwd } : {}),
    }).spawn();
    this.#readers = [this.#collect(this.child.stdout), this.#collect(this.child.stderr)];
    this.done = this.child.status.then(async (s) => {
      await Promise.all(this.#readers);
      return s;
    });
  }

  async #collect(stream: ReadableStream<Uint8Array>): Promise<void> {
    let partial = "";
    for await (const chunk of stream) {
      partial += decoder.decode(chunk, { stream: true });
      const parts = partial.split("\n");
      partial = parts.pop()!;
      this.lines.push(...parts);
    }
    if (partial) this.lines.push(partial);
  }

  /** Wait until a line matches `re`; returns the match. */
  async waitLine(re: RegExp, ms: number, what: string): Promise<RegExpMatchArray> {
    const end = Date.now() + ms;
    let exited = false;
    this.child.status.then(() => exited = true);
    for (;;) {
      for (const l of this.lines) {
        const m = l.match(re);
        if (m) return m;
      }
      if (exited || Date.now() > end) {
        throw new Error(
          `Timed out waiting for ${what}${exited ? " (the process exited)" : ""}:\n` +
            this.lines.join("\n"),
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Send `signal` if still running. */
  kill(signal: Deno.Signal = "SIGTERM"): void {
    try {
      this.child.kill(signal);
    } catch { /* already gone */ }
  }

  /** SIGTERM, then SIGKILL after `ms`; resolves with the status. */
  async stop(ms = 3000): Promise<Deno.CommandStatus> {
    this.kill("SIGTERM");
    const t = setTimeout(() => this.kill("SIGKILL"), ms);
    try {
      return await this.done;
    } finally {
      clearTimeout(t);
    }
  }
}

/**
 * The fixture server (`fixtures/app.ts`) on `port` (0: any), its command line
 * prefixed by `wrap` (e.g. `ip netns exec NS`); resolves once it listens.
 */
export async function startApp(
  name: string,
  port: number,
  extra: string[] = [],
  wrap: string[] = [],
): Promise<{ proc: Proc; port: number }> {
  const argv = [
    ...wrap,
    Deno.execPath(),
    "run",
    "--allow-ffi",
    "--allow-env",
    `${FIXTURES}app.ts`,
    "--name",
    name,
    "--port",
    String(port),
    ...extra,
  ];
  const proc = new Proc(argv[0]!, argv.slice(1));
  try {
    const m = await proc.waitLine(/^listening on [0-9.]+:(\d+)$/, 15_000, `${name} to listen`);
    return { proc, port: Number(m[1]) };
  } catch (e) {
    await proc.stop();
    throw e;
  }
}

/** What the fixture server answers. */
export interface AppReply {
  server: string;
  pid: number;
  remoteAddr: { hostname: string; port: number };
  proxy: {
    version: number;
    command: string;
    source: { hostname: string; port: number } | null;
    destination: { hostname: string; port: number } | null;
    proxyAddress: { hostname: string; port: number };
    alpn: string | null;
    authority: string | null;
    crc32c: boolean;
    ssl: {
      tls: boolean;
      version: string | null;
      cn: string | null;
      cipher: string | null;
      verify: number;
      verified: boolean;
      certConnection: boolean;
    } | null;
  } | null;
  localChecks: number;
}

/** curl `url` with `args`; returns the JSON reply and the local address curl used. */
export async function curl(
  url: string,
  args: string[] = [],
): Promise<{ reply: AppReply; localIp: string; localPort: number }> {
  const out = await new Deno.Command("curl", {
    args: [
      "-sS",
      "--max-time",
      "10",
      "-w",
      "\n%{local_ip} %{local_port}",
      ...args,
      url,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = decoder.decode(out.stdout);
  assert(out.success, `curl ${url} failed: ${decoder.decode(out.stderr)}${text}`);
  const lines = text.trimEnd().split("\n");
  const [ip, port] = lines.pop()!.split(" ");
  return { reply: JSON.parse(lines.join("\n")), localIp: ip!, localPort: Number(port) };
}

/** Ask HAProxy's runtime API (a Unix socket) one command. */
export async function haproxyCommand(socket: string, command: string): Promise<string> {
  const conn = await Deno.connect({ transport: "unix", path: socket });
  try {
    await conn.write(new TextEncoder().encode(command + "\n"));
    return await readText(conn, { size: 16384 });
  } finally {
    conn.close();
  }
}

/** `show servers state <backend>`: server name → operational state (2 = up, 0 = down). */
export async function serverStates(socket: string, backend: string): Promise<Map<string, number>> {
  const text = await haproxyCommand(socket, `show servers state ${backend}`);
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || line.trim() === "" || /^\d+$/.test(line.trim())) continue;
    const f = line.split(" ");
    if (f[1] === backend) out.set(f[3]!, Number(f[5]));
  }
  return out;
}

/** Make a self-signed server certificate (CN and SAN `host`) and a client certificate in `dir`. */
export async function makeCerts(dir: string, host: string, clientCn: string): Promise<void> {
  const req = async (name: string, cn: string, san: boolean) => {
    const out = await new Deno.Command("openssl", {
      args: [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        `${dir}/${name}.key`,
        "-out",
        `${dir}/${name}.crt`,
        "-days",
        "1",
        "-subj",
        `/CN=${cn}`,
        ...(san ? ["-addext", `subjectAltName=DNS:${cn}`] : []),
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert(out.success, `openssl req failed: ${decoder.decode(out.stderr)}`);
  };
  await req("server", host, true);
  await req("client", clientCn, false);
  Deno.writeTextFileSync(
    `${dir}/server.pem`,
    Deno.readTextFileSync(`${dir}/server.crt`) + Deno.readTextFileSync(`${dir}/server.key`),
  );
}
