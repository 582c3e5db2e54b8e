"""Hand-derived exact MAML for the MLP + MSE family, in plain NumPy.

Same mathematics as the autograd path in ``maml.py`` (and checked against it to 1e-10
in float64 by ``tests/test_fastpath.py``), without the tracing overhead.

Forward, for layers l = 1..L (ReLU on hidden layers, linear output)::

    z_l = h_{l-1} W_l + b_l,   h_l = relu(z_l),   L = mean (z_L - y)^2

Backward (delta_l = dL/dz_l)::

    delta_L = 2 (z_L - y) / N,   dW_l = h_{l-1}^T delta_l,   db_l = sum_k delta_l,
    delta_{l-1} = (delta_l W_l^T) * [z_{l-1} > 0]

Hessian-vector product H v by Pearlmutter's R-operator (R{.} = d/dr at theta + r v;
relu'' = 0 almost everywhere, so the masks do not move)::

    R{z_l} = R{h_{l-1}} W_l + h_{l-1} V_l + v_l,          R{h_l} = R{z_l} * mask_l
    R{delta_L} = 2 R{z_L} / N
    R{dW_l} = R{h_{l-1}}^T delta_l + h_{l-1}^T R{delta_l},  R{db_l} = sum_k R{delta_l}
    R{delta_{l-1}} = (R{delta_l} W_l^T + delta_l V_l^T) * mask_{l-1}

The exact meta-gradient for m inner steps is backpropagation through the unrolled loop:
v = grad L_q(theta^(m)), then v <- v - alpha H_s(theta^(i)) v for i = m-1..0.

All arrays carry the task axis first: x (T, K, d), per-task W (T, fan_in, fan_out).
"""
from __future__ import annotations

import numpy as np

__all__ = ["forward", "backward", "hvp", "support_grad", "adapt", "maml_value_and_grad", "multistep_value_and_grad",
           "fomaml_value_and_grad", "query_loss"]


def _bias(b):
    return b[:, None, :] if b.ndim == 2 else b


def _T(W):
    return np.swapaxes(W, -1, -2)


def _mm(a, b):
    """a @ b; a contraction over a single index is an outer product, cheaper as a broadcast multiply."""
    if a.shape[-1] == 1:
        return a * b
    return a @ b


def forward(theta, x):
    """Return (output (T, K, d_out), inputs to each layer [h_0..h_{L-1}], ReLU masks)."""
    hs, masks = [x], []
    h = x
    last = len(theta) - 1
    for l, (W, b) in enumerate(theta):
        z = _mm(h, W)
        z += _bias(b)
        if l < last:
            m = z > 0
            h = np.maximum(z, 0)
            masks.append(m)
            hs.append(h)
        else:
            h = z
    return h, hs, masks


def backward(theta, hs, masks, delta):
    """Per-task gradients [(dW, db)] and the deltas dL/dz_l of each layer."""
    L = len(theta)
    grads, deltas = [None] * L, [None] * L
    for l in range(L - 1, -1, -1):
        deltas[l] = delta
        grads[l] = (_T(hs[l]) @ delta, delta.sum(axis=1))
        if l > 0:
            delta = _mm(delta, _T(theta[l][0]))
            delta *= masks[l - 1]
    return grads, deltas


def hvp(theta, hs, masks, deltas, v, scale):
    """Per-task Hessian of the support loss times v (same structure as theta, task axis first).

    scale = 2 / N is d delta_L / d z_L for the MSE over N = K * d_out values.
    """
    L = len(theta)
    Rhs = [None] * L  # R{h_{l-1}} feeding layer l; R{h_0} = 0
    Rh = None
    for l, (W, _) in enumerate(theta):
        VW, Vb = v[l]
        Rz = _mm(hs[l], VW)
        Rz += _bias(Vb)
        if Rh is not None:
            Rz += _mm(Rh, W)
        Rhs[l] = Rh
        if l < L - 1:
            Rh = Rz * masks[l]
    Rdelta = scale * Rz
    out = [None] * L
    for l in range(L - 1, -1, -1):
        RgW = _T(hs[l]) @ Rdelta
        if Rhs[l] is not None:
            RgW += _T(Rhs[l]) @ deltas[l]
        out[l] = (RgW, Rdelta.sum(axis=1))
        if l > 0:
            Rdelta = _mm(Rdelta, _T(theta[l][0]))
            Rdelta += _mm(deltas[l], _T(v[l][0]))
            Rdelta *= masks[l - 1]
    return out


def _sgd(theta, grads, alpha):
    return [(W - alpha * gW, b - alpha * gb) for (W, b), (gW, gb) in zip(theta, grads)]


def support_grad(theta, x, y):
    """Per-task loss (T,), per-task gradients, and the cache needed for an HVP."""
    out, hs, masks = forward(theta, x)
    r = out - y
    n = r.shape[1] * r.shape[2]
    grads, deltas = backward(theta, hs, masks, (2.0 / n) * r)
    loss = np.mean(r * r, axis=(1, 2))
    return loss, grads, (hs, masks, deltas, 2.0 / n)


def adapt(theta, x, y, alpha, steps, keep_caches=True):
    """theta' per task after `steps` SGD steps on (x, y); returns (theta', caches per step).

    keep_caches=False drops what only the second-order backward pass needs (first-order methods).
    """
    th, caches = theta, []
    for _ in range(steps):
        _, grads, cache = support_grad(th, x, y)
        if keep_caches:
            caches.append((th, cache))
        th = _sgd(th, grads, alpha)
    if steps == 0:  # keep the promise of a task axis
        T = x.shape[0]
        th = [(np.broadcast_to(W, (T,) + W.shape[-2:]), np.broadcast_to(b, (T,) + b.shape[-1:])) for W, b in th]
    return th, caches


def query_loss(theta_prime, x, y):
    out, _, _ = forward(theta_prime, x)
    return np.mean((out - y) ** 2, axis=(1, 2))


def maml_value_and_grad(theta, batch, alpha, inner_steps):
    """Mean query loss after adaptation and its exact (second-order) gradient w.r.t. shared theta."""
    T = batch.x_support.shape[0]
    theta_prime, caches = adapt(theta, batch.x_support, batch.y_support, alpha, inner_steps)
    lq, v, _ = support_grad(theta_prime, batch.x_query, batch.y_query)
    v = [(gW / T, gb / T) for gW, gb in v]  # mean over tasks
    for th, (hs, masks, deltas, s) in reversed(caches):
        Hv = hvp(th, hs, masks, deltas, v, s)
        v = [(a - alpha * ha, c - alpha * hc) for (a, c), (ha, hc) in zip(v, Hv)]
    grad = [(gW.sum(axis=0), gb.sum(axis=0)) for gW, gb in v]
    return lq.mean(), grad


def multistep_value_and_grad(theta, batch, alpha, inner_steps):
    """Mean over j = 1..m of the query loss after j inner steps, and its exact gradient.

    Backward through the unrolled loop, adding each step's query gradient on the way:
    v <- v + grad L_q(theta^(j)) / m, then v <- v - alpha H_s(theta^(j-1)) v, for j = m..1.
    """
    if inner_steps == 0:
        return maml_value_and_grad(theta, batch, alpha, 0)
    T = batch.x_support.shape[0]
    th, caches, query_grads, losses = theta, [], [], []
    for _ in range(inner_steps):
        _, grads, cache = support_grad(th, batch.x_support, batch.y_support)
        caches.append((th, cache))
        th = _sgd(th, grads, alpha)
        lq, gq, _ = support_grad(th, batch.x_query, batch.y_query)
        losses.append(lq.mean())
        query_grads.append(gq)
    w = 1.0 / (inner_steps * T)
    v = None
    for j in range(inner_steps - 1, -1, -1):
        gq = [(w * gW, w * gb) for gW, gb in query_grads[j]]
        v = gq if v is None else [(a + ga, c + gc) for (a, c), (ga, gc) in zip(v, gq)]
        th_j, (hs, masks, deltas, s) = caches[j]
        Hv = hvp(th_j, hs, masks, deltas, v, s)
        v = [(a - alpha * ha, c - alpha * hc) for (a, c), (ha, hc) in zip(v, Hv)]
    grad = [(gW.sum(axis=0), gb.sum(axis=0)) for gW, gb in v]
    return float(np.mean(losses)), grad


def fomaml_value_and_grad(theta, batch, alpha, inner_steps):
    """First-order MAML: the query gradient at theta', averaged over tasks (d theta'/d theta ~ I)."""
    theta_prime, _ = adapt(theta, batch.x_support, batch.y_support, alpha, inner_steps, keep_caches=False)
    lq, g, _ = support_grad(theta_prime, batch.x_query, batch.y_query)
    return lq.mean(), [(gW.mean(axis=0), gb.mean(axis=0)) for gW, gb in g]
