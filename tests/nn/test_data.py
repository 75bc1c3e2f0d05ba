"""TensorDataset and DataLoader: lengths, batching, seeded shuffling, collation."""

import numpy as np
import pytest

import gradtool as gt
from gradtool.data import DataLoader, TensorDataset, default_collate, random_split
import gradtool.utils.data as utils_data


def _dataset(n=10):
    return TensorDataset(gt.arange(n * 2.0).reshape(n, 2), gt.arange(n))


def test_tensor_dataset():
    ds = _dataset()
    assert len(ds) == 10
    x, y = ds[3]
    assert x.tolist() == [6.0, 7.0] and y.item() == 3
    with pytest.raises(AssertionError, match="Size mismatch"):
        TensorDataset(gt.zeros(3), gt.zeros(4))
    assert utils_data.DataLoader is DataLoader


@pytest.mark.parametrize("batch_size, drop_last, sizes", [
    (4, False, [4, 4, 2]), (4, True, [4, 4]), (5, False, [5, 5]), (1, False, [1] * 10),
    (16, False, [10]), (16, True, [])])
def test_len_is_number_of_batches(batch_size, drop_last, sizes):
    loader = DataLoader(_dataset(), batch_size=batch_size, drop_last=drop_last)
    assert len(loader) == len(sizes)
    assert [x.shape[0] for x, _ in loader] == sizes


def test_batches_are_stacked_in_order_without_shuffle():
    batches = list(DataLoader(_dataset(), batch_size=4))
    x, y = batches[0]
    assert x.shape == (4, 2) and y.tolist() == [0, 1, 2, 3]
    assert batches[-1][1].tolist() == [8, 9]


def test_shuffle_is_seeded():
    def order(loader):
        return [int(i) for _, y in loader for i in y.tolist()]
    a = DataLoader(_dataset(), batch_size=3, shuffle=True,
                   generator=gt.Generator().manual_seed(7))
    b = DataLoader(_dataset(), batch_size=3, shuffle=True,
                   generator=gt.Generator().manual_seed(7))
    first = order(a)
    assert first == order(b) and sorted(first) == list(range(10))
    assert first != list(range(10))
    assert order(a) != first                  # a new permutation every epoch
    gt.manual_seed(3)
    c = order(DataLoader(_dataset(), batch_size=3, shuffle=True))
    gt.manual_seed(3)
    assert order(DataLoader(_dataset(), batch_size=3, shuffle=True)) == c


def test_default_collate_structures():
    batch = [{"x": gt.tensor([1.0, 2.0]), "n": 1, "f": 0.5, "name": "a"},
             {"x": gt.tensor([3.0, 4.0]), "n": 2, "f": 1.5, "name": "b"}]
    out = default_collate(batch)
    assert out["x"].shape == (2, 2) and out["n"].dtype == gt.int64
    assert out["f"].dtype == gt.float64 and out["name"] == ["a", "b"]
    pairs = default_collate([(np.zeros(2), 1), (np.ones(2), 0)])
    assert pairs[0].shape == (2, 2) and pairs[1].tolist() == [1, 0]
    loader = DataLoader(list(range(5)), batch_size=2, collate_fn=lambda b: sum(b))
    assert list(loader) == [1, 5, 4]
    assert list(DataLoader(list(range(3)), batch_size=None)) == [0, 1, 2]
    with pytest.raises(ValueError, match="positive integer"):
        DataLoader(_dataset(), batch_size=0)


def test_random_split():
    parts = random_split(_dataset(), [7, 3], generator=gt.Generator().manual_seed(0))
    assert [len(p) for p in parts] == [7, 3]
    seen = sorted(int(p[i][1]) for p in parts for i in range(len(p)))
    assert seen == list(range(10))
    assert [len(p) for p in random_split(_dataset(), [0.5, 0.5])] == [5, 5]
