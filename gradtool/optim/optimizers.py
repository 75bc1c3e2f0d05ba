"""SGD, Adam, AdamW, RMSprop and Adagrad with PyTorch's exact single-tensor update rules.

Updates run on the parameters' arrays in place (no graph is recorded, as torch's
``@torch.no_grad`` step) and bump their version counters, so a graph that saved a parameter
before the step refuses to backward through the changed value.  The arithmetic follows the
order of torch's ``foreach=False`` kernels (``lerp`` with its two branches, ``addcmul``,
``addcdiv``), so runs started from the same weights follow torch's losses to rounding.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from typing import Any
from collections.abc import Callable, Iterable

import numpy as np

from ..engine.grad_mode import enable_grad
from ..engine.node import type_name
from ..engine.tensor import Tensor, _make, bump_version

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad"]


class _Required:
    def __repr__(self) -> str:
        return "<required parameter>"


required = _Required()


def _check_non_negative(**values: float) -> None:
    """torch's ValueErrors for negative hyper-parameters, in the order given."""
    for name, value in values.items():
        if value < 0.0:
            label = {"lr": "learning rate", "eps": "epsilon value"}.get(name, f"{name} value")
            raise ValueError(f"Invalid {label}: {value}")


class Optimizer:
    """Base class: parameter groups (dicts of params + hyperparameters), per-parameter
    state, ``zero_grad`` and ``state_dict``."""

    def __init__(self, params: Iterable, defaults: dict) -> None:
        self.defaults = defaults
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict] = []
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            f"Tensors or dicts, but got torch.{type_name(params._data)}")
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters with its own hyperparameters (defaults fill the rest)."""
        params = param_group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError("optimizer can only optimize Tensors, but one of the params "
                                f"is {type(p).__name__}")
            if p.grad_fn is not None:
                raise ValueError("can't optimize a non-leaf Tensor")
        group = dict(param_group, params=params)
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError("parameter group didn't specify a value of required "
                                 f"optimization parameter {name}")
            group.setdefault(name, default)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of every parameter (None by default, as torch)."""
        for group in self.param_groups:
            for p in group["params"]:
                grad = p._grad
                if grad is None:
                    continue
                if set_to_none:
                    p._grad = None
                else:
                    if grad.grad_fn is not None:
                        grad.detach_()
                    grad._data[...] = 0
                    bump_version(grad)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every parameter that has a gradient; ``closure`` re-evaluates the
        loss (with grad enabled) and its value is returned."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p._grad is not None:
                    self._update(p, p._grad._data, self.state[p], group)
        return loss

    def _update(self, p: Tensor, grad: np.ndarray, state: dict, group: dict) -> None:
        raise NotImplementedError

    # ---- state dict ---------------------------------------------------------------------
    def state_dict(self) -> dict:
        """{'state': {index: {...}}, 'param_groups': [{..., 'params': [indices]}]}, the
        parameters replaced by their position, as torch."""
        index = {}
        groups = []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            groups.append({**{k: v for k, v in group.items() if k != "params"},
                           "params": ids})
        state = {index[id(p)]: s for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore hyperparameters and per-parameter state saved by ``state_dict``."""
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        by_index = {}
        for saved, group in zip(groups, self.param_groups):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError("loaded state dict contains a parameter group that doesn't "
                                 "match the size of optimizer's group")
            by_index.update(zip(saved["params"], group["params"]))
        self.state = defaultdict(dict)
        for i, s in state_dict["state"].items():
            p = by_index[i]
            self.state[p] = {k: _copy_state(v, p) for k, v in s.items()}
        for saved, group in zip(groups, self.param_groups):
            group.update({k: copy.deepcopy(v) for k, v in saved.items() if k != "params"})

    def __repr__(self) -> str:
        text = type(self).__name__ + " ("
        for i, group in enumerate(self.param_groups):
            text += f"\nParameter Group {i}"
            for key in sorted(group):
                if key != "params":
                    text += f"\n    {key}: {group[key]}"
        return text + "\n)"


def _copy_state(value, param: Tensor):
    if isinstance(value, Tensor):
        data = value._data.copy()
        if data.ndim and data.dtype.kind in "fc" and data.dtype != param._data.dtype:
            data = data.astype(param._data.dtype)
        return _make(data)
    return copy.deepcopy(value)


def _apply(p: Tensor, new: np.ndarray) -> None:
    # write the update into the parameter's own array (optimizers hold the same objects)
    p._data[...] = new
    bump_version(p)


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum (torch's formulation: the
    first step stores the gradient as the buffer), dampening, Nesterov and L2 decay."""

    def __init__(self, params: Iterable, lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False,
                 *, maximize: bool = False) -> None:
        _check_non_negative(lr=lr, momentum=momentum, weight_decay=weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, {"lr": lr, "momentum": momentum, "dampening": dampening,
                                  "weight_decay": weight_decay, "nesterov": nesterov,
                                  "maximize": maximize})

    def _update(self, p: Tensor, grad: np.ndarray, state: dict, group: dict) -> None:
        g = -grad if group["maximize"] else grad
        wd, momentum = group["weight_decay"], group["momentum"]
        if wd != 0:
            g = g + wd * p._data                       # grad.add(param, alpha=wd)
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = _make(np.array(g, copy=True))
            else:
                # buf.mul_(momentum).add_(grad, alpha=1 - dampening)
                buf._data *= momentum
                buf._data += (1 - group["dampening"]) * g
            g = g + momentum * buf._data if group["nesterov"] else buf._data
        _apply(p, p._data + (-group["lr"]) * g)       # param.add_(grad, alpha=-lr)


def _lerp(start: np.ndarray, end: np.ndarray, weight: float) -> np.ndarray:
    """torch.lerp's formula (two branches, for accuracy near either end)."""
    if abs(weight) < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1 - weight)


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction, optional L2 weight decay and AMSGrad;
    ``decoupled_weight_decay=True`` is AdamW."""

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False, *,
                 maximize: bool = False, decoupled_weight_decay: bool = False) -> None:
        _check_non_negative(lr=lr, eps=eps)
        for i in (0, 1):
            if not 0.0 <= betas[i] < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {betas[i]}")
        _check_non_negative(weight_decay=weight_decay)
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps,
                                  "weight_decay": weight_decay, "amsgrad": amsgrad,
                                  "maximize": maximize,
                                  "decoupled_weight_decay": decoupled_weight_decay})

    def _update(self, p: Tensor, grad: np.ndarray, state: dict, group: dict) -> None:
        if not state:
            state["step"] = _make(np.array(0.0))
            state["exp_avg"] = _make(np.zeros_like(p._data))
            state["exp_avg_sq"] = _make(np.zeros_like(p._data))
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = _make(np.zeros_like(p._data))
        g = -grad if group["maximize"] else grad
        lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        state["step"]._data += 1
        step = float(state["step"]._data)
        if wd != 0:
            if group["decoupled_weight_decay"]:
                _apply(p, p._data * (1 - lr * wd))     # param.mul_(1 - lr * wd)
            else:
                g = g + wd * p._data                   # grad.add(param, alpha=wd)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg._data[...] = _lerp(exp_avg._data, g, 1 - beta1)
        # exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        exp_avg_sq._data[...] = exp_avg_sq._data * beta2 + (1 - beta2) * (g * g)
        bias_correction1 = 1 - beta1 ** step
        bias_correction2 = 1 - beta2 ** step
        step_size = lr / bias_correction1
        bias_correction2_sqrt = bias_correction2 ** 0.5
        second = exp_avg_sq._data
        if group["amsgrad"]:
            peak = state["max_exp_avg_sq"]
            np.maximum(peak._data, second, out=peak._data)
            second = peak._data
        denom = np.sqrt(second) / bias_correction2_sqrt + eps
        # param.addcdiv_(exp_avg, denom, value=-step_size)
        _apply(p, p._data + (-step_size) * (exp_avg._data / denom))


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr * wd first."""

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)


class RMSprop(Optimizer):
    """RMSprop (Hinton): divide by a running RMS of the gradients; optional momentum,
    centering (subtract the running mean first) and L2 decay, as torch's kernel."""

    def __init__(self, params: Iterable, lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False, *, maximize: bool = False) -> None:
        _check_non_negative(lr=lr, eps=eps, momentum=momentum, weight_decay=weight_decay,
                            alpha=alpha)
        super().__init__(params, {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps,
                                  "centered": centered, "weight_decay": weight_decay,
                                  "maximize": maximize})

    def _update(self, p: Tensor, grad: np.ndarray, state: dict, group: dict) -> None:
        if not state:
            state["step"] = _make(np.array(0.0))
            state["square_avg"] = _make(np.zeros_like(p._data))
            if group["momentum"] > 0:
                state["momentum_buffer"] = _make(np.zeros_like(p._data))
            if group["centered"]:
                state["grad_avg"] = _make(np.zeros_like(p._data))
        g = -grad if group["maximize"] else grad
        lr, alpha, eps, wd = group["lr"], group["alpha"], group["eps"], group["weight_decay"]
        state["step"]._data += 1
        if wd != 0:
            g = g + wd * p._data                       # grad.add(param, alpha=wd)
        square_avg = state["square_avg"]
        # square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
        square_avg._data[...] = square_avg._data * alpha + (1 - alpha) * (g * g)
        if group["centered"]:
            grad_avg = state["grad_avg"]
            grad_avg._data[...] = _lerp(grad_avg._data, g, 1 - alpha)
            avg = np.sqrt(square_avg._data + (-1) * (grad_avg._data * grad_avg._data))
        else:
            avg = np.sqrt(square_avg._data)
        avg = avg + eps
        if group["momentum"] > 0:
            buf = state["momentum_buffer"]
            buf._data[...] = buf._data * group["momentum"] + g / avg
            _apply(p, p._data + (-lr) * buf._data)     # param.add_(buf, alpha=-lr)
        else:
            _apply(p, p._data + (-lr) * (g / avg))     # param.addcdiv_(grad, avg, value=-lr)


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.): per-coordinate steps shrinking with the summed squared
    gradients; optional learning-rate decay and L2 decay, as torch's kernel."""

    def __init__(self, params: Iterable, lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10, *, maximize: bool = False) -> None:
        _check_non_negative(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                            initial_accumulator_value=initial_accumulator_value, eps=eps)
        super().__init__(params, {"lr": lr, "lr_decay": lr_decay, "eps": eps,
                                  "weight_decay": weight_decay,
                                  "initial_accumulator_value": initial_accumulator_value,
                                  "maximize": maximize})
        for group in self.param_groups:   # torch fills the state at construction
            for p in group["params"]:
                self.state[p]["step"] = _make(np.array(0.0))
                self.state[p]["sum"] = _make(np.full_like(
                    p._data, group["initial_accumulator_value"]))

    def _update(self, p: Tensor, grad: np.ndarray, state: dict, group: dict) -> None:
        g = -grad if group["maximize"] else grad
        state["step"]._data += 1
        step = float(state["step"]._data)
        if group["weight_decay"] != 0:
            g = g + group["weight_decay"] * p._data
        clr = group["lr"] / (1 + (step - 1) * group["lr_decay"])
        total = state["sum"]
        total._data[...] = total._data + g * g        # state_sum.addcmul_(grad, grad)
        std = np.sqrt(total._data) + group["eps"]
        _apply(p, p._data + (-clr) * (g / std))       # param.addcdiv_(grad, std, value=-clr)
