/**
 * The client of `deno task bench --only bodies`: one request with a large
 * body on a fresh loopback connection, timed from the first byte sent to the
 * server's close.
 *
 *     deno run --allow-net bench/body_load.ts upload PORT BYTES
 *     deno run --allow-net bench/body_load.ts get PORT PATH
 *
 * `upload` POSTs BYTES (Content-Length) to `/upload` from one reused 1 MiB
 * buffer; `get` fetches PATH. Both send `Connection: close` and read to EOF.
 * Prints one JSON line: `{"seconds":…, "received":…, "ok":…}` (`ok`: the
 * status was 200, an upload's count came back right, a chunked body ended
 * with its last chunk).
 *
 * @module
 */
const [mode, portText, arg] = Deno.args;
const port = Number(portText);
if (!(mode === "upload" || mode === "get") || !(port > 0) || arg === undefined) {
  console.error("usage: body_load.ts upload PORT BYTES | get PORT PATH");
  Deno.exit(2);
}

const conn = await Deno.connect({ hostname: "127.0.0.1", port });
const t0 = performance.now();
const total = mode === "upload" ? Number(arg) : 0;
const head = mode === "upload"
  ? `POST /upload HTTP/1.1\r\nHost: bench\r\nContent-Length: ${total}\r\nConnection: close\r\n\r\n`
  : `GET ${arg} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n`;

async function writeAll(data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.byteLength;) off += await conn.write(data.subarray(off));
}

// Read to EOF, keeping the first 4 KiB and the last 16 bytes.
const reading = (async () => {
  const buf = new Uint8Array(256 * 1024);
  let received = 0;
  let first = "";
  let tail = new Uint8Array(0);
  for (let n; (n = await conn.read(buf)) !== null;) {
    if (first.length < 4096) first += new TextDecoder().decode(buf.subarray(0, n));
    const joined = new Uint8Array(tail.length + n);
    joined.set(tail);
    joined.set(buf.subarray(0, n), tail.length);
    tail = joined.slice(Math.max(0, joined.length - 16));
    received += n;
  }
  return { received, first, tail: new TextDecoder().decode(tail) };
})();

await writeAll(new TextEncoder().encode(head));
if (mode === "upload") {
  const chunk = new Uint8Array(1024 * 1024).fill(97);
  for (let left = total; left > 0;) {
    const n = Math.min(left, chunk.byteLength);
    await writeAll(chunk.subarray(0, n));
    left -= n;
  }
}
const { received, first, tail } = await reading;
const seconds = (performance.now() - t0) / 1000;
conn.close();
const status200 = first.startsWith("HTTP/1.1 200");
const ok = mode === "upload"
  ? status200 && first.endsWith(`\r\n\r\n${total}`)
  : status200 && (!/transfer-encoding: chunked/i.test(first) || tail.endsWith("0\r\n\r\n"));
console.log(JSON.stringify({ seconds, received, ok }));
