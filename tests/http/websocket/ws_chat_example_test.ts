/**
 * The chat example (`examples/ws_chat.ts`) as a user runs it: a separate
 * process, its page at `/`, and two WebSocket clients in one room seeing
 * each other's joins and messages.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { waitFor } from "./_client.ts";

Deno.test("examples/ws_chat.ts: the page, and two clients chatting through the room", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-ffi",
      new URL("../../../examples/ws_chat.ts", import.meta.url).pathname,
      "--port",
      "0",
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    let banner = "";
    while (!banner.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) break;
      banner += value;
    }
    const found = /chat on (http:\/\/\S+)/.exec(banner)?.[1];
    if (found === undefined) throw new Error(`no banner: ${banner}`);
    const base: string = found;
    using client = Deno.createHttpClient({});
    const page = await fetch(base, { client });
    assertEquals(page.headers.get("content-type"), "text/html");
    assert((await page.text()).includes("new WebSocket"));

    const url = base.replace(/^http/, "ws") + "chat";
    const a = new WebSocket(url);
    const aGot: string[] = [];
    a.onmessage = (e) => aGot.push(e.data);
    await new Promise((r) => a.onopen = r);
    const b = new WebSocket(url);
    const bGot: string[] = [];
    b.onmessage = (e) => bGot.push(e.data);
    await new Promise((r) => b.onopen = r);
    await waitFor(() => aGot.length === 1, "a sees b join");
    assertEquals(aGot, ["guest2 joined"]);
    b.send("hello from b");
    a.send("hi b");
    await waitFor(() => aGot.length === 2 && bGot.length === 1, "the messages");
    assertEquals(aGot[1], "guest2: hello from b");
    assertEquals(bGot, ["guest1: hi b"]);
    const bClosed = new Promise((r) => b.onclose = r);
    b.close();
    await bClosed;
    await waitFor(() => aGot.length === 3, "a sees b leave");
    assertEquals(aGot[2], "guest2 left");
    const aClosed = new Promise((r) => a.onclose = r);
    a.close();
    await aClosed;
  } finally {
    child.kill("SIGTERM");
    await lines.cancel().catch(() => {});
    await child.status;
  }
});
