"""Trains Silhouette's `fmnist-resnet` in PyTorch and writes its weights as safetensors.

The PyTorch peer of `silhouette train` (it trained the bundled model before Silhouette's own trainer
did; the same recipe there gives 92.72%, this script 92.71%): the module tree mirrors
dev.silhouette.graph.Models#smallResNet exactly, so the state_dict names are Silhouette's parameter
names. The silhouette branch is present but receives no loss here (it is trained by the training
issue's joint loss), so only its BatchNorm statistics are fitted.

    python3 train_fmnist_resnet.py --data DIR --out model.safetensors [--epochs 15] [--seed 0]
"""
import argparse, gzip, json, struct, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class Silhouette(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.conv = nn.Conv2d(cin, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(1)

    def forward(self, x):
        return torch.sigmoid(self.bn(self.conv(x)))


class FmnistResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = nn.Sequential(Block(16, 16, 1))
        self.silhouette = Silhouette(16)
        self.layer2 = nn.Sequential(Block(16, 32, 2))
        self.layer3 = nn.Sequential(Block(32, 64, 2))
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = self.layer1(F.relu(self.bn1(self.conv1(x))))
        self.silhouette(x)
        x = self.layer3(self.layer2(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def augment(x, gen):
    """Random crop with 2 pixels of zero padding and horizontal flip, on the device."""
    n = x.shape[0]
    padded = F.pad(x, (2, 2, 2, 2))
    dy = torch.randint(0, 5, (n,), device=x.device, generator=gen)
    dx = torch.randint(0, 5, (n,), device=x.device, generator=gen)
    rows = (dy[:, None] + torch.arange(28, device=x.device)[None, :])
    cols = (dx[:, None] + torch.arange(28, device=x.device)[None, :])
    out = padded[:, 0][torch.arange(n, device=x.device)[:, None, None], rows[:, :, None], cols[:, None, :]]
    flip = torch.rand(n, device=x.device, generator=gen) < 0.5
    out = torch.where(flip[:, None, None], out.flip(-1), out)
    return out[:, None]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    gen = torch.Generator(device=dev).manual_seed(a.seed)
    load = lambda name: torch.tensor(read_idx(f"{a.data}/{name}"))
    xtr = load("train-images-idx3-ubyte.gz").float().div(255).to(dev)[:, None]
    ytr = load("train-labels-idx1-ubyte.gz").long().to(dev)
    xte = load("t10k-images-idx3-ubyte.gz").float().div(255).to(dev)[:, None]
    yte = load("t10k-labels-idx1-ubyte.gz").long().to(dev)
    model = FmnistResNet().to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, weight_decay=5e-4, nesterov=True)
    steps = a.epochs * (len(xtr) // a.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, a.lr, total_steps=steps, pct_start=0.15)
    t0 = time.time()
    for epoch in range(a.epochs):
        model.train()
        perm = torch.randperm(len(xtr), device=dev, generator=gen)
        for i in range(len(xtr) // a.batch):
            idx = perm[i * a.batch:(i + 1) * a.batch]
            loss = F.cross_entropy(model(augment(xtr[idx], gen)), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        model.eval()
        with torch.no_grad():
            acc = sum((model(xte[i:i + 1000]).argmax(1) == yte[i:i + 1000]).sum().item() for i in range(0, len(xte), 1000)) / len(xte)
        print(f"epoch {epoch + 1}/{a.epochs} loss {loss.item():.4f} test accuracy {acc:.4f} ({time.time() - t0:.1f} s)", flush=True)
    state = {k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    meta = {"silhouette.model": "fmnist-resnet", "silhouette.silhouette_after": "layer1", "silhouette.num_classes": "10",
            "silhouette.input_size": "28", "silhouette.trained_by": "tests/peers/pytorch/train_fmnist_resnet.py",
            "silhouette.training": json.dumps(vars(a) | {"torch": torch.__version__, "device": torch.cuda.get_device_name() if dev == "cuda" else "cpu",
                                                           "test_accuracy": acc, "seconds": round(time.time() - t0, 1)})}
    write_safetensors(a.out, state, meta)


def write_safetensors(path, tensors, metadata):
    """The safetensors layout written directly, so the script needs only torch and numpy."""
    header, offset, blobs = {"__metadata__": metadata}, 0, []
    for name, t in tensors.items():
        b = t.numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


if __name__ == "__main__":
    main()
