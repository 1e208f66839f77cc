"""``recyclops demo``: the whole Recyclops loop on one machine, on the embedded local store."""
