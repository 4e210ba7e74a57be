/**
 * The `struct epoll_event` codec. The kernel declares it
 * `__attribute__((packed))` on x86_64 (12 bytes: `events` at 0, `data` at 4)
 * and naturally aligned elsewhere (16 bytes: `data` at 8). ffinet stores a
 * 32-bit token in the low half of `data` and a 32-bit generation in the high
 * half, so no BigInt is ever made.
 *
 * @module
 */

/** Where the fields of `struct epoll_event` sit on one architecture. */
export interface EpollEventLayout {
  /** `sizeof(struct epoll_event)`. */
  size: number;
  /** Offset of `epoll_data_t data`. */
  dataOffset: number;
}

/**
 * The layout of `struct epoll_event` for an architecture.
 *
 * @example
 * ```ts
 * import { epollEventLayout } from "@ffinet/ffinet/ffi";
 * epollEventLayout("x86_64"); // { size: 12, dataOffset: 4 }
 * epollEventLayout("aarch64"); // { size: 16, dataOffset: 8 }
 * ```
 */
export function epollEventLayout(arch: string): EpollEventLayout {
  return arch === "x86_64" ? { size: 12, dataOffset: 4 } : { size: 16, dataOffset: 8 };
}

/**
 * The layout for the machine this runs on.
 *
 * @example
 * ```ts
 * import { EPOLL_EVENT } from "@ffinet/ffinet/ffi";
 * new Uint8Array(EPOLL_EVENT.size * 64); // room for 64 events
 * ```
 */
export const EPOLL_EVENT: EpollEventLayout = epollEventLayout(Deno.build.arch);

/** One decoded `epoll_event`. */
export interface EpollEvent {
  /** The event bits (`EPOLLIN`, ...). */
  events: number;
  /** Low 32 bits of `data`: ffinet's token. */
  token: number;
  /** High 32 bits of `data`: ffinet's generation. */
  generation: number;
}

/**
 * Write one event at index `index` of an events array.
 *
 * @example
 * ```ts
 * import { EPOLL_EVENT, writeEpollEvent } from "@ffinet/ffinet/ffi";
 * const buf = new Uint8Array(EPOLL_EVENT.size);
 * writeEpollEvent(new DataView(buf.buffer), 0, { events: 1, token: 7, generation: 2 });
 * ```
 */
export function writeEpollEvent(
  view: DataView,
  index: number,
  ev: EpollEvent,
  layout: EpollEventLayout = EPOLL_EVENT,
): void {
  const base = index * layout.size;
  view.setUint32(base, ev.events >>> 0, true);
  if (layout.dataOffset !== 4) view.setUint32(base + 4, 0, true);
  view.setUint32(base + layout.dataOffset, ev.token >>> 0, true);
  view.setUint32(base + layout.dataOffset + 4, ev.generation >>> 0, true);
}

/**
 * Read the event at index `index` of an events array.
 *
 * @example
 * ```ts
 * import { EPOLL_EVENT, readEpollEvent } from "@ffinet/ffinet/ffi";
 * const buf = new Uint8Array(EPOLL_EVENT.size);
 * readEpollEvent(new DataView(buf.buffer), 0); // { events: 0, token: 0, generation: 0 }
 * ```
 */
export function readEpollEvent(
  view: DataView,
  index: number,
  layout: EpollEventLayout = EPOLL_EVENT,
): EpollEvent {
  const base = index * layout.size;
  return {
    events: view.getUint32(base, true),
    token: view.getUint32(base + layout.dataOffset, true),
    generation: view.getUint32(base + layout.dataOffset + 4, true),
  };
}
