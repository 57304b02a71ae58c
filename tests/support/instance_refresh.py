"""Instance refresh for moto 5.2.5's Auto Scaling, following the EC2 Auto Scaling API reference.

moto implements none of StartInstanceRefresh, DescribeInstanceRefreshes,
CancelInstanceRefresh and RollbackInstanceRefresh (the server answers HTTP 500).
Importing this module adds them to moto's Auto Scaling response class (moto
dispatches an action to the method named after it in snake_case) and
installs:

* a check on UpdateAutoScalingGroup while a refresh with a desired
  configuration is active;
* the IAM tag-condition check for the three mutating refresh actions when
  moto's IAM enforcement is on (``POST /moto-api/reset-auth``);
* ``control(method, path, payload)``, the test-only control interface the
  harness proxy serves under ``/_harness/refreshes/``, ``/_harness/groups/``
  and ``/_harness/clock`` (see harness.py and docs/testing.md).

Nothing here moves a refresh by itself: a refresh stays ``Pending`` until a
test moves it through the control interface, as AWS moves it in its own time.
Every behaviour and its source is listed in docs/testing.md, "Instance refresh".
"""

from __future__ import annotations

import copy
import random
import re
import threading
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from moto.autoscaling.exceptions import AutoscalingClientError
from moto.autoscaling.models import ASG_NAME_TAG, FakeAutoScalingGroup, InstanceState
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult

from aws_errors import query_error
from moto_gaps import decode_token, enforcing, groups, iam_request, page_of

# All statuses of the InstanceRefresh data type, in the reference's order.
STATUSES = (
    "Pending", "InProgress", "Successful", "Failed", "Cancelling", "Cancelled",
    "RollbackInProgress", "RollbackFailed", "RollbackSuccessful", "Baking",
)
# The reference does not define "active". Every status that is not an end
# state counts (the harsher reading): a new refresh is refused while the old
# one is still Cancelling, rolling back or baking.
ACTIVE = frozenset({"Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking"})
# CancelInstanceRefresh "Cancels an instance refresh or rollback that is in
# progress"; a cancellation already under way is not cancelled again.
CANCELLABLE = frozenset({"Pending", "InProgress", "Baking", "RollbackInProgress"})
# RollbackInstanceRefresh "Cancels an instance refresh that is in progress".
ROLLBACKABLE = frozenset({"Pending", "InProgress", "Baking"})

# Moves the control interface may make (status -> allowed next statuses).
_TRANSITIONS = {
    "Pending": {"InProgress", "Baking", "Successful", "Failed", "Cancelling", "Cancelled",
                "RollbackInProgress"},
    "InProgress": {"Baking", "Successful", "Failed", "Cancelling", "Cancelled", "RollbackInProgress"},
    "Baking": {"Successful", "Failed", "Cancelling", "Cancelled", "RollbackInProgress"},
    "Cancelling": {"Cancelled"},
    "RollbackInProgress": {"RollbackSuccessful", "RollbackFailed", "Cancelling", "Cancelled"},
}

# "Gets information about the instance refreshes for the specified Auto
# Scaling group from the previous six weeks."
HISTORY = timedelta(weeks=6)

# The reasons given when none is sent.
_FAILED_REASON = "The instance refresh failed."
_USER_ROLLBACK_REASON = "Rollback started by user request."

_LOCK = threading.RLock()


# ---------------------------------------------------------------------------
# Clock (controllable, for the six-week history)
# ---------------------------------------------------------------------------

_clock_offset = timedelta(0)


def now() -> datetime:
    # Whole seconds, as Auto Scaling reports its times.
    return (datetime.now(timezone.utc) + _clock_offset).replace(microsecond=0)


def _set_clock(payload: dict) -> dict:
    global _clock_offset
    if "now" in payload:
        if payload["now"] is None:
            _clock_offset = timedelta(0)
        else:
            wanted = _parse_time(payload["now"])
            _clock_offset = wanted - datetime.now(timezone.utc)
    if payload.get("advance_seconds"):
        _clock_offset += timedelta(seconds=float(payload["advance_seconds"]))
    return {"ok": True, "now": _iso(now())}


def _parse_time(text: str) -> datetime:
    parsed = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# ---------------------------------------------------------------------------
# Errors (Auto Scaling's XML error shape, status from the service model)
# ---------------------------------------------------------------------------


def _validation(message: str) -> AutoscalingClientError:
    return AutoscalingClientError("ValidationError", message)


def _in_progress() -> AutoscalingClientError:
    # HTTP 400, text of the reference's InstanceRefreshInProgress error.
    return AutoscalingClientError(
        "InstanceRefreshInProgress",
        "The request failed because an active instance refresh already exists for the specified Auto Scaling group.",
    )


def _not_found() -> AutoscalingClientError:
    # HTTP 400, text of the reference's ActiveInstanceRefreshNotFound error.
    return AutoscalingClientError(
        "ActiveInstanceRefreshNotFound",
        "The request failed because an active instance refresh or rollback for the specified Auto Scaling group was not found.",
    )


def _irreversible(why: str) -> AutoscalingClientError:
    # HTTP 400; the reference's text, then which of its cases applies.
    return AutoscalingClientError(
        "IrreversibleInstanceRefresh",
        "The request failed because a desired configuration was not found or an incompatible launch template "
        "(uses a Systems Manager parameter instead of an AMI ID) or launch template version ($Latest or $Default) "
        f"is present on the Auto Scaling group. {why}",
    )


def _group_not_found(name: str) -> AutoscalingClientError:
    return _validation(f"AutoScalingGroup name not found - AutoScalingGroup {name!r} not found")


def _invalid_next_token() -> AutoscalingClientError:
    # HTTP 400, from the reference's error list.
    return AutoscalingClientError("InvalidNextToken", "The NextToken value is not valid.")


def _not_fully_formed(detail: str) -> AutoscalingClientError:
    return _validation(f"You must use a valid fully-formed launch template. {detail}")


# ---------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------


class Refresh:
    def __init__(self, group: FakeAutoScalingGroup, strategy: str, preferences: dict,
                 desired: dict | None, instances: int):
        self.id = str(uuid.uuid4())
        self.group_key = group._id  # a group re-created under the same name starts afresh
        self.group_name = group.name
        self.strategy = strategy
        self.status = "Pending"
        self.status_reason: str | None = None
        self.start_time = now()
        self.end_time: datetime | None = None
        self.total = instances
        self.instances_to_update = instances
        self.percentage_complete = 0
        self.preferences = preferences
        self.desired = desired
        self.rollback: dict | None = None
        self.sequence = next(_SEQUENCE)

    def describe(self, group: FakeAutoScalingGroup | None) -> dict:
        item: dict[str, Any] = {
            "InstanceRefreshId": self.id,
            "AutoScalingGroupName": self.group_name,
            "Status": self.status,
            "StartTime": self.start_time,
            "PercentageComplete": self.percentage_complete,
            "InstancesToUpdate": self.instances_to_update,
            "ProgressDetails": self.progress(),
            "Preferences": copy.deepcopy(self.preferences),
            "Strategy": self.strategy,
        }
        if group is not None and group.warm_pool is not None:
            item["ProgressDetails"]["WarmPoolProgress"] = {"PercentageComplete": 100, "InstancesToUpdate": 0}
        if self.status_reason:
            item["StatusReason"] = self.status_reason
        if self.end_time is not None:
            item["EndTime"] = self.end_time
        if self.desired is not None:
            item["DesiredConfiguration"] = copy.deepcopy(self.desired)
        if self.rollback is not None:
            item["RollbackDetails"] = copy.deepcopy(self.rollback)
        return item

    def progress(self) -> dict:
        return {
            "LivePoolProgress": {
                "PercentageComplete": self.percentage_complete,
                "InstancesToUpdate": self.instances_to_update,
            }
        }


def _sequence():
    n = 0
    while True:
        n += 1
        yield n


_SEQUENCE = _sequence()


def _refreshes(backend: Any) -> list[Refresh]:
    # Kept on the backend object, so moto's reset (which re-initialises every
    # backend) clears the history too.
    found = backend.__dict__.get("_instance_refreshes")
    if found is None:
        found = backend.__dict__["_instance_refreshes"] = []
    return found


def _expire(backend: Any) -> None:
    cutoff = now() - HISTORY
    kept = [r for r in _refreshes(backend) if r.status in ACTIVE or r.start_time >= cutoff]
    backend.__dict__["_instance_refreshes"] = kept


def _of_group(backend: Any, group: FakeAutoScalingGroup) -> list[Refresh]:
    _expire(backend)
    return [r for r in _refreshes(backend) if r.group_key == group._id]


def _active(backend: Any, group: FakeAutoScalingGroup) -> Refresh | None:
    return next((r for r in _of_group(backend, group) if r.status in ACTIVE), None)


# ---------------------------------------------------------------------------
# Parameter validation
# ---------------------------------------------------------------------------

_SCALE_IN_PROTECTED = ["Ignore", "Wait", "Refresh"]  # order as AWS prints it
_STANDBY = ["Terminate", "Ignore", "Wait"]
_STRATEGIES = ["Rolling", "ReplaceRootVolume"]
_TEMPLATE_NAME = re.compile(r"^[a-zA-Z0-9().\-/_]+$")


def _as_int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise _validation(f"Value '{value}' is not a number.")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _validation(f"Value '{value}' is not a number.")


def _as_bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    return str(value).lower() == "true"


class _Constraints:
    """Collects model-constraint violations in the form AWS reports them:
    "2 validation errors detected: Value 'x' at 'a.b' failed to satisfy
    constraint: Member must ...; Value ..."."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def _add(self, value: Any, path: str, rule: str) -> None:
        self.errors.append(f"Value '{value}' at '{path}' failed to satisfy constraint: {rule}")

    def _bounds(self, value: Any, measured: int, path: str, low: int | None, high: int | None, what: str) -> None:
        if low is not None and measured < low:
            self._add(value, path, f"Member must have {what} greater than or equal to {low}")
        if high is not None and measured > high:
            self._add(value, path, f"Member must have {what} less than or equal to {high}")

    def range(self, value: int | None, path: str, low: int | None, high: int | None) -> None:
        if value is not None:
            self._bounds(value, value, path, low, high, "value")

    def enum(self, value: Any, path: str, allowed: list[str]) -> None:
        if value is not None and value not in allowed:
            self._add(value, path, f"Member must satisfy enum value set: [{', '.join(allowed)}]")

    def length(self, value: str | None, path: str, low: int, high: int) -> None:
        if value is not None:
            self._bounds(value, len(value), path, low, high, "length")

    def members(self, values: list[int], path: str, low: int, high: int) -> None:
        shown = f"[{', '.join(map(str, values))}]"
        if any(v < low for v in values):
            self._add(shown, path,
                      f"Member must satisfy constraint: [Member must have value greater than or equal to {low}]")
        if any(v > high for v in values):
            self._add(shown, path,
                      f"Member must satisfy constraint: [Member must have value less than or equal to {high}]")

    def raise_if_any(self) -> None:
        if self.errors:
            count = len(self.errors)
            noun = "error" if count == 1 else "errors"
            raise _validation(f"{count} validation {noun} detected: " + "; ".join(self.errors))


def _check_spec(spec: dict, path: str, constraints: _Constraints) -> None:
    constraints.length(spec.get("LaunchTemplateId"), f"{path}.launchTemplateId", 1, 255)
    name = spec.get("LaunchTemplateName")
    constraints.length(name, f"{path}.launchTemplateName", 3, 128)
    if name is not None and 3 <= len(name) <= 128 and not _TEMPLATE_NAME.match(name):
        constraints._add(name, f"{path}.launchTemplateName",
                         r"Member must satisfy regular expression pattern: [a-zA-Z0-9\(\)\.\-/_]+")
    constraints.length(spec.get("Version"), f"{path}.version", 1, 255)


def _resolve_spec(group: FakeAutoScalingGroup, spec: dict) -> tuple[Any, Any]:
    """The template and version a launch template specification names.

    "Conditional: You must specify either a LaunchTemplateId or a
    LaunchTemplateName." The version is a number, $Latest or $Default
    ("The default value is $Default")."""
    template_id, name = spec.get("LaunchTemplateId"), spec.get("LaunchTemplateName")
    if bool(template_id) == bool(name):
        # moto's (and AWS's) text for the same mistake in UpdateAutoScalingGroup.
        raise _validation("Valid requests must contain either launchTemplateId or LaunchTemplateName")
    ec2 = group.ec2_backend
    if template_id:
        template = ec2.launch_templates.get(template_id)
        if template is None:
            raise _not_fully_formed(f"The specified launch template, with template ID {template_id}, does not exist.")
    else:
        ids = ec2.launch_template_name_to_ids.get(name)
        template = ec2.launch_templates.get(ids[0] if isinstance(ids, list) else ids) if ids else None
        if template is None:
            raise _not_fully_formed(f"The specified launch template, with template name {name}, does not exist.")
    wanted = spec.get("Version") or "$Default"
    if wanted not in ("$Latest", "$Default") and not re.fullmatch(r"[0-9]+", wanted):
        raise _not_fully_formed(f"The version {wanted!r} is not valid: specify a version number, $Latest or $Default.")
    try:
        version = template.get_version(wanted)
    except Exception:
        version = None
    if version is None:
        raise _not_fully_formed(
            f"The specified launch template, with template ID {template.id}, version {wanted}, does not exist."
        )
    return template, version


def _group_spec(group: FakeAutoScalingGroup) -> dict | None:
    if group.mixed_instances_policy:
        return group.mixed_instances_policy.get("LaunchTemplate", {}).get("LaunchTemplateSpecification")
    return group.launch_template


def _rollback_unsupported(group: FakeAutoScalingGroup, desired: dict | None) -> str | None:
    """Why a rollback is not supported, per the reference's three cases, or None."""
    if desired is None:
        return "There is no desired configuration specified for the instance refresh."
    spec = _group_spec(group)
    if spec is None:
        return "The Auto Scaling group does not use a launch template."
    version = spec.get("Version")
    if version in (None, "", "$Latest", "$Default"):
        return "The Auto Scaling group uses the launch template's $Latest or $Default version."
    try:
        image = group.ec2_launch_template.get_version(version).data.get("ImageId") or ""
    except Exception:
        image = ""
    if image.startswith("resolve:ssm:"):
        return ("The Auto Scaling group has a launch template that uses an AWS Systems Manager parameter "
                "instead of an AMI ID for the ImageId property.")
    return None


def _validate_start(response: AutoScalingResponse, group: FakeAutoScalingGroup) -> tuple[str, dict, dict | None]:
    strategy = response._get_param("Strategy") or "Rolling"
    prefs_in = response._get_param("Preferences") or {}
    desired_in = response._get_param("DesiredConfiguration") or None

    constraints = _Constraints()
    constraints.enum(strategy, "strategy", _STRATEGIES)

    min_healthy = _as_int(prefs_in.get("MinHealthyPercentage"))
    max_healthy = _as_int(prefs_in.get("MaxHealthyPercentage"))
    warmup = _as_int(prefs_in.get("InstanceWarmup"))
    checkpoints = [_as_int(v) for v in (prefs_in.get("CheckpointPercentages") or [])]
    checkpoint_delay = _as_int(prefs_in.get("CheckpointDelay"))
    bake_time = _as_int(prefs_in.get("BakeTime"))
    skip_matching = _as_bool(prefs_in.get("SkipMatching"))
    auto_rollback = _as_bool(prefs_in.get("AutoRollback"))
    scale_in = prefs_in.get("ScaleInProtectedInstances")
    standby = prefs_in.get("StandbyInstances")
    alarms = (prefs_in.get("AlarmSpecification") or {}).get("Alarms")

    # Model constraints (IntPercent 0-100, IntPercent100To200, ...).
    constraints.range(min_healthy, "preferences.minHealthyPercentage", 0, 100)
    constraints.range(max_healthy, "preferences.maxHealthyPercentage", 100, 200)
    constraints.range(warmup, "preferences.instanceWarmup", 0, None)
    constraints.members(checkpoints, "preferences.checkpointPercentages", 1, 100)
    constraints.range(checkpoint_delay, "preferences.checkpointDelay", 0, 172800)
    constraints.range(bake_time, "preferences.bakeTime", 0, 172800)
    constraints.enum(scale_in, "preferences.scaleInProtectedInstances", _SCALE_IN_PROTECTED)
    constraints.enum(standby, "preferences.standbyInstances", _STANDBY)
    for n, alarm in enumerate(alarms or [], start=1):
        constraints.length(alarm, f"preferences.alarmSpecification.alarms.{n}.member", 1, 255)
    if desired_in:
        if desired_in.get("LaunchTemplate"):
            _check_spec(desired_in["LaunchTemplate"], "desiredConfiguration.launchTemplate", constraints)
        mixed = desired_in.get("MixedInstancesPolicy")
        if mixed and (mixed.get("LaunchTemplate") or {}).get("LaunchTemplateSpecification"):
            _check_spec(mixed["LaunchTemplate"]["LaunchTemplateSpecification"],
                        "desiredConfiguration.mixedInstancesPolicy.launchTemplate.launchTemplateSpecification",
                        constraints)
    constraints.raise_if_any()

    if strategy == "ReplaceRootVolume":
        # Not emulated: fail loudly (HTTP 500) rather than pretend.
        raise NotImplementedError("StartInstanceRefresh Strategy=ReplaceRootVolume is not emulated")

    # Cross-field rules the reference states.
    if max_healthy is not None and min_healthy is None:
        raise _validation(
            "If you specify MaxHealthyPercentage, you must also specify MinHealthyPercentage, "
            "and the difference between them cannot be greater than 100."
        )
    if max_healthy is not None and max_healthy - min_healthy > 100:
        raise _validation(
            f"The difference between MaxHealthyPercentage ({max_healthy}) and MinHealthyPercentage "
            f"({min_healthy}) cannot be greater than 100."
        )
    if checkpoint_delay is not None and not checkpoints:
        raise _validation(
            "CheckpointDelay is optional, but if you specify a value for it, you must also specify a value "
            "for CheckpointPercentages."
        )
    if any(b <= a for a, b in zip(checkpoints, checkpoints[1:])):
        raise _validation(
            "CheckpointPercentages must be threshold values in ascending order, and each number must be unique."
        )
    if alarms is not None and len(alarms) > 10:
        raise _validation("You can specify up to 10 alarms in AlarmSpecification.")

    desired = None
    if desired_in:
        template_spec = desired_in.get("LaunchTemplate")
        mixed = desired_in.get("MixedInstancesPolicy")
        if template_spec and mixed:
            # As in UpdateAutoScalingGroup: "If you specify LaunchTemplate in
            # your update request, you can't specify LaunchConfigurationName or
            # MixedInstancesPolicy."
            raise _validation(
                "Valid requests must contain either LaunchTemplate or MixedInstancesPolicy in the "
                "DesiredConfiguration, not both."
            )
        desired = {}
        if template_spec:
            _resolve_spec(group, template_spec)
            desired["LaunchTemplate"] = {k: v for k, v in template_spec.items() if v is not None}
        elif mixed:
            spec = (mixed.get("LaunchTemplate") or {}).get("LaunchTemplateSpecification")
            if spec:
                _resolve_spec(group, spec)
            elif not group.mixed_instances_policy:
                raise _validation(
                    "The MixedInstancesPolicy in the DesiredConfiguration must specify a launch template, "
                    "because the Auto Scaling group has no mixed instances policy."
                )
            for override in (mixed.get("LaunchTemplate") or {}).get("Overrides") or []:
                if override.get("LaunchTemplateSpecification"):
                    _resolve_spec(group, override["LaunchTemplateSpecification"])
            desired["MixedInstancesPolicy"] = copy.deepcopy(mixed)
        else:
            desired = None  # an empty DesiredConfiguration is no desired configuration

    if auto_rollback and desired is None:
        # AWS's answer, as reported against the API.
        raise _validation(
            "The request isn't valid. The AutoRollback parameter cannot be set to true when the "
            "DesiredConfiguration parameter is empty. Set AutoRollback to false or specify a desired "
            "configuration and try again."
        )
    if auto_rollback:
        why = _rollback_unsupported(group, desired)
        if why:
            raise _validation(f"The request isn't valid. AutoRollback is not supported: {why}")
    if skip_matching and desired is None and group.ec2_launch_template is None:
        # User guide: "Using skip matching with a launch configuration is not supported."
        raise _validation(
            "The request isn't valid. Skip matching is not supported for an Auto Scaling group that uses a "
            "launch configuration: specify a launch template in the DesiredConfiguration."
        )

    # Preferences as Describe reports them: what was sent, with the defaults
    # the reference documents filled in.
    prefs: dict[str, Any] = {
        "MinHealthyPercentage": 90 if min_healthy is None else min_healthy,
        "SkipMatching": bool(skip_matching),
        "AutoRollback": bool(auto_rollback),
        "ScaleInProtectedInstances": scale_in or "Wait",
        "StandbyInstances": standby or "Wait",
    }
    if max_healthy is not None:
        prefs["MaxHealthyPercentage"] = max_healthy  # omitted is not the same as 100
    if warmup is not None:
        prefs["InstanceWarmup"] = warmup
    elif getattr(group, "default_instance_warmup", None) is not None:
        prefs["InstanceWarmup"] = group.default_instance_warmup
    elif group.health_check_grace_period is not None:
        prefs["InstanceWarmup"] = group.health_check_grace_period
    if checkpoints:
        prefs["CheckpointPercentages"] = checkpoints
        prefs["CheckpointDelay"] = 3600 if checkpoint_delay is None else checkpoint_delay
    if bake_time is not None:
        prefs["BakeTime"] = bake_time
    if alarms is not None:
        prefs["AlarmSpecification"] = {"Alarms": list(alarms)}
    return strategy, prefs, desired


# ---------------------------------------------------------------------------
# IAM: resource and tag conditions of the refresh actions
# ---------------------------------------------------------------------------

_CONDITIONED_ACTIONS = {"StartInstanceRefresh", "CancelInstanceRefresh", "RollbackInstanceRefresh"}


def _group_arn(response: AutoScalingResponse, group: FakeAutoScalingGroup | None, name: str) -> str:
    if group is not None:
        return group.arn
    # No such group: an ARN with no id, so resource patterns still apply.
    return (f"arn:aws:autoscaling:{response.region}:{response.current_account}:autoScalingGroup:"
            f"*:autoScalingGroupName/{name}")


_original_authorize = AutoScalingResponse._authenticate_and_authorize_normal_action


def _authenticate_and_authorize_normal_action(self: AutoScalingResponse, resource: str = "*") -> None:
    """moto checks every Auto Scaling action against resource "*" and
    evaluates conditions wrongly (a condition operator it does not know counts
    as met, so a conditional Deny always denies). For the refresh actions only
    the signature is checked here; the policies are evaluated in full by
    _authorize once the group is known."""
    if self._get_action() in _CONDITIONED_ACTIONS and enforcing():
        from urllib.parse import urlparse

        path = self.raw_path
        if urlparse(self.uri).query:
            path += "?" + urlparse(self.uri).query
        iam_request(self, path).check_signature()
        return
    _original_authorize(self, resource)


AutoScalingResponse._authenticate_and_authorize_normal_action = _authenticate_and_authorize_normal_action


def _wild(pattern: str, value: str, ignore_case: bool = False) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def _listify(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _condition_holds(operator: str, key: str, expected: Any, context: dict[str, str], deny: bool) -> bool:
    present = key.lower() in context
    actual = context.get(key.lower())
    if_exists = operator.endswith("IfExists")
    base = operator[: -len("IfExists")] if if_exists else operator
    values = [str(v) for v in _listify(expected)]
    if base == "Null":
        wanted_null = str(expected).lower() == "true"
        return (not present) == wanted_null
    if not present:
        if if_exists:
            return True
        # Negated operators hold for a missing key, as in IAM.
        return base in ("StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike")
    checks = {
        "StringEquals": lambda v: actual == v,
        "StringNotEquals": lambda v: actual != v,
        "StringEqualsIgnoreCase": lambda v: actual.lower() == v.lower(),
        "StringNotEqualsIgnoreCase": lambda v: actual.lower() != v.lower(),
        "StringLike": lambda v: _wild(v, actual),
        "StringNotLike": lambda v: not _wild(v, actual),
    }
    check = checks.get(base)
    if check is None:
        # Not evaluated here: the harsher reading (an Allow does not apply, a
        # Deny does).
        return deny
    if base.startswith("StringNot"):
        return all(check(v) for v in values)
    return any(check(v) for v in values)


def _statement_applies(statement: dict, action: str, resource: str, context: dict[str, str]) -> bool:
    if "Action" in statement:
        if not any(_wild(p, action, ignore_case=True) for p in _listify(statement["Action"])):
            return False
    elif "NotAction" in statement:
        if any(_wild(p, action, ignore_case=True) for p in _listify(statement["NotAction"])):
            return False
    else:
        return False
    if "Resource" in statement:
        if not any(_wild(p, resource) for p in _listify(statement["Resource"])):
            return False
    elif "NotResource" in statement:
        if any(_wild(p, resource) for p in _listify(statement["NotResource"])):
            return False
    deny = statement.get("Effect") == "Deny"
    for operator, pairs in (statement.get("Condition") or {}).items():
        for key, expected in pairs.items():
            if not _condition_holds(operator, key, expected, context, deny):
                return False
    return True


def _authorize(response: AutoScalingResponse, group: FakeAutoScalingGroup | None, name: str) -> tuple | None:
    """None if the caller may act on the group, else an AccessDenied response."""
    if not enforcing():
        return None
    from moto.iam.access_control import IAMPolicy, create_access_key
    from moto.utilities.utils import get_partition

    action = f"autoscaling:{response._get_action()}"
    resource = _group_arn(response, group, name)
    context: dict[str, str] = {}
    for tag in (group.tags if group is not None else []):
        for prefix in ("aws:ResourceTag/", "autoscaling:ResourceTag/"):
            context[f"{prefix}{tag['Key']}".lower()] = tag["Value"]

    credential = re.search(r"Credential=([^/]+)/", response.headers.get("Authorization", ""))
    key = create_access_key(
        account_id=response.current_account,
        partition=get_partition(response.region),
        access_key_id=credential.group(1) if credential else "",
        headers=response.headers,
    )
    allowed = False
    for policy in key.collect_policies():
        document = IAMPolicy(policy)._policy_json
        for statement in _listify(document.get("Statement", [])):
            if _statement_applies(statement, action, resource, context):
                if statement.get("Effect") == "Deny":
                    return _access_denied(response, key.arn, action, resource, "with an explicit deny")
                allowed = True
    if allowed:
        return None
    return _access_denied(response, key.arn, action, resource, "because no identity-based policy allows the "
                          f"{action} action")


def _access_denied(response: AutoScalingResponse, who: str, action: str, resource: str, why: str) -> tuple:
    message = f"User: {who} is not authorized to perform: {action} on resource: {resource} {why}"
    return query_error("AccessDenied", message, str(uuid.uuid4()), 403), {"status": 403, "Content-Type": "text/xml"}


# ---------------------------------------------------------------------------
# The actions
# ---------------------------------------------------------------------------


def _target(response: AutoScalingResponse, authorize: bool = True) -> tuple[FakeAutoScalingGroup | None, tuple | None]:
    """The group the request names and, if ``authorize`` and the caller may
    not act on it, the AccessDenied answer to return. An unknown group the
    caller may act on is a ValidationError."""
    name = response._get_param("AutoScalingGroupName")
    if not name:
        raise _validation("1 validation error detected: Value null at 'autoScalingGroupName' failed to satisfy "
                          "constraint: Member must not be null")
    group = response.autoscaling_backend.autoscaling_groups.get(name)
    denied = _authorize(response, group, name) if authorize else None
    if group is None and not denied:
        raise _group_not_found(name)
    return group, denied


def _active_in(response: AutoScalingResponse, group: FakeAutoScalingGroup, statuses: frozenset) -> Refresh:
    """The group's active refresh if its status is one of ``statuses``, else
    ActiveInstanceRefreshNotFound. Under _LOCK."""
    refresh = _active(response.autoscaling_backend, group)
    if refresh is None or refresh.status not in statuses:
        raise _not_found()
    return refresh


def start_instance_refresh(self: AutoScalingResponse) -> Any:
    group, denied = _target(self)
    if denied:
        return denied
    with _LOCK:
        strategy, prefs, desired = _validate_start(self, group)
        backend = self.autoscaling_backend
        if _active(backend, group) is not None:
            raise _in_progress()
        instances = [s for s in group.instance_states if s.lifecycle_state == "InService"]
        refresh = Refresh(group, strategy, prefs, desired, len(instances))
        _refreshes(backend).append(refresh)
    return ActionResult({"InstanceRefreshId": refresh.id})


def describe_instance_refreshes(self: AutoScalingResponse) -> Any:
    group, _ = _target(self, authorize=False)
    max_records = _as_int(self._get_param("MaxRecords"))
    if max_records is not None and not 1 <= max_records <= 100:
        # "The default value is 50 and the maximum value is 100."
        raise _validation(f"MaxRecords must be between 1 and 100, got {max_records}.")
    max_records = max_records or 50
    wanted_ids = self._get_param("InstanceRefreshIds") or []
    token = self._get_param("NextToken")
    with _LOCK:
        found = _of_group(self.autoscaling_backend, group)
        if wanted_ids:
            found = [r for r in found if r.id in wanted_ids]
        # Newest first.
        found.sort(key=lambda r: (r.start_time, r.sequence), reverse=True)
        offset = decode_token(token, _invalid_next_token) if token else 0
        page, next_token = page_of(found, offset, max_records)
        result: dict[str, Any] = {"InstanceRefreshes": [r.describe(group) for r in page]}
        if next_token:
            result["NextToken"] = next_token
    return ActionResult(result)


def cancel_instance_refresh(self: AutoScalingResponse) -> Any:
    group, denied = _target(self)
    if denied:
        return denied
    with _LOCK:
        refresh = _active_in(self, group, CANCELLABLE)
        # User guide: "The status of the instance refresh is set to
        # Cancelling. After the cancellation is complete, the status of the
        # instance refresh is set to Cancelled."
        refresh.status = "Cancelling"
    return ActionResult({"InstanceRefreshId": refresh.id})


def rollback_instance_refresh(self: AutoScalingResponse) -> Any:
    group, denied = _target(self)
    if denied:
        return denied
    with _LOCK:
        refresh = _active_in(self, group, ROLLBACKABLE)
        why = _rollback_unsupported(group, refresh.desired)
        if why:
            raise _irreversible(why)
        _start_rollback(refresh, _USER_ROLLBACK_REASON)
    return ActionResult({"InstanceRefreshId": refresh.id})


def _start_rollback(refresh: Refresh, reason: str) -> None:
    refresh.rollback = {
        "RollbackReason": reason,
        "RollbackStartTime": now(),
        "PercentageCompleteOnRollback": refresh.percentage_complete,
        "InstancesToUpdateOnRollback": refresh.instances_to_update,
        "ProgressDetailsOnRollback": refresh.progress(),
    }
    refresh.status = "RollbackInProgress"


AutoScalingResponse.start_instance_refresh = start_instance_refresh
AutoScalingResponse.describe_instance_refreshes = describe_instance_refreshes
AutoScalingResponse.cancel_instance_refresh = cancel_instance_refresh
AutoScalingResponse.rollback_instance_refresh = rollback_instance_refresh


# UpdateAutoScalingGroup while a refresh with a desired configuration is
# active: the launch source belongs to the refresh until it ends.
_original_update = AutoScalingResponse.update_auto_scaling_group


def update_auto_scaling_group(self: AutoScalingResponse) -> Any:
    group = self.autoscaling_backend.autoscaling_groups.get(self._get_param("AutoScalingGroupName") or "")
    if group is not None and any(
        self._get_param(p) for p in ("LaunchTemplate", "MixedInstancesPolicy", "LaunchConfigurationName")
    ):
        with _LOCK:
            refresh = _active(self.autoscaling_backend, group)
        if refresh is not None and refresh.desired is not None:
            raise _validation(
                "An active instance refresh with a desired configuration exists. All configuration options "
                "derived from the desired configuration are not available for update while the instance "
                "refresh is active."
            )
    return _original_update(self)


AutoScalingResponse.update_auto_scaling_group = update_auto_scaling_group


# ---------------------------------------------------------------------------
# Group side effects: the desired configuration, instance replacement
# ---------------------------------------------------------------------------


def _apply_desired(group: FakeAutoScalingGroup, desired: dict) -> None:
    """What AWS does when a refresh succeeds: "Amazon EC2 Auto Scaling updates
    the settings of the Auto Scaling group to reflect the new desired
    configuration." A LaunchTemplate replaces the group's launch source; a
    MixedInstancesPolicy is merged as UpdateAutoScalingGroup merges one
    (properties not given are kept)."""
    if desired.get("LaunchTemplate"):
        group.mixed_instances_policy = None
        group.launch_config = None  # type: ignore[assignment]
        if hasattr(group, "launch_configuration_name"):
            group.launch_configuration_name = None
        group._set_launch_configuration(None, copy.deepcopy(desired["LaunchTemplate"]), None)
        return
    wanted = copy.deepcopy(desired["MixedInstancesPolicy"])
    policy = copy.deepcopy(group.mixed_instances_policy) or {}
    if wanted.get("LaunchTemplate"):
        template = policy.setdefault("LaunchTemplate", {})
        if wanted["LaunchTemplate"].get("LaunchTemplateSpecification"):
            spec = dict(wanted["LaunchTemplate"]["LaunchTemplateSpecification"])
            template["LaunchTemplateSpecification"] = spec
        if "Overrides" in wanted["LaunchTemplate"]:
            template["Overrides"] = wanted["LaunchTemplate"]["Overrides"]
    if wanted.get("InstancesDistribution"):
        distribution = policy.setdefault("InstancesDistribution", {})
        distribution.update(wanted["InstancesDistribution"])
    spec = policy["LaunchTemplate"]["LaunchTemplateSpecification"]
    # moto's setter reads the spec from the policy and fills in id and name.
    spec.pop("LaunchTemplateName" if spec.get("LaunchTemplateId") else "LaunchTemplateId", None)
    group.launch_config = None  # type: ignore[assignment]
    group.mixed_instances_policy = policy
    group._set_launch_configuration(None, {}, policy)


def _launch(group: FakeAutoScalingGroup, count: int, image_id: str, instance_type: str | None) -> list[str]:
    """Launch `count` group instances running `image_id` (as moto's own
    scale-out does, with the image given)."""
    if count <= 0:
        return []
    tags = group.get_propagated_tags()
    tags[ASG_NAME_TAG] = group.name
    try:
        tags.update(group.instance_tags)
    except Exception:
        pass
    subnet_id = group.vpc_zone_identifier.split(",")[0] if group.vpc_zone_identifier else None
    launch_template = {"LaunchTemplateId": group.ec2_launch_template.id} if group.ec2_launch_template else None
    try:
        user_data = group.user_data
        security_groups = group.security_groups
    except Exception:
        user_data, security_groups = None, []
    reservation = group.ec2_backend.run_instances(
        image_id,
        count,
        user_data,
        security_groups,
        instance_type=instance_type or "t2.micro",
        tags={"instance": tags},
        placement=random.choice(group.availability_zones),
        launch_config=group.launch_config,
        launch_template=launch_template,
        is_instance_type_default=False,
        associate_public_ip=group.launch_config.associate_public_ip_address if group.launch_config else None,
        subnet_id=subnet_id,
    )
    for instance in reservation.instances:
        instance.autoscaling_group = group  # type: ignore[attr-defined]
        group.instance_states.append(
            InstanceState(instance, protected_from_scale_in=group.new_instances_protected_from_scale_in)
        )
    return [i.id for i in reservation.instances]


def _terminate(group: FakeAutoScalingGroup, states: list[InstanceState]) -> list[str]:
    ids = [s.instance.id for s in states]
    if ids:
        group.ec2_backend.terminate_instances(ids)
        group.instance_states = [s for s in group.instance_states if s not in states]
    return ids


def _after_change(group: FakeAutoScalingGroup) -> None:
    backend = group.autoscaling_backend
    if group.name in backend.autoscaling_groups:
        backend.update_attached_elbs(group.name)
        backend.update_attached_target_groups(group.name)


def _swap(group: FakeAutoScalingGroup, states: list[InstanceState], image_id: str, instance_type: str | None,
          count: int | None = None) -> tuple[list[str], list[str]]:
    """Terminate `states` and launch `count` (default: as many) instances
    running `image_id`; the terminated and the launched ids."""
    old = _terminate(group, states)
    new = _launch(group, len(old) if count is None else count, image_id, instance_type)
    _after_change(group)
    return old, new


def _pairs(old: list[str], new: list[str]) -> list[dict]:
    return [{"old": o, "new": n} for o, n in zip(old, new)]


def _current_image(group: FakeAutoScalingGroup) -> tuple[str, str | None]:
    return group.image_id, group.instance_type


def _replace(group: FakeAutoScalingGroup, how_many: int | None, skip_matching: bool) -> list[dict]:
    """Replace group instances by ones launched from the group's current
    configuration. With skip matching, instances already running the image
    and instance type that configuration launches are kept."""
    image_id, instance_type = _current_image(group)
    candidates = list(group.instance_states)
    if skip_matching:
        candidates = [
            s for s in candidates
            if not (s.instance.image_id == image_id and s.instance.instance_type == (instance_type or s.instance.instance_type))
        ]
    if how_many is not None:
        candidates = candidates[:how_many]
    return _pairs(*_swap(group, candidates, image_id, instance_type))


# ---------------------------------------------------------------------------
# Control interface (served by the harness proxy; never seen by clients)
# ---------------------------------------------------------------------------


def _instances_of(group: FakeAutoScalingGroup) -> list[dict]:
    return [
        {"instance_id": s.instance.id, "image_id": s.instance.image_id, "lifecycle_state": s.lifecycle_state}
        for s in group.instance_states
    ]


def _move(group: FakeAutoScalingGroup, payload: dict) -> tuple[int, dict]:
    status = payload.get("status")
    if status not in STATUSES:
        return 400, {"error": f"status must be one of {list(STATUSES)}, not {status!r}"}
    wanted_id = payload.get("instance_refresh_id")
    refreshes = _of_group(group.autoscaling_backend, group)
    if wanted_id:
        refresh = next((r for r in refreshes if r.id == wanted_id), None)
    else:
        refresh = next((r for r in refreshes if r.status in ACTIVE), None)
    if refresh is None:
        return 404, {"error": f"no {'such' if wanted_id else 'active'} instance refresh for group {group.name}"}
    if status not in _TRANSITIONS.get(refresh.status, set()):
        return 409, {"error": f"instance refresh {refresh.id} cannot move from {refresh.status} to {status}"}

    replace = payload.get("replace_instances")
    if replace is None:
        # A refresh that succeeded (or a rollback that did) has replaced the
        # instances; a failed or cancelled one replaced none unless told.
        replace = status in ("Successful", "RollbackSuccessful")
    how_many = None if replace is True else int(replace or 0)

    replaced: list[dict] = []
    auto_rollback = refresh.preferences.get("AutoRollback")
    if status == "Failed" and auto_rollback and refresh.desired is not None:
        # "If you enable auto rollback, your Auto Scaling group will be rolled
        # back automatically when the instance refresh fails."
        if how_many:
            replaced = _replace_towards(group, refresh, how_many)
        refresh.status_reason = payload.get("status_reason") or _FAILED_REASON
        _start_rollback(refresh, "Auto rollback started because the instance refresh failed.")
        return 200, _moved(refresh, group, replaced)

    if status == "RollbackInProgress":
        _start_rollback(refresh, payload.get("status_reason") or _USER_ROLLBACK_REASON)
        return 200, _moved(refresh, group, replaced)

    if status == "Successful":
        if refresh.desired is not None:
            _apply_desired(group, refresh.desired)
        if replace is not False:
            replaced = _replace(group, how_many, refresh.preferences.get("SkipMatching", False))
        refresh.percentage_complete = 100
        refresh.instances_to_update = 0
    elif status in ("Failed", "Cancelled", "Cancelling", "InProgress", "Baking"):
        if how_many and status != "Cancelling":
            # Partial progress: instances replaced from the desired
            # configuration (the group's own settings are not changed yet).
            replaced = _replace_towards(group, refresh, how_many)
            done = min(refresh.total, refresh.total - refresh.instances_to_update + len(replaced))
            refresh.instances_to_update = max(0, refresh.total - done)
            refresh.percentage_complete = int(100 * done / refresh.total) if refresh.total else 100
        if status == "Baking":
            refresh.percentage_complete, refresh.instances_to_update = 100, 0
    elif status in ("RollbackSuccessful", "RollbackFailed"):
        if status == "RollbackSuccessful" and replace is not False:
            # The group's settings were never changed: replacing from them
            # restores the previous configuration.
            replaced = _replace(group, how_many, skip_matching=True)
        refresh.percentage_complete = 0 if status == "RollbackSuccessful" else refresh.percentage_complete

    refresh.status = status
    if "status_reason" in payload:
        refresh.status_reason = payload["status_reason"]
    elif status == "Failed" and not refresh.status_reason:
        refresh.status_reason = _FAILED_REASON
    if status in ("Successful", "Failed", "Cancelled", "RollbackSuccessful", "RollbackFailed"):
        refresh.end_time = now()
    return 200, _moved(refresh, group, replaced)


def _replace_towards(group: FakeAutoScalingGroup, refresh: Refresh, how_many: int) -> list[dict]:
    """Replace up to `how_many` instances with ones from the refresh's desired
    configuration (or the group's own, without one)."""
    image_id, instance_type = _current_image(group)
    desired = refresh.desired or {}
    spec = desired.get("LaunchTemplate") or ((desired.get("MixedInstancesPolicy") or {}).get("LaunchTemplate") or {}).get(
        "LaunchTemplateSpecification")
    if spec:
        _, version = _resolve_spec(group, spec)
        image_id = version.image_id
        instance_type = version.instance_type or instance_type
    candidates = [s for s in group.instance_states if s.instance.image_id != image_id][:how_many]
    return _pairs(*_swap(group, candidates, image_id, instance_type))


def _moved(refresh: Refresh, group: FakeAutoScalingGroup, replaced: list[dict]) -> dict:
    return {
        "ok": True,
        "instance_refresh_id": refresh.id,
        "status": refresh.status,
        "replaced": replaced,
        "instances": _instances_of(group),
    }


def _set_instances(group: FakeAutoScalingGroup, payload: dict) -> tuple[int, dict]:
    image_id = payload.get("image_id")
    instance_type = None
    if image_id is None:
        version = payload.get("version")
        if version is None or group.ec2_launch_template is None:
            return 400, {"error": "give image_id, or version (of the group's launch template)"}
        try:
            found = group.ec2_launch_template.get_version(str(version))
        except Exception:
            found = None
        if found is None:
            return 404, {"error": f"launch template {group.ec2_launch_template.id} has no version {version}"}
        image_id, instance_type = found.image_id, found.instance_type
    if instance_type is None:
        try:
            instance_type = group.instance_type
        except Exception:
            instance_type = None
    count = payload.get("count")
    if count is None:
        count = len(group.instance_states) or (group.desired_capacity or 0)
    old, new = _swap(group, list(group.instance_states), image_id, instance_type, int(count))
    return 200, {"ok": True, "terminated": old, "launched": new, "instances": _instances_of(group)}


def control(method: str, path: str, payload: dict) -> tuple[int, dict]:
    """The harness's control endpoints for instance refresh. Returns (HTTP status, JSON body)."""
    if not isinstance(payload, dict):
        return 400, {"error": "body must be a JSON object"}
    with _LOCK:
        if path == "/_harness/clock" and method == "POST":
            return 200, _set_clock(payload)
        if path == "/_harness/clock" and method == "GET":
            return 200, {"now": _iso(now())}
        for pattern, endpoint in ((r"/_harness/refreshes/([^/]+)", _move),
                                  (r"/_harness/groups/([^/]+)/instances", _set_instances)):
            match = re.fullmatch(pattern, path)
            if match and method == "POST":
                group = groups(payload.get("region") or "us-east-1").get(match.group(1))
                if group is None:
                    return 404, {"error": f"unknown Auto Scaling group {match.group(1)}"}
                return endpoint(group, payload)
    return 404, {"error": f"no control endpoint {method} {path}"}
