import { assert, assertEquals } from "@std/assert";
import {
  EPOLL_EVENT,
  epollEventLayout,
  readEpollEvent,
  writeEpollEvent,
} from "../../ffi/epoll_event.ts";
import { EPOLL } from "../../ffi/constants.ts";
import { closeFd, eventfd, eventfdRead, eventfdWrite } from "../../ffi/fd.ts";
import * as sys from "../../ffi/syscalls.ts";
import { withFdCheck } from "../_helpers.ts";

Deno.test("epoll_event: the x86_64 layout is packed, aarch64 is aligned", () => {
  assertEquals(epollEventLayout("x86_64"), { size: 12, dataOffset: 4 });
  assertEquals(epollEventLayout("aarch64"), { size: 16, dataOffset: 8 });
  assertEquals(EPOLL_EVENT, epollEventLayout(Deno.build.arch));
});

Deno.test("epoll_event: x86_64 events encode byte-exactly", () => {
  const layout = epollEventLayout("x86_64");
  const buf = new Uint8Array(layout.size * 2).fill(0xee);
  const view = new DataView(buf.buffer);
  writeEpollEvent(
    view,
    1,
    { events: EPOLL.IN | EPOLL.ET, token: 0x04030201, generation: 7 },
    layout,
  );
  assertEquals([...buf.subarray(0, 12)], new Array(12).fill(0xee)); // index 0 untouched
  assertEquals([...buf.subarray(12)], [
    0x01,
    0x00,
    0x00,
    0x80, // events = EPOLLIN | EPOLLET
    0x01,
    0x02,
    0x03,
    0x04, // data low: token
    0x07,
    0x00,
    0x00,
    0x00, // data high: generation
  ]);
  assertEquals(readEpollEvent(view, 1, layout), {
    events: (EPOLL.IN | EPOLL.ET) >>> 0,
    token: 0x04030201,
    generation: 7,
  });
});

Deno.test("epoll_event: aarch64 events encode byte-exactly with zeroed padding", () => {
  const layout = epollEventLayout("aarch64");
  const buf = new Uint8Array(layout.size * 2).fill(0xee);
  const view = new DataView(buf.buffer);
  writeEpollEvent(view, 1, { events: EPOLL.OUT, token: 9, generation: 0xfffffffe }, layout);
  assertEquals([...buf.subarray(0, 16)], new Array(16).fill(0xee));
  assertEquals([...buf.subarray(16)], [
    0x04,
    0x00,
    0x00,
    0x00, // events
    0x00,
    0x00,
    0x00,
    0x00, // padding
    0x09,
    0x00,
    0x00,
    0x00, // token
    0xfe,
    0xff,
    0xff,
    0xff, // generation
  ]);
  assertEquals(readEpollEvent(view, 1, layout), {
    events: EPOLL.OUT,
    token: 9,
    generation: 0xfffffffe,
  });
});

Deno.test("epoll_event: many events round trip in both layouts", () => {
  for (const arch of ["x86_64", "aarch64"]) {
    const layout = epollEventLayout(arch);
    const n = 64;
    const view = new DataView(new ArrayBuffer(layout.size * n));
    const events = Array.from({ length: n }, (_, i) => ({
      events: (i * 0x01010101) >>> 0,
      token: (0xffffffff - i) >>> 0,
      generation: (i * 0x9e3779b9) >>> 0,
    }));
    events.forEach((ev, i) => writeEpollEvent(view, i, ev, layout));
    assertEquals(events.map((_, i) => readEpollEvent(view, i, layout)), events);
  }
});

Deno.test("epoll_event: epoll_ctl/epoll_wait on an eventfd returns the token and generation", () =>
  withFdCheck(() => {
    const epfd = sys.epoll_create1(EPOLL.CLOEXEC);
    assert(epfd >= 0);
    const efd = eventfd();
    try {
      const ev = new Uint8Array(EPOLL_EVENT.size);
      const evView = new DataView(ev.buffer);
      writeEpollEvent(evView, 0, { events: EPOLL.IN, token: 0xfffffff0, generation: 0xdeadbeef });
      assertEquals(sys.epoll_ctl(epfd, EPOLL.CTL_ADD, efd, ev), 0);

      const out = new Uint8Array(EPOLL_EVENT.size * 4);
      const outView = new DataView(out.buffer);
      assertEquals(sys.epoll_wait(epfd, out, 4, 0), 0); // nothing yet

      eventfdWrite(efd, 5);
      assertEquals(sys.epoll_wait(epfd, out, 4, 1000), 1);
      assertEquals(readEpollEvent(outView, 0), {
        events: EPOLL.IN,
        token: 0xfffffff0,
        generation: 0xdeadbeef,
      });

      // MOD changes the data the kernel hands back.
      writeEpollEvent(evView, 0, { events: EPOLL.IN | EPOLL.OUT, token: 3, generation: 1 });
      assertEquals(sys.epoll_ctl(epfd, EPOLL.CTL_MOD, efd, ev), 0);
      assertEquals(sys.epoll_wait(epfd, out, 4, 1000), 1);
      assertEquals(readEpollEvent(outView, 0), {
        events: EPOLL.IN | EPOLL.OUT,
        token: 3,
        generation: 1,
      });

      assertEquals(eventfdRead(efd), 5);
      writeEpollEvent(evView, 0, { events: EPOLL.IN, token: 3, generation: 2 });
      assertEquals(sys.epoll_ctl(epfd, EPOLL.CTL_MOD, efd, ev), 0);
      assertEquals(sys.epoll_wait(epfd, out, 4, 0), 0); // drained

      assertEquals(sys.epoll_ctl(epfd, EPOLL.CTL_DEL, efd, null), 0);
      eventfdWrite(efd);
      assertEquals(sys.epoll_wait(epfd, out, 4, 0), 0); // no longer watched
    } finally {
      closeFd(efd);
      closeFd(epfd);
    }
  }));

Deno.test("epoll_event: epollWaitAsync reports readiness from a pool thread", () =>
  withFdCheck(async () => {
    const epfd = sys.epoll_create1(EPOLL.CLOEXEC);
    const efd = eventfd();
    try {
      const ev = new Uint8Array(EPOLL_EVENT.size);
      writeEpollEvent(new DataView(ev.buffer), 0, { events: EPOLL.IN, token: 42, generation: 9 });
      assertEquals(sys.epoll_ctl(epfd, EPOLL.CTL_ADD, efd, ev), 0);
      const out = new Uint8Array(EPOLL_EVENT.size);
      const waiting = sys.epollWaitAsync(epfd, out, 1, 5000);
      eventfdWrite(efd);
      assertEquals(await waiting, 1);
      assertEquals(readEpollEvent(new DataView(out.buffer), 0), {
        events: EPOLL.IN,
        token: 42,
        generation: 9,
      });
    } finally {
      closeFd(efd);
      closeFd(epfd);
    }
  }));
