"""`pynotes`: a hosted repository of notes (any file at a relative path), written in Python.

This is a Granary content-type plugin built with componentize-py: it implements the
`content-type` world of `wit/since_v0.1.0/granary-plugin.wit` (see README.md).

- upload: any file with a `relative_path`; the unit is keyed by that path.
- publish: every note is served at its path, plus `index.txt` with one `relative_path sha256`
  line per note.
- sync: not supported (there is no upstream), so the plugin asks for no capabilities.
- handle: 404 for every dynamic route.
"""

import json
from typing import List, Optional, Tuple

import wit_world
from componentize_py_types import Err
from wit_world.imports import content, log, publication
from wit_world.imports.types import (
    ArtifactDeclaration,
    ArtifactRef,
    ContentTypeInfo,
    HttpBody_Bytes,
    HttpRequest,
    HttpResponse,
    PluginError,
    PluginInfo,
    RemoteConfig,
    UnitDeclaration,
    VersionInfo,
)

PLUGIN = "pynotes"
VERSION = "0.1.0"
WIT_VERSION = "0.1.0"
NOTE = "note"
PAGE = 1000
BATCH = 500


def field_error(field: str, message: str) -> Err:
    return Err(PluginError(message=message, field=field))


def error(message: str) -> Err:
    return Err(PluginError(message=message, field=None))


def canonical_json(value: dict) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def valid_path(path: str) -> bool:
    return bool(path) and not path.startswith("/") and all(
        segment not in ("", ".", "..") for segment in path.split("/")
    )


class WitWorld(wit_world.WitWorld):
    def describe(self) -> PluginInfo:
        return PluginInfo(
            name=PLUGIN,
            version=VERSION,
            wit_version=WIT_VERSION,
            content_types=[
                ContentTypeInfo(
                    name=NOTE,
                    description="A note (any file), served at its relative path",
                    natural_key_fields=["relative_path"],
                )
            ],
            capabilities=[],
        )

    def sync(self, remote: RemoteConfig) -> None:
        raise error("sync is not supported by pynotes: upload notes instead")

    def parse_upload(
        self, upload: ArtifactRef, relative_path: Optional[str]
    ) -> UnitDeclaration:
        if relative_path is None:
            raise field_error("relative_path", "a note upload needs a relative_path")
        if not valid_path(relative_path):
            raise field_error(
                "relative_path",
                f"{relative_path!r} must be a relative path without empty, '.' or '..' segments",
            )
        return UnitDeclaration(
            content_type=NOTE,
            natural_key=canonical_json({"relative_path": relative_path}),
            metadata="{}",
            artifacts=[
                ArtifactDeclaration(
                    relative_path=relative_path,
                    url=None,
                    size=upload.size,
                    sha256=upload.sha256,
                )
            ],
        )

    def publish(self, version: VersionInfo) -> None:
        entries: List[Tuple[str, str]] = []
        lines: List[str] = []
        count = 0
        cursor: Optional[str] = None
        while True:
            page = content.list_units(cursor, PAGE)
            for unit in page.units:
                for artifact in unit.artifacts:
                    entries.append((artifact.relative_path, artifact.content_artifact))
                    lines.append(f"{artifact.relative_path} {artifact.sha256 or ''}\n")
                    count += 1
                if len(entries) >= BATCH:
                    publication.publish_content(entries)
                    entries = []
                if len(lines) >= BATCH:
                    publication.write_file("index.txt", "".join(lines).encode())
                    lines = []
            cursor = page.next
            if cursor is None:
                break
        if entries:
            publication.publish_content(entries)
        # Always write index.txt, even empty, so every publication has it.
        publication.write_file("index.txt", "".join(lines).encode())
        log.log(
            log.Level.INFO,
            f"published {count} notes of {version.repository_name} version {version.number}",
        )

    def handle(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse(status=404, headers=[], body=HttpBody_Bytes(value=b""))
