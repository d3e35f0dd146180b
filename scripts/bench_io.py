"""PyTorch's side of examples/io_bench.rs: 8 x nn.Linear(4096, 4096) saved
with safetensors.torch.save_model and loaded with load_model; time and peak
RSS (ru_maxrss) after building the model and after the step.

usage: python3 scripts/bench_io.py save|load FILE   (needs torch, safetensors)
"""
import os
import resource
import sys
import time

import torch
from safetensors.torch import load_model, save_model


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1000.0


mode, path = sys.argv[1], sys.argv[2]
torch.set_num_threads(int(os.environ.get("THREADS", "2")))
torch.manual_seed(0)
net = torch.nn.Sequential(*[torch.nn.Linear(4096, 4096) for _ in range(8)])
built = peak_mb()
nbytes = sum(p.numel() * 4 for p in net.parameters())
t = time.perf_counter()
if mode == "save":
    save_model(net, path)
    # nninit's save is durable (fsync before rename); make this one too.
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
else:
    load_model(net, path)
s = time.perf_counter() - t
peak = peak_mb()
print(f"{mode}: {nbytes / 1e6:.1f} MB in {s:.3f} s ({nbytes / s / 1e9:.2f} GB/s); peak RSS "
      f"{built:.0f} MB with the model built, {peak:.0f} MB after {mode} (+{peak - built:.0f} MB)")
