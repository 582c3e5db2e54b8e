"""The convolutional embedding of few-shot image classification ("Conv-4"), in NumPy + autograd.

Four blocks, each  3x3 convolution (padding 1, no bias) -> BatchNorm -> ReLU -> 2x2 max-pool,
64 channels: 28x28x1 -> 14x14x64 -> 7x7x64 -> 3x3x64 -> 1x1x64, a 64-d embedding
(Vinyals et al., 2016; Snell et al., 2017; Finn et al., 2017).  Channels last.

    theta = conv4_init(rng)                      # [(W, gamma, beta)] * 4; W (3, 3, C_in, C_out)
    z = conv4_apply(theta, x)                    # x (n, 28, 28) or (n, 28, 28, 1) -> z (n, 64)
    z = conv4_apply_tasks(theta_tasks, x)        # per-task parameters (T, ...) and x (T, n, 28, 28) -> (T, n, 64)
    z = conv4_apply_episodes(theta, x)           # one theta, E episodes x (E, n, 28, 28) -> (E, n, 64)
    stats = conv4_population_stats(theta, x)     # fixed BatchNorm statistics for evaluation (below)

BatchNorm, by default, uses the statistics of the batch it is given: the mean and variance over
every image and pixel of the call, per channel, then gamma * x_hat + beta.  Training always does
this, and so does MAML's adaptation (transductive, as in the MAML reference code): an episode is
normalised with its own support and query images (``protonet`` embeds them in one call).  For
evaluation, ``stats=`` replaces them with fixed statistics, one (mu, var) per block:

    stats = conv4_population_stats(theta, x_train)   # over a whole set of images, block by block
    z = conv4_apply(theta, x, stats=stats)           # each image embedded on its own

This is what frameworks' evaluation mode does with the running averages they keep during
training; here the statistics are computed once, exactly, after training, so theta stays the
whole training state and every function stays pure.  A convolution bias would be cancelled by
BatchNorm's mean, so there is none (beta plays its role): 111,680 parameters in all.
Max-pooling and ReLU commute (ReLU is monotone), so each block pools before it rectifies.

The operations are autograd primitives with hand-written vector-Jacobian products:

    conv3x3(x, W)        y[n,i,j,o] = sum_{a,b,c} x_pad[n, i+a, j+b, c] W[a, b, c, o]   (im2col + matmul)
      VJP in x:  conv3x3(g, flip(W))   (W rotated by 180 degrees, input and output channels swapped)
      VJP in W:  conv3x3_wgrad(x, g) = sum_{n,i,j} x_pad[n, i+a, j+b, c] g[n, i, j, o]
    bn_pool(x, gamma, beta)   BatchNorm then 2x2 max-pooling, fused (see below)
    relu(x)

Every VJP is itself written with differentiable operations (the convolution's two VJPs are each
other's VJPs), so autograd differentiates through them again: MAML's exact second order.  When
nothing is being traced (a first-order gradient, the usual case) bn_pool's backward pass runs as
plain NumPy with fewer temporaries; both paths are checked against finite differences and
against each other (tests/test_conv.py).  The im2col buffers are built a few images at a time
(``_CHUNK_BYTES``), so they stay in cache.  Shapes inside carry a leading task axis T:
x (T, n, H, W, C); conv4_apply adds T = 1.
"""
from __future__ import annotations

import autograd.numpy as anp
import numpy as np
from autograd.builtins import SequenceBox
from autograd.extend import defvjp, defvjp_argnums, primitive
from autograd.tracer import isbox

from ._validate import check_count, check_rng

__all__ = ["conv4_init", "conv4_apply", "conv4_apply_tasks", "conv4_apply_episodes", "conv4_population_stats", "check_population_stats", "conv3x3", "conv3x3_wgrad", "bn_pool", "relu", "num_params", "check_conv4_params", "embedding_size", "BN_EPS"]

BN_EPS = 1e-5
_CHUNK_BYTES = 4 * 2**20   # im2col work buffer per chunk of images (measured fastest with 2 BLAS threads)


# ---------------------------------------------------------------------------------------------
# Convolution: x (T, n, H, W, C), W (T, 3, 3, C, O) -> (T, n, H, W, O)

def _plain(a):
    return a if not isbox(a) else a._value


def _im2col(xs, cols):
    """cols (m, H, W, 3, 3, C) <- the 3x3 neighbourhoods of xs (m, H, W, C), zero-padded."""
    m, H, W, C = xs.shape
    xp = np.zeros((m, H + 2, W + 2, C), dtype=xs.dtype)
    xp[:, 1:-1, 1:-1] = xs
    for a in range(3):
        for b in range(3):
            cols[:, :, :, a, b, :] = xp[:, a:a + H, b:b + W, :]
    return cols.reshape(m * H * W, 9 * C)


def _chunks(n, H, W, C, itemsize):
    per_image = H * W * 9 * C * itemsize
    step = max(1, int(_CHUNK_BYTES // max(per_image, 1)))
    return [(s, min(n, s + step)) for s in range(0, n, step)]


@primitive
def conv3x3(x, W):
    """3x3 'same' convolution (cross-correlation, zero padding 1), one filter bank per task.

    x (T, n, H, W, C), W (T, 3, 3, C, O) -> (T, n, H, W, O); W (1, 3, 3, C, O) serves every task.
    """
    if W.shape[0] == 1 and x.shape[0] > 1:     # one filter bank for every task: one long batch
        return conv3x3(x.reshape((1, -1) + x.shape[2:]), W).reshape(x.shape[:-1] + W.shape[-1:])
    T, n, H, Wd, C = x.shape
    O = W.shape[-1]
    dtype = np.result_type(x.dtype, W.dtype)
    y = np.empty((T, n, H, Wd, O), dtype=dtype)
    for t in range(T):
        Wt = np.ascontiguousarray(W[t]).reshape(9 * C, O).astype(dtype, copy=False)
        for s, e in _chunks(n, H, Wd, C, np.dtype(dtype).itemsize):
            cols = _im2col(x[t, s:e], np.empty((e - s, H, Wd, 3, 3, C), dtype=dtype))
            np.matmul(cols, Wt, out=y[t, s:e].reshape(-1, O))
    return y


@primitive
def conv3x3_wgrad(x, g):
    """The convolution's VJP in W: dW[t, a, b, c, o] = sum_{n,i,j} x_pad[t, n, i+a, j+b, c] g[t, n, i, j, o].

    x (T, n, H, W, C), g (T, n, H, W, O) -> (T, 3, 3, C, O).
    """
    T, n, H, Wd, C = x.shape
    O = g.shape[-1]
    dtype = np.result_type(x.dtype, g.dtype)
    dW = np.zeros((T, 9 * C, O), dtype=dtype)
    for t in range(T):
        for s, e in _chunks(n, H, Wd, C, np.dtype(dtype).itemsize):
            cols = _im2col(x[t, s:e], np.empty((e - s, H, Wd, 3, 3, C), dtype=dtype))
            dW[t] += cols.T @ g[t, s:e].reshape(-1, O)
    return dW.reshape(T, 3, 3, C, O)


def _flip(W):
    """W rotated by 180 degrees in space, input and output channels swapped: (T, 3, 3, O, C)."""
    return anp.swapaxes(W[:, ::-1, ::-1], 3, 4)


# d/dx <g, conv(x, W)> = conv(g, flip(W));  d/dW = wgrad(x, g).
# wgrad is bilinear with <V, wgrad(x, g)> = <g, conv(x, V)>: d/dx = conv(g, flip(V)), d/dg = conv(x, V).
def _wgrad_of(x, W, g):
    if W.shape[0] == 1 and x.shape[0] > 1:     # shared filters: sum over the tasks
        return conv3x3_wgrad(anp.reshape(x, (1, -1) + x.shape[2:]), anp.reshape(g, (1, -1) + g.shape[2:]))
    return conv3x3_wgrad(x, g)


defvjp(conv3x3,
       lambda ans, x, W: lambda g: conv3x3(g, _flip(W)),
       lambda ans, x, W: lambda g: _wgrad_of(x, W, g))
defvjp(conv3x3_wgrad,
       lambda ans, x, g: lambda V: conv3x3(g, _flip(V)),
       lambda ans, x, g: lambda V: conv3x3(x, V))


# ---------------------------------------------------------------------------------------------
# BatchNorm followed by 2x2 max-pooling, as one operation: x (T, n, H, W, C), gamma, beta (T, C)
#
#   bn_pool(x) = maxpool2(gamma * (x - mu) / sqrt(var + eps) + beta),  mu, var over (n, H, W) per task, channel
#
# BatchNorm is an affine map per channel, increasing where s = gamma / sqrt(var + eps) > 0: its max
# over a window is the affine map of the window's max (of its min where s < 0).  So the full-size
# normalised array is never formed: statistics, one pooling pass, then the affine map on the 4x
# smaller result.  Pooling floors odd sizes (7x7 -> 3x3).  In each window the gradient goes to the
# first maximal element in row-major order (the usual choice; ties are frequent on Omniglot's
# blank paper, where the convolution gives exactly 0).
#
# VJP (g of shape (T, n, h, w, C), m = n H W, z_hat = (pooled x - mu) / sigma, U = g spread onto
# the selected positions):
#   d beta = sum g,   d gamma = sum g z_hat,   dx = s (U - sum(g) / m - x_hat sum(g z_hat) / m)

_AXES = (1, 2, 3)


def _pool_views(x, h, w):
    return [(a, b, x[:, :, a:2 * h:2, b:2 * w:2]) for a in range(2) for b in range(2)]


def _pool_max(x, h, w):
    rows = np.maximum(x[:, :, 0:2 * h:2], x[:, :, 1:2 * h:2])
    return np.maximum(rows[:, :, :, 0:2 * w:2], rows[:, :, :, 1:2 * w:2])


def _stats(x):
    """mu, 1/sqrt(var + eps) per (task, channel), float64, from one pass over x (plain arrays)."""
    T, C = x.shape[0], x.shape[-1]
    m = x.shape[1] * x.shape[2] * x.shape[3]
    flat = x.reshape(T, m, C)
    ones = np.ones(m, dtype=x.dtype)
    s1 = np.stack([ones @ flat[t] for t in range(T)]).astype(np.float64)   # a matrix product: fast sums
    s2 = np.einsum("tmc,tmc->tc", flat, flat, dtype=np.float64) if x.dtype == np.float64 else \
        np.einsum("tmc,tmc->tc", flat, flat).astype(np.float64)
    mu = s1 / m
    var = np.maximum(s2 / m - mu * mu, 0.0)
    return mu, 1.0 / np.sqrt(var + BN_EPS)


def _pooled(x, s):
    """Per channel, the 2x2 max of x where s > 0 and its min where s <= 0: (T, n, h, w, C)."""
    h, w = x.shape[2] // 2, x.shape[3] // 2
    p = _pool_max(x, h, w)
    neg = s <= 0
    if neg.any():
        p = np.where(neg[:, None, None, None, :], -_pool_max(-x, h, w), p)
    return p


def _selection(x, p):
    """For each window position (a, b): where it holds the window's selected value first, (T, n, h, w, C) bool."""
    h, w = p.shape[2], p.shape[3]
    taken, out = None, []
    for a, b, view in _pool_views(x, h, w):
        eq = view == p
        if taken is None:
            taken = eq.copy()
        else:
            eq &= ~taken
            taken |= eq
        out.append((a, b, eq))
    return out


@primitive
def bn_pool(x, gamma, beta):
    """maxpool2(BatchNorm(x)): x (T, n, H, W, C), gamma, beta (T, C) -> (T, n, H // 2, W // 2, C)."""
    mu, rstd = _stats(x)
    s = gamma * rstd
    p = _pooled(x, s)
    dt = x.dtype
    ans = p * s[:, None, None, None, :].astype(dt)
    ans += (beta - mu * s)[:, None, None, None, :].astype(dt)
    _LAST[:] = [ans, (mu, rstd, p)]    # handed to the VJP (autograd builds it right after this call)
    return ans


# The statistics and pooled values of the last bn_pool call: the VJP reuses them instead of
# recomputing them (one slot; the VJP checks that it belongs to the same output).
_LAST = []


@primitive
def _unpool(g, mask):
    """Spread g (T, n, h, w, C) onto the selected positions: mask (T, n, H, W, C) of 0 / 1."""
    h, w = g.shape[2], g.shape[3]
    up = np.zeros(mask.shape, dtype=np.result_type(g, mask))
    for a, b, view in _pool_views(up, h, w):
        np.multiply(g, mask[:, :, a:2 * h:2, b:2 * w:2], out=view)
    return up


def _pool_sum(d, mask, h, w):
    """The adjoint of _unpool: sum over each 2x2 window of d * mask -> (T, n, h, w, C)."""
    total = 0
    for a, b, _ in _pool_views(mask, h, w):
        total = total + d[:, :, a:2 * h:2, b:2 * w:2] * mask[:, :, a:2 * h:2, b:2 * w:2]
    return total


defvjp(_unpool, lambda ans, g, mask: lambda d: _pool_sum(d, mask, g.shape[2], g.shape[3]), None)


def _bn_pool_vjp_traced(argnums, x, gamma, g):
    """The VJP in differentiable operations (for MAML's second order); the selection is held fixed."""
    xv = _plain(x)
    mu0, rstd0 = _stats(xv)
    p0 = _pooled(xv, _plain(gamma) * rstd0)
    mask = np.zeros(xv.shape, dtype=xv.dtype)
    for a, b, eq in _selection(xv, p0):
        mask[:, :, a:2 * p0.shape[2]:2, b:2 * p0.shape[3]:2] = eq
    m = x.shape[1] * x.shape[2] * x.shape[3]
    mu = anp.mean(x, axis=_AXES, keepdims=True)
    xc = x - mu
    rstd = 1.0 / anp.sqrt(anp.mean(xc * xc, axis=_AXES, keepdims=True) + BN_EPS)
    zhat = (_pool_sum(x, mask, p0.shape[2], p0.shape[3]) - mu) * rstd
    sum_g = anp.sum(g, axis=_AXES, keepdims=True)
    sum_gz = anp.sum(g * zhat, axis=_AXES, keepdims=True)
    out = []
    for i in argnums:
        if i == 0:
            s = gamma[:, None, None, None, :] * rstd
            out.append(_unpool(s * g, mask) - s * (sum_g + xc * rstd * sum_gz) / m)
        elif i == 1:
            out.append(anp.reshape(sum_gz, gamma.shape))
        else:
            out.append(anp.reshape(sum_g, gamma.shape))
    return tuple(out)


def _bn_pool_vjp(argnums, ans, args, kwargs):
    x, gamma, beta = args
    cached = _LAST[1] if _LAST and _LAST[0] is ans else None
    _LAST.clear()

    def vjp(g):
        if isbox(g) or isbox(x) or isbox(gamma):
            return _bn_pool_vjp_traced(argnums, x, gamma, g)
        T, C = gamma.shape
        m = x.shape[1] * x.shape[2] * x.shape[3]
        if cached is not None:
            mu, rstd, p = cached
        else:
            mu, rstd = _stats(x)
            p = _pooled(x, gamma * rstd)
        s = gamma * rstd
        zhat = (p - mu[:, None, None, None, :].astype(x.dtype)) * rstd[:, None, None, None, :].astype(x.dtype)
        fg = g.reshape(T, -1, C)
        sum_g = fg.sum(axis=1).astype(np.float64)
        sum_gz = np.einsum("tmc,tmc->tc", fg, zhat.reshape(T, -1, C)).astype(np.float64)
        out = []
        for i in argnums:
            if i == 0:
                A = -s * rstd * sum_gz / m
                B = -s * sum_g / m - A * mu
                dx = x * A[:, None, None, None, :].astype(x.dtype)
                dx += B[:, None, None, None, :].astype(x.dtype)
                sg = g * s[:, None, None, None, :].astype(g.dtype)
                h, w = p.shape[2], p.shape[3]
                for a, b, eq in _selection(x, p):
                    view = dx[:, :, a:2 * h:2, b:2 * w:2]
                    view += np.multiply(sg, eq)        # faster than np.add(..., where=eq)
                out.append(dx)
            elif i == 1:
                out.append(sum_gz.astype(gamma.dtype))
            else:
                out.append(sum_g.astype(beta.dtype))
        return tuple(out)
    return vjp


defvjp_argnums(bn_pool, _bn_pool_vjp)


@primitive
def relu(x):
    """max(x, 0)."""
    return np.maximum(x, 0)


defvjp(relu, lambda ans, x: lambda g: g * (ans > 0))


# ---------------------------------------------------------------------------------------------
# The network

def embedding_size(image_size=28, blocks=4, channels=64):
    """Length of the embedding: channels * (image_size halved `blocks` times, floored)^2."""
    s = image_size
    for _ in range(blocks):
        s //= 2
    return channels * s * s


def conv4_init(rng, channels=64, blocks=4, in_channels=1, dtype=np.float32):
    """[(W, gamma, beta)] per block: W (3, 3, C_in, C_out) ~ U(-1/sqrt(9 C_in), 1/sqrt(9 C_in)), gamma = 1, beta = 0.

    The uniform range is PyTorch's default for Conv2d.  BatchNorm makes each block indifferent to the
    scale of W, but Adam's steps have a fixed size, so smaller weights learn faster: this range trains
    markedly faster than He-normal (std sqrt(2 / (9 C_in)), 2.4x larger) in the same number of episodes.
    """
    check_rng(rng)
    channels = check_count(channels, "channels", 1)
    blocks = check_count(blocks, "blocks", 1)
    in_channels = check_count(in_channels, "in_channels", 1)
    theta, c_in = [], in_channels
    for _ in range(blocks):
        bound = 1.0 / np.sqrt(9 * c_in)
        W = rng.uniform(-bound, bound, size=(3, 3, c_in, channels))
        theta.append((W.astype(dtype), np.ones(channels, dtype), np.zeros(channels, dtype)))
        c_in = channels
    return theta


def num_params(theta) -> int:
    """Number of scalars in theta."""
    return int(sum(np.size(a) for block in theta for a in block))


def _seq(t):
    """autograd boxes whole lists and tuples while tracing; read them as plain ones."""
    return [t[i] for i in range(len(t))] if isinstance(t, SequenceBox) else t


def check_conv4_params(theta, in_channels=None, tasks=False):
    """TypeError / ValueError unless theta is [(W (3, 3, C_in, C_out), gamma (C_out,), beta (C_out,))] chained."""
    lead = 1 if tasks else 0
    theta = _seq(theta)
    if not isinstance(theta, (list, tuple)) or not theta:
        raise TypeError("theta must be a list of (W, gamma, beta) blocks from conv.conv4_init(rng); got "
                        f"{type(theta).__name__}.")
    c_prev = in_channels
    for i, block in enumerate(theta):
        block = _seq(block)
        if not isinstance(block, (list, tuple)) or len(block) != 3:
            raise TypeError(f"theta[{i}] must be a (W, gamma, beta) triple, got {type(block).__name__}"
                            + (f" of {len(block)}" if isinstance(block, (list, tuple)) else "") + ".")
        W, gamma, beta = (np.shape(a) for a in block)
        if len(W) != 4 + lead or W[lead:lead + 2] != (3, 3):
            raise ValueError(f"theta[{i}][0] (W) must have shape {'(T, ' if tasks else '('}3, 3, C_in, C_out), "
                             f"got {W}.")
        c_in, c_out = W[-2], W[-1]
        if gamma != W[:lead] + (c_out,) or beta != W[:lead] + (c_out,):
            raise ValueError(f"theta[{i}]: gamma and beta must have shape {W[:lead] + (c_out,)}, got {gamma} and "
                             f"{beta}.")
        if c_prev is not None and c_in != c_prev:
            raise ValueError(f"theta[{i}] takes {c_in} input channels but receives {c_prev}; the blocks do not "
                             "chain (build theta with conv.conv4_init).")
        c_prev = c_out
    return theta


def _images(x, lead):
    """x (lead..., n, H, W) or (lead..., n, H, W, C) -> (lead..., n, H, W, C), checked."""
    shape = np.shape(x)
    if len(shape) == lead + 3:
        x = anp.expand_dims(x, -1) if isbox(x) else np.asarray(x)[..., None]
    elif len(shape) != lead + 4:
        want = "(T, n, H, W)" if lead else "(n, H, W)"
        raise ValueError(f"x must be a batch of images of shape {want} or with a channel axis last, "
                         f"got shape {shape}.")
    if not isbox(x):
        x = np.asarray(x)
        if x.dtype.kind not in "fiu":
            raise TypeError(f"x must hold numbers (float32 images in [0, 1]), got dtype {x.dtype}.")
    return x


def _blocks(theta_tasks, x):
    """The four blocks on x (T, n, H, W, C) with per-task parameters; -> (T, n, embedding)."""
    h = x
    for block in _seq(theta_tasks):
        W, gamma, beta = _seq(block)
        if h.shape[2] < 2 or h.shape[3] < 2:
            raise ValueError(f"images of {x.shape[2]}x{x.shape[3]} are too small for {len(theta_tasks)} "
                             "pooling blocks; use 28x28 images or fewer blocks.")
        h = relu(bn_pool(conv3x3(h, W), gamma, beta))
    return anp.reshape(h, (h.shape[0], h.shape[1], -1))


def _blocks_shared(theta1, x, stats=None):
    """_blocks with parameters of task axis 1 applied to every task of x (BatchNorm per task, or
    with the fixed statistics `stats`)."""
    h = _apply_shared(theta1, x, stats)
    return anp.reshape(h, (h.shape[0], h.shape[1], -1))


def _apply_shared(theta1, x, stats=None):
    """The blocks of theta1 (or, with stats, its first len(stats) blocks) on x (T, n, H, W, C), unflattened."""
    T = x.shape[0]
    h = x
    if stats is not None:
        theta1 = theta1[:len(stats)]
    for i, block in enumerate(theta1):
        W, gamma, beta = _seq(block)
        if h.shape[2] < 2 or h.shape[3] < 2:
            raise ValueError(f"images of {x.shape[2]}x{x.shape[3]} are too small for {len(theta1)} "
                             "pooling blocks; use 28x28 images or fewer blocks.")
        if stats is not None:
            h = relu(_bn_pool_fixed(conv3x3(h, W), gamma, beta, *stats[i]))
            continue
        g_t = anp.repeat(gamma, T, axis=0) if T > 1 else gamma
        b_t = anp.repeat(beta, T, axis=0) if T > 1 else beta
        h = relu(bn_pool(conv3x3(h, W), g_t, b_t))
    return h


def _bn_pool_fixed(x, gamma, beta, mu, var):
    """maxpool2(gamma * (x - mu) / sqrt(var + eps) + beta) with fixed mu, var (C,): x (T, n, H, W, C).

    Plain autograd operations (an image's embedding no longer depends on the other images, so
    nothing needs a hand-written VJP); gamma, beta (1, C)."""
    s = gamma * (1.0 / np.sqrt(var + BN_EPS)).astype(_plain(gamma).dtype)
    shift = beta - mu.astype(_plain(beta).dtype) * s
    if not (isbox(x) or isbox(s) or isbox(shift)):   # as bn_pool: pool first, then the affine map on 4x less
        p = _pooled(x, s)
        p *= s[:, None, None, None, :]
        p += shift[:, None, None, None, :]
        return p
    y = x * s[:, None, None, None, :] + shift[:, None, None, None, :]
    h, w = x.shape[2] // 2, x.shape[3] // 2
    rows = anp.maximum(y[:, :, 0:2 * h:2], y[:, :, 1:2 * h:2])
    return anp.maximum(rows[:, :, :, 0:2 * w:2], rows[:, :, :, 1:2 * w:2])


def check_population_stats(stats, theta):
    """stats as [(mu, var)] float64 arrays, one pair per block of theta; ValueError with the fix otherwise."""
    how = "pass stats=conv4_population_stats(theta, images): one (mu, var) pair per block"
    theta = _seq(theta)
    if not isinstance(stats, (list, tuple)) or len(stats) != len(theta):
        raise ValueError(f"stats must hold one (mu, var) pair for each of theta's {len(theta)} blocks, got "
                         f"{len(stats) if isinstance(stats, (list, tuple)) else type(stats).__name__}; {how}.")
    out = []
    for i, (pair, block) in enumerate(zip(stats, theta)):
        c = np.shape(_seq(block)[1])[-1]
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ValueError(f"stats[{i}] must be a (mu, var) pair; {how}.")
        mu, var = (np.asarray(a, dtype=np.float64) for a in pair)
        if mu.shape != (c,) or var.shape != (c,):
            raise ValueError(f"stats[{i}]: mu and var must have shape ({c},) for theta[{i}]'s {c} channels, "
                             f"got {mu.shape} and {var.shape}; {how}.")
        if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(var)) and np.all(var >= 0)):
            raise ValueError(f"stats[{i}]: mu must be finite and var finite and >= 0; {how}.")
        out.append((mu, var))
    return out


def conv4_population_stats(theta, x, chunk=500):
    """BatchNorm's population statistics: [(mu, var)] per block, each (C_out,) float64.

    mu and var are the mean and the (biased) variance, per channel, of block b's convolution output
    over every image of x (n, H, W[, C]) and every pixel, with blocks 0..b-1 normalised by the
    statistics already found: what BatchNorm computes on a batch of all n images at once, in
    chunks of `chunk` images (memory stays at about chunk * 200 KB).  Then
    ``conv4_apply(theta, x, stats=stats)`` equals ``conv4_apply(theta, x)`` up to rounding.
    """
    check_conv4_params(theta)
    x = _images(x, 0)
    check_conv4_params(theta, in_channels=x.shape[-1])
    chunk = check_count(chunk, "chunk", 1)
    if isbox(x) or any(isbox(a) for block in _seq(theta) for a in _seq(block)):
        raise TypeError("conv4_population_stats is not differentiable: call it on plain arrays, after training.")
    x = _cast_x(x, theta[0][0])
    n = x.shape[0]
    if n < 1:
        raise ValueError("x holds no images; pass the training images (n, H, W).")
    theta1 = [tuple(np.asarray(a)[None] for a in block) for block in theta]
    stats, spans = [], [(s, min(n, s + chunk)) for s in range(0, n, chunk)]
    for b, (W, gamma, beta) in enumerate(theta1):
        C = W.shape[-1]
        s1, s2, m = np.zeros(C), np.zeros(C), 0
        for s, e in spans:
            y = conv3x3(_apply_shared(theta1, x[None, s:e], stats), W).reshape(-1, C)
            s1 += y.sum(axis=0, dtype=np.float64)
            s2 += np.einsum("mc,mc->c", y, y, dtype=np.float64)
            m += y.shape[0]
        mu = s1 / m
        stats.append((mu, np.maximum(s2 / m - mu * mu, 0.0)))
    return stats


def _cast_x(x, theta_leaf):
    dt = _plain(theta_leaf).dtype
    if not isbox(x) and x.dtype != dt:
        return x.astype(dt)
    return x


def conv4_apply(theta, x, stats=None):
    """Embeddings z = f_theta(x): x (n, H, W) or (n, H, W, C) -> (n, embedding_size) (64 at 28x28).

    BatchNorm over the n images of the call, or with fixed statistics ``stats`` (from
    conv4_population_stats), when each image's embedding depends on that image alone.
    """
    check_conv4_params(theta)
    x = _images(x, 0)
    check_conv4_params(theta, in_channels=x.shape[-1])
    x = _cast_x(x, theta[0][0])
    theta_tasks = [tuple(_seq(block)[k][None] for k in range(3)) for block in _seq(theta)]
    if stats is not None:
        return _blocks_shared(theta_tasks, x[None], check_population_stats(stats, theta))[0]
    return _blocks(theta_tasks, x[None])[0]


def conv4_apply_episodes(theta, x, stats=None):
    """One theta, many episodes at once: x (E, n, H, W[, C]) -> (E, n, 64), BatchNorm per episode
    (or with the fixed statistics ``stats``, as in conv4_apply).

    The same numbers as conv4_apply on each x[e] alone, in fewer, larger matrix products.
    """
    check_conv4_params(theta)
    x = _images(x, 1)
    check_conv4_params(theta, in_channels=x.shape[-1])
    x = _cast_x(x, theta[0][0])
    theta_tasks = [tuple(_seq(block)[k][None] for k in range(3)) for block in _seq(theta)]
    return _blocks_shared(theta_tasks, x, None if stats is None else check_population_stats(stats, theta))


def conv4_apply_tasks(theta_tasks, x):
    """Per-task embeddings: theta_tasks with a leading task axis (T, ...), x (T, n, H, W[, C]) -> (T, n, 64)."""
    check_conv4_params(theta_tasks, tasks=True)
    x = _images(x, 1)
    check_conv4_params(theta_tasks, in_channels=x.shape[-1], tasks=True)
    if x.shape[0] != np.shape(theta_tasks[0][0])[0]:
        raise ValueError(f"x holds {x.shape[0]} tasks but theta_tasks {np.shape(theta_tasks[0][0])[0]}; the "
                         "leading axes must match (tile theta with tree.tile_tasks(theta, T)).")
    x = _cast_x(x, theta_tasks[0][0])
    return _blocks(theta_tasks, x)
