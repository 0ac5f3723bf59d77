"""Runs a dflow step's script inside a batch job: `python -m workflows.batch_step script`.

dpdispatcher resubmits every job that ends with a non-zero code, as it would one whose node was lost.
A step that failed for good (dflow's FatalError, or a job over the campaign's per-job limit) must not
be resubmitted, so its code becomes 0 here; the dflow step still fails, because its outputs are missing.
A TransientError (exit 1) and a killed job keep their codes and are resubmitted up to the retry count.
"""

from __future__ import annotations

import subprocess
import sys

from lambench_core.campaign import EXIT_TIMED_OUT

EXIT_FATAL = 2  # dflow's exit code for FatalError
FINAL = {EXIT_FATAL, EXIT_TIMED_OUT}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m workflows.batch_step SCRIPT", file=sys.stderr)
        return 2
    code = subprocess.call([sys.executable, argv[0]])
    if code in FINAL:
        print(f"lambench: the step failed for good (exit {code}); not for the batch system to retry", file=sys.stderr)
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
