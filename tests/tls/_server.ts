/**
 * Shared pieces of the TLS tests: a reactor with a TLS echo (or HTTP)
 * server on loopback, and bounded runs of external clients.
 *
 * @module
 */
import { SslContext } from "../../ffi/openssl_context.ts";
import { serve } from "../../http/mod.ts";
import type { HttpServer, ServeHandler, ServeOptions } from "../../http/types.ts";
import type { InetAddress } from "../../ffi/sockaddr.ts";
import { Reactor } from "../../reactor/mod.ts";
import { type TlsConnection, TlsListener, type TlsListenOptions } from "../../tls/mod.ts";
import { type ProcessOutput, runBounded, waitFor } from "../_helpers.ts";
import type { TestPki } from "./_certs.ts";

/**
 * Make what lives as long as the thread before any test counts fds or
 * resources: libssl's load, the one accept-any verify callback each thread
 * keeps, and the fd of Deno's own executable that the first
 * `Deno.UnsafeCallback` opens.
 */
export function warmUp(): void {
  const ctx = SslContext.create("server");
  ctx.verifyPeer({ request: true, require: false });
  ctx.close();
}

// At import, outside any test: the sanitizers see neither libssl's load nor that fd.
warmUp();

/** serve() over TLS with `pki`'s certificate on 127.0.0.1, with `options` and `handler`. */
export function serveHttps(
  pki: TestPki,
  options: Partial<ServeOptions>,
  handler: ServeHandler,
): HttpServer & { port: number } {
  const server = serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen() {},
    cert: pki.cert,
    key: pki.key,
    ...options,
  }, handler);
  return Object.assign(server, { port: (server.addr as { port: number }).port });
}

/** An echo handler with write()/onDrain discipline. */
export function echo(conn: TlsConnection): void {
  conn.onData = (data) => {
    if (!conn.write(data)) conn.pause();
  };
  conn.onDrain = () => conn.resume();
}

/** A minimal HTTP/1.1 responder: one fixed response per request head, then close. */
export function httpHello(body: string): (conn: TlsConnection) => void {
  return (conn) => {
    let head = "";
    conn.onData = (data) => {
      head += new TextDecoder().decode(data);
      if (!head.includes("\r\n\r\n")) return;
      const alpn = conn.info?.alpnProtocol ?? "none";
      const text = `${body} alpn=${alpn} sni=${conn.info?.serverName ?? "none"}`;
      conn.write(
        new TextEncoder().encode(
          `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${text.length}\r\n` +
            `connection: close\r\n\r\n${text}`,
        ),
      );
      conn.close();
    };
  };
}

/** A running reactor and a TLS server on 127.0.0.1; stop() closes both. */
export interface RunningServer {
  reactor: Reactor;
  server: TlsListener;
  port: number;
  /** Connections handed to onConnection, in order. */
  accepted: TlsConnection[];
  /** Errors the reactor or listener reported. */
  errors: unknown[];
  stop(): Promise<void>;
}

/** Start a TLS server with `handler` for every connection. */
export function startServer(
  tls: TlsListenOptions["tls"],
  handler: (conn: TlsConnection) => void = echo,
  extra: Partial<TlsListenOptions> = {},
): RunningServer {
  const errors: unknown[] = [];
  const reactor = new Reactor({ onError: (e) => errors.push(e) });
  const running = reactor.run();
  const accepted: TlsConnection[] = [];
  let server: TlsListener;
  try {
    server = TlsListener.listen(
      reactor,
      { host: "127.0.0.1", port: 0, ...extra, tls } as TlsListenOptions,
      (conn) => {
        accepted.push(conn);
        handler(conn);
      },
    );
  } catch (e) {
    reactor.stop();
    throw e;
  }
  const port = (server.address() as InetAddress).port;
  return {
    reactor,
    server,
    port,
    accepted,
    errors,
    async stop() {
      server.close();
      for (const c of accepted) if (c.state !== "closed") c.abort();
      await waitFor(() => reactor.stats.registrations === 0, 5000, "connections to close")
        .catch(() => {});
      reactor.stop();
      await running;
      reactor.close();
    },
  };
}

/**
 * Run a client with `input` on stdin, keep stdin open `holdMs` more (so the
 * server's answer can arrive), then close it; SIGKILL the client after
 * `timeoutMs`.
 */
export function runClient(
  cmd: string,
  args: string[],
  input: string | undefined,
  { holdMs = 300, timeoutMs = 15_000 }: { holdMs?: number; timeoutMs?: number } = {},
): Promise<ProcessOutput> {
  return runBounded(
    cmd,
    { args },
    timeoutMs,
    input === undefined ? undefined : { text: input, holdMs },
  );
}

/**
 * Node source that defines `once(session)`: one TLS connection to
 * 127.0.0.1:`port` (SNI localhost, trusting `caPath`) offering `session`
 * (a ticket, or undefined), one `GET /` with `connection: close`, resolving
 * `{ body, response, reused, ticket }`: the response body, the whole
 * response, whether the session was resumed, and the newest ticket the
 * server sent.
 */
export function nodeTlsOnce(port: number, caPath: string): string {
  return `
    const tls = require("node:tls");
    const ca = require("node:fs").readFileSync(${JSON.stringify(caPath)});
    function once(session) {
      return new Promise((resolve, reject) => {
        const s = tls.connect({ host: "127.0.0.1", port: ${port}, ca, servername: "localhost", session }, () => {
          s.write("GET / HTTP/1.1\\r\\nhost: localhost\\r\\nconnection: close\\r\\n\\r\\n");
        });
        let response = "", ticket;
        s.on("session", (t) => ticket = t);
        s.on("data", (d) => response += d);
        s.on("end", () => {
          const body = response.split("\\r\\n\\r\\n")[1] ?? "";
          resolve({ body, response, reused: s.isSessionReused(), ticket });
          s.destroy();
        });
        s.on("error", reject);
      });
    }`;
}
