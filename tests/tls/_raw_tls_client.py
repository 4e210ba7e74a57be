"""A TLS client whose records can be cut short or damaged after the
handshake, for tests/tls/bad_bytes_test.ts.

usage: _raw_tls_client.py PORT CAFILE MODE [TIMEOUT_S] [VERSION]

It completes a real handshake (TLS 1.3, or 1.2 when VERSION is "1.2";
through memory BIOs over a plain socket), encrypts `GET / HTTP/1.1`, and
then by MODE:

- truncated: sends the first half of that record, then closes its side;
- tampered: sends the record with one ciphertext byte flipped;
- oversized: sends a record header claiming 65,535 bytes, and 17 KiB;
- intact: sends the record as it is (the control).

It prints what came back before the server closed: `response <status line>`
for a response, `alert <reason>` for a TLS alert, `eof` for a plain close,
`reset` for a reset, `timeout` when nothing came. After an alert it goes
on reading the socket and adds how the connection ended (`then eof`, `then
reset`, `then timeout`). Last comes `records T,T,...`: the content type in
the header of each record that arrived after the request was sent (21 is an
alert; in TLS 1.3 every record after the handshake says 23, the alert
inside it is encrypted). Each socket operation times out after TIMEOUT_S
(default 20).
"""
import socket
import ssl
import sys

port, cafile, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=cafile)
version = sys.argv[5] if len(sys.argv) > 5 else "1.3"
if version == "1.2":
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
else:
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
sock = socket.create_connection(("127.0.0.1", port), timeout=float(sys.argv[4]) if len(sys.argv) > 4 else 20)


def flush():
    data = outgoing.read()
    if data:
        sock.sendall(data)


# Raw bytes received after the request was sent, to read the record headers.
after_request = None


def record_types():
    """The content type of each whole record header in after_request."""
    types, at = [], 0
    data = after_request or b""
    while at + 5 <= len(data):
        types.append(str(data[at]))
        at += 5 + int.from_bytes(data[at + 3 : at + 5], "big")
    return "records " + (",".join(types) or "none")


def receive():
    data = sock.recv(65536)
    if not data:
        incoming.write_eof()
    else:
        incoming.write(data)
        if after_request is not None:
            after_request.extend(data)
    return data


def finish(line):
    print(f"{line} {record_types()}", flush=True)
    sys.exit(0)


def ending():
    """How the connection ends once the TLS layer has given up: eof, reset or timeout."""
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return "eof"
            after_request.extend(data)
    except (ConnectionResetError, BrokenPipeError):
        return "reset"
    except socket.timeout:
        return "timeout"


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
after_request = bytearray()
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
                finish("eof")
            got += data
            if b"\r\n\r\n" in got:
                finish("response " + got.split(b"\r\n")[0].decode())
        except ssl.SSLWantReadError:
            if not receive():
                finish("eof")
except ssl.SSLError as e:
    finish(f"alert {e.reason} then {ending()}")
except (ConnectionResetError, BrokenPipeError):
    finish("reset")
except socket.timeout:
    finish("timeout")
