"""Every shell example in README.md and docs/*.md runs against a gateway started as `make run`
starts it (demo, then serve, with examples/servicegate.toml), on a port other than 8080.

A fenced block whose language is `sh`, `bash` or `shell` is an example; one preceded by a
`<!-- not run: reason -->` line is only read (it needs a server or a deployment of its own).
The blocks of one file run in order in one bash session, as a reader pastes them into one
terminal. `curl` fails the run on any status outside 2xx unless its command ends with a
`# -> NNN` (or `# -> NNN or MMM`) comment naming the status it answers. The values a reader gets from
`eval "$(make -s env)"` come from the same command (`servicegate demo --env`).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.support.demo import ROOT, start_demo_gateway
from tests.support.processes import free_port, run_command

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(sh|bash|shell)\s*$")
NOT_RUN = re.compile(r"^<!--\s*not run:\s*(\S.*?)\s*-->$")
EXPECTED_STATUS = re.compile(r"#\s*->\s*([1-5]\d\d(?:\s+or\s+[1-5]\d\d)*)\b")
DONE = "__every_example_ran__"

# curl as a reader sees it, plus a check of the status: the body is printed as curl prints it
PREAMBLE = r"""
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
curl() {
  local out code want
  out=$(command curl -sS --max-time 30 -w '\n%{http_code}' "$@") || return $?
  code=${out##*$'\n'}
  printf '%s\n' "${out%$'\n'*}"
  want=${SG_EXPECT:-2[0-9][0-9]}
  if [[ ! $code =~ ^($want)$ ]]; then
    echo "unexpected status $code (expected ${SG_EXPECT:-2xx}) from: curl $*" >&2
    return 1
  fi
}
"""


def shell_blocks(document: Path) -> tuple[list[str], list[str]]:
    """The runnable blocks of a document, and the reasons given for the ones only read."""
    blocks: list[str] = []
    reasons: list[str] = []
    lines = document.read_text().splitlines()
    i = 0
    while i < len(lines):
        if FENCE.match(lines[i]):
            end = lines.index("```", i + 1)
            previous = next((ln for ln in reversed(lines[:i]) if ln.strip()), "")
            skipped = NOT_RUN.match(previous.strip())
            if skipped:
                reasons.append(skipped.group(1))
            else:
                blocks.append("\n".join(lines[i + 1:end]))
            i = end
        i += 1
    return blocks, reasons


def logical_lines(block: str) -> list[list[str]]:
    """Lines grouped into commands: a line ending in a backslash continues on the next."""
    commands: list[list[str]] = []
    current: list[str] = []
    for line in block.splitlines():
        current.append(line)
        if not line.rstrip().endswith("\\"):
            commands.append(current)
            current = []
    if current:
        commands.append(current)
    return commands


def script_for(blocks: list[str], receiver_port: int) -> str:
    out = ["set -euo pipefail", PREAMBLE]
    for block in blocks:
        block = (block.replace('"$(make -s env)"', '"$(servicegate demo --env)"')
                 .replace(".venv/bin/servicegate", "servicegate")
                 .replace(". .venv/bin/activate", ":")
                 .replace("127.0.0.1:9000", f"127.0.0.1:{receiver_port}")
                 .replace("receiver.py 9000", f"receiver.py {receiver_port}"))
        for command in logical_lines(block):
            expected = EXPECTED_STATUS.search(command[-1])
            if expected:
                codes = "|".join(expected.group(1).split(" or "))
                out += [f"export SG_EXPECT='{codes}'", *command, "unset SG_EXPECT"]
            else:
                out += command
    out.append(f"echo {DONE}")
    return "\n".join(out) + "\n"


RUNNABLE = [doc for doc in DOCUMENTS if shell_blocks(doc)[0]]


def test_the_documents_hold_examples_and_say_why_one_is_not_run():
    blocks = sum(len(shell_blocks(doc)[0]) for doc in DOCUMENTS)
    assert blocks >= 10, "the examples are found"
    for doc in DOCUMENTS:
        for reason in shell_blocks(doc)[1]:
            assert len(reason) > 10, f"{doc.name}: a block not run says why"


def test_a_status_annotation_wraps_the_whole_command():
    script = script_for(['curl -X POST \\\n  "$BASE/x"   # -> 404 or 409', "echo ok"], 9)
    wrapped = ["export SG_EXPECT='404|409'", "curl -X POST \\", '  "$BASE/x"   # -> 404 or 409',
               "unset SG_EXPECT", "echo ok"]
    assert "\n".join(wrapped) in script


@pytest.fixture(scope="module")
def demo_gateway(tmp_path_factory):
    gateway = start_demo_gateway(tmp_path_factory.mktemp("readme"))
    yield gateway
    gateway.stop()


@pytest.mark.parametrize("document", RUNNABLE, ids=lambda doc: doc.name)
def test_every_shell_example_runs(demo_gateway, document):
    assert demo_gateway.port != 8080
    blocks, _ = shell_blocks(document)
    script = demo_gateway.workdir / f"{document.stem}.sh"
    script.write_text(script_for(blocks, free_port()))
    try:
        done = run_command(["bash", str(script)], cwd=demo_gateway.workdir,
                           env=demo_gateway.env, timeout=180)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{document.name}: the examples did not finish\n{exc.output}\n{exc.stderr}")
    assert done.returncode == 0 and DONE in done.stdout, (
        f"{document.name}: an example failed (exit {done.returncode})\n"
        f"--- output\n{done.stdout[-4000:]}\n--- errors\n{done.stderr[-4000:]}\n"
        f"--- gateway log\n{demo_gateway.log()[-3000:]}")
