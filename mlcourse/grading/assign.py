"""Instructor tools: solutions -> exercises, executing notebooks, validating the question bank.

A solution notebook holds each answer between ``### BEGIN SOLUTION`` and ``### END SOLUTION``
lines; the learner version replaces each block with ``# YOUR CODE HERE`` and
``raise NotImplementedError()`` at the same indentation.  Everything else is copied.
"""
from __future__ import annotations

import copy
import os
import re

from ._nb import nbformat

from . import bank

PROGRESS_ENV = "MLCOURSE_PROGRESS"   # mlcourse.practice.store.ENV (not imported: no fsrs needed here)

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = "# YOUR CODE HERE\n{indent}raise NotImplementedError()"
KERNEL = {"display_name": "Python 3", "language": "python", "name": "python3"}


def strip_solution(source):
    """Source with every solution block replaced by the stub; ValueError for unbalanced markers."""
    out, inside, indent = [], False, ""
    for n, line in enumerate(source.split("\n"), 1):
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise ValueError(f"line {n}: {BEGIN} inside another solution block; close the first with {END}.")
            inside, indent = True, line[: len(line) - len(line.lstrip())]
            out.append(indent + STUB.format(indent=indent))
        elif stripped == END:
            if not inside:
                raise ValueError(f"line {n}: {END} without a matching {BEGIN}.")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"a {BEGIN} block is never closed; add a {END} line.")
    return "\n".join(out)


def make_exercise(solution_nb):
    """The learner version of a solution notebook (a new notebook; outputs cleared)."""
    nb = copy.deepcopy(solution_nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = strip_solution(cell.source)
            cell.outputs, cell.execution_count = [], None
        tags = [t for t in cell.metadata.get("tags", []) if t != "raises-exception"]
        if tags:
            cell.metadata["tags"] = tags
        else:
            cell.metadata.pop("tags", None)
    return nb


def clean_metadata(nb):
    """Drop what changes from run to run or machine to machine (timings, versions, widget state)."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = coalesce_streams(cell.outputs)
        cell.metadata.pop("execution", None)
        cell.metadata.pop("collapsed", None)
        cell.pop("id", None)
    for key in ("widgets", "language_info"):
        nb.metadata.pop(key, None)
    nb.metadata["kernelspec"] = dict(KERNEL)
    nb.nbformat, nb.nbformat_minor = 4, 4
    return nb


def coalesce_streams(outputs):
    """Merge consecutive stdout (or stderr) outputs: how a print is split into messages is timing."""
    merged = []
    for o in outputs:
        if (o.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream"
                and merged[-1].get("name") == o.get("name")):
            merged[-1]["text"] += o["text"]
        else:
            merged.append(o)
    return merged


def execute(nb, cwd, timeout=120, expect_not_implemented=False):
    """Run nb in a fresh kernel (nbclient).  Cells raising NotImplementedError are tagged
    ``raises-exception`` when expected; any other error raises RuntimeError naming the cell."""
    import tempfile
    from nbclient import NotebookClient
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": cwd}})
    # the kernel's check() calls record progress: into a throwaway database, never the instructor's own
    with tempfile.TemporaryDirectory() as tmp:
        saved = os.environ.get(PROGRESS_ENV)
        os.environ[PROGRESS_ENV] = os.path.join(tmp, "progress.sqlite3")
        try:
            client.execute()
        finally:
            if saved is None:
                os.environ.pop(PROGRESS_ENV, None)
            else:
                os.environ[PROGRESS_ENV] = saved
    for n, cell in enumerate(nb.cells, 1):
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.outputs if o.get("output_type") == "error"]
        if not errors:
            continue
        if expect_not_implemented and errors[0].get("ename") == "NotImplementedError":
            cell.metadata.setdefault("tags", [])
            if "raises-exception" not in cell.metadata["tags"]:
                cell.metadata["tags"].append("raises-exception")
            # a traceback holds temporary file names: never compare it
            cell.metadata["tags"] = [t for t in cell.metadata["tags"] if t != "nbval-check-output"]
            continue
        raise RuntimeError(f"cell {n} raised {errors[0].get('ename')}: {errors[0].get('evalue')}")
    return nb


def write(nb, path):
    nbformat.validate(nb)
    with open(path, "w", encoding="utf-8") as f:
        nbformat.write(nb, f)


def notebooks(folder):
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder} is not a folder of notebooks.")
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".ipynb"))


def assign(solutions_dir, exercises_dir, run=True, timeout=120, only=None):
    """Regenerate every exercise notebook from its solution (and execute both when run=True).

    only: assignment names ("ex06", ...) to regenerate, the others left as they are (default: all).
    Returns the exercise paths written.
    """
    if run and not (isinstance(timeout, (int, float)) and timeout > 0 and timeout != float("inf")):
        raise ValueError(f"timeout must be a positive number of seconds per cell (for example 120), got {timeout!r}.")
    solutions = notebooks(solutions_dir)
    if only:
        unknown = [a for a in only if not any(os.path.basename(p).startswith(a + "_") for p in solutions)]
        if unknown:
            raise ValueError(f"no solution notebook for {', '.join(unknown)} in {solutions_dir}; the solutions are "
                             f"{', '.join(os.path.basename(p) for p in solutions)}.")
        solutions = [p for p in solutions if os.path.basename(p).split("_")[0] in only]
    os.makedirs(exercises_dir, exist_ok=True)
    written = []
    for sol_path in solutions:
        sol = nbformat.read(sol_path, as_version=4)
        if run:
            execute(sol, solutions_dir, timeout)
            write(clean_metadata(sol), sol_path)
        ex = make_exercise(sol)
        if run:
            execute(ex, exercises_dir, timeout, expect_not_implemented=True)
        target = os.path.join(exercises_dir, os.path.basename(sol_path))
        write(clean_metadata(ex), target)
        written.append(target)
    return written


def drift(solutions_dir, exercises_dir):
    """Differences between the committed exercises and those generated now (empty when in sync)."""
    problems = []
    for sol_path in notebooks(solutions_dir):
        ex_path = os.path.join(exercises_dir, os.path.basename(sol_path))
        if not os.path.exists(ex_path):
            problems.append(f"{ex_path} is missing; run `mlcourse assign`")
            continue
        want = make_exercise(nbformat.read(sol_path, as_version=4))
        have = nbformat.read(ex_path, as_version=4)
        w = [(c.cell_type, c.source) for c in want.cells]
        h = [(c.cell_type, c.source) for c in have.cells]
        if w != h:
            first = next((i for i, (a, b) in enumerate(zip(w, h)) if a != b), min(len(w), len(h)))
            problems.append(f"{ex_path} differs from its solution at cell {first + 1}; run `mlcourse assign`")
        elif want.metadata.get("mlcourse") != have.metadata.get("mlcourse"):
            problems.append(f"{ex_path}: its mlcourse metadata differs from the solution's; run `mlcourse assign`")
    return problems


_GREEK = {"α": "alpha", "θ": "theta", "ε": "epsilon", "∇": "grad", "·": "", "−": "-", "²": "^2", "ℒ": "l",
          "𝓛": "l", "⊤": "^t", "∑": "sum", "∏": "prod"}
_LATEX = ((r"\\mathcal\{(\w)\}", r"\1"), (r"\\(?:bar|overline)\{([^{}]*)\}", r"mean(\1)"), (r"\\nabla", "grad"),
          (r"\\(?:left|right|big|Big|bigl|bigr|,|;|!|quad|cdot|odot|mathrm|operatorname|text)", ""),
          (r"\*\*", "^"), (r"\\", ""), (r"[\s{}$*,]", ""))


def normalise(text):
    """Text as the spoiler check compares it: lower case, Greek spelled out, LaTeX markup, spaces, '*' dropped.

    "I - \\alpha H", "I - alpha * H" and "I − α H" all become "i-alphah"; ``**`` becomes ``^``.
    """
    out = text
    for k, v in _GREEK.items():
        out = out.replace(k, v)
    for pattern, repl in _LATEX:
        out = re.sub(pattern, repl, out)
    return out.lower()


def learner_text(nb):
    """Everything a learner reads in a notebook: every cell's source and every output's text."""
    parts = []
    for c in nb.cells:
        parts.append(c.source)
        for o in c.get("outputs", []):
            parts.append(o.get("text", "") if isinstance(o.get("text", ""), str) else "".join(o["text"]))
            for key in ("text/plain", "text/markdown", "text/html"):
                v = o.get("data", {}).get(key)
                if v:
                    parts.append(v if isinstance(v, str) else "".join(v))
    return "\n".join(parts)


def spoilers(nb, questions):
    """(question id, form) for each answer form of `questions` that the learner notebook nb shows."""
    text = normalise(learner_text(nb))
    return [(q.id, form) for q in questions for form in q.spoilers if normalise(form) in text]


def validate(solutions_dir=None):
    """Problems with the question bank (and, given solutions_dir, with the solution notebooks)."""
    problems = []
    for a in bank.ASSIGNMENTS:
        if not bank.assignment_questions(a):
            problems.append(f"assignment {a} has no questions")
    for q in bank.QUESTIONS.values():
        if not q.tests:
            problems.append(f"{q.id} has no tests")
        if not any(not t.hidden for t in q.tests):
            problems.append(f"{q.id} has no public test, so check('{q.id}') would show nothing")
        if any(not (t.points > 0) for t in q.tests):
            problems.append(f"{q.id} has a test without positive points")
        if any(not t.calls for t in q.tests):
            problems.append(f"{q.id} has a test with no inputs")
    if solutions_dir is None:
        return problems
    seen = set()
    for path in notebooks(solutions_dir):
        nb = nbformat.read(path, as_version=4)
        a = nb.metadata.get("mlcourse", {}).get("assignment")
        if a not in bank.ASSIGNMENTS:
            problems.append(f"{path}: metadata mlcourse.assignment is {a!r}, not one of {list(bank.ASSIGNMENTS)}")
            continue
        seen.add(a)
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        for q in bank.assignment_questions(a):
            if not re.search(rf"^def {q.function}\(", code, re.M):
                problems.append(f"{path}: no `def {q.function}(` for {q.id}")
            if not re.search(rf"check\(\s*['\"]{q.id}['\"]\s*\)", code):
                problems.append(f"{path}: no check('{q.id}') cell")
        if BEGIN not in code:
            problems.append(f"{path}: no {BEGIN} block, so the exercise would equal the solution")
        # a derivation question's answer must not be printed in the learner version (nor in an earlier one)
        shown = [q for q in bank.QUESTIONS.values() if q.assignment >= a]
        for qid, form in spoilers(make_exercise(nb), shown):
            problems.append(f"{path}: the learner version shows {qid}'s answer ({form!r}); move it to the hint")
        for q in shown:
            if q.assignment == a and any(normalise(f) in normalise(q.title) for f in q.spoilers):
                problems.append(f"{q.id}'s title gives its answer away")
    for a in sorted(set(bank.ASSIGNMENTS) - seen):
        problems.append(f"no solution notebook for assignment {a}")
    return problems
