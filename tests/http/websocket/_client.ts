/**
 * A raw WebSocket client for the conformance tests: a TCP connection, the
 * opening handshake by hand, any bytes out, and the server's frames parsed
 * by the library's parser in the client role; plus an echo server on
 * `serve()` with `upgradeWebSocket`.
 *
 * @module
 */
import { assert } from "@std/assert";
import { serve } from "../../../http/mod.ts";
import {
  FrameParser,
  type MessageInflater,
  upgradeWebSocket,
  type UpgradeWebSocketOptions,
} from "../../../http/websocket/mod.ts";
import { Recorder } from "./_frames.ts";
import { waitFor as poll } from "../../_helpers.ts";

/** How long a test waits for something that should happen (a loaded 2-core machine). */
export const WAIT_MS = 10_000;

/** A running echo server and what its sockets saw. */
export interface EchoServer {
  port: number;
  /** Server-side events: `open`, `error:<message>`, `close:<code>:<clean>`. */
  events: string[];
  close(): Promise<void>;
}

/**
 * An echo server: every message comes back as it came (text as text).
 * `onSocket` may change the socket's handlers.
 */
export function startEchoServer(
  options: UpgradeWebSocketOptions = {},
  onSocket?: (socket: ReturnType<typeof upgradeWebSocket>["socket"]) => void,
): EchoServer {
  const events: string[] = [];
  const server = serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("plain");
    }
    const { socket, response } = upgradeWebSocket(req, options);
    socket.onopen = () => events.push("open");
    socket.onmessage = (e) => socket.send(e.data);
    socket.onerror = (e) => events.push(`error:${(e as ErrorEvent).message}`);
    socket.onclose = (e) => events.push(`close:${e.code}:${e.wasClean}`);
    onSocket?.(socket);
    return response;
  });
  return {
    port: (server.addr as Deno.NetAddr).port,
    events,
    close: () => server.shutdown(),
  };
}

/** Resolve once `cond()` holds; throw after `ms` (tests/_helpers.ts's poll, with `what` first). */
export function waitFor(cond: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
  return poll(cond, ms, what);
}

/** A raw client connection after a successful handshake. */
export class RawClient {
  readonly conn: Deno.TcpConn;
  /** The 101 response head. */
  readonly head: string;
  /** Server frames (`text:…`, `binary:…`, `ping:…`, `pong:…`, `close:<code>:<reason>`, `fail:…`) and `eof`. */
  readonly log: string[];
  /** Every byte the server sent after the 101 head, in order. */
  readonly received: number[] = [];
  readonly #reading: Promise<void>;
  #closed = false;

  private constructor(
    conn: Deno.TcpConn,
    head: string,
    rest: Uint8Array,
    inflater?: MessageInflater,
  ) {
    this.conn = conn;
    this.head = head;
    const rec = new Recorder();
    const log = rec.log;
    this.log = log;
    const parser = new FrameParser(
      rec,
      inflater ? { role: "client", inflater, limits: { maxMessageSize: 1 << 26 } } : {
        role: "client",
        limits: { maxMessageSize: 1 << 26 },
      },
    );
    parser.push(rest);
    const received = this.received;
    for (const b of rest) received.push(b);
    this.#reading = (async () => {
      const buf = new Uint8Array(65536);
      try {
        for (;;) {
          const n = await conn.read(buf);
          if (n === null) break;
          parser.push(buf.subarray(0, n));
          // The first 64 KiB, for byte-exact comparisons.
          if (received.length < 1 << 16) { for (const b of buf.subarray(0, n)) received.push(b); }
        }
      } catch {
        log.push("reset");
      }
      log.push("eof");
    })();
  }

  /** Connect and shake hands; `extensions` goes in `Sec-WebSocket-Extensions`. */
  static async open(
    port: number,
    { extensions, inflater, path = "/", protocols }: {
      extensions?: string;
      protocols?: string;
      inflater?: MessageInflater;
      path?: string;
    } = {},
  ): Promise<RawClient> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      return await RawClient.#handshake(conn, port, extensions, protocols, path, inflater);
    } catch (e) {
      conn.close();
      throw e;
    }
  }

  static async #handshake(
    conn: Deno.TcpConn,
    port: number,
    extensions: string | undefined,
    protocols: string | undefined,
    path: string,
    inflater: MessageInflater | undefined,
  ): Promise<RawClient> {
    const req = `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
      `Sec-WebSocket-Version: 13\r\n` +
      (extensions ? `Sec-WebSocket-Extensions: ${extensions}\r\n` : "") +
      (protocols ? `Sec-WebSocket-Protocol: ${protocols}\r\n` : "") + "\r\n";
    await conn.write(new TextEncoder().encode(req));
    let bytes = new Uint8Array(0);
    const buf = new Uint8Array(4096);
    for (;;) {
      const text = new TextDecoder().decode(bytes);
      const end = text.indexOf("\r\n\r\n");
      if (end >= 0) {
        const headLen = new TextEncoder().encode(text.slice(0, end + 4)).length;
        const head = text.slice(0, end);
        assert(head.startsWith("HTTP/1.1 101 "), `not a 101: ${head}`);
        return new RawClient(conn, head, bytes.slice(headLen), inflater);
      }
      const n = await conn.read(buf);
      if (n === null) throw new Error("the server closed during the handshake");
      const grown = new Uint8Array(bytes.length + n);
      grown.set(bytes);
      grown.set(buf.subarray(0, n), bytes.length);
      bytes = grown;
    }
  }

  /** Send bytes (all of them). */
  async send(...frames: Uint8Array[]): Promise<void> {
    for (const f of frames) {
      let at = 0;
      while (at < f.length) at += await this.conn.write(f.subarray(at));
    }
  }

  /** Send bytes in chunks of `size`, with a short pause between them. */
  async sendChunked(bytes: Uint8Array, size: number, pauseMs = 0): Promise<void> {
    for (let i = 0; i < bytes.length; i += size) {
      await this.send(bytes.subarray(i, i + size));
      if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    }
  }

  /** Wait until the log holds `n` entries (for at most `ms`). */
  waitCount(n: number, ms = WAIT_MS): Promise<void> {
    return waitFor(
      () => this.log.length >= n,
      `${n} server frames (have ${this.log.map((l) => l.slice(0, 80)).join(" | ")})`,
      ms,
    );
  }

  /** Wait for the server's EOF. */
  waitEof(): Promise<void> {
    return waitFor(
      () => this.log.includes("eof"),
      `the server's close (have ${this.log.join(" | ")})`,
    );
  }

  /** The server's close code (after waiting for its EOF), or undefined. */
  async closeCode(): Promise<number | undefined> {
    await this.waitEof();
    const c = this.log.find((l) => l.startsWith("close:"));
    return c === undefined ? undefined : Number(c.split(":")[1]);
  }

  /** Close the TCP connection and wait for the reader. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      try {
        this.conn.close();
      } catch { /* already closed */ }
    }
    await this.#reading;
  }
}

/** A Deno `WebSocket` client whose server greets it first (with where it landed). */
export interface GreetedClient {
  ws: WebSocket;
  /** The first message, less `prefix`. */
  greeting: string;
  /** The messages after the greeting, as text. */
  got: string[];
  /** When each of `got` arrived (`performance.now()`). */
  times: number[];
}

/** Connect a Deno `WebSocket` to 127.0.0.1:`port`; resolves on a first message that starts with `prefix`. */
export async function connectGreeted(port: number, prefix: string): Promise<GreetedClient> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  const c: GreetedClient = { ws, greeting: "", got: [], times: [] };
  let greeted = false;
  await new Promise<void>((resolve, reject) => {
    ws.onmessage = (e) => {
      const text = String(e.data);
      if (!greeted && text.startsWith(prefix)) {
        greeted = true;
        c.greeting = text.slice(prefix.length);
        resolve();
        return;
      }
      c.got.push(text);
      c.times.push(performance.now());
    };
    ws.onerror = () => reject(new Error(`Cannot connect a WebSocket to port ${port}`));
    ws.onclose = () =>
      reject(new Error(`The WebSocket to port ${port} closed before its greeting`));
  });
  return c;
}

/** Close Deno `WebSocket`s and wait until every one is closed. */
export async function closeSockets(sockets: WebSocket[]): Promise<void> {
  for (const ws of sockets) ws.close();
  await Promise.all(
    sockets.map((ws) =>
      ws.readyState === WebSocket.CLOSED
        ? undefined
        : new Promise((r) => ws.addEventListener("close", r, { once: true }))
    ),
  );
}
