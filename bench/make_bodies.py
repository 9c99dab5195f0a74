"""Writes the benchmark request bodies: a 2×2 multiply, a 512×512 matmul (about 10.8 MB of JSON) and a 1024×1024
matmul (about 41.5 MB, for peak memory)."""
import json
import random
import sys

out = sys.argv[1]
with open(f"{out}/small.json", "w") as f:
    json.dump({"data": [[1.5, 2.0], [3.0, 4.25]], "operation": "multiply", "parameters": {"factor": 2}}, f)
rng = random.Random(512)
n = 512
a = [[rng.random() for _ in range(n)] for _ in range(n)]
b = [[rng.random() for _ in range(n)] for _ in range(n)]
with open(f"{out}/matmul512.json", "w") as f:
    json.dump({"data": a, "operation": "matmul", "parameters": {"matrix_b": b}}, f)
n = 64
a = [[rng.random() for _ in range(n)] for _ in range(n)]
with open(f"{out}/matmul64.json", "w") as f:
    json.dump({"data": a, "operation": "matmul", "parameters": {"matrix_b": a}}, f)
n = 1024
a = [[rng.random() for _ in range(n)] for _ in range(n)]
b = [[rng.random() for _ in range(n)] for _ in range(n)]
with open(f"{out}/matmul1024.json", "w") as f:
    json.dump({"data": a, "operation": "matmul", "parameters": {"matrix_b": b}}, f)
