"""mlcourse.data.omniglot: the release format (zip or folder), checksums, cache, episodes, download.

Synthetic splits are built here in tmp folders; the real minimal splits are read from
$MLCOURSE_OMNIGLOT (conftest.py points it at ../shared/data/omniglot) when present.
"""
import functools
import http.server
import io
import os
import threading
import zipfile

import numpy as np
import pytest
from PIL import Image

from mlcourse.data import omniglot

ALPHABETS = {"Alpha": 3, "Beta": 4}   # alphabet -> number of characters
DRAWERS = 6


def _png(seed):
    rng = np.random.default_rng(seed)
    a = np.full((105, 105), 255, np.uint8)
    r, c = rng.integers(10, 90, size=2)
    a[r:r + 15, c:c + 15] = 0   # a black square of "ink"
    buf = io.BytesIO()
    Image.fromarray(a).convert("1").save(buf, format="PNG")
    return buf.getvalue()


def _members(split):
    k = 0
    for alphabet, n_chars in ALPHABETS.items():
        for ch in range(1, n_chars + 1):
            for d in range(1, DRAWERS + 1):
                k += 1
                yield f"{split}/{alphabet}/character{ch:02d}/{1000 + ch:04d}_{d:02d}.png", _png(k)


def make_zip(folder, split="images_tiny"):
    path = folder / f"{split}.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{split}/", b"")
        for name, data in _members(split):
            z.writestr(name, data)
    return path


def make_folder(folder, split="images_tiny"):
    for name, data in _members(split):
        p = folder / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return folder / split


@pytest.fixture
def no_env(monkeypatch, tmp_path):
    monkeypatch.delenv(omniglot.ENV_VAR, raising=False)
    monkeypatch.setenv("MLCOURSE_CACHE", str(tmp_path / "cache"))


def test_zip_and_folder_give_the_same_arrays(tmp_path, no_env):
    zdir, fdir = tmp_path / "z", tmp_path / "f"
    zdir.mkdir(), fdir.mkdir()
    make_zip(zdir), make_folder(fdir)
    a = omniglot.load_split("images_tiny", root=zdir, size=28, cache_dir=False)
    b = omniglot.load_split("images_tiny", root=fdir, size=28, cache_dir=False)
    assert a.num_classes == b.num_classes == sum(ALPHABETS.values())
    assert a.alphabet_of == b.alphabet_of and a.character_of == b.character_of
    for x, y in zip(a.classes, b.classes):
        assert x.shape == (DRAWERS, 28, 28) and x.dtype == np.float32
        np.testing.assert_array_equal(x, y)
    ink = a.classes[0][0]
    assert 0.0 <= ink.min() and ink.max() <= 1.0 and 0.0 < ink.mean() < 0.2   # ink = 1 on paper = 0
    assert a.by_alphabet() == {"Alpha": [0, 1, 2], "Beta": [3, 4, 5, 6]}


def test_full_size_keeps_105_pixels(tmp_path, no_env):
    make_zip(tmp_path)
    d = omniglot.load_split("images_tiny", root=tmp_path, size=None, cache_dir=False)
    assert d.classes[0].shape == (DRAWERS, 105, 105)
    assert set(np.unique(d.classes[0])) <= {0.0, 1.0}


def test_env_var_and_cache(tmp_path, monkeypatch):
    make_zip(tmp_path)
    monkeypatch.setenv(omniglot.ENV_VAR, str(tmp_path))
    cache = tmp_path / "cache"
    a = omniglot.load_split("images_tiny", cache_dir=cache)
    files = list(cache.glob("images_tiny_28_*.npz"))
    assert len(files) == 1
    b = omniglot.load_split("images_tiny", cache_dir=cache)   # from the cache now
    assert a.alphabet_of == b.alphabet_of
    for x, y in zip(a.classes, b.classes):
        np.testing.assert_array_equal(x, y)


def test_missing_data_says_how_to_get_it(tmp_path, no_env):
    with pytest.raises(omniglot.MissingDataError) as e:
        omniglot.load_split("images_background", root=tmp_path / "nowhere")
    msg = str(e.value)
    assert omniglot.ENV_VAR in msg and "download(" in msg and "images_background.zip" in msg


def test_sha256_mismatch_is_refused(tmp_path, no_env, monkeypatch):
    path = make_zip(tmp_path)
    monkeypatch.setitem(omniglot.KNOWN_SHA256, path.name, "0" * 64)
    with pytest.raises(ValueError, match="sha256"):
        omniglot.load_split("images_tiny", root=tmp_path, cache_dir=False)
    # the right digest passes
    monkeypatch.setitem(omniglot.KNOWN_SHA256, path.name, omniglot.sha256sum(path))
    assert omniglot.load_split("images_tiny", root=tmp_path, cache_dir=False).num_classes == 7


def test_episodes_use_sample_episode_and_alphabets(tmp_path, no_env):
    make_zip(tmp_path)
    data = omniglot.load_split("images_tiny", root=tmp_path, cache_dir=False)
    ep = omniglot.OmniglotEpisodes(data, n_way=3, k_shot=2, k_query=3)
    xs, ys, xq, yq, chosen = ep.sample(np.random.default_rng(0))
    assert xs.shape == (6, 28, 28) and xq.shape == (9, 28, 28)
    np.testing.assert_array_equal(ys, np.repeat(np.arange(3), 2))
    np.testing.assert_array_equal(yq, np.repeat(np.arange(3), 3))
    # same rng state -> same episode (determinism)
    again = ep.sample(np.random.default_rng(0))
    np.testing.assert_array_equal(again[0], xs)
    # support images are images of the chosen classes
    for label, c in enumerate(chosen):
        for img in xs[ys == label]:
            assert any(np.array_equal(img, d) for d in data.classes[c])
    within = omniglot.OmniglotEpisodes(data, n_way=4, k_shot=1, k_query=1, within_alphabet=True)
    for seed in range(5):
        chosen = within.sample(np.random.default_rng(seed))[-1]
        assert {data.alphabet_of[c] for c in chosen} == {"Beta"}   # only Beta has 4 characters
    with pytest.raises(ValueError, match="n_way"):
        omniglot.OmniglotEpisodes(data, n_way=50)


def test_rotations_make_new_classes(tmp_path, no_env):
    make_zip(tmp_path)
    data = omniglot.load_split("images_tiny", root=tmp_path, cache_dir=False)
    rot = omniglot.with_rotations(data)
    assert rot.num_classes == 4 * data.num_classes
    np.testing.assert_array_equal(rot.classes[data.num_classes], np.rot90(data.classes[0], 1, axes=(1, 2)))


def test_download_from_a_local_server(tmp_path, no_env, monkeypatch):
    served = tmp_path / "served"
    served.mkdir()
    path = make_zip(served)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{path.name}"
        dest = tmp_path / "dl"
        monkeypatch.setitem(omniglot.KNOWN_SHA256, path.name, omniglot.sha256sum(path))
        got = omniglot.download("images_tiny", dest=dest, url=url)
        assert got == dest / path.name and omniglot.sha256sum(got) == omniglot.sha256sum(path)
        assert omniglot.load_split("images_tiny", root=dest, cache_dir=False).num_classes == 7
        # a corrupt download is refused and leaves nothing behind
        monkeypatch.setitem(omniglot.KNOWN_SHA256, path.name, "f" * 64)
        with pytest.raises(ValueError, match="sha256"):
            omniglot.download("images_tiny", dest=tmp_path / "dl2", url=url)
        assert not list((tmp_path / "dl2").iterdir())
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.skipif(not os.environ.get(omniglot.ENV_VAR), reason="MLCOURSE_OMNIGLOT is not set (conftest sets it "
                    "to ../shared/data/omniglot when that folder exists)")
def test_the_real_minimal_splits(tmp_path):
    d1 = omniglot.load_split("images_background_small1", cache_dir=tmp_path)
    assert d1.num_classes == 136 and sum(len(c) for c in d1.classes) == 2720
    assert d1.alphabets == ["Balinese", "Early_Aramaic", "Greek", "Korean", "Latin"]
    d2 = omniglot.load_split("images_background_small2", cache_dir=tmp_path, alphabets=["Greek", "Tagalog"])
    assert set(d2.alphabet_of) == {"Greek", "Tagalog"}
    assert d1.classes[0].shape == (20, 28, 28)
