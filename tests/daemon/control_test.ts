/**
 * `daemon/control.ts`: the control socket's mode, its line protocol
 * (status, stop, reload, errors), a stale socket replaced, and the client's
 * refusals (no socket, not a socket, nobody listening).
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import {
  controlRequest,
  ControlServer,
  ControlUnavailableError,
  MAX_REQUEST_BYTES,
} from "../../daemon/control.ts";
import { Socket } from "../../ffi/socket.ts";
import { exists, withFdCheck } from "../_helpers.ts";

async function inTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ffinet-control-" });
  try {
    await withFdCheck(() => fn(dir));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Send raw bytes to the socket and read the reply to EOF (a Deno client, not ours). */
async function raw(path: string, bytes: string): Promise<string> {
  const conn = await Deno.connect({ transport: "unix", path });
  try {
    await conn.write(new TextEncoder().encode(bytes));
    return await new Response(conn.readable).text();
  } catch (e) {
    conn.close();
    throw e;
  }
}

Deno.test("control: socket mode 0600; status, reload and stop answer one JSON line", () =>
  inTempDir(async (dir) => {
    const path = `${dir}/serve.sock`;
    let stopped = 0;
    let reloads = 0;
    const server = ControlServer.listen({
      path,
      handlers: {
        status: () => ({ workers: [{ id: 0, pid: 42 }] }),
        stop: () => void stopped++,
        reload: async () => {
          await new Promise((r) => setTimeout(r, 50));
          reloads++;
          if (reloads !== 1) throw new Error("reload failed");
        },
      },
    });
    try {
      const info = Deno.lstatSync(path);
      assert(info.isSocket);
      assertEquals(info.mode! & 0o777, 0o600);

      const ping = await controlRequest(path, "ping");
      assertEquals(ping, { ok: true, pid: Deno.pid });
      const status = await controlRequest(path, "status");
      assertEquals(status.data, { workers: [{ id: 0, pid: 42 }] });
      assertEquals((await controlRequest(path, "reload")).ok, true);
      const second = await controlRequest(path, "reload");
      assertEquals(second.ok, false);
      assertEquals(second.error, "reload failed");
      assertEquals(reloads, 2);
      assertEquals((await controlRequest(path, "stop")).ok, true);
      assertEquals(stopped, 1);
    } finally {
      await server.close();
    }
    assert(!exists(path), "close() removes the socket file");
  }));

Deno.test("control: unknown, overlong and empty requests get an error reply", () =>
  inTempDir(async (dir) => {
    const path = `${dir}/serve.sock`;
    const server = ControlServer.listen({ path, handlers: {} });
    try {
      const unknown = JSON.parse(await raw(path, "selfdestruct\n"));
      assertEquals(unknown.ok, false);
      assertStringIncludes(unknown.error, `unknown command "selfdestruct"`);
      const long = JSON.parse(await raw(path, "x".repeat(MAX_REQUEST_BYTES * 4)));
      assertEquals(long, { ok: false, error: "request line too long", pid: Deno.pid });
      const missing = JSON.parse(await raw(path, "status\n"));
      assertEquals(missing.ok, false, "no status handler: an error, not a crash");
      // A client that half-closes without a line.
      const conn = await Deno.connect({ transport: "unix", path });
      await conn.closeWrite();
      const empty = JSON.parse(await new Response(conn.readable).text());
      assertEquals(empty.error, "empty request");
      // The server still serves.
      assertEquals((await controlRequest(path, "ping")).ok, true);
    } finally {
      await server.close();
    }
  }));

Deno.test("control: the verbs are the handlers' own names, copied and checked at listen", () =>
  inTempDir(async (dir) => {
    const path = `${dir}/serve.sock`;
    const handlers: Record<string, () => unknown> = { status: () => "first" };
    const server = ControlServer.listen({ path, handlers });
    try {
      // Inherited names are not verbs (the table has no prototype to reach).
      for (const verb of ["constructor", "toString", "__proto__", "hasOwnProperty"]) {
        const reply = JSON.parse(await raw(path, `${verb}\n`));
        assertEquals(reply.ok, false, verb);
        assertStringIncludes(reply.error, `unknown command "${verb}"`);
      }
      // A handler changed or added after listen() is not what the server runs.
      handlers.status = () => "changed";
      handlers.upgrade = () => "added";
      assertEquals((await controlRequest(path, "status")).data, "first");
      assertEquals((await controlRequest(path, "upgrade")).error, `unknown command "upgrade"`);
    } finally {
      await server.close();
    }
    // A name that is not a verb, or `ping` (the server's own), is refused before binding.
    for (
      const [bad, kind] of [["ping", RangeError], ["Status", RangeError], [
        "rm -rf",
        RangeError,
      ]] as const
    ) {
      const e = (() => {
        try {
          ControlServer.listen({ path, handlers: { [bad]: () => 1 } });
        } catch (e) {
          return e;
        }
      })();
      assert(e instanceof kind, `${bad}: ${e}`);
      assertStringIncludes((e as Error).message, "Cannot listen on control socket");
      assert(!exists(path), "nothing was bound");
    }
    const notFn = (() => {
      try {
        ControlServer.listen({ path, handlers: { status: "yes" as unknown as () => unknown } });
      } catch (e) {
        return e;
      }
    })();
    assert(notFn instanceof TypeError, String(notFn));
    assert(!exists(path), "nothing was bound");
  }));

Deno.test("control: a stale socket file is replaced; a live one is refused", () =>
  inTempDir(async (dir) => {
    const path = `${dir}/serve.sock`;
    const stale = Socket.create("unix", "stream");
    stale.bind({ family: "unix", path });
    stale.close(); // the file stays, nobody listens
    const server = ControlServer.listen({ path, handlers: { status: () => 1 } });
    try {
      assertEquals((await controlRequest(path, "status")).data, 1);
      let threw = false;
      try {
        ControlServer.listen({ path, handlers: {} }).close();
      } catch (e) {
        threw = true;
        assertStringIncludes((e as Error).message, "EADDRINUSE");
      }
      assert(threw, "a second server on a live socket is refused");
    } finally {
      await server.close();
    }
  }));

Deno.test("control: the client refuses a missing path, a non-socket and a dead socket", () =>
  inTempDir(async (dir) => {
    await assertRejects(
      () => controlRequest(`${dir}/none.sock`, "ping"),
      ControlUnavailableError,
      "does not exist",
    );
    Deno.writeTextFileSync(`${dir}/file.sock`, "");
    await assertRejects(() => controlRequest(`${dir}/file.sock`, "ping"), Error, "not a socket");
    const dead = Socket.create("unix", "stream");
    dead.bind({ family: "unix", path: `${dir}/dead.sock` });
    dead.close();
    await assertRejects(
      () => controlRequest(`${dir}/dead.sock`, "ping"),
      ControlUnavailableError,
      "nobody listens",
    );
    await assertRejects(
      // deno-lint-ignore no-explicit-any
      () => controlRequest(`${dir}/dead.sock`, "rm -rf" as any),
      RangeError,
      "unknown command",
    );
    await assertRejects(
      () => controlRequest(`${dir}/dead.sock`, "ping", { timeoutMs: 0.5 }),
      RangeError,
      "timeoutMs",
    );
  }));

Deno.test("control: a server that never answers makes the client time out", () =>
  inTempDir(async (dir) => {
    const path = `${dir}/mute.sock`;
    const listener = Deno.listen({ transport: "unix", path });
    const accepted: Deno.Conn[] = [];
    const accepting = (async () => {
      for await (const c of listener) accepted.push(c);
    })();
    try {
      const t0 = Date.now();
      await assertRejects(
        () => controlRequest(path, "status", { timeoutMs: 300 }),
        Error,
        "no reply",
      );
      assert(Date.now() - t0 < 5000);
    } finally {
      listener.close();
      await accepting.catch(() => {});
      for (const c of accepted) c.close();
    }
  }));
