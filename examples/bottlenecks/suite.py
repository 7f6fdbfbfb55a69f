"""The seeded-bottleneck cases as data, and a runner that starts one case in a subprocess.

::

    from examples.bottlenecks.suite import CASES, run_case

    for case in CASES:
        if case.shows_on_cpu:
            for variant in ("bottleneck", "clean"):
                run_case(case, variant, device="cpu", steps=60, db=url,
                         run_name=f"{case.name}-{variant}")

Each case is a module of this package, run as ``python -m examples.bottlenecks.<name>`` from
the repository's root. ``python -m examples.bottlenecks.suite --device cpu --db URL`` runs
every case that shows on that device, both variants.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
VARIANTS = ("bottleneck", "clean")
EXIT_NEEDS_CUDA = 2  # examples.bottlenecks.common.EXIT_NEEDS_CUDA (not imported: no torch here)
STDERR_TAIL_CHARS = 4000


@dataclass(frozen=True, slots=True)
class Case:
    """One case: its module's name, the advisor rule its bottleneck variant should trigger,
    whether the bottleneck shows on the CPU (else it needs a GPU to show), and how many
    processes (ranks) it runs."""

    name: str
    expected_rule: str | None
    shows_on_cpu: bool
    processes: int = 1

    @property
    def module(self) -> str:
        return f"examples.bottlenecks.{self.name}"


CASES: tuple[Case, ...] = (
    Case("starved_dataloader", "input_pipeline", shows_on_cpu=True),
    Case("cpu_preprocessing", "cpu_preprocessing", shows_on_cpu=True),
    Case("host_sync", "host_sync", shows_on_cpu=False),
    Case("launch_bound", "launch_bound", shows_on_cpu=False),
    Case("pageable_h2d", "h2d_copies", shows_on_cpu=False),
    Case("fp32_gemm", "precision", shows_on_cpu=False),
    Case("memory_limit", "memory_pressure", shows_on_cpu=False),
    Case("straggler", "straggler", shows_on_cpu=True, processes=2),
    Case("clean", None, shows_on_cpu=True),
)
"""Every case; ``clean`` has no bottleneck and expects no rule."""


class CaseFailed(RuntimeError):
    """A case's process failed or ran past its time limit; the message holds its stderr."""


class CaseNeedsCuda(CaseFailed):
    """The case exited with status 2, "needs CUDA" (asked for a GPU where there is none)."""


def case_named(name: str) -> Case:
    for case in CASES:
        if case.name == name:
            return case
    raise KeyError(f"no bottleneck case {name!r}; cases: {', '.join(c.name for c in CASES)}")


def case_command(
    case: Case,
    variant: str,
    *,
    device: str,
    steps: int,
    db: str,
    run_name: str,
    trace_dir: str | None = None,
) -> list[str]:
    """The command line that runs ``case`` (with this interpreter)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
    command = [sys.executable, "-m", case.module, "--variant", variant, "--device", device]
    command += ["--steps", str(steps), "--db", db, "--run-name", run_name]
    if trace_dir is not None:
        command += ["--trace-dir", trace_dir]
    return command


def run_case(
    case: Case,
    variant: str,
    *,
    device: str,
    steps: int,
    db: str,
    run_name: str,
    trace_dir: str | None = None,
    timeout_s: float = 300.0,
) -> None:
    """Run one case to its end in a subprocess (cwd: the repository's root).

    Raises :class:`CaseNeedsCuda` where the case needs a GPU that is not there, and
    :class:`CaseFailed` (with the command and the end of its stderr) for any other failure or
    after ``timeout_s``.
    """
    command = case_command(
        case, variant, device=device, steps=steps, db=db, run_name=run_name, trace_dir=trace_dir
    )
    shown = "python " + " ".join(command[1:])
    try:
        subprocess.run(
            command, cwd=ROOT, check=True, capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired as exc:
        raise CaseFailed(
            f"{shown}: still running after {timeout_s:g} s; stderr:\n{_tail(exc.stderr)}"
        ) from None
    except subprocess.CalledProcessError as exc:
        kind = CaseNeedsCuda if exc.returncode == EXIT_NEEDS_CUDA else CaseFailed
        raise kind(f"{shown}: exit status {exc.returncode}; stderr:\n{_tail(exc.stderr)}") from None


def _tail(stream: str | bytes | None) -> str:
    if stream is None:
        return "(none)"
    text = stream.decode(errors="replace") if isinstance(stream, bytes) else stream
    lines = [line for line in text.splitlines() if not line.startswith("USDT:")]  # Kineto noise
    return "\n".join(lines)[-STDERR_TAIL_CHARS:] or "(empty)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run cases (all that show on ``--device`` unless named), both variants, one by one."""
    parser = argparse.ArgumentParser(prog="python -m examples.bottlenecks.suite")
    parser.add_argument("cases", nargs="*", help="case names (default: all that show there)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--db", required=True, help="store URL")
    parser.add_argument("--trace-dir")
    args = parser.parse_args(argv)
    try:
        chosen = [case_named(name) for name in args.cases]
    except KeyError as exc:
        parser.error(str(exc.args[0]))
    if not chosen:
        chosen = [c for c in CASES if c.shows_on_cpu or args.device == "cuda"]
    for case in chosen:
        for variant in VARIANTS:
            run_name = f"{case.name}-{variant}"
            try:
                run_case(
                    case,
                    variant,
                    device=args.device,
                    steps=args.steps,
                    db=args.db,
                    run_name=run_name,
                    trace_dir=args.trace_dir,
                )
            except CaseFailed as exc:
                print(f"{run_name}: {exc}", file=sys.stderr)
                return 1
            expected = case.expected_rule if variant == "bottleneck" else None
            print(f"{run_name}: done (expected finding: {expected or 'none'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
