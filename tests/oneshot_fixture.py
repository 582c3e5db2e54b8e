"""Fabricate a small one-shot benchmark in the 2015 release format from the small2 split's PNG files.

Each run takes n_way characters of one alphabet and two different drawers: the first drawer's images
become training/classKK.png (in a shuffled order), the second drawer's test/itemMM.png, paired in
class_labels.txt exactly as the release does (``runNN/test/itemMM.png runNN/training/classKK.png``).
The PNG bytes are copied unchanged into tmp_path; nothing is ever written into the repository.
"""
import functools
import os
import re
import zipfile
from pathlib import Path

import numpy as np

SPLIT = "images_background_small2"


def data_dir():
    """The Omniglot test data folder ($MLCOURSE_OMNIGLOT, else ../shared/data/omniglot), or None."""
    for d in (os.environ.get("MLCOURSE_OMNIGLOT"), Path(__file__).resolve().parents[2] / "shared/data/omniglot"):
        if d and (Path(d) / f"{SPLIT}.zip").is_file():
            return Path(d)
    return None


@functools.lru_cache(maxsize=1)
def small2_pngs():
    """{(alphabet, character): [png bytes by drawer]} of the small2 zip, and {(alphabet, character): [names]}."""
    pattern = re.compile(rf"^{SPLIT}/([^/]+)/(character\d+)/[^/]+\.png$")
    found, names = {}, {}
    with zipfile.ZipFile(data_dir() / f"{SPLIT}.zip") as z:
        for n in sorted(z.namelist()):
            m = pattern.match(n)
            if m:
                found.setdefault((m[1], m[2]), []).append(z.read(n))
                names.setdefault((m[1], m[2]), []).append(n)
    return found, names


def fabricate(folder, num_runs=20, n_way=20, seed=0, prefix=""):
    """Write run01..runNN under folder/prefix; return {run: (chars, drawers, y_query)} (the ground truth).

    chars[k] is the (alphabet, character) of training/class{k+1:02d}.png; y_query[m] the index of the class
    that test/item{m+1:02d}.png shows.
    """
    pngs, _ = small2_pngs()
    rng = np.random.default_rng(seed)
    by_alphabet = {}
    for key in pngs:
        by_alphabet.setdefault(key[0], []).append(key)
    pools = [sorted(v) for v in by_alphabet.values() if len(v) >= n_way]
    truth = {}
    root = Path(folder) / prefix
    for r in range(1, num_runs + 1):
        run = f"run{r:02d}"
        pool = pools[rng.integers(len(pools))]
        chars = [pool[i] for i in rng.choice(len(pool), n_way, replace=False)]
        d_support, d_query = rng.choice(20, 2, replace=False)
        y_query = rng.permutation(n_way)   # item m shows class y_query[m]
        (root / run / "training").mkdir(parents=True)
        (root / run / "test").mkdir()
        lines = []
        for k, key in enumerate(chars):
            (root / run / "training" / f"class{k + 1:02d}.png").write_bytes(pngs[key][d_support])
        for m, k in enumerate(y_query):
            (root / run / "test" / f"item{m + 1:02d}.png").write_bytes(pngs[chars[k]][d_query])
            lines.append(f"{run}/test/item{m + 1:02d}.png {run}/training/class{k + 1:02d}.png")
        (root / run / "class_labels.txt").write_text("\n".join(lines) + "\n")
        truth[run] = (chars, (int(d_support), int(d_query)), y_query)
    return truth


def zip_folder(folder, path):
    """Zip every file under folder (names relative to it) into path."""
    folder, path = Path(folder), Path(path)
    with zipfile.ZipFile(path, "w") as z:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                z.write(p, p.relative_to(folder).as_posix())
    return path
