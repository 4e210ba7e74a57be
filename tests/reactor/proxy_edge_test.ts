/**
 * Listener options for edge servers, each shown by its effect:
 * `deferAccept` (a silent connection is never handed over), `fastOpen`
 * (data in the SYN is accepted: TCPFastOpenPassive counts it, in a network
 * namespace the test makes so the host's sysctl is untouched) and
 * `incomingCpu` (read back; in an SO_REUSEPORT group, clients pinned to a CPU
 * land on that CPU's listener).
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { Listener } from "../../reactor/listener.ts";
import { sleep, waitFor } from "../_helpers.ts";
import { bytes, connectLoopback, onReactor } from "./_util.ts";
import { DENO_SPAWN_SKIP, INCOMING_CPU_SKIP, skipped } from "../ffi/_emulation.ts";

const DENO = Deno.execPath();
const ROOT = new URL("../../", import.meta.url).pathname;

async function run(cmd: string, args: string[]): Promise<Deno.CommandOutput> {
  return await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
}

Deno.test("edge: deferAccept: a connection that sends nothing is never handed over; one that sends data is", async () => {
  await onReactor(async (reactor) => {
    const seen = { deferred: [] as string[], plain: [] as string[] };
    const deferred = Listener.listen(
      reactor,
      { host: "127.0.0.1", port: 0, deferAccept: 5 },
      (conn) => {
        seen.deferred.push("conn");
        conn.onData = (d) => seen.deferred.push(new TextDecoder().decode(d));
      },
    );
    const plain = Listener.listen(reactor, { host: "127.0.0.1", port: 0 }, () => {
      seen.plain.push("conn");
    });
    try {
      assertEquals(deferred.socket.getOption("deferAccept") > 0, true);
      assertEquals(plain.socket.getOption("deferAccept"), 0);
      const dport = (deferred.address() as { port: number }).port;
      const pport = (plain.address() as { port: number }).port;
      using silent = connectLoopback(dport); // the handshake completes on the client side
      using silentPlain = connectLoopback(pport);
      await waitFor(() => seen.plain.length === 1, 3000, "the plain listener's accept");
      await sleep(700);
      assertEquals(seen.deferred, [], "the silent connection was handed over");
      using talker = connectLoopback(dport);
      talker.write(bytes("hi"));
      await waitFor(() => seen.deferred.length === 2, 3000, "the talking connection");
      assertEquals(seen.deferred, ["conn", "hi"]);
      await sleep(300);
      assertEquals(seen.deferred.length, 2, "still only the talking connection");
      void silent, silentPlain;
    } finally {
      deferred.close();
      plain.close();
    }
  }, { awaitRegistrations: true });
});

const NS = `ffinet-tfo-${Deno.pid}`;
const netnsReason = await (async () => {
  if (Deno.uid() !== 0) return "not root: cannot make a network namespace";
  try {
    const add = await run("ip", ["netns", "add", NS]);
    if (!add.success) return `ip netns add failed: ${new TextDecoder().decode(add.stderr).trim()}`;
    await run("ip", ["netns", "del", NS]);
    return "";
  } catch (e) {
    return `cannot run ip: ${(e as Error).message}`;
  }
})();
const fastOpenSkip = netnsReason || DENO_SPAWN_SKIP; // its probe runs Deno.execPath()
if (fastOpenSkip) console.log(`skip: edge fastOpen test: ${fastOpenSkip}`);

Deno.test({
  name:
    "edge: fastOpen: data in the SYN is accepted (TCPFastOpenPassive counts it), not without the option",
  ignore: fastOpenSkip !== null,
  async fn() {
    // A private namespace: its own loopback and its own net.ipv4.tcp_fastopen.
    const add = await run("ip", ["netns", "add", NS]);
    assert(add.success, new TextDecoder().decode(add.stderr));
    try {
      assert((await run("ip", ["-n", NS, "link", "set", "lo", "up"])).success);
      const sysctl = await run("ip", [
        "netns",
        "exec",
        NS,
        "sysctl",
        "-qw",
        "net.ipv4.tcp_fastopen=3",
      ]);
      assert(sysctl.success, new TextDecoder().decode(sysctl.stderr));
      const probe = async (fastOpen: number) => {
        const out = await run("ip", [
          "netns",
          "exec",
          NS,
          DENO,
          "run",
          "--allow-ffi",
          `${ROOT}tests/deploy/fixtures/tfo_probe.ts`,
          String(fastOpen),
        ]);
        const text = new TextDecoder().decode(out.stdout);
        assert(out.success, text + new TextDecoder().decode(out.stderr));
        return JSON.parse(text.trim().split("\n").pop()!) as {
          passive: number;
          cookieReqd: number;
          received: string;
        };
      };
      const on = await probe(16);
      assertEquals(on.received, "firstsecond");
      assert(on.passive >= 1, `TCPFastOpenPassive did not count: ${JSON.stringify(on)}`);
      const off = await probe(0);
      assertEquals(off.received, "firstsecond");
      assertEquals(off.passive, 0, `without fastOpen: ${JSON.stringify(off)}`);
    } finally {
      await run("ip", ["netns", "del", NS]);
    }
  },
});

const cpus = navigator.hardwareConcurrency;
const tasksetReason = cpus < 2
  ? `only ${cpus} CPU`
  : await run("taskset", ["-c", "0", "true"]).then(
    (o) => (o.success ? "" : "taskset -c 0 failed"),
    () => "taskset is not installed",
  );

const READS_BACK = "edge: incomingCpu is set on the listening socket and reads back";
Deno.test(READS_BACK, { ignore: skipped(READS_BACK, INCOMING_CPU_SKIP) }, async () => {
  await onReactor((reactor) => {
    const l = Listener.listen(reactor, { host: "127.0.0.1", port: 0, incomingCpu: 0 });
    try {
      assertEquals(l.socket.getOption("incomingCpu"), 0);
      l.socket.setOption("incomingCpu", 1);
      assertEquals(l.socket.getOption("incomingCpu"), 1);
    } finally {
      l.close();
    }
    assertThrows(
      () => Listener.listen(reactor, { host: "127.0.0.1", port: 0, incomingCpu: -1 }),
      RangeError,
      "incomingCpu",
    );
    return Promise.resolve();
  });
});

const placementSkip = INCOMING_CPU_SKIP ?? (tasksetReason || null);
if (placementSkip) console.log(`skip: edge incomingCpu placement test: ${placementSkip}`);

Deno.test({
  name:
    "edge: incomingCpu: in an SO_REUSEPORT group, clients pinned to CPU n land on the listener with incomingCpu n",
  ignore: placementSkip !== null,
  async fn() {
    await onReactor(async (reactor) => {
      const a = Listener.listen(reactor, {
        host: "127.0.0.1",
        port: 0,
        reusePort: true,
        incomingCpu: 0,
      });
      const port = (a.address() as { port: number }).port;
      const b = Listener.listen(reactor, {
        host: "127.0.0.1",
        port,
        reusePort: true,
        incomingCpu: 1,
      });
      try {
        const burst = async (cpu: number) => {
          const out = await run("taskset", [
            "-c",
            String(cpu),
            "bash",
            "-c",
            `for i in $(seq 10); do exec 3<>/dev/tcp/127.0.0.1/${port}; exec 3<&-; done`,
          ]);
          assert(out.success, new TextDecoder().decode(out.stderr));
        };
        await burst(0);
        await waitFor(() => a.stats.accepted + b.stats.accepted === 10, 5000, "10 accepts");
        assertEquals([a.stats.accepted, b.stats.accepted], [10, 0], "pinned to CPU 0");
        await burst(1);
        await waitFor(() => a.stats.accepted + b.stats.accepted === 20, 5000, "20 accepts");
        assertEquals([a.stats.accepted, b.stats.accepted], [10, 10], "pinned to CPU 1");
      } finally {
        a.close();
        b.close();
      }
    }, { awaitRegistrations: true });
  },
});
