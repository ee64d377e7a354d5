"""The floors in requirements.txt are what tools/check_min_versions.sh installs and the README
says was tested: every requirement has one, and the README's table names the same versions."""
from __future__ import annotations

import re
import subprocess

from common.paths import REPO_ROOT

REQUIREMENTS = REPO_ROOT / "requirements.txt"
SCRIPT = REPO_ROOT / "tools" / "check_min_versions.sh"


def requirement_lines() -> list[str]:
    lines = [line.split("#")[0].strip() for line in REQUIREMENTS.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("-")]


def pins_of_the_script() -> list[str]:
    """The pins the script derives from requirements.txt, by its own sed command."""
    sed = re.search(r"sed -n '([^']+)' requirements\.txt", SCRIPT.read_text()).group(1)
    out = subprocess.run(["sed", "-n", sed, str(REQUIREMENTS)], capture_output=True, text=True,
                         check=True).stdout
    return out.split()


def readme_table() -> dict[str, tuple[str, str]]:
    text = (REPO_ROOT / "README.md").read_text()
    table = text.split("<!-- tested-versions:begin -->")[1].split("<!-- tested-versions:end -->")[0]
    rows = [[cell.strip() for cell in row.strip("|").split("|")]
            for row in table.strip().splitlines()[2:]]
    return {name: (floor, newest) for name, floor, newest in rows}


def test_every_requirement_has_a_floor_the_script_pins():
    lines = requirement_lines()
    assert len(lines) == 11
    for line in lines:
        assert re.fullmatch(r"[A-Za-z0-9_.-]+>=[0-9][0-9.]*", line), line
    assert pins_of_the_script() == [line.replace(">=", "==") for line in lines]


def test_the_readme_table_names_the_floors_of_requirements():
    table = readme_table()
    floors = dict(line.split(">=") for line in requirement_lines())
    assert set(table) == set(floors) | {"Python"}
    for name, floor in floors.items():
        tested, newest = table[name]
        # "torch>=2.6" is tested as torch==2.6, which pip resolves to the release 2.6.0
        assert tested.split(".")[:len(floor.split("."))] == floor.split("."), name
        assert tuple(map(int, re.findall(r"\d+", newest))) >= tuple(map(int, re.findall(r"\d+", tested)))
    assert table["Python"][0].startswith("3.10")      # requires-python = ">=3.10"
    assert 'requires-python = ">=3.10"' in (REPO_ROOT / "pyproject.toml").read_text()
