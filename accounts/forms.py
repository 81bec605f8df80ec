"""Forms for the profile and account pages; they only parse input, the actions do the rest."""

from __future__ import annotations

from django import forms
from django.conf import settings

from accounts.actions.profile import DISPLAY_NAME_MAX, IDLE_MINUTES_RANGE, STATUS_MESSAGE_MAX


class ProfileForm(forms.Form):
    display_name = forms.CharField(
        label="Display name",
        max_length=DISPLAY_NAME_MAX,
        required=False,
        help_text="How people see you. Leave empty to show your username.",
    )
    status_message = forms.CharField(
        label="Status message",
        max_length=STATUS_MESSAGE_MAX,
        required=False,
        help_text="A short line your contacts see next to your name, like “at lunch”.",
    )


class PrivacyForm(forms.Form):
    show_last_seen = forms.BooleanField(label="Show my contacts when I was last online", required=False)
    directory_visible = forms.BooleanField(
        label="Let people on this server find me by name or username", required=False
    )
    send_read_markers = forms.BooleanField(label="Tell people when I have read their messages", required=False)
    send_typing = forms.BooleanField(label="Show people when I am typing", required=False)
    email_missed_messages = forms.BooleanField(
        label="Email me about messages I have not read for a while", required=False
    )
    idle_away_minutes = forms.IntegerField(
        label="Show me as away after this many idle minutes",
        min_value=IDLE_MINUTES_RANGE[0],
        max_value=IDLE_MINUTES_RANGE[1],
    )


class AvatarForm(forms.Form):
    avatar = forms.FileField(
        label="Avatar",
        help_text=f"PNG, JPEG, GIF or WebP, up to {settings.AVATAR_MAX_BYTES // (1024 * 1024)} MB.",
        widget=forms.ClearableFileInput(attrs={"accept": "image/png,image/jpeg,image/gif,image/webp"}),
    )


class DeleteAccountForm(forms.Form):
    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Deleting your account removes your profile, contacts and messages. This cannot be undone.",
    )

    def __init__(self, *args: object, user: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.user = user

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):  # type: ignore[attr-defined]
            raise forms.ValidationError("That password is not correct.", code="wrong_password")
        return password
