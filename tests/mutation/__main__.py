"""`make mutation`: how well the fast tests pin the rules and the metrics.

    python -m tests.mutation [--workers N] [--keep]

1. mutmut (configured in pyproject.toml, [tool.mutmut]) mutates
   domain/programme.py, projections/metrics.py and projections/summaries.py,
   one file at a time, and runs the in-memory tests against each mutant;
2. tests/mutation/ast_mutator.py mutates what mutmut cannot reach: the
   `@event` methods of Programme and domain/events.py (built at import);
3. every mutant that survives must be explained in tests/mutation/verdicts.py
   (equivalent: no test could tell it from the original), or be a change to
   the wording of an error's message only (counted apart, as wording is not
   pinned by tests);
4. MUTATION.md is written with the scores. The bar: at least 98 % of the
   mutants that are neither equivalent nor wording-only are killed, in each
   of programme.py (with events.py), metrics.py and summaries.py.

Exits 1 when a survivor is unexplained or a score is under the bar.
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import os
import shutil
import subprocess
import sys
import time
import tokenize
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tests.mutation import ast_mutator
from tests.mutation.verdicts import EQUIVALENT

ROOT = ast_mutator.ROOT
BAR = 0.98
#: Which file's score each mutated file counts towards.
GROUPS = {
    "domain/programme.py": "domain/programme.py (with domain/events.py)",
    "domain/events.py": "domain/programme.py (with domain/events.py)",
    "projections/metrics.py": "projections/metrics.py",
    "projections/summaries.py": "projections/summaries.py",
}


@dataclass(frozen=True)
class Verdict:
    path: str
    tool: str  # "mutmut" or "ast"
    key: str  # function: before -> after
    status: str  # killed, survived, timeout
    message: bool  # only an error message's wording changes

    @property
    def name(self) -> str:
        return f"{self.path}: {self.key}"


# ---- mutmut ---------------------------------------------------------------------------


def mutmut_files() -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]["only_mutate"]


def run_mutmut(path: str, workers: int) -> float:
    """Run mutmut on one file's mutants; returns the seconds it took."""
    module = path.removesuffix(".py").replace("/", ".")
    started = time.monotonic()
    log = ROOT / "mutants" / f"{module}.log"
    log.parent.mkdir(exist_ok=True)
    with log.open("w") as out:
        subprocess.run([str(Path(sys.executable).parent / "mutmut"), "run",
                        "--max-children", str(workers), f"{module}.*"],
                       cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, check=True)
    return time.monotonic() - started


def _message_lines(path: str) -> set[str]:
    """The source lines (stripped) that hold the text of an error's message."""
    source = (ROOT / path).read_text()
    lines = source.splitlines()
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef):
            for inner in ast.walk(node):
                if id(inner) in ast_mutator._message_nodes(node) and isinstance(
                    inner, ast.Constant | ast.JoinedStr
                ):
                    for number in range(inner.lineno, inner.end_lineno + 1):
                        found.add(lines[number - 1].strip())
    return found


def _without_strings(line: str) -> list[str]:
    """A line's tokens but its string literals (a line may be part of a statement)."""
    kept: list[str] = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(line.strip() + "\n").readline):
            if token.type != tokenize.STRING:
                kept.append(token.string)
    except (tokenize.TokenError, SyntaxError):
        pass  # the rest of the statement is on other lines
    return kept


def mutmut_verdicts(path: str) -> list[Verdict]:
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    from mutmut.stats import status_by_exit_code

    meta = json.loads((ROOT / "mutants" / f"{path}.meta").read_text())
    messages = _message_lines(path)
    verdicts = []
    for name, code in meta["exit_code_by_key"].items():
        status = status_by_exit_code[code]
        function = name.rsplit(".", 1)[1].split("__mutmut_")[0]
        function = function.removeprefix("x_").replace("xǁ", "").replace("ǁ", ".")
        removed: list[str] = []
        added: list[str] = []
        if status != "killed":
            diff = get_diff_for_mutant(name, path=path)
            for line in diff.splitlines():
                if line.startswith("-") and not line.startswith("---"):
                    removed.append(line[1:].strip())
                elif line.startswith("+") and not line.startswith("+++"):
                    added.append(line[1:].strip())
        message = bool(removed) and len(removed) == len(added) and all(
            old in messages and _without_strings(old) == _without_strings(new)
            for old, new in zip(removed, added, strict=True)
        )
        key = f"{function}: {' '.join(removed)}  ->  {' '.join(added)}"
        verdicts.append(Verdict(path, "mutmut", key, status, message))
    return verdicts


# ---- the report -----------------------------------------------------------------------


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()


def score(verdicts: list[Verdict]) -> tuple[int, int, int, int, int]:
    """(total, killed, equivalent, wording, unexplained) of some mutants."""
    killed = sum(v.status in ("killed", "timeout") for v in verdicts)
    survivors = [v for v in verdicts if v.status not in ("killed", "timeout")]
    wording = sum(v.message for v in survivors)
    equivalent = sum(not v.message and v.name in EQUIVALENT for v in survivors)
    unexplained = len(survivors) - wording - equivalent
    return len(verdicts), killed, equivalent, wording, unexplained


def percent(killed: int, total: int, equivalent: int, wording: int) -> float:
    counted = total - equivalent - wording
    return killed / counted if counted else 1.0


def write_report(verdicts: list[Verdict], seconds: dict[str, float], workers: int) -> bool:
    """Write MUTATION.md; True when every group meets the bar with nothing unexplained."""
    commit = git("rev-parse", "--short", "HEAD")
    if git("status", "--porcelain", "--untracked-files=no"):
        commit += " (with uncommitted changes)"
    out = [
        "# Mutation testing",
        "",
        "How well the fast tests pin the rules and the metrics: each mutant is a small",
        "change to the code (a number, a comparison, an operator, a key, a deleted",
        "statement); a test that fails kills it. Written by `make mutation`",
        "(tests/mutation/, README: Contributing); not part of every CI run.",
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d}, commit {commit}",
        f"- machine: {os.cpu_count()} cores, {workers} mutants at a time",
        "- tools: mutmut for ordinary functions; tests/mutation/ast_mutator.py for the",
        "  `@event` methods (mutmut skips decorated functions) and domain/events.py (its",
        "  catalogue is built at import, before mutmut could switch a mutant on)",
        "- tests: the in-memory ones (`[tool.mutmut]` in pyproject.toml): tests/domain,",
        "  tests/projections/test_metrics.py, test_programme_summary.py, test_properties.py",
        "  (the `@event` methods and events.py: tests/domain)",
        "- time: " + ", ".join(f"{part} {s / 60:.1f} min" for part, s in seconds.items()),
        "",
        "A time-out counts as killed. *Equivalent*: no test could tell the mutant from the",
        "original (the reason is given). *Wording*: only the text of an error's message",
        "changes; messages are checked to be there, not word for word.",
        "",
        "| file | tool | mutants | killed | equivalent | wording | unexplained | score |",
        "|---|---|---|---|---|---|---|---|",
    ]
    ok = True
    for group in dict.fromkeys(GROUPS.values()):
        members = [v for v in verdicts if GROUPS[v.path] == group]
        for path in dict.fromkeys(v.path for v in members):
            for tool in ("mutmut", "ast"):
                part = [v for v in members if v.path == path and v.tool == tool]
                if part:
                    total, killed, equivalent, wording, unexplained = score(part)
                    out.append(f"| {path} | {tool} | {total} | {killed} | {equivalent} | "
                               f"{wording} | {unexplained} | "
                               f"{percent(killed, total, equivalent, wording):.1%} |")
        total, killed, equivalent, wording, unexplained = score(members)
        value = percent(killed, total, equivalent, wording)
        ok = ok and value >= BAR and unexplained == 0
        out.append(f"| **{group}** | | **{total}** | **{killed}** | **{equivalent}** | "
                   f"**{wording}** | **{unexplained}** | **{value:.1%}** |")
    out += ["", f"The bar: {BAR:.0%} in each bold row, and no unexplained survivor.", ""]

    survivors = [v for v in verdicts if v.status not in ("killed", "timeout")]
    out += ["## Surviving mutants", ""]
    for title, chosen, reason in (
        ("Unexplained (a test is missing, or a verdict in tests/mutation/verdicts.py)",
         [v for v in survivors if not v.message and v.name not in EQUIVALENT], None),
        ("Equivalent", [v for v in survivors if not v.message and v.name in EQUIVALENT],
         EQUIVALENT),
        ("Wording of an error message only", [v for v in survivors if v.message], None),
    ):
        out += [f"### {title}: {len(chosen)}", ""]
        for v in chosen:
            line = f"- `{v.path}` ({v.tool}) `{v.key}`"
            if reason is not None:
                line += f" — {reason[v.name]}"
            out.append(line)
        out.append("")
    stale = sorted(set(EQUIVALENT) - {v.name for v in survivors})
    if stale:
        out += ["### Verdicts that no longer match a survivor (remove them)", ""]
        out += [f"- `{name}`" for name in stale] + [""]
    (ROOT / "MUTATION.md").write_text("\n".join(out))
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2,
                        help="mutants tested at a time (default 2: the machine is shared)")
    parser.add_argument("--keep", action="store_true",
                        help="keep mutmut's earlier results in mutants/ (default: start afresh)")
    args = parser.parse_args()
    if not args.keep:
        shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    seconds: dict[str, float] = {}
    verdicts: list[Verdict] = []
    for path in mutmut_files():
        print(f"mutmut: {path}", flush=True)
        seconds[f"mutmut {path}"] = run_mutmut(path, args.workers)
        verdicts += mutmut_verdicts(path)
    started = time.monotonic()
    outcomes = ast_mutator.run(workers=args.workers,
                               progress=lambda text: print(f"ast: {text}", flush=True))
    seconds["ast mutants"] = time.monotonic() - started
    for path, results in outcomes.items():
        verdicts += [Verdict(path, "ast", o.mutant.key, o.status, o.mutant.message)
                     for o in results]
    ok = write_report(verdicts, seconds, args.workers)
    print((ROOT / "MUTATION.md").read_text())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
