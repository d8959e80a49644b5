"""What the domain asks the engine for, as typed values: a JobRequest and its cast, and the
request fitted to one provider account (FittedRequest: what Job.request stores).

Plain data, no Django and no other engine module, so models, pipeline and engine can all
import it. Each value has an explicit to_dict() / from_dict(): JSON-safe, versioned, and
strict: a wrong shape raises RequestShapeError (a ValueError) that says where.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

# The shape's version: a change to it bumps this, with a data migration for stored jobs.
# 2: a request may start or end on given pictures (frames); jobs 0012 moved version 1 on.
# 3: a video may carry dialogue, and a job may speak a line (speech, in a voice); jobs 0013.
VERSION = 3

# A job's kinds (jobs.models.JobKind has the same values, for the database).
GENERATE, REMIX, EXTEND, REGISTER_CHARACTER = "generate", "remix", "extend", "register_character"
SPEECH = "speech"
KINDS = (GENERATE, REMIX, EXTEND, REGISTER_CHARACTER, SPEECH)
DERIVED_KINDS = (REMIX, EXTEND)
# Kinds whose result is a video (a speech job's is audio).
VIDEO_KINDS = (GENERATE, REMIX, EXTEND)
IMAGE, VIDEO, AUDIO = "image", "video", "audio"
ASSET_KINDS = (IMAGE, VIDEO, AUDIO)
# Where a frame a request gives goes in its video (Capabilities.frames says who takes which).
FIRST, LAST = "first", "last"
FRAME_POSITIONS = (FIRST, LAST)
# The longest subject a registration keeps (jobs.models.Registration.subject).
SUBJECT_MAX_LENGTH = 60


class RequestShapeError(ValueError):
    """A request that is not of the shape the engine reads (wrong keys, types or values)."""


def _fail(where: str, message: str) -> RequestShapeError:
    return RequestShapeError(f"{where}: {message}" if where else message)


class _Object:
    """One JSON object read strictly: exactly these keys, each of the type asked for."""

    def __init__(self, data: object, where: str, keys: Iterable[str]) -> None:
        if not isinstance(data, Mapping):
            raise _fail(where, f"expected an object, got {type(data).__name__}.")
        expected = set(keys)
        missing = sorted(expected - data.keys())
        unknown = sorted(str(k) for k in data.keys() - expected)
        if missing:
            raise _fail(where, f"missing {', '.join(missing)}.")
        if unknown:
            raise _fail(where, f"unknown key(s) {', '.join(unknown)}.")
        self.data, self.where = data, where

    def at(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def text(self, key: str) -> str:
        value = self.data[key]
        if not isinstance(value, str):
            raise _fail(self.at(key), f"expected a string, got {type(value).__name__}.")
        return value

    def whole(self, key: str) -> int:
        value = self.data[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(self.at(key), f"expected a whole number, got {value!r}.")
        return value

    def number_or_none(self, key: str) -> float | None:
        value = self.data[key]
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(self.at(key), f"expected a number or null, got {value!r}.")
        return float(value)

    def items(self, key: str) -> list[tuple[str, Any]]:
        value = self.data[key]
        if not isinstance(value, list):
            raise _fail(self.at(key), f"expected a list, got {type(value).__name__}.")
        return [(f"{self.at(key)}[{n}]", item) for n, item in enumerate(value)]


def _built(where: str, cls, **fields):
    """cls(**fields), with the invariant it breaks (if any) said at `where`."""
    try:
        return cls(**fields)
    except RequestShapeError as error:
        raise _fail(where, str(error)) from None


# --- The request ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Asset:
    """A stored file that shows a cast member: an image, or a clip (video) and its length;
    or a voice sample (audio) a speech provider makes a voice from."""

    file: str  # the name in default storage
    kind: Literal["image", "video", "audio"]
    content_type: str = ""
    seconds: float | None = None  # a clip's length, where known

    def __post_init__(self) -> None:
        if not self.file:
            raise RequestShapeError("an asset needs its file's storage name.")
        if self.kind not in ASSET_KINDS:
            raise RequestShapeError(f"an asset is an image, a video or audio, not {self.kind!r}.")
        if self.seconds is not None:
            if self.kind == IMAGE:
                raise RequestShapeError("an image has no length in seconds.")
            if not math.isfinite(self.seconds) or self.seconds < 0:
                raise RequestShapeError(f"a clip cannot last {self.seconds!r} seconds.")

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "kind": self.kind,
            "content_type": self.content_type,
            "seconds": self.seconds,
        }

    @classmethod
    def from_dict(cls, data: object, where: str = "asset") -> Asset:
        shape = _Object(data, where, ("file", "kind", "content_type", "seconds"))
        return _built(
            where,
            cls,
            file=shape.text("file"),
            kind=shape.text("kind"),
            content_type=shape.text("content_type"),
            seconds=shape.number_or_none("seconds"),
        )


@dataclass(frozen=True)
class CastMember:
    """Someone a request shows: an opaque subject ("character:12") and what shows them.

    Images and clips come in the library's order; the engine picks which travel.
    `from_provider_job_id` registers the member from a finished job at the provider.
    """

    subject: str
    name: str
    handle: str = ""
    description: str = ""
    images: tuple[Asset, ...] = ()
    clips: tuple[Asset, ...] = ()
    from_provider_job_id: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "images", tuple(self.images))
        object.__setattr__(self, "clips", tuple(self.clips))
        if not self.subject or len(self.subject) > SUBJECT_MAX_LENGTH:
            raise RequestShapeError(
                f"a cast member's subject must be 1 to {SUBJECT_MAX_LENGTH} characters long."
            )
        if not self.name:
            raise RequestShapeError(f"cast member {self.subject} has no name.")
        if any(a.kind != IMAGE for a in self.images):
            raise RequestShapeError(f"cast member {self.subject}: its images must be images.")
        if any(a.kind != VIDEO for a in self.clips):
            raise RequestShapeError(f"cast member {self.subject}: its clips must be videos.")

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "name": self.name,
            "handle": self.handle,
            "description": self.description,
            "images": [a.to_dict() for a in self.images],
            "clips": [a.to_dict() for a in self.clips],
            "from_provider_job_id": self.from_provider_job_id,
        }

    @classmethod
    def from_dict(cls, data: object, where: str = "cast member") -> CastMember:
        shape = _Object(
            data,
            where,
            (
                "subject",
                "name",
                "handle",
                "description",
                "images",
                "clips",
                "from_provider_job_id",
            ),
        )
        return _built(
            where,
            cls,
            subject=shape.text("subject"),
            name=shape.text("name"),
            handle=shape.text("handle"),
            description=shape.text("description"),
            images=tuple(Asset.from_dict(item, at) for at, item in shape.items("images")),
            clips=tuple(Asset.from_dict(item, at) for at, item in shape.items("clips")),
            from_provider_job_id=shape.text("from_provider_job_id"),
        )


@dataclass(frozen=True)
class Frame:
    """A picture the video starts from (first) or ends on (last)."""

    position: str
    asset: Asset

    def __post_init__(self) -> None:
        if self.position not in FRAME_POSITIONS:
            raise RequestShapeError(f"a frame is first or last, not {self.position!r}.")
        if self.asset.kind != IMAGE:
            raise RequestShapeError(f"the {self.position} frame must be an image.")

    def to_dict(self) -> dict[str, Any]:
        return {"position": self.position, "asset": self.asset.to_dict()}

    @classmethod
    def from_dict(cls, data: object, where: str = "frame") -> Frame:
        shape = _Object(data, where, ("position", "asset"))
        return _built(
            where,
            cls,
            position=shape.text("position"),
            asset=Asset.from_dict(shape.data["asset"], shape.at("asset")),
        )


@dataclass(frozen=True)
class Line:
    """A line of dialogue a video carries: who says it (a cast member's subject, or "" for
    a voice off screen), what they say, and when (seconds into the video), if it is set.

    A provider that speaks as it films (Capabilities.audio) reads the lines in its prompt;
    the others make the video silent, and the studio dubs the lines (speech jobs).
    """

    subject: str
    text: str
    start: float | None = None

    def __post_init__(self) -> None:
        if not self.text.strip():
            raise RequestShapeError("a line of dialogue has words.")
        if self.start is not None and (not math.isfinite(self.start) or self.start < 0):
            raise RequestShapeError(f"a line cannot start at {self.start!r} seconds.")

    def to_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "text": self.text, "start": self.start}

    @classmethod
    def from_dict(cls, data: object, where: str = "line") -> Line:
        shape = _Object(data, where, ("subject", "text", "start"))
        return _built(
            where,
            cls,
            subject=shape.text("subject"),
            text=shape.text("text"),
            start=shape.number_or_none("start"),
        )


@dataclass(frozen=True)
class Voice:
    """The voice a speech job speaks in: the provider's own voice id, or a short sample the
    provider makes a voice from (registered once per account under `subject`, like a
    character, e.g. "voice:character:12:v3")."""

    subject: str
    name: str
    voice_id: str = ""
    sample: Asset | None = None

    def __post_init__(self) -> None:
        if not self.subject or len(self.subject) > SUBJECT_MAX_LENGTH:
            raise RequestShapeError(
                f"a voice's subject must be 1 to {SUBJECT_MAX_LENGTH} characters long."
            )
        if not self.name:
            raise RequestShapeError(f"voice {self.subject} has no name.")
        if not self.voice_id and self.sample is None:
            raise RequestShapeError(f"voice {self.subject} needs a voice id or a sample.")
        if self.sample is not None and self.sample.kind != AUDIO:
            raise RequestShapeError(f"voice {self.subject}: its sample must be audio.")

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "name": self.name,
            "voice_id": self.voice_id,
            "sample": self.sample.to_dict() if self.sample else None,
        }

    @classmethod
    def from_dict(cls, data: object, where: str = "voice") -> Voice:
        shape = _Object(data, where, ("subject", "name", "voice_id", "sample"))
        sample = shape.data["sample"]
        return _built(
            where,
            cls,
            subject=shape.text("subject"),
            name=shape.text("name"),
            voice_id=shape.text("voice_id"),
            sample=None if sample is None else Asset.from_dict(sample, shape.at("sample")),
        )


_REQUEST_KEYS = (
    "version",
    "kind",
    "prompt",
    "seconds",
    "size",
    "cast",
    "frames",
    "source_provider_job_id",
    "dialogue",
    "voice",
)


@dataclass(frozen=True)
class JobRequest:
    """What to make, before any provider is chosen.

    `prompt` is a template: it names cast members by `{{subject}}` placeholders, which
    each provider renders in its own syntax. A remix or extension names the provider's
    job it starts from; a registration has exactly one cast member (and no prompt). A new
    video may start from and end on given pictures (`frames`, one per position), and carry
    `dialogue`. A speech job speaks `prompt` (plain words, no placeholders) in `voice`; its
    cast is the speaker, if any.
    """

    kind: str
    prompt: str
    seconds: int
    size: str
    cast: tuple[CastMember, ...] = ()
    source_provider_job_id: str = ""
    frames: tuple[Frame, ...] = ()
    dialogue: tuple[Line, ...] = ()
    voice: Voice | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", str(self.kind))
        object.__setattr__(self, "cast", tuple(self.cast))
        object.__setattr__(self, "frames", tuple(self.frames))
        object.__setattr__(self, "dialogue", tuple(self.dialogue))
        if self.kind not in KINDS:
            raise RequestShapeError(f"kind must be one of {', '.join(KINDS)}, not {self.kind!r}.")
        if isinstance(self.seconds, bool) or not isinstance(self.seconds, int) or self.seconds < 0:
            raise RequestShapeError(f"seconds must be a whole number from 0, not {self.seconds!r}.")
        subjects = [m.subject for m in self.cast]
        if len(set(subjects)) != len(subjects):
            raise RequestShapeError("each cast member may appear once.")
        if self.kind == REGISTER_CHARACTER and len(self.cast) != 1:
            raise RequestShapeError("a registration registers exactly one cast member.")
        if (self.kind in DERIVED_KINDS) != bool(self.source_provider_job_id):
            raise RequestShapeError(
                "a remix or an extension names the provider's job it starts from; "
                "nothing else does."
            )
        positions = [f.position for f in self.frames]
        if len(set(positions)) != len(positions):
            raise RequestShapeError("a request has one first frame and one last frame at most.")
        if self.frames and self.kind != GENERATE:
            raise RequestShapeError("only a new video starts or ends on given frames.")
        if self.dialogue and self.kind not in VIDEO_KINDS:
            raise RequestShapeError("only a video carries dialogue.")
        strangers = sorted({line.subject for line in self.dialogue if line.subject} - set(subjects))
        if strangers:
            raise RequestShapeError(f"{', '.join(strangers)} speak(s) but is not in the cast.")
        if (self.kind == SPEECH) != (self.voice is not None):
            raise RequestShapeError("a speech job has a voice; nothing else does.")
        if self.kind == SPEECH:
            if not self.prompt.strip():
                raise RequestShapeError("a speech job has words to speak.")
            if len(self.cast) > 1:
                raise RequestShapeError("a speech job has one speaker at most.")

    def frame(self, position: str) -> Frame | None:
        return next((f for f in self.frames if f.position == position), None)

    def member(self, subject: str) -> CastMember:
        for member in self.cast:
            if member.subject == subject:
                return member
        raise KeyError(subject)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "kind": self.kind,
            "prompt": self.prompt,
            "seconds": self.seconds,
            "size": self.size,
            "cast": [m.to_dict() for m in self.cast],
            "frames": [f.to_dict() for f in self.frames],
            "source_provider_job_id": self.source_provider_job_id,
            "dialogue": [line.to_dict() for line in self.dialogue],
            "voice": self.voice.to_dict() if self.voice else None,
        }

    @classmethod
    def from_dict(cls, data: object) -> JobRequest:
        return cls._read(_Object(data, "job request", _REQUEST_KEYS))

    @classmethod
    def _read(cls, shape: _Object) -> JobRequest:
        """The request's own keys of `shape` (a FittedRequest's too)."""
        _check_version(shape)
        return _built(
            shape.where,
            cls,
            kind=shape.text("kind"),
            prompt=shape.text("prompt"),
            seconds=shape.whole("seconds"),
            size=shape.text("size"),
            cast=tuple(CastMember.from_dict(item, at) for at, item in shape.items("cast")),
            frames=tuple(Frame.from_dict(item, at) for at, item in shape.items("frames")),
            source_provider_job_id=shape.text("source_provider_job_id"),
            dialogue=tuple(Line.from_dict(item, at) for at, item in shape.items("dialogue")),
            voice=None
            if shape.data["voice"] is None
            else Voice.from_dict(shape.data["voice"], shape.at("voice")),
        )


def _check_version(shape: _Object) -> None:
    version = shape.data["version"]
    if version != VERSION:
        raise _fail(
            shape.at("version"),
            f"this engine reads version {VERSION}, not {version!r} "
            "(a stored job from before a data migration?).",
        )


# --- The request fitted to an account ------------------------------------------------------


@dataclass(frozen=True)
class CastAsset:
    """One of a cast member's assets, where it travels for that member."""

    subject: str
    asset: Asset

    def to_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "asset": self.asset.to_dict()}

    @classmethod
    def from_dict(cls, data: object, where: str) -> CastAsset:
        shape = _Object(data, where, ("subject", "asset"))
        return cls(
            subject=shape.text("subject"),
            asset=Asset.from_dict(shape.data["asset"], shape.at("asset")),
        )


@dataclass(frozen=True)
class Fit:
    """How a request's cast travels to one account (jobs.engine decides it from the
    account's capabilities).

    `references`: assets sent with the create, in order, where the account keeps no
    characters (each named for its member). `registration_clips`: the clip each member is
    registered from where the account keeps characters (sent even when it is registered
    already, in case the provider lost it). `degraded_note` says, for people, how the cast
    travels when that is as references.
    """

    references: tuple[CastAsset, ...] = ()
    registration_clips: tuple[CastAsset, ...] = ()
    degraded_note: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "references", tuple(self.references))
        object.__setattr__(self, "registration_clips", tuple(self.registration_clips))
        subjects = [c.subject for c in self.registration_clips]
        if len(set(subjects)) != len(subjects):
            raise RequestShapeError("a cast member registers from one clip.")
        if any(c.asset.kind != VIDEO for c in self.registration_clips):
            raise RequestShapeError("a registration clip must be a video.")

    @property
    def degraded(self) -> bool:
        return bool(self.degraded_note)

    @property
    def subjects(self) -> set[str]:
        return {a.subject for a in (*self.references, *self.registration_clips)}

    def registration_clip(self, subject: str) -> Asset | None:
        return next((c.asset for c in self.registration_clips if c.subject == subject), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "references": [r.to_dict() for r in self.references],
            "registration_clips": [c.to_dict() for c in self.registration_clips],
            "degraded_note": self.degraded_note,
        }

    @classmethod
    def from_dict(cls, data: object, where: str = "fit") -> Fit:
        shape = _Object(data, where, ("references", "registration_clips", "degraded_note"))
        return _built(
            where,
            cls,
            references=tuple(CastAsset.from_dict(i, at) for at, i in shape.items("references")),
            registration_clips=tuple(
                CastAsset.from_dict(i, at) for at, i in shape.items("registration_clips")
            ),
            degraded_note=shape.text("degraded_note"),
        )


@dataclass(frozen=True)
class Fallback:
    """Another account to make the job at while its own is down: its price and its fit."""

    account_id: int
    estimate: Decimal
    fit: Fit = field(default_factory=Fit)

    def __post_init__(self) -> None:
        if isinstance(self.account_id, bool) or not isinstance(self.account_id, int):
            raise RequestShapeError(
                f"a fallback's account id is a number, not {self.account_id!r}."
            )
        if (
            not isinstance(self.estimate, Decimal)
            or not self.estimate.is_finite()
            or self.estimate < 0
        ):
            raise RequestShapeError(f"a fallback's estimate cannot be {self.estimate!r}.")

    @property
    def degraded(self) -> bool:
        return self.fit.degraded

    @property
    def degraded_note(self) -> str:
        return self.fit.degraded_note

    def to_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "estimate": str(self.estimate),
            "fit": self.fit.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: object, where: str) -> Fallback:
        shape = _Object(data, where, ("account_id", "estimate", "fit"))
        try:
            estimate = Decimal(shape.text("estimate"))
        except InvalidOperation:
            raise _fail(
                shape.at("estimate"), f"not an amount: {shape.data['estimate']!r}."
            ) from None
        return _built(
            where,
            cls,
            account_id=shape.whole("account_id"),
            estimate=estimate,
            fit=Fit.from_dict(shape.data["fit"], shape.at("fit")),
        )


@dataclass(frozen=True)
class FittedRequest:
    """A request fitted to the account its job is at, with the other accounts to fall back
    to (best first) while that one is down. This is what Job.request stores (to_dict).

    The request itself is the same at every account; only the fit differs.
    """

    request: JobRequest
    fit: Fit = field(default_factory=Fit)
    fallbacks: tuple[Fallback, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "fallbacks", tuple(self.fallbacks))
        cast = {m.subject for m in self.request.cast}
        for fit in (self.fit, *(f.fit for f in self.fallbacks)):
            strangers = sorted(fit.subjects - cast)
            if strangers:
                raise RequestShapeError(f"{', '.join(strangers)} travel(s) but is not in the cast.")
        accounts = [f.account_id for f in self.fallbacks]
        if len(set(accounts)) != len(accounts):
            raise RequestShapeError("each fallback account may appear once.")

    def falling_back(
        self, index: int, *, leaving_account_id: int, leaving_estimate: Decimal
    ) -> FittedRequest:
        """The request moved to its index-th fallback; the account it leaves goes last (in
        case the others are down by the time it is back)."""
        chosen = self.fallbacks[index]
        rest = (*self.fallbacks[:index], *self.fallbacks[index + 1 :])
        leaving = Fallback(account_id=leaving_account_id, estimate=leaving_estimate, fit=self.fit)
        return replace(self, fit=chosen.fit, fallbacks=(*rest, leaving))

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.request.to_dict(),
            "fit": self.fit.to_dict(),
            "fallbacks": [f.to_dict() for f in self.fallbacks],
        }

    @classmethod
    def from_dict(cls, data: object) -> FittedRequest:
        shape = _Object(data, "job request", (*_REQUEST_KEYS, "fit", "fallbacks"))
        request = JobRequest._read(shape)
        return _built(
            "job request",
            cls,
            request=request,
            fit=Fit.from_dict(shape.data["fit"], shape.at("fit")),
            fallbacks=tuple(Fallback.from_dict(i, at) for at, i in shape.items("fallbacks")),
        )
