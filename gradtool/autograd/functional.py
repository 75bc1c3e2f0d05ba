"""``gt.autograd.functional`` (also ``gt.functional``): vjp, jvp, jacobian, hessian, vhp, hvp."""

from ..engine.functional import hessian, hvp, jacobian, jvp, vhp, vjp

__all__ = ["vjp", "jvp", "jacobian", "hessian", "vhp", "hvp"]
