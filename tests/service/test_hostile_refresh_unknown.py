"""Issue 19, known items: a refresh whose answer was lost is recorded on the token row.

Under strict rotation the refresh token may have been spent by the lost request, so neither the
account listing nor the service's account status may say ``refreshable`` until a new grant is
stored.
"""

from __future__ import annotations

from tests.service.conftest import ServiceSetup


def test_a_lost_refresh_answer_is_recorded_and_not_shown_as_refreshable(
    service: ServiceSetup,
) -> None:
    from vidauth.store.tokens import REFRESH_OUTCOME_UNKNOWN, TokenSet

    service.connect("u1")
    store = service.ctx.store
    (account,) = store.list_accounts()
    assert account.has_refresh_token and not account.refresh_outcome_unknown
    status = service.api.get("/v1/accounts/u1").json()
    assert status["refreshable"] is True and status["refresh_outcome_unknown"] is False
    # What the token manager records when a refresh was sent and its answer lost.
    store.audit(account.id, REFRESH_OUTCOME_UNKNOWN)
    (account,) = store.list_accounts()
    assert account.refresh_outcome_unknown and not account.has_refresh_token
    status = service.api.get("/v1/accounts/u1").json()
    assert status["refreshable"] is False and status["refresh_outcome_unknown"] is True, status
    # The next grant stored clears it.
    claim = store.claim_refresh(account.id, "me", 30.0, lambda _t, _s: True)
    new = TokenSet(access_token="next-access-0123456789", refresh_token="next-refresh-012345")
    store.finish_refresh(account.id, "me", new, "refreshed")
    assert claim.held
    (account,) = store.list_accounts()
    assert account.has_refresh_token and not account.refresh_outcome_unknown
    status = service.api.get("/v1/accounts/u1").json()
    assert status["refreshable"] is True and status["refresh_outcome_unknown"] is False
