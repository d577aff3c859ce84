"""`jobql schema-check`: is the current schema compatible with a baseline?

The changes come from graphql-core (`find_schema_changes`, the one pass behind its
`find_breaking_changes` / `find_dangerous_changes`, which also classifies the safe ones). A breaking
change fails the check unless the acknowledgements file names it, with a reason.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from graphql import GraphQLError, GraphQLSchema, build_schema
from graphql.utilities.find_schema_changes import (
    BreakingChangeType,
    DangerousChangeType,
    SchemaChange,
    find_schema_changes,
)

BASELINE_FILE = "schema.baseline.graphql"
ACKNOWLEDGED_FILE = "schema.acknowledged.toml"
SCHEMA_FILE = "schema.graphql"
GIT_TIMEOUT_S = 30

# A schema coordinate as graphql-core writes it in its descriptions: `Type`, `Type.field`,
# `Type.field(arg:)`, `@directive`, `@directive(arg:)`.
_COORDINATE = re.compile(r"@?[_A-Za-z]\w*(?:\.[_A-Za-z]\w*)?(?:\([_A-Za-z]\w*:\))?")


class SchemaCheckError(Exception):
    """A baseline or acknowledgements file the check cannot use (exit code 2)."""


@dataclass(frozen=True, slots=True)
class Change:
    kind: str  # graphql-core's change type name, e.g. FIELD_REMOVED
    coordinate: str  # what changed, e.g. Instance.status
    description: str

    @property
    def key(self) -> str:
        """How an acknowledgement names this change: `FIELD_REMOVED Instance.status`."""
        return f"{self.kind} {self.coordinate}"

    def key_line(self) -> str:
        return f"{self.key}: {self.description}"


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    change: str
    reason: str


@dataclass(slots=True)
class Report:
    baseline: str
    breaking: list[Change] = field(default_factory=list)
    acknowledged: list[tuple[Change, Acknowledgement]] = field(default_factory=list)
    dangerous: list[Change] = field(default_factory=list)
    safe: list[Change] = field(default_factory=list)
    unused: list[Acknowledgement] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaking

    def lines(self, acknowledgements_file: str) -> list[str]:
        out = [f"schema-check: the current schema against {self.baseline}"]
        out += _group("Breaking changes (fail the check)", [c.key_line() for c in self.breaking])
        out += _group(
            "Acknowledged breaking changes",
            [f"{c.key_line()}\n      reason: {ack.reason}" for c, ack in self.acknowledged],
        )
        out += _group("Dangerous changes", [c.key_line() for c in self.dangerous])
        out += _group("Safe changes", [c.key_line() for c in self.safe])
        out += _group(
            f"Acknowledgements in {acknowledgements_file} that match no change (stale)",
            [ack.change for ack in self.unused],
        )
        counts = (
            f"{len(self.breaking)} breaking, {len(self.acknowledged)} acknowledged, "
            f"{len(self.dangerous)} dangerous, {len(self.safe)} safe"
        )
        if self.ok:
            out.append(f"OK: {counts}")
        else:
            out.append(
                f"FAIL: {counts}. Restore what was removed or changed, or acknowledge each "
                f"breaking change in {acknowledgements_file} (change = the line's first two "
                "words, plus a reason)."
            )
        return out


def _group(title: str, items: list[str]) -> list[str]:
    if not items:
        return []
    return [f"{title} ({len(items)}):", *(f"  {item}" for item in items)]


def coordinate_of(description: str) -> str:
    """The schema coordinate a graphql-core change description is about."""
    words = description.rstrip(".").split()
    for word in words:
        if ("." in word or "@" in word or "(" in word) and (match := _COORDINATE.fullmatch(word)):
            return match.group(0)
    # Type-level changes name the type first ("Job was removed.", "Standard scalar Int was ...").
    for word in words:
        if word not in {"Standard", "scalar", "Description", "of"} and _COORDINATE.fullmatch(word):
            return word
    return description


def classify(changes: list[SchemaChange]) -> tuple[list[Change], list[Change], list[Change]]:
    breaking, dangerous, safe = [], [], []
    for change in changes:
        item = Change(change.type.name, coordinate_of(change.description), change.description)
        if isinstance(change.type, BreakingChangeType):
            breaking.append(item)
        elif isinstance(change.type, DangerousChangeType):
            dangerous.append(item)
        else:
            safe.append(item)
    return breaking, dangerous, safe


def parse_sdl(text: str, source: str) -> GraphQLSchema:
    try:
        return build_schema(text)
    except (GraphQLError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SchemaCheckError(f"{source} is not a valid GraphQL schema: {first}") from None


def read_baseline(against: str | None, root: Path) -> tuple[str, str]:
    """(label, SDL) of the baseline: the default file, a file, or schema.graphql at a git ref."""
    if against is None:
        path = root / BASELINE_FILE
        if not path.is_file():
            raise SchemaCheckError(
                f"{path} is missing: create it with `jobql export-schema -o {BASELINE_FILE}`"
            )
        return str(path), _read(path)
    path = Path(against)
    if not path.is_absolute():
        path = root / path
    if path.is_file():
        return str(path), _read(path)
    if path.exists():
        raise SchemaCheckError(f"--against {against}: not a file")
    return f"{SCHEMA_FILE} at git ref {against}", _git_show(against, root)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaCheckError(f"cannot read {path}: {exc}") from None


def _git_show(ref: str, root: Path) -> str:
    if ref.startswith("-") or not ref.strip():
        raise SchemaCheckError(f"--against {ref!r}: no such file, and not a git ref")
    try:
        shown = subprocess.run(
            ["git", "show", f"{ref}:{SCHEMA_FILE}"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SchemaCheckError(f"--against {ref}: cannot run git: {exc}") from None
    if shown.returncode != 0:
        reason = (shown.stderr.strip().splitlines() or ["git show failed"])[0]
        raise SchemaCheckError(
            f"--against {ref}: no such file, and not a git ref holding {SCHEMA_FILE} ({reason})"
        )
    return shown.stdout


def read_acknowledgements(path: Path, *, required: bool) -> list[Acknowledgement]:
    """`[[breaking]]` tables with `change = "FIELD_REMOVED Instance.status"` and a `reason`."""
    if not path.is_file():
        if required:
            raise SchemaCheckError(f"acknowledgements file {path} is missing")
        return []
    try:
        data = tomllib.loads(_read(path))
    except tomllib.TOMLDecodeError as exc:
        raise SchemaCheckError(f"{path} is not valid TOML: {exc}") from None
    unknown = set(data) - {"breaking"}
    if unknown:
        raise SchemaCheckError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}")
    entries = data.get("breaking", [])
    if not isinstance(entries, list):
        raise SchemaCheckError(f"{path}: `breaking` must be an array of tables ([[breaking]])")
    acknowledgements = []
    for number, entry in enumerate(entries, 1):
        where = f"{path}: [[breaking]] #{number}"
        if not isinstance(entry, dict) or set(entry) - {"change", "reason"}:
            raise SchemaCheckError(f"{where} takes exactly `change` and `reason`")
        change, reason = entry.get("change"), entry.get("reason")
        if not isinstance(change, str) or len(change.split()) != 2:
            raise SchemaCheckError(
                f'{where}: `change` must name one change, e.g. "FIELD_REMOVED Instance.status"'
            )
        if not isinstance(reason, str) or not reason.strip():
            raise SchemaCheckError(f"{where}: `reason` must say why the break is acceptable")
        acknowledgements.append(Acknowledgement(" ".join(change.split()), reason.strip()))
    return acknowledgements


def check(
    current: GraphQLSchema,
    baseline: GraphQLSchema,
    baseline_label: str,
    acknowledgements: list[Acknowledgement],
) -> Report:
    breaking, dangerous, safe = classify(find_schema_changes(baseline, current))
    by_key = {ack.change: ack for ack in acknowledgements}
    report = Report(baseline_label, dangerous=dangerous, safe=safe)
    used: set[str] = set()
    for change in breaking:
        ack = by_key.get(change.key)
        if ack is None:
            report.breaking.append(change)
        else:
            report.acknowledged.append((change, ack))
            used.add(change.key)
    report.unused = [ack for ack in acknowledgements if ack.change not in used]
    return report
