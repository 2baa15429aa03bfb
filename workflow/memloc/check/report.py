"""Findings of a check, their three levels, and the printed report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

ERROR, STALE, WARNING = "error", "stale", "warning"


@dataclass
class Finding:
    level: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.level.upper():7s} {self.path}: {self.message}"


@dataclass
class Report:
    results: Path
    findings: list[Finding] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    without_provenance: list[str] = field(default_factory=list)

    def add(self, level: str, path: str, message: str) -> None:
        self.findings.append(Finding(level, path, message))

    def count(self, level: str) -> int:
        return sum(f.level == level for f in self.findings)

    @property
    def ok(self) -> bool:
        return not (self.count(ERROR) or self.count(STALE))


def format_report(report: Report, verbose: bool = False) -> str:
    lines = [f"memloc check of {report.results}"]
    lines += [str(f) for f in report.findings]
    if report.without_provenance:
        lines.append(
            f"note: {len(report.without_provenance)} of {len(report.checked)} tables record no provenance "
            "(config hash, memloc version, input digests), so they cannot be checked for staleness"
            + (": " + ", ".join(report.without_provenance) if verbose else " (--verbose lists them)")
        )
    lines.append(
        f"{len(report.checked)} tables checked: {report.count(ERROR)} error(s), {report.count(STALE)} stale, "
        f"{report.count(WARNING)} warning(s) -> {'OK' if report.ok else 'FAILED'}"
    )
    return "\n".join(lines)
