"""Turns benchmark samples into figures: medians with min and max, a Krait/peer ratio table,
PNG plots (matplotlib, headless) and docs/benchmarks.md with the machine and versions.

Pure formatting apart from reading /proc and asking binaries for their versions: nothing
here talks to a broker.
"""
from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KRAIT = "krait"
PEERS = ("tansu-sqlite", "tansu-memory")
COLORS = {"krait": "#d95f02", "tansu-sqlite": "#1b9e77", "tansu-memory": "#7570b3"}
# Metrics where a smaller figure is better: their ratio reads "Krait needs x of the peer".
LOWER_IS_BETTER = ("ms", "MiB", "CPU")


def aggregate(samples: list[dict]) -> list[dict]:
    """One figure per (workload, metric, broker): median, min, max over runs, in first-seen order."""
    groups: dict[tuple, list[float]] = {}
    for s in samples:
        groups.setdefault((s["workload"], s["metric"], s["broker"]), []).append(s["value"])
    return [{"workload": w, "metric": m, "broker": b, "median": statistics.median(v), "min": min(v),
             "max": max(v), "runs": len(v)} for (w, m, b), v in groups.items()]


def rows(results: dict) -> list[tuple[str, str, dict]]:
    """(workload, metric, {broker: figure}) ordered: throughput, latency, memory, CPU."""
    by_key: dict[tuple, dict] = {}
    for f in results["figures"]:
        by_key.setdefault((f["workload"], f["metric"]), {})[f["broker"]] = f

    def rank(key):
        w, m = key
        if m == "records/s":
            return 0
        if w.startswith("e2e"):
            return 1
        if "MiB" in m:
            return 2
        return 3 if w == "broker" else 4  # whole-session CPU, then CPU per workload
    keys = sorted(by_key, key=rank)  # stable: first-seen order within a kind
    return [(w, m, by_key[(w, m)]) for w, m in keys]


def fmt(value: float, metric: str) -> str:
    if "records/s" in metric:
        return f"{value:,.0f}"
    if "MiB" in metric:
        return f"{value:.1f}"
    return f"{value:.2f}"


def cell(f: dict | None, metric: str) -> str:
    if f is None:
        return "-"
    if f["runs"] == 1:
        return fmt(f["median"], metric)
    return f"{fmt(f['median'], metric)} ({fmt(f['min'], metric)}–{fmt(f['max'], metric)})"


def ratio(figs: dict, peer: str) -> str:
    k, p = figs.get(KRAIT), figs.get(peer)
    if not k or not p or not p["median"]:
        return "-"
    return f"{k['median'] / p['median']:.2f}×"


def brokers_in(results: dict) -> list[str]:
    seen = {f["broker"] for f in results["figures"]}
    return [b for b in (KRAIT, *PEERS) if b in seen]


def markdown_table(results: dict) -> str:
    names = brokers_in(results)
    peers = [p for p in PEERS if p in names and KRAIT in names]
    head = ["workload", "figure", *names, *[f"Krait/{p}" for p in peers]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for w, m, figs in rows(results):
        lines.append("| " + " | ".join([w, m, *[cell(figs.get(b), m) for b in names],
                                        *[ratio(figs, p) for p in peers]]) + " |")
    return "\n".join(lines)


def table(results: dict) -> str:
    """The same table for a terminal: aligned columns, medians and ratios only."""
    names = brokers_in(results)
    peers = [p for p in PEERS if p in names and KRAIT in names]
    out = [f"{'workload':44} {'figure':24}" + "".join(f"{b:>15}" for b in names)
           + "".join(f"{'K/' + p.split('-')[1]:>10}" for p in peers)]
    for w, m, figs in rows(results):
        out.append(f"{w:44} {m:24}" + "".join(f"{fmt(figs[b]['median'], m) if b in figs else '-':>15}" for b in names)
                   + "".join(f"{ratio(figs, p):>10}" for p in peers))
    return "\n".join(out)


def plots(results: dict, out_dir: Path) -> list[Path]:
    """throughput.png (records/s by workload, log scale, min–max whiskers), latency.png (e2e
    percentiles) and resources.png (RSS, CPU per million records). Small PNGs: 80 dpi."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    names = brokers_in(results)
    made = []

    def grouped(ax, labels, metric_rows, horizontal):
        n = len(names)
        height = 0.8 / max(n, 1)
        for i, b in enumerate(names):
            pos = [j + (i - (n - 1) / 2) * height for j in range(len(labels))]
            med = [r.get(b, {}).get("median", 0) for r in metric_rows]
            lo = [max(r[b]["median"] - r[b]["min"], 0) if b in r else 0 for r in metric_rows]
            hi = [max(r[b]["max"] - r[b]["median"], 0) if b in r else 0 for r in metric_rows]
            bar = ax.barh if horizontal else ax.bar
            kw = {"xerr": [lo, hi]} if horizontal else {"yerr": [lo, hi]}
            bar(pos, med, height, label=b, color=COLORS.get(b), capsize=2, **kw)

    thr = [(w, figs) for w, m, figs in rows(results) if m == "records/s"]
    if thr:
        fig, ax = plt.subplots(figsize=(9, 0.42 * len(thr) + 1.5))
        grouped(ax, [w for w, _ in thr], [f for _, f in thr], horizontal=True)
        ax.set_yticks(range(len(thr)), [w for w, _ in thr], fontsize=8)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel("records/s (log scale; whiskers: min–max over runs)")
        ax.set_title("Throughput by workload (one broker, loopback)")
        ax.grid(axis="x", which="both", alpha=0.3)
        fig.legend(*ax.get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=8)
        fig.tight_layout(rect=(0, 0.03, 1, 1))
        made.append(save(fig, out_dir / "throughput.png"))

    lat = [(m, figs) for w, m, figs in rows(results) if w.startswith("e2e") and m.endswith(" ms")]
    if lat:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        grouped(ax, [m for m, _ in lat], [f for _, f in lat], horizontal=False)
        ax.set_xticks(range(len(lat)), [m.replace(" ms", "") for m, _ in lat])
        ax.set_yscale("log")
        ax.set_ylabel("ms (log scale)")
        e2e = next(w for w, m, _ in rows(results) if w.startswith("e2e"))
        ax.set_title(f"End-to-end latency, {e2e[4:]}", fontsize=9)
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        made.append(save(fig, out_dir / "latency.png"))

    res = [(m, figs) for w, m, figs in rows(results) if w == "broker"]
    if res:
        fig, axes = plt.subplots(1, len(res), figsize=(3 * len(res), 3))
        for ax, (m, figs) in zip(axes if len(res) > 1 else [axes], res):
            grouped(ax, [""], [figs], horizontal=False)
            ax.set_title(m, fontsize=9)
            ax.set_xticks([])
        axes_list = axes if len(res) > 1 else [axes]
        axes_list[0].legend(fontsize=7)
        fig.tight_layout()
        made.append(save(fig, out_dir / "resources.png"))
    return made


def save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def first_line(cmd: list[str]) -> str:
    try:
        cp = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return ((cp.stdout or cp.stderr).strip().splitlines() or ["unknown"])[0]
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def machine_and_versions(args, specs) -> dict:
    import confluent_kafka

    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
    disk = first_line(["findmnt", "-n", "-o", "SOURCE,FSTYPE", "--target", str(args.work_dir)])
    dev = disk.split()[0].rsplit("/", 1)[-1] if disk != "unknown" else ""
    rotational = Path(f"/sys/block/{dev}/queue/rotational")
    kind = {"0": "non-rotational", "1": "rotational"}.get(
        rotational.read_text().strip() if rotational.exists() else "", "unknown kind")
    usage = shutil.disk_usage(args.work_dir)
    commit = first_line(["git", "-C", str(REPO), "describe", "--always", "--dirty"])
    # libversion() is a (string, int) tuple; version() is one too in older releases, a string now.
    ck = confluent_kafka.version()
    ck = ck[0] if isinstance(ck, tuple) else ck
    versions = {"krait": f"{first_line([str(args.krait_broker_bin), '--version'])} (git {commit})",
                "librdkafka": f"{confluent_kafka.libversion()[0]} (confluent-kafka {ck})",
                "python": platform.python_version(), "kernel": platform.release(),
                "rustc": first_line(["rustc", "--version"])}
    tansu = next((s for s in specs if s.kind == "tansu"), None)
    if tansu:
        versions["tansu"] = first_line([str(tansu.binary), "--version"])
    return {
        "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        # Other work on the machine skews every figure; the load average says how much.
        "load_average_1_5_15": [round(x, 1) for x in os.getloadavg()],
        "command": args.command,
        "machine": {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kb / 1024 / 1024, 1),
                    "disk": f"{disk}, {kind}, {usage.total / 2**30:.0f} GiB"},
        "versions": versions,
        "params": {"records_100b": args.records, "records_1kb": args.records_1k, "runs": args.runs,
                   "e2e_seconds": args.e2e_seconds, "e2e_load": args.e2e_load,
                   "brokers": [s.name for s in specs], "clients": args.clients},
    }


def figure(results: dict, workload: str, metric: str, broker: str) -> float | None:
    return next((f["median"] for f in results["figures"] if f["workload"] == workload
                 and f["metric"] == metric and f["broker"] == broker), None)


# The peer the targets are judged against (issue 24): Tansu keeping its log in memory, the
# fastest configuration it has.
TARGET_PEER = "tansu-memory"


def targets(results: dict) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) for the goals of issue 24, from the medians of this run.

    A goal relative to the peer is judged on one ratio of two medians of the same run, and the
    verdict names the peer and that ratio ("met: 1.02× tansu-memory"); without the peer's figure
    the verdict is "n/a" and says so, never "met" on Krait's figure alone."""
    peer = TARGET_PEER

    def get(w, m, b=KRAIT):
        return figure(results, w, m, b)

    def mark(ok: bool, detail: str) -> str:
        return f"{'met' if ok else 'NOT met'}: {detail}"

    out = []

    def relative(goal: str, workload: str, metric: str, unit: str, times: float, higher_is_better: bool):
        k, p = get(workload, metric), get(workload, metric, peer)
        if k is None:
            return
        shown = f"{k:,.0f} {unit}" if k >= 100 else f"{k:.2f} {unit}"
        if not p:
            out.append((goal, f"{shown} ({workload})", f"n/a: no {peer} figure in this run"))
            return
        ratio = k / p
        ok = ratio >= times if higher_is_better else ratio <= times
        out.append((goal, f"{shown} ({workload})", mark(ok, f"{ratio:.2f}× {peer}")))

    for client in ("confluent", "krait-perf"):
        relative(f"produce 100 B acks=all, 1 partition, {client}: ≥ 1.0× {peer}",
                 f"produce 100B acks=all p1 {client}", "records/s", "rec/s", 1.0, True)
    for client in ("confluent", "krait-perf"):
        relative(f"produce 1 KB acks=all, 1 partition, {client}: ≥ 1.5× {peer}",
                 f"produce 1KB acks=all p1 {client}", "records/s", "rec/s", 1.5, True)
    for label in ("100B", "1KB"):
        relative(f"broker CPU per million records produced, {label} acks=all p1: ≤ {peer}",
                 f"produce {label} acks=all p1 krait-perf", "broker CPU s/M records", "s", 1.0, False)
    relative(f"consume from the beginning: ≥ 3× {peer} (kept where it is)",
             "consume p1 single krait-perf", "records/s", "rec/s", 3.0, True)
    ew = next((f["workload"] for f in results["figures"] if f["workload"].startswith("e2e")), None)
    if ew and get(ew, "p99 ms") is not None:
        p99 = get(ew, "p99 ms")
        out.append(("end-to-end p99 at half of the maximum rate ≤ 5 ms", f"{p99:.2f} ms ({ew})",
                    mark(p99 <= 5, "absolute")))
    rss = get("broker", "RSS after MiB")
    if rss is not None:
        out.append(("RSS after the runs ≤ 128 MiB", f"{rss:.1f} MiB", mark(rss <= 128, "absolute")))
    cluster = results.get("cluster")
    if cluster:
        ratio = cluster["throughput"]["ratio"]
        out.append(("3 brokers RF=3 / one broker, acks=all 100 B: ≥ 0.9", f"{ratio:.2f}",
                    mark(ratio >= 0.9, "Krait against itself, same run")))
        failover = cluster["failover"]["median_s"]
        out.append(("failover, kill -9 of a leader → acks=all answered: median ≤ 1.5 s",
                    f"{failover:.2f} s", mark(failover <= 1.5, "absolute")))
        if "failover_controller" in cluster:
            failover = cluster["failover_controller"]["median_s"]
            out.append(("the same when that leader is also the controller: median ≤ 1.5 s",
                        f"{failover:.2f} s", mark(failover <= 1.5, "absolute")))
    return out


def _ms(v: float) -> str:
    return f"{v:.2f}"


def cluster_lines(cluster: dict | None) -> list[str]:
    """The cluster section of the doc from bench/cluster_bench.py's figures; says so when the
    run did not measure the cluster."""
    if not cluster:
        return ["## Cluster figures", "",
                "Not measured in this run (`--no-cluster`, or it failed: see Failed workloads).", ""]
    par = cluster.get("params", {})

    def runs(xs, fmt="{:.2f}"):
        return ", ".join(fmt.format(x) for x in xs)

    fo, tp = cluster["failover"], cluster["throughput"]
    one, three = statistics.median(tp["single_rec_s"]), statistics.median(tp["rf3_rec_s"])
    rows = [
        ("failover: kill -9 of a partition leader, an `acks=all` probe every 20 ms → the longest "
         f"wait for an acknowledgement, {len(fo['runs_s'])} run(s)",
         f"median **{fo['median_s']:.2f} s** ({runs(fo['runs_s'])})"),
    ]
    if "elected_s" in fo:
        rows.append(("  of which the broker's part: kill -9 → the successor leads in the brokers' metadata",
                     f"median **{fo['elected_median_s']:.2f} s** ({runs(fo['elected_s'])})"))
    if "failover_controller" in cluster:
        fc = cluster["failover_controller"]
        rows.append(("the same when the leader killed is also the controller (the metadata quorum "
                     "elects a successor first)", f"median **{fc['median_s']:.2f} s** ({runs(fc['runs_s'])})"))
        rows.append(("  of which the broker's part: kill -9 → the successor leads in the brokers' metadata",
                     f"median **{fc['elected_median_s']:.2f} s** ({runs(fc['elected_s'])})"))
    if "failover_sigterm" in cluster:
        fs = cluster["failover_sigterm"]
        rows.append(("the same with SIGTERM: the leader hands its partitions over (controlled shutdown) "
                     "before it exits", f"median **{fs['median_s']:.2f} s** ({runs(fs['runs_s'])})"))
    rows += [
        (f"`krait perf produce`, acks=all, 100-byte records, 3 partitions, {par.get('records', 0):,} "
         "records: one broker alone", f"median {one:,.0f} rec/s ({runs(tp['single_rec_s'], '{:,.0f}')})"),
        ("the same against 3 brokers, replication factor 3, `min.insync.replicas=2`",
         f"median {three:,.0f} rec/s ({runs(tp['rf3_rec_s'], '{:,.0f}')})"),
        ("ratio 3 brokers RF=3 / one broker, same run", f"**{tp['ratio']:.2f}**"),
    ]
    if "rf3_cpu_s_per_m" in tp:
        rows += [
            ("brokers' CPU seconds per million records: one broker alone",
             f"median {statistics.median(tp['single_cpu_s_per_m']):.2f} s "
             f"({runs(tp['single_cpu_s_per_m'])}), machine idle "
             f"{statistics.median(tp['single_idle_share']):.0%}"),
            ("the same summed over the 3 brokers, RF=3",
             f"median {statistics.median(tp['rf3_cpu_s_per_m']):.2f} s "
             f"({runs(tp['rf3_cpu_s_per_m'])}), machine idle "
             f"{statistics.median(tp['rf3_idle_share']):.0%}"),
        ]
    if "fenced_under_load" in tp:
        rows.append(("brokers fenced during the 3-broker runs (a healthy broker fenced under load)",
                     f"{tp['fenced_under_load']}"))
    if "controller_changes_under_load" in tp:
        rows.append(("controller changes seen by the brokers during the 3-broker runs (a metadata quorum "
                     "election under load)", f"{tp['controller_changes_under_load']}"))
    for m in cluster.get("reassignment", []):
        how = (f"throttled to {m['throttle_bytes_s'] / 1e6:g} MB/s" if m.get("throttle_bytes_s")
               else "no throttle")
        rows += [
            (f"reassignment of 6 partitions ({m['moved_mb']:.0f} MB) from brokers {{1,2,3}} to {{2,3,4}}, {how}",
             f"{m['seconds']:.2f} s = **{m['mb_per_s']:.1f} MB/s**"),
            ("  steady acks=all producer on another partition, before → during the move",
             f"p50 {_ms(m['p50_before_ms'])} → {_ms(m['p50_during_ms'])} ms, "
             f"p99 {_ms(m['p99_before_ms'])} → {_ms(m['p99_during_ms'])} ms"),
        ]
    return [
        "## Cluster figures",
        "",
        "Krait alone (Tansu has no replication to compare with), from `bench/cluster_bench.py` in the same "
        "run: real `krait-broker` processes on loopback with default cluster settings (heartbeat 250 ms, "
        "session timeout 1.5 s).",
        "",
        "| figure | result |",
        "|---|---|",
        *[f"| {a} | {b} |" for a, b in rows],
        "",
        "Where the kill -9 failover time goes: when the controller's metadata appends find a broker's "
        "connection closed or refused, or it misses a heartbeat, its cluster port is probed, and a refused "
        "connection fences it (a paused or slow broker does not refuse, so only the session timeout fences "
        "it); the new leader is elected in the same step, about 0.1 s after the kill. When the broker killed "
        "was the controller, the voters whose heartbeats find its port refused campaign at once to succeed "
        "it, and the winner fences it at its first tick. The rest is the client: "
        "librdkafka asks for metadata once when its connection drops and then once a second; the "
        "followers answer it without the dead leader as soon as their fetches find it gone, so it drops "
        "that broker at once and moves at its next look. On SIGTERM the broker asks to be fenced first.",
        "",
    ]


def load_line(load: list[float], cores) -> str:
    """What the load average when the run ended says about the figures."""
    busy = isinstance(cores, int) and load[0] > cores
    verdict = ("above the core count: other work competed for the CPU and every figure is lower "
               "than on an idle machine" if busy else
               "within the core count: nothing but the benchmark ran")
    return f"- Load average when the run ended (1, 5, 15 min): {load}: {verdict}."


def write_doc(results: dict, path: Path, plot_paths: list[Path]) -> None:
    meta, p = results["meta"], results["meta"]["params"]
    mach, ver = meta["machine"], meta["versions"]
    lines = [
        "# Benchmarks: Krait side by side with Tansu",
        "",
        f"Generated by `bench/run` on {meta['date_utc']} in {meta['duration_s'] // 60} min. "
        "Figures are the median of the runs with (min–max); every run starts each broker afresh, "
        "Krait and the peer alternating. One broker, loopback, data on disk where the broker allows it.",
        "",
        "```sh", meta["command"].strip(), "```",
        "",
        "## Machine and versions",
        "",
        f"- CPU: {mach['cpu']}, {mach['cores']} cores; memory {mach['memory_gib']} GiB; "
        f"data disk: {mach['disk']}. Clients and broker share the cores.",
        *([load_line(meta['load_average_1_5_15'], mach['cores'])] if "load_average_1_5_15" in meta else []),
        *[f"- {k}: {v}" for k, v in ver.items()],
        "",
        "## What runs",
        "",
        "- Brokers: **krait** (`--data-dir` on disk, RocksDB, no fsync: its default), **tansu-sqlite** "
        "(`--storage-engine sqlite://…`, the like-for-like durable store), **tansu-memory** "
        "(`memory://`, the ceiling of Tansu's protocol layer; it keeps everything in RAM).",
        f"- Produce: {p['records_100b']:,} records of 100 B or {p['records_1kb']:,} of 1 KB, acks=1 and "
        "acks=all, 1 and 6 partitions, linger.ms=5, batch.size 1 MB, no compression, with confluent-kafka "
        "(Python, explicit round robin over partitions) and `krait perf produce` (Rust, librdkafka's default "
        "partitioner). records/s from the first send to the last delivery report.",
        "- Consume from the beginning, the 100 B acks=all topics written by confluent-kafka: one consumer "
        "assigned the 1-partition topic (confluent-kafka and `krait perf consume`; from assign to the last "
        "record), and a group of 3 confluent-kafka consumers on the 6-partition topic (from the first record "
        "to the last: joining the group is excluded).",
        f"- End-to-end latency: {p['e2e_seconds']:g} s at {p['e2e_load']:.0%} of the broker's own measured "
        "max (confluent-kafka, 100 B, acks=all, 1 partition), acks=all, linger.ms=1 (linger 5 would put "
        "up to 5 ms of client wait into every figure); the producer stamps each record with its send time "
        "and the consumer subtracts it from the time it receives the record; the first second is warm-up. "
        + ("The load is `krait perf e2e`: a Rust producer and consumer (librdkafka) in one process, on "
           "one monotonic clock. " if "krait-perf" in p.get("clients", []) else
           "The load is confluent-kafka, the consumer in another Python process. ")
        + "The 'rate' row is the rate achieved.",
        "- Broker resources from /proc/PID: RSS once idle after start (`RSS idle`), RSS after all "
        "workloads, and broker CPU seconds (user+system) per million records produced or consumed, per "
        "workload and over the whole session.",
        "",
        "## Results",
        "",
        "Ratios are Krait's median over the peer's: above 1 is better for Krait on records/s, "
        "below 1 is better for Krait on ms, MiB and CPU.",
        "",
        markdown_table(results),
        "",
        *[f"![{pp.stem}]({os.path.relpath(pp, path.parent)})" for pp in plot_paths],
        "",
        "## Targets (figures, not asserts)",
        "",
        f"The goals of issue 24. A goal relative to a peer is judged against {TARGET_PEER} on the "
        "ratio of the two medians above, and its verdict names both.",
        "",
        "| target | measured (Krait median) | verdict |",
        "|---|---|---|",
        *[f"| {t} | {m} | {v} |" for t, m, v in targets(results)],
        "",
    ]
    profile = path.parent / "benchmarks-profile.md"
    if profile.exists():
        lines += [f"Targets not met, what limits them, and where the broker's CPU goes: [{profile.name}]({profile.name}).", ""]
    if results["errors"]:
        lines += ["## Failed workloads", "", *[f"- {e}" for e in results["errors"]], ""]
    lines += cluster_lines(results.get("cluster"))
    lines += [
        "## Not measured",
        "",
        "- fsync per acknowledgement (Krait's `--fsync`, off by default): Krait runs with its default; "
        "Tansu's SQLite engine runs with its own defaults.",
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
