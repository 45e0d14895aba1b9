"""The count every fault test ends with: requests lost, Canvas accounts duplicated, links duplicated.

``tally(...)`` reads the portal's database and the simulator's own store (over its control API, not
through the portal's client), returns the figures, prints them, and keeps them for the summary that
``tests/reliability/conftest.py`` prints at the end of the run, so they can be copied into the docs.

- **Requests lost**: submitted link requests that did not end in an expected state, or that the portal
  calls linked while Canvas has no such link (a link that exists only in the portal is lost too).
- **Canvas accounts duplicated**: for each parent email involved, Canvas users beyond the first whose
  login or email is that address.
- **Links duplicated**: ObservationLink rows for the same parent, student and root account beyond the
  first (no test here removes a link, so every row counts), plus observer→student pairs Canvas holds
  more than once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from linking.models import LinkRequest, ObservationLink

TALLIES: list[Tally] = []


@dataclass
class Tally:
    fault: str
    requests: int
    lost: int
    accounts_duplicated: int
    links_duplicated: int
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.fault}: {self.requests} requests, lost {self.lost}, "
            f"Canvas accounts duplicated {self.accounts_duplicated}, links duplicated {self.links_duplicated}"
        )


def tally(
    fault: str,
    sim,
    requests: Iterable[LinkRequest],
    *,
    expected: Iterable[str] = (LinkRequest.State.LINKED,),
    emails: Iterable[str] = (),
) -> Tally:
    """Count what the fault cost; ``emails`` adds parent addresses beyond the requests' own (an import's)."""
    expected = set(expected)
    ids = [request.pk for request in requests]
    rows = {r.pk: r for r in LinkRequest.objects.filter(pk__in=ids).select_related("parent__user", "student")}
    addresses = {address.strip().casefold() for address in emails}
    addresses |= {r.parent.email.strip().casefold() for r in rows.values()}

    accounts: dict[str, list[dict]] = {address: [] for address in addresses}
    for user in sim.users():
        if user["workflow_state"] == "deleted":
            continue
        names = {str(user.get("email") or "").casefold()} | {login["unique_id"].casefold() for login in user["logins"]}
        for address in names & addresses:
            accounts[address].append(user)

    problems = []
    lost = 0
    for pk in ids:
        request = rows.get(pk)
        if request is None or request.state not in expected:
            lost += 1
            problems.append(f"request {pk} is {request.state if request else 'gone'}")
        elif request.state == LinkRequest.State.LINKED:
            observers = accounts[request.parent.email.strip().casefold()]
            observed = {o["student_id"] for user in observers for o in user["observees"]}
            if request.student is None or request.student.canvas_user_id not in observed:
                lost += 1
                problems.append(f"request {pk} is linked in the portal but not in Canvas")

    accounts_duplicated = sum(max(0, len(users) - 1) for users in accounts.values())
    problems += [f"{address} has {len(users)} Canvas accounts" for address, users in accounts.items() if len(users) > 1]

    parent_ids = {r.parent_id for r in rows.values()}
    portal_pairs = Counter(
        ObservationLink.objects.filter(parent_id__in=parent_ids).values_list(
            "parent_id", "student_id", "root_account_id"
        )
    )
    observers = {user["id"]: user for users in accounts.values() for user in users}
    canvas_pairs = Counter(
        (user["id"], o["student_id"], o["root_account_id"]) for user in observers.values() for o in user["observees"]
    )
    links_duplicated = sum(n - 1 for n in portal_pairs.values() if n > 1) + sum(
        n - 1 for n in canvas_pairs.values() if n > 1
    )
    problems += [f"portal link {pair} x{n}" for pair, n in portal_pairs.items() if n > 1]
    problems += [f"Canvas link {pair} x{n}" for pair, n in canvas_pairs.items() if n > 1]

    result = Tally(fault, len(ids), lost, accounts_duplicated, links_duplicated, problems)
    TALLIES.append(result)
    print(result.line())
    return result


def assert_nothing_lost_or_duplicated(result: Tally) -> None:
    assert (result.lost, result.accounts_duplicated, result.links_duplicated) == (0, 0, 0), result.problems
