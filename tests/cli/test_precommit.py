"""The pre-commit hook as pre-commit runs it: its `files` pattern picks the changed files,
the entry gets them as arguments."""

import re
import shlex
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
HOOK = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())[0]

SPEC = "version: 1\nchecks:\n  - name: a\n    expr: (x * x).sum()\n    inputs:\n      x: [1.0]\n"
BROKEN = ("functions:\n  f:\n    args: [x]\n    forward: x * x\n    backward:\n      x: grad\n"
          "checks:\n  - name: wrong\n    expr: f(x).sum()\n    inputs:\n      x: [1.0, 2.0]\n")
REPOSITORY = {
    "specs/a.yaml": SPEC,
    "specs/nested/b.yml": SPEC,
    "specs/fixtures/data.yaml": "rows: [1, 2, 3]\n",
    ".github/workflows/ci.yml": "on: [push]\njobs:\n  t:\n    runs-on: ubuntu-latest\n",
    "mkdocs.yml": "site_name: x\nextra:\n  a: !!python/name:os.getcwd\n",
    ".pre-commit-config.yaml": "repos: []\n",
    "docs/example.yaml": "checks: oops\n",
    "src/app/config.yaml": "debug: true\n",
}


def _pre_commit(tmp_path, console_script, files):
    """Run the hook on ``files`` (paths relative to the repository) as pre-commit does."""
    pattern = re.compile(HOOK["files"])
    chosen = [f for f in files if pattern.search(f) and f.endswith((".yaml", ".yml"))]
    entry = shlex.split(HOOK["entry"])
    assert entry[0] == "gradtool"
    if not chosen:
        return chosen, None
    result = subprocess.run(console_script + entry[1:] + chosen, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    return chosen, result


def test_the_default_hook_checks_specs_and_leaves_other_yaml_alone(tmp_path,
                                                                    console_script):
    for name, text in REPOSITORY.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    chosen, result = _pre_commit(tmp_path, console_script, list(REPOSITORY))
    assert chosen == ["specs/a.yaml", "specs/nested/b.yml", "specs/fixtures/data.yaml"]
    assert result.returncode == 0, result.stdout + result.stderr
    assert "specs/a.yaml::a" in result.stdout and "specs/nested/b.yml::a" in result.stdout
    assert "2 passed" in result.stdout
    # only workflow or mkdocs changes: the hook does not run at all
    chosen, result = _pre_commit(tmp_path, console_script,
                                 [".github/workflows/ci.yml", "mkdocs.yml"])
    assert chosen == [] and result is None


def test_the_hook_fails_on_a_wrong_gradient_and_a_broken_spec(tmp_path, console_script):
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "wrong.yaml").write_text(BROKEN)
    _, result = _pre_commit(tmp_path, console_script, ["specs/wrong.yaml"])
    assert result.returncode == 1 and "specs/wrong.yaml::wrong" in result.stdout
    (tmp_path / "specs" / "typo.yaml").write_text("checks: [{name: a, expr: x, inputs: {x: "
                                                  "[1.0]}\n")
    _, result = _pre_commit(tmp_path, console_script, ["specs/typo.yaml"])
    assert result.returncode == 2 and "specs/typo.yaml:1:" in result.stderr


def test_docs_do_not_pin_a_tag_that_does_not_exist():
    tags = subprocess.run(["git", "tag"], cwd=ROOT, capture_output=True, text=True).stdout
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
                 ROOT / ".pre-commit-hooks.yaml"]:
        for rev in re.findall(r"rev:\s*(\S+)", path.read_text()):
            assert rev in tags.split() or not re.match(r"v?\d", rev), (path, rev)
