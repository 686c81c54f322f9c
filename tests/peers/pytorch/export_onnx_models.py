"""Exports CNNs with PyTorch's own ONNX exporter, plus reference outputs, for OnnxPyTorchPeerTest.

Runs on Debian's PyTorch (`apt-get install python3-torch python3-torchvision`; checked with torch 1.13,
torchvision 0.14); the test calls it itself when its output folder is empty. For each model, variant
and opset it writes

    OUT/<model>_<variant>_opset<k>.onnx                  the exported model (input "input", batch axis dynamic)
    OUT/<model>_<variant>_opset<k>.reference.safetensors "input" and every graph output, computed by PyTorch

Models: torchvision ResNet-18 and MobileNetV2 (random weights from the seed, random BatchNorm
statistics so folding matters), and a CIFAR ResNet-20 with the silhouette branch after layer2 (1x1 conv
to one channel, BatchNorm, sigmoid). Variants: "folded", the exporter's default inference export
(TrainingMode.EVAL with constant folding, which fuses each BatchNorm into its convolution), and "bn",
TrainingMode.PRESERVE without constant folding, which keeps the BatchNormalization nodes. Opsets 13, 17.

    /usr/bin/python3 tests/peers/pytorch/export_onnx_models.py --out target/pytorch-onnx
"""
import argparse, json, os, struct

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from train_fmnist_resnet import Block  # the residual block Silhouette's ResNets share (same module names)


class ResNet20Silhouette(nn.Module):
    """CIFAR ResNet-20 (option B shortcuts) as dev.silhouette.graph.Models builds it, silhouette after layer2."""

    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        stages, cin = [], 16
        for i, width in enumerate([16, 32, 64]):
            blocks = []
            for b in range(3):
                blocks.append(Block(cin, width, 2 if i > 0 and b == 0 else 1))
                cin = width
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.silhouette_conv = nn.Conv2d(32, 1, 1, bias=False)
        self.silhouette_bn = nn.BatchNorm2d(1)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        silhouette = torch.sigmoid(self.silhouette_bn(self.silhouette_conv(x)))
        x = self.layer3(x)
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x), silhouette


def randomize_batchnorm(model, generator):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5, generator=generator)
                m.bias.uniform_(-0.2, 0.2, generator=generator)
                m.running_mean.uniform_(-0.2, 0.2, generator=generator)
                m.running_var.uniform_(0.5, 1.5, generator=generator)


def save_safetensors(path, tensors):
    """The safetensors layout (8-byte little-endian header length, JSON header, raw little-endian float32
    data), written by hand because Debian packages no `safetensors`."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        blob = t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, as the reference writer does
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(a.seed)
    g = torch.Generator().manual_seed(a.seed)
    models = {
        "resnet18": (lambda: torchvision.models.resnet18(weights=None), (2, 3, 224, 224), ["logits"]),
        "mobilenet_v2": (lambda: torchvision.models.mobilenet_v2(weights=None), (2, 3, 224, 224), ["logits"]),
        "resnet20_silhouette": (lambda: ResNet20Silhouette(), (2, 3, 32, 32), ["logits", "silhouette"]),
    }
    variants = {"folded": (torch.onnx.TrainingMode.EVAL, True), "bn": (torch.onnx.TrainingMode.PRESERVE, False)}
    for name, (make, shape, outputs) in models.items():
        model = make().eval()
        randomize_batchnorm(model, g)
        x = torch.rand(shape, generator=g)
        with torch.no_grad():
            expected = model(x)
        expected = expected if isinstance(expected, tuple) else (expected,)
        for variant, (training, fold) in variants.items():
            for opset in [13, 17]:
                stem = os.path.join(a.out, f"{name}_{variant}_opset{opset}")
                torch.onnx.export(model, (x,), stem + ".onnx", opset_version=opset, input_names=["input"], output_names=outputs,
                                  dynamic_axes={n: {0: "N"} for n in ["input"] + outputs},
                                  training=training, do_constant_folding=fold)
                save_safetensors(stem + ".reference.safetensors", {"input": x, **dict(zip(outputs, expected))})
                print("wrote", stem + ".onnx", flush=True)


if __name__ == "__main__":
    main()
