"""Seeded generator of hostile HTTP/1 request streams: valid requests, then mutated ones
(byte flips, truncations, CL/TE conflicts and obfuscations, obs-fold, bare CR/LF, NUL,
huge lines, pipelined garbage, chunk-size games, Upgrade/CONNECT combinations), each sent
as one or more writes split at random boundaries."""
from __future__ import annotations

import random

INTERESTING = b"\r\n\x00 \t:;,\x7f\xff#0aF-=\"\\"
TE_VALUES = [b"chunked", b"Chunked", b"chunked ", b" chunked", b"\tchunked", b"chunked, chunked",
             b"gzip, chunked", b"chunked, gzip", b"xchunked", b"chunked\x00", b"identity",
             b"chunk", b"chunked;q=1", b"", b"\"chunked\""]
CL_VALUES = [b"5", b"05", b"+5", b"-5", b"5, 5", b"5, 6", b"5 5", b"0x5", b"", b"99999999999999999999",
             b"5\x00", b" 5 "]
CHUNK_LINES = [b"5", b"5 ", b"5\t", b"5;ext", b"5;ext=v", b"5 ;ext", b"5;ext=\"q\"", b"5 xyz",
               b"0x5", b"-5", b"+5", b"ffffffffffffffff", b"0000000000000005", b"5;a\x00b", b"",
               b"5\n", b"5\r"]
METHODS = [b"GET", b"POST", b"PUT", b"DELETE", b"HEAD", b"OPTIONS", b"CONNECT", b"PRI", b"get",
           b"G@T", b"PATCH"]
TARGETS = [b"/", b"/a", b"/a?x=1", b"/a#frag", b"*", b"http://x/a", b"http://y/a", b"x:443",
           b"/\xe2\x82\xac", b"/a b", b"//a", b"/%0d%0a"]
VERSIONS = [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/0.9", b"HTTP/1.2", b"HTTP/1", b"http/1.1",
            b""]


def chunked(body: bytes, rnd: random.Random, size_line=None) -> bytes:
    out, i = [], 0
    while i < len(body):
        n = rnd.randint(1, max(1, len(body) - i))
        piece = body[i:i + n]
        line = b"%x" % len(piece) if size_line is None else size_line
        out.append(line + b"\r\n" + piece + b"\r\n")
        i += n
    trailer = b"X-T: 1\r\n" if rnd.random() < 0.2 else b""
    return b"".join(out) + b"0\r\n" + trailer + b"\r\n"


def valid_request(rnd: random.Random) -> bytes:
    kind = rnd.random()
    path = b"/" + bytes(rnd.choice(b"abcxyz") for _ in range(rnd.randint(0, 8)))
    head = [b"Host: x"]
    if rnd.random() < 0.3:
        head.append(b"User-Agent: fuzz")
    if kind < 0.5:
        return b"GET " + path + b" HTTP/1.1\r\n" + b"\r\n".join(head) + b"\r\n\r\n"
    body = bytes(rnd.choice(b"helo wrd") for _ in range(rnd.randint(0, 40)))
    if kind < 0.75:
        return (b"POST " + path + b" HTTP/1.1\r\n" + b"\r\n".join(head) +
                b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    return (b"POST " + path + b" HTTP/1.1\r\n" + b"\r\n".join(head) +
            b"\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(body, rnd))


def structured(rnd: random.Random) -> bytes:
    """A request built from suspicious parts (the smuggling classics)."""
    method = rnd.choice(METHODS)
    target = rnd.choice(TARGETS)
    version = rnd.choice(VERSIONS)
    line = method + b" " + target + (b" " + version if version else b"")
    fields = [b"Host: " + rnd.choice([b"x", b"y", b"x:80"])]
    if rnd.random() < 0.15:
        fields.append(b"Host: " + rnd.choice([b"x", b"y"]))
    body = b"hello"
    framing = rnd.random()
    if framing < 0.35:
        fields.append(b"Transfer-Encoding: " + rnd.choice(TE_VALUES))
        payload = chunked(body, rnd, rnd.choice(CHUNK_LINES) if rnd.random() < 0.3 else None)
    elif framing < 0.6:
        fields.append(b"Content-Length: " + rnd.choice(CL_VALUES))
        payload = body
    elif framing < 0.75:
        fields.append(b"Content-Length: 5")
        fields.append(b"Transfer-Encoding: " + rnd.choice(TE_VALUES))
        payload = chunked(body, rnd)
    else:
        payload = b""
    if rnd.random() < 0.2:
        fields += [b"Connection: Upgrade", b"Upgrade: " + rnd.choice([b"websocket", b"h2c", b"foo"])]
        if rnd.random() < 0.5:
            fields.append(b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==")
    if rnd.random() < 0.1:
        fields.append(b"X-Fold: a\r\n b")
    if rnd.random() < 0.05:
        fields.append(b"X-Big: " + b"a" * rnd.choice([8000, 15300, 16500]))
    sep = rnd.choice([b"\r\n"] * 8 + [b"\n", b"\r"])
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n" if rnd.random() < 0.3 else b""
    return line + b"\r\n" + sep.join(fields) + b"\r\n\r\n" + payload + smuggled


def mutate(data: bytearray, rnd: random.Random) -> bytearray:
    for _ in range(rnd.randint(1, 3)):
        if not data:
            break
        op = rnd.random()
        pos = rnd.randrange(len(data))
        if op < 0.35:
            data[pos] = rnd.choice(INTERESTING)
        elif op < 0.55:
            data[pos:pos] = bytes([rnd.choice(INTERESTING)])
        elif op < 0.7:
            del data[pos:pos + rnd.randint(1, 4)]
        elif op < 0.8:
            del data[pos:]                      # truncation
        elif op < 0.9:
            data[pos:pos] = b"\r\n"
        else:
            data[pos:pos] = rnd.choice([b"\r\n\r\n", b"0\r\n\r\n", b"\r\nTransfer-Encoding: chunked",
                                        b"\r\nContent-Length: 0"])
    return data


def case(rnd: random.Random) -> tuple[str, list]:
    """(kind, writes): the byte stream of one client connection, as separate writes."""
    roll = rnd.random()
    if roll < 0.15:
        kind, data = "valid", b"".join(valid_request(rnd) for _ in range(rnd.randint(1, 3)))
    elif roll < 0.55:
        kind, data = "structured", structured(rnd)
        if rnd.random() < 0.3:
            data = valid_request(rnd) + data
    else:
        kind = "mutated"
        base = b"".join(valid_request(rnd) for _ in range(rnd.randint(1, 2)))
        if rnd.random() < 0.3:
            base = structured(rnd)
        data = bytes(mutate(bytearray(base), rnd))
    if rnd.random() < 0.1:
        data = b"\r\n" * rnd.randint(1, 3) + data + b"\r\n" * rnd.randint(0, 3)
    writes = [data]
    if rnd.random() < 0.4 and len(data) > 2:
        cuts = sorted(rnd.sample(range(1, len(data)), min(len(data) - 1, rnd.randint(1, 4))))
        writes = [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]
    return kind, writes
