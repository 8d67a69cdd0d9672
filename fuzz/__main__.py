"""Run the atheris targets, each for a bounded time in its own process, and say what ran.

    python -m fuzz [TARGET ...] [--seconds N]

Corpora live in .fuzz/corpus/TARGET (seeded from tests/golden each run, kept between runs);
an input that breaks a promise is written to .fuzz/findings/TARGET/ and fails the run.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

from fuzz.gateway import gateway_seeds
from fuzz.grpc_calls import grpc_seeds
from fuzz.oracles import golden_seeds

TARGETS = ("json", "binary", "text", "gateway", "grpc")
ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".fuzz"
_RUNS = re.compile(r"Done (\d+) runs in (\d+) second")
_CORPUS = re.compile(r"#\d+\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)")


def seed(target: str, corpus: Path) -> int:
    corpus.mkdir(parents=True, exist_ok=True)
    if target == "gateway":
        seeds = gateway_seeds()
    elif target == "grpc":
        seeds = grpc_seeds()
    else:
        seeds = golden_seeds(target)
    count = 0
    for name, data in seeds:
        (corpus / f"seed-{name}").write_bytes(data)
        count += 1
    return count


def run(target: str, seconds: int) -> dict[str, object]:
    corpus = WORK / "corpus" / target
    findings = WORK / "findings" / target
    findings.mkdir(parents=True, exist_ok=True)
    seeds = seed(target, corpus)
    log = WORK / f"{target}.log"
    command = [
        sys.executable,
        "-m",
        "fuzz.targets",
        target,
        f"-max_total_time={seconds}",
        "-timeout=20",
        "-rss_limit_mb=3072",
        "-max_len=65536",
        f"-artifact_prefix={findings}/",
        "-print_final_stats=1",
        str(corpus),
    ]
    with log.open("w") as out:
        code = subprocess.call(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    text = log.read_text(errors="replace")
    runs = _RUNS.search(text)
    coverage = _CORPUS.findall(text)
    return {
        "target": target,
        "exit": code,
        "seeds": seeds,
        "runs": int(runs.group(1)) if runs else None,
        "seconds": int(runs.group(2)) if runs else None,
        "coverage": int(coverage[-1][0]) if coverage else None,
        "corpus": len(list(corpus.iterdir())),
        "findings": sorted(p.name for p in findings.iterdir()),
        "log": str(log.relative_to(ROOT)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz")
    parser.add_argument("targets", nargs="*", metavar="TARGET", help=f"of {', '.join(TARGETS)}")
    parser.add_argument("--seconds", type=int, default=60, help="per target")
    args = parser.parse_args()
    unknown = set(args.targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets {sorted(unknown)}; choose from {', '.join(TARGETS)}")
    results = [run(target, args.seconds) for target in args.targets or TARGETS]
    print(f"{'target':8} {'exit':>4} {'seeds':>5} {'runs':>9} {'secs':>5} {'cov':>6} "
          f"{'corpus':>6}  findings")  # fmt: skip
    for r in results:
        print(
            f"{r['target']:8} {r['exit']:>4} {r['seeds']:>5} {r['runs'] or '?':>9} "
            f"{r['seconds'] or '?':>5} {r['coverage'] or '?':>6} {r['corpus']:>6}  "
            f"{', '.join(r['findings']) or 'none'}  ({r['log']})"  # type: ignore[arg-type]
        )
    return 0 if all(r["exit"] == 0 and not r["findings"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
