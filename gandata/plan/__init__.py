"""The global plan step: decides which staged samples go where, over metadata only.

``table`` holds the types every step shares (the staged table, the plan, shard
plans) and their small helpers; each other module is one step: ``dedup``
(exact duplicates), ``merge`` (per-source label maps, caps, weights),
``cleaning`` (quality and near-duplicate decisions), ``balance`` (class
balancing), ``split`` (the stratified validation split) and
``synthetic_fill`` (what to ask a generator for). ``make`` runs them in order.
"""
