"""Full MAML vs FOMAML vs Reptile: the three descent directions at theta, and how far apart they are.

For one inner step (worked example 3)::

    MAML     g      = mean_T (I - alpha H_s(theta))^T grad L_q(theta'_T)      exact meta-gradient
    FOMAML   g_fo   = mean_T grad L_q(theta'_T)      grad L_s held fixed: d theta'/d theta ~ I
    Reptile  g_rep  = (theta - mean_T theta'_T) / (alpha m)                    theta <- theta + eps (theta' - theta)

so g = g_fo - alpha mean_T H_s g_q: the dropped term is one Hessian-vector product per task
(``checks.check_maml_vs_fomaml_hvp`` verifies it).  ``cosine`` and ``compare_directions``
measure the angle and the norms; notebook 04 plots them along a training run.  A cosine computed on
one finite probe batch is itself noisy: ``probe_noise`` gives its baseline, the same direction on two
independent probe batches, so that a low cos(MAML, FOMAML) can be told apart from sampling noise.
"""
from __future__ import annotations

import numpy as np

from . import maml, reptile, tree
from ._validate import check_alpha, check_count

__all__ = ["cosine", "directions", "summarize", "compare_directions", "probe_noise", "plane_coordinates", "alpha_sweep"]


def cosine(a, b):
    """<a, b> / (|a| |b|) for two parameter containers (0 when either is zero)."""
    va, vb = tree.flatten(a)[0].astype(np.float64), tree.flatten(b)[0].astype(np.float64)
    na, nb = np.linalg.norm(va), np.linalg.norm(vb)
    return float(va @ vb / (na * nb)) if na > 0 and nb > 0 else 0.0


def directions(theta, batch, alpha=0.01, inner_steps=1):
    """The three descent directions at theta on one meta-batch: {"maml", "fomaml", "reptile"}.

    Each is shaped like theta.  Reptile's is (theta - mean theta') / (alpha * inner_steps), the
    scale of a gradient (with one step it is the mean support gradient at theta).
    """
    alpha = check_alpha(alpha)
    inner_steps = check_count(inner_steps, "inner_steps", 1)
    g = maml.maml_grad(theta, batch, alpha, inner_steps)
    g_fo = maml.fomaml_grad(theta, batch, alpha, inner_steps)
    d = reptile.reptile_direction(theta, batch, alpha, inner_steps)
    g_rep = tree.scale(-1.0 / (alpha * inner_steps) if alpha > 0 else -1.0, d)
    return {"maml": g, "fomaml": g_fo, "reptile": g_rep}


def summarize(d):
    """Cosines to the exact meta-gradient and the norms of the three directions d: a dict of floats.

    keys: cos_fomaml, cos_reptile (cosine with MAML's g), norm_maml, norm_fomaml, norm_reptile,
    and norm_dropped = |g - g_fo| (the second-order term FOMAML drops).
    """
    return {"cos_fomaml": cosine(d["maml"], d["fomaml"]), "cos_reptile": cosine(d["maml"], d["reptile"]),
            "norm_maml": tree.norm(d["maml"]), "norm_fomaml": tree.norm(d["fomaml"]),
            "norm_reptile": tree.norm(d["reptile"]), "norm_dropped": tree.norm(tree.sub(d["maml"], d["fomaml"]))}


def compare_directions(theta, batch, alpha=0.01, inner_steps=1):
    """summarize(directions(theta, batch, alpha, inner_steps)): cosines and norms at theta."""
    return summarize(directions(theta, batch, alpha, inner_steps))


def probe_noise(d_a, d_b):
    """The noise baseline of the cosines: directions(theta, A) and directions(theta, B) on two
    independent probe batches A, B of the same task distribution.

        cos_maml_probes   = cos(g_MAML(A), g_MAML(B))     the exact meta-gradient against itself
        cos_fomaml_probes = cos(g_MAML(A), g_FOMAML(B))   FOMAML's direction on the other batch

    If FOMAML's direction differed from MAML's by sampling noise only, cos_fomaml_probes would be
    about cos_maml_probes; a value clearly below it is the bias of the first-order approximation.
    Returns a dict of floats.
    """
    for name, d in (("d_a", d_a), ("d_b", d_b)):
        if not isinstance(d, dict) or not {"maml", "fomaml"} <= set(d):
            raise TypeError(f"{name} must be the dict that directions(theta, batch, ...) returns, got {type(d).__name__}.")
    return {"cos_maml_probes": cosine(d_a["maml"], d_b["maml"]),
            "cos_fomaml_probes": cosine(d_a["maml"], d_b["fomaml"])}


def plane_coordinates(d):
    """Coordinates of the three directions in the plane spanned by MAML's g and FOMAML's g_fo.

    Orthonormal basis: e1 = g / |g|, e2 = the part of g_fo orthogonal to e1, normalised (0 when
    g_fo is parallel to g).  Returns {"maml": (x, y), "fomaml": (x, y), "reptile": (x, y)}; each
    direction is projected onto the plane (Reptile's out-of-plane part is dropped), so
    x^2 + y^2 <= |direction|^2 with equality for MAML and FOMAML.
    """
    g = tree.flatten(d["maml"])[0].astype(np.float64)
    fo = tree.flatten(d["fomaml"])[0].astype(np.float64)
    rep = tree.flatten(d["reptile"])[0].astype(np.float64)
    e1 = g / max(np.linalg.norm(g), 1e-300)
    r = fo - (fo @ e1) * e1
    e2 = r / np.linalg.norm(r) if np.linalg.norm(r) > 1e-12 * max(np.linalg.norm(fo), 1e-300) else np.zeros_like(e1)
    return {k: (float(v @ e1), float(v @ e2)) for k, v in (("maml", g), ("fomaml", fo), ("reptile", rep))}


def alpha_sweep(theta, batch, alphas, inner_steps=1):
    """compare_directions for each alpha: dict of arrays (len(alphas),).  At alpha = 0 MAML = FOMAML."""
    rows = [compare_directions(theta, batch, float(a), inner_steps) for a in alphas]
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


