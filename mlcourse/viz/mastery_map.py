"""The skill map as a picture: the skills' DAG laid out by depth, each skill coloured by its mastery state.

A skill's depth is the length of its longest chain of prerequisites (the lesson's two prerequisites and
the other skills without any sit in the first column); an arrow runs from each prerequisite to the skill
that needs it.  Each box says its state twice, in colour (the course's Okabe & Ito palette) and again in
a pattern and in words, so that a greyscale print or a colour-blind reader loses nothing:

    not practised   white, no pattern            "not practised"
    in progress     orange, diagonal hatching    "P(known) 0.46"
    mastered        bluish green, no pattern     "mastered"
    review due      vermillion, cross-hatching   "review due"

The lesson's prerequisites (the diagnostic skills of notebook 00) have a dashed border.
"""
from __future__ import annotations

from ._alt import describe
from ._style import PALETTE

__all__ = ["skill_map", "state_of", "depths", "layout", "STATES"]

# state -> (fill colour, hatch pattern, words on the box are made by _words)
STATES = {
    "not practised": ("#FFFFFF", ""),
    "in progress": (PALETTE[1], "///"),     # orange
    "mastered": (PALETTE[2], ""),           # bluish green
    "review due": (PALETTE[3], "xxx"),      # vermillion
}
BOX_W, BOX_H, COL_W, ROW_H = 1.8, 0.8, 2.1, 0.95
SCALE = 0.62   # inches per unit: the figure fits a notebook's width without being shrunk


def state_of(s):
    """The picture's state of one SkillState (None: not practised)."""
    if s is None or (s.attempts == 0 and not s.mastered and not s.due):
        return "not practised"
    if s.due:
        return "review due"
    if s.mastered:
        return "mastered"
    return "in progress"


def _words(state, s):
    if state == "in progress":
        return f"P(known) {s.p_known:.2f}"
    return state


def depths(skills):
    """{skill id: length of its longest chain of prerequisites} (0 for a skill without prerequisites)."""
    out = {}

    def depth(sid):
        if sid not in out:
            pre = skills[sid].prerequisites
            out[sid] = 1 + max(depth(p) for p in pre) if pre else 0
        return out[sid]
    for sid in skills:
        depth(sid)
    return out


def layout(skills):
    """{skill id: (x, y)}: one column per depth, left to right; within a column, skills ordered by the mean
    height of their prerequisites (fewer crossing arrows), the skill map's order breaking ties."""
    d = depths(skills)
    order = {sid: i for i, sid in enumerate(skills)}
    columns = {}
    for sid in skills:
        columns.setdefault(d[sid], []).append(sid)
    pos = {}
    for depth in sorted(columns):
        col = columns[depth]
        if depth:
            col.sort(key=lambda sid: (sum(pos[p][1] for p in skills[sid].prerequisites)
                                      / len(skills[sid].prerequisites), order[sid]))
        for i, sid in enumerate(col):
            pos[sid] = (depth * COL_W, -(i - (len(col) - 1) / 2) * ROW_H)
    return pos


def _short(sid, width=0):
    """The id in words; width > 0: broken into lines of at most that many characters."""
    words = sid.replace("_", " ")
    if not width:
        return words
    import textwrap
    return "\n".join(textwrap.wrap(words, width))


def skill_map(states=None, skills=None, title=None):
    """The skill map coloured by mastery.

    states: {skill id: SkillState} as ``Progress().states()`` gives them (None: nothing practised yet);
    skills: the skill map (default ``mlcourse.practice.skills.SKILLS``); title: the figure's title (it also opens
    the text alternative).  Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch

    if skills is None:
        from ..practice.skills import SKILLS as skills
    states = states or {}
    unknown = sorted(set(states) - set(skills))
    if unknown:
        raise ValueError(f"states for skills that are not on the map: {', '.join(unknown)}; pass the states of "
                         "Progress().states() (or None for a learner who has practised nothing).")
    pos = layout(skills)
    kinds = {sid: state_of(states.get(sid)) for sid in skills}
    xs, ys = [p[0] for p in pos.values()], [p[1] for p in pos.values()]
    width = max(xs) - min(xs) + BOX_W + 0.4
    height = max(ys) - min(ys) + BOX_H + 0.4
    fig, ax = plt.subplots(figsize=(SCALE * width, SCALE * height + 1.2))
    for sid, s in skills.items():                                          # arrows under the boxes
        x1, y1 = pos[sid]
        for p in s.prerequisites:
            x0, y0 = pos[p]
            ax.add_patch(FancyArrowPatch((x0 + BOX_W / 2, y0), (x1 - BOX_W / 2, y1), arrowstyle="-|>",
                                         mutation_scale=8, color="#7F7F7F", lw=0.7, zorder=1,
                                         shrinkA=0, shrinkB=1, gid=f"{p}->{sid}"))
    for sid, s in skills.items():
        x, y = pos[sid]
        kind = kinds[sid]
        fill, hatch = STATES[kind]
        box = FancyBboxPatch((x - BOX_W / 2, y - BOX_H / 2), BOX_W, BOX_H, boxstyle="round,pad=0,rounding_size=0.08",
                             facecolor=fill, edgecolor="black", hatch=hatch, lw=1.6 if s.diagnostic else 1.0,
                             linestyle="--" if s.diagnostic else "-", zorder=2, gid=sid)
        ax.add_patch(box)
        label = {"boxstyle": "round,pad=0.12", "facecolor": "white", "edgecolor": "none", "alpha": 0.9}
        ax.text(x, y + 0.13, _short(sid, 15), ha="center", va="center", fontsize=8, zorder=3, bbox=label,
                gid=f"{sid}:name", linespacing=1.0)
        ax.text(x, y - 0.25, _words(kind, states.get(sid)), ha="center", va="center", fontsize=7.5, zorder=3,
                style="italic", bbox=label, gid=f"{sid}:state")
    handles = [Patch(facecolor=STATES[k][0], hatch=STATES[k][1], edgecolor="black",
                     label=k + (" (P(known) shown)" if k == "in progress" else
                                " (P(known) ≥ 0.95)" if k == "mastered" else ""))
               for k in STATES]
    handles.append(Patch(facecolor="white", edgecolor="black", linestyle="--", lw=1.6,
                         label="prerequisite of the lesson (notebook 00's diagnostic)"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, fontsize=8, frameon=False)
    ax.set_xlim(min(xs) - BOX_W / 2 - 0.2, max(xs) + BOX_W / 2 + 0.2)
    ax.set_ylim(min(ys) - BOX_H / 2 - 0.2, max(ys) + BOX_H / 2 + 0.2)
    ax.set_axis_off()
    ax.set_title(title or "The course's skills: each arrow runs from a prerequisite to a skill that builds on it",
                 fontsize=10)
    fig.tight_layout()
    return describe(fig, (f"{title}. " if title else "") + _alt(skills, kinds, states, depths(skills)))


def _alt(skills, kinds, states, d):
    n = len(skills)
    groups = {k: [sid for sid in skills if kinds[sid] == k] for k in STATES}
    first = [sid for sid in skills if d[sid] == 0]
    parts = [f"Skill map of the course's {n} skills as a graph laid out left to right by depth, from the "
             f"{len(first)} skills without prerequisites ({', '.join(_short(s) for s in first)}) to the deepest "
             f"({', '.join(_short(s) for s in skills if d[s] == max(d.values()))}); arrows run from each prerequisite "
             f"to the skills that need it, and each box is coloured, patterned and labelled by its state."]
    if len(groups["not practised"]) == n:
        parts.append(f"No skill has been practised yet: all {n} are marked not practised.")
    else:
        for k in ("mastered", "review due", "in progress"):
            if groups[k]:
                names = ", ".join(_short(s) + (f" ({states[s].p_known:.2f})" if k == "in progress" else "")
                                  for s in groups[k])
                parts.append(f"{k.capitalize()}: {len(groups[k])} ({names}).")
        parts.append(f"Not practised: {len(groups['not practised'])}.")
    return " ".join(parts)
