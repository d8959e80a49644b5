"""Create the demo workspace (idempotent): its owner and a reviewer, three characters with
their voices, a series whose scenes have some lines."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.urls import reverse
from PIL import Image, ImageDraw

from characters import services as characters
from characters import voices
from characters.models import Character, ReferenceAsset
from jobs.emulators.catalog import EMULATORS
from jobs.emulators.render import CastMember, reference_picture, render_video
from jobs.models import Budget, ProviderAccount
from jobs.services import account_save
from studio import dialogue, services
from studio.models import Membership, Role, RoutingPolicy, Scene, Series, Workspace

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "castboard-demo"  # noqa: S105 - the published demo login, printed by `make run`
# Staff (not superuser) with the reviewer role: reviews the demo's takes in the admin.
REVIEWER_USERNAME = "reviewer"

CHARACTERS = [
    {
        "name": "Mina Okafor",
        "handle": "mina",
        "description": "Lighthouse keeper, late thirties. Short brown hair, white work suit "
        "with a flag patch on the sleeve, warm smile. Calm, curious.",
        # Real faces (public domain, studio/demo_media/README.md), so drift scores measure
        # face identity in the demo too; Pip is drawn, and has no face to compare.
        "photo": "astronaut.jpg",
        # A premade voice of the ElevenLabs emulator (and of ElevenLabs): (voice id, name).
        "voice": ("21m00Tcm4TlvDq8ikWAM", "Rachel"),
        "skin": (141, 85, 60),
        "hair": (25, 20, 20),
        "outfit": (242, 190, 34),
        "accent": (46, 125, 80),
    },
    {
        "name": "Captain Ilse Brandt",
        "handle": "ilse",
        "description": "Ferry captain in her seventies. Short white hair, navy uniform "
        "with gold sleeve stripes, steady gaze.",
        "photo": "grace_hopper.jpg",
        "voice": ("EXAVITQu4vr4xnSDxMaL", "Sarah"),
        "skin": (232, 190, 160),
        "hair": (200, 200, 205),
        "outfit": (30, 45, 90),
        "accent": (190, 40, 40),
    },
    {
        "name": "Pip",
        "handle": "pip",
        "description": "A small grey seal with a white spot over the left eye. Playful; "
        "always near the water.",
        "voice": ("ErXwobaYiN019PkySvjV", "Antoni"),
        "skin": (120, 125, 135),
        "hair": (120, 125, 135),
        "outfit": (120, 125, 135),
        "accent": (245, 245, 245),
    },
]

SERIES = {
    "title": "The Lighthouse at Gull Point",
    "logline": "A keeper, a ferry captain and a seal keep a remote light burning through one stormy winter.",
    "style_guide": "Hand-painted animation look, muted teal and amber palette, soft film grain, "
    "wide establishing shots, gentle camera moves.",
    "default_size": "1280x720",
    "default_duration": 8,
    # Scenes with characters go to a provider that keeps them; the rest by price.
    "routing_policy": "characters",
}

EPISODES = [
    (
        "The New Keeper",
        [
            (
                "Arrival",
                "@ilse steers the ferry through grey swells toward Gull Point; @mina stands at the bow holding her suitcase.",
            ),
            (
                "First look",
                "@mina climbs the spiral stairs of the lighthouse, lamp light sweeping across her glasses.",
            ),
            ("A visitor", "On the rocks below, @pip pops out of the water and barks at @mina."),
            ("Night watch", "@mina lights the great lamp at dusk while @pip sleeps on the jetty."),
        ],
    ),
    (
        "Storm Season",
        [
            ("Warning", "@ilse radios the lighthouse: a storm is coming. @mina listens, worried."),
            ("The swell", "Waves crash over the jetty; @pip dives and resurfaces near the ferry."),
            ("The lamp fails", "The lamp flickers out; @mina races up the stairs with a lantern."),
            (
                "Safe harbour",
                "At dawn the ferry docks safely; @ilse and @mina share tea while @pip watches.",
            ),
        ],
    ),
]

# Lines on some scenes, by (episode number, scene title): "[seconds] @handle: words".
DIALOGUE = {
    (
        1,
        "Arrival",
    ): "[1] @ilse: Gull Point, dead ahead.\n[4.5] @mina: It's smaller than the postcard.",
    (1, "A visitor"): "[2] @mina: Well, hello there.\n[5] @pip: Arf!",
    (1, "Night watch"): "[1] : The first night is always the longest.",
    (
        2,
        "Warning",
    ): "[0.5] @ilse: Storm's coming in by midnight. Batten everything down.\n[5] @mina: The lamp will hold.",
    (2, "Safe harbour"): "[2] @mina: Tea?\n[3.5] @ilse: Always.",
}
# Scenes pinned to an account, by (episode number, scene title): the kind of the account.
# OpenAI's Sora 2 films without sound, so this scene's lines are dubbed in the characters'
# voices when the episode is cut.
PINNED = {(2, "Warning"): "openai"}


DEMO_MEDIA = Path(__file__).resolve().parents[2] / "demo_media"


def _references(spec: dict) -> list[tuple[str, bytes]]:
    """(label, PNG or JPEG bytes) of the character's reference images: its photo and a
    head-and-shoulders crop of it, or two drawn portraits."""
    if "photo" not in spec:
        return [(label, _portrait(spec, profile=label == "profile")) for label in PORTRAITS]
    photo = (DEMO_MEDIA / spec["photo"]).read_bytes()
    image = Image.open(io.BytesIO(photo)).convert("RGB")
    width, height = image.size
    crop = image.crop((width // 6, 0, width - width // 6, height * 2 // 3))
    out = io.BytesIO()
    crop.save(out, format="JPEG", quality=90)
    return [("front", photo), ("close-up", out.getvalue())]


def _reference_picture(spec: dict) -> Image.Image:
    if "photo" not in spec:
        return Image.open(io.BytesIO(_portrait(spec, profile=False))).convert("RGB")
    return Image.open(DEMO_MEDIA / spec["photo"]).convert("RGB")


PORTRAITS = ("front", "profile")


def _portrait(spec: dict, *, profile: bool) -> bytes:
    """Draw a simple, recognisable character portrait (PNG) for a reference image."""
    image = Image.new("RGB", (512, 512), (236, 240, 244))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 380, 512, 512), fill=(200, 214, 222))
    shift = 40 if profile else 0
    draw.rounded_rectangle((146 + shift, 300, 366 + shift, 512), radius=60, fill=spec["outfit"])
    draw.ellipse((176 + shift, 110, 336 + shift, 290), fill=spec["skin"])
    draw.chord((166 + shift, 90, 346 + shift, 250), 180, 360, fill=spec["hair"])
    eye_y = 195
    eyes = [(280 + shift,)] if profile else [(225,), (287,)]
    for (x,) in eyes:
        draw.ellipse((x - 9, eye_y - 9, x + 9, eye_y + 9), fill=(30, 30, 30))
    draw.rectangle((196 + shift, 300, 316 + shift, 330), fill=spec["accent"])
    draw.text((20, 20), f"{spec['name']} ({'profile' if profile else 'front'})", fill=(40, 40, 40))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _turnaround_clip(spec: dict) -> bytes:
    """A 3 s clip of the character (providers with native characters register from a clip)."""
    color = "#{:02x}{:02x}{:02x}".format(*spec["outfit"])
    return render_video(
        prompt=spec["description"],
        seconds=3,
        width=480,
        height=480,
        cast=[
            CastMember(
                name=spec["name"], color=color, picture=reference_picture(_reference_picture(spec))
            )
        ],
        label="reference clip",
    ).video


class Command(BaseCommand):
    help = "Create or complete the demo workspace, its characters and a demo series."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        User = get_user_model()
        user, created = User.objects.get_or_create(
            username=DEMO_USERNAME, defaults={"email": "demo@castboard.invalid"}
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        workspace = Workspace.objects.filter(slug="demo").first()
        if workspace is None:
            workspace = services.workspace_create(name="Demo Studio", slug="demo", owner=user)
        Membership.objects.get_or_create(
            workspace=workspace, user=user, defaults={"role": Role.OWNER}
        )
        reviewer, created = User.objects.get_or_create(
            username=REVIEWER_USERNAME,
            defaults={"email": "reviewer@castboard.invalid", "is_staff": True},
        )
        if created:
            reviewer.set_password(DEMO_PASSWORD)
            reviewer.save()
        Membership.objects.get_or_create(
            workspace=workspace, user=reviewer, defaults={"role": Role.REVIEWER}
        )

        for spec in CHARACTERS:
            character = Character.objects.filter(workspace=workspace, handle=spec["handle"]).first()
            if character is None:
                character = characters.character_create(
                    workspace=workspace,
                    name=spec["name"],
                    handle=spec["handle"],
                    description=spec["description"],
                    created_by=user,
                )
            if not character.assets.filter(kind=ReferenceAsset.Kind.CLIP).exists():
                upload = SimpleUploadedFile(
                    f"{spec['handle']}-turnaround.mp4", _turnaround_clip(spec), "video/mp4"
                )
                characters.asset_add(
                    character=character, upload=upload, label="turnaround", created_by=user
                )
            if not character.assets.filter(kind=ReferenceAsset.Kind.IMAGE).exists():
                for label, data in _references(spec):
                    is_png = data.startswith(b"\x89PNG")
                    upload = SimpleUploadedFile(
                        f"{spec['handle']}-{label}.{'png' if is_png else 'jpg'}",
                        data,
                        "image/png" if is_png else "image/jpeg",
                    )
                    characters.asset_add(
                        character=character, upload=upload, label=label, created_by=user
                    )

        for row in EMULATORS:
            name, kind, model = row.account, row.kind, row.model
            url = settings.EMULATOR_URLS.get(kind) or row.api_url()
            if not ProviderAccount.objects.filter(workspace=workspace, kind=kind).exists():
                try:
                    account_save(
                        account=ProviderAccount(
                            workspace=workspace,
                            name=name,
                            kind=kind,
                            base_url=url,
                            model=model,
                            callbacks=row.callbacks,
                        ),
                        api_key="emulator-demo-key",
                    )
                except ValidationError as error:
                    # The emulators listen on loopback, which accounts may only reach where
                    # an operator allows it (make run does).
                    raise CommandError(
                        f"The demo account {name} at {url} was refused: "
                        f"{' '.join(error.messages)} Run the demo with make run, or set "
                        "PROVIDER_ALLOWED_NETWORKS=127.0.0.1/32."
                    ) from None

        # A monthly cap, so the Costs page and the refusal of an over-budget take are on show.
        Budget.objects.get_or_create(
            workspace=workspace,
            scope="workspace",
            defaults={"label": workspace.name, "cap": Decimal("50.00")},
        )
        series = Series.objects.filter(workspace=workspace, title=SERIES["title"]).first()
        if series is None:
            series = services.series_create(workspace=workspace, created_by=user, **SERIES)
        for number, (title, scenes) in enumerate(EPISODES, start=1):
            episode = series.episodes.filter(number=number).first()
            if episode is None:
                episode = services.episode_create(series=series, title=title, number=number)
            if not episode.scenes.exists():
                for scene_title, prompt in scenes:
                    services.scene_create(episode=episode, title=scene_title, prompt=prompt)
        self._speak(workspace)
        self.stdout.write(
            f"Demo workspace ready: log in as {DEMO_USERNAME} / {DEMO_PASSWORD} "
            f"(workspace “{workspace.name}”, {workspace.characters.count()} characters, "
            f"series “{series.title}”).\n"
            f"Reviewers: log in as {REVIEWER_USERNAME} / {DEMO_PASSWORD} at {reverse('review_index', args=[workspace.slug])}"
        )

    def _speak(self, workspace: Workspace) -> None:
        """Voices for the characters at the demo's ElevenLabs account, and lines on some
        scenes (only where none are set yet: a demo someone changed keeps its changes)."""
        speech = ProviderAccount.objects.filter(workspace=workspace, kind="elevenlabs").first()
        for spec in CHARACTERS:
            character = Character.objects.get(workspace=workspace, handle=spec["handle"])
            if speech is not None and not characters.character_version_latest(character).has_voice:
                voice_id, voice_name = spec["voice"]
                voices.character_voice_known(
                    character=character, account=speech, voice_id=voice_id, voice_name=voice_name
                )
        series = Series.objects.get(workspace=workspace, title=SERIES["title"])
        for (number, title), text in DIALOGUE.items():
            scene = Scene.objects.filter(
                episode__series=series, episode__number=number, title=title
            ).first()
            if scene is not None and not scene.lines.exists():
                dialogue.scene_dialogue_set(scene=scene, text=text)
        for (number, title), kind in PINNED.items():
            account = ProviderAccount.objects.filter(workspace=workspace, kind=kind).first()
            scene = Scene.objects.filter(
                episode__series=series, episode__number=number, title=title, routing_policy=""
            ).first()
            if account is not None and scene is not None:
                services.scene_update(
                    scene=scene, routing_policy=RoutingPolicy.PINNED, pinned_account=account
                )
