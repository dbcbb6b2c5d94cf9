"""From a file to a converted network: reading it into a Loaded, planning and applying the
plan to a copy, the invariants every conversion keeps, option values and YAML presets."""
