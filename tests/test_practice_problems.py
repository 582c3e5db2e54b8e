"""Every problem generator: 1000 seeds give well-formed instances whose answer agrees with an independent
computation (finite differences, closed forms written here in plain NumPy or exact fractions, never the
engine function the generator calls), and every listed mistake, typed back on 100 instances, is named."""
from __future__ import annotations

import statistics
from fractions import Fraction

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad as ag_grad

from mlcourse.practice import problems
from mlcourse.practice.problems import GENERATORS, generate

SEEDS = 1000
MISTAKE_SEEDS = 100
RTOL_CLOSED = 1e-9    # closed forms and exact fractions
RTOL_FD = 1e-6        # central finite differences (step 1e-5 on smooth functions of O(1) numbers)


def _close(got, ref, rtol):
    got, ref = np.ravel(np.asarray(got, float)), np.ravel(np.asarray(ref, float))
    scale = max(1.0, float(np.max(np.abs(ref), initial=0.0)))
    return got.shape == ref.shape and bool(np.all(np.abs(got - ref) <= rtol * scale))


def _fd(f, x, h=1e-5):
    return (f(x + h) - f(x - h)) / (2 * h)


def _line_grad(w, b, x, y):
    """grad of mean (w x + b - y)^2 over the points, in closed form."""
    r = w * x + b - y
    return np.array([2 * np.mean(r * x), 2 * np.mean(r)])


def _line_hessian(x):
    return 2 * np.array([[np.mean(x * x), np.mean(x)], [np.mean(x), 1.0]])


def _wb(theta):
    (W, b), = theta
    return float(np.ravel(W)[0]), float(np.ravel(b)[0])


# ---- independent answers, one per generator -------------------------------------------------------

def ind_chain_rule(th, p, q, y):
    return _fd(lambda t: (p * t * t + q * t - y) ** 2, float(th)), RTOL_FD


def ind_mse_gradient(th, x, y):
    return _fd(lambda t: np.mean((t * x - y) ** 2), float(th)), RTOL_FD


def ind_sgd_step(th, x, y, al):
    return th - al * _fd(lambda t: np.mean((t * x - y) ** 2), float(th)), RTOL_FD


def ind_hessian_quadratic(p, q, r, s, u):
    L = lambda t1, t2: p * t1 ** 2 + q * t1 * t2 + r * t2 ** 2 + s * t1 + u * t2  # noqa: E731
    h, t1, t2 = 1e-3, 0.3, -0.7   # second differences are exact for a quadratic up to rounding
    H11 = (L(t1 + h, t2) - 2 * L(t1, t2) + L(t1 - h, t2)) / h ** 2
    H22 = (L(t1, t2 + h) - 2 * L(t1, t2) + L(t1, t2 - h)) / h ** 2
    H12 = (L(t1 + h, t2 + h) - L(t1 + h, t2 - h) - L(t1 - h, t2 + h) + L(t1 - h, t2 - h)) / (4 * h * h)
    return np.array([[H11, H12], [H12, H22]]), 1e-5


def ind_expectation(v, p):
    return float(sum(Fraction(float(a)) * Fraction(float(q)).limit_denominator(1000) for a, q in zip(v, p))), RTOL_CLOSED


def _meta_loss_linear(th, xs, ys, xq, yq, al):
    out = []
    for t in range(len(xs)):
        tp = th - al * 2 * np.mean((th * xs[t] - ys[t]) * xs[t])
        out.append(np.mean((tp * xq[t] - yq[t]) ** 2))
    return float(np.mean(out))


def ind_meta_objective(th, xs, ys, xq, yq, al):
    return _meta_loss_linear(th, xs, ys, xq, yq, al), RTOL_CLOSED


def ind_dtheta_prime(loss, th, al):
    return np.eye(2) - al * loss.A, RTOL_CLOSED


def _sine_meta(th, xs, ys, xq, yq, al, m):
    """autograd through the m steps written out here by hand (L_s' of the sine model derived on paper), not the
    engine's product formula; central differences alone are too coarse where L_q(theta^(m)) curves sharply."""
    def dLs(t):
        return anp.mean(2 * (anp.sin(t * xs) - ys) * anp.cos(t * xs) * xs)

    def f(t):
        for _ in range(m):
            t = t - al * dLs(t)
        return anp.mean((anp.sin(t * xq) - yq) ** 2)
    exact = float(ag_grad(f)(float(th)))
    assert abs(_fd(f, float(th), 1e-6) - exact) <= 1e-3 * max(1.0, abs(exact))   # and roughly by differences
    return exact


def ind_meta_gradient_1d(th, xs, ys, xq, yq, al, m):
    return _sine_meta(th, xs, ys, xq, yq, al, m), RTOL_CLOSED


ind_meta_gradient_steps = ind_meta_gradient_1d


def ind_linear_c(al, xs):
    return float(Fraction(al) * 2 * sum(Fraction(float(x)) ** 2 for x in np.ravel(xs)) / np.size(xs)), RTOL_CLOSED


def ind_linear_step(th, al, xs, a):
    x = np.ravel(xs)
    return th - al * 2 * np.mean((th * x - a[0] * x) * x), RTOL_CLOSED


def ind_step_regimes(al, xs):
    c = Fraction(al).limit_denominator(100) * 2 * sum(Fraction(float(x)) ** 2 for x in np.ravel(xs)) / np.size(xs)
    return (0 if c < 1 else 1 if c == 1 else 2 if c < 2 else 3 if c == 2 else 4), 0


def _argmin_quadratic(J):
    """Minimiser of a quadratic J from three values (exact for a quadratic)."""
    j0, j1, jm = J(0.0), J(1.0), J(-1.0)
    a, b = (j1 + jm - 2 * j0) / 2, (j1 - jm) / 2
    return -b / (2 * a)


def ind_theta_star_mean(slopes):
    return _argmin_quadratic(lambda t: np.mean((t - slopes) ** 2)), RTOL_CLOSED


def ind_best_initialisation(al, xs, xq, a):
    ys, yq = a[:, None] * xs, a[:, None] * xq
    return _argmin_quadratic(lambda t: _meta_loss_linear(t, xs, ys, xq, yq, al)), 1e-8


def ind_inner_step(th, xs, ys, al):
    w, b = _wb(th)
    return np.array([w, b]) - al * _line_grad(w, b, np.ravel(xs), np.ravel(ys)), RTOL_CLOSED


def _line_theta_prime(w, b, x, y, al):
    return np.array([w, b]) - al * _line_grad(w, b, x, y)


def _line_meta_loss(wb, xs, ys, xq, yq, al):
    out = []
    for t in range(len(xs)):
        tp = _line_theta_prime(wb[0], wb[1], np.ravel(xs[t]), np.ravel(ys[t]), al)
        out.append(np.mean((tp[0] * np.ravel(xq[t]) + tp[1] - np.ravel(yq[t])) ** 2))
    return float(np.mean(out))


def ind_maml_gradient(th, xs, ys, xq, yq, al, m):
    w, b = _wb(th)
    f = lambda v: _line_meta_loss(v, xs, ys, xq, yq, al)  # noqa: E731
    e = np.eye(2) * 1e-5
    return np.array([(f(np.array([w, b]) + e[i]) - f(np.array([w, b]) - e[i])) / 2e-5 for i in range(2)]), RTOL_FD


def _fomaml(th, xs, ys, xq, yq, al):
    w, b = _wb(th)
    gs = []
    for t in range(len(xs)):
        tp = _line_theta_prime(w, b, np.ravel(xs[t]), np.ravel(ys[t]), al)
        gs.append(_line_grad(tp[0], tp[1], np.ravel(xq[t]), np.ravel(yq[t])))
    return np.mean(gs, axis=0)


def ind_fomaml(th, xs, ys, xq, yq, al, m):
    return _fomaml(th, xs, ys, xq, yq, al), RTOL_CLOSED


def ind_maml_minus_fomaml(th, xs, ys, xq, yq, al):
    w, b = _wb(th)
    terms = []
    for t in range(len(xs)):
        tp = _line_theta_prime(w, b, np.ravel(xs[t]), np.ravel(ys[t]), al)
        terms.append(-al * _line_hessian(np.ravel(xs[t])) @ _line_grad(tp[0], tp[1], np.ravel(xq[t]), np.ravel(yq[t])))
    return np.mean(terms, axis=0), RTOL_CLOSED


def ind_reptile_step(th, xs, ys, al, m, eps):
    w, b = _wb(th)
    tps = [_line_theta_prime(w, b, np.ravel(xs[t]), np.ravel(ys[t]), al) for t in range(len(xs))]
    return np.array([w, b]) + eps * (np.mean(tps, axis=0) - np.array([w, b])), RTOL_CLOSED


def ind_adaptation_curve(th, xs, ys, xq, yq, al, steps):
    wb, out = np.array(_wb(th)), []
    x, y, xq_, yq_ = (np.ravel(a[0]) for a in (xs, ys, xq, yq))
    for k in range(max(steps) + 1):
        if k in steps:
            out.append(np.mean((wb[0] * xq_ + wb[1] - yq_) ** 2))
        wb = wb - al * _line_grad(wb[0], wb[1], x, y)
    return np.array(out), RTOL_CLOSED


def ind_anil_head_step(W, b, phi, y, al):
    K, d = y.shape
    gW, gb = np.zeros_like(W, dtype=float), np.zeros(d)
    for k in range(K):
        for j in range(d):
            r = sum(phi[k, i] * W[i, j] for i in range(phi.shape[1])) + b[j] - y[k, j]
            gb[j] += 2 * r / (K * d)
            for i in range(phi.shape[1]):
                gW[i, j] += 2 * r * phi[k, i] / (K * d)
    return np.concatenate([np.ravel(W - al * gW), b - al * gb]), RTOL_CLOSED


def ind_reinforce_loss(lp, adv, mask):
    total, steps = 0.0, 0
    for n in range(lp.shape[1]):
        for t in range(lp.shape[2]):
            if mask[0, n, t]:
                total += lp[0, n, t] * adv[0, n, t]
                steps += 1
    return -total / steps, RTOL_CLOSED


def ind_prototypes(zs, ys, n):
    out = np.zeros((n, zs.shape[1]))
    for k in range(n):
        rows = [zs[i] for i in range(len(ys)) if ys[i] == k]
        out[k] = sum(rows) / len(rows)
    return out, RTOL_CLOSED


def ind_protonet_logits(zq, c):
    return np.array([[-sum((zq[i, d] - c[k, d]) ** 2 for d in range(zq.shape[1])) for k in range(len(c))]
                     for i in range(len(zq))]), RTOL_CLOSED


def ind_returns_to_go(r, g):
    r = np.ravel(np.asarray(r, float))
    out, acc = np.zeros_like(r), 0.0
    for t in reversed(range(len(r))):
        acc = r[t] + g * acc
        out[t] = acc
    return out, RTOL_CLOSED


def ind_expected_task_loss(th, xq, v, p):
    mean_x2 = sum(Fraction(float(x)) ** 2 for x in np.ravel(xq)) / np.size(xq)
    return float(sum(Fraction(float(q)).limit_denominator(100) * (Fraction(float(th)) - Fraction(float(a))) ** 2
                     for a, q in zip(v, p)) * mean_x2), RTOL_CLOSED


def ind_adapt_then_score(th, xs, ys, xq, yq, al):
    return _meta_loss_linear(th, xs, ys, xq, yq, al), RTOL_CLOSED


def ind_episode_sizes(M, n, k, q, chosen, c):
    assert len(set(chosen)) == n and all(0 <= i < M for i in chosen)
    return np.array([n * k, n * q, k + q, chosen.index(c)]), 0


def ind_conv_same(x, W, pix):
    img, K = x[0, :, :, 0], W[:, :, 0, 0]
    H, Wd = img.shape
    out = []
    for i, j in pix:   # cross-correlation with zeros outside the image
        out.append(sum(K[a, b] * img[i + a - 1, j + b - 1] for a in range(3) for b in range(3)
                       if 0 <= i + a - 1 < H and 0 <= j + b - 1 < Wd))
    return np.array(out), RTOL_CLOSED


def ind_meta_gap(tr, te):
    tr, te = [float(a) for a in tr], [float(a) for a in te]
    se2 = statistics.variance(tr) / len(tr) + statistics.variance(te) / len(te)
    return np.array([statistics.fmean(te) - statistics.fmean(tr), 1.96 * se2 ** 0.5]), RTOL_CLOSED


INDEPENDENT = {name[4:]: fn for name, fn in globals().items() if name.startswith("ind_")}


def test_every_generator_has_an_independent_computation():
    assert set(INDEPENDENT) == set(GENERATORS)


def test_every_skill_has_a_generator():
    from mlcourse.practice.skills import SKILLS
    assert [s for s in SKILLS if not problems.generators_for(s)] == []


def test_the_lessons_examples_and_practice_problems_have_generators():
    need = {"meta_objective", "dtheta_prime", "meta_gradient_1d", "linear_c", "linear_step", "theta_star_mean",
            "maml_minus_fomaml", "reptile_step", "protonet_logits", "returns_to_go", "chain_rule", "mse_gradient",
            "sgd_step", "hessian_quadratic", "expectation"}
    assert need <= set(GENERATORS)


def _typed(value, digits=4):
    """What a learner types for a value: every entry to `digits` significant figures, comma-separated."""
    return ", ".join(f"{x:.{digits}g}" for x in problems._flat(value))


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_generator_instances_are_well_formed_and_right(name):
    fn = INDEPENDENT[name]
    for seed in range(SEEDS):
        inst = generate(name, seed)
        assert inst.kind in ("number", "vector", "matrix", "choice")
        assert inst.skill == GENERATORS[name].skill and inst.prompt.strip() and "$" in inst.prompt
        with pytest.raises(RuntimeError):
            inst.answer                                   # hidden before an answer or giving up
        assert repr(inst) == str(inst) == f"<practice instance {name} seed={seed} ({inst.kind})>"
        inst.give_up()
        ans = inst.answer
        if inst.kind != "choice":
            flat = np.ravel(np.asarray(problems._flat(ans)))
            assert flat.size == (int(np.prod(inst.shape)) if inst.shape else 1)
            long = [f"{x:.6g}" for x in flat if len(f"{x:.6g}".strip("-0.")) >= 5]
            assert not any(t in inst.prompt for t in long), (name, seed)
        expected, rtol = fn(*inst.inputs)
        if inst.kind == "choice":
            assert int(ans) == expected, (name, seed)
        else:
            assert _close(problems._flat(ans), expected, rtol), (name, seed, ans, expected)
        if seed < 20:                                     # reproducible from the seed
            again = generate(name, seed)
            assert again.prompt == inst.prompt and again.inputs is not inst.inputs


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_right_answers_typed_to_3_or_more_figures_pass(name):
    for seed in range(MISTAKE_SEEDS):
        inst = generate(name, seed)
        expected, _ = INDEPENDENT[name](*inst.inputs)
        if inst.kind == "choice":
            v = inst.submit("abcde"[expected])
        else:
            v = inst.submit(_typed(np.round(expected, 9), 3 if seed % 2 else 6))   # finite-difference noise at 0 removed
        assert v.correct and not v.mistakes, (name, seed, v)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_every_listed_mistake_is_named(name):
    gen = GENERATORS[name]
    seen = set()
    for seed in range(MISTAKE_SEEDS):
        inst = generate(name, seed)
        for m, value in inst._mistake_values:
            seen.add(m.name)
            typed = "abcde"[int(value)] if inst.kind == "choice" else _typed(value)
            v = problems.parse_answer(inst.kind, typed, int(np.prod(inst.shape)) if inst.shape else 1,
                                      len(inst.options))
            verdict = inst.judge(v)
            assert not verdict.correct and m.name in verdict.mistakes, (name, seed, m.name, verdict)
            assert m.says in verdict.message
        if inst.kind != "choice":   # every listed mistake is evaluated on every instance
            assert [m.name for m, _ in inst._mistake_values] == [m.name for m in gen.mistakes]
    assert seen == {m.name for m in gen.mistakes}, (name, {m.name for m in gen.mistakes} - seen)


def test_mistakes_come_from_the_catalogue():
    from mlcourse.grading.questions import _common_mistakes as catalogue
    from mlcourse.practice import prerequisite_mistakes as pre
    words = {(m.name, m.says) for tup in catalogue.MISTAKES.values() for m in tup}
    words |= {(m.name, m.says) for tup in (pre.CHAIN_RULE, pre.MSE_GRADIENT, pre.SGD_STEP, pre.HESSIAN,
                                           pre.EXPECTATION, pre.THETA_STAR) for m in tup}
    for gen in GENERATORS.values():
        for m in gen.mistakes:
            assert (m.name, m.says) in words, (gen.name, m.name)


def test_unreadable_answers_raise_a_clear_error():
    inst = generate("returns_to_go", 0)
    with pytest.raises(ValueError, match="expected 4 numbers"):
        inst.submit("1, 2")
    with pytest.raises(ValueError, match="not a number"):
        generate("chain_rule", 0).submit("two")
    with pytest.raises(ValueError, match="no problem generator"):
        generate("nope", 0)
