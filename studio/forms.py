"""Forms for workspaces, members, series, episodes and scenes."""

from __future__ import annotations

from django import forms

from studio.models import Episode, Role, Scene, Series, Workspace


class WorkspaceForm(forms.ModelForm):
    class Meta:
        model = Workspace
        fields = ["name", "slug"]
        help_texts = {"slug": "Used in addresses, e.g. /w/my-studio/. Lowercase and hyphens."}


class MemberAddForm(forms.Form):
    username_or_email = forms.CharField(label="Username or e-mail", max_length=254)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.EDITOR)


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class SeriesForm(forms.ModelForm):
    class Meta:
        model = Series
        fields = ["title", "logline", "style_guide", "default_size", "default_duration"]
        widgets = {"style_guide": forms.Textarea(attrs={"rows": 4})}


class EpisodeForm(forms.ModelForm):
    number = forms.IntegerField(
        min_value=1, required=False, help_text="Leave empty for the next number."
    )

    class Meta:
        model = Episode
        fields = ["number", "title"]


class SceneForm(forms.ModelForm):
    class Meta:
        model = Scene
        fields = ["title", "prompt", "duration", "size", "notes"]
        widgets = {
            "prompt": forms.Textarea(
                attrs={"rows": 5, "placeholder": "@mina walks into the lighthouse at dusk…"}
            ),
            "notes": forms.Textarea(attrs={"rows": 2}),
        }
        help_texts = {"prompt": "Mention characters as @handle."}


class SceneMoveForm(forms.Form):
    position = forms.IntegerField(min_value=0)
