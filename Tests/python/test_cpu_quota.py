"""A gateway started inside a real cgroup limited to one CPU (as a container with `limits.cpu: 1` would be) sizes
itself by the limit: one event loop, hence one engine, and that engine runs one kernel thread."""
import json
import os
import re
import subprocess
import urllib.request
import uuid

import pytest

from conftest import children


def make_cgroup(cpus):
    """A fresh cgroup limited to `cpus` CPUs (cgroup v1 `cpu`, else v2 with the `cpu` controller), or None."""
    name = f"forzium-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        if os.path.exists("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"):
            path = f"/sys/fs/cgroup/cpu/{name}"
            os.mkdir(path)
            with open(f"{path}/cpu.cfs_period_us", "w") as f:
                f.write("100000")
            with open(f"{path}/cpu.cfs_quota_us", "w") as f:
                f.write(str(cpus * 100000))
            return path
        with open("/sys/fs/cgroup/cgroup.subtree_control") as f:
            if "cpu" not in f.read().split():
                return None
        path = f"/sys/fs/cgroup/{name}"
        os.mkdir(path)
        with open(f"{path}/cpu.max", "w") as f:
            f.write(f"{cpus * 100000} 100000")
        return path
    except OSError:
        return None


def test_gateway_in_a_one_cpu_cgroup_runs_one_loop_one_engine_one_kernel_thread(start_gateway):
    group = make_cgroup(1)
    if group is None:
        pytest.skip("this machine does not let the tests make a cgroup with a CPU quota (needs root and cgroup cpu)")
    try:
        def join():
            with open(f"{group}/cgroup.procs", "w") as f:
                f.write(str(os.getpid()))

        try:
            subprocess.run(["true"], preexec_fn=join, check=True)
        except (subprocess.SubprocessError, OSError):
            pytest.skip("a process cannot join a cgroup made here")
        gateway = start_gateway(preexec_fn=join)
        ready = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{gateway.port}/ready", timeout=10).read())
        assert len(ready["engines"]) == 1, ready
        engines = children(gateway.pid)
        assert len(engines) == 1, engines
        # The engine inherited the cgroup: one kernel thread (each engine logs its `threads` as it starts, the
        # discovery probe included; the gateway relays the lines).
        with open(f"{group}/cgroup.procs") as f:
            members = {int(line) for line in f.read().split()}
        assert gateway.pid in members and engines[0] in members, members
        started = [line for line in gateway.text().splitlines() if "serving JSON-RPC on stdio" in line]
        assert started and all(re.search(r" threads=1 ", line) for line in started), started
        request = json.dumps({"data": [[1, 2], [3, 4]], "operation": "matmul",
                              "parameters": {"matrix_b": [[5, 6], [7, 8]]}}).encode()
        answer = json.loads(urllib.request.urlopen(urllib.request.Request(
            f"http://127.0.0.1:{gateway.port}/compute", data=request,
            headers={"Content-Type": "application/json"}), timeout=10).read())
        assert answer["result"] == [[19.0, 22.0], [43.0, 50.0]], answer
        assert gateway.stop() == 0
    finally:
        try:
            os.rmdir(group)
        except OSError:
            pass
