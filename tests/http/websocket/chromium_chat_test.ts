/**
 * The chat example in a real browser: `examples/ws_chat.ts` runs as a
 * user starts it (`deno run --allow-ffi examples/ws_chat.ts`, port 0 here),
 * headless Chromium opens its page in two tabs, driven over the DevTools
 * protocol (through Deno's WebSocket), and each tab's form sends a line
 * that the other tab shows. Chromium's page talks to the server with its
 * own WebSocket (permessage-deflate offered by the browser and accepted).
 * Skipped, with the reason printed, when Chromium is not installed.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { waitFor } from "./_client.ts";

const CHROMIUM = "/usr/bin/chromium";
const WAIT = 60_000;

function installed(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** A DevTools protocol connection: commands with ids, replies matched to them. */
class Cdp {
  readonly #ws: WebSocket;
  #next = 1;
  readonly #waiting = new Map<number, (reply: { result?: unknown; error?: unknown }) => void>();
  readonly closed: Promise<void>;

  constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.onmessage = (e) => {
      const m = JSON.parse(String(e.data));
      if (typeof m.id === "number") this.#waiting.get(m.id)?.(m);
    };
    this.closed = new Promise((r) => ws.addEventListener("close", () => r(), { once: true }));
  }

  static async open(url: string): Promise<Cdp> {
    const ws = new WebSocket(url);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error(`cannot reach DevTools at ${url}`));
    });
    return new Cdp(ws);
  }

  // deno-lint-ignore no-explicit-any
  async send(method: string, params: unknown = {}, sessionId?: string): Promise<any> {
    const id = this.#next++;
    const reply = new Promise<{ result?: unknown; error?: unknown }>((r) =>
      this.#waiting.set(id, r)
    );
    this.#ws.send(
      JSON.stringify(sessionId ? { id, method, params, sessionId } : { id, method, params }),
    );
    const m = await reply;
    this.#waiting.delete(id);
    if (m.error !== undefined) throw new Error(`${method}: ${JSON.stringify(m.error)}`);
    return m.result;
  }

  /** Evaluate `expression` in a tab; its value (JSON-able). */
  async evaluate(sessionId: string, expression: string): Promise<unknown> {
    const r = await this.send("Runtime.evaluate", { expression, returnByValue: true }, sessionId);
    if (r.exceptionDetails !== undefined) return undefined; // e.g. the page is not loaded yet
    return r.result?.value;
  }

  close(): void {
    this.#ws.close();
  }
}

/** Whether `p` settles within `ms` (its timer cleared either way). */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<boolean>((r) => timer = setTimeout(() => r(false), ms));
  try {
    return await Promise.race([p.then(() => true, () => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Read `stream` into `sink.text` until it ends. */
async function collect(stream: ReadableStream<Uint8Array>, sink: { text: string }): Promise<void> {
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) sink.text += chunk;
}

Deno.test("chromium: two tabs of examples/ws_chat.ts exchange messages", async () => {
  if (!installed(CHROMIUM)) {
    console.log(`chromium: skipped: ${CHROMIUM} is not installed (Debian package chromium)`);
    return;
  }
  const server = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-ffi",
      new URL("../../../examples/ws_chat.ts", import.meta.url).pathname,
      "--host",
      "127.0.0.1",
      "--port",
      "0",
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const serverOut = { text: "" };
  const serverErr = { text: "" };
  const serverReading = Promise.all([
    collect(server.stdout, serverOut),
    collect(server.stderr, serverErr),
  ]);
  const profile = await Deno.makeTempDir({ prefix: "ffinet-chromium-" });
  let browser: Deno.ChildProcess | undefined;
  let browserReading: Promise<unknown> = Promise.resolve();
  let cdp: Cdp | undefined;
  try {
    await waitFor(() => /chat on http:\/\/\S+\//.test(serverOut.text), "the chat banner", WAIT);
    const base = /chat on (http:\/\/\S+\/)/.exec(serverOut.text)![1]!;

    browser = new Deno.Command(CHROMIUM, {
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        `--user-data-dir=${profile}`,
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        "about:blank",
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const browserErr = { text: "" };
    browserReading = collect(browser.stderr, browserErr);
    await waitFor(
      () => /DevTools listening on (ws:\/\/\S+)/.test(browserErr.text),
      "Chromium's DevTools endpoint",
      WAIT,
    );
    const endpoint = /DevTools listening on (ws:\/\/\S+)/.exec(browserErr.text)![1]!;
    cdp = await Cdp.open(endpoint);
    const c = cdp;

    // A tab on the chat page, once its WebSocket is open.
    const tab = async (): Promise<string> => {
      const { targetId } = await c.send("Target.createTarget", { url: base });
      const { sessionId } = await c.send("Target.attachToTarget", { targetId, flatten: true });
      const deadline = Date.now() + WAIT;
      while ((await c.evaluate(sessionId, "ws.readyState")) !== 1) {
        if (Date.now() > deadline) throw new Error("the page's WebSocket did not open");
        await new Promise((r) => setTimeout(r, 50));
      }
      return sessionId;
    };
    const lines = async (s: string): Promise<string[]> =>
      (await c.evaluate(
        s,
        `[...document.querySelectorAll("#log li")].map((li) => li.textContent)`,
      ) as string[] | undefined) ?? [];
    const say = (s: string, text: string) =>
      c.evaluate(
        s,
        `document.getElementById("m").value = ${JSON.stringify(text)};
         document.getElementById("f").requestSubmit(); true`,
      );
    const until = async (s: string, want: string[], what: string) => {
      const deadline = Date.now() + WAIT;
      let got: string[] = [];
      for (;;) {
        got = await lines(s);
        if (want.every((w) => got.includes(w))) return got;
        if (Date.now() > deadline) throw new Error(`${what}: the tab shows ${JSON.stringify(got)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };

    const a = await tab();
    const b = await tab();
    await until(a, ["guest2 joined"], "tab 1 sees tab 2 join");
    await say(a, "hello from tab 1");
    await until(b, ["guest1: hello from tab 1"], "tab 2 gets tab 1's line");
    await say(b, "héllo from tab 2 ✓");
    const gotA = await until(a, ["guest2: héllo from tab 2 ✓"], "tab 1 gets tab 2's line");
    assertEquals(gotA, ["guest2 joined", "me: hello from tab 1", "guest2: héllo from tab 2 ✓"]);
    const gotB = await lines(b);
    assertEquals(gotB, ["guest1: hello from tab 1", "me: héllo from tab 2 ✓"]);
    // The browser negotiated permessage-deflate with the server.
    const extensions = String(await c.evaluate(a, "ws.extensions"));
    assert(extensions.startsWith("permessage-deflate"), extensions);
  } finally {
    if (cdp !== undefined) {
      await within(cdp.send("Browser.close"), 5_000); // or the browser went first
      cdp.close();
      await within(cdp.closed, 5_000);
    }
    if (browser !== undefined) {
      if (!await within(browser.status, 10_000)) browser.kill("SIGKILL");
      await browser.status;
      await browserReading;
    }
    server.kill("SIGTERM");
    const status = await server.status;
    await serverReading;
    await Deno.remove(profile, { recursive: true }).catch(() => {});
    assert(status.signal === "SIGTERM" || status.success, `the server: ${serverErr.text}`);
  }
});
