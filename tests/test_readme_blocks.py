"""Every ```sh block of README.md and README.zh-CN.md runs, in order, as written (issue 28, item 3).

The convention both READMEs follow: a ```sh block is run by bash with `set -e`, in a fresh copy
of the checkout, with OPENAI_BASE_URL at a mock server this test starts and a throwaway key. A
reader's terminal is one session, so each block goes on where the one before left off: its folder,
its exported variables and its background processes (all stopped at the end). Only the lines that
need the network or are this test's own set-up are left out: `git clone ...`, `cd batchgpt`,
`pip install ...`; a literal port 8000 becomes a free port. An illustration, an output sample, a
config fragment, or a command too long or costly to run here is fenced otherwise (```text,
```yaml, ```cron, ```json, ```python).

In place of the skipped `pip install`, the blocks find `batchgpt` and its libraries where this
test's Python has them, with the checkout's copy first on PYTHONPATH, so that a virtual
environment a block makes and activates sees them too.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import site
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from batchgpt.mock import Config, MockServer

ROOT = Path(__file__).resolve().parents[1]
READMES = ("README.md", "README.zh-CN.md")
FENCE = re.compile(r"^\s*```(\S*)\s*$")
LEFT_OUT = re.compile(r"^\s*(git clone\s|cd batchgpt\s*(#.*)?$|pip install\s)")
PORT = re.compile(r"(:|--port[ =])8000\b")
ITSELF = re.compile(r"\bpytest\b")
THROWAWAY_KEY = "sk-readme-blocks-throwaway-0123456789"
BLOCK_SECONDS = 120  # a bound for a block that hangs, far above what any takes


@dataclass(frozen=True)
class Block:
    readme: str
    line: int  # its opening fence's
    lines: tuple[tuple[int, str], ...]  # (line in the README, text)


def sh_blocks(readme: str) -> list[Block]:
    found: list[Block] = []
    opened: tuple[int, str] | None = None
    body: list[tuple[int, str]] = []
    for number, text in enumerate((ROOT / readme).read_text(encoding="utf-8").splitlines(), 1):
        fence = FENCE.match(text)
        if opened is None and fence:
            opened, body = (number, fence.group(1)), []
        elif opened is not None and fence and not fence.group(1):
            if opened[1] == "sh":
                found.append(Block(readme, opened[0], tuple(body)))
            opened = None
        elif opened is not None:
            body.append((number, text))
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def fresh_copy(target: Path) -> Path:
    """The checkout's files (tracked, and new ones not ignored), without runs' state or outputs."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def environment(home: Path, checkout: Path, base_url: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    for name in ("COLUMNS", "VIRTUAL_ENV", "PYTHONHOME", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        keep.pop(name, None)
    libraries = [*site.getsitepackages(), site.getusersitepackages()]
    return {
        **keep,
        "HOME": str(home),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), keep.get("PATH", "")]),
        "PYTHONPATH": os.pathsep.join([str(checkout), *(p for p in libraries if os.path.isdir(p))]),
        "OPENAI_BASE_URL": base_url,
        "OPENAI_API_KEY": THROWAWAY_KEY,
    }


def script(block: Block, port: int, state: Path) -> tuple[str, dict[int, tuple[int, str]]]:
    """The block as bash runs it, and which of its lines is which line of the README. It starts
    where the block before ended (folder, exported variables) and records where it ends."""
    head = [
        f'[ -f "{state}/env" ] && . "{state}/env"; cd "$(cat "{state}/cwd")"',
        "set -e",
        f"trap 'echo $LINENO > \"{state}/failed\"' ERR",
    ]
    lines, where = list(head), {}
    for number, text in block.lines:
        lines.append(":" if LEFT_OUT.match(text) else PORT.sub(rf"\g<1>{port}", text))
        where[len(lines)] = (number, text.strip())
    lines.append(f'export -p > "{state}/env"; pwd > "{state}/cwd"')
    return "\n".join(lines) + "\n", where


def run_block(block: Block, port: int, state: Path, env: dict[str, str], groups: list[int]) -> str:
    """Run one block; its output, or a failure naming the README, the line and the command."""
    for number, line in block.lines:  # the suite holds this test: it would run itself, for ever
        if ITSELF.search(line):
            pytest.fail(f"{block.readme}:{number}: `{line.strip()}` runs the tests, this one too: fence it ```text")
    text, where = script(block, port, state)
    (state / "failed").unlink(missing_ok=True)
    status, said = bash(text, env, state / f"output-{block.line}", groups)
    if status == 0:
        return said
    failed = state / "failed"
    line, command = where.get(int(failed.read_text() or 0) if failed.exists() else 0, (block.line, "the block"))
    why = f"did not end in {BLOCK_SECONDS} s" if status is None else f"exited with status {status}"
    pytest.fail(f"{block.readme}:{line}: `{command}` {why} (the ```sh block at line {block.line})\n{said[-3000:]}")


def bash(text: str, env: dict[str, str], output: Path, groups: list[int]) -> tuple[int | None, str]:
    """(its exit status, None if it ran past BLOCK_SECONDS; what it wrote). Its output goes to a
    file of its own, which a background process it leaves may go on writing to."""
    with output.open("w+b") as written:
        shell = subprocess.Popen(
            ["bash", "-c", text],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=written,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        groups.append(shell.pid)  # its background processes stay in its group, to stop at the end
        try:
            status: int | None = shell.wait(BLOCK_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(shell.pid, signal.SIGKILL)
            shell.wait()
            status = None
        written.seek(0)
        return status, written.read().decode(errors="replace")


def stop(groups: list[int]) -> None:
    for group in groups:
        try:
            os.killpg(group, signal.SIGTERM)
        except ProcessLookupError:  # every process of it has ended
            pass


def run_readme(readme: str, tmp_path: Path, base_url: str) -> str:
    """Every ```sh block of `readme`, in order, in a fresh copy of the checkout: what they said."""
    checkout, state, home = tmp_path / "batchgpt", tmp_path / "state", tmp_path / "home"
    for folder in (checkout, state, home):
        folder.mkdir()
    (state / "cwd").write_text(str(fresh_copy(checkout)))
    env, port, groups = environment(home, checkout, base_url), free_port(), []
    try:
        return "".join(run_block(block, port, state, env, groups) for block in sh_blocks(readme))
    finally:
        stop(groups)


@pytest.mark.timeout(600)  # a busy machine's slow block is bounded by BLOCK_SECONDS
@pytest.mark.parametrize("readme", READMES)
def test_every_sh_block_of_the_readme_runs_in_order(readme: str, tmp_path: Path) -> None:
    mock = MockServer(Config()).start()
    try:
        said = run_readme(readme, tmp_path, mock.base_url)
    finally:
        mock.stop()
    # Batch mode did something: a batch was submitted, then collected (an earlier step's answers
    # once left it nothing to send, and it still exited 0).
    submitted = re.findall(r"submitted batch (\S+):", said)
    assert submitted, f"{readme}: no ```sh block submitted a batch:\n{said[-3000:]}"
    collected = [b for b in submitted if re.search(rf"batch {re.escape(b)} completed: .*; collected", said)]
    assert collected, f"{readme}: batch {submitted} submitted, never collected:\n{said[-3000:]}"


def test_a_failing_command_is_named_by_its_readme_its_line_and_its_text(tmp_path: Path) -> None:
    block = Block("X.md", 10, ((11, "git clone x batchgpt && cd batchgpt"), (12, "export A=1"), (13, "false  # no")))
    (tmp_path / "cwd").write_text(str(tmp_path))
    with pytest.raises(pytest.fail.Exception) as failed:
        run_block(block, 9, tmp_path, {"PATH": os.environ["PATH"]}, [])
    assert str(failed.value).startswith("X.md:13: `false  # no` exited with status 1 (the ```sh block at line 10)")
    later = Block("X.md", 20, ((21, "cd sub"), (22, 'echo "$A $PWD" --port 8000')))
    (tmp_path / "sub").mkdir()
    (tmp_path / "env").write_text("export A=1\n")  # as a block before left it
    said = run_block(later, 9, tmp_path, {"PATH": os.environ["PATH"]}, [])
    assert said == f"1 {tmp_path / 'sub'} --port 9\n"


def test_the_readmes_blocks_are_found_and_the_set_up_lines_left_out() -> None:
    blocks = sh_blocks("README.md")
    text = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert all(text[block.line - 1] == "```sh" for block in blocks)
    assert all(text[number - 1] == line for block in blocks for number, line in block.lines)
    left_out = [line for block in blocks for _, line in block.lines if LEFT_OUT.match(line)]
    assert left_out == ["git clone <this repository> batchgpt && cd batchgpt", "pip install -e '.[test]'"]
