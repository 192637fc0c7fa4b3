"""The local API's data: 10 users, 100 posts, 500 comments, the same on every machine."""

from __future__ import annotations

import random

N_USERS, POSTS_PER_USER, COMMENTS_PER_POST = 10, 10, 5

_FIRST = ["Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "Guido", "Katherine", "Linus"]
_LAST = ["Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Rossum", "Johnson", "Torvalds"]
_WORDS = ("future pool thread process worker queue lock result callback timeout cancel executor "
          "schedule wait map gather parallel concurrent task batch pipe signal shared memory").split()


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(n))


def _build():
    rng = random.Random(1234)
    users = []
    for i in range(N_USERS):
        uid = i + 1
        first, last = _FIRST[i], _LAST[i]
        users.append({
            "id": uid, "name": f"{first} {last}", "username": first.lower(),
            "email": f"{first.lower()}@example.org",
            "address": {"city": rng.choice(["Leeds", "Lyon", "Lagos", "Lima", "Lund"])},
        })
    posts, comments = [], []
    for uid in range(1, N_USERS + 1):
        for _ in range(POSTS_PER_USER):
            pid = len(posts) + 1
            posts.append({"userId": uid, "id": pid, "title": _sentence(rng, 4),
                          "body": _sentence(rng, 20)})
            for _ in range(COMMENTS_PER_POST):
                cid = len(comments) + 1
                commenter = rng.choice(users)
                comments.append({"postId": pid, "id": cid, "name": _sentence(rng, 3),
                                 "email": commenter["email"], "body": _sentence(rng, 12)})
    return users, posts, comments


USERS, POSTS, COMMENTS = _build()
_TABLES = {"users": USERS, "posts": POSTS, "comments": COMMENTS}


def route(segs: list[str], query: dict[str, str]) -> tuple[int, object]:
    """Answer a GET on path segments ``segs`` with query ``query``: ``(status, json_body)``."""
    if not segs or segs[0] not in _TABLES:
        return 404, {"error": f"no such resource: /{'/'.join(segs)}"}
    table = _TABLES[segs[0]]
    if len(segs) == 1:
        rows = table
        for key, value in query.items():
            if key in ("userId", "postId", "id"):
                if not value.isdigit():
                    return 400, {"error": f"{key} must be an integer, got {value!r}"}
                rows = [r for r in rows if r.get(key) == int(value)]
        return 200, rows
    if not segs[1].isdigit():
        return 400, {"error": f"id must be an integer, got {segs[1]!r}"}
    ident = int(segs[1])
    if not 1 <= ident <= len(table):
        return 404, {"error": f"{segs[0]} {ident} not found"}
    row = table[ident - 1]
    if len(segs) == 2:
        return 200, row
    if len(segs) == 3 and segs[0] == "users" and segs[2] == "posts":
        return 200, [p for p in POSTS if p["userId"] == ident]
    if len(segs) == 3 and segs[0] == "posts" and segs[2] == "comments":
        return 200, [c for c in COMMENTS if c["postId"] == ident]
    return 404, {"error": f"no such resource: /{'/'.join(segs)}"}
