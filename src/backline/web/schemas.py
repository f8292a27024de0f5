"""Request bodies of the REST API.  Unknown fields are refused (``extra="forbid"``)."""

from __future__ import annotations

from typing import Any, Literal

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

_FORBID = ConfigDict(extra="forbid", str_strip_whitespace=False)
#: Database ids and versions: positive and within a signed 64-bit integer.
DbId = Annotated[int, Field(ge=1, le=2 ** 63 - 1)]
Version = Annotated[int, Field(ge=0, le=2 ** 31 - 1)]


class ParticipantIn(BaseModel):
    model_config = _FORBID
    name: str = Field(min_length=1, max_length=200)
    role: Literal["customer_contact", "support_engineer", "escalation_engineer", "developer",
                  "sales", "consultant", "manager", "watcher"]
    email: str | None = Field(default=None, max_length=320)


class CaseIn(BaseModel):
    model_config = _FORBID
    title: str = Field(min_length=1, max_length=500)
    product: str = Field(min_length=1, max_length=200)
    version: str = Field(min_length=1, max_length=100)
    org: str | None = Field(default=None, min_length=1, max_length=200)
    severity: Literal["S1", "S2", "S3", "S4"]
    intake: dict[str, Any] = Field(default_factory=dict)
    team: str | None = Field(default=None, max_length=200)
    sla_policy: str = Field(default="default", max_length=100)
    calendar: str | None = Field(default=None, max_length=100)
    links: list[str] = Field(default_factory=list, max_length=100)
    participants: list[ParticipantIn] = Field(default_factory=list, max_length=100)


class CaseUpdateIn(BaseModel):
    model_config = _FORBID
    title: str | None = Field(default=None, min_length=1, max_length=500)
    severity: Literal["S1", "S2", "S3", "S4"] | None = None
    version: str | None = Field(default=None, min_length=1, max_length=100)
    team: str | None = Field(default=None, max_length=200)
    sla_policy: str | None = Field(default=None, max_length=100)
    calendar: str | None = Field(default=None, max_length=100)
    intake: dict[str, Any] | None = None
    row_version: Version | None = None


class StatusIn(BaseModel):
    model_config = _FORBID
    status: str = Field(min_length=1, max_length=32)
    reason: str | None = Field(default=None, max_length=2000)
    row_version: Version | None = None


class AssignIn(BaseModel):
    model_config = _FORBID
    owner: str = Field(min_length=1, max_length=200)
    co_owners: list[str] | None = Field(default=None, max_length=20)
    row_version: Version | None = None


class LinkIn(BaseModel):
    model_config = _FORBID
    other: str = Field(min_length=1, max_length=32)
    kind: Literal["related", "duplicate", "caused_by", "blocks"] = "related"


class NoteIn(BaseModel):
    model_config = _FORBID
    body: str = Field(min_length=1, max_length=100_000)
    visibility: Literal["internal", "public"] = "internal"


class NoteEditIn(BaseModel):
    model_config = _FORBID
    body: str = Field(min_length=1, max_length=100_000)
    visibility: Literal["internal", "public"] | None = None
    revisions: Version | None = None


class BugIn(BaseModel):
    model_config = _FORBID
    title: str | None = Field(default=None, max_length=500)
    root_cause: str | None = Field(default=None, max_length=50_000)
    suggested_fix: str | None = Field(default=None, max_length=50_000)


class BugEditIn(BaseModel):
    model_config = _FORBID
    title: str | None = Field(default=None, min_length=1, max_length=500)
    fields: dict[str, Any] | None = None
    tracker: Literal["jira", "github", "other"] | None = None
    external_key: str | None = Field(default=None, max_length=100)
    external_url: str | None = Field(default=None, max_length=1000)
    external_status: str | None = Field(default=None, max_length=100)
    row_version: Version | None = None


class HotfixIn(BaseModel):
    model_config = _FORBID
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    bug_ids: list[DbId] = Field(default_factory=list, max_length=100)
    build: str = Field(min_length=1, max_length=200)
    affected_versions: list[str] = Field(default_factory=list, max_length=100)
    fixed_versions: list[str] = Field(default_factory=list, max_length=100)
    delivered_to: list[str] = Field(default_factory=list, max_length=1000)   # case keys


class DeliveryIn(BaseModel):
    model_config = _FORBID
    case: str = Field(min_length=1, max_length=32)


class VerificationIn(BaseModel):
    model_config = _FORBID
    verification: Literal["pending", "verified", "failed"]


class SimilarTextIn(BaseModel):
    """An escalation being written (intake): find cases like it before it is submitted."""
    model_config = _FORBID
    text: str = Field(default="", max_length=100_000)
    title: str | None = Field(default=None, max_length=500)
    product: str | None = Field(default=None, max_length=200)
    intake: dict[str, Any] = Field(default_factory=dict)
    limit: int = Field(default=5, ge=1, le=100)
