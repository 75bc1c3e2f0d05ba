"""sort / argsort / topk against torch: descending order for unsigned and bool tensors, NaN
placement, stable ties, gradients."""

import numpy as np
import pytest

import gradtool as gt

torch = pytest.importorskip("torch")

ARRAYS = [
    np.array([0, 1, 2], np.uint8),
    np.array([200, 3, 255, 0], np.uint8),
    np.array([True, False, True, False]),
    np.array([1.0, np.nan, 3.0, 2.0]),
    np.array([2.0, 2.0, 1.0, np.nan, 2.0, -np.inf]),
    np.array([[3, 1, 2, 1], [0, 0, 5, 5]]),
    np.array([[0.5, -1.0], [np.nan, 0.0], [7.0, 7.0]], np.float32),
]


@pytest.mark.parametrize("index", range(len(ARRAYS)))
@pytest.mark.parametrize("descending", [False, True])
def test_sort_matches_torch(index, descending):
    data = ARRAYS[index]
    for dim in range(-1, data.ndim - 1) if data.ndim > 1 else (-1,):
        want = torch.sort(torch.tensor(data), dim=dim, descending=descending, stable=True)
        got = gt.sort(gt.tensor(data), dim=dim, descending=descending)
        np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())
        np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
        np.testing.assert_array_equal(
            gt.argsort(gt.tensor(data), dim=dim, descending=descending).numpy(),
            torch.argsort(torch.tensor(data), dim=dim, descending=descending,
                          stable=True).numpy())


def test_topk_values_and_gradient_match_torch():
    data = np.array([[0.3, -1.2, 2.5, 0.9], [1.1, 4.0, -0.5, 0.2]])
    xt = torch.tensor(data, requires_grad=True)
    xg = gt.tensor(data, requires_grad=True)
    for largest in (True, False):
        want = torch.topk(xt, 2, dim=1, largest=largest)
        got = gt.topk(xg, 2, dim=1, largest=largest)
        np.testing.assert_array_equal(got.values.detach().numpy(), want.values.detach().numpy())
        np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
        (want.values * 3).sum().backward()
        (got.values * 3).sum().backward()
    np.testing.assert_allclose(xg.grad.numpy(), xt.grad.numpy())
    assert gt.gradcheck(lambda x: gt.sort(x, dim=1, descending=True).values, (xg,))
