"""File connector: Jira CSV exports, `gh issue list --json` output, Tether JSON/CSV."""
