"""ANIL, "almost no inner loop" (Raghu, Raghu, Bengio & Vinyals, 2020): adapt only the head.

    model        f(x) = head(body(theta_body, x)),  head(phi) = phi W + b   (a linear last layer)
    params       {"body": theta_body, "head": (W, b)},  W (features, d_out), b (d_out,)
    inner step   (W, b)^(i+1) = (W, b)^(i) - alpha grad_(W, b) L_s      body held fixed
    meta-loss    L(params) = mean over tasks of L_q(body, head'(body, head))
    meta-grad    exact, through every inner step of the head (second order), for the body
                 (meta-learned in the outer loop only) and the head's initialisation

The features phi = body(theta_body, x) are computed once per set: the inner loop never touches
the body, which is what makes ANIL cheap.  Any body works: a function body(theta_body, x) ->
features, x (T, K, ...) -> (T, K, features) (``mlp_body`` for the MLP; a convolutional embedding
the same way); ``split_mlp`` turns MLP parameters [(W1, b1), ..., (WL, bL)] into body and head.
Same shape as ``maml``: ``anil_value_and_grad(params, batch, alpha, inner_steps)`` -> (loss, grad
shaped like params), vectorised over the meta-batch.  For ``mlp_body`` with the MSE the gradients come
from a hand-derived NumPy path (``fastpath.anil_value_and_grad``, equal to autograd's to 1e-10 in
float64); any other body or loss goes through autograd.
"""
from __future__ import annotations

import math

import autograd.numpy as np
import numpy as onp
from autograd import value_and_grad as ag_value_and_grad

from . import _evaluation, fastpath, maml, nets, tree
from ._validate import all_finite, check_alpha, check_count

__all__ = ["mlp_body", "split_mlp", "join_mlp", "anil_init", "head_apply", "check_head", "features", "adapt_head",
           "anil_loss", "anil_value_and_grad", "anil_multistep_value_and_grad", "query_losses", "evaluate"]


def mlp_body(theta_body, x):
    """The MLP without its last layer: ReLU after every layer.  x (..., K, d_in) -> (..., K, h)."""
    h = nets.mlp_apply(theta_body, x)
    return h * (h > 0)


def split_mlp(theta):
    """MLP parameters [(W1, b1), ..., (WL, bL)] -> {"body": [(W1, b1), ..., (W_{L-1}, b_{L-1})], "head": (WL, bL)}."""
    nets.check_mlp_params(theta)
    if len(theta) < 2:
        raise ValueError("an MLP needs at least two layers to split into a body and a linear head; "
                         "build it with nets.mlp_init(rng, [1, 40, 40, 1]).")
    W, b = theta[-1]
    return {"body": [tuple(layer) for layer in theta[:-1]], "head": (W, b)}


def join_mlp(params):
    """The inverse of split_mlp: the full MLP [(W1, b1), ..., (WL, bL)]."""
    return [*params["body"], tuple(params["head"])]


def anil_init(rng, sizes, dtype=onp.float64):
    """{"body", "head"} for an MLP of the given sizes (nets.mlp_init, then split_mlp)."""
    return split_mlp(nets.mlp_init(rng, sizes, dtype=dtype))


def head_apply(head, phi):
    """phi W + b; shared head (W (h, d), b (d,)) or per-task (W (T, h, d), b (T, d)) with phi (T, K, h)."""
    return nets.mlp_apply([head], phi)


def _split(params):
    if not isinstance(params, dict) or set(params) != {"body", "head"}:
        raise TypeError('params must be a dict {"body": theta_body, "head": (W, b)} (anil.anil_init(rng, '
                        "[1, 40, 40, 1]) or anil.split_mlp(theta) make one); got "
                        + (f"a dict with keys {sorted(params)}" if isinstance(params, dict) else type(params).__name__)
                        + ".")
    return params["body"], params["head"]


def check_head(head, phi_shape, y_dim=None):
    """The head must be a linear layer (W (features, d_out), b (d_out,)) that fits the body's features."""
    if not isinstance(head, (tuple, list)) or len(head) != 2:
        raise TypeError(f"the head must be a pair (W, b) of a linear layer, got {type(head).__name__}.")
    ws, bs = onp.shape(head[0]), onp.shape(head[1])
    if len(ws) != 2 or len(bs) != 1 or ws[1] != bs[0]:
        raise ValueError(f"the head must be (W (features, d_out), b (d_out,)); got W {ws} and b {bs}.")
    if len(phi_shape) < 1 or phi_shape[-1] != ws[0]:
        raise ValueError(f"the head W {ws} expects {ws[0]} features, but body(theta_body, x) gives features of "
                         f"shape {tuple(phi_shape)} ({phi_shape[-1] if len(phi_shape) else 0} per example); make "
                         f"the head with W of shape ({phi_shape[-1] if len(phi_shape) else '?'}, d_out).")
    if y_dim is not None and ws[1] != y_dim:
        raise ValueError(f"the head gives {ws[1]} outputs (W {ws}, b {bs}) but the data has y of size {y_dim}; "
                         f"make the head with W of shape ({ws[0]}, {y_dim}) and b of shape ({y_dim},).")
    return head


def features(body, theta_body, x):
    """phi = body(theta_body, x), checked to be (T, K, features)."""
    phi = body(theta_body, x)
    if np.ndim(phi) != np.ndim(x) or np.shape(phi)[:2] != np.shape(x)[:2]:
        raise ValueError(f"body(theta_body, x) must map x {np.shape(x)} to features (T, K, features) with the "
                         f"same first two axes; got {np.shape(phi)}. Flatten the features of each example.")
    return phi


def _check_params(params, body, batch, loss, batch_finite=True):
    """Check params against the body, the head and the data; True for plain MLP parameters (lists of ndarrays).

    batch_finite=False: the batch was validated without its NaN / inf check, done here in the same
    reduction as the parameters' (the batch's own error still comes first when it is the culprit).
    """
    theta_body, head = _split(params)
    plain = maml._plain_mlp(theta_body) and maml._plain_mlp([head])  # lists of ndarrays: no tree walks
    traced = not plain and tree.is_traced(params)
    if plain:
        leaves = [a for layer in (*theta_body, head) for a in layer]
    else:
        leaves = [onp.asarray(a) for a in tree.leaves(params)] if not traced else []
    for a in leaves:
        if a.dtype.kind != "f":
            raise TypeError(f"params must hold float arrays (float32 or float64), got dtype {a.dtype}.")
    data = [] if batch_finite else [batch.x_support, batch.y_support, batch.x_query, batch.y_query]
    if (leaves or data) and not all_finite(leaves + data):
        if data:
            batch.validate()  # names the batch's array if the NaN / inf is there
        raise ValueError("params contain NaN or infinite values; re-initialise them (anil.anil_init) or lower "
                         "the learning rates.")
    if body is mlp_body:
        nets.check_mlp_params(theta_body, batch.x_support.shape[-1], where="params['body']")
    if traced:
        return False
    if body is mlp_body and len(theta_body) > 0:  # the features are the last body layer's outputs
        phi_shape = (1, 1, onp.shape(theta_body[-1][0])[-1])
    else:
        phi_shape = onp.shape(body(theta_body, batch.x_support[:1, :1]))
    check_head(head, phi_shape, batch.y_support.shape[-1] if loss is nets.mse else None)
    return plain


def _prepare(params, batch, alpha, inner_steps, body, loss, with_plain=False):
    """Checked (alpha, inner_steps, batch in the head's dtype) [and whether params are plain MLP arrays]."""
    alpha = check_alpha(alpha)
    inner_steps = check_count(inner_steps, "inner_steps")
    if not isinstance(batch, maml.TaskBatch):
        maml._check_batch(batch)  # raises the TypeError that says what a batch is
    batch = batch.validate(finite=False)  # finiteness: one reduction with the parameters' below
    plain = _check_params(params, body, batch, loss, batch_finite=False)
    head = params["head"]
    dt = head[0].dtype if plain else tree.leaves(head)[0].dtype
    if (batch.x_support.dtype != dt or batch.y_support.dtype != dt or batch.x_query.dtype != dt
            or batch.y_query.dtype != dt):
        batch = batch.astype(dt)
    return (alpha, inner_steps, batch, plain) if with_plain else (alpha, inner_steps, batch)


def _head_path(head, phi_s, y_s, alpha, steps, loss):
    """head^(0), head^(1), ..., head^(steps) per task: SGD on the support loss of the features."""
    h = tree.tile_tasks(list(head), np.shape(phi_s)[0])
    yield h
    for _ in range(steps):
        h = maml.inner_update(h, phi_s, y_s, alpha, model=lambda hd, phi: head_apply(hd, phi), loss=loss)
        yield h


def adapt_head(params, x_support, y_support, alpha=0.01, steps=1, *, body=mlp_body, loss=nets.mse):
    """The adapted head (W' (T, h, d), b' (T, d)) of every task; the body is not adapted."""
    alpha, steps, batch = _prepare(params, maml.TaskBatch(x_support, y_support, x_support, y_support), alpha,
                                   steps, body, loss)
    phi_s = features(body, params["body"], batch.x_support)
    *_, head = _head_path(params["head"], phi_s, batch.y_support, alpha, steps, loss)
    return tuple(head)


def _losses(params, batch, alpha, inner_steps, body, loss, multistep):
    phi_s = features(body, params["body"], batch.x_support)
    phi_q = features(body, params["body"], batch.x_query)
    path = list(_head_path(params["head"], phi_s, batch.y_support, alpha, inner_steps, loss))
    scored = path[1:] if multistep and inner_steps > 0 else path[-1:]
    return sum(np.mean(loss(head_apply(h, phi_q), batch.y_query)) for h in scored) / len(scored)


def anil_loss(params, batch, alpha=0.01, inner_steps=1, *, body=mlp_body, loss=nets.mse):
    """Meta-objective: mean over tasks of L_q after `inner_steps` SGD steps of the head alone."""
    alpha, inner_steps, batch = _prepare(params, batch, alpha, inner_steps, body, loss)
    return _losses(params, batch, alpha, inner_steps, body, loss, False)


def _fast(backend, params, body, loss, plain):
    """True when the hand-derived NumPy path computes this call: the MLP body, the MSE, plain arrays of one dtype."""
    if backend not in ("auto", "autograd"):
        raise ValueError(f"backend must be 'auto' or 'autograd', got {backend!r}.")
    if not (plain and backend == "auto" and body is mlp_body and loss is nets.mse):
        return False
    theta_body, head = params["body"], params["head"]
    dt = head[0].dtype
    return len(theta_body) > 0 and head[1].dtype == dt and all(W.dtype == dt and b.dtype == dt
                                                                 for W, b in theta_body)


def _common_call(params, batch, alpha, inner_steps):
    """(alpha, inner_steps) when the call is the common one, checked in one pass: an MLP body and head of plain
    float arrays of one dtype whose sizes chain, a well-formed batch in that dtype, everything finite.  None
    sends the call through ``_prepare``, whose checks say what is wrong (the same conditions, one at a time)."""
    if type(params) is not dict or len(params) != 2 or type(batch) is not maml.TaskBatch:
        return None
    theta_body, head = params.get("body"), params.get("head")
    if not (type(alpha) is float or type(alpha) is int) or not 0 <= alpha < math.inf:
        return None
    if type(inner_steps) is not int or inner_steps < 0 or not maml._plain_mlp(theta_body) or not theta_body:
        return None
    if not maml._plain_mlp([head]):
        return None
    dt = head[0].dtype
    shapes = maml._plain_batch(batch, dt)
    if shapes is None:
        return None
    n, d_out = shapes[2:]
    leaves = []
    for W, b in (*theta_body, head):
        if W.dtype != dt or b.dtype != dt or W.ndim != 2 or b.shape != (W.shape[1],) or W.shape[0] != n:
            return None
        n = W.shape[1]
        leaves += (W, b)
    if n != d_out or not all_finite(leaves + [batch.x_support, batch.y_support, batch.x_query, batch.y_query]):
        return None
    return float(alpha), inner_steps


def _value_and_grad(params, batch, alpha, inner_steps, body, loss, multistep, backend):
    if backend == "auto" and body is mlp_body and loss is nets.mse:
        common = _common_call(params, batch, alpha, inner_steps)
        if common is not None:
            return _fast_value_and_grad(params, batch, *common, multistep)
    alpha, inner_steps, batch, plain = _prepare(params, batch, alpha, inner_steps, body, loss, with_plain=True)
    if _fast(backend, params, body, loss, plain):
        return _fast_value_and_grad(params, batch, alpha, inner_steps, multistep)
    value, g = ag_value_and_grad(_losses)(params, batch, alpha, inner_steps, body, loss, multistep)
    return value, _like(params, g)


def _fast_value_and_grad(params, batch, alpha, inner_steps, multistep):
    value, (g_body, g_head) = fastpath.anil_value_and_grad(params["body"], params["head"], batch, alpha,
                                                           inner_steps, multistep)
    theta_body = params["body"]
    g = {"body": type(theta_body)([type(t)(gl) for t, gl in zip(theta_body, g_body)]), "head": g_head}
    return value, _like(params, g)


def anil_value_and_grad(params, batch, alpha=0.01, inner_steps=1, *, body=mlp_body, loss=nets.mse, backend="auto"):
    """(meta-loss, exact second-order gradient for body and head), the gradient shaped like params.

    backend: "auto" (hand-derived NumPy for mlp_body + MSE, autograd otherwise) or "autograd".
    """
    return _value_and_grad(params, batch, alpha, inner_steps, body, loss, False, backend)


def anil_multistep_value_and_grad(params, batch, alpha=0.01, inner_steps=1, *, body=mlp_body, loss=nets.mse,
                                  backend="auto"):
    """(multi-step meta-loss: mean over j = 1..m of L_q after j head steps, its exact gradient)."""
    return _value_and_grad(params, batch, alpha, inner_steps, body, loss, True, backend)


def _like(params, g):
    """The gradient in params' containers (the head stays a pair of the type it came in)."""
    return {"body": g["body"], "head": type(params["head"])(g["head"])}


def query_losses(params, batch, alpha=0.01, steps=(0, 1, 10), *, body=mlp_body, loss=nets.mse):
    """Per-task query loss after each step count in `steps` (head adapted only): (len(steps), T)."""
    steps = [check_count(s, "steps") for s in steps]
    if any(b < a for a, b in zip(steps, steps[1:])):
        raise ValueError(f"steps must be increasing, got {list(steps)}.")
    alpha, _, batch = _prepare(params, batch, alpha, 0, body, loss)
    phi_s = features(body, params["body"], batch.x_support)
    phi_q = features(body, params["body"], batch.x_query)
    out = onp.zeros((len(steps), batch.num_tasks))
    for s, h in enumerate(_head_path(params["head"], phi_s, batch.y_support, alpha, max(steps, default=0), loss)):
        for j in [j for j, sj in enumerate(steps) if sj == s]:
            out[j] = loss(head_apply(h, phi_q), batch.y_query)
    return out


def evaluate(params, task_dist, *, rng, num_tasks=600, k_shot=5, k_query=100, alpha=0.01, steps=(0, 1, 5, 10),
             body=mlp_body, loss=nets.mse, chunk=100):
    """Meta-test: adapt the head on K fresh points per task; the same tasks and summary as ``train.evaluate``."""
    _split(params)
    return _evaluation.evaluate_with(lambda b: query_losses(params, b, alpha, steps, body=body, loss=loss),
                                     params["head"], task_dist, rng=rng, num_tasks=num_tasks, k_shot=k_shot,
                                     k_query=k_query, steps=steps, chunk=chunk)
