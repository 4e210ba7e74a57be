/**
 * Reading a web `Response` for the wire (private): its status, header lines
 * and what kind of body it has, using Deno's own fast-path fields when the
 * response was built with only a content type (as `Deno.serve` does).
 *
 * @module
 */

const probe = new Response("x", { headers: { "content-type": "a/b" } });
const symbols = Object.getOwnPropertySymbols(probe);
const find = (d: string) => symbols.find((s) => s.description === d);
const FAST_STATUS = find("serve fast status");
const FAST_BODY = find("serve fast body");
const FAST_KIND = find("serve fast header kind");
const FAST_TYPE = find("serve fast content type");
const INNER = find("response");

// deno-lint-ignore no-explicit-any
type Any = any;

function probeFast(): boolean {
  if (!FAST_STATUS || !FAST_BODY || !FAST_KIND || !FAST_TYPE) return false;
  const p = probe as Any;
  const q = new Response(new Uint8Array(1)) as Any;
  const mutated = new Response("x") as Any;
  mutated.headers.set("x-a", "1");
  return p[FAST_STATUS] === 200 && p[FAST_BODY] === "x" && p[FAST_KIND] === 2 &&
    p[FAST_TYPE] === "a/b" && q[FAST_KIND] === 0 && q[FAST_BODY] instanceof Uint8Array &&
    mutated[FAST_STATUS] === 0;
}

const FAST = probeFast();

/** The body of a fast-path response (status 200, content type only), or null. */
export function fastBody(res: Response): string | Uint8Array | null {
  if (!FAST) return null;
  const r = res as Any;
  if (r[FAST_STATUS!] !== 200) return null;
  return r[FAST_BODY!] as string | Uint8Array;
}

/** The content type of a fast-path response. */
export function fastContentType(res: Response): string | null {
  const r = res as Any;
  const kind = r[FAST_KIND!] as number;
  if (kind === 0) return null;
  return (r[FAST_TYPE!] as string | null) ?? "text/plain;charset=UTF-8";
}

/** What a response body is, as far as can be told without reading it. */
export type BodySource =
  | { kind: "none" }
  | { kind: "bytes"; bytes: Uint8Array }
  | { kind: "string"; text: string }
  | { kind: "blob"; blob: Blob }
  | { kind: "stream"; stream: ReadableStream<Uint8Array> };

/** The body of `res` (generic path). */
export function bodySource(res: Response): BodySource {
  if (res.bodyUsed) throw new TypeError("Cannot send the response: its body was already read");
  const inner = INNER === undefined ? undefined : (res as Any)[INNER];
  const body = inner?.body;
  if (inner !== undefined && body === null) return { kind: "none" };
  if (body !== undefined) {
    const source = body.source;
    if (typeof source === "string") return { kind: "string", text: source };
    if (source instanceof Uint8Array) return { kind: "bytes", bytes: source };
    if (source instanceof Blob) return { kind: "blob", blob: source };
  }
  const stream = res.body;
  if (stream === null) return { kind: "none" };
  return { kind: "stream", stream };
}

const RESERVED = new Set(["content-length", "transfer-encoding", "connection", "keep-alive"]);

/** The header lines of `res` to send (framing fields are the server's). */
export function headerLines(res: Response): { lines: string; hasDate: boolean; close: boolean } {
  let lines = "";
  let hasDate = false;
  let close = false;
  for (const [name, value] of res.headers) {
    if (RESERVED.has(name)) {
      if (name === "connection" && /(^|,)\s*close\s*(,|$)/i.test(value)) close = true;
      continue;
    }
    if (name === "date") hasDate = true;
    lines += `${name}: ${value}\r\n`;
  }
  return { lines, hasDate, close };
}
