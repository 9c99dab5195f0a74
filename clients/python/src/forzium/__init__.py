"""Forzium from Python with NumPy arrays.

- `Client`: the gateway over HTTP — the Open Inference Protocol (v2) with binary tensors by default, JSON
  ``/compute`` as the fallback (``protocol="json"``).
- `Engine`: a local engine executable over a pipe (JSON-RPC 2.0 lines, matrices in binary form).

Both have the same methods: ``matmul``, ``multiply``, ``add``, ``transpose``, ``elementwise_add``/``_sub``/``_mul``/
``_div``, ``conv2d``, ``max_pool2d``, ``normalize``, ``reshape``, ``sum``, ``mean``, ``min``, ``max``, and
``compute(operation, data, **params)``."""
from ._client import Client
from ._engine import Engine, find_engine
from ._operations import ForziumError, Operations

__all__ = ["Client", "Engine", "ForziumError", "Operations", "find_engine"]
__version__ = "1.0.0"
