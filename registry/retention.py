"""Retention: which versions a policy or a TTL retires, and retiring them.

A policy is per artifact (``.../artifacts/<name>/retention.json``) or per project
(``projects/<p>/retention.json``; an artifact's own policy replaces it): keep the newest N,
keep anything a user alias points at, delete what is older than D. A version's ``ttl``
(``artifact.ttl``) retires it once it is that old, policy or not. Versions the registry
links always stay. ``plan`` decides; ``apply`` deletes exactly what ``plan`` lists (a dry
run is ``plan`` alone), each deletion in the audit log as ``retention.delete`` or ``ttl.delete``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from backends import Backend

from . import audit_log, keys
from .errors import ConflictError, NotFoundError
from .lifecycle import (
    DeleteReason,
    annotated_numbers,
    delete_version,
    live_links,
    live_version_numbers,
    read_annotations,
    require_online,
)
from .mutable import read_doc, update_doc
from .records import RetentionPolicy, VersionRecord, now
from .store import Store
from .versions import aliases_of, read_version


@dataclass(frozen=True)
class Retired:
    """A version a policy or TTL retires, and why."""

    record: VersionRecord
    reason: DeleteReason
    rule: str
    aliases: tuple[str, ...] = ()

    @property
    def address(self) -> str:
        return f"{self.record.project}/{self.record.name}:v{self.record.version}"


@dataclass
class RetentionReport:
    retired: list[Retired] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)
    """(address, why) of versions a rule named but that stay: aliased or linked."""
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(address, error) of versions that changed between the plan and their deletion."""
    dry_run: bool = False


# -- policies ------------------------------------------------------------------------------------
def policy_key(project: str, name: str | None) -> str:
    return keys.project_retention(project) if name is None else keys.artifact_retention(project, name)


def read_policy(backend: Backend, project: str, name: str | None = None) -> RetentionPolicy | None:
    """The policy of an artifact (its own, else its project's), or of a project when ``name`` is None."""
    if name is not None:
        own = read_doc(backend, policy_key(project, name), RetentionPolicy)
        if own is not None:
            return own[0]
    found = read_doc(backend, policy_key(project, None), RetentionPolicy)
    return found[0] if found else None


def set_policy(store: Store, project: str, name: str | None, *, keep_last: int | None = None,
               keep_aliased: bool = True, older_than: timedelta | None = None) -> RetentionPolicy:
    """Set (replace) the policy of an artifact, or of a project when ``name`` is None."""
    require_online(store, "setting a retention policy")
    store.check_writable()
    seconds = int(older_than.total_seconds()) if older_than else None
    wanted = RetentionPolicy(keep_last=keep_last, keep_aliased=keep_aliased, updated_at=now(),
                             delete_older_than_seconds=seconds)
    _, after = update_doc(store.backend, policy_key(project, name), RetentionPolicy, lambda _current: wanted)
    subject = project if name is None else f"{project}/{name}"
    if name is not None:
        audit_log.record(store, [(project, name)], "retention.set", subject, after=describe(after))
    return after


def describe(policy: RetentionPolicy) -> str:
    parts = []
    if policy.keep_last is not None:
        parts.append(f"keep last {policy.keep_last}")
    if policy.delete_older_than_seconds is not None:
        parts.append(f"delete older than {timedelta(seconds=policy.delete_older_than_seconds)}")
    parts.append("keep aliased" if policy.keep_aliased else "aliased too")
    return ", ".join(parts)


# -- plan and apply --------------------------------------------------------------------------------
def plan(store: Store, projects: list[str] | None = None, at: datetime | None = None) -> RetentionReport:
    """What retention would delete now (nothing is changed)."""
    backend = store.backend
    moment = at or datetime.now(timezone.utc)
    report = RetentionReport(dry_run=True)
    for project in projects or backend.list_children(keys.projects_prefix()):
        project_policy = read_policy(backend, project)  # read once, not once per artifact
        for name in backend.list_children(keys.artifacts_prefix(project)):
            own = read_doc(backend, policy_key(project, name), RetentionPolicy)
            _plan_artifact(backend, project, name, own[0] if own else project_policy, moment, report)
    return report


def _plan_artifact(backend: Backend, project: str, name: str, policy: RetentionPolicy | None,
                   moment: datetime, report: RetentionReport) -> None:
    live = live_version_numbers(backend, project, name)
    named: dict[int, tuple[DeleteReason, str]] = {}
    if policy is not None:
        for number, rule in _by_policy(backend, project, name, live, policy, moment).items():
            named[number] = ("retention", rule)
    for number in set(annotated_numbers(backend, project, name)) & set(live):
        record = read_version(backend, project, name, number)
        ttl = read_annotations(backend, record).ttl_seconds
        if ttl and record.created_at + timedelta(seconds=ttl) <= moment and number not in named:
            named[number] = ("ttl", f"ttl {timedelta(seconds=ttl)} expired")
    if not named:
        return
    aliases = aliases_of(backend, project, name)
    keep_aliased = policy.keep_aliased if policy is not None else True
    for number in sorted(named):
        record = read_version(backend, project, name, number)
        user_aliases = tuple(a for a in aliases.get(number, []) if a != "latest")
        address = f"{project}/{name}:v{number}"
        if record.source is None and live_links(backend, record):
            report.kept.append((address, "linked into the registry"))
        elif user_aliases and (keep_aliased or named[number][0] == "ttl"):
            report.kept.append((address, f"aliased ({', '.join(user_aliases)})"))
        else:
            reason, rule = named[number]
            report.retired.append(Retired(record, reason, rule, user_aliases))


def _by_policy(backend: Backend, project: str, name: str, live: list[int], policy: RetentionPolicy,
               moment: datetime) -> dict[int, str]:
    """The live versions a policy names (before aliases and links are considered), with the rule."""
    kept = policy.keep_last
    candidates = live[: max(0, len(live) - kept)] if kept is not None else list(live)
    if policy.delete_older_than_seconds is None:
        if policy.keep_last is None:
            return {}
        return dict.fromkeys(candidates, f"beyond the last {policy.keep_last}")
    limit = timedelta(seconds=policy.delete_older_than_seconds)
    rule = f"older than {limit}"
    if policy.keep_last is not None:
        rule += f", beyond the last {policy.keep_last}"
    return {n: rule for n in candidates
            if read_version(backend, project, name, n).created_at + limit <= moment}


def apply(store: Store, projects: list[str] | None = None, dry_run: bool = False,
          at: datetime | None = None) -> RetentionReport:
    """Delete what ``plan`` lists (with ``dry_run``, only list it)."""
    report = plan(store, projects, at)
    report.dry_run = dry_run
    if dry_run:
        return report
    done = []
    for retired in report.retired:
        try:
            # aliases the plan saw go too (the policy said so); one set since is a reason to stop
            delete_version(store, retired.record, delete_aliases=bool(retired.aliases), reason=retired.reason)
            done.append(retired)
        except (ConflictError, NotFoundError) as e:  # aliased, linked or deleted since the plan
            report.skipped.append((retired.address, str(e)))
    report.retired = done
    return report
