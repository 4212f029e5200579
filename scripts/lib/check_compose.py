#!/usr/bin/env python3
"""Checks deploy/docker-compose.yml and the Dockerfile offline (Docker cannot run here):

- the stack has the eight services (the bot, Redis, PostgreSQL, Prometheus, Alertmanager,
  Grafana, node-exporter, cAdvisor);
- every target Prometheus scrapes or alerts, and Grafana's data source, is a service of
  the stack at the port it listens on;
- every file or folder the stack mounts from the repo exists (deploy/secrets/ excepted:
  the operator creates it), every secret a service uses is declared, and the bot's secrets
  come through *_FILE variables only;
- published ports bind the host's loopback only;
- the Dockerfile is multi-stage, runs as a non-root user and has a health check.

Usage: check_compose.py REPO_DIR. Exits 1 listing every problem found."""

import os
import re
import sys
from urllib.parse import urlparse

import yaml

SERVICES = ["mltb", "redis", "postgres", "prometheus", "alertmanager", "grafana", "node-exporter", "cadvisor"]
# The port each service listens on inside the stack.
PORTS = {"mltb": 8080, "prometheus": 9090, "alertmanager": 9093, "grafana": 3000, "node-exporter": 9100,
         "cadvisor": 8080, "redis-exporter": 9121, "postgres-exporter": 9187, "redis": 6379, "postgres": 5432}
SECRET_VARIABLES = ["MLTB_BOT_TOKEN", "MLTB_API_TOKEN", "MLTB_DATABASE_URL", "MLTB_CALLBACK_KEY", "MLTB_RCLONE_CONFIG"]


def main(repo):
    problems = []
    deploy = os.path.normpath(os.path.abspath(os.path.join(repo, "deploy")))
    compose = yaml.safe_load(open(os.path.join(deploy, "docker-compose.yml")))
    services = compose["services"]
    for name in SERVICES:
        if name not in services:
            problems.append(f"docker-compose.yml: no service {name}")

    def target_ok(where, host, port):
        if host in ("localhost", "127.0.0.1"):
            return
        if host not in services:
            problems.append(f"{where}: {host} is not a service of docker-compose.yml")
        elif PORTS.get(host) != port:
            problems.append(f"{where}: {host}:{port}, but {host} listens on {PORTS.get(host)}")

    prom = yaml.safe_load(open(os.path.join(deploy, "prometheus/prometheus.yml")))
    for job in prom["scrape_configs"]:
        for sc in job.get("static_configs", []):
            for t in sc["targets"]:
                host, port = t.rsplit(":", 1)
                target_ok(f"prometheus.yml job {job['job_name']}", host, int(port))
    for am in prom["alerting"]["alertmanagers"]:
        for sc in am["static_configs"]:
            for t in sc["targets"]:
                host, port = t.rsplit(":", 1)
                target_ok("prometheus.yml alerting", host, int(port))
    ds = yaml.safe_load(open(os.path.join(deploy, "grafana/provisioning/datasources/prometheus.yml")))
    for d in ds["datasources"]:
        u = urlparse(d["url"])
        target_ok("grafana data source", u.hostname, u.port)

    declared = set(compose.get("secrets", {}))
    for name, svc in services.items():
        for vol in svc.get("volumes", []):
            source = vol.split(":")[0]
            if source.startswith("."):
                path = os.path.normpath(os.path.join(deploy, source))
                if not path.startswith(os.path.join(deploy, "secrets")) and not os.path.exists(path):
                    problems.append(f"service {name}: mounts {source}, which does not exist")
        for secret in svc.get("secrets", []):
            secret = secret if isinstance(secret, str) else secret["source"]
            if secret not in declared:
                problems.append(f"service {name}: secret {secret} is not declared")
        for port in svc.get("ports", []):
            if not str(port).startswith("127.0.0.1:"):
                problems.append(f"service {name}: port {port} is published beyond the host's loopback")
    for secret, spec in compose.get("secrets", {}).items():
        if not spec.get("file", "").startswith("./secrets/"):
            problems.append(f"secret {secret}: expected a file under ./secrets/, got {spec.get('file')!r}")
    env = services.get("mltb", {}).get("environment", {})
    for var in SECRET_VARIABLES:
        if var in env:
            problems.append(f"service mltb: {var} set in the compose file; use {var}_FILE and a secret")
    if env.get("MLTB_API_BIND", "").split(":")[0] not in ("0.0.0.0", "[::]"):
        problems.append("service mltb: MLTB_API_BIND must listen beyond the container's loopback for Prometheus")
    build = services.get("mltb", {}).get("build", {})
    dockerfile = os.path.normpath(os.path.join(deploy, build.get("context", "."), build.get("dockerfile", "Dockerfile")))
    if not os.path.isfile(dockerfile):
        problems.append(f"service mltb: no Dockerfile at {dockerfile}")
    else:
        text = open(dockerfile).read()
        if len(re.findall(r"^FROM ", text, re.M)) < 2:
            problems.append("Dockerfile: not multi-stage")
        users = re.findall(r"^USER (\S+)", text, re.M)
        if not users or users[-1].split(":")[0] in ("root", "0"):
            problems.append("Dockerfile: the final stage does not run as a non-root USER")
        if not re.search(r"^HEALTHCHECK .*(\n\s+.*)*/health", text, re.M):
            problems.append("Dockerfile: no HEALTHCHECK on /health")

    for p in problems:
        print(f"check_compose: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"check_compose: {len(services)} services, targets, mounts, secrets and ports consistent; the Dockerfile is multi-stage, non-root, with a health check")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "."))
