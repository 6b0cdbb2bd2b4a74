"""docs/ARCHITECTURE.md lists every module, in the section of the folder that holds it, so the
page a newcomer reads cannot fall behind the tree."""
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "ARCHITECTURE.md"


def _sections() -> dict[str, str]:
    """Folder (e.g. "depth_unet_ros/odometry/") -> the text of the section named after it."""
    sections: dict[str, str] = {}
    for block in re.split(r"^## ", PAGE.read_text(), flags=re.M)[1:]:
        heading, _, body = block.partition("\n")
        folder = re.search(r"`((?:depth_unet_ros|training)/(?:[\w]+/)*)`", heading)
        if folder:
            sections[folder.group(1)] = body
    return sections


def _modules() -> list[str]:
    files = list((REPO / "depth_unet_ros").rglob("*.py")) + list((REPO / "training").rglob("*.py"))
    return sorted(str(f.relative_to(REPO)) for f in files if f.name != "__init__.py")


def test_every_module_is_listed_in_its_folders_section():
    sections = _sections()
    assert {"depth_unet_ros/", "depth_unet_ros/odometry/", "training/"} <= set(sections)
    missing = []
    for module in _modules():
        folder = max((f for f in sections if module.startswith(f)), key=len)
        if f"`{module[len(folder):]}`" not in sections[folder]:
            missing.append(f"{module} (section {folder})")
    assert not missing, "docs/ARCHITECTURE.md does not list: " + ", ".join(missing)
