"""Self-check of the instance refresh emulation (instance_refresh.py), through boto3.

Run as ``python selfcheck_refresh.py`` with the packages of requirements.txt
installed. Spawns the harness, prints one line per check and exits non-zero on
the first failure. Every check fails against plain moto 5.2.5 (which answers
the refresh actions with HTTP 500) or against a wrong emulation.
"""

from __future__ import annotations

from selfcheck import Harness, check, error_of, group_of, pages_of, raw_body_of, run_checks

MANAGED = {"Key": "ami-reconciler:managed", "Value": "true", "PropagateAtLaunch": False}


class Account:
    """Images, one launch template with a version per image, groups."""

    def __init__(self, h: Harness, prefix: str):
        self.h = h
        self.ec2, self.asg = h.client("ec2"), h.client("autoscaling")
        self.images = [
            self.ec2.register_image(Name=f"{prefix}-img-{n}", Description=f"{prefix} {n}")["ImageId"] for n in range(3)
        ]
        lt = self.ec2.create_launch_template(
            LaunchTemplateName=f"{prefix}-lt",
            LaunchTemplateData={"ImageId": self.images[0], "InstanceType": "t3.micro"},
        )["LaunchTemplate"]
        self.lt, self.lt_name = lt["LaunchTemplateId"], lt["LaunchTemplateName"]
        for image in self.images[1:]:
            self.ec2.create_launch_template_version(
                LaunchTemplateId=self.lt, SourceVersion="1", LaunchTemplateData={"ImageId": image}
            )

    def group(self, name: str, version: str = "1", capacity: int = 3, tags=(MANAGED,), **extra) -> str:
        kwargs = dict(
            AutoScalingGroupName=name, MinSize=0, MaxSize=10, DesiredCapacity=capacity,
            AvailabilityZones=["us-east-1a"], Tags=[dict(t, ResourceId=name, ResourceType="auto-scaling-group") for t in tags],
        )
        if "MixedInstancesPolicy" not in extra:
            kwargs["LaunchTemplate"] = {"LaunchTemplateId": self.lt, "Version": version}
        kwargs.update(extra)
        self.asg.create_auto_scaling_group(**kwargs)
        return name

    def desired(self, version: str) -> dict:
        """A DesiredConfiguration: the account's template at ``version``."""
        return {"LaunchTemplate": {"LaunchTemplateId": self.lt, "Version": version}}

    def start(self, name: str, version: str | None = None, **kwargs) -> str:
        """Starts a refresh of the group (towards ``version`` of the template, if given); its id."""
        if version is not None:
            kwargs["DesiredConfiguration"] = self.desired(version)
        return self.asg.start_instance_refresh(AutoScalingGroupName=name, **kwargs)["InstanceRefreshId"]

    def described(self, name: str) -> dict:
        return group_of(self.asg, name)

    def refreshes(self, name: str, **kwargs) -> list[dict]:
        return self.asg.describe_instance_refreshes(AutoScalingGroupName=name, **kwargs)["InstanceRefreshes"]

    def images_of(self, name: str) -> dict[str, str]:
        """InstanceId -> ImageId of the group's instances, from DescribeInstances."""
        ids = [i["InstanceId"] for i in self.described(name)["Instances"]]
        if not ids:
            return {}
        found = self.ec2.describe_instances(InstanceIds=ids)["Reservations"]
        return {i["InstanceId"]: i["ImageId"] for r in found for i in r["Instances"]}

    def move(self, name: str, **payload) -> dict:
        status, body = self.h.control("POST", f"/_harness/refreshes/{name}", payload)
        assert status == 200, (status, body)
        return body


def check_start_and_describe(h: Harness) -> None:
    a = Account(h, "basic")
    a.group("basic")
    status, raw = raw_body_of(
        a.asg, "StartInstanceRefresh", a.asg.start_instance_refresh, AutoScalingGroupName="basic",
        DesiredConfiguration=a.desired("2"),
    )
    print("    wire:", status, raw.decode())
    assert status == 200 and b"<InstanceRefreshId>" in raw
    [item] = a.refreshes("basic")
    status, raw = raw_body_of(a.asg, "DescribeInstanceRefreshes", a.asg.describe_instance_refreshes,
                              AutoScalingGroupName="basic")
    print("    wire:", status, raw.decode())
    assert item["Status"] == "Pending" and item["AutoScalingGroupName"] == "basic", item
    assert item["PercentageComplete"] == 0 and item["InstancesToUpdate"] == 3, item
    assert item["ProgressDetails"] == {"LivePoolProgress": {"PercentageComplete": 0, "InstancesToUpdate": 3}}, item
    assert "EndTime" not in item and item["StartTime"].tzinfo is not None, item
    assert item["Preferences"] == {
        "MinHealthyPercentage": 90, "InstanceWarmup": 300, "SkipMatching": False, "AutoRollback": False,
        "ScaleInProtectedInstances": "Wait", "StandbyInstances": "Wait",
    }, item["Preferences"]
    assert item["DesiredConfiguration"] == {"LaunchTemplate": {"LaunchTemplateId": a.lt, "Version": "2"}}, item
    assert item["Strategy"] == "Rolling"
    # The group keeps its settings until the refresh succeeds.
    assert a.described("basic")["LaunchTemplate"]["Version"] == "1"
    check("StartInstanceRefresh: Pending, every documented field described, documented defaults")

    by_name = a.group("by-name")
    a.asg.start_instance_refresh(
        AutoScalingGroupName=by_name,
        DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateName": a.lt_name, "Version": "$Latest"}},
        Preferences={"MinHealthyPercentage": 50, "MaxHealthyPercentage": 150, "InstanceWarmup": 0,
                     "CheckpointPercentages": [20, 50], "BakeTime": 60, "SkipMatching": True},
    )
    prefs = a.refreshes(by_name)[0]["Preferences"]
    assert prefs["MaxHealthyPercentage"] == 150 and prefs["CheckpointPercentages"] == [20, 50], prefs
    assert prefs["CheckpointDelay"] == 3600 and prefs["InstanceWarmup"] == 0 and prefs["BakeTime"] == 60, prefs
    check("a template by name, $Latest; checkpoints need not end at 100; CheckpointDelay defaults to 3600")

    a.group("none")
    status, code, message = error_of(a.asg.describe_instance_refreshes, AutoScalingGroupName="ghost")
    assert (status, code) == (400, "ValidationError"), (status, code, message)
    status, code, message = error_of(a.asg.start_instance_refresh, AutoScalingGroupName="ghost")
    assert (status, code) == (400, "ValidationError"), (status, code, message)
    assert a.refreshes("none") == []
    check("unknown group: ValidationError; a group with no refresh: empty list")


def check_in_progress(h: Harness) -> None:
    a = Account(h, "busy")
    a.group("busy")
    first = a.start("busy")
    for status in ("Pending", "InProgress", "Baking"):
        if status != "Pending":
            a.move("busy", status=status)
        got = error_of(a.asg.start_instance_refresh, AutoScalingGroupName="busy")
        assert got == (400, "InstanceRefreshInProgress",
                       "The request failed because an active instance refresh already exists for the "
                       "specified Auto Scaling group."), (status, got)
    a.asg.cancel_instance_refresh(AutoScalingGroupName="busy")
    assert a.refreshes("busy")[0]["Status"] == "Cancelling"
    assert error_of(a.asg.start_instance_refresh, AutoScalingGroupName="busy")[1] == "InstanceRefreshInProgress"
    check("InstanceRefreshInProgress (400, the reference's text) while Pending, InProgress, Baking, Cancelling")

    got = error_of(a.asg.cancel_instance_refresh, AutoScalingGroupName="busy")
    assert got[:2] == (400, "ActiveInstanceRefreshNotFound"), got
    a.move("busy", status="Cancelled")
    [done] = a.refreshes("busy")
    assert done["Status"] == "Cancelled" and "EndTime" in done and done["InstanceRefreshId"] == first, done
    got = error_of(a.asg.cancel_instance_refresh, AutoScalingGroupName="busy")
    assert got == (400, "ActiveInstanceRefreshNotFound",
                   "The request failed because an active instance refresh or rollback for the specified "
                   "Auto Scaling group was not found."), got
    second = a.start("busy")
    assert a.asg.cancel_instance_refresh(AutoScalingGroupName="busy")["InstanceRefreshId"] == second
    check("CancelInstanceRefresh: Cancelling, then Cancelled by the test; none active -> ActiveInstanceRefreshNotFound")


def check_preferences(h: Harness) -> None:
    a = Account(h, "prefs")
    a.group("prefs")
    a.group("latest", version="$Latest")
    asg = h.client("autoscaling", validate=False)
    desired = a.desired("2")
    bad = [
        ({"MinHealthyPercentage": 101}, "Member must have value less than or equal to 100"),
        ({"MinHealthyPercentage": -1}, "Member must have value greater than or equal to 0"),
        ({"MinHealthyPercentage": 90, "MaxHealthyPercentage": 99}, "Member must have value greater than or equal to 100"),
        ({"MinHealthyPercentage": 90, "MaxHealthyPercentage": 201}, "Member must have value less than or equal to 200"),
        ({"MaxHealthyPercentage": 150}, "you must also specify MinHealthyPercentage"),
        ({"MinHealthyPercentage": 10, "MaxHealthyPercentage": 150}, "cannot be greater than 100"),
        ({"CheckpointPercentages": [50, 20]}, "ascending order"),
        ({"CheckpointPercentages": [20, 20, 100]}, "unique"),
        ({"CheckpointPercentages": [0, 100]}, "greater than or equal to 1"),
        ({"CheckpointPercentages": [101]}, "less than or equal to 100"),
        ({"CheckpointDelay": 60}, "you must also specify a value for CheckpointPercentages"),
        ({"CheckpointPercentages": [100], "CheckpointDelay": 172801}, "less than or equal to 172800"),
        ({"InstanceWarmup": -1}, "greater than or equal to 0"),
        ({"BakeTime": 172801}, "less than or equal to 172800"),
        ({"ScaleInProtectedInstances": "Bogus"}, "enum value set: [Ignore, Wait, Refresh]"),
        ({"StandbyInstances": ""}, "enum value set: [Terminate, Ignore, Wait]"),
        ({"AutoRollback": True}, "The AutoRollback parameter cannot be set to true when the DesiredConfiguration parameter is empty"),
    ]
    for prefs, expected in bad:
        got = error_of(asg.start_instance_refresh, AutoScalingGroupName="prefs", Preferences=prefs)
        assert got[:2] == (400, "ValidationError") and expected in got[2], (prefs, got)
    got = error_of(asg.start_instance_refresh, AutoScalingGroupName="prefs",
                   Preferences={"MinHealthyPercentage": 101, "MaxHealthyPercentage": 300})
    assert got[2].startswith("2 validation errors detected: Value '101' at 'preferences.minHealthyPercentage'"), got
    got = error_of(asg.start_instance_refresh, AutoScalingGroupName="prefs", Strategy="Sideways")
    assert got[1] == "ValidationError" and "strategy" in got[2], got
    # Auto rollback needs a group on a numbered version to roll back to.
    got = error_of(asg.start_instance_refresh, AutoScalingGroupName="latest", DesiredConfiguration=desired,
                   Preferences={"AutoRollback": True})
    assert got[1] == "ValidationError" and "$Latest or $Default" in got[2], got
    assert a.refreshes("prefs") == [] and a.refreshes("latest") == []
    check("preferences validated: ranges, Max only with Min and at most 100 above, checkpoints, delay, enums, AutoRollback")

    for prefs in ({"MinHealthyPercentage": 0, "MaxHealthyPercentage": 100},
                  {"MinHealthyPercentage": 100, "MaxHealthyPercentage": 200},
                  {"CheckpointPercentages": [1, 100], "CheckpointDelay": 0, "AutoRollback": True}):
        asg.start_instance_refresh(AutoScalingGroupName="prefs", DesiredConfiguration=desired, Preferences=prefs)
        a.move("prefs", status="Cancelled")
    check("preferences at the edges of their ranges are accepted")


def check_desired_configuration(h: Harness) -> None:
    a = Account(h, "desired")
    a.group("desired")
    cases = [
        ({"LaunchTemplate": {"LaunchTemplateId": "lt-0123456789abcdef0"}}, "does not exist"),
        ({"LaunchTemplate": {"LaunchTemplateName": "no-such-template"}}, "does not exist"),
        (a.desired("9"), "does not exist"),
        (a.desired("latest"), "not valid"),
        ({"LaunchTemplate": {"LaunchTemplateId": a.lt, "LaunchTemplateName": a.lt_name}}, "either launchTemplateId or LaunchTemplateName"),
        ({"LaunchTemplate": {"Version": "2"}}, "either launchTemplateId or LaunchTemplateName"),
        ({"LaunchTemplate": {"LaunchTemplateId": a.lt},
          "MixedInstancesPolicy": {"LaunchTemplate": {"LaunchTemplateSpecification": {"LaunchTemplateId": a.lt}}}}, "not both"),
    ]
    for desired, expected in cases:
        got = error_of(a.asg.start_instance_refresh, AutoScalingGroupName="desired", DesiredConfiguration=desired)
        assert got[:2] == (400, "ValidationError") and expected in got[2], (desired, got)
    assert a.refreshes("desired") == []
    check("DesiredConfiguration: the template and version must exist; id or name, not both; not both sources")


def check_success(h: Harness) -> None:
    a = Account(h, "ok")
    a.group("ok", version="$Latest")
    # Test setup: the group's instances run an old image.
    status, body = h.control("POST", "/_harness/groups/ok/instances", {"image_id": a.images[0]})
    assert status == 200 and len(body["launched"]) == 3, body
    before = a.images_of("ok")
    assert set(before.values()) == {a.images[0]}, before
    status, body = h.control("POST", "/_harness/groups/ok/instances", {"version": "2", "count": 2})
    assert status == 200 and set(a.images_of("ok").values()) == {a.images[1]} and len(a.images_of("ok")) == 2, body
    h.control("POST", "/_harness/groups/ok/instances", {"version": "1", "count": 3})
    before = a.images_of("ok")
    check("control: a group's instances replaced by ones running a given image or template version")

    a.start("ok", "3")
    body = a.move("ok", status="Successful")
    assert len(body["replaced"]) == 3, body
    group = a.described("ok")
    # The desired configuration is written onto the group: off $Latest.
    assert group["LaunchTemplate"] == {"LaunchTemplateId": a.lt, "LaunchTemplateName": a.lt_name, "Version": "3"}, group
    after = a.images_of("ok")
    assert set(after.values()) == {a.images[2]} and not set(after) & set(before), (before, after)
    assert [i["LifecycleState"] for i in group["Instances"]] == ["InService"] * 3, group["Instances"]
    old = a.ec2.describe_instances(InstanceIds=list(before))["Reservations"]
    assert {i["State"]["Name"] for r in old for i in r["Instances"]} == {"terminated"}, old
    [done] = a.refreshes("ok")
    assert (done["Status"], done["PercentageComplete"], done["InstancesToUpdate"]) == ("Successful", 100, 0), done
    assert done["EndTime"] >= done["StartTime"], done
    check("Successful: desired configuration written onto the group, instances replaced (DescribeInstances agrees)")

    # Skip matching keeps instances already on the desired image.
    a.group("skip", version="2", capacity=2)
    a.start("skip", "2", Preferences={"SkipMatching": True})
    assert a.move("skip", status="Successful")["replaced"] == []
    # Without a desired configuration, instances are replaced from the group's own.
    a.start("skip")
    body = a.move("skip", status="Successful", replace_instances=True)
    assert len(body["replaced"]) == 2 and set(a.images_of("skip").values()) == {a.images[1]}, body
    assert "DesiredConfiguration" not in a.refreshes("skip")[0]
    check("skip matching keeps matching instances; no desired configuration replaces from the group's own")


def check_failed_and_mixed(h: Harness) -> None:
    a = Account(h, "part")
    a.group("part", version="1")
    a.start("part", "2")
    a.move("part", status="InProgress", replace_instances=1)
    [item] = a.refreshes("part")
    assert (item["Status"], item["PercentageComplete"], item["InstancesToUpdate"]) == ("InProgress", 33, 2), item
    body = a.move("part", status="Failed", status_reason="Instances failed to launch.")
    [item] = a.refreshes("part")
    assert item["Status"] == "Failed" and item["StatusReason"] == "Instances failed to launch." and "EndTime" in item
    assert sorted(a.images_of("part").values()) == sorted([a.images[0], a.images[0], a.images[1]]), body
    # A failed refresh does not write its desired configuration.
    assert a.described("part")["LaunchTemplate"]["Version"] == "1"
    check("partial progress, then Failed: the group keeps its configuration and the replaced instances")

    policy = {
        "LaunchTemplate": {
            "LaunchTemplateSpecification": {"LaunchTemplateId": a.lt, "Version": "1"},
            "Overrides": [{"InstanceType": "t3.micro"}, {"InstanceType": "t3a.micro"}],
        },
        "InstancesDistribution": {"OnDemandPercentageAboveBaseCapacity": 100},
    }
    a.group("mixed", capacity=2, MixedInstancesPolicy=policy)
    a.asg.start_instance_refresh(
        AutoScalingGroupName="mixed",
        DesiredConfiguration={"MixedInstancesPolicy": {"LaunchTemplate": {
            "LaunchTemplateSpecification": {"LaunchTemplateId": a.lt, "Version": "3"}}}},
    )
    a.move("mixed", status="Successful")
    mixed = a.described("mixed")["MixedInstancesPolicy"]
    assert mixed["LaunchTemplate"]["LaunchTemplateSpecification"]["Version"] == "3", mixed
    assert [o["InstanceType"] for o in mixed["LaunchTemplate"]["Overrides"]] == ["t3.micro", "t3a.micro"], mixed
    assert mixed["InstancesDistribution"]["OnDemandPercentageAboveBaseCapacity"] == 100, mixed
    assert set(a.images_of("mixed").values()) == {a.images[2]}
    check("a MixedInstancesPolicy desired configuration is merged into the group's policy on success")


def check_rollback(h: Harness) -> None:
    a = Account(h, "back")
    a.group("back", version="1")
    got = error_of(a.asg.rollback_instance_refresh, AutoScalingGroupName="back")
    assert got[:2] == (400, "ActiveInstanceRefreshNotFound"), got
    a.start("back", "2")
    a.move("back", status="InProgress", replace_instances=2)
    a.asg.rollback_instance_refresh(AutoScalingGroupName="back")
    [item] = a.refreshes("back")
    assert item["Status"] == "RollbackInProgress", item
    details = item["RollbackDetails"]
    assert details["PercentageCompleteOnRollback"] == 66 and details["InstancesToUpdateOnRollback"] == 1, details
    assert "RollbackStartTime" in details and details["RollbackReason"], details
    assert error_of(a.asg.start_instance_refresh, AutoScalingGroupName="back")[1] == "InstanceRefreshInProgress"
    a.move("back", status="RollbackSuccessful")
    assert set(a.images_of("back").values()) == {a.images[0]} and a.described("back")["LaunchTemplate"]["Version"] == "1"
    assert a.refreshes("back")[0]["Status"] == "RollbackSuccessful"
    check("RollbackInstanceRefresh: RollbackInProgress with RollbackDetails, RollbackSuccessful restores the old image")

    a.group("default", version="$Default")
    a.start("default", "2")
    got = error_of(a.asg.rollback_instance_refresh, AutoScalingGroupName="default")
    assert got[:2] == (400, "IrreversibleInstanceRefresh") and "$Latest or $Default" in got[2], got
    a.group("nodesired", version="1")
    a.start("nodesired")
    got = error_of(a.asg.rollback_instance_refresh, AutoScalingGroupName="nodesired")
    assert got[:2] == (400, "IrreversibleInstanceRefresh") and "no desired configuration" in got[2], got
    check("rollback refused (IrreversibleInstanceRefresh) without a desired configuration or on $Default")

    a.group("auto", version="1")
    a.start("auto", "2", Preferences={"AutoRollback": True})
    a.move("auto", status="Failed", replace_instances=1)
    assert a.refreshes("auto")[0]["Status"] == "RollbackInProgress"
    assert sorted(a.images_of("auto").values()) == sorted([a.images[0], a.images[0], a.images[1]])
    a.move("auto", status="RollbackFailed")
    item = a.refreshes("auto")[0]
    assert item["Status"] == "RollbackFailed" and "EndTime" in item, item
    status, body = h.control("POST", "/_harness/refreshes/auto", {"status": "Successful"})
    assert status == 404, (status, body)
    check("AutoRollback: a failed refresh rolls back by itself")


def check_update_blocked(h: Harness) -> None:
    a = Account(h, "upd")
    a.group("upd", version="1")
    a.start("upd", "2")
    got = error_of(a.asg.update_auto_scaling_group, AutoScalingGroupName="upd",
                   LaunchTemplate={"LaunchTemplateId": a.lt, "Version": "3"})
    assert got[:2] == (400, "ValidationError") and "An active instance refresh with a desired configuration" in got[2], got
    a.asg.update_auto_scaling_group(AutoScalingGroupName="upd", MaxSize=9)
    a.move("upd", status="Cancelling")
    assert error_of(a.asg.update_auto_scaling_group, AutoScalingGroupName="upd",
                    LaunchTemplate={"LaunchTemplateId": a.lt, "Version": "3"})[1] == "ValidationError"
    a.move("upd", status="Cancelled")
    a.asg.update_auto_scaling_group(AutoScalingGroupName="upd", LaunchTemplate={"LaunchTemplateId": a.lt, "Version": "3"})
    # Without a desired configuration the launch source stays free.
    a.start("upd")
    a.asg.update_auto_scaling_group(AutoScalingGroupName="upd", LaunchTemplate={"LaunchTemplateId": a.lt, "Version": "2"})
    check("UpdateAutoScalingGroup cannot change the launch source under an active refresh with a desired configuration")


def check_history(h: Harness) -> None:
    a = Account(h, "hist")
    a.group("hist")
    ids = []
    for _ in range(5):
        ids.append(a.start("hist"))
        a.move("hist", status="Successful", replace_instances=False)
    assert [r["InstanceRefreshId"] for r in a.refreshes("hist")] == ids[::-1]
    pages = pages_of(a.asg.describe_instance_refreshes, "InstanceRefreshes", "InstanceRefreshId",
                     AutoScalingGroupName="hist", MaxRecords=2)
    assert pages == [ids[4:2:-1], ids[2:0:-1], ids[:1]], pages
    assert [r["InstanceRefreshId"] for r in a.refreshes("hist", InstanceRefreshIds=[ids[1], ids[3], "nope"])] == [ids[3], ids[1]]
    unvalidated = h.client("autoscaling", validate=False)
    for bad in (0, 101):
        assert error_of(unvalidated.describe_instance_refreshes, AutoScalingGroupName="hist",
                        MaxRecords=bad)[1] == "ValidationError"
    got = error_of(a.asg.describe_instance_refreshes, AutoScalingGroupName="hist", NextToken="junk")
    assert got[:2] == (400, "InvalidNextToken"), got
    check("DescribeInstanceRefreshes: newest first, MaxRecords 1-100 with NextToken, InstanceRefreshIds")

    status, clock = h.control("POST", "/_harness/clock", {"advance_seconds": 41 * 86400})
    assert status == 200, clock
    active = a.start("hist")
    assert len(a.refreshes("hist")) == 6
    h.control("POST", "/_harness/clock", {"advance_seconds": 86400 + 1})
    assert [r["InstanceRefreshId"] for r in a.refreshes("hist")] == [active]
    h.control("POST", "/_harness/clock", {"now": None})
    check("history: refreshes started more than six weeks ago (controllable clock) are gone")


def check_instances_as_reported(h: Harness) -> None:
    a = Account(h, "inst")
    a.group("inst", version="$Latest", capacity=2)
    h.control("POST", "/_harness/groups/inst/instances", {"version": "1"})
    group = a.described("inst")
    for instance in group["Instances"]:
        assert set(instance) >= {"InstanceId", "LaunchTemplate", "LifecycleState", "HealthStatus"}, instance
        # moto names the template's default version (1 here), whatever the
        # instance launched from: the ImageId is what tells.
        assert instance["LaunchTemplate"]["Version"] == "1" and "ImageId" not in instance, instance
    ids = [i["InstanceId"] for i in group["Instances"]]
    by_filter = a.ec2.describe_instances(Filters=[{"Name": "instance-id", "Values": ids}])["Reservations"]
    assert {i["InstanceId"]: i["ImageId"] for r in by_filter for i in r["Instances"]} == a.images_of("inst")
    got = error_of(a.ec2.describe_instances, InstanceIds=ids, MaxResults=5)
    assert got[1] == "InvalidParameterCombination", got
    check("group instances: DescribeAutoScalingGroups has no ImageId; DescribeInstances (ids or instance-id filter) does")

    for path, payload, expected in (
        ("/_harness/refreshes/ghost", {"status": "Successful"}, 404),
        ("/_harness/refreshes/inst", {"status": "Successful"}, 404),
        ("/_harness/refreshes/inst", {"status": "Done"}, 400),
        ("/_harness/groups/inst/instances", {}, 400),
        ("/_harness/groups/inst/instances", {"version": "7"}, 404),
    ):
        status, body = h.control("POST", path, payload)
        assert status == expected, (path, payload, status, body)
    a.start("inst")
    a.move("inst", status="Cancelling")
    status, body = h.control("POST", "/_harness/refreshes/inst", {"status": "Successful"})
    assert status == 409, (status, body)
    check("control errors: unknown group or refresh 404, unknown status 400, impossible move 409")


def check_iam(h: Harness) -> None:
    a = Account(h, "iam")
    a.group("tagged")
    a.group("tagged2")
    a.group("other", tags=({"Key": "ami-reconciler:managed", "Value": "false", "PropagateAtLaunch": False},))
    a.group("bare", tags=())
    refresh_actions = ["autoscaling:StartInstanceRefresh", "autoscaling:CancelInstanceRefresh",
                       "autoscaling:RollbackInstanceRefresh"]
    reconciler = h.user("reconciler", [
        {"Effect": "Allow", "Action": ["autoscaling:DescribeInstanceRefreshes"], "Resource": "*"},
        {"Effect": "Allow", "Action": refresh_actions,
         "Resource": "arn:aws:autoscaling:*:*:autoScalingGroup:*:autoScalingGroupName/*",
         "Condition": {"StringEquals": {"aws:ResourceTag/ami-reconciler:managed": "true"}}},
    ])
    wide = h.user("wide", [{"Effect": "Allow", "Action": "autoscaling:*", "Resource": "*"}])
    denied = h.user("denied", [
        {"Effect": "Allow", "Action": "autoscaling:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "autoscaling:StartInstanceRefresh", "Resource": "*",
         "Condition": {"StringNotEquals": {"aws:ResourceTag/ami-reconciler:managed": "true"}}},
    ])
    h.control("POST", "/_harness/reset")
    h.reset_auth(b"0")
    try:
        reconciler.start_instance_refresh(AutoScalingGroupName="tagged")
        reconciler.cancel_instance_refresh(AutoScalingGroupName="tagged")
        assert reconciler.describe_instance_refreshes(AutoScalingGroupName="other")["InstanceRefreshes"] == []
        for group in ("other", "bare", "ghost"):
            for call in (reconciler.start_instance_refresh, reconciler.cancel_instance_refresh):
                status, raw = raw_body_of(reconciler, call.__name__.title().replace("_", ""), call,
                                          AutoScalingGroupName=group)
                assert status == 403 and b"<Code>AccessDenied</Code>" in raw, (group, call, status, raw)
        print("    wire:", status, raw.decode())
        got = error_of(reconciler.start_instance_refresh, AutoScalingGroupName="other")
        assert got[:2] == (403, "AccessDenied") and "autoscaling:StartInstanceRefresh" in got[2], got
        wide.start_instance_refresh(AutoScalingGroupName="other")
        wide.cancel_instance_refresh(AutoScalingGroupName="other")
        denied.start_instance_refresh(AutoScalingGroupName="tagged2")
        got = error_of(denied.start_instance_refresh, AutoScalingGroupName="bare")
        assert got[:2] == (403, "AccessDenied") and "explicit deny" in got[2], got
    finally:
        h.reset_auth(b"inf")
    assert a.refreshes("other")[0]["Status"] == "Cancelling" and a.refreshes("bare") == []
    check("IAM: the refresh actions need an Allow whose resource and aws:ResourceTag conditions match the group")


def main() -> None:
    h = Harness()
    print(f"ready after {h.ready_seconds * 1000:.0f} ms: proxy {h.proxy}, moto {h.moto}")
    run_checks(
        h, check_start_and_describe, check_in_progress, check_preferences, check_desired_configuration,
        check_success, check_failed_and_mixed, check_rollback, check_update_blocked, check_history,
        check_instances_as_reported, check_iam,
    )
    print("all instance refresh checks passed")


if __name__ == "__main__":
    main()
