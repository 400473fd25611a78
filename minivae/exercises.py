"""Exercises for a course: a student edition of minivae, and its grader.

The library marks the bodies a student may be asked to write with two ordinary
comment lines: one reading ``# exercise: NAME`` just before the body, one
reading ``# end exercise`` just after it.

:func:`make_student_edition` copies the package and replaces each marked body
by a ``NotImplementedError`` that names the exercise and the tutorial that
derives it; everything else (docstrings, the math, the shapes) is kept.

:func:`check_exercises` grades whichever edition of ``minivae`` is imported:
every exercise is run through the gradient checker and, where one exists, a
closed form. Each is reported as ``not started``, ``wrong`` (with the tensor,
the largest relative error and a hint at the kind of mistake) or ``correct``.
"""

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

OPEN = re.compile(r"^(?P<indent>\s*)# exercise: (?P<name>[a-z0-9_]+)\s*$")
CLOSE = re.compile(r"^\s*# end exercise\s*$")

#: exercise name -> (what to write, where it is derived)
EXERCISES = {
    "linear_backward": ("Linear.backward in minivae/layers.py",
                        "tutorials/02_layers_and_backprop.ipynb, section 2 (Linear)"),
    "tanh_backward": ("Tanh.backward in minivae/layers.py",
                      "tutorials/02_layers_and_backprop.ipynb, section 4 (Tanh)"),
    "dropout_backward": ("Dropout.backward in minivae/layers.py",
                         "tutorials/02_layers_and_backprop.ipynb, section 5 (Dropout)"),
    "l2_normalize_backward": ("L2Normalize.backward in minivae/layers.py",
                              "tutorials/02_layers_and_backprop.ipynb, section 6 (L2 normalisation)"),
    "multinomial_nll": ("the fused log-softmax and its gradient in minivae/likelihoods.py",
                        "tutorials/03_multinomial_likelihood.ipynb, sections 2-3"),
    "reparameterize_backward": ("Reparameterize.backward in minivae/gaussian.py",
                                "tutorials/04_gaussian_code.ipynb, section 2 (reparameterizing)"),
    "kl_divergence": ("kl_divergence in minivae/gaussian.py",
                      "tutorials/04_gaussian_code.ipynb, section 3 (the KL term)"),
    "vae_code_backward": ("the backward through the Gaussian code in MultVAE.loss_and_grads "
                          "(minivae/models.py)",
                          "tutorials/04_gaussian_code.ipynb, section 4 (both paths into mu and logvar)"),
    "adam_step": ("the update inside Adam.step in minivae/optim.py",
                  "tutorials/05_adam_from_scratch.ipynb, sections 1-2"),
}


def find_blocks(text):
    """The marked blocks of a source text.

    Returns
    -------
    list of (name, indent, first_line, last_line)
        Line numbers (0-based) of the opening and closing marker lines.
    """
    blocks, current = [], None
    for n, line in enumerate(text.splitlines()):
        opened = OPEN.match(line)
        if opened:
            if current is not None:
                raise ValueError(f"line {n + 1}: exercise {opened['name']!r} opens inside "
                                 f"{current[0]!r}")
            current = (opened["name"], opened["indent"], n)
        elif CLOSE.match(line):
            if current is None:
                raise ValueError(f"line {n + 1}: '# end exercise' without an opening marker")
            blocks.append((*current, n))
            current = None
    if current is not None:
        raise ValueError(f"exercise {current[0]!r} is never closed")
    return blocks


def blank(text):
    """``text`` with every marked body replaced by a ``NotImplementedError``."""
    lines = text.splitlines(keepends=True)
    for name, indent, first, last in reversed(find_blocks(text)):
        where = EXERCISES.get(name, ("this block", "the tutorials"))[1]
        stub = (f'{indent}raise NotImplementedError(\n'
                f'{indent}    "exercise {name}: write this block; it is derived in {where}")\n')
        lines[first + 1:last] = [stub]
    return "".join(lines)


def make_student_edition(destination, source=None):
    """Write a student edition of the package into ``destination``.

    Parameters
    ----------
    destination : path
        A new (or empty) directory; it receives ``minivae/`` with every marked
        body blanked, and a ``pyproject.toml`` so that ``pip install DIR``
        installs it.
    source : path, optional
        The package directory to copy (default: the imported ``minivae``).

    Returns
    -------
    list of str
        The names of the blanked exercises.
    """
    source = Path(source) if source else Path(__file__).resolve().parent
    destination = Path(destination)
    if destination.exists() and any(destination.iterdir()):
        raise FileExistsError(f"{destination} is not empty; choose a new directory")
    target = destination / "minivae"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    blanked = []
    for path in sorted(target.rglob("*.py")):
        text = path.read_text()
        blocks = find_blocks(text)
        if blocks:
            path.write_text(blank(text))
            blanked += [b[0] for b in blocks]
    from . import __version__
    (destination / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=64"]\nbuild-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "minivae"\nversion = "{__version__}+student"\n'
        'requires-python = ">=3.10"\ndependencies = ["numpy>=2.0", "scipy>=1.13", "matplotlib>=3.8"]\n\n'
        '[project.scripts]\nminivae = "minivae.cli:main"\n\n'
        '[tool.setuptools.packages.find]\ninclude = ["minivae*"]\n\n'
        '[tool.setuptools.package-data]\n"minivae.data" = ["*.zip", "*.txt"]\n')
    return blanked


@dataclass
class Verdict:
    """The grade of one exercise."""

    name: str
    status: str  # "correct", "wrong" or "not started"
    max_error: float = float("nan")
    tensor: str = ""
    hints: list = field(default_factory=list)


def diagnose(analytic, numerical):
    """Guess what kind of mistake makes ``analytic`` differ from ``numerical``.

    Parameters
    ----------
    analytic : ndarray
        The gradient the code computed (any shape).
    numerical : ndarray
        The finite-difference gradient, in the shape it should have.

    Returns
    -------
    list of str
        Hints, most specific first (empty if nothing recognisable).
    """
    from .gradcheck import rel_error

    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numerical, dtype=np.float64)
    if a.shape != n.shape:
        if a.shape == n.shape[::-1]:
            return [f"the gradient has shape {a.shape} but the parameter has {n.shape}: "
                    "a transposed matrix?"]
        return [f"the gradient has shape {a.shape} but the parameter has {n.shape}"]
    if n.ndim == 2 and n.shape[0] == n.shape[1] and np.allclose(a, n.T, rtol=1e-5, atol=1e-9) \
            and not np.allclose(a, n, rtol=1e-5, atol=1e-9):
        return ["it equals the transpose of the right gradient: a transposed matrix?"]
    if not np.any(a) and np.any(n):
        return ["the gradient is all zeros: is it computed and returned?"]
    if not np.all(np.isfinite(a)):
        return ["the gradient contains NaN or infinity"]
    hints = []
    big = np.abs(n) > 1e-6 * max(np.abs(n).max(), 1e-30)
    if big.any():
        ratio = a[big] / n[big]
        if np.allclose(ratio, ratio[0], rtol=1e-4):
            c = ratio[0]
            named = {-1.0: "the sign is flipped",
                     2.0: "it is twice the right value: a missing 0.5 or an extra factor 2?",
                     0.5: "it is half the right value: an extra 0.5 or a missing factor 2?"}
            for value, text in named.items():
                if abs(c - value) < 1e-3 * abs(value):
                    hints.append(text)
                    break
            else:
                hints.append(f"it is the right gradient times {c:.4g}: a missing constant factor?")
    wrong = rel_error(a, n) > 1e-6
    if wrong.any() and not hints:
        where = [tuple(int(i) for i in idx) for idx in np.argwhere(wrong)[:5]]
        hints.append(f"{int(wrong.sum())} of {wrong.size} entries are wrong, e.g. at {where}")
    return hints


def _grade_report(name, report, tol):
    worst = max(report.rows, key=lambda r: r.max_error)
    if worst.max_error < tol:
        return Verdict(name, "correct", worst.max_error, worst.name)
    full_analytic = np.zeros(worst.shape)
    full_numerical = np.zeros(worst.shape)
    full_analytic.flat[worst.indices] = worst.analytic
    full_numerical.flat[worst.indices] = worst.numerical
    hints = diagnose(full_analytic, full_numerical)
    return Verdict(name, "wrong", worst.max_error, worst.name, hints)


def _exercise_checks():
    """name -> function returning a Verdict (raising NotImplementedError if blank)."""
    from . import gaussian, gradcheck, layers, likelihoods, models, optim

    tol = gradcheck.LAYER_TOL
    rng = np.random.default_rng(0)
    x_dense = rng.standard_normal((4, 6))
    x_sparse = sp.csr_matrix((rng.random((4, 6)) < 0.5) * 1.0)

    def layer_exercise(name, build, kwargs_dense=None, kwargs_sparse=None):
        def run():
            r = np.random.default_rng(1)
            report = gradcheck.check_layers(
                [layers.Linear(6, 6, r), build(), layers.Linear(6, 3, r)], x_dense,
                [{}, kwargs_dense or {}, {}])
            verdict = _grade_report(name, report, tol)
            if verdict.status == "correct" and kwargs_sparse is not None:
                report = gradcheck.check_layers([build(), layers.Linear(6, 3, r)], x_sparse,
                                                [kwargs_sparse, {}])
                verdict = _grade_report(name, report, tol)
                verdict.hints = [f"(sparse input) {h}" for h in verdict.hints]
            return verdict
        return run

    def linear():
        r = np.random.default_rng(2)
        # a non-square weight, so a transposed gradient cannot pass
        report = gradcheck.check_layers([layers.Linear(6, 5, r), layers.Tanh(),
                                         layers.Linear(5, 3, r)], x_dense)
        verdict = _grade_report("linear_backward", report, tol)
        if verdict.status == "correct":
            report = gradcheck.check_layers([layers.Linear(6, 3, r)], x_sparse)
            verdict = _grade_report("linear_backward", report, tol)
        return verdict

    def reparameterize():
        r = np.random.default_rng(3)
        mu, logvar, eps = (r.standard_normal((4, 3)) for _ in range(3))
        projection = r.standard_normal((4, 3))
        sampler = gaussian.Reparameterize()
        loss = lambda: float(np.sum(projection * sampler.forward(mu, logvar, eps=eps)))
        loss()
        dmu, dlogvar = sampler.backward(projection)
        return _grade_report("reparameterize_backward", gradcheck.check_gradients(
            loss, {"mu": mu, "logvar": logvar}, {"mu": dmu, "logvar": dlogvar}), tol)

    def kl():
        r = np.random.default_rng(4)
        mu, logvar = r.standard_normal((5, 3)), r.standard_normal((5, 3))
        value, (dmu, dlogvar) = gaussian.kl_divergence(mu, logvar)
        closed = 0.5 * np.sum(mu ** 2 + np.exp(logvar) - logvar - 1) / 5
        if not np.isclose(value, closed, rtol=1e-10):
            return Verdict("kl_divergence", "wrong", abs(value - closed) / abs(closed), "value",
                           diagnose(np.array([value]), np.array([closed]))
                           + ["the value should be summed over dimensions and averaged over users"])
        return _grade_report("kl_divergence", gradcheck.check_gradients(
            lambda: gaussian.kl_divergence(mu, logvar)[0], {"mu": mu, "logvar": logvar},
            {"mu": dmu, "logvar": dlogvar}), tol)

    def multinomial():
        from scipy.special import log_softmax
        r = np.random.default_rng(5)
        f = r.standard_normal((4, 7))
        x = (r.random((4, 7)) < 0.4) * 1.0
        value, dlogits = likelihoods.multinomial_nll(f, x)
        closed = -np.sum(x * log_softmax(f, axis=1)) / 4
        if not np.isclose(value, closed, rtol=1e-10):
            return Verdict("multinomial_nll", "wrong", abs(value - closed) / abs(closed), "value",
                           diagnose(np.array([value]), np.array([closed])))
        big = f * 1e3
        if not np.isfinite(likelihoods.multinomial_nll(big, x)[0]):
            return Verdict("multinomial_nll", "wrong", float("inf"), "value",
                           ["logits of size 1e3 overflow: subtract the row maximum first"])
        return _grade_report("multinomial_nll", gradcheck.check_gradients(
            lambda: likelihoods.multinomial_nll(f, x)[0], {"logits": f}, {"logits": dlogits}), tol)

    def vae():
        r = np.random.default_rng(6)
        x = (r.random((5, 20)) < 0.3) * 1.0
        model = models.MultVAE(20, hidden_dims=(6,), latent_dim=3, dtype=np.float64, seed=0)
        report = gradcheck.check_model(model, x, beta=0.4, rng=r)
        return _grade_report("vae_code_backward", report, gradcheck.MODEL_TOL)

    def adam():
        r = np.random.default_rng(7)
        lr, b1, b2, eps = 0.01, 0.8, 0.95, 1e-6
        theta = r.standard_normal((3, 4))
        params = {"w": theta.copy()}
        opt = optim.Adam(params, lr=lr, betas=(b1, b2), eps=eps)
        m = v = np.zeros_like(theta)

        def update(t, correct_m=True, correct_v=True):
            m_hat = m / (1 - b1 ** t) if correct_m else m
            v_hat = v / (1 - b2 ** t) if correct_v else v
            return -lr * m_hat / (np.sqrt(v_hat) + eps)

        worst = 0.0
        for t in range(1, 6):
            g = r.standard_normal((3, 4))
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            expected = theta + update(t)
            opt.step({"w": g})
            moved = params["w"] - theta
            error = np.abs(params["w"] - expected).max() / np.abs(update(t)).max()
            worst = max(worst, error)
            if error > 1e-9:
                hints = [f"step {t} differs from the published rule"]
                variants = {
                    "the first moment's bias correction 1 - beta1^t": (False, True),
                    "the second moment's bias correction 1 - beta2^t": (True, False),
                    "both bias corrections 1 - beta^t": (False, False),
                }
                for what, flags in variants.items():
                    if np.allclose(moved, update(t, *flags), rtol=1e-9, atol=0):
                        hints.append(f"it matches the rule without {what}: "
                                     "is that bias correction missing?")
                if not np.any(moved):
                    hints.append("the parameters did not move: is the update applied in place?")
                return Verdict("adam_step", "wrong", error, "w", hints)
            theta = expected
        return Verdict("adam_step", "correct", worst, "w")

    mask_dense = np.random.default_rng(8).random((4, 6)) >= 0.5
    mask_sparse = np.random.default_rng(9).random(x_sparse.nnz) >= 0.5
    return {
        "linear_backward": linear,
        "tanh_backward": layer_exercise("tanh_backward", layers.Tanh),
        "dropout_backward": layer_exercise("dropout_backward", lambda: layers.Dropout(0.5),
                                           {"mask": mask_dense}, {"mask": mask_sparse}),
        "l2_normalize_backward": layer_exercise("l2_normalize_backward", layers.L2Normalize,
                                                {}, {}),
        "multinomial_nll": multinomial,
        "reparameterize_backward": reparameterize,
        "kl_divergence": kl,
        "vae_code_backward": vae,
        "adam_step": adam,
    }


def check_exercises(names=None):
    """Grade the exercises of the imported edition of minivae.

    Parameters
    ----------
    names : list of str, optional
        Which exercises (default: all).

    Returns
    -------
    list of Verdict
    """
    from .gradcheck import ShapeMismatch

    checks = _exercise_checks()
    names = list(checks) if not names else names
    unknown = [n for n in names if n not in checks]
    if unknown:
        raise ValueError(f"unknown exercise {', '.join(unknown)}; "
                         f"known: {', '.join(checks)}")
    verdicts = []
    for name in names:
        try:
            verdicts.append(checks[name]())
        except NotImplementedError:
            verdicts.append(Verdict(name, "not started"))
        except ShapeMismatch as error:
            hints = diagnose(np.zeros(error.got), np.ones(error.expected))
            verdicts.append(Verdict(name, "wrong", float("inf"), error.name, hints))
        except Exception as error:  # a student's half-written code may fail in any way
            verdicts.append(Verdict(name, "wrong", float("nan"), "",
                                    [f"raised {type(error).__name__}: {error}"]))
    return verdicts


def format_verdicts(verdicts):
    """The grades as a readable table, with hints under each wrong exercise."""
    rows = [("exercise", "status", "max rel err", "in tensor")]
    for v in verdicts:
        err = "" if np.isnan(v.max_error) else f"{v.max_error:.1e}"
        rows.append((v.name, v.status, err, v.tensor))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    for i, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
        elif verdicts[i - 1].hints:
            lines += [f"    hint: {h}" for h in verdicts[i - 1].hints]
    done = sum(v.status == "correct" for v in verdicts)
    lines.append(f"{done} of {len(verdicts)} exercises correct")
    return "\n".join(lines)
