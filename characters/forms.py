"""Forms for the character library."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.db.models import QuerySet

from characters.models import Character
from studio.models import Workspace


class MultipleFileInput(forms.ClearableFileInput):
    """Several files at once; static/js/library.js turns it into a drop zone with a list."""

    allow_multiple_selected = True

    def get_context(self, name: str, value: object, attrs: dict | None) -> dict:
        # Read at render time, so settings overrides (tests) apply. The script warns
        # about what the server would refuse anyway, before anything is sent.
        attrs = {
            **(attrs or {}),
            "data-dropzone": "",
            "data-max-files": settings.DATA_UPLOAD_MAX_NUMBER_FILES,
            "data-max-bytes": max(
                settings.REFERENCE_IMAGE_MAX_BYTES, settings.REFERENCE_CLIP_MAX_BYTES
            ),
        }
        return super().get_context(name, value, attrs)


class MultipleFileField(forms.FileField):
    """A file field that accepts several files; the content checks happen in the service."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": "image/*,video/*"}))
        # An empty file is refused by the content checks, with a message naming it.
        kwargs.setdefault("allow_empty_file", True)
        super().__init__(*args, **kwargs)

    def clean(self, data: object, initial: object = None) -> list:
        if not data:
            if self.required:
                raise forms.ValidationError(self.error_messages["required"], code="required")
            return []
        files = data if isinstance(data, list | tuple) else [data]
        return [super(MultipleFileField, self).clean(f, initial) for f in files]


def reference_url_field(label: str) -> forms.CharField:
    """A web address to import a reference from; characters.fetch decides what it accepts."""
    return forms.CharField(
        required=False,
        max_length=2000,
        label=label,
        help_text="An image or clip on a public website; Castboard downloads and checks it.",
        widget=forms.URLInput(attrs={"placeholder": "https://…", "inputmode": "url"}),
    )


class CharacterForm(forms.ModelForm):
    references = MultipleFileField(
        required=False,
        label="Reference images and clips",
        help_text="JPEG, PNG or WebP images; MP4, MOV or WebM clips up to 30 s. Several at once.",
    )
    reference_url = reference_url_field("Or import one from a web address")

    class Meta:
        model = Character
        fields = ["name", "handle", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 4})}
        help_texts = {"handle": "Lowercase letters, digits and underscores; used as @handle."}

    def clean_handle(self) -> str:
        return self.cleaned_data["handle"].lower()


class AssetUploadForm(forms.Form):
    # Not required: a web address alone will do, and files refused while streaming
    # never reach the form (the view says why and asks for something to upload).
    references = MultipleFileField(label="Add references", required=False)
    reference_url = reference_url_field("Or import from a web address")
    label = forms.CharField(max_length=80, required=False, help_text="For example: profile.")


class ShareForm(forms.Form):
    """Offer to one of the user's own workspaces (a select) or any workspace by slug.

    A typed slug is never checked against the workspaces here: whether one has it is
    for the service to keep to itself.
    """

    destination = forms.ModelChoiceField(
        queryset=Workspace.objects.none(),
        required=False,
        label="One of your workspaces",
        empty_label="Choose a workspace…",
    )
    workspace = forms.SlugField(
        required=False,
        max_length=60,
        label="Workspace",
        help_text="The other workspace's short name, as in its addresses: /w/short-name/.",
    )

    def __init__(self, *args: object, destinations: QuerySet[Workspace], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        if destinations.exists():
            self.fields["destination"].queryset = destinations
            self.fields["workspace"].label = "Or another workspace's short name"
        else:
            del self.fields["destination"]

    def clean(self) -> dict:
        cleaned = super().clean()
        chosen: Workspace | None = cleaned.get("destination")
        typed: str = cleaned.get("workspace") or ""
        if self.errors:
            return cleaned
        if chosen and typed and chosen.slug != typed.lower():
            raise forms.ValidationError("Choose a workspace or type a short name, not both.")
        if not chosen and not typed:
            if "destination" in self.fields:
                raise forms.ValidationError(
                    "Choose one of your workspaces or type another workspace's short name."
                )
            self.add_error("workspace", forms.Field.default_error_messages["required"])
        cleaned["slug"] = chosen.slug if chosen else typed
        return cleaned

    @property
    def used_field(self) -> str:
        """The field a refusal of the offer belongs to: the one the user filled in."""
        return "destination" if self.cleaned_data.get("destination") else "workspace"
