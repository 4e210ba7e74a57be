/**
 * tls/_record.ts on its own: two layers with mirrored secrets (what one
 * seals the other opens), so that the limits no client reaches in a test's
 * time can be started near: the write key moves on by itself after 2^24
 * records, and a read sequence number that would pass 2^53 closes. Also:
 * input cut anywhere is kept (and the buffer given back once empty), and
 * plaintext before a fault is delivered before the fault is reported.
 */
import { assertEquals, assertThrows } from "@std/assert";
import { RecordAead, type TrafficSecrets } from "../../ffi/openssl_aead.ts";
import { SslContext } from "../../ffi/openssl_context.ts";
import { concatBytes } from "../_helpers.ts";
import {
  ALERT,
  countRecords,
  RecordError,
  RECORDS_CLOSED,
  Tls13Records,
  WRITE_KEY_LIMIT,
} from "../../tls/_record.ts";

// libssl's error strings (for RecordError's text) load with the first context.
SslContext.create("server").close();

const SUITE = "TLS_AES_256_GCM_SHA384";
const secrets: TrafficSecrets = {
  client: new Uint8Array(48).fill(0x11),
  server: new Uint8Array(48).fill(0x22),
};
const mirrored: TrafficSecrets = { client: secrets.server, server: secrets.client };

/** A layer whose sends are collected. */
function layer(s: TrafficSecrets, writeSeq = 0, readSeq = 0): [Tls13Records, Uint8Array[]] {
  const sent: Uint8Array[] = [];
  const l = new Tls13Records(
    { suite: SUITE, secrets: s, writeSeq, readSeq },
    (b) => sent.push(b.slice()),
  );
  return [l, sent];
}

/** Feed `wire` to `l` in `step`-byte views; everything it delivers. */
function readAll(l: Tls13Records, wire: Uint8Array, step: number): Uint8Array {
  const out = new Uint8Array(64 * 1024);
  const got: Uint8Array[] = [];
  for (let at = 0; at < wire.length; at += step) {
    l.setInput(wire.slice(at, Math.min(wire.length, at + step)));
    for (;;) {
      const n = l.read(out, out.length);
      if (n <= 0) break;
      got.push(out.slice(0, n));
    }
    l.keepInput();
  }
  return concatBytes(got);
}

Deno.test("records: whatever the cut of the input, the bytes come through; the kept buffer is given back", () => {
  const data = new Uint8Array(70_000).map((_, i) => (i * 31) & 0xff);
  // The client's records, as the server would receive them.
  const [client, wireParts] = layer(mirrored);
  client.write(data);
  const wire = concatBytes(wireParts);
  assertEquals(countRecords(wire), 5); // 4 full records and a rest
  for (const step of [1, 7, 5, 16_000, 16_406, 70_000, wire.length]) {
    const [s] = layer(secrets);
    assertEquals(readAll(s, wire, step), data, `step ${step}`);
    assertEquals(s.bufferedBytes, 0, `step ${step}: a buffer kept`);
    s.free();
  }
  client.free();
});

Deno.test("records: after 2^24 records the write key moves on by itself (a KeyUpdate goes first); the reader follows", () => {
  const [server, sent] = layer(secrets, WRITE_KEY_LIMIT - 1);
  const [client] = layer(mirrored, 0, WRITE_KEY_LIMIT - 1);
  const data = new Uint8Array(20_000).fill(9);
  server.write(data);
  const wire = concatBytes(sent);
  // Two data records and, between them, one KeyUpdate (5 + 5 + 1 + 16 bytes).
  assertEquals(countRecords(wire), 3);
  assertEquals(wire.length, 2 * (5 + 1 + 16) + 20_000 + 27);
  assertEquals(readAll(client, wire, wire.length), data);
  // Both continue at sequence 1 under the new keys.
  sent.length = 0;
  server.write(Uint8Array.of(1, 2, 3));
  assertEquals(readAll(client, concatBytes(sent), 100), Uint8Array.of(1, 2, 3));
  server.free();
  client.free();
});

Deno.test("records: a read sequence number about to pass 2^53 closes; the plaintext before the fault comes first", () => {
  const start = Number.MAX_SAFE_INTEGER - 2;
  const [server] = layer(secrets, 0, start);
  using w = RecordAead.create(SUITE, secrets.client, "seal");
  const rec = (seq: number, byte: number) => {
    const r = new Uint8Array(5 + 2 + 16);
    r[5] = byte;
    r[6] = 23;
    w.seal(r, 0, 2, seq);
    return r;
  };
  server.setInput(concatBytes([rec(start, 65), rec(start + 1, 66)]));
  const out = new Uint8Array(64 * 1024);
  assertEquals(server.read(out, out.length), 1); // the first record's byte
  assertEquals(out[0], 65);
  const e = assertThrows(() => server.read(out, out.length), RecordError);
  assertEquals(e.alert, ALERT.internalError);
  server.keepInput();
  server.free();
});

Deno.test("records: close_notify ends reading after the data before it; nothing is sealed after our own", () => {
  const [server, sent] = layer(secrets);
  const [client, clientSent] = layer(mirrored);
  client.write(new TextEncoder().encode("bye"));
  client.closeNotify();
  client.write(new TextEncoder().encode("never")); // nothing is sealed after close_notify
  const wire = concatBytes(clientSent);
  assertEquals(countRecords(wire), 2);
  server.setInput(wire);
  const out = new Uint8Array(64 * 1024);
  assertEquals(server.read(out, out.length), 3);
  assertEquals(server.read(out, out.length), RECORDS_CLOSED);
  server.keepInput();
  assertEquals(sent.length, 0);
  server.free();
  client.free();
});

Deno.test("records: a layer idle for a sweep period gives its cipher contexts back, and the next record takes them again", async () => {
  const [server] = layer(secrets);
  const [client, wireParts] = layer(mirrored);
  assertEquals(server.asleep, false);
  await new Promise((r) => setTimeout(r, 2300)); // two sweeps: one marks, one puts to sleep
  assertEquals(server.asleep, true);
  assertEquals(client.asleep, true);
  client.write(Uint8Array.of(7, 8, 9));
  assertEquals(client.asleep, false);
  assertEquals(readAll(server, concatBytes(wireParts), 1000), Uint8Array.of(7, 8, 9));
  assertEquals(server.asleep, false);
  server.free();
  client.free();
});
