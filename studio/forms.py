"""Forms for workspaces, members, series, episodes and scenes."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from characters.models import Character
from characters.selectors import characters_visible_to
from jobs.models import Budget, ProviderAccount
from studio import dialogue as scene_dialogue
from studio.models import (
    SIZE_CHOICES,
    WEBHOOK_EVENTS,
    Episode,
    Role,
    RoutingPolicy,
    Scene,
    Series,
    Workspace,
)


class ListedChoices(forms.models.ModelChoiceIterator):
    """A model choice field's options from one plain read. Django's own iterator reads them
    through queryset.iterator(), which on PostgreSQL opens a server-side cursor: DECLARE,
    FETCH and CLOSE, three round trips for a workspace's handful of accounts, on every form
    that offers them."""

    def __iter__(self):
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        for obj in self.queryset:
            yield self.choice(obj)


class RoutingFieldsMixin:
    """The routing policy and pinned account of a series or scene, scoped to the workspace."""

    def _set_up_routing(self, workspace: Workspace | None) -> None:
        pinned = self.fields["pinned_account"]
        pinned.iterator = ListedChoices  # before the queryset, which hands the widget its choices
        pinned.queryset = (
            ProviderAccount.objects.filter(workspace=workspace).order_by("name")
            if workspace is not None
            else ProviderAccount.objects.none()
        )
        pinned.empty_label = "None"
        pinned.label = "Pinned provider"

    def _clean_routing(self, cleaned: dict, *, policy: str) -> None:
        if policy == RoutingPolicy.PINNED and not cleaned.get("pinned_account"):
            self.add_error("pinned_account", "Choose the provider account the policy pins to.")


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


class SeriesForm(RoutingFieldsMixin, forms.ModelForm):
    class Meta:
        model = Series
        fields = [
            "title",
            "logline",
            "style_guide",
            "default_size",
            "default_duration",
            "routing_policy",
            "pinned_account",
        ]
        widgets = {"style_guide": forms.Textarea(attrs={"rows": 4})}
        labels = {"routing_policy": "Routing policy"}
        help_texts = {
            "routing_policy": "How each scene's provider is chosen; a scene may choose otherwise."
        }

    def __init__(self, *args: object, workspace: Workspace | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["routing_policy"].required = False  # an old form without it keeps "cost"
        self._set_up_routing(workspace or getattr(self.instance, "workspace", None))

    def clean(self) -> dict:
        cleaned = super().clean()
        cleaned["routing_policy"] = cleaned.get("routing_policy") or RoutingPolicy.COST
        self._clean_routing(cleaned, policy=cleaned["routing_policy"])
        return cleaned


class EpisodeForm(forms.ModelForm):
    number = forms.IntegerField(
        min_value=1, required=False, help_text="Leave empty for the next number."
    )

    class Meta:
        model = Episode
        fields = ["number", "title"]


class SceneForm(RoutingFieldsMixin, forms.ModelForm):
    # Read and saved by studio.dialogue (the view saves it with the scene, or neither).
    dialogue = forms.CharField(
        required=False,
        strip=False,
        max_length=scene_dialogue.MAX_LINES * 1100,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": scene_dialogue.PLACEHOLDER}),
        help_text=scene_dialogue.HELP_TEXT,
    )
    field_order = [
        "title",
        "prompt",
        "dialogue",
        "duration",
        "size",
        "notes",
        "routing_policy",
        "pinned_account",
    ]

    class Meta:
        model = Scene
        fields = [
            "title",
            "prompt",
            "duration",
            "size",
            "notes",
            "routing_policy",
            "pinned_account",
        ]
        widgets = {
            "prompt": forms.Textarea(
                attrs={"rows": 5, "placeholder": "@mina walks into the lighthouse at dusk…"}
            ),
            "notes": forms.Textarea(attrs={"rows": 2}),
        }
        labels = {"routing_policy": "Routing policy"}
        help_texts = {"prompt": "Mention characters as @handle."}

    def __init__(self, *args: object, workspace: Workspace | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        if workspace is None and self.instance.pk:
            workspace = self.instance.episode.series.workspace
        self._set_up_routing(workspace)
        self.fields["routing_policy"].choices = [
            ("", "As the series says"),
            *RoutingPolicy.choices,
        ]
        if self.instance.pk:
            self.fields["dialogue"].initial = scene_dialogue.scene_dialogue_text(self.instance)

    def clean_dialogue(self) -> str | None:
        """The dialogue as typed; None when the form sent none (its lines stay as they are)."""
        if self.add_prefix("dialogue") not in self.data:
            return None
        return self.cleaned_data["dialogue"]

    def clean(self) -> dict:
        cleaned = super().clean()
        self._clean_routing(cleaned, policy=cleaned.get("routing_policy") or "")
        return cleaned


class SceneMoveForm(forms.Form):
    position = forms.IntegerField(min_value=0)


class DeriveForm(forms.Form):
    """A remix (a new prompt over the same video) or an extension (a new segment after it)."""

    prompt = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=32000,
        help_text="What should change (remix) or happen next (extend).",
    )
    seconds = forms.TypedChoiceField(coerce=int, required=False, label="Add")

    def __init__(self, *args: object, kind: str, capabilities: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        if kind == "extend":
            lengths = capabilities.extend_seconds
            self.fields["seconds"].choices = [(s, f"{s} s") for s in lengths]
            self.fields["seconds"].required = True
        else:
            del self.fields["seconds"]


class TakeCharacterForm(forms.Form):
    """A span of a finished take becomes a new character, or a new clip of an existing one."""

    start = forms.DecimalField(min_value=0, max_digits=7, decimal_places=2, label="From (s)")
    end = forms.DecimalField(min_value=0, max_digits=7, decimal_places=2, label="To (s)")
    character = forms.ModelChoiceField(
        queryset=None, required=False, empty_label="A new character…", label="Add to"
    )
    name = forms.CharField(max_length=120, required=False)
    handle = forms.RegexField(
        r"^[A-Za-z0-9_]{2,40}$",
        required=False,
        help_text="Used as @handle.",
        error_messages={"invalid": "A handle is 2 to 40 letters, digits or underscores."},
    )

    def __init__(self, *args: object, workspace: object, **kwargs: object) -> None:
        from characters.models import Character

        super().__init__(*args, **kwargs)
        self.fields["character"].queryset = Character.objects.filter(workspace=workspace).order_by(
            "name"
        )

    def clean(self) -> dict:
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start is not None and end is not None and end <= start:
            self.add_error("end", "The span must end after it starts.")
        if not data.get("character"):
            if not data.get("name"):
                self.add_error("name", "Name the new character, or choose an existing one.")
            if not data.get("handle"):
                self.add_error("handle", "Give the new character a handle, such as keeper.")
        return data


class DollarsField(forms.DecimalField):
    """A dollar amount as people type it: "$1,200.50" is 1200.50."""

    def to_python(self, value: object) -> Decimal | None:
        if isinstance(value, str):
            value = value.strip().removeprefix("$").replace(",", "").strip()
        return super().to_python(value)


class BudgetForm(forms.Form):
    cap = DollarsField(
        label="Cap in dollars",
        min_value=Decimal("0"),
        max_digits=12,
        decimal_places=2,
        # Text, not a number input: what was typed comes back as typed, with our error.
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
    )
    period = forms.ChoiceField(
        label="Counted", choices=Budget.Period.choices, initial=Budget.Period.MONTH, required=False
    )


class ProjectionForm(forms.Form):
    videos = forms.IntegerField(label="Videos a month", min_value=1, max_value=100_000, initial=20)
    seconds = forms.IntegerField(label="Seconds each", min_value=1, max_value=60, initial=8)
    size = forms.ChoiceField(label="Size", choices=SIZE_CHOICES, initial="1280x720")


class DriftThresholdForm(forms.ModelForm):
    """The workspace's drift threshold (owners): takes scoring below it are flagged."""

    class Meta:
        model = Workspace
        fields = ["drift_threshold"]
        labels = {"drift_threshold": "Drift threshold"}
        widgets = {"drift_threshold": forms.NumberInput(attrs={"min": 0, "max": 100})}


class ConsistencyFilterForm(forms.Form):
    """What the consistency report is narrowed to; every field may stay empty."""

    series = forms.ModelChoiceField(queryset=Series.objects.none(), required=False)
    character = forms.ModelChoiceField(
        queryset=Character.objects.none(), required=False, empty_label="All characters"
    )
    since = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args: object, workspace: Workspace, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["series"].queryset = Series.objects.filter(workspace=workspace).order_by(
            "title"
        )
        self.fields["series"].empty_label = "All series"
        self.fields["character"].queryset = characters_visible_to(workspace=workspace).order_by(
            "name"
        )
        self.fields["character"].label_from_instance = lambda character: character.name

    def clean(self) -> dict:
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", "The end comes before the start.")
        return cleaned


class ApiTokenForm(forms.Form):
    """A new API token (owners): its name, what it may do, and its series for the gateways."""

    name = forms.CharField(
        max_length=80, help_text="Say what uses it, e.g. “nightly render script”."
    )
    role = forms.ChoiceField(
        choices=Role.choices,
        initial=Role.EDITOR,
        help_text="What it may do, like a member of that role (never more than its maker).",
    )
    series = forms.ModelChoiceField(
        queryset=Series.objects.none(),
        required=False,
        empty_label="No series",
        help_text="Where the OpenAI and relay gateways put the takes it makes (its Inbox).",
    )

    def __init__(self, *args: object, workspace: Workspace, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["series"].queryset = Series.objects.filter(workspace=workspace).order_by(
            "title"
        )


class WebhookEndpointForm(forms.Form):
    """A new webhook endpoint (owners); the address is checked by studio.webhooks."""

    url = forms.CharField(
        label="Address",
        max_length=500,
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/castboard-events"}),
        help_text="Castboard POSTs each event here, signed. Public addresses only.",
    )
    description = forms.CharField(max_length=200, required=False)
    events = forms.MultipleChoiceField(
        choices=WEBHOOK_EVENTS,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every event, including ones added later.",
    )
