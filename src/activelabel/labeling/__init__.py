"""What a labeling project does over the store: rounds (train, evaluate, score, select, rank),
imports and exports, features, what annotators are handed, quality reports, the review queue,
snapshots, calibration, and the figures the pages show.

Plain functions over a session, the array store and plain values: no HTTP, no processes. With
:mod:`activelabel.store`, this is the only package that builds database queries; the routes of
:mod:`activelabel.http` and the command line call it.
"""
