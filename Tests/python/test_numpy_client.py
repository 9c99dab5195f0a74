"""The NumPy client package (clients/python, issue 11 part 3) against the real gateway and engines: every operation
through `forzium.Client` (binary v2 and JSON /compute) and `forzium.Engine` (both engine executables over a pipe),
checked against NumPy; 1-D inputs; non-finite values; errors; mypy --strict; and the README's Python section run as
written."""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import BIN_DIR, REPO, Gateway

CLIENT_SRC = REPO / "clients" / "python" / "src"
sys.path.insert(0, str(CLIENT_SRC))  # the package as it is in this tree (scripts/install-deps.sh also pip-installs it)
import forzium  # noqa: E402


@pytest.fixture(scope="module")
def gateway():
    g = Gateway()
    yield g
    g.stop()


def reference(operation, a, **p):
    """NumPy's answer for each operation."""
    if operation == "conv2d":
        k = p["kernel"]
        rows, cols = a.shape[0] - k.shape[0] + 1, a.shape[1] - k.shape[1] + 1
        return np.array([[np.sum(a[i:i + k.shape[0], j:j + k.shape[1]] * k) for j in range(cols)] for i in range(rows)])
    if operation == "max_pool2d":
        s = p["size"]
        return a.reshape(a.shape[0] // s, s, a.shape[1] // s, s).max(axis=(1, 3))
    table = {
        "multiply": lambda: a * p["factor"], "add": lambda: a + p["addend"], "matmul": lambda: a @ p["matrix_b"],
        "transpose": lambda: a.T, "elementwise_add": lambda: a + p["other"], "elementwise_sub": lambda: a - p["other"],
        "elementwise_mul": lambda: a * p["other"], "elementwise_div": lambda: a / p["other"],
        "normalize": lambda: (a - a.min()) / (a.max() - a.min()), "reshape": lambda: a.reshape(p["rows"], p["cols"]),
    }
    if operation in table:
        return table[operation]()
    axis = p.get("axis")
    fn = {"sum": np.sum, "mean": np.mean, "min": np.min, "max": np.max}[operation]
    return fn(a) if axis is None else fn(a, axis=axis, keepdims=True)


def cases():
    rng = np.random.default_rng(42)
    a = rng.standard_normal((24, 36))
    return [
        ("multiply", dict(factor=2.5)), ("add", dict(addend=-1.25)), ("matmul", dict(matrix_b=rng.standard_normal((36, 20)))),
        ("transpose", {}), ("elementwise_add", dict(other=rng.standard_normal((24, 36)))),
        ("elementwise_sub", dict(other=rng.standard_normal((24, 36)))), ("elementwise_mul", dict(other=rng.standard_normal((24, 36)))),
        ("elementwise_div", dict(other=rng.standard_normal((24, 36)) + 3)), ("conv2d", dict(kernel=rng.standard_normal((3, 5)))),
        ("max_pool2d", dict(size=6)), ("normalize", {}), ("reshape", dict(rows=36, cols=24)),
        ("sum", {}), ("sum", dict(axis=0)), ("mean", dict(axis=1)), ("min", {}), ("max", dict(axis=0)),
    ], a


def check_all_operations(api):
    operations, a = cases()
    for operation, params in operations:
        got = getattr(api, operation)(a, **params)
        expected = reference(operation, a, **params)
        if np.ndim(expected) == 0:
            assert isinstance(got, float), (operation, got)
        else:
            assert isinstance(got, np.ndarray) and got.dtype == np.float64 and got.shape == expected.shape, (operation, got)
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10, err_msg=operation)


def test_client_v2_every_operation(gateway):
    with forzium.Client(f"http://127.0.0.1:{gateway.port}") as client:
        assert client.protocol == "v2"
        check_all_operations(client)
        assert client.is_live() and client.is_ready()
        assert "binary_tensor_data" in client.server_metadata()["extensions"]
        assert [i["name"] for i in client.model_metadata("conv2d")["inputs"]] == ["data", "kernel"]


def test_client_json_every_operation(gateway):
    with forzium.Client(f"http://127.0.0.1:{gateway.port}", protocol="json") as client:
        check_all_operations(client)


@pytest.mark.parametrize("engine_name", ["forzium-engine", "forzium-engine-simd"])
def test_engine_every_operation(engine_name):
    path = BIN_DIR / engine_name
    if not path.exists():
        pytest.skip(f"{path} not built")
    with forzium.Engine(str(path)) as engine:
        check_all_operations(engine)
        assert engine.info()["kind"] == ("simd" if engine_name.endswith("simd") else "fallback")


def test_one_dimensional_non_finite_and_errors(gateway):
    special = np.array([np.nan, np.inf, -np.inf, -0.0, 2.0])
    with forzium.Client(f"http://127.0.0.1:{gateway.port}") as client, forzium.Engine(str(BIN_DIR / "forzium-engine")) as engine:
        for api in (client, engine):
            got = api.multiply(special, factor=1.0)
            assert got.shape == (5,)
            assert got.tobytes() == special.tobytes()
            assert api.transpose(np.arange(3.0)).shape == (3, 1)
            assert np.isnan(api.sum(special))
            assert api.matmul([[1, 2], [3, 4]], [[5, 6], [7, 8]]).tolist() == [[19, 22], [43, 50]]
            with pytest.raises(forzium.ForziumError) as error:
                api.matmul(np.ones((2, 3)), np.ones((2, 3)))
            assert error.value.status in (400, -32602), error.value
            with pytest.raises(forzium.ForziumError):
                api.max_pool2d(np.ones((3, 3)), size=2)
        with pytest.raises(forzium.ForziumError) as error:
            forzium.Client(f"http://127.0.0.1:{gateway.port}", protocol="json").matmul(np.ones((2, 3)), np.ones((2, 3)))
        assert error.value.status == 422
        with pytest.raises(ValueError):
            client.sum(np.ones((2, 2, 2)))


def test_client_is_typed():
    mypy = pytest.importorskip("mypy.api")
    out, err, status = mypy.run(["--strict", "--no-incremental", str(CLIENT_SRC / "forzium")])
    assert status == 0, out + err


def test_readme_python_section_runs_as_written(gateway):
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Python client", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks, "no python block in the README's Python client section"
    env = dict(os.environ, FORZIUM_URL=f"http://127.0.0.1:{gateway.port}", PYTHONPATH=str(CLIENT_SRC),
               PATH=f"{BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("FORZIUM_ENGINE_PATH", None)
    for block in blocks:
        run = subprocess.run([sys.executable, "-c", block], env=env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stdout + run.stderr


def test_package_builds_from_pyproject(tmp_path):
    """`pip install ./clients/python` works: the package builds into a wheel holding the module and py.typed."""
    try:
        import setuptools  # noqa: F401
        import wheel  # noqa: F401
    except ImportError:
        pytest.skip("setuptools/wheel not installed (scripts/install-deps.sh --test installs them)")
    run = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
                          str(REPO / "clients" / "python")], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    import zipfile
    (wheel_file,) = tmp_path.glob("forzium-*.whl")
    names = zipfile.ZipFile(wheel_file).namelist()
    assert "forzium/__init__.py" in names and "forzium/py.typed" in names
