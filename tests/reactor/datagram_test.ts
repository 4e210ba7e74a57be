/**
 * Datagram sockets over loopback: UDP echo on IPv4 and IPv6 with sender
 * addresses, connected UDP, SO_REUSEPORT spreading datagrams, Unix datagram
 * bind/sendTo and connect (the /dev/log pattern), and drops counted, never
 * blocking, when the receiver's queue is full.
 */
import { assert, assertEquals } from "@std/assert";
import type { Inet6Address, InetAddress, SocketAddress } from "../../ffi/sockaddr.ts";
import { Socket } from "../../ffi/socket.ts";
import { DatagramSocket } from "../../reactor/mod.ts";
import { waitFor, withFdCheck } from "../_helpers.ts";
import { bytes, onReactor, text } from "./_util.ts";

function ip(addr: SocketAddress): InetAddress | Inet6Address {
  assert(addr.family !== "unix", `expected an IP address, got ${addr.family}`);
  return addr as InetAddress | Inet6Address;
}

function tempDir(): string {
  return Deno.makeTempDirSync({ prefix: "ffinet-dgram-" });
}

for (const host of ["127.0.0.1", "::1"]) {
  Deno.test(`UDP echo over ${host}: replies reach the sender's address`, () =>
    withFdCheck(() =>
      onReactor(async (reactor) => {
        const server = DatagramSocket.open(reactor, { bind: { host, port: 0 } });
        const client = DatagramSocket.open(reactor, { bind: { host, port: 0 } });
        try {
          const seenByServer: SocketAddress[] = [];
          server.onMessage = (data, from) => {
            seenByServer.push(from);
            server.send(data, from);
          };
          const replies: { msg: string; from: SocketAddress }[] = [];
          client.onMessage = (data, from) => replies.push({ msg: text(data), from });
          const serverAddr = server.address();
          for (let i = 0; i < 5; i++) assert(client.send(bytes(`ping ${i}`), serverAddr));
          await waitFor(() => replies.length === 5, 2000, "5 echoes");
          assertEquals(replies.map((r) => r.msg).sort(), [0, 1, 2, 3, 4].map((i) => `ping ${i}`));
          const family = host.includes(":") ? "inet6" : "inet";
          const clientAddr = ip(client.address());
          for (const from of seenByServer) {
            assertEquals([from.family, ip(from).address, ip(from).port], [
              family,
              host,
              clientAddr.port,
            ]);
          }
          for (const { from } of replies) {
            assertEquals([ip(from).address, ip(from).port], [host, ip(serverAddr).port]);
          }
          assertEquals(server.stats.received, 5);
          assertEquals(server.stats.sent, 5);
          assertEquals(client.stats.received, 5);
        } finally {
          server.close();
          client.close();
        }
      })
    ));
}

Deno.test("connected UDP: send without an address; datagrams from others are filtered", () =>
  withFdCheck(() =>
    onReactor(async (reactor) => {
      const server = DatagramSocket.open(reactor, { bind: { host: "127.0.0.1", port: 0 } });
      const port = ip(server.address()).port;
      const client = DatagramSocket.open(reactor, { connect: { host: "127.0.0.1", port } });
      const stranger = DatagramSocket.open(reactor, { bind: { host: "127.0.0.1", port: 0 } });
      try {
        server.onMessage = (data, from) => server.send(bytes(`re: ${text(data)}`), from);
        const got: string[] = [];
        client.onMessage = (data, from) => {
          assertEquals(ip(from).port, port);
          got.push(text(data));
        };
        assert(client.send(bytes("hello")));
        await waitFor(() => got.length === 1, 2000, "the reply");
        assertEquals(got, ["re: hello"]);
        // The client is connected to the server: the kernel drops others' datagrams.
        stranger.send(bytes("not for you"), client.address());
        assert(client.send(bytes("again")));
        await waitFor(() => got.length === 2, 2000, "the second reply");
        assertEquals(got, ["re: hello", "re: again"]);
        assertEquals(client.stats.received, 2);
      } finally {
        server.close();
        client.close();
        stranger.close();
      }
    })
  ));

Deno.test("SO_REUSEPORT on UDP: two sockets on one port both receive some datagrams", () =>
  withFdCheck(() =>
    onReactor(async (reactor) => {
      const a = DatagramSocket.open(reactor, {
        bind: { host: "127.0.0.1", port: 0 },
        reusePort: true,
      });
      const port = ip(a.address()).port;
      const b = DatagramSocket.open(reactor, {
        bind: { host: "127.0.0.1", port },
        reusePort: true,
      });
      const senders: DatagramSocket[] = [];
      try {
        const counts = [0, 0];
        a.onMessage = () => counts[0]!++;
        b.onMessage = () => counts[1]!++;
        const to: SocketAddress = { family: "inet", address: "127.0.0.1", port };
        // The kernel picks the socket by a hash of the source: use many source ports.
        for (let i = 0; i < 32; i++) {
          const s = DatagramSocket.open(reactor, { bind: { host: "127.0.0.1", port: 0 } });
          senders.push(s);
          for (let j = 0; j < 4; j++) assert(s.send(bytes(`${i}.${j}`), to));
        }
        await waitFor(() => counts[0]! + counts[1]! === 128, 3000, "128 datagrams");
        assert(counts[0]! > 0 && counts[1]! > 0, `datagrams were split ${counts}`);
      } finally {
        for (const s of senders) s.close();
        a.close();
        b.close();
      }
    })
  ));

Deno.test("Unix datagram: bind and sendTo both ways; bound paths are removed on close", () =>
  withFdCheck(() =>
    onReactor(async (reactor) => {
      const dir = tempDir();
      try {
        const serverPath = `${dir}/server.sock`;
        const clientPath = `${dir}/client.sock`;
        const server = DatagramSocket.open(reactor, { bind: { path: serverPath } });
        const client = DatagramSocket.open(reactor, { bind: { path: clientPath } });
        const seen: string[] = [];
        server.onMessage = (data, from) => {
          assertEquals(from, { family: "unix", path: clientPath });
          seen.push(text(data));
          server.send(bytes(`ack ${text(data)}`), from);
        };
        const acks: string[] = [];
        client.onMessage = (data, from) => {
          assertEquals(from, { family: "unix", path: serverPath });
          acks.push(text(data));
        };
        assert(client.send(bytes("one"), { family: "unix", path: serverPath }));
        assert(client.send(bytes("two"), { family: "unix", path: serverPath }));
        await waitFor(() => acks.length === 2, 2000, "2 acks");
        assertEquals(seen, ["one", "two"]); // Unix datagrams keep their order
        assertEquals(acks, ["ack one", "ack two"]);
        server.close();
        client.close();
        assertEquals([...Deno.readDirSync(dir)], []);
      } finally {
        Deno.removeSync(dir, { recursive: true });
      }
    })
  ));

Deno.test("Unix datagram: connect to an existing path (the /dev/log pattern)", () =>
  withFdCheck(() =>
    onReactor(async (reactor) => {
      const dir = tempDir();
      try {
        const path = `${dir}/log`;
        const log = DatagramSocket.open(reactor, { bind: { path } });
        const lines: { line: string; from: SocketAddress }[] = [];
        log.onMessage = (data, from) => lines.push({ line: text(data), from });
        const writer = DatagramSocket.open(reactor, { connect: { path } });
        try {
          assert(writer.send(bytes("<14>app: started")));
          assert(writer.send(bytes("<11>app: failed")));
          await waitFor(() => lines.length === 2, 2000, "2 log lines");
          assertEquals(lines.map((l) => l.line), ["<14>app: started", "<11>app: failed"]);
          // An unbound sender is unnamed.
          assertEquals(lines[0]!.from, { family: "unix", path: "" });
        } finally {
          writer.close();
          log.close();
        }
      } finally {
        Deno.removeSync(dir, { recursive: true });
      }
    })
  ));

Deno.test("a full receiver: sends return false and count drops (EAGAIN), never blocking", () =>
  withFdCheck(() =>
    onReactor(async (reactor) => {
      const dir = tempDir();
      const path = `${dir}/sink.sock`;
      // A receiver that never reads: a bound socket nobody registers.
      const sink = Socket.create("unix", "dgram");
      try {
        sink.bind({ family: "unix", path });
        const sender = DatagramSocket.open(reactor, { connect: { path } });
        try {
          const payload = new Uint8Array(1024);
          let refused = 0;
          let slowest = 0;
          const started = performance.now();
          for (let i = 0; i < 100_000 && sender.stats.dropped < 10; i++) {
            const t = performance.now();
            if (!sender.send(payload)) refused++;
            slowest = Math.max(slowest, performance.now() - t);
          }
          const elapsed = performance.now() - started;
          assertEquals(sender.stats.dropped, 10);
          assertEquals(refused, 10);
          assert(sender.stats.sent > 0, "nothing fit in the receiver's queue");
          // A blocking send would never return; 1 s leaves room for a loaded machine.
          assert(slowest < 1000, `a send took ${slowest} ms`);
          assert(elapsed < 5000, `sending took ${elapsed} ms`);
          // What was accepted is all there, and nothing more.
          const buf = new Uint8Array(2048);
          let queued = 0;
          while (sink.receiveFrom(buf) !== null) queued++;
          assertEquals(queued, sender.stats.sent);
          // Room again: sends succeed.
          assert(sender.send(payload));
          await Promise.resolve();
        } finally {
          sender.close();
        }
      } finally {
        sink.close();
        Deno.removeSync(dir, { recursive: true });
      }
    })
  ));
