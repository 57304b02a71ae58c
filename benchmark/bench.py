#!/usr/bin/env python3
"""Benchmark: ami-reconciler against the boto3 peer, on moto behind the counting proxy.

    python benchmark/bench.py [--quick] [--runs N] [--cli PATH] [--write-docs]

Starts tests/support/harness.py (moto with its gaps filled, and the counting
proxy), seeds accounts of growing size through the EC2, Auto Scaling and SSM
APIs, and runs both tools on each, alternating them, measuring for each run:
API calls by action (counted by the proxy), wall time, CPU time (user+sys) and
peak RSS of the whole process (wait4, through examples/measure.rs), the peak number of mutating calls in
flight, and the time from process start to the first AWS request.

--quick (for CI) runs small cases once and asserts the call-count floor and
zero mutating calls in the steady state, for both tools, and for ours in tag
mode (3 templates) and with rolling groups.
--only-templates measures only the tag-mode and rollout tables.
--write-docs writes the tables into docs/performance.md and the chart into
docs/performance-scaling.svg.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT / "tests" / "support" / "harness.py"
PEER = ROOT / "benchmark" / "peer" / "reconcile.py"
PARAMETER = "/app/launch-template-id"
TAG = ("ami-reconciler:managed", "true")
REGION = "us-east-1"
DAY0 = datetime(2026, 10, 1, 3, 0, tzinfo=timezone.utc)


# --------------------------------------------------------------------------
# moto + proxy
# --------------------------------------------------------------------------

class Harness:
    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, str(HARNESS)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        ports = json.loads(self.proc.stdout.readline())
        self.proxy, self.moto = ports["proxy"], ports["moto"]
        config = Config(retries={"mode": "standard", "max_attempts": 10}, max_pool_connections=16)
        session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
        url = f"http://127.0.0.1:{self.moto}"
        self.ec2 = session.client("ec2", endpoint_url=url, config=config)
        self.asg = session.client("autoscaling", endpoint_url=url, config=config)
        self.ssm = session.client("ssm", endpoint_url=url, config=config)

    def control(self, method, path, body=None, port=None):
        data = json.dumps(body or {}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port or self.proxy}{path}", data=data if method == "POST" else None, method=method)
        with urllib.request.urlopen(req) as resp:
            raw = resp.read()
        return json.loads(raw) if raw.strip().startswith(b"{") else None

    def calls(self):
        return self.control("GET", "/_harness/calls")

    def reset_calls(self, rules=None):
        self.control("POST", "/_harness/reset")
        if rules:
            self.control("POST", "/_harness/faults", {"rules": rules})

    def reset_moto(self):
        self.control("POST", "/moto-api/reset", port=self.moto)

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)

    def env(self, template_source):
        env = {
            "PATH": os.environ.get("PATH", ""),
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{self.proxy}",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        env.update(template_source)
        return env


# --------------------------------------------------------------------------
# Seeding
# --------------------------------------------------------------------------

def parallel(fn, items, workers=8):
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))


class Account:
    """A seeded account: a template, backups, groups."""

    def __init__(self, h: Harness):
        self.h = h
        self.images: list[str] = []

    def image(self, day, marker=True):
        desc = f"Created for policy: policy-0abc EC2_BACKUP day {day}" if marker else "golden image"
        image_id = self.h.ec2.register_image(Name=f"img-{day}-{time.monotonic_ns()}", Description=desc)["ImageId"]
        created = (DAY0 + timedelta(days=day)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        self.h.control("POST", f"/_harness/images/{image_id}", {"creation_date": created})
        return image_id

    def backups(self, days):
        ids = parallel(self.image, list(days))
        self.images.extend(ids)
        return ids

    def template(self, image):
        self.lt = self.h.ec2.create_launch_template(
            LaunchTemplateName=f"web-{time.monotonic_ns()}",
            LaunchTemplateData={"ImageId": image, "InstanceType": "t3.micro"},
        )["LaunchTemplate"]["LaunchTemplateId"]
        self.h.ssm.put_parameter(Name=PARAMETER, Value=self.lt, Type="String", Overwrite=True)
        return self.lt

    def versions(self, count, image):
        for _ in range(count):
            self.h.ec2.create_launch_template_version(
                LaunchTemplateId=self.lt, SourceVersion="$Latest", LaunchTemplateData={"ImageId": image}
            )

    def set_default(self, version):
        self.h.ec2.modify_launch_template(LaunchTemplateId=self.lt, DefaultVersion=str(version))

    def groups(self, names, version):
        def create(name):
            self.h.asg.create_auto_scaling_group(
                AutoScalingGroupName=name,
                LaunchTemplate={"LaunchTemplateId": self.lt, "Version": version},
                MinSize=0, MaxSize=2, DesiredCapacity=0, AvailabilityZones=[f"{REGION}a"],
                Tags=[{"Key": TAG[0], "Value": TAG[1], "ResourceId": name, "ResourceType": "auto-scaling-group", "PropagateAtLaunch": False}],
            )
        parallel(create, list(names))


class Fleets:
    """Tag mode: T templates, each of its own DLM lineage, G groups spread over them."""

    LINEAGE = "aws:dlm:lifecycle-policy-id"

    def __init__(self, h: Harness, templates: int):
        self.h = h
        self.templates = []
        for i in range(templates):
            policy = f"policy-{i:03d}"
            image = h.ec2.register_image(
                Name=f"fleet-{i}-{time.monotonic_ns()}",
                Description=f"Created for policy: {policy} EC2_BACKUP",
                TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": self.LINEAGE, "Value": policy}]}],
            )["ImageId"]
            lt = h.ec2.create_launch_template(
                LaunchTemplateName=f"fleet-{i:03d}",
                LaunchTemplateData={"ImageId": image, "InstanceType": "t3.micro"},
                TagSpecifications=[{"ResourceType": "launch-template", "Tags": [
                    {"Key": TAG[0], "Value": TAG[1]},
                    {"Key": "ami-reconciler:image-tag", "Value": f"{self.LINEAGE}={policy}"},
                ]}],
            )["LaunchTemplate"]["LaunchTemplateId"]
            self.templates.append(lt)

    def groups(self, count):
        def create(i):
            name = f"fleet-g{i:04d}"
            self.h.asg.create_auto_scaling_group(
                AutoScalingGroupName=name,
                LaunchTemplate={"LaunchTemplateId": self.templates[i % len(self.templates)], "Version": "$Latest"},
                MinSize=0, MaxSize=2, DesiredCapacity=0, AvailabilityZones=[f"{REGION}a"],
                Tags=[{"Key": TAG[0], "Value": TAG[1], "ResourceId": name, "ResourceType": "auto-scaling-group", "PropagateAtLaunch": False}],
            )
        parallel(create, list(range(count)))


def running_group(h, name, lt, version, tags, image, count):
    """A group on `version` of template `lt` with `count` in-service
    instances running `image`."""
    h.asg.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateId": lt, "Version": version},
        MinSize=0, MaxSize=max(count, 1), DesiredCapacity=count,
        AvailabilityZones=[f"{REGION}a"],
        Tags=[{"Key": k, "Value": v, "ResourceId": name, "ResourceType": "auto-scaling-group",
               "PropagateAtLaunch": False} for k, v in tags],
    )
    if count:
        h.control("POST", f"/_harness/groups/{name}/instances", {"image_id": image, "count": count})


def rollouts(h, cli, runs, cases):
    """Converged rolling groups (ami-reconciler:rollout=rolling, on the
    default version by number, every instance on its image): the reads
    rollouts add to the steady state. Ours only."""
    rows = []
    for groups, per_group in cases:
        h.reset_moto()
        acct = Account(h)
        image = acct.image(10_000)
        acct.template(image)

        tags = [(TAG[0], TAG[1]), ("ami-reconciler:rollout", "rolling")]
        parallel(lambda i: running_group(h, f"roll-{i:04d}", acct.lt, "1", tags, image, per_group),
                 list(range(groups)))
        env = h.env({"LAUNCH_TEMPLATE_PARAMETER": PARAMETER})
        results = []
        for _ in range(runs):
            r = run_tool(h, "ours", cli, env)
            assert r["mutating"] == 0, f"rollouts changed a converged account: {r['by_action']}"
            instances = groups * per_group
            assert r["by_action"].get("ec2:DescribeInstances", 0) == -(-instances // 200), r["by_action"]
            assert "autoscaling:DescribeInstanceRefreshes" not in r["by_action"], r["by_action"]
            results.append(r)
        rows.append({"groups": groups, "instances": groups * per_group, "results": results})
        print(f"rollouts R={groups} N={groups * per_group}: {median_of(results, 'calls'):.0f} calls", file=sys.stderr)
    return rows


def fleet_steady(h, cli, groups=100, managed=50, per_group=4):
    """A converged account of `groups` groups, `managed` of them managed on
    the template, each with `per_group` in-service instances on its image:
    the steady state of the instances-behind count. At T = 1 it is bound by
    2 + T + ⌈G/100⌉ calls plus ⌈N/200⌉ instance reads (5 here). Ours only."""
    h.reset_moto()
    acct = Account(h)
    image = acct.image(10_000)
    acct.template(image)

    def create(i):
        tags = [(TAG[0], TAG[1])] if i < managed else [("team", "batch")]
        count = per_group if i < managed else 0
        running_group(h, f"fleet-{i:04d}", acct.lt, "$Latest", tags, image, count)
    parallel(create, list(range(groups)))
    r = run_tool(h, "ours", cli, h.env({"LAUNCH_TEMPLATE_PARAMETER": PARAMETER}))
    instances = managed * per_group
    assert r["mutating"] == 0, f"a converged fleet was changed: {r['by_action']}"
    bound = 2 + 1 + -(-groups // 100) + -(-instances // 200)
    assert r["calls"] <= bound, f"over 2 + T + ⌈G/100⌉ + ⌈N/200⌉ = {bound}: {r['by_action']}"
    fleet = r["report"]["templates"][0]["fleet"]
    assert fleet["in_service"] == instances and fleet["instances_behind"] == 0, fleet
    print(f"fleet T=1 G={groups} N={instances}: {r['calls']} calls (bound {bound})", file=sys.stderr)
    return r


def rollouts_table(rows):
    lines = [
        "| rolling groups R | in-service instances N | calls (of which `DescribeInstances`, ⌈N/200⌉) | wall ms | CPU ms |",
        "|---:|---:|---|---:|---:|",
    ]
    for row in rows:
        o = row["results"]
        lines.append(
            f"| {row['groups']} | {row['instances']} "
            f"| {median_of(o, 'calls'):.0f} ({o[0]['by_action'].get('ec2:DescribeInstances', 0)}) "
            f"| {median_of(o, 'wall_s') * 1000:.0f} | {median_of(o, 'cpu_s') * 1000:.0f} |"
        )
    return "\n".join(lines)


def call_ceiling(templates, groups):
    """The documented bound of a converged tag-mode run: 2 + T + ceil(G/100)."""
    return 2 + templates + -(-groups // 100)


def many_templates(h, cli, runs, template_counts, group_counts):
    """Converged accounts in tag mode (LAUNCH_TEMPLATE_TAG): ours only, since
    the peer manages one template per deployment."""
    rows = []
    for templates in template_counts:
        for groups in group_counts:
            h.reset_moto()
            fleets = Fleets(h, templates)
            fleets.groups(groups)
            env = h.env({"LAUNCH_TEMPLATE_TAG": f"{TAG[0]}={TAG[1]}"})
            results = []
            for _ in range(runs):
                r = run_tool(h, "ours", cli, env)
                assert r["mutating"] == 0, f"tag mode changed a converged account: {r['by_action']}"
                assert r["calls"] <= call_ceiling(templates, groups), f"T={templates} G={groups}: {r['by_action']}"
                assert len(r["report"]["templates"]) == templates
                results.append(r)
            rows.append({"templates": templates, "groups": groups, "results": results})
            print(f"tag mode T={templates} G={groups}: {median_of(results, 'wall_s'):.2f}s, "
                  f"{median_of(results, 'calls'):.0f} calls", file=sys.stderr)
    return rows


def published(h, cli, template_counts, groups=20):
    """IMAGE_PARAMETER and EVENT_BUS on a converged tag-mode account: once
    the parameters are written, a run makes at most ceil(T/10) calls more
    than without them (GetParameters, ten names each) and writes nothing,
    events included."""
    rows = []
    for templates in template_counts:
        h.reset_moto()
        fleets = Fleets(h, templates)
        fleets.groups(groups)
        base = h.env({"LAUNCH_TEMPLATE_TAG": f"{TAG[0]}={TAG[1]}"})
        without = run_tool(h, "ours", cli, base)
        env = dict(base, IMAGE_PARAMETER="/ami-reconciler/{template_name}/image", EVENT_BUS="ops")
        first = run_tool(h, "ours", cli, env)
        assert first["by_action"].get("ssm:PutParameter") == templates, first["by_action"]
        converged = run_tool(h, "ours", cli, env)
        assert converged["mutating"] == 0, f"a converged run wrote: {converged['by_action']}"
        extra = converged["calls"] - without["calls"]
        assert extra <= -(-templates // 10), f"T={templates}: {extra} calls more: {converged['by_action']}"
        rows.append({"templates": templates, "without": without["calls"], "with": converged["calls"]})
        print(f"publish T={templates}: {without['calls']} calls without, {converged['calls']} with "
              f"(bound +{-(-templates // 10)})", file=sys.stderr)
    return rows


def templates_table(rows):
    lines = [
        "| templates T | groups G | calls (bound 2 + T + ⌈G/100⌉) | wall ms | CPU ms | peak RSS MB |",
        "|---:|---:|---|---:|---:|---:|",
    ]
    for row in rows:
        o = row["results"]
        lines.append(
            f"| {row['templates']} | {row['groups']} "
            f"| {median_of(o, 'calls'):.0f} ({call_ceiling(row['templates'], row['groups'])}) "
            f"| {median_of(o, 'wall_s') * 1000:.0f} | {median_of(o, 'cpu_s') * 1000:.0f} "
            f"| {median_of(o, 'rss_mb'):.1f} |"
        )
    return "\n".join(lines)


def write_block(marker, text):
    """Replaces the text between <!-- marker:start --> and <!-- marker:end --> in docs/performance.md."""
    doc = ROOT / "docs" / "performance.md"
    current = doc.read_text()
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    before, found, rest = current.partition(start)
    if not found:
        raise SystemExit(f"docs/performance.md has no {start}")
    _, _, after = rest.partition(end)
    doc.write_text(f"{before}{start}\n{text}{end}{after}")


# --------------------------------------------------------------------------
# Running a tool
# --------------------------------------------------------------------------

def tool_command(tool, cli):
    if tool == "ours":
        return [cli, "apply", "--output", "json"]
    return [sys.executable, str(PEER), "apply", "--output", "json"]


MEASURE = None  # examples/measure, set in main()


def run_tool(h: Harness, tool, cli, env, rules=None):
    h.reset_calls(rules)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.time()
        t0 = time.perf_counter()
        # Through the small launcher: a child forked from this Python process
        # would report this process's memory as its own peak RSS.
        proc = subprocess.Popen([MEASURE, *tool_command(tool, cli)], env=env, stdout=out, stderr=err)
        proc.wait()
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode()
        stderr, _, usage_line = err.read().decode().rstrip("\n").rpartition("\n")
    usage = json.loads(usage_line)
    if proc.returncode != 0:
        raise SystemExit(f"{tool} exited {proc.returncode}\n{stdout}\n{stderr}")
    doc = h.calls()
    calls = doc["calls"]
    by_action = {}
    for c in calls:
        key = f"{c['service']}:{c['action']}"
        by_action[key] = by_action.get(key, 0) + 1
    return {
        "tool": tool,
        "wall_s": wall,
        "cpu_s": usage["user_s"] + usage["sys_s"],
        "rss_mb": usage["max_rss_kb"] / 1024,
        "calls": len(calls),
        "mutating": sum(1 for c in calls if c["mutating"]),
        "by_action": by_action,
        "peak_mutating_in_flight": doc["peak_in_flight_mutating"],
        "first_request_s": (calls[0]["at"] - started) if calls else None,
        "report": json.loads(stdout) if stdout.strip().startswith("{") else None,
    }


def state_of(h, acct, groups):
    """The part of the account the reconciler changes."""
    versions = []
    for page in h.ec2.get_paginator("describe_launch_template_versions").paginate(LaunchTemplateId=acct.lt, PaginationConfig={"PageSize": 200}):
        versions.extend(page["LaunchTemplateVersions"])
    latest = max(versions, key=lambda v: v["VersionNumber"])
    described = h.asg.describe_auto_scaling_groups(AutoScalingGroupNames=groups)["AutoScalingGroups"]
    def version(g):
        spec = g.get("LaunchTemplate") or g["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"]
        return spec["Version"]
    return {
        "versions": sorted(v["VersionNumber"] for v in versions),
        "default": next(v["VersionNumber"] for v in versions if v["DefaultVersion"]),
        "latest_image": latest["LaunchTemplateData"]["ImageId"],
        "groups": {g["AutoScalingGroupName"]: version(g) for g in described},
    }


def parity(h, cli):
    """The peer passes the same behaviour checks as ours on small cases."""
    for tool in ("ours", "peer"):
        # Drift repair: a pinned managed group, an untagged pinned group, a mixed group whose override pins 3.
        h.reset_moto()
        acct = Account(h)
        golden = acct.image(0, marker=False)
        backups = [acct.image(d) for d in (1, 2, 3)]
        acct.template(golden)
        acct.versions(5, golden)
        acct.set_default(1)
        acct.groups(["web"], "1")
        h.asg.create_auto_scaling_group(
            AutoScalingGroupName="batch", LaunchTemplate={"LaunchTemplateId": acct.lt, "Version": "2"},
            MinSize=0, MaxSize=1, AvailabilityZones=[f"{REGION}a"])
        h.asg.create_auto_scaling_group(
            AutoScalingGroupName="spot", MinSize=0, MaxSize=1, AvailabilityZones=[f"{REGION}a"],
            MixedInstancesPolicy={"LaunchTemplate": {
                "LaunchTemplateSpecification": {"LaunchTemplateId": acct.lt, "Version": "$Default"},
                "Overrides": [{"InstanceType": "t3.micro"}, {"InstanceType": "t3a.micro", "LaunchTemplateSpecification": {"LaunchTemplateId": acct.lt, "Version": "3"}}]},
                "InstancesDistribution": {"OnDemandBaseCapacity": 1}},
            Tags=[{"Key": TAG[0], "Value": TAG[1], "ResourceId": "spot", "ResourceType": "auto-scaling-group", "PropagateAtLaunch": False}])
        env = h.env({"LAUNCH_TEMPLATE_PARAMETER": PARAMETER})
        run_tool(h, tool, cli, env)
        got = state_of(h, acct, ["web", "batch", "spot"])
        want = {"versions": [2, 3, 5, 6, 7], "default": 7, "latest_image": backups[-1],
                "groups": {"web": "$Latest", "batch": "2", "spot": "$Latest"}}
        assert got == want, f"{tool}: drift repair gave {got}, want {want}"
        again = run_tool(h, tool, cli, env)
        assert again["mutating"] == 0, f"{tool}: second run changed {again['by_action']}"
        # Rollback: skip-tag the newest backup; the template returns to the one before.
        h.ec2.create_tags(Resources=[backups[-1]], Tags=[{"Key": "ami-reconciler:skip", "Value": "true"}])
        run_tool(h, tool, cli, env)
        got = state_of(h, acct, ["web"])
        assert got["latest_image"] == backups[-2] and got["default"] == 8, f"{tool}: rollback gave {got}"
        assert got["versions"] == [2, 3, 6, 7, 8], f"{tool}: rollback pruning gave {got}"
        print(f"parity: {tool} passes drift repair, idempotence and rollback", file=sys.stderr)


def median_of(runs, key):
    return statistics.median(r[key] for r in runs)


# --------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------

def steady_state(h, cli, runs, sizes):
    """Converged accounts: the hourly case. Returns rows per (groups, images, versions)."""
    rows = []
    for groups in sizes["groups"]:
        h.reset_moto()
        acct = Account(h)
        # The newest backup is the template's image; the others are older.
        newest = acct.image(10_000)
        acct.template(newest)
        acct.groups([f"web-{i:04d}" for i in range(groups)], "$Latest")
        have_images, have_versions = 1, 1
        for images, versions in sizes["combos"]:
            if images > have_images:
                acct.backups(range(have_images, images))
                have_images = images
            if versions > have_versions:
                acct.versions(versions - have_versions, newest)
                acct.set_default(versions)
                have_versions = versions
            assert images == have_images and versions == have_versions, "combos must grow"
            env = h.env({"LAUNCH_TEMPLATE_PARAMETER": PARAMETER, "KEEP_VERSIONS": str(max(3, versions))})
            results = {"ours": [], "peer": []}
            for _ in range(runs):
                for tool in ("ours", "peer"):
                    r = run_tool(h, tool, cli, env)
                    assert r["mutating"] == 0, f"{tool} changed a converged account: {r['by_action']}"
                    results[tool].append(r)
            rows.append({"groups": groups, "images": images, "versions": versions, "results": results})
            print(f"steady groups={groups} images={images} versions={versions}: "
                  f"ours {median_of(results['ours'], 'wall_s'):.2f}s/{median_of(results['ours'], 'calls')} calls, "
                  f"peer {median_of(results['peer'], 'wall_s'):.2f}s/{median_of(results['peer'], 'calls')} calls", file=sys.stderr)
    return rows


def drift_repair(h, cli, runs, group_counts, latency_ms):
    """Groups pinned to an old version, a new backup, 50 stale versions."""
    rows = []
    rules = [{"fault": "hang", "delay_ms": latency_ms}] if latency_ms else None
    for groups in group_counts:
        results = {"ours": [], "peer": []}
        for _ in range(runs):
            for tool in ("ours", "peer"):
                h.reset_moto()
                acct = Account(h)
                old = acct.image(1)
                acct.template(old)
                acct.versions(50, old)
                acct.set_default(1)
                acct.groups([f"web-{i:04d}" for i in range(groups)], "1")
                acct.image(2)
                env = h.env({"LAUNCH_TEMPLATE_PARAMETER": PARAMETER})
                r = run_tool(h, tool, cli, env, rules)
                updates = r["by_action"].get("autoscaling:UpdateAutoScalingGroup", 0)
                assert updates == groups, f"{tool} updated {updates} of {groups} groups"
                results[tool].append(r)
        rows.append({"groups": groups, "latency_ms": latency_ms, "results": results})
        print(f"drift groups={groups} latency={latency_ms}ms: ours {median_of(results['ours'], 'wall_s'):.2f}s, "
              f"peer {median_of(results['peer'], 'wall_s'):.2f}s", file=sys.stderr)
    return rows


class FakeRuntime(BaseHTTPRequestHandler):
    """The Lambda Runtime API, enough for one invocation of `{}`."""

    served = 0
    done = threading.Event()

    def log_message(self, *args):
        pass

    def do_GET(self):
        if FakeRuntime.served:
            # A second `next`: the function is idle; leave it waiting.
            time.sleep(30)
            return
        FakeRuntime.served += 1
        body = b"{}"
        self.send_response(200)
        self.send_header("Lambda-Runtime-Aws-Request-Id", "bench-1")
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 300_000))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:bench")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()
        FakeRuntime.done.set()


def lambda_startup(h, lambda_bin, runs):
    """Process start to first AWS request for the Lambda binary, and to the reply."""
    h.reset_moto()
    acct = Account(h)
    acct.template(acct.image(1))
    results = []
    for _ in range(runs):
        FakeRuntime.served = 0
        FakeRuntime.done.clear()
        server = HTTPServer(("127.0.0.1", 0), FakeRuntime)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        env = h.env({"LAUNCH_TEMPLATE_PARAMETER": PARAMETER})
        env.update({
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_port}",
            "AWS_LAMBDA_FUNCTION_NAME": "bench", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_LAMBDA_LOG_LEVEL": "error",
        })
        h.reset_calls()
        started = time.time()
        proc = subprocess.Popen([lambda_bin], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        FakeRuntime.done.wait(30)
        answered = time.time() - started
        proc.kill()
        proc.wait()
        server.shutdown()
        calls = h.calls()["calls"]
        results.append({"first_request_s": calls[0]["at"] - started, "invocation_s": answered})
    return results


def peer_startup_only(runs):
    """Interpreter start + boto3 import, without any call (a lower bound for the peer)."""
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import boto3; boto3.client('ec2', region_name='us-east-1')"], check=True)
        samples.append(time.perf_counter() - t0)
    return samples


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------

def ratio(a, b):
    return f"{a / b:.1f}x" if b else "n/a"


def steady_table(rows):
    lines = [
        "| groups | images | versions | calls ours / peer | wall ms ours / peer | CPU ms ours / peer (ratio) | peak RSS MB ours / peer (ratio) |",
        "|---:|---:|---:|---|---|---|---|",
    ]
    for row in rows:
        o, p = row["results"]["ours"], row["results"]["peer"]
        lines.append(
            f"| {row['groups']} | {row['images']} | {row['versions']} "
            f"| {median_of(o, 'calls'):.0f} / {median_of(p, 'calls'):.0f} "
            f"| {median_of(o, 'wall_s') * 1000:.0f} / {median_of(p, 'wall_s') * 1000:.0f} "
            f"| {median_of(o, 'cpu_s') * 1000:.0f} / {median_of(p, 'cpu_s') * 1000:.0f} ({ratio(median_of(p, 'cpu_s'), median_of(o, 'cpu_s'))}) "
            f"| {median_of(o, 'rss_mb'):.1f} / {median_of(p, 'rss_mb'):.1f} ({ratio(median_of(p, 'rss_mb'), median_of(o, 'rss_mb'))}) |"
        )
    return "\n".join(lines)


def calls_list(row):
    r = row["results"]["ours"][0]
    return ", ".join(f"{k} x{v}" for k, v in sorted(r["by_action"].items()))


def drift_table(rows):
    lines = [
        "| groups | simulated latency | wall s ours / peer (speed-up) | calls ours / peer | mutating ours / peer | peak mutating in flight ours / peer | CPU s ours / peer |",
        "|---:|---:|---|---|---|---|---|",
    ]
    for row in rows:
        o, p = row["results"]["ours"], row["results"]["peer"]
        lines.append(
            f"| {row['groups']} | {row['latency_ms']} ms "
            f"| {median_of(o, 'wall_s'):.2f} / {median_of(p, 'wall_s'):.2f} ({ratio(median_of(p, 'wall_s'), median_of(o, 'wall_s'))}) "
            f"| {median_of(o, 'calls'):.0f} / {median_of(p, 'calls'):.0f} "
            f"| {median_of(o, 'mutating'):.0f} / {median_of(p, 'mutating'):.0f} "
            f"| {max(r['peak_mutating_in_flight'] for r in o)} / {max(r['peak_mutating_in_flight'] for r in p)} "
            f"| {median_of(o, 'cpu_s'):.2f} / {median_of(p, 'cpu_s'):.2f} |"
        )
    return "\n".join(lines)


def svg_chart(rows, path):
    """Wall time and calls against tagged groups (images 10, versions 3), both tools."""
    points = [r for r in rows if r["images"] == min(x["images"] for x in rows) and r["versions"] == min(x["versions"] for x in rows)]
    series = {
        "ours wall ms": ([r["groups"] for r in points], [median_of(r["results"]["ours"], "wall_s") * 1000 for r in points], "#1f77b4"),
        "peer wall ms": ([r["groups"] for r in points], [median_of(r["results"]["peer"], "wall_s") * 1000 for r in points], "#d62728"),
        "ours CPU ms": ([r["groups"] for r in points], [median_of(r["results"]["ours"], "cpu_s") * 1000 for r in points], "#2ca02c"),
        "peer CPU ms": ([r["groups"] for r in points], [median_of(r["results"]["peer"], "cpu_s") * 1000 for r in points], "#ff7f0e"),
    }
    import math
    w, hgt, pad = 640, 360, 60
    xs = sorted({x for s in series.values() for x in s[0]})
    ymax = max(max(s[1]) for s in series.values()) * 1.1
    def px(x):
        lx = [math.log10(max(v, 1)) for v in xs]
        span = (max(lx) - min(lx)) or 1
        return pad + (math.log10(max(x, 1)) - min(lx)) / span * (w - 2 * pad)
    def py(y):
        return hgt - pad + 0 - y / ymax * (hgt - 2 * pad)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{hgt}" font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{hgt}" fill="white"/>',
           f'<text x="{w / 2}" y="20" text-anchor="middle">Steady state: time per run vs tagged groups (median of runs)</text>',
           f'<line x1="{pad}" y1="{hgt - pad}" x2="{w - pad}" y2="{hgt - pad}" stroke="black"/>',
           f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{hgt - pad}" stroke="black"/>']
    for x in xs:
        out.append(f'<text x="{px(x)}" y="{hgt - pad + 16}" text-anchor="middle">{x}</text>')
    for i in range(5):
        y = ymax * i / 4
        out.append(f'<text x="{pad - 6}" y="{py(y) + 4}" text-anchor="end">{y:.0f}</text>')
    out.append(f'<text x="{w / 2}" y="{hgt - 15}" text-anchor="middle">tagged groups (log scale)</text>')
    for n, (name, (sx, sy, color)) in enumerate(series.items()):
        pts = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(sx, sy))
        out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2"/>')
        for x, y in zip(sx, sy):
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{color}"/>')
        out.append(f'<text x="{pad + 10}" y="{pad + 14 * n}" fill="{color}">{name}</text>')
    out.append("</svg>")
    path.write_text("\n".join(out) + "\n")


def templates_text(rows, runs):
    return (
        f"Machine: {os.cpu_count()} cores, {platform.platform()}. Medians of {runs} runs per case; "
        "converged accounts in tag mode, every call counted by the proxy.\n\n"
        + templates_table(rows) + "\n\n"
        + "Calls of one run at T = 10, G = 1,000: "
        + ", ".join(f"{k} x{v}" for k, v in sorted(next(r for r in rows if r['templates'] == 10 and r['groups'] == 1000)['results'][0]['by_action'].items()))
        + ".\n"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small cases, one run, assertions (CI)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cli", default=str(ROOT / "target" / "release" / "ami-reconciler"))
    parser.add_argument("--lambda-bin", default=None)
    parser.add_argument("--measure", default=None, help="the examples/measure launcher (default: next to --cli)")
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--only-templates", action="store_true", help="only the tag-mode (many templates) table")
    parser.add_argument("--only-fleet", action="store_true",
                        help="only the call counts of the fleet read (groups, instances behind), any build")
    args = parser.parse_args()
    lambda_bin = args.lambda_bin or str(Path(args.cli).with_name("ami-reconciler-lambda"))
    global MEASURE
    MEASURE = args.measure or str(Path(args.cli).parent / "examples" / "measure")

    h = Harness()
    try:
        if args.quick:
            parity(h, args.cli)
            rows = steady_state(h, args.cli, 1, {"groups": [100], "combos": [(10, 3)]})
            for tool in ("ours", "peer"):
                r = rows[0]["results"][tool][0]
                print(f"{tool}: {r['calls']} calls ({', '.join(f'{k} x{v}' for k, v in sorted(r['by_action'].items()))})")
            ours = rows[0]["results"]["ours"][0]
            assert ours["calls"] <= 5, f"steady state over the floor: {ours['by_action']}"
            assert ours["mutating"] == 0
            drift = drift_repair(h, args.cli, 1, [20], 0)
            assert drift[0]["results"]["ours"][0]["peak_mutating_in_flight"] <= 4
            many_templates(h, args.cli, 1, [3], [150])
            rollouts(h, args.cli, 1, [(3, 2)])
            fleet_steady(h, args.cli)
            published(h, args.cli, [3, 12])
            print("quick benchmark: call-count floor and zero mutating calls hold")
            return
        if args.only_fleet:
            lines = [
                "| groups G (managed) | in-service instances N | calls (bound 2 + T + ⌈G/100⌉ + ⌈N/200⌉) | of which |",
                "|---:|---:|---|---|",
            ]
            for groups, managed, per_group in [(100, 50, 4), (1000, 250, 4), (1000, 500, 4)]:
                r = fleet_steady(h, args.cli, groups, managed, per_group)
                bound = 3 + -(-groups // 100) + -(-(managed * per_group) // 200)
                of = ", ".join(f"`{k.split(':')[1]}` x{v}" for k, v in sorted(r["by_action"].items()))
                lines.append(f"| {groups:,} ({managed}) | {managed * per_group:,} | {r['calls']} (bound {bound}) | {of} |")
            print("\n".join(lines))
            return
        if args.only_templates:
            tagged = many_templates(h, args.cli, args.runs, [1, 10, 50], [100, 1000])
            rolled = rollouts(h, args.cli, args.runs, [(10, 5), (100, 4)])
            text = templates_text(tagged, args.runs)
            print(text)
            print(rollouts_table(rolled))
            if args.write_docs:
                write_block("templates", text)
                write_block("rollouts", rollouts_table(rolled) + "\n")
            return
        parity(h, args.cli)
        runs = args.runs
        steady = steady_state(h, args.cli, runs, {"groups": [1, 100, 1000], "combos": [(10, 3), (10, 150), (500, 150)]})
        drift = drift_repair(h, args.cli, runs, [250, 1000], 0)
        drift_latency = drift_repair(h, args.cli, runs, [250], 50)
        tagged = many_templates(h, args.cli, runs, [1, 10, 50], [100, 1000])
        rolled = rollouts(h, args.cli, runs, [(10, 5), (100, 4)])
        lam = lambda_startup(h, lambda_bin, runs) if Path(lambda_bin).exists() else []
        py_start = peer_startup_only(runs)
    finally:
        h.stop()

    first_ours = [r["first_request_s"] for row in steady for r in row["results"]["ours"]]
    first_peer = [r["first_request_s"] for row in steady for r in row["results"]["peer"]]
    results = {
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "runs": runs, "steady": steady, "drift": drift + drift_latency, "templates": tagged, "rollouts": rolled, "lambda_startup": lam, "peer_import_s": py_start,
    }
    out_dir = ROOT / "benchmark" / "results"
    out_dir.mkdir(exist_ok=True)
    for rows in (steady, drift, drift_latency):
        for row in rows:
            for rs in row["results"].values():
                for r in rs:
                    r.pop("report", None)
    for row in tagged + rolled:
        for r in row["results"]:
            r.pop("report", None)
    (out_dir / "latest.json").write_text(json.dumps(results, indent=1))

    text = [
        f"Machine: {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}. "
        f"Medians of {runs} runs per case, tools alternating.",
        "",
        "### Steady state (converged account: the hourly case)",
        "",
        steady_table(steady),
        "",
        f"Calls of one steady-state run of ours at 100 groups: {calls_list(next(r for r in steady if r['groups'] == 100))}.",
        "",
        "### Drift repair (groups pinned to version 1, a new backup, 50 stale versions)",
        "",
        drift_table(drift + drift_latency),
        "",
        "### Start-up (process start to first AWS request)",
        "",
        f"- ami-reconciler CLI: median {statistics.median(first_ours) * 1000:.0f} ms; "
        f"peer (python + boto3): median {statistics.median(first_peer) * 1000:.0f} ms "
        f"({ratio(statistics.median(first_peer), statistics.median(first_ours))}).",
    ]
    if lam:
        text.append(
            f"- ami-reconciler-lambda under a local Runtime API: first AWS request after "
            f"{statistics.median(r['first_request_s'] for r in lam) * 1000:.0f} ms, invocation answered after "
            f"{statistics.median(r['invocation_s'] for r in lam) * 1000:.0f} ms (median)."
        )
    text.append(f"- `python -c 'import boto3; boto3.client(\"ec2\")'` alone: median {statistics.median(py_start) * 1000:.0f} ms.")
    report = "\n".join(text) + "\n"
    print(report)
    if args.write_docs:
        svg_chart(steady, ROOT / "docs" / "performance-scaling.svg")
        write_block("templates", templates_text(tagged, runs))
        write_block("rollouts", rollouts_table(rolled) + "\n")
        write_block("results", report)


if __name__ == "__main__":
    main()
