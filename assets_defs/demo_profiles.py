"""Named sizes of the demo: every setting that makes ``crawl2diffusion demo`` big or small
lives here, and nowhere else.

``default`` is ``crawl2diffusion demo``: two synthetic crawls of four WAT files each (700
pages each, not the web's default 1,100), a training of 200 steps at twice the default
learning rate (the asset's default, 500 steps, alone takes four minutes on 2 cores: the demo
keeps within ten minutes, install included), samples and audits with 20 DDIM steps, 16
audited captions and one seed per artist, then the feedback crawl (two WAT files of AI
images made by the trained checkpoint, ``pipeline/synthetic/feedback.py``) through the
aesthetic subset.
``small`` is ``crawl2diffusion demo --small``: one crawl, two WAT files in one slice, a
smaller web, language identification over the web's own languages and a short training,
every hop still run (through training, samples and the replication audit), and a smaller
feedback crawl.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pipeline.lake.tables import TableName
from pipeline.synthetic.config import SyntheticWebConfig
from pipeline.synthetic.feedback import FeedbackConfig

WEB_LANGUAGES = SyntheticWebConfig().languages


@dataclass(frozen=True)
class DemoProfile:
    """One size of the demo: the synthetic web, the slicing and the jobs' run config."""

    name: str
    slice_size: int = 2
    """WAT files per partition."""
    web: dict[str, Any] = field(default_factory=dict)
    """SyntheticWebResource fields (empty: the web's defaults)."""
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Run config by job name (``wat_to_pairs_job``, ``training_job``...); a job not named
    runs with its assets' defaults."""
    data_subdir: str = ""
    """Folder under the data folder for this profile's web, lake and instance ("": the data
    folder itself), so that demos of different sizes never mix their lakes."""
    feedback: FeedbackConfig | None = field(default_factory=FeedbackConfig)
    """The feedback crawl grown from the trained checkpoint's samples (None: no loop)."""
    feedback_steps: int = 10
    """DDIM steps of the feedback crawl's samples."""

    def run_config(self, job: str) -> dict[str, Any]:
        """The run config of ``job`` in this profile."""
        return self.jobs.get(job, {})

    def data_dir(self, data: str) -> str:
        """Where this profile keeps its web, lake and Dagster instance under ``data``."""
        return f"{data.rstrip('/')}/{self.data_subdir}" if self.data_subdir else data


def _training_job(
    train: dict[str, Any],
    samples: dict[str, Any],
    replication: dict[str, Any],
    style: dict[str, Any],
) -> dict[str, Any]:
    """``training_job``'s run config: the training and the assets sampled from it."""
    configs = {
        TableName.DIFFUSION_MODEL: train,
        TableName.SAMPLES: samples,
        TableName.REPLICATION_AUDIT: replication,
        TableName.STYLE_IMITATION: style,
    }
    return {"ops": {name: {"config": config} for name, config in configs.items() if config}}


DEFAULT = DemoProfile(
    "default",
    web={"pages_per_crawl": 700},
    jobs={
        "training_job": _training_job(
            {
                "train_steps": 200,
                "checkpoint_every": 100,
                "warmup_steps": 20,
                "learning_rate": 2e-3,
            },
            {"steps": 20},
            {"steps": 20, "captions": 16},
            {"steps": 20, "seeds": [0]},
        )
    },
)

SMALL = DemoProfile(
    "small",
    slice_size=2,
    web={
        "crawl_ids": ["SYNTH-2026-10"],
        "wat_files_per_crawl": 2,
        "pages_per_crawl": 150,
        "sites": 16,
    },
    jobs={
        # the synthetic web's six languages only: lingua then loads 6 models, not 75
        "wat_to_pairs_job": {
            "ops": {TableName.ALT_TEXT_PAIRS: {"config": {"languages": list(WEB_LANGUAGES)}}}
        },
        "training_job": _training_job(
            {"train_steps": 30, "checkpoint_every": 30, "batch_size": 8, "warmup_steps": 5},
            {"steps": 10, "seeds": [0, 1]},
            {"steps": 10, "captions": 8},
            {"steps": 10, "seeds": [0]},
        ),
    },
    data_subdir="small",
    feedback=FeedbackConfig(wat_files=2, per_signal=2, not_allowed=2),
)

PROFILES: MappingProxyType[str, DemoProfile] = MappingProxyType(
    {p.name: p for p in (DEFAULT, SMALL)}
)
