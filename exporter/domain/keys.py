"""The identities of the model: which export series, which run, which delivery, which account."""

from __future__ import annotations

import re
from typing import Final

#: The account named in the webhook URL (``/webhook/{account}``); no leading dot, so that no
#: account is a relative path segment. The one pattern used by the route, the payload model,
#: the declared-exports file, the OpenAPI document and the client.
ACCOUNT_PATTERN: Final = r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}"
ACCOUNT_RE: Final = re.compile(ACCOUNT_PATTERN)
#: The account of ``/webhook`` without a path segment.
DEFAULT_ACCOUNT: Final = "default"

SeriesKey = tuple[str, str, str, str]  # account, partner, export_type, frequency
RunKey = tuple[str, str]  # account, export id
DeliveryKey = tuple[str, str, str, float]  # account, export id, status, event time
