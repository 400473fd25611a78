"""The student edition and the exercise grader."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import minivae
from minivae.exercises import EXERCISES, blank, find_blocks, make_student_edition

PACKAGE = Path(minivae.__file__).resolve().parent


def grade(edition_root, *names):
    """Run the grader in a fresh interpreter that imports the given edition."""
    code = ("import json, sys; from minivae.exercises import check_exercises; "
            "print(json.dumps([[v.name, v.status, v.tensor, v.hints] "
            "for v in check_exercises(sys.argv[1:])]))")
    env = dict(os.environ, PYTHONPATH=str(edition_root))
    out = subprocess.run([sys.executable, "-c", code, *names], env=env, cwd=edition_root,
                         capture_output=True, text=True, check=True)
    return {name: (status, tensor, hints) for name, status, tensor, hints in json.loads(out.stdout)}


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    root = tmp_path_factory.mktemp("student")
    make_student_edition(root)
    return root


def test_every_exercise_is_marked_once_in_the_library():
    marked = []
    for path in PACKAGE.rglob("*.py"):
        marked += [b[0] for b in find_blocks(path.read_text())]
    assert sorted(marked) == sorted(EXERCISES)


def test_student_edition_blanks_every_marked_body_and_nothing_else(student):
    for original in PACKAGE.rglob("*"):
        if "__pycache__" in original.parts or original.is_dir():
            continue
        copy = student / "minivae" / original.relative_to(PACKAGE)
        assert copy.exists(), copy
        if original.suffix != ".py":
            assert copy.read_bytes() == original.read_bytes()
            continue
        text, student_text = original.read_text(), copy.read_text()
        assert student_text == blank(text)
        for name, _, first, last in find_blocks(student_text):
            body = student_text.splitlines()[first + 1:last]
            assert "raise NotImplementedError(" in body[0] and name in "".join(body)
            assert EXERCISES[name][1] in "".join(body)
    assert (student / "pyproject.toml").exists()


def test_student_edition_imports_and_every_exercise_is_not_started(student):
    verdicts = grade(student)
    assert set(verdicts) == set(EXERCISES)
    assert all(status == "not started" for status, _, _ in verdicts.values()), verdicts


def test_check_command_prints_the_table_and_fails_while_exercises_are_open(student):
    env = dict(os.environ, PYTHONPATH=str(student))
    done = subprocess.run([sys.executable, "-m", "minivae", "exercises", "check"], env=env,
                          cwd=student, capture_output=True, text=True)
    assert done.returncode == 1
    assert str(student) in done.stdout
    assert "0 of 9 exercises correct" in done.stdout
    assert done.stdout.count("not started") == len(EXERCISES)


def test_full_package_passes_every_exercise():
    verdicts = grade(PACKAGE.parent)
    assert all(status == "correct" for status, _, _ in verdicts.values()), verdicts


def plant(tmp_path, filename, old, new):
    """A copy of the package with one mistake planted in ``filename``."""
    import shutil
    shutil.copytree(PACKAGE, tmp_path / "minivae",
                    ignore=shutil.ignore_patterns("__pycache__"))
    path = tmp_path / "minivae" / filename
    text = path.read_text()
    assert text.count(old) == 1, f"the line to plant a mistake in moved: {old!r}"
    path.write_text(text.replace(old, new))
    return tmp_path


def test_transposed_weight_gradient_is_caught_and_named(tmp_path):
    root = plant(tmp_path, "layers.py", 'np.matmul(x.T, dout, out=self.grads["W"])',
                 'self.grads["W"] = dout.T @ x')
    status, tensor, hints = grade(root, "linear_backward")["linear_backward"]
    assert status == "wrong" and tensor.endswith("W")
    assert any("transposed" in h for h in hints), hints


def test_forgotten_half_in_the_reparameterization_is_caught(tmp_path):
    root = plant(tmp_path, "gaussian.py", "dlogvar = 0.5 * dz * eps * std",
                 "dlogvar = dz * eps * std")
    verdicts = grade(root, "reparameterize_backward", "linear_backward")
    status, tensor, hints = verdicts["reparameterize_backward"]
    assert status == "wrong" and tensor == "logvar"
    assert any("missing 0.5" in h for h in hints), hints
    assert verdicts["linear_backward"][0] == "correct"


def test_sign_error_in_the_kl_gradient_is_caught(tmp_path):
    root = plant(tmp_path, "gaussian.py", "dmu = mu / B", "dmu = -mu / B")
    status, tensor, hints = grade(root, "kl_divergence")["kl_divergence"]
    assert status == "wrong" and tensor == "mu"
    assert any("sign" in h for h in hints), hints


def test_missing_bias_correction_in_adam_is_caught(tmp_path):
    root = plant(tmp_path, "optim.py", "step_size = self.lr * sqrt_bias2 / bias1",
                 "step_size = self.lr * sqrt_bias2")
    status, _, hints = grade(root, "adam_step")["adam_step"]
    assert status == "wrong"
    assert any("bias correction" in h for h in hints), hints
