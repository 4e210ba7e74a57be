/**
 * `daemon/cli.ts` reports every failed start: a foreground start that fails
 * exits non-zero with the reason (a port in use, an app that throws while
 * loading, an app that never sends READY=1, an ordinary `Deno.serve` app,
 * which gets the "use serve() or LISTEN_FDS" advice); Ctrl-C on the
 * launcher of a `--daemon` start aborts it and leaves no daemon; APP is
 * resolved against the caller's directory (`INIT_CWD`, as `deno task`
 * sets it). Every run is bounded; apps live in a private temporary
 * directory.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { cli as runCli, cliRunArgs } from "../fixtures/cli_run.ts";
import { alive, freePort, sleep, waitUntil } from "../fixtures/helpers.ts";
import { alongside, type Case } from "../../_steps.ts";

const RUNTIME = await Deno.makeTempDir({ prefix: "ffinet-fail-rt-" });
const APPS = await Deno.makeTempDir({ prefix: "ffinet-fail-apps-" });

function cli(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000) {
  return runCli(args, { FFINET_RUNTIME_DIR: RUNTIME, ...env }, timeoutMs);
}

function app(name: string, source: string): string {
  const path = `${APPS}/${name}`;
  Deno.writeTextFileSync(path, source);
  return path;
}

const THROWS = app("throws.ts", `throw new Error("boom while loading the app");\n`);
const SILENT = app("silent.ts", `setInterval(() => {}, 1000);\n`);
const DENO_SERVE = app(
  "deno_serve.ts",
  `Deno.serve({ hostname: "127.0.0.1", port: Number(Deno.args[0]) }, () => new Response("hi"));\n`,
);

/** A foreground start that must fail: exit code 1, the reason, never "stopped during start-up". */
async function failsWith(args: string[], ...reasons: string[]): Promise<string> {
  const r = await cli([...args, "--workers", "1", "--start-timeout", "4000"]);
  assertEquals(r.code, 1, `exit code; stderr: ${r.stderr}`);
  for (const reason of reasons) assertStringIncludes(r.stderr, reason);
  assert(!r.stderr.includes("stopped during start-up"), r.stderr);
  return r.stderr;
}

/** The other cases, run one after the other. */
const IN_TURN: Case[] = [];
const test = (name: string, fn: () => Promise<void>) => void IN_TURN.push({ name, fn });

test("a port in use exits 1 naming EADDRINUSE and the address", async () => {
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (busy.addr as Deno.NetAddr).port;
    await failsWith(["--port", String(port)], "EADDRINUSE", `127.0.0.1:${port}`);
  } finally {
    busy.close();
  }
});

test("an app that throws while loading exits 1 with its error", async () => {
  await failsWith([THROWS, "--port", String(freePort())], "boom while loading the app");
});

test("an app that never sends READY=1 exits 1 after --start-timeout", async () => {
  const t0 = performance.now();
  await failsWith(
    [SILENT, "--port", String(freePort())],
    "did not send READY=1 on NOTIFY_SOCKET within 4000 ms",
  );
  assert(performance.now() - t0 >= 4000, "it waited for the start timeout");
});

test("a plain Deno.serve app is told to use serve() or LISTEN_FDS, with the README section", async () => {
  // On its own port: it listens, never says READY=1, and prints Deno.serve's banner.
  const other = freePort();
  await failsWith(
    [DENO_SERVE, "--port", String(freePort()), "--", String(other)],
    "the app binds its own port (Deno.serve, Deno.listen)",
    "use serve() from @ffinet/ffinet/http, or adopt the LISTEN_FDS socket",
    "README.md#apps-that-bind-their-own-port",
  );
  // On the supervisor's port: the bind fails (AddrInUse); same advice.
  const port = freePort();
  await failsWith(
    [DENO_SERVE, "--port", String(port), "--", String(port)],
    "the app binds its own port",
  );
});

test("APP is resolved against INIT_CWD (deno task runs in the config's directory)", async () => {
  const r = await cli(["./throws.ts", "--port", String(freePort()), "--start-timeout", "4000"], {
    INIT_CWD: APPS,
  });
  assertEquals(r.code, 1, r.stderr);
  assertStringIncludes(r.stderr, "boom while loading the app");
  const without = await cli(["./throws.ts", "--port", String(freePort())]);
  assertEquals(without.code, 2, "without INIT_CWD the path is taken from the working directory");
});

test("Ctrl-C on the launcher aborts a --daemon start; no daemon is left", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ffinet-fail-int-" });
  const pidfile = `${dir}/serve.pid`;
  const child = new Deno.Command(Deno.execPath(), {
    args: cliRunArgs([
      SILENT,
      "--daemon",
      "--pidfile",
      pidfile,
      "--workers",
      "1",
      "--port",
      String(freePort()),
      "--start-timeout",
      "60000",
    ]),
    env: { FFINET_RUNTIME_DIR: dir, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = child.output();
  let daemon = 0;
  try {
    // The daemon holds its pid file from early on: wait for it, then Ctrl-C.
    await waitUntil(
      () => {
        try {
          daemon = Number(Deno.readTextFileSync(pidfile).trim());
        } catch { /* not yet */ }
        return daemon > 0;
      },
      30_000,
      "the daemon's pid file",
    );
    await sleep(300);
    child.kill("SIGINT");
    const out = await output;
    const stderr = new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 130, stderr);
    assertStringIncludes(stderr, "the start was interrupted");
    assertStringIncludes(stderr, `the daemon (pid ${daemon}) was stopped`);
    await waitUntil(() => !alive(daemon), 10_000, "the daemon to be gone");
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
    await output.catch(() => {});
    if (daemon > 0 && alive(daemon)) Deno.kill(daemon, "SIGKILL");
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * The --daemon launcher waits as long as --start-timeout, past the old
 * fixed 30 s. Proving a wait beyond 30 s takes over 30 s; the launcher and
 * the daemon only sleep meanwhile, so this case runs alongside the others.
 */
const LONG_WAIT: Case = {
  name: "the --daemon launcher waits as long as --start-timeout (past the old fixed 30 s)",
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "ffinet-fail-wait-" });
    try {
      // The worker never becomes ready; the daemon gives up after its 33 s
      // start timeout with its own reason, which the launcher must still be
      // there to print (a launcher that stopped waiting at 30 s would say
      // "did not report readiness within 30000 ms" instead).
      const t0 = performance.now();
      const r = await cli(
        [
          SILENT,
          "--daemon",
          "--pidfile",
          `${dir}/serve.pid`,
          "--workers",
          "1",
          "--port",
          String(freePort()),
          "--start-timeout",
          "33000",
          "--syslog",
          `${dir}/no-syslog`,
        ],
        { FFINET_RUNTIME_DIR: dir },
        90_000,
      );
      const ms = performance.now() - t0;
      assertEquals(r.code, 1, r.stderr);
      assertStringIncludes(r.stderr, "did not send READY=1 on NOTIFY_SOCKET within 33000 ms");
      assert(!r.stderr.includes("did not report readiness"), r.stderr);
      assert(ms >= 33_000, `the launcher waited ${ms} ms`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
};

Deno.test("cli failures", (t) => alongside(t, LONG_WAIT, IN_TURN));

Deno.test("cli failures: cleanup", async () => {
  await Deno.remove(APPS, { recursive: true });
  await Deno.remove(RUNTIME, { recursive: true });
});
