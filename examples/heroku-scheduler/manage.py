#!/usr/bin/env python3
"""A stand-in for a Django app's maintenance commands, as Heroku Scheduler ran them.

    python manage.py cleanup_deleted_prompts [--dry-run]
    python manage.py detect_orphaned_files --days 7 [--dry-run]
    python manage.py weekly_summary [--dry-run]

DRY_RUN=1 in the environment means --dry-run.

The app's data lives in $APP_DATA (prompts.json and uploads/). Each command
writes a report into $CLOCKTOWER_ARTIFACTS, which Clocktower keeps with the
run, and works on the period that ends at $CLOCKTOWER_SCHEDULED_FOR, so a run
for a past fire time (a backfill) recovers exactly that period.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path


def data_dir() -> Path:
    return Path(os.environ.get("APP_DATA", Path(__file__).with_name("data")))


def fire_time() -> datetime:
    """The instant this run serves: the fire time, not the wall clock."""
    value = os.environ.get("CLOCKTOWER_SCHEDULED_FOR")
    if not value:
        return datetime.now(UTC)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def load_prompts() -> list[dict[str, str]]:
    path = data_dir() / "prompts.json"
    return json.loads(path.read_text()) if path.exists() else []


def write_report(name: str, report: dict[str, object]) -> None:
    folder = os.environ.get("CLOCKTOWER_ARTIFACTS")
    text = json.dumps(report, indent=2, sort_keys=True)
    if folder:
        Path(folder, name).write_text(text + "\n")
    print(text)


def cleanup_deleted_prompts(args: argparse.Namespace) -> int:
    prompts = load_prompts()
    cutoff = fire_time() - timedelta(days=30)
    doomed = [
        p
        for p in prompts
        if p.get("deleted_at") and datetime.fromisoformat(p["deleted_at"]) < cutoff
    ]
    kept = [p for p in prompts if p not in doomed]
    for index, prompt in enumerate(doomed, 1):
        print(f"::progress {index}/{len(doomed)}")
        print(f"{'would delete' if args.dry_run else 'deleted'} prompt {prompt['id']}")
    if not args.dry_run:
        (data_dir() / "prompts.json").write_text(json.dumps(kept, indent=2))
    write_report(
        "cleanup.json",
        {
            "deleted": len(doomed),
            "kept": len(kept),
            "dry_run": args.dry_run,
            "for": fire_time().isoformat(),
        },
    )
    return 0


def detect_orphaned_files(args: argparse.Namespace) -> int:
    uploads = data_dir() / "uploads"
    referenced = {p.get("file") for p in load_prompts()}
    cutoff = (fire_time() - timedelta(days=args.days)).timestamp()
    orphans = (
        sorted(
            f.name
            for f in uploads.glob("*")
            if f.is_file() and f.name not in referenced and f.stat().st_mtime < cutoff
        )
        if uploads.is_dir()
        else []
    )
    for name in orphans:
        print(f"orphan: {name}")
        if not args.dry_run:
            (uploads / name).unlink()
    write_report(
        f"orphans-{args.days}d.json",
        {"days": args.days, "orphans": orphans, "dry_run": args.dry_run},
    )
    return 0


def weekly_summary(args: argparse.Namespace) -> int:
    end = fire_time()
    start = end - timedelta(days=7)
    prompts = load_prompts()
    created = [p for p in prompts if start <= datetime.fromisoformat(p["created_at"]) < end]
    report = {
        "week_start": start.date().isoformat(),
        "week_end": end.date().isoformat(),
        "prompts_created": len(created),
        "dry_run": args.dry_run,
    }
    write_report(f"summary-{end:%Y-%m-%d}.json", report)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="manage.py")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("cleanup_deleted_prompts", "detect_orphaned_files", "weekly_summary"):
        cmd = sub.add_parser(name)
        cmd.add_argument("--dry-run", action="store_true")
        if name == "detect_orphaned_files":
            cmd.add_argument("--days", type=int, required=True)
    args = parser.parse_args()
    # `clocktower trigger JOB --env DRY_RUN=1` tries a job without changing anything.
    args.dry_run = args.dry_run or os.environ.get("DRY_RUN", "") not in ("", "0")
    handler = {
        "cleanup_deleted_prompts": cleanup_deleted_prompts,
        "detect_orphaned_files": detect_orphaned_files,
        "weekly_summary": weekly_summary,
    }[args.command]
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
