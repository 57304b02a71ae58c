"""AWS's XML error shapes: one copy for the proxy's faults (harness.py) and the
emulation's own errors (moto_gaps.py, instance_refresh.py).

Imports nothing from moto: the proxy answers faults before moto is loaded.
"""

from __future__ import annotations

AUTOSCALING_XMLNS = "http://autoscaling.amazonaws.com/doc/2011-01-01/"


def xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def query_error(
    code: str, message: str, request_id: str, status: int = 400, namespace: str | None = AUTOSCALING_XMLNS
) -> str:
    """The query protocol's ``<ErrorResponse>``: Auto Scaling's (in its
    namespace) unless ``namespace`` is None; ``Receiver`` for a 5xx status."""
    xmlns = f' xmlns="{namespace}"' if namespace else ""
    kind = "Receiver" if status >= 500 else "Sender"
    return (
        f"<ErrorResponse{xmlns}><Error><Type>{kind}</Type>"
        f"<Code>{xml_escape(code)}</Code><Message>{xml_escape(message)}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    )
