"""A small app that schedules e-mail campaigns, the way one did with node-cron.

Each campaign is a one-off Clocktower job `campaign-<id>` that runs
`campaigns:send_campaign` at its `scheduledAt`. Deleting the campaign cancels
the job; editing `scheduledAt` reschedules it; a campaign whose time passed
while the service was down runs once as soon as it is back.

    python campaigns.py create 42 2026-12-01T09:00:00Z
    python campaigns.py edit 42 2026-12-01T10:30:00Z
    python campaigns.py delete 42
    python campaigns.py status 42

Set CLOCKTOWER_DATABASE to the store the service uses (default: campaigns.db here).
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clocktower.embed import Clocktower

HERE = Path(__file__).resolve().parent


def clocktower() -> Clocktower:
    url = os.environ.get("CLOCKTOWER_DATABASE", f"sqlite:///{HERE / 'campaigns.db'}")
    return Clocktower(url)


def job_id(campaign_id: str) -> str:
    return f"campaign-{campaign_id}"


def create(ct: Clocktower, campaign_id: str, scheduled_at: str) -> str:
    ct.schedule_once(
        job_id(campaign_id),
        at=datetime.fromisoformat(scheduled_at.replace("Z", "+00:00")),
        call="campaigns:send_campaign",  # importable by the service (PYTHONPATH)
        args=[campaign_id],
        timeout="5m",
        retries=2,
    )
    return ct.status(job_id(campaign_id))


def send_campaign(campaign_id: str, ctx: Any = None) -> dict[str, Any]:
    """What the service runs at `scheduledAt`."""
    outbox = Path(os.environ.get("CAMPAIGNS_OUTBOX", HERE / "outbox.jsonl"))
    record = {
        "campaign": campaign_id,
        "scheduled_for": ctx.scheduled_for.isoformat() if ctx else None,
        "sent_at": datetime.now(UTC).isoformat(),
        "idempotency_key": ctx.idempotency_key if ctx else None,
    }
    with outbox.open("a") as f:
        f.write(json.dumps(record) + "\n")
    if ctx is not None:
        ctx.log.info("campaign %s sent", campaign_id)
    return {"recipients": 3, "campaign": campaign_id}


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__)
        return 2
    ct = clocktower()
    try:
        command, campaign_id, *rest = argv[1:]
        if command in ("create", "edit"):
            print(create(ct, campaign_id, rest[0]))
        elif command == "delete":
            ct.cancel(job_id(campaign_id))
            print(ct.status(job_id(campaign_id)))
        elif command == "status":
            print(ct.status(job_id(campaign_id)))
        else:
            print(f"unknown command {command!r}", file=sys.stderr)
            return 2
        return 0
    finally:
        ct.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
