"""Job.request moves to the typed shape of jobs.requests (version 1): a JobRequest with its
cast, the fit to the job's account, and the fallbacks' fits.

The conversion is written out here, on plain dicts, so it stays what it was when
jobs.requests changes later (a later shape gets its own migration from version 1).

Before (written by studio.generation until this change):
    {"kind", "prompt", "seconds", "size", "characters": [...], "references": [...],
     "source_provider_job_id", "fallbacks": [{"account_id", "estimate", "request",
     "degraded", "degraded_note"}]}, or, for a registration, {"kind", "character": {...}}.
A character was {"subject", "name", "handle", "description", "clip", "clip_seconds"} where
its provider keeps characters, {"subject", "name", "handle", "as_references"} where it
travelled as the references, each {"file", "kind", "content_type", "subject", "name"}.
"""

from __future__ import annotations

from django.db import migrations

VERSION = 1
_BATCH = 500


def _asset(file: str, kind: str, content_type: str = "", seconds=None) -> dict:
    return {
        "file": file,
        "kind": kind,
        "content_type": content_type or "",
        "seconds": None if kind == "image" or seconds is None else float(seconds),
    }


def _old_requests(old: dict) -> list[dict]:
    """The old request and each of its fallbacks' (every one names characters its way)."""
    return [old, *[f.get("request") or {} for f in old.get("fallbacks") or []]]


def _cast(old: dict, kind: str) -> list[dict]:
    """One member per subject, in the request's order, with every asset any fit used."""
    if kind == "register_character":
        entries = [old.get("character") or {}]
    else:
        entries = [c for request in _old_requests(old) for c in request.get("characters") or []]
    members: dict[str, dict] = {}
    for entry in entries:
        subject = str(entry.get("subject") or "")
        member = members.setdefault(
            subject,
            {
                "subject": subject,
                "name": "",
                "handle": "",
                "description": "",
                "images": [],
                "clips": [],
                "from_provider_job_id": "",
            },
        )
        for key in ("name", "handle", "description", "from_provider_job_id"):
            member[key] = member[key] or str(entry.get(key) or "")
        if entry.get("clip"):
            member["clips"].append(_asset(entry["clip"], "video", "", entry.get("clip_seconds")))
    for request in _old_requests(old) if kind != "register_character" else []:
        for reference in request.get("references") or []:
            member = members.get(str(reference.get("subject") or ""))
            if member is not None:
                kind_of = reference.get("kind") or "image"
                found = _asset(reference["file"], kind_of, reference.get("content_type", ""))
                member["images" if kind_of == "image" else "clips"].append(found)
    for member in members.values():
        for key in ("images", "clips"):  # the first mention of a file wins
            unique: dict[str, dict] = {}
            for asset in member[key]:
                unique.setdefault(asset["file"], asset)
            member[key] = list(unique.values())
    return list(members.values())


def _fit(old: dict, kind: str, degraded_note: str) -> dict:
    if kind == "register_character":
        character = old.get("character") or {}
        clips = (
            [
                {
                    "subject": str(character.get("subject") or ""),
                    "asset": _asset(character["clip"], "video", "", character.get("clip_seconds")),
                }
            ]
            if character.get("clip")
            else []
        )
        return {"references": [], "registration_clips": clips, "degraded_note": ""}
    references = [
        {
            "subject": str(r.get("subject") or ""),
            "asset": _asset(r["file"], r.get("kind") or "image", r.get("content_type", "")),
        }
        for r in old.get("references") or []
    ]
    clips = [
        {
            "subject": str(c.get("subject") or ""),
            "asset": _asset(c["clip"], "video", "", c.get("clip_seconds")),
        }
        for c in old.get("characters") or []
        if c.get("clip")
    ]
    return {"references": references, "registration_clips": clips, "degraded_note": degraded_note}


def converted(old: dict, *, kind: str, degraded_note: str = "") -> dict:
    """An old Job.request in the shape of version 1; one already converted is returned as is.

    `kind` is the job's own (Job.kind), for requests that did not say theirs; the degraded
    note of the job's own account lived in Job.routing and travels with its fit now.
    """
    if "version" in old:
        return old
    kind = str(old.get("kind") or kind)
    return {
        "version": VERSION,
        "kind": kind,
        "prompt": str(old.get("prompt") or ""),
        "seconds": int(old.get("seconds") or 0),
        "size": str(old.get("size") or ""),
        "cast": _cast(old, kind),
        "source_provider_job_id": str(old.get("source_provider_job_id") or ""),
        "fit": _fit(old, kind, degraded_note),
        "fallbacks": [
            {
                "account_id": int(f["account_id"]),
                "estimate": str(f.get("estimate") or "0"),
                "fit": _fit(f.get("request") or {}, kind, str(f.get("degraded_note") or "")),
            }
            for f in old.get("fallbacks") or []
        ],
    }


def _old_fit(new: dict, fit: dict) -> dict:
    """A fit as the old request's characters and references said it."""
    handles = {m["subject"]: m["handle"] for m in new["cast"]}
    clips = {c["subject"]: c["asset"] for c in fit["registration_clips"]}
    characters = []
    for member in new["cast"]:
        character = {
            "subject": member["subject"],
            "name": member["name"],
            "handle": member["handle"],
            "description": member["description"],
        }
        if member["subject"] in clips:
            character["clip"] = clips[member["subject"]]["file"]
            character["clip_seconds"] = clips[member["subject"]]["seconds"]
        characters.append(character)
    old = {"characters": characters}
    if fit["references"]:
        old["references"] = [
            {
                "file": r["asset"]["file"],
                "kind": r["asset"]["kind"],
                "content_type": r["asset"]["content_type"],
                "subject": r["subject"],
                "name": handles.get(r["subject"], ""),
            }
            for r in fit["references"]
        ]
    return old


def reverted(new: dict) -> dict:
    """A version-1 request in the old shape (for migrating back); an old one as is."""
    if "version" not in new:
        return new
    if new["kind"] == "register_character":
        (member,) = new["cast"]
        character = {"subject": member["subject"], "name": member["name"]}
        for key in ("description", "from_provider_job_id"):
            if member[key]:
                character[key] = member[key]
        for clip in new["fit"]["registration_clips"]:
            character |= {"clip": clip["asset"]["file"], "clip_seconds": clip["asset"]["seconds"]}
        return {"kind": "register_character", "character": character}
    basics = {
        "kind": new["kind"],
        "prompt": new["prompt"],
        "seconds": new["seconds"],
        "size": new["size"],
    }
    if new["source_provider_job_id"]:
        basics["source_provider_job_id"] = new["source_provider_job_id"]
    return {
        **basics,
        **_old_fit(new, new["fit"]),
        "fallbacks": [
            {
                "account_id": f["account_id"],
                "estimate": f["estimate"],
                "request": {**basics, **_old_fit(new, f["fit"])},
                "degraded": bool(f["fit"]["degraded_note"]),
                "degraded_note": f["fit"]["degraded_note"],
            }
            for f in new["fallbacks"]
        ],
    }


def _rewrite(apps, change) -> None:
    Job = apps.get_model("jobs", "Job")
    batch = []
    for job in Job.objects.only("pk", "kind", "request", "routing").iterator(chunk_size=_BATCH):
        request = change(job)
        if request != job.request:
            job.request = request
            batch.append(job)
        if len(batch) >= _BATCH:
            Job.objects.bulk_update(batch, ["request"])
            batch = []
    if batch:
        Job.objects.bulk_update(batch, ["request"])


def forwards(apps, schema_editor) -> None:
    _rewrite(
        apps,
        lambda job: converted(
            job.request or {},
            kind=job.kind,
            degraded_note=str((job.routing or {}).get("degraded_note") or ""),
        ),
    )


def backwards(apps, schema_editor) -> None:
    _rewrite(apps, lambda job: reverted(job.request or {}))


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0006_job_claimed_by"),
    ]

    operations = [
        migrations.RunPython(forwards, backwards),
    ]
