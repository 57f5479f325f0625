#!/usr/bin/env python3
"""Writes the hand-made seed corpus of the fuzz targets (docs/fuzzing.md).

Run from anywhere: python3 tests/fuzz/make_seeds.py. Rewrites corpus/<target>/
from the message list below; the files are committed, this script is how they
were made and how to add more.
"""
import os
import struct
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))

# One protocol message (or frame) per entry, valid and near-valid, covering every
# command and header of docs/protocol.md sections 3 and 4.
MESSAGES = {
    "sub": b"SUB chat.room1\n.\n",
    "sub-star": b"SUB chat.*\n.\n",
    "sub-rest": b"SUB chat.>\n.\n",
    "sub-all": b"SUB >\n.\n",
    "sub-lowercase": b"sub a.b\n.\n",
    "unsub": b"UNSUB chat.room1\n.\n",
    "uns-alias": b"UNS chat.*\n.\n",
    "pub": b"PUB chat.room1\n\nhello\n.\n",
    "pub-headers": b"PUB chat.room1\nX-Trace: 1\nx-trace:  2 \n\nhi\n.\n",
    "pub-dotstuffed": b"PUB a.b\n\n..hidden\n..\nline\n.\n",
    "pub-crlf": b"PUB a.b\r\nX: y\r\n\r\nbody\r\n.\r\n",
    "pub-content-length": b"PUB a.b\nContent-Length: 5\n\nx\n.\ny\n.\n",
    "pub-content-length-cr": b"PUB a.b\nContent-Length: 3\n\na\rb\n.\n",
    "pub-content-length-twice": b"PUB a.b\nContent-Length: 2\ncontent-length: 2\n\nab\n.\n",
    "pub-client-id": b"PUB a.b\nClient-Id: forged\n\nx\n.\n",
    "pub-empty-body": b"PUB a.b\n\n\n.\n",
    "pub-no-body": b"PUB a.b\n.\n",
    "pub-wildcard": b"PUB a.*\n\nx\n.\n",
    "req": b"REQ svc.echo\nReqID: r1\n\nping\n.\n",
    "req-timeout": b"REQ svc.echo\nReqID: r2\nTimeout: 50\n\nping\n.\n",
    "req-no-reqid": b"REQ svc.echo\n\nping\n.\n",
    "req-bystander": b"REQ bystander.echo\nReqID: r3\n\nping\n.\n",
    "res": b"RES svc.echo\nReqID: r1\nStatus: 200\n\npong\n.\n",
    "res-unknown": b"RES x\nReqID: nobody\n\n.\n",
    "epub": b"EPUB chat.>\n.\n",
    "esub": b"ESUB chat.*\n.\n",
    "ereq": b"EREQ svc.>\n.\n",
    "opt-batch-on": b"OPT -\nBatch: on\n.\n",
    "opt-batch-bad": b"OPT -\nBatch: maybe\nReqID: o1\n.\n",
    "opt-unknown": b"OPT -\nColour: blue\n.\n",
    "err-from-peer": b"ERR -\nStatus: 400\nCommand: PUB\n\nbad\n.\n",
    "unknown-command": b"FOO a.b\n.\n",
    "bad-target": b"SUB a..b\n.\n",
    "bad-header": b"PUB a.b\nno colon here\n\n.\n",
    "bad-header-name": b"PUB a.b\n bad: x\n\n.\n",
    "unterminated": b"PUB a.b\n\nbody",
    "no-line-end": b"SUB a.b",
    "content-length-bad": b"PUB a.b\nContent-Length: five\n\nx\n.\n",
    "content-length-past-end": b"PUB a.b\nContent-Length: 500\n\nx\n.\n",
    "content-length-wrong-end": b"PUB a.b\nContent-Length: 1\n\nxyz\n.\n",
    "content-length-conflict": b"PUB a.b\nContent-Length: 1\nContent-Length: 2\n\nx\n.\n",
    "many-headers": b"PUB a.b\n" + b"".join(b"H%d: v\n" % i for i in range(10)) + b"\nx\n.\n",
    "long-header": b"PUB a.b\nX: " + b"v" * 300 + b"\n\nx\n.\n",
    "long-target": b"SUB " + b"t" * 70 + b"\n.\n",
    "reqid-control": b"PUB a..b\nReqID: a\x01b\n\n.\n",
    "two-messages": b"SUB a.b\n.\n\nPUB a.b\n\nfirst\n.\nPUB a.b\n\nsecond\n.\n",
    "error-then-message": b"FOO x\n.\nPUB a.b\n\nafter\n.\n",
    "utf8-body": "PUB a.b\n\nh\u00e9llo \u2603\n.\n".encode(),
}

PATTERNS = [
    b"chat.*\nchat.room1\nchat.>\nchat\nchat.room1.x\n>\n*\n*.*.x\na.*.>\na.>.b\na..b\n.a\na.\nx*y\n",
    b"a.b.c\na.*.c\na.>\n*.b.*\n>\na.b.c\na.b\na\n",
]


def write(target, name, data):
    directory = os.path.join(HERE, "corpus", target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def codec_seeds():
    for name, message in MESSAGES.items():
        write("fuzz_codec", name, b"\x00" + message)
    write("fuzz_codec", "binary-body", b"\x01PUB a.b\nContent-Length: 4\n\n\x00\xff\r\n\n.\n")
    write("fuzz_codec", "from-broker-err", b"\x02ERR chat.room1\nStatus: 403\nCommand: SUB\n\nnot allowed\n.\n")
    write("fuzz_codec", "from-broker-opt-answer", b"\x02RES -\nStatus: 200\n\n.\n")
    write("fuzz_codec", "tiny-limits", b"\x04" + MESSAGES["many-headers"])
    write("fuzz_codec", "tiny-limits-size", b"\x04PUB a.b\n\n" + b"x" * 200 + b"\n.\nSUB a\n.\n")
    for i, patterns in enumerate(PATTERNS):
        write("fuzz_codec", "patterns-%d" % i, b"\x00" + patterns)


def record(sender, payload, binary=False):
    """fuzz_session framing: header byte, 16-bit length, payload."""
    return bytes([(1 if sender == "client" else 0) | (2 if binary else 0)]) + struct.pack(">H", len(payload)) + payload


def session_seeds():
    for name, message in MESSAGES.items():
        write("fuzz_session", "service-" + name, record("service", message))
    for name in ["sub", "pub", "req", "res", "epub", "opt-batch-on", "unsub", "req-bystander"]:
        write("fuzz_session", "client-" + name, record("client", MESSAGES[name]))
    write("fuzz_session", "pubsub-across", record("service", b"SUB chat.>\n.\n") + record("client", b"PUB chat.x\n\nhi\n.\n")
          + record("service", b"PUB chat.y\nContent-Length: 2\n\n\r\n\n.\n", True))
    write("fuzz_session", "reqres-across", record("service", b"SUB svc.>\n.\n")
          + record("client", b"REQ svc.echo\nReqID: c1\n\nping\n.\n")
          + record("service", b"RES svc.echo\nReqID: c1\n\n.\n"))
    write("fuzz_session", "batched", record("client", b"OPT -\nBatch: on\n.\n") + record("client", b"SUB a\n.\n")
          + record("service", b"PUB a\n\n1\n.\nPUB a\n\n2\n.\n"))
    write("fuzz_session", "client-grant-refused", record("client", b"ESUB x.>\n.\n"))
    write("fuzz_session", "invalid-utf8-text", record("client", b"PUB a.b\n\n\xc3\x28\n.\n"))
    write("fuzz_session", "binary-frame", record("client", b"PUB a.b\nContent-Length: 3\n\n\x00\x01\x02\n.\n", True))
    write("fuzz_session", "frame-too-large", record("service", b"PUB a.b\n\n" + b"x" * 2100 + b"\n.\n"))
    write("fuzz_session", "message-too-large", record("service", b"PUB a.b\n\n" + b"x" * 1100 + b"\n.\n"))
    write("fuzz_session", "subscription-limit", record("client", b"".join(b"SUB s.%d\n.\n" % i for i in range(20))))
    write("fuzz_session", "request-limit", record("service", b"SUB r.>\n.\n")
          + record("client", b"".join(b"REQ r.x\nReqID: q%d\n\n.\n" % i for i in range(20))))


def frame(opcode, payload, fin=True, masked=True, key=b"\x00\x00\x00\x00"):
    """RFC 6455 frame, client to server, masked with an all-zero key (payload stays readable)
    unless another key is given."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    m = 0x80 if masked else 0
    if n < 126:
        head += bytes([m | n])
    elif n <= 0xFFFF:
        head += bytes([m | 126]) + struct.pack(">H", n)
    else:
        head += bytes([m | 127]) + struct.pack(">Q", n)
    if not masked:
        return head + payload
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def frames_seeds():
    key_client = frame(1, b"fuzz-client-key")
    key_service = frame(1, b"fuzz-service-key")
    write("fuzz_frames", "key-only", key_client)
    write("fuzz_frames", "bad-key", frame(1, b"wrong"))
    write("fuzz_frames", "key-spaces", frame(1, b"  fuzz-service-key \n"))
    for name in ["sub", "pub", "req", "res", "epub", "opt-batch-on", "two-messages", "pub-content-length"]:
        write("fuzz_frames", "client-" + name, key_client + frame(1, MESSAGES[name]))
        write("fuzz_frames", "service-" + name, key_service + frame(2, MESSAGES[name]))
    write("fuzz_frames", "ping", key_client + frame(9, b"hi") + frame(1, MESSAGES["pub"]))
    write("fuzz_frames", "pong", key_client + frame(10, b""))
    write("fuzz_frames", "close", key_client + frame(8, b"\x03\xe8bye"))
    write("fuzz_frames", "close-bad-code", key_client + frame(8, b"\x00\x01"))
    write("fuzz_frames", "fragmented", key_client + frame(1, b"PUB a.b\n\n", False) + frame(0, b"x\n.\n"))
    write("fuzz_frames", "continuation-alone", key_client + frame(0, b"x"))
    write("fuzz_frames", "unmasked", key_client + frame(1, MESSAGES["pub"], masked=False))
    write("fuzz_frames", "reserved-opcode", key_client + frame(3, b"x"))
    write("fuzz_frames", "rsv-bits", key_client + bytes([0xF1, 0x80, 0, 0, 0, 0]))
    write("fuzz_frames", "huge-length", key_client + bytes([0x82, 0xFF]) + struct.pack(">Q", 1 << 62) + b"\0\0\0\0")
    write("fuzz_frames", "length-126", key_client + frame(2, b"PUB a.b\n\n" + b"y" * 200 + b"\n.\n"))
    write("fuzz_frames", "ping-too-long", key_client + frame(9, b"p" * 130))
    write("fuzz_frames", "invalid-utf8", key_client + frame(1, b"PUB a.b\n\n\xff\n.\n"))
    write("fuzz_frames", "key-invalid-utf8", frame(1, b"\xc3\x28"))
    write("fuzz_frames", "key-binary", frame(2, b"fuzz-client-key"))
    write("fuzz_frames", "truncated", key_client + frame(1, MESSAGES["pub"])[:7])
    write("fuzz_frames", "garbage", b"GET / HTTP/1.1\r\n\r\n")


UPGRADE = (b"GET /chat?room=1 HTTP/1.1\r\n"
           b"Host: localhost:8080\r\n"
           b"Connection: Upgrade\r\n"
           b"Upgrade: websocket\r\n"
           b"Origin: http://localhost:8080\r\n"
           b"Sec-WebSocket-Version: 13\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
           b"\r\n")


def websocket_seeds():
    """fuzz_websocket: a mode byte (bits 0-4 chunk size, bit 5 small limits, bit 6 frames
    after the upgrade request), then what a client sends. Frames use a non-zero mask key."""
    key = b"\x37\xfa\x21\x3d"

    def ws(opcode, payload, fin=True, masked=True):
        return frame(opcode, payload, fin, masked, key)

    write("fuzz_websocket", "upgrade", b"\x00" + UPGRADE)
    write("fuzz_websocket", "upgrade-lf", b"\x00" + UPGRADE.replace(b"\r\n", b"\n"))
    write("fuzz_websocket", "upgrade-then-frames", b"\x40" + UPGRADE + ws(1, b"hello") + ws(9, b"p")
          + ws(8, b"\x03\xe8bye"))
    write("fuzz_websocket", "upgrade-firefox", b"\x00" + UPGRADE.replace(b"Connection: Upgrade",
                                                                      b"connection: keep-alive, Upgrade"))
    write("fuzz_websocket", "upgrade-post", b"\x00" + UPGRADE.replace(b"GET", b"POST"))
    write("fuzz_websocket", "upgrade-no-key", b"\x00" + UPGRADE.replace(b"Sec-WebSocket-Key", b"X-Key"))
    write("fuzz_websocket", "upgrade-short-key", b"\x00" + UPGRADE.replace(b"dGhlIHNhbXBsZSBub25jZQ==", b"c2hvcnQ="))
    write("fuzz_websocket", "upgrade-version-8", b"\x00" + UPGRADE.replace(b"Version: 13", b"Version: 8"))
    write("fuzz_websocket", "upgrade-http10", b"\x00" + UPGRADE.replace(b"HTTP/1.1", b"HTTP/1.0"))
    write("fuzz_websocket", "upgrade-too-long", b"\x20" + UPGRADE[:-2] + b"X-Long: " + b"a" * 300 + b"\r\n\r\n")
    write("fuzz_websocket", "text", b"\x00" + ws(1, b"hello"))
    write("fuzz_websocket", "text-utf8", b"\x00" + ws(1, "h\u00e9llo \u20ac \U0001F600".encode()))
    write("fuzz_websocket", "binary", b"\x00" + ws(2, b"\x00\xff\x80bytes"))
    write("fuzz_websocket", "fragmented", b"\x00" + ws(1, b"Hel", False) + ws(9, b"ping") + ws(0, b"lo", False)
          + ws(10, b"") + ws(0, b", world"))
    write("fuzz_websocket", "fragmented-byte-by-byte", b"\x01" + ws(2, b"ab", False) + ws(0, b"cd"))
    write("fuzz_websocket", "euro-split", b"\x03" + ws(1, b"a\xe2\x82", False) + ws(0, b"\xac"))
    write("fuzz_websocket", "chunks-of-7", b"\x07" + ws(1, b"one") + ws(2, b"two") + ws(9, b"") + ws(1, b"three"))
    write("fuzz_websocket", "close", b"\x00" + ws(1, b"last") + ws(8, b"\x03\xe8bye") + ws(1, b"ignored"))
    write("fuzz_websocket", "close-empty", b"\x00" + ws(8, b""))
    write("fuzz_websocket", "close-bad-code", b"\x00" + ws(8, b"\x03\xed"))
    write("fuzz_websocket", "close-bad-reason", b"\x00" + ws(8, b"\x03\xe8\xff"))
    write("fuzz_websocket", "length-16", b"\x00" + ws(2, b"y" * 300))
    write("fuzz_websocket", "length-16-too-big", b"\x20" + ws(2, b"y" * 300))
    write("fuzz_websocket", "fragments-too-big", b"\x20" + ws(1, b"x" * 150, False) + ws(0, b"x" * 60))
    write("fuzz_websocket", "length-64-huge", b"\x00" + bytes([0x82, 0xFF]) + struct.pack(">Q", 1 << 40) + key)
    write("fuzz_websocket", "length-64-msb", b"\x00" + bytes([0x82, 0xFF]) + struct.pack(">Q", 1 << 63) + key)
    write("fuzz_websocket", "unmasked", b"\x00" + ws(1, b"hello", masked=False))
    write("fuzz_websocket", "rsv1", b"\x00" + bytes([0xC1, 0x80]) + key)
    write("fuzz_websocket", "opcode-3", b"\x00" + ws(3, b"x"))
    write("fuzz_websocket", "ping-too-long", b"\x00" + ws(9, b"p" * 126))
    write("fuzz_websocket", "ping-not-final", b"\x00" + ws(9, b"p", False))
    write("fuzz_websocket", "continuation-alone", b"\x00" + ws(0, b"x"))
    write("fuzz_websocket", "text-while-fragmented", b"\x00" + ws(1, b"a", False) + ws(1, b"b"))
    write("fuzz_websocket", "invalid-utf8", b"\x00" + ws(1, b"ok") + ws(1, b"\xc3\x28"))
    # The same bytes also go to closePayload (code, then reason): a long UTF-8 reason.
    write("fuzz_websocket", "close-payload-long-utf8", b"\x00\x03\xe8a" + "\u20ac".encode() * 50)


def main():
    for target in ["fuzz_codec", "fuzz_session", "fuzz_frames", "fuzz_websocket"]:
        shutil.rmtree(os.path.join(HERE, "corpus", target), ignore_errors=True)
    codec_seeds()
    session_seeds()
    frames_seeds()
    websocket_seeds()


if __name__ == "__main__":
    main()
