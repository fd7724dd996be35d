#!/usr/bin/python3
"""Trains bwq's test classifier on Fashion-MNIST and exports it to ONNX.

A small MobileNet-style network (inverted residuals with depthwise
convolutions, hardswish, squeeze-and-excite, a final classifier) on the
64x64 upsampled images of data.py.  Needs python3-torch; not part of
`make check` (the exported model is committed).

    train.py [--epochs N] [--out fashion.onnx]
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402

MEAN, STD = 0.2860, 0.3530


class SqueezeExcite(nn.Module):
    def __init__(self, c, squeeze):
        super().__init__()
        self.fc1 = nn.Conv2d(c, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, c, 1)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        s = F.hardsigmoid(self.fc2(F.relu(self.fc1(s))))
        return x * s


class InvertedResidual(nn.Module):
    def __init__(self, cin, expand, cout, kernel, stride, se, act):
        super().__init__()
        self.residual = stride == 1 and cin == cout
        layers = []
        if expand != cin:
            layers += [nn.Conv2d(cin, expand, 1, bias=False), nn.BatchNorm2d(expand), act()]
        layers += [nn.Conv2d(expand, expand, kernel, stride, kernel // 2, groups=expand, bias=False),
                   nn.BatchNorm2d(expand), act()]
        if se:
            layers.append(SqueezeExcite(expand, max(8, expand // 4)))
        layers += [nn.Conv2d(expand, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


class FashionNet(nn.Module):
    def __init__(self):
        super().__init__()
        RE, HS = nn.ReLU, nn.Hardswish
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), HS())  # 32x32
        self.blocks = nn.Sequential(
            InvertedResidual(16, 16, 16, 3, 1, False, RE),
            InvertedResidual(16, 64, 24, 3, 2, False, RE),   # 16x16
            InvertedResidual(24, 72, 24, 3, 1, False, RE),
            InvertedResidual(24, 72, 40, 5, 2, True, HS),    # 8x8
            InvertedResidual(40, 120, 40, 5, 1, True, HS),
            InvertedResidual(40, 240, 80, 3, 2, False, HS),  # 4x4
            InvertedResidual(80, 200, 80, 3, 1, False, HS),
        )
        self.head = nn.Sequential(nn.Conv2d(80, 320, 1, bias=False), nn.BatchNorm2d(320), HS())
        self.fc1 = nn.Linear(320, 256)
        self.drop = nn.Dropout(0.2)
        self.fc2 = nn.Linear(256, 10)

    def forward(self, x):
        x = (x - MEAN) / STD
        x = self.head(self.blocks(self.stem(x)))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc2(self.drop(F.hardswish(self.fc1(x))))


def augment(x):
    # Random horizontal flips and shifts of up to 4 pixels (of 64).
    flip = torch.rand(x.shape[0]) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    dy, dx = np.random.randint(-4, 5, 2)
    return torch.roll(x, shifts=(int(dy), int(dx)), dims=(2, 3))


def evaluate(net, x, y):
    net.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), 500):
            correct += (net(x[i:i + 500]).argmax(1) == y[i:i + 500]).sum().item()
    return correct / len(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "fashion.onnx"))
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    torch.set_num_threads(os.cpu_count() or 1)

    xi, yi = data.load("train")
    xt, yt = data.load("test")
    x_train, y_train = torch.from_numpy(data.upsample(xi)), torch.from_numpy(yi.astype(np.int64))
    x_test, y_test = torch.from_numpy(data.upsample(xt)), torch.from_numpy(yt.astype(np.int64))

    net = FashionNet()
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)
    batch = 128
    steps = a.epochs * (len(x_train) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    t0 = time.time()
    for epoch in range(a.epochs):
        net.train()
        perm = torch.randperm(len(x_train))
        total = 0.0
        for s in range(len(x_train) // batch):
            idx = perm[s * batch:(s + 1) * batch]
            loss = F.cross_entropy(net(augment(x_train[idx])), y_train[idx], label_smoothing=0.05)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
            if s % 100 == 0:
                print(f"\repoch {epoch + 1}/{a.epochs} step {s} loss {total / (s + 1):.4f}", end="", file=sys.stderr)
        acc = evaluate(net, x_test, y_test)
        print(f"\repoch {epoch + 1}/{a.epochs} loss {total / (s + 1):.4f} test top-1 {acc * 100:.2f}% "
              f"({time.time() - t0:.0f} s)", file=sys.stderr)

    net.eval()
    torch.onnx.export(net, torch.zeros(1, 1, data.SIZE, data.SIZE), a.out, opset_version=14,
                      input_names=["image"], output_names=["logits"], do_constant_folding=True)
    print(f"float top-1 on the 10000 test images: {evaluate(net, x_test, y_test) * 100:.2f}% -> {a.out}")


if __name__ == "__main__":
    main()
