"""Hand-derived training gradients of the Conv-4 embedding (ProtoNet, FOMAML), in plain NumPy.

The same mathematics as autograd through ``conv``'s primitives (and checked against it to 1e-10 in
float64, and against finite differences, by ``tests/test_fastconv.py``); ``protonet`` and
``classification`` use it automatically for their first-order gradients.  Per block, on a batch of
n images (BatchNorm over the batch; m = n H W pixels per channel):

    y = conv3x3(a, W)                            a: the block's input, zero-padded; im2col + matmul
    mu, 1/sigma = statistics of y over (n, H, W),   s = gamma / sigma,   shift = beta - mu s
    p = 2x2 max of y where s > 0 (min where s <= 0),   code = which of the 4 window entries was taken
    out = relu(s p + shift)                      the next block's input

and back, from g = dL/d out * [out > 0] (z_hat = (p - mu) / sigma, U = s g spread onto the taken entries):

    d beta = sum g,   d gamma = sum g z_hat
    dy = A y + B + U,   A = -s sum(g z_hat) / (m sigma),   B = -s sum(g) / m - A mu
    dW = im2col(a)^T dy,   da = conv3x3(dy, W rotated by 180 degrees, channels swapped)

The work runs on image chunks small enough to stay in cache: each block's convolution, statistics
and pooling in one pass, its backward (dy, dW, da, and the next block's g and sums) in another.
Kept between the passes: each block's input a, its pooled p and code, and y, except where y has
more channels than 9x its input (the first block: 1 -> 64), which the backward pass recomputes
from the im2col it builds anyway.

The chunks are spread over as many threads as NumPy's OpenBLAS has (``_threads.Threads``; OpenBLAS
is set to one thread each while they run).  The chunks and the order in which their partial sums are
added do not depend on the number of threads: neither do the results, bit for bit.

FOMAML's first inner step starts from the zero head, so its embedding gradient is exactly zero
(dL/dz = dL/dlogits W^T = 0): only the head moves, and the step skips the backward pass.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ._threads import Threads as _Threads
from .conv import BN_EPS

__all__ = ["usable", "protonet_value_and_grad", "fomaml_value_and_grad"]


# ---------------------------------------------------------------------------------------------
# One block's pieces, on a chunk of images

def _im2col(ap):
    """ap (m, H + 2, W + 2, C) zero-padded -> cols (m H W, 9 C), the 3x3 neighbourhoods, (a, b, c) order."""
    m, Hp, Wp, C = ap.shape
    H, W = Hp - 2, Wp - 2
    if C < 8:   # few channels: nine slice copies beat one copy with a short inner loop
        cols = np.empty((m, H, W, 3, 3, C), ap.dtype)
        for a in range(3):
            for b in range(3):
                cols[:, :, :, a, b, :] = ap[:, a:a + H, b:b + W, :]
        return cols.reshape(m * H * W, 9 * C)
    s = ap.strides
    view = as_strided(ap, (m, H, W, 3, 3, C), (s[0], s[1], s[2], s[1], s[2], s[3]), writeable=False)
    return np.ascontiguousarray(view).reshape(m * H * W, 9 * C)


def _windows(y, h, w):
    """The four 2x2-window entries of y (m, H, W, C) as strided views (m, h, w, C), row-major."""
    return [y[:, a:2 * h:2, b:2 * w:2] for a in (0, 1) for b in (0, 1)]


def _pool(y, neg, p, code):
    """p <- per channel the window max of y (min where neg); code <- index 0..3 of its first entry."""
    h, w = p.shape[1], p.shape[2]
    v = _windows(y, h, w)
    if not neg.any():
        np.maximum(v[0], v[1], out=p)
        np.maximum(p, v[2], out=p)
        np.maximum(p, v[3], out=p)
    else:
        lo = np.minimum(np.minimum(v[0], v[1]), np.minimum(v[2], v[3]))
        if neg.all():
            p[...] = lo
        else:
            np.maximum(np.maximum(v[0], v[1]), np.maximum(v[2], v[3]), out=p)
            np.copyto(p, lo, where=neg)
    later = np.not_equal(v[0], p)                      # code = number of entries before the first equal one
    code[...] = later
    for k in (1, 2):
        later &= np.not_equal(v[k], p)
        code += later


def _unpool_add(dy, sg, code):
    """dy (m, H, W, C) += sg (m, h, w, C) at the entries that code selects."""
    h, w = sg.shape[1], sg.shape[2]
    mask, part = np.empty(sg.shape, bool), np.empty_like(sg)
    for k, view in enumerate(_windows(dy, h, w)):
        np.equal(code, k, out=mask)
        np.multiply(sg, mask, out=part)        # several times faster than np.where(mask, sg, 0)
        view += part


def _stats_sums(flat):
    """(sum, sum of squares) per column of flat (M, C), float64 (float32 sums within a chunk)."""
    ones = np.ones(flat.shape[0], flat.dtype)
    return (ones @ flat).astype(np.float64), np.einsum("mc,mc->c", flat, flat).astype(np.float64)


# ---------------------------------------------------------------------------------------------
# The network on one batch

class _Layer:
    """What one block keeps between the forward and the backward pass."""

    __slots__ = ("ap", "W", "gamma", "y", "p", "code", "mu", "rstd", "s", "shift", "m")

    def conv(self, s, e, cols=None):
        """y of images s..e: kept from the forward pass, or recomputed (few input channels: a cheap product)."""
        if self.y is not None:
            return self.y[s:e]
        cols = _im2col(self.ap[s:e]) if cols is None else cols
        shape = (e - s, self.ap.shape[1] - 2, self.ap.shape[2] - 2, self.W.shape[-1])
        return (cols @ self.W.reshape(cols.shape[1], -1)).reshape(shape)


def _forward(run, theta, x):
    """z (n, D) and the layers' caches; x (n, H, W, C) of theta's dtype."""
    dt = x.dtype
    n, H, W, C = x.shape
    ap = np.zeros((n, H + 2, W + 2, C), dt)
    ap[:, 1:-1, 1:-1] = x
    layers = []
    prev = None
    for Wt, gamma, beta in theta:
        H, W, C = ap.shape[1] - 2, ap.shape[2] - 2, ap.shape[3]
        if H < 2 or W < 2:
            raise ValueError(f"images of {x.shape[1]}x{x.shape[2]} are too small for {len(theta)} pooling blocks; "
                             "use 28x28 images or fewer blocks.")
        O = Wt.shape[-1]
        h, w = H // 2, W // 2
        L = _Layer()
        L.ap, L.W, L.gamma, L.m = ap, Wt, gamma, n * H * W
        L.y = np.empty((n, H, W, O), dt) if 9 * C > O else None    # else recomputed in the backward pass
        L.p = np.empty((n, h, w, O), dt)
        L.code = np.empty((n, h, w, O), np.uint8)
        Wm = Wt.reshape(9 * C, O)
        neg = np.asarray(gamma) <= 0                  # the sign of s = gamma / sigma
        fill = prev

        def stage(se, L=L, Wm=Wm, neg=neg, fill=fill, H=H, W=W, O=O):
            s, e = se
            if fill is not None:                       # the previous block's output, into this input
                fill(s, e)
            y = L.y[s:e] if L.y is not None else np.empty((e - s, H, W, O), L.p.dtype)
            flat = y.reshape(-1, O)
            np.matmul(_im2col(L.ap[s:e]), Wm, out=flat)
            sums = _stats_sums(flat)
            _pool(y, neg, L.p[s:e], L.code[s:e])
            return sums

        it = dt.itemsize
        parts = run.map(stage, n, H * W * (9 * C + O) * it)
        s1 = sum(q[0] for q in parts)
        s2 = sum(q[1] for q in parts)
        L.mu = s1 / L.m
        var = np.maximum(s2 / L.m - L.mu * L.mu, 0.0)
        L.rstd = 1.0 / np.sqrt(var + BN_EPS)
        L.s = np.asarray(gamma) * L.rstd
        if not np.array_equal(L.s <= 0, neg):         # gamma so small that s underflowed: pool again
            def repool(se, L=L):
                _pool(L.conv(*se), L.s <= 0, L.p[se[0]:se[1]], L.code[se[0]:se[1]])
            run.map(repool, n, H * W * O * it)
        L.shift = np.asarray(beta) - L.mu * L.s
        layers.append(L)
        nxt = np.zeros((n, h + 2, w + 2, O), dt)
        s_dt, shift_dt = L.s.astype(dt), L.shift.astype(dt)

        def fill(s, e, L=L, nxt=nxt, s_dt=s_dt, shift_dt=shift_dt):
            out = nxt[s:e, 1:-1, 1:-1]
            np.multiply(L.p[s:e], s_dt, out=out)
            out += shift_dt
            np.maximum(out, 0, out=out)
        prev, ap = fill, nxt
    prev(0, n)
    z = np.ascontiguousarray(ap[:, 1:-1, 1:-1]).reshape(n, -1)
    return z, layers, ap


def _backward(run, layers, a_out, dz):
    """[(dW, dgamma, dbeta)] per block from dz = dL/dz (n, D)."""
    dt = dz.dtype
    last = layers[-1]
    n = dz.shape[0]
    out = a_out[:, 1:-1, 1:-1]
    g = dz.reshape(out.shape) * (out > 0)
    zhat = (last.p - last.mu.astype(dt)) * last.rstd.astype(dt)
    flat = g.reshape(-1, g.shape[-1])
    sums = (flat.sum(axis=0).astype(np.float64), np.einsum("mc,mc->c", flat, zhat.reshape(flat.shape)).astype(np.float64))
    grads = [None] * len(layers)
    for i in range(len(layers) - 1, -1, -1):
        L = layers[i]
        sum_g, sum_gz = sums
        A = -L.s * L.rstd * sum_gz / L.m
        B = -L.s * sum_g / L.m - A * L.mu
        A_dt, B_dt, s_dt = A.astype(dt), B.astype(dt), L.s.astype(dt)
        n, H, W, O = L.ap.shape[0], L.ap.shape[1] - 2, L.ap.shape[2] - 2, L.W.shape[-1]
        C = L.ap.shape[-1]
        below = layers[i - 1] if i > 0 else None
        g_below = np.empty(L.ap.shape[:1] + (H, W, C), dt) if below is not None else None
        if below is not None:
            mu_b, rstd_b = below.mu.astype(dt), below.rstd.astype(dt)
            Wflip = np.ascontiguousarray(np.swapaxes(L.W[::-1, ::-1], 2, 3)).reshape(9 * O, C)

        def stage(se, L=L, g=g, below=below, g_below=g_below):
            s, e = se
            cols = _im2col(L.ap[s:e])
            dy = L.conv(s, e, cols) * A_dt
            dy += B_dt
            _unpool_add(dy, g[s:e] * s_dt, L.code[s:e])
            flat = dy.reshape(-1, O)
            dW = cols.T @ flat
            if below is None:
                return dW, None
            dyp = np.zeros((e - s, H + 2, W + 2, O), dt)
            dyp[:, 1:-1, 1:-1] = dy
            da = (_im2col(dyp) @ Wflip).reshape(e - s, H, W, C)
            gb = g_below[s:e]
            np.multiply(da, L.ap[s:e, 1:-1, 1:-1] > 0, out=gb)
            fb = gb.reshape(-1, C)
            zb = (below.p[s:e] - mu_b) * rstd_b
            return dW, (fb.sum(axis=0).astype(np.float64),
                        np.einsum("mc,mc->c", fb, zb.reshape(fb.shape)).astype(np.float64))

        it = dt.itemsize
        parts = run.map(stage, n, H * W * (9 * C + 2 * O + (11 * O + C if below is not None else 0)) * it)
        dW = parts[0][0].astype(dt, copy=True)
        for q in parts[1:]:
            dW += q[0]
        grads[i] = (dW.reshape(L.W.shape), sum_gz.astype(dt), sum_g.astype(dt))
        if below is not None:
            sums = (sum(q[1][0] for q in parts), sum(q[1][1] for q in parts))
            g = g_below
    return grads


# ---------------------------------------------------------------------------------------------
# Losses on the embeddings

def _softmax_minus_onehot(lg, y):
    """(mean cross-entropy, its gradient in the logits) for lg (n, k), y (n,) int."""
    shifted = lg - lg.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    se = e.sum(axis=1)
    rows = np.arange(len(y))
    loss = np.mean(np.log(se) - shifted[rows, y])
    d = e / se[:, None]
    d[rows, y] -= 1
    return float(loss), d / len(y)


def _protonet_head(z, ys, yq, n_way):
    """ProtoNet's loss and dL/dz on the embeddings z = [z_support; z_query]."""
    ns = len(ys)
    zs, zq = z[:ns], z[ns:]
    onehot = (ys[:, None] == np.arange(n_way)[None, :]).astype(z.dtype)
    counts = onehot.sum(axis=0)
    c = onehot.T @ zs / counts[:, None]
    lg = -((zq * zq).sum(axis=1, keepdims=True) - 2.0 * (zq @ c.T) + (c * c).sum(axis=1)[None, :])
    loss, d = _softmax_minus_onehot(lg, yq)
    dzq = 2.0 * (d @ c) - 2.0 * zq * d.sum(axis=1, keepdims=True)
    dc = 2.0 * (d.T @ zq) - 2.0 * c * d.sum(axis=0)[:, None]
    dz = np.empty_like(z)
    dz[:ns] = onehot @ (dc / counts[:, None])
    dz[ns:] = dzq
    return loss, dz


# ---------------------------------------------------------------------------------------------
# Public

def usable(theta):
    """True when theta is plain (untraced) float32 or float64 arrays of one dtype: the fast path applies."""
    leaves = [a for block in theta for a in block]
    if not all(type(a) is np.ndarray for a in leaves):
        return False
    dts = {a.dtype for a in leaves}
    return len(dts) == 1 and dts.pop() in (np.float32, np.float64)


def _like(theta, grads):
    return type(theta)(type(block)(g) for block, g in zip(theta, grads))


def protonet_value_and_grad(theta, x_support, y_support, x_query, y_query, n_way):
    """ProtoNet's (loss, gradient shaped like theta): x_* (n, H, W, C) of theta's dtype, y_* int."""
    with _Threads() as run:
        x = np.concatenate([x_support, x_query])
        z, layers, a_out = _forward(run, theta, x)
        loss, dz = _protonet_head(z, np.asarray(y_support), np.asarray(y_query), n_way)
        return loss, _like(theta, _backward(run, layers, a_out, dz))


def fomaml_value_and_grad(theta, x_support, y_support, x_query, y_query, n_way, alpha, inner_steps):
    """FOMAML with a zero head: (mean query loss, mean over tasks of grad_theta' L_q(theta'_t)).

    x_* (T, n, H, W, C) of theta's dtype, y_* (T, n) int.
    """
    T = x_support.shape[0]
    total, grads = 0.0, None
    with _Threads() as run:
        for t in range(T):
            body = [tuple(block) for block in theta]
            head_W, head_b = None, None
            for step in range(inner_steps):
                z, layers, a_out = _forward(run, body, x_support[t])
                if head_W is None:
                    head_W, head_b = np.zeros((z.shape[1], n_way), z.dtype), np.zeros(n_way, z.dtype)
                _, d = _softmax_minus_onehot(z @ head_W + head_b, np.asarray(y_support[t]))
                dW_head, db_head = z.T @ d, d.sum(axis=0)
                if step > 0:                              # from the zero head the embedding's gradient is 0
                    g = _backward(run, layers, a_out, d @ head_W.T)
                    body = [tuple(a - alpha * da for a, da in zip(block, gb)) for block, gb in zip(body, g)]
                head_W = head_W - alpha * dW_head
                head_b = head_b - alpha * db_head
            z, layers, a_out = _forward(run, body, x_query[t])
            if head_W is None:
                head_W, head_b = np.zeros((z.shape[1], n_way), z.dtype), np.zeros(n_way, z.dtype)
            loss, d = _softmax_minus_onehot(z @ head_W + head_b, np.asarray(y_query[t]))
            g = _backward(run, layers, a_out, (d @ head_W.T) / T)
            total += loss
            grads = g if grads is None else [tuple(a + b for a, b in zip(ga, gb)) for ga, gb in zip(grads, g)]
    return total / T, _like(theta, grads)
