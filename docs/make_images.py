"""Regenerate the pictures of ``docs/inspect.md`` (needs the Graphviz ``dot`` program).

Run from the repository root::

    python docs/make_images.py          # writes docs/img/*.svg
    python docs/make_images.py --png    # and PNG copies, to look at them
"""

from __future__ import annotations

import argparse
import pathlib

import torch

import fxfault
from fxfault.export import export
from fxfault.testing import lsq_resnet18, lsq_small_cnn

IMG = pathlib.Path(__file__).resolve().parent / "img"


def make_images(png: bool = False) -> list[pathlib.Path]:
    """Write the pictures; returns their paths."""
    IMG.mkdir(exist_ok=True)
    suffixes = (".svg", ".png") if png else (".svg",)
    out = []
    # every fault site of the small CNN, with its bits, shapes and dtypes
    cnn = fxfault.transform(lsq_small_cnn(), ber=1e-3, seed=0)
    for s in suffixes:
        out.append(export(cnn, IMG / f"small_cnn_faulty{s}", example_inputs=torch.zeros(1, 1, 8, 8)))
    # one block of the LSQ ResNet-18: sites in layer2.0 only, nodes within 2 hops of them
    cfg = fxfault.FaultConfig(ber=1e-6, include=("layer2.0.*",))
    resnet = fxfault.transform(lsq_resnet18(), cfg)
    for s in suffixes:
        out.append(
            export(
                resnet,
                IMG / f"resnet18_layer2_0_neighbourhood{s}",
                example_inputs=torch.zeros(1, 3, 32, 32),
                neighbourhood=2,
            )
        )
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--png", action="store_true", help="also write PNG copies")
    for path in make_images(parser.parse_args().png):
        print(path)
