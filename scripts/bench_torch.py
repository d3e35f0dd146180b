"""PyTorch's own fill rates on this machine, for the README beside
`cargo bench --bench fill -- torch` (same size: 16M float32, one thread).

    venv/bin/python scripts/bench_torch.py
"""
import time

import torch

torch.set_num_threads(1)
N = 16 << 20
t = torch.empty(N)
for name, op in [("uniform_", lambda: t.uniform_(-1, 1)), ("normal_", lambda: t.normal_()),
                 ("trunc_normal_", lambda: torch.nn.init.trunc_normal_(t))]:
    op()
    best = []
    for _ in range(7):
        start = time.perf_counter()
        op()
        best.append(time.perf_counter() - start)
    best.sort()
    median = best[len(best) // 2]
    print(f"torch {torch.__version__} {name}: {N / median / 1e9:.3f} G/s (median of 7, {median * 1e3:.1f} ms)")
