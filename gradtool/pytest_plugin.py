"""pytest plugin (entry point ``pytest11``): every check of every spec file as a test item.

    pytest --gradtool specs/          # or, in the ini file: gradtool_specs = specs

Each check is one item (``specs/basics.yaml::mean_of_squares``) whose failure report is
the checker's report; ``expect: fail`` checks are xfail (strict: an unexpected pass fails),
``skip: reason`` checks are skipped, spec tags become markers (``-m tag``).  A spec file
that cannot be loaded is a collection error.  Without the option or the ini value the plugin
does nothing, so ordinary pytest runs are untouched.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SUFFIXES = (".yaml", ".yml")


def pytest_addoption(parser) -> None:
    group = parser.getgroup("gradtool", "gradtool spec files")
    group.addoption("--gradtool", action="append", nargs="?", const="", default=None,
                    metavar="PATH",
                    help="collect the checks of gradtool spec files under PATH (repeatable; "
                         "without PATH: the gradtool_specs ini value, else specs/)")
    group.addoption("--gradtool-no-python", action="store_true", default=False,
                    help="refuse 'python:' references in spec files")
    parser.addini("gradtool_specs", "spec files or folders whose checks pytest collects",
                  type="args", default=[])


def _spec_roots(config) -> list[Path]:
    """Command-line paths are relative to where pytest was started, ini paths to the ini
    file's folder (as pytest's own ``testpaths``)."""
    given = [p for p in (config.getoption("gradtool") or ()) if p]
    if given:
        base = Path(config.invocation_params.dir)
        return [(base / p).resolve() for p in given]
    ini = list(config.getini("gradtool_specs"))
    if config.getoption("gradtool") is None and not ini:
        return []
    base = Path(config.inipath).parent if config.inipath else Path(config.rootpath)
    return [(base / p).resolve() for p in (ini or ["specs"])]


def pytest_configure(config) -> None:
    roots = _spec_roots(config)
    config._gradtool_roots = roots
    if not roots:
        return
    known = {str(Path(a).resolve()) for a in config.args}
    for path in roots:
        if str(path) not in known:
            config.args.append(str(path))


def _under_roots(path: Path, roots) -> bool:
    for root in roots:
        if path == root or root in path.parents:
            return True
    return False


def pytest_collect_file(file_path: Path, parent):
    roots = getattr(parent.config, "_gradtool_roots", None)
    if not roots or file_path.suffix not in SUFFIXES:
        return None
    if not _under_roots(file_path.resolve(), roots):
        return None
    return SpecFile.from_parent(parent, path=file_path)


class SpecFile(pytest.File):
    """A spec file: one item per check."""

    def collect(self):
        from .cli.runner import display_path, load_all
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


def _diagnosis(report: str) -> str:
    """The line of a checker report that says what is wrong (its first failing block)."""
    lines = [line.strip() for line in report.splitlines() if line.strip()]
    for line in lines[1:]:
        if "FAILED" in line or "missing" in line:
            return line
    return lines[0] if lines else "expect: fail"


class CheckFailed(Exception):
    """Raised by a failing check; its text is the checker's report."""


class SpecItem(pytest.Item):
    """One check of a spec file."""

    def __init__(self, *, selected, **kwargs) -> None:
        super().__init__(**kwargs)
        self.selected = selected

    def runtest(self) -> None:
        from .cli.runner import run_check
        outcome = run_check(self.selected)
        status = outcome.status
        if status == "skipped":
            # reported at the check in the spec file, not at this line
            raise pytest.skip.Exception(outcome.message, _use_item_location=True)
        if status == "xfailed":
            pytest.xfail(_diagnosis(outcome.message))
        if status == "passed":
            return
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
