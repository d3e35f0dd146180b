"""Writes tests/fixtures/torch_extra.{safetensors,json}: PyTorch's own output for
the torch-exact generator's tests, beyond the shared golden file.

    python3 -m venv venv && venv/bin/pip install torch==2.15.0 safetensors numpy
    venv/bin/python scripts/torch_fixtures.py

Each case runs its code after torch.manual_seed(seed) (or, for cases with a
`state_in`, after torch.set_rng_state(state_in)); every float tensor it leaves
in `out` is stored as NAME/KEY, and torch.get_rng_state() afterwards as
NAME/rng_state. A key ending in `_everyK` holds every K-th element of the
flattened tensor only (to keep the file small). The JSON lists the cases.
"""
import json
import math
import sys

import torch
from safetensors.torch import save_file
from torch import nn

assert torch.__version__.startswith("2.15."), torch.__version__

CASES = []


def case(name, seed, code):
    CASES.append((name, seed, code))


# Seeds: all 64 bits are kept, the low 32 are used; Python's -1 is 2**64 - 1.
for seed in [1, 2**40 + 3, 2**64 - 1, 123456789]:
    case(f"seed/{seed}", seed, "out['a'] = torch.rand(5); out['b'] = torch.randn(20); out['c'] = torch.randn(3)")

# trunc_normal_, both branches of 2.15's algorithm.
for shape, mean, std, a, b in [
    ((1000,), 0.0, 1.0, 2.0, 3.0),
    ((1000,), 0.0, 0.02, 0.03, 0.1),
    ((7,), 0.5, 2.0, 3.0, 9.0),
    ((33, 7), -1.0, 1.0, -1.2, -0.9),
    ((20000,), 0.0, 1.0, -5.0, -3.5),
    ((500,), 0.0, 1.0, 40.0, 41.0),
    ((100,), 0.0, 1.0, 0.0, math.inf),
    ((3,), 0.1, 0.3, -0.2, 0.25),
    ((64, 64), 0.0, 0.02, -0.04, 0.04),
]:
    case(
        f"trunc_normal_/{'x'.join(map(str, shape))}/{mean},{std},{a},{b}",
        0,
        f"out['out'] = nn.init.trunc_normal_(torch.empty{shape}, {mean}, {std}, {a}, {b})",
    )

# sparse_: normal_ on the whole matrix, then randperm per column.
for shape, sparsity, std in [((8, 5), 0.3, 0.01), ((100, 10), 0.1, 0.5), ((3, 4), 0.0, 1.0),
                             ((10, 10), 1.0, 1.0), ((1, 6), 0.5, 1.0), ((5, 3), 0.5, 2.0)]:
    case(
        f"sparse_/{'x'.join(map(str, shape))}/{sparsity},{std}",
        0,
        f"out['out'] = nn.init.sparse_(torch.empty{shape}, {sparsity}, {std}); out['after'] = torch.rand(4)",
    )

# orthogonal_: PyTorch's draws; its LAPACK QR is matched to 1e-5 only.
for shape, gain in [((8, 4), 1.0), ((4, 8), 1.0), ((64, 64), 1.0), ((3, 5, 2, 2), 2.0),
                    ((5, 3), 1.0), ((2, 2), 0.5), ((100, 30), 1.0)]:
    case(
        f"orthogonal_/{'x'.join(map(str, shape))}/{gain}",
        0,
        f"out['out'] = nn.init.orthogonal_(torch.empty{shape}, {gain}); out['after'] = torch.rand(4)",
    )

# More initializers, shapes and the double path with mean/std (its FMA).
case("mixed", 3, """
out['k'] = nn.init.kaiming_uniform_(torch.empty(16, 8, 3, 3), a=0.1, mode='fan_out', nonlinearity='leaky_relu')
out['x'] = nn.init.xavier_uniform_(torch.empty(4, 3, 3, 3), gain=nn.init.calculate_gain('tanh'))
out['n'] = nn.init.normal_(torch.empty(10), 0.1, 0.2)
out['n2'] = nn.init.normal_(torch.empty(3), -3.0, 1e-3)
out['kn'] = nn.init.kaiming_normal_(torch.empty(5, 3), nonlinearity='selu')
out['xn'] = nn.init.xavier_normal_(torch.empty(2, 7))
out['u'] = nn.init.uniform_(torch.empty(10), 2.0, 2.0)
out['z'] = nn.init.normal_(torch.empty(20), 1.5, 0.0)
out['e'] = nn.init.kaiming_uniform_(torch.empty(0, 5))
out['r0'] = torch.rand(0)
out['big_every13'] = nn.init.kaiming_normal_(torch.empty(256, 784), mode='fan_out', nonlinearity='relu').flatten()[::13]
out['after'] = torch.randn(7)
""")
case("sizes", 11, """
for n in range(1, 41):
    out[f'u{n}'] = torch.empty(n).uniform_(-1, 1)
    out[f'n{n}'] = torch.randn(n)
""")
case("linear_big", 5, """
l = nn.Linear(1024, 1024)
out['weight_every97'] = l.weight.data.flatten()[::97]; out['bias'] = l.bias.data
l = nn.Linear(3, 5, bias=False)
out['nobias'] = l.weight.data
out['after'] = torch.rand(3)
""")

# examples/sample.rs --generator torch: argv (after the seed and shape) and the
# PyTorch call it must equal.
SAMPLE = [
    ("uniform --a -0.5 --b 2", "nn.init.uniform_(t, -0.5, 2)"),
    ("normal --mean 0.5 --std 2", "nn.init.normal_(t, 0.5, 2)"),
    ("trunc_normal --std 0.02 --a -0.04 --b 0.04", "nn.init.trunc_normal_(t, std=0.02, a=-0.04, b=0.04)"),
    ("trunc_normal --a 1 --b 3", "nn.init.trunc_normal_(t, a=1, b=3)"),
    ("constant --val 3", "nn.init.constant_(t, 3)"),
    ("zeros", "nn.init.zeros_(t)"),
    ("ones", "nn.init.ones_(t)"),
    ("eye", "nn.init.eye_(t)"),
    ("orthogonal --gain 2", "nn.init.orthogonal_(t, 2)"),
    ("sparse --sparsity 0.3", "nn.init.sparse_(t, 0.3)"),
    ("xavier_uniform --gain 1.5", "nn.init.xavier_uniform_(t, gain=1.5)"),
    ("xavier_normal", "nn.init.xavier_normal_(t)"),
    ("kaiming_uniform --a 2.23606797749979", "nn.init.kaiming_uniform_(t, a=math.sqrt(5))"),
    ("kaiming_normal --mode fan_out --nonlinearity relu", "nn.init.kaiming_normal_(t, mode='fan_out', nonlinearity='relu')"),
]
for argv, call in SAMPLE:
    case(f"sample/{argv}", 3, f"t = torch.empty(24, 10); out['out'] = {call}")
case("sample_dirac", 3, "out['out'] = nn.init.dirac_(torch.empty(4, 2, 3, 3), 2)")

# A state saved in Python continues in Rust: state_in is taken after the
# setup code (which leaves a cached normal), then the case code runs.
STATEFUL = [("continue", 5, "torch.randn(7)", "out['a'] = torch.randn(3); out['b'] = torch.rand(4); out['c'] = torch.randn(40)")]

tensors = {}
index = []
for name, seed, code in CASES:
    torch.manual_seed(seed)
    out = {}
    exec(code, {"torch": torch, "nn": nn, "math": math, "inf": math.inf, "out": out})
    for k, v in out.items():
        tensors[f"{name}/{k}"] = v.detach().to(torch.float32).contiguous()
    tensors[f"{name}/rng_state"] = torch.get_rng_state()
    index.append({"name": name, "seed": seed, "torch": code.strip(), "outputs": sorted(out)})
for name, seed, setup, code in STATEFUL:
    torch.manual_seed(seed)
    exec(setup, {"torch": torch})
    tensors[f"{name}/state_in"] = torch.get_rng_state()
    out = {}
    exec(code, {"torch": torch, "nn": nn, "out": out})
    for k, v in out.items():
        tensors[f"{name}/{k}"] = v.contiguous()
    tensors[f"{name}/rng_state"] = torch.get_rng_state()
    index.append({"name": name, "seed": seed, "setup": setup, "torch": code, "outputs": sorted(out)})

root = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures"
save_file(tensors, f"{root}/torch_extra.safetensors")
with open(f"{root}/torch_extra.json", "w") as f:
    json.dump({"torch": torch.__version__, "cases": index}, f, indent=1)
print(len(index), "cases,", len(tensors), "tensors")
