"""Writes the ResNet fixtures of tests/resnet18.rs, with torch 2.15 and
torchvision:

* tests/fixtures/resnet18_torch.json: for torch.manual_seed(S);
  torchvision.models.resnet18(), S in (0, 7), every state-dict entry in order
  with its shape, dtype and the FNV-1a 64 hash of its little-endian bytes;
  for S = 0 also the hash of X = torch.randn(2, 3, 224, 224) drawn after the
  model;
* tests/fixtures/resnet18_y.safetensors: Y = the seed-0 model's eval output
  on that X;
* tests/fixtures/mini_resnet.safetensors: a small network with every layer
  kind of ResNet (torchvision's BasicBlock and structure, first width 4, one
  block per stage, 5 classes), with random weights and running statistics,
  written by safetensors.torch.save_model; mini_resnet_io.safetensors: an
  input and the eval output.

    venv/bin/python scripts/resnet_fixtures.py
"""
import json
import sys

import torch
import torchvision
from safetensors.torch import save_file, save_model
from torch import nn
from torchvision.models.resnet import BasicBlock, conv1x1

assert torch.__version__.startswith("2.15."), torch.__version__
root = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures"


def fnv1a(t):
    h = 0xCBF29CE484222325
    for b in t.contiguous().numpy().tobytes():
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


out = {"torch": torch.__version__, "torchvision": torchvision.__version__, "seeds": {}}
for seed in (0, 7):
    torch.manual_seed(seed)
    m = torchvision.models.resnet18()
    entries = [{"name": k, "shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", ""), "fnv1a": fnv1a(v)}
               for k, v in m.state_dict().items()]
    rec = {"entries": entries}
    if seed == 0:
        x = torch.randn(2, 3, 224, 224)
        rec["X_fnv1a"] = fnv1a(x)
        m.eval()
        with torch.no_grad():
            save_file({"Y": m(x)}, f"{root}/resnet18_y.safetensors")
    out["seeds"][str(seed)] = rec
with open(f"{root}/resnet18_torch.json", "w") as f:
    json.dump(out, f, indent=1)


class MiniResNet(nn.Module):
    """torchvision's ResNet layout (BasicBlock) with a first width of `w`."""

    def __init__(self, w=4, blocks=(1, 1, 1, 1), num_classes=5):
        super().__init__()
        self.conv1 = nn.Conv2d(3, w, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        inplanes = w
        for stage, n in enumerate(blocks):
            planes, stride = w << stage, 1 if stage == 0 else 2
            down = None
            if stride != 1 or inplanes != planes:
                down = nn.Sequential(conv1x1(inplanes, planes, stride), nn.BatchNorm2d(planes))
            layers = [BasicBlock(inplanes, planes, stride, down)]
            inplanes = planes
            layers += [BasicBlock(inplanes, planes) for _ in range(1, n)]
            setattr(self, f"layer{stage + 1}", nn.Sequential(*layers))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(inplanes, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


torch.manual_seed(123)
mini = MiniResNet()
with torch.no_grad():
    for name, b in mini.named_buffers():
        if name.endswith("running_mean"):
            b.uniform_(-0.2, 0.2)
        elif name.endswith("running_var"):
            b.uniform_(0.5, 1.5)
        elif name.endswith("num_batches_tracked"):
            b.fill_(7)
    for name, p in mini.named_parameters():
        if ".bn" in name or name.startswith("bn") or "downsample.1" in name:
            p.uniform_(0.5, 1.5) if name.endswith("weight") else p.uniform_(-0.1, 0.1)
save_model(mini, f"{root}/mini_resnet.safetensors")
mini.eval()
x = torch.randn(2, 3, 32, 32)
with torch.no_grad():
    save_file({"X": x, "Y": mini(x)}, f"{root}/mini_resnet_io.safetensors")
print("wrote", root)
