"""The spec language's allow-list: one written-out table, the same as the documented list."""

import re
from pathlib import Path

import numpy as np
import pytest

import gradtool as gt
from gradtool.engine import ops
from gradtool.engine.tensor import Tensor
from gradtool.errors import SpecError
from gradtool.spec import allowed, evaluate_program

DOCS = Path(__file__).resolve().parents[2] / "docs" / "spec.md"


def _documented(after: str) -> set[str]:
    """The names of the first ```text block after the line starting with ``after``."""
    text = DOCS.read_text(encoding="utf-8")
    at = text.index(after)
    block = re.search(r"```text\n(.*?)```", text[at:], re.S)
    return set(block.group(1).split())


def test_the_function_table_is_the_documented_list():
    assert set(allowed.FUNCTIONS) == _documented("**Built-in functions**")


def test_the_method_tables_are_the_documented_lists():
    assert allowed.ATTRIBUTES == _documented("Attributes:")
    assert allowed.METHODS == _documented("Methods:")


def test_each_name_is_the_engine_function_of_that_name():
    assert [name for name, fn in allowed.FUNCTIONS.items() if fn is not getattr(ops, name)] == []


def test_attributes_are_properties_and_methods_are_methods_of_tensor():
    import inspect
    for name in allowed.ATTRIBUTES - {"requires_grad"}:     # requires_grad: a slot
        assert isinstance(inspect.getattr_static(Tensor, name), property), name
    for name in allowed.METHODS:
        assert callable(inspect.getattr_static(Tensor, name, None)), name
    assert not any(name.endswith("_") for name in allowed.METHODS)     # no in-place method


@pytest.mark.parametrize("source", ['factory_shape("zeros", [2])', "scalar_type_name(x)",
                                    "isnan(x)", "narrow(x, 0, 0, 1)", "get_default_dtype()"])
def test_engine_helpers_and_names_outside_the_table_are_unknown_functions(source):
    name = source.split("(")[0]
    with pytest.raises(SpecError, match=f"unknown function '{name}'"):
        evaluate_program(source, {"x": gt.tensor(np.ones(2))})


def test_the_package_face_does_not_export_engine_helpers():
    assert not hasattr(gt, "factory_shape") and not hasattr(gt, "scalar_type_name")


def test_every_name_is_a_torch_name():
    torch = pytest.importorskip("torch")
    numpy_spellings = {"expand_dims"}      # numpy's name for unsqueeze
    places = (torch, torch.nn.functional, torch.linalg, torch.Tensor)
    assert [name for name in allowed.FUNCTIONS if name not in numpy_spellings
            and not any(hasattr(place, name) for place in places)] == []
    # torch has these as functions only (torch.rsub, F.softplus); specs keep the method form
    assert sorted(name for name in allowed.TENSOR_METHODS
                  if not hasattr(torch.Tensor, name)) == ["rsub", "softplus"]
