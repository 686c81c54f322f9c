#!/usr/bin/env python3
"""cuDNN FP32 and FP16 convolutions, and an INT8 GEMM, through PyTorch on the same layers and batches as
Silhouette's LowBitBenchmark (read from its JSON in the results folder, so the layer list exists once).

Method as LowBitBenchmark's: tensors allocated before timing, three rotated inputs, warm-up launches,
then each launch timed alone by CUDA events; the median and minimum in microseconds.

  fp32, fp16: torch.nn.functional.conv2d, channels_last, torch.backends.cudnn.benchmark = True
              (cuDNN picks its fastest algorithm; FP32 with TF32 disabled, so it is true FP32).
  int8-gemm:  PyTorch exposes no INT8 cuDNN convolution on CUDA (its quantized convs run on the CPU), so
              the INT8 column is the convolution's GEMM alone, torch._int_mm (cuBLASLt IMMA) on an
              already unfolded N*OH*OW x C*K*K int8 matrix: a lower bound for an INT8 implicit-GEMM conv.

Never run yet: written in a session without a GPU. Run by native-build/gpu-bench.sh.
"""
import argparse
import glob
import json
import os
import statistics

import torch
import torch.nn.functional as F

ROTATIONS = 3


def timed(fn, warmup, runs):
    for i in range(warmup):
        fn(i % ROTATIONS)
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    us = []
    for i in range(runs):
        start.record()
        fn(i % ROTATIONS)
        stop.record()
        stop.synchronize()
        us.append(start.elapsed_time(stop) * 1000.0)
    return statistics.median(us), min(us)


def slug_of(device):
    return "-".join(filter(None, "".join(ch if ch.isalnum() else " " for ch in device.lower()).split()))


def layers_from(results, device):
    files = glob.glob(os.path.join(results, f"lowbit-kernels-{slug_of(device)}.json")) or sorted(glob.glob(os.path.join(results, "lowbit-kernels-*.json")))
    if not files:
        raise SystemExit(f"no lowbit-kernels-*.json in {results}: run LowBitBenchmark first (native-build/gpu-bench.sh)")
    with open(files[-1]) as f:
        rows = json.load(f)["rows"]
    seen, layers = set(), []
    for r in rows:
        key = (r["network"], r["layer"], r["batch"])
        if key not in seen:
            seen.add(key)
            layers.append(r)
    return layers


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="docs/results")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--runs", type=int, default=50)
    args = ap.parse_args()
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    device = torch.cuda.get_device_name(0)
    out_rows = []
    for l in layers_from(args.out, device):
        n, c, h, w, o, k, s, p = l["batch"], l["c"], l["h"], l["w"], l["o"], l["k"], l["stride"], l["pad"]
        oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        macs = n * o * oh * ow * c * k * k
        for name, dtype in (("cudnn-fp32", torch.float32), ("cudnn-fp16", torch.float16)):
            xs = [torch.randn(n, c, h, w, device="cuda", dtype=dtype).to(memory_format=torch.channels_last) for _ in range(ROTATIONS)]
            wt = torch.randn(o, c, k, k, device="cuda", dtype=dtype).to(memory_format=torch.channels_last)
            with torch.no_grad():
                med, lo = timed(lambda r: F.conv2d(xs[r], wt, stride=s, padding=p), args.warmup, args.runs)
            size = torch.finfo(dtype).bits // 8
            out_rows.append(dict(network=l["network"], layer=l["layer"], batch=n, variant=name, median_us=med, min_us=lo,
                                 tops=2 * macs / (med * 1e6), activation_bytes=size * (n * c * h * w + n * o * oh * ow)))
        # torch._int_mm needs M > 16 and K, N multiples of 8.
        m, kk = n * oh * ow, c * k * k
        if m > 16 and kk % 8 == 0 and o % 8 == 0:
            a = [torch.randint(-8, 8, (m, kk), device="cuda", dtype=torch.int8) for _ in range(ROTATIONS)]
            b = torch.randint(-8, 8, (kk, o), device="cuda", dtype=torch.int8)
            med, lo = timed(lambda r: torch._int_mm(a[r], b), args.warmup, args.runs)
            out_rows.append(dict(network=l["network"], layer=l["layer"], batch=n, variant="int8-gemm (unfolded)", median_us=med, min_us=lo,
                                 tops=2 * macs / (med * 1e6), activation_bytes=m * kk + 4 * m * o))
    path = os.path.join(args.out, f"cudnn-pytorch-{slug_of(device)}.json")
    with open(path, "w") as f:
        json.dump(dict(device=device, torch=torch.__version__, cudnn=torch.backends.cudnn.version(), warmup=args.warmup, runs=args.runs,
                       rotations=ROTATIONS, rows=out_rows), f, indent=1)
    print(f"silhouette: wrote {path} ({len(out_rows)} rows, {device})")


if __name__ == "__main__":
    main()
