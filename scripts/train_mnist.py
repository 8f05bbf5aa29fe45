#!/usr/bin/env python3
"""Train an MLP or CNN on MNIST / Fashion-MNIST with gpunet (same as the `gpunet-train` command).

    python scripts/train_mnist.py --device gpu --model cnn
"""

import sys

from gpunet.cli import main

if __name__ == "__main__":
    sys.exit(main())
