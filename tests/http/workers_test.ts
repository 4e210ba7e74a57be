/**
 * `serve({ workers: N })`: N Deno Workers, one reactor each, on one port
 * (SO_REUSEPORT). A child process runs tests/http/_workers_child.ts; each
 * response names the Worker and kernel thread that served it.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { RawClient, request } from "./_raw.ts";
import { spawnWorkersChild } from "./_serve.ts";
import { freePort } from "../_helpers.ts";

Deno.test("workers: serve({ workers: 2 }) spreads connections over 2 Workers on one port and stops cleanly on SIGTERM", async () => {
  const port = freePort();
  const child = spawnWorkersChild(new URL("./_workers_child.ts", import.meta.url), [
    String(port),
    "2",
  ]);
  try {
    await child.waitOutput(/listening on/, 2, "2 Workers listening");
    const served = new Map<string, number>();
    for (let i = 0; i < 40; i++) {
      using c = await RawClient.connect(port);
      await c.write(request("GET", "/", { connection: "close" }));
      const r = await c.readResponse();
      assertEquals(r?.status, 200);
      served.set(r!.text, (served.get(r!.text) ?? 0) + 1);
    }
    console.log(`workers: connections per thread ${JSON.stringify(Object.fromEntries(served))}`);
    const names = [...served.keys()];
    assertEquals(served.size, 2, `expected 2 serving threads, got ${names}`);
    for (const n of names) assert(n.startsWith("ffinet-serve-worker-"), `served by ${n}`);
    assertEquals(new Set(names.map((n) => n.split(" ")[1])).size, 2, "two kernel threads");
    const { status, stderr } = await child.stop();
    assertEquals(status.code, 0, `exit status after SIGTERM; stderr: ${stderr}`);
  } finally {
    await child.close();
  }
});
