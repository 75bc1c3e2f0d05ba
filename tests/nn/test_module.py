"""Module: registration by attribute, traversal, state dicts, modes, dtype, repr."""

import copy
import pickle

import numpy as np
import pytest

import gradtool as gt
import gradtool.nn as nn

from .mirror import import_torch


class TwoLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear1 = nn.Linear(4, 3)
        self.act = nn.ReLU()
        self.linear2 = nn.Linear(3, 2)
        self.scale = nn.Parameter(gt.ones(2))
        self.register_buffer("running", gt.zeros(2))
        self.register_buffer("scratch", gt.zeros(1), persistent=False)

    def forward(self, x):
        return self.linear2(self.act(self.linear1(x))) * self.scale


def test_registration_by_attribute():
    m = TwoLayer()
    assert [n for n, _ in m.named_parameters()] == [
        "scale", "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias"]
    assert [n for n, _ in m.named_children()] == ["linear1", "act", "linear2"]
    assert [n for n, _ in m.named_modules()] == ["", "linear1", "act", "linear2"]
    assert [n for n, _ in m.named_buffers()] == ["running", "scratch"]
    assert len(list(m.parameters())) == 5 and len(list(m.modules())) == 4
    assert isinstance(m.scale, nn.Parameter) and m.scale.requires_grad
    assert m.get_submodule("linear1") is m.linear1
    assert m.get_parameter("linear2.bias") is m.linear2.bias
    m.extra = nn.Linear(1, 1)
    m.add_module("more", nn.Tanh())
    m.register_parameter("p", nn.Parameter(gt.zeros(1)))
    assert "extra" in m._modules and "more" in m._modules and "p" in m._parameters
    del m.extra
    assert "extra" not in m._modules
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        m.nope  # noqa: B018  (the attribute access is what raises)


def test_shared_parameters_counted_once():
    lin = nn.Linear(2, 2)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(seq.parameters())) == 2
    assert [n for n, _ in seq.named_modules()] == ["", "0", "1"]
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_registration_errors():
    class Early(nn.Module):
        def __init__(self):
            self.linear = nn.Linear(1, 1)

    with pytest.raises(AttributeError, match="cannot assign module before Module.__init__"):
        Early()
    m = nn.Module()
    with pytest.raises(TypeError, match="cannot assign 'gradtool.Tensor' object to parameter"):
        m.register_parameter("w", gt.zeros(1))
    with pytest.raises(KeyError, match="contain"):
        m.register_parameter("a.b", nn.Parameter(gt.zeros(1)))
    m.w = nn.Parameter(gt.zeros(1))
    with pytest.raises(TypeError, match="cannot assign 'int' as parameter 'w'"):
        m.w = 3
    with pytest.raises(ValueError, match="Cannot assign non-leaf Tensor"):
        m.register_parameter("v", _non_leaf_parameter())
    with pytest.raises(NotImplementedError, match='missing the required "forward"'):
        m(gt.zeros(1))


def _non_leaf_parameter():
    p = nn.Parameter(gt.zeros(1))
    p.grad_fn = (p * 2).grad_fn
    return p


def test_state_dict_round_trip_and_errors():
    a, b = TwoLayer(), TwoLayer()
    state = a.state_dict()
    assert list(state) == ["scale", "running", "linear1.weight", "linear1.bias",
                           "linear2.weight", "linear2.bias"]
    assert not state["linear1.weight"].requires_grad
    weight = b.linear1.weight
    result = b.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert b.linear1.weight is weight        # loaded in place
    np.testing.assert_array_equal(b.linear1.weight._data, a.linear1.weight._data)
    del state["scale"]
    state["bogus"] = gt.zeros(1)
    with pytest.raises(RuntimeError) as info:
        b.load_state_dict(state)
    assert str(info.value) == ('Error(s) in loading state_dict for TwoLayer:\n\tMissing key(s) '
                               'in state_dict: "scale". \n\tUnexpected key(s) in state_dict: '
                               '"bogus". ')
    keys = b.load_state_dict(state, strict=False)
    assert keys.missing_keys == ["scale"] and keys.unexpected_keys == ["bogus"]
    state = a.state_dict()
    state["linear2.bias"] = gt.zeros(5)
    with pytest.raises(RuntimeError, match="size mismatch for linear2.bias"):
        b.load_state_dict(state)


def test_train_eval_zero_grad_apply():
    m = TwoLayer()
    assert m.training and m.linear1.training
    assert m.eval() is m and not m.linear1.training
    m.train()
    assert m.act.training
    m(gt.randn(5, 4)).sum().backward()
    assert m.linear1.weight.grad is not None
    m.zero_grad(set_to_none=False)
    assert np.all(m.linear1.weight.grad._data == 0)
    m.zero_grad()
    assert m.linear1.weight.grad is None
    seen = []
    m.apply(lambda mod: seen.append(type(mod).__name__))
    assert seen == ["Linear", "ReLU", "Linear", "TwoLayer"]
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())


def test_dtype_conversion_keeps_parameter_objects():
    m = TwoLayer()
    w = m.linear1.weight
    assert m.float() is m and w.dtype == gt.float32 and m.linear1.weight is w
    assert m.running.dtype == gt.float32
    assert m(gt.randn(2, 4).float()).dtype == gt.float32
    m.to(gt.float64)
    assert w.dtype == gt.float64
    m.double()
    assert w.dtype == gt.float64


def test_copy_and_pickle():
    m = TwoLayer()
    clone = copy.deepcopy(m)
    assert clone.linear1.weight is not m.linear1.weight
    assert isinstance(clone.linear1.weight, nn.Parameter)
    np.testing.assert_array_equal(clone.linear1.weight._data, m.linear1.weight._data)
    again = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(again.linear2.bias._data, m.linear2.bias._data)


def test_repr_matches_torch():
    model = nn.Sequential(nn.Linear(20, 10), nn.ReLU(), nn.Linear(10, 5, bias=False),
                          nn.Sequential(nn.Conv2d(1, 2, 3, stride=2, padding=1), nn.Tanh()),
                          nn.MaxPool2d(2), nn.AdaptiveAvgPool2d((1, 1)), nn.Dropout(0.2),
                          nn.Flatten(), nn.Embedding(10, 3), nn.Sigmoid(), nn.MSELoss())
    expected = """Sequential(
  (0): Linear(in_features=20, out_features=10, bias=True)
  (1): ReLU()
  (2): Linear(in_features=10, out_features=5, bias=False)
  (3): Sequential(
    (0): Conv2d(1, 2, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))
    (1): Tanh()
  )
  (4): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
  (5): AdaptiveAvgPool2d(output_size=(1, 1))
  (6): Dropout(p=0.2, inplace=False)
  (7): Flatten(start_dim=1, end_dim=-1)
  (8): Embedding(10, 3)
  (9): Sigmoid()
  (10): MSELoss()
)"""
    assert repr(model) == expected
    torch = import_torch()
    tn = torch.nn
    ref = tn.Sequential(tn.Linear(20, 10), tn.ReLU(), tn.Linear(10, 5, bias=False),
                        tn.Sequential(tn.Conv2d(1, 2, 3, stride=2, padding=1), tn.Tanh()),
                        tn.MaxPool2d(2), tn.AdaptiveAvgPool2d((1, 1)), tn.Dropout(0.2),
                        tn.Flatten(), tn.Embedding(10, 3), tn.Sigmoid(), tn.MSELoss())
    assert repr(ref) == expected


def test_parameter_repr():
    assert repr(nn.Parameter(gt.tensor([1.0, 2.0]))) == \
        "Parameter containing:\ntensor([1., 2.], requires_grad=True)"


def test_sequential_container():
    layers = [nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)]
    seq = nn.Sequential(*layers)
    assert len(seq) == 3 and seq[0] is layers[0] and seq[-1] is layers[2]
    assert list(seq) == layers
    head = seq[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[1] is layers[1]
    seq.append(nn.Sigmoid())
    assert len(seq) == 4
    x = gt.randn(5, 2)
    np.testing.assert_allclose(seq(x)._data, layers[2](layers[1](layers[0](x))).sigmoid()._data)
    with pytest.raises(IndexError):
        seq[7]
    del seq[1]
    assert [n for n, _ in seq.named_children()] == ["0", "1", "2"]
    from collections import OrderedDict
    named = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 2)), ("act", nn.Tanh())]))
    assert named.fc is named[0]
    mlist = nn.ModuleList([nn.Linear(1, 1) for _ in range(3)])
    assert len(list(mlist.parameters())) == 6 and len(mlist) == 3
    mdict = nn.ModuleDict({"a": nn.Linear(1, 1)})
    assert "a" in mdict and len(list(mdict.parameters())) == 2


def test_clip_grad_and_vector_utils_match_torch():
    torch = import_torch()
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    ref = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(),
                              torch.nn.Linear(4, 2)).double()
    ref.load_state_dict({k: torch.tensor(v._data.copy()) for k, v in
                         model.state_dict().items()})
    x = gt.randn(5, 3)
    (model(x) ** 2).sum().backward()
    (ref(torch.tensor(x._data)) ** 2).sum().backward()
    for norm_type in (2.0, float("inf")):
        total = nn.utils.clip_grad_norm_(model.parameters(), 0.5, norm_type=norm_type)
        total_t = torch.nn.utils.clip_grad_norm_(ref.parameters(), 0.5, norm_type=norm_type)
        np.testing.assert_allclose(total.item(), total_t.item(), rtol=1e-12)
    nn.utils.clip_grad_value_(model.parameters(), 0.01)
    torch.nn.utils.clip_grad_value_(ref.parameters(), 0.01)
    for p, pt in zip(model.parameters(), ref.parameters()):
        np.testing.assert_allclose(p.grad._data, pt.grad.numpy(), rtol=1e-12)
    flat = nn.utils.parameters_to_vector(model.parameters())
    assert flat.shape == (3 * 4 + 4 + 4 * 2 + 2,)
    nn.utils.vector_to_parameters(flat * 0 + 1, model.parameters())
    assert all(np.all(p._data == 1) for p in model.parameters())
