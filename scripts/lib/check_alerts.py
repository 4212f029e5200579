#!/usr/bin/env python3
"""Checks what promtool does not: every alert of deploy/prometheus/rules has a severity of
critical, warning or info, a summary, a description and a runbook_url that points at its
own page in docs/runbooks/ (which exists and shows the rule's expression); the rules keep the promised counts; and the
unit tests in deploy/prometheus/tests make every alert rule fire (each severity and
window) and check each alert stays silent somewhere.

Usage: check_alerts.py REPO_DIR. Exits 1 listing every problem found."""

import glob
import os
import sys

import yaml

RUNBOOK_BASE = "https://github.com/mltb-rs/mltb/blob/main/docs/runbooks/"
SEVERITIES = ("critical", "warning", "info")
# The seed's promise: 15+ alerts, at least 7 critical, 5 warning and 3 info.
MINIMUM = {"critical": 7, "warning": 5, "info": 3}


def key(name, labels):
    return (name, labels.get("severity"), labels.get("window"))


def main(repo):
    problems = []
    rules = {}
    for path in sorted(glob.glob(os.path.join(repo, "deploy/prometheus/rules/*.yml"))):
        for group in yaml.safe_load(open(path))["groups"]:
            for rule in group["rules"]:
                if "alert" not in rule:
                    continue
                name, labels = rule["alert"], rule.get("labels", {})
                where = f"{os.path.relpath(path, repo)}: {name}"
                if labels.get("severity") not in SEVERITIES:
                    problems.append(f"{where}: severity is {labels.get('severity')!r}, expected one of {SEVERITIES}")
                notes = rule.get("annotations", {})
                for field in ("summary", "description", "runbook_url"):
                    if not str(notes.get(field, "")).strip():
                        problems.append(f"{where}: annotation {field} is missing")
                url = notes.get("runbook_url", "")
                if url != RUNBOOK_BASE + name + ".md":
                    problems.append(f"{where}: runbook_url is {url!r}, expected {RUNBOOK_BASE + name + '.md'!r}")
                page = os.path.join(repo, "docs/runbooks", name + ".md")
                if not os.path.isfile(page):
                    problems.append(f"{where}: docs/runbooks/{name}.md does not exist")
                elif rule["expr"].rstrip() not in open(page).read():
                    problems.append(f"{where}: docs/runbooks/{name}.md does not show the rule's expr as it is")
                if key(name, labels) in rules:
                    problems.append(f"{where}: two rules share severity and window {key(name, labels)}")
                rules[key(name, labels)] = where

    counts = {s: sum(1 for k in rules if k[1] == s) for s in SEVERITIES}
    for severity, least in MINIMUM.items():
        if counts[severity] < least:
            problems.append(f"only {counts[severity]} {severity} alert rules, expected at least {least}")
    if len(rules) < 15:
        problems.append(f"only {len(rules)} alert rules, expected at least 15")

    fired, silent = set(), set()
    for path in sorted(glob.glob(os.path.join(repo, "deploy/prometheus/tests/*.yml"))):
        for test in yaml.safe_load(open(path)).get("tests", []):
            for case in test.get("alert_rule_test", []):
                expected = case.get("exp_alerts") or []
                if not expected:
                    silent.add(case["alertname"])
                for alert in expected:
                    fired.add(key(case["alertname"], alert.get("exp_labels", {})))
    for k, where in sorted(rules.items()):
        if k not in fired:
            problems.append(f"{where}: no unit test makes it fire (severity {k[1]}, window {k[2]})")
        if k[0] not in silent:
            problems.append(f"{where}: no unit test checks that it stays silent")

    names = {k[0] for k in rules}
    for page in sorted(glob.glob(os.path.join(repo, "docs/runbooks/*.md"))):
        name = os.path.basename(page)[:-3]
        if name != "README" and name not in names:
            problems.append(f"docs/runbooks/{name}.md: no alert of that name")

    for p in problems:
        print(f"check_alerts: {p}", file=sys.stderr)
    if problems:
        return 1
    print(
        f"check_alerts: {len(rules)} alert rules ({len(names)} names; "
        + ", ".join(f"{counts[s]} {s}" for s in SEVERITIES)
        + "), each with its runbook, each fired and kept silent by a unit test"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "."))
