"""One :class:`~pyro_dgm.data.spec.DatasetSpec` per dataset: files, mirrors, SHA-256, parser, splits.

Checksums: the MNIST files are pinned (SHA-256 of the decompressed IDX payload,
computed from the copies this project holds; the ``.gz`` wrappers differ between
mirrors), and so are the MATLAB form of binarised MNIST and the DNA, Mushrooms and
NIPS-0-12 files of the DEBD mirror. Every other file has ``sha256=None`` — nobody here has seen it — and is
trusted on first use: the first good copy's hash goes into the cache folder's
manifest, with a warning, and later loads are checked against it.

Expected sizes: every part's number of examples is checked when it is parsed, so a
mirror that carries another split raises instead of silently changing the benchmark.
"""

from __future__ import annotations

import functools

from pyro_dgm.data.amat import read_amat
from pyro_dgm.data.cifar import CIFAR10_IMAGE_SHAPE, CIFAR10_TEST_MEMBERS, CIFAR10_TRAIN_MEMBERS, read_cifar10
from pyro_dgm.data.csv01 import read_csv01
from pyro_dgm.data.embedded import read_embedded_split
from pyro_dgm.data.idx import read_idx_images
from pyro_dgm.data.mat import read_mat_images
from pyro_dgm.data.spec import DatasetPart, DatasetSpec, RemoteFile, SplitPiece, whole

MNIST_IMAGE_SIDE = 28
MNIST_PIXELS = MNIST_IMAGE_SIDE * MNIST_IMAGE_SIDE
MNIST_NUM_TRAIN_FILE, MNIST_NUM_TEST = 60_000, 10_000
MNIST_NUM_VALID = 10_000
"""The last 10000 training images form the validation split (the convention of the binarised-MNIST benchmark)."""
MNIST_NUM_TRAIN = MNIST_NUM_TRAIN_FILE - MNIST_NUM_VALID

OMNIGLOT_NUM_TRAIN_FILE, OMNIGLOT_NUM_TEST = 24_345, 8_070
OMNIGLOT_NUM_VALID = 1_345
"""The DVAE# code holds out the last 1345 training images of Burda et al.'s split for validation."""

CIFAR10_NUM_TRAIN_FILE, CIFAR10_NUM_TEST = 50_000, 10_000
CIFAR10_NUM_VALID = 5_000
"""The last 5000 training images form the validation split (same layout as MNIST)."""

MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
"""The original host (second) often refuses scripted downloads; PyTorch's mirror serves the same payloads."""

MNIST_PAYLOAD_SHA256 = {
    "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
}
"""SHA-256 of the gunzipped IDX payloads, computed from the project's copies (``sha256sum`` of ``zcat``)."""

FASHION_MNIST_MIRROR = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
BINARIZED_MNIST_MIRROR = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"
OMNIGLOT_URL = "https://raw.githubusercontent.com/yburda/iwae/master/datasets/OMNIGLOT/chardata.mat"
CALTECH_URL = "https://people.cs.umass.edu/~marlin/data/caltech101_silhouettes_28_split1.mat"
DEBD_MIRROR = "https://raw.githubusercontent.com/arranger1044/DEBD/master/datasets/"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"

NADE_TABLE = "Larochelle & Murray (2011), The Neural Autoregressive Distribution Estimator, AISTATS, Table 1"

UCI_NADE_SPLITS: dict[str, tuple[int, int, int, int]] = {
    "adult": (123, 5_000, 1_414, 26_147),
    "connect4": (126, 16_000, 4_000, 47_557),
    "dna": (180, 1_400, 600, 1_186),
    "mushrooms": (112, 2_000, 500, 5_624),
    "nips": (500, 400, 100, 1_240),
    "ocr_letters": (128, 32_152, 10_000, 10_000),
    "rcv1": (150, 40_000, 10_000, 150_000),
    "web": (300, 14_000, 3_188, 32_561),
}
"""Name to (number of variables, train, valid, test), from the NADE paper's Table 1."""

UCI_SPLITS = {**UCI_NADE_SPLITS, "dna": (180, 1_600, 400, 1_186)}
"""The splits the registry checks: NADE's, except DNA, whose only copy at hand (the DEBD mirror)
cuts the same 2000 training-and-validation examples 1600/400 instead of NADE's 1400/600."""

UCI_SHA256: dict[str, dict[str, str]] = {
    "dna": {
        "train": "bb8de0ca4b6ad9b610036b7a302962ebecd4b504354b14c02c7d0bee48d207d9",
        "valid": "4b0fc89cda5eaf5c75926e281afb6af99de194a546070d5b81b524ba251f4f3f",
        "test": "fec3ae7b26804020a9c43c99828441c5e08bb76b23719368a74ad2b09af99100",
    },
    "mushrooms": {
        "train": "465c712c066bbbee3ccceded24bbe42b4c379df67b524e28cce9bf3a8b83f27b",
        "valid": "5a067e6854df71623415e6adc8e913cbff766637a324788882ba800907aa5385",
        "test": "313c5f04b5d0a18bee2f2ffa264be265d09f5362aad6f714637acd9552f81aa0",
    },
    "nips": {
        "train": "4d744cb1f2c725405bff6ef6878df06eafbbc2a91f0510e0f3d8a508b05ec7bb",
        "valid": "b06acd8e6a701d63d4e58b5076c11c59bcd0343fb9b1fbb5997459d3e6b8ca96",
        "test": "48711bdaffbd43aa439679785e19d9cc80c64a157fa84eadc5dce60ee4edf7bc",
    },
}
"""SHA-256 of the DEBD mirror's files, computed from the project's copies (the other sets: trust on first use)."""

DNA_SPLIT_NOTE = (
    "The DEBD mirror's dna files are the 1600/400/1186 split of Van Haaren & Davis (2012); NADE and BiHM "
    "Table 1 used 1400/600/1186 (the same 2000 examples for training and validation, the same 1186 test "
    "examples). Results on dna here train on 200 more examples than the published ones."
)

UCI_NOTES = {
    "dna": DNA_SPLIT_NOTE,
    "web": (
        "The DEBD mirror does not hold 'web' (its 'MSWeb' is another dataset); place NADE-split "
        "files web.{train,valid,test}.data (comma-separated 0/1 rows) in root= or the cache folder."
    ),
}

DATASETS: dict[str, DatasetSpec] = {}
"""The registry: dataset name to its spec."""


def register_dataset(spec: DatasetSpec, *, replace: bool = False) -> DatasetSpec:
    """Add ``spec`` to the registry (``replace=True`` to overwrite an entry of the same name)."""
    if spec.name in DATASETS and not replace:
        raise ValueError(f"name {spec.name!r} is already registered; pass replace=True to overwrite it")
    DATASETS[spec.name] = spec
    return spec


def get_dataset_spec(name: str) -> DatasetSpec:
    """The spec of dataset ``name``; ``ValueError`` naming ``name`` and the choices otherwise."""
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        raise ValueError(f"name must be one of {sorted(DATASETS)}, got {name!r}") from None


def _train_valid_test_layout(num_train_file: int, num_valid: int) -> dict[str, tuple[SplitPiece, ...]]:
    """Splits of a set shipped as one training file and one test file: valid = the last ``num_valid`` training rows."""
    return {
        "train": (SplitPiece("training", 0, num_train_file - num_valid),),
        "valid": (SplitPiece("training", num_train_file - num_valid),),
        "train_full": whole("training"),
        "test": whole("test"),
    }


def _separate_files_layout() -> dict[str, tuple[SplitPiece, ...]]:
    """Splits of a set shipped as train, valid and test parts: train_full = train + valid."""
    return {
        "train": whole("train"),
        "valid": whole("valid"),
        "train_full": (SplitPiece("train"), SplitPiece("valid")),
        "test": whole("test"),
    }


def _idx_images_spec(name: str, mirrors: tuple[str, ...], payload_sha256: dict[str, str], **text: str) -> DatasetSpec:
    files = tuple(
        RemoteFile(
            filename,
            tuple(mirror + filename for mirror in mirrors),
            sha256=payload_sha256.get(filename),
            sha256_after_gunzip=filename in payload_sha256,
        )
        for filename in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz")
    )
    return DatasetSpec(
        name=name,
        example_shape=(MNIST_PIXELS,),
        binary=False,
        files=files,
        parts={
            "training": DatasetPart(("train-images-idx3-ubyte.gz",), read_idx_images, MNIST_NUM_TRAIN_FILE),
            "test": DatasetPart(("t10k-images-idx3-ubyte.gz",), read_idx_images, MNIST_NUM_TEST),
        },
        splits=_train_valid_test_layout(MNIST_NUM_TRAIN_FILE, MNIST_NUM_VALID),
        **text,
    )


def _uci_spec(name: str) -> DatasetSpec:
    num_variables, *sizes = UCI_SPLITS[name]
    has_mirror = name != "web"
    pinned = UCI_SHA256.get(name, {})
    files = tuple(
        RemoteFile(
            f"{name}.{split}.data",
            (f"{DEBD_MIRROR}{name}/{name}.{split}.data",) if has_mirror else (),
            sha256=pinned.get(split),
        )
        for split in ("train", "valid", "test")
    )
    return DatasetSpec(
        name=name,
        example_shape=(num_variables,),
        binary=True,
        files=files,
        parts={
            split: DatasetPart((f"{name}.{split}.data",), read_csv01, size)
            for split, size in zip(("train", "valid", "test"), sizes)
        },
        splits={split: whole(split) for split in ("train", "valid", "test")},
        source=(
            f"UCI binary set '{name}' as split in the NADE paper ({NADE_TABLE}); CSV mirror "
            "github.com/arranger1044/DEBD (datasets/<name>/<name>.{train,valid,test}.data)"
        ),
        licence="No licence stated by the mirror; the data come from the UCI and LIBSVM repositories. Cite Larochelle & Murray (2011).",
        size_reference=NADE_TABLE if name != "dna" else f"{NADE_TABLE}; 1600/400 train/valid cut of the DEBD mirror",
        notes=UCI_NOTES.get(name, ""),
    )


def _mat_part(filename: str, key: str, num_examples: int, *, images_along_columns: bool) -> DatasetPart:
    reader = functools.partial(
        read_mat_images,
        key=key,
        images_along_columns=images_along_columns,
        height=MNIST_IMAGE_SIDE,
        width=MNIST_IMAGE_SIDE,
    )
    return DatasetPart((filename,), reader, num_examples)


register_dataset(
    _idx_images_spec(
        "mnist",
        MNIST_MIRRORS,
        MNIST_PAYLOAD_SHA256,
        source="MNIST, Y. LeCun and C. Cortes, http://yann.lecun.com/exdb/mnist/ (IDX files)",
        licence="CC BY-SA 3.0 (Yann LeCun and Corinna Cortes)",
        size_reference="the IDX headers (60000 training, 10000 test images)",
        notes="Grey levels in [0, 1]; binarise with BinarizedBatches (dynamic or static).",
    )
)

register_dataset(
    _idx_images_spec(
        "fashion_mnist",
        (FASHION_MNIST_MIRROR,),
        {},
        source="Fashion-MNIST, H. Xiao, K. Rasul and R. Vollgraf (Zalando Research, 2017), github.com/zalandoresearch/fashion-mnist",
        licence="MIT License (Zalando SE)",
        size_reference="Xiao et al. (2017): 60000 training, 10000 test images",
        notes="Same layout as mnist; grey levels in [0, 1].",
    )
)

BINARIZED_MNIST_SIZES = (("train", MNIST_NUM_TRAIN), ("valid", MNIST_NUM_VALID), ("test", MNIST_NUM_TEST))

BINARIZED_MNIST_MAT_SHA256 = {
    "binarized_mnist_train.mat": "79a0312c7389d855cfc97e3812de3998417c5829d8a51543b56a90a91252ae7e",
    "binarized_mnist_valid.mat": "7436afc856959075c7787025bb8a4ba2b520b9230ee39667c66aa7dd2819dd68",
    "binarized_mnist_test.mat": "5bc30222e1e7896cbccd1e1db6b28540cc1230f4d2d5473841a5f6cc54be8d38",
}
"""SHA-256 of the MATLAB form of Larochelle's binarised MNIST (a public mirror of the ``.amat``
files: key ``X``, uint8, one row-major image per row), computed from the project's copies."""

BINARIZED_MNIST_TEXT = dict(
    source=f"Static binarization of MNIST by H. Larochelle, {BINARIZED_MNIST_MIRROR} (.amat files)",
    licence="Derived from MNIST: CC BY-SA 3.0 (Yann LeCun and Corinna Cortes). Cite Larochelle & Murray (2011).",
    size_reference="Larochelle & Murray (2011): 50000/10000/10000",
)


def _binarized_mnist_mat_form() -> DatasetSpec:
    """The same images as ``binarized_mnist_{split}.mat`` (no download location: place them in ``root=``)."""
    reader = functools.partial(
        read_mat_images, key="X", images_along_columns=False, height=MNIST_IMAGE_SIDE, width=MNIST_IMAGE_SIDE,
        column_major=False,
    )
    return DatasetSpec(
        name="binarized_mnist",
        example_shape=(MNIST_PIXELS,),
        binary=True,
        files=tuple(
            RemoteFile(filename, (), sha256=sha256) for filename, sha256 in BINARIZED_MNIST_MAT_SHA256.items()
        ),
        parts={
            split: DatasetPart((f"binarized_mnist_{split}.mat",), reader, size) for split, size in BINARIZED_MNIST_SIZES
        },
        splits=_separate_files_layout(),
        notes="MATLAB form (key X, uint8 0/1, row-major images), SHA-256 pinned.",
        **BINARIZED_MNIST_TEXT,
    )


register_dataset(
    DatasetSpec(
        name="binarized_mnist",
        example_shape=(MNIST_PIXELS,),
        binary=True,
        files=tuple(
            RemoteFile(f"binarized_mnist_{split}.amat", (f"{BINARIZED_MNIST_MIRROR}binarized_mnist_{split}.amat",))
            for split in ("train", "valid", "test")
        ),
        parts={
            split: DatasetPart((f"binarized_mnist_{split}.amat",), read_amat, size)
            for split, size in BINARIZED_MNIST_SIZES
        },
        splits=_separate_files_layout(),
        notes=(
            "Read from the .amat text files, or from binarized_mnist_{train,valid,test}.mat (MATLAB, key X) "
            "when those are in the folder."
        ),
        alternative_forms=(_binarized_mnist_mat_form(),),
        **BINARIZED_MNIST_TEXT,
    )
)

register_dataset(
    DatasetSpec(
        name="omniglot",
        example_shape=(MNIST_PIXELS,),
        binary=False,
        files=(RemoteFile("chardata.mat", (OMNIGLOT_URL,)),),
        parts={
            "training": _mat_part("chardata.mat", "data", OMNIGLOT_NUM_TRAIN_FILE, images_along_columns=True),
            "test": _mat_part("chardata.mat", "testdata", OMNIGLOT_NUM_TEST, images_along_columns=True),
        },
        splits=_train_valid_test_layout(OMNIGLOT_NUM_TRAIN_FILE, OMNIGLOT_NUM_VALID),
        source=(
            "Omniglot (Lake, Salakhutdinov & Tenenbaum, 2015), 28x28 split of Burda, Grosse & Salakhutdinov "
            "(2016), chardata.mat in github.com/yburda/iwae (datasets/OMNIGLOT/)"
        ),
        licence="MIT License (Omniglot data, github.com/brendenlake/omniglot); cite Lake et al. (2015) and Burda et al. (2016).",
        size_reference="Burda et al. (2016): 24345 training, 8070 test images",
        notes=(
            "Grey levels in [0, 1], binarised dynamically by convention. valid = the last 1345 training "
            "images (as in the DVAE# code), train = the first 23000."
        ),
    )
)

register_dataset(
    DatasetSpec(
        name="caltech101_silhouettes",
        example_shape=(MNIST_PIXELS,),
        binary=True,
        files=(RemoteFile("caltech101_silhouettes_28_split1.mat", (CALTECH_URL,)),),
        parts={
            split: _mat_part("caltech101_silhouettes_28_split1.mat", key, size, images_along_columns=False)
            for split, key, size in (("train", "train_data", 4_100), ("valid", "val_data", 2_264), ("test", "test_data", 2_307))
        },
        splits=_separate_files_layout(),
        source=(
            "CalTech 101 Silhouettes 28x28, split 1 (Marlin, Swersky, Chen & de Freitas, 2010), "
            "people.cs.umass.edu/~marlin/data.shtml"
        ),
        licence="No licence stated by the source; cite Marlin et al. (2010).",
        size_reference="Marlin et al. (2010): 4100/2264/2307",
        notes="Pixel values kept as stored (0/1); images reordered from MATLAB column-major to row-major.",
    )
)

for _name in UCI_NADE_SPLITS:
    register_dataset(_uci_spec(_name))

register_dataset(
    DatasetSpec(
        name="cifar10",
        example_shape=CIFAR10_IMAGE_SHAPE,
        binary=False,
        files=(RemoteFile("cifar-10-python.tar.gz", (CIFAR10_URL,)),),
        parts={
            "training": DatasetPart(
                ("cifar-10-python.tar.gz",),
                functools.partial(read_cifar10, members=CIFAR10_TRAIN_MEMBERS),
                CIFAR10_NUM_TRAIN_FILE,
            ),
            "test": DatasetPart(
                ("cifar-10-python.tar.gz",), functools.partial(read_cifar10, members=CIFAR10_TEST_MEMBERS), CIFAR10_NUM_TEST
            ),
        },
        splits=_train_valid_test_layout(CIFAR10_NUM_TRAIN_FILE, CIFAR10_NUM_VALID),
        source="CIFAR-10 (Krizhevsky, 2009), python version, https://www.cs.toronto.edu/~kriz/cifar.html",
        licence="No licence stated by the source; cite Krizhevsky (2009).",
        size_reference="Krizhevsky (2009): 50000 training, 10000 test images",
        notes="Shape (N, 3, 32, 32), intensities in [0, 1].",
    )
)

register_dataset(
    DatasetSpec(
        name="embedded_mnist",
        example_shape=(MNIST_PIXELS,),
        binary=False,
        files=(),
        parts={
            split: DatasetPart((), functools.partial(read_embedded_split, split=split), size)
            for split, size in (("train", 3_000), ("valid", 1_000), ("test", 1_000))
        },
        splits={split: whole(split) for split in ("train", "valid", "test")},
        source="A class-balanced subset of MNIST shipped in pyro_dgm/data/embedded/ (no download)",
        licence="CC BY-SA 3.0 (Yann LeCun and Corinna Cortes); see pyro_dgm/data/embedded/LICENSE_MNIST.txt",
        size_reference="pyro_dgm/data/make_embedded.py (300/100/100 images per digit)",
        notes="train from MNIST train, valid from MNIST valid, test from MNIST test; grey levels in [0, 1].",
    )
)
