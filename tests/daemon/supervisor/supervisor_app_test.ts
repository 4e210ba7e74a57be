/**
 * With `app`, the supervisor runs the app as each worker's main module
 * (`deno run <flags> --preload daemon/supervisor/worker_main.ts <app> <args…>`): an
 * app guarded by `if (import.meta.main)` serves, `Deno.mainModule` is the
 * app's URL, `Deno.args` are exactly the app arguments, and the app is found
 * from a path (relative to the workers' cwd) or a URL.
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { Supervisor } from "../../../daemon/supervisor/supervisor.ts";
import { appArgs, appSpecifier, WORKER_MAIN } from "../../../daemon/supervisor/worker_command.ts";
import {
  answers,
  freePort,
  httpGet,
  procRead,
  waitUntil,
  withSupervisor,
} from "../fixtures/helpers.ts";
import { GUARDED_APP, NOTIFY_APP, SERVE_WORKERS_APP } from "../fixtures/supervised.ts";

interface MainInfo {
  main: boolean;
  mainModule: string;
  args: string[];
}

async function mainInfo(port: number): Promise<MainInfo> {
  const reply = await httpGet(port, "/main");
  assertEquals(reply.status, 200);
  return JSON.parse(reply.body) as MainInfo;
}

Deno.test("supervisor app: an app guarded by `if (import.meta.main)` runs and serves", async () => {
  await withSupervisor({ app: GUARDED_APP, workers: 2 }, async (port, sup) => {
    assertEquals(sup.status().workers.map((w) => w.state), ["listening", "listening"]);
    assertEquals((await httpGet(port)).body, "Hello, World!");
    const info = await mainInfo(port);
    assertEquals(info.mainModule, new URL(`file://${GUARDED_APP}`).href);
    assertEquals(info.main, false, "notify_app.ts is imported by the guarded main module");
    assertEquals(info.args, []);
  });
});

Deno.test("supervisor app: Deno.mainModule is the app's URL and Deno.args exactly the app args", async () => {
  // Flag-like, empty, spaced and `--` arguments all reach the app unchanged.
  const args = ["--", "-A", "--allow-all", "--port=1", "two words", "", "--preload", "x.ts"];
  await withSupervisor(
    { app: new URL(`file://${NOTIFY_APP}`), appArgs: args, workers: 2 },
    async (port, sup) => {
      const pids = new Set<string>();
      for (let i = 0; i < 12 && pids.size < 2; i++) {
        const info = await mainInfo(port);
        assertEquals(info, {
          main: true,
          mainModule: new URL(`file://${NOTIFY_APP}`).href,
          args,
        });
        pids.add((await httpGet(port, "/pid")).body);
      }
      assert([...pids].every((p) => sup.pids.includes(Number(p))));
      // The worker's command line: the preload, then the app as main module.
      const cmdline = procRead(`/proc/${sup.pids[0]}/cmdline`).split("\0");
      const i = cmdline.indexOf("--preload");
      assert(i > 0, cmdline.join(" "));
      assertEquals(cmdline.slice(i + 1, i + 3 + args.length), [WORKER_MAIN, NOTIFY_APP, ...args]);
      // The preload removed the lifeline variable and set NO_COLOR.
      assertEquals((await httpGet(port, "/env/FFINET_LIFELINE_FD")).body, "");
      assertEquals((await httpGet(port, "/env/NO_COLOR")).body, "1");
    },
  );
});

Deno.test("supervisor app: APP as a path relative to the workers' cwd, or as a URL string", async () => {
  const dir = NOTIFY_APP.slice(0, NOTIFY_APP.lastIndexOf("/"));
  const href = new URL(`file://${NOTIFY_APP}`).href;
  await withSupervisor({ app: "notify_app.ts", cwd: dir }, async (port) => {
    assertEquals((await mainInfo(port)).mainModule, href);
  });
  await withSupervisor({ app: href, appArgs: ["a"] }, async (port) => {
    assertEquals(await mainInfo(port), { main: true, mainModule: href, args: ["a"] });
  });
});

Deno.test("supervisor app: serve({ workers: 2 }) re-runs the app (Deno.mainModule) in its threads", async () => {
  // SO_REUSEPORT mode: serve()'s Deno Workers bind the port themselves.
  const port = freePort();
  await withSupervisor(
    { app: SERVE_WORKERS_APP, appArgs: [String(port)], reusePort: true },
    async () => {
      await waitUntil(() => answers(port), 10_000, "a serve() Worker listening");
      for (let i = 0; i < 6; i++) {
        const reply = JSON.parse((await httpGet(port)).body);
        assert(String(reply.thread).startsWith("ffinet-serve-worker-"), reply.thread);
        assertEquals(reply.args, [String(port)]);
      }
    },
    (lines) => {
      // serve() prints one "Listening on" line per Worker; nothing else.
      assertEquals(lines.filter((l) => !l.startsWith("Listening on ")), [], lines.join("\n"));
    },
  );
});

Deno.test("supervisor app: the worker command line, and an app path that looks like a flag", () => {
  assertEquals(appArgs({ app: "/srv/app.ts", appArgs: ["--", "-x"], denoFlags: ["--allow-net"] }), [
    "run",
    "--allow-net",
    "--preload",
    WORKER_MAIN,
    "/srv/app.ts",
    "--",
    "-x",
  ]);
  assertEquals(appSpecifier("-app.ts"), "./-app.ts");
  assertEquals(appSpecifier(new URL("file:///srv/my%20app.ts")), "/srv/my app.ts");
  assertEquals(appSpecifier("https://example.com/app.ts"), "https://example.com/app.ts");
  assertThrows(() => appSpecifier(""), TypeError, "empty");
  assertThrows(() => new Supervisor({ app: "" }), TypeError, "empty");
});

Deno.test("supervisor app: worker_main.ts run as the main module refuses, exit code 2", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-env", WORKER_MAIN, "app.ts"],
    stdout: "null",
    stderr: "piped",
    stdin: "null",
  }).output();
  assertEquals(out.code, 2);
  assert(new TextDecoder().decode(out.stderr).includes("preload module"));
});
