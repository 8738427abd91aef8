"""img2dataset's console output reaches the run's log, children's output included."""

import subprocess
import sys

from pipeline.hops.download.output import output_to


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
