"""Dialback keys (XEP-0185 as used by XEP-0220), specified by known vectors and by their defining formula."""

import hashlib
import hmac

import pytest

from federation.dialback import derive_secret, dialback_key, verify_key

# XEP-0185 §3's example inputs. The key was computed with Prosody 0.12's own util.hashes, exactly as its
# mod_dialback does: sha256_hmac(sha256_hash(secret, true), to .. ' ' .. from .. ' ' .. id, true).
SECRET = "s3cr3tf0rd14lb4ck"
RECEIVING, ORIGINATING, STREAM_ID = "example.net", "example.org", "D60000229F"
PROSODY_KEY = "787d747fddd82406a36c193fd1437027b163c5f9f787a2b77c30d15409c34aa3"


def test_key_matches_the_one_prosody_computes() -> None:
    key = dialback_key(SECRET, receiving=RECEIVING, originating=ORIGINATING, stream_id=STREAM_ID)

    assert key == PROSODY_KEY


def test_key_is_hmac_sha256_keyed_with_the_hex_sha256_of_the_secret() -> None:
    hashed_secret = hashlib.sha256(b"another secret").hexdigest().encode()
    by_hand = hmac.new(hashed_secret, b"imweb.localhost prosody.localhost 8793ab", hashlib.sha256).hexdigest()

    key = dialback_key(
        "another secret", receiving="imweb.localhost", originating="prosody.localhost", stream_id="8793ab"
    )

    assert key == by_hand


@pytest.mark.parametrize(
    "change",
    [
        {"receiving": "example.com"},
        {"originating": "example.com"},
        {"stream_id": "D60000229G"},
    ],
)
def test_every_input_changes_the_key(change: dict[str, str]) -> None:
    inputs = {"receiving": RECEIVING, "originating": ORIGINATING, "stream_id": STREAM_ID} | change

    assert dialback_key(SECRET, **inputs) != PROSODY_KEY


def test_another_secret_gives_another_key() -> None:
    assert dialback_key("not the secret", receiving=RECEIVING, originating=ORIGINATING, stream_id=STREAM_ID) != (
        PROSODY_KEY
    )


def test_verify_accepts_our_key_in_either_case_and_with_surrounding_whitespace() -> None:
    for key in (PROSODY_KEY, PROSODY_KEY.upper(), f"\n  {PROSODY_KEY} \n"):
        assert verify_key(SECRET, key, receiving=RECEIVING, originating=ORIGINATING, stream_id=STREAM_ID)


@pytest.mark.parametrize("key", ["", "0" * 64, PROSODY_KEY[:-1], PROSODY_KEY + "0", "é" * 64])
def test_verify_rejects_any_other_key(key: str) -> None:
    assert not verify_key(SECRET, key, receiving=RECEIVING, originating=ORIGINATING, stream_id=STREAM_ID)


def test_verify_rejects_our_key_for_another_stream() -> None:
    assert not verify_key(SECRET, PROSODY_KEY, receiving=RECEIVING, originating=ORIGINATING, stream_id="other")


def test_derived_secret_is_stable_and_not_the_secret_key_itself() -> None:
    secret_key = "django-insecure-example"

    derived = derive_secret(secret_key)

    assert derived == derive_secret(secret_key)  # every process sharing SECRET_KEY agrees
    assert (
        derived
        == hmac.new(secret_key.encode(), b"imweb: XMPP server dialback secret (XEP-0185)", hashlib.sha256).hexdigest()
    )
    assert secret_key not in derived
    assert derive_secret("another key") != derived
