"""Once a second the master turns counters into rates (sessions, requests and connections
per second, and their maxima) and samples the workers' CPU and memory with psutil, so
that every renderer reads the same figures from shared memory."""
from __future__ import annotations


import psutil

from .. import shm as shared


class RateSampler:
    def __init__(self, tables, state: shared.SharedState):
        self.tables = tables
        self.state = state
        self.last: dict = {}            # (obj, counter) -> value a second ago
        self.last_at = 0.0
        self.processes: dict = {}       # pid -> psutil.Process (cpu_percent needs the same one)

    def due(self, now: float) -> bool:
        return now - self.last_at >= 1.0

    def tick(self, now: float, pids: list) -> None:
        st = self.state
        elapsed = now - self.last_at if self.last_at else 1.0
        self.last_at = now
        totals = {"rate": 0, "req_rate": 0, "conn_rate": 0}
        objects = [(st.frontend_object(fe.index), ("rate", "sess_tot"), ("req_rate", "req_tot"),
                    ("conn_rate", "conn_tot")) for fe in self.tables.frontends]
        objects += [(st.backend_object(be.index), ("rate", "sess_tot"))
                    for be in self.tables.backends]
        objects += [(st.server_object(k), ("rate", "sess_tot")) for k in range(st.nservers)]
        for obj, *pairs in objects:
            for rate_name, counter in pairs:
                value = st.stat_sum(obj, counter)
                before = self.last.get((obj, counter), value)
                self.last[(obj, counter)] = value
                rate = max(0, round((value - before) / max(elapsed, 0.001)))
                self.publish(obj, rate_name, rate)
                if obj < st.nfrontends:
                    totals[rate_name] += rate
        for name, rate in totals.items():
            self.publish(st.nobjects, name, rate)
        self.sample_processes(pids)

    def publish(self, obj: int, name: str, rate: int) -> None:
        st = self.state
        index = shared.RATE_NAMES.index(name)
        st.view[st.rate_word(obj, index)] = rate
        top = st.rate_word(obj, index + 1)
        if rate > st.view[top]:
            st.view[top] = rate

    def sample_processes(self, pids: list) -> None:
        """Idle_pct: 100 minus the workers' mean CPU use since the last sample; memory:
        the resident size of the master and its children."""
        busy, rss = [], 0
        for pid in pids:
            process = self.processes.get(pid)
            try:
                if process is None:
                    process = self.processes[pid] = psutil.Process(pid)
                    process.cpu_percent(None)
                    continue
                busy.append(process.cpu_percent(None))
                rss += process.memory_info().rss
            except psutil.Error:
                self.processes.pop(pid, None)
        for pid in list(self.processes):
            if pid not in pids:
                del self.processes[pid]
        try:
            rss += psutil.Process().memory_info().rss
        except psutil.Error:
            pass
        self.state.view[shared.G_IDLE_PCT] = max(0, 100 - round(sum(busy) / len(busy))) \
            if busy else 100
        self.state.view[shared.G_RSS] = rss
