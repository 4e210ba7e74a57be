/**
 * Multi-core scaling of ffinet's `serve()`: the same "Hello, World!" server
 * (`bench/http_serve.ts`) with `--workers 1` and `--workers 2` (or the
 * counts given), under the same `wrk` load, interleaved over `--rounds`
 * rounds. Prints each one's median throughput and CPU time per request (user
 * + system of the whole process, every thread, from /proc/<pid>/stat).
 *
 *     deno run --allow-ffi --allow-read --allow-run --allow-env bench/http_scaling.ts \
 *       [--seconds 5] [--rounds 3] [--workers 1,2] [--connections 64] [--pipeline 1]
 *
 * On a 2-core machine wrk shares the cores with the server, so throughput
 * cannot double; CPU per request shows what a second Worker costs.
 *
 * @module
 */
import { readProcFile } from "../ffi/process.ts";
import { parseArgs } from "../examples/_args.ts";

const args = parseArgs(Deno.args, {
  usage:
    "http_scaling.ts [--seconds S] [--rounds N] [--workers 1,2] [--connections C] [--pipeline P]",
  strings: { seconds: "5", rounds: "3", workers: "1,2", connections: "64", pipeline: "1" },
});
const seconds = Number(args.strings.seconds);
const rounds = Number(args.strings.rounds);
const counts = (args.strings.workers ?? "1,2").split(",").map(Number);
const connections = Number(args.strings.connections);
const pipeline = Number(args.strings.pipeline);
const here = new URL(".", import.meta.url).pathname;
const hz = 100;

function cpuTicks(pid: number): number {
  const text = readProcFile(`/proc/${pid}/stat`);
  const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]);
}

async function once(workers: number, port: number): Promise<{ rate: number; cpuUs: number }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-ffi",
      "--allow-env",
      "--allow-read",
      `${here}http_serve.ts`,
      "--port",
      String(port),
      "--workers",
      String(workers),
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!seen.includes("listening on")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("Cannot start bench/http_serve.ts");
    seen += value;
  }
  reader.releaseLock();
  const drained = child.stdout.pipeTo(new WritableStream()).catch(() => {});
  try {
    await new Promise((r) => setTimeout(r, 300)); // every Worker listening
    const c0 = cpuTicks(child.pid);
    const wrkArgs = ["-t2", `-c${connections}`, `-d${seconds}s`];
    if (pipeline > 1) wrkArgs.push("-s", `${here}wrk_pipeline.lua`);
    wrkArgs.push(`http://127.0.0.1:${port}/`);
    if (pipeline > 1) wrkArgs.push("--", String(pipeline));
    const out = await new Deno.Command("wrk", { args: wrkArgs, stdout: "piped" }).output();
    const c1 = cpuTicks(child.pid);
    const text = new TextDecoder().decode(out.stdout);
    const ops = Number(/(\d+) requests in/.exec(text)?.[1] ?? 0);
    const rate = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? 0);
    if (ops === 0) throw new Error(`wrk got no responses: ${text}`);
    return { rate, cpuUs: ((c1 - c0) / hz) * 1e6 / ops };
  } finally {
    child.kill("SIGKILL");
    await child.status;
    await drained;
  }
}

const median = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
let port = 12000 + Math.floor(Math.random() * 16000); // below the ephemeral range
const results = new Map<number, { rate: number[]; cpu: number[] }>();
for (let r = 0; r < rounds; r++) {
  for (const w of counts) {
    const res = await once(w, port++);
    const entry = results.get(w) ?? { rate: [], cpu: [] };
    entry.rate.push(res.rate);
    entry.cpu.push(res.cpuUs);
    results.set(w, entry);
  }
}
const base = results.get(counts[0]!)!;
console.log(
  `serve() scaling: wrk -t2 -c${connections}${
    pipeline > 1 ? ` pipeline ${pipeline}` : ""
  }, ${seconds} s, medians of ${rounds}`,
);
console.log("workers      req/s  cpu_us/req  x_rate  x_cpu");
for (const [w, e] of results) {
  console.log(
    `${String(w).padStart(7)} ${median(e.rate).toFixed(0).padStart(10)} ${
      median(e.cpu).toFixed(3).padStart(11)
    } ${(median(e.rate) / median(base.rate)).toFixed(2).padStart(7)} ${
      (median(e.cpu) / median(base.cpu)).toFixed(2).padStart(6)
    }`,
  );
}
console.log(
  `(${Deno.build.target}, ${navigator.hardwareConcurrency} cores, ${new Date().toISOString()})`,
);
