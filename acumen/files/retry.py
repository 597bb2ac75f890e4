"""Which failures of a request to object storage are retried, how long acumen waits between
tries, and the retries of the layers below it turned off, so that the total is bounded.

acumen retries a failed request itself (:func:`is_transient` decides which; exponential
backoff with jitter, :func:`delay`): ``retries`` more tries (default 8, or
``$ACUMEN_REMOTE_RETRIES``) after the first, the n-th after ``backoff * 2**n`` seconds
(at most :data:`MAX_WAIT`), half of it random (default ``backoff`` 0.1 s, or
``$ACUMEN_REMOTE_BACKOFF``). With the defaults a request that keeps failing fast (an
endless 503) gives up after 9 tries and at most 22.7 s of waiting: long enough to ride out
S3's throttling (``SlowDown``) of a busy prefix, short enough that a dead endpoint is an
error, not a hung training run.

Below acumen, s3fs retries a call 5 times itself and botocore up to 5 times within each of
those: 25 requests per acumen try, 150 in all, minutes for an endless 503.
:func:`filesystem` turns both off for ``s3://`` (botocore's ``total_max_attempts`` 1, s3fs's
``retries`` 1) unless the storage options set botocore's ``config_kwargs["retries"]``
themselves (then theirs multiply acumen's). A request that hangs waits for the backend's
own timeout each try (botocore's ``read_timeout``, 60 s unless ``config_kwargs`` say
otherwise), and acumen's own deadline for a ranged GET or a HEAD (:func:`deadline`: 30 s
plus a second per MiB, ``$ACUMEN_REMOTE_TIMEOUT``), whichever comes first: a stalled
connection is cut and tried again rather than holding a training step. Other backends
(gcsfs, adlfs) keep their own retries.
"""

from __future__ import annotations

import asyncio
import errno
import os
import random
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from acumen.errors import shorten

#: Tries after the first, and the first wait in seconds (doubled at each try), by default.
RETRIES = 8
BACKOFF = 0.1
#: The longest single wait between two tries, in seconds.
MAX_WAIT = 10.0
#: A ranged GET or a HEAD that takes longer than TIMEOUT seconds plus one second per
#: MIN_RATE bytes is cut and tried again (a stalled connection, not a slow link).
TIMEOUT = 30.0
MIN_RATE = 1 << 20
RETRIES_VARIABLE = "ACUMEN_REMOTE_RETRIES"
BACKOFF_VARIABLE = "ACUMEN_REMOTE_BACKOFF"
TIMEOUT_VARIABLE = "ACUMEN_REMOTE_TIMEOUT"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
_S3_SCHEMES = ("s3", "s3a")


def default_retries() -> int:
    """``$ACUMEN_REMOTE_RETRIES`` (a whole number >= 0), else :data:`RETRIES`."""
    return int(_setting(RETRIES_VARIABLE, RETRIES, int))


def default_backoff() -> float:
    """``$ACUMEN_REMOTE_BACKOFF`` (seconds >= 0), else :data:`BACKOFF`."""
    return float(_setting(BACKOFF_VARIABLE, BACKOFF, float))


def default_timeout() -> float:
    """``$ACUMEN_REMOTE_TIMEOUT`` (seconds >= 0; 0: no deadline of acumen's), else
    :data:`TIMEOUT`."""
    return float(_setting(TIMEOUT_VARIABLE, TIMEOUT, float))


def deadline(timeout: float, size: int) -> float | None:
    """Seconds a request of ``size`` bytes may take before it counts as stalled: the base
    ``timeout`` plus one second per :data:`MIN_RATE` bytes (None: no deadline)."""
    return timeout + size / MIN_RATE if timeout > 0 else None


def _setting(name: str, default: float, kind: type) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        value = -1
    if value < 0:
        raise ValueError(f"${name}={text!r}: expected a number >= 0")
    return value


def delay(backoff: float, attempt: int) -> float:
    """Seconds to wait before try ``attempt + 1``: ``backoff * 2**attempt`` (at most
    :data:`MAX_WAIT`), half random."""
    full = min(backoff * 2**attempt, MAX_WAIT)
    return full / 2 + random.random() * full / 2


T = TypeVar("T")


def with_retries(
    call: Callable[[], T],
    retries: int,
    backoff: float,
    also: Callable[[BaseException], bool] = lambda error: False,
) -> T:
    """``call()``, tried again after a transient failure (or one ``also`` accepts), at
    most ``retries`` more times, :func:`delay` apart; then its last error is raised. The
    blocking twin of the requests' own loop (``RemoteStore``), for listings and uploads."""
    attempt = 0
    while True:
        try:
            return call()
        except Exception as error:
            if attempt >= retries or not (is_transient(error) or also(error)):
                raise
        time.sleep(delay(backoff, attempt))
        attempt += 1


def worst_wait(retries: int, backoff: float) -> float:
    """The most seconds :func:`delay` adds up to over ``retries`` retries."""
    return sum(min(backoff * 2**n, MAX_WAIT) for n in range(retries))


def scheme(url: str) -> str:
    match = _SCHEME.match(url)
    return match.group(1).lower() if match else ""


def filesystem(url: str, storage_options: Mapping[str, Any]) -> Any:
    """fsspec's filesystem for ``url``, with s3fs's and botocore's retries turned off
    unless the options ask for botocore's (see the module's docstring)."""
    import fsspec.core

    options = dict(storage_options)
    inner = scheme(url) in _S3_SCHEMES and "retries" not in (options.get("config_kwargs") or {})
    if inner:
        config = dict(options.get("config_kwargs") or {})
        config["retries"] = {"total_max_attempts": 1}
        options["config_kwargs"] = config
    fs, _ = fsspec.core.url_to_fs(url, **options)
    if inner and hasattr(fs, "retries"):
        fs.retries = 1  # s3fs's own loop (_error_wrapper): one try
    return fs


class WrongLength(Exception):
    """A ranged GET answered with a body of another length (internal: retried)."""

    def __init__(self, got: int) -> None:
        super().__init__(f"got {got} bytes")
        self.got = got


def status_of(error: BaseException | None) -> int | None:
    """The HTTP status behind an error, looking through its causes: ``.status`` on
    aiohttp's ClientResponseError, ``response["ResponseMetadata"]["HTTPStatusCode"]`` on
    botocore's ClientError (s3fs raises a translated OSError whose ``__cause__`` it is)."""
    seen = 0
    while error is not None and seen < 8:
        status = getattr(error, "status", None)
        if isinstance(status, int):
            return status
        response = getattr(error, "response", None)
        if isinstance(response, dict):
            code = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if isinstance(code, int):
                return code
        error, seen = error.__cause__ or error.__context__, seen + 1
    return None


def code_of(error: BaseException | None) -> str:
    """botocore's error code (``SlowDown``, ``AccessDenied``...), through the causes."""
    seen = 0
    while error is not None and seen < 8:
        response = getattr(error, "response", None)
        if isinstance(response, dict):
            return str(response.get("Error", {}).get("Code", ""))
        error, seen = error.__cause__ or error.__context__, seen + 1
    return ""


def error_names(error: BaseException) -> set[str]:
    """The names of the error's classes: tells botocore's and aiohttp's errors apart
    without importing either (both are optional)."""
    return {cls.__name__ for cls in type(error).__mro__}


# botocore error codes of throttling and of a server that failed (s3fs's _error_wrapper
# retries "SlowDown" itself; botocore's retry handler lists the throttling codes).
_TRANSIENT_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "ServiceUnavailable",
    "InternalError",
    "RequestTimeout",
    "RequestTimeoutException",
    "OperationAborted",
}
# botocore.exceptions: HTTPClientError covers ConnectionClosedError and
# ResponseStreamingError (a body cut short); ConnectionError covers EndpointConnectionError
# and ConnectTimeoutError; ReadTimeoutError; IncompleteReadError. urllib3's and http.client's
# IncompleteRead (s3fs lists urllib3's in S3_RETRYABLE_ERRORS). aiohttp.client_exceptions:
# ClientPayloadError (a body cut short: "Response payload is not completed"),
# ClientConnectionError (ServerDisconnectedError, ClientOSError, ClientConnectorError).
_TRANSIENT_CLASSES = {
    "HTTPClientError",
    "ConnectionClosedError",
    "ResponseStreamingError",
    "EndpointConnectionError",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "IncompleteReadError",
    "IncompleteRead",
    "ClientPayloadError",
    "ClientConnectionError",
    "ServerDisconnectedError",
}
# botocore.exceptions: no credentials found, or some of them only: never retried.
CREDENTIAL_CLASSES = {"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"}


def is_transient(error: BaseException) -> bool:
    """Whether a failed request is worth another try.

    Where each failure comes from:

    - fsspec HTTPFileSystem (``http.py``, ``_raise_not_found_for_status``): 404 ->
      ``FileNotFoundError``; any other status >= 400 -> ``aiohttp.ClientResponseError``
      with ``.status`` (5xx bar 501/505, 429, 408 transient; 401, 403, 416 not). Connection failures
      are ``aiohttp.ClientConnectionError`` (``ServerDisconnectedError``, ``ClientOSError``,
      itself an OSError), a body shorter than its Content-Length ``ClientPayloadError``,
      timeouts ``asyncio.TimeoutError`` (``ServerTimeoutError``) or fsspec's
      ``FSTimeoutError``.
    - s3fs (``core.py`` ``_error_wrapper``, ``errors.py`` ``translate_boto_error``): after
      its own retries a botocore ``ClientError`` is translated by error code: NoSuchKey/404
      -> ``FileNotFoundError``; AccessDenied, InvalidAccessKeyId, SignatureDoesNotMatch,
      ExpiredToken, 403 -> ``PermissionError``; SlowDown, ServiceUnavailable, 503 ->
      ``OSError(EBUSY)``; InternalError, 500 -> ``OSError(EREMOTEIO)``; RequestTimeout ->
      ``TimeoutError``; InvalidRange/416 -> ``OSError(EINVAL)``; an unknown code ->
      ``OSError(EIO)``; the ClientError stays as ``__cause__`` (its status and code are
      read there). Errors that are not ClientErrors come through untranslated: botocore's
      ``NoCredentialsError`` (never retried), ``EndpointConnectionError``,
      ``ReadTimeoutError``, ``ResponseStreamingError`` (retried).
    - A ranged GET whose body has another length than asked (:class:`WrongLength`).
    """
    if isinstance(error, WrongLength):
        return True
    if isinstance(error, (FileNotFoundError, PermissionError, ValueError)):
        return False
    names = error_names(error)
    if names & CREDENTIAL_CLASSES:
        return False
    status = status_of(error)
    if status is not None:
        return (status >= 500 and status not in (501, 505)) or status in (408, 429)
    if code_of(error) in _TRANSIENT_CODES:
        return True
    if isinstance(error, (TimeoutError, asyncio.TimeoutError, ConnectionError)):
        return True
    if names & _TRANSIENT_CLASSES:
        return True
    # s3fs's translation of codes it knows without a status (EBUSY: SlowDown, 503;
    # EREMOTEIO: InternalError, 500).
    return isinstance(error, OSError) and error.errno in (
        errno.EBUSY,
        getattr(errno, "EREMOTEIO", errno.EIO),
    )


def credentials_hint(url: str) -> str:
    scheme = (_SCHEME.match(url) or re.match("()", "")).group(1).lower()
    if scheme in ("s3", "s3a"):
        return (
            "set storage_options key= and secret= (token= for temporary ones), profile=, "
            "or anon=True for a public bucket; or the environment variables "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
        )
    if scheme in ("gs", "gcs"):
        return (
            "set storage_options token= (a service-account JSON file, or 'anon'), or the "
            "environment variable GOOGLE_APPLICATION_CREDENTIALS"
        )
    if scheme in ("az", "abfs", "abfss", "adl"):
        return (
            "set storage_options account_name= with account_key=, sas_token= or "
            "connection_string=; or the environment variables AZURE_STORAGE_ACCOUNT_NAME "
            "with AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_SAS_TOKEN or "
            "AZURE_STORAGE_CONNECTION_STRING"
        )
    return (
        "set storage_options headers={'Authorization': ...} or "
        "client_kwargs={'auth': aiohttp.BasicAuth(user, password)}"
    )


def describe(error: BaseException) -> str:
    status, code = status_of(error), code_of(error)
    text = shorten(str(error) or type(error).__name__, 300)
    parts = [f"HTTP {status}" if status else "", code]
    head = " ".join(p for p in parts if p)
    return f"{head}: {text}" if head else f"{type(error).__name__}: {text}"
