"""Fill the gaps between moto 5.2.5 and the real EC2, Auto Scaling, SSM and EventBridge APIs.

Importing this module patches moto in place; it must be imported before the
moto server handles its first request (harness.py does).

What is emulated, why, and the AWS reference sentence behind each behaviour
are written once, in docs/testing.md ("What is emulated"); the numbered
sections below follow its numbering. Control interfaces (proxy fault rules,
``/_harness/...`` endpoints) are documented in harness.py's docstring.

Public helpers for other harness modules:

``refuse_if_being_deleted(group)``
    Raises Auto Scaling's ValidationError when ``group`` (a moto
    FakeAutoScalingGroup) has ``Status`` "Delete in progress" (section 8).
    Any emulated call that modifies a group must call it first.
``set_group_status(name, status, region="us-east-1")``
    Sets or (``status=None``) clears a group's ``Status``; returns False if
    the group does not exist. Used by ``POST /_harness/groups/<name>``.
``groups(region="us-east-1")``, ``enforcing()``, ``iam_request(response, path=None)``
    A region's Auto Scaling groups; whether moto's IAM enforcement is on;
    moto's IAM check of a request.
``decode_token(token, invalid)``, ``page_of(items, offset, size)``
    A paging token's offset (``invalid()`` is raised for a bad token); one
    page of items and the next token.
``image_available(account_id, region, image_id)``
    Whether moto's EC2 backend has the image, ``available`` (section 13).
``put_events_entry_size(entry)``, ``PUT_EVENTS_MAX_ENTRIES``, ``PUT_EVENTS_MAX_BYTES``
    A PutEvents entry's size as EventBridge counts it, and the call's limits
    (section 14).
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
import uuid
from collections import defaultdict
from typing import Any, Callable

from moto.autoscaling.exceptions import ValidationError as AutoScalingValidationError
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult, BaseResponse, EmptyResult
from moto.ec2.exceptions import (
    EC2ClientError,
    InvalidLaunchTemplateVersionNotFound,
    InvalidParameterCombination,
    InvalidParameterValue,
    MissingParameterError,
)
from moto.ec2.models.launch_templates import (
    LaunchTemplate,
    LaunchTemplateBackend,
    LaunchTemplateVersion,
)
from moto.ec2.models.amis import Ami
from moto.ec2.responses.amis import AmisResponse
from moto.ec2.responses.launch_templates import LaunchTemplates
from moto.ec2.utils import parse_user_data
from moto.events.exceptions import ResourceNotFoundException as EventsResourceNotFoundException
from moto.events.exceptions import ValidationException as EventsValidationException
from moto.events.models import EventsBackend
from moto.events.responses import EventsHandler
from moto.ssm.exceptions import ValidationException as SSMValidationException
from moto.ssm.models import SimpleSystemManagerBackend
from moto.ssm.responses import SimpleSystemManagerResponse
from werkzeug.exceptions import HTTPException

from aws_errors import query_error

ACCOUNT_ID = "123456789012"

# moto's server is threaded; version counters and client tokens are updated
# under one lock so concurrent creates can't hand out the same number.
_LOCK = threading.RLock()


# moto serialises an error by looking up the service from the exception's
# module, so errors are plain EC2ClientError instances, not local subclasses.
def IdempotentParameterMismatch() -> EC2ClientError:
    # Wording of the EC2 error-code reference.
    return EC2ClientError(
        "IdempotentParameterMismatch",
        "The request uses the same client token as a previous, but non-identical request. "
        "Do not reuse a client token with different requests, unless the requests are identical.",
    )


def InvalidPaginationToken() -> EC2ClientError:
    return EC2ClientError(
        "InvalidPaginationToken",
        "The specified pagination token is not valid or is expired.",
    )


def NotEmulated(what: str) -> EC2ClientError:
    """A parameter the harness does not emulate: 400 ``NotEmulated``.

    Used instead of silently ignoring the parameter (moto's habit), so a test
    can never pass on a filter or option that was not applied. Not an AWS
    error code; 400 so that no SDK retries it.
    """
    return EC2ClientError("NotEmulated", f"{what} (not used by the code under test)")


# ---------------------------------------------------------------------------
# 1. Stable version numbers
# ---------------------------------------------------------------------------


def _create_version(
    self: LaunchTemplate, data: dict[str, Any], description: str
) -> LaunchTemplateVersion:
    # AWS never reuses a version number, even after DeleteLaunchTemplateVersions.
    with _LOCK:
        num = getattr(self, "_next_version_number", 1)
        self._next_version_number = num + 1
        version = LaunchTemplateVersion(self, num, data, description)
        self.versions.append(version)  # stays sorted: numbers only grow
        return version


def _find_version(self: LaunchTemplate, num: Any) -> LaunchTemplateVersion | None:
    try:
        wanted = int(str(num))
    except ValueError:
        return None
    for version in self.versions:
        if version.number == wanted:
            return version
    return None


def _get_version(self: LaunchTemplate, num: Any) -> LaunchTemplateVersion:
    text = str(num).lower()
    if text == "$latest":
        return self.latest_version()
    if text == "$default":
        return self.default_version()
    version = _find_version(self, num)
    if version is None:
        raise InvalidLaunchTemplateVersionNotFound(template_id=self.id, version=num)
    return version


def _default_version(self: LaunchTemplate) -> LaunchTemplateVersion:
    version = _find_version(self, self.default_version_number)
    assert version is not None, "the default version can never be deleted"
    return version


def _latest_version(self: LaunchTemplate) -> LaunchTemplateVersion:
    # $Latest is the highest existing number.
    return max(self.versions, key=lambda v: v.number)


LaunchTemplate.create_version = _create_version
LaunchTemplate.get_version = _get_version
LaunchTemplate.default_version = _default_version
LaunchTemplate.latest_version = _latest_version


def _describe_launch_template_versions(
    self: LaunchTemplateBackend,
    template_name: str,
    template_id: str,
    versions: list[str],
) -> list[tuple[LaunchTemplate, LaunchTemplateVersion]]:
    """The versions of one template, ascending by number, each at most once.

    Only what the code under test uses is emulated (section 4): one template
    by id or name, all its versions or the ones named in ``Versions``.
    """
    if template_name:
        template = self.get_launch_template_by_name(template_name)
    elif template_id:
        template = self.get_launch_template(template_id)
    else:
        raise NotEmulated("DescribeLaunchTemplateVersions without a template is not emulated")
    chosen = [template.get_version(v) for v in versions] if versions else list(template.versions)
    unique = {v.number: v for v in chosen}
    return [(template, unique[n]) for n in sorted(unique)]


LaunchTemplateBackend.describe_launch_template_versions = _describe_launch_template_versions


# ---------------------------------------------------------------------------
# Paging helpers (4, 5, 6)
# ---------------------------------------------------------------------------


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_token(token: str, invalid: Callable[[], Exception]) -> int:
    """The offset a token encodes; ``invalid()`` is raised for any other text."""
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except Exception:  # any garbage is just an invalid token
        raise invalid()
    if not isinstance(offset, int) or offset < 0:
        raise invalid()
    return offset


def page_of(items: list[Any], offset: int, size: int) -> tuple[list[Any], str | None]:
    """``size`` items from ``offset``, and the token of the rest if any."""
    end = offset + size
    return items[offset:end], (_encode_token(end) if end < len(items) else None)


def _paged(
    response: Any, key: str, items: list[Any], lowest: int, highest: int,
    shown: Callable[[Any], Any] = lambda item: item,
) -> ActionResult:
    """One page of items per MaxResults/NextToken (no MaxResults = one page),
    answered as ``{key: [shown(item), ...], "NextToken": ...}``."""
    max_results = response._get_param("MaxResults")
    token = response._get_param("NextToken")
    offset = decode_token(token, InvalidPaginationToken) if token else 0
    if max_results is None:
        page, next_token = items[offset:], None
    else:
        max_results = int(max_results)
        if not lowest <= max_results <= highest:
            raise InvalidParameterValue(
                f"Value ( {max_results} ) for parameter maxResults is invalid. "
                f"Expecting a value between {lowest} and {highest}."
            )
        page, next_token = page_of(items, offset, max_results)
    result: dict[str, Any] = {key: [shown(item) for item in page]}
    if next_token:
        result["NextToken"] = next_token
    return ActionResult(result)


# ---------------------------------------------------------------------------
# EC2 filter values (5)
# ---------------------------------------------------------------------------


def _filter_pattern(value: str) -> re.Pattern:
    """An EC2 filter value as a regex: ``*`` any run, ``?`` one character,
    a backslash escapes the next character; case-sensitive, whole value."""
    out, chars = [], iter(value)
    for c in chars:
        if c == "\\":
            out.append(re.escape(next(chars, "\\")))
        elif c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        else:
            out.append(re.escape(c))
    return re.compile("".join(out), re.DOTALL)


def _any_matches(candidates: list[str], values: list[str]) -> bool:
    # Values of one filter are ORed.
    patterns = [_filter_pattern(v) for v in values]
    return any(p.fullmatch(c) for p in patterns for c in candidates)


# ---------------------------------------------------------------------------
# Launch template responses (2, 3, 4, 5)
# ---------------------------------------------------------------------------


def _created_by(response: Any) -> str:
    return f"arn:{response.partition}:iam::{response.current_account}:root"


def _version_dict(response: Any, template: LaunchTemplate, version: Any) -> dict:
    return {
        "CreateTime": version.create_time,
        "CreatedBy": _created_by(response),
        "DefaultVersion": template.is_default(version),
        "LaunchTemplateData": version.data,
        "LaunchTemplateId": template.id,
        "LaunchTemplateName": template.name,
        "VersionDescription": version.description,
        "VersionNumber": version.number,
    }


def _template_params(response: Any) -> tuple[str | None, str | None]:
    """LaunchTemplateId and LaunchTemplateName as sent: one of them, never both."""
    name = response._get_param("LaunchTemplateName")
    tmpl_id = response._get_param("LaunchTemplateId")
    # "You must specify either the launch template ID or the launch template
    # name, but not both."
    if name and tmpl_id:
        raise InvalidParameterCombination(
            "You must specify either the launch template ID or the launch template name, but not both."
        )
    if not (tmpl_id or name):
        raise MissingParameterError("launch template ID or launch template name")
    return tmpl_id, name


def _resolve_template(response: Any) -> LaunchTemplate:
    tmpl_id, name = _template_params(response)
    if tmpl_id:
        return response.ec2_backend.get_launch_template(tmpl_id)
    return response.ec2_backend.get_launch_template_by_name(name)


def _sent_template_data(response: Any) -> dict[str, Any]:
    data = {
        k: v
        for k, v in (response._get_param("LaunchTemplateData", {}) or {}).items()
        if v is not None
    }
    # Same UserData handling as moto's CreateLaunchTemplate, so instances and
    # Auto Scaling groups launched from the version see a base64 string.
    if "UserData" in data:
        data["UserData"] = parse_user_data(data["UserData"])
    return data


def _inherited_data(source: LaunchTemplateVersion) -> dict[str, Any]:
    """What a new version takes from its SourceVersion before the sent keys.

    "Snapshots applied to the block device mapping are ignored when creating
    a new version unless they are explicitly included": the source's block
    device mappings come without their Ebs.SnapshotId.
    """
    data = {k: v for k, v in copy.deepcopy(source.data).items() if v is not None}
    for mapping in data.get("BlockDeviceMappings") or []:
        if isinstance(mapping.get("Ebs"), dict):
            mapping["Ebs"].pop("SnapshotId", None)
    return data


def create_launch_template_version(self: Any) -> ActionResult:
    template = _resolve_template(self)
    description = self._get_param("VersionDescription")
    source = self._get_param("SourceVersion")
    token = self._get_param("ClientToken")
    sent = _sent_template_data(self)
    self.error_on_dryrun()

    with _LOCK:
        tokens: dict[str, tuple[str, LaunchTemplate, Any]] = getattr(
            self.ec2_backend, "_lt_client_tokens", None
        ) or {}
        self.ec2_backend._lt_client_tokens = tokens
        fingerprint = json.dumps(
            [template.id, source, description, sent], sort_keys=True, default=str
        )
        if token and token in tokens:
            # Idempotency: same token + same request returns the original
            # result; same token + different request is an error. The answer
            # is the version the token created even if it has been deleted
            # since (the reference is silent; the harsher choice: the client
            # is told a version exists that does not).
            old_fingerprint, old_template, old_version = tokens[token]
            if old_fingerprint != fingerprint:
                raise IdempotentParameterMismatch()
            return ActionResult(
                {"LaunchTemplateVersion": _version_dict(self, old_template, old_version)}
            )

        if source is not None:
            # "If you specify this parameter, the new version inherits the
            # launch parameters from the source version. If you specify
            # additional launch parameters for the new version, they overwrite
            # any corresponding launch parameters inherited from the source
            # version." A sent top-level key replaces the source's whole value.
            data = _inherited_data(template.get_version(source))
            data.update(copy.deepcopy(sent))
        else:
            data = copy.deepcopy(sent)

        version = template.create_version(data, description)
        if token:
            tokens[token] = (fingerprint, template, version)
    # No "Warning" element: the proxy's "warn" fault adds one (harness.py).
    return ActionResult({"LaunchTemplateVersion": _version_dict(self, template, version)})


_TEMPLATE_ID = re.compile(r"^lt-[0-9a-f]{8,17}$")
_TEMPLATE_NAME = re.compile(r"^[a-zA-Z0-9().\-/_]{3,128}$")


def _bad_template(code: str, what: str) -> tuple[None, dict[str, str]]:
    return None, {"Code": code, "Message": f"The launch template {what}."}


def _template_problem(response: Any) -> tuple[LaunchTemplate | None, dict[str, Any] | None]:
    """The template to delete from, or the per-version ResponseError to report.

    DeleteLaunchTemplateVersions reports a bad template per version
    (ResponseError codes launchTemplateId/NameDoesNotExist / ...Malformed)
    rather than failing the call.
    """
    tmpl_id, name = _template_params(response)
    backend = response.ec2_backend
    if tmpl_id:
        if not _TEMPLATE_ID.match(tmpl_id):
            return _bad_template("launchTemplateIdMalformed", f"ID '{tmpl_id}' is malformed")
        if tmpl_id not in backend.launch_templates:
            return _bad_template("launchTemplateIdDoesNotExist", f"ID '{tmpl_id}' does not exist")
        return backend.launch_templates[tmpl_id], None
    if not _TEMPLATE_NAME.match(name):
        return _bad_template("launchTemplateNameMalformed", f"name '{name}' is malformed")
    if name not in backend.launch_template_name_to_ids:
        return _bad_template("launchTemplateNameDoesNotExist", f"name '{name}' does not exist")
    return backend.get_launch_template_by_name(name), None


def delete_launch_template_versions(self: Any) -> ActionResult:
    requested = self._get_param("LaunchTemplateVersion", []) or self._get_param(
        "Versions", []
    )
    if not requested:
        raise MissingParameterError("LaunchTemplateVersion")
    # "You can delete up to 200 launch template versions in a single request."
    if len(requested) > 200:
        raise InvalidParameterValue(
            "You can specify up to 200 launch template version numbers in a single request."
        )
    template, template_error = _template_problem(self)
    self.error_on_dryrun()

    deleted: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    with _LOCK:
        for raw in requested:
            entry: dict[str, Any] = {
                "LaunchTemplateId": template.id if template else self._get_param("LaunchTemplateId"),
                "LaunchTemplateName": template.name if template else self._get_param("LaunchTemplateName"),
            }
            try:
                entry["VersionNumber"] = int(str(raw))
            except ValueError:
                pass
            version = _find_version(template, raw) if template else None
            if template_error:
                entry["ResponseError"] = template_error
                failed.append(entry)
            elif version is None:
                entry["ResponseError"] = {
                    "Code": "launchTemplateVersionDoesNotExist",
                    "Message": "The specified launch template version does not exist.",
                }
                failed.append(entry)
            elif template.is_default(version):
                # "You can't delete the default version of a launch template."
                entry["ResponseError"] = {
                    "Code": "unexpectedError",
                    "Message": "Cannot delete the default version of a launch template. "
                    "Set another version as the default first, or delete the whole launch template.",
                }
                failed.append(entry)
            else:
                template.versions.remove(version)
                deleted.append(entry)
    return ActionResult(
        {
            "SuccessfullyDeletedLaunchTemplateVersions": deleted,
            "UnsuccessfullyDeletedLaunchTemplateVersions": failed,
        }
    )


def describe_launch_template_versions(self: Any) -> ActionResult:
    self.error_on_dryrun()
    # Not used by the code under test, so not emulated: fail instead of
    # ignoring them (moto ignored Filters and counted Min/MaxVersion by
    # list position).
    if self._filters_from_querystring():
        raise NotEmulated("DescribeLaunchTemplateVersions Filters are not emulated")
    for unused in ("MinVersion", "MaxVersion"):
        if self._get_param(unused) is not None:
            raise NotEmulated(f"DescribeLaunchTemplateVersions {unused} is not emulated")
    found = self.ec2_backend.describe_launch_template_versions(
        template_name=self._get_param("LaunchTemplateName"),
        template_id=self._get_param("LaunchTemplateId"),
        versions=self._get_param("Versions", []),
    )
    return _paged(self, "LaunchTemplateVersions", found, 1, 200, lambda pair: _version_dict(self, *pair))


def _tags_of(resource: Any) -> list[dict[str, str]]:
    # Read live (moto's LaunchTemplate.tags is a copy taken at creation, so
    # CreateTags afterwards would not show).
    return [{"Key": t["key"], "Value": t["value"]} for t in resource.get_tags()]


def _template_matches(template: LaunchTemplate, name: str, values: list[str]) -> bool:
    tags = _tags_of(template)
    if name.startswith("tag:"):
        return _any_matches([t["Value"] for t in tags if t["Key"] == name[4:]], values)
    if name == "tag-key":
        return _any_matches([t["Key"] for t in tags], values)
    if name == "launch-template-name":
        return _any_matches([template.name], values)
    raise NotEmulated(f"DescribeLaunchTemplates filter {name!r} is not emulated")


def _template_dict(response: Any, template: LaunchTemplate) -> dict:
    return {
        "CreateTime": template.create_time,
        "CreatedBy": _created_by(response),
        "DefaultVersionNumber": template.default_version_number,
        "LatestVersionNumber": template.latest_version_number,
        "LaunchTemplateId": template.id,
        "LaunchTemplateName": template.name,
        "Tags": _tags_of(template),
    }


def describe_launch_templates(self: Any) -> ActionResult:
    self.error_on_dryrun()
    templates = self.ec2_backend.describe_launch_templates(
        template_names=self._get_param("LaunchTemplateNames", []),
        template_ids=self._get_param("LaunchTemplateIds", []),
        filters=None,
    )
    # Filters are ANDed, the values of one filter ORed.
    for name, values in (self._filters_from_querystring() or {}).items():
        templates = [t for t in templates if _template_matches(t, name, values)]
    return _paged(self, "LaunchTemplates", list(templates), 1, 200, lambda t: _template_dict(self, t))


# moto dispatches an action to the response method named after it in
# snake_case (found by inspecting the class), so adding the method is enough.
LaunchTemplates.create_launch_template_version = create_launch_template_version
LaunchTemplates.delete_launch_template_versions = delete_launch_template_versions
LaunchTemplates.describe_launch_template_versions = describe_launch_template_versions
LaunchTemplates.describe_launch_templates = describe_launch_templates


# ---------------------------------------------------------------------------
# Images (6, 7)
# ---------------------------------------------------------------------------


def describe_images(self: Any) -> ActionResult:
    self.error_on_dryrun()
    images = self.ec2_backend.describe_images(
        ami_ids=self._get_param("ImageIds", []),
        filters=self._filters_from_querystring(),
        exec_users=self._get_param("ExecutableUsers", []),
        owners=self._get_param("Owners", []),
    )
    # AWS gives no ordering guarantee; sorting by id keeps tests repeatable
    # while making insertion (= creation) order useless to clients.
    images = sorted(images, key=lambda image: image.id)
    return _paged(self, "Images", images, 5, 1000)


_ARCHITECTURES = ("i386", "x86_64", "arm64", "x86_64_mac", "arm64_mac")


def register_image(self: Any) -> ActionResult:
    name = self._get_param("Name")
    description = self._get_param("Description", "")
    # "Default: For Amazon EBS-backed AMIs, i386." (moto registers EBS-backed
    # images and kept no architecture at all.)
    architecture = self._get_param("Architecture") or "i386"
    if architecture not in _ARCHITECTURES:
        raise InvalidParameterValue(
            f"Value ({architecture}) for parameter architecture is invalid. "
            f"Expecting one of: {', '.join(_ARCHITECTURES)}."
        )
    tag_spec = self._get_param("TagSpecifications", []) or []
    for spec in tag_spec:
        # "To tag the AMI, the value for ResourceType must be image. If you
        # specify another value for ResourceType, the request fails."
        if spec.get("ResourceType") != "image":
            raise InvalidParameterValue(
                f"'{spec.get('ResourceType')}' is not a valid taggable resource type for this operation."
            )
    mappings = _register_mappings(self, self._get_param("BlockDeviceMappings", []) or [])
    root = self._get_param("RootDeviceName")
    self.error_on_dryrun()
    image = self.ec2_backend.register_image(name, description)
    image.architecture = architecture
    if mappings:
        # moto keeps no mapping and reports one 15 GiB /dev/sda1 for every
        # image; DescribeImages reports what was registered.
        image.registered_mappings = mappings
    if root:
        image.root_device_name = root
    tags = {t["Key"]: t.get("Value", "") for spec in tag_spec for t in spec.get("Tags", [])}
    if tags:
        self.ec2_backend.create_tags([image.id], tags)
    return ActionResult({"ImageId": image.id})


def _register_mappings(self: Any, given: list) -> list[dict[str, Any]]:
    """RegisterImage's block device mappings as DescribeImages reports them.

    EbsBlockDevice.VolumeSize: "If you specify a snapshot, the default is the
    snapshot size. You can specify a volume size that is equal to or larger
    than the snapshot size." A smaller size is refused with
    InvalidParameterValue and EC2's RunInstances text (the reference names
    no RegisterImage error code for it; refusing is the harsher reading)."""
    mappings = []
    for mapping in given:
        out: dict[str, Any] = {"DeviceName": mapping.get("DeviceName")}
        ebs = mapping.get("Ebs")
        if ebs:
            snapshot_id = ebs.get("SnapshotId")
            size = int(ebs["VolumeSize"]) if ebs.get("VolumeSize") is not None else None
            if snapshot_id:
                snapshot = self.ec2_backend.get_snapshot(snapshot_id)
                image_size = int(snapshot.volume.size)
                if size is not None and size < image_size:
                    raise InvalidParameterValue(
                        f"Volume of size {size}GB is smaller than snapshot '{snapshot_id}', "
                        f"expect size >= {image_size}GB"
                    )
                size = image_size if size is None else size
            out["Ebs"] = {
                "SnapshotId": snapshot_id,
                "VolumeSize": size,
                "DeleteOnTermination": ebs.get("DeleteOnTermination", True) in (True, "true"),
                "VolumeType": ebs.get("VolumeType") or "gp2",
            }
        elif mapping.get("VirtualName"):
            out["VirtualName"] = mapping["VirtualName"]
        mappings.append(out)
    return mappings


def _block_device_mappings(self: Any) -> list[dict[str, Any]]:
    registered = getattr(self, "registered_mappings", None)
    return registered if registered is not None else _moto_block_device_mappings.fget(self)


_moto_block_device_mappings = Ami.block_device_mappings
Ami.block_device_mappings = property(_block_device_mappings)

AmisResponse.describe_images = describe_images
AmisResponse.register_image = register_image


# ---------------------------------------------------------------------------
# Auto Scaling
# ---------------------------------------------------------------------------


def groups(region: str = "us-east-1") -> dict[str, Any]:
    from moto.autoscaling.models import autoscaling_backends

    return autoscaling_backends[ACCOUNT_ID][region].autoscaling_groups


# -- 8. A group being deleted ------------------------------------------------

BEING_DELETED = "Delete in progress"


def set_group_status(name: str, status: str | None, region: str = "us-east-1") -> bool:
    group = groups(region).get(name)
    if group is None:
        return False
    # moto serialises DescribeAutoScalingGroups' Status from this attribute
    # and omits it when None.
    group.status = status
    return True


def refuse_if_being_deleted(group: Any) -> None:
    # AWS's answer as observed (the reference documents only Status, "The
    # current state of the Auto Scaling group when the DeleteAutoScalingGroup
    # operation is in progress").
    if getattr(group, "status", None) == BEING_DELETED:
        raise AutoScalingValidationError(
            "The AutoScaling group may not be modified while it is pending delete"
        )


# -- 9. MixedInstancesPolicy: partial updates, distribution rules -----------

_ON_DEMAND_STRATEGIES = ("lowest-price", "prioritized")
_SPOT_STRATEGIES = (
    "capacity-optimized",
    "capacity-optimized-prioritized",
    "lowest-price",
    "price-capacity-optimized",
)


def _uses_instance_requirements(policy: dict[str, Any]) -> bool:
    overrides = (policy.get("LaunchTemplate") or {}).get("Overrides") or []
    return any(o.get("InstanceRequirements") for o in overrides)


def _with_defaults(policy: dict[str, Any]) -> dict[str, Any]:
    """The distribution AWS describes: every property, defaults filled in.

    Defaults from the InstancesDistribution reference: OnDemandAllocationStrategy
    "prioritized" (lowest-price for groups with InstanceRequirements),
    OnDemandBaseCapacity 0, OnDemandPercentageAboveBaseCapacity 100,
    SpotAllocationStrategy lowest-price, SpotInstancePools 2 (lowest-price only).
    """
    dist = dict(policy.get("InstancesDistribution") or {})
    dist.setdefault(
        "OnDemandAllocationStrategy",
        "lowest-price" if _uses_instance_requirements(policy) else "prioritized",
    )
    dist.setdefault("OnDemandBaseCapacity", 0)
    dist.setdefault("OnDemandPercentageAboveBaseCapacity", 100)
    dist.setdefault("SpotAllocationStrategy", "lowest-price")
    if dist["SpotAllocationStrategy"] == "lowest-price":
        dist.setdefault("SpotInstancePools", 2)
    if dist.get("SpotMaxPrice") == "":
        # "To remove a maximum price that you previously set, include the
        # property but specify an empty string."
        del dist["SpotMaxPrice"]
    return {**policy, "InstancesDistribution": dist}


def _check_distribution(policy: dict[str, Any]) -> None:
    """The rules the InstancesDistribution reference states, on the result."""
    dist = policy.get("InstancesDistribution") or {}

    def fail(message: str) -> None:
        raise AutoScalingValidationError(message)

    on_demand = dist.get("OnDemandAllocationStrategy")
    if on_demand not in _ON_DEMAND_STRATEGIES:
        fail(f"Invalid OnDemandAllocationStrategy: {on_demand}. Valid values: {', '.join(_ON_DEMAND_STRATEGIES)}.")
    spot = dist.get("SpotAllocationStrategy")
    if spot not in _SPOT_STRATEGIES:
        fail(f"Invalid SpotAllocationStrategy: {spot}. Valid values: {', '.join(_SPOT_STRATEGIES)}.")
    if _uses_instance_requirements(policy):
        # prioritized "cannot be used for groups that do [specify
        # InstanceRequirements]"; capacity-optimized-prioritized "is not a
        # valid value for Auto Scaling groups that specify InstanceRequirements".
        if on_demand == "prioritized" or spot == "capacity-optimized-prioritized":
            fail("Prioritized allocation strategies are not supported with InstanceRequirements.")
    pools = dist.get("SpotInstancePools")
    if pools is not None:
        # "Valid only when the SpotAllocationStrategy is lowest-price. Value
        # must be in the range of 1–20." (AWS's observed message.)
        if spot != "lowest-price":
            fail("SpotInstancePools option is only available with the lowest-price allocation strategy.")
        if not 1 <= int(pools) <= 20:
            fail(f"SpotInstancePools must be between 1 and 20; got {pools}.")
    if int(dist.get("OnDemandBaseCapacity", 0)) < 0:
        fail("OnDemandBaseCapacity must be greater than or equal to 0.")
    if not 0 <= int(dist.get("OnDemandPercentageAboveBaseCapacity", 100)) <= 100:
        fail("OnDemandPercentageAboveBaseCapacity must be between 0 and 100.")
    price = dist.get("SpotMaxPrice")
    if price is not None:
        try:
            ok = float(price) >= 0.001
        except ValueError:
            ok = False
        if not ok:
            # "Valid Range: Minimum value of 0.001"
            fail(f"Invalid SpotMaxPrice: {price}. The minimum value is 0.001.")
    overrides = (policy.get("LaunchTemplate") or {}).get("Overrides") or []
    weighted = [o.get("WeightedCapacity") is not None for o in overrides]
    if any(weighted) and not all(weighted):
        # "If you specify a value for WeightedCapacity for one instance type,
        # you must specify a value for WeightedCapacity for all of them."
        fail("If you specify WeightedCapacity for one instance type, you must specify it for all of them.")


def _merged_policy(current: dict[str, Any], sent: dict[str, Any]) -> dict[str, Any]:
    """The group's policy after an update that sends ``sent``.

    "Any properties that you don't specify are not changed by this update
    request": the launch template specification, the overrides and each
    InstancesDistribution property are kept unless sent.
    """
    merged = copy.deepcopy(current)
    launch = merged.setdefault("LaunchTemplate", {})
    spec = launch.get("LaunchTemplateSpecification") or {}
    if spec.get("LaunchTemplateId") and spec.get("LaunchTemplateName"):
        # moto describes (and stores) both, but refuses both when sent; the
        # kept specification is passed on by id.
        launch["LaunchTemplateSpecification"] = {k: v for k, v in spec.items() if k != "LaunchTemplateName"}
    for key in ("LaunchTemplateSpecification", "Overrides"):
        if key in (sent.get("LaunchTemplate") or {}):
            launch[key] = copy.deepcopy(sent["LaunchTemplate"][key])
    sent_dist = sent.get("InstancesDistribution")
    if sent_dist is not None:
        dist = merged.setdefault("InstancesDistribution", {})
        if sent_dist.get("SpotAllocationStrategy", "lowest-price") != "lowest-price" and (
            "SpotInstancePools" not in sent_dist
        ):
            # The pool count belongs to lowest-price: moving away from it
            # drops the kept count (otherwise no client could ever change the
            # strategy, as 0 is out of range).
            dist.pop("SpotInstancePools", None)
        dist.update(copy.deepcopy(sent_dist))
    return merged


def _specs(launch_template: dict[str, Any] | None, policy: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every launch template specification the group would launch from."""
    if launch_template:
        return [launch_template]
    if not policy:
        return []
    launch = policy.get("LaunchTemplate") or {}
    specs = [launch.get("LaunchTemplateSpecification") or {}]
    specs += [o["LaunchTemplateSpecification"] for o in launch.get("Overrides") or [] if o.get("LaunchTemplateSpecification")]
    return specs


# -- 10. The launch check under IAM enforcement ------------------------------


class _AutoScalingError(HTTPException):
    """An error in Auto Scaling's own format.

    moto's call_action answers an HTTPException with its description and
    code, so the SDKs parse it as they parse AWS's answer.
    """

    def __init__(self, code: str, status: int, message: str):
        super().__init__()
        self.code = status
        self.description = query_error(code, message, str(uuid.uuid4()), status)

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        return [("Content-Type", "text/xml")]


def _AutoScalingAccessDenied(message: str) -> _AutoScalingError:
    """403 AccessDenied, as Auto Scaling answers a denied call."""
    return _AutoScalingError("AccessDenied", 403, message)


def enforcing() -> bool:
    # The same test moto's own authorisation makes: a request is checked once
    # the count of unchecked requests is used up (POST /moto-api/reset-auth
    # sets the count; 0 = check everything).
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    return ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT


def iam_request(response: Any, path: str | None = None) -> Any:
    """moto's IAMRequest for the request ``response`` answers (the raw body
    signed, section 11); ``path`` defaults to the raw path."""
    from moto.iam.access_control import IAMRequest

    return IAMRequest(
        account_id=response.current_account,
        method=response.method,
        path=response.raw_path if path is None else path,
        data=response.data,
        body=response.raw_body,
        headers=response.headers,
        action=response._get_action(),
    )


def _caller_may(response: Any, action: str) -> bool:
    """Whether the caller's IAM policies allow ``action``, by moto's own
    policy evaluation (actions only: resources and conditions are ignored,
    as for every call moto authorises)."""
    from moto.core.exceptions import AccessDeniedError

    request = iam_request(response)
    request._action = action  # the dependent action instead of the called one
    try:
        request.check_action_permitted("*")
    except AccessDeniedError:
        return False
    return True


def _launch_check(response: Any, specs: list[dict[str, Any]]) -> None:
    """What Auto Scaling checks on the caller when a launch template is set.

    "An IAM user or role that creates or updates an Auto Scaling group using a
    launch template must have permission to use the ec2:RunInstances action.
    Users without this permission receive an error that they are not
    authorized to use the launch template." Plus, per the template's resolved
    version: ssm:GetParameters for an ImageId resolve:ssm:..., iam:PassRole
    for an IamInstanceProfile, ec2:CreateTags for TagSpecifications.
    """
    if not specs or not enforcing():
        return
    ec2 = response.autoscaling_backend.ec2_backend
    for spec in specs:
        shown = spec.get("LaunchTemplateId") or spec.get("LaunchTemplateName")
        try:
            if spec.get("LaunchTemplateId"):
                template = ec2.get_launch_template(spec["LaunchTemplateId"])
            else:
                template = ec2.get_launch_template_by_name(spec.get("LaunchTemplateName"))
            data = template.get_version(spec.get("Version") or "$Default").data
        except Exception:
            continue  # an unknown template or version: moto's own error follows
        needed = ["ec2:RunInstances"]
        if str(data.get("ImageId", "")).startswith("resolve:ssm:"):
            needed.append("ssm:GetParameters")
        if data.get("IamInstanceProfile"):
            needed.append("iam:PassRole")
        if data.get("TagSpecifications"):
            needed.append("ec2:CreateTags")
        if not all(_caller_may(response, action) for action in needed):
            raise _AutoScalingAccessDenied(f"You are not authorized to use launch template: {shown}")


# -- Auto Scaling responses (8, 9, 10) ----------------------------------------

_original_create_group = AutoScalingResponse.create_auto_scaling_group


def create_auto_scaling_group(self: Any) -> ActionResult:
    sent = self._get_param("MixedInstancesPolicy")
    if sent:
        _check_distribution(_with_defaults(sent))
    _launch_check(self, _specs(self._get_param("LaunchTemplate"), sent))
    result = _original_create_group(self)
    group = self.autoscaling_backend.autoscaling_groups[self._get_param("AutoScalingGroupName")]
    if group.mixed_instances_policy:
        group.mixed_instances_policy = _with_defaults(group.mixed_instances_policy)
    return result


def update_auto_scaling_group(self: Any) -> ActionResult:
    name = self._get_param("AutoScalingGroupName")
    group = self.autoscaling_backend.autoscaling_groups.get(name)
    if group is None:
        raise AutoScalingValidationError("AutoScalingGroup name not found - null")
    refuse_if_being_deleted(group)

    launch_template = self._get_param("LaunchTemplate") or {}
    config_name = self._get_param("LaunchConfigurationName")
    sent = self._get_param("MixedInstancesPolicy")
    if launch_template and sent:
        # "If you specify LaunchTemplate in your update request, you can't
        # specify LaunchConfigurationName or MixedInstancesPolicy." (moto's
        # wording for the other pair.)
        raise AutoScalingValidationError(
            "Valid requests must contain either LaunchTemplate, LaunchConfigurationName "
            "or MixedInstancesPolicy parameter."
        )
    policy = None
    if group.mixed_instances_policy and not (launch_template or config_name):
        # moto replaced the whole policy with what was sent (None when only,
        # say, MaxSize was sent); AWS changes only what is sent.
        policy = _merged_policy(group.mixed_instances_policy, sent or {})
    elif sent:
        if not (sent.get("LaunchTemplate") or {}).get("LaunchTemplateSpecification"):
            raise AutoScalingValidationError(
                "The launch template specification is required when creating a mixed instances policy."
            )
        policy = copy.deepcopy(sent)
    if policy is not None:
        policy = _with_defaults(policy)
        _check_distribution(policy)
    if launch_template or sent:
        _launch_check(self, _specs(launch_template, policy))

    self.autoscaling_backend.update_auto_scaling_group(
        name=name,
        availability_zones=self._get_param("AvailabilityZones", []),
        desired_capacity=self._get_int_param("DesiredCapacity"),
        max_size=self._get_int_param("MaxSize"),
        min_size=self._get_int_param("MinSize"),
        launch_config_name=config_name,
        launch_template=launch_template,
        vpc_zone_identifier=self._get_param("VPCZoneIdentifier"),
        health_check_period=self._get_int_param("HealthCheckGracePeriod"),
        health_check_type=self._get_param("HealthCheckType"),
        new_instances_protected_from_scale_in=self._get_bool_param(
            "NewInstancesProtectedFromScaleIn", None
        ),
        mixed_instances_policy=policy,
    )
    return EmptyResult()


# "The maximum number of tags per resource is 50" (Auto Scaling user guide,
# tagging); CreateOrUpdateTags answers LimitExceeded (400) "You have already
# reached a limit for your Amazon EC2 Auto Scaling resources". The reference
# does not say which of the two a 51st tag gets: the harsher, a refusal of the
# whole request. A key that exists is overwritten and adds nothing.
MAX_GROUP_TAGS = 50

_original_create_or_update_tags = AutoScalingResponse.create_or_update_tags


def create_or_update_tags(self: Any) -> ActionResult:
    tags = self._get_param("Tags", [])
    groups = self.autoscaling_backend.autoscaling_groups
    for name in {t.get("ResourceId") for t in tags}:
        group = groups.get(name)
        if group is None:
            continue
        keys = {t["Key"] for t in group.tags} | {t["Key"] for t in tags if t.get("ResourceId") == name}
        # "Tags with this prefix don't count toward the number of tags per resource."
        if len({k for k in keys if not k.startswith("aws:")}) > MAX_GROUP_TAGS:
            raise _AutoScalingError(
                "LimitExceeded",
                400,
                "You have already reached a limit for your Amazon EC2 Auto Scaling resources: "
                f"the maximum number of tags per resource is {MAX_GROUP_TAGS}"
            )
    return _original_create_or_update_tags(self)


AutoScalingResponse.create_auto_scaling_group = create_auto_scaling_group
AutoScalingResponse.update_auto_scaling_group = update_auto_scaling_group
AutoScalingResponse.create_or_update_tags = create_or_update_tags


# ---------------------------------------------------------------------------
# 11. Signature checks over the raw request body
# ---------------------------------------------------------------------------

_setup_class = BaseResponse.setup_class


def setup_class(self: Any, request: Any, full_url: str, headers: Any, *args: Any, **kwargs: Any) -> None:
    # Read (and cache) the body before werkzeug parses the form: the form is
    # then parsed from the cached bytes, and the bytes stay available.
    raw = b""
    if hasattr(request, "get_data"):
        raw = request.get_data(cache=True)
    _setup_class(self, request, full_url, headers, *args, **kwargs)
    if raw and not self.raw_body:
        self.raw_body = raw


BaseResponse.setup_class = setup_class


# ---------------------------------------------------------------------------
# 13. SSM parameters of data type aws:ec2:image
# ---------------------------------------------------------------------------

EC2_IMAGE = "aws:ec2:image"

_original_put_parameter = SimpleSystemManagerBackend.put_parameter


def _reserved_name(name: Any) -> bool:
    # moto refuses these names itself, before looking anything up (looking
    # up /aws/reference/secretsmanager/... would ask Secrets Manager).
    return not isinstance(name, str) or name.lower().lstrip("/").startswith(("aws", "ssm"))


def _versions(backend: Any, name: str) -> list[Any]:
    """The parameter's stored versions, oldest first; [] if it has none.

    ``in`` first: indexing moto's defaultdict would store an empty entry,
    which GetParameters then fails on."""
    return list(backend._parameters[name]) if name in backend._parameters else []


def image_available(account_id: str, region: str, image_id: Any) -> bool:
    """Whether moto's EC2 backend of that account and region has the image,
    in state ``available``."""
    from moto.ec2.models import ec2_backends

    image = ec2_backends[account_id][region].amis.get(image_id) if isinstance(image_id, str) else None
    return image is not None and image.state == "available"


class _Unstored:
    """What moto's PutParameter sees of the backend when the call is to
    store nothing: every check runs and the version is numbered against a
    copy of the parameter's versions, and the copy is thrown away."""

    _check_for_parameter_version_limit_exception = (
        SimpleSystemManagerBackend._check_for_parameter_version_limit_exception
    )

    def __init__(self, backend: Any, name: str, versions: list[Any]):
        self.account_id = backend.account_id
        self.region_name = backend.region_name
        self.default_parameter_tier = backend.default_parameter_tier
        self._parameters: dict[str, list[Any]] = defaultdict(list)
        if versions:
            self._parameters[name] = list(versions)

    def add_tags_to_resource(self, *args: Any, **kwargs: Any) -> None:
        pass


def put_parameter(
    self: Any, name: str, description: Any, value: Any, parameter_type: Any, allowed_pattern: Any,
    keyid: Any, overwrite: Any, tags: Any, data_type: Any, tier: Any = None, policies: Any = None,
) -> Any:
    args = (name, description, value, parameter_type, allowed_pattern, keyid, overwrite, tags, data_type)
    if _reserved_name(name):
        return _original_put_parameter(self, *args, tier=tier, policies=policies)
    with _LOCK:
        versions = _versions(self, name)
        if overwrite and versions and data_type is not None:
            # "You can't change a parameter to or from either of these data
            # types" (aws:ec2:image, aws:ssm:integration; moto refuses the
            # latter altogether). An omitted DataType is the default, text.
            before = versions[-1].data_type
            if before != data_type and EC2_IMAGE in (before, data_type):
                raise SSMValidationException(
                    f"The data type of parameter {name} can't be changed from {before} to {data_type}: "
                    f"a parameter can't be changed to or from the {EC2_IMAGE} data type."
                )
        if data_type == EC2_IMAGE and not image_available(self.account_id, self.region_name, value):
            # "If you submit an invalid AMI value, the PutParameter operation
            # will return success, but the asynchronous validation will fail
            # and the parameter will not be created or updated."
            return _original_put_parameter(
                _Unstored(self, name, versions), *args, tier=tier, policies=policies
            )
        return _original_put_parameter(self, *args, tier=tier, policies=policies)


SimpleSystemManagerBackend.put_parameter = put_parameter

_original_get_parameters = SimpleSystemManagerResponse.get_parameters


def get_parameters(self: Any) -> ActionResult:
    # "The results for GetParameters requests are listed in alphabetical
    # order in query responses." (moto listed them in set order.)
    answer = _original_get_parameters(self)
    answer.result["Parameters"].sort(key=lambda parameter: parameter["Name"])
    return answer


SimpleSystemManagerResponse.get_parameters = get_parameters


# ---------------------------------------------------------------------------
# 14. EventBridge PutEvents
# ---------------------------------------------------------------------------

PUT_EVENTS_MAX_ENTRIES = 10
# "The total entry size must be less than 256KB."
PUT_EVENTS_MAX_BYTES = 256 * 1024


def put_events_entry_size(entry: Any) -> int:
    """An entry's size as the EventBridge user guide computes it ("Calculating
    PutEvents event entry size"): 14 bytes for a Time, the UTF-8 bytes of
    Source, DetailType, Detail and of each Resources item."""
    if not isinstance(entry, dict):
        return 0
    size = 14 if entry.get("Time") is not None else 0
    for key in ("Source", "DetailType", "Detail"):
        if isinstance(entry.get(key), str):
            size += len(entry[key].encode("utf-8"))
    for resource in entry.get("Resources") or []:
        if isinstance(resource, str):
            size += len(resource.encode("utf-8"))
    return size


_original_put_events = EventsHandler.put_events


def put_events(self: Any) -> tuple[str, dict[str, str]]:
    entries = self._get_param("Entries")
    # "Array Members: Minimum number of 1 item. Maximum number of 10 items."
    # moto checks the maximum (its own message); the minimum is filled in.
    if entries is None:
        raise EventsValidationException(
            "1 validation error detected: Value null at 'entries' failed to satisfy constraint: "
            "Member must not be null"
        )
    if len(entries) == 0:
        raise EventsValidationException(
            "1 validation error detected: Value '[]' at 'entries' failed to satisfy constraint: "
            "Member must have length greater than or equal to 1"
        )
    if len(entries) <= PUT_EVENTS_MAX_ENTRIES:
        if sum(put_events_entry_size(entry) for entry in entries) >= PUT_EVENTS_MAX_BYTES:
            # AWS's answer as reported by users; the reference names no message.
            raise EventsValidationException("Total size of the entries in the request is over the limit.")
    # moto answered with an HTML content type.
    return _original_put_events(self), {"Content-Type": "application/x-amz-json-1.1"}


_original_backend_put_events = EventsBackend.put_events


def _bus_exists(backend: Any, entry: dict[str, Any]) -> bool:
    try:
        backend.describe_event_bus(backend._normalize_event_bus_arn(entry.get("EventBusName")))
    except EventsResourceNotFoundException:
        return False
    return True


def backend_put_events(self: Any, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """moto's PutEvents, one entry at a time, where an entry naming an event
    bus that does not exist is accepted (an EventId) and dropped, as AWS is
    reported to do; moto failed the whole call with ResourceNotFoundException."""
    if len(events) > PUT_EVENTS_MAX_ENTRIES:
        return _original_backend_put_events(self, events)  # moto's refusal
    results: list[dict[str, Any]] = []
    for event in events:
        try:
            results.extend(_original_backend_put_events(self, [event]))
        except EventsResourceNotFoundException:
            # moto checks the entry first and looks the bus up last.
            if _bus_exists(self, event):
                raise
            results.append({"EventId": str(uuid.uuid4())})
    return results


EventsHandler.put_events = put_events
EventsBackend.put_events = backend_put_events


# Instance refresh (StartInstanceRefresh & co.), in its own module.
import instance_refresh  # noqa: E402,F401
