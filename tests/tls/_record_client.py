"""A TLS 1.3 client whose records after the handshake are its own.

Python's ssl module does the handshake over memory BIOs and writes the
traffic secrets to a key log; from then on this script seals and opens
every record itself (AES-GCM or ChaCha20-Poly1305 from `cryptography`,
HKDF-Expand-Label from hmac), so it can send what a normal client never
would: padded records, records split over many TCP writes, KeyUpdates,
handshake messages a client must not send, damaged records.

usage: _record_client.py PORT CA_PATH MODE WAIT_S KEYLOG_PATH

It prints one line: "echo <n> ok" when the echoed bytes match what it sent
(then "keyupdates <n>" counts the server's KeyUpdates), or
"alert <description> then eof|reset|timeout" when the server sent a fatal
alert, or "eof"/"reset"/"timeout", followed by " received <n>" (bytes of
application data the server sent).
"""

import hashlib
import hmac
import os
import random
import socket
import ssl
import struct
import sys
import time

from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

port, ca_path, mode, wait_s, keylog_path = (
    int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5])

SUITES = {
    "TLS_AES_128_GCM_SHA256": (AESGCM, 16, "sha256"),
    "TLS_AES_256_GCM_SHA384": (AESGCM, 32, "sha384"),
    "TLS_CHACHA20_POLY1305_SHA256": (ChaCha20Poly1305, 32, "sha256"),
}


def expand_label(secret, label, length, hash_name):
    full = b"tls13 " + label
    info = struct.pack(">H", length) + bytes([len(full)]) + full + b"\x00"
    return hmac.new(secret, info + b"\x01", hash_name).digest()[:length]


class Direction:
    def __init__(self, suite, secret):
        self.cls, self.key_len, self.hash = SUITES[suite]
        self.secret = secret
        self.rekey()

    def rekey(self):
        self.aead = self.cls(expand_label(self.secret, b"key", self.key_len, self.hash))
        self.iv = expand_label(self.secret, b"iv", 12, self.hash)
        self.seq = 0

    def update(self):
        size = hashlib.new(self.hash).digest_size
        self.secret = expand_label(self.secret, b"traffic upd", size, self.hash)
        self.rekey()

    def nonce(self):
        n = bytes(a ^ b for a, b in zip(self.iv, self.seq.to_bytes(12, "big")))
        self.seq += 1
        return n

    def seal(self, content_type, content, pad=0):
        inner = content + bytes([content_type]) + b"\x00" * pad
        header = b"\x17\x03\x03" + struct.pack(">H", len(inner) + 16)
        return header + self.aead.encrypt(self.nonce(), inner, header)

    def open(self, header, body):
        inner = self.aead.decrypt(self.nonce(), body, header)
        inner = inner.rstrip(b"\x00")
        return inner[-1], inner[:-1]


ctx = ssl.create_default_context(cafile=ca_path)
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
ctx.keylog_filename = keylog_path
incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
sock = socket.create_connection(("127.0.0.1", port))
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
sock.settimeout(wait_s)
while True:
    try:
        tls.do_handshake()
        break
    except ssl.SSLWantReadError:
        if outgoing.pending:
            sock.sendall(outgoing.read())
        data = sock.recv(65536)
        if not data:
            print("eof during handshake")
            sys.exit(0)
        incoming.write(data)
if outgoing.pending:
    sock.sendall(outgoing.read())
pending = incoming.read()  # records after the server's Finished, if they came along

suite = tls.cipher()[0]
secrets = {}
with open(keylog_path) as f:
    for line in f:
        parts = line.split()
        if len(parts) == 3:
            secrets[parts[0]] = bytes.fromhex(parts[2])
send = Direction(suite, secrets["CLIENT_TRAFFIC_SECRET_0"])
recv = Direction(suite, secrets["SERVER_TRAFFIC_SECRET_0"])

received = bytearray()
server_updates = 0
buf = bytearray(pending)


def read_records(until_bytes=None):
    """Read the server's records until `until_bytes` of data came, or an alert/EOF/timeout.
    Returns the outcome: None (enough data), or a text."""
    global server_updates
    deadline = time.monotonic() + wait_s
    while True:
        while len(buf) >= 5:
            length = struct.unpack(">H", buf[3:5])[0]
            if len(buf) < 5 + length:
                break
            header, body = bytes(buf[:5]), bytes(buf[5:5 + length])
            del buf[:5 + length]
            if header[0] != 23:
                return f"plaintext record {header[0]}"
            content_type, content = recv.open(header, body)
            if content_type == 23:
                received.extend(content)
            elif content_type == 22:
                if content[0] == 24:
                    server_updates += 1
                    recv.update()
            elif content_type == 21:
                if content[1] == 0:
                    return "close_notify"
                rest = wait_end(deadline)
                return f"alert {content[1]} then {rest}"
        if until_bytes is not None and len(received) >= until_bytes:
            return None
        left = deadline - time.monotonic()
        if left <= 0:
            return "timeout"
        data = receive(left)
        if isinstance(data, str):
            return data
        buf.extend(data)


def receive(timeout):
    """The next bytes from the server within `timeout` seconds, or how the wait
    ended: "timeout", "reset" or "eof"."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(65536)
    except socket.timeout:
        return "timeout"
    except ConnectionResetError:
        return "reset"
    return data if data else "eof"


def wait_end(deadline):
    """Read and drop what the server still sends; how its end came."""
    while True:
        data = receive(max(0.01, deadline - time.monotonic()))
        if isinstance(data, str):
            return data


def finish(outcome):
    print(f"{outcome} received {len(received)}")
    sys.exit(0)


rng = random.Random(7)
KEY_UPDATE_REQUESTED = bytes([24, 0, 0, 1, 1])

if mode == "pieces":
    # Records of many sizes (empty ones too) with random padding: many in one
    # write, one split over 1-byte writes, the rest in odd slices.
    sent = bytearray()
    wire = bytearray()
    for size in [0, 1, 2, 5, 100, 1000, 4096, 16383, 16384, 0, 7]:
        content = bytes(rng.getrandbits(8) for _ in range(size))
        pad = rng.choice([0, 1, 17, 255])
        if size + 1 + pad > 16385:
            pad = 16385 - size - 1
        sent.extend(content)
        wire.extend(send.seal(23, content, pad))
    sock.sendall(bytes(wire[:60000]))  # many records, the last one cut
    time.sleep(0.05)
    rest = bytes(wire[60000:])
    for i in range(min(40, len(rest))):  # 1-byte writes
        sock.send(rest[i:i + 1])
        time.sleep(0.002)
    at = min(40, len(rest))
    while at < len(rest):
        step = rng.choice([3, 5, 333, 4000])
        sock.send(rest[at:at + step])
        at += step
    outcome = read_records(len(sent))
    if outcome is None and bytes(received[:len(sent)]) == bytes(sent):
        finish(f"echo {len(sent)} ok")
    finish(outcome or "mismatch")
elif mode == "bytewise":
    # One request, every byte its own TCP write.
    request = b"hello, one byte at a time" * 20
    rec = send.seal(23, request)
    for i in range(len(rec)):
        sock.send(rec[i:i + 1])
        time.sleep(0.001)
    outcome = read_records(len(request))
    finish(f"echo {len(request)} ok" if outcome is None and bytes(received) == request
           else outcome or "mismatch")
elif mode in ("keyupdate", "keyupdate-split"):
    total = 0
    for round_ in range(3):
        message = b"before update %d" % round_
        sock.sendall(send.seal(23, message))
        total += len(message)
        if mode == "keyupdate":
            sock.sendall(send.seal(22, KEY_UPDATE_REQUESTED))
        else:  # the message split over two records
            sock.sendall(send.seal(22, KEY_UPDATE_REQUESTED[:2]) + send.seal(22, KEY_UPDATE_REQUESTED[2:]))
        send.update()
        message = b"after update %d" % round_
        sock.sendall(send.seal(23, message))
        total += len(message)
        outcome = read_records(total)
        if outcome is not None:
            finish(outcome)
    print(f"echo {total} ok keyupdates {server_updates}")
    sys.exit(0)
else:
    records = {
        "tampered": None,
        "new-session-ticket": lambda: send.seal(22, bytes([4, 0, 0, 4, 0, 0, 0, 0])),
        "certificate-request": lambda: send.seal(22, bytes([13, 0, 0, 2, 0, 0])),
        "keyupdate-then-data": lambda: send.seal(22, KEY_UPDATE_REQUESTED + b"x"),
        "keyupdate-bad-value": lambda: send.seal(22, bytes([24, 0, 0, 1, 2])),
        "keyupdate-bad-length": lambda: send.seal(22, bytes([24, 0, 0, 2, 0, 0])),
        "no-content-type": None,
        "plaintext-overflow": lambda: send.seal(23, b"a" * 16385),
        "oversized": lambda: b"\x17\x03\x03" + struct.pack(">H", 16384 + 257) + b"\x00" * 100,
        "unprotected-alert": lambda: b"\x15\x03\x03\x00\x02\x02\x28",
        "alert-from-client": lambda: send.seal(21, bytes([2, 40])),
        "long-alert": lambda: send.seal(21, bytes([1, 0, 0])),
        "close-notify": None,
        "empty-handshake": lambda: send.seal(22, b""),
    }
    if mode not in records:
        print("unknown mode " + mode)
        sys.exit(2)
    rec = records[mode]() if records[mode] is not None else None
    if mode == "tampered":
        rec = bytearray(send.seal(23, b"GET / HTTP/1.1\r\n\r\n"))
        rec[10] ^= 1
        rec = bytes(rec)
    elif mode == "no-content-type":
        inner = b"\x00" * 10
        header = b"\x17\x03\x03" + struct.pack(">H", len(inner) + 16)
        rec = header + send.aead.encrypt(send.nonce(), inner, header)
    elif mode == "close-notify":
        sock.sendall(send.seal(23, b"last words"))
        rec = send.seal(21, bytes([1, 0]))
    sock.sendall(rec)
    outcome = read_records()
    if outcome == "close_notify":
        outcome = "close_notify then " + wait_end(time.monotonic() + wait_s)
    finish(outcome)
