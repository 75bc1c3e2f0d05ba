"""What a gradient check found: one :class:`BlockResult` per (output, input) Jacobian block,
gathered in a :class:`CheckResult` (JSON-serializable with ``to_dict``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class BlockResult:
    """The comparison of one Jacobian block d output / d input."""

    output: int
    input: int
    output_name: str
    input_name: str
    passed: bool
    kind: str = "ok"               # ok, mismatch, sign, scale, transposed, missing, spurious,
    #                                kink, unstable, nan, nondeterministic, forward_ad, gradgrad,
    #                                and the causes: factor_pattern, diagonal, wrong_tensor,
    #                                reduction, evaluation_point, region, term,
    #                                missing_factor
    diagnosis: str = ""
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    worst_index: tuple | None = None      # (output element index, input element index)
    numerical_value: float | None = None
    analytical_value: float | None = None
    n_evals: int = 0
    wall_time: float = 0.0
    mode: str = "full"
    path: str = "batched"
    stage: str = "first order"     # "first order", "second order", "forward AD"
    numerical: np.ndarray | None = field(default=None, repr=False)   # (out size, in size)
    analytical: np.ndarray | None = field(default=None, repr=False)
    factor: float | None = None    # the c of "analytical = c * numerical"
    elements: list = field(default_factory=list)   # input elements named by the diagnosis
    evidence: dict = field(default_factory=dict)   # the numbers behind a named cause

    @property
    def name(self) -> str:
        return f"d {self.output_name} / d {self.input_name}"

    def to_dict(self, jacobians: bool = False) -> dict:
        d = {
            "output": self.output, "input": self.input, "output_name": self.output_name,
            "input_name": self.input_name, "stage": self.stage, "passed": self.passed,
            "kind": self.kind, "diagnosis": self.diagnosis,
            "max_abs_error": _num(self.max_abs_error), "max_rel_error": _num(self.max_rel_error),
            "worst_index": None if self.worst_index is None else
            [list(map(int, i)) for i in self.worst_index],
            "numerical_value": _num(self.numerical_value),
            "analytical_value": _num(self.analytical_value),
            "n_evals": self.n_evals, "wall_time": self.wall_time, "mode": self.mode,
            "path": self.path, "factor": _num(self.factor),
            "elements": [list(map(int, e)) for e in self.elements],
            "evidence": _plain(self.evidence),
        }
        if jacobians:
            d["numerical"] = None if self.numerical is None else self.numerical.tolist()
            d["analytical"] = None if self.analytical is None else self.analytical.tolist()
        return d

    def summary(self) -> str:
        head = f"{self.stage}: {self.name}"
        if self.passed:
            return f"{head}: ok (max abs error {self.max_abs_error:.3g}, {self.mode}, " \
                   f"{self.path})"
        text = f"{head}: FAILED ({self.kind}): {self.diagnosis}"
        if self.worst_index is not None and self.numerical_value is not None:
            o, i = self.worst_index
            text += (f"\n    worst element: {self.output_name}{_idx(o)} wrt "
                     f"{self.input_name}{_idx(i)}: numerical "
                     f"{self.numerical_value:.6g}, analytical {self.analytical_value:.6g} "
                     f"(abs error {self.max_abs_error:.3g}, rel error "
                     f"{self.max_rel_error:.3g})")
        return text


def _idx(index) -> str:
    return "[" + ", ".join(str(int(i)) for i in index) + "]"


def _plain(value):
    """Evidence as JSON: numbers as floats (NaN/Inf as strings), lists and dicts walked."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (bool, str)) or value is None:
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    return _num(value)


def _num(x):
    if x is None:
        return None
    x = float(x)
    if np.isnan(x) or np.isinf(x):
        return str(x)
    return x


@dataclass
class CheckResult:
    """The outcome of :func:`gradtool.check`."""

    passed: bool
    blocks: list = field(default_factory=list)
    problems: list = field(default_factory=list)   # failures not tied to a block (text)
    method: str = "central"
    mode: str = "full"
    eps: float = 1e-6
    atol: float = 1e-5
    rtol: float = 1e-3
    seed: int = 0
    input_names: list = field(default_factory=list)
    n_evals: int = 0
    wall_time: float = 0.0
    path: str = "batched"
    warnings: list = field(default_factory=list)
    inputs: list = field(default_factory=list, repr=False)   # numpy copies, for save_inputs

    @property
    def failed(self) -> bool:
        return not self.passed

    def __bool__(self) -> bool:
        return self.passed

    @property
    def failures(self) -> list:
        return [b for b in self.blocks if not b.passed]

    def save_inputs(self, path) -> None:
        """Save the checked inputs (and the seed) to ``.npz``, to reproduce a failure."""
        arrays = {name: np.asarray(a) for name, a in zip(self.input_names, self.inputs)
                  if a is not None}
        np.savez(path, __seed__=np.int64(self.seed), **arrays)

    def to_dict(self, jacobians: bool = False) -> dict:
        return {
            "passed": self.passed, "method": self.method, "mode": self.mode, "eps": self.eps,
            "atol": self.atol, "rtol": self.rtol, "seed": self.seed,
            "input_names": list(self.input_names), "n_evals": self.n_evals,
            "wall_time": self.wall_time, "path": self.path, "problems": list(self.problems),
            "warnings": list(self.warnings),
            "blocks": [b.to_dict(jacobians) for b in self.blocks],
        }

    def report(self) -> str:
        """The human-readable report (what failed, where, by how much)."""
        lines = [f"gradient check {'passed' if self.passed else 'FAILED'} "
                 f"(method {self.method}, mode {self.mode}, eps {self.eps:g}, atol "
                 f"{self.atol:g}, rtol {self.rtol:g}; {self.n_evals} function evaluations, "
                 f"{self.path})"]
        for p in self.problems:
            lines.append("  " + p)
        for b in self.blocks:
            if not b.passed:
                lines.append("  " + b.summary())
        return "\n".join(lines)

    __str__ = report
