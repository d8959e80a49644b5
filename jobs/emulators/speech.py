"""Speech-like audio for the text-to-speech emulator: real MP3s that sound like a voice.

Not words, but their rhythm: each character of the text takes about a fourteenth of a
second; vowels are voiced (a pitch and its harmonics, shaped by the vowel's formants),
voiced consonants softer, hissing ones noise, spaces and punctuation pauses. Each sentence's
pitch falls as it goes (a question's rises at its end), so it reads as speech; each voice
has its own pitch and timbre, so two voices are told apart by ear (and by estimate_pitch).
"""

from __future__ import annotations

import hashlib
import io
import unicodedata
from dataclasses import dataclass

import av
import numpy as np

RATE = 22050  # synthesis rate: harmonics stay below 4 kHz
CHARACTERS_PER_SECOND = 14.0
MIN_SECONDS = 0.6
# (F1, F2) of each vowel, Hz, for an adult male vocal tract.
_VOWELS = {
    "a": (730, 1090),
    "e": (530, 1840),
    "i": (270, 2290),
    "o": (570, 840),
    "u": (300, 870),
    "y": (300, 2000),
}
_SCHWA = (500, 1500)
_VOICED = set("bdgjlmnrvwz")
_HISS = set("cfhkpqstx")
_SENTENCE_ENDS = set(".!?")


@dataclass(frozen=True)
class Tone:
    """What makes a voice its own: its pitch (Hz), its vocal tract's length (formants scale
    by `formants`: about 1.0 for a man, 1.17 for a woman) and how bright it sounds."""

    pitch: float
    formants: float = 1.0
    brightness: float = 1.0

    @classmethod
    def from_seed(cls, seed: bytes, pitch: float | None = None) -> Tone:
        """A voice from a seed (a sample's bytes): its pitch where one was heard, else one
        from the seed; its timbre from the seed."""
        digest = hashlib.sha256(seed).digest()
        if pitch is None:
            pitch = 95 + digest[0] / 255 * 150
        formants = 1.0 + min(0.2, max(0.0, (pitch - 100) / 600)) + (digest[1] / 255 - 0.5) * 0.04
        return cls(pitch=pitch, formants=formants, brightness=0.8 + digest[2] / 255 * 0.4)


def seconds_for(text: str, speed: float = 1.0) -> float:
    """How long the speech of `text` lasts: about 14 characters a second, at least 0.6 s."""
    return max(MIN_SECONDS, len(text) / CHARACTERS_PER_SECOND / speed)


def _base_letter(character: str) -> str:
    return unicodedata.normalize("NFKD", character)[:1].lower()


@dataclass
class _Slot:
    loudness: float  # 0 (a pause) to 1
    formants: tuple[float, float]
    noise: float  # 0 to 1: how much of it is hiss
    word: int
    sentence: int


def _slots(text: str) -> list[_Slot]:
    slots, word, sentence = [], 0, 0
    for character in text:
        letter = _base_letter(character)
        if letter in _VOWELS:
            slots.append(_Slot(1.0, _VOWELS[letter], 0.0, word, sentence))
        elif letter in _VOICED:
            slots.append(_Slot(0.55, _SCHWA, 0.1, word, sentence))
        elif letter in _HISS:
            slots.append(_Slot(0.0, _SCHWA, 0.35, word, sentence))
        elif letter.isdigit():
            slots.append(_Slot(0.9, _VOWELS["a"], 0.0, word, sentence))
        elif character.isalpha():  # other scripts: a vowel picked by the character
            vowel = "aeiou"[ord(character) % 5]
            slots.append(_Slot(0.9, _VOWELS[vowel], 0.05, word, sentence))
        else:
            slots.append(_Slot(0.0, _SCHWA, 0.0, word, sentence))
            word += 1
            if character in _SENTENCE_ENDS:
                sentence += 1
    return slots or [_Slot(0.0, _SCHWA, 0.0, 0, 0)]


def _smoothed(values: np.ndarray, width: int) -> np.ndarray:
    """A moving average over `width` samples (by cumulative sums: linear in the length)."""
    if width <= 1:
        return values
    padded = np.concatenate([np.full(width // 2, values[0]), values, np.full(width, values[-1])])
    sums = np.cumsum(padded, dtype=np.float64)
    return ((sums[width:] - sums[:-width]) / width)[: len(values)]


def speak(text: str, tone: Tone, *, speed: float = 1.0) -> np.ndarray:
    """The text spoken in the tone, as mono float32 samples at RATE (peak about 0.5)."""
    slots = _slots(text)
    total = int(seconds_for(text, speed) * RATE)
    per_slot = total / len(slots)
    index = np.minimum((np.arange(total) / per_slot).astype(np.int64), len(slots) - 1)
    seed = int.from_bytes(hashlib.sha256(f"{tone}|{text}".encode()).digest()[:8], "big")
    rng = np.random.default_rng(seed)

    # Pitch: each sentence falls from 112% to 88% of the voice's pitch (a question rises at
    # its end), each word a little off the line, and a slight vibrato.
    sentences = np.array([s.sentence for s in slots])
    words = np.array([s.word for s in slots])
    word_shift = rng.uniform(0.94, 1.06, size=int(words.max()) + 1)
    contour = np.empty(len(slots))
    ends = [i for i, character in enumerate(text) if character in _SENTENCE_ENDS]
    for number in range(int(sentences.max()) + 1):
        members = np.flatnonzero(sentences == number)
        place = np.linspace(0.0, 1.0, len(members))
        line = 1.12 - 0.24 * place
        asks = number < len(ends) and text[ends[number]] == "?"
        if asks:
            line = np.where(place > 0.7, line + (place - 0.7) * 1.2, line)
        contour[members] = line * word_shift[words[members]]
    time = np.arange(total) / RATE
    pitch = tone.pitch * _smoothed(contour[index], int(0.06 * RATE))
    pitch *= 1 + 0.012 * np.sin(2 * np.pi * 5.2 * time)
    phase = 2 * np.pi * np.cumsum(pitch) / RATE

    # Harmonics shaped by the slot's formants (scaled by the voice's tract), faded between
    # slots so the timbre glides.
    loudness = _smoothed(np.array([s.loudness for s in slots])[index], int(0.025 * RATE))
    hiss = _smoothed(np.array([s.noise for s in slots])[index], int(0.015 * RATE))
    centres = (np.arange(len(slots)) + 0.5) * per_slot
    first = np.array([s.formants[0] for s in slots]) * tone.formants
    second = np.array([s.formants[1] for s in slots]) * tone.formants
    f1 = np.interp(np.arange(total), centres, first)
    f2 = np.interp(np.arange(total), centres, second)
    voiced = np.zeros(total)
    for k in range(1, min(24, int(3800 / tone.pitch)) + 1):
        frequency = k * pitch
        weight = (
            np.exp(-(((frequency - f1) / 110) ** 2))
            + 0.6 * np.exp(-(((frequency - f2) / 150) ** 2))
            + 0.15 / k
        ) * k ** (-0.6 / tone.brightness)
        voiced += weight * np.sin(k * phase)
    noise = rng.standard_normal(total)
    noise = np.diff(noise, prepend=0.0)  # brighter: a hiss, not a rumble
    signal = voiced * loudness + 0.35 * noise * hiss
    peak = float(np.max(np.abs(signal))) or 1.0
    return (0.5 * signal / peak).astype(np.float32)


def encode_mp3(samples: np.ndarray, *, rate: int = 44100, kbps: int = 128) -> bytes:
    """Samples at RATE as an MP3 at `rate` Hz and `kbps` kilobits a second."""
    if rate != RATE:
        positions = np.arange(int(len(samples) * rate / RATE)) * RATE / rate
        samples = np.interp(positions, np.arange(len(samples)), samples).astype(np.float32)
    out = io.BytesIO()
    with av.open(out, "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=rate, layout="mono")
        stream.bit_rate = kbps * 1000
        for start in range(0, len(samples), 1152):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(samples[start : start + 1152]).reshape(1, -1),
                format="fltp",
                layout="mono",
            )
            frame.sample_rate = rate
            frame.pts = start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


def encode_pcm(samples: np.ndarray, *, rate: int) -> bytes:
    """Samples at RATE as raw 16-bit little-endian mono PCM at `rate` Hz."""
    positions = np.arange(int(len(samples) * rate / RATE)) * RATE / rate
    resampled = np.interp(positions, np.arange(len(samples)), samples)
    return (np.clip(resampled, -1, 1) * 32767).astype("<i2").tobytes()


def estimate_pitch(samples: np.ndarray, rate: int) -> float | None:
    """The voice's typical pitch (Hz) in mono samples: the median of the autocorrelation
    peaks (70-400 Hz) of its loudest short windows; None where none is found."""
    window = int(0.04 * rate)
    if len(samples) < window * 2:
        return None
    count = len(samples) // window
    frames = samples[: count * window].reshape(count, window).astype(np.float64)
    energy = (frames**2).sum(axis=1)
    loud = frames[np.argsort(energy)[::-1][: max(1, min(60, count // 3))]]
    low, high = int(rate / 400), int(rate / 70)
    found = []
    for frame in loud:
        frame = frame - frame.mean()
        correlation = np.correlate(frame, frame, mode="full")[window - 1 :]
        if correlation[0] <= 0 or high >= len(correlation):
            continue
        lag = low + int(np.argmax(correlation[low:high]))
        if correlation[lag] / correlation[0] > 0.3:
            found.append(rate / lag)
    return float(np.median(found)) if found else None
