"""The benchmark's domains; every dataset and task belongs to one."""

from enum import StrEnum


class Domain(StrEnum):
    INORGANIC_MATERIALS = "inorganic_materials"
    MOLECULES = "molecules"
    CATALYSIS = "catalysis"
