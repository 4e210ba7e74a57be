/**
 * `examples/systemd/`: the units pass `systemd-analyze verify` (copied to a
 * temporary directory with their paths pointed at this checkout), and the
 * same app runs under `systemd-socket-activate`, both supervised by
 * `daemon/cli.ts` (which passes the activated socket on to its workers)
 * and on its own (the bundled default app adopting the socket).
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { Socket } from "../../ffi/socket.ts";
import { CLI_APP, cliRunArgs } from "./fixtures/cli_run.ts";
import { alive, childrenOf, freePort, httpGet, killAll, waitUntil } from "./fixtures/helpers.ts";

const UNITS = new URL("../../examples/systemd/", import.meta.url).pathname;
const DEFAULT_APP = new URL("../../daemon/cli/default_app.ts", import.meta.url).pathname;
const decoder = new TextDecoder();

function which(name: string): string | null {
  for (const dir of [...(Deno.env.get("PATH") ?? "").split(":"), "/usr/bin", "/bin"]) {
    try {
      if (Deno.statSync(`${dir}/${name}`).isFile) return `${dir}/${name}`;
    } catch { /* next */ }
  }
  return null;
}

const ANALYZE = which("systemd-analyze");
const ACTIVATE = which("systemd-socket-activate");
const DENO = Deno.realPathSync(Deno.execPath());

async function run(cmd: string, args: string[]): Promise<{ code: number; stderr: string }> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  return { code: out.code, stderr: decoder.decode(out.stderr) + decoder.decode(out.stdout) };
}

/** Whether `systemd-analyze verify` works here at all (a trivial unit passes). */
const VERIFY_WORKS = await (async () => {
  if (ANALYZE === null) {
    console.log("skip: systemd-analyze is not installed (units verify test)");
    return false;
  }
  const dir = await Deno.makeTempDir({ prefix: "ffinet-verify-probe-" });
  try {
    Deno.writeTextFileSync(
      `${dir}/probe.service`,
      "[Unit]\nDescription=probe\n[Service]\nType=oneshot\nExecStart=/bin/true\n",
    );
    const r = await run(ANALYZE, ["verify", "--man=no", `${dir}/probe.service`]);
    if (r.code !== 0) {
      console.log(`skip: systemd-analyze verify cannot run here: ${r.stderr.slice(0, 200)}`);
    }
    return r.code === 0;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
})();

Deno.test("systemd: the example units say Type=notify, reload by SIGHUP, and are hardened", () => {
  const socket = Deno.readTextFileSync(`${UNITS}/ffinet-app.socket`);
  const service = Deno.readTextFileSync(`${UNITS}/ffinet-app.service`);
  for (const line of ["ListenStream=127.0.0.1:8080", "FileDescriptorName=http"]) {
    assertStringIncludes(socket, `\n${line}\n`);
  }
  for (
    const line of [
      "Type=notify",
      "NotifyAccess=main",
      "ExecReload=/bin/kill -HUP $MAINPID",
      "KillMode=mixed",
      "Requires=ffinet-app.socket",
      "NoNewPrivileges=yes",
      "User=ffinet-app",
      "RuntimeDirectory=ffinet-app",
      "ProtectSystem=strict",
      "PrivateTmp=yes",
      "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
      "CapabilityBoundingSet=",
    ]
  ) assertStringIncludes(service, `\n${line}\n`);
  assertStringIncludes(service, "daemon/cli.ts");
  assertStringIncludes(service, "--pidfile %t/ffinet-app/serve.pid");
  const reload = Deno.readTextFileSync(`${UNITS}/ffinet-app.service.d/notify-reload.conf`);
  for (const line of ["Type=notify-reload", "ReloadSignal=SIGHUP", "ExecReload="]) {
    assertStringIncludes(reload, `\n${line}\n`);
  }
});

Deno.test({
  name: "systemd: systemd-analyze verify accepts the units (and rejects them unrewritten)",
  ignore: !VERIFY_WORKS,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "ffinet-units-" });
    try {
      for (const name of ["ffinet-app.socket", "ffinet-app.service"]) {
        Deno.copyFileSync(`${UNITS}/${name}`, `${dir}/${name}`);
      }
      const units = [`${dir}/ffinet-app.socket`, `${dir}/ffinet-app.service`];
      // As shipped, /usr/local/bin/deno does not exist here: verify must notice.
      const raw = await run(ANALYZE!, ["verify", "--man=no", ...units]);
      assert(raw.code !== 0, "verify checks the executables");
      assertStringIncludes(raw.stderr, "/usr/local/bin/deno");
      const root = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
      const service = Deno.readTextFileSync(units[1]!)
        .replaceAll("/usr/local/bin/deno", DENO)
        .replaceAll("/opt/ffinet", root)
        .replaceAll("/srv/app/app.ts", DEFAULT_APP);
      Deno.writeTextFileSync(units[1]!, service);
      const r = await run(ANALYZE!, ["verify", "--man=no", ...units]);
      assertEquals(r.code, 0, r.stderr);
      assert(!/Unknown (key|section)|ignoring|Failed/i.test(r.stderr), r.stderr);
      const version = Number(
        /systemd (\d+)/.exec((await run(ANALYZE!, ["--version"])).stderr)?.[1],
      );
      if (version >= 253) {
        Deno.mkdirSync(`${dir}/ffinet-app.service.d`);
        Deno.copyFileSync(
          `${UNITS}/ffinet-app.service.d/notify-reload.conf`,
          `${dir}/ffinet-app.service.d/notify-reload.conf`,
        );
        const d = await run(ANALYZE!, ["verify", "--man=no", ...units]);
        assertEquals(d.code, 0, d.stderr);
      } else {
        console.log(
          `skip: systemd ${version} < 253 has no Type=notify-reload: the drop-in is not verified`,
        );
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

if (ACTIVATE === null) console.log("skip: systemd-socket-activate is not installed");

/**
 * Start `argv` under `systemd-socket-activate -l 127.0.0.1:PORT --fdname=http`;
 * resolves once it listens, with its child process and all its stderr.
 */
async function activate(port: number, argv: string[], env: Record<string, string> = {}) {
  const passEnv = ["PATH", "HOME", "NO_COLOR=1", ...Object.keys(env)].flatMap((k) => ["-E", k]);
  const child = new Deno.Command(ACTIVATE!, {
    args: ["-l", `127.0.0.1:${port}`, "--fdname=http", ...passEnv, ...argv],
    env,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  while (!text.includes(`Listening on 127.0.0.1:${port}`)) {
    const r = await reader.read();
    if (r.done) break;
    text += r.value;
  }
  clearTimeout(timer);
  const stderr = (async () => {
    for (;;) {
      const r = await reader.read();
      if (r.done) return text;
      text += r.value;
    }
  })();
  return { child, stderr, text: () => text };
}

Deno.test({
  name: "systemd: under systemd-socket-activate, cli.ts passes the socket on to its workers",
  ignore: ACTIVATE === null,
  async fn() {
    const port = freePort();
    const dir = await Deno.makeTempDir({ prefix: "ffinet-activate-" });
    // `--port 1` is ignored (and said so): the activated socket is used instead.
    const { child, stderr, text } = await activate(
      port,
      [DENO, ...cliRunArgs([CLI_APP, "--workers", "2", "--port", "1"])],
      { FFINET_RUNTIME_DIR: dir },
    );
    const seen = new Set<number>([child.pid]);
    try {
      // systemd-socket-activate execs the supervisor on the first connection;
      // the kernel queues it meanwhile, so this request is answered.
      const first = await httpGet(port, "/pid", 30_000);
      assertEquals(first.status, 200);
      await waitUntil(() => text().includes("listening on"), 20_000, "both workers ready");
      const workers = childrenOf(child.pid);
      workers.forEach((p) => seen.add(p));
      assertEquals(workers.length, 2, "the supervisor (same pid after exec) runs two workers");
      assert(workers.includes(Number(first.body)), "a worker answered");
      for (let i = 0; i < 10; i++) assertEquals((await httpGet(port)).body, "Hello, World!");
      child.kill("SIGTERM");
      const code = (await child.status).code;
      assertEquals(code, 0, await stderr);
      for (const p of seen) await waitUntil(() => !alive(p), 5000, `pid ${p} to exit`);
      assertStringIncludes(await stderr, `listening on 127.0.0.1:${port}`);
      assertStringIncludes(
        await stderr,
        "--host/--port are ignored: this process was socket-activated",
        "the ignored --port is reported, not silently dropped",
      );
    } finally {
      killAll(seen);
      await child.status;
      await stderr.catch(() => "");
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "systemd: the default app runs unchanged under systemd-socket-activate",
  ignore: ACTIVATE === null,
  async fn() {
    const port = freePort();
    const { child, stderr } = await activate(port, [
      DENO,
      "run",
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "--allow-ffi",
      DEFAULT_APP,
    ]);
    try {
      const r = await httpGet(port, "/", 30_000);
      assertEquals(r.body, "Hello, World!");
    } finally {
      child.kill("SIGTERM");
      await child.status;
      await stderr;
    }
  },
});

Deno.test("systemd: Type=notify protocol in the foreground: READY=1 with MAINPID, WATCHDOG=1, STOPPING=1", async () => {
  // A private NOTIFY_SOCKET standing in for systemd (no /run/systemd involved).
  const dir = await Deno.makeTempDir({ prefix: "ffinet-notify-" });
  const sock = Socket.create("unix", "dgram");
  sock.bind({ family: "unix", path: `${dir}/notify` });
  const messages: string[] = [];
  const buf = new Uint8Array(4096);
  const pump = setInterval(() => {
    for (let r; (r = sock.receiveFrom(buf)) !== null;) {
      messages.push(decoder.decode(buf.subarray(0, r.bytes)));
    }
  }, 5);
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: cliRunArgs([CLI_APP, "--port", String(port), "--workers", "1"]),
    env: { NOTIFY_SOCKET: `${dir}/notify`, WATCHDOG_USEC: "400000", NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const seen = new Set<number>([child.pid]);
  try {
    await waitUntil(() => messages.some((m) => m.includes("READY=1")), 20_000, "READY=1");
    const ready = messages.find((m) => m.includes("READY=1"))!;
    assertStringIncludes(ready, `MAINPID=${child.pid}`);
    assertEquals((await httpGet(port)).body, "Hello, World!", "ready means serving");
    childrenOf(child.pid).forEach((p) => seen.add(p));
    await waitUntil(
      () => messages.filter((m) => m.includes("WATCHDOG=1")).length >= 2,
      5000,
      "WATCHDOG=1 pings at half the 400 ms interval",
    );
    child.kill("SIGTERM");
    assertEquals((await child.status).code, 0);
    await waitUntil(() => messages.some((m) => m.includes("STOPPING=1")), 2000, "STOPPING=1");
    assert(
      !messages.some((m) =>
        /MAINPID=(\d+)/.exec(m)?.[1] !== undefined &&
        Number(/MAINPID=(\d+)/.exec(m)![1]) !== child.pid
      ),
      "only the supervisor's pid is ever MAINPID (workers notify the supervisor, not systemd)",
    );
  } finally {
    clearInterval(pump);
    killAll(seen);
    await child.status;
    sock.close();
    await Deno.remove(dir, { recursive: true });
  }
});
