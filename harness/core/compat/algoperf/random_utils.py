"""`algoperf.random_utils` for PyTorch submissions: AlgoPerf's NumPy seed functions (harness/core/prng.py)."""

from harness.core.prng import numpy_fold_in as fold_in  # noqa: F401  (re-exported for AlgoPerf submissions)
from harness.core.prng import numpy_key as PRNGKey  # noqa: F401,N812
from harness.core.prng import numpy_split as split  # noqa: F401
