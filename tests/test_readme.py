"""The README's "Reusing the engine" example runs as written and does what its comments say."""
import os
import re

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _example():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    section = text[text.index("## Reusing the engine"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_reusing_the_engine_example_runs_and_trains():
    scope = {}
    exec(compile(_example(), "README.md: Reusing the engine", "exec"), scope)
    assert scope["batch"].x_support.shape == (25, 10, 1)
    assert [W.shape for W, _ in scope["theta"]] == [(1, 40), (40, 40), (40, 1)]
    assert [W.shape for W, _ in scope["theta_prime"]] == [(25, 1, 40), (25, 40, 40), (25, 40, 1)]  # per task
    loss = scope["history"].loss
    assert len(loss) == 100 and np.all(np.isfinite(loss))
    assert np.mean(loss[-10:]) < np.mean(loss[:10])   # meta-training lowered the post-adaptation loss
