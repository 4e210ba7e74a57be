/**
 * Request bodies that are in hand when the head is parsed are read without a
 * stream: `json()`, `text()`, `arrayBuffer()`, `bytes()`, `formData()` and
 * `blob()` give the exact bytes, `bodyUsed` and a second read behave as
 * Deno.serve's, and a body split over several reads, or followed by a
 * pipelined request that lands in the same read buffer, is still exact.
 */
import { assert, assertEquals } from "@std/assert";
import { sleep } from "../_helpers.ts";
import { startServer, within } from "./_serve.ts";

const enc = new TextEncoder();

/** Send `pieces` (a pause between them), read until EOF, return each response's body. */
async function exchange(port: number, pieces: (string | Uint8Array)[]): Promise<string[]> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const reading = (async () => {
      const chunks: Uint8Array[] = [];
      const buf = new Uint8Array(65_536);
      for (let n; (n = await conn.read(buf)) !== null;) chunks.push(buf.slice(0, n));
      const all = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
      let at = 0;
      for (const c of chunks) all.set(c, at), at += c.length;
      return all;
    })();
    for (const p of pieces) {
      const bytes = typeof p === "string" ? enc.encode(p) : p;
      for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
      await sleep(30);
    }
    const all = await within(reading, 15_000, "the responses");
    const latin1 = String.fromCharCode(...all); // one char per byte, to find the heads
    const bodies: string[] = [];
    let pos = 0;
    while (pos < all.length) {
      const end = latin1.indexOf("\r\n\r\n", pos);
      assert(end > 0, `a response head in ${JSON.stringify(latin1.slice(pos, pos + 200))}`);
      const head = latin1.slice(pos, end);
      assert(head.startsWith("HTTP/1.1 200"), head);
      const len = Number(/content-length: (\d+)/i.exec(head)?.[1]);
      bodies.push(new TextDecoder().decode(all.subarray(end + 4, end + 4 + len)));
      pos = end + 4 + len;
    }
    return bodies;
  } finally {
    conn.close();
  }
}

function post(path: string, body: string | Uint8Array, headers = "", close = false): Uint8Array {
  const b = typeof body === "string" ? enc.encode(body) : body;
  const head = enc.encode(
    `POST ${path} HTTP/1.1\r\nHost: a\r\nContent-Length: ${b.length}\r\n${headers}` +
      (close ? "Connection: close\r\n" : "") + "\r\n",
  );
  const out = new Uint8Array(head.length + b.length);
  out.set(head);
  out.set(b, head.length);
  return out;
}

/** Reads the body the way the path says, then reads it again; reports all it saw. */
async function handler(req: Request): Promise<Response> {
  const path = new URL(req.url).pathname;
  const before = req.bodyUsed;
  let value: unknown;
  if (path === "/json") value = await req.json();
  else if (path === "/text") value = await req.text();
  else if (path === "/slow-text") {
    await sleep(100); // later requests are read meanwhile
    value = await req.text();
  } else if (path === "/arraybuffer") value = [...new Uint8Array(await req.arrayBuffer())];
  else if (path === "/bytes") value = [...await req.bytes()];
  else if (path === "/blob") {
    const b = await req.blob();
    value = [b.type, await b.text()];
  } else if (path === "/form") value = [...(await req.formData()).entries()];
  else if (path === "/stream") value = await new Response(req.body).text();
  else if (path === "/clone") {
    const c = req.clone();
    value = [await req.text(), await c.text()];
  }
  const after = req.bodyUsed;
  let second = "read";
  try {
    await req.text();
  } catch (e) {
    second = `${(e as Error).constructor.name}: ${(e as Error).message}`;
  }
  return Response.json({ value, before, after, second });
}

Deno.test("request body: a body in hand gives exact bytes through every reader, and a second read is a TypeError", async () => {
  const server = startServer({}, handler);
  try {
    const bin = new Uint8Array(300).map((_, i) => (i * 37) & 255);
    const form = "a=1&b=%C3%A9+x&a=2";
    const multipart = '--B\r\ncontent-disposition: form-data; name="f"\r\n\r\nv\u00e9\r\n--B--\r\n';
    const requests = [
      post("/json", '{"k":[1,"\u00e9\u{1F600}"]}'),
      post("/text", "\ufeffh\u00e9llo"),
      post("/arraybuffer", bin),
      post("/bytes", bin),
      post("/blob", "xyz", "Content-Type: Text/Plain\r\n"),
      post("/form", form, "Content-Type: application/x-www-form-urlencoded\r\n"),
      post("/form", multipart, "Content-Type: multipart/form-data; boundary=B\r\n"),
      post("/stream", "streamed"),
      post("/clone", "twice", "", true),
    ];
    const got = (await exchange(server.port, requests)).map((b) => JSON.parse(b));
    const used = { before: false, after: true, second: "TypeError: Body already consumed" };
    assertEquals(got[0], { value: { k: [1, "\u00e9\u{1F600}"] }, ...used });
    assertEquals(got[1], { value: "h\u00e9llo", ...used }); // the BOM is dropped, as Deno does
    assertEquals(got[2], { value: [...bin], ...used });
    assertEquals(got[3], { value: [...bin], ...used });
    assertEquals(got[4], { value: ["text/plain", "xyz"], ...used });
    assertEquals(got[5], { value: [["a", "1"], ["b", "\u00e9 x"], ["a", "2"]], ...used });
    assertEquals(got[6], { value: [["f", "v\u00e9"]], ...used });
    // (After a read through `req.body`, Deno.serve's bodyUsed stays false: not compared here.)
    assertEquals(got[7].value, "streamed");
    assertEquals(got[8].value, ["twice", "twice"]);
    assertEquals(got[8].after, true);
  } finally {
    await server.close();
  }
});

Deno.test("request body: a body split over several reads, and pipelined bodies sharing a read, stay exact", async () => {
  const server = startServer({}, handler);
  try {
    const body = JSON.stringify({ s: "x".repeat(5000), n: 42 });
    const whole = post("/json", body);
    const cut = whole.length - body.length + 7; // the head and 7 body bytes, then the rest
    // A slow handler's body, then two more requests in the same write: they
    // are parsed while it waits, from the same read buffer.
    const pipelined = [post("/slow-text", "first"), post("/text", "second")];
    const joined = new Uint8Array(pipelined[0]!.length + pipelined[1]!.length);
    joined.set(pipelined[0]!);
    joined.set(pipelined[1]!, pipelined[0]!.length);
    const got = (await exchange(server.port, [
      whole.subarray(0, cut),
      whole.subarray(cut, cut + 1000),
      whole.subarray(cut + 1000),
      joined,
      post("/text", "x".repeat(70_000), "", true),
    ])).map((b) => JSON.parse(b));
    assertEquals(got.length, 4);
    assertEquals(got[0].value, JSON.parse(body));
    assertEquals(got[0].second, "TypeError: Body already consumed");
    assertEquals(got[1].value, "first");
    assertEquals(got[2].value, "second");
    assertEquals(got[3].value, "x".repeat(70_000));
  } finally {
    await server.close();
  }
});
