"""Problem generators: a fresh instance of a skill's problem from a seed (PrairieLearn's generate()).

``generate(name, seed)`` draws the instance's numbers with ``np.random.default_rng([seed, crc32(name)])``, computes
the answer with the engine, and evaluates the generator's common mistakes on the same numbers.  The
mistakes are the catalogue's (``mlcourse.grading.questions._common_mistakes``, the tuple of the graded
question the skill belongs to, applied to the instance's inputs in that question's argument order);
the prerequisite skills use ``prerequisite_mistakes``.  An instance on which a listed mistake gives the
right answer (or on which two answers cannot be told apart at the answer's tolerance) is redrawn from
the same generator, so every listed mistake can be named on every instance.

    inst = generate("meta_gradient_1d", seed=7)
    print(inst.prompt)               # Markdown + LaTeX with the instance's numbers
    v = inst.submit("-0.123")        # Verdict(correct, mistakes named, message)
    inst.give_up()                   # the worked answer; only now is inst.answer readable

An answer is right when every entry agrees to 3 significant figures: |got - ref| <= RTOL (|ref| +
0.01 max|ref|), RTOL = 5e-3 (a value rounded to 3 significant figures is off by at most 5e-3 of itself).
"""
from __future__ import annotations

import ast
import re
import zlib
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
from autograd import grad as ag_grad
import autograd.numpy as anp

from .. import checks, nets, tasks
from ..grading.questions import _common_mistakes as catalogue
from ..grading.questions import ex02, ex03, ex04, ex05, ex06, ex07, ex08
from ..grading.mistakes import Mistake
from . import prerequisite_mistakes as pre
from .skills import SKILLS

__all__ = ["Generator", "Instance", "Verdict", "GENERATORS", "generate", "generators_for", "parse_answer",
           "agree", "RTOL", "SEPARATION"]

RTOL = 5e-3          # 3 significant figures
SEPARATION = 0.05    # a listed mistake must be at least 10x the tolerance away from the answer
MAX_DRAWS = 500


def _flat(v):
    """Any value (number, array, list of (W, b), tuple) as one float vector, leaves in order."""
    if isinstance(v, (list, tuple)):
        parts = [_flat(x) for x in v]
        return np.concatenate(parts) if parts else np.zeros(0)
    return np.ravel(np.asarray(v, dtype=float))


def _err(got, ref):
    got, ref = _flat(got), _flat(ref)
    if got.shape != ref.shape:
        return np.inf
    scale = np.abs(ref) + 0.01 * np.max(np.abs(ref), initial=0.0) + 1e-12
    return float(np.max(np.abs(got - ref) / scale, initial=0.0))


def agree(got, ref, rtol=RTOL):
    """Whether got agrees with ref entry by entry to rtol (relative, with a floor of 1% of the largest entry)."""
    return _err(got, ref) <= rtol


_NUM = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?(/[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?)?$")


def _number(text):
    t = text.strip().replace("\u2212", "-")
    if not _NUM.match(t):
        raise ValueError(f"{text.strip()!r} is not a number; type a decimal such as -0.125 (or a fraction 1/8).")
    if "/" in t:
        a, b = t.split("/")
        if float(b) == 0:
            raise ValueError("division by zero in your answer.")
        return float(a) / float(b)
    return float(t)


def parse_answer(kind, text, size=1, n_options=0):
    """The learner's text as a float vector (number, vector, matrix) or an option index (choice); ValueError if unreadable."""
    text = (text or "").strip()
    if not text:
        raise ValueError("empty answer.")
    if kind == "choice":
        t = text.lower().rstrip(").")
        if len(t) == 1 and "a" <= t <= "z" and ord(t) - ord("a") < n_options:
            return ord(t) - ord("a")
        raise ValueError(f"answer with one letter, a to {chr(ord('a') + n_options - 1)}.")
    if kind == "number":
        return np.array([_number(text)])
    if text.startswith("["):
        try:
            v = np.asarray(ast.literal_eval(text), dtype=float).ravel()
        except (ValueError, SyntaxError, TypeError):
            raise ValueError("could not read that list; write the numbers separated by commas, e.g. 0.5, -1.25") from None
    else:
        v = np.array([_number(x) for x in re.split(r"[,;\s]+", text) if x])
    if v.size != size:
        raise ValueError(f"expected {size} numbers, got {v.size}.")
    return v


@dataclass(frozen=True)
class Verdict:
    correct: bool
    mistakes: tuple = ()     # names of the listed mistakes the answer matches (all of them, if several)
    message: str = ""


@dataclass(frozen=True)
class Draft:
    """What a generator's make(rng) returns: everything but the evaluation."""
    prompt: str
    kind: str                 # "number" | "vector" | "matrix" | "choice"
    inputs: tuple             # the numbers of the instance, in the mistakes' argument order
    answer: object            # the engine's answer (any container; a choice: the option index)
    shape: tuple = ()         # of the answer as typed (vector (n,), matrix (r, c))
    options: tuple = ()
    labels: str = ""          # the order in which a vector's entries are typed, e.g. "w', b'"
    to_option: object = None  # choice: value of a mistake -> option index


@dataclass(frozen=True)
class Generator:
    name: str
    skill: str
    title: str
    make: object                  # make(rng) -> Draft
    mistakes: tuple = ()          # Mistake objects listed for every instance
    hint: str = ""
    method: str = ""              # shown with the answer after giving up


class Instance:
    """One drawn problem.  The answer stays hidden (not in repr, prompt or str) until answered or given up."""

    def __init__(self, gen, seed, draft, mistake_values):
        self.generator = gen.name
        self.skill = gen.skill
        self.seed = int(seed)
        self.prompt = draft.prompt
        self.kind = draft.kind
        self.shape = draft.shape
        self.options = draft.options
        self.labels = draft.labels
        self.inputs = draft.inputs
        self.hint = gen.hint
        self.mistake_names = tuple(m.name for m, _ in mistake_values)   # the mistakes this instance can name
        self._gen = gen
        self._answer = draft.answer
        self._mistake_values = mistake_values   # ((Mistake, value), ...)
        self.finished = False                  # answered rightly or given up
        self.hint_shown = False
        self.attempts = 0

    def __repr__(self):
        return f"<practice instance {self.generator} seed={self.seed} ({self.kind})>"

    __str__ = __repr__

    @property
    def answer(self):
        if not self.finished:
            raise RuntimeError("the answer is shown only after a right answer or give_up().")
        return self._answer

    def format_answer(self):
        if not self.finished:
            raise RuntimeError("the answer is shown only after a right answer or give_up().")
        return _format(self.kind, self._answer, self.options)

    def show_hint(self):
        self.hint_shown = True
        return self.hint

    def give_up(self):
        """End the instance without credit; returns the method and the answer."""
        self.finished = True
        return f"{self._gen.method}\nAnswer: {self.format_answer()}"

    def judge(self, value):
        """Verdict for a parsed value (see parse_answer)."""
        if self.kind == "choice":
            if int(value) == int(self._answer):
                return Verdict(True, (), "right.")
            named = tuple(m.name for m, v in self._mistake_values if int(v) == int(value))
            says = [m.says for m, v in self._mistake_values if int(v) == int(value)]
        else:
            if agree(value, self._answer):
                return Verdict(True, (), "right.")
            hits = [(m, v) for m, v in self._mistake_values if agree(value, v)]
            named = tuple(m.name for m, _ in hits)
            says = [m.says for m, _ in hits]
        if not named:
            return Verdict(False, (), "not right (and not one of the common mistakes this problem knows).")
        lines = [f"not right: this looks like a common mistake ({n}): {s}" for n, s in zip(named, says)]
        return Verdict(False, named, "\n".join(lines))

    def submit(self, text):
        """Parse and judge the learner's text; a right answer finishes the instance."""
        value = parse_answer(self.kind, text, int(np.prod(self.shape)) if self.shape else 1, len(self.options))
        self.attempts += 1
        v = self.judge(value)
        if v.correct:
            self.finished = True
        return v


def _format(kind, value, options=()):
    if kind == "choice":
        return f"({chr(ord('a') + int(value))}) {options[int(value)]}"
    v = _flat(value)
    return ", ".join(f"{x:.6g}" for x in v) if v.size > 1 else f"{v[0]:.6g}"


GENERATORS = {}


def _register(name, skill, title, mistakes, hint, method):
    if skill not in SKILLS:
        raise ValueError(f"generator {name!r}: unknown skill {skill!r}.")

    def deco(make):
        GENERATORS[name] = Generator(name, skill, title, make, tuple(mistakes), hint, method)
        return make
    return deco


def generators_for(skill):
    """Names of the generators of a skill (possibly none)."""
    return [g.name for g in GENERATORS.values() if g.skill == skill]


def _values_ok(draft, gen):
    """(Mistake, value) pairs, or None when the instance must be redrawn."""
    ans = draft.answer
    if draft.kind != "choice":
        a = np.abs(_flat(ans))
        if not np.all(np.isfinite(a)) or np.any((a > 1e-10) & (a < 1e-3)):   # no answer a learner cannot type
            return None
    out = []
    for m in gen.mistakes:
        v = m.wrong_answer(*draft.inputs)
        if draft.kind == "choice":   # a mistake that leads to the right option is no mistake on this instance
            v = draft.to_option(v)
            if v is None or v == ans:
                continue
        else:
            fv = _flat(v)
            if fv.shape != _flat(ans).shape or not np.all(np.isfinite(fv)):
                return None
            if _err(v, ans) <= SEPARATION or _err(ans, v) <= SEPARATION:
                return None
        out.append((m, v))
    if draft.kind != "choice":   # two mistakes either coincide (both named) or are told apart clearly
        for i, (_, a) in enumerate(out):
            for _, b in out[i + 1:]:
                e = min(_err(a, b), _err(b, a))
                if RTOL < e <= SEPARATION or (e <= RTOL and not (agree(a, b) and agree(b, a))):
                    return None
    return tuple(out)


def generate(name, seed):
    """A fresh instance of generator `name`, reproducible from the integer seed."""
    if name not in GENERATORS:
        raise ValueError(f"no problem generator {name!r}; choose one of {', '.join(sorted(GENERATORS))}.")
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed}.")
    gen = GENERATORS[name]
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])   # one seed, unrelated numbers per generator
    for draw in range(MAX_DRAWS):
        draft = gen.make(rng)
        values = _values_ok(draft, gen)
        if values is not None:
            inst = Instance(gen, seed, draft, values)
            inst.draws = draw + 1
            return inst
    raise RuntimeError(f"generator {name!r} found no instance telling its mistakes apart in {MAX_DRAWS} draws "
                       f"(seed {seed}).")


# ---- formatting helpers --------------------------------------------------------------------------

def _grid(rng, lo, hi, step, size=None, nonzero=False):
    """Values on a grid lo, lo + step, ..., hi (so that the prompt shows them exactly)."""
    k = rng.integers(round(lo / step), round(hi / step) + 1, size=size)
    if nonzero:
        while np.any(k == 0):
            k = np.where(k == 0, rng.integers(round(lo / step), round(hi / step) + 1, size=np.shape(k)), k)
    return np.round(k * step, 10)


def _n(x):
    return f"{float(x):g}"


def _poly(terms):
    """LaTeX of sum coef * symbol with the signs written once: [(0.5, r"\\theta^2"), (-2, r"\\theta")] -> 0.5θ² - 2θ."""
    out = ""
    for coef, sym in terms:
        if coef == 0:
            continue
        sign = "-" if coef < 0 else "+"
        mag = abs(float(coef))
        body = (_n(mag) if (mag != 1 or not sym) else "") + (r"\," + sym if sym and mag != 1 else sym)
        out += (f" {sign} " if out else ("-" if sign == "-" else "")) + body
    return out or "0"


def _vec(v):
    return "(" + ", ".join(_n(x) for x in np.ravel(v)) + ")"


def _bmatrix(M):
    return r"\begin{bmatrix}" + r" \\ ".join(" & ".join(_n(x) for x in row) for row in np.asarray(M)) + r"\end{bmatrix}"


def _points(x, y):
    return ", ".join(f"$({_n(a)}, {_n(b)})$" for a, b in zip(np.ravel(x), np.ravel(y)))


ANSWER_3SF = "Give the answer to at least 3 significant figures."


# ---- the lesson's two prerequisites (diagnostic skills) -------------------------------------------

@_register("chain_rule", "chain_rule", "Differentiate a composition", pre.CHAIN_RULE,
           "Name the inner function u = g(theta) and the outer h(u) = (u - y)^2; differentiate each on its own, "
           "then multiply, evaluating h' at u = g(theta).",
           "dL/dtheta = h'(g(theta)) g'(theta) = 2 (g(theta) - y) (2 p theta + q).")
def _chain_rule(rng):
    th, p, q, y = _grid(rng, -2, 2, 0.5, nonzero=True), _grid(rng, -2, 2, 0.5, nonzero=True), \
        _grid(rng, -2, 2, 0.5, nonzero=True), _grid(rng, -2, 2, 0.5)
    f = lambda t: (p * t ** 2 + q * t - y) ** 2  # noqa: E731
    ans = float(ag_grad(f)(float(th)))
    g_tex, L_tex = _poly([(p, r"\theta^2"), (q, r"\theta")]), _poly([(1, r"g(\theta)"), (-y, "")])
    prompt = (f"Let $g(\\theta) = {g_tex}$ and $L(\\theta) = ({L_tex})^2$.\n\n"
              f"Compute $\\dfrac{{dL}}{{d\\theta}}$ at $\\theta = {_n(th)}$. {ANSWER_3SF}")
    return Draft(prompt, "number", (th, p, q, y), ans)


@_register("mse_gradient", "mse_gradient", "The gradient of a mean squared error", pre.MSE_GRADIENT,
           "Differentiate one term (theta x_i - y_i)^2 with the chain rule, then average the terms over the points.",
           "dL_s/dtheta = (2/K) sum_i (theta x_i - y_i) x_i.")
def _mse_gradient(rng):
    K = 3
    x, y, th = _grid(rng, -2, 2, 0.5, K, nonzero=True), _grid(rng, -2, 2, 0.5, K), _grid(rng, -1.5, 1.5, 0.5)
    ans = float(ag_grad(lambda t: anp.mean((t * x - y) ** 2))(float(th)))
    prompt = (f"The model $f_\\theta(x) = \\theta x$ is fitted to the support set $D_s$ = {_points(x, y)} with the "
              f"mean squared error $L_s(\\theta) = \\frac{{1}}{{K}}\\sum_i (\\theta x_i - y_i)^2$, $K = {K}$.\n\n"
              f"Compute $\\dfrac{{dL_s}}{{d\\theta}}$ at $\\theta = {_n(th)}$. {ANSWER_3SF}")
    return Draft(prompt, "number", (th, x, y), ans)


@_register("sgd_step", "sgd_step", "One SGD step", pre.SGD_STEP,
           "First the gradient of the mean squared error at theta, then one step of size alpha against it.",
           "theta' = theta - alpha (2/K) sum_i (theta x_i - y_i) x_i.")
def _sgd_step(rng):
    K = 3
    x, y, th = _grid(rng, -2, 2, 0.5, K, nonzero=True), _grid(rng, -2, 2, 0.5, K), _grid(rng, -1.5, 1.5, 0.5)
    al = float(rng.choice([0.05, 0.1, 0.2]))
    g = ag_grad(lambda t: anp.mean((t * x - y) ** 2))(float(th))
    ans = float(th - al * g)
    prompt = (f"$f_\\theta(x) = \\theta x$, support set $D_s$ = {_points(x, y)}, loss "
              f"$L_s(\\theta) = \\frac{{1}}{{K}}\\sum_i (\\theta x_i - y_i)^2$.\n\n"
              f"Starting from $\\theta = {_n(th)}$, take one gradient-descent step of size $\\alpha = {_n(al)}$. "
              f"What is $\\theta'$? {ANSWER_3SF}")
    return Draft(prompt, "number", (th, x, y, al), ans)


@_register("hessian_quadratic", "hessian_quadratic", "The Hessian of a quadratic", pre.HESSIAN,
           "The Hessian holds every second derivative d^2 L / d theta_i d theta_j; differentiate the gradient once more.",
           "H = [[2p, q], [q, 2r]] for L = p t1^2 + q t1 t2 + r t2^2 + s t1 + u t2.")
def _hessian(rng):
    p, q, r = (_grid(rng, -3, 3, 0.5, nonzero=True) for _ in range(3))
    s, u = _grid(rng, -3, 3, 1), _grid(rng, -3, 3, 1)
    L = lambda t: p * t[0] ** 2 + q * t[0] * t[1] + r * t[1] ** 2 + s * t[0] + u * t[1]  # noqa: E731
    hvp = checks.hessian_vector_product(L)
    H = np.stack([hvp(np.zeros(2), e) for e in np.eye(2)], axis=1)
    poly = _poly([(p, r"\theta_1^2"), (q, r"\theta_1\theta_2"), (r, r"\theta_2^2"), (s, r"\theta_1"),
                  (u, r"\theta_2")])
    prompt = (f"$L(\\theta_1, \\theta_2) = {poly}$.\n\nGive its Hessian $\\nabla^2 L$ (a 2 x 2 matrix), row by "
              f"row: $H_{{11}}, H_{{12}}, H_{{21}}, H_{{22}}$.")
    return Draft(prompt, "matrix", (p, q, r, s, u), H, (2, 2), labels="H11, H12, H21, H22")


@_register("expectation", "expectation", "An expectation over a distribution", pre.EXPECTATION,
           "E[a] = sum over the values of value x probability.",
           "E[a] = sum_i p_i a_i.")
def _expectation(rng):
    n = int(rng.integers(3, 5))
    v = np.unique(_grid(rng, -3, 4, 0.5, 8))[:n]
    while v.size < n:
        v = np.unique(np.append(v, _grid(rng, -3, 4, 0.5)))
    cuts = np.sort(rng.choice(np.arange(1, 20), size=n - 1, replace=False))
    p = np.round(np.diff(np.concatenate([[0], cuts, [20]])) * 0.05, 10)
    ans = float(np.sum(p * v))
    table = " | ".join(f"$P(a = {_n(a)}) = {_n(q)}$" for a, q in zip(v, p))
    prompt = f"A task's slope $a$ is drawn from this distribution: {table}.\n\nCompute $\\mathbb{{E}}[a]$. {ANSWER_3SF}"
    return Draft(prompt, "number", (v, p), ans)


# ---- notebook 01: a distribution of tasks, support vs query, N-way K-shot episodes ------------------

def _reworded(words, answer):
    """A catalogue mistake's words (name, says) with its wrong answer computed on this generator's inputs."""
    return Mistake(words[0], words[1], answer=answer)


def _by_name(mistakes, name):
    m = next(m for m in mistakes if m.name == name)
    return m.name, m.says


def _task_losses(th, xq, v):
    """Each task's query MSE of f_theta(x) = theta x against y = a x, one per slope a in v (the engine's model)."""
    x = np.broadcast_to(np.ravel(xq)[None, :, None], (len(v), np.size(xq), 1))
    return nets.mse(nets.linear_apply(float(th), x), np.asarray(v, float)[:, None, None] * x)


_TASK_DISTRIBUTION = (
    _reworded(_by_name(pre.EXPECTATION, "an unweighted mean"), lambda th, xq, v, p: float(np.mean(_task_losses(th, xq, v)))),
    _reworded(_by_name(pre.EXPECTATION, "the most likely value"),
              lambda th, xq, v, p: float(_task_losses(th, xq, v)[int(np.argmax(p))])),
    _reworded(catalogue.SUM_TASKS, lambda th, xq, v, p: float(np.sum(_task_losses(th, xq, v)))),
)


@_register("expected_task_loss", "task_distribution", "The expected loss over a distribution of tasks",
           _TASK_DISTRIBUTION,
           "Compute each task's loss at theta, then weigh it by how likely that task is under p(T) and add up.",
           "E_T[L_T(theta)] = sum_i p_i L_i(theta), L_i(theta) = mean_x (theta x - a_i x)^2 (notebook 01, section 1).")
def _expected_task_loss(rng):
    n = 3
    v = np.sort(rng.choice(np.arange(1, 7) * 0.5, size=n, replace=False))
    while True:   # a single most likely task, so that "the most likely task" means one task
        cuts = np.sort(rng.choice(np.arange(1, 10), size=n - 1, replace=False))
        p = np.round(np.diff(np.concatenate([[0], cuts, [10]])) * 0.1, 10)
        if np.sum(p == p.max()) == 1:
            break
    th = _grid(rng, -1, 2, 0.5)
    xq = _grid(rng, -2, 2, 0.5, 2, nonzero=True)
    ans = float(np.sum(p * _task_losses(th, xq, v)))
    table = ", ".join(f"$a = {_n(a)}$ with probability ${_n(q)}$" for a, q in zip(v, p))
    prompt = (f"A distribution of tasks $p(\\mathcal{{T}})$: each task is $y = a\\,x$, and its slope is {table}. "
              f"A task's loss is the mean squared error of $f_\\theta(x) = \\theta x$ on the inputs $x = {_vec(xq)}$.\n\n"
              f"At $\\theta = {_n(th)}$ (no adaptation), compute the expected loss over the distribution, "
              f"$\\mathbb{{E}}_{{\\mathcal{{T}}}}[L_\\mathcal{{T}}(\\theta)]$. {ANSWER_3SF}")
    return Draft(prompt, "number", (th, xq, v, p), ans)


# one task: a sum over tasks is no mistake here
_Q2_ONE_TASK = tuple(m for m in catalogue.Q2 if m.name != catalogue.SUM_TASKS[0])


@_register("adapt_then_score", "support_query", "Adapt on the support set, score on the query set", _Q2_ONE_TASK,
           "The inner step may only look at D_s; the adapted theta' is then scored on D_q, which adaptation never saw.",
           "theta' = theta - alpha L_s'(theta) on D_s, then L_q(theta') on D_q (notebook 01, section 3).")
def _adapt_then_score(rng):
    K = 2
    xs, xq = _grid(rng, -2, 2, 0.5, (1, K), nonzero=True), _grid(rng, -2, 2, 0.5, (1, K), nonzero=True)
    ys, yq = _grid(rng, -2, 2, 0.5, (1, K)), _grid(rng, -2, 2, 0.5, (1, K))
    th, al = _grid(rng, -1, 2, 0.5), float(rng.choice([0.1, 0.2, 0.25]))
    ans = float(ex02.ref_meta_objective(th, xs, ys, xq, yq, al))
    prompt = (f"One task of a few-shot regression problem, with the support set $D_s$ = {_points(xs[0], ys[0])} and "
              f"the query set $D_q$ = {_points(xq[0], yq[0])}. Model $f_\\theta(x) = \\theta x$, mean squared errors, "
              f"$\\theta = {_n(th)}$, one inner step of size $\\alpha = {_n(al)}$.\n\n"
              f"Compute the loss that meta-training minimises for this task: the loss of the adapted parameter "
              f"$\\theta'$ on the set that scores it. {ANSWER_3SF}")
    return Draft(prompt, "number", (th, xs, ys, xq, yq, al), ans)


def _episode_answer(n_way, k_shot, k_query, chosen, c):
    return np.array([n_way * k_shot, n_way * k_query, k_shot + k_query, list(chosen).index(c)], float)


_EPISODES = (
    _reworded(_by_name(catalogue.Q1, "K confused with the support size"),
              lambda M, n, k, q, chosen, c: np.array([k, q, k + q, list(chosen).index(c)], float)),
    _reworded(_by_name(catalogue.Q1, "support and query share examples"),
              lambda M, n, k, q, chosen, c: np.array([n * k, n * q, max(k, q), list(chosen).index(c)], float)),
    _reworded(_by_name(catalogue.Q1, "labels read globally"),
              lambda M, n, k, q, chosen, c: np.array([n * k, n * q, k + q, c], float)),
)


@_register("episode_sizes", "episodes", "An N-way K-shot episode: its sizes and labels", _EPISODES,
           "K-shot and Q queries are per class; support and query examples are distinct; an episode numbers its "
           "classes 0 ... N-1 in the order it drew them.",
           "Support N K, query N Q, K + Q distinct examples per class, label = position in the drawn order "
           "(notebook 01, section 4).")
def _episode_sizes(rng):
    M, per = int(rng.integers(12, 31)), 20      # an alphabet of M characters, each drawn by 20 people
    n, k, q = int(rng.integers(3, 7)), int(rng.integers(1, 6)), int(rng.integers(1, 6))
    pool = [np.stack([np.full(per, c, float), np.arange(per, dtype=float)], axis=1) for c in range(M)]
    xs, ys, xq, yq, chosen = tasks.sample_episode(rng, pool, n_way=n, k_shot=k, k_query=q)
    c = int(chosen[int(rng.integers(0, n))])
    rows = np.concatenate([xs[xs[:, 0] == c], xq[xq[:, 0] == c]])
    label = int(np.concatenate([ys[xs[:, 0] == c], yq[xq[:, 0] == c]])[0])
    ans = np.array([len(xs), len(xq), len(np.unique(rows[:, 1])), label], float)   # read off the engine's episode
    drawn = ", ".join(str(int(i)) for i in chosen[:-1]) + f" and {int(chosen[-1])}"
    prompt = (f"An alphabet has {M} characters, numbered 0 to {M - 1}, each drawn by {per} people. The episode "
              f"sampler builds a {n}-way {k}-shot episode ($N = {n}$, $K = {k}$) with $Q = {q}$ query examples per "
              f"class; it "
              f"drew the characters {drawn}, in this order.\n\nGive four numbers: the number of examples "
              f"in the support set, the number in the query set, how many different drawings of one character the "
              f"episode uses, and the label the episode gives to character {c}.")
    return Draft(prompt, "vector", (M, n, k, q, tuple(int(i) for i in chosen), c), ans, (4,),
                 labels="support size, query size, drawings per character, label")


# ---- notebook 02: the meta-objective, d theta'/d theta, the 1D meta-gradient ------------------------

def _linear_tasks(rng, T, K):
    a = _grid(rng, 0.5, 2.5, 0.5, T)
    xs, xq = _grid(rng, -1, 1, 0.5, (T, K), nonzero=True), _grid(rng, -1, 1, 0.5, (T, K), nonzero=True)
    return xs, a[:, None] * xs, xq, a[:, None] * xq, a


def _task_list(xs, ys, xq, yq):
    return "\n".join(f"- task {t + 1}: support {_points(xs[t], ys[t])}; query {_points(xq[t], yq[t])}"
                     for t in range(len(xs)))


@_register("meta_objective", "meta_objective", "The meta-objective's value for a small task set", catalogue.Q2,
           "For each task: one inner step on its support set, then the query MSE at theta'; average over the tasks.",
           "MetaLoss(theta) = mean_T L_q(theta'_T), theta'_T = theta - alpha L_s'(theta) on task T's support set.")
def _meta_objective(rng):
    T, K = 2, 2
    xs, ys, xq, yq, _ = _linear_tasks(rng, T, K)
    th, al = _grid(rng, -1, 2, 0.5), float(rng.choice([0.1, 0.2, 0.25]))
    ans = float(ex02.ref_meta_objective(th, xs, ys, xq, yq, al))
    prompt = (f"Model $f_\\theta(x) = \\theta x$, mean squared error, one inner step of size $\\alpha = {_n(al)}$ from "
              f"$\\theta = {_n(th)}$. Two tasks:\n\n{_task_list(xs, ys, xq, yq)}\n\n"
              f"Compute the meta-objective $\\frac{{1}}{{2}}\\sum_{{\\mathcal{{T}}}} L_q(\\theta'_\\mathcal{{T}})$. {ANSWER_3SF}")
    return Draft(prompt, "number", (th, xs, ys, xq, yq, al), ans)


class QuadraticLoss:
    """L_s(theta) = 1/2 theta^T A theta + b^T theta (autograd-differentiable)."""

    def __init__(self, A, b):
        self.A, self.b = np.asarray(A, float), np.asarray(b, float)

    def __call__(self, theta):
        return 0.5 * anp.dot(theta, anp.dot(self.A, theta)) + anp.dot(self.b, theta)

    def __repr__(self):
        return f"QuadraticLoss(A={self.A.tolist()}, b={self.b.tolist()})"


@_register("dtheta_prime", "dtheta_prime", "d theta'/d theta for a quadratic support loss", catalogue.Q3,
           "Differentiate theta' = theta - alpha grad L_s(theta) term by term; the derivative of a gradient is a Hessian.",
           "Differentiate both terms of theta' = theta - alpha grad L_s(theta) (see notebook 02, section 4).")
def _dtheta_prime(rng):
    a11, a22 = _grid(rng, -3, 3, 1, nonzero=True), _grid(rng, -3, 3, 1, nonzero=True)
    a12 = _grid(rng, -2, 2, 1, nonzero=True)
    A = np.array([[a11, a12], [a12, a22]])
    b = _grid(rng, -2, 2, 1, 2)
    th, al = _grid(rng, -1, 1, 0.5, 2), float(rng.choice([0.1, 0.2, 0.25, 0.5]))
    loss = QuadraticLoss(A, b)
    ans = ex02.ref_dtheta_prime(loss, th, al)
    prompt = (f"The support loss is $L_s(\\theta) = \\tfrac{{1}}{{2}}\\theta^\\top A \\theta + b^\\top \\theta$ with "
              f"$A = {_bmatrix(A)}$, $b = {_vec(b)}$, and one inner step $\\theta' = \\theta - \\alpha \\nabla L_s(\\theta)$ "
              f"with $\\alpha = {_n(al)}$, at $\\theta = {_vec(th)}$.\n\nGive the Jacobian $\\partial\\theta'/\\partial\\theta$ "
              f"(2 x 2), row by row.")
    return Draft(prompt, "matrix", (loss, th, al), ans, (2, 2), labels="J11, J12, J21, J22")


def _scalar_task(rng, K=2):
    om = float(rng.choice([0.5, 0.75, 1.0, 1.25, 1.5]))
    xs, xq = _grid(rng, -2, 2, 0.5, K, nonzero=True), _grid(rng, -2, 2, 0.5, K, nonzero=True)
    return xs, np.round(np.sin(om * xs), 3), xq, np.round(np.sin(om * xq), 3)


def _meta_gradient_prompt(th, xs, ys, xq, yq, al, steps):
    inner = ("one inner step $\\theta' = \\theta - \\alpha L_s'(\\theta)$" if steps == 1 else
             f"{steps} inner steps $\\theta^{{(i+1)}} = \\theta^{{(i)}} - \\alpha L_s'(\\theta^{{(i)}})$, "
             f"$\\theta' = \\theta^{{({steps})}}$")
    return (f"Model $f_\\theta(x) = \\sin(\\theta x)$ with a scalar $\\theta$, mean squared errors $L_s$ on the support "
            f"set {_points(xs, ys)} and $L_q$ on the query set {_points(xq, yq)}; {inner}, $\\alpha = {_n(al)}$.\n\n"
            f"Compute the meta-gradient $\\dfrac{{d L_q(\\theta')}}{{d\\theta}}$ at $\\theta = {_n(th)}$. {ANSWER_3SF}")


_Q4_ONE_STEP = tuple(m for m in catalogue.Q4 if m.name not in ("the curvature only at theta", "one factor for several steps"))


@_register("meta_gradient_1d", "meta_gradient_1d", "The 1D meta-gradient (worked example 1)", _Q4_ONE_STEP,
           "Chain rule: dL_q(theta')/dtheta = L_q'(theta') dtheta'/dtheta; differentiate the inner step for the second "
           "factor, and evaluate each derivative at its own point.",
           "Worked example 1 (notebook 02, section 2), with the derivatives of the sine model.")
def _meta_gradient_1d(rng):
    xs, ys, xq, yq = _scalar_task(rng)
    th, al = _grid(rng, -1, 2, 0.1), float(rng.choice([0.2, 0.3, 0.4]))   # large enough for the curvature to show
    ans = ex02.ref_meta_gradient_1d(th, xs, ys, xq, yq, al, 1)
    return Draft(_meta_gradient_prompt(th, xs, ys, xq, yq, al, 1), "number", (th, xs, ys, xq, yq, al, 1), ans)


@_register("meta_gradient_steps", "several_steps", "The 1D meta-gradient through several inner steps", catalogue.Q4,
           "d theta^(m)/d theta is a product of the m one-step derivatives, each at the point its step started from.",
           "dL_q(theta^(m))/dtheta = L_q'(theta^(m)) prod_i (1 - alpha L_s''(theta^(i))) (notebook 02, section 5).")
def _meta_gradient_steps(rng):
    xs, ys, xq, yq = _scalar_task(rng)
    th, al = _grid(rng, -1, 2, 0.1), float(rng.choice([0.1, 0.2, 0.3]))
    m = int(rng.integers(2, 4))
    ans = ex02.ref_meta_gradient_1d(th, xs, ys, xq, yq, al, m)
    return Draft(_meta_gradient_prompt(th, xs, ys, xq, yq, al, m), "number", (th, xs, ys, xq, yq, al, m), ans)


# ---- notebook 03: c, theta', the regimes, theta* ------------------------------------------------------

@_register("linear_c", "linear_c", "The step factor c for a linear task", catalogue.Q5,
           "Write theta x_i - y_i = (theta - a) x_i, differentiate the support MSE, and read off what multiplies "
           "(theta - a) in alpha times the gradient.", "Worked example 2 (notebook 03, section 1).")
def _linear_c(rng):
    K = 3
    xs = _grid(rng, -2, 2, 0.5, (1, K), nonzero=True)
    al = float(rng.choice([0.05, 0.1, 0.2, 0.25]))
    ans = float(checks.linear_c(al, xs)[0])
    prompt = (f"Tasks $y = a x$, model $f_\\theta(x) = \\theta x$, support MSE, one inner step of size "
              f"$\\alpha = {_n(al)}$. The support inputs are $x = {_vec(xs)}$.\n\nOne step is "
              f"$\\theta' = \\theta - c(\\theta - a)$. Compute $c$. {ANSWER_3SF}")
    return Draft(prompt, "number", (al, xs), np.array([ans]))


def _carried(earlier, build):
    """The earlier question's mistakes carried into a later computation (same words, same wrong function)."""
    return tuple(Mistake(m.name, m.says, answer=build(m.answer)) for m in earlier)


_Q6_LISTED = tuple(m for m in catalogue.Q6 if m.answer is not None) + _carried(
    tuple(m for m in catalogue.Q5 if m.name != "the factor 2 lost"),
    lambda c_fn: (lambda th, al, xs, a: th - c_fn(al, xs) * (th - np.asarray(a))))


@_register("linear_step", "linear_step", "theta' for a linear task", _Q6_LISTED,
           "Compute c = 2 alpha mean(x^2) first, then theta' = theta - c (theta - a).",
           "Worked example 2: theta' = (1 - c) theta + c a with c = 2 alpha mean(x^2).")
def _linear_step(rng):
    K = 3
    xs = _grid(rng, -2, 2, 0.5, (1, K), nonzero=True)
    al = float(rng.choice([0.05, 0.1, 0.2, 0.25]))
    a, th = _grid(rng, 0.5, 3, 0.5, 1), _grid(rng, -2, 2, 0.5)
    ans = checks.linear_inner_step(th, al, xs, a)
    prompt = (f"A task $y = a x$ with slope $a = {_n(a[0])}$, support inputs $x = {_vec(xs)}$, model "
              f"$f_\\theta(x) = \\theta x$, support MSE. From $\\theta = {_n(th)}$ take one inner step of size "
              f"$\\alpha = {_n(al)}$. What is $\\theta'$? {ANSWER_3SF}")
    return Draft(prompt, "number", (th, al, xs, a), ans)


_REGIMES = ("0 < c < 1: theta' lands between theta and a", "c = 1: one step lands exactly on a",
            "1 < c < 2: overshoots a, but repeated steps still converge",
            "c = 2: bounces between theta and its mirror image around a", "c > 2: every step overshoots further")


def _regime(c):
    c = Fraction(float(c)).limit_denominator(10 ** 6)
    return 0 if c < 1 else 1 if c == 1 else 2 if c < 2 else 3 if c == 2 else 4


def _regime_from_engine(c):
    words = checks.linear_regime(float(c))
    return next((i for i, key in enumerate(("0 < c < 1", "c = 1:", "1 < c < 2", "c = 2:", "c > 2")) if key in words),
                None)   # c <= 0: not one of the options


_REGIME_MISTAKES = tuple(Mistake(m.name, m.says, answer=m.answer) for m in catalogue.Q5)


@_register("step_regimes", "step_regimes", "What one step does for this c", _REGIME_MISTAKES,
           "Compute c = 2 alpha mean(x^2) and compare it with 1 and 2: theta' - a = (1 - c)(theta - a).",
           "theta' - a = (1 - c)(theta - a): the factor 1 - c decides (notebook 03, section 3).")
def _step_regimes(rng):
    K = 2
    xs = np.round(rng.choice([-2, -1.5, -1, -0.5, 0.5, 1, 1.5, 2], size=(1, K)), 10)
    al = float(rng.choice([0.1, 0.25, 0.5, 0.75, 1.0]))
    c = float(checks.linear_c(al, xs)[0])
    ans = _regime_from_engine(c)
    opts = "\n".join(f"({chr(97 + i)}) {o}" for i, o in enumerate(_REGIMES))
    prompt = (f"Tasks $y = a x$, model $f_\\theta(x) = \\theta x$, support MSE, support inputs $x = {_vec(xs)}$, "
              f"inner step size $\\alpha = {_n(al)}$. Which describes one inner step?\n\n{opts}\n\nAnswer with a letter.")
    return Draft(prompt, "choice", (al, xs), ans, options=_REGIMES,
                 to_option=lambda v: _regime_from_engine(np.ravel(v)[0]))


@_register("theta_star_mean", "best_initialisation", "theta* = E[a] for a slope distribution (practice, hard)",
           pre.THETA_STAR,
           "Differentiate J(theta) = E[(theta - a)^2] and set the derivative to zero.",
           "dJ/dtheta = 2 (theta - E[a]) = 0 gives theta* = E[a].")
def _theta_star_mean(rng):
    n = int(rng.integers(4, 7))
    slopes = np.sort(_grid(rng, 0.5, 3, 0.5, n))
    ans = checks.best_initialisation(slopes)
    prompt = (f"Tasks $y = a x$ have slopes $a$ drawn uniformly from the list $[{', '.join(_n(s) for s in slopes)}]$ "
              f"(each entry equally likely). Before adaptation, which $\\theta$ minimises "
              f"$\\mathbb{{E}}[(\\theta - a)^2]$? {ANSWER_3SF}")
    return Draft(prompt, "number", (slopes,), ans)


@_register("best_initialisation", "best_initialisation", "The best initialisation when c varies with the task",
           catalogue.Q7,
           "After one step, a task's query loss is (1 - c_T)^2 mean(x_q^2) (theta - a_T)^2: minimise the mean of these "
           "weighted squares over theta.", "theta* = sum_T w_T a_T / sum_T w_T (notebook 03, section 4).")
def _best_initialisation(rng):
    T, K = 3, 2
    a = _grid(rng, 0.5, 2.5, 0.5, T)
    xs, xq = _grid(rng, -1.5, 1.5, 0.5, (T, K), nonzero=True), _grid(rng, -1.5, 1.5, 0.5, (T, K), nonzero=True)
    al = float(rng.choice([0.1, 0.2, 0.3]))
    ans = ex03.ref_best_initialisation(al, xs, xq, a)
    rows = "\n".join(f"- task {t + 1}: slope $a = {_n(a[t])}$, support inputs ${_vec(xs[t])}$, query inputs "
                     f"${_vec(xq[t])}$" for t in range(T))
    prompt = (f"Model $f_\\theta(x) = \\theta x$, noiseless tasks $y = a x$, MSE, one inner step of size "
              f"$\\alpha = {_n(al)}$:\n\n{rows}\n\nWhich $\\theta$ minimises the MAML loss (the mean over the tasks of "
              f"the query loss after the step)? {ANSWER_3SF}")
    return Draft(prompt, "number", (al, xs, xq, a), ans)


# ---- notebooks 04-05: a linear model f(x) = w x + b (an MLP without hidden layer) ------------------

def _line(rng, T, K):
    th = [(_grid(rng, -1, 1, 0.5, (1, 1)), _grid(rng, -1, 1, 0.5, (1,)))]
    xs, xq = _grid(rng, -2, 2, 0.5, (T, K, 1), nonzero=True), _grid(rng, -2, 2, 0.5, (T, K, 1), nonzero=True)
    ys, yq = _grid(rng, -2, 2, 0.5, (T, K, 1)), _grid(rng, -2, 2, 0.5, (T, K, 1))
    return th, xs, ys, xq, yq


def _line_prompt(th, xs, ys, xq=None, yq=None):
    (W, b), = th
    rows = []
    for t in range(len(xs)):
        r = f"- task {t + 1}: support {_points(xs[t], ys[t])}"
        if xq is not None:
            r += f"; query {_points(xq[t], yq[t])}"
        rows.append(r)
    return (f"Model $f_\\theta(x) = w x + b$ with $\\theta = (w, b) = ({_n(W[0, 0])}, {_n(b[0])})$, mean squared "
            f"errors.\n\n" + "\n".join(rows))


@_register("inner_step", "inner_step", "One inner step theta' = theta - alpha grad L_s(theta)", catalogue.Q8,
           "grad L_s = (2/K) sum_i (w x_i + b - y_i) (x_i, 1); step against it.",
           "theta' = theta - alpha grad L_s(theta) (notebook 02, section 1).")
def _inner_step(rng):
    th, xs, ys, _, _ = _line(rng, 1, 3)
    al = float(rng.choice([0.05, 0.1, 0.2]))
    ans = ex04.ref_inner_update(th, xs[0], ys[0], al)
    prompt = _line_prompt(th, xs, ys) + (f"\n\nTake one inner step of size $\\alpha = {_n(al)}$ on the support set. "
                                         f"Give $w', b'$. {ANSWER_3SF}")
    return Draft(prompt, "vector", (th, xs[0], ys[0], al), ans, (2,), labels="w', b'")


_META_ASK = ("\n\nOne inner step of size $\\alpha = {al}$ per task; the meta-objective is the mean over the two tasks "
             "of $L_q(\\theta')$. ")


@_register("maml_gradient", "maml_gradient", "The exact MAML meta-gradient for a line", catalogue.Q23,
           "Per task: theta', then grad L_q(theta'), then multiply by (I - alpha H_s); average over the tasks.",
           "grad = mean_T (I - alpha H_s)^T grad L_q(theta'_T) (worked example 3, notebook 04).")
def _maml_gradient(rng):
    th, xs, ys, xq, yq = _line(rng, 2, 2)
    al = float(rng.choice([0.05, 0.1, 0.2]))
    ans = ex04.ref_maml_meta_gradient(th, xs, ys, xq, yq, al, 1)
    prompt = _line_prompt(th, xs, ys, xq, yq) + _META_ASK.format(al=_n(al)) + (
        f"Give the exact (second-order) meta-gradient with respect to $(w, b)$. {ANSWER_3SF}")
    return Draft(prompt, "vector", (th, xs, ys, xq, yq, al, 1), ans, (2,), labels="d/dw, d/db")


_Q10_LISTED = tuple(m for m in catalogue.Q10 if m.answer is not None)


@_register("fomaml", "fomaml", "FOMAML's direction for a line", _Q10_LISTED,
           "Per task: theta', then grad L_q at theta' itself (d theta'/d theta ~ I); average over the tasks.",
           "FOMAML: mean_T grad L_q(theta'_T) (notebook 04, section 1).")
def _fomaml(rng):
    th, xs, ys, xq, yq = _line(rng, 2, 2)
    al = float(rng.choice([0.05, 0.1, 0.2]))
    ans = ex04.ref_fomaml_grad(th, xs, ys, xq, yq, al, 1)
    prompt = _line_prompt(th, xs, ys, xq, yq) + _META_ASK.format(al=_n(al)) + (
        f"Give FOMAML's meta-gradient with respect to $(w, b)$. {ANSWER_3SF}")
    return Draft(prompt, "vector", (th, xs, ys, xq, yq, al, 1), ans, (2,), labels="d/dw, d/db")


# for a line the support Hessian does not depend on theta, so "the Hessian at the wrong point" is no mistake here
_Q24_LISTED = tuple(m for m in catalogue.Q24 if m.answer is not None and m.name != "the Hessian at the wrong point")


@_register("maml_minus_fomaml", "maml_minus_fomaml", "MAML - FOMAML for one step", _Q24_LISTED,
           "MAML - FOMAML = -alpha mean_T H_s grad L_q(theta'_T); for a line H_s = (2/K) sum_i (x_i, 1)(x_i, 1)^T.",
           "MAML - FOMAML = -alpha mean_T H_s(theta) grad L_q(theta'_T) (notebook 04, section 3).")
def _maml_minus_fomaml(rng):
    th, xs, ys, xq, yq = _line(rng, 2, 2)
    al = float(rng.choice([0.05, 0.1, 0.2]))
    ans = ex04.ref_maml_minus_fomaml(th, xs, ys, xq, yq, al)
    prompt = _line_prompt(th, xs, ys, xq, yq) + _META_ASK.format(al=_n(al)) + (
        f"Give the exact meta-gradient minus FOMAML's, with respect to $(w, b)$. {ANSWER_3SF}")
    return Draft(prompt, "vector", (th, xs, ys, xq, yq, al), ans, (2,), labels="d/dw, d/db")


@_register("reptile_step", "reptile", "A Reptile step", catalogue.Q11,
           "Per task one inner step to theta'_T; then move theta a fraction epsilon toward the mean of the theta'_T.",
           "theta <- theta + epsilon (mean_T theta'_T - theta) (notebook 04, section 4).")
def _reptile_step(rng):
    th, xs, ys, _, _ = _line(rng, 2, 2)
    al = float(rng.choice([0.05, 0.1, 0.2]))
    eps = float(rng.choice([0.1, 0.25, 0.5]))
    ans = ex05.ref_reptile_update(th, xs, ys, al, 1, eps)
    prompt = _line_prompt(th, xs, ys) + (f"\n\nOne Reptile update: one inner step of size $\\alpha = {_n(al)}$ per task, "
                                         f"interpolation $\\epsilon = {_n(eps)}$. Give the new $w, b$. {ANSWER_3SF}")
    return Draft(prompt, "vector", (th, xs, ys, al, 1, eps), ans, (2,), labels="w, b")


@_register("adaptation_curve", "meta_training", "The meta-test curve: query loss after 0, 1 and 2 steps",
           catalogue.Q12,
           "Adapt on the support set step by step from theta; after 0, 1 and 2 steps score the adapted line on the "
           "query set.", "Meta-test: adapt on D_s, score on D_q after each number of steps (notebook 05, section 3).")
def _adaptation_curve(rng):
    th, xs, ys, xq, yq = _line(rng, 1, 2)
    al = float(rng.choice([0.05, 0.1, 0.2]))
    ans = ex05.ref_adaptation_curve(th, xs, ys, xq, yq, al, (0, 1, 2))
    prompt = _line_prompt(th, xs, ys, xq, yq) + (f"\n\nMeta-test on this task with inner steps of size "
                                                 f"$\\alpha = {_n(al)}$: give the query loss after 0, 1 and 2 steps. "
                                                 f"{ANSWER_3SF}")
    return Draft(prompt, "vector", (th, xs, ys, xq, yq, al, (0, 1, 2)), ans, (3,), labels="after 0, 1, 2 steps")


@_register("anil_head_step", "metasgd_anil", "ANIL: one step of the head on fixed features", catalogue.Q19,
           "Only the head W, b moves: the gradient of the mean over the K examples and d outputs of (phi W + b - y)^2.",
           "W' = W - alpha (2 / K d) phi^T (phi W + b - y), b' likewise (notebook 07, section 4).")
def _anil_head_step(rng):
    phi = _grid(rng, -1, 2, 0.5, (2, 2))
    W, b = _grid(rng, -1, 1, 0.5, (2, 2)), _grid(rng, -1, 1, 0.5, (2,))
    y = _grid(rng, -2, 2, 0.5, (2, 2))
    al = float(rng.choice([0.1, 0.2, 0.25]))
    ans = ex07.ref_anil_head_step(W, b, phi, y, al)
    prompt = (f"ANIL adapts only the head $f(\\phi) = \\phi W + b$ (2 features, 2 outputs) on fixed features. "
              f"Support features (rows) $\\Phi = {_bmatrix(phi)}$, targets $Y = {_bmatrix(y)}$, head "
              f"$W = {_bmatrix(W)}$, $b = {_vec(b)}$, mean squared error over the examples and the outputs, step "
              f"$\\alpha = {_n(al)}$.\n\nGive $W'$ row by row, then $b'$ (6 numbers). {ANSWER_3SF}")
    return Draft(prompt, "vector", (W, b, phi, y, al), ans, (6,), labels="W'11, W'12, W'21, W'22, b'1, b'2")


@_register("reinforce_loss", "maml_rl", "The REINFORCE surrogate of one task", catalogue.Q21,
           "Multiply log-probability by advantage at every step that happened (mask 1), sum, divide by the number "
           "of such steps, and put a minus in front.",
           "loss = -(1 / sum mask) sum mask log pi A (notebook 08, section 2).")
def _reinforce_loss(rng):
    T = 3
    lengths = rng.permutation([int(rng.integers(1, T)), T])
    mask = (np.arange(T)[None, :] < lengths[:, None]).astype(float)[None]       # (1 task, 2 trajectories, T)
    lp = _grid(rng, -2, -0.5, 0.5, (1, 2, T))
    adv = _grid(rng, -1.5, 1.5, 0.5, (1, 2, T), nonzero=True)
    ans = ex08.ref_reinforce_loss(lp, adv, mask)
    rows = "\n".join(f"- trajectory {n + 1} ({int(lengths[n])} of {T} steps happened): "
                      f"$\\log\\pi = {_vec(lp[0, n])}$, $A = {_vec(adv[0, n])}$, mask ${_vec(mask[0, n])}$"
                      for n in range(2))
    prompt = (f"One task, two trajectories of at most {T} steps (entries after an episode's end are left-over "
              f"numbers):\n\n{rows}\n\nCompute the REINFORCE surrogate loss the inner step descends. {ANSWER_3SF}")
    return Draft(prompt, "number", (lp, adv, mask), ans)


# ---- notebook 06: prototypes and ProtoNet logits ----------------------------------------------------------

@_register("prototypes", "prototypes", "Class prototypes from a support set", catalogue.Q13,
           "Select the rows of each class by their label and average them.",
           "c_k = mean of the support embeddings with label k (notebook 06, section 2).")
def _prototypes(rng):
    n, k = 3, 2
    ys = rng.permutation(np.repeat(np.arange(n), k))
    zs = _grid(rng, -3, 3, 1, (n * k, 2))
    ans = ex06.ref_prototypes(zs, ys, n)
    rows = ", ".join(f"$z = {_vec(z)}$ (class {int(y)})" for z, y in zip(zs, ys))
    prompt = (f"A 3-way 2-shot support set, embedded in 2 dimensions: {rows}.\n\nGive the prototypes $c_0, c_1, c_2$ "
              f"as a 3 x 2 matrix, row by row.")
    return Draft(prompt, "matrix", (zs, ys, n), ans, (3, 2), labels="c0 (2 numbers), c1, c2")


@_register("protonet_logits", "protonet_logits", "ProtoNet logits", catalogue.Q14,
           "The logit of query q for class k is minus the squared Euclidean distance between z_q and c_k.",
           "logit_{qk} = -||z_q - c_k||^2 (notebook 06, section 2).")
def _protonet_logits(rng):
    zq = _grid(rng, -2, 2, 0.5, (2, 2))
    c = _grid(rng, -2, 2, 0.5, (3, 2))
    ans = ex06.ref_logits(zq, c)
    prompt = (f"Prototypes $c_0 = {_vec(c[0])}$, $c_1 = {_vec(c[1])}$, $c_2 = {_vec(c[2])}$; queries "
              f"$z_1 = {_vec(zq[0])}$, $z_2 = {_vec(zq[1])}$.\n\nGive the ProtoNet logits as a 2 x 3 matrix (one row per "
              f"query, one column per class), row by row.")
    return Draft(prompt, "matrix", (zq, c), ans, (2, 3), labels="row 1 (3 numbers), row 2")


# ---- notebook 06: the convolutional embedding --------------------------------------------------------

def _at(out, pix):
    """The entries of a conv output (1, H, W, 1) at the pixels (row, column) of pix."""
    out = np.asarray(out, float)
    return np.array([out[0, r, c, 0] for r, c in pix])


_CONV = tuple(Mistake(m.name, m.says, answer=(lambda x, W, pix, f=m.answer: _at(f(x, W), pix)))
              for m in catalogue.Q16 if m.answer is not None)   # 'valid' changes the shape: no pixel to compare


@_register("conv_same", "conv_embedding", "A 3x3 'same' convolution at three pixels", _CONV,
           "Pad the image with one ring of zeros; the output at (i, j) multiplies the 3 x 3 patch of the padded "
           "image whose top-left corner is (i, j) entry by entry with the kernel, as written, and adds up.",
           "out[i, j] = sum_{a, b} W[a, b] x_pad[i + a, j + b], x_pad = x with a ring of zeros (notebook 06, "
           "section 2).")
def _conv_same(rng):
    H = 4
    img = _grid(rng, -1, 2, 1, (H, H))
    K = _grid(rng, -1, 1, 1, (3, 3))
    x, W = img[None, :, :, None], K[:, :, None, None]
    corner = (int(rng.choice([0, H - 1])), int(rng.choice([0, H - 1])))
    edge = (0, int(rng.integers(1, H - 1))) if rng.random() < 0.5 else (int(rng.integers(1, H - 1)), H - 1)
    inner = (int(rng.integers(1, H - 1)), int(rng.integers(1, H - 1)))
    pix = (corner, edge, inner)
    ans = _at(ex06.ref_conv(x, W), pix)
    where = ", ".join(f"(row {r + 1}, column {c + 1})" for r, c in pix)
    prompt = (f"One channel in, one channel out: the image $x = {_bmatrix(img)}$ and the kernel "
              f"$W = {_bmatrix(K)}$. The layer is a 3 x 3 convolution with 'same' zero padding, as the course's "
              f"convolutional embedding computes it (the output has the image's size).\n\nGive the output at "
              f"{where} (row 1, column 1 is the top-left pixel).")
    return Draft(prompt, "vector", (x, W, pix), ans, (3,), labels="the three outputs, in the order asked")


# ---- notebook 07: meta-overfitting -------------------------------------------------------------------

_GAP = tuple(Mistake(m.name, m.says, answer=(lambda tr, te, f=m.answer: np.asarray(f(tr, te), float)[2:]))
             for m in catalogue.Q18)


@_register("meta_gap", "meta_overfitting", "The meta-train / meta-test gap and its 95% interval", _GAP,
           "Gap = mean meta-test loss - mean meta-train loss; each mean has a squared standard error s^2 / n with the "
           "sample variance s^2, and for independent means these add.",
           "gap = mean(test) - mean(train), half-width = 1.96 sqrt(s_train^2 / n_train + s_test^2 / n_test) "
           "(notebook 07, section 1).")
def _meta_gap(rng):
    n1, n2 = int(rng.integers(4, 6)), int(rng.integers(4, 6))
    tr = _grid(rng, 0.1, 0.9, 0.1, n1)
    te = _grid(rng, 0.5, 2.0, 0.1, n2)
    ans = ex07.ref_meta_gap(tr, te)[2:]
    prompt = (f"After meta-training, the post-adaptation query losses on the {n1} meta-training tasks are "
              f"${_vec(tr)}$ and on {n2} new (meta-test) tasks ${_vec(te)}$.\n\nGive the generalisation gap across "
              f"tasks (meta-test mean minus meta-train mean), then the half-width of its 95% confidence interval "
              f"(normal approximation, sample variances). {ANSWER_3SF}")
    return Draft(prompt, "vector", (tr, te), ans, (2,), labels="gap, half-width")


# ---- notebook 08: returns-to-go ---------------------------------------------------------------------------

@_register("returns_to_go", "returns_to_go", "Discounted returns-to-go", catalogue.Q20,
           "Work backwards: R_{T-1} = r_{T-1}, then R_t = r_t + gamma R_{t+1}.",
           "R_t = sum_{t' >= t} gamma^(t' - t) r_t' (notebook 08, section 2).")
def _returns_to_go(rng):
    r = _grid(rng, -1, 3, 1, (1, 4))
    g = float(rng.choice([0.5, 0.8, 0.9]))
    ans = ex08.ref_returns_to_go(r, g)
    prompt = (f"An episode of 4 steps collects rewards $r = {_vec(r)}$; discount $\\gamma = {_n(g)}$.\n\nGive the "
              f"returns-to-go $R_0, R_1, R_2, R_3$. {ANSWER_3SF}")
    return Draft(prompt, "vector", (r, g), ans, (4,), labels="R0, R1, R2, R3")
