"""Rule packs shipped with Tether, importable as tether.rulepacks."""
