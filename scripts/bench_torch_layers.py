"""PyTorch's figures for benches/layers.rs on the same machine: Conv2d(64, 64,
3, padding=1) forward on [8, 64, 56, 56] (GFLOP/s) and torchvision's ResNet-18
forward at batch 1 and 8, with torch.set_num_threads(1) and (2).

    venv/bin/python scripts/bench_torch_layers.py
"""
import time

import torch
import torchvision


def median_seconds(f, reps):
    f()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


torch.manual_seed(0)
conv = torch.nn.Conv2d(64, 64, 3, padding=1)
x = torch.randn(8, 64, 56, 56)
flops = 2 * 8 * 64 * 56 * 56 * 64 * 9
net = torchvision.models.resnet18().eval()
with torch.no_grad():
    for threads in (1, 2):
        torch.set_num_threads(threads)
        s = median_seconds(lambda: conv(x), 10)
        print(f"torch {torch.__version__} conv2d 64x64x3 b8, {threads} thread(s): {flops / s / 1e9:.1f} GFLOP/s ({s * 1e3:.1f} ms)")
        for batch in (1, 8):
            xb = torch.randn(batch, 3, 224, 224)
            s = median_seconds(lambda: net(xb), 7)
            print(f"torch resnet18 forward b{batch}, {threads} thread(s): {s * 1e3:.1f} ms ({batch / s:.1f} images/s)")
