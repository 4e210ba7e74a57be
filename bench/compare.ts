/**
 * `deno task bench`: ffinet's servers side by side with Deno's own
 * (`Deno.listen`, `Deno.serve`), Node's (when `node` is installed) and Bun's
 * (when `bun` is on PATH or in $BUN), under the same loopback load in one run.
 * For each server and load it prints the throughput and the server's CPU time
 * per message or request (user + system, from `/proc/<pid>/stat`), and the
 * ratio of that CPU time to the kind's base server (`x_base`): ffinet's echo
 * server for echo, `Deno.serve` with the same handler for http and json.
 *
 * Kinds: `echo`; `http`: "Hello, World!" (`text/plain`), the handler of
 * `../shared/bench/deno_http.ts`, on ffinet's `serve()` (ffinet_serve), its
 * low-level `serveRaw()` (ffinet_raw), Deno.serve, Node and Bun; `json`:
 * `Response.json({ message: "Hello, World!" })` on serve(), Deno.serve, Node
 * and Bun; `app`: the Hono app of `bench/ref/app_routes.mjs` (text, JSON, a
 * path parameter with a query and a header, a JSON POST; wrk cycles through
 * them with `bench/wrk_app_mix.lua`) on serve() and Deno.serve; `bodies`:
 * a 1 GiB upload read through `req.body`, 100,000 streamed 1 KiB chunks and
 * a 100 MiB file (`Deno.open().readable`) on serve() and Deno.serve
 * (bench/http_bodies.ts, client bench/body_load.ts): wall time, the
 * server's CPU time, its RSS growth, and the ratio of wall time to
 * Deno.serve's; `rss`: the memory of 10,000 idle keep-alive connections on
 * serve(), serveRaw(), Deno.serve and Node (bench/http_idle_rss.ts).
 *
 * The load comes from `bench/load.ts` (ffinet's own client; every echoed
 * byte is checked), or from `wrk` for HTTP when it is installed.
 *
 *     deno task bench [--seconds N] [--rounds N] [--only echo|http|json|app|bodies|rss]
 *
 * `--rounds N` runs every server N times, interleaved, and prints medians
 * (the ratio is taken per round, then its median).
 *
 * @module
 */
import { readProcFile } from "../ffi/process.ts";
import { parseArgs } from "../examples/_args.ts";

const args = parseArgs(Deno.args, {
  usage: "compare.ts [--seconds N] [--rounds N] [--only echo|http|json|app|bodies|rss]",
  strings: { seconds: "3", only: "", rounds: "1" },
});
const seconds = Number(args.strings.seconds);
const rounds = Number(args.strings.rounds);
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

/** Resident set size of a process in KiB, from /proc/<pid>/status. */
function rssKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readProcFile(`/proc/${pid}/status`))?.[1] ?? 0);
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

// Below the ephemeral range (32768+), so no client socket holds the port.
let nextPort = 12000 + Math.floor(Math.random() * 16000);

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
  if (kind === "app" && !await has("wrk")) {
    console.error("app: needs wrk (apt-get install -y wrk)");
    return 0;
  }
  if (kind !== "echo" && await has("wrk")) {
    const pipeline = load[1] === "16";
    const script = kind === "app" ? `${here}wrk_app_mix.lua` : `${here}wrk_pipeline.lua`;
    const wrkArgs = [
      "-t1",
      "-c64",
      `-d${seconds}s`,
      ...(pipeline || kind === "app" ? ["-s", script] : []),
      `http://127.0.0.1:${port}/`,
      ...(pipeline ? ["--", "16"] : kind === "app" ? ["--", "1"] : []),
    ];
    const out = await new Deno.Command("wrk", { args: wrkArgs, stdout: "piped" }).output();
    const text = new TextDecoder().decode(out.stdout);
    return Number(/(\d+) requests in/.exec(text)?.[1] ?? 0);
  }
  const out = await new Deno.Command(deno, {
    args: [
      "run",
      "--allow-ffi",
      `${here}load.ts`,
      kind === "echo" ? "echo" : "http",
      String(port),
      ...load,
      String(seconds),
    ],
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
  json: [["keepalive", ["64", "1"]], ["pipe16", ["64", "16"]]],
  app: [["keepalive", ["64", "1"]], ["pipe16", ["64", "16"]]],
} as const;

const node = await has("node");
const bun = Deno.env.get("BUN") ?? (await has("bun") ? "bun" : "");
const ffinetHttp = (script: string, ...extra: string[]) => ({
  cmd: [
    deno,
    "run",
    "--allow-ffi",
    "--allow-env",
    "--allow-read",
    `${here}${script}`,
    "--port",
    "{port}",
    ...extra,
  ],
});
const servers: Record<"echo" | "http" | "json" | "app", Server[]> = {
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
    { name: "ffinet_serve", ...ffinetHttp("http_serve.ts") },
    { name: "ffinet_raw", ...ffinetHttp("http_raw.ts") },
    { name: "deno_serve", cmd: [deno, "run", "--allow-net", `${here}ref/deno_http.ts`, "{port}"] },
    ...(node ? [{ name: "node_http", cmd: ["node", `${here}ref/node_http.mjs`, "{port}"] }] : []),
    ...(bun ? [{ name: "bun_serve", cmd: [bun, `${here}ref/bun_http.ts`, "{port}"] }] : []),
  ],
  json: [
    { name: "ffinet_serve", ...ffinetHttp("http_serve.ts", "--json") },
    {
      name: "deno_serve",
      cmd: [deno, "run", "--allow-net", `${here}ref/deno_http_json.ts`, "{port}"],
    },
    ...(node
      ? [{ name: "node_http", cmd: ["node", `${here}ref/node_http_json.mjs`, "{port}"] }]
      : []),
    ...(bun ? [{ name: "bun_serve", cmd: [bun, `${here}ref/bun_http_json.ts`, "{port}"] }] : []),
  ],
  app: [
    { name: "ffinet_serve", ...ffinetHttp("http_app.ts") },
    {
      name: "deno_serve",
      cmd: [
        deno,
        "run",
        "--allow-net",
        "--allow-read",
        "--allow-env",
        `${here}ref/deno_app.ts`,
        "{port}",
      ],
    },
  ],
};
const baseOf = {
  echo: "ffinet",
  http: "deno_serve",
  json: "deno_serve",
  app: "deno_serve",
} as const;

const rows: {
  round: number;
  kind: string;
  load: string;
  server: string;
  rate: number;
  cpuUs: number;
}[] = [];
for (let round = 0; round < rounds; round++) {
  for (const kind of ["echo", "http", "json", "app"] as const) {
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
            round,
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
}

const median = (values: number[]): number => {
  const s = [...values].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const pad = (s: string, n: number) => s.padEnd(n);
if (rows.length > 0) {
  console.log(
    `${pad("kind", 5)} ${pad("load", 10)} ${pad("server", 12)} ${"ops/s".padStart(10)} ${
      "cpu_us/op".padStart(10)
    } ${"x_base".padStart(9)}${rounds > 1 ? `  (medians of ${rounds} rounds)` : ""}`,
  );
  const keys = [...new Set(rows.map((r) => `${r.kind} ${r.load} ${r.server}`))];
  for (const key of keys) {
    const [kind, load, server] = key.split(" ") as [keyof typeof baseOf, string, string];
    const mine = rows.filter((r) => r.kind === kind && r.load === load && r.server === server);
    // The ratio is taken per round (same round, same load), then its median.
    const ratios = mine.flatMap((r) => {
      const ref = rows.find((x) =>
        x.round === r.round && x.kind === kind && x.load === load && x.server === baseOf[kind]
      );
      return ref ? [r.cpuUs / ref.cpuUs] : [];
    });
    const ratio = ratios.length > 0 ? median(ratios).toFixed(2) : "-";
    console.log(
      `${pad(kind, 5)} ${pad(load, 10)} ${pad(server, 12)} ${
        String(Math.round(median(mine.map((r) => r.rate)))).padStart(10)
      } ${median(mine.map((r) => r.cpuUs)).toFixed(3).padStart(10)} ${ratio.padStart(9)}`,
    );
  }
  console.log(
    `(x_base: CPU per op relative to ffinet for echo, to deno_serve for http, json and app; ${Deno.build.target}, ${navigator.hardwareConcurrency} cores, ${
      new Date().toISOString()
    })`,
  );
}

// Bodies: wall time of one large body each, next to Deno.serve (same handlers).
if (only === "" || only === "bodies") await bodies();

async function bodies(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ffinet-bench-" });
  const file = `${dir}/file.bin`;
  try {
    {
      // 100 MiB of non-zero bytes (written in 1 MiB pieces).
      using f = await Deno.open(file, { write: true, create: true, truncate: true });
      const piece = new Uint8Array(1024 * 1024);
      for (let i = 0; i < piece.length; i++) piece[i] = (i * 31 + 7) & 0xff;
      for (let i = 0; i < 100; i++) {
        for (let off = 0; off < piece.length;) off += await f.write(piece.subarray(off));
      }
    }
    const cases = [
      ["upload1g", ["upload", String(1024 * 1024 * 1024)]],
      ["chunks100k", ["get", "/chunks?n=100000&size=1024"]],
      ["file100m", ["get", `/file?path=${encodeURIComponent(file)}`]],
    ] as const;
    const bodyServers: Server[] = [
      {
        name: "ffinet_serve",
        cmd: [
          deno,
          "run",
          "--allow-ffi",
          "--allow-env",
          "--allow-read",
          `${here}http_bodies.ts`,
          "--port",
          "{port}",
        ],
      },
      {
        name: "deno_serve",
        cmd: [
          deno,
          "run",
          "--allow-net",
          "--allow-read",
          `${here}http_bodies.ts`,
          "--port",
          "{port}",
          "--deno",
        ],
      },
    ];
    const got: {
      round: number;
      load: string;
      server: string;
      wall: number;
      cpuMs: number;
      rss: number;
    }[] = [];
    for (let round = 0; round < rounds; round++) {
      for (const server of bodyServers) {
        const port = nextPort++;
        const child = await startServer(server, port);
        try {
          for (const [load, params] of cases) {
            const rss0 = rssKiB(child.pid);
            let rssMax = rss0;
            const sampler = setInterval(() => rssMax = Math.max(rssMax, rssKiB(child.pid)), 5);
            const c0 = cpuTicks(child.pid);
            const out = await new Deno.Command(deno, {
              args: [
                "run",
                "--allow-net",
                `${here}body_load.ts`,
                params[0],
                String(port),
                params[1],
              ],
              stdout: "piped",
            }).output();
            const c1 = cpuTicks(child.pid);
            clearInterval(sampler);
            const r = JSON.parse(new TextDecoder().decode(out.stdout).trim() || "{}");
            if (r.ok !== true) {
              console.error(`${server.name} ${load}: failed (${JSON.stringify(r)})`);
              continue;
            }
            got.push({
              round,
              load,
              server: server.name,
              wall: r.seconds,
              cpuMs: (c1 - c0) / hz * 1000,
              rss: (rssMax - rss0) / 1024,
            });
          }
        } finally {
          child.kill("SIGTERM");
          await child.status;
        }
      }
    }
    console.log(
      `${pad("kind", 6)} ${pad("load", 11)} ${pad("server", 12)} ${"wall_s".padStart(8)} ${
        "cpu_ms".padStart(8)
      } ${"rss+MiB".padStart(8)} ${"x_wall".padStart(7)}${
        rounds > 1 ? `  (medians of ${rounds} rounds)` : ""
      }`,
    );
    for (const [load] of cases) {
      for (const { name } of bodyServers) {
        const mine = got.filter((g) => g.load === load && g.server === name);
        if (mine.length === 0) continue;
        const ratios = mine.flatMap((g) => {
          const ref = got.find((x) =>
            x.round === g.round && x.load === load && x.server === "deno_serve"
          );
          return ref ? [g.wall / ref.wall] : [];
        });
        console.log(
          `${pad("bodies", 6)} ${pad(load, 11)} ${pad(name, 12)} ${
            median(mine.map((g) => g.wall)).toFixed(3).padStart(8)
          } ${median(mine.map((g) => g.cpuMs)).toFixed(0).padStart(8)} ${
            median(mine.map((g) => g.rss)).toFixed(1).padStart(8)
          } ${(ratios.length > 0 ? median(ratios).toFixed(2) : "-").padStart(7)}`,
        );
      }
    }
    console.log("(x_wall: wall time relative to deno_serve, per round, then the median)");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

// Memory: the RSS of 10,000 idle keep-alive connections (bench/http_idle_rss.ts), in a shell
// that raises the soft fd limit (each side holds one fd per connection).
if (only === "" || only === "rss") {
  const conns = 10_000;
  const script = [
    `ulimit -n ${conns + 2000} 2>/dev/null || ulimit -n $(ulimit -Hn)`,
    `exec "${deno}" run --allow-ffi --allow-read --allow-run --allow-net --allow-env ` +
    `"${here}http_idle_rss.ts" --connections ${conns} ` +
    `--only ffinet_serve,ffinet_raw,deno_serve${node ? ",node_http" : ""}`,
  ].join(" && ");
  const out = await new Deno.Command("sh", { args: ["-c", script], stdout: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) console.error(`rss: bench/http_idle_rss.ts failed (${out.code})`);
  console.log(text.split("\n").filter((l) => l !== "" && !l.startsWith("{")).join("\n"));
}
