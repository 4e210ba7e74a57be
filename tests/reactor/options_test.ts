/**
 * Options are checked before any resource is taken: a bad value is a
 * RangeError (or TypeError) naming the option, and no fd or registration is
 * left behind. AbortSignal options: an aborted signal throws before any
 * resource is taken; aborting later closes or stops.
 */
import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import type { InetAddress } from "../../ffi/sockaddr.ts";
import { Socket } from "../../ffi/socket.ts";
import { connect, Connection, DatagramSocket, Listener, Reactor } from "../../reactor/mod.ts";
import { countFds, sleep, waitFor, withFdCheck } from "../_helpers.ts";
import { onReactor } from "./_util.ts";
import { countFdsAroundReactor } from "../ffi/_emulation.ts";
import * as sys from "../../ffi/syscalls.ts";
import { integerOption } from "../../ffi/validate.ts";
import { controlRequest, ControlServer } from "../../daemon/control.ts";
import { HttpParser, serve } from "../../http/mod.ts";

Deno.test("options: connection options (highWaterMark NaN, idleTimeoutMs, receiveFds) are RangeErrors naming them", () =>
  withFdCheck(async () => {
    await using reactor = new Reactor();
    const before = countFds();
    const cases: [string, Record<string, unknown>][] = [
      ["highWaterMark", { highWaterMark: NaN }],
      ["highWaterMark", { highWaterMark: -1 }],
      ["highWaterMark", { highWaterMark: 1.5 }],
      ["idleTimeoutMs", { idleTimeoutMs: Infinity }],
      ["idleTimeoutMs", { idleTimeoutMs: -5 }],
      ["idleTimeoutMs", { idleTimeoutMs: 2 ** 40 }],
      ["receiveFds", { receiveFds: 254 }],
      ["receiveFds", { receiveFds: 0.5 }],
    ];
    for (const [name, connection] of cases) {
      assertThrows(
        () => Listener.listen(reactor, { port: 0, connection }),
        RangeError,
        name,
      );
      await assertRejects(() => connect(reactor, { port: 1 }, connection), RangeError, name);
      const [a, b] = Socket.pair();
      assertThrows(() => new Connection(reactor, a, connection), RangeError, name);
      a.close();
      b.close();
    }
    assertThrows(
      () => Listener.listen(reactor, { port: 0, connection: { allowHalfOpen: 1 as never } }),
      TypeError,
      "allowHalfOpen",
    );
    assertEquals(countFds(), before, "a refused option left an fd open");
    assertEquals(reactor.stats.registrations, 0);
  }));

Deno.test("options: listen options (backlog, emfileRetryMs, port, mode) are checked before a socket exists", () =>
  withFdCheck(async () => {
    await using reactor = new Reactor();
    const before = countFds();
    for (const backlog of [-1, NaN, 1.5, 2 ** 31]) {
      assertThrows(() => Listener.listen(reactor, { port: 0, backlog }), RangeError, "backlog");
    }
    for (const emfileRetryMs of [0, NaN, Infinity, -1]) {
      assertThrows(
        () => Listener.listen(reactor, { port: 0, emfileRetryMs }),
        RangeError,
        "emfileRetryMs",
      );
    }
    for (const port of [-1, 65536, 1.5, NaN]) {
      assertThrows(() => Listener.listen(reactor, { port }), RangeError, "port");
    }
    for (const mode of [-1, 0o1000, 1.5, NaN]) {
      assertThrows(
        () => Listener.listen(reactor, { path: "/nonexistent/x", mode }),
        RangeError,
        "mode",
      );
    }
    assertThrows(
      () => Listener.listen(reactor, { port: 0, reusePort: "yes" as never }),
      TypeError,
      "reusePort",
    );
    assertThrows(
      () => Listener.listen(reactor, { port: 0, path: "/x" } as never),
      TypeError,
      "exactly one",
    );
    assertEquals(countFds(), before, "a refused option left an fd open");
    assertEquals(reactor.stats.registrations, 0);
  }));

Deno.test("options: connect({ timeoutMs: Infinity }) is a RangeError; no fd or registration leaks; the reactor lives", () =>
  withFdCheck(async () => {
    await onReactor(async (reactor) => {
      const before = countFdsAroundReactor();
      for (const timeoutMs of [Infinity, NaN, -1, 2 ** 31]) {
        await assertRejects(
          () => connect(reactor, { host: "127.0.0.1", port: 9 }, { timeoutMs }),
          RangeError,
          "timeoutMs",
        );
      }
      await assertRejects(() => connect(reactor, { port: 70000 }), RangeError, "port");
      await assertRejects(
        () => connect(reactor, { port: 1 }, { noDelay: "no" as never }),
        TypeError,
        "noDelay",
      );
      assertEquals(countFdsAroundReactor(), before);
      assertEquals(reactor.stats.registrations, 0);
      await sleep(20); // the reactor is still running (onReactor fails the test otherwise)
      assert(reactor.running);
    });
  }));

Deno.test("options: setInterval(cb, 1e-20) and bad timer delays are RangeErrors, never a spinning timer", () =>
  withFdCheck(async () => {
    await using reactor = new Reactor();
    for (const ms of [1e-20, 0, 0.5, -1, NaN, Infinity, 2 ** 31]) {
      assertThrows(() => reactor.setInterval(() => {}, ms), RangeError, "intervalMs");
    }
    for (const ms of [-1, NaN, Infinity, 2 ** 31]) {
      assertThrows(() => reactor.setTimeout(() => {}, ms), RangeError, "delayMs");
    }
    assertThrows(() => reactor.setTimeout(undefined as never, 1), TypeError, "callback");
    // The smallest interval works and does not starve the loop.
    let ticks = 0;
    using _t = reactor.setInterval(() => ticks++, 1);
    const t0 = performance.now();
    const running = reactor.run();
    await sleep(50);
    reactor.stop();
    await running;
    // At most one tick per elapsed ms (a loaded machine may sleep far longer than 50 ms).
    const ms = performance.now() - t0;
    assert(ticks >= 1 && ticks <= ms + 10, `${ticks} ticks in ${ms.toFixed(0)} ms`);
  }));

Deno.test("options: Reactor options (sliceMs, busyWaitMs, capacities) are RangeErrors before any fd", () =>
  withFdCheck(() => {
    const before = countFds();
    for (const sliceMs of [NaN, Infinity, -1, 0, 60_001, "10" as unknown as number]) {
      assertThrows(() => new Reactor({ sliceMs }), RangeError, "sliceMs");
    }
    for (const busyWaitMs of [NaN, Infinity, -1]) {
      assertThrows(() => new Reactor({ busyWaitMs }), RangeError, "busyWaitMs");
    }
    assertThrows(() => new Reactor({ initialCapacity: 0 }), RangeError, "initialCapacity");
    assertThrows(() => new Reactor({ maxCapacity: 1.5 }), RangeError, "maxCapacity");
    assertThrows(() => new Reactor({ onError: "log" as never }), TypeError, "onError");
    assertEquals(countFds(), before);
  }));

Deno.test("options: DatagramSocket maxMessageSize and flags are checked before a socket exists", () =>
  withFdCheck(async () => {
    await using reactor = new Reactor();
    const before = countFds();
    for (const maxMessageSize of [0, NaN, -1, 1.5, 2 ** 30]) {
      assertThrows(
        () => DatagramSocket.open(reactor, { maxMessageSize }),
        RangeError,
        "maxMessageSize",
      );
    }
    assertThrows(
      () => DatagramSocket.open(reactor, { broadcast: 1 as never }),
      TypeError,
      "broadcast",
    );
    assertEquals(countFds(), before);
  }));

Deno.test("AbortSignal: an aborted signal refuses listen/connect before any fd; aborting later closes", () =>
  withFdCheck(async () => {
    await onReactor(async (reactor) => {
      const before = countFdsAroundReactor();
      const aborted = AbortSignal.abort(new Error("stop now"));
      assertThrows(
        () => Listener.listen(reactor, { host: "127.0.0.1", port: 0, signal: aborted }),
        Error,
        "stop now",
      );
      await assertRejects(
        () => connect(reactor, { host: "127.0.0.1", port: 9 }, { signal: aborted }),
        Error,
        "stop now",
      );
      assertEquals(countFdsAroundReactor(), before);
      assertEquals(reactor.stats.registrations, 0);

      // Aborting later closes the listener.
      const ac = new AbortController();
      const listener = Listener.listen(reactor, { host: "127.0.0.1", port: 0, signal: ac.signal });
      const port = (listener.address() as InetAddress).port;
      ac.abort();
      assert(listener.closed);
      await assertRejects(
        () => connect(reactor, { host: "127.0.0.1", port }),
        Error,
        "ECONNREFUSED",
      );

      // Aborting a connect in progress (a full backlog never completes it) rejects and frees all.
      const full = Socket.create("inet", "stream");
      full.bind({ family: "inet", address: "127.0.0.1", port: 0 });
      full.listen(0);
      const fullAddr = full.localAddress() as InetAddress;
      const fillers: Connection[] = [];
      const filler = async () => {
        try {
          fillers.push(await connect(reactor, fullAddr, { timeoutMs: 300 }));
        } catch { /* the backlog is full */ }
      };
      await filler();
      await filler();
      const ac2 = new AbortController();
      const pending = connect(reactor, fullAddr, { signal: ac2.signal, timeoutMs: 0 });
      await sleep(20);
      ac2.abort(new Error("user gave up"));
      await assertRejects(() => pending, Error, "user gave up");
      for (const f of fillers) f.abort();
      full.close();
      await waitFor(() => reactor.stats.registrations === 0, 2000, "registrations to go");
      assertEquals(countFdsAroundReactor(), before);
    });
  }));

Deno.test("options: every layer checks integers with one validator and one message format", () =>
  withFdCheck(async () => {
    const format = (action: string, name: string, value: string, min: number, max: number) =>
      `Cannot ${action}: ${name} ${value} is not an integer from ${min} to ${max}`;
    await using reactor = new Reactor();
    const cases: [() => unknown, string][] = [
      // ffi
      [() => sys.listen(0, 1.5), format("listen", "backlog", "1.5", 0, 2147483647)],
      // reactor
      [
        () => Listener.listen(reactor, { port: 0, backlog: -1 }),
        format("listen", "backlog", "-1", 0, 2147483647),
      ],
      [
        () => new Reactor({ maxCapacity: 0 }),
        format("create reactor", "maxCapacity", "0", 1, 65536),
      ],
      // http: serve() and the parser share their limits
      [
        () => serve({ port: 70000, onListen() {} }, () => new Response()),
        format("serve", "port", "70000", 0, 65535),
      ],
      [
        () => serve({ port: 0, maxHeaderCount: 0, onListen() {} }, () => new Response()),
        format("serve", "maxHeaderCount", "0", 1, 65536),
      ],
      [
        () => new HttpParser({ maxHeaderBytes: 8 }),
        format("create HttpParser", "maxHeaderBytes", "8", 16, 16777216),
      ],
      // daemon
      [
        () =>
          ControlServer.listen({
            path: "/nonexistent/ctl.sock",
            handlers: {} as never,
            requestTimeoutMs: 0,
          }),
        format("listen on control socket", "requestTimeoutMs", "0", 1, 3600000),
      ],
    ];
    for (const [fn, message] of cases) {
      const error = assertThrows(fn, RangeError);
      assertEquals(error.message, message);
    }
    await assertRejects(
      () => controlRequest("/nonexistent/ctl.sock", "status", { timeoutMs: 1.5 }),
      RangeError,
      format("query control socket", "timeoutMs", "1.5", 1, 3600000),
    );
    // A string shows quoted, so "5" and 5 cannot be confused.
    assertThrows(
      () => integerOption("listen", "backlog", "5", 0, 0, 9),
      RangeError,
      'Cannot listen: backlog "5" is not an integer from 0 to 9',
    );
    assertEquals(integerOption("listen", "backlog", undefined, 7, 0, 9), 7);
    assertEquals(reactor.stats.registrations, 0);
  }));
