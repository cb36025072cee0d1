"""One line per figure: name, measured value (the median of the runs), target, verdict.

A bench measures `runs` times and hands each run's values to a `Sheet`; `Sheet.figure` takes the median and
prints the line at once. Verdicts: PASS / MISS against a target, INFO for a figure shown without a target
(scaling points, context), ERROR when a run could not measure it (that fails `make bench` like a MISS).
"""

from __future__ import annotations

import math
import statistics
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

Op = Literal["<=", ">=", "within"]
Verdict = Literal["PASS", "MISS", "INFO", "ERROR"]


@dataclass(frozen=True)
class Target:
    op: Op
    bound: float
    tolerance: float = 0.0  # "within": bound * (1 +- tolerance)

    def met(self, value: float) -> bool:
        if self.op == "within":
            return abs(value - self.bound) <= self.bound * self.tolerance
        return value <= self.bound if self.op == "<=" else value >= self.bound

    def show(self, unit: str) -> str:
        if self.op == "within":
            return f"{_num(self.bound)} {unit} +-{self.tolerance:.0%}"
        return f"{self.op} {_num(self.bound)} {unit}".rstrip()


def at_most(bound: float) -> Target:
    return Target("<=", bound)


def at_least(bound: float) -> Target:
    return Target(">=", bound)


def within(bound: float, tolerance: float) -> Target:
    return Target("within", bound, tolerance)


@dataclass(frozen=True)
class Figure:
    name: str
    value: float | None
    unit: str
    target: Target | None
    verdict: Verdict
    note: str = ""

    def line(self) -> str:
        value = "-" if self.value is None else f"{_num(self.value)} {self.unit}".rstrip()
        target = "-" if self.target is None else self.target.show(self.unit)
        note = f"  ({self.note})" if self.note else ""
        return f"{self.name:<48} {value:>18}   target {target:<20} {self.verdict}{note}"


def _num(value: float) -> str:
    if math.isinf(value):
        return "inf"
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 0.1:
        return f"{value:.2f}"
    return f"{value:.3f}"


@dataclass
class Runs:
    """The values of each named quantity over the runs, and why a run could not measure some."""

    values: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        self.values.setdefault(name, []).append(value)

    def fail(self, names: Sequence[str], error: BaseException) -> None:
        message = f"{type(error).__name__}: {error}".splitlines()[0][:160]
        for name in names:
            self.errors.setdefault(name, message)

    def shown(self, name: str, unit: str, digits: int = 0) -> str:
        """The median of `name` over the runs, with its unit, for a figure's note ("?" when no run measured it)."""
        values = self.values.get(name)
        return f"{statistics.median(values):.{digits}f} {unit}" if values else "?"

    @contextmanager
    def measuring(self, *names: str) -> Iterator[None]:
        """Run a section: an exception marks `names` as not measured (with the reason) and is not re-raised."""
        try:
            yield
        except Exception as error:
            traceback.print_exc(file=sys.stderr)
            self.fail(names, error)


class Sheet:
    """Prints figures as they are settled and remembers whether any missed or failed."""

    def __init__(self) -> None:
        self.figures: list[Figure] = []

    def section(self, title: str) -> None:
        print(f"\n== {title}", flush=True)

    def note(self, text: str) -> None:
        print(f"   {text}", flush=True)

    def figure(
        self,
        name: str,
        runs: Runs,
        key: str,
        unit: str,
        target: Target | None,
        *,
        show: Callable[[float], str] = _num,
        note: str = "",
    ) -> Figure:
        """The median over the runs of `key`; ERROR if any run failed to measure it."""
        values = runs.values.get(key, [])
        if key in runs.errors or not values:
            figure = Figure(name, None, unit, target, "ERROR", runs.errors.get(key, "not measured"))
        else:
            value = statistics.median(values)
            verdict: Verdict = "INFO" if target is None else ("PASS" if target.met(value) else "MISS")
            detail = "runs: " + " ".join(show(v) for v in values)
            figure = Figure(name, value, unit, target, verdict, f"{detail}; {note}" if note else detail)
        return self.add(figure)

    def error(self, name: str, reason: str) -> Figure:
        return self.add(Figure(name, None, "", None, "ERROR", reason))

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        print(figure.line(), flush=True)
        return figure

    @property
    def failed(self) -> list[Figure]:
        return [f for f in self.figures if f.verdict in ("MISS", "ERROR")]

    def summary(self) -> str:
        counts = {v: sum(1 for f in self.figures if f.verdict == v) for v in ("PASS", "MISS", "INFO", "ERROR")}
        return ", ".join(f"{n} {v}" for v, n in counts.items())


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), nearest rank: an honest tail, never interpolated below a real sample."""
    if not values:
        return math.inf
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]
