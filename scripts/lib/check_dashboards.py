#!/usr/bin/env python3
"""Checks the Grafana dashboards and the metric names of every query, offline:

- deploy/grafana/dashboards/*.json are what scripts/lib/grafana_dashboards.py writes;
- every dashboard has its own uid; every panel has a description and a unit;
- every panel query, with the dashboard variables given values, parses as PromQL
  (written into a temporary rule file for `promtool check rules`);
- every mltb_* and process_* name in a dashboard query, an alert or a recording rule is a
  family docs/api.md lists (histograms with _bucket, _sum, _count), or one of the names
  docs/monitoring.md lists as still needed.

Usage: check_dashboards.py REPO_DIR. Exits 1 listing every problem found."""

import glob
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

# docs/monitoring.md, "Metrics the rules still need": used by rules, not exported yet.
STILL_NEEDED: set[str] = set()
VARIABLES = {"$__rate_interval": "5m", "$instance": "mltb:8080", "$node": "node-exporter:9100"}
NAME = re.compile(r"(?<![:\w])((?:mltb|process)_[a-z0-9_]+)")


def documented(repo):
    names = set()
    for line in open(os.path.join(repo, "docs/api.md")):
        m = re.match(r"\| `((?:mltb|process)_[a-z0-9_]+)` \| (\w+) \|", line)
        if m:
            names.add(m.group(1))
            if m.group(2) == "histogram":
                names.update(m.group(1) + s for s in ("_bucket", "_sum", "_count"))
    return names


def main(repo):
    problems = []
    sync = subprocess.run([sys.executable, os.path.join(repo, "scripts/lib/grafana_dashboards.py"), repo, "--check"])
    if sync.returncode:
        problems.append("the dashboards' JSON is not what scripts/lib/grafana_dashboards.py writes")

    exprs, uids, panels = [], {}, 0
    for path in sorted(glob.glob(os.path.join(repo, "deploy/grafana/dashboards/*.json"))):
        name = os.path.relpath(path, repo)
        board = json.load(open(path))
        if board.get("uid") in uids:
            problems.append(f"{name}: uid {board.get('uid')!r} is also {uids[board['uid']]}'s")
        uids[board.get("uid")] = name
        for panel in board["panels"]:
            if panel["type"] == "row":
                continue
            panels += 1
            where = f"{name}: panel {panel.get('title')!r}"
            if not str(panel.get("description", "")).strip():
                problems.append(f"{where}: no description")
            if not panel.get("fieldConfig", {}).get("defaults", {}).get("unit"):
                problems.append(f"{where}: no unit")
            for target in panel.get("targets", []):
                expr = target["expr"]
                for var, value in VARIABLES.items():
                    expr = expr.replace(var, value)
                if "$" in expr:
                    problems.append(f"{where}: a variable with no test value in {target['expr']!r}")
                exprs.append((where, expr))

    with tempfile.TemporaryDirectory(prefix="mltb-dash-") as tmp:
        rules = os.path.join(tmp, "dashboards.yml")
        group = [{"record": f"dashboard_query_{i}", "expr": e} for i, (_, e) in enumerate(exprs)]
        yaml.safe_dump({"groups": [{"name": "dashboards", "rules": group}]}, open(rules, "w"))
        check = subprocess.run(["promtool", "check", "rules", rules], capture_output=True, text=True)
        if check.returncode:
            problems.append("a dashboard query does not parse:\n" + check.stdout + check.stderr)

    known = documented(repo) | STILL_NEEDED
    used = [(w, e) for w, e in exprs]
    for path in sorted(glob.glob(os.path.join(repo, "deploy/prometheus/rules/*.yml"))):
        for g in yaml.safe_load(open(path))["groups"]:
            for r in g["rules"]:
                used.append((f"{os.path.relpath(path, repo)}: {r.get('alert') or r.get('record')}", r["expr"]))
    for where, expr in used:
        for metric in NAME.findall(expr):
            if metric not in known:
                problems.append(f"{where}: {metric} is not a family docs/api.md lists")

    for p in problems:
        print(f"check_dashboards: {p}", file=sys.stderr)
    if problems:
        return 1
    print(
        f"check_dashboards: {len(uids)} dashboards, {panels} panels with a unit and a description, "
        f"{len(exprs)} queries that parse; every mltb_/process_ name in them and in the rules is documented "
        f"(still needed: {', '.join(sorted(STILL_NEEDED))})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "."))
