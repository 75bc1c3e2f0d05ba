"""Modules in specs (``modules:``): resolving and building gt.nn layers, parameters in
``wrt`` and in the checker's report, deterministic initialisation, errors with locations,
and a broken Function inside a module found in both the batched and the looped path."""

import numpy as np
import pytest

import gradtool as gt
from gradtool.checker import check
from gradtool.engine import vmap as V
from gradtool.spec import load

from .helpers import FIXTURES, errors_of, load_text, one_error

NET = """
modules:
  net: {Sequential: [{Linear: [4, 3]}, Tanh, {Linear: [3, 2]}]}
checks:
  - name: net
    expr: ((net(x) - y) ** 2).mean()
    inputs: {x: {shape: [5, 4]}, y: {shape: [5, 2], requires_grad: false}}
    wrt: [params, x]
"""


def built(text: str, **kwargs):
    spec = load_text(text, **kwargs)
    return spec, spec.checks[0].build()


def values(tensors) -> list:
    return [t.detach().numpy().copy() for t in tensors]


# ---- resolving and building ------------------------------------------------------------------
def test_sequential_resolves_to_gt_layers():
    spec = load_text(NET)
    module = spec.modules["net"].build(seed=0).module
    assert isinstance(module, gt.nn.Sequential)
    assert [type(m).__name__ for m in module] == ["Linear", "Tanh", "Linear"]
    assert (module[0].in_features, module[0].out_features) == (4, 3)
    assert spec.modules["net"].parameter_names == (
        "net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias")


def test_layer_forms_names_positional_and_keyword_arguments():
    spec = load_text("""
        modules:
          act: ReLU
          conv: {Conv2d: {in_channels: 1, out_channels: 2, kernel_size: [3, 3], padding: 1}}
          slope: {LeakyReLU: [0.2]}
        checks:
          - {name: a, expr: slope(act(conv(x))).sum(), inputs: {x: {shape: [1, 1, 4, 4]}}}
        """)
    conv = spec.modules["conv"].build().module
    assert tuple(conv.weight.shape) == (2, 1, 3, 3)
    assert spec.modules["act"].parameter_names == ()
    assert spec.checks[0].wrt == ("x", "conv.weight", "conv.bias")   # inputs, then params


def test_modules_are_built_in_the_checks_dtype():
    _, b = built(NET.replace("wrt: [params, x]", "dtype: float32\n    wrt: [params, x]"))
    assert {str(t.dtype) for t in b.inputs} == {"gradtool.float32"}
    _, b = built(NET)
    assert {str(t.dtype) for t in b.inputs} == {"gradtool.float64"}


def test_python_gradtool_module_with_args_and_kwargs(fixtures_on_path):
    spec, b = built("""
        modules:
          scale: {python: mypkg.ops:Scale, args: [3], kwargs: {shift: 0.5}}
        checks:
          - {name: a, expr: scale(x).sum(), inputs: {x: {shape: [3]}}}
        """)
    assert b.input_names == ["x", "scale.weight"]
    x, w = (t.detach().numpy() for t in b.inputs)
    np.testing.assert_allclose(b.fn(*b.inputs).item(), (x * w + 0.5).sum())
    assert check(b.fn, b.inputs, input_names=b.input_names).passed


# ---- wrt and the report ----------------------------------------------------------------------
def test_wrt_params_names_every_block_in_the_result():
    _, b = built(NET)
    assert b.input_names == ["net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias", "x"]
    result = check(b.fn, b.inputs, input_names=b.input_names)
    assert result.passed
    assert [block.input_name for block in result.blocks] == b.input_names
    assert "d output 0 / d net.2.bias" in [block.name for block in result.blocks]


@pytest.mark.parametrize("wrt, expected", [
    ("[net.0.weight, x]", ("net.0.weight", "x")),
    ("[net.2]", ("net.2.weight", "net.2.bias")),
    ("[net]", ("net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias")),
    ("[x, params, net.0.bias]", ("x", "net.0.weight", "net.0.bias", "net.2.weight",
                                 "net.2.bias")),
])
def test_wrt_entries(wrt, expected):
    spec = load_text(NET.replace("[params, x]", wrt))
    assert spec.checks[0].wrt == expected


def test_default_wrt_is_inputs_requiring_grad_then_parameters():
    spec = load_text(NET.replace("    wrt: [params, x]\n", ""))
    assert spec.checks[0].wrt == ("x", "net.0.weight", "net.0.bias", "net.2.weight",
                                  "net.2.bias")


def test_parameters_outside_wrt_are_constants():
    _, b = built(NET.replace("[params, x]", "[net.0.weight]"))
    assert b.input_names == ["net.0.weight"]
    assert not b.all_inputs["net.2.weight"].requires_grad
    assert check(b.fn, b.inputs, input_names=b.input_names).passed


def test_parameters_are_restored_after_each_call():
    spec, b = built(NET)
    module = spec.checks[0].modules["net"]
    assert module is spec.modules["net"]
    replacement = [gt.zeros(*t.shape) for t in b.inputs[:4]] + [b.inputs[4]]
    out = b.fn(*replacement)
    np.testing.assert_allclose(out.item(), (b.all_inputs["y"].numpy() ** 2).mean())
    assert b.fn(*b.inputs).item() != out.item()        # the real parameters are back


# ---- determinism -----------------------------------------------------------------------------
def test_initialisation_is_deterministic_and_follows_the_seed():
    spec = load_text(NET)
    first = values(spec.checks[0].build().inputs)
    again = values(load_text(NET).checks[0].build().inputs)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    other = values(load_text(NET.replace("wrt:", "seed: 1\n    wrt:")).checks[0].build().inputs)
    assert not np.array_equal(first[0], other[0])


def test_building_leaves_the_global_generator_alone():
    gt.manual_seed(123)
    expected = gt.randn(3).numpy()
    gt.manual_seed(123)
    load_text(NET).checks[0].build()
    np.testing.assert_array_equal(gt.randn(3).numpy(), expected)


def test_linear_keeps_torchs_initialisation_bounds():
    weight = load_text(NET).modules["net"].build(seed=5).module[0].weight.detach().numpy()
    assert np.all(np.abs(weight) <= 1 / np.sqrt(4))      # kaiming_uniform(a=sqrt(5))


# ---- a broken Function inside a module: batched and looped -----------------------------------
BROKEN = """
modules:
  layer: {python: mypkg.ops:BadSquareLayer, args: [4]}
checks:
  - {name: broken, expr: layer(x).sum(), inputs: {x: {shape: [4], avoid: [0.0]}}}
"""


def test_broken_function_inside_a_module_is_diagnosed(fixtures_on_path):
    _, b = built(BROKEN)
    result = check(b.fn, b.inputs, input_names=b.input_names)
    assert result.path == "batched"
    assert not result.passed
    failed = {block.input_name: block for block in result.blocks if not block.passed}
    assert set(failed) == {"x", "layer.weight"}
    assert "factor" in failed["layer.weight"].diagnosis     # grad * x: half of 2x


def test_looped_fallback_perturbs_parameters_too(fixtures_on_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise V.VmapFallback("refused by the test")
    monkeypatch.setattr(V, "call_batched", refuse)
    _, b = built(NET)
    result = check(b.fn, b.inputs, input_names=b.input_names)
    assert result.path.startswith("looped")
    assert result.passed
    _, b = built(BROKEN)
    result = check(b.fn, b.inputs, input_names=b.input_names)
    assert result.path.startswith("looped") and not result.passed
    assert {block.input_name for block in result.blocks if not block.passed} == \
        {"x", "layer.weight"}


def test_example_spec_passes():
    spec = load(FIXTURES.parents[2] / "specs" / "modules.yaml")
    for item in spec.checks:
        b = item.build()
        assert check(b.fn, b.inputs, input_names=b.input_names).passed, item.name


# ---- errors with locations -------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("modules:\n  net: {Sequential: [{Linaer: [2, 3]}, ReLU]}\n",
     "a.yaml:2:23: module 'net': unknown layer 'Linaer' (did you mean 'Linear'?)"),
    ("modules:\n  fc: {Linear: [2]}\n",
     "a.yaml:2:16: module 'fc': Linear: missing a required argument: 'out_features'"),
    ("modules:\n  fc: {Linear: [2, 3, true, null, null, 5]}\n",
     "a.yaml:2:16: module 'fc': Linear: too many positional arguments"),
    ("modules:\n  fc: {Linear: {in_features: 2, out_feature: 3}}\n",
     "a.yaml:2:16: module 'fc': Linear: no argument 'out_feature' (did you mean "
     "'out_features'?)"),
    ("modules:\n  fc: {Linear: 3}\n",
     "a.yaml:2:16: the arguments of Linear are a list ({Linear: [...]}) or a mapping "
     "({Linear: {...}}), got an integer"),
    ("modules:\n  two: {Linear: [1, 2], ReLU: []}\n",
     "a.yaml:2:8: a layer is a mapping with one key, the layer's name ({Linear: [20, 10]}), "
     "got 2 keys"),
    ("modules:\n  seq: {Sequential: ReLU}\n",
     "a.yaml:2:21: Sequential takes a list of modules, got a string"),
    ("modules:\n  m: ModuleList\n",
     "a.yaml:2:6: module 'm': 'ModuleList' cannot be used in a spec (it is not a callable "
     "layer)"),
    ("modules:\n  fc: {Linear: [-2, 3]}\n",
     "a.yaml:2:16: module 'fc': Linear cannot be built: ValueError: negative dimensions are "
     "not allowed"),
    ("modules:\n  big: {Linear: [100000, 100000]}\n",
     "a.yaml:2:17: module 'big': Linear would allocate more than 100,000,000 elements"),
    ("modules:\n  pi: ReLU\n", "a.yaml:2:3: 'pi' is reserved and cannot be a module name"),
])
def test_module_errors(text, expected):
    text += "checks:\n  - {name: a, expr: x.sum(), inputs: {x: {shape: [2]}}}\n"
    assert one_error(text) == expected


def test_modules_refuse_complex_dtype():
    error = one_error(NET.replace("wrt:", "dtype: complex128\n    wrt:"))
    assert error == "a.yaml:7:12: modules are built in float64 or float32, not complex128"


def test_unknown_layer_hint_names_python():
    from gradtool.errors import SpecError
    with pytest.raises(SpecError) as info:
        load_text("modules: {m: Nope}\nchecks: [{name: a, expr: x, inputs: {x: 1.0}}]")
    assert "python:" in info.value.hint


def test_wrt_errors():
    errors = errors_of("""
        modules:
          net: {Sequential: [{Linear: [2, 3]}, ReLU]}
          other: {Linear: [2, 2]}
        checks:
          - {name: a, expr: net(x).sum(), inputs: {x: {shape: [2]}}, wrt: [net.0.wieght, other, nett.0.weight]}
          - {name: b, expr: x.sum(), inputs: {x: {shape: [2]}}, wrt: [params]}
          - {name: c, expr: net(x).sum(), inputs: {x: {shape: [2]}}, wrt: ["net..w"]}
        """)  # noqa: E501
    assert errors == [
        "a.yaml:5:68: module 'net' has no parameter '0.wieght' (did you mean 'net.0.weight'?)",
        "a.yaml:5:82: wrt names module 'other', which the expression does not call",
        "a.yaml:5:89: wrt names unknown module 'nett' (did you mean 'net'?)",
        "a.yaml:6:63: wrt 'params' means the parameters of the modules the expression "
        "calls, and it calls none",
        "a.yaml:7:68: 'net..w' is not an input or parameter name (names, or dotted parameter "
        "names such as net.0.weight)",
    ]


def test_name_clashes():
    errors = errors_of("""
        functions:
          F: {args: [x], forward: x, backward: {x: grad}}
        modules:
          F: ReLU
          r: ReLU
        checks:
          - {name: a, expr: r(r), inputs: {r: {shape: [2]}}}
        """)
    assert errors == ["a.yaml:4:3: module 'F' has the name of a function",
                      "a.yaml:7:36: input 'r' has the name of a module"]


def test_unknown_module_call_suggests_the_module():
    error = one_error("""
        modules: {net: ReLU}
        checks: [{name: a, expr: nett(x), inputs: {x: {shape: [2]}}}]
        """)
    assert error == "a.yaml:2:26: unknown function 'nett' (did you mean 'net'?)"


def test_python_modules_refused_without_allow_python():
    error = one_error("""
        modules:
          m: {python: "mypkg.ops:Scale", args: [2]}
        checks:
          - {name: a, expr: m(x).sum(), inputs: {x: {shape: [2]}}}
        """, allow_python=False)
    assert error == "a.yaml:2:15: module 'm': python modules are disabled (--no-python)"


def test_python_module_that_is_not_a_module(fixtures_on_path):
    error = one_error("""
        modules:
          m: {python: "mypkg.ops:LegendrePolynomial3"}
        checks:
          - {name: a, expr: m(x).sum(), inputs: {x: {shape: [2]}}}
        """)
    assert error == ("a.yaml:2:15: 'mypkg.ops:LegendrePolynomial3' is not a gradtool.nn.Module "
                     "or torch.nn.Module subclass")


def test_errors_inside_a_module_point_at_the_call():
    _, b = built("""
        modules:
          fc: {Linear: [3, 2]}
        checks:
          - {name: a, expr: fc(x).sum(), inputs: {x: {shape: [2, 4]}}}
        """)
    from gradtool.errors import SpecError
    with pytest.raises(SpecError) as info:
        b.fn(*b.inputs)
    assert str(info.value.location) == "a.yaml:4:21"
    assert info.value.message.startswith("fc(): ")


def test_second_order_and_forward_mode_through_modules():
    _, b = built(NET)
    result = check(b.fn, b.inputs, input_names=b.input_names, gradgrad=True, forward_ad=True)
    assert result.passed
    assert {block.stage for block in result.blocks} >= {"first order", "second order"}


def test_parameter_draws_respect_the_element_cap():
    error = one_error("""
        modules:
          conv: {Conv2d: [1, 1, 20]}
        checks:
          - {name: a, expr: x.sum(), inputs: {x: {shape: [2]}}}
        """, max_elements=100)
    assert error == ("a.yaml:2:18: module 'conv': Conv2d: a parameter would have 400 elements, "
                     "over the limit of 100")
