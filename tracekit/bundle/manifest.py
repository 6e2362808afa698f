"""The bundle manifest: what a valid one looks like, checked before any field is used.

Everything in a bundle is attacker-controlled until the manifest's signature has been
checked against the tracer's key, and even a correctly signed manifest is only as
careful as the tracekit that wrote it. So the manifest is parsed strictly (no duplicate
keys, bounded nesting) and validated against one schema (pydantic, strict types, no
unknown keys) before anything reads a field. Member names follow fixed patterns: a
bundle can only ever name a file inside the folder it is opened into, and the folder's
own name, the ``bundle_id``, is 32 hex digits.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from tracekit.domain.text import has_control_characters
from tracekit.errors import BundleInvalid

BUNDLE_FORMAT = "tracekit-bundle"
#: The version tracekit writes. 2: CSV members for analysts (byte order mark, withheld
#: status in its own columns, markers as empty cells, phones unprefixed); the manifest and
#: every other member are as in 1, so a reader handles both alike.
BUNDLE_VERSION = 2
SUPPORTED_VERSIONS = (1, 2)
MAX_MANIFEST_BYTES = 8 * 1024 * 1024
MAX_SIGNATURE_BYTES = 1024
#: A member may be at most this large (a chunk of 20,000 records is a few MiB; a sealed
#: referral far less).
MAX_MEMBER_BYTES = 4 * 1024 * 1024 * 1024
MAX_MEMBERS = 200_000

MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig"
#: Every name a member listed in the manifest may have (docs/bundle-format.md).
MEMBER_NAME = re.compile(
    r"records/(cases|contacts)-[0-9]{5}\.(jsonl|csv)"
    r"|statistics\.(json|csv)"
    r"|referrals/R-[0-9A-HJKMNP-TV-Z]{6}\.age"
    r"|recalls/[0-9a-f]{32}\.json"
    r"|redaction-report\.json"
)


def _printable(value: str) -> str:
    if has_control_characters(value):
        raise ValueError("holds control characters, which tracekit never writes")
    return value


def _printable_text(value: str) -> str:
    if has_control_characters(value, multiline=True):
        raise ValueError("holds control characters, which tracekit never writes")
    return value


_Hex64 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
_Name = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_printable)]
_Key = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_.-]{1,64}$")]
_Count = Annotated[int, Field(ge=0, le=10**12)]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class TracerKey(_Strict):
    algorithm: Literal["ed25519"]
    public_key: _Hex64
    fingerprint: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{4}(:[0-9a-f]{4}){7}$")]


class Recipient(_Strict):
    #: as ``recipients add`` accepts them
    name: Annotated[str, StringConstraints(pattern=r"^[\w .@-]{1,100}$"), AfterValidator(_printable)]
    role: Literal["central-team", "vetted-team"]


class PolicyDefinition(_Strict):
    name: _Name
    description: Annotated[str, StringConstraints(max_length=2000), AfterValidator(_printable_text)]
    kind: Literal["records", "statistics"]
    recipient_roles: list[Literal["central-team", "vetted-team"]]
    fields: dict[_Key, list[_Key]]
    scope: Literal["standard", "sensitive"]
    role_category: bool
    statistics: list[_Key]


class PolicyInfo(_Strict):
    name: _Name
    sha256: _Hex64
    kind: Literal["records", "statistics"]
    definition: PolicyDefinition


class Changes(_Strict):
    since: str | None
    until: str

    @field_validator("since", "until")
    @classmethod
    def _timestamp(cls, value: str | None) -> str | None:
        if value is not None:
            _parse_time(value)
        return value


class FileEntry(_Strict):
    path: str
    sha256: _Hex64
    bytes: Annotated[int, Field(ge=0, le=MAX_MEMBER_BYTES)]

    @field_validator("path")
    @classmethod
    def _member_name(cls, value: str) -> str:
        if not MEMBER_NAME.fullmatch(value):
            raise ValueError("is not a member name tracekit writes (records/cases-NNNNN.jsonl and the like)")
        return value


class Manifest(_Strict):
    format: Literal["tracekit-bundle"]
    version: Literal[1, 2]
    bundle_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
    created_at: str
    tracekit_version: Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z.+-]{1,40}$")]
    tracer_key: TracerKey
    recipient: Recipient
    policy: PolicyInfo
    changes: Changes
    record_counts: dict[_Key, _Count]
    files: Annotated[list[FileEntry], Field(max_length=MAX_MEMBERS)]
    audit_head: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,19}:([0-9a-f]{64})?$")] | None = None

    @field_validator("created_at")
    @classmethod
    def _created(cls, value: str) -> str:
        _parse_time(value)
        return value

    @field_validator("files")
    @classmethod
    def _unique_paths(cls, value: list[FileEntry]) -> list[FileEntry]:
        paths = [entry.path for entry in value]
        if len(set(paths)) != len(paths):
            raise ValueError("lists the same path twice")
        return value


def _parse_time(value: str) -> None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("is not an ISO 8601 time such as 2020-11-01T09:00:00+00:00") from None
    if parsed.tzinfo is None:
        raise ValueError("has no time zone")


def no_duplicate_keys(what: str) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    """A ``json.loads`` object hook that refuses a key named twice in ``what`` (signed
    JSON a reader could take either value of)."""

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise BundleInvalid(f"{what} names the key {key[:60]!r} twice; a reader could take either value")
            result[key] = value
        return result

    return hook


_no_duplicate_keys = no_duplicate_keys("the manifest")


def parse_manifest(data: bytes) -> tuple[Manifest, dict[str, Any]]:
    """The validated manifest, and the plain JSON object it was read from.

    Raises :class:`BundleInvalid` naming the first problem: not JSON, a duplicated key,
    nesting too deep, not a tracekit bundle, an unsupported version, or a field that is
    missing, of the wrong type or out of its range.
    """
    try:
        raw = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except UnicodeDecodeError:
        raise BundleInvalid("the manifest is not UTF-8 text") from None
    except RecursionError:
        raise BundleInvalid("the manifest is nested too deeply to be a tracekit manifest") from None
    except ValueError as exc:  # json.JSONDecodeError
        raise BundleInvalid(f"the manifest is not valid JSON ({getattr(exc, 'msg', 'unreadable')})") from None
    if not isinstance(raw, dict):
        raise BundleInvalid(f"the manifest is a JSON {_json_type(raw)}, not an object")
    if raw.get("format") != BUNDLE_FORMAT:
        raise BundleInvalid('this is not a tracekit bundle: its manifest does not say format "tracekit-bundle"')
    version = raw.get("version")
    if type(version) is not int:
        raise BundleInvalid(
            f"the manifest's version is a JSON {_json_type(version)}; it must be a whole number such as 1"
        )
    if version not in SUPPORTED_VERSIONS:
        supported = ", ".join(str(v) for v in SUPPORTED_VERSIONS)
        versions = "version" if len(SUPPORTED_VERSIONS) == 1 else "versions"
        raise BundleInvalid(
            f"bundle format version {version} is not supported by this tracekit (it reads {versions} {supported})"
        )
    try:
        return Manifest.model_validate(raw), raw
    except ValidationError as exc:
        raise BundleInvalid(f"the manifest is malformed: {first_problem(exc)}") from None
    except RecursionError:
        raise BundleInvalid("the manifest is nested too deeply to be a tracekit manifest") from None


def first_problem(exc: ValidationError) -> str:
    """The first schema problem, by where it is (never the value), and how many more."""
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    where = ".".join(str(part)[:60] for part in first["loc"]) or "the top level"
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    message = first["msg"]
    if first["type"] == "value_error":
        message = message.removeprefix("Value error, ")
    return f"{where}: {message}{more}"


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), "value"
    )
