"""Adding an op is one entry: a toy primitive declared in a module of its own (forward, a VJP
and a JVP, its batching rule, its samples) is checked by the op-table walker in every mode
and batched by gt.vmap, with no other edit (docs/engine.md, "Adding an op")."""

import importlib.util
import pathlib
import sys
import textwrap

import numpy as np
import pytest

import gradtool as gt
from gradtool.engine.primitive import REGISTRY, apply

TOY = '''
import numpy as np

from gradtool.engine import backend as B
from gradtool.engine import batching
from gradtool.engine.primitive import Primitive

# cube(x) = x**3 + {scale} * x; d/dx = 3 x^2 + {scale}
toy_cube = Primitive(
    "toy_cube", "ToyCubeBackward0", lambda x: x * x * x + {scale} * x,
    input_names=("self",), batch=batching.elementwise, delta=batching.delta_elementwise,
    sample=lambda: [((np.linspace(-1.0, 1.5, 6).reshape(2, 3),), {{}})],
    vjp=lambda g, x, out: g * (3 * x * x + {scale}),
    jvp=lambda t, x, out: t * (3 * x * x + {scale}))
'''

HERE = pathlib.Path(__file__).resolve().parent


def _load(path: pathlib.Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def toy_op(tmp_path, request):
    """The toy primitive, registered for this test only (the table is global)."""
    scale = request.param
    path = tmp_path / "toy_ops.py"
    path.write_text(textwrap.dedent(TOY.format(scale=scale)))
    try:
        module = _load(path, "toy_ops")
        yield module.toy_cube, scale
    finally:
        REGISTRY.pop("toy_cube", None)
        sys.modules.pop("toy_ops", None)


@pytest.mark.parametrize("toy_op", [1.0], indirect=True)
def test_a_correct_toy_op_passes_the_walker_in_every_mode(toy_op):
    walker = _load(HERE / "test_op_table.py", "_op_table_walker")
    walker.test_op_table_entry("toy_cube")      # reverse, 2nd order, forward, adjoint, batched


@pytest.mark.parametrize("toy_op", [1.0], indirect=True)
def test_a_toy_op_is_batched_by_its_declared_rule(toy_op):
    prim, scale = toy_op
    batching = _load(HERE.parent / "checker" / "test_vmap.py", "_vmap_walker")
    batching.test_batching_rule_matches_a_loop("toy_cube")
    x = gt.tensor(np.linspace(-1.0, 1.0, 12).reshape(4, 3))
    batched = gt.vmap(lambda row: apply(prim, (row,)))
    np.testing.assert_allclose(batched(x).numpy(), x.numpy() ** 3 + scale * x.numpy())
    assert batched.path == "batched"


def test_a_wrong_vjp_fails_the_walker(tmp_path):
    # the walker is a real check: a toy op whose VJP is off by a factor fails it
    path = tmp_path / "toy_ops.py"
    path.write_text(textwrap.dedent(TOY.format(scale=1.0)).replace(
        "g * (3 * x * x + 1.0)", "g * (2 * x * x + 1.0)"))
    try:
        _load(path, "toy_ops")
        walker = _load(HERE / "test_op_table.py", "_op_table_walker")
        with pytest.raises(AssertionError):
            walker.test_op_table_entry("toy_cube")
    finally:
        REGISTRY.pop("toy_cube", None)
        sys.modules.pop("toy_ops", None)
