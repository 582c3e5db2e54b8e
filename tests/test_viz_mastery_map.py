"""mlcourse.viz.mastery_map: the skill map's picture is the map's DAG, and each box says its state in colour,
pattern and words, from the learner's progress database."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402

from mlcourse import viz  # noqa: E402
from mlcourse.practice.mastery import DEFAULT  # noqa: E402
from mlcourse.practice.skills import SKILLS, Skill  # noqa: E402
from mlcourse.practice.store import Progress, SkillState  # noqa: E402
from mlcourse.site.audit import alt_problems  # noqa: E402
from mlcourse.viz import _alt, _style, mastery_map  # noqa: E402

T0 = 1_700_000_000.0


@pytest.fixture(autouse=True)
def _close():
    yield
    import matplotlib.pyplot as plt
    plt.close("all")


def _boxes(fig):
    return {p.get_gid(): p for p in fig.axes[0].patches if p.get_gid() in SKILLS}


def _texts(fig):
    return {t.get_gid(): t.get_text() for t in fig.axes[0].texts if t.get_gid()}


def test_every_skill_is_one_box_and_every_arrow_points_to_a_deeper_column():
    fig = viz.skill_map()
    boxes = _boxes(fig)
    assert set(boxes) == set(SKILLS)
    d = mastery_map.depths(SKILLS)
    x = {sid: boxes[sid].get_x() for sid in SKILLS}
    for sid, s in SKILLS.items():
        assert d[sid] == (1 + max(d[p] for p in s.prerequisites) if s.prerequisites else 0)
        for p in s.prerequisites:
            assert x[p] < x[sid]                                   # left to right by depth
    assert len({round(x[s], 6) for s in SKILLS}) == max(d.values()) + 1   # one column per depth
    arrows = {p.get_gid() for p in fig.axes[0].patches if "->" in str(p.get_gid())}
    assert arrows == {f"{p}->{sid}" for sid, s in SKILLS.items() for p in s.prerequisites}
    pos = list(mastery_map.layout(SKILLS).values())
    assert len(set(pos)) == len(pos)                                # no two boxes on top of each other


def test_a_small_map_gets_one_column_per_depth():
    small = {"a": Skill("a", "a"), "b": Skill("b", "b", ("a",)), "c": Skill("c", "c", ("a", "b"))}
    assert mastery_map.depths(small) == {"a": 0, "b": 1, "c": 2}   # c's longest chain goes through b
    fig = viz.skill_map(skills=small)
    x = {p.get_gid(): p.get_x() for p in fig.axes[0].patches if p.get_gid() in small}
    assert x["a"] < x["b"] < x["c"]


def _state(sid, p, mastered, attempts, due_in_days=None):
    nxt = None if due_in_days is None else datetime.now(timezone.utc) + timedelta(days=due_in_days)
    return SkillState(sid, p, mastered, attempts, attempts, nxt, due_in_days is not None and due_in_days <= 0)


def test_each_state_has_its_own_colour_pattern_and_words():
    states = {"chain_rule": _state("chain_rule", 0.97, True, 3, 5),
              "expectation": _state("expectation", 0.4567, False, 1),
              "mse_gradient": _state("mse_gradient", 0.97, True, 4, -1),
              "sgd_step": _state("sgd_step", 0.10, False, 0)}
    fig = viz.skill_map(states)
    boxes, texts = _boxes(fig), _texts(fig)
    want = {"chain_rule": "mastered", "expectation": "in progress", "mse_gradient": "review due",
            "sgd_step": "not practised", "inner_step": "not practised"}
    for sid, kind in want.items():
        colour, hatch = mastery_map.STATES[kind]
        assert np.allclose(boxes[sid].get_facecolor()[:3], to_rgb(colour)), sid
        assert (boxes[sid].get_hatch() or "") == hatch, sid
    assert texts["expectation:state"] == "P(known) 0.46"
    assert texts["chain_rule:state"] == "mastered" and texts["mse_gradient:state"] == "review due"
    assert texts["sgd_step:state"] == "not practised" and texts["inner_step:name"] == "inner step"
    # the palette's colours, and no two states told apart by hue alone: the pattern or the fill's lightness differs
    cues = {(STATES_HATCH, round(float(np.mean(to_rgb(c))), 2)) for c, STATES_HATCH in mastery_map.STATES.values()}
    assert len(cues) == len(mastery_map.STATES)
    assert {c for c, _ in mastery_map.STATES.values()} - {"#FFFFFF"} <= set(_style.PALETTE)
    # the prerequisites of the lesson have a dashed border, the others a solid one
    for sid, s in SKILLS.items():
        assert (boxes[sid].get_linestyle() == "--") == s.diagnostic, sid


def test_the_map_reads_a_progress_database_and_says_so_in_its_alt_text(tmp_path):
    with Progress(tmp_path / "p.sqlite3") as p:
        for k in range(DEFAULT.attempts_to_mastery()):
            p.record("chain_rule", "chain_rule", k, "1", True, (), True, when=T0 + 60 * k)
        p.record("expectation", "expectation", 0, "1", True, (), True, when=T0)
        states = p.states(now=datetime.fromtimestamp(T0 + 3600, timezone.utc))
    fig = viz.skill_map(states)
    texts = _texts(fig)
    assert texts["chain_rule:state"] == "mastered"
    assert texts["expectation:state"] == f"P(known) {DEFAULT.update(DEFAULT.p_init, True):.2f}"
    alt = _alt.alt_text(fig)
    assert "Mastered: 1 (chain rule)" in alt and "In progress: 1 (expectation (0.46))" in alt
    assert f"Not practised: {len(SKILLS) - 2}." in alt
    fresh = _alt.alt_text(viz.skill_map())
    assert f"all {len(SKILLS)} are marked not practised" in fresh
    titled = _alt.alt_text(viz.skill_map(title="Your map at the end of the course"))
    assert titled.startswith("Your map at the end of the course. Skill map") and titled.endswith(fresh)
    assert alt_problems({"a": [alt], "b": [fresh], "c": [titled]}) == []
    assert len(alt.split()) >= 15


def test_states_of_skills_not_on_the_map_are_refused():
    with pytest.raises(ValueError, match="not on the map: nope"):
        viz.skill_map({"nope": _state("nope", 0.5, False, 1)})
