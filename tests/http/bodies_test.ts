/**
 * Real bodies through `serve()`: a 64 MiB upload read through `req.body`, a
 * 20,000-chunk streamed response and a file body arrive byte-exact; and a
 * client that reads nothing cannot grow the server: an endless response
 * stream stops being pulled, and pipelined requests stop being read.
 */
import { assert, assertEquals } from "@std/assert";
import { readProcFile } from "../../ffi/process.ts";
import { sleep } from "../_helpers.ts";
import { rssKiB } from "./_raw.ts";
import { spawnServerChild, startServer, within } from "./_serve.ts";

/** A byte pattern of prime period, so chunk boundaries never line up with it. */
const PERIOD = 65_521;
const pattern = (() => {
  const p = new Uint8Array(PERIOD + 2 * 65_536);
  let s = 12345;
  for (let i = 0; i < PERIOD; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    p[i] = s >>> 16;
  }
  for (let i = PERIOD; i < p.length; i++) p[i] = p[i - PERIOD]!;
  return p;
})();

/** Bytes `[pos, pos + len)` of the endless pattern (len up to 128 KiB). */
function slice(pos: number, len: number): Uint8Array {
  if (len > 2 * 65_536) throw new RangeError(`Cannot slice the pattern: ${len} bytes`);
  return pattern.subarray(pos % PERIOD, pos % PERIOD + len);
}

/** Write all of `data`, short writes included. */
async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.byteLength;) off += await conn.write(data.subarray(off));
}

/** Read until EOF. */
async function readAll(conn: Deno.Conn): Promise<string> {
  let text = "";
  const decoder = new TextDecoder();
  const buf = new Uint8Array(65_536);
  for (let n; (n = await conn.read(buf)) !== null;) {
    text += decoder.decode(buf.subarray(0, n), { stream: true });
  }
  return text + decoder.decode();
}

Deno.test("bodies: a 64 MiB upload read through req.body arrives byte-exact, in order", async () => {
  const total = 64 * 1024 * 1024;
  const server = startServer({}, async (req) => {
    let pos = 0;
    let mismatches = 0;
    for await (const chunk of req.body!) {
      // Checked in pieces of at most 64 KiB (what `slice` covers).
      for (let at = 0; at < chunk.byteLength; at += 65_536) {
        const piece = chunk.subarray(at, at + 65_536);
        const want = slice(pos, piece.byteLength);
        for (let i = 0; i < piece.byteLength; i++) if (piece[i] !== want[i]) mismatches++;
        pos += piece.byteLength;
      }
    }
    return new Response(`${pos} ${mismatches}`);
  });
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    const reply = readAll(conn);
    await writeAll(
      conn,
      new TextEncoder().encode(
        `POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: ${total}\r\nConnection: close\r\n\r\n`,
      ),
    );
    // Odd-sized writes, so the server sees chunk boundaries anywhere.
    for (let pos = 0; pos < total;) {
      const len = Math.min(total - pos, 65_536 + (pos % 977));
      await writeAll(conn, slice(pos, len));
      pos += len;
    }
    const text = await within(reply, 60_000, "the upload's response");
    conn.close();
    assert(text.startsWith("HTTP/1.1 200"), text.slice(0, 100));
    assertEquals(text.slice(text.indexOf("\r\n\r\n") + 4), `${total} 0`);
  } finally {
    await server.close();
  }
});

Deno.test("bodies: a 20,000-chunk streamed response arrives byte-exact (fetch decodes the chunked framing)", async () => {
  const count = 20_000;
  const sizes = Array.from({ length: count }, (_, i) => 1 + (i * 7919) % 2000);
  const total = sizes.reduce((a, b) => a + b, 0);
  const server = startServer({}, () => {
    let i = 0;
    let pos = 0;
    return new Response(
      new ReadableStream<Uint8Array>({
        pull(c) {
          if (i === count) return c.close();
          const len = sizes[i++]!;
          // A fresh copy per chunk: the handler hands each one over.
          c.enqueue(slice(pos, len).slice());
          pos += len;
        },
      }),
    );
  });
  try {
    const res = await within(fetch(`http://127.0.0.1:${server.port}/`), 10_000, "the head");
    assertEquals(res.headers.get("transfer-encoding"), "chunked");
    const body = await within(res.bytes(), 60_000, "the body");
    assertEquals(body.byteLength, total);
    let mismatches = 0;
    for (let pos = 0; pos < total; pos += 65_536) {
      const len = Math.min(65_536, total - pos);
      const want = slice(pos, len);
      for (let i = 0; i < len; i++) if (body[pos + i] !== want[i]) mismatches++;
    }
    assertEquals(mismatches, 0, "bytes were lost, duplicated or reordered");
  } finally {
    await server.close();
  }
});

Deno.test("bodies: a file body (Deno.open().readable) arrives byte-exact", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/f.bin`;
  const size = 8 * 1024 * 1024 + 12_345;
  const data = new Uint8Array(size);
  for (let pos = 0; pos < size; pos += 65_536) {
    data.set(slice(pos, Math.min(65_536, size - pos)), pos);
  }
  await Deno.writeFile(path, data);
  const server = startServer({}, async () => new Response((await Deno.open(path)).readable));
  try {
    const res = await fetch(`http://127.0.0.1:${server.port}/`);
    const body = await within(res.bytes(), 60_000, "the file body");
    assertEquals(body.byteLength, size);
    assert(body.every((b, i) => b === data[i]), "the file body differs");
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bodies: a byte stream that enqueues odd-sized chunks arrives byte-exact, chunked and with a content-length", async () => {
  const size = 3 * 1024 * 1024 + 7;
  const byteStream = () => {
    let pos = 0;
    return new ReadableStream({
      type: "bytes",
      pull(c: ReadableByteStreamController) {
        if (pos >= size) {
          c.close();
          // A pending read gets its (empty) view back.
          c.byobRequest?.respond(0);
          return;
        }
        // Sizes above, below and across the server's read buffer.
        const len = Math.min(size - pos, [1, 300_000, 4093, 65_536, 700_001][pos % 5]!);
        const out = new Uint8Array(len);
        for (let at = 0; at < len; at += 65_536) {
          out.set(slice(pos + at, Math.min(65_536, len - at)), at);
        }
        c.enqueue(out);
        pos += len;
      },
    });
  };
  const server = startServer(
    {},
    (req) =>
      new URL(req.url).pathname === "/length"
        ? new Response(byteStream(), { headers: { "content-length": String(size) } })
        : new Response(byteStream()),
  );
  try {
    for (const path of ["/chunked", "/length"]) {
      const res = await fetch(`http://127.0.0.1:${server.port}${path}`);
      assertEquals(
        res.headers.get("content-length"),
        path === "/length" ? String(size) : null,
        path,
      );
      const body = await within(res.bytes(), 60_000, `the ${path} body`);
      assertEquals(body.byteLength, size, path);
      let bad = -1;
      for (let pos = 0; pos < size && bad < 0; pos += 65_536) {
        const want = slice(pos, Math.min(65_536, size - pos));
        for (let i = 0; i < want.length; i++) {
          if (body[pos + i] !== want[i]) {
            bad = pos + i;
            break;
          }
        }
      }
      assertEquals(bad, -1, `${path}: the first differing byte`);
    }
  } finally {
    await server.close();
  }
});

Deno.test("bodies: a client that reads nothing stops an endless response stream (the server pulls a bounded amount)", async () => {
  const chunk = new Uint8Array(64 * 1024).fill(120);
  const cap = 256 * 1024 * 1024; // a server without backpressure stops here, and fails
  let produced = 0;
  let cancelled = false;
  const server = startServer({}, () =>
    new Response(
      new ReadableStream<Uint8Array>({
        pull(c) {
          if (produced >= cap) return c.close();
          produced += chunk.byteLength;
          c.enqueue(chunk.slice());
        },
        cancel() {
          cancelled = true;
        },
      }),
    ));
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    await writeAll(conn, new TextEncoder().encode("GET /endless HTTP/1.1\r\nHost: a\r\n\r\n"));
    // The client reads nothing. What the server pulls is at most the kernel's
    // socket buffers (a few MiB on loopback) plus its own high-water marks.
    await sleep(1500);
    const atFirst = produced;
    await sleep(1000);
    const atLast = produced;
    console.log(
      `endless stream, client not reading: pulled ${(atFirst / 1048576).toFixed(1)} MiB, ` +
        `then ${((atLast - atFirst) / 1048576).toFixed(1)} MiB more in 1 s`,
    );
    assert(atFirst > 0, "the stream never started");
    assert(atLast < 32 * 1024 * 1024, `the server pulled ${atLast} bytes nobody read`);
    assert(atLast - atFirst <= 2 * chunk.byteLength, "the server kept pulling");
    conn.close();
    // The client left: the stream is cancelled.
    const deadline = Date.now() + 10_000;
    while (!cancelled && Date.now() < deadline) await sleep(20);
    assert(cancelled, "the stream was not cancelled after the client left");
  } finally {
    await server.close();
  }
});

Deno.test({
  name:
    "bodies: a client that pipelines requests and reads nothing is stopped, and the server's RSS stays bounded (child server)",
  async fn() {
    const server = await spawnServerChild("hello");
    try {
      const status = () => rssKiB(readProcFile(`/proc/${server.pid}/status`));
      // Warm up so the baseline includes the code paths of serving.
      {
        const w = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
        await writeAll(
          w,
          new TextEncoder().encode("GET / HTTP/1.1\r\nHost: a\r\n\r\n".repeat(2000)),
        );
        w.closeWrite();
        await readAll(w);
        w.close();
      }
      await sleep(200);
      const before = status();
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      // Whole requests, each write finishing what the last one left (short
      // writes included), so the stream of requests stays valid.
      const block = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: a\r\n\r\n".repeat(2400));
      let written = 0;
      let stalled = false;
      let pending = block.subarray(0);
      const end = Date.now() + 10_000;
      while (Date.now() < end) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const w = conn.write(pending);
        const r = await Promise.race([
          w,
          new Promise<"stall">((res) => timer = setTimeout(() => res("stall"), 1500)),
        ]);
        clearTimeout(timer);
        if (r === "stall") {
          stalled = true;
          w.catch(() => {});
          break;
        }
        written += r;
        pending = r < pending.byteLength ? pending.subarray(r) : block.subarray(0);
      }
      const after = status();
      conn.close();
      const growthMiB = (after - before) / 1024;
      console.log(
        `pipelining without reading: wrote ${(written / 1048576).toFixed(1)} MiB of requests, ` +
          `stalled=${stalled}, server RSS +${growthMiB.toFixed(1)} MiB`,
      );
      assert(stalled, "the server kept reading a connection whose output it could not send");
      assert(written < 64 * 1024 * 1024, `the server took ${written} bytes of requests`);
      assert(growthMiB < 48, `server RSS grew by ${growthMiB.toFixed(1)} MiB`);
      assert(!server.exited(), "the server died");
    } finally {
      await server.kill();
    }
  },
});
