"""Per-test AWS stand-in: moto (with the gaps filled) behind a recording, fault-injecting proxy.

Run as ``python harness.py`` (any working directory). It prints exactly one line
to stdout once both servers listen::

    {"proxy": <port>, "moto": <port>}

Point SDK clients at ``http://127.0.0.1:<proxy>``. The harness exits when its
stdin reaches EOF (keep a pipe to it open for the test's lifetime; the parent
closing it or dying ends the harness) or on SIGTERM/SIGINT. If stdin is not a
pipe, socket or terminal (e.g. /dev/null) it is ignored and only a signal
ends the harness.

The proxy
  * forwards every request (method, path, headers including Host and the
    SigV4 ``Authorization``, body) unchanged to moto and returns moto's status,
    headers and body, re-framed with Content-Length; HTTP/1.1 keep-alive.
  * identifies AWS calls: service from the credential scope of the
    ``Authorization`` header, action from the ``Action`` form/query field
    (EC2, Auto Scaling) or ``X-Amz-Target`` (SSM ``AmazonSSM.GetParameters``,
    EventBridge ``AWSEvents.PutEvents``: service ``events``). Requests without
    a credential scope are forwarded but not recorded.
  * records every AWS call in arrival order as
    ``{"service", "action", "mutating", "status", "fault", "at"}`` (``at``: arrival, Unix seconds); mutating means
    the action does not start with Describe, Get or List. ``status`` is null
    for a dropped connection. It tracks the peak number of mutating calls in
    flight (faulted calls included; a hanging call is in flight while it hangs).
  * records, besides, the entries of every EventBridge ``PutEvents`` call
    (see ``GET /_harness/events``).
  * injects faults per rules (see ``POST /_harness/faults``).

Control endpoints (JSON; never forwarded, never recorded):
  GET  /_harness/calls              -> {"calls": [...], "peak_in_flight_mutating": n}
  GET  /_harness/events             -> {"calls": [{"entries": [entry, ...], "status": n|null,
                                     "fault": str|null}, ...]}: every PutEvents call (faulted,
                                     dropped and retried ones included), in arrival order;
                                     "entries" is the request's Entries as sent (Source,
                                     DetailType, Detail as a string, EventBusName, Time,
                                     Resources, ...; [] if the body is not JSON), "status" and
                                     "fault" as in /_harness/calls
  POST /_harness/reset              -> clears calls, PutEvents entries, peak and fault rules
                                     (not moto's state)
  POST /_harness/faults             {"rules": [rule, ...]} replaces the rules
  POST /_harness/images/<image-id>  {"state": ..., "creation_date": "2026-11-20T03:00:00.000Z",
                                     "region": "us-east-1"} (each optional) sets attributes of
                                     the image in moto's backend (account 123456789012); 404 if unknown
  POST /_harness/groups/<group-name> {"status": "Delete in progress" | null, "region": "us-east-1"}
                                     ("status" required, "region" optional) sets or clears the
                                     Auto Scaling group's Status (DescribeAutoScalingGroups shows
                                     it); while it is "Delete in progress", UpdateAutoScalingGroup
                                     is refused (400 ValidationError "The AutoScaling group may not
                                     be modified while it is pending delete"); 404 if unknown,
                                     400 for a bad body
  POST /_harness/refreshes/<group>  {"status": ..., "replace_instances": true|false|n,
                                     "status_reason": ..., "instance_refresh_id": ..., "region": ...}
                                     moves the group's active instance refresh (instance_refresh.py)
  POST /_harness/groups/<group>/instances  {"image_id": ... | "version": ..., "count": n, "region": ...}
                                     replaces the group's instances by ones running that image
  POST /_harness/clock              {"now": "2027-01-01T00:00:00Z" | null, "advance_seconds": n}
  GET  /_harness/clock              the emulated time instance refreshes are stamped and expired with

A rule: {"service": "ec2"|null, "action": "CreateLaunchTemplateVersion"|null,
"group": "<AutoScalingGroupName>"|null, "fault": F, "times": n|null,
"probability": p|null, "seed": int|null, "after": n|null, "delay_ms": int|null,
"status": int|null, "code": str|null, "message": str|null,
"request": {...}|null, "entries": [int, ...]|null}.
null fields match anything; "group" only matches Auto Scaling calls whose form
body carries that AutoScalingGroupName. Of the calls a rule matches, the first
``after`` are let through, then it injects on the next ``times`` (all if null),
each with ``probability`` (random.Random(seed)) if given. The first rule that
injects wins. Faults:
  throttle  the service's throttling error (EC2 503 RequestLimitExceeded,
            Auto Scaling 400 Throttling, SSM and EventBridge 400 ThrottlingException)
  http500   EC2 InternalError, Auto Scaling InternalFailure, SSM InternalServerError,
            EventBridge InternalException
  http503   EC2 Unavailable, Auto Scaling / SSM / EventBridge ServiceUnavailable
  error     HTTP ``status`` (default 400) with ``code`` / ``message`` in the service's error shape
  drop      close the connection without answering
  hang      wait ``delay_ms`` (default 60000), then forward to moto as usual (so the
            call takes effect even if the client gave up, as it may on AWS)
  warn      forward to moto (the version or template is really created), then add
            to a 200 answer a ValidationWarning with one error: ``Warning.Errors ==
            [{"Code": code (default "InvalidParameterValue"), "Message": message
            (default "Injected warning")}]``. Needs ``action``
            "CreateLaunchTemplateVersion" or "CreateLaunchTemplate".
  partial   forward to moto (every entry is really put), then rewrite a 200
            answer so that the result entries at the rule's ``entries`` indices
            (default [0]; indices past the call's entries are ignored) failed:
            each is ``{"ErrorCode": code (default "InternalFailure"),
            "ErrorMessage": message (default "Injected entry failure")}``, no
            EventId, and ``FailedEntryCount`` counts the failed entries. Needs
            ``action`` "PutEvents". With ``times``, that many calls get failed
            entries (each at the same indices); the SDK does not retry a 200.
  before    first perform ``request`` against moto directly, then forward the call
            as usual: another writer racing the client. ``request`` is
            {"service": "ec2", "action": "CreateLaunchTemplateVersion",
             "params": {...boto3 parameters...}, "region": str|null,
             "credentials": {"access_key_id", "secret_access_key"}|null}
            performed with boto3 (one attempt) signed with the seeding key
            ``testing``/``testing`` unless ``credentials`` are given (needed under IAM
            enforcement), in the call's region unless ``region`` is given. It is
            not recorded (the call itself is, with fault "before"). If it fails,
            the call is answered 400 ``HarnessInjectionFailed`` (message: the
            failure) and not forwarded. Example, a version with another
            instance type lands just before the client's next new version:
            {"service": "ec2", "action": "CreateLaunchTemplateVersion",
             "fault": "before", "times": 1,
             "request": {"service": "ec2", "action": "CreateLaunchTemplateVersion",
                         "params": {"LaunchTemplateId": "lt-...", "SourceVersion": "$Latest",
                                    "LaunchTemplateData": {"InstanceType": "m5.large"}}}}
throttle, http500, http503, error and drop are answered by the proxy; moto
never sees the call. partial (like lose, hang, warn, stale and before) reaches
moto: the call takes effect.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import stat
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from http.client import HTTPConnection, RemoteDisconnected
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from aws_errors import AUTOSCALING_XMLNS, query_error, xml_escape

ACCOUNT_ID = "123456789012"

# ---------------------------------------------------------------------------
# Recording and fault rules
# ---------------------------------------------------------------------------

_state_lock = threading.Lock()
_calls: list[dict] = []
_in_flight_mutating = 0
_peak_in_flight_mutating = 0
_rules: list["Rule"] = []
# PutEvents calls: {"entries", "status", "fault"} in arrival order.
_events: list[dict] = []

_FAULTS = {
    "throttle", "http500", "http503", "error", "drop", "lose", "hang", "warn", "before", "stale", "partial",
}
# Answers that carry a ValidationWarning ("warn").
_WARNABLE = {"CreateLaunchTemplateVersion", "CreateLaunchTemplate"}


class Rule:
    def __init__(self, spec: dict):
        if not isinstance(spec, dict):
            raise ValueError("a rule must be an object")
        self.service = spec.get("service")
        self.action = spec.get("action")
        self.group = spec.get("group")
        self.fault = spec.get("fault")
        if self.fault not in _FAULTS:
            raise ValueError(f"unknown fault {self.fault!r}; expected one of {sorted(_FAULTS)}")
        self.times = spec.get("times")
        self.probability = spec.get("probability")
        self.after = spec.get("after") or 0
        self.delay_ms = spec.get("delay_ms")
        self.status = spec.get("status")
        self.code = spec.get("code")
        self.message = spec.get("message")
        self.request = spec.get("request")
        # Request parameters the call must carry, e.g. {"LaunchTemplateData.ImageId": "ami-1"}:
        # a "warn" rule with "when" and no "times" judges the data, as EC2 does.
        self.when = spec.get("when") or {}
        if not isinstance(self.when, dict):
            raise ValueError('"when" must be an object of request parameters')
        if self.fault == "stale" and self.action != "DescribeLaunchTemplateVersions":
            raise ValueError("a stale rule needs action DescribeLaunchTemplateVersions")
        if self.fault == "warn" and self.action not in _WARNABLE:
            raise ValueError(f"a warn rule needs action one of {sorted(_WARNABLE)}")
        # Indices of the result entries a "partial" rule fails.
        self.entries = spec.get("entries")
        if self.entries is None:
            self.entries = [0]
        if self.fault == "partial":
            if self.action != "PutEvents":
                raise ValueError("a partial rule needs action PutEvents")
            if not (
                isinstance(self.entries, list)
                and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in self.entries)
            ):
                raise ValueError('"entries" must be a list of entry indices (integers >= 0)')
        if self.fault == "before":
            request = self.request
            if not (
                isinstance(request, dict)
                and isinstance(request.get("service"), str)
                and isinstance(request.get("action"), str)
                and isinstance(request.get("params", {}), dict)
            ):
                raise ValueError('a before rule needs "request": {"service", "action", "params"}')
        self.rng = random.Random(spec.get("seed"))
        self.seen = 0
        self.injected = 0

    def matches(self, call: "Call") -> bool:
        if self.service is not None and self.service != call.service:
            return False
        if self.action is not None and self.action != call.action:
            return False
        if self.group is not None:
            if call.service != "autoscaling" or call.form.get("AutoScalingGroupName") != self.group:
                return False
        return all(call.form.get(key) == value for key, value in self.when.items())

    def fires(self) -> bool:
        """Called once per matching call, under _state_lock."""
        index = self.seen
        self.seen += 1
        if index < self.after:
            return False
        if self.times is not None and self.injected >= self.times:
            return False
        if self.probability is not None and not self.rng.random() < self.probability:
            return False
        self.injected += 1
        return True


class Call:
    _SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/,\s]+)/([^/,\s]+)/aws4_request")

    def __init__(self, headers, query: str, body: bytes):
        match = self._SCOPE.search(headers.get("Authorization", ""))
        self.region = match.group(1) if match else None
        self.service = match.group(2) if match else None
        self.form: dict[str, str] = {}
        content_type = headers.get("Content-Type", "")
        if "x-www-form-urlencoded" in content_type:
            self.form.update(_first_values(body.decode("utf-8", "replace")))
        if query:
            for key, value in _first_values(query).items():
                self.form.setdefault(key, value)
        target = headers.get("X-Amz-Target")
        if target:
            self.action = target.rsplit(".", 1)[-1]
        else:
            self.action = self.form.get("Action")
        self.json_protocol = bool(target)
        self.mutating = bool(self.action) and not self.action.startswith(("Describe", "Get", "List"))


def _first_values(encoded: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(encoded, keep_blank_values=True).items()}


# ---------------------------------------------------------------------------
# AWS error shapes
# ---------------------------------------------------------------------------

# The common AWS error codes: other services', and Auto Scaling's and SSM's
# where _CANNED names no other.
_CANNED_DEFAULT = {
    "throttle": (400, "ThrottlingException", "Rate exceeded"),
    "http500": (500, "InternalFailure", "The request processing has failed because of an unknown error, exception or failure."),
    "http503": (503, "ServiceUnavailable", "The request has failed due to a temporary failure of the server."),
}
# Fault name -> (status, code, message) per service, as the real services answer.
_CANNED = {
    "ec2": {
        "throttle": (503, "RequestLimitExceeded", "Request limit exceeded."),
        "http500": (500, "InternalError", "An internal error has occurred."),
        "http503": (503, "Unavailable", "The server is overloaded and can't handle the request."),
    },
    "autoscaling": {**_CANNED_DEFAULT, "throttle": (400, "Throttling", "Rate exceeded")},
    "ssm": {**_CANNED_DEFAULT, "http500": (500, "InternalServerError", "An error occurred on the server side.")},
    # PutEvents' own error list names InternalException (HTTP 500).
    "events": {
        **_CANNED_DEFAULT,
        "http500": (500, "InternalException", "This exception occurs due to unexpected causes."),
    },
}


def error_response(call: Call, status: int, code: str, message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    request_id = str(uuid.uuid4())
    if call.json_protocol:
        body = json.dumps({"__type": code, "message": message}, separators=(",", ":")).encode()
        headers = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", request_id)]
    elif call.service == "ec2":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Response><Errors><Error><Code>{xml_escape(code)}</Code>"
            f"<Message>{xml_escape(message)}</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID></Response>"
        ).encode()
        headers = [("Content-Type", "text/xml;charset=UTF-8")]
    else:
        namespace = AUTOSCALING_XMLNS if call.service == "autoscaling" else None
        body = query_error(code, message, request_id, status, namespace).encode()
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
    return status, headers, body


def _without_newest_version(xml: bytes) -> bytes:
    """A DescribeLaunchTemplateVersions answer read before the newest version
    was visible: EC2's reads are eventually consistent ("the result of a
    command you run that affects your Amazon EC2 resources might not be
    immediately visible to all subsequent commands you run")."""
    start = xml.find(b"<launchTemplateVersionSet>")
    if start < 0:
        return xml
    items: list[tuple[int, int]] = []
    depth, opened = 0, 0
    for tag in re.finditer(rb"<(/?)item>", xml[start:]):
        at = start + tag.start()
        if tag.group(1):
            depth -= 1
            if depth == 0:
                items.append((opened, start + tag.end()))
            if depth < 0:
                break
        else:
            if depth == 0:
                opened = at
            depth += 1
    numbered = []
    for begin, end in items:
        number = re.search(rb"<versionNumber>(\d+)</versionNumber>", xml[begin:end])
        if number:
            numbered.append((int(number.group(1)), begin, end))
    if not numbered:
        return xml
    _, begin, end = max(numbered)
    return xml[:begin] + xml[end:]


def _with_failed_entries(body: bytes, indices: list[int], code: str, message: str) -> bytes:
    """A PutEvents answer in which the entries at ``indices`` failed.

    "Successful result entries include an Id value, and unsuccessful result
    entries include ErrorCode and ErrorMessage values" (EventBridge user
    guide, handling failures with PutEvents); FailedEntryCount counts them.
    """
    try:
        answer = json.loads(body)
    except ValueError:
        return body
    results = answer.get("Entries") if isinstance(answer, dict) else None
    if not isinstance(results, list):
        return body
    for index in indices:
        if index < len(results):
            results[index] = {"ErrorCode": code, "ErrorMessage": message}
    answer["FailedEntryCount"] = sum(1 for r in results if isinstance(r, dict) and "ErrorCode" in r)
    return json.dumps(answer).encode()


def _sent_entries(body: bytes) -> list:
    """A PutEvents request's Entries as sent ([] if the body is not that)."""
    try:
        entries = json.loads(body or b"{}").get("Entries")
    except (ValueError, AttributeError):
        return []
    return entries if isinstance(entries, list) else []


def _with_warning(xml: bytes, code: str, message: str) -> bytes:
    """Adds a ValidationWarning to an EC2 Create(LaunchTemplate|LaunchTemplateVersion) answer.

    EC2 serialises the result's ``Warning`` member as ``<warning><errorSet>
    <item><code/><message/></item></errorSet></warning>`` inside the root
    element; it goes just before the root's closing tag.
    """
    end = xml.rstrip().rfind(b"</")
    if end < 0:
        return xml
    warning = (
        f"<warning><errorSet><item><code>{xml_escape(code)}</code>"
        f"<message>{xml_escape(message)}</message></item></errorSet></warning>"
    ).encode()
    return xml[:end] + warning + xml[end:]


# The seeding credentials of the tests; a "before" request may name others
# (needed once IAM enforcement is on).
_SEED_CREDENTIALS = {"access_key_id": "testing", "secret_access_key": "testing"}
_clients_lock = threading.Lock()
_clients: dict[tuple, object] = {}


def _perform(request: dict, call: Call) -> str | None:
    """Performs a rule's ``request`` against moto directly (so the proxy
    neither records nor faults it); returns an error text if it failed."""
    _moto_ready.wait()
    import boto3
    from botocore import xform_name
    from botocore.config import Config

    credentials = {**_SEED_CREDENTIALS, **(request.get("credentials") or {})}
    region = request.get("region") or call.region or "us-east-1"
    key = (request["service"], region, credentials["access_key_id"], credentials["secret_access_key"])
    # botocore sessions are not safe for concurrent client creation.
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = boto3.client(
                request["service"],
                endpoint_url=f"http://127.0.0.1:{_moto_port}",
                region_name=region,
                aws_access_key_id=credentials["access_key_id"],
                aws_secret_access_key=credentials["secret_access_key"],
                config=Config(retries={"total_max_attempts": 1}),
            )
    try:
        getattr(client, xform_name(request["action"]))(**request.get("params", {}))
    except Exception as err:  # any failure is the test's setup failing
        return f"the rule's {request['service']}:{request['action']} failed: {err}"
    return None


# ---------------------------------------------------------------------------
# Proxy
# ---------------------------------------------------------------------------

_HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
    "te", "trailer", "trailers", "transfer-encoding", "upgrade", "expect", "content-length",
}
# send_response() writes its own Date and Server headers.
_DROP_FROM_UPSTREAM = _HOP_BY_HOP | {"date", "server"}

_moto_port = 0
# Set once moto_gaps is imported; forwarding waits for it (see main()).
_moto_ready = threading.Event()


class ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive for pooled SDK clients
    server_version = "aws-test-harness"

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format, *args):  # noqa: A002 - stderr may be an unread pipe
        pass

    def do_GET(self):
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    # -- plumbing ----------------------------------------------------------

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes, reason: str | None = None):
        self.send_response(status, reason)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)
        self.wfile.flush()

    def _send_json(self, status: int, payload: object):
        self._send(status, [("Content-Type", "application/json")], json.dumps(payload).encode())

    def _forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        _moto_ready.wait()
        for attempt in (0, 1):
            upstream = getattr(self, "_upstream", None)
            reused = upstream is not None
            if upstream is None:
                upstream = self._upstream = HTTPConnection("127.0.0.1", _moto_port)
            try:
                upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for key, value in self.headers.items():
                    if key.lower() not in _HOP_BY_HOP:
                        upstream.putheader(key, value)
                upstream.putheader("Content-Length", str(len(body)))
                upstream.endheaders(body)
                response = upstream.getresponse()
                data = response.read()
            except (BrokenPipeError, ConnectionResetError, RemoteDisconnected):
                upstream.close()
                self._upstream = None
                # Only a stale kept-alive connection is retried: moto closed it
                # before reading the request, so the call never ran.
                if reused and attempt == 0:
                    continue
                raise
            if response.will_close:
                upstream.close()
                self._upstream = None
            headers = [(k, v) for k, v in response.getheaders() if k.lower() not in _DROP_FROM_UPSTREAM]
            return response.status, response.reason, headers, data
        raise AssertionError("unreachable")

    # -- request handling --------------------------------------------------

    def _handle(self):
        body = self._read_body()
        split = urlsplit(self.path)
        if split.path.startswith("/_harness/"):
            self._control(split.path, body)
            return

        call = Call(self.headers, split.query, body)
        if not call.service:
            status, reason, headers, data = self._forward(body)
            self._send(status, headers, data, reason)
            return

        global _in_flight_mutating, _peak_in_flight_mutating
        with _state_lock:
            record = {
                "service": call.service,
                "action": call.action,
                "mutating": call.mutating,
                "status": None,
                "fault": None,
                # Arrival time (Unix seconds), for start-up measurements.
                "at": time.time(),
            }
            _calls.append(record)
            rule = next((r for r in _rules if r.matches(call) and r.fires()), None)
            if rule is not None:
                record["fault"] = rule.fault
            sent = None
            if call.service == "events" and call.action == "PutEvents":
                sent = {"entries": _sent_entries(body), "status": None, "fault": record["fault"]}
                _events.append(sent)
            if call.mutating:
                _in_flight_mutating += 1
                _peak_in_flight_mutating = max(_peak_in_flight_mutating, _in_flight_mutating)
        try:
            self._answer(call, rule, record, body)
        finally:
            with _state_lock:
                if sent is not None:
                    sent["status"] = record["status"]
                if call.mutating:
                    _in_flight_mutating -= 1

    def _answer(self, call: Call, rule: Rule | None, record: dict, body: bytes):
        fault = rule.fault if rule else None
        if fault == "drop":
            self._hang_up()
            return
        if fault in ("throttle", "http500", "http503", "error"):
            if fault == "error":
                status = int(rule.status or 400)
                code = rule.code or "ValidationError"
                message = rule.message or "Injected error"
            else:
                status, code, message = _CANNED.get(call.service, _CANNED_DEFAULT)[fault]
            self._send_error(call, record, status, code, message)
            return
        if fault == "hang":
            delay = rule.delay_ms if rule.delay_ms is not None else 60000
            time.sleep(delay / 1000.0)
        if fault == "before":
            failure = _perform(rule.request, call)
            if failure:
                # 400, so that no SDK retries past a broken test setup.
                self._send_error(call, record, 400, "HarnessInjectionFailed", failure)
                return
        status, reason, headers, data = self._forward(body)
        if fault == "lose":
            # Carried out, and its answer lost on the way back.
            record["status"] = status
            self._hang_up()
            return
        if fault == "stale" and status == 200:
            data = _without_newest_version(data)
        if fault == "warn" and status == 200:
            data = _with_warning(data, rule.code or "InvalidParameterValue", rule.message or "Injected warning")
        if fault == "partial" and status == 200:
            data = _with_failed_entries(
                data, rule.entries, rule.code or "InternalFailure", rule.message or "Injected entry failure"
            )
        record["status"] = status
        try:
            self._send(status, headers, data, reason)
        except OSError:
            # The client gave up (e.g. timed out on a hang); nothing to answer.
            self.close_connection = True

    def _hang_up(self):
        """Closes the connection without an answer."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send_error(self, call: Call, record: dict, status: int, code: str, message: str):
        """Answers the call with an error of the proxy's own (moto never sees it)."""
        status, headers, data = error_response(call, status, code, message)
        record["status"] = status
        self._send(status, headers, data)

    # -- control endpoints -------------------------------------------------

    def _control(self, path: str, body: bytes):
        global _calls, _events, _rules, _peak_in_flight_mutating
        try:
            payload = json.loads(body) if body.strip() else {}
        except ValueError:
            self._send_json(400, {"error": "body is not JSON"})
            return

        if path == "/_harness/calls" and self.command == "GET":
            with _state_lock:
                result = {
                    "calls": [dict(c) for c in _calls],
                    "peak_in_flight_mutating": _peak_in_flight_mutating,
                }
            self._send_json(200, result)
        elif path == "/_harness/events" and self.command == "GET":
            with _state_lock:
                result = {"calls": [dict(c) for c in _events]}
            self._send_json(200, result)
        elif path == "/_harness/reset" and self.command == "POST":
            with _state_lock:
                _calls = []
                _events = []
                _rules = []
                _peak_in_flight_mutating = _in_flight_mutating
            self._send_json(200, {"ok": True})
        elif path == "/_harness/faults" and self.command == "POST":
            try:
                rules = [Rule(spec) for spec in payload.get("rules", [])]
            except (ValueError, TypeError, AttributeError) as err:
                self._send_json(400, {"error": str(err)})
                return
            with _state_lock:
                _rules = rules
            self._send_json(200, {"ok": True, "rules": len(rules)})
        elif path.startswith("/_harness/images/") and self.command == "POST":
            self._set_image(path[len("/_harness/images/"):], payload)
        elif (
            path.startswith("/_harness/refreshes/")
            or (path.startswith("/_harness/groups/") and path.endswith("/instances"))
            or path == "/_harness/clock"
        ):
            _moto_ready.wait()
            import instance_refresh  # imported by moto_gaps before moto starts

            status, result = instance_refresh.control(self.command, path, payload)
            self._send_json(status, result)
        elif path.startswith("/_harness/groups/") and self.command == "POST":
            self._set_group(unquote(path[len("/_harness/groups/"):]), payload)
        else:
            self._send_json(404, {"error": f"no control endpoint {self.command} {path}"})

    def _set_image(self, image_id: str, payload: dict):
        _moto_ready.wait()
        from moto.ec2.models import ec2_backends

        region = payload.get("region", "us-east-1")
        backend = ec2_backends[ACCOUNT_ID][region]
        image = backend.amis.get(image_id)
        if image is None:
            self._send_json(404, {"error": f"unknown image {image_id} in {region}"})
            return
        if "state" in payload:
            image.state = payload["state"]
        if "creation_date" in payload:
            parsed = datetime.fromisoformat(payload["creation_date"].replace("Z", "+00:00"))
            if parsed.tzinfo is not None:
                # moto keeps naive UTC datetimes.
                parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
            image.creation_date = parsed
        self._send_json(200, {"ok": True, "image_id": image_id, "state": image.state})


    def _set_group(self, name: str, payload: dict):
        _moto_ready.wait()
        import moto_gaps

        if "status" not in payload or not (payload["status"] is None or isinstance(payload["status"], str)):
            self._send_json(400, {"error": 'expected {"status": "Delete in progress" | null}'})
            return
        region = payload.get("region", "us-east-1")
        if not moto_gaps.set_group_status(name, payload["status"], region):
            self._send_json(404, {"error": f"unknown group {name} in {region}"})
            return
        self._send_json(200, {"ok": True, "group": name, "status": payload["status"]})


_moto_app = None


def _gated(environ, start_response):
    """moto's WSGI application, once loaded and patched."""
    _moto_ready.wait()
    return _moto_app(environ, start_response)


class ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


# ---------------------------------------------------------------------------
# Startup
# ---------------------------------------------------------------------------


def _watch_stdin() -> None:
    mode = os.fstat(0).st_mode
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(0)):
        return  # /dev/null or a file: rely on signals
    try:
        while os.read(0, 65536):
            pass
    except OSError:
        pass
    os._exit(0)


def main() -> None:
    global _moto_port
    here = os.path.dirname(os.path.abspath(__file__))
    if here not in sys.path:
        sys.path.insert(0, here)
    # ~1,200 public AMIs would otherwise be loaded on the first EC2 call and
    # show up in DescribeImages.
    os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
    for handled in (signal.SIGTERM, signal.SIGINT):
        signal.signal(handled, lambda *_: os._exit(0))

    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no per-request log lines

    # Both sockets are bound before moto is imported, so the ready line comes
    # out at once; importing moto and its EC2 models (most of the start-up
    # cost) happens afterwards, and every request waits for it (see _gated),
    # so nothing ever reaches an unpatched moto.
    proxy = ProxyServer(("127.0.0.1", 0), ProxyHandler)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()

    from werkzeug.serving import make_server

    # Equivalent of moto.server.ThreadedMotoServer(ip_address="127.0.0.1",
    # port=0), with the application plugged in once it is importable.
    moto_server = make_server("127.0.0.1", 0, _gated, threaded=True)
    _moto_port = moto_server.server_address[1]
    threading.Thread(target=moto_server.serve_forever, daemon=True).start()

    print(json.dumps({"proxy": proxy.server_address[1], "moto": _moto_port}), flush=True)

    # moto builds a fresh boto3 Session (re-reading botocore's endpoint data)
    # several times while importing EC2 and creating backends: ~0.3 s of the
    # start-up. moto already shares one Session for its backends, so sharing
    # one for every argument-less Session() is safe.
    import boto3

    real_session = boto3.Session
    shared_session = real_session()
    boto3.Session = lambda *a, **k: shared_session if not (a or k) else real_session(*a, **k)

    global _moto_app
    try:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )

        import moto_gaps  # noqa: F401  (patches moto on import)

        _moto_app = DomainDispatcherApplication(create_backend_app)
    except BaseException:
        # Requests would otherwise wait forever for a moto that never comes.
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    # What ThreadedMotoServer configures: moto's handler, keep-alive.
    MotoRequestHandler.protocol_version = "HTTP/1.1"
    moto_server.RequestHandlerClass = MotoRequestHandler
    _moto_ready.set()
    _watch_stdin()
    while True:
        signal.pause()  # until SIGTERM/SIGINT


if __name__ == "__main__":
    main()
