/**
 * Helpers of the Deno-shaped adapter tests (`deno_conn_test.ts`,
 * `deno_conn_lifetime_test.ts`).
 */
import { assertEquals } from "@std/assert";
import { connect, defaultReactorIdle, type FfiConn } from "../../deno/mod.ts";
import { listFds, withFdCheck } from "../_helpers.ts";
import { scaled } from "../ffi/_emulation.ts";

export const enc = new TextEncoder();
export const dec = new TextDecoder();

/** Reject if `p` takes longer than `ms`. */
export async function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms: ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Run `fn`, then wait for the shared reactor to stop and close its fds. */
export function adapterTest(
  fn: () => Promise<void>,
  limitMs = scaled(20_000),
): () => Promise<void> {
  return () =>
    withFdCheck(async () => {
      try {
        await bounded(fn(), limitMs, "the test body");
      } catch (e) {
        // Report the body's failure, not the reactor that its leftovers keep running.
        await bounded(defaultReactorIdle(), scaled(5000), "the shared reactor to stop").catch(
          () => {},
        );
        throw e;
      }
      await bounded(defaultReactorIdle(), scaled(5000), "the shared reactor to stop");
    });
}

/** Connects the adapter to `server` (a `Deno.listen` on loopback): our end and the accepted peer. */
export async function connectTo(
  server: Deno.TcpListener,
): Promise<{ conn: FfiConn; peer: Deno.TcpConn }> {
  const connecting = connect({ port: server.addr.port });
  const peer = await server.accept();
  const conn = await connecting;
  return { conn, peer };
}

export function randomBytes(n: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  for (let off = 0; off < n; off += 65536) {
    crypto.getRandomValues(out.subarray(off, Math.min(n, off + 65536)));
  }
  return out;
}

/** Read `conn` (Deno's or ours) until EOF. */
export async function readAll(
  conn: { read(p: Uint8Array): Promise<number | null> },
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let total = 0;
  const buf = new Uint8Array(32 * 1024);
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) break;
    parts.push(buf.slice(0, n));
    total += n;
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}

/** Write all of `data` with a `Deno.Writer`-style `write` that may be partial. */
export async function writeAll(conn: { write(p: Uint8Array): Promise<number> }, data: Uint8Array) {
  for (let off = 0; off < data.byteLength;) {
    off += await conn.write(data.subarray(off, Math.min(data.byteLength, off + 100_000)));
  }
}

export function assertSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  assertEquals(actual.byteLength, expected.byteLength, "lengths differ");
  const at = actual.findIndex((b, i) => b !== expected[i]);
  assertEquals(at, -1, `bytes differ from offset ${at}`);
}

/** Run a script using the adapters in a child Deno; resolves with its status and output. */
export async function runScript(
  body: string,
  killAfterMs: number,
): Promise<{ exited: boolean; code: number; stdout: string; stderr: string }> {
  const dir = await Deno.makeTempDir({ prefix: "ffinet-deno-conn-" });
  const file = `${dir}/script.ts`;
  const mod = new URL("../../deno/mod.ts", import.meta.url).href;
  await Deno.writeTextFile(file, `import { connect, listen } from "${mod}";\n${body}`);
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-check", "--allow-ffi", "--allow-net", "--allow-read", file],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let exited = true;
    const timer = setTimeout(() => {
      exited = false;
      child.kill("SIGKILL");
    }, killAfterMs);
    const out = await child.output();
    clearTimeout(timer);
    return {
      exited,
      code: out.code,
      stdout: dec.decode(out.stdout),
      stderr: dec.decode(out.stderr),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** This process's open socket fds. */
export function socketFds(): number {
  return [...listFds().values()].filter((what) => what.startsWith("socket:")).length;
}

/** TCP sockets of `port` (local or remote) in CLOSE_WAIT (state 08), from /proc/net/tcp{,6}. */
export function closeWaitCount(port: number): number {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  let n = 0;
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = Deno.readTextFileSync(file);
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4 || f[3] !== "08") continue;
      if (f[1]!.endsWith(`:${hexPort}`) || f[2]!.endsWith(`:${hexPort}`)) n++;
    }
  }
  return n;
}
