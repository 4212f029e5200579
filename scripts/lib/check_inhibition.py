#!/usr/bin/env python3
"""Runs the real Alertmanager (Debian: prometheus-alertmanager) on loopback with the route
and inhibit_rules of deploy/alertmanager/alertmanager.yml, posts alerts to it, and checks
which ones it reports as inhibited. The receivers are replaced by empty ones and the
global SMTP and Slack settings dropped, so nothing is sent anywhere.

Usage: check_inhibition.py REPO_DIR. Exits 1 naming each alert in the wrong state."""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

# (labels, expected state): "suppressed" when an inhibit rule must mute it, else "active".
CASES = [
    # A critical alert silences the warning of the same alert on the same target...
    ({"alertname": "MltbQueueBackedUp", "severity": "critical", "job": "mltb", "instance": "a:8080"}, "active"),
    ({"alertname": "MltbQueueBackedUp", "severity": "warning", "job": "mltb", "instance": "a:8080"}, "suppressed"),
    # ...not on another target,
    ({"alertname": "MltbQueueBackedUp", "severity": "warning", "job": "mltb", "instance": "b:8080"}, "active"),
    # ...and not another alert's warning.
    ({"alertname": "MltbPoolSaturated", "severity": "warning", "job": "mltb", "instance": "a:8080"}, "active"),
    # The SLO's page silences its ticket (no instance label on either).
    ({"alertname": "MltbApiErrorBudgetBurn", "severity": "critical", "job": "mltb", "window": "1h"}, "active"),
    ({"alertname": "MltbApiErrorBudgetBurn", "severity": "warning", "job": "mltb", "window": "3d"}, "suppressed"),
    # aria2 unreachable silences its consequences on the same bot only.
    ({"alertname": "MltbAria2Unreachable", "severity": "critical", "job": "mltb", "instance": "c:8080"}, "active"),
    ({"alertname": "MltbTasksStuck", "severity": "warning", "job": "mltb", "instance": "c:8080"}, "suppressed"),
    ({"alertname": "MltbTasksFailing", "severity": "critical", "job": "mltb", "instance": "c:8080"}, "suppressed"),
    ({"alertname": "MltbTasksStuck", "severity": "warning", "job": "mltb", "instance": "d:8080"}, "active"),
    # A bot that is down silences the missing-backup alert.
    ({"alertname": "MltbDown", "severity": "critical", "job": "mltb", "instance": "e:8080"}, "active"),
    ({"alertname": "MltbBackupMissing", "severity": "warning"}, "suppressed"),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read() or b"null")


def main(repo):
    config = yaml.safe_load(open(os.path.join(repo, "deploy/alertmanager/alertmanager.yml")))
    config.pop("templates", None)
    config["global"] = {"resolve_timeout": config.get("global", {}).get("resolve_timeout", "5m")}
    config["receivers"] = [{"name": r["name"]} for r in config["receivers"]]
    with tempfile.TemporaryDirectory(prefix="mltb-am-") as tmp:
        path = os.path.join(tmp, "alertmanager.yml")
        yaml.safe_dump(config, open(path, "w"))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = open(os.path.join(tmp, "alertmanager.log"), "w+")
        proc = subprocess.Popen(
            [
                "prometheus-alertmanager",
                f"--config.file={path}",
                f"--storage.path={tmp}/data",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(f"{base}/-/ready", timeout=1)
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        print(log.read(), file=sys.stderr)
                        print("check_inhibition: Alertmanager did not become ready", file=sys.stderr)
                        return 1
                    time.sleep(0.1)
            request(f"{base}/api/v2/alerts", [{"labels": labels} for labels, _ in CASES])
            got = {json.dumps(a["labels"], sort_keys=True): a["status"] for a in request(f"{base}/api/v2/alerts")}
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    problems = 0
    for labels, expected in CASES:
        status = got.get(json.dumps(labels, sort_keys=True))
        state = status["state"] if status else "missing"
        if state != expected:
            print(f"check_inhibition: {labels} is {state}, expected {expected}", file=sys.stderr)
            problems += 1
    if problems:
        return 1
    print(f"check_inhibition: {len(CASES)} alerts posted to Alertmanager, each active or inhibited as expected")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "."))
