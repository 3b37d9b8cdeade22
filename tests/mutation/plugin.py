"""A pytest plugin that runs the tests against one mutated module.

Loaded with `-p tests.mutation.plugin` by tests/mutation/code_mutants.py, it
serves the module named by TRACTION_MUTANT_MODULE from the file named by
TRACTION_MUTANT_SOURCE instead of the package's own file. `-p` plugins are
imported before any conftest or test module, so no test sees the original.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec

MODULE = os.environ.get("TRACTION_MUTANT_MODULE")
SOURCE = os.environ.get("TRACTION_MUTANT_SOURCE")


class MutantFinder(MetaPathFinder):
    """Finds the mutated module in its file; leaves every other module alone."""

    def find_spec(self, fullname: str, path: object = None,
                  target: object = None) -> ModuleSpec | None:
        if fullname != MODULE:
            return None
        return importlib.util.spec_from_file_location(fullname, SOURCE)


if MODULE and SOURCE:
    if MODULE in sys.modules:
        raise RuntimeError(f"{MODULE} was imported before the mutant could replace it")
    sys.meta_path.insert(0, MutantFinder())
