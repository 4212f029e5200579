#!/usr/bin/env python3
"""The source of mltb's five Grafana dashboards: writes deploy/grafana/dashboards/*.json.

    scripts/lib/grafana_dashboards.py REPO_DIR           writes the JSON files
    scripts/lib/grafana_dashboards.py REPO_DIR --check   fails if they differ from this source

Edit the panels here, not the JSON. Every panel has a unit and a description; every query
uses the metric names the bot exports (docs/api.md) or the exporters' own."""

import json
import os
import sys

DS = {"type": "prometheus", "uid": "prometheus"}
INSTANCE = 'job="mltb", instance=~"$instance"'


def ts(title, description, unit, targets, *, stack=False, min0=True, max=None):
    defaults = {"unit": unit, "custom": {"fillOpacity": 10, "lineWidth": 1, "showPoints": "never"}}
    if stack:
        defaults["custom"]["stacking"] = {"mode": "normal", "group": "A"}
    if min0:
        defaults["min"] = 0
    if max is not None:
        defaults["max"] = max
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}},
        "targets": targets,
    }


def stat(title, description, unit, targets, *, thresholds=None, decimals=None):
    defaults = {"unit": unit}
    if decimals is not None:
        defaults["decimals"] = decimals
    if thresholds:
        defaults["thresholds"] = {
            "mode": "absolute",
            "steps": [{"color": c, "value": v} for v, c in thresholds],
        }
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}, "colorMode": "value"},
        "targets": targets,
    }


def text(title, content):
    """A note where a figure is not exported; it has a unit too, so that every panel has one."""
    return {
        "type": "text",
        "title": title,
        "description": content,
        "fieldConfig": {"defaults": {"unit": "none"}, "overrides": []},
        "options": {"mode": "markdown", "content": content},
        "targets": [],
    }


def q(expr, legend=""):
    return {"expr": expr, "legendFormat": legend}


def row(title):
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


def layout(panels):
    """Places panels on the 24-column grid: rows full width, stats 4 wide, graphs 12 wide."""
    out, x, y, h_row, pid = [], 0, 0, 0, 1
    for p in panels:
        w, h = (24, 1) if p["type"] == "row" else (4, 4) if p["type"] == "stat" else (24, 3) if p["type"] == "text" else (12, 8)
        if p["type"] == "row" or x + w > 24:
            x, y, h_row = 0, y + h_row, 0
        p = dict(p, id=pid, gridPos={"h": h, "w": w, "x": x, "y": y})
        pid += 1
        if p["type"] not in ("row", "text"):
            p["datasource"] = DS
            p["targets"] = [dict(t, refId=chr(ord("A") + i), datasource=DS) for i, t in enumerate(p["targets"])]
        out.append(p)
        x, h_row = (0, h) if p["type"] == "row" else (x + w, max(h_row, h))
        if p["type"] == "row":
            y, h_row = y + 1, 0
    return out


def variable(name, label, query):
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "query": {"query": query, "refId": "StandardVariableQuery"},
        "definition": query,
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
    }


def dashboard(uid, title, description, panels, variables):
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["mltb"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": variables},
        "annotations": {"list": []},
        "links": [{"type": "dashboards", "tags": ["mltb"], "asDropdown": True, "title": "mltb"}],
        "panels": layout(panels),
    }


BOT_INSTANCE = variable("instance", "bot", 'label_values(mltb_build_info{job="mltb"}, instance)')
R = "$__rate_interval"


def overview():
    return dashboard(
        "mltb-overview",
        "mltb / System Overview",
        "Is the bot up, answering and keeping its SLO; its load and resources at a glance.",
        [
            row("Health"),
            stat("Up", "1 when Prometheus scraped the bot's /metrics at the last attempt (up{job=\"mltb\"}).", "none",
                 [q(f'min(up{{{INSTANCE}}})')], thresholds=[(None, "red"), (1, "green")]),
            stat("Uptime", "Time since the bot's metrics were set up, close to the process start (mltb_uptime_seconds).", "s",
                 [q(f'min(mltb_uptime_seconds{{{INSTANCE}}})')]),
            stat("Live tasks", "Tasks running in this process, in every state (mltb_tasks).", "short",
                 [q(f'sum(mltb_tasks{{{INSTANCE}}})')]),
            stat("Firing alerts", "mltb alerts firing now in Prometheus (ALERTS).", "short",
                 [q('count(ALERTS{alertname=~"Mltb.*", alertstate="firing"}) or vector(0)')],
                 thresholds=[(None, "green"), (1, "red")]),
            stat("API availability (3 d)", "Share of API requests (not /metrics or /ready) answered without a 5xx over 3 days; the SLO is 99.9% (job:mltb_http_request_errors:ratio_rate3d).",
                 "percentunit", [q('1 - job:mltb_http_request_errors:ratio_rate3d{job="mltb"}')],
                 thresholds=[(None, "red"), (0.999, "green")], decimals=3),
            stat("Error budget left (3 d pace)", "How much of the 30-day budget of 0.1% the last 3 days' error ratio leaves, if it went on all month (1 - ratio / 0.001).",
                 "percentunit", [q('1 - job:mltb_http_request_errors:ratio_rate3d{job="mltb"} / 0.001')],
                 thresholds=[(None, "red"), (0, "orange"), (0.5, "green")]),
            row("Traffic"),
            ts("API requests by status", "Requests the HTTP API answered per second, by status code (mltb_http_requests_total).", "reqps",
               [q(f'sum by (status) (rate(mltb_http_requests_total{{{INSTANCE}}}[{R}]))', "{{status}}")], stack=True),
            ts("API latency p50 / p99", "Time from a request's arrival to its response head, over every route but /metrics (mltb_http_request_duration_seconds).", "s",
               [q(f'histogram_quantile(0.5, sum by (le) (rate(mltb_http_request_duration_seconds_bucket{{{INSTANCE}, route!="/metrics"}}[{R}])))', "p50"),
                q(f'histogram_quantile(0.99, sum by (le) (rate(mltb_http_request_duration_seconds_bucket{{{INSTANCE}, route!="/metrics"}}[{R}])))', "p99")]),
            ts("API 5xx ratio by window", "The SLO's error ratio over 5 m, 1 h and 6 h (recording rules); the page thresholds are 14.4x and 6x the 0.1% budget.", "percentunit",
               [q('job:mltb_http_request_errors:ratio_rate5m{job="mltb"}', "5m"),
                q('job:mltb_http_request_errors:ratio_rate1h{job="mltb"}', "1h"),
                q('job:mltb_http_request_errors:ratio_rate6h{job="mltb"}', "6h")]),
            ts("Telegram requests and errors", "Requests submitted to the Telegram scheduler and those that ended in an error, per second.", "reqps",
               [q(f'sum(rate(mltb_telegram_requests_total{{{INSTANCE}}}[{R}]))', "requests"),
                q(f'sum(rate(mltb_telegram_errors_total{{{INSTANCE}}}[{R}]))', "errors")]),
            row("Resources"),
            ts("CPU", "CPU time the bot's process uses per second: 1 is one core busy (process_cpu_seconds_total).", "percentunit",
               [q(f'rate(process_cpu_seconds_total{{{INSTANCE}}}[{R}])', "{{instance}}")]),
            ts("Memory", "Resident memory of the bot's process (process_resident_memory_bytes).", "bytes",
               [q(f'process_resident_memory_bytes{{{INSTANCE}}}', "{{instance}}")]),
            ts("Download disk free", "Bytes still writable on the download directory's file system, and its size (mltb_disk_*_bytes).", "bytes",
               [q(f'mltb_disk_free_bytes{{{INSTANCE}, dir="downloads"}}', "free {{instance}}"),
                q(f'mltb_disk_size_bytes{{{INSTANCE}, dir="downloads"}}', "size {{instance}}")]),
            ts("Transfer rate", "Bytes per second downloaded and uploaded by tasks (mltb_downloaded_bytes_total, mltb_uploaded_bytes_total).", "Bps",
               [q(f'sum(rate(mltb_downloaded_bytes_total{{{INSTANCE}}}[{R}]))', "downloaded"),
                q(f'sum(rate(mltb_uploaded_bytes_total{{{INSTANCE}}}[{R}]))', "uploaded")]),
        ],
        [BOT_INSTANCE],
    )


def tasks():
    return dashboard(
        "mltb-tasks",
        "mltb / Bot & Tasks",
        "The tasks, the queue, transfers, commands refused and the Telegram scheduler's traffic.",
        [
            row("Tasks"),
            ts("Tasks by state", "Tasks running in this process by state: queued, downloading, uploading, seeding (mltb_tasks).", "short",
               [q(f'sum by (state) (mltb_tasks{{{INSTANCE}}})', "{{state}}")], stack=True),
            ts("Queue slots", "Tasks holding a download or upload slot, and tasks waiting for a download slot (mltb_queue_slots).", "short",
               [q(f'sum by (slot) (mltb_queue_slots{{{INSTANCE}}})', "{{slot}}")]),
            ts("Stage progress", "Bytes done over bytes in all in the current stage of the live tasks, by state (0 while the size is unknown).", "percentunit",
               [q(f'sum by (state) (mltb_tasks_done_bytes{{{INSTANCE}}}) / sum by (state) (mltb_tasks_size_bytes{{{INSTANCE}}} > 0)', "{{state}}")], max=1),
            ts("Task speed", "Bytes per second the live tasks move now, by state (mltb_tasks_speed_bytes_per_second).", "Bps",
               [q(f'sum by (state) (mltb_tasks_speed_bytes_per_second{{{INSTANCE}}})', "{{state}}")]),
            ts("Bytes moved", "Bytes downloaded and uploaded by tasks per second, as the downloaders and uploaders report them.", "Bps",
               [q(f'sum(rate(mltb_downloaded_bytes_total{{{INSTANCE}}}[{R}]))', "downloaded"),
                q(f'sum(rate(mltb_uploaded_bytes_total{{{INSTANCE}}}[{R}]))', "uploaded")]),
            ts("Commands refused", "Commands refused by the per-role command quota, per second, by role (mltb_rate_limit_rejections_total{limiter=\"commands\"}).", "ops",
               [q(f'sum by (tier) (rate(mltb_rate_limit_rejections_total{{{INSTANCE}, limiter="commands"}}[{R}]))', "{{tier}}")]),
            row("Telegram"),
            ts("Scheduler traffic", "Requests submitted to the Telegram scheduler, sent to the Bot API (retries included) and retried, per second.", "reqps",
               [q(f'sum(rate(mltb_telegram_requests_total{{{INSTANCE}}}[{R}]))', "submitted"),
                q(f'sum(rate(mltb_telegram_attempts_total{{{INSTANCE}}}[{R}]))', "attempts"),
                q(f'sum(rate(mltb_telegram_retries_total{{{INSTANCE}}}[{R}]))', "retries")]),
            ts("Errors and 429s", "Requests that ended in an error, and 429 Too Many Requests answers, per second.", "reqps",
               [q(f'sum(rate(mltb_telegram_errors_total{{{INSTANCE}}}[{R}]))', "errors"),
                q(f'sum(rate(mltb_telegram_rate_limited_total{{{INSTANCE}}}[{R}]))', "429s")]),
            ts("Scheduler queue", "Requests submitted and not yet resolved (mltb_telegram_queue_depth).", "short",
               [q(f'sum by (scheduler) (mltb_telegram_queue_depth{{{INSTANCE}}})', "{{scheduler}}")]),
            ts("Status edits saved", "Board edits merged into a later edit, and edits skipped because the text was unchanged, per second.", "ops",
               [q(f'sum(rate(mltb_telegram_edits_coalesced_total{{{INSTANCE}}}[{R}]))', "coalesced"),
                q(f'sum(rate(mltb_telegram_edits_unchanged_total{{{INSTANCE}}}[{R}]))', "unchanged")]),
        ],
        [BOT_INSTANCE],
    )


def components():
    return dashboard(
        "mltb-components",
        "mltb / Phase 4 Components",
        "The reusable crates inside the bot: rate limiter, cache, pool, batcher, balancer, query analyzer.",
        [
            row("Rate limiter"),
            ts("Rejections", "Requests refused by a rate limiter per second, by limiter and tier (mltb_rate_limit_rejections_total).", "ops",
               [q(f'sum by (limiter, tier) (rate(mltb_rate_limit_rejections_total{{{INSTANCE}}}[{R}]))', "{{limiter}} {{tier}}")]),
            ts("Telegram 429s", "429 answers from the Bot API per second: Telegram's own limiter, which the scheduler should keep near zero.", "reqps",
               [q(f'sum(rate(mltb_telegram_rate_limited_total{{{INSTANCE}}}[{R}]))', "429s")]),
            row("Cache"),
            ts("Hit ratio", "Hits over reads of each cache (mltb_cache_hits_total, mltb_cache_misses_total); the alert is under 70%.", "percentunit",
               [q(f'sum by (cache) (rate(mltb_cache_hits_total{{{INSTANCE}}}[{R}])) / (sum by (cache) (rate(mltb_cache_hits_total{{{INSTANCE}}}[{R}])) + sum by (cache) (rate(mltb_cache_misses_total{{{INSTANCE}}}[{R}])))', "{{cache}}")], max=1),
            ts("Size and budget", "Bytes each cache holds, as weighed, and its byte budget (mltb_cache_size_bytes, mltb_cache_capacity_bytes).", "bytes",
               [q(f'sum by (cache) (mltb_cache_size_bytes{{{INSTANCE}}})', "{{cache}} size"),
                q(f'sum by (cache) (mltb_cache_capacity_bytes{{{INSTANCE}}})', "{{cache}} budget")]),
            ts("Evictions by cause", "Entries leaving the cache per second: size, expired, replaced, removed (mltb_cache_evictions_total).", "ops",
               [q(f'sum by (cache, cause) (rate(mltb_cache_evictions_total{{{INSTANCE}}}[{R}]))', "{{cache}} {{cause}}")], stack=True),
            ts("Entries", "Entries each cache holds (mltb_cache_entries).", "short",
               [q(f'sum by (cache) (mltb_cache_entries{{{INSTANCE}}})', "{{cache}}")]),
            ts("Reads the policy dropped", "Share of each cache's reads (counted as hits or misses all the same) whose effect on the eviction policy was dropped "
               "because another thread was replaying a full read ring (W-TinyLFU caches; plain LRU drops none) (mltb_cache_reads_dropped_total over hits and misses). Only concurrent reads drop; "
               "a share that stays high means the policy decides from a sample of the reads.", "percentunit",
               [q(f'sum by (cache) (rate(mltb_cache_reads_dropped_total{{{INSTANCE}}}[{R}])) / (sum by (cache) (rate(mltb_cache_hits_total{{{INSTANCE}}}[{R}])) + sum by (cache) (rate(mltb_cache_misses_total{{{INSTANCE}}}[{R}])))', "{{cache}}")], max=1),
            row("Pool"),
            ts("Utilization", "Mean busy connections over the maximum size, over the pool's trailing window (mltb_pool_utilization_ratio); the alert is over 80%.", "percentunit",
               [q(f'max by (pool) (mltb_pool_utilization_ratio{{{INSTANCE}}})', "{{pool}}")], max=1),
            ts("Connections", "Open connections, idle and in use, and the pool's maximum (mltb_pool_connections, mltb_pool_max_connections).", "short",
               [q(f'sum by (pool, state) (mltb_pool_connections{{{INSTANCE}}})', "{{pool}} {{state}}"),
                q(f'sum by (pool) (mltb_pool_max_connections{{{INSTANCE}}})', "{{pool}} max")]),
            ts("Checkout wait p99", "99th percentile of the time from asking for a connection to getting one (mltb_pool_wait_seconds).", "s",
               [q(f'histogram_quantile(0.99, sum by (pool, le) (rate(mltb_pool_wait_seconds_bucket{{{INSTANCE}}}[{R}])))', "{{pool}}")]),
            ts("Checkout problems", "Checkouts that timed out, were refused because the backend was down, and failed connection attempts, per second.", "ops",
               [q(f'sum by (pool) (rate(mltb_pool_timeouts_total{{{INSTANCE}}}[{R}]))', "{{pool}} timeouts"),
                q(f'sum by (pool) (rate(mltb_pool_unavailable_total{{{INSTANCE}}}[{R}]))', "{{pool}} unavailable"),
                q(f'sum by (pool) (rate(mltb_pool_connect_errors_total{{{INSTANCE}}}[{R}]))', "{{pool}} connect errors")]),
            row("Batcher"),
            ts("Mean batch size", "Items handed to the handler per batch (mltb_batch_items_total over mltb_batch_batches_total).", "short",
               [q(f'sum by (batcher) (rate(mltb_batch_items_total{{{INSTANCE}}}[{R}])) / sum by (batcher) (rate(mltb_batch_batches_total{{{INSTANCE}}}[{R}]))', "{{batcher}}")]),
            ts("Batches by reason", "Batch handler calls per second, by why the batch was cut: full, delay, idle, flush, shutdown.", "ops",
               [q(f'sum by (batcher, reason) (rate(mltb_batch_batches_total{{{INSTANCE}}}[{R}]))', "{{batcher}} {{reason}}")], stack=True),
            ts("Queue and in flight", "Items waiting for a batch, and handler calls in flight (mltb_batch_queue_depth, mltb_batch_in_flight).", "short",
               [q(f'sum by (batcher) (mltb_batch_queue_depth{{{INSTANCE}}})', "{{batcher}} queued"),
                q(f'sum by (batcher) (mltb_batch_in_flight{{{INSTANCE}}})', "{{batcher}} in flight")]),
            ts("Failed batches", "Batch handler calls that failed or panicked, per second (mltb_batch_failed_batches_total).", "ops",
               [q(f'sum by (batcher) (rate(mltb_batch_failed_batches_total{{{INSTANCE}}}[{R}]))', "{{batcher}}")]),
            row("Balancer"),
            ts("Members by state", "Balancer members available to picks, failing health checks, and ejected by outlier detection (mltb_balancer_endpoints). "
               "The bot's balancer spreads downloads over the aria2 daemons of `downloads.aria2_endpoints`; with its own aria2c there is none.", "short",
               [q(f'sum by (balancer, state) (mltb_balancer_endpoints{{{INSTANCE}}})', "{{balancer}} {{state}}")], stack=True),
            ts("Picks by member and outcome", "Picks per second by member and reported outcome: success, failure, dropped (mltb_balancer_picks_total).", "ops",
               [q(f'sum by (endpoint, outcome) (rate(mltb_balancer_picks_total{{{INSTANCE}}}[{R}]))', "{{endpoint}} {{outcome}}")]),
            ts("In flight", "Picks handed out and not yet reported, by member (mltb_balancer_in_flight); 0 unless the strategy counts them.", "short",
               [q(f'sum by (endpoint) (mltb_balancer_in_flight{{{INSTANCE}}})', "{{endpoint}}")]),
            ts("Latency estimate", "Each member's peak-EWMA latency of adding a download (mltb_balancer_latency_ewma_seconds): it jumps to slow answers and decays.", "s",
               [q(f'max by (endpoint) (mltb_balancer_latency_ewma_seconds{{{INSTANCE}}})', "{{endpoint}}")]),
            ts("Ejections in a row", "Times outlier detection ejected each member in a row, its ejection time multiplier (mltb_balancer_ejections_in_a_row); 0 when healthy.", "short",
               [q(f'max by (endpoint) (mltb_balancer_ejections_in_a_row{{{INSTANCE}}})', "{{endpoint}}")]),
            row("Query analyzer"),
            ts("Store queries", "Store queries seen by the query analyzer per second (mltb_query_events_total).", "ops",
               [q(f'sum(rate(mltb_query_events_total{{{INSTANCE}}}[{R}]))', "queries")]),
            ts("Findings", "N+1 and duplicate-query patterns found per hour, and findings dropped because the report was full.", "short",
               [q(f'sum(increase(mltb_query_n_plus_one_findings_total{{{INSTANCE}}}[1h]))', "N+1 / h"),
                q(f'sum(increase(mltb_query_duplicate_findings_total{{{INSTANCE}}}[1h]))', "duplicates / h"),
                q(f'sum(increase(mltb_query_findings_dropped_total{{{INSTANCE}}}[1h]))', "dropped / h")]),
            ts("Fingerprints and open spans", "Distinct query fingerprints tracked, and spans (commands, requests, tasks) open now.", "short",
               [q(f'sum(mltb_query_fingerprints{{{INSTANCE}}})', "fingerprints"),
                q(f'sum(mltb_query_open_spans{{{INSTANCE}}})', "open spans")]),
        ],
        [BOT_INSTANCE],
    )


def host():
    node = 'job="node", instance=~"$node"'
    return dashboard(
        "mltb-host",
        "mltb / Containers & Host",
        "The machine (node-exporter) and the stack's containers (cAdvisor).",
        [
            row("Host"),
            ts("CPU busy", "Share of CPU time not idle, over all cores (node_cpu_seconds_total).", "percentunit",
               [q(f'1 - avg by (instance) (rate(node_cpu_seconds_total{{{node}, mode="idle"}}[{R}]))', "{{instance}}")], max=1),
            ts("Memory available", "Memory available for new work without swapping, and the total (node_memory_*_bytes).", "bytes",
               [q(f'node_memory_MemAvailable_bytes{{{node}}}', "available"), q(f'node_memory_MemTotal_bytes{{{node}}}', "total")]),
            ts("File systems free", "Free share of each real file system (node_filesystem_avail_bytes over size).", "percentunit",
               [q(f'node_filesystem_avail_bytes{{{node}, fstype!~"tmpfs|overlay|squashfs"}} / node_filesystem_size_bytes{{{node}, fstype!~"tmpfs|overlay|squashfs"}}', "{{mountpoint}}")], max=1),
            ts("Network", "Bytes per second received and sent by each interface but loopback (node_network_*_bytes_total).", "Bps",
               [q(f'sum by (device) (rate(node_network_receive_bytes_total{{{node}, device!="lo"}}[{R}]))', "{{device}} in"),
                q(f'sum by (device) (rate(node_network_transmit_bytes_total{{{node}, device!="lo"}}[{R}]))', "{{device}} out")]),
            ts("Disk I/O time", "Share of time each disk was busy (node_disk_io_time_seconds_total).", "percentunit",
               [q(f'rate(node_disk_io_time_seconds_total{{{node}}}[{R}])', "{{device}}")], max=1),
            ts("Load", "1-minute load average over the number of cores (node_load1).", "short",
               [q(f'node_load1{{{node}}} / count by (instance) (node_cpu_seconds_total{{{node}, mode="idle"}})', "{{instance}}")]),
            row("Containers"),
            ts("Container CPU", "CPU per container, 1 is one core (container_cpu_usage_seconds_total).", "percentunit",
               [q(f'sum by (name) (rate(container_cpu_usage_seconds_total{{job="cadvisor", name!=""}}[{R}]))', "{{name}}")]),
            ts("Container memory", "Working-set memory per container, what the kernel counts against a limit (container_memory_working_set_bytes).", "bytes",
               [q('sum by (name) (container_memory_working_set_bytes{job="cadvisor", name!=""})', "{{name}}")]),
            ts("Container network", "Bytes per second received per container (container_network_receive_bytes_total).", "Bps",
               [q(f'sum by (name) (rate(container_network_receive_bytes_total{{job="cadvisor", name!=""}}[{R}]))', "{{name}}")]),
            ts("Container restarts", "Container starts seen in the last hour, from the change of their start time (container_start_time_seconds).", "short",
               [q('sum by (name) (changes(container_start_time_seconds{job="cadvisor", name!=""}[1h]))', "{{name}}")]),
        ],
        [variable("node", "host", 'label_values(node_uname_info{job="node"}, instance)')],
    )


def dependencies():
    return dashboard(
        "mltb-dependencies",
        "mltb / Service Dependencies",
        "What the bot depends on: Telegram, aria2, rclone, the store, Redis and PostgreSQL.",
        [
            row("Telegram"),
            ts("Error ratio", "Share of Telegram requests that ended in an error (the alerts are at 5% and 25%).", "percentunit",
               [q(f'sum(rate(mltb_telegram_errors_total{{{INSTANCE}}}[{R}])) / sum(rate(mltb_telegram_requests_total{{{INSTANCE}}}[{R}]))', "errors")], max=1),
            ts("429s and retries", "429 answers and retries after 5xx, network errors and timeouts, per second.", "reqps",
               [q(f'sum(rate(mltb_telegram_rate_limited_total{{{INSTANCE}}}[{R}]))', "429s"),
                q(f'sum(rate(mltb_telegram_retries_total{{{INSTANCE}}}[{R}]))', "retries")]),
            row("aria2 and rclone"),
            ts("Downloads (aria2)", "Bytes per second aria2 downloads for tasks, and tasks downloading. aria2's reachability needs mltb_ready_check_ok (not exported yet); /ready shows it.", "Bps",
               [q(f'sum(rate(mltb_downloaded_bytes_total{{{INSTANCE}}}[{R}]))', "downloaded")]),
            ts("Uploads (rclone and Telegram)", "Bytes per second uploaded by tasks to Telegram or through rclone (mltb_uploaded_bytes_total).", "Bps",
               [q(f'sum(rate(mltb_uploaded_bytes_total{{{INSTANCE}}}[{R}]))', "uploaded")]),
            row("Store"),
            ts("Store pool", "Connections in use and checkouts waiting on the store's pool (pool sqlite or postgres).", "short",
               [q(f'sum by (pool) (mltb_pool_connections{{{INSTANCE}, state="in_use", pool=~"sqlite|postgres"}})', "{{pool}} in use"),
                q(f'sum by (pool) (mltb_pool_waiting{{{INSTANCE}, pool=~"sqlite|postgres"}})', "{{pool}} waiting")]),
            ts("Store errors", "Failed write batches and pool failures per second: the signals of the MltbStoreErrors alert.", "ops",
               [q(f'sum(rate(mltb_batch_failed_batches_total{{{INSTANCE}, batcher="store_writes"}}[{R}]))', "failed write batches"),
                q(f'sum(rate(mltb_pool_unavailable_total{{{INSTANCE}, pool=~"sqlite|postgres"}}[{R}]))', "unavailable"),
                q(f'sum(rate(mltb_pool_connect_errors_total{{{INSTANCE}, pool=~"sqlite|postgres"}}[{R}]))', "connect errors"),
                q(f'sum(rate(mltb_pool_timeouts_total{{{INSTANCE}, pool=~"sqlite|postgres"}}[{R}]))', "timeouts")]),
            row("Redis"),
            ts("Redis up and clients", "redis_exporter's redis_up (1 when it reached Redis) and connected clients.", "short",
               [q('redis_up{job="redis"}', "up"), q('redis_connected_clients{job="redis"}', "clients")]),
            ts("Redis memory", "Memory Redis uses (redis_memory_used_bytes).", "bytes",
               [q('redis_memory_used_bytes{job="redis"}', "used")]),
            ts("Redis commands", "Commands Redis processed per second (redis_commands_processed_total).", "ops",
               [q(f'rate(redis_commands_processed_total{{job="redis"}}[{R}])', "commands")]),
            row("PostgreSQL"),
            ts("PostgreSQL up and backends", "postgres_exporter's pg_up (1 when it reached the server) and backends per database.", "short",
               [q('pg_up{job="postgres"}', "up"), q('sum by (datname) (pg_stat_database_numbackends{job="postgres"})', "{{datname}} backends")]),
            ts("PostgreSQL transactions", "Commits and rollbacks per second, per database (pg_stat_database_xact_*).", "ops",
               [q(f'sum by (datname) (rate(pg_stat_database_xact_commit{{job="postgres"}}[{R}]))', "{{datname}} commits"),
                q(f'sum by (datname) (rate(pg_stat_database_xact_rollback{{job="postgres"}}[{R}]))', "{{datname}} rollbacks")]),
        ],
        [BOT_INSTANCE],
    )


DASHBOARDS = {
    "overview.json": overview,
    "bot-tasks.json": tasks,
    "components.json": components,
    "host.json": host,
    "dependencies.json": dependencies,
}


def main(repo, check):
    out_dir = os.path.join(repo, "deploy/grafana/dashboards")
    stale = []
    for name, build in DASHBOARDS.items():
        text = json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
        path = os.path.join(out_dir, name)
        if check:
            if not os.path.isfile(path) or open(path).read() != text:
                stale.append(name)
        else:
            open(path, "w").write(text)
    if stale:
        print(f"grafana_dashboards: {', '.join(stale)} differ from scripts/lib/grafana_dashboards.py; run it to write them", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--check"]
    sys.exit(main(args[0] if args else ".", "--check" in sys.argv))
