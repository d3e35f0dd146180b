"""Python side of the safetensors interop check (run by .ci/run).

usage: check.py DIR

(a) Reads DIR/tied.safetensors and DIR/xy.safetensors, written by
    `cargo run --release --example export_tied -- DIR`, with
    `safetensors.numpy`; checks names, shapes, the tie metadata, and
    recomputes Y from X and the weights with numpy.
(b) Writes DIR/from_python.safetensors with `safetensors.numpy.save_file`:
    the same tied architecture with values arange(n) / 100 - 0.5 per tensor
    (in the order of the names below), the tie recorded as `save_model` does.
    `tests/safetensors.rs` loads it and checks every value
    (NNINIT_PY_SAFETENSORS points it at the fresh file).
Exits non-zero on any mismatch.
"""
import json
import struct
import sys
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

SHAPES = {
    "0.weight": (8, 4),
    "0.bias": (8,),
    "2.weight": (8, 8),
    "2.bias": (8,),
    "6.weight": (1, 8),
    "6.bias": (1,),
}
TIES = {"4.weight": "2.weight", "4.bias": "2.bias"}


def fail(msg):
    print(f"interop check FAILED: {msg}")
    sys.exit(1)


def check_rust_files(d: Path):
    tensors = load_file(d / "tied.safetensors")
    if set(tensors) != set(SHAPES):
        fail(f"names {sorted(tensors)} != {sorted(SHAPES)}")
    for name, shape in SHAPES.items():
        t = tensors[name]
        if t.shape != shape or t.dtype != np.float32:
            fail(f"{name}: shape {t.shape} dtype {t.dtype}, want {shape} float32")
    with safe_open(d / "tied.safetensors", framework="numpy") as f:
        meta = f.metadata() or {}
    for alias, kept in TIES.items():
        if meta.get(alias) != kept:
            fail(f"metadata {meta} does not map {alias} to {kept}")
    # The raw header is what the spec says (8-byte little-endian length, JSON).
    raw = (d / "tied.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    if any(alias in header for alias in TIES):
        fail("a dropped tie alias was written as a tensor")

    xy = load_file(d / "xy.safetensors")
    x, y = xy["X"].astype(np.float64), xy["Y"].astype(np.float64)
    w = {k: v.astype(np.float64) for k, v in tensors.items()}
    for k in TIES:
        w[k] = w[TIES[k]]
    h = x
    for i, layer in enumerate(["0", "2", "4", "6"]):
        h = h @ w[f"{layer}.weight"].T + w[f"{layer}.bias"]
        if i < 3:
            h = np.maximum(h, 0.0)
    err = np.max(np.abs(h - y))
    if not err < 1e-5:
        fail(f"recomputed Y differs by {err}")
    print(f"(a) read Rust's files: names, shapes, ties ok; Y recomputed, max error {err:.2e}")


def write_python_file(d: Path):
    tensors = {}
    for name, shape in SHAPES.items():
        n = int(np.prod(shape))
        tensors[name] = (np.arange(n, dtype=np.float32) / 100 - 0.5).reshape(shape)
    save_file(tensors, d / "from_python.safetensors", metadata=dict(TIES))
    print(f"(b) wrote {d / 'from_python.safetensors'}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    out = Path(sys.argv[1])
    check_rust_files(out)
    write_python_file(out)
