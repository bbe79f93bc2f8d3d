"""`tether report`: one report from the config and the state store, in four formats.

``data`` gathers what a report shows; ``html``, ``markdown``, ``csvfile`` and ``jsondoc``
each render it one way. Only ``html`` imports plotly, so the other formats stay light."""
