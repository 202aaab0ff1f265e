from __future__ import annotations

import hashlib

import pytest

from voxline.telephony.sip.digest import (
    DigestChallenge,
    DigestError,
    authorization,
    parse_auth_params,
    parse_challenge,
)

RFC2617 = (
    'Digest realm="testrealm@host.com", qop="auth,auth-int", '
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)
RFC7616 = (
    'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, '
    'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
    'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
)
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"


def test_rfc2617_worked_example() -> None:
    challenge = parse_challenge(RFC2617)
    assert challenge == DigestChallenge(
        "testrealm@host.com",
        "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        "5ccc069c403ebaf9f0171e9517f40e41",
        "MD5",
        ["auth", "auth-int"],
        False,
    )
    value = authorization(
        challenge,
        method="GET",
        uri="/dir/index.html",
        username="Mufasa",
        password="Circle Of Life",
        cnonce="0a4f113b",
    )
    params = parse_auth_params(value.removeprefix("Digest "))
    assert params["response"] == "6629fae49393a05397450978507c4ef1"
    assert params["nc"] == "00000001" and params["qop"] == "auth" and params["cnonce"] == "0a4f113b"
    assert params["opaque"] == "5ccc069c403ebaf9f0171e9517f40e41" and params["uri"] == "/dir/index.html"


def test_rfc7616_sha256_example() -> None:
    challenge = parse_challenge(RFC7616)
    assert challenge.algorithm == "SHA-256"
    value = authorization(
        challenge,
        method="GET",
        uri="/dir/index.html",
        username="Mufasa",
        password="Circle of Life",
        cnonce=RFC7616_CNONCE,
    )
    params = parse_auth_params(value.removeprefix("Digest "))
    assert params["response"] == "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    assert params["algorithm"] == "SHA-256"


def test_rfc7616_md5_example() -> None:
    challenge = parse_challenge(RFC7616.replace("algorithm=SHA-256", "algorithm=MD5"))
    value = authorization(
        challenge,
        method="GET",
        uri="/dir/index.html",
        username="Mufasa",
        password="Circle of Life",
        cnonce=RFC7616_CNONCE,
    )
    assert parse_auth_params(value[7:])["response"] == "8ca523f5e9506fed4657c9700eebdbec"


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def test_no_qop_rfc2069_style() -> None:
    challenge = parse_challenge('Digest realm="asterisk", nonce="1a2b3c"')
    value = authorization(challenge, method="REGISTER", uri="sip:127.0.0.1", username="1001", password="pw")
    params = parse_auth_params(value[7:])
    ha1, ha2 = md5("1001:asterisk:pw"), md5("REGISTER:sip:127.0.0.1")
    assert params["response"] == md5(f"{ha1}:1a2b3c:{ha2}")
    assert "qop" not in params and "nc" not in params and "cnonce" not in params


def test_md5_sess_and_nonce_count() -> None:
    challenge = parse_challenge('Digest realm="r", nonce="n", algorithm=MD5-sess, qop="auth", stale=TRUE')
    assert challenge.stale and challenge.algorithm == "MD5-SESS"
    value = authorization(
        challenge, method="INVITE", uri="sip:a@b", username="u", password="p", nc=2, cnonce="c"
    )
    params = parse_auth_params(value[7:])
    ha1 = md5(f"{md5('u:r:p')}:n:c")
    assert params["response"] == md5(f"{ha1}:n:00000002:c:auth:{md5('INVITE:sip:a@b')}")
    assert params["algorithm"] == "MD5-sess" and params["nc"] == "00000002"


def test_random_cnonce_when_not_given() -> None:
    challenge = parse_challenge(RFC2617)
    first = authorization(challenge, method="GET", uri="/", username="u", password="p")
    second = authorization(challenge, method="GET", uri="/", username="u", password="p")
    assert parse_auth_params(first[7:])["cnonce"] != parse_auth_params(second[7:])["cnonce"]


def test_quoting_of_credentials() -> None:
    challenge = parse_challenge('Digest realm="a \\"quoted\\" realm", nonce="n"')
    assert challenge.realm == 'a "quoted" realm'
    value = authorization(challenge, method="BYE", uri="sip:x@y", username='we"ird\\', password="p")
    params = parse_auth_params(value[7:])
    assert params["username"] == 'we"ird\\' and params["realm"] == 'a "quoted" realm'


@pytest.mark.parametrize(
    "bad",
    [
        'Basic realm="x"',
        "Digest",
        'Digest realm="x"',
        'Digest nonce="n"',
        'Digest realm="x, nonce="n"',
        "Digest realm",
        'Digest r@alm="x", nonce="n"',
    ],
)
def test_bad_challenges(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_challenge(bad)


@pytest.mark.parametrize(
    ("challenge", "kwargs"),
    [
        (DigestChallenge("r", "n", algorithm="SHA-1"), {}),
        (DigestChallenge("r", "n", qop=["auth-int"]), {}),
        (DigestChallenge("r", "n"), {"username": "u\r\nVia: evil"}),
        (DigestChallenge("r", "n"), {"method": "BYE\r\n"}),
        (DigestChallenge("r", "n"), {"nc": 0}),
    ],
)
def test_cannot_answer(challenge: DigestChallenge, kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"method": "INVITE", "uri": "sip:a@b", "username": "u", "password": "p"}
    args.update(kwargs)
    with pytest.raises(DigestError):
        authorization(challenge, **args)  # type: ignore[arg-type]
