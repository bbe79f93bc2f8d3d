"""Asana's part of `tether init`: a source reading the projects named, with tags."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tether.sdk import InitError, InitOption, InitSource, Starter


class AsanaStarter(Starter):
    type_name = "asana"
    options = (InitOption("--asana", "PROJECT", "An Asana project gid; repeat for more.",
                          multiple=True),)

    def source(self, values: Mapping[str, Any]) -> InitSource | None:
        projects = values.get("asana") or ()
        if not projects:
            return None
        for gid in projects:
            if not gid.isdigit():
                raise InitError("--asana", f"'{gid}' is not an Asana project gid (digits, from "
                                "the project's URL)")
        yaml = ("  - name: asana                      # items are referred to as asana:<task gid>\n"
                "    type: asana\n    options:\n"
                f"      projects: [{', '.join(json.dumps(p) for p in projects)}]   # project gids\n"
                "      workspace: ${ASANA_WORKSPACE}  # the workspace gid, where Tether's tags live\n"
                "      token_env: ASANA_TOKEN         # export ASANA_TOKEN=<personal access token>\n"
                "      label_mode: tags")
        return InitSource(yaml, ("ASANA_TOKEN", "ASANA_WORKSPACE"), "asana: <user gid>")
