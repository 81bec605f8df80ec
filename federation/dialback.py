"""Server dialback keys (XEP-0220 with the key generation of XEP-0185): pure functions, no I/O.

Dialback proves that a stream really comes from the domain it claims: the originating server sends a key on its
stream, and the receiving server asks the claimed domain's authoritative server (over a connection of its own,
found through DNS) whether it issued that key. XEP-0185 §3 makes the key a function of a secret only the
authoritative server knows, so it never has to remember the keys it handed out:

    key = HMAC-SHA256(key = hex(SHA-256(secret)), message = "receiving originating stream-id"), in hex

Prosody (`mod_dialback.lua`: `sha256_hmac(sha256_hash(secret, true), to .. ' ' .. from .. ' ' .. id, true)`)
and ejabberd compute exactly this. Every imweb federation process must use the same secret, because the peer's
verify request may reach a different process than the one that sent the key (docs/federation.md §7.5).
"""

import hashlib
import hmac

# A fixed label, so the derived secret is useless for anything but dialback even though it comes from SECRET_KEY.
_SECRET_LABEL = b"imweb: XMPP server dialback secret (XEP-0185)"


def derive_secret(secret_key: str) -> str:
    """A dialback secret derived from Django's SECRET_KEY, for when IMWEB_DIALBACK_SECRET is not set.

    It is an HMAC with a fixed label rather than SECRET_KEY itself, so a leaked dialback secret reveals nothing
    about the key that signs sessions, and every process that shares SECRET_KEY derives the same value.
    """
    return hmac.new(secret_key.encode(), _SECRET_LABEL, hashlib.sha256).hexdigest()


def dialback_key(secret: str, *, receiving: str, originating: str, stream_id: str) -> str:
    """The XEP-0185 key that the `originating` domain sends on the stream `stream_id` it opened to `receiving`.

    `stream_id` is the id the receiving server gave that stream in its response header (after STARTTLS, the
    id of the restarted stream: RFC 6120 §5.4.3.3).
    """
    hashed_secret = hashlib.sha256(secret.encode()).hexdigest()
    message = f"{receiving} {originating} {stream_id}"
    return hmac.new(hashed_secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def verify_key(secret: str, key: str, *, receiving: str, originating: str, stream_id: str) -> bool:
    """Whether `key` is the one we (as `originating`) would have issued: the authoritative check, XEP-0220 §2.1.3.

    Compared in constant time, so a peer cannot learn a valid key one character at a time.
    """
    expected = dialback_key(secret, receiving=receiving, originating=originating, stream_id=stream_id)
    return hmac.compare_digest(expected.encode(), key.strip().lower().encode())
