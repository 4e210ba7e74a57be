/**
 * `serve()` with the listener's `proxyProtocol` option (passed through
 * `listener`): the handler's `info.remoteAddr` is the client's address from
 * the header and `info.proxy` the header itself; without a balancer
 * installed, this is what the deploy tests rest on.
 */
import { assert, assertEquals } from "@std/assert";
import { serve } from "../../http/mod.ts";

async function exchange(port: number, bytes: string): Promise<string> {
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await c.write(Uint8Array.from(bytes, (ch) => ch.charCodeAt(0)));
    let text = "";
    const buf = new Uint8Array(4096);
    for (;;) {
      let n: number | null;
      try {
        n = await c.read(buf);
      } catch {
        break; // reset
      }
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    return text;
  } finally {
    c.close();
  }
}

Deno.test("deploy: serve() with listener.proxyProtocol: info.remoteAddr and info.proxy come from the header", async () => {
  const server = serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen() {},
    listener: { proxyProtocol: { version: "any", trusted: ["127.0.0.1"], timeoutMs: 2000 } },
  }, (_req, info) =>
    Response.json({
      remoteAddr: info.remoteAddr,
      command: info.proxy?.command,
      proxy: info.proxy?.proxyAddress,
      authority: info.proxy?.authority ?? null,
    }));
  try {
    const port = (server.addr as { port: number }).port;
    const req = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    const v1 = await exchange(port, `PROXY TCP4 203.0.113.5 10.0.0.1 4444 80\r\n${req}`);
    const body1 = JSON.parse(v1.slice(v1.indexOf("\r\n\r\n") + 4));
    assertEquals(body1.remoteAddr, { transport: "tcp", hostname: "203.0.113.5", port: 4444 });
    assertEquals(body1.command, "proxy");
    assertEquals(body1.proxy.address, "127.0.0.1");
    // v2 with an AUTHORITY TLV
    const sig = "\r\n\r\n\0\r\nQUIT\n";
    const v2 = sig + "\x21\x11\x00\x13" + "\xc6\x33\x64\x07" + "\x0a\x00\x00\x01" +
      "\x9c\x40\x00\x50" + "\x02\x00\x04" + "a.io";
    const r2 = await exchange(port, v2 + req);
    const body2 = JSON.parse(r2.slice(r2.indexOf("\r\n\r\n") + 4));
    assertEquals(body2.remoteAddr, { transport: "tcp", hostname: "198.51.100.7", port: 40000 });
    assertEquals(body2.authority, "a.io");
    // no header: closed, no response
    assertEquals(await exchange(port, req), "");
  } finally {
    await server.shutdown();
  }
});

Deno.test("deploy: serve() validates listener.proxyProtocol before binding", () => {
  let threw: unknown;
  try {
    serve({
      hostname: "127.0.0.1",
      port: 0,
      onListen() {},
      listener: { proxyProtocol: { version: "v2", trusted: ["10.0.0.0/33"] } },
    }, () => new Response("x"));
  } catch (e) {
    threw = e;
  }
  assert(threw instanceof RangeError, String(threw));
  assert(String((threw as Error).message).includes("10.0.0.0/33"));
});
