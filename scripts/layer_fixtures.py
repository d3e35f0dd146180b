"""Writes tests/fixtures/layers.{safetensors,json}: PyTorch 2.15 references for
the layers of `src/nn/` (tests/layers.rs).

    venv/bin/python scripts/layer_fixtures.py

For each case: the layer is built after torch.manual_seed(seed) (so its
default init is PyTorch's, which the torch-exact generator must reproduce bit
for bit: NAME/init/KEY), then given float32 parameters P (NAME/param/KEY, the
default init unless the case sets others), an input X and an upstream gradient
G drawn after it. The reference is the same layer run in float64 on the same
float32 values: Y (NAME/Y), the input gradient of sum(G * Y) (NAME/dX) and the
parameters' (NAME/grad/KEY). Modes: "train" runs training mode (batch
statistics; NAME/after/KEY holds the buffers after the forward), "eval"
inference mode. Dropout cases store PyTorch's own float32 output for the
torch-exact mask (NAME/Y32).
"""
import json
import sys

import torch
from safetensors.torch import save_file
from torch import nn

assert torch.__version__.startswith("2.15."), torch.__version__

CASES = [
    # name, seed, constructor, input shape, mode
    ("conv2d_basic", 1, "nn.Conv2d(3, 4, 3)", (2, 3, 7, 6), "eval"),
    ("conv2d_stride_pad", 2, "nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 2))", (2, 4, 9, 8), "eval"),
    ("conv2d_dilation_groups", 3, "nn.Conv2d(4, 6, 3, padding=2, dilation=2, groups=2, bias=False)", (1, 4, 8, 9), "eval"),
    ("conv2d_same", 4, "nn.Conv2d(3, 5, (4, 3), padding='same', dilation=(1, 2))", (2, 3, 6, 7), "eval"),
    ("conv2d_valid_1x1", 5, "nn.Conv2d(6, 3, 1, padding='valid')", (2, 6, 5, 5), "eval"),
    ("conv2d_1x1_stride", 6, "nn.Conv2d(4, 8, 1, stride=2, bias=False)", (2, 4, 7, 7), "eval"),
    ("conv2d_unbatched", 7, "nn.Conv2d(2, 3, 3, padding=1)", (2, 5, 5), "eval"),
    ("conv1d_basic", 8, "nn.Conv1d(3, 4, 3, stride=2, padding=1)", (2, 3, 11), "eval"),
    ("conv1d_same_groups", 9, "nn.Conv1d(4, 4, 4, padding='same', groups=4, dilation=2)", (2, 4, 9), "eval"),
    ("conv1d_unbatched", 10, "nn.Conv1d(2, 3, 2)", (2, 6), "eval"),
    ("bn2d_train", 11, "nn.BatchNorm2d(3)", (4, 3, 5, 5), "train"),
    ("bn2d_eval", 12, "nn.BatchNorm2d(3)", (2, 3, 4, 4), "eval"),
    ("bn1d_train_2d", 13, "nn.BatchNorm1d(5)", (8, 5), "train"),
    ("bn1d_train_3d", 14, "nn.BatchNorm1d(3, momentum=None)", (4, 3, 6), "train"),
    ("bn1d_noaffine", 15, "nn.BatchNorm1d(4, affine=False, eps=1e-3)", (6, 4), "train"),
    ("bn2d_nostats", 16, "nn.BatchNorm2d(2, track_running_stats=False)", (3, 2, 3, 3), "eval"),
    ("layernorm", 17, "nn.LayerNorm(6)", (3, 4, 6), "eval"),
    ("layernorm_2d", 18, "nn.LayerNorm([3, 4], eps=1e-3)", (2, 3, 4), "eval"),
    ("layernorm_nobias", 19, "nn.LayerNorm(5, bias=False)", (4, 5), "eval"),
    ("maxpool", 20, "nn.MaxPool2d(3, 2, 1)", (2, 3, 9, 8), "eval"),
    ("maxpool_dilation_ceil", 21, "nn.MaxPool2d((3, 2), stride=2, padding=1, dilation=(1, 2), ceil_mode=True)", (1, 2, 8, 9), "eval"),
    ("avgpool", 22, "nn.AvgPool2d(2)", (2, 3, 6, 7), "eval"),
    ("avgpool_pad", 23, "nn.AvgPool2d(3, 2, 1)", (2, 2, 7, 7), "eval"),
    ("avgpool_nopad_ceil", 24, "nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False)", (1, 2, 8, 6), "eval"),
    ("adaptive", 25, "nn.AdaptiveAvgPool2d((3, 2))", (2, 3, 7, 5), "eval"),
    ("adaptive_1", 26, "nn.AdaptiveAvgPool2d(1)", (2, 4, 5, 5), "eval"),
    ("gelu", 27, "nn.GELU()", (4, 9), "eval"),
    ("gelu_tanh", 28, "nn.GELU('tanh')", (4, 9), "eval"),
    ("tanh", 29, "nn.Tanh()", (4, 9), "eval"),
    ("sigmoid", 30, "nn.Sigmoid()", (4, 9), "eval"),
    ("leaky_relu", 31, "nn.LeakyReLU(0.2)", (4, 9), "eval"),
    ("silu", 32, "nn.SiLU()", (4, 9), "eval"),
    ("softmax", 33, "nn.Softmax(dim=1)", (3, 5, 2), "eval"),
    ("softmax_neg", 34, "nn.Softmax(dim=-1)", (3, 5), "eval"),
    ("flatten", 35, "nn.Flatten()", (2, 3, 2, 2), "eval"),
    ("embedding", 36, "nn.Embedding(10, 4, padding_idx=2)", (3, 4), "eval"),
    ("embedding_nopad", 37, "nn.Embedding(7, 3)", (5,), "eval"),
]

tensors = {}
index = []
for name, seed, ctor, shape, mode in CASES:
    torch.manual_seed(seed)
    layer = eval(ctor, {"nn": nn})
    init = {k: v.detach().clone() for k, v in layer.state_dict().items()}
    for k, v in init.items():
        tensors[f"{name}/init/{k}"] = v.contiguous()
    embedding = isinstance(layer, nn.Embedding)
    if embedding:
        x = torch.randint(0, layer.num_embeddings, shape)
    else:
        x = torch.randn(shape) * 1.5
    if isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)) and mode == "eval" and layer.track_running_stats:
        # Running statistics that are not the defaults.
        layer.running_mean.uniform_(-0.5, 0.5)
        layer.running_var.uniform_(0.5, 2.0)
    if isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm)) and layer.weight is not None:
        with torch.no_grad():
            layer.weight.uniform_(0.5, 1.5)
            if layer.bias is not None:
                layer.bias.uniform_(-0.5, 0.5)
    params = {k: v.detach().clone() for k, v in layer.state_dict().items()}
    for k, v in params.items():
        tensors[f"{name}/param/{k}"] = v.contiguous()
    tensors[f"{name}/X"] = x.contiguous()
    ref = layer.double()
    ref.train(mode == "train")
    xd = x if embedding else x.double().requires_grad_(True)
    y = ref(xd)
    g = torch.randn(y.shape, dtype=torch.float64)
    tensors[f"{name}/G"] = g.float().contiguous()
    g = g.float().double()
    (y * g).sum().backward()
    tensors[f"{name}/Y"] = y.detach().float().contiguous()
    if not embedding:
        tensors[f"{name}/dX"] = xd.grad.float().contiguous()
    for k, p in ref.named_parameters():
        tensors[f"{name}/grad/{k}"] = p.grad.float().contiguous()
    if mode == "train":
        for k, v in ref.state_dict().items():
            if k.startswith("running") or k == "num_batches_tracked":
                tensors[f"{name}/after/{k}"] = v.float().contiguous() if v.dtype != torch.long else v
    index.append({"name": name, "seed": seed, "torch": ctor, "shape": list(shape), "mode": mode})

# Dropout with the torch-exact generator: PyTorch's own float32 values.
for name, seed, p, shape in [("dropout_03", 40, 0.3, (4, 25)), ("dropout_05", 41, 0.5, (3, 7)), ("dropout_1", 42, 1.0, (5,))]:
    torch.manual_seed(seed)
    x = torch.randn(shape)
    d = nn.Dropout(p)
    d.train()
    y = d(x)
    tensors[f"{name}/X"] = x
    tensors[f"{name}/Y32"] = y
    tensors[f"{name}/rng_state"] = torch.get_rng_state()
    index.append({"name": name, "seed": seed, "torch": f"nn.Dropout({p})", "shape": list(shape), "mode": "train"})

root = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures"
save_file(tensors, f"{root}/layers.safetensors")
with open(f"{root}/layers.json", "w") as f:
    json.dump({"torch": torch.__version__, "cases": index}, f, indent=1)
print(len(index), "cases,", len(tensors), "tensors")
