"""The README's Python example prints what the README says it prints."""

import re
import subprocess
import sys

from conftest import REPO


def test_the_readme_example_prints_its_output(shared):
    readme = (REPO / "README.md").read_text()
    section = readme.split("## From Python", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    printed = re.search(r"```text\n(.*?)```", section, re.S).group(1)
    code = code.replace('"../shared/data/', f'"{shared}/')
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout == printed
