/**
 * The reactor with real fds: level/edge/oneshot/exclusive semantics, event
 * buffer growth, and how it shares the thread with Deno's event loop
 * (timers, signals, fetch) while busy and while parked.
 */
import {
  assert,
  assertEquals,
  assertGreaterOrEqual,
  assertRejects,
  assertThrows,
} from "@std/assert";
import { EAGAIN } from "../../ffi/errno.ts";
import { closeFd, eventfd, eventfdRead, eventfdWrite, isOpen, pipe } from "../../ffi/fd.ts";
import { Socket } from "../../ffi/socket.ts";
import * as sys from "../../ffi/syscalls.ts";
import { Interest, Reactor, type Readiness } from "../../reactor/mod.ts";
import { sleep, waitFor, withFdCheck } from "../_helpers.ts";
import { bytes, runFor, text } from "./_util.ts";
import { atLeast, scaled } from "../ffi/_emulation.ts";

Deno.test("level-triggered: reports on every wait while data is unread, then stops", () =>
  withFdCheck(async () => {
    await using reactor = new Reactor();
    const [r, w] = pipe({ nonblock: true });
    let calls = 0;
    let last: Readiness | undefined;
    const reg = reactor.register(r, Interest.READABLE, (ready) => {
      last = ready;
      if (++calls === 5) reactor.stop(); // never reads: LT keeps reporting
    });
    sys.write(w, bytes("x"));
    await runFor(reactor, 2000);
    assertEquals(calls, 5);
    assert(last?.readable);
    assertEquals(last?.toString(), "readable");

    // Drained: no more reports.
    assertEquals(sys.read(r, new Uint8Array(8)), 1);
    calls = 0;
    await runFor(reactor, 40);
    assertEquals(calls, 0);
    reg.deregister();
    closeFd(r);
    closeFd(w);
  }));

Deno.test("edge-triggered: one report per arrival; a reader that drains until EAGAIN gets all", () =>
  withFdCheck(async () => {
    await using reactor = new Reactor();
    const [r, w] = pipe({ nonblock: true });
    let calls = 0;
    const reg = reactor.register(r, Interest.READABLE | Interest.EDGE, () => {
      calls++; // reads nothing: the data stays, ET does not repeat
    });
    const done = reactor.run();
    sys.write(w, bytes("a"));
    await waitFor(() => calls === 1, 2000, "first edge");
    await sleep(40);
    assertEquals(calls, 1, "unread data is not reported again in ET");

    sys.write(w, bytes("b"));
    await waitFor(() => calls === 2, 2000, "second edge");
    await sleep(40);
    assertEquals(calls, 2);

    // Now a callback that drains until EAGAIN: it gets the old bytes too.
    let got = "";
    let sawEagain = false;
    const buf = new Uint8Array(2);
    reg.callback = () => {
      calls++;
      for (;;) {
        const n = sys.read(r, buf);
        if (n > 0) {
          got += text(buf, n);
          continue;
        }
        sawEagain = n === -EAGAIN;
        break;
      }
    };
    sys.write(w, bytes("cde"));
    await waitFor(() => calls === 3, 2000, "third edge");
    assertEquals(got, "abcde");
    assert(sawEagain);
    await sleep(40);
    assertEquals(calls, 3, "a drained fd stays silent");

    sys.write(w, bytes("f"));
    await waitFor(() => calls === 4, 2000, "fourth edge");
    assertEquals(got, "abcdef");

    reactor.stop();
    await done;
    reg.deregister();
    closeFd(r);
    closeFd(w);
  }));

Deno.test("oneshot: reports once until rearm(), even while still readable", () =>
  withFdCheck(async () => {
    await using reactor = new Reactor();
    const efd = eventfd();
    let calls = 0;
    const reg = reactor.register(efd, Interest.READABLE | Interest.ONESHOT, () => {
      calls++; // never reads: LT would repeat, ONESHOT must not
    });
    assert(reg.armed);
    const done = reactor.run();
    eventfdWrite(efd);
    await waitFor(() => calls === 1, 2000, "first report");
    await sleep(40);
    assertEquals(calls, 1);
    assertEquals(reg.armed, false);
    assertEquals(reg.state, "added", "a disarmed oneshot fd stays in the set");

    eventfdWrite(efd); // more data does not re-arm it
    await sleep(30);
    assertEquals(calls, 1);

    reg.rearm(); // while the reactor is parked: the wait ends with the event
    assert(reg.armed);
    await waitFor(() => calls === 2, 2000, "report after rearm");
    await sleep(30);
    assertEquals(calls, 2);
    assertEquals(reg.armed, false);

    reg.modify(Interest.READABLE | Interest.ONESHOT); // modify re-arms too
    await waitFor(() => calls === 3, 2000, "report after modify");

    reactor.stop();
    await done;
    assertEquals(eventfdRead(efd), 2);
    reg.deregister();
    closeFd(efd);
  }));

Deno.test("exclusive: dispatches, but modify() with or of an EXCLUSIVE registration is a TypeError", () =>
  withFdCheck(async () => {
    await using reactor = new Reactor();
    const a = eventfd();
    const b = eventfd();
    let calls = 0;
    const ex = reactor.register(a, Interest.READABLE | Interest.EXCLUSIVE, () => {
      calls++;
      eventfdRead(a);
      reactor.stop();
    });
    const plain = reactor.register(b, Interest.READABLE, () => {});

    const e1 = assertThrows(() => ex.modify(Interest.READABLE), TypeError);
    assert(e1.message.includes("EPOLLEXCLUSIVE"), e1.message);
    assert(e1.message.startsWith(`Cannot modify registration of fd ${a}`), e1.message);
    const e2 = assertThrows(
      () => plain.modify(Interest.READABLE | Interest.EXCLUSIVE),
      TypeError,
    );
    assert(e2.message.includes("only valid when the fd is added"), e2.message);
    assertEquals(plain.interest, Interest.READABLE, "a refused modify changes nothing");

    eventfdWrite(a);
    await runFor(reactor, 2000);
    assertEquals(calls, 1);
    ex.deregister();
    plain.deregister();
    closeFd(a);
    closeFd(b);
  }));

Deno.test("modify to an empty interest takes the fd out of the set; a non-empty one puts it back", () =>
  withFdCheck(async () => {
    await using reactor = new Reactor();
    const efd = eventfd({ initial: 1 });
    let calls = 0;
    const reg = reactor.register(efd, Interest.READABLE, () => {
      if (++calls === 3) reactor.stop();
    });
    reg.modify(0);
    assertEquals(reg.state, "deleted");
    assert(reg.registered);
    await runFor(reactor, 40);
    assertEquals(calls, 0);
    reg.modify(Interest.READABLE);
    assertEquals(reg.state, "added");
    await runFor(reactor, 2000);
    assertEquals(calls, 3);
    reg.deregister();
    closeFd(efd);
  }));

Deno.test("the events buffer grows: 300 ready eventfds with initialCapacity 4 are all dispatched", () =>
  withFdCheck(async () => {
    await using reactor = new Reactor({ initialCapacity: 4 });
    const count = 300;
    const fds: number[] = [];
    const seen = new Set<number>();
    try {
      for (let i = 0; i < count; i++) {
        const efd = eventfd({ initial: 1 });
        fds.push(efd);
        reactor.register(efd, Interest.READABLE, (_ready, reg) => {
          eventfdRead(reg.fd); // drain: each fd reports once
          seen.add(reg.fd);
          if (seen.size === count) reactor.stop();
        });
      }
      assertEquals(reactor.stats.registrations, count);
      await runFor(reactor, 5000);
      assertEquals(seen.size, count);
      assertEquals(reactor.stats.events, count);
      // With a fixed buffer of 4 that would take >= 75 waits; growing
      // (4, 8, 16, ... 256) takes about 7.
      assert(reactor.stats.polls < 20, `too many waits: ${reactor.stats.polls}`);
    } finally {
      for (const efd of fds) {
        reactor.registrationOf(efd)?.deregister();
        closeFd(efd);
      }
    }
    assertEquals(reactor.stats.registrations, 0);
  }));

Deno.test("Deno's event loop keeps running while the reactor is busy (ping-pong on a socketpair)", () =>
  withFdCheck(async () => {
    await using reactor = new Reactor();
    const [a, b] = Socket.pair();
    const buf = new Uint8Array(16);
    let bounces = 0;
    const bounce = (from: Socket) => () => {
      while (from.read(buf) !== null) { /* drain */ }
      bounces++;
      from.write(buf.subarray(0, 1));
    };
    const ra = reactor.register(a.fd, Interest.READABLE, bounce(a));
    const rb = reactor.register(b.fd, Interest.READABLE, bounce(b));
    a.write(bytes("p"));

    let ticks = 0;
    let tickTimer: ReturnType<typeof setTimeout> | undefined;
    const tick = () => {
      ticks++;
      tickTimer = setTimeout(tick, 10);
    };
    tickTimer = setTimeout(tick, 10);
    const t0 = performance.now();
    reactor.setTimeout(() => reactor.stop(), 300);
    await reactor.run();
    const elapsed = performance.now() - t0;
    clearTimeout(tickTimer);

    // Emulated (FFINET_EMULATED), code runs ~10x slower: fewer bounces fit.
    assert(bounces > atLeast(1000), `the reactor was not busy: ${bounces} bounces`);
    // ~30 ticks fit in 300 ms; a starved loop would get 0 or 1.
    assertGreaterOrEqual(ticks, 10, `only ${ticks} timer ticks in ${elapsed.toFixed(0)} ms`);
    assert(reactor.stats.turns > 10, "the reactor gives Deno's loop a turn after its batches");
    ra.deregister();
    rb.deregister();
    a.close();
    b.close();
  }));

/**
 * Steady, sparse traffic: a reactor timer writes a byte every millisecond and
 * the other end of the socketpair reads it. Returns the reactor's counters
 * and how often a chained 5 ms Deno timer ran, over `ms`.
 */
async function sparseTraffic(options: { busyWaitMs: number; sliceMs: number }, ms: number) {
  await using reactor = new Reactor(options);
  const [a, b] = Socket.pair();
  const buf = new Uint8Array(64);
  let reads = 0;
  const rb = reactor.register(b.fd, Interest.READABLE, () => {
    while (b.read(buf) !== null) reads++;
  });
  const writer = reactor.setInterval(() => a.write(bytes("x")), 1);
  let ticks = 0;
  let maxGap = 0;
  let last = performance.now();
  let tickTimer: ReturnType<typeof setTimeout> | undefined;
  const tick = () => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
    ticks++;
    tickTimer = setTimeout(tick, 5);
  };
  tickTimer = setTimeout(tick, 5);
  reactor.setTimeout(() => reactor.stop(), ms);
  await reactor.run();
  clearTimeout(tickTimer);
  writer.cancel();
  rb.deregister();
  a.close();
  b.close();
  return { reads, ticks, maxGap, parks: reactor.stats.parks, polls: reactor.stats.polls };
}

Deno.test("busyWaitMs: with steady traffic the reactor waits on this thread, yet Deno's timers still run every slice", () =>
  withFdCheck(async () => {
    const parked = await sparseTraffic({ busyWaitMs: 0, sliceMs: 10 }, 400);
    const busy = await sparseTraffic({ busyWaitMs: 10, sliceMs: 10 }, 400);
    for (const r of [parked, busy]) {
      assert(r.reads > atLeast(100), `traffic flowed: ${r.reads} reads`);
      // 40 to 80 ticks fit in 400 ms; a starved Deno loop would get none.
      assertGreaterOrEqual(r.ticks, 10, `only ${r.ticks} Deno timer ticks`);
    }
    // Without busy-waiting every gap between bytes is an off-thread park;
    // with it, the reactor parks (yields) about once per 10 ms slice.
    assert(parked.parks > atLeast(100), `busyWaitMs 0 parks at every gap: ${parked.parks}`);
    assert(
      busy.parks * 3 < parked.parks,
      `busyWaitMs 10 parks far less: ${busy.parks} vs ${parked.parks}`,
    );
    // The slice bounds how long Deno waits; generous slack for a loaded CI box.
    assert(busy.maxGap < scaled(150), `a Deno timer waited ${busy.maxGap.toFixed(0)} ms`);
  }));

Deno.test("invalid sliceMs and busyWaitMs are refused with a RangeError naming the option", () => {
  for (const sliceMs of [0, -1, NaN, Infinity]) {
    const e = assertThrows(() => new Reactor({ sliceMs }), RangeError);
    assertEquals(
      e.message.startsWith(`Cannot create reactor: sliceMs ${sliceMs}`),
      true,
      e.message,
    );
  }
  for (const busyWaitMs of [-1, NaN, Infinity]) {
    const e = assertThrows(() => new Reactor({ busyWaitMs }), RangeError);
    assertEquals(
      e.message.startsWith(`Cannot create reactor: busyWaitMs ${busyWaitMs}`),
      true,
      e.message,
    );
  }
});

Deno.test("Deno's event loop keeps running while the reactor is parked", () =>
  withFdCheck(async () => {
    await using reactor = new Reactor();
    const done = reactor.run(); // nothing registered: parks with no timeout
    let ticks = 0;
    for (let i = 0; i < 5; i++) {
      await sleep(10);
      ticks++;
    }
    assertEquals(ticks, 5);
    assert(reactor.running);
    reactor.stop();
    await done;
    assertEquals(reactor.running, false);
  }));

Deno.test("a signal listener added through the reactor fires (SIGUSR1 to self) while it runs", () =>
  withFdCheck(async () => {
    await using reactor = new Reactor();
    let fired = 0;
    reactor.addSignalListener("SIGUSR1", () => {
      fired++;
      reactor.stop();
    });
    const guard = setTimeout(() => reactor.stop(), 5000);
    const done = reactor.run();
    await sleep(10);
    Deno.kill(Deno.pid, "SIGUSR1");
    await done;
    clearTimeout(guard);
    assertEquals(fired, 1);
    // close() (through `await using`) removes the Deno signal listener.
  }));

Deno.test("a fetch to a loopback Deno.serve server completes while the reactor is busy", () =>
  withFdCheck(async () => {
    const ac = new AbortController();
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
      () => new Response("pong"),
    );
    try {
      await using reactor = new Reactor();
      const efd = eventfd({ initial: 1 });
      let spins = 0;
      let busyAtFetchEnd = 0;
      const reg = reactor.register(efd, Interest.READABLE, () => {
        spins++; // LT, never drained: the reactor never idles
      });
      const done = reactor.run();
      try {
        // `connection: close`: Deno's fetch would otherwise pool the socket (an fd).
        const init = { headers: { connection: "close" } };
        const res = await fetch(`http://127.0.0.1:${server.addr.port}/`, init);
        assertEquals(await res.text(), "pong");
        assert(reactor.running);
        // Still busy afterwards: the fetch did not need the reactor to idle.
        const before = spins;
        await sleep(5);
        busyAtFetchEnd = spins - before;
        // And once more while parked.
        reg.modify(0);
        await sleep(5);
        const res2 = await fetch(`http://127.0.0.1:${server.addr.port}/`, init);
        assertEquals(await res2.text(), "pong");
      } finally {
        reactor.stop();
        await done;
      }
      assert(busyAtFetchEnd > 0, "the reactor dispatched while the fetch was in flight");
      reg.deregister();
      closeFd(efd);
    } finally {
      ac.abort();
      await server.finished;
    }
  }));

Deno.test("stop() from a callback, from a timer and from outside ends run() with no pending op", () =>
  withFdCheck(async () => {
    await using reactor = new Reactor();
    // From outside, while parked with no timeout.
    const done = reactor.run();
    await sleep(5);
    reactor.stop();
    await done;

    // From a reactor timer.
    reactor.setTimeout(() => reactor.stop(), 5);
    await reactor.run();

    // From a callback.
    const efd = eventfd({ initial: 1 });
    const reg = reactor.register(efd, Interest.READABLE, () => reactor.stop());
    await reactor.run();
    reg.deregister();
    closeFd(efd);

    // run() can start again after each stop, but not twice at once.
    const again = reactor.run();
    await assertRejects(() => reactor.run(), Error, "already running");
    assertThrows(() => reactor.close(), Error, "it is running");
    reactor.stop();
    await again;
  }));

Deno.test("`await using` disposal stops a running reactor and closes its fds", () =>
  withFdCheck(async () => {
    let epfd = -1;
    let waker = -1;
    let done: Promise<void> | undefined;
    {
      await using reactor = new Reactor();
      epfd = reactor.epfd;
      waker = reactor.wakerFd;
      done = reactor.run();
      await sleep(5);
    }
    await done; // already settled by the disposal
    assertEquals(isOpen(epfd), false);
    assertEquals(isOpen(waker), false);

    const reactor = new Reactor();
    reactor.close();
    reactor.close(); // idempotent
    await assertRejects(() => reactor.run(), Error, "Cannot run reactor: it is closed");
    assertThrows(() => reactor.register(0, Interest.READABLE, () => {}), Error, "closed");
  }));

Deno.test("without onError, a throwing callback is logged once with its registration and the loop goes on", () =>
  withFdCheck(async () => {
    await using reactor = new Reactor();
    const efd = eventfd({ initial: 1 });
    let calls = 0;
    const reg = reactor.register(efd, Interest.READABLE, () => {
      if (++calls === 3) reactor.stop();
      throw new Error(`boom ${calls}`);
    });
    const logged: unknown[][] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => logged.push(args);
    try {
      await runFor(reactor, 2000); // resolves: the errors did not stop the loop
    } finally {
      console.error = original;
    }
    assertEquals(calls, 3);
    assertEquals(logged.length, 3, "each error logged once");
    assert(String(logged[0]![0]).includes(`fd ${efd}`), String(logged[0]![0]));
    assertEquals((logged[0]![1] as Error).message, "boom 1");
    assertEquals(reactor.running, false);
    reg.deregister();
    closeFd(efd);
  }));

Deno.test("Reactor.onError can be set as a property, and removeSignalListener undoes addSignalListener", () =>
  withFdCheck(async () => {
    await using reactor = new Reactor();
    const errors: unknown[] = [];
    reactor.onError = (e) => errors.push(e);
    reactor.setTimeout(() => {
      throw new Error("late");
    }, 1);
    reactor.setTimeout(() => reactor.stop(), 20);
    await runFor(reactor, 2000);
    assertEquals(errors.length, 1);
    let hits = 0;
    const cb = () => hits++;
    let guard = 0;
    const guardListener = () => guard++; // keeps SIGUSR2 from killing the test process
    Deno.addSignalListener("SIGUSR2", guardListener);
    try {
      reactor.addSignalListener("SIGUSR2", cb);
      Deno.kill(Deno.pid, "SIGUSR2");
      await waitFor(() => hits === 1 && guard === 1, 2000, "the reactor's signal listener");
      assertEquals(reactor.removeSignalListener("SIGUSR2", cb), true);
      assertEquals(reactor.removeSignalListener("SIGUSR2", cb), false);
      Deno.kill(Deno.pid, "SIGUSR2");
      await waitFor(() => guard === 2, 2000, "the guard listener");
      await sleep(20);
      assertEquals(hits, 1, "the removed listener ran again");
    } finally {
      Deno.removeSignalListener("SIGUSR2", guardListener);
    }
  }));

Deno.test("run({ signal }): abort stops the loop; an already-aborted signal rejects at once", () =>
  withFdCheck(async () => {
    await using reactor = new Reactor();
    const ac = new AbortController();
    const done = reactor.run({ signal: ac.signal });
    await sleep(5);
    assert(reactor.running);
    ac.abort();
    await done;
    assertEquals(reactor.running, false);
    const aborted = AbortSignal.abort(new Error("already"));
    await assertRejects(() => reactor.run({ signal: aborted }), Error, "already");
    assertEquals(reactor.running, false);
  }));

Deno.test("with onError, a throwing callback is reported with its registration and the loop goes on", () =>
  withFdCheck(async () => {
    const errors: [unknown, unknown][] = [];
    await using reactor = new Reactor({ onError: (e, reg) => errors.push([e, reg]) });
    const efd = eventfd({ initial: 1 });
    let calls = 0;
    const reg = reactor.register(efd, Interest.READABLE, () => {
      if (++calls === 3) reactor.stop();
      throw new Error(`boom ${calls}`);
    });
    await runFor(reactor, 2000);
    assertEquals(calls, 3);
    assertEquals(errors.length, 3);
    assertEquals((errors[0]![0] as Error).message, "boom 1");
    assertEquals(errors[0]![1], reg);
    reg.deregister();
    closeFd(efd);
  }));

Deno.test("wake() from another thread's view: writing the waker fd ends a parked wait", () =>
  withFdCheck(async () => {
    await using reactor = new Reactor();
    const done = reactor.run();
    await sleep(5);
    const before = reactor.stats.wakeups;
    eventfdWrite(reactor.wakerFd); // what another thread would do
    await waitFor(() => reactor.stats.wakeups > before, 2000, "the waker");
    reactor.stop();
    await done;
  }));

Deno.test("a promise chain a callback starts runs to its end before the reactor waits on this thread (busyWaitMs)", () =>
  withFdCheck(async () => {
    // The longest waits: a reactor that waited with the chain pending would
    // make one round per 50 ms (about 10 in the run).
    await using reactor = new Reactor({ busyWaitMs: 50, sliceMs: 50 });
    const [a, b] = Socket.pair();
    const buf = new Uint8Array(16);
    let rounds = 0;
    let done = false;
    const rb = reactor.register(b.fd, Interest.READABLE, () => {
      while (b.read(buf) !== null) { /* drain */ }
      // A handler's promise chain (a body read is a dozen steps): the next
      // event exists only once it has run to its end.
      void (async () => {
        for (let i = 0; i < 40; i++) await null;
        if (done) return;
        rounds++;
        a.write(bytes("p"));
      })();
    });
    a.write(bytes("p"));
    await runFor(reactor, 500);
    done = true;
    rb.deregister();
    a.close();
    b.close();
    const parks = reactor.stats.parks;
    assert(rounds > atLeast(200), `only ${rounds} rounds in 500 ms: the chains waited`);
    // Each round's chain ran before the wait on this thread, so that wait
    // ended with the next event: the reactor seldom had to park.
    assert(parks * 4 < rounds, `${parks} parks for ${rounds} rounds: the waits ended empty`);
  }));
