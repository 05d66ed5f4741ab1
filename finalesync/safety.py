"""The data checks every sync passes before anything is applied, forced or not.

Refused outright (nothing a person can confirm): no rows at all (EmptyData), too many unreadable rows
(MalformedData). Refused as suspicious until a person confirms this one run (`runsync TYPE --confirm`, or the
dashboard's review page): a drop of more rows than the type's `max_drop_ratio`; a drop of more than
SYNC_UNVERIFIED_MAX_DROP_RATIO when the transfer's end could not be verified (a body that simply ended when the
connection closed may be cut short at a line break); values changed in more than `max_change_ratio` of the
rows; a column emptied in more than `max_emptied_ratio` of the rows that have it, when most rows have it.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from .errors import EmptyData, MalformedData, SuspiciousChange, SuspiciousDrop
from .staging import Diff

# Below this many live rows a share is too coarse to call anything "far more than usual".
MIN_ROWS_FOR_CHANGE_CHECKS = 10


@dataclass(frozen=True)
class Confirmation:
    """A person's acceptance of a suspicious sync, for one run. From the command line (`--confirm`) it
    accepts whatever the checks find; from the review page it accepts at most what the person was shown."""

    by: str
    max_deleted: int | None = None
    max_updated: int | None = None
    emptied: frozenset[str] | None = None

    def covers(self, diff: Diff) -> bool:
        if self.max_deleted is not None and diff.deleted > self.max_deleted:
            return False
        if self.max_updated is not None and diff.updated > self.max_updated:
            return False
        return self.emptied is None or set(diff.emptied) <= self.emptied

    @classmethod
    def from_evidence(cls, evidence: dict, *, by: str, slack: float = 0.05) -> Confirmation:
        """What a review page showed, with a little room for rows that changed in Finale since."""

        def bound(n):
            return int(n + max(3, n * slack))

        return cls(
            by=by,
            max_deleted=bound(evidence.get("deleted", 0)),
            max_updated=bound(evidence.get("updated", 0)),
            emptied=frozenset(evidence.get("emptied", {})),
        )


def check_readable(*, label: str, good: int, bad: int, examples: list[dict]) -> None:
    """Refuse data with no rows, or with more unreadable rows than SYNC_MAX_BAD_ROW_RATIO."""
    total = good + bad
    limit = settings.SYNC_MAX_BAD_ROW_RATIO
    if total and bad / total > limit:
        raise MalformedData(
            f"{bad:,} of {total:,} {label} rows could not be read (more than {limit:.0%}); first: "
            + "; ".join(f"line {b['line']}: {b['reason']}" for b in examples[:3]),
            details={"bad_rows": bad, "rows": total, "examples": examples},
        )
    if good == 0:
        raise EmptyData(f"Finale returned no {label} rows (header only or nothing usable)")


def check_changes(
    *, label: str, config, diff: Diff, end_verified: bool | None, confirmation: Confirmation | None
):
    """Raise SuspiciousDrop or SuspiciousChange (with the evidence in `details`) unless the diff is ordinary
    or a person confirmed it. Returns the list of findings a confirmation accepted (empty when ordinary)."""
    findings = findings_for(config=config, diff=diff, end_verified=end_verified)
    if not findings:
        return []
    if confirmation is not None and confirmation.covers(diff):
        return findings
    kind = SuspiciousDrop if any(f.startswith("drop") for f in findings) else SuspiciousChange
    summary = "; ".join(findings)
    raise kind(
        f"{label} sync refused as suspicious: {summary}. Nothing was applied",
        details={**diff.as_dict(), "findings": findings, "end_verified": end_verified},
    )


def findings_for(*, config, diff: Diff, end_verified: bool | None) -> list[str]:
    """What is suspicious about applying `diff` to a type configured as `config`, as sentences."""
    live = diff.live_rows
    found = []
    if live and diff.deleted:
        drop = diff.deleted / live
        if drop > config.max_drop_ratio:
            found.append(
                f"drop from {live:,} to {diff.rows_after:,} rows ({drop:.0%}; the limit is "
                f"{config.max_drop_ratio:.0%}), e.g. {', '.join(diff.samples.get('deleted', []))}"
            )
        elif end_verified is False and drop > settings.SYNC_UNVERIFIED_MAX_DROP_RATIO:
            found.append(
                f"drop of {diff.deleted:,} rows ({drop:.1%}) from a transfer whose end could not be verified "
                f"(no Content-Length, no chunking: it may have been cut at a line break; the limit for such a "
                f"transfer is {settings.SYNC_UNVERIFIED_MAX_DROP_RATIO:.0%})"
            )
    if live >= MIN_ROWS_FOR_CHANGE_CHECKS:
        if diff.updated / live > config.max_change_ratio:
            found.append(
                f"change of {diff.updated:,} of {live:,} rows ({diff.updated / live:.0%}; the limit is "
                f"{config.max_change_ratio:.0%}), e.g. {', '.join(diff.samples.get('updated', []))}"
            )
        for column, emptied in diff.emptied.items():
            filled = diff.filled.get(column, 0)
            if filled > live / 2 and emptied / filled > config.max_emptied_ratio:
                found.append(
                    f"column {column} would be emptied in {emptied:,} of the {filled:,} rows that have it "
                    f"({emptied / filled:.0%}; the limit is {config.max_emptied_ratio:.0%}), e.g. "
                    f"{', '.join(diff.samples.get(f'emptied {column}', []))}"
                )
    return found
