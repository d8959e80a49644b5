"""Every emulator the demo serves, and the demo account that speaks to it: one row each.

`make run` serves them all (manage.py run_emulators) and the demo workspace gets an account
on each (manage.py seed_demo). A new provider adds its row here; nothing else lists them.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.module_loading import import_string

from jobs.emulators.base import Emulator


@dataclass(frozen=True)
class DemoEmulator:
    kind: str  # the adapter's kind (jobs.models.ProviderKind)
    app: str  # the emulator class, by dotted path
    port: int
    account: str  # the demo account's name
    model: str = ""  # the demo account's model ("" for the adapter's default)
    callbacks: bool = False  # the demo account asks for a callback with each create

    def emulator_class(self) -> type[Emulator]:
        return import_string(self.app)

    def api_url(self, host: str = "127.0.0.1") -> str:
        """The base URL an account is given: the server plus the emulator's API prefix."""
        return f"http://{host}:{self.port}{self.emulator_class().api_prefix}"


EMULATORS: tuple[DemoEmulator, ...] = (
    DemoEmulator(
        "openai", "jobs.emulators.openai.OpenAIVideosEmulator", 8101, "OpenAI (emulator)", "sora-2"
    ),
    DemoEmulator(
        "sora_relay", "jobs.emulators.sora_relay.SoraRelayEmulator", 8102, "Sora relay (emulator)"
    ),
    DemoEmulator(
        "seedance", "jobs.emulators.seedance.SeedanceEmulator", 8103, "Seedance (emulator)"
    ),
    DemoEmulator(
        "kling",
        "jobs.emulators.kling.KlingEmulator",
        8104,
        "Kling (emulator)",
        "kling-v3-omni",
        callbacks=True,
    ),
    DemoEmulator(
        "veo",
        "jobs.emulators.google.VertexVeoEmulator",
        8105,
        "Veo 3.1 (emulator)",
        "veo-3.1-generate-001",
    ),
    DemoEmulator(
        "gemini",
        "jobs.emulators.google.GeminiEmulator",
        8106,
        "Gemini Omni Flash (emulator)",
        "gemini-omni-flash-preview",
    ),
    DemoEmulator("runway", "jobs.emulators.runway.RunwayEmulator", 8107, "Runway (emulator)"),
    DemoEmulator(
        "fal",
        "jobs.emulators.fal.FalEmulator",
        8108,
        "fal.ai (emulator)",
        "bytedance/seedance-2.0/reference-to-video",
        callbacks=True,
    ),
    DemoEmulator(
        "elevenlabs",
        "jobs.emulators.elevenlabs.ElevenLabsEmulator",
        8109,
        "ElevenLabs (emulator)",
        "eleven_multilingual_v2",
    ),
)
