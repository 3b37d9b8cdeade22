"""Mutants of the code mutmut cannot reach, each run against the fast tests.

mutmut puts a trampoline in front of every function it mutates and switches
mutants at call time. That cannot work for two kinds of our code:

- methods under a decorator, which mutmut skips: Programme's `@event`
  methods (the events, and how each changes the programme's state);
- code that runs when its module is imported, before any mutant is switched
  on: the catalogue of domain/events.py is built at import by its field
  constructors, so mutmut's mutants of them would all "survive" untested.

So this module makes those mutants itself, with Python's `ast`: the same
kinds of change as mutmut (numbers, strings, booleans, comparison, arithmetic
and boolean operators, `+=` into `=`, an assignment's value into None, a
call's argument into None or dropped, a returned value into None), plus the
deletion of a statement. Each mutant is a whole module file; a fresh pytest
process imports it in place of the original (tests/mutation/plugin.py) and
runs the domain's tests (tests/domain: the rules, the events, the catalogue,
in memory) with mutmut's options (pyproject.toml, [tool.mutmut]), stopping
at the first failure. A failure or an error kills the mutant; passing, it
survives.
"""

from __future__ import annotations

import ast
import copy
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Target:
    """The functions of one file this module mutates."""

    path: str  # relative to the repository, e.g. "domain/events.py"
    module: str  # its import name, e.g. "domain.events"
    #: Which functions: given the function and the names of its enclosing classes.
    selects: Callable[[ast.FunctionDef, tuple[str, ...]], bool]


def is_event_method(function: ast.FunctionDef, classes: tuple[str, ...]) -> bool:
    """A method of Programme decorated with `@event(...)`."""
    return classes == ("Programme",) and any(
        isinstance(d, ast.Call) and isinstance(d.func, ast.Name) and d.func.id == "event"
        for d in function.decorator_list
    )


def every_function(function: ast.FunctionDef, classes: tuple[str, ...]) -> bool:
    return True


TARGETS = (
    Target("domain/programme.py", "domain.programme", is_event_method),
    Target("domain/events.py", "domain.events", every_function),
)


@dataclass(frozen=True)
class Mutant:
    path: str
    module: str
    function: str  # e.g. "Programme._session_missed"
    line: int
    before: str  # the statement as written (unparsed)
    after: str  # the statement as mutated
    message: bool  # only the text of an error's message changes
    source: str  # the whole mutated module

    @property
    def key(self) -> str:
        """What names this mutant in tests/mutation/verdicts.py (stable across line moves)."""
        return f"{self.function}: {self.before}  ->  {self.after}"


@dataclass(frozen=True)
class Outcome:
    mutant: Mutant
    status: str  # "killed", "survived" or "timeout"


# ---- making mutants -----------------------------------------------------------------


def _changes(node: ast.AST) -> Iterator[ast.AST | None]:
    """The mutations of one node: replacements, or None to delete a statement."""
    if isinstance(node, ast.Constant) and not isinstance(node.value, type(None)):
        value = node.value
        if isinstance(value, bool):
            yield ast.Constant(not value)
        elif isinstance(value, int | float):
            yield ast.Constant(value + 1)
        elif isinstance(value, str):
            yield ast.Constant(f"XX{value}XX")
    elif isinstance(node, ast.Compare):
        swaps = {ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.LtE, ast.LtE: ast.Lt,
                 ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
                 ast.In: ast.NotIn, ast.NotIn: ast.In}
        for i, op in enumerate(node.ops):
            mutated = copy.deepcopy(node)
            mutated.ops[i] = swaps[type(op)]()
            yield mutated
    elif isinstance(node, ast.BinOp):
        swaps = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
                 ast.FloorDiv: ast.Div, ast.Mod: ast.Div, ast.BitOr: ast.BitAnd,
                 ast.BitAnd: ast.BitOr}
        if type(node.op) in swaps:
            yield ast.BinOp(node.left, swaps[type(node.op)](), node.right)
    elif isinstance(node, ast.BoolOp):
        yield ast.BoolOp(ast.Or() if isinstance(node.op, ast.And) else ast.And(), node.values)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield node.operand
    elif isinstance(node, ast.Call):
        for i in range(len(node.args)):
            for replacement in ([ast.Constant(None)], []):
                mutated = copy.deepcopy(node)
                mutated.args[i:i + 1] = replacement
                yield mutated
        for i in range(len(node.keywords)):
            mutated = copy.deepcopy(node)
            del mutated.keywords[i]
            yield mutated
    elif isinstance(node, ast.Return):
        if node.value is not None and not (
            isinstance(node.value, ast.Constant) and node.value.value is None
        ):
            yield ast.Return(ast.Constant(None))
    if isinstance(node, ast.AugAssign):
        yield ast.Assign([node.target], node.value, lineno=node.lineno)
        if isinstance(node.op, ast.Add):
            yield ast.AugAssign(node.target, ast.Sub(), node.value)
    if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
        mutated = copy.deepcopy(node)
        mutated.value = ast.Constant(None)
        yield mutated
    if isinstance(node, ast.Expr | ast.Assign | ast.AugAssign | ast.AnnAssign):
        yield None  # the statement deleted


def _mutable_nodes(function: ast.FunctionDef) -> list[ast.AST]:
    """The nodes of a function that may change: its body (not its docstring) and
    its parameters' defaults; never its decorators or annotations."""
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    roots: list[ast.AST] = [*function.args.defaults,
                            *(d for d in function.args.kw_defaults if d is not None), *body]
    nodes: list[ast.AST] = []

    def visit(node: ast.AST) -> None:
        nodes.append(node)
        for field, value in ast.iter_fields(node):
            if field in ("annotation", "returns"):
                continue  # types are not behaviour
            for child in value if isinstance(value, list) else [value]:
                if isinstance(child, ast.AST) and not isinstance(
                    child, ast.FunctionDef | ast.Lambda | ast.expr_context
                ):
                    visit(child)

    for root in roots:
        visit(root)
    return nodes


def _defaults(function: ast.FunctionDef) -> dict[int, str]:
    """The parameters' names by the ids of their default values."""
    args = function.args
    positional = [*args.posonlyargs, *args.args][-len(args.defaults):] if args.defaults else []
    named = {id(d): a.arg for a, d in zip(positional, args.defaults, strict=True)}
    named.update({id(d): a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)
                  if d is not None})
    return named


def _message_nodes(function: ast.FunctionDef) -> set[int]:
    """Ids of the nodes that only make an error's message: the first argument of
    an exception raised, or of `_check_not_paused(detail)`."""
    found: set[int] = set()
    for node in ast.walk(function):
        call = None
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            call = node.exc
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "_check_not_paused":
            call = node
        if call is not None and call.args:
            found.update(id(n) for n in ast.walk(call.args[0]))
    return found


def _functions(tree: ast.Module) -> Iterator[tuple[ast.FunctionDef, tuple[str, ...]]]:
    def visit(body: list[ast.stmt], classes: tuple[str, ...]) -> Iterator:
        for node in body:
            if isinstance(node, ast.ClassDef):
                yield from visit(node.body, (*classes, node.name))
            elif isinstance(node, ast.FunctionDef):
                yield node, classes
    yield from visit(tree.body, ())


def _statement_of(function: ast.FunctionDef, node: ast.AST) -> ast.AST:
    """The smallest statement (or parameter default) of `function` holding `node`."""
    best: ast.AST = node
    for candidate in ast.walk(function):
        if isinstance(candidate, ast.stmt) and candidate is not function and any(
            n is node for n in ast.walk(candidate)
        ):
            if not isinstance(candidate, ast.If | ast.For | ast.While | ast.With | ast.Try) \
                    or node is candidate:
                best = candidate
    return best


def _show(node: ast.AST) -> str:
    return " ".join(ast.unparse(node).split())


def _replace(tree: ast.AST, old: ast.AST, new: ast.AST | None) -> None:
    for parent in ast.walk(tree):
        for field, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, field, new)
                return
            if isinstance(value, list):
                for i, item in enumerate(value):
                    if item is old:
                        if new is None:
                            del value[i]
                            if not value and field in ("body", "orelse", "finalbody"):
                                value.append(ast.Pass())
                        else:
                            value[i] = new
                        return
    raise LookupError("node not found")


def mutants(target: Target) -> list[Mutant]:
    """Every mutant of the target's selected functions."""
    source = (ROOT / target.path).read_text()
    tree = ast.parse(source)
    made: list[Mutant] = []
    for f_index, (function, classes) in enumerate(_functions(tree)):
        if not target.selects(function, classes):
            continue
        name = ".".join((*classes, function.name))
        messages = _message_nodes(function)
        defaults = _defaults(function)
        for n_index, node in enumerate(_mutable_nodes(function)):
            for change in _changes(node):
                mutated_tree = copy.deepcopy(tree)
                mutated_function = list(_functions(mutated_tree))[f_index][0]
                twin = _mutable_nodes(mutated_function)[n_index]
                statement = _statement_of(function, node)
                before = _show(statement)
                _replace(mutated_tree, twin, change)
                if id(node) in defaults and change is not None:
                    parameter = defaults[id(node)]
                    before, after = f"{parameter}={before}", f"{parameter}={_show(change)}"
                elif change is None and statement is node:
                    after = "(deleted)"
                else:
                    twin_statement = _statement_of(mutated_function, change) \
                        if change is not None else None
                    after = _show(twin_statement) if twin_statement is not None else "(deleted)"
                if before == after:
                    continue  # e.g. a number whose change unparses the same: no mutant
                made.append(Mutant(
                    path=target.path, module=target.module, function=name,
                    line=getattr(node, "lineno", function.lineno), before=before, after=after,
                    message=id(node) in messages,
                    source=ast.unparse(ast.fix_missing_locations(mutated_tree)),
                ))
    return made


# ---- running them -------------------------------------------------------------------


#: The tests that pin the domain's code: its rules, events and catalogue, in memory;
#: the rules and the catalogue first, as they kill most mutants soonest (pytest
#: runs a test named twice once).
DOMAIN_TESTS = ("tests/domain/test_programme_rules.py", "tests/domain/test_event_catalogue.py",
                "tests/domain")


def pytest_command() -> list[str]:
    """The domain's tests with mutmut's options (pyproject.toml), stopping at the first
    failure."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    return [sys.executable, "-m", "pytest", "-x", "-q", "-p", "tests.mutation.plugin",
            *config["pytest_add_cli_args"], *DOMAIN_TESTS]


def run_tests(module: str, source: str, timeout: float) -> str:
    """Run the tests with `module` replaced by `source`: "killed", "survived" or "timeout"."""
    with tempfile.TemporaryDirectory(prefix="mutant-") as folder:
        path = Path(folder) / "mutant.py"
        path.write_text(source)
        env = {**os.environ, "TRACTION_MUTANT_MODULE": module,
               "TRACTION_MUTANT_SOURCE": str(path), "PYTHONDONTWRITEBYTECODE": "1"}
        try:
            done = subprocess.run(pytest_command(), cwd=ROOT, env=env, timeout=timeout,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return "timeout"
    return "survived" if done.returncode == 0 else "killed"


def run(targets: tuple[Target, ...] = TARGETS, workers: int = 2,
        progress: Callable[[str], None] = print) -> dict[str, list[Outcome]]:
    """Run every mutant of every target; outcomes by file."""
    outcomes: dict[str, list[Outcome]] = {}
    for target in targets:
        original = (ROOT / target.path).read_text()
        started = time.monotonic()
        # The machinery itself: the original, served the same way, must pass.
        if run_tests(target.module, original, timeout=600) != "survived":
            raise RuntimeError(f"the tests fail on the unmutated {target.path}")
        timeout = max(30.0, 10 * (time.monotonic() - started))
        made = mutants(target)
        progress(f"{target.path}: {len(made)} mutants of the code mutmut cannot reach")
        with ThreadPoolExecutor(max_workers=workers) as pool:
            statuses = list(pool.map(run_tests, [m.module for m in made], [m.source for m in made],
                                     [timeout] * len(made)))
        outcomes[target.path] = [Outcome(m, s) for m, s in zip(made, statuses, strict=True)]
        progress(f"{target.path}: done in {time.monotonic() - started:.0f} s")
    return outcomes
