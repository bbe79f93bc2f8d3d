"""The options of an ``asana`` source in tether.yaml, validated before anything is pulled."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from tether.sdk import Options

DEFAULT_URL = "https://app.asana.com/api/1.0"
DEFAULT_IN_PROGRESS = ("In Progress", "Doing", "In Review", "Review", "Active", "Ongoing")


class AsanaOptions(Options):
    """Where the tasks are (projects in one workspace) and how Tether's labels are stored."""

    url: str = Field(DEFAULT_URL, description=(
        "Base URL of the Asana API, up to and including /api/1.0. Change it only for a "
        "sandbox or a proxy."))
    projects: list[str] = Field(min_length=1, description=(
        "Gids of the projects whose tasks Tether reads (the number in the project's URL)."))
    workspace: str | None = Field(None, description=(
        "Gid of the workspace or organisation the projects belong to. Required with "
        "label_mode: tags, because tags are workspace objects that Tether finds or creates."))
    token_env: str = Field("ASANA_TOKEN", description=(
        "Name of the environment variable that holds the personal access token (or OAuth "
        "token); it is sent as a Bearer token and never logged."))
    label_mode: Literal["tags", "custom_field"] = Field("tags", description=(
        "Where Tether's labels go: 'tags' (workspace tags named like the label) or "
        "'custom_field' (options of the multi-enum custom field named by label_field)."))
    label_field: str | None = Field(None, description=(
        "Gid of a multi-enum custom field whose options are Tether's labels; required with "
        "label_mode: custom_field. Missing options are created on first use."))
    estimate_field: str | None = Field(None, description=(
        "Custom field (gid or exact name) holding the estimate, e.g. 'Story Points'; its "
        "number value becomes the task's estimate."))
    custom_fields: dict[str, str] = Field(default_factory=dict, description=(
        "Extra custom fields for rules: {name rules use: custom field gid (or exact name)}. "
        "Values land in task.custom (number, text, enum option name, list of names, date, "
        "people names)."))
    in_progress_sections: list[str] = Field(list(DEFAULT_IN_PROGRESS), description=(
        "Section names (case-insensitive) that mean 'in progress'; an incomplete task in "
        "any other section is 'todo', a completed one is 'done'."))
    timeout: float = Field(60.0, gt=0, description="Seconds to wait for one HTTP response.")

    @model_validator(mode="after")
    def _mode_needs_its_scope(self) -> AsanaOptions:
        if self.label_mode == "tags" and not self.workspace:
            raise ValueError("label_mode 'tags' needs options.workspace (the workspace gid), "
                             "because tags are created and found per workspace")
        if self.label_mode == "custom_field" and not self.label_field:
            raise ValueError("label_mode 'custom_field' needs options.label_field (the gid of "
                             "a multi-enum custom field)")
        return self

    @property
    def api(self) -> str:
        """The base URL without a trailing slash."""
        return self.url.rstrip("/")
