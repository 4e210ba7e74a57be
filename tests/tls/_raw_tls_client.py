"""A TLS client whose records can be cut short or damaged after the
handshake, for tests/tls/bad_bytes_test.ts.

usage: _raw_tls_client.py PORT CAFILE MODE [TIMEOUT_S]

It completes a real handshake (TLS 1.3, through memory BIOs over a plain
socket), encrypts `GET / HTTP/1.1`, and then by MODE:

- truncated: sends the first half of that record, then closes its side;
- tampered: sends the record with one ciphertext byte flipped;
- oversized: sends a record header claiming 65,535 bytes, and 17 KiB;
- intact: sends the record as it is (the control).

It prints what came back before the server closed: `response <status line>`
for a response, `alert <reason>` for a TLS alert, `eof` for a plain close,
`reset` for a reset, `timeout` when nothing came, then exits. Each socket operation times out after TIMEOUT_S (default 20).
"""
import socket
import ssl
import sys

port, cafile, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=cafile)
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
sock = socket.create_connection(("127.0.0.1", port), timeout=float(sys.argv[4]) if len(sys.argv) > 4 else 20)


def flush():
    data = outgoing.read()
    if data:
        sock.sendall(data)


def receive():
    data = sock.recv(65536)
    if not data:
        incoming.write_eof()
    else:
        incoming.write(data)
    return data


while True:
    try:
        tls.do_handshake()
        break
    except ssl.SSLWantReadError:
        flush()
        if not receive():
            print("eof during the handshake", flush=True)
            sys.exit(1)
flush()

tls.write(b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n")
record = outgoing.read()
if mode == "truncated":
    sock.sendall(record[: len(record) // 2])
    sock.shutdown(socket.SHUT_WR)
elif mode == "tampered":
    damaged = bytearray(record)
    damaged[len(damaged) // 2] ^= 0x01
    sock.sendall(bytes(damaged))
elif mode == "oversized":
    try:
        sock.sendall(b"\x17\x03\x03\xff\xff" + b"\x00" * (17 * 1024))
    except OSError:
        pass
elif mode == "intact":
    sock.sendall(record)
else:
    print(f"unknown mode {mode}", flush=True)
    sys.exit(2)

got = b""
try:
    while True:
        try:
            data = tls.read(65536)
            if not data:  # the peer closed without close_notify (a ragged EOF)
                print("eof", flush=True)
                sys.exit(0)
            got += data
            if b"\r\n\r\n" in got:
                print("response " + got.split(b"\r\n")[0].decode(), flush=True)
                sys.exit(0)
        except ssl.SSLWantReadError:
            if not receive():
                print("eof", flush=True)
                sys.exit(0)
except ssl.SSLError as e:
    print(f"alert {e.reason}", flush=True)
except (ConnectionResetError, BrokenPipeError):
    print("reset", flush=True)
except socket.timeout:
    print("timeout", flush=True)
