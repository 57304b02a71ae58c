"""Self-check of the test harness: spawns harness.py and asserts every gap fill and fault.

Run as ``python selfcheck.py`` with the packages of requirements.txt installed.
Prints one line per check and exits non-zero on the first failure.
"""

from __future__ import annotations

import base64
import datetime
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request

import boto3
import botocore.exceptions
from botocore.config import Config

HERE = os.path.dirname(os.path.abspath(__file__))


class Harness:
    def __init__(self) -> None:
        started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "harness.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        ports = json.loads(self.proc.stdout.readline())
        self.ready_seconds = time.monotonic() - started
        self.proxy, self.moto = ports["proxy"], ports["moto"]
        self.url = f"http://127.0.0.1:{self.proxy}"

    def client(self, service: str, attempts: int = 1, read_timeout: float = 30, validate: bool = True,
               key: tuple[str, str] = ("AKIDSELFCHECK", "secret"), region: str = "us-east-1"):
        """A client through the proxy. ``validate=False`` sends out-of-range
        values (as the Rust SDK does: it checks no ranges), so the server's own
        validation is what answers; ``key`` is (access key id, secret)."""
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=region,
            aws_access_key_id=key[0],
            aws_secret_access_key=key[1],
            config=Config(
                retries={"total_max_attempts": attempts, "mode": "standard"},
                read_timeout=read_timeout,
                connect_timeout=5,
                parameter_validation=validate,
            ),
        )

    def user(self, name: str, statements: list[dict]):
        """An IAM user with these inline policy statements; an Auto Scaling client signed with its key."""
        iam = self.client("iam")
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="p",
                            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return self.client("autoscaling", key=(key["AccessKeyId"], key["SecretAccessKey"]))

    def reset_auth(self, count: bytes) -> None:
        """moto's IAM enforcement: checked after ``count`` more requests (b"0": from now on, b"inf": never)."""
        request = urllib.request.Request(self.url + "/moto-api/reset-auth", data=count, method="POST",
                                         headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(request) as response:
            response.read()
            assert response.status == 200, response.status

    def control(self, method: str, path: str, payload: object | None = None):
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        try:
            with urllib.request.urlopen(request) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def faults(self, *rules: dict) -> None:
        status, _ = self.control("POST", "/_harness/faults", {"rules": list(rules)})
        assert status == 200

    def calls(self) -> dict:
        return self.control("GET", "/_harness/calls")[1]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


def run_checks(h: Harness, *checks) -> None:
    """Runs each check on the harness, then closes it (also on a failure)."""
    try:
        for one in checks:
            one(h)
    finally:
        h.close()


_last_check = time.monotonic()


def check(name: str) -> None:
    # With its duration since the previous check: the selfcheck must stay fast.
    global _last_check
    now = time.monotonic()
    print(f"ok  {name} ({(now - _last_check) * 1000:.0f} ms)", flush=True)
    _last_check = now


def client_error(fn, *args, **kwargs) -> botocore.exceptions.ClientError:
    try:
        fn(*args, **kwargs)
    except botocore.exceptions.ClientError as err:
        return err
    raise AssertionError(f"{fn.__name__} did not fail")


def fails_with(code: str, fn, *args, **kwargs) -> botocore.exceptions.ClientError:
    """Calls fn, which must fail with the error ``code``; returns the error."""
    err = client_error(fn, *args, **kwargs)
    assert err.response["Error"]["Code"] == code, err.response
    return err


def error_of(fn, *args, **kwargs) -> tuple[int, str, str]:
    """Calls fn, which must fail: (HTTP status, error code, message)."""
    err = client_error(fn, *args, **kwargs)
    return err.response["ResponseMetadata"]["HTTPStatusCode"], err.response["Error"]["Code"], err.response["Error"]["Message"]


def pages_of(fn, key: str, field: str, **kwargs) -> list[list]:
    """A paged call followed through NextToken to the end: per page, the
    ``field`` of each item of the answer's ``key`` list."""
    pages, token = [], None
    while True:
        page = fn(**kwargs, **({"NextToken": token} if token else {}))
        pages.append([item[field] for item in page[key]])
        token = page.get("NextToken")
        if not token:
            return pages


def raw_body_of(client, operation: str, fn, *args, **kwargs) -> tuple[int, bytes]:
    """Call fn and capture the raw HTTP response of `operation`."""
    seen: dict = {}

    def grab(response_dict, **_):
        seen["status"] = response_dict["status_code"]
        seen["body"] = response_dict["body"]

    event = f"before-parse.{client.meta.service_model.service_id.hyphenize()}.{operation}"
    client.meta.events.register(event, grab)
    try:
        fn(*args, **kwargs)
    except botocore.exceptions.ClientError:
        pass
    finally:
        client.meta.events.unregister(event, grab)
    return seen["status"], seen["body"]


def group_of(asg, name: str) -> dict:
    """The Auto Scaling group as DescribeAutoScalingGroups describes it."""
    return asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]


def versions_of(ec2, template_id: str, **kwargs) -> list[int]:
    found = ec2.describe_launch_template_versions(LaunchTemplateId=template_id, **kwargs)
    return [v["VersionNumber"] for v in found["LaunchTemplateVersions"]]


def check_launch_templates(h: Harness) -> None:
    ec2 = h.client("ec2")
    user_data = base64.b64encode(b"#!/bin/sh\necho hi\n").decode()
    lt = ec2.create_launch_template(
        LaunchTemplateName="web",
        LaunchTemplateData={"ImageId": "ami-11111111", "InstanceType": "t3.micro", "UserData": user_data},
    )["LaunchTemplate"]
    tid = lt["LaunchTemplateId"]
    for image in ("ami-22222222", "ami-33333333", "ami-44444444"):
        ec2.create_launch_template_version(LaunchTemplateId=tid, LaunchTemplateData={"ImageId": image})
    assert versions_of(ec2, tid) == [1, 2, 3, 4]

    # DeleteLaunchTemplateVersions, dispatched to the new response method.
    deleted = ec2.delete_launch_template_versions(LaunchTemplateId=tid, Versions=["2", "3"])
    assert [d["VersionNumber"] for d in deleted["SuccessfullyDeletedLaunchTemplateVersions"]] == [2, 3]
    assert deleted["SuccessfullyDeletedLaunchTemplateVersions"][0]["LaunchTemplateName"] == "web"
    assert deleted["UnsuccessfullyDeletedLaunchTemplateVersions"] == []
    check("DeleteLaunchTemplateVersions deletes")

    # Numbers are never reused.
    new = ec2.create_launch_template_version(LaunchTemplateId=tid, LaunchTemplateData={"ImageId": "ami-55555555"})
    assert new["LaunchTemplateVersion"]["VersionNumber"] == 5
    assert "Warning" not in new
    assert versions_of(ec2, tid) == [1, 4, 5]
    assert versions_of(ec2, tid, Versions=["$Latest"]) == [5]
    assert versions_of(ec2, tid, Versions=["$Default"]) == [1]
    assert versions_of(ec2, tid, Versions=["5", "$Latest", "1"]) == [1, 5]
    fails_with("InvalidLaunchTemplateId.VersionNotFound",
               ec2.describe_launch_template_versions, LaunchTemplateId=tid, Versions=["3"])
    ec2.modify_launch_template(LaunchTemplateId=tid, DefaultVersion="4")
    fails_with("InvalidLaunchTemplateId.VersionNotFound",
               ec2.modify_launch_template, LaunchTemplateId=tid, DefaultVersion="2")
    described = ec2.describe_launch_templates(LaunchTemplateIds=[tid])["LaunchTemplates"][0]
    assert (described["DefaultVersionNumber"], described["LatestVersionNumber"]) == (4, 5)
    assert versions_of(ec2, tid, Versions=["$Default"]) == [4]
    check("version numbers are stable after deletions")

    # Default version and unknown versions are refused per version.
    status, raw = raw_body_of(
        ec2, "DeleteLaunchTemplateVersions",
        ec2.delete_launch_template_versions, LaunchTemplateName="web", Versions=["4", "3", "5"],
    )
    print("    wire:", status, raw.decode())
    assert status == 200
    assert versions_of(ec2, tid) == [1, 4]
    result = ec2.delete_launch_template_versions(LaunchTemplateName="web", Versions=["4", "3"])
    failed = {f["VersionNumber"]: f["ResponseError"] for f in result["UnsuccessfullyDeletedLaunchTemplateVersions"]}
    assert failed[4]["Code"] == "unexpectedError", failed
    assert failed[3]["Code"] == "launchTemplateVersionDoesNotExist", failed
    assert result["SuccessfullyDeletedLaunchTemplateVersions"] == []
    err = fails_with(
        "InvalidParameterValue",
        ec2.delete_launch_template_versions, LaunchTemplateId=tid, Versions=[str(n) for n in range(1, 202)],
    )
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    for kwargs, code in (
        ({"LaunchTemplateId": "lt-0123456789abcdef0"}, "launchTemplateIdDoesNotExist"),
        ({"LaunchTemplateId": "bogus"}, "launchTemplateIdMalformed"),
        ({"LaunchTemplateName": "nope"}, "launchTemplateNameDoesNotExist"),
    ):
        result = ec2.delete_launch_template_versions(Versions=["2"], **kwargs)
        entry = result["UnsuccessfullyDeletedLaunchTemplateVersions"][0]
        assert entry["ResponseError"]["Code"] == code and entry["VersionNumber"] == 2, result
    check("DeleteLaunchTemplateVersions refuses the default, unknown versions and templates, >200 versions")

    # SourceVersion: inherit everything but the keys sent.
    v6 = ec2.create_launch_template_version(
        LaunchTemplateId=tid, SourceVersion="1", LaunchTemplateData={"ImageId": "ami-66666666"}
    )["LaunchTemplateVersion"]
    assert v6["VersionNumber"] == 6
    data = v6["LaunchTemplateData"]
    assert data["ImageId"] == "ami-66666666" and data["InstanceType"] == "t3.micro", data
    assert data["UserData"] == user_data, data
    v7 = ec2.create_launch_template_version(
        LaunchTemplateId=tid, SourceVersion="$Latest", LaunchTemplateData={"InstanceType": "m5.large"}
    )["LaunchTemplateVersion"]["LaunchTemplateData"]
    assert v7["ImageId"] == "ami-66666666" and v7["InstanceType"] == "m5.large", v7
    v8 = ec2.create_launch_template_version(
        LaunchTemplateId=tid, SourceVersion="$Default", LaunchTemplateData={}
    )["LaunchTemplateVersion"]["LaunchTemplateData"]
    assert v8.get("ImageId") == "ami-44444444" and "InstanceType" not in v8, v8
    plain = ec2.create_launch_template_version(
        LaunchTemplateId=tid, LaunchTemplateData={"ImageId": "ami-77777777"}
    )["LaunchTemplateVersion"]["LaunchTemplateData"]
    assert plain == {"ImageId": "ami-77777777"}, plain
    fails_with(
        "InvalidLaunchTemplateId.VersionNotFound",
        ec2.create_launch_template_version, LaunchTemplateId=tid, SourceVersion="2", LaunchTemplateData={},
    )
    check("CreateLaunchTemplateVersion honours SourceVersion")

    # ClientToken idempotency.
    first = ec2.create_launch_template_version(
        LaunchTemplateId=tid, ClientToken="tok-1", SourceVersion="1", LaunchTemplateData={"ImageId": "ami-88888888"}
    )["LaunchTemplateVersion"]
    again = ec2.create_launch_template_version(
        LaunchTemplateName="web", ClientToken="tok-1", SourceVersion="1", LaunchTemplateData={"ImageId": "ami-88888888"}
    )["LaunchTemplateVersion"]
    assert first["VersionNumber"] == again["VersionNumber"] == 10, (first, again)
    assert versions_of(ec2, tid, Versions=["$Latest"]) == [10]
    status, raw = raw_body_of(
        ec2, "CreateLaunchTemplateVersion", ec2.create_launch_template_version,
        LaunchTemplateId=tid, ClientToken="tok-1", LaunchTemplateData={"ImageId": "ami-99999999"},
    )
    print("    wire:", status, raw.decode())
    assert status == 400 and b"<Code>IdempotentParameterMismatch</Code>" in raw
    assert versions_of(ec2, tid, Versions=["$Latest"]) == [10]
    check("CreateLaunchTemplateVersion honours ClientToken")

    # Paging of versions.
    numbers = versions_of(ec2, tid)
    assert numbers == [1, 4, 6, 7, 8, 9, 10], numbers
    pages = pages_of(ec2.describe_launch_template_versions, "LaunchTemplateVersions", "VersionNumber",
                     LaunchTemplateId=tid, MaxResults=4)
    assert pages == [numbers[:4], numbers[4:]], pages
    for bad in (0, 201):
        fails_with("InvalidParameterValue", ec2.describe_launch_template_versions, LaunchTemplateId=tid, MaxResults=bad)
    fails_with("InvalidPaginationToken",
               ec2.describe_launch_template_versions, LaunchTemplateId=tid, MaxResults=5, NextToken="junk")
    paginated = [
        v["VersionNumber"]
        for p in ec2.get_paginator("describe_launch_template_versions").paginate(
            LaunchTemplateId=tid, PaginationConfig={"PageSize": 2}
        )
        for v in p["LaunchTemplateVersions"]
    ]
    assert paginated == numbers
    # What the code under test does not use fails loudly instead of being
    # ignored (moto ignored Filters, counted Min/MaxVersion by position).
    for kwargs in (
        {"Filters": [{"Name": "is-default-version", "Values": ["true"]}]},
        {"MinVersion": "4"},
        {"Versions": ["$Latest"], "LaunchTemplateId": None},
    ):
        call = {"LaunchTemplateId": tid, **kwargs}
        call = {k: v for k, v in call.items() if v is not None}
        err = client_error(ec2.describe_launch_template_versions, **call)
        assert err.response["Error"]["Code"] == "NotEmulated", (kwargs, err.response)
    check("DescribeLaunchTemplateVersions pages, ordered by number; unused options fail loudly")

    # A ClientToken whose version was deleted since: the same number again.
    token_version = ec2.create_launch_template_version(
        LaunchTemplateId=tid, ClientToken="tok-gone", LaunchTemplateData={"ImageId": "ami-0000000a"}
    )["LaunchTemplateVersion"]["VersionNumber"]
    ec2.delete_launch_template_versions(LaunchTemplateId=tid, Versions=[str(token_version)])
    replay = ec2.create_launch_template_version(
        LaunchTemplateId=tid, ClientToken="tok-gone", LaunchTemplateData={"ImageId": "ami-0000000a"}
    )["LaunchTemplateVersion"]
    assert replay["VersionNumber"] == token_version, (replay, token_version)
    assert token_version not in versions_of(ec2, tid), "the replay must not recreate the version"
    check("ClientToken replay after the version was deleted answers the deleted number")

    # Block device mappings: inherited without snapshots unless sent.
    mapping = {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": "snap-0123456789abcdef0", "VolumeSize": 20}}
    disk = ec2.create_launch_template(
        LaunchTemplateName="disk",
        LaunchTemplateData={"ImageId": "ami-11111111", "BlockDeviceMappings": [mapping]},
    )["LaunchTemplate"]["LaunchTemplateId"]
    inherited = ec2.create_launch_template_version(
        LaunchTemplateId=disk, SourceVersion="1", LaunchTemplateData={"ImageId": "ami-22222222"}
    )["LaunchTemplateVersion"]["LaunchTemplateData"]
    assert inherited["BlockDeviceMappings"] == [
        {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 20}}
    ], inherited
    explicit = ec2.create_launch_template_version(
        LaunchTemplateId=disk, SourceVersion="1",
        LaunchTemplateData={"BlockDeviceMappings": [mapping, {"DeviceName": "/dev/xvdb", "NoDevice": ""}]},
    )["LaunchTemplateVersion"]["LaunchTemplateData"]
    assert explicit["BlockDeviceMappings"][0] == mapping and len(explicit["BlockDeviceMappings"]) == 2, explicit
    assert explicit["ImageId"] == "ami-11111111"
    ec2.delete_launch_template(LaunchTemplateId=disk)
    check("SourceVersion drops inherited snapshots, keeps sent ones")

    # Paging of templates (moto used to stop at 15).
    for n in range(24):
        ec2.create_launch_template(
            LaunchTemplateName=f"t-{n:02d}",
            LaunchTemplateData={"ImageId": "ami-11111111"},
            TagSpecifications=[{"ResourceType": "launch-template", "Tags": [{"Key": "team", "Value": "a" if n % 2 else "b"}]}],
        )
    assert len(ec2.describe_launch_templates()["LaunchTemplates"]) == 25
    names = [
        t["LaunchTemplateName"]
        for p in ec2.get_paginator("describe_launch_templates").paginate(PaginationConfig={"PageSize": 7})
        for t in p["LaunchTemplates"]
    ]
    assert len(names) == 25 == len(set(names))
    tagged = ec2.describe_launch_templates(Filters=[{"Name": "tag:team", "Values": ["a"]}], MaxResults=5)
    assert len(tagged["LaunchTemplates"]) == 5 and "NextToken" in tagged
    assert all({"Key": "team", "Value": "a"} in t["Tags"] for t in tagged["LaunchTemplates"]), tagged
    rest = ec2.describe_launch_templates(
        Filters=[{"Name": "tag:team", "Values": ["a"]}], MaxResults=200, NextToken=tagged["NextToken"]
    )
    assert len(rest["LaunchTemplates"]) == 7 and "NextToken" not in rest
    fails_with("InvalidParameterValue", ec2.describe_launch_templates, MaxResults=201)

    def names_for(*filters: dict) -> list[str]:
        found = ec2.describe_launch_templates(Filters=list(filters))["LaunchTemplates"]
        return sorted(t["LaunchTemplateName"] for t in found)

    # Tags added after creation are described and filtered on.
    t03 = ec2.describe_launch_templates(LaunchTemplateNames=["t-03"])["LaunchTemplates"][0]["LaunchTemplateId"]
    ec2.create_tags(Resources=[t03], Tags=[{"Key": "owner", "Value": "ops-1"}])
    assert {"Key": "owner", "Value": "ops-1"} in ec2.describe_launch_templates(
        LaunchTemplateIds=[t03])["LaunchTemplates"][0]["Tags"]
    assert names_for({"Name": "tag-key", "Values": ["owner", "nobody"]}) == ["t-03"]
    assert names_for({"Name": "tag:owner", "Values": ["ops-?"]}) == ["t-03"]
    assert names_for({"Name": "tag:owner", "Values": ["OPS-1"]}) == []  # values are case-sensitive
    assert names_for({"Name": "tag:team", "Values": ["a"]}, {"Name": "tag-key", "Values": ["owner"]}) == ["t-03"]
    assert len(names_for({"Name": "tag-key", "Values": ["team"]})) == 24
    fails_with("NotEmulated", ec2.describe_launch_templates, Filters=[{"Name": "create-time", "Values": ["x"]}])
    check("DescribeLaunchTemplates pages, filters tag:<key> / tag-key, live Tags")


def check_images(h: Harness) -> None:
    ec2 = h.client("ec2")
    created = []
    for n in range(12):
        image_id = ec2.register_image(
            Name=f"img-{n}",
            Description=f"build {n}",
            TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "build", "Value": str(n)}]}],
        )["ImageId"]
        created.append(image_id)
    one = ec2.describe_images(ImageIds=[created[3]])["Images"][0]
    assert {"Key": "build", "Value": "3"} in one["Tags"], one
    fails_with(
        "InvalidParameterValue", ec2.register_image, Name="img-snap",
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "k", "Value": "v"}]}],
    )
    check("RegisterImage applies TagSpecifications (image only)")

    # Architecture: kept, i386 by default for EBS-backed images, validated.
    assert one["Architecture"] == "i386", one
    arm = ec2.register_image(Name="img-arm", Architecture="arm64")["ImageId"]
    assert ec2.describe_images(ImageIds=[arm])["Images"][0]["Architecture"] == "arm64"
    by_arch = ec2.describe_images(Owners=["self"], Filters=[{"Name": "architecture", "Values": ["arm64"]}])
    assert [i["ImageId"] for i in by_arch["Images"]] == [arm], by_arch
    fails_with("InvalidParameterValue", ec2.register_image, Name="img-bad", Architecture="sparc")
    ec2.deregister_image(ImageId=arm)
    check("RegisterImage keeps Architecture (default i386)")

    listed = [i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]]
    assert listed == sorted(created), (listed, created)
    paged = pages_of(ec2.describe_images, "Images", "ImageId", Owners=["self"], MaxResults=5)
    assert all(ids == sorted(ids) for ids in paged), paged
    assert [len(ids) for ids in paged] == [5, 5, 2], paged
    for bad in (4, 1001):
        fails_with("InvalidParameterValue", ec2.describe_images, Owners=["self"], MaxResults=bad)
    filtered = ec2.describe_images(Owners=["self"], Filters=[{"Name": "description", "Values": ["build 1*"]}])
    assert sorted(i["Name"] for i in filtered["Images"]) == ["img-1", "img-10", "img-11"]
    tag_filtered = ec2.describe_images(Filters=[{"Name": "tag:build", "Values": ["7"]}], MaxResults=5)
    assert [i["ImageId"] for i in tag_filtered["Images"]] == [created[7]] and "NextToken" not in tag_filtered
    check("DescribeImages pages, sorted by id, filters still work")

    status, _ = h.control(
        "POST", f"/_harness/images/{created[0]}", {"state": "pending", "creation_date": "2026-11-20T03:00:00.000Z"}
    )
    assert status == 200
    image = ec2.describe_images(ImageIds=[created[0]])["Images"][0]
    assert image["State"] == "pending" and image["CreationDate"] == "2026-11-20T03:00:00.000Z", image
    pending = ec2.describe_images(Owners=["self"], Filters=[{"Name": "state", "Values": ["pending"]}])["Images"]
    assert [i["ImageId"] for i in pending] == [created[0]]
    status, _ = h.control("POST", "/_harness/images/ami-00000000", {"state": "failed"})
    assert status == 404
    check("image control endpoint sets state and creation date")


def check_autoscaling(h: Harness) -> None:
    ec2, asg = h.client("ec2"), h.client("autoscaling")
    lt = ec2.create_launch_template(LaunchTemplateName="asg-lt", LaunchTemplateData={"ImageId": "ami-11111111"})
    tid = lt["LaunchTemplate"]["LaunchTemplateId"]
    ec2.create_launch_template_version(LaunchTemplateId=tid, LaunchTemplateData={"ImageId": "ami-22222222"})
    policy = {
        "LaunchTemplate": {
            "LaunchTemplateSpecification": {"LaunchTemplateId": tid, "Version": "1"},
            "Overrides": [{"InstanceType": "t3.micro"}, {"InstanceType": "t3a.micro"}],
        },
        "InstancesDistribution": {"OnDemandPercentageAboveBaseCapacity": 100},
    }
    asg.create_auto_scaling_group(
        AutoScalingGroupName="mixed", MinSize=0, MaxSize=2, AvailabilityZones=["us-east-1a"], MixedInstancesPolicy=policy
    )
    asg.create_auto_scaling_group(
        AutoScalingGroupName="plain", MinSize=0, MaxSize=2, AvailabilityZones=["us-east-1a"],
        LaunchTemplate={"LaunchTemplateId": tid, "Version": "1"},
    )
    groups = {g["AutoScalingGroupName"]: g for g in asg.describe_auto_scaling_groups()["AutoScalingGroups"]}
    spec = groups["mixed"]["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"]
    assert spec == {"LaunchTemplateId": tid, "LaunchTemplateName": "asg-lt", "Version": "1"}, spec
    assert groups["plain"]["LaunchTemplate"]["LaunchTemplateId"] == tid

    policy["LaunchTemplate"]["LaunchTemplateSpecification"]["Version"] = "2"
    asg.update_auto_scaling_group(AutoScalingGroupName="mixed", MixedInstancesPolicy=policy)
    group = group_of(asg, "mixed")
    assert group["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"]["Version"] == "2"
    asg.update_auto_scaling_group(AutoScalingGroupName="plain", LaunchTemplate={"LaunchTemplateId": tid, "Version": "2"})

    both_policy = json.loads(json.dumps(policy))
    both_policy["LaunchTemplate"]["LaunchTemplateSpecification"]["LaunchTemplateName"] = "asg-lt"
    err = client_error(asg.update_auto_scaling_group, AutoScalingGroupName="mixed", MixedInstancesPolicy=both_policy)
    print("    both (mixed):", err.response["Error"], err.response["ResponseMetadata"]["HTTPStatusCode"])
    assert err.response["Error"]["Code"] == "ValidationError"
    err = client_error(
        asg.update_auto_scaling_group, AutoScalingGroupName="plain",
        LaunchTemplate={"LaunchTemplateId": tid, "LaunchTemplateName": "asg-lt", "Version": "2"},
    )
    print("    both (plain):", err.response["Error"], err.response["ResponseMetadata"]["HTTPStatusCode"])
    assert err.response["Error"]["Code"] == "ValidationError"
    check("Auto Scaling: specs by id work, id+name rejected like AWS")

    # A group being deleted: Status shown, updates refused.
    assert "Status" not in groups["plain"]
    assert h.control("POST", "/_harness/groups/plain", {"status": "Delete in progress"})[0] == 200
    group = group_of(asg, "plain")
    assert group["Status"] == "Delete in progress", group
    err = client_error(asg.update_auto_scaling_group, AutoScalingGroupName="plain", MaxSize=3)
    assert err.response["Error"] == {
        "Type": "Sender", "Code": "ValidationError",
        "Message": "The AutoScaling group may not be modified while it is pending delete",
    }, err.response
    assert h.control("POST", "/_harness/groups/plain", {"status": None})[0] == 200
    asg.update_auto_scaling_group(AutoScalingGroupName="plain", MaxSize=3)
    assert h.control("POST", "/_harness/groups/ghost", {"status": "Delete in progress"})[0] == 404
    assert h.control("POST", "/_harness/groups/plain", {})[0] == 400
    check("group being deleted: Status described, UpdateAutoScalingGroup refused")

    def tag(key: str) -> dict:
        return {"ResourceId": "plain", "ResourceType": "auto-scaling-group", "Key": key,
                "Value": "x", "PropagateAtLaunch": False}

    have = len(group_of(asg, "plain").get("Tags", []))
    asg.create_or_update_tags(Tags=[tag(f"t{i}") for i in range(50 - have)])
    assert len(group_of(asg, "plain")["Tags"]) == 50
    asg.create_or_update_tags(Tags=[tag("t0")])
    fails_with("LimitExceeded", asg.create_or_update_tags, Tags=[tag("one-more")])
    assert len(group_of(asg, "plain")["Tags"]) == 50
    check("CreateOrUpdateTags: an existing key is overwritten, a 51st tag is refused (LimitExceeded)")

    # MixedInstancesPolicy: unspecified properties are kept.
    def policy_of(name: str) -> dict:
        return group_of(asg, name)["MixedInstancesPolicy"]

    overrides = [{"InstanceType": "t3.micro"}, {"InstanceType": "t3a.micro"}]
    asg.create_auto_scaling_group(
        AutoScalingGroupName="spot", MinSize=0, MaxSize=2, AvailabilityZones=["us-east-1a"],
        MixedInstancesPolicy={
            "LaunchTemplate": {"LaunchTemplateSpecification": {"LaunchTemplateId": tid, "Version": "1"},
                               "Overrides": overrides},
            "InstancesDistribution": {"OnDemandPercentageAboveBaseCapacity": 50,
                                      "SpotAllocationStrategy": "price-capacity-optimized"},
        },
    )
    distribution = {
        "OnDemandAllocationStrategy": "prioritized", "OnDemandBaseCapacity": 0,
        "OnDemandPercentageAboveBaseCapacity": 50, "SpotAllocationStrategy": "price-capacity-optimized",
    }
    assert policy_of("spot")["InstancesDistribution"] == distribution, policy_of("spot")
    asg.update_auto_scaling_group(
        AutoScalingGroupName="spot",
        MixedInstancesPolicy={"LaunchTemplate": {"LaunchTemplateSpecification": {"LaunchTemplateId": tid, "Version": "$Latest"}}},
    )
    kept = policy_of("spot")
    assert kept["LaunchTemplate"]["LaunchTemplateSpecification"]["Version"] == "$Latest", kept
    assert kept["LaunchTemplate"]["Overrides"] == overrides, kept
    assert kept["InstancesDistribution"] == distribution, kept
    asg.update_auto_scaling_group(AutoScalingGroupName="spot", MaxSize=3)
    assert policy_of("spot") == kept, policy_of("spot")
    asg.update_auto_scaling_group(
        AutoScalingGroupName="spot", MixedInstancesPolicy={"InstancesDistribution": {"OnDemandBaseCapacity": 1}}
    )
    assert policy_of("spot")["InstancesDistribution"] == {**distribution, "OnDemandBaseCapacity": 1}
    assert policy_of("spot")["LaunchTemplate"] == kept["LaunchTemplate"]
    check("UpdateAutoScalingGroup keeps unspecified MixedInstancesPolicy properties")

    # InstancesDistribution rules.
    def refused(**policy) -> str:
        err = fails_with("ValidationError", asg.update_auto_scaling_group, AutoScalingGroupName="spot",
                         MixedInstancesPolicy=policy)
        return err.response["Error"]["Message"]

    message = refused(InstancesDistribution={"SpotInstancePools": 3})
    assert message == "SpotInstancePools option is only available with the lowest-price allocation strategy.", message
    refused(InstancesDistribution={"SpotAllocationStrategy": "lowest-price", "SpotInstancePools": 21})
    refused(InstancesDistribution={"OnDemandPercentageAboveBaseCapacity": 101})
    refused(InstancesDistribution={"SpotAllocationStrategy": "cheapest"})
    refused(InstancesDistribution={"SpotMaxPrice": "0.0001"})
    refused(LaunchTemplate={"Overrides": [{"InstanceType": "t3.micro", "WeightedCapacity": "2"},
                                          {"InstanceType": "t3a.micro"}]})
    fails_with(
        "ValidationError", asg.update_auto_scaling_group, AutoScalingGroupName="spot",
        LaunchTemplate={"LaunchTemplateId": tid, "Version": "1"},
        MixedInstancesPolicy={"InstancesDistribution": {"OnDemandBaseCapacity": 0}},
    )
    assert policy_of("spot")["InstancesDistribution"]["OnDemandBaseCapacity"] == 1  # nothing changed
    asg.update_auto_scaling_group(
        AutoScalingGroupName="spot",
        MixedInstancesPolicy={"InstancesDistribution": {"SpotAllocationStrategy": "lowest-price", "SpotInstancePools": 3}},
    )
    assert policy_of("spot")["InstancesDistribution"]["SpotInstancePools"] == 3
    asg.update_auto_scaling_group(
        AutoScalingGroupName="spot",
        MixedInstancesPolicy={"InstancesDistribution": {"SpotAllocationStrategy": "capacity-optimized"}},
    )
    assert "SpotInstancePools" not in policy_of("spot")["InstancesDistribution"], policy_of("spot")
    fails_with(
        "ValidationError", asg.create_auto_scaling_group, AutoScalingGroupName="bad", MinSize=0, MaxSize=1,
        AvailabilityZones=["us-east-1a"],
        MixedInstancesPolicy={
            "LaunchTemplate": {"LaunchTemplateSpecification": {"LaunchTemplateId": tid}},
            "InstancesDistribution": {"SpotAllocationStrategy": "capacity-optimized", "SpotInstancePools": 2},
        },
    )
    check("InstancesDistribution validated as a whole, on create and update")


def check_faults(h: Harness) -> None:
    ec2, asg, ssm, events = h.client("ec2"), h.client("autoscaling"), h.client("ssm"), h.client("events")
    ssm.put_parameter(Name="/ami/latest", Value="ami-11111111", Type="String")
    h.control("POST", "/_harness/reset")

    expected = {
        ("ec2", "throttle"): (503, "RequestLimitExceeded"),
        ("ec2", "http500"): (500, "InternalError"),
        ("ec2", "http503"): (503, "Unavailable"),
        ("autoscaling", "throttle"): (400, "Throttling"),
        ("autoscaling", "http500"): (500, "InternalFailure"),
        ("autoscaling", "http503"): (503, "ServiceUnavailable"),
        ("ssm", "throttle"): (400, "ThrottlingException"),
        ("ssm", "http500"): (500, "InternalServerError"),
        ("ssm", "http503"): (503, "ServiceUnavailable"),
        ("events", "throttle"): (400, "ThrottlingException"),
        ("events", "http500"): (500, "InternalException"),
        ("events", "http503"): (503, "ServiceUnavailable"),
    }
    calls = {
        "ec2": lambda: ec2.describe_images(Owners=["self"]),
        "autoscaling": lambda: asg.describe_auto_scaling_groups(),
        "ssm": lambda: ssm.get_parameter(Name="/ami/latest"),
        "events": lambda: events.put_events(Entries=[{"Source": "ami-reconciler", "DetailType": "t", "Detail": "{}"}]),
    }
    for (service, fault), (status, code) in expected.items():
        h.faults({"service": service, "fault": fault, "times": 1})
        got = error_of(calls[service])
        assert got[:2] == (status, code), (service, fault, got)
        calls[service]()  # times=1: the next call goes through
    h.faults({"service": "events", "action": "PutEvents", "fault": "error", "code": "AccessDeniedException",
              "message": "not allowed", "times": 1})
    assert error_of(calls["events"]) == (400, "AccessDeniedException", "not allowed")
    check("throttle / http500 / http503 / error in each service's shape (EventBridge included)")

    # Retrying SDK clients recover from a throttle.
    h.faults({"service": "ec2", "action": "DescribeImages", "fault": "throttle", "times": 2})
    h.client("ec2", attempts=3).describe_images(Owners=["self"])

    # Custom error, scoped to a group.
    h.faults({
        "service": "autoscaling", "action": "UpdateAutoScalingGroup", "group": "ghost", "fault": "error",
        "code": "ValidationError", "message": "AutoScalingGroup name not found - null",
    })
    asg.create_auto_scaling_group(
        AutoScalingGroupName="real", MinSize=0, MaxSize=1, AvailabilityZones=["us-east-1a"],
        LaunchTemplate={"LaunchTemplateName": "asg-lt"},
    )
    asg.update_auto_scaling_group(AutoScalingGroupName="real", MaxSize=2)
    err = client_error(asg.update_auto_scaling_group, AutoScalingGroupName="ghost", MaxSize=2)
    assert err.response["Error"] == {
        "Type": "Sender", "Code": "ValidationError", "Message": "AutoScalingGroup name not found - null"
    }, err.response
    check("custom error fault, group-scoped")

    # after / times.
    h.faults({"service": "ec2", "action": "CreateLaunchTemplateVersion", "fault": "http500", "after": 1, "times": 1})
    ec2.create_launch_template_version(LaunchTemplateName="asg-lt", LaunchTemplateData={"ImageId": "ami-1"})
    fails_with("InternalError", ec2.create_launch_template_version, LaunchTemplateName="asg-lt",
               LaunchTemplateData={"ImageId": "ami-2"})
    ec2.create_launch_template_version(LaunchTemplateName="asg-lt", LaunchTemplateData={"ImageId": "ami-3"})
    check("after / times")

    # warn: the version is created, the answer carries a ValidationWarning.
    h.faults({
        "service": "ec2", "action": "CreateLaunchTemplateVersion", "fault": "warn", "times": 1,
        "code": "InvalidAMIID.NotFound", "message": "The image id '[ami-00000bad]' does not exist",
    })
    warned = ec2.create_launch_template_version(LaunchTemplateName="asg-lt", LaunchTemplateData={"ImageId": "ami-00000bad"})
    assert warned["Warning"] == {"Errors": [
        {"Code": "InvalidAMIID.NotFound", "Message": "The image id '[ami-00000bad]' does not exist"}
    ]}, warned
    asg_lt = warned["LaunchTemplateVersion"]["LaunchTemplateId"]
    assert versions_of(ec2, asg_lt, Versions=["$Latest"]) == [warned["LaunchTemplateVersion"]["VersionNumber"]]
    status, _ = h.control("POST", "/_harness/faults", {"rules": [{"action": "DescribeImages", "fault": "warn"}]})
    assert status == 400
    check("warn: version created, Warning in the answer")

    # before: another writer's version lands just before the call.
    latest = versions_of(ec2, asg_lt, Versions=["$Latest"])[0]
    h.control("POST", "/_harness/reset")
    h.faults({
        "service": "ec2", "action": "CreateLaunchTemplateVersion", "fault": "before", "times": 1,
        "request": {"service": "ec2", "action": "CreateLaunchTemplateVersion", "params": {
            "LaunchTemplateId": asg_lt, "SourceVersion": "$Latest", "LaunchTemplateData": {"InstanceType": "m5.large"}}},
    })
    mine = ec2.create_launch_template_version(
        LaunchTemplateId=asg_lt, SourceVersion="$Latest", LaunchTemplateData={"ImageId": "ami-0000000b"}
    )["LaunchTemplateVersion"]
    assert mine["VersionNumber"] == latest + 2, (mine, latest)
    assert mine["LaunchTemplateData"]["InstanceType"] == "m5.large", mine  # built on the racer's version
    racer = ec2.describe_launch_template_versions(LaunchTemplateId=asg_lt, Versions=[str(latest + 1)])
    assert racer["LaunchTemplateVersions"][0]["LaunchTemplateData"]["InstanceType"] == "m5.large"
    recorded = [{k: v for k, v in c.items() if k != "at"} for c in h.calls()["calls"]]
    assert recorded[0] == {"service": "ec2", "action": "CreateLaunchTemplateVersion", "mutating": True,
                           "status": 200, "fault": "before"}, recorded
    assert [c["action"] for c in recorded].count("CreateLaunchTemplateVersion") == 1, recorded
    h.faults({
        "service": "ec2", "action": "CreateLaunchTemplateVersion", "fault": "before", "times": 1,
        "request": {"service": "ec2", "action": "CreateLaunchTemplateVersion", "params": {
            "LaunchTemplateId": "lt-0123456789abcdef0", "LaunchTemplateData": {}}},
    })
    fails_with("HarnessInjectionFailed",
               ec2.create_launch_template_version, LaunchTemplateId=asg_lt, LaunchTemplateData={})
    assert versions_of(ec2, asg_lt, Versions=["$Latest"]) == [latest + 2]  # the call was not forwarded
    status, _ = h.control("POST", "/_harness/faults", {"rules": [{"fault": "before", "request": {"service": "ec2"}}]})
    assert status == 400
    check("before: the rule's request runs first, unrecorded; a failing one fails the call")

    # probability with a seed is reproducible.
    def pattern() -> list[bool]:
        h.faults({"service": "ssm", "fault": "throttle", "probability": 0.5, "seed": 7})
        out = []
        for _ in range(12):
            try:
                ssm.get_parameter(Name="/ami/latest")
                out.append(False)
            except botocore.exceptions.ClientError:
                out.append(True)
        return out

    first = pattern()
    assert first == pattern() and any(first) and not all(first), first
    check("probability + seed")

    # drop: the connection closes without a response.
    h.faults({"service": "ec2", "action": "DescribeLaunchTemplates", "fault": "drop", "times": 1})
    try:
        ec2.describe_launch_templates()
        raise AssertionError("drop did not fail the call")
    except (botocore.exceptions.ConnectionClosedError, botocore.exceptions.EndpointConnectionError):
        pass
    ec2.describe_launch_templates()
    check("drop")

    # hang: delays without blocking other requests; a client timeout sees it.
    h.faults({"service": "ec2", "action": "DescribeLaunchTemplates", "fault": "hang", "delay_ms": 800, "times": 1})
    done = {}

    def slow():
        started = time.monotonic()
        ec2_slow = h.client("ec2")
        ec2_slow.describe_launch_templates()
        done["slow"] = time.monotonic() - started

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.1)
    started = time.monotonic()
    ssm.get_parameter(Name="/ami/latest")
    assert time.monotonic() - started < 0.5
    thread.join()
    assert done["slow"] >= 0.8, done
    h.faults({"service": "ec2", "action": "DescribeLaunchTemplates", "fault": "hang", "delay_ms": 1500, "times": 1})
    try:
        h.client("ec2", read_timeout=0.5).describe_launch_templates()
        raise AssertionError("hang did not time out")
    except botocore.exceptions.ReadTimeoutError:
        pass
    check("hang")

    # Recording and in-flight peak of mutating calls.
    h.control("POST", "/_harness/reset")
    h.faults({"service": "ec2", "action": "CreateLaunchTemplateVersion", "fault": "hang", "delay_ms": 400})
    threads = [
        threading.Thread(
            target=lambda n=n: h.client("ec2").create_launch_template_version(
                LaunchTemplateName="asg-lt", LaunchTemplateData={"ImageId": f"ami-{n}"}
            )
        )
        for n in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ssm.get_parameter(Name="/ami/latest")
    recorded = h.calls()
    arrivals = [c.pop("at") for c in recorded["calls"]]
    assert arrivals == sorted(arrivals) and arrivals[0] > 1.7e9, arrivals  # Unix seconds, in order
    assert recorded["peak_in_flight_mutating"] == 4, recorded
    assert recorded["calls"][:4] == [
        {"service": "ec2", "action": "CreateLaunchTemplateVersion", "mutating": True, "status": 200, "fault": "hang"}
    ] * 4, recorded
    assert recorded["calls"][4] == {
        "service": "ssm", "action": "GetParameter", "mutating": False, "status": 200, "fault": None
    }
    h.control("POST", "/_harness/reset")
    assert h.calls() == {"calls": [], "peak_in_flight_mutating": 0}
    check("recording, peak in-flight mutating, reset")


def check_ssm_image_parameters(h: Harness) -> None:
    """SSM parameters of data type aws:ec2:image (docs/testing.md, item 13)."""
    ec2, ssm = h.client("ec2"), h.client("ssm")
    image = ec2.register_image(Name="ssm-backup-1")["ImageId"]
    newer = ec2.register_image(Name="ssm-backup-2")["ImageId"]
    unknown = "ami-0123456789abcdef0"
    IMAGE = "aws:ec2:image"

    def stored(name: str) -> tuple | None:
        """(Value, Version, DataType) as GetParameters reads it; None if absent."""
        found = ssm.get_parameters(Names=[name])
        if found["InvalidParameters"] == [name] and not found["Parameters"]:
            return None
        parameter = found["Parameters"][0]
        return parameter["Value"], parameter["Version"], parameter["DataType"]

    def answer_of(**kwargs) -> dict:
        status, raw = raw_body_of(ssm, "PutParameter", ssm.put_parameter, Type="String", **kwargs)
        assert status == 200, (status, raw)
        return json.loads(raw)

    # An AMI that is not there, or a value that is no AMI id at all: 200
    # with the version it would have had, and no parameter.
    for value in (unknown, "not-an-ami"):
        assert answer_of(Name="/golden/ami", Value=value, DataType=IMAGE) == {"Version": 1, "Tier": "Standard"}
        assert stored("/golden/ami") is None
    # The image must be in the call's region (and account).
    west = h.client("ssm", region="us-west-2")
    assert west.put_parameter(Name="/golden/ami", Value=image, Type="String", DataType=IMAGE)["Version"] == 1
    assert west.get_parameters(Names=["/golden/ami"])["InvalidParameters"] == ["/golden/ami"]
    check("PutParameter aws:ec2:image with an unavailable AMI: 200, nothing created")

    assert answer_of(Name="/golden/ami", Value=image, DataType=IMAGE) == {"Version": 1, "Tier": "Standard"}
    assert stored("/golden/ami") == (image, 1, IMAGE)
    # An update to an image that is not available (pending, unknown): 200
    # with the next version, the parameter unchanged.
    assert h.control("POST", f"/_harness/images/{newer}", {"state": "pending"})[0] == 200
    for value in (newer, unknown):
        assert answer_of(Name="/golden/ami", Value=value, DataType=IMAGE, Overwrite=True) == {
            "Version": 2, "Tier": "Standard"}
        assert stored("/golden/ami") == (image, 1, IMAGE)
    # The synchronous checks still answer: an existing name without Overwrite.
    fails_with("ParameterAlreadyExists", ssm.put_parameter, Name="/golden/ami", Value=unknown, Type="String",
               DataType=IMAGE)
    assert h.control("POST", f"/_harness/images/{newer}", {"state": "available"})[0] == 200
    assert answer_of(Name="/golden/ami", Value=newer, DataType=IMAGE, Overwrite=True)["Version"] == 2
    assert stored("/golden/ami") == (newer, 2, IMAGE)
    check("PutParameter aws:ec2:image with an available AMI: stored, DataType kept; unavailable updates ignored")

    # No change of data type to or from aws:ec2:image (an omitted DataType is text).
    ssm.put_parameter(Name="/golden/text", Value=image, Type="String")
    refusals = (
        {"Name": "/golden/ami", "Value": "plain", "DataType": "text"},
        {"Name": "/golden/ami", "Value": newer},
        {"Name": "/golden/text", "Value": image, "DataType": IMAGE},
    )
    for kwargs in refusals:
        status, code, message = error_of(ssm.put_parameter, Type="String", Overwrite=True, **kwargs)
        assert (status, code) == (400, "ValidationException"), (kwargs, status, code, message)
        assert "can't be changed" in message, message
    assert stored("/golden/ami") == (newer, 2, IMAGE)
    assert stored("/golden/text") == (image, 1, "text")
    ssm.put_parameter(Name="/golden/text", Value="plain", Type="String", DataType="text", Overwrite=True)
    assert stored("/golden/text") == ("plain", 2, "text")
    check("PutParameter refuses a change of data type to or from aws:ec2:image (ValidationException)")

    # GetParameters: Type and DataType of each, missing names listed, alphabetical.
    status, raw = raw_body_of(ssm, "GetParameters", ssm.get_parameters,
                              Names=["/golden/text", "/golden/missing", "/golden/ami"])
    assert status == 200, (status, raw)
    body = json.loads(raw)
    assert [(p["Name"], p["Type"], p["DataType"]) for p in body["Parameters"]] == [
        ("/golden/ami", "String", IMAGE), ("/golden/text", "String", "text")], body
    assert body["InvalidParameters"] == ["/golden/missing"], body
    names = [f"/golden/n{i}" for i in range(11)]
    assert error_of(h.client("ssm", validate=False).get_parameters, Names=names)[:2] == (400, "ValidationException")
    check("GetParameters: Type, DataType, InvalidParameters, alphabetical; more than 10 names refused")


def check_put_events(h: Harness) -> None:
    """EventBridge PutEvents (docs/testing.md, item 14), the partial fault
    and the recording of entries."""
    h.control("POST", "/_harness/reset")
    events = h.client("events", validate=False)
    events.create_event_bus(Name="reconciler")

    def entry(n: int, **extra) -> dict:
        return {"Source": "ami-reconciler", "DetailType": "Version created", "Detail": json.dumps({"n": n}),
                "EventBusName": "reconciler", **extra}

    answer = events.put_events(Entries=[entry(n) for n in range(10)])
    assert answer["FailedEntryCount"] == 0 and len(answer["Entries"]) == 10, answer
    assert all(set(e) == {"EventId"} for e in answer["Entries"]), answer
    assert answer["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/x-amz-json-1.1", answer
    for count in (11, 0):
        status, code, message = error_of(events.put_events, Entries=[entry(n) for n in range(count)])
        assert (status, code) == (400, "ValidationException"), (count, status, code, message)
    check("PutEvents: 1 to 10 entries, 11 or none refused (ValidationException)")

    def sized(size: int, **extra) -> dict:
        """An entry of ``size`` bytes as EventBridge counts them (Detail
        padded with a two-byte UTF-8 character and ASCII)."""
        one = {"Source": "ami-reconciler", "DetailType": "Big", **extra}
        fixed = len(one["Source"]) + len(one["DetailType"]) + (14 if "Time" in one else 0)
        fixed += sum(len(r.encode()) for r in one.get("Resources", []))
        padding = size - fixed - len('{"x":"é"}'.encode())
        return {**one, "Detail": '{"x":"é' + "a" * padding + '"}'}

    limit = 256 * 1024
    when = datetime.datetime(2026, 11, 20, 3, 0, tzinfo=datetime.timezone.utc)
    arn = ["arn:aws:ec2:us-east-1:123456789012:image/ami-0123456789abcdef0"]
    accepted = (
        [sized(limit // 2), sized(limit // 2 - 1)],
        [sized(limit - 1, Time=when)],
        [sized(limit - 1, Resources=arn)],
    )
    refused = (
        [sized(limit // 2), sized(limit // 2)],
        [sized(limit)],
        [sized(limit, Resources=arn)],
        [sized(limit - 1, Time=when), {"Source": "a", "DetailType": "b", "Detail": "{}"}],
    )
    for entries in accepted:
        assert events.put_events(Entries=entries)["FailedEntryCount"] == 0
    for entries in refused:
        assert error_of(events.put_events, Entries=entries) == (
            400, "ValidationException", "Total size of the entries in the request is over the limit."
        )
    check("PutEvents: total entry size (Time 14 bytes, UTF-8 bytes) under 256 KB, else refused")

    # A bus that does not exist: the entry is accepted (an EventId) and dropped.
    answer = events.put_events(Entries=[entry(0, EventBusName="no-such-bus"), entry(1)])
    assert answer["FailedEntryCount"] == 0 and all("EventId" in e for e in answer["Entries"]), answer
    missing = {k: v for k, v in entry(2, EventBusName="no-such-bus").items() if k != "DetailType"}
    answer = events.put_events(Entries=[missing])
    assert answer["FailedEntryCount"] == 1 and answer["Entries"][0]["ErrorCode"] == "InvalidArgument", answer
    check("PutEvents to a bus that does not exist: accepted and dropped, per-entry checks still apply")

    # partial: chosen result entries fail.
    h.faults({"service": "events", "action": "PutEvents", "fault": "partial", "entries": [1, 3, 7], "times": 1})
    answer = events.put_events(Entries=[entry(n) for n in range(4)])
    assert answer["FailedEntryCount"] == 2, answer
    for index in (1, 3):
        assert answer["Entries"][index] == {"ErrorCode": "InternalFailure", "ErrorMessage": "Injected entry failure"}
    assert "EventId" in answer["Entries"][0] and "EventId" in answer["Entries"][2], answer
    assert events.put_events(Entries=[entry(0)])["FailedEntryCount"] == 0  # times=1
    h.faults({"service": "events", "action": "PutEvents", "fault": "partial", "times": 2,
              "code": "ThrottlingException", "message": "Rate exceeded"})
    for _ in range(2):
        answer = events.put_events(Entries=[entry(0), entry(1)])
        assert answer["FailedEntryCount"] == 1, answer
        assert answer["Entries"][0] == {"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}, answer
        assert "EventId" in answer["Entries"][1], answer
    assert events.put_events(Entries=[entry(0)])["FailedEntryCount"] == 0
    for bad in (
        {"fault": "partial"},
        {"action": "PutEvents", "fault": "partial", "entries": [-1]},
        {"action": "PutEvents", "fault": "partial", "entries": "0"},
    ):
        assert h.control("POST", "/_harness/faults", {"rules": [bad]})[0] == 400, bad
    check("partial fault: result entries at the rule's indices failed, FailedEntryCount, times")

    # Recording: every call's entries as sent, with status and fault; reset clears it.
    h.control("POST", "/_harness/reset")
    assert h.control("GET", "/_harness/events") == (200, {"calls": []})
    timed = entry(1, Time=when, Resources=arn)
    events.put_events(Entries=[entry(0), timed])
    h.faults({"service": "events", "action": "PutEvents", "fault": "throttle", "times": 1})
    assert error_of(events.put_events, Entries=[entry(2)])[:2] == (400, "ThrottlingException")
    h.faults({"service": "events", "action": "PutEvents", "fault": "partial", "times": 1})
    events.put_events(Entries=[entry(3)])
    error_of(events.put_events, Entries=[entry(n) for n in range(11)])
    h.client("ssm").get_parameters(Names=["/golden/ami"])  # not a PutEvents call
    status, recorded = h.control("GET", "/_harness/events")
    assert status == 200, recorded
    calls = recorded["calls"]
    assert [(len(c["entries"]), c["status"], c["fault"]) for c in calls] == [
        (2, 200, None), (1, 400, "throttle"), (1, 200, "partial"), (11, 400, None)], calls
    assert calls[0]["entries"][0] == entry(0), calls[0]
    sent = calls[0]["entries"][1]
    assert {k: v for k, v in sent.items() if k != "Time"} == {k: v for k, v in timed.items() if k != "Time"}, sent
    assert sent["Time"] == when.timestamp(), sent  # epoch seconds, as the JSON protocol sends it
    assert [e["Detail"] for e in calls[3]["entries"]] == [json.dumps({"n": n}) for n in range(11)]
    assert [c["action"] for c in h.calls()["calls"]].count("PutEvents") == 4
    h.control("POST", "/_harness/reset")
    assert h.control("GET", "/_harness/events") == (200, {"calls": []})
    check("GET /_harness/events records every PutEvents call's entries, status and fault; reset clears it")


def check_keep_alive(h: Harness) -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    def signed(body: str) -> dict:
        req = AWSRequest(
            method="POST", url=h.url + "/", data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        )
        SigV4Auth(Credentials("AKIDSELFCHECK", "secret"), "ec2", "us-east-1").add_auth(req)
        return dict(req.headers.items())

    conn = http.client.HTTPConnection("127.0.0.1", h.proxy)
    sockets = set()
    for _ in range(3):
        body = "Action=DescribeLaunchTemplates&Version=2016-11-15"
        conn.request("POST", "/", body=body, headers=signed(body))
        response = conn.getresponse()
        payload = response.read()
        assert response.status == 200 and b"DescribeLaunchTemplatesResponse" in payload
        assert int(response.getheader("Content-Length")) == len(payload)
        assert response.getheader("Transfer-Encoding") is None
        sockets.add(id(conn.sock))
    assert len(sockets) == 1, "the connection was not kept alive"
    conn.close()
    check("HTTP/1.1 keep-alive with Content-Length")


def check_launch_check(h: Harness) -> None:
    """Auto Scaling's launch check under IAM enforcement (its own harness:
    enforcement cannot be switched off again)."""
    ec2, asg = h.client("ec2"), h.client("autoscaling")
    template = ec2.create_launch_template(
        LaunchTemplateName="golden", LaunchTemplateData={"ImageId": "ami-11111111"}
    )["LaunchTemplate"]["LaunchTemplateId"]
    ec2.create_launch_template_version(
        LaunchTemplateId=template, LaunchTemplateData={"ImageId": "resolve:ssm:/golden/ami"}
    )
    asg.create_auto_scaling_group(
        AutoScalingGroupName="plain", MinSize=0, MaxSize=1, AvailabilityZones=["us-east-1a"],
        LaunchTemplate={"LaunchTemplateId": template, "Version": "1"},
    )
    asg.create_auto_scaling_group(
        AutoScalingGroupName="mixed", MinSize=0, MaxSize=1, AvailabilityZones=["us-east-1a"],
        MixedInstancesPolicy={"LaunchTemplate": {
            "LaunchTemplateSpecification": {"LaunchTemplateId": template, "Version": "1"},
            "Overrides": [{"InstanceType": "t3.micro"}]}},
    )

    def user(name: str, *actions: str):
        return h.user(name, [{"Effect": "Allow", "Action": ["autoscaling:Describe*", *actions], "Resource": "*"}])

    runner = user("runner", "autoscaling:UpdateAutoScalingGroup", "ec2:RunInstances")
    with_ssm = user("with-ssm", "autoscaling:UpdateAutoScalingGroup", "ec2:RunInstances", "ssm:GetParameters")
    no_run = user("no-run", "autoscaling:UpdateAutoScalingGroup")
    h.reset_auth(b"0")

    def denied(client, **kwargs) -> None:
        err = client_error(client.update_auto_scaling_group, **kwargs)
        assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 403, err.response
        assert err.response["Error"] == {
            "Type": "Sender", "Code": "AccessDenied",
            "Message": f"You are not authorized to use launch template: {template}",
        }, err.response

    def version_of(client, name: str) -> str:
        group = group_of(client, name)
        spec = group.get("LaunchTemplate") or group["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"]
        return spec["Version"]

    plain_v2 = {"AutoScalingGroupName": "plain", "LaunchTemplate": {"LaunchTemplateId": template, "Version": "2"}}
    mixed_v2 = {"AutoScalingGroupName": "mixed", "MixedInstancesPolicy": {"LaunchTemplate": {
        "LaunchTemplateSpecification": {"LaunchTemplateId": template, "Version": "2"}}}}
    runner.update_auto_scaling_group(
        AutoScalingGroupName="plain", LaunchTemplate={"LaunchTemplateId": template, "Version": "1"}
    )
    denied(runner, **plain_v2)
    denied(runner, **mixed_v2)
    assert (version_of(runner, "plain"), version_of(runner, "mixed")) == ("1", "1")
    denied(no_run, AutoScalingGroupName="plain", LaunchTemplate={"LaunchTemplateId": template, "Version": "1"})
    no_run.update_auto_scaling_group(AutoScalingGroupName="plain", MaxSize=2)  # no launch template: no check
    with_ssm.update_auto_scaling_group(**plain_v2)
    with_ssm.update_auto_scaling_group(**mixed_v2)
    assert (version_of(runner, "plain"), version_of(runner, "mixed")) == ("2", "2")
    check("launch check under IAM enforcement: ec2:RunInstances, ssm:GetParameters for resolve:ssm:")


def main() -> None:
    # The IAM-enforcing harness is started first so that its moto loads
    # while the other checks run.
    enforced = Harness()
    h = Harness()
    print(f"ready after {h.ready_seconds * 1000:.0f} ms: proxy {h.proxy}, moto {h.moto}")
    run_checks(
        h, check_launch_templates, check_images, check_autoscaling, check_faults, check_ssm_image_parameters,
        check_put_events, check_keep_alive,
    )
    assert h.proc.returncode == 0
    check("harness exits on stdin EOF")
    run_checks(enforced, check_launch_check)
    print("all checks passed")


if __name__ == "__main__":
    main()
