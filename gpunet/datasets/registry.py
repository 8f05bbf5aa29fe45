"""What each data set is made of: file names, published SHA-256 sums and download mirrors.

The mirrors are the public ones torchvision and TensorFlow Datasets use. Point a data set at
other mirrors by editing `MIRRORS[name]`, or by setting `GPUNET_MNIST_MIRROR` /
`GPUNET_FASHION_MNIST_MIRROR` to one or more base URLs (comma- or space-separated), which then
replace the built-in list.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

MIRRORS: dict[str, list[str]] = {
    "mnist": [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ],
    "fashion-mnist": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
}

MIRROR_ENV = {"mnist": "GPUNET_MNIST_MIRROR", "fashion-mnist": "GPUNET_FASHION_MNIST_MIRROR"}

# SHA-256 of the published gzip files, keyed "<folder>/<file name>". A download whose sum
# differs is discarded. The train-5k files exist only in the gpunet package (no mirror).
SHA256: dict[str, str] = {
    "mnist/train-images-idx3-ubyte.gz":
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "mnist/train-labels-idx1-ubyte.gz":
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "mnist/t10k-images-idx3-ubyte.gz":
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "mnist/t10k-labels-idx1-ubyte.gz":
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    "mnist/train-5k-images-idx3-ubyte.gz":
        "5eb5a55b9b127e1bbeed6e0c1dcd0cbe8e2e8ef3fffe1f6f586a9c66a10bfa27",
    "mnist/train-5k-labels-idx1-ubyte.gz":
        "c4212cb8cf5b3856dc6a93954d0a71e872869a3ed569561ef5993f6e5a0b3bec",
    "fashion-mnist/train-images-idx3-ubyte.gz":
        "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "fashion-mnist/train-labels-idx1-ubyte.gz":
        "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    "fashion-mnist/t10k-images-idx3-ubyte.gz":
        "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "fashion-mnist/t10k-labels-idx1-ubyte.gz":
        "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
}

TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
FULL_TRAIN = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")


@dataclass(frozen=True)
class Spec:
    """One loadable data set: its files (train images, train labels, test images, test labels)
    live in `<data folder>/<folder>/`; `mirror` names the `MIRRORS` entry to download from
    (None: not downloadable); `bundled` means the package's own copy (the 5k sample and the
    official test set, in gpunet/datasets/data/) is searched last, after the cache."""

    name: str
    title: str
    folder: str
    files: tuple[str, str, str, str]
    mirror: str | None
    bundled: bool = False

    def mirrors(self) -> list[str]:
        """Base URLs to try, in order (the environment variable wins over `MIRRORS`)."""
        if self.mirror is None:
            return []
        value = os.environ.get(MIRROR_ENV[self.mirror], "").strip()
        bases = [b for b in re.split(r"[,\s]+", value) if b] if value else MIRRORS[self.mirror]
        return [b if b.endswith("/") else b + "/" for b in bases]

    def sha256(self, filename: str) -> str:
        return SHA256[f"{self.folder}/{filename}"]


SPECS: dict[str, Spec] = {
    "mnist": Spec("mnist", "MNIST", "mnist", FULL_TRAIN + TEST_FILES, "mnist", bundled=True),
    "mnist-5k": Spec("mnist-5k", "MNIST 5k sample", "mnist",
                     ("train-5k-images-idx3-ubyte.gz", "train-5k-labels-idx1-ubyte.gz")
                     + TEST_FILES, None, bundled=True),
    "fashion-mnist": Spec("fashion-mnist", "Fashion-MNIST", "fashion-mnist",
                          FULL_TRAIN + TEST_FILES, "fashion-mnist"),
}
DATASETS = tuple(SPECS)
