import re

from django import forms


class TokenForm(forms.Form):
    """The six digits an authenticator app shows; spaces (as some apps group them) ignored."""

    token = forms.CharField(
        label="Code from your authenticator app",
        strip=True,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def clean_token(self):
        token = re.sub(r"\s+", "", self.cleaned_data["token"])
        if not re.fullmatch(r"[0-9]{6}", token):
            raise forms.ValidationError("Enter the 6-digit code your authenticator app shows.")
        return token
