import sys

import numpy as np
import pytest

import gradtool as gt

try:    # the same examples in every run, whatever order and seed pytest-randomly picks
    from hypothesis import settings as _hypothesis_settings
except ImportError:
    pass
else:
    _hypothesis_settings.register_profile("gradtool", derandomize=True, deadline=None)
    _hypothesis_settings.load_profile("gradtool")


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same random state: gradtool's, numpy's and, when a test
    module imported it, torch's."""
    gt.manual_seed(0)
    np.random.seed(0)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(0)
    yield
