/**
 * Upgrades on `serve()`, over raw sockets: a 101 either switches the
 * connection (`upgradeConnection`, with the bytes already read handed over)
 * or is refused with an error naming `upgradeConnection`; never a half 101.
 * An upgrade response is bound to its own request and used once.
 *
 * @module
 */
import { assert, assertEquals, assertMatch, assertRejects } from "@std/assert";
import { must, RawClient, request } from "./_raw.ts";
import { deferred, startServer, within } from "./_serve.ts";
import { upgradeConnection, type UpgradedConnection } from "../../http/mod.ts";

const UPGRADE = { connection: "upgrade", upgrade: "echo" };
const dec = new TextDecoder();

Deno.test("upgrade: upgradeConnection switches: 101 with connection: upgrade, then the raw connection with the bytes already read", async () => {
  const handed = deferred<UpgradedConnection>();
  const server = startServer({}, (req) => {
    const { response, connection } = upgradeConnection(req, { headers: { "x-proto": "echo" } });
    connection.then(handed.resolve, handed.reject);
    return response;
  });
  try {
    if (server.kind === "deno") return console.log("upgrade: upgradeConnection is ffinet's");
    using c = await RawClient.connect(server.port);
    await c.write(request("GET", "/", UPGRADE) + "early bytes");
    const r = must(await c.readResponse(), "the 101");
    assertEquals(r.status, 101);
    assertEquals(r.headers.get("connection"), "upgrade");
    assertEquals(r.headers.get("upgrade"), "echo");
    assertEquals(r.headers.get("x-proto"), "echo");
    assert(!r.headers.has("content-length") && !r.headers.has("transfer-encoding"));
    const { conn, head } = await within(handed.promise, 5000, "the handed-over connection");
    assertEquals(dec.decode(head), "early bytes");
    conn.onData = (data) => conn.write(data.slice());
    await c.write("ping");
    while (dec.decode(c.pending) !== "ping") assertEquals(await c.fill(5000), "data");
    conn.close();
  } finally {
    await server.close();
  }
});

Deno.test("upgrade: a 101 that does not switch (a hand-made 101) is refused: 500, onError names upgradeConnection, HTTP goes on; Deno.upgradeWebSocket switches", async () => {
  const errors: unknown[] = [];
  const server = startServer({
    onError(e) {
      errors.push(e);
      return new Response("refused", { status: 500 });
    },
  }, (req) => {
    if (new URL(req.url).pathname === "/ws") return Deno.upgradeWebSocket(req).response;
    const r = new Response(null, { status: 200 });
    Object.defineProperty(r, "status", { value: 101 });
    return r;
  });
  try {
    if (server.kind === "deno") return console.log("upgrade: Deno.serve sends these 101s");
    using c = await RawClient.connect(server.port);
    const ws = {
      connection: "upgrade",
      upgrade: "websocket",
      "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      "sec-websocket-version": "13",
    };
    await c.write(request("GET", "/plain101", UPGRADE));
    const r = must(await c.readResponse(), "/plain101");
    assertEquals([r.status, r.text], [500, "refused"], "/plain101");
    // The connection still speaks HTTP.
    await c.write(request("GET", "/plain101"));
    assertEquals(must(await c.readResponse(), "after").status, 500);
    assertEquals(errors.length, 2);
    for (const e of errors) assertMatch(String(e), /upgradeConnection/);
    // The global Deno.upgradeWebSocket (wrapped by "@ffinet/ffinet/http") switches.
    using d = await RawClient.connect(server.port);
    await d.write(request("GET", "/ws", ws));
    assertEquals(must(await d.readResponse(), "/ws").status, 101);
  } finally {
    await server.close();
  }
});

Deno.test("upgrade: an upgrade response is bound to its request and used once", async () => {
  const errors: unknown[] = [];
  let first: { response: Response; connection: Promise<UpgradedConnection> } | undefined;
  const server = startServer({
    onError(e) {
      errors.push(e);
      return new Response("refused", { status: 500 });
    },
  }, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/make") {
      first = upgradeConnection(req);
      return new Response("made");
    }
    if (path === "/other") return first!.response; // made for another request
    if (path === "/noheader") return upgradeConnection(req).response;
    const own = upgradeConnection(req);
    own.connection.then(({ conn }) => conn.close());
    first = own;
    return own.response;
  });
  try {
    if (server.kind === "deno") return console.log("upgrade: upgradeConnection is ffinet's");
    {
      using c = await RawClient.connect(server.port);
      await c.write(request("GET", "/make", UPGRADE));
      assertEquals(must(await c.readResponse(), "/make").text, "made");
    }
    {
      using c = await RawClient.connect(server.port);
      await c.write(request("GET", "/other", UPGRADE));
      assertEquals(must(await c.readResponse(), "/other").status, 500);
    }
    {
      // Used by its own request: switches; then it is spent for any other.
      using c = await RawClient.connect(server.port);
      await c.write(request("GET", "/own", UPGRADE));
      assertEquals(must(await c.readResponse(), "/own").status, 101);
      using d = await RawClient.connect(server.port);
      await d.write(request("GET", "/other", UPGRADE));
      assertEquals(must(await d.readResponse(), "/other again").status, 500);
    }
    {
      // No Upgrade header: refused, and its connection promise rejects.
      using c = await RawClient.connect(server.port);
      let made: Promise<UpgradedConnection> | undefined;
      const server2 = startServer({ onError: () => new Response("no", { status: 500 }) }, (req) => {
        const u = upgradeConnection(req);
        made = u.connection;
        return u.response;
      });
      try {
        using e = await RawClient.connect(server2.port);
        await e.write(request("GET", "/"));
        assertEquals(must(await e.readResponse(), "no upgrade header").status, 500);
        await assertRejects(() => made!, TypeError, "Upgrade");
      } finally {
        await server2.close();
      }
      c.close();
    }
    assertEquals(errors.length, 2);
    assertMatch(String(errors[0]), /another request/);
    assertMatch(String(errors[1]), /another request|used already/);
  } finally {
    await server.close();
  }
});
