"""Reads a sharded checkpoint that `nninit init --config` wrote, with
Python's own `safetensors` (and numpy), and checks it the way transformers'
loader would: the index names every tensor of LlamaForCausalLM for the
config, each in the file it names, with the declared shape and dtype, no
tensor in two files, metadata.total_size the bytes of tensor data; the
values follow the config's laws (normal(0, initializer_range) for the
linear and embedding weights, ones for the RMSNorm weights).

usage: check_sharded.py DIR DTYPE   (DTYPE: F32, F16 or BF16)
"""
import json
import os
import struct
import sys

import numpy as np
from safetensors import safe_open

d, dtype = sys.argv[1], sys.argv[2]
cfg = json.load(open(os.path.join(d, "config.json")))
h, i, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
heads, kv_heads = cfg["num_attention_heads"], cfg["num_key_value_heads"]
hd = h // heads
want = {"model.embed_tokens.weight": (v, h), "model.norm.weight": (h,)}
if not cfg.get("tie_word_embeddings", False):
    want["lm_head.weight"] = (v, h)
for l in range(cfg["num_hidden_layers"]):
    p = f"model.layers.{l}."
    want.update({
        p + "self_attn.q_proj.weight": (heads * hd, h),
        p + "self_attn.k_proj.weight": (kv_heads * hd, h),
        p + "self_attn.v_proj.weight": (kv_heads * hd, h),
        p + "self_attn.o_proj.weight": (h, heads * hd),
        p + "mlp.gate_proj.weight": (i, h),
        p + "mlp.up_proj.weight": (i, h),
        p + "mlp.down_proj.weight": (h, i),
        p + "input_layernorm.weight": (h,),
        p + "post_attention_layernorm.weight": (h,),
    })

index = json.load(open(os.path.join(d, "model.safetensors.index.json")))
wm = index["weight_map"]
assert set(wm) == set(want), sorted(set(wm) ^ set(want))
size = {"F32": 4, "F16": 2, "BF16": 2}[dtype]

def values(path, name):
    """The tensor as float64, decoding bf16 from the raw bytes (numpy has no
    bfloat16) at the offsets of the file's own header."""
    if dtype != "BF16":
        with safe_open(path, framework="np") as f:
            return f.get_tensor(name).astype(np.float64)
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    meta = json.loads(raw[8:8 + n])[name]
    a, b = meta["data_offsets"]
    u16 = np.frombuffer(raw[8 + n + a:8 + n + b], dtype="<u2")
    return (u16.astype(np.uint32) << 16).view(np.float32).astype(np.float64)

seen, total = {}, 0
for file in sorted(set(wm.values())):
    path = os.path.join(d, file)
    with safe_open(path, framework="np") as f:
        for name in f.keys():
            assert name not in seen, f"{name} in {seen.get(name)} and {file}"
            seen[name] = file
            s = f.get_slice(name)
            assert s.get_dtype() == dtype, (name, s.get_dtype())
            shape = tuple(s.get_shape())
            assert shape == want[name], (name, shape, want[name])
            total += int(np.prod(shape)) * size
    for name in [n for n, f in seen.items() if f == file]:
        x = values(path, name)
        if name.endswith("norm.weight"):
            assert np.all(x == 1.0), name
        else:
            std = cfg["initializer_range"]
            assert abs(x.mean()) < 5 * std / np.sqrt(x.size), (name, x.mean())
            assert abs(x.std() / std - 1) < 0.1, (name, x.std())
assert seen == wm, "the index and the files disagree"
assert index["metadata"]["total_size"] == total, (index["metadata"], total)
print(f"{d}: {len(seen)} tensors in {len(set(wm.values()))} files, {total} bytes, {dtype}: ok")
