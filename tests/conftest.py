import numpy as np
import pytest

import gradtool as gt


@pytest.fixture(autouse=True)
def _seed():
    gt.manual_seed(0)
    np.random.seed(0)
    yield
