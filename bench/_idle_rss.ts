/**
 * The measurement the idle-memory benches share: start each server as a
 * child process, warm it up, read its RSS (VmRSS from /proc/<pid>/status),
 * open and hold `count` connections, read its RSS again, and print one table
 * row and one JSON line per server. Each bench supplies its servers, how one
 * connection is opened, and when the later readings are taken: `settle` for
 * one reading, or `readAt` for readings at several idle times, the same times
 * for every server (a runtime with a garbage collector gives memory back
 * some seconds after a burst, if at all: one early reading would hide that).
 *
 * @module
 */
import { readProcFile } from "../ffi/process.ts";

/** A connection the bench holds open until the server has been measured. */
export interface Held {
  /** Close the connection. */
  close(): void;
}

/** What one idle-memory bench measures and how it prints it. */
export interface IdleRssSpec<C extends Held> {
  /** The first output line, e.g. "idle keep-alive connections: 10000". */
  title: string;
  /** Server name → command line; "{port}" stands for the port. */
  servers: Record<string, string[]>;
  /** The `--only` flag: comma-separated names, "" for all servers. */
  only: string;
  /** Connections held during the second reading. */
  count: number;
  /** Connections opened and closed again before the first reading. */
  warmup: number;
  /** Pause after the warm-up, before the first reading. */
  warmupPauseMs: number;
  /** Connections opened at once. */
  batch: number;
  /** The server the last column divides by. */
  base: string;
  /** Width of the server column. */
  nameWidth: number;
  /**
   * How the bench knows the server is ready: "stdout" waits for
   * "listening on" in its output, "connect" for a TCP connection to succeed.
   */
  ready: "stdout" | "connect";
  /** Open one connection and complete one exchange on it. */
  open(port: number, name: string): Promise<C>;
  /** The second reading, once `count` connections are held (unless `readAt` is given). */
  settle?(rss: () => number): Promise<number>;
  /**
   * Read the RSS at each of these times (ms after the last connection was
   * opened, ascending) instead of `settle`; the last reading is `after`.
   */
  readAt?: readonly number[];
}

/** One reading of `readAt`. */
export interface IdleRssReading {
  /** Milliseconds after the last connection was opened. */
  ms: number;
  /** RSS in KiB. */
  rss: number;
  /** (rss - before) / count. */
  perConnKiB: number;
}

/** One server's readings. */
export interface IdleRssRow {
  /** Server name. */
  name: string;
  /** RSS in KiB after the warm-up. */
  before: number;
  /** RSS in KiB with the connections held. */
  after: number;
  /** (after - before) / count. */
  perConnKiB: number;
  /** The readings of `readAt`, if it was given. */
  readings?: IdleRssReading[];
}

/**
 * The command line of one of ffinet's bench servers in this folder (e.g.
 * `http_serve.ts`), run by this Deno with FFI, env and read allowed, on
 * "{port}", followed by `args`.
 */
export function benchServer(script: string, ...args: string[]): string[] {
  const path = new URL(script, import.meta.url).pathname;
  return [
    Deno.execPath(),
    "run",
    "--allow-ffi",
    "--allow-env",
    "--allow-read",
    path,
    "--port",
    "{port}",
    ...args,
  ];
}

/** The server's resident set size in KiB. */
export function rssKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readProcFile(`/proc/${pid}/status`))?.[1] ?? NaN);
}

/**
 * The value of an `--idle-ms` flag: comma-separated whole numbers of
 * milliseconds, ascending (e.g. "1000,10000,30000").
 */
export function idleTimes(text: string): number[] {
  const times = text.split(",").map((t) => Number(t.trim()));
  for (let i = 0; i < times.length; i++) {
    const t = times[i]!;
    if (!Number.isSafeInteger(t) || t < 0 || (i > 0 && t <= times[i - 1]!)) {
      throw new RangeError(
        `Cannot read --idle-ms "${text}": not ascending whole numbers of milliseconds`,
      );
    }
  }
  return times;
}

/** Resolve after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Write `request` and read until `needle` has arrived; throws if the peer closes first. */
export async function exchange(
  c: Deno.Conn,
  request: Uint8Array,
  needle: string,
  name: string,
): Promise<void> {
  await c.write(request);
  const buf = new Uint8Array(1024);
  let got = "";
  while (!got.includes(needle)) {
    const r = await c.read(buf);
    if (r === null) throw new Error(`${name}: connection closed`);
    got += new TextDecoder().decode(buf.subarray(0, r));
  }
}

/** Wait for "listening on"; the rest of the output is then read and dropped until `drained`. */
async function waitStdout(
  child: Deno.ChildProcess,
  name: string,
): Promise<{ drained: Promise<void> }> {
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!seen.includes("listening on")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`Cannot start ${name}`);
    seen += value;
  }
  reader.releaseLock();
  return { drained: child.stdout.pipeTo(new WritableStream()).catch(() => {}) };
}

async function waitConnect(port: number): Promise<void> {
  const end = Date.now() + 30_000;
  for (;;) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch (e) {
      if (Date.now() > end) throw e;
      await sleep(50);
    }
  }
}

async function measure<C extends Held>(
  spec: IdleRssSpec<C>,
  name: string,
  cmd: string[],
  port: number,
): Promise<IdleRssRow> {
  const [exe, ...rest] = cmd.map((a) => a.replace("{port}", String(port)));
  const child = new Deno.Command(exe!, {
    args: rest,
    stdout: spec.ready === "stdout" ? "piped" : "null",
    stderr: "inherit",
  }).spawn();
  let drained: Promise<void> = Promise.resolve();
  const conns: C[] = [];
  try {
    if (spec.ready === "stdout") ({ drained } = await waitStdout(child, name));
    else await waitConnect(port);
    const open = async (n: number, keep: boolean) => {
      for (let i = 0; i < n; i += spec.batch) {
        const opened = await Promise.all(
          Array.from({ length: Math.min(spec.batch, n - i) }, () => spec.open(port, name)),
        );
        if (keep) conns.push(...opened);
        else for (const c of opened) c.close();
      }
    };
    await open(spec.warmup, false);
    await sleep(spec.warmupPauseMs);
    const before = rssKiB(child.pid);
    await open(spec.count, true);
    const rss = () => rssKiB(child.pid);
    const perConn = (kib: number) => (kib - before) / spec.count;
    if (spec.readAt !== undefined) {
      const opened = performance.now();
      const readings: IdleRssReading[] = [];
      for (const ms of spec.readAt) {
        await sleep(Math.max(0, ms - (performance.now() - opened)));
        const kib = rss();
        readings.push({ ms, rss: kib, perConnKiB: perConn(kib) });
      }
      const after = readings.at(-1)?.rss ?? rss();
      return { name, before, after, perConnKiB: perConn(after), readings };
    }
    if (spec.settle === undefined) throw new Error("Cannot measure: neither settle nor readAt");
    const after = await spec.settle(rss);
    return { name, before, after, perConnKiB: perConn(after) };
  } finally {
    for (const c of conns) {
      try {
        c.close();
      } catch { /* already closed */ }
    }
    child.kill("SIGKILL");
    await child.status;
    await drained;
  }
}

/** Measure every selected server in turn and print the table and the JSON lines. */
export async function runIdleRss<C extends Held>(spec: IdleRssSpec<C>): Promise<IdleRssRow[]> {
  const only = spec.only === "" ? Object.keys(spec.servers) : spec.only.split(",");
  let port = 12000 + Math.floor(Math.random() * 16000); // below the ephemeral range
  const rows: IdleRssRow[] = [];
  for (const name of only) {
    const cmd = spec.servers[name];
    if (!cmd) throw new Error(`unknown server ${name}`);
    rows.push(await measure(spec, name, cmd, port++));
  }
  console.log(spec.title);
  if (spec.readAt !== undefined) printReadings(spec, rows, spec.readAt);
  else printRows(spec, rows);
  for (const r of rows) console.log(JSON.stringify({ ...r, connections: spec.count }));
  return rows;
}

/** One row per server: RSS before and after, per connection, and against the base. */
function printRows<C extends Held>(spec: IdleRssSpec<C>, rows: IdleRssRow[]): void {
  const column = `x_${spec.base}`;
  console.log(
    `${"server".padEnd(spec.nameWidth)} rss_before_MiB  rss_after_MiB  KiB_per_conn  ${column}`,
  );
  const base = rows.find((r) => r.name === spec.base);
  for (const r of rows) {
    const x = base ? ((r.after - r.before) / (base.after - base.before)).toFixed(2) : "-";
    console.log(
      `${r.name.padEnd(spec.nameWidth)} ${(r.before / 1024).toFixed(1).padStart(14)} ${
        (r.after / 1024).toFixed(1).padStart(14)
      } ${r.perConnKiB.toFixed(2).padStart(13)} ${x.padStart(column.length + 1)}`,
    );
  }
}

/**
 * One row per server: RSS before, then KiB per connection at each idle time,
 * then each of those against the base server's at the same time.
 */
function printReadings<C extends Held>(
  spec: IdleRssSpec<C>,
  rows: IdleRssRow[],
  readAt: readonly number[],
): void {
  const at = readAt.map((ms) => `${ms / 1000}s`);
  const cell = 9;
  console.log(
    `${"server".padEnd(spec.nameWidth)} rss_before_MiB ` +
      `${at.map((t) => `kib@${t}`.padStart(cell)).join(" ")} ` +
      `${at.map((t) => `x@${t}`.padStart(cell)).join(" ")}   (x: against ${spec.base})`,
  );
  const base = rows.find((r) => r.name === spec.base);
  for (const r of rows) {
    const per = (r.readings ?? []).map((g) => g.perConnKiB.toFixed(2).padStart(cell));
    const x = (r.readings ?? []).map((g, i) => {
      const b = base?.readings?.[i];
      return (b && base ? (g.rss - r.before) / (b.rss - base.before) : NaN).toFixed(2)
        .padStart(cell);
    });
    console.log(
      `${r.name.padEnd(spec.nameWidth)} ${(r.before / 1024).toFixed(1).padStart(14)} ${
        per.join(" ")
      } ${x.join(" ")}`,
    );
  }
}
