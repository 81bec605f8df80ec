"""Run inside `manage.py shell -c` by bench.common.create_people: creates the benchmark's people, makes each pair
mutual contacts with a conversation (through the actions), and prints one JSON line with a logged-in session
key per person (and, when asked, an API token per person), and the limits bench/settings.py lifted.

Expects SPEC (a JSON string) to be defined before this code:
{"prefix": str, "pairs": int, "idle": int, "tokens": bool (optional)}.
People get no usable password (nobody logs in with one); their sessions are made the way django.contrib.auth's
login() makes them, which skips a password hash per person (Argon2, ~0.1 s each) and the sign-up rate limit.
Their API tokens come from accounts.tokens.issue_token, as POST /api/v1/token would issue them.
"""

import json
import uuid
from importlib import import_module

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

from accounts import actions
from accounts.models import User
from accounts.tokens import issue_token
from chat import actions as chat

spec = json.loads(SPEC)  # noqa: F821  (defined by the caller, see the docstring)
store = import_module(settings.SESSION_ENGINE).SessionStore


def person(username):
    user = User.objects.create_user(username, f"{username}@bench.invalid", None)
    session = store()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    info = {"jid": user.jid, "session": session.session_key}
    if spec.get("tokens"):
        info["token"] = issue_token(user, "bench")[1]
    return user, info


pairs = []
for n in range(spec["pairs"]):
    sender, sender_info = person(f"{spec['prefix']}s{n}")
    receiver, receiver_info = person(f"{spec['prefix']}r{n}")
    actions.request_subscription(sender, receiver.jid)
    actions.accept_subscription(receiver, sender.jid)
    # Their conversation, opened by a first message (seq 1): the benchmark's tabs show it, as a chat window would.
    first = chat.send_message(sender, to=receiver.jid, body="hello", client_id=uuid.uuid4())
    sender_info["conversation"] = receiver_info["conversation"] = first.conversation_id
    pairs.append([sender_info, receiver_info])
idle = [person(f"{spec['prefix']}i{n}")[1] for n in range(spec["idle"])]
# What bench/settings.py lifted, as the running settings have it: printed by the benchmarks with their figures.
lifted = [what for name, what in getattr(settings, "BENCH_LIFTED_LIMITS", {}).items() if hasattr(settings, name)]
print("BENCH-USERS " + json.dumps({"pairs": pairs, "idle": idle, "lifted": lifted}))
