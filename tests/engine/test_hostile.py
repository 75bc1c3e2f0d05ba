"""Hostile use of the engine: wrong argument types, bad sizes and indices must raise clear
exceptions of torch's types (TypeError, IndexError, RuntimeError, ValueError), never an
AttributeError or a numpy message from inside gradtool."""

import numpy as np
import pytest

import gradtool as gt


@pytest.mark.parametrize("other", ["a", None, [1.0, 2.0], (1, 2), object()])
@pytest.mark.parametrize("op", ["+", "-", "*", "/"])
def test_arithmetic_with_a_non_number_is_a_type_error(op, other):
    """Python's TypeError, as with torch (``x * [1, 2]`` is the list asked to repeat itself
    x times: "only integer tensors ... can be converted to an index")."""
    x = gt.ones(2)
    with pytest.raises(TypeError, match=r"unsupported operand type\(s\) for |"
                                        r"converted to an index"):
        {"+": lambda: x + other, "-": lambda: x - other, "*": lambda: x * other,
         "/": lambda: x / other}[op]()


def test_arithmetic_still_takes_numbers_arrays_and_tensors():
    x = gt.tensor([1.0, 2.0])
    for other in (2, 2.5, True, np.float64(2.0), np.int64(3), np.array([1.0, 2.0]),
                  gt.tensor(2.0)):
        assert (x + other).shape == (2,)
        assert (other * x).shape == (2,)


@pytest.mark.parametrize("size", [(2.5,), (2, "a"), ((2, None),)])
@pytest.mark.parametrize("factory", ["zeros", "ones", "randn", "rand"])
def test_factory_sizes_must_be_integers(factory, size):
    with pytest.raises(TypeError, match="must be tuple of ints"):
        getattr(gt, factory)(*size)


def test_linear_with_a_float_size_is_a_type_error():
    with pytest.raises(TypeError, match="must be tuple of ints"):
        gt.nn.Linear(2.5, 2)


def test_factory_sizes_take_sizes_and_0d_integer_tensors():
    assert gt.zeros(gt.Size([2, 3])).shape == (2, 3)
    assert gt.randn(gt.ones(2, 3).shape).shape == (2, 3)
    assert gt.zeros(gt.tensor(2)).shape == (2,)
    assert gt.full([2], 1.5).tolist() == [1.5, 1.5]


@pytest.mark.parametrize("data, kind, message", [
    ("abc", TypeError, "new\\(\\): invalid data type 'str'"),
    (None, RuntimeError, "Could not infer dtype of NoneType"),
    ({"a": 1}, RuntimeError, "Could not infer dtype of dict"),
])
def test_tensor_of_unsupported_data(data, kind, message):
    with pytest.raises(kind, match=message):
        gt.tensor(data)


@pytest.mark.parametrize("index, message", [
    (1.5, "only integers, slices"),
    (gt.tensor([5]), "index 5 is out of bounds for dimension 0 with size 3"),
    (5, "out of bounds"),
])
def test_bad_indices_are_index_errors(index, message):
    with pytest.raises(IndexError, match=message):
        gt.ones(3)[index]


def test_permute_with_repeated_dims():
    with pytest.raises(RuntimeError, match="permute\\(\\): duplicate dims are not allowed."):
        gt.ones(2, 3).permute(0, 0)


def test_cat_of_nothing_is_a_value_error():
    with pytest.raises(ValueError, match="expected a non-empty list of Tensors"):
        gt.cat([])


def test_grad_of_a_non_tensor_input():
    x = gt.ones(1, requires_grad=True)
    with pytest.raises(RuntimeError, match="all inputs have to be Tensors or GradientEdges, "
                                           "but got float"):
        gt.autograd.grad(x.sum(), [1.0])


def test_assigning_a_grad_of_another_size_or_dtype():
    x = gt.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="attempting to assign a gradient of size '\\[3\\]' "
                                           "to a tensor of size '\\[2\\]'"):
        x.grad = gt.ones(3)
    with pytest.raises(RuntimeError, match="attempting to assign a gradient with dtype "
                                           "'float' to a tensor with grad_dtype 'Double'"):
        x.grad = gt.ones(2, dtype=gt.float32)
    with pytest.raises(TypeError):
        x.grad = 3


def test_deep_graphs_and_nan_flow_through_backward():
    x = gt.ones(1, requires_grad=True)
    y = x
    for _ in range(20000):
        y = y * 1.0001
    y.sum().backward()
    assert np.isclose(x.grad.item(), 1.0001 ** 20000)
    z = gt.tensor([float("nan")], requires_grad=True)
    (z * 2).sum().backward()
    assert z.grad.tolist() == [2.0]
