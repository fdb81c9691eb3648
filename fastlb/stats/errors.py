"""`show errors`: the last request (per frontend) and response (per backend) that could
not be parsed, kept by the worker that saw it in its own shared-memory slot, shown by
the master from whichever worker saw the latest one."""
from __future__ import annotations

import time

from .. import shm as shared
from ..shm import ERR_WORDS, WORD

# slot layout, in words: time (ms), event number, length kept, total length, frontend,
# backend, server, client port; then the client address and reason (words 8-31, text);
# then the message's first bytes
T_MS, EVENT, KEPT, LENGTH, FE, BE, SRV, PORT = range(8)
TEXT_AT, DATA_AT = 8, 32
DATA_BYTES = (ERR_WORDS - DATA_AT) * WORD


class ErrorCapture:
    """Writer side, in a worker (Worker.set_error_capture)."""

    def __init__(self, state: shared.SharedState, worker: int):
        self.state = state
        self.worker = worker
        self.events = 0

    def slot(self, response: bool, fe: int, be: int) -> int:
        index = self.state.nfrontends + be if response else fe
        return self.state.err_base + (self.worker * self.state.err_slots + index) * ERR_WORDS

    def record(self, response, fe, be, srv, data, addr, reason):
        if response and be < 0:
            return
        st = self.state
        base = self.slot(response, fe, be)
        kept = data[:DATA_BYTES]
        text = f"{addr[0]}\0{reason}".encode("utf-8", "replace")[:(DATA_AT - TEXT_AT) * WORD - 1]
        start = (base + TEXT_AT) * WORD
        st.mm[start:start + (DATA_AT - TEXT_AT) * WORD] = text.ljust((DATA_AT - TEXT_AT) * WORD,
                                                                     b"\0")
        start = (base + DATA_AT) * WORD
        st.mm[start:start + len(kept)] = kept
        view = st.view
        view[base + EVENT] = self.events
        view[base + KEPT] = len(kept)
        view[base + LENGTH] = len(data)
        view[base + FE], view[base + BE], view[base + SRV] = fe, be + 1 if response else 0, srv + 1
        view[base + PORT] = addr[1]
        view[base + T_MS] = int(time.time() * 1000)       # last: the slot is complete
        self.events += 1


def _stamp(ms: int) -> str:
    return time.strftime("%d/%b/%Y:%H:%M:%S", time.localtime(ms / 1000)) + f".{ms % 1000:03d}"


def dump(data: bytes) -> list:
    """HAProxy's dump: one line per message line, offset first, unprintables as \\xHH."""
    lines, offset = [], 0
    for part in data.split(b"\n"):
        chunk = part + b"\n" if offset + len(part) < len(data) else part
        if not chunk:
            break
        text = "".join(chr(c) if 32 <= c < 127 and c != 92 else
                       {10: "\\n", 13: "\\r", 9: "\\t", 92: "\\\\"}.get(c, f"\\x{c:02x}")
                       for c in chunk)
        lines.append(f"  {offset:05d}  {text}")
        offset += len(chunk)
    return lines


def show_errors(tables, state: shared.SharedState, proxy_name=None, which=None) -> str:
    latest = {}                       # (response, index) -> slot base with the newest time
    for worker in range(state.nworkers):
        for index in range(state.err_slots):
            base = state.err_base + (worker * state.err_slots + index) * ERR_WORDS
            stamp = state.view[base + T_MS]
            if not stamp:
                continue
            key = index
            if key not in latest or stamp > state.view[latest[key] + T_MS]:
                latest[key] = base
    out = [f"Total events captured on [{_stamp(int(time.time() * 1000))}] : {len(latest)}"]
    for index in sorted(latest):
        base = latest[index]
        view = state.view
        response = index >= state.nfrontends
        if which == "request" and response or which == "response" and not response:
            continue
        fe = tables.frontends[view[base + FE]].proxy
        be = tables.backends[view[base + BE] - 1] if view[base + BE] else None
        proxy = be.proxy if response else fe
        if proxy_name is not None and proxy.name != proxy_name:
            continue
        srv = view[base + SRV] - 1
        text = bytes(state.mm[(base + TEXT_AT) * WORD:(base + DATA_AT) * WORD]).rstrip(b"\0")
        ip, _, reason = text.decode("utf-8", "replace").partition("\0")
        kept = view[base + KEPT]
        data = bytes(state.mm[(base + DATA_AT) * WORD:(base + DATA_AT) * WORD + kept])
        kind = "backend" if response else "frontend"
        other = (f"frontend {fe.name} (#{fe.id})" if response else
                 f"backend {be.proxy.name if be else '<NONE>'} (#{be.proxy.id if be else -1})")
        server = be.server_names[srv] if response and be is not None and srv >= 0 else "<NONE>"
        out += ["", f"[{_stamp(view[base + T_MS])}] {kind} {proxy.name} (#{proxy.id}): "
                    f"invalid {'response' if response else 'request'}",
                f"  {other}, server {server} (#{srv + 1 if srv >= 0 else -1}), "
                f"event #{view[base + EVENT]}, src {ip}:{view[base + PORT]}",
                f"  len {view[base + LENGTH]} ({kept} kept), reason: {reason}", ""]
        out += dump(data)
    return "\n".join(out) + "\n"
