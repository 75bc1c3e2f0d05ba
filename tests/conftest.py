import sys

import numpy as np
import pytest

import gradtool as gt


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
