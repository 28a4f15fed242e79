"""Newton-Schulz orthogonalisation: Muon (Frobenius normalisation, 5 iterations) against
Turbo-Muon (AOL preconditioning, 4 iterations), timed side by side in one run.

    python scripts/bench_newton_schulz.py [--sizes 256x256 512x1024 1024x1024] [--repeats 20] [--device cpu]

For each matrix shape it prints the median time of each, the speed ratio muon/turbo, and each
result's orthogonality error: max |sigma_i - 1| over the singular values of the output, and
||X X^T - I||_F / sqrt(rows) (on the wide orientation). Inputs are Gaussian matrices, as the
paper's benchmark; the two methods alternate within each repeat so load drifts hit both alike.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from tqdm import tqdm

from optimlib.newton_schulz import MUON_NS_COEFFICIENTS, orthogonalize
from submissions.turbo_muon.submission import TURBO_NS_COEFFICIENTS

METHODS = {
    "muon": lambda G: orthogonalize(G, MUON_NS_COEFFICIENTS),
    "turbo_muon": lambda G: orthogonalize(G, TURBO_NS_COEFFICIENTS, aol_preconditioning=True),
}


def orthogonality_errors(X: torch.Tensor) -> tuple[float, float]:
    X = X.double()
    wide = X if X.shape[0] <= X.shape[1] else X.mT
    singular_values = torch.linalg.svdvals(wide)
    gram_error = torch.linalg.matrix_norm(wide @ wide.mT - torch.eye(wide.shape[0], dtype=wide.dtype, device=wide.device))
    return float((singular_values - 1).abs().max()), float(gram_error / wide.shape[0] ** 0.5)


def parse_shape(text: str) -> tuple[int, int]:
    try:
        rows, cols = (int(n) for n in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r}: expected ROWSxCOLS, e.g. 512x1024") from None
    return rows, cols


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(shape: tuple[int, int], repeats: int, device: torch.device, dtype: torch.dtype) -> dict[str, dict[str, float]]:
    G = torch.randn(*shape, generator=torch.Generator().manual_seed(0), dtype=dtype).to(device)
    times: dict[str, list[float]] = {name: [] for name in METHODS}
    for fn in METHODS.values():  # warm-up (allocator, kernels)
        fn(G)
    for _ in range(repeats):
        for name, fn in METHODS.items():
            synchronize(device)
            start = time.perf_counter()
            fn(G)
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    report = {}
    for name, fn in METHODS.items():
        max_error, gram_error = orthogonality_errors(fn(G))
        report[name] = {"median_s": statistics.median(times[name]), "sigma_error": max_error, "gram_error": gram_error}
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=parse_shape, default=[(256, 256), (512, 1024), (1024, 1024)])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    args = parser.parse_args(argv)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    print(f"device {device}, dtype {args.dtype}, {args.repeats} repeats, median times")
    print(f"{'shape':>11} | {'muon ms':>8} {'turbo ms':>8} {'speed-up':>8} | {'muon |s-1|':>10} {'turbo |s-1|':>11} "
          f"| {'muon gram':>9} {'turbo gram':>10}")
    for shape in tqdm(args.sizes, desc="shapes", leave=False):
        r = bench(shape, args.repeats, device, dtype)
        muon, turbo = r["muon"], r["turbo_muon"]
        tqdm.write(f"{shape[0]:>5}x{shape[1]:<5} | {1e3 * muon['median_s']:>8.2f} {1e3 * turbo['median_s']:>8.2f} "
                   f"{muon['median_s'] / turbo['median_s']:>7.2f}x | {muon['sigma_error']:>10.3f} {turbo['sigma_error']:>11.3f} "
                   f"| {muon['gram_error']:>9.3f} {turbo['gram_error']:>10.3f}")


if __name__ == "__main__":
    main()
