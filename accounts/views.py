"""Profile and account pages. Each view parses input with a form and calls an action."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts import actions, mfa
from accounts.errors import InvalidAvatar, InvalidProfile
from accounts.forms import AvatarForm, DeleteAccountForm, PrivacyForm, ProfileForm
from accounts.lookups import is_blocked
from accounts.models import User

# Room for the multipart envelope around the file itself.
_MULTIPART_OVERHEAD = 64 * 1024


def _profile_initial(user: User) -> dict[str, object]:
    return {"display_name": user.display_name, "status_message": user.status_message}


def _privacy_form(user: User) -> PrivacyForm:
    return PrivacyForm(
        initial={
            "show_last_seen": user.show_last_seen,
            "directory_visible": user.directory_visible,
            "idle_away_minutes": user.idle_away_minutes,
            "send_read_markers": user.send_read_markers,
            "send_typing": user.send_typing,
            "email_missed_messages": user.email_missed_messages,
        }
    )


def _profile_page(
    request: HttpRequest,
    profile_form: ProfileForm,
    avatar_form: AvatarForm,
    privacy_form: PrivacyForm | None = None,
    status: int = 200,
) -> HttpResponse:
    template = "accounts/_profile_form.html" if request.htmx and request.method == "POST" else "accounts/profile.html"
    context = {
        "form": profile_form,
        "avatar_form": avatar_form,
        "privacy_form": privacy_form or _privacy_form(request.user),
        "two_factor": mfa.two_factor_status(request.user),
    }
    return render(request, template, context, status=status)


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    user = request.user
    if request.method != "POST":
        return _profile_page(request, ProfileForm(initial=_profile_initial(user)), AvatarForm())
    form = ProfileForm(request.POST)
    if form.is_valid():
        try:
            actions.update_profile(
                user,
                display_name=form.cleaned_data["display_name"],
                status_message=form.cleaned_data["status_message"],
            )
        except InvalidProfile as error:
            form.add_error(error.field, str(error))
    if not form.is_valid():
        return _profile_page(request, form, AvatarForm(), status=422 if request.htmx else 200)
    if request.htmx:
        form = ProfileForm(initial=_profile_initial(user))
        response = render(request, "accounts/_profile_form.html", {"form": form, "saved": True})
        # The top bar shows the name and status too; let it refresh itself.
        response["HX-Trigger"] = "profile-changed"
        return response
    messages.success(request, "Your profile was saved.")
    return redirect("profile")


@login_required
@require_POST
def privacy(request: HttpRequest) -> HttpResponse:
    form = PrivacyForm(request.POST)
    if form.is_valid():
        try:
            actions.update_privacy(request.user, **form.cleaned_data)
        except InvalidProfile as error:
            form.add_error(error.field, str(error))
    if not form.is_valid():
        return _profile_page(request, ProfileForm(initial=_profile_initial(request.user)), AvatarForm(), form, 400)
    messages.success(request, "Your privacy settings were saved.")
    return redirect("profile")


@login_required
@require_POST
def upload_avatar(request: HttpRequest) -> HttpResponse:
    initial = _profile_initial(request.user)
    # Refuse an oversized upload from its declared length, before the body is read and spooled to disk.
    declared = int(request.META.get("CONTENT_LENGTH") or 0)
    if declared > settings.AVATAR_MAX_BYTES + _MULTIPART_OVERHEAD:
        avatar_form = AvatarForm(data={})
        avatar_form.is_valid()  # bound and cleaned, so the size error below replaces "this field is required"
        try:
            actions.check_avatar_size(declared)
        except InvalidAvatar as error:
            avatar_form.errors["avatar"] = avatar_form.error_class([str(error)])
        return _profile_page(request, ProfileForm(initial=initial), avatar_form, status=413)
    avatar_form = AvatarForm(request.POST, request.FILES)
    if avatar_form.is_valid():
        try:
            actions.set_avatar(request.user, avatar_form.cleaned_data["avatar"])
        except InvalidAvatar as error:
            avatar_form.add_error("avatar", str(error))
    if not avatar_form.is_valid():
        return _profile_page(request, ProfileForm(initial=initial), avatar_form, status=400)
    messages.success(request, "Your avatar was updated.")
    return redirect("profile")


@login_required
@require_POST
def remove_avatar(request: HttpRequest) -> HttpResponse:
    actions.remove_avatar(request.user)
    messages.success(request, "Your avatar was removed.")
    return redirect("profile")


@login_required
def avatar(request: HttpRequest, username: str) -> FileResponse:
    """A person's avatar, for signed-in people they do not block: to someone they block the answer is the same
    404 as for an account that does not exist (or has no avatar), so the URL does not tell that they exist."""
    person = User.objects.filter(username=username, is_active=True).first()
    viewer = request.user
    if person is None or not person.avatar:
        raise Http404("No avatar")
    if person.pk != viewer.pk and is_blocked(person, viewer.jid):
        raise Http404("No avatar")
    try:
        handle = person.avatar.open("rb")
    except FileNotFoundError:
        raise Http404("No avatar") from None
    response = FileResponse(handle, content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@login_required
def delete_account(request: HttpRequest) -> HttpResponse:
    form = DeleteAccountForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        user = request.user
        logout(request)
        actions.delete_account(user)
        messages.success(request, "Your account and everything in it were deleted.")
        return redirect("home")
    return render(request, "accounts/delete.html", {"form": form})


@login_required
@require_POST
def sign_out_session(request: HttpRequest, session_id: int) -> HttpResponse:
    """Sign out one of the person's other signed-in sessions (from the sessions page, a plain form)."""
    if mfa.end_session(request, session_id):
        messages.success(request, "That session is signed out.")
    else:
        messages.error(request, "That session is already signed out.")
    return redirect("usersessions_list")
