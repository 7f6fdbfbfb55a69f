"""The seeded-bottleneck suite: small PyTorch training scripts, each with one injected
bottleneck and a clean twin, recorded with the gpulens hooks (see README.md here and
:mod:`examples.bottlenecks.suite`)."""
