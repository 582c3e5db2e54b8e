"""The skill map (a DAG covering the lesson) and the mastery model (Bayesian Knowledge Tracing)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from mlcourse.practice import problems, skills
from mlcourse.practice.mastery import BKT, DEFAULT, MASTERY
from mlcourse.practice.session import Session
from mlcourse.practice.store import Progress

ROOT = Path(__file__).resolve().parents[1]


# ---- the skill map --------------------------------------------------------------------------------

def test_skill_map_is_a_dag_of_20_to_30_skills_in_topological_order():
    assert 20 <= len(skills.SKILLS) <= 30
    order = skills.topological_order()
    assert sorted(order) == sorted(skills.SKILLS)
    pos = {s: i for i, s in enumerate(order)}
    for s in skills.SKILLS.values():
        assert all(pos[p] < pos[s.id] for p in s.prerequisites)


def test_a_cycle_or_an_unknown_prerequisite_is_refused():
    a = skills.Skill("a", "a", ("b",))
    b = skills.Skill("b", "b", ("a",))
    with pytest.raises(ValueError, match="cycle"):
        skills.check_acyclic({"a": a, "b": b})
    with pytest.raises(ValueError, match="unknown prerequisite"):
        skills.check_acyclic({"a": a})


def test_every_graded_question_exercises_a_skill_and_the_prerequisites_are_diagnostic():
    from mlcourse.grading import bank
    qids = set(bank.QUESTIONS)
    covered = {q for s in skills.SKILLS.values() for q in s.questions}
    assert covered == qids
    diag = {s.id for s in skills.SKILLS.values() if s.diagnostic}
    assert {"chain_rule", "mse_gradient", "sgd_step", "hessian_quadratic", "expectation"} <= diag
    assert all(skills.SKILLS[s].learn for s in diag)


def _headings(nb):
    import json
    cells = json.loads(nb.read_text())["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]


def test_every_section_named_exists_in_its_notebook():
    nbs = {p.name[:2]: p for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    for s in skills.SKILLS.values():
        assert s.sections, s.id
        for sec in s.sections:
            nb, k = re.fullmatch(r"(\d\d) §(\d+)", sec).groups()
            text = "\n".join(_headings(nbs[nb]))
            assert re.search(rf"^## {k}(\.| ·)", text, re.M), (s.id, sec)


def test_every_generator_belongs_to_a_skill_of_the_map():
    assert {g.skill for g in problems.GENERATORS.values()} <= set(skills.SKILLS)


# ---- the mastery model ----------------------------------------------------------------------------

def test_update_follows_the_equations():
    b = BKT(p_init=0.1, p_learn=0.1, p_slip=0.1, p_guess=0.15)
    # right: 0.1 * 0.9 / (0.09 + 0.9 * 0.15) = 0.4, then 0.4 + 0.6 * 0.1
    assert b.update(0.1, True) == pytest.approx(0.46, abs=1e-15)
    # wrong: 0.1 * 0.1 / (0.01 + 0.9 * 0.85) = 0.01 / 0.775, then + (1 - that) * 0.1
    post = 0.01 / 0.775
    assert b.update(0.1, False) == pytest.approx(post + (1 - post) * 0.1, abs=1e-15)
    rng = np.random.default_rng(0)
    for _ in range(200):   # the posterior is Bayes' rule on the joint of (known, observation)
        p, s, g, t = rng.uniform(0.01, 0.99), rng.uniform(0, 0.4), rng.uniform(0, 0.4), rng.uniform(0, 1)
        m = BKT(p, t, s, g)
        joint = {(True, True): p * (1 - s), (True, False): p * s, (False, True): (1 - p) * g,
                 (False, False): (1 - p) * (1 - g)}
        for obs in (True, False):
            post = joint[(True, obs)] / (joint[(True, obs)] + joint[(False, obs)])
            assert m.update(p, obs) == pytest.approx(post + (1 - post) * t, rel=1e-12)


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="p_slip"):
        BKT(p_slip=1.2)
    with pytest.raises(ValueError, match="p_slip \\+ p_guess"):
        BKT(p_slip=0.6, p_guess=0.5)


def test_three_right_first_attempts_reach_mastery():
    tr = DEFAULT.trace([True] * 3)
    assert tr[1] < MASTERY <= tr[2]
    assert DEFAULT.attempts_to_mastery() == 3


def test_a_learner_who_always_makes_one_mistake_never_reaches_mastery(tmp_path):
    with Progress(tmp_path / "p.sqlite3") as progress:
        session = Session(progress, seed=1)
        levels = []
        for _ in range(40):
            inst = session.new_instance("linear_c")
            m, value = inst._mistake_values[0]          # always "the factor 2 lost"
            v = session.submit(inst, f"{float(np.ravel(value)[0]):.5g}")
            assert m.name in v.mistakes and not v.correct
            levels.append(session.p_known("linear_c"))
        assert max(levels) < MASTERY
        assert levels[-1] == pytest.approx(DEFAULT.fixed_point_wrong(), abs=1e-9)
        assert not progress.states()["linear_c"].mastered


def _exact_mastery_probability(q, n, bkt=DEFAULT):
    """P(mastered at some attempt <= n) for a learner right with probability q: the model's own prediction."""
    alive, reached = {round(bkt.p_init, 12): 1.0}, 0.0
    for _ in range(n):
        nxt = {}
        for p, w in alive.items():
            for right, pr in ((True, q), (False, 1 - q)):
                p2 = bkt.update(p, right)
                if p2 >= MASTERY:
                    reached += w * pr
                else:
                    key = round(p2, 12)
                    nxt[key] = nxt.get(key, 0.0) + w * pr
        alive = nxt
    return reached


@pytest.mark.parametrize("q", [0.95, 0.6, 0.3, 0.1])
def test_simulated_learners_reach_mastery_as_the_model_predicts(q):
    n, learners = 15, 2000
    rng = np.random.default_rng(int(q * 100))
    hits = 0
    for _ in range(learners):
        p = DEFAULT.p_init
        for right in rng.random(n) < q:
            p = DEFAULT.update(p, bool(right))
            if p >= MASTERY:
                hits += 1
                break
    predicted = _exact_mastery_probability(q, n)
    sigma = np.sqrt(max(predicted * (1 - predicted), 1e-4) / learners)
    assert abs(hits / learners - predicted) <= 4 * sigma + 1e-3, (q, hits / learners, predicted)
    if q >= 0.9:
        assert predicted > 0.99
    if q <= 0.1:
        assert predicted < 0.02


def test_the_numbers_docs_practice_quotes_come_from_the_model():
    text = (ROOT / "docs" / "practice.md").read_text()
    for name in ("p_init", "p_learn", "p_slip", "p_guess"):
        m = re.search(rf"^\| {name} \| ([0-9.]+) \|", text, re.M)
        assert m and float(m.group(1)) == getattr(DEFAULT, name), name
    path = [f"{p:.2f}" for p in [DEFAULT.p_init] + DEFAULT.trace([True] * DEFAULT.attempts_to_mastery())]
    assert f"three right first attempts in a row reach mastery ({' → '.join(path)})" in " ".join(text.split())
    assert f"settles near {DEFAULT.fixed_point_wrong():.2f}" in text
    assert "P(known) ≥ 0.95" in text and MASTERY == 0.95
    from mlcourse.practice import skills as sk
    assert {g.skill for g in problems.GENERATORS.values()} == set(sk.SKILLS)
    assert "Every skill has at least one generator" in text
    assert f"{len(sk.SKILLS)} skills named in the lesson's words" in text
