"""Datasets for deep generative models of binary data.

``load_dataset(name, split)`` returns float32 pixels in [0, 1]: grey levels for the
sets that are binarised dynamically, exactly 0/1 for the already-binary ones.
Files are downloaded into a cache folder (``PYRO_DGM_DATA``, else the user cache),
verified by SHA-256 (pinned, or recorded on first use), and never needed at all for
``embedded_mnist``, a 5000-image MNIST subset shipped with the package.
:class:`BinarizedBatches` iterates over epochs of minibatches, re-binarising every
epoch, and resumes mid-run from its ``state_dict``. See ``docs/data.md``.

May import: nothing else from :mod:`pyro_dgm`, so that the datasets stand apart from every
model; only :mod:`pyro_dgm.cli` uses them.
"""

from pyro_dgm.data.binarize import dynamic_binarize, static_binarize
from pyro_dgm.data.cache import data_home, dataset_cache_dir
from pyro_dgm.data.checksum import ChecksumMismatchError
from pyro_dgm.data.datasets import DatasetInfo, DatasetSizeError, available_datasets, dataset_info, load_dataset
from pyro_dgm.data.download import DatasetUnavailableError, UnpinnedChecksumWarning
from pyro_dgm.data.embedded import embedded_mnist, embedded_mnist_labels
from pyro_dgm.data.loaders import BinarizedBatches
from pyro_dgm.data.registry import register_dataset
from pyro_dgm.data.spec import DatasetPart, DatasetSpec, RemoteFile, SplitPiece

__all__ = [
    "BinarizedBatches",
    "ChecksumMismatchError",
    "DatasetInfo",
    "DatasetPart",
    "DatasetSizeError",
    "DatasetSpec",
    "DatasetUnavailableError",
    "RemoteFile",
    "SplitPiece",
    "UnpinnedChecksumWarning",
    "available_datasets",
    "data_home",
    "dataset_cache_dir",
    "dataset_info",
    "dynamic_binarize",
    "embedded_mnist",
    "embedded_mnist_labels",
    "load_dataset",
    "register_dataset",
    "static_binarize",
]
