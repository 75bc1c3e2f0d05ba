"""`python:` references are resolved for each spec file on its own: a module next to the spec
file wins, and nothing it loads stays in sys.modules or sys.path for the next file."""

import json
import sys

from click.testing import CliRunner

import gradtool.spec as spec_module
from gradtool.cli.app import cli

FUNCTION = """\
import gradtool as gt
{extra}

class Sq(gt.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return {factor} * x * grad
"""

SPEC = """\
version: 1
functions:
  Sq: {{python: "{ref}"}}
checks:
  - name: sq
    expr: Sq(x)
    inputs: {{x: {{shape: [4]}}}}
"""


def _project(root, name, factor, ref="myops:Sq", module="myops.py", extra=""):
    folder = root / name
    path = folder / module
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(FUNCTION.format(factor=factor, extra=extra))
    (folder / "spec.yaml").write_text(SPEC.format(ref=ref))
    return folder / "spec.yaml"


def _verdicts(paths):
    verdicts = {}
    for path in paths:
        spec = spec_module.load(path)
        for check in spec.checks:
            import gradtool as gt
            built = check.build()
            verdicts[path.parent.name] = gt.check(built.fn, built.inputs).passed
    return verdicts


def test_each_spec_file_gets_its_own_module(tmp_path):
    good = _project(tmp_path, "good", 2)
    bad = _project(tmp_path, "bad", 3)
    path_before = list(sys.path)
    assert _verdicts([good, bad]) == {"good": True, "bad": False}
    assert _verdicts([bad, good]) == {"bad": False, "good": True}
    assert "myops" not in sys.modules
    assert sys.path == path_before


def test_packages_and_sibling_imports_stay_private(tmp_path):
    good = _project(tmp_path, "good", 2, ref="pkg.ops:Sq", module="pkg/ops.py",
                    extra="from helpers import FACTOR")
    (good.parent / "pkg" / "__init__.py").write_text("")
    (good.parent / "helpers.py").write_text("FACTOR = 2\n")
    bad = _project(tmp_path, "bad", 3, ref="pkg.ops:Sq", module="pkg/ops.py",
                   extra="from helpers import FACTOR")
    (bad.parent / "pkg" / "__init__.py").write_text("")
    (bad.parent / "helpers.py").write_text("FACTOR = 3\n")
    assert _verdicts([good, bad]) == {"good": True, "bad": False}
    assert not {"pkg", "pkg.ops", "helpers"} & set(sys.modules)


def test_cli_run_of_two_folders_is_not_a_false_pass(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _project(tmp_path, "a", 2)
    _project(tmp_path, "b", 3)
    for order in (["a/spec.yaml", "b/spec.yaml"], ["b/spec.yaml", "a/spec.yaml"], ["."]):
        result = CliRunner().invoke(cli, ["check", *order, "--format", "json"])
        assert result.exit_code == 1, (order, result.output)
        summary = json.loads(result.output)["summary"]
        assert (summary["passed"], summary["failed"]) == (1, 1)


def test_a_module_already_imported_elsewhere_does_not_win(tmp_path, monkeypatch):
    """A same-named module on sys.path (imported first) loses to the one beside the spec."""
    elsewhere = tmp_path / "site"
    elsewhere.mkdir()
    (elsewhere / "myops.py").write_text(FUNCTION.format(factor=2, extra=""))
    monkeypatch.syspath_prepend(str(elsewhere))
    import myops  # noqa: F401
    bad = _project(tmp_path, "bad", 3)
    assert _verdicts([bad]) == {"bad": False}
    assert sys.modules["myops"].__file__.startswith(str(elsewhere))
    del sys.modules["myops"]


def test_spec_loader_is_public_from_the_package():
    import gradtool as gt
    from pathlib import Path
    spec = gt.spec.load(Path(__file__).resolve().parents[2] / "specs" / "legendre_p3.yaml")
    built = spec.checks[0].build()
    assert gt.check(built.fn, built.inputs, input_names=built.input_names).passed
