"""Run generated cases through fastlb and haproxy side by side, in front of recording
backends, and judge what each proxy forwarded.

Each of SLOTS listen sections has its own frontend port and its own backend port, per
proxy, and runs one case at a time: every byte a backend port receives belongs to the case
running in that slot.  A case fails when fastlb
  - forwards bytes that read as other requests than the client's (desync), or that do not
    read as HTTP/1.1 at all;
  - forwards a header the client did not send (CR/LF injection);
  - forwards a request haproxy refused, unless the reason is documented (DOCUMENTED);
  - loses a worker, or fails a valid request sent right after the case.
"""
from __future__ import annotations

import asyncio
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field

import psutil

from .generator import case
from .reference import parse_stream

SLOTS = int(os.environ.get("FASTLB_FUZZ_SLOTS", "24"))
IDLE_S = 0.12            # a connection quiet this long has said all it will
ADDED_HEADERS = {b"x-forwarded-for", b"connection"}
# Headers a proxy may drop or normalise (hop-by-hop, or merged duplicates).
HOP = {b"connection", b"keep-alive", b"upgrade", b"proxy-connection", b"te"}


# Where fastlb may forward what haproxy refuses, and why that is no hole (README,
# "Differences from HAProxy").  Each takes the client's bytes.
DOCUMENTED = {
    # HAProxy counts its internal (HTX) size against bufsize - maxrewrite, so it refuses
    # heads a little smaller than 15,360 bytes that fastlb, counting bytes, still takes.
    "head near the size limit": lambda data: any(len(h) > 15000 for h in data.split(b"\r\n\r\n")),
}


def documented(data: bytes):
    return next((name for name, test in DOCUMENTED.items() if test(data)), None)


def free_ports(n: int) -> list:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def config(front: list, back: list) -> str:
    sections = "".join(f"""
listen slot{k}
    bind 127.0.0.1:{front[k]}
    server s 127.0.0.1:{back[k]}
""" for k in range(len(front)))
    return f"""global
    maxconn 2000
defaults
    mode http
    option forwardfor
    timeout connect 1s
    timeout client 2s
    timeout server 2s
    timeout http-request 1s
{sections}"""


class Recording:
    __slots__ = ("data", "read", "closed")

    def __init__(self):
        self.data, self.read, self.closed = bytearray(), 0, False


class Recorder:
    """A backend port: records each connection's bytes and answers each complete request."""

    def __init__(self):
        self.conns: list = []          # [Recording], in accept order; closed ones are dropped
        self.server = None

    async def start(self, port: int):
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", port, backlog=256)

    async def serve(self, reader, writer):
        record = Recording()
        self.conns.append(record)
        try:
            await self._serve(reader, writer, record.data)
        except asyncio.CancelledError:
            writer.close()
        finally:
            record.closed = True

    async def _serve(self, reader, writer, data):
        answered = 0
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                data += chunk
                requests, end, _ = parse_stream(bytes(data))
                for req in requests[answered:]:
                    body = b"ok"
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n" +
                                 (b"" if req.method == b"HEAD" else body))
                answered = len(requests)
                await writer.drain()
                if end == "invalid":
                    break
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def take(self) -> list:
        """The bytes each connection received since the last call (one entry per connection
        that received any); connections that closed are forgotten, so this stays cheap."""
        out, keep = [], []
        for record in self.conns:
            if len(record.data) > record.read:
                out.append(bytes(record.data[record.read:]))
                record.read = len(record.data)
            if not record.closed:
                keep.append(record)
        self.conns = keep
        return out


async def exchange(port: int, writes: list, idle: float = IDLE_S) -> tuple[bytes, bool]:
    """Send the writes on one connection; (what came back, closed by the proxy)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    answer, closed = bytearray(), False
    try:
        for w in writes:
            writer.write(w)
            await writer.drain()
            await asyncio.sleep(0.002)
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), idle)
            except asyncio.TimeoutError:
                break
            if not chunk:
                closed = True
                break
            answer += chunk
    except (ConnectionError, OSError):
        closed = True
    finally:
        writer.close()
    return bytes(answer), closed


def statuses(answer: bytes) -> list:
    return [int(line[9:12]) for line in answer.split(b"\r\n")
            if line.startswith(b"HTTP/1.") and line[9:12].isdigit()]


@dataclass
class Verdict:
    forwarded: int = 0
    problems: list = field(default_factory=list)


def match(wanted: list, streams: list) -> tuple[list, list]:
    """Pair each forwarded request with a client request of the same method, target and
    body; the requests of one backend connection must keep the client's order.  Returns
    ([(sent, seen)], [unmatched seen])."""
    used, pairs, unmatched = set(), [], []
    for requests in streams:
        floor = -1
        for seen in requests:
            for i, sent in enumerate(wanted):
                if i > floor and i not in used and sent.key() == seen.key():
                    used.add(i)
                    floor = i
                    pairs.append((sent, seen))
                    break
            else:
                unmatched.append(seen)
    return pairs, unmatched


def judge(client: bytes, streams: list, lenient_ok: bool) -> Verdict:
    """What one proxy forwarded (one byte string per backend connection) against the
    client's requests, read strictly (and, for haproxy, as HAProxy reads them)."""
    strict, client_end, _ = parse_stream(client)
    lenient, _, _ = parse_stream(client, lenient=True)
    verdict = Verdict()
    parsed = []
    for data in streams:
        requests, end, _ = parse_stream(data)
        parsed.append(requests)
        if end == "invalid":
            verdict.problems.append("forwarded bytes that are not HTTP/1.1")
        elif end == "incomplete" and client_end == "end":
            verdict.problems.append("forwarded a partial request the client completed")
    verdict.forwarded = sum(len(r) for r in parsed)
    pairs, unmatched = match(strict, parsed)
    if unmatched:
        more, still = match(lenient, parsed)
        if still:
            verdict.problems.append(f"desync: forwarded {still[0].method!r} {still[0].target!r}, "
                                    "which the client never sent")
        elif not lenient_ok:
            verdict.problems.append("forwarded a request only a lenient reading gives")
        pairs = more
    for sent, seen in pairs:
        extra = {k for k, _ in seen.headers} - {k for k, _ in sent.headers} - ADDED_HEADERS
        if extra:
            verdict.problems.append(f"injection: headers {sorted(extra)} forwarded")
        if {v.lower() for v in seen.header(b"host")} != {v.lower() for v in sent.header(b"host")}:
            verdict.problems.append("Host changed")
    return verdict


class Proxy:
    def __init__(self, name: str, cmd: list, workdir: str, front: list, back: list):
        self.name, self.front, self.back = name, front, back
        path = os.path.join(workdir, f"{name}.cfg")
        with open(path, "w") as handle:
            handle.write(config(front, back))
        self.stderr = open(os.path.join(workdir, f"{name}.stderr"), "wb")
        self.proc = subprocess.Popen([c.replace("{cfg}", path) for c in cmd],
                                     stdout=subprocess.DEVNULL, stderr=self.stderr)
        self.recorders = [Recorder() for _ in back]

    def workers(self) -> set:
        try:
            return {c.pid for c in psutil.Process(self.proc.pid).children()}
        except psutil.NoSuchProcess:
            return set()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.stderr.close()


async def wait_listening(ports: list, deadline: float):
    for port in ports:
        while True:
            try:
                _, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nothing listens on {port}")
                await asyncio.sleep(0.05)


@dataclass
class Report:
    cases: int = 0
    kinds: Counter = field(default_factory=Counter)
    fastlb_forwarded: int = 0
    haproxy_forwarded: int = 0
    fastlb_refused_haproxy_forwarded: int = 0
    haproxy_refused_fastlb_forwarded: int = 0
    failures: list = field(default_factory=list)
    haproxy_problems: Counter = field(default_factory=Counter)
    documented: Counter = field(default_factory=Counter)
    followup_answers: Counter = field(default_factory=Counter)
    haproxy_examples: list = field(default_factory=list)
    worker_deaths: int = 0
    failed_followups: int = 0

    def summary(self) -> str:
        return (f"{self.cases} cases ({dict(self.kinds)}): fastlb forwarded {self.fastlb_forwarded} "
                f"requests, haproxy {self.haproxy_forwarded}; fastlb refused where haproxy "
                f"forwarded: {self.fastlb_refused_haproxy_forwarded} cases; fastlb forwarded "
                f"where haproxy refused: {self.haproxy_refused_fastlb_forwarded} (documented: "
                f"{dict(self.documented)}); fastlb "
                f"failures: {len(self.failures)}; worker deaths: {self.worker_deaths}; failed "
                f"follow-up requests: {self.failed_followups}; haproxy's own reference "
                f"mismatches: {dict(self.haproxy_problems)}")


FOLLOWUP = b"GET /followup HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


async def run_slot(k: int, seeds: list, fastlb: Proxy, haproxy, report: Report,
                   initial_workers: set):
    for seed in seeds:
        rnd = random.Random(seed)
        kind, writes = case(rnd)
        client = b"".join(writes)
        fastlb.recorders[k].take()             # what a previous case left behind
        if haproxy:
            haproxy.recorders[k].take()
        jobs = [exchange(fastlb.front[k], writes)]
        if haproxy:
            jobs.append(exchange(haproxy.front[k], writes))
        results = await asyncio.gather(*jobs, return_exceptions=True)
        await asyncio.sleep(0.03)          # what the proxies still send the backends
        verdict = judge(client, fastlb.recorders[k].take(), lenient_ok=False)
        report.cases += 1
        report.kinds[kind] += 1
        report.fastlb_forwarded += verdict.forwarded
        refused_by_haproxy = False
        if haproxy:
            streams = haproxy.recorders[k].take()
            hv = judge(client, streams, lenient_ok=True)
            report.haproxy_forwarded += hv.forwarded
            for problem in hv.problems:
                report.haproxy_problems[problem.split(":")[0]] += 1
            if hv.problems and len(report.haproxy_examples) < 20:
                report.haproxy_examples.append((seed, client[:300], hv.problems, streams))
            if hv.forwarded < verdict.forwarded:
                refused_by_haproxy = True
                report.haproxy_refused_fastlb_forwarded += 1
            elif hv.forwarded > verdict.forwarded:
                report.fastlb_refused_haproxy_forwarded += 1
        problems = list(verdict.problems)
        if refused_by_haproxy and not verdict.problems:
            reason = documented(client)
            if reason:
                report.documented[reason] += 1
            else:
                problems.append("forwarded a request haproxy refused")
        if problems:
            report.failures.append((seed, kind, client[:600], problems,
                                    statuses(results[0]) if isinstance(results[0], tuple)
                                    and False else None))
        if seed % 8 == 0:
            # a valid request right after: answered 200 (a slow answer is waited for: the
            # harness itself may be what is slow on a loaded machine)
            answer, _ = await exchange(fastlb.front[k], [FOLLOWUP], idle=3.0)
            if statuses(answer)[:1] != [200]:
                report.failed_followups += 1
                report.followup_answers[bytes(answer[:12])] += 1
    return report


async def run(cases: int, seed: int, with_haproxy: bool = True, fastlb_cmd=None,
              progress=None) -> Report:
    workdir = tempfile.mkdtemp(prefix="fastlb-fuzz-")
    n = SLOTS
    ports = free_ports(4 * n)
    cmd = fastlb_cmd or [sys.executable, "-P", "-m", "fastlb", "-d", "-f", "{cfg}", "-n", "2"]
    fastlb = Proxy("fastlb", cmd, workdir, ports[:n], ports[n:2 * n])
    haproxy = None
    if with_haproxy and shutil.which("haproxy"):
        haproxy = Proxy("haproxy", ["haproxy", "-db", "-f", "{cfg}"], workdir,
                        ports[2 * n:3 * n], ports[3 * n:])
    report = Report()
    try:
        for proxy in [p for p in (fastlb, haproxy) if p]:
            for recorder, port in zip(proxy.recorders, proxy.back):
                await recorder.start(port)
        deadline = time.monotonic() + 15
        await wait_listening(fastlb.front, deadline)
        if haproxy:
            await wait_listening(haproxy.front, deadline)
        await asyncio.sleep(0.3)
        initial = fastlb.workers()
        seeds = [seed * 1_000_003 + i for i in range(cases)]
        batch = 2000
        for start in range(0, cases, batch):
            part = seeds[start:start + batch]
            await asyncio.gather(*(run_slot(k, part[k::n], fastlb, haproxy, report, initial)
                                   for k in range(n)))
            now = fastlb.workers()
            report.worker_deaths = len(initial - now)
            if progress:
                progress(report)
        if fastlb.proc.poll() is not None:
            report.failures.append((None, "master", b"", ["the fastlb master exited"], None))
    finally:
        fastlb.stop()
        if haproxy:
            haproxy.stop()
        for proxy in [p for p in (fastlb, haproxy) if p]:
            for recorder in proxy.recorders:
                if recorder.server is not None:
                    recorder.server.close()
    report.workdir = workdir
    return report
