/**
 * `serve()` under socket activation and a service manager, in a child
 * process started by `systemd-socket-activate`: it adopts the inherited
 * listening socket (by `LISTEN_FDNAMES` name), sends `READY=1` on
 * `NOTIFY_SOCKET` once listening (then `WATCHDOG=1` at half of
 * `WATCHDOG_USEC`), and as a supervised worker
 * (`FFINET_WORKER_ID`) drains on SIGTERM (the request in flight is
 * answered) and exits 0.
 *
 * @module
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { Socket } from "../../ffi/socket.ts";
import { readText, waitFor } from "../_helpers.ts";
import { freePort } from "../_helpers.ts";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

function haveTool(name: string): boolean {
  try {
    return new Deno.Command("sh", { args: ["-c", `command -v ${name}`] }).outputSync().success;
  } catch {
    return false;
  }
}

const HAVE = haveTool("systemd-socket-activate");
if (!HAVE) console.log("skip: systemd-socket-activate is not installed");

async function request(port: number, path: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(
      encoder.encode(`GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`),
    );
    return await readText(conn);
  } finally {
    conn.close();
  }
}

Deno.test({
  name:
    "serve: socket activation adopts the named socket, READY=1 and WATCHDOG=1 go to NOTIFY_SOCKET, SIGTERM drains and exits 0",
  ignore: !HAVE,
  async fn() {
    const dir = await Deno.makeTempDir();
    const notifyPath = `${dir}/notify.sock`;
    const notifySock = Socket.create("unix", "dgram");
    const port = freePort();
    let child: Deno.ChildProcess | undefined;
    try {
      notifySock.bind({ family: "unix", path: notifyPath });
      child = new Deno.Command("systemd-socket-activate", {
        args: [
          "-l",
          `127.0.0.1:${port}`,
          "--fdname=web",
          "-E",
          `NOTIFY_SOCKET=${notifyPath}`,
          "-E",
          "FFINET_WORKER_ID=1",
          "-E",
          "WATCHDOG_USEC=200000",
          Deno.execPath(),
          "run",
          "--allow-ffi",
          "--allow-env",
          new URL("./fixtures/activated_app.ts", import.meta.url).pathname,
          "web",
        ],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const stdout = new Response(child.stdout).text();
      const stderr = new Response(child.stderr).text();
      // The first connection starts the app (systemd-socket-activate waits for it).
      let first = "";
      await waitFor(
        async () => {
          try {
            first = await request(port, "/");
            return true;
          } catch {
            return false;
          }
        },
        20_000,
        "the activated app to answer",
      );
      assertMatch(first, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nactivated \d+$/);
      const pid = Number(first.match(/activated (\d+)$/)![1]);
      // READY=1 arrived on the notify socket.
      const buf = new Uint8Array(4096);
      let note = "";
      await waitFor(
        () => {
          const n = notifySock.read(buf);
          if (n !== null) note += decoder.decode(buf.subarray(0, n));
          return note.includes("READY=1");
        },
        5000,
        "READY=1",
      );
      // WATCHDOG=1 at half of WATCHDOG_USEC (200 ms): several within a second.
      await waitFor(
        () => {
          const n = notifySock.read(buf);
          if (n !== null) note += decoder.decode(buf.subarray(0, n));
          return (note.match(/WATCHDOG=1/g) ?? []).length >= 3;
        },
        5000,
        "three WATCHDOG=1",
      );
      // A request in flight when SIGTERM lands is still answered; then exit 0.
      const slow = request(port, "/slow");
      await new Promise((r) => setTimeout(r, 100));
      Deno.kill(pid, "SIGTERM");
      const answer = await slow;
      assertMatch(answer, /^HTTP\/1\.1 200 OK\r\n[^]*connection: close\r\n\r\nactivated \d+$/);
      const status = await child.status;
      const out = await stdout;
      const err = await stderr;
      assertEquals(status.code, 0, err);
      assertMatch(out, /listening on \{"transport":"tcp","hostname":"127\.0\.0\.1","port":\d+\}/);
      assert(out.includes(`"port":${port}`), out);
    } finally {
      if (child !== undefined) {
        try {
          child.kill("SIGKILL");
        } catch { /* already gone */ }
        await child.status;
      }
      notifySock.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
