"""A forget receipt as a document: what was erased where, when, by whom; never the user_id."""

from __future__ import annotations

from typing import Any

from memories.models import ForgetReceipt

FORMAT = "memory-studio/forget-receipt/1"


def as_json(receipt: ForgetReceipt) -> dict[str, Any]:
    lines = list(receipt.lines.all())
    return {
        "format": FORMAT,
        "receipt": receipt.pk,
        "user": receipt.user_hash,
        "user_hash_method": "HMAC-SHA256 of the user_id, keyed with the studio's secret key "
        "and FORGET_RECEIPT_SALT",
        "forgotten_by": receipt.actor_name,
        "started_at": receipt.created_at.isoformat(),
        "finished_at": receipt.finished_at.isoformat() if receipt.finished_at else None,
        "registry_entry_removed": receipt.registry_entry_removed,
        "aliases_removed": receipt.aliases_removed,
        "agents": [
            {
                "agent": line.agent_slug,
                "erased_at": line.erased_at.isoformat(),
                "memories": line.memories,
                "sessions": line.sessions,
                "runs": line.runs,
                "trashed_memories": line.trashed,
                "jobs_stopped": line.jobs_stopped,
                "export_files_rewritten": line.export_files,
            }
            for line in lines
        ],
        "studio_traces_removed": [
            "token counts",
            "sensitive-data flags",
            "prune candidates",
            "trashed memories",
            "queued token recounts",
            "the user's lines in the agent's export files and queued imports",
            "the user_id in other registrations' aliases and the admin's history",
            "the user_id in audit events, prune criteria and jobs (replaced by the hash)",
            "open moves and imports naming the user (stopped)",
        ],
    }
