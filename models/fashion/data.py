#!/usr/bin/python3
"""Fashion-MNIST from Debian's dataset-fashion-mnist, as the model takes it.

Images are upsampled from 28x28 to 64x64 (bilinear) and scaled to [0, 1];
the model normalises them itself.  As a script, writes the test split (or
its first N images) as X.npy (float32 N x 1 x 64 x 64) and Y.npy (int64 N):

    data.py OUT_DIR [--count N] [--split test|train]
"""
import argparse
import gzip
import os
import struct
import sys

import numpy as np
from PIL import Image

DATASET = "/usr/share/datasets/fashion-mnist"
SIZE = 64
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def _idx(path, magic):
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 8 or struct.unpack(">I", data[:4])[0] != magic:
        raise ValueError(f"{path}: not an IDX file of magic {magic:#x}")
    return data


def load(split="test", count=None):
    """(images uint8 N x 28 x 28, labels uint8 N) of a split."""
    prefix = "t10k" if split == "test" else "train"
    img = _idx(os.path.join(DATASET, f"{prefix}-images-idx3-ubyte.gz"), 0x803)
    lab = _idx(os.path.join(DATASET, f"{prefix}-labels-idx1-ubyte.gz"), 0x801)
    n, rows, cols = struct.unpack(">III", img[4:16])
    (m,) = struct.unpack(">I", lab[4:8])
    if n != m or rows != 28 or cols != 28:
        raise ValueError(f"{split}: {n} images of {rows}x{cols} and {m} labels")
    images = np.frombuffer(img, np.uint8, n * 784, 16).reshape(n, 28, 28)
    labels = np.frombuffer(lab, np.uint8, n, 8)
    if count is not None:
        images, labels = images[:count], labels[:count]
    return images, labels


def upsample(images):
    """uint8 N x 28 x 28 -> float32 N x 1 x 64 x 64 in [0, 1]."""
    out = np.empty((len(images), 1, SIZE, SIZE), np.float32)
    for i, im in enumerate(images):
        out[i, 0] = np.asarray(Image.fromarray(im).resize((SIZE, SIZE), Image.BILINEAR), np.float32)
    out *= 1.0 / 255.0
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--count", type=int, default=None, help="first N images only")
    ap.add_argument("--split", choices=["test", "train"], default="test")
    a = ap.parse_args()
    images, labels = load(a.split, a.count)
    os.makedirs(a.out_dir, exist_ok=True)
    np.save(os.path.join(a.out_dir, "X.npy"), upsample(images))
    np.save(os.path.join(a.out_dir, "Y.npy"), labels.astype(np.int64))
    print(f"fashion: {len(labels)} {a.split} images -> {a.out_dir}/X.npy, Y.npy", file=sys.stderr)


if __name__ == "__main__":
    main()
