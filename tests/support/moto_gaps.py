"""Fill the gaps between moto 5.2.5 and the real EC2 / Auto Scaling APIs.

Importing this module patches moto in place; it must be imported before the
moto server handles its first request. Every behaviour below follows the
Amazon EC2 API reference; each patch cites the behaviour it emulates.

Emulated behaviours
-------------------
1. Launch template version numbers are never reused. moto numbers versions by
   list position, so deleting a version would renumber the later ones. Here each
   template keeps a counter; lookups by number, ``$Latest`` (highest existing
   number), ``$Default``, MinVersion/MaxVersion, ModifyLaunchTemplate
   ``DefaultVersion`` and DescribeLaunchTemplates ``LatestVersionNumber`` /
   ``DefaultVersionNumber`` all work by number. A number that does not exist
   raises moto's ``InvalidLaunchTemplateId.VersionNotFound``.
2. ``DeleteLaunchTemplateVersions`` (not implemented by moto): up to 200
   versions per call (more -> 400 ``InvalidParameterValue``); HTTP 200 with
   ``SuccessfullyDeletedLaunchTemplateVersions`` and
   ``UnsuccessfullyDeletedLaunchTemplateVersions``. Per-version errors:
   the default version -> ``unexpectedError`` ("Cannot delete the default
   version of a launch template"); an unknown or non-numeric version ->
   ``launchTemplateVersionDoesNotExist``; an unknown or malformed template id
   or name -> ``launchTemplateIdDoesNotExist`` / ``launchTemplateIdMalformed`` /
   ``launchTemplateNameDoesNotExist`` / ``launchTemplateNameMalformed`` for
   each version (the documented ResponseError codes; the call still succeeds).
3. ``CreateLaunchTemplateVersion`` honours ``SourceVersion`` (number,
   ``$Latest`` or ``$Default``): the new version is a deep copy of the source
   version's data with the top-level keys sent in ``LaunchTemplateData``
   replacing the source's. It honours ``ClientToken`` (scoped to the account
   and region, as EC2 idempotency tokens are): the same token with the same
   parameters returns the version created the first time (no new version);
   the same token with different parameters -> 400
   ``IdempotentParameterMismatch``. Sending both LaunchTemplateId and
   LaunchTemplateName -> 400 ``InvalidParameterCombination``.
4. ``DescribeLaunchTemplateVersions`` and ``DescribeLaunchTemplates``:
   ``MaxResults`` 1..200 (otherwise 400 ``InvalidParameterValue``) with
   ``NextToken`` paging; an unusable NextToken -> 400
   ``InvalidPaginationToken``. moto cut at 15 results and never paged.
   When MaxResults is omitted everything is returned in one page.
   Versions come back ordered by version number ascending within a template
   (each version at most once, even if asked for as both ``$Latest`` and a
   number). DescribeLaunchTemplateVersions ``Filters`` (ignored by moto):
   ``is-default-version``, ``image-id``, ``instance-type``, ``kernel-id``,
   ``ram-disk-id``, ``ebs-optimized`` are applied; any other filter name fails
   the call (HTTP 500) rather than being silently ignored.
5. ``DescribeImages``: ``MaxResults`` 5..1000 (otherwise 400
   ``InvalidParameterValue``) with ``NextToken`` paging when MaxResults is
   given; without it, one page. AWS does not specify the order, so images are
   returned sorted by image id (deterministic, but unrelated to creation
   order) to break clients that rely on insertion order. Owners, ImageIds,
   ExecutableUsers and filters behave as in moto.
6. ``RegisterImage`` applies ``TagSpecifications``: tags for resource type
   ``image`` go on the new image, tags for ``snapshot`` on its root snapshot
   (moto dropped them).
7. Auto Scaling: verified, not patched. moto already rejects a launch template
   specification carrying both LaunchTemplateId and LaunchTemplateName (in
   ``LaunchTemplate`` and in ``MixedInstancesPolicy``) with AWS's own
   ``ValidationError`` "Valid requests must contain either launchTemplateId or
   LaunchTemplateName", and describes specifications with both fields.
8. IAM enforcement (``POST /moto-api/reset-auth``) checks SigV4 signatures
   against the exact request body, as AWS does. moto signed a re-encoding of
   the parsed form instead (werkzeug consumes form bodies, so moto's raw body
   is empty), which differs from the AWS SDK for Rust's encoding (``%20``
   against ``+`` for a space) and refused valid requests with
   ``AuthFailure``. The raw body is now kept for the signature check.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
from typing import Any

from moto.core.responses import ActionResult
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
from moto.ec2.responses.amis import AmisResponse
from moto.ec2.responses.launch_templates import LaunchTemplates
from moto.ec2.utils import parse_user_data

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
    min_version: int | None,
    max_version: int | None,
    max_results: int | None = None,
) -> list[tuple[LaunchTemplate, LaunchTemplateVersion]]:
    """Select versions by number; paging is done by the response layer."""
    if template_name:
        template = self.get_launch_template_by_name(template_name)
    elif template_id:
        template = self.get_launch_template(template_id)
    else:
        template = None

    if template is not None:
        if versions:
            chosen = [template.get_version(v) for v in versions]
        else:
            chosen = [
                v
                for v in template.versions
                if (not min_version or v.number >= min_version)
                and (not max_version or v.number <= max_version)
            ]
        templates = [(template, chosen)]
    else:
        if "$Latest" not in versions and "$Default" not in versions:
            # Without a template, Versions must name $Latest and/or $Default;
            # moto's original raises AWS's error for every other case.
            _ORIGINAL_DESCRIBE_VERSIONS(self, None, None, versions, None, None, 1)
        templates = []
        for template in self.launch_templates.values():
            chosen = []
            if "$Latest" in versions:
                chosen.append(template.latest_version())
            if "$Default" in versions:
                chosen.append(template.default_version())
            templates.append((template, chosen))

    result = []
    for template, chosen in templates:
        unique = {v.number: v for v in chosen}
        result.extend((template, unique[n]) for n in sorted(unique))
    return result


_ORIGINAL_DESCRIBE_VERSIONS = LaunchTemplateBackend.describe_launch_template_versions
LaunchTemplateBackend.describe_launch_template_versions = _describe_launch_template_versions


# ---------------------------------------------------------------------------
# Paging helpers (4, 5)
# ---------------------------------------------------------------------------


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_token(token: str) -> int:
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except Exception:  # any garbage is just an invalid token
        raise InvalidPaginationToken()
    if not isinstance(offset, int) or offset < 0:
        raise InvalidPaginationToken()
    return offset


def _page(
    response: Any, items: list[Any], lowest: int, highest: int
) -> tuple[list[Any], str | None]:
    """Cut one page of items per MaxResults/NextToken; no MaxResults = one page."""
    max_results = response._get_param("MaxResults")
    token = response._get_param("NextToken")
    offset = _decode_token(token) if token else 0
    if max_results is None:
        return items[offset:], None
    max_results = int(max_results)
    if not lowest <= max_results <= highest:
        raise InvalidParameterValue(
            f"Value ( {max_results} ) for parameter maxResults is invalid. "
            f"Expecting a value between {lowest} and {highest}."
        )
    end = offset + max_results
    return items[offset:end], (_encode_token(end) if end < len(items) else None)


# ---------------------------------------------------------------------------
# Launch template responses (2, 3, 4)
# ---------------------------------------------------------------------------


def _version_dict(response: Any, template: LaunchTemplate, version: Any) -> dict:
    return {
        "CreateTime": version.create_time,
        "CreatedBy": f"arn:{response.partition}:iam::{response.current_account}:root",
        "DefaultVersion": template.is_default(version),
        "LaunchTemplateData": version.data,
        "LaunchTemplateId": template.id,
        "LaunchTemplateName": template.name,
        "VersionDescription": version.description,
        "VersionNumber": version.number,
    }


def _resolve_template(response: Any) -> LaunchTemplate:
    name = response._get_param("LaunchTemplateName")
    tmpl_id = response._get_param("LaunchTemplateId")
    # "You must specify either the launch template ID or the launch template
    # name, but not both."
    if name and tmpl_id:
        raise InvalidParameterCombination(
            "You must specify either the launch template ID or the launch template name, but not both."
        )
    if tmpl_id:
        return response.ec2_backend.get_launch_template(tmpl_id)
    if name:
        return response.ec2_backend.get_launch_template_by_name(name)
    raise MissingParameterError("launch template ID or launch template name")


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
            # result; same token + different request is an error.
            old_fingerprint, old_template, old_version = tokens[token]
            if old_fingerprint != fingerprint:
                raise IdempotentParameterMismatch()
            return ActionResult(
                {"LaunchTemplateVersion": _version_dict(self, old_template, old_version)}
            )

        if source is not None:
            # "The new version inherits the same launch parameters as the source
            # version, except for parameters that you specify in LaunchTemplateData."
            data = copy.deepcopy(template.get_version(source).data)
            data = {k: v for k, v in data.items() if v is not None}
            data.update(copy.deepcopy(sent))
        else:
            data = copy.deepcopy(sent)

        version = template.create_version(data, description)
        if token:
            tokens[token] = (fingerprint, template, version)
    # No "Warning" element: the version is accepted as sent.
    return ActionResult({"LaunchTemplateVersion": _version_dict(self, template, version)})


_TEMPLATE_ID = re.compile(r"^lt-[0-9a-f]{8,17}$")
_TEMPLATE_NAME = re.compile(r"^[a-zA-Z0-9().\-/_]{3,128}$")


def _template_problem(response: Any) -> tuple[LaunchTemplate | None, dict[str, Any] | None]:
    """The template to delete from, or the per-version ResponseError to report.

    DeleteLaunchTemplateVersions reports a bad template per version
    (ResponseError codes launchTemplateId/NameDoesNotExist / ...Malformed)
    rather than failing the call.
    """
    name = response._get_param("LaunchTemplateName")
    tmpl_id = response._get_param("LaunchTemplateId")
    if name and tmpl_id:
        raise InvalidParameterCombination(
            "You must specify either the launch template ID or the launch template name, but not both."
        )
    backend = response.ec2_backend
    if tmpl_id:
        if not _TEMPLATE_ID.match(tmpl_id):
            return None, {"Code": "launchTemplateIdMalformed",
                          "Message": f"The launch template ID '{tmpl_id}' is malformed."}
        if tmpl_id not in backend.launch_templates:
            return None, {"Code": "launchTemplateIdDoesNotExist",
                          "Message": f"The launch template ID '{tmpl_id}' does not exist."}
        return backend.launch_templates[tmpl_id], None
    if name:
        if not _TEMPLATE_NAME.match(name):
            return None, {"Code": "launchTemplateNameMalformed",
                          "Message": f"The launch template name '{name}' is malformed."}
        if name not in backend.launch_template_name_to_ids:
            return None, {"Code": "launchTemplateNameDoesNotExist",
                          "Message": f"The launch template name '{name}' does not exist."}
        return backend.get_launch_template_by_name(name), None
    raise MissingParameterError("launch template ID or launch template name")


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


# DescribeLaunchTemplateVersions filters over launch template data. moto
# ignored Filters entirely; the simple ones are emulated, and any other filter
# fails loudly instead of silently matching everything.
_VERSION_FILTERS = {
    "is-default-version": lambda t, v: str(t.is_default(v)).lower(),
    "image-id": lambda t, v: v.data.get("ImageId"),
    "instance-type": lambda t, v: v.data.get("InstanceType"),
    "kernel-id": lambda t, v: v.data.get("KernelId"),
    "ram-disk-id": lambda t, v: v.data.get("RamDiskId"),
    "ebs-optimized": lambda t, v: str(v.data.get("EbsOptimized", False)).lower(),
}


def _filter_versions(found: list, filters: dict[str, list[str]]) -> list:
    for name, values in filters.items():
        if name not in _VERSION_FILTERS:
            raise NotImplementedError(
                f"DescribeLaunchTemplateVersions filter {name!r} is not emulated"
            )
        wanted = {str(v).lower() if name in ("is-default-version", "ebs-optimized") else v for v in values}
        found = [(t, v) for t, v in found if _VERSION_FILTERS[name](t, v) in wanted]
    return found


def describe_launch_template_versions(self: Any) -> ActionResult:
    self.error_on_dryrun()
    found = self.ec2_backend.describe_launch_template_versions(
        template_name=self._get_param("LaunchTemplateName"),
        template_id=self._get_param("LaunchTemplateId"),
        versions=self._get_param("Versions", []),
        min_version=self._get_int_param("MinVersion"),
        max_version=self._get_int_param("MaxVersion"),
    )
    found = _filter_versions(found, self._filters_from_querystring() or {})
    page, next_token = _page(self, found, 1, 200)
    result: dict[str, Any] = {
        "LaunchTemplateVersions": [_version_dict(self, t, v) for t, v in page]
    }
    if next_token:
        result["NextToken"] = next_token
    return ActionResult(result)


def describe_launch_templates(self: Any) -> ActionResult:
    self.error_on_dryrun()
    templates = self.ec2_backend.describe_launch_templates(
        template_names=self._get_param("LaunchTemplateNames", []),
        template_ids=self._get_param("LaunchTemplateIds", []),
        filters=self._filters_from_querystring(),
    )
    page, next_token = _page(self, list(templates), 1, 200)
    result: dict[str, Any] = {
        "LaunchTemplates": [
            {
                "CreateTime": t.create_time,
                "CreatedBy": f"arn:{self.partition}:iam::{self.current_account}:root",
                "DefaultVersionNumber": t.default_version_number,
                "LatestVersionNumber": t.latest_version_number,
                "LaunchTemplateId": t.id,
                "LaunchTemplateName": t.name,
                "Tags": t.tags,
            }
            for t in page
        ]
    }
    if next_token:
        result["NextToken"] = next_token
    return ActionResult(result)


# moto dispatches an action to the response method named after it in
# snake_case (found by inspecting the class), so adding the method is enough.
LaunchTemplates.create_launch_template_version = create_launch_template_version
LaunchTemplates.delete_launch_template_versions = delete_launch_template_versions
LaunchTemplates.describe_launch_template_versions = describe_launch_template_versions
LaunchTemplates.describe_launch_templates = describe_launch_templates


# ---------------------------------------------------------------------------
# Images (5, 6)
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
    page, next_token = _page(self, images, 5, 1000)
    result: dict[str, Any] = {"Images": page}
    if next_token:
        result["NextToken"] = next_token
    return ActionResult(result)


def register_image(self: Any) -> ActionResult:
    name = self._get_param("Name")
    description = self._get_param("Description", "")
    tag_spec = self._parse_tag_specification()
    self.error_on_dryrun()
    image = self.ec2_backend.register_image(name, description)
    # RegisterImage TagSpecifications: "image" tags the AMI, "snapshot" tags
    # the snapshots it creates.
    if tag_spec.get("image"):
        self.ec2_backend.create_tags([image.id], tag_spec["image"])
    if tag_spec.get("snapshot"):
        self.ec2_backend.create_tags([image.ebs_snapshot.id], tag_spec["snapshot"])
    return ActionResult({"ImageId": image.id})


AmisResponse.describe_images = describe_images
AmisResponse.register_image = register_image


# --- 8. signature checks over the raw request body --------------------------

from moto.core.responses import BaseResponse  # noqa: E402

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

# Instance refresh (StartInstanceRefresh & co.), in its own module.
import instance_refresh  # noqa: E402,F401
