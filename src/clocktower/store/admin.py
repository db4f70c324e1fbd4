"""Nodes, the audit trail, API tokens and retention."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update

from clocktower.store.db import Database
from clocktower.store.schema import artifacts, events, nodes, run_output, runs, tokens

FINISHED = ("succeeded", "failed", "timed_out", "cancelled", "lost", "skipped", "missed")


@dataclass(frozen=True, slots=True)
class NodeInfo:
    id: str
    host: str
    pid: int
    version: str
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    at: datetime
    actor: str
    action: str
    job_id: str | None
    run_id: int | None
    detail: Any


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: int
    name: str
    scope: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class AdminQueries:
    db: Database

    # ------------------------------------------------------------------ nodes

    def heartbeat(self, node: NodeInfo) -> None:
        values = {
            "host": node.host,
            "pid": node.pid,
            "version": node.version,
            "started_at": node.started_at,
            "heartbeat_at": node.heartbeat_at,
            "stopped_at": node.stopped_at,
        }
        stmt = self.db.insert(nodes).values(id=node.id, **values)
        upsert = stmt.on_conflict_do_update(index_elements=["id"], set_=values)
        if not self.db.write_unseen(upsert):
            with self.db.write() as conn:
                conn.execute(upsert)

    def list_nodes(self) -> list[NodeInfo]:
        with self.db.read() as conn:
            rows = conn.execute(select(nodes).order_by(nodes.c.heartbeat_at.desc())).mappings()
            return [NodeInfo(**r) for r in rows]

    def ping(self) -> None:
        """Raise if the store cannot be reached."""
        with self.db.read() as conn:
            conn.execute(select(1)).scalar_one()

    # ------------------------------------------------------------------ events

    def add_event(
        self,
        *,
        at: datetime,
        actor: str,
        action: str,
        job_id: str | None = None,
        run_id: int | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        with self.db.write() as conn:
            conn.execute(
                events.insert().values(
                    at=at,
                    actor=actor,
                    action=action,
                    job_id=job_id,
                    run_id=run_id,
                    detail=dict(detail) if detail else None,
                )
            )

    def list_events(
        self,
        *,
        job_id: str | None = None,
        actions: Sequence[str] | None = None,
        limit: int = 100,
    ) -> list[Event]:
        """The newest events first, of one job and of some actions if asked."""
        query = select(events).order_by(events.c.id.desc()).limit(limit)
        if job_id is not None:
            query = query.where(events.c.job_id == job_id)
        if actions is not None:
            query = query.where(events.c.action.in_(actions))
        with self.db.read() as conn:
            return [Event(**r) for r in conn.execute(query).mappings()]

    # ------------------------------------------------------------------ tokens

    def add_token(self, *, name: str, digest: str, scope: str, now: datetime) -> None:
        with self.db.write() as conn:
            conn.execute(
                tokens.insert().values(name=name, hash=digest, scope=scope, created_at=now)
            )

    def token_by_hash(self, digest: str) -> TokenInfo | None:
        query = select(tokens).where(tokens.c.hash == digest, tokens.c.revoked_at.is_(None))
        with self.db.read() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            return None
        return TokenInfo(**{k: v for k, v in row.items() if k != "hash"})

    def list_tokens(self) -> list[TokenInfo]:
        with self.db.read() as conn:
            rows = conn.execute(select(tokens).order_by(tokens.c.id)).mappings()
            return [TokenInfo(**{k: v for k, v in r.items() if k != "hash"}) for r in rows]

    def revoke_token(self, name: str, *, now: datetime) -> bool:
        with self.db.write() as conn:
            result = conn.execute(
                update(tokens)
                .where(tokens.c.name == name, tokens.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            return result.rowcount > 0

    def touch_token(self, token_id: int, *, now: datetime) -> None:
        with self.db.write() as conn:
            conn.execute(update(tokens).where(tokens.c.id == token_id).values(last_used_at=now))

    # ------------------------------------------------------------------ retention

    def prune(self, *, now: datetime, keep_runs: int, keep_days: float) -> int:
        """Delete finished runs beyond the newest `keep_runs` of each job or older
        than `keep_days`, with their output and artifacts. Returns how many."""
        ranked = (
            select(
                runs.c.id,
                runs.c.finished_at,
                func.row_number()
                .over(partition_by=runs.c.job_id, order_by=runs.c.id.desc())
                .label("rank"),
            )
            .where(runs.c.state.in_(FINISHED))
            .subquery()
        )
        cutoff = now - timedelta(days=keep_days)
        doomed = select(ranked.c.id).where(
            (ranked.c.rank > keep_runs) | (ranked.c.finished_at < cutoff)
        )
        with self.db.write() as conn:
            ids = [row[0] for row in conn.execute(doomed)]
            for start in range(0, len(ids), 500):
                batch = ids[start : start + 500]
                conn.execute(update(runs).where(runs.c.retry_of.in_(batch)).values(retry_of=None))
                conn.execute(delete(run_output).where(run_output.c.run_id.in_(batch)))
                conn.execute(delete(artifacts).where(artifacts.c.run_id.in_(batch)))
                conn.execute(delete(runs).where(runs.c.id.in_(batch)))
            return len(ids)
