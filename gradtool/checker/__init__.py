"""The gradient checker: numerical against analytical Jacobians, with a diagnosis.

``check`` returns a :class:`CheckResult`; ``gradcheck`` and ``gradgradcheck`` are
``torch.autograd.gradcheck``/``gradgradcheck`` (True, or a ``GradcheckError`` carrying the
report).
"""

from .gradcheck import ComplexStepError, check, gradcheck, gradgradcheck
from .result import BlockResult, CheckResult

__all__ = ["gradcheck", "gradgradcheck", "check", "CheckResult", "BlockResult",
           "ComplexStepError"]
