"""Energy and emissions of training, estimated from CPU seconds (no power counter is read).

``codecarbon`` is not used: its current releases pull in pandas 3 and pydantic upgrades the
project's pins do not allow, and on a machine without RAPL or NVML it falls back to the same
kind of estimate. The method here, recorded with every figure: energy = CPU seconds (all
threads of the training process) x a stated power per busy core; emissions = energy x the
configured country's average carbon intensity of electricity. A GPU's draw is not counted
(``gpu_metered`` is false), so a GPU run's figure is a lower bound.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pipeline.settings import Settings

METHOD = "cpu_seconds_x_watts_per_core"
CARBON_INTENSITY_G_PER_KWH: dict[str, float] = {
    "WLD": 481.0,
    "FRA": 56.0,
    "DEU": 381.0,
    "GBR": 238.0,
    "USA": 369.0,
    "SWE": 41.0,
    "NOR": 30.0,
    "POL": 662.0,
    "CHN": 582.0,
    "IND": 713.0,
    "CAN": 170.0,
    "NLD": 268.0,
}
"""Average life-cycle carbon intensity of electricity generation, g CO2e per kWh, 2023
(rounded from Ember's yearly electricity data); ``WLD``: the world average."""


@dataclass(frozen=True)
class EnergyPolicy:
    """How energy is estimated: power per busy core and where the electricity comes from."""

    country: str = Settings.energy_country
    watts_per_core: float = Settings.cpu_watts_per_core

    def __post_init__(self) -> None:
        if self.country not in CARBON_INTENSITY_G_PER_KWH:
            known = ", ".join(sorted(CARBON_INTENSITY_G_PER_KWH))
            raise ValueError(f"no carbon intensity for country {self.country!r} (known: {known})")
        if self.watts_per_core <= 0:
            raise ValueError(f"watts_per_core must be positive, not {self.watts_per_core}")

    @classmethod
    def from_settings(cls, settings: Settings) -> EnergyPolicy:
        return cls(settings.energy_country, float(settings.cpu_watts_per_core))


@dataclass(frozen=True)
class Energy:
    """One checkpoint's training cost, from the run's start to that checkpoint."""

    cpu_seconds: float
    energy_kwh: float
    emissions_g: float
    country: str
    carbon_intensity_g_per_kwh: float
    watts_per_core: float
    method: str = METHOD
    gpu_metered: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def estimate(cpu_seconds: float, policy: EnergyPolicy) -> Energy:
    """Energy and emissions of ``cpu_seconds`` of busy cores under ``policy``."""
    if cpu_seconds < 0:
        raise ValueError(f"negative CPU seconds: {cpu_seconds}")
    kwh = cpu_seconds * policy.watts_per_core / 3.6e6
    intensity = CARBON_INTENSITY_G_PER_KWH[policy.country]
    return Energy(
        cpu_seconds=round(cpu_seconds, 3),
        energy_kwh=kwh,
        emissions_g=kwh * intensity,
        country=policy.country,
        carbon_intensity_g_per_kwh=intensity,
        watts_per_core=policy.watts_per_core,
    )
