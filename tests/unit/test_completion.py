"""Shell completion: `podrepro completion SHELL` prints a script for bash, zsh and fish, and the
protocol that script speaks answers (command names, a command's options)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def podrepro(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "podrepro", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})}, cwd="/")


@pytest.mark.parametrize("shell, marker", [("bash", "-F _podrepro_completion podrepro"), ("zsh", "#compdef podrepro"),
                                           ("fish", "complete --command podrepro")])
def test_scripts_generate(shell: str, marker: str) -> None:
    r = podrepro("completion", shell)
    assert r.returncode == 0, r.stderr
    assert marker in r.stdout and f"_PODREPRO_COMPLETE=complete_{shell}" in r.stdout, r.stdout


def test_unknown_shell_is_one_line_exit_2() -> None:
    r = podrepro("completion", "tcsh")
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: no completion for shell 'tcsh' (hint: one of: bash, zsh, fish)"], r.stderr


@pytest.mark.parametrize("words, cword, want", [("podrepro te", "1", "test"), ("podrepro test --cr", "2", "--cross"),
                                                ("podrepro image b", "2", "build")])
def test_the_bash_script_protocol_answers(words: str, cword: str, want: str) -> None:
    r = podrepro(env={"_PODREPRO_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": cword})
    assert r.returncode == 0, r.stderr
    assert want in r.stdout.split(), r.stdout
