"""pytest plugin (entry point ``pytest11``): every check of every spec file as a test item.

    pytest --gradtool specs/                 # the checks of the spec files under specs/
    pytest --gradtool specs/relu.yaml::relu  # one check, by its id
    pytest --gradtool                        # gradtool_specs of the ini file, else specs/

``--gradtool`` is a flag: paths are pytest's own arguments (so ``pytest --gradtool specs/``
runs the spec checks only, not the test suite too).  With the ini value ``gradtool_specs``
the spec files under those paths are collected in every run, beside the tests.  In a folder
pytest walks, a YAML file is a spec if it is a mapping with ``checks:``, ``functions:`` or
``version:`` (workflows and mkdocs.yml are left alone); a YAML file named on the command
line always is.

Each check is one item (``specs/basics.yaml::mean_of_squares``) whose failure report is
the checker's report; ``expect: fail`` checks are xfail (strict: an unexpected pass fails),
``skip: reason`` checks are skipped, spec tags become markers (``-m tag``).  A spec file
that cannot be loaded is a collection error.  Items share nothing: each builds its inputs
and modules from the spec when it runs, so any subset, in any order, gives the same
results.  Without the flag or the ini value the plugin does nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SUFFIXES = (".yaml", ".yml")


def pytest_addoption(parser) -> None:
    group = parser.getgroup("gradtool", "gradtool spec files")
    group.addoption("--gradtool", action="store_true", default=False,
                    help="collect the checks of gradtool spec files (*.yaml, *.yml with "
                         "checks:) among pytest's paths; without paths: the gradtool_specs "
                         "ini value, else specs/")
    group.addoption("--gradtool-no-python", action="store_true", default=False,
                    help="refuse 'python:' references in spec files")
    parser.addini("gradtool_specs", "spec files or folders whose checks pytest collects",
                  type="args", default=[])


def _ini_roots(config) -> list[Path]:
    """The ini value's paths, relative to the ini file's folder (as ``testpaths``)."""
    base = Path(config.inipath).parent if config.inipath else Path(config.rootpath)
    return [(base / p).resolve() for p in config.getini("gradtool_specs")]


def _paths_given(config) -> bool:
    """True when the command line named paths (or node ids) for pytest to collect."""
    source = getattr(config, "args_source", None)
    return source is not None and source == pytest.Config.ArgsSource.ARGS


def pytest_configure(config) -> None:
    flag = config.getoption("gradtool")
    ini = _ini_roots(config)
    config._gradtool = None
    if not flag and not ini:
        return
    named = {Path(str(a).split("::")[0]).resolve() for a in config.args} \
        if _paths_given(config) else set()
    # the flag alone: paths are pytest's arguments; without any, the ini value or specs/;
    # the ini value alone: its paths are collected beside the tests (as testpaths)
    roots = [] if flag else ini
    if not _paths_given(config):
        defaults = ini or [Path(config.invocation_params.dir, "specs").resolve()]
        if flag:
            config.args[:] = [str(p) for p in defaults]
        else:
            known = {str(Path(a).resolve()) for a in config.args}
            config.args.extend(str(p) for p in defaults if str(p) not in known)
    config._gradtool = _Collection(flag, roots, named)


class _Collection:
    """Which YAML files are spec files: with the flag, any YAML pytest reaches that is
    named or looks like a spec; with the ini value only, those under its paths."""

    def __init__(self, flag: bool, roots: list[Path], named: set[Path]) -> None:
        self.flag, self.roots, self.named = flag, roots, named

    def wants(self, path: Path) -> bool:
        from .runner import looks_like_spec
        resolved = path.resolve()
        if resolved in self.named:
            return True
        if not self.flag and not any(resolved == root or root in resolved.parents
                                     for root in self.roots):
            return False
        return looks_like_spec(path)


def pytest_collect_file(file_path: Path, parent):
    collection = getattr(parent.config, "_gradtool", None)
    if collection is None or file_path.suffix not in SUFFIXES:
        return None
    if not collection.wants(file_path):
        return None
    return SpecFile.from_parent(parent, path=file_path)


class SpecFile(pytest.File):
    """A spec file: one item per check."""

    def collect(self):
        from .runner import display_path, load_all
        checks, errors = load_all(
            [self.path], allow_python=not self.config.getoption("gradtool_no_python"))
        if errors:
            raise self.CollectError("\n".join(
                f"{e.where}: {e.message}" + (f"\n  hint: {e.hint}" if e.hint else "")
                for e in errors))
        for selected in checks:
            selected.file = display_path(self.path)
            item = SpecItem.from_parent(self, name=selected.name, selected=selected)
            for tag in selected.tags:
                self.config.addinivalue_line("markers", f"{tag}: gradtool spec tag")
                item.add_marker(tag)
            yield item


class CheckFailed(Exception):
    """Raised by a failing check; its text is the checker's report."""


class SpecItem(pytest.Item):
    """One check of a spec file."""

    def __init__(self, *, selected, **kwargs) -> None:
        super().__init__(**kwargs)
        self.selected = selected

    def runtest(self) -> None:
        from .runner import run_check
        outcome = run_check(self.selected)
        status = outcome.status
        if status == "skipped":
            # reported at the check in the spec file, not at this line
            raise pytest.skip.Exception(outcome.message, _use_item_location=True)
        if status == "xfailed":
            from .render.report import worst_diagnosis
            pytest.xfail(worst_diagnosis(outcome))
        if status == "passed":
            return
        if status == "error":       # file:line:col: message, the line and a caret
            from .render.excerpt import source_excerpt
            from .errors import Location
            first, _, rest = (outcome.message or "error").partition("\n")
            lines = [f"{outcome.where}: {first}", *source_excerpt(Location(
                outcome.file, outcome.line, outcome.column, outcome.end_column))]
            text = "\n".join(lines + ([rest] if rest else []))
            if outcome.hint:
                text += f"\n  hint: {outcome.hint}"
            raise CheckFailed(text)
        text = outcome.message
        if status == "xpassed":
            text = "[XPASS(strict)] " + outcome.message
        if outcome.hint:
            text += f"\nhint: {outcome.hint}"
        raise CheckFailed(f"{outcome.where}: {outcome.name}: {status}\n{text}")

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, CheckFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        line = self.selected.line
        return self.path, (line - 1 if line else None), f"gradtool check {self.name}"
