"""Hostile and odd input to the command line: every one ends in a clear message and the
documented exit code, never a traceback or silently wrong numbers."""

import pytest

F32 = """\
defaults: {dtype: float32}
checks:
  - name: square
    expr: (x * x).sum()
    inputs: {x: {shape: [3]}}
"""

TWO = """\
checks:
  - name: square
    expr: (x * x).sum()
    inputs: {x: {shape: [3]}}
"""


def no_traceback(result):
    assert "Traceback" not in result.output
    assert "Traceback" not in (result.stderr or "")


def test_float32_warning_is_one_line_at_the_check(run, spec_dir):
    spec_dir("f32.yaml", F32)
    result = run("check", "f32.yaml")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(lines) == 1
    assert lines[0].startswith("f32.yaml:3:5: warning: square: Input #0 requires gradient")
    assert "UserWarning" not in result.stderr and "check.py" not in result.stderr


def test_warning_of_other_commands_is_plain(run):
    result = run("jacobian", "x * x", "-i", "x={value: [1, 2], dtype: float32}", "--check")
    assert result.exit_code == 0, result.output
    assert "warning: Input #0 requires gradient" in result.stderr
    assert "UserWarning" not in result.stderr


@pytest.mark.parametrize("option, value, words", [
    ("--eps", "-1", "expected a number > 0"),
    ("--eps", "0", "expected a number > 0"),
    ("--eps", "nan", "expected a finite number"),
    ("--atol", "inf", "expected a finite number"),
    ("--rtol", "-0.1", "expected a number >= 0"),
    ("--seed", "-3", "x>=0"),
    ("--eps", "abc", "is not a number"),
])
def test_check_overrides_are_validated_like_spec_settings(run, spec_dir, option, value,
                                                          words):
    spec_dir("two.yaml", TWO)
    result = run("check", "two.yaml", option, value)
    assert result.exit_code == 2
    assert words in result.stderr
    no_traceback(result)


def test_negative_seed_of_derivative_commands_is_a_usage_error(run):
    result = run("vjp", "x * 2", "-i", "x={shape: [2]}", "--seed", "-1", "--v", "[1, 1]")
    assert result.exit_code == 2
    assert "--seed" in result.stderr


@pytest.mark.parametrize("expr, words", [
    ("1 + 2", "the expression gives an int (3), not a tensor"),
    ("None", "the expression gives None, not a tensor"),
])
def test_graph_of_a_non_tensor_names_it(run, expr, words):
    result = run("graph", expr, "-i", "x=[1,2,3]")
    assert result.exit_code == 2
    assert words in result.stderr
    no_traceback(result)


def test_engine_message_is_not_prefixed_twice(run):
    result = run("graph", "einsum('ii', x, x)", "-i", "x=[1,2,3]")
    assert result.exit_code == 2
    assert "<expr>:1:1: einsum(): more operands" in result.stderr
    assert "einsum(): einsum()" not in result.stderr


def test_junit_stays_well_formed_with_control_characters(run, spec_dir):
    import xml.etree.ElementTree as ET
    spec_dir("ctl.yaml", 'checks:\n  - name: ab\n    expr: x * 2\n'
                         '    inputs: {x: 1.0}\n    skip: "a\\u0001b"\n')
    result = run("check", "ctl.yaml", "--format", "junit")
    assert result.exit_code == 0
    root = ET.fromstring(result.stdout.split("\n", 1)[1])
    assert [c.get("message") for c in root.iter("skipped")] == ["a\\x01b"]


@pytest.mark.parametrize("args, words", [
    (["graph", "x * 2", "-i", "x=[1\udcff]"], "<input x>:1:3: YAML syntax error: character "
                                              "U+DCFF is not allowed"),
    (["graph", "x\udcff", "-i", "x=[1]"], "<expr>:1:2: invalid character U+DCFF"),
])
def test_undecodable_command_line_bytes(run, args, words):
    result = run(*args)
    assert result.exit_code == 2
    assert words in result.stderr
    no_traceback(result)


USER_MODULE = '''\
import gradtool as gt
print("imported userops")


class Raises(gt.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, grad):
        raise RuntimeError("boom in backward")


class Square(gt.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 2 * x
'''

USER_SPEC = """\
functions:
  Raises: {python: "userops_hostile:Raises"}
  Square: {python: "userops_hostile:Square"}
checks:
  - {name: raises, expr: Raises(x), inputs: {x: {shape: [3]}}}
  - {name: raises_xfail, expr: Raises(x), inputs: {x: {shape: [3]}}, expect: fail}
  - {name: square, expr: Square(x), inputs: {x: {shape: [3]}}}
"""


@pytest.fixture
def user_spec(spec_dir, monkeypatch):
    spec_dir("userops_hostile.py", USER_MODULE)
    path = spec_dir("user.yaml", USER_SPEC)
    monkeypatch.syspath_prepend(str(path.parent))
    yield path
    import sys
    sys.modules.pop("userops_hostile", None)


def test_python_function_that_raises_is_a_spec_error_not_a_bug(run, user_spec):
    result = run("check", "user.yaml", "-k", "raises")
    assert result.exit_code == 2, result.output
    assert "Raises.backward (userops_hostile.py:12) raised RuntimeError: boom in backward" \
        in result.stdout
    assert "bug in gradtool" not in result.stdout
    assert result.stdout.count("ERROR user.yaml") == 2       # expect: fail is not met
    no_traceback(result)


def test_python_function_that_raises_under_graph(run, user_spec):
    result = run("graph", "--spec", "user.yaml", "--check", "raises", "--grads")
    assert result.exit_code == 2
    assert "raised RuntimeError: boom in backward" in result.stderr
    assert "internal error" not in result.stderr


def test_prints_of_imported_code_stay_off_machine_stdout(run, user_spec):
    import json
    result = run("check", "user.yaml", "-k", "square", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["summary"]["passed"] == 1
    assert "imported userops" in result.stderr


def test_jvp_without_a_tangent_is_a_usage_error_not_zeros(run):
    result = run("jvp", "x * x", "-i", "x=[1,2,3]")
    assert result.exit_code == 2
    assert "give a tangent with --v" in result.stderr


def test_jvp_of_one_scalar_input_defaults_to_one_as_torch(run):
    result = run("jvp", "x * x", "-i", "x=3", "--format", "json")
    assert result.exit_code == 0, result.output
    import json
    assert json.loads(result.stdout)["jvp"]["value"] == 6


def test_inf_written_as_python_gets_a_yaml_hint(run):
    result = run("jacobian", "x.logsumexp(0)", "-i", "x=[-inf, 0.0]")
    assert result.exit_code == 2
    assert "got '-inf'" in result.stderr
    assert "hint: YAML spells infinity .inf, -.inf and not-a-number .nan" in result.stderr


def test_path_that_is_not_a_regular_file(run):
    result = run("check", "/dev/null")
    assert result.exit_code == 2
    assert "/dev/null: not a regular file" in result.stderr


def test_save_failures_to_an_impossible_folder_is_a_usage_error(run, spec_dir, tmp_path):
    spec_dir("two.yaml", TWO)
    blocker = spec_dir("blocker", "a file, not a folder")
    result = run("check", "two.yaml", "--save-failures", str(blocker / "sub"))
    assert result.exit_code == 2
    assert "--save-failures" in result.stderr and "cannot create the folder" in result.stderr
    no_traceback(result)


def test_complex_input_to_differentiate_is_refused_by_name(run, spec_dir):
    spec_dir("c.yaml", "checks:\n  - name: c\n    expr: x * x\n"
                       "    inputs: {x: {shape: [3], dtype: complex128}}\n")
    result = run("check", "c.yaml")
    assert result.exit_code == 2
    assert "input 'x' is complex128: gradtool's checker differentiates real inputs only" \
        in result.stdout


def test_no_color_means_no_escape_codes_at_all(run, spec_dir):
    spec_dir("two.yaml", TWO)
    styled = run("check", "two.yaml", "nope.yaml", env={"FORCE_COLOR": "1", "NO_COLOR": ""})
    assert "\x1b[" in styled.stdout + styled.stderr          # a terminal: styles
    plain = run("check", "two.yaml", "nope.yaml", env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert plain.exit_code == 2
    assert "\x1b[" not in plain.stdout + plain.stderr
    assert "nope.yaml: no such file or folder" in plain.stderr


@pytest.mark.parametrize("command, expr, words", [
    ("jacobian", "x * 2", "the Jacobian block d output / d x would have 20,000 x 20,000"),
    ("hessian", "(x * x).sum()", "the Hessian block d² output / d x d x would have 20,000"),
])
def test_matrix_over_the_element_cap_is_refused_before_allocating(run, command, expr, words):
    result = run(command, expr, "-i", "x={shape: [20000]}")
    assert result.exit_code == 2
    assert words in result.stderr
    assert "MemoryError" not in result.stderr


def test_full_mode_over_the_cap_is_a_check_error(run, spec_dir):
    spec_dir("full.yaml", "checks:\n  - name: a\n    expr: x * 2\n"
                          "    inputs: {x: {shape: [20000]}}\n    mode: full\n")
    result = run("check", "full.yaml")
    assert result.exit_code == 2
    assert "mode='full' would build Jacobians of 400,000,000 entries" in result.stdout


@pytest.mark.parametrize("expr, first", [("-x", "NegBackward0"), ("-(x * 2)", "NegBackward0"),
                                         ("- x.sum()", "NegBackward0")])
def test_expression_starting_with_minus(run, expr, first):
    result = run("graph", expr, "-i", "x=[1, 2]")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(first)


def test_unknown_long_option_is_still_a_usage_error(run):
    result = run("graph", "x", "--fromat", "json", "-i", "x=[1]")
    assert result.exit_code == 2
    assert "No such option '--fromat'" in result.stderr


def test_forward_ad_diagnosis_speaks_of_the_jvp(run, spec_dir):
    spec_dir("fad.yaml", """\
functions:
  G:
    args: [x, y]
    forward: x * y
    backward: {x: grad * y, y: grad * x}
    jvp: x_dot * y
checks:
  - name: partial_jvp
    expr: G(x, y)
    inputs: {x: {shape: [3]}, y: {shape: [3]}}
    forward_ad: true
""")
    result = run("check", "fad.yaml")
    assert result.exit_code == 1
    assert "forward-mode AD (JVP) gradient missing: the JVP gives zero" in result.stdout


def test_ops_filter_matching_nothing_is_a_usage_error(run):
    result = run("ops", "-k", "sigmod")
    assert result.exit_code == 2
    assert "-k 'sigmod' matched none of the" in result.stderr
    assert "did you mean sigmoid" in result.stderr
    one = run("ops", "-k", "RELU")
    assert one.exit_code == 0 and "1 function;" in one.stdout


@pytest.mark.parametrize("given, words", [
    ("grad=1", "'grad' is reserved and cannot be an input name"),
    ("pi=1", "'pi' is reserved and cannot be an input name"),
    ("True=1", "'True' is not a valid input name"),
])
def test_input_names_the_spec_refuses_are_refused_on_the_command_line(run, given, words):
    result = run("jacobian", "x * 2", "-i", given)
    assert result.exit_code == 2
    assert words in result.stderr


TORCH_MODULE = '''\
import torch


class Cube(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x ** 2
'''


def test_graph_of_a_torch_check_is_refused_clearly(run, spec_dir, monkeypatch):
    pytest.importorskip("torch")
    import sys
    module = spec_dir("torchops_hostile.py", TORCH_MODULE)
    monkeypatch.syspath_prepend(str(module.parent))
    spec_dir("t.yaml", "functions:\n  Cube: {python: 'torchops_hostile:Cube'}\n"
                       "checks:\n  - {name: cube, expr: Cube(x), inputs: {x: {shape: [3]}}}\n")
    try:
        result = run("graph", "--spec", "t.yaml", "--check", "cube")
    finally:
        sys.modules.pop("torchops_hostile", None)
    assert result.exit_code == 2
    assert "check 'cube' calls torch Functions or modules" in result.stderr
    assert "not a tensor" not in result.stderr


def test_xpass_is_said_once(run, spec_dir):
    spec_dir("x.yaml", "checks:\n  - {name: a, expr: x * 2, inputs: {x: 1.0}, expect: fail}\n")
    result = run("check", "x.yaml")
    assert result.exit_code == 1
    assert result.stdout.count("marked 'expect: fail'") == 1


def test_closed_pipe_is_not_a_failed_check(console_script, spec_dir):
    import os
    import subprocess
    lines = ["checks:"] + [f"  - {{name: c{i}, expr: x * 2, inputs: {{x: 1.0}}}}"
                           for i in range(1500)]
    spec_dir("many.yaml", "\n".join(lines) + "\n")
    proc = subprocess.Popen([*console_script, "check", "many.yaml"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "NO_COLOR": "1"})
    proc.stdout.readline()
    proc.stdout.close()           # as `gradtool check | head -1`
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert "Traceback" not in err and "internal error" not in err


def _strict_json(text: str):
    import json

    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")
    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("args", [
    ["vjp", "x / 0", "-i", "x=[0, 1]", "--v", "[1, 1]"],
    ["jacobian", "log(x)", "-i", "x=[0, 1]", "--check"],
    ["graph", "x / 0", "-i", "x=[0, 1]", "--grads", "--saved"],
])
def test_json_output_is_strict_json_with_nan_and_inf(run, args):
    result = run(*args, "--format", "json")
    data = _strict_json(result.stdout)
    assert data["version"] == 1
    if args[0] == "vjp":
        assert data["output"]["value"] == ["nan", "inf"]


EXITING_MODULE = '''\
import sys
import gradtool as gt


class Quits(gt.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, grad):
        sys.exit(0)
'''


def test_sys_exit_in_user_code_is_not_a_verdict(run, spec_dir, monkeypatch):
    import sys
    module = spec_dir("exits_hostile.py", EXITING_MODULE)
    spec_dir("at_import_hostile.py", "import sys\nsys.exit(0)\n")
    monkeypatch.syspath_prepend(str(module.parent))
    spec_dir("q.yaml", "functions:\n  Q: {python: 'exits_hostile:Quits'}\n"
                       "checks:\n  - {name: q, expr: Q(x), inputs: {x: {shape: [3]}}}\n")
    spec_dir("i.yaml", "functions:\n  A: {python: 'at_import_hostile:X'}\n"
                       "checks:\n  - {name: a, expr: x, inputs: {x: 1.0}}\n")
    try:
        ran = run("check", "q.yaml")
        imported = run("check", "i.yaml")
        graphed = run("graph", "--spec", "q.yaml", "--check", "q", "--grads")
    finally:
        sys.modules.pop("exits_hostile", None)
        sys.modules.pop("at_import_hostile", None)
    assert ran.exit_code == 2
    assert "Quits.backward (exits_hostile.py:12) called sys.exit(0) while the check ran" \
        in ran.stdout
    assert imported.exit_code == 2
    assert "cannot import module 'at_import_hostile': it called sys.exit(0)" in \
        imported.stderr
    assert graphed.exit_code == 2 and "called sys.exit(0)" in graphed.stderr


def test_sys_exit_in_a_module_constructor_is_a_spec_error(run, spec_dir, monkeypatch):
    import sys
    module = spec_dir("ctor_exits_hostile.py", "import sys\nimport gradtool as gt\n\n\n"
                      "class M(gt.nn.Module):\n    def __init__(self):\n"
                      "        super().__init__()\n        sys.exit(0)\n")
    monkeypatch.syspath_prepend(str(module.parent))
    spec_dir("m.yaml", "modules:\n  m: {python: 'ctor_exits_hostile:M'}\n"
                       "checks:\n  - {name: a, expr: m(x), inputs: {x: 1.0}}\n")
    try:
        result = run("check", "m.yaml")
    finally:
        sys.modules.pop("ctor_exits_hostile", None)
    assert result.exit_code == 2
    assert "module 'm': ctor_exits_hostile:M cannot be built: it called sys.exit(0)" \
        in result.stderr


def test_verbose_heatmap_with_nan_does_not_crash(run, spec_dir):
    spec_dir("heat.yaml", """\
functions:
  B:
    args: [x]
    forward: x.log()
    backward: {x: grad / x * 1.5}
checks:
  - {name: big, expr: B(x), inputs: {x: {shape: [20]}}}
  - {name: small, expr: B(x), inputs: {x: {value: [0.0, -1.0, 2.0]}}}
""")
    result = run("check", "heat.yaml", "-v")
    assert result.exit_code == 1, result.output
    assert "internal error" not in result.stdout + result.stderr
    assert "!! = NaN or Inf" in result.stdout
