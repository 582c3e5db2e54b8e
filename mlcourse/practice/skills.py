"""The skill map: the lesson's skills as data, each with its prerequisites, where it is taught and graded.

``SKILLS`` maps a skill's id to a ``Skill``: its name in the lesson's words, the ids of the skills it
builds on (a DAG, checked acyclic when this module is imported), the notebook sections that teach
it (``"02 §2"`` is section 2 of notebooks/02_*), and the graded questions that exercise it (a pass
of ``check("qN")`` is evidence for each of its skills).  The two prerequisites the lesson names (deep
learning, stochastic gradient descent) enter as diagnostic skills, each with where to learn it.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Skill", "SKILLS", "topological_order", "skills_for_question", "check_acyclic", "home_notebook",
           "notebook_skills", "notebook_prerequisites", "notebook_id"]

DEEP_LEARNING = "a deep-learning course's chapter on backpropagation (the chain rule through a network)"
SGD = "a chapter on stochastic gradient descent (gradients of a mean loss, one update step)"


@dataclass(frozen=True)
class Skill:
    id: str
    name: str                    # the lesson's words
    prerequisites: tuple = ()    # ids of the skills this one builds on
    sections: tuple = ()         # notebook sections that teach it, "NN §k"
    questions: tuple = ()        # graded questions (q1 ... q31) that exercise it
    diagnostic: bool = False     # a prerequisite of the lesson, checked by notebook 00's diagnostic
    learn: str = ""              # for a diagnostic skill: where to learn it (outside this course)


_S = Skill
SKILLS = {s.id: s for s in (
    # the lesson's two prerequisites (deep learning, SGD), as diagnostic skills
    _S("chain_rule", "the chain rule", (), ("02 §2",), (), True, DEEP_LEARNING),
    _S("mse_gradient", "the gradient of an MSE loss", ("chain_rule",), ("03 §1",), (), True, SGD),
    _S("sgd_step", "one SGD step", ("mse_gradient",), ("02 §1",), (), True, SGD),
    _S("hessian_quadratic", "the Hessian of a quadratic", ("mse_gradient",), ("02 §4",), (), True, DEEP_LEARNING),
    _S("expectation", "an expectation over a distribution", (), ("03 §4",), (), True,
       "a probability primer (expected value of a discrete random variable)"),
    # what meta-learning is (notebook 01)
    _S("task_distribution", "a distribution of tasks p(T)", ("expectation",), ("01 §1", "01 §2", "01 §6"), ("q1",)),
    _S("support_query", "support set vs query set", ("task_distribution",), ("01 §3",), ("q1",)),
    _S("episodes", "N-way K-shot episodes and episodic training", ("support_query",), ("01 §4", "01 §5"), ("q1",)),
    # the inner and outer loop (notebook 02)
    _S("inner_step", "the inner step theta' = theta - alpha grad L_s(theta)", ("sgd_step", "support_query"),
       ("02 §1",), ("q8",)),
    _S("meta_objective", "the meta-objective E_T[L_q(theta')]", ("inner_step", "expectation"), ("02 §1",),
       ("q2", "q9")),
    _S("dtheta_prime", "d theta'/d theta = I - alpha Hessian of L_s", ("inner_step", "chain_rule", "hessian_quadratic"),
       ("02 §2", "02 §4"), ("q3",)),
    _S("meta_gradient_1d", "the 1D meta-gradient L_q'(theta') (1 - alpha L_s''(theta))",
       ("dtheta_prime", "meta_objective"), ("02 §2", "02 §3"), ("q4",)),
    _S("several_steps", "the meta-gradient through several inner steps", ("meta_gradient_1d",), ("02 §5",), ("q4",)),
    # geometry of a good initialisation (notebook 03)
    _S("linear_c", "the step factor c = 2 alpha mean(x^2)", ("inner_step", "mse_gradient"), ("03 §1",), ("q5",)),
    _S("linear_step", "theta' = (1 - c) theta + c a", ("linear_c",), ("03 §1", "03 §2"), ("q6",)),
    _S("step_regimes", "what one step does for c < 1, 1 < c < 2 and c >= 2", ("linear_step",), ("03 §3",), ("q6",)),
    _S("best_initialisation", "the best initialisation theta* (E[a] when c is shared)", ("linear_step", "expectation"),
       ("03 §4", "03 §5"), ("q7",)),
    # MAML, FOMAML, Reptile (notebooks 04, 05)
    _S("maml_gradient", "the exact MAML meta-gradient (I - alpha H)^T grad L_q(theta')",
       ("dtheta_prime", "meta_objective"), ("04 §1", "04 §3"), ("q9", "q23")),
    _S("fomaml", "first-order MAML: d theta'/d theta ~ I", ("maml_gradient",), ("04 §1",), ("q10",)),
    _S("maml_minus_fomaml", "MAML - FOMAML = -alpha H grad L_q(theta') by Hessian-vector products",
       ("fomaml", "hessian_quadratic"), ("04 §2", "04 §3", "04 §6"), ("q24",)),
    _S("reptile", "Reptile: theta <- theta + epsilon (theta' - theta)", ("inner_step",), ("04 §4", "04 §5"),
       ("q11", "q25")),
    _S("meta_training", "the meta-training loop and the meta-test procedure", ("maml_gradient", "reptile"),
       ("05 §2", "05 §3", "05 §4"), ("q12", "q26", "q27", "q28", "q29")),
    # few-shot classification (notebook 06)
    _S("prototypes", "class prototypes: the mean support embedding", ("episodes",), ("06 §2",), ("q13",)),
    _S("protonet_logits", "ProtoNet logits -||z - c_k||^2 and their loss", ("prototypes",), ("06 §2", "06 §5"),
       ("q14", "q15", "q30", "q31")),
    _S("conv_embedding", "the convolutional embedding (3x3 'same' convolutions)", ("episodes",), ("06 §2",),
       ("q16",)),
    # meta-overfitting and variants (notebook 07)
    _S("meta_overfitting", "within-task vs across-task overfitting (meta-overfitting)", ("meta_training",),
       ("07 §0", "07 §1", "07 §2"), ("q18",)),
    _S("metasgd_anil", "Meta-SGD (learned alpha) and ANIL (adapt only the head)", ("maml_gradient",),
       ("07 §3", "07 §4"), ("q17", "q19")),
    # MAML for RL (notebook 08)
    _S("returns_to_go", "returns-to-go R_t = sum gamma^(t'-t) r_t'", ("expectation",), ("08 §2",), ("q20", "q22")),
    _S("maml_rl", "the policy-gradient inner loop (REINFORCE with a baseline)", ("returns_to_go", "inner_step"),
       ("08 §2", "08 §3"), ("q21", "q22")),
)}


def check_acyclic(skills):
    """Raise ValueError unless every prerequisite exists and the prerequisites form a DAG; return a topological order."""
    for s in skills.values():
        for p in s.prerequisites:
            if p not in skills:
                raise ValueError(f"skill {s.id!r}: unknown prerequisite {p!r}.")
    order, state = [], {}

    def visit(sid, path):
        if state.get(sid) == "done":
            return
        if state.get(sid) == "open":
            raise ValueError(f"the skill map has a cycle: {' -> '.join(path + [sid])}.")
        state[sid] = "open"
        for p in skills[sid].prerequisites:
            visit(p, path + [sid])
        state[sid] = "done"
        order.append(sid)
    for sid in skills:
        visit(sid, [])
    return order


_ORDER = tuple(check_acyclic(SKILLS))   # checked at import


def topological_order():
    """Skill ids, every prerequisite before the skills that need it (the map's own order otherwise)."""
    return _ORDER


def skills_for_question(qid):
    """Ids of the skills a graded question exercises."""
    return tuple(s.id for s in SKILLS.values() if qid in s.questions)


# ---- gates: what a notebook builds on ---------------------------------------------------------------
# A skill's home is the notebook that first teaches it (its earliest section); a diagnostic skill's home is
# notebook 00, whose diagnostic checks the lesson's prerequisites before the course starts.  A notebook's
# gate lists the direct prerequisites of the skills at home in it that are at home in an earlier notebook.

def notebook_id(notebook):
    """"02" from 2, "2", "02" or a file name such as "02_meta_gradient_1d.ipynb"; ValueError otherwise."""
    text = str(notebook).rsplit("/", 1)[-1]
    head = text.split("_", 1)[0].split(".", 1)[0]
    if not head.isdigit() or not 0 <= int(head) <= 99:
        raise ValueError(f"a notebook is named by its number, e.g. gate(\"02\") or gate(2), got {notebook!r}.")
    return f"{int(head):02d}"


def home_notebook(skill):
    """The notebook ("00".."08") where a skill is first taught ("00" for the lesson's prerequisites)."""
    s = SKILLS[skill]
    if s.diagnostic or not s.sections:
        return "00"
    return min(sec.split()[0] for sec in s.sections)


def notebook_skills(notebook):
    """Ids of the skills at home in a notebook, in the map's topological order."""
    nb = notebook_id(notebook)
    return tuple(s for s in _ORDER if home_notebook(s) == nb)


def notebook_prerequisites(notebook):
    """Ids of the skills a notebook builds on: direct prerequisites of its own skills, taught earlier."""
    nb = notebook_id(notebook)
    own = notebook_skills(nb)
    needed = {p for s in own for p in SKILLS[s].prerequisites if home_notebook(p) < nb}
    return tuple(s for s in _ORDER if s in needed)
