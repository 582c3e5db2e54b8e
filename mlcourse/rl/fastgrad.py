"""Hand-derived MAML-RL meta-gradient for the Gaussian MLP policy, in plain NumPy.

Same mathematics as the autograd path in ``maml_rl.py`` (equal to it to 1e-10 in float64), without
the tracing.  Per task k the REINFORCE surrogate is, with w_i = A_i mask_i / #steps_k (constants),

    L(theta) = -sum_i w_i log pi_theta(a_i | s_i)
             = sum_i w_i [ 1/2 sum_d r_id^2 e_d + sum_d log_std_d ] + const,
    r_i = a_i - mu_theta(s_i),   e_d = exp(-2 log_std_d).

Forward through the MLP (ReLU on hidden layers, linear output):  z_l = h_{l-1} W_l + b_l,
h_l = relu(z_l), mu = z_L.  Backward, delta_l = dL/dz_l:

    delta_L = -w r e,   dW_l = h_{l-1}^T delta_l,   db_l = sum_i delta_l,
    delta_{l-1} = (delta_l W_l^T) * [z_{l-1} > 0],
    d log_std_d = sum_i w_i (1 - r_id^2 e_d).

Hessian-vector products H v by Pearlmutter's R-operator (R{.} = d/dr at theta + r v, v = (V_l, c_l,
v_std)); relu'' = 0 almost everywhere, so the masks do not move:

    R{z_l} = R{h_{l-1}} W_l + h_{l-1} V_l + c_l,   R{h_l} = R{z_l} * mask_l,   R{mu} = R{z_L}
    R{delta_L} = w e (R{mu} + 2 r v_std)
    R{dW_l} = R{h_{l-1}}^T delta_l + h_{l-1}^T R{delta_l},   R{db_l} = sum_i R{delta_l}
    R{delta_{l-1}} = (R{delta_l} W_l^T + delta_l V_l^T) * mask_{l-1}
    R{d log_std_d} = 2 e_d sum_i w_i r_id (R{mu}_id + r_id v_std_d)

The meta-gradient with m inner steps (sampled trajectories and advantages fixed, as in maml_rl) is
backpropagation through the unrolled inner loop: v = grad L(theta_m; D_m) per task, then
v <- v - alpha_j H(theta_j; D_j) v for j = m-1..0, and the mean of v over the tasks.

Only the steps that happened enter (rows after an episode's end have w = 0): each task's steps are
packed to the front and the arrays cut at the longest task, so episodes that end early cost nothing.
Arrays carry the task axis first: obs, actions (K, M, 2), w (K, M); per-task W (K, fan_in, fan_out).
Parameters are the policy's dict {"mlp": [(W, b)], "log_std"}, shared (no task axis) or per task.
"""
from __future__ import annotations

import numpy as np

from .._threads import Threads

__all__ = ["pack", "forward", "backward", "hvp", "surrogate_grad", "meta_gradient"]


def _T(W):
    return np.swapaxes(W, -1, -2)


def _bias(b):
    return b[:, None, :] if b.ndim == 2 else b


def _per_row(ls):
    """log_std (2,) or (K, 2) -> broadcastable against (K, M, 2)."""
    return ls[:, None, :] if ls.ndim == 2 else ls


def pack(obs, actions, adv, mask):
    """(obs, actions, w) with each task's steps first: obs, actions (K, M, 2), w (K, M), M <= N T.

    obs, actions (K, N, T, 2); adv, mask (K, N, T); w = adv mask / #steps of the task.
    """
    K = mask.shape[0]
    m = mask.reshape(K, -1)
    n = m.sum(axis=1)
    w = (adv.reshape(K, -1) * m) / n[:, None]
    obs, actions = obs.reshape(K, -1, 2), actions.reshape(K, -1, 2)
    M = int(n.max())
    if M == m.shape[1]:
        return obs, actions, w
    order = np.argsort(m == 0, axis=1, kind="stable")[:, :M]      # the steps that happened, in order
    take = lambda a: np.take_along_axis(a, order[..., None], axis=1)
    return take(obs), take(actions), np.take_along_axis(w, order, axis=1)


def forward(theta, obs):
    """(mu (K, M, 2), inputs of each layer [h_0..h_{L-1}], ReLU masks as 0/1 floats)."""
    mlp = theta["mlp"]
    hs, masks = [obs], []
    h = obs
    for l, (W, b) in enumerate(mlp):
        z = h @ W
        z += _bias(b)
        if l < len(mlp) - 1:
            m = (z > 0).astype(z.dtype)
            h = z * m
            masks.append(m)
            hs.append(h)
    return z, hs, masks


def backward(theta, hs, masks, mu, actions, w):
    """Per-task gradient of the surrogate and what hvp reuses: (grad, deltas, r, e)."""
    mlp, ls = theta["mlp"], theta["log_std"]
    e = np.exp(-2.0 * ls)
    r = actions - mu
    wr = w[..., None] * r
    delta = -wr * _per_row(e)
    g_ls = w.sum(axis=1)[:, None] - (wr * r).sum(axis=1) * e
    L = len(mlp)
    grads, deltas = [None] * L, [None] * L
    for l in range(L - 1, -1, -1):
        deltas[l] = delta
        grads[l] = (_T(hs[l]) @ delta, delta.sum(axis=1))
        if l > 0:
            delta = delta @ _T(mlp[l][0])
            delta *= masks[l - 1]
    return {"mlp": grads, "log_std": g_ls}, deltas, r, e


def hvp(theta, hs, masks, deltas, r, e, w, v):
    """Per-task Hessian of the surrogate at theta times v (per task, task axis first)."""
    mlp = theta["mlp"]
    L = len(mlp)
    Rhs = [None] * L
    Rh = None
    for l, (W, _) in enumerate(mlp):
        VW, Vb = v["mlp"][l]
        Rz = hs[l] @ VW
        Rz += Vb[:, None, :]
        if Rh is not None:
            Rz += Rh @ W
        Rhs[l] = Rh
        if l < L - 1:
            Rh = Rz * masks[l]
    v_std = v["log_std"]
    wr = w[..., None] * r
    Rdelta = (w[..., None] * Rz + 2.0 * wr * v_std[:, None, :]) * _per_row(e)
    R_ls = 2.0 * e * ((wr * Rz).sum(axis=1) + (wr * r).sum(axis=1) * v_std)
    out = [None] * L
    for l in range(L - 1, -1, -1):
        RgW = _T(hs[l]) @ Rdelta
        if Rhs[l] is not None:
            RgW += _T(Rhs[l]) @ deltas[l]
        out[l] = (RgW, Rdelta.sum(axis=1))
        if l > 0:
            Rdelta = Rdelta @ _T(mlp[l][0])
            Rdelta += deltas[l] @ _T(v["mlp"][l][0])
            Rdelta *= masks[l - 1]
    return {"mlp": out, "log_std": R_ls}


def _packed(rollouts, adv):
    return pack(rollouts.observations, rollouts.actions, adv, rollouts.mask)


def surrogate_grad(theta, rollouts, adv):
    """Per-task gradient of policy_gradient.surrogate_loss (theta shared or per task): task axis first."""
    obs, actions, w = _packed(rollouts, adv)
    mu, hs, masks = forward(theta, obs)
    return backward(theta, hs, masks, mu, actions, w)[0]


def _step(theta, g, alpha):
    """theta_k - alpha g_k for every task (theta shared or per task, g per task)."""
    return {"mlp": [(W - alpha * gW, b - alpha * gb) for (W, b), (gW, gb) in zip(theta["mlp"], g["mlp"])],
            "log_std": theta["log_std"] - alpha * g["log_std"]}


def _axpy(v, alpha, h):
    """v - alpha h, leaf by leaf (v is not reused)."""
    for (VW, Vb), (HW, Hb) in zip(v["mlp"], h["mlp"]):
        VW -= alpha * HW
        Vb -= alpha * Hb
    v["log_std"] = v["log_std"] - alpha * h["log_std"]
    return v


def _rows(theta, s, e):
    """Tasks s..e-1 of per-task parameters (shared parameters are returned as they are)."""
    if theta["log_std"].ndim == 1:
        return theta
    return {"mlp": [(W[s:e], b[s:e]) for W, b in theta["mlp"]], "log_std": theta["log_std"][s:e]}


def _stack(parts):
    """Per-task parameters of consecutive task chunks, joined along the task axis."""
    return {"mlp": [(np.concatenate([p["mlp"][l][0] for p in parts]), np.concatenate([p["mlp"][l][1] for p in parts]))
                    for l in range(len(parts[0]["mlp"]))],
            "log_std": np.concatenate([p["log_std"] for p in parts])}


def _task_bytes(theta, rollouts):
    """Working set of one task's gradient and Hessian-vector product: its steps times the widths, with room."""
    steps = rollouts.mask[0].size
    width = sum(W.shape[-1] for W, _ in theta["mlp"])
    return 8 * steps * width * rollouts.actions.itemsize


def meta_gradient(theta, sample, alphas, first_order=False):
    """(rollouts of the last phase, meta-gradient shaped like theta) of MAML-RL with len(alphas) inner steps.

    theta shared; sample(j, theta_j) -> (rollouts, advantages) of phase j (theta_j per task for j > 0);
    alphas[j] is the step size of inner step j.  The trajectories and advantages are held fixed (see
    maml_rl); first_order=True drops the Hessian terms.

    Every task's computation is independent until the mean: the tasks run in chunks, spread over as many
    threads as OpenBLAS has (``_threads.Threads``).  Each chunk keeps its own caches between the phases,
    and the chunks' sums are added in a fixed order, so the result does not depend on the thread count.
    """
    m = len(alphas)
    th = theta
    with Threads() as run:
        for j in range(m + 1):
            ro, adv = sample(j, th)
            if j == 0:
                K, task_bytes = ro.goals.shape[0], _task_bytes(theta, ro)
                chunks = run.chunks(K, task_bytes)
                caches = [[] for _ in chunks]

            def phase(c, j=j, ro=ro, adv=adv, th=th):
                s, e = chunks[c]
                thc = _rows(th, s, e)
                obs, actions, w = pack(ro.observations[s:e], ro.actions[s:e], adv[s:e], ro.mask[s:e])
                mu, hs, masks = forward(thc, obs)
                g, deltas, r, e_ = backward(thc, hs, masks, mu, actions, w)
                if j == m:
                    return g
                if not first_order:
                    caches[c].append((thc, hs, masks, deltas, r, e_, w))
                return _step(thc, g, alphas[j])
            out = run.map_items(phase, len(chunks), K * task_bytes)
            if j < m:
                th = _stack(out)

        def back(c):   # v = grad L(theta_m) of the chunk's tasks, then v <- v - alpha_j H_j v; summed over them
            v = out[c]
            if not first_order:
                for jj in range(m - 1, -1, -1):
                    v = _axpy(v, alphas[jj], hvp(*caches[c][jj], v))
            return v
        sums = [{"mlp": [(gW.sum(axis=0), gb.sum(axis=0)) for gW, gb in v["mlp"]], "log_std": v["log_std"].sum(axis=0)}
                for v in run.map_items(back, len(chunks), K * task_bytes)]
    total = sums[0]
    for part in sums[1:]:
        total = {"mlp": [(W + pW, b + pb) for (W, b), (pW, pb) in zip(total["mlp"], part["mlp"])],
                 "log_std": total["log_std"] + part["log_std"]}
    mean = {"mlp": [(W / K, b / K) for W, b in total["mlp"]], "log_std": total["log_std"] / K}
    return ro, mean
