"""img2dataset's console output reaches the run's log, children's output included."""

import json
import subprocess
import sys
from pathlib import Path

from pipeline.hops.download.output import HELD_OPEN, output_to

ROOT = Path(__file__).resolve().parents[1]


def test_output_of_the_process_and_its_children_becomes_log_lines() -> None:
    logged: list[str] = []
    with output_to(logged.append):
        print("Starting the downloading of this file", flush=True)
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; sys.stderr.write('0it\\r1it [00:14]\\nworker done\\n')",
            ],
            check=True,
        )
    print("after the block")  # back on the terminal, not in the log
    assert logged == ["Starting the downloading of this file", "0it", "1it [00:14]", "worker done"]


SPAWNS_INSIDE_THE_CAPTURE = """
import json, multiprocessing, sys
from pipeline.hops.download.output import output_to

def child():
    print("from a spawned worker", flush=True)

if __name__ == "__main__":
    logged = []
    with output_to(logged.append, timeout_s=20):
        worker = multiprocessing.get_context("spawn").Process(target=child)
        worker.start()
        worker.join()
    print(json.dumps(logged))
"""


def test_a_spawned_worker_does_not_hold_the_capture_open(tmp_path) -> None:
    """img2dataset spawns its workers; the first spawn of a process starts multiprocessing's
    resource tracker, which outlives the download. Started inside the capture it held the pipe
    open, and every first download of a process waited the whole timeout for its output."""
    script = tmp_path / "spawns.py"
    script.write_text(SPAWNS_INSIDE_THE_CAPTURE)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          check=True, timeout=300, cwd=ROOT)  # fmt: skip
    logged = json.loads(done.stdout.splitlines()[-1])
    assert "from a spawned worker" in logged
    assert not [line for line in logged if HELD_OPEN in line], logged
