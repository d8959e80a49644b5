"""Audio for the speech tests: voice samples to make voices from, and what a recording
sounds like (how long it plays, how high its voice is)."""

from __future__ import annotations

import io
import wave

import numpy as np

from jobs.emulators.inputs import probe_audio
from jobs.emulators.speech import RATE, Tone, encode_mp3, estimate_pitch, speak

RACHEL = "21m00Tcm4TlvDq8ikWAM"
SARAH = "EXAVITQu4vr4xnSDxMaL"
ADAM = "pNInz6obpgDQGcFmaJgB"
ANTONI = "ErXwobaYiN019PkySvjV"


def voice_sample(pitch: float = 180.0, *, seconds: float = 2.0) -> bytes:
    """A short MP3 of someone speaking at `pitch` Hz, as a person would upload."""
    words = "The tide is turning and the lamp is lit. " * 4
    return encode_mp3(speak(words[: int(seconds * 14)], Tone(pitch=pitch)))


def wav_sample(pitch: float = 150.0, *, seconds: float = 1.5) -> bytes:
    """A plain WAV of a hummed note at `pitch` Hz."""
    time = np.arange(int(seconds * RATE)) / RATE
    samples = 0.4 * np.sin(2 * np.pi * pitch * time) + 0.2 * np.sin(4 * np.pi * pitch * time)
    out = io.BytesIO()
    with wave.open(out, "wb") as recording:
        recording.setnchannels(1)
        recording.setsampwidth(2)
        recording.setframerate(RATE)
        recording.writeframes((samples * 32767).astype("<i2").tobytes())
    return out.getvalue()


def seconds_of(audio: bytes) -> float:
    """How long a recording plays, decoded to its end."""
    return probe_audio(audio).seconds


def pitch_of(audio: bytes) -> float:
    """The typical pitch (Hz) of the voice in a recording."""
    probe = probe_audio(audio)
    pitch = estimate_pitch(probe.samples, probe.rate)
    assert pitch is not None, "no voice heard"
    return pitch
