"""The one-shot classification benchmark of Lake, Salakhutdinov & Tenenbaum (2015), as released.

A folder or a zip (the release's ``all_runs.zip``) holding ``run01`` .. ``run20``; each run has
``training/class01.png`` .. ``class20.png`` (one image of each of 20 characters of one evaluation
alphabet), ``test/item01.png`` .. ``item20.png`` (another drawer's image of each) and
``class_labels.txt``, one line per test image: ``runNN/test/itemMM.png runNN/training/classKK.png``.
A run is a 20-way 1-shot episode; its error is the fraction of test items whose nearest support
image (in whatever sense the model decides) is not the paired one.

    runs = load_runs("all_runs.zip")          # [OneShotRun] * 20
    runs[0].x_support   # (20, 28, 28) float32, training/class01..20, ink = 1
    runs[0].x_query     # (20, 28, 28) float32, test/item01..20
    runs[0].y_query     # (20,) int: index into x_support of each query's class

Images are decoded exactly as the training splits (``omniglot._decode``: grey levels, inverted so that
ink = 1, 105 -> size by area averaging).
"""
from __future__ import annotations

import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from .._validate import check_count
from .omniglot import _decode

__all__ = ["OneShotRun", "load_runs", "NUM_RUNS"]

NUM_RUNS = 20
_LABELS = "class_labels.txt"
_RUN_RE = re.compile(r"^run(\d{2})$")
_TEST_RE = re.compile(r"^test/item(\d{2})\.png$")
_TRAIN_RE = re.compile(r"^training/class(\d{2})\.png$")


@dataclass(frozen=True)
class OneShotRun:
    """One run: an N-way 1-shot episode with one query per class (N = 20 in the benchmark)."""

    name: str                 # "run01"
    x_support: np.ndarray     # (N, size, size) float32: training/class01..N
    x_query: np.ndarray       # (N, size, size) float32: test/item01..N
    y_query: np.ndarray       # (N,) int64: y_query[m] = k - 1 when item m+1 is paired with class k

    @property
    def n_way(self) -> int:
        return len(self.x_support)


class _Folder:
    def __init__(self, root: Path):
        self.root, self.label = root, str(root)

    def files(self):
        return [p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file()]

    def read(self, rel):
        return (self.root / rel).read_bytes()


class _Zip:
    def __init__(self, path: Path):
        self.label = str(path)
        try:
            self.z = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, EOFError, OSError) as e:
            raise ValueError(f"{path} is not a readable zip file ({e}); it may be truncated: download it again "
                             "(`mlcourse data omniglot --split all_runs`) or pass the extracted folder.") from None

    def files(self):
        return [n for n in self.z.namelist() if not n.endswith("/")]

    def read(self, rel):
        try:
            return self.z.read(rel)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
            raise ValueError(f"{self.label}: member {rel} cannot be read ({e}); the zip is truncated or corrupt: "
                             "download it again or pass the extracted folder.") from None


def _runs_in(source):
    """{run name: prefix inside the source ('' or 'all_runs/')}, from the class_labels.txt files present."""
    runs = {}
    for f in source.files():
        p = PurePosixPath(f)
        if p.name == _LABELS and len(p.parts) >= 2 and _RUN_RE.match(p.parts[-2]):
            prefix = "/".join(p.parts[:-2])
            runs.setdefault(p.parts[-2], prefix + "/" if prefix else "")
    return runs


def _parse_labels(text, where, run):
    """[(item number, class number)] from a class_labels.txt; ValueError naming the line otherwise."""
    pairs = []
    expected = f"'{run}/test/itemMM.png {run}/training/classKK.png'"
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        rels = [q[len(run) + 1:] if q.startswith(run + "/") else q for q in parts]
        m_test = _TEST_RE.match(rels[0]) if len(rels) == 2 else None
        m_train = _TRAIN_RE.match(rels[1]) if len(rels) == 2 else None
        if not (m_test and m_train):
            raise ValueError(f"{where} line {i} is {line.strip()!r}; each line must pair a test image with a "
                             f"training image of the same run, as {expected}.")
        pairs.append((int(m_test[1]), int(m_train[1])))
    if not pairs:
        raise ValueError(f"{where} is empty; it must hold one line {expected} per test image.")
    items = sorted(p[0] for p in pairs)
    if items != list(range(1, len(items) + 1)):
        raise ValueError(f"{where} must name each test image item01..item{len(items):02d} exactly once; it names "
                         f"items {items}.")
    return pairs


def load_runs(path, size=28, num_runs=NUM_RUNS) -> list:
    """Read the benchmark at ``path`` (a folder or a zip holding run01..runNN) into a list of OneShotRun.

    size: images are area-downsampled to (size, size), as ``omniglot.load_split`` does (None keeps 105).
    num_runs: how many runs must be there (run01 .. run<num_runs>; the benchmark has 20).
    A missing path (FileNotFoundError), a missing run, image or label file, a malformed class_labels.txt,
    an unreadable image or a truncated zip (ValueError) is reported with the file and what is expected.
    """
    num_runs = check_count(num_runs, "num_runs", 1)
    if size is not None:
        size = check_count(size, "size", 1)
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; pass the one-shot benchmark: a folder or a zip (the "
                                "release's all_runs.zip, `mlcourse data omniglot --split all_runs`) holding "
                                "run01..run20.")
    source = _Folder(path) if path.is_dir() else _Zip(path)
    found = _runs_in(source)
    wanted = [f"run{r:02d}" for r in range(1, num_runs + 1)]
    missing = [r for r in wanted if r not in found]
    if missing:
        have = ", ".join(sorted(found)) or "none"
        raise ValueError(f"{source.label}: missing {', '.join(missing)} (each run is a folder runNN holding "
                         f"{_LABELS}, training/ and test/); runs found: {have}.")
    members = set(source.files())
    runs = []
    for run in wanted:
        base = found[run] + run + "/"
        labels_file = base + _LABELS
        try:
            text = source.read(labels_file).decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{source.label}/{labels_file} is not a text file; it must hold lines "
                             f"'{run}/test/itemMM.png {run}/training/classKK.png'.") from None
        pairs = _parse_labels(text, f"{source.label}/{labels_file}", run)
        n_test = len(pairs)
        n_train = sum(1 for m in members if m.startswith(base + "training/") and _TRAIN_RE.match(m[len(base):]))
        n_train = max(n_train, max(k for _, k in pairs))

        def image(rel):
            full = base + rel
            if full not in members:
                raise ValueError(f"{source.label}: {full} is missing ({labels_file} and the run's "
                                 f"{n_train} training / {n_test} test images must all be there).")
            try:
                return _decode(source.read(full), size)
            except (OSError, SyntaxError) as e:   # PIL: UnidentifiedImageError, truncated PNG
                raise ValueError(f"{source.label}: {full} is not a readable PNG image ({e}).") from None

        x_support = np.stack([image(f"training/class{k:02d}.png") for k in range(1, n_train + 1)])
        x_query = np.stack([image(f"test/item{m:02d}.png") for m in range(1, n_test + 1)])
        y_query = np.array([k - 1 for _, k in sorted(pairs)], dtype=np.int64)
        runs.append(OneShotRun(run, x_support, x_query, y_query))
    return runs
