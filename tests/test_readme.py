"""The README's two commands are the ones CI runs."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = ROOT.joinpath("README.md").read_text()
    blocks = [b.split("```")[0].strip() for b in readme.split("```bash\n")[1:]]
    install_and_run, tests = blocks[0], blocks[1]
    assert install_and_run.endswith("&& bench run")
    assert tests.endswith("python -m pytest -q")
    assert tests in ROOT.joinpath(".ci", "run").read_text()
