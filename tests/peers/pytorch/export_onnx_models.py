"""Exports CNNs with PyTorch's own ONNX exporter, plus reference outputs, for OnnxPyTorchPeerTest.

UNVERIFIED: written without PyTorch at hand (the development machine has no PyPI); run it where
torch, torchvision and safetensors are installed. For each model and opset it writes

    OUT/<model>_opset<k>.onnx                  the exported model (input "input", batch axis dynamic)
    OUT/<model>_opset<k>.reference.safetensors "input" and every graph output, computed by PyTorch

Models: torchvision ResNet-18 and MobileNetV2 (random weights from the seed, random BatchNorm
statistics so folding matters), and a CIFAR ResNet-20 with the silhouette branch after layer2 (1x1 conv
to one channel, BatchNorm, sigmoid), each with BatchNorm kept ("bn") and folded into the convolutions
("folded"); opsets 13 and 17. Then, from the repository root:

    python3 tests/peers/pytorch/export_onnx_models.py --out tests/peers/pytorch/out
    mvn -B verify -Dtest=OnnxPyTorchPeerTest
"""
import argparse, os

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from safetensors.torch import save_file

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


def fold_batchnorm(module):
    """Replaces every Conv2d followed by BatchNorm2d (as siblings in the module tree) by the fused conv."""
    names = list(module._modules.keys())
    for i, name in enumerate(names):
        child = module._modules[name]
        if child is None:
            continue
        fold_batchnorm(child)
        nxt = module._modules[names[i + 1]] if i + 1 < len(names) else None
        if isinstance(child, nn.Conv2d) and isinstance(nxt, nn.BatchNorm2d):
            module._modules[name] = torch.nn.utils.fusion.fuse_conv_bn_eval(child, nxt)
            module._modules[names[i + 1]] = nn.Identity()
    return module


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
    for name, (make, shape, outputs) in models.items():
        base = make().eval()
        randomize_batchnorm(base, g)
        x = torch.rand(shape, generator=g)
        for variant in ["bn", "folded"]:
            model = make().eval()
            model.load_state_dict(base.state_dict())
            if variant == "folded":
                # The torchvision modules keep conv and bn as separate attributes, not siblings in order,
                # except inside Sequential; fuse where they are siblings and let the exporter fold the rest.
                fold_batchnorm(model)
            with torch.no_grad():
                expected = model(x)
            expected = expected if isinstance(expected, tuple) else (expected,)
            for opset in [13, 17]:
                stem = os.path.join(a.out, f"{name}_{variant}_opset{opset}")
                torch.onnx.export(model, (x,), stem + ".onnx", opset_version=opset, input_names=["input"], output_names=outputs,
                                  dynamic_axes={n: {0: "N"} for n in ["input"] + outputs},
                                  do_constant_folding=variant == "folded",
                                  training=torch.onnx.TrainingMode.EVAL if variant == "folded" else torch.onnx.TrainingMode.PRESERVE,
                                  dynamo=False)
                tensors = {"input": x.contiguous()}
                tensors.update({n: t.contiguous() for n, t in zip(outputs, expected)})
                save_file(tensors, stem + ".reference.safetensors")
                print("wrote", stem + ".onnx")


if __name__ == "__main__":
    main()
