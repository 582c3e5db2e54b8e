"""Values as data: test inputs and learner outputs cross process boundaries as JSON + arrays.

``encode(value) -> (spec, arrays)``: ``spec`` is JSON-able, ``arrays`` maps keys to numeric
ndarrays (saved with ``np.savez``, read back with ``allow_pickle=False``).  Nothing is ever
unpickled, so a learner's object cannot run code in the grader.  Supported: None, bool, int,
float, complex, str, numeric ndarrays and NumPy scalars, lists, tuples, dicts with str keys;
plus two input-only markers, ``Seed`` (a fresh ``np.random.default_rng(seed)``) and
``TanhLoss`` (a loss function given by data).  Anything else is encoded as ``{"t": "other"}``
so that the grader can say what came back.
"""
from __future__ import annotations

import numbers

import numpy as np

MAX_DEPTH = 12
MAX_ITEMS = 20_000
MAX_BYTES = 256 * 2 ** 20
MAX_STR = 2_000


class Seed:
    """An input meaning "a fresh np.random.default_rng(seed)" (so a test's randomness is data)."""

    def __init__(self, seed):
        self.seed = int(seed)

    def __repr__(self):
        return f"np.random.default_rng({self.seed})"


class TanhLoss:
    """L(theta) = mean((tanh(X theta) - y)^2): a smooth, non-quadratic loss given by data.

    Called with a vector theta of shape (d,); returns a scalar.  Differentiable by autograd.
    """

    def __init__(self, X, y):
        self.X = np.asarray(X, dtype=np.float64)
        self.y = np.asarray(y, dtype=np.float64)

    def __call__(self, theta):
        import autograd.numpy as anp
        return anp.mean((anp.tanh(anp.dot(self.X, theta)) - self.y) ** 2)

    def __repr__(self):
        return f"L(theta) = mean((tanh(X @ theta) - y)**2) with X of shape {self.X.shape}"


class _Budget:
    def __init__(self):
        self.items = 0
        self.bytes = 0


def encode(value):
    """(spec, arrays) for value; raises nothing: unsupported parts become {"t": "other"}."""
    arrays = {}
    spec = _enc(value, arrays, 0, _Budget())
    return spec, arrays


def _put(arrays, a):
    key = f"a{len(arrays)}"
    arrays[key] = a
    return key


def _enc(v, arrays, depth, budget):
    budget.items += 1
    if budget.items > MAX_ITEMS or depth > MAX_DEPTH:
        return {"t": "other", "type": "too large or too deeply nested"}
    if v is None:
        return {"t": "none"}
    if isinstance(v, (bool, np.bool_)):
        return {"t": "bool", "v": bool(v)}
    if isinstance(v, Seed):
        return {"t": "seed", "v": v.seed}
    if isinstance(v, TanhLoss):
        return {"t": "tanhloss", "X": _put(arrays, v.X), "y": _put(arrays, v.y)}
    if isinstance(v, str):
        return {"t": "str", "v": v[:MAX_STR]}
    if isinstance(v, (numbers.Number, np.generic)) and not isinstance(v, np.ndarray):
        a = np.asarray(v)
        if a.dtype.kind not in "biufc":
            return {"t": "other", "type": type(v).__name__}
        kind = "int" if isinstance(v, numbers.Integral) else "float" if isinstance(v, numbers.Real) else "complex"
        return {"t": "scalar", "k": _put(arrays, a), "py": kind, "np": isinstance(v, np.generic)}
    if type(v) is np.ndarray:
        if v.dtype.kind not in "biufc":
            return {"t": "other", "type": f"ndarray of dtype {v.dtype}"}
        budget.bytes += v.nbytes
        if budget.bytes > MAX_BYTES:
            return {"t": "other", "type": "arrays larger than 256 MB"}
        return {"t": "arr", "k": _put(arrays, np.array(v, copy=True))}
    if type(v) in (list, tuple):
        return {"t": type(v).__name__, "items": [_enc(x, arrays, depth + 1, budget) for x in v]}
    if type(v) is dict and all(isinstance(k, str) for k in v):
        return {"t": "dict", "items": {k: _enc(x, arrays, depth + 1, budget) for k, x in v.items()}}
    # autograd boxes, ndarray subclasses, custom objects: say what it was, never run its code here
    name = type(v).__module__ + "." + type(v).__qualname__ if hasattr(type(v), "__qualname__") else "object"
    return {"t": "other", "type": name[:200]}


def decode(spec, arrays):
    """Rebuild a value from (spec, arrays); markers become fresh objects every time."""
    t = spec.get("t") if isinstance(spec, dict) else None
    if t == "none":
        return None
    if t in ("bool", "str"):
        v = spec["v"]
        if not isinstance(v, bool if t == "bool" else str):
            raise TypeError(f"a {t} holds a {type(v).__name__}")
        return v[:MAX_STR] if t == "str" else v
    if t == "seed":
        return np.random.default_rng(int(spec["v"]))
    if t == "tanhloss":
        return TanhLoss(arrays[spec["X"]], arrays[spec["y"]])
    if t == "scalar":
        a = np.asarray(arrays[spec["k"]])
        if spec.get("np"):
            return a[()]
        return {"int": int, "float": float, "complex": complex}[spec["py"]](a[()])
    if t == "arr":
        return np.array(arrays[spec["k"]], copy=True)
    if t == "list":
        return [decode(s, arrays) for s in spec["items"]]
    if t == "tuple":
        return tuple(decode(s, arrays) for s in spec["items"])
    if t == "dict":
        return {str(k): decode(s, arrays) for k, s in spec["items"].items()}
    if t == "other":
        return Unsupported(str(spec.get("type", "object")))
    return Unsupported(f"unreadable value {str(spec)[:80]}")


class Unsupported:
    """Stands for a returned value the grader could not receive as data."""

    def __init__(self, type_name):
        self.type_name = type_name

    def __repr__(self):
        return f"<{self.type_name}>"


def roundtrip(value):
    """A fresh deep copy through the codec (what a learner's function receives)."""
    spec, arrays = encode(value)
    return decode(spec, arrays)


# ---- one value as one flat byte string: what crosses between the grader and the grading child ----
#
# 8 bytes (little-endian header length), a JSON header {"spec": ..., "arrays": [[key, dtype, shape,
# nbytes], ...]}, then each array's raw bytes in order.  No compression, no pickles, no links: the
# reader checks every length against the data it holds before it makes an array.

MAX_HEADER = 16 * 2 ** 20


class Malformed(ValueError):
    """Bytes that are not a value written by ``pack``."""


def pack(spec, arrays):
    """bytes for (spec, arrays) as ``encode`` returns them."""
    import json
    table, blobs = [], []
    for key, a in arrays.items():
        a = a if a.flags.c_contiguous else np.array(a, order="C")
        table.append([key, a.dtype.str, list(a.shape), int(a.nbytes)])
        blobs.append(a.tobytes())
    header = json.dumps({"spec": spec, "arrays": table}, allow_nan=False).encode()
    return len(header).to_bytes(8, "little") + header + b"".join(blobs)


def _dtype(text):
    if not isinstance(text, str) or len(text) > 8:
        raise Malformed("bad dtype")
    dt = np.dtype(text)
    if dt.kind not in "biufc" or dt.hasobject or dt.fields is not None or dt.subdtype is not None:
        raise Malformed(f"dtype {text!r} is not numeric")
    return dt


def unpack(data, max_bytes=MAX_BYTES + MAX_HEADER):
    """(spec, arrays) from ``pack``'s bytes; Malformed for anything else (never more than max_bytes read)."""
    import json
    if not isinstance(data, (bytes, bytearray, memoryview)) or len(data) < 8 or len(data) > max_bytes:
        raise Malformed("empty, truncated or too large")
    n = int.from_bytes(bytes(data[:8]), "little")
    if n > min(MAX_HEADER, len(data) - 8):
        raise Malformed("bad header length")
    try:
        head = json.loads(bytes(data[8:8 + n]))
    except (ValueError, RecursionError):
        raise Malformed("header is not JSON")
    if not isinstance(head, dict) or not isinstance(head.get("arrays"), list) or len(head["arrays"]) > MAX_ITEMS:
        raise Malformed("bad header")
    arrays, at = {}, 8 + n
    for entry in head["arrays"]:
        if not (isinstance(entry, list) and len(entry) == 4 and isinstance(entry[0], str)
                and isinstance(entry[2], list) and len(entry[2]) <= 32
                and all(type(d) is int and d >= 0 for d in entry[2]) and type(entry[3]) is int):
            raise Malformed("bad array entry")
        key, dt, shape, nbytes = entry[0], _dtype(entry[1]), tuple(entry[2]), entry[3]
        count = 1
        for d in shape:
            count *= d
        if count * dt.itemsize != nbytes or nbytes < 0 or at + nbytes > len(data):
            raise Malformed("array sizes do not add up")
        arrays[key] = np.frombuffer(bytes(data[at:at + nbytes]), dtype=dt).reshape(shape).copy()
        at += nbytes
    if at != len(data):
        raise Malformed("trailing bytes")
    return head.get("spec"), arrays
