"""Python handlers for the example definitions (this directory is on the import path)."""

from __future__ import annotations

from servicegate.actions import ActionResult


def risk_score(ctx):
    """Sync handler (runs in the thread pool): a toy collection-risk score."""
    body = ctx.body or {}
    balance = float(body.get("balance", 0))
    days_late = int(body.get("days_late", 0))
    score = min(100, round(balance / 100 + days_late * 1.5))
    return {"score": score, "band": "high" if score >= 60 else "medium" if score >= 30 else "low"}


async def echo(ctx):
    """Async handler returning a full response object."""
    return ActionResult(status=201, headers={"X-Handled-By": "demo_handlers.echo"},
                        body={"received": ctx.body, "query": ctx.query})
