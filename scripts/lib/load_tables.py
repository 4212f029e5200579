"""Tables of scripts/load-baseline's results, in Markdown, from its output directory.

    python3 scripts/lib/load_tables.py OUT_DIR "1 100 250" "2000 4000 ..."
"""

import json
import os
import re
import sys

SEED = {100: "135 ms", 250: "680 ms"}


def load(path):
    with open(path) as f:
        return json.load(f)


def wrk(path):
    """Requests/sec, p50/p99 (ms) and error counts from wrk --latency's output."""
    text = open(path).read()
    unit = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}

    def ms(v):
        m = re.match(r"([\d.]+)(us|ms|s|m)$", v)
        return float(m.group(1)) * unit[m.group(2)] if m else float("nan")

    out = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))}
    m = re.search(r"(\d+) requests in", text)
    out["requests"] = int(m.group(1)) if m else 0
    for q in ("50", "99"):
        m = re.search(r"^\s+%s%%\s+(\S+)" % q, text, re.M)
        out["p" + q] = ms(m.group(1)) if m else float("nan")
    errs = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        errs += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        errs += int(m.group(1))
    out["errors"] = errs
    return out


def cpu_per_request(out, e, c, r, requests):
    """The server's CPU time per request during wrk run r (microseconds), if recorded."""
    path = os.path.join(out, "cpu-%s-%d-%d.txt" % (e, c, r))
    if not os.path.exists(path) or not requests:
        return None
    ticks = int(open(path).read().strip() or 0)
    hz = int(open(os.path.join(out, "clk_tck")).read().strip() or 100)
    return ticks / hz * 1e6 / requests


def f(ms):
    if ms >= 100:
        return "%.0f ms" % ms
    if ms >= 10:
        return "%.1f ms" % ms
    return "%.3f ms" % ms


def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def spread(report, key):
    vals = [r["overall"]["latency"][key] if key != "rps" else r["overall"]["throughput_rps"] for r in report["runs"]]
    return min(vals), max(vals)


def main():
    out, conns, rates = sys.argv[1], [int(c) for c in sys.argv[2].split()], [int(r) for r in sys.argv[3].split()]
    names = {"hello": "bare axum `/hello`", "health": "bot `/health`", "tasks": "bot `/api/v1/tasks`"}
    print("\n### Closed loop (N users = N keep-alive connections), each run paired with wrk on the same URL right after\n")
    print("| endpoint | conns | req/s median (range) | wrk req/s median (range) | ours ÷ wrk, per pair | p50 | p95 | p99 corrected | p99 raw | wrk p99 | errors | server CPU per request during wrk, median (range) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    closed = {}
    for c in conns:
        for e in ("hello", "health", "tasks"):
            runs, wrks, cpus = [], [], []
            r = 1
            while os.path.exists(os.path.join(out, "closed-%s-%d-%d.json" % (e, c, r))):
                runs.append(load(os.path.join(out, "closed-%s-%d-%d.json" % (e, c, r)))["runs"][0])
                wrks.append(wrk(os.path.join(out, "wrk-%s-%d-%d.txt" % (e, c, r))))
                cpu = cpu_per_request(out, e, c, r, wrks[-1]["requests"])
                if cpu is not None:
                    cpus.append(cpu)
                r += 1
            if not runs:
                continue
            ours = [x["overall"]["throughput_rps"] for x in runs]
            theirs = [w["rps"] for w in wrks]
            ratios = [a / b for a, b in zip(ours, theirs)]
            m = {
                "throughput_rps": median(ours),
                "p50_ms": median([x["overall"]["latency"]["p50"] for x in runs]),
                "p95_ms": median([x["overall"]["latency"]["p95"] for x in runs]),
                "p99_ms": median([x["overall"]["latency"]["p99"] for x in runs]),
                "error_rate": median([x["overall"]["error_rate"] for x in runs]),
            }
            raw = median([x["overall"]["uncorrected"]["p99"] for x in runs])
            ratio = median(ratios)
            m["cpu_us"] = median(cpus) if cpus else None
            closed[(e, c)] = (m, None)
            cpu_text = "%.2f µs (%.2f–%.2f)" % (m["cpu_us"], min(cpus), max(cpus)) if cpus else "–"
            print("| %s | %d | %.0f (%.0f–%.0f) | %.0f (%.0f–%.0f) | %.2f (%s)%s | %s | %s | %s | %s | %s | %.2f%% | %s |" % (
                names[e], c, m["throughput_rps"], min(ours), max(ours), median(theirs), min(theirs), max(theirs),
                ratio, ", ".join("%.2f" % x for x in ratios), "" if abs(ratio - 1) <= 0.10 else " **not met**",
                f(m["p50_ms"]), f(m["p95_ms"]), f(m["p99_ms"]), f(raw), f(median([w["p99"] for w in wrks])),
                m["error_rate"] * 100, cpu_text))

    print("\n### `/health` beside bare axum (target: within 1.3×)\n")
    print("| figure | conns | bare axum | bot `/health` | ratio | target |")
    print("|---|---:|---:|---:|---:|---|")
    for c in conns:
        if ("hello", c) in closed and ("health", c) in closed:
            a, b = closed[("hello", c)][0]["throughput_rps"], closed[("health", c)][0]["throughput_rps"]
            ratio = a / b if b else float("inf")
            print("| closed-loop throughput | %d | %.0f req/s | %.0f req/s | %.2f× | %s |" % (
                c, a, b, ratio, "met" if ratio <= 1.3 else "**not met**"))
            a, b = closed[("hello", c)][0]["cpu_us"], closed[("health", c)][0]["cpu_us"]
            if a and b:
                print("| server CPU per request (during wrk) | %d | %.2f µs | %.2f µs | %.2f× | reported (not a target) |" % (
                    c, a, b, b / a))
    opened = {}
    for e in ("hello", "health", "tasks"):
        p = os.path.join(out, "open-%s-2000.json" % e)
        if os.path.exists(p):
            opened[e] = load(p)
    if "hello" in opened and "health" in opened:
        a, b = opened["hello"]["median"]["overall"]["p99_ms"], opened["health"]["median"]["overall"]["p99_ms"]
        ratio = b / a if a else float("inf")
        print("| p99 at 2000 req/s (open loop) | 100 | %s | %s | %.2f× | %s |" % (
            f(a), f(b), ratio, "met" if ratio <= 1.3 else "**not met**"))

    print("\n### Open loop at 2000 req/s, 100 connections (target: p99 ≤ 2 ms for `/health` and `/api/v1/tasks`)\n")
    print("| endpoint | achieved req/s | p50 | p95 | p99 (range) | p99.9 | max | errors | target | warnings |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for e, r in opened.items():
        m = r["median"]["overall"]
        lo, hi = spread(r, "p99")
        ach = sorted(x["generator"]["achieved_rate"] for x in r["runs"])[len(r["runs"]) // 2]
        target = "—" if e == "hello" else ("met" if m["p99_ms"] <= 2 else "**not met**")
        warns = sum(len(x["warnings"]) for x in r["runs"])
        print("| %s | %.0f | %s | %s | %s (%s–%s) | %s | %s | %.2f%% | %s | %d |" % (
            names[e], ach, f(m["p50_ms"]), f(m["p95_ms"]), f(m["p99_ms"]), f(lo), f(hi), f(m["p999_ms"]),
            f(m["max_ms"]), m["error_rate"] * 100, target, warns))

    print("\n### Capacity: open-loop rate sweep at 100 connections, one run per rate (p99 crossing 10 ms)\n")
    print("| endpoint | rate | achieved req/s | p50 | p99 | errors | generator |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for e in ("health", "tasks", "hello"):
        crossed = None
        tried = None
        for rate in rates:
            p = os.path.join(out, "sweep-%s-%d.json" % (e, rate))
            if not os.path.exists(p):
                continue
            r = load(p)
            tried = rate
            run = r["runs"][0]
            m = r["median"]["overall"]
            kept = run["generator"]["achieved_rate"] >= 0.95 * rate
            note = "kept the rate" if kept else "**fell behind** (%s)" % "; ".join(w.split(":")[0] for w in run["warnings"])
            print("| %s | %d | %.0f | %s | %s | %.2f%% | %s |" % (
                names[e], rate, run["generator"]["achieved_rate"], f(m["p50_ms"]), f(m["p99_ms"]),
                m["error_rate"] * 100, note))
            if m["p99_ms"] > 10 and crossed is None:
                crossed = rate
        if tried is None:
            continue
        print("| %s | **capacity** | %s | | | | |" % (
            names[e], ("p99 > 10 ms first at %d req/s" % crossed) if crossed else "p99 ≤ 10 ms up to %d req/s, the highest rate tried" % tried))

    print("\n### At 100 and 250 users beside the seed's Python bot\n")
    print("| users | endpoint | p50 | p95 | p99 | errors | Python bot p99 (errors 2.2%) |")
    print("|---:|---|---:|---:|---:|---:|---|")
    for c in (100, 250):
        for e in ("health", "tasks"):
            if (e, c) in closed:
                m = closed[(e, c)][0]
                print("| %d | %s | %s | %s | %s | %.2f%% | %s |" % (
                    c, names[e], f(m["p50_ms"]), f(m["p95_ms"]), f(m["p99_ms"]), m["error_rate"] * 100, SEED[c]))
    print("\nLoad average (1, 5, 15 min):", open(os.path.join(out, "load.txt")).read().replace("\n", "; "))


if __name__ == "__main__":
    main()
