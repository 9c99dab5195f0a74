"""The operations, shared by `Client` and `Engine`: each becomes one call of `_run`."""
from __future__ import annotations

from typing import Any, Dict, Literal, Optional, Union

import numpy as np
import numpy.typing as npt

ArrayLike = npt.ArrayLike
Matrix = npt.NDArray[np.float64]
Result = Union[Matrix, float]

#: Matrix params of each operation (besides ``data``), in the order the engine's schemas list them.
MATRIX_PARAMS: Dict[str, tuple[str, ...]] = {
    "multiply": ("data",), "add": ("data",), "matmul": ("data", "matrix_b"), "transpose": ("data",),
    "elementwise_add": ("data", "other"), "elementwise_sub": ("data", "other"),
    "elementwise_mul": ("data", "other"), "elementwise_div": ("data", "other"),
    "conv2d": ("data", "kernel"), "max_pool2d": ("data",), "normalize": ("data",), "reshape": ("data",),
    "sum": ("data",), "mean": ("data",), "min": ("data",), "max": ("data",),
}

#: Operations whose result has the shape of ``data``: a 1-D input gives a 1-D result.
SHAPE_PRESERVING = frozenset({"multiply", "add", "elementwise_add", "elementwise_sub", "elementwise_mul",
                              "elementwise_div", "normalize"})


class ForziumError(Exception):
    """An error answered by the gateway or an engine.

    ``status`` is the HTTP status (gateway) or the JSON-RPC error code (engine); ``message`` the explanation."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def as_matrix(value: ArrayLike, name: str) -> Matrix:
    """``value`` as a C-contiguous little-endian float64 matrix: a 1-D array becomes one row (1×n)."""
    array = np.asarray(value, dtype="<f8")
    if array.ndim == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D, got {array.ndim} dimensions")
    if array.size == 0:
        raise ValueError(f"{name} must not be empty")
    return np.ascontiguousarray(array)


class Operations:
    """Every Forzium operation as a method taking and returning NumPy arrays.

    Matrices may be anything ``numpy.asarray`` accepts (float64 is sent as is; other dtypes are converted). A 1-D
    array is one row; for the element-wise operations (``multiply``, ``add``, ``elementwise_*``, ``normalize``) the
    result is then 1-D too. ``sum``/``mean``/``min``/``max`` return a ``float`` with ``axis=None``, else a 2-D array
    (NumPy keepdims: 1×cols for axis 0, rows×1 for axis 1)."""

    def _run(self, operation: str, matrices: Dict[str, Matrix], params: Dict[str, Any]) -> Result:
        raise NotImplementedError

    def compute(self, operation: str, data: ArrayLike, **params: Any) -> Result:
        """Runs ``operation`` on ``data``; matrix params (``matrix_b``, ``other``, ``kernel``) and scalar params by
        keyword, as in the JSON API."""
        if operation not in MATRIX_PARAMS:
            raise ValueError(f"unknown operation {operation!r}; known: {', '.join(MATRIX_PARAMS)}")
        one_d = np.ndim(data) == 1
        matrices: Dict[str, Matrix] = {"data": as_matrix(data, "data")}
        for name in MATRIX_PARAMS[operation][1:]:
            if name not in params:
                raise TypeError(f"{operation} needs {name}")
            one_d = one_d and np.ndim(params[name]) == 1
            matrices[name] = as_matrix(params.pop(name), name)
        result = self._run(operation, matrices, {k: v for k, v in params.items() if v is not None})
        if one_d and operation in SHAPE_PRESERVING and isinstance(result, np.ndarray):
            return result.reshape(-1)
        return result

    def _matrix(self, operation: str, data: ArrayLike, **params: Any) -> Matrix:
        result = self.compute(operation, data, **params)
        assert isinstance(result, np.ndarray)
        return result

    def multiply(self, data: ArrayLike, factor: float = 1.0) -> Matrix:
        """``data * factor``."""
        return self._matrix("multiply", data, factor=factor)

    def add(self, data: ArrayLike, addend: float = 0.0) -> Matrix:
        """``data + addend``."""
        return self._matrix("add", data, addend=addend)

    def matmul(self, data: ArrayLike, matrix_b: ArrayLike) -> Matrix:
        """Matrix product ``data @ matrix_b``."""
        return self._matrix("matmul", data, matrix_b=matrix_b)

    def transpose(self, data: ArrayLike) -> Matrix:
        """``data.T`` (a 1-D input, one row, gives a column)."""
        return self._matrix("transpose", data)

    def elementwise_add(self, data: ArrayLike, other: ArrayLike) -> Matrix:
        return self._matrix("elementwise_add", data, other=other)

    def elementwise_sub(self, data: ArrayLike, other: ArrayLike) -> Matrix:
        return self._matrix("elementwise_sub", data, other=other)

    def elementwise_mul(self, data: ArrayLike, other: ArrayLike) -> Matrix:
        return self._matrix("elementwise_mul", data, other=other)

    def elementwise_div(self, data: ArrayLike, other: ArrayLike) -> Matrix:
        """``data / other`` (division by zero per IEEE 754)."""
        return self._matrix("elementwise_div", data, other=other)

    def conv2d(self, data: ArrayLike, kernel: ArrayLike) -> Matrix:
        """"Valid" 2-D cross-correlation, stride 1."""
        return self._matrix("conv2d", data, kernel=kernel)

    def max_pool2d(self, data: ArrayLike, size: int) -> Matrix:
        """Maximum of non-overlapping ``size``×``size`` windows (``size`` divides both dimensions)."""
        return self._matrix("max_pool2d", data, size=size)

    def normalize(self, data: ArrayLike, mode: Literal["minmax", "l2"] = "minmax") -> Matrix:
        """Min-max scaling to [0, 1], or division by the L2 norm, over the whole matrix."""
        return self._matrix("normalize", data, mode=mode)

    def reshape(self, data: ArrayLike, rows: int, cols: int) -> Matrix:
        """Row-major reshape to ``rows``×``cols``."""
        return self._matrix("reshape", data, rows=rows, cols=cols)

    def sum(self, data: ArrayLike, axis: Optional[int] = None) -> Result:
        return self.compute("sum", data, axis=axis)

    def mean(self, data: ArrayLike, axis: Optional[int] = None) -> Result:
        return self.compute("mean", data, axis=axis)

    def min(self, data: ArrayLike, axis: Optional[int] = None) -> Result:
        """Minimum (NaN propagates)."""
        return self.compute("min", data, axis=axis)

    def max(self, data: ArrayLike, axis: Optional[int] = None) -> Result:
        """Maximum (NaN propagates)."""
        return self.compute("max", data, axis=axis)
