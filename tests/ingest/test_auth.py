import pytest

from controller import errors
from controller.ingest import auth

BODY = b'{"version":"4"}'


def test_stock_alertmanager_bearer_token_is_accepted():
    """`Authorization: Bearer <token>`, as Alertmanager's http_config sends it, authenticates."""
    creds = auth.Credentials(bearer_token="t0ken")
    auth.verify(creds, headers={"authorization": "Bearer t0ken"}, body=BODY)


@pytest.mark.parametrize(
    "header", [{}, {"authorization": "Bearer wrong"}, {"authorization": "Basic dDA="}]
)
def test_missing_or_wrong_bearer_token_is_refused(header):
    """No token, a wrong token, or another scheme is refused."""
    with pytest.raises(errors.AuthError, match="bearer token"):
        auth.verify(auth.Credentials(bearer_token="t0ken"), headers=header, body=BODY)


def test_hmac_signature_over_the_exact_body():
    """A correct HMAC-SHA256 signature authenticates; one over a changed body does not."""
    creds = auth.Credentials(hmac_secret="k3y")
    auth.verify(creds, headers={auth.SIGNATURE_HEADER: auth.sign("k3y", BODY)}, body=BODY)
    with pytest.raises(errors.AuthError, match="signature"):
        auth.verify(
            creds, headers={auth.SIGNATURE_HEADER: auth.sign("k3y", BODY)}, body=BODY + b" "
        )


def test_both_methods_must_pass_when_both_are_configured():
    """With a token and a secret configured, a request with only the token is refused."""
    creds = auth.Credentials(bearer_token="t", hmac_secret="k")
    with pytest.raises(errors.AuthError, match="signature"):
        auth.verify(creds, headers={"authorization": "Bearer t"}, body=BODY)
    auth.verify(
        creds,
        headers={"authorization": "Bearer t", auth.SIGNATURE_HEADER: auth.sign("k", BODY)},
        body=BODY,
    )


def test_an_endpoint_without_credentials_refuses_everything():
    """An unconfigured endpoint never runs open."""
    with pytest.raises(errors.AuthError, match="no credentials configured"):
        auth.verify(auth.Credentials(), headers={"authorization": "Bearer x"}, body=BODY)
