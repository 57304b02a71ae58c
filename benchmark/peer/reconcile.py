#!/usr/bin/env python3
"""The peer: the same reconciler written the way an operator would with boto3.

This is what users would otherwise run (the original event-driven Lambdas,
extended to reconcile): paginators, boto3's standard retries, sequential group
updates. It takes the same settings as ami-reconciler (environment variables)
and the same subcommands (plan / apply, --output json), so the benchmark and
its parity check drive both tools the same way.
"""

import argparse
import json
import os
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

SKIP_TAG = "ami-reconciler:skip"


def env(name, default=None):
    value = os.environ.get(name, "")
    return value if value.strip() else default


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["plan", "apply"])
    parser.add_argument("--output", choices=["text", "json"], default="text")
    args = parser.parse_args()
    dry_run = args.command == "plan"

    marker = env("AMI_DESCRIPTION_MARKER", "EC2_BACKUP")
    tag_key, _, tag_value = env("ASG_TAG", "ami-reconciler:managed=true").partition("=")
    keep = int(env("KEEP_VERSIONS", "3"))

    config = Config(retries={"mode": "standard", "max_attempts": 8})
    ec2 = boto3.client("ec2", config=config)
    autoscaling = boto3.client("autoscaling", config=config)

    template_id = env("LAUNCH_TEMPLATE_ID")
    if not template_id:
        ssm = boto3.client("ssm", config=config)
        template_id = ssm.get_parameter(Name=env("LAUNCH_TEMPLATE_PARAMETER"))["Parameter"]["Value"]

    # Backups: owned by the account, available, marker in the description.
    images = []
    for page in ec2.get_paginator("describe_images").paginate(
        Owners=["self"],
        Filters=[
            {"Name": "description", "Values": [f"*{marker}*"]},
            {"Name": "state", "Values": ["available"]},
        ],
        PaginationConfig={"PageSize": 1000},
    ):
        images.extend(page["Images"])

    def skipped(image):
        return any(t["Key"] == SKIP_TAG and t["Value"].lower() == "true" for t in image.get("Tags", []))

    candidates = [
        i for i in images
        if i["State"] == "available" and marker in i.get("Description", "") and not skipped(i)
    ]
    newest = max(candidates, key=lambda i: (i["CreationDate"], i["ImageId"]), default=None)

    versions = []
    for page in ec2.get_paginator("describe_launch_template_versions").paginate(
        LaunchTemplateId=template_id, PaginationConfig={"PageSize": 200}
    ):
        versions.extend(page["LaunchTemplateVersions"])
    latest = max(versions, key=lambda v: v["VersionNumber"])
    default = next(v["VersionNumber"] for v in versions if v["DefaultVersion"])
    current_id = latest["LaunchTemplateData"].get("ImageId", "")

    changes, applied, failed, warnings = [], [], [], []

    create = False
    if newest and not current_id.startswith("resolve:ssm:") and current_id != newest["ImageId"]:
        current = next((i for i in images if i["ImageId"] == current_id), None)
        if current is None:
            try:
                found = ec2.describe_images(ImageIds=[current_id])["Images"]
                current = found[0] if found else None
            except ClientError:
                current = None
        unusable = current is not None and current["State"] in ("failed", "error", "deregistered", "disabled", "invalid", "transient")
        if current is None or skipped(current) or unusable or current["CreationDate"] < newest["CreationDate"]:
            create = True
        else:
            warnings.append(f"{current_id} is not older than {newest['ImageId']}; not moving backwards")

    if create:
        changes.append({"action": "create_version", "to_image": newest["ImageId"]})
    if create or default != latest["VersionNumber"]:
        changes.append({"action": "set_default_version"})

    managed = []
    for page in autoscaling.get_paginator("describe_auto_scaling_groups").paginate(
        Filters=[{"Name": f"tag:{tag_key}", "Values": [tag_value]}], PaginationConfig={"PageSize": 100}
    ):
        managed.extend(page["AutoScalingGroups"])

    def spec_of(group):
        if "LaunchTemplate" in group:
            return group["LaunchTemplate"]
        policy = group.get("MixedInstancesPolicy")
        if policy:
            return policy["LaunchTemplate"]["LaunchTemplateSpecification"]
        return None

    to_update = []
    for group in managed:
        spec = spec_of(group)
        if spec is None:
            warnings.append(f"group {group['AutoScalingGroupName']} has no launch template; skipped")
        elif spec.get("Version") != "$Latest":
            to_update.append(group)
            changes.append({"action": "update_group", "group": group["AutoScalingGroupName"]})

    # Prune: keep the newest `keep` (counting a new version), the default, and
    # whatever any group pins by number.
    numbers = sorted((v["VersionNumber"] for v in versions), reverse=True)
    beyond = numbers[keep - 1 if create else keep:]
    new_default = None if create else latest["VersionNumber"]
    beyond = [n for n in beyond if n != new_default]
    if beyond:
        pinned = set()
        moving = {g["AutoScalingGroupName"] for g in to_update}
        for page in autoscaling.get_paginator("describe_auto_scaling_groups").paginate(PaginationConfig={"PageSize": 100}):
            for group in page["AutoScalingGroups"]:
                specs = []
                if "LaunchTemplate" in group:
                    specs.append((group["LaunchTemplate"], True))
                policy = group.get("MixedInstancesPolicy")
                if policy:
                    lt = policy["LaunchTemplate"]
                    specs.append((lt["LaunchTemplateSpecification"], True))
                    specs += [(o["LaunchTemplateSpecification"], False) for o in lt.get("Overrides", []) if "LaunchTemplateSpecification" in o]
                for spec, top in specs:
                    if spec.get("LaunchTemplateId") != template_id:
                        continue
                    if top and group["AutoScalingGroupName"] in moving:
                        continue
                    if spec.get("Version", "").isdigit():
                        pinned.add(int(spec["Version"]))
        beyond = sorted(n for n in beyond if n not in pinned)
        if beyond:
            changes.append({"action": "delete_versions", "versions": beyond})

    if not dry_run:
        created = None
        if create:
            try:
                out = ec2.create_launch_template_version(
                    LaunchTemplateId=template_id,
                    SourceVersion=str(latest["VersionNumber"]),
                    LaunchTemplateData={"ImageId": newest["ImageId"]},
                    VersionDescription=f"backup {newest['ImageId']}",
                    ClientToken=f"{template_id}-v{latest['VersionNumber']}-{newest['ImageId']}",
                )
                created = out["LaunchTemplateVersion"]["VersionNumber"]
                applied.append("create_version")
            except ClientError as e:
                failed.append(f"create_version: {e}")
        target = created if create else latest["VersionNumber"]
        if target is not None and (create or default != target):
            try:
                ec2.modify_launch_template(LaunchTemplateId=template_id, DefaultVersion=str(target))
                applied.append("set_default_version")
            except ClientError as e:
                failed.append(f"set_default_version: {e}")
        group_failed = False
        for group in to_update:
            name = group["AutoScalingGroupName"]
            try:
                if "LaunchTemplate" in group:
                    autoscaling.update_auto_scaling_group(
                        AutoScalingGroupName=name,
                        LaunchTemplate={"LaunchTemplateId": group["LaunchTemplate"]["LaunchTemplateId"], "Version": "$Latest"},
                    )
                else:
                    policy = group["MixedInstancesPolicy"]
                    lt = policy["LaunchTemplate"]
                    spec = lt["LaunchTemplateSpecification"]
                    lt["LaunchTemplateSpecification"] = {"LaunchTemplateId": spec["LaunchTemplateId"], "Version": "$Latest"}
                    for o in lt.get("Overrides", []):
                        s = o.get("LaunchTemplateSpecification")
                        if s:
                            o["LaunchTemplateSpecification"] = {"LaunchTemplateId": s["LaunchTemplateId"], "Version": s.get("Version", "$Default")}
                    autoscaling.update_auto_scaling_group(AutoScalingGroupName=name, MixedInstancesPolicy=policy)
                applied.append(f"update_group {name}")
            except ClientError as e:
                group_failed = True
                failed.append(f"update_group {name}: {e}")
        delete = next((c["versions"] for c in changes if c["action"] == "delete_versions"), [])
        if delete and not failed and not group_failed:
            for i in range(0, len(delete), 200):
                try:
                    out = ec2.delete_launch_template_versions(
                        LaunchTemplateId=template_id, Versions=[str(n) for n in delete[i:i + 200]]
                    )
                    for v in out.get("UnsuccessfullyDeletedLaunchTemplateVersions", []):
                        warnings.append(f"version {v['VersionNumber']}: {v['ResponseError']['Code']}")
                    applied.append("delete_versions")
                except ClientError as e:
                    failed.append(f"delete_versions: {e}")

    report = {"dry_run": dry_run, "changes": changes, "applied": applied, "failed": failed, "warnings": warnings}
    if args.output == "json":
        print(json.dumps(report))
    else:
        for c in changes:
            print(c)
        print(f"{len(changes)} changes, {len(applied)} applied, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
