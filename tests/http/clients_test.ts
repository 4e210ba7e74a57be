/**
 * Real HTTP clients against ffinet's `serve()` on 127.0.0.1: curl, Deno's
 * `fetch`, Node's `http` module and Python's `http.client`. A missing client
 * is skipped with a printed reason.
 *
 * @module
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { startServer, type TestServer } from "./_serve.ts";
import type { ServeHandler } from "../../http/types.ts";

function which(cmd: string): boolean {
  try {
    const out = new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`], stdout: "null" })
      .outputSync();
    return out.success;
  } catch {
    return false;
  }
}

const HAVE = { curl: which("curl"), node: which("node"), python3: which("python3") };
for (const [name, ok] of Object.entries(HAVE)) {
  if (!ok) console.log(`skip: ${name} is not installed; its client test is ignored`);
}

interface Seen {
  method: string;
  path: string;
  remotePort: number;
  te: string | null;
  cl: string | null;
  expect: string | null;
}

function makeHandler(seen: Seen[]): ServeHandler {
  return async (req, info) => {
    const url = new URL(req.url);
    const remotePort = info.remoteAddr.transport === "tcp" ? info.remoteAddr.port : 0;
    const body = req.body ? new Uint8Array(await req.arrayBuffer()) : new Uint8Array(0);
    seen.push({
      method: req.method,
      path: url.pathname,
      remotePort,
      te: req.headers.get("transfer-encoding"),
      cl: req.headers.get("content-length"),
      expect: req.headers.get("expect"),
    });
    switch (url.pathname) {
      case "/echo":
        return new Response(body, {
          headers: {
            "content-type": req.headers.get("content-type") ?? "application/octet-stream",
          },
        });
      case "/json":
        return Response.json({ message: "Hello, World!", method: req.method, size: body.length });
      case "/stream":
        return new Response(
          new ReadableStream({
            start(c) {
              for (let i = 0; i < 5; i++) c.enqueue(new TextEncoder().encode(`part${i};`));
              c.close();
            },
          }),
        );
      default:
        return new Response(`Hello, World! ${url.pathname}`, {
          headers: { "content-type": "text/plain" },
        });
    }
  };
}

async function withServer(fn: (s: TestServer, seen: Seen[]) => Promise<void>): Promise<void> {
  const seen: Seen[] = [];
  const server = startServer({}, makeHandler(seen));
  try {
    await fn(server, seen);
  } finally {
    await server.close();
  }
}

async function run(
  cmd: string,
  args: string[],
  stdin?: Uint8Array,
): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const t0 = performance.now();
  const child = new Deno.Command(cmd, {
    args,
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin) {
    const w = child.stdin.getWriter();
    await w.write(stdin);
    await w.close();
  }
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  const out = await child.output();
  clearTimeout(timer);
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
    ms: performance.now() - t0,
  };
}

Deno.test({
  name:
    "clients: curl: GET, POST with a body, --http1.1, keep-alive reuse across URLs, Expect: 100-continue without the 1 s wait",
  ignore: !HAVE.curl,
  async fn() {
    await withServer(async (server, seen) => {
      const base = `http://127.0.0.1:${server.port}`;
      {
        const r = await run("curl", ["-sS", "-i", "--http1.1", `${base}/hello`]);
        assertEquals(r.code, 0, r.stderr);
        assertMatch(r.stdout, /^HTTP\/1\.1 200 OK\r\n/);
        assertMatch(r.stdout, /\r\n\r\nHello, World! \/hello$/);
      }
      {
        const r = await run("curl", [
          "-sS",
          "--http1.1",
          "-H",
          "content-type: text/plain",
          "--data-binary",
          "posted body",
          `${base}/echo`,
        ]);
        assertEquals(r.code, 0, r.stderr);
        assertEquals(r.stdout, "posted body");
      }
      {
        seen.length = 0;
        const r = await run("curl", [
          "-sS",
          "-v",
          "--http1.1",
          `${base}/a`,
          `${base}/b`,
          `${base}/json`,
        ]);
        assertEquals(r.code, 0, r.stderr);
        assertEquals(
          r.stdout,
          'Hello, World! /aHello, World! /b{"message":"Hello, World!","method":"GET","size":0}',
        );
        assertEquals(seen.length, 3);
        assertEquals(
          new Set(seen.map((s) => s.remotePort)).size,
          1,
          "curl reused one connection for the three URLs",
        );
        assertMatch(r.stderr, /Re-?using existing/i);
      }
      {
        seen.length = 0;
        const body = new Uint8Array(2 * 1024 * 1024).fill(97);
        const r = await run("curl", [
          "-sS",
          "-v",
          "--http1.1",
          "--expect100-timeout",
          "3",
          "-H",
          "Expect: 100-continue",
          "--data-binary",
          "@-",
          "-o",
          "/dev/null",
          "-w",
          "%{http_code} %{size_download} %{time_total}",
          `${base}/echo`,
        ], body);
        assertEquals(r.code, 0, r.stderr);
        const [code, size, total] = r.stdout.split(" ");
        assertEquals(code, "200");
        assertEquals(Number(size), body.length);
        assertMatch(r.stderr, /HTTP\/1\.1 100 Continue/, "the server sent 100 Continue");
        assertEquals(seen[0]?.expect, "100-continue");
        assert(Number(total) < 2, `curl took ${total} s: it waited for a 100 Continue`);
      }
    });
  },
});

Deno.test("clients: Deno fetch: GET, POST JSON, streamed (chunked) response, keep-alive", async () => {
  await withServer(async (server, seen) => {
    const base = `http://127.0.0.1:${server.port}`;
    const a = await fetch(`${base}/x`);
    assertEquals(a.status, 200);
    assertEquals(await a.text(), "Hello, World! /x");
    const b = await fetch(`${base}/json`, { method: "POST", body: JSON.stringify({ a: 1 }) });
    assertEquals(await b.json(), { message: "Hello, World!", method: "POST", size: 7 });
    const c = await fetch(`${base}/stream`);
    assertEquals(await c.text(), "part0;part1;part2;part3;part4;");
    const d = await fetch(`${base}/echo`, {
      method: "PUT",
      body: new ReadableStream({
        start(ctl) {
          ctl.enqueue(new TextEncoder().encode("streamed "));
          ctl.enqueue(new TextEncoder().encode("upload"));
          ctl.close();
        },
      }),
    });
    assertEquals(await d.text(), "streamed upload");
    assertEquals(seen.length, 4);
    assertEquals(new Set(seen.map((s) => s.remotePort)).size, 1, "fetch kept the connection alive");
  });
});

const NODE_SCRIPT = `
import http from "node:http";
const port = Number(process.argv[1]);
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
function req(method, path, body, chunked) {
  return new Promise((resolve, reject) => {
    const headers = chunked ? {} : body ? { "content-length": Buffer.byteLength(body) } : {};
    const r = http.request({ host: "127.0.0.1", port, method, path, agent, headers }, (res) => {
      let data = "";
      res.setEncoding("utf8");
      res.on("data", (d) => data += d);
      res.on("end", () => resolve({ status: res.statusCode, body: data, te: res.headers["transfer-encoding"] ?? null }));
    });
    r.on("error", reject);
    if (body && chunked) { r.write(body.slice(0, 3)); setTimeout(() => r.end(body.slice(3)), 20); }
    else if (body) r.end(body); else r.end();
  });
}
const out = [];
out.push(await req("GET", "/node"));
out.push(await req("POST", "/echo", "node body"));
out.push(await req("POST", "/echo", "chunked node body", true));
out.push(await req("GET", "/stream"));
agent.destroy();
console.log(JSON.stringify(out));
`;

Deno.test({
  name:
    "clients: Node's http client: GET, POST, chunked upload, streamed response, one kept-alive socket",
  ignore: !HAVE.node,
  async fn() {
    await withServer(async (server, seen) => {
      const r = await run("node", ["--input-type=module", "-e", NODE_SCRIPT, String(server.port)]);
      assertEquals(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout);
      assertEquals(out[0], { status: 200, body: "Hello, World! /node", te: null });
      assertEquals(out[1], { status: 200, body: "node body", te: null });
      assertEquals(out[2], { status: 200, body: "chunked node body", te: null });
      assertEquals(out[3], { status: 200, body: "part0;part1;part2;part3;part4;", te: "chunked" });
      assertEquals(seen[2]?.te, "chunked", "node sent the upload chunked");
      assertEquals(new Set(seen.map((s) => s.remotePort)).size, 1, "one kept-alive socket");
    });
  },
});

const PY_SCRIPT = `
import http.client, json, sys
port = int(sys.argv[1])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
out = []
def get(method, path, body=None, headers={}, chunked=False):
    c.request(method, path, body=body, headers=headers, encode_chunked=chunked)
    r = c.getresponse()
    out.append({"status": r.status, "body": r.read().decode(), "te": r.getheader("transfer-encoding")})
get("GET", "/py")
get("POST", "/echo", b"python body", {"content-type": "text/plain"})
get("POST", "/echo", iter([b"chunk1 ", b"chunk2"]), {"transfer-encoding": "chunked"}, True)
get("GET", "/stream")
get("HEAD", "/py")
c.close()
print(json.dumps(out))
`;

Deno.test({
  name:
    "clients: Python's http.client: GET, POST, chunked upload, streamed response, HEAD, one connection",
  ignore: !HAVE.python3,
  async fn() {
    await withServer(async (server, seen) => {
      const r = await run("python3", ["-c", PY_SCRIPT, String(server.port)]);
      assertEquals(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout);
      assertEquals(out[0], { status: 200, body: "Hello, World! /py", te: null });
      assertEquals(out[1], { status: 200, body: "python body", te: null });
      assertEquals(out[2], { status: 200, body: "chunk1 chunk2", te: null });
      assertEquals(out[3], { status: 200, body: "part0;part1;part2;part3;part4;", te: "chunked" });
      assertEquals(out[4], { status: 200, body: "", te: null });
      assertEquals(seen[2]?.te, "chunked");
      assertEquals(new Set(seen.map((s) => s.remotePort)).size, 1, "one connection");
    });
  },
});
