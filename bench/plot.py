"""The README's picture of a bench run: each contender's ratio to HAProxy per scenario,
and the latency distribution of the fixed-rate scenario."""
from __future__ import annotations

from pathlib import Path


def plot(report: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = report["scenarios"]
    names = [n for n in next(iter(scenarios.values()))["median"] if n != "haproxy"]
    latency = scenarios.get("http_latency")
    fig, axes = plt.subplots(1, 2 if latency else 1, figsize=(13 if latency else 8, 5),
                             squeeze=False)
    ax = axes[0][0]
    keys = [k for k, v in scenarios.items() if v["metric"] != "scaling"]
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        values = [scenarios[k]["ratio_to_haproxy"].get(name) or 0 for k in keys]
        ax.barh([y + i * width for y in range(len(keys))], values, height=width, label=name)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_yticks([y + width * (len(names) - 1) / 2 for y in range(len(keys))])
    ax.set_yticklabels([k + (" (lower is better)" if scenarios[k]["lower_is_better"] else "")
                        for k in keys], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("ratio to HAProxy 2.6 (same machine, same run)")
    ax.set_title(f"{report['workers']} worker(s), {report['rounds']} rounds x {report['duration_s']:g} s")
    ax.legend()
    if latency:
        ax = axes[0][1]
        for name, runs in latency["samples"].items():
            curves = [r["latency_us"] for r in runs if r.get("latency_us")]
            if not curves:
                continue
            pcts = sorted(float(p) for p in curves[0])
            # the median over rounds of each percentile
            values = [sorted(c[str(p)] if str(p) in c else c[p] for c in curves)[len(curves) // 2]
                      for p in pcts]
            ax.plot([str(p) for p in pcts], [v / 1000 for v in values], marker="o", label=name)
        rate = next((r.get("offered_rps") for runs in latency["samples"].values() for r in runs), 0)
        ax.set_xlabel("percentile")
        ax.set_ylabel("latency (ms)")
        ax.set_title(f"HTTP latency at a fixed {rate:,.0f} req/s")
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
