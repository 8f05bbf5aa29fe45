"""The `gpunet-export` command: a saved model to ONNX (or to .safetensors / .npz).

    gpunet-export MODEL.npz OUT.onnx [--opset 17]

The output's suffix picks the format. A missing or damaged model file, a layer without an ONNX
exporter, or a missing `onnx` package end with exit code 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from gpunet.cli_files import Parser, UsageError
from gpunet.interop import onnx as onnx_export
from gpunet.loading import load_model

FORMATS = (".onnx", ".safetensors", ".npz")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="gpunet-export",
                description="Convert a saved gpunet model (.npz or .safetensors) to ONNX, "
                            "safetensors or .npz, by the output's suffix.")
    p.add_argument("model", help="a model written by model.save (.npz or .safetensors)")
    p.add_argument("out", help=f"the file to write; its suffix is one of {', '.join(FORMATS)}")
    p.add_argument("--opset", type=int, default=onnx_export.OPSET,
                   help=f"ONNX opset (>= {onnx_export.OPSET}; default %(default)s)")
    return p


def run(args: argparse.Namespace) -> str:
    """Convert; return the line to print."""
    out = Path(args.out)
    if out.suffix not in FORMATS:
        raise UsageError(f"OUT must end in one of {', '.join(FORMATS)}, got {str(out)!r}")
    model = load_model(args.model, device="cpu")
    start = time.perf_counter()
    if out.suffix == ".onnx":
        onnx_export.export(model, out, args.opset)
        what = f"ONNX opset {args.opset}, input (batch, " \
               f"{', '.join(map(str, onnx_export.input_dims(model)))})"
    else:
        model.save(out)
        what = out.suffix[1:]
    seconds = time.perf_counter() - start
    return f"wrote {out}: {what}, {out.stat().st_size:,} bytes in {seconds:.2f} s"


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 written, 2 a user error."""
    try:
        print(run(build_parser().parse_args(argv)))
    except (UsageError, FileNotFoundError, ValueError, ImportError) as exc:
        message = " ".join(str(exc).split())
        print(f"gpunet-export: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
