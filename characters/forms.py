"""Forms for the character library."""

from __future__ import annotations

from django import forms

from characters.models import Character


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


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


class CharacterForm(forms.ModelForm):
    references = MultipleFileField(
        required=False,
        label="Reference images and clips",
        help_text="JPEG, PNG or WebP images; MP4, MOV or WebM clips up to 30 s. Several at once.",
    )

    class Meta:
        model = Character
        fields = ["name", "handle", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 4})}
        help_texts = {"handle": "Lowercase letters, digits and underscores; used as @handle."}

    def clean_handle(self) -> str:
        return self.cleaned_data["handle"].lower()


class AssetUploadForm(forms.Form):
    references = MultipleFileField(label="Add references")
    label = forms.CharField(max_length=80, required=False, help_text="For example: profile.")


class ShareForm(forms.Form):
    workspace = forms.SlugField(label="Workspace", help_text="The other workspace's short name.")
