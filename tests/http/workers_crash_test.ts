/**
 * `serve({ workers: N })` when a Worker dies of an uncaught async error: its
 * `SO_REUSEPORT` listener must not stay open (the kernel would keep handing
 * it about 1/N of the new connections, never accepted), and the Worker is
 * restarted.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { RawClient, request } from "./_raw.ts";
import { spawnWorkersChild, within } from "./_serve.ts";
import { listOpenFds } from "../../ffi/fd.ts";
import { readProcFile } from "../../ffi/process.ts";
import { freePort } from "../_helpers.ts";

/** `GET path` on a fresh connection; the status line's text and body, or an error. */
async function get(port: number, path: string): Promise<string> {
  using c = await RawClient.connect(port);
  await c.write(request("GET", path, { connection: "close" }));
  const r = await within(c.readResponse(), 3000, `GET ${path}`);
  assertEquals(r?.status, 200);
  return r!.text;
}

/** The listening sockets of `pid` on `port` (from /proc/net/tcp and its fds). */
function listeners(pid: number, port: number): number {
  const inodes = new Set<string>();
  const hex = port.toString(16).toUpperCase().padStart(4, "0");
  for (const line of readProcFile("/proc/net/tcp").split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1]?.endsWith(`:${hex}`) && f[3] === "0A") inodes.add(f[9]!);
  }
  let n = 0;
  for (const target of listOpenFds(pid).values()) {
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m !== null && inodes.has(m[1]!)) n++;
  }
  return n;
}

Deno.test("workers: a Worker that dies of an uncaught async error has its listener closed at once and is restarted; no request hangs", async () => {
  const port = freePort();
  const child = spawnWorkersChild(new URL("./_workers_crash_child.ts", import.meta.url), [
    String(port),
  ]);
  const waitListening = (n: number) => child.waitOutput(/listening \(/, n, `${n} listening lines`);
  try {
    await waitListening(2);
    await within(
      (async () => {
        while (listeners(child.pid, port) < 2) await new Promise((r) => setTimeout(r, 20));
      })(),
      5000,
      "2 listeners",
    );
    const victim = await get(port, "/crash");
    // The crash lands 10 ms after the reply. The main thread closes the dead
    // Worker's listener in the same turn as it reports the death, so from
    // that line on 20 fresh connections are all answered. (A connection that
    // the kernel queued on the listener in between is reset with it.)
    await child.waitOutput(/died: .*its listener was closed/, 1, "the death", "stderr", 10_000);
    const servedBy = new Map<string, number>();
    for (let i = 0; i < 20; i++) {
      const who = await get(port, "/");
      servedBy.set(who, (servedBy.get(who) ?? 0) + 1);
    }
    console.log(`workers: after ${victim} died, served by ${JSON.stringify([...servedBy])}`);
    // The restarted Worker listens again (a third "listening" line) and serves.
    await waitListening(3);
    assertEquals(listeners(child.pid, port), 2, "the restarted Worker listens; no dead listener");
    const both = new Set<string>();
    for (let i = 0; i < 40 && both.size < 2; i++) both.add(await get(port, "/"));
    assertEquals(both.size, 2, `both Workers serve again: ${[...both]}`);
    const { status, stderr: err } = await child.stop();
    assertEquals(status.code, 0, err);
    assert(/serve worker \d died: .*crash of/.test(err), err);
    assert(/its listener was closed; restarting it in \d+ ms/.test(err), err);
  } finally {
    await child.close();
  }
});
