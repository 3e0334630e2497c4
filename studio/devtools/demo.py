"""Demo data: agents in each mode, registered people, mismatched user_ids, memories and sessions.

Idempotent: agents and people are found by slug and email, runtime rows carry ids derived
from their content, so running it again adds nothing and leaves an operator's toggles alone.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from agents.memory_settings import MemorySettings
from agents.models import Agent
from memories import runtime
from memories.models import EndUser, Memory, Run, RuntimeSession
from memories.runtime.schema import ensure_runtime_tables

NAMESPACE = uuid.UUID("6f1c8a52-6d4e-4b7a-9d61-2a4f7c3e9b10")
DAY = 86_400

AGENTS = [
    dict(
        slug="support",
        name="Support Assistant",
        db_schema="agent_support",
        user_id_kind="email",
        description="Answers billing and product questions for customers.",
        settings=MemorySettings(
            session_storage=True,
            num_history_runs=4,
            user_memories=True,
            session_summaries=True,
            max_tool_calls_from_history=3,
        ),
    ),
    dict(
        slug="onboarding",
        name="Onboarding Coach",
        db_schema="agent_onboarding",
        user_id_kind="id",
        description="Guides new customers through their first weeks.",
        settings=MemorySettings(
            session_storage=True,
            num_history_runs=3,
            agentic_memory=True,
            compress_tool_results_threshold=4,
        ),
    ),
    dict(
        slug="sales",
        name="Sales Copilot",
        db_schema="agent_sales",
        user_id_kind="email",
        description="Drafts follow-ups for the sales team; sessions only, no memories.",
        settings=MemorySettings(session_storage=True, num_history_runs=5),
    ),
    dict(
        slug="research",
        name="Research Bot",
        db_schema="agent_research",
        user_id_kind="email",
        description="A new agent that has not run yet.",
        settings=MemorySettings(),
    ),
]

PEOPLE = [
    dict(
        email="ann@example.com",
        external_id="u_1001",
        first_name="Ann",
        last_name="Lee",
        timezone="Europe/Berlin",
        additional_attributes={"plan": "business", "company": "Lee & Partners"},
    ),
    dict(
        email="bob@example.com",
        external_id="u_1002",
        first_name="Bob",
        last_name="Stone",
        timezone="America/New_York",
        additional_attributes={"plan": "starter"},
    ),
    dict(
        email="chen@example.com",
        external_id="u_1003",
        first_name="Chen",
        last_name="Wei",
        timezone="Asia/Shanghai",
    ),
    dict(
        email="jürgen@example.de",
        external_id="u_1004",
        first_name="Jürgen",
        last_name="Groß",
        timezone="Europe/Vienna",
    ),
    dict(
        email="dana@example.com",
        external_id="",
        first_name="Dana",
        last_name="Ruiz",
        timezone="America/Mexico_City",
    ),
]


@dataclass(frozen=True)
class Fact:
    text: str
    topics: tuple[str, ...] = ()
    input: str = ""
    days_ago: int = 1


FACTS: dict[str, dict[str, list[Fact]]] = {
    "support": {
        "ann@example.com": [
            Fact(
                "Prefers concise answers.",
                ("preferences", "style"),
                "Please keep it short, I'm busy.",
                60,
            ),
            Fact(
                "Renewal is in November.",
                ("billing", "renewal"),
                "Our renewal comes up in November.",
                45,
            ),
            Fact("Works at Lee & Partners, a 40-person law firm.", ("work",), "", 44),
            Fact(
                "Uses the Business plan with 12 seats.",
                ("billing", "plan"),
                "We have twelve seats on Business.",
                30,
            ),
            Fact("Wants invoices sent to accounts@leepartners.example.", ("billing",), "", 20),
            Fact("Is evaluating SSO with Okta.", ("security", "sso"), "Do you support Okta?", 9),
            Fact(
                "Timezone is Berlin; prefers calls after 14:00.",
                ("preferences", "scheduling"),
                "",
                3,
            ),
            Fact(
                "Her password is Tulip-2024! (she typed it in chat)",
                ("security",),
                "my password is Tulip-2024!",
                2,
            ),
        ],
        "bob@example.com": [
            Fact("Runs a two-person design studio.", ("work",), "", 70),
            Fact(
                "Asked twice about the student discount.",
                ("billing",),
                "Is there a student discount?",
                12,
            ),
            Fact(
                "Likes step-by-step instructions with screenshots.", ("preferences", "style"), "", 5
            ),
        ],
        "jürgen@example.de": [
            Fact(
                "Schreibt lieber auf Deutsch.",
                ("preferences", "language"),
                "Können wir Deutsch sprechen?",
                15,
            ),
            Fact(
                "Card on file ends in 4242; full number 4242 4242 4242 4242 was pasted in chat.",
                ("billing",),
                "",
                4,
            ),
        ],
        # Keyed by an alias and by a different casing: neither reaches the registered person.
        "ann.lee@example.com": [Fact("Prefers email over phone.", ("preferences",), "", 25)],
        "Bob@Example.com": [Fact("Is on the starter plan.", ("billing",), "", 8)],
        "guest-7f3a": [
            Fact("Asked about GDPR data export.", ("privacy",), "How do I export my data?", 1)
        ],
    },
    "onboarding": {
        "u_1001": [
            Fact("Completed the workspace setup checklist.", ("progress",), "", 20),
            Fact("Invited 11 teammates in week one.", ("progress", "team"), "", 18),
            Fact(
                "Struggles with the permissions model.",
                ("blockers",),
                "Why can't Tom see the folder?",
                6,
            ),
        ],
        "u_1003": [
            Fact("Imports data from a legacy CRM.", ("migration",), "", 10),
            Fact("Prefers video walkthroughs.", ("preferences",), "", 2),
        ],
        # An email where this agent keys by id: the classic scoping mistake.
        "chen@example.com": [
            Fact("Wants a Chinese-language onboarding guide.", ("preferences", "language"), "", 7)
        ],
    },
}

CONVERSATIONS: dict[str, dict[str, list[list[tuple[str, str]]]]] = {
    "support": {
        "ann@example.com": [
            [
                ("user", "Hi, when does our renewal come up?"),
                ("assistant", "Your Business plan renews in November."),
            ],
            [
                ("user", "Do you support Okta for SSO?"),
                ("assistant", "Yes: SSO with Okta is on the Business plan. Want the setup guide?"),
                ("user", "Yes please, short version."),
                (
                    "assistant",
                    "1. Create an app in Okta. 2. Paste the metadata URL in Settings → SSO. Done.",
                ),
            ],
        ],
        "bob@example.com": [
            [
                ("user", "Is there a student discount?"),
                ("assistant", "There is: 50% off with a valid student email."),
            ]
        ],
        "guest-7f3a": [
            [
                ("user", "How do I export my data?"),
                ("assistant", "Settings → Privacy → Export gives you a ZIP within an hour."),
            ]
        ],
    },
    "onboarding": {
        "u_1001": [
            [
                ("user", "Why can't Tom see the folder?"),
                ("assistant", "Folders inherit workspace roles; give Tom the Member role."),
            ]
        ],
    },
    "sales": {
        "ann@example.com": [
            [
                ("user", "Draft a follow-up for Lee & Partners."),
                ("assistant", "Hi Ann, thanks for the call today…"),
            ]
        ],
        "chen@example.com": [
            [
                ("user", "Summarise the Wei account."),
                ("assistant", "Chen's team is migrating from a legacy CRM."),
            ]
        ],
    },
}


def _stable_id(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


def _ann_extra_facts() -> list[Fact]:
    """Enough memories on one user to show pagination and the cost of a long memory list."""
    subjects = [
        "dashboard exports",
        "the API rate limit",
        "weekly reports",
        "the mobile app",
        "audit logs",
        "two-factor login",
        "CSV imports",
        "the Slack integration",
        "custom roles",
        "data retention",
    ]
    return [
        Fact(
            f"Asked about {subject} ({n}).",
            ("product", "questions"),
            f"How does {subject} work?",
            80 - n,
        )
        for n, subject in enumerate(subjects * 5, start=1)
    ]


def seed() -> dict[str, int]:
    now = int(time.time())
    counts = {"agents": 0, "people": 0, "memories": 0, "sessions": 0}
    for person in PEOPLE:
        _, created = EndUser.objects.get_or_create(email=person["email"], defaults=person)
        counts["people"] += created
    for spec in AGENTS:
        spec = dict(spec)
        settings = spec.pop("settings")
        agent, created = Agent.objects.get_or_create(
            slug=spec["slug"], defaults={**spec, "agno_settings": settings.to_json()}
        )
        counts["agents"] += created
        facts = FACTS.get(agent.slug, {})
        conversations = CONVERSATIONS.get(agent.slug, {})
        if not facts and not conversations:
            continue  # an agent that never ran has no runtime tables
        ensure_runtime_tables(agent)
        if agent.slug == "support":
            facts = {**facts, "ann@example.com": facts["ann@example.com"] + _ann_extra_facts()}
        with runtime.in_agent_schema(agent):
            memories = [
                Memory(
                    memory_id=_stable_id(agent.slug, user_id, fact.text),
                    memory=fact.text,
                    topics=list(fact.topics) or None,
                    input=fact.input or None,
                    user_id=user_id,
                    agent_id=agent.slug,
                    created_at=now - fact.days_ago * DAY,
                    updated_at=now - fact.days_ago * DAY + 3600,
                )
                for user_id, user_facts in facts.items()
                for fact in user_facts
            ]
            known = set(
                Memory.objects.filter(memory_id__in=[m.memory_id for m in memories]).values_list(
                    "memory_id", flat=True
                )
            )
            new_memories = [m for m in memories if m.memory_id not in known]
            Memory.objects.bulk_create(new_memories)
            counts["memories"] += len(new_memories)
            sessions, runs = _sessions(agent, conversations, now)
            known = set(
                RuntimeSession.objects.filter(
                    session_id__in=[s.session_id for s in sessions]
                ).values_list("session_id", flat=True)
            )
            new_ids = {s.session_id for s in sessions} - known
            RuntimeSession.objects.bulk_create([s for s in sessions if s.session_id in new_ids])
            Run.objects.bulk_create([r for r in runs if r.session_id in new_ids])
            counts["sessions"] += len(new_ids)
    return counts


def _sessions(
    agent: Agent, conversations: dict, now: int
) -> tuple[list[RuntimeSession], list[Run]]:
    sessions, runs = [], []
    for user_id, talks in conversations.items():
        for number, talk in enumerate(talks):
            started = now - (len(talks) - number) * 3 * DAY
            session_id = _stable_id(agent.slug, user_id, "session", str(number))
            sessions.append(
                RuntimeSession(
                    session_id=session_id,
                    session_type="agent",
                    agent_id=agent.slug,
                    user_id=user_id,
                    session_data={"session_state": {}},
                    agent_data={"agent_id": agent.slug, "name": agent.name},
                    summary={"summary": f"{talk[0][1]} — answered.", "topics": []}
                    if len(talk) > 2
                    else None,
                    created_at=started,
                    updated_at=started + 60 * len(talk),
                )
            )
            for index in range(0, len(talk), 2):
                run_id = _stable_id(session_id, "run", str(index))
                stamp = started + 60 * index
                messages = [
                    {
                        "id": _stable_id(run_id, str(i)),
                        "role": role,
                        "content": content,
                        "created_at": stamp + i,
                    }
                    for i, (role, content) in enumerate(talk[index : index + 2])
                ]
                runs.append(
                    Run(
                        run_id=run_id,
                        session_id=session_id,
                        run_type="agent",
                        agent_id=agent.slug,
                        user_id=user_id,
                        status="COMPLETED",
                        run_index=index // 2,
                        created_at=stamp,
                        updated_at=stamp + 2,
                        run_data={
                            "run_id": run_id,
                            "session_id": session_id,
                            "agent_id": agent.slug,
                            "user_id": user_id,
                            "status": "COMPLETED",
                            "content": messages[-1]["content"],
                            "messages": messages,
                            "created_at": stamp,
                            "content_type": "str",
                        },
                    )
                )
    return sessions, runs
