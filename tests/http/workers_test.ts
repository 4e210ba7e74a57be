/**
 * `serve({ workers: N })`: N Deno Workers, one reactor each, on one port
 * (SO_REUSEPORT). A child process runs tests/http/_workers_child.ts; each
 * response names the Worker and kernel thread that served it.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { RawClient, request } from "./_raw.ts";
import { within } from "./_serve.ts";
import { freePort } from "../_helpers.ts";

Deno.test("workers: serve({ workers: 2 }) spreads connections over 2 Workers on one port and stops cleanly on SIGTERM", async () => {
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-ffi",
      "--allow-env",
      "--allow-read",
      "--allow-net",
      new URL("./_workers_child.ts", import.meta.url).pathname,
      String(port),
      "2",
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const errText = new Response(child.stderr).text();
  let stdout = "";
  let status: Deno.CommandStatus | undefined;
  let exited = false;
  const childStatus = child.status.then((s) => {
    exited = true;
    return s;
  });
  try {
    // Wait until both Workers listen.
    while ((stdout.match(/listening on/g) ?? []).length < 2) {
      const { value, done } = await within(out.read(), 20_000, "2 workers listening");
      if (done) break;
      stdout += value;
    }
    if ((stdout.match(/listening on/g) ?? []).length < 2) {
      await childStatus;
      throw new Error(`the workers did not listen: ${stdout}\n${await errText}`);
    }
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
    child.kill("SIGTERM");
    status = await within(childStatus, 10_000, "exit after SIGTERM");
    assertEquals(status.code, 0, `exit status after SIGTERM; stderr: ${await errText}`);
  } finally {
    if (!exited) child.kill("SIGKILL");
    await childStatus;
    await out.cancel().catch(() => {});
    await errText;
  }
});
