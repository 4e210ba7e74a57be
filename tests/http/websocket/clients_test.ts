/**
 * Real clients against `upgradeWebSocket` on `serve()`: Deno's
 * `WebSocket`, Node's `ws` (npm) with permessage-deflate negotiated with and
 * without context takeover, Python's `websockets` (Debian
 * `python3-websockets`, compression on by default) and Bun's `WebSocket`.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import WS from "npm:ws@8.18.3";
import { startEchoServer, waitFor } from "./_client.ts";
import { withFdCheck } from "../../_helpers.ts";

function opened(ws: WebSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = (e) => reject(new Error(`client error: ${(e as ErrorEvent).message}`));
  });
}

Deno.test("clients: Deno's WebSocket: echo of text and bytes, subprotocol, close codes both ways", async () => {
  await withFdCheck(async () => {
    const server = startEchoServer({ protocol: "chat" }, (socket) => {
      socket.onmessage = (e) => {
        if (e.data === "close me") socket.close(4001, "as you wish");
        else socket.send(e.data);
      };
    });
    try {
      const ws = new WebSocket(`ws://127.0.0.1:${server.port}/chat?room=1`, ["x", "chat"]);
      ws.binaryType = "arraybuffer";
      await opened(ws);
      assertEquals(ws.protocol, "chat");
      const got: unknown[] = [];
      ws.onmessage = (e) => got.push(e.data);
      ws.send("héllo ✓");
      ws.send(new Uint8Array([0, 1, 2, 255]));
      const big = "z".repeat(3_000_000);
      ws.send(big);
      await waitFor(() => got.length === 3, "3 echoes");
      assertEquals(got[0], "héllo ✓");
      assertEquals(Array.from(new Uint8Array(got[1] as ArrayBuffer)), [0, 1, 2, 255]);
      assertEquals(got[2], big);
      const closed = new Promise<CloseEvent>((r) => ws.onclose = r);
      ws.send("close me");
      const ev = await closed;
      assertEquals([ev.code, ev.reason, ev.wasClean], [4001, "as you wish", true]);
      await waitFor(() => server.events.includes("close:4001:true"), "the server's close event");

      // The client closes: the server sees the client's code.
      const ws2 = new WebSocket(`ws://127.0.0.1:${server.port}/`, "chat");
      await opened(ws2);
      const closed2 = new Promise<CloseEvent>((r) => ws2.onclose = r);
      ws2.close(3003, "client done");
      assertEquals((await closed2).code, 3003);
      await waitFor(() => server.events.includes("close:3003:true"), "the server's close event");
    } finally {
      await server.close();
    }
  });
});

async function wsRoundTrip(
  port: number,
  perMessageDeflate: boolean | Record<string, unknown>,
): Promise<{ extensions: string; echoes: unknown[] }> {
  const ws = new WS(`ws://127.0.0.1:${port}/`, { perMessageDeflate: perMessageDeflate as never });
  await new Promise<void>((resolve, reject) => {
    ws.on("open", () => resolve());
    ws.on("error", reject);
  });
  const echoes: unknown[] = [];
  ws.on("message", (data: Uint8Array, isBinary: boolean) => {
    echoes.push(isBinary ? Array.from(data) : new TextDecoder().decode(data));
  });
  const big = "the same words again and again ".repeat(40000);
  ws.send("small text, compressed or not");
  ws.send(new Uint8Array([9, 8, 7]));
  ws.send(big);
  ws.send(big.slice(0, 5000)); // context taken over (or not): either way it must inflate
  await waitFor(() => echoes.length === 4, "4 echoes from ws");
  assertEquals(echoes[0], "small text, compressed or not");
  assertEquals(echoes[1], [9, 8, 7]);
  assertEquals(echoes[2], big);
  assertEquals(echoes[3], big.slice(0, 5000));
  const extensions = String(ws.extensions);
  const closed = new Promise<number>((r) => ws.on("close", (code: number) => r(code)));
  ws.close(1000);
  assertEquals(await closed, 1000);
  return { extensions, echoes };
}

Deno.test("clients: Node's ws (npm): permessage-deflate negotiated, with and without context takeover", async () => {
  await withFdCheck(async () => {
    const plain = startEchoServer();
    const shared = startEchoServer({ compression: true });
    const context = startEchoServer({
      compression: { serverNoContextTakeover: false, clientNoContextTakeover: false, level: 6 },
    });
    try {
      // No compression on the server: ws goes on without it.
      assertEquals((await wsRoundTrip(plain.port, true)).extensions, "");
      // Default: no context takeover either way.
      const a = await wsRoundTrip(shared.port, true);
      assert(a.extensions.includes("permessage-deflate"), a.extensions);
      // Context takeover both ways, and the client's window limited.
      const b = await wsRoundTrip(context.port, {
        clientMaxWindowBits: 10,
        serverMaxWindowBits: 11,
      });
      assert(b.extensions.includes("permessage-deflate"), b.extensions);
      assertEquals((await wsRoundTrip(context.port, false)).extensions, "");
      await waitFor(
        () => shared.events.filter((e) => e.startsWith("close:1000")).length === 1,
        "closes",
      );
    } finally {
      await plain.close();
      await shared.close();
      await context.close();
    }
  });
});

Deno.test("clients: Python websockets (python3-websockets) with compression", async () => {
  const python = "/usr/bin/python3";
  const probe = await new Deno.Command(python, {
    args: ["-c", "import websockets"],
    stdout: "null",
    stderr: "null",
  }).output().catch(() => null);
  if (probe === null || !probe.success) {
    console.log(
      "SKIPPED: python3-websockets is not installed (apt-get install python3-websockets)",
    );
    return;
  }
  await withFdCheck(async () => {
    const server = startEchoServer({ compression: { clientNoContextTakeover: false } });
    try {
      const out = await new Deno.Command(python, {
        args: [new URL("./_py_client.py", import.meta.url).pathname, String(server.port)],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert(out.success, `python client failed: ${stderr}`);
      const result = JSON.parse(new TextDecoder().decode(out.stdout));
      assert(String(result.extensions).startsWith("permessage-deflate"), result.extensions);
      assertEquals(result.text, "héllo from python");
      assertEquals(result.binary, [0, 1, 2, 255]);
      assertEquals(result.big_ok, true);
      assertEquals(result.pong, true);
      assertEquals(result.close_code, 1000);
      await waitFor(() => server.events.includes("close:1000:true"), "the server's close event");
    } finally {
      await server.close();
    }
  });
});

Deno.test("clients: Bun's WebSocket", async () => {
  const bun = await new Deno.Command("bun", { args: ["--version"], stdout: "null", stderr: "null" })
    .output().catch(() => null);
  if (bun === null || !bun.success) {
    console.log("SKIPPED: bun is not on PATH");
    return;
  }
  await withFdCheck(async () => {
    const server = startEchoServer();
    try {
      const script = `
        const ws = new WebSocket("ws://127.0.0.1:${server.port}/bun");
        ws.binaryType = "arraybuffer";
        const got = [];
        ws.onopen = () => { ws.send("from bun"); ws.send(new Uint8Array([4, 5, 6])); };
        ws.onmessage = (e) => {
          got.push(typeof e.data === "string" ? e.data : Array.from(new Uint8Array(e.data)));
          if (got.length === 2) ws.close(1000);
        };
        ws.onclose = (e) => { console.log(JSON.stringify({ got, code: e.code })); process.exit(0); };
        setTimeout(() => { console.log("timeout"); process.exit(1); }, 20000);
      `;
      const out = await new Deno.Command("bun", {
        args: ["-e", script],
        stdout: "piped",
        stderr: "piped",
      })
        .output();
      assert(
        out.success,
        new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout),
      );
      const result = JSON.parse(new TextDecoder().decode(out.stdout).trim());
      assertEquals(result, { got: ["from bun", [4, 5, 6]], code: 1000 });
    } finally {
      await server.close();
    }
  });
});
