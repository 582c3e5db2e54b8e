"""Hand-derived exact MAML, Meta-SGD and ANIL for the MLP + MSE family, in plain NumPy.

Same mathematics as the autograd paths in ``maml.py``, ``metasgd.py`` and ``anil.py`` (and checked
against them to 1e-10 in float64 by ``tests/test_fastpath.py``), without the tracing overhead.
Meta-SGD (``metasgd_value_and_grad``) runs MAML's unrolled loop with a step size per parameter;
ANIL (``anil_value_and_grad``) adapts only the linear head on features computed once; each states
its backward rules in its docstring and reuses the pieces below.

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

``forward``, ``backward`` and ``hvp`` state these rules one to one.  The meta-gradients
(``maml_value_and_grad`` and the others) run the same rules in a cheaper form, because a
meta-iteration is hundreds of small NumPy calls and their count sets the time:

- each bias rides in its weight matrix, A_l = [W_l; b_l] (fan_in + 1, fan_out), and every layer
  input carries a column of ones, [h, 1]: z_l = [h_{l-1}, 1] A_l is one matmul, and
  [h_{l-1}, 1]^T delta_l = [dW_l; db_l] gives both gradients at once (R{[h, 1]} = [R{h}, 0]);
- before the first inner step every task shares theta, so products with the shared W_l run
  as one (T K, fan_in) @ (fan_in, fan_out) matmul instead of T batched ones;
- where only the sum over tasks is needed (the last backward step, FOMAML), sum_t h_t^T delta_t
  is one (fan_in, T K) @ (T K, fan_out) product: no (T, fan_in, fan_out) temporaries;
- masks are stored as 0/1 floats, updates are written in place into fresh buffers, and the
  inner loop does not compute support losses that nothing reads.
"""
from __future__ import annotations

import numpy as np

__all__ = ["forward", "backward", "hvp", "support_grad", "adapt", "maml_value_and_grad", "multistep_value_and_grad",
           "reptile_direction",
           "fomaml_value_and_grad", "query_loss", "metasgd_value_and_grad", "anil_value_and_grad"]


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


# ---- the same rules in augmented form: A_l = [W_l; b_l], inputs [h, 1] (see the module docstring) ----

def _augment(theta):
    """[(W, b)] -> [A = [W; b]]: (fan_in + 1, fan_out) shared, or (T, fan_in + 1, fan_out) per task."""
    return [np.concatenate([W, b[..., None, :]], axis=-2) for W, b in theta]


def _split(A):
    """[A] -> [(W, b)]: views, no copies."""
    return [(a[..., :-1, :], a[..., -1, :]) for a in A]


def _with_ones(h, fill=None):
    """[h, 1] (..., K, d + 1); `fill(out_view)` writes h into the first d columns when given."""
    out = np.empty(h.shape[:-1] + (h.shape[-1] + 1,), h.dtype)
    if fill is None:
        out[..., :-1] = h
    else:
        fill(out[..., :-1])
    out[..., -1] = 1
    return out


def _mm_aug(h, A):
    """h @ A, h (T, K, a); A (a, b) shared: one (T K, a) @ (a, b) matmul; (T, a, b): batched."""
    if A.ndim == 2:
        return (h.reshape(-1, h.shape[-1]) @ A).reshape(h.shape[:-1] + (A.shape[-1],))
    return h @ A


def _mm_wt(delta, A):
    """delta @ W^T for W = A without its bias row (the backward pass through one layer)."""
    W = A[..., :-1, :]
    if W.shape[-1] == 1:  # one output: an outer product, cheaper as a broadcast multiply
        return delta * _T(W)
    if A.ndim == 2:
        return (delta.reshape(-1, delta.shape[-1]) @ W.T).reshape(delta.shape[:-1] + (W.shape[0],))
    return delta @ _T(W)


def _outer(h, delta, summed):
    """h^T delta per task (T, a, b), or its sum over tasks (a, b) as one flat product."""
    if summed:
        return h.reshape(-1, h.shape[-1]).T @ delta.reshape(-1, delta.shape[-1])
    return _T(h) @ delta


def _forward_aug(A, x1):
    """Output (T, K, d_out), layer inputs [[x, 1], [h_1, 1], ...] and 0/1 float ReLU masks."""
    hs, masks = [x1], []
    h = x1
    for l in range(len(A) - 1):
        z = _mm_aug(h, A[l])
        m = (z > 0).astype(z.dtype)  # relu'(z), 0 at z = 0
        h = _with_ones(z, lambda out, z=z, m=m: np.multiply(z, m, out=out))
        masks.append(m)
        hs.append(h)
    return _mm_aug(h, A[-1]), hs, masks


def _backward_aug(A, hs, masks, delta, summed=False):
    """Gradients [dA_l = [h, 1]^T delta_l] (per task, or summed over tasks) and the deltas."""
    L = len(A)
    grads, deltas = [None] * L, [None] * L
    for l in range(L - 1, -1, -1):
        deltas[l] = delta
        grads[l] = _outer(hs[l], delta, summed)
        if l > 0:
            delta = _mm_wt(delta, A[l])
            delta *= masks[l - 1]
    return grads, deltas


def _hvp_aug(A, hs, masks, deltas, V, scale, summed=False):
    """H V per task (or summed over tasks) for per-task directions V [(T, a + 1, b)]."""
    L = len(A)
    Rhs = [None] * L  # R{h_{l-1}} feeding layer l; R{h_0} = 0
    Rh = None
    for l in range(L):
        Rz = hs[l] @ V[l]
        if Rh is not None:
            Rz += _mm_aug(Rh, A[l][..., :-1, :])
        Rhs[l] = Rh
        if l < L - 1:
            Rz *= masks[l]
            Rh = Rz
    Rdelta = Rz
    Rdelta *= scale
    out = [None] * L
    for l in range(L - 1, -1, -1):
        RG = _outer(hs[l], Rdelta, summed)
        if Rhs[l] is not None:
            RG[..., :-1, :] += _outer(Rhs[l], deltas[l], summed)
        out[l] = RG
        if l > 0:
            Rdelta = _mm_wt(Rdelta, A[l])
            Rdelta += _mm_wt(deltas[l], V[l])
            Rdelta *= masks[l - 1]
    return out


def _sgd_aug(A, G, alpha):
    """A - alpha G, written into G (a fresh buffer)."""
    for a, g in zip(A, G):
        g *= -alpha
        g += a
    return G


def _adapt_aug(A, x1, y, alpha, steps, keep_caches):
    caches = []
    scale = 2.0 / (y.shape[1] * y.shape[2])
    for _ in range(steps):
        out, hs, masks = _forward_aug(A, x1)
        out -= y
        out *= scale
        G, deltas = _backward_aug(A, hs, masks, out)
        if keep_caches:
            caches.append((A, hs, masks, deltas, scale))
        A = _sgd_aug(A, G, alpha)
    return A, caches


def adapt(theta, x, y, alpha, steps, keep_caches=True):
    """theta' per task after `steps` SGD steps on (x, y); returns (theta', caches per step).

    keep_caches=False drops what only the second-order backward pass needs (first-order methods).
    """
    A, caches = _adapt_aug(_augment(theta), _with_ones(x), y, alpha, steps, keep_caches)
    if steps == 0:  # keep the promise of a task axis
        T = x.shape[0]
        return [(np.broadcast_to(W, (T,) + W.shape[-2:]), np.broadcast_to(b, (T,) + b.shape[-1:]))
                for W, b in theta], caches
    return _split(A), caches


def query_loss(theta_prime, x, y):
    out, _, _ = _forward_aug(_augment(theta_prime), _with_ones(x))
    out -= y
    out *= out
    return np.mean(out, axis=(1, 2))


def _query(A, x, y, weight, summed):
    """Mean query loss over all tasks and the gradient of weight * (sum of per-task losses)."""
    out, hs, masks = _forward_aug(A, _with_ones(x))
    out -= y
    loss = np.vdot(out, out) / out.size  # every task has the same Q: the mean of the task means
    out *= weight * 2.0 / (y.shape[1] * y.shape[2])
    G, _ = _backward_aug(A, hs, masks, out, summed)
    return loss, G


def _back_through_step(cache, V, alpha, first):
    """v <- (I - alpha H_s(theta^(i))) v for the inner step stored in cache (per task).

    first: the step from the shared theta^(0) = theta, where only the sum over tasks is needed.
    """
    Ai, hs, masks, deltas, s = cache
    HV = _hvp_aug(Ai, hs, masks, deltas, V, s, summed=first)
    for hv, v in zip(HV, V):
        hv *= -alpha
        hv += v.sum(axis=0) if first else v
    return HV


def maml_value_and_grad(theta, batch, alpha, inner_steps):
    """Mean query loss after adaptation and its exact (second-order) gradient w.r.t. shared theta."""
    T = batch.x_support.shape[0]
    A, caches = _adapt_aug(_augment(theta), _with_ones(batch.x_support), batch.y_support, alpha, inner_steps,
                           keep_caches=True)
    # v = grad of the mean over tasks; per task unless theta' = theta is shared (no steps)
    lq, V = _query(A, batch.x_query, batch.y_query, 1.0 / T, summed=inner_steps == 0)
    for i in range(inner_steps - 1, -1, -1):
        V = _back_through_step(caches[i], V, alpha, first=i == 0)
    return lq, _split(V)


def multistep_value_and_grad(theta, batch, alpha, inner_steps):
    """Mean over j = 1..m of the query loss after j inner steps, and its exact gradient.

    Backward through the unrolled loop, adding each step's query gradient on the way:
    v <- v + grad L_q(theta^(j)) / m, then v <- v - alpha H_s(theta^(j-1)) v, for j = m..1.
    """
    if inner_steps == 0:
        return maml_value_and_grad(theta, batch, alpha, 0)
    T = batch.x_support.shape[0]
    x1 = _with_ones(batch.x_support)
    A, caches, query_grads, losses = _augment(theta), [], [], []
    for _ in range(inner_steps):
        A, c = _adapt_aug(A, x1, batch.y_support, alpha, 1, keep_caches=True)
        caches += c
        lq, gq = _query(A, batch.x_query, batch.y_query, 1.0 / (inner_steps * T), summed=False)
        losses.append(lq)
        query_grads.append(gq)
    V = None
    for j in range(inner_steps - 1, -1, -1):
        if V is None:
            V = query_grads[j]
        else:
            for v, g in zip(V, query_grads[j]):
                v += g
        V = _back_through_step(caches[j], V, alpha, first=j == 0)
    return float(np.mean(losses)), _split(V)


def fomaml_value_and_grad(theta, batch, alpha, inner_steps):
    """First-order MAML: the query gradient at theta', averaged over tasks (d theta'/d theta ~ I)."""
    T = batch.x_support.shape[0]
    A, _ = _adapt_aug(_augment(theta), _with_ones(batch.x_support), batch.y_support, alpha, inner_steps,
                      keep_caches=False)
    lq, G = _query(A, batch.x_query, batch.y_query, 1.0 / T, summed=True)
    return lq, _split(G)


def reptile_direction(theta, x, y, alpha, steps):
    """mean over tasks of theta'_T - theta (the last step's mean gradient as one flat product)."""
    if steps == 0:
        return [(np.zeros_like(W), np.zeros_like(b)) for W, b in theta]
    A0 = _augment(theta)
    x1 = _with_ones(x)
    A, _ = _adapt_aug(A0, x1, y, alpha, steps - 1, keep_caches=False)
    out, hs, masks = _forward_aug(A, x1)
    out -= y
    out *= 2.0 / (y.shape[0] * y.shape[1] * y.shape[2])  # the mean over tasks folded into delta
    G, _ = _backward_aug(A, hs, masks, out, summed=True)
    for a, a0, g in zip(A, A0, G):  # mean_t theta^(m-1)_t - alpha mean_t g_t - theta
        g *= -alpha
        g += (a.mean(axis=0) if a.ndim == 3 else a) - a0
    return _split(G)


# ---- Meta-SGD: the same unrolled loop with a step size per parameter -------------------------------------

def metasgd_value_and_grad(theta, log_alpha, batch, inner_steps, multistep=False):
    """Meta-SGD's meta-loss and its exact gradient for (theta, log_alpha), alpha = exp(log_alpha).

    Backward through theta^(i+1) = theta^(i) - alpha * g_i, v = dL/dtheta^(i+1) per task:

        dL/dtheta^(i) = v - H_s(theta^(i)) (alpha * v),    dL/dalpha += -sum_t g_i * v,
        dL/dlog_alpha = alpha * dL/dalpha.

    multistep: the loss is the mean over j = 1..m of L_q(theta^(j)) (each step's query gradient
    joins v on the way back), else L_q(theta^(m)).  Returns (loss, (grad theta, grad log_alpha)).
    """
    T = batch.x_support.shape[0]
    A0 = _augment(theta)
    if inner_steps == 0:
        lq, G = _query(A0, batch.x_query, batch.y_query, 1.0 / T, summed=True)
        return lq, (_split(G), [(np.zeros_like(W), np.zeros_like(b)) for W, b in log_alpha])
    Alpha = [np.exp(a) for a in _augment(log_alpha)]
    scored = range(inner_steps) if multistep else [inner_steps - 1]
    weight = 1.0 / (T * len(scored))
    losses, query_grads = [], {}

    # the inner loop theta^(i+1) = theta^(i) - alpha * G_i (augmented; Alpha = [alpha_W; alpha_b]), keeping what
    # the backward pass reads, G_i included (d theta^(i+1) / d alpha = -G_i)
    x1, y = _with_ones(batch.x_support), batch.y_support
    scale = 2.0 / (y.shape[1] * y.shape[2])
    A, caches = A0, []
    for i in range(inner_steps):
        out, hs, masks = _forward_aug(A, x1)
        out -= y
        out *= scale
        G, deltas = _backward_aug(A, hs, masks, out)
        caches.append((A, hs, masks, deltas, scale, G))
        A_next = []
        for a, al, g in zip(A, Alpha, G):
            step = g * al
            A_next.append(np.subtract(a, step, out=step))
        A = A_next
        if i in scored:
            lq, query_grads[i] = _query(A, batch.x_query, batch.y_query, weight, summed=False)
            losses.append(lq)
    dAlpha = [np.zeros_like(a) for a in Alpha]
    V = None
    for i in range(inner_steps - 1, -1, -1):
        if i in query_grads:
            if V is None:
                V = query_grads[i]
            else:
                for v, g in zip(V, query_grads[i]):
                    v += g
        Ai, hs, masks, deltas, s, G = caches[i]
        first = i == 0
        U = []
        for da, g, v, al in zip(dAlpha, G, V, Alpha):
            g *= v  # G_i is read here only: its buffer takes g_i * v
            da -= g.sum(axis=0)
            U.append(v * al)
        HU = _hvp_aug(Ai, hs, masks, deltas, U, s, summed=first)
        V = [np.subtract(v.sum(axis=0) if first else v, hu, out=hu) for v, hu in zip(V, HU)]
    for da, al in zip(dAlpha, Alpha):
        da *= al
    return float(np.mean(losses)), (_split(V), _split(dAlpha))


# ---- ANIL: the body's features computed once, the linear head adapted --------------------------------------

def anil_value_and_grad(body, head, batch, alpha, inner_steps, multistep=False):
    """ANIL's meta-loss and its exact gradient for an MLP body (ReLU after every layer) and a linear head.

    With p = [phi_s, 1], q = [phi_q, 1] (per task) and the augmented head A = [W; b], one inner step is
    A^(i+1) = A^(i) + p^T e'_i,  e'_i = -alpha s (p A^(i) - y_s),  s = 2 / (K d_out).  Every head is
    A^(i) = A^(0) + p^T B_i with B_i = e'_0 + ... + e'_(i-1) (K x d_out per task), so the loop runs in
    the support points' space, with N = I - alpha s p p^T (K x K, symmetric, one per task):

        B_1 = e'_0 = -alpha s (p A^(0) - y_s),   B_(i+1) = N B_i + e'_0.

    Backward, v_i = dL/dA^(i) = v_(i+1) + p^T u_(i+1) [+ g_i = q^T e_q^(i) when L_q(A^(i)) is scored],
    u_i = -alpha s p v_i, so u_i = N u_(i+1) [+ -alpha s p g_i]: the backward loop runs there too.
    Collecting terms (B_0 = 0, e_q^(j) = dL/d(q A^(j)) the weighted query residual):

        dL/dp = sum_j B_j g_j^T + (X + X^T) p + (sum_i u_i) A^(0)T,   X = sum_(i>=2) B_(i-1) u_i^T,
        dL/dq = sum_j e_q^(j) A^(j)T,   dL/dA^(0) = v_0, summed over tasks [phi, 1]^T c
        (c = sum_i u_i on the support points, sum_j e_q^(j) on the query points): one flat product.

    Only the scored heads are formed in feature space; dL/dphi then runs back through the body once, for
    the support and query points together.  Returns (loss, (grad body, grad head)).
    """
    x_s, y_s, x_q, y_q = batch.x_support, batch.y_support, batch.x_query, batch.y_query
    T, Ks, d_in = x_s.shape
    Kq, d, m, Lb = x_q.shape[1], y_s.shape[2], inner_steps, len(body)
    Ns = T * Ks  # rows: every task's support points, then every task's query points
    W0, b0 = head
    dt = W0.dtype
    h = np.empty((Ns + T * Kq, d_in + 1), dt)
    h[:Ns, :-1] = x_s.reshape(Ns, d_in)
    h[Ns:, :-1] = x_q.reshape(-1, d_in)
    h[:, -1] = 1
    hs, masks, Ax = [h], [], []
    for W, b in body:  # the body, once, for every point: [phi, 1] = hs[-1]; masks as 0/1 floats
        # [h, 1] [[W, 0], [b, 1]] = [z, 1]: the layer's output comes with its column of ones, contiguous
        A = np.zeros((W.shape[0] + 1, W.shape[1] + 1), dt)
        A[:-1, :-1] = W
        A[-1, :-1] = b
        A[-1, -1] = 1
        Ax.append(A)
        h = h @ A
        mask = np.greater(h, 0, out=np.empty(h.shape, dt))  # relu'(z), 0 at z = 0 (1 on the ones)
        h *= mask
        hs.append(h)
        masks.append(mask)
    n1 = h.shape[1]
    p, q = h[:Ns].reshape(T, Ks, n1), h[Ns:].reshape(T, Kq, n1)
    a_s = alpha * 2.0 / (Ks * d)  # alpha s
    multi = multistep and m > 1
    n_scored = m if multi else 1
    A0t = np.empty((d, n1), dt)  # A^(0)T
    A0t[:, :-1] = W0.T
    A0t[:, -1] = b0
    c = np.empty((Ns + T * Kq, d), dt)  # v_0 summed over tasks = [phi, 1]^T c
    c_s, c_q = c[:Ns].reshape(T, Ks, d), c[Ns:].reshape(T, Kq, d)
    dphi = np.empty((Ns + T * Kq, n1), dt)  # dL/d[phi, 1]: its last column is never read
    dp, dq = dphi[:Ns].reshape(T, Ks, n1), dphi[Ns:].reshape(T, Kq, n1)
    if m == 0:
        r = q @ A0t.T
        heads = A0t
    else:
        if m == 1:
            LU = np.empty((T, Ks, 2 * d), dt)
            B, U = LU[..., :d], LU[..., d:]  # B_1 = e'_0, u_1
            np.matmul(h[:Ns], A0t.T, out=LU.reshape(Ns, 2 * d)[:, :d])  # p A^(0), one flat product
            e0 = B
        else:
            # B_(i+1) = [N | e'_0] @ [B_i; I]: one product per step, the identity rows stored under each B_i
            Bx = np.empty((T, Ks + d, m * d), dt)
            Bx[:, Ks:] = np.tile(np.eye(d, dtype=dt), m) if d > 1 else 1
            B, U = Bx[:, :Ks], np.empty((T, Ks, m * d), dt)
            Nx = np.empty((T, Ks, Ks + d), dt)
            e0 = Nx[..., Ks:]
            np.matmul(p, A0t.T, out=e0)
        e0 -= y_s
        e0 *= -a_s
        if m > 1:
            B[..., :d] = e0
            pas = p * -a_s
            np.matmul(pas, _T(p), out=Nx[..., :Ks])
            Nx.reshape(T, -1)[:, :Ks * (Ks + d + 1):Ks + d + 1] += 1  # N = I - alpha s p p^T
            N = Nx[..., :Ks]
            for i in range(1, m):
                np.matmul(Nx, Bx[..., (i - 1) * d:i * d], out=B[..., i * d:(i + 1) * d])
        # the scored heads A^(j)T = A^(0)T + B_j^T p, as row blocks (T, n_scored d, n1)
        heads = _T(B[..., (m - n_scored) * d:]) @ p
        heads += A0t if not multi else np.tile(A0t, (m, 1))
        r = q @ _T(heads)
    # the query residuals at the scored heads, side by side (T, Kq, n_scored d), scaled into e_q^(j)
    if multi:
        r4 = r.reshape(T, Kq, m, d)
        r4 -= y_q[:, :, None, :]
    else:
        r -= y_q
    loss = float(np.vdot(r, r)) / (n_scored * T * Kq * d)
    r *= 2.0 / (Kq * d) / (T * n_scored)
    if multi:
        np.add.reduce(r4, axis=2, out=c_q)
    else:
        c_q[...] = r
    if d == 1 and not multi:  # dL/dq = e_q A^(m)T; with one output an outer product, as a broadcast multiply
        np.multiply(r, heads, out=dq)
    else:
        np.matmul(r, heads, out=dq)
    if m == 0:
        c_s[...] = 0
        dp[...] = 0
    else:
        # right-hand rows of dL/dp: [g_j^T = e_q^(j)T q (n_scored d rows) | p (m > 1) | A^(0)T]
        nsd = n_scored * d
        gA = np.empty((T, nsd + (Ks if m > 1 else 0) + d, n1), dt)
        g = gA[:, :nsd]
        np.matmul(_T(r), q, out=g)
        if m == 1:
            np.matmul(p, _T(g), out=U)
            U *= -a_s
        else:
            np.matmul(pas, _T(g), out=U[..., (m - n_scored) * d:])
            for i in range(m - 1, 0, -1):  # u_i = N u_(i+1) [+ -alpha s p g_i]
                ui = U[..., (i - 1) * d:i * d]
                if multi:
                    ui += N @ U[..., i * d:(i + 1) * d]
                else:
                    np.matmul(N, U[..., i * d:(i + 1) * d], out=ui)
        # dL/dp = sum_j B_j g_j^T + (X + X^T) p + (sum_i u_i) A^(0)T: one product [B_j | X + X^T | sum_i u_i] @ gA
        gA[:, -d:] = A0t
        if m == 1:  # [B_1 | u_1] @ [g_1^T; A^(0)T]
            c_s[...] = U
            np.matmul(LU, gA, out=dp)
        else:
            gA[:, nsd:nsd + Ks] = p
            left = np.empty((T, Ks, nsd + Ks + d), dt)
            left[..., :nsd] = B[..., (m - n_scored) * d:]
            X = left[..., nsd:nsd + Ks]
            np.matmul(B[..., :(m - 1) * d], _T(U[..., d:]), out=X)
            X += _T(X)
            if d == 1:  # sum_i u_i as one flat product
                np.matmul(U.reshape(Ns, m), np.ones((m, 1), dt), out=left.reshape(Ns, -1)[:, -1:])
            else:
                np.add.reduce(U.reshape(T, Ks, m, d), axis=2, out=left[..., -d:])
            c_s[...] = left[..., -d:]
            np.matmul(left, gA, out=dp)
    G0 = h.T @ c
    delta = dphi
    delta *= masks[-1]
    G = [None] * Lb
    for l in range(Lb - 1, -1, -1):  # back through the body: one flat product per layer for every point
        G[l] = (hs[l].T @ delta)[:, :-1]  # the ones' column of delta is not a gradient
        if l > 0:
            delta = delta @ np.ascontiguousarray(Ax[l].T)  # [W, 0] kills that column; [b, 1] fills the next one's
            delta *= masks[l - 1]
    return loss, (_split(G), (G0[:-1], G0[-1]))
