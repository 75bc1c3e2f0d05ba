"""Resource limits (issue 11): the element cap on every size argument, the budget of live
tensor bytes, the time budget, and their one spelling (``limits: {max_memory, max_elements,
timeout}``).  Nothing here allocates more than a few MB: the limits are set small."""

import signal
import threading
import time

import numpy as np
import pytest

import gradtool as gt
from gradtool.engine import limits
from gradtool.engine.grad_mode import MODE
from gradtool.engine.limits import (Limits, MemoryBudget, TimeLimitError, element_limit,
                                    memory_budget, time_limit)
from gradtool.errors import LimitError, SpecError, SpecErrors
from gradtool.spec import evaluate_program, loads

CAP = 1000


def _n(value: int):
    """A size as a 0-d integer tensor computed from an input (the bypass of issue 11)."""
    return gt.ones(3).sum().long() * 0 + value


# ---- 1. the element cap holds for every size argument, whatever its type ---------------------
SIZES = [pytest.param(lambda: 10**6, id="int"), pytest.param(lambda: np.int64(10**6), id="np"),
         pytest.param(lambda: _n(10**6), id="0-d tensor")]
FACTORIES = [
    pytest.param(lambda n: gt.ones(n), id="ones"), pytest.param(lambda n: gt.zeros(n), id="zeros"),
    pytest.param(lambda n: gt.empty(n), id="empty"),
    pytest.param(lambda n: gt.full((n,), 1.0), id="full-tuple"),
    pytest.param(lambda n: gt.full(n, 1.0), id="full"),
    pytest.param(lambda n: gt.linspace(0, 1, n), id="linspace"),
    pytest.param(lambda n: gt.eye(n), id="eye"), pytest.param(lambda n: gt.eye(2, n), id="eye-m"),
    pytest.param(lambda n: gt.arange(n), id="arange"),
    pytest.param(lambda n: gt.arange(0, n, 1.0), id="arange-float"),
    pytest.param(lambda n: gt.randn(n), id="randn"), pytest.param(lambda n: gt.rand(n), id="rand"),
    pytest.param(lambda n: gt.randint(0, 5, (n,)), id="randint"),
    pytest.param(lambda n: gt.randperm(n), id="randperm"),
    pytest.param(lambda n: gt.ones(2, n), id="ones-2d"),
]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("make", FACTORIES)
def test_factories_refuse_sizes_over_the_cap_before_allocating(make, size):
    n = size()
    with element_limit(CAP), pytest.raises(LimitError, match="over the limit of 1,000"):
        make(n)


@pytest.mark.parametrize("make", FACTORIES)
def test_factories_under_the_cap_still_work(make):
    with element_limit(CAP):
        assert make(_n(7)).numel() in (7, 14, 49)


@pytest.mark.parametrize("call", ["ones(True)", "eye(True)", "linspace(0, 1, True)",
                                  "zeros(2.5)"])
def test_bool_and_float_sizes_are_type_errors_as_in_torch(call):
    with pytest.raises(SpecError, match="must be int|tuple of ints"):
        evaluate_program(call, {"x": gt.ones(3)})


@pytest.mark.parametrize("expr", [
    "ones(x.sum().long() * 0 + 300000000)",
    "zeros((x.sum().long() * 0 + 300000000,))",
    "empty(x.sum().long() * 0 + 300000000)",
    "full(((x.sum() * 0 + 3000000000).long(),), 1.0)",
    "linspace(0, 1, x.sum().long() * 0 + 300000000)",
    "eye(x.sum().long() * 0 + 300000)",
    "arange(x.sum().long() * 0 + 300000000)",
    "ones(x.shape[0] * 100000000)",
])
def test_spec_expressions_with_tensor_sizes_are_refused_at_the_call(expr):
    with pytest.raises(LimitError) as info:
        evaluate_program(f"{expr}.sum() * x", {"x": gt.ones(3)})
    assert info.value.location is not None and info.value.location.line == 1
    assert "over the limit of 100,000,000" in info.value.message


# ---- 2. the memory budget -------------------------------------------------------------------
def test_budget_refuses_before_allocating_and_counts_only_live_tensors():
    with memory_budget(1_500_000) as budget:
        kept = [gt.ones(50_000) * 2 for _ in range(2)]      # 800 kB live (+400 kB while made)
        assert budget.live == 800_000
        with pytest.raises(LimitError, match="over the memory budget"):
            kept.append(gt.ones(50_000) * 2)
        del kept
        assert budget.live == 0
        for _ in range(50):             # freed tensors do not count forever
            (gt.ones(50_000) * 2).sum()
    assert MODE.budget is None and not MODE.limited


def test_views_share_their_base_and_are_counted_once():
    with memory_budget(1_000_000) as budget:
        x = gt.ones(100_000)
        views = [x.reshape(1000, 100), x[10:], x.unsqueeze(0), x.view(100, 1000).t()]
        assert budget.live == 800_000 and views


def test_an_enclosing_budget_stays_in_force():
    outer = MemoryBudget(10**6)
    with memory_budget(0, outer):
        with memory_budget(10**9) as inner:
            assert inner is outer
            x = gt.ones(1000)
        assert outer.live == 8000 and x is not None


def test_budget_errors_name_the_call_and_the_way_to_raise_it():
    with pytest.raises(LimitError) as info:
        loads("""
checks:
  - name: seven
    expr: |
      a = ones(90000) * x
      b = ones(90000) * x
      c = ones(90000) * x
      (a + b + c).sum()
    inputs: {x: 1.0}
    limits: {max_memory: 1.5MiB}
""", "seven.yaml").checks[0].build().fn(gt.tensor(1.0, dtype=gt.float64,
                                                    requires_grad=True))
    error = info.value
    assert error.location.line == 6 and "over the memory budget of 1.5 MiB" in error.message
    assert "max_memory" in error.hint and "--max-memory" in error.hint


def test_modules_over_the_budget_are_refused_when_loading_at_the_module():
    with pytest.raises(SpecErrors) as info:
        loads("""
defaults:
  limits: {max_memory: 1MB}
modules:
  l1: {Linear: [300, 500]}
  l2: {Linear: [300, 500]}
checks:
  - name: lin
    expr: (l1(x) + l2(x)).sum()
    inputs: {x: {shape: [1, 300]}}
""", "lin.yaml")
    errors = info.value.errors
    assert [e.location.line for e in errors] == [5, 6]
    assert all("over the memory budget of 976.6 KiB" in e.message for e in errors)


def test_a_check_whose_inputs_and_parameters_do_not_fit_is_refused_before_building():
    with pytest.raises(LimitError, match=r"inputs and module parameters take .* over the "
                                         r"memory budget") as info:
        loads("""
modules:
  l1: {Linear: [100, 200]}
checks:
  - name: lin
    expr: l1(x).sum() + y.sum()
    inputs: {x: {shape: [1, 100]}, y: {shape: [300, 300]}}
    limits: {max_memory: 800kB}
""", "fit.yaml")
    assert info.value.location.line == 7


def test_a_spec_runs_within_a_budget_it_fits_in():
    spec = loads("""
checks:
  - name: fits
    expr: (ones(1000) * x).sum()
    inputs: {x: {shape: [1000]}}
    limits: {max_memory: 1MiB}
""", "fits.yaml")
    built = spec.checks[0].build()
    assert gt.check(built.fn, tuple(built.inputs)).passed


# ---- 3. one spelling: parsing, precedence ---------------------------------------------------
@pytest.mark.parametrize("text, value", [("512MiB", 512 * 2**20), ("2GB", 2 * 10**9),
                                         ("1.5 KiB", 1536), (1000, 1000), ("0", 0),
                                         ("1e6", 10**6), ("3 kb", 3000)])
def test_parse_bytes(text, value):
    assert limits.parse_bytes(text) == value


@pytest.mark.parametrize("text, value", [("30s", 30.0), ("5m", 300.0), ("1h", 3600.0),
                                         ("250ms", 0.25), (12, 12.0), ("0", 0.0)])
def test_parse_seconds(text, value):
    assert limits.parse_seconds(text) == value


@pytest.mark.parametrize("parse, text", [
    (limits.parse_bytes, "12ZB"), (limits.parse_bytes, "-1"), (limits.parse_bytes, "lots"),
    (limits.parse_bytes, True), (limits.parse_bytes, "1e30"), (limits.parse_seconds, "3x"),
    (limits.parse_seconds, float("nan")), (limits.parse_count, "1.5"),
    (limits.parse_count, [1]), (limits.parse_seconds, "inf")])
def test_bad_limit_values_are_value_errors_with_a_message(parse, text):
    with pytest.raises(ValueError, match=r"\S"):
        parse(text)


@pytest.mark.parametrize("value, words", [("12ZB", "unknown unit"),
                                          ("-3", "expected a finite number >= 0"),
                                          ("[1, 2]", "expected bytes"), ("true", "expected")])
def test_bad_limits_in_a_spec_are_located(value, words):
    with pytest.raises(SpecError) as info:
        loads(f"checks:\n  - name: a\n    expr: x\n    inputs: {{x: 1.0}}\n"
              f"    limits: {{max_memory: {value}}}\n", "bad.yaml")
    assert (info.value.location.line, info.value.location.column) == (5, 26)
    assert words in str(info.value)


def test_unknown_limit_keys_are_located_with_a_suggestion():
    with pytest.raises(SpecError, match="unknown key 'max_memroy' in limits .did you mean "
                                        "'max_memory'"):
        loads("checks:\n  - name: a\n    expr: x\n    inputs: {x: 1.0}\n"
              "    limits: {max_memroy: 1GB}\n", "bad.yaml")


def test_limits_precedence_builtin_defaults_check_overrides():
    text = """
defaults:
  limits: {max_memory: 100MB, timeout: 10}
checks:
  - name: a
    expr: x
    inputs: {x: 1.0}
    limits: {timeout: 5s, max_elements: 1000}
  - name: b
    expr: x
    inputs: {x: 1.0}
"""
    a, b = loads(text, "p.yaml").checks
    assert a.limits == Limits(100 * 10**6, 1000, 5.0) and a.max_elements == 1000
    assert b.limits == Limits(100 * 10**6, limits.DEFAULT_MAX_ELEMENTS, 10.0)
    a, b = loads(text, "p.yaml", limits=Limits(None, None, 1.0)).checks
    assert a.limits.timeout == b.limits.timeout == 1.0 and a.limits.max_elements == 1000
    (c,) = loads("checks:\n  - name: c\n    expr: x\n    inputs: {x: 1.0}\n", "c.yaml").checks
    assert c.limits == Limits()


def test_max_elements_zero_lifts_the_cap():
    (check,) = loads("checks:\n  - name: c\n    expr: (ones(2000) * x).sum()\n"
                     "    inputs: {x: 1.0}\n    limits: {max_elements: 0}\n", "z.yaml").checks
    assert check.build().fn(gt.tensor(1.0, dtype=gt.float64)).item() == 2000


# ---- the time budget ------------------------------------------------------------------------
def _spin():
    a = np.ones(100)
    while True:
        try:
            a = a * 1.0000001
        except Exception:    # noqa: BLE001  (user code swallowing errors is stopped anyway)
            pass


def test_time_limit_interrupts_python_loops_and_restores_the_handler():
    before = signal.getsignal(signal.SIGALRM)
    with pytest.raises(TimeLimitError, match="ran longer than the time limit of 0.2 s"):
        with time_limit(0.2, "the loop") as timer:
            _spin()
    assert timer.expired
    assert signal.getsignal(signal.SIGALRM) is before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_time_limit_not_reached_leaves_no_trace():
    with time_limit(5, "quick") as timer:
        gt.ones(3).sum()
    assert not timer.expired and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert not MODE.limited and MODE.deadline == 0.0


def test_time_limit_off_the_main_thread_stops_at_the_next_engine_op():
    outcome = []

    def worker():
        x = gt.ones(10)
        try:
            with time_limit(0.2, "the thread"):
                while True:
                    x = x * 1.0
        except TimeLimitError as error:
            outcome.append(error)
    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(30)
    assert outcome and "the thread ran longer" in outcome[0].message
    assert not MODE.limited


def test_limits_context_sets_and_restores_everything():
    with limits.limits(Limits(10**6, 500, 5)) as timer:
        assert MODE.limited and MODE.max_elements == 500 and MODE.budget is not None
        with pytest.raises(LimitError):
            gt.ones(501)
    assert not timer.expired
    assert not MODE.limited and MODE.max_elements == 0 and MODE.budget is None


def test_spec_check_over_its_timeout_is_an_error_and_the_others_run(tmp_path):
    from gradtool.runner import Selected, run_check
    (tmp_path / "spinmod.py").write_text(
        "import numpy as np\nimport gradtool as gt\n"
        "class Spin(gt.autograd.Function):\n"
        "    @staticmethod\n    def forward(ctx, x):\n"
        "        a = np.ones(10)\n        while True:\n"
        "            try:\n                a = a * 1.0\n"
        "            except Exception:\n                pass\n"
        "    @staticmethod\n    def backward(ctx, g):\n        return g\n")
    path = tmp_path / "spin.yaml"
    path.write_text("functions:\n  Spin: {python: spinmod:Spin}\nchecks:\n"
                    "  - name: spin\n    expr: Spin(x)\n    inputs: {x: [1.0]}\n"
                    "    limits: {timeout: 300ms}\n"
                    "  - name: fine\n    expr: (x * x).sum()\n    inputs: {x: [1.0]}\n")
    spin, fine = [run_check(Selected("spin.yaml", c)) for c in gt.spec.load(path).checks]
    assert spin.status == "error" and spin.exit_code == 2
    assert "check 'spin' ran longer than the time limit of 0.3 s" in spin.message
    assert "--timeout" in spin.hint
    assert fine.status == "passed"
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_time_is_measured_not_assumed():
    start = time.monotonic()
    with pytest.raises(TimeLimitError):
        with time_limit(0.1):
            _spin()
    assert time.monotonic() - start >= 0.1


def test_reset_clears_what_an_interrupted_block_left():
    MODE.budget = MemoryBudget(10)
    MODE.max_elements = 5
    MODE.deadline = time.monotonic() + 100
    limits._refresh()
    limits.reset()
    assert MODE.budget is None and MODE.max_elements == 0 and MODE.deadline == 0.0
    assert not MODE.limited
    gt.ones(100)


def test_inputs_count_against_the_budget_and_are_refused_before_generation():
    from gradtool.spec import parse_input_value
    with memory_budget(50_000) as budget:
        kept = parse_input_value("{shape: [1000]}", "x").make()
        assert budget.live == 8000 and kept.numel() == 1000
        with pytest.raises(LimitError, match="input 'y' would allocate 78.12 KiB") as info:
            parse_input_value("{shape: [100, 100]}", "y").make()
        assert info.value.location is not None
