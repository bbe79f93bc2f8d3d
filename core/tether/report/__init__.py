"""What a pass reports: the run document of `plan` and `sync` (document), and `tether report`.

``data`` gathers what a report shows; ``html``, ``markdown``, ``csvfile`` and ``jsondoc``
each render it one way. Only ``html`` imports plotly, so the other formats stay light."""
