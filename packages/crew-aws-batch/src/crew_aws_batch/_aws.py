"""The AWS connection shared by the launcher, the monitor and the definition helper.

boto3 is imported here, lazily, so that ``import crew`` (and listing plugins) never loads it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Callable, TypeVar

from crew import validate
from crew.errors import SchedulerError, SettingError

T = TypeVar("T")

_CREDENTIAL_KEYS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
_DESCRIBE_CHUNK = 100
"""describe_jobs accepts at most 100 job ids per call."""


def _chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """Consecutive slices of ``items`` holding at most ``size`` elements."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _validate_credentials(value: Any) -> dict[str, str] | None:
    """The ``aws_credentials`` option: None or a dict of boto3 credential keyword arguments."""
    credentials = validate.mapping("aws_credentials", value, values=str)
    if credentials is None:
        return None
    unknown = sorted(set(credentials) - set(_CREDENTIAL_KEYS))
    if unknown:
        raise SettingError(
            f"aws_credentials may only hold {', '.join(_CREDENTIAL_KEYS)}, not {', '.join(unknown)}"
        )
    for key in ("aws_access_key_id", "aws_secret_access_key"):
        if key not in credentials:
            raise SettingError(f"aws_credentials must hold {key}")
    return credentials


class _Connection:
    """Validated connection settings and the boto3 clients made from them (thread-safe)."""

    def __init__(
        self,
        region: str | None = None,
        endpoint_url: str | None = None,
        aws_profile: str | None = None,
        aws_credentials: Mapping[str, str] | None = None,
        seconds_timeout: float = 60.0,
    ):
        self.region = validate.text("region", region, allow_none=True)
        self.endpoint_url = validate.text("endpoint_url", endpoint_url, allow_none=True, pattern=r"https?://\S+")
        self.aws_profile = validate.text("aws_profile", aws_profile, allow_none=True)
        self.aws_credentials = _validate_credentials(aws_credentials)
        if self.aws_profile is not None and self.aws_credentials is not None:
            raise SettingError("give aws_profile or aws_credentials, not both")
        self.seconds_timeout = validate.number("seconds_timeout", seconds_timeout, exclusive_minimum=True)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` ("batch" or "logs"), made once and then reused."""
        with self._lock:
            if service not in self._clients:
                import boto3
                from botocore.config import Config

                session = boto3.session.Session(
                    profile_name=self.aws_profile,
                    region_name=self.region,
                    **(self.aws_credentials or {}),
                )
                config = Config(
                    connect_timeout=self.seconds_timeout,
                    read_timeout=self.seconds_timeout,
                    retries={"mode": "standard", "max_attempts": 5},
                )
                self._clients[service] = session.client(service, endpoint_url=self.endpoint_url, config=config)
            return self._clients[service]

    def call(self, service: str, operation: str, **parameters: Any) -> dict[str, Any]:
        """Call one AWS operation; AWS errors become :class:`crew.SchedulerError` with AWS's message."""
        client = self.client(service)
        return _checked(f"{service}.{operation}", lambda: getattr(client, operation)(**parameters))

    def pages(self, service: str, operation: str, key: str, **parameters: Any) -> list[dict[str, Any]]:
        """All items under ``key`` of a paginated operation (following ``nextToken``)."""
        items: list[dict[str, Any]] = []
        token = None
        while True:
            page = self.call(service, operation, **parameters, **({"nextToken": token} if token else {}))
            items.extend(page.get(key, []))
            token = page.get("nextToken")
            if not token:
                return items


def _checked(command: str, function: Callable[[], T]) -> T:
    """Run ``function``; turn botocore's errors into :class:`crew.SchedulerError`."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return function()
    except ClientError as error:
        raise SchedulerError(command, str(error)) from error
    except BotoCoreError as error:
        raise SchedulerError(command, str(error)) from error


def _environment_list(environment: Mapping[str, str]) -> list[dict[str, str]]:
    """A dict of variables as AWS's ``[{"name": ..., "value": ...}]`` list."""
    return [{"name": name, "value": value} for name, value in environment.items()]


def _unique(items: Iterable[T]) -> list[T]:
    """``items`` without repeats, in first-seen order."""
    return list(dict.fromkeys(items))
