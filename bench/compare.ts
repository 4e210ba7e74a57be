/**
 * `deno task bench`: ffinet's servers side by side with Deno's own
 * (`Deno.listen`, `Deno.serve`) and Node's (when `node` is installed), under
 * the same loopback load in one run. For each server and load it prints the
 * throughput and the server's CPU time per message or request (user + system,
 * from `/proc/<pid>/stat`), and the ratio of that CPU time to ffinet's.
 *
 * The load comes from `bench/load.ts` (ffinet's own client; every echoed
 * byte is checked), or from `wrk` for HTTP when it is installed.
 *
 *     deno task bench [--seconds N] [--only echo|http]
 *
 * @module
 */
import { readProcFile } from "../ffi/process.ts";
import { parseArgs } from "../examples/_args.ts";

const args = parseArgs(Deno.args, {
  usage: "compare.ts [--seconds N] [--only echo|http]",
  strings: { seconds: "3", only: "" },
});
const seconds = Number(args.strings.seconds);
const only = args.strings.only;
const here = new URL(".", import.meta.url).pathname;
const root = new URL("..", import.meta.url).pathname;
const deno = Deno.execPath();
const hz = 100; // USER_HZ on Linux

async function has(cmd: string): Promise<boolean> {
  try {
    const out = await new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`] }).output();
    return out.success;
  } catch {
    return false;
  }
}

/** CPU ticks (utime + stime) of a process, from /proc/<pid>/stat read through libc. */
function cpuTicks(pid: number): number {
  const text = readProcFile(`/proc/${pid}/stat`);
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

interface Server {
  name: string;
  cmd: string[];
}

let nextPort = 20000 + Math.floor(Math.random() * 20000);

async function startServer(server: Server, port: number): Promise<Deno.ChildProcess> {
  const [cmd, ...rest] = server.cmd.map((a) => a.replace("{port}", String(port)));
  const child = new Deno.Command(cmd!, { args: rest, stdout: "piped", stderr: "inherit" }).spawn();
  const reader = child.stdout.getReader();
  let seen = "";
  const deadline = Date.now() + 10_000;
  while (!seen.includes("listening on")) {
    const { value, done } = await Promise.race([
      reader.read(),
      new Promise<{ value: undefined; done: true }>((r) =>
        setTimeout(() => r({ value: undefined, done: true }), Math.max(0, deadline - Date.now()))
      ),
    ]);
    if (done) throw new Error(`Cannot start ${server.name}: it did not print "listening on"`);
    seen += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  return child;
}

async function runLoad(kind: string, load: string[], port: number): Promise<number> {
  if (kind === "http" && await has("wrk")) {
    const pipeline = load[1] === "16";
    const script = `${here}wrk_pipeline.lua`;
    const wrkArgs = [
      "-t1",
      "-c64",
      `-d${seconds}s`,
      ...(pipeline ? ["-s", script] : []),
      `http://127.0.0.1:${port}/`,
      ...(pipeline ? ["--", "16"] : []),
    ];
    const out = await new Deno.Command("wrk", { args: wrkArgs, stdout: "piped" }).output();
    const text = new TextDecoder().decode(out.stdout);
    return Number(/(\d+) requests in/.exec(text)?.[1] ?? 0);
  }
  const out = await new Deno.Command(deno, {
    args: ["run", "--allow-ffi", `${here}load.ts`, kind, String(port), ...load, String(seconds)],
    stdout: "piped",
  }).output();
  const result = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop() ?? "{}");
  if (result.mismatches > 0) throw new Error(`load saw ${result.mismatches} corrupted bytes`);
  return result.ops ?? 0;
}

const loads = {
  echo: [["pingpong", ["64", "1", "64"]], ["depth16", ["64", "16", "64"]], [
    "bulk64k",
    ["8", "4", "65536"],
  ]],
  http: [["keepalive", ["64", "1"]], ["pipe16", ["64", "16"]]],
} as const;

const node = await has("node");
const servers: Record<"echo" | "http", Server[]> = {
  echo: [
    {
      name: "ffinet",
      cmd: [
        deno,
        "run",
        "--allow-ffi",
        "--allow-env",
        `${root}examples/echo_server.ts`,
        "--port",
        "{port}",
      ],
    },
    { name: "deno_listen", cmd: [deno, "run", "--allow-net", `${here}ref/deno_echo.ts`, "{port}"] },
    ...(node ? [{ name: "node_net", cmd: ["node", `${here}ref/node_echo.mjs`, "{port}"] }] : []),
  ],
  http: [
    {
      name: "ffinet",
      cmd: [
        deno,
        "run",
        "--allow-ffi",
        "--allow-env",
        `${root}examples/http_server.ts`,
        "--port",
        "{port}",
      ],
    },
    { name: "deno_serve", cmd: [deno, "run", "--allow-net", `${here}ref/deno_http.ts`, "{port}"] },
    ...(node ? [{ name: "node_http", cmd: ["node", `${here}ref/node_http.mjs`, "{port}"] }] : []),
  ],
};

const rows: { kind: string; load: string; server: string; rate: number; cpuUs: number }[] = [];
for (const kind of ["echo", "http"] as const) {
  if (only !== "" && only !== kind) continue;
  for (const server of servers[kind]) {
    const port = nextPort++;
    const child = await startServer(server, port);
    try {
      for (const [load, params] of loads[kind]) {
        const c0 = cpuTicks(child.pid);
        const t0 = performance.now();
        const ops = await runLoad(kind, [...params], port);
        const elapsed = (performance.now() - t0) / 1000;
        const c1 = cpuTicks(child.pid);
        if (ops === 0) {
          console.error(`${server.name} ${load}: no result`);
          continue;
        }
        rows.push({
          kind,
          load,
          server: server.name,
          rate: Math.round(ops / Math.min(elapsed, seconds)),
          cpuUs: ((c1 - c0) / hz) * 1e6 / ops,
        });
      }
    } finally {
      child.kill("SIGTERM");
      await child.status;
    }
  }
}

const pad = (s: string, n: number) => s.padEnd(n);
console.log(
  `${pad("kind", 5)} ${pad("load", 10)} ${pad("server", 12)} ${"ops/s".padStart(10)} ${
    "cpu_us/op".padStart(10)
  } ${"x_ffinet".padStart(9)}`,
);
for (const r of rows) {
  const ref = rows.find((x) => x.kind === r.kind && x.load === r.load && x.server === "ffinet");
  const ratio = ref ? (r.cpuUs / ref.cpuUs).toFixed(2) : "-";
  console.log(
    `${pad(r.kind, 5)} ${pad(r.load, 10)} ${pad(r.server, 12)} ${String(r.rate).padStart(10)} ${
      r.cpuUs.toFixed(3).padStart(10)
    } ${ratio.padStart(9)}`,
  );
}
console.log(
  `(${Deno.build.target}, ${navigator.hardwareConcurrency} cores, ${new Date().toISOString()})`,
);
